/*
 * test_web.c - the list logic behind the HTTP face (lists/web.c) over a
 * real SQLite store: showing never changes anything, buttons do, in one
 * committed transaction each; one-click unsubscribe with real tokens
 * (lists/oneclick.c, keys from the store), forged and malformed ones,
 * idempotence; confirmation links (subscribe, unsubscribe, expired,
 * unknown, `set MODE` ones refused); the forms (unknown list, closed list, limits, the same answer
 * for members and strangers); the owners' notice on leaving.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "fm_assert.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf/conf.h"
#include "db/db.h"
#include "db/lists.h"
#include "db/members.h"
#include "db/secrets.h"
#include "db/tokens.h"
#include "lists/oneclick.h"
#include "lists/store.h"
#include "lists/web.h"
#include "mail/addr.h"

struct env {
	char dir[64];
	char path[128];
	struct db *db;
	sqlite3 *peek;
	struct conf conf;
	int64_t list_id;
	struct oneclick_keys keys;
};

static struct env *E;

static struct addr
parse_addr(const char *s)
{
	struct addr a;
	const char *why;

	if (addr_parse(s, strlen(s), ADDR_UTF8, &a, &why) < 0)
		fail_msg("bad test address %s: %s", s, why);
	return a;
}

static int
setup(void **state)
{
	struct env *e = calloc(1, sizeof(*e));
	char err[256];
	struct db_list l;
	struct addr a;

	snprintf(e->dir, sizeof(e->dir), "/tmp/fm-web-XXXXXX");
	assert_non_null(mkdtemp(e->dir));
	snprintf(e->path, sizeof(e->path), "%s/fanmail.db", e->dir);
	e->db = db_open(e->path, DB_OPEN_CREATE, err, sizeof(err));
	if (e->db == NULL)
		fail_msg("db_open: %s", err);
	conf_init(&e->conf);
	assert_int_equal(conf_set(&e->conf, "hostname", "mx.example.org", err, sizeof(err)), 0);
	assert_int_equal(
	    conf_set(&e->conf, "http_base_url", "https://lists.example.org/", err, sizeof(err)), 0);
	a = parse_addr("News@Lists.Example.org");
	assert_int_equal(store_list_create(e->db, &a, &l), 0);
	e->list_id = l.id;
	a = parse_addr("owner@example.org");
	assert_int_equal(store_role_add(e->db, l.id, DB_ROLE_OWNER, &a), 0);
	a = parse_addr("Ann.Member@Example.NET");
	assert_int_equal(store_member_add(e->db, l.id, &a, NULL, NULL), 0);
	a = parse_addr("bob@example.com");
	assert_int_equal(store_member_add(e->db, l.id, &a, NULL, NULL), 0);
	assert_int_equal(oneclick_keys_load(e->db, &e->keys), 0);
	assert_int_equal(sqlite3_open(e->path, &e->peek), SQLITE_OK);
	sqlite3_busy_timeout(e->peek, 5000);
	E = e;
	*state = e;
	return 0;
}

static int
teardown(void **state)
{
	struct env *e = *state;
	char cmd[200];

	sqlite3_close(e->peek);
	db_close(e->db);
	conf_free(&e->conf);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", e->dir);
	if (system(cmd) != 0)
		return -1;
	free(e);
	return 0;
}

static long long
count(const char *sql)
{
	sqlite3_stmt *st;
	long long n = -1;

	if (sqlite3_prepare_v2(E->peek, sql, -1, &st, NULL) != SQLITE_OK)
		fail_msg("%s: %s", sql, sqlite3_errmsg(E->peek));
	if (sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return n;
}

static long long
members(void)
{
	return count("SELECT count(*) FROM members");
}

static long long
mails_to(const char *rcpt)
{
	char sql[300];

	snprintf(sql, sizeof(sql),
	         "SELECT count(*) FROM deliveries WHERE rcpt = '%s' COLLATE NOCASE", rcpt);
	return count(sql);
}

static void
token_for(const char *addr_key, char *tok, size_t len)
{
	assert_true(oneclick_token(&E->keys, E->list_id, addr_key, tok, len) > 0);
}

static void
set(const char *key, const char *value)
{
	if (store_setting_set(E->db, E->list_id, key, value) < 0)
		fail_msg("list set %s=%s: %s", key, value, db_errmsg(E->db));
}

/* ---- one-click ---- */

