/*
 * conf.c - the settings table, the fanmail.conf parser, and printing of the
 * effective configuration and of fanmail.conf(5).
 *
 * The file format follows Postfix's main.cf: `name = value` lines, `#`
 * comments on lines of their own, and a line that starts with white space
 * continues the one before. Unknown names and bad values are errors that
 * name the file, the line and the setting.
 */
#include "conf/conf.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define CONF_TYPE_ENUM_STR CONF_STR
#define CONF_TYPE_ENUM_LIST CONF_LIST
#define CONF_TYPE_ENUM_INT CONF_INT
#define CONF_TYPE_ENUM_SIZE CONF_SIZE
#define CONF_TYPE_ENUM_TIME CONF_TIME
#define CONF_TYPE_ENUM_BOOL CONF_BOOL
#define CONF_TYPE_ENUM_ENUM CONF_ENUM

const struct conf_def conf_defs[] = {
#define SETTING(n, t, d, doc) {#n, CONF_TYPE_ENUM_##t, d, doc, offsetof(struct conf, n), NULL},
#include "conf/settings.def"
#undef SETTING
};
const size_t conf_ndefs = sizeof(conf_defs) / sizeof(conf_defs[0]);

/* An ENUM's choices as text, in the enum's order: list_choices_NAME[]. The
 * enum is stored as an int; each one is checked to be int-sized. */
#define CONF_CHOICE_TEXT(n, choice) #choice,
#define CONF_LIST_CHOICES_ENUM(n, choices)                                                         \
	static const char *const list_choices_##n[] = {                                            \
	    CONF_EACH(CONF_CHOICE_TEXT, n, CONF_UNPAREN choices) NULL};                            \
	_Static_assert(sizeof(enum list_##n) == sizeof(int), "enum list_" #n " is not int-sized");
#define CONF_LIST_CHOICES_STR(n, choices)
#define CONF_LIST_CHOICES_LIST(n, choices)
#define CONF_LIST_CHOICES_INT(n, choices)
#define CONF_LIST_CHOICES_SIZE(n, choices)
#define CONF_LIST_CHOICES_TIME(n, choices)
#define CONF_LIST_CHOICES_BOOL(n, choices)
#define LIST_SETTING(n, t, d, choices, doc) CONF_LIST_CHOICES_##t(n, choices)
#include "conf/list_settings.def"
#undef LIST_SETTING

#define CONF_CHOICES_OF_ENUM(n) list_choices_##n
#define CONF_CHOICES_OF_STR(n) NULL
#define CONF_CHOICES_OF_LIST(n) NULL
#define CONF_CHOICES_OF_INT(n) NULL
#define CONF_CHOICES_OF_SIZE(n) NULL
#define CONF_CHOICES_OF_TIME(n) NULL
#define CONF_CHOICES_OF_BOOL(n) NULL

const struct conf_def conf_list_defs[] = {
#define LIST_SETTING(n, t, d, choices, doc)                                                        \
	{#n, CONF_TYPE_ENUM_##t, d, doc, offsetof(struct list_conf, n), CONF_CHOICES_OF_##t(n)},
#include "conf/list_settings.def"
#undef LIST_SETTING
};
const size_t conf_list_ndefs = sizeof(conf_list_defs) / sizeof(conf_list_defs[0]);

static void
errf(char *err, size_t len, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || len == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, len, fmt, ap);
	va_end(ap);
}

const char *
conf_default_path(const char *path)
{
	const char *env;

	if (path != NULL && *path != '\0')
		return path;
	env = getenv("FANMAIL_CONFIG");
	if (env != NULL && *env != '\0')
		return env;
	return FANMAIL_SYSCONFDIR "/fanmail/fanmail.conf";
}

static const struct conf_def *
find_def(const struct conf_def *defs, size_t n, const char *name, size_t namelen)
{
	for (size_t i = 0; i < n; i++)
		if (strlen(defs[i].name) == namelen && memcmp(defs[i].name, name, namelen) == 0)
			return &defs[i];
	return NULL;
}

int
conf_parse_int(const char *s, long long *out)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < 0)
		return -1;
	*out = v;
	return 0;
}

