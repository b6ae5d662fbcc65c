/*
 * deliver.c - the outbound scheduler (see deliver.h).
 *
 * A scan lists the domains that have due rows (a page of names at a time,
 * as many as there is room for) and activates each: its exchangers are
 * looked up while its first page of due rows is read. Rows of one message
 * become batches of up to max_rcpt_per_transaction (1 for VERP), which go
 * out over pooled connections, at most domain_concurrency per domain and
 * delivery_max_connections in all. Each result goes to the writer thread;
 * a domain is scanned again only after the writer has committed all its
 * results, so that no row is ever sent twice by one daemon.
 *
 * Threads: the loop (everything here except the two workers), the reader
 * (db reads: domain lists, pages, message bodies) and the writer (results,
 * DSNs). They talk through job queues under a mutex, and an eventfd wakes
 * the loop for finished jobs. The message cache is shared under its own
 * mutex.
 */
#include "server/deliver.h"

#include "conf/conf.h"
#include "db/db.h"
#include "db/lists.h"
#include "db/queue.h"
#include "db/spool.h"
#include "lists/listaddr.h"
#include "lists/verp.h"
#include "mail/addr.h"
#include "mail/downgrade.h"
#include "mail/dsn.h"
#include "server/control.h"
#include "server/daemon.h"
#include "server/dns.h"
#include "server/log.h"
#include "server/smtp_out.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <event2/event.h>
#include <netdb.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <sys/queue.h>
#include <time.h>
#include <unistd.h>

#define DOM_BUCKETS 4096
#define MSG_BUCKETS 1024
#define MSG_CACHE_BYTES (8 * 1024 * 1024)
#define MAX_TARGETS 10
#define DOMAIN_LIST_PAGE 256
#define DNS_MAX_OUT 32 /* domains being resolved at once */

static atomic_int kick_fd = -1;
/* Told after each commit that put mail into the inbound spool. */
static pthread_mutex_t spool_hook_mu = PTHREAD_MUTEX_INITIALIZER;
static void (*spool_hook)(void *arg);
static void *spool_hook_arg;
/* The running scheduler, for main.c's subsystem table (loop thread only). */
static struct deliver *running;

/* --- the message cache (shared by the loop and the reader) --- */

struct qmsg {
	int64_t id;
	int refs;
	char qid[24];
	char env_from[520];
	char kind[16];
	int verp;
	int64_t created;
	int64_t expires;
	int64_t size;
	char *body; /* prepared for DATA */
	size_t blen;
	/* For servers without SMTPUTF8 or 8BITMIME (mail/downgrade.h):
	 * need is what the message holds (DOWNGRADE_HEADERS: 8-bit header
	 * text, DOWNGRADE_BODY: an 8-bit body); alt[flags] the body prepared
	 * with those downgrades (NULL: cannot be made, alt_why says why). */
	int need;
	char *alt[4];
	size_t alt_len[4];
	char alt_why[4][160];
	size_t bytes; /* body and alt[], for the cache's accounting */
	struct qmsg *hnext;
	TAILQ_ENTRY(qmsg) lru; /* unreferenced ones, oldest first */
};
TAILQ_HEAD(qmsg_list, qmsg);

struct msg_cache {
	pthread_mutex_t mu;
	struct qmsg *h[MSG_BUCKETS];
	struct qmsg_list lru;
	size_t idle_bytes;
};

/* --- rows, batches, domains --- */

struct row {
	int64_t id;
	struct qmsg *m;
	char *rcpt;
	int attempts;
	int64_t next_attempt;
};

struct batch {
	struct dom *d;
	struct qmsg *m;
	int n, cap;
	struct row *rows;
	const char **rcpts;
	struct smtp_result *res;
	struct smtp_txn txn;
	char from[600];
	struct smtp_sess *sess;
	TAILQ_ENTRY(batch) link;
};
TAILQ_HEAD(batch_list, batch);

struct dom {
	char *name;
	struct dom *hnext;
	int active;  /* walking its due rows */
	int again;   /* listed again while busy: walk again when done */
	int loading; /* a page read is out */
	int eof;     /* the walk has read its last page */
	int64_t cur_next, cur_id;
	int64_t now; /* the walk's "due" time */
	struct dns_mx *mx;
	int resolving;
	struct batch_list ready;
	int nready;
	struct batch *open; /* being filled from pages */
	int conns;
	int limit; /* adaptive concurrency */
	int throttle_level;
	int ok_txns;
	int64_t pause_until;
	struct event *pause_ev;
	int pending_writes;
	int waiting;              /* in the want-connection queue */
	int local;                /* a list domain of ours: into the inbound spool */
	TAILQ_ENTRY(dom) dnslink; /* waiting for its turn to be resolved */
	TAILQ_ENTRY(dom) wlink;
	struct deliver *dl;
};
TAILQ_HEAD(dom_list, dom);

struct pooled {
	struct smtp_sess *s;
	struct deliver *dl;
	TAILQ_ENTRY(pooled) link;
};
TAILQ_HEAD(pool_list, pooled);

/* --- jobs for the worker threads --- */

enum job_kind { J_DOMAINS, J_PAGE, J_NEXT_DUE, J_RESULTS };

struct wres {
	int64_t id;
	int64_t msg_id;
	const char *state;
	int attempts;
	int64_t next_attempt;
	char *reply;
	/* for the DSN of a failed row */
	char *rcpt;
	char *remote;
	char *diag; /* the reply as the server gave it */
	char *to;   /* local jobs: the recipient */
	char status[16];
};

struct job {
	enum job_kind kind;
	struct job *next;
	struct dom *d;
	/* J_DOMAINS */
	char after[256];
	int limit;
	char **names;
	int nnames;
	/* J_PAGE */
	int64_t cur_next, cur_id, now;
	struct row *rows;
	int nrows;
	/* J_NEXT_DUE */
	int64_t when;
	/* J_RESULTS */
	struct wres *res;
	int nres;
	int dsns; /* DSNs queued by the commit */
	int failed;
	/* J_RESULTS for a list domain of ours: the writer delivers the rows
	 * into the inbound spool and fills res itself. */
	int local;
	struct qmsg *m;
	/* J_PAGE: the domain is one of our list domains */
	int is_local;
};

struct worker {
	pthread_t th;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct job *head, *tail;
	int stop;
	struct db *db;
	struct deliver *dl;
};

struct deliver {
	struct event_base *base;
	const struct conf *conf;
	struct dns *dns;
	SSL_CTX *ssl;
	struct smtp_out_cfg ocfg;
	char *relay_name;
	char relay_port[16];
	char *relay_pass;
	struct msg_cache mc;
	struct worker reader, writer;
	pthread_mutex_t done_mu;
	struct job *done_head, *done_tail;
	int done_fd;
	struct event *done_ev;
	int kick_efd;
	struct event *kick_ev;
	struct event *timer;
	int64_t timer_at; /* when the timer fires; 0: not armed */
	struct control *control;
	struct dom *doms[DOM_BUCKETS];
	int ndoms;
	int nactive;
	int max_active;
	int conns;
	struct dom_list want;
	struct dom_list dns_wait;
	int dns_out;
	struct pool_list idle;
	int nidle; /* open connections in idle, counted in the global limit */
	/* the scan */
	int scanning;
	int scan_again;
	int scan_blocked;
	int list_out;
	char scan_after[256];
	int stopping;
	int finished;
	int writes_out;      /* result jobs at the writer */
	int results_out;     /* the rows in them: taken by receivers, not committed */
	struct verp_key key; /* signs VERP senders; read-only after the start */
};

static void pump(struct dom *d);
static void scan_start(struct deliver *dl);
static void scan_continue(struct deliver *dl);
static void dom_check_done(struct dom *d);

/* --- small helpers --- */

static double
wall_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static unsigned
hash_str(const char *s)
{
	unsigned h = 2166136261u;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h;
}

long long
deliver_backoff(int attempts, long long retry_min, long long retry_max)
{
	long long d = retry_min > 0 ? retry_min : 1;

	for (int i = 1; i < attempts && d < retry_max; i++)
		d *= 2;
	return d < retry_max ? d : retry_max;
}

/* --- message cache --- */

static void
mc_init(struct msg_cache *mc)
{
	pthread_mutex_init(&mc->mu, NULL);
	TAILQ_INIT(&mc->lru);
}

static void
mc_unlink(struct msg_cache *mc, struct qmsg *m)
{
	struct qmsg **pp = &mc->h[(uint64_t)m->id % MSG_BUCKETS];

	for (; *pp != NULL; pp = &(*pp)->hnext)
		if (*pp == m) {
			*pp = m->hnext;
			break;
		}
}

static void
qmsg_free(struct qmsg *m)
{
	free(m->body);
	for (int f = 0; f < 4; f++)
		free(m->alt[f]);
	free(m);
}

