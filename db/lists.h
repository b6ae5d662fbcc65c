/*
 * lists.h - lists, their per-list settings and their roles (owner,
 * moderator).
 *
 * A list is found by its address: the local part and the domain, both
 * compared with ASCII letters lower-cased (db_list_find(), the only lookup
 * by address). The settings live in list_settings as canonical text: the
 * caller checks a value and gives its canonical form, and supplies the
 * default of a setting never set (lists/store.c does both, with
 * conf_list_check()). An address given here is canonical too: a list's
 * address checked by the caller (lists/listaddr.c), a role holder's in the
 * forms of struct db_addr.
 *
 * Functions that change several rows (create with owners, delete) do not
 * open a transaction of their own: wrap them in db_begin()/db_commit() so
 * that a failure leaves nothing half-written (the CLI does).
 */
#ifndef FANMAIL_DB_LISTS_H
#define FANMAIL_DB_LISTS_H

#include <stddef.h>
#include <stdint.h>

#include "db/db.h"

struct db_list {
	int64_t id;
	char address[DB_PATH_MAX + 1];  /* as created */
	char local[DB_LOCAL_MAX + 1];   /* lower-cased */
	char domain[DB_DOMAIN_MAX + 1]; /* lower-cased */
	int64_t created;
	int64_t post_count;
};

/* Creates the list address (as written), whose local part and domain are
 * stored lower-cased; the caller has checked the address
 * (listaddr_check_list_address()). DB_EXISTS when it exists, DB_INVALID when a
 * part is too long. Fills out (may be NULL). */
int db_list_create(struct db *db, const char *address, const char *local, const char *domain,
                   struct db_list *out);

/* Deletes the list with its settings, roles and members. */
int db_list_delete(struct db *db, int64_t list_id);

/* Finds a list by local part and domain (any case). DB_NOTFOUND when
 * there is none. */
int db_list_find(struct db *db, const char *local, const char *domain, struct db_list *out);
int db_list_get(struct db *db, int64_t list_id, struct db_list *out);

/* Calls fn for every list in address order; fn returns non-zero to stop
 * (that value is returned). */
typedef int (*db_list_fn)(const struct db_list *l, void *arg);
int db_list_each(struct db *db, db_list_fn fn, void *arg);

/* All lists in one array (malloc'd; free() it). *n gets the count. */
int db_list_all(struct db *db, struct db_list **lists, size_t *n);

/* Counts one more post in lists.post_count; *k (may be NULL) gets the new
 * count, the post's number (1 for the list's first). */
int db_engine_count_post(struct db *db, int64_t list_id, int64_t *k);

/* ---- settings ---- */

/* Stores value, canonical and checked by the caller, as key's value. */
int db_list_set(struct db *db, int64_t list_id, const char *key, const char *value);

/* The stored value of key into buf: returns 1, or 0 when it was never
 * set (its value is then the default, which the caller knows), or -1. */
int db_list_setting_stored(struct db *db, int64_t list_id, const char *key, char *buf, size_t len);

/* Calls fn with every stored setting of the list (raw key and value text;
 * unset settings are not stored). lists/list_conf.c turns them into a
 * typed struct list_conf: the one place settings are read at run time. */
typedef void (*db_setting_fn)(void *arg, const char *key, const char *value);
int db_list_settings_each(struct db *db, int64_t list_id, db_setting_fn fn, void *arg);

/* ---- roles ---- */

#define DB_ROLE_OWNER "owner"
#define DB_ROLE_MODERATOR "moderator"

/* Adds a as role ("owner" or "moderator"); DB_EXISTS when it has it. */
int db_list_role_add(struct db *db, int64_t list_id, const char *role, const struct db_addr *a);
/* DB_NOTFOUND when a does not have the role. */
int db_list_role_remove(struct db *db, int64_t list_id, const char *role, const struct db_addr *a);
/* 1 when the address with lookup key addr_key has the role, 0 if not,
 * -1 on error. */
int db_list_has_role(struct db *db, int64_t list_id, const char *role, const char *addr_key);

/* Calls fn(address, arg) for each holder of role, in key order. */
typedef int (*db_role_fn)(const char *address, void *arg);
int db_list_role_each(struct db *db, int64_t list_id, const char *role, db_role_fn fn, void *arg);

/* ---- every list at once: RCPT checks and local delivery ---- */

/* Change detection for the list table, cheap enough for every RCPT: *stamp
 * starts zeroed; returns 1 (and updates *stamp) when lists were created,
 * deleted or renamed since the last call that returned 1, 0 when not, -1 on
 * error. It reads only SQLite's data_version unless another connection has
 * committed since the previous call. */
struct db_list_stamp {
	int64_t data_version;
	int64_t gen;
	int valid;
};
int db_spool_lists_changed(struct db *db, struct db_list_stamp *stamp);

/* Calls fn for every list (id, lower-cased local part and domain). Stops
 * and returns -1 when fn returns non-zero. */
int db_spool_lists_load(struct db *db,
                        int (*fn)(void *arg, int64_t id, const char *local, const char *domain),
                        void *arg);

/* 1 when domain is the domain of one of our lists, 0 when not, -1. */
int db_queue_local_domain(struct db *db, const char *domain);

#endif
