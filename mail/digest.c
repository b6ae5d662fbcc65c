/*
 * digest.c - the MIME (RFC 2046) and plain text (RFC 1153) digests; see
 * digest.h.
 *
 * Each post is parsed once with msg.h for what the table of contents and
 * the text digest show (its Subject and From decoded, its Date and
 * Message-ID); headers are written through fold.c and encode.h like every
 * message fanmail writes.
 */
#include "mail/digest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "mail/build.h"
#include "mail/encode.h"
#include "mail/fold.h"
#include "mail/msg.h"
#include "mail/strbuf.h"
#include "mail/utf8.h"

#define LINE_MAX_OCTETS 998
#define SEP_TOPICS 70 /* RFC 1153: after the topics */
#define SEP_POST 30   /* RFC 1153 and RFC 934: between messages */
#define BOUNDARY_HEX 24

/* What the table of contents and the text digest show of one post. */
struct post_info {
	char *subject; /* decoded, flattened; never NULL after post_info_get */
	char *from;
	char *date; /* unfolded, or NULL */
	char *msgid;
};

/* A header's text: unfolded, RFC 2047 words decoded when decode, control
 * characters made spaces (nothing in it can start a line of its own). */
static char *
header_text(const struct msg *m, const char *name, int decode)
{
	char *raw = msg_header_text(m, name), *dec;

	if (raw == NULL || !decode)
		return fold_flatten(raw);
	dec = msg_decode_words(raw, strlen(raw), NULL);
	free(raw);
	return fold_flatten(dec);
}

static void
post_info_free(struct post_info *pi)
{
	free(pi->subject);
	free(pi->from);
	free(pi->date);
	free(pi->msgid);
	memset(pi, 0, sizeof(*pi));
}

static int
post_info_get(const struct digest_post *p, struct post_info *pi)
{
	struct msg m;

	memset(pi, 0, sizeof(*pi));
	if (msg_parse(&m, p->msg, p->len) < 0)
		return -1;
	pi->subject = header_text(&m, "Subject", 1);
	pi->from = header_text(&m, "From", 1);
	pi->date = header_text(&m, "Date", 0);
	pi->msgid = header_text(&m, "Message-ID", 0);
	msg_free(&m);
	if (pi->subject == NULL || *pi->subject == '\0') {
		free(pi->subject);
		pi->subject = strdup("(no subject)");
	}
	if (pi->from == NULL || *pi->from == '\0') {
		free(pi->from);
		pi->from = strdup("(unknown sender)");
	}
	if (pi->subject == NULL || pi->from == NULL) {
		post_info_free(pi);
		return -1;
	}
	return 0;
}

/* s[0..n) with every line ended by CRLF, whatever its line ends were; a
 * last line without one gets one. */
static void
add_crlf(struct strbuf *b, const char *s, size_t n)
{
	size_t i = 0;

	while (i < n) {
		size_t e = i;
		while (e < n && s[e] != '\r' && s[e] != '\n')
			e++;
		strbuf_add(b, s + i, e - i);
		strbuf_str(b, "\r\n");
		if (e < n && s[e] == '\r' && e + 1 < n && s[e + 1] == '\n')
			e++;
		i = e + 1;
	}
}

static int
has_long_line(const char *s, size_t n)
{
	size_t col = 0;

	for (size_t i = 0; i < n; i++) {
		if (s[i] == '\r' || s[i] == '\n')
			col = 0;
		else if (++col > LINE_MAX_OCTETS)
			return 1;
	}
	return 0;
}

/* "Name: value" folded (fold.h) and appended. */
static void
put_field(struct strbuf *b, const char *name, const char *value, enum fold_kind kind)
{
	struct strbuf f = {0};
	char *folded;

	strbuf_printf(&f, "%s: %s", name, value);
	if (f.oom) {
		b->oom = 1;
		return;
	}
	folded = fold_field(f.p, f.len, kind);
	strbuf_free(&f);
	if (folded == NULL) {
		b->oom = 1;
		return;
	}
	strbuf_str(b, folded);
	free(folded);
}

static int
is_atext_phrase(const char *s)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == ' ' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || strchr("!#$%&'*+-/=?^_`{|}~", c))
			continue;
		return 0;
	}
	return 1;
}

