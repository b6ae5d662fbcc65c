/*
 * posting.c - the posting path from a committed spool entry to the outbound
 * queue: loop check, policy, DMARC decision, rewrite, fan-out, archive.
 * See posting.h. The rules themselves live in post.c; this file feeds them
 * from the store and stores what they decide.
 */
#include "lists/posting.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/conf.h"
#include "db/archive.h"
#include "db/engine.h"
#include "db/lists.h"
#include "db/members.h"
#include "db/queue.h"
#include "db/spool.h"
#include "lists/digest_send.h"
#include "lists/list_conf.h"
#include "lists/personal.h"
#include "lists/post.h"
#include "lists/verp.h"
#include "mail/msg.h"

#if __has_include("lists/moderate.h")
#include "lists/moderate.h"
#define ENGINE_HAVE_MODERATE 1
#endif

static int
load_cfg(struct db *db, const struct conf *conf, int64_t list_id, const char *local,
         const char *domain, struct post_cfg *cfg)
{
	struct list_conf lc;
	int rc = list_conf_load(db, list_id, &lc);

	post_cfg_init(cfg, local, domain, &lc);
	conf_http_base_url(conf, cfg->http_base, sizeof(cfg->http_base));
	list_conf_free(&lc);
	return rc;
}

/* The policy that applies to from_domain, into buf; NULL when the lookup
 * failed. */
static const char *
dmarc_policy(struct db *db, const struct posting_dmarc *dmarc, const char *from_domain, char *buf,
             size_t len)
{
	int64_t ttl = 0, expires;

	if (dmarc != NULL && dmarc->lookup != NULL) {
		if (dmarc->lookup(dmarc->arg, from_domain, buf, len, &ttl) < 0)
			return NULL;
		/* Kept for the release path; a failure to keep it is not a
		 * reason to fail the post. */
		if (db_engine_dmarc_put(db, from_domain, buf, db_now() + ttl) < 0)
			return buf;
		return buf;
	}
	if (db_engine_dmarc_get(db, from_domain, buf, len, &expires) < 0)
		return NULL;
	return buf;
}

/* The From address of m and its key; -1 when there is none usable. */
static int
from_of(const struct msg *m, char *addr, size_t addrlen, char *key, size_t keylen)
{
	if (post_from(m, NULL, 0, addr, addrlen) < 0)
		return -1;
	return post_addr_key(addr, key, keylen);
}

/* The post as queued: the list's signed report tag on top (lists/verp.h),
 * so that a bounce or an ARF report quoting it can be believed, and forged
 * ones told apart. The archive keeps the post without it. NULL with the
 * store's error set, or with *len 0 when out of memory. */
static char *
tagged(struct db *db, const struct post_cfg *cfg, const char *qid, int64_t now, int verp,
       const struct post_out *out, size_t *len)
{
	struct verp_key key;
	char tag[160];
	int n;
	char *b;

	*len = 0;
	if (verp_key_load(db, &key) < 0)
		return NULL;
	if (verp_tag_make(&key, cfg->local, cfg->domain, qid && *qid ? qid : "post", now, verp, tag,
	                  sizeof(tag)) < 0 &&
	    verp_tag_make(&key, cfg->local, cfg->domain, "post", now, verp, tag, sizeof(tag)) < 0)
		return NULL;
	n = (int)strlen(VERP_TAG_HEADER ": \r\n") + (int)strlen(tag);
	if ((b = malloc((size_t)n + out->len + 1)) == NULL) {
		*len = 1;
		return NULL;
	}
	snprintf(b, (size_t)n + 1, "%s: %s\r\n", VERP_TAG_HEADER, tag);
	memcpy(b + n, out->data, out->len);
	b[(size_t)n + out->len] = '\0';
	*len = (size_t)n + out->len;
	return b;
}

/* Rewrites and queues a post that passed: the common end of the handler
 * and of a moderator's approval. */
