/*
 * members.c - the members of a list. See members.h.
 *
 * Streaming walks order by addr_key so that SQLite reads them straight
 * from the UNIQUE (list_id, addr_key) index and never sorts: memory stays
 * flat whatever the list size. The status filter is written `+status` to
 * keep the planner on that index instead of (list_id, status, domain),
 * which would need a sort.
 */
#include "db/members.h"
#include "db/db_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* SQLite's page cache during a bulk import (KiB; the default is 2 MB). */
#define IMPORT_CACHE_KIB 65536

int
db_member_status_valid(const char *s)
{
	return s != NULL && (strcmp(s, "enabled") == 0 || strcmp(s, "disabled") == 0 ||
	                     strcmp(s, "unconfirmed") == 0);
}

/* regular: every post (the fan-out); digest, digest-text: the list's
 * digests (lists/digest_send.c); nomail: nothing. */
static int
delivery_valid(const char *s)
{
	return strcmp(s, "regular") == 0 || strcmp(s, "digest") == 0 ||
	       strcmp(s, "digest-text") == 0 || strcmp(s, "nomail") == 0;
}

/* The texts of a member row are bound without a copy (SQLITE_STATIC saves
 * a malloc and a copy per column on a million-row import): they must
 * outlive the step. */
static void
bind_member(sqlite3_stmt *st, int64_t list_id, const struct db_addr *t, const char *name)
{
	int64_t now = db_now();

	sqlite3_bind_int64(st, 1, list_id);
	sqlite3_bind_text(st, 2, t->address, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, t->key, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, t->domain, -1, SQLITE_STATIC);
	if (name != NULL && *name)
		sqlite3_bind_text(st, 5, name, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, 5);
	sqlite3_bind_int64(st, 6, now);
	sqlite3_bind_int64(st, 7, now);
}

int
db_member_add(struct db *db, int64_t list_id, const struct db_addr *a, const char *name,
              const char *status)
{
	static const char sql[] = "INSERT INTO members (list_id, address, addr_key, domain, name, "
	                          "created, updated, status) VALUES (?, ?, ?, ?, ?, ?, ?, ?)";
	sqlite3_stmt *st;
	int rc;

	if (status == NULL)
		status = "enabled";
	if (!db_member_status_valid(status))
		return db_failf(db, DB_INVALID,
		                "%s: not a member status (enabled, disabled, unconfirmed)", status);
	if ((st = db_stmt(db, sql)) == NULL)
		return -1;
	bind_member(st, list_id, a, name);
	db_bind_text(st, 8, status);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc == SQLITE_CONSTRAINT_UNIQUE)
		return db_failf(db, DB_EXISTS, "%s is already a member", a->address);
	if (rc == SQLITE_CONSTRAINT_FOREIGNKEY)
		return db_failf(db, DB_NOTFOUND, "no list with id %lld", (long long)list_id);
	if (rc != SQLITE_DONE)
		return db_fail(db, rc, "adding a member");
	db_ok(db);
	return 0;
}

int
db_member_remove(struct db *db, int64_t list_id, const struct db_addr *a)
{
	static const char sql[] = "DELETE FROM members WHERE list_id = ? AND addr_key = ?";
	const char *key = a->key;
	sqlite3_stmt *st;
	int rc;

	if ((st = db_stmt(db, sql)) == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, list_id);
	db_bind_text(st, 2, key);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return db_fail(db, rc, "removing a member");
	if (sqlite3_changes(db->sql) == 0)
		return db_failf(db, DB_NOTFOUND, "%s is not a member", a->address);
	db_ok(db);
	return 0;
}

#define MEMBER_COLS                                                                                \
	"id, list_id, address, addr_key, domain, name, status, delivery, self_copy, "              \
	"bounce_score, last_bounce, created, updated"

