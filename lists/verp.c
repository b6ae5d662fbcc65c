/*
 * verp.c - VERP addresses: encoding, tolerant decoding, which posts of a
 * list are sent with VERP, and the signatures that tell the list's own
 * VERP addresses and report tags from forged ones (see verp.h).
 */
#include "lists/verp.h"

#include <ctype.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "db/secrets.h"

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

/* The member's local part of rcpt, unquoted, into local; returns the
 * domain after the '@', or NULL when rcpt cannot be carried in a VERP
 * address. */
static const char *
split_rcpt(const char *rcpt, char local[VERP_PATH_MAX + 1])
{
	const char *at = strrchr(rcpt, '@');

	if (at == NULL || at == rcpt || at[1] == '\0' || !valid_domain(at + 1, strlen(at + 1)))
		return NULL;
	if (unquote(rcpt, (size_t)(at - rcpt), local, VERP_PATH_MAX + 1) <= 0)
		return NULL;
	return at + 1;
}

/* "LIST+fm+LOCAL=DOMAIN[+SIG]@LISTDOMAIN" into buf, the local part quoted
 * when it is not a dot-atom; its length, or -1 when it is longer than
 * VERP_PATH_MAX or len. */
static int
put_path(const char *list_local, const char *list_domain, const char *local, const char *domain,
         const char *sig, char *buf, size_t len)
{
	char raw[3 * VERP_PATH_MAX], enc[3 * VERP_PATH_MAX];
	int rn, n;

	rn = snprintf(raw, sizeof(raw), "%s%s+%s=%s%s%s", list_local, VERP_TAG, local, domain,
	              sig ? "+" : "", sig ? sig : "");
	if (rn < 0 || (size_t)rn >= sizeof(raw))
		return -1;
	if (put_local(raw, (size_t)rn, enc, sizeof(enc)) < 0)
		return -1;
	n = snprintf(buf, len, "%s@%s", enc, list_domain);
	if (n < 0 || (size_t)n >= len || n > VERP_PATH_MAX)
		return -1;
	return n;
}

int
verp_encode(const char *list_local, const char *list_domain, const char *rcpt, char *buf,
            size_t len)
{
	char local[VERP_PATH_MAX + 1];
	const char *domain = split_rcpt(rcpt, local);

	if (domain == NULL)
		return -1;
	return put_path(list_local, list_domain, local, domain, NULL, buf, len);
}

