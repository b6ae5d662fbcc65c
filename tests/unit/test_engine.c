/*
 * test_engine.c - the posting path against a real SQLite store: spool
 * entries in, one out_msg and its delivery rows out, exactly once.
 * The store is set up with plain SQL on a second connection, the way the
 * CLI and smtp_in would leave it.
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
#include "db/engine.h"
#include "lists/engine.h"
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

	snprintf(f->dir, sizeof(f->dir), "/tmp/fm-engine-XXXXXX");
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
	log_init("test_engine", "warning");
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
drain(struct fx *f, const struct engine_dmarc *dm)
{
	int handled = -1;

	assert_int_equal(engine_runner_drain(f->db, &f->conf, dm, kick, NULL, &handled), 0);
	return handled;
}

static void
test_member_post_becomes_one_message_for_enabled_regular_members(void **state)
{
	struct fx *f = *state;
	long long id = spool(f, "ann@example.com", "Ann <ann@example.com>", "", "post");
	char *s;

	kicks = 0;
	assert_int_equal(drain(f, NULL), 1);
	assert_int_equal(kicks, 1);
	assert_int_equal(scalar(f, "SELECT count(*) FROM out_msg"), 1);
	/* bob, and cy (self_copy is cy's own, not the poster's); not ann
	 * (the poster), not disabled, digest, nomail or unconfirmed. */
	s = text(f,
	         "SELECT group_concat(rcpt, ' ') FROM (SELECT rcpt FROM deliveries ORDER BY rcpt)");
	assert_string_equal(s, "bob@example.net cy@example.org");
	free(s);
	s = text(f, "SELECT env_from || ' ' || kind FROM out_msg");
	assert_string_equal(s, "test-bounces@lists.example.org post");
	free(s);
	s = text(f, "SELECT state FROM spool WHERE id = %lld", id);
	assert_string_equal(s, "done");
	free(s);
	s = text(f, "SELECT outcome FROM spool WHERE id = %lld", id);
	assert_string_contains(s, "posted: queued as");
	assert_string_contains(s, "rcpts=2");
	free(s);
	s = text(f, "SELECT body FROM out_msg");
	assert_string_contains(s, "\r\nSubject: [test] hello");
	assert_string_contains(s, "\r\nList-Id: test <test.lists.example.org>\r\n");
	free(s);
	assert_int_equal(scalar(f, "SELECT count(*) FROM archive WHERE list_id = 1"), 1);
	assert_int_equal(scalar(f, "SELECT post_count FROM lists WHERE id = 1"), 1);
	/* Exactly once: a second pass finds nothing. */
	assert_int_equal(drain(f, NULL), 0);
	assert_int_equal(scalar(f, "SELECT count(*) FROM out_msg"), 1);
}

static void
test_self_copy_member_gets_own_post(void **state)
{
	struct fx *f = *state;

	spool(f, "cy@example.org", "cy@example.org", "", "post");
	assert_int_equal(drain(f, NULL), 1);
	assert_int_equal(scalar(f, "SELECT count(*) FROM deliveries WHERE rcpt = 'cy@example.org'"),
	                 1);
	assert_int_equal(scalar(f, "SELECT count(*) FROM deliveries"), 3);
}

static void
test_poster_known_by_envelope_when_from_is_not_a_member(void **state)
{
	struct fx *f = *state;

	spool(f, "bob@example.net", "Bob <bob@elsewhere.example>", "", "post");
	assert_int_equal(drain(f, NULL), 1);
	assert_int_equal(scalar(f, "SELECT count(*) FROM out_msg WHERE kind = 'post'"), 1);
}

static void
test_non_member_rejected_with_notice(void **state)
{
	struct fx *f = *state;
	char *s;

	exec(f, "INSERT INTO list_settings VALUES (1, 'nonmember_action', 'reject')");
	spool(f, "eve@example.com", "eve@example.com", "", "post");
	assert_int_equal(drain(f, NULL), 1);
	assert_int_equal(scalar(f, "SELECT count(*) FROM out_msg WHERE kind = 'post'"), 0);
	s = text(f, "SELECT d.rcpt FROM deliveries d JOIN out_msg m ON m.id = d.msg_id"
	            " WHERE m.kind = 'notice'");
	assert_string_equal(s, "eve@example.com");
	free(s);
	s = text(f, "SELECT outcome FROM spool");
	assert_string_contains(s, "rejected: post from a non-member (notice queued as");
	free(s);
}