/* From: "name <addr>" with the name as atoms, a quoted-string or RFC 2047
 * words, whichever it needs. */
static void
put_mailbox(struct strbuf *b, const char *field, const char *name, const char *addr)
{
	struct strbuf v = {0};

	if (!utf8_is_ascii(name) || strstr(name, "=?") != NULL) {
		encode_words(&v, name, strlen(name), 0, 75 - strlen(field) - 2, " ");
	} else if (is_atext_phrase(name)) {
		strbuf_str(&v, name);
	} else {
		strbuf_str(&v, "\"");
		for (const char *p = name; *p; p++) {
			if (*p == '"' || *p == '\\')
				strbuf_str(&v, "\\");
			strbuf_add(&v, p, 1);
		}
		strbuf_str(&v, "\"");
	}
	strbuf_printf(&v, " <%s>", addr);
	if (v.oom)
		b->oom = 1;
	else
		put_field(b, field, v.p, FOLD_STRUCTURED);
	strbuf_free(&v);
}

/* What a digest needs of the list, made safe to write into headers. */
struct names {
	char *list;    /* the list address, flattened */
	char *request; /* the request address */
	char *name;    /* the display name, UTF-8 */
	char *title;   /* "NAME digest, Vol V, Issue I" */
};

static void
names_free(struct names *nm)
{
	free(nm->list);
	free(nm->request);
	free(nm->name);
	free(nm->title);
}

static int
names_get(const struct digest_info *d, struct names *nm)
{
	struct strbuf t = {0};

	memset(nm, 0, sizeof(*nm));
	if (d->list_address == NULL || strchr(d->list_address, '@') == NULL)
		return -1;
	nm->list = fold_flatten(strdup(d->list_address));
	nm->request = fold_flatten(strdup(
	    d->request_address && *d->request_address ? d->request_address : d->list_address));
	if (d->list_name != NULL && *d->list_name != '\0')
		nm->name = fold_flatten(strdup(d->list_name));
	else
		nm->name = strndup(d->list_address, strcspn(d->list_address, "@"));
	if (nm->list == NULL || nm->request == NULL || nm->name == NULL)
		goto fail;
	strbuf_printf(&t, "%s digest, Vol %d, Issue %d", nm->name, d->volume, d->issue);
	if ((nm->title = strbuf_done(&t)) == NULL)
		goto fail;
	return 0;
fail:
	names_free(nm);
	return -1;
}

/* The header fields both kinds share, up to and with MIME-Version. */
static void
put_headers(struct strbuf *b, const struct digest_info *d, const struct names *nm)
{
	char date[40], *subj;
	struct strbuf id = {0};
	const char *host = d->hostname && *d->hostname ? d->hostname : "localhost";

	put_mailbox(b, "From", nm->name, nm->request);
	put_field(b, "To", nm->list, FOLD_STRUCTURED);
	/* The From is the request address, which reads mail as commands:
	 * answers to a digest go to the list. */
	put_field(b, "Reply-To", nm->list, FOLD_STRUCTURED);
	subj = encode_text(nm->title, strlen(nm->title), "\r\n", FOLD_SOFT - 9);
	if (subj == NULL)
		b->oom = 1;
	else
		put_field(b, "Subject", subj, FOLD_TEXT);
	free(subj);
	build_date((time_t)d->now, date, sizeof(date));
	put_field(b, "Date", date, FOLD_STRUCTURED);
	/* The list address as one dot-atom: '@' becomes '=', anything else
	 * outside atext a '-'. */
	strbuf_printf(&id, "<digest.%d.%d.", d->volume, d->issue);
	for (const char *p = nm->list; *p; p++) {
		unsigned char c = (unsigned char)*p;
		char o = c == '@' ? '='
		         : ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		            (c >= '0' && c <= '9') || (c && strchr(".!#$%&'*+-/?^_`{|}~", c)))
		             ? (char)c
		             : '-';
		strbuf_add(&id, &o, 1);
	}
	strbuf_printf(&id, "@%s>", host);
	if (id.oom)
		b->oom = 1;
	else
		put_field(b, "Message-ID", id.p, FOLD_STRUCTURED);
	strbuf_free(&id);
	strbuf_str(b, "MIME-Version: 1.0\r\n");
	strbuf_str(b, "Precedence: list\r\n");
	if (d->list_fields != NULL && *d->list_fields != '\0')
		add_crlf(b, d->list_fields, strlen(d->list_fields));
}

