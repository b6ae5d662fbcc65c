/*
 * dkim.c - the dkim_keys table (see dkim.h).
 */
#include "db/dkim.h"
#include "db/db_internal.h"

#include <string.h>

#define KEY_COLS "id, domain, selector, algorithm, bits, public_key, state, created, activated"

static void
read_key(sqlite3_stmt *st, struct db_dkim_key *k)
{
	memset(k, 0, sizeof(*k));
	k->id = sqlite3_column_int64(st, 0);
	db_copy_col(st, 1, k->domain, sizeof(k->domain));
	db_copy_col(st, 2, k->selector, sizeof(k->selector));
	db_copy_col(st, 3, k->algorithm, sizeof(k->algorithm));
	k->bits = sqlite3_column_int(st, 4);
	db_copy_col(st, 5, k->public_key, sizeof(k->public_key));
	db_copy_col(st, 6, k->state, sizeof(k->state));
	k->created = sqlite3_column_int64(st, 7);
	k->activated = sqlite3_column_int64(st, 8);
}

int
db_dkim_add(struct db *db, struct db_dkim_key *k, const char *pem, size_t pemlen)
{
	static const char sql[] = "INSERT INTO dkim_keys (domain, selector, algorithm, bits,"
	                          " private_key, public_key, state, created, activated)"
	                          " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)";
	sqlite3_stmt *st;
	int rc, dup;

	if ((st = db_stmt(db, sql)) == NULL)
		return -1;
	db_bind_text(st, 1, k->domain);
	db_bind_text(st, 2, k->selector);
	db_bind_text(st, 3, k->algorithm);
	sqlite3_bind_int(st, 4, k->bits);
	sqlite3_bind_blob(st, 5, pem, (int)pemlen, SQLITE_TRANSIENT);
	db_bind_text(st, 6, k->public_key);
	db_bind_text(st, 7, k->state);
	sqlite3_bind_int64(st, 8, k->created);
	sqlite3_bind_int64(st, 9, k->activated);
	rc = sqlite3_step(st);
	dup = (rc & 0xff) == SQLITE_CONSTRAINT &&
	      sqlite3_extended_errcode(db->sql) == SQLITE_CONSTRAINT_UNIQUE &&
	      strstr(sqlite3_errmsg(db->sql), "selector") != NULL;
	sqlite3_reset(st);
	/* The blob's copy is SQLite's; clear the binding so that the
	 * statement cache holds no private key between calls. */
	sqlite3_clear_bindings(st);
	if (dup)
		return db_failf(db, DB_EXISTS, "%s has a key with selector %s already", k->domain,
		                k->selector);
	if (rc != SQLITE_DONE)
		return db_fail(db, rc, "adding a DKIM key");
	k->id = sqlite3_last_insert_rowid(db->sql);
	db_ok(db);
	return 0;
}

int
db_dkim_find(struct db *db, const char *domain, const char *selector, struct db_dkim_key *out)
{
	static const char sql[] = "SELECT " KEY_COLS " FROM dkim_keys"
	                          " WHERE domain = ?1 AND selector = ?2";
	sqlite3_stmt *st;
	int rc;

	if ((st = db_stmt(db, sql)) == NULL)
		return -1;
	db_bind_text(st, 1, domain);
	db_bind_text(st, 2, selector);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		read_key(st, out);
	sqlite3_reset(st);
	if (rc == SQLITE_DONE)
		return db_failf(db, DB_NOTFOUND, "%s has no DKIM key with selector %s", domain,
		                selector);
	if (rc != SQLITE_ROW)
		return db_fail(db, rc, "reading a DKIM key");
	db_ok(db);
	return 0;
}

