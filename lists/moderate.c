/*
 * moderate.c - moderation holds: hold, notify, approve, reject, discard,
 * expire (see moderate.h).
 *
 * Who hears what:
 * - moderators (owners when there are none): one notice per held post,
 *   from LIST-request with Reply-To LIST-confirm+TOKEN (so that a plain
 *   reply approves), the post attached; envelope sender LIST-bounces.
 * - the poster: "waits for a moderator" at hold time (hold_notify_poster)
 *   and "rejected" on reject (or on expiry with hold_expire_action
 *   reject). These answer mail from an address nobody verified, so they
 *   follow RFC 3834 (never to automatic mail), count against
 *   auto_reply_limit, and go with the null envelope sender, so that a
 *   forged sender's bounce goes nowhere.
 */
#include "lists/moderate.h"
#include "lists/commands.h"
#include "lists/posting.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/conf.h"
#include "db/holds.h"
#include "db/tokens.h"
#include "db/engine.h"
#include "db/lists.h"
#include "db/queue.h"
#include "lists/list_conf.h"
#include "mail/addr.h"
#include "mail/build.h"
#include "mail/fold.h"
#include "mail/msg.h"

#define EXPIRE_BATCH 100
#define EXPIRE_MAX_BATCHES 100 /* at most 10,000 holds per call */
#define MAX_NOTIFY 64

const char *
moderate_action_name(enum moderate_action a)
{
	switch (a) {
	case MODERATE_APPROVE:
		return "approve";
	case MODERATE_REJECT:
		return "reject";
	case MODERATE_DISCARD:
		return "discard";
	}
	return "?";
}

struct post_info {
	struct msg m;
	int parsed;
	char *subject;
	char *message_id;
	char *references;
	char from[DB_ADDR_MAX];
	char from_key[DB_ADDR_MAX];
};

static void
post_info_free(struct post_info *p)
{
	if (p->parsed)
		msg_free(&p->m);
	free(p->subject);
	free(p->message_id);
	free(p->references);
}

/* Reads what the notices need from a post. */
static int
post_info_read(struct post_info *p, const char *message, size_t len, const char *mail_from)
{
	char *raw, name[256];

	memset(p, 0, sizeof(*p));
	if (msg_parse(&p->m, message, len) < 0)
		return -1;
	p->parsed = 1;
	if ((raw = msg_header_text(&p->m, "Subject")) != NULL) {
		p->subject = fold_flatten(msg_decode_words(raw, strlen(raw), NULL));
		free(raw);
	}
	p->message_id = msg_header_text(&p->m, "Message-ID");
	p->references = msg_header_text(&p->m, "References");
	commands_sender(&p->m, mail_from, p->from, sizeof(p->from), p->from_key,
	                sizeof(p->from_key), name, sizeof(name));
	return 0;
}

static char *textf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static char *
textf(const char *fmt, ...)
{
	va_list ap;
	char *s = NULL;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		s = NULL;
	va_end(ap);
	return s;
}

/* A notice to the poster of a held post, under RFC 3834 and the daily
 * limit; result notes what happened. */
static int
notify_poster(struct db *db, const struct conf *conf, int64_t list_id, const char *local,
              const char *domain, struct post_info *p, const char *mail_from, const char *subject,
              const char *body, char *note, size_t notelen)
{
	char request[DB_ADDR_MAX], qid[DB_QID_LEN];
	struct build_msg bm = {
	    .from_addr = request,
	    .to_addr = p->from,
	    .subject = subject,
	    .hostname = conf->hostname,
	    .auto_submitted = "auto-replied",
	    .in_reply_to = p->message_id,
	    .references = p->references,
	    .body = body,
	};
	struct commands_mail cm = {
	    .list_id = list_id,
	    .list_local = local,
	    .list_domain = domain,
	    .rcpt = p->from,
	    .rcpt_key = p->from_key,
	    .log_kind = "notice",
	    .null_sender = 1,
	};
	const char *why;
	char *out = NULL;
	size_t len;
	int ok;

	if (p->from[0] == '\0') {
		snprintf(note, notelen, "no notice to the poster (no valid address)");
		return 0;
	}
	if ((why = commands_auto_reason(&p->m, mail_from)) != NULL) {
		snprintf(note, notelen, "no notice to the poster (%s)", why);
		return 0;
	}
	if ((ok = commands_may_reply(db, conf, p->from_key)) < 0)
		return -1;
	if (!ok) {
		snprintf(note, notelen, "no notice to the poster (auto_reply_limit reached)");
		return 0;
	}
	snprintf(request, sizeof(request), "%s-request@%s", local, domain);
	if (build_message(&bm, &out, &len, NULL, &why) < 0) {
		snprintf(note, notelen, "no notice to the poster (%s)", why);
		return 0;
	}
	cm.body = out;
	cm.len = len;
	ok = commands_send(db, conf, &cm, qid, &why);
	free(out);
	if (ok < 0) {
		snprintf(note, notelen, "%s: %s", why, db_errmsg(db));
		return -1;
	}
	snprintf(note, notelen, "notice to %s qid=%s", p->from, qid);
	return 0;
}

