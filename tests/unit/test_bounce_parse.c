/*
 * test_bounce_parse.c - the bounce parser on messages made here: fanmail's
 * own DSNs (mail/dsn.c), auto-replies, ARF, and inputs built to be slow.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lists/bounce.h"
#include "mail/dsn.h"

static const char orig[] = "From: ann@a.test\r\nTo: dev@lists.test\r\nSubject: hi\r\n"
                           "Message-ID: <x@a.test>\r\n\r\nbody\r\n";

static void
own_dsn(const char *status, const char *diag, const char *action, struct bounce_report *r)
{
	struct dsn_info info = {"mx.lists.test",    "dev-bounces@lists.test",
	                        "ABCDEF0123456789", "<d@mx.lists.test>",
	                        1800000000,         1800000100};
	struct dsn_rcpt rc[2] = {
	    {"bob@a.test", action, status, "mx.a.test", diag, 1800000100},
	    {"cy@b.test", action, "5.2.2", "mx.b.test", "552 5.2.2 mailbox full", 1800000100},
	};
	size_t len;
	char *msg = dsn_build(&info, rc, 2, orig, sizeof(orig) - 1, &len);

	assert_non_null(msg);
	assert_int_equal(bounce_parse(msg, len, r), 0);
	free(msg);
}

static void
test_own_dsn_for_550_511_is_hard_for_that_recipient(void **state)
{
	struct bounce_report r;

	own_dsn("5.1.1", "550 5.1.1 <bob@a.test>: user unknown", "failed", &r);
	assert_int_equal(r.kind, BOUNCE_KIND_DSN);
	assert_int_equal(r.n, 2);
	assert_string_equal(r.rcpts[0].addr, "bob@a.test");
	assert_string_equal(r.rcpts[0].status, "5.1.1");
	assert_int_equal(r.rcpts[0].cls, BOUNCE_HARD);
	assert_true(bounce_rcpt_is_failure(&r.rcpts[0]));
	assert_string_equal(r.rcpts[1].addr, "cy@b.test");
	assert_int_equal(r.rcpts[1].cls, BOUNCE_SOFT);
	assert_string_equal(r.rcpts[1].reason, "mailbox full");
	bounce_report_free(&r);
}

static void
test_own_dsn_for_571_spam_is_policy(void **state)
{
	struct bounce_report r;

	own_dsn("5.7.1", "550 5.7.1 Message rejected as spam", "failed", &r);
	assert_int_equal(r.rcpts[0].cls, BOUNCE_POLICY);
	assert_string_equal(r.rcpts[0].status, "5.7.1");
	bounce_report_free(&r);
}

static void
test_own_delay_report_is_no_failure(void **state)
{
	struct bounce_report r;

	own_dsn("4.4.1", "421 4.4.1 connection timed out", "delayed", &r);
	assert_string_equal(r.rcpts[0].action, "delayed");
	assert_false(bounce_rcpt_is_failure(&r.rcpts[0]));
	bounce_report_free(&r);
}

static void
test_vacation_reply_is_autoreply_without_failures(void **state)
{
	static const char m[] = "From: bob@a.test\r\nTo: dev@lists.test\r\n"
	                        "Subject: Out of Office: hi\r\nAuto-Submitted: auto-replied\r\n\r\n"
	                        "I am away until Monday. Mail to carol@a.test if urgent.\r\n";
	struct bounce_report r;

	assert_int_equal(bounce_parse(m, sizeof(m) - 1, &r), 0);
	assert_int_equal(r.kind, BOUNCE_KIND_AUTOREPLY);
	assert_int_equal(r.n, 0);
	bounce_report_free(&r);
}

static void
test_arf_report_names_complainer_as_complaint(void **state)
{
	static const char m[] =
	    "From: fbl@isp.test\r\nTo: dev-bounces@lists.test\r\nSubject: complaint\r\n"
	    "MIME-Version: 1.0\r\n"
	    "Content-Type: multipart/report; report-type=feedback-report; boundary=\"z\"\r\n\r\n"
	    "--z\r\nContent-Type: text/plain\r\n\r\nA complaint.\r\n"
	    "--z\r\nContent-Type: message/feedback-report\r\n\r\n"
	    "Feedback-Type: abuse\r\nUser-Agent: x/1\r\nVersion: 1\r\n"
	    "Original-Rcpt-To: <bob@a.test>\r\n"
	    "--z\r\nContent-Type: message/rfc822\r\n\r\nFrom: dev@lists.test\r\nTo: bob@a.test\r\n"
	    "Subject: post\r\n\r\nhello\r\n--z--\r\n";
	struct bounce_report r;

	assert_int_equal(bounce_parse(m, sizeof(m) - 1, &r), 0);
	assert_int_equal(r.kind, BOUNCE_KIND_ARF);
	assert_int_equal(r.n, 1);
	assert_string_equal(r.rcpts[0].addr, "bob@a.test");
	assert_int_equal(r.rcpts[0].cls, BOUNCE_COMPLAINT);
	assert_false(bounce_rcpt_is_failure(&r.rcpts[0]));
	bounce_report_free(&r);
}

static void
test_text_with_thousands_of_addresses_stays_fast_and_bounded(void **state)
{
	size_t cap = 1200000, o = 0;
	char *m = malloc(cap);
	struct bounce_report r;
	clock_t t0;
	double secs;

	assert_non_null(m);
	o += (size_t)snprintf(m, cap,
	                      "From: MAILER-DAEMON@x.test\r\nSubject: Undelivered Mail"
	                      "\r\nTo: dev-bounces@lists.test\r\n\r\nfailed:");
	for (int i = 0; i < 40000 && o + 64 < cap; i++)
		o += (size_t)snprintf(m + o, cap - o, " u%d@d%d.test", i, i);
	t0 = clock();
	assert_int_equal(bounce_parse(m, o, &r), 0);
	secs = (double)(clock() - t0) / CLOCKS_PER_SEC;
	printf("40000 addresses on one line: %zu results in %.3f s\n", r.n, secs);
	assert_true(r.n <= 64);
	assert_true(secs < 5.0);
	bounce_report_free(&r);
	free(m);
}

static void
test_mbox_splits_at_from_lines(void **state)
{
	static const char mb[] = "From a@b Thu Jan  1 00:00:00 2026\nSubject: one\n\nx\n"
	                         "From c@d Thu Jan  1 00:00:01 2026\nSubject: two\n\ny\n";
	size_t off = 0, len, n = 0;
	const char *msg;

	while (bounce_mbox_next(mb, sizeof(mb) - 1, &off, &msg, &len)) {
		n++;
		assert_memory_equal(msg, "Subject: ", 9);
	}
	assert_int_equal(n, 2);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_own_dsn_for_550_511_is_hard_for_that_recipient),
	    cmocka_unit_test(test_own_dsn_for_571_spam_is_policy),
	    cmocka_unit_test(test_own_delay_report_is_no_failure),
	    cmocka_unit_test(test_vacation_reply_is_autoreply_without_failures),
	    cmocka_unit_test(test_arf_report_names_complainer_as_complaint),
	    cmocka_unit_test(test_text_with_thousands_of_addresses_stays_fast_and_bounded),
	    cmocka_unit_test(test_mbox_splits_at_from_lines),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
