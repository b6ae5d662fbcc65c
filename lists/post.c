/*
 * post.c - posting policy, loop check, DMARC decision and the rewrite of a
 * post into the message that goes out. See post.h.
 *
 * The rewrite copies the original header fields in order (line ends made
 * CRLF), drops the ones the list owns (List-*, Precedence, Return-Path,
 * X-Fanmail-Report),
 * rewrites Subject in place, From/Reply-To as the settings say, and adds
 * the list's fields after the last original one. The body is copied as is
 * unless a footer goes in; the footer never breaks the MIME structure: it
 * is appended to a plain text body, added as a last part to
 * multipart/mixed, or the body becomes the first part of a new
 * multipart/mixed; signed and encrypted bodies get none.
 */
#include "lists/post.h"

#include <ctype.h>
#include <libpsl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "conf/conf.h"
#include "lists/personal.h"
#include "lists/verp.h"
#include "mail/addr.h"
#include "mail/encode.h"
#include "mail/fold.h"
#include "mail/strbuf.h"
#include "mail/utf8.h"

/* Appends the field written in f ("Name: value", no line end) folded
 * (mail/fold.h: no line over 998 octets, 78 where white space allows),
 * and empties f. */
static void
b_field(struct strbuf *b, struct strbuf *f, enum fold_kind kind)
{
	char *folded = NULL;

	if (f->oom || (folded = fold_field(f->p ? f->p : "", f->len, kind)) == NULL)
		b->oom = 1;
	else
		strbuf_str(b, folded);
	free(folded);
	free(f->p);
	memset(f, 0, sizeof(*f));
}

/* 1 when every CR in s[0..n) starts a CRLF and every LF ends one: mail
 * from SMTP always (smtp_in refuses bare CR and LF), so it is copied whole. */
static int
crlf_only(const char *s, size_t n)
{
	const char *p, *end = s + n;

	for (p = s; (p = memchr(p, '\r', (size_t)(end - p))) != NULL; p += 2)
		if (p + 1 == end || p[1] != '\n')
			return 0;
	for (p = s; (p = memchr(p, '\n', (size_t)(end - p))) != NULL; p++)
		if (p == s || p[-1] != '\r')
			return 0;
	return 1;
}

/* Copies s[0..n) with every line end (LF, CR, CRLF) made CRLF. */
static void
b_crlf(struct strbuf *b, const char *s, size_t n)
{
	const char *p = s, *end = s + n;

	if (crlf_only(s, n)) {
		strbuf_add(b, s, n);
		return;
	}
	while (p < end) {
		const char *q = p;

		while (q < end && *q != '\r' && *q != '\n')
			q++;
		strbuf_add(b, p, (size_t)(q - p));
		if (q == end)
			break;
		strbuf_add(b, "\r\n", 2);
		if (*q == '\r' && q + 1 < end && q[1] == '\n')
			q++;
		p = q + 1;
	}
}

static int
ends_with_eol(const char *s, size_t n)
{
	return n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r');
}

/* --- settings --- */

static void
lower_copy(char *dst, size_t dstlen, const char *src)
{
	size_t i;

	for (i = 0; src[i] && i + 1 < dstlen; i++)
		dst[i] = (char)tolower((unsigned char)src[i]);
	dst[i] = '\0';
}

/* In the footer, %m and %u become FOOTER_VAR and the letter, written out
 * by b_footer(); an octet FOOTER_VAR of the setting itself is dropped. */
#define FOOTER_VAR '\x01'

/* Expands %n (name), %a (address), %% and \n into dst; with crlf (the
 * footer) also %m and %u, as FOOTER_VAR and the letter. */
static void
expand(const struct post_cfg *c, const char *src, char *dst, size_t dstlen, int crlf)
{
	size_t o = 0;

	for (const char *p = src; *p && o + 3 < dstlen; p++) {
		const char *ins = NULL;
		char one[2] = {0, 0};

		if (*p == '%' && p[1] == 'n') {
			ins = c->local;
			p++;
		} else if (*p == '%' && p[1] == 'a') {
			ins = c->address;
			p++;
		} else if (*p == '%' && p[1] == '%') {
			ins = "%";
			p++;
		} else if (crlf && *p == '%' && (p[1] == 'm' || p[1] == 'u')) {
			if (o + 3 >= dstlen)
				break;
			dst[o++] = FOOTER_VAR;
			dst[o++] = *++p;
			continue;
		} else if (*p == FOOTER_VAR) {
			continue;
		} else if (*p == '\\' && p[1] == 'n') {
			ins = crlf ? "\r\n" : "\n";
			p++;
		} else if (*p == '\n' && crlf) {
			ins = "\r\n";
		} else if (*p == '\r') {
			continue;
		} else {
			one[0] = *p;
			ins = one;
		}
		for (; *ins && o + 1 < dstlen; ins++)
			dst[o++] = *ins;
	}
	dst[o] = '\0';
}

/* expand() without the footer variables, every line end CRLF. */
static void
expand_crlf(const struct post_cfg *c, const char *src, char *dst, size_t dstlen)
{
	char tmp[4096];
	size_t o = 0;

	expand(c, src, tmp, sizeof(tmp), 0);
	for (const char *p = tmp; *p && o + 3 < dstlen; p++) {
		if (*p == '\n')
			dst[o++] = '\r';
		dst[o++] = *p;
	}
	dst[o] = '\0';
}

/* post_cfg.verp is read by verp_post_is_verp() as an enum verp_mode. */
_Static_assert((int)list_verp_never == VERP_NEVER && (int)list_verp_always == VERP_ALWAYS &&
                   (int)list_verp_every == VERP_EVERY,
               "enum list_verp (list_settings.def) and enum verp_mode (verp.h) differ");

