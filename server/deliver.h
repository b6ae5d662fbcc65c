/*
 * deliver.h - the outbound scheduler: takes due recipients from the queue,
 * a domain at a time, and delivers them with smtp_out to the domain's mail
 * exchangers (dns) or to relay_host.
 *
 * deliver_start() starts it on the daemon's event loop, with two threads
 * of its own for the database: a reader (pages of due rows, message bodies)
 * and a writer that commits results, many per transaction, and queues DSNs.
 * The loop thread never waits for the disk or for DNS.
 *
 * deliver_kick() may be called from any thread (the list engine calls it
 * after it queues a message): the scheduler scans the queue at once.
 * deliver_stop() stops taking new work, lets the writer commit what it has,
 * and frees everything; rows that were in flight stay due and are sent
 * again at the next start (at-least-once).
 */
#ifndef FANMAIL_DELIVER_H
#define FANMAIL_DELIVER_H

#include <stddef.h>

struct event_base;
struct conf;
struct deliver;

/* NULL on failure (the reason is logged). conf must outlive the scheduler. */
struct deliver *deliver_start(struct event_base *base, const struct conf *conf);
void deliver_stop(struct deliver *d);

/* Thread-safe; a no-op when dl is NULL (no scheduler runs). dl must not
 * be stopped while another thread may still call this. */
void deliver_kick(struct deliver *dl);

/* Mail for one of our own list domains (a DSN to LIST-bounces, a notice to
 * LIST-owner) never goes out over the network: the writer puts it into the
 * inbound spool, and then calls fn (on the writer thread) so that the list
 * engine can be woken. Thread-safe; fn NULL turns it off. */
void deliver_on_spool(struct deliver *dl, void (*fn)(void *arg), void *arg);

/* The subsystem entries for server/main.c's table (they keep the
 * running scheduler in the daemon's struct): start, shutdown (no new transactions), busy
 * (transactions or result commits in flight), finish (close connections
 * now; their rows stay due), free (commit what is left, stop). */
struct daemon;
int deliver_sub_start(struct daemon *d, char *err, size_t errlen);
void deliver_sub_shutdown(struct daemon *d);
int deliver_sub_busy(struct daemon *d);
void deliver_sub_finish(struct daemon *d);
void deliver_sub_free(struct daemon *d);

/* Backoff before attempt number attempts+1 (pure; for the unit tests):
 * retry_min doubled per earlier attempt, at most retry_max. */
long long deliver_backoff(int attempts, long long retry_min, long long retry_max);

#endif
