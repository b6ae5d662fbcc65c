/*
 * bounces.h - what the store keeps about bounces: one bounce_events row per
 * bounce seen (per member and per domain), the members' scores, and the
 * members disabled for bounces (bounce_disabled: when, and whether a probe
 * went out).
 *
 * These functions never open a transaction themselves: the bounce handler
 * runs inside the engine runner's, and the CLI wraps its calls in one.
 */
#ifndef FANMAIL_DB_BOUNCES_H
#define FANMAIL_DB_BOUNCES_H

#include <stddef.h>
#include <stdint.h>

#include "db/db.h"

struct db_bounce_event {
	int64_t list_id;
	int64_t member_id; /* 0 when the address is no member */
	int64_t spool_id;  /* 0 when none */
	const char *address;
	const char *domain;
	const char *cls;    /* hard, soft, policy, complaint */
	const char *status; /* x.y.z or NULL */
	const char *reason; /* NULL for none */
	double scored;      /* what it added to the member's score */
	int64_t time;
};

int db_bounce_add(struct db *db, const struct db_bounce_event *e);

/* Time of the member's last bounce that raised its score; 0 when none. */
int db_bounce_last_scored(struct db *db, int64_t member_id, int64_t *time);

/* How many bounces of class cls from domain (NULL: any) the list has had
 * since the given time. */
int db_bounce_count(struct db *db, int64_t list_id, const char *cls, const char *domain,
                    int64_t since, int64_t *n);

/* Stores a member's new score with the time and reason of its last bounce. */
int db_bounce_member_update(struct db *db, int64_t member_id, double score, int64_t last,
                            const char *reason);

/* Disables the member (status disabled, disabled_reason "bounce: ..." or
 * "complaint: ...") and notes when in bounce_disabled. */
int db_bounce_member_disable(struct db *db, int64_t member_id, const char *why, int64_t now);

/* Removes the member (its bounce events stay, without the member). */
int db_bounce_member_remove(struct db *db, int64_t member_id);

/* Notes that a probe went out to a member disabled for bounces. */
int db_bounce_probe_sent(struct db *db, int64_t member_id, int64_t now, const char *qid);

/* When a member still disabled for bounces was disabled, and when its
 * probe was sent (0: none). DB_NOTFOUND when it is not disabled for
 * bounces (never, or re-enabled since). */
int db_bounce_disabled_get(struct db *db, int64_t member_id, int64_t *since, int64_t *probe_sent);

/* One member as `fanmail bounces ls` shows it. */
struct db_bounce_member {
	int64_t id;
	char address[321];
	char status[16];
	double score;        /* as stored: decayed only when a bounce comes */
	int64_t last_scored; /* last bounce that raised the score; 0: none */
	int64_t last_bounce; /* 0: never */
	char last_reason[512];
	char disabled_reason[256];
	int64_t disabled_since; /* 0 unless disabled for bounces */
	int64_t probe_sent;     /* 0: none */
};

/* Members of the list that have bounced or are disabled for bounces, the
 * highest score first; fn returns non-zero to stop. */
typedef int (*db_bounce_member_fn)(const struct db_bounce_member *m, void *arg);
int db_bounce_member_each(struct db *db, int64_t list_id, db_bounce_member_fn fn, void *arg);

/* Members disabled for bounces at or before `before` (all lists when
 * list_id is 0), for the timed step (remove or probe). */
int db_bounce_disabled_each(struct db *db, int64_t list_id, int64_t before,
                            int (*fn)(int64_t list_id, int64_t member_id, const char *address,
                                      int64_t since, int64_t probe_sent, void *arg),
                            void *arg);

/* The lists that have members disabled for bounces, in id order; *ids
 * (n of them) is the caller's to free. */
int db_bounce_disabled_lists(struct db *db, int64_t **ids, size_t *n);

/* Policy bounces per domain since a time, the most first. */
typedef int (*db_bounce_domain_fn)(const char *domain, int64_t count, int64_t last, void *arg);
int db_bounce_policy_domains(struct db *db, int64_t list_id, int64_t since, db_bounce_domain_fn fn,
                             void *arg);

/* ---- retention (retention.h runs these a chunk a transaction) ---- */

/* Deletes at most `limit` bounce events older than `before`, except each
 * member's latest scored one. Returns how many, or -1. */
int db_purge_bounce_events(struct db *db, int64_t before, int limit);

#endif
