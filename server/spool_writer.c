/*
 * spool_writer.c - group commit of accepted messages on a thread of its
 * own; results handed back to the loop thread through a work queue
 * (workq.h).
 *
 * Before and after each commit the writer makes sure the database files
 * at the configured path are still the ones it writes (db_files_check):
 * when someone deleted or replaced the -wal or the database, a commit
 * would "succeed" into a file that the next start never reads. It then
 * fails every message from that point (the sessions answer 421 4.3.0)
 * and says why in the log, until fanmaild is restarted.
 */
#include "server/spool_writer.h"
#include "server/log.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/event.h>

#define BATCH_MAX 1024 /* messages per transaction */
#define HOOKS_MAX 8

struct spool_writer {
	struct db *db;
	pthread_t thread;
	struct workq *in;   /* submitted, waiting for the writer */
	struct workq *done; /* committed or failed, back on the loop */
	size_t pending;     /* submitted, done not yet run */
	int stopping;       /* SIGTERM: stop waiting for the write lock (atomic) */
	int broken;         /* the database files were replaced (atomic) */
	struct {
		void (*fn)(void *arg, size_t n);
		void *arg;
	} hooks[HOOKS_MAX];
	size_t nhooks;
};

static struct spool_job *
next_job(const struct spool_job *j)
{
	return (struct spool_job *)j->link.next;
}

static void
fail_job(struct spool_job *j, struct db *db)
{
	j->result = -1;
	j->status = db_status(db);
	snprintf(j->err, sizeof(j->err), "%s", db_errmsg(db));
}

static double
ms_since(struct timespec *t)
{
	struct timespec now;
	double ms;

	clock_gettime(CLOCK_MONOTONIC, &now);
	ms = (double)(now.tv_sec - t->tv_sec) * 1e3 + (double)(now.tv_nsec - t->tv_nsec) / 1e6;
	*t = now;
	return ms;
}

/* The files are not the ones open: fail what is in hand and every later
 * message. */
static void
files_replaced(struct spool_writer *w)
{
	if (!__atomic_load_n(&w->broken, __ATOMIC_ACQUIRE))
		log_errorx("the database files are not the ones fanmaild opened: %s; refusing mail "
		           "(421 4.3.0) until fanmaild is restarted",
		           db_errmsg(w->db));
	__atomic_store_n(&w->broken, 1, __ATOMIC_RELEASE);
}

/* One transaction for the whole batch; the per-message savepoints keep a
 * failed message from taking the others with it. */
static void
commit_batch(struct spool_writer *w, struct spool_job *batch)
{
	size_t stored = 0;
	struct timespec t;
	double lock_ms, insert_ms;

	clock_gettime(CLOCK_MONOTONIC, &t);
	if (__atomic_load_n(&w->broken, __ATOMIC_ACQUIRE) || db_files_check(w->db) < 0) {
		if (db_status(w->db) != DB_OK)
			files_replaced(w);
		for (struct spool_job *j = batch; j; j = next_job(j)) {
			j->result = -1;
			j->status = DB_ERR;
			snprintf(j->err, sizeof(j->err), "the database files were replaced");
		}
		return;
	}
	if (db_begin(w->db) < 0) {
		for (struct spool_job *j = batch; j; j = next_job(j))
			fail_job(j, w->db);
		return;
	}
	lock_ms = ms_since(&t);
	for (struct spool_job *j = batch; j; j = next_job(j)) {
		size_t len = evbuffer_get_length(j->body);

		j->msg.body = evbuffer_pullup(j->body, -1);
		j->msg.len = len;
		if (len > 0 && j->msg.body == NULL) {
			j->result = -1;
			j->status = DB_ERR;
			snprintf(j->err, sizeof(j->err), "out of memory");
			continue;
		}
		if (db_spool_insert(w->db, &j->msg, &j->spool_id) < 0) {
			fail_job(j, w->db);
			continue;
		}
		j->result = 0;
		stored++;
	}
	insert_ms = ms_since(&t);
	if (db_commit(w->db) < 0) {
		for (struct spool_job *j = batch; j; j = next_job(j))
			if (j->result == 0)
				fail_job(j, w->db);
		return;
	}
	if (stored > 0 && db_files_check(w->db) < 0) {
		/* Replaced while the batch ran: what was just committed went
		 * into the old file. The clients try again later. */
		files_replaced(w);
		for (struct spool_job *j = batch; j; j = next_job(j))
			if (j->result == 0)
				fail_job(j, w->db);
		return;
	}
	log_debug("spool commit: %zu messages in one transaction (lock %.2f ms, insert %.2f ms,"
	          " commit %.2f ms)",
	          stored, lock_ms, insert_ms, ms_since(&t));
	if (stored == 0)
		return;
	for (size_t i = 0; i < w->nhooks; i++)
		w->hooks[i].fn(w->hooks[i].arg, stored);
}

