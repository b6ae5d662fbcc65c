/*
 * downgrade.h - fitting a message to a receiver that offers neither
 * SMTPUTF8 (RFC 6531) nor 8BITMIME (RFC 6152): 8-bit header text made
 * 7-bit with RFC 2047 encoded words, 8-bit bodies re-encoded (RFC 2045).
 *
 * downgrade_scan() says what a message holds: 8-bit octets in its header
 * block or in the header of one of its MIME parts (UTF-8 headers, RFC 6532:
 * only a server with SMTPUTF8 may take them as they are) and in its body
 * (only a server with 8BITMIME may).
 *
 * downgrade_message() rewrites a message:
 *   DOWNGRADE_HEADERS - each header field with 8-bit octets, in the
 *     message and in every MIME part: unstructured fields (Subject,
 *     Comments, X-..., and any field not named below) become encoded
 *     words (utf-8, B or Q, whichever is shorter, at most 75 octets each,
 *     folded so that no line passes 78 columns); in address fields (From,
 *     Sender, Reply-To, To, Cc, Bcc, their Resent- forms, List-Id) the
 *     display names are encoded and the addresses kept; in Content-Type
 *     and Content-Disposition a quoted parameter value is encoded inside
 *     its quotes (as common mail programs write file names); trace and
 *     identity fields (Received, Message-ID, In-Reply-To, References,
 *     Date, List-*) are encapsulated as "Downgraded-Name" with the value
 *     encoded (RFC 6857 section 3.1.10). An address with 8-bit octets
 *     (local part or domain), or 8-bit octets where none of the above
 *     applies, cannot be downgraded: SMTPUTF8 is needed.
 *   DOWNGRADE_BODY - each leaf part whose body has 8-bit octets is
 *     decoded and encoded again, text parts as quoted-printable, anything else
 *     as base64, and its Content-Transfer-Encoding set to say so (a
 *     message without MIME-Version or Content-Type gets them); multiparts
 *     are walked part by part (8-bit octets in a preamble or epilogue,
 *     which no reader shows, become "?"), and a message/rfc822 part is
 *     downgraded whole. The decoded text stays exactly the same.
 *
 * The result has CRLF line ends where lines were written anew. Returns 0
 * with a malloc'd *out (the caller frees), or -1 with *why (a static
 * sentence, or one written to whybuf) when the message cannot be
 * downgraded or memory ran out.
 */
#ifndef FANMAIL_DOWNGRADE_H
#define FANMAIL_DOWNGRADE_H

#include <stddef.h>

#define DOWNGRADE_HEADERS 0x1
#define DOWNGRADE_BODY 0x2

/* Which of DOWNGRADE_HEADERS (8-bit header text) and DOWNGRADE_BODY
 * (8-bit body) the message needs when the receiver lacks SMTPUTF8 and
 * 8BITMIME; 0 for a 7-bit message. */
int downgrade_scan(const char *msg, size_t len);

int downgrade_message(const char *msg, size_t len, int flags, char **out, size_t *outlen,
                      char *whybuf, size_t whylen);

#endif
