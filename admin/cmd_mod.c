/*
 * cmd_mod.c - `fanmail mod`: the moderation queue of a list.
 *
 *   mod ls LIST [--all]              posts waiting for a moderator
 *   mod show LIST ID                 one held post, with the message
 *   mod approve LIST ID...           release (sent to the list)
 *   mod reject LIST ID... [--reason] refuse, with a notice to the poster
 *   mod discard LIST ID...           drop silently
 *
 * Every command first expires the list's holds that are past their
 * deadline (hold_lifetime, then hold_expire_action), so what it shows or
 * decides is current even when fanmaild is not running. Each decision is
 * one transaction; the released post or notice is in the outbound queue
 * when the command returns, and fanmaild delivers it on its next queue
 * scan, or at once when it is running: the command writes "kick" into
 * its control file as `fanmail queue` does.
 */
#include "admin/cli.h"
#include "db/holds.h"
#include "db/lists.h"
#include "lists/moderate.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* Opens the store, finds the list and expires its overdue holds. */
static int
open_list(struct cli *cli, const char *arg, struct db_list *l)
{
	int rc;

	if ((rc = cli_find_list(cli, arg, l)) != 0)
		return rc;
	if (db_begin(cli->db) < 0)
		return cli_db_error(cli, l->address);
	if (moderate_expire(cli->db, &cli->conf, l->id, db_now(), NULL) < 0) {
		rc = cli_db_error(cli, l->address);
		db_rollback(cli->db);
		return rc;
	}
	if (db_commit(cli->db) < 0)
		return cli_db_error(cli, l->address);
	return 0;
}

static int
parse_id(struct cli *cli, const char *arg, int64_t *id)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(arg, &end, 10);
	if (errno != 0 || end == arg || *end != '\0' || v <= 0)
		return cli_error(cli, EX_DATAERR, "invalid id '%s': a held message number expected",
		                 arg);
	*id = v;
	return 0;
}

static void
hold_json(struct cli *cli, const struct db_hold *h, int with_token)
{
	char t[32];

	cli_json_kv_int(cli, "id", h->id);
	cli_json_kv_str(cli, "state", h->state);
	cli_json_kv_str(cli, "sender", h->sender);
	cli_json_kv_str(cli, "envelope_sender", h->env_from);
	cli_json_kv_str(cli, "subject", h->subject);
	cli_json_kv_str(cli, "message_id", h->message_id[0] ? h->message_id : NULL);
	cli_json_kv_str(cli, "reason", h->reason);
	cli_json_kv_str(cli, "created", cli_time(h->created, t, sizeof(t)));
	cli_json_kv_str(cli, "expires", cli_time(h->expires, t, sizeof(t)));
	cli_json_kv_str(cli, "decided", h->decided ? cli_time(h->decided, t, sizeof(t)) : NULL);
	cli_json_kv_str(cli, "decided_by", h->decided_by[0] ? h->decided_by : NULL);
	if (with_token)
		cli_json_kv_str(cli, "token", h->token);
}

static int
print_hold(const struct db_hold *h, void *arg)
{
	struct cli *cli = arg;
	char t[32];

	if (cli->json) {
		cli_json_begin_object(cli);
		hold_json(cli, h, 0);
		cli_json_end_object(cli);
		return 0;
	}
	fprintf(cli->out, "%" PRId64 "\t%s\t%s\t", h->id, h->state,
	        cli_time(h->created, t, sizeof(t)));
	cli_put_field(cli->out, h->sender);
	fputc('\t', cli->out);
	cli_put_field(cli->out, h->reason);
	fputc('\t', cli->out);
	cli_put_field(cli->out, h->subject);
	fputc('\n', cli->out);
	return 0;
}

static int
cmd_mod_ls(struct cli *cli, int argc, char **argv)
{
	int all = 0;
	const struct cli_opt opts[] = {
	    {"all", 'a', CLI_OPT_FLAG, &all},
	    {0},
	};
	struct db_list l;
	int n, rc;

	if ((n = cli_parse(cli, argc, argv, opts)) < 0)
		return EX_USAGE;
	if ((rc = cli_nargs(cli, n, 1, 1)) != 0)
		return rc;
	if ((rc = open_list(cli, argv[0], &l)) != 0)
		return rc;
	if (cli->json)
		cli_json_begin_array(cli);
	if (db_hold_each(cli->db, l.id, all ? NULL : "held", print_hold, cli) < 0)
		return cli_db_error(cli, l.address);
	if (cli->json)
		cli_json_end_array(cli);
	return EX_OK;
}

