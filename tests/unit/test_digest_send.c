/*
 * test_digest_send.c - digests against a real SQLite store: posts kept as they
 * go out, an issue takes each pending post exactly once (a second send
 * finds nothing; a rolled-back send leaves them pending), one queued
 * message per delivery mode with a row per member of that mode, numbering
 * by volume, the due rules, and migration 8 keeping members and what
 * refers to them.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "fm_assert.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <fcntl.h>
#include <unistd.h>

#include "conf/conf.h"
#include "db/db.h"
#include "db/db_internal.h"
#include "db/digest.h"
#include "db/engine.h"
#include "db/retention.h"
#include "db/schema.h"
#include "lists/digest_send.h"
#include "lists/posting.h"
#include "server/engine_runner.h"
#include "server/log.h"

struct fx {
	char dir[64];
	char path[128];
	struct db *db;
	sqlite3 *sql;
	struct conf conf;
};

static void
exec(struct fx *f, const char *fmt, ...)
{
	char buf[8192], *err = NULL;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (sqlite3_exec(f->sql, buf, NULL, NULL, &err) != SQLITE_OK)
		fail_msg("SQL failed: %s: %s", buf, err);
}

static long long
scalar(struct fx *f, const char *fmt, ...)
{
	char buf[4096];
	sqlite3_stmt *st;
	long long v = -1;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (sqlite3_prepare_v2(f->sql, buf, -1, &st, NULL) != SQLITE_OK)
		fail_msg("SQL failed: %s: %s", buf, sqlite3_errmsg(f->sql));
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

static char *
text(struct fx *f, const char *fmt, ...)
{
	char buf[4096];
	sqlite3_stmt *st;
	char *v = NULL;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (sqlite3_prepare_v2(f->sql, buf, -1, &st, NULL) != SQLITE_OK)
		fail_msg("SQL failed: %s: %s", buf, sqlite3_errmsg(f->sql));
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
		v = strndup((const char *)sqlite3_column_blob(st, 0),
		            (size_t)sqlite3_column_bytes(st, 0));
	sqlite3_finalize(st);
	return v;
}

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	char err[256];

	snprintf(f->dir, sizeof(f->dir), "/tmp/fm-digest-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/fanmail.db", f->dir);
	f->db = db_open(f->path, DB_OPEN_CREATE, err, sizeof(err));
	assert_non_null(f->db);
	assert_int_equal(sqlite3_open(f->path, &f->sql), SQLITE_OK);
	sqlite3_busy_timeout(f->sql, 5000);
	conf_init(&f->conf);
	conf_set(&f->conf, "hostname", "mx.lists.example.org", err, sizeof(err));
	exec(f, "INSERT INTO lists (id, address, local, domain, created)"
	        " VALUES (1, 'test@lists.example.org', 'test', 'lists.example.org', 0)");
	exec(
	    f,
	    "INSERT INTO members (list_id, address, addr_key, domain, status, delivery, "
	    "self_copy, created, updated) VALUES"
	    " (1, 'Ann@Example.com', 'ann@example.com', 'example.com', 'enabled', 'regular', 0, 0, "
	    "0),"
	    " (1, 'bob@example.net', 'bob@example.net', 'example.net', 'enabled', 'regular', 0, 0, "
	    "0),"
	    " (1, 'cy@example.org', 'cy@example.org', 'example.org', 'enabled', 'regular', 1, 0, "
	    "0),"
	    " (1, 'dis@example.org', 'dis@example.org', 'example.org', 'disabled', 'regular', 0, "
	    "0, 0),"
	    " (1, 'dig@example.org', 'dig@example.org', 'example.org', 'enabled', 'digest', 0, 0, "
	    "0),"
	    " (1, 'no@example.org', 'no@example.org', 'example.org', 'enabled', 'nomail', 0, 0, 0),"
	    " (1, 'new@example.org', 'new@example.org', 'example.org', 'unconfirmed', 'regular', "
	    "0, 0, 0)");
	exec(f, "INSERT INTO roles VALUES (1, 'owner', 'boss@example.org', 'boss@example.org')");
	log_init("test_digest_send", "warning");
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;
	char cmd[128];

	sqlite3_close(f->sql);
	db_close(f->db);
	conf_free(&f->conf);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
	if (system(cmd) != 0)
		return -1;
	free(f);
	return 0;
}

static long long
spool(struct fx *f, const char *mail_from, const char *from_hdr, const char *extra,
      const char *role)
{
	static int n;
	char msg[2048];
	sqlite3_stmt *st;
	long long id;

	snprintf(msg, sizeof(msg),
	         "Received: from client\r\nFrom: %s\r\nTo: test@lists.example.org\r\n"
	         "Subject: hello %d\r\nMessage-ID: <m%d@example.com>\r\n%s\r\nBody text.\r\n",
	         from_hdr, n, n, extra);
	n++;
	sqlite3_prepare_v2(f->sql,
	                   "INSERT INTO spool (qid, received, client, helo, mail_from, size)"
	                   " VALUES (printf('Q%04d', ?3), 0, 'c', 'h', ?1, length(?2))",
	                   -1, &st, NULL);
	sqlite3_bind_text(st, 1, mail_from, -1, SQLITE_STATIC);
	sqlite3_bind_blob(st, 2, msg, (int)strlen(msg), SQLITE_STATIC);
	sqlite3_bind_int(st, 3, n);
	assert_int_equal(sqlite3_step(st), SQLITE_DONE);
	sqlite3_finalize(st);
	id = sqlite3_last_insert_rowid(f->sql);
	sqlite3_prepare_v2(f->sql, "INSERT INTO spool_body (id, message) VALUES (?1, ?2)", -1, &st,
	                   NULL);
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_blob(st, 2, msg, (int)strlen(msg), SQLITE_STATIC);
	assert_int_equal(sqlite3_step(st), SQLITE_DONE);
	sqlite3_finalize(st);
	exec(f,
	     "INSERT INTO spool_rcpt (spool_id, rcpt, list_id, role) VALUES"
	     " (%lld, 'test@lists.example.org', 1, '%s')",
	     id, role);
	return id;
}

static int kicks;

static void
kick(void *arg)
{
	(void)arg;
	kicks++;
}

static int
drain(struct fx *f, const struct posting_dmarc *dm)
{
	int handled = -1;

	assert_int_equal(engine_runner_drain(f->db, &f->conf, dm, kick, NULL, &handled), 0);
	return handled;
}

static void
post_n(struct fx *f, int n)
{
	for (int i = 0; i < n; i++)
		spool(f, "ann@example.com", "Ann <ann@example.com>", "", "post");
	assert_int_equal(drain(f, NULL), n);
}

static void
add_text_member(struct fx *f)
{
	exec(f, "INSERT INTO members (list_id, address, addr_key, domain, status, delivery,"
	        " self_copy, created, updated) VALUES (1, 'txt@example.org', 'txt@example.org',"
	        " 'example.org', 'enabled', 'digest-text', 0, 0, 0)");
}

static void
test_posts_are_kept_and_regular_fanout_unchanged(void **state)
{
	struct fx *f = *state;
	char *s;

	add_text_member(f);
	post_n(f, 2);
	assert_int_equal(scalar(f, "SELECT count(*) FROM digest_posts WHERE issue_id IS NULL"), 2);
	/* The kept post is the one sent: rewritten, List-Id and all. */
	s = text(f, "SELECT body FROM digest_posts ORDER BY id LIMIT 1");
	assert_string_contains(s, "\r\nSubject: [test] hello");
	assert_string_contains(s, "\r\nList-Id: ");
	free(s);
	s = text(f, "SELECT sender FROM digest_posts ORDER BY id LIMIT 1");
	assert_string_equal(s, "ann@example.com");
	free(s);
	/* Digest members are not in the posts' fan-out. */
	assert_int_equal(scalar(f, "SELECT count(*) FROM deliveries WHERE rcpt IN"
	                           " ('dig@example.org', 'txt@example.org')"),
	                 0);
	assert_int_equal(scalar(f, "SELECT count(*) FROM out_msg WHERE kind = 'post'"), 2);
}

