/*
 * inbound.c - what a committed inbound message is for: which list address
 * a recipient names, and the handler of its role. See inbound.h.
 */
#include "lists/inbound.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "db/engine.h"
#include "db/queue.h"
#include "lists/bounce.h"
#include "lists/commands.h"
#include "lists/posting.h"

struct local_ctx {
	struct db *db;
	const char *domain;
};

static int64_t
local_lookup(void *arg, const char *local, size_t len)
{
	struct local_ctx *c = arg;
	int64_t id = db_queue_list_id(c->db, local, len, c->domain);

	return id > 0 ? id : 0;
}

int
inbound_list_address(struct db *db, const char *rcpt, struct listaddr_match *m)
{
	const char *at = strrchr(rcpt, '@');
	struct local_ctx lc = {db, at ? at + 1 : ""};
	char dom[256];

	snprintf(dom, sizeof(dom), "%s", at ? at + 1 : "");
	for (char *p = dom; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	lc.domain = dom;
	if (at == NULL)
		return -1;
	return listaddr_resolve(rcpt, (size_t)(at - rcpt), local_lookup, &lc, m);
}

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
