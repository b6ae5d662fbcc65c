/*
 * strbuf.h - a growable, always NUL-terminated string buffer.
 *
 * Start from `struct strbuf b = {0};` and append. When memory runs out the
 * buffer remembers it (oom), drops every later append, and strbuf_done()
 * frees what it held and returns NULL: callers check once at the end
 * instead of after every append. The buffer owns p until strbuf_done()
 * hands it to the caller or strbuf_free() releases it.
 */
#ifndef FANMAIL_STRBUF_H
#define FANMAIL_STRBUF_H

#include <stddef.h>

struct strbuf {
	char *p; /* NUL-terminated once anything was added; NULL before */
	size_t len, cap;
	int oom; /* an append failed: the contents are incomplete */
};

/* Appends n octets of s (which may hold NULs). */
void strbuf_add(struct strbuf *b, const void *s, size_t n);
/* Appends the C string s. */
void strbuf_str(struct strbuf *b, const char *s);
/* Appends printf-formatted text, whatever its length. */
void strbuf_printf(struct strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Cuts the text back to its first len octets (an undo of what was
 * appended since b->len was len); a longer len changes nothing. */
void strbuf_truncate(struct strbuf *b, size_t len);

/* The text, owned by the caller from now on: "" (malloc'd) when nothing was
 * added, NULL when out of memory (the buffer is then freed). */
char *strbuf_done(struct strbuf *b);
/* Releases the buffer and makes it empty again. */
void strbuf_free(struct strbuf *b);

#endif
