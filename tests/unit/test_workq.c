/*
 * test_workq.c - the work queue the daemon's threads hand jobs through
 * (server/workq.h): order, bounded takes, wake-ups, timeouts, the stop,
 * and jobs handed back to a libevent loop from another thread.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <time.h>

#include <event2/event.h>
#include <event2/thread.h>

#include "server/workq.h"

struct job {
	struct workq_item link; /* first */
	int n;
};

static double
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* The numbers of the jobs in list, in list order, into out; returns how
 * many. */
static int
numbers(struct workq_item *list, int *out, int max)
{
	int k = 0;

	for (; list != NULL && k < max; list = list->next)
		out[k++] = ((struct job *)list)->n;
	return k;
}

static void
test_jobs_come_out_in_the_order_posted_max_at_a_time(void **state)
{
	static const struct {
		size_t max;
		int want[3][6]; /* each take, -1 ended */
	} rows[] = {
	    {0, {{1, 2, 3, 4, 5, -1}, {-1}, {-1}}},
	    {2, {{1, 2, -1}, {3, 4, -1}, {5, -1}}},
	    {5, {{1, 2, 3, 4, 5}, {-1}, {-1}}},
	    {9, {{1, 2, 3, 4, 5}, {-1}, {-1}}},
	};

	for (size_t r = 0; r < sizeof(rows) / sizeof(rows[0]); r++) {
		struct workq *q = workq_new(NULL, NULL, NULL);
		struct job jobs[5];

		assert_non_null(q);
		/* One alone, then a list of two, then two alone. */
		for (int i = 0; i < 5; i++) {
			jobs[i].n = i + 1;
			jobs[i].link.next = NULL;
		}
		workq_post(q, &jobs[0].link);
		jobs[1].link.next = &jobs[2].link;
		workq_post(q, &jobs[1].link);
		workq_post(q, &jobs[3].link);
		workq_post(q, &jobs[4].link);
		for (int t = 0; t < 3; t++) {
			int got[5], n = numbers(workq_wait(q, rows[r].max, 0), got, 5), want = 0;

			while (want < 5 && rows[r].want[t][want] != -1)
				want++;
			if (n != want)
				fail_msg("max %zu, take %d: %d job(s), expected %d", rows[r].max, t,
				         n, want);
			for (int i = 0; i < n; i++)
				if (got[i] != rows[r].want[t][i])
					fail_msg("max %zu, take %d: job %d is %d, expected %d",
					         rows[r].max, t, i, got[i], rows[r].want[t][i]);
		}
		workq_free(q);
	}
}

static void
test_a_wake_up_ends_one_wait_with_nothing_and_the_next_waits_its_timeout(void **state)
{
	struct workq *q = workq_new(NULL, NULL, NULL);
	double t0;

	workq_wake(q);
	workq_wake(q); /* wake-ups before the consumer looks make one */
	t0 = now_ms();
	assert_null(workq_wait(q, 0, 5000));
	if (now_ms() - t0 > 1000)
		fail_msg("a woken wait took %.0f ms", now_ms() - t0);
	t0 = now_ms();
	assert_null(workq_wait(q, 0, 100));
	if (now_ms() - t0 < 90)
		fail_msg("the wait after the wake-up ended after %.0f ms, expected its 100 ms",
		         now_ms() - t0);
	assert_int_equal(workq_stopped(q), 0);
	workq_free(q);
}

static void *
wait_forever(void *arg)
{
	return workq_wait(arg, 0, -1);
}

static void
test_the_stop_ends_a_wait_without_timeout_in_another_thread(void **state)
{
	struct workq *q = workq_new(NULL, NULL, NULL);
	pthread_t th;
	void *got = &got;

	assert_int_equal(pthread_create(&th, NULL, wait_forever, q), 0);
	workq_stop(q);
	assert_int_equal(pthread_join(th, &got), 0);
	assert_null(got);
	assert_int_equal(workq_stopped(q), 1);
	workq_free(q);
}

struct loop_seen {
	struct event_base *base;
	pthread_t loop_thread;
	int calls, off_loop, njobs;
	int order[8];
};

static void
on_jobs(void *arg, struct workq_item *list)
{
	struct loop_seen *s = arg;

	s->calls++;
	if (!pthread_equal(pthread_self(), s->loop_thread))
		s->off_loop++;
	s->njobs += numbers(list, s->order + s->njobs, 8 - s->njobs);
	if (s->njobs == 3)
		event_base_loopbreak(s->base);
}

struct poster {
	struct workq *q;
	struct job jobs[3];
};

static void *
post_three(void *arg)
{
	struct poster *p = arg;

	for (int i = 0; i < 3; i++) {
		p->jobs[i].n = i + 1;
		p->jobs[i].link.next = NULL;
		workq_post(p->q, &p->jobs[i].link);
	}
	return NULL;
}

static void
test_jobs_posted_by_a_thread_reach_fn_on_the_loop_in_order(void **state)
{
	struct loop_seen s = {0};
	struct poster p;
	struct timeval limit = {10, 0};
	pthread_t th;

	assert_int_equal(evthread_use_pthreads(), 0);
	s.base = event_base_new();
	s.loop_thread = pthread_self();
	p.q = workq_new(s.base, on_jobs, &s);
	assert_non_null(p.q);
	assert_int_equal(pthread_create(&th, NULL, post_three, &p), 0);
	event_base_loopexit(s.base, &limit); /* bounded: fails below if fn never ran */
	event_base_dispatch(s.base);
	pthread_join(th, NULL);
	if (s.njobs != 3)
		fail_msg("the loop ran fn with %d job(s) in %d call(s) in 10 s, expected 3",
		         s.njobs, s.calls);
	for (int i = 0; i < 3; i++)
		assert_int_equal(s.order[i], i + 1);
	assert_int_equal(s.off_loop, 0);
	/* Nothing queued, no wake-up: fn is not called; a wake-up alone
	 * calls it with no jobs. */
	s.calls = 0;
	workq_run(p.q);
	assert_int_equal(s.calls, 0);
	workq_wake(p.q);
	workq_run(p.q);
	assert_int_equal(s.calls, 1);
	assert_int_equal(s.njobs, 3);
	assert_null(workq_take(p.q));
	workq_free(p.q);
	event_base_free(s.base);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_jobs_come_out_in_the_order_posted_max_at_a_time),
	    cmocka_unit_test(
	        test_a_wake_up_ends_one_wait_with_nothing_and_the_next_waits_its_timeout),
	    cmocka_unit_test(test_the_stop_ends_a_wait_without_timeout_in_another_thread),
	    cmocka_unit_test(test_jobs_posted_by_a_thread_reach_fn_on_the_loop_in_order),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
