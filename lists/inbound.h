/*
 * inbound.h - routing a committed spool entry: which list address each of
 * its recipients names, and the handler of that role; the handlers'
 * contract.
 *
 * The runner (server/engine_runner.c) reads each spool entry left 'new',
 * and for each of its recipients (spool_rcpt rows, filled by smtp_in and by
 * local delivery) calls inbound_handle(), which reads the stored role name
 * back to its enum listaddr_role (lists/listaddr.h, the one role table) and
 * calls that role's handler:
 *   LISTADDR_POST                          posting_handle()   (lists/posting.h)
 *   LISTADDR_REQUEST, _JOIN, _LEAVE,
 *   _SUBSCRIBE, _UNSUBSCRIBE, _CONFIRM     commands_handle()  (lists/commands.h)
 *   LISTADDR_OWNER                         commands_handle(): forwarded to the owners
 *   LISTADDR_BOUNCES                       bounce_handle()    (lists/bounce.h)
 * The runner knows no roles; a stored role name that is none fails the
 * entry ("failed: unknown role NAME").
 *
 * Contract, the same for every handler:
 *   int handler(struct db *db, const struct conf *conf, const struct inbound *in,
 *               char *outcome, size_t outcomelen);
 * - It runs INSIDE the runner's transaction (already begun with
 *   db_begin()); it never begins, commits or rolls back itself. Whatever it
 *   stores (outbound messages, holds, tokens, bounce events) commits
 *   together with the spool entry being marked done, so a crash neither
 *   loses nor doubles its work.
 * - Returns 0 when the entry is dealt with (including "refused", "dropped",
 *   "ignored": those are outcomes, not failures), with a short line for the
 *   spool's outcome column and the log in outcome ("posted qid=..",
 *   "held: non-member", "dropped: loop").
 * - Returns -1 when it could not finish: the runner rolls the whole
 *   transaction back. If db_status(db) is DB_BUSY the entry is retried
 *   later; otherwise it is marked 'failed' with outcome as its reason.
 * - It must not keep pointers into *in after it returns.
 * - After each commit the runner wakes delivery (deliver_kick()), so a
 *   handler that queues mail needs to do nothing more.
 */
#ifndef FANMAIL_INBOUND_H
#define FANMAIL_INBOUND_H

#include <stddef.h>
#include <stdint.h>

#include "lists/listaddr.h"

struct db;
struct conf;
struct db_engine_entry;
struct db_engine_rcpt;
struct posting_dmarc;

struct inbound {
	int64_t spool_id;        /* spool.id */
	const char *qid;         /* spool.qid, for log lines */
	const char *mail_from;   /* envelope sender; "" for the null sender */
	const char *rcpt;        /* this recipient, as given in RCPT TO */
	int64_t list_id;         /* spool_rcpt.list_id; 0 when the list is gone */
	const char *list_local;  /* the list's local part (lower case), "" if gone */
	const char *list_domain; /* the list's domain (lower case), "" if gone */
	enum listaddr_role role; /* from spool_rcpt.role */
	const char *extension;   /* after the '+' (VERP or token); NULL when none */
	const char *message;     /* the raw message as received (CRLF line ends) */
	size_t len;
	int64_t received; /* spool.received, seconds since the epoch */
};

/* Handlers of the other areas (declared here so the runner needs one
 * header; their modules define them). */
int commands_handle(struct db *db, const struct conf *conf, const struct inbound *in, char *outcome,
                    size_t outcomelen);
int bounce_handle(struct db *db, const struct conf *conf, const struct inbound *in, char *outcome,
                  size_t outcomelen);

/* Routes recipient r of the committed spool entry e to the handler of its
 * role, under the contract above (dmarc is posting's DMARC lookup, see
 * lists/posting.h). Returns what the handler returns, with its outcome. */
int inbound_handle(struct db *db, const struct conf *conf, const struct posting_dmarc *dmarc,
                   const struct db_engine_entry *e, const struct db_engine_rcpt *r, char *outcome,
                   size_t outcomelen);

#endif
