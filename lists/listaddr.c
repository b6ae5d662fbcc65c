/*
 * listaddr.c - mapping a recipient local part to a list and a role, and
 * checking that an address can be a list's, and telling whether an address
 * is one of this server's (listaddr_is_ours).
 */
#include "lists/listaddr.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "db/lists.h"
#include "mail/addr.h"

static const struct {
	const char *suffix; /* after "LIST-" */
	enum listaddr_role role;
	int ext; /* 0: no extension, 1: optional, 2: required */
} roles[] = {
    {"request", LISTADDR_REQUEST, 0},     {"owner", LISTADDR_OWNER, 0},
    {"bounces", LISTADDR_BOUNCES, 1},     {"join", LISTADDR_JOIN, 0},
    {"leave", LISTADDR_LEAVE, 1}, /* +TOKEN: one-click (lists/oneclick.h) */
    {"subscribe", LISTADDR_SUBSCRIBE, 0}, {"unsubscribe", LISTADDR_UNSUBSCRIBE, 0},
    {"confirm", LISTADDR_CONFIRM, 2},
};

const char *
listaddr_role_name(enum listaddr_role role)
{
	if (role == LISTADDR_POST)
		return "post";
	for (size_t i = 0; i < sizeof(roles) / sizeof(roles[0]); i++)
		if (roles[i].role == role)
			return roles[i].suffix;
	return "post";
}

int
listaddr_role_parse(const char *name, enum listaddr_role *role)
{
	if (strcmp(name, "post") == 0) {
		*role = LISTADDR_POST;
		return 0;
	}
	for (size_t i = 0; i < sizeof(roles) / sizeof(roles[0]); i++)
		if (strcmp(roles[i].suffix, name) == 0) {
			*role = roles[i].role;
			return 0;
		}
	return -1;
}

int
listaddr_check_list_address(const struct addr *a, char *why, size_t whylen)
{
	size_t n = strlen(a->local);

	if (a->local[0] == '"') {
		snprintf(why, whylen, "a list address cannot have a quoted local part");
		return -1;
	}
	if (a->utf8) {
		snprintf(why, whylen, "a list address must be ASCII");
		return -1;
	}
	if (a->literal) {
		snprintf(why, whylen, "a list address needs a domain name, not an address literal");
		return -1;
	}
	if (strchr(a->local, '+') != NULL) {
		snprintf(
		    why, whylen,
		    "a list address cannot contain '+' (it separates VERP and token extensions)");
		return -1;
	}
	for (size_t i = 0; i < sizeof(roles) / sizeof(roles[0]); i++) {
		size_t sl = strlen(roles[i].suffix);

		if (n > sl && a->local[n - sl - 1] == '-' &&
		    strcasecmp(a->local + n - sl, roles[i].suffix) == 0) {
			snprintf(why, whylen,
			         "a list address cannot end in -%s (%s@%s is the %s address of the "
			         "list %.*s@%s)",
			         roles[i].suffix, a->local, a->domain, roles[i].suffix,
			         (int)(n - sl - 1), a->local, a->domain);
			return -1;
		}
	}
	return 0;
}

int
listaddr_resolve(const char *local, size_t len, listaddr_lookup_fn lookup, void *arg,
                 struct listaddr_match *m)
{
	const char *plus;
	size_t base;
	int64_t id;

	memset(m, 0, sizeof(*m));
	if (len == 0)
		return -1;
	if ((id = lookup(arg, local, len)) > 0) {
		m->list_id = id;
		m->role = LISTADDR_POST;
		return 0;
	}
	/* The role suffix ends at the first '+'; a list name may hold '-' but
	 * the role is always the last "-word" before the extension. */
	plus = memchr(local, '+', len);
	base = plus ? (size_t)(plus - local) : len;
	for (size_t i = 0; i < sizeof(roles) / sizeof(roles[0]); i++) {
		size_t sl = strlen(roles[i].suffix);
		const char *ext = plus ? plus + 1 : NULL;
		size_t ext_len = plus ? len - base - 1 : 0;

		if (base < sl + 2 || local[base - sl - 1] != '-' ||
		    strncasecmp(local + base - sl, roles[i].suffix, sl) != 0)
			continue;
		if (roles[i].ext == 0 && plus != NULL)
			return -1;
		if (roles[i].ext == 2 && ext_len == 0)
			return -1;
		if ((id = lookup(arg, local, base - sl - 1)) <= 0)
			return -1;
		m->list_id = id;
		m->role = roles[i].role;
		if (ext_len > 0) {
			m->ext = ext;
			m->ext_len = ext_len;
		}
		return 0;
	}
	return -1;
}
struct ours_ctx {
	struct db *db;
	const char *domain;
	int failed;
};

static int64_t
ours_lookup(void *arg, const char *local, size_t len)
{
	struct ours_ctx *c = arg;
	char buf[ADDR_LOCAL_MAX + 1];
	struct db_list l;

	if (len > ADDR_LOCAL_MAX)
		return 0;
	memcpy(buf, local, len);
	buf[len] = '\0';
	if (db_list_find(c->db, buf, c->domain, &l) == 0)
		return l.id;
	if (db_status(c->db) != DB_NOTFOUND)
		c->failed = 1;
	return 0;
}

/* listaddr_resolve() of local[0..len) at domain against the lists table. */
static int
find(struct db *db, const char *local, size_t len, const char *domain, struct listaddr_match *m)
{
	struct ours_ctx c = {db, domain, 0};
	int r = listaddr_resolve(local, len, ours_lookup, &c, m);

	if (c.failed)
		return -1;
	return r == 0;
}

int
listaddr_is_ours(struct db *db, const struct addr *a)
{
	struct listaddr_match m;
	const char *local = a->local;
	size_t len = strlen(local);

	/* "dev-request"@example.org is the same mailbox as the unquoted one. */
	if (len >= 2 && local[0] == '"' && local[len - 1] == '"') {
		local++;
		len -= 2;
	}
	return find(db, local, len, a->domain, &m);
}

int
listaddr_find(struct db *db, const char *address, struct listaddr_match *m)
{
	const char *at = strrchr(address, '@');

	if (at == NULL) {
		memset(m, 0, sizeof(*m));
		return 0;
	}
	return find(db, address, (size_t)(at - address), at + 1, m);
}
