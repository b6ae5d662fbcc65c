/*
 * msg.c - header fields, unfolding, RFC 2047 decoding, Content-Type with
 * RFC 2231 parameters, transfer decoding and the MIME walk. See msg.h (the
 * encoders that write these forms are in encode.c).
 *
 * Nothing here trusts the input: every scan is bounded by the buffer's
 * end, malformed pieces are kept as they are written rather than refused.
 */
#include "mail/msg.h"

#include <ctype.h>
#include <errno.h>
#include <iconv.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mail/strbuf.h"
#include "mail/utf8.h"

int
msg_word_eq(const char *s, size_t len, const char *word)
{
	return strlen(word) == len && strncasecmp(s, word, len) == 0;
}

/* Length of the line at p (without its end), and the end's length in *eol
 * (0 at the end of the buffer). */
static size_t
line_len(const char *p, const char *end, size_t *eol)
{
	const char *q = p;

	while (q < end && *q != '\n' && *q != '\r')
		q++;
	if (q == end)
		*eol = 0;
	else if (*q == '\r' && q + 1 < end && q[1] == '\n')
		*eol = 2;
	else
		*eol = 1;
	return (size_t)(q - p);
}

static int
is_field_name_char(unsigned char c)
{
	return c > 32 && c < 127 && c != ':';
}

static int
add_header(struct msg *m, size_t *cap, const struct msg_header *h)
{
	if (m->nhdrs == *cap) {
		size_t ncap = *cap ? *cap * 2 : 32;
		struct msg_header *n = realloc(m->hdrs, ncap * sizeof(*n));

		if (n == NULL)
			return -1;
		m->hdrs = n;
		*cap = ncap;
	}
	m->hdrs[m->nhdrs++] = *h;
	return 0;
}

int
msg_parse(struct msg *m, const char *buf, size_t len)
{
	const char *p = buf, *end = buf + len;
	size_t cap = 0, eol, n;
	struct msg_header h;

	memset(m, 0, sizeof(*m));
	m->buf = buf;
	m->len = len;
	m->eol = "\r\n";
	n = line_len(p, end, &eol);
	if (eol == 1)
		m->eol = p[n] == '\n' ? "\n" : "\r";
	/* An mbox "From " separator line is not a field. */
	if (len >= 5 && memcmp(p, "From ", 5) == 0)
		p += n + eol;
	while (p < end) {
		const char *colon, *q;

		n = line_len(p, end, &eol);
		if (n == 0) { /* the blank line */
			m->hdr_len = (size_t)(p - buf);
			m->body = p + eol;
			m->body_len = (size_t)(end - m->body);
			return 0;
		}
		for (colon = p; colon < p + n && is_field_name_char((unsigned char)*colon); colon++)
			;
		/* Some writers put white space before the colon. */
		for (q = colon; q < p + n && (*q == ' ' || *q == '\t'); q++)
			;
		if (colon == p || q == p + n || *q != ':')
			break; /* not a field: the body starts here */
		h.name = p;
		h.name_len = (size_t)(colon - p);
		h.value = q + 1;
		h.start = p;
		h.folded = 0;
		p += n + eol;
		while (p < end && (*p == ' ' || *p == '\t')) {
			n = line_len(p, end, &eol);
			/* A continuation made of white space only still folds. */
			p += n + eol;
			h.folded = 1;
		}
		h.len = (size_t)(p - h.start);
		/* The value stops before the field's last line end. */
		{
			const char *ve = p;

			if (ve > h.value && ve[-1] == '\n')
				ve--;
			if (ve > h.value && ve[-1] == '\r')
				ve--;
			h.value_len = (size_t)(ve - h.value);
		}
		if (add_header(m, &cap, &h) < 0) {
			free(m->hdrs);
			m->hdrs = NULL;
			return -1;
		}
	}
	m->hdr_len = (size_t)(p - buf);
	m->body = p;
	m->body_len = (size_t)(end - p);
	return 0;
}

void
msg_free(struct msg *m)
{
	free(m->hdrs);
	m->hdrs = NULL;
	m->nhdrs = 0;
}

const struct msg_header *
msg_header_get(const struct msg *m, const char *name, size_t nth)
{
	for (size_t i = 0; i < m->nhdrs; i++)
		if (msg_word_eq(m->hdrs[i].name, m->hdrs[i].name_len, name) && nth-- == 0)
			return &m->hdrs[i];
	return NULL;
}

