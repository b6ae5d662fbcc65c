/*
 * test_bounce_score.c - bounce scores, disabling, notices, probes and the
 * bounce handler, against a real store.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "fm_assert.h"

#include <ctype.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf/conf.h"
#include "db/bounces.h"
#include "db/db.h"
#include "db/lists.h"
#include "db/members.h"
#include "lists/store.h"
#include "lists/bounce.h"
#include "lists/score.h"
#include "lists/verp.h"
#include "mail/addr.h"

#define DAY 86400
#define T0 1800000000LL

struct fx {
	char dir[64];
	char path[128];
	struct db *db;
	sqlite3 *sql;
	struct conf conf;
	struct db_list list;
	struct score_list l;
};

static long long
scalar(struct fx *f, const char *fmt, ...)
{
	char buf[2048];
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

static double
score_of(struct fx *f, const char *key)
{
	sqlite3_stmt *st;
	double v = -1;

	assert_int_equal(sqlite3_prepare_v2(f->sql,
	                                    "SELECT bounce_score FROM members WHERE addr_key = ?",
	                                    -1, &st, NULL),
	                 SQLITE_OK);
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_double(st, 0);
	sqlite3_finalize(st);
	return v;
}

static void
parse_addr(const char *s, struct addr *a)
{
	const char *why;
	assert_int_equal(addr_parse(s, strlen(s), ADDR_UTF8, a, &why), 0);
}

static void
member(struct fx *f, const char *addr, struct db_member *m)
{
	struct addr a;
	parse_addr(addr, &a);
	assert_int_equal(store_member_find(f->db, f->list.id, &a, m), 0);
}

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	char err[256];
	struct addr a;
	const char *members[] = {"bob@example.net", "ann@example.com", "cy@example.org"};

	snprintf(f->dir, sizeof(f->dir), "/tmp/fm-bounce-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/fanmail.db", f->dir);
	assert_non_null(f->db = db_open(f->path, DB_OPEN_CREATE, err, sizeof(err)));
	assert_int_equal(sqlite3_open(f->path, &f->sql), SQLITE_OK);
	sqlite3_busy_timeout(f->sql, 5000);
	conf_init(&f->conf);
	conf_set(&f->conf, "hostname", "mx.lists.example.org", err, sizeof(err));
	parse_addr("dev@lists.example.org", &a);
	assert_int_equal(store_list_create(f->db, &a, &f->list), 0);
	parse_addr("owner@example.org", &a);
	assert_int_equal(store_role_add(f->db, f->list.id, "owner", &a), 0);
	for (size_t i = 0; i < 3; i++) {
		parse_addr(members[i], &a);
		assert_int_equal(store_member_add(f->db, f->list.id, &a, NULL, NULL), 0);
	}
	f->l.id = f->list.id;
	f->l.local = f->list.local;
	f->l.domain = f->list.domain;
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;
	char cmd[200];

	sqlite3_close(f->sql);
	db_close(f->db);
	conf_free(&f->conf);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

static struct bounce_rcpt
result(const char *addr, enum bounce_class cls, const char *status)
{
	struct bounce_rcpt b;

	memset(&b, 0, sizeof(b));
	snprintf(b.addr, sizeof(b.addr), "%s", addr);
	snprintf(b.action, sizeof(b.action), "%s",
	         cls == BOUNCE_COMPLAINT ? "complaint" : "failed");
	snprintf(b.status, sizeof(b.status), "%s", status);
	b.cls = cls;
	b.reason = bounce_class_name(cls);
	snprintf(b.diag, sizeof(b.diag), "550 %s test", status);
	return b;
}

static void
bounce_at(struct fx *f, const char *addr, enum bounce_class cls, const char *status, int64_t t)
{
	struct db_member m;
	struct bounce_rcpt b = result(addr, cls, status);
	char out[1024] = "";

	member(f, addr, &m);
	assert_int_equal(db_begin(f->db), 0);
	assert_int_equal(score_bounce(f->db, &f->conf, &f->l, &m, &b, 0, t, out, sizeof(out)), 0);
	assert_int_equal(db_commit(f->db), 0);
}

static void
test_hard_adds_one_soft_half_policy_nothing(void **state)
{
	struct fx *f = *state;

	bounce_at(f, "bob@example.net", BOUNCE_HARD, "5.1.1", T0);
	assert_true(score_of(f, "bob@example.net") == 1.0);
	bounce_at(f, "ann@example.com", BOUNCE_SOFT, "4.2.2", T0);
	assert_true(score_of(f, "ann@example.com") == 0.5);
	for (int i = 0; i < 10; i++)
		bounce_at(f, "cy@example.org", BOUNCE_POLICY, "5.7.1", T0 + i * DAY);
	assert_true(score_of(f, "cy@example.org") == 0.0);
	assert_int_equal(scalar(f, "SELECT count(*) FROM bounce_events WHERE class = 'policy'"
	                           " AND domain = 'example.org'"),
	                 10);
	assert_int_equal(scalar(f, "SELECT count(*) FROM members WHERE status = 'enabled'"), 3);
}

static void
test_score_rises_at_most_once_a_day(void **state)
{
	struct fx *f = *state;

	bounce_at(f, "bob@example.net", BOUNCE_HARD, "5.1.1", T0);
	bounce_at(f, "bob@example.net", BOUNCE_HARD, "5.1.1", T0 + 3600);
	bounce_at(f, "bob@example.net", BOUNCE_HARD, "5.1.1", T0 + DAY - 1);
	assert_true(score_of(f, "bob@example.net") == 1.0);
	bounce_at(f, "bob@example.net", BOUNCE_HARD, "5.1.1", T0 + DAY);
	assert_true(score_of(f, "bob@example.net") == 2.0);
	assert_int_equal(scalar(f, "SELECT count(*) FROM bounce_events"), 4);
}

static void
test_score_halves_after_each_quiet_period(void **state)
{
	struct fx *f = *state;

	assert_true(score_decay(4.0, T0, T0 + 6 * DAY, 7 * DAY) == 4.0);
	assert_true(score_decay(4.0, T0, T0 + 7 * DAY, 7 * DAY) == 2.0);
	assert_true(score_decay(4.0, T0, T0 + 15 * DAY, 7 * DAY) == 1.0);
	assert_true(score_decay(4.0, T0, T0 + 15 * DAY, 0) == 4.0);
	for (int i = 0; i < 4; i++)
		bounce_at(f, "bob@example.net", BOUNCE_HARD, "5.1.1", T0 + i * DAY);
	assert_true(score_of(f, "bob@example.net") == 4.0);
	/* Two quiet weeks after the last counted bounce: 4 -> 1, then +1. */
	bounce_at(f, "bob@example.net", BOUNCE_HARD, "5.1.1", T0 + 3 * DAY + 14 * DAY);
	assert_true(score_of(f, "bob@example.net") == 2.0);
}

