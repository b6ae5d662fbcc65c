/*
 * cmd_config.c - `fanmail config`: the effective configuration, like
 * `postconf`, and the settings section of fanmail.conf(5).
 */
#include "admin/cli.h"

#include <stdlib.h>
#include <string.h>

static int
cmd_config(struct cli *cli, int argc, char **argv)
{
	int changed = 0, man = 0, n, rc;
	char buf[4096];
	const struct cli_opt opts[] = {
	    {"changed", 'n', CLI_OPT_FLAG, &changed},
	    {"man", 0, CLI_OPT_FLAG, &man},
	    {0},
	};

	n = cli_parse(cli, argc, argv, opts);
	if (n < 0)
		return EX_USAGE;
	if ((rc = cli_nargs(cli, n, 0, 0)) != 0)
		return rc;
	if (man) {
		/* The table alone: no file is read. */
		conf_print_man(cli->out);
		return EX_OK;
	}
	if ((rc = cli_load_conf(cli)) != 0)
		return rc;
	if (!cli->json) {
		conf_print(&cli->conf, cli->out, changed);
		return EX_OK;
	}
	cli_json_begin_object(cli);
	for (size_t i = 0; i < conf_ndefs; i++) {
		const struct conf_def *d = &conf_defs[i];
		if (changed && conf_is_default(&cli->conf, d))
			continue;
		conf_get_text(&cli->conf, d->name, buf, sizeof(buf));
		cli_json_key(cli, d->name);
		switch (d->type) {
		case CONF_INT:
		case CONF_SIZE:
		case CONF_TIME:
			cli_json_int(cli, strtoll(buf, NULL, 10));
			break;
		case CONF_BOOL:
			cli_json_bool(cli, strcmp(buf, "yes") == 0);
			break;
		default:
			cli_json_str(cli, buf);
			break;
		}
	}
	cli_json_end_object(cli);
	return EX_OK;
}

static const struct cli_cmd config_cmds[] = {
    {"", cmd_config, CLI_JSON, "[-n] [--man]",
     "Prints the effective configuration as 'name = value' lines, every setting with\n"
     "its value from the file or its default. -n (--changed) prints only the settings\n"
     "that differ from their default. --man prints the settings table as the man(7)\n"
     "source of the SETTINGS section of fanmail.conf(5), without reading any file."},
    {0},
};

const struct cli_group cli_group_config = {"config", "Print the effective configuration.",
                                           config_cmds};
