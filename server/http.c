/*
 * http.c - fanmaild's HTTP face (see http.h).
 *
 * One evhttp on the daemon's loop. A request is routed and limited on the
 * loop; what needs the store becomes a job for the `http` worker thread
 * (`in` queue), which runs the list logic (lists/web.h) or the store reads
 * of /healthz and /metrics on its own connection and posts the job back
 * (`done` queue); the loop then writes the page. The loop never reads the
 * store and a POST is answered only after its commit.
 *
 * Limits: libevent enforces the header and body sizes and the timeout;
 * this file the connections (a set of the evhttp connections seen, a
 * connection past http_max_connections gets 503 and is closed), the jobs
 * in flight (503 past MAX_INFLIGHT) and the per-IP rate of the page
 * routes (a count per minute, 429 with Retry-After).
 *
 * Ownership: a job belongs to whichever thread holds it (the queues hand
 * it over); the loop owns everything else here, the worker the
 * connection and the one-click keys.
 */
#include "server/http.h"
#include "conf/conf.h"
#include "db/db.h"
#include "lists/oneclick.h"
#include "lists/web.h"
#include "mail/strbuf.h"
#include "server/daemon.h"
#include "server/deliver.h"
#include "server/http_pages.h"
#include "server/http_parse.h"
#include "server/listen.h"
#include "server/log.h"
#include "server/metrics.h"
#include "server/tls.h"
#include "server/workq.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <openssl/ssl.h>

#define MAX_INFLIGHT 512       /* jobs queued or running before 503 */
#define KEYS_RELOAD_SECS 60    /* the worker rereads the one-click keys */
#define MAX_CONNECTIONS 100000 /* the most http_max_connections may say */

enum op {
	OP_HEALTH,
	OP_METRICS,
	OP_CONFIRM_SHOW,
	OP_CONFIRM_APPLY,
	OP_ONECLICK_SHOW,
	OP_ONECLICK_APPLY,
	OP_FORM_SHOW,
	OP_FORM_REQUEST,
};

struct job {
	struct workq_item link; /* first: the queues link it */
	struct evhttp_request *req;
	enum op op;
	enum metric_route route;
	enum web_kind form;
	char token[ONECLICK_TOKEN_MAX + 1];
	char list[HTTP_LIST_MAX + 1];
	char address[330];
	/* the worker's answer */
	int status;
	struct strbuf out; /* /metrics */
	struct web_result r;
};

struct http {
	struct daemon *d;
	const struct conf *conf;
	struct evhttp *http;
	struct evhttp_bound_socket **bound;
	size_t nbound;
	char prefix[2048]; /* http_base_url's path, without a trailing '/' */
	int stopping;
	size_t inflight;
	/* the connections seen (open addressing over the pointers) */
	struct evhttp_connection **conns;
	size_t nconn_slots, nconns;
	/* the per-client counts of the current minute */
	struct http_rate *rate;
	/* the worker */
	struct workq *in, *done;
	pthread_t thread;
	int thread_started;
	struct db *db;
	struct oneclick_keys keys;
	int keys_loaded;
	time_t keys_at;
};

