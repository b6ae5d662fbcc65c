/*
 * deliver_dkim.c - the signing keys of delivery and the signing of one
 * message form (see deliver_dkim.h).
 */
#include "server/deliver_dkim.h"

#include "db/dkim.h"
#include "db/lists.h"
#include "db/queue.h"
#include "mail/strbuf.h"
#include "server/log.h"
#include "server/smtp_out.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

void
dkc_init(struct dkim_cache *c)
{
	pthread_mutex_init(&c->mu, NULL);
	c->sets = NULL;
	c->gen = 1;
}

void
dkc_new_scan(struct dkim_cache *c)
{
	pthread_mutex_lock(&c->mu);
	c->gen++;
	pthread_mutex_unlock(&c->mu);
}

static void
ks_free(struct dkim_keyset *ks)
{
	for (size_t i = 0; i < ks->n; i++)
		dkim_key_free(ks->own[i]);
	free(ks->stamp);
	free(ks);
}

void
dkc_ref(struct dkim_keyset *ks)
{
	pthread_mutex_lock(&ks->cache->mu);
	ks->refs++;
	pthread_mutex_unlock(&ks->cache->mu);
}

void
dkc_put(struct dkim_keyset *ks)
{
	int last;

	if (ks == NULL)
		return;
	pthread_mutex_lock(&ks->cache->mu);
	last = --ks->refs == 0;
	pthread_mutex_unlock(&ks->cache->mu);
	if (last)
		ks_free(ks);
}

void
dkc_free_all(struct dkim_cache *c)
{
	struct dkim_keyset *ks, *next;

	for (ks = c->sets; ks != NULL; ks = next) {
		next = ks->next;
		dkc_put(ks);
	}
	c->sets = NULL;
	pthread_mutex_destroy(&c->mu);
}

/* --- reading a domain's keys --- */

struct active {
	struct strbuf stamp;
	int n;
	char sel[2][DKIM_SELECTOR_MAX + 1];
	char alg[2][8];
	char *pem[2];
	size_t pemlen[2];
};

static int
on_active(void *arg, const char *selector, const char *algorithm, const char *pem, size_t pemlen)
{
	struct active *a = arg;

	strbuf_printf(&a->stamp, "%s %s %zu:", selector, algorithm, pemlen);
	strbuf_add(&a->stamp, pem, pemlen);
	if (a->n >= 2)
		return 0;
	snprintf(a->sel[a->n], sizeof(a->sel[0]), "%s", selector);
	snprintf(a->alg[a->n], sizeof(a->alg[0]), "%s", algorithm);
	if ((a->pem[a->n] = malloc(pemlen + 1)) != NULL) {
		memcpy(a->pem[a->n], pem, pemlen);
		a->pem[a->n][pemlen] = '\0';
		a->pemlen[a->n] = pemlen;
	}
	a->n++;
	return 0;
}

/* The keyset of domain as the store has it now: the cached one when
 * unchanged. NULL when the store cannot be read (the cached one is kept). */
