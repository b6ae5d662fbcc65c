/*
 * msg.h - reading RFC 5322 / MIME messages held in a caller's buffer.
 *
 * msg_parse() splits a message into its header fields and body without
 * copying: every pointer it stores points into the caller's buffer, which
 * must outlive the struct msg. The only memory it owns is the array of
 * header records, released by msg_free(). LF, CRLF and CR-only line ends
 * are all accepted (and may even be mixed); the header block ends at the
 * first empty line, or at the first line that is neither a field nor a
 * continuation (a leading mbox "From " line is skipped).
 *
 * Helpers that produce text (unfolding, RFC 2047 decoding, transfer
 * decoding, parameter values) return malloc'd, NUL-terminated strings that
 * the caller frees; they return NULL only when out of memory.
 *
 * msg_walk() visits every MIME part, depth first, in message order: the
 * message itself (depth 0), the parts of each multipart, and the message
 * inside each message/rfc822 part.
 */
#ifndef FANMAIL_MSG_H
#define FANMAIL_MSG_H

#include <stddef.h>

struct msg_header {
	const char *name; /* the field name, without the colon */
	size_t name_len;
	const char *value; /* raw value: after the colon up to the field's last
	                      line end, continuation lines included */
	size_t value_len;
	const char *start; /* the whole field, line ends included */
	size_t len;
	int folded; /* the value spans more than one line */
};

struct msg {
	const char *buf; /* the caller's buffer */
	size_t len;
	struct msg_header *hdrs; /* owned; in message order */
	size_t nhdrs;
	size_t hdr_len;   /* bytes of header block (fields only, no blank line) */
	const char *body; /* after the blank line; buf + len when there is none */
	size_t body_len;
	const char *eol; /* the line end the message uses first: "\r\n", "\n", "\r" */
};

/* Parses buf[0..len). Returns 0, or -1 when out of memory. A message with
 * no header fields at all is still parsed (nhdrs 0, all of it body). */
int msg_parse(struct msg *m, const char *buf, size_t len);
void msg_free(struct msg *m);

/* The nth (from 0) field called name, compared ignoring case; NULL when
 * there are fewer. msg_header_count() says how many there are. */
const struct msg_header *msg_header_get(const struct msg *m, const char *name, size_t nth);
size_t msg_header_count(const struct msg *m, const char *name);

/* The first field called name, unfolded and trimmed, as a new string; NULL
 * when absent (or out of memory). */
char *msg_header_text(const struct msg *m, const char *name);

/* Unfolds a raw value (line ends inside it removed, the white space after
 * them kept) and trims leading and trailing white space. */
char *msg_unfold(const char *value, size_t len);

/* Decodes RFC 2047 encoded-words in an unfolded header value to UTF-8.
 * White space between two adjacent encoded-words is dropped. B and Q
 * encodings; any charset iconv knows (utf-8, us-ascii, iso-8859-1 and
 * windows-1252 always). A word in an unknown charset, or malformed, is
 * kept as it is written. *had_words (may be NULL) is set to 1 when at
 * least one word was decoded. */
char *msg_decode_words(const char *s, size_t len, int *had_words);

/* Content-Type (RFC 2045), with RFC 2231 parameter continuations and
 * charset/language-tagged values (decoded to UTF-8). type and subtype are
 * lower-cased; parameter names lower-cased; values unquoted. */
struct msg_param {
	char *name;
	char *value;
};

struct msg_ctype {
	char type[64];
	char subtype[64];
	struct msg_param *params; /* owned */
	size_t nparams;
};

/* Parses an unfolded or raw value. A missing or unreadable value yields
 * text/plain (RFC 2045 section 5.2). Returns 0, or -1 when out of memory. */
int msg_ctype_parse(const char *value, size_t len, struct msg_ctype *ct);
/* The value of parameter name (lower case), or NULL; points into ct. */
const char *msg_ctype_param(const struct msg_ctype *ct, const char *name);
int msg_ctype_is(const struct msg_ctype *ct, const char *type, const char *subtype);
void msg_ctype_free(struct msg_ctype *ct);

/* Content-Transfer-Encoding decoding. cte is the field's value (NULL,
 * 7bit, 8bit, binary: copied as is). Malformed input is decoded as far as
 * it goes, never refused. Returns a new buffer (NUL-terminated, length in
 * *outlen), or NULL when out of memory. */
char *msg_decode_body(const char *cte, const char *in, size_t len, size_t *outlen);
/* Appends in[0..len), text in charset cs (NULL or "": us-ascii), to b as
 * UTF-8 (iconv for the charsets it knows). Returns 0, or -1 when the
 * charset is unknown or the text is not in it (nothing appended). */
struct strbuf;
int msg_charset_to_utf8(struct strbuf *b, const char *cs, const char *in, size_t len);
size_t msg_base64_decode(const char *in, size_t len, char *out); /* out >= len */
size_t msg_qp_decode(const char *in, size_t len, char *out);     /* out >= len */

/* One MIME entity met by msg_walk(). Everything points into the buffer
 * given to msg_walk() and is valid only during the callback. */
struct msg_part {
	int depth;         /* 0: the message itself */
	int index;         /* order in the walk, from 0 */
	const char *start; /* the part: its headers and body */
	size_t len;
	const struct msg *headers; /* the part's own header fields */
	const struct msg_ctype *ct;
	const char *body; /* raw, still transfer-encoded */
	size_t body_len;
	const struct msg_part *parent; /* NULL for the message */
};

/* Return 0 to go on, anything else to stop the walk (msg_walk returns it).
 */
typedef int (*msg_walk_fn)(const struct msg_part *part, void *arg);

#define MSG_WALK_MAX_DEPTH 32

/* Walks the MIME tree of buf[0..len). Nesting beyond MSG_WALK_MAX_DEPTH is
 * treated as a leaf. Returns 0, the callback's non-zero value, or -1 when
 * out of memory. */
int msg_walk(const char *buf, size_t len, msg_walk_fn fn, void *arg);

/* In the body of a multipart entity with the given boundary: the offset of
 * the closing delimiter line ("--boundary--", with the line end before it),
 * i.e. where a new last part may be inserted; -1 if there is none. */
long msg_multipart_close(const char *body, size_t len, const char *boundary);

/* Case-insensitive comparison of s[0..len) with the NUL-terminated word. */
int msg_word_eq(const char *s, size_t len, const char *word);

#endif
