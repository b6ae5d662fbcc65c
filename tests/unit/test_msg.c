/*
 * test_msg.c - the message parser: fields, unfolding, RFC 2047, Content-Type
 * with RFC 2231, transfer decoding, the MIME walk, all three line ends.
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

#include "mail/encode.h"
#include "mail/msg.h"

static char *
hdr(const struct msg *m, const char *name)
{
	return msg_header_text(m, name);
}

static void
check_basic(const char *text)
{
	struct msg m;
	char *v;

	assert_int_equal(msg_parse(&m, text, strlen(text)), 0);
	assert_int_equal(m.nhdrs, 4);
	v = hdr(&m, "subject");
	assert_string_equal(v, "a folded subject line");
	free(v);
	assert_true(msg_header_get(&m, "Subject", 0)->folded);
	assert_int_equal(msg_header_count(&m, "received"), 2);
	assert_non_null(msg_header_get(&m, "RECEIVED", 1));
	assert_null(msg_header_get(&m, "Received", 2));
	assert_int_equal(m.body_len, 6);
	assert_memory_equal(m.body, "body", 4);
	msg_free(&m);
}

static void
test_fields_and_body_with_every_line_end(void **state)
{
	check_basic("Received: a\r\nReceived: b\r\nSubject: a folded\r\n subject line\r\n"
	            "From: x@example.org\r\n\r\nbody\r\n");
	check_basic("Received: a\nReceived: b\nSubject: a folded\n subject line\n"
	            "From: x@example.org\n\nbody\n\n");
	check_basic("Received: a\rReceived: b\rSubject: a folded\r subject line\r"
	            "From: x@example.org\r\rbody\r\r");
}

static void
test_raw_value_and_whole_field_point_into_the_buffer(void **state)
{
	const char *t = "Subject:  hi\r\n there\r\nTo: y\r\n\r\n";
	struct msg m;
	const struct msg_header *h;

	assert_int_equal(msg_parse(&m, t, strlen(t)), 0);
	h = msg_header_get(&m, "subject", 0);
	assert_ptr_equal(h->start, t);
	assert_int_equal(h->len, strlen("Subject:  hi\r\n there\r\n"));
	assert_int_equal(h->value_len, strlen("  hi\r\n there"));
	assert_memory_equal(h->value, "  hi\r\n there", h->value_len);
	assert_string_equal(m.eol, "\r\n");
	assert_int_equal(m.body_len, 0);
	msg_free(&m);
}

static void
test_mbox_from_line_skipped_and_non_field_starts_body(void **state)
{
	const char *t = "From someone Sat Jan  1 00:00:00 2000\nSubject: x\nnot a field\nmore\n";
	struct msg m;

	assert_int_equal(msg_parse(&m, t, strlen(t)), 0);
	assert_int_equal(m.nhdrs, 1);
	assert_memory_equal(m.body, "not a field", 11);
	msg_free(&m);
}

static void
test_no_headers_is_all_body(void **state)
{
	const char *t = "\r\nhello\r\n";
	struct msg m;

	assert_int_equal(msg_parse(&m, t, strlen(t)), 0);
	assert_int_equal(m.nhdrs, 0);
	assert_int_equal(m.body_len, 7);
	msg_free(&m);
}

static void
check_decode(const char *in, const char *want, int words)
{
	int had = -1;
	char *out = msg_decode_words(in, strlen(in), &had);

	if (strcmp(out, want) != 0)
		fail_msg("decoding \"%s\": expected \"%s\", got \"%s\"", in, want, out);
	assert_int_equal(had, words);
	free(out);
}

static void
test_rfc2047_b_and_q_in_common_charsets(void **state)
{
	check_decode("=?utf-8?B?w6lsw6h2ZQ==?=", "\xc3\xa9l\xc3\xa8ve", 1);
	check_decode("=?UTF-8?Q?caf=C3=A9_au_lait?=", "caf\xc3\xa9 au lait", 1);
	check_decode("=?iso-8859-1?q?d=E9j=E0?= vu", "d\xc3\xa9j\xc3\xa0 vu", 1);
	check_decode("=?us-ascii?Q?plain?=", "plain", 1);
	check_decode("=?windows-1252?Q?=80?=", "\xe2\x82\xac", 1);
	check_decode("=?utf-8*fr?q?oui?=", "oui", 1);
	check_decode("no words here", "no words here", 0);
}

static void
test_rfc2047_space_between_words_dropped_but_not_around_text(void **state)
{
	check_decode("=?utf-8?q?a?= =?utf-8?q?b?=", "ab", 1);
	check_decode("=?utf-8?q?a?=\r\n =?utf-8?q?b?=", "ab", 1);
	check_decode("x =?utf-8?q?a?= y", "x a y", 1);
	check_decode("=?utf-8?q?a?= b =?utf-8?q?c?=", "a b c", 1);
}

static void
test_rfc2047_unknown_charset_or_malformed_kept_raw(void **state)
{
	check_decode("=?x-no-such-charset?q?abc?=", "=?x-no-such-charset?q?abc?=", 0);
	check_decode("=?utf-8?z?abc?=", "=?utf-8?z?abc?=", 0);
	check_decode("=?utf-8?q?abc", "=?utf-8?q?abc", 0);
	check_decode("=?utf-8?q?a b?=", "=?utf-8?q?a b?=", 0);
}

static void
test_encode_words_round_trips_and_folds(void **state)
{
	const char *s = "R\xc3\xa9union du comit\xc3\xa9 \xe2\x80\x94 "
	                "ordre du jour tr\xc3\xa8s long pour forcer plusieurs mots encod\xc3\xa9s";
	char *enc = encode_text(s, strlen(s), "\r\n", 66), *dec;
	char *line = enc;

	assert_string_contains(enc, "=?utf-8?");
	assert_string_contains(enc, "\r\n ");
	for (char *nl; (nl = strstr(line, "\r\n")) != NULL; line = nl + 2)
		assert_true(nl - line <= 76);
	dec = msg_decode_words(enc, strlen(enc), NULL);
	assert_string_equal(dec, s);
	free(enc);
	free(dec);
	enc = encode_text("plain ascii", 11, "\r\n", 60);
	assert_string_equal(enc, "plain ascii");
	free(enc);
}

static void
test_content_type_params_quoted_and_case(void **state)
{
	const char *v = " Multipart/Mixed; BOUNDARY=\"a b;c\" ; charset=UTF-8 (comment)";
	struct msg_ctype ct;

	assert_int_equal(msg_ctype_parse(v, strlen(v), &ct), 0);
	assert_string_equal(ct.type, "multipart");
	assert_string_equal(ct.subtype, "mixed");
	assert_string_equal(msg_ctype_param(&ct, "boundary"), "a b;c");
	assert_string_equal(msg_ctype_param(&ct, "charset"), "UTF-8");
	assert_true(msg_ctype_is(&ct, "multipart", NULL));
	msg_ctype_free(&ct);
}

static void
test_content_type_missing_or_broken_is_text_plain(void **state)
{
	struct msg_ctype ct;

	assert_int_equal(msg_ctype_parse("", 0, &ct), 0);
	assert_true(msg_ctype_is(&ct, "text", "plain"));
	msg_ctype_free(&ct);
	assert_int_equal(msg_ctype_parse("garbage", 7, &ct), 0);
	assert_true(msg_ctype_is(&ct, "text", "plain"));
	msg_ctype_free(&ct);
	/* no Content-Type field at all (mail/downgrade.c passed NULL) */
	assert_int_equal(msg_ctype_parse(NULL, 0, &ct), 0);
	assert_true(msg_ctype_is(&ct, "text", "plain"));
	msg_ctype_free(&ct);
}