void
post_cfg_init(struct post_cfg *c, const char *local, const char *domain, const struct list_conf *lc)
{
	memset(c, 0, sizeof(*c));
	lower_copy(c->local, sizeof(c->local), local);
	lower_copy(c->domain, sizeof(c->domain), domain);
	snprintf(c->address, sizeof(c->address), "%s@%s", c->local, c->domain);
	snprintf(c->display_name, sizeof(c->display_name), "%s", lc->display_name);
	c->policy = lc->policy;
	c->nonmember = lc->nonmember_action;
	expand(c, lc->subject_prefix, c->subject_prefix, sizeof(c->subject_prefix), 0);
	c->reply_to = lc->reply_to;
	snprintf(c->reply_to_address, sizeof(c->reply_to_address), "%s", lc->reply_to_address);
	expand(c, lc->footer, c->footer, sizeof(c->footer), 1);
	snprintf(c->archive_url, sizeof(c->archive_url), "%s", lc->archive_url);
	c->archive = lc->archive;
	c->dmarc_action = lc->dmarc_mitigation;
	c->dmarc_when = lc->dmarc_when;
	c->dmarc_fallback = lc->dmarc_fallback;
	c->verp = (int)lc->verp;
	c->verp_every = lc->verp_every;
	c->remove_dkim = lc->remove_dkim_signatures;
	c->personalize = lc->personalize;
	expand_crlf(c, lc->digest_header, c->digest_header, sizeof(c->digest_header));
	expand_crlf(c, lc->digest_footer, c->digest_footer, sizeof(c->digest_footer));
}

void
post_unsubscribe_page(const struct post_cfg *c, char *buf, size_t len)
{
	if (c->http_base[0])
		snprintf(buf, len, "%s/unsubscribe/%s", c->http_base, c->address);
	else
		snprintf(buf, len, "mailto:%s-leave@%s", c->local, c->domain);
}

static const char *
list_name(const struct post_cfg *c)
{
	return c->display_name[0] ? c->display_name : c->local;
}

/* --- policy and loops --- */

enum post_verdict
post_policy(const struct post_cfg *c, int is_member, int is_privileged, const char **reason)
{
	enum post_verdict refuse = c->nonmember == list_nonmember_action_hold     ? POST_HOLD
	                           : c->nonmember == list_nonmember_action_reject ? POST_REJECT
	                                                                          : POST_DISCARD;

	*reason = NULL;
	switch (c->policy) {
	case list_policy_open:
		return POST_PASS;
	case list_policy_members:
		if (is_member || is_privileged)
			return POST_PASS;
		*reason = "post from a non-member";
		return refuse;
	case list_policy_moderated:
		*reason = "the list is moderated";
		return POST_HOLD;
	case list_policy_announce:
		if (is_privileged)
			return POST_PASS;
		*reason = "only owners and moderators post to this list";
		return refuse;
	}
	return POST_HOLD;
}

/* Does the unfolded value contain needle, ignoring case? */
static int
contains_ci(const char *hay, const char *needle)
{
	size_t n = strlen(needle);

	for (; *hay; hay++)
		if (strncasecmp(hay, needle, n) == 0)
			return 1;
	return 0;
}

int
post_is_loop(const struct msg *m, const struct post_cfg *c)
{
	char id[340];
	const struct msg_header *h;

	snprintf(id, sizeof(id), "<%s.%s>", c->local, c->domain);
	for (size_t i = 0; (h = msg_header_get(m, "List-Id", i)) != NULL; i++) {
		char *v = msg_unfold(h->value, h->value_len);
		int hit = v && contains_ci(v, id);

		free(v);
		if (hit)
			return 1;
	}
	for (size_t i = 0; (h = msg_header_get(m, "X-Loop", i)) != NULL; i++) {
		char *v = msg_unfold(h->value, h->value_len);
		char a[POST_ADDR_MAX + 4];
		int hit;

		snprintf(a, sizeof(a), "%s", v ? v : "");
		hit = v && (strcasecmp(v, c->address) == 0 ||
		            (snprintf(a, sizeof(a), "<%s>", c->address), contains_ci(v, a)));
		free(v);
		if (hit)
			return 1;
	}
	return 0;
}

/* --- addresses --- */

int
post_from(const struct msg *m, char *name, size_t namelen, char *addr, size_t addrlen)
{
	const struct msg_header *h = msg_header_get(m, "From", 0);
	struct addr a;

	if (namelen > 0)
		name[0] = '\0';
	if (addrlen > 0)
		addr[0] = '\0';
	if (h == NULL || addr_parse_mailbox(h->value, h->value_len, &a, name, namelen, NULL) < 0 ||
	    addr_format(&a, addr, addrlen) < 0)
		return -1;
	return 0;
}

int
post_addr_key(const char *addr, char *key, size_t keylen)
{
	struct addr a;
	const char *why;

	if (addr_parse(addr, strlen(addr), ADDR_UTF8, &a, &why) < 0)
		return -1;
	return addr_key(&a, key, keylen) < 0 ? -1 : 0;
}

/* --- DMARC --- */

void
post_org_domain(const char *domain, char *out, size_t outlen)
{
	const psl_ctx_t *psl = psl_builtin();
	char low[256];
	const char *reg = NULL;

	lower_copy(low, sizeof(low), domain);
	if (psl != NULL)
		reg = psl_registrable_domain(psl, low);
	snprintf(out, outlen, "%s", reg ? reg : low);
}

