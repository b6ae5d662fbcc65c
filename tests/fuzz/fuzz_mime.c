/*
 * fuzz_mime.c - the MIME walker (msg_walk) and the multipart helpers the
 * footer code relies on (msg_multipart_close), over whole messages.
 *
 * Beyond "does not crash": every part the walk reports lies inside its
 * parent and inside the buffer, depth never passes the limit, parts come in
 * message order, and a closing delimiter found by msg_multipart_close lies
 * inside the body.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mail/msg.h"

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "mime invariant failed: %s\n", #cond);                     \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

struct walk {
	const char *buf;
	size_t len;
	int next_index;
	int parts;
};

static int
within(const char *outer, size_t outer_len, const char *p, size_t n)
{
	return p >= outer && p <= outer + outer_len && n <= (size_t)(outer + outer_len - p);
}

static int
visit(const struct msg_part *p, void *arg)
{
	struct walk *w = arg;
	char *cte, *body;
	size_t outlen;

	CHECK(p->index == w->next_index);
	w->next_index++;
	CHECK(p->depth >= 0 && p->depth <= MSG_WALK_MAX_DEPTH + 1);
	CHECK(within(w->buf, w->len, p->start, p->len));
	CHECK(within(p->start, p->len, p->body, p->body_len));
	CHECK((p->depth == 0) == (p->parent == NULL));
	if (p->parent != NULL) {
		CHECK(p->depth == p->parent->depth + 1);
		CHECK(within(p->parent->start, p->parent->len, p->start, p->len));
	}
	CHECK(p->ct != NULL && p->headers != NULL);
	if (strcmp(p->ct->type, "multipart") == 0) {
		const char *bd = msg_ctype_param(p->ct, "boundary");
		if (bd != NULL) {
			long off = msg_multipart_close(p->body, p->body_len, bd);
			CHECK(off >= -1 && (off < 0 || (size_t)off <= p->body_len));
		}
	}
	cte = msg_header_text(p->headers, "Content-Transfer-Encoding");
	body = msg_decode_body(cte, p->body, p->body_len, &outlen);
	CHECK(body != NULL);
	free(body);
	free(cte);
	/* Bounded work per input: a pathological tree stops the walk. */
	return ++w->parts > 2000;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf = malloc(size ? size : 1);
	struct walk w = {0};

	CHECK(buf != NULL);
	memcpy(buf, data, size);
	w.buf = buf;
	w.len = size;
	CHECK(msg_walk(buf, size, visit, &w) >= 0);
	CHECK(w.next_index >= 1);
	free(buf);
	return 0;
}