/* --- the MIME digest --- */

static int
boundary_free(const char *bd, const struct digest_info *d, const struct digest_post *p, size_t n)
{
	size_t bl = strlen(bd);

	for (size_t i = 0; i < n; i++)
		if (memmem(p[i].msg, p[i].len, bd, bl) != NULL)
			return 0;
	if (d->header_text && strstr(d->header_text, bd))
		return 0;
	if (d->footer_text && strstr(d->footer_text, bd))
		return 0;
	return 1;
}

/* A boundary found in none of the posts nor texts. "=_" can appear in no
 * quoted-printable text, and 96 random bits in nothing by chance; the
 * check is for a post that quotes an earlier digest's boundary. */
static int
make_boundary(char *bd, size_t size, const char *other, const struct digest_info *d,
              const struct digest_post *p, size_t n)
{
	char hex[BOUNDARY_HEX + 1];

	for (int tries = 0; tries < 16; tries++) {
		if (build_random_hex(hex, BOUNDARY_HEX) < 0)
			return -1;
		snprintf(bd, size, "=_fmdigest_%s", hex);
		if ((other == NULL || strcmp(bd, other) != 0) && boundary_free(bd, d, p, n))
			return 0;
	}
	return -1;
}

/* A text/plain part (UTF-8) holding text: 7bit when it can be, else
 * quoted-printable (the parts fanmail writes never need the digest to be
 * 8-bit). */
static void
put_text_part(struct strbuf *b, const char *text, size_t n)
{
	strbuf_str(b, "Content-Type: text/plain; charset=utf-8\r\n");
	if (utf8_is_ascii_n(text, n) && !has_long_line(text, n) && memchr(text, '\0', n) == NULL) {
		strbuf_str(b, "Content-Transfer-Encoding: 7bit\r\n\r\n");
		add_crlf(b, text, n);
	} else {
		strbuf_str(b, "Content-Transfer-Encoding: quoted-printable\r\n\r\n");
		encode_qp(b, text, n);
		if (n > 0 && text[n - 1] != '\n' && text[n - 1] != '\r')
			strbuf_str(b, "\r\n");
	}
}

/* "   1. Subject (From)" per post. */
static void
put_topics(struct strbuf *t, const struct post_info *pi, size_t n)
{
	strbuf_str(t, "Today's Topics:\n\n");
	for (size_t i = 0; i < n; i++)
		strbuf_printf(t, "%4zu. %s (%s)\n", i + 1, pi[i].subject, pi[i].from);
	if (n == 0)
		strbuf_str(t, "   (no posts)\n");
}

static void
put_masthead(struct strbuf *t, const struct names *nm)
{
	strbuf_printf(t,
	              "%s\n\n"
	              "Send posts to the %s list to\n\t%s\n"
	              "Send commands (\"help\" for a list of them) to\n\t%s\n\n"
	              "When replying, please edit your Subject line so it is more specific\n"
	              "than \"Re: %s\".\n\n",
	              nm->title, nm->name, nm->list, nm->request, nm->title);
}

static void
put_trailer(struct strbuf *t, const struct names *nm)
{
	size_t n = strlen("End of ") + strlen(nm->title);

	strbuf_printf(t, "End of %s\n", nm->title);
	while (n-- > 0)
		strbuf_str(t, "*");
	strbuf_str(t, "\n");
}