size_t
msg_header_count(const struct msg *m, const char *name)
{
	size_t n = 0;

	for (size_t i = 0; i < m->nhdrs; i++)
		if (msg_word_eq(m->hdrs[i].name, m->hdrs[i].name_len, name))
			n++;
	return n;
}

char *
msg_unfold(const char *value, size_t len)
{
	char *out = malloc(len + 1), *o = out;
	const char *p = value, *end = value + len;

	if (out == NULL)
		return NULL;
	while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'))
		p++;
	for (; p < end; p++)
		if (*p != '\r' && *p != '\n')
			*o++ = *p;
	while (o > out && (o[-1] == ' ' || o[-1] == '\t'))
		o--;
	*o = '\0';
	return out;
}

char *
msg_header_text(const struct msg *m, const char *name)
{
	const struct msg_header *h = msg_header_get(m, name, 0);

	return h ? msg_unfold(h->value, h->value_len) : NULL;
}

/* --- charsets --- */

static int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Appends in[0..len) in charset cs to b as UTF-8; -1 if the charset is
 * unknown or the text cannot be converted. */
static int
sb_add_charset(struct strbuf *b, const char *cs, const char *in, size_t len)
{
	iconv_t cd;
	char tmp[256];

	if (strcasecmp(cs, "utf-8") == 0 || strcasecmp(cs, "utf8") == 0 ||
	    strcasecmp(cs, "us-ascii") == 0 || strcasecmp(cs, "ascii") == 0) {
		strbuf_add(b, in, len);
		return 0;
	}
	if (strcasecmp(cs, "iso-8859-1") == 0 || strcasecmp(cs, "latin1") == 0) {
		for (size_t i = 0; i < len; i++) {
			char u[4];

			strbuf_add(b, u, utf8_encode((unsigned char)in[i], u));
		}
		return 0;
	}
	if ((cd = iconv_open("UTF-8", cs)) == (iconv_t)-1)
		return -1;
	{
		size_t start = b->len;
		char *ip = (char *)in;
		size_t il = len;

		while (il > 0) {
			char *op = tmp;
			size_t ol = sizeof(tmp);
			size_t r = iconv(cd, &ip, &il, &op, &ol);

			strbuf_add(b, tmp, (size_t)(op - tmp));
			if (r == (size_t)-1 && errno != E2BIG) {
				b->len = start;
				if (b->p)
					b->p[start] = '\0';
				iconv_close(cd);
				return -1;
			}
		}
		iconv_close(cd);
	}
	return 0;
}

int
msg_charset_to_utf8(struct strbuf *b, const char *cs, const char *in, size_t len)
{
	return sb_add_charset(b, cs && *cs ? cs : "us-ascii", in, len);
}

/* --- RFC 2047 --- */

/* Decodes one encoded-word at p (which starts with "=?"); on success
 * appends its text and returns its length, else returns 0. */
static size_t
decode_word(struct strbuf *b, const char *p, const char *end)
{
	const char *cs = p + 2, *q, *enc, *text, *te;
	char charset[64], *dec;
	size_t clen, dlen = 0;
	int rc;

	for (q = cs; q < end && *q != '?' && *q != ' ' && *q != '\t'; q++)
		;
	if (q >= end || *q != '?' || q == cs)
		return 0;
	clen = (size_t)(q - cs);
	enc = q + 1;
	if (enc + 2 >= end || enc[1] != '?')
		return 0;
	text = enc + 2;
	for (te = text; te + 1 < end && !(te[0] == '?' && te[1] == '='); te++)
		if (*te == ' ' || *te == '\t')
			return 0;
	if (te + 1 >= end)
		return 0;
	if (clen >= sizeof(charset))
		return 0;
	memcpy(charset, cs, clen);
	charset[clen] = '\0';
	if ((q = memchr(charset, '*', clen)) != NULL) /* RFC 2231 language */
		charset[q - charset] = '\0';
	if ((dec = malloc((size_t)(te - text) + 1)) == NULL) {
		b->oom = 1;
		return 0;
	}
	if (*enc == 'B' || *enc == 'b') {
		dlen = msg_base64_decode(text, (size_t)(te - text), dec);
	} else if (*enc == 'Q' || *enc == 'q') {
		for (q = text; q < te; q++) {
			int hi, lo;

			if (*q == '_') {
				dec[dlen++] = ' ';
			} else if (*q == '=' && q + 2 < te && (hi = hexval(q[1])) >= 0 &&
			           (lo = hexval(q[2])) >= 0) {
				dec[dlen++] = (char)(hi * 16 + lo);
				q += 2;
			} else {
				dec[dlen++] = *q;
			}
		}
	} else {
		free(dec);
		return 0;
	}
	rc = sb_add_charset(b, charset, dec, dlen);
	free(dec);
	if (rc < 0)
		return 0;
	return (size_t)(te + 2 - p);
}

