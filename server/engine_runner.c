/*
 * engine_runner.c - spool entries to the list engine, many per transaction,
 * each under its own savepoint.
 * See engine_runner.h.
 */
#include "server/engine_runner.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "conf/conf.h"
#include "db/db.h"
#include "db/engine.h"
#include "db/spool.h"
#include "lists/digest_send.h"
#include "lists/posting.h"
#include "lists/inbound.h"
#include "lists/post.h"
#include "mail/msg.h"
#include "mail/strbuf.h"
#include "server/dmarc.h"
#include "server/log.h"
#include "server/metrics.h"
#include "server/retention.h"
#include "server/workq.h"

#if __has_include("lists/commands.h")
#include "lists/commands.h"
#define RUNNER_HAVE_COMMANDS 1
#endif
#if __has_include("lists/bounce.h")
#include "lists/bounce.h"
#include "lists/score.h"
#define RUNNER_HAVE_BOUNCE 1
#endif

#define RUNNER_RESCAN_SECONDS 60
#define RUNNER_OUTCOME_MAX 1024
/* Entries per transaction, and how long one may keep the write lock. */
#define RUNNER_BATCH 64
#define RUNNER_BATCH_US 2000

struct engine_runner {
	const struct conf *conf;
	struct db *db;
	struct dmarc *dmarc;
	void (*after_commit)(void *);
	void *arg;
	pthread_t thread;
	struct workq *wake; /* engine_runner_wake(), engine_runner_stop() */
	time_t last_bounce_sweep;
};

/* Log lines that report what a transaction did ("posted: queued as
 * QID", "failed: ..."): they are written once it has committed, so that
 * the log never names a queued message that a failed commit took back
 * (and an admin who greps the log finds the queue row). Each line is kept
 * as a tag octet ('I' info, 'W' warning), its text and a NUL. */
struct pending {
	struct strbuf b;
	int dropped; /* lines lost to a failed allocation */
	int bounces; /* recipients at a -bounces address handled (metrics) */
};

static void pending_add(struct pending *pl, int warn, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
pending_add(struct pending *pl, int warn, const char *fmt, ...)
{
	char line[RUNNER_OUTCOME_MAX * 2];
	va_list ap;
	size_t mark;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(line))
		n = (int)sizeof(line) - 1;
	mark = pl->b.len;
	strbuf_add(&pl->b, warn ? "W" : "I", 1);
	strbuf_add(&pl->b, line, (size_t)n);
	strbuf_add(&pl->b, "", 1); /* the NUL that ends the line */
	if (pl->b.oom) {
		/* This line and every later one of the batch is lost. */
		strbuf_truncate(&pl->b, mark);
		pl->dropped++;
	}
}

/* Writes the lines (the transaction committed) and empties pl. */
static void
pending_flush(struct pending *pl)
{
	for (size_t o = 0; o < pl->b.len; o += strlen(pl->b.p + o) + 1) {
		if (pl->b.p[o] == 'W')
			log_warnx("%s", pl->b.p + o + 1);
		else
			log_info("%s", pl->b.p + o + 1);
	}
	if (pl->dropped > 0)
		log_warnx("engine: %d outcome line(s) not logged: out of memory", pl->dropped);
	strbuf_truncate(&pl->b, 0);
	pl->dropped = 0;
}

/* Appends "to=<rcpt>: outcome" to all. */
static void
note(char *all, size_t alllen, const char *rcpt, const char *outcome)
{
	size_t o = strlen(all);

	snprintf(all + o, alllen - o, "%sto=<%s>: %s", o ? "; " : "", rcpt, outcome);
}

/* Looks up the DMARC policy of the entry's From domain before the
 * transaction begins, so that the write lock is never held while DNS
 * answers: the lookup inside the handler then comes from dmarc.c's cache
 * (failures included, for a short while). */
/* The domain of the entry's From address into dom ("" when there is
 * none), read before the transaction begins so that the DMARC lookups can
 * be made without holding the write lock. */
