/*
 * test_downgrade.c - 8-bit headers to encoded words, 8-bit bodies to
 * quoted-printable (mail/downgrade.h). Each row: a message, the flags, and
 * what must (or must not) be in the result; every result is checked to be
 * 7-bit with no line over 78 octets when fully downgraded.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mail/downgrade.h"
#include "mail/encode.h"
#include "mail/msg.h"

struct row {
	const char *what;
	const char *in;
	int flags;
	int rc;            /* 0 or -1 */
	const char *has;   /* a substring of the result (or of why) */
	const char *hasnt; /* not in the result */
};

static const struct row rows[] = {
    {"unstructured subject encoded", "Subject: Grüße\r\n\r\nx\r\n", DOWNGRADE_HEADERS, 0,
     "Subject: =?utf-8?b?R3LDvMOfZQ==?=", NULL},
    {"display name encoded, address kept", "From: Jörg <j@x.test>\r\n\r\nx\r\n", DOWNGRADE_HEADERS,
     0, "<j@x.test>", "Jörg"},
    {"quoted display name encoded", "To: \"Müller, A\" <a@x.test>, b@x.test\r\n\r\nx\r\n",
     DOWNGRADE_HEADERS, 0, "b@x.test", "Müller"},
    {"non-ASCII local part needs SMTPUTF8", "From: Jörg <jörg@x.test>\r\n\r\nx\r\n",
     DOWNGRADE_HEADERS, -1, "From header field has a non-ASCII address", NULL},
    {"non-ASCII bare address needs SMTPUTF8", "Cc: jörg@x.test\r\n\r\nx\r\n", DOWNGRADE_HEADERS, -1,
     "Cc header field", NULL},
    {"non-ASCII domain needs SMTPUTF8", "To: A <a@bücher.test>\r\n\r\nx\r\n", DOWNGRADE_HEADERS, -1,
     "To header field", NULL},
    {"message-id encapsulated", "Message-ID: <ü@x.test>\r\n\r\nx\r\n", DOWNGRADE_HEADERS, 0,
     "Downgraded-Message-ID: =?utf-8?", NULL},
    {"file name encoded inside its quotes",
     "Content-Type: application/pdf; name=\"Bücher.pdf\"\r\nContent-Transfer-Encoding: "
     "base64\r\n\r\nAAAA\r\n",
     DOWNGRADE_HEADERS, 0, "\"=?utf-8?", NULL},
    {"ascii fields untouched", "X-A: plain\r\nSubject: ü\r\n\r\nx\r\n", DOWNGRADE_HEADERS, 0,
     "X-A: plain\r\n", NULL},
    {"8-bit body to quoted-printable",
     "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nsüß\r\n",
     DOWNGRADE_BODY, 0, "Content-Transfer-Encoding: quoted-printable\r\n\r\ns=C3=BC=C3=9F\r\n",
     "8bit"},
    {"unlabelled 8-bit body gets MIME labels", "Subject: x\r\n\r\nsüß\r\n", DOWNGRADE_BODY, 0,
     "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=unknown-8bit\r\n", NULL},
    {"8-bit application part to base64",
     "Content-Type: application/octet-stream\r\n\r\n\xff\xfe\r\n", DOWNGRADE_BODY, 0,
     "Content-Transfer-Encoding: base64", NULL},
    {"headers only leaves the body", "Subject: ü\r\n\r\nsüß\r\n", DOWNGRADE_HEADERS, 0,
     "\r\n\r\nsüß\r\n", NULL},
    {"multipart parts each converted, 7-bit part kept",
     "Content-Type: multipart/mixed; boundary=b\r\n\r\npre\xe9\r\n--b\r\n\r\nplain\r\n--b\r\n"
     "Content-Type: text/plain; charset=utf-8\r\n\r\nsüß\r\n--b--\r\npost\r\n",
     DOWNGRADE_BODY, 0, "--b\r\n\r\nplain\r\n--b\r\n", "\xe9"},
    {"non-ASCII boundary cannot be kept",
     "Content-Type: multipart/mixed; boundary=\"ü\"\r\n\r\n--ü\r\n\r\nü\r\n--ü--\r\n",
     DOWNGRADE_BODY, -1, "boundary", NULL},
    {"trailing space before a line end encoded", "Subject: x\r\n\r\nü \r\n", DOWNGRADE_BODY, 0,
     "=C3=BC=20\r\n", NULL},
};

static int
all_7bit_short(const char *s, size_t n, size_t longest)
{
	size_t col = 0;

	for (size_t i = 0; i < n; i++) {
		if ((unsigned char)s[i] >= 0x80)
			return 0;
		if (s[i] == '\n') {
			col = 0;
			continue;
		}
		if (s[i] != '\r' && ++col > longest)
			return 0;
	}
	return 1;
}

