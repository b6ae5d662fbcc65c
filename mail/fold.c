/*
 * fold.c - folding the header fields fanmail writes; see fold.h.
 *
 * The field is written anew into a strbuf (mail/strbuf.h) with the column
 * of the line being written kept beside it; an over-long word of text
 * becomes encoded-words from encode.h.
 */
#include "mail/fold.h"

#include <stdlib.h>
#include <string.h>

#include "mail/encode.h"
#include "mail/msg.h"
#include "mail/strbuf.h"

#define EW_FRAME 12 /* "=?utf-8?q?" and "?=" */

struct out {
	struct strbuf b;
	size_t col; /* octets on the line being written */
};

static void
put(struct out *o, const char *s, size_t n)
{
	strbuf_add(&o->b, s, n);
	o->col += n;
}

static void
fold_here(struct out *o)
{
	put(o, "\r\n", 2);
	o->col = 0;
}

/* s[0..n) as Q encoded-words, each on a line of its own after the first
 * (a reader drops the white space between two encoded-words). */
static void
put_encoded(struct out *o, const char *s, size_t n)
{
	const char *nl;

	if (o->col + EW_FRAME + 4 > FOLD_SOFT) {
		fold_here(o);
		put(o, " ", 1);
	}
	encode_words(&o->b, s, n, ENCODE_EW_Q, FOLD_SOFT - o->col, "\r\n ");
	if (o->b.oom)
		return;
	nl = o->b.p + o->b.len;
	while (nl > o->b.p && nl[-1] != '\n')
		nl--;
	o->col = (size_t)(o->b.p + o->b.len - nl);
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
			put_encoded(&o, ws, wl + tl);
		} else {
			put_ws(&o, ws, wl, 0);
			if (wl == 0)
				put(&o, " ", 1); /* "Subject:word": room for the fold */
			put_encoded(&o, w, tl);
			prev_encoded = 1;
		}
	}
	put(&o, "\r\n", 2);
	free(in);
	return strbuf_done(&o.b);
}

char *
fold_flatten(char *s)
{
	for (char *p = s; p && *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = ' ';
	return s;
}
