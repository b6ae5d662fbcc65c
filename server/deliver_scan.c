/*
 * deliver_scan.c - the queue scan (see deliver_internal.h): lists the
 * domains with due rows, activates each (its exchangers looked up while
 * its first page of rows is read), turns pages of rows into batches, and
 * decides when the next scan runs. The reader thread's side is here too:
 * it lists due domains, reads pages of due rows and loads their messages.
 */
#include "server/deliver_internal.h"

#include "conf/conf.h"
#include "db/db.h"
#include "db/lists.h"
#include "db/queue.h"
#include "server/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define DOMAIN_LIST_PAGE 256
#define DNS_MAX_OUT 32 /* domains being resolved at once */

static void scan_continue(struct deliver *dl);

static unsigned
hash_str(const char *s)
{
	unsigned h = 2166136261u;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h;
}

struct names_acc {
	struct job *j;
	int cap;
};

static int
add_name(void *arg, const char *name)
{
	struct names_acc *a = arg;

	if (a->j->nnames == a->cap) {
		int cap = a->cap ? a->cap * 2 : 64;
		char **p = realloc(a->j->names, (size_t)cap * sizeof(*p));
		if (p == NULL)
			return 1;
		a->j->names = p;
		a->cap = cap;
	}
	if ((a->j->names[a->j->nnames] = strdup(name)) == NULL)
		return 1;
	a->j->nnames++;
	return 0;
}

struct page_acc {
	struct job *j;
	struct worker *w;
	int cap;
};

static void
add_row(void *arg, const struct db_qrow *r)
{
	struct page_acc *a = arg;
	struct job *j = a->j;
	struct row *row;

	if (j->nrows == a->cap) {
		int cap = a->cap ? a->cap * 2 : 64;
		struct row *p = realloc(j->rows, (size_t)cap * sizeof(*p));
		if (p == NULL)
			return;
		j->rows = p;
		a->cap = cap;
	}
	row = &j->rows[j->nrows];
	row->id = r->id;
	row->rcpt = strdup(r->rcpt);
	row->attempts = r->attempts;
	row->next_attempt = r->next_attempt;
	row->m = NULL;
	/* The message is loaded after the statement is done (see below). */
	row->m = (struct qmsg *)(intptr_t)r->msg_id;
	if (row->rcpt != NULL)
		j->nrows++;
}

static void
reader_page(struct worker *w, struct job *j)
{
	struct page_acc a = {j, w, 0};
	struct dom *d = j->d;

	if (j->cur_next < 0) {
		const char *def = w->dl->conf->default_list_domain;
		int r = db_queue_local_domain(w->db, d->name);
		j->is_local = r > 0 || (def != NULL && strcasecmp(def, d->name) == 0);
	}
	if (db_queue_page(w->db, d->name, j->cur_next, j->cur_id, j->now, j->limit, add_row, &a) <
	    0) {
		log_warnx("queue: reading due recipients of %s: %s", d->name, db_errmsg(w->db));
		j->failed = 1;
	}
	j->limit = j->failed ? 0 : j->limit;
	for (int i = 0; i < j->nrows; i++) {
		int64_t mid = (int64_t)(intptr_t)j->rows[i].m;
		j->rows[i].m = mc_get(&w->dl->mc, w->db, mid);
		if (j->rows[i].m == NULL)
			log_warnx("queue: message %lld of a due recipient: %s", (long long)mid,
			          db_errmsg(w->db));
	}
}

void *
reader_main(void *arg)
{
	struct worker *w = arg;
	struct job *list, *j, *next;

	while ((list = worker_take(w)) != NULL) {
		for (j = list; j != NULL; j = next) {
			next = job_next(j);
			j->link.next = NULL;
			if (j->kind == J_DOMAINS) {
				struct names_acc a = {j, 0};
				/* A scan starts: a rotated one-click key is
				 * seen here (a query of a few rows). */
				if (j->after[0] == '\0')
					dkc_new_scan(&w->dl->dk); /* a rotated DKIM key */
				if (j->after[0] == '\0' && personal_keys_reload(w->dl, w->db) < 0)
					log_warnx("queue: loading the one-click keys: %s",
					          db_errmsg(w->db));
				if (db_queue_domains(w->db, j->after, j->now, j->limit, add_name,
				                     &a) < 0) {
					log_warnx("queue: listing due domains: %s",
					          db_errmsg(w->db));
					j->failed = 1;
				}
			} else if (j->kind == J_PAGE) {
				reader_page(w, j);
			} else if (j->kind == J_NEXT_DUE) {
				if (db_queue_next_due(w->db, j->now, &j->when) < 0)
					j->failed = 1;
			}
			done_post(w->dl, j);
		}
	}
	return NULL;
}