static void
test_downgrade_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		const struct row *r = &rows[i];
		char *out = NULL, why[200] = "";
		size_t olen = 0;
		int rc = downgrade_message(r->in, strlen(r->in), r->flags, &out, &olen, why,
		                           sizeof(why));

		if (rc != r->rc)
			fail_msg("%s: expected rc %d, got %d (%s)", r->what, r->rc, rc, why);
		if (rc < 0) {
			if (r->has && strstr(why, r->has) == NULL)
				fail_msg("%s: expected why to say '%s', got '%s'", r->what, r->has,
				         why);
			continue;
		}
		if (r->has && strstr(out, r->has) == NULL)
			fail_msg("%s: expected '%s' in:\n%s", r->what, r->has, out);
		if (r->hasnt && strstr(out, r->hasnt) != NULL)
			fail_msg("%s: did not expect '%s' in:\n%s", r->what, r->hasnt, out);
		if (r->flags == DOWNGRADE_BODY && strchr(r->in, ':') &&
		    !all_7bit_short(strstr(out, "\r\n\r\n"), strlen(strstr(out, "\r\n\r\n")), 78))
			fail_msg("%s: body not 7-bit or has a line over 78 octets:\n%s", r->what,
			         out);
		free(out);
	}
}

static void
test_long_subject_folded_and_decodes_back(void **state)
{
	const char *subj = "Grüße aus Köln – ein sehr langer Betreff mit vielen Wörtern, der "
	                   "über mehrere Zeilen gefaltet werden muss, ünïcödé ✓✓✓ und noch mehr";
	char in[1024], *out = NULL, why[200];
	size_t olen;
	struct msg m;

	(void)state;
	snprintf(in, sizeof(in), "Subject: %s\r\n\r\nx\r\n", subj);
	assert_int_equal(
	    0, downgrade_message(in, strlen(in), DOWNGRADE_HEADERS, &out, &olen, why, sizeof(why)));
	if (!all_7bit_short(out, olen, 78))
		fail_msg("not 7-bit, or a line over 78 octets:\n%s", out);
	assert_int_equal(0, msg_parse(&m, out, olen));
	char *v = msg_header_text(&m, "Subject");
	char *d = msg_decode_words(v, strlen(v), NULL);
	if (strcmp(d, subj) != 0)
		fail_msg("decoded back:\n%s\nexpected:\n%s", d, subj);
	free(v);
	free(d);
	msg_free(&m);
	free(out);
}

static void
test_qp_round_trip(void **state)
{
	char in[2048], dec[4096];
	size_t n = 0, ql, dl;

	(void)state;
	for (int i = 0; i < 1500; i++)
		in[n++] = (char)(i % 7 == 6 ? '\n' : (i % 5 == 0 ? ' ' : 0x41 + (i * 37) % 190));
	in[n++] = ' ';
	struct strbuf qb = {0};
	encode_qp(&qb, in, n);
	ql = qb.len;
	char *q = strbuf_done(&qb);
	assert_non_null(q);
	if (!all_7bit_short(q, ql, 76))
		fail_msg("quoted-printable has 8-bit or a line over 76 octets:\n%s", q);
	dl = msg_qp_decode(q, ql, dec);
	/* Line ends come back as CRLF. */
	char want[4096];
	size_t wl = 0;
	for (size_t i = 0; i < n; i++) {
		if (in[i] == '\n')
			want[wl++] = '\r';
		want[wl++] = in[i];
	}
	assert_int_equal(wl, dl);
	assert_memory_equal(want, dec, wl);
	free(q);
}

static void
test_scan_says_what_is_8bit(void **state)
{
	(void)state;
	assert_int_equal(0, downgrade_scan("Subject: a\r\n\r\nb\r\n", 17));
	assert_int_equal(DOWNGRADE_HEADERS, downgrade_scan("Subject: ü\r\n\r\nb\r\n", 18));
	assert_int_equal(DOWNGRADE_BODY, downgrade_scan("Subject: a\r\n\r\nü\r\n", 18));
	const char *part = "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n"
	                   "Content-Type: text/plain; name=\"ü\"\r\n\r\nx\r\n--b--\r\n";
	assert_int_equal(DOWNGRADE_HEADERS | DOWNGRADE_BODY, downgrade_scan(part, strlen(part)));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_downgrade_table),
	    cmocka_unit_test(test_long_subject_folded_and_decodes_back),
	    cmocka_unit_test(test_qp_round_trip),
	    cmocka_unit_test(test_scan_says_what_is_8bit),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
