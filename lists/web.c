/*
 * web.c - the list logic behind the HTTP face (see web.h): reads for the
 * pages, and the changes their buttons make, each change one transaction
 * through the email commands' own actions (commands_web()).
 */
#include "lists/web.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "conf/conf.h"
#include "db/lists.h"
#include "db/members.h"
#include "db/tokens.h"
#include "lists/commands.h"
#include "lists/list_conf.h"
#include "lists/listaddr.h"
#include "lists/oneclick.h"
#include "lists/store.h"
#include "mail/addr.h"

static void
result_init(struct web_result *r)
{
	memset(r, 0, sizeof(*r));
	r->kind = WEB_ERROR;
	r->status = 500;
}

static int
fail(struct web_result *r, int status, const char *msg)
{
	r->status = status;
	r->kind = WEB_ERROR;
	snprintf(r->message, sizeof(r->message), "%s", msg);
	return 0;
}

static int
store_failed(struct db *db, struct web_result *r, const char *what)
{
	fail(r, 500,
	     "The server could not read or change its store; nothing was changed. "
	     "Please try again later.");
	snprintf(r->log, sizeof(r->log), "%s: %s", what, db_errmsg(db));
	return -1;
}

/* The list named by address (local@domain, any case) into *l and the
 * result's list fields. 0, or 1 when there is no such list (404 set), -1
 * when the store failed. */
static int
find_list(struct db *db, const char *address, struct db_list *l, struct web_result *r)
{
	struct listaddr_match m;
	struct list_conf lc;
	int rc;

	/* The one lookup of list addresses (any case, the role table):
	 * only the list's own address names it here, not LIST-request. */
	if ((rc = listaddr_find(db, address, &m)) < 0)
		return store_failed(db, r, "finding a list");
	if (rc == 0 || m.role != LISTADDR_POST || m.ext != NULL) {
		fail(r, 404, "There is no such list here.");
		return 1;
	}
	if (db_list_get(db, m.list_id, l) < 0) {
		if (db_status(db) != DB_NOTFOUND)
			return store_failed(db, r, "finding a list");
		fail(r, 404, "There is no such list here.");
		return 1;
	}
	snprintf(r->list_address, sizeof(r->list_address), "%s@%s", l->local, l->domain);
	if (list_conf_load(db, l->id, &lc) < 0)
		return store_failed(db, r, "list settings");
	snprintf(r->list_name, sizeof(r->list_name), "%s",
	         lc.display_name[0] ? lc.display_name : l->local);
	snprintf(r->list_description, sizeof(r->list_description), "%s", lc.description);
	list_conf_free(&lc);
	return 0;
}

/* A confirmation token is 32 hex digits (db/tokens.h). */
static int
token_form_ok(const char *t)
{
	size_t n = strlen(t);

	if (n != DB_TOKEN_LEN - 1)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!isxdigit((unsigned char)t[i]))
			return 0;
	return 1;
}

/* The token's row, lower-cased first. 0 with *t, 1 when the page is an
 * error already (400, 404, 410), -1 when the store failed. */
static int
confirm_token(struct db *db, const char *token, struct db_token *t, struct db_list *l,
              struct web_result *r)
{
	char low[DB_TOKEN_LEN];

	if (!token_form_ok(token))
		return fail(r, 400,
		            "That link is not a confirmation link: the token in it is "
		            "malformed. Copy the whole link from the mail."),
		       1;
	for (size_t i = 0; i < sizeof(low); i++)
		low[i] = (char)tolower((unsigned char)token[i]);
	if (db_token_get(db, low, t) < 0) {
		if (db_status(db) != DB_NOTFOUND)
			return store_failed(db, r, "reading a token");
		fail(r, 404,
		     "This confirmation link is unknown: it was used already, or it "
		     "expired and was deleted.");
		return 1;
	}
	if (db_list_get(db, t->list_id, l) < 0) {
		if (db_status(db) != DB_NOTFOUND)
			return store_failed(db, r, "reading a list");
		fail(r, 404, "The list of this confirmation link is gone.");
		return 1;
	}
	if (find_list(db, l->address, l, r) != 0)
		return r->status == 404 ? 1 : -1;
	snprintf(r->address, sizeof(r->address), "%s", t->address);
	if (t->expires < db_now()) {
		fail(r, 410, "This confirmation link has expired. Send your request again.");
		return 1;
	}
	/* `set MODE` tokens are confirmed by mail only (their mail has no
	 * link): this page would not say what it changes. 403, not 404: the
	 * token is good, and stays so for the reply (nothing is deleted). */
	if (strcmp(t->action, "subscribe") != 0 && strcmp(t->action, "unsubscribe") != 0) {
		fail(r, 403,
		     "This page cannot confirm this request, and nothing was changed: "
		     "confirm this change by replying to the mail that asked for it.");
		return 1;
	}
	r->kind =
	    strcmp(t->action, "subscribe") == 0 ? WEB_CONFIRM_SUBSCRIBE : WEB_CONFIRM_UNSUBSCRIBE;
	return 0;
}