static int
parse_scaled(const char *s, long long *out, const char *units, const long long *mult)
{
	char *end;
	long long v;
	const char *u;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || end == s || v < 0)
		return -1;
	if (*end != '\0') {
		u = strchr(units, tolower((unsigned char)*end));
		if (u == NULL || end[1] != '\0')
			return -1;
		if (v > LLONG_MAX / mult[u - units])
			return -1;
		v *= mult[u - units];
	}
	*out = v;
	return 0;
}

int
conf_parse_size(const char *s, long long *out)
{
	static const long long mult[] = {1024LL, 1024LL * 1024, 1024LL * 1024 * 1024};

	return parse_scaled(s, out, "kmg", mult);
}

int
conf_parse_time(const char *s, long long *out)
{
	static const long long mult[] = {1, 60, 3600, 86400, 604800};

	return parse_scaled(s, out, "smhdw", mult);
}

int
conf_parse_bool(const char *s, int *out)
{
	if (strcasecmp(s, "yes") == 0 || strcasecmp(s, "true") == 0 || strcmp(s, "1") == 0 ||
	    strcasecmp(s, "on") == 0) {
		*out = 1;
		return 0;
	}
	if (strcasecmp(s, "no") == 0 || strcasecmp(s, "false") == 0 || strcmp(s, "0") == 0 ||
	    strcasecmp(s, "off") == 0) {
		*out = 0;
		return 0;
	}
	return -1;
}

/* The index of value among an ENUM's choices (any case), or -1. */
static int
choice_index(const struct conf_def *d, const char *value)
{
	for (int i = 0; d->choices != NULL && d->choices[i] != NULL; i++)
		if (strcasecmp(d->choices[i], value) == 0)
			return i;
	return -1;
}

/* "a|b|c" for an error message. */
static void
choices_text(const struct conf_def *d, char *buf, size_t len)
{
	size_t o = 0;

	buf[0] = '\0';
	for (int i = 0; d->choices != NULL && d->choices[i] != NULL && o < len; i++)
		o += (size_t)snprintf(buf + o, len - o, "%s%s", i ? "|" : "", d->choices[i]);
}

/* Checks value against d's type and writes the canonical text to canon. */
static int
check_value(const struct conf_def *d, const char *value, char *canon, size_t canonlen, char *err,
            size_t errlen)
{
	long long v;
	int b;

	switch (d->type) {
	case CONF_STR:
	case CONF_LIST:
		if (strchr(value, '\n') != NULL) {
			errf(err, errlen, "%s: value must be one line", d->name);
			return -1;
		}
		snprintf(canon, canonlen, "%s", value);
		return 0;
	case CONF_INT:
		if (conf_parse_int(value, &v) < 0) {
			errf(err, errlen, "%s: '%s' is not a non-negative whole number", d->name,
			     value);
			return -1;
		}
		break;
	case CONF_SIZE:
		if (conf_parse_size(value, &v) < 0) {
			errf(err, errlen,
			     "%s: '%s' is not a size (bytes, or a number with k, m or g)", d->name,
			     value);
			return -1;
		}
		break;
	case CONF_TIME:
		if (conf_parse_time(value, &v) < 0) {
			errf(err, errlen,
			     "%s: '%s' is not a time (seconds, or a number with s, m, h, d or w)",
			     d->name, value);
			return -1;
		}
		break;
	case CONF_BOOL:
		if (conf_parse_bool(value, &b) < 0) {
			errf(err, errlen, "%s: '%s' is not yes or no", d->name, value);
			return -1;
		}
		snprintf(canon, canonlen, "%s", b ? "yes" : "no");
		return 0;
	case CONF_ENUM:
		if (choice_index(d, value) < 0) {
			char choices[256];
			choices_text(d, choices, sizeof(choices));
			errf(err, errlen, "%s: '%s' is not one of %s", d->name, value, choices);
			return -1;
		}
		snprintf(canon, canonlen, "%s", value);
		for (char *p = canon; *p; p++)
			*p = (char)tolower((unsigned char)*p);
		return 0;
	}
	snprintf(canon, canonlen, "%lld", v);
	return 0;
}

