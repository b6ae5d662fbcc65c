/*
 * smtp_data.c - DATA reader: end detection, dot-unstuffing, bare CR/LF
 * refusal, NUL detection, size and line limits, Received counting.
 */
#include "server/smtp_data.h"

#include <string.h>

enum {
	ST_BOL,    /* at the start of a line */
	ST_TEXT,   /* inside a line */
	ST_CR,     /* after a CR inside a line */
	ST_DOT,    /* after a '.' at the start of a line */
	ST_DOT_CR, /* after ".\r" at the start of a line */
};

static const char received[] = "received:";
#define RECEIVED_LEN (sizeof(received) - 1)
#define HDR_NO_MATCH ((size_t)-1)

void
smtp_data_init(struct smtp_data *d, size_t max_size)
{
	memset(d, 0, sizeof(*d));
	d->state = ST_BOL;
	d->max_size = max_size;
	d->in_header = 1;
}

struct run {
	const char *start;
	struct smtp_data *d;
	smtp_data_emit_fn emit;
	void *arg;
};

/* Passes on the kept octets [r->start, end) unless the message is already
 * refused, and starts the next run after end + skip. */
static void
flush(struct run *r, const char *end, size_t skip)
{
	size_t n = (size_t)(end - r->start);
	struct smtp_data *d = r->d;

	if (n > 0 && !d->too_big && !d->line_too_long) {
		if (d->size + n > d->max_size)
			d->too_big = 1;
		else {
			/* Counted even after a NUL, so that too_big does not
			 * depend on where the input was cut. */
			d->size += n;
			if (!d->has_nul)
				r->emit(r->arg, r->start, n);
		}
	}
	r->start = end + skip;
}

/* A line's first kept octet or a later one: match "Received:" at the start
 * of header lines. */
static void
header_octet(struct smtp_data *d, char c)
{
	if (d->hdr_pos >= RECEIVED_LEN)
		return;
	if ((c | 0x20) == received[d->hdr_pos]) {
		if (++d->hdr_pos == RECEIVED_LEN) {
			d->received++;
			d->hdr_pos = HDR_NO_MATCH;
		}
	} else
		d->hdr_pos = HDR_NO_MATCH;
}

enum smtp_data_status
smtp_data_feed(struct smtp_data *d, const char *in, size_t len, size_t *used,
               smtp_data_emit_fn emit, void *arg)
{
	struct run r = {in, d, emit, arg};
	const char *p = in, *end = in + len;
	enum smtp_data_status st = SMTP_DATA_MORE;

	while (p < end) {
		char c;

		if (d->state == ST_TEXT && !d->in_header) {
			/* The body's fast path: skip to the next CR, then make
			 * sure no LF hides before it. */
			const char *cr = memchr(p, '\r', (size_t)(end - p));
			const char *stop = cr ? cr : end;
			const char *lf = memchr(p, '\n', (size_t)(stop - p));

			if (lf != NULL)
				stop = lf;
			if (!d->has_nul && memchr(p, '\0', (size_t)(stop - p)) != NULL)
				d->has_nul = 1;
			d->line_len += (size_t)(stop - p);
			if (d->line_len > SMTP_DATA_LINE_MAX)
				d->line_too_long = 1;
			p = stop;
			if (p == end)
				break;
			/* p is at the CR or LF, which the switch handles. */
		}
		c = *p;

		if (c == '\0')
			d->has_nul = 1;
		if (++d->line_len > SMTP_DATA_LINE_MAX)
			d->line_too_long = 1;
		switch (d->state) {
		case ST_BOL:
			d->hdr_pos = d->in_header ? 0 : HDR_NO_MATCH;
			if (c == '.') {
				flush(&r, p, 1); /* the stuffing dot is dropped */
				d->state = ST_DOT;
				break;
			}
			/* FALLTHROUGH */
		case ST_TEXT:
		text:
			if (c == '\r') {
				d->state = ST_CR;
			} else if (c == '\n') {
				st = SMTP_DATA_BARE_LF;
				goto out;
			} else {
				if (d->in_header)
					header_octet(d, c);
				d->state = ST_TEXT;
			}
			break;
		case ST_CR:
			if (c != '\n') {
				st = SMTP_DATA_BARE_CR;
				goto out;
			}
			if (d->line_len == 2)
				d->in_header = 0; /* the empty line ends the header */
			d->state = ST_BOL;
			d->line_len = 0;
			break;
		case ST_DOT:
			if (c == '\r') {
				/* Held back: either the end follows or the
				 * session is refused for a bare CR. */
				flush(&r, p, 1);
				d->state = ST_DOT_CR;
				break;
			}
			goto text;
		case ST_DOT_CR:
			if (c != '\n') {
				st = SMTP_DATA_BARE_CR;
				goto out;
			}
			/* CRLF.CRLF: the ".\r\n" is not part of the message. */
			p++;
			*used = (size_t)(p - in);
			return SMTP_DATA_END;
		}
		p++;
	}
	flush(&r, p, 0);
	*used = len;
	return SMTP_DATA_MORE;
out:
	*used = (size_t)(p - in) + 1;
	return st;
}
