/*
 * smtp_data.h - the byte-level reader for the text after DATA.
 *
 * Only CRLF.CRLF ends a message; a line that starts with '.' loses that dot
 * (RFC 5321 §4.5.2); a CR not followed by LF, or an LF not preceded by CR,
 * anywhere stops the reader with SMTP_DATA_BARE_CR / SMTP_DATA_BARE_LF, so
 * that no SMTP smuggling variant (LF.LF, CR.CR, LF.CRLF, CRLF.LF, ...) can
 * end a message or begin another. The caller answers 521 5.5.2 and closes.
 *
 * The reader keeps going after a message grows past max_size or a line
 * past SMTP_DATA_LINE_MAX octets: it stops passing bytes on, sets too_big
 * or line_too_long, and finds the real end, so that the rest of the message
 * is never taken for commands. A NUL octet is handled the same way
 * (has_nul): the message is refused (554 5.6.0), never stored or relayed,
 * since receivers treat NUL differently (C strings end there, dot-stuffing
 * can miss a "\0." line). It also counts Received header fields in the
 * header section, for the mail-loop check.
 *
 * Pure code over bytes: no I/O, no allocation; tests feed it directly.
 */
#ifndef FANMAIL_SMTP_DATA_H
#define FANMAIL_SMTP_DATA_H

#include <stddef.h>

#define SMTP_DATA_LINE_MAX 1000 /* octets of a line including its CRLF */

enum smtp_data_status {
	SMTP_DATA_MORE,    /* all input used; the message goes on */
	SMTP_DATA_END,     /* CRLF.CRLF seen; *used counts through its LF */
	SMTP_DATA_BARE_CR, /* a CR not followed by LF */
	SMTP_DATA_BARE_LF, /* an LF not preceded by CR */
};

struct smtp_data {
	int state;
	size_t line_len; /* octets of the current line so far */
	size_t hdr_pos;  /* progress matching "received:" on this line */
	size_t size;     /* message octets passed on (unstuffed) */
	size_t max_size;
	int in_header;
	int received; /* Received: fields in the header section */
	int too_big;
	int line_too_long;
	int has_nul; /* a NUL octet was seen; nothing more is passed on */
};

/* Passes n message octets at p on; p is valid only during the call. */
typedef void (*smtp_data_emit_fn)(void *arg, const char *p, size_t n);

void smtp_data_init(struct smtp_data *d, size_t max_size);

/* Reads in[0..len). *used receives how many octets were taken: all of them
 * for SMTP_DATA_MORE, through the final LF for SMTP_DATA_END, through the
 * offending octet for the BARE results. */
enum smtp_data_status smtp_data_feed(struct smtp_data *d, const char *in, size_t len, size_t *used,
                                     smtp_data_emit_fn emit, void *arg);

#endif