static time_t
mono_secs(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

static size_t
ptr_hash(const void *p, size_t mask)
{
	uintptr_t x = (uintptr_t)p;

	x ^= x >> 17;
	x *= (uintptr_t)0x9e3779b97f4a7c15ULL;
	x ^= x >> 29;
	return (size_t)x & mask;
}

/* -------- connections -------- */

static size_t
conn_find(struct http *h, struct evhttp_connection *c)
{
	size_t mask = h->nconn_slots - 1, i = ptr_hash(c, mask);

	while (h->conns[i] != NULL && h->conns[i] != c)
		i = (i + 1) & mask;
	return i;
}

static void
conn_closed(struct evhttp_connection *c, void *arg)
{
	struct http *h = arg;
	size_t mask = h->nconn_slots - 1, i = conn_find(h, c), j;

	if (h->conns[i] == NULL)
		return; /* libevent may tell twice */
	h->conns[i] = NULL;
	h->nconns--;
	/* Backward-shift deletion keeps every probe chain whole. */
	for (j = (i + 1) & mask; h->conns[j] != NULL; j = (j + 1) & mask) {
		size_t home = ptr_hash(h->conns[j], mask);

		if ((j > i && (home <= i || home > j)) || (j < i && (home <= i && home > j))) {
			h->conns[i] = h->conns[j];
			h->conns[j] = NULL;
			i = j;
		}
	}
}

/* Registers the request's connection when it is new. Returns 0, or -1
 * when it is one past http_max_connections. */
static int
conn_admit(struct http *h, struct evhttp_connection *c)
{
	size_t i = conn_find(h, c);

	if (h->conns[i] == c)
		return 0;
	if (h->nconns >= (size_t)h->conf->http_max_connections)
		return -1;
	h->conns[i] = c;
	h->nconns++;
	evhttp_connection_set_closecb(c, conn_closed, h);
	return 0;
}

/* -------- replies -------- */

static void
security_headers(struct evkeyvalq *oh)
{
	evhttp_add_header(
	    oh, "Content-Security-Policy",
	    "default-src 'none'; style-src 'self' 'unsafe-inline'; form-action 'self'; "
	    "frame-ancestors 'none'; base-uri 'none'");
	evhttp_add_header(oh, "Referrer-Policy", "no-referrer");
	evhttp_add_header(oh, "X-Frame-Options", "DENY");
	evhttp_add_header(oh, "X-Content-Type-Options", "nosniff");
}

/* Sends body (text, or HTML when ctype is NULL) with status, counts it
 * and frees body. */
static void
reply(struct http *h, struct evhttp_request *req, enum metric_route route, int status,
      struct strbuf *body, const char *ctype)
{
	struct evkeyvalq *oh = evhttp_request_get_output_headers(req);
	struct evbuffer *buf = evbuffer_new();

	security_headers(oh);
	evhttp_add_header(oh, "Content-Type", ctype ? ctype : "text/html; charset=utf-8");
	if (route != ROUTE_STATIC)
		evhttp_add_header(oh, "Cache-Control", "no-store");
	if (h->stopping)
		evhttp_add_header(oh, "Connection", "close");
	if (buf != NULL && !body->oom && body->p != NULL)
		evbuffer_add(buf, body->p, body->len);
	evhttp_send_reply(req, status, http_reason(status), buf);
	if (buf != NULL)
		evbuffer_free(buf);
	strbuf_free(body);
	metrics_http(route, status);
}

static void
reply_error(struct http *h, struct evhttp_request *req, enum metric_route route, int status,
            const char *message)
{
	struct strbuf b = {0};

	page_error(&b, status, message);
	reply(h, req, route, status, &b, NULL);
}

static void
reply_405(struct http *h, struct evhttp_request *req, enum metric_route route, const char *allow)
{
	evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", allow);
	reply_error(h, req, route, 405, "This address does not take that method.");
}

/* -------- the worker thread -------- */

static void
keys_refresh(struct http *h)
{
	time_t now = mono_secs();

	if (h->keys_loaded && now - h->keys_at < KEYS_RELOAD_SECS)
		return;
	h->keys_at = now;
	if (oneclick_keys_load(h->db, &h->keys) == 0) {
		h->keys_loaded = 1;
	} else if (!h->keys_loaded) {
		memset(&h->keys, 0, sizeof(h->keys));
		log_warnx("http: cannot load the one-click keys: %s", db_errmsg(h->db));
	}
}

static void
run_job(struct http *h, struct job *j)
{
	const struct conf *c = h->conf;

	switch (j->op) {
	case OP_HEALTH:
		j->status = db_schema_version(h->db) >= 0 ? 200 : 503;
		break;
	case OP_METRICS:
		j->status = metrics_render(h->db, &j->out) == 0 ? 200 : 500;
		break;
	case OP_CONFIRM_SHOW:
		web_confirm_show(h->db, c, j->token, &j->r);
		break;
	case OP_CONFIRM_APPLY:
		web_confirm_apply(h->db, c, j->token, &j->r);
		break;
	case OP_ONECLICK_SHOW:
		keys_refresh(h);
		web_oneclick_show(h->db, c, &h->keys, j->list, j->token, &j->r);
		break;
	case OP_ONECLICK_APPLY:
		keys_refresh(h);
		web_oneclick_apply(h->db, c, &h->keys, j->list, j->token, &j->r);
		break;
	case OP_FORM_SHOW:
		web_form_show(h->db, j->list, j->form, &j->r);
		break;
	case OP_FORM_REQUEST:
		web_form_request(h->db, c, j->list, j->form, j->address, &j->r);
		break;
	}
	if (j->op >= OP_CONFIRM_SHOW) {
		if (j->r.status < 200 || j->r.status > 599)
			j->r.status = 500;
		j->status = j->r.status;
	}
}

static int
is_apply(enum op op)
{
	return op == OP_CONFIRM_APPLY || op == OP_ONECLICK_APPLY || op == OP_FORM_REQUEST;
}

/* Group commit, as the spool writer does: the changes of every request
 * waiting are made in one transaction, each under a savepoint, and
 * committed with one sync; none is answered before that commit. When it
 * fails, every change of the batch is undone and each gets 500. */
static void
run_batch(struct http *h, struct workq_item *list)
{
	int napply = 0, txn = 0;

	for (struct workq_item *it = list; it != NULL; it = it->next)
		napply += is_apply(((struct job *)it)->op);
	if (napply > 1 && db_begin(h->db) == 0)
		txn = 1;
	for (struct workq_item *it = list; it != NULL; it = it->next)
		run_job(h, (struct job *)it);
	if (txn && db_commit(h->db) < 0) {
		log_warnx("http: committing %d request(s): %s", napply, db_errmsg(h->db));
		db_rollback(h->db);
		for (struct workq_item *it = list; it != NULL; it = it->next) {
			struct job *j = (struct job *)it;

			if (!is_apply(j->op) || j->status != 200)
				continue;
			j->status = j->r.status = 500;
			j->r.kind = WEB_ERROR;
			j->r.mail_queued = 0;
			j->r.log[0] = '\0';
			snprintf(
			    j->r.message, sizeof(j->r.message), "%s",
			    "The server could not store the change; nothing was changed. Please "
			    "try again later.");
		}
	}
}

static void *
worker(void *arg)
{
	struct http *h = arg;
	struct workq_item *list;

	for (;;) {
		list = workq_wait(h->in, 0, -1);
		if (list == NULL) {
			if (workq_stopped(h->in))
				break;
			continue;
		}
		run_batch(h, list);
		workq_post(h->done, list);
	}
	return NULL;
}

static int
is_show(enum op op)
{
	return op == OP_CONFIRM_SHOW || op == OP_ONECLICK_SHOW || op == OP_FORM_SHOW;
}

/* On the loop: the worker's answers become replies. */
static void
jobs_done(void *arg, struct workq_item *list)
{
	struct http *h = arg;

	while (list != NULL) {
		struct job *j = (struct job *)list;
		struct strbuf b = {0};

		list = list->next;
		h->inflight--;
		switch (j->op) {
		case OP_HEALTH:
			strbuf_str(&b, j->status == 200 ? "ok\n" : "the store does not answer\n");
			reply(h, j->req, j->route, j->status, &b, "text/plain; charset=utf-8");
			break;
		case OP_METRICS:
			if (j->status != 200)
				log_warnx("http: /metrics: the store failed");
			reply(h, j->req, j->route, j->status, &j->out,
			      "text/plain; version=0.0.4; charset=utf-8");
			break;
		default:
			if (j->r.log[0] != '\0')
				log_info("http: %s", j->r.log);
			if (j->r.mail_queued && h->d->deliver != NULL)
				deliver_kick(h->d->deliver);
			page_web(&b, &j->r, is_show(j->op) && j->status == 200);
			reply(h, j->req, j->route, j->status, &b, NULL);
			break;
		}
		strbuf_free(&j->out);
		free(j);
	}
}

static void
submit(struct http *h, struct job *j)
{
	h->inflight++;
	workq_post(h->in, &j->link);
}

/* -------- parsing -------- */

/* The value of field name in the request's form body, into out: 0, or
 * < 0 when absent or the body is no well-formed form (http_parse.h). */
static int
form_field(struct evhttp_request *req, const char *name, char *out, size_t outlen)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	const char *ctype =
	    evhttp_find_header(evhttp_request_get_input_headers(req), "Content-Type");
	size_t len = evbuffer_get_length(in);
	const char *body = len > 0 ? (const char *)evbuffer_pullup(in, -1) : "";

	if (body == NULL)
		return -2;
	return http_form_field(ctype, body, len, name, out, outlen);
}

