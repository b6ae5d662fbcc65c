/*
 * addr.c - mail addresses: parsing a mailbox per RFC 5321 section 4.1.2
 * (with RFC 6531 UTF-8 when asked), the lookup key that compares addresses
 * the way mail admins do, and the lines of a member file ("Name <addr>").
 *
 * Entry points are declared in addr.h. Everything works on the caller's
 * buffers; nothing is allocated.
 *
 * The key folds ASCII case in the local part (RFC 5321 lets the receiving
 * host decide, and in practice every host folds), drops quoting that the
 * local part does not need ("joe"@x is joe@x), lower-cases the domain, and
 * writes address literals in one form ([IPv6:2001:DB8:0::1] and
 * [ipv6:2001:db8::1] are the same host).
 */
#include "mail/addr.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mail/msg.h"
#include "mail/utf8.h"

static int
is_atext(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
		return 1;
	return c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL;
}

static int
is_alnum(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static unsigned char
lower(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + ('a' - 'A')) : c;
}

/* Checks a non-ASCII octet at p: returns the length of its UTF-8 sequence,
 * or 0 with *why set. */
static size_t
non_ascii(const unsigned char *p, const unsigned char *end, int flags, const char **why)
{
	size_t n;

	if (!(flags & ADDR_UTF8)) {
		*why = "non-ASCII characters in an address need SMTPUTF8";
		return 0;
	}
	n = utf8_seq_len(p, (size_t)(end - p));
	if (n == 0)
		*why = "the address is not valid UTF-8";
	return n;
}

/* Dot-atom local part: atext runs separated by single dots. */
static int
parse_dot_atom(const unsigned char *p, const unsigned char *end, int flags, int *utf8,
               const char **why)
{
	int prev_dot = 1;

	if (p == end) {
		*why = "the local part is empty";
		return -1;
	}
	while (p < end) {
		if (*p == '.') {
			if (prev_dot) {
				*why = p + 1 == end
				           ? "the local part ends with a dot"
				           : "the local part has an empty dot-separated part "
				             "(leading or double dot)";
				return -1;
			}
			prev_dot = 1;
			p++;
			continue;
		}
		prev_dot = 0;
		if (*p >= 0x80) {
			size_t n = non_ascii(p, end, flags, why);
			if (n == 0)
				return -1;
			*utf8 = 1;
			p += n;
			continue;
		}
		if (!is_atext(*p)) {
			if (*p == ' ' || *p == '\t')
				*why = "the local part contains white space (quote it)";
			else if (*p < 0x20 || *p == 0x7f)
				*why = "the address contains a control character";
			else
				*why = "the local part contains a character that needs quoting";
			return -1;
		}
		p++;
	}
	if (prev_dot) {
		*why = "the local part ends with a dot";
		return -1;
	}
	return 0;
}

/* Quoted-string local part; p points at the opening quote. Returns the
 * position after the closing quote, or NULL with *why set. */
static const unsigned char *
parse_quoted(const unsigned char *p, const unsigned char *end, int flags, int *utf8,
             const char **why)
{
	p++;
	while (p < end && *p != '"') {
		if (*p == '\\') {
			p++;
			if (p == end || *p < 0x20 || *p > 0x7e) {
				*why = "a backslash in the quoted local part escapes nothing "
				       "printable";
				return NULL;
			}
			p++;
			continue;
		}
		if (*p >= 0x80) {
			size_t n = non_ascii(p, end, flags, why);
			if (n == 0)
				return NULL;
			*utf8 = 1;
			p += n;
			continue;
		}
		if (*p < 0x20 || *p == 0x7f) {
			*why = "the address contains a control character";
			return NULL;
		}
		p++;
	}
	if (p == end) {
		*why = "the quoted local part has no closing quote";
		return NULL;
	}
	return p + 1;
}

/* IPv4 literal: four decimal numbers 0-255 (1 to 3 digits). Writes the
 * canonical form to out when out is not NULL. */
