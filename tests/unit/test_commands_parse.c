/*
 * test_commands_parse.c - reading email commands from subjects and bodies,
 * and the RFC 3834 rules on which mail is never answered.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lists/commands.h"
#include "mail/msg.h"

static void
parse(const char *subject, const char *body, struct commands_list *cl)
{
	commands_parse(subject, body, body ? strlen(body) : 0, cl);
}

static void
test_subject_command_with_reply_prefixes(void **state)
{
	struct commands_list cl;

	parse("Re: AW: [dev] confirm 0123ABCDef", NULL, &cl);
	assert_int_equal(cl.n, 1);
	assert_int_equal(cl.cmds[0].verb, CMD_CONFIRM);
	assert_string_equal(cl.cmds[0].token, "0123abcdef");
	assert_false(cl.cmds[0].bad);
}

static void
test_subject_that_is_no_command_is_ignored(void **state)
{
	struct commands_list cl;

	parse("Question about the list", "subscribe\n", &cl);
	assert_int_equal(cl.n, 1);
	assert_int_equal(cl.cmds[0].verb, CMD_SUBSCRIBE);
	assert_int_equal(cl.skipped, 0);
}

static void
test_join_leave_help_synonyms(void **state)
{
	struct commands_list cl;

	parse(NULL, "JOIN\r\nhelp\r\nLeave\r\n", &cl);
	assert_int_equal(cl.n, 3);
	assert_int_equal(cl.cmds[0].verb, CMD_SUBSCRIBE);
	assert_int_equal(cl.cmds[1].verb, CMD_HELP);
	assert_int_equal(cl.cmds[2].verb, CMD_UNSUBSCRIBE);
}

static void
test_set_takes_a_delivery_mode(void **state)
{
	struct commands_list cl;

	parse("set Digest-Text", "set regular\nset nomail\nset digest\nset mime\n", &cl);
	assert_int_equal(cl.n, 5);
	assert_int_equal(cl.cmds[0].verb, CMD_SET);
	assert_string_equal(cl.cmds[0].token, "digest-text");
	assert_false(cl.cmds[0].bad);
	assert_string_equal(cl.cmds[1].token, "regular");
	assert_string_equal(cl.cmds[2].token, "nomail");
	assert_string_equal(cl.cmds[3].token, "digest");
	assert_int_equal(cl.cmds[4].verb, CMD_SET);
	assert_true(cl.cmds[4].bad);
}

static void
test_quoted_lines_are_ignored(void **state)
{
	struct commands_list cl;
	const char *body = "confirm aaaa1111\n"
	                   "\n"
	                   "On Monday, list wrote:\n"
	                   "> confirm bbbb2222\n"
	                   "> unsubscribe\n";

	parse(NULL, body, &cl);
	assert_int_equal(cl.n, 1);
	assert_string_equal(cl.cmds[0].token, "aaaa1111");
}

static void
test_quoted_lines_before_commands_do_not_count(void **state)
{
	struct commands_list cl;
	const char *body = "> unsubscribe\n> leave\n>> join\n>\n  > help\n\nsubscribe\n";

	parse(NULL, body, &cl);
	assert_int_equal(cl.n, 1);
	assert_int_equal(cl.cmds[0].verb, CMD_SUBSCRIBE);
	assert_int_equal(cl.skipped, 0);
}

static void
test_signature_ends_commands(void **state)
{
	struct commands_list cl;

	parse(NULL, "subscribe\n-- \nhelp\nunsubscribe\n", &cl);
	assert_int_equal(cl.n, 1);
	assert_int_equal(cl.cmds[0].verb, CMD_SUBSCRIBE);
}

static void
test_first_non_command_after_commands_stops(void **state)
{
	struct commands_list cl;

	parse(NULL, "help\nsubscribe\nThanks a lot!\nunsubscribe\n", &cl);
	assert_int_equal(cl.n, 2);
	assert_int_equal(cl.cmds[1].verb, CMD_SUBSCRIBE);
}

static void
test_end_stops_reading(void **state)
{
	struct commands_list cl;

	parse(NULL, "help\nend\nunsubscribe\n", &cl);
	assert_int_equal(cl.n, 1);
}

static void
test_some_junk_before_commands_is_skipped(void **state)
{
	struct commands_list cl;

	parse(NULL, "Hello,\nplease add me.\n\nsubscribe\n", &cl);
	assert_int_equal(cl.n, 1);
	assert_int_equal(cl.skipped, 2);
}

static void
test_too_much_junk_gives_up(void **state)
{
	struct commands_list cl;

	parse(NULL, "a\nb\nc\nd\ne\nf\nsubscribe\n", &cl);
	assert_int_equal(cl.n, 0);
	assert_int_equal(cl.skipped, COMMANDS_MAX_JUNK);
}

static void
test_same_command_twice_counts_once(void **state)
{
	struct commands_list cl;

	parse("Re: confirm abc123", "confirm abc123\nconfirm ABC123\n", &cl);
	assert_int_equal(cl.n, 1);
}

static void
test_tokens_are_checked(void **state)
{
	struct commands_list cl;

	parse(NULL, "confirm\napprove <abcd1234>\nreject ab$cd\ndiscard 0f0f:\n", &cl);
	assert_int_equal(cl.n, 4);
	assert_true(cl.cmds[0].bad);
	assert_false(cl.cmds[1].bad);
	assert_string_equal(cl.cmds[1].token, "abcd1234");
	assert_true(cl.cmds[2].bad);
	assert_false(cl.cmds[3].bad);
	assert_string_equal(cl.cmds[3].token, "0f0f");
}

static void
test_reject_keeps_its_reason(void **state)
{
	struct commands_list cl;

	parse(NULL, "reject 00ff00ff off topic, please ask elsewhere\n", &cl);
	assert_int_equal(cl.n, 1);
	assert_int_equal(cl.cmds[0].verb, CMD_REJECT);
	assert_string_equal(cl.cmds[0].token, "00ff00ff");
	assert_string_equal(cl.cmds[0].rest, "off topic, please ask elsewhere");
}

static void
test_at_most_commands_max(void **state)
{
	char body[2000] = "";
	struct commands_list cl;

	for (int i = 0; i < COMMANDS_MAX + 5; i++) {
		char line[64];
		snprintf(line, sizeof(line), "confirm t%d\n", i);
		strcat(body, line);
	}
	parse(NULL, body, &cl);
	assert_int_equal(cl.n, COMMANDS_MAX);
}

static void
test_overlong_token_is_bad(void **state)
{
	char body[200];
	struct commands_list cl;

	memset(body, 'a', sizeof(body));
	memcpy(body, "confirm ", 8);
	body[8 + COMMANDS_TOKEN_MAX + 1] = '\0';
	parse(NULL, body, &cl);
	assert_int_equal(cl.n, 1);
	assert_true(cl.cmds[0].bad);
}

/* ---- RFC 3834 ---- */

