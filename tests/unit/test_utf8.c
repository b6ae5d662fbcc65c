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

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_seq_len_accepts_well_formed_and_refuses_the_rest),
	    cmocka_unit_test(test_is_ascii),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