static void
test_send_makes_one_issue_once(void **state)
{
	struct fx *f = *state;
	struct digest_result r;
	char err[256], *s;

	add_text_member(f);
	post_n(f, 3);
	assert_int_equal(digest_send(f->db, &f->conf, 1, 1000, &r, err, sizeof(err)), 0);
	assert_int_equal(r.volume, 1);
	assert_int_equal(r.number, 1);
	assert_int_equal(r.posts, 3);
	assert_int_equal(r.rcpt_mime, 1);
	assert_int_equal(r.rcpt_text, 1);
	assert_true(r.qid_mime[0] && r.qid_text[0]);
	assert_int_equal(scalar(f, "SELECT count(*) FROM digest_posts WHERE issue_id IS NULL"), 0);
	assert_int_equal(scalar(f, "SELECT count(*) FROM out_msg WHERE kind = 'digest'"), 2);
	s = text(f,
	         "SELECT d.rcpt FROM deliveries d JOIN out_msg m ON m.id = d.msg_id"
	         " WHERE m.qid = '%s'",
	         r.qid_mime);
	assert_string_equal(s, "dig@example.org");
	free(s);
	s = text(f,
	         "SELECT d.rcpt FROM deliveries d JOIN out_msg m ON m.id = d.msg_id"
	         " WHERE m.qid = '%s'",
	         r.qid_text);
	assert_string_equal(s, "txt@example.org");
	free(s);
	s = text(f, "SELECT body FROM out_msg WHERE qid = '%s'", r.qid_mime);
	assert_string_contains(s, "X-Fanmail-Report: ");
	assert_string_contains(s, "Subject: test digest, Vol 1, Issue 1\r\n");
	assert_string_contains(s, "\r\nList-Id: test <test.lists.example.org>\r\n");
	assert_string_contains(s, "multipart/digest");
	free(s);
	s = text(f, "SELECT posts || ' ' || qid_mime || ' ' || qid_text FROM digest_issues");
	char want[128];
	snprintf(want, sizeof(want), "3 %s %s", r.qid_mime, r.qid_text);
	assert_string_equal(s, want);
	free(s);

	/* Again: nothing pending, nothing sent, no issue numbered. */
	assert_int_equal(digest_send(f->db, &f->conf, 1, 1001, &r, err, sizeof(err)), 0);
	assert_int_equal(r.posts, 0);
	assert_int_equal(r.number, 0);
	assert_int_equal(scalar(f, "SELECT count(*) FROM out_msg WHERE kind = 'digest'"), 2);
	assert_int_equal(scalar(f, "SELECT count(*) FROM digest_issues"), 1);

	/* The next post is in the next issue, and only there. */
	post_n(f, 1);
	assert_int_equal(digest_send(f->db, &f->conf, 1, 1002, &r, err, sizeof(err)), 0);
	assert_int_equal(r.number, 2);
	assert_int_equal(r.posts, 1);
	assert_int_equal(scalar(f, "SELECT count(DISTINCT issue_id) FROM digest_posts"), 2);
	assert_int_equal(scalar(f, "SELECT count(*) FROM digest_posts WHERE issue_id ="
	                           " (SELECT id FROM digest_issues WHERE number = 2)"),
	                 1);

	/* A new volume starts at issue 1. */
	exec(f, "INSERT INTO list_settings VALUES (1, 'digest_volume', '2')");
	post_n(f, 1);
	assert_int_equal(digest_send(f->db, &f->conf, 1, 1003, &r, err, sizeof(err)), 0);
	assert_int_equal(r.volume, 2);
	assert_int_equal(r.number, 1);
}

