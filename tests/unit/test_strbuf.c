/*
 * test_strbuf.c - the shared growable string buffer (mail/strbuf.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "mail/strbuf.h"

static void
test_empty_buffer_is_done_as_empty_string(void **state)
{
	struct strbuf b = {0};
	char *s;

	(void)state;
	s = strbuf_done(&b);
	assert_non_null(s);
	assert_string_equal(s, "");
	free(s);
}

static void
test_appends_keep_order_and_nul(void **state)
{
	struct strbuf b = {0};
	char *s;

	(void)state;
	strbuf_add(&b, "ab\0c", 4);
	strbuf_str(&b, "de");
	strbuf_printf(&b, "-%d-%s", 42, "x");
	assert_int_equal(b.len, 11);
	assert_memory_equal(b.p, "ab\0cde-42-x", 12);
	s = strbuf_done(&b);
	assert_null(b.p);
	free(s);
}

static void
test_printf_longer_than_any_fixed_buffer_is_whole(void **state)
{
	struct strbuf b = {0};
	char *big = malloc(100001);

	(void)state;
	assert_non_null(big);
	memset(big, 'x', 100000);
	big[100000] = '\0';
	strbuf_printf(&b, "<%s>", big);
	assert_false(b.oom);
	assert_int_equal(b.len, 100002);
	assert_int_equal(b.p[0], '<');
	assert_int_equal(b.p[100001], '>');
	assert_int_equal(b.p[100002], '\0');
	strbuf_free(&b);
	free(big);
}

static void
test_after_oom_appends_are_dropped_and_done_is_null(void **state)
{
	struct strbuf b = {0};

	(void)state;
	strbuf_str(&b, "kept");
	b.oom = 1; /* as after a failed realloc */
	strbuf_str(&b, "dropped");
	assert_int_equal(b.len, 4);
	assert_null(strbuf_done(&b));
	assert_null(b.p);
}

static void
test_truncate_undoes_the_appends_since(void **state)
{
	struct strbuf b = {0};
	size_t mark;

	(void)state;
	strbuf_str(&b, "kept");
	mark = b.len;
	strbuf_str(&b, " undone");
	strbuf_truncate(&b, mark);
	assert_int_equal(b.len, 4);
	assert_string_equal(b.p, "kept");
	strbuf_truncate(&b, 100); /* longer: nothing changes */
	assert_string_equal(b.p, "kept");
	strbuf_str(&b, "!");
	assert_string_equal(b.p, "kept!");
	strbuf_truncate(&b, 0);
	assert_int_equal(b.len, 0);
	assert_string_equal(b.p, "");
	strbuf_free(&b);
	strbuf_truncate(&b, 0); /* an empty buffer has nothing to cut */
	assert_null(b.p);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_empty_buffer_is_done_as_empty_string),
	    cmocka_unit_test(test_appends_keep_order_and_nul),
	    cmocka_unit_test(test_printf_longer_than_any_fixed_buffer_is_whole),
	    cmocka_unit_test(test_after_oom_appends_are_dropped_and_done_is_null),
	    cmocka_unit_test(test_truncate_undoes_the_appends_since),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
