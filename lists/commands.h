/*
 * commands.h - email commands: what mail to LIST-request, LIST-join,
 * LIST-leave, LIST-subscribe, LIST-unsubscribe, LIST-confirm+TOKEN and
 * LIST-owner does.
 *
 * Entry points:
 *   commands_handle()   the handler for those roles (lists/inbound.c; contract in
 *                       lists/inbound.h: runs inside the runner's
 *                       transaction, 0 with an outcome line, -1 to roll
 *                       back).
 *   commands_parse()    the commands in a subject and a text body (pure).
 *   commands_auto_reason() RFC 3834: why a message must not be answered.
 *   commands_may_reply() the per-address daily limit on automatic replies.
 *   commands_send()     queues a notice with the envelope and log entry
 *                       every automatic mail of the list engine gets.
 *
 * Rules, in the order applied:
 * - Mail that is automatic (RFC 3834: Auto-Submitted other than "no",
 *   Precedence bulk/junk/list, a List-Id, the null sender, or a sender like
 *   MAILER-DAEMON, owner-*, *-request, *-bounces) is neither acted on nor
 *   answered, so that an auto-responder can never confirm a subscription
 *   or start a mail loop. LIST-owner mail is the exception: it is always
 *   forwarded to the owners (unless it already came through them).
 * - Subscribing is double opt-in: a token (confirm_token_lifetime) is mailed
 *   to the address; the member is added when the token comes back, to
 *   LIST-confirm+TOKEN or as "confirm TOKEN" to LIST-request. Leaving
 *   confirms the same way unless unsubscribe_confirm is no.
 * - Confirmation mails are limited per address and per list
 *   (confirm_limit_per_address, confirm_limit_per_list within
 *   confirm_limit_window), and every automatic reply per address a day
 *   (auto_reply_limit, all lists together). Past a limit nothing is sent
 *   and the outcome says so.
 * - A moderation token (from a hold notice) sent as "approve TOKEN",
 *   "reject TOKEN [reason]", "discard TOKEN", or "confirm TOKEN" (= approve),
 *   or to LIST-confirm+TOKEN (= approve), decides the held post.
 */
#ifndef FANMAIL_COMMANDS_H
#define FANMAIL_COMMANDS_H

#include <stddef.h>
#include <stdint.h>

#include "lists/inbound.h"

struct db;
struct conf;
struct msg;

enum commands_verb {
	CMD_SUBSCRIBE,   /* subscribe, join */
	CMD_UNSUBSCRIBE, /* unsubscribe, leave */
	CMD_CONFIRM,     /* confirm TOKEN */
	CMD_HELP,        /* help */
	CMD_APPROVE,     /* approve TOKEN */
	CMD_REJECT,      /* reject TOKEN [reason] */
	CMD_DISCARD,     /* discard TOKEN */
	CMD_SET,         /* set digest|digest-text|regular|nomail: token holds the mode */
};

#define COMMANDS_MAX 10       /* commands acted on in one message */
#define COMMANDS_MAX_JUNK 5   /* non-command lines skipped before the first command */
#define COMMANDS_TOKEN_MAX 64 /* longest token accepted */

struct commands_cmd {
	enum commands_verb verb;
	char token[COMMANDS_TOKEN_MAX + 1]; /* lower-cased; "" when missing */
	char rest[200];                     /* text after the token (reject reason) */
	char line[120];                     /* the line as written, cut */
	int bad;                            /* a token was needed and is missing or malformed */
};

struct commands_list {
	struct commands_cmd cmds[COMMANDS_MAX];
	size_t n;
	size_t skipped; /* non-command lines skipped before the first command */
};

/* Reads commands from the subject (its "Re:"/"Fwd:"/"[list]" prefixes
 * dropped; a subject that is no command is ignored) and then from the body
 * lines: blank lines and quoted lines ("> ...") are skipped, a signature
 * ("-- ") or "end" ends the commands, and so does the first non-command
 * line after some commands. At most COMMANDS_MAX_JUNK non-command lines
 * are skipped before the first command. The same command twice counts
 * once. body may be NULL. */