static int
parse_ipv4(const char *s, size_t len, unsigned char out[4])
{
	const char *p = s, *end = s + len;

	for (int i = 0; i < 4; i++) {
		unsigned v = 0;
		int digits = 0;
		while (p < end && *p >= '0' && *p <= '9' && digits < 4) {
			v = v * 10 + (unsigned)(*p - '0');
			p++;
			digits++;
		}
		if (digits == 0 || digits > 3 || v > 255)
			return -1;
		if (out != NULL)
			out[i] = (unsigned char)v;
		if (i < 3) {
			if (p == end || *p != '.')
				return -1;
			p++;
		}
	}
	return p == end ? 0 : -1;
}

static int
parse_ipv6(const char *s, size_t len, unsigned char out[16])
{
	char buf[64];
	unsigned char tmp[16];

	if (len == 0 || len >= sizeof(buf))
		return -1;
	for (size_t i = 0; i < len; i++)
		if (!(is_alnum((unsigned char)s[i]) || s[i] == ':' || s[i] == '.'))
			return -1;
	memcpy(buf, s, len);
	buf[len] = '\0';
	return inet_pton(AF_INET6, buf, out ? out : tmp) == 1 ? 0 : -1;
}

/* [d.d.d.d] or [IPv6:...]; p..end includes the brackets. */
static int
parse_literal(const unsigned char *p, const unsigned char *end, const char **why)
{
	const char *in = (const char *)p + 1;
	size_t len;

	if (end - p < 2 || end[-1] != ']') {
		*why = "the address literal has no closing bracket";
		return -1;
	}
	len = (size_t)(end - p) - 2;
	if (len >= 5 && strncasecmp(in, "IPv6:", 5) == 0) {
		if (parse_ipv6(in + 5, len - 5, NULL) < 0) {
			*why = "the address literal is not a valid IPv6 address";
			return -1;
		}
		return 0;
	}
	if (memchr(in, ':', len) != NULL) {
		*why = "the address literal has an unknown tag (only IPv4 and IPv6: are known)";
		return -1;
	}
	if (parse_ipv4(in, len, NULL) < 0) {
		*why = "the address literal is not a valid IPv4 address";
		return -1;
	}
	return 0;
}

/* Domain name: LDH labels of 1-63 octets (U-labels with ADDR_UTF8). */
static int
parse_domain(const unsigned char *p, const unsigned char *end, int flags, int *utf8,
             const char **why)
{
	const unsigned char *label = p;

	if (p == end) {
		*why = "the domain is empty";
		return -1;
	}
	for (;;) {
		const unsigned char *q = label;
		while (q < end && *q != '.') {
			if (*q >= 0x80) {
				size_t n = non_ascii(q, end, flags, why);
				if (n == 0)
					return -1;
				*utf8 = 1;
				q += n;
				continue;
			}
			if (!is_alnum(*q) && *q != '-') {
				if (*q < 0x20 || *q == 0x7f)
					*why = "the address contains a control character";
				else if (*q == ' ' || *q == '\t')
					*why = "the domain contains white space";
				else
					*why =
					    "the domain contains a character other than letters, "
					    "digits, hyphens and dots";
				return -1;
			}
			q++;
		}
		if (q == label) {
			*why = q == end ? "the domain ends with a dot"
			                : "the domain has an empty label (leading or double dot)";
			return -1;
		}
		if (q - label > 63) {
			*why = "a label of the domain is longer than 63 octets";
			return -1;
		}
		if (*label == '-' || q[-1] == '-') {
			*why = "a label of the domain starts or ends with a hyphen";
			return -1;
		}
		if (q == end)
			return 0;
		label = q + 1;
	}
}