static int
metrics_allowed(const struct http *h, const char *ip)
{
	const char *cur = h->conf->http_metrics_allow, *item;
	size_t len;
	int any = 0;

	while ((item = conf_list_next(&cur, &len)) != NULL) {
		any = 1;
		if (len == strlen(ip) && strncasecmp(item, ip, len) == 0)
			return 1;
		/* an IPv4 client on a dual-stack socket */
		if (strncmp(ip, "::ffff:", 7) == 0 && len == strlen(ip + 7) &&
		    strncmp(item, ip + 7, len) == 0)
			return 1;
	}
	return !any;
}

/* -------- the request handler -------- */

static void
on_request(struct evhttp_request *req, void *arg)
{
	struct http *h = arg;
	struct evhttp_connection *evcon = evhttp_request_get_connection(req);
	enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	char *peer = NULL, field[340];
	ev_uint16_t port = 0;
	enum metric_route route = ROUTE_OTHER;
	int head_get = cmd == EVHTTP_REQ_GET || cmd == EVHTTP_REQ_HEAD, retry;
	struct http_target t;
	struct job *j = NULL;

	if (evcon != NULL)
		evhttp_connection_get_peer(evcon, &peer, &port);
	if (peer == NULL)
		peer = "";
	if (evcon != NULL && conn_admit(h, evcon) < 0) {
		log_warnx("http: too many connections (%zu); refusing %s", h->nconns, peer);
		evhttp_add_header(evhttp_request_get_output_headers(req), "Connection", "close");
		evhttp_add_header(evhttp_request_get_output_headers(req), "Retry-After", "5");
		reply_error(h, req, ROUTE_OTHER, 503, "Too many connections; try again later.");
		return;
	}
	/* CONNECT names a host, not a page here: 405 with our headers
	 * (libevent's own answer would be a bare 501). */
	if (cmd == EVHTTP_REQ_CONNECT) {
		reply_405(h, req, ROUTE_OTHER, "GET, HEAD, POST");
		return;
	}
	if (http_parse_request_target(h->prefix, evhttp_request_get_uri(req),
	                              uri ? evhttp_uri_get_path(uri) : NULL, &t) < 0) {
		reply_error(h, req, ROUTE_OTHER, 400, "The address of this page is malformed.");
		return;
	}
	route = t.route;
	if (route == ROUTE_OTHER) {
		reply_error(h, req, route, 404, "There is no such page here.");
		return;
	}
	if (route == ROUTE_STATIC || route == ROUTE_HEALTHZ || route == ROUTE_METRICS) {
		if (!head_get) {
			reply_405(h, req, route, "GET, HEAD");
			return;
		}
	} else if (!head_get && cmd != EVHTTP_REQ_POST) {
		reply_405(h, req, route, "GET, HEAD, POST");
		return;
	}
	if (route == ROUTE_STATIC) {
		struct strbuf b = {0};

		page_index(&b, h->conf->hostname);
		reply(h, req, route, 200, &b, NULL);
		return;
	}
	if (route == ROUTE_METRICS && !metrics_allowed(h, peer)) {
		reply_error(h, req, route, 403, "This client may not read the metrics.");
		return;
	}
	if (route != ROUTE_HEALTHZ && route != ROUTE_METRICS &&
	    (retry = http_rate_hit(h->rate, peer, h->conf->http_rate_limit, mono_secs())) > 0) {
		char ra[16];

		snprintf(ra, sizeof(ra), "%d", retry);
		evhttp_add_header(evhttp_request_get_output_headers(req), "Retry-After", ra);
		log_info("http: %s: rate limit reached", peer);
		reply_error(h, req, route, 429, "Too many requests; try again in a minute.");
		return;
	}
	if (!t.args_ok) {
		reply_error(h, req, route, 400, "The address of this page is malformed.");
		return;
	}
	if (h->stopping || h->inflight >= MAX_INFLIGHT) {
		evhttp_add_header(evhttp_request_get_output_headers(req), "Retry-After", "1");
		reply_error(h, req, route, 503, "The server is busy; try again shortly.");
		return;
	}
	if ((j = calloc(1, sizeof(*j))) == NULL) {
		reply_error(h, req, route, 503, "The server is busy; try again shortly.");
		return;
	}
	j->req = req;
	j->route = route;
	snprintf(j->list, sizeof(j->list), "%s", t.list);
	snprintf(j->token, sizeof(j->token), "%s", t.token);
	switch (route) {
	case ROUTE_HEALTHZ:
		j->op = OP_HEALTH;
		break;
	case ROUTE_METRICS:
		j->op = OP_METRICS;
		break;
	case ROUTE_CONFIRM:
		j->op = head_get ? OP_CONFIRM_SHOW : OP_CONFIRM_APPLY;
		break;
	case ROUTE_ONECLICK:
		j->op = OP_ONECLICK_SHOW;
		if (!head_get) {
			/* RFC 8058: the body is List-Unsubscribe=One-Click (the
			 * page's own button posts the same field). */
			if (form_field(req, "List-Unsubscribe", field, sizeof(field)) < 0 ||
			    strcmp(field, "One-Click") != 0) {
				reply_error(h, req, route, 400,
				            "A one-click unsubscription needs the body "
				            "List-Unsubscribe=One-Click.");
				free(j);
				return;
			}
			j->op = OP_ONECLICK_APPLY;
		}
		break;
	case ROUTE_UNSUBSCRIBE:
	case ROUTE_SUBSCRIBE:
		j->form = route == ROUTE_SUBSCRIBE ? WEB_FORM_SUBSCRIBE : WEB_FORM_UNSUBSCRIBE;
		j->op = OP_FORM_SHOW;
		if (!head_get) {
			if (form_field(req, "address", j->address, sizeof(j->address)) < 0 ||
			    j->address[0] == '\0') {
				reply_error(h, req, route, 400, "Please give an email address.");
				free(j);
				return;
			}
			j->op = OP_FORM_REQUEST;
		}
		break;
	default:
		break;
	}
	submit(h, j);
}

