/*
 * retention.h - removing what is finished and old, so that the store does
 * not grow for ever: outbound messages all of whose recipients are sent or
 * failed, inbound spool entries the engine is done with, old bounce events.
 *
 * Each call does a bounded amount of work in the caller's transaction (a
 * post to a big list has a delivery row per member: they go a chunk at a
 * time, so that no transaction holds the write lock for long). Nothing
 * that may still be needed goes: a spool entry held for moderation stays,
 * and so does each member's latest scored bounce (the score's decay
 * counts from it).
 */
#ifndef FANMAIL_DB_RETENTION_H
#define FANMAIL_DB_RETENTION_H

#include <stdint.h>

#include "db/db.h"

/* Deletes at most `chunk` delivery rows of one finished outbound message
 * created before `before` (the one in *msg_id when not 0, else the oldest
 * such message, whose id is left in *msg_id), or the message itself once
 * it has no rows left (then *msg_id is set to 0). Returns the number of
 * rows and messages deleted: 0 when there is nothing to purge. */
int db_purge_outq_step(struct db *db, int64_t before, int chunk, int64_t *msg_id);

/* Deletes at most `limit` spool entries in state 'done', processed before
 * `before`, that no held post refers to. Returns how many, or -1. */
int db_purge_spool(struct db *db, int64_t before, int limit);

/* Deletes at most `limit` bounce events older than `before`, except each
 * member's latest scored one. Returns how many, or -1. */
int db_purge_bounce_events(struct db *db, int64_t before, int limit);

/* What a pass purged. */
struct db_retention {
	int64_t msg_id; /* outbound message being purged, 0: none (kept between passes) */
	long long msgs, rows, spool, events;
};

/* One pass at time `now`, each chunk in its own transaction (the caller
 * is outside any), for at most `seconds`: outbound messages finished for
 * longer than keep_queue, spool entries processed longer than keep_spool
 * ago, bounce events older than keep_events (a keep of 0 or less: never).
 * The counts in *r are set to what this pass purged. Returns 0, or -1
 * when the store failed (what was committed before stays). */
int db_retention_pass(struct db *db, struct db_retention *r, int64_t now, int64_t keep_queue,
                      int64_t keep_spool, int64_t keep_events, double seconds);

#endif
