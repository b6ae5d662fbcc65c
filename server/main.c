/*
 * main.c - fanmaild: reads the configuration, binds the listeners, drops
 * privileges, opens the store, starts the spool writer and then each
 * subsystem in the table below on one libevent loop, and stops them in
 * order on SIGTERM or SIGINT.
 *
 * Adding a subsystem (the list-engine runner, the delivery scheduler):
 * write start/shutdown/busy/finish/free functions that take the struct
 * daemon (server/daemon.h), keep its handle there (no globals), and add
 * one line to `subsystems`. A subsystem that must hear of new spool rows
 * registers with spool_writer_on_commit() in its start function.
 *
 * Shutdown: every subsystem's shutdown() is called (stop taking new work),
 * then the loop runs until none is busy, or until shutdown_timeout, when
 * finish() ends what is left. Commits already handed to the spool writer
 * always complete, so nothing acknowledged is lost and nothing
 * unacknowledged is half-stored.
 */
#include "conf/conf.h"
#include "db/db.h"
#include "server/daemon.h"
#include "server/deliver.h"
#include "server/engine_runner.h"
#include "server/http.h"
#include "server/listen.h"
#include "server/log.h"
#include "server/metrics.h"
#include "server/smtp_in.h"
#include "server/spool_writer.h"
#include "server/tls.h"

#include <errno.h>
#include <grp.h>
#include <malloc.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <sysexits.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/thread.h>

#define POLL_MS 50 /* how often shutdown checks whether work is left */

static int
smtpd_start(struct daemon *d, char *err, size_t errlen)
{
	d->smtp_in = smtp_in_start(d, err, errlen);
	return d->smtp_in ? 0 : -1;
}

static void
smtpd_shutdown(struct daemon *d)
{
	smtp_in_shutdown(d->smtp_in);
}

static int
smtpd_busy(struct daemon *d)
{
	return smtp_in_sessions(d->smtp_in) > 0;
}

static void
smtpd_finish(struct daemon *d)
{
	smtp_in_close_all(d->smtp_in);
}

static void
smtpd_free(struct daemon *d)
{
	smtp_in_free(d->smtp_in);
	d->smtp_in = NULL;
}

/* The list-engine runner: woken after each spool commit, and it wakes
 * delivery after each of its own (on the runner thread: d->deliver is set
 * before the runner starts and cleared after it has stopped). */
static void
runner_kick_delivery(void *arg)
{
	struct daemon *d = arg;

	deliver_kick(d->deliver);
}

static void
engine_runner_wake_cb(void *arg)
{
	engine_runner_wake(arg);
}

static void
runner_wake(void *arg, size_t n)
{
	engine_runner_wake(arg);
}

static int
runner_start(struct daemon *d, char *err, size_t errlen)
{
	d->runner = engine_runner_start(d->conf, runner_kick_delivery, d, err, errlen);
	if (d->runner == NULL)
		return -1;
	/* mail delivery put into the spool */
	deliver_on_spool(d->deliver, engine_runner_wake_cb, d->runner);
	return spool_writer_on_commit(d->spool, runner_wake, d->runner);
}

static void
runner_shutdown(struct daemon *d)
{
}

static int
runner_busy(struct daemon *d)
{
	return 0; /* the entry in hand is finished by runner_free() */
}

static void
runner_free(struct daemon *d)
{
	deliver_on_spool(d->deliver, NULL, NULL);
	engine_runner_stop(d->runner);
	d->runner = NULL;
}

/* The HTTP face: last in the table, so it is freed first (its worker
 * kicks delivery). */
static int
httpd_start(struct daemon *d, char *err, size_t errlen)
{
	d->http = http_start(d, err, errlen);
	return d->http ? 0 : -1;
}

static void
httpd_shutdown(struct daemon *d)
{
	http_shutdown(d->http);
}

static int
httpd_busy(struct daemon *d)
{
	return http_busy(d->http) > 0;
}

static void
httpd_finish(struct daemon *d)
{
}

static void
httpd_free(struct daemon *d)
{
	http_free(d->http);
	d->http = NULL;
}

static const struct subsystem {
	const char *name;
	int (*start)(struct daemon *d, char *err, size_t errlen);
	void (*shutdown)(struct daemon *d); /* SIGTERM: take no new work */
	int (*busy)(struct daemon *d);      /* still has work in flight */
	void (*finish)(struct daemon *d);   /* the deadline: end it now */
	void (*free)(struct daemon *d);     /* after the loop has ended */
} subsystems[] = {
    {"smtp_in", smtpd_start, smtpd_shutdown, smtpd_busy, smtpd_finish, smtpd_free},
    {"deliver", deliver_sub_start, deliver_sub_shutdown, deliver_sub_busy, deliver_sub_finish,
     deliver_sub_free},
    {"engine", runner_start, runner_shutdown, runner_busy, runner_shutdown, runner_free},
    {"http", httpd_start, httpd_shutdown, httpd_busy, httpd_finish, httpd_free},
};
#define NSUBSYSTEMS (sizeof(subsystems) / sizeof(subsystems[0]))

