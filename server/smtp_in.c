/*
 * smtp_in.c - the SMTP session: an explicit state machine driven by a
 * command table (check phase, proceed phase, and flags per command), a
 * line reader that refuses bare CR/LF and over-long lines without
 * buffering them, the DATA reader of smtp_data.c, and the hand-off to the
 * spool writer. The 250 after DATA is written only when the spool writer
 * reports the commit.
 *
 * Ownership: a session owns its bufferevent, its deadline timer, its
 * transaction (sender, recipients, message buffer, the arguments of a RCPT
 * waiting for the lists table) and, while a commit is pending, its spool
 * job; it is freed only from the reaper event, never from inside one of
 * its own callbacks, and never while a commit is pending.
 *
 * Limits beyond the per-read timeouts: data_deadline and session_deadline
 * (one timer per session), and max_data_memory over all sessions: every
 * octet of message data a session holds (from the Received line to the
 * commit's end) is counted in srv->data_held.
 */
#include "server/smtp_in.h"
#include "db/queue.h"
#include "db/spool.h"
#include "lists/listaddr.h"
#include "mail/addr.h"
#include "mail/utf8.h"
#include "server/daemon.h"
#include "server/log.h"
#include "server/metrics.h"
#include "server/rcpt_lists.h"
#include "server/smtp_data.h"
#include "server/spool_writer.h"
#include "server/tls.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#define CMD_LINE_MAX 512     /* octets of a command line with its CRLF */
#define OUT_HIGH (64 * 1024) /* stop reading past this much unsent output */
#define OUT_LOW (32 * 1024)  /* and resume below it */
#define IN_HIGH (64 * 1024)  /* most input buffered at once */
#define CLOSE_TIMEOUT 10     /* seconds to flush the last reply */
#define IP_BUCKETS 4096

enum state {
	S_GREETING, /* connected; greeting not sent yet */
	S_HELO,     /* greeted; waiting for EHLO/HELO */
	S_READY,    /* EHLO done; no transaction */
	S_MAIL,     /* MAIL accepted */
	S_RCPT,     /* at least one RCPT accepted */
	S_DATA,     /* reading the message */
	S_COMMIT,   /* message handed to the spool writer */
	S_TLS,      /* TLS handshake in progress */
};

enum cmd_id {
	CMD_EHLO,
	CMD_HELO,
	CMD_STARTTLS,
	CMD_MAIL,
	CMD_RCPT,
	CMD_DATA,
	CMD_RSET,
	CMD_NOOP,
	CMD_QUIT,
	CMD_HELP,
	CMD_VRFY,
	CMD_EXPN,
	CMD_UNKNOWN,
	CMD_COUNT,
	CMD_NONE = CMD_COUNT, /* before the first command, for logs */
};

static const char *const cmd_log_names[CMD_COUNT + 1] = {
    "ehlo", "helo", "starttls", "mail", "rcpt", "data",    "rset",
    "noop", "quit", "help",     "vrfy", "expn", "unknown", "CONNECT",
};

struct rcpt {
	char *addr; /* as the client wrote it */
	char *key;  /* addr_key(), for duplicates */
	int64_t list_id;
	enum listaddr_role role;
	char *ext;
};

struct ipcount {
	struct ipcount *next;
	int count;
	char ip[INET6_ADDRSTRLEN];
};

struct session {
	struct smtp_in *srv;
	struct session *prev, *next; /* all sessions */
	struct session *reap_next;
	struct bufferevent *bev;
	struct event *greet_ev;          /* only with greeting_delay */
	struct event *flush_ev;          /* only when closing a TLS session */
	struct event *deadline_ev;       /* session_deadline, data_deadline */
	struct timespec t_start, t_data; /* the connection, the 354 */
	struct ipcount *ipc;
	enum state state;
	char ip[INET6_ADDRSTRLEN];
	char client[INET6_ADDRSTRLEN + 32]; /* unknown[ip]:port, for logs */
	char helo[256];
	int esmtp;
	int tls;
	char tls_desc[128];
	/* flags */
	int closing, reaped, discard_line, throttled, greeted_cmd;
	int direct;     /* plaintext: replies are written straight to the socket */
	int tls_shut;   /* close_notify sent */
	unsigned bad;   /* refused commands, for max_bad_commands */
	unsigned fails; /* refused or failed commands, for the counts */
	unsigned n_ok[CMD_COUNT], n_all[CMD_COUNT];
	enum cmd_id last_cmd;
	/* the transaction */
	char qid[DB_QID_LEN];
	char *mail_from;
	int smtputf8;
	struct rcpt *rcpts;
	size_t nrcpt, rcpt_cap;
	struct evbuffer *msg;
	size_t held;  /* octets of msg (or of the job's body): srv->data_held */
	int over_cap; /* max_data_memory reached: the rest is not kept */
	struct smtp_data data;
	/* a RCPT waiting for the lists table (rcpt_lists.h) */
	char *rcpt_args;
	uint64_t rcpt_ticket;
	struct spool_job *job;
	struct spool_rcpt *job_rcpts;
};

struct smtp_in {
	struct daemon *d;
	const struct conf *conf;
	struct evconnlistener **lis;
	size_t nlis;
	struct rcpt_lists *lists;
	struct session *sessions;
	size_t nsessions;
	struct session *reap;
	struct event *reap_ev;
	struct ipcount *ips[IP_BUCKETS];
	size_t data_held; /* message octets all sessions hold, for max_data_memory */
	int stopping;
};

struct cmd {
	const char *name;
	enum cmd_id id;
	/* check: 0 to go on to proceed, -1 when it has already replied */
	int (*check)(struct session *s, char *args);
	void (*proceed)(struct session *s, char *args);
	int flags;
};
#define CMD_PRE_TLS 0x1   /* allowed before STARTTLS when TLS is required */
#define CMD_GROUP_END 0x2 /* must end a pipelined group (RFC 2920) */

static void process(struct session *s);
static void session_close(struct session *s);
static void session_drop(struct session *s, const char *why);
static void enter_state(struct session *s, enum state st);
static void log_disconnect(struct session *s);
static void session_write(struct bufferevent *bev, void *arg);

/* --- replies and logging --- */

static void __attribute__((format(printf, 2, 3))) reply(struct session *s, const char *fmt, ...)
{
	struct evbuffer *out = bufferevent_get_output(s->bev);
	va_list ap;

	va_start(ap, fmt);
	evbuffer_add_vprintf(out, fmt, ap);
	va_end(ap);
	evbuffer_add(out, "\r\n", 2);
}

/* A refused command: counts against max_bad_commands. */
static void __attribute__((format(printf, 2, 3))) reply_bad(struct session *s, const char *fmt, ...)
{
	struct evbuffer *out = bufferevent_get_output(s->bev);
	va_list ap;

	va_start(ap, fmt);
	evbuffer_add_vprintf(out, fmt, ap);
	va_end(ap);
	evbuffer_add(out, "\r\n", 2);
	s->bad++;
	s->fails++;
}

static const char *
proto_name(const struct session *s)
{
	if (!s->esmtp)
		return "SMTP";
	if (s->smtputf8)
		return s->tls ? "UTF8SMTPS" : "UTF8SMTP";
	return s->tls ? "ESMTPS" : "ESMTP";
}

/* Postfix's reject line: the queue id, the command, the reply. */
static void
log_reject(struct session *s, const char *cmd, const char *rcpt, const char *replytext)
{
	log_info("%s: reject: %s from %s: %s; from=<%s>%s%s%s proto=%s helo=<%s>",
	         s->qid[0] ? s->qid : "NOQUEUE", cmd, s->client, replytext,
	         s->mail_from ? s->mail_from : "", rcpt ? " to=<" : "", rcpt ? rcpt : "",
	         rcpt ? ">" : "", proto_name(s), s->helo);
}

