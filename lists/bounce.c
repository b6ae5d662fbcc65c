/*
 * bounce.c - bounce parsing and classification (see bounce.h).
 *
 * The message is first copied with LF line ends so that CRLF and CR-only
 * copies read exactly as the LF one. A MIME walk then collects the
 * delivery-status parts, any feedback report, and the human-readable text
 * outside the returned message. Structured fields win; the text is read
 * for what they lack and for bounces that have no structure at all.
 */
#include "lists/bounce.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mail/addr.h"
#include "mail/msg.h"
#include "mail/strbuf.h"
#include "mail/utf8.h"

#define MAX_RCPTS 256
#define MAX_TEXT (512 * 1024)

/* Appends to a part's text; past MAX_TEXT the text is cut: what explains a
 * bounce comes first. */
static void
add_capped(struct strbuf *b, const char *s, size_t n)
{
	if (b->len + 2 >= MAX_TEXT)
		return;
	if (b->len + n + 2 > MAX_TEXT)
		n = MAX_TEXT - b->len - 2;
	strbuf_add(b, s, n);
}

/* ---------- classification ---------- */

struct pattern {
	const char *text;
	const char *reason;
	enum bounce_class cls;
};

/* Patterns so exact that they win over any status code. */
#define STRONG_PATTERNS 14

/* Most specific first: the first pattern found in the text decides. */
static const struct pattern text_patterns[] = {
    {"temporary locked", "account disabled", BOUNCE_SOFT},
    {"temporarily locked", "account disabled", BOUNCE_SOFT},
    {"account disabled", "account disabled", BOUNCE_SOFT},
    {"account has been disabled", "account disabled", BOUNCE_SOFT},
    {"account is disabled", "account disabled", BOUNCE_SOFT},
    {"mailbox disabled", "account disabled", BOUNCE_SOFT},
    {"sender address rejected", "sender refused", BOUNCE_POLICY},
    {"blacklisted", "blocked", BOUNCE_POLICY},
    {"spamhaus", "blocked", BOUNCE_POLICY},
    {"too many recipients", "rate limited", BOUNCE_SOFT},
    {"not accepting network messages", "domain accepts no mail", BOUNCE_HARD},
    {"host does not accept mail", "domain accepts no mail", BOUNCE_HARD},
    {"recipient address rejected: access denied", "unknown user", BOUNCE_HARD},
    {"name server reply", "network error", BOUNCE_SOFT},
    {"mailbox full", "mailbox full", BOUNCE_SOFT},
    {"mailbox is full", "mailbox full", BOUNCE_SOFT},
    {"mailbox was full", "mailbox full", BOUNCE_SOFT},
    {"mailbox has exceeded", "mailbox full", BOUNCE_SOFT},
    {"mailbox size limit", "mailbox full", BOUNCE_SOFT},
    {"mail box full", "mailbox full", BOUNCE_SOFT},
    {"mailfolder is full", "mailbox full", BOUNCE_SOFT},
    {"mailbox exceeds", "mailbox full", BOUNCE_SOFT},
    {"over quota", "mailbox full", BOUNCE_SOFT},
    {"overquota", "mailbox full", BOUNCE_SOFT},
    {"quota exceeded", "mailbox full", BOUNCE_SOFT},
    {"exceeded quota", "mailbox full", BOUNCE_SOFT},
    {"exceeds quota", "mailbox full", BOUNCE_SOFT},
    {"quota exceed", "mailbox full", BOUNCE_SOFT},
    {"over the quota", "mailbox full", BOUNCE_SOFT},
    {"exceed the quota", "mailbox full", BOUNCE_SOFT},
    {"exceeded storage", "mailbox full", BOUNCE_SOFT},
    {"out of storage", "mailbox full", BOUNCE_SOFT},
    {"insufficient storage", "mailbox full", BOUNCE_SOFT},
    {"user is over", "mailbox full", BOUNCE_SOFT},
    {"full mailbox", "mailbox full", BOUNCE_SOFT},
    {"mailbox would exceed", "mailbox full", BOUNCE_SOFT},
    {"storage limit", "mailbox full", BOUNCE_SOFT},
    {"disk quota", "mailbox full", BOUNCE_SOFT},
    {"overdrawn", "mailbox full", BOUNCE_SOFT},
    {"null mx", "domain accepts no mail", BOUNCE_HARD},
    {"does not accept mail", "domain accepts no mail", BOUNCE_HARD},
    {"accepts no mail", "domain accepts no mail", BOUNCE_HARD},
    {"user unknown", "unknown user", BOUNCE_HARD},
    {"unknown user", "unknown user", BOUNCE_HARD},
    {"no such user", "unknown user", BOUNCE_HARD},
    {"no such mailbox", "unknown user", BOUNCE_HARD},
    {"no such recipient", "unknown user", BOUNCE_HARD},
    {"no such address", "unknown user", BOUNCE_HARD},
    {"no such account", "unknown user", BOUNCE_HARD},
    {"no such person", "unknown user", BOUNCE_HARD},
    {"unknown recipient", "unknown user", BOUNCE_HARD},
    {"unknown address", "unknown user", BOUNCE_HARD},
    {"unknown mailbox", "unknown user", BOUNCE_HARD},
    {"mailbox unknown", "unknown user", BOUNCE_HARD},
    {"unknown local part", "unknown user", BOUNCE_HARD},
    {"unknown local-part", "unknown user", BOUNCE_HARD},
    {"addressee unknown", "unknown user", BOUNCE_HARD},
    {"recipient unknown", "unknown user", BOUNCE_HARD},
    {"recipient not found", "unknown user", BOUNCE_HARD},
    {"recipnotfound", "unknown user", BOUNCE_HARD},
    {"user not found", "unknown user", BOUNCE_HARD},
    {"mailbox not found", "unknown user", BOUNCE_HARD},
    {"address not found", "unknown user", BOUNCE_HARD},
    {"account not found", "unknown user", BOUNCE_HARD},
    {"user doesn't exist", "unknown user", BOUNCE_HARD},
    {"user does not exist", "unknown user", BOUNCE_HARD},
    {"mailbox does not exist", "unknown user", BOUNCE_HARD},
    {"mailbox doesn't exist", "unknown user", BOUNCE_HARD},
    {"account does not exist", "unknown user", BOUNCE_HARD},
    {"account that you tried to reach does not exist", "unknown user", BOUNCE_HARD},
    {"address does not exist", "unknown user", BOUNCE_HARD},
    {"recipient does not exist", "unknown user", BOUNCE_HARD},
    {"does not exist here", "unknown user", BOUNCE_HARD},
    {"no mailbox", "unknown user", BOUNCE_HARD},
    {"invalid recipient", "unknown user", BOUNCE_HARD},
    {"invalid mailbox", "unknown user", BOUNCE_HARD},
    {"invalid address", "unknown user", BOUNCE_HARD},
    {"invalid user", "unknown user", BOUNCE_HARD},
    {"not a valid mailbox", "unknown user", BOUNCE_HARD},
    {"not a valid user", "unknown user", BOUNCE_HARD},
    {"unrouteable address", "unknown user", BOUNCE_HARD},
    {"is not a known user", "unknown user", BOUNCE_HARD},
    {"not our customer", "unknown user", BOUNCE_HARD},
    {"unknown or illegal alias", "unknown user", BOUNCE_HARD},
    {"no account by that name", "unknown user", BOUNCE_HARD},
    {"does not have an account", "unknown user", BOUNCE_HARD},
    {"doesn't have a", "unknown user", BOUNCE_HARD},
    {"not listed in", "unknown user", BOUNCE_HARD},
    {"no valid recipients", "unknown user", BOUNCE_HARD},
    {"user doesn't have", "unknown user", BOUNCE_HARD},
    {"mailbox unavailable", "unknown user", BOUNCE_HARD},
    {"recipient address rejected: user", "unknown user", BOUNCE_HARD},
    {"recipient address rejected: undeliverable", "unknown user", BOUNCE_HARD},
    {"this user doesn't", "unknown user", BOUNCE_HARD},
    {"is not a valid", "unknown user", BOUNCE_HARD},
    {"no longer", "unknown user", BOUNCE_HARD},
    {"account is not", "unknown user", BOUNCE_HARD},
    {"address couldn't be found", "unknown user", BOUNCE_HARD},
    {"address could not be found", "unknown user", BOUNCE_HARD},
    {"domain is not reachable", "unknown domain", BOUNCE_HARD},
    {"host unknown", "unknown domain", BOUNCE_HARD},
    {"unknown host", "unknown domain", BOUNCE_HARD},
    {"host not found", "unknown domain", BOUNCE_HARD},
    {"domain not found", "unknown domain", BOUNCE_HARD},
    {"no such domain", "unknown domain", BOUNCE_HARD},
    {"unknown domain", "unknown domain", BOUNCE_HARD},
    {"domain does not exist", "unknown domain", BOUNCE_HARD},
    {"domain doesn't exist", "unknown domain", BOUNCE_HARD},
    {"unrouteable mail domain", "unknown domain", BOUNCE_HARD},
    {"host or domain name not found", "unknown domain", BOUNCE_HARD},
    {"name or service not known", "unknown domain", BOUNCE_HARD},
    {"domain name not found", "unknown domain", BOUNCE_HARD},
    {"nxdomain", "unknown domain", BOUNCE_HARD},
    {"no mx", "unknown domain", BOUNCE_HARD},
    {"mx lookup", "unknown domain", BOUNCE_HARD},
    {"has moved", "address moved", BOUNCE_HARD},
    {"suspended", "account disabled", BOUNCE_SOFT},
    {"disabled", "account disabled", BOUNCE_SOFT},
    {"deactivated", "account disabled", BOUNCE_SOFT},
    {"inactive", "account disabled", BOUNCE_SOFT},
    {"dmarc", "dmarc", BOUNCE_POLICY},
    {"spf", "authentication", BOUNCE_POLICY},
    {"dkim", "authentication", BOUNCE_POLICY},
    {"spam", "spam", BOUNCE_POLICY},
    {"junk", "spam", BOUNCE_POLICY},
    {"virus", "content", BOUNCE_POLICY},
    {"blacklist", "blocked", BOUNCE_POLICY},
    {"blocklist", "blocked", BOUNCE_POLICY},
    {"block list", "blocked", BOUNCE_POLICY},
    {"spamhaus", "blocked", BOUNCE_POLICY},
    {"rbl", "blocked", BOUNCE_POLICY},
    {"blocked", "blocked", BOUNCE_POLICY},
    {"reputation", "blocked", BOUNCE_POLICY},
    {"reverse dns", "blocked", BOUNCE_POLICY},
    {"ptr record", "blocked", BOUNCE_POLICY},
    {"relay access denied", "relaying denied", BOUNCE_POLICY},
    {"relaying denied", "relaying denied", BOUNCE_POLICY},
    {"not permitted to relay", "relaying denied", BOUNCE_POLICY},
    {"relay not permitted", "relaying denied", BOUNCE_POLICY},
    {"policy", "policy", BOUNCE_POLICY},
    {"access denied", "policy", BOUNCE_POLICY},
    {"not authorized", "policy", BOUNCE_POLICY},
    {"not allowed", "policy", BOUNCE_POLICY},
    {"too many", "rate limited", BOUNCE_SOFT},
    {"message too large", "message too large", BOUNCE_SOFT},
    {"message size exceeds", "message too large", BOUNCE_SOFT},
    {"too big", "message too large", BOUNCE_SOFT},
    {"retry timeout", "expired", BOUNCE_SOFT},
    {"retry time", "expired", BOUNCE_SOFT},
    {"timed out", "expired", BOUNCE_SOFT},
    {"timeout", "expired", BOUNCE_SOFT},
    {"too long", "expired", BOUNCE_SOFT},
    {"giving up", "expired", BOUNCE_SOFT},
    {"could not be delivered for", "expired", BOUNCE_SOFT},
    {"connection refused", "network error", BOUNCE_SOFT},
    {"temporar", "temporary failure", BOUNCE_SOFT},
};

