/*
 * tokens.c - confirmation tokens, and the random tokens that holds use
 * too. See tokens.h.
 */
#include "db/tokens.h"
#include "db/db_internal.h"

#include <errno.h>
#include <string.h>
#include <sys/random.h>

int
db_random_token(char out[DB_TOKEN_LEN])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char raw[16];
	size_t got = 0;

	while (got < sizeof(raw)) {
		ssize_t n = getrandom(raw + got, sizeof(raw) - got, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		got += (size_t)n;
	}
	for (size_t i = 0; i < sizeof(raw); i++) {
		out[2 * i] = hex[raw[i] >> 4];
		out[2 * i + 1] = hex[raw[i] & 15];
	}
	out[DB_TOKEN_LEN - 1] = '\0';
	return 0;
}

int
db_token_add(struct db *db, int64_t list_id, const char *action, const char *address,
             const char *addr_key, const char *name, int64_t expires, char token[DB_TOKEN_LEN])
{
	static const char sql[] =
	    "INSERT INTO tokens (token, list_id, action, address, addr_key, name, created, expires)"
	    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";
	sqlite3_stmt *st;
	int rc;

	for (int tries = 0; tries < 3; tries++) {
		if (db_random_token(token) < 0)
			return db_failf(db, DB_ERR, "token: no randomness: %s", strerror(errno));
		if ((st = db_stmt(db, sql)) == NULL)
			return -1;
		sqlite3_bind_text(st, 1, token, -1, SQLITE_TRANSIENT);
		sqlite3_bind_int64(st, 2, list_id);
		db_bind_text(st, 3, action);
		db_bind_text(st, 4, address);
		db_bind_text(st, 5, addr_key);
		db_bind_text(st, 6, name && *name ? name : NULL);
		sqlite3_bind_int64(st, 7, db_now());
		sqlite3_bind_int64(st, 8, expires);
		rc = sqlite3_step(st);
		sqlite3_reset(st);
		if (rc == SQLITE_DONE) {
			db_ok(db);
			return 0;
		}
		if (rc != SQLITE_CONSTRAINT_PRIMARYKEY)
			return db_fail(db, rc, "store token");
	}
	return db_failf(db, DB_ERR, "store token: no free token");
}

int
db_token_get(struct db *db, const char *token, struct db_token *t)
{
	static const char sql[] = "SELECT token, list_id, action, address, addr_key, name, created,"
	                          " expires FROM tokens WHERE token = ?1";
	sqlite3_stmt *st = db_stmt(db, sql);
	int rc;

	if (st == NULL)
		return -1;
	db_bind_text(st, 1, token);
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE) {
		sqlite3_reset(st);
		return db_failf(db, DB_NOTFOUND, "no such token");
	}
	if (rc != SQLITE_ROW) {
		sqlite3_reset(st);
		return db_fail(db, rc, "read token");
	}
	memset(t, 0, sizeof(*t));
	db_copy_col(st, 0, t->token, sizeof(t->token));
	t->list_id = sqlite3_column_int64(st, 1);
	db_copy_col(st, 2, t->action, sizeof(t->action));
	db_copy_col(st, 3, t->address, sizeof(t->address));
	db_copy_col(st, 4, t->addr_key, sizeof(t->addr_key));
	db_copy_col(st, 5, t->name, sizeof(t->name));
	t->created = sqlite3_column_int64(st, 6);
	t->expires = sqlite3_column_int64(st, 7);
	sqlite3_reset(st);
	db_ok(db);
	return 0;
}

int
db_token_delete(struct db *db, const char *token)
{
	static const char sql[] = "DELETE FROM tokens WHERE token = ?1";
	sqlite3_stmt *st = db_stmt(db, sql);
	int rc;

	if (st == NULL)
		return -1;
	db_bind_text(st, 1, token);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return db_fail(db, rc, "delete token");
	db_ok(db);
	return 0;
}

int
db_token_purge(struct db *db, int64_t now, int64_t *n)
{
	static const char sql[] = "DELETE FROM tokens WHERE expires < ?1";
	sqlite3_stmt *st = db_stmt(db, sql);
	int rc;

	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, now);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return db_fail(db, rc, "purge tokens");
	if (n != NULL)
		*n = sqlite3_changes(db->sql);
	db_ok(db);
	return 0;
}
