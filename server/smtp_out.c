/*
 * smtp_out.c - the SMTP client (see smtp_out.h).
 *
 * One explicit state machine per connection, driven by whole replies.
 * In a transaction, the replies expected are numbered: 0 for MAIL, 1..n for
 * the RCPTs sent, n+1 for DATA, n+2 for the end of data; with PIPELINING
 * the commands up to DATA go out in one write, and replies are matched to
 * them in order (RFC 2920).
 */
#include "server/smtp_out.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "mail/utf8.h"

#define REPLY_LINE_MAX 4096

enum state {
	S_CONNECT,
	S_GREETING,
	S_EHLO,
	S_HELO,
	S_STARTTLS,
	S_TLS,
	S_AUTH,
	S_READY,
	S_TXN,
	S_RSET,
	S_QUIT,
	S_DEAD,
};

struct smtp_sess {
	struct event_base *base;
	const struct smtp_out_cfg *cfg;
	struct smtp_target *targets;
	int ntarget, cur;
	int no_tls; /* the handshake failed here: go on in plain text */
	struct bufferevent *bev;
	enum state st;
	int ext;
	long long size_limit;
	int tls_on;
	int ehlo_lines;
	char peer[320];
	char tls[192];
	/* the reply being read */
	char reply[512];
	size_t rlen;
	int rcode; /* the code of the reply's first line */
	/* opening */
	smtp_open_cb ocb;
	void *oarg;
	int last_code;
	char last_why[600];
	/* the transaction */
	struct smtp_txn *t;
	smtp_txn_cb tcb;
	void *targ;
	int *sent; /* rcpt index of each RCPT sent */
	int nsent;
	int next_rcpt; /* without pipelining: the next RCPT to send */
	int expect;
	int accepted;
	int mail_failed;
	int discard_end; /* "." sent after a 354 that had no recipient */
	int txn_ok;
	int uses;
	/* idle */
	void (*icb)(void *arg, struct smtp_sess *s);
	void *iarg;
	struct event *idle_timer;
	int in_cb;
	int freeing;
};

static void connect_next(struct smtp_sess *s);
static void on_read(struct bufferevent *bev, void *arg);
static void on_event(struct bufferevent *bev, short what, void *arg);

/* --- pure helpers --- */

char *
smtp_out_prepare_body(const unsigned char *in, size_t len, size_t *outlen)
{
	/* Worst case: every byte a line of its own, dot-doubled. */
	char *out = malloc(len * 3 + 8), *o = out;
	int bol = 1;

	if (out == NULL)
		return NULL;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = in[i];
		if (c == '\r' || c == '\n') {
			*o++ = '\r';
			*o++ = '\n';
			if (c == '\r' && i + 1 < len && in[i + 1] == '\n')
				i++;
			bol = 1;
			continue;
		}
		if (bol && c == '.')
			*o++ = '.';
		*o++ = (char)c;
		bol = 0;
	}
	if (!bol) {
		*o++ = '\r';
		*o++ = '\n';
	}
	memcpy(o, ".\r\n", 3);
	o += 3;
	*outlen = (size_t)(o - out);
	return out;
}

int
smtp_out_parse_line(const char *line, size_t len, int *code, int *last)
{
	if (len < 3 || line[0] < '2' || line[0] > '5' || line[1] < '0' || line[1] > '9' ||
	    line[2] < '0' || line[2] > '9')
		return -1;
	if (len > 3 && line[3] != ' ' && line[3] != '-')
		return -1;
	*code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
	*last = len == 3 || line[3] == ' ';
	return 0;
}

