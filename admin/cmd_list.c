/*
 * cmd_list.c - `fanmail list`: create, delete, ls, show, set.
 *
 * Every command that writes checks all of its arguments first and then
 * makes its changes in one transaction, so an error leaves nothing
 * half-written.
 */
#include "admin/cli.h"
#include "db/members.h"
#include "lists/store.h"

#include <string.h>

static int
cmd_list_create(struct cli *cli, int argc, char **argv)
{
	const char *policy = NULL, *description = NULL, *why;
	struct cli_strv owners = {0}, moderators = {0};
	const struct cli_opt opts[] = {
	    {"policy", 'p', CLI_OPT_STR, &policy},
	    {"owner", 'o', CLI_OPT_MULTI, &owners},
	    {"moderator", 'm', CLI_OPT_MULTI, &moderators},
	    {"description", 'd', CLI_OPT_STR, &description},
	    {0},
	};
	char canon[256], err[512], address[ADDR_PATH_MAX + 1];
	struct addr list, *oa, *ma;
	struct db_list l;
	int n, rc;

	if ((n = cli_parse(cli, argc, argv, opts)) < 0)
		return EX_USAGE;
	if ((rc = cli_nargs(cli, n, 1, 1)) != 0)
		return rc;
	if ((rc = cli_list_addr(cli, argv[0], &list)) != 0)
		return rc;
	if (policy != NULL &&
	    conf_list_check("policy", policy, canon, sizeof(canon), err, sizeof(err)) < 0)
		return cli_error(cli, EX_DATAERR, "--policy %s: %s", policy, err);
	if (description != NULL &&
	    conf_list_check("description", description, canon, sizeof(canon), err, sizeof(err)) < 0)
		return cli_error(cli, EX_DATAERR, "--description: %s", err);
	oa = cli_alloc(cli, (owners.n + 1) * sizeof(*oa));
	for (size_t i = 0; i < owners.n; i++)
		if (addr_parse(owners.v[i], strlen(owners.v[i]), ADDR_UTF8, &oa[i], &why) < 0)
			return cli_error(cli, EX_DATAERR, "--owner: invalid address '%s': %s",
			                 owners.v[i], why);
	ma = cli_alloc(cli, (moderators.n + 1) * sizeof(*ma));
	for (size_t i = 0; i < moderators.n; i++)
		if (addr_parse(moderators.v[i], strlen(moderators.v[i]), ADDR_UTF8, &ma[i], &why) <
		    0)
			return cli_error(cli, EX_DATAERR, "--moderator: invalid address '%s': %s",
			                 moderators.v[i], why);
	addr_format(&list, address, sizeof(address));
	if ((rc = cli_open_db(cli)) != 0)
		return rc;
	if (db_begin(cli->db) < 0)
		return cli_db_error(cli, address);
	if (store_list_create(cli->db, &list, &l) < 0)
		goto fail;
	if (policy != NULL && store_setting_set(cli->db, l.id, "policy", policy) < 0)
		goto fail;
	if (description != NULL && store_setting_set(cli->db, l.id, "description", description) < 0)
		goto fail;
	for (size_t i = 0; i < owners.n; i++)
		if (store_role_add(cli->db, l.id, DB_ROLE_OWNER, &oa[i]) < 0)
			goto fail;
	for (size_t i = 0; i < moderators.n; i++)
		if (store_role_add(cli->db, l.id, DB_ROLE_MODERATOR, &ma[i]) < 0)
			goto fail;
	if (db_commit(cli->db) < 0)
		return cli_db_error(cli, address);
	fprintf(cli->out, "%s\n", l.address);
	return EX_OK;
fail:
	rc = cli_db_error(cli, NULL);
	db_rollback(cli->db);
	return rc;
}

static int
cmd_list_delete(struct cli *cli, int argc, char **argv)
{
	int yes = 0, n, rc;
	const struct cli_opt opts[] = {
	    {"yes", 'y', CLI_OPT_FLAG, &yes},
	    {0},
	};
	struct db_member_counts c;
	struct db_list l;

	if ((n = cli_parse(cli, argc, argv, opts)) < 0)
		return EX_USAGE;
	if ((rc = cli_nargs(cli, n, 1, 1)) != 0)
		return rc;
	if ((rc = cli_find_list(cli, argv[0], &l)) != 0)
		return rc;
	if (db_member_count(cli->db, l.id, &c) < 0)
		return cli_db_error(cli, l.address);
	if (!yes)
		return cli_usage_error(cli,
		                       "refusing to delete %s and its %lld members without --yes",
		                       l.address, (long long)c.total);
	if (db_begin(cli->db) < 0 || db_list_delete(cli->db, l.id) < 0) {
		rc = cli_db_error(cli, l.address);
		db_rollback(cli->db);
		return rc;
	}
	if (db_commit(cli->db) < 0)
		return cli_db_error(cli, l.address);
	fprintf(cli->out, "deleted %s and its %lld members\n", l.address, (long long)c.total);
	return EX_OK;
}

