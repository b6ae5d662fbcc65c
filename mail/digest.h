/*
 * digest.h - building one digest issue from the posts it holds: pure
 * message composition, no store and no sockets (the caller picks the posts,
 * numbers the issue and queues the result).
 *
 * digest_build_mime() writes the MIME digest (RFC 2046 section 5.1.5): one
 * multipart/mixed message whose first part is text/plain (utf-8) with the
 * header text and the table of contents ("Today's Topics:", each post's
 * Subject and From decoded from RFC 2047 words), then a multipart/digest
 * part whose parts are the posts as message/rfc822 (each labelled so
 * explicitly, though it is the default there: downgrade.c and other
 * readers then need not know the rule), then a text/plain part with the
 * footer text and the "End of" line. The boundaries are random and checked
 * absent from every post. When a post holds 8-bit octets, its part, the
 * multipart/digest and the message say Content-Transfer-Encoding 8bit;
 * delivery's downgrade (mail/downgrade.c) makes such a digest 7-bit for a
 * server without 8BITMIME by re-encoding the posts' 8-bit leaves inside
 * their message/rfc822 parts.
 *
 * digest_build_text() writes the plain text digest (RFC 1153): one
 * text/plain (utf-8) message: a header block (name, date, volume and
 * issue, the header text), "Today's Topics:", a line of 70 hyphens, then
 * each post as its Date, From, Subject and Message-ID lines (From and
 * Subject decoded to UTF-8), a blank line and its text (text/plain parts
 * decoded to UTF-8; other parts replaced by "[attachment: TYPE, NAME, N
 * bytes omitted]"; of a multipart/alternative only the plain text), each
 * post followed by a line of 30 hyphens; then the footer text and the
 * trailer "End of NAME digest, Vol V, Issue I" over a line of asterisks.
 * So that splitting finds exactly the posts, a post's text is stuffed:
 * a line that begins with "-" gets "- " in front (RFC 934 section 2, which
 * burst-like readers undo), and a line that begins a paragraph and looks
 * like a header field ("Name: ...") gets a space in front (formail -ds
 * starts a message at a blank line followed by header fields). The
 * transfer encoding is 7bit for ASCII, 8bit for UTF-8 text, and
 * quoted-printable when a line would pass 998 octets.
 *
 * Both: From "NAME <request address>" (replies to the list through
 * Reply-To, since the request address takes commands), To the list,
 * Subject "NAME digest, Vol V, Issue I" (RFC 2047 words when NAME is not
 * ASCII), Date, Message-ID <digest.V.I.LOCAL=DOMAIN@hostname> (the same for
 * the same issue: a rebuilt issue is recognisably the same message),
 * MIME-Version, Precedence: list, then the caller's List-* lines. Every
 * line ends in CRLF and none passes 998 octets, except a post's own line
 * that was longer already in the MIME digest (it is kept as sent).
 */
#ifndef FANMAIL_DIGEST_H
#define FANMAIL_DIGEST_H

#include <stddef.h>
#include <stdint.h>

/* One post as it was sent to the list (CRLF lines; LF or CR alone are
 * made CRLF). */
struct digest_post {
	const char *msg;
	size_t len;
};

struct digest_info {
	const char *list_address;    /* dev@lists.example.org; required */
	const char *list_name;       /* display name or local part; NULL: local part */
	const char *request_address; /* dev-request@...; NULL: the list address */
	int volume, issue;           /* "dev digest, Vol 3, Issue 12" */
	/* digest_header / digest_footer: plain UTF-8 text, any line ends;
	 * NULL or "" for none. */
	const char *header_text, *footer_text;
	/* The List-* header lines to put on the digest, each ending in CRLF
	 * (folded already), or NULL. */
	const char *list_fields;
	const char *hostname; /* right side of the Message-ID */
	int64_t now;          /* Date (seconds since the epoch) */
};

/* Build the digest of the n posts p[0..n) (n may be 0) into a malloc'd
 * *out of *len octets (NUL-terminated; the caller frees). Return 0, or -1
 * when the list address is missing or memory or randomness ran out. */
int digest_build_mime(const struct digest_info *d, const struct digest_post *p, size_t n,
                      char **out, size_t *len);
int digest_build_text(const struct digest_info *d, const struct digest_post *p, size_t n,
                      char **out, size_t *len);

#endif
