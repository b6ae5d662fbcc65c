/*
 * queue.c - the outbound queue's SQL (see queue.h): queue ids, adding
 * messages (explicit recipients, and the fan-out of a post), the
 * scheduler's walk and results, and `fanmail queue`.
 */
#include "db/queue.h"
#include "db/db_internal.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#define PENDING "state IN ('queued', 'deferred')"

/* ---- adding messages ---- */

void
db_qid_make(char out[DB_QID_LEN])
{
	static atomic_uint counter;
	struct timeval tv;
	unsigned mix;

	gettimeofday(&tv, NULL);
	mix = ((unsigned)getpid() * 2654435761u) ^ atomic_fetch_add(&counter, 1);
	snprintf(out, DB_QID_LEN, "%08llX%05lX%03X", (unsigned long long)tv.tv_sec & 0xffffffffULL,
	         (unsigned long)tv.tv_usec & 0xfffff, mix & 0xfff);
}

static int
insert_msg(struct db *db, const struct outq_msg *m, char qid[DB_QID_LEN], int64_t *id)
{
	static const char sql[] =
	    "INSERT INTO out_msg (qid, list_id, spool_id, kind, env_from, verp, created,"
	    " expires, size, body, personal) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)";
	int64_t now = db_now();
	sqlite3_stmt *st;
	int rc;

	for (int tries = 0; tries < 5; tries++) {
		if ((st = db_stmt(db, sql)) == NULL)
			return -1;
		db_qid_make(qid);
		sqlite3_bind_text(st, 1, qid, -1, SQLITE_TRANSIENT);
		if (m->list_id > 0)
			sqlite3_bind_int64(st, 2, m->list_id);
		if (m->spool_id > 0)
			sqlite3_bind_int64(st, 3, m->spool_id);
		sqlite3_bind_text(st, 4, m->kind, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 5, m->env_from, -1, SQLITE_STATIC);
		sqlite3_bind_int(st, 6, m->verp);
		sqlite3_bind_int64(st, 7, now);
		sqlite3_bind_int64(st, 8, now + m->lifetime);
		sqlite3_bind_int64(st, 9, (int64_t)m->len);
		sqlite3_bind_blob(st, 10, m->body, (int)m->len, SQLITE_STATIC);
		sqlite3_bind_int(st, 11, m->personal);
		rc = sqlite3_step(st);
		sqlite3_reset(st);
		if (rc == SQLITE_DONE) {
			*id = sqlite3_last_insert_rowid(db->sql);
			return 0;
		}
		/* A queue id taken in the same microsecond: draw again. */
		if (rc != SQLITE_CONSTRAINT_UNIQUE)
			return db_fail(db, rc, "queue message");
	}
	return db_failf(db, DB_ERR, "queue message: no free queue id");
}

int
db_outq_add(struct db *db, const struct outq_msg *m, const struct outq_rcpt *rcpts, size_t n,
            char qid[DB_QID_LEN], int64_t *msg_id)
{
	static const char sql[] = "INSERT INTO deliveries (msg_id, rcpt, domain, member_id)"
	                          " VALUES (?1, ?2, ?3, ?4)";
	char qbuf[DB_QID_LEN];
	int own = sqlite3_get_autocommit(db->sql);
	int64_t id = 0;
	sqlite3_stmt *st;
	int rc;

	if (own && db_begin(db) < 0)
		return -1;
	if (insert_msg(db, m, qid ? qid : qbuf, &id) < 0)
		goto fail;
	for (size_t i = 0; i < n; i++) {
		if ((st = db_stmt(db, sql)) == NULL)
			goto fail;
		sqlite3_bind_int64(st, 1, id);
		sqlite3_bind_text(st, 2, rcpts[i].addr, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 3, rcpts[i].domain, -1, SQLITE_STATIC);
		if (rcpts[i].member_id > 0)
			sqlite3_bind_int64(st, 4, rcpts[i].member_id);
		rc = sqlite3_step(st);
		sqlite3_reset(st);
		if (rc != SQLITE_DONE) {
			db_fail(db, rc, "queue recipient");
			goto fail;
		}
	}
	if (own && db_commit(db) < 0)
		return -1;
	if (msg_id != NULL)
		*msg_id = id;
	db_ok(db);
	return 0;
fail:
	if (own)
		db_rollback(db);
	return -1;
}

