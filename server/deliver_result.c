/*
 * deliver_result.c - results, retries and DSNs (see deliver_internal.h):
 * on the loop, what happened to each row of a batch (sent, deferred with
 * backoff, bounced or expired) and the hand-off to the writer; on the
 * writer thread, the commit of many results in one transaction, with one
 * DSN per message per commit to its sender (per row for VERP).
 */
#include "server/deliver.h"
#include "server/deliver_internal.h"

#include "conf/conf.h"
#include "db/db.h"
#include "db/queue.h"
#include "mail/addr.h"
#include "mail/dsn.h"
#include "server/log.h"
#include "server/metrics.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

long long
deliver_backoff(int attempts, long long retry_min, long long retry_max)
{
	long long d = retry_min > 0 ? retry_min : 1;

	for (int i = 1; i < attempts && d < retry_max; i++)
		d *= 2;
	return d < retry_max ? d : retry_max;
}

static char *
lower_domain(const char *addr)
{
	const char *at = strrchr(addr, '@');
	char *d = strdup(at ? at + 1 : "");

	for (char *p = d; p && *p; p++)
		*p = (char)tolower((unsigned char)*p);
	return d;
}

void
copy_orig(void *arg, const unsigned char *body, size_t len)
{
	struct dsn_acc *a = arg;

	if ((a->orig = malloc(len + 1)) != NULL) {
		memcpy(a->orig, body, len);
		a->len = len;
	}
}

/* One DSN to env_to for the failed rows res[0..n) of message qm. */
static int
queue_dsn_to(struct worker *w, const struct db_qmsg *qm, const struct dsn_acc *a, struct wres *res,
             int n, const char *env_to)
{
	const struct conf *c = w->dl->conf;
	struct dsn_rcpt *dr;
	struct dsn_info info;
	struct outq_rcpt to;
	struct outq_msg om;
	char mid[128], qid[DB_QID_LEN], *report, *dom;
	size_t len;
	int rc = 0;

	if ((dr = calloc((size_t)n, sizeof(*dr))) == NULL)
		return -1;
	for (int i = 0; i < n; i++) {
		dr[i].addr = res[i].rcpt;
		dr[i].action = "failed";
		dr[i].status = res[i].status;
		dr[i].remote_mta = res[i].remote;
		dr[i].diag = res[i].diag ? res[i].diag : res[i].reply;
		dr[i].last_attempt = db_now();
	}
	db_qid_make(qid);
	snprintf(mid, sizeof(mid), "<%s.dsn@%s>", qid, c->hostname);
	info.reporting_mta = c->hostname;
	info.to = env_to;
	info.qid = qm->qid;
	info.message_id = mid;
	info.arrival = qm->created;
	info.now = db_now();
	report = dsn_build(&info, dr, (size_t)n, a->orig, a->len, &len);
	free(dr);
	if (report == NULL)
		return -1;
	dom = lower_domain(env_to);
	to.addr = env_to;
	to.domain = dom ? dom : "";
	to.member_id = 0;
	memset(&om, 0, sizeof(om));
	om.list_id = qm->list_id;
	om.kind = "dsn";
	om.env_from = "";
	om.body = report;
	om.len = len;
	om.lifetime = c->max_queue_lifetime;
	if (db_outq_add(w->db, &om, &to, 1, qid, NULL) < 0)
		rc = -1;
	else
		log_info("%s: sender non-delivery notification: %s", qm->qid, qid);
	free(dom);
	free(report);
	return rc;
}

/* The DSN for the failed rows res[0..n) of one message: one to its sender,
 * or, for a VERP'd message, one per row to the VERP address that row was
 * sent with (LIST-bounces+local=domain@...), so the bounce names the member
 * by its address as well as by its content. */
static int
queue_dsn(struct worker *w, struct wres *res, int n)
{
	struct db_qmsg qm;
	struct dsn_acc a = {NULL, 0};
	char to[ADDR_PATH_MAX + 64];
	int rc = 0;

	if (db_queue_msg(w->db, res[0].msg_id, &qm, copy_orig, &a) < 0)
		return db_status(w->db) == DB_NOTFOUND ? 0 : -1;
	if (qm.env_from[0] == '\0' || a.orig == NULL) {
		free(a.orig);
		return 0; /* the null sender gets no DSN (RFC 5321 6.1) */
	}
	if (!qm.verp) {
		rc = queue_dsn_to(w, &qm, &a, res, n, qm.env_from);
	} else {
		for (int i = 0; i < n && rc == 0; i++) {
			struct dsn_acc c = a;

			verp_sender(&w->dl->key, qm.env_from, res[i].rcpt, to, sizeof(to));
			/* A personal message: the DSN quotes that member's copy,
			 * never the stored form with its markers. */
			if (qm.personal &&
			    (c.orig = personal_copy(w->dl, qm.list_id, qm.env_from, a.orig, a.len,
			                            res[i].rcpt, &c.len)) == NULL) {
				free(a.orig);
				return -1;
			}
			rc = queue_dsn_to(w, &qm, &c, res + i, 1, to);
			if (c.orig != a.orig)
				free(c.orig);
		}
	}
	free(a.orig);
	return rc;
}

