/*
 * personal.h - personalized delivery (list setting personalize): what the
 * posting path leaves in the one stored body of a personal post, and how
 * the sender turns that body into one member's copy at send time.
 *
 * The footer variables %m (the member's address) and %u (their one-click
 * unsubscribe URL) are stored as markers, written after the footer text
 * was encoded for its part:
 *
 *     NUL  WHAT  HOW  NUL      WHAT 'm' or 'u'; HOW 'r' (the part takes the
 *                              value as is) or 'q' (quoted-printable)
 *
 * NUL never comes in over SMTP (server/smtp_data.c refuses it), so no
 * poster can forge a marker, and the markers survive any encoding of the
 * footer because they are put in after it. Each copy gets the value
 * encoded for the marker's context. The stored body has no
 * List-Unsubscribe field: each copy starts with its own
 * (personal_headers()).
 *
 * Pure functions: no store, no sockets. Everything returned is malloc'd
 * and owned by the caller; NULL means out of memory.
 */
#ifndef FANMAIL_PERSONAL_H
#define FANMAIL_PERSONAL_H

#include <stddef.h>

#define PERSONAL_MARK_LEN 4

/* An address local part may be 64 octets, a whole mailbox 254 (RFC 5321
 * 4.5.3.1): a LIST-leave+TOKEN address longer than that is left out. */
#define PERSONAL_MAILTO_MAX 254

/* Appends the marker for variable what ('m' or 'u') in context qp (1:
 * quoted-printable) to buf (PERSONAL_MARK_LEN octets). */
void personal_marker(char *buf, char what, int qp);

/* The lines a member's copy starts with: List-Unsubscribe with the
 * one-click URL BASE/unsubscribe/LIST@DOMAIN/TOKEN and
 * mailto:LIST-leave+TOKEN@DOMAIN (mailto:LIST-leave@DOMAIN when that
 * address would pass PERSONAL_MAILTO_MAX), folded so that no line passes
 * 998 octets, and List-Unsubscribe-Post: List-Unsubscribe=One-Click.
 * token NULL (no key): mailto:LIST-leave@DOMAIN alone. base "" (no HTTP
 * face): only the mailto form, and no
 * List-Unsubscribe-Post (RFC 8058 one-click needs an HTTP(S) URI). url
 * (may be NULL) gets the one-click URL, "" when there is none; urllen its
 * size. */
char *personal_headers(const char *local, const char *domain, const char *base, const char *token,
                       char *url, size_t urllen, size_t *len);

/* Copies body[0..len) after head[0..headlen), every marker replaced by
 * its value (addr for 'm', url for 'u'), encoded for the marker's
 * context. A NUL that does not start a well-formed marker is dropped. */
char *personal_fill(const char *body, size_t len, const char *head, size_t headlen,
                    const char *addr, const char *url, size_t *outlen);

/* 1 when body[0..len) holds a marker (a NUL). */
int personal_has_marker(const char *body, size_t len);

#endif
