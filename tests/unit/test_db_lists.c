/*
 * test_db_lists.c - the store: migrations (from empty, from every earlier
 * version, re-open, too new), lists, settings, roles, members, counts,
 * streaming walks and bulk import.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "fm_assert.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "db/holds.h"
#include "db/db.h"
#include "db/db_internal.h"
#include "db/lists.h"
#include "db/members.h"
#include "lists/store.h"
#include "db/schema.h"

struct fixture {
	char dir[64];
	char path[128];
	struct db *db;
	struct db_list list;
};

static struct addr
A(const char *s) {
	struct addr a;
	const char *why = NULL;

	if (addr_parse(s, strlen(s), ADDR_UTF8, &a, &why) < 0)
		fail_msg("test address <%s> does not parse: %s", s, why);
	return a;
}

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	char err[512];
	struct addr l = A("test@lists.example.org");

	snprintf(f->dir, sizeof(f->dir), "/tmp/fm-unit-db-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/sub/fanmail.db", f->dir);
	f->db = db_open(f->path, DB_OPEN_CREATE, err, sizeof(err));
	if (f->db == NULL)
		fail_msg("db_open: %s", err);
	assert_int_equal(store_list_create(f->db, &l, &f->list), 0);
	*state = f;
	return 0;
}

static void
remove_db(const char *path, const char *dir)
{
	char p[160];

	unlink(path);
	snprintf(p, sizeof(p), "%s-wal", path);
	unlink(p);
	snprintf(p, sizeof(p), "%s-shm", path);
	unlink(p);
	snprintf(p, sizeof(p), "%s/sub", dir);
	rmdir(p);
	rmdir(dir);
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	db_close(f->db);
	remove_db(f->path, f->dir);
	free(f);
	return 0;
}

/* ---- migrations ---- */

static void
test_new_database_gets_latest_schema(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(db_schema_version(f->db), db_schema_latest());
	assert_int_equal(db_check(f->db), 0);
}

static void
test_reopen_keeps_data_and_version(void **state)
{
	struct fixture *f = *state;
	struct db_list l;
	char err[512];
	struct addr m = A("alice@example.org");

	assert_int_equal(store_member_add(f->db, f->list.id, &m, "Alice", NULL), 0);
	db_close(f->db);
	f->db = db_open(f->path, 0, err, sizeof(err));
	if (f->db == NULL)
		fail_msg("re-open: %s", err);
	assert_int_equal(db_schema_version(f->db), db_schema_latest());
	assert_int_equal(db_list_find(f->db, "test", "lists.example.org", &l), 0);
	assert_int_equal(l.id, f->list.id);
	struct db_member mm;
	assert_int_equal(store_member_find(f->db, l.id, &m, &mm), 0);
	assert_string_equal(mm.name, "Alice");
}

/* A database left at each earlier version upgrades in place. */
static void
test_every_earlier_version_upgrades(void **state)
{
	char dir[64], path[128], err[512];

	for (int v = 0; v < db_schema_latest(); v++) {
		sqlite3 *s;
		char pragma[64];
		struct db *db;

		snprintf(dir, sizeof(dir), "/tmp/fm-unit-mig-XXXXXX");
		assert_non_null(mkdtemp(dir));
		snprintf(path, sizeof(path), "%s/old.db", dir);
		assert_int_equal(sqlite3_open(path, &s), SQLITE_OK);
		for (int i = 1; i <= v; i++)
			assert_int_equal(sqlite3_exec(s, schema_migration(i), NULL, NULL, NULL),
			                 SQLITE_OK);
		snprintf(pragma, sizeof(pragma), "PRAGMA user_version = %d", v);
		assert_int_equal(sqlite3_exec(s, pragma, NULL, NULL, NULL), SQLITE_OK);
		sqlite3_close(s);

		db = db_open(path, 0, err, sizeof(err));
		if (db == NULL)
			fail_msg("upgrade from version %d: %s", v, err);
		if (db_schema_version(db) != db_schema_latest())
			fail_msg("upgrade from version %d: expected version %d, got %d", v,
			         db_schema_latest(), db_schema_version(db));
		assert_int_equal(db_check(db), 0);
		db_close(db);
		remove_db(path, dir);
	}
}