static void
test_non_member_reject_never_answers_automatic_mail(void **state)
{
	struct fx *f = *state;

	exec(f, "INSERT INTO list_settings VALUES (1, 'nonmember_action', 'reject')");
	spool(f, "eve@example.com", "eve@example.com", "Auto-Submitted: auto-replied\r\n", "post");
	spool(f, "", "eve@example.com", "", "post");
	assert_int_equal(drain(f, NULL), 2);
	assert_int_equal(scalar(f, "SELECT count(*) FROM out_msg"), 0);
}

static void
test_non_member_discarded_silently(void **state)
{
	struct fx *f = *state;
	char *s;

	exec(f, "INSERT INTO list_settings VALUES (1, 'nonmember_action', 'discard')");
	spool(f, "eve@example.com", "eve@example.com", "", "post");
	assert_int_equal(drain(f, NULL), 1);
	assert_int_equal(scalar(f, "SELECT count(*) FROM out_msg"), 0);
	s = text(f, "SELECT state || ' ' || outcome FROM spool");
	assert_string_equal(s,
	                    "done to=<test@lists.example.org>: discarded: post from a non-member");
	free(s);
}

static void
test_announce_list_lets_owner_post(void **state)
{
	struct fx *f = *state;

	exec(f, "INSERT INTO list_settings VALUES (1, 'policy', 'announce'),"
	        " (1, 'nonmember_action', 'discard')");
	spool(f, "ann@example.com", "ann@example.com", "", "post");
	spool(f, "boss@example.org", "Boss <BOSS@example.org>", "", "post");
	assert_int_equal(drain(f, NULL), 2);
	assert_int_equal(scalar(f, "SELECT count(*) FROM out_msg"), 1);
	assert_int_equal(scalar(f, "SELECT count(*) FROM deliveries"), 3);
}

static void
test_moderated_list_holds_a_members_post(void **state)
{
	struct fx *f = *state;
	char *s;

	exec(f, "INSERT INTO list_settings VALUES (1, 'policy', 'moderated')");
	spool(f, "ann@example.com", "ann@example.com", "", "post");
	assert_int_equal(drain(f, NULL), 1);
	assert_int_equal(scalar(f, "SELECT count(*) FROM out_msg WHERE kind = 'post'"), 0);
	s = text(f, "SELECT state || ' ' || reason FROM holds");
	assert_non_null(s);
	assert_string_contains(s, "held ");
	assert_string_contains(s, "moderated");
	free(s);
	s = text(f, "SELECT outcome FROM spool");
	assert_string_contains(s, "held");
	free(s);
}

static void
test_open_list_takes_a_non_members_post(void **state)
{
	struct fx *f = *state;

	exec(f, "INSERT INTO list_settings VALUES (1, 'policy', 'open'),"
	        " (1, 'nonmember_action', 'discard')");
	spool(f, "eve@example.com", "eve@example.com", "", "post");
	assert_int_equal(drain(f, NULL), 1);
	assert_int_equal(scalar(f, "SELECT count(*) FROM out_msg WHERE kind = 'post'"), 1);
	assert_int_equal(scalar(f, "SELECT count(*) FROM holds"), 0);
}

static void
test_announce_list_rejects_a_members_post_with_notice(void **state)
{
	struct fx *f = *state;
	char *s;

	exec(f, "INSERT INTO list_settings VALUES (1, 'policy', 'announce'),"
	        " (1, 'nonmember_action', 'reject')");
	spool(f, "ann@example.com", "ann@example.com", "", "post");
	assert_int_equal(drain(f, NULL), 1);
	assert_int_equal(scalar(f, "SELECT count(*) FROM out_msg WHERE kind = 'post'"), 0);
	s = text(f, "SELECT d.rcpt FROM deliveries d JOIN out_msg m ON m.id = d.msg_id"
	            " WHERE m.kind = 'notice'");
	assert_string_equal(s, "ann@example.com");
	free(s);
	s = text(f, "SELECT outcome FROM spool");
	assert_string_contains(s, "only owners and moderators post to this list");
	free(s);
}

static void
test_loop_dropped_and_logged_in_outcome(void **state)
{
	struct fx *f = *state;
	char *s;

	spool(f, "ann@example.com", "ann@example.com", "List-Id: <test.lists.example.org>\r\n",
	      "post");
	assert_int_equal(drain(f, NULL), 1);
	assert_int_equal(scalar(f, "SELECT count(*) FROM out_msg"), 0);
	s = text(f, "SELECT outcome FROM spool");
	assert_string_contains(s, "dropped: loop");
	free(s);
}