static void
from_domain(struct db *db, int64_t id, char *dom, size_t len)
{
	struct db_engine_entry e;
	struct msg m;
	char addr[POST_ADDR_MAX];

	dom[0] = '\0';
	if (db_engine_load(db, id, &e) < 0)
		return;
	if (msg_parse(&m, e.message, e.len) == 0) {
		if (post_from(&m, NULL, 0, addr, sizeof(addr)) == 0)
			snprintf(dom, len, "%s", strrchr(addr, '@') + 1);
		msg_free(&m);
	}
	db_engine_entry_free(&e);
}

/* Looks up the DMARC policies of the entries' From domains before the
 * transaction begins: all at once when the lookup can (every query in
 * flight together), else one by one. The handlers then answer from the
 * cache (failures included, for a short while). */
static void
prefetch_dmarc(struct db *db, const struct posting_dmarc *dmarc, const int64_t *ids, size_t n)
{
	char doms[RUNNER_BATCH][256]; /* 16 KiB: the runner thread has room */
	const char *list[RUNNER_BATCH];
	char policy[32];
	int64_t ttl;
	size_t k = 0;

	if (dmarc == NULL || dmarc->lookup == NULL)
		return;
	for (size_t i = 0; i < n && i < RUNNER_BATCH; i++) {
		from_domain(db, ids[i], doms[k], sizeof(doms[k]));
		if (doms[k][0] != '\0')
			list[k] = doms[k], k++;
	}
	if (dmarc->prefetch != NULL) {
		dmarc->prefetch(dmarc->arg, list, k);
		return;
	}
	for (size_t i = 0; i < k; i++)
		dmarc->lookup(dmarc->arg, list[i], policy, sizeof(policy), &ttl);
}

/* Handles entry id inside the caller's transaction, in a savepoint of its
 * own. Returns 1 when it was handled (done, or failed with its partial
 * work undone and the failure recorded), 0 when it was not 'new' any more,
 * -1 when the store failed: the entry's work is undone and it stays 'new'
 * (and when SQLite ended the whole transaction, db_in_transaction() says
 * so). */
static int
handle_entry(struct db *db, const struct conf *conf, const struct posting_dmarc *dmarc, int64_t id,
             struct pending *pl)
{
	struct db_engine_entry e;
	struct db_engine_rcpt *r = NULL;
	size_t n = 0, mark = pl->b.len;
	char all[RUNNER_OUTCOME_MAX] = "", outcome[RUNNER_OUTCOME_MAX];
	int failed = 0, rc = -1, bounces = 0;
	const char *bounces_role = listaddr_role_name(LISTADDR_BOUNCES);

