/*
 * verp.c - VERP addresses: encoding, tolerant decoding, and which posts of
 * a list are sent with VERP.
 */
#include "lists/verp.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "mail/addr.h"

#define VERP_PATH_MAX 254
#define VERP_TAG "-bounces"

int
verp_mode_parse(const char *s, enum verp_mode *mode)
{
	if (strcasecmp(s, "never") == 0)
		*mode = VERP_NEVER;
	else if (strcasecmp(s, "always") == 0)
		*mode = VERP_ALWAYS;
	else if (strcasecmp(s, "every") == 0)
		*mode = VERP_EVERY;
	else
		return -1;
	return 0;
}

int
verp_post_is_verp(enum verp_mode mode, long long every, long long k)
{
	switch (mode) {
	case VERP_NEVER:
		return 0;
	case VERP_ALWAYS:
		return 1;
	case VERP_EVERY:
		if (every <= 0)
			return 0;
		if (every == 1)
			return 1;
		return k > 0 && k % every == 0;
	}
	return 0;
}

/* RFC 5322 atext. */
static int
is_atext(unsigned char c)
{
	return isalnum(c) || strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL || c >= 0x80;
}

static int
is_dot_atom(const char *s, size_t n)
{
	if (n == 0 || s[0] == '.' || s[n - 1] == '.')
		return 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '.') {
			if (s[i + 1] == '.')
				return 0;
		} else if (!is_atext((unsigned char)s[i])) {
			return 0;
		}
	}
	return 1;
}

/* Copies s[0..n) without quotes and with backslash escapes resolved.
 * Returns the length or -1 when it does not fit. */
static int
unquote(const char *s, size_t n, char *buf, size_t len)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (c == '"')
			continue;
		if (c == '\\' && i + 1 < n)
			c = s[++i];
		if (o + 1 >= len)
			return -1;
		buf[o++] = c;
	}
	buf[o] = '\0';
	return (int)o;
}

/* Writes local (unquoted text) as a local part: bare when it is a dot-atom,
 * else quoted with '"' and '\' escaped. Returns the length or -1. */
static int
put_local(const char *local, size_t n, char *buf, size_t len)
{
	size_t o = 0;

	if (is_dot_atom(local, n)) {
		if (n + 1 > len)
			return -1;
		memcpy(buf, local, n);
		buf[n] = '\0';
		return (int)n;
	}
	if (len < 3)
		return -1;
	buf[o++] = '"';
	for (size_t i = 0; i < n; i++) {
		if (local[i] == '"' || local[i] == '\\') {
			if (o + 1 >= len)
				return -1;
			buf[o++] = '\\';
		}
		if (o + 2 >= len)
			return -1;
		buf[o++] = local[i];
	}
	buf[o++] = '"';
	buf[o] = '\0';
	return (int)o;
}

static int
valid_domain(const char *d, size_t n)
{
	if (n == 0 || n > 255)
		return 0;
	if (d[0] == '[')
		return n > 2 && d[n - 1] == ']';
	if (d[0] == '.' || d[0] == '-')
		return 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)d[i];
		if (!isalnum(c) && c != '-' && c != '.' && c < 0x80)
			return 0;
		if (c == '.' && i + 1 < n && d[i + 1] == '.')
			return 0;
	}
	return 1;
}

int
verp_encode(const char *list_local, const char *list_domain, const char *rcpt, char *buf,
            size_t len)
{
	char local[VERP_PATH_MAX + 1], raw[2 * VERP_PATH_MAX + 8], enc[2 * VERP_PATH_MAX + 8];
	const char *at = strrchr(rcpt, '@');
	int ln, rn, en, n;

	if (at == NULL || at == rcpt || at[1] == '\0' || !valid_domain(at + 1, strlen(at + 1)))
		return -1;
	ln = unquote(rcpt, (size_t)(at - rcpt), local, sizeof(local));
	if (ln <= 0)
		return -1;
	rn = snprintf(raw, sizeof(raw), "%s%s+%s=%s", list_local, VERP_TAG, local, at + 1);
	if (rn < 0 || (size_t)rn >= sizeof(raw))
		return -1;
	en = put_local(raw, (size_t)rn, enc, sizeof(enc));
	if (en < 0)
		return -1;
	n = snprintf(buf, len, "%s@%s", enc, list_domain);
	if (n < 0 || (size_t)n >= len || n > VERP_PATH_MAX)
		return -1;
	return n;
}