static int
fixed_reject(void *arg, const char *domain, char *policy, size_t len, int64_t *ttl)
{
	int *calls = arg;

	(*calls)++;
	snprintf(policy, len, "%s", strcmp(domain, "example.com") == 0 ? "reject" : "none");
	*ttl = 3600;
	return 0;
}

static char prefetched[512];
static int prefetches;

static int
record_prefetch(void *arg, const char *const *domains, size_t n)
{
	(void)arg;
	prefetches++;
	prefetched[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		strncat(prefetched, domains[i], sizeof(prefetched) - strlen(prefetched) - 2);
		strcat(prefetched, " ");
	}
	return (int)n;
}

static void
test_dmarc_domains_of_waiting_posts_are_prefetched_together(void **state)
{
	struct fx *f = *state;
	int calls = 0;
	struct engine_dmarc dm = {fixed_reject, &calls, record_prefetch};

	prefetches = 0;
	spool(f, "ann@example.com", "Ann <ann@example.com>", "", "post");
	spool(f, "bob@example.net", "Bob <bob@example.net>", "", "post");
	spool(f, "cy@example.org", "cy@example.org", "", "post");
	assert_int_equal(drain(f, &dm), 3);
	assert_int_equal(prefetches, 1); /* one call for the three entries */
	assert_string_equal(prefetched, "example.com example.net example.org ");
	assert_int_equal(scalar(f, "SELECT count(*) FROM out_msg WHERE kind = 'post'"), 3);
}

static void
test_dmarc_reject_rewrites_from_and_is_kept_for_release(void **state)
{
	struct fx *f = *state;
	int calls = 0;
	struct engine_dmarc dm = {fixed_reject, &calls, NULL};
	long long id;
	char *s, outcome[512];

	id = spool(f, "ann@example.com", "Ann <ann@example.com>", "", "post");
	assert_int_equal(drain(f, &dm), 1);
	assert_true(calls >= 1); /* the runner asks before its transaction too */
	s = text(f, "SELECT body FROM out_msg");
	assert_string_contains(s, "From: Ann via test <test@lists.example.org>\r\n"
	                          "Reply-To: Ann <ann@example.com>\r\n");
	free(s);
	s = text(f, "SELECT policy FROM dmarc_cache WHERE domain = 'example.com'");
	assert_string_equal(s, "reject");
	free(s);
	/* A moderator's release (no live lookup) uses the kept answer. */
	assert_int_equal(db_begin(f->db), 0);
	assert_int_equal(engine_release_post(f->db, &f->conf, 1, id, outcome, sizeof(outcome)), 0);
	assert_int_equal(db_commit(f->db), 0);
	assert_string_contains(outcome, "dmarc=reject (From rewritten)");
	assert_int_equal(scalar(f, "SELECT count(*) FROM out_msg"), 2);
}

static int
failing(void *arg, const char *domain, char *policy, size_t len, int64_t *ttl)
{
	return -1;
}

static void
test_dmarc_lookup_failure_applies_fallback(void **state)
{
	struct fx *f = *state;
	struct engine_dmarc dm = {failing, NULL, NULL};
	char *s;

	exec(f, "INSERT INTO list_settings VALUES (1, 'dmarc_fallback', 'skip')");
	spool(f, "ann@example.com", "Ann <ann@example.com>", "", "post");
	assert_int_equal(drain(f, &dm), 1);
	s = text(f, "SELECT body FROM out_msg");
	assert_string_contains(s, "\r\nFrom: Ann <ann@example.com>\r\n");
	free(s);
	s = text(f, "SELECT outcome FROM spool");
	assert_string_contains(s, "dmarc=lookup failed");
	free(s);
}

static void
test_failed_handler_marks_entry_failed_and_keeps_nothing(void **state)
{
	struct fx *f = *state;
	char *s;

	/* The store refuses the archive row, after the out_msg went in. */
	exec(f, "CREATE TRIGGER no_archive BEFORE INSERT ON archive"
	        " BEGIN SELECT RAISE(ABORT, 'archive refused'); END");
	spool(f, "ann@example.com", "ann@example.com", "", "post");
	assert_int_equal(drain(f, NULL), 1);
	assert_int_equal(scalar(f, "SELECT count(*) FROM out_msg"), 0);
	assert_int_equal(scalar(f, "SELECT count(*) FROM deliveries"), 0);
	s = text(f, "SELECT state || ' ' || outcome FROM spool");
	assert_string_contains(s, "failed to=<test@lists.example.org>: failed:");
	assert_string_contains(s, "archive refused");
	free(s);
}