struct rcpts {
	struct outq_rcpt r[MAX_NOTIFY];
	char addr[MAX_NOTIFY][DB_ADDR_MAX];
	char domain[MAX_NOTIFY][ADDR_DOMAIN_MAX + 1];
	size_t n;
};

static int
add_rcpt(const char *address, void *arg)
{
	struct rcpts *r = arg;
	struct addr a;
	const char *why;

	if (r->n >= MAX_NOTIFY)
		return 1;
	if (addr_parse(address, strlen(address), ADDR_UTF8, &a, &why) < 0 ||
	    addr_domain_key(&a, r->domain[r->n], sizeof(r->domain[0])) < 0)
		return 0;
	snprintf(r->addr[r->n], sizeof(r->addr[0]), "%s", address);
	r->r[r->n].addr = r->addr[r->n];
	r->r[r->n].domain = r->domain[r->n];
	r->r[r->n].member_id = 0;
	r->n++;
	return 0;
}

/* Mails the moderators (else the owners) the held post and what to do. */
static int
notify_moderators(struct db *db, const struct conf *conf, const struct inbound *in,
                  const struct list_conf *lc, struct post_info *p, int64_t id, const char *token,
                  const char *reason, int64_t expires, char *note, size_t notelen)
{
	struct rcpts *r = calloc(1, sizeof(*r));
	const char *l = in->list_local, *d = in->list_domain;
	char request[DB_ADDR_MAX], owner[DB_ADDR_MAX], confirm[DB_ADDR_MAX], env_from[DB_ADDR_MAX];
	char date[40], qid[DB_QID_LEN];
	const char *action = conf_list_choice("hold_expire_action", (int)lc->hold_expire_action);
	char *subject = NULL, *body = NULL, *out = NULL;
	const char *who = "moderators", *why;
	struct build_msg bm = {0};
	struct outq_msg om = {0};
	size_t len;
	int rc = -1;

	if (r == NULL)
		return -1;
	if (db_list_role_each(db, in->list_id, "moderator", add_rcpt, r) < 0)
		goto out;
	if (r->n == 0) {
		who = "owners";
		if (db_list_role_each(db, in->list_id, "owner", add_rcpt, r) < 0)
			goto out;
	}
	if (r->n == 0) {
		snprintf(note, notelen, "nobody notified (the list has no moderators or owners)");
		rc = 0;
		goto out;
	}
	snprintf(request, sizeof(request), "%s-request@%s", l, d);
	snprintf(owner, sizeof(owner), "%s-owner@%s", l, d);
	snprintf(confirm, sizeof(confirm), "%s-confirm+%s@%s", l, token, d);
	snprintf(env_from, sizeof(env_from), "%s-bounces@%s", l, d);
	build_date((time_t)expires, date, sizeof(date));
	subject = textf("%s@%s: held for approval: %s", l, d,
	                p->subject && *p->subject ? p->subject : "(no subject)");
	body = textf("A post to %s@%s waits for a moderator.\n"
	             "\n"
	             "  From:     %s\n"
	             "  Subject:  %s\n"
	             "  Reason:   %s\n"
	             "  Held as:  %lld\n"
	             "  Until:    %s (then: %s)\n"
	             "\n"
	             "To approve it, reply to this message (the reply goes to\n"
	             "%s),\n"
	             "or send this line to %s:\n"
	             "\n"
	             "    approve %s\n"
	             "\n"
	             "To reject it with a notice to the poster (a reason may follow the\n"
	             "token), or to drop it silently, send one of these to\n"
	             "%s:\n"
	             "\n"
	             "    reject %s\n"
	             "    discard %s\n"
	             "\n"
	             "On the server: fanmail mod approve|reject|discard %s@%s %lld\n"
	             "\n"
	             "The post is attached.\n",
	             l, d, p->from[0] ? p->from : in->mail_from,
	             p->subject && *p->subject ? p->subject : "(no subject)", reason, (long long)id,
	             date, action, confirm, request, token, request, token, token, l, d,
	             (long long)id);
	if (subject == NULL || body == NULL)
		goto out;
	bm.from_addr = request;
	bm.to_addr = owner;
	bm.reply_to = confirm;
	bm.subject = subject;
	bm.hostname = conf->hostname;
	bm.auto_submitted = "auto-generated";
	bm.body = body;
	bm.attach = in->message;
	bm.attach_len = in->len;
	if (build_message(&bm, &out, &len, NULL, &why) < 0) {
		snprintf(note, notelen, "cannot build the moderators' notice: %s", why);
		goto out;
	}
	om.list_id = in->list_id;
	om.spool_id = in->spool_id;
	om.kind = "notice";
	om.env_from = env_from;
	om.body = out;
	om.len = len;
	om.lifetime = conf->max_queue_lifetime;
	if (db_outq_add(db, &om, r->r, r->n, qid, NULL) < 0) {
		snprintf(note, notelen, "cannot queue the moderators' notice: %s", db_errmsg(db));
		goto out;
	}
	snprintf(note, notelen, "%zu %s notified qid=%s", r->n, who, qid);
	rc = 0;
out:
	free(subject);
	free(body);
	free(out);
	free(r);
	return rc;
}