static void
mc_trim(struct msg_cache *mc)
{
	struct qmsg *m;

	while (mc->idle_bytes > MSG_CACHE_BYTES && (m = TAILQ_FIRST(&mc->lru)) != NULL) {
		TAILQ_REMOVE(&mc->lru, m, lru);
		mc->idle_bytes -= m->bytes;
		mc_unlink(mc, m);
		qmsg_free(m);
	}
}

static void
body_prepare(void *arg, const unsigned char *body, size_t len)
{
	struct qmsg *m = arg;

	m->body = smtp_out_prepare_body(body, len, &m->blen);
	m->bytes = m->blen;
	m->need = downgrade_scan((const char *)body, len);
	/* Each form a receiver may need, made once per message here on the
	 * reader thread, not per transaction on the loop. */
	for (int f = 1; m->need != 0 && f < 4; f++) {
		char *d;
		size_t dlen;
		/* Only the forms choose_body() can ask for. */
		if ((f & m->need) == 0 || (f == 3 && m->need == DOWNGRADE_HEADERS))
			continue;
		if (downgrade_message((const char *)body, len, f, &d, &dlen, m->alt_why[f],
		                      sizeof(m->alt_why[f])) < 0)
			continue;
		m->alt[f] = smtp_out_prepare_body((const unsigned char *)d, dlen, &m->alt_len[f]);
		free(d);
		if (m->alt[f] == NULL)
			snprintf(m->alt_why[f], sizeof(m->alt_why[f]), "out of memory");
		m->bytes += m->alt_len[f];
	}
}

/* Takes a reference on message id, loading it with db when not cached.
 * Reader thread only (the loop only releases). */

static struct qmsg *
mc_get(struct msg_cache *mc, struct db *db, int64_t id)
{
	struct qmsg *m;
	struct db_qmsg qm;

	pthread_mutex_lock(&mc->mu);
	for (m = mc->h[(uint64_t)id % MSG_BUCKETS]; m != NULL; m = m->hnext)
		if (m->id == id)
			break;
	if (m != NULL) {
		if (m->refs++ == 0) {
			TAILQ_REMOVE(&mc->lru, m, lru);
			mc->idle_bytes -= m->bytes;
		}
		pthread_mutex_unlock(&mc->mu);
		return m;
	}
	pthread_mutex_unlock(&mc->mu);
	if ((m = calloc(1, sizeof(*m))) == NULL)
		return NULL;
	if (db_queue_msg(db, id, &qm, body_prepare, m) < 0 || m->body == NULL) {
		qmsg_free(m);
		return NULL;
	}
	m->id = id;
	m->refs = 1;
	memcpy(m->qid, qm.qid, sizeof(m->qid));
	snprintf(m->env_from, sizeof(m->env_from), "%s", qm.env_from);
	snprintf(m->kind, sizeof(m->kind), "%s", qm.kind);
	m->verp = qm.verp;
	m->created = qm.created;
	m->expires = qm.expires;
	m->size = qm.size;
	pthread_mutex_lock(&mc->mu);
	m->hnext = mc->h[(uint64_t)id % MSG_BUCKETS];
	mc->h[(uint64_t)id % MSG_BUCKETS] = m;
	pthread_mutex_unlock(&mc->mu);
	return m;
}

static void
mc_put(struct msg_cache *mc, struct qmsg *m)
{
	if (m == NULL)
		return;
	pthread_mutex_lock(&mc->mu);
	if (--m->refs == 0) {
		TAILQ_INSERT_TAIL(&mc->lru, m, lru);
		mc->idle_bytes += m->bytes;
		mc_trim(mc);
	}
	pthread_mutex_unlock(&mc->mu);
}

/* --- workers --- */

