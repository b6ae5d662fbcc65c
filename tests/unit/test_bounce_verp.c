/*
 * test_bounce_verp.c - VERP addresses and the verp list setting.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "conf/conf.h"
#include "lists/verp.h"

static void
test_encode_puts_member_after_plus(void **state)
{
	char buf[300];

	assert_int_equal(
	    verp_encode("dev", "lists.example.org", "bob@example.net", buf, sizeof(buf)),
	    (int)strlen("dev-bounces+bob=example.net@lists.example.org"));
	assert_string_equal(buf, "dev-bounces+bob=example.net@lists.example.org");
}

static void
test_encode_quoted_local_part_quotes_whole_local(void **state)
{
	char buf[300], back[300];

	assert_true(verp_encode("dev", "l.example", "\"john doe\"@example.net", buf, sizeof(buf)) >
	            0);
	assert_string_equal(buf, "\"dev-bounces+john doe=example.net\"@l.example");
	assert_true(verp_decode_address(buf, "dev", "l.example", back, sizeof(back)) > 0);
	assert_string_equal(back, "\"john doe\"@example.net");
}

static void
test_encode_refuses_non_address_and_overlong(void **state)
{
	char buf[600], longlocal[300];

	assert_int_equal(verp_encode("dev", "l.example", "no-at-sign", buf, sizeof(buf)), -1);
	assert_int_equal(verp_encode("dev", "l.example", "@example.net", buf, sizeof(buf)), -1);
	memset(longlocal, 'a', 250);
	strcpy(longlocal + 250, "@x.org");
	assert_int_equal(verp_encode("dev", "l.example", longlocal, buf, sizeof(buf)), -1);
	assert_int_equal(verp_encode("dev", "l.example", "bob@example.net", buf, 10), -1);
}

static void
test_decode_round_trips_local_parts_with_equals_and_plus(void **state)
{
	const char *rcpts[] = {"bob@example.net", "a=b@example.net", "x+tag@example.net",
	                       "o'neil@sub.example.co.uk", "first.last@[192.0.2.1]"};
	char enc[300], dec[300];

	for (size_t i = 0; i < sizeof(rcpts) / sizeof(rcpts[0]); i++) {
		assert_true(verp_encode("dev", "lists.example.org", rcpts[i], enc, sizeof(enc)) >
		            0);
		assert_true(verp_decode_address(enc, "dev", "lists.example.org", dec, sizeof(dec)) >
		            0);
		assert_string_equal(dec, rcpts[i]);
	}
}

static void
test_decode_tolerates_case_quotes_brackets_and_dash(void **state)
{
	char dec[300];

	assert_true(verp_decode_address("<DEV-BOUNCES+Bob=EXAMPLE.NET@Lists.Example.ORG>", "dev",
	                                "lists.example.org", dec, sizeof(dec)) > 0);
	assert_string_equal(dec, "Bob@example.net");
	assert_true(verp_decode_address("\"dev-bounces+bob=example.net\"@lists.example.org", "dev",
	                                "lists.example.org", dec, sizeof(dec)) > 0);
	assert_string_equal(dec, "bob@example.net");
	assert_true(verp_decode_address("dev-bounces-bob=example.net@lists.example.org.", "dev",
	                                "lists.example.org", dec, sizeof(dec)) > 0);
	assert_string_equal(dec, "bob@example.net");
	assert_true(verp_decode("\"bob\"=example.net", 18, dec, sizeof(dec)) > 0);
	assert_string_equal(dec, "bob@example.net");
}

static void
test_decode_refuses_other_addresses(void **state)
{
	char dec[300];

	assert_int_equal(verp_decode_address("dev-bounces@lists.example.org", "dev",
	                                     "lists.example.org", dec, sizeof(dec)),
	                 -1);
	assert_int_equal(verp_decode_address("other-bounces+bob=example.net@lists.example.org",
	                                     "dev", "lists.example.org", dec, sizeof(dec)),
	                 -1);
	assert_int_equal(verp_decode_address("dev-bounces+bob=example.net@elsewhere.org", "dev",
	                                     "lists.example.org", dec, sizeof(dec)),
	                 -1);
	assert_int_equal(verp_decode("bob", 3, dec, sizeof(dec)), -1);
	assert_int_equal(verp_decode("=example.net", 12, dec, sizeof(dec)), -1);
	assert_int_equal(verp_decode("bob=exa mple", 12, dec, sizeof(dec)), -1);
}

static void
test_every_n_posts_verps_multiples_of_n(void **state)
{
	int n = 0;

	for (long long k = 1; k <= 30; k++)
		n += verp_post_is_verp(VERP_EVERY, 10, k);
	assert_int_equal(n, 3);
	assert_true(verp_post_is_verp(VERP_EVERY, 10, 20));
	assert_false(verp_post_is_verp(VERP_EVERY, 10, 21));
	assert_true(verp_post_is_verp(VERP_EVERY, 1, 7));
	assert_false(verp_post_is_verp(VERP_EVERY, 0, 10));
	assert_true(verp_post_is_verp(VERP_ALWAYS, 0, 1));
	assert_false(verp_post_is_verp(VERP_NEVER, 1, 1));
}

static void
test_verp_setting_is_validated_by_the_table(void **state)
{
	char canon[64], err[256];
	enum verp_mode m;

	assert_int_equal(conf_list_check("verp", "Always", canon, sizeof(canon), err, sizeof(err)),
	                 0);
	assert_string_equal(canon, "always");
	assert_int_equal(verp_mode_parse(canon, &m), 0);
	assert_int_equal(m, VERP_ALWAYS);
	assert_int_equal(
	    conf_list_check("verp", "sometimes", canon, sizeof(canon), err, sizeof(err)), -1);
	assert_int_equal(conf_list_check("verp_every", "5", canon, sizeof(canon), err, sizeof(err)),
	                 0);
	assert_int_equal(conf_list_check("verp_every", "x", canon, sizeof(canon), err, sizeof(err)),
	                 -1);
}

static void
test_sender_of_a_copy_names_its_recipient(void **state)
{
	static const struct {
		const char *from, *rcpt, *want, *why;
	} w[] = {
	    {"dev-bounces@l.example", "bob@example.net", "dev-bounces+bob=example.net@l.example",
	     "the list's bounce address gets the member after '+'"},
	    {"Dev-Bounces@l.example", "bob@example.net", "Dev-bounces+bob=example.net@l.example",
	     "the suffix matches in any case"},
	    {"owner@x.example", "bob@example.net", "owner+bob=example.net@x.example",
	     "another sender gets the same extension"},
	    {"dev-bounces", "bob@example.net", "dev-bounces", "a sender with no '@' is kept"},
	    {"dev-bounces@l.example", "bob", "dev-bounces@l.example",
	     "a recipient with no '@' keeps the sender"},
	};
	char out[600];

	for (size_t i = 0; i < sizeof(w) / sizeof(w[0]); i++) {
		verp_sender(w[i].from, w[i].rcpt, out, sizeof(out));
		if (strcmp(out, w[i].want) != 0)
			fail_msg("%s: %s for %s: expected %s, got %s", w[i].why, w[i].from,
			         w[i].rcpt, w[i].want, out);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_encode_puts_member_after_plus),
	    cmocka_unit_test(test_encode_quoted_local_part_quotes_whole_local),
	    cmocka_unit_test(test_encode_refuses_non_address_and_overlong),
	    cmocka_unit_test(test_decode_round_trips_local_parts_with_equals_and_plus),
	    cmocka_unit_test(test_decode_tolerates_case_quotes_brackets_and_dash),
	    cmocka_unit_test(test_decode_refuses_other_addresses),
	    cmocka_unit_test(test_every_n_posts_verps_multiples_of_n),
	    cmocka_unit_test(test_verp_setting_is_validated_by_the_table),
	    cmocka_unit_test(test_sender_of_a_copy_names_its_recipient),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
