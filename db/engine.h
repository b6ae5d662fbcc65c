/*
 * engine.h - what the list engine and its runner read and write: a
 * list's settings and posters, the archive, and the DMARC cache. (The
 * spool entries it reads are in spool.h, the fan-out of a post into the
 * outbound queue, db_engine_queue_post(), in queue.h.) Everything here runs
 * inside the caller's transaction when there is one.
 */
#ifndef FANMAIL_DB_ENGINE_H
#define FANMAIL_DB_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#include "db/db.h"
#include "db/queue.h"

/* Sizes the connection for fan-outs: a page cache big enough to hold the
 * index pages a post to a large list touches (bounded: 32 MB), so that
 * memory stays flat whatever the list's size. */
int db_engine_tune(struct db *db);
/* Gives the page cache that a fan-out filled back to the system (the
 * runner calls it when it has nothing left to do, so that the cache of a
 * big INSERT ... SELECT does not stay allocated while delivery works). */
void db_engine_release(struct db *db);

/* A list's local part and domain; DB_NOTFOUND when it is gone. */
int db_engine_list(struct db *db, int64_t list_id, char *local, size_t locallen, char *domain,
                   size_t domainlen);
/* The list named local@domain (both compared lower-cased). */
int db_engine_list_find(struct db *db, const char *local, const char *domain, int64_t *list_id);
/* Calls fn for each stored setting of the list. */
int db_engine_settings(struct db *db, int64_t list_id,
                       void (*fn)(void *arg, const char *key, const char *value), void *arg);
/* What the poster with lookup key addr_key is to the list: a member (any
 * status but unconfirmed), an owner or moderator. */
int db_engine_poster(struct db *db, int64_t list_id, const char *addr_key, int *is_member,
                     int *is_privileged);

/* Counts one more post in lists.post_count; *k (may be NULL) gets the new
 * count, the post's number (1 for the list's first). */
int db_engine_count_post(struct db *db, int64_t list_id, int64_t *k);

/* The archive: every post that went out. */
int db_engine_archive_add(struct db *db, int64_t list_id, const char *message_id, int64_t date,
                          const char *sender, const char *subject, const void *raw, size_t len);
/* Calls fn for each archived post of the list, oldest first; fn returning
 * non-zero stops the walk (the function then returns -1 with DB_INVALID). */
int db_engine_archive_each(struct db *db, int64_t list_id,
                           int (*fn)(void *arg, int64_t date, const char *sender, const void *raw,
                                     size_t len),
                           void *arg);

/* DMARC cache: the policy last seen for a From domain ("" for no record).
 * get: DB_NOTFOUND when none is kept; *expires may be in the past. */
int db_engine_dmarc_get(struct db *db, const char *domain, char *policy, size_t policylen,
                        int64_t *expires);
int db_engine_dmarc_put(struct db *db, const char *domain, const char *policy, int64_t expires);

/* Appends a line to the events table. */
int db_engine_event(struct db *db, int64_t list_id, const char *kind, const char *detail);

#endif