/* Replies and logs a refusal of a recipient (or DATA). */
static void __attribute__((format(printf, 3, 4)))
reject(struct session *s, const char *rcpt, const char *fmt, ...)
{
	char text[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	reply(s, "%s", text);
	s->fails++;
	if (text[0] == '5')
		s->bad++;
	log_reject(s, cmd_log_names[s->last_cmd], rcpt, text);
}

/* --- the transaction --- */

static void
tx_reset(struct session *s)
{
	for (size_t i = 0; i < s->nrcpt; i++) {
		free(s->rcpts[i].addr);
		free(s->rcpts[i].key);
		free(s->rcpts[i].ext);
	}
	free(s->rcpts);
	s->rcpts = NULL;
	s->nrcpt = s->rcpt_cap = 0;
	free(s->mail_from);
	s->mail_from = NULL;
	s->smtputf8 = 0;
	s->qid[0] = '\0';
	free(s->rcpt_args);
	s->rcpt_args = NULL;
	s->rcpt_ticket = 0;
	s->srv->data_held -= s->held;
	s->held = 0;
	s->over_cap = 0;
	if (s->msg != NULL) {
		evbuffer_free(s->msg);
		s->msg = NULL;
	}
	if (s->job != NULL) {
		if (s->job->body != NULL)
			evbuffer_free(s->job->body);
		free(s->job);
		s->job = NULL;
	}
	free(s->job_rcpts);
	s->job_rcpts = NULL;
}

static int
in_transaction(const struct session *s)
{
	return s->state == S_MAIL || s->state == S_RCPT || s->state == S_DATA ||
	       s->state == S_COMMIT;
}

/* --- timeouts and state --- */

static void
set_timeout(struct session *s, long long secs)
{
	struct timeval tv = {(time_t)secs, 0};

	bufferevent_set_timeouts(s->bev, &tv, &tv);
}

static double
secs_since(const struct timespec *t)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - t->tv_sec) + (double)(now.tv_nsec - t->tv_nsec) / 1e9;
}

/* The next deadline: the session's, or the DATA's when it comes first.
 * Unlike the timeouts, which a byte every few seconds keeps resetting,
 * these count from the connection and from the 354. */
static void
arm_deadline(struct session *s)
{
	const struct conf *c = s->srv->conf;
	double left = -1;
	struct timeval tv;

	if (c->session_deadline > 0)
		left = (double)c->session_deadline - secs_since(&s->t_start);
	if (s->state == S_DATA && c->data_deadline > 0) {
		double d = (double)c->data_deadline - secs_since(&s->t_data);
		if (left < 0 || d < left)
			left = d;
	}
	if (left < 0 && c->session_deadline <= 0 && (s->state != S_DATA || c->data_deadline <= 0)) {
		evtimer_del(s->deadline_ev);
		return;
	}
	if (left < 0)
		left = 0;
	tv.tv_sec = (time_t)left;
	tv.tv_usec = (suseconds_t)((left - (double)tv.tv_sec) * 1e6);
	evtimer_add(s->deadline_ev, &tv);
}

static void
enter_state(struct session *s, enum state st)
{
	const struct conf *c = s->srv->conf;
	int was_data = s->state == S_DATA;

	s->state = st;
	if (st == S_DATA)
		clock_gettime(CLOCK_MONOTONIC, &s->t_data);
	if ((st == S_DATA) != was_data)
		arm_deadline(s);
	switch (st) {
	case S_DATA:
		set_timeout(s, c->data_timeout);
		break;
	case S_COMMIT:
		/* Input that comes meanwhile waits in the input buffer (at
		 * most IN_HIGH, then in the kernel): process() does not look
		 * at it until the result is known. Reading stays enabled, which
		 * saves two epoll_ctl calls per message. */
		break;
	case S_GREETING:
		set_timeout(s, c->greeting_timeout);
		break;
	default:
		set_timeout(s, s->greeted_cmd ? c->command_timeout : c->greeting_timeout);
		break;
	}
}

/* --- per-IP session counts --- */

static struct ipcount *
ip_get(struct smtp_in *srv, const char *ip)
{
	unsigned h = 5381;
	struct ipcount *e;

	for (const char *p = ip; *p; p++)
		h = h * 33 + (unsigned char)*p;
	h %= IP_BUCKETS;
	for (e = srv->ips[h]; e; e = e->next)
		if (strcmp(e->ip, ip) == 0)
			return e;
	if ((e = calloc(1, sizeof(*e))) == NULL)
		return NULL;
	snprintf(e->ip, sizeof(e->ip), "%s", ip);
	e->next = srv->ips[h];
	srv->ips[h] = e;
	return e;
}

static void
ip_put(struct smtp_in *srv, struct ipcount *e)
{
	unsigned h = 5381;
	struct ipcount **pp;

	if (e == NULL || --e->count > 0)
		return;
	for (const char *p = e->ip; *p; p++)
		h = h * 33 + (unsigned char)*p;
	h %= IP_BUCKETS;
	for (pp = &srv->ips[h]; *pp; pp = &(*pp)->next)
		if (*pp == e) {
			*pp = e->next;
			free(e);
			return;
		}
}

/* --- closing and freeing --- */

static void
session_free(struct session *s)
{
	struct smtp_in *srv = s->srv;

	log_disconnect(s);
	tx_reset(s);
	if (s->greet_ev != NULL)
		event_free(s->greet_ev);
	if (s->flush_ev != NULL)
		event_free(s->flush_ev);
	if (s->deadline_ev != NULL)
		event_free(s->deadline_ev);
	if (s->bev != NULL)
		bufferevent_free(s->bev);
	ip_put(srv, s->ipc);
	if (s->prev)
		s->prev->next = s->next;
	else
		srv->sessions = s->next;
	if (s->next)
		s->next->prev = s->prev;
	srv->nsessions--;
	metrics_add(METRIC_SMTP_ACTIVE, -1);
	free(s);
}

static void
reap_cb(evutil_socket_t fd, short what, void *arg)
{
	struct smtp_in *srv = arg;
	struct session *s;

	while ((s = srv->reap) != NULL) {
		srv->reap = s->reap_next;
		session_free(s);
	}
}

/* Frees s soon, from the reaper, unless its commit is still pending (the
 * commit's callback reaps it then). */
static void
session_reap(struct session *s)
{
	if (s->reaped || s->state == S_COMMIT)
		return;
	s->reaped = 1;
	s->reap_next = s->srv->reap;
	s->srv->reap = s;
	event_active(s->srv->reap_ev, EV_READ, 0);
}

static void
log_disconnect(struct session *s)
{
	char line[512];
	size_t n = 0;
	unsigned ok = 0, all = 0;

	if (!log_enabled(LOG_LEVEL_INFO))
		return;
	for (int i = 0; i < CMD_COUNT; i++) {
		if (s->n_all[i] == 0)
			continue;
		ok += s->n_ok[i];
		all += s->n_all[i];
		if (s->n_ok[i] == s->n_all[i])
			n += (size_t)snprintf(line + n, sizeof(line) - n, " %s=%u",
			                      cmd_log_names[i], s->n_all[i]);
		else
			n += (size_t)snprintf(line + n, sizeof(line) - n, " %s=%u/%u",
			                      cmd_log_names[i], s->n_ok[i], s->n_all[i]);
		if (n >= sizeof(line))
			break;
	}
	if (ok == all)
		log_info("disconnect from %s%s commands=%u", s->client, n ? line : "", all);
	else
		log_info("disconnect from %s%s commands=%u/%u", s->client, n ? line : "", ok, all);
}

