/*
 * tokens.h - confirmation tokens (table tokens) for subscribe and
 * unsubscribe.
 *
 * Tokens are 32 random hex digits (128 bits) drawn here; a token is the
 * proof that whoever uses it read mail sent to the address it names, or,
 * for a hold (holds.h), mail sent to the list's moderators.
 *
 * Every function works inside the caller's transaction when there is one;
 * returns 0 or -1 with db_status()/db_errmsg() set (DB_NOTFOUND for an
 * unknown token).
 */
#ifndef FANMAIL_DB_TOKENS_H
#define FANMAIL_DB_TOKENS_H

#include <stddef.h>
#include <stdint.h>

#include "db/db.h"

#define DB_TOKEN_LEN 33 /* 32 hex digits and the NUL */
#define DB_ADDR_MAX 320

struct db_token {
	char token[DB_TOKEN_LEN];
	int64_t list_id;
	char action[16]; /* subscribe, unsubscribe, set-MODE (set-digest-text fits) */
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

#endif