static void
worker_post(struct worker *w, struct job *j)
{
	pthread_mutex_lock(&w->mu);
	j->next = NULL;
	if (w->tail != NULL)
		w->tail->next = j;
	else
		w->head = j;
	w->tail = j;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

static void
done_post(struct deliver *dl, struct job *list)
{
	struct job *last = list;
	uint64_t one = 1;

	while (last->next != NULL)
		last = last->next;
	pthread_mutex_lock(&dl->done_mu);
	if (dl->done_tail != NULL)
		dl->done_tail->next = list;
	else
		dl->done_head = list;
	dl->done_tail = last;
	pthread_mutex_unlock(&dl->done_mu);
	(void)!write(dl->done_fd, &one, sizeof(one));
}

/* Takes every queued job (NULL when stopping with nothing left). */
static struct job *
worker_take(struct worker *w)
{
	struct job *j;

	pthread_mutex_lock(&w->mu);
	while (w->head == NULL && !w->stop)
		pthread_cond_wait(&w->cv, &w->mu);
	j = w->head;
	w->head = w->tail = NULL;
	pthread_mutex_unlock(&w->mu);
	return j;
}

struct names_acc {
	struct job *j;
	int cap;
};

static int
add_name(void *arg, const char *name)
{
	struct names_acc *a = arg;

	if (a->j->nnames == a->cap) {
		int cap = a->cap ? a->cap * 2 : 64;
		char **p = realloc(a->j->names, (size_t)cap * sizeof(*p));
		if (p == NULL)
			return 1;
		a->j->names = p;
		a->cap = cap;
	}
	if ((a->j->names[a->j->nnames] = strdup(name)) == NULL)
		return 1;
	a->j->nnames++;
	return 0;
}

struct page_acc {
	struct job *j;
	struct worker *w;
	int cap;
};

static void
add_row(void *arg, const struct db_qrow *r)
{
	struct page_acc *a = arg;
	struct job *j = a->j;
	struct row *row;

	if (j->nrows == a->cap) {
		int cap = a->cap ? a->cap * 2 : 64;
		struct row *p = realloc(j->rows, (size_t)cap * sizeof(*p));
		if (p == NULL)
			return;
		j->rows = p;
		a->cap = cap;
	}
	row = &j->rows[j->nrows];
	row->id = r->id;
	row->rcpt = strdup(r->rcpt);
	row->attempts = r->attempts;
	row->next_attempt = r->next_attempt;
	row->m = NULL;
	/* The message is loaded after the statement is done (see below). */
	row->m = (struct qmsg *)(intptr_t)r->msg_id;
	if (row->rcpt != NULL)
		j->nrows++;
}

static void
reader_page(struct worker *w, struct job *j)
{
	struct page_acc a = {j, w, 0};
	struct dom *d = j->d;

	if (j->cur_next < 0) {
		const char *def = w->dl->conf->default_list_domain;
		int r = db_queue_local_domain(w->db, d->name);
		j->is_local = r > 0 || (def != NULL && strcasecmp(def, d->name) == 0);
	}
	if (db_queue_page(w->db, d->name, j->cur_next, j->cur_id, j->now, j->limit, add_row, &a) <
	    0) {
		log_warnx("queue: reading due recipients of %s: %s", d->name, db_errmsg(w->db));
		j->failed = 1;
	}
	j->limit = j->failed ? 0 : j->limit;
	for (int i = 0; i < j->nrows; i++) {
		int64_t mid = (int64_t)(intptr_t)j->rows[i].m;
		j->rows[i].m = mc_get(&w->dl->mc, w->db, mid);
		if (j->rows[i].m == NULL)
			log_warnx("queue: message %lld of a due recipient: %s", (long long)mid,
			          db_errmsg(w->db));
	}
}

static void *
reader_main(void *arg)
{
	struct worker *w = arg;
	struct job *list, *j, *next;

	while ((list = worker_take(w)) != NULL) {
		for (j = list; j != NULL; j = next) {
			next = j->next;
			j->next = NULL;
			if (j->kind == J_DOMAINS) {
				struct names_acc a = {j, 0};
				if (db_queue_domains(w->db, j->after, j->now, j->limit, add_name,
				                     &a) < 0) {
					log_warnx("queue: listing due domains: %s",
					          db_errmsg(w->db));
					j->failed = 1;
				}
			} else if (j->kind == J_PAGE) {
				reader_page(w, j);
			} else if (j->kind == J_NEXT_DUE) {
				if (db_queue_next_due(w->db, j->now, &j->when) < 0)
					j->failed = 1;
			}
			done_post(w->dl, j);
		}
	}
	return NULL;
}

static char *
lower_domain(const char *addr)
{
	const char *at = strrchr(addr, '@');
	char *d = strdup(at ? at + 1 : "");

	for (char *p = d; p && *p; p++)
		*p = (char)tolower((unsigned char)*p);
	return d;
}

struct dsn_acc {
	char *orig;
	size_t len;
};

static void
copy_orig(void *arg, const unsigned char *body, size_t len)
{
	struct dsn_acc *a = arg;

	if ((a->orig = malloc(len + 1)) != NULL) {
		memcpy(a->orig, body, len);
		a->len = len;
	}
}

/* One DSN to env_to for the failed rows res[0..n) of message qm. */
static int
queue_dsn_to(struct worker *w, const struct db_qmsg *qm, const struct dsn_acc *a, struct wres *res,
             int n, const char *env_to)
{
	const struct conf *c = w->dl->conf;
	struct dsn_rcpt *dr;
	struct dsn_info info;
	struct outq_rcpt to;
	struct outq_msg om;
	char mid[128], qid[DB_QID_LEN], *report, *dom;
	size_t len;
	int rc = 0;

	if ((dr = calloc((size_t)n, sizeof(*dr))) == NULL)
		return -1;
	for (int i = 0; i < n; i++) {
		dr[i].addr = res[i].rcpt;
		dr[i].action = "failed";
		dr[i].status = res[i].status;
		dr[i].remote_mta = res[i].remote;
		dr[i].diag = res[i].diag ? res[i].diag : res[i].reply;
		dr[i].last_attempt = db_now();
	}
	db_qid_make(qid);
	snprintf(mid, sizeof(mid), "<%s.dsn@%s>", qid, c->hostname);
	info.reporting_mta = c->hostname;
	info.to = env_to;
	info.qid = qm->qid;
	info.message_id = mid;
	info.arrival = qm->created;
	info.now = db_now();
	report = dsn_build(&info, dr, (size_t)n, a->orig, a->len, &len);
	free(dr);
	if (report == NULL)
		return -1;
	dom = lower_domain(env_to);
	to.addr = env_to;
	to.domain = dom ? dom : "";
	to.member_id = 0;
	memset(&om, 0, sizeof(om));
	om.list_id = qm->list_id;
	om.kind = "dsn";
	om.env_from = "";
	om.body = report;
	om.len = len;
	om.lifetime = c->max_queue_lifetime;
	if (db_outq_add(w->db, &om, &to, 1, qid, NULL) < 0)
		rc = -1;
	else
		log_info("%s: sender non-delivery notification: %s", qm->qid, qid);
	free(dom);
	free(report);
	return rc;
}

/* The DSN for the failed rows res[0..n) of one message: one to its sender,
 * or, for a VERP'd message, one per row to the VERP address that row was
 * sent with (LIST-bounces+local=domain@...), so the bounce names the member
 * by its address as well as by its content. */
static int
queue_dsn(struct worker *w, struct wres *res, int n)
{
	struct db_qmsg qm;
	struct dsn_acc a = {NULL, 0};
	char to[ADDR_PATH_MAX + 64];
	int rc = 0;

	if (db_queue_msg(w->db, res[0].msg_id, &qm, copy_orig, &a) < 0)
		return db_status(w->db) == DB_NOTFOUND ? 0 : -1;
	if (qm.env_from[0] == '\0' || a.orig == NULL) {
		free(a.orig);
		return 0; /* the null sender gets no DSN (RFC 5321 6.1) */
	}
	if (!qm.verp) {
		rc = queue_dsn_to(w, &qm, &a, res, n, qm.env_from);
	} else {
		for (int i = 0; i < n && rc == 0; i++) {
			verp_sender(&w->dl->key, qm.env_from, res[i].rcpt, to, sizeof(to));
			rc = queue_dsn_to(w, &qm, &a, res + i, 1, to);
		}
	}
	free(a.orig);
	return rc;
}

struct local_ctx {
	struct db *db;
	const char *domain;
};

static int64_t
local_lookup(void *arg, const char *local, size_t len)
{
	struct local_ctx *c = arg;
	struct db_list l;
	char name[DB_LOCAL_MAX + 1];

	if (len > DB_LOCAL_MAX)
		return 0;
	memcpy(name, local, len);
	name[len] = '\0';
	return db_list_find(c->db, name, c->domain, &l) == 0 ? l.id : 0;
}

/* Delivers the rows of local job j into the inbound spool (in the writer's
 * transaction) and fills in their results. */
static int
local_deliver(struct worker *w, struct job *j)
{
	const struct conf *c = w->dl->conf;
	struct qmsg *m = j->m;
	struct dsn_acc body = {NULL, 0};
	struct spool_rcpt *sr;
	struct spool_msg sm;
	struct db_qmsg qm;
	char qid[DB_QID_LEN], from[600], reply[700];
	int64_t sid;
	int nsr = 0, rc = 0;

	if (db_queue_msg(w->db, m->id, &qm, copy_orig, &body) < 0 || body.orig == NULL) {
		free(body.orig);
		return db_status(w->db) == DB_NOTFOUND ? 0 : -1;
	}
	if ((sr = calloc((size_t)j->nres, sizeof(*sr))) == NULL) {
		free(body.orig);
		return -1;
	}
	for (int i = 0; i < j->nres; i++) {
		struct wres *r = &j->res[i];
		const char *at = strrchr(r->to, '@');
		struct local_ctx lc = {w->db, at ? at + 1 : ""};
		struct listaddr_match lm;
		char dom[256];

		snprintf(dom, sizeof(dom), "%s", at ? at + 1 : "");
		for (char *p = dom; *p; p++)
			*p = (char)tolower((unsigned char)*p);
		lc.domain = dom;
		if (at != NULL &&
		    listaddr_resolve(r->to, (size_t)(at - r->to), local_lookup, &lc, &lm) == 0) {
			sr[nsr].rcpt = r->to;
			sr[nsr].list_id = lm.list_id;
			sr[nsr].role = listaddr_role_name(lm.role);
			sr[nsr].extension = lm.ext ? strndup(lm.ext, lm.ext_len) : NULL;
			nsr++;
			r->state = DB_Q_SENT;
		} else {
			snprintf(reply, sizeof(reply), "550 5.1.1 <%s>: no such list address here",
			         r->to);
			r->state = DB_Q_FAILED;
			r->reply = strdup(reply);
			r->diag = strdup(reply);
			r->rcpt = strdup(r->to);
			snprintf(r->status, sizeof(r->status), "5.1.1");
		}
	}
	if (nsr > 0) {
		db_qid_make(qid);
		if (m->verp && m->env_from[0] != '\0')
			verp_sender(&w->dl->key, m->env_from, j->res[0].to, from, sizeof(from));
		else
			snprintf(from, sizeof(from), "%s", m->env_from);
		memset(&sm, 0, sizeof(sm));
		sm.qid = qid;
		sm.received = db_now();
		sm.client = "localhost[127.0.0.1]";
		sm.helo = c->hostname;
		sm.mail_from = from;
		sm.body = body.orig;
		sm.len = body.len;
		sm.rcpts = sr;
		sm.nrcpt = (size_t)nsr;
		rc = db_spool_insert(w->db, &sm, &sid);
		snprintf(reply, sizeof(reply), "250 2.0.0 delivered to the inbound spool as %s",
		         qid);
	}
	for (int i = 0; i < j->nres; i++) {
		struct wres *r = &j->res[i];
		if (rc == 0 && strcmp(r->state, DB_Q_SENT) == 0)
			r->reply = strdup(reply);
		if (rc == 0)
			log_info("%s: to=<%s>, relay=local, delay=%.1f, dsn=%s, status=%s (%s)",
			         m->qid, r->to, wall_now() - (double)m->created,
			         strcmp(r->state, DB_Q_SENT) == 0 ? "2.0.0" : "5.1.1",
			         strcmp(r->state, DB_Q_SENT) == 0 ? "sent" : "bounced", r->reply);
	}
	for (int i = 0; i < nsr; i++)
		free((char *)sr[i].extension);
	free(sr);
	free(body.orig);
	return rc;
}

static int
cmp_msg(const void *a, const void *b)
{
	const struct wres *x = *(const struct wres *const *)a, *y = *(const struct wres *const *)b;

	return x->msg_id < y->msg_id ? -1 : x->msg_id > y->msg_id;
}

static int
writer_commit(struct worker *w, struct job *list, int *dsns)
{
	struct wres **failed = NULL;
	int nfailed = 0, cap = 0;

	*dsns = 0;
	if (db_begin(w->db) < 0)
		return -1;
	for (struct job *j = list; j != NULL; j = j->next) {
		if (j->local) {
			/* A retry of the commit starts over. */
			for (int i = 0; i < j->nres; i++) {
				struct wres *r = &j->res[i];
				free(r->reply);
				free(r->diag);
				free(r->rcpt);
				r->reply = r->diag = r->rcpt = NULL;
				r->state = DB_Q_QUEUED;
			}
			if (local_deliver(w, j) < 0)
				goto fail;
		}
		for (int i = 0; i < j->nres; i++) {
			struct wres *r = &j->res[i];
			if (db_queue_set_result(w->db, r->id, r->state, r->attempts,
			                        r->next_attempt, r->reply) < 0)
				goto fail;
			if (r->rcpt == NULL)
				continue;
			if (nfailed == cap) {
				cap = cap ? cap * 2 : 64;
				struct wres **p = realloc(failed, (size_t)cap * sizeof(*p));
				if (p == NULL)
					goto fail;
				failed = p;
			}
			failed[nfailed++] = r;
		}
	}
	/* One DSN per message per commit, listing its failed recipients. */
	if (nfailed > 1)
		qsort(failed, (size_t)nfailed, sizeof(*failed), cmp_msg);
	for (int i = 0; i < nfailed;) {
		int k = i;
		struct wres *group;
		while (k < nfailed && failed[k]->msg_id == failed[i]->msg_id)
			k++;
		if ((group = calloc((size_t)(k - i), sizeof(*group))) == NULL)
			goto fail;
		for (int x = i; x < k; x++)
			group[x - i] = *failed[x];
		int rc = queue_dsn(w, group, k - i);
		free(group);
		if (rc < 0)
			goto fail;
		(*dsns)++;
		i = k;
	}
	free(failed);
	return db_commit(w->db);
fail:
	free(failed);
	db_rollback(w->db);
	return -1;
}

static void *
writer_main(void *arg)
{
	struct worker *w = arg;
	struct job *list;
	int dsns;

	if (db_queue_results_connection(w->db) < 0)
		log_warnx("delivery: %s", db_errmsg(w->db));
	while ((list = worker_take(w)) != NULL) {
		double t0 = wall_now();
		int n = 0;
		for (struct job *j = list; j != NULL; j = j->next)
			n += j->nres;
		for (int tries = 0;; tries++) {
			if (writer_commit(w, list, &dsns) == 0) {
				log_debug("queue: committed %d result(s) in %.3f s", n,
				          wall_now() - t0);
				break;
			}
			/* Results must not be lost: wait and try again (a busy
			 * database, a full disk that an admin fixes). */
			log_warnx("queue: committing delivery results: %s (try %d)",
			          db_errmsg(w->db), tries + 1);
			sleep(tries < 5 ? 1 : 5);
		}
		list->dsns = dsns;
		for (struct job *j = list; j != NULL; j = j->next) {
			if (j->local) {
				pthread_mutex_lock(&spool_hook_mu);
				if (spool_hook != NULL)
					spool_hook(spool_hook_arg);
				pthread_mutex_unlock(&spool_hook_mu);
				break;
			}
		}
		done_post(w->dl, list);
	}
	return NULL;
}

static int
worker_start(struct worker *w, struct deliver *dl, void *(*fn)(void *), const char *name)
{
	char err[512];

	w->dl = dl;
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->cv, NULL);
	if ((w->db = db_open(dl->conf->database, 0, err, sizeof(err))) == NULL) {
		log_warnx("delivery: %s", err);
		return -1;
	}
	if (pthread_create(&w->th, NULL, fn, w) != 0) {
		log_warnx("delivery: cannot start a thread");
		db_close(w->db);
		w->db = NULL;
		return -1;
	}
	pthread_setname_np(w->th, name);
	return 0;
}