static struct dkim_keyset *
domain_keys(struct dkim_cache *c, struct db *db, const char *domain, struct dkim_keyset *old)
{
	struct active a = {0};
	struct dkim_keyset *ks;

	if (db_dkim_active(db, domain, on_active, &a) < 0 || a.stamp.oom) {
		log_warnx("dkim: reading the keys of %s: %s", domain, db_errmsg(db));
		goto fail;
	}
	if (old != NULL && a.stamp.len == old->stamplen &&
	    (a.stamp.len == 0 || memcmp(a.stamp.p, old->stamp, a.stamp.len) == 0)) {
		ks = old;
		goto out;
	}
	if ((ks = calloc(1, sizeof(*ks))) == NULL)
		goto fail;
	snprintf(ks->domain, sizeof(ks->domain), "%s", domain);
	ks->cache = c;
	ks->refs = 1; /* the cache's */
	ks->stamplen = a.stamp.len;
	ks->stamp = a.stamp.len ? strbuf_done(&a.stamp) : NULL;
	for (int i = 0; i < a.n; i++) {
		char err[DKIM_ERR_MAX];
		struct dkim_key *k;
		if (a.pem[i] == NULL)
			continue;
		if (dkim_key_load(a.pem[i], a.pemlen[i], domain, a.sel[i], &k, err) < 0) {
			/* Once per key: a changed key makes a new keyset. */
			log_warnx("dkim: the %s key %s of %s cannot sign, mail goes unsigned: %s",
			          a.alg[i], a.sel[i], domain, err);
			continue;
		}
		ks->own[ks->n] = k;
		ks->keys[ks->n] = k;
		ks->n++;
	}
	if (ks->n > 0 && (old == NULL || old->n == 0))
		log_info("dkim: mail of %s is signed (%zu key%s: %s%s%s)", domain, ks->n,
		         ks->n > 1 ? "s" : "", dkim_key_selector(ks->keys[0]),
		         ks->n > 1 ? ", " : "", ks->n > 1 ? dkim_key_selector(ks->keys[1]) : "");
	else if (ks->n > 0)
		log_info("dkim: the keys of %s changed: now %s%s%s", domain,
		         dkim_key_selector(ks->keys[0]), ks->n > 1 ? ", " : "",
		         ks->n > 1 ? dkim_key_selector(ks->keys[1]) : "");
	else if (old != NULL && old->n > 0)
		log_info("dkim: %s has no active key any more: its mail goes unsigned", domain);
out:
	for (int i = 0; i < a.n; i++) {
		/* The PEM text of a private key is not left in freed memory. */
		if (a.pem[i] != NULL)
			explicit_bzero(a.pem[i], a.pemlen[i]);
		free(a.pem[i]);
	}
	if (a.stamp.p != NULL)
		explicit_bzero(a.stamp.p, a.stamp.len);
	strbuf_free(&a.stamp);
	return ks;
fail:
	ks = NULL;
	goto out;
}

/* The keyset of domain (no reference taken), read again once per scan. */
static struct dkim_keyset *
lookup(struct dkim_cache *c, struct db *db, const char *domain)
{
	struct dkim_keyset *ks, **pp, *fresh;
	uint64_t gen;

	pthread_mutex_lock(&c->mu);
	gen = c->gen;
	for (pp = &c->sets; (ks = *pp) != NULL; pp = &ks->next)
		if (strcasecmp(ks->domain, domain) == 0)
			break;
	pthread_mutex_unlock(&c->mu);
	if (ks != NULL && ks->gen == gen)
		return ks;
	/* Only the reader thread changes the list: no one else can have
	 * added or replaced this domain's entry meanwhile. */
	if ((fresh = domain_keys(c, db, domain, ks)) == NULL)
		return ks;
	fresh->gen = gen;
	if (fresh == ks)
		return ks;
	pthread_mutex_lock(&c->mu);
	if (ks != NULL) {
		fresh->next = ks->next;
		*pp = fresh;
	} else {
		fresh->next = c->sets;
		c->sets = fresh;
	}
	pthread_mutex_unlock(&c->mu);
	dkc_put(ks); /* the cache's reference to the replaced one */
	return fresh;
}

/* The domain of the first From: field of msg's header, lower-cased. */
static int
from_domain(const char *msg, size_t len, char *out, size_t outlen)
{
	size_t i = 0;

	while (i < len) {
		size_t end = i;
		while (end < len && msg[end] != '\n')
			end++;
		if (end == i || (end == i + 1 && msg[i] == '\r'))
			return -1; /* the end of the header */
		if (end - i > 5 && strncasecmp(msg + i, "From:", 5) == 0) {
			/* The field with its continuation lines. */
			size_t fend = end, at = 0, k = 0;
			while (fend + 1 < len && (msg[fend + 1] == ' ' || msg[fend + 1] == '\t')) {
				fend++;
				while (fend < len && msg[fend] != '\n')
					fend++;
			}
			for (size_t j = i + 5; j < fend; j++)
				if (msg[j] == '@')
					at = j + 1;
			if (at == 0)
				return -1;
			while (
			    at < fend && k + 1 < outlen &&
			    (isalnum((unsigned char)msg[at]) || msg[at] == '.' || msg[at] == '-'))
				out[k++] = (char)tolower((unsigned char)msg[at++]);
			out[k] = '\0';
			return k > 0 ? 0 : -1;
		}
		i = end + 1;
	}
	return -1;
}