/* Entries share a transaction; a failing one in the middle is undone
 * alone and recorded as failed, its neighbours are done and kept. */
static void
test_failed_entry_in_a_batch_leaves_the_others_done(void **state)
{
	struct fx *f = *state;
	char *s;

	spool(f, "ann@example.com", "ann@example.com", "", "post");
	spool(f, "ann@example.com", "ann@example.com", "", "post");
	spool(f, "ann@example.com", "ann@example.com", "", "post");
	/* Only the second entry's archive row is refused. */
	exec(f, "CREATE TRIGGER no_second BEFORE INSERT ON archive"
	        " WHEN instr(CAST((SELECT message FROM spool_body ORDER BY id LIMIT 1 OFFSET 1) AS "
	        "TEXT),"
	        " NEW.message_id) > 0"
	        " BEGIN SELECT RAISE(ABORT, 'archive refused'); END");
	kicks = 0;
	assert_int_equal(drain(f, NULL), 3);
	/* One kick per commit: one, or more when the time bound split it. */
	assert_in_range(kicks, 1, 3);
	s = text(f, "SELECT group_concat(state, ' ') FROM (SELECT state FROM spool ORDER BY id)");
	assert_string_equal(s, "done failed done");
	free(s);
	assert_int_equal(scalar(f, "SELECT count(*) FROM out_msg"), 2);
	assert_int_equal(scalar(f, "SELECT count(*) FROM archive"), 2);
	assert_int_equal(scalar(f, "SELECT post_count FROM lists WHERE id = 1"), 2);
}

static void
test_verp_every_second_post(void **state)
{
	struct fx *f = *state;
	char *s;

	exec(f, "INSERT INTO list_settings VALUES (1, 'verp', 'every'), (1, 'verp_every', '2')");
	spool(f, "ann@example.com", "ann@example.com", "", "post");
	spool(f, "ann@example.com", "ann@example.com", "", "post");
	spool(f, "ann@example.com", "ann@example.com", "", "post");
	assert_int_equal(drain(f, NULL), 3);
	s = text(f, "SELECT group_concat(verp, '') FROM (SELECT verp FROM out_msg ORDER BY id)");
	assert_string_equal(s, "010");
	free(s);
	assert_int_equal(scalar(f, "SELECT post_count FROM lists WHERE id = 1"), 3);
}

static void
test_archive_off_keeps_nothing(void **state)
{
	struct fx *f = *state;

	exec(f, "INSERT INTO list_settings VALUES (1, 'archive', 'no')");
	spool(f, "ann@example.com", "ann@example.com", "", "post");
	assert_int_equal(drain(f, NULL), 1);
	assert_int_equal(scalar(f, "SELECT count(*) FROM out_msg"), 1);
	assert_int_equal(scalar(f, "SELECT count(*) FROM archive"), 0);
}

static void
test_runner_thread_handles_entries_left_new_at_start(void **state)
{
	struct fx *f = *state;
	struct engine_runner *r;
	char err[256];
	int i;

	spool(f, "ann@example.com", "ann@example.com", "", "post");
	conf_set(&f->conf, "database", f->path, err, sizeof(err));
	conf_set(&f->conf, "dns_servers", "127.0.0.1:9", err, sizeof(err));
	r = engine_runner_start(&f->conf, NULL, NULL, err, sizeof(err));
	if (r == NULL)
		fail_msg("runner did not start: %s", err);
	for (i = 0; i < 200 && scalar(f, "SELECT count(*) FROM spool WHERE state = 'new'") != 0;
	     i++)
		usleep(25000);
	assert_int_equal(scalar(f, "SELECT count(*) FROM spool WHERE state = 'new'"), 0);
	/* And one committed later, after a wake-up. */
	spool(f, "bob@example.net", "bob@example.net", "", "post");
	engine_runner_wake(r);
	for (i = 0; i < 200 && scalar(f, "SELECT count(*) FROM spool WHERE state = 'new'") != 0;
	     i++)
		usleep(25000);
	engine_runner_stop(r);
	assert_int_equal(scalar(f, "SELECT count(*) FROM spool WHERE state = 'done'"), 2);
	assert_int_equal(scalar(f, "SELECT count(*) FROM out_msg"), 2);
}

