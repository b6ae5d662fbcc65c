/*
 * bounce_handle.c - the list engine's handler for mail to LIST-bounces
 * (see lists/inbound.h for the contract).
 *
 * Only a report about mail the list really sent counts (lists/verp.h):
 * - to a VERP address (LIST-bounces+local=domain+SIG), the signature must
 *   be right; the member is the one the address names, whatever the bounce
 *   says;
 * - to LIST-bounces itself (a DSN, an ARF report), the report must quote a
 *   correctly signed VERP address of this list (the returned message's
 *   Return-Path: that member only) or the signed X-Fanmail-Report tag every
 *   post carries, of a post sent without VERP (a VERP'd post's copies each
 *   had a signed return path: a report must name one); then each failed
 *   recipient it names is looked up among the list's members (by its final
 *   address, else its original one).
 * Anything else (unsigned, wrongly signed, or a tag too old) is ignored
 * with an outcome that says why, which the runner logs. Each believed
 * result goes to score_bounce(). Auto-replies, delay warnings and mail that
 * is no bounce change nothing. Afterwards the timed step runs for this
 * list's disabled members.
 */
#include "lists/bounce.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "db/db.h"
#include "db/members.h"
#include "lists/store.h"
#include "lists/score.h"
#include "lists/verp.h"
#include "mail/addr.h"

/* The member with address s, or 0 when there is none (or s is no
 * address); -1 when the store failed. */
static int
find_member(struct db *db, int64_t list_id, const char *s, struct db_member *m)
{
	struct addr a;
	const char *why;

	if (s == NULL || *s == '\0' || addr_parse(s, strlen(s), ADDR_UTF8, &a, &why) < 0)
		return 0;
	if (store_member_find(db, list_id, &a, m) == 0)
		return 1;
	return db_status(db) == DB_NOTFOUND ? 0 : -1;
}

static int
same_addr(const char *a, const char *b)
{
	return a[0] && strcasecmp(a, b) == 0;
}

/* The result about addr in r: one naming it, else the first failure or
 * complaint. NULL when r has none. */
static const struct bounce_rcpt *
result_for(const struct bounce_report *r, const char *addr)
{
	const struct bounce_rcpt *first = NULL;

	for (size_t i = 0; i < r->n; i++) {
		const struct bounce_rcpt *b = &r->rcpts[i];
		int counts = bounce_rcpt_is_failure(b) || b->cls == BOUNCE_COMPLAINT;
		if (!counts)
			continue;
		if (same_addr(b->addr, addr) || same_addr(b->orig, addr))
			return b;
		if (first == NULL)
			first = b;
	}
	return first;
}

/* Only delays, deliveries or auto-replies: nothing to hold against anyone. */
static int
harmless(const struct bounce_report *r)
{
	if (r->kind == BOUNCE_KIND_AUTOREPLY)
		return 1;
	for (size_t i = 0; i < r->n; i++)
		if (strcmp(r->rcpts[i].action, "delayed") == 0 ||
		    strcmp(r->rcpts[i].action, "delivered") == 0 ||
		    strcmp(r->rcpts[i].action, "relayed") == 0 ||
		    strcmp(r->rcpts[i].action, "expanded") == 0)
			return 1;
	return 0;
}

static int
handle_verp(struct db *db, const struct conf *conf, const struct inbound *in,
            const struct score_list *l, const struct bounce_report *r, const char *addr,
            int64_t now, char *outcome, size_t len)
{
	struct db_member m;
	struct bounce_rcpt b;
	const struct bounce_rcpt *found = result_for(r, addr);
	char res[1024] = "";
	int have;

	if (found == NULL && harmless(r)) {
		snprintf(outcome, len, "bounce: %s for %s ignored", bounce_kind_name(r->kind),
		         addr);
		return 0;
	}
	if (found != NULL) {
		b = *found;
	} else {
		/* Mail came back to this member's own return path but says too
		 * little to classify: counted as a soft bounce. */
		memset(&b, 0, sizeof(b));
		snprintf(b.action, sizeof(b.action), "failed");
		b.cls = BOUNCE_SOFT;
		b.reason = "unrecognised bounce";
	}
	snprintf(b.addr, sizeof(b.addr), "%s", addr);
	if ((have = find_member(db, in->list_id, addr, &m)) < 0)
		return -1;
	if (score_bounce(db, conf, l, have ? &m : NULL, &b, in->spool_id, now, res, sizeof(res)) <
	    0)
		return -1;
	snprintf(outcome, len, "bounce (verp): %s", res);
	return 0;
}

