/*
 * cli.h - the small framework every `fanmail` command group is built on.
 *
 * The program is `fanmail [-c FILE] GROUP [COMMAND] [ARGS...]`. main.c owns
 * the table of groups; each group lives in its own file (cmd_list.c,
 * cmd_member.c, cmd_queue.c, ...) and exports one `struct cli_group`.
 *
 * Adding a command group
 * ----------------------
 * 1. In admin/cmd_NAME.c write the commands and export the group:
 *
 *	static int
 *	cmd_queue_ls(struct cli *cli, int argc, char **argv)
 *	{
 *		const char *status = NULL;
 *		const struct cli_opt opts[] = {
 *			{"status", 's', CLI_OPT_STR, &status},
 *			{0},
 *		};
 *		int n = cli_parse(cli, argc, argv, opts);  // positionals left in argv
 *		if (n < 0)
 *			return EX_USAGE;                   // message already printed
 *		if (n != 0)
 *			return cli_usage_error(cli, "no arguments expected");
 *		int rc = cli_open_db(cli);                 // loads the config too
 *		if (rc != 0)
 *			return rc;
 *		...                                        // cli->db, cli->conf
 *		if (something_failed)
 *			return cli_db_error(cli, "queue ls");  // sysexits from db_status()
 *		return EX_OK;
 *	}
 *
 *	static const struct cli_cmd queue_cmds[] = {
 *		{"ls", cmd_queue_ls, CLI_JSON, "[--status S]", "List queued messages."},
 *		{0},
 *	};
 *	const struct cli_group cli_group_queue = {
 *		"queue", "Inspect and manage the outbound queue.", queue_cmds};
 *
 * 2. Add ONE line `X(queue) \` to CLI_GROUPS in admin/main.c, just above
 *    the END line.
 *
 * A command whose name is "" is the group's default: `fanmail config -n`
 * runs the "" command of group "config". Every command gets `-h`/`--help`
 * for free (usage line plus help text); with CLI_JSON it also accepts
 * `--json` anywhere before `--`, which sets cli->json.
 *
 * Output: results go to stdout (plain, one record a line, tab-separated
 * where there are several fields, so that `cut` and `awk` work), or as
 * JSON with the cli_json_* writer below. Errors go to stderr through
 * cli_error()/cli_usage_error()/cli_db_error(), which print
 * "fanmail GROUP COMMAND: message" and return the exit code (sysexits.h),
 * so a command ends with `return cli_error(cli, EX_DATAERR, "...");`.
 * Say what was wrong and with which argument.
 *
 * Exit codes used throughout (see fanmail(1)):
 *   EX_OK, EX_USAGE (bad command line), EX_DATAERR (bad value: address,
 *   KEY=VALUE, input line), EX_NOINPUT (unknown list, member or input file),
 *   EX_CANTCREAT (exists already), EX_CONFIG (config file), EX_TEMPFAIL
 *   (database locked: try again), EX_IOERR (disk full, write error),
 *   EX_NOPERM (read-only database), EX_SOFTWARE (anything else).
 */
#ifndef FANMAIL_CLI_H
#define FANMAIL_CLI_H

#include <stdint.h>
#include <stdio.h>
#include <sysexits.h>

#include "conf/conf.h"
#include "db/db.h"
#include "db/lists.h"
#include "mail/addr.h"

struct cli;

/* Runs a command: argv[0] is the command's name, the rest its arguments.
 * Returns a sysexits.h code. */
typedef int (*cli_run_fn)(struct cli *cli, int argc, char **argv);

#define CLI_JSON 0x1 /* the command accepts --json */

struct cli_cmd {
	const char *name; /* "" for the group's default command */
	cli_run_fn run;
	int flags;         /* CLI_JSON */
	const char *usage; /* arguments, e.g. "LIST ADDR... [--status S]" */
	const char *help;  /* one or a few sentences */
};

struct cli_group {
	const char *name;
	const char *summary;
	const struct cli_cmd *cmds; /* ends with {0} */
};

struct cli_json; /* see below */

struct cli {
	const char *prog;     /* "fanmail" */
	const char *conf_arg; /* -c FILE, or NULL */
	struct conf conf;     /* loaded by cli_load_conf()/cli_open_db() */
	int conf_loaded;
	struct db *db; /* opened by cli_open_db() */
	int json;      /* --json given */
	FILE *out;     /* stdout */
	const struct cli_group *group;
	const struct cli_cmd *cmd;
	struct cli_json *js; /* the JSON writer on out */
	void **owned;        /* freed when the program ends */
	size_t nowned;
};

/* ---- options ---- */

enum cli_opt_kind {
	CLI_OPT_FLAG,  /* dest: int *, set to 1 */
	CLI_OPT_STR,   /* dest: const char **, the argument (last one wins) */
	CLI_OPT_MULTI, /* dest: struct cli_strv *, every occurrence in order */
};

struct cli_strv {
	const char **v; /* owned by the cli, freed at exit */
	size_t n;
};

struct cli_opt {
	const char *name; /* long name without "--", or NULL */
	char short_name;  /* or 0 */
	enum cli_opt_kind kind;
	void *dest;
};

