/*
 * msgcache.c - the delivery scheduler's message cache (see msgcache.h).
 */
#include "server/msgcache.h"

#include "db/queue.h"
#include "lists/personal.h"
#include "mail/downgrade.h"
#include "server/deliver_dkim.h"
#include "server/smtp_out.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MSG_CACHE_BYTES (8 * 1024 * 1024)

/* --- message cache --- */

void
mc_init(struct msg_cache *mc)
{
	pthread_mutex_init(&mc->mu, NULL);
	TAILQ_INIT(&mc->lru);
}

static void
mc_unlink(struct msg_cache *mc, struct qmsg *m)
{
	struct qmsg **pp = &mc->h[(uint64_t)m->id % MSG_BUCKETS];

	for (; *pp != NULL; pp = &(*pp)->hnext)
		if (*pp == m) {
			*pp = m->hnext;
			break;
		}
}

static void
qmsg_free(struct qmsg *m)
{
	free(m->body);
	for (int f = 0; f < 4; f++)
		free(m->alt[f]);
	dkc_put(m->ks);
	pthread_mutex_destroy(&m->pbh_mu);
	free(m);
}

static void
mc_trim(struct msg_cache *mc)
{
	struct qmsg *m;

	while (mc->idle_bytes > MSG_CACHE_BYTES && (m = TAILQ_FIRST(&mc->lru)) != NULL) {
		TAILQ_REMOVE(&mc->lru, m, lru);
		mc->idle_bytes -= m->bytes;
		mc_unlink(mc, m);
		qmsg_free(m);
	}
}

struct load {
	struct msg_cache *mc;
	struct db *db;
	struct qmsg *m;
	const struct db_qmsg *qm; /* filled before the body is read */
};

static void
body_prepare(void *arg, const unsigned char *body, size_t len)
{
	struct load *l = arg;
	struct qmsg *m = l->m;
	size_t size;

	/* The keys of the message's domain, read with the body: the loop
	 * never reads the store. */
	if (l->mc->dk != NULL)
		m->ks = dkc_get(l->mc->dk, l->db, l->qm, (const char *)body, len);
	if (l->qm->personal) {
		m->pbh_same = !personal_has_marker((const char *)body, len);
		/* Each copy is rendered, downgraded and prepared when it is
		 * sent (deliver_personal.c): the stored form is kept. */
		if ((m->body = malloc(len + 1)) != NULL) {
			memcpy(m->body, body, len);
			m->body[len] = '\0';
			m->blen = m->bytes = len;
		}
		return;
	}
	/* Signed here, once per message and form, after every rewrite and
	 * downgrade: every batch sends these bytes. */
	m->body = dk_prepare(l->mc->signer, m->ks, (const char *)body, len, NULL, &m->blen, &size);
	m->bytes = m->blen;
	if (m->ks != NULL)
		l->m->size = (int64_t)size; /* with its signatures: for SIZE= */
	m->need = downgrade_scan((const char *)body, len);
	/* Each form a receiver may need, made once per message here on the
	 * reader thread, not per transaction on the loop. */
	for (int f = 1; m->need != 0 && f < 4; f++) {
		char *d;
		size_t dlen;
		/* Only the forms choose_body() can ask for. */
		if ((f & m->need) == 0 || (f == 3 && m->need == DOWNGRADE_HEADERS))
			continue;
		if (downgrade_message((const char *)body, len, f, &d, &dlen, m->alt_why[f],
		                      sizeof(m->alt_why[f])) < 0)
			continue;
		m->alt[f] = dk_prepare(l->mc->signer, m->ks, d, dlen, NULL, &m->alt_len[f], &size);
		free(d);
		if (m->alt[f] == NULL)
			snprintf(m->alt_why[f], sizeof(m->alt_why[f]), "out of memory");
		m->bytes += m->alt_len[f];
	}
}

/* Takes a reference on message id, loading it with db when not cached.
 * Reader thread only (the loop only releases). */

struct qmsg *
mc_get(struct msg_cache *mc, struct db *db, int64_t id)
{
	struct qmsg *m;
	struct db_qmsg qm;
	struct load l = {mc, db, NULL, &qm};

	pthread_mutex_lock(&mc->mu);
	for (m = mc->h[(uint64_t)id % MSG_BUCKETS]; m != NULL; m = m->hnext)
		if (m->id == id)
			break;
	if (m != NULL) {
		if (m->refs++ == 0) {
			TAILQ_REMOVE(&mc->lru, m, lru);
			mc->idle_bytes -= m->bytes;
		}
		pthread_mutex_unlock(&mc->mu);
		return m;
	}
	pthread_mutex_unlock(&mc->mu);
	if ((m = calloc(1, sizeof(*m))) == NULL)
		return NULL;
	pthread_mutex_init(&m->pbh_mu, NULL);
	m->size = -1;
	l.m = m;
	if (db_queue_msg(db, id, &qm, body_prepare, &l) < 0 || m->body == NULL) {
		qmsg_free(m);
		return NULL;
	}
	m->id = id;
	m->refs = 1;
	memcpy(m->qid, qm.qid, sizeof(m->qid));
	snprintf(m->env_from, sizeof(m->env_from), "%s", qm.env_from);
	snprintf(m->kind, sizeof(m->kind), "%s", qm.kind);
	m->verp = qm.verp;
	m->personal = qm.personal;
	m->list_id = qm.list_id;
	m->created = qm.created;
	m->expires = qm.expires;
	if (m->size < 0)
		m->size = qm.size;
	pthread_mutex_lock(&mc->mu);
	m->hnext = mc->h[(uint64_t)id % MSG_BUCKETS];
	mc->h[(uint64_t)id % MSG_BUCKETS] = m;
	pthread_mutex_unlock(&mc->mu);
	return m;
}

void
mc_put(struct msg_cache *mc, struct qmsg *m)
{
	if (m == NULL)
		return;
	pthread_mutex_lock(&mc->mu);
	if (--m->refs == 0) {
		TAILQ_INSERT_TAIL(&mc->lru, m, lru);
		mc->idle_bytes += m->bytes;
		mc_trim(mc);
	}
	pthread_mutex_unlock(&mc->mu);
}

void
mc_free_all(struct msg_cache *mc)
{
	for (int i = 0; i < MSG_BUCKETS; i++) {
		struct qmsg *m, *mn;
		for (m = mc->h[i]; m != NULL; m = mn) {
			mn = m->hnext;
			qmsg_free(m);
		}
		mc->h[i] = NULL;
	}
	pthread_mutex_destroy(&mc->mu);
}