static void
test_oneclick_show_changes_nothing_and_apply_removes_exactly_that_member(void **state)
{
	struct web_result r;
	char tok[ONECLICK_TOKEN_MAX];

	(void)state;
	token_for("ann.member@example.net", tok, sizeof(tok));
	for (int i = 0; i < 3; i++) {
		assert_int_equal(
		    web_oneclick_show(E->db, &E->conf, &E->keys, "news@lists.example.org", tok, &r),
		    0);
		assert_int_equal(r.status, 200);
		assert_int_equal(r.kind, WEB_ONECLICK);
		assert_string_equal(r.address, "Ann.Member@Example.NET");
		assert_string_contains(r.message, "Press the button");
	}
	assert_int_equal(members(), 2);
	/* The list address in any case. */
	assert_int_equal(
	    web_oneclick_apply(E->db, &E->conf, &E->keys, "NEWS@lists.example.org", tok, &r), 0);
	assert_int_equal(r.status, 200);
	assert_true(r.done);
	assert_string_contains(r.message, "has left");
	assert_int_equal(members(), 1);
	assert_int_equal(count("SELECT count(*) FROM members WHERE addr_key = 'bob@example.com'"),
	                 1);
	/* The goodbye, to the address as the member gave it. */
	assert_int_equal(mails_to("Ann.Member@example.net"), 1);
	assert_true(r.mail_queued);
	/* Idempotent: again, 200, nothing more happens. */
	assert_int_equal(
	    web_oneclick_apply(E->db, &E->conf, &E->keys, "news@lists.example.org", tok, &r), 0);
	assert_int_equal(r.status, 200);
	assert_string_contains(r.message, "not subscribed");
	assert_int_equal(members(), 1);
	assert_int_equal(mails_to("Ann.Member@example.net"), 1);
	assert_int_equal(count("SELECT count(*) FROM events WHERE kind = 'unsubscribe'"), 1);
}

static void
test_oneclick_forged_or_malformed_tokens_change_nothing(void **state)
{
	struct web_result r;
	char tok[ONECLICK_TOKEN_MAX], bad[ONECLICK_TOKEN_MAX];
	size_t n;

	(void)state;
	token_for("bob@example.com", tok, sizeof(tok));
	n = strlen(tok);
	/* One letter of the signature changed. */
	snprintf(bad, sizeof(bad), "%s", tok);
	bad[n - 1] = bad[n - 1] == 'a' ? 'b' : 'a';
	assert_int_equal(
	    web_oneclick_apply(E->db, &E->conf, &E->keys, "news@lists.example.org", bad, &r), 0);
	assert_int_equal(r.status, 403);
	/* Another member's address with bob's signature. */
	token_for("ann.member@example.net", bad, sizeof(bad));
	memcpy(bad + strlen(bad) - ONECLICK_SIG_LEN, tok + n - ONECLICK_SIG_LEN, ONECLICK_SIG_LEN);
	assert_int_equal(
	    web_oneclick_apply(E->db, &E->conf, &E->keys, "news@lists.example.org", bad, &r), 0);
	assert_int_equal(r.status, 403);
	/* An unknown key version. */
	snprintf(bad, sizeof(bad), "9%s", tok);
	assert_int_equal(
	    web_oneclick_apply(E->db, &E->conf, &E->keys, "news@lists.example.org", bad, &r), 0);
	assert_int_equal(r.status, 403);
	/* Malformed: no dashes, a letter outside base32, cut short, empty. */
	const char *malformed[] = {"",
	                           "abc",
	                           "1-",
	                           "1-mzxw6-",
	                           "x-mzxw6-abcdefghijklmnop",
	                           "1-mzxw1-abcdefghijklmnop",
	                           "1-mzxw6-abcdefgh"};
	for (size_t i = 0; i < sizeof(malformed) / sizeof(malformed[0]); i++) {
		assert_int_equal(web_oneclick_apply(E->db, &E->conf, &E->keys,
		                                    "news@lists.example.org", malformed[i], &r),
		                 0);
		assert_int_equal(r.status, 400);
	}
	/* A token of this list used on another (unknown) list: 404. */
	assert_int_equal(
	    web_oneclick_apply(E->db, &E->conf, &E->keys, "other@lists.example.org", tok, &r), 0);
	assert_int_equal(r.status, 404);
	assert_int_equal(members(), 2);
	assert_int_equal(count("SELECT count(*) FROM deliveries"), 0);
}

