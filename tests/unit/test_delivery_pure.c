/*
 * test_delivery_pure.c - the pure parts of delivery: MX ordering, SMTP
 * reply and EHLO parsing, the DATA body, enhanced status codes, DSN
 * composition, retry backoff.
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

#include "mail/dsn.h"
#include "server/deliver.h"
#include "server/dns.h"
#include "server/smtp_out.h"

static void
test_mx_sorted_by_preference_with_equal_ones_shuffled(void **state)
{
	char *names[] = {"c", "a1", "b", "a2", "a3"};
	int prefs[] = {30, 10, 20, 10, 10};
	int first_a[3] = {0, 0, 0};

	for (unsigned seed = 1; seed <= 300; seed++) {
		struct dns_host h[5];
		for (int i = 0; i < 5; i++) {
			h[i].name = names[i];
			h[i].pref = prefs[i];
			h[i].naddr = 0;
			h[i].addrs = NULL;
		}
		dns_sort_hosts(h, 5, seed * 2654435761u);
		for (int i = 0; i < 3; i++)
			assert_int_equal(10, h[i].pref);
		assert_string_equal("b", h[3].name);
		assert_string_equal("c", h[4].name);
		first_a[h[0].name[1] - '1']++;
	}
	/* Every equal-preference host comes first some of the time. */
	for (int i = 0; i < 3; i++)
		assert_true(first_a[i] > 30);
}

static void
test_reply_lines_are_parsed(void **state)
{
	int code, last;

	assert_int_equal(0, smtp_out_parse_line("250-PIPELINING", 14, &code, &last));
	assert_int_equal(250, code);
	assert_false(last);
	assert_int_equal(0, smtp_out_parse_line("550 5.1.1 no", 12, &code, &last));
	assert_int_equal(550, code);
	assert_true(last);
	assert_int_equal(0, smtp_out_parse_line("354", 3, &code, &last));
	assert_true(last);
	assert_int_equal(-1, smtp_out_parse_line("25", 2, &code, &last));
	assert_int_equal(-1, smtp_out_parse_line("650 x", 5, &code, &last));
	assert_int_equal(-1, smtp_out_parse_line("250x", 4, &code, &last));
	assert_int_equal(-1, smtp_out_parse_line("hello", 5, &code, &last));
}

static void
test_ehlo_keywords(void **state)
{
	long long size = 0;

	assert_int_equal(SMTP_EXT_PIPELINING, smtp_out_parse_ehlo("pipelining", &size));
	assert_int_equal(SMTP_EXT_SIZE, smtp_out_parse_ehlo("SIZE 10240000", &size));
	assert_int_equal(10240000, size);
	assert_int_equal(SMTP_EXT_SMTPUTF8, smtp_out_parse_ehlo("SMTPUTF8", &size));
	assert_int_equal(SMTP_EXT_STARTTLS, smtp_out_parse_ehlo("STARTTLS", &size));
	assert_int_equal(SMTP_EXT_AUTH_PLAIN, smtp_out_parse_ehlo("AUTH LOGIN PLAIN", &size));
	assert_int_equal(SMTP_EXT_AUTH_PLAIN, smtp_out_parse_ehlo("AUTH=PLAIN", &size));
	assert_int_equal(0, smtp_out_parse_ehlo("AUTH LOGIN CRAM-MD5", &size));
	assert_int_equal(0, smtp_out_parse_ehlo("PIPELININGX", &size));
}

static void
check_body(const char *in, const char *want)
{
	size_t len;
	char *out = smtp_out_prepare_body((const unsigned char *)in, strlen(in), &len);

	assert_non_null(out);
	assert_int_equal(strlen(want), len);
	assert_memory_equal(want, out, len);
	free(out);
}

static void
test_body_is_dot_stuffed_with_crlf_only(void **state)
{
	check_body("a\r\nb\r\n", "a\r\nb\r\n.\r\n");
	check_body(".x\r\n..y\r\nz.\r\n", "..x\r\n...y\r\nz.\r\n.\r\n");
	check_body("bare\nlf\rcr\r\n", "bare\r\nlf\r\ncr\r\n.\r\n");
	check_body("no end", "no end\r\n.\r\n");
	check_body(".", "..\r\n.\r\n");
	check_body("", ".\r\n");
	check_body("a\r\n.\r\nb\r\n", "a\r\n..\r\nb\r\n.\r\n");
}

