/*
 * downgrade.c - 8-bit headers to RFC 2047 words, 8-bit bodies to
 * quoted-printable or base64 (see downgrade.h).
 *
 * The message is parsed with msg.h (nothing copied) and written anew into
 * an open_memstream(3) buffer: libc's growing string, so that this file
 * keeps no string buffer of its own. Encoded words come from
 * msg_encode_words(), transfer decoding from msg_decode_body().
 */
#include "mail/downgrade.h"

#include "mail/msg.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define LINE_WANT 78

struct out {
	FILE *f;
	char *why;
	size_t whylen;
	int failed; /* why is written */
};

static void fail(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
fail(struct out *o, const char *fmt, ...)
{
	va_list ap;

	if (o->failed)
		return;
	o->failed = 1;
	va_start(ap, fmt);
	vsnprintf(o->why, o->whylen, fmt, ap);
	va_end(ap);
}

static int
has_8bit(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] >= 0x80)
			return 1;
	return 0;
}

static int
name_in(const char *name, size_t len, const char *const *list)
{
	for (; *list != NULL; list++)
		if (msg_word_eq(name, len, *list))
			return 1;
	return 0;
}

static const char *const address_fields[] = {"From",
                                             "Sender",
                                             "Reply-To",
                                             "To",
                                             "Cc",
                                             "Bcc",
                                             "Resent-From",
                                             "Resent-Sender",
                                             "Resent-To",
                                             "Resent-Cc",
                                             "Resent-Bcc",
                                             "List-Id",
                                             "Disposition-Notification-To",
                                             NULL};
static const char *const param_fields[] = {"Content-Type", "Content-Disposition", NULL};
static const char *const mime_fields[] = {"Content-Transfer-Encoding", "Content-ID", "MIME-Version",
                                          NULL};
static const char *const encapsulated_fields[] = {
    "Received",    "Message-ID",        "In-Reply-To", "References",       "Date",
    "Resent-Date", "Resent-Message-ID", "Return-Path", "List-Unsubscribe", "List-Post",
    "List-Help",   "List-Subscribe",    "List-Owner",  "List-Archive",     "Archived-At",
    NULL};

/* Text (UTF-8, existing encoded words decoded first) as encoded words,
 * for a line that has `used` columns already. */
static int
put_words(struct out *o, const char *s, size_t n, size_t used)
{
	char *text = msg_decode_words(s, n, NULL), *enc;

	if (text == NULL)
		return -1;
	enc =
	    msg_encode_words(text, strlen(text), "\r\n", used < LINE_WANT ? LINE_WANT - used : 20);
	free(text);
	if (enc == NULL)
		return -1;
	fputs(enc, o->f);
	free(enc);
	return 0;
}

/* The end of the item that starts at i in an unfolded address list: its
 * top-level comma, or n. */
static size_t
next_item(const char *s, size_t n, size_t i)
{
	int quoted = 0, comment = 0, angle = 0;

	for (; i < n; i++) {
		char c = s[i];
		if (quoted) {
			if (c == '\\' && i + 1 < n)
				i++;
			else if (c == '"')
				quoted = 0;
		} else if (comment) {
			if (c == '\\' && i + 1 < n)
				i++;
			else if (c == '(')
				comment++;
			else if (c == ')')
				comment--;
		} else if (c == '"') {
			quoted = 1;
		} else if (c == '(') {
			comment = 1;
		} else if (c == '<') {
			angle = 1;
		} else if (c == '>') {
			angle = 0;
		} else if (c == ',' && !angle) {
			return i;
		}
	}
	return n;
}

/* The offset of the top-level '<' of one item, or n. */
static size_t
find_angle(const char *s, size_t n)
{
	int quoted = 0, comment = 0;

	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (quoted) {
			if (c == '\\' && i + 1 < n)
				i++;
			else if (c == '"')
				quoted = 0;
		} else if (comment) {
			if (c == '(')
				comment++;
			else if (c == ')')
				comment--;
		} else if (c == '"') {
			quoted = 1;
		} else if (c == '(') {
			comment = 1;
		} else if (c == '<') {
			return i;
		}
	}
	return n;
}

