/*
 * digest_send.c - keeping posts for digests and sending issues (see
 * digest_send.h).
 */
#include "lists/digest_send.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/conf.h"
#include "db/digest.h"
#include "db/lists.h"
#include "lists/list_conf.h"
#include "lists/post.h"
#include "lists/verp.h"
#include "mail/digest.h"

int
digest_keep(struct db *db, int64_t list_id, int64_t now, const char *sender, const char *subject,
            const char *post, size_t len)
{
	return db_digest_add(db, list_id, now, sender, subject, post, len);
}

struct pending {
	struct digest_post *v;
	size_t n, cap;
	int64_t last_id;
	int oom;
};

static void
take_post(void *arg, const struct db_digest_post *p)
{
	struct pending *pl = arg;
	char *copy;

	if (pl->oom)
		return;
	if (pl->n == pl->cap) {
		size_t cap = pl->cap ? 2 * pl->cap : 32;
		struct digest_post *v = realloc(pl->v, cap * sizeof(*v));

		if (v == NULL) {
			pl->oom = 1;
			return;
		}
		pl->v = v;
		pl->cap = cap;
	}
	if ((copy = malloc((size_t)p->size + 1)) == NULL) {
		pl->oom = 1;
		return;
	}
	memcpy(copy, p->body, (size_t)p->size);
	copy[p->size] = '\0';
	pl->v[pl->n].msg = copy;
	pl->v[pl->n].len = (size_t)p->size;
	pl->n++;
	pl->last_id = p->id;
}

static void
pending_free(struct pending *pl)
{
	for (size_t i = 0; i < pl->n; i++)
		free((char *)pl->v[i].msg);
	free(pl->v);
}

/* The digest built for mode, with the list's signed report tag on top
 * (lists/verp.h) as posts have it, queued. */
static int
queue_one(struct db *db, const struct conf *conf, int64_t list_id, const struct post_cfg *cfg,
          const struct digest_info *info, const struct pending *pl, int text, char *qid,
          int64_t *nrcpt, char *err, size_t errlen)
{
	struct verp_key key;
	struct db_digest_msg m = {0};
	char env_from[POST_ADDR_MAX + 16], tag[160], *built = NULL, *body;
	size_t blen = 0, tlen;
	int verp = cfg->personalize || cfg->verp == VERP_ALWAYS, rc;

	if ((text ? digest_build_text : digest_build_mime)(info, pl->v, pl->n, &built, &blen) < 0) {
		snprintf(err, errlen, "out of memory building the digest");
		return -1;
	}
	if (verp_key_load(db, &key) < 0 || verp_tag_make(&key, cfg->local, cfg->domain, "digest",
	                                                 info->now, verp, tag, sizeof(tag)) < 0) {
		snprintf(err, errlen, "report tag: %s", db_errmsg(db));
		free(built);
		return -1;
	}
	tlen = strlen(VERP_TAG_HEADER) + 2 + strlen(tag) + 2;
	if ((body = malloc(tlen + blen + 1)) == NULL) {
		snprintf(err, errlen, "out of memory");
		free(built);
		return -1;
	}
	snprintf(body, tlen + 1, "%s: %s\r\n", VERP_TAG_HEADER, tag);
	memcpy(body + tlen, built, blen);
	free(built);
	snprintf(env_from, sizeof(env_from), "%s-bounces@%s", cfg->local, cfg->domain);
	m.list_id = list_id;
	m.mode = text ? "digest-text" : "digest";
	m.env_from = env_from;
	m.body = body;
	m.len = tlen + blen;
	m.lifetime = conf->max_queue_lifetime;
	m.verp = verp;
	m.personal = cfg->personalize;
	rc = db_digest_queue(db, &m, qid, nrcpt);
	free(body);
	if (rc < 0)
		snprintf(err, errlen, "%s", db_errmsg(db));
	return rc;
}

static int
load(struct db *db, const struct conf *conf, int64_t list_id, struct db_list *l,
     struct list_conf *lc, struct post_cfg *cfg)
{
	if (db_list_get(db, list_id, l) < 0)
		return -1;
	if (list_conf_load(db, list_id, lc) < 0) {
		list_conf_free(lc);
		return -1;
	}
	post_cfg_init(cfg, l->local, l->domain, lc);
	conf_http_base_url(conf, cfg->http_base, sizeof(cfg->http_base));
	return 0;
}

/* The body of digest_send(), inside a transaction. */
static int
send_issue(struct db *db, const struct conf *conf, int64_t list_id, int64_t now,
           struct digest_result *r, char *err, size_t errlen)
{
	struct pending pl = {0};
	struct db_list l;
	struct list_conf lc;
	struct post_cfg cfg;
	struct digest_info info;
	char request[POST_ADDR_MAX + 16], *fields = NULL;
	size_t flen;
	int64_t issue_id, n;
	int mime, text, rc = -1;