static void
member_row(sqlite3_stmt *st, struct db_member *m)
{
	m->id = sqlite3_column_int64(st, 0);
	m->list_id = sqlite3_column_int64(st, 1);
	db_copy_col(st, 2, m->address, sizeof(m->address));
	db_copy_col(st, 3, m->addr_key, sizeof(m->addr_key));
	db_copy_col(st, 4, m->domain, sizeof(m->domain));
	db_copy_col(st, 5, m->name, sizeof(m->name));
	db_copy_col(st, 6, m->status, sizeof(m->status));
	db_copy_col(st, 7, m->delivery, sizeof(m->delivery));
	m->self_copy = sqlite3_column_int(st, 8);
	m->bounce_score = sqlite3_column_double(st, 9);
	m->last_bounce = sqlite3_column_int64(st, 10);
	m->created = sqlite3_column_int64(st, 11);
	m->updated = sqlite3_column_int64(st, 12);
}

int
db_member_find(struct db *db, int64_t list_id, const struct db_addr *a, struct db_member *out)
{
	static const char sql[] = "SELECT " MEMBER_COLS " FROM members "
	                          "WHERE list_id = ? AND addr_key = ?";
	const char *key = a->key;
	sqlite3_stmt *st;
	int rc;

	if ((st = db_stmt(db, sql)) == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, list_id);
	db_bind_text(st, 2, key);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		member_row(st, out);
	sqlite3_reset(st);
	if (rc == SQLITE_DONE)
		return db_failf(db, DB_NOTFOUND, "%s is not a member", a->address);
	if (rc != SQLITE_ROW)
		return db_fail(db, rc, "finding a member");
	db_ok(db);
	return 0;
}

int
db_member_set(struct db *db, int64_t list_id, const struct db_addr *a, const char *key,
              const char *value)
{
	static const char sql_status[] =
	    "UPDATE members SET status = ?1, updated = ?2,"
	    " bounce_score = CASE WHEN ?1 = 'enabled' THEN 0 ELSE bounce_score END,"
	    " disabled_reason = CASE ?1 WHEN 'enabled' THEN NULL"
	    "  WHEN 'disabled' THEN 'admin' ELSE disabled_reason END"
	    " WHERE list_id = ?3 AND addr_key = ?4";
	static const char sql_delivery[] = "UPDATE members SET delivery = ?1, updated = ?2 "
	                                   "WHERE list_id = ?3 AND addr_key = ?4";
	static const char sql_self_copy[] = "UPDATE members SET self_copy = ?1, updated = ?2 "
	                                    "WHERE list_id = ?3 AND addr_key = ?4";
	static const char sql_name[] = "UPDATE members SET name = ?1, updated = ?2 "
	                               "WHERE list_id = ?3 AND addr_key = ?4";
	const char *k = a->key;
	const char *sql;
	sqlite3_stmt *st;
	int b = 0, rc;

	if (strcmp(key, "status") == 0) {
		if (!db_member_status_valid(value))
			return db_failf(db, DB_INVALID,
			                "status: '%s' is not one of enabled, disabled, unconfirmed",
			                value);
		sql = sql_status;
	} else if (strcmp(key, "delivery") == 0) {
		if (!delivery_valid(value))
			return db_failf(
			    db, DB_INVALID,
			    "delivery: '%s' is not one of regular, digest, digest-text, "
			    "nomail",
			    value);
		sql = sql_delivery;
	} else if (strcmp(key, "self_copy") == 0) {
		if (strcmp(value, "yes") != 0 && strcmp(value, "no") != 0)
			return db_failf(db, DB_INVALID, "self_copy: '%s' is not yes or no", value);
		b = strcmp(value, "yes") == 0;
		sql = sql_self_copy;
	} else if (strcmp(key, "name") == 0) {
		if (strlen(value) > DB_MEMBER_NAME_MAX)
			return db_failf(db, DB_INVALID, "name: longer than %d octets",
			                DB_MEMBER_NAME_MAX);
		sql = sql_name;
	} else {
		return db_failf(db, DB_INVALID,
		                "%s: unknown member field (status, delivery, self_copy, name)",
		                key);
	}
	if ((st = db_stmt(db, sql)) == NULL)
		return -1;
	if (sql == sql_self_copy)
		sqlite3_bind_int(st, 1, b);
	else
		db_bind_text(st, 1, sql == sql_name && *value == '\0' ? NULL : value);
	sqlite3_bind_int64(st, 2, db_now());
	sqlite3_bind_int64(st, 3, list_id);
	db_bind_text(st, 4, k);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return db_fail(db, rc, "changing a member");
	if (sqlite3_changes(db->sql) == 0)
		return db_failf(db, DB_NOTFOUND, "%s is not a member", a->address);
	db_ok(db);
	return 0;
}