static const char *
find_ci(const char *hay, size_t n, const char *needle)
{
	size_t k = strlen(needle);

	if (k == 0 || n < k)
		return NULL;
	for (size_t i = 0; i + k <= n; i++)
		if (tolower((unsigned char)hay[i]) == needle[0] &&
		    strncasecmp(hay + i, needle, k) == 0)
			return hay + i;
	return NULL;
}

static const struct pattern *
text_reason(const char *text)
{
	size_t n;

	if (text == NULL || *text == '\0')
		return NULL;
	n = strlen(text);
	for (size_t i = 0; i < sizeof(text_patterns) / sizeof(text_patterns[0]); i++)
		if (find_ci(text, n, text_patterns[i].text) != NULL)
			return &text_patterns[i];
	return NULL;
}

/* Class by the status code's subject and detail (RFC 3463), or NONE when
 * the code does not say. */
static enum bounce_class
status_class(const char *status, const char **reason)
{
	int c, s, d;

	if (status == NULL || sscanf(status, "%d.%d.%d", &c, &s, &d) != 3)
		return BOUNCE_NONE;
	if (c == 2)
		return BOUNCE_NONE;
	if (s == 1 && (d == 1 || d == 3)) {
		*reason = "unknown user";
		return BOUNCE_HARD;
	}
	if (s == 1 && d == 2) {
		*reason = "unknown domain";
		return BOUNCE_HARD;
	}
	if (s == 1 && d == 10) {
		*reason = "domain accepts no mail";
		return BOUNCE_HARD;
	}
	if (s == 1 && d == 6) {
		*reason = "address moved";
		return BOUNCE_HARD;
	}
	if (s == 4 && d == 4) {
		*reason = "unknown domain";
		return BOUNCE_HARD;
	}
	if (s == 2 && (d == 2 || d == 3)) {
		*reason = "mailbox full";
		return BOUNCE_SOFT;
	}
	if (s == 2 && d == 1) {
		*reason = "account disabled";
		return BOUNCE_SOFT;
	}
	if (s == 1 && (d == 7 || d == 8)) {
		*reason = "sender refused";
		return BOUNCE_POLICY;
	}
	if (s == 7) {
		*reason = "policy";
		return BOUNCE_POLICY;
	}
	if (s == 4 && d == 7) {
		*reason = "expired";
		return BOUNCE_SOFT;
	}
	return BOUNCE_NONE;
}

enum bounce_class
bounce_classify(const char *status, const char *text, int temporary, const char **reason)
{
	const struct pattern *p = text_reason(text);
	const char *sreason = NULL;
	enum bounce_class sc = status_class(status, &sreason);
	int c = status && *status ? status[0] - '0' : 0;

	*reason = "unclassified";
	if (c == 2) {
		*reason = "delivered";
		return BOUNCE_NONE;
	}
	/* Words that name the address itself or a full mailbox are more exact
	 * than the generic codes many servers use (5.0.0, 5.5.0, 5.7.1 for
	 * everything). */
	if (p != NULL && p->cls == BOUNCE_HARD && strcmp(p->reason, "unknown user") == 0 &&
	    text != NULL && find_ci(text, strlen(text), "end of data") != NULL) {
		/* Refused after the data, not at RCPT: a content filter that
		 * words its refusal as an unknown user. */
		*reason = "filtered";
		return BOUNCE_SOFT;
	}
	if (p != NULL && p - text_patterns < STRONG_PATTERNS) {
		*reason = p->reason;
		return p->cls;
	}
	/* Codes that speak of the mailbox's state, the sender, or policy are
	 * more exact than an "unknown user" some servers say for everything. */
	if (sc == BOUNCE_POLICY) {
		*reason = sreason;
		return sc;
	}
	if (p != NULL && (p->cls == BOUNCE_HARD || strcmp(p->reason, "mailbox full") == 0)) {
		*reason = p->reason;
		/* A temporary failure does not prove the address bad. */
		if (p->cls == BOUNCE_HARD && (temporary || c == 4) && sc != BOUNCE_HARD)
			return BOUNCE_SOFT;
		return p->cls;
	}
	if (sc != BOUNCE_NONE) {
		*reason = sreason;
		return sc;
	}
	if (p != NULL) {
		*reason = p->reason;
		return p->cls;
	}
	if (temporary || c == 4)
		*reason = "temporary failure";
	return BOUNCE_SOFT;
}

