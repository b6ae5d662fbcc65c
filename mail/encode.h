/*
 * encode.h - the encodings fanmail writes, one copy each for every module
 * that writes mail (message building, rewriting posts, downgrading for a
 * 7-bit receiver, header folding): quoted-printable and base64 bodies (RFC
 * 2045) and RFC 2047 encoded-words. Reading them back is msg.h's job.
 *
 * Everything appends to a struct strbuf (mail/strbuf.h): the caller checks
 * its oom flag once at the end.
 */
#ifndef FANMAIL_ENCODE_H
#define FANMAIL_ENCODE_H

#include <stddef.h>

#include "mail/strbuf.h"

/* Quoted-printable (RFC 2045 section 6.7) of in[0..len): line ends (CRLF,
 * LF or CR) are kept as CRLF hard breaks, other lines cut with soft breaks
 * so that none passes 76 octets, white space before a line end (or at the
 * end of in) and every 8-bit, control or "=" octet encoded. Nothing is
 * added after the last line: in without a final line end gives none. */
void encode_qp(struct strbuf *b, const char *in, size_t len);

/* Base64 (RFC 2045 section 6.8) of in[0..len). line 0: one run, no line
 * ends; else a CRLF after every `line` characters (a multiple of 4) and
 * after the last line. */
void encode_base64(struct strbuf *b, const void *in, size_t len, size_t line);

/* How encode_words() writes: Q or B (or 0, whichever is shorter for the
 * whole text), with ENCODE_EW_UPPER the label "=?UTF-8?B?" (upper case)
 * instead of "=?utf-8?b?". */
#define ENCODE_EW_Q 0x1
#define ENCODE_EW_B 0x2
#define ENCODE_EW_UPPER 0x4

/* Appends utf8[0..len) as RFC 2047 encoded-words (charset UTF-8), always,
 * whatever the text: the first word at most `first` octets long (75 at
 * the most, and always holding at least one character), the later ones
 * at most 74 (a line that starts with a folding space stays within 75),
 * each written after sep. A UTF-8 sequence is never split across two
 * words (RFC 2047 section 5); a malformed octet counts as one character. */
void encode_words(struct strbuf *b, const char *utf8, size_t len, int how, size_t first,
                  const char *sep);

/* UTF-8 text as an unstructured header value: returned as is when it is
 * printable ASCII (and holds no "=?"), else as "=?utf-8?q?...?=" or
 * "=?utf-8?b?...?=" words (whichever is shorter), each at most 75 octets,
 * joined by eol + " " so that the field is folded. first_room is how many
 * columns the first line has left after "Name: " (below 20: the first word
 * may take a whole 75). malloc'd; NULL when out of memory. */
char *encode_text(const char *utf8, size_t len, const char *eol, size_t first_room);

#endif
