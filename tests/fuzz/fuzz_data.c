/*
 * fuzz_data.c - the SMTP DATA reader (server/smtp_data.c).
 *
 * Input: two octets of set-up (the chunk size the bytes arrive in, and a
 * small message size limit), then the bytes a client sends after DATA.
 * Beyond "does not crash", the smuggling promise: the reader stops at the
 * first CRLF.CRLF and nowhere else, every CR and LF before that stop is part
 * of a CRLF pair, and the result does not depend on how TCP cut the stream
 * into reads.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/smtp_data.h"

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "DATA reader invariant failed: %s\n", #cond);              \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

struct sink {
	char *buf;
	size_t len;
};

static void
emit(void *arg, const char *p, size_t n)
{
	struct sink *s = arg;

	CHECK(n > 0);
	memcpy(s->buf + s->len, p, n);
	s->len += n;
}

/* Feeds in[0..len) in chunks of at most step octets (0: all at once), each
 * chunk an exact-size heap copy so that ASan sees reads past it. */
static enum smtp_data_status
run(const uint8_t *in, size_t len, size_t step, size_t max_size, struct smtp_data *d,
    struct sink *s, size_t *used)
{
	enum smtp_data_status st = SMTP_DATA_MORE;
	size_t off = 0;

	smtp_data_init(d, max_size);
	*used = 0;
	while (off < len) {
		size_t n = step == 0 || len - off < step ? len - off : step, u = 0;
		char *chunk = malloc(n);

		CHECK(chunk != NULL);
		memcpy(chunk, in + off, n);
		st = smtp_data_feed(d, chunk, n, &u, emit, s);
		free(chunk);
		CHECK(u <= n);
		if (st == SMTP_DATA_MORE)
			CHECK(u == n);
		off += u;
		*used += u;
		if (st != SMTP_DATA_MORE)
			break;
	}
	return st;
}

/* Every CR and LF in in[0..n) belongs to a CRLF pair, except that a CR may
 * be the last octet (its LF has not arrived yet). */
static int
only_crlf_pairs(const uint8_t *in, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (in[i] == '\n' && (i == 0 || in[i - 1] != '\r'))
			return 0;
		if (in[i] == '\r' && i + 1 < n && in[i + 1] != '\n')
			return 0;
	}
	return 1;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct smtp_data whole, cut;
	struct sink a, b;
	enum smtp_data_status st1, st2;
	size_t used1, used2, step, max_size;
	const uint8_t *in;
	size_t len;

	if (size < 2)
		return 0;
	step = data[0] % 17;
	max_size = data[1] < 128 ? (size_t)data[1] * 64 : (size_t)1 << 30;
	in = data + 2;
	len = size - 2;
	a.buf = malloc(len + 1);
	b.buf = malloc(len + 1);
	CHECK(a.buf != NULL && b.buf != NULL);
	a.len = b.len = 0;

	st1 = run(in, len, 0, max_size, &whole, &a, &used1);
	st2 = run(in, len, step, max_size, &cut, &b, &used2);

	/* The same answer however the bytes arrived. (What a refused
	 * message passed on before the refusal may differ: it is dropped.
	 * A bare CR or LF ends the session.) */
	CHECK(st1 == st2 && used1 == used2);
	CHECK(whole.received == cut.received);
	/* Whether the message is refused does not depend on the cuts (which
	 * of too_big and line_too_long is set first may: a long line that
	 * also passes the size limit). */
	if (st1 == SMTP_DATA_END || st1 == SMTP_DATA_MORE) {
		CHECK((whole.too_big || whole.line_too_long) == (cut.too_big || cut.line_too_long));
		CHECK(whole.has_nul == cut.has_nul);
		CHECK(whole.has_nul == (memchr(in, '\0', used1) != NULL));
	}
	if (!whole.too_big && !whole.line_too_long && !whole.has_nul &&
	    (st1 == SMTP_DATA_END || st1 == SMTP_DATA_MORE)) {
		CHECK(a.len == b.len && memcmp(a.buf, b.buf, a.len) == 0);
		CHECK(whole.size == cut.size);
	}

	/* What was passed on is the message: never more than the limit, and
	 * its size is counted. */
	CHECK(a.len <= used1);
	CHECK(whole.size <= max_size);
	if (!whole.too_big && !whole.line_too_long && !whole.has_nul &&
	    (st1 == SMTP_DATA_END || st1 == SMTP_DATA_MORE))
		CHECK(a.len == whole.size);
	/* A NUL is never passed on. */
	CHECK(memchr(a.buf, '\0', a.len) == NULL);

	switch (st1) {
	case SMTP_DATA_END:
		/* Ends exactly at the first CRLF.CRLF (or ".\r\n" first). */
		CHECK(used1 >= 3);
		CHECK(memcmp(in + used1 - 3, ".\r\n", 3) == 0);
		CHECK(used1 == 3 || (used1 >= 5 && memcmp(in + used1 - 5, "\r\n", 2) == 0));
		CHECK(only_crlf_pairs(in, used1));
		for (size_t i = 0; i + 5 <= used1 - 3; i++)
			CHECK(memcmp(in + i, "\r\n.\r\n", 5) != 0);
		CHECK(memcmp(in, ".\r\n", 3 <= len ? 3 : len) != 0 || used1 == 3);
		break;
	case SMTP_DATA_MORE:
		CHECK(used1 == len);
		CHECK(only_crlf_pairs(in, len));
		break;
	case SMTP_DATA_BARE_CR:
		CHECK(used1 >= 2 && in[used1 - 2] == '\r' && in[used1 - 1] != '\n');
		CHECK(only_crlf_pairs(in, used1 - 1));
		break;
	case SMTP_DATA_BARE_LF:
		CHECK(used1 >= 1 && in[used1 - 1] == '\n');
		CHECK(used1 == 1 || in[used1 - 2] != '\r');
		CHECK(only_crlf_pairs(in, used1 - 1));
		break;
	}
	free(a.buf);
	free(b.buf);
	return 0;
}
