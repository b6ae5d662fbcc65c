/*
 * daemon.h - what the parts of fanmaild share: one event base (the loop
 * thread), the configuration, the spool writer, the running subsystems
 * and the stop flag.
 *
 * main.c creates it and starts each subsystem from its table of
 * subsystems (smtp_in, the delivery scheduler, the list-engine runner);
 * each gets this struct in its start, shutdown, busy, finish and free
 * functions and keeps its handle here, so that the subsystems can wake
 * one another (the engine kicks delivery after its commits; delivery
 * wakes the engine when it puts mail into the spool) without globals.
 * Everything here is used from the loop thread only, except spool,
 * deliver and runner, whose functions say which thread they run on; each
 * handle is set before any other thread can use it and cleared only
 * after those threads have stopped.
 */
#ifndef FANMAIL_DAEMON_H
#define FANMAIL_DAEMON_H

#include "conf/conf.h"
#include "db/db.h"

struct deliver;
struct engine_runner;
struct http;
struct event;
struct event_base;
struct smtp_in;
struct spool_writer;
struct ssl_ctx_st;

struct daemon {
	struct event_base *base;
	const struct conf *conf;
	struct db *db;              /* opens and migrates the store at start */
	struct spool_writer *spool; /* commits accepted messages */
	struct ssl_ctx_st *tls;     /* NULL when STARTTLS is not offered */
	int *listen_fds;            /* bound before privileges were dropped */
	size_t nlisten;
	int *http_fds; /* http_listen's sockets, bound with the others */
	size_t nhttp;
	struct ssl_ctx_st *http_tls; /* NULL unless http_tls_cert is set */
	int stopping;                /* set on SIGTERM/SIGINT */
	/* the subsystems (NULL when not running) */
	struct smtp_in *smtp_in;
	struct deliver *deliver;      /* deliver_kick() from any thread */
	struct engine_runner *runner; /* engine_runner_wake() from any thread */
	struct http *http;            /* the HTTP face (server/http.c) */
	/* shutdown: polls for work left, and the shutdown_timeout deadline */
	struct event *poll_ev, *deadline_ev;
	int deadline_passed;
};

#endif
