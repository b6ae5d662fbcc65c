/*
 * store.h - what comes from outside (the CLI, email commands, bounces) on
 * its way into the store: lists, their role holders, members and per-list
 * settings, checked and put in canonical form here, because db/ takes
 * canonical strings only.
 *
 * A parsed address becomes the forms the store keeps (struct db_addr); a
 * list address is checked with listaddr_check_list_address(); display names with
 * addr_check_name(); member fields and setting values with conf/ (a
 * setting is stored in conf_list_check()'s canonical form, and one never
 * set reads as its default from conf/list_settings.def; at run time the
 * engine reads them all typed, with lists/list_conf.h).
 *
 * Each function is the db/ function of the same name (store_member_add is
 * db_member_add) over those checks; a refusal is reported like one inside
 * db/: -1 with DB_INVALID in db_status() and the reason in db_errmsg().
 */
#ifndef FANMAIL_STORE_H
#define FANMAIL_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "db/db.h"
#include "db/lists.h"
#include "db/members.h"
#include "mail/addr.h"

/* The forms of a that the store keeps; DB_INVALID when too long. */
int store_addr(struct db *db, const struct addr *a, struct db_addr *out);

/* ---- lists and roles ---- */

int store_list_create(struct db *db, const struct addr *a, struct db_list *out);
int store_role_add(struct db *db, int64_t list_id, const char *role, const struct addr *a);
int store_role_remove(struct db *db, int64_t list_id, const char *role, const struct addr *a);

/* ---- members ---- */

int store_member_add(struct db *db, int64_t list_id, const struct addr *a, const char *name,
                     const char *status);
int store_member_remove(struct db *db, int64_t list_id, const struct addr *a);
int store_member_find(struct db *db, int64_t list_id, const struct addr *a, struct db_member *out);
/* self_copy takes any of conf_parse_bool()'s words; name is checked. */
int store_member_set(struct db *db, int64_t list_id, const struct addr *a, const char *key,
                     const char *value);
/* DB_INVALID: the name or address was refused, nothing happened (the
 * import goes on); anything else: end the import with commit = 0. */
int store_member_import_add(struct db *db, struct db_import *im, const struct addr *a,
                            const char *name);

/* ---- settings ---- */

/* Sets key to value after conf_list_check(); DB_INVALID (message says why)
 * for an unknown key or a bad value. */
int store_setting_set(struct db *db, int64_t list_id, const char *key, const char *value);

/* The value of key (stored, else the default, canonical) into buf.
 * Returns 0, or -1 (DB_INVALID for an unknown key). *is_default, when not
 * NULL, tells whether the value is the default. */
int store_setting_get(struct db *db, int64_t list_id, const char *key, char *buf, size_t len,
                      int *is_default);

#endif