static int
handle_parsed(struct db *db, const struct conf *conf, const struct inbound *in,
              const struct score_list *l, const struct bounce_report *r, int64_t now, char *outcome,
              size_t len)
{
	char res[1024] = "";
	int n = 0;

	for (size_t i = 0; i < r->n; i++) {
		const struct bounce_rcpt *b = &r->rcpts[i];
		struct db_member m;
		int have;

		if (!bounce_rcpt_is_failure(b) && b->cls != BOUNCE_COMPLAINT)
			continue;
		if ((have = find_member(db, in->list_id, b->addr, &m)) < 0)
			return -1;
		if (!have && (have = find_member(db, in->list_id, b->orig, &m)) < 0)
			return -1;
		if (score_bounce(db, conf, l, have ? &m : NULL, b, in->spool_id, now, res,
		                 sizeof(res)) < 0)
			return -1;
		n++;
	}
	if (n == 0)
		snprintf(outcome, len, "bounce: %s with no failed recipient, ignored",
		         bounce_kind_name(r->kind));
	else
		snprintf(outcome, len, "bounce (%s): %s", r->detector, res);
	return 0;
}

int
bounce_handle(struct db *db, const struct conf *conf, const struct inbound *in, char *outcome,
              size_t outcomelen)
{
	struct bounce_report r;
	struct score_list l = {in->list_id, in->list_local, in->list_domain};
	char addr[BOUNCE_ADDR_MAX];
	struct verp_key key;
	enum verp_tag_found tag;
	int64_t now = db_now();
	int rc, v;

	if (in->list_id <= 0) {
		snprintf(outcome, outcomelen, "ignored: the list is gone");
		return 0;
	}
	if (bounce_parse(in->message, in->len, &r) < 0) {
		snprintf(outcome, outcomelen, "failed: out of memory parsing the bounce");
		return -1;
	}
	if (verp_key_load(db, &key) < 0) {
		bounce_report_free(&r);
		snprintf(outcome, outcomelen, "failed: %s", db_errmsg(db));
		return -1;
	}
	v = in->extension != NULL && *in->extension
	        ? verp_check(&key, in->list_local, in->list_domain, in->extension,
	                     strlen(in->extension), addr, sizeof(addr))
	        : -1;
	if (v > 0) {
		rc = handle_verp(db, conf, in, &l, &r, addr, now, outcome, outcomelen);
	} else if (v == 0) {
		snprintf(outcome, outcomelen,
		         "ignored: %s to <%s> without a valid signature (forged, or sent before "
		         "VERP addresses were signed)",
		         bounce_kind_name(r.kind), in->rcpt);
		rc = 0;
	} else if (verp_find_signed(&key, in->list_local, in->list_domain, in->message, in->len,
	                            addr, sizeof(addr)) > 0) {
		rc = handle_verp(db, conf, in, &l, &r, addr, now, outcome, outcomelen);
	} else if ((tag = verp_tag_find(&key, in->list_local, in->list_domain, in->message, in->len,
	                                now)) == VERP_TAG_BATCHED) {
		rc = handle_parsed(db, conf, in, &l, &r, now, outcome, outcomelen);
	} else if (tag == VERP_TAG_VERPED) {
		/* Every copy of that post had its own signed return path: a
		 * report that names none of them could be about anyone. */
		snprintf(outcome, outcomelen,
		         "ignored: unverified %s: it quotes a VERP'd post of this list but no "
		         "signed VERP address",
		         bounce_kind_name(r.kind));
		rc = 0;
	} else {
		snprintf(outcome, outcomelen,
		         "ignored: unverified %s: it quotes no signed VERP address or %s tag of "
		         "this list",
		         bounce_kind_name(r.kind), VERP_TAG_HEADER);
		rc = 0;
	}
	memset(&key, 0, sizeof(key));
	bounce_report_free(&r);
	if (rc < 0) {
		snprintf(outcome, outcomelen, "failed: %s", db_errmsg(db));
		return -1;
	}
	if (score_sweep(db, conf, in->list_id, now, NULL) < 0) {
		snprintf(outcome, outcomelen, "failed: %s", db_errmsg(db));
		return -1;
	}
	return 0;
}