/* Everything written has left, through the TLS layer too. */
static int
flushed(struct session *s)
{
	struct bufferevent *under = bufferevent_get_underlying(s->bev);

	return evbuffer_get_length(bufferevent_get_output(s->bev)) == 0 &&
	       (under == NULL || evbuffer_get_length(bufferevent_get_output(under)) == 0);
}

/* With TLS the last reply leaves through the underlying bufferevent,
 * whose callbacks belong to the filter: look again shortly. */
static void
flush_cb(evutil_socket_t fd, short what, void *arg)
{
	struct session *s = arg;
	struct timeval tv = {0, 20000};

	if (flushed(s))
		session_reap(s);
	else
		evtimer_add(s->flush_ev, &tv);
}

/* Writes the replies of a plaintext session straight to its socket at
 * the end of each burst of work: one writev per pipelined group, and no
 * epoll_ctl calls to arm and disarm the bufferevent's write event for
 * every reply. Only a reply the kernel does not take at once is left to
 * the bufferevent (EV_WRITE enabled until its output is empty again).
 * Returns -1 when the client is gone (the session is then dropped). */
static int
flush_out(struct session *s)
{
	struct evbuffer *out = bufferevent_get_output(s->bev);

	if (!s->direct || s->reaped)
		return 0;
	while (evbuffer_get_length(out) > 0) {
		int n;

		/* A socket bufferevent keeps the front of its output frozen
		 * except while it writes itself. */
		evbuffer_unfreeze(out, 1);
		errno = 0;
		n = evbuffer_write(out, bufferevent_getfd(s->bev));
		evbuffer_freeze(out, 1);
		if (n > 0)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
			bufferevent_enable(s->bev, EV_WRITE);
			return 0;
		}
		evbuffer_drain(out, evbuffer_get_length(out));
		session_drop(s, s->closing ? NULL : "lost connection");
		return -1;
	}
	return 0;
}

/* Ends the session once the replies written so far have gone out. */
static void
session_close(struct session *s)
{
	if (s->closing)
		return;
	s->closing = 1;
	bufferevent_disable(s->bev, EV_READ);
	set_timeout(s, CLOSE_TIMEOUT);
	if (flush_out(s) < 0)
		return;
	if (!s->direct)
		bufferevent_enable(s->bev, EV_WRITE);
	session_write(s->bev, s);
}

/* Ends the session now: the client is gone or broke the protocol. */
static void
session_drop(struct session *s, const char *why)
{
	if (!s->closing) {
		if (why != NULL)
			log_info("%s after %s from %s", why, cmd_log_names[s->last_cmd], s->client);
		s->closing = 1;
	}
	bufferevent_disable(s->bev, EV_READ | EV_WRITE);
	session_reap(s);
}

/* --- addresses --- */

/* Splits "<path> params" after "FROM:" or "TO:". Returns the path (without
 * brackets and source route) in *path and *plen and the parameters in *params,
 * or -1 on a syntax error. Quoted local parts may hold '>'. */
static int
split_path(char *arg, const char **path, size_t *plen, char **params)
{
	char *p = arg, *end;
	int quoted = 0;

	while (*p == ' ')
		p++; /* "MAIL FROM: <a@b>" is common enough to take */
	if (*p != '<')
		return -1;
	for (end = p + 1; *end; end++) {
		if (quoted && *end == '\\' && end[1] != '\0')
			end++;
		else if (*end == '"')
			quoted = !quoted;
		else if (!quoted && *end == '>')
			break;
	}
	if (*end != '>')
		return -1;
	p++;
	/* A source route (@a,@b:user@c) is accepted and ignored, RFC 5321 §4.1.2. */
	if (*p == '@') {
		char *colon = memchr(p, ':', (size_t)(end - p));
		if (colon == NULL)
			return -1;
		p = colon + 1;
	}
	*path = p;
	*plen = (size_t)(end - p);
	end++;
	if (*end != '\0' && *end != ' ')
		return -1;
	while (*end == ' ')
		end++;
	*params = end;
	return 0;
}

/* The next space-separated parameter; NULL at the end. */
static char *
next_param(char **cur)
{
	char *p = *cur, *start;

	while (*p == ' ')
		p++;
	if (*p == '\0')
		return NULL;
	start = p;
	while (*p && *p != ' ')
		p++;
	if (*p)
		*p++ = '\0';
	*cur = p;
	return start;
}

/* --- the commands --- */

static int
check_helo(struct session *s, char *args)
{
	size_t n = strlen(args);

	if (n == 0) {
		reply_bad(s, "501 5.5.4 Syntax: %s hostname",
		          s->last_cmd == CMD_EHLO ? "EHLO" : "HELO");
		return -1;
	}
	if (n >= sizeof(s->helo)) {
		reply_bad(s, "501 5.5.4 Hostname too long");
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)args[i];
		if (c <= ' ' || c == 0x7f) {
			reply_bad(s, "501 5.5.4 Syntax: %s hostname",
			          s->last_cmd == CMD_EHLO ? "EHLO" : "HELO");
			return -1;
		}
	}
	return 0;
}

static void
proceed_ehlo(struct session *s, char *args)
{
	const struct conf *c = s->srv->conf;
	struct evbuffer *out = bufferevent_get_output(s->bev);

	snprintf(s->helo, sizeof(s->helo), "%s", args);
	tx_reset(s);
	s->esmtp = 1;
	enter_state(s, S_READY);
	evbuffer_add_printf(out, "250-%s\r\n", c->hostname);
	evbuffer_add_printf(out, "250-PIPELINING\r\n");
	evbuffer_add_printf(out, "250-SIZE %lld\r\n", c->max_message_size);
	if (s->srv->d->tls != NULL && !s->tls)
		evbuffer_add_printf(out, "250-STARTTLS\r\n");
	evbuffer_add_printf(out, "250-8BITMIME\r\n");
	evbuffer_add_printf(out, "250-ENHANCEDSTATUSCODES\r\n");
	evbuffer_add_printf(out, "250 SMTPUTF8\r\n");
}

static void
proceed_helo(struct session *s, char *args)
{
	snprintf(s->helo, sizeof(s->helo), "%s", args);
	tx_reset(s);
	s->esmtp = 0;
	enter_state(s, S_READY);
	reply(s, "250 %s", s->srv->conf->hostname);
}

static int
check_starttls(struct session *s, char *args)
{
	if (s->srv->d->tls == NULL) {
		reply_bad(s, "502 5.5.1 STARTTLS not available");
		return -1;
	}
	if (s->tls) {
		reply_bad(s, "503 5.5.1 TLS already active");
		return -1;
	}
	if (*args != '\0') {
		reply_bad(s, "501 5.5.4 Syntax: STARTTLS");
		return -1;
	}
	if (s->state == S_HELO) {
		reply_bad(s, "503 5.5.1 Send EHLO first");
		return -1;
	}
	if (in_transaction(s)) {
		reply_bad(s, "503 5.5.1 STARTTLS not allowed in a mail transaction");
		return -1;
	}
	return 0;
}

static void session_event(struct bufferevent *bev, short what, void *arg);
static void session_read(struct bufferevent *bev, void *arg);
static void session_write(struct bufferevent *bev, void *arg);

