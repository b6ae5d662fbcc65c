/*
 * cmd_archive.c - `fanmail archive export LIST [-o FILE]`: every archived
 * post of a list, oldest first, as an mbox (mboxrd: "From " lines in a
 * message are quoted with '>', line ends made LF), streamed from the store
 * so that a big archive needs no memory.
 */
#include "admin/cli.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "db/archive.h"
#include "db/lists.h"

struct export
{
	FILE *out;
	size_t n;
};

/* Writes one line (without its end); quotes ">*From " lines. */
static void
put_line(FILE *out, const char *p, size_t n)
{
	size_t i = 0;

	while (i < n && p[i] == '>')
		i++;
	if (n - i >= 5 && memcmp(p + i, "From ", 5) == 0)
		fputc('>', out);
	fwrite(p, 1, n, out);
	fputc('\n', out);
}

static int
export_one(void *arg, int64_t date, const char *sender, const void *raw, size_t len)
{
	struct export *x = arg;
	const char *p = raw, *end = p + len;
	char when[64];
	time_t t = (time_t)date;
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(when, sizeof(when), "%a %b %e %H:%M:%S %Y", &tm);
	fprintf(x->out, "From %s %s\n", sender && *sender ? sender : "MAILER-DAEMON", when);
	while (p < end) {
		const char *q = p;

		while (q < end && *q != '\r' && *q != '\n')
			q++;
		put_line(x->out, p, (size_t)(q - p));
		if (q < end && *q == '\r' && q + 1 < end && q[1] == '\n')
			q++;
		p = q < end ? q + 1 : q;
	}
	fputc('\n', x->out);
	x->n++;
	return ferror(x->out) ? 1 : 0;
}

static int
cmd_archive_export(struct cli *cli, int argc, char **argv)
{
	const char *file = NULL;
	const struct cli_opt opts[] = {
	    {"output", 'o', CLI_OPT_STR, &file},
	    {0},
	};
	struct export x = {0};
	struct db_list l;
	int n, rc;

	if ((n = cli_parse(cli, argc, argv, opts)) < 0)
		return EX_USAGE;
	if ((rc = cli_nargs(cli, n, 1, 1)) != 0)
		return rc;
	if ((rc = cli_find_list(cli, argv[0], &l)) != 0)
		return rc;
	x.out = cli->out;
	if (file != NULL && strcmp(file, "-") != 0 && (x.out = fopen(file, "w")) == NULL)
		return cli_error(cli, EX_CANTCREAT, "%s: cannot create: %m", file);
	rc = db_engine_archive_each(cli->db, l.id, export_one, &x);
	if (x.out != cli->out && fclose(x.out) != 0)
		return cli_error(cli, EX_IOERR, "%s: write error: %m", file);
	if (rc < 0) {
		if (db_status(cli->db) == DB_INVALID)
			return cli_error(cli, EX_IOERR, "%s: write error", file ? file : "stdout");
		return cli_db_error(cli, l.address);
	}
	if (file != NULL && strcmp(file, "-") != 0)
		fprintf(stderr, "%s: %zu message(s) written to %s\n", l.address, x.n, file);
	return EX_OK;
}

static const struct cli_cmd archive_cmds[] = {
    {"export", cmd_archive_export, 0, "LIST [-o FILE]",
     "Writes every archived post of LIST, oldest first, as an mbox (mboxrd) to FILE or\n"
     "standard output."},
    {0},
};

const struct cli_group cli_group_archive = {"archive", "Export the archive of a list's posts.",
                                            archive_cmds};
