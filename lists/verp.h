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
 * verp_sender() gives the envelope sender of one copy of a VERP'd post.
 * verp_mode_parse() and verp_post_is_verp() implement the per-list setting
 * verp = never | always | every (with verp_every = N): whether post number K
 * of a list goes out VERP'd.
 */
#ifndef FANMAIL_VERP_H
#define FANMAIL_VERP_H

#include <stddef.h>

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

/* The envelope sender of the copy of a post for rcpt: a sender
 * LIST-bounces@LISTDOMAIN becomes LIST-bounces+local=domain@LISTDOMAIN
 * (verp_encode()); another sender gets the same +local=domain extension. The
 * result is truncated to len; from is copied as it is when either address has
 * no '@'. Delivery calls it for each VERP'd copy, and for each DSN of a
 * VERP'd message. */
void verp_sender(const char *from, const char *rcpt, char *out, size_t len);

#endif