char *
msg_decode_words(const char *s, size_t len, int *had_words)
{
	struct strbuf b = {0};
	const char *p = s, *end = s + len;
	int last_was_word = 0;

	if (had_words)
		*had_words = 0;
	while (p < end) {
		size_t n;

		if (p + 1 < end && p[0] == '=' && p[1] == '?' &&
		    (n = decode_word(&b, p, end)) > 0) {
			if (had_words)
				*had_words = 1;
			p += n;
			last_was_word = 1;
			continue;
		}
		if (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n') {
			const char *ws = p;

			while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'))
				p++;
			/* White space between two encoded-words goes. */
			if (last_was_word && p + 1 < end && p[0] == '=' && p[1] == '?') {
				struct strbuf probe = {0};
				size_t m = decode_word(&probe, p, end);

				free(probe.p);
				if (m > 0)
					continue;
			}
			for (; ws < p; ws++)
				if (*ws != '\r' && *ws != '\n')
					strbuf_add(&b, ws, 1);
			continue;
		}
		strbuf_add(&b, p, 1);
		p++;
		last_was_word = 0;
	}
	return strbuf_done(&b);
}

static const char b64chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* --- Content-Type --- */

static const char *
skip_cfws(const char *p, const char *end)
{
	int depth = 0;

	while (p < end) {
		if (*p == '(') {
			depth++;
		} else if (*p == ')' && depth > 0) {
			depth--;
		} else if (*p == '\\' && depth > 0 && p + 1 < end) {
			p++;
		} else if (depth == 0 && *p != ' ' && *p != '\t' && *p != '\r' && *p != '\n') {
			break;
		}
		p++;
	}
	return p;
}

static int
is_token_char(unsigned char c)
{
	return c > 32 && c < 127 && !strchr("()<>@,;:\\\"/[]?=", c);
}

static void
copy_lower(char *dst, size_t dstlen, const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n && i + 1 < dstlen; i++)
		dst[i] = (char)tolower((unsigned char)s[i]);
	dst[i] = '\0';
}

struct rawparam {
	char *name;   /* lower-cased, without the section and star */
	int section;  /* -1 when not continued */
	int extended; /* name ended in '*' */
	char *value;
};

/* Percent-decodes an RFC 2231 extended value section into b. */
static void
sb_add_pct(struct strbuf *b, const char *v)
{
	for (; *v; v++) {
		int hi, lo;

		if (*v == '%' && (hi = hexval(v[1])) >= 0 && (lo = hexval(v[2])) >= 0) {
			char c = (char)(hi * 16 + lo);

			strbuf_add(b, &c, 1);
			v += 2;
		} else {
			strbuf_add(b, v, 1);
		}
	}
}

static int
cmp_section(const void *a, const void *b)
{
	const struct rawparam *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	return c ? c : x->section - y->section;
}

