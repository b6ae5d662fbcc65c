/*
 * rcpt_lists.h - the list addresses RCPT TO is checked against: a table on
 * the loop thread, refreshed by a thread of its own, so that the loop
 * never waits inside SQLite (a reader can wait seconds there, e.g. for a
 * lock on the WAL index).
 *
 * The refresher has its own connection; a refresh costs one "PRAGMA
 * data_version" and reloads the lists only when they changed (see
 * db_spool_lists_changed). The asks and the new table travel between the
 * loop and the refresher through work queues (workq.h).
 *
 * A list address is taken from the table as it is when the table was
 * refreshed less than a second ago; anything else waits for a refresh
 * (RCPT_PENDING), so that a list just created is never refused. When a
 * refresh takes longer than RCPT_LISTS_WAIT_MS or fails, the table as it
 * is answers: a list address it knows is taken, anything else is
 * RCPT_TEMPFAIL (451 4.3.0) until the store answers again.
 * A domain is a list domain when a list lives there or it is
 * default_list_domain.
 */
#ifndef FANMAIL_RCPT_LISTS_H
#define FANMAIL_RCPT_LISTS_H

#include <stdint.h>

#include "lists/listaddr.h"
#include "mail/addr.h"

struct event_base;
struct rcpt_lists;

#define RCPT_LISTS_WAIT_MS 300 /* longest a RCPT waits for a refresh */

enum rcpt_verdict {
	RCPT_LIST,     /* a list address: *m says which */
	RCPT_UNKNOWN,  /* a list domain, but no such list address: 550 5.1.1 */
	RCPT_RELAY,    /* not a domain of ours: 550 5.7.1 */
	RCPT_TEMPFAIL, /* the store could not be read: 451 4.3.0 */
	RCPT_PENDING,  /* ask again after the next on_refresh call */
};

/* Opens its own connection to db_path and starts the refresher; on_refresh
 * runs on the loop thread (base's) after each refresh, or when one is
 * late. NULL with a message in err on failure. base must have been created
 * after evthread_use_pthreads(). */
struct rcpt_lists *rcpt_lists_new(struct event_base *base, const char *db_path,
                                  const char *default_domain, void (*on_refresh)(void *arg),
                                  void *arg, char *err, size_t errlen);
/* Stops the thread (after the refresh in hand) and frees everything. */
void rcpt_lists_free(struct rcpt_lists *rl);

/* The verdict for a; on the loop thread. *ticket is 0 for a new question;
 * after RCPT_PENDING, ask again with the same *ticket once on_refresh has
 * run (a later RCPT_PENDING means: not yet). */
enum rcpt_verdict rcpt_lists_check(struct rcpt_lists *rl, const struct addr *a,
                                   struct listaddr_match *m, uint64_t *ticket);

#endif
