/*
 * http_parse.c - the pure parts of the HTTP face's request handling (see
 * http_parse.h).
 */
#include "server/http_parse.h"
#include "mail/utf8.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int
hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = (unsigned char)tolower(c);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

int
http_pct_decode(const char *s, size_t len, int plus, char *out, size_t outlen)
{
	size_t o = 0;

	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '%') {
			int hi, lo;

			if (len - i < 3)
				return -1;
			hi = hexval((unsigned char)s[i + 1]);
			lo = hexval((unsigned char)s[i + 2]);
			if (hi < 0 || lo < 0)
				return -1;
			c = (unsigned char)(hi << 4 | lo);
			i += 2;
		} else if (c == '+' && plus) {
			c = ' ';
		}
		if (c == '\0')
			return -1;
		if (o + 1 >= outlen)
			return -2;
		out[o++] = (char)c;
	}
	if (outlen == 0)
		return -2;
	out[o] = '\0';
	return (int)o;
}

static int
utf8_ok(const char *s)
{
	size_t n = strlen(s), k;

	for (size_t i = 0; i < n; i += k)
		if ((k = utf8_seq_len(s + i, n - i)) == 0)
			return 0;
	return 1;
}

static int
token_ok(const char *t)
{
	size_t n = strlen(t);

	if (n == 0 || n > ONECLICK_TOKEN_MAX)
		return 0;
	return strspn(t, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_") == n;
}

static int
list_ok(const char *l)
{
	size_t n = strlen(l);

	if (n < 3 || n > HTTP_LIST_MAX || strchr(l, '@') == NULL || !utf8_ok(l))
		return 0;
	for (const char *p = l; *p; p++)
		if ((unsigned char)*p <= ' ' || *p == 0x7f || *p == '/')
			return 0;
	return 1;
}

static enum metric_route
route_of(const char *seg0, int nseg)
{
	if (nseg == 0)
		return ROUTE_STATIC;
	if (strcmp(seg0, "healthz") == 0 && nseg == 1)
		return ROUTE_HEALTHZ;
	if (strcmp(seg0, "metrics") == 0 && nseg == 1)
		return ROUTE_METRICS;
	if (strcmp(seg0, "confirm") == 0 && nseg == 2)
		return ROUTE_CONFIRM;
	if (strcmp(seg0, "unsubscribe") == 0 && nseg == 2)
		return ROUTE_UNSUBSCRIBE;
	if (strcmp(seg0, "unsubscribe") == 0 && nseg == 3)
		return ROUTE_ONECLICK;
	if (strcmp(seg0, "subscribe") == 0 && nseg == 2)
		return ROUTE_SUBSCRIBE;
	return ROUTE_OTHER;
}

/* A segment decodes into this much at most; longer ones are no list or
 * token of ours (their arguments are then not ok). */
#define SEG_MAX (ONECLICK_TOKEN_MAX + 1)

int
http_parse_target(const char *prefix, const char *path, struct http_target *t)
{
	char seg[HTTP_MAX_SEGMENTS][SEG_MAX + 1];
	int toolong[HTTP_MAX_SEGMENTS] = {0};
	size_t plen = prefix ? strlen(prefix) : 0;
	int n = 0, extra = 0;

	memset(t, 0, sizeof(*t));
	t->route = ROUTE_OTHER;
	if (path == NULL || *path == '\0')
		path = "/";
	if (plen > 0 && strncmp(path, prefix, plen) == 0 &&
	    (path[plen] == '/' || path[plen] == '\0'))
		path = path[plen] == '\0' ? "/" : path + plen;
	if (*path != '/')
		return -1;
	path++;
	/* Every segment is decoded (a bad escape anywhere is a 400), also
	 * those past the last one a route could have. */
	while (*path != '\0') {
		const char *e = strchr(path, '/');
		size_t len = e ? (size_t)(e - path) : strlen(path);
		char spare[SEG_MAX + 1], *dst = n < HTTP_MAX_SEGMENTS ? seg[n] : spare;
		int rc = http_pct_decode(path, len, 0, dst, SEG_MAX + 1);

		if (rc == -1)
			return -1;
		if (n < HTTP_MAX_SEGMENTS) {
			if (rc == -2) {
				toolong[n] = 1;
				seg[n][0] = '\0';
			}
			n++;
		} else {
			extra = 1;
		}
		if (e == NULL)
			break;
		path = e + 1;
		if (*path == '\0')
			extra = 1; /* a trailing '/': no route ends so */
	}
	if (extra || (n > 0 && toolong[0]))
		return 0;
	t->route = route_of(n > 0 ? seg[0] : "", n);
	t->args_ok = 1;
	switch (t->route) {
	case ROUTE_CONFIRM:
		t->args_ok = !toolong[1] && token_ok(seg[1]);
		if (t->args_ok)
			snprintf(t->token, sizeof(t->token), "%s", seg[1]);
		break;
	case ROUTE_ONECLICK:
		t->args_ok = !toolong[1] && !toolong[2] && list_ok(seg[1]) && token_ok(seg[2]);
		if (t->args_ok) {
			snprintf(t->list, sizeof(t->list), "%s", seg[1]);
			snprintf(t->token, sizeof(t->token), "%s", seg[2]);
		}
		break;
	case ROUTE_UNSUBSCRIBE:
	case ROUTE_SUBSCRIBE:
		t->args_ok = !toolong[1] && list_ok(seg[1]);
		if (t->args_ok)
			snprintf(t->list, sizeof(t->list), "%s", seg[1]);
		break;
	default:
		break;
	}
	return 0;
}

int
http_parse_request_target(const char *prefix, const char *raw, const char *uri_path,
                          struct http_target *t)
{
	char *path;
	int rc;

	if (raw == NULL || raw[0] != '/')
		return http_parse_target(prefix, uri_path, t);
	if ((path = strndup(raw, strcspn(raw, "?#"))) == NULL) {
		memset(t, 0, sizeof(*t));
		t->route = ROUTE_OTHER;
		return -1;
	}
	rc = http_parse_target(prefix, path, t);
	free(path);
	return rc;
}

int
http_base_prefix(const char *base_url, char *out, size_t outlen)
{
	const char *p;
	size_t n;

	if (outlen == 0)
		return -1;
	out[0] = '\0';
	if ((p = strstr(base_url, "://")) == NULL || (p = strchr(p + 3, '/')) == NULL)
		return 0;
	n = strlen(p);
	while (n > 0 && p[n - 1] == '/')
		n--;
	if (n >= outlen)
		return -1;
	memcpy(out, p, n);
	out[n] = '\0';
	return 0;
}

/* -------- form bodies -------- */

/* ctype's media type is type (ignoring case, parameters after ';'). */
static int
media_is(const char *ctype, const char *type)
{
	size_t n = strlen(type);

	if (strncasecmp(ctype, type, n) != 0)
		return 0;
	ctype += n;
	while (*ctype == ' ' || *ctype == '\t')
		ctype++;
	return *ctype == '\0' || *ctype == ';';
}

/* Stores the one value of the field: -2 when there was one already. */
static int
found_value(int *found, const char *v, size_t vlen, int decode, char *out, size_t outlen)
{
	if (*found)
		return -2;
	*found = 1;
	if (decode)
		return http_pct_decode(v, vlen, 1, out, outlen) < 0 ? -2 : 0;
	if (memchr(v, '\0', vlen) != NULL || vlen >= outlen)
		return -2;
	memcpy(out, v, vlen);
	out[vlen] = '\0';
	return 0;
}

/* Whether s[0..len) decodes: every '%' starts an escape, none is %00. */
static int
pct_valid(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (s[i] != '%')
			continue;
		if (len - i < 3 || hexval((unsigned char)s[i + 1]) < 0 ||
		    hexval((unsigned char)s[i + 2]) < 0 || (s[i + 1] == '0' && s[i + 2] == '0'))
			return 0;
		i += 2;
	}
	return 1;
}

