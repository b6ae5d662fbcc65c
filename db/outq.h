/*
 * outq.h - queue ids, and adding a message with explicit recipients to the
 * outbound queue (notices, confirmations, DSNs). Posts to a whole list are
 * added by the list engine with one INSERT ... SELECT from members instead.
 */
#ifndef FANMAIL_OUTQ_H
#define FANMAIL_OUTQ_H

#include <stddef.h>
#include <stdint.h>

#include "db/db.h"

#define DB_QID_LEN 17 /* 16 hex digits and the NUL */

/* A new queue id, unique across processes: the time in microseconds and a
 * per-process counter mixed with the pid. Thread-safe. */
void db_qid_make(char out[DB_QID_LEN]);

struct outq_rcpt {
	const char *addr;   /* envelope recipient */
	const char *domain; /* its domain, lower-cased */
	int64_t member_id;  /* 0 when not a member */
};

struct outq_msg {
	int64_t list_id;      /* 0: none */
	int64_t spool_id;     /* 0: none */
	const char *kind;     /* post, notice, dsn, probe, digest */
	const char *env_from; /* "" for the null sender */
	int verp;
	const void *body; /* the whole message, CRLF line ends */
	size_t len;
	int64_t lifetime; /* seconds until undelivered recipients fail */
};

/* Adds m with its n recipients. Runs inside the caller's transaction when
 * there is one, else in its own. On success writes the queue id to qid and
 * the row id to *msg_id (either may be NULL). */
int db_outq_add(struct db *db, const struct outq_msg *m, const struct outq_rcpt *rcpts, size_t n,
                char qid[DB_QID_LEN], int64_t *msg_id);

#endif
