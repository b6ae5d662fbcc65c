/*
 * dns.c - MX resolution with c-ares on the libevent loop (see dns.h).
 *
 * c-ares tells us which sockets it wants watched (sock_state_cb); each gets
 * a persistent libevent event that calls ares_process_fd(). One timer,
 * re-armed from ares_timeout() after every call into c-ares, drives its
 * retransmissions and time-outs.
 */
#include "server/dns.h"

#include <ares.h>
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define CACHE_BUCKETS 4096
#define CACHE_MAX 20000
#define TTL_MAX 3600
#define NEG_TTL 60

struct watch {
	ares_socket_t fd;
	struct event *ev;
	struct dns *dns;
	struct watch *next;
};

struct waiter {
	dns_mx_cb cb;
	void *arg;
	struct waiter *next;
};

struct lookup {
	struct dns *dns;
	char *key; /* "m:name" or "h:name" */
	const char *name;
	struct dns_mx *mx;
	int pending; /* address look-ups outstanding */
	int temp;    /* one of them failed for now */
	int64_t ttl;
	struct waiter *waiters;
	struct lookup *next;
};

struct centry {
	char *key;
	struct dns_mx *mx;
	struct centry *next;
};

struct dns {
	struct event_base *base;
	ares_channel ch;
	struct event *timer;
	struct watch *watches;
	struct lookup *lookups;
	struct centry *cache[CACHE_BUCKETS];
	size_t ncache;
	unsigned seed;
	int dying;
};

static int64_t
mono_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec;
}

static void
arm_timer(struct dns *dns)
{
	struct timeval tv, *t;

	if (dns->dying)
		return;
	t = ares_timeout(dns->ch, NULL, &tv);
	if (t != NULL)
		evtimer_add(dns->timer, t);
	else
		evtimer_del(dns->timer);
}

static void
on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct dns *dns = arg;

	ares_process_fd(dns->ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
	arm_timer(dns);
}

static void
on_socket(evutil_socket_t fd, short what, void *arg)
{
	struct watch *w = arg;
	struct dns *dns = w->dns;

	ares_process_fd(dns->ch, (what & EV_READ) ? fd : ARES_SOCKET_BAD,
	                (what & EV_WRITE) ? fd : ARES_SOCKET_BAD);
	arm_timer(dns);
}

static void
sock_state(void *data, ares_socket_t fd, int readable, int writable)
{
	struct dns *dns = data;
	struct watch **pp, *w;

	for (pp = &dns->watches; (w = *pp) != NULL; pp = &w->next)
		if (w->fd == fd)
			break;
	if (!readable && !writable) {
		if (w != NULL) {
			*pp = w->next;
			event_free(w->ev);
			free(w);
		}
		return;
	}
	if (w == NULL) {
		if ((w = calloc(1, sizeof(*w))) == NULL)
			return;
		w->fd = fd;
		w->dns = dns;
		w->next = dns->watches;
		dns->watches = w;
	} else {
		event_free(w->ev);
	}
	w->ev = event_new(dns->base, fd,
	                  EV_PERSIST | (readable ? EV_READ : 0) | (writable ? EV_WRITE : 0),
	                  on_socket, w);
	if (w->ev != NULL)
		event_add(w->ev, NULL);
}

static char *
servers_csv(const char *list)
{
	const char *cur = list, *item;
	size_t len, n = 0;
	char *out = malloc(strlen(list) + 2);

	if (out == NULL)
		return NULL;
	out[0] = '\0';
	while ((item = strpbrk(cur, ", \t")) != NULL || *cur) {
		len = item ? (size_t)(item - cur) : strlen(cur);
		if (len > 0) {
			if (n > 0)
				out[n++] = ',';
			memcpy(out + n, cur, len);
			n += len;
			out[n] = '\0';
		}
		if (item == NULL)
			break;
		cur = item + 1;
	}
	return out;
}

