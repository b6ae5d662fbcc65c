/*
 * main.c - `fanmail`, the admin command line: global options, the table of
 * command groups, and dispatch to a group's command.
 *
 * To add a command group, see admin/cli.h: one line X(name) in CLI_GROUPS
 * below, and `const struct cli_group cli_group_name` in admin/cmd_name.c.
 */
#include "admin/cli.h"

#include <stdlib.h>
#include <string.h>

/* The command groups, in the order `fanmail help` shows them.
 * To add one: a line X(name) just above the END line. */
// clang-format off
#define CLI_GROUPS_CORE(X) X(list) X(member)
#define CLI_GROUPS(X) \
	X(config) \
	CLI_GROUPS_CORE(X) \
	X(queue) \
	X(mod) \
	X(bounce) X(bounces) \
	X(archive) \
	X(digest) \
	X(secret) \
	X(dkim) \
	/* END */
// clang-format on

#define X(g) extern const struct cli_group cli_group_##g;
CLI_GROUPS(X)
#undef X

static const struct cli_group *const groups[] = {
#define X(g) &cli_group_##g,
    CLI_GROUPS(X)
#undef X
};
static const size_t ngroups = sizeof(groups) / sizeof(groups[0]);

static void
print_cmd(FILE *out, const struct cli_group *g, const struct cli_cmd *c)
{
	fprintf(out, "  %s%s%s%s%s%s\n", g->name, *c->name ? " " : "", c->name,
	        *c->usage ? " " : "", c->usage, (c->flags & CLI_JSON) ? " [--json]" : "");
}

static void
print_groups(FILE *out)
{
	fputs("usage: fanmail [-c FILE] COMMAND [ARGS...]\n"
	      "       fanmail COMMAND --help\n\n"
	      "Options:\n"
	      "  -c FILE    configuration file (else $FANMAIL_CONFIG, else " FANMAIL_SYSCONFDIR
	      "/fanmail/fanmail.conf)\n"
	      "  --version  print the version\n\n"
	      "Commands:\n",
	      out);
	for (size_t i = 0; i < ngroups; i++) {
		const struct cli_group *g = groups[i];
		for (const struct cli_cmd *c = g->cmds; c->name != NULL; c++)
			print_cmd(out, g, c);
	}
	fputs("\nSee fanmail(1).\n", out);
}

static void
print_group(const struct cli_group *g, FILE *out)
{
	fprintf(out, "usage: fanmail [-c FILE] %s COMMAND [ARGS...]\n\n%s\n\nCommands:\n", g->name,
	        g->summary);
	for (const struct cli_cmd *c = g->cmds; c->name != NULL; c++)
		print_cmd(out, g, c);
	fprintf(out, "\nRun 'fanmail %s COMMAND --help' for one command.\n", g->name);
}

static const struct cli_group *
find_group(const char *name)
{
	for (size_t i = 0; i < ngroups; i++)
		if (strcmp(groups[i]->name, name) == 0)
			return groups[i];
	return NULL;
}

static const struct cli_cmd *
find_cmd(const struct cli_group *g, const char *name)
{
	for (const struct cli_cmd *c = g->cmds; c->name != NULL; c++)
		if (strcmp(c->name, name) == 0)
			return c;
	return NULL;
}

/* Handles --help and --json (before "--") for every command; removes
 * --json from argv. Returns -1 when help was asked for. */
static int
common_options(struct cli *cli, int *argc, char **argv)
{
	int n = 1, i;

	for (i = 1; i < *argc; i++) {
		if (strcmp(argv[i], "--") == 0)
			break;
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
			return -1;
		if ((cli->cmd->flags & CLI_JSON) && strcmp(argv[i], "--json") == 0) {
			cli->json = 1;
			continue;
		}
		argv[n++] = argv[i];
	}
	for (; i < *argc; i++)
		argv[n++] = argv[i];
	argv[n] = NULL;
	*argc = n;
	return 0;
}

static int
run(struct cli *cli, int argc, char **argv)
{
	const struct cli_group *g;
	const struct cli_cmd *c;
	int i = 1;

	while (i < argc && argv[i][0] == '-') {
		const char *a = argv[i];
		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			print_groups(cli->out);
			return EX_OK;
		}
		if (strcmp(a, "--version") == 0) {
			fprintf(cli->out, "fanmail %s\n", FANMAIL_VERSION);
			return EX_OK;
		}
		if (strcmp(a, "-c") == 0) {
			if (i + 1 >= argc)
				return cli_usage_error(cli, "option -c needs a file");
			cli->conf_arg = argv[i + 1];
			i += 2;
			continue;
		}
		if (strncmp(a, "-c", 2) == 0) {
			cli->conf_arg = a + 2;
			i++;
			continue;
		}
		if (strncmp(a, "--config=", 9) == 0) {
			cli->conf_arg = a + 9;
			i++;
			continue;
		}
		return cli_usage_error(cli, "unknown option %s", a);
	}
	if (i >= argc) {
		print_groups(stderr);
		return EX_USAGE;
	}
	if (strcmp(argv[i], "help") == 0) {
		if (i + 1 < argc && (g = find_group(argv[i + 1])) != NULL) {
			print_group(g, cli->out);
			return EX_OK;
		}
		print_groups(cli->out);
		return EX_OK;
	}
	g = find_group(argv[i]);
	if (g == NULL)
		return cli_usage_error(cli, "unknown command '%s'; see 'fanmail --help'", argv[i]);
	cli->group = g;
	i++;
	c = i < argc ? find_cmd(g, argv[i]) : NULL;
	if (c != NULL) {
		i++;
	} else if ((c = find_cmd(g, "")) == NULL) {
		if (i < argc && strcmp(argv[i], "--help") != 0 && strcmp(argv[i], "-h") != 0) {
			cli_error(cli, EX_USAGE, "unknown command '%s %s'", g->name, argv[i]);
			print_group(g, stderr);
			return EX_USAGE;
		}
		print_group(g, i < argc ? cli->out : stderr);
		return i < argc ? EX_OK : EX_USAGE;
	}
	cli->cmd = c;
	/* The command sees argv[0] = its name, then its arguments. */
	argv[i - 1] = (char *)(*c->name ? c->name : g->name);
	argc -= i - 1;
	argv += i - 1;
	if (common_options(cli, &argc, argv) < 0) {
		cli_print_help(cli, cli->out);
		return EX_OK;
	}
	return c->run(cli, argc, argv);
}

int
main(int argc, char **argv)
{
	struct cli cli;
	int rc;

	memset(&cli, 0, sizeof(cli));
	cli.prog = "fanmail";
	cli.out = stdout;
	rc = run(&cli, argc, argv);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		if (rc == EX_OK)
			rc = EX_IOERR;
		fprintf(stderr, "fanmail: error writing the output\n");
	}
	db_close(cli.db);
	if (cli.conf_loaded)
		conf_free(&cli.conf);
	for (size_t i = 0; i < cli.nowned; i++)
		free(cli.owned[i]);
	free(cli.owned);
	return rc;
}
