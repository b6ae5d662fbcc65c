/*
 * test_addr.c - address parsing (RFC 5321/5322, RFC 6531), the lookup key,
 * and member-file lines.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "fm_assert.h"

#include <stdio.h>
#include <string.h>

#include "mail/addr.h"

static int
parse(const char *s, int flags, struct addr *a, const char **why)
{
	return addr_parse(s, strlen(s), flags, a, why);
}

static void
expect_valid(const char *s, int flags)
{
	struct addr a;
	const char *why = NULL;
	char buf[512];

	if (parse(s, flags, &a, &why) != 0)
		fail_msg("expected <%s> to be valid, got: %s", s, why);
	/* What was written comes back unchanged. */
	assert_int_equal(addr_format(&a, buf, sizeof(buf)), (int)strlen(s));
	assert_string_equal(buf, s);
}

static void
expect_invalid(const char *s, int flags, const char *why_part)
{
	struct addr a;
	const char *why = NULL;

	if (parse(s, flags, &a, &why) == 0)
		fail_msg("expected <%s> to be refused (%s), but it parsed", s, why_part);
	assert_non_null(why);
	if (strstr(why, why_part) == NULL)
		fail_msg("<%s>: expected a reason containing '%s', got '%s'", s, why_part, why);
}

static void
expect_key(const char *s, int flags, const char *key)
{
	struct addr a;
	const char *why = NULL;
	char buf[512];

	if (parse(s, flags, &a, &why) != 0)
		fail_msg("expected <%s> to be valid, got: %s", s, why);
	assert_true(addr_key(&a, buf, sizeof(buf)) > 0);
	if (strcmp(buf, key) != 0)
		fail_msg("key of <%s>: expected '%s', got '%s'", s, key, buf);
	assert_int_equal(addr_key(&a, buf, sizeof(buf)), (int)strlen(key));
}

static void
test_dot_atom_addresses_are_valid(void **state)
{
	expect_valid("alice@example.org", 0);
	expect_valid("Alice.Smith@Example.ORG", 0);
	expect_valid("a@b", 0);
	expect_valid("postmaster@localhost", 0);
	expect_valid("user+tag@sub.domain.example.com", 0);
	expect_valid("!#$%&'*+-/=?^_`{|}~@example.org", 0);
	expect_valid("x-y_z@a-b.c-d.example", 0);
	expect_valid("1234567890@123.example", 0);
}

static void
test_quoted_local_parts_are_valid(void **state)
{
	expect_valid("\"john doe\"@example.org", 0);
	expect_valid("\"john@doe\"@example.org", 0);
	expect_valid("\"a\\\"b\"@example.org", 0);
	expect_valid("\"a\\\\b\"@example.org", 0);
	expect_valid("\".leading.dot\"@example.org", 0);
	expect_valid("\"double..dot\"@example.org", 0);
	expect_valid("\"\"@example.org", 0);
	expect_valid("\"(comment)<x>\"@example.org", 0);
}

static void
test_address_literals_are_valid(void **state)
{
	struct addr a;
	const char *why;

	expect_valid("user@[192.0.2.1]", 0);
	expect_valid("user@[255.255.255.255]", 0);
	expect_valid("user@[IPv6:2001:db8::1]", 0);
	expect_valid("user@[IPv6:::1]", 0);
	expect_valid("user@[ipv6:2001:DB8:0:0:0:0:0:1]", 0);
	expect_valid("user@[IPv6:::ffff:192.0.2.1]", 0);
	assert_int_equal(parse("user@[192.0.2.1]", 0, &a, &why), 0);
	assert_true(a.literal);
	assert_int_equal(parse("user@example.org", 0, &a, &why), 0);
	assert_false(a.literal);
}

static void
test_malformed_local_parts_are_refused(void **state)
{
	expect_invalid("", 0, "empty");
	expect_invalid("alice", 0, "no @domain");
	expect_invalid("@example.org", 0, "local part is empty");
	expect_invalid(".alice@example.org", 0, "leading or double dot");
	expect_invalid("alice.@example.org", 0, "ends with a dot");
	expect_invalid("al..ice@example.org", 0, "leading or double dot");
	expect_invalid("al ice@example.org", 0, "white space");
	expect_invalid("al\"ice@example.org", 0, "needs quoting");
	expect_invalid("al(ice)@example.org", 0, "needs quoting");
	expect_invalid("a,b@example.org", 0, "needs quoting");
	expect_invalid("a@b@example.org", 0, "more than one @");
	expect_invalid("\"unterminated@example.org", 0, "no closing quote");
	expect_invalid("\"a\"b@example.org", 0, "followed by something other than @");
	expect_invalid("\"a\"", 0, "no @domain");
	expect_invalid("a\tb@example.org", 0, "white space");
	expect_invalid("a\x01@example.org", 0, "control character");
	expect_invalid("\"a\x01\"@example.org", 0, "control character");
	expect_invalid("\"a\\\x01\"@example.org", 0, "backslash");
}

