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
#include "mail/addr.h"

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
	    /* The one-click token of a personal copy's mailto: */
	    {"demo-leave+1-mjqw6ylbmuxhizltoq-k3v5q2m7c4d6x2ab", 0, 1, "leave",
	     "1-mjqw6ylbmuxhizltoq-k3v5q2m7c4d6x2ab"},
	    {"Demo-Leave+1-MJQW", 0, 1, "leave", "1-MJQW"},
	    {"demo-leave+", 0, 1, "leave", NULL},
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
	    {"demo-join+x", -1, 0, NULL, NULL},
	    {"demo-unsubscribe+x", -1, 0, NULL, NULL},
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

struct want_list {
	const char *address;
	const char *why;  /* NULL: may be a list; else part of the refusal */
	const char *role; /* the role of "demo" the address already is, if any */
};

static void
check_list(const struct want_list *w)
{
	struct addr a;
	const char *perr;
	char why[512] = "";
	int rc;

	if (addr_parse(w->address, strlen(w->address), ADDR_UTF8, &a, &perr) < 0)
		fail_msg("%s: test address does not parse: %s", w->address, perr);
	rc = listaddr_check_list_address(&a, why, sizeof(why));
	if (w->why == NULL && rc != 0)
		fail_msg("%s: expected a valid list address, got refused: %s", w->address, why);
	if (w->why != NULL && rc == 0)
		fail_msg("%s: expected refused (%s), got accepted", w->address, w->why);
	if (w->why != NULL && strstr(why, w->why) == NULL)
		fail_msg("%s: expected the reason to say '%s', got '%s'", w->address, w->why, why);
	if (w->role != NULL) {
		/* The check refuses exactly what routing would take for the
		 * role address of another list. */
		struct listaddr_match m;
		if (listaddr_resolve(a.local, strlen(a.local), lookup, NULL, &m) != 0 ||
		    strcmp(listaddr_role_name(m.role), w->role) != 0 || m.list_id != 1)
			fail_msg("%s: expected it to route to demo's %s address", w->address,
			         w->role);
	}
}

static void
test_list_address_ending_in_a_role_suffix_is_refused(void **state)
{
	static const struct want_list w[] = {
	    {"demo-request@example.org", "cannot end in -request", "request"},
	    {"demo-owner@example.org", "cannot end in -owner", "owner"},
	    {"demo-bounces@example.org", "cannot end in -bounces", "bounces"},
	    {"demo-join@example.org", "cannot end in -join", "join"},
	    {"demo-leave@example.org", "cannot end in -leave", "leave"},
	    {"demo-subscribe@example.org", "cannot end in -subscribe", "subscribe"},
	    {"demo-unsubscribe@example.org", "cannot end in -unsubscribe", "unsubscribe"},
	    {"demo-confirm@example.org", "cannot end in -confirm", NULL}, /* needs +TOKEN */
	    {"Demo-SUBSCRIBE@example.org", "is the subscribe address of the list Demo@example.org",
	     "subscribe"},
	    {"a.b-leave@example.org", "cannot end in -leave", NULL},
	    {"-request@example.org", "cannot end in -request", NULL},
	};
	for (size_t i = 0; i < sizeof(w) / sizeof(w[0]); i++)
		check_list(&w[i]);
}

static void
test_list_address_syntax_is_checked(void **state)
{
	static const struct want_list w[] = {
	    {"a+b@example.org", "cannot contain '+'", NULL},
	    {"\"q\"@example.org", "quoted local part", NULL},
	    {"x@[192.0.2.1]", "not an address literal", NULL},
	    {"caf\xc3\xa9@example.org", "must be ASCII", NULL},
	};
	for (size_t i = 0; i < sizeof(w) / sizeof(w[0]); i++)
		check_list(&w[i]);
}

static void
test_list_address_near_a_suffix_is_accepted(void **state)
{
	static const struct want_list w[] = {
	    {"demo@example.org", NULL, NULL},
	    {"request@example.org", NULL, NULL},
	    {"subscribe@example.org", NULL, NULL},
	    {"demosubscribe@example.org", NULL, NULL},
	    {"demo-subscribers@example.org", NULL, NULL},
	    {"demo-owner.x@example.org", NULL, NULL},
	    {"demo-confirmed@example.org", NULL, NULL},
	};
	for (size_t i = 0; i < sizeof(w) / sizeof(w[0]); i++)
		check_list(&w[i]);
}

static void
test_role_names_parse_back(void **state)
{
	static const enum listaddr_role all[] = {
	    LISTADDR_POST,      LISTADDR_REQUEST,     LISTADDR_OWNER,
	    LISTADDR_BOUNCES,   LISTADDR_JOIN,        LISTADDR_LEAVE,
	    LISTADDR_SUBSCRIBE, LISTADDR_UNSUBSCRIBE, LISTADDR_CONFIRM,
	};
	enum listaddr_role r;

	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
		const char *name = listaddr_role_name(all[i]);
		if (listaddr_role_parse(name, &r) != 0 || r != all[i])
			fail_msg("role %s: expected it to parse back to %d", name, (int)all[i]);
	}
	if (listaddr_role_parse("admin", &r) == 0)
		fail_msg("role admin: expected no such role, got %d", (int)r);
	if (listaddr_role_parse("Request", &r) == 0)
		fail_msg("role Request: expected no such role (stored names are lower case)");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_every_role_address_resolves),
	    cmocka_unit_test(test_exact_list_name_wins_over_suffix),
	    cmocka_unit_test(test_unknown_local_parts_are_refused),
	    cmocka_unit_test(test_bounces_without_extension_after_plus),
	    cmocka_unit_test(test_list_address_ending_in_a_role_suffix_is_refused),
	    cmocka_unit_test(test_list_address_syntax_is_checked),
	    cmocka_unit_test(test_list_address_near_a_suffix_is_accepted),
	    cmocka_unit_test(test_role_names_parse_back),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