int
smtp_out_parse_ehlo(const char *text, long long *size_limit)
{
	size_t n = strcspn(text, " =");

	if (n == 10 && strncasecmp(text, "PIPELINING", n) == 0)
		return SMTP_EXT_PIPELINING;
	if (n == 8 && strncasecmp(text, "SMTPUTF8", n) == 0)
		return SMTP_EXT_SMTPUTF8;
	if (n == 8 && strncasecmp(text, "STARTTLS", n) == 0)
		return SMTP_EXT_STARTTLS;
	if (n == 8 && strncasecmp(text, "8BITMIME", n) == 0)
		return SMTP_EXT_8BITMIME;
	if (n == 4 && strncasecmp(text, "SIZE", n) == 0) {
		if (text[n] == ' ')
			*size_limit = strtoll(text + n + 1, NULL, 10);
		return SMTP_EXT_SIZE;
	}
	if (n == 4 && strncasecmp(text, "AUTH", n) == 0) {
		for (const char *p = text + n; *p;) {
			p += strspn(p, " =");
			size_t m = strcspn(p, " ");
			if (m == 5 && strncasecmp(p, "PLAIN", 5) == 0)
				return SMTP_EXT_AUTH_PLAIN;
			p += m;
		}
	}
	return 0;
}

/* --- session plumbing --- */

const char *
smtp_out_peer(const struct smtp_sess *s)
{
	return s->peer;
}

const char *
smtp_out_tls(const struct smtp_sess *s)
{
	return s->tls_on ? s->tls : NULL;
}

int
smtp_out_ext(const struct smtp_sess *s)
{
	return s->ext;
}

int
smtp_out_uses(const struct smtp_sess *s)
{
	return s->uses;
}

const struct sockaddr_storage *
smtp_out_addr(const struct smtp_sess *s)
{
	return &s->targets[s->cur].ss;
}

static void
sess_free(struct smtp_sess *s)
{
	if (s->bev != NULL)
		bufferevent_free(s->bev);
	if (s->idle_timer != NULL)
		event_free(s->idle_timer);
	for (int i = 0; i < s->ntarget; i++)
		free((char *)s->targets[i].host);
	free(s->targets);
	free(s->sent);
	free(s);
}

/* Frees s when no callback of ours is still running on it. */
static void
sess_release(struct smtp_sess *s)
{
	s->freeing = 1;
	if (s->in_cb == 0)
		sess_free(s);
}

static void
set_peer(struct smtp_sess *s)
{
	struct smtp_target *t = &s->targets[s->cur];
	char ip[INET6_ADDRSTRLEN] = "?";
	int port = 0;

	if (t->ss.ss_family == AF_INET) {
		struct sockaddr_in *a = (struct sockaddr_in *)&t->ss;
		inet_ntop(AF_INET, &a->sin_addr, ip, sizeof(ip));
		port = ntohs(a->sin_port);
	} else if (t->ss.ss_family == AF_INET6) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&t->ss;
		inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof(ip));
		port = ntohs(a->sin6_port);
	}
	snprintf(s->peer, sizeof(s->peer), "%s[%s]:%d", t->host, ip, port);
}