int
moderate_hold(struct db *db, const struct conf *conf, const struct inbound *in, const char *reason,
              char *outcome, size_t outcomelen)
{
	struct post_info p;
	struct db_hold_new h = {0};
	struct list_conf lc;
	char token[DB_TOKEN_LEN], mods[300] = "", poster[300] = "";
	int64_t id;
	int rc = -1;

	if (moderate_expire(db, conf, in->list_id, db_now(), NULL) < 0) {
		snprintf(outcome, outcomelen, "hold: expiring holds: %s", db_errmsg(db));
		return -1;
	}
	if (list_conf_load(db, in->list_id, &lc) < 0) {
		snprintf(outcome, outcomelen, "hold: list settings: %s", db_errmsg(db));
		list_conf_free(&lc);
		return -1;
	}
	if (post_info_read(&p, in->message, in->len, in->mail_from) < 0) {
		snprintf(outcome, outcomelen, "hold: out of memory");
		post_info_free(&p);
		list_conf_free(&lc);
		return -1;
	}
	h.list_id = in->list_id;
	h.spool_id = in->spool_id;
	h.sender = p.from[0] ? p.from : in->mail_from;
	h.env_from = in->mail_from;
	h.subject = p.subject;
	h.message_id = p.message_id;
	h.reason = reason;
	h.expires = db_now() + lc.hold_lifetime;
	if (db_hold_add(db, &h, &id, token) < 0) {
		snprintf(outcome, outcomelen, "hold: %s", db_errmsg(db));
		goto out;
	}
	if (notify_moderators(db, conf, in, &lc, &p, id, token, reason, h.expires, mods,
	                      sizeof(mods)) < 0) {
		snprintf(outcome, outcomelen, "hold: %s", mods[0] ? mods : db_errmsg(db));
		goto out;
	}
	if (lc.hold_notify_poster) {
		char subject[400];
		char *body = textf("Your message to %s@%s%s%s%s waits for a moderator's approval\n"
		                   "(reason: %s). You will hear from us if it is rejected.\n",
		                   in->list_local, in->list_domain, p.subject ? ", \"" : "",
		                   p.subject ? p.subject : "", p.subject ? "\"," : "", reason);
		snprintf(subject, sizeof(subject), "Your message to %s@%s awaits approval",
		         in->list_local, in->list_domain);
		if (body == NULL)
			goto out;
		rc = notify_poster(db, conf, in->list_id, in->list_local, in->list_domain, &p,
		                   in->mail_from, subject, body, poster, sizeof(poster));
		free(body);
		if (rc < 0) {
			snprintf(outcome, outcomelen, "hold: %s", poster);
			goto out;
		}
	}
	snprintf(outcome, outcomelen, "held: %s id=%lld; %s%s%s", reason, (long long)id, mods,
	         poster[0] ? "; " : "", poster);
	rc = 0;
out:
	post_info_free(&p);
	list_conf_free(&lc);
	return rc;
}

