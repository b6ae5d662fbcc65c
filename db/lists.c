/*
 * lists.c - lists, per-list settings and roles, the post count, and the
 * change detection and load of all lists that RCPT checks use. See lists.h.
 *
 * Every statement is reset before a function returns, so that no read
 * transaction stays open behind the caller's back (a WAL reader left open
 * blocks checkpoints and turns the next write into SQLITE_BUSY_SNAPSHOT).
 */
#include "db/lists.h"
#include "db/db_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The one rule by which a list's name is stored and found: ASCII letters
 * lower-cased, every other octet kept (list addresses are ASCII). */
static void
lower_copy(char *dst, const char *src, size_t len)
{
	size_t i;

	for (i = 0; i + 1 < len && src[i]; i++)
		dst[i] = (src[i] >= 'A' && src[i] <= 'Z') ? (char)(src[i] + 32) : src[i];
	dst[i] = '\0';
}

static void
list_row(sqlite3_stmt *st, struct db_list *l)
{
	l->id = sqlite3_column_int64(st, 0);
	db_copy_col(st, 1, l->address, sizeof(l->address));
	db_copy_col(st, 2, l->local, sizeof(l->local));
	db_copy_col(st, 3, l->domain, sizeof(l->domain));
	l->created = sqlite3_column_int64(st, 4);
	l->post_count = sqlite3_column_int64(st, 5);
}

#define LIST_COLS "id, address, local, domain, created, post_count"

int
db_list_create(struct db *db, const char *address, const char *local_part, const char *domain_name,
               struct db_list *out)
{
	static const char sql[] = "INSERT INTO lists (address, local, domain, created) "
	                          "VALUES (?, ?, ?, ?)";
	char local[DB_LOCAL_MAX + 1], domain[DB_DOMAIN_MAX + 1];
	sqlite3_stmt *st;
	int rc;

	if (strlen(address) > DB_PATH_MAX || strlen(local_part) > DB_LOCAL_MAX ||
	    strlen(domain_name) > DB_DOMAIN_MAX)
		return db_failf(db, DB_INVALID, "address too long");
	lower_copy(local, local_part, sizeof(local));
	lower_copy(domain, domain_name, sizeof(domain));
	if ((st = db_stmt(db, sql)) == NULL)
		return -1;
	db_bind_text(st, 1, address);
	db_bind_text(st, 2, local);
	db_bind_text(st, 3, domain);
	sqlite3_bind_int64(st, 4, db_now());
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		if ((rc & 0xff) == SQLITE_CONSTRAINT)
			return db_failf(db, DB_EXISTS, "the list %s exists already", address);
		return db_fail(db, rc, "creating the list");
	}
	if (out != NULL)
		return db_list_get(db, sqlite3_last_insert_rowid(db->sql), out);
	db_ok(db);
	return 0;
}

int
db_list_delete(struct db *db, int64_t list_id)
{
	static const char sql[] = "DELETE FROM lists WHERE id = ?";
	sqlite3_stmt *st;
	int rc;

	if ((st = db_stmt(db, sql)) == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, list_id);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return db_fail(db, rc, "deleting the list");
	if (sqlite3_changes(db->sql) == 0)
		return db_failf(db, DB_NOTFOUND, "no list with id %lld", (long long)list_id);
	db_ok(db);
	return 0;
}

int
db_list_find(struct db *db, const char *local, const char *domain, struct db_list *out)
{
	static const char sql[] = "SELECT " LIST_COLS " FROM lists WHERE local = ? AND domain = ?";
	char l[DB_LOCAL_MAX + 1], d[DB_DOMAIN_MAX + 1];
	sqlite3_stmt *st;
	int rc;

	lower_copy(l, local, sizeof(l));
	lower_copy(d, domain, sizeof(d));
	if ((st = db_stmt(db, sql)) == NULL)
		return -1;
	db_bind_text(st, 1, l);
	db_bind_text(st, 2, d);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		list_row(st, out);
	sqlite3_reset(st);
	if (rc == SQLITE_DONE)
		return db_failf(db, DB_NOTFOUND, "no list %s@%s", local, domain);
	if (rc != SQLITE_ROW)
		return db_fail(db, rc, "finding the list");
	db_ok(db);
	return 0;
}

