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
	METRIC_MSG_ACCEPTED,  /* 250 after DATA: committed to the spool */
	METRIC_MSG_REFUSED,   /* 4xx/5xx to DATA (no valid recipient, no
	                       * memory) or at its end (limits, bare CR/LF,
	                       * time limit, the spool's commit failed) */
	METRIC_DELIVERY_SENT, /* recipients, counted once the result is
	                       * committed (server/deliver_result.c) */
	METRIC_DELIVERY_DEFERRED,
	METRIC_DELIVERY_FAILED,
	METRIC_BOUNCES, /* recipients at a -bounces address the engine
	                 * handled (bounces, DSNs, complaints), once
	                 * committed (server/engine_runner.c) */
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

/* Appends the whole exposition to out, reading the queue's sizes from db
 * (one statement, db_queue_count_by_state()). Returns 0, or -1 when the
 * store failed (nothing was appended then; db_errmsg(db) says why). The
 * caller checks out->oom. */
int metrics_render(struct db *db, struct strbuf *out);

/* The current value of counter m (for tests and logs). */
int64_t metrics_get(enum metric m);

/* Appends s escaped as the format wants it: backslash and newline always,
 * the double quote too in a label value (label != 0), not in HELP text. */
void metrics_escape(struct strbuf *out, const char *s, int label);

#endif