static int
cmp_msg(const void *a, const void *b)
{
	const struct wres *x = *(const struct wres *const *)a, *y = *(const struct wres *const *)b;

	return x->msg_id < y->msg_id ? -1 : x->msg_id > y->msg_id;
}

static int
writer_commit(struct worker *w, struct job *list, int *dsns)
{
	struct wres **failed = NULL;
	int nfailed = 0, cap = 0;

	*dsns = 0;
	if (db_begin(w->db) < 0)
		return -1;
	for (struct job *j = list; j != NULL; j = job_next(j)) {
		if (j->local) {
			/* A retry of the commit starts over. */
			for (int i = 0; i < j->nres; i++) {
				struct wres *r = &j->res[i];
				free(r->reply);
				free(r->diag);
				free(r->rcpt);
				r->reply = r->diag = r->rcpt = NULL;
				r->state = DB_Q_QUEUED;
			}
			if (local_deliver(w, j) < 0)
				goto fail;
		}
		for (int i = 0; i < j->nres; i++) {
			struct wres *r = &j->res[i];
			if (db_queue_set_result(w->db, r->id, r->state, r->attempts,
			                        r->next_attempt, r->reply) < 0)
				goto fail;
			if (r->rcpt == NULL)
				continue;
			if (nfailed == cap) {
				cap = cap ? cap * 2 : 64;
				struct wres **p = realloc(failed, (size_t)cap * sizeof(*p));
				if (p == NULL)
					goto fail;
				failed = p;
			}
			failed[nfailed++] = r;
		}
	}
	/* One DSN per message per commit, listing its failed recipients. */
	if (nfailed > 1)
		qsort(failed, (size_t)nfailed, sizeof(*failed), cmp_msg);
	for (int i = 0; i < nfailed;) {
		int k = i;
		struct wres *group;
		while (k < nfailed && failed[k]->msg_id == failed[i]->msg_id)
			k++;
		if ((group = calloc((size_t)(k - i), sizeof(*group))) == NULL)
			goto fail;
		for (int x = i; x < k; x++)
			group[x - i] = *failed[x];
		int rc = queue_dsn(w, group, k - i);
		free(group);
		if (rc < 0)
			goto fail;
		(*dsns)++;
		i = k;
	}
	free(failed);
	return db_commit(w->db);
fail:
	free(failed);
	db_rollback(w->db);
	return -1;
}

/* Counts the results just committed, by the state each row now has (a
 * local delivery's row may still be queued: not a result yet). */
static void
count_results(struct job *list)
{
	int64_t n[3] = {0, 0, 0};

	for (struct job *j = list; j != NULL; j = job_next(j))
		for (int i = 0; i < j->nres; i++) {
			const char *st = j->res[i].state;
			if (strcmp(st, DB_Q_SENT) == 0)
				n[0]++;
			else if (strcmp(st, DB_Q_DEFERRED) == 0)
				n[1]++;
			else if (strcmp(st, DB_Q_FAILED) == 0)
				n[2]++;
		}
	metrics_add(METRIC_DELIVERY_SENT, n[0]);
	metrics_add(METRIC_DELIVERY_DEFERRED, n[1]);
	metrics_add(METRIC_DELIVERY_FAILED, n[2]);
}

void *
writer_main(void *arg)
{
	struct worker *w = arg;
	struct job *list;
	int dsns;

	if (db_queue_results_connection(w->db) < 0)
		log_warnx("delivery: %s", db_errmsg(w->db));
	while ((list = worker_take(w)) != NULL) {
		double t0 = wall_now();
		int n = 0;
		for (struct job *j = list; j != NULL; j = job_next(j))
			n += j->nres;
		for (int tries = 0;; tries++) {
			if (writer_commit(w, list, &dsns) == 0) {
				log_debug("queue: committed %d result(s) in %.3f s", n,
				          wall_now() - t0);
				break;
			}
			/* Results must not be lost: wait and try again (a busy
			 * database, a full disk that an admin fixes). */
			log_warnx("queue: committing delivery results: %s (try %d)",
			          db_errmsg(w->db), tries + 1);
			sleep(tries < 5 ? 1 : 5);
		}
		list->dsns = dsns;
		count_results(list);
		for (struct job *j = list; j != NULL; j = job_next(j)) {
			if (j->local) {
				spool_hook_call(w->dl);
				break;
			}
		}
		done_post(w->dl, list);
	}
	return NULL;
}

