/*
 * test_digest.c - the MIME and RFC 1153 digests of mail/digest.h over a
 * set of awkward posts: plain ASCII, RFC 2047 subject and sender, a
 * multipart with an attachment and an HTML alternative, an 8-bit UTF-8
 * body, a body with a 30-hyphen line, header-like lines and a "From "
 * line, and a post quoting a digest boundary. Each digest is checked by
 * structure (msg_walk: the parts and their types), table of contents,
 * Subject numbering, line lengths, boundaries, and (MIME) that delivery's
 * downgrade makes it 7-bit with the posts intact.
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

#include "mail/digest.h"
#include "mail/downgrade.h"
#include "mail/msg.h"
#include "mail/strbuf.h"
#include "mail/utf8.h"

#define HYPH30 "------------------------------"

static const char *const posts_text[] = {
    "From: Ann Example <ann@example.org>\r\n"
    "To: dev@lists.example.org\r\n"
    "Subject: [dev] plain one\r\n"
    "Date: Mon, 01 Jan 2024 10:00:00 +0000\r\n"
    "Message-ID: <p1@example.org>\r\n"
    "\r\n"
    "Hello list.\r\n" HYPH30 "\r\n"
    "\r\n"
    "Date: Mon, 01 Jan 2024 10:00:00 +0000\r\n"
    "From: forged@example.org\r\n"
    "Subject: not a post\r\n"
    "\r\n"
    "From the start\r\n"
    "-- \r\n"
    "Ann\r\n",

    "From: =?utf-8?q?J=C3=B6rg?= <jorg@example.de>\r\n"
    "Subject: =?utf-8?b?w5xiZXIgZGllIEJyw7xja2U=?=\r\n"
    "Date: Mon, 01 Jan 2024 11:00:00 +0000\r\n"
    "Message-ID: <p2@example.de>\r\n"
    "MIME-Version: 1.0\r\n"
    "Content-Type: text/plain; charset=utf-8\r\n"
    "Content-Transfer-Encoding: 8bit\r\n"
    "\r\n"
    "Grüße aus Köln\r\n",

    "From: bob@example.net\r\n"
    "Subject: with attachment\r\n"
    "Date: Mon, 01 Jan 2024 12:00:00 +0000\r\n"
    "Message-ID: <p3@example.net>\r\n"
    "MIME-Version: 1.0\r\n"
    "Content-Type: multipart/mixed; boundary=\"XX\"\r\n"
    "\r\n"
    "--XX\r\n"
    "Content-Type: multipart/alternative; boundary=\"YY\"\r\n"
    "\r\n"
    "--YY\r\n"
    "Content-Type: text/plain; charset=iso-8859-1\r\n"
    "Content-Transfer-Encoding: quoted-printable\r\n"
    "\r\n"
    "See the file, caf=E9.\r\n"
    "--YY\r\n"
    "Content-Type: text/html\r\n"
    "\r\n"
    "<p>See the file</p>\r\n"
    "--YY--\r\n"
    "--XX\r\n"
    "Content-Type: application/pdf; name=\"r.pdf\"\r\n"
    "Content-Disposition: attachment; filename=\"report.pdf\"\r\n"
    "Content-Transfer-Encoding: base64\r\n"
    "\r\n"
    "JVBERi0xLjQK\r\n"
    "--XX--\r\n",

    /* Quotes a boundary of the form the builder makes. */
    "From: carol@example.com\r\n"
    "Subject: about the last digest\r\n"
    "Date: Mon, 01 Jan 2024 13:00:00 +0000\r\n"
    "\r\n"
    "It had --=_fmdigest_ boundaries.\r\n",
};
#define NPOSTS (sizeof(posts_text) / sizeof(posts_text[0]))

static struct digest_post posts[NPOSTS];

static const struct digest_info info = {
    .list_address = "dev@lists.example.org",
    .list_name = "dev",
    .request_address = "dev-request@lists.example.org",
    .volume = 3,
    .issue = 12,
    .header_text = "Welcome to dev.",
    .footer_text = "Leave: mail dev-request.",
    .list_fields =
        "List-Id: <dev.lists.example.org>\r\n"
        "List-Unsubscribe: <mailto:dev-request@lists.example.org?subject=unsubscribe>\r\n",
    .hostname = "lists.example.org",
    .now = 1800000000,
};

static int
setup(void **state)
{
	(void)state;
	for (size_t i = 0; i < NPOSTS; i++) {
		posts[i].msg = posts_text[i];
		posts[i].len = strlen(posts_text[i]);
	}
	return 0;
}

