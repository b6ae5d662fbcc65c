/*
 * spool.h - the inbound spool (tables spool, spool_body, spool_rcpt):
 * messages fanmaild accepted, with their envelope, committed before the 250
 * reply; and the engine's walk over them (db_engine_next, _load, _rcpts,
 * _finish).
 *
 * Table spool: one row per accepted message. state 'new' until the list
 * engine has handled it. message holds the whole message as received
 * (CRLF line ends, dots unstuffed) with fanmaild's Received header first.
 *
 * Table spool_rcpt: one row per accepted recipient, in RCPT order:
 *   rcpt       the address as the client gave it (without <>)
 *   list_id    the list it names
 *   role       what it names, one of:
 *                post         LIST@domain, a post to the list
 *                request      LIST-request, email commands
 *                owner        LIST-owner, mail for the owners
 *                bounces      LIST-bounces or LIST-bounces+EXT (VERP)
 *                join         LIST-join, subscribe request
 *                leave        LIST-leave, unsubscribe request
 *                subscribe    LIST-subscribe, as join
 *                unsubscribe  LIST-unsubscribe, as leave
 *                confirm      LIST-confirm+TOKEN, a confirmation reply
 *   extension  the text after the '+' as written (the VERP-encoded
 *              recipient for bounces, the token for confirm), else NULL
 * The role names are the ones lists/listaddr.h's listaddr_role_name()
 * gives.
 */
#ifndef FANMAIL_SPOOL_H
#define FANMAIL_SPOOL_H

#include <stddef.h>
#include <stdint.h>

#include "db/db.h"

struct spool_rcpt {
	const char *rcpt;
	int64_t list_id;
	const char *role;
	const char *extension; /* NULL when none */
};

struct spool_msg {
	const char *qid; /* made with db_qid_make() */
	int64_t received;
	const char *client; /* "host[ip]:port" */
	const char *helo;
	const char *mail_from; /* "" for the null sender */
	const void *body;
	size_t len;
	const struct spool_rcpt *rcpts;
	size_t nrcpt;
};

/* Tunes the spool writer's connection: it leaves WAL checkpoints to the
 * other connections (the engine runner commits after every spool commit)
 * unless the WAL grows past SPOOL_CHECKPOINT_PAGES, so that the copy of
 * the WAL into the database file and its fsyncs are seldom in the way of
 * the commit that sessions wait for; and when another connection holds
 * the write lock it tries again every 100 us (for up to 5 s), not after
 * SQLite's sleeps of 1, 2, 5, 10... ms, unless cancel(arg) (called between
 * tries, from the connection's thread) says to give up: the statement then
 * fails with DB_BUSY at once (at shutdown, nobody waits for it). */
int db_spool_tune(struct db *db, int (*cancel)(void *arg), void *arg);

/* Inserts m and its recipients. Inside a transaction of the caller's, the
 * message is inserted under a savepoint: on failure nothing of it remains
 * and the transaction can go on with other messages. Without one, it runs
 * in its own transaction. *id (may be NULL) receives the spool row id. */
int db_spool_insert(struct db *db, const struct spool_msg *m, int64_t *id);

/* ---- the engine's walk ---- */

/* One spool entry. Strings and message owned; db_engine_entry_free(). */
struct db_engine_entry {
	int64_t id;
	char qid[32];
	char *mail_from;
	int64_t received;
	char *state; /* new, done, failed */
	char *message;
	size_t len;
};

struct db_engine_rcpt {
	char *rcpt;
	int64_t list_id; /* 0 when the list is gone */
	char *local;     /* "" when the list is gone */
	char *domain;
	char *role;
	char *extension; /* NULL when none */
};

/* The id of the oldest entry in state 'new' with an id above after; *id
 * is 0 when there is none. */
int db_engine_next(struct db *db, int64_t after, int64_t *id);
/* Loads entry id (any state); DB_NOTFOUND when there is none. */
int db_engine_load(struct db *db, int64_t id, struct db_engine_entry *e);
void db_engine_entry_free(struct db_engine_entry *e);
/* The recipients of entry id, in RCPT order, with their lists' names. */
int db_engine_rcpts(struct db *db, int64_t id, struct db_engine_rcpt **rcpts, size_t *n);
void db_engine_rcpts_free(struct db_engine_rcpt *rcpts, size_t n);
/* Marks entry id done or failed with its outcome. */
int db_engine_finish(struct db *db, int64_t id, const char *state, const char *outcome);

/* ---- retention (retention.h runs these a chunk a transaction) ---- */

/* Deletes at most `limit` spool entries in state 'done', processed before
 * `before`, that no held post refers to. Returns how many, or -1. */
int db_purge_spool(struct db *db, int64_t before, int limit);

#endif