/* --- hosts, addresses and ports ---
 *
 * Settings that name a host, an address or a port are checked beyond
 * their type, so that a typo stops the program at start (exit 78, the
 * file and line named) instead of binding another port (99999 is 34463
 * to the kernel) or greeting with a name that is no name. */

enum host_kind {
	HK_HOSTNAME,
	HK_PORT,
	HK_LISTEN,
	HK_DNS_SERVERS,
	HK_RELAY,
	HK_HTTP_LISTEN,
	HK_URL
};

static const struct {
	const char *name;
	enum host_kind kind;
} host_settings[] = {
    {"hostname", HK_HOSTNAME},       {"default_list_domain", HK_HOSTNAME},
    {"delivery_port", HK_PORT},      {"listen", HK_LISTEN},
    {"dns_servers", HK_DNS_SERVERS}, {"relay_host", HK_RELAY},
    {"http_listen", HK_HTTP_LISTEN}, {"http_base_url", HK_URL},
};

/* A host name of RFC 1123 labels: letters, digits and hyphens, 1 to 63
 * octets, no hyphen first or last; at most 253 octets in all. */
static int
is_hostname(const char *s, size_t len)
{
	size_t label = 0;

	if (len == 0 || len > 253)
		return 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (ch == '.') {
			if (label == 0 || s[i - 1] == '-')
				return 0;
			label = 0;
		} else if (isalnum(ch) || ch == '-') {
			if ((label == 0 && ch == '-') || ++label > 63)
				return 0;
		} else {
			return 0;
		}
	}
	return label > 0 && s[len - 1] != '-';
}

static int
is_ip(int af, const char *s, size_t len)
{
	char buf[64];
	unsigned char out[16];

	if (len == 0 || len >= sizeof(buf))
		return 0;
	memcpy(buf, s, len);
	buf[len] = '\0';
	return inet_pton(af, buf, out) == 1;
}

/* 1 to 65535, decimal digits only. */
static int
is_port(const char *s, size_t len)
{
	long v = 0;

	if (len == 0 || len > 5)
		return 0;
	for (size_t i = 0; i < len; i++) {
		if (!isdigit((unsigned char)s[i]))
			return 0;
		v = v * 10 + (s[i] - '0');
	}
	return v >= 1 && v <= 65535;
}

/* Checks one "host:port" item of kind k. Writes the reason to why. */
static int
check_hostport(enum host_kind k, const char *s, size_t len, char *why, size_t whylen)
{
	const char *host = s, *port = NULL, *colon;
	size_t hlen = len, plen = 0;
	int bracketed = 0;

	if (len > 0 && s[0] == '[') {
		const char *end = memchr(s, ']', len);

		if (end == NULL) {
			snprintf(why, whylen, "'[' without ']'");
			return -1;
		}
		host = s + 1;
		hlen = (size_t)(end - host);
		bracketed = 1;
		if (end + 1 < s + len) {
			if (end[1] != ':') {
				snprintf(why, whylen, "expected ':port' after ']'");
				return -1;
			}
			port = end + 2;
			plen = (size_t)(s + len - port);
		}
	} else if ((colon = memchr(s, ':', len)) != NULL) {
		if (memchr(colon + 1, ':', (size_t)(s + len - colon - 1)) != NULL) {
			/* Bare IPv6: only where no port is needed. */
			if (k == HK_DNS_SERVERS && is_ip(AF_INET6, s, len))
				return 0;
			snprintf(why, whylen, "an IPv6 address is written [address]:port");
			return -1;
		}
		hlen = (size_t)(colon - s);
		port = colon + 1;
		plen = (size_t)(s + len - port);
	}
	if (port == NULL && k == HK_LISTEN) {
		snprintf(why, whylen, "expected address:port or [address]:port");
		return -1;
	}
	if (port != NULL && !is_port(port, plen)) {
		snprintf(why, whylen, "port '%.*s' is not a number from 1 to 65535", (int)plen,
		         port);
		return -1;
	}
	if (bracketed) {
		if (!is_ip(AF_INET6, host, hlen) &&
		    !(k == HK_RELAY && is_ip(AF_INET, host, hlen))) {
			snprintf(why, whylen, "'%.*s' is not an IPv6 address", (int)hlen, host);
			return -1;
		}
		return 0;
	}
	if (k == HK_LISTEN && (hlen == 0 || (hlen == 1 && *host == '*')))
		return 0; /* every address */
	if (is_ip(AF_INET, host, hlen))
		return 0;
	if (k == HK_RELAY && is_hostname(host, hlen))
		return 0;
	snprintf(why, whylen,
	         k == HK_RELAY ? "'%.*s' is not a host name (RFC 1123) or an IP address"
	                       : "'%.*s' is not an IPv4 address or a [IPv6] address",
	         (int)hlen, host);
	return -1;
}

