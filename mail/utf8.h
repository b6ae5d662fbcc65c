/*
 * utf8.h - octet-level text checks: is it ASCII, how long is the
 * well-formed UTF-8 sequence here; and one code point written as UTF-8.
 * One copy for the whole tree (addresses, message building, DSNs, bounce
 * parsing, the posting path, SMTP, the CLI's JSON).
 */
#ifndef FANMAIL_UTF8_H
#define FANMAIL_UTF8_H

#include <stddef.h>

/* 1 when the C string s has no octet >= 0x80. */
int utf8_is_ascii(const char *s);
/* The same for s[0..n). */
int utf8_is_ascii_n(const char *s, size_t n);

/* Length of the well-formed UTF-8 sequence at s (1 for an ASCII octet, up
 * to 4), or 0 when it is not one: a stray continuation octet, a sequence
 * cut off by avail, an overlong form, a surrogate or a code point past
 * U+10FFFF (RFC 3629). avail must be at least 1. */
size_t utf8_seq_len(const void *s, size_t avail);

/* Writes code point cp as UTF-8 into out (room for 4 octets). Returns the
 * length (1 to 4), or 0 when cp is a surrogate or past U+10FFFF. */
size_t utf8_encode(unsigned long cp, char out[4]);

#endif