static void
test_malformed_domains_are_refused(void **state)
{
	expect_invalid("alice@", 0, "domain is empty");
	expect_invalid("alice@.example.org", 0, "empty label");
	expect_invalid("alice@example..org", 0, "empty label");
	expect_invalid("alice@example.org.", 0, "ends with a dot");
	expect_invalid("alice@-example.org", 0, "hyphen");
	expect_invalid("alice@example-.org", 0, "hyphen");
	expect_invalid("alice@exa_mple.org", 0, "letters, digits, hyphens");
	expect_invalid("alice@exa mple.org", 0, "white space");
	expect_invalid("alice@example.org ", 0, "white space");
	expect_invalid("alice@[192.0.2.1", 0, "closing bracket");
	expect_invalid("alice@[192.0.2.256]", 0, "IPv4");
	expect_invalid("alice@[192.0.2]", 0, "IPv4");
	expect_invalid("alice@[192.0.2.1.5]", 0, "IPv4");
	expect_invalid("alice@[1234.0.2.1]", 0, "IPv4");
	expect_invalid("alice@[]", 0, "IPv4");
	expect_invalid("alice@[IPv6:2001:db8::g]", 0, "IPv6");
	expect_invalid("alice@[IPv6:1:2:3:4:5:6:7:8:9]", 0, "IPv6");
	expect_invalid("alice@[IPv6:192.0.2.1]", 0, "IPv6");
	expect_invalid("alice@[x-tag:whatever]", 0, "unknown tag");
	expect_invalid("alice@[192.0.2.1]x", 0, "closing bracket");
}

static void
test_length_limits_are_enforced(void **state)
{
	char local[80], label[80], buf[400];

	/* Local part: 64 octets pass, 65 fail. */
	memset(local, 'a', 64);
	local[64] = '\0';
	snprintf(buf, sizeof(buf), "%s@example.org", local);
	expect_valid(buf, 0);
	snprintf(buf, sizeof(buf), "a%s@example.org", local);
	expect_invalid(buf, 0, "longer than 64");
	/* Quotes count toward the 64. */
	memset(local, 'a', 63);
	local[63] = '\0';
	snprintf(buf, sizeof(buf), "\"%s\"@example.org", local);
	expect_invalid(buf, 0, "longer than 64");

	/* A label: 63 pass, 64 fail. */
	memset(label, 'b', 63);
	label[63] = '\0';
	snprintf(buf, sizeof(buf), "a@%s.org", label);
	expect_valid(buf, 0);
	snprintf(buf, sizeof(buf), "a@b%s.org", label);
	expect_invalid(buf, 0, "longer than 63");

	/* Whole address: 254 pass, 255 fail (four 60-octet labels). */
	memset(label, 'c', 60);
	label[60] = '\0';
	/* "l@" + 4*60 + 3 dots = 245; pad the local part to reach 254/255. */
	snprintf(buf, sizeof(buf), "%.10s@%s.%s.%s.%s", "llllllllll", label, label, label, label);
	assert_int_equal(strlen(buf), 254);
	expect_valid(buf, 0);
	snprintf(buf, sizeof(buf), "%.11s@%s.%s.%s.%s", "lllllllllll", label, label, label, label);
	expect_invalid(buf, 0, "longer than 254");

	/* Domain: more than 255 octets is refused as such. */
	snprintf(buf, sizeof(buf), "a@%s.%s.%s.%s.%.15s", label, label, label, label,
	         "ddddddddddddddd");
	assert_int_equal(strlen(buf), 2 + 4 * 61 + 15);
	expect_invalid(buf, 0, "domain is longer than 255");
}