int
db_list_get(struct db *db, int64_t list_id, struct db_list *out)
{
	static const char sql[] = "SELECT " LIST_COLS " FROM lists WHERE id = ?";
	sqlite3_stmt *st;
	int rc;

	if ((st = db_stmt(db, sql)) == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, list_id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		list_row(st, out);
	sqlite3_reset(st);
	if (rc == SQLITE_DONE)
		return db_failf(db, DB_NOTFOUND, "no list with id %lld", (long long)list_id);
	if (rc != SQLITE_ROW)
		return db_fail(db, rc, "reading the list");
	db_ok(db);
	return 0;
}

int
db_list_each(struct db *db, db_list_fn fn, void *arg)
{
	static const char sql[] = "SELECT " LIST_COLS " FROM lists ORDER BY domain, local";
	sqlite3_stmt *st;
	struct db_list l;
	int rc, stop = 0;

	if ((st = db_stmt(db, sql)) == NULL)
		return -1;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		list_row(st, &l);
		if ((stop = fn(&l, arg)) != 0)
			break;
	}
	sqlite3_reset(st);
	if (stop)
		return stop;
	if (rc != SQLITE_DONE)
		return db_fail(db, rc, "listing the lists");
	db_ok(db);
	return 0;
}

struct all_ctx {
	struct db_list *v;
	size_t n, cap;
};

static int
collect(const struct db_list *l, void *arg)
{
	struct all_ctx *c = arg;

	if (c->n == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 16;
		struct db_list *v = realloc(c->v, cap * sizeof(*v));
		if (v == NULL)
			return -2;
		c->v = v;
		c->cap = cap;
	}
	c->v[c->n++] = *l;
	return 0;
}

int
db_list_all(struct db *db, struct db_list **lists, size_t *n)
{
	struct all_ctx c = {0};
	int rc = db_list_each(db, collect, &c);

	if (rc != 0) {
		free(c.v);
		if (rc == -2)
			return db_failf(db, DB_ERR, "out of memory");
		return -1;
	}
	*lists = c.v;
	*n = c.n;
	return 0;
}

int
db_engine_count_post(struct db *db, int64_t list_id, int64_t *k)
{
	static const char sql[] = "UPDATE lists SET post_count = post_count + 1 WHERE id = ?1"
	                          " RETURNING post_count";
	sqlite3_stmt *st = db_stmt(db, sql);
	int64_t n = 0;
	int rc;

	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, list_id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		n = sqlite3_column_int64(st, 0);
		rc = sqlite3_step(st);
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return db_fail(db, rc, "count post");
	if (k != NULL)
		*k = n;
	db_ok(db);
	return 0;
}

/* ---- settings ---- */

int
db_list_set(struct db *db, int64_t list_id, const char *key, const char *value)
{
	static const char sql[] =
	    "INSERT INTO list_settings (list_id, key, value) VALUES (?, ?, ?) "
	    "ON CONFLICT (list_id, key) DO UPDATE SET value = excluded.value";
	sqlite3_stmt *st;
	int rc;

	if ((st = db_stmt(db, sql)) == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, list_id);
	db_bind_text(st, 2, key);
	db_bind_text(st, 3, value);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		if ((rc & 0xff) == SQLITE_CONSTRAINT)
			return db_failf(db, DB_NOTFOUND, "no list with id %lld",
			                (long long)list_id);
		return db_fail(db, rc, "setting a list setting");
	}
	db_ok(db);
	return 0;
}

int
db_list_setting_stored(struct db *db, int64_t list_id, const char *key, char *buf, size_t len)
{
	static const char sql[] = "SELECT value FROM list_settings WHERE list_id = ? AND key = ?";
	sqlite3_stmt *st;
	int rc;

	if ((st = db_stmt(db, sql)) == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, list_id);
	db_bind_text(st, 2, key);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		db_copy_col(st, 0, buf, len);
	sqlite3_reset(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return db_fail(db, rc, "reading a list setting");
	db_ok(db);
	return rc == SQLITE_ROW;
}

int
db_list_settings_each(struct db *db, int64_t list_id, db_setting_fn fn, void *arg)
{
	static const char sql[] = "SELECT key, value FROM list_settings WHERE list_id = ?1";
	sqlite3_stmt *st = db_stmt(db, sql);
	int rc;

	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, list_id);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		fn(arg, (const char *)sqlite3_column_text(st, 0),
		   (const char *)sqlite3_column_text(st, 1));
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return db_fail(db, rc, "list settings");
	db_ok(db);
	return 0;
}

/* ---- roles ---- */

static int
check_role(struct db *db, const char *role)
{
	if (strcmp(role, DB_ROLE_OWNER) != 0 && strcmp(role, DB_ROLE_MODERATOR) != 0)
		return db_failf(db, DB_INVALID, "%s: unknown role (owner or moderator)", role);
	return 0;
}

int
db_list_role_add(struct db *db, int64_t list_id, const char *role, const struct db_addr *a)
{
	static const char sql[] = "INSERT INTO roles (list_id, role, address, addr_key) "
	                          "VALUES (?, ?, ?, ?)";
	const char *address = a->address;
	sqlite3_stmt *st;
	int rc;

	if (check_role(db, role) < 0)
		return -1;
	if ((st = db_stmt(db, sql)) == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, list_id);
	db_bind_text(st, 2, role);
	db_bind_text(st, 3, address);
	db_bind_text(st, 4, a->key);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		if (rc == SQLITE_CONSTRAINT_PRIMARYKEY)
			return db_failf(db, DB_EXISTS, "%s is already %s %s of the list", address,
			                strcmp(role, DB_ROLE_OWNER) == 0 ? "an" : "a", role);
		if (rc == SQLITE_CONSTRAINT_FOREIGNKEY)
			return db_failf(db, DB_NOTFOUND, "no list with id %lld",
			                (long long)list_id);
		return db_fail(db, rc, "adding a role");
	}
	db_ok(db);
	return 0;
}

