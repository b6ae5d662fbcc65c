/*
 * deliver_pool.c - batches onto connections (see deliver_internal.h):
 * pump() hands a domain's ready batches connections, reusing idle pooled
 * ones to its most preferred exchangers, within domain_concurrency (made
 * adaptive by throttling after 421 / 4.7.x replies) and
 * delivery_max_connections, and while the writer keeps up; it chooses the
 * form of the body each server can take and reports the replies per row.
 */
#include "server/deliver_internal.h"

#include "conf/conf.h"
#include "db/queue.h"
#include "mail/downgrade.h"
#include "mail/dsn.h"
#include "server/log.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_TARGETS 10

/* --- throttling --- */

static int
is_throttle(int code, const char *text)
{
	char st[16];

	if (code == 421)
		return 1;
	return code / 100 == 4 && dsn_status_of(text, st) == 0 && strncmp(st, "4.7.", 4) == 0;
}

static void
on_pause_end(evutil_socket_t fd, short what, void *arg)
{
	struct dom *d = arg;

	pump(d);
	dom_check_done(d);
}

static void
throttle(struct dom *d)
{
	const struct conf *c = d->dl->conf;
	long long delay = c->throttle_delay > 0 ? c->throttle_delay : 1;
	struct timeval tv;

	d->limit = d->limit > 1 ? d->limit / 2 : 1;
	d->ok_txns = 0;
	for (int i = 0; i < d->throttle_level && delay < 3600; i++)
		delay *= 2;
	if (d->throttle_level < 10)
		d->throttle_level++;
	d->pause_until = (int64_t)time(NULL) + delay;
	if (d->pause_ev == NULL)
		d->pause_ev = evtimer_new(d->dl->base, on_pause_end, d);
	tv.tv_sec = delay;
	tv.tv_usec = 0;
	evtimer_add(d->pause_ev, &tv);
	log_info("%s: throttled after a 421/4.7.x reply: %d connection(s), pausing %llds", d->name,
	         d->limit, delay);
}

static void
unthrottle_step(struct dom *d)
{
	int max = (int)d->dl->conf->domain_concurrency;

	/* Additive increase: one more connection after `limit` good
	 * transactions in a row. */
	if (d->limit >= max) {
		d->throttle_level = 0;
		return;
	}
	if (++d->ok_txns >= d->limit * 4) {
		d->limit++;
		d->ok_txns = 0;
		if (d->limit >= max)
			d->throttle_level = 0;
	}
}

/* --- connections --- */

static void
on_idle_close(void *arg, struct smtp_sess *s)
{
	struct pooled *p = arg;
	struct deliver *dl = p->dl;

	TAILQ_REMOVE(&dl->idle, p, link);
	dl->nidle--;
	free(p);
	smtp_out_close(s);
	conn_released(dl);
}

static void
pool_put(struct deliver *dl, struct smtp_sess *s)
{
	struct pooled *p = calloc(1, sizeof(*p));

	if (p == NULL) {
		smtp_out_close(s);
		return;
	}
	p->s = s;
	p->dl = dl;
	TAILQ_INSERT_TAIL(&dl->idle, p, link);
	dl->nidle++;
	smtp_out_idle(s, (int)dl->conf->connection_idle_timeout, on_idle_close, p);
}

static int
same_addr(const struct sockaddr_storage *a, const struct dns_addr *b)
{
	if (a->ss_family != b->ss.ss_family)
		return 0;
	if (a->ss_family == AF_INET) {
		const struct sockaddr_in *x = (const void *)a, *y = (const void *)&b->ss;
		return x->sin_addr.s_addr == y->sin_addr.s_addr && x->sin_port == y->sin_port;
	}
	const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)&b->ss;
	return memcmp(&x->sin6_addr, &y->sin6_addr, 16) == 0 && x->sin6_port == y->sin6_port;
}

static void
set_port(struct dns_addr *a, int port)
{
	if (a->ss.ss_family == AF_INET)
		((struct sockaddr_in *)&a->ss)->sin_port = htons((uint16_t)port);
	else if (a->ss.ss_family == AF_INET6)
		((struct sockaddr_in6 *)&a->ss)->sin6_port = htons((uint16_t)port);
}

static int
dest_port(struct deliver *dl)
{
	return dl->relay_name ? atoi(dl->relay_port) : (int)dl->conf->delivery_port;
}

/* An idle connection to one of the domain's most preferred exchangers. */
static struct pooled *pool_find(struct dom *d);

static int
pool_has(struct dom *d)
{
	return pool_find(d) != NULL;
}

