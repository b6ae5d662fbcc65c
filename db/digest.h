/*
 * digest.h - digests in the store (tables digest_posts, digest_issues,
 * digest_counters; migration 8): each post that went out waits in
 * digest_posts (issue_id NULL) until an issue takes it; an issue is a
 * numbered row per list, its posts assigned to it, and one queued message
 * per delivery mode with a recipient row per member of that mode.
 *
 * The list logic (lists/digest_send.c) runs db_digest_issue_new(),
 * db_digest_assign() and db_digest_queue() in ONE transaction, so a post
 * is in exactly one issue whatever crashes when. Strings handed to
 * callbacks are valid only during the call.
 */
#ifndef FANMAIL_DB_DIGEST_H
#define FANMAIL_DB_DIGEST_H

#include <stddef.h>
#include <stdint.h>

#include "db/db.h"
#include "db/queue.h"

/* Keeps a post that went out for the list's next digest. */
int db_digest_add(struct db *db, int64_t list_id, int64_t added, const char *sender,
                  const char *subject, const void *body, size_t len);

struct db_digest_post {
	int64_t id;
	int64_t added;
	const char *sender;
	const char *subject; /* NULL: none */
	int64_t size;
	const void *body; /* NULL unless asked for */
};

/* The list's pending posts (no issue yet) in the order they went out, at
 * most limit (0: all); with bodies when with_body. Returns the number
 * given to cb, or -1. */
int db_digest_pending(struct db *db, int64_t list_id, int with_body, int64_t limit,
                      void (*cb)(void *arg, const struct db_digest_post *p), void *arg);

struct db_digest_stats {
	int64_t list_id;
	int64_t posts, size; /* pending */
	int64_t oldest;      /* when the oldest pending post was added */
	int64_t last_sent;   /* when the last issue went out, 0: never */
	int volume, issue;   /* the last issue's numbers, 0 0: none yet */
};

/* The pending posts of list_id (zeros when none) and its counters. */
int db_digest_stats(struct db *db, int64_t list_id, struct db_digest_stats *s);

/* Calls cb with every list that has pending posts; stops when cb returns
 * non-zero. */
int db_digest_lists_pending(struct db *db, int (*cb)(void *arg, const struct db_digest_stats *s),
                            void *arg);

/* Makes the next issue of list_id in volume: number 1 in a volume new to
 * the list, else one past the last. Updates the list's counters (and its
 * last-sent time to now). */
int db_digest_issue_new(struct db *db, int64_t list_id, int volume, int64_t now, int *number,
                        int64_t *issue_id);

/* Assigns the list's pending posts up to id last_id to issue_id; *n gets
 * how many. */
int db_digest_assign(struct db *db, int64_t list_id, int64_t issue_id, int64_t last_id, int64_t *n);

/* Records the issue's post count and the queue ids of its two messages
 * (NULL or "": none queued for that mode). */
int db_digest_issue_done(struct db *db, int64_t issue_id, int64_t posts, const char *qid_mime,
                         const char *qid_text);

/* Drops the list's pending posts up to last_id (nobody to send them to). */
int db_digest_drop(struct db *db, int64_t list_id, int64_t last_id, int64_t *n);

/* 1 when list_id has an enabled member with delivery mode, else 0; -1. */
int db_digest_has_members(struct db *db, int64_t list_id, const char *mode);

struct db_digest_msg {
	int64_t list_id;
	const char *mode;     /* "digest" or "digest-text": whose rows */
	const char *env_from; /* LIST-bounces@DOMAIN */
	const void *body;
	size_t len;
	int64_t lifetime;
	int verp, personal;
};

/* Queues one digest message (kind 'digest') with a recipient row per
 * enabled member of the mode, by one INSERT ... SELECT like the post
 * fan-out. With no such member nothing is queued: qid "" and *nrcpt 0. */
int db_digest_queue(struct db *db, const struct db_digest_msg *m, char qid[DB_QID_LEN],
                    int64_t *nrcpt);

struct db_digest_issue {
	int64_t id;
	int volume, number;
	int64_t created, sent, posts;
	const char *qid_mime, *qid_text; /* "" when none */
};

/* The list's issues, newest first, at most limit (0: all). */
int db_digest_issues(struct db *db, int64_t list_id, int64_t limit,
                     void (*cb)(void *arg, const struct db_digest_issue *i), void *arg);

/* Retention (db/retention.h), each a chunk of at most limit rows: the
 * posts (bodies and all) of issues sent before `before` (the issue's
 * queued messages hold the digest itself), then the issues sent before
 * `before` that have no post left. A pending post is never purged, and
 * the numbering lives on in digest_counters. Return the rows deleted. */
int db_purge_digest_posts(struct db *db, int64_t before, int limit);
int db_purge_digest_issues(struct db *db, int64_t before, int limit);

#endif