struct ls_ctx {
	struct cli *cli;
	int failed;
};

static int
ls_one(const struct db_list *l, void *arg)
{
	struct ls_ctx *x = arg;
	struct cli *cli = x->cli;
	struct db_member_counts c;
	char policy[64], desc[1024];

	if (db_member_count(cli->db, l->id, &c) < 0 ||
	    store_setting_get(cli->db, l->id, "policy", policy, sizeof(policy), NULL) < 0 ||
	    store_setting_get(cli->db, l->id, "description", desc, sizeof(desc), NULL) < 0) {
		x->failed = 1;
		return 1;
	}
	if (cli->json) {
		cli_json_begin_object(cli);
		cli_json_kv_str(cli, "address", l->address);
		cli_json_kv_str(cli, "policy", policy);
		cli_json_kv_str(cli, "description", desc);
		cli_json_key(cli, "members");
		cli_json_begin_object(cli);
		cli_json_kv_int(cli, "enabled", c.enabled);
		cli_json_kv_int(cli, "disabled", c.disabled);
		cli_json_kv_int(cli, "unconfirmed", c.unconfirmed);
		cli_json_kv_int(cli, "total", c.total);
		cli_json_end_object(cli);
		cli_json_end_object(cli);
		return 0;
	}
	fprintf(cli->out, "%s\t%s\t%lld\t", l->address, policy, (long long)c.total);
	cli_put_field(cli->out, desc);
	putc('\n', cli->out);
	return 0;
}

static int
cmd_list_ls(struct cli *cli, int argc, char **argv)
{
	const struct cli_opt opts[] = {{0}};
	struct ls_ctx x = {cli, 0};
	int n, rc;

	if ((n = cli_parse(cli, argc, argv, opts)) < 0)
		return EX_USAGE;
	if ((rc = cli_nargs(cli, n, 0, 0)) != 0)
		return rc;
	if ((rc = cli_open_db(cli)) != 0)
		return rc;
	/* Read everything from one snapshot. */
	if (cli->json)
		cli_json_begin_array(cli);
	rc = db_list_each(cli->db, ls_one, &x);
	if (rc < 0 || x.failed)
		return cli_db_error(cli, NULL);
	if (cli->json)
		cli_json_end_array(cli);
	return EX_OK;
}

struct role_ctx {
	struct cli *cli;
	const char *label;
};

static int
show_role(const char *address, void *arg)
{
	struct role_ctx *r = arg;

	if (r->cli->json)
		cli_json_str(r->cli, address);
	else
		fprintf(r->cli->out, "%-12s %s\n", r->label, address);
	return 0;
}

static int
show_roles(struct cli *cli, const struct db_list *l, const char *role, const char *label)
{
	struct role_ctx r = {cli, label};

	if (cli->json) {
		cli_json_key(cli, label);
		cli_json_begin_array(cli);
	}
	if (db_list_role_each(cli->db, l->id, role, show_role, &r) < 0)
		return -1;
	if (cli->json)
		cli_json_end_array(cli);
	return 0;
}

