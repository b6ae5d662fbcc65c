/*
 * cmd_digest.c - `fanmail digest`: send a list's pending digest issue now,
 * and show its pending posts and past issues (lists/digest_send.h).
 */
#include "admin/cli.h"

#include <stdio.h>
#include <string.h>

#include "db/digest.h"
#include "db/engine.h"
#include "lists/digest_send.h"

static int
cmd_digest_send(struct cli *cli, int argc, char **argv)
{
	const struct cli_opt opts[] = {{0}};
	struct digest_result r;
	struct db_list l;
	char err[512];
	int n, rc;

	if ((n = cli_parse(cli, argc, argv, opts)) < 0)
		return EX_USAGE;
	if ((rc = cli_nargs(cli, n, 1, 1)) != 0)
		return rc;
	if ((rc = cli_find_list(cli, argv[0], &l)) != 0)
		return rc;
	/* The engine's page cache: the issue's INSERT ... SELECT writes a row
	 * per digest member, and with the CLI's 2 MB cache the index pages
	 * spill to disk before the commit on a big list. */
	if (db_engine_tune(cli->db) < 0)
		return cli_db_error(cli, l.address);
	if (digest_send(cli->db, &cli->conf, l.id, db_now(), &r, err, sizeof(err)) < 0) {
		if (db_status(cli->db) != DB_OK)
			return cli_db_error(cli, l.address);
		return cli_error(cli, EX_SOFTWARE, "%s: %s", l.address, err);
	}
	if (r.posts == 0 && r.dropped == 0) {
		fprintf(cli->out, "%s: nothing pending\n", l.address);
		return EX_OK;
	}
	if (r.posts == 0) {
		fprintf(cli->out, "%s: no digest members: %lld pending post(s) dropped\n",
		        l.address, (long long)r.dropped);
		return EX_OK;
	}
	fprintf(cli->out,
	        "%s: vol %d issue %d, %lld post(s), mime %s (%lld rcpts), text %s (%lld rcpts)\n",
	        l.address, r.volume, r.number, (long long)r.posts, r.qid_mime[0] ? r.qid_mime : "-",
	        (long long)r.rcpt_mime, r.qid_text[0] ? r.qid_text : "-", (long long)r.rcpt_text);
	cli_notify_daemon(cli, "kick");
	return EX_OK;
}

static void
pending_line(void *arg, const struct db_digest_post *p)
{
	struct cli *cli = arg;
	char t[64];

	cli_time(p->added, t, sizeof(t));
	if (cli->json) {
		cli_json_begin_object(cli);
		cli_json_kv_str(cli, "date", t);
		cli_json_kv_str(cli, "from", p->sender);
		cli_json_kv_str(cli, "subject", p->subject);
		cli_json_kv_int(cli, "size", p->size);
		cli_json_end_object(cli);
		return;
	}
	fprintf(cli->out, "pending\t%s\t%s\t%s\t%lld\n", t, p->sender, p->subject ? p->subject : "",
	        (long long)p->size);
}

static void
issue_line(void *arg, const struct db_digest_issue *i)
{
	struct cli *cli = arg;
	char t[64];

	cli_time(i->sent, t, sizeof(t));
	if (cli->json) {
		cli_json_begin_object(cli);
		cli_json_kv_int(cli, "volume", i->volume);
		cli_json_kv_int(cli, "number", i->number);
		cli_json_kv_str(cli, "sent", t);
		cli_json_kv_int(cli, "posts", i->posts);
		cli_json_kv_str(cli, "qid_mime", *i->qid_mime ? i->qid_mime : NULL);
		cli_json_kv_str(cli, "qid_text", *i->qid_text ? i->qid_text : NULL);
		cli_json_end_object(cli);
		return;
	}
	fprintf(cli->out, "issue\t%d\t%d\t%s\t%lld\t%s\t%s\n", i->volume, i->number, t,
	        (long long)i->posts, *i->qid_mime ? i->qid_mime : "-",
	        *i->qid_text ? i->qid_text : "-");
}

static int
cmd_digest_ls(struct cli *cli, int argc, char **argv)
{
	const struct cli_opt opts[] = {{0}};
	struct db_list l;
	int n, rc;

	if ((n = cli_parse(cli, argc, argv, opts)) < 0)
		return EX_USAGE;
	if ((rc = cli_nargs(cli, n, 1, 1)) != 0)
		return rc;
	if ((rc = cli_find_list(cli, argv[0], &l)) != 0)
		return rc;
	if (cli->json) {
		cli_json_begin_object(cli);
		cli_json_kv_str(cli, "list", l.address);
		cli_json_key(cli, "pending");
		cli_json_begin_array(cli);
	}
	if (db_digest_pending(cli->db, l.id, 0, 0, pending_line, cli) < 0)
		return cli_db_error(cli, l.address);
	if (cli->json) {
		cli_json_end_array(cli);
		cli_json_key(cli, "issues");
		cli_json_begin_array(cli);
	}
	if (db_digest_issues(cli->db, l.id, 0, issue_line, cli) < 0)
		return cli_db_error(cli, l.address);
	if (cli->json) {
		cli_json_end_array(cli);
		cli_json_end_object(cli);
	}
	return EX_OK;
}

static const struct cli_cmd digest_cmds[] = {
    {"send", cmd_digest_send, 0, "LIST",
     "Sends LIST's pending posts as its next digest issue now: one MIME digest to the\n"
     "members with delivery=digest, one plain-text digest to those with\n"
     "delivery=digest-text. Prints the issue's volume, number and queue ids, or\n"
     "'nothing pending'."},
    {"ls", cmd_digest_ls, CLI_JSON, "LIST [--json]",
     "Shows LIST's pending posts (pending, date, from, subject, size) and its past\n"
     "issues, newest first (issue, volume, number, sent, posts, mime qid, text qid)."},
    {0},
};

const struct cli_group cli_group_digest = {"digest", "Send and inspect a list's digests.",
                                           digest_cmds};