int
addr_parse(const char *s, size_t len, int flags, struct addr *a, const char **why)
{
	const unsigned char *p = (const unsigned char *)s, *end = p + len, *at;
	int utf8 = 0;
	const char *dummy;

	if (why == NULL)
		why = &dummy;
	memset(a, 0, sizeof(*a));
	if (len == 0) {
		*why = "the address is empty";
		return -1;
	}
	if (memchr(s, '\0', len) != NULL) {
		*why = "the address contains a NUL byte";
		return -1;
	}
	if (*p == '"') {
		at = parse_quoted(p, end, flags, &utf8, why);
		if (at == NULL)
			return -1;
		if (at == end || *at != '@') {
			*why = at == end
			           ? "the address has no @domain"
			           : "the quoted local part is followed by something other than @";
			return -1;
		}
	} else {
		at = memchr(p, '@', len);
		if (at == NULL) {
			*why = "the address has no @domain";
			return -1;
		}
		if (parse_dot_atom(p, at, flags, &utf8, why) < 0)
			return -1;
	}
	if (at - p > ADDR_LOCAL_MAX) {
		*why = "the local part is longer than 64 octets";
		return -1;
	}
	if (end - (at + 1) > ADDR_DOMAIN_MAX) {
		*why = "the domain is longer than 255 octets";
		return -1;
	}
	if (at + 1 < end && at[1] == '[') {
		if (parse_literal(at + 1, end, why) < 0)
			return -1;
		a->literal = 1;
	} else if (parse_domain(at + 1, end, flags, &utf8, why) < 0) {
		if (memchr(at + 1, '@', (size_t)(end - at - 1)) != NULL)
			*why = "the address has more than one @ (quote the local part)";
		return -1;
	}
	if (len > ADDR_PATH_MAX) {
		*why = "the address is longer than 254 octets";
		return -1;
	}
	memcpy(a->local, p, (size_t)(at - p));
	a->local[at - p] = '\0';
	memcpy(a->domain, at + 1, (size_t)(end - at - 1));
	a->domain[end - at - 1] = '\0';
	a->utf8 = utf8;
	return 0;
}

int
addr_format(const struct addr *a, char *buf, size_t len)
{
	size_t l = strlen(a->local), d = strlen(a->domain);

	if (l + 1 + d + 1 > len)
		return -1;
	memcpy(buf, a->local, l);
	buf[l] = '@';
	memcpy(buf + l + 1, a->domain, d + 1);
	return (int)(l + 1 + d);
}

/* The domain as it goes into keys: lower-cased, literals in one form. */
static int
domain_key(const struct addr *a, char *buf, size_t len)
{
	size_t d = strlen(a->domain);

	if (a->literal) {
		const char *in = a->domain + 1;
		size_t inlen = d - 2;
		unsigned char bin[16];
		char txt[INET6_ADDRSTRLEN];
		int n;

		if (inlen >= 5 && strncasecmp(in, "IPv6:", 5) == 0 &&
		    parse_ipv6(in + 5, inlen - 5, bin) == 0 &&
		    inet_ntop(AF_INET6, bin, txt, sizeof(txt)) != NULL)
			n = snprintf(buf, len, "[ipv6:%s]", txt);
		else if (parse_ipv4(in, inlen, bin) == 0)
			n = snprintf(buf, len, "[%u.%u.%u.%u]", bin[0], bin[1], bin[2], bin[3]);
		else
			return -1;
		return n < 0 || (size_t)n >= len ? -1 : n;
	}
	if (d + 1 > len)
		return -1;
	for (size_t i = 0; i <= d; i++)
		buf[i] = (char)lower((unsigned char)a->domain[i]);
	return (int)d;
}

int
addr_domain_key(const struct addr *a, char *buf, size_t len)
{
	return domain_key(a, buf, len);
}

/* Does the unquoted content c[0..n) make a valid dot-atom? */
static int
is_dot_atom(const unsigned char *c, size_t n)
{
	int prev_dot = 1;

	if (n == 0)
		return 0;
	for (size_t i = 0; i < n; i++) {
		if (c[i] == '.') {
			if (prev_dot)
				return 0;
			prev_dot = 1;
			continue;
		}
		prev_dot = 0;
		if (c[i] < 0x80 && !is_atext(c[i]))
			return 0;
	}
	return !prev_dot;
}

int
addr_key(const struct addr *a, char *buf, size_t len)
{
	const unsigned char *l = (const unsigned char *)a->local;
	unsigned char content[ADDR_LOCAL_MAX + 1];
	size_t n = 0, o = 0;
	int d;

	if (l[0] != '"') {
		for (; l[n]; n++)
			content[n] = lower(l[n]);
		if (n + 1 > len)
			return -1;
		memcpy(buf, content, n);
		o = n;
	} else {
		/* Unescape, fold, and quote again only if needed. */
		for (size_t i = 1; l[i] != '"' && l[i] != '\0'; i++) {
			if (l[i] == '\\')
				i++;
			content[n++] = lower(l[i]);
		}
		if (is_dot_atom(content, n)) {
			if (n + 1 > len)
				return -1;
			memcpy(buf, content, n);
			o = n;
		} else {
			if (len < 3)
				return -1;
			buf[o++] = '"';
			for (size_t i = 0; i < n; i++) {
				if (content[i] == '"' || content[i] == '\\') {
					if (o + 1 >= len)
						return -1;
					buf[o++] = '\\';
				}
				if (o + 1 >= len)
					return -1;
				buf[o++] = (char)content[i];
			}
			if (o + 1 >= len)
				return -1;
			buf[o++] = '"';
		}
	}
	if (o + 1 >= len)
		return -1;
	buf[o++] = '@';
	d = domain_key(a, buf + o, len - o);
	if (d < 0)
		return -1;
	return (int)o + d;
}