const char *
bounce_class_name(enum bounce_class c)
{
	switch (c) {
	case BOUNCE_NONE:
		return "none";
	case BOUNCE_HARD:
		return "hard";
	case BOUNCE_SOFT:
		return "soft";
	case BOUNCE_POLICY:
		return "policy";
	case BOUNCE_COMPLAINT:
		return "complaint";
	}
	return "none";
}

const char *
bounce_kind_name(enum bounce_kind k)
{
	switch (k) {
	case BOUNCE_KIND_NONE:
		return "none";
	case BOUNCE_KIND_DSN:
		return "dsn";
	case BOUNCE_KIND_TEXT:
		return "text";
	case BOUNCE_KIND_AUTOREPLY:
		return "autoreply";
	case BOUNCE_KIND_ARF:
		return "arf";
	}
	return "none";
}

int
bounce_rcpt_is_failure(const struct bounce_rcpt *b)
{
	return strcmp(b->action, "failed") == 0 &&
	       (b->cls == BOUNCE_HARD || b->cls == BOUNCE_SOFT || b->cls == BOUNCE_POLICY);
}

/* ---------- small text helpers ---------- */

/* Finds the first x.y.z status code in s[0..n) with class 2, 4 or 5, not
 * part of a longer dotted number (an IP address, a version). */
static int
find_status2(const char *s, size_t n, char out[16], const char **at, int allow2)
{
	for (size_t i = 0; i + 5 <= n; i++) {
		size_t j = i, k;
		int c = s[i];

		if ((c != '2' || !allow2) && c != '4' && c != '5')
			continue;
		if (i > 0 && (isdigit((unsigned char)s[i - 1]) || s[i - 1] == '.'))
			continue;
		j = i + 1;
		if (j >= n || s[j] != '.')
			continue;
		k = ++j;
		while (j < n && isdigit((unsigned char)s[j]) && j - k < 4)
			j++;
		if (j == k || j - k > 3 || j >= n || s[j] != '.')
			continue;
		k = ++j;
		while (j < n && isdigit((unsigned char)s[j]) && j - k < 4)
			j++;
		if (j == k || j - k > 3)
			continue;
		if (j < n && (isdigit((unsigned char)s[j]) ||
		              (s[j] == '.' && j + 1 < n && isdigit((unsigned char)s[j + 1]))))
			continue;
		if (j - i >= 16)
			continue;
		memcpy(out, s + i, j - i);
		out[j - i] = '\0';
		if (at)
			*at = s + i;
		return 0;
	}
	return -1;
}

static int
find_status(const char *s, size_t n, char out[16], const char **at)
{
	return find_status2(s, n, out, at, 0);
}

/* The first SMTP reply code (4xx or 5xx followed by space or '-'). */
static int
find_reply(const char *s, size_t n)
{
	for (size_t i = 0; i + 4 <= n; i++) {
		if ((s[i] != '4' && s[i] != '5') || !isdigit((unsigned char)s[i + 1]) ||
		    !isdigit((unsigned char)s[i + 2]))
			continue;
		if (i > 0 && (isalnum((unsigned char)s[i - 1]) || s[i - 1] == '.' ||
		              s[i - 1] == '-' || s[i - 1] == ':' || s[i - 1] == '/'))
			continue;
		if (s[i + 3] != ' ' && s[i + 3] != '-')
			continue;
		if (s[i + 1] > '5')
			continue;
		return (s[i] - '0') * 100 + (s[i + 1] - '0') * 10 + (s[i + 2] - '0');
	}
	return 0;
}

/* Copies s[0..n) to out as one line: white space runs become one space. */
static void
one_line(const char *s, size_t n, char *out, size_t outlen)
{
	size_t o = 0;
	int sp = 0;

	while (n > 0 && isspace((unsigned char)*s)) {
		s++;
		n--;
	}
	for (size_t i = 0; i < n && o + 1 < outlen; i++) {
		unsigned char c = (unsigned char)s[i];
		if (isspace(c) || c < 32) {
			sp = 1;
			continue;
		}
		if (sp && o > 0 && o + 2 < outlen)
			out[o++] = ' ';
		sp = 0;
		out[o++] = (char)c;
	}
	out[o] = '\0';
}

static int
is_local_char(unsigned char c)
{
	return isalnum(c) || strchr("!#$%&'*+-/=?^_`{|}~.", c) != NULL;
}

static int
is_domain_char(unsigned char c)
{
	return isalnum(c) || c == '-' || c == '.' || c == '_';
}

/* The next address-looking token at or after *pos in s[0..n): its start
 * and length. Returns 0 when there is none. */
static int
next_addr(const char *s, size_t n, size_t *pos, size_t *as, size_t *al)
{
	for (size_t i = *pos; i < n; i++) {
		size_t a, b;
		int dot = 0;

		if (s[i] != '@')
			continue;
		a = i;
		while (a > 0 && is_local_char((unsigned char)s[a - 1]) && i - a < 64)
			a--;
		while (a < i && s[a] == '.')
			a++;
		b = i + 1;
		while (b < n && is_domain_char((unsigned char)s[b]))
			b++;
		while (b > i + 1 && (s[b - 1] == '.' || s[b - 1] == '-'))
			b--;
		for (size_t k = i + 1; k < b; k++)
			if (s[k] == '.')
				dot = 1;
		if (a == i || b == i + 1 || !dot) {
			*pos = i + 1;
			continue;
		}
		/* "=?utf-8?..." and similar encodings glued on the left. */
		if (a > 0 && s[a - 1] == '=' && a >= 2 && s[a - 2] == '?')
			continue;
		*as = a;
		*al = b - a;
		*pos = b;
		return 1;
	}
	*pos = n;
	return 0;
}

static void
addr_copy(char *dst, const char *s, size_t n)
{
	size_t o = 0;

	while (n > 0 && (*s == '<' || *s == ' ' || *s == '"' || *s == '\'')) {
		s++;
		n--;
	}
	while (n > 0 && (s[n - 1] == '>' || s[n - 1] == ' ' || s[n - 1] == '.' || s[n - 1] == '"' ||
	                 s[n - 1] == '\'' || s[n - 1] == ','))
		n--;
	/* Exchange writes "SMTP=user@domain" (an address type prefix). */
	if (n > 5 && strncasecmp(s, "smtp=", 5) == 0) {
		s += 5;
		n -= 5;
	}
	for (size_t i = 0; i < n && o + 1 < BOUNCE_ADDR_MAX; i++)
		dst[o++] = s[i];
	dst[o] = '\0';
}

static int
addr_eq(const char *a, const char *b)
{
	return strcasecmp(a, b) == 0;
}

/* ---------- report building ---------- */

static struct bounce_rcpt *
add_rcpt(struct bounce_report *r)
{
	if (r->n >= MAX_RCPTS)
		return NULL;
	if (r->n == r->cap) {
		size_t cap = r->cap ? r->cap * 2 : 4;
		struct bounce_rcpt *np = realloc(r->rcpts, cap * sizeof(*np));
		if (np == NULL)
			return NULL;
		r->rcpts = np;
		r->cap = cap;
	}
	memset(&r->rcpts[r->n], 0, sizeof(r->rcpts[0]));
	return &r->rcpts[r->n++];
}

static int
have_rcpt(const struct bounce_report *r, const char *addr)
{
	for (size_t i = 0; i < r->n; i++)
		if (addr_eq(r->rcpts[i].addr, addr))
			return 1;
	return 0;
}

void
bounce_report_free(struct bounce_report *r)
{
	free(r->rcpts);
	memset(r, 0, sizeof(*r));
}

/* ---------- collecting the parts ---------- */

struct ctx {
	struct strbuf dsn;   /* delivery-status parts */
	struct strbuf arf;   /* feedback-report parts */
	struct strbuf human; /* readable text outside the returned message */
	struct strbuf html;  /* text/html, tags removed, when there is no plain text */
	struct strbuf orig;  /* the returned message's header block */
	int report;          /* top-level multipart/report */
	int oom;
};