static void
proceed_starttls(struct session *s, char *args)
{
	struct evbuffer *in = bufferevent_get_input(s->bev);
	struct bufferevent *tls;
	SSL *ssl;

	/* Whatever came with or after STARTTLS in plaintext must not be read
	 * as if it came over TLS (CVE-2011-0411). */
	if (evbuffer_get_length(in) > 0) {
		log_warnx("%s: discarding %zu octets of plaintext sent after STARTTLS", s->client,
		          evbuffer_get_length(in));
		evbuffer_drain(in, evbuffer_get_length(in));
	}
	if ((ssl = tls_session_new(s->srv->d->tls)) == NULL) {
		reply(s, "454 4.7.0 TLS not available now");
		return;
	}
	reply(s, "220 2.0.0 Ready to start TLS");
	if (flush_out(s) < 0) {
		SSL_free(ssl);
		return;
	}
	/* From here the TLS filter drives the socket's bufferevent. */
	s->direct = 0;
	bufferevent_enable(s->bev, EV_READ | EV_WRITE);
	tls = bufferevent_openssl_filter_new(s->srv->d->base, s->bev, ssl,
	                                     BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
	if (tls == NULL) {
		SSL_free(ssl);
		log_warnx("%s: cannot start TLS", s->client);
		session_close(s);
		return;
	}
	bufferevent_openssl_set_allow_dirty_shutdown(tls, 1);
	s->bev = tls;
	bufferevent_setcb(tls, session_read, session_write, session_event, s);
	bufferevent_setwatermark(tls, EV_READ, 0, IN_HIGH);
	bufferevent_setwatermark(tls, EV_WRITE, OUT_LOW, 0);
	enter_state(s, S_TLS);
	bufferevent_enable(tls, EV_READ | EV_WRITE);
}

static int
check_mail(struct session *s, char *args)
{
	const struct conf *c = s->srv->conf;
	const char *path, *why = NULL;
	size_t plen;
	char *params, *p;
	struct addr a;
	int utf8 = 0;

	if (s->state == S_HELO) {
		reply_bad(s, "503 5.5.1 Send EHLO or HELO first");
		return -1;
	}
	if (in_transaction(s)) {
		reply_bad(s, "503 5.5.1 Nested MAIL command");
		return -1;
	}
	if (s->srv->stopping) {
		reply(s, "421 4.3.2 %s Service shutting down", c->hostname);
		session_close(s);
		return -1;
	}
	if (spool_writer_broken(s->srv->d->spool)) {
		/* The spool writer logged why (the database files were replaced
		 * under us): nothing taken now could be stored durably. */
		reply(s, "421 4.3.0 %s Error: cannot store mail now; try again later", c->hostname);
		session_close(s);
		return -1;
	}
	if (strncasecmp(args, "FROM:", 5) != 0 || split_path(args + 5, &path, &plen, &params) < 0) {
		reply_bad(s, "501 5.5.4 Syntax: MAIL FROM:<address>");
		return -1;
	}
	if (*params != '\0' && !s->esmtp) {
		reply_bad(s, "555 5.5.4 MAIL parameters need EHLO");
		return -1;
	}
	while ((p = next_param(&params)) != NULL) {
		if (strncasecmp(p, "SIZE=", 5) == 0) {
			char *end;
			unsigned long long v;
			errno = 0;
			v = strtoull(p + 5, &end, 10);
			if (p[5] < '0' || p[5] > '9' || *end != '\0' || errno) {
				reply_bad(s, "501 5.5.4 Bad SIZE parameter");
				return -1;
			}
			if (v > (unsigned long long)c->max_message_size) {
				reply_bad(s, "552 5.3.4 Message size exceeds fixed limit");
				return -1;
			}
		} else if (strncasecmp(p, "BODY=", 5) == 0) {
			if (strcasecmp(p + 5, "7BIT") != 0 && strcasecmp(p + 5, "8BITMIME") != 0) {
				reply_bad(s, "501 5.5.4 Unsupported BODY parameter");
				return -1;
			}
		} else if (strcasecmp(p, "SMTPUTF8") == 0) {
			utf8 = 1;
		} else {
			reply_bad(s, "555 5.5.4 Unsupported MAIL parameter %.64s", p);
			return -1;
		}
	}
	if (plen > 0 && addr_parse(path, plen, utf8 ? ADDR_UTF8 : 0, &a, &why) < 0) {
		if (!utf8 && !utf8_is_ascii_n(path, plen))
			reply_bad(s, "553 5.6.7 Non-ASCII sender address needs SMTPUTF8");
		else
			reply_bad(s, "501 5.1.7 Bad sender address syntax: %s", why);
		return -1;
	}
	s->smtputf8 = utf8;
	return 0;
}

static void
proceed_mail(struct session *s, char *args)
{
	const char *path;
	size_t plen;
	char *params;

	split_path(args + 5, &path, &plen, &params);
	if ((s->mail_from = strndup(path, plen)) == NULL) {
		reply(s, "451 4.3.0 Out of memory");
		return;
	}
	db_qid_make(s->qid);
	log_info("%s: client=%s", s->qid, s->client);
	enter_state(s, S_MAIL);
	reply(s, "250 2.1.0 Ok");
}

static int
check_rcpt(struct session *s, char *args)
{
	if (s->state != S_MAIL && s->state != S_RCPT) {
		reply_bad(s, "503 5.5.1 Need MAIL before RCPT");
		return -1;
	}
	return 0;
}

static int
add_rcpt(struct session *s, const char *addr, size_t n, const char *key,
         const struct listaddr_match *m)
{
	struct rcpt *r;

	for (size_t i = 0; i < s->nrcpt; i++)
		if (strcmp(s->rcpts[i].key, key) == 0)
			return 0; /* a duplicate: accepted once */
	if (s->nrcpt == s->rcpt_cap) {
		size_t cap = s->rcpt_cap ? s->rcpt_cap * 2 : 4;
		struct rcpt *nr = realloc(s->rcpts, cap * sizeof(*nr));
		if (nr == NULL)
			return -1;
		s->rcpts = nr;
		s->rcpt_cap = cap;
	}
	r = &s->rcpts[s->nrcpt];
	memset(r, 0, sizeof(*r));
	r->addr = strndup(addr, n);
	r->key = strdup(key);
	r->list_id = m->list_id;
	r->role = m->role;
	r->ext = m->ext ? strndup(m->ext, m->ext_len) : NULL;
	if (r->addr == NULL || r->key == NULL || (m->ext && r->ext == NULL)) {
		free(r->addr);
		free(r->key);
		free(r->ext);
		return -1;
	}
	s->nrcpt++;
	return 0;
}

static void
proceed_rcpt(struct session *s, char *args)
{
	const char *path, *why = NULL;
	size_t plen;
	char *params, key[ADDR_PATH_MAX + 8], shown[ADDR_PATH_MAX + 1];
	struct listaddr_match m;
	struct addr a;

	if (strncasecmp(args, "TO:", 3) != 0 || split_path(args + 3, &path, &plen, &params) < 0) {
		reply_bad(s, "501 5.5.4 Syntax: RCPT TO:<address>");
		return;
	}
	snprintf(shown, sizeof(shown), "%.*s", (int)plen, path);
	if (*params != '\0') {
		reply_bad(s, "555 5.5.4 Unsupported RCPT parameter %.64s", params);
		return;
	}
	if (addr_parse(path, plen, s->smtputf8 ? ADDR_UTF8 : 0, &a, &why) < 0) {
		if (!s->smtputf8 && !utf8_is_ascii_n(path, plen))
			reply_bad(s, "553 5.6.7 Non-ASCII recipient address needs SMTPUTF8");
		else
			reply_bad(s, "501 5.1.3 Bad recipient address syntax: %s", why);
		return;
	}
	if (s->nrcpt >= (size_t)s->srv->conf->max_recipients) {
		reject(s, shown, "452 4.5.3 Too many recipients");
		return;
	}
	switch (rcpt_lists_check(s->srv->lists, &a, &m, &s->rcpt_ticket)) {
	case RCPT_PENDING:
		/* Wait for the lists table (lists_refreshed() asks again);
		 * process() reads nothing more meanwhile. */
		if (s->rcpt_args == NULL && (s->rcpt_args = strdup(args)) == NULL) {
			s->rcpt_ticket = 0;
			reply(s, "451 4.3.0 Out of memory");
		}
		return;
	case RCPT_LIST:
		break;
	case RCPT_UNKNOWN:
		s->rcpt_ticket = 0;
		reject(s, shown, "550 5.1.1 <%s>: Recipient address rejected: no such list address",
		       shown);
		return;
	case RCPT_RELAY:
		s->rcpt_ticket = 0;
		reject(s, shown, "550 5.7.1 <%s>: Relay access denied", shown);
		return;
	case RCPT_TEMPFAIL:
		s->rcpt_ticket = 0;
		reject(s, shown, "451 4.3.0 <%s>: Temporary lookup failure", shown);
		return;
	}
	s->rcpt_ticket = 0;
	if (addr_key(&a, key, sizeof(key)) < 0 || add_rcpt(s, path, plen, key, &m) < 0) {
		reply(s, "451 4.3.0 Out of memory");
		return;
	}
	enter_state(s, S_RCPT);
	reply(s, "250 2.1.5 Ok");
}

static int
check_data(struct session *s, char *args)
{
	if (*args != '\0') {
		reply_bad(s, "501 5.5.4 Syntax: DATA");
		return -1;
	}
	if (s->state == S_MAIL) {
		reply_bad(s, "554 5.5.1 No valid recipients");
		metrics_inc(METRIC_MSG_REFUSED);
		return -1;
	}
	if (s->state != S_RCPT) {
		reply_bad(s, "503 5.5.1 Need RCPT before DATA");
		return -1;
	}
	return 0;
}

static void
add_received(struct session *s)
{
	const struct conf *c = s->srv->conf;
	char date[64];
	time_t now = time(NULL);
	struct tm tm;
	int v6 = strchr(s->ip, ':') != NULL;

	localtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S %z", &tm);
	evbuffer_add_printf(
	    s->msg, "Received: from %s (unknown [%s%s])\r\n\tby %s (fanmaild) with %s id %s",
	    s->helo, v6 ? "IPv6:" : "", s->ip, c->hostname, proto_name(s), s->qid);
	if (s->tls)
		evbuffer_add_printf(s->msg, "\r\n\t(using %s)", s->tls_desc);
	if (s->nrcpt == 1)
		evbuffer_add_printf(s->msg, "\r\n\tfor <%s>", s->rcpts[0].addr);
	evbuffer_add_printf(s->msg, "; %s\r\n", date);
}

static void
proceed_data(struct session *s, char *args)
{
	if ((s->msg = evbuffer_new()) == NULL) {
		reply(s, "451 4.3.0 Out of memory");
		metrics_inc(METRIC_MSG_REFUSED);
		return;
	}
	add_received(s);
	s->held = evbuffer_get_length(s->msg);
	s->srv->data_held += s->held;
	smtp_data_init(&s->data, (size_t)s->srv->conf->max_message_size);
	enter_state(s, S_DATA);
	reply(s, "354 End data with <CR><LF>.<CR><LF>");
}

static int
check_nothing(struct session *s, char *args)
{
	return 0;
}

static int
check_no_args(struct session *s, char *args)
{
	if (*args != '\0') {
		reply_bad(s, "501 5.5.4 Syntax: %s", s->last_cmd == CMD_QUIT ? "QUIT" : "RSET");
		return -1;
	}
	return 0;
}

static void
proceed_rset(struct session *s, char *args)
{
	tx_reset(s);
	if (s->state != S_HELO)
		enter_state(s, S_READY);
	reply(s, "250 2.0.0 Ok");
}

static void
proceed_noop(struct session *s, char *args)
{
	reply(s, "250 2.0.0 Ok");
}

static void
proceed_quit(struct session *s, char *args)
{
	reply(s, "221 2.0.0 Bye");
	session_close(s);
}

static void
proceed_help(struct session *s, char *args)
{
	reply(s, "214-2.0.0 fanmaild accepts mail for mailing lists only.");
	reply(s, "214-2.0.0 Commands: EHLO HELO MAIL RCPT DATA RSET NOOP QUIT HELP VRFY%s",
	      s->srv->d->tls ? " STARTTLS" : "");
	reply(s, "214 2.0.0 Write to LIST-request with \"help\" for list commands.");
}

static void
proceed_vrfy(struct session *s, char *args)
{
	reply(s, "252 2.5.2 Cannot VRFY; send mail and it will be handled");
}

static void
proceed_expn(struct session *s, char *args)
{
	reply_bad(s, "502 5.5.1 EXPN not available");
}

static const struct cmd commands[] = {
    {"EHLO", CMD_EHLO, check_helo, proceed_ehlo, CMD_PRE_TLS | CMD_GROUP_END},
    {"HELO", CMD_HELO, check_helo, proceed_helo, CMD_PRE_TLS | CMD_GROUP_END},
    {"STARTTLS", CMD_STARTTLS, check_starttls, proceed_starttls, CMD_PRE_TLS | CMD_GROUP_END},
    {"MAIL", CMD_MAIL, check_mail, proceed_mail, 0},
    {"RCPT", CMD_RCPT, check_rcpt, proceed_rcpt, 0},
    {"DATA", CMD_DATA, check_data, proceed_data, CMD_GROUP_END},
    {"RSET", CMD_RSET, check_no_args, proceed_rset, CMD_PRE_TLS},
    {"NOOP", CMD_NOOP, check_nothing, proceed_noop, CMD_PRE_TLS},
    {"QUIT", CMD_QUIT, check_no_args, proceed_quit, CMD_PRE_TLS | CMD_GROUP_END},
    {"HELP", CMD_HELP, check_nothing, proceed_help, CMD_PRE_TLS},
    {"VRFY", CMD_VRFY, check_nothing, proceed_vrfy, 0},
    {"EXPN", CMD_EXPN, check_nothing, proceed_expn, 0},
};

/* Runs one command line (CRLF removed). */
static void
dispatch(struct session *s, char *line, int more_input)
{
	const struct cmd *cmd = NULL;
	size_t vlen = strcspn(line, " ");
	char *args = line + vlen;
	unsigned fails_before = s->fails;

	while (*args == ' ')
		args++;
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strlen(commands[i].name) == vlen &&
		    strncasecmp(commands[i].name, line, vlen) == 0)
			cmd = &commands[i];
	s->greeted_cmd = 1;
	if (cmd == NULL) {
		s->last_cmd = CMD_UNKNOWN;
		s->n_all[CMD_UNKNOWN]++;
		reply_bad(s, "500 5.5.1 Command unrecognized");
		return;
	}
	s->last_cmd = cmd->id;
	s->n_all[cmd->id]++;
	if (s->srv->conf->tls_required && !s->tls && !(cmd->flags & CMD_PRE_TLS)) {
		reply_bad(s, "530 5.7.0 Must issue a STARTTLS command first");
		return;
	}
	if (cmd->check(s, args) < 0)
		return;
	if ((cmd->flags & CMD_GROUP_END) && more_input && cmd->id != CMD_STARTTLS &&
	    cmd->id != CMD_QUIT) {
		/* RFC 2920: the client must wait for this reply before going
		 * on. One that does not is not speaking SMTP (or is trying to
		 * smuggle): refuse rather than guess. */
		log_warnx("%s: improper command pipelining after %s", s->client, cmd->name);
		reply(s, "554 5.5.0 Error: SMTP protocol synchronization");
		session_close(s);
		return;
	}
	cmd->proceed(s, args);
	if (s->fails == fails_before && s->rcpt_ticket == 0)
		s->n_ok[cmd->id]++; /* a waiting RCPT is counted by resume_rcpt() */
}