static void sendf(struct smtp_sess *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
sendf(struct smtp_sess *s, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	evbuffer_add_vprintf(bufferevent_get_output(s->bev), fmt, ap);
	va_end(ap);
}

static void
set_timeouts(struct smtp_sess *s, int read_s, int write_s)
{
	struct timeval r = {read_s, 0}, w = {write_s, 0};

	bufferevent_set_timeouts(s->bev, read_s > 0 ? &r : NULL, write_s > 0 ? &w : NULL);
}

/* This address is done with: remember why, and try the next one. */
static void target_fail(struct smtp_sess *s, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
target_fail(struct smtp_sess *s, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(s->last_why, sizeof(s->last_why), fmt, ap);
	va_end(ap);
	s->last_code = code;
	if (s->bev != NULL) {
		bufferevent_free(s->bev);
		s->bev = NULL;
	}
	s->cur++;
	s->no_tls = 0;
	connect_next(s);
}

static void
connect_next(struct smtp_sess *s)
{
	struct smtp_target *t;

	if (s->cur >= s->ntarget) {
		s->st = S_DEAD;
		s->ocb(s->oarg, NULL, s->last_code, s->last_why);
		sess_release(s);
		return;
	}
	t = &s->targets[s->cur];
	set_peer(s);
	s->st = S_CONNECT;
	s->ext = 0;
	s->size_limit = 0;
	s->tls_on = 0;
	s->rlen = 0;
	s->bev = bufferevent_socket_new(s->base, -1, BEV_OPT_CLOSE_ON_FREE);
	if (s->bev == NULL) {
		target_fail(s, 0, "connect to %s: out of memory", s->peer);
		return;
	}
	bufferevent_setcb(s->bev, on_read, NULL, on_event, s);
	set_timeouts(s, s->cfg->reply_timeout, s->cfg->connect_timeout);
	bufferevent_enable(s->bev, EV_READ | EV_WRITE);
	if (bufferevent_socket_connect(s->bev, (struct sockaddr *)&t->ss, (int)t->len) < 0)
		target_fail(s, 0, "connect to %s: %s", s->peer, strerror(errno));
}

void
smtp_out_open(struct event_base *base, const struct smtp_out_cfg *cfg,
              const struct smtp_target *targets, int n, smtp_open_cb cb, void *arg)
{
	struct smtp_sess *s = calloc(1, sizeof(*s));

	if (s == NULL || (s->targets = calloc((size_t)n + 1, sizeof(*targets))) == NULL) {
		free(s);
		cb(arg, NULL, 0, "out of memory");
		return;
	}
	s->base = base;
	s->cfg = cfg;
	s->ocb = cb;
	s->oarg = arg;
	for (int i = 0; i < n; i++) {
		s->targets[i] = targets[i];
		s->targets[i].host = strdup(targets[i].host ? targets[i].host : "?");
	}
	s->ntarget = n;
	snprintf(s->last_why, sizeof(s->last_why), "no address to connect to");
	s->in_cb++; /* the first callback must come after we return */
	connect_next(s);
	s->in_cb--;
	if (s->freeing)
		sess_free(s);
}

/* --- opening: greeting, EHLO, STARTTLS, AUTH --- */

static void
ready(struct smtp_sess *s)
{
	s->st = S_READY;
	set_timeouts(s, 0, 0);
	s->ocb(s->oarg, s, 0, NULL);
}

static void
start_tls(struct smtp_sess *s)
{
	SSL *ssl = SSL_new(s->cfg->ssl);
	struct bufferevent *f;

	if (ssl == NULL) {
		s->no_tls = 1;
		target_fail(s, 0, "TLS setup for %s failed", s->peer);
		return;
	}
	SSL_set_tlsext_host_name(ssl, s->targets[s->cur].host);
	f = bufferevent_openssl_filter_new(s->base, s->bev, ssl, BUFFEREVENT_SSL_CONNECTING,
	                                   BEV_OPT_CLOSE_ON_FREE);
	if (f == NULL) {
		SSL_free(ssl);
		target_fail(s, 0, "TLS setup for %s failed", s->peer);
		return;
	}
	/* Anything the server sent before the handshake is dropped. */
	evbuffer_drain(bufferevent_get_input(s->bev),
	               evbuffer_get_length(bufferevent_get_input(s->bev)));
	s->bev = f;
	s->st = S_TLS;
	bufferevent_setcb(f, on_read, NULL, on_event, s);
	set_timeouts(s, s->cfg->reply_timeout, s->cfg->reply_timeout);
	bufferevent_enable(f, EV_READ | EV_WRITE);
}

static void
after_ehlo(struct smtp_sess *s)
{
	if (!s->tls_on && !s->no_tls && s->cfg->ssl != NULL && (s->ext & SMTP_EXT_STARTTLS)) {
		sendf(s, "STARTTLS\r\n");
		s->st = S_STARTTLS;
		return;
	}
	if (s->cfg->auth_user != NULL && *s->cfg->auth_user) {
		char plain[1024], b64[1400];
		int n, m;
		if (!s->tls_on) {
			target_fail(s, 0,
			            "%s offers no TLS; not sending the relay password in clear",
			            s->peer);
			return;
		}
		if (!(s->ext & SMTP_EXT_AUTH_PLAIN)) {
			target_fail(s, 0, "%s offers no AUTH PLAIN", s->peer);
			return;
		}
		n = snprintf(plain, sizeof(plain), "%c%s%c%s", 0, s->cfg->auth_user, 0,
		             s->cfg->auth_pass ? s->cfg->auth_pass : "");
		if (n < 0 || n >= (int)sizeof(plain)) {
			target_fail(s, 0, "relay credentials too long");
			return;
		}
		m = EVP_EncodeBlock((unsigned char *)b64, (unsigned char *)plain, n);
		b64[m] = '\0';
		sendf(s, "AUTH PLAIN %s\r\n", b64);
		OPENSSL_cleanse(plain, sizeof(plain));
		s->st = S_AUTH;
		return;
	}
	ready(s);
}

/* --- transactions --- */

static void
set_result(struct smtp_result *r, int code, const char *text, const char *ctx)
{
	r->code = code;
	if (ctx != NULL)
		snprintf(r->text, sizeof(r->text), "%s (in reply to %s)", text, ctx);
	else
		snprintf(r->text, sizeof(r->text), "%s", text);
}

static void
txn_done(struct smtp_sess *s, int ok)
{
	struct smtp_txn *t = s->t;

	s->t = NULL;
	s->uses++;
	if (ok) {
		s->st = S_READY;
		set_timeouts(s, 0, 0);
	}
	s->tcb(s->targ, s, t, ok);
}

/* The connection broke or timed out during the transaction. */
static void
txn_lost(struct smtp_sess *s, const char *what)
{
	struct smtp_txn *t = s->t;
	char text[512];

	snprintf(text, sizeof(text), "lost connection with %s while %s", s->peer, what);
	for (int k = 0; k < s->nsent; k++) {
		struct smtp_result *r = &t->results[s->sent[k]];
		if (r->code < 0 || (r->code >= 200 && r->code < 300))
			set_result(r, 0, text, NULL);
	}
	s->st = S_DEAD;
	txn_done(s, 0);
}

static void
send_rcpt(struct smtp_sess *s, int k)
{
	sendf(s, "RCPT TO:<%s>\r\n", s->t->rcpts[s->sent[k]]);
}

static void
send_body(struct smtp_sess *s)
{
	struct evbuffer *out = bufferevent_get_output(s->bev);

	/* The prepared body is shared by every transaction of the message:
	 * referenced, not copied. The caller keeps it until the callback. */
	evbuffer_add_reference(out, s->t->body, s->t->body_len, NULL, NULL);
	set_timeouts(s, s->cfg->reply_timeout * 2, s->cfg->reply_timeout * 2);
}

static void
txn_reply(struct smtp_sess *s, int code, const char *text)
{
	struct smtp_txn *t = s->t;
	int pipelining = s->ext & SMTP_EXT_PIPELINING;
	int k;

	if (code == 421)
		s->txn_ok = 0;
	if (s->expect == 0) { /* MAIL */
		s->expect++;
		if (code / 100 != 2) {
			s->mail_failed = 1;
			for (k = 0; k < s->nsent; k++)
				set_result(&t->results[s->sent[k]], code, text,
				           "MAIL FROM command");
			if (!pipelining || code == 421)
				txn_done(s, s->txn_ok);
			return;
		}
		if (!pipelining)
			send_rcpt(s, 0);
		return;
	}
	if (s->expect <= s->nsent) { /* RCPT */
		k = s->expect - 1;
		s->expect++;
		if (!s->mail_failed) {
			set_result(&t->results[s->sent[k]], code, text,
			           code / 100 == 2 ? NULL : "RCPT TO command");
			/* RFC 5321 4.5.3.1.10: 452 after some recipients were
			 * taken means "no more in this transaction", not a
			 * failure of this recipient. */
			t->results[s->sent[k]].again = code == 452 && s->accepted > 0;
			if (code / 100 == 2)
				s->accepted++;
		}
		if (!pipelining) {
			if (k + 1 < s->nsent && code != 421) {
				send_rcpt(s, k + 1);
			} else if (s->accepted > 0 && code != 421) {
				sendf(s, "DATA\r\n");
			} else {
				if (code != 421) {
					sendf(s, "RSET\r\n");
					s->st = S_RSET;
				} else {
					txn_done(s, 0);
				}
			}
		}
		return;
	}
	if (s->expect == s->nsent + 1) { /* DATA */
		s->expect++;
		if (code == 354) {
			if (s->accepted > 0 && !s->mail_failed) {
				send_body(s);
			} else {
				s->discard_end = 1;
				sendf(s, ".\r\n");
			}
			return;
		}
		if (!s->mail_failed)
			for (k = 0; k < s->nsent; k++) {
				struct smtp_result *r = &t->results[s->sent[k]];
				if (r->code / 100 == 2)
					set_result(r, code, text, "DATA command");
			}
		if (code == 421) {
			txn_done(s, 0);
			return;
		}
		sendf(s, "RSET\r\n");
		s->st = S_RSET;
		return;
	}
	/* the end of data */
	if (!s->discard_end) {
		for (k = 0; k < s->nsent; k++) {
			struct smtp_result *r = &t->results[s->sent[k]];
			if (r->code / 100 == 2)
				set_result(r, code, text,
				           code / 100 == 2 ? NULL : "end of DATA command");
		}
		txn_done(s, s->txn_ok);
		return;
	}
	sendf(s, "RSET\r\n");
	s->st = S_RSET;
}

static void
txn_async_done(evutil_socket_t fd, short what, void *arg)
{
	struct smtp_sess *s = arg;

	s->in_cb++;
	txn_done(s, s->txn_ok);
	s->in_cb--;
	if (s->freeing && s->in_cb == 0)
		sess_free(s);
}

void
smtp_out_send(struct smtp_sess *s, struct smtp_txn *t, smtp_txn_cb cb, void *arg)
{
	int utf8 = !utf8_is_ascii(t->from), k;
	struct timeval zero = {0, 0};
	char params[96] = "";

	int dead = s->st == S_DEAD;

	if (s->idle_timer != NULL)
		evtimer_del(s->idle_timer);
	s->icb = NULL;
	s->t = t;
	s->tcb = cb;
	s->targ = arg;
	s->nsent = s->accepted = s->mail_failed = s->discard_end = s->expect = 0;
	s->txn_ok = 1;
	free(s->sent);
	s->sent = calloc((size_t)t->nrcpt + 1, sizeof(int));
	s->st = S_TXN;
	for (int i = 0; i < t->nrcpt; i++) {
		t->results[i].code = -1;
		t->results[i].again = 0;
		t->results[i].ours = 0;
	}
	if (dead) {
		/* The server closed the connection while the copy was being
		 * prepared (signed on another thread): nothing was tried. */
		for (int i = 0; i < t->nrcpt; i++)
			set_result(&t->results[i], 0, "connection closed before the transaction",
			           NULL);
		s->txn_ok = 0;
		s->st = S_DEAD;
		event_base_once(s->base, -1, EV_TIMEOUT, txn_async_done, s, &zero);
		return;
	}
	if (s->sent == NULL) {
		for (int i = 0; i < t->nrcpt; i++) {
			set_result(&t->results[i], 0, "out of memory", NULL);
			t->results[i].ours = 1;
		}
		event_base_once(s->base, -1, EV_TIMEOUT, txn_async_done, s, &zero);
		return;
	}
	if (t->refuse_code != 0) {
		for (int i = 0; i < t->nrcpt; i++) {
			set_result(&t->results[i], t->refuse_code, t->refuse, NULL);
			t->results[i].ours = 1;
		}
		event_base_once(s->base, -1, EV_TIMEOUT, txn_async_done, s, &zero);
		return;
	}
	if (s->size_limit > 0 && (long long)t->size > s->size_limit) {
		char why[512];
		snprintf(why, sizeof(why),
		         "552 5.3.4 message size %zu exceeds size limit %lld of server %s", t->size,
		         s->size_limit, s->peer);
		for (int i = 0; i < t->nrcpt; i++) {
			set_result(&t->results[i], 552, why, NULL);
			t->results[i].ours = 1;
		}
		event_base_once(s->base, -1, EV_TIMEOUT, txn_async_done, s, &zero);
		return;
	}
	for (int i = 0; i < t->nrcpt; i++) {
		int u = !utf8_is_ascii(t->rcpts[i]);
		if ((u || !utf8_is_ascii(t->from)) && !(s->ext & SMTP_EXT_SMTPUTF8)) {
			/* RFC 6531 3.4: without SMTPUTF8 at the server the
			 * message cannot go to this address. */
			set_result(&t->results[i], 553,
			           "553 5.6.7 the server does not support SMTPUTF8, which this "
			           "address needs",
			           NULL);
			t->results[i].ours = 1;
			continue;
		}
		utf8 |= u;
		s->sent[s->nsent++] = i;
	}
	if (s->nsent == 0) {
		event_base_once(s->base, -1, EV_TIMEOUT, txn_async_done, s, &zero);
		return;
	}
	k = 0;
	if (s->ext & SMTP_EXT_SIZE)
		k += snprintf(params + k, sizeof(params) - k, " SIZE=%zu", t->size);
	if (t->body_8bit && (s->ext & SMTP_EXT_8BITMIME))
		k += snprintf(params + k, sizeof(params) - k, " BODY=8BITMIME");
	if (utf8 || (t->smtputf8 && (s->ext & SMTP_EXT_SMTPUTF8)))
		snprintf(params + k, sizeof(params) - k, " SMTPUTF8");
	sendf(s, "MAIL FROM:<%s>%s\r\n", t->from, params);
	if (s->ext & SMTP_EXT_PIPELINING) {
		for (k = 0; k < s->nsent; k++)
			send_rcpt(s, k);
		sendf(s, "DATA\r\n");
	}
	set_timeouts(s, s->cfg->reply_timeout, s->cfg->reply_timeout);
}

/* --- replies --- */

static void
on_reply(struct smtp_sess *s, int code, const char *text)
{
	switch (s->st) {
	case S_GREETING:
		if (code != 220) {
			target_fail(s, code, "host %s refused to talk to me: %s", s->peer, text);
			return;
		}
		sendf(s, "EHLO %s\r\n", s->cfg->helo);
		s->st = S_EHLO;
		s->ehlo_lines = 0;
		s->ext = 0;
		return;
	case S_EHLO:
		if (code / 100 == 2) {
			after_ehlo(s);
		} else if (code >= 500 && code <= 504) {
			sendf(s, "HELO %s\r\n", s->cfg->helo);
			s->st = S_HELO;
		} else {
			target_fail(s, code, "host %s said: %s (in reply to EHLO command)", s->peer,
			            text);
		}
		return;
	case S_HELO:
		if (code / 100 == 2)
			after_ehlo(s);
		else
			target_fail(s, code, "host %s said: %s (in reply to HELO command)", s->peer,
			            text);
		return;
	case S_STARTTLS:
		if (code == 220) {
			start_tls(s);
		} else {
			s->no_tls = 1;
			after_ehlo(s);
		}
		return;
	case S_AUTH:
		if (code == 235)
			ready(s);
		else
			target_fail(s, code,
			            "SASL authentication failed; server %s said: %s (in reply to "
			            "AUTH command)",
			            s->peer, text);
		return;
	case S_TXN:
		txn_reply(s, code, text);
		return;
	case S_RSET:
		txn_done(s, s->txn_ok && code / 100 == 2);
		return;
	case S_QUIT:
		return;
	default:
		/* Unasked-for talk from an idle server: it is going away. */
		if (s->st == S_READY && s->icb != NULL) {
			s->st = S_DEAD;
			s->icb(s->iarg, s);
		}
		return;
	}
}

/* The server broke the protocol: the transaction (if any) is deferred as
 * if the connection had been lost, and the connection is dropped. */
static void
protocol_error(struct smtp_sess *s, const char *what)
{
	char why[160];

	snprintf(why, sizeof(why), "reading a reply (%s)", what);
	switch (s->st) {
	case S_TXN:
		txn_lost(s, why);
		break;
	case S_RSET:
		s->st = S_DEAD;
		txn_done(s, 0);
		break;
	case S_READY:
		s->st = S_DEAD;
		if (s->icb != NULL)
			s->icb(s->iarg, s);
		break;
	case S_QUIT:
	case S_DEAD:
		break;
	default:
		target_fail(s, 0, "host %s sent a bad reply (%s)", s->peer, what);
		break;
	}
}

static void
on_line(struct smtp_sess *s, const char *line, size_t len)
{
	int code, last;
	const char *text;
	size_t tl;

	if (smtp_out_parse_line(line, len, &code, &last) < 0) {
		protocol_error(s, "not an SMTP reply");
		return;
	}
	text = len > 4 ? line + 4 : "";
	if (s->rlen == 0) {
		s->rcode = code;
	} else if (code != s->rcode) {
		/* RFC 5321 4.2.1: every line of a reply has the same code. A
		 * reply that changes its mind ("250-ok" then "550 no") cannot
		 * be trusted either way: drop the connection, try later. */
		s->rlen = 0;
		protocol_error(s, "mismatched reply codes in a multi-line reply");
		return;
	}
	if (s->st == S_EHLO && s->ehlo_lines++ > 0)
		s->ext |= smtp_out_parse_ehlo(text, &s->size_limit);
	/* The reply as one line: "250 first line; next line". */
	tl = strlen(text);
	if (s->rlen == 0) {
		s->rlen =
		    (size_t)snprintf(s->reply, sizeof(s->reply), "%.3s %.*s", line, (int)tl, text);
	} else if (s->rlen < sizeof(s->reply) - 1) {
		s->rlen += (size_t)snprintf(s->reply + s->rlen, sizeof(s->reply) - s->rlen, " %.*s",
		                            (int)tl, text);
	}
	if (s->rlen >= sizeof(s->reply))
		s->rlen = sizeof(s->reply) - 1;
	if (!last)
		return;
	s->rlen = 0;
	on_reply(s, code, s->reply);
}

static void
on_read(struct bufferevent *bev, void *arg)
{
	struct smtp_sess *s = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	char *line;
	size_t len;

	s->in_cb++;
	while (!s->freeing && s->bev == bev && s->st != S_DEAD &&
	       (line = evbuffer_readln(in, &len, EVBUFFER_EOL_CRLF)) != NULL) {
		enum state before = s->st;
		on_line(s, line, len);
		free(line);
		/* A new bufferevent (TLS) starts with a fresh input. */
		if (before == S_STARTTLS && s->st == S_TLS)
			break;
	}
	if (!s->freeing && s->bev == bev && evbuffer_get_length(in) > REPLY_LINE_MAX) {
		if (s->st == S_TXN)
			txn_lost(s, "reading a reply (line too long)");
		else
			target_fail(s, 0, "host %s sent a reply line that is too long", s->peer);
	}
	s->in_cb--;
	if (s->freeing && s->in_cb == 0)
		sess_free(s);
}

static void
tls_info(struct smtp_sess *s)
{
	SSL *ssl = bufferevent_openssl_get_ssl(s->bev);
	int alg = 0, bits = 0;

	if (ssl == NULL)
		return;
	bits = SSL_get_cipher_bits(ssl, &alg);
	snprintf(s->tls, sizeof(s->tls), "%s with cipher %s (%d/%d bits)", SSL_get_version(ssl),
	         SSL_get_cipher_name(ssl), bits, alg);
}

static void
on_event(struct bufferevent *bev, short what, void *arg)
{
	struct smtp_sess *s = arg;
	const char *why;

	s->in_cb++;
	if (what & BEV_EVENT_CONNECTED) {
		if (s->st == S_CONNECT) {
			s->st = S_GREETING;
			set_timeouts(s, s->cfg->reply_timeout, s->cfg->reply_timeout);
		} else if (s->st == S_TLS) {
			s->tls_on = 1;
			tls_info(s);
			sendf(s, "EHLO %s\r\n", s->cfg->helo);
			s->st = S_EHLO;
			s->ehlo_lines = 0;
			s->ext = 0;
		}
		goto out;
	}
	why = (what & BEV_EVENT_TIMEOUT) ? "Connection timed out"
	      : (what & BEV_EVENT_EOF)   ? "Connection closed"
	      : errno                    ? strerror(errno)
	                                 : "Connection error";
	switch (s->st) {
	case S_CONNECT:
		target_fail(s, 0, "connect to %s: %s", s->peer,
		            (what & BEV_EVENT_TIMEOUT) ? "Connection timed out" : why);
		break;
	case S_TLS: {
		unsigned long e = ERR_get_error();
		char buf[256] = "";
		if (e)
			ERR_error_string_n(e, buf, sizeof(buf));
		ERR_clear_error();
		/* Opportunistic: try the same address again without TLS. */
		snprintf(s->last_why, sizeof(s->last_why),
		         "TLS handshake with %.300s failed: %.200s", s->peer, buf[0] ? buf : why);
		bufferevent_free(s->bev);
		s->bev = NULL;
		s->no_tls = 1; /* kept by connect_next(), reset by target_fail() */
		connect_next(s);
		break;
	}
	case S_TXN:
		txn_lost(s, s->expect > s->nsent + 1 ? "sending message body"
		                                     : "sending the envelope");
		break;
	case S_RSET:
		s->st = S_DEAD;
		txn_done(s, 0);
		break;
	case S_READY:
		s->st = S_DEAD;
		if (s->icb != NULL)
			s->icb(s->iarg, s);
		break;
	case S_QUIT:
	case S_DEAD:
		sess_release(s);
		break;
	default:
		target_fail(s, 0, "lost connection with %s while opening the session: %s", s->peer,
		            why);
		break;
	}
out:
	s->in_cb--;
	if (s->freeing && s->in_cb == 0)
		sess_free(s);
}

/* --- idle and close --- */

static void
on_idle_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct smtp_sess *s = arg;

	if (s->icb != NULL)
		s->icb(s->iarg, s);
}

void
smtp_out_idle(struct smtp_sess *s, int idle, void (*cb)(void *arg, struct smtp_sess *s), void *arg)
{
	struct timeval tv = {idle, 0};

	s->icb = cb;
	s->iarg = arg;
	if (s->idle_timer == NULL)
		s->idle_timer = evtimer_new(s->base, on_idle_timeout, s);
	if (s->idle_timer != NULL)
		evtimer_add(s->idle_timer, &tv);
}

static void
on_quit_written(struct bufferevent *bev, void *arg)
{
	struct smtp_sess *s = arg;

	sess_release(s);
}

void
smtp_out_close(struct smtp_sess *s)
{
	if (s->idle_timer != NULL)
		evtimer_del(s->idle_timer);
	s->icb = NULL;
	if (s->st == S_READY && s->bev != NULL) {
		s->st = S_QUIT;
		sendf(s, "QUIT\r\n");
		set_timeouts(s, 5, 5);
		bufferevent_setcb(s->bev, on_read, on_quit_written, on_event, s);
		return;
	}
	s->st = S_DEAD;
	sess_release(s);
}

void
smtp_out_abort(struct smtp_sess *s)
{
	if (s->idle_timer != NULL)
		evtimer_del(s->idle_timer);
	s->icb = NULL;
	if (s->bev != NULL) {
		/* bufferevent_free() closes the socket only when libevent
		 * finalizes it, later in the loop: the FIN goes out now. */
		evutil_socket_t fd = bufferevent_getfd(s->bev);
		if (fd >= 0)
			shutdown(fd, SHUT_RDWR);
		bufferevent_free(s->bev);
		s->bev = NULL;
	}
	s->st = S_DEAD;
	sess_release(s);
}

void
smtp_out_free(struct smtp_sess *s)
{
	sess_free(s);
}