static int
in_original(const struct msg_part *p)
{
	for (const struct msg_part *a = p->parent; a != NULL; a = a->parent)
		if (msg_ctype_is(a->ct, "message", "rfc822") ||
		    msg_ctype_is(a->ct, "message", "global") ||
		    msg_ctype_is(a->ct, "message", "rfc822-headers") ||
		    msg_ctype_is(a->ct, "text", "rfc822-headers"))
			return 1;
	return 0;
}

static void
add_decoded(struct strbuf *b, const struct msg_part *p, int strip_tags)
{
	const struct msg_header *h = msg_header_get(p->headers, "Content-Transfer-Encoding", 0);
	char *cte = h ? msg_unfold(h->value, h->value_len) : NULL;
	size_t n = 0;
	char *d = msg_decode_body(cte, p->body, p->body_len, &n);

	free(cte);
	if (d == NULL) {
		b->oom = 1;
		return;
	}
	if (strip_tags) {
		size_t o = 0;
		int in = 0;
		for (size_t i = 0; i < n; i++) {
			if (d[i] == '<')
				in = 1;
			else if (d[i] == '>' && in)
				in = 0, d[o++] = ' ';
			else if (!in)
				d[o++] = d[i];
		}
		n = o;
	}
	/* Decoded text may bring back CR line ends. */
	for (size_t i = 0; i < n; i++)
		if (d[i] == '\r')
			d[i] = (i + 1 < n && d[i + 1] == '\n') ? ' ' : '\n';
	add_capped(b, d, n);
	add_capped(b, "\n\n", 2);
	free(d);
}

static int
walk_cb(const struct msg_part *p, void *arg)
{
	struct ctx *c = arg;
	const struct msg_ctype *ct = p->ct;

	if (p->depth == 0 && msg_ctype_is(ct, "multipart", "report"))
		c->report = 1;
	if (in_original(p))
		return 0;
	if (msg_ctype_is(ct, "message", "delivery-status") ||
	    msg_ctype_is(ct, "message", "global-delivery-status") ||
	    msg_ctype_is(ct, "text", "delivery-status"))
		add_decoded(&c->dsn, p, 0);
	else if (msg_ctype_is(ct, "message", "feedback-report"))
		add_decoded(&c->arf, p, 0);
	else if (msg_ctype_is(ct, "message", "rfc822") || msg_ctype_is(ct, "message", "global") ||
	         msg_ctype_is(ct, "message", "rfc822-headers") ||
	         msg_ctype_is(ct, "text", "rfc822-headers")) {
		if (c->orig.len == 0) {
			size_t n = p->body_len < 65536 ? p->body_len : 65536;
			add_capped(&c->orig, p->body, n);
			add_capped(&c->orig, "\n", 1);
		}
	} else if (strcmp(ct->type, "text") == 0 && strcmp(ct->subtype, "html") == 0)
		add_decoded(&c->html, p, 1);
	else if (strcmp(ct->type, "text") == 0 || (p->depth == 0 && strcmp(ct->type, "multipart")))
		add_decoded(&c->human, p, 0);
	return 0;
}

/* ---------- RFC 3464 fields ---------- */

/* Calls fn for each field of a header-like block (continuations joined),
 * with a blank line reported as name "" so that groups can be told apart. */
typedef void (*field_fn)(const char *name, size_t nl, const char *val, size_t vl, void *arg);

static void
each_field(const char *s, size_t n, field_fn fn, void *arg)
{
	char val[2048];
	size_t i = 0;

	while (i < n) {
		size_t e = i, nl;
		const char *colon;

		while (e < n && s[e] != '\n')
			e++;
		if (e == i || (e - i == 1 && s[i] == ' ')) {
			fn("", 0, "", 0, arg);
			i = e + 1;
			continue;
		}
		colon = memchr(s + i, ':', e - i);
		if (colon == NULL || s[i] == ' ' || s[i] == '\t') {
			i = e + 1;
			continue;
		}
		nl = (size_t)(colon - (s + i));
		{
			size_t vo = 0, j = (size_t)(colon - s) + 1;
			for (;;) {
				while (j < e && vo + 1 < sizeof(val))
					val[vo++] = s[j++] == '\t' ? ' ' : s[j - 1];
				if (e + 1 < n && (s[e + 1] == ' ' || s[e + 1] == '\t')) {
					j = e + 1;
					e = j;
					while (e < n && s[e] != '\n')
						e++;
					if (vo + 1 < sizeof(val))
						val[vo++] = ' ';
					continue;
				}
				break;
			}
			val[vo] = '\0';
			fn(s + i, nl, val, vo, arg);
		}
		i = e + 1;
	}
}

struct dsn_state {
	struct bounce_report *r;
	int newgroup;
	struct bounce_rcpt *cur;
	char diag[BOUNCE_DIAG_MAX];
	int oom;
};

/* Appends the UTF-8 encoding of code point cp to out[*o..len); 0, or -1
 * when cp is no character or does not fit. */
static int
put_utf8(char *out, size_t *o, size_t len, unsigned long cp)
{
	char u[4];
	size_t n = cp == 0 ? 0 : utf8_encode(cp, u);

	if (n == 0 || *o + n >= len)
		return -1;
	memcpy(out + *o, u, n);
	*o += n;
	return 0;
}

static int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Decodes the address part of a DSN address field into out: for "rfc822"
 * the xtext of RFC 3461 ("+2B" is '+'; only the characters xtext must
 * encode are decoded, so that "bob+41@x" stays as written), for "utf-8"
 * the \x{HEX} escapes of RFC 6533's utf-8-addr-xtext and -unitext (raw
 * UTF-8 is kept). Returns 0, or -1 when an escape is broken. */
static int
decode_dsn_addr(const char *s, size_t n, int utf8, char *out, size_t len)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		if (!utf8 && s[i] == '+' && i + 2 < n && hexval(s[i + 1]) >= 0 &&
		    hexval(s[i + 2]) >= 0) {
			int c = hexval(s[i + 1]) * 16 + hexval(s[i + 2]);
			if (c == '+' || c == '=' || c == ' ' || c == '"' || c == '\\') {
				if (o + 1 >= len)
					return -1;
				out[o++] = (char)c;
				i += 2;
				continue;
			}
		}
		if (utf8 && s[i] == '\\' && i + 2 < n && s[i + 1] == 'x' && s[i + 2] == '{') {
			unsigned long cp = 0;
			size_t j = i + 3;
			while (j < n && j - i < 10 && hexval(s[j]) >= 0)
				cp = cp * 16 + (unsigned long)hexval(s[j++]);
			if (j == i + 3 || j >= n || s[j] != '}' || put_utf8(out, &o, len, cp) < 0)
				return -1;
			i = j;
			continue;
		}
		if (o + 1 >= len)
			return -1;
		out[o++] = s[i];
	}
	out[o] = '\0';
	return 0;
}

/* The address of a DSN address field ("type; address"): RFC 3464's rfc822
 * type xtext-decoded, RFC 6533's utf-8 type (which Postfix and fanmail
 * write for SMTPUTF8 recipients) with its escapes decoded; out is "" when
 * the field names no address. Other types, and words around the address,
 * fall back to the first address-looking token. */
static void
dsn_addr(const char *val, char *out)
{
	const char *semi = strchr(val, ';');
	const char *p = semi ? semi + 1 : val;
	char dec[2 * BOUNCE_ADDR_MAX];
	size_t pos = 0, as, al, n, tl = 0;
	int utf8 = 0;
	struct addr a;
	const char *why;

	out[0] = '\0';
	if (semi != NULL) {
		const char *t = val;
		while (*t == ' ')
			t++;
		tl = (size_t)(semi - t);
		while (tl > 0 && t[tl - 1] == ' ')
			tl--;
		utf8 = tl == 5 && strncasecmp(t, "utf-8", 5) == 0;
		if (!utf8 && !(tl == 6 && strncasecmp(t, "rfc822", 6) == 0))
			tl = 0; /* a type we do not know: no decoding */
	}
	while (*p == ' ' || *p == '<')
		p++;
	n = strlen(p);
	while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '>'))
		n--;
	if (tl > 0) {
		if (decode_dsn_addr(p, n, utf8, dec, sizeof(dec)) < 0)
			return; /* a broken escape names nobody we could trust */
		p = dec;
		n = strlen(dec);
	}
	/* The whole value as one address first: next_addr() reads only
	 * ASCII local parts. */
	if (n > 0 && n < BOUNCE_ADDR_MAX && addr_parse(p, n, ADDR_UTF8, &a, &why) == 0) {
		memcpy(out, p, n);
		out[n] = '\0';
		return;
	}
	if (next_addr(p, n, &pos, &as, &al))
		addr_copy(out, p + as, al);
}

