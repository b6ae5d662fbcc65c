/*
 * commands.c - email commands: rate limits, settings, sending, and
 * the handler for LIST-request, -join, -leave, -subscribe, -unsubscribe,
 * -confirm+TOKEN and -owner (see commands.h for the rules; the parsing
 * and RFC 3834 rules are in commands_parse.c).
 *
 * Every mail written here goes through commands_send(), which queues it
 * with the envelope sender LIST-bounces@DOMAIN (or <>) and notes it in the
 * reply log that the limits count.
 */
#include "lists/commands.h"
#include "lists/listaddr.h"
#include "lists/moderate.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "conf/conf.h"
#include "db/holds.h"
#include "db/replies.h"
#include "db/tokens.h"
#include "db/engine.h"
#include "db/lists.h"
#include "db/members.h"
#include "db/queue.h"
#include "lists/list_conf.h"
#include "lists/oneclick.h"
#include "lists/store.h"
#include "mail/addr.h"
#include "mail/build.h"
#include "mail/fold.h"
#include "mail/msg.h"
#include "mail/strbuf.h"

#define DAY (24 * 60 * 60)

int
commands_may_reply(struct db *db, const struct conf *conf, const char *addr_key)
{
	int64_t n = 0;

	if (db_reply_log_count(db, addr_key, 0, NULL, db_now() - DAY, &n) < 0)
		return -1;
	return n < conf->auto_reply_limit;
}

/* ---- addresses ---- */

int
commands_sender(const struct msg *m, const char *mail_from, char *addr, size_t addrlen, char *key,
                size_t keylen, char *name, size_t namelen)
{
	const struct msg_header *h = msg_header_get(m, "From", 0);
	struct addr a;

	if (namelen > 0)
		name[0] = '\0';
	/* An address literal gets no confirmation or reply. */
	if (h != NULL && addr_parse_mailbox(h->value, h->value_len, &a, name, namelen, NULL) == 0 &&
	    !a.literal && addr_format(&a, addr, addrlen) >= 0 && addr_key(&a, key, keylen) >= 0)
		return 0;
	if (namelen > 0)
		name[0] = '\0';
	if (mail_from != NULL &&
	    addr_parse_mailbox(mail_from, strlen(mail_from), &a, NULL, 0, NULL) == 0 &&
	    !a.literal && addr_format(&a, addr, addrlen) >= 0 && addr_key(&a, key, keylen) >= 0)
		return 0;
	if (addrlen > 0)
		addr[0] = '\0';
	if (keylen > 0)
		key[0] = '\0';
	return -1;
}

static int
addr_domain_of(const char *addr, char *domain, size_t len)
{
	struct addr a;
	const char *why;

	if (addr_parse(addr, strlen(addr), ADDR_UTF8, &a, &why) < 0)
		return -1;
	return addr_domain_key(&a, domain, len) < 0 ? -1 : 0;
}

/* ---- sending ---- */

int
commands_send(struct db *db, const struct conf *conf, const struct commands_mail *cm, char *qid,
              const char **why)
{
	char env_from[DB_ADDR_MAX];
	char domain[ADDR_DOMAIN_MAX + 1];
	char qbuf[DB_QID_LEN];
	struct outq_rcpt r = {.addr = cm->rcpt, .domain = domain};
	struct outq_msg m = {
	    .list_id = cm->list_id,
	    .spool_id = cm->spool_id,
	    .kind = "notice",
	    .env_from = env_from,
	    .body = cm->body,
	    .len = cm->len,
	    .lifetime = conf->max_queue_lifetime,
	};

	if (addr_domain_of(cm->rcpt, domain, sizeof(domain)) < 0) {
		*why = "the recipient address is not valid";
		return -1;
	}
	if (cm->null_sender)
		env_from[0] = '\0';
	else
		snprintf(env_from, sizeof(env_from), "%s-bounces@%s", cm->list_local,
		         cm->list_domain);
	if (db_outq_add(db, &m, &r, 1, qid ? qid : qbuf, NULL) < 0) {
		*why = "cannot queue the mail";
		return -1;
	}
	if (cm->rcpt_key != NULL &&
	    db_reply_log_add(db, cm->rcpt_key, cm->list_id, cm->log_kind, db_now()) < 0) {
		*why = "cannot log the reply";
		return -1;
	}
	return 0;
}

/* ---- the handler ---- */

struct ctx {
	struct db *db;
	const struct conf *conf;
	const struct inbound *in;
	struct msg m;
	char *subject;    /* decoded; may be NULL */
	char *message_id; /* may be NULL */
	char *references; /* may be NULL */
	char from[DB_ADDR_MAX];
	char from_key[DB_ADDR_MAX];
	char from_name[256];
	char list[DB_ADDR_MAX]; /* LIST@DOMAIN */
	char request[DB_ADDR_MAX];
	struct list_conf lc;   /* the list's settings */
	struct strbuf results; /* the reply to LIST-request */
	struct strbuf outcome;
	int answered;    /* a mail other than the results already answers */
	int queued;      /* some mail was queued */
	int changed;     /* a membership changed */
	int limited;     /* a confirmation limit was reached: nothing sent */
	const char *how; /* for the log: "confirmed by email", "confirmed on the web" */
};

