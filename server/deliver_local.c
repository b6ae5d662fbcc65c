/*
 * deliver_local.c - delivery to this server's own list addresses (see
 * deliver_internal.h): a batch for one of our list domains never goes out
 * over the network; the writer puts its rows into the inbound spool in
 * its results transaction, each recipient resolved to its list and role,
 * and an unknown address fails 5.1.1.
 */
#include "server/deliver_internal.h"

#include "conf/conf.h"
#include "db/db.h"
#include "db/lists.h"
#include "db/queue.h"
#include "db/spool.h"
#include "lists/listaddr.h"
#include "server/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Delivers the rows of local job j into the inbound spool (in the writer's
 * transaction) and fills in their results. */
int
local_deliver(struct worker *w, struct job *j)
{
	const struct conf *c = w->dl->conf;
	struct qmsg *m = j->m;
	struct dsn_acc body = {NULL, 0};
	struct spool_rcpt *sr;
	struct spool_msg sm;
	struct db_qmsg qm;
	char qid[DB_QID_LEN], from[600], reply[700];
	int64_t sid;
	int nsr = 0, rc = 0;

	if (db_queue_msg(w->db, m->id, &qm, copy_orig, &body) < 0 || body.orig == NULL) {
		free(body.orig);
		return db_status(w->db) == DB_NOTFOUND ? 0 : -1;
	}
	if (qm.personal) {
		/* A personal message goes one recipient a batch: that
		 * member's copy. */
		size_t clen = 0;
		char *copy = personal_copy(w->dl, qm.list_id, qm.env_from, body.orig, body.len,
		                           j->res[0].to, &clen);

		free(body.orig);
		if (copy == NULL)
			return -1;
		body.orig = copy;
		body.len = clen;
	}
	if ((sr = calloc((size_t)j->nres, sizeof(*sr))) == NULL) {
		free(body.orig);
		return -1;
	}
	for (int i = 0; i < j->nres; i++) {
		struct wres *r = &j->res[i];
		struct listaddr_match lm;

		if (listaddr_find(w->db, r->to, &lm) == 1) {
			sr[nsr].rcpt = r->to;
			sr[nsr].list_id = lm.list_id;
			sr[nsr].role = listaddr_role_name(lm.role);
			sr[nsr].extension = lm.ext ? strndup(lm.ext, lm.ext_len) : NULL;
			nsr++;
			r->state = DB_Q_SENT;
		} else {
			snprintf(reply, sizeof(reply), "550 5.1.1 <%s>: no such list address here",
			         r->to);
			r->state = DB_Q_FAILED;
			r->reply = strdup(reply);
			r->diag = strdup(reply);
			r->rcpt = strdup(r->to);
			snprintf(r->status, sizeof(r->status), "5.1.1");
		}
	}
	if (nsr > 0) {
		db_qid_make(qid);
		if (m->verp && m->env_from[0] != '\0')
			verp_sender(&w->dl->key, m->env_from, j->res[0].to, from, sizeof(from));
		else
			snprintf(from, sizeof(from), "%s", m->env_from);
		memset(&sm, 0, sizeof(sm));
		sm.qid = qid;
		sm.received = db_now();
		sm.client = "localhost[127.0.0.1]";
		sm.helo = c->hostname;
		sm.mail_from = from;
		sm.body = body.orig;
		sm.len = body.len;
		sm.rcpts = sr;
		sm.nrcpt = (size_t)nsr;
		rc = db_spool_insert(w->db, &sm, &sid);
		snprintf(reply, sizeof(reply), "250 2.0.0 delivered to the inbound spool as %s",
		         qid);
	}
	for (int i = 0; i < j->nres; i++) {
		struct wres *r = &j->res[i];
		if (rc == 0 && strcmp(r->state, DB_Q_SENT) == 0)
			r->reply = strdup(reply);
		if (rc == 0)
			log_info("%s: to=<%s>, relay=local, delay=%.1f, dsn=%s, status=%s (%s)",
			         m->qid, r->to, wall_now() - (double)m->created,
			         strcmp(r->state, DB_Q_SENT) == 0 ? "2.0.0" : "5.1.1",
			         strcmp(r->state, DB_Q_SENT) == 0 ? "sent" : "bounced", r->reply);
	}
	for (int i = 0; i < nsr; i++)
		free((char *)sr[i].extension);
	free(sr);
	free(body.orig);
	return rc;
}

/* A batch for one of our own list domains: the writer puts it into the
 * inbound spool. */
void
batch_local(struct batch *b)
{
	struct job *j = results_job(b);
	struct deliver *dl = b->d->dl;

	j->local = 1;
	j->m = b->m;
	pthread_mutex_lock(&dl->mc.mu);
	b->m->refs++;
	pthread_mutex_unlock(&dl->mc.mu);
	for (int i = 0; i < b->n; i++) {
		struct wres *w = &j->res[j->nres++];
		w->id = b->rows[i].id;
		w->msg_id = b->m->id;
		w->attempts = b->rows[i].attempts + 1;
		w->state = DB_Q_QUEUED;
		if ((w->to = strdup(b->rows[i].rcpt)) == NULL)
			fatalx("out of memory");
	}
	batch_finish(b, j);
}