/* --- reading --- */

static void
refuse_bare(struct session *s, const char *what)
{
	log_warnx("%s: bare %s received after %s", s->client, what, cmd_log_names[s->last_cmd]);
	reply(s, "521 5.5.2 %s Error: bare %s received; lines must end with CRLF",
	      s->srv->conf->hostname, what);
	session_close(s);
}

/* Reads one command line. Returns 1 when one was handled, 0 when more
 * input is needed. */
static int
read_command(struct session *s)
{
	struct evbuffer *in = bufferevent_get_input(s->bev);
	size_t avail = evbuffer_get_length(in), len;
	struct evbuffer_ptr p = evbuffer_search(in, "\n", 1, NULL);
	char line[CMD_LINE_MAX + 1];

	if (p.pos < 0) {
		/* Refuse a long line without keeping it: drop what came and
		 * skip to its end. */
		if (avail > CMD_LINE_MAX) {
			evbuffer_drain(in, avail);
			s->discard_line = 1;
		}
		return 0;
	}
	len = (size_t)p.pos + 1;
	if (s->discard_line || len > CMD_LINE_MAX) {
		evbuffer_drain(in, len);
		s->discard_line = 0;
		s->n_all[CMD_UNKNOWN]++;
		s->last_cmd = CMD_UNKNOWN;
		reply_bad(s, "500 5.5.2 Line too long");
		return 1;
	}
	evbuffer_remove(in, line, len);
	if (len < 2 || line[len - 2] != '\r') {
		refuse_bare(s, "<LF>");
		return 1;
	}
	if (memchr(line, '\r', len - 2) != NULL) {
		refuse_bare(s, "<CR>");
		return 1;
	}
	line[len - 2] = '\0';
	if (strlen(line) != len - 2) {
		s->n_all[CMD_UNKNOWN]++;
		reply_bad(s, "500 5.5.2 NUL character in command");
		return 1;
	}
	dispatch(s, line, evbuffer_get_length(in) > 0);
	return 1;
}