static int
form_urlencoded(const char *body, size_t len, const char *name, char *out, size_t outlen)
{
	const char *p = body, *end = body + len;
	int found = 0;

	if (memchr(body, '\0', len) != NULL)
		return -2;
	while (p < end) {
		const char *amp = memchr(p, '&', (size_t)(end - p));
		const char *pe = amp ? amp : end, *eq = memchr(p, '=', (size_t)(pe - p));
		const char *ke = eq ? eq : pe, *v = eq ? eq + 1 : pe;
		char key[128];

		/* A bad escape anywhere, in any field, and it is no form. */
		if (!pct_valid(p, (size_t)(pe - p)))
			return -2;
		if (pe > p && http_pct_decode(p, (size_t)(ke - p), 1, key, sizeof(key)) >= 0 &&
		    strcasecmp(key, name) == 0 &&
		    found_value(&found, v, (size_t)(pe - v), 1, out, outlen) < 0)
			return -2;
		p = pe + (amp != NULL);
	}
	return found ? 0 : -1;
}

/* The value of parameter pname in a header's "; a=b; c="d"" list at p,
 * into out. Returns 0, -1 when absent, -2 when malformed or too long. */
static int
header_param(const char *p, const char *pend, const char *pname, char *out, size_t outlen)
{
	size_t pn = strlen(pname);

	while (p < pend) {
		const char *semi = memchr(p, ';', (size_t)(pend - p)), *k, *v;
		size_t o = 0;

		if (semi == NULL)
			return -1;
		p = semi + 1;
		while (p < pend && (*p == ' ' || *p == '\t'))
			p++;
		k = p;
		while (p < pend && *p != '=' && *p != ';' && *p != ' ' && *p != '\t')
			p++;
		if ((size_t)(p - k) != pn || strncasecmp(k, pname, pn) != 0) {
			/* skip this parameter's value, quoted or not */
			while (p < pend && *p != ';' && *p != '"')
				p++;
			if (p < pend && *p == '"') {
				for (p++; p < pend && *p != '"'; p++)
					if (*p == '\\' && p + 1 < pend)
						p++;
				if (p >= pend)
					return -2;
				p++;
			}
			continue;
		}
		while (p < pend && (*p == ' ' || *p == '\t'))
			p++;
		if (p >= pend || *p != '=')
			return -2;
		p++;
		while (p < pend && (*p == ' ' || *p == '\t'))
			p++;
		if (p < pend && *p == '"') {
			for (v = p + 1; v < pend && *v != '"'; v++) {
				if (*v == '\\' && v + 1 < pend)
					v++;
				if (o + 1 >= outlen)
					return -2;
				out[o++] = *v;
			}
			if (v >= pend)
				return -2;
		} else {
			for (v = p; v < pend && *v != ';' && *v != ' ' && *v != '\t'; v++) {
				if (o + 1 >= outlen)
					return -2;
				out[o++] = *v;
			}
		}
		out[o] = '\0';
		return 0;
	}
	return -1;
}

