/*
 * spool_writer.h - the thread that commits accepted messages to the spool.
 *
 * Sessions on the loop thread submit a job per message and wait (without
 * blocking the loop) for its result. The writer, on its own thread with its
 * own database connection, takes every job queued so far and commits them
 * in ONE transaction (group commit): one fsync covers many sessions'
 * messages, which is what lets durable acceptance keep up with load. Each
 * message is inserted under a savepoint, so one bad message fails alone.
 * Results go back to the loop thread, where each job's done callback runs.
 * Jobs go to the writer and back through two work queues (workq.h).
 *
 * Other subsystems learn of new spool rows through spool_writer_on_commit():
 * the callback runs on the writer thread right after each commit that
 * stored at least one message (keep it short: wake your own thread).
 *
 * The event base must have been created after evthread_use_pthreads().
 */
#ifndef FANMAIL_SPOOL_WRITER_H
#define FANMAIL_SPOOL_WRITER_H

#include <stddef.h>
#include <stdint.h>

#include "db/db.h"
#include "db/spool.h"
#include "server/workq.h"

struct event_base;
struct evbuffer;
struct spool_writer;
struct spool_job;

typedef void (*spool_done_fn)(struct spool_job *job, void *arg);

/* Owned by the submitter, which must keep it (and everything msg points
 * to) alive and untouched until done runs. */
struct spool_job {
	struct workq_item link; /* private; first (workq.h) */
	struct spool_msg msg;   /* msg.body/len are set by the writer from body */
	struct evbuffer *body;  /* the message; linearised on the writer thread */
	spool_done_fn done;
	void *arg;
	/* results, valid in done */
	int result;            /* 0 committed, -1 not stored */
	enum db_status status; /* DB_BUSY, DB_FULL, ... when not stored */
	char err[256];
	int64_t spool_id;
};

/* Opens its own connection to db_path and starts the thread. NULL with a
 * message in err on failure. */
struct spool_writer *spool_writer_start(struct event_base *base, const char *db_path, char *err,
                                        size_t errlen);

/* Queues job; its done callback runs later on the loop thread. */
void spool_writer_submit(struct spool_writer *w, struct spool_job *job);

/* Registers fn(arg, n) to run on the writer thread after each commit that
 * stored n > 0 messages. Call before messages flow; at most 8. */
int spool_writer_on_commit(struct spool_writer *w, void (*fn)(void *arg, size_t n), void *arg);

/* Jobs submitted and not yet reported. */
size_t spool_writer_pending(struct spool_writer *w);

/* SIGTERM: from now on the writer does not wait for a write lock that
 * another process holds (those messages fail with DB_BUSY, answered 452),
 * so that shutdown_timeout holds. Loop thread. */
void spool_writer_shutdown(struct spool_writer *w);
/* 1 once the writer found the database files replaced under it (it logged
 * why); no message can be stored until restart. Loop thread. */
int spool_writer_broken(struct spool_writer *w);
/* Commits what is queued, stops the thread, reports the last results (their
 * done callbacks run inside this call), closes the connection. */
void spool_writer_stop(struct spool_writer *w);

#endif
