/*
 * db.c - opening the database, migrations, transactions, errors and the
 * prepared-statement cache shared by the rest of db/.
 */
#include "db/db_internal.h"
#include "db/schema.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

static enum db_status
status_of(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_OK:
	case SQLITE_DONE:
	case SQLITE_ROW:
		return DB_OK;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return DB_BUSY;
	case SQLITE_FULL:
		return DB_FULL;
	case SQLITE_CONSTRAINT:
		return DB_EXISTS;
	case SQLITE_READONLY:
	case SQLITE_CANTOPEN:
	case SQLITE_PERM:
		return DB_READONLY;
	default:
		return DB_ERR;
	}
}

int
db_fail(struct db *db, int rc, const char *what)
{
	db->status = status_of(rc);
	if (db->status == DB_OK)
		db->status = DB_ERR;
	if (db->status == DB_BUSY)
		snprintf(db->err, sizeof(db->err),
		         "%s: the database is locked by another process (tried for %d s)", what,
		         DB_BUSY_TIMEOUT_MS / 1000);
	else if (db->status == DB_FULL)
		snprintf(db->err, sizeof(db->err), "%s: the disk is full", what);
	else if ((rc & 0xff) == SQLITE_READONLY)
		snprintf(db->err, sizeof(db->err),
		         "%s: the database is read-only for this user (no permission to "
		         "write the file or its directory)",
		         what);
	else
		snprintf(db->err, sizeof(db->err), "%s: %s", what,
		         db->sql ? sqlite3_errmsg(db->sql) : sqlite3_errstr(rc));
	return -1;
}

int
db_failf(struct db *db, enum db_status st, const char *fmt, ...)
{
	va_list ap;

	db->status = st;
	va_start(ap, fmt);
	vsnprintf(db->err, sizeof(db->err), fmt, ap);
	va_end(ap);
	return -1;
}

int
db_refuse(struct db *db, const char *fmt, ...)
{
	va_list ap;

	db->status = DB_INVALID;
	va_start(ap, fmt);
	vsnprintf(db->err, sizeof(db->err), fmt, ap);
	va_end(ap);
	return -1;
}

void
db_ok(struct db *db)
{
	db->status = DB_OK;
	db->err[0] = '\0';
}

enum db_status
db_status(const struct db *db)
{
	return db->status;
}

const char *
db_errmsg(const struct db *db)
{
	return db->err;
}

int64_t
db_now(void)
{
	return (int64_t)time(NULL);
}

int
db_exec(struct db *db, const char *sql)
{
	int rc = sqlite3_exec(db->sql, sql, NULL, NULL, NULL);

	if (rc != SQLITE_OK)
		return db_fail(db, rc, "exec");
	return 0;
}

int
db_bind_text(sqlite3_stmt *st, int idx, const char *s)
{
	if (s == NULL)
		return sqlite3_bind_null(st, idx);
	return sqlite3_bind_text(st, idx, s, -1, SQLITE_TRANSIENT);
}

int
db_step_done(struct db *db, sqlite3_stmt *st, const char *what)
{
	int rc = sqlite3_step(st);

	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return db_fail(db, rc, what);
	db_ok(db);
	return 0;
}

void
db_copy_col(sqlite3_stmt *st, int col, char *buf, size_t len)
{
	const unsigned char *t = sqlite3_column_text(st, col);
	size_t n = t ? (size_t)sqlite3_column_bytes(st, col) : 0;

	if (n >= len)
		n = len - 1;
	if (n > 0)
		memcpy(buf, t, n);
	buf[n] = '\0';
}

char *
db_col_dup(sqlite3_stmt *st, int col)
{
	const unsigned char *t = sqlite3_column_text(st, col);

	return strdup(t ? (const char *)t : "");
}

