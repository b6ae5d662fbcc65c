/*
 * dmarc.c - DMARC policy discovery with c-ares, cached by TTL. See dmarc.h.
 */
#include "server/dmarc.h"

#include <ares.h>
#include <arpa/nameser.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "conf/conf.h"
#include "lists/post.h"
#include "server/log.h"

#define DMARC_CACHE 512
#define DMARC_TTL_MIN 60
#define DMARC_TTL_MAX 86400
#define DMARC_TTL_NORECORD 300
#define DMARC_TTL_FAILED 60

struct dmarc_entry {
	char domain[256]; /* lower case; "" when the slot is free */
	char policy[16];
	int failed; /* the lookup failed: asked again after DMARC_TTL_FAILED */
	time_t expires;
};

struct dmarc {
	ares_channel ch;
	struct dmarc_entry cache[DMARC_CACHE];
};

/* What one TXT query found. */
struct answer {
	int done;
	int status; /* ARES_* */
	int nrec;   /* DMARC records seen */
	char record[512];
	uint32_t ttl;
};

struct dmarc *
dmarc_new(const struct conf *conf, char *err, size_t errlen)
{
	struct ares_options opt = {0};
	struct dmarc *d;
	int rc;

	if ((rc = ares_library_init(ARES_LIB_INIT_ALL)) != ARES_SUCCESS) {
		snprintf(err, errlen, "c-ares: %s", ares_strerror(rc));
		return NULL;
	}
	if ((d = calloc(1, sizeof(*d))) == NULL) {
		snprintf(err, errlen, "out of memory");
		ares_library_cleanup();
		return NULL;
	}
	opt.timeout = 2000;
	opt.tries = 2;
	rc = ares_init_options(&d->ch, &opt, ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES);
	if (rc != ARES_SUCCESS) {
		snprintf(err, errlen, "c-ares: %s", ares_strerror(rc));
		free(d);
		ares_library_cleanup();
		return NULL;
	}
	if (conf->dns_servers != NULL && *conf->dns_servers) {
		char csv[1024] = "";
		const char *cur = conf->dns_servers, *item;
		size_t n, o = 0;

		while ((item = conf_list_next(&cur, &n)) != NULL && o + n + 2 < sizeof(csv)) {
			if (o)
				csv[o++] = ',';
			memcpy(csv + o, item, n);
			o += n;
			csv[o] = '\0';
		}
		if ((rc = ares_set_servers_ports_csv(d->ch, csv)) != ARES_SUCCESS) {
			snprintf(err, errlen, "dns_servers %s: %s", csv, ares_strerror(rc));
			dmarc_free(d);
			return NULL;
		}
	}
	return d;
}

void
dmarc_free(struct dmarc *d)
{
	if (d == NULL)
		return;
	ares_destroy(d->ch);
	free(d);
	ares_library_cleanup();
}

/* Skips a (possibly compressed) name at p; returns the offset after it or
 * -1. */
static long
skip_name(const unsigned char *buf, long len, long p)
{
	while (p < len) {
		unsigned c = buf[p];

		if (c == 0)
			return p + 1;
		if ((c & 0xc0) == 0xc0)
			return p + 2 <= len ? p + 2 : -1;
		p += c + 1;
	}
	return -1;
}

/* Reads the TXT answers in buf: DMARC records and the smallest TTL. */
static void
parse_txt(struct answer *a, const unsigned char *buf, long len)
{
	long p = 12;
	unsigned qd, an;

	if (len < 12)
		return;
	qd = (unsigned)(buf[4] << 8 | buf[5]);
	an = (unsigned)(buf[6] << 8 | buf[7]);
	for (unsigned i = 0; i < qd && p >= 0; i++) {
		p = skip_name(buf, len, p);
		if (p >= 0)
			p += 4;
	}
	a->ttl = DMARC_TTL_MAX;
	for (unsigned i = 0; i < an && p >= 0 && p < len; i++) {
		unsigned type, rdlen;
		uint32_t ttl;
		char txt[512];
		size_t o = 0;

		if ((p = skip_name(buf, len, p)) < 0 || p + 10 > len)
			return;
		type = (unsigned)(buf[p] << 8 | buf[p + 1]);
		ttl = (uint32_t)buf[p + 4] << 24 | (uint32_t)buf[p + 5] << 16 |
		      (uint32_t)buf[p + 6] << 8 | buf[p + 7];
		rdlen = (unsigned)(buf[p + 8] << 8 | buf[p + 9]);
		p += 10;
		if (p + rdlen > len)
			return;
		if (type == ns_t_txt) {
			/* One record is a sequence of character-strings, read
			 * as one text (RFC 7489 section 6.6.3 step 3). */
			for (long q = p; q < p + (long)rdlen;) {
				unsigned sl = buf[q++];

				for (unsigned k = 0; k < sl && q < p + (long)rdlen; k++, q++)
					if (o + 1 < sizeof(txt))
						txt[o++] = (char)buf[q];
			}
			txt[o] = '\0';
			if (strncasecmp(txt, "v=DMARC1", 8) == 0 &&
			    (txt[8] == ';' || txt[8] == ' ' || txt[8] == '\0')) {
				a->nrec++;
				snprintf(a->record, sizeof(a->record), "%s", txt);
				if (ttl < a->ttl)
					a->ttl = ttl;
			}
		}
		p += rdlen;
	}
}