const char *
post_dmarc_record_policy(const char *text, int is_subdomain)
{
	const char *p = text, *pol = NULL, *sp = NULL;
	int first = 1;

	while (*p) {
		const char *tag, *val;
		size_t tl, vl;

		while (*p == ' ' || *p == '\t')
			p++;
		tag = p;
		while (*p && *p != '=' && *p != ';' && *p != ' ' && *p != '\t')
			p++;
		tl = (size_t)(p - tag);
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p != '=') {
			if (first)
				return NULL;
			while (*p && *p != ';')
				p++;
			if (*p == ';')
				p++;
			continue;
		}
		p++;
		while (*p == ' ' || *p == '\t')
			p++;
		val = p;
		while (*p && *p != ';')
			p++;
		vl = (size_t)(p - val);
		while (vl > 0 && (val[vl - 1] == ' ' || val[vl - 1] == '\t'))
			vl--;
		if (*p == ';')
			p++;
		if (first) {
			/* "v=DMARC1" must come first (RFC 7489 section 6.4). */
			if (!msg_word_eq(tag, tl, "v") ||
			    !(vl == 6 && strncmp(val, "DMARC1", 6) == 0))
				return NULL;
			first = 0;
			continue;
		}
		if (msg_word_eq(tag, tl, "p") || msg_word_eq(tag, tl, "sp")) {
			const char *r = msg_word_eq(val, vl, "reject")       ? "reject"
			                : msg_word_eq(val, vl, "quarantine") ? "quarantine"
			                : msg_word_eq(val, vl, "none")       ? "none"
			                                                     : NULL;

			if (tag[0] == 'p' || tag[0] == 'P')
				pol = r;
			else
				sp = r;
		}
	}
	if (first)
		return NULL;
	if (is_subdomain && sp != NULL)
		return sp;
	/* A record without a valid p= is treated as none (section 6.6.3). */
	return pol ? pol : "none";
}

int
post_dmarc_applies(const struct post_cfg *c, const char *policy)
{
	switch (c->dmarc_when) {
	case list_dmarc_when_never:
		return 0;
	case list_dmarc_when_always:
		return 1;
	case list_dmarc_when_quarantine:
		if (policy == NULL)
			return c->dmarc_fallback == list_dmarc_fallback_mitigate;
		return strcmp(policy, "quarantine") == 0 || strcmp(policy, "reject") == 0;
	case list_dmarc_when_reject:
		if (policy == NULL)
			return c->dmarc_fallback == list_dmarc_fallback_mitigate;
		return strcmp(policy, "reject") == 0;
	}
	return 0;
}

/* --- subject --- */

/* Length of a reply marker at s ("Re:", "RE :", "Aw:", "Sv:", "Re[2]:"),
 * or 0. */
static size_t
reply_marker(const char *s)
{
	static const char *const words[] = {"re", "aw", "sv", "antw", NULL};

	for (int i = 0; words[i]; i++) {
		size_t n = strlen(words[i]);
		const char *p = s + n;

		if (strncasecmp(s, words[i], n) != 0)
			continue;
		if (*p == '[') {
			const char *q = p + 1;

			while (isdigit((unsigned char)*q))
				q++;
			if (*q != ']' || q == p + 1)
				continue;
			p = q + 1;
		}
		while (*p == ' ')
			p++;
		if (*p == ':')
			return (size_t)(p + 1 - s);
	}
	return 0;
}

char *
post_subject(const char *raw, size_t len, const char *prefix, int *was_encoded)
{
	char *unf, *dec, *p, *out;
	size_t plen = strlen(prefix), n;
	int reply = 0;

	*was_encoded = 0;
	unf = raw ? msg_unfold(raw, len) : strdup("");
	if (unf == NULL)
		return NULL;
	dec = fold_flatten(msg_decode_words(unf, strlen(unf), was_encoded));
	free(unf);
	if (dec == NULL)
		return NULL;
	if (plen == 0)
		return dec;
	p = dec;
	for (;;) {
		while (*p == ' ' || *p == '\t')
			p++;
		if (strncasecmp(p, prefix, plen) == 0) {
			p += plen;
		} else if ((n = reply_marker(p)) > 0) {
			reply = 1;
			p += n;
		} else {
			break;
		}
	}
	n = strlen(p);
	out = malloc(plen + n + 16);
	if (out != NULL)
		snprintf(out, plen + n + 16, "%s%s%s%s", reply ? "Re: " : "", prefix, *p ? " " : "",
		         *p ? p : (reply ? "" : ""));
	free(dec);
	return out;
}

/* --- the rewrite --- */

static int
name_in(const struct msg_header *h, const char *const *names)
{
	for (int i = 0; names[i]; i++)
		if (msg_word_eq(h->name, h->name_len, names[i]))
			return 1;
	return 0;
}

static const char *const list_owned[] = {"List-Id",
                                         "List-Post",
                                         "List-Help",
                                         "List-Subscribe",
                                         "List-Unsubscribe",
                                         "List-Owner",
                                         "List-Archive",
                                         "List-Unsubscribe-Post",
                                         "Precedence",
                                         "Return-Path",
                                         VERP_TAG_HEADER, /* a post's own tag is added later */
                                         NULL};

/* Writes name and value as a header field, value as a phrase: quoted when
 * it is ASCII, RFC 2047 words otherwise. */
static void
b_phrase(struct strbuf *b, const char *text)
{
	int ascii = 1, atoms = *text != '\0' && *text != ' ';

	for (const char *p = text; *p; p++) {
		if ((unsigned char)*p >= 0x80 || (unsigned char)*p < 32)
			ascii = 0;
		if (!isalnum((unsigned char)*p) && !strchr(" !#$%&'*+-/=?^_`{|}~", *p))
			atoms = 0;
	}
	if (ascii && atoms && text[strlen(text) - 1] != ' ') {
		strbuf_str(b, text);
	} else if (ascii) {
		strbuf_add(b, "\"", 1);
		for (const char *p = text; *p; p++) {
			if (*p == '"' || *p == '\\')
				strbuf_add(b, "\\", 1);
			strbuf_add(b, p, 1);
		}
		strbuf_add(b, "\"", 1);
	} else {
		char *enc = encode_text(text, strlen(text), "\r\n", 60);

		if (enc == NULL) {
			b->oom = 1;
			return;
		}
		strbuf_str(b, enc);
		free(enc);
	}
}

/* The List-* fields (RFC 2369, 2919), each folded: a long list name or
 * archive URL must not make a line over 998 octets. */
