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

/* Hosts, addresses and ports: each row a setting line, whether it is
 * taken, and (when not) what the error must say after "test.conf:2: ". */
static const struct {
	const char *line;
	int ok;
	const char *err;
} host_rows[] = {
    {"listen = 127.0.0.1:2525, [::1]:2525, *:25, :26", 1, NULL},
    {"listen = 127.0.0.1:99999", 0,
     "listen: '127.0.0.1:99999': port '99999' is not a number from 1 to 65535"},
    {"listen = 127.0.0.1:0", 0, "listen: '127.0.0.1:0': port '0'"},
    {"listen = 127.0.0.1:25x", 0, "port '25x'"},
    {"listen = 127.0.0.1", 0, "listen: '127.0.0.1': expected address:port"},
    {"listen = 127.0.0.1:", 0, "port ''"},
    {"listen = 127.0.0.300:25", 0, "'127.0.0.300' is not an IPv4 address"},
    {"listen = localhost:25", 0, "'localhost' is not an IPv4 address"},
    {"listen = ::1:25", 0, "an IPv6 address is written [address]:port"},
    {"listen = [::1:25", 0, "'[' without ']'"},
    {"listen = [::g]:25", 0, "'::g' is not an IPv6 address"},
    {"listen = [::1]25", 0, "expected ':port' after ']'"},
    {"listen = 127.0.0.1:25 127.0.0.1:65536", 0, "'127.0.0.1:65536'"},
    {"hostname = mx-1.lists.example.org", 1, NULL},
    {"hostname = localhost", 1, NULL},
    {"hostname = bad host", 0, "hostname: 'bad host' is not a host name (RFC 1123"},
    {"hostname = -mx.example.org", 0, "is not a host name"},
    {"hostname = mx-.example.org", 0, "is not a host name"},
    {"hostname = mx..example.org", 0, "is not a host name"},
    {"hostname = mx_1.example.org", 0, "is not a host name"},
    {"hostname = .example.org", 0, "is not a host name"},
    {"hostname = "
     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.example.org",
     0, "is not a host name"},
    {"default_list_domain = lists.example.org", 1, NULL},
    {"default_list_domain = lists example.org", 0, "default_list_domain: 'lists example.org'"},
    {"delivery_port = 2525", 1, NULL},
    {"delivery_port = 0", 0, "delivery_port: '0' is not a port (1 to 65535)"},
    {"delivery_port = 70000", 0, "delivery_port: '70000' is not a port"},
    {"dns_servers = 127.0.0.1:5353, [::1]:53, 127.0.0.2, ::1", 1, NULL},
    {"dns_servers = 127.0.0.1:99999", 0, "dns_servers: '127.0.0.1:99999': port"},
    {"dns_servers = ns.example.org", 0, "'ns.example.org' is not an IPv4 address"},
    {"relay_host = smtp.example.org:587", 1, NULL},
    {"relay_host = smtp.example.org", 1, NULL},
    {"relay_host = 127.0.0.1:2525", 1, NULL},
    {"relay_host = [::1]:2525", 1, NULL},
    {"relay_host = [127.0.0.1]", 1, NULL},
    {"relay_host = smtp.example.org:0", 0, "relay_host: 'smtp.example.org:0': port '0'"},
    {"relay_host = bad_host:25", 0, "'bad_host' is not a host name (RFC 1123) or an IP"},
    {"relay_host = ::1:25", 0, "an IPv6 address is written [address]:port"},
    {"http_listen = 127.0.0.1:8025", 1, NULL},
    {"http_listen = [::1]:8025", 1, NULL},
    {"http_listen = 127.0.0.1", 0, "http_listen: '127.0.0.1': expected address:port"},
    {"http_listen = 127.0.0.1:80000", 0, "port '80000' is not a number"},
    {"http_base_url = https://lists.example.org", 1, NULL},
    {"http_base_url = https://lists.example.org/mail/", 1, NULL},
    {"http_base_url = http://127.0.0.1:8025", 1, NULL},
    {"http_base_url = http://[::1]:8025/x", 1, NULL},
    {"http_base_url = lists.example.org", 0, "expected a URL starting with http://"},
    {"http_base_url = https://bad_host/", 0, "'bad_host' is not a host name"},
    {"http_base_url = https://a.example/?x=1", 0, "'?' or '#' in the URL"},
    {"http_base_url = https://user@a.example/", 0, "no user name belongs"},
    {"http_base_url = https://a.example:0/", 0, "the port is not a number"},
};

static void
test_hosts_addresses_and_ports_are_checked(void **state)
{
	for (size_t i = 0; i < sizeof(host_rows) / sizeof(host_rows[0]); i++) {
		struct conf c;
		char err[512] = "", text[512];
		int rc;

		snprintf(text, sizeof(text), "# line 1\n%s\n", host_rows[i].line);
		rc = parse(&c, text, err, sizeof(err));
		conf_free(&c);
		if (host_rows[i].ok && rc != 0)
			fail_msg("'%s': expected it taken, got the error %s", host_rows[i].line,
			         err);
		if (host_rows[i].ok)
			continue;
		if (rc == 0)
			fail_msg("'%s': expected an error, it was taken", host_rows[i].line);
		if (strncmp(err, "test.conf:2: ", 13) != 0 || strstr(err, host_rows[i].err) == NULL)
			fail_msg("'%s': expected 'test.conf:2: ...%s...', got '%s'",
			         host_rows[i].line, host_rows[i].err, err);
	}
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

static void
test_digest_interval_may_be_empty(void **state)
{
	char canon[64], err[256];
	struct list_conf lc;

	(void)state;
	assert_int_equal(
	    conf_list_check("digest_interval", "", canon, sizeof(canon), err, sizeof(err)), 0);
	conf_list_init(&lc);
	assert_int_equal(conf_list_set(&lc, "digest_interval", "", err, sizeof(err)), 0);
	assert_int_equal(lc.digest_interval, 0);
	conf_list_free(&lc);
	/* Other times still refuse "". */
	assert_int_equal(
	    conf_list_check("hold_lifetime", "", canon, sizeof(canon), err, sizeof(err)), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_digest_interval_may_be_empty),
	    cmocka_unit_test(test_defaults_come_from_the_table),
	    cmocka_unit_test(test_values_comments_and_continuations),
	    cmocka_unit_test(test_unknown_setting_names_file_line_and_setting),
	    cmocka_unit_test(test_bad_value_names_file_line_and_setting),
	    cmocka_unit_test(test_hosts_addresses_and_ports_are_checked),
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