static int
anything_busy(struct daemon *d)
{
	for (size_t i = 0; i < NSUBSYSTEMS; i++)
		if (subsystems[i].busy(d))
			return 1;
	return spool_writer_pending(d->spool) > 0;
}

static void
poll_cb(evutil_socket_t fd, short what, void *arg)
{
	struct daemon *d = arg;
	struct timeval tv = {0, POLL_MS * 1000};

	if (!anything_busy(d)) {
		event_base_loopbreak(d->base);
		return;
	}
	evtimer_add(d->poll_ev, &tv);
}

static void
deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	struct daemon *d = arg;

	if (d->deadline_passed)
		return;
	d->deadline_passed = 1;
	log_info("shutdown deadline reached; closing what is left");
	for (size_t i = 0; i < NSUBSYSTEMS; i++)
		subsystems[i].finish(d);
}

static void
signal_cb(evutil_socket_t sig, short what, void *arg)
{
	struct daemon *d = arg;
	struct timeval tv = {(time_t)d->conf->shutdown_timeout, 0}, now = {0, 0};

	if (sig == SIGHUP) {
		log_info("SIGHUP: reloading is not supported; restart fanmaild to apply changes");
		return;
	}
	if (d->stopping) {
		/* A second signal: do not wait for the deadline. */
		deadline_cb(-1, 0, d);
		return;
	}
	d->stopping = 1;
	log_info("terminating on signal %d", (int)sig);
	spool_writer_shutdown(d->spool);
	for (size_t i = 0; i < NSUBSYSTEMS; i++)
		subsystems[i].shutdown(d);
	evtimer_add(d->deadline_ev, &tv);
	evtimer_add(d->poll_ev, &now);
}

static int
drop_privileges(const char *user)
{
	struct passwd *pw;

	if (user[0] == '\0')
		return 0;
	if (geteuid() != 0) {
		log_info("not started as root: running as uid %ld, `user` not applied",
		         (long)geteuid());
		return 0;
	}
	errno = 0;
	if ((pw = getpwnam(user)) == NULL) {
		log_errorx("user %s: no such user", user);
		return EX_NOUSER;
	}
	if (initgroups(pw->pw_name, pw->pw_gid) < 0 || setgid(pw->pw_gid) < 0 ||
	    setuid(pw->pw_uid) < 0) {
		log_warn("cannot switch to user %s", user);
		return EX_OSERR;
	}
	if (setuid(0) == 0) {
		log_errorx("could regain root after switching to %s", user);
		return EX_OSERR;
	}
	log_info("running as user %s (uid %ld)", user, (long)pw->pw_uid);
	return 0;
}

/* Thousands of sessions need thousands of descriptors. */
static void
raise_fd_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static void
usage(FILE *out)
{
	fprintf(out,
	        "usage: fanmaild [-c FILE]\n"
	        "  -c FILE  configuration file (default: $FANMAIL_CONFIG, else %s)\n"
	        "  -V       print the version and exit\n"
	        "  -h       this help\n",
	        conf_default_path(NULL));
}