static void
worker_stop(struct worker *w)
{
	if (w->db == NULL)
		return;
	pthread_mutex_lock(&w->mu);
	w->stop = 1;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
	pthread_join(w->th, NULL);
	db_close(w->db);
	w->db = NULL;
}

static struct job *
job_new(enum job_kind kind, struct dom *d)
{
	struct job *j = calloc(1, sizeof(*j));

	if (j == NULL)
		fatalx("out of memory");
	j->kind = kind;
	j->d = d;
	return j;
}

/* --- domains --- */

static struct dom *
dom_find(struct deliver *dl, const char *name, int create)
{
	unsigned h = hash_str(name) % DOM_BUCKETS;
	struct dom *d;

	for (d = dl->doms[h]; d != NULL; d = d->hnext)
		if (strcmp(d->name, name) == 0)
			return d;
	if (!create)
		return NULL;
	if ((d = calloc(1, sizeof(*d))) == NULL || (d->name = strdup(name)) == NULL)
		fatalx("out of memory");
	d->dl = dl;
	d->limit = (int)dl->conf->domain_concurrency;
	if (d->limit < 1)
		d->limit = 1;
	TAILQ_INIT(&d->ready);
	d->hnext = dl->doms[h];
	dl->doms[h] = d;
	dl->ndoms++;
	return d;
}

/* Forgets a domain that has nothing going on and no throttling to remember. */
static void
dom_maybe_free(struct dom *d)
{
	struct deliver *dl = d->dl;
	struct dom **pp;

	if (d->active || d->pending_writes > 0 || d->conns > 0 || d->waiting || d->resolving ||
	    d->loading || d->throttle_level > 0 || d->pause_until > (int64_t)time(NULL))
		return;
	for (pp = &dl->doms[hash_str(d->name) % DOM_BUCKETS]; *pp != NULL; pp = &(*pp)->hnext)
		if (*pp == d) {
			*pp = d->hnext;
			break;
		}
	dl->ndoms--;
	dns_mx_unref(d->mx);
	if (d->pause_ev != NULL)
		event_free(d->pause_ev);
	free(d->name);
	free(d);
}

static void on_mx(void *arg, struct dns_mx *mx);

static void
resolve(struct dom *d)
{
	struct deliver *dl = d->dl;

	dl->dns_out++;
	if (dl->relay_name != NULL)
		dns_resolve_mx(dl->dns, dl->relay_name, 1, on_mx, d);
	else
		dns_resolve_mx(dl->dns, d->name, 0, on_mx, d);
}

static void
on_mx(void *arg, struct dns_mx *mx)
{
	struct dom *d = arg;
	struct deliver *dl = d->dl;
	struct dom *next;

	dl->dns_out--;
	if ((next = TAILQ_FIRST(&dl->dns_wait)) != NULL) {
		TAILQ_REMOVE(&dl->dns_wait, next, dnslink);
		resolve(next);
	}
	d->resolving = 0;
	log_debug("queue: %s: %d exchanger(s), status %d (%.3f)", d->name, mx->nhost, mx->status,
	          wall_now());
	dns_mx_ref(mx);
	d->mx = mx;
	pump(d);
	dom_check_done(d);
}

static void
request_page(struct dom *d)
{
	struct deliver *dl = d->dl;
	struct job *j;

	if (d->loading || d->eof || dl->stopping)
		return;
	d->loading = 1;
	j = job_new(J_PAGE, d);
	j->cur_next = d->cur_next;
	j->cur_id = d->cur_id;
	j->now = d->now;
	j->limit = (int)dl->conf->max_rcpt_per_transaction * 2;
	if (j->limit < 50)
		j->limit = 50;
	if (j->limit > 1000)
		j->limit = 1000;
	worker_post(&dl->reader, j);
}

static void
activate(struct dom *d)
{
	struct deliver *dl = d->dl;

	d->active = 1;
	d->again = 0;
	d->eof = 0;
	d->cur_next = -1;
	d->cur_id = 0;
	d->now = (int64_t)time(NULL);
	dl->nactive++;
	dns_mx_unref(d->mx);
	d->mx = NULL;
	d->resolving = 1;
	request_page(d);
	if (dl->dns_out >= DNS_MAX_OUT) {
		/* Not all at once: a burst of thousands of queries gets
		 * dropped by resolvers, and the domains deferred. */
		TAILQ_INSERT_TAIL(&dl->dns_wait, d, dnslink);
		return;
	}
	resolve(d);
}

static void
dom_check_done(struct dom *d)
{
	struct deliver *dl = d->dl;

	if (d->active && d->eof && !d->loading && !d->resolving && d->nready == 0 &&
	    d->open == NULL && d->conns == 0) {
		d->active = 0;
		dl->nactive--;
		/* Refill in chunks: each listing is a round trip to the
		 * reader, and so is the first page of each domain it lists. */
		if (dl->scan_blocked && !dl->list_out &&
		    dl->max_active - dl->nactive >= dl->max_active / 4) {
			dl->scan_blocked = 0;
			scan_continue(dl);
		}
	}
	if (!d->active && d->pending_writes == 0) {
		if (d->again && !dl->stopping)
			activate(d);
		else
			dom_maybe_free(d);
	}
}

/* --- results --- */

static struct job *
results_job(struct batch *b)
{
	struct job *j = job_new(J_RESULTS, b->d);

	j->res = calloc((size_t)b->n, sizeof(*j->res));
	if (j->res == NULL)
		fatalx("out of memory");
	return j;
}

/* Records what happened to row i of batch b: code and text as the reply
 * (code 0: no reply; ours: a reply we made, not the relay's), relay as
 * "host[ip]:port" or "none". */