static struct smtp_sess *
pool_take(struct dom *d)
{
	struct pooled *p = pool_find(d);
	struct smtp_sess *s;

	if (p == NULL)
		return NULL;
	s = p->s;
	TAILQ_REMOVE(&d->dl->idle, p, link);
	d->dl->nidle--;
	free(p);
	return s;
}

static struct pooled *
pool_find(struct dom *d)
{
	struct deliver *dl = d->dl;
	struct dns_mx *mx = d->mx;
	struct pooled *p;
	int port = dest_port(dl);

	if (TAILQ_EMPTY(&dl->idle) || mx->nhost == 0)
		return NULL;
	for (int h = 0; h < mx->nhost && mx->hosts[h].pref == mx->hosts[0].pref; h++) {
		for (int a = 0; a < mx->hosts[h].naddr; a++) {
			struct dns_addr want = mx->hosts[h].addrs[a];
			set_port(&want, port);
			TAILQ_FOREACH(p, &dl->idle, link)
			{
				if (same_addr(smtp_out_addr(p->s), &want))
					return p;
			}
		}
	}
	return NULL;
}

static void on_txn(void *arg, struct smtp_sess *s, struct smtp_txn *t, int ok);

/* The form of b's message that the server can take (RFC 6531 3.4: UTF-8
 * headers only with SMTPUTF8; RFC 6152: an 8-bit body only with
 * 8BITMIME), or why none can be sent there. */
static void
choose_body(struct batch *b, int ext)
{
	struct qmsg *m = b->m;
	struct smtp_txn *t = &b->txn;
	int f = 0;

	t->body = m->body;
	t->body_len = m->blen;
	t->size = (size_t)m->size;
	t->refuse_code = 0;
	if ((m->need & DOWNGRADE_HEADERS) && !(ext & SMTP_EXT_SMTPUTF8))
		f |= DOWNGRADE_HEADERS;
	if ((m->need & DOWNGRADE_BODY) && !(ext & SMTP_EXT_8BITMIME))
		f |= DOWNGRADE_BODY | (ext & SMTP_EXT_SMTPUTF8 ? 0 : DOWNGRADE_HEADERS);
	/* What goes out holds 8-bit octets: say so when the server can
	 * take them (SMTPUTF8 implies 8BITMIME, RFC 6531 3.1). */
	t->smtputf8 = (m->need & DOWNGRADE_HEADERS) && !(f & DOWNGRADE_HEADERS);
	t->body_8bit = (ext & SMTP_EXT_8BITMIME) && (m->need & ~f) != 0;
	if (f == 0)
		return;
	if (m->alt[f] == NULL) {
		if ((f & DOWNGRADE_HEADERS) && strcmp(m->alt_why[f], "out of memory") != 0) {
			t->refuse_code = 553;
			snprintf(t->refuse, sizeof(t->refuse),
			         "553 5.6.7 the server does not support SMTPUTF8, which this "
			         "message needs: %s",
			         m->alt_why[f]);
		} else {
			t->refuse_code = 451;
			snprintf(t->refuse, sizeof(t->refuse),
			         "451 4.3.0 the message could not be converted for this server: %s",
			         m->alt_why[f]);
		}
		return;
	}
	t->body = m->alt[f];
	t->body_len = m->alt_len[f];
	t->size = m->alt_len[f] > 3 ? m->alt_len[f] - 3 : 0;
}

static void
batch_send(struct batch *b, struct smtp_sess *s)
{
	b->sess = s;
	for (int i = 0; i < b->n; i++)
		b->rcpts[i] = b->rows[i].rcpt;
	if (b->m->verp && b->m->env_from[0] != '\0')
		verp_sender(&b->d->dl->key, b->m->env_from, b->rows[0].rcpt, b->from,
		            sizeof(b->from));
	else
		snprintf(b->from, sizeof(b->from), "%s", b->m->env_from);
	b->txn.from = b->from;
	b->txn.nrcpt = b->n;
	b->txn.rcpts = b->rcpts;
	b->txn.results = b->res;
	if (b->m->personal && b->m->ks != NULL && b->d->dl->signq != NULL) {
		/* A copy to sign: a signing thread renders and signs it while
		 * the loop serves everything else; batch_signed() sends it. */
		struct job *j = job_new(J_SIGN, b->d);
		j->b = b;
		j->ext = smtp_out_ext(s);
		j->link.next = NULL;
		workq_post(b->d->dl->signq, &j->link);
		return;
	}
	if (b->m->personal)
		personal_choose_body(b, smtp_out_ext(s), NULL);
	else
		choose_body(b, smtp_out_ext(s));
	smtp_out_send(s, &b->txn, on_txn, b);
}