static void
assert_lines_ok(const char *s, size_t n)
{
	size_t col = 0;

	for (size_t i = 0; i < n; i++) {
		if (s[i] == '\n') {
			assert_true(i > 0 && s[i - 1] == '\r'); /* CRLF only */
			col = 0;
		} else if (s[i] != '\r') {
			col++;
			assert_true(col <= 998);
		}
	}
}

static char *
top_header(const char *d, size_t n, const char *name)
{
	struct msg m;
	char *v;

	assert_int_equal(0, msg_parse(&m, d, n));
	v = msg_header_text(&m, name);
	msg_free(&m);
	return v;
}

/* What msg_walk sees of a MIME digest. */
struct shape {
	char types[32][64];
	int depth[32];
	int n;
	int rfc822; /* message/rfc822 parts right under multipart/digest */
	char subjects[8][128];
};

static int
shape_cb(const struct msg_part *p, void *arg)
{
	struct shape *s = arg;

	if (s->n < 32) {
		snprintf(s->types[s->n], 64, "%s/%s", p->ct->type, p->ct->subtype);
		s->depth[s->n] = p->depth;
		s->n++;
	}
	if (p->parent && msg_ctype_is(p->parent->ct, "multipart", "digest") &&
	    msg_ctype_is(p->ct, "message", "rfc822") && s->rfc822 < 8) {
		struct msg m;
		char *subj;
		assert_int_equal(0, msg_parse(&m, p->body, p->body_len));
		subj = msg_header_text(&m, "Subject");
		snprintf(s->subjects[s->rfc822], 128, "%s", subj ? subj : "");
		free(subj);
		msg_free(&m);
		s->rfc822++;
	}
	return 0;
}

static void
test_mime_structure(void **state)
{
	char *d, *v, *boundary;
	size_t n;
	struct shape s = {0};
	struct msg m;
	struct msg_ctype ct;
	const struct msg_header *h;

	(void)state;
	assert_int_equal(0, digest_build_mime(&info, posts, NPOSTS, &d, &n));
	assert_int_equal(n, strlen(d));
	assert_lines_ok(d, n);

	v = top_header(d, n, "Subject");
	assert_string_equal(v, "dev digest, Vol 3, Issue 12");
	free(v);
	v = top_header(d, n, "From");
	assert_string_equal(v, "dev <dev-request@lists.example.org>");
	free(v);
	v = top_header(d, n, "To");
	assert_string_equal(v, "dev@lists.example.org");
	free(v);
	v = top_header(d, n, "Message-ID");
	assert_string_equal(v, "<digest.3.12.dev=lists.example.org@lists.example.org>");
	free(v);
	v = top_header(d, n, "Content-Transfer-Encoding"); /* post 2 is 8-bit */
	assert_string_equal(v, "8bit");
	free(v);
	assert_string_contains(d, "\r\nList-Id: <dev.lists.example.org>\r\n");
	assert_string_contains(d, "\r\nPrecedence: list\r\n");
	assert_string_contains(d, "\r\nDate: Fri, 15 Jan 2027 08:00:00 +0000\r\n");

	assert_int_equal(0, msg_walk(d, n, shape_cb, &s));
	assert_string_equal(s.types[0], "multipart/mixed");
	assert_string_equal(s.types[1], "text/plain");
	assert_string_equal(s.types[2], "multipart/digest");
	assert_int_equal(s.rfc822, NPOSTS);
	assert_string_equal(s.subjects[0], "[dev] plain one");
	assert_string_equal(s.subjects[1], "=?utf-8?b?w5xiZXIgZGllIEJyw7xja2U=?=");
	assert_string_equal(s.subjects[2], "with attachment");
	assert_string_equal(s.subjects[3], "about the last digest");
	assert_string_equal(s.types[s.n - 1], "text/plain");
	assert_int_equal(s.depth[s.n - 1], 1);

	/* Each post is in the digest byte for byte. */
	for (size_t i = 0; i < NPOSTS; i++)
		assert_non_null(memmem(d, n, posts[i].msg, posts[i].len));

	/* The boundaries: in no post. */
	assert_int_equal(0, msg_parse(&m, d, n));
	h = msg_header_get(&m, "Content-Type", 0);
	assert_int_equal(0, msg_ctype_parse(h->value, h->value_len, &ct));
	boundary = strdup(msg_ctype_param(&ct, "boundary"));
	msg_ctype_free(&ct);
	msg_free(&m);
	assert_true(strlen(boundary) > 20);
	for (size_t i = 0; i < NPOSTS; i++)
		assert_null(memmem(posts[i].msg, posts[i].len, boundary, strlen(boundary)));
	free(boundary);
	free(d);
}

