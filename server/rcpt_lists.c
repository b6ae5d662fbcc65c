/*
 * rcpt_lists.c - the table of list addresses RCPT is checked against, and
 * the thread that refreshes it (see rcpt_lists.h).
 *
 * The hand-offs go through two work queues (workq.h) and one job that
 * travels between the threads: the loop posts it to `in` to ask for a
 * refresh, the refresher posts it back to `done` with the result (and the
 * new table, if the lists changed). Asks made while the job is away are
 * counted; when it comes back short of the latest ask, the loop sends it
 * out again at once. The 300 ms deadline is the loop's own timer
 * (late_ev).
 *
 * Ownership: whoever holds the job owns it and what it carries; nothing
 * else is shared between the threads. The loop thread owns `cur` and the
 * counters; the refresher alone uses the connection and the stamp.
 */
#include "server/rcpt_lists.h"
#include "db/lists.h"
#include "server/log.h"
#include "server/workq.h"

#include <ctype.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <event2/event.h>

/* Open addressing; keys are "local@domain" and "@domain", lower-cased. */
struct slot {
	char *key;
	int64_t id;
};

struct table {
	struct slot *slots;
	size_t nslots, used;
};

/* A refresh asked for (seq) and, when it comes back, its result. */
struct refresh_job {
	struct workq_item link; /* first: the queues link it */
	uint64_t seq;           /* the ask it answers (set by the loop) */
	int ok;                 /* the refresh succeeded */
	struct table *t;        /* a new table, or NULL when none was loaded */
};

struct rcpt_lists {
	/* the loop thread's */
	struct table *cur; /* NULL until the first load */
	int64_t fresh_ms;  /* when a refresh last succeeded (CLOCK_MONOTONIC) */
	uint64_t asked;    /* the latest refresh asked for */
	uint64_t answered; /* the latest refresh whose result came back */
	uint64_t given_up; /* refreshes not waited for any longer (late) */
	int answered_ok;   /* that result was a success */
	int64_t asked_ms;  /* when the oldest unanswered refresh was asked */
	struct event *late_ev;
	void (*on_refresh)(void *arg);
	void *arg;
	char *default_domain;
	/* the hand-offs */
	pthread_t thread;
	struct workq *in;       /* to the refresher: the job, asking */
	struct workq *done;     /* back to the loop: the job, answered */
	struct refresh_job job; /* the loop's while answered == asked */
	/* the refresher's */
	struct db *db;
	struct db_list_stamp stamp;
	int loaded;
};

#define RECHECK_MS 1000

static uint64_t
hash(const char *s, size_t n)
{
	uint64_t h = 1469598103934665603ULL;

	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)tolower((unsigned char)s[i])) * 1099511628211ULL;
	return h;
}

static struct slot *
find(struct table *t, const char *key, size_t n)
{
	size_t mask = t->nslots - 1, i = hash(key, n) & mask;

	if (t->nslots == 0)
		return NULL;
	for (;; i = (i + 1) & mask) {
		struct slot *s = &t->slots[i];
		if (s->key == NULL)
			return s;
		if (strlen(s->key) == n && strncasecmp(s->key, key, n) == 0)
			return s;
	}
}

static void
table_free(struct table *t)
{
	if (t == NULL)
		return;
	for (size_t i = 0; i < t->nslots; i++)
		free(t->slots[i].key);
	free(t->slots);
	free(t);
}

static int
grow(struct table *t)
{
	struct slot *old = t->slots;
	size_t oldn = t->nslots;

	t->nslots = oldn ? oldn * 2 : 64;
	t->slots = calloc(t->nslots, sizeof(*t->slots));
	if (t->slots == NULL) {
		t->slots = old;
		t->nslots = oldn;
		return -1;
	}
	for (size_t i = 0; i < oldn; i++)
		if (old[i].key != NULL)
			*find(t, old[i].key, strlen(old[i].key)) = old[i];
	free(old);
	return 0;
}

