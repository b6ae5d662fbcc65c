/*
 * test_encode.c - the one copy of each encoding fanmail writes
 * (mail/encode.c): quoted-printable, base64 and RFC 2047 encoded-words,
 * in the forms each caller relies on.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mail/encode.h"
#include "mail/msg.h"

static char *
qp(const char *in)
{
	struct strbuf b = {0};

	encode_qp(&b, in, strlen(in));
	return strbuf_done(&b);
}

static void
test_qp_rows(void **state)
{
	static const struct {
		const char *in, *want, *why;
	} rows[] = {
	    {"plain\n", "plain\r\n", "a line end becomes CRLF"},
	    {"no end", "no end", "nothing is added after the last line"},
	    {"a \r\nb\t", "a=20\r\nb=09", "white space before a line end or at the end is encoded"},
	    {"a\tb c", "a\tb c", "white space inside a line stays"},
	    {"=\xc3\xa9\x01", "=3D=C3=A9=01", "'=', 8-bit and control octets are encoded"},
	    {"a\rb", "a\r\nb", "a bare CR is a line end"},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		char *got = qp(rows[i].in);

		if (strcmp(got, rows[i].want) != 0)
			fail_msg("row %zu (%s): want \"%s\", got \"%s\"", i, rows[i].why,
			         rows[i].want, got);
		free(got);
	}
}

static void
test_qp_lines_are_76_with_soft_breaks(void **state)
{
	char in[400], dec[800];
	char *got, *line;
	size_t n;

	(void)state;
	memset(in, 'x', 300);
	in[150] = '\xe9';
	in[300] = '\0';
	got = qp(in);
	for (line = got; *line;) {
		char *nl = strstr(line, "\r\n");
		size_t len = nl ? (size_t)(nl - line) : strlen(line);

		if (len > 76)
			fail_msg("want lines of at most 76 octets, one has %zu", len);
		if (nl && len != 76 && nl[-1] == '=' && strstr(nl + 2, "\r\n") != NULL && len < 74)
			fail_msg("a soft break at %zu octets, before the line was full", len);
		line = nl ? nl + 2 : line + len;
	}
	n = msg_qp_decode(got, strlen(got), dec);
	assert_int_equal(n, 300);
	assert_memory_equal(dec, in, 300);
	free(got);
}

static void
test_base64_runs_and_lines(void **state)
{
	struct strbuf b = {0};
	char in[100];
	char *got;

	(void)state;
	encode_base64(&b,
	              "Gr\xc3\xbc\xc3\x9f"
	              "e",
	              7, 0);
	got = strbuf_done(&b);
	assert_string_equal(got, "R3LDvMOfZQ==");
	free(got);
	memset(in, 'a', sizeof(in));
	encode_base64(&b, in, sizeof(in), 76);
	got = strbuf_done(&b);
	/* 100 octets: 136 characters, one full line of 76 and one of 60. */
	assert_int_equal(strlen(got), 76 + 2 + 60 + 2);
	assert_memory_equal(got + 76, "\r\n", 2);
	assert_memory_equal(got + 138, "\r\n", 2);
	free(got);
}

static void
test_words_forms_the_callers_use(void **state)
{
	struct strbuf b = {0};
	char *got;

	(void)state;
	/* build.c: B, upper-case label (its notices have always said so). */
	encode_words(&b, "J\xc3\xbcrgen", 7, ENCODE_EW_B | ENCODE_EW_UPPER, 75, " ");
	got = strbuf_done(&b);
	assert_string_equal(got, "=?UTF-8?B?SsO8cmdlbg==?=");
	free(got);
	/* fold.c: Q. */
	encode_words(&b, "a b\xc3\xa9?", 6, ENCODE_EW_Q, 75, "\r\n ");
	got = strbuf_done(&b);
	assert_string_equal(got, "=?utf-8?q?a_b=C3=A9=3F?=");
	free(got);
	/* encode_text: the shorter of the two, as is when plain. */
	got = encode_text("J\xc3\xbcrgen", 7, "\r\n", 60);
	assert_string_equal(got, "=?utf-8?q?J=C3=BCrgen?=");
	free(got);
	got = encode_text("plain", 5, "\r\n", 60);
	assert_string_equal(got, "plain");
	free(got);
}

static void
test_words_fit_and_never_split_a_character(void **state)
{
	char in[600];
	size_t n = 0;
	struct strbuf b = {0};
	char *got, *unf, *dec;

	(void)state;
	while (n + 3 < sizeof(in) - 1) {
		memcpy(in + n, "\xe2\x82\xac", 3); /* the euro sign */
		n += 3;
	}
	in[n] = '\0';
	for (int how = ENCODE_EW_Q; how <= ENCODE_EW_B; how++) {
		encode_words(&b, in, n, how, 30, "\r\n ");
		got = strbuf_done(&b);
		for (char *w = got; (w = strstr(w, "=?")) != NULL;) {
			char *end = strstr(w + 10, "?="); /* after "=?utf-8?q?" */
			size_t len = (size_t)(end + 2 - w);

			char *one = msg_decode_words(w, len, NULL);

			if (len > (w == got ? 30u : 74u))
				fail_msg("encoding %d: a word of %zu octets", how, len);
			if (strlen(one) % 3 != 0 || strlen(one) == 0)
				fail_msg("encoding %d: a word holds part of a character: %.*s", how,
				         (int)len, w);
			free(one);
			w = end + 2;
		}
		unf = msg_unfold(got, strlen(got));
		dec = msg_decode_words(unf, strlen(unf), NULL);
		assert_string_equal(dec, in);
		free(got);
		free(unf);
		free(dec);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_qp_rows),
	    cmocka_unit_test(test_qp_lines_are_76_with_soft_breaks),
	    cmocka_unit_test(test_base64_runs_and_lines),
	    cmocka_unit_test(test_words_forms_the_callers_use),
	    cmocka_unit_test(test_words_fit_and_never_split_a_character),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