int
verp_decode(const char *ext, size_t extlen, char *buf, size_t len)
{
	char plain[2 * VERP_PATH_MAX + 8], local[2 * VERP_PATH_MAX + 8];
	char *eq, *p;
	size_t dn;
	int pn, ln, n;

	pn = unquote(ext, extlen, plain, sizeof(plain));
	if (pn <= 0 || (eq = strrchr(plain, '=')) == NULL || eq == plain)
		return -1;
	*eq = '\0';
	/* A signature follows the domain after a '+' (verp_check()): no
	 * domain has one. */
	if ((p = strchr(eq + 1, '+')) != NULL)
		*p = '\0';
	dn = strlen(eq + 1);
	/* An MTA may leave a trailing dot or space on the domain. */
	while (dn > 0 && (eq[dn] == '.' || eq[dn] == ' '))
		eq[dn--] = '\0';
	if (!valid_domain(eq + 1, dn))
		return -1;
	for (p = eq + 1; *p; p++)
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

/* ---------- signatures ---------- */

int
verp_key_load(struct db *db, struct verp_key *k)
{
	int n = db_secret_get(db, "report", k->k, sizeof(k->k));

	if (n < 32)
		return -1;
	k->n = (size_t)n;
	return 0;
}

/* SIG over the parts (each lower-cased, ASCII letters only, then a
 * newline): the first 60 bits of HMAC-SHA256, in lower-case base32. */
static void
sign(const struct verp_key *k, const char *const *parts, int nparts, char sig[VERP_SIG_LEN + 1])
{
	static const char b32[] = "abcdefghijklmnopqrstuvwxyz234567";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	char buf[1024];
	size_t o = 0;
	uint64_t bits = 0;

	for (int i = 0; i < nparts; i++)
		for (const char *p = parts[i];; p++) {
			if (o + 1 >= sizeof(buf))
				break;
			if (*p == '\0') {
				buf[o++] = '\n';
				break;
			}
			buf[o++] = (char)((*p >= 'A' && *p <= 'Z') ? *p - 'A' + 'a' : *p);
		}
	HMAC(EVP_sha256(), k->k, (int)k->n, (const unsigned char *)buf, o, md, &mdlen);
	for (int i = 0; i < 8; i++)
		bits = bits << 8 | md[i];
	for (int i = 0; i < VERP_SIG_LEN; i++)
		sig[i] = b32[(bits >> (64 - 5 * (i + 1))) & 31];
	sig[VERP_SIG_LEN] = '\0';
}

/* A constant-time, case-insensitive comparison of two signatures. */
static int
sig_eq(const char *a, const char *b, size_t n)
{
	unsigned d = 0;

	for (size_t i = 0; i < n; i++)
		d |= (unsigned)(tolower((unsigned char)a[i]) ^ tolower((unsigned char)b[i]));
	return d == 0;
}

static void
verp_sig(const struct verp_key *k, const char *list_local, const char *list_domain,
         const char *member, char sig[VERP_SIG_LEN + 1])
{
	const char *parts[] = {"fanmail-verp", list_local, list_domain, member};

	sign(k, parts, 4, sig);
}

int
verp_encode_signed(const struct verp_key *k, const char *list_local, const char *list_domain,
                   const char *rcpt, char *buf, size_t len)
{
	char ext[2 * VERP_PATH_MAX + 8], member[2 * VERP_PATH_MAX + 8], local[VERP_PATH_MAX + 1];
	char sig[VERP_SIG_LEN + 1];
	const char *domain = split_rcpt(rcpt, local);
	int n;

	if (domain == NULL)
		return -1;
	/* Signed as the decoder will read it back. */
	n = snprintf(ext, sizeof(ext), "%s=%s", local, domain);
	if (n < 0 || (size_t)n >= sizeof(ext) ||
	    verp_decode(ext, (size_t)n, member, sizeof(member)) < 0)
		return -1;
	verp_sig(k, list_local, list_domain, member, sig);
	return put_path(list_local, list_domain, local, domain, sig, buf, len);
}

void
verp_sender(const struct verp_key *k, const char *from, const char *rcpt, char *out, size_t len)
{
	const char *at = strrchr(from, '@'), *rat = strrchr(rcpt, '@');
	size_t ll = at ? (size_t)(at - from) : 0, sl = strlen(VERP_TAG);
	char list_local[VERP_PATH_MAX + 1];

	if (at == NULL || rat == NULL) {
		snprintf(out, len, "%s", from);
		return;
	}
	if (ll > sl && ll - sl < sizeof(list_local) && strncasecmp(at - sl, VERP_TAG, sl) == 0) {
		snprintf(list_local, sizeof(list_local), "%.*s", (int)(ll - sl), from);
		/* Too long to sign: the list's own address, never an unsigned
		 * VERP address whose bounces would all be ignored. */
		if (verp_encode_signed(k, list_local, at + 1, rcpt, out, len) < 0)
			snprintf(out, len, "%s", from);
		return;
	}
	snprintf(out, len, "%.*s+%.*s=%s%s", (int)ll, from, (int)(rat - rcpt), rcpt, rat + 1, at);
}

int
verp_check(const struct verp_key *k, const char *list_local, const char *list_domain,
           const char *ext, size_t extlen, char *buf, size_t len)
{
	char plain[2 * VERP_PATH_MAX + 8], sig[VERP_SIG_LEN + 1];
	const char *eq, *plus;
	int n;

	if ((n = verp_decode(ext, extlen, buf, len)) < 0)
		return -1;
	if (unquote(ext, extlen, plain, sizeof(plain)) < 0 || (eq = strrchr(plain, '=')) == NULL ||
	    (plus = strchr(eq, '+')) == NULL)
		return 0;
	verp_sig(k, list_local, list_domain, buf, sig);
	return strlen(plus + 1) == VERP_SIG_LEN && sig_eq(plus + 1, sig, VERP_SIG_LEN) ? n : 0;
}

static int
is_id_char(int c)
{
	return isalnum(c) || c == '-' || c == '_';
}

int
verp_tag_make(const struct verp_key *k, const char *list_local, const char *list_domain,
              const char *id, int64_t now, int verp, char *buf, size_t len)
{
	char t[32], sig[VERP_SIG_LEN + 1];
	const char *flag = verp ? "v" : "b";
	const char *parts[] = {"fanmail-tag", list_local, list_domain, id, t, flag};
	int n;

	for (const char *p = id; *p; p++)
		if (!is_id_char((unsigned char)*p))
			return -1;
	snprintf(t, sizeof(t), "%" PRId64, now);
	sign(k, parts, 6, sig);
	n = snprintf(buf, len, "%s.%s.%s.%s", id, t, flag, sig);
	return n < 0 || (size_t)n >= len ? -1 : n;
}

/* What the token s[0..n) (ID.TIME.FLAG.SIG) is for the list. */
static enum verp_tag_found
tag_ok(const struct verp_key *k, const char *list_local, const char *list_domain, const char *s,
       size_t n, int64_t now)
{
	char id[64], t[32], flag[2], sig[VERP_SIG_LEN + 1];
	const char *parts[] = {"fanmail-tag", list_local, list_domain, id, t, flag};
	size_t i = 0, a;
	char *end;
	long long when;

	while (i < n && is_id_char((unsigned char)s[i]))
		i++;
	if (i == 0 || i >= sizeof(id) || i >= n || s[i] != '.')
		return VERP_TAG_NONE;
	snprintf(id, sizeof(id), "%.*s", (int)i, s);
	a = ++i;
	while (i < n && isdigit((unsigned char)s[i]))
		i++;
	if (i == a || i - a >= sizeof(t) || i >= n || s[i] != '.')
		return VERP_TAG_NONE;
	snprintf(t, sizeof(t), "%.*s", (int)(i - a), s + a);
	when = strtoll(t, &end, 10);
	if (when > now + 86400 || now - when > VERP_TAG_MAX_AGE)
		return VERP_TAG_NONE;
	i++;
	if (i + 2 > n || (s[i] != 'v' && s[i] != 'b') || s[i + 1] != '.')
		return VERP_TAG_NONE;
	flag[0] = s[i];
	flag[1] = '\0';
	i += 2;
	if (n - i != VERP_SIG_LEN)
		return VERP_TAG_NONE;
	sign(k, parts, 6, sig);
	if (!sig_eq(s + i, sig, VERP_SIG_LEN))
		return VERP_TAG_NONE;
	return flag[0] == 'v' ? VERP_TAG_VERPED : VERP_TAG_BATCHED;
}

/* Case-insensitive search for needle (k octets) in hay[from..n). */
static const char *
find_ci(const char *hay, size_t n, size_t from, const char *needle, size_t k)
{
	for (size_t i = from; k > 0 && i + k <= n; i++)
		if (strncasecmp(hay + i, needle, k) == 0)
			return hay + i;
	return NULL;
}

enum verp_tag_found
verp_tag_find(const struct verp_key *k, const char *list_local, const char *list_domain,
              const char *msg, size_t len, int64_t now)
{
	static const char name[] = VERP_TAG_HEADER ":";
	size_t nl = sizeof(name) - 1, pos = 0;
	const char *p;

	/* Anywhere, not only in a header block: bounces quote the returned
	 * message in many ways. Only a right signature counts. */
	while ((p = find_ci(msg, len, pos, name, nl)) != NULL) {
		size_t i = (size_t)(p - msg) + nl, e;
		enum verp_tag_found f;
		while (i < len && (msg[i] == ' ' || msg[i] == '\t'))
			i++;
		e = i;
		while (e < len && (is_id_char((unsigned char)msg[e]) || msg[e] == '.'))
			e++;
		if ((f = tag_ok(k, list_local, list_domain, msg + i, e - i, now)) != VERP_TAG_NONE)
			return f;
		pos = (size_t)(p - msg) + 1;
	}
	return VERP_TAG_NONE;
}

int
verp_find_signed(const struct verp_key *k, const char *list_local, const char *list_domain,
                 const char *msg, size_t len, char *buf, size_t buflen)
{
	char needle[VERP_PATH_MAX + 16], addr[2 * VERP_PATH_MAX + 8], ext[2 * VERP_PATH_MAX + 8];
	size_t nl, pos = 0;
	const char *p;

	nl = (size_t)snprintf(needle, sizeof(needle), "%s%s+", list_local, VERP_TAG);
	if (nl >= sizeof(needle))
		return 0;
	while ((p = find_ci(msg, len, pos, needle, nl)) != NULL) {
		size_t i = (size_t)(p - msg), e = i;
		pos = i + 1;
		if (i > 0 && (isalnum((unsigned char)msg[i - 1]) || msg[i - 1] == '.' ||
		              msg[i - 1] == '-' || msg[i - 1] == '_'))
			continue;
		while (e < len && e - i < sizeof(addr) - 1 && !isspace((unsigned char)msg[e]) &&
		       strchr("<>\";,()", msg[e]) == NULL)
			e++;
		snprintf(addr, sizeof(addr), "%.*s", (int)(e - i), msg + i);
		/* local-bounces+EXT@domain, the domain this list's. */
		{
			char *at = strrchr(addr, '@');
			size_t dl = strlen(list_domain);
			if (at == NULL || strncasecmp(at + 1, list_domain, dl) != 0 ||
			    (at[1 + dl] != '\0' && at[1 + dl] != '.'))
				continue;
			*at = '\0';
			snprintf(ext, sizeof(ext), "%s", addr + nl);
		}
		if (verp_check(k, list_local, list_domain, ext, strlen(ext), buf, buflen) > 0)
			return (int)strlen(buf);
	}
	return 0;
}
