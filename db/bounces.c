/*
 * bounces.c - bounce events, member scores, members disabled for bounces.
 * See bounces.h.
 */
#include "db/bounces.h"
#include "db/db_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int
db_bounce_add(struct db *db, const struct db_bounce_event *e)
{
	static const char sql[] =
	    "INSERT INTO bounce_events (list_id, member_id, address, domain, time, class,"
	    " status, reason, spool_id, scored) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)";
	sqlite3_stmt *st;

	if ((st = db_stmt(db, sql)) == NULL)
		return -1;
	if (e->list_id > 0)
		sqlite3_bind_int64(st, 1, e->list_id);
	if (e->member_id > 0)
		sqlite3_bind_int64(st, 2, e->member_id);
	db_bind_text(st, 3, e->address);
	db_bind_text(st, 4, e->domain);
	sqlite3_bind_int64(st, 5, e->time);
	db_bind_text(st, 6, e->cls);
	db_bind_text(st, 7, e->status && *e->status ? e->status : NULL);
	db_bind_text(st, 8, e->reason);
	if (e->spool_id > 0)
		sqlite3_bind_int64(st, 9, e->spool_id);
	sqlite3_bind_double(st, 10, e->scored);
	return db_step_done(db, st, "recording a bounce");
}

int
db_bounce_last_scored(struct db *db, int64_t member_id, int64_t *time)
{
	static const char sql[] = "SELECT max(time) FROM bounce_events"
	                          " WHERE member_id = ?1 AND scored > 0";
	sqlite3_stmt *st;
	int rc;

	if ((st = db_stmt(db, sql)) == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, member_id);
	rc = sqlite3_step(st);
	*time = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
	sqlite3_reset(st);
	if (rc != SQLITE_ROW)
		return db_fail(db, rc, "reading bounce times");
	db_ok(db);
	return 0;
}

int
db_bounce_count(struct db *db, int64_t list_id, const char *cls, const char *domain, int64_t since,
                int64_t *n)
{
	static const char sql[] = "SELECT count(*) FROM bounce_events WHERE list_id = ?1"
	                          " AND class = ?2 AND (?3 IS NULL OR domain = ?3) AND time >= ?4";
	sqlite3_stmt *st;
	int rc;

	if ((st = db_stmt(db, sql)) == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, list_id);
	db_bind_text(st, 2, cls);
	db_bind_text(st, 3, domain);
	sqlite3_bind_int64(st, 4, since);
	rc = sqlite3_step(st);
	*n = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
	sqlite3_reset(st);
	if (rc != SQLITE_ROW)
		return db_fail(db, rc, "counting bounces");
	db_ok(db);
	return 0;
}

int
db_bounce_member_update(struct db *db, int64_t member_id, double score, int64_t last,
                        const char *reason)
{
	static const char sql[] = "UPDATE members SET bounce_score = ?2, last_bounce = ?3,"
	                          " last_bounce_reason = ?4, updated = ?5 WHERE id = ?1";
	sqlite3_stmt *st;

	if ((st = db_stmt(db, sql)) == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, member_id);
	sqlite3_bind_double(st, 2, score);
	sqlite3_bind_int64(st, 3, last);
	db_bind_text(st, 4, reason);
	sqlite3_bind_int64(st, 5, db_now());
	return db_step_done(db, st, "updating a bounce score");
}

int
db_bounce_member_disable(struct db *db, int64_t member_id, const char *why, int64_t now)
{
	static const char sql[] = "UPDATE members SET status = 'disabled', disabled_reason = ?2,"
	                          " updated = ?3 WHERE id = ?1";
	static const char sql_note[] =
	    "INSERT OR REPLACE INTO bounce_disabled (member_id, since, probe_sent, probe_qid)"
	    " VALUES (?1, ?2, NULL, NULL)";
	sqlite3_stmt *st;

	if ((st = db_stmt(db, sql)) == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, member_id);
	db_bind_text(st, 2, why);
	sqlite3_bind_int64(st, 3, now);
	if (db_step_done(db, st, "disabling a member") < 0)
		return -1;
	if ((st = db_stmt(db, sql_note)) == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, member_id);
	sqlite3_bind_int64(st, 2, now);
	return db_step_done(db, st, "noting a disabled member");
}