	if (load(db, conf, list_id, &l, &lc, &cfg) < 0) {
		snprintf(err, errlen, "%s", db_errmsg(db));
		return -1;
	}
	snprintf(r->list, sizeof(r->list), "%s", cfg.address);
	if (db_digest_pending(db, list_id, 1, 0, take_post, &pl) < 0) {
		snprintf(err, errlen, "%s", db_errmsg(db));
		goto out;
	}
	if (pl.oom) {
		snprintf(err, errlen, "out of memory reading the pending posts");
		goto out;
	}
	if (pl.n == 0) {
		rc = 0;
		goto out;
	}
	if ((mime = db_digest_has_members(db, list_id, "digest")) < 0 ||
	    (text = db_digest_has_members(db, list_id, "digest-text")) < 0) {
		snprintf(err, errlen, "%s", db_errmsg(db));
		goto out;
	}
	/* Nobody to send them to: the posts go, no issue is numbered. */
	if (!mime && !text) {
		if (db_digest_drop(db, list_id, pl.last_id, &r->dropped) < 0)
			snprintf(err, errlen, "%s", db_errmsg(db));
		else
			rc = 0;
		goto out;
	}
	if (db_digest_issue_new(db, list_id, (int)lc.digest_volume, now, &r->number, &issue_id) <
	        0 ||
	    db_digest_assign(db, list_id, issue_id, pl.last_id, &n) < 0) {
		snprintf(err, errlen, "%s", db_errmsg(db));
		goto out;
	}
	r->volume = (int)lc.digest_volume;
	r->posts = n;
	if ((fields = post_list_fields(&cfg, &flen)) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	snprintf(request, sizeof(request), "%s-request@%s", cfg.local, cfg.domain);
	memset(&info, 0, sizeof(info));
	info.list_address = cfg.address;
	info.list_name = post_list_name(&cfg);
	info.request_address = request;
	info.volume = r->volume;
	info.issue = r->number;
	info.header_text = cfg.digest_header;
	info.footer_text = cfg.digest_footer;
	info.list_fields = fields;
	info.hostname = conf->hostname && *conf->hostname ? conf->hostname : cfg.domain;
	info.now = now;
	if (mime && queue_one(db, conf, list_id, &cfg, &info, &pl, 0, r->qid_mime, &r->rcpt_mime,
	                      err, errlen) < 0)
		goto out;
	if (text && queue_one(db, conf, list_id, &cfg, &info, &pl, 1, r->qid_text, &r->rcpt_text,
	                      err, errlen) < 0)
		goto out;
	if (db_digest_issue_done(db, issue_id, n, r->qid_mime, r->qid_text) < 0) {
		snprintf(err, errlen, "%s", db_errmsg(db));
		goto out;
	}
	rc = 0;
out:
	free(fields);
	pending_free(&pl);
	list_conf_free(&lc);
	return rc;
}

int
digest_send(struct db *db, const struct conf *conf, int64_t list_id, int64_t now,
            struct digest_result *r, char *err, size_t errlen)
{
	int own = !db_in_transaction(db);

	memset(r, 0, sizeof(*r));
	if (own && db_begin(db) < 0) {
		snprintf(err, errlen, "%s", db_errmsg(db));
		return -1;
	}
	if (send_issue(db, conf, list_id, now, r, err, errlen) < 0) {
		if (own)
			db_rollback(db);
		return -1;
	}
	if (own && db_commit(db) < 0) {
		snprintf(err, errlen, "%s", db_errmsg(db));
		db_rollback(db);
		return -1;
	}
	return 0;
}

static int
is_due(const struct list_conf *lc, const struct db_digest_stats *s, int64_t now)
{
	int64_t since = s->last_sent ? s->last_sent : s->oldest;

	if (s->posts == 0)
		return 0;
	if (lc->digest_max_posts > 0 && s->posts >= lc->digest_max_posts)
		return 1;
	if (lc->digest_max_size > 0 && s->size >= lc->digest_max_size)
		return 1;
	return lc->digest_interval > 0 && now - since >= lc->digest_interval;
}

int
digest_due(struct db *db, int64_t list_id, int64_t now, char *err, size_t errlen)
{
	struct db_digest_stats s;
	struct list_conf lc;
	int due;

	if (db_digest_stats(db, list_id, &s) < 0 || list_conf_load(db, list_id, &lc) < 0) {
		snprintf(err, errlen, "%s", db_errmsg(db));
		return -1;
	}
	due = is_due(&lc, &s, now);
	list_conf_free(&lc);
	return due;
}

#define RUN_MAX_LISTS 256

struct ids {
	int64_t v[RUN_MAX_LISTS];
	size_t n;
};

static int
take_list(void *arg, const struct db_digest_stats *s)
{
	struct ids *ids = arg;

	ids->v[ids->n++] = s->list_id;
	return ids->n == RUN_MAX_LISTS;
}

int
digest_run_due(struct db *db, const struct conf *conf, int64_t now,
               void (*cb)(void *arg, const struct digest_result *r, const char *err), void *arg)
{
	struct ids ids = {.n = 0};
	struct digest_result r;
	char err[512];
	int sent = 0, due;

	/* The ids first: no read stays open while each issue commits. At
	 * most RUN_MAX_LISTS a run; the next run takes the rest. */
	if (db_digest_lists_pending(db, take_list, &ids) < 0)
		return -1;
	for (size_t i = 0; i < ids.n; i++) {
		if ((due = digest_due(db, ids.v[i], now, err, sizeof(err))) < 0)
			return -1;
		if (!due)
			continue;
		if (digest_send(db, conf, ids.v[i], now, &r, err, sizeof(err)) < 0) {
			if (cb != NULL)
				cb(arg, NULL, err);
			continue;
		}
		if (r.posts > 0)
			sent++;
		if (cb != NULL && (r.posts > 0 || r.dropped > 0))
			cb(arg, &r, NULL);
	}
	return sent;
}