int
db_member_each(struct db *db, int64_t list_id, const char *status, db_member_fn fn, void *arg)
{
	static const char sql_all[] = "SELECT " MEMBER_COLS " FROM members "
	                              "WHERE list_id = ? ORDER BY addr_key";
	static const char sql_status[] = "SELECT " MEMBER_COLS " FROM members "
	                                 "WHERE list_id = ? AND +status = ? ORDER BY addr_key";
	struct db_member m;
	sqlite3_stmt *st;
	int rc, stop = 0;

	if (status != NULL && !db_member_status_valid(status))
		return db_failf(db, DB_INVALID,
		                "%s: not a member status (enabled, disabled, unconfirmed)", status);
	if ((st = db_stmt(db, status ? sql_status : sql_all)) == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, list_id);
	if (status != NULL)
		db_bind_text(st, 2, status);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		member_row(st, &m);
		if ((stop = fn(&m, arg)) != 0)
			break;
	}
	sqlite3_reset(st);
	if (stop)
		return stop;
	if (rc != SQLITE_DONE)
		return db_fail(db, rc, "listing members");
	db_ok(db);
	return 0;
}

int
db_member_count(struct db *db, int64_t list_id, struct db_member_counts *c)
{
	/* Kept by triggers on members (see schema.c). */
	static const char sql[] = "SELECT status, n FROM member_counts WHERE list_id = ?";
	sqlite3_stmt *st;
	int rc;

	memset(c, 0, sizeof(*c));
	if ((st = db_stmt(db, sql)) == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, list_id);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *s = (const char *)sqlite3_column_text(st, 0);
		int64_t n = sqlite3_column_int64(st, 1);
		if (s == NULL)
			continue;
		if (strcmp(s, "enabled") == 0)
			c->enabled = n;
		else if (strcmp(s, "disabled") == 0)
			c->disabled = n;
		else if (strcmp(s, "unconfirmed") == 0)
			c->unconfirmed = n;
		c->total += n;
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return db_fail(db, rc, "counting members");
	db_ok(db);
	return 0;
}

/* ---- bulk import ---- */

/* The trigger that counts members row by row; during an import it is
 * dropped and the count is added once at the end, which saves a third of
 * the work per row (a trigger program runs for every insert). */
#define COUNT_TRIGGER "members_count_insert"

/* Rows are inserted IMPORT_BATCH at a time with one multi-row INSERT,
 * which spreads the cost of running a statement over many rows. */
#define IMPORT_BATCH 64
#define ROW1 "(?,?,?,?,?,?,?)"
#define ROW2 ROW1 "," ROW1
#define ROW4 ROW2 "," ROW2
#define ROW8 ROW4 "," ROW4
#define ROW16 ROW8 "," ROW8
#define ROW32 ROW16 "," ROW16
#define ROW64 ROW32 "," ROW32

struct db_import {
	struct db *db;
	int64_t list_id;
	int64_t added;
	char *trigger_sql; /* to re-create COUNT_TRIGGER; NULL if there is none */
	char *index_sql;   /* to re-create DEFER_INDEX at the end; NULL: not dropped */
	int n;             /* rows waiting in text[]/name[] */
	char delivery[16]; /* for the new members, "": regular (the default) */
	int64_t first_id;  /* new members' ids are above it (the write lock is ours) */
	struct db_addr text[IMPORT_BATCH];
	char name[IMPORT_BATCH][DB_MEMBER_NAME_MAX + 1];
};

