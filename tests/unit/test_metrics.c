/*
 * test_metrics.c - fanmaild's counters and /metrics (server/metrics.h):
 * counts bumped from several threads at once all arrive, every family has
 * its # HELP and # TYPE lines, the queue's gauges come from a real store,
 * HTTP requests show only the route and status pairs seen, label values
 * are escaped, and a store that fails leaves the output untouched.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "fm_assert.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "db/db.h"
#include "db/db_internal.h"
#include "db/queue.h"
#include "mail/strbuf.h"
#include "server/metrics.h"

#define THREADS 4
#define ROUNDS 20000

struct fixture {
	char dir[64];
	char path[128];
	struct db *db;
};

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	char err[512];

	snprintf(f->dir, sizeof(f->dir), "/tmp/fm-unit-metrics-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/fanmail.db", f->dir);
	f->db = db_open(f->path, DB_OPEN_CREATE, err, sizeof(err));
	if (f->db == NULL)
		fail_msg("db_open: %s", err);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;
	char p[160];

	db_close(f->db);
	unlink(f->path);
	snprintf(p, sizeof(p), "%s-wal", f->path);
	unlink(p);
	snprintf(p, sizeof(p), "%s-shm", f->path);
	unlink(p);
	rmdir(f->dir);
	free(f);
	return 0;
}

/* The whole exposition, rendered from f's store (the caller frees it). */
static char *
render(struct fixture *f)
{
	struct strbuf b = {0};

	if (metrics_render(f->db, &b) < 0)
		fail_msg("metrics_render: %s", db_errmsg(f->db));
	assert_int_equal(b.oom, 0);
	return strbuf_done(&b);
}

/* The value of the sample whose name and labels are exactly series (a
 * whole line "series value"), or -1 when text has no such line. */
static long long
value(const char *text, const char *series)
{
	size_t n = strlen(series);

	for (const char *p = text; p != NULL && *p != '\0';) {
		const char *eol = strchr(p, '\n');
		if (strncmp(p, series, n) == 0 && p[n] == ' ')
			return strtoll(p + n + 1, NULL, 10);
		p = eol ? eol + 1 : NULL;
	}
	return -1;
}

/* value(), with an absent series counted as 0 (counters seen nowhere). */
static long long
value0(const char *text, const char *series)
{
	long long v = value(text, series);
	return v < 0 ? 0 : v;
}

static void *
bump(void *arg)
{
	for (int i = 0; i < ROUNDS; i++) {
		metrics_inc(METRIC_SMTP_SESSIONS);
		metrics_add(METRIC_SMTP_ACTIVE, 1);
		metrics_inc(METRIC_MSG_ACCEPTED);
		if (i % 2 == 0)
			metrics_inc(METRIC_MSG_REFUSED);
		metrics_add(METRIC_DELIVERY_SENT, 3);
		metrics_inc(METRIC_DELIVERY_DEFERRED);
		metrics_inc(METRIC_DELIVERY_FAILED);
		metrics_inc(METRIC_BOUNCES);
		metrics_http(ROUTE_HEALTHZ, 200);
		if (i % 4 == 0)
			metrics_http(ROUTE_CONFIRM, 404);
		if (i % 5 == 0)
			metrics_http(ROUTE_SUBSCRIBE, 999); /* not in the table: "other" */
		metrics_add(METRIC_SMTP_ACTIVE, -1);
	}
	return NULL;
}

static void
test_counts_from_several_threads_all_arrive(void **state)
{
	struct fixture *f = *state;
	static const struct {
		const char *series;
		long long per_round_x4; /* what one round adds, times 4 */
	} rows[] = {
	    {"fanmail_smtp_sessions_total", 4},
	    {"fanmail_smtp_sessions_active", 0},
	    {"fanmail_messages_accepted_total", 4},
	    {"fanmail_messages_refused_total", 2},
	    {"fanmail_deliveries_total{result=\"sent\"}", 12},
	    {"fanmail_deliveries_total{result=\"deferred\"}", 4},
	    {"fanmail_deliveries_total{result=\"failed\"}", 4},
	    {"fanmail_bounces_total", 4},
	    {"fanmail_http_requests_total{route=\"healthz\",status=\"200\"}", 4},
	    {"fanmail_http_requests_total{route=\"confirm\",status=\"404\"}", 1},
	};
	char *before = render(f), *after;
	pthread_t t[THREADS];

	for (int i = 0; i < THREADS; i++)
		assert_int_equal(pthread_create(&t[i], NULL, bump, NULL), 0);
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	after = render(f);
	for (size_t r = 0; r < sizeof(rows) / sizeof(rows[0]); r++) {
		long long want = value0(before, rows[r].series) +
		                 (long long)THREADS * ROUNDS / 4 * rows[r].per_round_x4;
		long long got = value(after, rows[r].series);
		if (got != want)
			fail_msg("%s: %lld, expected %lld in:\n%s", rows[r].series, got, want,
			         after);
	}
	/* i % 5 == 0 for ROUNDS / 5 rounds in each thread. */
	assert_int_equal(
	    value(after, "fanmail_http_requests_total{route=\"subscribe\",status=\"other\"}"),
	    value0(before, "fanmail_http_requests_total{route=\"subscribe\",status=\"other\"}") +
	        THREADS * ROUNDS / 5);
	assert_int_equal(metrics_get(METRIC_SMTP_ACTIVE), 0);
	free(before);
	free(after);
}

