/*
 * metrics.c - the process-wide counters and their rendering in the
 * Prometheus text exposition format 0.0.4 (see metrics.h).
 *
 * Every counter is a C11 atomic bumped with relaxed ordering: each is a
 * tally on its own, nobody orders other memory by it, and a scrape that
 * sees one counter a moment ahead of another is still a true picture of
 * some instant of each. So no thread ever waits on a lock to count.
 */
#include "server/metrics.h"

#include "db/queue.h"
#include "mail/strbuf.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

static _Atomic int64_t counters[METRIC_COUNT];
static _Atomic int64_t start_time;

/* The statuses fanmaild's HTTP face answers with; any other one is
 * counted under "other" so that the table stays small and fixed. */
static const int http_statuses[] = {200, 204, 301, 303, 400, 403, 404,
                                    405, 410, 413, 429, 431, 500, 503};
#define NSTATUS (sizeof(http_statuses) / sizeof(http_statuses[0]))

static _Atomic int64_t http_counts[ROUTE_COUNT][NSTATUS + 1]; /* last: other */

static const char *const route_names[ROUTE_COUNT] = {
    [ROUTE_HEALTHZ] = "healthz",   [ROUTE_METRICS] = "metrics",
    [ROUTE_CONFIRM] = "confirm",   [ROUTE_UNSUBSCRIBE] = "unsubscribe",
    [ROUTE_ONECLICK] = "oneclick", [ROUTE_SUBSCRIBE] = "subscribe",
    [ROUTE_STATIC] = "static",     [ROUTE_OTHER] = "other",
};

void
metrics_add(enum metric m, int64_t n)
{
	if ((unsigned)m < METRIC_COUNT)
		atomic_fetch_add_explicit(&counters[m], n, memory_order_relaxed);
}

void
metrics_http(enum metric_route r, int status)
{
	size_t k = 0;

	if ((unsigned)r >= ROUTE_COUNT)
		r = ROUTE_OTHER;
	while (k < NSTATUS && http_statuses[k] != status)
		k++;
	atomic_fetch_add_explicit(&http_counts[r][k], 1, memory_order_relaxed);
}

void
metrics_started(int64_t now)
{
	atomic_store_explicit(&start_time, now, memory_order_relaxed);
}

int64_t
metrics_get(enum metric m)
{
	if ((unsigned)m >= METRIC_COUNT)
		return 0;
	return atomic_load_explicit(&counters[m], memory_order_relaxed);
}

void
metrics_escape(struct strbuf *out, const char *s, int label)
{
	for (; *s != '\0'; s++) {
		if (*s == '\\')
			strbuf_str(out, "\\\\");
		else if (*s == '\n')
			strbuf_str(out, "\\n");
		else if (*s == '"' && label)
			strbuf_str(out, "\\\"");
		else
			strbuf_add(out, s, 1);
	}
}

/* The # HELP and # TYPE lines of family name. */
static void
family(struct strbuf *out, const char *name, const char *type, const char *help)
{
	strbuf_printf(out, "# HELP %s ", name);
	metrics_escape(out, help, 0);
	strbuf_printf(out, "\n# TYPE %s %s\n", name, type);
}

/* One sample: name{label="value"} v, or name v when label is NULL. */
static void
sample(struct strbuf *out, const char *name, const char *label, const char *value, int64_t v)
{
	strbuf_str(out, name);
	if (label != NULL) {
		strbuf_printf(out, "{%s=\"", label);
		metrics_escape(out, value, 1);
		strbuf_str(out, "\"}");
	}
	strbuf_printf(out, " %lld\n", (long long)v);
}

static void
single(struct strbuf *out, const char *name, const char *type, const char *help, int64_t v)
{
	family(out, name, type, help);
	sample(out, name, NULL, NULL, v);
}

int
metrics_render(struct db *db, struct strbuf *out)
{
	struct db_queue_counts q;

	/* The store first: when it fails nothing has been appended. */
	if (db_queue_count_by_state(db, &q) < 0)
		return -1;

	single(out, "fanmail_smtp_sessions_total", "counter", "SMTP sessions opened.",
	       metrics_get(METRIC_SMTP_SESSIONS));
	single(out, "fanmail_smtp_sessions_active", "gauge", "SMTP sessions open now.",
	       metrics_get(METRIC_SMTP_ACTIVE));
	single(out, "fanmail_messages_accepted_total", "counter",
	       "Messages accepted (committed to the spool, 250 after DATA).",
	       metrics_get(METRIC_MSG_ACCEPTED));
	single(out, "fanmail_messages_refused_total", "counter",
	       "Messages refused with 4xx or 5xx at DATA or at the end of the data.",
	       metrics_get(METRIC_MSG_REFUSED));

	family(out, "fanmail_queue_recipients", "gauge",
	       "Outbound delivery rows by state, as the store holds them now.");
	sample(out, "fanmail_queue_recipients", "state", "queued", q.queued);
	sample(out, "fanmail_queue_recipients", "state", "deferred", q.deferred);
	sample(out, "fanmail_queue_recipients", "state", "sent", q.sent);
	sample(out, "fanmail_queue_recipients", "state", "failed", q.failed);
	single(out, "fanmail_queue_messages", "gauge",
	       "Outbound messages with a recipient still queued or deferred.", q.messages);

	family(out, "fanmail_deliveries_total", "counter",
	       "Delivery attempts' results per recipient, counted when committed.");
	sample(out, "fanmail_deliveries_total", "result", "sent",
	       metrics_get(METRIC_DELIVERY_SENT));
	sample(out, "fanmail_deliveries_total", "result", "deferred",
	       metrics_get(METRIC_DELIVERY_DEFERRED));
	sample(out, "fanmail_deliveries_total", "result", "failed",
	       metrics_get(METRIC_DELIVERY_FAILED));
	single(out, "fanmail_bounces_total", "counter",
	       "Bounces and complaints handled at a list's -bounces address.",
	       metrics_get(METRIC_BOUNCES));

	family(out, "fanmail_http_requests_total", "counter",
	       "HTTP requests answered, by route and status (only those seen).");
	for (int r = 0; r < ROUTE_COUNT; r++)
		for (size_t k = 0; k <= NSTATUS; k++) {
			int64_t v = atomic_load_explicit(&http_counts[r][k], memory_order_relaxed);
			char status[16];

			if (v == 0)
				continue;
			if (k < NSTATUS)
				snprintf(status, sizeof(status), "%d", http_statuses[k]);
			else
				snprintf(status, sizeof(status), "other");
			strbuf_str(out, "fanmail_http_requests_total{route=\"");
			metrics_escape(out, route_names[r], 1);
			strbuf_str(out, "\",status=\"");
			metrics_escape(out, status, 1);
			strbuf_printf(out, "\"} %lld\n", (long long)v);
		}

	single(out, "fanmail_start_time_seconds", "gauge",
	       "When fanmaild started, in seconds since the Unix epoch.",
	       atomic_load_explicit(&start_time, memory_order_relaxed));
	return 0;
}
