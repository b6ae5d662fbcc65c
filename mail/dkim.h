/*
 * dkim.h - DKIM signing (RFC 6376), relaxed/relaxed, rsa-sha256 and
 * ed25519-sha256 (RFC 8463), for the lists' own domains.
 *
 * Why OpenSSL directly and not libopendkim: a list sends one stored body
 * to many recipients, and the body hash must be computed once per stored
 * body, with only the header hash and the signature per copy. libopendkim's
 * API (dkim.h of libopendkim-dev 2.11) has no way to give a signing handle a
 * body hash: every handle from dkim_sign() canonicalizes and hashes the
 * body it is fed through dkim_body()/dkim_chunk() before dkim_eom();
 * dkim_sig_gethashes() only reads the hashes after dkim_eom(); and
 * dkim_resign() shares one body pass between exactly two handles that must
 * both exist before any data is passed (one binding per handle), so it
 * cannot serve copies made one after another. Owning the canonicalization
 * means testing it against independent verifiers: tests/e2e/test_dkim_verify.py
 * checks every signature with dkimpy and with OpenDKIM, and our bh= against
 * dkimpy's.
 *
 * Use:
 *   - dkim_key_load() once per key; keys are read-only afterwards, so any
 *     number of threads may sign with them at the same time.
 *   - dkim_body_hash() (or the streaming struct dkim_bh) once per stored
 *     body, after any rewrite of the body (downgrade, filled footer).
 *   - one struct dkim_signer per signing thread (it keeps the OpenSSL
 *     contexts and the field table, so a copy allocates nothing beyond
 *     what the output strbuf needs once it has grown);
 *   - dkim_sign() per copy: writes one "DKIM-Signature:" field per key,
 *     each ending in CRLF, to be sent BEFORE the copy's extra header lines
 *     and the message: signatures + extra + msg.
 *
 * Messages are in their sent form without dot-stuffing: header fields and
 * body lines end in CRLF.
 */
#ifndef FANMAIL_DKIM_H
#define FANMAIL_DKIM_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "mail/strbuf.h"

/* The base64 of a SHA-256 hash (44 characters) and its NUL. */
#define DKIM_BH_SIZE 45
/* Room for an error sentence. */
#define DKIM_ERR_MAX 256
/* Longest domain (RFC 1035) and selector we sign with. */
#define DKIM_DOMAIN_MAX 253
#define DKIM_SELECTOR_MAX 63

enum dkim_alg { DKIM_RSA_SHA256, DKIM_ED25519_SHA256 };

struct dkim_key;

/* Loads a PEM private key (PKCS#8 "PRIVATE KEY" or "RSA PRIVATE KEY";
 * RSA of 1024 to 8192 bits, or Ed25519) to sign for domain with selector
 * (letters, digits, '-', '_' and '.'). Returns 0 with *out (free it with
 * dkim_key_free), or -1 with a sentence in err. */
int dkim_key_load(const char *pem, size_t len, const char *domain, const char *selector,
                  struct dkim_key **out, char err[DKIM_ERR_MAX]);
void dkim_key_free(struct dkim_key *k);
enum dkim_alg dkim_key_alg(const struct dkim_key *k);
const char *dkim_key_domain(const struct dkim_key *k);
const char *dkim_key_selector(const struct dkim_key *k);

/* The relaxed body canonicalization (RFC 6376 3.4.4: runs of WSP become one
 * SP, WSP at line ends goes, empty lines at the end go, a non-empty body
 * gets a final CRLF if it lacks one; an empty body stays empty) fed into
 * SHA-256, in pieces of any size: dkim_bh_init, dkim_bh_add..., dkim_bh_end
 * writes the base64 hash. A state may be copied (struct assignment is not
 * enough: use dkim_bh_copy) to hash a common prefix once and then several
 * endings (the footer of personalized copies). Returns 0, or -1 when
 * OpenSSL fails (out of memory). dkim_bh_free releases the state. */
struct dkim_bh {
	void *md;                   /* EVP_MD_CTX */
	size_t crlfs;               /* line ends held back: they might be trailing empty lines */
	unsigned char wsp, cr, any; /* WSP run pending; CR seen; anything written */
	size_t n;
	unsigned char buf[2048];
};
int dkim_bh_init(struct dkim_bh *h);
void dkim_bh_add(struct dkim_bh *h, const void *p, size_t len);
int dkim_bh_end(struct dkim_bh *h, char bh[DKIM_BH_SIZE]);
int dkim_bh_copy(struct dkim_bh *to, const struct dkim_bh *from);
void dkim_bh_free(struct dkim_bh *h);

/* The body of msg (what follows the first empty line; nothing when there is
 * none) hashed as above. Returns 0 or -1 (out of memory). */
int dkim_body_hash(const char *msg, size_t len, char bh[DKIM_BH_SIZE]);
/* The same for a body already split off its header. */
int dkim_body_hash_body(const char *body, size_t len, char bh[DKIM_BH_SIZE]);

/* Appends the relaxed form of one header field (RFC 6376 3.4.2), "name:value"
 * and CRLF, as it goes into the header hash: for tests and diagnostics. */
void dkim_canon_field(const char *field, size_t len, struct strbuf *out);

/* One signing thread's contexts; NULL when out of memory. */
struct dkim_signer *dkim_signer_new(void);
void dkim_signer_free(struct dkim_signer *s);

/* Signs a copy: extra (per-copy header lines, each ending in CRLF, that go
 * right above msg's header; may be NULL) followed by msg (header, empty
 * line, body). bh is the body's hash from dkim_body_hash(), or NULL to
 * compute it here. Appends to out, for each of the nkeys keys in order, one
 * folded "DKIM-Signature:" field ending in CRLF, with t=now and h= naming
 * those of the fields below that the copy has (multiple instances signed
 * bottom-up, From once more than it appears, so none can be added):
 * From, To, Cc, Subject, Date, Message-ID, In-Reply-To, References,
 * MIME-Version, Content-Type, Content-Transfer-Encoding, List-Id,
 * List-Post, List-Unsubscribe, List-Unsubscribe-Post, List-Archive,
 * List-Help, List-Subscribe, List-Owner, Reply-To, Sender.
 * Returns 0, or -1 with a sentence in err (out is then as it was). */
int dkim_sign(struct dkim_signer *s, const struct dkim_key *const *keys, size_t nkeys,
              const char *extra, const char *msg, size_t len, const char *bh, time_t now,
              struct strbuf *out, char err[DKIM_ERR_MAX]);

#endif
