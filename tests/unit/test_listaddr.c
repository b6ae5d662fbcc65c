/*
 * test_listaddr.c - recipient local part to list and role.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "lists/listaddr.h"

/* Known lists at the test domain, id = index + 1. */
static const char *const known[] = {"demo", "foo-bar", "foo-request", "dev-announce", "x"};

static int64_t
lookup(void *arg, const char *local, size_t len)
{
	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		if (strlen(known[i]) == len && strncasecmp(known[i], local, len) == 0)
			return (int64_t)i + 1;
	return 0;
}

struct want {
	const char *local;
	int rc;
	int64_t list_id;
	const char *role;
	const char *ext;
};

static void
check(const struct want *w)
{
	struct listaddr_match m;
	int rc = listaddr_resolve(w->local, strlen(w->local), lookup, NULL, &m);
	char ext[128] = "";

	if (rc != w->rc)
		fail_msg("%s: expected rc %d, got %d", w->local, w->rc, rc);
	if (rc != 0)
		return;
	if (m.list_id != w->list_id)
		fail_msg("%s: expected list %lld, got %lld", w->local, (long long)w->list_id,
		         (long long)m.list_id);
	if (strcmp(listaddr_role_name(m.role), w->role) != 0)
		fail_msg("%s: expected role %s, got %s", w->local, w->role,
		         listaddr_role_name(m.role));
	if (m.ext)
		snprintf(ext, sizeof(ext), "%.*s", (int)m.ext_len, m.ext);
	if (strcmp(ext, w->ext ? w->ext : "") != 0)
		fail_msg("%s: expected extension '%s', got '%s'", w->local, w->ext ? w->ext : "",
		         ext);
}

static void
test_every_role_address_resolves(void **state)
{
	static const struct want w[] = {
	    {"demo", 0, 1, "post", NULL},
	    {"DEMO", 0, 1, "post", NULL},
	    {"demo-request", 0, 1, "request", NULL},
	    {"demo-owner", 0, 1, "owner", NULL},
	    {"demo-bounces", 0, 1, "bounces", NULL},
	    {"demo-bounces+bob=example.net", 0, 1, "bounces", "bob=example.net"},
	    {"Demo-Bounces+Bob=Example.NET", 0, 1, "bounces", "Bob=Example.NET"},
	    {"demo-join", 0, 1, "join", NULL},
	    {"demo-leave", 0, 1, "leave", NULL},
	    {"demo-subscribe", 0, 1, "subscribe", NULL},
	    {"demo-unsubscribe", 0, 1, "unsubscribe", NULL},
	    {"demo-confirm+AbC123", 0, 1, "confirm", "AbC123"},
	    {"x-owner", 0, 5, "owner", NULL},
	};
	for (size_t i = 0; i < sizeof(w) / sizeof(w[0]); i++)
		check(&w[i]);
}

static void
test_exact_list_name_wins_over_suffix(void **state)
{
	static const struct want w[] = {
	    {"foo-request", 0, 3, "post", NULL},        {"foo-bar", 0, 2, "post", NULL},
	    {"foo-bar-request", 0, 2, "request", NULL}, {"dev-announce-owner", 0, 4, "owner", NULL},
	    {"foo-request-owner", 0, 3, "owner", NULL},
	};
	for (size_t i = 0; i < sizeof(w) / sizeof(w[0]); i++)
		check(&w[i]);
}

static void
test_unknown_local_parts_are_refused(void **state)
{
	static const struct want w[] = {
	    {"", -1, 0, NULL, NULL},
	    {"nobody", -1, 0, NULL, NULL},
	    {"demo-admin", -1, 0, NULL, NULL},
	    {"demo-confirm", -1, 0, NULL, NULL},  /* token required */
	    {"demo-confirm+", -1, 0, NULL, NULL}, /* empty token */
	    {"demo-request+x", -1, 0, NULL, NULL},
	    {"demo+x", -1, 0, NULL, NULL},
	    {"nolist-request", -1, 0, NULL, NULL},
	    {"-request", -1, 0, NULL, NULL},
	    {"request", -1, 0, NULL, NULL},
	    {"demorequest", -1, 0, NULL, NULL},
	    {"foo-bounces+x", -1, 0, NULL, NULL},
	};
	for (size_t i = 0; i < sizeof(w) / sizeof(w[0]); i++)
		check(&w[i]);
}

static void
test_bounces_without_extension_after_plus(void **state)
{
	static const struct want w = {"demo-bounces+", 0, 1, "bounces", NULL};
	check(&w);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_every_role_address_resolves),
	    cmocka_unit_test(test_exact_list_name_wins_over_suffix),
	    cmocka_unit_test(test_unknown_local_parts_are_refused),
	    cmocka_unit_test(test_bounces_without_extension_after_plus),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