/* Version 3 moves each spool entry's message to spool_body: what was
 * there at version 2 is still there, for the entry and its hold, and
 * deleting the entry deletes its message. */
static void
test_upgrade_to_3_keeps_spool_messages(void **state)
{
	char dir[64], path[128], err[512];
	sqlite3 *s;
	sqlite3_stmt *st;
	struct db *db;

	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/fm-unit-mig3-XXXXXX");
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/old.db", dir);
	assert_int_equal(sqlite3_open(path, &s), SQLITE_OK);
	for (int i = 1; i <= 2; i++)
		assert_int_equal(sqlite3_exec(s, schema_migration(i), NULL, NULL, NULL), SQLITE_OK);
	assert_int_equal(
	    sqlite3_exec(s,
	                 "PRAGMA user_version = 2;"
	                 "INSERT INTO spool (id, qid, received, client, helo, mail_from, size,"
	                 " state, message) VALUES (7, 'Q7', 1, 'c', 'h', 'a@b.example', 9, 'done',"
	                 " CAST('Subject: x' AS BLOB));"
	                 "INSERT INTO lists (id, address, local, domain, created) VALUES"
	                 " (1, 'l@d.example', 'l', 'd.example', 0);"
	                 "INSERT INTO holds (list_id, spool_id, token, sender, env_from, reason,"
	                 " created, expires) VALUES (1, 7, 'T', 'a@b.example', 'a@b.example',"
	                 " 'moderated', 0, 9);",
	                 NULL, NULL, NULL),
	    SQLITE_OK);
	sqlite3_close(s);

	db = db_open(path, 0, err, sizeof(err));
	if (db == NULL)
		fail_msg("upgrade: %s", err);
	assert_int_equal(sqlite3_prepare_v2(db->sql,
	                                    "SELECT s.qid, b.message FROM spool s"
	                                    " JOIN spool_body b ON b.id = s.id",
	                                    -1, &st, NULL),
	                 SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_string_equal((const char *)sqlite3_column_text(st, 0), "Q7");
	assert_string_equal((const char *)sqlite3_column_text(st, 1), "Subject: x");
	assert_int_equal(sqlite3_step(st), SQLITE_DONE);
	sqlite3_finalize(st);
	{
		struct db_hold h;

		assert_int_equal(db_hold_get(db, 1, 1, 1, &h), 0);
		assert_int_equal(h.len, 10);
		assert_memory_equal(h.message, "Subject: x", 10);
		db_hold_free(&h);
	}
	/* the column is gone from spool */
	assert_int_not_equal(
	    sqlite3_prepare_v2(db->sql, "SELECT message FROM spool", -1, &st, NULL), SQLITE_OK);
	assert_int_equal(
	    sqlite3_exec(db->sql, "DELETE FROM holds; DELETE FROM spool", NULL, NULL, NULL),
	    SQLITE_OK);
	assert_int_equal(
	    sqlite3_prepare_v2(db->sql, "SELECT count(*) FROM spool_body", -1, &st, NULL),
	    SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int(st, 0), 0);
	sqlite3_finalize(st);
	db_close(db);
	remove_db(path, dir);
}

/* Version 4: members set to digest delivery (never sent) get every post
 * again, as regular members. */
static void
test_upgrade_to_4_moves_digest_members_to_regular(void **state)
{
	char dir[64], path[128], err[512];
	sqlite3 *s;
	sqlite3_stmt *st;
	struct db *db;

	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/fm-unit-mig4-XXXXXX");
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/old.db", dir);
	assert_int_equal(sqlite3_open(path, &s), SQLITE_OK);
	for (int i = 1; i <= 3; i++)
		assert_int_equal(sqlite3_exec(s, schema_migration(i), NULL, NULL, NULL), SQLITE_OK);
	assert_int_equal(
	    sqlite3_exec(
	        s,
	        "PRAGMA user_version = 3;"
	        "INSERT INTO lists (id, address, local, domain, created) VALUES"
	        " (1, 'l@d.example', 'l', 'd.example', 0);"
	        "INSERT INTO members (list_id, address, addr_key, domain, status,"
	        " delivery, created, updated) VALUES"
	        " (1, 'a@x.example', 'a@x.example', 'x.example', 'enabled', 'digest', 0, 0),"
	        " (1, 'b@x.example', 'b@x.example', 'x.example', 'enabled', 'nomail', 0, 0);",
	        NULL, NULL, NULL),
	    SQLITE_OK);
	sqlite3_close(s);

	db = db_open(path, 0, err, sizeof(err));
	if (db == NULL)
		fail_msg("upgrade: %s", err);
	assert_int_equal(sqlite3_prepare_v2(db->sql,
	                                    "SELECT group_concat(address || '=' || delivery, ' ')"
	                                    " FROM (SELECT * FROM members ORDER BY address)",
	                                    -1, &st, NULL),
	                 SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_string_equal((const char *)sqlite3_column_text(st, 0),
	                    "a@x.example=regular b@x.example=nomail");
	sqlite3_finalize(st);
	db_close(db);
	remove_db(path, dir);
}

static void
test_newer_database_is_refused(void **state)
{
	char dir[64], path[128], err[512], pragma[64];
	sqlite3 *s;

	snprintf(dir, sizeof(dir), "/tmp/fm-unit-new-XXXXXX");
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/new.db", dir);
	assert_int_equal(sqlite3_open(path, &s), SQLITE_OK);
	snprintf(pragma, sizeof(pragma), "PRAGMA user_version = %d", db_schema_latest() + 1);
	assert_int_equal(sqlite3_exec(s, pragma, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(s);
	assert_null(db_open(path, 0, err, sizeof(err)));
	if (strstr(err, "this fanmail knows up to") == NULL)
		fail_msg("expected a 'newer schema' error, got: %s", err);
	remove_db(path, dir);
}

/* ---- lists ---- */

static void
test_list_create_find_and_duplicates(void **state)
{
	struct fixture *f = *state;
	struct addr dup = A("TEST@Lists.Example.ORG");
	struct db_list l;

	assert_int_equal(store_list_create(f->db, &dup, NULL), -1);
	assert_int_equal(db_status(f->db), DB_EXISTS);
	assert_int_equal(db_list_find(f->db, "Test", "LISTS.example.org", &l), 0);
	assert_string_equal(l.address, "test@lists.example.org");
	assert_int_equal(db_list_find(f->db, "nope", "lists.example.org", &l), -1);
	assert_int_equal(db_status(f->db), DB_NOTFOUND);
}

static void
test_list_addresses_that_clash_with_roles_are_refused(void **state)
{
	struct fixture *f = *state;
	const char *bad[] = {"x-request@example.org", "x-bounces@example.org",
	                     "x-OWNER@example.org",   "x-subscribe@example.org",
	                     "a+b@example.org",       "\"q\"@example.org",
	                     "x@[192.0.2.1]"};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct addr a = A(bad[i]);
		if (store_list_create(f->db, &a, NULL) == 0)
			fail_msg("expected list <%s> to be refused", bad[i]);
		assert_int_equal(db_status(f->db), DB_INVALID);
	}
}

static int
count_list(const struct db_list *l, void *arg)
{
	(*(int *)arg)++;
	return 0;
}

static void
test_list_each_and_all(void **state)
{
	struct fixture *f = *state;
	struct addr b = A("b@example.org"), a = A("a@example.org");
	struct db_list *all;
	size_t n;
	int count = 0;

	assert_int_equal(store_list_create(f->db, &b, NULL), 0);
	assert_int_equal(store_list_create(f->db, &a, NULL), 0);
	assert_int_equal(db_list_each(f->db, count_list, &count), 0);
	assert_int_equal(count, 3);
	assert_int_equal(db_list_all(f->db, &all, &n), 0);
	assert_int_equal(n, 3);
	assert_string_equal(all[0].address, "a@example.org");
	assert_string_equal(all[1].address, "b@example.org");
	assert_string_equal(all[2].address, "test@lists.example.org");
	free(all);
}

static void
test_settings_default_set_and_invalid(void **state)
{
	struct fixture *f = *state;
	char buf[256];
	int is_def;

	assert_int_equal(store_setting_get(f->db, f->list.id, "policy", buf, sizeof(buf), &is_def),
	                 0);
	assert_string_equal(buf, "members");
	assert_true(is_def);
	assert_int_equal(store_setting_set(f->db, f->list.id, "policy", "Open"), 0);
	assert_int_equal(store_setting_get(f->db, f->list.id, "policy", buf, sizeof(buf), &is_def),
	                 0);
	assert_string_equal(buf, "open");
	assert_false(is_def);
	assert_int_equal(store_setting_set(f->db, f->list.id, "policy", "everyone"), -1);
	assert_int_equal(db_status(f->db), DB_INVALID);
	assert_string_contains(db_errmsg(f->db), "everyone");
	assert_int_equal(store_setting_set(f->db, f->list.id, "no_such_key", "1"), -1);
	assert_int_equal(db_status(f->db), DB_INVALID);
	assert_int_equal(
	    store_setting_get(f->db, f->list.id, "no_such_key", buf, sizeof(buf), NULL), -1);
}

/* db/ stores what it is given, canonical: the checks and the canonical
 * forms are lists/store.c's, in front of it. */
static void
test_db_takes_canonical_values_that_store_makes(void **state)
{
	struct fixture *f = *state;
	struct addr a = A("Dave@Example.ORG");
	struct db_addr k;
	struct db_member m;
	char buf[256];

	assert_int_equal(db_list_setting_stored(f->db, f->list.id, "policy", buf, sizeof(buf)), 0);
	assert_int_equal(store_setting_set(f->db, f->list.id, "policy", "Open"), 0);
	assert_int_equal(db_list_setting_stored(f->db, f->list.id, "policy", buf, sizeof(buf)), 1);
	assert_string_equal(buf, "open");

	assert_int_equal(store_addr(f->db, &a, &k), 0);
	assert_string_equal(k.address, "Dave@Example.ORG");
	assert_string_equal(k.key, "dave@example.org");
	assert_string_equal(k.domain, "example.org");
	assert_int_equal(db_member_add(f->db, f->list.id, &k, NULL, NULL), 0);
	/* Only the canonical word reaches db/; store_member_set() makes it. */
	assert_int_equal(db_member_set(f->db, f->list.id, &k, "self_copy", "on"), -1);
	assert_int_equal(db_status(f->db), DB_INVALID);
	assert_int_equal(store_member_set(f->db, f->list.id, &a, "self_copy", "on"), 0);
	assert_int_equal(db_member_find(f->db, f->list.id, &k, &m), 0);
	assert_int_equal(m.self_copy, 1);
	assert_string_equal(m.address, "Dave@Example.ORG");
}

static void
test_roles_add_check_remove(void **state)
{
	struct fixture *f = *state;
	struct addr o = A("Owner@Example.org");

	assert_int_equal(store_role_add(f->db, f->list.id, DB_ROLE_OWNER, &o), 0);
	assert_int_equal(store_role_add(f->db, f->list.id, DB_ROLE_OWNER, &o), -1);
	assert_int_equal(db_status(f->db), DB_EXISTS);
	assert_int_equal(db_list_has_role(f->db, f->list.id, DB_ROLE_OWNER, "owner@example.org"),
	                 1);
	assert_int_equal(
	    db_list_has_role(f->db, f->list.id, DB_ROLE_MODERATOR, "owner@example.org"), 0);
	assert_int_equal(store_role_add(f->db, f->list.id, "admin", &o), -1);
	assert_int_equal(db_status(f->db), DB_INVALID);
	assert_int_equal(store_role_remove(f->db, f->list.id, DB_ROLE_OWNER, &o), 0);
	assert_int_equal(store_role_remove(f->db, f->list.id, DB_ROLE_OWNER, &o), -1);
	assert_int_equal(db_status(f->db), DB_NOTFOUND);
}

/* ---- members ---- */

static void
expect_counts(struct fixture *f, int64_t en, int64_t dis, int64_t unc)
{
	struct db_member_counts c;

	assert_int_equal(db_member_count(f->db, f->list.id, &c), 0);
	if (c.enabled != en || c.disabled != dis || c.unconfirmed != unc ||
	    c.total != en + dis + unc)
		fail_msg("expected counts %lld/%lld/%lld, got %lld/%lld/%lld total %lld",
		         (long long)en, (long long)dis, (long long)unc, (long long)c.enabled,
		         (long long)c.disabled, (long long)c.unconfirmed, (long long)c.total);
}

static void
test_members_add_find_remove_case_insensitively(void **state)
{
	struct fixture *f = *state;
	struct addr a = A("Bob@Example.ORG"), same = A("\"bob\"@example.org");
	struct db_member m;

	assert_int_equal(store_member_add(f->db, f->list.id, &a, "Bob", NULL), 0);
	assert_int_equal(store_member_add(f->db, f->list.id, &same, NULL, NULL), -1);
	assert_int_equal(db_status(f->db), DB_EXISTS);
	assert_int_equal(store_member_find(f->db, f->list.id, &same, &m), 0);
	assert_string_equal(m.address, "Bob@Example.ORG");
	assert_string_equal(m.addr_key, "bob@example.org");
	assert_string_equal(m.domain, "example.org");
	assert_string_equal(m.status, "enabled");
	assert_string_equal(m.delivery, "regular");
	expect_counts(f, 1, 0, 0);
	assert_int_equal(store_member_remove(f->db, f->list.id, &same), 0);
	assert_int_equal(store_member_remove(f->db, f->list.id, &same), -1);
	assert_int_equal(db_status(f->db), DB_NOTFOUND);
	expect_counts(f, 0, 0, 0);
}

static void
test_member_set_fields_and_enable_resets_bounce_score(void **state)
{
	struct fixture *f = *state;
	struct addr a = A("carol@example.org");
	struct db_member m;

	assert_int_equal(store_member_add(f->db, f->list.id, &a, NULL, "unconfirmed"), 0);
	expect_counts(f, 0, 0, 1);
	assert_int_equal(sqlite3_exec(f->db->sql,
	                              "UPDATE members SET bounce_score = 4.5, status = 'disabled'",
	                              NULL, NULL, NULL),
	                 SQLITE_OK);
	expect_counts(f, 0, 1, 0);
	assert_int_equal(store_member_set(f->db, f->list.id, &a, "delivery", "nomail"), 0);
	assert_int_equal(store_member_set(f->db, f->list.id, &a, "self_copy", "yes"), 0);
	assert_int_equal(store_member_set(f->db, f->list.id, &a, "name", "Carol C."), 0);
	assert_int_equal(store_member_find(f->db, f->list.id, &a, &m), 0);
	assert_true(m.bounce_score > 4.0);
	assert_string_equal(m.delivery, "nomail");
	assert_int_equal(m.self_copy, 1);
	assert_string_equal(m.name, "Carol C.");
	assert_int_equal(store_member_set(f->db, f->list.id, &a, "status", "enabled"), 0);
	assert_int_equal(store_member_find(f->db, f->list.id, &a, &m), 0);
	assert_true(m.bounce_score == 0.0);
	assert_string_equal(m.status, "enabled");
	expect_counts(f, 1, 0, 0);

	assert_int_equal(store_member_set(f->db, f->list.id, &a, "status", "gone"), -1);
	assert_int_equal(db_status(f->db), DB_INVALID);
	assert_int_equal(store_member_set(f->db, f->list.id, &a, "delivery", "mime"), -1);
	assert_int_equal(db_status(f->db), DB_INVALID);
	/* Every delivery mode digests know (schema version 8) is taken. */
	assert_int_equal(store_member_set(f->db, f->list.id, &a, "delivery", "digest"), 0);
	assert_int_equal(store_member_set(f->db, f->list.id, &a, "delivery", "digest-text"), 0);
	assert_int_equal(store_member_set(f->db, f->list.id, &a, "delivery", "regular"), 0);
	assert_int_equal(store_member_set(f->db, f->list.id, &a, "self_copy", "maybe"), -1);
	assert_int_equal(db_status(f->db), DB_INVALID);
	assert_int_equal(store_member_set(f->db, f->list.id, &a, "name", "a\nb"), -1);
	assert_int_equal(db_status(f->db), DB_INVALID);
	assert_int_equal(store_member_set(f->db, f->list.id, &a, "bounce_score", "0"), -1);
	assert_int_equal(db_status(f->db), DB_INVALID);
	struct addr other = A("nobody@example.org");
	assert_int_equal(store_member_set(f->db, f->list.id, &other, "status", "enabled"), -1);
	assert_int_equal(db_status(f->db), DB_NOTFOUND);
}

struct walk {
	char seen[8][ADDR_PATH_MAX + 1];
	int n;
	int stop_after;
};

static int
walk_one(const struct db_member *m, void *arg)
{
	struct walk *w = arg;

	if (w->n < 8)
		snprintf(w->seen[w->n], sizeof(w->seen[0]), "%s", m->addr_key);
	w->n++;
	return w->stop_after && w->n >= w->stop_after ? 7 : 0;
}

static void
test_member_walk_is_ordered_filtered_and_stoppable(void **state)
{
	struct fixture *f = *state;
	const char *in[] = {"d@example.org", "B@example.org", "c@example.org", "a@example.net"};
	struct walk w = {0};

	for (size_t i = 0; i < 4; i++) {
		struct addr a = A(in[i]);
		assert_int_equal(
		    store_member_add(f->db, f->list.id, &a, NULL, i == 2 ? "disabled" : NULL), 0);
	}
	assert_int_equal(db_member_each(f->db, f->list.id, NULL, walk_one, &w), 0);
	assert_int_equal(w.n, 4);
	assert_string_equal(w.seen[0], "a@example.net");
	assert_string_equal(w.seen[1], "b@example.org");
	assert_string_equal(w.seen[2], "c@example.org");
	assert_string_equal(w.seen[3], "d@example.org");
	memset(&w, 0, sizeof(w));
	assert_int_equal(db_member_each(f->db, f->list.id, "disabled", walk_one, &w), 0);
	assert_int_equal(w.n, 1);
	assert_string_equal(w.seen[0], "c@example.org");
	memset(&w, 0, sizeof(w));
	w.stop_after = 2;
	assert_int_equal(db_member_each(f->db, f->list.id, NULL, walk_one, &w), 7);
	assert_int_equal(w.n, 2);
	assert_int_equal(db_member_each(f->db, f->list.id, "bogus", walk_one, &w), -1);
	assert_int_equal(db_status(f->db), DB_INVALID);
}

/* Memory stays flat only if SQLite never sorts the walk in a temp b-tree. */
static void
test_member_walk_needs_no_sort(void **state)
{
	struct fixture *f = *state;
	const char *q[] = {
	    "EXPLAIN QUERY PLAN SELECT id FROM members WHERE list_id = 1 ORDER BY addr_key",
	    "EXPLAIN QUERY PLAN SELECT id FROM members WHERE list_id = 1 AND +status = "
	    "'enabled' ORDER BY addr_key",
	};

	/* Give the planner statistics like a big list's. */
	assert_int_equal(sqlite3_exec(f->db->sql, "ANALYZE", NULL, NULL, NULL), SQLITE_OK);
	for (size_t i = 0; i < 2; i++) {
		sqlite3_stmt *st;
		assert_int_equal(sqlite3_prepare_v2(f->db->sql, q[i], -1, &st, NULL), SQLITE_OK);
		while (sqlite3_step(st) == SQLITE_ROW) {
			const char *d = (const char *)sqlite3_column_text(st, 3);
			if (strstr(d, "TEMP B-TREE") != NULL)
				fail_msg("query %zu sorts: %s", i, d);
		}
		sqlite3_finalize(st);
	}
}

static void
test_import_is_idempotent_and_counts(void **state)
{
	struct fixture *f = *state;
	int64_t added[2];
	char buf[64];

	/* 150 rows: two full batches and a partial one, with a duplicate. */
	for (int round = 0; round < 2; round++) {
		struct db_import *im = db_member_import_begin(f->db, f->list.id);
		assert_non_null(im);
		for (int i = 0; i < 150; i++) {
			snprintf(buf, sizeof(buf), "X%d@Example.org", i == 149 ? 7 : i);
			struct addr a = A(buf);
			assert_int_equal(store_member_import_add(f->db, im, &a, i % 2 ? "N" : NULL),
			                 0);
		}
		assert_int_equal(db_member_import_end(im, 1, &added[round]), 0);
	}
	assert_int_equal(added[0], 149);
	assert_int_equal(added[1], 0);
	expect_counts(f, 149, 0, 0);
	/* The count trigger is back after a committed import. */
	struct addr more = A("more@example.org");
	assert_int_equal(store_member_add(f->db, f->list.id, &more, NULL, NULL), 0);
	expect_counts(f, 150, 0, 0);
	struct addr x1 = A("x1@example.org");
	struct db_member m;
	assert_int_equal(store_member_find(f->db, f->list.id, &x1, &m), 0);
	assert_string_equal(m.name, "N");
	assert_string_equal(m.address, "X1@Example.org");
}

static void
test_import_rollback_leaves_nothing(void **state)
{
	struct fixture *f = *state;
	struct addr a = A("y@example.org");

	struct db_import *im = db_member_import_begin(f->db, f->list.id);
	assert_non_null(im);
	assert_int_equal(store_member_import_add(f->db, im, &a, NULL), 0);
	assert_int_equal(db_member_import_end(im, 0, NULL), 0);
	expect_counts(f, 0, 0, 0);
	/* Foreign keys are on again, and an import into no list is refused. */
	sqlite3_stmt *st;
	assert_int_equal(sqlite3_prepare_v2(f->db->sql, "PRAGMA foreign_keys", -1, &st, NULL),
	                 SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int(st, 0), 1);
	sqlite3_finalize(st);
	assert_null(db_member_import_begin(f->db, f->list.id + 100));
	assert_int_equal(db_status(f->db), DB_NOTFOUND);
	/* The count trigger is back: a plain add is counted. */
	assert_int_equal(store_member_add(f->db, f->list.id, &a, NULL, NULL), 0);
	expect_counts(f, 1, 0, 0);
}

static int
has_fanout_index(struct fixture *f)
{
	sqlite3_stmt *st;
	int n;

	assert_int_equal(
	    sqlite3_prepare_v2(f->db->sql,
	                       "SELECT count(*) FROM sqlite_master WHERE type = 'index'"
	                       " AND name = 'members_by_status_domain'",
	                       -1, &st, NULL),
	    SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	n = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return n;
}

static void
test_big_import_builds_the_fanout_index_at_the_end(void **state)
{
	struct fixture *f = *state;
	struct addr a = A("z@example.org"), b = A("w@example.org");
	int64_t added;

	/* Rolled back: the index is as it was. */
	struct db_import *im = db_member_import_begin(f->db, f->list.id);
	assert_non_null(im);
	assert_int_equal(db_member_import_expect(im, 1000000), 0);
	assert_int_equal(has_fanout_index(f), 0); /* dropped inside the transaction */
	assert_int_equal(store_member_import_add(f->db, im, &a, NULL), 0);
	assert_int_equal(db_member_import_end(im, 0, NULL), 0);
	assert_int_equal(has_fanout_index(f), 1);
	/* Committed: built again, and it has every new member. */
	im = db_member_import_begin(f->db, f->list.id);
	assert_non_null(im);
	assert_int_equal(db_member_import_expect(im, 1000000), 0);
	assert_int_equal(store_member_import_add(f->db, im, &a, NULL), 0);
	assert_int_equal(store_member_import_add(f->db, im, &b, NULL), 0);
	assert_int_equal(db_member_import_end(im, 1, &added), 0);
	assert_int_equal(added, 2);
	assert_int_equal(has_fanout_index(f), 1);
	sqlite3_stmt *st;
	assert_int_equal(sqlite3_prepare_v2(f->db->sql,
	                                    "SELECT count(*) FROM members INDEXED BY "
	                                    "members_by_status_domain WHERE list_id = ?1 AND "
	                                    "status = 'enabled'",
	                                    -1, &st, NULL),
	                 SQLITE_OK);
	sqlite3_bind_int64(st, 1, f->list.id);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int(st, 0), 2);
	sqlite3_finalize(st);
	/* A small expected import keeps the index up to date row by row. */
	im = db_member_import_begin(f->db, f->list.id);
	assert_non_null(im);
	assert_int_equal(db_member_import_expect(im, 10), 0);
	assert_int_equal(has_fanout_index(f), 1);
	assert_int_equal(db_member_import_end(im, 1, NULL), 0);
	expect_counts(f, 2, 0, 0);
}

static void
test_list_delete_takes_members_and_counts(void **state)
{
	struct fixture *f = *state;
	struct addr a = A("z@example.org");
	struct db_member_counts c;
	sqlite3_stmt *st;

	assert_int_equal(store_member_add(f->db, f->list.id, &a, NULL, NULL), 0);
	assert_int_equal(db_list_delete(f->db, f->list.id), 0);
	assert_int_equal(db_list_delete(f->db, f->list.id), -1);
	assert_int_equal(db_status(f->db), DB_NOTFOUND);
	assert_int_equal(db_member_count(f->db, f->list.id, &c), 0);
	assert_int_equal(c.total, 0);
	assert_int_equal(
	    sqlite3_prepare_v2(f->db->sql, "SELECT count(*) FROM members", -1, &st, NULL),
	    SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int(st, 0), 0);
	sqlite3_finalize(st);
}

int
main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
	    T(test_new_database_gets_latest_schema),
	    T(test_reopen_keeps_data_and_version),
	    cmocka_unit_test(test_every_earlier_version_upgrades),
	    cmocka_unit_test(test_upgrade_to_3_keeps_spool_messages),
	    cmocka_unit_test(test_upgrade_to_4_moves_digest_members_to_regular),
	    cmocka_unit_test(test_newer_database_is_refused),
	    T(test_list_create_find_and_duplicates),
	    T(test_list_addresses_that_clash_with_roles_are_refused),
	    T(test_list_each_and_all),
	    T(test_settings_default_set_and_invalid),
	    T(test_db_takes_canonical_values_that_store_makes),
	    T(test_roles_add_check_remove),
	    T(test_members_add_find_remove_case_insensitively),
	    T(test_member_set_fields_and_enable_resets_bounce_score),
	    T(test_member_walk_is_ordered_filtered_and_stoppable),
	    T(test_member_walk_needs_no_sort),
	    T(test_import_is_idempotent_and_counts),
	    T(test_import_rollback_leaves_nothing),
	    T(test_big_import_builds_the_fanout_index_at_the_end),
	    T(test_list_delete_takes_members_and_counts),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