static void
dsn_field(const char *name, size_t nl, const char *val, size_t vl, void *arg)
{
	struct dsn_state *d = arg;
	char addr[BOUNCE_ADDR_MAX];

	if (nl == 0) {
		d->newgroup = 1;
		return;
	}
	if (msg_word_eq(name, nl, "Final-Recipient") ||
	    msg_word_eq(name, nl, "Original-Recipient") ||
	    msg_word_eq(name, nl, "X-Actual-Recipient")) {
		int final = msg_word_eq(name, nl, "Final-Recipient");
		dsn_addr(val, addr);
		if (addr[0] == '\0') {
			/* A recipient we cannot read opens a block of its own all
			 * the same: its Action and Status must not land on the
			 * recipient before it. */
			if (!msg_word_eq(name, nl, "X-Actual-Recipient") &&
			    (d->cur == NULL || d->newgroup || (final && d->cur->addr[0]) ||
			     (!final && d->cur->orig[0]))) {
				d->newgroup = 0;
				d->cur = NULL;
			}
			return;
		}
		if (msg_word_eq(name, nl, "X-Actual-Recipient")) {
			if (d->cur && d->cur->orig[0] == '\0')
				snprintf(d->cur->orig, sizeof(d->cur->orig), "%s", addr);
			return;
		}
		if (d->cur == NULL || d->newgroup || (final && d->cur->addr[0]) ||
		    (!final && d->cur->orig[0])) {
			d->newgroup = 0;
			if ((d->cur = add_rcpt(d->r)) == NULL) {
				d->oom = 1;
				return;
			}
		}
		if (final)
			snprintf(d->cur->addr, sizeof(d->cur->addr), "%s", addr);
		else
			snprintf(d->cur->orig, sizeof(d->cur->orig), "%s", addr);
		return;
	}
	if (d->cur == NULL)
		return;
	d->newgroup = 0;
	if (msg_word_eq(name, nl, "Action")) {
		one_line(val, vl, d->cur->action, sizeof(d->cur->action));
		for (char *p = d->cur->action; *p; p++)
			*p = (char)tolower((unsigned char)*p);
		char *sp = strpbrk(d->cur->action, " ;(");
		if (sp)
			*sp = '\0';
	} else if (msg_word_eq(name, nl, "Status")) {
		if (find_status2(val, vl, d->cur->status, NULL, 1) < 0)
			d->cur->status[0] = '\0';
	} else if (msg_word_eq(name, nl, "Diagnostic-Code")) {
		const char *semi = memchr(val, ';', vl);
		const char *p = semi ? semi + 1 : val;
		one_line(p, vl - (size_t)(p - val), d->cur->diag, sizeof(d->cur->diag));
	}
}

/* ---------- the human-readable text ---------- */

static const char *const cut_markers[] = {
    "this is a copy of the message",
    "below this line is a copy of the message",
    "original message follows",
    "original message headers",
    "-- original message",
    "--original message",
    "-----original message",
    "unsent message below",
    "message header follows",
    "headers follow",
    "header of the original message",
    "headers of the original message",
    "copy of the original message",
    "returned mail follows",
    "returned message follows",
    "original message header",
    "the original message was",
    "message/rfc822",
    "original message ---",
    "----- original",
    "the message that caused",
    "included below",
    "is attached",
    "are attached",
};

/* Where the returned message starts in the text, as an offset. */
static size_t
cut_point(const char *s, size_t n)
{
	size_t cut = n;
	const char *p;

	for (size_t i = 0; i < sizeof(cut_markers) / sizeof(cut_markers[0]); i++)
		if ((p = find_ci(s, n, cut_markers[i])) != NULL && (size_t)(p - s) < cut) {
			/* "The original message was received at ..." opens a Sendmail
			 * report; only a marker that is not in the first lines cuts. */
			if (strcmp(cut_markers[i], "the original message was") == 0 &&
			    (p - s) < 200)
				continue;
			cut = (size_t)(p - s);
		}
	/* A header block of the returned message pasted in as text. */
	for (size_t i = 0; i < cut; i++) {
		if (i > 0 && s[i - 1] != '\n')
			continue;
		if (strncasecmp(s + i, "Received: from", 14) == 0 ||
		    strncasecmp(s + i, "Return-Path:", 12) == 0 ||
		    strncasecmp(s + i, "Message-ID:", 11) == 0 ||
		    strncasecmp(s + i, "X-Original-To:", 14) == 0 ||
		    strncasecmp(s + i, "DKIM-Signature:", 15) == 0) {
			cut = i;
			break;
		}
	}
	return cut;
}

static const char *const system_locals[] = {
    "mailer-daemon", "postmaster", "mail-daemon", "mailerdaemon", "maildaemon", "daemon",
    "noreply",       "no-reply",   "root",        "mdaemon",      "bounce",     "bounces",
};

static int
is_system(const char *addr)
{
	const char *at = strchr(addr, '@');
	size_t n = at ? (size_t)(at - addr) : strlen(addr);

	for (size_t i = 0; i < sizeof(system_locals) / sizeof(system_locals[0]); i++)
		if (msg_word_eq(addr, n, system_locals[i]))
			return 1;
	return 0;
}

/* The addresses of the bounce's own envelope and header, which are the
 * list's, never a failed recipient. */
struct exclude {
	char a[8][BOUNCE_ADDR_MAX];
	int n;
};

static void
exclude_header(struct exclude *x, const struct msg *top, const char *name)
{
	char *v = msg_header_text(top, name);
	size_t pos = 0, as, al, n;

	if (v == NULL)
		return;
	n = strlen(v);
	while (x->n < 8 && next_addr(v, n, &pos, &as, &al))
		addr_copy(x->a[x->n++], v + as, al);
	free(v);
}

static int
excluded(const struct exclude *x, const char *addr)
{
	for (int i = 0; i < x->n; i++)
		if (addr_eq(x->a[i], addr))
			return 1;
	return is_system(addr);
}

/* Whether the address at s[as] sits on a line that names a sender or a
 * message rather than a recipient. */
static int
on_ignored_line(const char *s, size_t as)
{
	size_t b = as;
	static const char *const heads[] = {
	    "from:",        "sender:",      "reply-to:",  "message-id:",   "references:",
	    "in-reply-to:", "return-path:", "mail from:", "envelope-from", "smtp.mailfrom"};

	/* Only the start of a line names its kind; a very long line is not
	 * walked back over for every address on it. */
	while (b > 0 && s[b - 1] != '\n' && as - b < 256)
		b--;
	while (b < as && (s[b] == ' ' || s[b] == '\t' || s[b] == '>'))
		b++;
	for (size_t i = 0; i < sizeof(heads) / sizeof(heads[0]); i++)
		if (find_ci(s + b, as - b, heads[i]) != NULL)
			return 1;
	return 0;
}

struct found {
	char addr[BOUNCE_ADDR_MAX];
	size_t pos;
};

static int
add_found(struct found *f, int n, int max, const char *addr, size_t pos)
{
	for (int i = 0; i < n; i++)
		if (addr_eq(f[i].addr, addr)) {
			if (pos < f[i].pos)
				f[i].pos = pos;
			return n;
		}
	if (n >= max)
		return n;
	snprintf(f[n].addr, sizeof(f[n].addr), "%s", addr);
	f[n].pos = pos;
	return n + 1;
}

static int
cmp_found(const void *a, const void *b)
{
	const struct found *x = a, *y = b;
	return x->pos < y->pos ? -1 : x->pos > y->pos;
}