static void
list_fields(struct strbuf *b, const struct post_cfg *c)
{
	struct strbuf f = {0};

	strbuf_str(&f, "List-Id: ");
	b_phrase(&f, list_name(c));
	strbuf_printf(&f, " <%s.%s>", c->local, c->domain);
	b_field(b, &f, FOLD_STRUCTURED);
	if (c->policy == list_policy_announce)
		strbuf_str(b, "List-Post: NO\r\n");
	else
		strbuf_printf(b, "List-Post: <mailto:%s>\r\n", c->address);
	strbuf_printf(b, "List-Help: <mailto:%s-request@%s?subject=help>\r\n", c->local, c->domain);
	strbuf_printf(b, "List-Subscribe: <mailto:%s-join@%s>\r\n", c->local, c->domain);
	/* A personal post gets its List-Unsubscribe per copy (personal.h).
	 * The page under the HTTP base asks for the address and mails the
	 * usual confirmation: not one-click, so no List-Unsubscribe-Post. */
	if (!c->personalize) {
		strbuf_printf(&f, "List-Unsubscribe: <mailto:%s-leave@%s>", c->local, c->domain);
		if (c->http_base[0])
			strbuf_printf(&f, ", <%s/unsubscribe/%s>", c->http_base, c->address);
		b_field(b, &f, FOLD_URLS);
	}
	strbuf_printf(b, "List-Owner: <mailto:%s-owner@%s>\r\n", c->local, c->domain);
	if (c->archive_url[0]) {
		strbuf_str(&f, "List-Archive: <");
		strbuf_str(&f, c->archive_url);
		strbuf_str(&f, ">");
		b_field(b, &f, FOLD_URLS);
	}
	strbuf_str(b, "Precedence: list\r\n");
	strbuf_printf(b, "X-Loop: %s\r\n", c->address);
}

char *
post_list_fields(const struct post_cfg *c, size_t *len)
{
	static const char prec[] = "Precedence: list\r\n";
	struct strbuf b = {0};
	char *s, *p;

	list_fields(&b, c);
	if ((s = strbuf_done(&b)) == NULL)
		return NULL;
	/* The digest builder writes its own Precedence (mail/digest.h). */
	if ((p = strstr(s, prec)) != NULL)
		memmove(p, p + sizeof(prec) - 1, strlen(p + sizeof(prec) - 1) + 1);
	*len = strlen(s);
	return s;
}

const char *
post_list_name(const struct post_cfg *c)
{
	return list_name(c);
}

/* "Name via List" <list@domain> */
static void
munged_from(struct strbuf *b, const struct post_cfg *c, const char *name, const char *addr)
{
	char phrase[1200];

	struct strbuf f = {0};

	snprintf(phrase, sizeof(phrase), "%s via %s", name[0] ? name : addr, list_name(c));
	strbuf_str(&f, "From: ");
	b_phrase(&f, phrase);
	strbuf_printf(&f, " <%s>", c->address);
	b_field(b, &f, FOLD_STRUCTURED);
}

/* The Reply-To that goes out, or NULL to keep the original field. */
static void
reply_to_field(struct strbuf *b, const struct post_cfg *c, const struct msg *m, int munged,
               int *replaced)
{
	const struct msg_header *from = msg_header_get(m, "From", 0);
	const struct msg_header *rt = msg_header_get(m, "Reply-To", 0);
	char *orig = NULL;

	*replaced = 0;
	if (!munged && c->reply_to == list_reply_to_none)
		return;
	*replaced = 1;
	if (munged) {
		/* The poster's address must survive the rewrite: their own
		 * Reply-To if they set one, else their From. */
		const struct msg_header *h = rt ? rt : from;

		if (h != NULL)
			orig = msg_unfold(h->value, h->value_len);
	}
	struct strbuf f = {0};

	strbuf_str(&f, "Reply-To: ");
	if (orig && *orig)
		strbuf_str(&f, orig); /* unfolded: as long as the poster made it */
	if (c->reply_to == list_reply_to_list || c->reply_to == list_reply_to_explicit) {
		const char *a =
		    c->reply_to == list_reply_to_list ? c->address : c->reply_to_address;

		strbuf_printf(&f, "%s<%s>", orig && *orig ? ", " : "", a);
		b_field(b, &f, FOLD_STRUCTURED);
	} else if (orig && *orig) {
		b_field(b, &f, FOLD_STRUCTURED);
	} else {
		*replaced = 0; /* nothing to say: keep what there is */
		strbuf_free(&f);
	}
	free(orig);
}

enum footer_mode { FOOTER_NONE, FOOTER_INLINE, FOOTER_APPEND, FOOTER_WRAP };

/* 1 when a line of s is longer than SMTP allows (998 octets and CRLF):
 * such a footer goes quoted-printable. */
static int
has_long_line(const char *s)
{
	size_t n = 0;

	for (; *s; s++) {
		if (*s == '\r' || *s == '\n')
			n = 0;
		else if (++n > FOLD_HARD)
			return 1;
	}
	return 0;
}