int
web_confirm_show(struct db *db, const struct conf *conf, const char *token, struct web_result *r)
{
	struct db_token t;
	struct db_list l;
	int rc;

	(void)conf;
	result_init(r);
	if ((rc = confirm_token(db, token, &t, &l, r)) != 0)
		return rc < 0 ? -1 : 0;
	r->status = 200;
	snprintf(r->message, sizeof(r->message),
	         r->kind == WEB_CONFIRM_SUBSCRIBE ? "Press the button to subscribe %s to %s."
	                                          : "Press the button to unsubscribe %s from %s.",
	         t.address, r->list_address);
	return 0;
}

/* Runs one commands_web() in a transaction of its own, committed before
 * it returns; or, when the caller has a transaction open (the HTTP worker
 * commits a batch of requests at once), under a savepoint in it, and the
 * caller answers only after its commit. */
static int
web_txn(struct db *db, const struct conf *conf, enum commands_web_op op, struct commands_web *w,
        struct web_result *r)
{
	int outer = db_in_transaction(db);

	if ((outer ? db_savepoint(db) : db_begin(db)) < 0)
		return store_failed(db, r, "beginning a transaction");
	if (commands_web(db, conf, op, w) < 0) {
		store_failed(db, r, w->outcome);
		if (outer)
			db_undo_savepoint(db);
		else
			db_rollback(db);
		return -1;
	}
	if ((outer ? db_release_savepoint(db) : db_commit(db)) < 0) {
		if (outer)
			db_undo_savepoint(db);
		else
			db_rollback(db);
		return store_failed(db, r, "committing");
	}
	r->mail_queued = w->mail_queued;
	r->done = 1;
	return 0;
}

int
web_confirm_apply(struct db *db, const struct conf *conf, const char *token, struct web_result *r)
{
	struct db_token t;
	struct db_list l;
	struct commands_web w = {0};
	int rc;

	result_init(r);
	if ((rc = confirm_token(db, token, &t, &l, r)) != 0) {
		if (r->status == 410 && db_token_delete(db, t.token) < 0)
			return store_failed(db, r, "deleting an expired token");
		return rc < 0 ? -1 : 0;
	}
	w.list_id = l.id;
	w.list_local = l.local;
	w.list_domain = l.domain;
	w.token = t.token;
	if (web_txn(db, conf, COMMANDS_WEB_CONFIRM, &w, r) < 0)
		return -1;
	if (w.not_member) /* used by another request meanwhile */
		return fail(r, 404, "This confirmation link was used already.");
	r->status = 200;
	snprintf(r->message, sizeof(r->message),
	         r->kind == WEB_CONFIRM_SUBSCRIBE ? "%s is now subscribed to %s."
	                                          : "%s has left %s.",
	         t.address, r->list_address);
	snprintf(r->log, sizeof(r->log), "web: list=%s %s", r->list_address, w.outcome);
	return 0;
}

/* The member a one-click token names, into addr (the address key, an
 * address itself). 0, or 1 when the page is an error (400, 403, 404), -1. */
static int
oneclick_member(struct db *db, const struct oneclick_keys *k, const char *list_address,
                const char *token, struct db_list *l, char *addr, size_t len, struct web_result *r)
{
	int rc;

	if ((rc = find_list(db, list_address, l, r)) != 0)
		return rc;
	switch (oneclick_check(k, l->id, token, strlen(token), addr, len)) {
	case ONECLICK_OK:
		break;
	case ONECLICK_MALFORMED:
		fail(r, 400,
		     "That unsubscribe link is malformed. Copy the whole link from the mail.");
		return 1;
	case ONECLICK_FORGED:
		fail(r, 403,
		     "That unsubscribe link is not valid for this list: it was altered, "
		     "or made with a key that is no longer in use.");
		return 1;
	}
	snprintf(r->address, sizeof(r->address), "%s", addr);
	r->kind = WEB_ONECLICK;
	return 0;
}