static void
test_threshold_disables_and_queues_notices_for_member_and_owner(void **state)
{
	struct fx *f = *state;

	for (int i = 0; i < 4; i++)
		bounce_at(f, "bob@example.net", BOUNCE_HARD, "5.1.1", T0 + i * DAY);
	assert_int_equal(scalar(f, "SELECT count(*) FROM out_msg"), 0);
	bounce_at(f, "bob@example.net", BOUNCE_HARD, "5.1.1", T0 + 4 * DAY);
	assert_int_equal(scalar(f, "SELECT count(*) FROM members WHERE addr_key = "
	                           "'bob@example.net' AND status = 'disabled'"
	                           " AND disabled_reason LIKE 'bounce:%%'"),
	                 1);
	assert_int_equal(scalar(f, "SELECT count(*) FROM members"), 3);
	assert_int_equal(scalar(f, "SELECT count(*) FROM deliveries d JOIN out_msg m ON m.id ="
	                           " d.msg_id WHERE m.kind = 'notice' AND d.rcpt = "
	                           "'owner@example.org'"),
	                 1);
	assert_int_equal(scalar(f, "SELECT count(*) FROM deliveries d JOIN out_msg m ON m.id ="
	                           " d.msg_id WHERE m.kind = 'notice' AND d.rcpt = "
	                           "'bob@example.net' AND m.env_from = "
	                           "'dev-bounces@lists.example.org'"),
	                 1);
	/* Further bounces while disabled change nothing. */
	bounce_at(f, "bob@example.net", BOUNCE_HARD, "5.1.1", T0 + 5 * DAY);
	assert_true(score_of(f, "bob@example.net") == 5.0);
}

static void
test_reenable_resets_score(void **state)
{
	struct fx *f = *state;
	struct addr a;

	for (int i = 0; i < 5; i++)
		bounce_at(f, "bob@example.net", BOUNCE_HARD, "5.1.1", T0 + i * DAY);
	parse_addr("bob@example.net", &a);
	assert_int_equal(store_member_set(f->db, f->list.id, &a, "status", "enabled"), 0);
	assert_true(score_of(f, "bob@example.net") == 0.0);
	assert_int_equal(scalar(f, "SELECT count(*) FROM members WHERE status = 'enabled'"), 3);
}