int
digest_build_mime(const struct digest_info *d, const struct digest_post *p, size_t n, char **out,
                  size_t *len)
{
	struct strbuf b = {0}, t = {0};
	struct post_info *pi;
	struct names nm;
	char outer[64], inner[64];
	int eightbit = 0, rc = -1;

	*out = NULL;
	*len = 0;
	if (names_get(d, &nm) < 0)
		return -1;
	if ((pi = calloc(n ? n : 1, sizeof(*pi))) == NULL)
		goto out_names;
	for (size_t i = 0; i < n; i++) {
		if (post_info_get(&p[i], &pi[i]) < 0)
			goto out;
		if (!utf8_is_ascii_n(p[i].msg, p[i].len))
			eightbit = 1;
	}
	if (make_boundary(outer, sizeof(outer), NULL, d, p, n) < 0 ||
	    make_boundary(inner, sizeof(inner), outer, d, p, n) < 0)
		goto out;

	put_headers(&b, d, &nm);
	strbuf_printf(&b, "Content-Type: multipart/mixed; boundary=\"%s\"\r\n", outer);
	/* An 8-bit post makes every entity around it 8-bit (RFC 2045
	 * section 6.4: a multipart or message/rfc822 may only be labelled
	 * 7bit, 8bit or binary, and must say 8bit when a part is). */
	if (eightbit)
		strbuf_str(&b, "Content-Transfer-Encoding: 8bit\r\n");
	strbuf_str(&b, "\r\nThis is a digest in MIME format (RFC 2046): each post is a part of\r\n"
	               "its own.\r\n");

	strbuf_printf(&b, "\r\n--%s\r\n", outer);
	put_masthead(&t, &nm);
	if (d->header_text != NULL && *d->header_text != '\0') {
		strbuf_str(&t, d->header_text);
		strbuf_str(&t, "\n\n");
	}
	put_topics(&t, pi, n);
	if (t.oom)
		goto out;
	put_text_part(&b, t.p, t.len);

	if (n > 0) {
		/* A multipart needs at least one part: with no post there is
		 * no multipart/digest at all. */
		strbuf_printf(&b, "\r\n--%s\r\n", outer);
		strbuf_printf(&b, "Content-Type: multipart/digest; boundary=\"%s\"\r\n", inner);
		if (eightbit)
			strbuf_str(&b, "Content-Transfer-Encoding: 8bit\r\n");
		for (size_t i = 0; i < n; i++) {
			strbuf_printf(&b, "\r\n--%s\r\n", inner);
			strbuf_str(&b, "Content-Type: message/rfc822\r\n");
			if (!utf8_is_ascii_n(p[i].msg, p[i].len))
				strbuf_str(&b, "Content-Transfer-Encoding: 8bit\r\n");
			strbuf_str(&b, "\r\n");
			/* The post ends in CRLF; the CRLF before the next
			 * delimiter belongs to the delimiter. */
			add_crlf(&b, p[i].msg, p[i].len);
		}
		strbuf_printf(&b, "\r\n--%s--\r\n", inner);
	}

	strbuf_truncate(&t, 0);
	if (d->footer_text != NULL && *d->footer_text != '\0') {
		strbuf_str(&t, d->footer_text);
		strbuf_str(&t, "\n\n");
	}
	put_trailer(&t, &nm);
	if (t.oom)
		goto out;
	strbuf_printf(&b, "\r\n--%s\r\n", outer);
	put_text_part(&b, t.p, t.len);
	strbuf_printf(&b, "\r\n--%s--\r\n", outer);
	if (b.oom)
		goto out;
	*len = b.len;
	*out = strbuf_done(&b);
	rc = *out ? 0 : -1;
out:
	for (size_t i = 0; i < n; i++)
		post_info_free(&pi[i]);
	free(pi);
out_names:
	names_free(&nm);
	strbuf_free(&t);
	strbuf_free(&b);
	return rc;
}

/* --- the plain text digest --- */

/* Looks like the start of a header field: "Name:" with a name of
 * printable ASCII but no space or colon. */
static int
looks_like_field(const char *s, size_t n)
{
	size_t i = 0;

	while (i < n && s[i] > ' ' && s[i] < 127 && s[i] != ':')
		i++;
	return i > 0 && i < n && s[i] == ':';
}

/* Appends UTF-8 text with CRLF line ends, stuffed so that a splitter
 * finds no message boundary in it: "- " before a line that begins with
 * "-" (RFC 934), a space before a paragraph's first line that looks like
 * a header field (formail -ds). */
static void
add_stuffed(struct strbuf *b, const char *s, size_t n)
{
	size_t i = 0;
	int para_start = 1;

	while (i < n) {
		size_t e = i;
		while (e < n && s[e] != '\r' && s[e] != '\n')
			e++;
		if (e > i && s[i] == '-')
			strbuf_str(b, "- ");
		else if (para_start && looks_like_field(s + i, e - i))
			strbuf_str(b, " ");
		strbuf_add(b, s + i, e - i);
		strbuf_str(b, "\r\n");
		/* A line of white space is as blank to a reader as an
		 * empty one. */
		para_start = strspn(s + i, " \t") >= e - i;
		if (e < n && s[e] == '\r' && e + 1 < n && s[e + 1] == '\n')
			e++;
		i = e + 1;
	}
}