sqlite3_stmt *
db_stmt(struct db *db, const char *sql)
{
	size_t h = ((uintptr_t)sql >> 3) % DB_STMT_CACHE;
	sqlite3_stmt *st;
	int rc;

	for (size_t i = 0; i < DB_STMT_CACHE; i++) {
		size_t j = (h + i) % DB_STMT_CACHE;
		if (db->cache[j].key == sql) {
			st = db->cache[j].stmt;
			sqlite3_reset(st);
			sqlite3_clear_bindings(st);
			return st;
		}
		if (db->cache[j].key == NULL) {
			rc = sqlite3_prepare_v3(db->sql, sql, -1, SQLITE_PREPARE_PERSISTENT, &st,
			                        NULL);
			if (rc != SQLITE_OK) {
				db_fail(db, rc, "prepare");
				return NULL;
			}
			db->cache[j].key = sql;
			db->cache[j].stmt = st;
			return st;
		}
	}
	/* The cache is full: a bug (more distinct statements than slots). */
	db_failf(db, DB_ERR, "statement cache full; raise DB_STMT_CACHE");
	return NULL;
}

static int
mkdir_parent(const char *path)
{
	char dir[4096];
	char *slash;

	if (snprintf(dir, sizeof(dir), "%s", path) >= (int)sizeof(dir))
		return -1;
	slash = strrchr(dir, '/');
	if (slash == NULL || slash == dir)
		return 0;
	*slash = '\0';
	for (char *p = dir + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(dir, 0750) < 0 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	if (mkdir(dir, 0750) < 0 && errno != EEXIST)
		return -1;
	return 0;
}

int
db_schema_latest(void)
{
	return schema_latest();
}

int
db_schema_version(struct db *db)
{
	sqlite3_stmt *st;
	int v = -1;

	if (sqlite3_prepare_v2(db->sql, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK)
		return -1;
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return v;
}

static int
migrate(struct db *db)
{
	int cur, latest = schema_latest();
	char pragma[64];

	/* Up to date: no write lock, so that readers open while a writer works. */
	if (db_schema_version(db) == latest)
		return 0;
	if (db_exec(db, "BEGIN IMMEDIATE") < 0)
		return -1;
	cur = db_schema_version(db);
	if (cur < 0) {
		db_rollback(db);
		return db_failf(db, DB_ERR, "cannot read the schema version: %s",
		                sqlite3_errmsg(db->sql));
	}
	if (cur > latest) {
		db_rollback(db);
		return db_failf(db, DB_TOO_NEW,
		                "the database has schema version %d; this fanmail knows up to %d",
		                cur, latest);
	}
	for (int v = cur + 1; v <= latest; v++) {
		if (db_exec(db, schema_migration(v)) < 0) {
			char msg[512];
			snprintf(msg, sizeof(msg), "%s", db->err);
			db_rollback(db);
			return db_failf(db, DB_ERR, "migration to schema version %d failed: %s", v,
			                msg);
		}
	}
	snprintf(pragma, sizeof(pragma), "PRAGMA user_version = %d", latest);
	if (cur != latest && db_exec(db, pragma) < 0) {
		db_rollback(db);
		return -1;
	}
	if (db_exec(db, "COMMIT") < 0) {
		db_rollback(db);
		return -1;
	}
	return 0;
}

/* A WAL database in a directory this user may not write cannot be read
 * normally when its -shm file is missing (SQLite cannot create it). When
 * there is no -wal file either, the main file holds every committed
 * transaction and nobody can be writing through this directory's WAL:
 * reopen it as immutable (no locks, no -shm). With a -wal file present
 * that would skip its transactions, so the open fails instead. */
static int
open_immutable(struct db *db, const char *path)
{
	char wal[4096], uri[3 * 4096 + 32];
	size_t o = 0;
	struct stat st;

	if (snprintf(wal, sizeof(wal), "%s-wal", path) >= (int)sizeof(wal) || stat(wal, &st) == 0 ||
	    errno != ENOENT)
		return -1;
	o = (size_t)snprintf(uri, sizeof(uri), "file:");
	for (const char *p = path; *p && o + 4 < sizeof(uri); p++) {
		if (*p == '?' || *p == '#' || *p == '%')
			o +=
			    (size_t)snprintf(uri + o, sizeof(uri) - o, "%%%02X", (unsigned char)*p);
		else
			uri[o++] = *p;
	}
	snprintf(uri + o, sizeof(uri) - o, "?immutable=1");
	sqlite3_close(db->sql);
	db->sql = NULL;
	if (sqlite3_open_v2(uri, &db->sql,
	                    SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_URI,
	                    NULL) != SQLITE_OK)
		return -1;
	sqlite3_extended_result_codes(db->sql, 1);
	return 0;
}

struct db *
db_open(const char *path, int flags, char *err, size_t errlen)
{
	struct db *db = calloc(1, sizeof(*db));
	int oflags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX;
	int rc;

	if (db == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if (flags & DB_OPEN_CREATE) {
		oflags |= SQLITE_OPEN_CREATE;
		if (mkdir_parent(path) < 0) {
			snprintf(err, errlen, "%s: cannot create its directory: %s", path,
			         strerror(errno));
			free(db);
			return NULL;
		}
	}
	if (flags & DB_OPEN_READONLY)
		oflags = SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX;
	rc = sqlite3_open_v2(path, &db->sql, oflags, NULL);
	if (rc != SQLITE_OK) {
		snprintf(err, errlen, "%s: cannot open the database: %s", path,
		         db->sql ? sqlite3_errmsg(db->sql) : sqlite3_errstr(rc));
		goto fail;
	}
	sqlite3_extended_result_codes(db->sql, 1);
	sqlite3_busy_timeout(db->sql, DB_BUSY_TIMEOUT_MS);
	if (flags & DB_OPEN_READONLY) {
		/* The file is in WAL mode already (every writer sets it) and a
		 * reader has nothing to migrate: an old schema is refused
		 * rather than read wrongly. */
		int v = db_schema_version(db);

		if (v < 0 && open_immutable(db, path) == 0)
			v = db_schema_version(db);
		if (v < 0) {
			snprintf(err, errlen, "%s: cannot read the database (read-only): %s", path,
			         sqlite3_errmsg(db->sql));
			goto fail;
		}
		if (v != schema_latest()) {
			snprintf(err, errlen,
			         "%s: the database is read-only and has schema version %d; this "
			         "fanmail needs %d",
			         path, v, schema_latest());
			goto fail;
		}
		db_ok(db);
		return db;
	}
	if (db_exec(db, "PRAGMA journal_mode = WAL") < 0 ||
	    db_exec(db, "PRAGMA synchronous = FULL") < 0 ||
	    db_exec(db, "PRAGMA foreign_keys = ON") < 0 || migrate(db) < 0) {
		snprintf(err, errlen, "%s: %s", path, db->err);
		goto fail;
	}
	if ((db->path = strdup(path)) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	db_files_check(db); /* records the files as they are now */
	db_ok(db);
	return db;
fail:
	db_close(db);
	return NULL;
}

int
db_files_check(struct db *db)
{
	static const char *const suffix[2] = {"", "-wal"};
	char path[4200];
	struct stat st;

	for (int i = 0; i < 2; i++) {
		snprintf(path, sizeof(path), "%s%s", db->path, suffix[i]);
		if (stat(path, &st) < 0) {
			if (db->ino[i] == 0)
				continue; /* the -wal is made on the first write */
			return db_failf(db, DB_ERR, "%s: %s since it was opened", path,
			                errno == ENOENT ? "deleted" : strerror(errno));
		}
		if (db->ino[i] == 0) {
			db->dev[i] = (unsigned long long)st.st_dev;
			db->ino[i] = (unsigned long long)st.st_ino;
		} else if (db->dev[i] != (unsigned long long)st.st_dev ||
		           db->ino[i] != (unsigned long long)st.st_ino) {
			return db_failf(
			    db, DB_ERR,
			    "%s: replaced by another file since it was opened (inode %llu, "
			    "was %llu)",
			    path, (unsigned long long)st.st_ino, db->ino[i]);
		}
	}
	return 0;
}

void
db_close(struct db *db)
{
	if (db == NULL)
		return;
	for (size_t i = 0; i < DB_STMT_CACHE; i++)
		if (db->cache[i].stmt != NULL)
			sqlite3_finalize(db->cache[i].stmt);
	if (db->sql != NULL)
		sqlite3_close(db->sql);
	free(db->path);
	free(db);
}

int
db_begin(struct db *db)
{
	int rc = sqlite3_exec(db->sql, "BEGIN IMMEDIATE", NULL, NULL, NULL);

	if (rc != SQLITE_OK)
		return db_fail(db, rc, "begin");
	db->in_tx = 1;
	return 0;
}

int
db_commit(struct db *db)
{
	int rc = sqlite3_exec(db->sql, "COMMIT", NULL, NULL, NULL);

	if (rc != SQLITE_OK) {
		db_fail(db, rc, "commit");
		db_rollback(db);
		return -1;
	}
	db->in_tx = 0;
	return 0;
}

void
db_rollback(struct db *db)
{
	if (!sqlite3_get_autocommit(db->sql))
		sqlite3_exec(db->sql, "ROLLBACK", NULL, NULL, NULL);
	db->in_tx = 0;
}

int
db_run(struct db *db, const char *sql, const char *what)
{
	sqlite3_stmt *st = db_stmt(db, sql);
	int rc;

	if (st == NULL)
		return -1;
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return db_fail(db, rc, what);
	return 0;
}

int
db_delete_before(struct db *db, const char *sql, int64_t before, int limit, const char *what)
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

/* Savepoints run for every message and every spool entry: prepared once
 * (db_stmt), not parsed again each time as sqlite3_exec() would. All share
 * one name, which nests: RELEASE and ROLLBACK TO name the innermost. */
int
db_savepoint(struct db *db)
{
	static const char sql[] = "SAVEPOINT unit";

	return db_run(db, sql, "savepoint");
}

int
db_release_savepoint(struct db *db)
{
	static const char sql[] = "RELEASE unit";

	return db_run(db, sql, "release savepoint");
}

void
db_undo_savepoint(struct db *db)
{
	static const char undo[] = "ROLLBACK TO unit";
	static const char forget[] = "RELEASE unit";
	enum db_status st = db->status;
	char msg[sizeof(db->err)];

	if (sqlite3_get_autocommit(db->sql))
		return; /* SQLite already rolled the whole transaction back */
	/* Keeps the error that made the caller undo. */
	memcpy(msg, db->err, sizeof(msg));
	db_run(db, undo, "rollback to savepoint");
	db_run(db, forget, "release savepoint");
	db->status = st;
	memcpy(db->err, msg, sizeof(msg));
}

int
db_in_transaction(struct db *db)
{
	return !sqlite3_get_autocommit(db->sql);
}

int
db_sync_normal(struct db *db)
{
	return db_exec(db, "PRAGMA synchronous = NORMAL");
}

int
db_check(struct db *db)
{
	sqlite3_stmt *st;
	int ok = 0;

	if (sqlite3_prepare_v2(db->sql, "PRAGMA integrity_check", -1, &st, NULL) != SQLITE_OK)
		return db_fail(db, sqlite3_errcode(db->sql), "integrity_check");
	if (sqlite3_step(st) == SQLITE_ROW)
		ok = strcmp((const char *)sqlite3_column_text(st, 0), "ok") == 0;
	sqlite3_finalize(st);
	if (!ok)
		return db_failf(db, DB_ERR, "integrity_check failed");
	return 0;
}
