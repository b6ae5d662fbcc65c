/*
 * holds.h - moderation holds (table holds): posts waiting for a
 * moderator's decision, each with a random token (see tokens.h) that
 * approves or rejects it by mail.
 *
 * Every function works inside the caller's transaction when there is one;
 * returns 0 or -1 with db_status()/db_errmsg() set (DB_NOTFOUND for an
 * unknown hold).
 */
#ifndef FANMAIL_DB_HOLDS_H
#define FANMAIL_DB_HOLDS_H

#include <stddef.h>
#include <stdint.h>

#include "db/db.h"
#include "db/tokens.h"

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

#endif