static void
test_enhanced_status_codes(void **state)
{
	char st[16];

	assert_int_equal(0, dsn_status_of("550 5.1.1 <x>: no such user", st));
	assert_string_equal("5.1.1", st);
	assert_int_equal(0, dsn_status_of("556 5.1.10 null MX", st));
	assert_string_equal("5.1.10", st);
	assert_int_equal(0, dsn_status_of("421 4.7.28 rate limited", st));
	assert_string_equal("4.7.28", st);
	assert_int_equal(0, dsn_status_of("451 try later", st));
	assert_string_equal("4.0.0", st);
	assert_int_equal(0, dsn_status_of("550 4.1.1 mismatched class", st));
	assert_string_equal("5.0.0", st);
	assert_int_equal(0, dsn_status_of("250 2.0.0", st));
	assert_string_equal("2.0.0", st);
	assert_int_equal(-1, dsn_status_of("lost connection", st));
}

static void
test_dsn_has_three_parts_and_a_block_per_recipient(void **state)
{
	struct dsn_rcpt r[2] = {
	    {"bad@example.net", "failed", "5.1.1", "mx.example.net", "550 5.1.1 no such user", 0},
	    {"jörg@example.net", "failed", "5.6.7", NULL, NULL, 0},
	};
	struct dsn_info info = {"mx.lists.test", "list-bounces@lists.test",
	                        "ABC",           "<abc.dsn@mx.lists.test>",
	                        1700000000,      1700000100};
	const char *orig = "Subject: hi\r\nMessage-ID: <m@x>\r\n\r\nbody line\r\n";
	size_t len;
	char *m = dsn_build(&info, r, 2, orig, strlen(orig), &len);

	assert_non_null(m);
	assert_int_equal(strlen(m), len);
	assert_string_contains(m, "Content-Type: multipart/report; report-type=delivery-status;");
	assert_string_contains(m, "\r\nTo: list-bounces@lists.test\r\n");
	assert_string_contains(m, "Content-Type: message/delivery-status\r\n\r\n"
	                          "Reporting-MTA: dns; mx.lists.test\r\n");
	assert_string_contains(m, "Arrival-Date: Tue, 14 Nov 2023 22:13:20 +0000\r\n");
	assert_string_contains(m, "\r\n\r\nFinal-Recipient: rfc822; bad@example.net\r\n"
	                          "Action: failed\r\nStatus: 5.1.1\r\n"
	                          "Remote-MTA: dns; mx.example.net\r\n"
	                          "Diagnostic-Code: smtp; 550 5.1.1 no such user\r\n");
	assert_string_contains(m, "Final-Recipient: utf-8; jörg@example.net\r\n");
	assert_string_contains(m, "Content-Type: text/rfc822-headers\r\n"
	                          "Content-Transfer-Encoding: 8bit\r\n\r\n"
	                          "Subject: hi\r\nMessage-ID: <m@x>\r\n\r\n");
	assert_string_not_contains(m, "body line");
	/* No bare LF anywhere. */
	for (size_t i = 0; i < len; i++)
		if (m[i] == '\n')
			assert_int_equal('\r', m[i - 1]);
	free(m);
}

static void
test_backoff_doubles_up_to_the_maximum(void **state)
{
	assert_int_equal(300, deliver_backoff(1, 300, 14400));
	assert_int_equal(600, deliver_backoff(2, 300, 14400));
	assert_int_equal(1200, deliver_backoff(3, 300, 14400));
	assert_int_equal(14400, deliver_backoff(10, 300, 14400));
	assert_int_equal(14400, deliver_backoff(1000, 300, 14400));
	assert_int_equal(1, deliver_backoff(1, 0, 2));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_mx_sorted_by_preference_with_equal_ones_shuffled),
	    cmocka_unit_test(test_reply_lines_are_parsed),
	    cmocka_unit_test(test_ehlo_keywords),
	    cmocka_unit_test(test_body_is_dot_stuffed_with_crlf_only),
	    cmocka_unit_test(test_enhanced_status_codes),
	    cmocka_unit_test(test_dsn_has_three_parts_and_a_block_per_recipient),
	    cmocka_unit_test(test_backoff_doubles_up_to_the_maximum),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