static void
trim(const char **s, size_t *n)
{
	while (*n > 0 && isspace((unsigned char)**s)) {
		(*s)++;
		(*n)--;
	}
	while (*n > 0 && isspace((unsigned char)(*s)[*n - 1]))
		(*n)--;
}

/* One display name: unquoted, then encoded. */
static int
put_phrase(struct out *o, const char *p, size_t n, size_t used)
{
	char *plain;
	size_t k = 0;
	int rc;

	if (n >= 2 && p[0] == '"' && p[n - 1] == '"') {
		p++;
		n -= 2;
	}
	if ((plain = malloc(n + 1)) == NULL)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (p[i] == '\\' && i + 1 < n)
			i++;
		plain[k++] = p[i];
	}
	rc = put_words(o, plain, k, used);
	free(plain);
	return rc;
}

static int
put_address_field(struct out *o, const struct msg_header *h, const char *v, size_t vn)
{
	size_t col = h->name_len + 2;
	int first = 1;

	fprintf(o->f, "%.*s: ", (int)h->name_len, h->name);
	for (size_t i = 0; i <= vn;) {
		size_t e = next_item(v, vn, i), in, lt;
		const char *item = v + i;

		in = e - i;
		trim(&item, &in);
		i = e + 1;
		if (in == 0)
			continue;
		if (!first) {
			/* One item a line once anything was encoded: simple,
			 * and no line grows past its item. */
			fputs(",\r\n ", o->f);
			col = 1;
		}
		first = 0;
		if (!has_8bit(item, in)) {
			fprintf(o->f, "%.*s", (int)in, item);
			col += in;
			continue;
		}
		lt = find_angle(item, in);
		if (lt == in || has_8bit(item + lt, in - lt) || memchr(item, ':', lt) != NULL) {
			fail(o, "the %.*s header field has a non-ASCII address", (int)h->name_len,
			     h->name);
			return -1;
		}
		const char *ph = item;
		size_t pn = lt;
		trim(&ph, &pn);
		if (put_phrase(o, ph, pn, col) < 0)
			return -1;
		/* The angle address on a line of its own: the words above
		 * may have filled theirs. */
		fprintf(o->f, "\r\n %.*s", (int)(in - lt), item + lt);
		col = 1 + in - lt;
	}
	fputs("\r\n", o->f);
	return 0;
}

/* Content-Type / Content-Disposition: 8-bit octets only inside quoted
 * parameter values, which are encoded inside their quotes. */
static int
put_param_field(struct out *o, const struct msg_header *h, const char *v, size_t vn)
{
	fprintf(o->f, "%.*s: ", (int)h->name_len, h->name);
	for (size_t i = 0; i < vn;) {
		if (v[i] == '"') {
			size_t e = i + 1;
			while (e < vn && v[e] != '"') {
				if (v[e] == '\\' && e + 1 < vn)
					e++;
				e++;
			}
			if (has_8bit(v + i + 1, e - i - 1)) {
				char *enc = msg_encode_words(v + i + 1, e - i - 1, "\r\n ", 60);
				if (enc == NULL)
					return -1;
				fprintf(o->f, "\r\n \"%s\"", enc);
				free(enc);
			} else {
				fprintf(o->f, "%.*s", (int)(e - i + (e < vn)), v + i);
			}
			i = e + 1;
			continue;
		}
		if ((unsigned char)v[i] >= 0x80) {
			fail(o, "the %.*s header field has non-ASCII text outside quotes",
			     (int)h->name_len, h->name);
			return -1;
		}
		fputc(v[i], o->f);
		i++;
	}
	fputs("\r\n", o->f);
	return 0;
}

