/*
 * engine_runner.h - the thread that hands committed spool entries to the
 * list engine.
 *
 * It has its own database connection and its own DNS channel (DMARC), and
 * sleeps until woken: engine_runner_wake() is called after every group
 * commit of the spool writer, and once at start-up for entries a crash
 * left 'new'. (It also looks every minute, for entries another process
 * committed.) Entries are handled in transactions of up to 64 entries
 * (and at most about 2 ms of work, so the spool writer never waits long
 * for the write lock), each entry under a savepoint of its own whose work
 * also marks it done, so it is processed exactly once and a failing entry
 * is undone alone and marked failed; after each commit delivery is woken.
 * The runner's connection commits with synchronous = NORMAL (see
 * engine_runner_start() and docs/security.md). Before a transaction the
 * DMARC policies of the entries' From domains are looked up all at once
 * (dmarc_prefetch). Once a minute it also runs the commands' housekeeping
 * (held posts past their deadline, expired tokens), the bounce sweep
 * (bounce_sweep_interval) and the retention pass (server/retention.h);
 * after draining it gives a big page cache back (db_engine_release).
 *
 * Log lines, one per recipient of an entry:
 *   QID: engine: to=<list@example.org>, role=post, posted: queued as 65A1..., rcpts=3, ...
 */
#ifndef FANMAIL_ENGINE_RUNNER_H
#define FANMAIL_ENGINE_RUNNER_H

#include <stddef.h>

struct conf;
struct db;
struct posting_dmarc;
struct engine_runner;

/* Opens the runner's connection and starts the thread. after_commit (may
 * be NULL) is called from the runner thread after each commit that handled
 * at least one entry. Returns NULL with a message in err on failure. */
struct engine_runner *engine_runner_start(const struct conf *conf, void (*after_commit)(void *),
                                          void *arg, char *err, size_t errlen);
/* Thread-safe and cheap; may be called from any thread. */
void engine_runner_wake(struct engine_runner *r);
/* Finishes the entry in hand, stops the thread, closes the connection. */
void engine_runner_stop(struct engine_runner *r);

/* Handles every 'new' entry in the store, in order, on the caller's
 * thread; *handled gets how many were done or failed. Returns -1 when the
 * store failed (entries then stay 'new' for a later pass). */
int engine_runner_drain(struct db *db, const struct conf *conf, const struct posting_dmarc *dmarc,
                        void (*after_commit)(void *), void *arg, int *handled);

#endif