/* The table of contents: decoded, numbered, in order. */
static void
test_mime_toc(void **state)
{
	char *d, *toc;
	size_t n, tl;
	const char *p, *q;

	(void)state;
	assert_int_equal(0, digest_build_mime(&info, posts, NPOSTS, &d, &n));
	/* The first part is quoted-printable (the decoded names are UTF-8):
	 * decode it. */
	p = strstr(d, "Today's Topics:");
	assert_non_null(p);
	q = strstr(p, "\r\n--=_fmdigest_");
	assert_non_null(q);
	toc = malloc((size_t)(q - p) + 1);
	tl = msg_qp_decode(p, (size_t)(q - p), toc);
	toc[tl] = '\0';
	assert_string_contains(toc, "   1. [dev] plain one (Ann Example <ann@example.org>)\r\n");
	assert_string_contains(toc, "   2. Über die Brücke (Jörg <jorg@example.de>)\r\n");
	assert_string_contains(toc, "   3. with attachment (bob@example.net)\r\n");
	assert_string_contains(toc, "   4. about the last digest (carol@example.com)\r\n");
	free(toc);
	assert_string_contains(d, "Welcome to dev.");
	assert_string_contains(d, "Leave: mail dev-request.");
	assert_string_contains(d, "End of dev digest, Vol 3, Issue 12\r\n");
	free(d);
}

/* Delivery to a server without 8BITMIME: downgrade.c makes the digest
 * 7-bit, and the 8-bit post inside decodes to the same text. */
struct find_text {
	int found;
};

static int
find_text_cb(const struct msg_part *p, void *arg)
{
	struct find_text *f = arg;
	const struct msg_header *h;
	char *cte, *dec;
	size_t dl;

	if (!msg_ctype_is(p->ct, "text", "plain") || p->depth < 3)
		return 0;
	h = msg_header_get(p->headers, "Content-Transfer-Encoding", 0);
	cte = h ? msg_unfold(h->value, h->value_len) : NULL;
	dec = msg_decode_body(cte, p->body, p->body_len, &dl);
	if (strstr(dec, "Grüße aus Köln") != NULL) {
		assert_string_equal(cte, "quoted-printable");
		f->found++;
	}
	free(cte);
	free(dec);
	return 0;
}

static void
test_mime_downgrades_to_7bit(void **state)
{
	char *d, *dg, why[200];
	size_t n, dn;
	struct shape s = {0};
	struct find_text f = {0};

	(void)state;
	assert_int_equal(0, digest_build_mime(&info, posts, NPOSTS, &d, &n));
	assert_int_equal(DOWNGRADE_BODY, downgrade_scan(d, n));
	assert_int_equal(0, downgrade_message(d, n, DOWNGRADE_BODY, &dg, &dn, why, sizeof(why)));
	assert_true(utf8_is_ascii_n(dg, dn));
	assert_int_equal(0, msg_walk(dg, dn, shape_cb, &s));
	assert_int_equal(s.rfc822, NPOSTS);
	assert_int_equal(0, msg_walk(dg, dn, find_text_cb, &f));
	assert_int_equal(f.found, 1);
	free(dg);
	free(d);
}

/* Without 8-bit posts nothing says 8bit. */
static void
test_mime_7bit(void **state)
{
	char *d;
	size_t n;
	struct digest_post two[2] = {posts[0], posts[2]};

	(void)state;
	assert_int_equal(0, digest_build_mime(&info, two, 2, &d, &n));
	assert_true(utf8_is_ascii_n(d, n));
	assert_string_not_contains(d, "8bit");
	free(d);
	/* No posts: still a well-formed message, no empty multipart. */
	assert_int_equal(0, digest_build_mime(&info, NULL, 0, &d, &n));
	assert_string_not_contains(d, "multipart/digest");
	assert_string_contains(d, "End of dev digest");
	free(d);
}

static void
test_subject_numbering_and_names(void **state)
{
	struct digest_info i2 = info;
	char *d, *v;
	size_t n;

	(void)state;
	i2.volume = 7;
	i2.issue = 123;
	i2.list_name = "Entwickler-Liste für Köln";
	i2.request_address = NULL;
	i2.list_fields = NULL;
	assert_int_equal(0, digest_build_text(&i2, posts, 1, &d, &n));
	assert_lines_ok(d, n);
	assert_string_contains(d, "\r\nSubject: =?utf-8?");
	v = top_header(d, n, "Subject");
	{
		char *dec = msg_decode_words(v, strlen(v), NULL);
		assert_string_equal(dec, "Entwickler-Liste für Köln digest, Vol 7, Issue 123");
		free(dec);
	}
	free(v);
	v = top_header(d, n, "From");
	assert_string_contains(v, "<dev@lists.example.org>");
	assert_string_not_contains(v, "ü");
	free(v);
	free(d);

	/* No name: the local part. */
	i2.list_name = NULL;
	assert_int_equal(0, digest_build_mime(&i2, posts, 1, &d, &n));
	v = top_header(d, n, "Subject");
	assert_string_equal(v, "dev digest, Vol 7, Issue 123");
	free(v);
	free(d);
	/* No list address: refused. */
	i2.list_address = NULL;
	assert_int_equal(-1, digest_build_mime(&i2, posts, 1, &d, &n));
	assert_null(d);
}

