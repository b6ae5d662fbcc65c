/*
 * deliver.c - the outbound scheduler (see deliver.h): start and stop, the
 * two worker threads and the wiring between them and the loop. The work
 * itself is in the files listed in deliver_internal.h.
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
 * Threads: the loop (everything except the workers), the reader
 * (db reads: domain lists, pages, message bodies, DKIM keys; it signs the
 * batched messages as it caches them), the writer (results, DSNs) and the
 * dkim-signer threads (one per core: personalized copies rendered and
 * signed off the loop). Jobs go to each worker through its work queue and come back to
 * the loop through `done` (server/workq.h); deliver_kick() wakes the loop
 * through `kick`. The message cache is shared under its own mutex.
 */
#include "server/deliver.h"
#include "server/deliver_internal.h"

#include "conf/conf.h"
#include "db/db.h"
#include "db/queue.h"
#include "server/control.h"
#include "server/daemon.h"
#include "server/log.h"
#include "server/workq.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* --- workers --- */

void
worker_post(struct worker *w, struct job *j)
{
	j->link.next = NULL;
	workq_post(w->q, &j->link);
}

void
done_post(struct deliver *dl, struct job *list)
{
	workq_post(dl->done, &list->link);
}

/* Takes every queued job (NULL when stopping with nothing left). */
struct job *
worker_take(struct worker *w)
{
	return (struct job *)workq_wait(w->q, 0, -1);
}

/* A signing thread: renders and signs personal copies (J_SIGN), each
 * thread with its own signer over the shared keys. */
static void *
signer_main(void *arg)
{
	struct deliver *dl = arg;
	struct dkim_signer *s = dkim_signer_new();
	struct workq_item *it;

	if (s == NULL)
		log_warnx("delivery: out of memory for a DKIM signer: its copies go unsigned");
	while ((it = workq_wait(dl->signq, 1, -1)) != NULL) {
		struct job *j = (struct job *)it;
		j->link.next = NULL;
		personal_choose_body(j->b, j->ext, s);
		done_post(dl, j);
	}
	dkim_signer_free(s);
	return NULL;
}

static void
signers_start(struct deliver *dl)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	if (n < 1)
		n = 1;
	if (n > MAX_SIGNERS)
		n = MAX_SIGNERS;
	if ((dl->signq = workq_new(NULL, NULL, NULL)) == NULL)
		return;
	for (long i = 0; i < n; i++) {
		if (pthread_create(&dl->signers[i], NULL, signer_main, dl) != 0)
			break;
		pthread_setname_np(dl->signers[i], "dkim-signer");
		dl->nsigners++;
	}
	if (dl->nsigners == 0) {
		/* Without signing threads the loop renders the copies itself,
		 * unsigned: it never signs. */
		log_warnx("delivery: cannot start the DKIM signing threads: personal copies go "
		          "unsigned");
		workq_free(dl->signq);
		dl->signq = NULL;
	}
}

static void
signers_stop(struct deliver *dl)
{
	struct workq_item *it, *next;

	if (dl->signq == NULL)
		return;
	workq_stop(dl->signq);
	for (int i = 0; i < dl->nsigners; i++)
		pthread_join(dl->signers[i], NULL);
	for (it = workq_take(dl->signq); it != NULL; it = next) {
		next = it->next;
		free(it);
	}
	workq_free(dl->signq);
	dl->signq = NULL;
}