static int
cmd_mod_show(struct cli *cli, int argc, char **argv)
{
	const struct cli_opt opts[] = {{0}};
	struct db_list l;
	struct db_hold h;
	char t[32];
	int64_t id;
	int n, rc;

	if ((n = cli_parse(cli, argc, argv, opts)) < 0)
		return EX_USAGE;
	if ((rc = cli_nargs(cli, n, 2, 2)) != 0)
		return rc;
	if ((rc = parse_id(cli, argv[1], &id)) != 0)
		return rc;
	if ((rc = open_list(cli, argv[0], &l)) != 0)
		return rc;
	if (db_hold_get(cli->db, l.id, id, 1, &h) < 0) {
		if (db_status(cli->db) == DB_NOTFOUND)
			return cli_error(cli, EX_NOINPUT, "%s has no held message %" PRId64,
			                 l.address, id);
		return cli_db_error(cli, l.address);
	}
	if (cli->json) {
		cli_json_begin_object(cli);
		hold_json(cli, &h, 1);
		cli_json_key(cli, "message");
		if (h.message)
			cli_json_strn(cli, h.message, h.len);
		else
			cli_json_null(cli);
		cli_json_end_object(cli);
	} else {
		fprintf(cli->out, "id: %" PRId64 "\nstate: %s\n", h.id, h.state);
		fputs("sender: ", cli->out);
		cli_put_field(cli->out, h.sender);
		fputs("\nsubject: ", cli->out);
		cli_put_field(cli->out, h.subject);
		fputs("\nreason: ", cli->out);
		cli_put_field(cli->out, h.reason);
		fprintf(cli->out, "\nheld: %s\n", cli_time(h.created, t, sizeof(t)));
		fprintf(cli->out, "expires: %s\n", cli_time(h.expires, t, sizeof(t)));
		if (h.decided)
			fprintf(cli->out, "decided: %s by %s\n", cli_time(h.decided, t, sizeof(t)),
			        h.decided_by);
		fputc('\n', cli->out);
		if (h.message)
			fwrite(h.message, 1, h.len, cli->out);
		else
			fputs("(the message is no longer in the spool)\n", cli->out);
	}
	db_hold_free(&h);
	return EX_OK;
}

/* approve, reject, discard: each id in its own transaction, so that one
 * that cannot be decided does not undo the others. */
static int
decide(struct cli *cli, int argc, char **argv, enum moderate_action action)
{
	const char *reason = NULL;
	const struct cli_opt with_reason[] = {
	    {"reason", 'r', CLI_OPT_STR, &reason},
	    {0},
	};
	const struct cli_opt none[] = {{0}};
	struct db_list l;
	int64_t *ids;
	int n, rc, worst = EX_OK, queued = 0;

	if ((n = cli_parse(cli, argc, argv, action == MODERATE_REJECT ? with_reason : none)) < 0)
		return EX_USAGE;
	if ((rc = cli_nargs(cli, n, 2, -1)) != 0)
		return rc;
	ids = cli_alloc(cli, (size_t)n * sizeof(*ids));
	for (int i = 1; i < n; i++)
		if ((rc = parse_id(cli, argv[i], &ids[i])) != 0)
			return rc;
	if ((rc = open_list(cli, argv[0], &l)) != 0)
		return rc;
	for (int i = 1; i < n; i++) {
		char result[1024];
		if (db_begin(cli->db) < 0)
			return cli_db_error(cli, l.address);
		rc = moderate_decide(cli->db, &cli->conf, l.id, ids[i], action, "cli", reason,
		                     result, sizeof(result));
		if (rc < 0) {
			db_rollback(cli->db);
			cli_error(cli, db_status(cli->db) == DB_BUSY ? EX_TEMPFAIL : EX_SOFTWARE,
			          "%s", result);
			worst = db_status(cli->db) == DB_BUSY ? EX_TEMPFAIL : EX_SOFTWARE;
			continue;
		}
		if (db_commit(cli->db) < 0)
			return cli_db_error(cli, l.address);
		if (rc == 1) {
			cli_error(cli, EX_NOINPUT, "%s: %s", l.address, result);
			if (worst == EX_OK)
				worst = EX_NOINPUT;
			continue;
		}
		fprintf(cli->out, "%s\n", result);
		queued = 1;
	}
	/* A released post or a notice is in the queue now. */
	if (queued && action != MODERATE_DISCARD)
		cli_notify_daemon(cli, "kick");
	return worst;
}

static int
cmd_mod_approve(struct cli *cli, int argc, char **argv)
{
	return decide(cli, argc, argv, MODERATE_APPROVE);
}

static int
cmd_mod_reject(struct cli *cli, int argc, char **argv)
{
	return decide(cli, argc, argv, MODERATE_REJECT);
}

static int
cmd_mod_discard(struct cli *cli, int argc, char **argv)
{
	return decide(cli, argc, argv, MODERATE_DISCARD);
}

static const struct cli_cmd mod_cmds[] = {
    {"ls", cmd_mod_ls, CLI_JSON, "LIST [--all]",
     "List the posts held for moderation (with --all, decided ones too): id, state, held at, "
     "sender, reason, subject."},
    {"show", cmd_mod_show, CLI_JSON, "LIST ID", "Show one held post and its message."},
    {"approve", cmd_mod_approve, 0, "LIST ID...", "Release held posts to the list."},
    {"reject", cmd_mod_reject, 0, "LIST ID... [--reason TEXT]",
     "Refuse held posts; the poster gets a notice with the reason."},
    {"discard", cmd_mod_discard, 0, "LIST ID...", "Drop held posts without a word."},
    {0},
};

const struct cli_group cli_group_mod = {"mod", "Moderate held posts.", mod_cmds};
