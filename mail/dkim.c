/*
 * dkim.c - DKIM signing with OpenSSL: the relaxed canonicalizations, the
 * header hash and the signature per copy, the body hash once per body. See
 * dkim.h for why this is not libopendkim, and for the use.
 */
#include "mail/dkim.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RSA_MIN_BITS 1024
#define RSA_MAX_BITS 8192
#define SIG_MAX (RSA_MAX_BITS / 8)
/* A header line we write stays within this where the words allow. */
#define SOFT 78

struct dkim_key {
	EVP_PKEY *pkey;
	enum dkim_alg alg;
	uint64_t id; /* unique per load: what a signer's context cache keys on */
	char domain[DKIM_DOMAIN_MAX + 1];
	char selector[DKIM_SELECTOR_MAX + 1];
};

static atomic_uint_fast64_t key_ids;

/* The fields h= may name, in the order it names them. */
static const char *const signed_names[] = {
    "from",
    "to",
    "cc",
    "subject",
    "date",
    "message-id",
    "in-reply-to",
    "references",
    "mime-version",
    "content-type",
    "content-transfer-encoding",
    "list-id",
    "list-post",
    "list-unsubscribe",
    "list-unsubscribe-post",
    "list-archive",
    "list-help",
    "list-subscribe",
    "list-owner",
    "reply-to",
    "sender",
};
#define NSIGNED (sizeof(signed_names) / sizeof(signed_names[0]))

/* One header field of the copy: its text up to (not including) the line
 * end that closes it, and which of signed_names it is (-1: none). */
struct field {
	const char *p;
	size_t len;
	int which;
};

/* The signing contexts made for one key, kept for the next copies. */
struct keyctx {
	const struct dkim_key *key;
	uint64_t id;
	EVP_PKEY_CTX *pctx; /* RSA: initialized once for PKCS#1 v1.5 with SHA-256 */
	EVP_MD_CTX *mctx;   /* Ed25519: one-shot DigestSign */
};
#define KEYCTX_MAX 8

struct dkim_signer {
	EVP_MD *sha256;
	EVP_MD_CTX *md;
	struct field *f;
	size_t nf, fcap;
	struct keyctx kc[KEYCTX_MAX];
	unsigned next_evict;
	unsigned char sig[SIG_MAX];
	char b64[4 * (SIG_MAX / 3 + 1) + 1];
};

static void
set_err(char err[DKIM_ERR_MAX], const char *what)
{
	unsigned long e = ERR_get_error();
	char ossl[160];

	if (e != 0) {
		ERR_error_string_n(e, ossl, sizeof(ossl));
		snprintf(err, DKIM_ERR_MAX, "%s (%s)", what, ossl);
	} else {
		snprintf(err, DKIM_ERR_MAX, "%s", what);
	}
	ERR_clear_error();
}

static int
is_wsp(int c)
{
	return c == ' ' || c == '\t';
}

