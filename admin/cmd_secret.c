/*
 * cmd_secret.c - `fanmail secret`: the server's keys with versions, shown
 * by version and age and rotated; their values are never printed.
 *
 * The one family with versions is "oneclick", the key of the one-click
 * unsubscribe links in personalized mail (lists/oneclick.h). Rotating
 * adds a new version that signs new links at once (fanmaild picks it up
 * within a queue run); the old versions keep working, so links in mail
 * already sent still unsubscribe, until `--drop-old` (or a rotation with
 * it) deletes them: then those links get 403.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "admin/cli.h"
#include "db/secrets.h"

static const char *const families[] = {"oneclick", NULL};

static int
known_family(const char *f)
{
	for (int i = 0; families[i]; i++)
		if (strcmp(families[i], f) == 0)
			return 1;
	return 0;
}

struct ls {
	struct cli *cli;
	const char *family;
	int newest;
};

static int
ls_one(void *arg, int version, const unsigned char *value, size_t len, int64_t created)
{
	struct ls *x = arg;
	char when[32] = "-";
	struct tm tm;
	time_t t = (time_t)created;
	const char *state = x->newest == 0 ? "active" : "honoured";

	(void)value;
	(void)len;
	if (x->newest == 0)
		x->newest = version;
	if (created > 0 && gmtime_r(&t, &tm) != NULL)
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	if (x->cli->json) {
		cli_json_begin_object(x->cli);
		cli_json_kv_str(x->cli, "family", x->family);
		cli_json_kv_int(x->cli, "version", version);
		cli_json_kv_str(x->cli, "created", when);
		cli_json_kv_str(x->cli, "state", state);
		cli_json_end_object(x->cli);
	} else {
		fprintf(x->cli->out, "%s\t%d\t%s\t%s\n", x->family, version, when, state);
	}
	return 0;
}

static int
cmd_secret_ls(struct cli *cli, int argc, char **argv)
{
	int n, rc;

	if ((n = cli_parse(cli, argc, argv, NULL)) < 0)
		return EX_USAGE;
	if ((rc = cli_nargs(cli, n, 0, 0)) != 0)
		return rc;
	if ((rc = cli_open_db(cli)) != 0)
		return rc;
	if (cli->json)
		cli_json_begin_array(cli);
	for (int i = 0; families[i]; i++) {
		struct ls x = {.cli = cli, .family = families[i]};

		if (db_secret_versions(cli->db, families[i], ls_one, &x) < 0)
			return cli_db_error(cli, families[i]);
	}
	if (cli->json)
		cli_json_end_array(cli);
	return EX_OK;
}

static int
newest(void *arg, int version, const unsigned char *value, size_t len, int64_t created)
{
	(void)value;
	(void)len;
	(void)created;
	*(int *)arg = version;
	return 1;
}

static int
cmd_secret_rotate(struct cli *cli, int argc, char **argv)
{
	int drop = 0, version = 0, n, rc;
	int64_t dropped = 0;
	const struct cli_opt opts[] = {
	    {"drop-old", 0, CLI_OPT_FLAG, &drop},
	    {0},
	};

	if ((n = cli_parse(cli, argc, argv, opts)) < 0)
		return EX_USAGE;
	if ((rc = cli_nargs(cli, n, 1, 1)) != 0)
		return rc;
	if (!known_family(argv[0]))
		return cli_error(cli, EX_DATAERR, "%s: no such key family (there is: oneclick)",
		                 argv[0]);
	if ((rc = cli_open_db(cli)) != 0)
		return rc;
	if (db_begin(cli->db) < 0)
		return cli_db_error(cli, argv[0]);
	if (db_secret_rotate(cli->db, argv[0], db_now(), &version) < 0 ||
	    (drop && db_secret_drop_before(cli->db, argv[0], version, &dropped) < 0)) {
		rc = cli_db_error(cli, argv[0]);
		db_rollback(cli->db);
		return rc;
	}
	if (db_commit(cli->db) < 0)
		return cli_db_error(cli, argv[0]);
	fprintf(cli->out, "%s: version %d is active%s\n", argv[0], version,
	        drop ? "; the older versions are dropped (their links no longer work)"
	             : "; older versions are still honoured");
	return EX_OK;
}

static int
cmd_secret_drop_old(struct cli *cli, int argc, char **argv)
{
	int version = 0, n, rc;
	int64_t dropped = 0;

	if ((n = cli_parse(cli, argc, argv, NULL)) < 0)
		return EX_USAGE;
	if ((rc = cli_nargs(cli, n, 1, 1)) != 0)
		return rc;
	if (!known_family(argv[0]))
		return cli_error(cli, EX_DATAERR, "%s: no such key family (there is: oneclick)",
		                 argv[0]);
	if ((rc = cli_open_db(cli)) != 0)
		return rc;
	if (db_secret_versions(cli->db, argv[0], newest, &version) < 0 ||
	    db_secret_drop_before(cli->db, argv[0], version, &dropped) < 0)
		return cli_db_error(cli, argv[0]);
	fprintf(cli->out, "%s: %lld older version%s dropped; version %d is the only one\n", argv[0],
	        (long long)dropped, dropped == 1 ? "" : "s", version);
	return EX_OK;
}

static const struct cli_cmd secret_cmds[] = {
    {"ls", cmd_secret_ls, CLI_JSON, "",
     "Lists the key versions (family, version, created, active or honoured); never a value."},
    {"rotate", cmd_secret_rotate, 0, "FAMILY [--drop-old]",
     "Adds a new version of FAMILY (oneclick: the one-click unsubscribe links) that signs\n"
     "from now on; older versions stay valid for links already sent unless --drop-old."},
    {"drop-old", cmd_secret_drop_old, 0, "FAMILY",
     "Deletes every version of FAMILY but the newest: links signed with them get 403."},
    {0},
};

const struct cli_group cli_group_secret = {
    "secret", "Rotate the server's keys (values are never shown).", secret_cmds};