/* Joins RFC 2231 sections and decodes extended values into ct->params. */
static int
join_params(struct msg_ctype *ct, struct rawparam *raw, size_t n)
{
	qsort(raw, n, sizeof(*raw), cmp_section);
	for (size_t i = 0; i < n;) {
		size_t j = i;
		struct strbuf bytes = {0}, out = {0};
		char charset[64] = "";
		struct msg_param *np;

		while (j < n && strcmp(raw[j].name, raw[i].name) == 0)
			j++;
		if (msg_ctype_param(ct, raw[i].name) != NULL) { /* first one wins */
			i = j;
			continue;
		}
		for (size_t k = i; k < j; k++) {
			const char *v = raw[k].value;

			if (raw[k].extended && k == i) {
				const char *q1 = strchr(v, '\''),
				           *q2 = q1 ? strchr(q1 + 1, '\'') : NULL;

				if (q2 != NULL) {
					size_t cl = (size_t)(q1 - v);

					if (cl < sizeof(charset)) {
						memcpy(charset, v, cl);
						charset[cl] = '\0';
					}
					v = q2 + 1;
				}
			}
			if (raw[k].extended)
				sb_add_pct(&bytes, v);
			else
				strbuf_add(&bytes, v, strlen(v));
		}
		if (bytes.p == NULL)
			strbuf_add(&bytes, "", 0);
		if (charset[0] == '\0' ||
		    sb_add_charset(&out, charset, bytes.p ? bytes.p : "", bytes.len) < 0) {
			free(out.p);
			out = bytes;
			bytes.p = NULL;
		}
		free(bytes.p);
		if (out.oom || out.p == NULL)
			return -1;
		np = realloc(ct->params, (ct->nparams + 1) * sizeof(*np));
		if (np == NULL) {
			free(out.p);
			return -1;
		}
		ct->params = np;
		np[ct->nparams].name = strdup(raw[i].name);
		np[ct->nparams].value = out.p;
		if (np[ct->nparams].name == NULL) {
			free(out.p);
			return -1;
		}
		ct->nparams++;
		i = j;
	}
	return 0;
}

int
msg_ctype_parse(const char *value, size_t len, struct msg_ctype *ct)
{
	/* A missing value (NULL) reads as an empty one: NULL + 0 is undefined. */
	const char *p = value ? value : "", *end = p + (value ? len : 0), *t;
	struct rawparam *raw = NULL;
	size_t nraw = 0;
	int rc = 0;

	memset(ct, 0, sizeof(*ct));
	p = skip_cfws(p, end);
	for (t = p; t < end && is_token_char((unsigned char)*t); t++)
		;
	if (t == p || t >= end || *t != '/') {
		strcpy(ct->type, "text");
		strcpy(ct->subtype, "plain");
		return 0;
	}
	copy_lower(ct->type, sizeof(ct->type), p, (size_t)(t - p));
	p = t + 1;
	for (t = p; t < end && is_token_char((unsigned char)*t); t++)
		;
	if (t == p) {
		strcpy(ct->type, "text");
		strcpy(ct->subtype, "plain");
		return 0;
	}
	copy_lower(ct->subtype, sizeof(ct->subtype), p, (size_t)(t - p));
	p = t;
	for (;;) {
		const char *ns, *ne;
		struct strbuf v = {0};
		struct rawparam rp;
		const char *star;

		p = skip_cfws(p, end);
		if (p >= end)
			break;
		if (*p != ';') { /* junk: skip to the next ';' */
			while (p < end && *p != ';')
				p++;
			continue;
		}
		p = skip_cfws(p + 1, end);
		ns = p;
		while (p < end && is_token_char((unsigned char)*p))
			p++;
		ne = p;
		p = skip_cfws(p, end);
		if (ns == ne || p >= end || *p != '=')
			continue;
		p = skip_cfws(p + 1, end);
		if (p < end && *p == '"') {
			for (p++; p < end && *p != '"'; p++) {
				if (*p == '\\' && p + 1 < end)
					p++;
				if (*p != '\r' && *p != '\n')
					strbuf_add(&v, p, 1);
			}
			if (p < end)
				p++;
		} else {
			const char *vs = p;

			while (p < end && is_token_char((unsigned char)*p))
				p++;
			strbuf_add(&v, vs, (size_t)(p - vs));
		}
		if (v.p == NULL)
			strbuf_add(&v, "", 0);
		if (v.oom) {
			rc = -1;
			break;
		}
		rp.section = -1;
		rp.extended = 0;
		if (ne > ns && ne[-1] == '*') {
			rp.extended = 1;
			ne--;
		}
		star = memchr(ns, '*', (size_t)(ne - ns));
		if (star != NULL) {
			rp.section = atoi(star + 1);
			ne = star;
		}
		rp.name = malloc((size_t)(ne - ns) + 1);
		if (rp.name == NULL) {
			free(v.p);
			rc = -1;
			break;
		}
		copy_lower(rp.name, (size_t)(ne - ns) + 1, ns, (size_t)(ne - ns));
		rp.value = v.p;
		{
			struct rawparam *nr = realloc(raw, (nraw + 1) * sizeof(*nr));

			if (nr == NULL) {
				free(rp.name);
				free(rp.value);
				rc = -1;
				break;
			}
			raw = nr;
			raw[nraw++] = rp;
		}
	}
	if (rc == 0 && nraw > 0)
		rc = join_params(ct, raw, nraw);
	for (size_t i = 0; i < nraw; i++) {
		free(raw[i].name);
		free(raw[i].value);
	}
	free(raw);
	if (rc < 0)
		msg_ctype_free(ct);
	return rc;
}