/* Addresses in an explicit recipient position: "<addr>:" opening a line
 * (qmail, Postfix), "RCPT TO:<addr>" in a transcript, an address alone on
 * its line (Exim, Sendmail lists). */
static int
explicit_rcpts(const char *s, size_t n, struct found *f, int max, const struct exclude *x)
{
	int k = 0;
	size_t i = 0;

	while (i < n) {
		size_t e = i, b = i, pos, as, al;
		char addr[BOUNCE_ADDR_MAX];

		while (e < n && s[e] != '\n')
			e++;
		while (b < e && (s[b] == ' ' || s[b] == '\t'))
			b++;
		pos = b;
		if (next_addr(s, e, &pos, &as, &al)) {
			size_t after = as + al, before = as;
			while (after < e && (s[after] == '>' || s[after] == '"'))
				after++;
			while (before > b && (s[before - 1] == '<' || s[before - 1] == '"'))
				before--;
			addr_copy(addr, s + as, al);
			const char *rcpt = find_ci(s + b, as - b, "rcpt to");
			int alone =
			    before == b && (after == e || s[after] == ':' || s[after] == ' ' ||
			                    s[after] == '\t' || s[after] == ',' || s[after] == '.');
			if (s[b] == '>' && rcpt == NULL)
				alone = 0;
			if ((alone || rcpt != NULL) && !excluded(x, addr))
				k = add_found(f, k, max, addr, as);
		}
		i = e + 1;
	}
	return k;
}

static int
all_rcpts(const char *s, size_t n, struct found *f, int max, const struct exclude *x)
{
	size_t pos = 0, as, al;
	char addr[BOUNCE_ADDR_MAX];
	int k = 0;

	int seen = 0;

	/* Bounded: a text with thousands of addresses names no recipient
	 * worth more than the first few. */
	while (k < max && seen++ < 1000 && next_addr(s, n, &pos, &as, &al)) {
		addr_copy(addr, s + as, al);
		if (excluded(x, addr) || on_ignored_line(s, as))
			continue;
		k = add_found(f, k, max, addr, as);
	}
	return k;
}

/* The line of seg that best explains the failure. */
static void
pick_diag(const char *seg, size_t n, const char *status_at, char *out, size_t outlen)
{
	const char *best = status_at;
	size_t b, e;

	if (best == NULL) {
		for (size_t i = 0; i < n && best == NULL; i++)
			if ((seg[i] == '4' || seg[i] == '5') &&
			    (i == 0 || !isalnum((unsigned char)seg[i - 1])) &&
			    find_reply(seg + i, n - i > 4 ? 4 : n - i))
				best = seg + i;
	}
	if (best == NULL) {
		for (size_t i = 0; i < sizeof(text_patterns) / sizeof(text_patterns[0]); i++) {
			const char *p = find_ci(seg, n, text_patterns[i].text);
			if (p != NULL && (best == NULL || p < best))
				best = p;
		}
	}
	if (best == NULL) {
		/* The first line after the address line. */
		const char *nl = memchr(seg, '\n', n);
		best = nl ? nl + 1 : seg;
		while (best < seg + n && isspace((unsigned char)*best))
			best++;
		if (best >= seg + n)
			best = seg;
	}
	b = (size_t)(best - seg);
	while (b > 0 && seg[b - 1] != '\n')
		b--;
	e = (size_t)(best - seg);
	while (e < n && seg[e] != '\n')
		e++;
	/* Continuation lines (indented, or a reply spread over lines). */
	while (e + 1 < n && (seg[e + 1] == ' ' || seg[e + 1] == '\t') && e - b < 400) {
		e++;
		while (e < n && seg[e] != '\n')
			e++;
	}
	one_line(seg + b, e - b, out, outlen);
}

static const char *const delay_words[] = {
    "will continue to try",    "will be retried", "still trying",       "not yet been delivered",
    "delivery delayed",        "delayed mail",    "warning: message",   "will retry",
    "has been delayed",        "will try",        "delay notification", "(delay)",
    "warning: could not send",
};

static int
is_delay(const char *subject, const char *text, size_t n)
{
	int delay = 0;

	for (size_t i = 0; i < sizeof(delay_words) / sizeof(delay_words[0]); i++)
		if ((subject && find_ci(subject, strlen(subject), delay_words[i])) ||
		    find_ci(text, n, delay_words[i]))
			delay = 1;
	if (subject && (find_ci(subject, strlen(subject), "warning") ||
	                find_ci(subject, strlen(subject), "delay")))
		delay = 1;
	if (find_ci(text, n, "permanent") || find_ci(text, n, "given up") ||
	    find_ci(text, n, "gave up") || find_ci(text, n, "giving up") ||
	    find_ci(text, n, "could not be delivered"))
		delay = 0;
	return delay;
}

/* ---------- what kind of message it is ---------- */

static const char *const bounce_subjects[] = {
    "undeliver",
    "delivery status",
    "delivery fail",
    "failure notice",
    "returned mail",
    "mail delivery",
    "non-delivery",
    "nondelivery",
    "non delivery",
    "delivery notification",
    "could not be delivered",
    "bounce",
    "mail system error",
    "returned to sender",
    "permanent error",
    "delivery problem",
    "failed delivery",
    "not delivered",
    "delivery has failed",
    "mail failure",
    "unable to deliver",
    "delivery report",
    "delivery failure",
    "message delayed",
    "rejected",
    "failed mail",
    "error sending",
    "delivery error",
    "delayed mail",
    "returned message",
    "delivery warning",
    "mail could not",
    "nicht zustellbar",
    "non remis",
    "no entregado",
    "failure",
};

static const char *const bounce_bodies[] = {
    "permanent error",
    "could not be delivered",
    "was not delivered",
    "undeliverable",
    "delivery to the following",
    "following address",
    "wasn't able to deliver",
    "unable to deliver",
    "delivery has failed",
    "fatal error",
    "failed permanently",
    "this is the mail system at",
    "the following recipient",
    "delivery failed",
    "couldn't be delivered",
    "message could not be sent",
    "not be delivered",
    "delivery failure",
    "rcpt to",
    "user unknown",
    "returned to you",
    "could not deliver",
    "delivery attempt",
    "failed recipient",
};

static int
has_word(const char *s, const char *const *words, size_t nwords)
{
	size_t n;

	if (s == NULL)
		return 0;
	n = strlen(s);
	for (size_t i = 0; i < nwords; i++)
		if (find_ci(s, n, words[i]) != NULL)
			return 1;
	return 0;
}

static int
is_autoreply(const struct msg *top, const char *subject)
{
	char *v;
	int yes = 0;

	if ((v = msg_header_text(top, "Auto-Submitted")) != NULL) {
		yes = strncasecmp(v, "no", 2) != 0;
		free(v);
	}
	if (msg_header_get(top, "X-Autoreply", 0) || msg_header_get(top, "X-Autorespond", 0) ||
	    msg_header_get(top, "X-Vacation", 0))
		yes = 1;
	if ((v = msg_header_text(top, "Precedence")) != NULL) {
		if (strcasecmp(v, "auto_reply") == 0)
			yes = 1;
		free(v);
	}
	if (subject) {
		static const char *const w[] = {
		    "out of office", "out of the office", "auto:",      "automatic reply",
		    "autoreply",     "auto-reply",        "auto reply", "vacation",
		    "away from",     "abwesenheit",       "absence"};
		if (has_word(subject, w, sizeof(w) / sizeof(w[0])))
			yes = 1;
	}
	return yes;
}

static int
from_daemon(const struct msg *top)
{
	char *v = msg_header_text(top, "From");
	static const char *const w[] = {
	    "mailer-daemon", "postmaster",         "mail delivery", "mail-daemon", "mailerdaemon",
	    "maildaemon",    "mail administrator", "mail system",   "mdaemon",     "mailer_daemon"};
	int yes = has_word(v, w, sizeof(w) / sizeof(w[0]));

	free(v);
	return yes;
}

/* ---------- filling one recipient from the text ---------- */

