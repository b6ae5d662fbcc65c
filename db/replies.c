/*
 * replies.c - the log of automatic replies. See replies.h.
 */
#include "db/replies.h"
#include "db/db_internal.h"

int
db_reply_log_add(struct db *db, const char *addr_key, int64_t list_id, const char *kind, int64_t t)
{
	static const char sql[] =
	    "INSERT INTO reply_log (addr_key, list_id, kind, time) VALUES (?1, ?2, ?3, ?4)";
	sqlite3_stmt *st = db_stmt(db, sql);
	int rc;

	if (st == NULL)
		return -1;
	db_bind_text(st, 1, addr_key);
	if (list_id > 0)
		sqlite3_bind_int64(st, 2, list_id);
	db_bind_text(st, 3, kind);
	sqlite3_bind_int64(st, 4, t);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return db_fail(db, rc, "log reply");
	db_ok(db);
	return 0;
}

int
db_reply_log_count(struct db *db, const char *addr_key, int64_t list_id, const char *kind,
                   int64_t since, int64_t *count)
{
	/* Two statements so that each can use its index. */
	static const char by_addr[] =
	    "SELECT count(*) FROM reply_log WHERE addr_key = ?1 AND time >= ?4"
	    " AND (?2 = 0 OR list_id = ?2) AND (?3 IS NULL OR kind = ?3)";
	static const char by_list[] = "SELECT count(*) FROM reply_log WHERE list_id = ?2"
	                              " AND time >= ?4 AND (?3 IS NULL OR kind = ?3)";
	sqlite3_stmt *st;
	int rc;

	if (addr_key == NULL && list_id <= 0)
		return db_failf(db, DB_INVALID, "count replies: no address and no list");
	st = db_stmt(db, addr_key ? by_addr : by_list);
	if (st == NULL)
		return -1;
	if (addr_key)
		db_bind_text(st, 1, addr_key);
	sqlite3_bind_int64(st, 2, list_id);
	db_bind_text(st, 3, kind);
	sqlite3_bind_int64(st, 4, since);
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		sqlite3_reset(st);
		return db_fail(db, rc, "count replies");
	}
	*count = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	db_ok(db);
	return 0;
}

int
db_reply_log_purge(struct db *db, int64_t before)
{
	static const char sql[] = "DELETE FROM reply_log WHERE time < ?1";
	sqlite3_stmt *st = db_stmt(db, sql);
	int rc;

	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, before);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return db_fail(db, rc, "purge reply log");
	db_ok(db);
	return 0;
}
