/*
 * test_inbound.c - routing a committed spool entry by role, and which list
 * address a recipient is (listaddr_find), against a real store.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf/conf.h"
#include "db/db.h"
#include "db/spool.h"
#include "db/lists.h"
#include "lists/inbound.h"
#include "lists/listaddr.h"
#include "lists/store.h"
#include "mail/addr.h"

struct fx {
	char dir[64];
	char path[128];
	struct db *db;
	struct conf conf;
	struct db_list list;
};

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	char err[256];
	const char *why;
	struct addr a;

	snprintf(f->dir, sizeof(f->dir), "/tmp/fm-inbound-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/fanmail.db", f->dir);
	assert_non_null(f->db = db_open(f->path, DB_OPEN_CREATE, err, sizeof(err)));
	conf_init(&f->conf);
	assert_int_equal(addr_parse("dev@lists.example.org", 21, 0, &a, &why), 0);
	assert_int_equal(store_list_create(f->db, &a, &f->list), 0);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;
	char p[200];

	db_close(f->db);
	conf_free(&f->conf);
	snprintf(p, sizeof(p), "%s-wal", f->path);
	unlink(p);
	snprintf(p, sizeof(p), "%s-shm", f->path);
	unlink(p);
	unlink(f->path);
	rmdir(f->dir);
	free(f);
	return 0;
}

struct route {
	const char *role; /* as stored in spool_rcpt.role */
	int list_gone;
	int rc;
	const char *outcome; /* part of the outcome that names the handler */
	const char *why;
};

/* The outcome a handler gives for a list that is gone (or, for owner mail,
 * a list with no owners) tells which handler the role reached. */
static void
test_each_role_reaches_its_handler(void **state)
{
	struct fx *f = *state;
	static const struct route w[] = {
	    {"post", 1, 0, "dropped: the list no longer exists", "posts go to posting.c"},
	    {"bounces", 1, 0, "ignored: the list is gone", "bounces go to bounce_handle.c"},
	    {"request", 1, 0, "dropped: the list is gone", "requests go to commands.c"},
	    {"join", 1, 0, "dropped: the list is gone", "join goes to commands.c"},
	    {"leave", 1, 0, "dropped: the list is gone", "leave goes to commands.c"},
	    {"subscribe", 1, 0, "dropped: the list is gone", "subscribe goes to commands.c"},
	    {"unsubscribe", 1, 0, "dropped: the list is gone", "unsubscribe goes to commands.c"},
	    {"confirm", 1, 0, "dropped: the list is gone", "confirm goes to commands.c"},
	    {"owner", 0, 0, "owner mail: dropped, the list has no owners",
	     "owner mail is forwarded to the owners"},
	    {"admin", 0, -1, "failed: unknown role admin", "a stored role that is none fails"},
	    {"Post", 0, -1, "failed: unknown role Post", "stored role names are lower case"},
	};
	char msg[] = "From: alice@example.net\r\nTo: dev@lists.example.org\r\n"
	             "Subject: hello\r\n\r\nhi\r\n";
	char outcome[1024];

	for (size_t i = 0; i < sizeof(w) / sizeof(w[0]); i++) {
		char rcpt[128], local[] = "dev", domain[] = "lists.example.org", empty[] = "";
		struct db_engine_entry e = {
		    .id = 1,
		    .qid = "TESTQID",
		    .mail_from = "alice@example.net",
		    .received = db_now(),
		    .state = "new",
		    .message = msg,
		    .len = strlen(msg),
		};
		struct db_engine_rcpt r = {
		    .rcpt = rcpt,
		    .list_id = w[i].list_gone ? 0 : f->list.id,
		    .local = w[i].list_gone ? empty : local,
		    .domain = w[i].list_gone ? empty : domain,
		    .role = (char *)w[i].role,
		};
		int rc;

		snprintf(rcpt, sizeof(rcpt), "dev-%s@lists.example.org", w[i].role);
		outcome[0] = '\0';
		assert_int_equal(db_begin(f->db), 0);
		rc = inbound_handle(f->db, &f->conf, NULL, &e, &r, outcome, sizeof(outcome));
		db_rollback(f->db);
		if (rc != w[i].rc || strstr(outcome, w[i].outcome) == NULL)
			fail_msg("role %s: %s: expected rc %d and '%s', got rc %d and '%s'",
			         w[i].role, w[i].why, w[i].rc, w[i].outcome, rc, outcome);
	}
}

struct addr_want {
	const char *rcpt;
	int rc;
	const char *role;
	const char *ext;
};

static void
test_recipient_is_a_list_address(void **state)
{
	struct fx *f = *state;
	static const struct addr_want w[] = {
	    {"dev@lists.example.org", 1, "post", NULL},
	    {"DEV-Join@Lists.Example.ORG", 1, "join", NULL},
	    {"dev-bounces+bob=example.net@lists.example.org", 1, "bounces", "bob=example.net"},
	    {"dev-confirm+Tok123@lists.example.org", 1, "confirm", "Tok123"},
	    {"dev@other.example.org", 0, NULL, NULL},
	    {"nobody@lists.example.org", 0, NULL, NULL},
	    {"dev-admin@lists.example.org", 0, NULL, NULL},
	    {"dev", 0, NULL, NULL},
	};

	for (size_t i = 0; i < sizeof(w) / sizeof(w[0]); i++) {
		struct listaddr_match m;
		char ext[128] = "";
		int rc = listaddr_find(f->db, w[i].rcpt, &m);

		if (rc != w[i].rc)
			fail_msg("%s: expected rc %d, got %d", w[i].rcpt, w[i].rc, rc);
		if (rc != 1)
			continue;
		if (m.list_id != f->list.id || strcmp(listaddr_role_name(m.role), w[i].role) != 0)
			fail_msg("%s: expected list %lld role %s, got list %lld role %s", w[i].rcpt,
			         (long long)f->list.id, w[i].role, (long long)m.list_id,
			         listaddr_role_name(m.role));
		if (m.ext)
			snprintf(ext, sizeof(ext), "%.*s", (int)m.ext_len, m.ext);
		if (strcmp(ext, w[i].ext ? w[i].ext : "") != 0)
			fail_msg("%s: expected extension '%s', got '%s'", w[i].rcpt,
			         w[i].ext ? w[i].ext : "", ext);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_each_role_reaches_its_handler, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_recipient_is_a_list_address, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