/* ---- the outcome log comes after the commit ---- */

struct log_capture {
	char path[160];
	int saved_stderr;
	int commits;
	int posted_at_commit; /* "posted: queued as" in the log when COMMIT ran */
	int refuse;           /* make the commit fail */
};

static int
log_has_posted(const char *path)
{
	char buf[65536];
	FILE *fp = fopen(path, "r");
	size_t n;

	if (fp == NULL)
		return 0;
	n = fread(buf, 1, sizeof(buf) - 1, fp);
	fclose(fp);
	buf[n] = '\0';
	return strstr(buf, "posted: queued as") != NULL;
}

static int
on_commit(void *arg)
{
	struct log_capture *c = arg;

	c->commits++;
	if (log_has_posted(c->path))
		c->posted_at_commit = 1;
	return c->refuse; /* non-zero turns the COMMIT into a ROLLBACK */
}

/* Sends stderr (the log) to a file and hooks the engine's connection's
 * commits. */
static void
capture_start(struct fx *f, struct log_capture *c)
{
	int fd;

	snprintf(c->path, sizeof(c->path), "%s/log", f->dir);
	fflush(stderr);
	c->saved_stderr = dup(2);
	fd = open(c->path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	dup2(fd, 2);
	close(fd);
	log_init("test_engine", "info");
	sqlite3_commit_hook(f->db->sql, on_commit, c);
}

static void
capture_stop(struct fx *f, struct log_capture *c)
{
	sqlite3_commit_hook(f->db->sql, NULL, NULL);
	fflush(stderr);
	dup2(c->saved_stderr, 2);
	close(c->saved_stderr);
	log_init("test_engine", "warning");
}

static void
test_posted_is_logged_only_after_the_commit(void **state)
{
	struct fx *f = *state;
	struct log_capture c = {0};
	int handled = -1;

	spool(f, "ann@example.com", "Ann <ann@example.com>", "", "post");
	capture_start(f, &c);
	assert_int_equal(engine_runner_drain(f->db, &f->conf, NULL, kick, NULL, &handled), 0);
	capture_stop(f, &c);
	assert_int_equal(handled, 1);
	assert_true(c.commits >= 1);
	if (c.posted_at_commit)
		fail_msg(
		    "expected 'posted: queued as' logged after the commit, it was there before");
	if (!log_has_posted(c.path))
		fail_msg("expected 'posted: queued as' in the log after the drain");
	assert_int_equal(scalar(f, "SELECT count(*) FROM out_msg WHERE kind = 'post'"), 1);
}

static void
test_failed_commit_logs_no_queued_message(void **state)
{
	struct fx *f = *state;
	struct log_capture c = {.refuse = 1};
	int handled = -1;

	spool(f, "ann@example.com", "Ann <ann@example.com>", "", "post");
	capture_start(f, &c);
	assert_int_equal(engine_runner_drain(f->db, &f->conf, NULL, kick, NULL, &handled), -1);
	capture_stop(f, &c);
	if (log_has_posted(c.path))
		fail_msg("expected no 'posted: queued as' for a commit that failed");
	assert_int_equal(scalar(f, "SELECT count(*) FROM out_msg"), 0);
	assert_int_equal(scalar(f, "SELECT count(*) FROM spool WHERE state = 'new'"), 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(
	        test_member_post_becomes_one_message_for_enabled_regular_members, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_self_copy_member_gets_own_post, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_posted_is_logged_only_after_the_commit, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_failed_commit_logs_no_queued_message, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_poster_known_by_envelope_when_from_is_not_a_member,
	                                    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_non_member_rejected_with_notice, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_non_member_reject_never_answers_automatic_mail,
	                                    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_non_member_discarded_silently, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_announce_list_lets_owner_post, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_moderated_list_holds_a_members_post, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_open_list_takes_a_non_members_post, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_announce_list_rejects_a_members_post_with_notice,
	                                    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_loop_dropped_and_logged_in_outcome, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(
	        test_dmarc_domains_of_waiting_posts_are_prefetched_together, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_dmarc_reject_rewrites_from_and_is_kept_for_release,
	                                    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_dmarc_lookup_failure_applies_fallback, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(
	        test_failed_handler_marks_entry_failed_and_keeps_nothing, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_failed_entry_in_a_batch_leaves_the_others_done,
	                                    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_verp_every_second_post, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_archive_off_keeps_nothing, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_runner_thread_handles_entries_left_new_at_start,
	                                    setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