	if (db_savepoint(db) < 0)
		goto dberr;
	if (db_engine_load(db, id, &e) < 0) {
		db_undo_savepoint(db);
		goto dberr;
	}
	if (strcmp(e.state, "new") != 0) { /* another runner got it */
		db_engine_entry_free(&e);
		db_undo_savepoint(db);
		return 0;
	}
	if (db_engine_rcpts(db, id, &r, &n) < 0) {
		db_engine_entry_free(&e);
		db_undo_savepoint(db);
		goto dberr;
	}
	for (size_t i = 0; i < n && !failed; i++) {
		outcome[0] = '\0';
		if (inbound_handle(db, conf, dmarc, &e, &r[i], outcome, sizeof(outcome)) < 0) {
			failed = 1;
			if (db_status(db) == DB_BUSY || !db_in_transaction(db)) {
				log_warnx(
				    "%s: engine: to=<%s>, role=%s, store failed, will retry: %s",
				    e.qid, r[i].rcpt, r[i].role, outcome);
				db_undo_savepoint(db);
				strbuf_truncate(&pl->b, mark); /* undone: nothing of it to report */
				goto out;
			}
		}
		if (!failed && strcmp(r[i].role, bounces_role) == 0)
			bounces++;
		pending_add(pl, 0, "%s: engine: to=<%s>, role=%s, %s", e.qid, r[i].rcpt, r[i].role,
		            outcome);
		note(all, sizeof(all), r[i].rcpt, outcome);
	}
	if (n == 0)
		snprintf(all, sizeof(all), "no recipients");
	if (failed) {
		/* Nothing of the entry's work stays: undo it, then record the
		 * failure alone, so that an admin can look and retry. */
		db_undo_savepoint(db);
		strbuf_truncate(&pl->b, mark);
		if (db_savepoint(db) < 0 || db_engine_finish(db, id, "failed", all) < 0 ||
		    db_release_savepoint(db) < 0) {
			log_warnx("%s: engine: cannot mark failed: %s", e.qid, db_errmsg(db));
			db_undo_savepoint(db);
			goto out;
		}
		pending_add(pl, 1, "%s: engine: failed: %s", e.qid, all);
	} else if (db_engine_finish(db, id, "done", all) < 0 || db_release_savepoint(db) < 0) {
		log_warnx("%s: engine: cannot record: %s", e.qid, db_errmsg(db));
		db_undo_savepoint(db);
		strbuf_truncate(&pl->b, mark);
		goto out;
	} else {
		pl->bounces += bounces;
	}
	rc = 1;
out:
	db_engine_rcpts_free(r, n);
	db_engine_entry_free(&e);
	return rc;
dberr:
	log_warnx("spool %lld: engine: %s", (long long)id, db_errmsg(db));
	return -1;
}

static int64_t
elapsed_us(const struct timespec *t0)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)(t.tv_sec - t0->tv_sec) * 1000000 + (t.tv_nsec - t0->tv_nsec) / 1000;
}

/* Handles ids[*i..n) in one transaction, for at most RUNNER_BATCH_US once
 * the first is done, so that the write lock is never held long while the
 * spool writer waits for it; advances *i past the entries looked at and
 * adds the handled ones to *handled. Returns 0, or -1 when the store failed
 * (the entries not committed stay 'new'). */