static enum footer_mode
footer_mode(const struct post_cfg *c, const struct msg *m, const struct msg_ctype *ct,
            const char *cte)
{
	const char *cs;

	if (c->footer[0] == '\0')
		return FOOTER_NONE;
	if (msg_ctype_is(ct, "multipart", "signed") || msg_ctype_is(ct, "multipart", "encrypted") ||
	    msg_ctype_is(ct, "application", "pkcs7-mime") ||
	    msg_ctype_is(ct, "application", "x-pkcs7-mime"))
		return FOOTER_NONE;
	if (msg_ctype_is(ct, "multipart", NULL)) {
		const char *bd = msg_ctype_param(ct, "boundary");

		/* A multipart without a usable structure is left alone rather
		 * than guessed at. */
		if (bd == NULL || *bd == '\0' || msg_multipart_close(m->body, m->body_len, bd) < 0)
			return FOOTER_NONE;
		return msg_ctype_is(ct, "multipart", "mixed") ? FOOTER_APPEND : FOOTER_WRAP;
	}
	if (msg_ctype_is(ct, "text", "plain")) {
		if (cte && strncasecmp(cte, "base64", 6) == 0)
			return FOOTER_WRAP;
		if (has_long_line(c->footer) &&
		    !(cte && strncasecmp(cte, "quoted-printable", 16) == 0))
			return FOOTER_WRAP; /* its own part, quoted-printable */
		cs = msg_ctype_param(ct, "charset");
		if (!utf8_is_ascii(c->footer))
			/* Content-Type is written anew from its parameters:
			 * one too long for a line (RFC 2231 continuations
			 * joined) keeps the original in a part of its own. */
			for (size_t i = 0; i < ct->nparams; i++)
				if (strlen(ct->params[i].name) + strlen(ct->params[i].value) > 900)
					return FOOTER_WRAP;
		if (utf8_is_ascii(c->footer) || cs == NULL || strcasecmp(cs, "utf-8") == 0 ||
		    strcasecmp(cs, "us-ascii") == 0)
			return FOOTER_INLINE;
		return FOOTER_WRAP;
	}
	return FOOTER_WRAP;
}

/* Writes the footer, as is or quoted-printable (qp). Its variables go in
 * after the text around them was encoded: as markers for a personal post,
 * which the sender fills per copy (lists/personal.h), else as their
 * values, encoded like the text. */
static void
b_footer(struct strbuf *b, const struct post_cfg *c, int qp)
{
	const char *p = c->footer, *v;
	char page[1200], mark[PERSONAL_MARK_LEN];

	for (;;) {
		const char *var = strchr(p, FOOTER_VAR);
		size_t n = var ? (size_t)(var - p) : strlen(p);

		if (qp)
			encode_qp(b, p, n);
		else
			strbuf_add(b, p, n);
		if (var == NULL)
			return;
		if (c->personalize) {
			personal_marker(mark, var[1], qp);
			strbuf_add(b, mark, sizeof(mark));
		} else {
			if (var[1] == 'm') {
				v = c->address;
			} else {
				post_unsubscribe_page(c, page, sizeof(page));
				v = page;
			}
			if (qp)
				encode_qp(b, v, strlen(v));
			else
				strbuf_str(b, v);
		}
		p = var + 2;
	}
}

static void
footer_part(struct strbuf *b, const struct post_cfg *c, const char *boundary)
{
	int ascii = utf8_is_ascii(c->footer), qp = has_long_line(c->footer);
	size_t fl = strlen(c->footer);

	strbuf_printf(b,
	              "--%s\r\nContent-Type: text/plain; charset=%s\r\n"
	              "Content-Transfer-Encoding: %s\r\nContent-Disposition: inline\r\n\r\n",
	              boundary, ascii ? "us-ascii" : "utf-8",
	              qp      ? "quoted-printable"
	              : ascii ? "7bit"
	                      : "8bit");
	b_footer(b, c, qp);
	if (!ends_with_eol(c->footer, fl))
		strbuf_add(b, "\r\n", 2);
}

static void
make_boundary(char *out, size_t outlen, const char *raw, size_t len, const char *qid)
{
	for (unsigned i = 0;; i++) {
		snprintf(out, outlen, "=_fanmail_%s_%u", qid, i);
		if (memmem(raw, len, out, strlen(out)) == NULL)
			return;
	}
}

/* Does the header belong to the MIME description of the body? */
static int
is_content_field(const struct msg_header *h)
{
	return (h->name_len > 8 && strncasecmp(h->name, "Content-", 8) == 0) ||
	       msg_word_eq(h->name, h->name_len, "MIME-Version");
}

static void
subject_field(struct strbuf *b, const struct post_cfg *c, const struct msg *m, struct post_out *out)
{
	const struct msg_header *h = msg_header_get(m, "Subject", 0);
	struct strbuf f = {0};
	int enc = 0;
	char *s;

	if (c->subject_prefix[0] == '\0') {
		if (h != NULL) {
			b_crlf(b, h->start, h->len);
			if (!ends_with_eol(h->start, h->len))
				strbuf_add(b, "\r\n", 2);
			out->subject = fold_flatten(msg_decode_words(h->value, h->value_len, &enc));
			if (out->subject) {
				char *t = msg_unfold(out->subject, strlen(out->subject));

				free(out->subject);
				out->subject = t;
			}
		}
		return;
	}
	s = post_subject(h ? h->value : NULL, h ? h->value_len : 0, c->subject_prefix, &enc);
	if (s == NULL) {
		b->oom = 1;
		return;
	}
	/* The original may have been folded over many lines: the new field
	 * is folded again (mail/fold.h), never sent as one long line. */
	strbuf_str(&f, "Subject: ");
	if (enc || !utf8_is_ascii(s)) {
		char *e = encode_text(s, strlen(s), "\r\n", 69);

		if (e == NULL) {
			b->oom = 1;
		} else {
			strbuf_str(&f, e);
			free(e);
		}
	} else {
		strbuf_str(&f, s);
	}
	b_field(b, &f, FOLD_TEXT);
	out->subject = s;
}

/* Copies the original fields, with the list's changes. content: copy the
 * Content-* fields too. dmarc_wrap: only the fields that describe the
 * conversation go to the outer message. */