int
db_list_role_remove(struct db *db, int64_t list_id, const char *role, const struct db_addr *a)
{
	static const char sql[] =
	    "DELETE FROM roles WHERE list_id = ? AND role = ? AND addr_key = ?";
	const char *key = a->key;
	sqlite3_stmt *st;
	int rc;

	if (check_role(db, role) < 0)
		return -1;
	if ((st = db_stmt(db, sql)) == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, list_id);
	db_bind_text(st, 2, role);
	db_bind_text(st, 3, key);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return db_fail(db, rc, "removing a role");
	if (sqlite3_changes(db->sql) == 0)
		return db_failf(db, DB_NOTFOUND, "%s is not a %s", key, role);
	db_ok(db);
	return 0;
}

int
db_list_has_role(struct db *db, int64_t list_id, const char *role, const char *addr_key)
{
	static const char sql[] = "SELECT 1 FROM roles WHERE list_id = ? AND role = ? "
	                          "AND addr_key = ?";
	sqlite3_stmt *st;
	int rc;

	if ((st = db_stmt(db, sql)) == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, list_id);
	db_bind_text(st, 2, role);
	db_bind_text(st, 3, addr_key);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return db_fail(db, rc, "checking a role");
	db_ok(db);
	return rc == SQLITE_ROW;
}

int
db_list_role_each(struct db *db, int64_t list_id, const char *role, db_role_fn fn, void *arg)
{
	static const char sql[] = "SELECT address FROM roles WHERE list_id = ? AND role = ? "
	                          "ORDER BY addr_key";
	char address[DB_PATH_MAX + 1];
	sqlite3_stmt *st;
	int rc, stop = 0;

	if ((st = db_stmt(db, sql)) == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, list_id);
	db_bind_text(st, 2, role);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		db_copy_col(st, 0, address, sizeof(address));
		if ((stop = fn(address, arg)) != 0)
			break;
	}
	sqlite3_reset(st);
	if (stop)
		return stop;
	if (rc != SQLITE_DONE)
		return db_fail(db, rc, "listing roles");
	db_ok(db);
	return 0;
}

/* ---- every list at once: RCPT checks and local delivery ---- */

int
db_spool_lists_changed(struct db *db, struct db_list_stamp *stamp)
{
	static const char dv_sql[] = "PRAGMA data_version";
	static const char gen_sql[] = "SELECT gen FROM list_gen WHERE id = 1";
	sqlite3_stmt *st;
	int64_t dv, gen = 0;
	int rc;

	if ((st = db_stmt(db, dv_sql)) == NULL)
		return -1;
	rc = sqlite3_step(st);
	dv = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
	sqlite3_reset(st);
	if (rc != SQLITE_ROW)
		return db_fail(db, rc, "data_version");
	if (stamp->valid && dv == stamp->data_version)
		return 0;
	if ((st = db_stmt(db, gen_sql)) == NULL)
		return -1;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		gen = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return db_fail(db, rc, "list generation");
	stamp->data_version = dv;
	if (stamp->valid && gen == stamp->gen)
		return 0;
	stamp->gen = gen;
	stamp->valid = 1;
	return 1;
}

int
db_spool_lists_load(struct db *db,
                    int (*fn)(void *arg, int64_t id, const char *local, const char *domain),
                    void *arg)
{
	static const char sql[] = "SELECT id, local, domain FROM lists";
	sqlite3_stmt *st;
	int rc;

	if ((st = db_stmt(db, sql)) == NULL)
		return -1;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (fn(arg, sqlite3_column_int64(st, 0), (const char *)sqlite3_column_text(st, 1),
		       (const char *)sqlite3_column_text(st, 2)) != 0) {
			sqlite3_reset(st);
			return db_failf(db, DB_ERR, "loading lists: out of memory");
		}
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return db_fail(db, rc, "load lists");
	db_ok(db);
	return 0;
}

int
db_queue_local_domain(struct db *db, const char *domain)
{
	static const char sql[] = "SELECT 1 FROM lists WHERE domain = ?1 LIMIT 1";
	sqlite3_stmt *st = db_stmt(db, sql);
	int rc;

	if (st == NULL)
		return -1;
	sqlite3_bind_text(st, 1, domain, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return db_fail(db, rc, "look up list domain");
	db_ok(db);
	return rc == SQLITE_ROW;
}
