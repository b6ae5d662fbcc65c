/*
 * retention.c - purging finished and old rows (see retention.h).
 */
#include "db/retention.h"
#include "db/db_internal.h"

#include <time.h>

#define ROWS_CHUNK 5000 /* delivery rows a transaction */
#define SPOOL_CHUNK 200 /* spool entries (whole messages) a transaction */
#define EVENTS_CHUNK 2000

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

/* Runs a DELETE whose ?1 is a time and ?2 a row limit; returns how many
 * rows went, or -1. */
static int
delete_before(struct db *db, const char *sql, int64_t before, int limit, const char *what)
{
	sqlite3_stmt *st = db_stmt(db, sql);
	int rc;

	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, before);
	sqlite3_bind_int(st, 2, limit);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return db_fail(db, rc, what);
	db_ok(db);
	return sqlite3_changes(db->sql);
}

int
db_purge_spool(struct db *db, int64_t before, int limit)
{
	/* spool_done is the partial index of processed entries by time. */
	static const char sql[] =
	    "DELETE FROM spool WHERE id IN (SELECT id FROM spool WHERE state = 'done'"
	    " AND processed < ?1 AND id NOT IN (SELECT spool_id FROM holds"
	    " WHERE state = 'held' AND spool_id IS NOT NULL) ORDER BY processed LIMIT ?2)";

	return delete_before(db, sql, before, limit, "purging processed spool entries");
}

int
db_purge_bounce_events(struct db *db, int64_t before, int limit)
{
	/* A member's latest scored event is kept: the decay of the score
	 * counts from it (db_bounce_last_scored). */
	static const char sql[] =
	    "DELETE FROM bounce_events WHERE id IN (SELECT e.id FROM bounce_events e"
	    " WHERE e.time < ?1 AND (e.member_id IS NULL OR e.scored <= 0 OR e.id <"
	    " (SELECT max(l.id) FROM bounce_events l WHERE l.member_id = e.member_id"
	    " AND l.scored > 0)) ORDER BY e.id LIMIT ?2)";

	return delete_before(db, sql, before, limit, "purging old bounce events");
}

static double
mono_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Runs one chunk of step in its own transaction; returns what step did. */
static int
chunk(struct db *db, int (*step)(struct db *, int64_t, int), int64_t before, int limit)
{
	int n;

	if (db_begin(db) < 0)
		return -1;
	if ((n = step(db, before, limit)) < 0 || db_commit(db) < 0) {
		db_rollback(db);
		return -1;
	}
	return n;
}

int
db_retention_pass(struct db *db, struct db_retention *r, int64_t now, int64_t keep_queue,
                  int64_t keep_spool, int64_t keep_events, double seconds)
{
	double t0 = mono_now();
	int n;

	r->msgs = r->rows = r->spool = r->events = 0;
	while (keep_queue > 0 && mono_now() - t0 < seconds) {
		if (db_begin(db) < 0)
			return -1;
		n = db_purge_outq_step(db, now - keep_queue, ROWS_CHUNK, &r->msg_id);
		if (n < 0 || db_commit(db) < 0) {
			db_rollback(db);
			r->msg_id = 0;
			return -1;
		}
		if (n == 0)
			break;
		if (r->msg_id == 0) /* the step deleted the message */
			r->msgs++;
		else
			r->rows += n;
	}
	while (keep_spool > 0 && mono_now() - t0 < seconds) {
		if ((n = chunk(db, db_purge_spool, now - keep_spool, SPOOL_CHUNK)) < 0)
			return -1;
		r->spool += n;
		if (n < SPOOL_CHUNK)
			break;
	}
	while (keep_events > 0 && mono_now() - t0 < seconds) {
		if ((n = chunk(db, db_purge_bounce_events, now - keep_events, EVENTS_CHUNK)) < 0)
			return -1;
		r->events += n;
		if (n < EVENTS_CHUNK)
			break;
	}
	return 0;
}