static void
test_utf8_needs_the_flag_and_must_be_well_formed(void **state)
{
	struct addr a;
	const char *why;

	expect_invalid("j\xc3\xb6rg@example.org", 0, "SMTPUTF8");
	expect_invalid("user@b\xc3\xbc"
	               "cher.example",
	               0, "SMTPUTF8");
	expect_valid("j\xc3\xb6rg@example.org", ADDR_UTF8);
	expect_valid("\xe7\x94\xa8\xe6\x88\xb7@\xe4\xbe\x8b\xe5\xad\x90.\xe5\xb9\xbf\xe5\x91\x8a",
	             ADDR_UTF8);
	expect_valid("\"j\xc3\xb6rg smith\"@example.org", ADDR_UTF8);
	expect_valid("user@b\xc3\xbc"
	             "cher.example",
	             ADDR_UTF8);
	assert_int_equal(parse("j\xc3\xb6rg@example.org", ADDR_UTF8, &a, &why), 0);
	assert_true(a.utf8);
	assert_int_equal(parse("jorg@example.org", ADDR_UTF8, &a, &why), 0);
	assert_false(a.utf8);

	expect_invalid("j\xc3@example.org", ADDR_UTF8, "not valid UTF-8");         /* truncated */
	expect_invalid("j\xc0\xaf@example.org", ADDR_UTF8, "not valid UTF-8");     /* overlong */
	expect_invalid("j\xed\xa0\x80@example.org", ADDR_UTF8, "not valid UTF-8"); /* surrogate */
	expect_invalid("j\xf4\x90\x80\x80@example.org", ADDR_UTF8, "not valid UTF-8");
	expect_invalid("j\xff@example.org", ADDR_UTF8, "not valid UTF-8");
	expect_invalid("j\x80@example.org", ADDR_UTF8, "not valid UTF-8");
	expect_invalid("user@ex\xe4mple.org", ADDR_UTF8, "not valid UTF-8");
}

static void
test_nul_byte_is_refused(void **state)
{
	struct addr a;
	const char *why = NULL;

	assert_int_equal(addr_parse("a\0b@example.org", 15, 0, &a, &why), -1);
	assert_string_contains(why, "NUL");
}

static void
test_keys_fold_case_and_needless_quotes(void **state)
{
	expect_key("Alice@Example.ORG", 0, "alice@example.org");
	expect_key("alice@example.org", 0, "alice@example.org");
	expect_key("\"alice\"@example.org", 0, "alice@example.org");
	expect_key("\"Alice.Smith\"@EXAMPLE.org", 0, "alice.smith@example.org");
	expect_key("\"a\\lice\"@example.org", 0, "alice@example.org");
	expect_key("\"John Doe\"@example.org", 0, "\"john doe\"@example.org");
	expect_key("\"john\\ doe\"@example.org", 0, "\"john doe\"@example.org");
	expect_key("\"a\\\"b\"@example.org", 0, "\"a\\\"b\"@example.org");
	expect_key("\"a..b\"@example.org", 0, "\"a..b\"@example.org");
	expect_key("\"\"@example.org", 0, "\"\"@example.org");
	expect_key("User@[192.0.2.1]", 0, "user@[192.0.2.1]");
	expect_key("user@[192.000.002.001]", 0, "user@[192.0.2.1]");
	expect_key("user@[IPv6:2001:DB8:0:0:0:0:0:1]", 0, "user@[ipv6:2001:db8::1]");
	expect_key("user@[ipv6:2001:db8::1]", 0, "user@[ipv6:2001:db8::1]");
	/* UTF-8 octets are kept as they are; ASCII around them folds. */
	expect_key("J\xc3\x96rg@Example.org", ADDR_UTF8, "j\xc3\x96rg@example.org");
	expect_key("user@B\xc3\xbc"
	           "cher.EXAMPLE",
	           ADDR_UTF8,
	           "user@b\xc3\xbc"
	           "cher.example");
}

static void
test_same_mailbox_written_differently_has_one_key(void **state)
{
	const char *same[] = {"bob@example.org", "BOB@EXAMPLE.ORG", "\"bob\"@Example.Org",
	                      "\"B\\ob\"@example.ORG"};
	char first[300], buf[300];
	struct addr a;
	const char *why;

	for (size_t i = 0; i < sizeof(same) / sizeof(same[0]); i++) {
		assert_int_equal(parse(same[i], 0, &a, &why), 0);
		assert_true(addr_key(&a, buf, sizeof(buf)) > 0);
		if (i == 0)
			strcpy(first, buf);
		else if (strcmp(first, buf) != 0)
			fail_msg("<%s>: expected key %s, got %s", same[i], first, buf);
	}
}