struct text_walk {
	struct strbuf *b;
	int wrote; /* anything written for this post */
};

/* The part's Content-Disposition as a struct msg_ctype: "attachment;
 * filename=..." parsed as the type "x/attachment" so that msg.h's
 * parameter reader (RFC 2231 included) does the work. */
static int
disposition(const struct msg *m, struct msg_ctype *cd)
{
	const struct msg_header *h = msg_header_get(m, "Content-Disposition", 0);
	struct strbuf v = {0};
	int rc;

	char *val = h ? msg_unfold(h->value, h->value_len) : NULL;

	if (h != NULL && val == NULL)
		return -1;
	strbuf_str(&v, "x/");
	strbuf_str(&v, val && *val ? val : "inline");
	free(val);
	if (v.oom)
		return -1;
	rc = msg_ctype_parse(v.p, v.len, cd);
	strbuf_free(&v);
	return rc;
}

static int
is_plain(const struct msg_ctype *ct)
{
	return msg_ctype_is(ct, "text", "plain");
}

static int
find_plain(const struct msg_part *part, void *arg)
{
	(void)arg;
	return is_plain(part->ct) ? 1 : 0;
}

/* Whether a leaf is an alternative to a text/plain form shown instead:
 * its nearest multipart/alternative holds a text/plain part. */
static int
has_plain_alternative(const struct msg_part *part)
{
	for (const struct msg_part *a = part->parent; a != NULL; a = a->parent)
		if (msg_ctype_is(a->ct, "multipart", "alternative"))
			return msg_walk(a->start, a->len, find_plain, NULL) == 1;
	return 0;
}

static int
text_leaf(const struct msg_part *part, void *arg)
{
	struct text_walk *w = arg;
	const struct msg_header *cte;
	struct msg_ctype cd;
	char *cte_v = NULL, *dec;
	size_t dlen;
	int attachment, rc = 0;

	if (strcmp(part->ct->type, "multipart") == 0 ||
	    msg_ctype_is(part->ct, "message", "rfc822") ||
	    msg_ctype_is(part->ct, "message", "global"))
		return 0; /* its parts are walked next */
	if (disposition(part->headers, &cd) < 0)
		return -1;
	attachment = strcmp(cd.subtype, "attachment") == 0;
	if (!is_plain(part->ct) && has_plain_alternative(part))
		goto out;
	cte = msg_header_get(part->headers, "Content-Transfer-Encoding", 0);
	if (cte != NULL && (cte_v = msg_unfold(cte->value, cte->value_len)) == NULL) {
		rc = -1;
		goto out;
	}
	dec = msg_decode_body(cte_v, part->body, part->body_len, &dlen);
	free(cte_v);
	if (dec == NULL) {
		rc = -1;
		goto out;
	}
	if (w->wrote)
		strbuf_str(w->b, "\r\n");
	w->wrote = 1;
	if (is_plain(part->ct) && !attachment) {
		struct strbuf u = {0};
		if (msg_charset_to_utf8(&u, msg_ctype_param(part->ct, "charset"), dec, dlen) < 0) {
			/* An unknown charset: its ASCII is still readable. */
			for (size_t i = 0; i < dlen; i++)
				strbuf_add(&u, (unsigned char)dec[i] >= 0x80 ? "?" : dec + i, 1);
		}
		if (u.oom)
			w->b->oom = 1;
		else if (u.len > 0)
			add_stuffed(w->b, u.p, u.len);
		strbuf_free(&u);
	} else {
		const char *name = msg_ctype_param(&cd, "filename");
		char *fn;

		if (name == NULL)
			name = msg_ctype_param(part->ct, "name");
		fn = name ? fold_flatten(strdup(name)) : NULL;
		strbuf_printf(w->b, "[attachment: %s/%s, %s%s%zu bytes omitted]\r\n",
		              part->ct->type, part->ct->subtype, fn ? fn : "", fn ? ", " : "",
		              dlen);
		free(fn);
	}
	free(dec);
out:
	msg_ctype_free(&cd);
	return rc;
}