/* http_base_url: http:// or https://, a host (name, IPv4, or [IPv6])
 * with an optional port, an optional path; no query, fragment, user
 * name, space or control character, since links are made by appending
 * to it. */
static int
check_base_url(const char *s, char *why, size_t whylen)
{
	const char *host, *end;
	size_t n;

	if (strncmp(s, "http://", 7) == 0)
		host = s + 7;
	else if (strncmp(s, "https://", 8) == 0)
		host = s + 8;
	else {
		snprintf(why, whylen, "expected a URL starting with http:// or https://");
		return -1;
	}
	for (const char *p = s; *p; p++)
		if ((unsigned char)*p <= ' ' || (unsigned char)*p >= 0x7f ||
		    strchr("?#\\\"<>'`", *p)) {
			snprintf(why, whylen,
			         "a space, quote, control character, '?' or '#' in the URL");
			return -1;
		}
	end = host + strcspn(host, "/");
	n = (size_t)(end - host);
	if (memchr(host, '@', n) != NULL) {
		snprintf(why, whylen, "no user name belongs in the URL");
		return -1;
	}
	if (n == 0) {
		snprintf(why, whylen, "no host after the scheme");
		return -1;
	}
	if (host[0] != '[') {
		const char *colon = memchr(host, ':', n);
		size_t hl = colon ? (size_t)(colon - host) : n;

		if (!is_hostname(host, hl) && !is_ip(AF_INET, host, hl)) {
			snprintf(why, whylen, "'%.*s' is not a host name or an IP address", (int)hl,
			         host);
			return -1;
		}
		if (colon != NULL && !is_port(colon + 1, (size_t)(end - colon - 1))) {
			snprintf(why, whylen, "the port is not a number from 1 to 65535");
			return -1;
		}
		return 0;
	}
	return check_hostport(HK_RELAY, host, n, why, whylen);
}

