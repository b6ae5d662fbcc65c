/*
 * test_utf8.c - the one ASCII test and UTF-8 sequence decoder (mail/utf8.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "mail/utf8.h"

struct seq_row {
	const char *bytes;
	size_t avail;
	size_t want;
	const char *why;
};

static const struct seq_row seq_rows[] = {
    {"a", 1, 1, "ASCII is one octet"},
    {"\xc3\xa9", 2, 2, "U+00E9 is two octets"},
    {"\xe2\x82\xac", 3, 3, "U+20AC is three octets"},
    {"\xf0\x9f\x98\x80", 4, 4, "U+1F600 is four octets"},
    {"\xc3\xa9", 1, 0, "a sequence cut off by avail"},
    {"\x80", 1, 0, "a stray continuation octet"},
    {"\xc0\xaf", 2, 0, "an overlong '/'"},
    {"\xe0\x80\xaf", 3, 0, "an overlong three-octet form"},
    {"\xed\xa0\x80", 3, 0, "a surrogate (U+D800)"},
    {"\xf4\x90\x80\x80", 4, 0, "past U+10FFFF"},
    {"\xc3\x28", 2, 0, "a lead octet without its continuation"},
};

static void
test_seq_len_accepts_well_formed_and_refuses_the_rest(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(seq_rows) / sizeof(seq_rows[0]); i++) {
		const struct seq_row *r = &seq_rows[i];
		size_t got = utf8_seq_len(r->bytes, r->avail);
		if (got != r->want)
			fail_msg("row %zu (%s): want %zu, got %zu", i, r->why, r->want, got);
	}
}

static void
test_is_ascii(void **state)
{
	(void)state;
	assert_true(utf8_is_ascii(""));
	assert_true(utf8_is_ascii("plain text\r\n\x7f"));
	assert_false(utf8_is_ascii("caf\xc3\xa9"));
	assert_true(utf8_is_ascii_n("ab\0\xff", 3));
	assert_false(utf8_is_ascii_n("ab\0\xff", 4));
}

static void
test_encode_is_the_inverse_of_seq_len(void **state)
{
	static const struct {
		unsigned long cp;
		const char *want; /* NULL: no character */
	} rows[] = {
	    {0x41, "A"},
	    {0xe9, "\xc3\xa9"},
	    {0x20ac, "\xe2\x82\xac"},
	    {0x1f600, "\xf0\x9f\x98\x80"},
	    {0x10ffff, "\xf4\x8f\xbf\xbf"},
	    {0xd800, NULL},
	    {0x110000, NULL},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		char out[4];
		size_t n = utf8_encode(rows[i].cp, out);

		if (rows[i].want == NULL) {
			if (n != 0)
				fail_msg("U+%lX: want no encoding, got %zu octets", rows[i].cp, n);
			continue;
		}
		if (n != strlen(rows[i].want) || memcmp(out, rows[i].want, n) != 0 ||
		    utf8_seq_len(out, n) != n)
			fail_msg("U+%lX: want %zu octets read back whole, got %zu", rows[i].cp,
			         strlen(rows[i].want), n);
	}
	/* Every scalar value round-trips through the decoder. */
	for (unsigned long cp = 1; cp <= 0x10ffff; cp++) {
		char out[4];
		size_t n = utf8_encode(cp, out);

		if ((n == 0) != (cp >= 0xd800 && cp <= 0xdfff) || (n && utf8_seq_len(out, n) != n))
			fail_msg("U+%lX: encoded in %zu octets, not read back", cp, n);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_seq_len_accepts_well_formed_and_refuses_the_rest),
	    cmocka_unit_test(test_is_ascii),
	    cmocka_unit_test(test_encode_is_the_inverse_of_seq_len),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