/* ---- member-file lines ---- */

static void
trim(const char **s, const char **e)
{
	while (*s < *e && (**s == ' ' || **s == '\t' || **s == '\r' || **s == '\n'))
		(*s)++;
	while (*e > *s &&
	       ((*e)[-1] == ' ' || (*e)[-1] == '\t' || (*e)[-1] == '\r' || (*e)[-1] == '\n'))
		(*e)--;
}

int
addr_check_name(const char *s, size_t len, const char **why)
{
	const unsigned char *p = (const unsigned char *)s, *end = p + len;

	while (p < end) {
		if (*p < 0x20 || *p == 0x7f) {
			*why = "the name contains a control character";
			return -1;
		}
		if (*p >= 0x80) {
			size_t n = utf8_seq_len(p, (size_t)(end - p));
			if (n == 0) {
				*why = "the name is not valid UTF-8";
				return -1;
			}
			p += n;
			continue;
		}
		p++;
	}
	return 0;
}

/* Copies the display name s..e to name: surrounding quotes (or the
 * parentheses of a comment) removed, backslash escapes undone. */
static int
copy_name(const char *s, const char *e, char open, char close, char *name, size_t namelen,
          const char **why)
{
	size_t o = 0;
	int quoted = 0;

	trim(&s, &e);
	if (e - s >= 2 && *s == open && e[-1] == close) {
		s++;
		e--;
		quoted = 1;
	}
	for (const char *p = s; p < e; p++) {
		if (*p == '\\' && quoted && p + 1 < e)
			p++;
		if (o + 1 >= namelen) {
			*why = "the name is too long";
			return -1;
		}
		name[o++] = *p;
	}
	name[o] = '\0';
	return addr_check_name(name, o, why);
}

/* Finds c outside double quotes in s..e; returns its position or NULL. */
static const char *
find_unquoted(const char *s, const char *e, char c)
{
	int q = 0;

	for (const char *p = s; p < e; p++) {
		if (q && *p == '\\' && p + 1 < e) {
			p++;
			continue;
		}
		if (*p == '"')
			q = !q;
		else if (!q && *p == c)
			return p;
	}
	return NULL;
}

int
addr_parse_line(const char *line, size_t len, int flags, struct addr *a, char *name, size_t namelen,
                const char **why)
{
	const char *s = line, *e = line + len, *lt, *gt;
	const char *dummy;

	if (why == NULL)
		why = &dummy;
	if (namelen == 0) {
		*why = "no room for the name";
		return -1;
	}
	name[0] = '\0';
	trim(&s, &e);
	if (s == e) {
		*why = "the line is empty";
		return -1;
	}
	lt = find_unquoted(s, e, '<');
	if (lt != NULL) {
		gt = find_unquoted(lt, e, '>');
		if (gt == NULL) {
			*why = "'<' without a closing '>'";
			return -1;
		}
		for (const char *p = gt + 1; p < e; p++)
			if (*p != ' ' && *p != '\t') {
				*why = "text after the closing '>'";
				return -1;
			}
		if (copy_name(s, lt, '"', '"', name, namelen, why) < 0)
			return -1;
		return addr_parse(lt + 1, (size_t)(gt - lt - 1), flags, a, why);
	}
	if (e[-1] == ')') {
		const char *open = find_unquoted(s, e, '(');
		if (open == NULL) {
			*why = "')' without an opening '('";
			return -1;
		}
		if (copy_name(open, e, '(', ')', name, namelen, why) < 0)
			return -1;
		e = open;
		trim(&s, &e);
	}
	return addr_parse(s, (size_t)(e - s), flags, a, why);
}

