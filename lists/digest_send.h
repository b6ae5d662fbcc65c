/*
 * digest_send.h - digests: keeping each post that goes out for the next
 * issue, and sending an issue (list settings digest_*; db/digest.h).
 *
 * digest_send() takes the list's pending posts, makes the next issue,
 * assigns the posts to it, builds the MIME digest and the plain-text one
 * (mail/digest.h) and queues each as one message with a recipient row per
 * enabled member of that delivery mode: all in ONE transaction (the
 * caller's when there is one), so that a crash at any point neither loses
 * nor repeats a post. digest_run_due() sends each list's issue that is
 * due: digest_interval since the last issue, or digest_max_posts or
 * digest_max_size reached; the engine runner calls it once a minute and
 * after it handled posts.
 */
#ifndef FANMAIL_DIGEST_SEND_H
#define FANMAIL_DIGEST_SEND_H

#include <stddef.h>
#include <stdint.h>

#include "db/queue.h"

struct db;
struct conf;

/* Keeps a post that went out (the rewritten post as archived) for the
 * list's next digest; inside the posting transaction. */
int digest_keep(struct db *db, int64_t list_id, int64_t now, const char *sender,
                const char *subject, const char *post, size_t len);

struct digest_result {
	char list[330];     /* the list's address */
	int volume, number; /* the issue, 0 when none was made */
	int64_t posts;      /* posts in it (0: nothing was pending) */
	int64_t dropped;    /* pending posts dropped: the list has no digest member */
	char qid_mime[DB_QID_LEN], qid_text[DB_QID_LEN]; /* "" when not queued */
	int64_t rcpt_mime, rcpt_text;
};

/* Sends list_id's pending posts as its next issue now. 0 (r->posts 0 and
 * r->dropped 0 when nothing was pending), or -1 with err set (the store's
 * transaction, when it was our own, is rolled back). */
int digest_send(struct db *db, const struct conf *conf, int64_t list_id, int64_t now,
                struct digest_result *r, char *err, size_t errlen);

/* 1 when list_id's digest is due at now (its settings and pending posts),
 * 0 when not, -1 with err set. */
int digest_due(struct db *db, int64_t list_id, int64_t now, char *err, size_t errlen);

/* Sends every due issue, each in its own transaction; cb (may be NULL) is
 * told of each one sent or dropped, and of failures (r NULL, err set).
 * Returns the number of issues sent, or -1 when the store failed. */
int digest_run_due(struct db *db, const struct conf *conf, int64_t now,
                   void (*cb)(void *arg, const struct digest_result *r, const char *err),
                   void *arg);

#endif
