/*
 * archive.c - the archive of every post that went out. See archive.h.
 */
#include "db/archive.h"
#include "db/db_internal.h"

int
db_engine_archive_add(struct db *db, int64_t list_id, const char *message_id, int64_t date,
                      const char *sender, const char *subject, const void *raw, size_t len)
{
	static const char sql[] = "INSERT INTO archive (list_id, message_id, date, sender, subject,"
	                          " raw) VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
	sqlite3_stmt *st = db_stmt(db, sql);
	int rc;

	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, list_id);
	db_bind_text(st, 2, message_id);
	sqlite3_bind_int64(st, 3, date);
	sqlite3_bind_text(st, 4, sender ? sender : "", -1, SQLITE_STATIC);
	db_bind_text(st, 5, subject);
	sqlite3_bind_blob(st, 6, raw, (int)len, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return db_fail(db, rc, "archive post");
	db_ok(db);
	return 0;
}

int
db_engine_archive_each(struct db *db, int64_t list_id,
                       int (*fn)(void *arg, int64_t date, const char *sender, const void *raw,
                                 size_t len),
                       void *arg)
{
	static const char sql[] = "SELECT date, sender, raw FROM archive WHERE list_id = ?1"
	                          " ORDER BY date, id";
	sqlite3_stmt *st = db_stmt(db, sql);
	int rc;

	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, list_id);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (fn(arg, sqlite3_column_int64(st, 0), (const char *)sqlite3_column_text(st, 1),
		       sqlite3_column_blob(st, 2), (size_t)sqlite3_column_bytes(st, 2)) != 0) {
			sqlite3_reset(st);
			return db_failf(db, DB_INVALID, "archive walk stopped");
		}
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return db_fail(db, rc, "read archive");
	db_ok(db);
	return 0;
}
