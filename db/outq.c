/*
 * outq.c - queue ids and explicit-recipient outbound messages.
 */
#include "db/outq.h"
#include "db/db_internal.h"

#include <stdatomic.h>
#include <stdio.h>
#include <sys/time.h>
#include <unistd.h>

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
	    " expires, size, body) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)";
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
