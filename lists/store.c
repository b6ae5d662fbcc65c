/*
 * store.c - checking and canonicalizing what goes into the store. See
 * store.h.
 */
#include "lists/store.h"
#include "conf/conf.h"
#include "lists/listaddr.h"

#include <stdio.h>
#include <string.h>

/* db/ sizes its buffers by these without seeing mail/addr.h. */
_Static_assert(DB_LOCAL_MAX == ADDR_LOCAL_MAX, "db/db.h and mail/addr.h disagree");
_Static_assert(DB_DOMAIN_MAX == ADDR_DOMAIN_MAX, "db/db.h and mail/addr.h disagree");
_Static_assert(DB_PATH_MAX == ADDR_PATH_MAX, "db/db.h and mail/addr.h disagree");

int
store_addr(struct db *db, const struct addr *a, struct db_addr *out)
{
	if (addr_format(a, out->address, sizeof(out->address)) < 0 ||
	    addr_key(a, out->key, sizeof(out->key)) < 0 ||
	    addr_domain_key(a, out->domain, sizeof(out->domain)) < 0)
		return db_refuse(db, "address too long");
	return 0;
}

/* A display name: NULL (none) or checked. */
static int
check_name(struct db *db, const char *name)
{
	const char *why;

	if (name == NULL)
		return 0;
	if (strlen(name) > DB_MEMBER_NAME_MAX)
		return db_refuse(db, "the name is longer than %d octets", DB_MEMBER_NAME_MAX);
	if (addr_check_name(name, strlen(name), &why) < 0)
		return db_refuse(db, "%s", why);
	return 0;
}

/* ---- lists and roles ---- */

int
store_list_create(struct db *db, const struct addr *a, struct db_list *out)
{
	char address[ADDR_PATH_MAX + 1], why[160];

	if (listaddr_check_list_address(a, why, sizeof(why)) < 0)
		return db_refuse(db, "%s", why);
	if (addr_format(a, address, sizeof(address)) < 0)
		return db_refuse(db, "address too long");
	return db_list_create(db, address, a->local, a->domain, out);
}

int
store_role_add(struct db *db, int64_t list_id, const char *role, const struct addr *a)
{
	struct db_addr k;

	if (store_addr(db, a, &k) < 0)
		return -1;
	return db_list_role_add(db, list_id, role, &k);
}

int
store_role_remove(struct db *db, int64_t list_id, const char *role, const struct addr *a)
{
	struct db_addr k;

	if (store_addr(db, a, &k) < 0)
		return -1;
	return db_list_role_remove(db, list_id, role, &k);
}

/* ---- members ---- */

int
store_member_add(struct db *db, int64_t list_id, const struct addr *a, const char *name,
                 const char *status)
{
	struct db_addr k;

	if (store_addr(db, a, &k) < 0 || check_name(db, name) < 0)
		return -1;
	return db_member_add(db, list_id, &k, name, status);
}

int
store_member_remove(struct db *db, int64_t list_id, const struct addr *a)
{
	struct db_addr k;

	if (store_addr(db, a, &k) < 0)
		return -1;
	return db_member_remove(db, list_id, &k);
}

int
store_member_find(struct db *db, int64_t list_id, const struct addr *a, struct db_member *out)
{
	struct db_addr k;

	if (store_addr(db, a, &k) < 0)
		return -1;
	return db_member_find(db, list_id, &k, out);
}

int
store_member_set(struct db *db, int64_t list_id, const struct addr *a, const char *key,
                 const char *value)
{
	struct db_addr k;
	const char *why;
	int b;

	if (strcmp(key, "self_copy") == 0) {
		if (conf_parse_bool(value, &b) < 0)
			return db_refuse(db, "self_copy: '%s' is not yes or no", value);
		value = b ? "yes" : "no";
	} else if (strcmp(key, "name") == 0) {
		if (strlen(value) > DB_MEMBER_NAME_MAX)
			return db_refuse(db, "name: longer than %d octets", DB_MEMBER_NAME_MAX);
		if (addr_check_name(value, strlen(value), &why) < 0)
			return db_refuse(db, "name: %s", why);
	}
	if (store_addr(db, a, &k) < 0)
		return -1;
	return db_member_set(db, list_id, &k, key, value);
}

int
store_member_import_add(struct db *db, struct db_import *im, const struct addr *a, const char *name)
{
	struct db_addr k;

	if (store_addr(db, a, &k) < 0 || check_name(db, name) < 0)
		return -1;
	return db_member_import_add(im, &k, name);
}

/* ---- settings ---- */

int
store_setting_set(struct db *db, int64_t list_id, const char *key, const char *value)
{
	char canon[4096], err[512];

	if (conf_list_check(key, value, canon, sizeof(canon), err, sizeof(err)) < 0)
		return db_refuse(db, "%s", err);
	return db_list_set(db, list_id, key, canon);
}

int
store_setting_get(struct db *db, int64_t list_id, const char *key, char *buf, size_t len,
                  int *is_default)
{
	const struct conf_def *d = conf_list_def(key);
	char err[256];
	int rc;

	if (d == NULL)
		return db_refuse(db, "%s: unknown list setting", key);
	rc = db_list_setting_stored(db, list_id, key, buf, len);

	if (rc < 0)
		return -1;
	if (rc == 0) {
		/* The default, in canonical form. */
		if (conf_list_check(key, d->def, buf, len, err, sizeof(err)) < 0)
			snprintf(buf, len, "%s", d->def);
	}
	if (is_default != NULL) {
		char def[4096];
		if (conf_list_check(key, d->def, def, sizeof(def), err, sizeof(err)) < 0)
			snprintf(def, sizeof(def), "%s", d->def);
		*is_default = strcmp(buf, def) == 0;
	}
	return 0;
}