static void
test_first_policy_bounce_of_a_domain_each_day_tells_owner(void **state)
{
	struct fx *f = *state;

	bounce_at(f, "cy@example.org", BOUNCE_POLICY, "5.7.1", T0);
	bounce_at(f, "cy@example.org", BOUNCE_POLICY, "5.7.1", T0 + 60);
	assert_int_equal(scalar(f, "SELECT count(*) FROM out_msg WHERE kind = 'notice'"), 1);
	bounce_at(f, "cy@example.org", BOUNCE_POLICY, "5.7.1", T0 + 2 * DAY);
	assert_int_equal(scalar(f, "SELECT count(*) FROM out_msg WHERE kind = 'notice'"), 2);
}

static void
test_probe_after_wait_then_probe_bounce_removes(void **state)
{
	struct fx *f = *state;
	int acted = -1;

	for (int i = 0; i < 5; i++)
		bounce_at(f, "bob@example.net", BOUNCE_HARD, "5.1.1", T0 + i * DAY);
	assert_int_equal(db_begin(f->db), 0);
	assert_int_equal(score_sweep(f->db, &f->conf, f->list.id, T0 + 5 * DAY, &acted), 0);
	assert_int_equal(acted, 0);
	assert_int_equal(score_sweep(f->db, &f->conf, f->list.id, T0 + 12 * DAY, &acted), 0);
	assert_int_equal(db_commit(f->db), 0);
	assert_int_equal(acted, 1);
	assert_int_equal(
	    scalar(f, "SELECT count(*) FROM out_msg m JOIN deliveries d ON d.msg_id = m.id"
	              " WHERE m.kind = 'probe' AND m.verp = 1 AND d.rcpt = 'bob@example.net'"
	              " AND m.env_from = 'dev-bounces@lists.example.org'"),
	    1);
	bounce_at(f, "bob@example.net", BOUNCE_HARD, "5.1.1", T0 + 12 * DAY + 60);
	assert_int_equal(scalar(f, "SELECT count(*) FROM members WHERE addr_key = "
	                           "'bob@example.net'"),
	                 0);
}

static void
test_disabled_action_remove_removes_after_wait(void **state)
{
	struct fx *f = *state;
	int acted = -1;

	assert_int_equal(store_setting_set(f->db, f->list.id, "bounce_disabled_action", "remove"),
	                 0);
	for (int i = 0; i < 5; i++)
		bounce_at(f, "bob@example.net", BOUNCE_HARD, "5.1.1", T0 + i * DAY);
	assert_int_equal(db_begin(f->db), 0);
	assert_int_equal(score_sweep(f->db, &f->conf, 0, T0 + 12 * DAY, &acted), 0);
	assert_int_equal(db_commit(f->db), 0);
	assert_int_equal(acted, 1);
	assert_int_equal(scalar(f, "SELECT count(*) FROM members"), 2);
}

static void
test_complaint_follows_complaint_action(void **state)
{
	struct fx *f = *state;

	bounce_at(f, "ann@example.com", BOUNCE_COMPLAINT, "", T0);
	assert_int_equal(scalar(f, "SELECT count(*) FROM members WHERE status = 'enabled'"), 3);
	assert_int_equal(store_setting_set(f->db, f->list.id, "complaint_action", "unsubscribe"),
	                 0);
	bounce_at(f, "ann@example.com", BOUNCE_COMPLAINT, "", T0 + 10);
	assert_int_equal(scalar(f, "SELECT count(*) FROM members"), 2);
	assert_int_equal(scalar(f, "SELECT count(*) FROM bounce_events WHERE class = 'complaint'"),
	                 2);
}

static const char dsn[] =
    "From: MAILER-DAEMON@mx.lists.example.org\r\n"
    "To: dev-bounces@lists.example.org\r\n"
    "Subject: Undelivered Mail Returned to Sender\r\n"
    "MIME-Version: 1.0\r\n"
    "Content-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\r\n"
    "\r\n"
    "--b\r\n"
    "Content-Type: text/plain\r\n"
    "\r\n"
    "Delivery to bob@example.net failed permanently.\r\n"
    "--b\r\n"
    "Content-Type: message/delivery-status\r\n"
    "\r\n"
    "Reporting-MTA: dns; mx.lists.example.org\r\n"
    "\r\n"
    "Final-Recipient: rfc822; bob@example.net\r\n"
    "Action: failed\r\n"
    "Status: %s\r\n"
    "Diagnostic-Code: smtp; 550 %s %s\r\n"
    "--b\r\n"
    "Content-Type: text/rfc822-headers\r\n"
    "\r\n"
    "%s"
    "From: ann@example.com\r\n"
    "To: dev@lists.example.org\r\n"
    "--b--\r\n";

