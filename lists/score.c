/*
 * score.c - what a bounce does to a member, notices to members and owners,
 * probes, and the timed step for disabled members. See score.h.
 */
#include "lists/score.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "db/bounces.h"
#include "db/lists.h"
#include "db/queue.h"
#include "lists/list_conf.h"
#include "lists/verp.h"
#include "mail/build.h"

#define MAX_OWNERS 32

static void outf(char *out, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void
outf(char *out, size_t len, const char *fmt, ...)
{
	size_t o = strlen(out);
	va_list ap;

	if (o + 1 >= len)
		return;
	va_start(ap, fmt);
	vsnprintf(out + o, len - o, fmt, ap);
	va_end(ap);
}

int
score_settings_load(struct db *db, int64_t list_id, struct score_settings *s)
{
	struct list_conf lc;
	int rc = list_conf_load(db, list_id, &lc);

	s->threshold = (double)lc.bounce_threshold;
	s->decay_after = lc.bounce_decay_after;
	s->disabled_wait = lc.bounce_disabled_wait;
	s->notify_owner = lc.bounce_notify_owner;
	s->notify_member = lc.bounce_notify_member;
	s->disabled_action = (enum score_disabled_action)lc.bounce_disabled_action;
	s->complaint_action = (enum score_complaint_action)lc.complaint_action;
	list_conf_free(&lc);
	return rc;
}

double
score_increment(enum bounce_class c)
{
	switch (c) {
	case BOUNCE_HARD:
		return 1.0;
	case BOUNCE_SOFT:
		return 0.5;
	default:
		return 0.0;
	}
}

double
score_decay(double score, int64_t last_scored, int64_t now, int64_t period)
{
	int64_t periods;

	if (period <= 0 || last_scored <= 0 || now <= last_scored)
		return score;
	periods = (now - last_scored) / period;
	for (int64_t i = 0; i < periods && score > 0.0; i++) {
		score /= 2.0;
		if (score < 0.01)
			score = 0.0;
	}
	return score;
}

int
score_may_raise(int64_t last_scored, int64_t now)
{
	return last_scored <= 0 || now - last_scored >= SCORE_DAY;
}

/* ---- notices ---- */

struct owners {
	char addr[MAX_OWNERS][321];
	size_t n;
};

static int
owner_cb(const char *address, void *arg)
{
	struct owners *o = arg;

	if (o->n < MAX_OWNERS)
		snprintf(o->addr[o->n++], sizeof(o->addr[0]), "%s", address);
	return 0;
}

static const char *
domain_of(const char *addr)
{
	const char *at = strrchr(addr, '@');
	return at ? at + 1 : "";
}

/* Queues a notice from LIST-owner to rcpts (n of them); env_from is the
 * envelope sender (LIST-bounces, or a VERP address for a probe). */
static int
queue_notice(struct db *db, const struct conf *conf, const struct score_list *l, const char *kind,
             const char *env_from, int verp, char rcpts[][321], size_t n, const char *subject,
             const char *body, char qid[DB_QID_LEN])
{
	char from[400], to[MAX_OWNERS * 330], domains[MAX_OWNERS][256];
	struct outq_rcpt r[MAX_OWNERS];
	char listid[400];
	struct build_header hdr[] = {{"List-Id", listid}, {"Precedence", "bulk"}};
	struct build_msg bm = {0};
	struct outq_msg m = {0};
	char *msg = NULL;
	size_t len = 0, o = 0;
	const char *why;
	int rc;

	if (n == 0)
		return 0;
	snprintf(from, sizeof(from), "%s-owner@%s", l->local, l->domain);
	snprintf(listid, sizeof(listid), "<%s.%s>", l->local, l->domain);
	to[0] = '\0';
	for (size_t i = 0; i < n && i < MAX_OWNERS; i++) {
		o += (size_t)snprintf(to + o, sizeof(to) - o, "%s%s", i ? ", " : "", rcpts[i]);
		if (o >= sizeof(to))
			return -1;
		snprintf(domains[i], sizeof(domains[i]), "%s", domain_of(rcpts[i]));
		for (char *p = domains[i]; *p; p++)
			if (*p >= 'A' && *p <= 'Z')
				*p = (char)(*p + 32);
		r[i].addr = rcpts[i];
		r[i].domain = domains[i];
		r[i].member_id = 0;
	}
	bm.from_addr = from;
	bm.to_addr = to;
	bm.subject = subject;
	bm.hostname = conf->hostname;
	bm.auto_submitted = "auto-generated";
	bm.headers = hdr;
	bm.nheaders = sizeof(hdr) / sizeof(hdr[0]);
	bm.body = body;
	if (build_message(&bm, &msg, &len, NULL, &why) < 0)
		return -1;
	m.list_id = l->id;
	m.kind = kind;
	m.env_from = env_from;
	m.verp = verp;
	m.body = msg;
	m.len = len;
	m.lifetime = conf->max_queue_lifetime;
	rc = db_outq_add(db, &m, r, n < MAX_OWNERS ? n : MAX_OWNERS, qid, NULL);
	free(msg);
	return rc;
}

static int
notify_owners(struct db *db, const struct conf *conf, const struct score_list *l,
              const char *subject, const char *body)
{
	struct owners *o = calloc(1, sizeof(*o));
	char env_from[400], qid[DB_QID_LEN];
	int rc;

	if (o == NULL)
		return -1;
	if (db_list_role_each(db, l->id, DB_ROLE_OWNER, owner_cb, o) < 0) {
		free(o);
		return -1;
	}
	snprintf(env_from, sizeof(env_from), "%s-bounces@%s", l->local, l->domain);
	rc = queue_notice(db, conf, l, "notice", env_from, 0, o->addr, o->n, subject, body, qid);
	free(o);
	return rc;
}

static int
notify_one(struct db *db, const struct conf *conf, const struct score_list *l, const char *kind,
           const char *addr, int verp, const char *subject, const char *body, char qid[DB_QID_LEN])
{
	char rcpt[1][321], env_from[400];

	snprintf(rcpt[0], sizeof(rcpt[0]), "%s", addr);
	/* With verp set, delivery turns LIST-bounces@DOMAIN into the
	 * recipient's own LIST-bounces+local=domain@DOMAIN when it sends;
	 * the address must still be one VERP can encode. */
	if (verp && verp_encode(l->local, l->domain, addr, env_from, sizeof(env_from)) < 0)
		return -1;
	snprintf(env_from, sizeof(env_from), "%s-bounces@%s", l->local, l->domain);
	return queue_notice(db, conf, l, kind, env_from, verp, rcpt, 1, subject, body, qid);
}

/* ---- one bounce ---- */

static void
describe(const struct bounce_rcpt *b, char *buf, size_t len)
{
	snprintf(buf, len, "%s%s%s%s%s", b->status[0] ? b->status : "", b->status[0] ? " " : "",
	         b->reason ? b->reason : "", b->diag[0] ? ": " : "", b->diag);
}

static int
disable_member(struct db *db, const struct conf *conf, const struct score_list *l,
               const struct score_settings *s, const struct db_member *m, const char *why,
               const char *detail, int64_t now)
{
	char reason[600], subject[400], body[2048], qid[DB_QID_LEN];

	snprintf(reason, sizeof(reason), "%s: %.500s", why, detail);
	if (db_bounce_member_disable(db, m->id, reason, now) < 0)
		return -1;
	if (s->notify_member && strcmp(why, "bounce") == 0) {
		snprintf(subject, sizeof(subject), "Your delivery from %s@%s is disabled", l->local,
		         l->domain);
		snprintf(body, sizeof(body),
		         "Mail from the list %s@%s to your address %s has bounced too often,\n"
		         "so the list has stopped sending to you. You are still a member.\n\n"
		         "The last bounce said: %.600s\n\n"
		         "To get the list's mail again, write to %s-owner@%s.\n",
		         l->local, l->domain, m->address, detail, l->local, l->domain);
		if (notify_one(db, conf, l, "notice", m->address, 0, subject, body, qid) < 0)
			return -1;
	}
	if (s->notify_owner) {
		snprintf(subject, sizeof(subject), "%s@%s: %s disabled (%s)", l->local, l->domain,
		         m->address, why);
		snprintf(body, sizeof(body),
		         "The member %s of %s@%s has been disabled (not removed).\n\n"
		         "Reason: %s\nLast report: %.600s\n\n"
		         "Re-enable with: fanmail member set %s@%s %s status=enabled\n",
		         m->address, l->local, l->domain,
		         strcmp(why, "bounce") == 0 ? "its bounce score reached the threshold"
		                                    : "an abuse report (complaint) about it",
		         detail, l->local, l->domain, m->address);
		if (notify_owners(db, conf, l, subject, body) < 0)
			return -1;
	}
	return 0;
}

static int
remove_member(struct db *db, const struct conf *conf, const struct score_list *l,
              const struct score_settings *s, int64_t member_id, const char *address,
              const char *why)
{
	char subject[400], body[1024];

	if (db_bounce_member_remove(db, member_id) < 0)
		return -1;
	if (!s->notify_owner)
		return 0;
	snprintf(subject, sizeof(subject), "%s@%s: %s removed", l->local, l->domain, address);
	snprintf(body, sizeof(body), "The member %s of %s@%s has been removed: %s.\n", address,
	         l->local, l->domain, why);
	return notify_owners(db, conf, l, subject, body);
}

static int
policy_bounce(struct db *db, const struct conf *conf, const struct score_list *l,
              const struct score_settings *s, const struct bounce_rcpt *b, const char *domain,
              const char *detail, int64_t now, char *out, size_t outlen)
{
	int64_t n = 0;
	char subject[400], body[2048];

	if (db_bounce_count(db, l->id, "policy", domain, now - SCORE_DAY, &n) < 0)
		return -1;
	outf(out, outlen, "%s policy bounce (%lld from %s today), score unchanged", b->addr,
	     (long long)n, domain);
	/* The event just recorded is one of the n: the first of the day tells. */
	if (n != 1 || !s->notify_owner)
		return 0;
	snprintf(subject, sizeof(subject), "%s@%s: mail refused by %s for policy", l->local,
	         l->domain, domain);
	snprintf(body, sizeof(body),
	         "The mail server for %s refused mail from %s@%s for a policy reason\n"
	         "(spam filtering, DMARC/SPF/DKIM, a block list or the like). Members are\n"
	         "not penalised for this; it usually means the list's own mail or\n"
	         "server needs attention.\n\n"
	         "First report today, for %s: %.800s\n\n"
	         "Policy bounces per domain: fanmail bounces ls %s@%s\n",
	         domain, l->local, l->domain, b->addr, detail, l->local, l->domain);
	return notify_owners(db, conf, l, subject, body);
}

static int
complaint(struct db *db, const struct conf *conf, const struct score_list *l,
          const struct score_settings *s, const struct db_member *m, const char *detail,
          int64_t now, char *out, size_t outlen)
{
	if (m == NULL || s->complaint_action == SCORE_COMPLAINT_NONE) {
		outf(out, outlen, "%s complaint recorded", m ? m->address : "?");
		return 0;
	}
	if (s->complaint_action == SCORE_COMPLAINT_UNSUBSCRIBE) {
		outf(out, outlen, "%s complaint: unsubscribed", m->address);
		return remove_member(db, conf, l, s, m->id, m->address,
		                     "an abuse report (complaint) about mail to it");
	}
	if (strcmp(m->status, "enabled") != 0) {
		outf(out, outlen, "%s complaint recorded (member not enabled)", m->address);
		return 0;
	}
	outf(out, outlen, "%s complaint: disabled", m->address);
	return disable_member(db, conf, l, s, m, "complaint", detail, now);
}

int
score_bounce(struct db *db, const struct conf *conf, const struct score_list *l,
             const struct db_member *m, const struct bounce_rcpt *b, int64_t spool_id, int64_t now,
             char *out, size_t outlen)
{
	struct score_settings s;
	struct db_bounce_event e = {0};
	char detail[BOUNCE_DIAG_MAX + 64], domain[256];
	int64_t last = 0, since = 0, probe = 0;
	double score, inc = 0.0;

	if (strlen(out) > 0)
		outf(out, outlen, "; ");
	score_settings_load(db, l->id, &s);
	describe(b, detail, sizeof(detail));
	snprintf(domain, sizeof(domain), "%s", domain_of(m ? m->address : b->addr));
	for (char *p = domain; *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p + 32);

	e.list_id = l->id;
	e.member_id = m ? m->id : 0;
	e.spool_id = spool_id;
	e.address = m ? m->address : b->addr;
	e.domain = domain;
	e.cls = bounce_class_name(b->cls);
	e.status = b->status;
	e.reason = detail;
	e.time = now;

	if (m != NULL && b->cls != BOUNCE_POLICY && b->cls != BOUNCE_COMPLAINT) {
		if (db_bounce_last_scored(db, m->id, &last) < 0)
			return -1;
		if (strcmp(m->status, "enabled") == 0 && score_may_raise(last, now))
			inc = score_increment(b->cls);
	}
	e.scored = inc;
	if (db_bounce_add(db, &e) < 0)
		return -1;

	if (b->cls == BOUNCE_POLICY)
		return policy_bounce(db, conf, l, &s, b, domain, detail, now, out, outlen);
	if (b->cls == BOUNCE_COMPLAINT)
		return complaint(db, conf, l, &s, m, detail, now, out, outlen);
	if (m == NULL) {
		outf(out, outlen, "%s %s bounce: not a member", b->addr, e.cls);
		return 0;
	}
	if (strcmp(m->status, "disabled") == 0) {
		/* A bounce for a probed member is the probe's answer. */
		if (db_bounce_disabled_get(db, m->id, &since, &probe) == 0 && probe > 0 &&
		    now >= probe) {
			outf(out, outlen, "%s probe bounced: removed", m->address);
			return remove_member(
			    db, conf, l, &s, m->id, m->address,
			    "it stayed disabled for bounces and its probe bounced");
		}
		outf(out, outlen, "%s %s bounce: member already disabled", m->address, e.cls);
		return 0;
	}
	if (strcmp(m->status, "enabled") != 0) {
		outf(out, outlen, "%s %s bounce: member not enabled", m->address, e.cls);
		return 0;
	}
	score = score_decay(m->bounce_score, last, now, s.decay_after) + inc;
	if (db_bounce_member_update(db, m->id, score, now, detail) < 0)
		return -1;
	outf(out, outlen, "%s %s bounce %s: score %.1f%s", m->address, e.cls,
	     b->status[0] ? b->status : "-", score, inc == 0.0 ? " (not raised: one a day)" : "");
	if (s.threshold > 0 && score >= s.threshold) {
		outf(out, outlen, ", disabled");
		return disable_member(db, conf, l, &s, m, "bounce", detail, now);
	}
	return 0;
}

/* ---- the timed step ---- */

struct sweep {
	struct db *db;
	const struct conf *conf;
	int64_t now;
	int acted;
	char *out; /* what was done, for the log; NULL: not wanted */
	size_t outlen;
};

static int
sweep_one(int64_t list_id, int64_t member_id, const char *address, int64_t since,
          int64_t probe_sent, void *arg)
{
	struct sweep *w = arg;
	struct db_list dl;
	struct score_settings s;
	struct score_list l;
	char subject[400], body[1500], qid[DB_QID_LEN];

	if (db_list_get(w->db, list_id, &dl) < 0)
		return 0;
	l.id = list_id;
	l.local = dl.local;
	l.domain = dl.domain;
	score_settings_load(w->db, list_id, &s);
	if (w->now - since < s.disabled_wait || s.disabled_action == SCORE_KEEP)
		return 0;
	if (s.disabled_action == SCORE_REMOVE) {
		if (remove_member(w->db, w->conf, &l, &s, member_id, address,
		                  "it stayed disabled for bounces") < 0)
			return -1;
		w->acted++;
		if (w->out != NULL)
			outf(w->out, w->outlen, "%s%s removed (disabled %llds ago)",
			     w->out[0] ? "; " : "", address, (long long)(w->now - since));
		return 0;
	}
	if (probe_sent > 0)
		return 0;
	snprintf(subject, sizeof(subject), "Are you still there? (%s@%s)", l.local, l.domain);
	snprintf(body, sizeof(body),
	         "Mail from the list %s@%s to %s bounced too often, so the list\n"
	         "stopped sending to you. This message checks whether your address\n"
	         "works again. If it bounces too, the address will be removed from the list.\n\n"
	         "To get the list's mail again, write to %s-owner@%s.\n",
	         l.local, l.domain, address, l.local, l.domain);
	if (notify_one(w->db, w->conf, &l, "probe", address, 1, subject, body, qid) < 0 ||
	    db_bounce_probe_sent(w->db, member_id, w->now, qid) < 0)
		return -1;
	w->acted++;
	if (w->out != NULL)
		outf(w->out, w->outlen, "%s%s probe queued as %s", w->out[0] ? "; " : "", address,
		     qid);
	return 0;
}

int
score_sweep(struct db *db, const struct conf *conf, int64_t list_id, int64_t now, int *acted)
{
	struct sweep w = {db, conf, now, 0, NULL, 0};
	int rc = db_bounce_disabled_each(db, list_id, now, sweep_one, &w);

	if (acted)
		*acted = w.acted;
	return rc < 0 ? -1 : 0;
}

int
score_sweep_due(struct db *db, const struct conf *conf, int64_t now, score_sweep_report_fn report,
                void *arg)
{
	char out[SCORE_SWEEP_OUT_MAX];
	struct db_list dl;
	int64_t *ids = NULL;
	size_t n = 0;
	int failed = 0;

	/* Read outside a transaction: a list found here and swept below in
	 * its own transaction sees the members as they are then. */
	if (db_bounce_disabled_lists(db, &ids, &n) < 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		struct sweep w = {db, conf, now, 0, out, sizeof(out)};

		out[0] = '\0';
		if (db_begin(db) < 0) {
			failed = 1;
			break;
		}
		if (db_bounce_disabled_each(db, ids[i], now, sweep_one, &w) < 0) {
			db_rollback(db);
			failed = 1;
			break;
		}
		if (w.acted == 0) {
			db_rollback(db); /* nothing written */
			continue;
		}
		if (db_commit(db) < 0) {
			db_rollback(db);
			failed = 1;
			break;
		}
		if (report != NULL && db_list_get(db, ids[i], &dl) == 0)
			report(dl.local, dl.domain, w.acted, out, arg);
	}
	free(ids);
	return failed ? -1 : 0;
}
