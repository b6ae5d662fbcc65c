/*
 * test_commands_build.c - composing notices: headers, RFC 2047 subjects,
 * folding, quoted-printable bodies, attachments, CRLF everywhere.
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

#include "mail/build.h"

static char *
build(const struct build_msg *m, size_t *len)
{
	char *out = NULL;
	const char *why = NULL;
	size_t n = 0;

	if (build_message(m, &out, &n, NULL, &why) != 0)
		fail_msg("build_message failed: %s", why);
	if (len)
		*len = n;
	return out;
}

/* Every line ends in CRLF, no bare CR or LF, no line over 998 octets. */
static void
assert_crlf_only(const char *s, size_t n)
{
	size_t col = 0;

	for (size_t i = 0; i < n; i++) {
		if (s[i] == '\r') {
			if (i + 1 >= n || s[i + 1] != '\n')
				fail_msg("bare CR at offset %zu", i);
			i++;
			col = 0;
			continue;
		}
		if (s[i] == '\n')
			fail_msg("bare LF at offset %zu", i);
		if (++col > 998)
			fail_msg("line longer than 998 octets at offset %zu", i);
	}
	if (n < 2 || s[n - 2] != '\r' || s[n - 1] != '\n')
		fail_msg("message does not end in CRLF");
}

/* The header block only (up to the blank line). */
static char *
headers_of(const char *s)
{
	const char *end = strstr(s, "\r\n\r\n");
	return strndup(s, end ? (size_t)(end - s) + 2 : strlen(s));
}

static void
test_plain_notice_has_every_required_header(void **state)
{
	struct build_msg m = {
	    .from_name = "dev list",
	    .from_addr = "dev-request@lists.example.org",
	    .to_addr = "bob@example.net",
	    .subject = "confirm 0123abcd",
	    .hostname = "mx.example.org",
	    .auto_submitted = "auto-replied",
	    .body = "Hello\nSecond line\n",
	    .date = 1798534800, /* 2026-12-29 09:00:00 UTC */
	};
	size_t n;
	char *out = build(&m, &n);
	char *h = headers_of(out);

	assert_crlf_only(out, n);
	assert_string_contains(h, "From: dev list <dev-request@lists.example.org>\r\n");
	assert_string_contains(h, "To: bob@example.net\r\n");
	assert_string_contains(h, "Subject: confirm 0123abcd\r\n");
	assert_string_contains(h, "Date: Tue, 29 Dec 2026 09:00:00 +0000\r\n");
	assert_string_contains(h, "Message-ID: <");
	assert_string_contains(h, "@mx.example.org>\r\n");
	assert_string_contains(h, "Auto-Submitted: auto-replied\r\n");
	assert_string_contains(h, "MIME-Version: 1.0\r\n");
	assert_string_contains(h, "Content-Type: text/plain; charset=us-ascii\r\n");
	assert_string_contains(out, "\r\n\r\nHello\r\nSecond line\r\n");
	assert_string_not_contains(h, "In-Reply-To");
	free(h);
	free(out);
}

/* A notice quoting a subject with a 2000-octet word (a post's decoded
 * Subject can be that long): no line over 998 octets. */
static void
test_subject_word_longer_than_a_line_is_encoded(void **state)
{
	char subject[2100];
	struct build_msg m = {
	    .from_addr = "dev-request@lists.example.org",
	    .to_addr = "bob@example.net",
	    .subject = subject,
	    .hostname = "mx.example.org",
	    .body = "Hello\n",
	};
	size_t n;
	char *out;

	(void)state;
	snprintf(subject, sizeof(subject), "Held: ");
	memset(subject + 6, 'x', 2000);
	subject[2006] = '\0';
	out = build(&m, &n);
	assert_crlf_only(out, n);
	assert_non_null(strstr(out, "Subject: =?UTF-8?B?"));
	free(out);
}

static void
test_message_ids_differ_and_use_hostname(void **state)
{
	char a[BUILD_MSGID_MAX], b[BUILD_MSGID_MAX];

	assert_true(build_message_id("mx.example.org", a, sizeof(a)) > 0);
	assert_true(build_message_id("mx.example.org", b, sizeof(b)) > 0);
	assert_string_not_equal(a, b);
	assert_int_equal(a[0], '<');
	assert_string_contains(a, "@mx.example.org>");
}

static void
test_non_ascii_subject_is_rfc2047_encoded(void **state)
{
	/* "Grüße" in UTF-8 */
	struct build_msg m = {.from_addr = "a@example.org",
	                      .to_addr = "b@example.org",
	                      .subject = "Gr\xc3\xbc\xc3\x9f"
	                                 "e",
	                      .hostname = "h",
	                      .body = "x"};
	char *out = build(&m, NULL);

	assert_string_contains(out, "Subject: =?UTF-8?B?R3LDvMOfZQ==?=\r\n");
	free(out);
}

static void
test_long_encoded_subject_folds_without_splitting_utf8(void **state)
{
	char subject[400] = "";
	struct build_msg m = {
	    .from_addr = "a@example.org", .to_addr = "b@example.org", .hostname = "h", .body = "x"};
	char *out, *h, *line, *save = NULL;
	int words = 0;

	/* 100 x "é" (2 octets each): 200 octets, several encoded-words. */
	for (int i = 0; i < 100; i++)
		strcat(subject, "\xc3\xa9");
	m.subject = subject;
	out = build(&m, NULL);
	h = headers_of(out);
	for (line = strtok_r(h, "\r\n", &save); line; line = strtok_r(NULL, "\r\n", &save)) {
		assert_true(strlen(line) <= 78 + 9);
		for (char *w = strstr(line, "=?UTF-8?B?"); w; w = strstr(w + 1, "=?UTF-8?B?")) {
			char *end = strstr(w, "?=");
			size_t b64;
			assert_non_null(end);
			assert_true(end + 2 - w <= 75);
			/* Whole 2-octet characters in each word: even octet count. */
			b64 = (size_t)(end - (w + 10));
			assert_true(b64 % 4 == 0);
			words++;
		}
	}
	assert_true(words >= 4);
	free(h);
	free(out);
}