int
db_bounce_member_remove(struct db *db, int64_t member_id)
{
	static const char sql[] = "DELETE FROM members WHERE id = ?1";
	sqlite3_stmt *st;

	if ((st = db_stmt(db, sql)) == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, member_id);
	return db_step_done(db, st, "removing a member");
}

int
db_bounce_probe_sent(struct db *db, int64_t member_id, int64_t now, const char *qid)
{
	static const char sql[] = "UPDATE bounce_disabled SET probe_sent = ?2, probe_qid = ?3"
	                          " WHERE member_id = ?1";
	sqlite3_stmt *st;

	if ((st = db_stmt(db, sql)) == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, member_id);
	sqlite3_bind_int64(st, 2, now);
	db_bind_text(st, 3, qid);
	return db_step_done(db, st, "noting a probe");
}

/* Members still disabled for bounces: disabled, with the reason this
 * module wrote (an admin's re-enable clears it). */
#define STILL_DISABLED                                                                             \
	" m.status = 'disabled' AND (m.disabled_reason LIKE 'bounce%'"                             \
	" OR m.disabled_reason LIKE 'complaint%')"

int
db_bounce_disabled_get(struct db *db, int64_t member_id, int64_t *since, int64_t *probe_sent)
{
	static const char sql[] = "SELECT b.since, b.probe_sent FROM bounce_disabled b"
	                          " JOIN members m ON m.id = b.member_id"
	                          " WHERE b.member_id = ?1 AND" STILL_DISABLED;
	sqlite3_stmt *st;
	int rc;

	if ((st = db_stmt(db, sql)) == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, member_id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*since = sqlite3_column_int64(st, 0);
		*probe_sent = sqlite3_column_int64(st, 1);
	}
	sqlite3_reset(st);
	if (rc == SQLITE_DONE)
		return db_failf(db, DB_NOTFOUND, "not disabled for bounces");
	if (rc != SQLITE_ROW)
		return db_fail(db, rc, "reading a disabled member");
	db_ok(db);
	return 0;
}

int
db_bounce_member_each(struct db *db, int64_t list_id, db_bounce_member_fn fn, void *arg)
{
	static const char sql[] =
	    "SELECT m.id, m.address, m.status, m.bounce_score, m.last_bounce,"
	    " m.last_bounce_reason, m.disabled_reason, b.since, b.probe_sent,"
	    " (SELECT max(e.time) FROM bounce_events e WHERE e.member_id = m.id"
	    " AND e.scored > 0)"
	    " FROM members m LEFT JOIN bounce_disabled b ON b.member_id = m.id"
	    " WHERE m.list_id = ?1 AND (m.bounce_score > 0 OR m.last_bounce IS NOT NULL"
	    " OR b.member_id IS NOT NULL)"
	    " ORDER BY m.bounce_score DESC, m.addr_key";
	struct db_bounce_member m;
	sqlite3_stmt *st;
	int rc, stop = 0;

	if ((st = db_stmt(db, sql)) == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, list_id);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		memset(&m, 0, sizeof(m));
		m.id = sqlite3_column_int64(st, 0);
		db_copy_col(st, 1, m.address, sizeof(m.address));
		db_copy_col(st, 2, m.status, sizeof(m.status));
		m.score = sqlite3_column_double(st, 3);
		m.last_bounce = sqlite3_column_int64(st, 4);
		db_copy_col(st, 5, m.last_reason, sizeof(m.last_reason));
		db_copy_col(st, 6, m.disabled_reason, sizeof(m.disabled_reason));
		m.last_scored = sqlite3_column_int64(st, 9);
		if (strcmp(m.status, "disabled") == 0) {
			m.disabled_since = sqlite3_column_int64(st, 7);
			m.probe_sent = sqlite3_column_int64(st, 8);
		}
		if ((stop = fn(&m, arg)) != 0)
			break;
	}
	sqlite3_reset(st);
	if (stop)
		return stop;
	if (rc != SQLITE_DONE)
		return db_fail(db, rc, "listing bouncing members");
	db_ok(db);
	return 0;
}