int
db_engine_queue_post(struct db *db, const struct db_engine_post *p, char qid[DB_QID_LEN],
                     int64_t *msg_id, int64_t *nrcpt)
{
	/* The fan-out: one statement, rows streamed by SQLite from the
	 * members index straight into deliveries. */
#define POST_RCPTS                                                                                 \
	" FROM members WHERE list_id = ?2 AND status = 'enabled' AND delivery = 'regular'"         \
	" AND (?3 IS NULL OR addr_key <> ?3 OR self_copy <> 0)"
	static const char sql[] = "INSERT INTO deliveries (msg_id, rcpt, domain, member_id)"
	                          " SELECT ?1, address, domain, id" POST_RCPTS;
	/* The same members, asked first whether there is any (?1 unused). */
	static const char sql_any[] = "SELECT EXISTS (SELECT 1" POST_RCPTS ")";
#undef POST_RCPTS
	struct outq_msg m = {
	    .list_id = p->list_id,
	    .spool_id = p->spool_id,
	    .kind = "post",
	    .env_from = p->env_from,
	    .verp = p->verp,
	    .personal = p->personal,
	    .body = p->body,
	    .len = p->len,
	    .lifetime = p->lifetime,
	};
	int own = sqlite3_get_autocommit(db->sql);
	int64_t id = 0;
	sqlite3_stmt *st;
	int rc;

	if (own && db_begin(db) < 0)
		return -1;
	/* Nobody to send to (a list without members, or only the poster):
	 * no message is written to the queue for nothing. */
	if ((st = db_stmt(db, sql_any)) == NULL)
		goto fail;
	sqlite3_bind_int64(st, 2, p->list_id);
	db_bind_text(st, 3, p->poster_key);
	rc = sqlite3_step(st);
	*nrcpt = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
	sqlite3_reset(st);
	if (rc != SQLITE_ROW) {
		db_fail(db, rc, "count post recipients");
		goto fail;
	}
	if (*nrcpt == 0) {
		qid[0] = '\0';
		goto done;
	}
	if (db_outq_add(db, &m, NULL, 0, qid, &id) < 0)
		goto fail;
	if ((st = db_stmt(db, sql)) == NULL)
		goto fail;
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int64(st, 2, p->list_id);
	db_bind_text(st, 3, p->poster_key);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		db_fail(db, rc, "queue post recipients");
		goto fail;
	}
	*nrcpt = sqlite3_changes(db->sql);
done:
	if (own && db_commit(db) < 0)
		return -1;
	if (msg_id != NULL)
		*msg_id = id;
	db_ok(db);
	return 0;
fail:
	if (own)
		db_rollback(db);
	return -1;
}

/* ---- the scheduler ---- */

int
db_queue_domains(struct db *db, const char *after, int64_t now, int limit,
                 int (*cb)(void *arg, const char *domain), void *arg)
{
	/* The covering index lists each domain's earliest row first, so
	 * MIN() costs one index entry per domain plus its scan. Held messages
	 * are filtered by the page walk, not here. */
	static const char sql[] =
	    "SELECT domain FROM deliveries WHERE " PENDING " AND domain > ?1 GROUP BY domain"
	    " HAVING MIN(next_attempt) <= ?2 ORDER BY domain LIMIT ?3";
	sqlite3_stmt *st = db_stmt(db, sql);
	int n = 0, rc;

	if (st == NULL)
		return -1;
	sqlite3_bind_text(st, 1, after, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, now);
	sqlite3_bind_int(st, 3, limit);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		n++;
		if (cb(arg, (const char *)sqlite3_column_text(st, 0)) != 0) {
			rc = SQLITE_DONE;
			break;
		}
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return db_fail(db, rc, "list due domains");
	db_ok(db);
	return n;
}

int
db_queue_next_due(struct db *db, int64_t now, int64_t *when)
{
	static const char sql[] =
	    "SELECT MIN(next_attempt) FROM deliveries WHERE " PENDING " AND next_attempt > ?1";
	sqlite3_stmt *st = db_stmt(db, sql);
	int rc;

	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, now);
	*when = 0;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*when = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	if (rc != SQLITE_ROW)
		return db_fail(db, rc, "next due time");
	db_ok(db);
	return 0;
}