/* Checks value when d is one of host_settings. */
static int
check_host(const struct conf_def *d, const char *value, char *err, size_t errlen)
{
	const char *cur = value, *item;
	char why[256];
	size_t len;
	size_t i;

	for (i = 0; i < sizeof(host_settings) / sizeof(host_settings[0]); i++)
		if (strcmp(host_settings[i].name, d->name) == 0)
			break;
	if (i == sizeof(host_settings) / sizeof(host_settings[0]))
		return 0;
	switch (host_settings[i].kind) {
	case HK_HOSTNAME:
		if (!is_hostname(value, strlen(value))) {
			errf(err, errlen,
			     "%s: '%s' is not a host name (RFC 1123: letters, digits and hyphens, "
			     "in labels joined by dots)",
			     d->name, value);
			return -1;
		}
		return 0;
	case HK_PORT: {
		char buf[32];

		snprintf(buf, sizeof(buf), "%s", value);
		if (!is_port(buf, strlen(buf))) {
			errf(err, errlen, "%s: '%s' is not a port (1 to 65535)", d->name, value);
			return -1;
		}
		return 0;
	}
	case HK_RELAY:
		if (*value != '\0' &&
		    check_hostport(HK_RELAY, value, strlen(value), why, sizeof(why)) < 0) {
			errf(err, errlen, "%s: '%s': %s", d->name, value, why);
			return -1;
		}
		return 0;
	case HK_HTTP_LISTEN:
		if (*value != '\0' &&
		    check_hostport(HK_LISTEN, value, strlen(value), why, sizeof(why)) < 0) {
			errf(err, errlen, "%s: '%s': %s", d->name, value, why);
			return -1;
		}
		return 0;
	case HK_URL:
		if (*value != '\0' && check_base_url(value, why, sizeof(why)) < 0) {
			errf(err, errlen, "%s: '%s': %s", d->name, value, why);
			return -1;
		}
		return 0;
	case HK_LISTEN:
	case HK_DNS_SERVERS:
		while ((item = conf_list_next(&cur, &len)) != NULL) {
			if (check_hostport(host_settings[i].kind, item, len, why, sizeof(why)) <
			    0) {
				errf(err, errlen, "%s: '%.*s': %s", d->name, (int)len, item, why);
				return -1;
			}
		}
		return 0;
	}
	return 0;
}

/* Stores value into d's field of the struct at base (struct conf or struct
 * list_conf). */
static int
store_at(char *base, const struct conf_def *d, const char *value, char *err, size_t errlen)
{
	char *field = base + d->offset;
	long long v = 0;
	int b = 0;
	char *dup;

	if (check_host(d, value, err, errlen) < 0)
		return -1;
	if (d->type == CONF_ENUM && d->choices != NULL) {
		int i = choice_index(d, value);
		if (i < 0) {
			char canon[8];
			return check_value(d, value, canon, sizeof(canon), err, errlen);
		}
		*(int *)field = i; /* the enum's value: its choice's index */
		return 0;
	}
	switch (d->type) {
	case CONF_STR:
	case CONF_LIST:
	case CONF_ENUM:
		if (strchr(value, '\n') != NULL) {
			errf(err, errlen, "%s: value must be one line", d->name);
			return -1;
		}
		dup = strdup(value);
		if (dup == NULL) {
			errf(err, errlen, "%s: out of memory", d->name);
			return -1;
		}
		free(*(char **)field);
		*(char **)field = dup;
		return 0;
	case CONF_BOOL:
		if (conf_parse_bool(value, &b) < 0) {
			errf(err, errlen, "%s: '%s' is not yes or no", d->name, value);
			return -1;
		}
		*(int *)field = b;
		return 0;
	case CONF_INT:
	case CONF_SIZE:
	case CONF_TIME: {
		char canon[32];
		if (check_value(d, value, canon, sizeof(canon), err, errlen) < 0)
			return -1;
		v = strtoll(canon, NULL, 10);
		*(long long *)field = v;
		return 0;
	}
	}
	return -1;
}

static int
store(struct conf *c, const struct conf_def *d, const char *value, char *err, size_t errlen)
{
	return store_at((char *)c, d, value, err, errlen);
}

void
conf_init(struct conf *c)
{
	memset(c, 0, sizeof(*c));
	for (size_t i = 0; i < conf_ndefs; i++)
		if (store(c, &conf_defs[i], conf_defs[i].def, NULL, 0) < 0)
			abort(); /* a bad default in settings.def: cannot happen */
}

void
conf_free(struct conf *c)
{
	for (size_t i = 0; i < conf_ndefs; i++) {
		const struct conf_def *d = &conf_defs[i];
		if (d->type == CONF_STR || d->type == CONF_LIST || d->type == CONF_ENUM) {
			char **p = (char **)((char *)c + d->offset);
			free(*p);
			*p = NULL;
		}
	}
	free(c->path);
	c->path = NULL;
}

