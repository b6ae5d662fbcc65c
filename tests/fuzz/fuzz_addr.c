/*
 * fuzz_addr.c - the address parser (mail/addr.c): addr_parse() for SMTP
 * paths and addr_parse_line() for member-file lines.
 *
 * Input: one flags octet (bit 0: ADDR_UTF8, bit 1: parse as a member-file
 * line), then the text. Beyond "does not crash", what addr.h promises: a
 * parsed address keeps RFC 5321's lengths, has no non-ASCII octets unless
 * UTF-8 was allowed, formats to text that parses again to the same key, and
 * its key is a fixed point (the key of the key is the key).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mail/addr.h"

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "addr invariant failed: %s\n", #cond);                     \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

static void
check_parsed(const struct addr *a, int flags)
{
	char text[600], key[600], key2[600], dkey[300];
	struct addr b, c;
	const char *why = NULL;
	int n, k, k2;

	CHECK(memchr(a->local, '\0', sizeof(a->local)) != NULL);
	CHECK(memchr(a->domain, '\0', sizeof(a->domain)) != NULL);
	CHECK(strlen(a->local) <= ADDR_LOCAL_MAX);
	CHECK(strlen(a->domain) <= ADDR_DOMAIN_MAX);
	if (!(flags & ADDR_UTF8))
		CHECK(!a->utf8);
	n = addr_format(a, text, sizeof(text));
	CHECK(n > 0 && (size_t)n < sizeof(text));
	k = addr_key(a, key, sizeof(key));
	CHECK(k > 0 && (size_t)k < sizeof(key));
	CHECK(addr_domain_key(a, dkey, sizeof(dkey)) >= 0);
	/* Formatting loses nothing that the key depends on. */
	CHECK(addr_parse(text, (size_t)n, flags, &b, &why) == 0);
	k2 = addr_key(&b, key2, sizeof(key2));
	CHECK(k2 == k && memcmp(key, key2, (size_t)k) == 0);
	/* The key is itself an address with the same key. */
	CHECK(addr_parse(key, (size_t)k, flags, &c, &why) == 0);
	k2 = addr_key(&c, key2, sizeof(key2));
	CHECK(k2 == k && memcmp(key, key2, (size_t)k) == 0);
	/* Too-small buffers are refused, never overrun. */
	CHECK(addr_format(a, text, (size_t)n) == -1);
	CHECK(addr_key(a, key, (size_t)k) == -1);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct addr a;
	const char *why = NULL;
	char name[256];
	int flags;
	char *copy;

	if (size < 1)
		return 0;
	flags = (data[0] & 1) ? ADDR_UTF8 : 0;
	/* An exact-size heap copy: ASan catches any read past len. */
	copy = malloc(size - 1 ? size - 1 : 1);
	if (copy == NULL)
		return 0;
	memcpy(copy, data + 1, size - 1);
	if (data[0] & 2) {
		memset(name, 'x', sizeof(name));
		if (addr_parse_line(copy, size - 1, flags, &a, name, sizeof(name), &why) == 0) {
			CHECK(memchr(name, '\0', sizeof(name)) != NULL);
			check_parsed(&a, flags);
		} else
			CHECK(why != NULL && *why != '\0');
	} else {
		if (addr_parse(copy, size - 1, flags, &a, &why) == 0)
			check_parsed(&a, flags);
		else
			CHECK(why != NULL && *why != '\0');
	}
	free(copy);
	return 0;
}