static int
put(struct table *t, const char *local, const char *domain, int64_t id)
{
	size_t n = strlen(local) + strlen(domain) + 2;
	char *key = malloc(n);
	struct slot *s;

	if (key == NULL)
		return -1;
	snprintf(key, n, "%s@%s", local, domain);
	for (char *p = key; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	if ((t->used + 1) * 2 > t->nslots && grow(t) < 0) {
		free(key);
		return -1;
	}
	s = find(t, key, n - 1);
	if (s->key != NULL) {
		free(key);
		return 0;
	}
	s->key = key;
	s->id = id;
	t->used++;
	return 0;
}

static int
load_one(void *arg, int64_t id, const char *local, const char *domain)
{
	struct table *t = arg;

	if (put(t, local, domain, id) < 0 || put(t, "", domain, 1) < 0)
		return -1;
	return 0;
}

/* On the refresher thread: 0 and *out a new table (or NULL when the lists
 * did not change), or -1 when the store could not be read. */
static int
refresh(struct rcpt_lists *rl, struct table **out)
{
	int changed = db_spool_lists_changed(rl->db, &rl->stamp);
	struct table *t;

	*out = NULL;
	if (changed < 0) {
		log_warnx("cannot check the lists table: %s", db_errmsg(rl->db));
		return -1;
	}
	if (!changed && rl->loaded)
		return 0;
	if ((t = calloc(1, sizeof(*t))) == NULL || put(t, "", rl->default_domain, 1) < 0 ||
	    db_spool_lists_load(rl->db, load_one, t) < 0) {
		log_warnx("cannot load the lists table: %s",
		          t ? db_errmsg(rl->db) : "out of memory");
		table_free(t);
		rl->loaded = 0;
		rl->stamp.valid = 0;
		return -1;
	}
	rl->loaded = 1;
	log_debug("list table loaded: %zu entries", t->used);
	*out = t;
	return 0;
}

static void *
refresher_main(void *arg)
{
	struct rcpt_lists *rl = arg;
	struct refresh_job *j;

	/* After the stop, a job still queued is left where it is (it lives
	 * in rl): the refresh in hand is the last. */
	while ((j = (struct refresh_job *)workq_wait(rl->in, 0, -1)) != NULL &&
	       !workq_stopped(rl->in)) {
		j->ok = refresh(rl, &j->t) == 0;
		workq_post(rl->done, &j->link);
	}
	return NULL;
}

static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* On the loop thread: sends the job (which is home) to the refresher for
 * the latest ask, and gives it RCPT_LISTS_WAIT_MS to come back. */
static void
send_job(struct rcpt_lists *rl)
{
	struct timeval tv = {0, RCPT_LISTS_WAIT_MS * 1000};

	rl->asked_ms = now_ms();
	evtimer_add(rl->late_ev, &tv);
	rl->job.seq = rl->asked;
	rl->job.link.next = NULL;
	workq_post(rl->in, &rl->job.link);
}

/* On the loop thread: asks for a refresh that starts after now. While the
 * job is away, the ask is answered by the refresh after the one running. */
static uint64_t
ask(struct rcpt_lists *rl)
{
	int home = rl->answered == rl->asked;

	rl->asked++;
	if (home)
		send_job(rl);
	return rl->asked;
}

/* On the loop thread: a refresh finished; the job is home again. */
static void
refreshed_cb(void *arg, struct workq_item *list)
{
	struct rcpt_lists *rl = arg;
	struct refresh_job *j = (struct refresh_job *)list;

	if (j == NULL)
		return;
	if (j->t != NULL) {
		table_free(rl->cur);
		rl->cur = j->t;
		j->t = NULL;
	}
	rl->answered = j->seq;
	rl->answered_ok = j->ok;
	if (j->ok)
		rl->fresh_ms = now_ms();
	if (rl->answered == rl->asked)
		evtimer_del(rl->late_ev);
	else
		send_job(rl); /* asked while it was away: it gets its own time */
	rl->on_refresh(rl->arg);
}

/* On the loop thread: the refresher is slow (stuck in SQLite): whoever
 * waits is answered from the table as it is. */
static void
late_cb(evutil_socket_t fd, short what, void *arg)
{
	struct rcpt_lists *rl = arg;

	if (rl->answered == rl->asked)
		return;
	log_warnx("the lists table did not answer within %d ms; RCPT is answered from the"
	          " last table read",
	          RCPT_LISTS_WAIT_MS);
	rl->given_up = rl->asked;
	rl->on_refresh(rl->arg);
}

struct rcpt_lists *
rcpt_lists_new(struct event_base *base, const char *db_path, const char *default_domain,
               void (*on_refresh)(void *arg), void *arg, char *err, size_t errlen)
{
	struct rcpt_lists *rl = calloc(1, sizeof(*rl));

	if (rl == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	rl->on_refresh = on_refresh;
	rl->arg = arg;
	rl->default_domain = strdup(default_domain ? default_domain : "");
	rl->in = workq_new(NULL, NULL, NULL);
	rl->done = workq_new(base, refreshed_cb, rl);
	rl->late_ev = evtimer_new(base, late_cb, rl);
	if (rl->default_domain == NULL || rl->in == NULL || rl->done == NULL ||
	    rl->late_ev == NULL) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	if ((rl->db = db_open(db_path, 0, err, errlen)) == NULL)
		goto fail;
	if (pthread_create(&rl->thread, NULL, refresher_main, rl) != 0) {
		snprintf(err, errlen, "cannot start the lists table thread");
		goto fail;
	}
	pthread_setname_np(rl->thread, "rcpt-lists");
	ask(rl); /* the first load, before the first RCPT */
	return rl;
fail:
	workq_free(rl->in);
	workq_free(rl->done);
	if (rl->late_ev)
		event_free(rl->late_ev);
	db_close(rl->db);
	free(rl->default_domain);
	free(rl);
	return NULL;
}

void
rcpt_lists_free(struct rcpt_lists *rl)
{
	if (rl == NULL)
		return;
	workq_stop(rl->in);
	pthread_join(rl->thread, NULL);
	/* The job is home, queued or answered but not yet run: it is not
	 * allocated, only the table it may carry is. */
	workq_free(rl->in);
	workq_free(rl->done);
	event_free(rl->late_ev);
	table_free(rl->cur);
	table_free(rl->job.t);
	db_close(rl->db);
	free(rl->default_domain);
	free(rl);
}

struct lookup_ctx {
	struct table *t;
	const char *domain;
	size_t dlen;
};

static int64_t
lookup(void *arg, const char *local, size_t len)
{
	struct lookup_ctx *c = arg;
	char key[ADDR_LOCAL_MAX + ADDR_DOMAIN_MAX + 2];
	struct slot *s;

	if (len + 1 + c->dlen >= sizeof(key))
		return 0;
	memcpy(key, local, len);
	key[len] = '@';
	memcpy(key + len + 1, c->domain, c->dlen);
	s = find(c->t, key, len + 1 + c->dlen);
	return s && s->key ? s->id : 0;
}

static enum rcpt_verdict
verdict(struct table *t, const struct addr *a, struct listaddr_match *m)
{
	char dkey[ADDR_DOMAIN_MAX + 2];
	struct lookup_ctx c = {t, a->domain, strlen(a->domain)};
	struct slot *s;

	snprintf(dkey, sizeof(dkey), "@%s", a->domain);
	s = find(t, dkey, strlen(dkey));
	if (s == NULL || s->key == NULL)
		return RCPT_RELAY;
	if (a->local[0] == '"')
		return RCPT_UNKNOWN; /* list names are dot-atoms */
	if (listaddr_resolve(a->local, strlen(a->local), lookup, &c, m) < 0)
		return RCPT_UNKNOWN;
	return RCPT_LIST;
}

/* The table as it is, when the store cannot say better: a list address
 * it knows is taken, anything else waits (451). */
static enum rcpt_verdict
from_cache(struct rcpt_lists *rl, const struct addr *a, struct listaddr_match *m)
{
	if (rl->cur != NULL && verdict(rl->cur, a, m) == RCPT_LIST)
		return RCPT_LIST;
	return RCPT_TEMPFAIL;
}

enum rcpt_verdict
rcpt_lists_check(struct rcpt_lists *rl, const struct addr *a, struct listaddr_match *m,
                 uint64_t *ticket)
{
	int64_t now = now_ms();

	if (*ticket != 0) {
		if (rl->answered >= *ticket && rl->answered_ok && rl->cur != NULL)
			return verdict(rl->cur, a, m);
		if (rl->answered >= *ticket || rl->given_up >= *ticket)
			return from_cache(rl, a, m);
		return RCPT_PENDING;
	}
	/* A list address found in a table refreshed less than a second ago
	 * is taken as it is (under load the store changes all the time);
	 * anything else waits for a refresh that starts after this RCPT,
	 * so that a list just created is never refused. */
	if (rl->cur != NULL && now - rl->fresh_ms < RECHECK_MS &&
	    verdict(rl->cur, a, m) == RCPT_LIST)
		return RCPT_LIST;
	/* The refresher is stuck in SQLite: do not wait for it. */
	if (rl->answered != rl->asked && now - rl->asked_ms >= RCPT_LISTS_WAIT_MS)
		return from_cache(rl, a, m);
	*ticket = ask(rl);
	return RCPT_PENDING;
}