const char *
msg_ctype_param(const struct msg_ctype *ct, const char *name)
{
	for (size_t i = 0; i < ct->nparams; i++)
		if (strcasecmp(ct->params[i].name, name) == 0)
			return ct->params[i].value;
	return NULL;
}

int
msg_ctype_is(const struct msg_ctype *ct, const char *type, const char *subtype)
{
	return strcmp(ct->type, type) == 0 &&
	       (subtype == NULL || strcmp(ct->subtype, subtype) == 0);
}

void
msg_ctype_free(struct msg_ctype *ct)
{
	for (size_t i = 0; i < ct->nparams; i++) {
		free(ct->params[i].name);
		free(ct->params[i].value);
	}
	free(ct->params);
	ct->params = NULL;
	ct->nparams = 0;
}

/* --- transfer encodings --- */

size_t
msg_base64_decode(const char *in, size_t len, char *out)
{
	unsigned v = 0;
	int bits = 0;
	size_t n = 0;

	for (size_t i = 0; i < len; i++) {
		const char *c;

		if (in[i] == '=')
			break;
		if (in[i] == '\0' || (c = strchr(b64chars, in[i])) == NULL)
			continue;
		v = (v << 6) | (unsigned)(c - b64chars);
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[n++] = (char)((v >> bits) & 0xff);
		}
	}
	return n;
}

size_t
msg_qp_decode(const char *in, size_t len, char *out)
{
	size_t n = 0;

	for (size_t i = 0; i < len; i++) {
		int hi, lo;

		if (in[i] != '=') {
			/* Trailing white space on a line is padding (RFC 2045
			 * 6.7 rule 3): drop it. */
			if (in[i] == ' ' || in[i] == '\t') {
				size_t j = i;

				while (j < len && (in[j] == ' ' || in[j] == '\t'))
					j++;
				if (j == len || in[j] == '\r' || in[j] == '\n') {
					i = j - 1;
					continue;
				}
			}
			out[n++] = in[i];
			continue;
		}
		if (i + 2 < len && (hi = hexval(in[i + 1])) >= 0 && (lo = hexval(in[i + 2])) >= 0) {
			out[n++] = (char)(hi * 16 + lo);
			i += 2;
			continue;
		}
		/* Soft line break: '=' then optional white space, line end. */
		{
			size_t j = i + 1;

			while (j < len && (in[j] == ' ' || in[j] == '\t'))
				j++;
			if (j == len) {
				i = j - 1;
				continue;
			}
			if (in[j] == '\r' || in[j] == '\n') {
				if (in[j] == '\r' && j + 1 < len && in[j + 1] == '\n')
					j++;
				i = j;
				continue;
			}
		}
		out[n++] = '='; /* malformed: kept */
	}
	return n;
}

char *
msg_decode_body(const char *cte, const char *in, size_t len, size_t *outlen)
{
	char *out = malloc(len + 1);
	size_t n;

	if (out == NULL)
		return NULL;
	if (cte != NULL) {
		while (*cte == ' ' || *cte == '\t')
			cte++;
	}
	if (cte != NULL && strncasecmp(cte, "base64", 6) == 0)
		n = msg_base64_decode(in, len, out);
	else if (cte != NULL && strncasecmp(cte, "quoted-printable", 16) == 0)
		n = msg_qp_decode(in, len, out);
	else {
		memcpy(out, in, len);
		n = len;
	}
	out[n] = '\0';
	*outlen = n;
	return out;
}

/* --- MIME walk --- */

/* Does the line at p (length n) open or close a part for boundary? Returns
 * 1 for a delimiter, 2 for the close delimiter, 0 otherwise. */
