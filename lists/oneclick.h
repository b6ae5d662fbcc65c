/*
 * oneclick.h - one-click unsubscribe tokens (RFC 8058) for personalized
 * list mail.
 *
 * A token names one member of one list and proves that the list made it:
 *
 *     V-ADDR-SIG     e.g. 1-mjqxgzjaojsxi5dfoqqgk6dbnvygyzjon5zgo-k3v5q2m7c4d6x1ab
 *
 * V the key version (decimal), ADDR the member's address key (the members
 * table's addr_key) in lower-case base32 without padding, SIG the first 80
 * bits of HMAC-SHA256 over the list's id, the address key and V, keyed by
 * the server secret "oneclick.V" (db/secrets.h: made at first start,
 * rotated by `fanmail secret rotate oneclick`), in lower-case base32 (16
 * letters). Nothing per member is stored: the token is checked by
 * recomputing SIG. Letters, digits and '-' only, all lower case, so one
 * token serves in a URL path (BASE/unsubscribe/LIST/TOKEN) and in an
 * address local part (LIST-leave+TOKEN@DOMAIN), where MTAs may change its
 * case: checking ignores case.
 *
 * The keys are loaded once (oneclick_keys_load()) and read-only after, so
 * threads share them.
 */
#ifndef FANMAIL_ONECLICK_H
#define FANMAIL_ONECLICK_H

#include <stddef.h>
#include <stdint.h>

struct db;

#define ONECLICK_KEYS_MAX 8
#define ONECLICK_SIG_LEN 16
#define ONECLICK_TOKEN_MAX 640 /* an address key of 320 octets in base32, and the rest */

struct oneclick_keys {
	int n; /* key[0] is the newest: it signs new tokens */
	struct {
		int version;
		unsigned char k[64];
		size_t len;
	} key[ONECLICK_KEYS_MAX];
};

/* Loads the versions of "oneclick" from the store, newest first (at most
 * ONECLICK_KEYS_MAX). Returns 0, or -1 when the store failed (its error
 * set) or holds no key (status DB_OK). */
int oneclick_keys_load(struct db *db, struct oneclick_keys *k);

/* The token for the member with address key addr_key on list list_id,
 * signed with the newest key. Returns its length, or -1 when it does not
 * fit in buf or there is no key. */
int oneclick_token(const struct oneclick_keys *k, int64_t list_id, const char *addr_key, char *buf,
                   size_t len);

enum oneclick_check {
	ONECLICK_OK = 0,
	ONECLICK_MALFORMED = -1, /* not of the token's form at all (400) */
	ONECLICK_FORGED = -2,    /* the form is right, the signature is not, or
	                          * its key version is unknown or dropped (403) */
};

/* Checks token[0..len) for list list_id; on ONECLICK_OK writes the
 * member's address key to addr_key. Comparison in constant time. */
enum oneclick_check oneclick_check(const struct oneclick_keys *k, int64_t list_id,
                                   const char *token, size_t len, char *addr_key, size_t keylen);

/* BASE/unsubscribe/LIST@DOMAIN/TOKEN (base without a trailing '/').
 * Returns the length, or -1 when it does not fit. */
int oneclick_url(const char *base, const char *list_address, const char *token, char *buf,
                 size_t len);

#endif
