/*
 * retention.c - the retention pass: purging finished and old rows a chunk
 * a transaction, each table by its own file's purge (see retention.h).
 */
#include "db/retention.h"
#include "db/db_internal.h"
#include "db/bounces.h"
#include "db/digest.h"
#include "db/queue.h"
#include "db/spool.h"

#include <time.h>

#define ROWS_CHUNK 5000 /* delivery rows a transaction */
#define SPOOL_CHUNK 200 /* spool entries (whole messages) a transaction */
#define EVENTS_CHUNK 2000
#define DIGEST_CHUNK 200 /* digest posts (whole messages) a transaction */

static double
mono_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Runs one chunk of step in its own transaction; returns what step did. */
static int
chunk(struct db *db, int (*step)(struct db *, int64_t, int), int64_t before, int limit)
{
	int n;

	if (db_begin(db) < 0)
		return -1;
	if ((n = step(db, before, limit)) < 0 || db_commit(db) < 0) {
		db_rollback(db);
		return -1;
	}
	return n;
}

int
db_retention_pass(struct db *db, struct db_retention *r, int64_t now, int64_t keep_queue,
                  int64_t keep_spool, int64_t keep_events, double seconds)
{
	double t0 = mono_now();
	int n;

	r->msgs = r->rows = r->spool = r->events = r->digest_posts = r->digest_issues = 0;
	while (keep_queue > 0 && mono_now() - t0 < seconds) {
		if (db_begin(db) < 0)
			return -1;
		n = db_purge_outq_step(db, now - keep_queue, ROWS_CHUNK, &r->msg_id);
		if (n < 0 || db_commit(db) < 0) {
			db_rollback(db);
			r->msg_id = 0;
			return -1;
		}
		if (n == 0)
			break;
		if (r->msg_id == 0) /* the step deleted the message */
			r->msgs++;
		else
			r->rows += n;
	}
	while (keep_spool > 0 && mono_now() - t0 < seconds) {
		if ((n = chunk(db, db_purge_spool, now - keep_spool, SPOOL_CHUNK)) < 0)
			return -1;
		r->spool += n;
		if (n < SPOOL_CHUNK)
			break;
	}
	while (keep_spool > 0 && mono_now() - t0 < seconds) {
		if ((n = chunk(db, db_purge_digest_posts, now - keep_spool, DIGEST_CHUNK)) < 0)
			return -1;
		r->digest_posts += n;
		if (n < DIGEST_CHUNK)
			break;
	}
	while (keep_spool > 0 && mono_now() - t0 < seconds) {
		if ((n = chunk(db, db_purge_digest_issues, now - keep_spool, EVENTS_CHUNK)) < 0)
			return -1;
		r->digest_issues += n;
		if (n < EVENTS_CHUNK)
			break;
	}
	while (keep_events > 0 && mono_now() - t0 < seconds) {
		if ((n = chunk(db, db_purge_bounce_events, now - keep_events, EVENTS_CHUNK)) < 0)
			return -1;
		r->events += n;
		if (n < EVENTS_CHUNK)
			break;
	}
	return 0;
}
