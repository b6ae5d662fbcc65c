/*
 * fold.c - folding the header fields fanmail writes; see fold.h.
 *
 * The output is bounded before it is written (a Q-encoded octet takes 3,
 * an encoded-word's frame 15 per 21 octets of text or more, a fold 3 per
 * word), so one allocation of six times the input is always enough.
 */
#include "mail/fold.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "mail/msg.h"

#define EW_MAX 75                   /* RFC 2047 section 2 */
#define EW_FRAME 12                 /* "=?utf-8?q?" and "?=" */
#define EW_TEXT (EW_MAX - EW_FRAME) /* room for encoded text in one word */

struct out {
	char *p;
	size_t len, col;
};

static void
put(struct out *o, const char *s, size_t n)
{
	memcpy(o->p + o->len, s, n);
	o->len += n;
	o->col += n;
}

static void
fold_here(struct out *o)
{
	put(o, "\r\n", 2);
	o->col = 0;
}

static int
q_plain(unsigned char c)
{
	return isalnum(c) || strchr("!*+-/", c) != NULL;
}

/* s[0..n) as Q encoded-words, each on a line of its own after the first
 * (a reader drops the white space between two encoded-words). */
static void
put_encoded(struct out *o, const unsigned char *s, size_t n)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t i = 0;
	int first = 1;

	while (i < n) {
		size_t used = 0, room;

		if (!first || o->col + EW_FRAME + 4 > FOLD_SOFT) {
			fold_here(o);
			put(o, " ", 1);
		}
		room = FOLD_SOFT - o->col - EW_FRAME;
		if (room > EW_TEXT)
			room = EW_TEXT;
		put(o, "=?utf-8?q?", 10);
		while (i < n) {
			/* A UTF-8 sequence stays in one word. */
			size_t sl = 1, cost = 0;

			while (i + sl < n && (s[i + sl] & 0xc0) == 0x80)
				sl++;
			for (size_t k = 0; k < sl; k++)
				cost += q_plain(s[i + k]) || s[i + k] == ' ' ? 1 : 3;
			if (used + cost > room && used > 0)
				break;
			for (size_t k = 0; k < sl; k++) {
				unsigned char c = s[i + k];
				char e[3] = {'=', hex[c >> 4], hex[c & 15]};

				if (c == ' ')
					put(o, "_", 1);
				else if (q_plain(c))
					put(o, (const char *)&c, 1);
				else
					put(o, e, 3);
			}
			used += cost;
			i += sl;
		}
		put(o, "?=", 2);
		first = 0;
	}
}

/* White space before a word of `need` octets, folded inside itself when
 * the run would take the word past 998 octets (a fold goes before a WSP
 * octet, so one stays after it; the unfolded text is the same). */
static void
put_ws(struct out *o, const char *s, size_t n, size_t need)
{
	while (n > 0 && o->col + n + need > FOLD_HARD) {
		size_t k = o->col < FOLD_HARD ? FOLD_HARD - o->col : 0;

		if (k > n - 1)
			k = n - 1;
		put(o, s, k);
		s += k;
		n -= k;
		fold_here(o);
		if (n == 1)
			break;
	}
	put(o, s, n);
}

/* A word too long for any line, cut where List-* fields allow it. */
static void
put_split(struct out *o, const char *s, size_t n)
{
	while (n > 0) {
		size_t room = o->col < FOLD_SOFT ? FOLD_SOFT - o->col : 1;
		size_t k = n < room ? n : room;

		put(o, s, k);
		s += k;
		n -= k;
		if (n > 0) {
			fold_here(o);
			put(o, " ", 1);
		}
	}
}

char *
fold_field(const char *field, size_t len, enum fold_kind kind)
{
	char *in = msg_unfold(field, len);
	const char *p, *end, *colon;
	struct out o = {0};
	int after_name = 1, prev_encoded = 0;
	size_t n;

	if (in == NULL)
		return NULL;
	n = strlen(in);
	if ((o.p = malloc(n * 6 + 16)) == NULL) {
		free(in);
		return NULL;
	}
	end = in + n;
	colon = memchr(in, ':', n);
	p = colon ? colon + 1 : in;
	put(&o, in, (size_t)(p - in));
	while (p < end) {
		const char *ws = p, *w;
		size_t wl, tl;

		while (p < end && (*p == ' ' || *p == '\t'))
			p++;
		wl = (size_t)(p - ws);
		w = p;
		while (p < end && *p != ' ' && *p != '\t')
			p++;
		tl = (size_t)(p - w);
		if (tl == 0) { /* white space at the end */
			put_ws(&o, ws, wl, 0);
			break;
		}
		if (!after_name && wl > 0 && o.col + wl + tl > FOLD_SOFT)
			fold_here(&o);
		after_name = 0;
		if ((wl > 0 ? tl + 1 : o.col + tl) <= FOLD_HARD || kind == FOLD_STRUCTURED) {
			/* It fits on a line (after a fold if need be). */
			put_ws(&o, ws, wl, tl <= FOLD_HARD ? tl : 0);
			put(&o, w, tl);
			prev_encoded = 0;
		} else if (kind == FOLD_URLS) {
			put_ws(&o, ws, wl, 0);
			put_split(&o, w, tl);
		} else if (prev_encoded) {
			/* After an encoded-word the white space would be lost: it
			 * goes inside the encoding. */
			put(&o, " ", 1);
			put_encoded(&o, (const unsigned char *)ws, wl + tl);
		} else {
			put_ws(&o, ws, wl, 0);
			if (wl == 0)
				put(&o, " ", 1); /* "Subject:word": room for the fold */
			put_encoded(&o, (const unsigned char *)w, tl);
			prev_encoded = 1;
		}
	}
	put(&o, "\r\n", 2);
	o.p[o.len] = '\0';
	free(in);
	return o.p;
}

char *
fold_flatten(char *s)
{
	for (char *p = s; p && *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = ' ';
	return s;
}
