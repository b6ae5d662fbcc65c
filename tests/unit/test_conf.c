/*
 * test_conf.c - the settings table and the fanmail.conf parser.
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

#include "conf/conf.h"

static int
parse(struct conf *c, const char *text, char *err, size_t errlen)
{
	conf_init(c);
	return conf_parse(c, "test.conf", text, strlen(text), err, errlen);
}

static void
test_defaults_come_from_the_table(void **state)
{
	struct conf c;

	conf_init(&c);
	assert_string_equal(c.listen, "127.0.0.1:2525");
	assert_int_equal(c.delivery_port, 25);
	assert_int_equal(c.max_message_size, 10 * 1024 * 1024);
	assert_int_equal(c.max_queue_lifetime, 5 * 86400);
	for (size_t i = 0; i < conf_ndefs; i++)
		assert_true(conf_is_default(&c, &conf_defs[i]));
	conf_free(&c);
}

static void
test_values_comments_and_continuations(void **state)
{
	struct conf c;
	char err[512];
	const char *text = "# a comment\n"
	                   "hostname = mx.example.org\n"
	                   "\n"
	                   "listen = 127.0.0.1:25,\n"
	                   "   [::1]:25\n"
	                   "max_message_size = 20m\n"
	                   "greeting_timeout=90s\n"
	                   "delivery_port = 2626\r\n";

	assert_int_equal(parse(&c, text, err, sizeof(err)), 0);
	assert_string_equal(c.hostname, "mx.example.org");
	assert_string_equal(c.listen, "127.0.0.1:25, [::1]:25");
	assert_int_equal(c.max_message_size, 20 * 1024 * 1024);
	assert_int_equal(c.greeting_timeout, 90);
	assert_int_equal(c.delivery_port, 2626);
	conf_free(&c);
}

static void
test_unknown_setting_names_file_line_and_setting(void **state)
{
	struct conf c;
	char err[512];

	assert_int_equal(parse(&c, "hostname = a\n\nmax_mesage_size = 1\n", err, sizeof(err)), -1);
	assert_string_equal(err, "test.conf:3: max_mesage_size: unknown setting");
	conf_free(&c);
}

static void
test_bad_value_names_file_line_and_setting(void **state)
{
	struct conf c;
	char err[512];

	assert_int_equal(parse(&c, "max_recipients = lots\n", err, sizeof(err)), -1);
	assert_string_contains(err, "test.conf:1: max_recipients: 'lots'");
	conf_free(&c);
	assert_int_equal(parse(&c, "max_message_size = 10q\n", err, sizeof(err)), -1);
	assert_string_contains(err, "test.conf:1: max_message_size:");
	conf_free(&c);
	assert_int_equal(parse(&c, "max_queue_lifetime = -1d\n", err, sizeof(err)), -1);
	conf_free(&c);
	assert_int_equal(parse(&c, "max_recipients = 99999999999999999999999\n", err, sizeof(err)),
	                 -1);
	conf_free(&c);
}

static void
test_line_without_equals_is_an_error(void **state)
{
	struct conf c;
	char err[512];

	assert_int_equal(parse(&c, "hostname\n", err, sizeof(err)), -1);
	assert_string_equal(err, "test.conf:1: expected 'name = value'");
	conf_free(&c);
	assert_int_equal(parse(&c, "  hostname = x\n", err, sizeof(err)), -1);
	assert_string_contains(err, "continuation line");
	conf_free(&c);
}

static void
test_missing_file(void **state)
{
	struct conf c;
	char err[512];

	conf_init(&c);
	assert_int_equal(conf_load(&c, "/nonexistent/fanmail.conf", 0, err, sizeof(err)), 0);
	assert_int_equal(conf_load(&c, "/nonexistent/fanmail.conf", 1, err, sizeof(err)), -1);
	assert_string_contains(err, "/nonexistent/fanmail.conf: cannot open");
	conf_free(&c);
}

static void
test_print_changed_only(void **state)
{
	struct conf c;
	char err[512], *buf = NULL;
	size_t len = 0;
	FILE *f;

	assert_int_equal(
	    parse(&c, "hostname = h.example\nmax_message_size = 10m\n", err, sizeof(err)), 0);
	f = open_memstream(&buf, &len);
	conf_print(&c, f, 1);
	fclose(f);
	assert_string_equal(buf, "hostname = h.example\n");
	free(buf);
	conf_free(&c);
}

static void
test_list_settings_are_checked(void **state)
{
	char canon[256], err[256];

	assert_int_equal(
	    conf_list_check("policy", "Moderated", canon, sizeof(canon), err, sizeof(err)), 0);
	assert_string_equal(canon, "moderated");
	assert_int_equal(
	    conf_list_check("policy", "closed", canon, sizeof(canon), err, sizeof(err)), -1);
	assert_string_contains(err, "open|members|moderated|announce");
	assert_int_equal(conf_list_check("nosuch", "1", canon, sizeof(canon), err, sizeof(err)),
	                 -1);
}

/* Whatever `fanmail list set` accepts, the typed settings read as that
 * choice: every choice of every ENUM, in any case, loads as its own enum
 * value and prints back as itself. */
