/*
 * rcpt_lists.h - the list addresses RCPT TO is checked against, cached on
 * the loop thread and reloaded when `fanmail list create` (or anything
 * else) changes the lists table.
 *
 * rcpt_lists_check() costs one "PRAGMA data_version" (no disk I/O) and
 * hash lookups; it reads the store only when another connection has
 * committed since, and reloads the lists only when they changed (see
 * db_spool_lists_changed). A list address is taken from the table without
 * asking the store when the store was asked less than a second ago; an
 * address the table does not know is always checked against the store.
 * A domain is a list domain when a list lives there or it is
 * default_list_domain.
 */
#ifndef FANMAIL_RCPT_LISTS_H
#define FANMAIL_RCPT_LISTS_H

#include "db/db.h"
#include "lists/listaddr.h"
#include "mail/addr.h"

struct rcpt_lists;

enum rcpt_verdict {
	RCPT_LIST,     /* a list address: *m says which */
	RCPT_UNKNOWN,  /* a list domain, but no such list address: 550 5.1.1 */
	RCPT_RELAY,    /* not a domain of ours: 550 5.7.1 */
	RCPT_TEMPFAIL, /* the store could not be read: 451 4.3.0 */
};

/* db is the loop thread's own connection. */
struct rcpt_lists *rcpt_lists_new(struct db *db, const char *default_domain);
void rcpt_lists_free(struct rcpt_lists *rl);

enum rcpt_verdict rcpt_lists_check(struct rcpt_lists *rl, const struct addr *a,
                                   struct listaddr_match *m);

#endif
