/*
 * fm_assert.h - cmocka assertions the unit tests share, which say what
 * they searched when they fail (cmocka's assert_non_null(strstr(...))
 * says only that a pointer was NULL).
 *
 * assert_string_contains(haystack, needle) fails when needle is not in
 * haystack (or haystack is NULL), printing both;
 * assert_string_not_contains(haystack, needle) fails when it is. Include
 * after <cmocka.h>.
 */
#ifndef FANMAIL_FM_ASSERT_H
#define FANMAIL_FM_ASSERT_H

#include <string.h>

/* Enough of a long message to find one's way in it. */
#define FM_ASSERT_SHOW 4000

static inline void
fm_assert_contains(const char *hay, const char *needle, int want, const char *expr,
                   const char *file, int line)
{
	const char *hit;

	if (hay == NULL) {
		print_error("%s is NULL; expected text %s \"%s\"\n", expr,
		            want ? "containing" : "not containing", needle);
		_fail(file, line);
		return;
	}
	hit = strstr(hay, needle);
	if ((hit != NULL) == want)
		return;
	if (want)
		print_error("expected %s to contain \"%s\"; it is (%zu octets):\n%.*s%s\n", expr,
		            needle, strlen(hay), FM_ASSERT_SHOW, hay,
		            strlen(hay) > FM_ASSERT_SHOW ? "\n[...]" : "");
	else
		print_error("expected %s not to contain \"%s\"; it does at octet %zu of:\n%.*s%s\n",
		            expr, needle, (size_t)(hit - hay), FM_ASSERT_SHOW, hay,
		            strlen(hay) > FM_ASSERT_SHOW ? "\n[...]" : "");
	_fail(file, line);
}

#define assert_string_contains(hay, needle)                                                        \
	fm_assert_contains((hay), (needle), 1, #hay, __FILE__, __LINE__)
#define assert_string_not_contains(hay, needle)                                                    \
	fm_assert_contains((hay), (needle), 0, #hay, __FILE__, __LINE__)

#endif