static int
send_post(struct db *db, const struct conf *conf, int64_t list_id, const struct post_cfg *cfg,
          const char *raw, size_t len, int64_t spool_id, const char *qid, const struct msg *m,
          const struct posting_dmarc *dmarc, char *outcome, size_t outcomelen)
{
	char from[POST_ADDR_MAX], key[POST_ADDR_MAX], env_from[POST_ADDR_MAX + 16];
	char policy[32], oqid[DB_QID_LEN];
	const char *pol = NULL, *dpol = "-";
	char dk[80] = "";
	struct post_env env = {conf->hostname, qid, db_now(), 0};
	struct post_out out;
	struct db_engine_post p;
	int have_from = from_of(m, from, sizeof(from), key, sizeof(key)) == 0;
	int64_t msg_id, nrcpt, k;
	char *body, *arch = NULL, page[1200];
	size_t blen, alen;
	int verp;

	if (cfg->dmarc_when == list_dmarc_when_always || cfg->dmarc_when == list_dmarc_when_never) {
		env.mitigate = post_dmarc_applies(cfg, "");
	} else if (have_from) {
		pol = dmarc_policy(db, dmarc, strrchr(from, '@') + 1, policy, sizeof(policy));
		env.mitigate = post_dmarc_applies(cfg, pol);
		dpol = pol == NULL ? "lookup failed" : *pol ? pol : "no record";
	}
	if (post_rewrite(raw, len, cfg, &env, &out) < 0) {
		snprintf(outcome, outcomelen, "failed: out of memory rewriting the post");
		return -1;
	}
	if (db_engine_count_post(db, list_id, &k) < 0) {
		snprintf(outcome, outcomelen, "failed: %s", db_errmsg(db));
		post_out_free(&out);
		return -1;
	}
	/* A personal copy goes to one member, so its envelope sender names
	 * that member: always VERP. */
	verp = cfg->personalize || verp_post_is_verp((enum verp_mode)cfg->verp, cfg->verp_every, k);
	if ((body = tagged(db, cfg, qid, env.now, verp, &out, &blen)) == NULL) {
		snprintf(outcome, outcomelen, "failed: %s",
		         blen ? "out of memory tagging the post" : db_errmsg(db));
		post_out_free(&out);
		return -1;
	}
	snprintf(env_from, sizeof(env_from), "%s-bounces@%s", cfg->local, cfg->domain);
	memset(&p, 0, sizeof(p));
	p.list_id = list_id;
	p.spool_id = spool_id;
	p.env_from = env_from;
	p.body = body;
	p.len = blen;
	p.lifetime = conf->max_queue_lifetime;
	p.poster_key = have_from ? key : NULL;
	p.verp = verp;
	p.personal = cfg->personalize;
	if (cfg->personalize) {
		/* The archive and the digests are nobody's copy: the list's
		 * address and its unsubscribe page stand in for the member's. */
		post_unsubscribe_page(cfg, page, sizeof(page));
		if ((arch = personal_fill(out.data, out.len, "", 0, cfg->address, page, &alen)) ==
		    NULL) {
			snprintf(outcome, outcomelen,
			         "failed: out of memory filling the archive copy");
			free(body);
			post_out_free(&out);
			return -1;
		}
	}
	if (db_engine_queue_post(db, &p, oqid, &msg_id, &nrcpt) < 0 ||
	    (cfg->archive &&
	     db_engine_archive_add(db, p.list_id, out.message_id, env.now, out.sender, out.subject,
	                           arch ? arch : out.data, arch ? alen : out.len) < 0) ||
	    /* Every post that goes out waits for the next digest, whether
	     * the list has digest members now or not: a check for them
	     * would walk the list's members on every post; an issue with
	     * nobody to go to drops its posts instead (digest_send.h). */
	    digest_keep(db, p.list_id, env.now, out.sender, out.subject, arch ? arch : out.data,
	                arch ? alen : out.len) < 0) {
		snprintf(outcome, outcomelen, "failed: %s", db_errmsg(db));
		free(arch);
		free(body);
		post_out_free(&out);
		return -1;
	}
	free(arch);
	if (out.dkim_removed || out.dkim_kept)
		snprintf(dk, sizeof(dk), ", poster's dkim: %d removed, %d kept", out.dkim_removed,
		         out.dkim_kept);
	snprintf(outcome, outcomelen, "posted: %s%s, rcpts=%lld, size=%zu,%s dmarc=%s%s%s",
	         nrcpt > 0 ? "queued as " : "nothing queued (no recipients)", oqid,
	         (long long)nrcpt, out.len,
	         p.personal ? " personal,"
	         : p.verp   ? " verp,"
	                    : "",
	         dpol,
	         out.dmarc == 1   ? " (From rewritten)"
	         : out.dmarc == 2 ? " (wrapped)"
	                          : "",
	         dk);
	free(body);
	post_out_free(&out);
	return 0;
}

/* Hands a post to moderation. */
static int
hold_post(struct db *db, const struct conf *conf, const struct inbound *in,
          const struct post_cfg *cfg, const char *reason, char *outcome, size_t outcomelen)
{
#ifdef ENGINE_HAVE_MODERATE
	/* Moderation keeps a short word for why (moderate.h). */
	(void)reason;
	return moderate_hold(db, conf, in,
	                     cfg->policy == list_policy_moderated  ? "moderated"
	                     : cfg->policy == list_policy_announce ? "announce"
	                                                           : "non-member",
	                     outcome, outcomelen);
#else
	(void)db;
	(void)conf;
	(void)in;
	(void)cfg;
	snprintf(outcome, outcomelen, "failed: %s, but this build has no moderation", reason);
	return -1;
#endif
}

/* Refuses a post with a notice to the envelope sender, unless RFC 3834
 * says no automatic reply may go there. */