static void
copy_fields(struct strbuf *b, const struct post_cfg *c, const struct msg *m, int munge, int content,
            int wrap, struct post_out *out)
{
	static const char *const outer[] = {"To",          "Cc",         "Date", "Message-ID",
	                                    "In-Reply-To", "References", NULL};
	const struct msg_header *from = msg_header_get(m, "From", 0);
	char name[512], addr[POST_ADDR_MAX];
	int have_from = post_from(m, name, sizeof(name), addr, sizeof(addr)) == 0;
	int rt_replaced = 0, subject_done = 0;
	struct strbuf rt = {0};

	if (munge && !have_from)
		munge = 0; /* nobody to rewrite */
	reply_to_field(&rt, c, m, munge, &rt_replaced);
	for (size_t i = 0; i < m->nhdrs; i++) {
		const struct msg_header *h = &m->hdrs[i];

		if (name_in(h, list_owned))
			continue;
		if (msg_word_eq(h->name, h->name_len, "Subject")) {
			if (!subject_done)
				subject_field(b, c, m, out);
			subject_done = 1;
			continue;
		}
		if (h == from && munge) {
			munged_from(b, c, name, addr);
			if (rt.len)
				strbuf_add(b, rt.p, rt.len);
			continue;
		}
		if (msg_word_eq(h->name, h->name_len, "Reply-To") && rt_replaced)
			continue;
		if (!content && is_content_field(h))
			continue;
		if (wrap && !name_in(h, outer) && h != from)
			continue;
		b_crlf(b, h->start, h->len);
		if (!ends_with_eol(h->start, h->len))
			strbuf_add(b, "\r\n", 2);
	}
	if (!subject_done)
		subject_field(b, c, m, out);
	if (!munge && rt.len)
		strbuf_add(b, rt.p, rt.len);
	free(rt.p);
}

static void
add_date_and_id(struct strbuf *b, const struct msg *m, const struct post_env *env,
                struct post_out *out)
{
	const struct msg_header *id = msg_header_get(m, "Message-ID", 0);

	if (msg_header_get(m, "Date", 0) == NULL) {
		char d[64];
		time_t t = (time_t)env->now;
		struct tm tm;

		gmtime_r(&t, &tm);
		strftime(d, sizeof(d), "%a, %d %b %Y %H:%M:%S +0000", &tm);
		strbuf_printf(b, "Date: %s\r\n", d);
	}
	if (id == NULL) {
		char mid[300];

		snprintf(mid, sizeof(mid), "<%s.%lld@%s>", env->qid, (long long)env->now,
		         env->hostname);
		strbuf_printf(b, "Message-ID: %s\r\n", mid);
		out->message_id = strdup(mid);
	} else {
		out->message_id = msg_unfold(id->value, id->value_len);
	}
}

/* --- the poster's DKIM signatures (remove_dkim_signatures) --- */

/* The value of tag t of a DKIM-Signature (RFC 6376 3.2: tag=value pairs
 * separated by ';', whitespace and folding anywhere between), unfolded
 * into out. Returns 0, or -1 when there is no such tag. */
static int
dkim_tag(const char *v, size_t len, char t, char *out, size_t outlen)
{
	const char *p = v, *end = v + len;

	while (p < end) {
		const char *semi = memchr(p, ';', (size_t)(end - p)), *q, *e;
		size_t o = 0;

		e = semi ? semi : end;
		for (q = p; q < e && strchr(" \t\r\n", *q); q++)
			;
		if (q < e && *q == t) {
			const char *r = q + 1;

			while (r < e && strchr(" \t\r\n", *r))
				r++;
			if (r < e && *r == '=') {
				for (r++; r < e && o + 1 < outlen; r++)
					if (!strchr(" \t\r\n", *r))
						out[o++] = *r;
				out[o] = '\0';
				return 0;
			}
		}
		p = e + 1;
	}
	return -1;
}

/* Whether every field called name[0..n) is the same, in the same order,
 * in a and b. */
static int
same_fields(const struct msg *a, const struct msg *b, const char *name)
{
	size_t i = 0, j = 0;

	for (;;) {
		while (i < a->nhdrs && !msg_word_eq(a->hdrs[i].name, a->hdrs[i].name_len, name))
			i++;
		while (j < b->nhdrs && !msg_word_eq(b->hdrs[j].name, b->hdrs[j].name_len, name))
			j++;
		if (i == a->nhdrs || j == b->nhdrs)
			return i == a->nhdrs && j == b->nhdrs;
		if (a->hdrs[i].value_len != b->hdrs[j].value_len ||
		    memcmp(a->hdrs[i].value, b->hdrs[j].value, a->hdrs[i].value_len) != 0)
			return 0;
		i++, j++;
	}
}

/* Whether two bodies are the same but for their line ends (CRLF or LF:
 * what is signed is the CRLF form either way). */
static int
same_body(const char *a, size_t alen, const char *b, size_t blen)
{
	size_t i = 0, j = 0;

	while (i < alen && j < blen) {
		if (a[i] == '\r' && i + 1 < alen && a[i + 1] == '\n')
			i++;
		if (b[j] == '\r' && j + 1 < blen && b[j + 1] == '\n')
			j++;
		if (a[i++] != b[j++])
			return 0;
	}
	return i == alen && j == blen;
}

/* Whether the rewrite from in to out broke signature h: the body changed,
 * or a field it signs (h=) is not what it was, added or removed. */
static int
dkim_broken(const struct msg *in, const struct msg *out, const struct msg_header *h)
{
	char hl[2048], name[128];
	const char *p;

	if (!same_body(in->body, in->body_len, out->body, out->body_len))
		return 1;
	if (dkim_tag(h->value, h->value_len, 'h', hl, sizeof(hl)) < 0)
		return 1; /* no h=: not a signature that can verify */
	for (p = hl; *p;) {
		size_t k = strcspn(p, ":");

		if (k == 0 || k >= sizeof(name))
			return 1;
		memcpy(name, p, k);
		name[k] = '\0';
		if (!same_fields(in, out, name))
			return 1;
		p += k + (p[k] == ':');
	}
	return 0;
}

/* Removes from b (the message that goes out) the poster's DKIM-Signature
 * fields that remove_dkim_signatures says to. Returns 0 or -1. */