int
db_bounce_disabled_each(struct db *db, int64_t list_id, int64_t before,
                        int (*fn)(int64_t list_id, int64_t member_id, const char *address,
                                  int64_t since, int64_t probe_sent, void *arg),
                        void *arg)
{
	static const char sql[] =
	    "SELECT m.list_id, m.id, m.address, b.since, b.probe_sent"
	    " FROM bounce_disabled b JOIN members m ON m.id = b.member_id"
	    " WHERE (?1 = 0 OR m.list_id = ?1) AND b.since <= ?2 AND" STILL_DISABLED
	    " ORDER BY b.since";
	struct row {
		int64_t list_id, id, since, probe;
		char address[321];
	} *rows = NULL;
	size_t n = 0, cap = 0;
	sqlite3_stmt *st;
	int rc, stop = 0;

	/* Collected first: fn changes the tables this walk reads. */
	if ((st = db_stmt(db, sql)) == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, list_id);
	sqlite3_bind_int64(st, 2, before);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW && n < 10000) {
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 16;
			struct row *nr = realloc(rows, ncap * sizeof(*nr));
			if (nr == NULL) {
				sqlite3_reset(st);
				free(rows);
				return db_failf(db, DB_ERR, "out of memory");
			}
			rows = nr;
			cap = ncap;
		}
		rows[n].list_id = sqlite3_column_int64(st, 0);
		rows[n].id = sqlite3_column_int64(st, 1);
		db_copy_col(st, 2, rows[n].address, sizeof(rows[n].address));
		rows[n].since = sqlite3_column_int64(st, 3);
		rows[n].probe = sqlite3_column_int64(st, 4);
		n++;
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
		free(rows);
		return db_fail(db, rc, "listing disabled members");
	}
	for (size_t i = 0; i < n && !stop; i++)
		stop = fn(rows[i].list_id, rows[i].id, rows[i].address, rows[i].since,
		          rows[i].probe, arg);
	free(rows);
	if (stop < 0)
		return -1;
	db_ok(db);
	return stop;
}

int
db_bounce_disabled_lists(struct db *db, int64_t **ids, size_t *n)
{
	static const char sql[] = "SELECT DISTINCT m.list_id"
	                          " FROM bounce_disabled b JOIN members m ON m.id = b.member_id"
	                          " WHERE" STILL_DISABLED " ORDER BY m.list_id";
	sqlite3_stmt *st;
	size_t cap = 0;
	int rc;

	*ids = NULL;
	*n = 0;
	if ((st = db_stmt(db, sql)) == NULL)
		return -1;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (*n == cap) {
			size_t ncap = cap ? cap * 2 : 16;
			int64_t *ni = realloc(*ids, ncap * sizeof(*ni));
			if (ni == NULL) {
				sqlite3_reset(st);
				free(*ids);
				*ids = NULL;
				*n = 0;
				return db_failf(db, DB_ERR, "out of memory");
			}
			*ids = ni;
			cap = ncap;
		}
		(*ids)[(*n)++] = sqlite3_column_int64(st, 0);
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		free(*ids);
		*ids = NULL;
		*n = 0;
		return db_fail(db, rc, "listing lists with disabled members");
	}
	db_ok(db);
	return 0;
}

int
db_bounce_policy_domains(struct db *db, int64_t list_id, int64_t since, db_bounce_domain_fn fn,
                         void *arg)
{
	static const char sql[] = "SELECT domain, count(*), max(time) FROM bounce_events"
	                          " WHERE list_id = ?1 AND class = 'policy' AND time >= ?2"
	                          " GROUP BY domain ORDER BY count(*) DESC, domain";
	sqlite3_stmt *st;
	int rc, stop = 0;

	if ((st = db_stmt(db, sql)) == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, list_id);
	sqlite3_bind_int64(st, 2, since);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if ((stop = fn((const char *)sqlite3_column_text(st, 0),
		               sqlite3_column_int64(st, 1), sqlite3_column_int64(st, 2), arg)) != 0)
			break;
	}
	sqlite3_reset(st);
	if (stop)
		return stop;
	if (rc != SQLITE_DONE)
		return db_fail(db, rc, "counting policy bounces");
	db_ok(db);
	return 0;
}

/* ---- retention ---- */

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

	return db_delete_before(db, sql, before, limit, "purging old bounce events");
}