int
db_queue_page(struct db *db, const char *domain, int64_t after_next, int64_t after_id, int64_t now,
              int limit, void (*cb)(void *arg, const struct db_qrow *r), void *arg)
{
	static const char sql[] =
	    "SELECT d.id, d.msg_id, d.rcpt, d.attempts, d.next_attempt"
	    " FROM deliveries d JOIN out_msg m ON m.id = d.msg_id"
	    " WHERE d.domain = ?1 AND d.state IN ('queued', 'deferred')"
	    " AND (d.next_attempt, d.id) > (?2, ?3) AND d.next_attempt <= ?4 AND m.held = 0"
	    " ORDER BY d.next_attempt, d.id LIMIT ?5";
	sqlite3_stmt *st = db_stmt(db, sql);
	struct db_qrow r;
	int n = 0, rc;

	if (st == NULL)
		return -1;
	sqlite3_bind_text(st, 1, domain, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, after_next);
	sqlite3_bind_int64(st, 3, after_id);
	sqlite3_bind_int64(st, 4, now);
	sqlite3_bind_int(st, 5, limit);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		r.id = sqlite3_column_int64(st, 0);
		r.msg_id = sqlite3_column_int64(st, 1);
		r.rcpt = (const char *)sqlite3_column_text(st, 2);
		r.attempts = sqlite3_column_int(st, 3);
		r.next_attempt = sqlite3_column_int64(st, 4);
		cb(arg, &r);
		n++;
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return db_fail(db, rc, "read due recipients");
	db_ok(db);
	return n;
}

int
db_queue_msg(struct db *db, int64_t id, struct db_qmsg *m,
             void (*body_cb)(void *arg, const unsigned char *body, size_t len), void *arg)
{
	static const char sql[] = "SELECT id, qid, list_id, kind, env_from, verp, held, created,"
	                          " expires, size, body, personal FROM out_msg WHERE id = ?1";
	static const char sql_nobody[] = "SELECT id, qid, list_id, kind, env_from, verp, held,"
	                                 " created, expires, size, NULL, personal FROM out_msg"
	                                 " WHERE id = ?1";
	sqlite3_stmt *st = db_stmt(db, body_cb ? sql : sql_nobody);
	int rc;

	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, id);
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		sqlite3_reset(st);
		if (rc == SQLITE_DONE)
			return db_failf(db, DB_NOTFOUND, "queue message %lld: not found",
			                (long long)id);
		return db_fail(db, rc, "read queue message");
	}
	m->id = sqlite3_column_int64(st, 0);
	snprintf(m->qid, sizeof(m->qid), "%s", (const char *)sqlite3_column_text(st, 1));
	m->list_id = sqlite3_column_int64(st, 2);
	snprintf(m->kind, sizeof(m->kind), "%s", (const char *)sqlite3_column_text(st, 3));
	snprintf(m->env_from, sizeof(m->env_from), "%s", (const char *)sqlite3_column_text(st, 4));
	m->verp = sqlite3_column_int(st, 5);
	m->held = sqlite3_column_int(st, 6);
	m->created = sqlite3_column_int64(st, 7);
	m->expires = sqlite3_column_int64(st, 8);
	m->size = sqlite3_column_int64(st, 9);
	m->personal = sqlite3_column_int(st, 11);
	if (body_cb != NULL)
		body_cb(arg, sqlite3_column_blob(st, 10), (size_t)sqlite3_column_bytes(st, 10));
	sqlite3_reset(st);
	db_ok(db);
	return 0;
}

int
db_queue_results_connection(struct db *db)
{
	return db_exec(db, "PRAGMA synchronous = NORMAL");
}

int
db_queue_set_result(struct db *db, int64_t id, const char *state, int attempts,
                    int64_t next_attempt, const char *reply)
{
	static const char sql[] = "UPDATE deliveries SET state = ?2, attempts = ?3,"
	                          " next_attempt = ?4, last_reply = ?5, updated = ?6 WHERE id = ?1";
	sqlite3_stmt *st = db_stmt(db, sql);
	int rc;

	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_text(st, 2, state, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 3, attempts);
	sqlite3_bind_int64(st, 4, next_attempt);
	sqlite3_bind_text(st, 5, reply, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 6, db_now());
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return db_fail(db, rc, "record delivery result");
	return 0;
}

