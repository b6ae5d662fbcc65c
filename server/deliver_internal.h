/*
 * deliver_internal.h - what the delivery scheduler's files share (private
 * to server/deliver*.c; everyone else uses deliver.h).
 *
 *   deliver.c         start and stop, the worker threads and the wiring:
 *                     finished jobs back on the loop, kicks, control
 *   deliver_scan.c    the queue scan, domain activation and the reader
 *                     thread (due domains, pages of rows, bodies)
 *   deliver_pool.c    batches onto connections: the pool, global and
 *                     per-domain limits, throttling, body forms
 *   deliver_result.c  results, retries and DSNs; the writer thread
 *   deliver_local.c   delivery to our own list addresses (into the spool)
 *   deliver_personal.c the copies of a personalized post, rendered per member
 *   msgcache.c        the message cache (msgcache.h)
 *   deliver_dkim.c    DKIM keys per signing domain, signing a message form
 *
 * Threads: the loop owns struct deliver, its domains, batches and pool;
 * the reader and the writer see only the jobs handed to them, the
 * read-only configuration and key, and the message cache (own mutex);
 * the dkim-signer threads see only the batch of their J_SIGN job (the
 * loop leaves it alone until the job is back) and the keys (refcounted).
 */
#ifndef FANMAIL_DELIVER_INTERNAL_H
#define FANMAIL_DELIVER_INTERNAL_H

#include "lists/oneclick.h"
#include "lists/verp.h"
#include "server/deliver_dkim.h"
#include "server/dns.h"
#include "server/msgcache.h"
#include "server/smtp_out.h"
#include "server/workq.h"

#include <event2/event.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/queue.h>
#include <time.h>

struct conf;
struct control;
struct db;

#define DOM_BUCKETS 4096

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
	int n, cap, max; /* rows held, room for, most it may take */
	struct row *rows;
	const char **rcpts;
	struct smtp_result *res;
	struct smtp_txn txn;
	char from[600];
	struct smtp_sess *sess;
	char *pbody; /* a personal message: this copy, prepared for DATA */
	size_t plen;
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

enum job_kind { J_DOMAINS, J_PAGE, J_NEXT_DUE, J_RESULTS, J_SIGN };

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
	struct workq_item link; /* first (workq.h): the next job in a list */
	enum job_kind kind;
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
	/* J_SIGN: a personal copy to render and sign for b's session,
	 * whose extensions are ext */
	struct batch *b;
	int ext;
};

#define MAX_SIGNERS 16

struct worker {
	pthread_t th;
	struct workq *q; /* jobs from the loop */
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
	struct workq *done; /* jobs the workers finished, back on the loop */
	struct workq *kick; /* deliver_kick() from any thread: scan now */
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
	int writes_out; /* result jobs at the writer (or in wpend) */
	/* Result jobs of this loop iteration, handed to the writer in one
	 * post by wflush (an event made active by the first): one wake-up
	 * of the writer for all the transactions that ended together, not
	 * one each. */
	struct workq_item *wpend, **wpend_tail;
	struct event *wflush;
	int results_out;     /* the rows in them: taken by receivers, not committed */
	struct verp_key key; /* signs VERP senders; read-only after the start */
	/* Personal messages (deliver_personal.c): the one-click keys, reloaded
	 * by the reader at each scan, read by the loop and the writer. */
	pthread_mutex_t okeys_mu;
	struct oneclick_keys okeys;
	char http_base[512];
	int nobase_warned;
	/* DKIM (deliver_dkim.h): the keys per domain, read by the reader;
	 * the reader's signer (batched messages, signed once in the cache);
	 * the signing threads for personal copies, one per core, fed
	 * through signq (J_SIGN jobs, back through done). */
	struct dkim_cache dk;
	struct dkim_signer *reader_signer;
	struct workq *signq;
	pthread_t signers[MAX_SIGNERS];
	int nsigners;
	/* Told after each commit that put mail into the inbound spool
	 * (deliver_on_spool() sets it from any thread; the writer calls it). */
	pthread_mutex_t spool_hook_mu;
	void (*spool_hook)(void *arg);
	void *spool_hook_arg;
};

/* An outbound message's body as stored (copy_orig fills it; free orig). */
struct dsn_acc {
	char *orig;
	size_t len;
};

static inline double
wall_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static inline struct job *
job_next(const struct job *j)
{
	return (struct job *)j->link.next;
}

/* deliver.c: the workers and the loop's side of them */
void worker_post(struct worker *w, struct job *j);
void done_post(struct deliver *dl, struct job *list);
struct job *worker_take(struct worker *w);
struct job *job_new(enum job_kind kind, struct dom *d);
void spool_hook_call(struct deliver *dl);

/* deliver_scan.c */
void *reader_main(void *arg);
void scan_start(struct deliver *dl);
void scan_domains_done(struct deliver *dl, struct job *j);
void on_next_due(struct deliver *dl, struct job *j);
void on_page(struct job *j);
void on_timer(evutil_socket_t fd, short what, void *arg);
void wake_at(struct deliver *dl, int64_t t);
void request_page(struct dom *d);
void dom_check_done(struct dom *d);

/* deliver_pool.c */
void pump(struct dom *d);
void conn_released(struct deliver *dl);
struct batch *batch_new(struct dom *d, struct qmsg *m, int max);
/* Appends a row (b->n < b->max), growing the arrays as needed: a batch
 * takes memory for the rows it holds, not for max_rcpt_per_transaction,
 * so thousands of one-recipient notices waiting for connections stay
 * small. */
void batch_add(struct batch *b, const struct row *r);
/* A J_SIGN job is back: b's copy is ready, send it on b's session. */
void batch_signed(struct batch *b);

/* deliver_result.c */
void *writer_main(void *arg);
struct job *results_job(struct batch *b);
void row_result(struct batch *b, struct job *j, int i, int code, const char *text, const char *dsn,
                const char *relay, int conn_use, int ours);
void batch_free(struct batch *b);
void batch_finish(struct batch *b, struct job *j);
/* Hands the writer the result jobs batch_finish() held back (loop). */
void results_flush(struct deliver *dl);
void batch_all(struct batch *b, int code, const char *text, const char *dsn);
void copy_orig(void *arg, const unsigned char *body, size_t len);

/* deliver_personal.c */
void personal_init(struct deliver *dl);
int personal_keys_reload(struct deliver *dl, struct db *db);
/* The copy of a personal message's stored body raw[0..len) for rcpt, as
 * stored (CRLF, not dot-stuffed); NULL when out of memory. */
char *personal_copy(struct deliver *dl, int64_t list_id, const char *env_from, const char *raw,
                    size_t len, const char *rcpt, size_t *outlen);
/* choose_body() for a personal message: renders b's one recipient's copy
 * into b->pbody in the form the server takes, signed with s (NULL, or a
 * message without keys: unsigned). The loop calls it only for messages
 * that are not signed; signing threads for the others (J_SIGN). */
void personal_choose_body(struct batch *b, int ext, struct dkim_signer *s);

/* deliver_local.c */
int local_deliver(struct worker *w, struct job *j);
void batch_local(struct batch *b);

#endif
