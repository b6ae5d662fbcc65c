/*
 * dkim.h - the dkim_keys table: DKIM signing keys per domain (migration 7).
 *
 * Domains and selectors come in lower-cased and checked (admin/cmd_dkim.c);
 * algorithm is "rsa" or "ed25519", state "active" (signs), "published" (in
 * DNS, not signing: before or after a rotation) or "retired" (may leave
 * DNS). At most one key per (domain, algorithm) is active: the schema's
 * partial unique index holds it, db_dkim_set_state() keeps it.
 *
 * The private key (PEM, PKCS#8) is read only by db_dkim_active(), for the
 * signer; struct db_dkim_key never carries it, so that no listing can
 * print it by mistake.
 */
#ifndef FANMAIL_DB_DKIM_H
#define FANMAIL_DB_DKIM_H

#include <stddef.h>
#include <stdint.h>

#include "db/db.h"

#define DB_DKIM_SELECTOR_MAX 63
/* base64 of an RSA-4096 SubjectPublicKeyInfo is 736 octets */
#define DB_DKIM_PUBKEY_MAX 1024

struct db_dkim_key {
	int64_t id;
	char domain[DB_DOMAIN_MAX + 1];
	char selector[DB_DKIM_SELECTOR_MAX + 1];
	char algorithm[8]; /* "rsa", "ed25519" */
	int bits;
	char public_key[DB_DKIM_PUBKEY_MAX + 1]; /* the p= value */
	char state[10];                          /* "active", "published", "retired" */
	int64_t created;
	int64_t activated; /* when it last became active; 0: never */
};

/* Adds a key in state (k->state) made at k->created; k->id gets its id.
 * A key that is to be active must be the only active one of its domain
 * and algorithm: add it "published" and db_dkim_set_state() it, in one
 * transaction. DB_EXISTS when the domain has that selector already. */
int db_dkim_add(struct db *db, struct db_dkim_key *k, const char *pem, size_t pemlen);

/* The key of domain with selector; DB_NOTFOUND when there is none. */
int db_dkim_find(struct db *db, const char *domain, const char *selector, struct db_dkim_key *out);

/* Calls cb with each key of domain (every domain when NULL), by domain,
 * then active, published, retired, then rsa before ed25519, then newest
 * first; stops early when cb returns non-zero. Returns how many were given to cb, or -1. */
int db_dkim_list(struct db *db, const char *domain,
                 int (*cb)(void *arg, const struct db_dkim_key *k), void *arg);

/* Sets the state of key id. Making it "active" first makes the active
 * key of its domain and algorithm (if another) "published", and stamps
 * activated = now: call it inside a transaction. */
int db_dkim_set_state(struct db *db, int64_t id, const char *state, int64_t now);

/* Deletes key id; DB_NOTFOUND when there is none. */
int db_dkim_delete(struct db *db, int64_t id);

/* For the signer: calls cb with each active key of domain (rsa first,
 * then ed25519), its selector, algorithm and private key PEM (valid only
 * during the call); stops early when cb returns non-zero. Returns how
 * many were given to cb (0: domain signs nothing), or -1. */
int db_dkim_active(struct db *db, const char *domain,
                   int (*cb)(void *arg, const char *selector, const char *algorithm,
                             const char *pem, size_t pemlen),
                   void *arg);

#endif
