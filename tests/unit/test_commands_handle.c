/*
 * test_commands_handle.c - the email command handler and moderation over a
 * real SQLite store: double opt-in, token expiry, rate limits, RFC 3834,
 * owner mail, holds approved/rejected/discarded by mail, hold expiry.
 *
 * Each test gets a fresh database with the list dev@lists.example.org,
 * owner owner@example.org and moderator mod@example.org. Mail goes in as a
 * spool entry (db_spool_insert) handed to commands_handle() inside a
 * transaction, as the runner does; what comes out is read back from the
 * outbound queue.
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
#include "db/tokens.h"
#include "db/db.h"
#include "db/lists.h"
#include "db/members.h"
#include "db/queue.h"
#include "lists/store.h"
#include "db/spool.h"
#include "lists/commands.h"
#include "lists/moderate.h"
#include "lists/oneclick.h"
#include "mail/addr.h"

struct env {
	char dir[64];
	char path[128];
	struct db *db;
	sqlite3 *peek; /* a second connection to read what was queued */
	struct conf conf;
	int64_t list_id;
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

	snprintf(e->dir, sizeof(e->dir), "/tmp/fm-cmd-XXXXXX");
	assert_non_null(mkdtemp(e->dir));
	snprintf(e->path, sizeof(e->path), "%s/fanmail.db", e->dir);
	e->db = db_open(e->path, DB_OPEN_CREATE, err, sizeof(err));
	if (e->db == NULL)
		fail_msg("db_open: %s", err);
	conf_init(&e->conf);
	assert_int_equal(conf_set(&e->conf, "hostname", "mx.example.org", err, sizeof(err)), 0);
	a = parse_addr("dev@lists.example.org");
	assert_int_equal(store_list_create(e->db, &a, &l), 0);
	e->list_id = l.id;
	a = parse_addr("owner@example.org");
	assert_int_equal(store_role_add(e->db, l.id, DB_ROLE_OWNER, &a), 0);
	a = parse_addr("mod@example.org");
	assert_int_equal(store_role_add(e->db, l.id, DB_ROLE_MODERATOR, &a), 0);
	a = parse_addr("member@example.net");
	assert_int_equal(store_member_add(e->db, l.id, &a, NULL, NULL), 0);
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

static void
set(const char *key, const char *value)
{
	if (store_setting_set(E->db, E->list_id, key, value) < 0)
		fail_msg("list set %s=%s: %s", key, value, db_errmsg(E->db));
}

/* Spools msg for role (ext after '+') and runs the handler in a
 * transaction; returns the outcome (static). */
static const char *
deliver_as(const char *role, const char *ext, const char *mail_from, const char *msg,
           int64_t *spool_id)
{
	static char outcome[1024];
	char qid[DB_QID_LEN], rcpt[200];
	struct spool_rcpt r;
	struct spool_msg sm = {0};
	struct inbound in = {0};
	int64_t id;
	int rc;

	snprintf(rcpt, sizeof(rcpt), "dev-%s%s%s@lists.example.org", role, ext ? "+" : "",
	         ext ? ext : "");
	r.rcpt = rcpt;
	r.list_id = E->list_id;
	r.role = role;
	r.extension = ext;
	db_qid_make(qid);
	sm.qid = qid;
	sm.received = db_now();
	sm.client = "localhost[127.0.0.1]:1234";
	sm.helo = "localhost";
	sm.mail_from = mail_from;
	sm.body = msg;
	sm.len = strlen(msg);
	sm.rcpts = &r;
	sm.nrcpt = 1;
	if (db_spool_insert(E->db, &sm, &id) < 0)
		fail_msg("spool insert: %s", db_errmsg(E->db));
	in.spool_id = id;
	in.qid = qid;
	in.mail_from = mail_from;
	in.rcpt = rcpt;
	in.list_id = E->list_id;
	in.list_local = "dev";
	in.list_domain = "lists.example.org";
	if (listaddr_role_parse(role, &in.role) < 0)
		fail_msg("test role %s: no such role", role);
	in.extension = ext;
	in.message = msg;
	in.len = strlen(msg);
	in.received = sm.received;
	assert_int_equal(db_begin(E->db), 0);
	if (strcmp(role, "post") == 0)
		rc = moderate_hold(E->db, &E->conf, &in, "non-member", outcome, sizeof(outcome));
	else
		rc = commands_handle(E->db, &E->conf, &in, outcome, sizeof(outcome));
	if (rc < 0) {
		db_rollback(E->db);
		fail_msg("handler failed: %s (%s)", outcome, db_errmsg(E->db));
	}
	assert_int_equal(db_commit(E->db), 0);
	if (spool_id)
		*spool_id = id;
	return outcome;
}

