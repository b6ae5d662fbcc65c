/*
 * tls.h - the server side of STARTTLS: an OpenSSL context made from the
 * configured certificate and key, and per-session SSL objects that
 * smtp_in hands to libevent's bufferevent_openssl.
 *
 * tls_ctx_new() loads once at start-up (before privileges are dropped, as
 * the key is often readable by root only). TLS 1.2 or newer, no
 * renegotiation, no compression.
 */
#ifndef FANMAIL_TLS_H
#define FANMAIL_TLS_H

#include <stddef.h>

struct ssl_ctx_st;
struct ssl_st;

/* NULL with a message in err when the files cannot be used. */
struct ssl_ctx_st *tls_ctx_new(const char *cert_file, const char *key_file, char *err,
                               size_t errlen);
void tls_ctx_free(struct ssl_ctx_st *ctx);

/* A new server-side SSL for one session; NULL on failure. */
struct ssl_st *tls_session_new(struct ssl_ctx_st *ctx);

/* "TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)", as Postfix
 * writes it in Received headers and logs. */
void tls_describe(struct ssl_st *ssl, char *buf, size_t len);

#endif
