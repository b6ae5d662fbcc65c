/*
 * dns.h - where mail for a domain goes: MX lookup with c-ares inside the
 * libevent loop (never blocking), per RFC 5321 section 5.1 and RFC 7505.
 *
 * dns_resolve_mx() answers, through its callback on the loop, with a
 * struct dns_mx: the mail exchangers sorted by preference (equal ones
 * shuffled), each with its IPv6 and IPv4 addresses. No MX record means the
 * domain itself is the only exchanger ("implicit MX"); a null MX (one MX
 * ".") is DNS_NULLMX, a domain that does not exist DNS_NXDOMAIN, an
 * exchanger list without any address DNS_NOHOST; SERVFAIL, time-outs and
 * other trouble are DNS_TEMPFAIL. Answers are cached for their TTL (the
 * smallest TTL of the records used; permanent failures for a minute).
 *
 * A struct dns_mx is reference-counted: the callback borrows it, and keeps
 * it past the call with dns_mx_ref()/dns_mx_unref().
 */
#ifndef FANMAIL_DNS_H
#define FANMAIL_DNS_H

#include <stdint.h>
#include <sys/socket.h>

struct event_base;
struct dns;

enum dns_status {
	DNS_OK,
	DNS_TEMPFAIL,
	DNS_NXDOMAIN,
	DNS_NULLMX,
	DNS_NOHOST,
};

struct dns_addr {
	struct sockaddr_storage ss;
	socklen_t len;
};

struct dns_host {
	char *name;
	int pref;
	int naddr;
	struct dns_addr *addrs;
};

struct dns_mx {
	int refs;
	enum dns_status status;
	char why[256]; /* for people, when status is not DNS_OK */
	int implicit;  /* no MX record: the domain's own addresses */
	int nhost;
	struct dns_host *hosts; /* in the order to try */
	int64_t expires;        /* monotonic seconds */
};

/* servers: the dns_servers setting (ip:port items, comma or space
 * separated), or "" for the system configuration. NULL with err on failure. */
struct dns *dns_new(struct event_base *base, const char *servers, char *err, size_t errlen);
void dns_free(struct dns *dns);

typedef void (*dns_mx_cb)(void *arg, struct dns_mx *mx);

/* Looks up where mail for domain goes. With no_mx, name is taken as the one
 * exchanger (relay_host) and only its addresses are looked up. The callback
 * may run before this returns (cache hit). */
void dns_resolve_mx(struct dns *dns, const char *name, int no_mx, dns_mx_cb cb, void *arg);

void dns_mx_ref(struct dns_mx *mx);
void dns_mx_unref(struct dns_mx *mx);

/* Sorts hosts by preference, shuffling equal preferences with seed (pure;
 * exposed for the unit tests). */
void dns_sort_hosts(struct dns_host *hosts, int n, unsigned seed);

#endif