int
main(int argc, char **argv)
{
	struct daemon d = {0};
	struct conf conf;
	const char *cfile = NULL, *path;
	struct event *sig_ev[3];
	char err[1024];
	int ch, rc = 0, must_exist;
	size_t started = 0;

	/* Each thread's heap would be trimmed back to the system (madvise,
	 * and a TLB flush on every core) whenever a few messages' buffers are
	 * freed, and grown again for the next ones: keep up to 4 MB free per
	 * heap. The engine gives memory back after big jobs (malloc_trim). */
	mallopt(M_TRIM_THRESHOLD, 4 * 1024 * 1024);
	mallopt(M_MMAP_THRESHOLD, 1024 * 1024);
	while ((ch = getopt(argc, argv, "c:hV")) != -1) {
		switch (ch) {
		case 'c':
			cfile = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("fanmaild %s\n", FANMAIL_VERSION);
			return 0;
		default:
			usage(stderr);
			return EX_USAGE;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return EX_USAGE;
	}
	must_exist = cfile != NULL || getenv("FANMAIL_CONFIG") != NULL;
	path = conf_default_path(cfile);
	conf_init(&conf);
	if (conf_load(&conf, path, must_exist, err, sizeof(err)) < 0) {
		fprintf(stderr, "fanmaild: %s\n", err);
		conf_free(&conf);
		return EX_CONFIG;
	}
	if (log_init("fanmaild", conf.log_level) < 0) {
		fprintf(stderr, "fanmaild: log_level: unknown level %s\n", conf.log_level);
		conf_free(&conf);
		return EX_CONFIG;
	}
	d.conf = &conf;
	signal(SIGPIPE, SIG_IGN);
	raise_fd_limit();

	if ((conf.tls_cert_file[0] != '\0') != (conf.tls_key_file[0] != '\0')) {
		log_errorx("tls_cert_file and tls_key_file must be set together");
		rc = EX_CONFIG;
		goto out;
	}
	if (conf.max_data_memory < conf.max_message_size) {
		log_errorx("max_data_memory (%lld) is smaller than max_message_size (%lld): no "
		           "message that big could be received",
		           conf.max_data_memory, conf.max_message_size);
		rc = EX_CONFIG;
		goto out;
	}
	if (conf.tls_required && conf.tls_cert_file[0] == '\0') {
		log_errorx("tls_required needs tls_cert_file and tls_key_file");
		rc = EX_CONFIG;
		goto out;
	}
	if (conf.tls_cert_file[0] != '\0' &&
	    (d.tls = tls_ctx_new(conf.tls_cert_file, conf.tls_key_file, err, sizeof(err))) ==
	        NULL) {
		log_errorx("%s", err);
		rc = EX_CONFIG;
		goto out;
	}
	if (listen_bind_all(conf.listen, &d.listen_fds, &d.nlisten, err, sizeof(err)) < 0) {
		log_errorx("%s", err);
		rc = EX_OSERR;
		goto out;
	}
	if (http_bind(&d, err, sizeof(err)) < 0) {
		log_errorx("%s", err);
		rc = EX_CONFIG;
		goto out;
	}
	if ((rc = drop_privileges(conf.user)) != 0)
		goto out;

	if (evthread_use_pthreads() < 0 || (d.base = event_base_new()) == NULL) {
		log_errorx("cannot create the event loop");
		rc = EX_OSERR;
		goto out;
	}
	if ((d.db = db_open(conf.database, DB_OPEN_CREATE, err, sizeof(err))) == NULL) {
		log_errorx("%s", err);
		rc = EX_CANTCREAT;
		goto out;
	}
	if ((d.spool = spool_writer_start(d.base, conf.database, err, sizeof(err))) == NULL) {
		log_errorx("spool writer: %s", err);
		rc = EX_OSERR;
		goto out;
	}
	for (size_t i = 0; i < NSUBSYSTEMS; i++) {
		if (subsystems[i].start(&d, err, sizeof(err)) < 0) {
			log_errorx("%s: %s", subsystems[i].name, err);
			rc = EX_OSERR;
			goto out;
		}
		started++;
	}
	d.poll_ev = evtimer_new(d.base, poll_cb, &d);
	d.deadline_ev = evtimer_new(d.base, deadline_cb, &d);
	sig_ev[0] = evsignal_new(d.base, SIGTERM, signal_cb, &d);
	sig_ev[1] = evsignal_new(d.base, SIGINT, signal_cb, &d);
	sig_ev[2] = evsignal_new(d.base, SIGHUP, signal_cb, &d);
	for (int i = 0; i < 3; i++)
		evsignal_add(sig_ev[i], NULL);
	metrics_started((int64_t)time(NULL));
	log_info("daemon started -- version %s, database %s, listening on %s%s", FANMAIL_VERSION,
	         conf.database, conf.listen, d.tls ? " (STARTTLS offered)" : "");

	event_base_dispatch(d.base);

	log_info("stopped");
	for (int i = 0; i < 3; i++)
		event_free(sig_ev[i]);
	event_free(d.poll_ev);
	event_free(d.deadline_ev);
out:
	/* The writer first: its last results and commit hooks may still
	 * reach into the subsystems. */
	spool_writer_stop(d.spool);
	while (started > 0)
		subsystems[--started].free(&d);
	db_close(d.db);
	for (size_t i = 0; i < d.nlisten; i++)
		if (d.listen_fds[i] >= 0)
			close(d.listen_fds[i]);
	free(d.listen_fds);
	for (size_t i = 0; i < d.nhttp; i++)
		if (d.http_fds[i] >= 0)
			close(d.http_fds[i]);
	free(d.http_fds);
	if (d.http_tls != NULL)
		tls_ctx_free(d.http_tls);
	if (d.base != NULL)
		event_base_free(d.base);
	if (d.tls != NULL)
		tls_ctx_free(d.tls);
	conf_free(&conf);
	return rc;
}
