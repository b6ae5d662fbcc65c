/*
 * metrics.h - fanmaild's counters, and /metrics in the Prometheus text
 * exposition format (version 0.0.4).
 *
 * Counters are process-wide atomics, bumped from any thread without a
 * lock (metrics_inc()); gauges that live in the store (queue size by
 * state) are read when /metrics is rendered, on the HTTP worker thread
 * with its own connection, never on the loop.
 *
 * Every family is named fanmail_*, with # HELP and # TYPE lines:
 *   fanmail_smtp_sessions_total, fanmail_smtp_sessions_active
 *   fanmail_messages_accepted_total, fanmail_messages_refused_total
 *   fanmail_queue_recipients{state="queued|deferred|sent|failed"}
 *   fanmail_deliveries_total{result="sent|deferred|failed"}
 *   fanmail_bounces_total
 *   fanmail_http_requests_total{route="...",status="..."}
 *   fanmail_start_time_seconds
 */
#ifndef FANMAIL_METRICS_H
#define FANMAIL_METRICS_H

#include <stdint.h>

struct db;
struct strbuf;

enum metric {
	METRIC_SMTP_SESSIONS, /* sessions opened */
	METRIC_SMTP_ACTIVE,   /* a gauge: +1 on open, -1 on close (metrics_add) */
	METRIC_MSG_ACCEPTED,  /* 250 after DATA */
	METRIC_MSG_REFUSED,   /* 4xx/5xx to DATA or its end */
	METRIC_DELIVERY_SENT, /* recipients */
	METRIC_DELIVERY_DEFERRED,
	METRIC_DELIVERY_FAILED,
	METRIC_BOUNCES, /* bounces and complaints the engine counted */
	METRIC_COUNT
};

/* HTTP routes, for fanmail_http_requests_total{route}. */
enum metric_route {
	ROUTE_HEALTHZ,
	ROUTE_METRICS,
	ROUTE_CONFIRM,
	ROUTE_UNSUBSCRIBE, /* the form: /unsubscribe/LIST */
	ROUTE_ONECLICK,    /* /unsubscribe/LIST/TOKEN */
	ROUTE_SUBSCRIBE,
	ROUTE_STATIC, /* /, /style.css */
	ROUTE_OTHER,  /* anything else (404) */
	ROUTE_COUNT
};

void metrics_add(enum metric m, int64_t n);
static inline void
metrics_inc(enum metric m)
{
	metrics_add(m, 1);
}

/* Counts one answered HTTP request. */
void metrics_http(enum metric_route r, int status);

/* Sets the start time (once, at start). */
void metrics_started(int64_t now);

/* Appends the whole exposition to out, reading the queue's sizes from db.
 * Returns 0, or -1 when the store failed (out holds nothing then). */
int metrics_render(struct db *db, struct strbuf *out);

#endif