/* --- domains --- */

static struct dom *
dom_find(struct deliver *dl, const char *name, int create)
{
	unsigned h = hash_str(name) % DOM_BUCKETS;
	struct dom *d;

	for (d = dl->doms[h]; d != NULL; d = d->hnext)
		if (strcmp(d->name, name) == 0)
			return d;
	if (!create)
		return NULL;
	if ((d = calloc(1, sizeof(*d))) == NULL || (d->name = strdup(name)) == NULL)
		fatalx("out of memory");
	d->dl = dl;
	d->limit = (int)dl->conf->domain_concurrency;
	if (d->limit < 1)
		d->limit = 1;
	TAILQ_INIT(&d->ready);
	d->hnext = dl->doms[h];
	dl->doms[h] = d;
	dl->ndoms++;
	return d;
}

/* Forgets a domain that has nothing going on and no throttling to remember. */
static void
dom_maybe_free(struct dom *d)
{
	struct deliver *dl = d->dl;
	struct dom **pp;

	if (d->active || d->pending_writes > 0 || d->conns > 0 || d->waiting || d->resolving ||
	    d->loading || d->throttle_level > 0 || d->pause_until > (int64_t)time(NULL))
		return;
	for (pp = &dl->doms[hash_str(d->name) % DOM_BUCKETS]; *pp != NULL; pp = &(*pp)->hnext)
		if (*pp == d) {
			*pp = d->hnext;
			break;
		}
	dl->ndoms--;
	dns_mx_unref(d->mx);
	if (d->pause_ev != NULL)
		event_free(d->pause_ev);
	free(d->name);
	free(d);
}

static void on_mx(void *arg, struct dns_mx *mx);

static void
resolve(struct dom *d)
{
	struct deliver *dl = d->dl;

	dl->dns_out++;
	if (dl->relay_name != NULL)
		dns_resolve_mx(dl->dns, dl->relay_name, 1, on_mx, d);
	else
		dns_resolve_mx(dl->dns, d->name, 0, on_mx, d);
}

static void
on_mx(void *arg, struct dns_mx *mx)
{
	struct dom *d = arg;
	struct deliver *dl = d->dl;
	struct dom *next;

	dl->dns_out--;
	if ((next = TAILQ_FIRST(&dl->dns_wait)) != NULL) {
		TAILQ_REMOVE(&dl->dns_wait, next, dnslink);
		resolve(next);
	}
	d->resolving = 0;
	log_debug("queue: %s: %d exchanger(s), status %d (%.3f)", d->name, mx->nhost, mx->status,
	          wall_now());
	dns_mx_ref(mx);
	d->mx = mx;
	pump(d);
	dom_check_done(d);
}

void
request_page(struct dom *d)
{
	struct deliver *dl = d->dl;
	struct job *j;

	if (d->loading || d->eof || dl->stopping)
		return;
	d->loading = 1;
	j = job_new(J_PAGE, d);
	j->cur_next = d->cur_next;
	j->cur_id = d->cur_id;
	j->now = d->now;
	j->limit = (int)dl->conf->max_rcpt_per_transaction * 2;
	if (j->limit < 50)
		j->limit = 50;
	if (j->limit > 1000)
		j->limit = 1000;
	worker_post(&dl->reader, j);
}

static void
activate(struct dom *d)
{
	struct deliver *dl = d->dl;

	d->active = 1;
	d->again = 0;
	d->eof = 0;
	d->cur_next = -1;
	d->cur_id = 0;
	d->now = (int64_t)time(NULL);
	dl->nactive++;
	dns_mx_unref(d->mx);
	d->mx = NULL;
	d->resolving = 1;
	request_page(d);
	if (dl->dns_out >= DNS_MAX_OUT) {
		/* Not all at once: a burst of thousands of queries gets
		 * dropped by resolvers, and the domains deferred. */
		TAILQ_INSERT_TAIL(&dl->dns_wait, d, dnslink);
		return;
	}
	resolve(d);
}

void
dom_check_done(struct dom *d)
{
	struct deliver *dl = d->dl;

	if (d->active && d->eof && !d->loading && !d->resolving && d->nready == 0 &&
	    d->open == NULL && d->conns == 0) {
		d->active = 0;
		dl->nactive--;
		/* Refill in chunks: each listing is a round trip to the
		 * reader, and so is the first page of each domain it lists. */
		if (dl->scan_blocked && !dl->list_out &&
		    dl->max_active - dl->nactive >= dl->max_active / 4) {
			dl->scan_blocked = 0;
			scan_continue(dl);
		}
	}
	if (!d->active && d->pending_writes == 0) {
		if (d->again && !dl->stopping)
			activate(d);
		else
			dom_maybe_free(d);
	}
}