static void
test_header_injection_is_flattened(void **state)
{
	struct build_msg m = {.from_addr = "a@example.org",
	                      .to_addr = "b@example.org",
	                      .subject = "Re: hi\r\nBcc: victim@example.com",
	                      .hostname = "h",
	                      .body = "x"};
	char *out = build(&m, NULL);

	assert_string_not_contains(out, "\r\nBcc:");
	assert_string_contains(out, "Subject: Re: hi Bcc: victim@example.com\r\n");
	free(out);
}

static void
test_reply_carries_in_reply_to_and_references(void **state)
{
	struct build_msg m = {.from_addr = "a@example.org",
	                      .to_addr = "b@example.org",
	                      .subject = "Re: x",
	                      .hostname = "h",
	                      .in_reply_to = "<orig@example.net>",
	                      .references = "<r1@example.net> <r2@example.net>",
	                      .body = "x"};
	char *out = build(&m, NULL);

	assert_string_contains(out, "In-Reply-To: <orig@example.net>\r\n");
	assert_non_null(
	    strstr(out, "References: <r1@example.net> <r2@example.net> <orig@example.net>\r\n"));
	free(out);
}

static void
test_display_names_are_quoted_or_encoded(void **state)
{
	struct build_msg m = {.from_name = "Smith, John",
	                      .from_addr = "a@example.org",
	                      .to_name = "J\xc3\xbcrgen",
	                      .to_addr = "b@example.org",
	                      .subject = "x",
	                      .hostname = "h",
	                      .body = "x"};
	char *out = build(&m, NULL);

	assert_string_contains(out, "From: \"Smith, John\" <a@example.org>\r\n");
	assert_string_contains(out, "To: =?UTF-8?B?SsO8cmdlbg==?= <b@example.org>\r\n");
	free(out);
}

static void
test_non_ascii_body_is_quoted_printable(void **state)
{
	char body[300];
	struct build_msg m = {.from_addr = "a@example.org",
	                      .to_addr = "b@example.org",
	                      .subject = "x",
	                      .hostname = "h"};
	size_t n;
	char *out;

	snprintf(body, sizeof(body), "caf\xc3\xa9 trailing \n%0200d\n", 7);
	m.body = body;
	out = build(&m, &n);
	assert_crlf_only(out, n);
	assert_string_contains(out, "Content-Transfer-Encoding: quoted-printable\r\n");
	assert_string_contains(out, "caf=C3=A9 trailing=20\r\n");
	/* The 201-digit line is soft-broken into lines of at most 76. */
	for (const char *l = strstr(out, "\r\n\r\n") + 4; *l;) {
		const char *e = strstr(l, "\r\n");
		assert_true(e - l <= 76);
		l = e + 2;
	}
	free(out);
}

static void
test_attachment_makes_multipart_with_rfc822_part(void **state)
{
	const char *orig = "From: x@example.net\nSubject: held\n\nbody line\n";
	struct build_msg m = {.from_addr = "a@example.org",
	                      .to_addr = "b@example.org",
	                      .subject = "held post",
	                      .hostname = "h",
	                      .body = "please approve",
	                      .attach = orig,
	                      .attach_len = strlen(orig)};
	size_t n;
	char *out = build(&m, &n);
	char *ct = strstr(out, "Content-Type: multipart/mixed; boundary=\"");
	char boundary[64], marker[80];
	char *q;

	assert_crlf_only(out, n);
	assert_non_null(ct);
	ct += strlen("Content-Type: multipart/mixed; boundary=\"");
	q = strchr(ct, '"');
	snprintf(boundary, sizeof(boundary), "%.*s", (int)(q - ct), ct);
	snprintf(marker, sizeof(marker), "\r\n--%s--\r\n", boundary);
	assert_string_contains(out, marker);
	assert_string_contains(out, "Content-Type: message/rfc822\r\n");
	assert_non_null(
	    strstr(out, "\r\n\r\nFrom: x@example.net\r\nSubject: held\r\n\r\nbody line\r\n"));
	free(out);
}

static void
test_missing_addresses_are_refused(void **state)
{
	struct build_msg m = {.to_addr = "b@example.org", .subject = "x", .hostname = "h"};
	char *out = NULL;
	size_t n;
	const char *why = NULL;

	assert_int_equal(build_message(&m, &out, &n, NULL, &why), -1);
	assert_non_null(why);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_plain_notice_has_every_required_header),
	    cmocka_unit_test(test_message_ids_differ_and_use_hostname),
	    cmocka_unit_test(test_subject_word_longer_than_a_line_is_encoded),
	    cmocka_unit_test(test_non_ascii_subject_is_rfc2047_encoded),
	    cmocka_unit_test(test_long_encoded_subject_folds_without_splitting_utf8),
	    cmocka_unit_test(test_header_injection_is_flattened),
	    cmocka_unit_test(test_reply_carries_in_reply_to_and_references),
	    cmocka_unit_test(test_display_names_are_quoted_or_encoded),
	    cmocka_unit_test(test_non_ascii_body_is_quoted_printable),
	    cmocka_unit_test(test_attachment_makes_multipart_with_rfc822_part),
	    cmocka_unit_test(test_missing_addresses_are_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
