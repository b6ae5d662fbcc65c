/*
 * secrets.c - the secrets table (see secrets.h).
 */
#include "db/secrets.h"
#include "db/db_internal.h"

#include <string.h>

int
db_secret_get(struct db *db, const char *name, unsigned char *buf, size_t len)
{
	static const char sql[] = "SELECT value FROM secrets WHERE name = ?1";
	sqlite3_stmt *st;
	int rc, n = -1;

	if ((st = db_stmt(db, sql)) == NULL)
		return -1;
	db_bind_text(st, 1, name);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		int bytes = sqlite3_column_bytes(st, 0);
		const void *v = sqlite3_column_blob(st, 0);
		if (v != NULL && bytes > 0 && (size_t)bytes <= len) {
			memcpy(buf, v, (size_t)bytes);
			n = bytes;
		}
	}
	sqlite3_reset(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return db_fail(db, rc, "reading a secret");
	if (n < 0)
		return db_failf(db, DB_NOTFOUND, "no secret %s in the store", name);
	db_ok(db);
	return n;
}

/* Versions are compared as numbers: oneclick.10 comes after oneclick.9. */
#define VERSION_OF "CAST(substr(name, length(?1) + 2) AS INTEGER)"

int
db_secret_versions(struct db *db, const char *family,
                   int (*cb)(void *arg, int version, const unsigned char *value, size_t len,
                             int64_t created),
                   void *arg)
{
	static const char sql[] = "SELECT " VERSION_OF ", value, created FROM secrets"
	                          " WHERE substr(name, 1, length(?1) + 1) = ?1 || '.'"
	                          " ORDER BY 1 DESC";
	sqlite3_stmt *st;
	int rc, n = 0;

	if ((st = db_stmt(db, sql)) == NULL)
		return -1;
	db_bind_text(st, 1, family);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		int v = sqlite3_column_int(st, 0);
		const void *val = sqlite3_column_blob(st, 1);
		int bytes = sqlite3_column_bytes(st, 1);

		if (v <= 0 || val == NULL || bytes <= 0)
			continue;
		n++;
		if (cb(arg, v, val, (size_t)bytes, sqlite3_column_int64(st, 2)) != 0) {
			rc = SQLITE_DONE;
			break;
		}
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return db_fail(db, rc, "reading secret versions");
	db_ok(db);
	return n;
}

int
db_secret_rotate(struct db *db, const char *family, int64_t now, int *version)
{
	static const char sql[] =
	    "INSERT INTO secrets (name, value, created)"
	    " SELECT ?1 || '.' || (coalesce(max(" VERSION_OF "), 0) + 1), randomblob(32), ?2"
	    " FROM secrets WHERE substr(name, 1, length(?1) + 1) = ?1 || '.'"
	    " RETURNING " VERSION_OF;
	sqlite3_stmt *st;
	int rc;

	if ((st = db_stmt(db, sql)) == NULL)
		return -1;
	db_bind_text(st, 1, family);
	sqlite3_bind_int64(st, 2, now);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*version = sqlite3_column_int(st, 0);
	while (rc == SQLITE_ROW)
		rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return db_fail(db, rc, "adding a secret version");
	db_ok(db);
	return 0;
}

int
db_secret_drop_before(struct db *db, const char *family, int keep, int64_t *n)
{
	static const char sql[] = "DELETE FROM secrets"
	                          " WHERE substr(name, 1, length(?1) + 1) = ?1 || '.'"
	                          "   AND " VERSION_OF " < ?2";
	sqlite3_stmt *st;

	if ((st = db_stmt(db, sql)) == NULL)
		return -1;
	db_bind_text(st, 1, family);
	sqlite3_bind_int(st, 2, keep);
	if (db_step_done(db, st, "dropping old secret versions") < 0)
		return -1;
	if (n != NULL)
		*n = sqlite3_changes(db->sql);
	return 0;
}