static void
on_answer(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
	struct answer *a = arg;

	(void)timeouts;
	a->done = 1;
	a->status = status;
	if (status == ARES_SUCCESS && abuf != NULL)
		parse_txt(a, abuf, alen);
}

/* Runs the channel until a->done; c-ares bounds it by timeout x tries. */
static void
wait_answer(struct dmarc *d, struct answer *a)
{
	while (!a->done) {
		ares_socket_t socks[ARES_GETSOCK_MAXNUM];
		struct pollfd pfd[ARES_GETSOCK_MAXNUM];
		struct timeval tv, *tvp;
		int bits = ares_getsock(d->ch, socks, ARES_GETSOCK_MAXNUM), n = 0, ms;

		for (int i = 0; i < ARES_GETSOCK_MAXNUM; i++) {
			/* c-ares's own macros shift a signed 1 into the sign bit. */
			unsigned rd = ((unsigned)bits >> i) & 1u;
			unsigned wr = ((unsigned)bits >> (i + ARES_GETSOCK_MAXNUM)) & 1u;

			if (!rd && !wr)
				continue;
			pfd[n].fd = socks[i];
			pfd[n].events = (short)((rd ? POLLIN : 0) | (wr ? POLLOUT : 0));
			pfd[n].revents = 0;
			n++;
		}
		tvp = ares_timeout(d->ch, NULL, &tv);
		ms = tvp ? (int)(tvp->tv_sec * 1000 + tvp->tv_usec / 1000) : 1000;
		if (poll(pfd, (nfds_t)n, ms) <= 0) {
			ares_process_fd(d->ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
			continue;
		}
		for (int i = 0; i < n; i++)
			ares_process_fd(d->ch,
			                (pfd[i].revents & (POLLIN | POLLERR | POLLHUP))
			                    ? pfd[i].fd
			                    : ARES_SOCKET_BAD,
			                (pfd[i].revents & POLLOUT) ? pfd[i].fd : ARES_SOCKET_BAD);
	}
}

/* Sends the TXT query for _dmarc.domain; the answer lands in *a. */
static void
query_start(struct dmarc *d, const char *domain, struct answer *a)
{
	char name[300];

	memset(a, 0, sizeof(*a));
	snprintf(name, sizeof(name), "_dmarc.%s", domain);
	ares_query(d->ch, name, ns_c_in, ns_t_txt, on_answer, a);
}

/* Waits for *a. Returns 1 with a record, 0 when there is none (NXDOMAIN,
 * no TXT, no DMARC TXT, or more than one), -1 on failure. */
static int
query_end(struct dmarc *d, const char *domain, struct answer *a)
{
	wait_answer(d, a);
	if (a->status == ARES_ENOTFOUND || a->status == ARES_ENODATA)
		return 0;
	if (a->status != ARES_SUCCESS) {
		log_warnx("dmarc: _dmarc.%s: %s", domain, ares_strerror(a->status));
		return -1;
	}
	return a->nrec == 1;
}

static struct dmarc_entry *
cache_slot(struct dmarc *d, const char *domain)
{
	unsigned h = 5381;

	for (const char *p = domain; *p; p++)
		h = h * 33 + (unsigned char)*p;
	return &d->cache[h % DMARC_CACHE];
}

static void
lower(char *out, size_t len, const char *in)
{
	snprintf(out, len, "%s", in);
	for (char *p = out; *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
}

/* The cached entry for domain when it is still fresh, else NULL. */
static struct dmarc_entry *
cached(struct dmarc *d, const char *domain, time_t now)
{
	struct dmarc_entry *e = cache_slot(d, domain);

	return strcmp(e->domain, domain) == 0 && e->expires > now ? e : NULL;
}

/* Keeps the outcome of a lookup of domain: rc < 0 a failure, else the
 * policy pol ("" for none) found with the answer a. Returns the TTL. */
static int64_t
store(struct dmarc *d, const char *domain, int rc, const char *pol, const struct answer *a,
      time_t now)
{
	struct dmarc_entry *e = cache_slot(d, domain);
	int64_t ttl;

	snprintf(e->domain, sizeof(e->domain), "%s", domain);
	if (rc < 0) {
		e->failed = 1;
		e->policy[0] = '\0';
		e->expires = now + DMARC_TTL_FAILED;
		return DMARC_TTL_FAILED;
	}
	if (pol == NULL)
		pol = "";
	ttl = *pol ? (a->ttl < DMARC_TTL_MIN ? DMARC_TTL_MIN : a->ttl) : DMARC_TTL_NORECORD;
	snprintf(e->policy, sizeof(e->policy), "%s", pol);
	e->failed = 0;
	e->expires = now + ttl;
	log_debug("dmarc: %s: policy=%s ttl=%lld", domain, *pol ? pol : "(no record)",
	          (long long)ttl);
	return ttl;
}

int
dmarc_lookup(void *arg, const char *from_domain, char *policy, size_t policylen, int64_t *ttl)
{
	struct dmarc *d = arg;
	char domain[256];
	const char *one = domain;
	struct dmarc_entry *e;
	time_t now = time(NULL);

	lower(domain, sizeof(domain), from_domain);
	if ((e = cached(d, domain, now)) == NULL) {
		/* A batch of one; it leaves its answer (or failure) cached. */
		dmarc_prefetch(d, &one, 1);
		now = time(NULL);
		if ((e = cached(d, domain, now)) == NULL)
			return -1;
	}
	if (e->failed)
		return -1;
	snprintf(policy, policylen, "%s", e->policy);
	*ttl = e->expires - now;
	return 0;
}

/* One domain of dmarc_prefetch(). */
struct pending {
	char domain[256], org[256];
	struct answer a;
	int rc;
	const char *pol;
};

int
dmarc_prefetch(void *arg, const char *const *domains, size_t n)
{
	struct dmarc *d = arg;
	struct pending *p;
	size_t np = 0;
	time_t now = time(NULL);

	if (n == 0 || (p = calloc(n, sizeof(*p))) == NULL)
		return 0;
	/* Round 1: every From domain not in the cache, all queries in flight
	 * at once. */
	for (size_t i = 0; i < n; i++) {
		char dom[256];
		int dup = 0;

		lower(dom, sizeof(dom), domains[i]);
		if (dom[0] == '\0' || cached(d, dom, now) != NULL)
			continue;
		for (size_t j = 0; j < np && !dup; j++)
			dup = strcmp(p[j].domain, dom) == 0;
		if (dup)
			continue;
		snprintf(p[np].domain, sizeof(p[np].domain), "%s", dom);
		query_start(d, p[np].domain, &p[np].a);
		np++;
	}
	for (size_t i = 0; i < np; i++) {
		p[i].rc = query_end(d, p[i].domain, &p[i].a);
		p[i].pol = p[i].rc == 1 ? post_dmarc_record_policy(p[i].a.record, 0) : "";
	}
	/* Round 2: the organizational domains of those without a record. */
	for (size_t i = 0; i < np; i++) {
		if (p[i].rc != 0)
			continue;
		post_org_domain(p[i].domain, p[i].org, sizeof(p[i].org));
		if (strcmp(p[i].org, p[i].domain) == 0)
			p[i].org[0] = '\0';
		else
			query_start(d, p[i].org, &p[i].a);
	}
	for (size_t i = 0; i < np; i++) {
		if (p[i].rc != 0 || p[i].org[0] == '\0')
			continue;
		if ((p[i].rc = query_end(d, p[i].org, &p[i].a)) >= 0)
			p[i].pol = p[i].rc == 1 ? post_dmarc_record_policy(p[i].a.record, 1) : "";
	}
	now = time(NULL);
	for (size_t i = 0; i < np; i++)
		store(d, p[i].domain, p[i].rc, p[i].pol, &p[i].a, now);
	free(p);
	return (int)np;
}