/* -------- HTTPS -------- */

static struct bufferevent *
tls_bevcb(struct event_base *base, void *arg)
{
	struct http *h = arg;
	SSL *ssl = tls_session_new(h->d->http_tls);

	if (ssl == NULL) {
		log_warnx("http: cannot make a TLS session");
		return NULL;
	}
	return bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING,
	                                      BEV_OPT_CLOSE_ON_FREE);
}

/* -------- life cycle -------- */

int
http_bind(struct daemon *d, char *err, size_t errlen)
{
	const struct conf *c = d->conf;

	if (c->http_listen[0] == '\0')
		return 0;
	if ((c->http_tls_cert[0] != '\0') != (c->http_tls_key[0] != '\0')) {
		snprintf(err, errlen, "http_tls_cert and http_tls_key must be set together");
		return -1;
	}
	if (c->http_tls_cert[0] != '\0' &&
	    (d->http_tls = tls_ctx_new(c->http_tls_cert, c->http_tls_key, err, errlen)) == NULL)
		return -1;
	if (listen_bind_all(c->http_listen, &d->http_fds, &d->nhttp, err, errlen) < 0) {
		char why[512];

		snprintf(why, sizeof(why), "%s", err);
		snprintf(err, errlen, "http_listen: %s", why);
		return -1;
	}
	return 0;
}

