/*
 * spool.c - inserting accepted messages, the engine's walk over them (next,
 * load, recipients, finish), and the list addresses RCPT is checked
 * against.
 */
#include "db/spool.h"
#include "db/db_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int
insert_rows(struct db *db, const struct spool_msg *m, int64_t *id)
{
	static const char msg_sql[] =
	    "INSERT INTO spool (qid, received, client, helo, mail_from, size)"
	    " VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
	static const char body_sql[] = "INSERT INTO spool_body (id, message) VALUES (?1, ?2)";
	static const char rcpt_sql[] = "INSERT INTO spool_rcpt (spool_id, rcpt, list_id, role,"
	                               " extension) VALUES (?1, ?2, ?3, ?4, ?5)";
	sqlite3_stmt *st;
	int64_t sid;
	int rc;

	if ((st = db_stmt(db, msg_sql)) == NULL)
		return -1;
	sqlite3_bind_text(st, 1, m->qid, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, m->received);
	sqlite3_bind_text(st, 3, m->client, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, m->helo, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, m->mail_from, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 6, (int64_t)m->len);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return db_fail(db, rc, "spool message");
	sid = sqlite3_last_insert_rowid(db->sql);
	if ((st = db_stmt(db, body_sql)) == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, sid);
	sqlite3_bind_blob64(st, 2, m->body, m->len, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return db_fail(db, rc, "spool message");
	for (size_t i = 0; i < m->nrcpt; i++) {
		const struct spool_rcpt *r = &m->rcpts[i];

		if ((st = db_stmt(db, rcpt_sql)) == NULL)
			return -1;
		sqlite3_bind_int64(st, 1, sid);
		sqlite3_bind_text(st, 2, r->rcpt, -1, SQLITE_STATIC);
		if (r->list_id > 0)
			sqlite3_bind_int64(st, 3, r->list_id);
		sqlite3_bind_text(st, 4, r->role, -1, SQLITE_STATIC);
		if (r->extension != NULL)
			sqlite3_bind_text(st, 5, r->extension, -1, SQLITE_STATIC);
		rc = sqlite3_step(st);
		sqlite3_reset(st);
		if (rc != SQLITE_DONE)
			return db_fail(db, rc, "spool recipient");
	}
	if (id != NULL)
		*id = sid;
	return 0;
}

/* 4 KB pages: 40 MB of WAL at most before the spool writer checkpoints
 * itself (the others do it at SQLite's default of 1000 pages). */
#define SPOOL_CHECKPOINT_PAGES 10000

/* SQLite's own busy handler sleeps 1, 2, 5, 10 ms... between tries: a
 * lock freed after 0.3 ms is taken after 1 ms or 3, and every client of
 * the group commit waits as long. The spool writer tries again every
 * 100 us instead, for as long as the others would (5 s). */
#define SPOOL_BUSY_SLEEP_US 100

static int
spool_busy(void *arg, int count)
{
	static __thread struct timespec t0;
	struct db *db = arg;
	struct timespec now;

	if (db->cancel != NULL && db->cancel(db->cancel_arg))
		return 0;
	clock_gettime(CLOCK_MONOTONIC, &now);
	if (count == 0)
		t0 = now;
	else if ((now.tv_sec - t0.tv_sec) * 1000 + (now.tv_nsec - t0.tv_nsec) / 1000000 >=
	         DB_BUSY_TIMEOUT_MS)
		return 0;
	usleep(SPOOL_BUSY_SLEEP_US);
	return 1;
}

int
db_spool_tune(struct db *db, int (*cancel)(void *arg), void *arg)
{
	char sql[64];

	db->cancel = cancel;
	db->cancel_arg = arg;
	sqlite3_busy_handler(db->sql, spool_busy, db);
	snprintf(sql, sizeof(sql), "PRAGMA wal_autocheckpoint = %d", SPOOL_CHECKPOINT_PAGES);
	return db_exec(db, sql);
}

int
db_spool_insert(struct db *db, const struct spool_msg *m, int64_t *id)
{
	int own = sqlite3_get_autocommit(db->sql);

	if (own) {
		if (db_begin(db) < 0)
			return -1;
		if (insert_rows(db, m, id) < 0) {
			db_rollback(db);
			return -1;
		}
		if (db_commit(db) < 0)
			return -1;
		db_ok(db);
		return 0;
	}
	if (db_savepoint(db) < 0)
		return -1;
	if (insert_rows(db, m, id) < 0) {
		db_undo_savepoint(db);
		return -1;
	}
	if (db_release_savepoint(db) < 0)
		return -1;
	db_ok(db);
	return 0;
}

/* ---- the engine's walk ---- */

int
db_engine_next(struct db *db, int64_t after, int64_t *id)
{
	static const char sql[] = "SELECT id FROM spool WHERE state = 'new' AND id > ?1"
	                          " ORDER BY id LIMIT 1";
	sqlite3_stmt *st = db_stmt(db, sql);
	int rc;

	*id = 0;
	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, after);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*id = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return db_fail(db, rc, "next spool entry");
	db_ok(db);
	return 0;
}