static void
test_rfc2231_continuations_and_charset(void **state)
{
	const char *v = "application/pdf; name*1*=%C3%A9.pdf; name*0*=utf-8'fr'r%C3%A9sum;"
	                " title*0=\"part one \"; title*1=two";
	struct msg_ctype ct;

	assert_int_equal(msg_ctype_parse(v, strlen(v), &ct), 0);
	assert_string_equal(msg_ctype_param(&ct, "name"), "r\xc3\xa9sum\xc3\xa9.pdf");
	assert_string_equal(msg_ctype_param(&ct, "title"), "part one two");
	msg_ctype_free(&ct);
	v = "text/plain; filename*=iso-8859-1''caf%E9.txt";
	assert_int_equal(msg_ctype_parse(v, strlen(v), &ct), 0);
	assert_string_equal(msg_ctype_param(&ct, "filename"), "caf\xc3\xa9.txt");
	msg_ctype_free(&ct);
}

static void
test_transfer_decoding_base64_and_qp(void **state)
{
	const char *qp;
	size_t n;
	char *out;

	out = msg_decode_body("base64", "aGVs\r\nbG8g\nd29y bGQ=\r\n", 22, &n);
	assert_int_equal(n, 11);
	assert_string_equal(out, "hello world");
	free(out);
	qp = "caf=C3=A9 =\r\nsoft  \r\nx=3D=\nend=";
	out = msg_decode_body(" Quoted-Printable", qp, strlen(qp), &n);
	assert_string_equal(out, "caf\xc3\xa9 soft\r\nx=end");
	free(out);
	out = msg_decode_body("quoted-printable", "bad =ZZ and =\rcr", 16, &n);
	assert_string_equal(out, "bad =ZZ and cr");
	free(out);
	out = msg_decode_body(NULL, "as is", 5, &n);
	assert_string_equal(out, "as is");
	free(out);
}