static void
test_text_structure(void **state)
{
	char *d;
	size_t n;
	const char *body, *p;
	int seps = 0;

	(void)state;
	assert_int_equal(0, digest_build_text(&info, posts, NPOSTS, &d, &n));
	assert_lines_ok(d, n);
	assert_string_contains(d, "\r\nContent-Type: text/plain; charset=utf-8\r\n");
	assert_string_contains(d, "\r\nContent-Transfer-Encoding: 8bit\r\n");
	assert_string_not_contains(d, "multipart");
	body = strstr(d, "\r\n\r\n");
	assert_non_null(body);
	assert_string_contains(body, "dev Digest\tFri, 15 Jan 2027\tVolume 3 : Issue 12\r\n");
	assert_string_contains(body, "Today's Topics:\r\n\r\n"
	                             "   1. [dev] plain one (Ann Example <ann@example.org>)\r\n"
	                             "   2. Über die Brücke (Jörg <jorg@example.de>)\r\n"
	                             "   3. with attachment (bob@example.net)\r\n"
	                             "   4. about the last digest (carol@example.com)\r\n"
	                             "\r\n" HYPH30 HYPH30 "----------\r\n\r\n"
	                             "Date: Mon, 01 Jan 2024 10:00:00 +0000\r\n"
	                             "From: Ann Example <ann@example.org>\r\n"
	                             "Subject: [dev] plain one\r\n"
	                             "Message-ID: <p1@example.org>\r\n\r\n"
	                             "Hello list.\r\n");
	/* Stuffing: the post's 30 hyphens and its signature line get "- ",
	 * its header-like paragraph a space; "From " stays. */
	assert_string_contains(body, "Hello list.\r\n- " HYPH30 "\r\n\r\n"
	                             " Date: Mon, 01 Jan 2024 10:00:00 +0000\r\n"
	                             "From: forged@example.org\r\n");
	assert_string_contains(body, "\r\n\r\nFrom the start\r\n- -- \r\nAnn\r\n");
	assert_string_contains(body, "From: Jörg <jorg@example.de>\r\n"
	                             "Subject: Über die Brücke\r\n");
	assert_string_contains(body, "\r\n\r\nGrüße aus Köln\r\n");
	assert_string_contains(body, "See the file, café.\r\n");
	assert_string_not_contains(body, "<p>See the file</p>");
	assert_string_contains(body, "[attachment: application/pdf, report.pdf, 9 bytes omitted]");
	assert_string_contains(body, "\r\n\r\n Leave: mail dev-request.\r\n\r\n"
	                             "End of dev digest, Vol 3, Issue 12\r\n"
	                             "**********************************\r\n");
	/* A separator line (exactly 30 hyphens) after each post only. */
	for (p = body; (p = strstr(p, "\r\n" HYPH30 "\r\n")) != NULL; p += 2)
		seps++;
	assert_int_equal(seps, NPOSTS);
	free(d);
}

/* A line longer than 998 octets: the text digest becomes
 * quoted-printable. */
static void
test_text_long_line(void **state)
{
	struct strbuf b = {0};
	struct digest_post p;
	char *d;
	size_t n;

	(void)state;
	strbuf_str(&b, "From: x@example.org\r\nSubject: long\r\n\r\n");
	for (int i = 0; i < 2000; i++)
		strbuf_str(&b, "a");
	strbuf_str(&b, "\r\n");
	p.msg = b.p;
	p.len = b.len;
	assert_int_equal(0, digest_build_text(&info, &p, 1, &d, &n));
	assert_lines_ok(d, n);
	assert_string_contains(d, "Content-Transfer-Encoding: quoted-printable\r\n");
	free(d);
	strbuf_free(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_mime_structure),
	    cmocka_unit_test(test_mime_toc),
	    cmocka_unit_test(test_mime_downgrades_to_7bit),
	    cmocka_unit_test(test_mime_7bit),
	    cmocka_unit_test(test_subject_numbering_and_names),
	    cmocka_unit_test(test_text_structure),
	    cmocka_unit_test(test_text_long_line),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