/* memmem for the delimiter "\r\n--BOUNDARY" from p. */
static const char *
find_delim(const char *p, const char *end, const char *delim, size_t dlen)
{
	if (p >= end)
		return NULL;
	return memmem(p, (size_t)(end - p), delim, dlen);
}

static int
form_multipart(const char *ctype, const char *body, size_t len, const char *name, char *out,
               size_t outlen)
{
	char boundary[72], delim[80], pname[128];
	const char *p, *end = body + len, *ct_end = ctype + strlen(ctype);
	size_t blen, dlen;
	int found = 0, rc;

	/* RFC 2046: 1 to 70 characters, no trailing space. */
	if (header_param(ctype, ct_end, "boundary", boundary, sizeof(boundary)) < 0 ||
	    (blen = strlen(boundary)) == 0 || blen > 70 || boundary[blen - 1] == ' ' ||
	    strchr(boundary, '\r') != NULL || strchr(boundary, '\n') != NULL)
		return -2;
	dlen = (size_t)snprintf(delim, sizeof(delim), "\r\n--%s", boundary);
	/* The first delimiter starts the body (no CRLF before it), or
	 * follows a preamble. */
	if (len >= dlen - 2 && memcmp(body, delim + 2, dlen - 2) == 0)
		p = body + dlen - 2;
	else if ((p = find_delim(body, end, delim, dlen)) != NULL)
		p += dlen;
	else
		return -2;
	for (;;) {
		const char *hend, *next, *h;

		/* after a delimiter: "--" ends the body, else padding and CRLF */
		if (end - p >= 2 && p[0] == '-' && p[1] == '-')
			break;
		while (p < end && (*p == ' ' || *p == '\t'))
			p++;
		if (end - p < 2 || p[0] != '\r' || p[1] != '\n')
			return -2;
		p += 2;
		/* the part's headers end at an empty line (or at once) */
		if (end - p >= 2 && p[0] == '\r' && p[1] == '\n') {
			hend = p;
		} else {
			hend = memmem(p, (size_t)(end - p), "\r\n\r\n", 4);
			if (hend == NULL)
				return -2;
			hend += 2;
		}
		next = find_delim(hend + 2, end, delim, dlen);
		if (next == NULL)
			return -2; /* not closed */
		for (h = p; h < hend;) {
			const char *eol = memmem(h, (size_t)(hend - h), "\r\n", 2);

			if (eol == NULL)
				return -2;
			if ((size_t)(eol - h) > 20 &&
			    strncasecmp(h, "Content-Disposition:", 20) == 0) {
				const char *v = h + 20;

				while (v < eol && (*v == ' ' || *v == '\t'))
					v++;
				if ((size_t)(eol - v) >= 9 && strncasecmp(v, "form-data", 9) == 0 &&
				    (rc = header_param(v, eol, "name", pname, sizeof(pname))) !=
				        -1) {
					if (rc < 0)
						return -2;
					if (strcmp(pname, name) == 0 &&
					    found_value(&found, hend + 2,
					                (size_t)(next - (hend + 2)), 0, out,
					                outlen) < 0)
						return -2;
				}
			}
			h = eol + 2;
		}
		p = next + dlen;
	}
	return found ? 0 : -1;
}