struct http *
http_start(struct daemon *d, char *err, size_t errlen)
{
	const struct conf *c = d->conf;
	struct http *h = calloc(1, sizeof(*h));
	size_t slots = 16;

	if (h == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	h->d = d;
	h->conf = c;
	if (d->nhttp == 0)
		return h; /* off */
	{
		char base[sizeof(h->prefix)];

		conf_http_base_url(c, base, sizeof(base));
		if (http_base_prefix(base, h->prefix, sizeof(h->prefix)) < 0) {
			snprintf(err, errlen, "http_base_url: the path is too long");
			goto fail;
		}
	}
	/* The table of connections holds twice as many slots: a bound keeps
	 * the doubling below from running past size_t. */
	if (c->http_max_connections < 1 || c->http_max_connections > MAX_CONNECTIONS) {
		snprintf(err, errlen, "http_max_connections: %lld is not from 1 to %d",
		         (long long)c->http_max_connections, MAX_CONNECTIONS);
		goto fail;
	}
	while (slots < (size_t)c->http_max_connections * 2)
		slots *= 2;
	h->nconn_slots = slots;
	h->conns = calloc(slots, sizeof(*h->conns));
	h->rate = http_rate_new();
	h->bound = calloc(d->nhttp, sizeof(*h->bound));
	h->http = evhttp_new(d->base);
	h->in = workq_new(NULL, NULL, NULL);
	h->done = workq_new(d->base, jobs_done, h);
	if (h->conns == NULL || h->rate == NULL || h->bound == NULL || h->http == NULL ||
	    h->in == NULL || h->done == NULL) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	if ((h->db = db_open(c->database, 0, err, errlen)) == NULL)
		goto fail;
	evhttp_set_max_headers_size(h->http, (ev_ssize_t)c->http_max_header_size);
	evhttp_set_max_body_size(h->http, (ev_ssize_t)c->http_max_body_size);
	evhttp_set_timeout(h->http, c->http_timeout > 0 ? (int)c->http_timeout : 30);
	/* Every method reaches on_request, which answers 405 with Allow. */
	evhttp_set_allowed_methods(h->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
	                                        EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
	                                        EVHTTP_REQ_OPTIONS | EVHTTP_REQ_TRACE |
	                                        EVHTTP_REQ_PATCH | EVHTTP_REQ_CONNECT);
	evhttp_set_default_content_type(h->http, "text/html; charset=utf-8");
	evhttp_set_gencb(h->http, on_request, h);
	if (d->http_tls != NULL)
		evhttp_set_bevcb(h->http, tls_bevcb, h);
	if (pthread_create(&h->thread, NULL, worker, h) != 0) {
		snprintf(err, errlen, "cannot start the http worker thread");
		goto fail;
	}
	h->thread_started = 1;
	for (size_t i = 0; i < d->nhttp; i++) {
		if ((h->bound[i] = evhttp_accept_socket_with_handle(h->http, d->http_fds[i])) ==
		    NULL) {
			snprintf(err, errlen, "http_listen: cannot accept on a socket");
			goto fail;
		}
		d->http_fds[i] = -1; /* evhttp closes it */
		h->nbound++;
	}
	log_info("http: serving on %s%s, links under %s/", c->http_listen,
	         d->http_tls ? " (HTTPS)" : "", h->prefix[0] ? h->prefix : "");
	return h;
fail:
	http_free(h);
	return NULL;
}

void
http_shutdown(struct http *h)
{
	if (h == NULL || h->http == NULL)
		return;
	h->stopping = 1;
	for (size_t i = 0; i < h->nbound; i++)
		evhttp_del_accept_socket(h->http, h->bound[i]);
	h->nbound = 0;
}

size_t
http_busy(const struct http *h)
{
	return h ? h->inflight : 0;
}

void
http_free(struct http *h)
{
	struct workq_item *it, *next;

	if (h == NULL)
		return;
	if (h->thread_started) {
		workq_stop(h->in);
		pthread_join(h->thread, NULL);
	}
	/* Jobs not answered: their requests go with the connections. */
	for (int q = 0; q < 2; q++) {
		struct workq *wq = q == 0 ? h->in : h->done;

		for (it = wq ? workq_take(wq) : NULL; it != NULL; it = next) {
			next = it->next;
			strbuf_free(&((struct job *)it)->out);
			free(it);
		}
	}
	if (h->http != NULL)
		evhttp_free(h->http); /* calls conn_closed: h is still whole */
	workq_free(h->in);
	workq_free(h->done);
	db_close(h->db);
	free(h->conns);
	http_rate_free(h->rate);
	free(h->bound);
	free(h);
}