static void
close_open(struct dom *d)
{
	if (d->open == NULL)
		return;
	TAILQ_INSERT_TAIL(&d->ready, d->open, link);
	d->nready++;
	d->open = NULL;
}

void
on_page(struct job *j)
{
	struct dom *d = j->d;
	struct deliver *dl = d->dl;
	int maxr = (int)dl->conf->max_rcpt_per_transaction;

	if (maxr < 1)
		maxr = 1;
	d->loading = 0;
	if (j->cur_next < 0)
		d->local = j->is_local;
	log_debug("queue: %s: page of %d row(s) (%.3f)", d->name, j->nrows, wall_now());
	if (j->failed || j->nrows < j->limit)
		d->eof = 1;
	for (int i = 0; i < j->nrows; i++) {
		struct row *r = &j->rows[i];
		d->cur_next = r->next_attempt;
		d->cur_id = r->id;
		if (r->m == NULL || r->m->body == NULL) {
			/* Gone (deleted) or unreadable: leave the row alone. */
			mc_put(&dl->mc, r->m);
			free(r->rcpt);
			continue;
		}
		if (d->open != NULL && (d->open->m != r->m || d->open->n == d->open->max))
			close_open(d);
		/* Each row holds its own reference on the message. */
		if (d->open == NULL)
			d->open = batch_new(d, r->m, r->m->verp || r->m->personal ? 1 : maxr);
		batch_add(d->open, r);
	}
	free(j->rows);
	j->rows = NULL;
	if (d->eof)
		close_open(d);
	pump(d);
	dom_check_done(d);
}

/* --- scans --- */

void
on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct deliver *dl = arg;

	dl->timer_at = 0;
	scan_start(dl);
}

/* Makes sure a scan starts by time t (epoch seconds). */
void
wake_at(struct deliver *dl, int64_t t)
{
	int64_t now = (int64_t)time(NULL);
	struct timeval tv;

	if (t <= now)
		t = now + 1;
	if (dl->timer_at != 0 && dl->timer_at <= t)
		return;
	dl->timer_at = t;
	tv.tv_sec = t - now;
	tv.tv_usec = 0;
	evtimer_add(dl->timer, &tv);
}

static void
scan_continue(struct deliver *dl)
{
	struct job *j;
	int room = dl->max_active - dl->nactive;

	if (room <= 0) {
		dl->scan_blocked = 1;
		return;
	}
	j = job_new(J_DOMAINS, NULL);
	snprintf(j->after, sizeof(j->after), "%s", dl->scan_after);
	j->now = (int64_t)time(NULL);
	j->limit = room < DOMAIN_LIST_PAGE ? room : DOMAIN_LIST_PAGE;
	dl->list_out = 1;
	worker_post(&dl->reader, j);
}

void
scan_start(struct deliver *dl)
{
	if (dl->stopping)
		return;
	if (dl->scanning) {
		dl->scan_again = 1;
		return;
	}
	dl->scanning = 1;
	dl->scan_again = 0;
	dl->scan_after[0] = '\0';
	scan_continue(dl);
}

void
scan_domains_done(struct deliver *dl, struct job *j)
{
	dl->list_out = 0;
	log_debug("queue: scan listed %d domain(s) with due mail (%.3f)", j->nnames, wall_now());
	for (int i = 0; i < j->nnames; i++) {
		struct dom *d = dom_find(dl, j->names[i], 1);
		if (d->active || d->pending_writes > 0)
			d->again = 1;
		else
			activate(d);
		snprintf(dl->scan_after, sizeof(dl->scan_after), "%s", j->names[i]);
		free(j->names[i]);
	}
	free(j->names);
	j->names = NULL;
	if (!j->failed && j->nnames == j->limit) {
		scan_continue(dl);
		return;
	}
	/* The pass is over: when is the next row due? */
	dl->scanning = 0;
	struct job *nd = job_new(J_NEXT_DUE, NULL);
	nd->now = (int64_t)time(NULL);
	worker_post(&dl->reader, nd);
	if (dl->scan_again)
		scan_start(dl);
}

void
on_next_due(struct deliver *dl, struct job *j)
{
	long long wait = dl->conf->queue_run_interval > 0 ? dl->conf->queue_run_interval : 60;

	wake_at(dl, (int64_t)time(NULL) + wait);
	if (!j->failed && j->when > 0)
		wake_at(dl, j->when);
}