static void
row_result(struct batch *b, struct job *j, int i, int code, const char *text, const char *dsn,
           const char *relay, int conn_use, int ours)
{
	struct deliver *dl = b->d->dl;
	const struct conf *c = dl->conf;
	struct row *r = &b->rows[i];
	struct wres *w = &j->res[j->nres++];
	double now = wall_now();
	int64_t inow = (int64_t)now;
	char status[16], why[700], cu[32] = "";
	const char *state, *word;
	int perm = code >= 500;

	if (dsn != NULL)
		snprintf(status, sizeof(status), "%s", dsn);
	else if (code == 0 || dsn_status_of(text, status) < 0)
		snprintf(status, sizeof(status), "%s", perm ? "5.0.0" : "4.4.2");
	w->id = r->id;
	w->msg_id = r->m->id;
	w->attempts = r->attempts + 1;
	if (code >= 200 && code < 300) {
		state = DB_Q_SENT;
		word = "sent";
		snprintf(why, sizeof(why), "%s", text);
	} else {
		if (code > 0 && !ours && strcmp(relay, "none") != 0)
			snprintf(why, sizeof(why), "host %.*s said: %s",
			         (int)(strchr(relay, ':') ? strrchr(relay, ':') - relay
			                                  : (long)strlen(relay)),
			         relay, text);
		else
			snprintf(why, sizeof(why), "%s", text);
		if (perm) {
			state = DB_Q_FAILED;
			word = "bounced";
		} else if (inow >= r->m->expires) {
			state = DB_Q_FAILED;
			word = "expired, returned to sender";
			if (status[0] == '4')
				status[0] = '5';
		} else {
			long long next = deliver_backoff(w->attempts, c->retry_min, c->retry_max);
			state = DB_Q_DEFERRED;
			word = "deferred";
			w->next_attempt = inow + next < r->m->expires ? inow + next : r->m->expires;
		}
	}
	w->state = state;
	w->reply = strdup(why);
	if (strcmp(state, DB_Q_FAILED) == 0) {
		w->rcpt = strdup(r->rcpt);
		w->diag = code > 0 ? strdup(text) : NULL;
		w->remote = strcmp(relay, "none") ? strdup(relay) : NULL;
		if (w->remote != NULL && strchr(w->remote, '['))
			*strchr(w->remote, '[') = '\0';
		snprintf(w->status, sizeof(w->status), "%s", status);
	}
	if (conn_use > 1)
		snprintf(cu, sizeof(cu), "conn_use=%d, ", conn_use);
	log_info("%s: to=<%s>, relay=%s, %sdelay=%.1f, dsn=%s, status=%s (%s)", r->m->qid, r->rcpt,
	         relay, cu, now - (double)r->m->created, status, word, why);
}

static void
batch_free(struct batch *b)
{
	struct deliver *dl = b->d->dl;

	for (int i = 0; i < b->n; i++) {
		free(b->rows[i].rcpt);
		mc_put(&dl->mc, b->rows[i].m);
	}
	free(b->rows);
	free(b->rcpts);
	free(b->res);
	free(b);
}

/* Hands the results of b to the writer and frees b. */
static void
batch_finish(struct batch *b, struct job *j)
{
	struct dom *d = b->d;

	d->pending_writes++;
	d->dl->writes_out++;
	d->dl->results_out += j->nres;
	worker_post(&d->dl->writer, j);
	batch_free(b);
}

/* Every row of b gets the same outcome (no connection, DNS trouble). */
static void
batch_all(struct batch *b, int code, const char *text, const char *dsn)
{
	struct job *j = results_job(b);

	for (int i = 0; i < b->n; i++)
		row_result(b, j, i, code, text, dsn, "none", 0, 0);
	batch_finish(b, j);
}

/* --- throttling --- */

static int
is_throttle(int code, const char *text)
{
	char st[16];

	if (code == 421)
		return 1;
	return code / 100 == 4 && dsn_status_of(text, st) == 0 && strncmp(st, "4.7.", 4) == 0;
}

static void
on_pause_end(evutil_socket_t fd, short what, void *arg)
{
	struct dom *d = arg;

	pump(d);
	dom_check_done(d);
}

static void
throttle(struct dom *d)
{
	const struct conf *c = d->dl->conf;
	long long delay = c->throttle_delay > 0 ? c->throttle_delay : 1;
	struct timeval tv;

	d->limit = d->limit > 1 ? d->limit / 2 : 1;
	d->ok_txns = 0;
	for (int i = 0; i < d->throttle_level && delay < 3600; i++)
		delay *= 2;
	if (d->throttle_level < 10)
		d->throttle_level++;
	d->pause_until = (int64_t)time(NULL) + delay;
	if (d->pause_ev == NULL)
		d->pause_ev = evtimer_new(d->dl->base, on_pause_end, d);
	tv.tv_sec = delay;
	tv.tv_usec = 0;
	evtimer_add(d->pause_ev, &tv);
	log_info("%s: throttled after a 421/4.7.x reply: %d connection(s), pausing %llds", d->name,
	         d->limit, delay);
}

static void
unthrottle_step(struct dom *d)
{
	int max = (int)d->dl->conf->domain_concurrency;

	/* Additive increase: one more connection after `limit` good
	 * transactions in a row. */
	if (d->limit >= max) {
		d->throttle_level = 0;
		return;
	}
	if (++d->ok_txns >= d->limit * 4) {
		d->limit++;
		d->ok_txns = 0;
		if (d->limit >= max)
			d->throttle_level = 0;
	}
}

/* --- connections --- */

static void conn_released(struct deliver *dl);

static void
on_idle_close(void *arg, struct smtp_sess *s)
{
	struct pooled *p = arg;
	struct deliver *dl = p->dl;

	TAILQ_REMOVE(&dl->idle, p, link);
	dl->nidle--;
	free(p);
	smtp_out_close(s);
	conn_released(dl);
}

static void
pool_put(struct deliver *dl, struct smtp_sess *s)
{
	struct pooled *p = calloc(1, sizeof(*p));

	if (p == NULL) {
		smtp_out_close(s);
		return;
	}
	p->s = s;
	p->dl = dl;
	TAILQ_INSERT_TAIL(&dl->idle, p, link);
	dl->nidle++;
	smtp_out_idle(s, (int)dl->conf->connection_idle_timeout, on_idle_close, p);
}

static int
same_addr(const struct sockaddr_storage *a, const struct dns_addr *b)
{
	if (a->ss_family != b->ss.ss_family)
		return 0;
	if (a->ss_family == AF_INET) {
		const struct sockaddr_in *x = (const void *)a, *y = (const void *)&b->ss;
		return x->sin_addr.s_addr == y->sin_addr.s_addr && x->sin_port == y->sin_port;
	}
	const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)&b->ss;
	return memcmp(&x->sin6_addr, &y->sin6_addr, 16) == 0 && x->sin6_port == y->sin6_port;
}

static void
set_port(struct dns_addr *a, int port)
{
	if (a->ss.ss_family == AF_INET)
		((struct sockaddr_in *)&a->ss)->sin_port = htons((uint16_t)port);
	else if (a->ss.ss_family == AF_INET6)
		((struct sockaddr_in6 *)&a->ss)->sin6_port = htons((uint16_t)port);
}

static int
dest_port(struct deliver *dl)
{
	return dl->relay_name ? atoi(dl->relay_port) : (int)dl->conf->delivery_port;
}

/* An idle connection to one of the domain's most preferred exchangers. */
static struct pooled *pool_find(struct dom *d);

static int
pool_has(struct dom *d)
{
	return pool_find(d) != NULL;
}

static struct smtp_sess *
pool_take(struct dom *d)
{
	struct pooled *p = pool_find(d);
	struct smtp_sess *s;

	if (p == NULL)
		return NULL;
	s = p->s;
	TAILQ_REMOVE(&d->dl->idle, p, link);
	d->dl->nidle--;
	free(p);
	return s;
}

static struct pooled *
pool_find(struct dom *d)
{
	struct deliver *dl = d->dl;
	struct dns_mx *mx = d->mx;
	struct pooled *p;
	int port = dest_port(dl);

	if (TAILQ_EMPTY(&dl->idle) || mx->nhost == 0)
		return NULL;
	for (int h = 0; h < mx->nhost && mx->hosts[h].pref == mx->hosts[0].pref; h++) {
		for (int a = 0; a < mx->hosts[h].naddr; a++) {
			struct dns_addr want = mx->hosts[h].addrs[a];
			set_port(&want, port);
			TAILQ_FOREACH(p, &dl->idle, link)
			{
				if (same_addr(smtp_out_addr(p->s), &want))
					return p;
			}
		}
	}
	return NULL;
}

static void on_txn(void *arg, struct smtp_sess *s, struct smtp_txn *t, int ok);
static struct batch *batch_new(struct dom *d, struct qmsg *m, int cap);

/* The form of b's message that the server can take (RFC 6531 3.4: UTF-8
 * headers only with SMTPUTF8; RFC 6152: an 8-bit body only with
 * 8BITMIME), or why none can be sent there. */
