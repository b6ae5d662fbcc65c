/*
 * inbound.c - routing a committed spool entry to the handler of each
 * recipient's role. See inbound.h.
 */
#include "lists/inbound.h"

#include <stdio.h>
#include <string.h>

#include "db/spool.h"
#include "lists/bounce.h"
#include "lists/commands.h"
#include "lists/posting.h"

int
inbound_handle(struct db *db, const struct conf *conf, const struct posting_dmarc *dmarc,
               const struct db_engine_entry *e, const struct db_engine_rcpt *r, char *outcome,
               size_t outcomelen)
{
	struct inbound in = {
	    .spool_id = e->id,
	    .qid = e->qid,
	    .mail_from = e->mail_from,
	    .rcpt = r->rcpt,
	    .list_id = r->list_id,
	    .list_local = r->local,
	    .list_domain = r->domain,
	    .extension = r->extension,
	    .message = e->message,
	    .len = e->len,
	    .received = e->received,
	};

	if (listaddr_role_parse(r->role, &in.role) < 0) {
		snprintf(outcome, outcomelen, "failed: unknown role %s", r->role);
		return -1;
	}
	switch (in.role) {
	case LISTADDR_POST:
		return posting_handle(db, conf, &in, dmarc, outcome, outcomelen);
	case LISTADDR_REQUEST:
	case LISTADDR_JOIN:
	case LISTADDR_LEAVE:
	case LISTADDR_SUBSCRIBE:
	case LISTADDR_UNSUBSCRIBE:
	case LISTADDR_CONFIRM:
	case LISTADDR_OWNER: /* forwarded to the owners by commands.c */
		return commands_handle(db, conf, &in, outcome, outcomelen);
	case LISTADDR_BOUNCES:
		return bounce_handle(db, conf, &in, outcome, outcomelen);
	}
	snprintf(outcome, outcomelen, "failed: unknown role %s", r->role);
	return -1;
}
