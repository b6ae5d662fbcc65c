/*
 * db_internal.h - what the files of db/ share, and nobody else sees.
 */
#ifndef FANMAIL_DB_INTERNAL_H
#define FANMAIL_DB_INTERNAL_H

#include <sqlite3.h>

#include "db/db.h"

#define DB_STMT_CACHE 128
/* How long a connection waits for another one's write lock. */
#define DB_BUSY_TIMEOUT_MS 5000

struct db {
	sqlite3 *sql;
	enum db_status status;
	char err[512];
	int in_tx;
	char *path;
	/* db_spool_tune(): the busy handler stops waiting when this says so */
	int (*cancel)(void *arg);
	void *cancel_arg;
	/* The files opened (db_files_check): device and inode of the
	 * database and of its -wal, 0 while not known yet. */
	unsigned long long dev[2], ino[2];
	/* Prepared statements, keyed by the address of their SQL text (a
	 * string literal), prepared once per connection. */
	struct {
		const char *key;
		sqlite3_stmt *stmt;
	} cache[DB_STMT_CACHE];
};

/* The statement for sql (a string literal), reset and with its bindings
 * cleared; NULL with the error set when it cannot be prepared. */
sqlite3_stmt *db_stmt(struct db *db, const char *sql);

/* Records the connection's last error (rc from a sqlite3 call) under a
 * short description of what was being done; returns -1. */
int db_fail(struct db *db, int rc, const char *what);
/* Sets an error of a given kind with a formatted message; returns -1. */
int db_failf(struct db *db, enum db_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void db_ok(struct db *db);

/* Runs the cached statement for sql (a string literal, no bindings) to
 * its end; on failure sets the error under what and returns -1. */
int db_run(struct db *db, const char *sql, const char *what);

/* Runs the cached DELETE sql (a string literal) whose ?1 is a time and ?2
 * a row limit (retention's chunks); returns how many rows went, or -1
 * with the error set under what. */
int db_delete_before(struct db *db, const char *sql, int64_t before, int limit, const char *what);

/* Runs SQL text with no results (schema, pragmas). */
int db_exec(struct db *db, const char *sql);

/* Binds text, or NULL when s is NULL. */
int db_bind_text(sqlite3_stmt *st, int idx, const char *s);

/* Steps st, a statement that returns no rows, and resets it; sets the
 * error under what and returns -1 when it does not run to its end. */
int db_step_done(struct db *db, sqlite3_stmt *st, const char *what);

/* Copies text column col of the current row into buf (len > 0), cut to
 * fit; "" for NULL. */
void db_copy_col(sqlite3_stmt *st, int col, char *buf, size_t len);

/* A malloc'd copy of text column col ("" for NULL); NULL when out of
 * memory. */
char *db_col_dup(sqlite3_stmt *st, int col);

/* Writes 32 random hex digits and a NUL to out (tokens.c, for tokens and
 * holds); -1 with errno set when the system has no randomness to give. */
int db_random_token(char out[33]);

#endif