/* The list's tag as a post would carry it, made with the store's key
 * (id and time as given), for the returned header of the DSN above. */
static void
tag_line_verp(struct fx *f, const char *local, const char *id, long long when, int verp, char *buf,
              size_t len)
{
	struct verp_key k;
	char tag[160];

	assert_int_equal(verp_key_load(f->db, &k), 0);
	assert_true(verp_tag_make(&k, local, f->list.domain, id, when, verp, tag, sizeof(tag)) > 0);
	snprintf(buf, len, "%s: %s\r\n", VERP_TAG_HEADER, tag);
}

static void
tag_line(struct fx *f, const char *local, const char *id, long long when, char *buf, size_t len)
{
	tag_line_verp(f, local, id, when, 0, buf, len);
}

/* Hands the DSN above to the bounce handler, sent to LIST-bounces (+ext
 * when ext is set), its returned header carrying tag (a whole header line,
 * or ""). */
static int
handle_tagged(struct fx *f, const char *ext, const char *tag, const char *status, const char *text,
              char *out, size_t outlen)
{
	char msg[4096];
	struct inbound in = {0};
	int rc;

	snprintf(msg, sizeof(msg), dsn, status, status, text, tag);
	in.spool_id = 0;
	in.qid = "TEST";
	in.mail_from = "";
	in.rcpt = "dev-bounces@lists.example.org";
	in.list_id = f->list.id;
	in.list_local = f->list.local;
	in.list_domain = f->list.domain;
	in.role = LISTADDR_BOUNCES;
	in.extension = ext;
	in.message = msg;
	in.len = strlen(msg);
	assert_int_equal(db_begin(f->db), 0);
	rc = bounce_handle(f->db, &f->conf, &in, out, outlen);
	assert_int_equal(db_commit(f->db), 0);
	return rc;
}

/* A DSN about a post the list really sent (its header carries the tag). */
static int
handle(struct fx *f, const char *ext, const char *status, const char *text, char *out,
       size_t outlen)
{
	char tag[256];

	tag_line(f, f->list.local, "SPOOLQID1", (long long)db_now() - 3600, tag, sizeof(tag));
	return handle_tagged(f, ext, tag, status, text, out, outlen);
}

static void
test_handler_scores_member_named_by_dsn(void **state)
{
	struct fx *f = *state;
	char out[1024];

	assert_int_equal(store_setting_set(f->db, f->list.id, "bounce_threshold", "1"), 0);
	assert_int_equal(handle(f, NULL, "5.1.1", "user unknown", out, sizeof(out)), 0);
	assert_string_contains(out, "bob@example.net");
	assert_int_equal(scalar(f, "SELECT count(*) FROM members WHERE addr_key = "
	                           "'bob@example.net' AND status = 'disabled'"),
	                 1);
	assert_int_equal(scalar(f, "SELECT count(*) FROM deliveries WHERE rcpt = "
	                           "'owner@example.org'"),
	                 1);
}

static void
test_handler_uses_verp_address_over_dsn(void **state)
{
	struct fx *f = *state;
	char out[1024];

	struct verp_key k;
	char addr[400], ext[400];

	/* The DSN names bob, the signed VERP address says ann: ann is scored
	 * (the address came back upper-cased, as some MTAs do). */
	assert_int_equal(verp_key_load(f->db, &k), 0);
	assert_true(verp_encode_signed(&k, f->list.local, f->list.domain, "Ann@Example.COM", addr,
	                               sizeof(addr)) > 0);
	snprintf(ext, sizeof(ext), "%.*s", (int)(strrchr(addr, '@') - strchr(addr, '+') - 1),
	         strchr(addr, '+') + 1);
	for (char *p = ext; *p; p++)
		*p = (char)toupper((unsigned char)*p);
	assert_int_equal(handle_tagged(f, ext, "", "5.1.1", "user unknown", out, sizeof(out)), 0);
	assert_true(score_of(f, "ann@example.com") == 1.0);
	assert_true(score_of(f, "bob@example.net") == 0.0);
}