struct db_import *
db_member_import_begin(struct db *db, int64_t list_id)
{
	static const char sql_trigger[] = "SELECT sql FROM sqlite_master "
	                                  "WHERE type = 'trigger' AND name = '" COUNT_TRIGGER "'";
	static const char sql_list[] = "SELECT 1 FROM lists WHERE id = ?";
	struct db_import *im = calloc(1, sizeof(*im));
	char pragma[64];
	sqlite3_stmt *st;
	int rc;

	if (im == NULL) {
		db_failf(db, DB_ERR, "out of memory");
		return NULL;
	}
	im->db = db;
	im->list_id = list_id;
	snprintf(pragma, sizeof(pragma), "PRAGMA cache_size = -%d", IMPORT_CACHE_KIB);
	/* Foreign keys off (it can only change outside a transaction): with
	 * them, and with any constraint that could abort a multi-row INSERT
	 * half-way, SQLite keeps a statement journal (an undo log written page
	 * by page, millions of writes for a big import). INSERT OR IGNORE on
	 * values checked here cannot abort, and the list's existence, the only
	 * foreign key, is checked below under the write lock. */
	if (db_exec(db, pragma) < 0 || db_exec(db, "PRAGMA foreign_keys = OFF") < 0 ||
	    db_begin(db) < 0)
		goto fail;
	if ((st = db_stmt(db, sql_list)) == NULL)
		goto fail_tx;
	sqlite3_bind_int64(st, 1, list_id);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_ROW) {
		if (rc == SQLITE_DONE)
			db_failf(db, DB_NOTFOUND, "no list with id %lld (deleted meanwhile?)",
			         (long long)list_id);
		else
			db_fail(db, rc, "checking the list");
		goto fail_tx;
	}
	if ((st = db_stmt(db, sql_trigger)) == NULL)
		goto fail_tx;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW && sqlite3_column_text(st, 0) != NULL) {
		im->trigger_sql = strdup((const char *)sqlite3_column_text(st, 0));
		if (im->trigger_sql == NULL)
			rc = SQLITE_NOMEM;
	}
	sqlite3_reset(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		db_fail(db, rc, "reading the member count trigger");
		goto fail_tx;
	}
	if (im->trigger_sql != NULL && db_exec(db, "DROP TRIGGER " COUNT_TRIGGER) < 0)
		goto fail_tx;
	db_ok(db);
	return im;
fail_tx:
	db_rollback(db);
fail:
	sqlite3_exec(db->sql, "PRAGMA cache_size = -2000; PRAGMA foreign_keys = ON", NULL, NULL,
	             NULL);
	free(im->trigger_sql);
	free(im);
	return NULL;
}

/* Inserts the waiting rows: all of them with the batch statement, or one
 * by one for a last, partial batch. */