static const char *
reason_for(const char *headers, const char *mail_from)
{
	static char buf[2000];
	struct msg m;
	const char *why;

	snprintf(buf, sizeof(buf), "From: a@example.net\r\n%s\r\nbody\r\n", headers);
	assert_int_equal(msg_parse(&m, buf, strlen(buf)), 0);
	why = commands_auto_reason(&m, mail_from);
	msg_free(&m);
	return why;
}

static void
test_rfc3834_plain_mail_may_be_answered(void **state)
{
	assert_null(reason_for("Subject: hi\r\n", "a@example.net"));
	assert_null(reason_for("Auto-Submitted: no\r\n", "a@example.net"));
	assert_null(reason_for("Auto-Submitted: No (comment)\r\n", "a@example.net"));
	assert_null(reason_for("Precedence: first-class\r\n", "a@example.net"));
}

static void
test_rfc3834_auto_submitted_is_not_answered(void **state)
{
	assert_string_equal(reason_for("Auto-Submitted: auto-replied\r\n", "a@example.net"),
	                    "auto-submitted");
	assert_string_equal(reason_for("auto-submitted: Auto-Generated\r\n", "a@example.net"),
	                    "auto-submitted");
	assert_string_equal(
	    reason_for("Auto-Submitted: auto-notified; owner-email=x\r\n", "a@example.net"),
	    "auto-submitted");
}

static void
test_rfc3834_precedence_bulk_junk_list(void **state)
{
	assert_string_equal(reason_for("Precedence: bulk\r\n", "a@example.net"), "precedence bulk");
	assert_string_equal(reason_for("Precedence: JUNK\r\n", "a@example.net"), "precedence junk");
	assert_string_equal(reason_for("Precedence: list\r\n", "a@example.net"), "precedence list");
}

static void
test_rfc3834_null_sender_and_automatic_senders(void **state)
{
	assert_string_equal(reason_for("Subject: x\r\n", ""), "null sender");
	assert_string_equal(reason_for("Subject: x\r\n", "MAILER-DAEMON@example.net"),
	                    "automatic sender");
	assert_string_equal(reason_for("Subject: x\r\n", "owner-foo@example.net"),
	                    "automatic sender");
	assert_string_equal(reason_for("Subject: x\r\n", "foo-request@example.net"),
	                    "automatic sender");
	assert_string_equal(reason_for("Subject: x\r\n", "foo-bounces+bob=x.org@example.net"),
	                    "automatic sender");
}

static void
test_rfc3834_list_mail_is_not_answered(void **state)
{
	assert_string_equal(reason_for("List-Id: <dev.example.org>\r\n", "a@example.net"),
	                    "list mail");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_subject_command_with_reply_prefixes),
	    cmocka_unit_test(test_subject_that_is_no_command_is_ignored),
	    cmocka_unit_test(test_join_leave_help_synonyms),
	    cmocka_unit_test(test_set_takes_a_delivery_mode),
	    cmocka_unit_test(test_quoted_lines_are_ignored),
	    cmocka_unit_test(test_quoted_lines_before_commands_do_not_count),
	    cmocka_unit_test(test_signature_ends_commands),
	    cmocka_unit_test(test_first_non_command_after_commands_stops),
	    cmocka_unit_test(test_end_stops_reading),
	    cmocka_unit_test(test_some_junk_before_commands_is_skipped),
	    cmocka_unit_test(test_too_much_junk_gives_up),
	    cmocka_unit_test(test_same_command_twice_counts_once),
	    cmocka_unit_test(test_tokens_are_checked),
	    cmocka_unit_test(test_reject_keeps_its_reason),
	    cmocka_unit_test(test_at_most_commands_max),
	    cmocka_unit_test(test_overlong_token_is_bad),
	    cmocka_unit_test(test_rfc3834_plain_mail_may_be_answered),
	    cmocka_unit_test(test_rfc3834_auto_submitted_is_not_answered),
	    cmocka_unit_test(test_rfc3834_precedence_bulk_junk_list),
	    cmocka_unit_test(test_rfc3834_null_sender_and_automatic_senders),
	    cmocka_unit_test(test_rfc3834_list_mail_is_not_answered),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
