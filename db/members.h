/*
 * members.h - the members of a list: add, remove, find, change, stream,
 * count, and bulk import.
 *
 * A member is keyed by its list and addr_key() of its address, so that
 * Bob@Example.org and bob@example.org are one member; the address is kept
 * as it was given. Addresses come in the forms of struct db_addr and names
 * checked, made by the caller (lists/store.c); the member fields given to
 * db_member_set() are canonical (self_copy is yes or no). Iteration (db_member_each) streams rows
 * from SQLite in key order with a callback, so memory stays flat for any list size.
 *
 * Bulk import (db_member_import_*) runs in ONE transaction, skips
 * addresses that are members already (re-importing changes nothing), and
 * raises SQLite's page cache while it runs.
 */
#ifndef FANMAIL_DB_MEMBERS_H
#define FANMAIL_DB_MEMBERS_H

#include <stddef.h>
#include <stdint.h>

#include "db/db.h"

#define DB_MEMBER_NAME_MAX 255

struct db_member {
	int64_t id;
	int64_t list_id;
	char address[DB_PATH_MAX + 1];  /* as given */
	char addr_key[DB_PATH_MAX + 1]; /* addr_key() */
	char domain[DB_DOMAIN_MAX + 1]; /* addr_domain_key() */
	char name[DB_MEMBER_NAME_MAX + 1];
	char status[16];   /* enabled, disabled, unconfirmed */
	char delivery[16]; /* regular, digest, digest-text, nomail */
	int self_copy;
	double bounce_score;
	int64_t last_bounce; /* 0 when none */
	int64_t created;
	int64_t updated;
};

/* 1 when s is a member status (enabled, disabled, unconfirmed). */
int db_member_status_valid(const char *s);

/* Adds a to the list with the given name (NULL or "" for none) and status
 * (NULL for enabled). DB_EXISTS when the address is a member already. */
int db_member_add(struct db *db, int64_t list_id, const struct db_addr *a, const char *name,
                  const char *status);

/* DB_NOTFOUND when a is not a member. */
int db_member_remove(struct db *db, int64_t list_id, const struct db_addr *a);

/* Finds a member by address (compared by key). DB_NOTFOUND if none. */
int db_member_find(struct db *db, int64_t list_id, const struct db_addr *a, struct db_member *out);

/* Sets one field: status (enabled|disabled|unconfirmed; enabled also
 * clears the bounce score and the disabled reason), delivery
 * (regular|digest|digest-text|nomail), self_copy (yes|no) or name. DB_INVALID for an
 * unknown key or a bad value, DB_NOTFOUND when a is not a member. */
int db_member_set(struct db *db, int64_t list_id, const struct db_addr *a, const char *key,
                  const char *value);

/* Calls fn for each member (of the given status, or all when status is
 * NULL) in key order; fn returns non-zero to stop, and that value is
 * returned. The row is streamed: fn must not call db_member_each. */
typedef int (*db_member_fn)(const struct db_member *m, void *arg);
int db_member_each(struct db *db, int64_t list_id, const char *status, db_member_fn fn, void *arg);

struct db_member_counts {
	int64_t enabled;
	int64_t disabled;
	int64_t unconfirmed;
	int64_t total;
};

int db_member_count(struct db *db, int64_t list_id, struct db_member_counts *c);

/* What the poster with lookup key addr_key is to the list: a member (any
 * status but unconfirmed), an owner or moderator. */
int db_engine_poster(struct db *db, int64_t list_id, const char *addr_key, int *is_member,
                     int *is_privileged);

/* ---- bulk import ----
 *	struct db_import *im = db_member_import_begin(db, list_id); // BEGIN IMMEDIATE
 *	for each line: db_member_import_add(im, &a, name);
 *	db_member_import_end(im, 1, &added);  // COMMIT (0: ROLLBACK); frees im
 * New members are enabled; an address that is a member already (or comes
 * twice) is left as it is, and only the new ones count in *added. Rows are
 * written in batches of 64 with one statement. While the import runs, the
 * per-row trigger that keeps member_counts is replaced by one update at the
 * end (inside the same transaction, so no other connection ever sees it
 * missing).
 */
struct db_import;
/* NULL on failure, with the error in db_status()/db_errmsg(). */
struct db_import *db_member_import_begin(struct db *db, int64_t list_id);
/* Says, right after begin, that about `rows` addresses will come (the
 * caller's estimate, e.g. from a file's size). When that is large and at
 * least doubles the members table, the fan-out's index is dropped and
 * built once, sorted, at the commit (same transaction: other connections
 * never see it missing). Returns 0, or -1 when the store failed (then end
 * the import with commit = 0). */
int db_member_import_expect(struct db_import *im, int64_t rows);
/* Makes the members this import adds (not those that are members already)
 * get delivery mode (regular, digest, digest-text, nomail) instead of
 * regular; call right after begin. Returns 0, or -1: DB_INVALID for an
 * unknown mode (nothing happened), else end the import with commit = 0. */
int db_member_import_delivery(struct db_import *im, const char *mode);
/* Queues a (and its name, NULL or "" for none). Returns 0, or -1 on error:
 * DB_INVALID means the name was refused and nothing happened;
 * anything else means the import must be ended with commit = 0. */
int db_member_import_add(struct db_import *im, const struct db_addr *a, const char *name);
/* Commits (or rolls back) and frees im; *added (may be NULL) gets the
 * number of new members. */
int db_member_import_end(struct db_import *im, int commit, int64_t *added);

#endif