static void outcome_add(struct ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
outcome_add(struct ctx *c, const char *fmt, ...)
{
	char line[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	strbuf_printf(&c->outcome, "%s%s", c->outcome.len ? "; " : "", line);
}

/* Builds and queues one automatic mail from LIST-request. */
static int
send_mail(struct ctx *c, const char *to, const char *to_key, const char *kind, const char *subject,
          const char *reply_to, const char *body, char *qid)
{
	struct build_msg bm = {
	    .from_addr = c->request,
	    .to_addr = to,
	    .reply_to = reply_to,
	    .subject = subject,
	    .hostname = c->conf->hostname,
	    .auto_submitted = "auto-replied",
	    .in_reply_to = c->message_id,
	    .references = c->references,
	    .body = body,
	};
	struct commands_mail cm = {
	    .list_id = c->in->list_id,
	    .spool_id = c->in->spool_id,
	    .list_local = c->in->list_local,
	    .list_domain = c->in->list_domain,
	    .rcpt = to,
	    .rcpt_key = to_key,
	    .log_kind = kind,
	};
	const char *why = NULL;
	char *out = NULL;
	size_t len = 0;
	int rc;

	if (build_message(&bm, &out, &len, NULL, &why) < 0) {
		outcome_add(c, "cannot build a reply: %s", why);
		return -1;
	}
	cm.body = out;
	cm.len = len;
	rc = commands_send(c->db, c->conf, &cm, qid, &why);
	free(out);
	if (rc < 0)
		outcome_add(c, "%s: %s", why, db_errmsg(c->db));
	else
		c->queued = 1;
	return rc;
}

/* Whether one more confirmation may go to addr_key; *why says which limit
 * when not. -1 on a database error. */
static int
confirm_allowed(struct ctx *c, const char *addr_key, const char **why)
{
	int64_t list_id = c->in->list_id;
	int64_t since = db_now() - c->lc.confirm_limit_window;
	int64_t n;
	int ok;

	if (db_reply_log_count(c->db, addr_key, list_id, "confirm", since, &n) < 0)
		return -1;
	if (n >= c->lc.confirm_limit_per_address) {
		*why = "confirm_limit_per_address";
		return 0;
	}
	if (db_reply_log_count(c->db, NULL, list_id, "confirm", since, &n) < 0)
		return -1;
	if (n >= c->lc.confirm_limit_per_list) {
		*why = "confirm_limit_per_list";
		return 0;
	}
	if ((ok = commands_may_reply(c->db, c->conf, addr_key)) <= 0) {
		*why = "auto_reply_limit";
		return ok;
	}
	return 1;
}

/* Mails a token for action on the sender's address. */
static int
send_confirmation(struct ctx *c, const char *action)
{
	int64_t list_id = c->in->list_id;
	int64_t expires = db_now() + c->lc.confirm_token_lifetime;
	char token[DB_TOKEN_LEN], qid[DB_QID_LEN], date[40], subject[80];
	char confirm_addr[DB_ADDR_MAX], base[1024];
	const char *why = NULL;
	struct strbuf body = {0};
	int ok;

	if ((ok = confirm_allowed(c, c->from_key, &why)) < 0)
		return -1;
	if (!ok) {
		outcome_add(c, "%s %s: no confirmation sent (%s reached)", action, c->from, why);
		strbuf_printf(&c->results,
		              "Too many confirmation requests for %s lately; try again later.\n\n",
		              c->from);
		c->answered = 1; /* and never answer past a limit */
		c->limited = 1;
		return 0;
	}
	if (db_token_add(c->db, list_id, action, c->from, c->from_key, c->from_name, expires,
	                 token) < 0)
		return -1;
	build_date((time_t)expires, date, sizeof(date));
	snprintf(confirm_addr, sizeof(confirm_addr), "%s-confirm+%s@%s", c->in->list_local, token,
	         c->in->list_domain);
	snprintf(subject, sizeof(subject), "confirm %s", token);
	conf_http_base_url(c->conf, base, sizeof(base));
	if (strncmp(action, "set-", 4) == 0) {
		strbuf_printf(&body,
		              "Someone, probably you, asked that %s get %s from the\n"
		              "mailing list %s (set %s).\n\n",
		              c->from,
		              strcmp(action, "set-digest") == 0        ? "MIME digests"
		              : strcmp(action, "set-digest-text") == 0 ? "plain-text digests"
		              : strcmp(action, "set-regular") == 0     ? "every post"
		                                                       : "no mail",
		              c->list, action + 4);
		base[0] = '\0'; /* the web pages confirm joining and leaving only */
	} else
		strbuf_printf(&body,
		              "Someone, probably you, asked to %s %s %s the mailing list %s.\n"
		              "\n",
		              strcmp(action, "subscribe") == 0 ? "subscribe" : "unsubscribe",
		              c->from, strcmp(action, "subscribe") == 0 ? "to" : "from", c->list);
	/* The page behind the link only asks: its button (a POST) confirms,
	 * so that a link scanner that fetches every URL changes nothing. */
	if (base[0] != '\0')
		strbuf_printf(&body,
		              "To confirm, open this page and press its button:\n"
		              "\n"
		              "    %s/confirm/%s\n"
		              "\n"
		              "Or reply to this message (the reply goes to\n",
		              base, token);
	else
		strbuf_printf(&body, "To confirm, reply to this message (the reply goes to\n");
	strbuf_printf(&body,
	              "%s),\n"
	              "or send a message to %s with this line in its\n"
	              "subject or body:\n"
	              "\n"
	              "    confirm %s\n"
	              "\n"
	              "This request expires on %s.\n"
	              "If you did not ask for this, ignore this message: nothing changes\n"
	              "without your confirmation.\n",
	              confirm_addr, c->request, token, date);
	if (body.p == NULL) {
		outcome_add(c, "out of memory");
		return -1;
	}
	if (send_mail(c, c->from, c->from_key, "confirm", subject, confirm_addr, body.p, qid) < 0) {
		free(body.p);
		return -1;
	}
	free(body.p);
	outcome_add(c, "%s %s: confirmation sent qid=%s", action, c->from, qid);
	strbuf_printf(&c->results, "A confirmation request was sent to %s.\n\n", c->from);
	c->answered = 1;
	return 0;
}

/* 1 and the member's status when addr is a member, 0 when not, -1. */
static int
member_status(struct ctx *c, const char *addr, char *status, size_t len)
{
	struct db_member m;
	struct addr a;
	const char *why;

	if (addr_parse(addr, strlen(addr), ADDR_UTF8, &a, &why) < 0)
		return 0;
	if (store_member_find(c->db, c->in->list_id, &a, &m) < 0)
		return db_status(c->db) == DB_NOTFOUND ? 0 : -1;
	snprintf(status, len, "%s", m.status);
	return 1;
}

static int
do_subscribe(struct ctx *c)
{
	char status[16];
	int r;

	if (c->lc.subscribe_policy == list_subscribe_policy_closed) {
		outcome_add(c, "subscribe %s: refused (subscribe_policy closed)", c->from);
		strbuf_printf(&c->results,
		              "%s does not take subscriptions by email; ask its owners at\n"
		              "%s-owner@%s.\n\n",
		              c->list, c->in->list_local, c->in->list_domain);
		return 0;
	}
	if ((r = member_status(c, c->from, status, sizeof(status))) < 0)
		return -1;
	if (r == 1 && strcmp(status, "enabled") == 0) {
		outcome_add(c, "subscribe %s: already a member", c->from);
		strbuf_printf(&c->results, "%s is already subscribed to %s.\n\n", c->from, c->list);
		return 0;
	}
	return send_confirmation(c, "subscribe");
}

static int
send_notice(struct ctx *c, const char *to, const char *to_key, const char *subject,
            const char *body)
{
	char qid[DB_QID_LEN];
	int ok = commands_may_reply(c->db, c->conf, to_key);

	if (ok < 0)
		return -1;
	if (!ok) {
		outcome_add(c, "no notice to %s (auto_reply_limit reached)", to);
		return 0;
	}
	return send_mail(c, to, to_key, "reply", subject, NULL, body, qid);
}

struct owner_list {
	char addr[16][DB_ADDR_MAX];
	size_t n;
};

static int
collect_owner(const char *address, void *arg)
{
	struct owner_list *o = arg;

	if (o->n >= sizeof(o->addr) / sizeof(o->addr[0]))
		return 1;
	snprintf(o->addr[o->n++], sizeof(o->addr[0]), "%s", address);
	return 0;
}

/* owner_notify_leave: a notice to each owner that addr left, and how. Not
 * counted against the owners' auto_reply_limit: they asked for these. */
static int
notify_owners(struct ctx *c, const char *addr, const char *how)
{
	struct owner_list *o = calloc(1, sizeof(*o));
	char subject[400], qid[DB_QID_LEN];
	struct strbuf body = {0};
	int rc = 0;

	if (o == NULL)
		return -1;
	if (db_list_role_each(c->db, c->in->list_id, "owner", collect_owner, o) < 0) {
		free(o);
		return -1;
	}
	snprintf(subject, sizeof(subject), "%s left %s", addr, c->list);
	strbuf_printf(&body, "%s is no longer subscribed to %s (%s).\n", addr, c->list, how);
	for (size_t i = 0; i < o->n && rc == 0 && body.p != NULL; i++)
		rc = send_mail(c, o->addr[i], NULL, "notice", subject, NULL, body.p, qid);
	if (body.p == NULL)
		rc = -1;
	if (rc == 0 && o->n > 0)
		outcome_add(c, "owners told (%zu)", o->n);
	free(body.p);
	free(o);
	return rc;
}

static int
leave(struct ctx *c, const char *addr, const char *key, const char *how)
{
	char detail[600], subject[400];
	struct strbuf body = {0};
	int rc = 0;

	struct addr a;
	const char *why;

	if (addr_parse(addr, strlen(addr), ADDR_UTF8, &a, &why) < 0 ||
	    store_member_remove(c->db, c->in->list_id, &a) < 0) {
		if (db_status(c->db) != DB_NOTFOUND && db_status(c->db) != DB_OK)
			return -1;
		outcome_add(c, "unsubscribe %s: not a member", addr);
		strbuf_printf(&c->results, "%s is not subscribed to %s.\n\n", addr, c->list);
		return 0;
	}
	snprintf(detail, sizeof(detail), "%s unsubscribed (%s)", addr, how);
	if (db_engine_event(c->db, c->in->list_id, "unsubscribe", detail) < 0)
		return -1;
	c->changed = 1;
	outcome_add(c, "unsubscribe %s: done (%s)", addr, how);
	if (c->lc.owner_notify_leave && notify_owners(c, addr, how) < 0)
		return -1;
	strbuf_printf(&c->results, "%s has left %s.\n\n", addr, c->list);
	if (c->lc.send_goodbye) {
		snprintf(subject, sizeof(subject), "You have left %s", c->list);
		strbuf_printf(&body,
		              "%s is no longer subscribed to %s.\n\n"
		              "To subscribe again, write to %s-join@%s.\n",
		              addr, c->list, c->in->list_local, c->in->list_domain);
		rc = body.p ? send_notice(c, addr, key, subject, body.p) : -1;
		free(body.p);
		c->answered = 1;
	}
	return rc;
}

static int
do_unsubscribe(struct ctx *c)
{
	char status[16];
	int r;

	if ((r = member_status(c, c->from, status, sizeof(status))) < 0)
		return -1;
	if (r == 0) {
		outcome_add(c, "unsubscribe %s: not a member", c->from);
		strbuf_printf(&c->results, "%s is not subscribed to %s.\n\n", c->from, c->list);
		return 0;
	}
	if (c->lc.unsubscribe_confirm)
		return send_confirmation(c, "unsubscribe");
	return leave(c, c->from, c->from_key, "by email");
}

/* set MODE: the sender's delivery mode, confirmed like unsubscribe (the
 * token's action is "set-MODE"), so that nobody changes what another
 * member gets by forging their From. */
static int
do_set(struct ctx *c, const char *mode)
{
	char status[16], action[24];
	int r;

	if ((r = member_status(c, c->from, status, sizeof(status))) < 0)
		return -1;
	if (r == 0) {
		outcome_add(c, "set %s %s: not a member", mode, c->from);
		strbuf_printf(&c->results, "%s is not subscribed to %s.\n\n", c->from, c->list);
		return 0;
	}
	snprintf(action, sizeof(action), "set-%s", mode);
	return send_confirmation(c, action);
}

/* Mail to LIST-leave+TOKEN (the mailto: of a personal copy's
 * List-Unsubscribe): a one-click token that checks for this list names
 * the member, who leaves at once, whoever sends it: the token is the
 * proof, as for the one-click URL. 1 when it did; 0 when the token does
 * not check (the caller treats the mail as plain LIST-leave); -1. */
static int
leave_by_token(struct ctx *c, const char *token)
{
	struct oneclick_keys k;
	char key[DB_ADDR_MAX];
	struct db_member m;
	enum oneclick_check r;
	struct addr a;
	const char *why;

	if (oneclick_keys_load(c->db, &k) < 0) {
		if (db_status(c->db) != DB_OK)
			return -1;
		outcome_add(c, "leave token: no one-click key");
		return 0;
	}
	r = oneclick_check(&k, c->in->list_id, token, strlen(token), key, sizeof(key));
	if (r != ONECLICK_OK) {
		outcome_add(c, "leave token: %s", r == ONECLICK_FORGED ? "forged" : "malformed");
		return 0;
	}
	if (addr_parse(key, strlen(key), ADDR_UTF8, &a, &why) < 0 ||
	    store_member_find(c->db, c->in->list_id, &a, &m) < 0) {
		if (db_status(c->db) != DB_NOTFOUND && db_status(c->db) != DB_OK)
			return -1;
		/* Gone already: nothing to do, and nothing to tell anyone. */
		outcome_add(c, "unsubscribe %s: not a member (one-click token by email)", key);
		c->answered = 1;
		return 1;
	}
	if (leave(c, m.address, m.addr_key, "one-click token by email") < 0)
		return -1;
	/* No reply but the goodbye: whoever sent this need not be the
	 * member, and the results would go to them. */
	c->answered = 1;
	return 1;
}

/* A confirmed `set MODE`: the member's delivery changes, if they are
 * still a member. */
static int
set_confirmed(struct ctx *c, const struct db_token *t)
{
	const char *mode = t->action + 4, *why;
	char detail[700];
	struct addr a;

	if (addr_parse(t->address, strlen(t->address), ADDR_UTF8, &a, &why) < 0 ||
	    store_member_set(c->db, c->in->list_id, &a, "delivery", mode) < 0) {
		if (db_status(c->db) != DB_NOTFOUND && db_status(c->db) != DB_OK &&
		    db_status(c->db) != DB_INVALID)
			return -1;
		outcome_add(c, "set %s %s: not a member", mode, t->address);
		strbuf_printf(&c->results, "%s is not subscribed to %s.\n\n", t->address, c->list);
		return 0;
	}
	c->changed = 1;
	snprintf(detail, sizeof(detail), "%s delivery=%s (%s)", t->address, mode, c->how);
	if (db_engine_event(c->db, c->in->list_id, "set", detail) < 0)
		return -1;
	outcome_add(c, "set %s %s: confirmed", mode, t->address);
	strbuf_printf(&c->results, "%s now gets %s from %s.\n\n", t->address,
	              strcmp(mode, "digest") == 0        ? "MIME digests"
	              : strcmp(mode, "digest-text") == 0 ? "plain-text digests"
	              : strcmp(mode, "regular") == 0     ? "every post"
	                                                 : "no mail",
	              c->list);
	return 0;
}

static int
use_token(struct ctx *c, const struct db_token *t)
{
	char detail[700], subject[400];
	struct strbuf body = {0};
	struct addr a;
	const char *why;
	int rc = 0;

	if (db_token_delete(c->db, t->token) < 0)
		return -1;
	if (strcmp(t->action, "unsubscribe") == 0) {
		return leave(c, t->address, t->addr_key, c->how);
	}
	if (strncmp(t->action, "set-", 4) == 0)
		return set_confirmed(c, t);
	if (addr_parse(t->address, strlen(t->address), ADDR_UTF8, &a, &why) < 0) {
		outcome_add(c, "confirm: token for an invalid address %s", t->address);
		return 0;
	}
	/* A member already (disabled, unconfirmed, or added meanwhile):
	 * enabled now. */
	if (store_member_add(c->db, c->in->list_id, &a, t->name, "enabled") < 0) {
		if (db_status(c->db) != DB_EXISTS ||
		    store_member_set(c->db, c->in->list_id, &a, "status", "enabled") < 0)
			return -1;
	}
	c->changed = 1;
	snprintf(detail, sizeof(detail), "%s subscribed (%s)", t->address, c->how);
	if (db_engine_event(c->db, c->in->list_id, "subscribe", detail) < 0)
		return -1;
	outcome_add(c, "subscribe %s: confirmed", t->address);
	strbuf_printf(&c->results, "%s is now subscribed to %s.\n\n", t->address, c->list);
	if (c->lc.send_welcome) {
		const char *desc = c->lc.description;
		snprintf(subject, sizeof(subject), "Welcome to %s", c->list);
		strbuf_printf(&body,
		              "Welcome to %s%s%s.\n\n"
		              "%s is now subscribed.\n\n"
		              "To post, write to %s.\n"
		              "To leave, write to %s-leave@%s, or send \"unsubscribe\"\n"
		              "to %s.\n"
		              "For help, send \"help\" to %s.\n",
		              c->list, *desc ? ": " : "", desc, t->address, c->list,
		              c->in->list_local, c->in->list_domain, c->request, c->request);
		rc = body.p ? send_notice(c, t->address, t->addr_key, subject, body.p) : -1;
		free(body.p);
		c->answered = 1;
	}
	return rc;
}

static int
decide_hold(struct ctx *c, const char *token, enum moderate_action a, const char *why)
{
	struct db_hold h;
	char result[512];
	int rc;

	if (db_hold_get_token(c->db, token, 0, &h) < 0)
		return db_status(c->db) == DB_NOTFOUND ? 1 : -1;
	if (h.list_id != c->in->list_id) {
		outcome_add(c, "%s: token of another list", moderate_action_name(a));
		strbuf_printf(&c->results, "That token does not belong to %s.\n\n", c->list);
		return 0;
	}
	rc = moderate_decide(c->db, c->conf, h.list_id, h.id, a, c->from, why, result,
	                     sizeof(result));
	if (rc < 0) {
		outcome_add(c, "%s", result);
		return -1;
	}
	outcome_add(c, "%s", result);
	strbuf_printf(&c->results, "%s\n\n", result);
	return 0;
}

static int
do_confirm(struct ctx *c, const char *token)
{
	struct db_token t;
	int r;

	if (db_token_get(c->db, token, &t) == 0) {
		if (t.list_id != c->in->list_id) {
			outcome_add(c, "confirm: token of another list");
			strbuf_printf(&c->results, "That token does not belong to %s.\n\n",
			              c->list);
			return 0;
		}
		if (t.expires < db_now()) {
			if (db_token_delete(c->db, token) < 0)
				return -1;
			outcome_add(c, "confirm %s: token expired", t.address);
			strbuf_printf(
			    &c->results,
			    "That confirmation has expired. Send your request again to %s.\n\n",
			    c->request);
			return 0;
		}
		return use_token(c, &t);
	}
	if (db_status(c->db) != DB_NOTFOUND)
		return -1;
	/* A moderation token: confirming a held post approves it. */
	if ((r = decide_hold(c, token, MODERATE_APPROVE, NULL)) <= 0)
		return r;
	outcome_add(c, "confirm: unknown token");
	strbuf_printf(&c->results,
	              "The token %s is unknown: it was used already, or it expired.\n"
	              "Send your request again to %s.\n\n",
	              token, c->request);
	return 0;
}

static int find_text(const struct msg_part *p, void *arg);

struct body_find {
	char *text;
	size_t len;
};

/* Mail to LIST-confirm+TOKEN. For a moderation token a plain reply
 * approves; a "reject [reason]" or "discard" line in the reply decides
 * otherwise, so that a moderator can answer the notice either way. */
static int
confirm_by_address(struct ctx *c, const char *token)
{
	struct commands_list cl;
	struct body_find bf = {0};
	struct db_hold h;

	if (db_hold_get_token(c->db, token, 0, &h) < 0) {
		if (db_status(c->db) != DB_NOTFOUND)
			return -1;
		return do_confirm(c, token);
	}
	if (msg_walk(c->in->message, c->in->len, find_text, &bf) < 0)
		return -1;
	commands_parse(c->subject, bf.text, bf.len, &cl);
	free(bf.text);
	for (size_t i = 0; i < cl.n; i++) {
		const struct commands_cmd *cmd = &cl.cmds[i];
		const char *why;
		if (cmd->verb != CMD_REJECT && cmd->verb != CMD_DISCARD)
			continue;
		/* "reject TOKEN reason" or just "reject reason". */
		why = cmd->line + strcspn(cmd->line, " \t");
		why += strspn(why, " \t");
		if (strcmp(cmd->token, token) == 0)
			why = cmd->rest;
		return decide_hold(
		    c, token, cmd->verb == CMD_REJECT ? MODERATE_REJECT : MODERATE_DISCARD, why);
	}
	return decide_hold(c, token, MODERATE_APPROVE, NULL);
}

static void
help_text(struct ctx *c, struct strbuf *t)
{
	const char *l = c->in->list_local, *d = c->in->list_domain;
	const char *desc = c->lc.description;

	strbuf_printf(t,
	              "This is the command address of the mailing list %s%s%s.\n"
	              "\n"
	              "Send commands to %s, one per line, in the subject or in\n"
	              "the body of a message:\n"
	              "\n"
	              "  subscribe (or join)      subscribe the address you write from; a\n"
	              "                           confirmation is mailed to it first\n"
	              "  unsubscribe (or leave)   leave the list\n"
	              "  confirm TOKEN            confirm a request with the token you got\n"
	              "  set digest               get one MIME digest per issue instead of\n"
	              "                           each post (set digest-text: plain text;\n"
	              "                           set regular: every post; set nomail:\n"
	              "                           nothing); confirmed like unsubscribe\n"
	              "  help                     this text\n"
	              "  end                      stop reading commands here\n"
	              "\n"
	              "Or just write to:\n"
	              "  %s-join@%s     to subscribe\n"
	              "  %s-leave@%s    to leave\n"
	              "  %s-owner@%s    to reach the people who run the list\n"
	              "\n"
	              "Moderators decide held posts with the token of the notice:\n"
	              "  approve TOKEN, reject TOKEN [reason], discard TOKEN\n",
	              c->list, *desc ? ": " : "", desc, c->request, l, d, l, d, l, d);
}

static int
run_command(struct ctx *c, const struct commands_cmd *cmd)
{
	strbuf_printf(&c->results, "> %s\n", cmd->line);
	if (cmd->bad && cmd->verb == CMD_SET) {
		outcome_add(c, "%s: no valid mode", cmd->line);
		strbuf_printf(&c->results,
		              "set takes one of: digest, digest-text, regular, nomail.\n\n");
		return 0;
	}
	if (cmd->bad) {
		outcome_add(c, "%s: no valid token", cmd->line);
		strbuf_printf(&c->results, "This command needs a token (letters and digits).\n\n");
		return 0;
	}
	switch (cmd->verb) {
	case CMD_SUBSCRIBE:
		return do_subscribe(c);
	case CMD_UNSUBSCRIBE:
		return do_unsubscribe(c);
	case CMD_CONFIRM:
		return do_confirm(c, cmd->token);
	case CMD_SET:
		return do_set(c, cmd->token);
	case CMD_HELP:
		help_text(c, &c->results);
		strbuf_printf(&c->results, "\n");
		outcome_add(c, "help");
		return 0;
	case CMD_APPROVE:
	case CMD_REJECT:
	case CMD_DISCARD: {
		enum moderate_action a = cmd->verb == CMD_APPROVE  ? MODERATE_APPROVE
		                         : cmd->verb == CMD_REJECT ? MODERATE_REJECT
		                                                   : MODERATE_DISCARD;
		int r = decide_hold(c, cmd->token, a, cmd->rest);
		if (r == 1) {
			outcome_add(c, "%s: unknown token", moderate_action_name(a));
			strbuf_printf(&c->results, "No held message has the token %s.\n\n",
			              cmd->token);
			r = 0;
		}
		return r;
	}
	}
	return 0;
}

/* The text of the first text/plain part that is not an attachment. */

static int
find_text(const struct msg_part *p, void *arg)
{
	struct body_find *bf = arg;
	char *disp, *cte;

	if (!msg_ctype_is(p->ct, "text", "plain"))
		return 0;
	/* Not the text of a forwarded or attached message. */
	for (const struct msg_part *q = p->parent; q != NULL; q = q->parent)
		if (msg_ctype_is(q->ct, "message", "rfc822"))
			return 0;
	disp = msg_header_text(p->headers, "Content-Disposition");
	if (disp != NULL && strncasecmp(disp, "attachment", 10) == 0) {
		free(disp);
		return 0;
	}
	free(disp);
	cte = msg_header_text(p->headers, "Content-Transfer-Encoding");
	bf->text = msg_decode_body(cte, p->body, p->body_len, &bf->len);
	free(cte);
	return 1;
}

/* The reply with the results of the commands, to the sender. */
static int
send_results(struct ctx *c)
{
	struct strbuf body = {0};
	char subject[400], qid[DB_QID_LEN];
	int ok = commands_may_reply(c->db, c->conf, c->from_key);

	if (ok < 0)
		return -1;
	if (!ok) {
		outcome_add(c, "no reply (auto_reply_limit reached)");
		return 0;
	}
	snprintf(subject, sizeof(subject), "Re: %s",
	         c->subject && *c->subject ? c->subject : "your request");
	strbuf_printf(&body, "The results of your email to %s:\n\n%s", c->in->rcpt,
	              c->results.p ? c->results.p : "");
	if (body.p == NULL)
		return -1;
	ok = send_mail(c, c->from, c->from_key, "reply", subject, NULL, body.p, qid);
	free(body.p);
	if (ok < 0)
		return -1;
	outcome_add(c, "replied qid=%s", qid);
	return 0;
}

static int
handle_request(struct ctx *c)
{
	struct commands_list cl;
	struct body_find bf = {0};
	int rc = 0;

	if (msg_walk(c->in->message, c->in->len, find_text, &bf) < 0) {
		outcome_add(c, "out of memory");
		return -1;
	}
	commands_parse(c->subject, bf.text, bf.len, &cl);
	free(bf.text);
	if (cl.n == 0) {
		outcome_add(c, "request: no command found");
		strbuf_printf(&c->results, "No command was found in your message.\n\n");
		help_text(c, &c->results);
	}
	for (size_t i = 0; i < cl.n && rc == 0; i++)
		rc = run_command(c, &cl.cmds[i]);
	if (rc < 0)
		return -1;
	/* One results reply, unless a confirmation or notice was the whole
	 * answer to a single command. */
	if (cl.n == 1 && c->answered)
		return 0;
	return send_results(c);
}

/* Forwards the message to the list's owners, marked so that it cannot
 * come round again. */
struct owners {
	struct outq_rcpt r[64];
	char addr[64][DB_ADDR_MAX];
	char domain[64][ADDR_DOMAIN_MAX + 1];
	size_t n;
};

static int
add_owner(const char *address, void *arg)
{
	struct owners *o = arg;

	if (o->n >= 64)
		return 1;
	if (addr_domain_of(address, o->domain[o->n], sizeof(o->domain[0])) < 0)
		return 0;
	snprintf(o->addr[o->n], sizeof(o->addr[0]), "%s", address);
	o->r[o->n].addr = o->addr[o->n];
	o->r[o->n].domain = o->domain[o->n];
	o->r[o->n].member_id = 0;
	o->n++;
	return 0;
}

static int
handle_owner(struct ctx *c)
{
	struct owners *o = calloc(1, sizeof(*o));
	char loop[DB_ADDR_MAX + 16], env_from[DB_ADDR_MAX], qid[DB_QID_LEN];
	struct strbuf body = {0};
	struct outq_msg m = {
	    .list_id = c->in->list_id,
	    .spool_id = c->in->spool_id,
	    .kind = "notice",
	    .env_from = env_from,
	    .lifetime = c->conf->max_queue_lifetime,
	};
	int rc = 0;

	if (o == NULL)
		return -1;
	snprintf(loop, sizeof(loop), "%s-owner@%s", c->in->list_local, c->in->list_domain);
	for (size_t i = 0;; i++) {
		const struct msg_header *h = msg_header_get(&c->m, "X-Loop", i);
		char *v;
		int seen;
		if (h == NULL)
			break;
		v = msg_unfold(h->value, h->value_len);
		seen = v && strcasecmp(v, loop) == 0;
		free(v);
		if (seen) {
			outcome_add(c, "owner mail: dropped, loop (X-Loop: %s)", loop);
			free(o);
			return 0;
		}
	}
	if (db_list_role_each(c->db, c->in->list_id, "owner", add_owner, o) < 0) {
		free(o);
		return -1;
	}
	if (o->n == 0) {
		outcome_add(c, "owner mail: dropped, the list has no owners");
		free(o);
		return 0;
	}
	snprintf(env_from, sizeof(env_from), "%s-bounces@%s", c->in->list_local,
	         c->in->list_domain);
	strbuf_printf(&body, "X-Loop: %s\r\n", loop);
	strbuf_add(&body, c->in->message, c->in->len);
	if (body.oom) {
		strbuf_free(&body);
		free(o);
		return -1;
	}
	m.body = body.p;
	m.len = body.len;
	if (db_outq_add(c->db, &m, o->r, o->n, qid, NULL) < 0)
		rc = -1;
	else
		outcome_add(c, "owner mail: forwarded to %zu owner%s qid=%s", o->n,
		            o->n == 1 ? "" : "s", qid);
	free(body.p);
	free(o);
	return rc;
}

static void
ctx_free(struct ctx *c)
{
	msg_free(&c->m);
	free(c->subject);
	free(c->message_id);
	free(c->references);
	free(c->results.p);
	free(c->outcome.p);
	list_conf_free(&c->lc);
}

static int
ctx_init(struct ctx *c)
{
	char *raw;

	if (msg_parse(&c->m, c->in->message, c->in->len) < 0)
		return -1;
	if ((raw = msg_header_text(&c->m, "Subject")) != NULL) {
		c->subject = fold_flatten(msg_decode_words(raw, strlen(raw), NULL));
		free(raw);
	}
	c->message_id = msg_header_text(&c->m, "Message-ID");
	c->references = msg_header_text(&c->m, "References");
	snprintf(c->list, sizeof(c->list), "%s@%s", c->in->list_local, c->in->list_domain);
	snprintf(c->request, sizeof(c->request), "%s-request@%s", c->in->list_local,
	         c->in->list_domain);
	/* Who the commands are for: the From address, else the envelope
	 * sender (docs/commands.md). */
	commands_sender(&c->m, c->in->mail_from, c->from, sizeof(c->from), c->from_key,
	                sizeof(c->from_key), c->from_name, sizeof(c->from_name));
	return 0;
}

/* 1 when the sender is a list or role address of this server, else 0;
 * -1 when the store failed. */
static int
from_is_ours(struct ctx *c)
{
	struct addr a;
	const char *why;

	if (addr_parse(c->from, strlen(c->from), ADDR_UTF8, &a, &why) < 0)
		return 0;
	return listaddr_is_ours(c->db, &a);
}

int
commands_handle(struct db *db, const struct conf *conf, const struct inbound *in, char *outcome,
                size_t outcomelen)
{
	struct ctx c = {.db = db, .conf = conf, .in = in, .how = "confirmed by email"};
	const char *why;
	int rc = 0;

	if (in->list_id <= 0) {
		snprintf(outcome, outcomelen, "dropped: the list is gone");
		return 0;
	}
	if (ctx_init(&c) < 0) {
		snprintf(outcome, outcomelen, "out of memory");
		ctx_free(&c);
		return -1;
	}
	if (list_conf_load(db, in->list_id, &c.lc) < 0) {
		snprintf(outcome, outcomelen, "list settings: %s", db_errmsg(db));
		ctx_free(&c);
		return -1;
	}
	/* Expiry on access: the list's overdue holds are settled before
	 * anything reads them (cheap: a partial index walk). */
	if (moderate_expire(db, conf, in->list_id, db_now(), NULL) < 0) {
		snprintf(outcome, outcomelen, "expiring holds: %s", db_errmsg(db));
		ctx_free(&c);
		return -1;
	}
	if (in->role == LISTADDR_OWNER) {
		rc = handle_owner(&c);
		goto out;
	}
	if ((why = commands_auto_reason(&c.m, in->mail_from)) != NULL) {
		outcome_add(&c, "ignored: %s (RFC 3834: no action, no reply)", why);
		goto out;
	}
	if (c.from[0] == '\0') {
		outcome_add(&c, "ignored: no valid sender address");
		goto out;
	}
	/* Mail from one of our own list addresses: a subscription would make a
	 * list a member (the confirmation, token included, would go to every
	 * member of that list), and any reply would be posted to it. */
	if ((rc = from_is_ours(&c)) != 0) {
		if (rc > 0)
			outcome_add(&c,
			            "ignored: %s is a list address of this server (no "
			            "subscription, no reply)",
			            c.from);
		goto out;
	}
	if (in->role == LISTADDR_REQUEST) {
		rc = handle_request(&c);
	} else if (in->role == LISTADDR_JOIN || in->role == LISTADDR_SUBSCRIBE) {
		rc = do_subscribe(&c);
	} else if (in->role == LISTADDR_LEAVE && in->extension && *in->extension) {
		/* LIST-leave+TOKEN; a token that does not check is plain
		 * LIST-leave (with its confirmation). */
		if ((rc = leave_by_token(&c, in->extension)) == 0)
			rc = do_unsubscribe(&c);
		else if (rc > 0)
			rc = 0;
	} else if (in->role == LISTADDR_LEAVE || in->role == LISTADDR_UNSUBSCRIBE) {
		rc = do_unsubscribe(&c);
	} else if (in->role == LISTADDR_CONFIRM) {
		struct commands_cmd cmd;
		char line[COMMANDS_TOKEN_MAX + 16];
		snprintf(line, sizeof(line), "confirm %s", in->extension ? in->extension : "");
		if (commands_parse_line(line, line + strlen(line), &cmd) != 1 || cmd.bad)
			outcome_add(&c, "confirm: no valid token in the address");
		else
			rc = confirm_by_address(&c, cmd.token);
	} else {
		outcome_add(&c, "ignored: role %s is not a command address",
		            listaddr_role_name(in->role));
		goto out;
	}
	/* By address: the answer is the confirmation or notice sent, else
	 * the results (already a member, unknown token, ...). */
	if (rc == 0 && in->role != LISTADDR_REQUEST && !c.answered && c.results.len > 0)
		rc = send_results(&c);
out:
	snprintf(outcome, outcomelen, "%s", c.outcome.p ? c.outcome.p : "done");
	ctx_free(&c);
	return rc < 0 ? -1 : 0;
}

/* ---- housekeeping ---- */

int
commands_housekeeping(struct db *db, const struct conf *conf, int64_t now, size_t *expired)
{
	if (moderate_expire(db, conf, 0, now, expired) < 0)
		return -1;
	if (db_token_purge(db, now, NULL) < 0)
		return -1;
	/* The longest window counted is a day unless a list counts longer;
	 * keep a month. */
	return db_reply_log_purge(db, now - 30 * DAY);
}

/* ---- the web face's way in ---- */

int
commands_web(struct db *db, const struct conf *conf, enum commands_web_op op,
             struct commands_web *w)
{
	struct inbound in = {
	    .qid = "",
	    .mail_from = "",
	    .rcpt = "",
	    .list_id = w->list_id,
	    .list_local = w->list_local,
	    .list_domain = w->list_domain,
	    .role = LISTADDR_REQUEST,
	    .message = "",
	};
	struct ctx c = {.db = db, .conf = conf, .in = &in, .how = "confirmed on the web"};
	struct db_token t;
	struct addr a;
	const char *why;
	int rc = 0;

	w->changed = w->mail_queued = w->limited = w->refused = w->not_member = 0;
	w->outcome[0] = '\0';
	snprintf(c.list, sizeof(c.list), "%s@%s", w->list_local, w->list_domain);
	snprintf(c.request, sizeof(c.request), "%s-request@%s", w->list_local, w->list_domain);
	if (list_conf_load(db, w->list_id, &c.lc) < 0) {
		snprintf(w->outcome, sizeof(w->outcome), "list settings: %s", db_errmsg(db));
		return -1;
	}
	if (op == COMMANDS_WEB_CONFIRM) {
		if (db_token_get(db, w->token, &t) < 0 || t.list_id != w->list_id) {
			rc = db_status(db) == DB_NOTFOUND || db_status(db) == DB_OK ? 0 : -1;
			w->not_member = 1; /* no such token (of this list) */
			outcome_add(&c, "confirm: unknown token");
			goto out;
		}
		snprintf(c.from, sizeof(c.from), "%s", t.address);
		snprintf(c.from_key, sizeof(c.from_key), "%s", t.addr_key);
		rc = t.expires < db_now() ? db_token_delete(db, w->token) : use_token(&c, &t);
		if (t.expires < db_now() && rc == 0)
			outcome_add(&c, "confirm %s: token expired", t.address);
		goto out;
	}
	/* An address from a form, or from a checked one-click token. */
	if (addr_parse(w->address, strlen(w->address), ADDR_UTF8, &a, &why) < 0 || a.literal ||
	    addr_format(&a, c.from, sizeof(c.from)) < 0 ||
	    addr_key(&a, c.from_key, sizeof(c.from_key)) < 0) {
		w->refused = 1;
		outcome_add(&c, "not a valid address");
		goto out;
	}
	if ((rc = listaddr_is_ours(db, &a)) != 0) {
		if (rc > 0)
			outcome_add(&c, "ignored: %s is a list address of this server", c.from);
		w->refused = rc > 0;
		rc = rc < 0 ? -1 : 0;
		goto out;
	}
	switch (op) {
	case COMMANDS_WEB_SUBSCRIBE:
		if (c.lc.subscribe_policy == list_subscribe_policy_closed) {
			w->refused = 1;
			outcome_add(&c, "subscribe %s: refused (subscribe_policy closed)", c.from);
			break;
		}
		rc = do_subscribe(&c);
		break;
	case COMMANDS_WEB_UNSUBSCRIBE: {
		char status[16];
		int r = member_status(&c, c.from, status, sizeof(status));

		/* Always by confirmation, whatever unsubscribe_confirm says: a
		 * form proves nothing about who filled it in. */
		if (r < 0)
			rc = -1;
		else if (r == 0) {
			w->not_member = 1;
			outcome_add(&c, "unsubscribe %s: not a member", c.from);
		} else
			rc = send_confirmation(&c, "unsubscribe");
		break;
	}
	case COMMANDS_WEB_LEAVE:
		rc = leave(&c, c.from, c.from_key, w->how ? w->how : "on the web");
		if (rc == 0 && !c.changed)
			w->not_member = 1;
		break;
	case COMMANDS_WEB_CONFIRM:
		break;
	}
out:
	w->changed = c.changed;
	w->mail_queued = c.queued;
	w->limited = c.limited;
	snprintf(w->outcome + strlen(w->outcome), sizeof(w->outcome) - strlen(w->outcome), "%s",
	         c.outcome.p ? c.outcome.p : "done");
	ctx_free(&c);
	return rc < 0 ? -1 : 0;
}
