/*
 * engine.h - the list engine's own tables: the DMARC cache and the event
 * log; and the tuning of the engine runner's connection. (The spool
 * entries it reads are in spool.h, a list's settings and post count in
 * lists.h, its posters in members.h, the fan-out of a post into the
 * outbound queue, db_engine_queue_post(), in queue.h, the archive in
 * archive.h.) Everything here runs inside the caller's transaction when
 * there is one.
 */
#ifndef FANMAIL_DB_ENGINE_H
#define FANMAIL_DB_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#include "db/db.h"

/* Sizes the connection for fan-outs: a page cache big enough to hold the
 * index pages a post to a large list touches (bounded: 32 MB), so that
 * memory stays flat whatever the list's size. */
int db_engine_tune(struct db *db);
/* Gives the page cache that a fan-out filled back to the system (the
 * runner calls it when it has nothing left to do, so that the cache of a
 * big INSERT ... SELECT does not stay allocated while delivery works). */
void db_engine_release(struct db *db);

/* DMARC cache: the policy last seen for a From domain ("" for no record).
 * get: DB_NOTFOUND when none is kept; *expires may be in the past. */
int db_engine_dmarc_get(struct db *db, const char *domain, char *policy, size_t policylen,
                        int64_t *expires);
int db_engine_dmarc_put(struct db *db, const char *domain, const char *policy, int64_t expires);

/* Appends a line to the events table. */
int db_engine_event(struct db *db, int64_t list_id, const char *kind, const char *detail);

#endif