int
db_engine_load(struct db *db, int64_t id, struct db_engine_entry *e)
{
	static const char sql[] = "SELECT s.qid, s.mail_from, s.received, s.state, b.message"
	                          " FROM spool s JOIN spool_body b ON b.id = s.id WHERE s.id = ?1";
	sqlite3_stmt *st = db_stmt(db, sql);
	int rc;

	memset(e, 0, sizeof(*e));
	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, id);
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		sqlite3_reset(st);
		if (rc == SQLITE_DONE)
			return db_failf(db, DB_NOTFOUND, "spool entry %lld: not found",
			                (long long)id);
		return db_fail(db, rc, "load spool entry");
	}
	e->id = id;
	snprintf(e->qid, sizeof(e->qid), "%s", (const char *)sqlite3_column_text(st, 0));
	e->mail_from = db_col_dup(st, 1);
	e->received = sqlite3_column_int64(st, 2);
	e->state = db_col_dup(st, 3);
	e->len = (size_t)sqlite3_column_bytes(st, 4);
	e->message = malloc(e->len + 1);
	if (e->message != NULL) {
		if (e->len)
			memcpy(e->message, sqlite3_column_blob(st, 4), e->len);
		e->message[e->len] = '\0';
	}
	sqlite3_reset(st);
	if (e->mail_from == NULL || e->state == NULL || e->message == NULL) {
		db_engine_entry_free(e);
		return db_failf(db, DB_ERR, "load spool entry: out of memory");
	}
	db_ok(db);
	return 0;
}

void
db_engine_entry_free(struct db_engine_entry *e)
{
	free(e->mail_from);
	free(e->state);
	free(e->message);
	e->mail_from = e->state = e->message = NULL;
}

int
db_engine_rcpts(struct db *db, int64_t id, struct db_engine_rcpt **rcpts, size_t *n)
{
	static const char sql[] = "SELECT r.rcpt, l.id, l.local, l.domain, r.role, r.extension"
	                          " FROM spool_rcpt r LEFT JOIN lists l ON l.id = r.list_id"
	                          " WHERE r.spool_id = ?1 ORDER BY r.rowid";
	sqlite3_stmt *st = db_stmt(db, sql);
	struct db_engine_rcpt *v = NULL;
	size_t cnt = 0;
	int rc;

	*rcpts = NULL;
	*n = 0;
	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, id);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct db_engine_rcpt *nv = realloc(v, (cnt + 1) * sizeof(*v));

		if (nv == NULL)
			break;
		v = nv;
		v[cnt].rcpt = db_col_dup(st, 0);
		v[cnt].list_id = sqlite3_column_int64(st, 1);
		v[cnt].local = db_col_dup(st, 2);
		v[cnt].domain = db_col_dup(st, 3);
		v[cnt].role = db_col_dup(st, 4);
		v[cnt].extension =
		    sqlite3_column_type(st, 5) == SQLITE_NULL ? NULL : db_col_dup(st, 5);
		cnt++;
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		db_engine_rcpts_free(v, cnt);
		if (rc == SQLITE_ROW)
			return db_failf(db, DB_ERR, "spool recipients: out of memory");
		return db_fail(db, rc, "spool recipients");
	}
	*rcpts = v;
	*n = cnt;
	db_ok(db);
	return 0;
}

void
db_engine_rcpts_free(struct db_engine_rcpt *rcpts, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(rcpts[i].rcpt);
		free(rcpts[i].local);
		free(rcpts[i].domain);
		free(rcpts[i].role);
		free(rcpts[i].extension);
	}
	free(rcpts);
}

int
db_engine_finish(struct db *db, int64_t id, const char *state, const char *outcome)
{
	static const char sql[] = "UPDATE spool SET state = ?2, outcome = ?3, processed = ?4"
	                          " WHERE id = ?1";
	sqlite3_stmt *st = db_stmt(db, sql);
	int rc;

	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_text(st, 2, state, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, outcome, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, db_now());
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return db_fail(db, rc, "finish spool entry");
	db_ok(db);
	return 0;
}

/* ---- retention ---- */

int
db_purge_spool(struct db *db, int64_t before, int limit)
{
	/* spool_done is the partial index of processed entries by time. */
	static const char sql[] =
	    "DELETE FROM spool WHERE id IN (SELECT id FROM spool WHERE state = 'done'"
	    " AND processed < ?1 AND id NOT IN (SELECT spool_id FROM holds"
	    " WHERE state = 'held' AND spool_id IS NOT NULL) ORDER BY processed LIMIT ?2)";

	return db_delete_before(db, sql, before, limit, "purging processed spool entries");
}