static int
dkim_filter(struct strbuf *b, const struct msg *in, const struct post_cfg *c, struct post_out *o)
{
	struct msg m;
	struct strbuf nb = {0};
	int drop_any = 0;
	char *keep;

	if (c->remove_dkim == list_remove_dkim_signatures_no ||
	    msg_header_get(in, "DKIM-Signature", 0) == NULL)
		return 0;
	if (msg_parse(&m, b->p, b->len) < 0)
		return -1;
	if ((keep = calloc(m.nhdrs ? m.nhdrs : 1, 1)) == NULL) {
		msg_free(&m);
		return -1;
	}
	for (size_t i = 0; i < m.nhdrs; i++) {
		const struct msg_header *h = &m.hdrs[i];

		keep[i] = 1;
		if (!msg_word_eq(h->name, h->name_len, "DKIM-Signature"))
			continue;
		if (c->remove_dkim == list_remove_dkim_signatures_yes || dkim_broken(in, &m, h)) {
			keep[i] = 0;
			drop_any = 1;
			o->dkim_removed++;
		} else {
			o->dkim_kept++;
		}
	}
	if (drop_any) {
		for (size_t i = 0; i < m.nhdrs; i++)
			if (keep[i])
				strbuf_add(&nb, m.hdrs[i].start, m.hdrs[i].len);
		strbuf_add(&nb, m.buf + m.hdr_len, m.len - m.hdr_len);
	}
	free(keep);
	msg_free(&m);
	if (!drop_any)
		return 0;
	if (nb.oom) {
		strbuf_free(&nb);
		return -1;
	}
	strbuf_free(b);
	*b = nb;
	return 0;
}

int
post_rewrite(const char *raw, size_t len, const struct post_cfg *c, const struct post_env *env,
             struct post_out *out)
{
	struct msg m;
	struct msg_ctype ct;
	const struct msg_header *h;
	char *cte = NULL, boundary[128];
	struct strbuf b = {0};
	enum footer_mode fm;
	int wrap_dmarc = env->mitigate && c->dmarc_action == list_dmarc_mitigation_wrap;
	int munge = env->mitigate && c->dmarc_action == list_dmarc_mitigation_munge;

	memset(out, 0, sizeof(*out));
	if (msg_parse(&m, raw, len) < 0)
		return -1;
	h = msg_header_get(&m, "Content-Type", 0);
	if (msg_ctype_parse(h ? h->value : "", h ? h->value_len : 0, &ct) < 0) {
		msg_free(&m);
		return -1;
	}
	cte = msg_header_text(&m, "Content-Transfer-Encoding");
	if (post_from(&m, NULL, 0, out->sender, sizeof(out->sender)) == 0 && munge)
		out->dmarc = 1;
	if (out->sender[0] == '\0')
		munge = 0;
	make_boundary(boundary, sizeof(boundary), raw, len, env->qid);

	if (wrap_dmarc) {
		/* The original goes inside untouched, so its DKIM signature
		 * still verifies; the list speaks for it outside. */
		out->dmarc = 2;
		copy_fields(&b, c, &m, 1, 0, 1, out);
		if (out->sender[0] == '\0') { /* no From to rewrite: add ours */
			struct strbuf f = {0};

			strbuf_str(&f, "From: ");
			b_phrase(&f, list_name(c));
			strbuf_printf(&f, " <%s>", c->address);
			b_field(&b, &f, FOLD_STRUCTURED);
		}
		add_date_and_id(&b, &m, env, out);
		list_fields(&b, c);
		strbuf_str(&b, "MIME-Version: 1.0\r\n");
		if (c->footer[0]) {
			out->footer = 2;
			strbuf_printf(&b, "Content-Type: multipart/mixed; boundary=\"%s\"\r\n\r\n",
			              boundary);
			strbuf_printf(&b,
			              "--%s\r\nContent-Type: message/rfc822\r\n"
			              "Content-Disposition: inline\r\n\r\n",
			              boundary);
			b_crlf(&b, raw, len);
			if (!ends_with_eol(raw, len))
				strbuf_add(&b, "\r\n", 2);
			footer_part(&b, c, boundary);
			strbuf_printf(&b, "--%s--\r\n", boundary);
		} else {
			strbuf_str(
			    &b,
			    "Content-Type: message/rfc822\r\nContent-Disposition: inline\r\n\r\n");
			b_crlf(&b, raw, len);
		}
		goto done;
	}

	fm = footer_mode(c, &m, &ct, cte);
	out->footer = fm == FOOTER_NONE ? 0 : fm == FOOTER_INLINE ? 1 : fm == FOOTER_APPEND ? 2 : 3;
	if (fm == FOOTER_INLINE && !utf8_is_ascii(c->footer)) {
		/* The body is (declared) ASCII or UTF-8: say UTF-8, 8bit. */
		copy_fields(&b, c, &m, munge, 0, 0, out);
		add_date_and_id(&b, &m, env, out);
		list_fields(&b, c);
		for (size_t i = 0; i < m.nhdrs; i++) {
			const struct msg_header *f = &m.hdrs[i];

			if (!is_content_field(f) ||
			    msg_word_eq(f->name, f->name_len, "Content-Type") ||
			    msg_word_eq(f->name, f->name_len, "Content-Transfer-Encoding"))
				continue;
			b_crlf(&b, f->start, f->len);
		}
		if (msg_header_get(&m, "MIME-Version", 0) == NULL)
			strbuf_str(&b, "MIME-Version: 1.0\r\n");
		struct strbuf f = {0};

		strbuf_str(&f, "Content-Type: text/plain; charset=utf-8");
		for (size_t i = 0; i < ct.nparams; i++)
			if (strcmp(ct.params[i].name, "charset") != 0)
				strbuf_printf(&f, "; %s=\"%s\"", ct.params[i].name,
				              ct.params[i].value);
		b_field(&b, &f, FOLD_STRUCTURED);
		if (cte && strncasecmp(cte, "quoted-printable", 16) == 0)
			strbuf_str(&b, "Content-Transfer-Encoding: quoted-printable\r\n");
		else
			strbuf_str(&b, "Content-Transfer-Encoding: 8bit\r\n");
	} else if (fm == FOOTER_WRAP) {
		copy_fields(&b, c, &m, munge, 0, 0, out);
		add_date_and_id(&b, &m, env, out);
		list_fields(&b, c);
		strbuf_printf(
		    &b, "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"%s\"\r\n",
		    boundary);
	} else {
		copy_fields(&b, c, &m, munge, 1, 0, out);
		add_date_and_id(&b, &m, env, out);
		list_fields(&b, c);
	}
	strbuf_str(&b, "\r\n");

