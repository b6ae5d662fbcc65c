/*
 * engine.c - the list engine's statements. See engine.h.
 */
#include "db/engine.h"
#include "db/db_internal.h"

#include <stdio.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>

int
db_engine_tune(struct db *db)
{
	/* Temporary b-trees (statement journals, sorts) in memory: on disk
	 * each is a file created and unlinked again, some hundred a second
	 * under load. */
	return db_exec(db, "PRAGMA cache_size = -32768; PRAGMA temp_store = MEMORY");
}

void
db_engine_release(struct db *db)
{
	int cur = 0, hi = 0;

	/* Only after something big: trimming the heap is not free. */
	if (sqlite3_db_status(db->sql, SQLITE_DBSTATUS_CACHE_USED, &cur, &hi, 0) != SQLITE_OK ||
	    cur < 8 * 1024 * 1024)
		return;
	sqlite3_db_release_memory(db->sql);
	malloc_trim(0);
}

int
db_engine_dmarc_get(struct db *db, const char *domain, char *policy, size_t policylen,
                    int64_t *expires)
{
	static const char sql[] =
	    "SELECT policy, expires FROM dmarc_cache WHERE domain = lower(?1)";
	sqlite3_stmt *st = db_stmt(db, sql);
	int rc;

	if (st == NULL)
		return -1;
	sqlite3_bind_text(st, 1, domain, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		snprintf(policy, policylen, "%s", (const char *)sqlite3_column_text(st, 0));
		*expires = sqlite3_column_int64(st, 1);
	}
	sqlite3_reset(st);
	if (rc == SQLITE_DONE)
		return db_failf(db, DB_NOTFOUND, "no DMARC policy kept for %s", domain);
	if (rc != SQLITE_ROW)
		return db_fail(db, rc, "DMARC cache");
	db_ok(db);
	return 0;
}

int
db_engine_dmarc_put(struct db *db, const char *domain, const char *policy, int64_t expires)
{
	/* Written only when it changes (or its expiry moves by over a
	 * minute): every post of a busy list looks its From domain up, and a
	 * row rewritten each time is a page written each time. */
	static const char sql[] =
	    "INSERT INTO dmarc_cache (domain, policy, expires) VALUES (lower(?1), ?2, ?3)"
	    " ON CONFLICT (domain) DO UPDATE SET policy = excluded.policy,"
	    " expires = excluded.expires WHERE policy IS NOT excluded.policy"
	    " OR abs(expires - excluded.expires) > 60";
	sqlite3_stmt *st = db_stmt(db, sql);
	int rc;

	if (st == NULL)
		return -1;
	sqlite3_bind_text(st, 1, domain, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, policy, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, expires);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return db_fail(db, rc, "keep DMARC policy");
	db_ok(db);
	return 0;
}

int
db_engine_event(struct db *db, int64_t list_id, const char *kind, const char *detail)
{
	static const char sql[] = "INSERT INTO events (time, list_id, kind, detail)"
	                          " VALUES (?1, ?2, ?3, ?4)";
	sqlite3_stmt *st = db_stmt(db, sql);
	int rc;

	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, db_now());
	if (list_id > 0)
		sqlite3_bind_int64(st, 2, list_id);
	sqlite3_bind_text(st, 3, kind, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, detail, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return db_fail(db, rc, "log event");
	db_ok(db);
	return 0;
}
