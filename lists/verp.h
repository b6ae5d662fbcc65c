/*
 * verp.h - variable envelope return paths (VERP) for list posts.
 *
 * With VERP each recipient of a post gets its own envelope sender,
 * LIST-bounces+local=domain@LISTDOMAIN, so a bounce names the member by the
 * address it comes back to, whatever the bounce itself says.
 *
 * Entry points: verp_encode() builds that address, verp_decode() takes the
 * extension (the text after "bounces+") back to the member's address, and
 * verp_decode_address() does the same for a whole address as an MTA may have
 * returned it (case changed, local part quoted, '-' for '+').
 * verp_mode_parse() and verp_post_is_verp() implement the per-list setting
 * verp = never | always | every (with verp_every = N): whether post number K
 * of a list goes out VERP'd.
 *
 * Signatures (like SRS): a bounce or an ARF report counts only when it is
 * about mail the list really sent. What the list puts in a VERP address and
 * in its posts is signed with an HMAC-SHA256 keyed by the server secret
 * "report" (db/secrets.h, made once by the schema, never printed):
 * - verp_sender() builds LIST-bounces+local=domain+SIG@LISTDOMAIN, SIG 12
 *   base32 letters over the list and the member (case-insensitive, since
 *   MTAs change case); verp_check() takes an extension back to the member
 *   only when SIG is right.
 * - verp_tag_make() gives the X-Fanmail-Report header of a post (the
 *   message's id, the time, whether it went out VERP'd, SIG over these and
 *   the list); verp_tag_find() says whether a report carries a good one of
 *   this list, not older than VERP_TAG_MAX_AGE; verp_find_signed() finds a
 *   signed VERP address of this list in a report (the Return-Path of the
 *   returned message).
 */
#ifndef FANMAIL_VERP_H
#define FANMAIL_VERP_H

#include <stddef.h>
#include <stdint.h>

struct db;

#define VERP_SIG_LEN 12
#define VERP_KEY_MAX 64
#define VERP_TAG_HEADER "X-Fanmail-Report"
#define VERP_TAG_MAX_AGE (90 * 86400) /* seconds a post's tag is believed */

/* The signing key, loaded once (read-only afterwards, so threads share it). */
struct verp_key {
	unsigned char k[VERP_KEY_MAX];
	size_t n;
};

enum verp_mode {
	VERP_NEVER = 0,
	VERP_ALWAYS,
	VERP_EVERY, /* every Nth post (verp_every) */
};

/* "never", "always", "every" (any case). Returns 0, or -1 for other text. */
int verp_mode_parse(const char *s, enum verp_mode *mode);

/* Whether post number k (1 for a list's first post) is sent with VERP.
 * With VERP_EVERY and every <= 1 every post is; with every == 0 none is
 * (as Mailman: post k is VERP'd when k is a multiple of every). */
int verp_post_is_verp(enum verp_mode mode, long long every, long long k);

/* The envelope sender for recipient rcpt (local@domain) of list
 * list_local@list_domain: list_local-bounces+rcpt_local=rcpt_domain@list_domain.
 * A recipient whose local part is quoted ("a b"@x) is encoded unquoted and
 * the whole VERP local part is quoted instead. The local part may exceed
 * RFC 5321's 64 octets, as Postfix's and Mailman's VERP addresses do; the
 * whole address may not exceed 254. Returns the length, or -1 when rcpt is
 * not an address or the result does not fit in buf or in 254 octets. */
int verp_encode(const char *list_local, const char *list_domain, const char *rcpt, char *buf,
                size_t len);

/* The member's address from a VERP extension ("bob=example.org" gives
 * bob@example.org). The split is at the last '=' so that local parts with
 * '=' survive. Quotes and backslash escapes an MTA added are removed; the
 * domain is lower-cased. Returns the length, or -1 when ext is not a VERP
 * extension (no '=', empty local part, or not a domain after the '='). */
int verp_decode(const char *ext, size_t extlen, char *buf, size_t len);

/* The member's address from a whole bounce address as it came back:
 * list_local-bounces+ext@list_domain, compared without regard to case, with
 * or without quotes around the local part, with '+' or '-' before the
 * extension. Returns the length, or -1 when addr is not a VERP address of
 * that list. */
int verp_decode_address(const char *addr, const char *list_local, const char *list_domain,
                        char *buf, size_t len);

/* Loads the server's report key from the store. Returns 0, or -1 with the
 * store's error set. */
int verp_key_load(struct db *db, struct verp_key *k);

/* As verp_encode(), with "+SIG" after the member's domain. */
int verp_encode_signed(const struct verp_key *k, const char *list_local, const char *list_domain,
                       const char *rcpt, char *buf, size_t len);

/* The envelope sender for a copy to rcpt of mail sent as from: for
 * LIST-bounces@LISTDOMAIN the signed VERP address (from itself when that
 * would not fit in 254 octets); another sender gets an unsigned
 * +local=domain extension; from itself when rcpt or from has no '@'.
 * Always writes a string to out. */
void verp_sender(const struct verp_key *k, const char *from, const char *rcpt, char *out,
                 size_t len);

/* The member's address from a VERP extension (as verp_decode()) when it
 * carries the right signature for list_local@list_domain. Returns the
 * length; 0 when it is a VERP extension without a signature or with a wrong
 * one; -1 when it is no VERP extension at all. */
int verp_check(const struct verp_key *k, const char *list_local, const char *list_domain,
               const char *ext, size_t extlen, char *buf, size_t len);

/* The value of the X-Fanmail-Report header for a message of the list with
 * id (letters, digits, '-' and '_' only) sent at now, VERP'd (one signed
 * return path per recipient) or not: "ID.TIME.v.SIG" or "ID.TIME.b.SIG".
 * Returns the length or -1. */
int verp_tag_make(const struct verp_key *k, const char *list_local, const char *list_domain,
                  const char *id, int64_t now, int verp, char *buf, size_t len);

enum verp_tag_found {
	VERP_TAG_NONE = 0,
	VERP_TAG_BATCHED, /* a good tag of a post sent without VERP */
	VERP_TAG_VERPED,  /* a good tag of a VERP'd post: its report must name the
	                     signed VERP address too */
};

/* Whether msg[0..len) (a bounce or report, which quotes the list's
 * message) holds an X-Fanmail-Report tag of this list with a right
 * signature, made at most VERP_TAG_MAX_AGE before now; the first good one
 * found says which kind. */
enum verp_tag_found verp_tag_find(const struct verp_key *k, const char *list_local,
                                  const char *list_domain, const char *msg, size_t len,
                                  int64_t now);

/* The member named by the first correctly signed VERP address of this list
 * found anywhere in msg[0..len). Returns its length, or 0 when there is none. */
int verp_find_signed(const struct verp_key *k, const char *list_local, const char *list_domain,
                     const char *msg, size_t len, char *buf, size_t buflen);

#endif