static void
emit_data(void *arg, const char *p, size_t n)
{
	struct session *s = arg;
	struct smtp_in *srv = s->srv;

	if (s->over_cap)
		return;
	if (srv->data_held + n > (size_t)srv->conf->max_data_memory) {
		/* All sessions together hold as much message data as they may:
		 * keep none of this one (it is answered 452 at its end), and
		 * give back what it had. */
		log_warnx("%s: max_data_memory (%lld) reached by %zu sessions' messages; refusing "
		          "this one",
		          s->qid, srv->conf->max_data_memory, srv->nsessions);
		s->over_cap = 1;
		evbuffer_drain(s->msg, evbuffer_get_length(s->msg));
		srv->data_held -= s->held;
		s->held = 0;
		return;
	}
	evbuffer_add(s->msg, p, n);
	s->held += n;
	srv->data_held += n;
}

static void commit_done(struct spool_job *job, void *arg);

/* The final dot: refuse or hand the message to the spool writer. */
static void
end_data(struct session *s)
{
	const struct conf *c = s->srv->conf;
	struct spool_job *job;

	if (s->data.too_big) {
		reject(s, NULL, "552 5.3.4 Message size exceeds fixed limit");
		goto reset;
	}
	if (s->data.line_too_long) {
		reject(s, NULL, "500 5.5.2 Message has a line longer than 1000 octets");
		goto reset;
	}
	if (s->data.has_nul) {
		reject(s, NULL, "554 5.6.0 Message contains NUL characters");
		goto reset;
	}
	if (s->data.received > c->max_received_headers) {
		reject(s, NULL, "554 5.4.6 Too many Received headers: mail loop detected");
		goto reset;
	}
	if (s->over_cap) {
		reject(s, NULL, "452 4.3.1 Insufficient system storage");
		goto reset;
	}
	job = calloc(1, sizeof(*job));
	s->job_rcpts = calloc(s->nrcpt, sizeof(*s->job_rcpts));
	if (job == NULL || s->job_rcpts == NULL) {
		free(job);
		reply(s, "451 4.3.0 Out of memory");
		goto reset;
	}
	for (size_t i = 0; i < s->nrcpt; i++) {
		s->job_rcpts[i].rcpt = s->rcpts[i].addr;
		s->job_rcpts[i].list_id = s->rcpts[i].list_id;
		s->job_rcpts[i].role = listaddr_role_name(s->rcpts[i].role);
		s->job_rcpts[i].extension = s->rcpts[i].ext;
	}
	job->msg.qid = s->qid;
	job->msg.received = (int64_t)time(NULL);
	job->msg.client = s->client;
	job->msg.helo = s->helo;
	job->msg.mail_from = s->mail_from;
	job->msg.rcpts = s->job_rcpts;
	job->msg.nrcpt = s->nrcpt;
	job->body = s->msg;
	job->done = commit_done;
	job->arg = s;
	s->msg = NULL;
	s->job = job;
	enter_state(s, S_COMMIT);
	spool_writer_submit(s->srv->d->spool, job);
	return;
reset:
	metrics_inc(METRIC_MSG_REFUSED);
	tx_reset(s);
	enter_state(s, S_READY);
}

/* Reads what the input holds of the message, up to 8 chunks at a time.
 * Returns 1 when the message ended (or the session did), 0 when the input
 * is used up and more must come, -1 when input is left: call again. */
static int
read_data(struct session *s)
{
	struct evbuffer *in = bufferevent_get_input(s->bev);
	struct evbuffer_iovec v[8];
	int n = evbuffer_peek(in, -1, NULL, v, 8);
	size_t total = 0;

	if (n > 8)
		n = 8;
	for (int i = 0; i < n; i++) {
		size_t used;
		enum smtp_data_status st =
		    smtp_data_feed(&s->data, v[i].iov_base, v[i].iov_len, &used, emit_data, s);

		total += used;
		switch (st) {
		case SMTP_DATA_MORE:
			continue;
		case SMTP_DATA_END:
			evbuffer_drain(in, total);
			end_data(s);
			return 1;
		case SMTP_DATA_BARE_CR:
		case SMTP_DATA_BARE_LF:
			evbuffer_drain(in, evbuffer_get_length(in));
			tx_reset(s);
			metrics_inc(METRIC_MSG_REFUSED);
			refuse_bare(s, st == SMTP_DATA_BARE_CR ? "<CR>" : "<LF>");
			return 1;
		}
	}
	evbuffer_drain(in, total);
	return evbuffer_get_length(in) > 0 ? -1 : 0;
}

/* Handles everything that is complete in the input, stopping when a
 * commit or a TLS handshake must finish first. */
