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