static void
test_domain_key_and_small_buffers(void **state)
{
	struct addr a;
	const char *why;
	char buf[300];

	assert_int_equal(parse("Alice@Mail.Example.ORG", 0, &a, &why), 0);
	assert_int_equal(addr_domain_key(&a, buf, sizeof(buf)), 16);
	assert_string_equal(buf, "mail.example.org");
	assert_int_equal(addr_domain_key(&a, buf, 16), -1);
	assert_int_equal(addr_domain_key(&a, buf, 17), 16);
	assert_int_equal(addr_key(&a, buf, 5), -1);
	assert_int_equal(addr_format(&a, buf, 10), -1);
	assert_int_equal(addr_format(&a, buf, 23), 22);
	assert_int_equal(addr_format(&a, buf, 22), -1);
}

static void
expect_line(const char *line, const char *addr, const char *name)
{
	struct addr a;
	const char *why = NULL;
	char n[256], buf[300];

	if (addr_parse_line(line, strlen(line), ADDR_UTF8, &a, n, sizeof(n), &why) != 0)
		fail_msg("line '%s': expected to parse, got: %s", line, why);
	addr_format(&a, buf, sizeof(buf));
	if (strcmp(buf, addr) != 0 || strcmp(n, name) != 0)
		fail_msg("line '%s': expected <%s> '%s', got <%s> '%s'", line, addr, name, buf, n);
}

static void
expect_bad_line(const char *line, const char *why_part)
{
	struct addr a;
	const char *why = NULL;
	char n[256];

	if (addr_parse_line(line, strlen(line), ADDR_UTF8, &a, n, sizeof(n), &why) == 0)
		fail_msg("line '%s': expected an error (%s), but it parsed", line, why_part);
	if (strstr(why, why_part) == NULL)
		fail_msg("line '%s': expected a reason containing '%s', got '%s'", line, why_part,
		         why);
}

static void
test_member_lines_in_every_form(void **state)
{
	expect_line("alice@example.org", "alice@example.org", "");
	expect_line("  alice@example.org \r\n", "alice@example.org", "");
	expect_line("<alice@example.org>", "alice@example.org", "");
	expect_line("Alice Smith <alice@example.org>", "alice@example.org", "Alice Smith");
	expect_line("\"Smith, Alice\" <alice@example.org>", "alice@example.org", "Smith, Alice");
	expect_line("\"Alice \\\"Al\\\" Smith\" <alice@example.org>", "alice@example.org",
	            "Alice \"Al\" Smith");
	expect_line("alice@example.org (Alice Smith)", "alice@example.org", "Alice Smith");
	expect_line("J\xc3\xb6rg <j\xc3\xb6rg@example.org>", "j\xc3\xb6rg@example.org",
	            "J\xc3\xb6rg");
	expect_line("\"x<y\" <\"a<b\"@example.org>", "\"a<b\"@example.org", "x<y");
	expect_line("\"a<b\"@example.org", "\"a<b\"@example.org", "");
	expect_line("Name<alice@example.org>", "alice@example.org", "Name");
}

static void
test_bad_member_lines_say_why(void **state)
{
	expect_bad_line("", "empty");
	expect_bad_line("   \r\n", "empty");
	expect_bad_line("Alice <alice@example.org", "closing '>'");
	expect_bad_line("Alice <alice@example.org> trailing", "after the closing");
	expect_bad_line("Alice <not-an-address>", "no @domain");
	expect_bad_line("alice@example.org Alice)", "without an opening");
	expect_bad_line("Al\x01ice <alice@example.org>", "control character");
	expect_bad_line("Al\xffice <alice@example.org>", "not valid UTF-8");
	expect_bad_line("alice example.org", "no @domain");
	expect_bad_line("alice @example.org", "white space");
}

static void
test_name_longer_than_buffer_is_refused(void **state)
{
	struct addr a;
	const char *why = NULL;
	char n[8];
	const char *line = "A Very Long Name <a@example.org>";

	assert_int_equal(addr_parse_line(line, strlen(line), 0, &a, n, sizeof(n), &why), -1);
	assert_string_contains(why, "too long");
}