struct seen {
	int n;
	char desc[16][200];
};

static int
record(const struct msg_part *p, void *arg)
{
	struct seen *s = arg;

	if (s->n < 16) {
		snprintf(s->desc[s->n], sizeof(s->desc[0]), "%d %s/%s %.*s", p->depth, p->ct->type,
		         p->ct->subtype, (int)(p->body_len > 20 ? 20 : p->body_len), p->body);
		s->n++;
	}
	return 0;
}

static const char nested[] = "Content-Type: multipart/mixed; boundary=outer\r\n\r\n"
                             "preamble\r\n"
                             "--outer\r\n"
                             "Content-Type: multipart/alternative; boundary=\"inner\"\r\n\r\n"
                             "--inner\r\n"
                             "\r\n"
                             "plain text\r\n"
                             "--inner\r\n"
                             "Content-Type: text/html\r\n\r\n"
                             "<p>html</p>\r\n"
                             "--inner--\r\n"
                             "--outer\r\n"
                             "Content-Type: message/rfc822\r\n\r\n"
                             "Subject: inner\r\n\r\n"
                             "inner body\r\n"
                             "--outer--\r\n"
                             "epilogue\r\n";

static void
test_walk_nested_multiparts_and_message_rfc822(void **state)
{
	struct seen s = {0};

	assert_int_equal(msg_walk(nested, strlen(nested), record, &s), 0);
	assert_int_equal(s.n, 6);
	assert_string_equal(s.desc[1], "1 multipart/alternative --inner\r\n\r\nplain tex");
	assert_string_equal(s.desc[2], "2 text/plain plain text");
	assert_string_equal(s.desc[3], "2 text/html <p>html</p>");
	assert_string_equal(s.desc[4], "1 message/rfc822 Subject: inner\r\n\r\nin");
	assert_string_equal(s.desc[5], "2 text/plain inner body");
}

static void
test_walk_with_lf_only_and_missing_close(void **state)
{
	const char *t = "Content-Type: multipart/mixed; boundary=b\n\n--b\n\none\n--b\n\ntwo\n";
	struct seen s = {0};

	assert_int_equal(msg_walk(t, strlen(t), record, &s), 0);
	assert_int_equal(s.n, 3);
	assert_string_equal(s.desc[1], "1 text/plain one");
	assert_string_equal(s.desc[2], "1 text/plain two\n");
}

static int
stop_at_two(const struct msg_part *p, void *arg)
{
	return p->index == 2 ? 42 : 0;
}

static void
test_walk_stops_when_callback_says_so(void **state)
{
	assert_int_equal(msg_walk(nested, strlen(nested), stop_at_two, NULL), 42);
}

static void
test_multipart_close_offset(void **state)
{
	const char *body = "--b\r\n\r\none\r\n--b--\r\nepi";
	long off = msg_multipart_close(body, strlen(body), "b");

	assert_int_equal(off, strlen("--b\r\n\r\none"));
	assert_int_equal(msg_multipart_close("--b\r\n", 5, "b"), -1);
}

static void
test_deep_nesting_is_bounded(void **state)
{
	char *buf = malloc(100000), *p = buf;
	struct seen s = {0};

	for (int i = 0; i < 200; i++)
		p += sprintf(p, "Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n", i,
		             i);
	strcpy(p, "\r\nleaf\r\n");
	assert_int_equal(msg_walk(buf, strlen(buf), record, &s), 0);
	assert_int_equal(s.n, 16);
	free(buf);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_fields_and_body_with_every_line_end),
	    cmocka_unit_test(test_raw_value_and_whole_field_point_into_the_buffer),
	    cmocka_unit_test(test_mbox_from_line_skipped_and_non_field_starts_body),
	    cmocka_unit_test(test_no_headers_is_all_body),
	    cmocka_unit_test(test_rfc2047_b_and_q_in_common_charsets),
	    cmocka_unit_test(test_rfc2047_space_between_words_dropped_but_not_around_text),
	    cmocka_unit_test(test_rfc2047_unknown_charset_or_malformed_kept_raw),
	    cmocka_unit_test(test_encode_words_round_trips_and_folds),
	    cmocka_unit_test(test_content_type_params_quoted_and_case),
	    cmocka_unit_test(test_content_type_missing_or_broken_is_text_plain),
	    cmocka_unit_test(test_rfc2231_continuations_and_charset),
	    cmocka_unit_test(test_transfer_decoding_base64_and_qp),
	    cmocka_unit_test(test_walk_nested_multiparts_and_message_rfc822),
	    cmocka_unit_test(test_walk_with_lf_only_and_missing_close),
	    cmocka_unit_test(test_walk_stops_when_callback_says_so),
	    cmocka_unit_test(test_multipart_close_offset),
	    cmocka_unit_test(test_deep_nesting_is_bounded),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