static int
put_header(struct out *o, const struct msg_header *h, int downgrade)
{
	char *v;
	size_t vn;
	int rc = 0;

	if (!downgrade || !has_8bit(h->start, h->len)) {
		fwrite(h->start, 1, h->len, o->f);
		return 0;
	}
	if (name_in(h->name, h->name_len, mime_fields)) {
		fail(o, "the %.*s header field is not ASCII", (int)h->name_len, h->name);
		return -1;
	}
	if ((v = msg_unfold(h->value, h->value_len)) == NULL)
		return -1;
	vn = strlen(v);
	if (name_in(h->name, h->name_len, address_fields)) {
		rc = put_address_field(o, h, v, vn);
	} else if (name_in(h->name, h->name_len, param_fields)) {
		rc = put_param_field(o, h, v, vn);
	} else {
		const char *pre =
		    name_in(h->name, h->name_len, encapsulated_fields) ? "Downgraded-" : "";
		fprintf(o->f, "%s%.*s: ", pre, (int)h->name_len, h->name);
		rc = put_words(o, v, vn, strlen(pre) + h->name_len + 2);
		fputs("\r\n", o->f);
	}
	free(v);
	return rc;
}

/* --- bodies --- */

static void
put_b64(struct out *o, const unsigned char *in, size_t n)
{
	static const char tab[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	int col = 0;

	for (size_t i = 0; i < n; i += 3) {
		unsigned v = (unsigned)in[i] << 16;
		if (i + 1 < n)
			v |= (unsigned)in[i + 1] << 8;
		if (i + 2 < n)
			v |= in[i + 2];
		fputc(tab[(v >> 18) & 63], o->f);
		fputc(tab[(v >> 12) & 63], o->f);
		fputc(i + 1 < n ? tab[(v >> 6) & 63] : '=', o->f);
		fputc(i + 2 < n ? tab[v & 63] : '=', o->f);
		if ((col += 4) >= 76) {
			fputs("\r\n", o->f);
			col = 0;
		}
	}
	if (col > 0)
		fputs("\r\n", o->f);
}

char *
downgrade_qp_encode(const char *in, size_t len, size_t *outlen)
{
	static const char hex[] = "0123456789ABCDEF";
	char *buf = NULL;
	size_t blen = 0;
	FILE *f = open_memstream(&buf, &blen);
	size_t col = 0;

	if (f == NULL)
		return NULL;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)in[i];
		char enc[3];
		size_t w;
		int eol_next, last;

		if (c == '\r' || c == '\n') {
			if (c == '\r' && i + 1 < len && in[i + 1] == '\n')
				i++;
			fputs("\r\n", f);
			col = 0;
			continue;
		}
		eol_next = i + 1 == len || in[i + 1] == '\r' || in[i + 1] == '\n';
		/* The last octet of a line needs no room for a soft break. */
		last = eol_next;
		if ((c >= 33 && c <= 126 && c != '=') || ((c == ' ' || c == '\t') && !eol_next)) {
			enc[0] = (char)c;
			w = 1;
		} else {
			enc[0] = '=';
			enc[1] = hex[c >> 4];
			enc[2] = hex[c & 15];
			w = 3;
		}
		if (col + w > (last ? 76u : 75u)) {
			fputs("=\r\n", f);
			col = 0;
		}
		fwrite(enc, 1, w, f);
		col += w;
	}
	if (fclose(f) != 0) {
		free(buf);
		return NULL;
	}
	*outlen = blen;
	return buf;
}

static int entity(struct out *o, const char *buf, size_t len, int flags, int depth);

static void
put_sanitized(struct out *o, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		fputc((unsigned char)s[i] >= 0x80 ? '?' : s[i], o->f);
}

static int
is_delim(const char *line, size_t n, const char *bd, size_t bl, int *close)
{
	if (n < bl + 2 || line[0] != '-' || line[1] != '-' || memcmp(line + 2, bd, bl) != 0)
		return 0;
	line += bl + 2;
	n -= bl + 2;
	*close = n >= 2 && line[0] == '-' && line[1] == '-';
	if (*close) {
		line += 2;
		n -= 2;
	}
	for (size_t i = 0; i < n; i++)
		if (line[i] != ' ' && line[i] != '\t' && line[i] != '\r' && line[i] != '\n')
			return 0;
	return 1;
}

