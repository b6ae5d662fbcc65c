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

/* DSN address fields as real MTAs write them (RFC 3464 rfc822 with xtext,
 * RFC 6533 utf-8 as Postfix and fanmail write for SMTPUTF8 recipients):
 * each recipient block read on its own, with the address it names. */
struct dsn_row {
	const char *name;
	const char *ctype;  /* of the delivery-status part */
	const char *blocks; /* the per-recipient blocks, CRLF, blank-line separated */
	size_t n;           /* results expected */
	struct {
		const char *addr, *orig, *status;
		enum bounce_class cls;
	} want[3];
};

static const struct dsn_row dsn_rows[] = {
    {"utf-8 unitext address read whole (was \"rgen@c.test\")",
     "message/global-delivery-status",
     "Final-Recipient: utf-8; j\xc3\xbcrgen@c.test\r\nAction: failed\r\nStatus: 5.1.1\r\n",
     1,
     {{"j\xc3\xbcrgen@c.test", "", "5.1.1", BOUNCE_HARD}}},
    {"utf-8 block after an ASCII one keeps both apart (zoe was dropped)",
     "message/global-delivery-status",
     "Final-Recipient: rfc822; bob@a.test\r\nAction: failed\r\nStatus: 5.2.2\r\n\r\n"
     "Final-Recipient: utf-8; zo\xc3\xab@a.test\r\nAction: failed\r\nStatus: 5.1.1\r\n",
     2,
     {{"bob@a.test", "", "5.2.2", BOUNCE_SOFT}, {"zo\xc3\xab@a.test", "", "5.1.1", BOUNCE_HARD}}},
    {"utf-8 xtext escapes decoded",
     "message/global-delivery-status",
     "Final-Recipient: utf-8; j\\x{FC}rgen@c.test\r\nAction: failed\r\nStatus: 5.1.1\r\n",
     1,
     {{"j\xc3\xbcrgen@c.test", "", "5.1.1", BOUNCE_HARD}}},
    {"utf-8 Original-Recipient beside an ASCII Final-Recipient",
     "message/delivery-status",
     "Original-Recipient: utf-8; zo\xc3\xab@a.test\r\nFinal-Recipient: rfc822; zoe@a.test\r\n"
     "Action: failed\r\nStatus: 5.1.1\r\n",
     1,
     {{"zoe@a.test", "zo\xc3\xab@a.test", "5.1.1", BOUNCE_HARD}}},
    {"rfc822 xtext +2B decoded",
     "message/delivery-status",
     "Final-Recipient: rfc822; bob+2Blists@a.test\r\nAction: failed\r\nStatus: 5.1.1\r\n",
     1,
     {{"bob+lists@a.test", "", "5.1.1", BOUNCE_HARD}}},
    {"rfc822 +41 that xtext would not encode stays as written",
     "message/delivery-status",
     "Final-Recipient: rfc822; bob+41@a.test\r\nAction: failed\r\nStatus: 5.1.1\r\n",
     1,
     {{"bob+41@a.test", "", "5.1.1", BOUNCE_HARD}}},
    {"unreadable recipient's Action/Status do not overwrite the one before",
     "message/delivery-status",
     "Final-Recipient: rfc822; bob@a.test\r\nAction: failed\r\nStatus: 5.2.2\r\n\r\n"
     "Final-Recipient: x400; /G=x/S=y/\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n"
     "Final-Recipient: rfc822; cy@a.test\r\nAction: delayed\r\nStatus: 4.4.1\r\n",
     2,
     {{"bob@a.test", "", "5.2.2", BOUNCE_SOFT}, {"cy@a.test", "", "4.4.1", BOUNCE_SOFT}}},
    {"broken \\x{} escape: the block is dropped, not given to bob",
     "message/global-delivery-status",
     "Final-Recipient: rfc822; bob@a.test\r\nAction: failed\r\nStatus: 5.2.2\r\n\r\n"
     "Final-Recipient: utf-8; j\\x{D800}rgen@c.test\r\nAction: failed\r\nStatus: 5.1.1\r\n",
     1,
     {{"bob@a.test", "", "5.2.2", BOUNCE_SOFT}}},
};

static void
test_dsn_address_fields_name_the_right_recipient(void **state)
{
	for (size_t i = 0; i < sizeof(dsn_rows) / sizeof(dsn_rows[0]); i++) {
		const struct dsn_row *row = &dsn_rows[i];
		char m[4096];
		struct bounce_report r;
		int n =
		    snprintf(m, sizeof(m),
		             "From: MAILER-DAEMON@mx.a.test\r\nTo: dev-bounces@lists.test\r\n"
		             "Subject: Undelivered Mail Returned to Sender\r\nMIME-Version: 1.0\r\n"
		             "Content-Type: multipart/report; report-type=delivery-status;"
		             " boundary=\"b\"\r\n\r\n"
		             "--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
		             "Your message could not be delivered.\r\n\r\n"
		             "--b\r\nContent-Type: %s\r\n\r\n"
		             "Reporting-MTA: dns; mx.a.test\r\n\r\n%s\r\n"
		             "--b\r\nContent-Type: text/rfc822-headers\r\n\r\n"
		             "From: ann@a.test\r\nSubject: hi\r\n\r\n--b--\r\n",
		             row->ctype, row->blocks);

		assert_true(n > 0 && (size_t)n < sizeof(m));
		assert_int_equal(bounce_parse(m, (size_t)n, &r), 0);
		if (r.n != row->n) {
			fail_msg("%s: expected %zu results, got %zu (first \"%s\")", row->name,
			         row->n, r.n, r.n ? r.rcpts[0].addr : "");
		}
		for (size_t k = 0; k < row->n; k++) {
			const struct bounce_rcpt *b = &r.rcpts[k];
			if (strcmp(b->addr, row->want[k].addr) != 0 ||
			    strcmp(b->orig, row->want[k].orig) != 0 ||
			    strcmp(b->status, row->want[k].status) != 0 ||
			    b->cls != row->want[k].cls)
				fail_msg("%s: result %zu: expected <%s> orig <%s> %s %s, got <%s> "
				         "orig <%s> "
				         "%s %s",
				         row->name, k, row->want[k].addr, row->want[k].orig,
				         row->want[k].status, bounce_class_name(row->want[k].cls),
				         b->addr, b->orig, b->status, bounce_class_name(b->cls));
		}
		bounce_report_free(&r);
	}
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
	    cmocka_unit_test(test_dsn_address_fields_name_the_right_recipient),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
