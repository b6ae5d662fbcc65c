/*
 * web.h - what the HTTP face does to lists and members: the list logic
 * behind the confirmation pages, the unsubscribe and subscribe forms and
 * one-click unsubscribe (RFC 8058). server/http.c turns HTTP requests
 * into these calls (on its worker thread, with its own store connection)
 * and a struct web_result into a page; no HTML and no HTTP here.
 *
 * The *_show functions only read: a GET or HEAD (a link scanner, a
 * mail-security proxy) never changes anything. The *_apply and *_request
 * functions change the store in one transaction of their own (begun and
 * committed here) and return only after the commit, or, when the caller
 * has a transaction open, under a savepoint in it (the caller then answers
 * only after its own commit: the HTTP worker commits a batch of requests
 * at once); they send mail as
 * the email commands do (commands_send(): limits, envelope, log entry),
 * so the caller kicks delivery when web_result.mail_queued is set.
 *
 * Outcomes map to HTTP statuses in web_result.status: 200 done or shown,
 * 400 malformed input, 403 a forged one-click token, 404 no such list or
 * token, 410 an expired token, 429 a confirmation limit reached, 500 the
 * store failed (a line for the log in result.log).
 */
#ifndef FANMAIL_WEB_H
#define FANMAIL_WEB_H

#include <stddef.h>
#include <stdint.h>

struct conf;
struct db;
struct oneclick_keys;

enum web_kind {
	WEB_CONFIRM_SUBSCRIBE,   /* a token that subscribes address */
	WEB_CONFIRM_UNSUBSCRIBE, /* a token that unsubscribes address */
	WEB_ONECLICK,            /* one-click unsubscribe of address */
	WEB_FORM_UNSUBSCRIBE,    /* the form asking for an address */
	WEB_FORM_SUBSCRIBE,
	WEB_ERROR,
};

struct web_result {
	int status; /* HTTP status, as above */
	enum web_kind kind;
	int done;               /* an apply changed something (or had nothing left to change) */
	int mail_queued;        /* mail went into the outbound queue: kick delivery */
	char list_address[322]; /* the list (local@domain), "" when unknown */
	char list_name[256];    /* its display name, or its local part */
	char list_description[512];
	char address[322]; /* the member or subscriber, "" when none */
	char message[512]; /* one sentence for the page, plain text (the page escapes it) */
	char log[600];     /* one line for fanmaild's log, "" when nothing to log */
};

/* GET/HEAD /confirm/TOKEN: what confirming the token would do. */
int web_confirm_show(struct db *db, const struct conf *conf, const char *token,
                     struct web_result *r);

/* POST /confirm/TOKEN: uses the token (subscribe, with the welcome mail;
 * or unsubscribe, with the goodbye mail and the owners' notice per the
 * list's settings). */
int web_confirm_apply(struct db *db, const struct conf *conf, const char *token,
                      struct web_result *r);

/* GET/HEAD /unsubscribe/LIST/TOKEN: the page with the button; changes
 * nothing. */
int web_oneclick_show(struct db *db, const struct conf *conf, const struct oneclick_keys *k,
                      const char *list_address, const char *token, struct web_result *r);

/* POST /unsubscribe/LIST/TOKEN (body List-Unsubscribe=One-Click, or the
 * page's button): removes exactly that member. Idempotent: a member who
 * is gone already gets 200 and nothing changes. A forged or altered token
 * changes nothing (403, or 400 when malformed). */
int web_oneclick_apply(struct db *db, const struct conf *conf, const struct oneclick_keys *k,
                       const char *list_address, const char *token, struct web_result *r);

/* GET /unsubscribe/LIST or /subscribe/LIST: the form (404 when there is no
 * such list). */
int web_form_show(struct db *db, const char *list_address, enum web_kind form,
                  struct web_result *r);

/* POST /unsubscribe/LIST or /subscribe/LIST with address=...: mails the
 * usual confirmation to that address (within the list's confirmation
 * limits). The answer is the same whether or not the address is a member,
 * so the form tells nobody who is subscribed. */
int web_form_request(struct db *db, const struct conf *conf, const char *list_address,
                     enum web_kind form, const char *address, struct web_result *r);

#endif