static void
test_rolled_back_send_leaves_posts_pending(void **state)
{
	struct fx *f = *state;
	struct digest_result r;
	char err[256];

	post_n(f, 2);
	/* Inside the caller's transaction, then undone: as if the process
	 * died after assigning and before the commit. */
	assert_int_equal(db_begin(f->db), 0);
	assert_int_equal(digest_send(f->db, &f->conf, 1, 1000, &r, err, sizeof(err)), 0);
	assert_int_equal(r.posts, 2);
	db_rollback(f->db);
	assert_int_equal(scalar(f, "SELECT count(*) FROM digest_posts WHERE issue_id IS NULL"), 2);
	assert_int_equal(scalar(f, "SELECT count(*) FROM digest_issues"), 0);
	assert_int_equal(scalar(f, "SELECT count(*) FROM digest_counters"), 0);
	assert_int_equal(scalar(f, "SELECT count(*) FROM out_msg WHERE kind = 'digest'"), 0);
	/* The real send then numbers it 1 and takes both. */
	assert_int_equal(digest_send(f->db, &f->conf, 1, 1000, &r, err, sizeof(err)), 0);
	assert_int_equal(r.number, 1);
	assert_int_equal(r.posts, 2);
}

static void
test_no_digest_member_drops_posts(void **state)
{
	struct fx *f = *state;
	struct digest_result r;
	char err[256];

	exec(f, "UPDATE members SET delivery = 'regular' WHERE delivery = 'digest'");
	post_n(f, 2);
	assert_int_equal(digest_send(f->db, &f->conf, 1, 1000, &r, err, sizeof(err)), 0);
	assert_int_equal(r.posts, 0);
	assert_int_equal(r.dropped, 2);
	assert_int_equal(scalar(f, "SELECT count(*) FROM digest_posts"), 0);
	assert_int_equal(scalar(f, "SELECT count(*) FROM digest_issues"), 0);
}