static void
fill_from_text(struct bounce_rcpt *b, const char *seg, size_t n, const char *whole, size_t wn,
               int temporary)
{
	const char *at = NULL;
	char code[16];
	int reply;

	if (b->status[0] == '\0') {
		if (find_status(seg, n, code, &at) == 0 ||
		    (b->diag[0] == '\0' && find_status(whole, wn, code, NULL) == 0))
			snprintf(b->status, sizeof(b->status), "%s", code);
	}
	if (b->diag[0] == '\0')
		pick_diag(seg, n, at, b->diag, sizeof(b->diag));
	reply = find_reply(b->diag, strlen(b->diag));
	if (reply == 0)
		reply = find_reply(seg, n);
	if (b->action[0] == '\0')
		snprintf(b->action, sizeof(b->action), "%s", temporary ? "delayed" : "failed");
	(void)reply;
}

static int
generic_code(const char *s)
{
	size_t n = strlen(s);
	return n >= 5 && s[n - 1] == '0' && s[n - 2] == '.';
}

/* Class, reason, and a status made from them when the report gave none. */
static void
finish_rcpt(struct bounce_rcpt *b, const char *extra)
{
	char text[2400];
	int temporary = strcmp(b->action, "delayed") == 0 || b->status[0] == '4';
	int reply = find_reply(b->diag, strlen(b->diag));

	if (text_reason(b->diag) == NULL && extra != NULL)
		snprintf(text, sizeof(text), "%s %s", b->diag, extra);
	else
		snprintf(text, sizeof(text), "%s", b->diag);
	/* The code the remote server gave in its own words is more exact
	 * than the one the reporting MTA put in Status (often x.0.0, or
	 * x.4.7 for anything that expired). */
	if (b->status[0] != '2') {
		char code[16], first[16] = "";
		const char *at, *p = b->diag;
		while (find_status(p, strlen(p), code, &at) == 0) {
			if (strcmp(code, b->status) != 0) {
				if (!generic_code(code)) {
					snprintf(first, sizeof(first), "%s", code);
					break;
				}
				if (first[0] == '\0')
					snprintf(first, sizeof(first), "%s", code);
			}
			p = at + strlen(code);
		}
		if (first[0] != '\0' &&
		    (b->status[0] == '\0' || generic_code(b->status) ||
		     strcmp(b->status + 1, ".4.7") == 0 || !generic_code(first)))
			snprintf(b->status, sizeof(b->status), "%s", first);
	}
	b->cls = bounce_classify(b->status, text, temporary, &b->reason);
	if (b->cls == BOUNCE_HARD && strcmp(b->reason, "unknown user") == 0 && extra != NULL &&
	    find_ci(extra, strlen(extra), "end of data") != NULL) {
		b->cls = BOUNCE_SOFT;
		b->reason = "filtered";
	}
	if (b->status[0] == '\0') {
		char c = reply ? (char)('0' + reply / 100) : (temporary ? '4' : '5');
		const char *d = NULL;
		if (strcmp(b->reason, "unknown user") == 0)
			d = "1.1";
		else if (strcmp(b->reason, "unknown domain") == 0)
			d = "1.2";
		else if (strcmp(b->reason, "address moved") == 0)
			d = "1.6";
		else if (strcmp(b->reason, "mailbox full") == 0)
			d = "2.2";
		else if (strcmp(b->reason, "domain accepts no mail") == 0)
			d = "1.10";
		else if (strcmp(b->reason, "message too large") == 0)
			d = "3.4";
		if (d != NULL)
			snprintf(b->status, sizeof(b->status), "%c.%s", c, d);
		else if (reply)
			snprintf(b->status, sizeof(b->status), "%c.0.0", c);
	}
	if (strcmp(b->action, "failed") != 0 && strcmp(b->action, "delayed") != 0 &&
	    b->action[0] != '\0') {
		if (strcmp(b->action, "complaint") != 0)
			b->cls = BOUNCE_NONE;
	}
	if (strcmp(b->action, "delayed") == 0 && b->cls != BOUNCE_NONE)
		b->cls = BOUNCE_SOFT;
}

/* Finds the segment of text about addr: from its first mention to the
 * next recipient's, at most 2000 octets. */
static void
segment_for(const char *s, size_t n, const struct found *f, int k, int i, size_t *sb, size_t *sl)
{
	size_t b = f[i].pos, e = n;

	for (int j = 0; j < k; j++)
		if (f[j].pos > b && f[j].pos < e)
			e = f[j].pos;
	/* Keep the line the next address is on when it is the same line. */
	if (e - b > 2000)
		e = b + 2000;
	*sb = b;
	*sl = e - b;
}

/* Sendmail's "(expanded from: <addr>)" names the address the sender used,
 * which is the one a list knows. */
static void
expanded_from(struct bounce_rcpt *b, const char *seg, size_t n)
{
	const char *p = find_ci(seg, n > 400 ? 400 : n, "expanded from");
	size_t pos, as, al, rest;

	if (p == NULL || b->orig[0])
		return;
	rest = n - (size_t)(p - seg);
	pos = 0;
	if (next_addr(p, rest > 300 ? 300 : rest, &pos, &as, &al))
		addr_copy(b->orig, p + as, al);
}

/* Text forwarded with "> " quoting is read without it. */
static void
dequote(char *s, size_t *n)
{
	size_t lines = 0, quoted = 0, o = 0;

	for (size_t i = 0; i < *n; i++)
		if (i == 0 || s[i - 1] == '\n') {
			lines++;
			quoted += s[i] == '>';
		}
	if (lines < 5 || quoted * 3 < lines)
		return;
	for (size_t i = 0; i < *n; i++) {
		if ((i == 0 || s[i - 1] == '\n') && s[i] == '>') {
			i++;
			if (i < *n && s[i] == ' ')
				i++;
			if (i >= *n)
				break;
		}
		s[o++] = s[i];
	}
	s[o] = '\0';
	*n = o;
}

static int
parse_text(struct bounce_report *r, const struct msg *top, const char *subject, const char *s,
           size_t n)
{
	struct found f[64];
	struct exclude x = {.n = 0};
	size_t cut = cut_point(s, n);
	int k = 0, temporary, coded = 1;
	char *xf;

	exclude_header(&x, top, "From");
	exclude_header(&x, top, "To");
	exclude_header(&x, top, "Return-Path");
	temporary = is_delay(subject, s, cut);

	if ((xf = msg_header_text(top, "X-Failed-Recipients")) != NULL) {
		size_t pos = 0, as, al, xn = strlen(xf);
		char addr[BOUNCE_ADDR_MAX];
		while (next_addr(xf, xn, &pos, &as, &al)) {
			size_t where;
			const char *p;
			addr_copy(addr, xf + as, al);
			p = find_ci(s, cut, addr);
			where = p ? (size_t)(p - s) : cut;
			k = add_found(f, k, 64, addr, where);
		}
		free(xf);
	}
	if (k == 0)
		k = explicit_rcpts(s, cut, f, 64, &x);
	if (k == 0) {
		char code[16];
		k = all_rcpts(s, cut, f, 64, &x);
		coded = find_status(s, cut, code, NULL) == 0 || find_reply(s, cut) != 0;
	}
	if (k == 0) {
		/* Redacted samples and self-sent tests name the recipient with
		 * the bounce's own To: trust an explicit recipient position. */
		struct exclude none = {.n = 0};
		k = explicit_rcpts(s, cut, f, 64, &none);
		coded = 1;
	}
	qsort(f, (size_t)k, sizeof(f[0]), cmp_found);
	for (int i = 0; i < k; i++) {
		struct bounce_rcpt *b = add_rcpt(r);
		size_t sb, sl;
		char *seg;

		if (b == NULL)
			return -1;
		snprintf(b->addr, sizeof(b->addr), "%.*s", (int)sizeof(b->addr) - 1, f[i].addr);
		segment_for(s, cut, f, k, i, &sb, &sl);
		fill_from_text(b, s + sb, sl, s, cut, temporary);
		expanded_from(b, s + sb, sl);
		seg = strndup(s + sb, sl);
		finish_rcpt(b, seg);
		free(seg);
		/* Without a single SMTP or status code the text is too vague
		 * to count against anyone: reported, but not as a failure. */
		if (!coded && strcmp(b->action, "failed") == 0)
			snprintf(b->action, sizeof(b->action), "unknown");
	}
	return 0;
}

