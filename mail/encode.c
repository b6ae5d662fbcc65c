/*
 * encode.c - quoted-printable, base64 and RFC 2047 encoded-words as
 * fanmail writes them. See encode.h.
 */
#include "mail/encode.h"

#include <string.h>

#include "mail/utf8.h"

#define EW_MAX 75   /* RFC 2047 section 2 */
#define EW_LATER 74 /* a later word, after its folding space */
#define EW_FRAME 12 /* "=?utf-8?q?" and "?=" */
#define QP_LINE 76  /* RFC 2045 section 6.7 (5) */

static const char hex[] = "0123456789ABCDEF";

void
encode_qp(struct strbuf *b, const char *in, size_t len)
{
	size_t col = 0;

	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)in[i];
		char enc[3];
		size_t w;
		int last;

		if (c == '\r' || c == '\n') {
			if (c == '\r' && i + 1 < len && in[i + 1] == '\n')
				i++;
			strbuf_add(b, "\r\n", 2);
			col = 0;
			continue;
		}
		/* The last octet of a line needs no room for a soft break, and
		 * white space there must be encoded (a transport may strip it). */
		last = i + 1 == len || in[i + 1] == '\r' || in[i + 1] == '\n';
		if ((c >= 33 && c <= 126 && c != '=') || ((c == ' ' || c == '\t') && !last)) {
			enc[0] = (char)c;
			w = 1;
		} else {
			enc[0] = '=';
			enc[1] = hex[c >> 4];
			enc[2] = hex[c & 15];
			w = 3;
		}
		if (col + w > (last ? QP_LINE : QP_LINE - 1)) {
			strbuf_add(b, "=\r\n", 3);
			col = 0;
		}
		strbuf_add(b, enc, w);
		col += w;
	}
}

void
encode_base64(struct strbuf *b, const void *inv, size_t len, size_t line)
{
	static const char tab[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	const unsigned char *in = inv;
	size_t col = 0;

	for (size_t i = 0; i < len; i += 3) {
		unsigned v = (unsigned)in[i] << 16;
		char out[4];

		if (i + 1 < len)
			v |= (unsigned)in[i + 1] << 8;
		if (i + 2 < len)
			v |= in[i + 2];
		out[0] = tab[(v >> 18) & 63];
		out[1] = tab[(v >> 12) & 63];
		out[2] = i + 1 < len ? tab[(v >> 6) & 63] : '=';
		out[3] = i + 2 < len ? tab[v & 63] : '=';
		strbuf_add(b, out, 4);
		if (line > 0 && (col += 4) >= line) {
			strbuf_add(b, "\r\n", 2);
			col = 0;
		}
	}
	if (col > 0)
		strbuf_add(b, "\r\n", 2);
}

/* An octet Q writes as itself (RFC 2047 section 5 (3), the safe subset). */
static int
q_plain(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c != '\0' && strchr("!*+-/", c) != NULL);
}

static size_t
q_len(const unsigned char *s, size_t n)
{
	size_t l = 0;

	for (size_t i = 0; i < n; i++)
		l += q_plain(s[i]) || s[i] == ' ' ? 1 : 3;
	return l;
}

static void
put_q(struct strbuf *b, const unsigned char *s, size_t n)
{
	for (size_t k = 0; k < n; k++) {
		char e[3] = {'=', hex[s[k] >> 4], hex[s[k] & 15]};

		if (s[k] == ' ')
			strbuf_add(b, "_", 1);
		else if (q_plain(s[k]))
			strbuf_add(b, &s[k], 1);
		else
			strbuf_add(b, e, 3);
	}
}

void
encode_words(struct strbuf *b, const char *utf8, size_t len, int how, size_t first, const char *sep)
{
	const unsigned char *s = (const unsigned char *)utf8;
	int use_b = (how & ENCODE_EW_B)   ? 1
	            : (how & ENCODE_EW_Q) ? 0
	                                  : q_len(s, len) > (len + 2) / 3 * 4;
	const char *label = how & ENCODE_EW_UPPER ? (use_b ? "=?UTF-8?B?" : "=?UTF-8?Q?")
	                                          : (use_b ? "=?utf-8?b?" : "=?utf-8?q?");
	size_t i = 0, room = first < EW_MAX ? first : EW_MAX;

	while (i < len) {
		size_t j = i, used = 0;

		/* Take whole UTF-8 sequences while the word fits. */
		while (j < len) {
			size_t sl = utf8_seq_len(s + j, len - j), cost;

			if (sl == 0)
				sl = 1;
			if (use_b)
				cost = (j - i + sl + 2) / 3 * 4 - used;
			else
				cost = q_len(s + j, sl);
			if (EW_FRAME + used + cost > room && j > i)
				break;
			used += cost;
			j += sl;
		}
		if (i > 0)
			strbuf_str(b, sep);
		strbuf_str(b, label);
		if (use_b)
			encode_base64(b, s + i, j - i, 0);
		else
			put_q(b, s + i, j - i);
		strbuf_add(b, "?=", 2);
		i = j;
		room = EW_LATER;
	}
}

/* Does header text need encoded-words: 8-bit or control octets (a TAB is
 * white space), or a "=?" a reader would take for the start of one? */
static int
needs_encoding(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c >= 0x80 || (c < 32 && c != '\t') || c == 127)
			return 1;
		if (c == '=' && i + 1 < len && s[i + 1] == '?')
			return 1;
	}
	return 0;
}

char *
encode_text(const char *utf8, size_t len, const char *eol, size_t first_room)
{
	struct strbuf b = {0}, sep = {0};

	if (!needs_encoding(utf8, len)) {
		strbuf_add(&b, utf8, len);
		return strbuf_done(&b);
	}
	strbuf_str(&sep, eol);
	strbuf_str(&sep, " ");
	if (sep.oom) {
		strbuf_free(&sep);
		return NULL;
	}
	encode_words(&b, utf8, len, 0, first_room < 20 ? EW_MAX : first_room, sep.p);
	strbuf_free(&sep);
	return strbuf_done(&b);
}