int
db_dkim_list(struct db *db, const char *domain, int (*cb)(void *arg, const struct db_dkim_key *k),
             void *arg)
{
	static const char sql[] =
	    "SELECT " KEY_COLS " FROM dkim_keys WHERE ?1 IS NULL OR domain = ?1"
	    " ORDER BY domain,"
	    "  CASE state WHEN 'active' THEN 0 WHEN 'published' THEN 1 ELSE 2 END,"
	    "  algorithm DESC, created DESC, id DESC";
	sqlite3_stmt *st;
	struct db_dkim_key k;
	int rc, n = 0;

	if ((st = db_stmt(db, sql)) == NULL)
		return -1;
	db_bind_text(st, 1, domain);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		read_key(st, &k);
		n++;
		if (cb(arg, &k) != 0) {
			rc = SQLITE_DONE;
			break;
		}
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return db_fail(db, rc, "listing DKIM keys");
	db_ok(db);
	return n;
}

int
db_dkim_set_state(struct db *db, int64_t id, const char *state, int64_t now)
{
	static const char demote[] =
	    "UPDATE dkim_keys SET state = 'published'"
	    " WHERE state = 'active' AND id <> ?1"
	    "   AND (domain, algorithm) = (SELECT domain, algorithm FROM dkim_keys WHERE id = ?1)";
	static const char set[] = "UPDATE dkim_keys SET state = ?2,"
	                          " activated = CASE WHEN ?2 = 'active' AND state <> 'active'"
	                          "   THEN ?3 ELSE activated END"
	                          " WHERE id = ?1";
	sqlite3_stmt *st;

	if (strcmp(state, "active") == 0) {
		if ((st = db_stmt(db, demote)) == NULL)
			return -1;
		sqlite3_bind_int64(st, 1, id);
		if (db_step_done(db, st, "publishing the active DKIM key") < 0)
			return -1;
	}
	if ((st = db_stmt(db, set)) == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, id);
	db_bind_text(st, 2, state);
	sqlite3_bind_int64(st, 3, now);
	if (db_step_done(db, st, "setting a DKIM key's state") < 0)
		return -1;
	if (sqlite3_changes(db->sql) == 0)
		return db_failf(db, DB_NOTFOUND, "no DKIM key %lld", (long long)id);
	return 0;
}

int
db_dkim_delete(struct db *db, int64_t id)
{
	static const char sql[] = "DELETE FROM dkim_keys WHERE id = ?1";
	sqlite3_stmt *st;

	if ((st = db_stmt(db, sql)) == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, id);
	if (db_step_done(db, st, "deleting a DKIM key") < 0)
		return -1;
	if (sqlite3_changes(db->sql) == 0)
		return db_failf(db, DB_NOTFOUND, "no DKIM key %lld", (long long)id);
	return 0;
}

int
db_dkim_active(struct db *db, const char *domain,
               int (*cb)(void *arg, const char *selector, const char *algorithm, const char *pem,
                         size_t pemlen),
               void *arg)
{
	/* 'rsa' sorts after 'ed25519': rsa first, the signature every
	 * verifier knows (RFC 8463 asks for it beside an ed25519 one). */
	static const char sql[] = "SELECT selector, algorithm, private_key FROM dkim_keys"
	                          " WHERE domain = ?1 AND state = 'active'"
	                          " ORDER BY algorithm DESC";
	sqlite3_stmt *st;
	int rc, n = 0;

	if ((st = db_stmt(db, sql)) == NULL)
		return -1;
	db_bind_text(st, 1, domain);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *sel = (const char *)sqlite3_column_text(st, 0);
		const char *alg = (const char *)sqlite3_column_text(st, 1);
		const void *pem = sqlite3_column_blob(st, 2);
		int bytes = sqlite3_column_bytes(st, 2);

		if (sel == NULL || alg == NULL || pem == NULL || bytes <= 0)
			continue;
		n++;
		if (cb(arg, sel, alg, pem, (size_t)bytes) != 0) {
			rc = SQLITE_DONE;
			break;
		}
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return db_fail(db, rc, "reading the active DKIM keys");
	db_ok(db);
	return n;
}