static void
process(struct session *s)
{
	const struct conf *c = s->srv->conf;

	while (!s->closing) {
		int r;

		if (s->state == S_COMMIT || s->state == S_TLS || s->state == S_GREETING ||
		    s->rcpt_ticket != 0)
			break;
		if (s->state == S_DATA) {
			while ((r = read_data(s)) < 0)
				;
			if (r == 0)
				break;
			continue;
		}
		if (s->srv->stopping && !in_transaction(s)) {
			reply(s, "421 4.3.2 %s Service shutting down", c->hostname);
			session_close(s);
			break;
		}
		if (!read_command(s))
			break;
		if (!s->closing && s->bad > (unsigned)c->max_bad_commands) {
			log_warnx("%s: too many errors after %s", s->client,
			          cmd_log_names[s->last_cmd]);
			reply(s, "421 4.7.0 %s Error: too many errors", c->hostname);
			session_close(s);
		}
		if (!s->closing && evbuffer_get_length(bufferevent_get_output(s->bev)) > OUT_HIGH) {
			if (flush_out(s) < 0)
				return;
			if (evbuffer_get_length(bufferevent_get_output(s->bev)) > OUT_HIGH) {
				/* The client sends commands but does not read
				 * the replies: read no more until it does. */
				s->throttled = 1;
				bufferevent_disable(s->bev, EV_READ);
				bufferevent_enable(s->bev, EV_WRITE);
				break;
			}
		}
	}
	if (!s->closing)
		flush_out(s);
}

static void
session_read(struct bufferevent *bev, void *arg)
{
	struct session *s = arg;

	if (s->state == S_GREETING) {
		log_warnx("%s: talking before the greeting", s->client);
		reply(s, "554 5.5.1 %s Error: talking before the greeting is not allowed",
		      s->srv->conf->hostname);
		session_close(s);
		return;
	}
	process(s);
}

static void
session_write(struct bufferevent *bev, void *arg)
{
	struct session *s = arg;

	if (s->closing) {
		if (evbuffer_get_length(bufferevent_get_output(bev)) != 0)
			return;
		if (s->tls && !s->tls_shut) {
			/* The last reply is through the TLS layer: end the TLS
			 * session properly (close_notify, RFC 8446 §6.1) so that
			 * the client can tell our close from a truncation. */
			s->tls_shut = 1;
			SSL_shutdown(bufferevent_openssl_get_ssl(bev));
		}
		if (flushed(s)) {
			session_reap(s);
		} else if (s->flush_ev == NULL &&
		           (s->flush_ev = evtimer_new(s->srv->d->base, flush_cb, s)) != NULL) {
			flush_cb(-1, 0, s);
		}
		return;
	}
	if (s->direct && evbuffer_get_length(bufferevent_get_output(bev)) == 0)
		bufferevent_disable(bev, EV_WRITE);
	if (s->throttled && evbuffer_get_length(bufferevent_get_output(bev)) < OUT_LOW) {
		s->throttled = 0;
		bufferevent_enable(bev, EV_READ);
		process(s);
	}
}

static void
session_event(struct bufferevent *bev, short what, void *arg)
{
	struct session *s = arg;

	if (what & BEV_EVENT_CONNECTED) {
		/* The TLS handshake finished: start over as after the
		 * greeting (RFC 3207 §4.2). */
		SSL *ssl = bufferevent_openssl_get_ssl(bev);
		tls_describe(ssl, s->tls_desc, sizeof(s->tls_desc));
		s->tls = 1;
		s->esmtp = 0;
		s->helo[0] = '\0';
		log_info("%s: TLS established: %s", s->client, s->tls_desc);
		enter_state(s, S_HELO);
		process(s);
		return;
	}
	if (what & BEV_EVENT_TIMEOUT) {
		if (s->closing) {
			session_drop(s, NULL);
			return;
		}
		log_info("timeout after %s from %s", cmd_log_names[s->last_cmd], s->client);
		bufferevent_disable(bev, EV_READ);
		if (s->state != S_COMMIT)
			tx_reset(s); /* else the spool writer still uses it */
		reply(s, "421 4.4.2 %s Error: timeout exceeded", s->srv->conf->hostname);
		session_close(s);
		return;
	}
	if (what & BEV_EVENT_ERROR) {
		unsigned long e = bufferevent_get_openssl_error(bev);
		if (s->state == S_TLS || e != 0) {
			char buf[256] = "";
			if (e)
				ERR_error_string_n(e, buf, sizeof(buf));
			log_info("%s: TLS failed%s%s", s->client, buf[0] ? ": " : "", buf);
		}
	}
	/* EOF or error: the client is gone. */
	session_drop(s, s->closing ? NULL : "lost connection");
}

/* --- the commit result --- */

static void
commit_done(struct spool_job *job, void *arg)
{
	struct session *s = arg;
	const struct conf *c = s->srv->conf;

	enter_state(s, S_READY); /* no longer pinned by the commit */
	if (job->result == 0) {
		/* Stored: counted even when the client left before its 250,
		 * since the message will go out all the same. */
		metrics_inc(METRIC_MSG_ACCEPTED);
		log_info("%s: from=<%s>, size=%zu, nrcpt=%zu (queue active)", s->qid, s->mail_from,
		         job->msg.len, s->nrcpt);
		for (size_t i = 0; i < s->nrcpt; i++)
			log_info("%s: to=<%s>, list_id=%lld, role=%s%s%s, status=queued", s->qid,
			         s->rcpts[i].addr, (long long)s->rcpts[i].list_id,
			         listaddr_role_name(s->rcpts[i].role),
			         s->rcpts[i].ext ? ", ext=" : "",
			         s->rcpts[i].ext ? s->rcpts[i].ext : "");
		if (!s->closing)
			reply(s, "250 2.0.0 Ok: queued as %s", s->qid);
	} else {
		log_warnx("%s: cannot store the message: %s", s->qid, job->err);
		metrics_inc(METRIC_MSG_REFUSED);
		if (!s->closing && spool_writer_broken(s->srv->d->spool)) {
			reject(s, NULL,
			       "421 4.3.0 %s Error: cannot store mail now; try again later",
			       c->hostname);
			session_close(s);
		} else if (!s->closing) {
			if (job->status == DB_BUSY || job->status == DB_FULL)
				reject(s, NULL, "452 4.3.1 Insufficient system storage");
			else
				reject(s, NULL, "451 4.3.0 Local error in processing");
		}
	}
	tx_reset(s);
	if (s->closing) {
		session_reap(s);
		return;
	}
	if (s->srv->stopping) {
		reply(s, "421 4.3.2 %s Service shutting down", c->hostname);
		session_close(s);
		return;
	}
	process(s);
}

/* --- deadlines --- */

static void
deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	struct session *s = arg;
	const char *which = s->state == S_DATA ? "DATA" : "session";

	if (s->closing)
		return;
	if (s->state == S_COMMIT) {
		/* The message is being stored: its answer comes first. */
		struct timeval tv = {1, 0};
		evtimer_add(s->deadline_ev, &tv);
		return;
	}
	log_info("%s deadline exceeded after %s from %s", which, cmd_log_names[s->last_cmd],
	         s->client);
	bufferevent_disable(s->bev, EV_READ);
	tx_reset(s);
	if (s->state == S_DATA)
		metrics_inc(METRIC_MSG_REFUSED);
	if (s->state == S_TLS) {
		session_drop(s, NULL);
		return;
	}
	reply(s, "421 4.4.2 %s Error: %s time limit exceeded", s->srv->conf->hostname, which);
	session_close(s);
}

/* --- RCPT waiting for the lists table --- */

static void
resume_rcpt(struct session *s)
{
	unsigned fails_before = s->fails;

	proceed_rcpt(s, s->rcpt_args);
	if (s->rcpt_ticket != 0)
		return; /* still waiting */
	free(s->rcpt_args);
	s->rcpt_args = NULL;
	if (s->fails == fails_before)
		s->n_ok[CMD_RCPT]++;
	process(s);
}

