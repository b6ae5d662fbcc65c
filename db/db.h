/*
 * db.h - the store: the only module that speaks SQL.
 *
 * One struct db per SQLite connection (a connection is used by one thread
 * at a time). db_open() opens or creates the database, sets WAL, foreign
 * keys, synchronous=FULL and a busy timeout, and runs pending migrations.
 * The typed functions live in one file per table (or close family), each
 * with its own header:
 *
 *   lists.c      lists, list_settings, roles, list_gen (change detection)
 *   members.c    members, member_counts (bulk import), a poster's standing
 *   spool.c      spool, spool_body, spool_rcpt: insert, the engine's walk
 *   queue.c      out_msg, deliveries: queue ids, adding (incl. the fan-out
 *                of a post), the scheduler, `fanmail queue`
 *   bounces.c    bounce_events, bounce_disabled, members' bounce scores
 *   tokens.c     tokens (and the random tokens holds use)
 *   holds.c      holds (moderation)
 *   replies.c    reply_log (rate limits of automatic replies)
 *   archive.c    archive
 *   engine.c     dmarc_cache, events; the engine runner's connection
 *   secrets.c    secrets (server keys the schema makes)
 *   dkim.c       dkim_keys (DKIM signing keys per domain)
 *   retention.c  the retention pass (each table's purge is in its file)
 *   schema.c     migrations; db.c: open, transactions, errors, statements
 *
 * db/ speaks SQLite only: it includes nothing of conf/ or mail/ and takes
 * canonical, checked strings (lists/store.c checks and canonicalizes).
 * The statements and helpers its files share are in db_internal.h. Every
 * function returns 0 on success and -1 on failure, with the kind of
 * failure in db_status() and a message in db_errmsg().
 */
#ifndef FANMAIL_DB_H
#define FANMAIL_DB_H

#include <stddef.h>
#include <stdint.h>

struct db;

/* The longest address texts the store keeps: RFC 5321's limits, the same
 * as mail/addr.h's ADDR_LOCAL_MAX, ADDR_DOMAIN_MAX and ADDR_PATH_MAX
 * (lists/store.c checks that they agree). */
#define DB_LOCAL_MAX 64
#define DB_DOMAIN_MAX 255
#define DB_PATH_MAX 254

/* One address in the forms the store keeps of it; lists/store.c makes it
 * from a parsed address (store_addr()). */
struct db_addr {
	char address[DB_PATH_MAX + 1];  /* as written: addr_format() */
	char key[DB_PATH_MAX + 1];      /* what compares: addr_key() */
	char domain[DB_DOMAIN_MAX + 1]; /* lower-cased: addr_domain_key() */
};

/* Records that the caller refused its input before calling in (a layer
 * above that checks what the store keeps: lists/, admin/): DB_INVALID
 * with the message, as a refusal inside db/ would be. Returns -1. */
int db_refuse(struct db *db, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

enum db_status {
	DB_OK = 0,
	DB_ERR,      /* anything else: I/O error, corrupt file, bug */
	DB_BUSY,     /* locked by another process past the busy timeout */
	DB_FULL,     /* disk or quota full */
	DB_NOTFOUND, /* the thing named does not exist */
	DB_EXISTS,   /* a unique thing exists already */
	DB_INVALID,  /* the caller's input was refused (bad value) */
	DB_READONLY, /* the file or directory is not writable */
	DB_TOO_NEW,  /* the database was written by a newer fanmail */
};

#define DB_OPEN_CREATE 0x1 /* create the file (and its directory) if missing */
/* Open for reading only (SQLITE_OPEN_READONLY): for a database in a
 * directory or file this user may not write. Every write then fails with
 * DB_READONLY; the schema must be current already. */
#define DB_OPEN_READONLY 0x2

/* Opens path; returns NULL with a message in err on failure. */
struct db *db_open(const char *path, int flags, char *err, size_t errlen);
void db_close(struct db *db);

enum db_status db_status(const struct db *db);
const char *db_errmsg(const struct db *db);

/* Schema version of the open database, and the one this build writes. */
int db_schema_version(struct db *db);
int db_schema_latest(void);

/* Transactions. db_begin() takes the write lock at once (BEGIN IMMEDIATE),
 * so a busy database is reported before any work is done. */
int db_begin(struct db *db);
int db_commit(struct db *db);
void db_rollback(struct db *db);
/* Nested units of work inside a transaction: db_savepoint() marks a
 * point, db_undo_savepoint() rolls back to it and forgets it (the rest of
 * the transaction stays; the error that caused it is kept),
 * db_release_savepoint() keeps its work. They nest: each release or undo
 * ends the innermost savepoint still open. */
int db_savepoint(struct db *db);
int db_release_savepoint(struct db *db);
void db_undo_savepoint(struct db *db);
/* 1 while a transaction is open (SQLite ends one by itself on some
 * errors, e.g. a full disk: the caller's earlier work is then gone). */
int db_in_transaction(struct db *db);
/* PRAGMA synchronous = NORMAL for this connection only: its commits skip
 * the fsync (WAL mode: a power loss may undo its latest transactions,
 * never corrupt the file, and the next FULL commit of any connection
 * syncs them too). Only for work that is redone when undone. */
int db_sync_normal(struct db *db);

/* Seconds since the epoch, the time stamps stored everywhere. */
int64_t db_now(void);

/* 0 when the database file and its -wal at the path opened are still the
 * files this connection opened; -1 (DB_ERR, with a message saying which)
 * when one was deleted or replaced: whatever is committed now goes into a
 * file nobody will read again. Two stat() calls. */
int db_files_check(struct db *db);

/* PRAGMA integrity_check; 0 when it answers ok. */
int db_check(struct db *db);

#endif
