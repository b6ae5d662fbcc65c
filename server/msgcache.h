/*
 * msgcache.h - the delivery scheduler's cache of outbound messages: each
 * queued message's envelope and its body prepared for DATA (and, for
 * servers without SMTPUTF8 or 8BITMIME, the downgraded forms), loaded
 * once and shared by every batch that carries it.
 *
 * Ownership: mc_get() (reader thread only) takes a reference, loading the
 * message when it is not cached; each holder gives it back with mc_put()
 * (any thread). Unreferenced messages stay cached, oldest dropped first,
 * up to MSG_CACHE_BYTES. Everything is under the cache's own mutex.
 */
#ifndef FANMAIL_MSGCACHE_H
#define FANMAIL_MSGCACHE_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

struct db;
struct dkim_cache;
struct dkim_keyset;
struct dkim_signer;

#define MSG_BUCKETS 1024

/* --- the message cache (shared by the loop and the reader) --- */

struct qmsg {
	int64_t id;
	int refs;
	char qid[24];
	char env_from[520];
	char kind[16];
	int verp;
	int personal;    /* body is the stored form, with markers (deliver_personal.c) */
	int64_t list_id; /* for its one-click tokens */
	int64_t created;
	int64_t expires;
	int64_t size;
	char *body; /* prepared for DATA; a personal message: as stored */
	size_t blen;
	/* For servers without SMTPUTF8 or 8BITMIME (mail/downgrade.h):
	 * need is what the message holds (DOWNGRADE_HEADERS: 8-bit header
	 * text, DOWNGRADE_BODY: an 8-bit body); alt[flags] the body prepared
	 * with those downgrades (NULL: cannot be made, alt_why says why). */
	int need;
	char *alt[4];
	size_t alt_len[4];
	char alt_why[4][160];
	/* DKIM (deliver_dkim.h): the keys of the message's signing domain
	 * (NULL: unsigned). body and alt[] carry their signatures already;
	 * a personal message's copies are signed one by one, with the body
	 * hash of each downgrade form kept in pbh when the stored body has
	 * no footer markers (every copy's body is then the same). */
	struct dkim_keyset *ks;
	int pbh_same; /* no markers: pbh applies */
	pthread_mutex_t pbh_mu;
	char pbh[4][48]; /* "" until the first copy of that form */
	size_t bytes;    /* body and alt[], for the cache's accounting */
	struct qmsg *hnext;
	TAILQ_ENTRY(qmsg) lru; /* unreferenced ones, oldest first */
};
TAILQ_HEAD(qmsg_list, qmsg);

struct msg_cache {
	pthread_mutex_t mu;
	struct qmsg *h[MSG_BUCKETS];
	struct qmsg_list lru;
	size_t idle_bytes;
	/* Signing (reader thread only): NULL when there is no signer. */
	struct dkim_cache *dk;
	struct dkim_signer *signer;
};

void mc_init(struct msg_cache *mc);
/* Takes a reference on message id, loading it with db when not cached
 * (NULL when it cannot be read; the reason is in db). Reader thread. */
struct qmsg *mc_get(struct msg_cache *mc, struct db *db, int64_t id);
/* Gives a reference back; m may be NULL. */
void mc_put(struct msg_cache *mc, struct qmsg *m);
/* Frees every message, referenced or not (the scheduler is stopping). */
void mc_free_all(struct msg_cache *mc);

#endif