static const char *
deliver(const char *role, const char *ext, const char *mail_from, const char *msg)
{
	return deliver_as(role, ext, mail_from, msg, NULL);
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

/* The newest queued notice to rcpt: its body (malloc'd) and env_from. */
static char *
last_mail_to(const char *rcpt, char *env_from, size_t len)
{
	static const char sql[] =
	    "SELECT m.body, m.env_from FROM out_msg m JOIN deliveries d"
	    " ON d.msg_id = m.id WHERE d.rcpt = ?1 ORDER BY m.id DESC LIMIT 1";
	sqlite3_stmt *st;
	char *body = NULL;

	assert_int_equal(sqlite3_prepare_v2(E->peek, sql, -1, &st, NULL), SQLITE_OK);
	sqlite3_bind_text(st, 1, rcpt, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW) {
		body = strndup((const char *)sqlite3_column_blob(st, 0),
		               (size_t)sqlite3_column_bytes(st, 0));
		if (env_from)
			snprintf(env_from, len, "%s", (const char *)sqlite3_column_text(st, 1));
	}
	sqlite3_finalize(st);
	return body;
}

static long long
mails_to(const char *rcpt)
{
	char sql[300];

	snprintf(sql, sizeof(sql), "SELECT count(*) FROM deliveries WHERE rcpt = '%s'", rcpt);
	return count(sql);
}

/* The token in "confirm TOKEN" of a confirmation mail. */
static void
token_of(const char *mail, char token[DB_TOKEN_LEN])
{
	const char *p = strstr(mail, "Subject: confirm ");

	assert_non_null(p);
	memcpy(token, p + strlen("Subject: confirm "), DB_TOKEN_LEN - 1);
	token[DB_TOKEN_LEN - 1] = '\0';
}

static int
is_member(const char *address, char *status)
{
	struct addr a = parse_addr(address);
	struct db_member m;

	if (store_member_find(E->db, E->list_id, &a, &m) < 0)
		return 0;
	if (status)
		strcpy(status, m.status);
	return 1;
}

#define MSG(from, subject, extra, body)                                                            \
	"From: " from "\r\nTo: dev-request@lists.example.org\r\nSubject: " subject                 \
	"\r\nMessage-ID: <m" __FILE__ ":" subject "@example.net>\r\n" extra "\r\n" body

/* ---- double opt-in ---- */

static void
test_subscribe_by_request_mails_a_token_and_adds_nobody(void **state)
{
	char env_from[200];
	const char *out = deliver("request", NULL, "bob@example.net",
	                          MSG("Bob <bob@example.net>", "subscribe", "", "\r\n"));
	char *mail = last_mail_to("bob@example.net", env_from, sizeof(env_from));

	assert_string_contains(out, "confirmation sent");
	assert_non_null(mail);
	assert_string_equal(env_from, "dev-bounces@lists.example.org");
	assert_string_contains(mail, "From: dev-request@lists.example.org\r\n");
	assert_string_contains(mail, "Reply-To: dev-confirm+");
	assert_string_contains(mail, "Auto-Submitted: auto-replied\r\n");
	assert_string_contains(mail, "In-Reply-To: <m");
	assert_false(is_member("bob@example.net", NULL));
	assert_int_equal(count("SELECT count(*) FROM tokens WHERE action = 'subscribe'"), 1);
	/* Only the confirmation: no separate results reply. */
	assert_int_equal(mails_to("bob@example.net"), 1);
	free(mail);
}

static void
test_confirm_address_subscribes_and_welcomes(void **state)
{
	char token[DB_TOKEN_LEN], status[16];
	char *mail;
	const char *out;

	deliver("join", NULL, "bob@example.net", MSG("bob@example.net", "hi", "", "x\r\n"));
	mail = last_mail_to("bob@example.net", NULL, 0);
	token_of(mail, token);
	free(mail);
	out = deliver("confirm", token, "bob@example.net",
	              MSG("bob@example.net", "Re: confirm", "", "\r\n"));
	assert_string_contains(out, "subscribe bob@example.net: confirmed");
	assert_true(is_member("bob@example.net", status));
	assert_string_equal(status, "enabled");
	mail = last_mail_to("bob@example.net", NULL, 0);
	assert_string_contains(mail, "Subject: Welcome to dev@lists.example.org");
	free(mail);
	/* The token is used up. */
	assert_int_equal(count("SELECT count(*) FROM tokens"), 0);
	out = deliver("confirm", token, "bob@example.net",
	              MSG("bob@example.net", "Re: confirm again", "", "\r\n"));
	assert_string_contains(out, "unknown token");
}

static void
test_confirm_line_in_reply_body_with_quotes(void **state)
{
	char token[DB_TOKEN_LEN], body[600];
	char *mail;
	const char *out;

	deliver("subscribe", NULL, "carol@example.net",
	        MSG("carol@example.net", "please", "", "\r\n"));
	mail = last_mail_to("carol@example.net", NULL, 0);
	token_of(mail, token);
	free(mail);
	snprintf(body, sizeof(body),
	         "From: carol@example.net\r\nSubject: Re: your mail\r\n\r\n"
	         "confirm %s\r\n\r\nOn Monday dev-request wrote:\r\n> unsubscribe\r\n"
	         "> confirm %s\r\n",
	         token, token);
	out = deliver("request", NULL, "carol@example.net", body);
	assert_string_contains(out, "subscribe carol@example.net: confirmed");
	assert_true(is_member("carol@example.net", NULL));
}

static void
test_expired_token_subscribes_nobody(void **state)
{
	char token[DB_TOKEN_LEN], body[300];
	const char *out;
	char *mail;

	assert_int_equal(db_token_add(E->db, E->list_id, "subscribe", "dan@example.net",
	                              "dan@example.net", NULL, db_now() - 1, token),
	                 0);
	snprintf(body, sizeof(body), "From: dan@example.net\r\nSubject: confirm %s\r\n\r\n", token);
	out = deliver("request", NULL, "dan@example.net", body);
	assert_string_contains(out, "token expired");
	assert_false(is_member("dan@example.net", NULL));
	mail = last_mail_to("dan@example.net", NULL, 0);
	assert_non_null(mail);
	assert_string_contains(mail, "expired");
	free(mail);
	assert_int_equal(count("SELECT count(*) FROM tokens"), 0);
}

static void
test_token_expiry_follows_the_list_setting(void **state)
{
	set("confirm_token_lifetime", "2h");
	deliver("join", NULL, "eve@example.net", MSG("eve@example.net", "x", "", "\r\n"));
	assert_int_equal(count("SELECT expires - created FROM tokens"), 7200);
}

static void
test_closed_list_takes_no_subscriptions(void **state)
{
	const char *out;

	set("subscribe_policy", "closed");
	out = deliver("join", NULL, "bob@example.net", MSG("bob@example.net", "x", "", "\r\n"));
	assert_string_contains(out, "refused");
	assert_int_equal(count("SELECT count(*) FROM tokens"), 0);
}

static void
test_member_subscribing_again_is_told_so(void **state)
{
	const char *out = deliver("request", NULL, "member@example.net",
	                          MSG("member@example.net", "join", "", "\r\n"));
	char *mail = last_mail_to("member@example.net", NULL, 0);

	assert_string_contains(out, "already a member");
	assert_non_null(mail);
	assert_string_contains(mail, "already subscribed");
	free(mail);
}

static void
test_unsubscribe_confirms_by_default(void **state)
{
	char token[DB_TOKEN_LEN];
	char *mail;
	const char *out;

	out = deliver("leave", NULL, "member@example.net",
	              MSG("member@example.net", "bye", "", "\r\n"));
	assert_string_contains(out, "confirmation sent");
	assert_true(is_member("member@example.net", NULL));
	mail = last_mail_to("member@example.net", NULL, 0);
	token_of(mail, token);
	assert_string_contains(mail, "unsubscribe member@example.net from");
	free(mail);
	out = deliver("confirm", token, "member@example.net",
	              MSG("member@example.net", "Re: bye", "", "\r\n"));
	assert_string_contains(out, "unsubscribe member@example.net: done");
	assert_false(is_member("member@example.net", NULL));
}

static void
test_unsubscribe_without_confirmation_when_the_list_says_so(void **state)
{
	const char *out;
	char *mail;

	set("unsubscribe_confirm", "no");
	out = deliver("request", NULL, "member@example.net",
	              MSG("Member <member@example.net>", "unsubscribe", "", "\r\n"));
	assert_string_contains(out, "unsubscribe member@example.net: done");
	assert_false(is_member("member@example.net", NULL));
	mail = last_mail_to("member@example.net", NULL, 0);
	assert_string_contains(mail, "You have left dev@lists.example.org");
	free(mail);
}

/* ---- LIST-leave+TOKEN (one-click, by email) ---- */

static void
oneclick_of(const char *addr_key, int64_t list_id, char *tok, size_t len)
{
	struct oneclick_keys k;

	assert_int_equal(oneclick_keys_load(E->db, &k), 0);
	assert_true(oneclick_token(&k, list_id, addr_key, tok, len) > 0);
}

static void
test_leave_token_unsubscribes_at_once(void **state)
{
	char tok[ONECLICK_TOKEN_MAX];
	const char *out;
	char *mail;

	set("owner_notify_leave", "yes");
	oneclick_of("member@example.net", E->list_id, tok, sizeof(tok));
	/* Sent by anyone (a mail client's unsubscribe button): the token is
	 * the proof, no confirmation. */
	out = deliver("leave", tok, "someone@else.example",
	              MSG("someone@else.example", "unsubscribe", "", "\r\n"));
	assert_string_contains(out, "unsubscribe member@example.net: done");
	assert_false(is_member("member@example.net", NULL));
	mail = last_mail_to("member@example.net", NULL, 0);
	assert_non_null(mail);
	assert_string_contains(mail, "You have left dev@lists.example.org");
	free(mail);
	mail = last_mail_to("owner@example.org", NULL, 0);
	assert_non_null(mail);
	assert_string_contains(mail, "member@example.net left dev@lists.example.org");
	free(mail);
	assert_int_equal(mails_to("someone@else.example"), 0);
	/* Again: nothing left to do, nobody told. */
	out = deliver("leave", tok, "someone@else.example",
	              MSG("someone@else.example", "unsubscribe", "", "\r\n"));
	assert_string_contains(out, "not a member");
	assert_int_equal(mails_to("someone@else.example"), 0);
}

static void
test_leave_token_upper_case_still_checks(void **state)
{
	char tok[ONECLICK_TOKEN_MAX];

	oneclick_of("member@example.net", E->list_id, tok, sizeof(tok));
	for (char *p = tok; *p; p++)
		if (*p >= 'a' && *p <= 'z')
			*p = (char)(*p - 'a' + 'A');
	assert_string_contains(deliver("leave", tok, "member@example.net",
	                               MSG("member@example.net", "bye", "", "\r\n")),
	                       "unsubscribe member@example.net: done");
	assert_false(is_member("member@example.net", NULL));
}

static void
test_leave_forged_token_is_plain_leave(void **state)
{
	char tok[ONECLICK_TOKEN_MAX];
	const char *out;
	size_t n;

	oneclick_of("member@example.net", E->list_id, tok, sizeof(tok));
	n = strlen(tok);
	tok[n - 1] = tok[n - 1] == 'a' ? 'b' : 'a';
	out = deliver("leave", tok, "member@example.net",
	              MSG("member@example.net", "bye", "", "\r\n"));
	assert_string_contains(out, "leave token: forged");
	assert_string_contains(out, "confirmation sent");
	assert_true(is_member("member@example.net", NULL));
	/* Another list's token for the same member is forged here too. */
	oneclick_of("member@example.net", E->list_id + 1, tok, sizeof(tok));
	out = deliver("leave", tok, "x@example.net", MSG("x@example.net", "bye", "", "\r\n"));
	assert_string_contains(out, "leave token: forged");
	assert_true(is_member("member@example.net", NULL));
	out = deliver("leave", "garbage", "x@example.net", MSG("x@example.net", "bye", "", "\r\n"));
	assert_string_contains(out, "leave token: malformed");
	assert_true(is_member("member@example.net", NULL));
}

static void
test_help_and_unknown_commands_get_a_reply(void **state)
{
	const char *out =
	    deliver("request", NULL, "x@example.net", MSG("x@example.net", "help", "", "\r\n"));
	char *mail = last_mail_to("x@example.net", NULL, 0);

	assert_string_contains(out, "help");
	assert_string_contains(mail, "subscribe (or join)");
	free(mail);
	out = deliver("request", NULL, "y@example.net",
	              MSG("y@example.net", "hello", "", "how do I post?\r\n"));
	assert_string_contains(out, "no command found");
	assert_int_equal(mails_to("y@example.net"), 1);
}

static void
test_commands_in_an_attached_message_are_not_run(void **state)
{
	const char *msg = "From: member@example.net\r\nSubject: fwd\r\n"
	                  "MIME-Version: 1.0\r\n"
	                  "Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n"
	                  "--b\r\nContent-Type: text/html\r\n\r\n<p>see below</p>\r\n"
	                  "--b\r\nContent-Type: message/rfc822\r\n\r\n"
	                  "From: x@example.net\r\nSubject: y\r\n\r\nunsubscribe\r\n"
	                  "--b--\r\n";
	const char *out = deliver("request", NULL, "member@example.net", msg);

	assert_string_contains(out, "no command found");
	assert_int_equal(count("SELECT count(*) FROM tokens"), 0);
}

static void
test_quoted_printable_body_is_decoded(void **state)
{
	const char *msg = "From: qp@example.net\r\nSubject: x\r\nMIME-Version: 1.0\r\n"
	                  "Content-Type: text/plain; charset=utf-8\r\n"
	                  "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
	                  "=73ubscribe\r\n";
	const char *out = deliver("request", NULL, "qp@example.net", msg);

	assert_string_contains(out, "confirmation sent");
}

/* ---- rate limits ---- */

static void
test_confirmations_are_limited_per_address(void **state)
{
	const char *out = NULL;

	for (int i = 0; i < 5; i++)
		out = deliver("join", NULL, "bomb@example.net",
		              MSG("bomb@example.net", "x", "", "\r\n"));
	assert_string_contains(out, "confirm_limit_per_address");
	assert_int_equal(mails_to("bomb@example.net"), 3);
}

static void
test_confirmations_are_limited_per_list(void **state)
{
	char from[64], msg[300];
	const char *out = NULL;

	set("confirm_limit_per_list", "2");
	for (int i = 0; i < 4; i++) {
		snprintf(from, sizeof(from), "v%d@example.net", i);
		snprintf(msg, sizeof(msg), "From: %s\r\nSubject: subscribe\r\n\r\n", from);
		out = deliver("request", NULL, from, msg);
	}
	assert_string_contains(out, "confirm_limit_per_list");
	assert_int_equal(count("SELECT count(*) FROM out_msg"), 2);
}

static void
test_replies_are_limited_per_address_a_day(void **state)
{
	char err[100];

	assert_int_equal(conf_set(&E->conf, "auto_reply_limit", "2", err, sizeof(err)), 0);
	for (int i = 0; i < 4; i++)
		deliver("request", NULL, "chatty@example.net",
		        MSG("chatty@example.net", "help", "", "\r\n"));
	assert_int_equal(mails_to("chatty@example.net"), 2);
}

/* ---- RFC 3834 ---- */

static void
test_automatic_mail_is_neither_acted_on_nor_answered(void **state)
{
	const char *out;

	out = deliver("request", NULL, "bot@example.net",
	              MSG("bot@example.net", "subscribe", "Auto-Submitted: auto-replied\r\n", ""));
	assert_string_contains(out, "ignored: auto-submitted");
	out = deliver("join", NULL, "bot@example.net",
	              MSG("bot@example.net", "x", "Precedence: bulk\r\n", ""));
	assert_string_contains(out, "ignored: precedence bulk");
	out = deliver("join", NULL, "", MSG("bot@example.net", "x", "", ""));
	assert_string_contains(out, "ignored: null sender");
	assert_int_equal(count("SELECT count(*) FROM out_msg"), 0);
	assert_int_equal(count("SELECT count(*) FROM tokens"), 0);
}

static void
test_auto_reply_cannot_confirm_a_subscription(void **state)
{
	char token[DB_TOKEN_LEN];
	char *mail;
	const char *out;

	deliver("join", NULL, "victim@example.net", MSG("victim@example.net", "x", "", ""));
	mail = last_mail_to("victim@example.net", NULL, 0);
	token_of(mail, token);
	free(mail);
	out = deliver("confirm", token, "victim@example.net",
	              MSG("victim@example.net", "Out of office", "Auto-Submitted: auto-replied\r\n",
	                  "I am away.\r\n"));
	assert_string_contains(out, "ignored");
	assert_false(is_member("victim@example.net", NULL));
}

/* ---- owner mail ---- */

static void
test_owner_mail_goes_to_the_owners_once(void **state)
{
	const char *out;
	char *mail;

	out = deliver("owner", NULL, "q@example.net",
	              "From: q@example.net\r\nSubject: question\r\n\r\nhello\r\n");
	assert_string_contains(out, "forwarded to 1 owner");
	mail = last_mail_to("owner@example.org", NULL, 0);
	assert_non_null(mail);
	assert_true(strncmp(mail, "X-Loop: dev-owner@lists.example.org\r\n", 37) == 0);
	assert_string_contains(mail, "Subject: question");
	/* Coming round again, it is dropped. */
	out = deliver("owner", NULL, "dev-bounces@lists.example.org", mail);
	assert_string_contains(out, "loop");
	assert_int_equal(mails_to("owner@example.org"), 1);
	free(mail);
}

/* ---- moderation ---- */

static const char *held_post = "From: Stranger <stranger@example.com>\r\n"
                               "To: dev@lists.example.org\r\n"
                               "Subject: buy now\r\n"
                               "Message-ID: <post1@example.com>\r\n"
                               "\r\n"
                               "a post from a non-member\r\n";

/* Holds held_post; returns the hold's token from the moderators' notice. */
static void
hold(char token[DB_TOKEN_LEN])
{
	const char *out = deliver("post", NULL, "stranger@example.com", held_post);
	char *mail = last_mail_to("mod@example.org", NULL, 0);
	const char *p;

	assert_string_contains(out, "held: non-member");
	assert_non_null(mail);
	p = strstr(mail, "Reply-To: dev-confirm+");
	assert_non_null(p);
	memcpy(token, p + strlen("Reply-To: dev-confirm+"), DB_TOKEN_LEN - 1);
	token[DB_TOKEN_LEN - 1] = '\0';
	assert_string_contains(mail, "Content-Type: message/rfc822");
	assert_string_contains(mail, "a post from a non-member");
	assert_string_contains(mail, "Auto-Submitted: auto-generated");
	free(mail);
}

static void
test_hold_notifies_moderators_and_poster(void **state)
{
	char token[DB_TOKEN_LEN], env_from[100];
	char *mail;

	hold(token);
	assert_int_equal(count("SELECT count(*) FROM holds WHERE state = 'held'"), 1);
	mail = last_mail_to("stranger@example.com", env_from, sizeof(env_from));
	assert_non_null(mail);
	assert_string_equal(env_from, "");
	assert_string_contains(mail, "awaits approval");
	free(mail);
	/* The owner is not asked when there is a moderator. */
	assert_int_equal(mails_to("owner@example.org"), 0);
}

static void
test_approve_by_mail_releases_the_post_once(void **state)
{
	char token[DB_TOKEN_LEN], body[300];
	const char *out;

	hold(token);
	snprintf(body, sizeof(body), "From: mod@example.org\r\nSubject: x\r\n\r\napprove %s\r\n",
	         token);
	out = deliver("request", NULL, "mod@example.org", body);
	assert_string_contains(out, "approved held message");
	assert_int_equal(count("SELECT count(*) FROM holds WHERE state = 'approved'"), 1);
	assert_int_equal(count("SELECT count(*) FROM out_msg WHERE kind = 'post'"), 1);
	assert_int_equal(count("SELECT count(*) FROM deliveries d JOIN out_msg m ON m.id ="
	                       " d.msg_id WHERE m.kind = 'post' AND d.rcpt = 'member@example.net'"),
	                 1);
	/* A second approval changes nothing. */
	out = deliver("request", NULL, "mod@example.org", body);
	assert_string_contains(out, "already");
	assert_int_equal(count("SELECT count(*) FROM out_msg WHERE kind = 'post'"), 1);
}

static void
test_reply_to_the_notice_approves(void **state)
{
	char token[DB_TOKEN_LEN];
	const char *out;

	hold(token);
	out = deliver("confirm", token, "mod@example.org",
	              "From: mod@example.org\r\nSubject: Re: held\r\n\r\nok\r\n");
	assert_string_contains(out, "approved held message");
	assert_int_equal(count("SELECT count(*) FROM out_msg WHERE kind = 'post'"), 1);
}

static void
test_reject_by_mail_tells_the_poster_why(void **state)
{
	char token[DB_TOKEN_LEN], body[300], env_from[100];
	const char *out;
	char *mail;

	hold(token);
	snprintf(body, sizeof(body),
	         "From: mod@example.org\r\nSubject: x\r\n\r\nreject %s off topic here\r\n", token);
	out = deliver("request", NULL, "mod@example.org", body);
	assert_string_contains(out, "rejected held message");
	mail = last_mail_to("stranger@example.com", env_from, sizeof(env_from));
	assert_string_contains(mail, "was rejected by a moderator");
	assert_string_contains(mail, "Reason: off topic here");
	assert_string_equal(env_from, "");
	free(mail);
	assert_int_equal(count("SELECT count(*) FROM out_msg WHERE kind = 'post'"), 0);
}

static void
test_reply_to_the_notice_with_reject_rejects(void **state)
{
	char token[DB_TOKEN_LEN];
	const char *out;

	hold(token);
	out = deliver("confirm", token, "mod@example.org",
	              "From: mod@example.org\r\nSubject: Re: held\r\n\r\nreject spam\r\n");
	assert_string_contains(out, "rejected held message");
	assert_int_equal(count("SELECT count(*) FROM holds WHERE state = 'rejected'"), 1);
}

static void
test_discard_by_mail_is_silent(void **state)
{
	char token[DB_TOKEN_LEN], body[300];
	const char *out;

	hold(token);
	snprintf(body, sizeof(body), "From: mod@example.org\r\nSubject: discard %s\r\n\r\n", token);
	out = deliver("request", NULL, "mod@example.org", body);
	assert_string_contains(out, "discarded held message");
	/* Only the "awaits approval" notice ever reached the poster. */
	assert_int_equal(mails_to("stranger@example.com"), 1);
}

static void
test_hold_token_of_another_list_is_refused(void **state)
{
	char token[DB_TOKEN_LEN], body[300];
	struct addr a = parse_addr("other@lists.example.org");
	struct db_list l;
	int64_t mine = E->list_id;
	const char *out;

	hold(token);
	assert_int_equal(store_list_create(E->db, &a, &l), 0);
	E->list_id = l.id;
	snprintf(body, sizeof(body), "From: mod@example.org\r\nSubject: approve %s\r\n\r\n", token);
	out = deliver("request", NULL, "mod@example.org", body);
	E->list_id = mine;
	assert_string_contains(out, "another list");
	assert_int_equal(count("SELECT count(*) FROM holds WHERE state = 'held'"), 1);
}

static void
test_expired_holds_are_discarded_or_rejected(void **state)
{
	char token[DB_TOKEN_LEN];
	size_t n = 0;
	char *mail;

	hold(token);
	assert_int_equal(db_begin(E->db), 0);
	assert_int_equal(commands_housekeeping(E->db, &E->conf, db_now() + 30 * 86400, &n), 0);
	assert_int_equal(db_commit(E->db), 0);
	assert_int_equal(n, 1);
	assert_int_equal(count("SELECT count(*) FROM holds WHERE state = 'expired'"), 1);
	assert_int_equal(mails_to("stranger@example.com"), 1); /* discard: silent */

	set("hold_expire_action", "reject");
	hold(token);
	assert_int_equal(db_begin(E->db), 0);
	assert_int_equal(moderate_expire(E->db, &E->conf, E->list_id, db_now() + 30 * 86400, &n),
	                 0);
	assert_int_equal(db_commit(E->db), 0);
	assert_int_equal(n, 1);
	mail = last_mail_to("stranger@example.com", NULL, 0);
	assert_string_contains(mail, "not approved by a moderator");
	free(mail);
}

static void
test_decision_after_the_deadline_is_refused(void **state)
{
	char token[DB_TOKEN_LEN], body[300];
	const char *out;

	set("hold_lifetime", "0");
	hold(token);
	sleep(1);
	snprintf(body, sizeof(body), "From: mod@example.org\r\nSubject: approve %s\r\n\r\n", token);
	out = deliver("request", NULL, "mod@example.org", body);
	assert_string_contains(out, "expired");
	assert_int_equal(count("SELECT count(*) FROM out_msg WHERE kind = 'post'"), 0);
	assert_int_equal(count("SELECT count(*) FROM holds WHERE state = 'expired'"), 1);
}

static void
test_any_command_mail_expires_overdue_holds(void **state)
{
	char token[DB_TOKEN_LEN];

	set("hold_lifetime", "0");
	hold(token);
	sleep(1);
	deliver("request", NULL, "x@example.net", MSG("x@example.net", "help", "", "\r\n"));
	assert_int_equal(count("SELECT count(*) FROM holds WHERE state = 'expired'"), 1);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    T(test_subscribe_by_request_mails_a_token_and_adds_nobody),
	    T(test_confirm_address_subscribes_and_welcomes),
	    T(test_confirm_line_in_reply_body_with_quotes),
	    T(test_expired_token_subscribes_nobody),
	    T(test_token_expiry_follows_the_list_setting),
	    T(test_closed_list_takes_no_subscriptions),
	    T(test_member_subscribing_again_is_told_so),
	    T(test_unsubscribe_confirms_by_default),
	    T(test_leave_token_unsubscribes_at_once),
	    T(test_leave_token_upper_case_still_checks),
	    T(test_leave_forged_token_is_plain_leave),
	    T(test_unsubscribe_without_confirmation_when_the_list_says_so),
	    T(test_help_and_unknown_commands_get_a_reply),
	    T(test_commands_in_an_attached_message_are_not_run),
	    T(test_quoted_printable_body_is_decoded),
	    T(test_confirmations_are_limited_per_address),
	    T(test_confirmations_are_limited_per_list),
	    T(test_replies_are_limited_per_address_a_day),
	    T(test_automatic_mail_is_neither_acted_on_nor_answered),
	    T(test_auto_reply_cannot_confirm_a_subscription),
	    T(test_owner_mail_goes_to_the_owners_once),
	    T(test_hold_notifies_moderators_and_poster),
	    T(test_approve_by_mail_releases_the_post_once),
	    T(test_reply_to_the_notice_approves),
	    T(test_reject_by_mail_tells_the_poster_why),
	    T(test_reply_to_the_notice_with_reject_rejects),
	    T(test_discard_by_mail_is_silent),
	    T(test_hold_token_of_another_list_is_refused),
	    T(test_expired_holds_are_discarded_or_rejected),
	    T(test_decision_after_the_deadline_is_refused),
	    T(test_any_command_mail_expires_overdue_holds),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