int
conf_set(struct conf *c, const char *name, const char *value, char *err, size_t errlen)
{
	const struct conf_def *d = find_def(conf_defs, conf_ndefs, name, strlen(name));

	if (d == NULL) {
		errf(err, errlen, "%s: unknown setting", name);
		return -1;
	}
	return store(c, d, value, err, errlen);
}

static void
trim(const char **s, const char **e)
{
	while (*s < *e && isspace((unsigned char)**s))
		(*s)++;
	while (*e > *s && isspace((unsigned char)(*e)[-1]))
		(*e)--;
}

int
conf_parse(struct conf *c, const char *name, const char *text, size_t len, char *err, size_t errlen)
{
	const char *p = text, *end = text + len;
	unsigned line = 0;

	if (memchr(text, '\0', len) != NULL) {
		errf(err, errlen, "%s: contains a NUL byte", name);
		return -1;
	}
	while (p < end) {
		const char *ls = p, *le, *eq, *ks, *ke, *vs, *ve;
		unsigned first = ++line;
		char *value, msg[512];
		const struct conf_def *d;
		size_t vlen = 0;

		le = memchr(p, '\n', end - p);
		le = le ? le : end;
		p = le < end ? le + 1 : end;
		ks = ls;
		ke = le;
		trim(&ks, &ke);
		if (ks == ke || *ks == '#')
			continue;
		if (isspace((unsigned char)*ls)) {
			errf(err, errlen, "%s:%u: continuation line without a setting before it",
			     name, first);
			return -1;
		}
		eq = memchr(ls, '=', le - ls);
		if (eq == NULL) {
			errf(err, errlen, "%s:%u: expected 'name = value'", name, first);
			return -1;
		}
		ks = ls;
		ke = eq;
		trim(&ks, &ke);
		vs = eq + 1;
		ve = le;
		trim(&vs, &ve);
		d = find_def(conf_defs, conf_ndefs, ks, ke - ks);
		if (d == NULL) {
			errf(err, errlen, "%s:%u: %.*s: unknown setting", name, first,
			     (int)(ke - ks), ks);
			return -1;
		}
		/* Gather continuation lines: value parts joined by one space. */
		value = malloc((end - vs) + 1);
		if (value == NULL) {
			errf(err, errlen, "%s:%u: out of memory", name, first);
			return -1;
		}
		memcpy(value, vs, ve - vs);
		vlen = ve - vs;
		while (p < end && (*p == ' ' || *p == '\t')) {
			const char *cs = p, *ce;
			ce = memchr(p, '\n', end - p);
			ce = ce ? ce : end;
			p = ce < end ? ce + 1 : end;
			line++;
			trim(&cs, &ce);
			if (cs == ce || *cs == '#')
				continue;
			if (vlen > 0)
				value[vlen++] = ' ';
			memcpy(value + vlen, cs, ce - cs);
			vlen += ce - cs;
		}
		value[vlen] = '\0';
		if (store(c, d, value, msg, sizeof(msg)) < 0) {
			errf(err, errlen, "%s:%u: %s", name, first, msg);
			free(value);
			return -1;
		}
		free(value);
	}
	return 0;
}

int
conf_load(struct conf *c, const char *file, int must_exist, char *err, size_t errlen)
{
	FILE *f = fopen(file, "rb");
	char *buf = NULL;
	size_t len = 0, cap = 0, n;
	int rc;

	if (f == NULL) {
		if (errno == ENOENT && !must_exist)
			return 0;
		errf(err, errlen, "%s: cannot open: %s", file, strerror(errno));
		return -1;
	}
	for (;;) {
		if (len + 4096 > cap) {
			char *nb;
			if (cap > (64u << 20)) {
				errf(err, errlen, "%s: file too large", file);
				rc = -1;
				goto out;
			}
			cap = cap ? cap * 2 : 8192;
			nb = realloc(buf, cap);
			if (nb == NULL) {
				errf(err, errlen, "%s: out of memory", file);
				rc = -1;
				goto out;
			}
			buf = nb;
		}
		n = fread(buf + len, 1, cap - len, f);
		len += n;
		if (n == 0)
			break;
	}
	if (ferror(f)) {
		errf(err, errlen, "%s: read error: %s", file, strerror(errno));
		rc = -1;
		goto out;
	}
	rc = conf_parse(c, file, buf ? buf : "", len, err, errlen);
	if (rc == 0) {
		free(c->path);
		c->path = strdup(file);
	}
out:
	free(buf);
	fclose(f);
	return rc;
}

