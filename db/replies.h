/*
 * replies.h - the log of automatic replies (table reply_log) that the
 * rate limits of confirmations and RFC 3834 replies count.
 *
 * Every function works inside the caller's transaction when there is one;
 * returns 0 or -1 with db_status()/db_errmsg() set.
 */
#ifndef FANMAIL_DB_REPLIES_H
#define FANMAIL_DB_REPLIES_H

#include <stdint.h>

#include "db/db.h"

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
