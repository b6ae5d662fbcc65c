/*
 * test_smtpd_data.c - the DATA reader: only CRLF.CRLF ends a message, dots
 * are unstuffed, bare CR/LF refused, limits, Received counting; every input
 * is also fed one octet at a time.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/smtp_data.h"

struct out {
	char buf[8192];
	size_t len;
};

static void
emit(void *arg, const char *p, size_t n)
{
	struct out *o = arg;

	assert_true(o->len + n < sizeof(o->buf));
	memcpy(o->buf + o->len, p, n);
	o->len += n;
}

/* Feeds in (whole, or one octet at a time); returns the status, the octets
 * used and what was passed on. */
static enum smtp_data_status
run(const char *in, size_t len, int bytewise, size_t max, struct smtp_data *d, size_t *used,
    struct out *o)
{
	enum smtp_data_status st = SMTP_DATA_MORE;
	size_t u;

	smtp_data_init(d, max);
	memset(o, 0, sizeof(*o));
	*used = 0;
	if (!bytewise) {
		st = smtp_data_feed(d, in, len, used, emit, o);
		return st;
	}
	for (size_t i = 0; i < len && st == SMTP_DATA_MORE; i++) {
		st = smtp_data_feed(d, in + i, 1, &u, emit, o);
		*used += u;
	}
	return st;
}

struct tcase {
	const char *name;
	const char *in;
	enum smtp_data_status st;
	const char *out; /* expected message for SMTP_DATA_END */
	size_t used;     /* 0: whole input */
};

static const struct tcase cases[] = {
    {"plain", "Subject: x\r\n\r\nhello\r\n.\r\n", SMTP_DATA_END, "Subject: x\r\n\r\nhello\r\n", 0},
    {"empty message", ".\r\n", SMTP_DATA_END, "", 0},
    {"dot unstuffing", "a\r\n..b\r\n.c\r\n...\r\n.\r\n", SMTP_DATA_END, "a\r\n.b\r\nc\r\n..\r\n",
     0},
    {"stops at the end", "a\r\n.\r\nMAIL FROM:<x>\r\n", SMTP_DATA_END, "a\r\n", 6},
    {"dot inside a line", "a.\r\nb . c\r\n.\r\n", SMTP_DATA_END, "a.\r\nb . c\r\n", 0},
    /* the smuggling variants: none of them ends the message */
    {"LF.LF", "a\n.\nMAIL FROM:<x>\r\n", SMTP_DATA_BARE_LF, NULL, 2},
    {"LF.CRLF", "a\r\nb\n.\r\nMAIL", SMTP_DATA_BARE_LF, NULL, 5},
    {"CRLF.LF", "a\r\n.\nMAIL", SMTP_DATA_BARE_LF, NULL, 5},
    {"CR.CR", "a\r.\rMAIL", SMTP_DATA_BARE_CR, NULL, 3},
    {"CR.CRLF", "a\r.\r\nMAIL", SMTP_DATA_BARE_CR, NULL, 3},
    {"CRLF.CR", "a\r\n.\rMAIL", SMTP_DATA_BARE_CR, NULL, 6},
    {"CRLF.CRCRLF", "a\r\n.\r\r\n", SMTP_DATA_BARE_CR, NULL, 6},
    {"bare LF in text", "a\nb\r\n.\r\n", SMTP_DATA_BARE_LF, NULL, 2},
    {"bare CR in text", "a\rb\r\n.\r\n", SMTP_DATA_BARE_CR, NULL, 3},
    {"LF at start", "\n.\r\n", SMTP_DATA_BARE_LF, NULL, 1},
    {"CRCRLF", "a\r\r\n.\r\n", SMTP_DATA_BARE_CR, NULL, 3},
    {"dot LF", ".\n", SMTP_DATA_BARE_LF, NULL, 2},
    {"unfinished", "a\r\n.", SMTP_DATA_MORE, NULL, 0},
};

static void
check_case(const struct tcase *c, int bytewise)
{
	struct smtp_data d;
	struct out o;
	size_t used, len = strlen(c->in);
	enum smtp_data_status st = run(c->in, len, bytewise, 1 << 20, &d, &used, &o);
	size_t want_used = c->used ? c->used : len;

	if (st != c->st)
		fail_msg("%s (%s): expected status %d, got %d", c->name,
		         bytewise ? "bytewise" : "whole", c->st, st);
	if (used != want_used)
		fail_msg("%s (%s): expected %zu octets used, got %zu", c->name,
		         bytewise ? "bytewise" : "whole", want_used, used);
	if (c->out != NULL && (o.len != strlen(c->out) || memcmp(o.buf, c->out, o.len) != 0))
		fail_msg("%s (%s): expected message '%s', got '%.*s'", c->name,
		         bytewise ? "bytewise" : "whole", c->out, (int)o.len, o.buf);
}

