/*
 * retention.h - removing what is finished and old, so that the store does
 * not grow for ever: outbound messages all of whose recipients are sent or
 * failed, inbound spool entries the engine is done with, old bounce events.
 *
 * A pass runs chunks of bounded work, each in its own transaction (a post
 * to a big list has a delivery row per member: they go a chunk at a time,
 * so that no transaction holds the write lock for long), with the purge of
 * each table in that table's file: db_purge_outq_step (queue.h),
 * db_purge_spool (spool.h), db_purge_bounce_events (bounces.h),
 * db_purge_digest_posts and db_purge_digest_issues (digest.h). Nothing
 * that may still be needed goes: a spool entry held for moderation stays,
 * and so does each member's latest scored bounce (the score's decay
 * counts from it), and so does a post waiting for its digest.
 */
#ifndef FANMAIL_DB_RETENTION_H
#define FANMAIL_DB_RETENTION_H

#include <stdint.h>

#include "db/db.h"

/* What a pass purged. */
struct db_retention {
	int64_t msg_id; /* outbound message being purged, 0: none (kept between passes) */
	long long msgs, rows, spool, events;
	long long digest_posts, digest_issues;
};

/* One pass at time `now`, each chunk in its own transaction (the caller
 * is outside any), for at most `seconds`: outbound messages finished for
 * longer than keep_queue, spool entries processed longer than keep_spool
 * ago, the posts of digest issues sent longer than keep_spool ago and
 * then those issues (their copies of posts are inbound mail handled),
 * bounce events older than keep_events (a keep of 0 or less: never).
 * The counts in *r are set to what this pass purged. Returns 0, or -1
 * when the store failed (what was committed before stays). */
int db_retention_pass(struct db *db, struct db_retention *r, int64_t now, int64_t keep_queue,
                      int64_t keep_spool, int64_t keep_events, double seconds);

#endif