static void
test_due_by_count_size_and_interval(void **state)
{
	struct fx *f = *state;
	char err[256];
	int64_t now = db_now();

	exec(f, "INSERT INTO list_settings VALUES (1, 'digest_max_posts', '3')");
	post_n(f, 2);
	assert_int_equal(digest_due(f->db, 1, now, err, sizeof(err)), 0);
	/* The interval (1d by default) counts from the first post when no
	 * issue went out yet. */
	assert_int_equal(digest_due(f->db, 1, now + 86400 + 60, err, sizeof(err)), 1);
	post_n(f, 1);
	assert_int_equal(digest_due(f->db, 1, now, err, sizeof(err)), 1);
	assert_int_equal(digest_run_due(f->db, &f->conf, now, NULL, NULL), 1);
	assert_int_equal(scalar(f, "SELECT count(*) FROM digest_posts WHERE issue_id IS NULL"), 0);
	exec(f, "INSERT INTO list_settings VALUES (1, 'digest_max_size', '10')");
	post_n(f, 1);
	assert_int_equal(digest_due(f->db, 1, now, err, sizeof(err)), 1);
	exec(f, "UPDATE list_settings SET value = '0' WHERE key LIKE 'digest_max_%%'");
	exec(f, "INSERT INTO list_settings VALUES (1, 'digest_interval', '0')");
	/* Only by hand now. */
	assert_int_equal(digest_due(f->db, 1, now + 10 * 86400, err, sizeof(err)), 0);
}

static void
test_personalized_list_queues_personal_digest(void **state)
{
	struct fx *f = *state;
	struct digest_result r;
	char err[256], *s;

	exec(f, "INSERT INTO list_settings VALUES (1, 'personalize', 'yes')");
	exec(f, "INSERT INTO list_settings VALUES (1, 'archive_url', 'https://a.example/test')");
	post_n(f, 1);
	assert_int_equal(digest_send(f->db, &f->conf, 1, 1000, &r, err, sizeof(err)), 0);
	assert_int_equal(scalar(f, "SELECT personal FROM out_msg WHERE qid = '%s'", r.qid_mime), 1);
	assert_int_equal(scalar(f, "SELECT verp FROM out_msg WHERE qid = '%s'", r.qid_mime), 1);
	s = text(f, "SELECT body FROM out_msg WHERE qid = '%s'", r.qid_mime);
	assert_string_contains(s, "List-Archive: <https://a.example/test>");
	/* Each copy gets its own List-Unsubscribe (personal.h). */
	assert_null(strstr(s, "List-Unsubscribe:"));
	free(s);
}

/* The retention pass purges the posts of issues sent before its cut-off,
 * then those issues; a later issue and a pending post stay, and the
 * numbering goes on from the counters. */
static void
test_retention_purges_sent_issues(void **state)
{
	struct fx *f = *state;
	struct digest_result r;
	struct db_retention rt = {0};
	char err[256];

	post_n(f, 2);
	assert_int_equal(digest_send(f->db, &f->conf, 1, 1000, &r, err, sizeof(err)), 0);
	post_n(f, 1);
	assert_int_equal(digest_send(f->db, &f->conf, 1, 5000, &r, err, sizeof(err)), 0);
	post_n(f, 1);
	/* Cut-off 2000: issue 1 (sent at 1000) goes, issue 2 (5000) stays. */
	assert_int_equal(db_retention_pass(f->db, &rt, 2100, 0, 100, 0, 10.0), 0);
	assert_int_equal(rt.digest_posts, 2);
	assert_int_equal(rt.digest_issues, 1);
	assert_int_equal(scalar(f, "SELECT group_concat(number) FROM digest_issues"), 2);
	assert_int_equal(scalar(f, "SELECT count(*) FROM digest_posts WHERE issue_id IS NULL"), 1);
	assert_int_equal(scalar(f, "SELECT count(*) FROM digest_posts"), 2);
	/* The queued digests are the queue's (queue_keep_done), not touched. */
	assert_int_equal(scalar(f, "SELECT count(*) FROM out_msg WHERE kind = 'digest'"), 2);
	/* Again: nothing more. Then with a later cut-off, issue 2 goes too. */
	assert_int_equal(db_retention_pass(f->db, &rt, 2100, 0, 100, 0, 10.0), 0);
	assert_int_equal(rt.digest_posts + rt.digest_issues, 0);
	assert_int_equal(db_retention_pass(f->db, &rt, 9000, 0, 100, 0, 10.0), 0);
	assert_int_equal(rt.digest_posts, 1);
	assert_int_equal(rt.digest_issues, 1);
	assert_int_equal(scalar(f, "SELECT count(*) FROM digest_posts WHERE issue_id IS NULL"), 1);
	assert_int_equal(digest_send(f->db, &f->conf, 1, 9500, &r, err, sizeof(err)), 0);
	assert_int_equal(r.number, 3);
	assert_int_equal(r.posts, 1);
}