static int
reject_post(struct db *db, const struct conf *conf, const struct inbound *in,
            const struct post_cfg *cfg, const struct msg *m, const char *reason, char *outcome,
            size_t outcomelen)
{
	struct post_env env = {conf->hostname, in->qid, db_now(), 0};
	char env_from[POST_ADDR_MAX + 16], domain[256], qid[DB_QID_LEN];
	const char *at = strrchr(in->mail_from, '@');
	struct outq_rcpt r;
	struct outq_msg om = {0};
	char *notice;
	size_t nlen;

	if (!post_may_autoreply(m, in->mail_from) || at == NULL) {
		snprintf(outcome, outcomelen, "rejected: %s (no notice: automatic or null sender)",
		         reason);
		return 0;
	}
	if ((notice = post_reject_notice(cfg, in->mail_from, reason, m, &env, &nlen)) == NULL) {
		snprintf(outcome, outcomelen, "failed: out of memory");
		return -1;
	}
	snprintf(env_from, sizeof(env_from), "%s-bounces@%s", cfg->local, cfg->domain);
	snprintf(domain, sizeof(domain), "%s", at + 1);
	for (char *p = domain; *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	r.addr = in->mail_from;
	r.domain = domain;
	r.member_id = 0;
	om.list_id = in->list_id;
	om.spool_id = in->spool_id;
	om.kind = "notice";
	om.env_from = env_from;
	om.body = notice;
	om.len = nlen;
	om.lifetime = conf->max_queue_lifetime;
	if (db_outq_add(db, &om, &r, 1, qid, NULL) < 0) {
		snprintf(outcome, outcomelen, "failed: %s", db_errmsg(db));
		free(notice);
		return -1;
	}
	free(notice);
	snprintf(outcome, outcomelen, "rejected: %s (notice queued as %s)", reason, qid);
	return 0;
}

int
posting_handle(struct db *db, const struct conf *conf, const struct inbound *in,
               const struct posting_dmarc *dmarc, char *outcome, size_t outcomelen)
{
	struct post_cfg cfg;
	struct msg m;
	char from[POST_ADDR_MAX], key[POST_ADDR_MAX];
	int member = 0, priv = 0, rc;
	const char *reason;
	enum post_verdict v;

	if (in->list_id <= 0 || in->list_local == NULL || *in->list_local == '\0') {
		snprintf(outcome, outcomelen, "dropped: the list no longer exists");
		return 0;
	}
	if (load_cfg(db, conf, in->list_id, in->list_local, in->list_domain, &cfg) < 0) {
		snprintf(outcome, outcomelen, "failed: %s", db_errmsg(db));
		return -1;
	}
	if (msg_parse(&m, in->message, in->len) < 0) {
		snprintf(outcome, outcomelen, "failed: out of memory");
		return -1;
	}
	if (post_is_loop(&m, &cfg)) {
		snprintf(outcome, outcomelen,
		         "dropped: loop (carries this list's List-Id or X-Loop)");
		msg_free(&m);
		return 0;
	}
	/* The poster is who the From says, or failing that the envelope
	 * sender: either one being a member is enough. */
	if (from_of(&m, from, sizeof(from), key, sizeof(key)) == 0 &&
	    db_engine_poster(db, in->list_id, key, &member, &priv) < 0)
		goto dberr;
	if (!member && !priv && *in->mail_from &&
	    post_addr_key(in->mail_from, key, sizeof(key)) == 0 &&
	    db_engine_poster(db, in->list_id, key, &member, &priv) < 0)
		goto dberr;
	v = post_policy(&cfg, member, priv, &reason);
	switch (v) {
	case POST_PASS:
		rc = send_post(db, conf, in->list_id, &cfg, in->message, in->len, in->spool_id,
		               in->qid, &m, dmarc, outcome, outcomelen);
		break;
	case POST_HOLD:
		rc = hold_post(db, conf, in, &cfg, reason, outcome, outcomelen);
		break;
	case POST_REJECT:
		rc = reject_post(db, conf, in, &cfg, &m, reason, outcome, outcomelen);
		break;
	case POST_DISCARD:
	default:
		snprintf(outcome, outcomelen, "discarded: %s", reason);
		rc = 0;
		break;
	}
	msg_free(&m);
	return rc;
dberr:
	snprintf(outcome, outcomelen, "failed: %s", db_errmsg(db));
	msg_free(&m);
	return -1;
}

int
posting_release(struct db *db, const struct conf *conf, int64_t list_id, int64_t spool_id,
                char *outcome, size_t outcomelen)
{
	struct db_engine_entry e;
	struct post_cfg cfg;
	struct db_list l;
	struct msg m;
	int rc;

	if (db_list_get(db, list_id, &l) < 0 ||
	    load_cfg(db, conf, list_id, l.local, l.domain, &cfg) < 0 ||
	    db_engine_load(db, spool_id, &e) < 0) {
		snprintf(outcome, outcomelen, "failed: %s", db_errmsg(db));
		return -1;
	}
	if (msg_parse(&m, e.message, e.len) < 0) {
		db_engine_entry_free(&e);
		snprintf(outcome, outcomelen, "failed: out of memory");
		return -1;
	}
	if (post_is_loop(&m, &cfg)) {
		snprintf(outcome, outcomelen,
		         "dropped: loop (carries this list's List-Id or X-Loop)");
		rc = 0;
	} else {
		rc = send_post(db, conf, list_id, &cfg, e.message, e.len, spool_id, e.qid, &m, NULL,
		               outcome, outcomelen);
	}
	msg_free(&m);
	db_engine_entry_free(&e);
	return rc;
}