static void
test_every_accepted_choice_loads_as_itself(void **state)
{
	(void)state;
	for (size_t i = 0; i < conf_list_ndefs; i++) {
		const struct conf_def *d = &conf_list_defs[i];

		if (d->type != CONF_ENUM)
			continue;
		assert_non_null(d->choices);
		for (int c = 0; d->choices[c] != NULL; c++) {
			struct list_conf lc;
			char canon[64], err[256], upper[64];
			int got;

			snprintf(upper, sizeof(upper), "%s", d->choices[c]);
			upper[0] = (char)(upper[0] - 'a' + 'A');
			if (conf_list_check(d->name, upper, canon, sizeof(canon), err,
			                    sizeof(err)) < 0)
				fail_msg("%s=%s: expected accepted, got: %s", d->name, upper, err);
			conf_list_init(&lc);
			if (conf_list_set(&lc, d->name, canon, err, sizeof(err)) < 0)
				fail_msg("%s=%s: expected loaded, got: %s", d->name, canon, err);
			memcpy(&got, (char *)&lc + d->offset, sizeof(got));
			if (got != c)
				fail_msg("%s=%s: expected enum value %d, got %d", d->name, canon, c,
				         got);
			assert_string_equal(conf_list_choice(d->name, got), d->choices[c]);
			conf_list_free(&lc);
		}
	}
}

static void
test_list_defaults_and_bad_values(void **state)
{
	struct list_conf lc;
	char err[256];

	(void)state;
	conf_list_init(&lc);
	assert_int_equal(lc.policy, list_policy_members);
	assert_int_equal(lc.verp, list_verp_never);
	assert_int_equal(lc.confirm_token_lifetime, 3 * 86400);
	assert_int_equal(lc.archive, 1);
	assert_string_equal(lc.subject_prefix, "[%n]");
	/* A bad value is refused and leaves the field as it was. */
	assert_int_equal(conf_list_set(&lc, "policy", "closed", err, sizeof(err)), -1);
	assert_int_equal(lc.policy, list_policy_members);
	assert_int_equal(conf_list_set(&lc, "hold_lifetime", "soon", err, sizeof(err)), -1);
	assert_int_equal(lc.hold_lifetime, 7 * 86400);
	assert_int_equal(conf_list_set(&lc, "nosuch", "1", err, sizeof(err)), -1);
	assert_int_equal(conf_list_set(&lc, "hold_lifetime", "2h", err, sizeof(err)), 0);
	assert_int_equal(lc.hold_lifetime, 7200);
	conf_list_free(&lc);
}

static void
test_list_iteration(void **state)
{
	const char *cur = " a, b\tc,,", *item;
	size_t len;
	int n = 0;

	while ((item = conf_list_next(&cur, &len)) != NULL)
		n++;
	assert_int_equal(n, 3);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_defaults_come_from_the_table),
	    cmocka_unit_test(test_values_comments_and_continuations),
	    cmocka_unit_test(test_unknown_setting_names_file_line_and_setting),
	    cmocka_unit_test(test_bad_value_names_file_line_and_setting),
	    cmocka_unit_test(test_line_without_equals_is_an_error),
	    cmocka_unit_test(test_missing_file),
	    cmocka_unit_test(test_print_changed_only),
	    cmocka_unit_test(test_list_settings_are_checked),
	    cmocka_unit_test(test_every_accepted_choice_loads_as_itself),
	    cmocka_unit_test(test_list_defaults_and_bad_values),
	    cmocka_unit_test(test_list_iteration),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
