/*
 * dmarc.h - DMARC policy discovery (RFC 7489 section 6.6.3) for the list
 * engine's From rewriting, with c-ares, cached by TTL.
 *
 * One struct dmarc belongs to one thread (the engine runner): it owns a
 * c-ares channel and a cache, and dmarc_lookup() waits for its answer
 * (bounded by the resolver's timeout and tries) without touching the
 * event loop, which runs on another thread.
 *
 * dmarc_lookup() has the shape of struct posting_dmarc's lookup (see
 * lists/posting.h): _dmarc.FROMDOMAIN first; when that has no DMARC record,
 * _dmarc.ORGDOMAIN (libpsl), whose sp= applies to subdomains. Answers are
 * kept for their TTL (at least 60 s, at most a day); "no record" for 5
 * minutes; failures are not kept.
 */
#ifndef FANMAIL_DMARC_H
#define FANMAIL_DMARC_H

#include <stddef.h>
#include <stdint.h>

struct conf;
struct dmarc;

/* Uses conf->dns_servers when set, else the system's resolver settings.
 * Returns NULL with a message in err on failure. */
struct dmarc *dmarc_new(const struct conf *conf, char *err, size_t errlen);
void dmarc_free(struct dmarc *d);

/* arg is the struct dmarc. Returns 0 with the policy ("none",
 * "quarantine", "reject", "" for no record) and its TTL, or -1 when DNS
 * failed (the message is logged). */
int dmarc_lookup(void *arg, const char *from_domain, char *policy, size_t policylen, int64_t *ttl);

/* arg is the struct dmarc (the shape of struct posting_dmarc's prefetch).
 * Looks up the policies of all the given From domains at once (every
 * query in flight together, so a batch of posts waits for the slowest
 * answer, not for the sum), filling the cache that dmarc_lookup() then
 * answers from; domains already cached are not asked again. Returns how
 * many domains were looked up. */
int dmarc_prefetch(void *arg, const char *const *domains, size_t n);

#endif