static void
choose_body(struct batch *b, int ext)
{
	struct qmsg *m = b->m;
	struct smtp_txn *t = &b->txn;
	int f = 0;

	t->body = m->body;
	t->body_len = m->blen;
	t->size = (size_t)m->size;
	t->refuse_code = 0;
	if ((m->need & DOWNGRADE_HEADERS) && !(ext & SMTP_EXT_SMTPUTF8))
		f |= DOWNGRADE_HEADERS;
	if ((m->need & DOWNGRADE_BODY) && !(ext & SMTP_EXT_8BITMIME))
		f |= DOWNGRADE_BODY | (ext & SMTP_EXT_SMTPUTF8 ? 0 : DOWNGRADE_HEADERS);
	/* What goes out holds 8-bit octets: say so when the server can
	 * take them (SMTPUTF8 implies 8BITMIME, RFC 6531 3.1). */
	t->smtputf8 = (m->need & DOWNGRADE_HEADERS) && !(f & DOWNGRADE_HEADERS);
	t->body_8bit = (ext & SMTP_EXT_8BITMIME) && (m->need & ~f) != 0;
	if (f == 0)
		return;
	if (m->alt[f] == NULL) {
		if ((f & DOWNGRADE_HEADERS) && strcmp(m->alt_why[f], "out of memory") != 0) {
			t->refuse_code = 553;
			snprintf(t->refuse, sizeof(t->refuse),
			         "553 5.6.7 the server does not support SMTPUTF8, which this "
			         "message needs: %s",
			         m->alt_why[f]);
		} else {
			t->refuse_code = 451;
			snprintf(t->refuse, sizeof(t->refuse),
			         "451 4.3.0 the message could not be converted for this server: %s",
			         m->alt_why[f]);
		}
		return;
	}
	t->body = m->alt[f];
	t->body_len = m->alt_len[f];
	t->size = m->alt_len[f] > 3 ? m->alt_len[f] - 3 : 0;
}

static void
batch_send(struct batch *b, struct smtp_sess *s)
{
	b->sess = s;
	for (int i = 0; i < b->n; i++)
		b->rcpts[i] = b->rows[i].rcpt;
	if (b->m->verp && b->m->env_from[0] != '\0')
		verp_sender(&b->d->dl->key, b->m->env_from, b->rows[0].rcpt, b->from,
		            sizeof(b->from));
	else
		snprintf(b->from, sizeof(b->from), "%s", b->m->env_from);
	b->txn.from = b->from;
	b->txn.nrcpt = b->n;
	b->txn.rcpts = b->rcpts;
	b->txn.results = b->res;
	choose_body(b, smtp_out_ext(s));
	smtp_out_send(s, &b->txn, on_txn, b);
}

static void
log_tls(struct smtp_sess *s)
{
	const char *tls = smtp_out_tls(s);

	if (tls != NULL)
		log_info("Untrusted TLS connection established to %s: %s", smtp_out_peer(s), tls);
}

static void
on_open(void *arg, struct smtp_sess *s, int code, const char *why)
{
	struct batch *b = arg;
	struct dom *d = b->d;
	struct deliver *dl = d->dl;

	if (s == NULL) {
		if (is_throttle(code, why))
			throttle(d);
		batch_all(b, code >= 500 && !dl->relay_name ? code : 0, why,
		          code >= 500 && !dl->relay_name ? NULL : (code ? NULL : "4.4.1"));
		d->conns--;
		dl->conns--;
		conn_released(dl);
		pump(d);
		dom_check_done(d);
		return;
	}
	log_tls(s);
	batch_send(b, s);
}

static void
on_txn(void *arg, struct smtp_sess *s, struct smtp_txn *t, int ok)
{
	struct batch *b = arg;
	struct dom *d = b->d;
	struct deliver *dl = d->dl;
	struct job *j = results_job(b);
	struct batch *rest = NULL;
	int throttled = 0, uses = smtp_out_uses(s), nrcpt = b->n; /* t is b's: freed below */
	char relay[330];

	snprintf(relay, sizeof(relay), "%s", smtp_out_peer(s));
	for (int i = 0; i < b->n; i++) {
		struct smtp_result *r = &t->results[i];
		if (r->again) {
			/* "Too many recipients": not tried, so no attempt is
			 * counted; the rest go in another transaction now. */
			if (rest == NULL)
				rest = batch_new(d, b->m, b->n);
			rest->rows[rest->n++] = b->rows[i];
			b->rows[i].rcpt = NULL;
			b->rows[i].m = NULL;
			continue;
		}
		if (is_throttle(r->code, r->text))
			throttled = 1;
		row_result(b, j, i, r->code < 0 ? 0 : r->code,
		           r->code < 0 ? "no reply from the server" : r->text, NULL, relay, uses,
		           r->ours);
	}
	batch_finish(b, j);
	if (throttled)
		throttle(d);
	else if (ok)
		unthrottle_step(d);
	if (rest != NULL) {
		log_info("%s: %s took %d of %d recipient(s) in one transaction; sending %d in "
		         "another",
		         rest->m->qid, relay, nrcpt - rest->n, nrcpt, rest->n);
		if (ok && !dl->stopping && !throttled) {
			/* Same connection, same slot. */
			batch_send(rest, s);
			dom_check_done(d);
			return;
		}
		TAILQ_INSERT_HEAD(&d->ready, rest, link);
		d->nready++;
	}
	d->conns--;
	dl->conns--;
	if (ok && !dl->stopping && uses < dl->conf->connection_reuse_limit && !throttled)
		pool_put(dl, s);
	else
		smtp_out_close(s);
	pump(d);
	conn_released(dl);
	dom_check_done(d);
}

/* Hands batch b (taken off d's ready list) a connection. */
static void
batch_start(struct dom *d, struct batch *b)
{
	struct deliver *dl = d->dl;
	struct smtp_target t[MAX_TARGETS];
	struct smtp_sess *s;
	int n = 0, port = dest_port(dl);

	d->conns++;
	dl->conns++;
	if ((s = pool_take(d)) != NULL) {
		batch_send(b, s);
		return;
	}
	for (int h = 0; h < d->mx->nhost && n < MAX_TARGETS; h++) {
		for (int a = 0; a < d->mx->hosts[h].naddr && n < MAX_TARGETS; a++) {
			struct dns_addr x = d->mx->hosts[h].addrs[a];
			set_port(&x, port);
			t[n].host = d->mx->hosts[h].name;
			t[n].ss = x.ss;
			t[n].len = x.len;
			n++;
		}
	}
	smtp_out_open(dl->base, &dl->ocfg, t, n, on_open, b);
}

/* Whether d must wait for a connection slot. Idle pooled connections
 * count against delivery_max_connections: one of d's own is reused, and
 * another domain's oldest is closed to make room. */
static int
global_full(struct dom *d)
{
	struct deliver *dl = d->dl;
	struct pooled *p;

	if (dl->conns + dl->nidle < dl->conf->delivery_max_connections)
		return 0;
	if (dl->conns >= dl->conf->delivery_max_connections)
		return 1;
	if (pool_has(d))
		return 0;
	p = TAILQ_FIRST(&dl->idle);
	TAILQ_REMOVE(&dl->idle, p, link);
	dl->nidle--;
	/* Closed at once (no QUIT), so the socket is gone before the new
	 * connection is opened and the limit holds at every instant. */
	smtp_out_abort(p->s);
	free(p);
	return 0;
}

/* Whether new transactions must wait for the writer: every result that a
 * receiver took and the writer has not committed is a recipient that a
 * crash would send to again, so their number is bounded
 * (delivery_uncommitted_max; one result job is always let through). */
static int
writer_lags(struct deliver *dl)
{
	return dl->results_out > 0 && dl->results_out >= dl->conf->delivery_uncommitted_max;
}

static void
conn_released(struct deliver *dl)
{
	struct dom *d;

	/* Domains that waited for a connection slot, in turn. */
	while (dl->conns < dl->conf->delivery_max_connections && !writer_lags(dl) &&
	       (d = TAILQ_FIRST(&dl->want)) != NULL) {
		TAILQ_REMOVE(&dl->want, d, wlink);
		d->waiting = 0;
		pump(d);
		dom_check_done(d);
	}
}

static void
dns_failure(struct dom *d, struct batch *b)
{
	struct dns_mx *mx = d->mx;
	struct deliver *dl = d->dl;
	char text[400];

	if (mx->status == DNS_NULLMX) {
		snprintf(text, sizeof(text), "556 5.1.10 %s", mx->why);
		batch_all(b, 556, text, "5.1.10");
	} else if ((mx->status == DNS_NXDOMAIN || mx->status == DNS_NOHOST) && !dl->relay_name) {
		snprintf(text, sizeof(text), "550 5.4.4 %s", mx->why);
		batch_all(b, 550, text, mx->status == DNS_NXDOMAIN ? "5.1.2" : "5.4.4");
	} else {
		batch_all(b, 0, mx->why, "4.4.3");
	}
}

/* A batch for one of our own list domains: the writer puts it into the
 * inbound spool. */
static void
batch_local(struct batch *b)
{
	struct job *j = results_job(b);
	struct deliver *dl = b->d->dl;

	j->local = 1;
	j->m = b->m;
	pthread_mutex_lock(&dl->mc.mu);
	b->m->refs++;
	pthread_mutex_unlock(&dl->mc.mu);
	for (int i = 0; i < b->n; i++) {
		struct wres *w = &j->res[j->nres++];
		w->id = b->rows[i].id;
		w->msg_id = b->m->id;
		w->attempts = b->rows[i].attempts + 1;
		w->state = DB_Q_QUEUED;
		if ((w->to = strdup(b->rows[i].rcpt)) == NULL)
			fatalx("out of memory");
	}
	batch_finish(b, j);
}