static void
test_only_crlf_dot_crlf_ends_and_bare_cr_lf_refused(void **state)
{
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		check_case(&cases[i], 0);
		check_case(&cases[i], 1);
	}
}

static void
test_oversize_message_is_read_to_its_end(void **state)
{
	char in[4096];
	struct smtp_data d;
	struct out o;
	size_t used, n = 0;

	for (int i = 0; i < 50; i++)
		n += (size_t)snprintf(in + n, sizeof(in) - n, "line %02d of the message\r\n", i);
	n += (size_t)snprintf(in + n, sizeof(in) - n, ".\r\nQUIT\r\n");
	for (int bw = 0; bw < 2; bw++) {
		enum smtp_data_status st = run(in, n, bw, 100, &d, &used, &o);
		assert_int_equal(st, SMTP_DATA_END);
		assert_int_equal(used, n - 6);
		assert_true(d.too_big);
		assert_true(o.len <= 100);
	}
}

static void
test_line_over_1000_octets_is_flagged(void **state)
{
	static char in[3000];
	struct smtp_data d;
	struct out o;
	size_t used, n;

	/* 998 octets + CRLF is the longest line allowed */
	memset(in, 'a', 998);
	memcpy(in + 998, "\r\n.\r\n", 5);
	n = 1003;
	assert_int_equal(run(in, n, 0, 1 << 20, &d, &used, &o), SMTP_DATA_END);
	assert_false(d.line_too_long);
	memset(in, 'a', 999);
	memcpy(in + 999, "\r\n.\r\n", 5);
	n = 1004;
	assert_int_equal(run(in, n, 0, 1 << 20, &d, &used, &o), SMTP_DATA_END);
	assert_true(d.line_too_long);
	assert_int_equal(used, n);
	/* the same in the body, where the reader takes its fast path */
	for (int bw = 0; bw < 2; bw++) {
		for (size_t len = 998; len <= 999; len++) {
			n = (size_t)snprintf(in, sizeof(in), "Subject: x\r\n\r\nshort\r\n");
			memset(in + n, 'b', len);
			n += len;
			memcpy(in + n, "\r\nend\r\n.\r\n", 10);
			n += 10;
			assert_int_equal(run(in, n, bw, 1 << 20, &d, &used, &o), SMTP_DATA_END);
			if (d.line_too_long != (len == 999))
				fail_msg(
				    "body line of %zu octets + CRLF (%s): expected too_long=%d, "
				    "got %d",
				    len, bw ? "bytewise" : "whole", len == 999, d.line_too_long);
		}
	}
}

static void
test_received_headers_are_counted_in_the_header_only(void **state)
{
	const char *in = "Received: from a\r\n\tby b\r\nRECEIVED: x\r\nX-Received: no\r\n"
	                 "Subject: Received: no\r\nreceived:y\r\n\r\nReceived: body\r\n.\r\n";
	struct smtp_data d;
	struct out o;
	size_t used;

	for (int bw = 0; bw < 2; bw++) {
		assert_int_equal(run(in, strlen(in), bw, 1 << 20, &d, &used, &o), SMTP_DATA_END);
		if (d.received != 3)
			fail_msg("expected 3 Received fields, got %d", d.received);
	}
}

static void
test_nul_octet_is_flagged_and_read_to_the_end(void **state)
{
	static const struct {
		const char *name;
		const char in[32];
		size_t len;
	} rows[] = {
	    {"NUL in the body", "a\r\n\r\nb\0c\r\n.\r\nQUIT\r\n", 19},
	    {"NUL then dot", "a\r\n\r\n\0.\r\n.\r\nQUIT\r\n", 18},
	    {"NUL in the header", "X: \0\r\n\r\nb\r\n.\r\nQUIT\r\n", 20},
	};
	struct smtp_data d;
	struct out o;
	size_t used;

	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
		for (int bw = 0; bw < 2; bw++) {
			enum smtp_data_status st =
			    run(rows[i].in, rows[i].len, bw, 1 << 20, &d, &used, &o);
			if (st != SMTP_DATA_END || used != rows[i].len - 6 || !d.has_nul)
				fail_msg(
				    "%s (%s): expected the end after %zu octets with has_nul, got "
				    "status %d after %zu, has_nul %d",
				    rows[i].name, bw ? "bytewise" : "whole", rows[i].len - 6, st,
				    used, d.has_nul);
			if (memchr(o.buf, '\0', o.len) != NULL)
				fail_msg("%s: a NUL was passed on", rows[i].name);
		}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_only_crlf_dot_crlf_ends_and_bare_cr_lf_refused),
	    cmocka_unit_test(test_oversize_message_is_read_to_its_end),
	    cmocka_unit_test(test_line_over_1000_octets_is_flagged),
	    cmocka_unit_test(test_received_headers_are_counted_in_the_header_only),
	    cmocka_unit_test(test_nul_octet_is_flagged_and_read_to_the_end),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
