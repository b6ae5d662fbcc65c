/*
 * rcpt_lists.c - an in-memory table of list addresses for RCPT checks.
 */
#include "server/rcpt_lists.h"
#include "db/lists.h"
#include "server/log.h"

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* Open addressing; keys are "local@domain" and "@domain", lower-cased. */
struct slot {
	char *key;
	int64_t id;
};

struct rcpt_lists {
	struct db *db;
	char *default_domain;
	struct db_list_stamp stamp;
	struct slot *slots;
	size_t nslots, used;
	int loaded;
	int64_t checked_ms; /* when the store was last asked (CLOCK_MONOTONIC) */
};

#define RECHECK_MS 1000

static uint64_t
hash(const char *s, size_t n)
{
	uint64_t h = 1469598103934665603ULL;

	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)tolower((unsigned char)s[i])) * 1099511628211ULL;
	return h;
}

static struct slot *
find(struct rcpt_lists *rl, const char *key, size_t n)
{
	size_t mask = rl->nslots - 1, i = hash(key, n) & mask;

	if (rl->nslots == 0)
		return NULL;
	for (;; i = (i + 1) & mask) {
		struct slot *s = &rl->slots[i];
		if (s->key == NULL)
			return s;
		if (strlen(s->key) == n && strncasecmp(s->key, key, n) == 0)
			return s;
	}
}

static void
clear(struct rcpt_lists *rl)
{
	for (size_t i = 0; i < rl->nslots; i++)
		free(rl->slots[i].key);
	free(rl->slots);
	rl->slots = NULL;
	rl->nslots = rl->used = 0;
}

static int
grow(struct rcpt_lists *rl)
{
	struct slot *old = rl->slots;
	size_t oldn = rl->nslots;

	rl->nslots = oldn ? oldn * 2 : 64;
	rl->slots = calloc(rl->nslots, sizeof(*rl->slots));
	if (rl->slots == NULL) {
		rl->slots = old;
		rl->nslots = oldn;
		return -1;
	}
	for (size_t i = 0; i < oldn; i++)
		if (old[i].key != NULL)
			*find(rl, old[i].key, strlen(old[i].key)) = old[i];
	free(old);
	return 0;
}

static int
put(struct rcpt_lists *rl, const char *local, const char *domain, int64_t id)
{
	size_t n = strlen(local) + strlen(domain) + 2;
	char *key = malloc(n);
	struct slot *s;

	if (key == NULL)
		return -1;
	snprintf(key, n, "%s@%s", local, domain);
	for (char *p = key; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	if ((rl->used + 1) * 2 > rl->nslots && grow(rl) < 0) {
		free(key);
		return -1;
	}
	s = find(rl, key, n - 1);
	if (s->key != NULL) {
		free(key);
		return 0;
	}
	s->key = key;
	s->id = id;
	rl->used++;
	return 0;
}

static int
load_one(void *arg, int64_t id, const char *local, const char *domain)
{
	struct rcpt_lists *rl = arg;

	if (put(rl, local, domain, id) < 0 || put(rl, "", domain, 1) < 0)
		return -1;
	return 0;
}

static int
refresh(struct rcpt_lists *rl)
{
	int changed = db_spool_lists_changed(rl->db, &rl->stamp);

	if (changed < 0) {
		log_warnx("cannot check the lists table: %s", db_errmsg(rl->db));
		return rl->loaded ? 0 : -1;
	}
	if (!changed && rl->loaded)
		return 0;
	clear(rl);
	if (put(rl, "", rl->default_domain, 1) < 0 ||
	    db_spool_lists_load(rl->db, load_one, rl) < 0) {
		log_warnx("cannot load the lists table: %s", db_errmsg(rl->db));
		rl->loaded = 0;
		rl->stamp.valid = 0;
		return -1;
	}
	rl->loaded = 1;
	log_debug("list table loaded: %zu entries", rl->used);
	return 0;
}

struct rcpt_lists *
rcpt_lists_new(struct db *db, const char *default_domain)
{
	struct rcpt_lists *rl = calloc(1, sizeof(*rl));

	if (rl == NULL)
		return NULL;
	rl->db = db;
	rl->default_domain = strdup(default_domain ? default_domain : "");
	if (rl->default_domain == NULL) {
		free(rl);
		return NULL;
	}
	return rl;
}

void
rcpt_lists_free(struct rcpt_lists *rl)
{
	if (rl == NULL)
		return;
	clear(rl);
	free(rl->default_domain);
	free(rl);
}

struct lookup_ctx {
	struct rcpt_lists *rl;
	const char *domain;
	size_t dlen;
};

static int64_t
lookup(void *arg, const char *local, size_t len)
{
	struct lookup_ctx *c = arg;
	char key[ADDR_LOCAL_MAX + ADDR_DOMAIN_MAX + 2];
	struct slot *s;

	if (len + 1 + c->dlen >= sizeof(key))
		return 0;
	memcpy(key, local, len);
	key[len] = '@';
	memcpy(key + len + 1, c->domain, c->dlen);
	s = find(c->rl, key, len + 1 + c->dlen);
	return s && s->key ? s->id : 0;
}

static enum rcpt_verdict
verdict(struct rcpt_lists *rl, const struct addr *a, struct listaddr_match *m)
{
	char dkey[ADDR_DOMAIN_MAX + 2];
	struct lookup_ctx c = {rl, a->domain, strlen(a->domain)};
	struct slot *s;

	snprintf(dkey, sizeof(dkey), "@%s", a->domain);
	s = find(rl, dkey, strlen(dkey));
	if (s == NULL || s->key == NULL)
		return RCPT_RELAY;
	if (a->local[0] == '"')
		return RCPT_UNKNOWN; /* list names are dot-atoms */
	if (listaddr_resolve(a->local, strlen(a->local), lookup, &c, m) < 0)
		return RCPT_UNKNOWN;
	return RCPT_LIST;
}

static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

enum rcpt_verdict
rcpt_lists_check(struct rcpt_lists *rl, const struct addr *a, struct listaddr_match *m)
{
	int64_t now = now_ms();

	/* A list address found in a table checked less than a second ago is
	 * taken as it is (under load the store changes all the time, and
	 * each check is a read transaction); anything else is checked
	 * against the store first, so that a list just created is never
	 * refused. */
	if (rl->loaded && now - rl->checked_ms < RECHECK_MS && verdict(rl, a, m) == RCPT_LIST)
		return RCPT_LIST;
	if (refresh(rl) < 0)
		return RCPT_TEMPFAIL;
	rl->checked_ms = now;
	return verdict(rl, a, m);
}