static void
test_oneclick_old_key_versions_are_honoured_until_dropped(void **state)
{
	struct web_result r;
	char old[ONECLICK_TOKEN_MAX], cur[ONECLICK_TOKEN_MAX];
	int v = 0;
	int64_t n = 0;

	(void)state;
	token_for("bob@example.com", old, sizeof(old));
	assert_int_equal(db_secret_rotate(E->db, "oneclick", db_now(), &v), 0);
	assert_int_equal(v, 2);
	assert_int_equal(oneclick_keys_load(E->db, &E->keys), 0);
	assert_int_equal(E->keys.n, 2);
	token_for("bob@example.com", cur, sizeof(cur));
	assert_true(strncmp(cur, "2-", 2) == 0);
	assert_true(strncmp(old, "1-", 2) == 0);
	assert_int_equal(
	    web_oneclick_show(E->db, &E->conf, &E->keys, "news@lists.example.org", old, &r), 0);
	assert_int_equal(r.status, 200);
	assert_int_equal(db_secret_drop_before(E->db, "oneclick", 2, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(oneclick_keys_load(E->db, &E->keys), 0);
	assert_int_equal(
	    web_oneclick_apply(E->db, &E->conf, &E->keys, "news@lists.example.org", old, &r), 0);
	assert_int_equal(r.status, 403);
	assert_int_equal(members(), 2);
	assert_int_equal(
	    web_oneclick_apply(E->db, &E->conf, &E->keys, "news@lists.example.org", cur, &r), 0);
	assert_int_equal(r.status, 200);
	assert_int_equal(members(), 1);
}

static void
test_owners_are_told_when_the_list_asks(void **state)
{
	struct web_result r;
	char tok[ONECLICK_TOKEN_MAX];

	(void)state;
	set("owner_notify_leave", "yes");
	set("send_goodbye", "no");
	token_for("bob@example.com", tok, sizeof(tok));
	assert_int_equal(
	    web_oneclick_apply(E->db, &E->conf, &E->keys, "news@lists.example.org", tok, &r), 0);
	assert_int_equal(r.status, 200);
	assert_int_equal(mails_to("owner@example.org"), 1);
	assert_int_equal(mails_to("bob@example.com"), 0);
}

/* ---- forms and confirmation links ---- */

/* The token of the newest confirmation mail to rcpt, and the link in it. */
static void
confirmation_of(const char *rcpt, char token[DB_TOKEN_LEN])
{
	static const char sql[] =
	    "SELECT m.body FROM out_msg m JOIN deliveries d"
	    " ON d.msg_id = m.id WHERE d.rcpt = ?1 ORDER BY m.id DESC LIMIT 1";
	sqlite3_stmt *st;
	char *body = NULL, link[200];
	const char *p;

	assert_int_equal(sqlite3_prepare_v2(E->peek, sql, -1, &st, NULL), SQLITE_OK);
	sqlite3_bind_text(st, 1, rcpt, -1, SQLITE_STATIC);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	body =
	    strndup((const char *)sqlite3_column_blob(st, 0), (size_t)sqlite3_column_bytes(st, 0));
	sqlite3_finalize(st);
	p = strstr(body, "Subject: confirm ");
	assert_non_null(p);
	memcpy(token, p + strlen("Subject: confirm "), DB_TOKEN_LEN - 1);
	token[DB_TOKEN_LEN - 1] = '\0';
	/* The link under http_base_url, its trailing '/' dropped. */
	snprintf(link, sizeof(link), "https://lists.example.org/confirm/%s\r\n", token);
	assert_string_contains(body, link);
	assert_string_contains(body, "press its button");
	free(body);
}

static void
test_subscribe_form_then_confirmation_link(void **state)
{
	struct web_result r;
	char token[DB_TOKEN_LEN], upper[DB_TOKEN_LEN];

	(void)state;
	assert_int_equal(web_form_show(E->db, "news@lists.example.org", WEB_FORM_SUBSCRIBE, &r), 0);
	assert_int_equal(r.status, 200);
	assert_int_equal(r.kind, WEB_FORM_SUBSCRIBE);
	assert_int_equal(web_form_request(E->db, &E->conf, "news@lists.example.org",
	                                  WEB_FORM_SUBSCRIBE, "carol@example.org", &r),
	                 0);
	assert_int_equal(r.status, 200);
	assert_true(r.mail_queued);
	assert_int_equal(members(), 2);
	confirmation_of("carol@example.org", token);
	/* Showing, in any case, any number of times: nothing changes. */
	for (size_t i = 0; i < sizeof(upper); i++)
		upper[i] = (char)(token[i] >= 'a' && token[i] <= 'f' ? token[i] - 32 : token[i]);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(web_confirm_show(E->db, &E->conf, i ? token : upper, &r), 0);
		assert_int_equal(r.status, 200);
		assert_int_equal(r.kind, WEB_CONFIRM_SUBSCRIBE);
		assert_string_equal(r.address, "carol@example.org");
	}
	assert_int_equal(members(), 2);
	assert_int_equal(web_confirm_apply(E->db, &E->conf, token, &r), 0);
	assert_int_equal(r.status, 200);
	assert_int_equal(members(), 3);
	assert_int_equal(mails_to("carol@example.org"), 2); /* the confirmation, the welcome */
	/* Used up. */
	assert_int_equal(web_confirm_apply(E->db, &E->conf, token, &r), 0);
	assert_int_equal(r.status, 404);
	assert_int_equal(web_confirm_show(E->db, &E->conf, "not-a-token", &r), 0);
	assert_int_equal(r.status, 400);
}

static void
test_unsubscribe_form_always_confirms_and_tells_nobody_who_is_a_member(void **state)
{
	struct web_result r, stranger;
	char token[DB_TOKEN_LEN];

	(void)state;
	set("unsubscribe_confirm", "no"); /* by email; the web always confirms */
	assert_int_equal(web_form_request(E->db, &E->conf, "news@lists.example.org",
	                                  WEB_FORM_UNSUBSCRIBE, "bob@example.com", &r),
	                 0);
	assert_int_equal(r.status, 200);
	assert_int_equal(members(), 2);
	assert_int_equal(web_form_request(E->db, &E->conf, "news@lists.example.org",
	                                  WEB_FORM_UNSUBSCRIBE, "stranger@example.com", &stranger),
	                 0);
	assert_int_equal(stranger.status, 200);
	assert_int_equal(mails_to("stranger@example.com"), 0);
	/* The same sentence, but for the address. */
	assert_int_equal(strlen(r.message) - strlen("bob@example.com"),
	                 strlen(stranger.message) - strlen("stranger@example.com"));
	confirmation_of("bob@example.com", token);
	assert_int_equal(web_confirm_show(E->db, &E->conf, token, &r), 0);
	assert_int_equal(r.kind, WEB_CONFIRM_UNSUBSCRIBE);
	assert_int_equal(members(), 2);
	assert_int_equal(web_confirm_apply(E->db, &E->conf, token, &r), 0);
	assert_int_equal(r.status, 200);
	assert_int_equal(members(), 1);
}

static void
test_expired_tokens_unknown_lists_closed_lists_limits(void **state)
{
	struct web_result r;
	char token[DB_TOKEN_LEN];

	(void)state;
	assert_int_equal(db_token_add(E->db, E->list_id, "subscribe", "dan@example.org",
	                              "dan@example.org", "", db_now() - 1, token),
	                 0);
	assert_int_equal(web_confirm_show(E->db, &E->conf, token, &r), 0);
	assert_int_equal(r.status, 410);
	assert_int_equal(web_confirm_apply(E->db, &E->conf, token, &r), 0);
	assert_int_equal(r.status, 410);
	assert_int_equal(members(), 2);
	assert_int_equal(web_confirm_show(E->db, &E->conf, token, &r), 0);
	assert_int_equal(r.status, 404); /* deleted by the POST */

	assert_int_equal(web_form_show(E->db, "nope@lists.example.org", WEB_FORM_SUBSCRIBE, &r), 0);
	assert_int_equal(r.status, 404);
	assert_int_equal(web_form_show(E->db, "no-at-sign", WEB_FORM_SUBSCRIBE, &r), 0);
	assert_int_equal(r.status, 404);
	assert_int_equal(web_form_request(E->db, &E->conf, "news@lists.example.org",
	                                  WEB_FORM_SUBSCRIBE, "not an address", &r),
	                 0);
	assert_int_equal(r.status, 400);
	/* Our own list address never becomes a member. */
	assert_int_equal(web_form_request(E->db, &E->conf, "news@lists.example.org",
	                                  WEB_FORM_SUBSCRIBE, "news-request@lists.example.org", &r),
	                 0);
	assert_int_equal(r.status, 400);
	/* confirm_limit_per_address (3 a day). */
	for (int i = 0; i < 3; i++) {
		assert_int_equal(web_form_request(E->db, &E->conf, "news@lists.example.org",
		                                  WEB_FORM_SUBSCRIBE, "eve@example.org", &r),
		                 0);
		assert_int_equal(r.status, 200);
	}
	assert_int_equal(web_form_request(E->db, &E->conf, "news@lists.example.org",
	                                  WEB_FORM_SUBSCRIBE, "eve@example.org", &r),
	                 0);
	assert_int_equal(r.status, 429);
	assert_int_equal(mails_to("eve@example.org"), 3);
	set("subscribe_policy", "closed");
	assert_int_equal(web_form_request(E->db, &E->conf, "news@lists.example.org",
	                                  WEB_FORM_SUBSCRIBE, "frank@example.org", &r),
	                 0);
	assert_int_equal(r.status, 403);
	assert_int_equal(mails_to("frank@example.org"), 0);
}

/* `set MODE` tokens (email commands) are confirmed by reply only: the page
 * shows an error, a POST changes nothing and leaves the token for the
 * reply. */
static void
test_set_mode_tokens_are_refused_and_kept(void **state)
{
	struct web_result r;
	char token[DB_TOKEN_LEN];

	(void)state;
	assert_int_equal(db_token_add(E->db, E->list_id, "set-digest", "bob@example.com",
	                              "bob@example.com", "", db_now() + 3600, token),
	                 0);
	assert_int_equal(web_confirm_show(E->db, &E->conf, token, &r), 0);
	assert_int_equal(r.status, 403);
	assert_int_equal(r.kind, WEB_ERROR);
	assert_non_null(strstr(r.message, "confirm this change by replying to the mail"));
	assert_int_equal(web_confirm_apply(E->db, &E->conf, token, &r), 0);
	assert_int_equal(r.status, 403);
	assert_int_equal(r.kind, WEB_ERROR);
	assert_false(r.done);
	assert_non_null(strstr(r.message, "nothing was changed"));
	assert_int_equal(count("SELECT count(*) FROM members WHERE delivery = 'regular'"), 2);
	assert_int_equal(count("SELECT count(*) FROM tokens WHERE action = 'set-digest'"), 1);
	assert_int_equal(count("SELECT count(*) FROM deliveries"), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(
	        test_oneclick_show_changes_nothing_and_apply_removes_exactly_that_member, setup,
	        teardown),
	    cmocka_unit_test_setup_teardown(test_oneclick_forged_or_malformed_tokens_change_nothing,
	                                    setup, teardown),
	    cmocka_unit_test_setup_teardown(
	        test_oneclick_old_key_versions_are_honoured_until_dropped, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_owners_are_told_when_the_list_asks, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_subscribe_form_then_confirmation_link, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(
	        test_unsubscribe_form_always_confirms_and_tells_nobody_who_is_a_member, setup,
	        teardown),
	    cmocka_unit_test_setup_teardown(test_expired_tokens_unknown_lists_closed_lists_limits,
	                                    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_set_mode_tokens_are_refused_and_kept, setup,
	                                    teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