static void
test_handler_policy_rejection_disables_nobody(void **state)
{
	struct fx *f = *state;
	char out[1024];

	assert_int_equal(store_setting_set(f->db, f->list.id, "bounce_threshold", "1"), 0);
	assert_int_equal(
	    handle(f, NULL, "5.7.1", "message refused as spam by policy", out, sizeof(out)), 0);
	assert_int_equal(scalar(f, "SELECT count(*) FROM members WHERE status = 'enabled'"), 3);
	assert_int_equal(scalar(f, "SELECT count(*) FROM bounce_events WHERE class = 'policy'"), 1);
}

/* Reports the list cannot tie to mail it sent are logged and ignored:
 * nobody is scored, nobody unsubscribed. */
static void
test_handler_ignores_unverified_reports(void **state)
{
	struct fx *f = *state;
	struct verp_key k;
	char out[1024], tag[256], addr[400], ext[400], bad[400];
	const struct {
		const char *name, *ext;
		int tag; /* 0 none, 1 another list's, 2 too old, 3 wrong key, 4 a VERP'd post's */
	} rows[] = {
	    {"bare LIST-bounces, no tag", NULL, 0},
	    {"bare LIST-bounces, another list's tag", NULL, 1},
	    {"bare LIST-bounces, a tag older than VERP_TAG_MAX_AGE", NULL, 2},
	    {"bare LIST-bounces, a tag made with another key", NULL, 3},
	    {"bare LIST-bounces, a VERP'd post's tag but no VERP address", NULL, 4},
	    {"VERP address without a signature", "bob=example.net", 0},
	    {"VERP address with a wrong signature", bad, 0},
	    {"VERP address signed for another member", ext, 0},
	};

	assert_int_equal(db_list_set(f->db, f->list.id, "bounce_threshold", "1"), 0);
	assert_int_equal(db_list_set(f->db, f->list.id, "complaint_action", "unsubscribe"), 0);
	assert_int_equal(verp_key_load(f->db, &k), 0);
	/* ann's signature on bob's address. */
	assert_true(verp_encode_signed(&k, f->list.local, f->list.domain, "ann@example.com", addr,
	                               sizeof(addr)) > 0);
	snprintf(ext, sizeof(ext), "bob=example.net%s", strrchr(addr, '+'));
	*strrchr(ext, '@') = '\0';
	snprintf(bad, sizeof(bad), "bob=example.net+aaaaaaaaaaaa");
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		tag[0] = '\0';
		if (rows[i].tag == 1)
			tag_line(f, "other", "SPOOLQID1", (long long)db_now(), tag, sizeof(tag));
		else if (rows[i].tag == 2)
			tag_line(f, f->list.local, "SPOOLQID1",
			         (long long)db_now() - VERP_TAG_MAX_AGE - 10, tag, sizeof(tag));
		else if (rows[i].tag == 4)
			tag_line_verp(f, f->list.local, "SPOOLQID1", (long long)db_now(), 1, tag,
			              sizeof(tag));
		else if (rows[i].tag == 3) {
			struct verp_key other = k;
			char t[160];
			other.k[0] ^= 1;
			assert_true(verp_tag_make(&other, f->list.local, f->list.domain,
			                          "SPOOLQID1", db_now(), 0, t, sizeof(t)) > 0);
			snprintf(tag, sizeof(tag), "%s: %s\r\n", VERP_TAG_HEADER, t);
		}
		out[0] = '\0';
		assert_int_equal(
		    handle_tagged(f, rows[i].ext, tag, "5.1.1", "user unknown", out, sizeof(out)),
		    0);
		if (strncmp(out, "ignored:", 8) != 0 ||
		    scalar(f, "SELECT count(*) FROM bounce_events") != 0 ||
		    scalar(f, "SELECT count(*) FROM members WHERE status = 'enabled'") != 3)
			fail_msg("%s: expected the report ignored and nobody scored, got \"%s\", "
			         "%lld event(s)",
			         rows[i].name, out,
			         scalar(f, "SELECT count(*) FROM bounce_events"));
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_hard_adds_one_soft_half_policy_nothing, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_score_rises_at_most_once_a_day, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_score_halves_after_each_quiet_period, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(
	        test_threshold_disables_and_queues_notices_for_member_and_owner, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_reenable_resets_score, setup, teardown),
	    cmocka_unit_test_setup_teardown(
	        test_first_policy_bounce_of_a_domain_each_day_tells_owner, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_probe_after_wait_then_probe_bounce_removes, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_disabled_action_remove_removes_after_wait, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_complaint_follows_complaint_action, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_handler_scores_member_named_by_dsn, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_handler_uses_verp_address_over_dsn, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_handler_policy_rejection_disables_nobody, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_handler_ignores_unverified_reports, setup,
	                                    teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