/* One From: parser for posting and commands (addr_parse_mailbox). */
struct mailbox_row {
	const char *value; /* as it stands in the message, folding included */
	const char *addr;  /* NULL: no address */
	const char *name;
};

static const struct mailbox_row mailbox_rows[] = {
    {"Ann <ann@example.org>", "ann@example.org", "Ann"},
    {" \"Ann, B.\" <ann@example.org>", "ann@example.org", "Ann, B."},
    {"ann@example.org (Ann)", "ann@example.org", "Ann"},
    {"ann@example.org", "ann@example.org", ""},
    {"<ann@example.org>", "ann@example.org", ""},
    {"Ann\r\n <ann@example.org>", "ann@example.org", "Ann"},
    {"ann@example.org, bob@example.net", "ann@example.org", ""},
    {"\"x, y\" <ann@example.org>, Bob <bob@example.net>", "ann@example.org", "x, y"},
    {"=?utf-8?q?Ren=C3=A9?= <rene@example.org>", "rene@example.org", "Ren\xc3\xa9"},
    {"Ren\xe9 <rene@example.org>", "rene@example.org", ""}, /* Latin-1: name dropped */
    {"<ann@example.org> (work)", "ann@example.org", ""},
    {"J\xc3\xbcrgen <j\xc3\xbcrgen@example.de>", "j\xc3\xbcrgen@example.de", "J\xc3\xbcrgen"},
    {"undisclosed-recipients:;", NULL, ""},
    {"", NULL, ""},
    {"Ann <ann@example.org", NULL, ""},
    {"Ann <ann@@example.org>", NULL, ""},
};

static void
test_from_mailbox_in_every_form(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(mailbox_rows) / sizeof(mailbox_rows[0]); i++) {
		const struct mailbox_row *r = &mailbox_rows[i];
		struct addr a;
		const char *why = NULL;
		char name[256], buf[300];
		int rc =
		    addr_parse_mailbox(r->value, strlen(r->value), &a, name, sizeof(name), &why);

		if (r->addr == NULL) {
			if (rc == 0)
				fail_msg("row %zu '%s': expected no address, got one", i, r->value);
			assert_non_null(why);
			continue;
		}
		if (rc != 0)
			fail_msg("row %zu '%s': expected <%s>, got an error: %s", i, r->value,
			         r->addr, why);
		addr_format(&a, buf, sizeof(buf));
		if (strcmp(buf, r->addr) != 0 || strcmp(name, r->name) != 0)
			fail_msg("row %zu '%s': expected <%s> '%s', got <%s> '%s'", i, r->value,
			         r->addr, r->name, buf, name);
	}
}

static void
test_from_mailbox_without_name_buffer(void **state)
{
	struct addr a;
	char name[4] = "xyz";

	(void)state;
	assert_int_equal(addr_parse_mailbox("Ann <ann@example.org>", 21, &a, NULL, 0, NULL), 0);
	assert_string_equal(a.domain, "example.org");
	/* A name that does not fit is cut at a UTF-8 boundary, never split. */
	assert_int_equal(
	    addr_parse_mailbox("\xc3\xa9\xc3\xa9 <a@b.example>", 19, &a, name, sizeof(name), NULL),
	    0);
	assert_string_equal(name, "\xc3\xa9");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_dot_atom_addresses_are_valid),
	    cmocka_unit_test(test_quoted_local_parts_are_valid),
	    cmocka_unit_test(test_address_literals_are_valid),
	    cmocka_unit_test(test_malformed_local_parts_are_refused),
	    cmocka_unit_test(test_malformed_domains_are_refused),
	    cmocka_unit_test(test_length_limits_are_enforced),
	    cmocka_unit_test(test_utf8_needs_the_flag_and_must_be_well_formed),
	    cmocka_unit_test(test_nul_byte_is_refused),
	    cmocka_unit_test(test_keys_fold_case_and_needless_quotes),
	    cmocka_unit_test(test_same_mailbox_written_differently_has_one_key),
	    cmocka_unit_test(test_domain_key_and_small_buffers),
	    cmocka_unit_test(test_member_lines_in_every_form),
	    cmocka_unit_test(test_bad_member_lines_say_why),
	    cmocka_unit_test(test_name_longer_than_buffer_is_refused),
	    cmocka_unit_test(test_from_mailbox_in_every_form),
	    cmocka_unit_test(test_from_mailbox_without_name_buffer),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