struct dns *
dns_new(struct event_base *base, const char *servers, char *err, size_t errlen)
{
	struct dns *dns = calloc(1, sizeof(*dns));
	struct ares_options opt;
	int rc;

	if (dns == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	dns->base = base;
	dns->seed = (unsigned)time(NULL) ^ (unsigned)(uintptr_t)dns;
	ares_library_init(ARES_LIB_INIT_ALL);
	memset(&opt, 0, sizeof(opt));
	opt.sock_state_cb = sock_state;
	opt.sock_state_cb_data = dns;
	opt.timeout = 3000; /* ms, per try */
	opt.tries = 3;
	rc = ares_init_options(&dns->ch, &opt,
	                       ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES);
	if (rc != ARES_SUCCESS) {
		snprintf(err, errlen, "c-ares: %s", ares_strerror(rc));
		free(dns);
		return NULL;
	}
	if (servers != NULL && *servers != '\0') {
		char *csv = servers_csv(servers);
		rc = csv ? ares_set_servers_ports_csv(dns->ch, csv) : ARES_ENOMEM;
		free(csv);
		if (rc != ARES_SUCCESS) {
			snprintf(err, errlen, "dns_servers = %s: %s", servers, ares_strerror(rc));
			ares_destroy(dns->ch);
			free(dns);
			return NULL;
		}
	}
	dns->timer = evtimer_new(base, on_timer, dns);
	return dns;
}

void
dns_mx_ref(struct dns_mx *mx)
{
	mx->refs++;
}

void
dns_mx_unref(struct dns_mx *mx)
{
	if (mx == NULL || --mx->refs > 0)
		return;
	for (int i = 0; i < mx->nhost; i++) {
		free(mx->hosts[i].name);
		free(mx->hosts[i].addrs);
	}
	free(mx->hosts);
	free(mx);
}

void
dns_free(struct dns *dns)
{
	struct watch *w;

	if (dns == NULL)
		return;
	dns->dying = 1;
	ares_destroy(dns->ch); /* calls pending callbacks with ARES_EDESTRUCTION */
	while ((w = dns->watches) != NULL) {
		dns->watches = w->next;
		event_free(w->ev);
		free(w);
	}
	for (int i = 0; i < CACHE_BUCKETS; i++) {
		struct centry *e, *next;
		for (e = dns->cache[i]; e != NULL; e = next) {
			next = e->next;
			dns_mx_unref(e->mx);
			free(e->key);
			free(e);
		}
	}
	event_free(dns->timer);
	free(dns);
}

static unsigned
hash(const char *s)
{
	unsigned h = 2166136261u;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h % CACHE_BUCKETS;
}

static void
cache_sweep(struct dns *dns, int64_t now)
{
	for (int i = 0; i < CACHE_BUCKETS; i++) {
		struct centry **pp = &dns->cache[i], *e;
		while ((e = *pp) != NULL) {
			if (e->mx->expires <= now) {
				*pp = e->next;
				dns_mx_unref(e->mx);
				free(e->key);
				free(e);
				dns->ncache--;
			} else {
				pp = &e->next;
			}
		}
	}
}

static struct dns_mx *
cache_get(struct dns *dns, const char *key)
{
	struct centry **pp = &dns->cache[hash(key)], *e;
	int64_t now = mono_now();

	while ((e = *pp) != NULL) {
		if (strcmp(e->key, key) == 0) {
			if (e->mx->expires > now)
				return e->mx;
			*pp = e->next;
			dns_mx_unref(e->mx);
			free(e->key);
			free(e);
			dns->ncache--;
			return NULL;
		}
		pp = &e->next;
	}
	return NULL;
}

static void
cache_put(struct dns *dns, const char *key, struct dns_mx *mx)
{
	struct centry *e;
	unsigned h = hash(key);

	if (mx->expires <= mono_now())
		return;
	if (dns->ncache >= CACHE_MAX)
		cache_sweep(dns, mono_now());
	if (dns->ncache >= CACHE_MAX || (e = calloc(1, sizeof(*e))) == NULL)
		return;
	if ((e->key = strdup(key)) == NULL) {
		free(e);
		return;
	}
	dns_mx_ref(mx);
	e->mx = mx;
	e->next = dns->cache[h];
	dns->cache[h] = e;
	dns->ncache++;
}

void
dns_sort_hosts(struct dns_host *hosts, int n, unsigned seed)
{
	/* Shuffle first (Fisher-Yates), then a stable insertion sort by
	 * preference: equal preferences keep their shuffled order. */
	for (int i = n - 1; i > 0; i--) {
		seed = seed * 1103515245u + 12345u;
		int j = (int)((seed >> 8) % (unsigned)(i + 1));
		struct dns_host t = hosts[i];
		hosts[i] = hosts[j];
		hosts[j] = t;
	}
	for (int i = 1; i < n; i++) {
		struct dns_host t = hosts[i];
		int j = i - 1;
		while (j >= 0 && hosts[j].pref > t.pref) {
			hosts[j + 1] = hosts[j];
			j--;
		}
		hosts[j + 1] = t;
	}
}

static void
finish(struct lookup *lk)
{
	struct dns *dns = lk->dns;
	struct dns_mx *mx = lk->mx;
	struct lookup **pp;
	struct waiter *w;
	int j = 0;

	if (mx->status == DNS_OK) {
		/* Drop exchangers without addresses; none left is a failure. */
		for (int i = 0; i < mx->nhost; i++) {
			if (mx->hosts[i].naddr > 0) {
				mx->hosts[j++] = mx->hosts[i];
			} else {
				free(mx->hosts[i].name);
				free(mx->hosts[i].addrs);
			}
		}
		mx->nhost = j;
		if (j == 0) {
			mx->status = lk->temp ? DNS_TEMPFAIL : DNS_NOHOST;
			snprintf(mx->why, sizeof(mx->why),
			         lk->temp ? "Host or domain name not found. Name service error for "
			                    "name=%s: try again"
			                  : "Host or domain name not found. Name service error for "
			                    "name=%s: no address",
			         lk->name);
		} else {
			dns->seed = dns->seed * 1103515245u + 12345u;
			dns_sort_hosts(mx->hosts, mx->nhost, dns->seed);
		}
	}
	if (mx->status == DNS_OK)
		mx->expires = mono_now() + (lk->ttl < TTL_MAX ? lk->ttl : TTL_MAX);
	else if (mx->status != DNS_TEMPFAIL)
		mx->expires = mono_now() + NEG_TTL;
	else
		mx->expires = 0;
	if (!dns->dying)
		cache_put(dns, lk->key, mx);
	for (pp = &dns->lookups; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == lk) {
			*pp = lk->next;
			break;
		}
	}
	while ((w = lk->waiters) != NULL) {
		lk->waiters = w->next;
		if (!dns->dying)
			w->cb(w->arg, mx);
		free(w);
	}
	dns_mx_unref(mx);
	free(lk->key);
	free(lk);
}