/* Parses argv[1..argc) against opts (ends with {0}). Accepts --name VALUE,
 * --name=VALUE, -x VALUE, -xVALUE; "--" ends the options and a lone "-" is
 * an argument. The positional arguments are moved to argv[0..n) (argv[0],
 * the command name, is overwritten) and n is returned; -1 after printing a
 * usage error. */
int cli_parse(struct cli *cli, int argc, char **argv, const struct cli_opt *opts);

/* Checks the number of positional arguments; prints the usage and returns
 * EX_USAGE when it is outside [min, max] (max < 0: no upper bound), else 0. */
int cli_nargs(struct cli *cli, int n, int min, int max);

/* ---- set-up ---- */

/* Loads the configuration (-c FILE, else $FANMAIL_CONFIG, else the default
 * path). A named file must exist; the default path may be missing. Returns
 * 0 or an exit code after printing the error. */
int cli_load_conf(struct cli *cli);

/* Loads the configuration and opens (creating if needed) the database.
 * Returns 0 or an exit code after printing the error. */
int cli_open_db(struct cli *cli);

/* Memory freed when the program ends. Exits on out-of-memory. */
void *cli_alloc(struct cli *cli, size_t size);
char *cli_strdup(struct cli *cli, const char *s);

/* ---- arguments ---- */

/* Parses arg as a mailbox (UTF-8 allowed). On error prints "invalid
 * address 'arg': why" and returns EX_DATAERR; else 0. */
int cli_addr_arg(struct cli *cli, const char *arg, struct addr *a);

/* Parses a list address; a bare name (no '@') gets default_list_domain.
 * Returns 0 or an exit code after printing the error (needs the config). */
int cli_list_addr(struct cli *cli, const char *arg, struct addr *a);

/* Opens the database and finds the list named by arg (as
 * cli_list_addr()). Returns 0, or EX_NOINPUT for an unknown list ("no list
 * 'x@y'"), or another exit code, after printing the error. */
int cli_find_list(struct cli *cli, const char *arg, struct db_list *out);

/* Splits "KEY=VALUE" at the first '='; prints a usage error and returns
 * EX_USAGE when there is none or KEY is empty. *key points into a copy
 * owned by the cli. */
int cli_keyvalue(struct cli *cli, const char *arg, const char **key, const char **value);

/* Tells a running fanmaild to act now ("kick": scan the queue, "flush":
 * retry every deferred row) through the control file it watches
 * (server/control.h). Without a daemon the file is harmless: the next
 * start scans the queue. A file that cannot be written is a warning. */
void cli_notify_daemon(struct cli *cli, const char *word);

/* Seconds since the epoch as "2026-01-31T12:00:00Z" (UTC); buf >= 32. */
const char *cli_time(int64_t t, char *buf, size_t len);

/* ---- errors ---- */

/* Prints "fanmail GROUP CMD: message" on stderr; returns code. */
int cli_error(struct cli *cli, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Same plus the usage line; returns EX_USAGE. */
int cli_usage_error(struct cli *cli, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Reports db_errmsg(cli->db), prefixed with what ("list create
 * foo@example.org") when not NULL, with the exit code for db_status(). */
int cli_db_error(struct cli *cli, const char *what);
/* The sysexits code for a db status. */
int cli_exit_code(enum db_status st);
/* Prints the usage and help of the current command to out. */
void cli_print_help(struct cli *cli, FILE *out);

/* ---- JSON output ----
 * A streaming writer on cli->out: values are written as they come, so a
 * listing of a million members needs no memory. Commas and nesting are
 * tracked for you; a top-level value ends with a newline.
 *
 *	cli_json_begin_object(cli);
 *	cli_json_kv_str(cli, "address", "a@example.org");
 *	cli_json_key(cli, "members");
 *	cli_json_begin_array(cli);
 *	...
 *	cli_json_end_array(cli);
 *	cli_json_end_object(cli);
 */
void cli_json_begin_object(struct cli *cli);
void cli_json_end_object(struct cli *cli);
void cli_json_begin_array(struct cli *cli);
void cli_json_end_array(struct cli *cli);
void cli_json_key(struct cli *cli, const char *key);
void cli_json_str(struct cli *cli, const char *s); /* NULL writes null */
void cli_json_strn(struct cli *cli, const char *s, size_t len);
void cli_json_int(struct cli *cli, int64_t v);
void cli_json_double(struct cli *cli, double v);
void cli_json_bool(struct cli *cli, int v);
void cli_json_null(struct cli *cli);
void cli_json_kv_str(struct cli *cli, const char *key, const char *s);
void cli_json_kv_int(struct cli *cli, const char *key, int64_t v);
void cli_json_kv_bool(struct cli *cli, const char *key, int v);

/* Writes s[0..len) as a JSON string literal (quotes included) to out:
 * escapes '"', '\\' and control characters, keeps valid UTF-8 as it is and
 * replaces each byte of invalid UTF-8 with U+FFFD. */
void cli_json_escape(FILE *out, const char *s, size_t len);

/* ---- plain output ---- */

/* Writes s to out with tabs, newlines and other control characters shown
 * as \t, \n, \xHH, so that one record stays one line. */
void cli_put_field(FILE *out, const char *s);

#endif