/* Migration 8 rebuilds members: ids, counts, and the rows that refer to
 * members (bounce_disabled, bounce_events) survive. */
static void
test_migration_8_keeps_members(void **state)
{
	char dir[64], path[128], err[512];
	sqlite3 *s;
	sqlite3_stmt *st;
	struct db *db;

	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/fm-unit-mig8-XXXXXX");
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/old.db", dir);
	assert_int_equal(sqlite3_open(path, &s), SQLITE_OK);
	assert_int_equal(sqlite3_exec(s, "PRAGMA foreign_keys = ON", NULL, NULL, NULL), SQLITE_OK);
	for (int i = 1; i <= 7; i++)
		assert_int_equal(sqlite3_exec(s, schema_migration(i), NULL, NULL, NULL), SQLITE_OK);
	assert_int_equal(
	    sqlite3_exec(s,
	                 "PRAGMA user_version = 7;"
	                 "INSERT INTO lists (id, address, local, domain, created) VALUES"
	                 " (1, 'l@d.example', 'l', 'd.example', 0);"
	                 "INSERT INTO members (id, list_id, address, addr_key, domain, status,"
	                 " delivery, bounce_score, created, updated) VALUES"
	                 " (7, 1, 'a@x.example', 'a@x.example', 'x.example', 'disabled',"
	                 " 'regular', 5, 0, 0),"
	                 " (9, 1, 'b@x.example', 'b@x.example', 'x.example', 'enabled', 'nomail',"
	                 " 0, 0, 0);"
	                 "INSERT INTO bounce_disabled (member_id, since) VALUES (7, 123);"
	                 "INSERT INTO bounce_events (list_id, member_id, address, domain, time,"
	                 " class) VALUES (1, 7, 'a@x.example', 'x.example', 1, 'hard');",
	                 NULL, NULL, NULL),
	    SQLITE_OK);
	sqlite3_close(s);

	db = db_open(path, 0, err, sizeof(err));
	if (db == NULL)
		fail_msg("upgrade: %s", err);
	assert_int_equal(
	    sqlite3_prepare_v2(
	        db->sql,
	        "SELECT (SELECT group_concat(id || address || status, ' ') FROM members),"
	        " (SELECT since FROM bounce_disabled WHERE member_id = 7),"
	        " (SELECT member_id FROM bounce_events),"
	        " (SELECT group_concat(status || n, ' ') FROM member_counts),"
	        " (SELECT count(*) FROM sqlite_schema WHERE tbl_name = 'members')",
	        -1, &st, NULL),
	    SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_string_equal((const char *)sqlite3_column_text(st, 0),
	                    "7a@x.exampledisabled 9b@x.exampleenabled");
	assert_int_equal(sqlite3_column_int(st, 1), 123);
	assert_int_equal(sqlite3_column_int(st, 2), 7);
	assert_string_contains((const char *)sqlite3_column_text(st, 3), "disabled1");
	assert_string_contains((const char *)sqlite3_column_text(st, 3), "enabled1");
	/* the table, its unique index, members_by_status_domain, 3 triggers */
	assert_int_equal(sqlite3_column_int(st, 4), 6);
	sqlite3_finalize(st);
	assert_int_equal(sqlite3_exec(db->sql,
	                              "UPDATE members SET delivery = 'digest-text' WHERE id = 9;"
	                              "DELETE FROM members WHERE id = 7;",
	                              NULL, NULL, NULL),
	                 SQLITE_OK);
	/* The triggers are back: the count follows the delete. */
	assert_int_equal(sqlite3_prepare_v2(db->sql,
	                                    "SELECT n FROM member_counts WHERE status = 'disabled'",
	                                    -1, &st, NULL),
	                 SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int(st, 0), 0);
	sqlite3_finalize(st);
	assert_int_not_equal(sqlite3_exec(db->sql,
	                                  "UPDATE members SET delivery = 'mime' WHERE id = 9", NULL,
	                                  NULL, NULL),
	                     SQLITE_OK);
	db_close(db);
	snprintf(err, sizeof(err), "rm -rf %s", dir);
	assert_int_equal(system(err), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_posts_are_kept_and_regular_fanout_unchanged, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_send_makes_one_issue_once, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_rolled_back_send_leaves_posts_pending, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_no_digest_member_drops_posts, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_due_by_count_size_and_interval, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_personalized_list_queues_personal_digest, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_retention_purges_sent_issues, setup, teardown),
	    cmocka_unit_test(test_migration_8_keeps_members),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
