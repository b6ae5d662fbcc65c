/*
 * http_parse.h - the pure parts of the HTTP face's request handling:
 * percent-decoding, the request path into a route and its arguments (the
 * list and the token), a field of a form body (urlencoded or multipart),
 * the key a client's address is counted under and the per-minute count
 * table itself. No libevent and no store: server/http.c feeds them what
 * evhttp parsed, tests/unit/test_http_parse.c and tests/fuzz/fuzz_http.c
 * feed them anything.
 *
 * Every string these functions return is NUL-terminated and holds no NUL
 * of its own: a %00, or a NUL octet in a form body, makes the input
 * malformed rather than cutting the value short.
 */
#ifndef FANMAIL_HTTP_PARSE_H
#define FANMAIL_HTTP_PARSE_H

#include <stddef.h>
#include <time.h>

#include "lists/oneclick.h"
#include "server/metrics.h"

#define HTTP_MAX_SEGMENTS 4 /* path segments after the prefix */
#define HTTP_LIST_MAX 321   /* a list address: 64 + '@' + 255 + 1 spare */

/* Decodes s[0..len) into out (outlen octets with the NUL): %XX (either
 * case) is that octet, and with plus set '+' is a space (form bodies).
 * Returns the decoded length; -1 when a '%' is not followed by two hex
 * digits or the result would hold a NUL; -2 when it does not fit. */
int http_pct_decode(const char *s, size_t len, int plus, char *out, size_t outlen);

struct http_target {
	enum metric_route route; /* ROUTE_OTHER: no such page (404) */
	int args_ok;             /* the list and token have their form; else 400 */
	char list[HTTP_LIST_MAX + 1];
	char token[ONECLICK_TOKEN_MAX + 1];
};

/* Routes path, the request URI's path as it came (still percent-encoded,
 * NULL or "" meaning "/"), under prefix (http_base_url's path without a
 * trailing '/', or ""; a path outside it is routed as it is). Segments are
 * split at '/' before decoding, so %2F never separates. Returns 0 with t
 * filled, or -1 when the path is malformed (no leading '/', a bad or NUL
 * %-escape: 400). A list must be UTF-8 with an '@', no control octet,
 * space or '/'; a token letters, digits, '-' and '_'. */
int http_parse_target(const char *prefix, const char *path, struct http_target *t);

/* The same for a request target as it came on the request line (raw)
 * and the path evhttp's URI parser took from it (uri_path): an
 * origin-form target ("/a/b?q") is routed by its own path, up to '?' or
 * '#', because evhttp reads "//x/y" as the host x and the path /y; an
 * absolute-form one ("http://host/a/b") by uri_path. */
int http_parse_request_target(const char *prefix, const char *raw, const char *uri_path,
                              struct http_target *t);

/* http_base_url's path ("/lists" for https://x/lists/), without trailing
 * '/', into out; "" when there is none. Returns -1 when it does not fit. */
int http_base_prefix(const char *base_url, char *out, size_t outlen);

/* The value of field name in body[0..len) of Content-Type ctype (NULL:
 * urlencoded), decoded, into out. application/x-www-form-urlencoded
 * (names compared ignoring case, as evhttp did) or multipart/form-data
 * with its boundary parameter (RFC 7578: the part whose Content-
 * Disposition is form-data with that name). Returns 0; -1 when the field
 * is absent; -2 when the body is not such a form, is malformed (a bad
 * escape, a NUL, no boundary, an unterminated part), names the field
 * twice, or its value does not fit. */
int http_form_field(const char *ctype, const char *body, size_t len, const char *name, char *out,
                    size_t outlen);

/* The key a client address is counted under: an IPv6 address by its /64
 * (one subscriber's network holds that many addresses), an IPv4 or
 * IPv4-mapped one as itself; the zone of a link-local address dropped.
 * Returns the key's length (it always fits 48 octets); an address that
 * does not parse keys as itself, cut to fit. */
#define HTTP_RATE_KEY_MAX 48
size_t http_rate_key(const char *ip, char out[HTTP_RATE_KEY_MAX]);

/* Requests per client key per minute, in a table of fixed size. */
#define HTTP_RATE_SLOTS 16384
struct http_rate;
struct http_rate *http_rate_new(void);
void http_rate_free(struct http_rate *r);
/* Counts a request from ip at time now (seconds, monotonic). Returns 0,
 * or the seconds until the minute ends (at least 1) when ip's key is past
 * limit (limit <= 0: no limit). When 3/4 of the table is taken, new keys
 * pass uncounted until the minute ends: memory stays bounded. */
int http_rate_hit(struct http_rate *r, const char *ip, long long limit, time_t now);

#endif