static int
cmd_list_show(struct cli *cli, int argc, char **argv)
{
	const struct cli_opt opts[] = {{0}};
	struct db_member_counts c;
	struct db_list l;
	char when[32], value[4096];
	int n, rc, is_def;

	if ((n = cli_parse(cli, argc, argv, opts)) < 0)
		return EX_USAGE;
	if ((rc = cli_nargs(cli, n, 1, 1)) != 0)
		return rc;
	if ((rc = cli_find_list(cli, argv[0], &l)) != 0)
		return rc;
	if (db_member_count(cli->db, l.id, &c) < 0)
		return cli_db_error(cli, l.address);
	cli_time(l.created, when, sizeof(when));
	if (cli->json) {
		cli_json_begin_object(cli);
		cli_json_kv_str(cli, "address", l.address);
		cli_json_kv_int(cli, "id", l.id);
		cli_json_kv_str(cli, "created", when);
		cli_json_kv_int(cli, "posts", l.post_count);
		cli_json_key(cli, "members");
		cli_json_begin_object(cli);
		cli_json_kv_int(cli, "enabled", c.enabled);
		cli_json_kv_int(cli, "disabled", c.disabled);
		cli_json_kv_int(cli, "unconfirmed", c.unconfirmed);
		cli_json_kv_int(cli, "total", c.total);
		cli_json_end_object(cli);
	} else {
		fprintf(cli->out, "%-12s %s\n", "address", l.address);
		fprintf(cli->out, "%-12s %lld\n", "id", (long long)l.id);
		fprintf(cli->out, "%-12s %s\n", "created", when);
		fprintf(cli->out, "%-12s %lld\n", "posts", (long long)l.post_count);
		fprintf(cli->out, "%-12s %lld (enabled %lld, disabled %lld, unconfirmed %lld)\n",
		        "members", (long long)c.total, (long long)c.enabled, (long long)c.disabled,
		        (long long)c.unconfirmed);
	}
	if (show_roles(cli, &l, DB_ROLE_OWNER, cli->json ? "owners" : "owner") < 0 ||
	    show_roles(cli, &l, DB_ROLE_MODERATOR, cli->json ? "moderators" : "moderator") < 0)
		return cli_db_error(cli, l.address);
	if (cli->json) {
		cli_json_key(cli, "settings");
		cli_json_begin_object(cli);
	}
	for (size_t i = 0; i < conf_list_ndefs; i++) {
		const struct conf_def *d = &conf_list_defs[i];
		if (store_setting_get(cli->db, l.id, d->name, value, sizeof(value), &is_def) < 0)
			return cli_db_error(cli, l.address);
		if (cli->json) {
			cli_json_kv_str(cli, d->name, value);
			continue;
		}
		fprintf(cli->out, "%-12s ", d->name);
		cli_put_field(cli->out, value);
		fputs(is_def ? "\t(default)\n" : "\n", cli->out);
	}
	if (cli->json) {
		cli_json_end_object(cli);
		cli_json_end_object(cli);
	}
	return EX_OK;
}

static int
cmd_list_set(struct cli *cli, int argc, char **argv)
{
	const struct cli_opt opts[] = {{0}};
	const char **keys, **values;
	char canon[4096], err[512];
	struct db_list l;
	int n, rc;

	if ((n = cli_parse(cli, argc, argv, opts)) < 0)
		return EX_USAGE;
	if ((rc = cli_nargs(cli, n, 2, -1)) != 0)
		return rc;
	keys = cli_alloc(cli, (size_t)n * sizeof(*keys));
	values = cli_alloc(cli, (size_t)n * sizeof(*values));
	for (int i = 1; i < n; i++) {
		if ((rc = cli_keyvalue(cli, argv[i], &keys[i], &values[i])) != 0)
			return rc;
		if (conf_list_check(keys[i], values[i], canon, sizeof(canon), err, sizeof(err)) < 0)
			return cli_error(cli, EX_DATAERR, "bad setting '%s': %s", argv[i], err);
	}
	if ((rc = cli_find_list(cli, argv[0], &l)) != 0)
		return rc;
	if (db_begin(cli->db) < 0)
		return cli_db_error(cli, l.address);
	for (int i = 1; i < n; i++) {
		if (store_setting_set(cli->db, l.id, keys[i], values[i]) < 0) {
			rc = cli_db_error(cli, argv[i]);
			db_rollback(cli->db);
			return rc;
		}
	}
	if (db_commit(cli->db) < 0)
		return cli_db_error(cli, l.address);
	return EX_OK;
}

static const struct cli_cmd list_cmds[] = {
    {"create", cmd_list_create, 0,
     "ADDR [--policy open|members|moderated|announce] [--owner ADDR]... [--moderator ADDR]... "
     "[--description TEXT]",
     "Creates a list. A bare name (no '@') gets default_list_domain. The list address\n"
     "must be ASCII, with a plain local part without '+', and not end in -request,\n"
     "-owner, -bounces, -join, -leave or -confirm. Prints the list's address."},
    {"delete", cmd_list_delete, 0, "ADDR --yes",
     "Deletes a list with its settings, roles and members. Needs --yes."},
    {"ls", cmd_list_ls, CLI_JSON, "",
     "Lists every list: address, policy, number of members and description,\n"
     "tab-separated, one list a line."},
    {"show", cmd_list_show, CLI_JSON, "ADDR",
     "Shows a list: address, creation time, posts, member counts per status, owners,\n"
     "moderators, and every list setting (marked (default) when not set)."},
    {"set", cmd_list_set, 0, "ADDR KEY=VALUE...",
     "Changes list settings (see 'fanmail list show' and fanmail(1) for the keys).\n"
     "All pairs are checked first and set together, or none is."},
    {0},
};

const struct cli_group cli_group_list = {"list", "Create, inspect, change and delete lists.",
                                         list_cmds};