static void
pump(struct dom *d)
{
	struct deliver *dl = d->dl;
	struct batch *b;

	if (dl->stopping)
		return;
	if (d->local) {
		while ((b = TAILQ_FIRST(&d->ready)) != NULL) {
			TAILQ_REMOVE(&d->ready, b, link);
			d->nready--;
			batch_local(b);
		}
	} else if (d->mx != NULL && d->mx->status != DNS_OK) {
		while ((b = TAILQ_FIRST(&d->ready)) != NULL) {
			TAILQ_REMOVE(&d->ready, b, link);
			d->nready--;
			dns_failure(d, b);
		}
	} else if (d->mx != NULL) {
		while ((b = TAILQ_FIRST(&d->ready)) != NULL && d->conns < d->limit &&
		       d->pause_until <= (int64_t)time(NULL)) {
			/* Also wait while the writer lags: results not yet
			 * committed are what a crash would send twice. */
			if (global_full(d) || writer_lags(dl)) {
				if (!d->waiting) {
					d->waiting = 1;
					TAILQ_INSERT_TAIL(&dl->want, d, wlink);
				}
				break;
			}
			TAILQ_REMOVE(&d->ready, b, link);
			d->nready--;
			batch_start(d, b);
		}
	}
	if (d->active && d->nready < 2 && !d->eof)
		request_page(d);
}

static struct batch *
batch_new(struct dom *d, struct qmsg *m, int cap)
{
	struct batch *b = calloc(1, sizeof(*b));

	if (b == NULL || (b->rows = calloc((size_t)cap, sizeof(*b->rows))) == NULL ||
	    (b->rcpts = calloc((size_t)cap, sizeof(*b->rcpts))) == NULL ||
	    (b->res = calloc((size_t)cap, sizeof(*b->res))) == NULL)
		fatalx("out of memory");
	b->d = d;
	b->m = m;
	b->cap = cap;
	return b;
}

static void
close_open(struct dom *d)
{
	if (d->open == NULL)
		return;
	TAILQ_INSERT_TAIL(&d->ready, d->open, link);
	d->nready++;
	d->open = NULL;
}

static void
on_page(struct job *j)
{
	struct dom *d = j->d;
	struct deliver *dl = d->dl;
	int maxr = (int)dl->conf->max_rcpt_per_transaction;

	if (maxr < 1)
		maxr = 1;
	d->loading = 0;
	if (j->cur_next < 0)
		d->local = j->is_local;
	log_debug("queue: %s: page of %d row(s) (%.3f)", d->name, j->nrows, wall_now());
	if (j->failed || j->nrows < j->limit)
		d->eof = 1;
	for (int i = 0; i < j->nrows; i++) {
		struct row *r = &j->rows[i];
		d->cur_next = r->next_attempt;
		d->cur_id = r->id;
		if (r->m == NULL || r->m->body == NULL) {
			/* Gone (deleted) or unreadable: leave the row alone. */
			mc_put(&dl->mc, r->m);
			free(r->rcpt);
			continue;
		}
		if (d->open != NULL && (d->open->m != r->m || d->open->n == d->open->cap))
			close_open(d);
		/* Each row holds its own reference on the message. */
		if (d->open == NULL)
			d->open = batch_new(d, r->m, r->m->verp ? 1 : maxr);
		d->open->rows[d->open->n++] = *r;
	}
	free(j->rows);
	j->rows = NULL;
	if (d->eof)
		close_open(d);
	pump(d);
	dom_check_done(d);
}

/* --- scans --- */

static void
on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct deliver *dl = arg;

	dl->timer_at = 0;
	scan_start(dl);
}

/* Makes sure a scan starts by time t (epoch seconds). */
static void
wake_at(struct deliver *dl, int64_t t)
{
	int64_t now = (int64_t)time(NULL);
	struct timeval tv;

	if (t <= now)
		t = now + 1;
	if (dl->timer_at != 0 && dl->timer_at <= t)
		return;
	dl->timer_at = t;
	tv.tv_sec = t - now;
	tv.tv_usec = 0;
	evtimer_add(dl->timer, &tv);
}

static void
scan_continue(struct deliver *dl)
{
	struct job *j;
	int room = dl->max_active - dl->nactive;

	if (room <= 0) {
		dl->scan_blocked = 1;
		return;
	}
	j = job_new(J_DOMAINS, NULL);
	snprintf(j->after, sizeof(j->after), "%s", dl->scan_after);
	j->now = (int64_t)time(NULL);
	j->limit = room < DOMAIN_LIST_PAGE ? room : DOMAIN_LIST_PAGE;
	dl->list_out = 1;
	worker_post(&dl->reader, j);
}

static void
scan_start(struct deliver *dl)
{
	if (dl->stopping)
		return;
	if (dl->scanning) {
		dl->scan_again = 1;
		return;
	}
	dl->scanning = 1;
	dl->scan_again = 0;
	dl->scan_after[0] = '\0';
	scan_continue(dl);
}

static void
scan_domains_done(struct deliver *dl, struct job *j)
{
	dl->list_out = 0;
	log_debug("queue: scan listed %d domain(s) with due mail (%.3f)", j->nnames, wall_now());
	for (int i = 0; i < j->nnames; i++) {
		struct dom *d = dom_find(dl, j->names[i], 1);
		if (d->active || d->pending_writes > 0)
			d->again = 1;
		else
			activate(d);
		snprintf(dl->scan_after, sizeof(dl->scan_after), "%s", j->names[i]);
		free(j->names[i]);
	}
	free(j->names);
	j->names = NULL;
	if (!j->failed && j->nnames == j->limit) {
		scan_continue(dl);
		return;
	}
	/* The pass is over: when is the next row due? */
	dl->scanning = 0;
	struct job *nd = job_new(J_NEXT_DUE, NULL);
	nd->now = (int64_t)time(NULL);
	worker_post(&dl->reader, nd);
	if (dl->scan_again)
		scan_start(dl);
}

static void
on_next_due(struct deliver *dl, struct job *j)
{
	long long wait = dl->conf->queue_run_interval > 0 ? dl->conf->queue_run_interval : 60;

	wake_at(dl, (int64_t)time(NULL) + wait);
	if (!j->failed && j->when > 0)
		wake_at(dl, j->when);
}

static void
on_done(evutil_socket_t fd, short what, void *arg)
{
	struct deliver *dl = arg;
	struct job *list, *j, *next;
	uint64_t v;
	int kick = 0;

	(void)!read(fd, &v, sizeof(v));
	pthread_mutex_lock(&dl->done_mu);
	list = dl->done_head;
	dl->done_head = dl->done_tail = NULL;
	pthread_mutex_unlock(&dl->done_mu);
	for (j = list; j != NULL; j = next) {
		next = j->next;
		switch (j->kind) {
		case J_DOMAINS:
			scan_domains_done(dl, j);
			break;
		case J_PAGE:
			on_page(j);
			break;
		case J_NEXT_DUE:
			on_next_due(dl, j);
			break;
		case J_RESULTS:
			if (j->dsns > 0)
				kick = 1;
			for (int i = 0; i < j->nres; i++) {
				if (strcmp(j->res[i].state, DB_Q_DEFERRED) == 0)
					wake_at(dl, j->res[i].next_attempt);
				free(j->res[i].reply);
				free(j->res[i].rcpt);
				free(j->res[i].remote);
				free(j->res[i].diag);
				free(j->res[i].to);
			}
			free(j->res);
			if (j->m != NULL)
				mc_put(&dl->mc, j->m);
			dl->writes_out--;
			dl->results_out -= j->nres;
			j->d->pending_writes--;
			dom_check_done(j->d);
			conn_released(dl);
			break;
		}
		free(j);
	}
	if (kick)
		scan_start(dl);
}

static void
on_kick(evutil_socket_t fd, short what, void *arg)
{
	uint64_t v;

	(void)!read(fd, &v, sizeof(v));
	scan_start(arg);
}

static void
on_control(void *arg, const char *what)
{
	struct deliver *dl = arg;

	log_info("queue: %s requested", what);
	scan_start(dl);
}

void
deliver_on_spool(void (*fn)(void *arg), void *arg)
{
	pthread_mutex_lock(&spool_hook_mu);
	spool_hook = fn;
	spool_hook_arg = arg;
	pthread_mutex_unlock(&spool_hook_mu);
}

void
deliver_kick(void)
{
	int fd = atomic_load(&kick_fd);
	uint64_t one = 1;

	if (fd >= 0)
		(void)!write(fd, &one, sizeof(one));
}

/* --- start and stop --- */