/* One pass over each message's rows (deliveries_by_msg). */
static const char summary_cols[] =
    "SELECT m.qid, m.kind, m.env_from, m.created, m.expires, m.size, m.held,"
    " TOTAL(d.state = 'queued'), TOTAL(d.state = 'deferred'), TOTAL(d.state = 'sent'),"
    " TOTAL(d.state = 'failed')"
    " FROM out_msg m LEFT JOIN deliveries d ON d.msg_id = m.id";

static void
read_summary(sqlite3_stmt *st, struct db_qsummary *s)
{
	s->qid = (const char *)sqlite3_column_text(st, 0);
	s->kind = (const char *)sqlite3_column_text(st, 1);
	s->env_from = (const char *)sqlite3_column_text(st, 2);
	s->created = sqlite3_column_int64(st, 3);
	s->expires = sqlite3_column_int64(st, 4);
	s->size = sqlite3_column_int64(st, 5);
	s->held = sqlite3_column_int(st, 6);
	s->queued = sqlite3_column_int64(st, 7);
	s->deferred = sqlite3_column_int64(st, 8);
	s->sent = sqlite3_column_int64(st, 9);
	s->failed = sqlite3_column_int64(st, 10);
}

int
db_queue_list(struct db *db, void (*cb)(void *arg, const struct db_qsummary *s), void *arg)
{
	static char sql[sizeof(summary_cols) + 32];
	struct db_qsummary s;
	sqlite3_stmt *st;
	int rc;

	if (sql[0] == '\0')
		snprintf(sql, sizeof(sql), "%s GROUP BY m.id ORDER BY m.id", summary_cols);
	if ((st = db_stmt(db, sql)) == NULL)
		return -1;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		read_summary(st, &s);
		cb(arg, &s);
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return db_fail(db, rc, "list the queue");
	db_ok(db);
	return 0;
}

int
db_queue_count_by_state(struct db *db, struct db_queue_counts *c)
{
	static const char sql[] =
	    "SELECT TOTAL(state = 'queued'), TOTAL(state = 'deferred'), TOTAL(state = 'sent'),"
	    " TOTAL(state = 'failed'),"
	    " COUNT(DISTINCT CASE WHEN " PENDING " THEN msg_id END) FROM deliveries";
	sqlite3_stmt *st = db_stmt(db, sql);
	int rc;

	memset(c, 0, sizeof(*c));
	if (st == NULL)
		return -1;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		c->queued = sqlite3_column_int64(st, 0);
		c->deferred = sqlite3_column_int64(st, 1);
		c->sent = sqlite3_column_int64(st, 2);
		c->failed = sqlite3_column_int64(st, 3);
		c->messages = sqlite3_column_int64(st, 4);
	}
	sqlite3_reset(st);
	if (rc != SQLITE_ROW)
		return db_fail(db, rc, "count the queue");
	db_ok(db);
	return 0;
}