static int
import_flush(struct db_import *im)
{
	static const char sql_one[] =
	    "INSERT OR IGNORE INTO members (list_id, address, addr_key, domain, "
	    "name, created, updated) VALUES " ROW1;
	static const char sql_batch[] =
	    "INSERT OR IGNORE INTO members (list_id, address, addr_key, domain, "
	    "name, created, updated) VALUES " ROW64;
	struct db *db = im->db;
	int64_t now = db_now();
	int per = im->n == IMPORT_BATCH ? IMPORT_BATCH : 1;

	for (int done = 0; done < im->n; done += per) {
		sqlite3_stmt *st = db_stmt(db, per == 1 ? sql_one : sql_batch);
		int rc;

		if (st == NULL)
			return -1;
		for (int i = 0; i < per; i++) {
			struct db_addr *t = &im->text[done + i];
			const char *name = im->name[done + i];
			int p = i * 7;
			sqlite3_bind_int64(st, p + 1, im->list_id);
			sqlite3_bind_text(st, p + 2, t->address, -1, SQLITE_STATIC);
			sqlite3_bind_text(st, p + 3, t->key, -1, SQLITE_STATIC);
			sqlite3_bind_text(st, p + 4, t->domain, -1, SQLITE_STATIC);
			if (*name)
				sqlite3_bind_text(st, p + 5, name, -1, SQLITE_STATIC);
			else
				sqlite3_bind_null(st, p + 5);
			sqlite3_bind_int64(st, p + 6, now);
			sqlite3_bind_int64(st, p + 7, now);
		}
		rc = sqlite3_step(st);
		sqlite3_reset(st);
		if (rc != SQLITE_DONE) {
			if (rc == SQLITE_CONSTRAINT_FOREIGNKEY)
				return db_failf(db, DB_NOTFOUND, "no list with id %lld",
				                (long long)im->list_id);
			return db_fail(db, rc, "importing members");
		}
		im->added += sqlite3_changes(db->sql);
	}
	im->n = 0;
	return 0;
}

int
db_member_import_add(struct db_import *im, const struct db_addr *a, const char *name)
{
	if (name != NULL && strlen(name) > DB_MEMBER_NAME_MAX)
		return db_failf(im->db, DB_INVALID, "the name is longer than %d octets",
		                DB_MEMBER_NAME_MAX);
	im->text[im->n] = *a;
	snprintf(im->name[im->n], sizeof(im->name[0]), "%s", name ? name : "");
	if (++im->n == IMPORT_BATCH)
		return import_flush(im);
	return 0;
}

int
db_member_import_delivery(struct db_import *im, const char *mode)
{
	static const char sql[] = "SELECT coalesce(max(id), 0) FROM members";
	sqlite3_stmt *st;
	int rc;

	if (!delivery_valid(mode))
		return db_failf(im->db, DB_INVALID,
		                "delivery: '%s' is not one of regular, digest, digest-text, nomail",
		                mode);
	if ((st = db_stmt(im->db, sql)) == NULL)
		return -1;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		im->first_id = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	if (rc != SQLITE_ROW)
		return db_fail(im->db, rc, "reading the last member id");
	snprintf(im->delivery, sizeof(im->delivery), "%s", mode);
	db_ok(im->db);
	return 0;
}

/* The new members' delivery mode, in one UPDATE at the end: the rows go
 * in by the batch statement as every import's do, and only the new ones
 * (ids above those there were at the start, INSERT OR IGNORE leaves the
 * others) change. */
static int
import_delivery(struct db_import *im)
{
	static const char sql[] = "UPDATE members SET delivery = ?1 WHERE list_id = ?2 AND id > ?3";
	sqlite3_stmt *st;
	int rc;

	if (im->delivery[0] == '\0' || strcmp(im->delivery, "regular") == 0 || im->added == 0)
		return 0;
	if ((st = db_stmt(im->db, sql)) == NULL)
		return -1;
	sqlite3_bind_text(st, 1, im->delivery, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, im->list_id);
	sqlite3_bind_int64(st, 3, im->first_id);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return db_fail(im->db, rc, "setting the imported members' delivery");
	return 0;
}

/* Puts the count trigger back and adds what it did not count. */
static int
restore_counts(struct db_import *im)
{
	static const char sql[] = "INSERT INTO member_counts (list_id, status, n) "
	                          "VALUES (?, 'enabled', ?) "
	                          "ON CONFLICT (list_id, status) DO UPDATE SET n = n + excluded.n";
	struct db *db = im->db;
	sqlite3_stmt *st;
	int rc;

	if (im->trigger_sql == NULL)
		return 0;
	if (db_exec(db, im->trigger_sql) < 0)
		return -1;
	if (im->added == 0)
		return 0;
	if ((st = db_stmt(db, sql)) == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, im->list_id);
	sqlite3_bind_int64(st, 2, im->added);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return db_fail(db, rc, "counting imported members");
	return 0;
}

