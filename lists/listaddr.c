/*
 * listaddr.c - mapping a recipient local part to a list and a role, and
 * checking that an address can be a list's, and telling whether an address
 * is one of this server's (listaddr_is_ours).
 */
#include "lists/listaddr.h"

#include <string.h>
#include <strings.h>

#include "db/lists.h"

static const struct {
	const char *suffix; /* after "LIST-" */
	enum listaddr_role role;
	int ext; /* 0: no extension, 1: optional, 2: required */
} roles[] = {
    {"request", LISTADDR_REQUEST, 0},
    {"owner", LISTADDR_OWNER, 0},
    {"bounces", LISTADDR_BOUNCES, 1},
    {"join", LISTADDR_JOIN, 0},
    {"leave", LISTADDR_LEAVE, 0},
    {"subscribe", LISTADDR_SUBSCRIBE, 0},
    {"unsubscribe", LISTADDR_UNSUBSCRIBE, 0},
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

/* Suffixes of a list's role addresses (LIST-request, LIST-bounces+...):
 * a list whose name ends with one of these cannot be created. */
static const char *const list_role_suffixes[] = {"-request", "-owner",   "-bounces", "-join",
                                                 "-leave",   "-confirm", NULL};

int
listaddr_check_list(const struct addr *a, const char **why)
{
	size_t n = strlen(a->local);

	if (a->local[0] == '"') {
		*why = "a list address cannot have a quoted local part";
		return -1;
	}
	if (a->utf8) {
		*why = "a list address must be ASCII";
		return -1;
	}
	if (a->literal) {
		*why = "a list address needs a domain name, not an address literal";
		return -1;
	}
	if (strchr(a->local, '+') != NULL) {
		*why = "a list address cannot contain '+' (it separates VERP and token extensions)";
		return -1;
	}
	for (const char *const *s = list_role_suffixes; *s; s++) {
		size_t sl = strlen(*s);
		if (n >= sl && strcasecmp(a->local + n - sl, *s) == 0) {
			*why = "a list address cannot end in -request, -owner, -bounces, -join, "
			       "-leave or -confirm (those are the role addresses of lists)";
			return -1;
		}
	}
	return 0;
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

int
listaddr_is_ours(struct db *db, const struct addr *a)
{
	struct ours_ctx c = {db, a->domain, 0};
	struct listaddr_match m;
	const char *local = a->local;
	size_t len = strlen(local);
	int r;

	/* "dev-request"@example.org is the same mailbox as the unquoted one. */
	if (len >= 2 && local[0] == '"' && local[len - 1] == '"') {
		local++;
		len -= 2;
	}
	r = listaddr_resolve(local, len, ours_lookup, &c, &m);
	if (c.failed)
		return -1;
	return r == 0;
}
