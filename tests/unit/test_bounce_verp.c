/*
 * test_bounce_verp.c - VERP addresses and the verp list setting.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

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

/* Signed VERP addresses (like SRS): each row is what came back to
 * LIST-bounces+EXT, given as a change made to the address the list sent
 * for rcpt, and whether the check must name rcpt (1) or refuse (0). */
static void
test_signed_verp_checks_what_comes_back(void **state)
{
	struct verp_key k = {{0}, 32}, other = {{0}, 32};
	const struct {
		const char *name, *rcpt;
		int change; /* 0 none, 1 upper-case all, 2 drop sig, 3 flip a sig letter,
		               4 another list, 5 another key */
		int ok;
	} rows[] = {
	    {"as sent", "bob@example.net", 0, 1},
	    {"upper-cased by an MTA", "bob@example.net", 1, 1},
	    {"local part with = and +", "a=b+c@example.net", 0, 1},
	    {"quoted local part", "\"john doe\"@example.net", 0, 1},
	    {"UTF-8 local part", "j\xc3\xbcrgen@example.net", 0, 1},
	    {"signature dropped", "bob@example.net", 2, 0},
	    {"one letter of the signature changed", "bob@example.net", 3, 0},
	    {"signed for another list", "bob@example.net", 4, 0},
	    {"signed with another key", "bob@example.net", 5, 0},
	};

	for (int i = 0; i < 32; i++)
		k.k[i] = (unsigned char)i, other.k[i] = (unsigned char)(i + 1);
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		char enc[512], back[512], ext[512], from[512];
		const struct verp_key *kk = rows[i].change == 5 ? &other : &k;
		const char *list = rows[i].change == 4 ? "other" : "dev";
		char *plus, *at;
		int n;

		if (verp_encode_signed(kk, list, "lists.example.org", rows[i].rcpt, enc,
		                       sizeof(enc)) < 0)
			fail_msg("%s: could not encode %s", rows[i].name, rows[i].rcpt);
		/* What delivery sends is the same address. */
		verp_sender(kk,
		            rows[i].change == 4 ? "other-bounces@lists.example.org"
		                                : "dev-bounces@lists.example.org",
		            rows[i].rcpt, from, sizeof(from));
		if (strcmp(from, enc) != 0)
			fail_msg("%s: verp_sender gave %s, verp_encode_signed %s", rows[i].name,
			         from, enc);
		n = verp_decode_address(enc, list, "lists.example.org", back, sizeof(back));
		if (n <= 0)
			fail_msg("%s: %s does not decode", rows[i].name, enc);
		/* The extension as smtp_in stores it: between "bounces+" and '@'
		 * (quotes kept). */
		plus = strstr(enc, "-bounces+") + 9;
		at = strrchr(enc, '@');
		snprintf(ext, sizeof(ext), "%.*s", (int)(at - plus), plus);
		if (ext[strlen(ext) - 1] == '"')
			ext[strlen(ext) - 1] = '\0';
		if (rows[i].change == 1)
			for (char *p = ext; *p; p++)
				*p = (char)toupper((unsigned char)*p);
		if (rows[i].change == 2)
			*strrchr(ext, '+') = '\0';
		if (rows[i].change == 3) {
			char *c = strrchr(ext, '+') + 1;
			*c = *c == 'a' ? 'b' : 'a';
		}
		n = verp_check(&k, "dev", "lists.example.org", ext, strlen(ext), back,
		               sizeof(back));
		if ((n > 0) != rows[i].ok)
			fail_msg("%s: verp_check(%s) gave %d, expected %s", rows[i].name, ext, n,
			         rows[i].ok ? "the member" : "0 (refused)");
		if (rows[i].ok && strcasecmp(back, rows[i].rcpt) != 0)
			fail_msg("%s: expected %s, got %s", rows[i].name, rows[i].rcpt, back);
	}
}

/* A member address too long to sign keeps the list's own return path:
 * never an unsigned VERP address, whose bounces would be ignored. */
