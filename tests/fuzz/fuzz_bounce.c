/*
 * fuzz_bounce.c - the DSN and bounce parser (lists/bounce.c): RFC 3464
 * reports, non-standard MTA bounces, auto-replies and ARF, and the mbox
 * splitter the `fanmail bounce parse` command uses.
 *
 * Beyond "does not crash": every result's strings are terminated inside
 * their arrays, a status is x.y.z (or empty), classes and kinds are in
 * range with names, and the mbox splitter moves forward and stays inside
 * the buffer.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lists/bounce.h"

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "bounce invariant failed: %s\n", #cond);                   \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

static int
terminated(const char *s, size_t cap)
{
	return memchr(s, '\0', cap) != NULL;
}

static int
status_ok(const char *s)
{
	const char *p = s;

	if (*p == '\0')
		return 1;
	for (int part = 0; part < 3; part++) {
		size_t n = 0;
		while (p[n] >= '0' && p[n] <= '9')
			n++;
		if (n == 0 || n > 3)
			return 0;
		p += n;
		if (part < 2 && *p++ != '.')
			return 0;
	}
	return *p == '\0';
}

static void
check_one(const char *buf, size_t len)
{
	struct bounce_report r;

	memset(&r, 0, sizeof(r));
	if (bounce_parse(buf, len, &r) < 0)
		return;
	CHECK(r.kind >= BOUNCE_KIND_NONE && r.kind <= BOUNCE_KIND_ARF);
	CHECK(bounce_kind_name(r.kind) != NULL);
	CHECK(r.n <= r.cap);
	for (size_t i = 0; i < r.n; i++) {
		const struct bounce_rcpt *b = &r.rcpts[i];
		CHECK(terminated(b->addr, sizeof(b->addr)));
		CHECK(terminated(b->orig, sizeof(b->orig)));
		CHECK(terminated(b->action, sizeof(b->action)));
		CHECK(terminated(b->status, sizeof(b->status)));
		CHECK(terminated(b->diag, sizeof(b->diag)));
		CHECK(strchr(b->diag, '\n') == NULL && strchr(b->diag, '\r') == NULL);
		if (!status_ok(b->status)) {
			fprintf(stderr, "status '%s' is not x.y.z\n", b->status);
			abort();
		}
		CHECK(b->cls >= BOUNCE_NONE && b->cls <= BOUNCE_COMPLAINT);
		CHECK(bounce_class_name(b->cls) != NULL);
		(void)bounce_rcpt_is_failure(b);
	}
	bounce_report_free(&r);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf = malloc(size ? size : 1);
	const char *msg;
	size_t off = 0, last = 0, msglen, n = 0;

	CHECK(buf != NULL);
	memcpy(buf, data, size);
	check_one(buf, size);
	while (bounce_mbox_next(buf, size, &off, &msg, &msglen) == 1) {
		CHECK(msg >= buf && msglen <= size && msg + msglen <= buf + size);
		CHECK(off > last || (n == 0 && off >= last));
		CHECK(off <= size);
		last = off;
		if (++n > 1 && n < 50)
			check_one(msg, msglen);
		CHECK(n <= size + 1);
	}
	free(buf);
	return 0;
}
