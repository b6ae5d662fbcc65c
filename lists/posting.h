/*
 * posting.h - the posting path: what a message to LIST@DOMAIN becomes.
 *
 * posting_handle() is the handler for LISTADDR_POST (lists/inbound.c routes to it; see
 * lists/inbound.h for the contract, plus the DMARC lookup below: inside the runner's transaction, 0
 * with an outcome line, -1 to roll back). It checks for loops, applies the list's posting policy
 * (open, members, moderated, announce; non-member action hold, reject, discard), and for a post
 * that passes builds the outgoing message (lists/post.h) and queues it: one out_msg and one
 * deliveries row per enabled regular member (db/queue.h), archived.
 *
 * posting_release() is called by moderation (lists/moderate.c) when a
 * moderator approves a held post: it runs the same path WITHOUT the policy
 * check (the loop check still applies) for the spool entry spool_id posted
 * to list_id. It runs inside the caller's transaction too; the caller
 * wakes delivery after its commit (fanmaild: deliver_kick(); the CLI: the
 * daemon notices queued mail on its next scan or control notification).
 */
#ifndef FANMAIL_POSTING_H
#define FANMAIL_POSTING_H

#include <stddef.h>
#include <stdint.h>

#include "lists/inbound.h"

struct db;
struct conf;

/* How the DMARC policy of a From domain is found. The runner passes one
 * that asks DNS (server/dmarc.c: RFC 7489 policy discovery, _dmarc.DOMAIN
 * then _dmarc.ORGDOMAIN, the organizational domain from libpsl; cached by
 * TTL); tests pass fixed answers. lookup() writes the policy that applies
 * to from_domain into *policy: "none", "quarantine", "reject", or "" when
 * no DMARC record is published, and how long it may be kept into *ttl;
 * it returns -1 when the lookup failed (timeout, SERVFAIL): the list's
 * dmarc_fallback then applies. The engine keeps every answer in the
 * dmarc_cache table; with no lookup (NULL, as on the release path, which
 * may run in the CLI) the last answer kept there is used, however old,
 * and none kept counts as a failed lookup. */
struct posting_dmarc {
	int (*lookup)(void *arg, const char *from_domain, char *policy, size_t policylen,
	              int64_t *ttl);
	void *arg;
	/* Optional: looks up many From domains at once, before the entries
	 * that need them are handled (their lookups then come from a cache). */
	int (*prefetch)(void *arg, const char *const *domains, size_t n);
};

int posting_handle(struct db *db, const struct conf *conf, const struct inbound *in,
                   const struct posting_dmarc *dmarc, char *outcome, size_t outcomelen);

int posting_release(struct db *db, const struct conf *conf, int64_t list_id, int64_t spool_id,
                    char *outcome, size_t outcomelen);

#endif
