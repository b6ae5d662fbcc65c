/*
 * smtp_out.h - the SMTP client: one connection to one mail exchanger at a
 * time, then any number of transactions over it.
 *
 * smtp_out_open() tries the given addresses in order (the next one on a
 * connect failure, a refused greeting or a failed EHLO/HELO), greets with
 * EHLO (HELO when EHLO is not understood), upgrades with STARTTLS when the
 * server offers it and tls is on (falling back to plain text on the same
 * address when the handshake fails), authenticates with AUTH PLAIN when
 * credentials are given (only over TLS), and calls back with a ready
 * session or with why none could be had.
 *
 * smtp_out_send() runs one transaction: MAIL, RCPTs and DATA in one write
 * with PIPELINING (one at a time without), SIZE declared and respected,
 * SMTPUTF8 asked for when an address or the message needs it (recipients
 * that need it at a server without it fail with 553 5.6.7), BODY=8BITMIME
 * for an 8-bit message, and a body that the caller prepared with
 * smtp_out_prepare_body() in a form the server takes (smtp_out_ext()). Every recipient gets a
 * result: its RCPT reply when refused, else the reply to the end of DATA; code 0 when the
 * connection broke before the answer (deferred: 4.4.2), or when the server broke the protocol (a
 * line that is not a reply, a multi-line reply whose lines have different codes: the connection is
 * dropped). A 452 to a RCPT after another RCPT of the transaction was accepted (RFC
 * 5321 4.5.3.1.10, "too many recipients") sets the result's again: that recipient was not tried and
 * goes in the next transaction.
 *
 * Sessions are owned by the caller: smtp_out_close() sends QUIT and frees.
 * Callbacks never run before the call that starts them returns.
 */
#ifndef FANMAIL_SMTP_OUT_H
#define FANMAIL_SMTP_OUT_H

#include <stddef.h>
#include <sys/socket.h>

#include <openssl/ssl.h>

struct event_base;
struct smtp_sess;

struct smtp_out_cfg {
	const char *helo;      /* our name in EHLO */
	SSL_CTX *ssl;          /* NULL: never STARTTLS */
	const char *auth_user; /* NULL: no AUTH */
	const char *auth_pass;
	int connect_timeout; /* seconds */
	int reply_timeout;   /* seconds */
};

struct smtp_target {
	const char *host; /* name, for logs and SNI */
	struct sockaddr_storage ss;
	socklen_t len;
};

/* s is NULL on failure: why says what happened to the last address tried,
 * code is its SMTP reply code (0 for a network or DNS error). */
typedef void (*smtp_open_cb)(void *arg, struct smtp_sess *s, int code, const char *why);

void smtp_out_open(struct event_base *base, const struct smtp_out_cfg *cfg,
                   const struct smtp_target *targets, int n, smtp_open_cb cb, void *arg);

struct smtp_result {
	int code;       /* 0: no answer (connection lost) */
	int again;      /* 452 after an accepted RCPT: send in a new transaction */
	int ours;       /* decided here, not said by the server (no SMTPUTF8, SIZE) */
	char text[512]; /* the reply as one line, or what happened */
};

struct smtp_txn {
	const char *from; /* "" for the null sender */
	int nrcpt;
	const char *const *rcpts;
	const char *body; /* prepared: dot-stuffed, ends with ".\r\n" */
	size_t body_len;
	size_t size;                 /* message size for SIZE= */
	int body_8bit;               /* BODY=8BITMIME (when offered) */
	int smtputf8;                /* SMTPUTF8: the message has UTF-8 headers */
	int refuse_code;             /* not 0: every recipient gets refuse, */
	char refuse[400];            /* and nothing is sent */
	struct smtp_result *results; /* nrcpt of them, filled in */
};

/* ok: the session can carry another transaction. */
typedef void (*smtp_txn_cb)(void *arg, struct smtp_sess *s, struct smtp_txn *t, int ok);

void smtp_out_send(struct smtp_sess *s, struct smtp_txn *t, smtp_txn_cb cb, void *arg);

/* While a session waits unused, a close from the server (or a time-out of
 * idle seconds) calls cb; the caller then closes the session. */
void smtp_out_idle(struct smtp_sess *s, int idle, void (*cb)(void *arg, struct smtp_sess *s),
                   void *arg);

void smtp_out_close(struct smtp_sess *s);
/* Frees s at once, without QUIT (the loop is gone). */
void smtp_out_free(struct smtp_sess *s);
/* Closes the socket now, without QUIT, and frees s as soon as no callback
 * of ours runs on it (safe from inside s's own callbacks). */
void smtp_out_abort(struct smtp_sess *s);

/* "mx.example.net[192.0.2.1]:25" */
const char *smtp_out_peer(const struct smtp_sess *s);
/* "TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)", or NULL. */
const char *smtp_out_tls(const struct smtp_sess *s);
/* The extensions the server offered in its last EHLO reply (SMTP_EXT_*). */
int smtp_out_ext(const struct smtp_sess *s);
/* How many transactions the session has carried. */
int smtp_out_uses(const struct smtp_sess *s);
/* The address connected to (for connection reuse). */
const struct sockaddr_storage *smtp_out_addr(const struct smtp_sess *s);

/* --- pure helpers, exposed for the unit tests --- */

/* The body as it goes after DATA: line ends made CRLF (a bare CR or LF
 * becomes CRLF), lines starting with "." doubled, a last CRLF added when
 * missing, and the ".\r\n" terminator. malloc'd; NULL when out of memory. */
char *smtp_out_prepare_body(const unsigned char *in, size_t len, size_t *outlen);

/* One reply line: *code (200..599) and *last (no '-' after the code).
 * Returns -1 when the line is not a reply line. */
int smtp_out_parse_line(const char *line, size_t len, int *code, int *last);

/* EHLO keywords seen in one reply line (without the code). */
#define SMTP_EXT_PIPELINING 0x01
#define SMTP_EXT_SIZE 0x02
#define SMTP_EXT_SMTPUTF8 0x04
#define SMTP_EXT_STARTTLS 0x08
#define SMTP_EXT_AUTH_PLAIN 0x10
#define SMTP_EXT_8BITMIME 0x20
int smtp_out_parse_ehlo(const char *text, long long *size_limit);

#endif