/* The notice to the poster of a rejected (or expired) post. */
static int
reject_notice(struct db *db, const struct conf *conf, const struct db_hold *h, const char *local,
              const char *domain, const char *why, int expired, char *note, size_t notelen)
{
	struct post_info p;
	char subject[400];
	char *body;
	int rc;

	if (h->message == NULL) {
		snprintf(note, notelen, "no notice to the poster (the post is gone)");
		return 0;
	}
	if (post_info_read(&p, h->message, h->len, h->env_from) < 0) {
		post_info_free(&p);
		return -1;
	}
	snprintf(subject, sizeof(subject), "Your message to %s@%s was not accepted", local, domain);
	if (expired)
		body = textf("Your message to %s@%s, \"%s\", was not approved by a moderator\n"
		             "in time, and has been dropped.\n",
		             local, domain, h->subject[0] ? h->subject : "(no subject)");
	else
		body = textf("Your message to %s@%s, \"%s\", was rejected by a moderator.\n"
		             "%s%s%s",
		             local, domain, h->subject[0] ? h->subject : "(no subject)",
		             why && *why ? "\nReason: " : "", why && *why ? why : "",
		             why && *why ? "\n" : "");
	if (body == NULL) {
		post_info_free(&p);
		return -1;
	}
	rc = notify_poster(db, conf, h->list_id, local, domain, &p, h->env_from, subject, body,
	                   note, notelen);
	free(body);
	post_info_free(&p);
	return rc;
}

static int
list_name(struct db *db, int64_t list_id, char *local, size_t locallen, char *domain,
          size_t domainlen)
{
	struct db_list l;

	if (db_list_get(db, list_id, &l) < 0)
		return -1;
	snprintf(local, locallen, "%s", l.local);
	snprintf(domain, domainlen, "%s", l.domain);
	return 0;
}

static int
log_event(struct db *db, int64_t list_id, const char *kind, const struct db_hold *h, const char *by)
{
	char detail[2400];

	snprintf(detail, sizeof(detail), "held message %lld from %s (%s) by %s", (long long)h->id,
	         h->sender, h->subject, by);
	return db_engine_event(db, list_id, kind, detail);
}

static int
expire_one(struct db *db, const struct conf *conf, struct db_hold *h, const char *local,
           const char *domain, char *note, size_t notelen)
{
	struct list_conf lc;
	int rc;

	if (db_hold_decide(db, h->id, "expired", "expiry", db_now()) < 0)
		return db_status(db) == DB_NOTFOUND ? 0 : -1;
	if (log_event(db, h->list_id, "hold-expired", h, "expiry") < 0)
		return -1;
	rc = list_conf_load(db, h->list_id, &lc);
	note[0] = '\0';
	if (rc == 0 && lc.hold_expire_action == list_hold_expire_action_reject)
		rc = reject_notice(db, conf, h, local, domain, NULL, 1, note, notelen);
	list_conf_free(&lc);
	return rc;
}

