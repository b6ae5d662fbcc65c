/*
 * fuzz_downgrade.c - making a message 7-bit (mail/downgrade.c), as delivery
 * does for a receiver without SMTPUTF8 and 8BITMIME.
 *
 * Beyond "does not crash": a downgrade that succeeds leaves no 8-bit octet
 * in the message (nothing 8-bit may reach such a receiver), and a message
 * that downgrade_scan() calls 7-bit comes back unchanged.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mail/downgrade.h"

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "downgrade invariant failed: %s\n", #cond);                \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *in = (const char *)data;
	int need = downgrade_scan(in, size);

	for (int flags = 1; flags < 4; flags++) {
		char *out = NULL, why[200];
		size_t olen = 0;

		if (downgrade_message(in, size, flags, &out, &olen, why, sizeof(why)) < 0) {
			CHECK(out == NULL && why[0] != '\0');
			continue;
		}
		if (need == 0)
			CHECK(olen == size && memcmp(out, in, size) == 0);
		if (flags == (DOWNGRADE_HEADERS | DOWNGRADE_BODY))
			for (size_t i = 0; i < olen; i++)
				CHECK((unsigned char)out[i] < 0x80);
		free(out);
	}
	return 0;
}