/* ---------- the entry point ---------- */

static char *
to_lf(const char *buf, size_t len, size_t *outlen)
{
	char *o = malloc(len + 1);
	size_t n = 0;

	if (o == NULL)
		return NULL;
	for (size_t i = 0; i < len; i++) {
		if (buf[i] == '\r') {
			o[n++] = '\n';
			if (i + 1 < len && buf[i + 1] == '\n')
				i++;
		} else {
			o[n++] = buf[i];
		}
	}
	o[n] = '\0';
	*outlen = n;
	return o;
}

static void
arf_field(const char *name, size_t nl, const char *val, size_t vl, void *arg)
{
	struct bounce_report *r = arg;
	char addr[BOUNCE_ADDR_MAX];
	struct bounce_rcpt *b;

	if (!msg_word_eq(name, nl, "Original-Rcpt-To") &&
	    !msg_word_eq(name, nl, "Removal-Recipient"))
		return;
	dsn_addr(val, addr);
	if (addr[0] == '\0' || have_rcpt(r, addr) || (b = add_rcpt(r)) == NULL)
		return;
	snprintf(b->addr, sizeof(b->addr), "%s", addr);
	snprintf(b->action, sizeof(b->action), "complaint");
	b->cls = BOUNCE_COMPLAINT;
	b->reason = "complaint";
}

static void
arf_from_original(struct bounce_report *r, const char *orig, size_t n)
{
	struct msg m;
	char *to;

	if (n == 0 || msg_parse(&m, orig, n) < 0)
		return;
	if ((to = msg_header_text(&m, "To")) != NULL) {
		size_t pos = 0, as, al;
		struct bounce_rcpt *b;
		if (next_addr(to, strlen(to), &pos, &as, &al) && (b = add_rcpt(r)) != NULL) {
			addr_copy(b->addr, to + as, al);
			snprintf(b->action, sizeof(b->action), "complaint");
			b->cls = BOUNCE_COMPLAINT;
			b->reason = "complaint";
		}
		free(to);
	}
	msg_free(&m);
}

int
bounce_parse(const char *buf, size_t len, struct bounce_report *r)
{
	struct ctx c;
	struct msg top;
	size_t n;
	char *lf = to_lf(buf, len, &n), *subject = NULL;
	const char *text;
	size_t tn;
	int rc = -1;

	memset(r, 0, sizeof(*r));
	memset(&c, 0, sizeof(c));
	r->detector = "none";
	if (lf == NULL)
		return -1;
	if (msg_parse(&top, lf, n) < 0) {
		free(lf);
		return -1;
	}
	if (msg_walk(lf, n, walk_cb, &c) < 0 || c.dsn.oom || c.human.oom || c.arf.oom)
		goto out;
	{
		char *s = msg_header_text(&top, "Subject");
		if (s != NULL) {
			subject = msg_decode_words(s, strlen(s), NULL);
			free(s);
		}
	}
	/* A multipart whose boundary never comes (a broken MIME structure):
	 * its body is read as text. */
	if (c.human.len == 0 && c.html.len == 0 && c.dsn.len == 0 && c.arf.len == 0 &&
	    top.body_len > 0) {
		add_capped(&c.human, top.body, top.body_len);
		if (c.human.oom)
			goto out;
	}
	if (c.human.len)
		dequote(c.human.p, &c.human.len);
	text = c.human.len ? c.human.p : (c.html.len ? c.html.p : "");
	tn = c.human.len ? c.human.len : c.html.len;

	if (c.arf.len > 0) {
		r->kind = BOUNCE_KIND_ARF;
		r->detector = "arf";
		each_field(c.arf.p, c.arf.len, arf_field, r);
		if (r->n == 0)
			arf_from_original(r, c.orig.p, c.orig.len);
		rc = 0;
		goto out;
	}
	/* A delivery-status block pasted into the text (a broken MIME
	 * structure, or an MTA that writes no MIME at all). */
	if (c.dsn.len == 0 && tn > 0) {
		const char *p = text;
		while (p != NULL && *p) {
			if (strncasecmp(p, "Final-Recipient:", 16) == 0 ||
			    strncasecmp(p, "Reporting-MTA:", 14) == 0) {
				add_capped(&c.dsn, p, tn - (size_t)(p - text));
				break;
			}
			p = strchr(p, '\n');
			if (p != NULL)
				p++;
		}
		if (c.dsn.oom)
			goto out;
	}
	if (c.dsn.len > 0) {
		struct dsn_state d = {.r = r};
		size_t cut = cut_point(text, tn);
		int temporary = is_delay(subject, text, cut);

		each_field(c.dsn.p, c.dsn.len, dsn_field, &d);
		if (d.oom)
			goto out;
		/* Results with no recipient at all are of no use. */
		for (size_t i = 0; i < r->n;) {
			struct bounce_rcpt *b = &r->rcpts[i];
			if (b->addr[0] == '\0' && b->orig[0] != '\0')
				snprintf(b->addr, sizeof(b->addr), "%s", b->orig);
			if (b->addr[0] == '\0') {
				memmove(b, b + 1, (r->n - i - 1) * sizeof(*b));
				r->n--;
				continue;
			}
			i++;
		}
		if (r->n > 0) {
			r->kind = BOUNCE_KIND_DSN;
			r->detector = "dsn";
			for (size_t i = 0; i < r->n; i++) {
				struct bounce_rcpt *b = &r->rcpts[i];
				const char *p = find_ci(text, cut, b->addr);
				char *seg;
				size_t sb = p ? (size_t)(p - text) : 0, sl = p ? cut - sb : cut;
				if (sl > 2000)
					sl = 2000;
				if (b->action[0] == '\0')
					snprintf(b->action, sizeof(b->action), "%s",
					         temporary ? "delayed" : "failed");
				if (b->diag[0] == '\0' || b->status[0] == '\0')
					fill_from_text(b, text + sb, sl, text, cut, temporary);
				seg = p ? strndup(text + sb, sl) : NULL;
				finish_rcpt(b, seg);
				free(seg);
			}
			rc = 0;
			goto out;
		}
	}
	{
		int evidence = from_daemon(&top) ||
		               msg_header_get(&top, "X-Failed-Recipients", 0) ||
		               has_word(subject, bounce_subjects,
		                        sizeof(bounce_subjects) / sizeof(bounce_subjects[0]));
		int body_evidence =
		    has_word(text, bounce_bodies, sizeof(bounce_bodies) / sizeof(bounce_bodies[0]));

		if (is_autoreply(&top, subject) && !evidence && !c.report) {
			r->kind = BOUNCE_KIND_AUTOREPLY;
			r->detector = "autoreply";
			rc = 0;
			goto out;
		}
		if (evidence || c.report || body_evidence) {
			r->kind = BOUNCE_KIND_TEXT;
			r->detector = "text";
			rc = parse_text(r, &top, subject, text, tn);
			goto out;
		}
	}
	r->kind = BOUNCE_KIND_NONE;
	rc = 0;
out:
	free(c.dsn.p);
	free(c.arf.p);
	free(c.human.p);
	free(c.html.p);
	free(c.orig.p);
	free(subject);
	msg_free(&top);
	free(lf);
	if (rc < 0)
		bounce_report_free(r);
	return rc;
}

/* ---------- mbox ---------- */

int
bounce_mbox_next(const char *buf, size_t len, size_t *off, const char **msg, size_t *msglen)
{
	size_t i = *off, s, e;

	if (i >= len)
		return 0;
	if (i == 0 && (len < 5 || memcmp(buf, "From ", 5) != 0)) {
		*msg = buf;
		*msglen = len;
		*off = len;
		return 1;
	}
	/* Skip the "From " line. */
	while (i < len && buf[i] != '\n')
		i++;
	s = i < len ? i + 1 : len;
	e = s;
	for (;;) {
		while (e < len && buf[e] != '\n')
			e++;
		if (e >= len) {
			e = len;
			break;
		}
		e++;
		if (len - e >= 5 && memcmp(buf + e, "From ", 5) == 0)
			break;
	}
	*msg = buf + s;
	*msglen = e - s;
	*off = e;
	return 1;
}