static int
setup_relay(struct deliver *dl)
{
	const struct conf *c = dl->conf;
	const char *h = c->relay_host, *colon;
	size_t len;

	if (h == NULL || *h == '\0')
		return 0;
	if (*h == '[') {
		const char *end = strchr(h, ']');
		if (end == NULL)
			goto bad;
		len = (size_t)(end - h - 1);
		dl->relay_name = strndup(h + 1, len);
		colon = end[1] == ':' ? end + 1 : NULL;
	} else {
		colon = strrchr(h, ':');
		len = colon ? (size_t)(colon - h) : strlen(h);
		dl->relay_name = strndup(h, len);
	}
	snprintf(dl->relay_port, sizeof(dl->relay_port), "%s", colon ? colon + 1 : "25");
	if (atoi(dl->relay_port) <= 0 || atoi(dl->relay_port) > 65535)
		goto bad;
	if (c->relay_user != NULL && *c->relay_user) {
		FILE *f = c->relay_password_file && *c->relay_password_file
		              ? fopen(c->relay_password_file, "r")
		              : NULL;
		char line[512] = "";
		if (f == NULL) {
			log_warn("relay_password_file %s", c->relay_password_file);
			return -1;
		}
		if (fgets(line, sizeof(line), f) == NULL)
			line[0] = '\0';
		fclose(f);
		line[strcspn(line, "\r\n")] = '\0';
		dl->relay_pass = strdup(line);
		dl->ocfg.auth_user = c->relay_user;
		dl->ocfg.auth_pass = dl->relay_pass;
	}
	return 0;
bad:
	log_warnx("relay_host = %s: expected host:port or [address]:port", h);
	return -1;
}

struct deliver *
deliver_start(struct event_base *base, const struct conf *conf)
{
	struct deliver *dl = calloc(1, sizeof(*dl));
	struct db *w0;
	char err[512], path[4200];

	if (dl == NULL)
		return NULL;
	dl->base = base;
	dl->conf = conf;
	dl->kick_efd = dl->done_fd = -1;
	TAILQ_INIT(&dl->want);
	TAILQ_INIT(&dl->dns_wait);
	TAILQ_INIT(&dl->idle);
	mc_init(&dl->mc);
	pthread_mutex_init(&dl->done_mu, NULL);
	/* Domains walked at once: enough that connections never wait for
	 * the reader; each holds at most a few pages of rows. */
	dl->max_active = (int)conf->delivery_max_connections;
	if (dl->max_active < 16)
		dl->max_active = 16;
	dl->ocfg.helo = conf->hostname;
	dl->ocfg.connect_timeout = (int)conf->connect_timeout;
	dl->ocfg.reply_timeout = (int)conf->smtp_reply_timeout;
	if (setup_relay(dl) < 0)
		goto fail;
	if (conf->delivery_starttls || dl->ocfg.auth_user) {
		dl->ssl = SSL_CTX_new(TLS_client_method());
		if (dl->ssl == NULL) {
			log_warnx("delivery: cannot set up TLS");
			goto fail;
		}
		/* Opportunistic TLS: any certificate will do (RFC 7435). */
		SSL_CTX_set_verify(dl->ssl, SSL_VERIFY_NONE, NULL);
		dl->ocfg.ssl = dl->ssl;
	}
	if ((dl->dns = dns_new(base, conf->dns_servers, err, sizeof(err))) == NULL) {
		log_warnx("delivery: %s", err);
		goto fail;
	}
	dl->done_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	dl->kick_efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (dl->done_fd < 0 || dl->kick_efd < 0) {
		log_warn("delivery: eventfd");
		goto fail;
	}
	dl->done_ev = event_new(base, dl->done_fd, EV_READ | EV_PERSIST, on_done, dl);
	dl->kick_ev = event_new(base, dl->kick_efd, EV_READ | EV_PERSIST, on_kick, dl);
	dl->timer = evtimer_new(base, on_timer, dl);
	event_add(dl->done_ev, NULL);
	event_add(dl->kick_ev, NULL);
	if ((w0 = db_open(conf->database, 0, err, sizeof(err))) == NULL ||
	    verp_key_load(w0, &dl->key) < 0) {
		log_warnx("delivery: no key to sign VERP addresses: %s", w0 ? db_errmsg(w0) : err);
		db_close(w0);
		goto fail;
	}
	db_close(w0);
	if (worker_start(&dl->reader, dl, reader_main, "queue-reader") < 0 ||
	    worker_start(&dl->writer, dl, writer_main, "queue-writer") < 0)
		goto fail;

	control_path(conf->control_file, conf->database, path, sizeof(path));
	if ((dl->control = control_listen(base, path, on_control, dl)) == NULL)
		log_warnx("delivery: no control notifications on %s; queue changes are seen at "
		          "the next scan",
		          path);
	atomic_store(&kick_fd, dl->kick_efd);
	log_info("delivery: started (%s, %lld connections, %lld per domain, %lld recipients per "
	         "transaction)",
	         dl->relay_name ? "via relay_host" : "direct to MX", conf->delivery_max_connections,
	         conf->domain_concurrency, conf->max_rcpt_per_transaction);
	scan_start(dl);
	return dl;
fail:
	deliver_stop(dl);
	return NULL;
}

static void
free_job(struct deliver *dl, struct job *j)
{
	for (int i = 0; i < j->nnames; i++)
		free(j->names[i]);
	free(j->names);
	for (int i = 0; i < j->nrows; i++) {
		free(j->rows[i].rcpt);
		mc_put(&dl->mc, j->rows[i].m);
	}
	free(j->rows);
	for (int i = 0; i < j->nres; i++) {
		free(j->res[i].reply);
		free(j->res[i].rcpt);
		free(j->res[i].remote);
		free(j->res[i].diag);
		free(j->res[i].to);
	}
	free(j->res);
	if (j->m != NULL)
		mc_put(&dl->mc, j->m);
	free(j);
}

/* Everything the scheduler holds, once the loop and the workers are done.
 * Transactions abandoned at the shutdown deadline keep their sessions and
 * the message bodies those reference: they go with the process. */
static void
free_all(struct deliver *dl)
{
	struct job *j, *next;
	struct batch *b;

	for (j = dl->done_head; j != NULL; j = next) {
		next = j->next;
		free_job(dl, j);
	}
	dl->done_head = dl->done_tail = NULL;
	if (dl->conns > 0)
		return;
	for (int i = 0; i < DOM_BUCKETS; i++) {
		struct dom *d, *dn;
		for (d = dl->doms[i]; d != NULL; d = dn) {
			dn = d->hnext;
			while ((b = TAILQ_FIRST(&d->ready)) != NULL) {
				TAILQ_REMOVE(&d->ready, b, link);
				batch_free(b);
			}
			if (d->open != NULL)
				batch_free(d->open);
			dns_mx_unref(d->mx);
			if (d->pause_ev != NULL)
				event_free(d->pause_ev);
			free(d->name);
			free(d);
		}
		dl->doms[i] = NULL;
	}
	for (int i = 0; i < MSG_BUCKETS; i++) {
		struct qmsg *m, *mn;
		for (m = dl->mc.h[i]; m != NULL; m = mn) {
			mn = m->hnext;
			qmsg_free(m);
		}
		dl->mc.h[i] = NULL;
	}
	pthread_mutex_destroy(&dl->mc.mu);
}

void
deliver_stop(struct deliver *d)
{
	struct pooled *p;

	if (d == NULL)
		return;
	d->stopping = 1;
	atomic_store(&kick_fd, -1);
	while ((p = TAILQ_FIRST(&d->idle)) != NULL) {
		TAILQ_REMOVE(&d->idle, p, link);
		d->nidle--;
		smtp_out_free(p->s);
		free(p);
	}
	/* The writer commits what it holds before it stops. */
	worker_stop(&d->reader);
	worker_stop(&d->writer);
	control_close(d->control);
	if (d->done_ev)
		event_free(d->done_ev);
	if (d->kick_ev)
		event_free(d->kick_ev);
	if (d->timer)
		event_free(d->timer);
	if (d->done_fd >= 0)
		close(d->done_fd);
	if (d->kick_efd >= 0)
		close(d->kick_efd);
	dns_free(d->dns);
	if (d->ssl)
		SSL_CTX_free(d->ssl);
	free(d->relay_name);
	free(d->relay_pass);
	free_all(d);
	pthread_mutex_destroy(&d->done_mu);
	free(d);
}

/* --- server/main.c's subsystem table --- */

int
deliver_sub_start(struct daemon *d, char *err, size_t errlen)
{
	running = deliver_start(d->base, d->conf);
	if (running == NULL) {
		snprintf(err, errlen, "cannot start delivery (see the lines above)");
		return -1;
	}
	return 0;
}

void
deliver_sub_shutdown(struct daemon *d)
{
	struct pooled *p;

	if (running == NULL)
		return;
	running->stopping = 1;
	while ((p = TAILQ_FIRST(&running->idle)) != NULL) {
		TAILQ_REMOVE(&running->idle, p, link);
		running->nidle--;
		smtp_out_close(p->s);
		free(p);
	}
}

int
deliver_sub_busy(struct daemon *d)
{
	if (running == NULL || running->finished)
		return 0;
	return running->conns > 0 || running->writes_out > 0;
}

void
deliver_sub_finish(struct daemon *d)
{
	/* Transactions still open are abandoned: their rows were never
	 * marked, so they are due again at the next start. */
	if (running != NULL)
		running->finished = 1;
}

void
deliver_sub_free(struct daemon *d)
{
	deliver_stop(running);
	running = NULL;
}
