/*
 * commands.h - the store of email commands and moderation: confirmation
 * tokens (subscribe, unsubscribe), moderation holds, and the log of
 * automatic replies that the rate limits count.
 *
 * Tokens are 32 random hex digits (128 bits) drawn here; a token is the
 * proof that whoever uses it read mail sent to the address it names, or,
 * for a hold, mail sent to the list's moderators.
 *
 * Every function works inside the caller's transaction when there is one;
 * returns 0 or -1 with db_status()/db_errmsg() set (DB_NOTFOUND for an
 * unknown token or hold).
 */
#ifndef FANMAIL_DB_COMMANDS_H
#define FANMAIL_DB_COMMANDS_H

#include <stddef.h>
#include <stdint.h>

#include "db/db.h"

#define DB_TOKEN_LEN 33 /* 32 hex digits and the NUL */
#define DB_ADDR_MAX 320

/* ---- confirmation tokens ---- */

struct db_token {
	char token[DB_TOKEN_LEN];
	int64_t list_id;
	char action[16]; /* subscribe, unsubscribe */
	char address[DB_ADDR_MAX];
	char addr_key[DB_ADDR_MAX];
	char name[256];
	int64_t created;
	int64_t expires;
};

/* Stores a new token for action on address, valid until expires; writes
 * it to token. */
int db_token_add(struct db *db, int64_t list_id, const char *action, const char *address,
                 const char *addr_key, const char *name, int64_t expires, char token[DB_TOKEN_LEN]);

/* Reads token into *t without using it up. DB_NOTFOUND when unknown. */
int db_token_get(struct db *db, const char *token, struct db_token *t);

/* Deletes token (it is used, or expired). */
int db_token_delete(struct db *db, const char *token);

/* Deletes every token expired before now; *n (may be NULL) gets how many. */
int db_token_purge(struct db *db, int64_t now, int64_t *n);

/* ---- moderation holds ---- */

struct db_hold_new {
	int64_t list_id;
	int64_t spool_id;
	const char *sender;   /* From address of the post (or envelope sender) */
	const char *env_from; /* envelope sender, "" for null */
	const char *subject;  /* decoded, UTF-8; may be NULL */
	const char *message_id;
	const char *reason; /* "non-member", "moderated", ... */
	int64_t expires;
};

struct db_hold {
	int64_t id;
	int64_t list_id;
	int64_t spool_id; /* 0 when the spool entry is gone */
	char token[DB_TOKEN_LEN];
	char sender[DB_ADDR_MAX];
	char env_from[DB_ADDR_MAX];
	char subject[1000];
	char message_id[1000];
	char reason[200];
	int64_t created;
	int64_t expires;
	char state[16]; /* held, approved, rejected, discarded, expired */
	int64_t decided;
	char decided_by[DB_ADDR_MAX];
	/* The post as received, with db_hold_get(..., with_message = 1);
	 * malloc'd, freed by db_hold_free(). NULL when the spool entry is gone. */
	char *message;
	size_t len;
};

/* Stores a hold with a fresh token; writes the hold's id and token. */
int db_hold_add(struct db *db, const struct db_hold_new *h, int64_t *id, char token[DB_TOKEN_LEN]);

/* Reads hold id of list_id (list_id 0: any list). */
int db_hold_get(struct db *db, int64_t list_id, int64_t id, int with_message, struct db_hold *h);

/* Reads the hold whose token is token. */
int db_hold_get_token(struct db *db, const char *token, int with_message, struct db_hold *h);

void db_hold_free(struct db_hold *h);

/* Moves hold id from 'held' to state (approved, rejected, discarded,
 * expired), noting who decided. DB_NOTFOUND when it is not held any more
 * (decided by someone else first), so a post is never released twice. */
int db_hold_decide(struct db *db, int64_t id, const char *state, const char *by, int64_t now);

/* Calls fn for each hold of list_id (0: every list) in state (NULL: every
 * state), oldest first; fn returns non-zero to stop. The hold passed has no
 * message and is valid during the call only. */
typedef int (*db_hold_fn)(const struct db_hold *h, void *arg);
int db_hold_each(struct db *db, int64_t list_id, const char *state, db_hold_fn fn, void *arg);

/* The ids of at most max holds still 'held' whose deadline is before now
 * (list_id 0: every list), oldest first; *n gets how many. */
int db_hold_due(struct db *db, int64_t list_id, int64_t now, int64_t *ids, size_t max, size_t *n);

/* ---- automatic reply log (rate limits) ---- */

/* Notes one automatic mail of kind ("confirm", "reply", "notice") sent to
 * addr_key for list_id (0: none) at time t. */
int db_reply_log_add(struct db *db, const char *addr_key, int64_t list_id, const char *kind,
                     int64_t t);

/* Counts the log entries since `since`: for addr_key when it is not NULL,
 * for list_id when it is not 0, of kind when it is not NULL (all given
 * conditions apply together). */
int db_reply_log_count(struct db *db, const char *addr_key, int64_t list_id, const char *kind,
                       int64_t since, int64_t *count);

/* Deletes entries older than before. */
int db_reply_log_purge(struct db *db, int64_t before);

#endif