struct addr_req {
	struct lookup *lk;
	int host;
};

static void
addr_done(void *arg, int status, int timeouts, struct ares_addrinfo *res)
{
	struct addr_req *req = arg;
	struct lookup *lk = req->lk;
	struct dns_host *h = &lk->mx->hosts[req->host];
	int n = 0;

	free(req);
	if (status == ARES_SUCCESS && res != NULL) {
		for (struct ares_addrinfo_node *nd = res->nodes; nd; nd = nd->ai_next)
			n++;
		h->addrs = calloc((size_t)n, sizeof(*h->addrs));
		if (h->addrs != NULL) {
			/* IPv6 first, then IPv4, each in the order given. */
			for (int pass = 0; pass < 2; pass++) {
				for (struct ares_addrinfo_node *nd = res->nodes; nd;
				     nd = nd->ai_next) {
					int want = pass == 0 ? AF_INET6 : AF_INET;
					if (nd->ai_family != want ||
					    nd->ai_addrlen > sizeof(struct sockaddr_storage))
						continue;
					memcpy(&h->addrs[h->naddr].ss, nd->ai_addr, nd->ai_addrlen);
					h->addrs[h->naddr].len = nd->ai_addrlen;
					h->naddr++;
					if (nd->ai_ttl >= 0 && nd->ai_ttl < lk->ttl)
						lk->ttl = nd->ai_ttl;
				}
			}
		}
	} else if (status != ARES_ENOTFOUND && status != ARES_ENODATA) {
		lk->temp = 1;
	} else if (lk->mx->implicit && status == ARES_ENOTFOUND) {
		lk->mx->status = DNS_NXDOMAIN;
		snprintf(lk->mx->why, sizeof(lk->mx->why),
		         "Host or domain name not found. Name service error for name=%s type=A: "
		         "Host not found",
		         lk->name);
	}
	if (res != NULL)
		ares_freeaddrinfo(res);
	if (status == ARES_EDESTRUCTION)
		lk->temp = 1;
	if (--lk->pending == 0)
		finish(lk);
}