int
db_queue_show(struct db *db, const char *qid,
              void (*msg_cb)(void *arg, const struct db_qsummary *s),
              void (*rcpt_cb)(void *arg, const struct db_qrcpt *r), void *arg)
{
	static char sql[sizeof(summary_cols) + 32];
	static const char rsql[] =
	    "SELECT d.rcpt, d.state, d.attempts, d.next_attempt, d.updated, d.last_reply"
	    " FROM deliveries d JOIN out_msg m ON m.id = d.msg_id WHERE m.qid = ?1 ORDER BY d.id";
	struct db_qsummary s;
	struct db_qrcpt r;
	sqlite3_stmt *st;
	int rc;

	if (sql[0] == '\0')
		snprintf(sql, sizeof(sql), "%s WHERE m.qid = ?1 GROUP BY m.id", summary_cols);
	if ((st = db_stmt(db, sql)) == NULL)
		return -1;
	sqlite3_bind_text(st, 1, qid, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE) {
		sqlite3_reset(st);
		return db_failf(db, DB_NOTFOUND, "no message %s in the queue", qid);
	}
	if (rc != SQLITE_ROW) {
		sqlite3_reset(st);
		return db_fail(db, rc, "show queue message");
	}
	read_summary(st, &s);
	msg_cb(arg, &s);
	sqlite3_reset(st);
	if ((st = db_stmt(db, rsql)) == NULL)
		return -1;
	sqlite3_bind_text(st, 1, qid, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		r.rcpt = (const char *)sqlite3_column_text(st, 0);
		r.state = (const char *)sqlite3_column_text(st, 1);
		r.attempts = sqlite3_column_int(st, 2);
		r.next_attempt = sqlite3_column_int64(st, 3);
		r.updated = sqlite3_column_int64(st, 4);
		r.last_reply = (const char *)sqlite3_column_text(st, 5);
		rcpt_cb(arg, &r);
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return db_fail(db, rc, "show queue recipients");
	db_ok(db);
	return 0;
}

int
db_queue_flush(struct db *db, int64_t *n)
{
	static const char sql[] =
	    "UPDATE deliveries SET next_attempt = 0 WHERE " PENDING " AND next_attempt > 0";

	if (db_run(db, sql, "flush the queue") < 0)
		return -1;
	*n = sqlite3_changes(db->sql);
	db_ok(db);
	return 0;
}

static int
change_msg(struct db *db, const char *sql, const char *qid, int val, const char *what)
{
	sqlite3_stmt *st = db_stmt(db, sql);
	int rc;

	if (st == NULL)
		return -1;
	sqlite3_bind_text(st, 1, qid, -1, SQLITE_STATIC);
	if (val >= 0)
		sqlite3_bind_int(st, 2, val);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return db_fail(db, rc, what);
	if (sqlite3_changes(db->sql) == 0)
		return db_failf(db, DB_NOTFOUND, "no message %s in the queue", qid);
	db_ok(db);
	return 0;
}

int
db_queue_delete(struct db *db, const char *qid)
{
	static const char sql[] = "DELETE FROM out_msg WHERE qid = ?1";

	return change_msg(db, sql, qid, -1, "delete queue message");
}

int
db_queue_hold(struct db *db, const char *qid, int held)
{
	static const char sql[] = "UPDATE out_msg SET held = ?2 WHERE qid = ?1";

	return change_msg(db, sql, qid, held ? 1 : 0, "hold queue message");
}

/* ---- retention ---- */

/* The oldest finished message: none of its rows is still to be sent.
 * deliveries_by_msg finds a message's rows; out_msg is one row a message. */
static int
oldest_finished(struct db *db, int64_t before, int64_t *msg_id)
{
	static const char sql[] = "SELECT m.id FROM out_msg m WHERE m.created < ?1 AND NOT EXISTS"
	                          " (SELECT 1 FROM deliveries d WHERE d.msg_id = m.id"
	                          " AND d.state IN ('queued', 'deferred')) ORDER BY m.id LIMIT 1";
	sqlite3_stmt *st = db_stmt(db, sql);
	int rc;

	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, before);
	rc = sqlite3_step(st);
	*msg_id = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
	sqlite3_reset(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return db_fail(db, rc, "finding finished messages");
	return 0;
}

int
db_purge_outq_step(struct db *db, int64_t before, int chunk, int64_t *msg_id)
{
	/* Only rows that are final: a message chosen as finished stays so
	 * (nothing makes a sent or failed row due again), but checking costs
	 * nothing here and keeps a pending row from ever being dropped. */
	static const char sql_rows[] =
	    "DELETE FROM deliveries WHERE id IN (SELECT id FROM deliveries WHERE msg_id = ?1"
	    " AND state IN ('sent', 'failed') LIMIT ?2)";
	static const char sql_msg[] = "DELETE FROM out_msg WHERE id = ?1 AND NOT EXISTS"
	                              " (SELECT 1 FROM deliveries WHERE msg_id = ?1)";
	sqlite3_stmt *st;
	int rc, n;

	if (*msg_id == 0) {
		if (oldest_finished(db, before, msg_id) < 0)
			return -1;
		if (*msg_id == 0) {
			db_ok(db);
			return 0;
		}
	}
	if ((st = db_stmt(db, sql_rows)) == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, *msg_id);
	sqlite3_bind_int(st, 2, chunk);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return db_fail(db, rc, "purging delivery rows");
	if ((n = sqlite3_changes(db->sql)) > 0) {
		db_ok(db);
		return n;
	}
	if ((st = db_stmt(db, sql_msg)) == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, *msg_id);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return db_fail(db, rc, "purging a finished message");
	n = sqlite3_changes(db->sql);
	*msg_id = 0;
	db_ok(db);
	/* 0 rows and no message: it has a pending row after all (it cannot,
	 * see above), or it is gone already; the next call looks again. */
	return n > 0 ? n : 1;
}