static void
test_every_family_has_help_and_type_before_its_samples(void **state)
{
	struct fixture *f = *state;
	static const struct {
		const char *name, *type;
	} fams[] = {
	    {"fanmail_smtp_sessions_total", "counter"},
	    {"fanmail_smtp_sessions_active", "gauge"},
	    {"fanmail_messages_accepted_total", "counter"},
	    {"fanmail_messages_refused_total", "counter"},
	    {"fanmail_queue_recipients", "gauge"},
	    {"fanmail_queue_messages", "gauge"},
	    {"fanmail_deliveries_total", "counter"},
	    {"fanmail_bounces_total", "counter"},
	    {"fanmail_http_requests_total", "counter"},
	    {"fanmail_start_time_seconds", "gauge"},
	};
	char *text, help[128], type[128];

	metrics_started(1700000000);
	metrics_http(ROUTE_METRICS, 200); /* so that the HTTP family has a sample */
	text = render(f);
	for (size_t i = 0; i < sizeof(fams) / sizeof(fams[0]); i++) {
		const char *h, *t, *s;
		char first[128];

		snprintf(help, sizeof(help), "# HELP %s ", fams[i].name);
		snprintf(type, sizeof(type), "\n# TYPE %s %s\n", fams[i].name, fams[i].type);
		assert_string_contains(text, help);
		assert_string_contains(text, type);
		h = strstr(text, help);
		t = strstr(text, type);
		/* HELP, then TYPE on the next line, then the first sample. */
		assert_true(t > h && memchr(h, '\n', (size_t)(t - h) + 1) == t);
		snprintf(first, sizeof(first), "\n%s", fams[i].name);
		s = strstr(t + strlen(type) - 1, first);
		if (s == NULL)
			fail_msg("no sample of %s after its TYPE line in:\n%s", fams[i].name, text);
		/* Exactly one HELP and one TYPE line per family. */
		assert_null(strstr(h + 1, help));
		assert_null(strstr(t + 1, type));
	}
	assert_int_equal(value(text, "fanmail_start_time_seconds"), 1700000000);
	/* Every line is a comment or "name[{labels}] integer", and the text
	 * ends with a newline. */
	assert_true(strlen(text) > 0 && text[strlen(text) - 1] == '\n');
	for (char *line = strtok(text, "\n"); line != NULL; line = strtok(NULL, "\n")) {
		char *sp = strrchr(line, ' ');
		if (line[0] == '#')
			continue;
		assert_non_null(sp);
		assert_true(strncmp(line, "fanmail_", 8) == 0);
		assert_true(strspn(sp + 1, "0123456789-") == strlen(sp + 1));
	}
	free(text);
}

static void
test_http_requests_show_only_pairs_seen(void **state)
{
	struct fixture *f = *state;
	char *text;

	metrics_http(ROUTE_ONECLICK, 204);
	metrics_http(ROUTE_ONECLICK, 204);
	metrics_http(ROUTE_STATIC, 301);
	metrics_http(ROUTE_COUNT + 3, 431); /* out of range: counted as other */
	text = render(f);
	assert_true(value(text, "fanmail_http_requests_total{route=\"oneclick\",status=\"204\"}") >=
	            2);
	assert_true(value(text, "fanmail_http_requests_total{route=\"static\",status=\"301\"}") >=
	            1);
	assert_true(value(text, "fanmail_http_requests_total{route=\"other\",status=\"431\"}") >=
	            1);
	/* Pairs never counted have no line at all. */
	assert_string_not_contains(text, "route=\"unsubscribe\"");
	assert_string_not_contains(text, "route=\"oneclick\",status=\"200\"");
	assert_string_not_contains(text, "status=\"503\"");
	free(text);
}

/* Adds a message for n recipients rcpt0@d.example.. and returns its rows'
 * ids in ids (in the order added). */