static void
start_addrs(struct lookup *lk)
{
	struct ares_addrinfo_hints hints;
	int n = lk->mx->nhost;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = ARES_AI_NOSORT;
	lk->pending = n + 1; /* held until every request is out */
	for (int i = 0; i < n; i++) {
		struct addr_req *req = malloc(sizeof(*req));
		if (req == NULL) {
			lk->temp = 1;
			lk->pending--;
			continue;
		}
		req->lk = lk;
		req->host = i;
		ares_getaddrinfo(lk->dns->ch, lk->mx->hosts[i].name, NULL, &hints, addr_done, req);
	}
	if (--lk->pending == 0)
		finish(lk);
	else
		arm_timer(lk->dns);
}

static int
set_single_host(struct lookup *lk, const char *name)
{
	struct dns_mx *mx = lk->mx;

	if ((mx->hosts = calloc(1, sizeof(*mx->hosts))) == NULL ||
	    (mx->hosts[0].name = strdup(name)) == NULL)
		return -1;
	mx->nhost = 1;
	return 0;
}

/* The smallest TTL of the answer section of a DNS reply. */
static int64_t
answer_ttl(const unsigned char *abuf, int alen)
{
	int64_t ttl = TTL_MAX;
	const unsigned char *p = abuf + HFIXEDSZ;
	int qd, an;
	long len;
	char *name;

	if (alen < HFIXEDSZ)
		return 0;
	qd = (abuf[4] << 8) | abuf[5];
	an = (abuf[6] << 8) | abuf[7];
	for (int i = 0; i < qd; i++) {
		if (ares_expand_name(p, abuf, alen, &name, &len) != ARES_SUCCESS)
			return 0;
		ares_free_string(name);
		p += len + QFIXEDSZ;
		if (p > abuf + alen)
			return 0;
	}
	for (int i = 0; i < an; i++) {
		if (ares_expand_name(p, abuf, alen, &name, &len) != ARES_SUCCESS)
			return 0;
		ares_free_string(name);
		p += len;
		if (p + RRFIXEDSZ > abuf + alen)
			return 0;
		int64_t t = ((int64_t)p[4] << 24) | (p[5] << 16) | (p[6] << 8) | p[7];
		int rdlen = (p[8] << 8) | p[9];
		if (t < ttl)
			ttl = t;
		p += RRFIXEDSZ + rdlen;
	}
	return ttl;
}