static int
run_batch(struct db *db, const struct conf *conf, const struct posting_dmarc *dmarc,
          const int64_t *ids, size_t n, size_t *i, int *handled)
{
	struct pending pl = {0};
	struct timespec t0;
	int rc = 0, done = 0;
	size_t first = *i;

	if (db_begin(db) < 0) {
		log_warnx("engine: %s", db_errmsg(db));
		return -1;
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (; *i < n; ++*i) {
		if (*i > first && elapsed_us(&t0) > RUNNER_BATCH_US)
			break;
		rc = handle_entry(db, conf, dmarc, ids[*i], &pl);
		if (rc < 0) {
			if (!db_in_transaction(db)) {
				db_rollback(db);
				strbuf_free(&pl.b);
				return -1; /* all of it undone: every entry stays 'new' */
			}
			break;
		}
		done += rc;
	}
	if (db_commit(db) < 0) {
		log_warnx("engine: cannot commit, %d entr%s stay new: %s", done,
		          done == 1 ? "y" : "ies", db_errmsg(db));
		strbuf_free(&pl.b);
		return -1;
	}
	pending_flush(&pl);
	strbuf_free(&pl.b);
	metrics_add(METRIC_BOUNCES, pl.bounces);
	*handled += done;
	return rc < 0 ? -1 : 0;
}

int
engine_runner_drain(struct db *db, const struct conf *conf, const struct posting_dmarc *dmarc,
                    void (*after_commit)(void *), void *arg, int *handled)
{
	int64_t ids[RUNNER_BATCH], after = 0;
	size_t n, i;

	*handled = 0;
	for (;;) {
		for (n = 0; n < RUNNER_BATCH; n++) {
			if (db_engine_next(db, after, &after) < 0)
				return -1;
			if (after == 0)
				break;
			ids[n] = after;
		}
		if (n == 0)
			return 0;
		after = ids[n - 1];
		/* DNS answers before the write lock is taken. */
		prefetch_dmarc(db, dmarc, ids, n);
		for (i = 0; i < n;) {
			int before = *handled;

			if (run_batch(db, conf, dmarc, ids, n, &i, handled) < 0)
				return -1;
			if (*handled > before && after_commit != NULL)
				after_commit(arg);
		}
	}
}

#ifdef RUNNER_HAVE_BOUNCE
static void
bounce_swept(const char *local, const char *domain, int acted, const char *what, void *arg)
{
	struct engine_runner *r = arg;

	log_info("engine: bounces: list=<%s@%s>, %d member(s): %s", local, domain, acted, what);
	if (r->after_commit != NULL)
		r->after_commit(r->arg); /* probes and owners' notices to send */
}
#endif

/* Members disabled for bounces removed or probed once their list's
 * bounce_disabled_wait is over (lists/score.h), every
 * bounce_sweep_interval. */
static void
bounce_sweep(struct engine_runner *r)
{
#ifdef RUNNER_HAVE_BOUNCE
	time_t now = time(NULL);

	if (r->conf->bounce_sweep_interval <= 0 ||
	    now - r->last_bounce_sweep < r->conf->bounce_sweep_interval)
		return;
	r->last_bounce_sweep = now;
	if (score_sweep_due(r->db, r->conf, db_now(), bounce_swept, r) < 0)
		log_warnx("engine: bounces: sweep: %s", db_errmsg(r->db));
#else
	(void)r;
#endif
}

static void
digest_sent(void *arg, const struct digest_result *d, const char *err)
{
	struct engine_runner *r = arg;

	if (d == NULL) {
		log_warnx("engine: digest: %s", err);
		return;
	}
	if (d->posts == 0) {
		log_info("engine: digest: list=<%s>: no digest member, %lld post(s) dropped",
		         d->list, (long long)d->dropped);
		return;
	}
	log_info("engine: digest: list=<%s>, vol %d issue %d, %lld post(s), mime=%s rcpts=%lld,"
	         " text=%s rcpts=%lld",
	         d->list, d->volume, d->number, (long long)d->posts,
	         d->qid_mime[0] ? d->qid_mime : "-", (long long)d->rcpt_mime,
	         d->qid_text[0] ? d->qid_text : "-", (long long)d->rcpt_text);
	if (r->after_commit != NULL)
		r->after_commit(r->arg);
}

/* Digest issues that are due (lists/digest_send.h): once a minute for
 * digest_interval, and after each drain that handled entries, so that
 * digest_max_posts and digest_max_size send early at once. Each issue is
 * its own transaction. */
static void
digests(struct engine_runner *r, int handled, time_t *last)
{
	time_t now = time(NULL);

	if (handled == 0 && now - *last < RUNNER_RESCAN_SECONDS)
		return;
	*last = now;
	if (digest_run_due(r->db, r->conf, (int64_t)now, digest_sent, r) < 0)
		log_warnx("engine: digest: %s", db_errmsg(r->db));
}

/* How long the runner sleeps when nothing wakes it. */
static int
idle_wait(const struct engine_runner *r)
{
	long long b = r->conf->bounce_sweep_interval;

	return b > 0 && b < RUNNER_RESCAN_SECONDS ? (int)b : RUNNER_RESCAN_SECONDS;
}

/* Hold expiry and token clean-up (lists/commands.h), once a minute. */
static void
housekeeping(struct engine_runner *r, time_t *last)
{
	bounce_sweep(r);
#ifdef RUNNER_HAVE_COMMANDS
	time_t now = time(NULL);
	size_t expired = 0;

	if (now - *last < RUNNER_RESCAN_SECONDS)
		return;
	*last = now;
	if (db_begin(r->db) < 0)
		return;
	if (commands_housekeeping(r->db, r->conf, (int64_t)now, &expired) < 0 ||
	    db_commit(r->db) < 0) {
		log_warnx("engine: housekeeping: %s", db_errmsg(r->db));
		db_rollback(r->db);
		return;
	}
	if (expired > 0) {
		log_info("engine: %zu held post(s) expired", expired);
		if (r->after_commit != NULL)
			r->after_commit(r->arg);
	}
#else
	(void)r;
	(void)last;
#endif
}

static void *
run(void *arg)
{
	struct engine_runner *r = arg;
	struct posting_dmarc dm = {dmarc_lookup, r->dmarc, dmarc_prefetch};
	int handled, backoff = 0;
	time_t last_housekeeping = 0, last_retention = 0, last_digest = 0;
	struct db_retention rt = {0};

	for (;;) {
		/* After a store failure, try again soon rather than at the
		 * next wake-up. */
		workq_wait(r->wake, 0, (backoff ? backoff : idle_wait(r)) * 1000);
		if (workq_stopped(r->wake))
			break;
		handled = 0;
		if (engine_runner_drain(r->db, r->conf, &dm, r->after_commit, r->arg, &handled) < 0)
			backoff = backoff ? (backoff < 30 ? backoff * 2 : 30) : 1;
		else
			backoff = 0;
		db_engine_release(r->db);
		housekeeping(r, &last_housekeeping);
		digests(r, handled, &last_digest);
		if (time(NULL) - last_retention >= RUNNER_RESCAN_SECONDS) {
			last_retention = time(NULL);
			retention_run(&rt, r->db, r->conf, db_now());
		}
	}
	return NULL;
}

struct engine_runner *
engine_runner_start(const struct conf *conf, void (*after_commit)(void *), void *arg, char *err,
                    size_t errlen)
{
	struct engine_runner *r = calloc(1, sizeof(*r));

	if (r == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	r->conf = conf;
	r->after_commit = after_commit;
	r->arg = arg;
	if ((r->wake = workq_new(NULL, NULL, NULL)) == NULL) {
		snprintf(err, errlen, "out of memory");
		free(r);
		return NULL;
	}
	workq_wake(r->wake); /* entries a crash left 'new' */
	if ((r->db = db_open(conf->database, 0, err, errlen)) == NULL) {
		workq_free(r->wake);
		free(r);
		return NULL;
	}
	/* synchronous = NORMAL on this connection only. The runner's work is
	 * derived from spool entries that were committed with FULL before
	 * their 250, and each entry is marked done in the same transaction as
	 * its effects. A power loss can therefore only undo the runner's
	 * latest transactions whole: those entries are 'new' again and are
	 * handled again, their effects undone with them, nothing lost and
	 * nothing doubled. Every FULL commit (spool writer, delivery results)
	 * syncs all earlier WAL frames too, so whatever delivery has recorded
	 * as sent rests on a synced runner transaction. This takes one fsync
	 * per runner transaction off the disk the spool writer waits on. */
	if (db_engine_tune(r->db) < 0 || db_sync_normal(r->db) < 0) {
		snprintf(err, errlen, "%s", db_errmsg(r->db));
		db_close(r->db);
		workq_free(r->wake);
		free(r);
		return NULL;
	}
	if ((r->dmarc = dmarc_new(conf, err, errlen)) == NULL) {
		db_close(r->db);
		workq_free(r->wake);
		free(r);
		return NULL;
	}
	if (pthread_create(&r->thread, NULL, run, r) != 0) {
		snprintf(err, errlen, "cannot start the engine thread: %s", strerror(errno));
		dmarc_free(r->dmarc);
		db_close(r->db);
		workq_free(r->wake);
		free(r);
		return NULL;
	}
	pthread_setname_np(r->thread, "engine");
	return r;
}

void
engine_runner_wake(struct engine_runner *r)
{
	workq_wake(r->wake);
}

void
engine_runner_stop(struct engine_runner *r)
{
	if (r == NULL)
		return;
	workq_stop(r->wake);
	pthread_join(r->thread, NULL);
	dmarc_free(r->dmarc);
	db_close(r->db);
	workq_free(r->wake);
	free(r);
}
