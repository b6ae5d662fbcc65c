/*
 * downgrade.c - 8-bit headers to RFC 2047 words, 8-bit bodies to
 * quoted-printable or base64 (see downgrade.h).
 *
 * The message is parsed with msg.h (nothing copied) and written anew into
 * a strbuf. Encoded words and transfer encodings come from encode.h,
 * transfer decoding from msg_decode_body().
 */
#include "mail/downgrade.h"

#include "mail/addr.h"
#include "mail/encode.h"
#include "mail/msg.h"
#include "mail/strbuf.h"
#include "mail/utf8.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define LINE_WANT 78

struct out {
	struct strbuf b;
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
	return !utf8_is_ascii_n(s, n);
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
	enc = encode_text(text, strlen(text), "\r\n", used < LINE_WANT ? LINE_WANT - used : 20);
	free(text);
	if (enc == NULL)
		return -1;
	strbuf_str(&o->b, enc);
	free(enc);
	return 0;
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

	strbuf_printf(&o->b, "%.*s: ", (int)h->name_len, h->name);
	for (size_t i = 0; i <= vn;) {
		size_t e = i + addr_list_item_end(v + i, vn - i), in, lt;
		const char *item = v + i;

		in = e - i;
		trim(&item, &in);
		i = e + 1;
		if (in == 0)
			continue;
		if (!first) {
			/* One item a line once anything was encoded: simple,
			 * and no line grows past its item. */
			strbuf_str(&o->b, ",\r\n ");
			col = 1;
		}
		first = 0;
		if (!has_8bit(item, in)) {
			strbuf_printf(&o->b, "%.*s", (int)in, item);
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
		strbuf_printf(&o->b, "\r\n %.*s", (int)(in - lt), item + lt);
		col = 1 + in - lt;
	}
	strbuf_str(&o->b, "\r\n");
	return 0;
}

/* Content-Type / Content-Disposition: 8-bit octets only inside quoted
 * parameter values, which are encoded inside their quotes. */
static int
put_param_field(struct out *o, const struct msg_header *h, const char *v, size_t vn)
{
	strbuf_printf(&o->b, "%.*s: ", (int)h->name_len, h->name);
	for (size_t i = 0; i < vn;) {
		if (v[i] == '"') {
			size_t e = i + 1;
			while (e < vn && v[e] != '"') {
				if (v[e] == '\\' && e + 1 < vn)
					e++;
				e++;
			}
			if (has_8bit(v + i + 1, e - i - 1)) {
				char *enc = encode_text(v + i + 1, e - i - 1, "\r\n ", 60);
				if (enc == NULL)
					return -1;
				strbuf_printf(&o->b, "\r\n \"%s\"", enc);
				free(enc);
			} else {
				strbuf_printf(&o->b, "%.*s", (int)(e - i + (e < vn)), v + i);
			}
			i = e + 1;
			continue;
		}
		if ((unsigned char)v[i] >= 0x80) {
			fail(o, "the %.*s header field has non-ASCII text outside quotes",
			     (int)h->name_len, h->name);
			return -1;
		}
		strbuf_add(&o->b, v + i, 1);
		i++;
	}
	strbuf_str(&o->b, "\r\n");
	return 0;
}

static int
put_header(struct out *o, const struct msg_header *h, int downgrade)
{
	char *v;
	size_t vn;
	int rc = 0;

	if (!downgrade || !has_8bit(h->start, h->len)) {
		strbuf_add(&o->b, h->start, h->len);
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
		strbuf_printf(&o->b, "%s%.*s: ", pre, (int)h->name_len, h->name);
		rc = put_words(o, v, vn, strlen(pre) + h->name_len + 2);
		strbuf_str(&o->b, "\r\n");
	}
	free(v);
	return rc;
}

/* --- bodies --- */

static int entity(struct out *o, const char *buf, size_t len, int flags, int depth);

static void
put_sanitized(struct out *o, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		strbuf_add(&o->b, (unsigned char)s[i] >= 0x80 ? "?" : s + i, 1);
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
				strbuf_add(&o->b, b + pe, i - pe);
			} else {
				put_sanitized(o, b + part, i - part);
			}
			strbuf_add(&o->b, b + i, e + eol_len - i);
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
		strbuf_str(&o->b, "MIME-Version: 1.0\r\n");
	if (msg_header_get(m, "Content-Type", 0) == NULL)
		/* Unlabelled 8-bit text: say what it is now that it is
		 * encoded (RFC 1428's name for "8-bit, charset unknown"). */
		strbuf_str(&o->b, "Content-Type: text/plain; charset=unknown-8bit\r\n");
	strbuf_printf(&o->b, "Content-Transfer-Encoding: %s\r\n\r\n",
	              text ? "quoted-printable" : "base64");
	if (text)
		encode_qp(&o->b, dec, dlen);
	else
		encode_base64(&o->b, dec, dlen, 76);
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
		strbuf_add(&o->b, buf, len);
		return 0;
	}
	if (msg_parse(&m, buf, len) < 0)
		return -1;
	cth = msg_header_get(&m, "Content-Type", 0);
	if (msg_ctype_parse(cth ? cth->value : "", cth ? cth->value_len : 0, &ct) < 0) {
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
		/* A line there is no field (an mbox "From " line, junk): it
		 * cannot be encoded, and must not go out 8-bit. */
		if (dh && has_8bit(he, (size_t)(m.body - he))) {
			fail(o, "a header line that is not a field holds 8-bit octets");
			rc = -1;
			goto out;
		}
		strbuf_add(&o->b, he, (size_t)(m.body - he));
	}
	if (!has_8bit(m.body, m.body_len)) {
		strbuf_add(&o->b, m.body, m.body_len);
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
		strbuf_add(&o->b, m.body, m.body_len);
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
	struct out o = {{0}, whybuf, whylen, 0};
	int rc;

	*out = NULL;
	rc = entity(&o, msg, len, flags, 0);
	if (o.b.oom)
		rc = -1;
	*outlen = o.b.len;
	if (rc < 0 || (*out = strbuf_done(&o.b)) == NULL) {
		if (!o.failed)
			snprintf(whybuf, whylen, "out of memory");
		strbuf_free(&o.b);
		return -1;
	}
	return 0;
}