static void
mx_done(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
	struct lookup *lk = arg;
	struct dns_mx *mx = lk->mx;
	struct ares_mx_reply *list = NULL, *r;
	int n = 0, null_mx = 0;

	if (status == ARES_SUCCESS) {
		status = ares_parse_mx_reply(abuf, alen, &list);
		lk->ttl = answer_ttl(abuf, alen);
	}
	if (status == ARES_SUCCESS) {
		for (r = list; r != NULL; r = r->next) {
			n++;
			if (r->host[0] == '\0' || strcmp(r->host, ".") == 0)
				null_mx = 1;
		}
	}
	if (status == ARES_SUCCESS && null_mx) {
		mx->status = DNS_NULLMX;
		snprintf(mx->why, sizeof(mx->why), "Domain %s does not accept mail (null MX)",
		         lk->name);
	} else if (status == ARES_SUCCESS && n > 0) {
		mx->hosts = calloc((size_t)n, sizeof(*mx->hosts));
		if (mx->hosts == NULL) {
			status = ARES_ENOMEM;
		} else {
			for (r = list; r != NULL; r = r->next) {
				struct dns_host *h = &mx->hosts[mx->nhost];
				if ((h->name = strdup(r->host)) == NULL)
					continue;
				h->pref = r->priority;
				mx->nhost++;
			}
		}
	} else if (status == ARES_SUCCESS || status == ARES_ENODATA) {
		/* RFC 5321 5.1: no MX, the domain is its own exchanger. */
		mx->implicit = 1;
		if (set_single_host(lk, lk->name) < 0)
			status = ARES_ENOMEM;
		else
			status = ARES_SUCCESS;
	} else if (status == ARES_ENOTFOUND) {
		mx->status = DNS_NXDOMAIN;
		snprintf(mx->why, sizeof(mx->why),
		         "Host or domain name not found. Name service error for name=%s type=MX: "
		         "Host not found",
		         lk->name);
	}
	if (status != ARES_SUCCESS && status != ARES_ENOTFOUND && mx->status == DNS_OK) {
		mx->status = DNS_TEMPFAIL;
		snprintf(
		    mx->why, sizeof(mx->why),
		    "Host or domain name not found. Name service error for name=%s type=MX: %s",
		    lk->name, ares_strerror(status));
	}
	if (list != NULL)
		ares_free_data(list);
	if (mx->status != DNS_OK)
		finish(lk);
	else
		start_addrs(lk);
}

void
dns_resolve_mx(struct dns *dns, const char *name, int no_mx, dns_mx_cb cb, void *arg)
{
	char key[300];
	struct dns_mx *mx;
	struct lookup *lk;
	struct waiter *w;

	snprintf(key, sizeof(key), "%c:%s", no_mx ? 'h' : 'm', name);
	if ((mx = cache_get(dns, key)) != NULL) {
		cb(arg, mx);
		return;
	}
	w = calloc(1, sizeof(*w));
	for (lk = dns->lookups; lk != NULL; lk = lk->next)
		if (strcmp(lk->key, key) == 0)
			break;
	if (w == NULL)
		goto oom;
	w->cb = cb;
	w->arg = arg;
	if (lk != NULL) {
		w->next = lk->waiters;
		lk->waiters = w;
		return;
	}
	if ((lk = calloc(1, sizeof(*lk))) == NULL ||
	    (lk->mx = calloc(1, sizeof(*lk->mx))) == NULL || (lk->key = strdup(key)) == NULL) {
		if (lk != NULL) {
			free(lk->mx);
			free(lk);
		}
		free(w);
		goto oom;
	}
	lk->dns = dns;
	lk->name = lk->key + 2;
	lk->ttl = TTL_MAX;
	lk->mx->refs = 1;
	lk->waiters = w;
	lk->next = dns->lookups;
	dns->lookups = lk;
	if (no_mx) {
		lk->mx->implicit = 1;
		if (set_single_host(lk, lk->name) < 0) {
			lk->mx->status = DNS_TEMPFAIL;
			snprintf(lk->mx->why, sizeof(lk->mx->why), "out of memory");
			finish(lk);
			return;
		}
		start_addrs(lk);
		return;
	}
	ares_query(dns->ch, lk->name, ns_c_in, ns_t_mx, mx_done, lk);
	arm_timer(dns);
	return;
oom : {
	static struct dns_mx oom_mx = {
	    .refs = 1 << 30, .status = DNS_TEMPFAIL, .why = "out of memory"};
	cb(arg, &oom_mx);
}
}
