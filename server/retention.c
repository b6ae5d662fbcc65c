/*
 * retention.c - the periodic purge (see retention.h).
 */
#include "server/retention.h"

#include "conf/conf.h"
#include "db/db.h"
#include "server/log.h"

#define PASS_SECONDS 1.0 /* bound of one pass */

int
retention_run(struct db_retention *rt, struct db *db, const struct conf *conf, int64_t now)
{
	int rc = db_retention_pass(db, rt, now, conf->queue_keep_done, conf->spool_keep_done,
	                           conf->bounce_events_keep, PASS_SECONDS);

	if (rc < 0)
		log_warnx("retention: %s", db_errmsg(db));
	if (rt->msgs || rt->rows || rt->spool || rt->events || rt->digest_posts ||
	    rt->digest_issues)
		log_info("retention: purged %lld outbound message(s) (%lld recipient rows), %lld "
		         "spool entries, %lld bounce events, %lld digest posts, %lld digest issues",
		         rt->msgs, rt->rows, rt->spool, rt->events, rt->digest_posts,
		         rt->digest_issues);
	return rc;
}
