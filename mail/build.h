/*
 * build.h - composing a new message: the notices, confirmations and replies
 * that fanmail writes itself (command replies, moderation notices, bounce
 * notices).
 *
 * build_message() writes From, To, optional Reply-To/Cc, Subject (RFC 2047
 * encoded when it is not plain ASCII), Date, Message-ID (right side: the
 * hostname given), MIME-Version, Auto-Submitted (RFC 3834) when asked,
 * In-Reply-To/References when answering a message, extra headers, and a
 * text/plain body (7bit when it is short-lined ASCII, else UTF-8
 * quoted-printable). With an attachment it becomes multipart/mixed with the
 * original message as a message/rfc822 part. Every line ends in CRLF, no
 * line is longer than 998 octets, and header values given with CR or LF in
 * them are flattened to one line (no header injection).
 *
 * The result is malloc'd; the caller frees it.
 */
#ifndef FANMAIL_BUILD_H
#define FANMAIL_BUILD_H

#include <stddef.h>
#include <time.h>

#define BUILD_MSGID_MAX 320 /* "<" 64 "@" 255 ">" and the NUL, with room */

struct build_header {
	const char *name;  /* e.g. "List-Id" */
	const char *value; /* ASCII; folded at white space when long */
};

struct build_msg {
	const char *from_name; /* display name (UTF-8) or NULL */
	const char *from_addr; /* required */
	const char *to_name;   /* display name (UTF-8) or NULL */
	const char *to_addr;   /* required; may be a comma-separated list */
	const char *reply_to;  /* address or NULL */
	const char *subject;   /* UTF-8 */
	const char *hostname;  /* right side of the Message-ID */
	/* "auto-replied" (an answer to a message) or "auto-generated" (a
	 * notice nobody asked for), or NULL for no header. */
	const char *auto_submitted;
	const char *in_reply_to; /* Message-ID of the message answered, with <> */
	const char *references;  /* its References header value, or NULL */
	const struct build_header *headers;
	size_t nheaders;
	const char *body; /* UTF-8 text; LF, CRLF or CR line ends */
	/* An original message to attach as message/rfc822, or NULL. */
	const char *attach;
	size_t attach_len;
	time_t date; /* 0: now */
};

/* Builds m into a new buffer (*out, *outlen). The Message-ID made, with its
 * angle brackets, is written to msgid when it is not NULL. Returns 0, or -1
 * with *why pointing at a static sentence (a required field missing, out of
 * memory). */
int build_message(const struct build_msg *m, char **out, size_t *outlen,
                  char msgid[BUILD_MSGID_MAX], const char **why);

/* A new Message-ID "<time.random@hostname>". Returns its length or -1. */
int build_message_id(const char *hostname, char *buf, size_t len);

/* RFC 5322 date-time of t in UTC: "Sun, 29 Nov 2026 08:54:05 +0000".
 * buf needs 32 octets. */
void build_date(time_t t, char *buf, size_t len);

/* Fills buf with n random lower-case hex digits and a NUL (buf: n + 1
 * octets), from getrandom(2). Returns 0 or -1. */
int build_random_hex(char *buf, size_t n);

#endif