static int
is_delimiter(const char *p, size_t n, const char *boundary, size_t blen)
{
	size_t i;

	if (n < blen + 2 || p[0] != '-' || p[1] != '-' || memcmp(p + 2, boundary, blen) != 0)
		return 0;
	i = blen + 2;
	if (i + 2 <= n && p[i] == '-' && p[i + 1] == '-') {
		for (size_t k = i + 2; k < n; k++)
			if (p[k] != ' ' && p[k] != '\t')
				return 0;
		return 2;
	}
	for (; i < n; i++)
		if (p[i] != ' ' && p[i] != '\t')
			return 0;
	return 1;
}

long
msg_multipart_close(const char *body, size_t len, const char *boundary)
{
	const char *p = body, *end = body + len, *prev_eol = NULL;
	size_t blen = strlen(boundary), eol, n;

	while (p < end) {
		n = line_len(p, end, &eol);
		if (is_delimiter(p, n, boundary, blen) == 2)
			return (long)((prev_eol ? prev_eol : p) - body);
		prev_eol = p + n;
		p += n + eol;
	}
	return -1;
}

static int walk_entity(const char *buf, size_t len, int depth, int *index, int digest_child,
                       const struct msg_part *parent, msg_walk_fn fn, void *arg);

static int
walk_children(const struct msg_part *part, const char *boundary, int *index, msg_walk_fn fn,
              void *arg)
{
	const char *p = part->body, *end = part->body + part->body_len;
	const char *pstart = NULL;
	size_t blen = strlen(boundary), eol, n;
	int digest = msg_ctype_is(part->ct, "multipart", "digest");

	while (p < end) {
		int d;

		n = line_len(p, end, &eol);
		d = is_delimiter(p, n, boundary, blen);
		if (d) {
			if (pstart != NULL) {
				/* The line end before the delimiter belongs to it. */
				const char *pe = p;
				int rc;

				if (pe > pstart && pe[-1] == '\n')
					pe--;
				if (pe > pstart && pe[-1] == '\r')
					pe--;
				rc = walk_entity(pstart, (size_t)(pe - pstart), part->depth + 1,
				                 index, digest, part, fn, arg);
				if (rc != 0)
					return rc;
			}
			if (d == 2)
				return 0;
			pstart = p + n + eol;
		}
		p += n + eol;
	}
	/* No close delimiter: the last part runs to the end. */
	if (pstart != NULL && pstart < end)
		return walk_entity(pstart, (size_t)(end - pstart), part->depth + 1, index, digest,
		                   part, fn, arg);
	return 0;
}

static int
walk_entity(const char *buf, size_t len, int depth, int *index, int digest_child,
            const struct msg_part *parent, msg_walk_fn fn, void *arg)
{
	struct msg m;
	struct msg_ctype ct;
	struct msg_part part;
	const struct msg_header *h;
	int rc;

	if (msg_parse(&m, buf, len) < 0)
		return -1;
	h = msg_header_get(&m, "Content-Type", 0);
	if (h != NULL)
		rc = msg_ctype_parse(h->value, h->value_len, &ct);
	else if (digest_child)
		rc = msg_ctype_parse("message/rfc822", 14, &ct);
	else
		rc = msg_ctype_parse("", 0, &ct);
	if (rc < 0) {
		msg_free(&m);
		return -1;
	}
	part.depth = depth;
	part.index = (*index)++;
	part.start = buf;
	part.len = len;
	part.headers = &m;
	part.ct = &ct;
	part.body = m.body;
	part.body_len = m.body_len;
	part.parent = parent;
	rc = fn(&part, arg);
	if (rc == 0 && depth < MSG_WALK_MAX_DEPTH) {
		const char *boundary = msg_ctype_param(&ct, "boundary");

		if (strcmp(ct.type, "multipart") == 0 && boundary != NULL && *boundary)
			rc = walk_children(&part, boundary, index, fn, arg);
		else if (msg_ctype_is(&ct, "message", "rfc822") ||
		         msg_ctype_is(&ct, "message", "global"))
			rc = walk_entity(part.body, part.body_len, depth + 1, index, 0, &part, fn,
			                 arg);
	}
	msg_ctype_free(&ct);
	msg_free(&m);
	return rc;
}

int
msg_walk(const char *buf, size_t len, msg_walk_fn fn, void *arg)
{
	int index = 0;

	return walk_entity(buf, len, 0, &index, 0, NULL, fn, arg);
}