/* ---- header mailboxes ---- */

/* The end of the first mailbox in s..e: the first comma outside quotes,
 * angle brackets and comments. */
static const char *
first_mailbox_end(const char *s, const char *e)
{
	int q = 0, ang = 0, cmt = 0;

	for (const char *p = s; p < e; p++) {
		if (*p == '\\' && (q || cmt) && p + 1 < e)
			p++;
		else if (*p == '"' && !cmt)
			q = !q;
		else if (q)
			continue;
		else if (*p == '(')
			cmt++;
		else if (*p == ')' && cmt > 0)
			cmt--;
		else if (cmt)
			continue;
		else if (*p == '<')
			ang = 1;
		else if (*p == '>')
			ang = 0;
		else if (*p == ',' && !ang)
			return p;
	}
	return e;
}

size_t
addr_list_item_end(const char *s, size_t n)
{
	return (size_t)(first_mailbox_end(s, s + n) - s);
}

/* The display name s..e into name: quotes and escapes removed, RFC 2047
 * words decoded, cut to fit at a UTF-8 boundary. A name that is not
 * readable text is left empty: who the mail is from is the address. */
static void
mailbox_name(const char *s, const char *e, char *name, size_t namelen)
{
	char *raw, *dec;
	size_t o = 0, n;
	int quoted = 0;
	const char *why;

	if (namelen == 0)
		return;
	name[0] = '\0';
	trim(&s, &e);
	if ((raw = malloc((size_t)(e - s) + 1)) == NULL)
		return;
	for (const char *p = s; p < e; p++) {
		if (*p == '"') {
			quoted = !quoted;
			continue;
		}
		if (*p == '\\' && quoted && p + 1 < e)
			p++;
		raw[o++] = *p;
	}
	raw[o] = '\0';
	dec = msg_decode_words(raw, o, NULL);
	free(raw);
	if (dec == NULL)
		return;
	n = strlen(dec);
	if (addr_check_name(dec, n, &why) == 0) {
		if (n >= namelen)
			for (n = namelen - 1; n > 0 && ((unsigned char)dec[n] & 0xc0) == 0x80; n--)
				;
		memcpy(name, dec, n);
		name[n] = '\0';
	}
	free(dec);
}

int
addr_parse_mailbox(const char *value, size_t len, struct addr *a, char *name, size_t namelen,
                   const char **why)
{
	const char *s, *e, *lt, *gt, *dummy;
	char *v;
	size_t n = 0;
	int rc;

	if (why == NULL)
		why = &dummy;
	if (name != NULL && namelen > 0)
		name[0] = '\0';
	else
		namelen = 0;
	/* Unfolded: a header value holds line ends only where it is folded. */
	if ((v = malloc(len + 1)) == NULL) {
		*why = "out of memory";
		return -1;
	}
	for (size_t i = 0; i < len; i++)
		if (value[i] != '\r' && value[i] != '\n')
			v[n++] = value[i];
	v[n] = '\0';
	s = v;
	e = first_mailbox_end(v, v + n);
	trim(&s, &e);
	if (s == e) {
		*why = "no address";
		rc = -1;
	} else if ((lt = find_unquoted(s, e, '<')) != NULL) {
		/* name-addr; anything after the '>' (a comment) is ignored. */
		if ((gt = find_unquoted(lt, e, '>')) == NULL) {
			*why = "'<' without a closing '>'";
			rc = -1;
		} else {
			mailbox_name(s, lt, name, namelen);
			rc = addr_parse(lt + 1, (size_t)(gt - lt - 1), ADDR_UTF8, a, why);
		}
	} else {
		/* addr-spec, perhaps with a (comment) as the name. */
		const char *open = e[-1] == ')' ? find_unquoted(s, e, '(') : NULL;

		if (open != NULL) {
			mailbox_name(open + 1, e - 1, name, namelen);
			e = open;
			trim(&s, &e);
		}
		rc = addr_parse(s, (size_t)(e - s), ADDR_UTF8, a, why);
	}
	if (rc < 0 && namelen > 0)
		name[0] = '\0';
	free(v);
	return rc;
}