/* The lists table was refreshed (or is late): answer the waiting RCPTs. */
static void
lists_refreshed(void *arg)
{
	struct smtp_in *srv = arg;
	struct session *s, *next;

	for (s = srv->sessions; s; s = next) {
		next = s->next;
		if (s->rcpt_ticket != 0 && !s->closing && !s->reaped)
			resume_rcpt(s);
	}
}

/* --- accepting --- */

static void
send_greeting(struct session *s)
{
	reply(s, "220 %s ESMTP fanmaild", s->srv->conf->hostname);
	enter_state(s, S_HELO);
	flush_out(s);
}

static void
greet_cb(evutil_socket_t fd, short what, void *arg)
{
	struct session *s = arg;

	if (!s->closing && s->state == S_GREETING)
		send_greeting(s);
}

static void
accept_cb(struct evconnlistener *lis, evutil_socket_t fd, struct sockaddr *sa, int salen, void *arg)
{
	struct smtp_in *srv = arg;
	const struct conf *c = srv->conf;
	struct session *s = calloc(1, sizeof(*s));
	int port = 0, on = 1;
	char peek;

	if (s == NULL) {
		close(fd);
		return;
	}
	if (sa->sa_family == AF_INET6) {
		struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)sa;
		inet_ntop(AF_INET6, &a6->sin6_addr, s->ip, sizeof(s->ip));
		port = ntohs(a6->sin6_port);
	} else {
		struct sockaddr_in *a4 = (struct sockaddr_in *)sa;
		inet_ntop(AF_INET, &a4->sin_addr, s->ip, sizeof(s->ip));
		port = ntohs(a4->sin_port);
	}
	snprintf(s->client, sizeof(s->client), "unknown[%s]:%d", s->ip, port);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
	s->srv = srv;
	s->direct = 1;
	s->last_cmd = CMD_NONE;
	s->bev = bufferevent_socket_new(srv->d->base, fd, BEV_OPT_CLOSE_ON_FREE);
	s->deadline_ev = evtimer_new(srv->d->base, deadline_cb, s);
	if (s->bev == NULL || s->deadline_ev == NULL) {
		if (s->bev != NULL)
			bufferevent_free(s->bev);
		else
			close(fd);
		if (s->deadline_ev != NULL)
			event_free(s->deadline_ev);
		free(s);
		return;
	}
	clock_gettime(CLOCK_MONOTONIC, &s->t_start);
	arm_deadline(s);
	s->next = srv->sessions;
	if (s->next)
		s->next->prev = s;
	srv->sessions = s;
	srv->nsessions++;
	metrics_inc(METRIC_SMTP_SESSIONS);
	metrics_inc(METRIC_SMTP_ACTIVE);
	s->ipc = ip_get(srv, s->ip);
	if (s->ipc)
		s->ipc->count++;
	bufferevent_setcb(s->bev, session_read, session_write, session_event, s);
	/* Enabled by default; flush_out() writes, and enables it only when
	 * the kernel does not take a reply at once. */
	bufferevent_disable(s->bev, EV_WRITE);
	bufferevent_setwatermark(s->bev, EV_READ, 0, IN_HIGH);
	bufferevent_setwatermark(s->bev, EV_WRITE, OUT_LOW, 0);
	log_info("connect from %s", s->client);
	if (srv->nsessions > (size_t)c->max_sessions) {
		log_warnx("%s: too many sessions (%zu)", s->client, srv->nsessions - 1);
		reply(s, "421 4.7.0 %s Error: too many sessions; try again later", c->hostname);
		session_close(s);
		return;
	}
	if (s->ipc == NULL || s->ipc->count > c->max_sessions_per_ip) {
		log_warnx("%s: too many sessions from %s", s->client, s->ip);
		reply(s, "421 4.7.0 %s Error: too many sessions from %s; try again later",
		      c->hostname, s->ip);
		session_close(s);
		return;
	}
	/* A client whose first words are already here spoke before the
	 * greeting. */
	if (recv(fd, &peek, 1, MSG_PEEK | MSG_DONTWAIT) == 1) {
		enter_state(s, S_GREETING);
		session_read(s->bev, s);
		return;
	}
	enter_state(s, S_GREETING);
	bufferevent_enable(s->bev, EV_READ);
	if (c->greeting_delay > 0) {
		struct timeval tv = {(time_t)c->greeting_delay, 0};
		s->greet_ev = evtimer_new(srv->d->base, greet_cb, s);
		if (s->greet_ev != NULL && evtimer_add(s->greet_ev, &tv) == 0)
			return;
	}
	send_greeting(s);
}

static void
accept_error(struct evconnlistener *lis, void *arg)
{
	log_warn("accept");
}

struct smtp_in *
smtp_in_start(struct daemon *d, char *err, size_t errlen)
{
	struct smtp_in *srv = calloc(1, sizeof(*srv));

	if (srv == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	srv->d = d;
	srv->conf = d->conf;
	srv->lists = rcpt_lists_new(d->base, d->conf->database, d->conf->default_list_domain,
	                            lists_refreshed, srv, err, errlen);
	if (srv->lists == NULL) {
		smtp_in_free(srv);
		return NULL;
	}
	srv->reap_ev = event_new(d->base, -1, 0, reap_cb, srv);
	srv->lis = calloc(d->nlisten, sizeof(*srv->lis));
	if (srv->reap_ev == NULL || srv->lis == NULL) {
		snprintf(err, errlen, "out of memory");
		smtp_in_free(srv);
		return NULL;
	}
	for (size_t i = 0; i < d->nlisten; i++) {
		srv->lis[i] = evconnlistener_new(d->base, accept_cb, srv, LEV_OPT_CLOSE_ON_FREE, -1,
		                                 d->listen_fds[i]);
		if (srv->lis[i] == NULL) {
			snprintf(err, errlen, "cannot listen: %s", strerror(errno));
			smtp_in_free(srv);
			return NULL;
		}
		d->listen_fds[i] = -1; /* the listener owns it now */
		evconnlistener_set_error_cb(srv->lis[i], accept_error);
		srv->nlis++;
	}
	return srv;
}

void
smtp_in_shutdown(struct smtp_in *srv)
{
	struct session *s, *next;

	srv->stopping = 1;
	for (size_t i = 0; i < srv->nlis; i++)
		evconnlistener_free(srv->lis[i]);
	srv->nlis = 0;
	for (s = srv->sessions; s; s = next) {
		next = s->next;
		if (s->closing || in_transaction(s))
			continue;
		reply(s, "421 4.3.2 %s Service shutting down", srv->conf->hostname);
		session_close(s);
	}
}

size_t
smtp_in_sessions(const struct smtp_in *srv)
{
	size_t n = 0;

	for (const struct session *s = srv->sessions; s; s = s->next)
		if (!s->reaped)
			n++;
	return n;
}

void
smtp_in_close_all(struct smtp_in *srv)
{
	for (struct session *s = srv->sessions; s; s = s->next) {
		if (s->reaped)
			continue;
		if (!s->closing)
			log_info("%s: closing at the shutdown deadline", s->client);
		session_drop(s, NULL);
	}
}

void
smtp_in_free(struct smtp_in *srv)
{
	if (srv == NULL)
		return;
	for (size_t i = 0; i < srv->nlis; i++)
		evconnlistener_free(srv->lis[i]);
	free(srv->lis);
	while (srv->sessions != NULL)
		session_free(srv->sessions);
	for (size_t i = 0; i < IP_BUCKETS; i++)
		while (srv->ips[i]) {
			struct ipcount *e = srv->ips[i];
			srv->ips[i] = e->next;
			free(e);
		}
	if (srv->reap_ev)
		event_free(srv->reap_ev);
	rcpt_lists_free(srv->lists);
	free(srv);
}