/* The parts of a multipart body, each downgraded; delimiters as they are. */
static int
put_multipart(struct out *o, const char *b, size_t n, const char *bd, int flags, int depth)
{
	size_t bl = strlen(bd), i = 0, part = 0;
	int in_part = 0, done = 0;

	while (i < n && !done) {
		size_t e = i, eol_len = 0;
		int close = 0;

		while (e < n && b[e] != '\n' && b[e] != '\r')
			e++;
		if (e < n)
			eol_len = (b[e] == '\r' && e + 1 < n && b[e + 1] == '\n') ? 2 : 1;
		if (is_delim(b + i, e - i, bd, bl, &close)) {
			if (in_part) {
				/* The line end before a delimiter belongs to it. */
				size_t pe = i, pl;
				if (pe > part && b[pe - 1] == '\n')
					pe--;
				if (pe > part && b[pe - 1] == '\r')
					pe--;
				pl = pe - part;
				if (entity(o, b + part, pl, flags, depth + 1) < 0)
					return -1;
				fwrite(b + pe, 1, i - pe, o->f);
			} else {
				put_sanitized(o, b + part, i - part);
			}
			fwrite(b + i, 1, e + eol_len - i, o->f);
			in_part = !close;
			done = close;
			part = e + eol_len;
		}
		i = e + eol_len;
	}
	if (in_part) /* no closing delimiter: the last part runs to the end */
		return entity(o, b + part, n - part, flags, depth + 1);
	put_sanitized(o, b + part, n - part);
	return 0;
}

static int
put_leaf_body(struct out *o, const struct msg *m, const struct msg_ctype *ct, int top,
              int downgrade_headers)
{
	const struct msg_header *cte = msg_header_get(m, "Content-Transfer-Encoding", 0);
	char *cte_v = cte ? msg_unfold(cte->value, cte->value_len) : NULL, *dec;
	size_t dlen;
	int text = strcmp(ct->type, "text") == 0;

	if (cte != NULL && cte_v == NULL)
		return -1;
	dec = msg_decode_body(cte_v, m->body, m->body_len, &dlen);
	free(cte_v);
	if (dec == NULL)
		return -1;
	for (size_t k = 0; k < m->nhdrs; k++) {
		if (msg_word_eq(m->hdrs[k].name, m->hdrs[k].name_len, "Content-Transfer-Encoding"))
			continue;
		if (put_header(o, &m->hdrs[k], downgrade_headers) < 0) {
			free(dec);
			return -1;
		}
	}
	if (top && msg_header_get(m, "MIME-Version", 0) == NULL)
		fputs("MIME-Version: 1.0\r\n", o->f);
	if (msg_header_get(m, "Content-Type", 0) == NULL)
		/* Unlabelled 8-bit text: say what it is now that it is
		 * encoded (RFC 1428's name for "8-bit, charset unknown"). */
		fputs("Content-Type: text/plain; charset=unknown-8bit\r\n", o->f);
	fprintf(o->f, "Content-Transfer-Encoding: %s\r\n\r\n",
	        text ? "quoted-printable" : "base64");
	if (text) {
		size_t ql;
		char *q = downgrade_qp_encode(dec, dlen, &ql);
		if (q == NULL) {
			free(dec);
			return -1;
		}
		fwrite(q, 1, ql, o->f);
		free(q);
	} else {
		put_b64(o, (const unsigned char *)dec, dlen);
	}
	free(dec);
	return 0;
}

/* One entity (the message, a part, an attached message): its header
 * fields, then its body, each downgraded as flags say. */
