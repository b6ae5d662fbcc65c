/*
 * fold.h - folding a header field that fanmail writes or rewrites, so
 * that no line it sends is longer than 998 octets (RFC 5322 section 2.1.1)
 * and lines stay within 78 wherever white space allows.
 *
 * fold_field() takes one whole field, "Name: value", without its final
 * line end; folds already in it (a line end before a space or tab) are
 * unfolded first. It returns a new NUL-terminated string (the caller frees
 * it; NULL when out of memory) with CRLF between the lines and after the
 * last one. A fold goes before the white space that precedes a word that
 * would take the line past 78 octets; never right after the field name.
 *
 * A word that could not fit in 998 octets even on a line of its own is
 * handled by the kind of field:
 *   FOLD_TEXT  unstructured text (Subject): the word is written as RFC 2047
 *              encoded-words (UTF-8, Q), 75 octets at most each, which a
 *              reader joins back into the same word;
 *   FOLD_URLS  RFC 2369 List-* fields, where white space inside the angle
 *              brackets is ignored: the word is split anywhere;
 *   FOLD_STRUCTURED  anything else: kept whole (the callers write only
 *              bounded words there: addresses, quoted names).
 */
#ifndef FANMAIL_FOLD_H
#define FANMAIL_FOLD_H

#include <stddef.h>

#define FOLD_SOFT 78
#define FOLD_HARD 998

enum fold_kind { FOLD_STRUCTURED, FOLD_TEXT, FOLD_URLS };

char *fold_field(const char *field, size_t len, enum fold_kind kind);

/* Turns every control character of s (CR, LF, TAB, NUL-free C0 and DEL)
 * into a space, in place, and returns s (NULL stays NULL). For header
 * text after RFC 2047 decoding (=?utf-8?q?a=0D=0Ab?= decodes to a CR LF),
 * before it is written into a header or the text of a message fanmail
 * builds: it can then neither start a header field nor forge lines. */
char *fold_flatten(char *s);

#endif