int
http_form_field(const char *ctype, const char *body, size_t len, const char *name, char *out,
                size_t outlen)
{
	if (outlen == 0)
		return -2;
	out[0] = '\0';
	if (ctype == NULL || media_is(ctype, "application/x-www-form-urlencoded"))
		return form_urlencoded(body, len, name, out, outlen);
	if (media_is(ctype, "multipart/form-data"))
		return form_multipart(ctype, body, len, name, out, outlen);
	return -2;
}

/* -------- the rate table -------- */

size_t
http_rate_key(const char *ip, char out[HTTP_RATE_KEY_MAX])
{
	char host[INET6_ADDRSTRLEN + 1];
	const char *pct = strchr(ip, '%');
	size_t n = pct ? (size_t)(pct - ip) : strlen(ip);
	unsigned char a6[16];

	if (n < sizeof(host)) {
		memcpy(host, ip, n);
		host[n] = '\0';
		if (strchr(host, ':') != NULL && inet_pton(AF_INET6, host, a6) == 1) {
			static const unsigned char mapped[12] = {0, 0, 0, 0, 0,    0,
			                                         0, 0, 0, 0, 0xff, 0xff};

			if (memcmp(a6, mapped, 12) == 0) /* ::ffff:a.b.c.d counts as a.b.c.d */
				return (size_t)snprintf(out, HTTP_RATE_KEY_MAX, "%u.%u.%u.%u",
				                        a6[12], a6[13], a6[14], a6[15]);
			memset(a6 + 8, 0, 8);
			inet_ntop(AF_INET6, a6, out, HTTP_RATE_KEY_MAX);
			return strlen(out);
		}
	}
	snprintf(out, HTTP_RATE_KEY_MAX, "%s", ip);
	return strlen(out);
}

struct rate_slot {
	char key[HTTP_RATE_KEY_MAX]; /* "" when free */
	long long count;
};

struct http_rate {
	struct rate_slot slot[HTTP_RATE_SLOTS];
	size_t used;
	time_t window;
	int started;
};

struct http_rate *
http_rate_new(void)
{
	return calloc(1, sizeof(struct http_rate));
}

void
http_rate_free(struct http_rate *r)
{
	free(r);
}

static uint64_t
str_hash(const char *s)
{
	uint64_t x = 1469598103934665603ULL;

	for (; *s; s++)
		x = (x ^ (unsigned char)*s) * 1099511628211ULL;
	return x;
}

int
http_rate_hit(struct http_rate *r, const char *ip, long long limit, time_t now)
{
	char key[HTTP_RATE_KEY_MAX];
	size_t i;
	time_t left;

	if (limit <= 0)
		return 0;
	if (!r->started || now - r->window >= 60 || now < r->window) {
		memset(r->slot, 0, sizeof(r->slot));
		r->used = 0;
		r->window = now;
		r->started = 1;
	}
	http_rate_key(ip, key);
	i = (size_t)(str_hash(key) & (HTTP_RATE_SLOTS - 1));
	while (r->slot[i].key[0] != '\0' && strcmp(r->slot[i].key, key) != 0)
		i = (i + 1) & (HTTP_RATE_SLOTS - 1);
	if (r->slot[i].key[0] == '\0') {
		if (r->used >= HTTP_RATE_SLOTS * 3 / 4)
			return 0;
		memcpy(r->slot[i].key, key, sizeof(key));
		r->used++;
	}
	if (++r->slot[i].count <= limit)
		return 0;
	left = 60 - (now - r->window);
	return left > 0 ? (int)left : 1;
}