int
conf_get_text(const struct conf *c, const char *name, char *buf, size_t len)
{
	const struct conf_def *d = find_def(conf_defs, conf_ndefs, name, strlen(name));
	const char *field;

	if (d == NULL)
		return -1;
	field = (const char *)c + d->offset;
	switch (d->type) {
	case CONF_STR:
	case CONF_LIST:
	case CONF_ENUM:
		return snprintf(buf, len, "%s", *(char *const *)field);
	case CONF_BOOL:
		return snprintf(buf, len, "%s", *(const int *)field ? "yes" : "no");
	case CONF_INT:
	case CONF_SIZE:
	case CONF_TIME:
		return snprintf(buf, len, "%lld", *(const long long *)field);
	}
	return -1;
}

int
conf_is_default(const struct conf *c, const struct conf_def *d)
{
	char cur[4096], def[4096], err[256];

	if (conf_get_text(c, d->name, cur, sizeof(cur)) < 0)
		return 0;
	if (d->type == CONF_STR || d->type == CONF_LIST || d->type == CONF_ENUM)
		return strcmp(cur, d->def) == 0;
	if (check_value(d, d->def, def, sizeof(def), err, sizeof(err)) < 0)
		return 0;
	return strcmp(cur, def) == 0;
}

void
conf_print(const struct conf *c, FILE *out, int changed_only)
{
	char buf[4096];

	for (size_t i = 0; i < conf_ndefs; i++) {
		if (changed_only && conf_is_default(c, &conf_defs[i]))
			continue;
		conf_get_text(c, conf_defs[i].name, buf, sizeof(buf));
		fprintf(out, "%s = %s\n", conf_defs[i].name, buf);
	}
}

static void
man_escape(FILE *out, const char *s)
{
	for (; *s; s++) {
		if (*s == '\\')
			fputs("\\e", out);
		else if (*s == '-')
			fputs("\\-", out);
		else if (*s == '`')
			fputc('\'', out);
		else
			fputc(*s, out);
	}
}

static const char *
type_name(enum conf_type t)
{
	switch (t) {
	case CONF_STR:
		return "string";
	case CONF_INT:
		return "number";
	case CONF_SIZE:
		return "size";
	case CONF_TIME:
		return "time";
	case CONF_BOOL:
		return "yes/no";
	case CONF_LIST:
		return "list";
	case CONF_ENUM:
		return "choice";
	}
	return "?";
}

void
conf_print_man(FILE *out)
{
	for (size_t i = 0; i < conf_ndefs; i++) {
		const struct conf_def *d = &conf_defs[i];
		fprintf(out, ".TP\n.B %s\n(%s; default: ", d->name, type_name(d->type));
		if (*d->def)
			man_escape(out, d->def);
		else
			fputs("empty", out);
		fputs(")\n", out);
		man_escape(out, d->doc);
		fputc('\n', out);
	}
}

const struct conf_def *
conf_list_def(const char *name)
{
	return find_def(conf_list_defs, conf_list_ndefs, name, strlen(name));
}

/* A per-list time that may be empty to mean "never by the clock"
 * (digest_interval: only by hand or when full) is stored as 0. Other
 * times keep refusing "": an empty timeout is more likely a mistake. */
static const char *
list_empty_time(const struct conf_def *d, const char *value)
{
	if (d->type == CONF_TIME && value[0] == '\0' && strcmp(d->name, "digest_interval") == 0)
		return "0";
	return value;
}