static int
entity(struct out *o, const char *buf, size_t len, int flags, int depth)
{
	struct msg m;
	struct msg_ctype ct;
	const struct msg_header *cth;
	int rc = 0, dh = flags & DOWNGRADE_HEADERS;

	if (!has_8bit(buf, len)) {
		fwrite(buf, 1, len, o->f);
		return 0;
	}
	if (msg_parse(&m, buf, len) < 0)
		return -1;
	cth = msg_header_get(&m, "Content-Type", 0);
	if (msg_ctype_parse(cth ? cth->value : NULL, cth ? cth->value_len : 0, &ct) < 0) {
		msg_free(&m);
		return -1;
	}
	if ((flags & DOWNGRADE_BODY) && depth < MSG_WALK_MAX_DEPTH &&
	    has_8bit(m.body, m.body_len) && !msg_ctype_is(&ct, "multipart", NULL) &&
	    !msg_ctype_is(&ct, "message", "rfc822")) {
		rc = put_leaf_body(o, &m, &ct, depth == 0, dh);
		goto out;
	}
	for (size_t k = 0; k < m.nhdrs && rc == 0; k++)
		rc = put_header(o, &m.hdrs[k], dh);
	if (rc < 0)
		goto out;
	/* The blank line (or whatever ended the header block) as it was. */
	{
		const char *he =
		    m.nhdrs ? m.hdrs[m.nhdrs - 1].start + m.hdrs[m.nhdrs - 1].len : buf;
		fwrite(he, 1, (size_t)(m.body - he), o->f);
	}
	if (!has_8bit(m.body, m.body_len)) {
		fwrite(m.body, 1, m.body_len, o->f);
	} else if (depth >= MSG_WALK_MAX_DEPTH) {
		fail(o, "MIME parts nested more than %d deep", MSG_WALK_MAX_DEPTH);
		rc = -1;
	} else if (msg_ctype_is(&ct, "multipart", NULL) &&
	           msg_ctype_param(&ct, "boundary") != NULL) {
		const char *bd = msg_ctype_param(&ct, "boundary");
		if (has_8bit(bd, strlen(bd))) {
			fail(o, "a MIME boundary is not ASCII");
			rc = -1;
			goto out;
		}
		rc = put_multipart(o, m.body, m.body_len, bd, flags, depth);
	} else if (msg_ctype_is(&ct, "multipart", NULL) || msg_ctype_is(&ct, "message", "rfc822")) {
		rc = entity(o, m.body, m.body_len, flags, depth + 1);
	} else {
		/* Only the headers were to be downgraded. */
		fwrite(m.body, 1, m.body_len, o->f);
	}
out:
	msg_ctype_free(&ct);
	msg_free(&m);
	return rc;
}

static int
part_header_8bit(const struct msg_part *part, void *arg)
{
	(void)arg;
	return part->depth > 0 && has_8bit(part->start, (size_t)(part->body - part->start));
}

int
downgrade_scan(const char *msg, size_t len)
{
	struct msg m;
	int need = 0;

	if (!has_8bit(msg, len))
		return 0;
	if (msg_parse(&m, msg, len) < 0)
		return DOWNGRADE_HEADERS | DOWNGRADE_BODY;
	if (has_8bit(msg, (size_t)(m.body - msg)))
		need |= DOWNGRADE_HEADERS;
	if (has_8bit(m.body, m.body_len))
		need |= DOWNGRADE_BODY;
	/* UTF-8 in the header of a MIME part (a file name, an attached
	 * message's Subject) needs SMTPUTF8 as much as the message's own. */
	if (need == DOWNGRADE_BODY && msg_walk(msg, len, part_header_8bit, NULL) != 0)
		need |= DOWNGRADE_HEADERS;
	msg_free(&m);
	return need;
}

int
downgrade_message(const char *msg, size_t len, int flags, char **out, size_t *outlen, char *whybuf,
                  size_t whylen)
{
	struct out o = {NULL, whybuf, whylen, 0};
	char *buf = NULL;
	size_t blen = 0;
	int rc;

	*out = NULL;
	if ((o.f = open_memstream(&buf, &blen)) == NULL) {
		snprintf(whybuf, whylen, "out of memory");
		return -1;
	}
	rc = entity(&o, msg, len, flags, 0);
	if (fclose(o.f) != 0)
		rc = -1;
	if (rc < 0) {
		if (!o.failed)
			snprintf(whybuf, whylen, "out of memory");
		free(buf);
		return -1;
	}
	*out = buf;
	*outlen = blen;
	return 0;
}
