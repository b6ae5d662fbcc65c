/*
 * fuzz_msg.c - the header parser (mail/msg.c): msg_parse, unfolding,
 * RFC 2047 decoding and encoding, Content-Type with RFC 2231, and
 * transfer decoding of the body.
 *
 * Beyond "does not crash": every field msg_parse reports lies inside the
 * buffer and in order; and text encoded by encode_text decodes back to
 * itself (what the list sends in a Subject reads as what it meant).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mail/encode.h"
#include "mail/msg.h"

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "msg invariant failed: %s\n", #cond);                      \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

static int
inside(const struct msg *m, const char *p, size_t n)
{
	return p >= m->buf && p <= m->buf + m->len && n <= (size_t)(m->buf + m->len - p);
}

/* Valid UTF-8, printable, no "=?" and no white space at the ends: text
 * whose encoding must decode back to exactly itself. */
static int
plain_utf8(const char *s, size_t n)
{
	size_t i = 0;

	if (n == 0 || s[0] == ' ' || s[n - 1] == ' ')
		return 0;
	while (i < n) {
		unsigned char c = (unsigned char)s[i];
		size_t k;
		if (c < 0x80) {
			if (c < 0x20 || c == 0x7f || (c == '=' && i + 1 < n && s[i + 1] == '?') ||
			    (c == ' ' && i + 1 < n && s[i + 1] == ' '))
				return 0;
			i++;
			continue;
		}
		k = c >= 0xf0 && c <= 0xf4 ? 3 : c >= 0xe0 ? 2 : c >= 0xc2 && c < 0xe0 ? 1 : 0;
		if (k == 0 || c > 0xf4)
			return 0;
		for (size_t j = 1; j <= k; j++)
			if (i + j >= n || ((unsigned char)s[i + j] & 0xc0) != 0x80)
				return 0;
		if ((c == 0xe0 && (unsigned char)s[i + 1] < 0xa0) ||
		    (c == 0xed && (unsigned char)s[i + 1] >= 0xa0) ||
		    (c == 0xf0 && (unsigned char)s[i + 1] < 0x90) ||
		    (c == 0xf4 && (unsigned char)s[i + 1] >= 0x90))
			return 0;
		i += k + 1;
	}
	return 1;
}

static void
check_encode_roundtrip(const char *s, size_t n)
{
	char *enc, *unf, *dec;

	if (!plain_utf8(s, n))
		return;
	enc = encode_text(s, n, "\r\n", 60);
	CHECK(enc != NULL);
	unf = msg_unfold(enc, strlen(enc));
	CHECK(unf != NULL);
	dec = msg_decode_words(unf, strlen(unf), NULL);
	CHECK(dec != NULL);
	if (strlen(dec) != n || memcmp(dec, s, n) != 0) {
		fprintf(stderr, "encode/decode changed %.*s\n into %s\n via %s\n", (int)n, s, dec,
		        enc);
		abort();
	}
	free(enc);
	free(unf);
	free(dec);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf = malloc(size ? size : 1);
	struct msg m;
	char *cte, *text;
	size_t outlen;

	CHECK(buf != NULL);
	memcpy(buf, data, size);
	if (msg_parse(&m, buf, size) < 0) {
		free(buf);
		return 0;
	}
	CHECK(inside(&m, m.body, m.body_len));
	CHECK(m.hdr_len <= size);
	for (size_t i = 0; i < m.nhdrs; i++) {
		const struct msg_header *h = &m.hdrs[i];
		char *unf, *dec;
		int had = 0;

		CHECK(inside(&m, h->start, h->len));
		CHECK(inside(&m, h->name, h->name_len));
		CHECK(inside(&m, h->value, h->value_len));
		CHECK(h->name_len > 0);
		if (i > 0)
			CHECK(h->start >= m.hdrs[i - 1].start + m.hdrs[i - 1].len);
		unf = msg_unfold(h->value, h->value_len);
		CHECK(unf != NULL);
		CHECK(strchr(unf, '\n') == NULL || memchr(h->value, '\n', h->value_len) != NULL);
		dec = msg_decode_words(unf, strlen(unf), &had);
		CHECK(dec != NULL);
		check_encode_roundtrip(dec, strlen(dec));
		free(unf);
		free(dec);
		if (i > 8)
			break;
	}
	text = msg_header_text(&m, "Subject");
	free(text);
	(void)msg_header_count(&m, "Received");
	{
		const struct msg_header *h = msg_header_get(&m, "Content-Type", 0);
		struct msg_ctype ct;
		if (msg_ctype_parse(h ? h->value : "", h ? h->value_len : 0, &ct) == 0) {
			CHECK(ct.type[0] != '\0' && ct.subtype[0] != '\0');
			for (size_t i = 0; i < ct.nparams; i++)
				CHECK(ct.params[i].name != NULL && ct.params[i].value != NULL);
			(void)msg_ctype_param(&ct, "charset");
			(void)msg_ctype_param(&ct, "boundary");
			msg_ctype_free(&ct);
		}
	}
	cte = msg_header_text(&m, "Content-Transfer-Encoding");
	text = msg_decode_body(cte, m.body, m.body_len, &outlen);
	CHECK(text != NULL && text[outlen] == '\0');
	free(text);
	free(cte);
	/* The whole input as one header value too: RFC 2047 on raw bytes. */
	text = msg_decode_words(buf, size, NULL);
	CHECK(text != NULL);
	free(text);
	msg_free(&m);
	free(buf);
	return 0;
}
