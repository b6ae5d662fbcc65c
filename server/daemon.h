/*
 * daemon.h - what the parts of fanmaild share: one event base (the loop
 * thread), the configuration, the spool writer, and the stop flag.
 *
 * main.c creates it and starts each subsystem from its table of
 * subsystems (smtp_in, and the list-engine runner and delivery scheduler
 * as they arrive); each gets this struct in its start function. Everything
 * here is used from the loop thread only, except spool, whose functions
 * say which thread they run on.
 */
#ifndef FANMAIL_DAEMON_H
#define FANMAIL_DAEMON_H

#include "conf/conf.h"
#include "db/db.h"

struct event_base;
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
	int stopping; /* set on SIGTERM/SIGINT */
};

#endif
