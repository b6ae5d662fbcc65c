/*
 * retention.h - the periodic purge of finished and old rows (settings
 * queue_keep_done, spool_keep_done, bounce_events_keep; db/retention.h).
 *
 * Run by the engine runner's thread once a minute, on its connection. A
 * pass does a bounded amount of work (at most about a second), each chunk
 * in its own short transaction, so that the spool writer and the
 * deliverer are never kept waiting long for the write lock; what is left
 * is done by the next passes. `fanmail purge` runs the same pass.
 *
 * Log line, when something was purged:
 *   retention: purged N outbound message(s) (R recipient rows), S spool entries, B bounce events
 */
#ifndef FANMAIL_SERVER_RETENTION_H
#define FANMAIL_SERVER_RETENTION_H

#include <stdint.h>

#include "db/retention.h"

struct conf;
struct db;

/* One pass at time now. Returns -1 when the store failed (logged). */
int retention_run(struct db_retention *rt, struct db *db, const struct conf *conf, int64_t now);

#endif