struct dkim_keyset *
dkc_get(struct dkim_cache *c, struct db *db, const struct db_qmsg *qm, const char *body, size_t len)
{
	struct dkim_keyset *ks = NULL;
	char dom[DKIM_DOMAIN_MAX + 1];
	const char *at;

	if (qm->list_id > 0) {
		struct db_list l;
		if (db_list_get(db, qm->list_id, &l) == 0)
			ks = lookup(c, db, l.domain);
	} else if ((at = strrchr(qm->env_from, '@')) != NULL && at[1] != '\0') {
		snprintf(dom, sizeof(dom), "%s", at + 1);
		for (char *p = dom; *p; p++)
			*p = (char)tolower((unsigned char)*p);
		ks = lookup(c, db, dom);
	} else if (from_domain(body, len, dom, sizeof(dom)) == 0) {
		/* A DSN (null sender): From: is MAILER-DAEMON@hostname; the
		 * host's parent domain (down to two labels) may sign. */
		const char *d = dom;
		for (;;) {
			const char *dot = strchr(d, '.');
			if ((ks = lookup(c, db, d)) != NULL && ks->n > 0)
				break;
			if (dot == NULL || strchr(dot + 1, '.') == NULL)
				break;
			d = dot + 1;
		}
	}
	if (ks == NULL || ks->n == 0)
		return NULL;
	dkc_ref(ks);
	return ks;
}

/* --- signing --- */

/* msg with every line ending CRLF (the form DKIM canonicalizes and the
 * form smtp_out_prepare_body sends): NULL when it is so already. */
static char *
crlf_copy(const char *msg, size_t len, size_t *outlen, int *oom)
{
	size_t extra = 0;
	char *out, *o;

	*oom = 0;
	for (size_t i = 0; i < len; i++) {
		if (msg[i] == '\r' && (i + 1 == len || msg[i + 1] != '\n'))
			extra++;
		else if (msg[i] == '\n' && (i == 0 || msg[i - 1] != '\r'))
			extra++;
	}
	if (extra == 0)
		return NULL;
	if ((out = malloc(len + extra + 1)) == NULL) {
		*oom = 1;
		return NULL;
	}
	o = out;
	for (size_t i = 0; i < len; i++) {
		if (msg[i] == '\r' || msg[i] == '\n') {
			*o++ = '\r';
			*o++ = '\n';
			if (msg[i] == '\r' && i + 1 < len && msg[i + 1] == '\n')
				i++;
			continue;
		}
		*o++ = msg[i];
	}
	*outlen = (size_t)(o - out);
	return out;
}

int
dk_body_hash(const char *msg, size_t len, char bh[DKIM_BH_SIZE])
{
	size_t clen;
	int oom, rc;
	char *c = crlf_copy(msg, len, &clen, &oom);

	if (oom)
		return -1;
	rc = dkim_body_hash(c ? c : msg, c ? clen : len, bh);
	free(c);
	return rc;
}

char *
dk_prepare(struct dkim_signer *s, struct dkim_keyset *ks, const char *msg, size_t len,
           const char *bh, size_t *outlen, size_t *size)
{
	struct strbuf sig = {0};
	char err[DKIM_ERR_MAX], *body, *out, *c = NULL;
	size_t blen, clen;
	int oom;

	if (ks != NULL && ks->n > 0 && s != NULL) {
		if ((c = crlf_copy(msg, len, &clen, &oom)) == NULL && oom)
			return NULL;
		if (dkim_sign(s, ks->keys, ks->n, NULL, c ? c : msg, c ? clen : len, bh, time(NULL),
		              &sig, err) < 0 &&
		    __atomic_exchange_n(&ks->warned, 1, __ATOMIC_RELAXED) == 0)
			log_warnx("dkim: signing for %s failed, mail goes unsigned: %s", ks->domain,
			          err);
		free(c);
		if (sig.oom) {
			strbuf_free(&sig);
			return NULL;
		}
	}
	body = smtp_out_prepare_body((const unsigned char *)msg, len, &blen);
	if (body == NULL || sig.len == 0) {
		strbuf_free(&sig);
		*outlen = blen;
		*size = blen > 3 ? blen - 3 : 0;
		return body;
	}
	/* The signature fields go on top; their lines end in CRLF and
	 * continuation lines start with a space, so none needs a dot doubled. */
	if ((out = malloc(sig.len + blen)) == NULL) {
		free(body);
		strbuf_free(&sig);
		return NULL;
	}
	memcpy(out, sig.p, sig.len);
	memcpy(out + sig.len, body, blen);
	*outlen = sig.len + blen;
	*size = *outlen - 3;
	free(body);
	strbuf_free(&sig);
	return out;
}