int
moderate_decide(struct db *db, const struct conf *conf, int64_t list_id, int64_t id,
                enum moderate_action action, const char *by, const char *why, char *result,
                size_t resultlen)
{
	static const char *const states[] = {"approved", "rejected", "discarded"};
	char local[ADDR_LOCAL_MAX + 1], domain[ADDR_DOMAIN_MAX + 1], note[600] = "";
	struct db_hold h;
	int rc = -1;

	if (db_hold_get(db, list_id, id, 1, &h) < 0) {
		if (db_status(db) != DB_NOTFOUND) {
			snprintf(result, resultlen, "%s", db_errmsg(db));
			return -1;
		}
		snprintf(result, resultlen, "no held message %lld", (long long)id);
		return 1;
	}
	if (strcmp(h.state, "held") != 0) {
		snprintf(result, resultlen, "held message %lld was %s already (by %s)",
		         (long long)id, h.state, h.decided_by);
		rc = 1;
		goto out;
	}
	if (list_name(db, h.list_id, local, sizeof(local), domain, sizeof(domain)) < 0) {
		snprintf(result, resultlen, "%s", db_errmsg(db));
		goto out;
	}
	if (h.expires < db_now()) {
		if (expire_one(db, conf, &h, local, domain, note, sizeof(note)) < 0) {
			snprintf(result, resultlen, "%s", note[0] ? note : db_errmsg(db));
			goto out;
		}
		snprintf(result, resultlen, "held message %lld expired before it was decided",
		         (long long)id);
		rc = 1;
		goto out;
	}
	if (db_hold_decide(db, id, states[action], by, db_now()) < 0) {
		if (db_status(db) == DB_NOTFOUND) {
			snprintf(result, resultlen, "held message %lld was decided already",
			         (long long)id);
			rc = 1;
		} else {
			snprintf(result, resultlen, "%s", db_errmsg(db));
		}
		goto out;
	}
	if (log_event(db, h.list_id, states[action], &h, by) < 0) {
		snprintf(result, resultlen, "%s", db_errmsg(db));
		goto out;
	}
	switch (action) {
	case MODERATE_APPROVE:
		if (h.spool_id <= 0) {
			snprintf(result, resultlen,
			         "held message %lld cannot be released: the post is gone from the "
			         "spool",
			         (long long)id);
			goto out;
		}
		if (posting_release(db, conf, h.list_id, h.spool_id, note, sizeof(note)) < 0) {
			snprintf(result, resultlen, "held message %lld: release failed: %s",
			         (long long)id, note);
			goto out;
		}
		snprintf(result, resultlen, "approved held message %lld from %s: %s", (long long)id,
		         h.sender, note);
		break;
	case MODERATE_REJECT:
		if (reject_notice(db, conf, &h, local, domain, why, 0, note, sizeof(note)) < 0) {
			snprintf(result, resultlen, "held message %lld: %s", (long long)id,
			         note[0] ? note : db_errmsg(db));
			goto out;
		}
		snprintf(result, resultlen, "rejected held message %lld from %s; %s", (long long)id,
		         h.sender, note);
		break;
	case MODERATE_DISCARD:
		snprintf(result, resultlen, "discarded held message %lld from %s", (long long)id,
		         h.sender);
		break;
	}
	rc = 0;
out:
	db_hold_free(&h);
	return rc;
}

int
moderate_expire(struct db *db, const struct conf *conf, int64_t list_id, int64_t now, size_t *n)
{
	int64_t ids[EXPIRE_BATCH];
	size_t got = 0, total = 0;

	for (int batch = 0; batch < EXPIRE_MAX_BATCHES; batch++) {
		if (db_hold_due(db, list_id, now, ids, EXPIRE_BATCH, &got) < 0)
			return -1;
		for (size_t i = 0; i < got; i++) {
			char local[ADDR_LOCAL_MAX + 1], domain[ADDR_DOMAIN_MAX + 1], note[600];
			struct db_hold h;
			int rc;
			if (db_hold_get(db, 0, ids[i], 1, &h) < 0)
				return -1;
			if (list_name(db, h.list_id, local, sizeof(local), domain, sizeof(domain)) <
			    0) {
				db_hold_free(&h);
				return -1;
			}
			rc = expire_one(db, conf, &h, local, domain, note, sizeof(note));
			db_hold_free(&h);
			if (rc < 0)
				return -1;
			total++;
		}
		if (got < EXPIRE_BATCH)
			break;
	}
	if (n != NULL)
		*n = total;
	return 0;
}
