/*
 * score.h - bounce scores: what one bounce does to a member, and the timed
 * step for members disabled for bounces.
 *
 * A hard bounce adds 1 to a member's score, a soft one 0.5; at most one
 * bounce a day raises it, and each full quiet period (bounce_decay_after)
 * without a counted bounce halves it. A policy bounce never raises it: it
 * is counted per domain and the owners hear of the first one from a domain
 * each day. At bounce_threshold the member is disabled (not removed) and
 * the member and owners are told; after bounce_disabled_wait the member is
 * kept, removed, or probed (bounce_disabled_action). A probe is a VERP'd
 * notice; a bounce that comes back for a probed member removes it.
 * Complaints (ARF) follow complaint_action.
 *
 * The functions run inside the caller's transaction and queue notices with
 * db_outq_add(); they print nothing.
 */
#ifndef FANMAIL_SCORE_H
#define FANMAIL_SCORE_H

#include <stddef.h>
#include <stdint.h>

#include "conf/conf.h"
#include "db/db.h"
#include "db/members.h"
#include "lists/bounce.h"

#define SCORE_DAY 86400

/* The choices of bounce_disabled_action and complaint_action, named for
 * this module; their values are the generated enums' (conf/conf.h). */
enum score_disabled_action {
	SCORE_KEEP = list_bounce_disabled_action_keep,
	SCORE_REMOVE = list_bounce_disabled_action_remove,
	SCORE_PROBE = list_bounce_disabled_action_probe,
};
enum score_complaint_action {
	SCORE_COMPLAINT_NONE = list_complaint_action_none,
	SCORE_COMPLAINT_DISABLE = list_complaint_action_disable,
	SCORE_COMPLAINT_UNSUBSCRIBE = list_complaint_action_unsubscribe,
};

struct score_settings {
	double threshold;
	int64_t decay_after;
	enum score_disabled_action disabled_action;
	int64_t disabled_wait;
	int notify_owner;
	int notify_member;
	enum score_complaint_action complaint_action;
};

/* The list's bounce settings, read with list_conf_load(). Returns 0, or -1
 * when the store failed (s then holds the defaults). */
int score_settings_load(struct db *db, int64_t list_id, struct score_settings *s);

/* What a bounce of class c adds: 1, 0.5, or 0. */
double score_increment(enum bounce_class c);

/* The score after the quiet time since last_scored: halved for each full
 * period (period 0: no decay). */
double score_decay(double score, int64_t last_scored, int64_t now, int64_t period);

/* Whether a bounce at now may raise a score last raised at last_scored
 * (0: never): at most once a day. */
int score_may_raise(int64_t last_scored, int64_t now);

struct score_list {
	int64_t id;
	const char *local;  /* lower case */
	const char *domain; /* lower case */
};

/* Applies one result b of a bounce to member m (NULL when the address is no
 * member: only recorded). Appends what happened to out. Returns 0, or -1
 * when the store failed. */
int score_bounce(struct db *db, const struct conf *conf, const struct score_list *l,
                 const struct db_member *m, const struct bounce_rcpt *b, int64_t spool_id,
                 int64_t now, char *out, size_t outlen);

/* The timed step for members disabled for bounces whose wait is over (one
 * list, or all when list_id is 0): removes or probes them as their list
 * says. *acted (may be NULL) gets how many were removed or probed. */
int score_sweep(struct db *db, const struct conf *conf, int64_t list_id, int64_t now, int *acted);

/* What score_sweep_due() did for one list, after its commit: acted
 * members removed or probed, described in what ("ADDR removed (...)",
 * "ADDR probe queued as QID", "; " between them). */
typedef void (*score_sweep_report_fn)(const char *list_local, const char *list_domain, int acted,
                                      const char *what, void *arg);

#define SCORE_SWEEP_OUT_MAX 2048

/* The timed step for every list that has members disabled for bounces, as
 * fanmaild's housekeeping runs it: each list in its own transaction (it
 * begins and commits them itself, so the caller must not be inside one),
 * report (may be NULL) called after each commit that changed something.
 * Returns 0, or -1 when the store failed (db_errmsg() says why): it stops
 * there, the lists before stay swept, the rest wait for the next run. */
int score_sweep_due(struct db *db, const struct conf *conf, int64_t now,
                    score_sweep_report_fn report, void *arg);

#endif