static void *
writer_main(void *arg)
{
	struct spool_writer *w = arg;
	struct spool_job *batch;

	while ((batch = (struct spool_job *)workq_wait(w->in, BATCH_MAX, -1)) != NULL) {
		commit_batch(w, batch);
		workq_post(w->done, &batch->link);
	}
	return NULL;
}

/* On the loop thread: run the done callbacks of every reported job. */
static void
report_done(void *arg, struct workq_item *items)
{
	struct spool_writer *w = arg;
	struct spool_job *list = (struct spool_job *)items, *next;

	for (; list; list = next) {
		next = next_job(list);
		list->link.next = NULL;
		w->pending--;
		list->done(list, list->arg);
	}
}

/* The busy handler's question, on the writer thread. */
static int
cancelled(void *arg)
{
	struct spool_writer *w = arg;

	return __atomic_load_n(&w->stopping, __ATOMIC_ACQUIRE);
}

struct spool_writer *
spool_writer_start(struct event_base *base, const char *db_path, char *err, size_t errlen)
{
	struct spool_writer *w = calloc(1, sizeof(*w));

	if (w == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if ((w->db = db_open(db_path, 0, err, errlen)) == NULL) {
		free(w);
		return NULL;
	}
	if (db_spool_tune(w->db, cancelled, w) < 0) {
		snprintf(err, errlen, "%s", db_errmsg(w->db));
		db_close(w->db);
		free(w);
		return NULL;
	}
	w->in = workq_new(NULL, NULL, NULL);
	w->done = workq_new(base, report_done, w);
	if (w->in == NULL || w->done == NULL ||
	    pthread_create(&w->thread, NULL, writer_main, w) != 0) {
		snprintf(err, errlen, "cannot start the spool writer thread");
		workq_free(w->in);
		workq_free(w->done);
		db_close(w->db);
		free(w);
		return NULL;
	}
	pthread_setname_np(w->thread, "spool-writer");
	return w;
}

void
spool_writer_submit(struct spool_writer *w, struct spool_job *job)
{
	job->link.next = NULL;
	job->result = -1;
	job->err[0] = '\0';
	w->pending++;
	workq_post(w->in, &job->link);
}

int
spool_writer_on_commit(struct spool_writer *w, void (*fn)(void *arg, size_t n), void *arg)
{
	if (w->nhooks >= HOOKS_MAX)
		return -1;
	w->hooks[w->nhooks].fn = fn;
	w->hooks[w->nhooks].arg = arg;
	w->nhooks++;
	return 0;
}

size_t
spool_writer_pending(struct spool_writer *w)
{
	return w->pending;
}

void
spool_writer_shutdown(struct spool_writer *w)
{
	if (w != NULL)
		__atomic_store_n(&w->stopping, 1, __ATOMIC_RELEASE);
}

int
spool_writer_broken(struct spool_writer *w)
{
	return __atomic_load_n(&w->broken, __ATOMIC_ACQUIRE);
}

void
spool_writer_stop(struct spool_writer *w)
{
	if (w == NULL)
		return;
	spool_writer_shutdown(w);
	workq_stop(w->in);
	pthread_join(w->thread, NULL);
	workq_run(w->done);
	workq_free(w->in);
	workq_free(w->done);
	db_close(w->db);
	free(w);
}
