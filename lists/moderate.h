/*
 * moderate.h - moderation holds: keeping a post for a moderator, and what
 * happens when one decides (or nobody does in time).
 *
 * Entry points:
 *   moderate_hold()    called by the engine's posting path when the policy
 *                      says hold; runs in the runner's transaction. Stores
 *                      the hold (the post stays in the spool, referenced by
 *                      spool_id), mails the moderators (the owners when the
 *                      list has no moderators) the post with what to do,
 *                      and tells the poster it waits (hold_notify_poster).
 *   moderate_decide()  approve, reject or discard one hold: by mail
 *                      (commands.c, token) or by `fanmail mod` (admin).
 *                      Approve releases the post with posting_release();
 *                      reject mails the poster a notice; discard drops it.
 *                      A hold is decided once: the second decision finds it
 *                      decided and changes nothing.
 *   moderate_expire()  holds past their deadline (hold_lifetime) get
 *                      hold_expire_action (discard, or reject with a
 *                      notice). Called on access: for the list, before
 *                      every `fanmail mod` command, every mail to the
 *                      list's command addresses and every new hold; and a
 *                      decision on a hold past its deadline expires it
 *                      instead. And in the background: the engine
 *                      runner calls commands_housekeeping() once a
 *                      minute, which does it for every list.
 *
 * None of them begins or commits a transaction; the caller does.
 */
#ifndef FANMAIL_MODERATE_H
#define FANMAIL_MODERATE_H

#include <stddef.h>
#include <stdint.h>

#include "lists/inbound.h"

struct db;
struct conf;

enum moderate_action {
	MODERATE_APPROVE,
	MODERATE_REJECT,
	MODERATE_DISCARD,
};

/* Holds in->message (a post to in->list_id) for reason ("non-member",
 * "moderated", "announce", ...). outcome gets "held: REASON id=N". Returns
 * 0, or -1 on a database error (roll back). */
int moderate_hold(struct db *db, const struct conf *conf, const struct inbound *in,
                  const char *reason, char *outcome, size_t outcomelen);

/* Decides hold id of list_id (0: any list). by says who ("cli", or the
 * moderator's address); why is the reason given to the poster on reject
 * (may be NULL or ""). Returns 0 when done, 1 when there was nothing to do
 * (no such hold, decided already, or past its deadline: result says
 * which), -1 on a database error or a failed release (result says why;
 * roll back). result gets one line for the log or the user. */
int moderate_decide(struct db *db, const struct conf *conf, int64_t list_id, int64_t id,
                    enum moderate_action action, const char *by, const char *why, char *result,
                    size_t resultlen);

/* Expires the holds of list_id (0: every list) whose deadline is before
 * now. *n (may be NULL) gets how many. */
int moderate_expire(struct db *db, const struct conf *conf, int64_t list_id, int64_t now,
                    size_t *n);

const char *moderate_action_name(enum moderate_action a);

#endif