int
verp_decode(const char *ext, size_t extlen, char *buf, size_t len)
{
	char plain[2 * VERP_PATH_MAX + 8], local[2 * VERP_PATH_MAX + 8];
	char *eq;
	size_t dn;
	int pn, ln, n;

	pn = unquote(ext, extlen, plain, sizeof(plain));
	if (pn <= 0 || (eq = strrchr(plain, '=')) == NULL || eq == plain)
		return -1;
	*eq = '\0';
	dn = strlen(eq + 1);
	/* An MTA may leave a trailing dot or space on the domain. */
	while (dn > 0 && (eq[dn] == '.' || eq[dn] == ' '))
		eq[dn--] = '\0';
	if (!valid_domain(eq + 1, dn))
		return -1;
	for (char *p = eq + 1; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	ln = put_local(plain, strlen(plain), local, sizeof(local));
	if (ln < 0)
		return -1;
	n = snprintf(buf, len, "%s@%s", local, eq + 1);
	if (n < 0 || (size_t)n >= len)
		return -1;
	return n;
}

int
verp_decode_address(const char *addr, const char *list_local, const char *list_domain, char *buf,
                    size_t len)
{
	char plain[2 * VERP_PATH_MAX + 8];
	const char *s = addr, *e = addr + strlen(addr), *at;
	size_t ll = strlen(list_local), tl = strlen(VERP_TAG), dl;
	int pn;

	while (s < e && (*s == ' ' || *s == '<'))
		s++;
	while (e > s && (e[-1] == ' ' || e[-1] == '>'))
		e--;
	at = NULL;
	for (const char *p = e; p > s; p--)
		if (p[-1] == '@') {
			at = p - 1;
			break;
		}
	if (at == NULL)
		return -1;
	dl = (size_t)(e - at - 1);
	if (dl > 0 && at[dl] == '.')
		dl--;
	if (dl != strlen(list_domain) || strncasecmp(at + 1, list_domain, dl) != 0)
		return -1;
	pn = unquote(s, (size_t)(at - s), plain, sizeof(plain));
	if (pn < 0 || (size_t)pn < ll + tl + 2)
		return -1;
	if (strncasecmp(plain, list_local, ll) != 0 || strncasecmp(plain + ll, VERP_TAG, tl) != 0)
		return -1;
	if (plain[ll + tl] != '+' && plain[ll + tl] != '-')
		return -1;
	return verp_decode(plain + ll + tl + 1, strlen(plain + ll + tl + 1), buf, len);
}

void
verp_sender(const char *from, const char *rcpt, char *out, size_t len)
{
	static const char suffix[] = "-bounces";
	const char *at = strrchr(from, '@'), *rat = strrchr(rcpt, '@');
	size_t ll = at ? (size_t)(at - from) : 0, sl = sizeof(suffix) - 1;
	char list_local[ADDR_LOCAL_MAX + 16];

	if (at == NULL || rat == NULL) {
		snprintf(out, len, "%s", from);
		return;
	}
	if (ll > sl && ll - sl < sizeof(list_local) && strncasecmp(at - sl, suffix, sl) == 0) {
		snprintf(list_local, sizeof(list_local), "%.*s", (int)(ll - sl), from);
		if (verp_encode(list_local, at + 1, rcpt, out, len) >= 0)
			return;
	}
	snprintf(out, len, "%.*s+%.*s=%s%s", (int)ll, from, (int)(rat - rcpt), rcpt, rat + 1, at);
}