	switch (fm) {
	case FOOTER_NONE:
		b_crlf(&b, m.body, m.body_len);
		break;
	case FOOTER_INLINE:
		b_crlf(&b, m.body, m.body_len);
		if (!ends_with_eol(m.body, m.body_len))
			strbuf_str(&b, "\r\n");
		b_footer(&b, c, cte && strncasecmp(cte, "quoted-printable", 16) == 0);
		if (!ends_with_eol(c->footer, strlen(c->footer)))
			strbuf_str(&b, "\r\n");
		break;
	case FOOTER_APPEND: {
		const char *bd = msg_ctype_param(&ct, "boundary");
		long off = msg_multipart_close(m.body, m.body_len, bd);

		b_crlf(&b, m.body, (size_t)off);
		strbuf_str(&b, "\r\n");
		footer_part(&b, c, bd);
		/* The original close delimiter and epilogue follow. */
		{
			const char *rest = m.body + off;
			size_t rl = m.body_len - (size_t)off;

			/* Skip the line end that belonged to the delimiter. */
			if (rl && *rest == '\r')
				rest++, rl--;
			if (rl && *rest == '\n')
				rest++, rl--;
			b_crlf(&b, rest, rl);
		}
		break;
	}
	case FOOTER_WRAP:
		strbuf_printf(&b, "--%s\r\n", boundary);
		for (size_t i = 0; i < m.nhdrs; i++)
			if (is_content_field(&m.hdrs[i]) &&
			    !msg_word_eq(m.hdrs[i].name, m.hdrs[i].name_len, "MIME-Version")) {
				b_crlf(&b, m.hdrs[i].start, m.hdrs[i].len);
				if (!ends_with_eol(m.hdrs[i].start, m.hdrs[i].len))
					strbuf_str(&b, "\r\n");
			}
		strbuf_str(&b, "\r\n");
		b_crlf(&b, m.body, m.body_len);
		if (!ends_with_eol(m.body, m.body_len))
			strbuf_str(&b, "\r\n");
		footer_part(&b, c, boundary);
		strbuf_printf(&b, "--%s--\r\n", boundary);
		break;
	}
done:
	free(cte);
	msg_ctype_free(&ct);
	if (!b.oom && dkim_filter(&b, &m, c, out) < 0)
		b.oom = 1;
	msg_free(&m);
	if (b.oom || (out->subject == NULL && c->subject_prefix[0]) || out->message_id == NULL) {
		free(b.p);
		post_out_free(out);
		return -1;
	}
	out->data = b.p;
	out->len = b.len;
	return 0;
}

void
post_out_free(struct post_out *out)
{
	free(out->data);
	free(out->subject);
	free(out->message_id);
	out->data = out->subject = out->message_id = NULL;
}

/* --- automatic replies --- */

int
post_may_autoreply(const struct msg *m, const char *mail_from)
{
	char *v;
	int ok = 1;

	if (mail_from == NULL || *mail_from == '\0')
		return 0;
	if ((v = msg_header_text(m, "Auto-Submitted")) != NULL) {
		if (strncasecmp(v, "no", 2) != 0 || (v[2] && v[2] != ' ' && v[2] != ';'))
			ok = 0;
		free(v);
	}
	if ((v = msg_header_text(m, "Precedence")) != NULL) {
		if (strcasecmp(v, "bulk") == 0 || strcasecmp(v, "junk") == 0 ||
		    strcasecmp(v, "list") == 0)
			ok = 0;
		free(v);
	}
	return ok;
}

char *
post_reject_notice(const struct post_cfg *c, const char *to, const char *reason,
                   const struct msg *orig, const struct post_env *env, size_t *len)
{
	struct strbuf b = {0};
	char d[64], *subj = msg_header_text(orig, "Subject");
	time_t t = (time_t)env->now;
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(d, sizeof(d), "%a, %d %b %Y %H:%M:%S +0000", &tm);
	strbuf_printf(&b, "From: %s-owner@%s\r\n", c->local, c->domain);
	strbuf_printf(&b, "To: <%s>\r\n", to);
	strbuf_printf(&b, "Subject: Your post to %s was not accepted\r\n", c->address);
	strbuf_printf(&b, "Date: %s\r\n", d);
	strbuf_printf(&b, "Message-ID: <%s.reject.%lld@%s>\r\n", env->qid, (long long)env->now,
	              env->hostname);
	strbuf_str(&b, "Auto-Submitted: auto-replied\r\n");
	strbuf_str(&b, "Precedence: list\r\n");
	strbuf_printf(&b, "X-Loop: %s\r\n", c->address);
	strbuf_str(&b, "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
	               "Content-Transfer-Encoding: 8bit\r\n\r\n");
	strbuf_printf(&b, "Your message to %s was not distributed: %s.\r\n\r\n", c->address,
	              reason);
	strbuf_printf(
	    &b, "If you think this is a mistake, write to the list owners at %s-owner@%s.\r\n",
	    c->local, c->domain);
	strbuf_str(&b, "\r\nThe header of your message follows.\r\n\r\n");
	for (size_t i = 0; i < orig->nhdrs; i++) {
		strbuf_str(&b, "> ");
		b_crlf(&b, orig->hdrs[i].start, orig->hdrs[i].len);
		if (!ends_with_eol(orig->hdrs[i].start, orig->hdrs[i].len))
			strbuf_str(&b, "\r\n");
	}
	free(subj);
	if (b.oom) {
		free(b.p);
		return NULL;
	}
	*len = b.len;
	return b.p;
}