static int
lower(int c)
{
	return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

/* A domain or selector: labels of letters, digits, '-' and '_', joined by
 * single dots: nothing that could end a tag or break the field. */
static int
check_name(const char *s, size_t max)
{
	size_t n = strlen(s);

	if (n == 0 || n > max || s[0] == '.' || s[n - 1] == '.')
		return -1;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '.' && s[i + 1] == '.')
			return -1;
		if (!(c == '.' || c == '-' || c == '_' || (c >= '0' && c <= '9') ||
		      (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')))
			return -1;
	}
	return 0;
}

int
dkim_key_load(const char *pem, size_t len, const char *domain, const char *selector,
              struct dkim_key **out, char err[DKIM_ERR_MAX])
{
	struct dkim_key *k;
	EVP_PKEY *pkey;
	BIO *bio;

	*out = NULL;
	if (check_name(domain, DKIM_DOMAIN_MAX) < 0) {
		snprintf(err, DKIM_ERR_MAX, "not a domain to sign for: \"%.64s\"", domain);
		return -1;
	}
	if (check_name(selector, DKIM_SELECTOR_MAX) < 0) {
		snprintf(err, DKIM_ERR_MAX, "not a selector: \"%.64s\"", selector);
		return -1;
	}
	if (len > INT_MAX || (bio = BIO_new_mem_buf(pem, (int)len)) == NULL) {
		set_err(err, "cannot read the key");
		return -1;
	}
	pkey = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
	BIO_free(bio);
	if (pkey == NULL) {
		set_err(err, "not a PEM private key");
		return -1;
	}
	if ((k = calloc(1, sizeof(*k))) == NULL) {
		EVP_PKEY_free(pkey);
		snprintf(err, DKIM_ERR_MAX, "out of memory");
		return -1;
	}
	if (EVP_PKEY_is_a(pkey, "RSA")) {
		int bits = EVP_PKEY_get_bits(pkey);
		if (bits < RSA_MIN_BITS || bits > RSA_MAX_BITS) {
			snprintf(err, DKIM_ERR_MAX,
			         "an RSA key of %d bits; DKIM needs %d to %d (2048 advised)", bits,
			         RSA_MIN_BITS, RSA_MAX_BITS);
			goto fail;
		}
		k->alg = DKIM_RSA_SHA256;
	} else if (EVP_PKEY_is_a(pkey, "ED25519")) {
		k->alg = DKIM_ED25519_SHA256;
	} else {
		snprintf(err, DKIM_ERR_MAX, "a %s key; DKIM signs with RSA or Ed25519",
		         EVP_PKEY_get0_type_name(pkey) ? EVP_PKEY_get0_type_name(pkey) : "unknown");
		goto fail;
	}
	k->pkey = pkey;
	k->id = atomic_fetch_add(&key_ids, 1) + 1;
	snprintf(k->domain, sizeof(k->domain), "%s", domain);
	snprintf(k->selector, sizeof(k->selector), "%s", selector);
	*out = k;
	return 0;
fail:
	EVP_PKEY_free(pkey);
	free(k);
	return -1;
}

void
dkim_key_free(struct dkim_key *k)
{
	if (k == NULL)
		return;
	EVP_PKEY_free(k->pkey);
	free(k);
}

enum dkim_alg
dkim_key_alg(const struct dkim_key *k)
{
	return k->alg;
}

const char *
dkim_key_domain(const struct dkim_key *k)
{
	return k->domain;
}

const char *
dkim_key_selector(const struct dkim_key *k)
{
	return k->selector;
}

/* ---- body ---- */

static void
bh_flush(struct dkim_bh *h)
{
	if (h->n > 0 && h->md != NULL)
		EVP_DigestUpdate(h->md, h->buf, h->n);
	h->n = 0;
}

static void
bh_put(struct dkim_bh *h, unsigned char c)
{
	if (h->n == sizeof(h->buf))
		bh_flush(h);
	h->buf[h->n++] = c;
}

int
dkim_bh_init(struct dkim_bh *h)
{
	memset(h, 0, offsetof(struct dkim_bh, buf));
	if ((h->md = EVP_MD_CTX_new()) == NULL)
		return -1;
	if (!EVP_DigestInit_ex(h->md, EVP_sha256(), NULL)) {
		EVP_MD_CTX_free(h->md);
		h->md = NULL;
		return -1;
	}
	return 0;
}

/* Writes what a content octet c releases: the line ends held back (they
 * were not the trailing ones), the pending WSP as one SP, then c. */
static void
bh_content(struct dkim_bh *h, unsigned char c)
{
	for (; h->crlfs > 0; h->crlfs--) {
		bh_put(h, '\r');
		bh_put(h, '\n');
	}
	if (h->wsp)
		bh_put(h, ' ');
	h->wsp = 0;
	bh_put(h, c);
	h->any = 1;
}

void
dkim_bh_add(struct dkim_bh *h, const void *p, size_t len)
{
	const unsigned char *s = p;

	for (size_t i = 0; i < len; i++) {
		unsigned char c = s[i];
		if (h->cr) {
			h->cr = 0;
			if (c == '\n') {
				/* A line end: WSP before it goes; the CRLF waits
				 * until something follows it. */
				h->wsp = 0;
				h->crlfs++;
				continue;
			}
			bh_content(h, '\r'); /* a lone CR is content */
		}
		if (c == '\r')
			h->cr = 1;
		else if (is_wsp(c))
			h->wsp = 1;
		else
			bh_content(h, c);
	}
}

int
dkim_bh_end(struct dkim_bh *h, char bh[DKIM_BH_SIZE])
{
	unsigned char d[EVP_MAX_MD_SIZE];
	unsigned dl = 0;
	int rc = -1;

	if (h->cr) {
		h->cr = 0;
		bh_content(h, '\r');
	}
	/* A non-empty body ends in exactly one CRLF (added when its last
	 * line had none); an empty one stays empty (RFC 6376 3.4.4). */
	if (h->any) {
		h->crlfs = 0;
		h->wsp = 0;
		bh_put(h, '\r');
		bh_put(h, '\n');
	}
	bh_flush(h);
	if (h->md != NULL && EVP_DigestFinal_ex(h->md, d, &dl) && dl == 32) {
		EVP_EncodeBlock((unsigned char *)bh, d, 32);
		rc = 0;
	}
	dkim_bh_free(h);
	return rc;
}

int
dkim_bh_copy(struct dkim_bh *to, const struct dkim_bh *from)
{
	memcpy(to, from, sizeof(*to));
	if ((to->md = EVP_MD_CTX_new()) == NULL)
		return -1;
	if (!EVP_MD_CTX_copy_ex(to->md, from->md)) {
		EVP_MD_CTX_free(to->md);
		to->md = NULL;
		return -1;
	}
	return 0;
}

void
dkim_bh_free(struct dkim_bh *h)
{
	EVP_MD_CTX_free(h->md);
	h->md = NULL;
}

int
dkim_body_hash_body(const char *body, size_t len, char bh[DKIM_BH_SIZE])
{
	struct dkim_bh h;

	if (dkim_bh_init(&h) < 0)
		return -1;
	dkim_bh_add(&h, body, len);
	return dkim_bh_end(&h, bh);
}

/* Where the body of msg starts: after the empty line that ends the header
 * (len when there is none). */
static size_t
body_start(const char *msg, size_t len)
{
	size_t i = 0;

	while (i < len) {
		const char *nl = memchr(msg + i, '\n', len - i);
		size_t eol = nl ? (size_t)(nl - msg) : len;
		if (eol == i || (eol == i + 1 && msg[i] == '\r'))
			return eol < len ? eol + 1 : len;
		i = eol + 1;
	}
	return len;
}

int
dkim_body_hash(const char *msg, size_t len, char bh[DKIM_BH_SIZE])
{
	size_t b = body_start(msg, len);

	return dkim_body_hash_body(msg + b, len - b, bh);
}

/* ---- header ---- */

/* A small buffer in front of the header hash (or of a strbuf, to show the
 * canonical form). */
struct hbuf {
	EVP_MD_CTX *md;
	struct strbuf *sb;
	size_t n;
	unsigned char buf[1024];
};

static void
hb_flush(struct hbuf *b)
{
	if (b->n > 0 && b->sb != NULL)
		strbuf_add(b->sb, b->buf, b->n);
	else if (b->n > 0)
		EVP_DigestUpdate(b->md, b->buf, b->n);
	b->n = 0;
}

static void
hb_put(struct hbuf *b, unsigned char c)
{
	if (b->n == sizeof(b->buf))
		hb_flush(b);
	b->buf[b->n++] = c;
}

/* Hashes field p[0..len) in relaxed form (RFC 6376 3.4.2): the name in
 * lower case, no WSP around the colon, the value unfolded with every run of
 * WSP (folds included) one SP, none at its ends; then CRLF if crlf. */
static void
canon_field(struct hbuf *b, const char *p, size_t len, int crlf)
{
	const char *colon = memchr(p, ':', len);
	size_t nl = colon ? (size_t)(colon - p) : len, i;
	int pending = 0, started = 0;

	while (nl > 0 && is_wsp((unsigned char)p[nl - 1]))
		nl--;
	for (i = 0; i < nl; i++)
		hb_put(b, (unsigned char)lower((unsigned char)p[i]));
	hb_put(b, ':');
	for (i = colon ? (size_t)(colon - p) + 1 : len; i < len; i++) {
		unsigned char c = (unsigned char)p[i];
		if (is_wsp(c) || c == '\r' || c == '\n') {
			pending = started;
			continue;
		}
		if (pending)
			hb_put(b, ' ');
		pending = 0;
		started = 1;
		hb_put(b, c);
	}
	if (crlf) {
		hb_put(b, '\r');
		hb_put(b, '\n');
	}
}

void
dkim_canon_field(const char *field, size_t len, struct strbuf *out)
{
	struct hbuf hb = {.sb = out};

	canon_field(&hb, field, len, 1);
	hb_flush(&hb);
}

static int
which_name(const char *p, size_t n)
{
	for (size_t i = 0; i < NSIGNED; i++) {
		const char *s = signed_names[i];
		size_t j;
		for (j = 0; j < n && s[j] != '\0' && lower((unsigned char)p[j]) == s[j]; j++)
			;
		if (j == n && s[j] == '\0')
			return (int)i;
	}
	return -1;
}

/* Adds the fields of the header p[0..len) to s->f; stops at the empty line.
 * Returns 0 or -1 (out of memory). */
static int
add_fields(struct dkim_signer *s, const char *p, size_t len)
{
	size_t i = 0;

	while (i < len) {
		size_t start = i, end;
		const char *colon;
		/* A field runs over its continuation lines (those that start
		 * with WSP). */
		for (;;) {
			const char *nl = memchr(p + i, '\n', len - i);
			size_t eol = nl ? (size_t)(nl - p) : len;
			end = eol > i && p[eol - 1] == '\r' ? eol - 1 : eol;
			i = eol < len ? eol + 1 : len;
			if (i >= len || !is_wsp((unsigned char)p[i]))
				break;
		}
		if (end == start)
			break; /* the empty line */
		if (s->nf == s->fcap) {
			size_t cap = s->fcap ? s->fcap * 2 : 64;
			struct field *nf = realloc(s->f, cap * sizeof(*nf));
			if (nf == NULL)
				return -1;
			s->f = nf;
			s->fcap = cap;
		}
		colon = memchr(p + start, ':', end - start);
		s->f[s->nf].p = p + start;
		s->f[s->nf].len = end - start;
		s->f[s->nf].which = -1;
		if (colon != NULL) {
			size_t n = (size_t)(colon - (p + start));
			while (n > 0 && is_wsp((unsigned char)p[start + n - 1]))
				n--;
			s->f[s->nf].which = which_name(p + start, n);
		}
		s->nf++;
	}
	return 0;
}

struct dkim_signer *
dkim_signer_new(void)
{
	struct dkim_signer *s = calloc(1, sizeof(*s));

	if (s == NULL)
		return NULL;
	s->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
	s->md = EVP_MD_CTX_new();
	if (s->sha256 == NULL || s->md == NULL) {
		dkim_signer_free(s);
		return NULL;
	}
	return s;
}

static void
keyctx_clear(struct keyctx *c)
{
	EVP_PKEY_CTX_free(c->pctx);
	EVP_MD_CTX_free(c->mctx);
	memset(c, 0, sizeof(*c));
}

void
dkim_signer_free(struct dkim_signer *s)
{
	if (s == NULL)
		return;
	for (size_t i = 0; i < KEYCTX_MAX; i++)
		keyctx_clear(&s->kc[i]);
	EVP_MD_CTX_free(s->md);
	EVP_MD_free(s->sha256);
	free(s->f);
	free(s);
}

/* The contexts that sign with k, made on first use and kept (a few keys'
 * worth; the id tells a freed key's from a new one at the same address). */
static struct keyctx *
keyctx_get(struct dkim_signer *s, const struct dkim_key *k)
{
	struct keyctx *c = NULL;

	for (size_t i = 0; i < KEYCTX_MAX; i++)
		if (s->kc[i].key == k && s->kc[i].id == k->id)
			return &s->kc[i];
	for (size_t i = 0; i < KEYCTX_MAX && c == NULL; i++)
		if (s->kc[i].key == NULL)
			c = &s->kc[i];
	if (c == NULL) {
		c = &s->kc[s->next_evict];
		s->next_evict = (s->next_evict + 1) % KEYCTX_MAX;
	}
	keyctx_clear(c);
	if (k->alg == DKIM_RSA_SHA256) {
		c->pctx = EVP_PKEY_CTX_new_from_pkey(NULL, k->pkey, NULL);
		if (c->pctx == NULL || EVP_PKEY_sign_init(c->pctx) <= 0 ||
		    EVP_PKEY_CTX_set_rsa_padding(c->pctx, RSA_PKCS1_PADDING) <= 0 ||
		    EVP_PKEY_CTX_set_signature_md(c->pctx, s->sha256) <= 0)
			goto fail;
	} else {
		/* PureEdDSA: no digest of its own; the message it signs is
		 * the SHA-256 of the header data (RFC 8463 section 3). */
		c->mctx = EVP_MD_CTX_new();
		if (c->mctx == NULL || !EVP_DigestSignInit(c->mctx, NULL, NULL, NULL, k->pkey))
			goto fail;
	}
	c->key = k;
	c->id = k->id;
	return c;
fail:
	keyctx_clear(c);
	return NULL;
}

/* Signs the 32-octet hash d with k into s->sig. Returns its length, or 0. */
static size_t
sign_hash(struct dkim_signer *s, const struct dkim_key *k, const unsigned char *d)
{
	struct keyctx *c = keyctx_get(s, k);
	size_t n = sizeof(s->sig);

	if (c == NULL)
		return 0;
	if (k->alg == DKIM_RSA_SHA256) {
		if (EVP_PKEY_sign(c->pctx, s->sig, &n, d, 32) <= 0)
			n = 0;
	} else if (!EVP_DigestSign(c->mctx, s->sig, &n, d, 32)) {
		n = 0;
	}
	if (n == 0)
		keyctx_clear(c); /* made again next time, in case it is spent */
	return n;
}

/* Folding what we write: tokens go on the line while it stays within SOFT,
 * else on a new line that starts with one SP. */
struct fold {
	struct strbuf *out;
	size_t col;
};

static void
fold_tok(struct fold *f, const char *s, size_t n, int space)
{
	if (f->col + (space ? 1 : 0) + n > SOFT && f->col > 1) {
		strbuf_add(f->out, "\r\n ", 3);
		f->col = 1;
	} else if (space) {
		strbuf_add(f->out, " ", 1);
		f->col++;
	}
	strbuf_add(f->out, s, n);
	f->col += n;
}

/* A whole tag, "name=value;", kept on one line. */
static void
fold_tag(struct fold *f, const char *name, const char *value)
{
	char tok[DKIM_DOMAIN_MAX + 64];
	int n = snprintf(tok, sizeof(tok), "%s=%s;", name, value);

	fold_tok(f, tok, (size_t)n < sizeof(tok) ? (size_t)n : sizeof(tok) - 1, 1);
}

/* A base64 value (split anywhere: FWS inside b= is ignored). */
static void
fold_b64(struct fold *f, const char *s, size_t n)
{
	while (n > 0) {
		size_t room = f->col < SOFT ? SOFT - f->col : 0, k;
		if (room == 0) {
			strbuf_add(f->out, "\r\n ", 3);
			f->col = 1;
			continue;
		}
		k = n < room ? n : room;
		strbuf_add(f->out, s, k);
		f->col += k;
		s += k;
		n -= k;
	}
}

int
dkim_sign(struct dkim_signer *s, const struct dkim_key *const *keys, size_t nkeys,
          const char *extra, const char *msg, size_t len, const char *bh_in, time_t now,
          struct strbuf *out, char err[DKIM_ERR_MAX])
{
	unsigned count[NSIGNED] = {0};
	char bh[DKIM_BH_SIZE], tbuf[32];
	size_t out0 = out->len, hdr_end;

	s->nf = 0;
	if (extra != NULL && add_fields(s, extra, strlen(extra)) < 0)
		goto oom;
	hdr_end = body_start(msg, len);
	if (add_fields(s, msg, hdr_end) < 0)
		goto oom;
	for (size_t i = 0; i < s->nf; i++)
		if (s->f[i].which >= 0)
			count[s->f[i].which]++;
	if (count[0] == 0) {
		snprintf(err, DKIM_ERR_MAX, "the message has no From field to sign");
		return -1;
	}
	if (bh_in == NULL) {
		if (dkim_body_hash_body(msg + hdr_end, len - hdr_end, bh) < 0)
			goto oom;
		bh_in = bh;
	}
	snprintf(tbuf, sizeof(tbuf), "%lld", (long long)now);

	for (size_t ki = 0; ki < nkeys; ki++) {
		const struct dkim_key *k = keys[ki];
		struct fold f = {out, 0};
		struct hbuf hb;
		unsigned char d[EVP_MAX_MD_SIZE];
		unsigned dl = 0;
		size_t start = out->len, siglen;
		int first = 1;
		size_t nh = 1; /* the names in h= */

		for (size_t n = 0; n < NSIGNED; n++)
			nh += count[n];

		strbuf_str(out, "DKIM-Signature:");
		f.col = 15;
		fold_tag(&f, "v", "1");
		fold_tag(&f, "a", k->alg == DKIM_RSA_SHA256 ? "rsa-sha256" : "ed25519-sha256");
		fold_tag(&f, "c", "relaxed/relaxed");
		fold_tag(&f, "d", k->domain);
		fold_tag(&f, "s", k->selector);
		fold_tag(&f, "t", tbuf);
		/* h=: each name as often as it appears, From once more, each
		 * with the colon (or the semicolon) after it. A fold may follow
		 * any colon. */
		for (size_t n = 0; n < NSIGNED; n++) {
			unsigned times = count[n] + (n == 0);
			for (unsigned t = 0; t < times; t++) {
				char tok[64];
				int tl = snprintf(tok, sizeof(tok), "%s%s%c", first ? "h=" : "",
				                  signed_names[n], --nh == 0 ? ';' : ':');
				fold_tok(&f, tok, (size_t)tl, first);
				first = 0;
			}
		}
		fold_tag(&f, "bh", bh_in);
		fold_tok(&f, "b=", 2, 1);
		if (out->oom)
			goto oom;

		/* The header hash: the signed fields bottom-up, then this
		 * field with b= empty and no final CRLF (RFC 6376 3.7). */
		hb.md = s->md;
		hb.sb = NULL;
		hb.n = 0;
		if (!EVP_DigestInit_ex(s->md, s->sha256, NULL))
			goto ossl;
		for (size_t n = 0; n < NSIGNED; n++) {
			if (count[n] == 0)
				continue;
			for (size_t i = s->nf; i-- > 0;)
				if (s->f[i].which == (int)n)
					canon_field(&hb, s->f[i].p, s->f[i].len, 1);
		}
		canon_field(&hb, out->p + start, out->len - start, 0);
		hb_flush(&hb);
		if (!EVP_DigestFinal_ex(s->md, d, &dl) || dl != 32)
			goto ossl;
		if ((siglen = sign_hash(s, k, d)) == 0)
			goto ossl;
		EVP_EncodeBlock((unsigned char *)s->b64, s->sig, (int)siglen);
		fold_b64(&f, s->b64, strlen(s->b64));
		strbuf_add(out, "\r\n", 2);
		if (out->oom)
			goto oom;
	}
	return 0;
ossl:
	set_err(err, "signing failed");
	strbuf_truncate(out, out0);
	return -1;
oom:
	snprintf(err, DKIM_ERR_MAX, "out of memory");
	strbuf_truncate(out, out0);
	return -1;
}