static int
worker_start(struct worker *w, struct deliver *dl, void *(*fn)(void *), const char *name)
{
	char err[512];

	w->dl = dl;
	if ((w->q = workq_new(NULL, NULL, NULL)) == NULL)
		fatalx("out of memory");
	if ((w->db = db_open(dl->conf->database, 0, err, sizeof(err))) == NULL) {
		log_warnx("delivery: %s", err);
		workq_free(w->q);
		w->q = NULL;
		return -1;
	}
	if (pthread_create(&w->th, NULL, fn, w) != 0) {
		log_warnx("delivery: cannot start a thread");
		db_close(w->db);
		w->db = NULL;
		workq_free(w->q);
		w->q = NULL;
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
	workq_stop(w->q);
	pthread_join(w->th, NULL);
	db_close(w->db);
	w->db = NULL;
	workq_free(w->q);
	w->q = NULL;
}

struct job *
job_new(enum job_kind kind, struct dom *d)
{
	struct job *j = calloc(1, sizeof(*j));

	if (j == NULL)
		fatalx("out of memory");
	j->kind = kind;
	j->d = d;
	return j;
}

/* The result jobs of the transactions that ended in this loop iteration,
 * to the writer at once (batch_finish). */
static void
on_wflush(evutil_socket_t fd, short what, void *arg)
{
	results_flush(arg);
}

/* Jobs the workers finished, on the loop thread. */
static void
on_done(void *arg, struct workq_item *items)
{
	struct deliver *dl = arg;
	struct job *list = (struct job *)items, *j, *next;
	int kick = 0;

	for (j = list; j != NULL; j = next) {
		next = job_next(j);
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
		case J_SIGN:
			batch_signed(j->b);
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
on_kick(void *arg, struct workq_item *none)
{
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
deliver_on_spool(struct deliver *dl, void (*fn)(void *arg), void *arg)
{
	pthread_mutex_lock(&dl->spool_hook_mu);
	dl->spool_hook = fn;
	dl->spool_hook_arg = arg;
	pthread_mutex_unlock(&dl->spool_hook_mu);
}

void
spool_hook_call(struct deliver *dl)
{
	pthread_mutex_lock(&dl->spool_hook_mu);
	if (dl->spool_hook != NULL)
		dl->spool_hook(dl->spool_hook_arg);
	pthread_mutex_unlock(&dl->spool_hook_mu);
}

void
deliver_kick(struct deliver *dl)
{
	if (dl != NULL && dl->kick != NULL)
		workq_wake(dl->kick);
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
	TAILQ_INIT(&dl->want);
	TAILQ_INIT(&dl->dns_wait);
	TAILQ_INIT(&dl->idle);
	mc_init(&dl->mc);
	dkc_init(&dl->dk);
	dl->mc.dk = &dl->dk;
	if ((dl->reader_signer = dkim_signer_new()) == NULL)
		log_warnx("delivery: out of memory for a DKIM signer: mail goes unsigned");
	dl->mc.signer = dl->reader_signer;
	personal_init(dl);
	pthread_mutex_init(&dl->spool_hook_mu, NULL);
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
	dl->done = workq_new(base, on_done, dl);
	dl->kick = workq_new(base, on_kick, dl);
	if (dl->done == NULL || dl->kick == NULL) {
		log_warnx("delivery: cannot make the work queues: out of memory");
		goto fail;
	}
	dl->timer = evtimer_new(base, on_timer, dl);
	dl->wpend_tail = &dl->wpend;
	dl->wflush = event_new(base, -1, 0, on_wflush, dl);
	if ((w0 = db_open(conf->database, 0, err, sizeof(err))) == NULL ||
	    verp_key_load(w0, &dl->key) < 0) {
		log_warnx("delivery: no key to sign VERP addresses: %s", w0 ? db_errmsg(w0) : err);
		db_close(w0);
		goto fail;
	}
	if (personal_keys_reload(dl, w0) < 0)
		log_warnx("delivery: no one-click keys (%s): personal copies carry only "
		          "mailto:LIST-leave",
		          db_errmsg(w0));
	db_close(w0);
	signers_start(dl);
	if (worker_start(&dl->reader, dl, reader_main, "queue-reader") < 0 ||
	    worker_start(&dl->writer, dl, writer_main, "queue-writer") < 0)
		goto fail;

	control_path(conf->control_file, conf->database, path, sizeof(path));
	if ((dl->control = control_listen(base, path, on_control, dl)) == NULL)
		log_warnx("delivery: no control notifications on %s; queue changes are seen at "
		          "the next scan",
		          path);
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

	for (j = dl->done ? (struct job *)workq_take(dl->done) : NULL; j != NULL; j = next) {
		next = job_next(j);
		free_job(dl, j);
	}
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
	mc_free_all(&dl->mc);
}

void
deliver_stop(struct deliver *d)
{
	struct pooled *p;

	if (d == NULL)
		return;
	d->stopping = 1;
	while ((p = TAILQ_FIRST(&d->idle)) != NULL) {
		TAILQ_REMOVE(&d->idle, p, link);
		d->nidle--;
		smtp_out_free(p->s);
		free(p);
	}
	/* The writer commits what it holds before it stops. */
	if (d->writer.q != NULL)
		results_flush(d);
	if (d->wflush)
		event_free(d->wflush);
	d->wflush = NULL;
	worker_stop(&d->reader);
	worker_stop(&d->writer);
	signers_stop(d);
	control_close(d->control);
	if (d->timer)
		event_free(d->timer);
	dns_free(d->dns);
	if (d->ssl)
		SSL_CTX_free(d->ssl);
	free(d->relay_name);
	free(d->relay_pass);
	free_all(d);
	workq_free(d->done);
	workq_free(d->kick);
	pthread_mutex_destroy(&d->spool_hook_mu);
	pthread_mutex_destroy(&d->okeys_mu);
	dkim_signer_free(d->reader_signer);
	if (d->mc.dk != NULL)
		dkc_free_all(&d->dk);
	free(d);
}

/* --- server/main.c's subsystem table --- */

int
deliver_sub_start(struct daemon *d, char *err, size_t errlen)
{
	d->deliver = deliver_start(d->base, d->conf);
	if (d->deliver == NULL) {
		snprintf(err, errlen, "cannot start delivery (see the lines above)");
		return -1;
	}
	return 0;
}

void
deliver_sub_shutdown(struct daemon *d)
{
	struct pooled *p;

	if (d->deliver == NULL)
		return;
	d->deliver->stopping = 1;
	while ((p = TAILQ_FIRST(&d->deliver->idle)) != NULL) {
		TAILQ_REMOVE(&d->deliver->idle, p, link);
		d->deliver->nidle--;
		smtp_out_close(p->s);
		free(p);
	}
}

int
deliver_sub_busy(struct daemon *d)
{
	if (d->deliver == NULL || d->deliver->finished)
		return 0;
	return d->deliver->conns > 0 || d->deliver->writes_out > 0;
}

void
deliver_sub_finish(struct daemon *d)
{
	/* Transactions still open are abandoned: their rows were never
	 * marked, so they are due again at the next start. */
	if (d->deliver != NULL)
		d->deliver->finished = 1;
}

void
deliver_sub_free(struct daemon *d)
{
	deliver_stop(d->deliver);
	d->deliver = NULL;
}