int
digest_build_text(const struct digest_info *d, const struct digest_post *p, size_t n, char **out,
                  size_t *len)
{
	struct strbuf b = {0}, t = {0};
	struct post_info *pi;
	struct names nm;
	char date[40];
	int rc = -1;

	*out = NULL;
	*len = 0;
	if (names_get(d, &nm) < 0)
		return -1;
	if ((pi = calloc(n ? n : 1, sizeof(*pi))) == NULL)
		goto out_names;
	for (size_t i = 0; i < n; i++)
		if (post_info_get(&p[i], &pi[i]) < 0)
			goto out;

	/* RFC 1153's first line: name, date, volume and issue. */
	build_date((time_t)d->now, date, sizeof(date));
	date[16] = '\0'; /* "Tue, 08 Dec 2026" */
	strbuf_printf(&t, "%s Digest\t%s\tVolume %d : Issue %d\r\n\r\n", nm.name, date, d->volume,
	              d->issue);
	{
		struct strbuf h = {0};
		put_masthead(&h, &nm);
		if (h.oom)
			t.oom = 1;
		else
			add_crlf(&t, h.p, h.len);
		strbuf_free(&h);
		/* The header text stuffed like a post's: it comes before the
		 * first separator, but formail -ds splits at header-like
		 * lines anywhere. */
		if (d->header_text != NULL && *d->header_text != '\0') {
			add_stuffed(&t, d->header_text, strlen(d->header_text));
			strbuf_str(&t, "\r\n");
		}
		put_topics(&h, pi, n);
		if (h.oom)
			t.oom = 1;
		else
			add_crlf(&t, h.p, h.len);
		strbuf_free(&h);
	}
	strbuf_str(&t, "\r\n");
	for (int k = 0; k < SEP_TOPICS; k++)
		strbuf_str(&t, "-");
	strbuf_str(&t, "\r\n\r\n");
	for (size_t i = 0; i < n; i++) {
		struct text_walk w = {&t, 0};
		int wr;

		if (pi[i].date)
			strbuf_printf(&t, "Date: %s\r\n", pi[i].date);
		strbuf_printf(&t, "From: %s\r\n", pi[i].from);
		strbuf_printf(&t, "Subject: %s\r\n", pi[i].subject);
		if (pi[i].msgid)
			strbuf_printf(&t, "Message-ID: %s\r\n", pi[i].msgid);
		strbuf_str(&t, "\r\n");
		wr = msg_walk(p[i].msg, p[i].len, text_leaf, &w);
		if (wr != 0)
			goto out;
		strbuf_str(&t, "\r\n");
		for (int k = 0; k < SEP_POST; k++)
			strbuf_str(&t, "-");
		strbuf_str(&t, "\r\n\r\n");
	}
	if (d->footer_text != NULL && *d->footer_text != '\0') {
		add_stuffed(&t, d->footer_text, strlen(d->footer_text));
		strbuf_str(&t, "\r\n");
	}
	{
		struct strbuf tr = {0};
		put_trailer(&tr, &nm);
		if (tr.oom)
			t.oom = 1;
		else
			add_crlf(&t, tr.p, tr.len);
		strbuf_free(&tr);
	}
	if (t.oom)
		goto out;

	put_headers(&b, d, &nm);
	strbuf_str(&b, "Content-Type: text/plain; charset=utf-8\r\n");
	if (has_long_line(t.p, t.len)) {
		strbuf_str(&b, "Content-Transfer-Encoding: quoted-printable\r\n\r\n");
		encode_qp(&b, t.p, t.len);
	} else {
		/* 8bit rather than quoted-printable for UTF-8 so that the
		 * text stays splittable as it is; delivery makes it
		 * quoted-printable for a server without 8BITMIME. */
		strbuf_printf(&b, "Content-Transfer-Encoding: %s\r\n\r\n",
		              utf8_is_ascii_n(t.p, t.len) ? "7bit" : "8bit");
		strbuf_add(&b, t.p, t.len);
	}
	if (b.oom)
		goto out;
	*len = b.len;
	*out = strbuf_done(&b);
	rc = *out ? 0 : -1;
out:
	for (size_t i = 0; i < n; i++)
		post_info_free(&pi[i]);
	free(pi);
out_names:
	names_free(&nm);
	strbuf_free(&t);
	strbuf_free(&b);
	return rc;
}