int
web_oneclick_show(struct db *db, const struct conf *conf, const struct oneclick_keys *k,
                  const char *list_address, const char *token, struct web_result *r)
{
	char addr[DB_PATH_MAX + 1];
	struct db_list l;
	struct db_member m;
	struct addr a;
	const char *why;
	int rc;

	(void)conf;
	result_init(r);
	if ((rc = oneclick_member(db, k, list_address, token, &l, addr, sizeof(addr), r)) != 0)
		return rc < 0 ? -1 : 0;
	r->status = 200;
	if (addr_parse(addr, strlen(addr), ADDR_UTF8, &a, &why) == 0 &&
	    store_member_find(db, l.id, &a, &m) == 0) {
		snprintf(r->address, sizeof(r->address), "%s", m.address);
		snprintf(r->message, sizeof(r->message),
		         "Press the button to unsubscribe %s from %s.", m.address, r->list_address);
	} else if (db_status(db) == DB_NOTFOUND || db_status(db) == DB_OK) {
		r->done = 1; /* nothing left to do */
		snprintf(r->message, sizeof(r->message), "%s is not subscribed to %s.", addr,
		         r->list_address);
	} else {
		return store_failed(db, r, "finding a member");
	}
	return 0;
}

int
web_oneclick_apply(struct db *db, const struct conf *conf, const struct oneclick_keys *k,
                   const char *list_address, const char *token, struct web_result *r)
{
	char addr[DB_PATH_MAX + 1];
	struct db_list l;
	struct db_member m;
	struct addr a;
	const char *why;
	struct commands_web w = {0};
	int rc;

	result_init(r);
	if ((rc = oneclick_member(db, k, list_address, token, &l, addr, sizeof(addr), r)) != 0)
		return rc < 0 ? -1 : 0;
	/* The member's address as they gave it, for the goodbye mail. */
	if (addr_parse(addr, strlen(addr), ADDR_UTF8, &a, &why) == 0 &&
	    store_member_find(db, l.id, &a, &m) == 0)
		snprintf(addr, sizeof(addr), "%s", m.address);
	w.list_id = l.id;
	w.list_local = l.local;
	w.list_domain = l.domain;
	w.address = addr;
	w.how = "one-click unsubscribe";
	if (web_txn(db, conf, COMMANDS_WEB_LEAVE, &w, r) < 0)
		return -1;
	r->status = 200;
	snprintf(r->message, sizeof(r->message),
	         w.not_member ? "%s is not subscribed to %s (any more)." : "%s has left %s.", addr,
	         r->list_address);
	if (!w.not_member)
		snprintf(r->log, sizeof(r->log), "web: list=%s %s", r->list_address, w.outcome);
	return 0;
}

int
web_form_show(struct db *db, const char *list_address, enum web_kind form, struct web_result *r)
{
	struct db_list l;
	int rc;

	result_init(r);
	if ((rc = find_list(db, list_address, &l, r)) != 0)
		return rc < 0 ? -1 : 0;
	r->kind = form;
	r->status = 200;
	snprintf(r->message, sizeof(r->message),
	         form == WEB_FORM_SUBSCRIBE
	             ? "Enter your address to subscribe to %s; a confirmation will be mailed to it."
	             : "Enter your address to unsubscribe from %s; a confirmation will be mailed "
	               "to it.",
	         r->list_address);
	return 0;
}

int
web_form_request(struct db *db, const struct conf *conf, const char *list_address,
                 enum web_kind form, const char *address, struct web_result *r)
{
	struct db_list l;
	struct commands_web w = {0};
	int rc;

	result_init(r);
	if ((rc = find_list(db, list_address, &l, r)) != 0)
		return rc < 0 ? -1 : 0;
	r->kind = form;
	w.list_id = l.id;
	w.list_local = l.local;
	w.list_domain = l.domain;
	w.address = address;
	if (web_txn(db, conf,
	            form == WEB_FORM_SUBSCRIBE ? COMMANDS_WEB_SUBSCRIBE : COMMANDS_WEB_UNSUBSCRIBE,
	            &w, r) < 0)
		return -1;
	snprintf(r->address, sizeof(r->address), "%s", address);
	snprintf(r->log, sizeof(r->log), "web: list=%s %s", r->list_address, w.outcome);
	if (w.refused && strstr(w.outcome, "subscribe_policy") != NULL)
		return fail(r, 403,
		            "This list does not take subscriptions on the web; ask its "
		            "owners.");
	if (w.refused)
		return fail(r, 400, "That is not an address a confirmation can be mailed to.");
	if (w.limited)
		return fail(r, 429,
		            "Too many confirmation requests for this address or list "
		            "lately; try again later.");
	/* The same answer whether or not the address is a member (or already
	 * subscribed): the form must not tell who is on the list. */
	r->status = 200;
	snprintf(r->message, sizeof(r->message),
	         "If %s can be %s, a confirmation request is on its way to it. Follow the "
	         "link in that mail to finish.",
	         address, form == WEB_FORM_SUBSCRIBE ? "subscribed" : "unsubscribed");
	return 0;
}
