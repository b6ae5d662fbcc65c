/*
 * holds.c - moderation holds. See holds.h.
 */
#include "db/holds.h"
#include "db/db_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int
db_hold_add(struct db *db, const struct db_hold_new *h, int64_t *id, char token[DB_TOKEN_LEN])
{
	static const char sql[] =
	    "INSERT INTO holds (list_id, spool_id, token, sender, env_from, subject, message_id,"
	    " reason, created, expires) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)";
	sqlite3_stmt *st;
	int rc;

	for (int tries = 0; tries < 3; tries++) {
		if (db_random_token(token) < 0)
			return db_failf(db, DB_ERR, "hold: no randomness: %s", strerror(errno));
		if ((st = db_stmt(db, sql)) == NULL)
			return -1;
		sqlite3_bind_int64(st, 1, h->list_id);
		if (h->spool_id > 0)
			sqlite3_bind_int64(st, 2, h->spool_id);
		sqlite3_bind_text(st, 3, token, -1, SQLITE_TRANSIENT);
		db_bind_text(st, 4, h->sender ? h->sender : "");
		db_bind_text(st, 5, h->env_from ? h->env_from : "");
		db_bind_text(st, 6, h->subject);
		db_bind_text(st, 7, h->message_id);
		db_bind_text(st, 8, h->reason ? h->reason : "");
		sqlite3_bind_int64(st, 9, db_now());
		sqlite3_bind_int64(st, 10, h->expires);
		rc = sqlite3_step(st);
		sqlite3_reset(st);
		if (rc == SQLITE_DONE) {
			*id = sqlite3_last_insert_rowid(db->sql);
			db_ok(db);
			return 0;
		}
		if (rc != SQLITE_CONSTRAINT_UNIQUE)
			return db_fail(db, rc, "store hold");
	}
	return db_failf(db, DB_ERR, "store hold: no free token");
}

#define HOLD_COLS                                                                                  \
	"h.id, h.list_id, h.spool_id, h.token, h.sender, h.env_from, h.subject, h.message_id,"     \
	" h.reason, h.created, h.expires, h.state, h.decided, h.decided_by"

static void
read_hold(sqlite3_stmt *st, struct db_hold *h)
{
	memset(h, 0, sizeof(*h));
	h->id = sqlite3_column_int64(st, 0);
	h->list_id = sqlite3_column_int64(st, 1);
	h->spool_id = sqlite3_column_int64(st, 2);
	db_copy_col(st, 3, h->token, sizeof(h->token));
	db_copy_col(st, 4, h->sender, sizeof(h->sender));
	db_copy_col(st, 5, h->env_from, sizeof(h->env_from));
	db_copy_col(st, 6, h->subject, sizeof(h->subject));
	db_copy_col(st, 7, h->message_id, sizeof(h->message_id));
	db_copy_col(st, 8, h->reason, sizeof(h->reason));
	h->created = sqlite3_column_int64(st, 9);
	h->expires = sqlite3_column_int64(st, 10);
	db_copy_col(st, 11, h->state, sizeof(h->state));
	h->decided = sqlite3_column_int64(st, 12);
	db_copy_col(st, 13, h->decided_by, sizeof(h->decided_by));
}

/* Runs st (one row expected, message in column 14 when with_message). */
static int
get_hold(struct db *db, sqlite3_stmt *st, int with_message, struct db_hold *h)
{
	int rc = sqlite3_step(st);

	if (rc == SQLITE_DONE) {
		sqlite3_reset(st);
		return db_failf(db, DB_NOTFOUND, "no such held message");
	}
	if (rc != SQLITE_ROW) {
		sqlite3_reset(st);
		return db_fail(db, rc, "read hold");
	}
	read_hold(st, h);
	if (with_message && sqlite3_column_type(st, 14) != SQLITE_NULL) {
		const void *p = sqlite3_column_blob(st, 14);
		int n = sqlite3_column_bytes(st, 14);
		h->message = malloc((size_t)n + 1);
		if (h->message == NULL) {
			sqlite3_reset(st);
			return db_failf(db, DB_ERR, "read hold: out of memory");
		}
		if (n > 0)
			memcpy(h->message, p, (size_t)n);
		h->message[n] = '\0';
		h->len = (size_t)n;
	}
	sqlite3_reset(st);
	db_ok(db);
	return 0;
}

int
db_hold_get(struct db *db, int64_t list_id, int64_t id, int with_message, struct db_hold *h)
{
	static const char sql[] = "SELECT " HOLD_COLS ", b.message FROM holds h"
	                          " LEFT JOIN spool_body b ON b.id = h.spool_id"
	                          " WHERE h.id = ?1 AND (?2 = 0 OR h.list_id = ?2)";
	sqlite3_stmt *st = db_stmt(db, sql);

	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int64(st, 2, list_id);
	return get_hold(db, st, with_message, h);
}

int
db_hold_get_token(struct db *db, const char *token, int with_message, struct db_hold *h)
{
	static const char sql[] = "SELECT " HOLD_COLS ", b.message FROM holds h"
	                          " LEFT JOIN spool_body b ON b.id = h.spool_id"
	                          " WHERE h.token = ?1";
	sqlite3_stmt *st = db_stmt(db, sql);

	if (st == NULL)
		return -1;
	db_bind_text(st, 1, token);
	return get_hold(db, st, with_message, h);
}

void
db_hold_free(struct db_hold *h)
{
	free(h->message);
	h->message = NULL;
	h->len = 0;
}

int
db_hold_decide(struct db *db, int64_t id, const char *state, const char *by, int64_t now)
{
	static const char sql[] = "UPDATE holds SET state = ?2, decided = ?3, decided_by = ?4"
	                          " WHERE id = ?1 AND state = 'held'";
	sqlite3_stmt *st = db_stmt(db, sql);
	int rc;

	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, id);
	db_bind_text(st, 2, state);
	sqlite3_bind_int64(st, 3, now);
	db_bind_text(st, 4, by);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return db_fail(db, rc, "decide hold");
	if (sqlite3_changes(db->sql) == 0)
		return db_failf(db, DB_NOTFOUND, "held message %lld is not held any more",
		                (long long)id);
	db_ok(db);
	return 0;
}

int
db_hold_each(struct db *db, int64_t list_id, const char *state, db_hold_fn fn, void *arg)
{
	static const char sql[] =
	    "SELECT " HOLD_COLS " FROM holds h"
	    " WHERE (?1 = 0 OR h.list_id = ?1) AND (?2 IS NULL OR h.state = ?2)"
	    " ORDER BY h.id";
	sqlite3_stmt *st = db_stmt(db, sql);
	struct db_hold h;
	int rc;

	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, list_id);
	db_bind_text(st, 2, state);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		read_hold(st, &h);
		if (fn(&h, arg) != 0) {
			rc = SQLITE_DONE;
			break;
		}
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return db_fail(db, rc, "list holds");
	db_ok(db);
	return 0;
}

int
db_hold_due(struct db *db, int64_t list_id, int64_t now, int64_t *ids, size_t max, size_t *n)
{
	static const char sql[] = "SELECT id FROM holds WHERE state = 'held' AND expires < ?1"
	                          " AND (?2 = 0 OR list_id = ?2) ORDER BY expires LIMIT ?3";
	sqlite3_stmt *st = db_stmt(db, sql);
	int rc;

	*n = 0;
	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, now);
	sqlite3_bind_int64(st, 2, list_id);
	sqlite3_bind_int64(st, 3, (int64_t)max);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW && *n < max)
		ids[(*n)++] = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		return db_fail(db, rc, "due holds");
	db_ok(db);
	return 0;
}
