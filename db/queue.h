/*
 * queue.h - the outbound queue (tables out_msg and deliveries): queue ids,
 * adding a message with explicit recipients (notices, confirmations, DSNs)
 * or a post to a whole list (the fan-out), the scheduler's walk (due
 * domains, pages of due rows of one domain, messages), the results it
 * commits, and what `fanmail queue` shows and changes.
 *
 * db_engine_queue_post() is the fan-out: one out_msg row and one
 * deliveries row per enabled member with regular delivery, made by a
 * single INSERT ... SELECT from members, so no member list is ever held in
 * memory. Adding runs inside the caller's transaction when there is one.
 *
 * The scheduler reads with one connection and writes with another (WAL lets
 * both run at once); each connection is used by one thread. Strings handed
 * to callbacks point into SQLite's memory and are valid only during the
 * call.
 */
#ifndef FANMAIL_QUEUE_H
#define FANMAIL_QUEUE_H

#include <stddef.h>
#include <stdint.h>

#include "db/db.h"

/* Delivery row states, as stored. */
#define DB_Q_QUEUED "queued"
#define DB_Q_DEFERRED "deferred"
#define DB_Q_SENT "sent"
#define DB_Q_FAILED "failed"

/* ---- adding messages ---- */

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
	int personal;     /* a copy per recipient, rendered at send time (lists/personal.h) */
	const void *body; /* the whole message, CRLF line ends */
	size_t len;
	int64_t lifetime; /* seconds until undelivered recipients fail */
};

/* Adds m with its n recipients. Runs inside the caller's transaction when
 * there is one, else in its own. On success writes the queue id to qid and
 * the row id to *msg_id (either may be NULL). */
int db_outq_add(struct db *db, const struct outq_msg *m, const struct outq_rcpt *rcpts, size_t n,
                char qid[DB_QID_LEN], int64_t *msg_id);

struct db_engine_post {
	int64_t list_id;
	int64_t spool_id;     /* 0: none */
	const char *env_from; /* LIST-bounces@DOMAIN */
	const void *body;     /* the outgoing message, CRLF */
	size_t len;
	int64_t lifetime;       /* seconds until undelivered recipients fail */
	const char *poster_key; /* whose row is left out unless self_copy; NULL: none */
	int verp;               /* per-recipient envelope senders (out_msg.verp) */
	int personal;           /* per-recipient copies (out_msg.personal) */
};

/* Queues a post: *nrcpt receives the number of delivery rows made. With
 * none (no member to send to), nothing stays queued: qid is "" and
 * *msg_id 0. */
int db_engine_queue_post(struct db *db, const struct db_engine_post *p, char qid[DB_QID_LEN],
                         int64_t *msg_id, int64_t *nrcpt);

/* ---- the scheduler ---- */

/* Calls cb with each domain (in name order, after `after`) that has a row
 * due at `now` of a message that is not held, at most limit of them; stops
 * early when cb returns non-zero. Returns the number listed, or -1. */
int db_queue_domains(struct db *db, const char *after, int64_t now, int limit,
                     int (*cb)(void *arg, const char *domain), void *arg);

/* When the earliest row not yet due at `now` falls due: *when = 0 if none. */
int db_queue_next_due(struct db *db, int64_t now, int64_t *when);

struct db_qrow {
	int64_t id;
	int64_t msg_id;
	const char *rcpt;
	int attempts;
	int64_t next_attempt;
};

/* One page of the due rows of domain, in (next_attempt, id) order after the
 * cursor (after_next, after_id), of messages not held. Returns the number
 * of rows given to cb, or -1. */
int db_queue_page(struct db *db, const char *domain, int64_t after_next, int64_t after_id,
                  int64_t now, int limit, void (*cb)(void *arg, const struct db_qrow *r),
                  void *arg);

struct db_qmsg {
	int64_t id;
	char qid[24];
	int64_t list_id;
	char kind[16];
	char env_from[520];
	int verp;
	int personal;
	int held;
	int64_t created;
	int64_t expires;
	int64_t size;
};

/* Loads message id; when body_cb is given it is called once with the body
 * (valid only during the call). DB_NOTFOUND if the message is gone. */
int db_queue_msg(struct db *db, int64_t id, struct db_qmsg *m,
                 void (*body_cb)(void *arg, const unsigned char *body, size_t len), void *arg);

/* For the connection that commits delivery results: commits go to the
 * WAL without an fsync each (PRAGMA synchronous = NORMAL). A process crash
 * loses nothing; an OS crash or power loss may lose the last results, whose
 * rows are then simply due again (at-least-once, never a lost recipient:
 * the messages themselves are committed with FULL by their writers). */
int db_queue_results_connection(struct db *db);

/* Records one recipient's new state (DB_Q_*). */
int db_queue_set_result(struct db *db, int64_t id, const char *state, int attempts,
                        int64_t next_attempt, const char *reply);

/* --- for `fanmail queue` --- */

struct db_qsummary {
	const char *qid;
	const char *kind;
	const char *env_from;
	int64_t created;
	int64_t expires;
	int64_t size;
	int held;
	int64_t queued, deferred, sent, failed;
};

/* Every message, oldest first. */
int db_queue_list(struct db *db, void (*cb)(void *arg, const struct db_qsummary *s), void *arg);

struct db_qrcpt {
	const char *rcpt;
	const char *state;
	int attempts;
	int64_t next_attempt;
	int64_t updated;        /* 0: never tried */
	const char *last_reply; /* NULL: none yet */
};

/* The message qid and each of its recipients. DB_NOTFOUND if no such qid. */
int db_queue_show(struct db *db, const char *qid,
                  void (*msg_cb)(void *arg, const struct db_qsummary *s),
                  void (*rcpt_cb)(void *arg, const struct db_qrcpt *r), void *arg);

/* Makes every queued or deferred row due now; *n = rows changed. */
int db_queue_flush(struct db *db, int64_t *n);
/* Deletes message qid and its rows. DB_NOTFOUND if no such qid. */
int db_queue_delete(struct db *db, const char *qid);
/* Holds (held=1) or releases (0) message qid. DB_NOTFOUND if no such qid. */
int db_queue_hold(struct db *db, const char *qid, int held);

/* --- for /metrics --- */

struct db_queue_counts {
	int64_t queued, deferred, sent, failed; /* delivery rows by state */
	int64_t messages;                       /* messages with a row still queued or deferred */
};

/* The queue's size by state, in one statement: one pass over deliveries
 * (no index holds the state of every row, and none should: each index a
 * result moves costs about as much as the update). About 30 ms at 100,000
 * rows; it runs on the caller's own connection (the HTTP worker's), and
 * under WAL a reader blocks no writer. */
int db_queue_count_by_state(struct db *db, struct db_queue_counts *c);

/* ---- retention (retention.h runs these a chunk a transaction) ---- */

/* Deletes at most `chunk` delivery rows of one finished outbound message
 * created before `before` (the one in *msg_id when not 0, else the oldest
 * such message, whose id is left in *msg_id), or the message itself once
 * it has no rows left (then *msg_id is set to 0). Returns the number of
 * rows and messages deleted: 0 when there is nothing to purge. */
int db_purge_outq_step(struct db *db, int64_t before, int chunk, int64_t *msg_id);

#endif