/* --- results --- */

struct job *
results_job(struct batch *b)
{
	struct job *j = job_new(J_RESULTS, b->d);

	j->res = calloc((size_t)b->n, sizeof(*j->res));
	if (j->res == NULL)
		fatalx("out of memory");
	return j;
}

/* Records what happened to row i of batch b: code and text as the reply
 * (code 0: no reply; ours: a reply we made, not the relay's), relay as
 * "host[ip]:port" or "none". */
void
row_result(struct batch *b, struct job *j, int i, int code, const char *text, const char *dsn,
           const char *relay, int conn_use, int ours)
{
	struct deliver *dl = b->d->dl;
	const struct conf *c = dl->conf;
	struct row *r = &b->rows[i];
	struct wres *w = &j->res[j->nres++];
	double now = wall_now();
	int64_t inow = (int64_t)now;
	char status[16], why[700], cu[32] = "";
	const char *state, *word;
	int perm = code >= 500;

	if (dsn != NULL)
		snprintf(status, sizeof(status), "%s", dsn);
	else if (code == 0 || dsn_status_of(text, status) < 0)
		snprintf(status, sizeof(status), "%s", perm ? "5.0.0" : "4.4.2");
	w->id = r->id;
	w->msg_id = r->m->id;
	w->attempts = r->attempts + 1;
	if (code >= 200 && code < 300) {
		state = DB_Q_SENT;
		word = "sent";
		snprintf(why, sizeof(why), "%s", text);
	} else {
		if (code > 0 && !ours && strcmp(relay, "none") != 0)
			snprintf(why, sizeof(why), "host %.*s said: %s",
			         (int)(strchr(relay, ':') ? strrchr(relay, ':') - relay
			                                  : (long)strlen(relay)),
			         relay, text);
		else
			snprintf(why, sizeof(why), "%s", text);
		if (perm) {
			state = DB_Q_FAILED;
			word = "bounced";
		} else if (inow >= r->m->expires) {
			state = DB_Q_FAILED;
			word = "expired, returned to sender";
			if (status[0] == '4')
				status[0] = '5';
		} else {
			long long next = deliver_backoff(w->attempts, c->retry_min, c->retry_max);
			state = DB_Q_DEFERRED;
			word = "deferred";
			w->next_attempt = inow + next < r->m->expires ? inow + next : r->m->expires;
		}
	}
	w->state = state;
	w->reply = strdup(why);
	if (strcmp(state, DB_Q_FAILED) == 0) {
		w->rcpt = strdup(r->rcpt);
		w->diag = code > 0 ? strdup(text) : NULL;
		w->remote = strcmp(relay, "none") ? strdup(relay) : NULL;
		if (w->remote != NULL && strchr(w->remote, '['))
			*strchr(w->remote, '[') = '\0';
		snprintf(w->status, sizeof(w->status), "%s", status);
	}
	if (conn_use > 1)
		snprintf(cu, sizeof(cu), "conn_use=%d, ", conn_use);
	log_info("%s: to=<%s>, relay=%s, %sdelay=%.1f, dsn=%s, status=%s (%s)", r->m->qid, r->rcpt,
	         relay, cu, now - (double)r->m->created, status, word, why);
}

void
batch_free(struct batch *b)
{
	struct deliver *dl = b->d->dl;

	for (int i = 0; i < b->n; i++) {
		free(b->rows[i].rcpt);
		mc_put(&dl->mc, b->rows[i].m);
	}
	free(b->rows);
	free(b->rcpts);
	free(b->res);
	free(b->pbody);
	free(b);
}

/* Hands the results of b to the writer and frees b. */
void
batch_finish(struct batch *b, struct job *j)
{
	struct dom *d = b->d;

	d->pending_writes++;
	d->dl->writes_out++;
	d->dl->results_out += j->nres;
	j->link.next = NULL;
	if (d->dl->wflush == NULL) {
		worker_post(&d->dl->writer, j);
	} else {
		if (d->dl->wpend == NULL)
			event_active(d->dl->wflush, EV_READ, 0);
		*d->dl->wpend_tail = &j->link;
		d->dl->wpend_tail = &j->link.next;
	}
	batch_free(b);
}

void
results_flush(struct deliver *dl)
{
	struct workq_item *list = dl->wpend;

	if (list == NULL)
		return;
	dl->wpend = NULL;
	dl->wpend_tail = &dl->wpend;
	workq_post(dl->writer.q, list);
}

/* Every row of b gets the same outcome (no connection, DNS trouble). */
void
batch_all(struct batch *b, int code, const char *text, const char *dsn)
{
	struct job *j = results_job(b);

	for (int i = 0; i < b->n; i++)
		row_result(b, j, i, code, text, dsn, "none", 0, 0);
	batch_finish(b, j);
}
