/*
 * workq.h - the one way fanmaild's threads hand each other work: a FIFO
 * of jobs under a mutex, and a wake-up for whoever consumes it.
 *
 * A queue has one consumer, chosen when it is made:
 *   - the loop thread (workq_new with an event base): fn runs on the loop,
 *     through a libevent event, with every job queued so far (or none,
 *     after workq_wake). The spool writer's results, the delivery
 *     workers' finished jobs and kicks to the delivery scheduler come
 *     back to the loop this way.
 *   - a thread of its own (base NULL): it sleeps in workq_wait() until a
 *     job, a wake-up, workq_stop() or its timeout. The spool writer, the
 *     delivery reader and writer and the engine runner wait this way.
 * Any thread may post jobs (workq_post) or only wake the consumer
 * (workq_wake: "look again"; wake-ups before the consumer looks make
 * one).
 *
 * Ownership: a job embeds a struct workq_item as its FIRST member (the
 * queue never allocates, so posting cannot fail); from workq_post until
 * the consumer takes it the queue links it, and the consumer gets the
 * jobs as a list in the order posted and owns them from then on. Jobs
 * left at workq_free are the caller's to take first (workq_take).
 *
 * An event base must have been created after evthread_use_pthreads().
 */
#ifndef FANMAIL_WORKQ_H
#define FANMAIL_WORKQ_H

#include <stddef.h>

struct event_base;
struct workq;

struct workq_item {
	struct workq_item *next;
};

/* Runs on the loop thread with the jobs taken (NULL after a wake-up
 * alone). */
typedef void (*workq_fn)(void *arg, struct workq_item *list);

/* base NULL: consumed by a thread through workq_wait (fn unused). NULL
 * when out of memory. */
struct workq *workq_new(struct event_base *base, workq_fn fn, void *arg);
/* Queues list (jobs linked through next, NULL-terminated). Any thread. */
void workq_post(struct workq *q, struct workq_item *list);
/* Wakes the consumer with nothing queued. Any thread. */
void workq_wake(struct workq *q);

/* The consumer thread: waits until there is a job, a wake-up, the stop or
 * timeout_ms has passed (< 0: no timeout), and takes up to max jobs
 * (0: all). NULL when there was none: with no timeout and no wake-ups,
 * that means stopped with nothing left. */
struct workq_item *workq_wait(struct workq *q, size_t max, int timeout_ms);
/* Ends the waits: workq_wait no longer sleeps. Any thread. */
void workq_stop(struct workq *q);
int workq_stopped(struct workq *q);

/* Takes every queued job without waiting (for clean-up). */
struct workq_item *workq_take(struct workq *q);
/* Loop consumer: runs fn now, on the caller's thread, with what is queued
 * (when there is anything or a wake-up), as the event would. */
void workq_run(struct workq *q);
/* Frees the queue (not the jobs still in it). NULL is fine. */
void workq_free(struct workq *q);

#endif