int
db_member_import_end(struct db_import *im, int commit, int64_t *added)
{
	struct db *db = im->db;
	int rc = 0;

	if (commit &&
	    (import_flush(im) < 0 || import_delivery(im) < 0 || restore_counts(im) < 0 ||
	     (im->index_sql != NULL && db_exec(db, im->index_sql) < 0) || db_commit(db) < 0)) {
		db_rollback(db);
		rc = -1;
	} else if (!commit) {
		db_rollback(db);
	}
	/* Back to the defaults; a failure here changes nothing. */
	sqlite3_exec(db->sql, "PRAGMA cache_size = -2000; PRAGMA foreign_keys = ON", NULL, NULL,
	             NULL);
	if (added != NULL)
		*added = rc == 0 && commit ? im->added : 0;
	free(im->trigger_sql);
	free(im->index_sql);
	free(im);
	if (rc == 0)
		db_ok(db);
	return rc;
}

/* The fan-out's covering index: kept up to date row by row it is most of
 * a big import's cost (8 of 11 s of CPU for 1,000,000 members here);
 * built once at the end, by sorting, it costs less than half of that. But
 * building it reads every member of every list: worth it only when the
 * import at least doubles the table. */
#define DEFER_INDEX "members_by_status_domain"
#define DEFER_MIN_ROWS 50000

int
db_member_import_expect(struct db_import *im, int64_t rows)
{
	static const char sql_max[] = "SELECT max(id) FROM members";
	static const char sql_index[] = "SELECT sql FROM sqlite_master "
	                                "WHERE type = 'index' AND name = '" DEFER_INDEX "'";
	struct db *db = im->db;
	sqlite3_stmt *st;
	int64_t have = 0;
	int rc;

	if (rows < DEFER_MIN_ROWS || im->index_sql != NULL)
		return 0;
	if ((st = db_stmt(db, sql_max)) == NULL)
		return -1;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		have = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	if (rc != SQLITE_ROW)
		return db_fail(db, rc, "counting members");
	if (rows < have)
		return 0;
	if ((st = db_stmt(db, sql_index)) == NULL)
		return -1;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW && sqlite3_column_text(st, 0) != NULL &&
	    (im->index_sql = strdup((const char *)sqlite3_column_text(st, 0))) == NULL)
		rc = SQLITE_NOMEM;
	sqlite3_reset(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return db_fail(db, rc, "reading the fan-out index");
	if (im->index_sql != NULL && db_exec(db, "DROP INDEX " DEFER_INDEX) < 0) {
		free(im->index_sql);
		im->index_sql = NULL;
		return -1;
	}
	db_ok(db);
	return 0;
}

/* *found = whether sql (bound to list_id and addr_key) returns a row. */
static int
row_exists(struct db *db, const char *sql, int64_t list_id, const char *addr_key, const char *what,
           int *found)
{
	sqlite3_stmt *st;
	int rc;

	if ((st = db_stmt(db, sql)) == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, list_id);
	sqlite3_bind_text(st, 2, addr_key, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	*found = rc == SQLITE_ROW;
	sqlite3_reset(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return db_fail(db, rc, what);
	return 0;
}

int
db_engine_poster(struct db *db, int64_t list_id, const char *addr_key, int *is_member,
                 int *is_privileged)
{
	static const char sql_m[] = "SELECT 1 FROM members WHERE list_id = ?1 AND addr_key = ?2"
	                            " AND status <> 'unconfirmed'";
	static const char sql_r[] = "SELECT 1 FROM roles WHERE list_id = ?1 AND addr_key = ?2";

	*is_member = *is_privileged = 0;
	if (row_exists(db, sql_m, list_id, addr_key, "poster membership", is_member) < 0 ||
	    row_exists(db, sql_r, list_id, addr_key, "poster role", is_privileged) < 0)
		return -1;
	db_ok(db);
	return 0;
}
