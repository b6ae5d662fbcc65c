/*
 * http.h - fanmaild's HTTP face (libevent's evhttp, on the daemon's own
 * loop): /healthz, /metrics, the confirmation pages (/confirm/TOKEN),
 * the unsubscribe and subscribe forms (/unsubscribe/LIST, /subscribe/LIST)
 * and one-click unsubscribe (RFC 8058, /unsubscribe/LIST/TOKEN).
 *
 * The loop parses, routes, limits (rate per client IP, connections,
 * requests in flight) and writes pages; everything that reads or writes
 * the store runs on the `http` worker thread with its own connection,
 * through server/workq.c, and a request is answered only when the
 * worker's call has returned (after the commit, for a POST).
 *
 * http_bind() runs before privileges are dropped (the port may be
 * privileged, the key readable by root only); http_start() from main.c's
 * table of subsystems; http_shutdown() stops accepting; http_busy()
 * counts requests still in flight; http_free() after the loop.
 */
#ifndef FANMAIL_HTTP_H
#define FANMAIL_HTTP_H

#include <stddef.h>

struct daemon;
struct http;

/* Binds http_listen (when set) into d->http_fds and loads the HTTPS
 * certificate (when set) into d->http_tls. Returns 0, or -1 with err. */
int http_bind(struct daemon *d, char *err, size_t errlen);

/* NULL with err on failure; a handle that does nothing when http_listen
 * is empty. */
struct http *http_start(struct daemon *d, char *err, size_t errlen);
void http_shutdown(struct http *h);
size_t http_busy(const struct http *h);
void http_free(struct http *h);

#endif