static void
add_message(struct db *db, int n, int64_t *ids)
{
	struct outq_rcpt r[8];
	char addrs[8][64];
	struct outq_msg m = {.kind = "notice",
	                     .env_from = "list-bounces@lists.example.org",
	                     .body = "Subject: x\r\n\r\nhi\r\n",
	                     .len = 18,
	                     .lifetime = 3600};
	char qid[DB_QID_LEN];
	int64_t msg_id;
	sqlite3_stmt *st;

	assert_true(n <= 8);
	for (int i = 0; i < n; i++) {
		snprintf(addrs[i], sizeof(addrs[i]), "rcpt%d@d.example", i);
		r[i] = (struct outq_rcpt){addrs[i], "d.example", 0};
	}
	if (db_outq_add(db, &m, r, (size_t)n, qid, &msg_id) < 0)
		fail_msg("db_outq_add: %s", db_errmsg(db));
	assert_int_equal(
	    sqlite3_prepare_v2(db->sql, "SELECT id FROM deliveries WHERE msg_id = ? ORDER BY id",
	                       -1, &st, NULL),
	    SQLITE_OK);
	sqlite3_bind_int64(st, 1, msg_id);
	for (int i = 0; i < n; i++) {
		assert_int_equal(sqlite3_step(st), SQLITE_ROW);
		ids[i] = sqlite3_column_int64(st, 0);
	}
	sqlite3_finalize(st);
}

static void
test_queue_gauges_come_from_the_store(void **state)
{
	struct fixture *f = *state;
	int64_t a[5], b[2];
	struct db_queue_counts c;
	char *text;

	text = render(f);
	assert_int_equal(value(text, "fanmail_queue_recipients{state=\"queued\"}"), 0);
	assert_int_equal(value(text, "fanmail_queue_messages"), 0);
	free(text);

	/* Message a: 2 queued, 1 deferred, 1 sent, 1 failed. Message b: all
	 * sent, so it is no longer a message waiting in the queue. */
	add_message(f->db, 5, a);
	add_message(f->db, 2, b);
	assert_int_equal(db_queue_set_result(f->db, a[2], DB_Q_DEFERRED, 1, 9999999999, "451"), 0);
	assert_int_equal(db_queue_set_result(f->db, a[3], DB_Q_SENT, 1, 0, "250"), 0);
	assert_int_equal(db_queue_set_result(f->db, a[4], DB_Q_FAILED, 1, 0, "550"), 0);
	assert_int_equal(db_queue_set_result(f->db, b[0], DB_Q_SENT, 1, 0, "250"), 0);
	assert_int_equal(db_queue_set_result(f->db, b[1], DB_Q_SENT, 1, 0, "250"), 0);

	assert_int_equal(db_queue_count_by_state(f->db, &c), 0);
	assert_int_equal(c.queued, 2);
	assert_int_equal(c.deferred, 1);
	assert_int_equal(c.sent, 3);
	assert_int_equal(c.failed, 1);
	assert_int_equal(c.messages, 1);

	text = render(f);
	assert_int_equal(value(text, "fanmail_queue_recipients{state=\"queued\"}"), 2);
	assert_int_equal(value(text, "fanmail_queue_recipients{state=\"deferred\"}"), 1);
	assert_int_equal(value(text, "fanmail_queue_recipients{state=\"sent\"}"), 3);
	assert_int_equal(value(text, "fanmail_queue_recipients{state=\"failed\"}"), 1);
	assert_int_equal(value(text, "fanmail_queue_messages"), 1);
	free(text);
}

static void
test_label_values_and_help_are_escaped(void **state)
{
	static const struct {
		const char *in;
		int label;
		const char *want;
	} rows[] = {
	    {"plain", 1, "plain"},
	    {"a\"b", 1, "a\\\"b"},
	    {"back\\slash", 1, "back\\\\slash"},
	    {"two\nlines", 1, "two\\nlines"},
	    {"\\\"\n", 1, "\\\\\\\"\\n"},
	    /* HELP text: backslash and newline, the quote stays. */
	    {"say \"hi\"\\\n", 0, "say \"hi\"\\\\\\n"},
	    {"", 1, ""},
	};

	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct strbuf b = {0};
		char *got;

		strbuf_str(&b, ""); /* "" rather than NULL when nothing is added */
		metrics_escape(&b, rows[i].in, rows[i].label);
		got = strbuf_done(&b);
		assert_non_null(got);
		if (strcmp(got, rows[i].want) != 0)
			fail_msg("row %zu: \"%s\", expected \"%s\"", i, got, rows[i].want);
		free(got);
	}
}

static void
test_a_failed_store_leaves_the_output_as_it_was(void **state)
{
	struct fixture *f = *state;
	struct strbuf b = {0};

	strbuf_str(&b, "kept\n");
	/* The table gone from under the statement: the store fails. */
	assert_int_equal(
	    sqlite3_exec(f->db->sql, "ALTER TABLE deliveries RENAME TO gone", NULL, NULL, NULL),
	    SQLITE_OK);
	assert_int_equal(metrics_render(f->db, &b), -1);
	assert_string_not_contains(db_errmsg(f->db), "not an error");
	assert_string_equal(b.p, "kept\n");
	strbuf_free(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_counts_from_several_threads_all_arrive, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_every_family_has_help_and_type_before_its_samples,
	                                    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_http_requests_show_only_pairs_seen, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_queue_gauges_come_from_the_store, setup, teardown),
	    cmocka_unit_test(test_label_values_and_help_are_escaped),
	    cmocka_unit_test_setup_teardown(test_a_failed_store_leaves_the_output_as_it_was, setup,
	                                    teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