void
batch_signed(struct batch *b)
{
	smtp_out_send(b->sess, &b->txn, on_txn, b);
}

static void
log_tls(struct smtp_sess *s)
{
	const char *tls = smtp_out_tls(s);

	if (tls != NULL)
		log_info("Untrusted TLS connection established to %s: %s", smtp_out_peer(s), tls);
}

static void
on_open(void *arg, struct smtp_sess *s, int code, const char *why)
{
	struct batch *b = arg;
	struct dom *d = b->d;
	struct deliver *dl = d->dl;

	if (s == NULL) {
		if (is_throttle(code, why))
			throttle(d);
		batch_all(b, code >= 500 && !dl->relay_name ? code : 0, why,
		          code >= 500 && !dl->relay_name ? NULL : (code ? NULL : "4.4.1"));
		d->conns--;
		dl->conns--;
		conn_released(dl);
		pump(d);
		dom_check_done(d);
		return;
	}
	log_tls(s);
	batch_send(b, s);
}

static void
on_txn(void *arg, struct smtp_sess *s, struct smtp_txn *t, int ok)
{
	struct batch *b = arg;
	struct dom *d = b->d;
	struct deliver *dl = d->dl;
	struct job *j = results_job(b);
	struct batch *rest = NULL;
	int throttled = 0, uses = smtp_out_uses(s), nrcpt = b->n; /* t is b's: freed below */
	char relay[330];

	snprintf(relay, sizeof(relay), "%s", smtp_out_peer(s));
	for (int i = 0; i < b->n; i++) {
		struct smtp_result *r = &t->results[i];
		if (r->again) {
			/* "Too many recipients": not tried, so no attempt is
			 * counted; the rest go in another transaction now. */
			if (rest == NULL)
				rest = batch_new(d, b->m, b->n);
			batch_add(rest, &b->rows[i]);
			b->rows[i].rcpt = NULL;
			b->rows[i].m = NULL;
			continue;
		}
		if (is_throttle(r->code, r->text))
			throttled = 1;
		row_result(b, j, i, r->code < 0 ? 0 : r->code,
		           r->code < 0 ? "no reply from the server" : r->text, NULL, relay, uses,
		           r->ours);
	}
	batch_finish(b, j);
	if (throttled)
		throttle(d);
	else if (ok)
		unthrottle_step(d);
	if (rest != NULL) {
		log_info("%s: %s took %d of %d recipient(s) in one transaction; sending %d in "
		         "another",
		         rest->m->qid, relay, nrcpt - rest->n, nrcpt, rest->n);
		if (ok && !dl->stopping && !throttled) {
			/* Same connection, same slot. */
			batch_send(rest, s);
			dom_check_done(d);
			return;
		}
		TAILQ_INSERT_HEAD(&d->ready, rest, link);
		d->nready++;
	}
	d->conns--;
	dl->conns--;
	if (ok && !dl->stopping && uses < dl->conf->connection_reuse_limit && !throttled)
		pool_put(dl, s);
	else
		smtp_out_close(s);
	pump(d);
	conn_released(dl);
	dom_check_done(d);
}

/* Hands batch b (taken off d's ready list) a connection. */
static void
batch_start(struct dom *d, struct batch *b)
{
	struct deliver *dl = d->dl;
	struct smtp_target t[MAX_TARGETS];
	struct smtp_sess *s;
	int n = 0, port = dest_port(dl);

	d->conns++;
	dl->conns++;
	if ((s = pool_take(d)) != NULL) {
		batch_send(b, s);
		return;
	}
	for (int h = 0; h < d->mx->nhost && n < MAX_TARGETS; h++) {
		for (int a = 0; a < d->mx->hosts[h].naddr && n < MAX_TARGETS; a++) {
			struct dns_addr x = d->mx->hosts[h].addrs[a];
			set_port(&x, port);
			t[n].host = d->mx->hosts[h].name;
			t[n].ss = x.ss;
			t[n].len = x.len;
			n++;
		}
	}
	smtp_out_open(dl->base, &dl->ocfg, t, n, on_open, b);
}

/* Whether d must wait for a connection slot. Idle pooled connections
 * count against delivery_max_connections: one of d's own is reused, and
 * another domain's oldest is closed to make room. */