int
conf_list_check(const char *name, const char *value, char *canon, size_t canonlen, char *err,
                size_t errlen)
{
	const struct conf_def *d = conf_list_def(name);

	if (d == NULL) {
		errf(err, errlen, "%s: unknown list setting", name);
		return -1;
	}
	return check_value(d, list_empty_time(d, value), canon, canonlen, err, errlen);
}

/* The defaults, parsed once: the engine loads a list's settings for every
 * post, and parsing every default each time cost more than the rest of
 * the load. Read-only once made. */
static struct list_conf list_defaults;
static pthread_once_t list_defaults_once = PTHREAD_ONCE_INIT;

static void
make_list_defaults(void)
{
	for (size_t i = 0; i < conf_list_ndefs; i++)
		if (store_at((char *)&list_defaults, &conf_list_defs[i], conf_list_defs[i].def,
		             NULL, 0) < 0)
			abort(); /* a bad default in list_settings.def, or out of memory */
}

void
conf_list_init(struct list_conf *lc)
{
	pthread_once(&list_defaults_once, make_list_defaults);
	*lc = list_defaults;
	for (size_t i = 0; i < conf_list_ndefs; i++) {
		const struct conf_def *d = &conf_list_defs[i];
		if (d->type == CONF_STR || d->type == CONF_LIST) {
			char **p = (char **)((char *)lc + d->offset);
			if (*p != NULL && (*p = strdup(*p)) == NULL)
				abort(); /* out of memory */
		}
	}
}

int
conf_list_set(struct list_conf *lc, const char *name, const char *value, char *err, size_t errlen)
{
	const struct conf_def *d = conf_list_def(name);

	if (d == NULL) {
		errf(err, errlen, "%s: unknown list setting", name);
		return -1;
	}
	/* store_at() checks before it writes: a bad value leaves the field. */
	return store_at((char *)lc, d, list_empty_time(d, value), err, errlen);
}

void
conf_list_free(struct list_conf *lc)
{
	for (size_t i = 0; i < conf_list_ndefs; i++) {
		const struct conf_def *d = &conf_list_defs[i];
		if (d->type == CONF_STR || d->type == CONF_LIST) {
			char **p = (char **)((char *)lc + d->offset);
			free(*p);
			*p = NULL;
		}
	}
}

const char *
conf_list_choice(const char *name, int value)
{
	const struct conf_def *d = conf_list_def(name);

	if (d == NULL || d->choices == NULL || value < 0)
		return "";
	for (int i = 0; d->choices[i] != NULL; i++)
		if (i == value)
			return d->choices[i];
	return "";
}

const char *
conf_list_next(const char **cursor, size_t *len)
{
	const char *p = *cursor, *s;

	while (*p == ' ' || *p == '\t' || *p == ',')
		p++;
	if (*p == '\0') {
		*cursor = p;
		return NULL;
	}
	s = p;
	while (*p && *p != ' ' && *p != '\t' && *p != ',')
		p++;
	*len = (size_t)(p - s);
	*cursor = p;
	return s;
}

void
conf_http_base_url(const struct conf *c, char *buf, size_t len)
{
	const char *base = c->http_base_url;
	size_t n;

	if (*base != '\0') {
		n = strlen(base);
		while (n > 0 && base[n - 1] == '/')
			n--;
		snprintf(buf, len, "%.*s", (int)n, base);
		return;
	}
	if (*c->http_listen == '\0') {
		snprintf(buf, len, "%s", "");
		return;
	}
	/* A wildcard address is no place to send a browser: the host name. */
	if (strncmp(c->http_listen, "*:", 2) == 0 || c->http_listen[0] == ':')
		snprintf(buf, len, "%s://%s%s", *c->http_tls_cert ? "https" : "http", c->hostname,
		         strchr(c->http_listen, ':'));
	else
		snprintf(buf, len, "%s://%s", *c->http_tls_cert ? "https" : "http", c->http_listen);
}
