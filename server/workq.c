/*
 * workq.c - jobs between threads (see workq.h).
 */
#include "server/workq.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include <event2/event.h>

struct workq {
	pthread_mutex_t mu;
	pthread_cond_t cv; /* a thread consumer sleeps on it */
	struct event *ev;  /* a loop consumer's event (NULL for a thread) */
	workq_fn fn;
	void *arg;
	struct workq_item *head, **tail;
	int woken;
	int stop;
};

static void
on_event(evutil_socket_t fd, short what, void *arg)
{
	workq_run(arg);
}

struct workq *
workq_new(struct event_base *base, workq_fn fn, void *arg)
{
	struct workq *q = calloc(1, sizeof(*q));

	if (q == NULL)
		return NULL;
	if (base != NULL && (q->ev = event_new(base, -1, 0, on_event, q)) == NULL) {
		free(q);
		return NULL;
	}
	pthread_mutex_init(&q->mu, NULL);
	pthread_cond_init(&q->cv, NULL);
	q->fn = fn;
	q->arg = arg;
	q->tail = &q->head;
	return q;
}

/* Under mu. */
static void
notify(struct workq *q)
{
	if (q->ev != NULL)
		event_active(q->ev, EV_READ, 0);
	else
		pthread_cond_signal(&q->cv);
}

void
workq_post(struct workq *q, struct workq_item *list)
{
	pthread_mutex_lock(&q->mu);
	*q->tail = list;
	while (*q->tail != NULL)
		q->tail = &(*q->tail)->next;
	notify(q);
	pthread_mutex_unlock(&q->mu);
}

void
workq_wake(struct workq *q)
{
	pthread_mutex_lock(&q->mu);
	q->woken = 1;
	notify(q);
	pthread_mutex_unlock(&q->mu);
}

/* Under mu: up to max jobs off the head (0: all). */
static struct workq_item *
take(struct workq *q, size_t max)
{
	struct workq_item *list = q->head, **tail = &q->head;
	size_t n = 0;

	if (list == NULL)
		return NULL;
	if (max == 0) {
		q->head = NULL;
		q->tail = &q->head;
		return list;
	}
	for (struct workq_item *it = list; it != NULL && n < max; it = it->next, n++)
		tail = &it->next;
	q->head = *tail;
	*tail = NULL;
	if (q->head == NULL)
		q->tail = &q->head;
	return list;
}

struct workq_item *
workq_wait(struct workq *q, size_t max, int timeout_ms)
{
	struct workq_item *list;
	struct timespec ts;

	pthread_mutex_lock(&q->mu);
	if (timeout_ms >= 0) {
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += timeout_ms / 1000;
		ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
	}
	while (q->head == NULL && !q->woken && !q->stop) {
		if (timeout_ms < 0)
			pthread_cond_wait(&q->cv, &q->mu);
		else if (pthread_cond_timedwait(&q->cv, &q->mu, &ts) == ETIMEDOUT)
			break;
	}
	q->woken = 0;
	list = take(q, max);
	pthread_mutex_unlock(&q->mu);
	return list;
}

void
workq_stop(struct workq *q)
{
	pthread_mutex_lock(&q->mu);
	q->stop = 1;
	pthread_cond_broadcast(&q->cv);
	pthread_mutex_unlock(&q->mu);
}

int
workq_stopped(struct workq *q)
{
	int stop;

	pthread_mutex_lock(&q->mu);
	stop = q->stop;
	pthread_mutex_unlock(&q->mu);
	return stop;
}

struct workq_item *
workq_take(struct workq *q)
{
	struct workq_item *list;

	pthread_mutex_lock(&q->mu);
	list = take(q, 0);
	pthread_mutex_unlock(&q->mu);
	return list;
}

void
workq_run(struct workq *q)
{
	struct workq_item *list;
	int woken;

	pthread_mutex_lock(&q->mu);
	list = take(q, 0);
	woken = q->woken;
	q->woken = 0;
	pthread_mutex_unlock(&q->mu);
	if (list != NULL || woken)
		q->fn(q->arg, list);
}

void
workq_free(struct workq *q)
{
	if (q == NULL)
		return;
	if (q->ev != NULL)
		event_free(q->ev);
	pthread_mutex_destroy(&q->mu);
	pthread_cond_destroy(&q->cv);
	free(q);
}
