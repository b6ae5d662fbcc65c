/*
 * oneclick.c - one-click unsubscribe tokens (see oneclick.h).
 */
#include "lists/oneclick.h"

#include <ctype.h>
#include <inttypes.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <string.h>

#include "db/secrets.h"

static const char b32[] = "abcdefghijklmnopqrstuvwxyz234567";

static int
add_key(void *arg, int version, const unsigned char *value, size_t len, int64_t created)
{
	struct oneclick_keys *k = arg;

	(void)created;
	if (len > sizeof(k->key[0].k))
		len = sizeof(k->key[0].k);
	k->key[k->n].version = version;
	memcpy(k->key[k->n].k, value, len);
	k->key[k->n].len = len;
	return ++k->n == ONECLICK_KEYS_MAX;
}

int
oneclick_keys_load(struct db *db, struct oneclick_keys *k)
{
	memset(k, 0, sizeof(*k));
	if (db_secret_versions(db, "oneclick", add_key, k) < 0)
		return -1;
	return k->n > 0 ? 0 : -1;
}

/* base32 of src[0..n) into out (no padding); returns the length or -1. */
static int
b32_encode(const unsigned char *src, size_t n, char *out, size_t len)
{
	size_t o = 0;
	unsigned bits = 0, nbits = 0;

	for (size_t i = 0; i < n; i++) {
		bits = (bits << 8 | src[i]) & 0xffff;
		nbits += 8;
		while (nbits >= 5) {
			if (o + 1 >= len)
				return -1;
			out[o++] = b32[(bits >> (nbits - 5)) & 31];
			nbits -= 5;
		}
	}
	if (nbits > 0) {
		if (o + 1 >= len)
			return -1;
		out[o++] = b32[(bits << (5 - nbits)) & 31];
	}
	out[o] = '\0';
	return (int)o;
}

/* The inverse, any case; -1 for a letter outside the alphabet, leftover
 * bits that are not zero (so each address has one encoding), or no room. */
static int
b32_decode(const char *src, size_t n, char *out, size_t len)
{
	size_t o = 0;
	unsigned bits = 0, nbits = 0;

	for (size_t i = 0; i < n; i++) {
		int c = tolower((unsigned char)src[i]);
		const char *p = c ? strchr(b32, c) : NULL;

		if (p == NULL)
			return -1;
		bits = (bits << 5 | (unsigned)(p - b32)) & 0xffff;
		nbits += 5;
		if (nbits >= 8) {
			if (o + 1 >= len)
				return -1;
			out[o++] = (char)((bits >> (nbits - 8)) & 0xff);
			nbits -= 8;
		}
	}
	if (nbits >= 5 || (bits & ((1u << nbits) - 1)) != 0)
		return -1;
	out[o] = '\0';
	return (int)o;
}

static void
sign(const unsigned char *key, size_t keylen, int64_t list_id, const char *addr_key, int version,
     char sig[ONECLICK_SIG_LEN + 1])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	char msg[ONECLICK_TOKEN_MAX];
	int n;
	uint64_t bits = 0;

	n = snprintf(msg, sizeof(msg), "fanmail-oneclick\n%" PRId64 "\n%s\n%d", list_id, addr_key,
	             version);
	if (n < 0 || (size_t)n >= sizeof(msg))
		n = (int)sizeof(msg) - 1;
	HMAC(EVP_sha256(), key, (int)keylen, (const unsigned char *)msg, (size_t)n, md, &mdlen);
	for (int i = 0; i < 8; i++)
		bits = bits << 8 | md[i];
	/* 16 letters of 5 bits: the first 80 bits (64 from bits, 16 more). */
	for (int i = 0; i < 12; i++)
		sig[i] = b32[(bits >> (64 - 5 * (i + 1))) & 31];
	bits = (bits & 0xf) << 16 | (uint64_t)md[8] << 8 | md[9];
	for (int i = 0; i < 4; i++)
		sig[12 + i] = b32[(bits >> (20 - 5 * (i + 1))) & 31];
	sig[ONECLICK_SIG_LEN] = '\0';
}

int
oneclick_token(const struct oneclick_keys *k, int64_t list_id, const char *addr_key, char *buf,
               size_t len)
{
	char enc[ONECLICK_TOKEN_MAX], sig[ONECLICK_SIG_LEN + 1];
	int n;

	if (k->n == 0 ||
	    b32_encode((const unsigned char *)addr_key, strlen(addr_key), enc, sizeof(enc)) < 0)
		return -1;
	sign(k->key[0].k, k->key[0].len, list_id, addr_key, k->key[0].version, sig);
	n = snprintf(buf, len, "%d-%s-%s", k->key[0].version, enc, sig);
	return n < 0 || (size_t)n >= len ? -1 : n;
}

enum oneclick_check
oneclick_check(const struct oneclick_keys *k, int64_t list_id, const char *token, size_t len,
               char *addr_key, size_t keylen)
{
	const char *d1, *d2, *end = token + len;
	char sig[ONECLICK_SIG_LEN + 1];
	long version = 0;
	int i;
	unsigned diff = 0;

	d1 = memchr(token, '-', len);
	if (d1 == NULL || d1 == token || d1 - token > 6)
		return ONECLICK_MALFORMED;
	for (const char *p = token; p < d1; p++) {
		if (!isdigit((unsigned char)*p))
			return ONECLICK_MALFORMED;
		version = version * 10 + (*p - '0');
	}
	d2 = memchr(d1 + 1, '-', (size_t)(end - d1 - 1));
	if (d2 == NULL || d2 == d1 + 1 || end - d2 - 1 != ONECLICK_SIG_LEN)
		return ONECLICK_MALFORMED;
	if (b32_decode(d1 + 1, (size_t)(d2 - d1 - 1), addr_key, keylen) < 1 ||
	    strlen(addr_key) != (size_t)((d2 - d1 - 1) * 5 / 8))
		return ONECLICK_MALFORMED; /* no NUL inside, and nothing cut off */
	for (const char *p = d2 + 1; p < end; p++)
		if (*p == '\0' || strchr(b32, tolower((unsigned char)*p)) == NULL)
			return ONECLICK_MALFORMED;
	for (i = 0; i < k->n; i++)
		if (k->key[i].version == version)
			break;
	if (i == k->n)
		return ONECLICK_FORGED;
	sign(k->key[i].k, k->key[i].len, list_id, addr_key, k->key[i].version, sig);
	for (int j = 0; j < ONECLICK_SIG_LEN; j++)
		diff |= (unsigned)(sig[j] ^ tolower((unsigned char)d2[1 + j]));
	return diff == 0 ? ONECLICK_OK : ONECLICK_FORGED;
}

/* Characters left as they are in a path segment (RFC 3986 unreserved,
 * and '@' and '+', which a list address may hold). */
static int
path_safe(unsigned char c)
{
	return isalnum(c) || strchr("-._~@+", c) != NULL;
}

int
oneclick_url(const char *base, const char *list_address, const char *token, char *buf, size_t len)
{
	size_t o;
	int n = snprintf(buf, len, "%s/unsubscribe/", base);

	if (n < 0 || (size_t)n >= len)
		return -1;
	o = (size_t)n;
	for (const unsigned char *p = (const unsigned char *)list_address; *p; p++) {
		if (o + 4 >= len)
			return -1;
		if (path_safe(*p))
			buf[o++] = (char)*p;
		else
			o += (size_t)snprintf(buf + o, len - o, "%%%02X", *p);
	}
	n = snprintf(buf + o, len - o, "/%s", token);
	return n < 0 || (size_t)n >= len - o ? -1 : (int)(o + (size_t)n);
}
