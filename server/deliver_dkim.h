/*
 * deliver_dkim.h - DKIM signing of what delivery sends (mail/dkim.h does
 * the signing itself): the keys of each signing domain, read from the
 * store by the reader thread and shared read-only by every signer, and
 * the signing of one message form.
 *
 * Which domain signs a message: its list's domain (out_msg.list_id), else
 * its envelope sender's domain, else (a DSN: null sender) the domain of
 * its From: and that domain's parents down to two labels; the first of
 * those that has an active key (fanmail dkim keygen/activate) signs.
 *
 * Keys are looked up again once per queue scan (dkc_new_scan): the query
 * is cheap and an unchanged key (same selectors, algorithms and PEM) is
 * kept, so `fanmail dkim activate` shows up at the next scan without
 * parsing keys again. A keyset is reference-counted: the messages in the
 * cache and the copies being signed hold it while a rotation replaces it.
 *
 * A key that cannot be loaded or a signature that cannot be made leaves
 * the message unsigned (never held back: unsigned mail still arrives) and
 * logs a warning once per key.
 */
#ifndef FANMAIL_DELIVER_DKIM_H
#define FANMAIL_DELIVER_DKIM_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "mail/dkim.h"

struct db;
struct db_qmsg;

struct dkim_keyset {
	int refs; /* under the cache's mutex */
	char domain[DKIM_DOMAIN_MAX + 1];
	size_t n;                       /* 0: the domain signs nothing */
	const struct dkim_key *keys[2]; /* rsa first, then ed25519 */
	struct dkim_key *own[2];
	char *stamp; /* selectors, algorithms and PEMs: "changed?" */
	size_t stamplen;
	int warned; /* a signature failed: said once */
	struct dkim_keyset *next;
	uint64_t gen; /* the scan that last checked it */
	struct dkim_cache *cache;
};

struct dkim_cache {
	pthread_mutex_t mu;
	struct dkim_keyset *sets; /* one per domain asked about */
	uint64_t gen;
};

void dkc_init(struct dkim_cache *c);
/* A queue scan starts: each domain's keys are read again when next asked. */
void dkc_new_scan(struct dkim_cache *c);
/* The keyset that signs message qm (body its stored form), with a reference
 * (give it back with dkc_put), or NULL when none of its domains has an
 * active key. Reader thread (it reads the store with db). */
struct dkim_keyset *dkc_get(struct dkim_cache *c, struct db *db, const struct db_qmsg *qm,
                            const char *body, size_t len);
void dkc_ref(struct dkim_keyset *ks);
void dkc_put(struct dkim_keyset *ks);
void dkc_free_all(struct dkim_cache *c);

/* Signs msg[0..len) (CRLF or bare line ends, not dot-stuffed: the form
 * sent) with ks and returns it prepared for DATA (smtp_out_prepare_body)
 * with its DKIM-Signature fields on top; *outlen its length, *size the
 * message's size for SIZE=. bh: the body's hash when known, else NULL.
 * ks NULL, or signing failing: the message prepared unsigned. NULL only
 * when out of memory. Any thread, each with its own signer. */
char *dk_prepare(struct dkim_signer *s, struct dkim_keyset *ks, const char *msg, size_t len,
                 const char *bh, size_t *outlen, size_t *size);

/* The relaxed body hash of msg (as dk_prepare signs it); -1 when out of
 * memory. */
int dk_body_hash(const char *msg, size_t len, char bh[DKIM_BH_SIZE]);

#endif
