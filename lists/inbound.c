/*
 * inbound.c - what a committed inbound message is for: which list address
 * a recipient names. See inbound.h.
 */
#include "lists/inbound.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "db/queue.h"

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