static void
test_verp_sender_too_long_to_sign_keeps_the_list_address(void **state)
{
	struct verp_key k = {{1}, 32};
	char rcpt[300], out[600];

	/* 60-octet local part, 155-octet domain: the VERP address fits in 254
	 * octets unsigned (246), not with "+SIG" (259). */
	memset(rcpt, 'a', 60);
	rcpt[60] = '@';
	memset(rcpt + 61, 'b', 147);
	snprintf(rcpt + 208, sizeof(rcpt) - 208, ".example");
	assert_int_equal(verp_encode("dev", "lists.example.org", rcpt, out, sizeof(out)), 246);
	verp_sender(&k, "dev-bounces@lists.example.org", rcpt, out, sizeof(out));
	assert_string_equal(out, "dev-bounces@lists.example.org");
	verp_sender(&k, "dev-bounces@lists.example.org", "bob@example.net", out, sizeof(out));
	assert_int_equal(strncmp(out, "dev-bounces+bob=example.net+", 28), 0);
}

/* The post tag: found where a report quotes it (saying whether the post
 * was VERP'd), refused when forged, another list's, or too old. */
static void
test_report_tag_is_found_only_when_genuine(void **state)
{
	struct verp_key k = {{7}, 32};
	char tag[160], msg[600];
	long long now = 1800000000;

	assert_true(
	    verp_tag_make(&k, "dev", "lists.example.org", "ABC123", now, 0, tag, sizeof(tag)) > 0);
	snprintf(msg, sizeof(msg), "Subject: x\r\n\r\n> x-fanmail-report:  %s\r\n", tag);
	assert_int_equal(verp_tag_find(&k, "dev", "lists.example.org", msg, strlen(msg), now + 10),
	                 VERP_TAG_BATCHED);
	assert_int_equal(verp_tag_find(&k, "other", "lists.example.org", msg, strlen(msg), now),
	                 VERP_TAG_NONE);
	assert_int_equal(verp_tag_find(&k, "dev", "lists.example.org", msg, strlen(msg),
	                               now + VERP_TAG_MAX_AGE + 1),
	                 VERP_TAG_NONE);
	/* The flag is signed: a VERP'd post's tag cannot pass as a batched one. */
	assert_true(
	    verp_tag_make(&k, "dev", "lists.example.org", "ABC123", now, 1, tag, sizeof(tag)) > 0);
	snprintf(msg, sizeof(msg), "X-Fanmail-Report: %s\r\n", tag);
	assert_int_equal(verp_tag_find(&k, "dev", "lists.example.org", msg, strlen(msg), now),
	                 VERP_TAG_VERPED);
	*strstr(msg, ".v.") = '\0';
	strcat(msg, ".b.");
	strcat(msg, strrchr(tag, '.') + 1);
	assert_int_equal(verp_tag_find(&k, "dev", "lists.example.org", msg, strlen(msg), now),
	                 VERP_TAG_NONE);
	snprintf(msg, sizeof(msg), "X-Fanmail-Report: %s\r\n", tag);
	msg[strlen(msg) - 3] ^= 1; /* the signature's last letter */
	assert_int_equal(verp_tag_find(&k, "dev", "lists.example.org", msg, strlen(msg), now),
	                 VERP_TAG_NONE);
	assert_int_equal(verp_tag_make(&k, "dev", "l.example", "a b", now, 0, tag, sizeof(tag)),
	                 -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_signed_verp_checks_what_comes_back),
	    cmocka_unit_test(test_report_tag_is_found_only_when_genuine),
	    cmocka_unit_test(test_verp_sender_too_long_to_sign_keeps_the_list_address),
	    cmocka_unit_test(test_encode_puts_member_after_plus),
	    cmocka_unit_test(test_encode_quoted_local_part_quotes_whole_local),
	    cmocka_unit_test(test_encode_refuses_non_address_and_overlong),
	    cmocka_unit_test(test_decode_round_trips_local_parts_with_equals_and_plus),
	    cmocka_unit_test(test_decode_tolerates_case_quotes_brackets_and_dash),
	    cmocka_unit_test(test_decode_refuses_other_addresses),
	    cmocka_unit_test(test_every_n_posts_verps_multiples_of_n),
	    cmocka_unit_test(test_verp_setting_is_validated_by_the_table),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