void commands_parse(const char *subject, const char *body, size_t body_len,
                    struct commands_list *out);

/* Reads one line p[..end) as a command: 1 and *c filled for a command, 2
 * for "end" (or "stop", "quit") alone, 0 for anything else. */
int commands_parse_line(const char *p, const char *end, struct commands_cmd *c);

/* RFC 3834 and loop rules: NULL when msg (from envelope sender mail_from)
 * may be answered, else a static reason ("auto-submitted",
 * "precedence bulk", "null sender", "list mail", "sender MAILER-DAEMON"). */
const char *commands_auto_reason(const struct msg *m, const char *mail_from);

/* 1 when addr_key may get one more automatic reply now (fewer than the
 * auto_reply_limit setting in the last 24 hours), 0 when not, -1 on a
 * database error. */
int commands_may_reply(struct db *db, const struct conf *conf, const char *addr_key);

/* One automatic mail to one recipient, queued as kind "notice" with
 * envelope sender LIST-bounces@DOMAIN (or the null sender when null_sender
 * is set) and noted in the reply log under kind for the rate limits.
 * Returns 0, or -1 with *why set (database errors: db_status()). */
struct commands_mail {
	int64_t list_id;
	int64_t spool_id;
	const char *list_local; /* to make LIST-bounces@DOMAIN */
	const char *list_domain;
	const char *rcpt;     /* the recipient address */
	const char *rcpt_key; /* its lookup key, for the reply log (NULL: no log) */
	const char *log_kind; /* "confirm", "reply", "notice" */
	int null_sender;
	const char *body; /* the whole message, CRLF */
	size_t len;
};
int commands_send(struct db *db, const struct conf *conf, const struct commands_mail *cm, char *qid,
                  const char **why);

/* Who a command mail or a held post is from: the first mailbox of m's From
 * field (addr_parse_mailbox(), the parser the posting path uses too), else
 * the envelope sender mail_from. Writes the address, its lookup key and
 * the display name ("" for the envelope sender). Returns 0, or -1 (all
 * three empty) when neither gives a usable address. */
int commands_sender(const struct msg *m, const char *mail_from, char *addr, size_t addrlen,
                    char *key, size_t keylen, char *name, size_t namelen);

/* ---- the web face's way in (lists/web.c) ----
 * The same actions as by email, for an address given in a form, named by
 * a confirmation token or by a checked one-click token: the same limits,
 * the same mails (welcome, goodbye, the owners' notice), the same events
 * log. Runs inside the caller's transaction. */
enum commands_web_op {
	COMMANDS_WEB_SUBSCRIBE,   /* mail a subscribe confirmation to address */
	COMMANDS_WEB_UNSUBSCRIBE, /* mail an unsubscribe confirmation, when a member */
	COMMANDS_WEB_CONFIRM,     /* use token (subscribe or unsubscribe) */
	COMMANDS_WEB_LEAVE,       /* remove address at once: the caller checked a token */
};

struct commands_web {
	int64_t list_id;
	const char *list_local;
	const char *list_domain;
	const char *address; /* SUBSCRIBE, UNSUBSCRIBE, LEAVE */
	const char *token;   /* CONFIRM */
	const char *how;     /* LEAVE: for the events log and the owners' notice */
	/* out */
	int changed;     /* a membership changed */
	int mail_queued; /* mail went into the queue */
	int limited;     /* a confirmation limit was reached: nothing was sent */
	int refused;     /* the address is invalid or ours, or subscribe_policy is closed */
	int not_member;  /* LEAVE, UNSUBSCRIBE: not a member; CONFIRM: no such token */
	char outcome[600];
};

/* Returns 0 (what happened in w), or -1 when the store failed: roll back. */
int commands_web(struct db *db, const struct conf *conf, enum commands_web_op op,
                 struct commands_web *w);

/* Housekeeping, called by the engine runner once a minute:
 * held posts past hold_lifetime get hold_expire_action, expired tokens and
 * old reply-log entries are deleted. Runs in the caller's transaction.
 * *expired (may be NULL) gets how many holds expired. */
int commands_housekeeping(struct db *db, const struct conf *conf, int64_t now, size_t *expired);

#endif