static int
global_full(struct dom *d)
{
	struct deliver *dl = d->dl;
	struct pooled *p;

	if (dl->conns + dl->nidle < dl->conf->delivery_max_connections)
		return 0;
	if (dl->conns >= dl->conf->delivery_max_connections)
		return 1;
	if (pool_has(d))
		return 0;
	p = TAILQ_FIRST(&dl->idle);
	TAILQ_REMOVE(&dl->idle, p, link);
	dl->nidle--;
	/* Closed at once (no QUIT), so the socket is gone before the new
	 * connection is opened and the limit holds at every instant. */
	smtp_out_abort(p->s);
	free(p);
	return 0;
}

/* Whether new transactions must wait for the writer: every result that a
 * receiver took and the writer has not committed is a recipient that a
 * crash would send to again, so their number is bounded
 * (delivery_uncommitted_max; one result job is always let through). */
static int
writer_lags(struct deliver *dl)
{
	return dl->results_out > 0 && dl->results_out >= dl->conf->delivery_uncommitted_max;
}

void
conn_released(struct deliver *dl)
{
	struct dom *d;

	/* Domains that waited for a connection slot, in turn. */
	while (dl->conns < dl->conf->delivery_max_connections && !writer_lags(dl) &&
	       (d = TAILQ_FIRST(&dl->want)) != NULL) {
		TAILQ_REMOVE(&dl->want, d, wlink);
		d->waiting = 0;
		pump(d);
		dom_check_done(d);
	}
}

static void
dns_failure(struct dom *d, struct batch *b)
{
	struct dns_mx *mx = d->mx;
	struct deliver *dl = d->dl;
	char text[400];

	if (mx->status == DNS_NULLMX) {
		snprintf(text, sizeof(text), "556 5.1.10 %s", mx->why);
		batch_all(b, 556, text, "5.1.10");
	} else if ((mx->status == DNS_NXDOMAIN || mx->status == DNS_NOHOST) && !dl->relay_name) {
		snprintf(text, sizeof(text), "550 5.4.4 %s", mx->why);
		batch_all(b, 550, text, mx->status == DNS_NXDOMAIN ? "5.1.2" : "5.4.4");
	} else {
		batch_all(b, 0, mx->why, "4.4.3");
	}
}

void
pump(struct dom *d)
{
	struct deliver *dl = d->dl;
	struct batch *b;

	if (dl->stopping)
		return;
	if (d->local) {
		while ((b = TAILQ_FIRST(&d->ready)) != NULL) {
			TAILQ_REMOVE(&d->ready, b, link);
			d->nready--;
			batch_local(b);
		}
	} else if (d->mx != NULL && d->mx->status != DNS_OK) {
		while ((b = TAILQ_FIRST(&d->ready)) != NULL) {
			TAILQ_REMOVE(&d->ready, b, link);
			d->nready--;
			dns_failure(d, b);
		}
	} else if (d->mx != NULL) {
		while ((b = TAILQ_FIRST(&d->ready)) != NULL && d->conns < d->limit &&
		       d->pause_until <= (int64_t)time(NULL)) {
			/* Also wait while the writer lags: results not yet
			 * committed are what a crash would send twice. */
			if (global_full(d) || writer_lags(dl)) {
				if (!d->waiting) {
					d->waiting = 1;
					TAILQ_INSERT_TAIL(&dl->want, d, wlink);
				}
				break;
			}
			TAILQ_REMOVE(&d->ready, b, link);
			d->nready--;
			batch_start(d, b);
		}
	}
	if (d->active && d->nready < 2 && !d->eof)
		request_page(d);
}

struct batch *
batch_new(struct dom *d, struct qmsg *m, int max)
{
	struct batch *b = calloc(1, sizeof(*b));

	if (b == NULL)
		fatalx("out of memory");
	b->d = d;
	b->m = m;
	b->max = max;
	return b;
}

void
batch_add(struct batch *b, const struct row *r)
{
	if (b->n == b->cap) {
		int cap = b->cap ? b->cap * 2 : 4;

		if (cap > b->max)
			cap = b->max;
		if ((b->rows = realloc(b->rows, (size_t)cap * sizeof(*b->rows))) == NULL ||
		    (b->rcpts = realloc(b->rcpts, (size_t)cap * sizeof(*b->rcpts))) == NULL ||
		    (b->res = realloc(b->res, (size_t)cap * sizeof(*b->res))) == NULL)
			fatalx("out of memory");
		memset(b->rcpts + b->n, 0, (size_t)(cap - b->n) * sizeof(*b->rcpts));
		memset(b->res + b->n, 0, (size_t)(cap - b->n) * sizeof(*b->res));
		b->cap = cap;
	}
	b->rows[b->n++] = *r;
}
