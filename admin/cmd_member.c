/*
 * cmd_member.c - `fanmail member`: add, remove, ls, show, import, export,
 * set.
 *
 * add, remove and set check every argument first and change all in one
 * transaction (any failure changes nothing). import commits the good lines
 * in one transaction and reports each bad one as FILE:LINE (with --strict
 * a bad line imports nothing). ls and export stream from the database, so
 * their memory does not grow with the list.
 */
#include "admin/cli.h"
#include "db/members.h"
#include "lists/listaddr.h"
#include "lists/store.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Longest member-file line taken; longer ones are reported as bad. */
#define LINE_MAX_OCTETS 4096
/* Bad import lines reported one by one before the rest are only counted. */
#define BAD_LINES_SHOWN 100

/* Parses each of argv[0..n) as "addr" or "Name <addr>". */
static int
parse_members(struct cli *cli, char **argv, int n, struct addr *a, char (*names)[256])
{
	const char *why;

	for (int i = 0; i < n; i++)
		if (addr_parse_line(argv[i], strlen(argv[i]), ADDR_UTF8, &a[i], names[i], 256,
		                    &why) < 0)
			return cli_error(cli, EX_DATAERR, "invalid address '%s': %s", argv[i], why);
	return 0;
}

/* The sentence for an address of this server that may not be a member. */
#define OURS_WHY "a list or list role address of this server cannot be a member"

/* Exits 65 when a is a list of this server or a role address of one
 * (a list subscribed to a list would mail its members the confirmation
 * and every post after it). */
static int
refuse_ours(struct cli *cli, const char *arg, const struct addr *a)
{
	int r = listaddr_is_ours(cli->db, a);

	if (r < 0)
		return cli_db_error(cli, arg);
	if (r > 0)
		return cli_error(cli, EX_DATAERR, "'%s': %s", arg, OURS_WHY);
	return 0;
}

static int
cmd_member_add(struct cli *cli, int argc, char **argv)
{
	const char *status = NULL;
	const struct cli_opt opts[] = {
	    {"status", 's', CLI_OPT_STR, &status},
	    {0},
	};
	struct db_list l;
	struct addr *a;
	char(*names)[256];
	int n, rc;

	if ((n = cli_parse(cli, argc, argv, opts)) < 0)
		return EX_USAGE;
	if ((rc = cli_nargs(cli, n, 2, -1)) != 0)
		return rc;
	if (status != NULL && !db_member_status_valid(status))
		return cli_error(cli, EX_DATAERR,
		                 "--status %s: not one of enabled, disabled, unconfirmed", status);
	a = cli_alloc(cli, (size_t)n * sizeof(*a));
	names = cli_alloc(cli, (size_t)n * sizeof(*names));
	if ((rc = parse_members(cli, argv + 1, n - 1, a, names)) != 0)
		return rc;
	if ((rc = cli_find_list(cli, argv[0], &l)) != 0)
		return rc;
	for (int i = 0; i < n - 1; i++)
		if ((rc = refuse_ours(cli, argv[i + 1], &a[i])) != 0)
			return rc;
	if (db_begin(cli->db) < 0)
		return cli_db_error(cli, l.address);
	for (int i = 0; i < n - 1; i++) {
		if (store_member_add(cli->db, l.id, &a[i], names[i], status) < 0) {
			rc = cli_db_error(cli, l.address);
			db_rollback(cli->db);
			return rc;
		}
	}
	if (db_commit(cli->db) < 0)
		return cli_db_error(cli, l.address);
	return EX_OK;
}

static int
cmd_member_remove(struct cli *cli, int argc, char **argv)
{
	const struct cli_opt opts[] = {{0}};
	struct db_list l;
	struct addr *a;
	int n, rc;

	if ((n = cli_parse(cli, argc, argv, opts)) < 0)
		return EX_USAGE;
	if ((rc = cli_nargs(cli, n, 2, -1)) != 0)
		return rc;
	a = cli_alloc(cli, (size_t)n * sizeof(*a));
	for (int i = 1; i < n; i++)
		if ((rc = cli_addr_arg(cli, argv[i], &a[i])) != 0)
			return rc;
	if ((rc = cli_find_list(cli, argv[0], &l)) != 0)
		return rc;
	if (db_begin(cli->db) < 0)
		return cli_db_error(cli, l.address);
	for (int i = 1; i < n; i++) {
		if (store_member_remove(cli->db, l.id, &a[i]) < 0) {
			rc = cli_db_error(cli, l.address);
			db_rollback(cli->db);
			return rc;
		}
	}
	if (db_commit(cli->db) < 0)
		return cli_db_error(cli, l.address);
	return EX_OK;
}

static void
member_json(struct cli *cli, const struct db_member *m)
{
	char when[32];

	cli_json_begin_object(cli);
	cli_json_kv_str(cli, "address", m->address);
	cli_json_kv_str(cli, "name", m->name[0] ? m->name : NULL);
	cli_json_kv_str(cli, "status", m->status);
	cli_json_kv_str(cli, "delivery", m->delivery);
	cli_json_kv_bool(cli, "self_copy", m->self_copy);
	cli_json_key(cli, "bounce_score");
	cli_json_double(cli, m->bounce_score);
	cli_json_key(cli, "last_bounce");
	if (m->last_bounce)
		cli_json_str(cli, cli_time(m->last_bounce, when, sizeof(when)));
	else
		cli_json_null(cli);
	cli_json_kv_str(cli, "created", cli_time(m->created, when, sizeof(when)));
	cli_json_kv_str(cli, "updated", cli_time(m->updated, when, sizeof(when)));
	cli_json_end_object(cli);
}

static int
ls_one(const struct db_member *m, void *arg)
{
	struct cli *cli = arg;

	if (cli->json) {
		member_json(cli, m);
		return 0;
	}
	fputs(m->address, cli->out);
	putc('\t', cli->out);
	fputs(m->status, cli->out);
	putc('\t', cli->out);
	fputs(m->delivery, cli->out);
	putc('\t', cli->out);
	cli_put_field(cli->out, m->name);
	putc('\n', cli->out);
	return ferror(cli->out) ? 1 : 0;
}

static int
cmd_member_ls(struct cli *cli, int argc, char **argv)
{
	const char *status = NULL;
	const struct cli_opt opts[] = {
	    {"status", 's', CLI_OPT_STR, &status},
	    {0},
	};
	struct db_list l;
	int n, rc;

	if ((n = cli_parse(cli, argc, argv, opts)) < 0)
		return EX_USAGE;
	if ((rc = cli_nargs(cli, n, 1, 1)) != 0)
		return rc;
	if (status != NULL && !db_member_status_valid(status))
		return cli_error(cli, EX_DATAERR,
		                 "--status %s: not one of enabled, disabled, unconfirmed", status);
	if ((rc = cli_find_list(cli, argv[0], &l)) != 0)
		return rc;
	if (cli->json)
		cli_json_begin_array(cli);
	rc = db_member_each(cli->db, l.id, status, ls_one, cli);
	if (rc < 0)
		return cli_db_error(cli, l.address);
	if (rc > 0)
		return cli_error(cli, EX_IOERR, "error writing the output");
	if (cli->json)
		cli_json_end_array(cli);
	return EX_OK;
}

static int
cmd_member_show(struct cli *cli, int argc, char **argv)
{
	const struct cli_opt opts[] = {{0}};
	struct db_member m;
	struct db_list l;
	struct addr a;
	char when[32];
	int n, rc;

	if ((n = cli_parse(cli, argc, argv, opts)) < 0)
		return EX_USAGE;
	if ((rc = cli_nargs(cli, n, 2, 2)) != 0)
		return rc;
	if ((rc = cli_addr_arg(cli, argv[1], &a)) != 0)
		return rc;
	if ((rc = cli_find_list(cli, argv[0], &l)) != 0)
		return rc;
	if (store_member_find(cli->db, l.id, &a, &m) < 0)
		return cli_db_error(cli, l.address);
	if (cli->json) {
		member_json(cli, &m);
		return EX_OK;
	}
	fprintf(cli->out, "%-13s %s\n", "address", m.address);
	fprintf(cli->out, "%-13s ", "name");
	cli_put_field(cli->out, m.name);
	putc('\n', cli->out);
	fprintf(cli->out, "%-13s %s\n", "status", m.status);
	fprintf(cli->out, "%-13s %s\n", "delivery", m.delivery);
	fprintf(cli->out, "%-13s %s\n", "self_copy", m.self_copy ? "yes" : "no");
	fprintf(cli->out, "%-13s %g\n", "bounce_score", m.bounce_score);
	fprintf(cli->out, "%-13s %s\n", "last_bounce",
	        m.last_bounce ? cli_time(m.last_bounce, when, sizeof(when)) : "");
	fprintf(cli->out, "%-13s %s\n", "created", cli_time(m.created, when, sizeof(when)));
	fprintf(cli->out, "%-13s %s\n", "updated", cli_time(m.updated, when, sizeof(when)));
	return EX_OK;
}

/* One line of a member file as written by export: "addr" or
 * "\"Name\" <addr>", which addr_parse_line() reads back. */
static int
export_one(const struct db_member *m, void *arg)
{
	struct cli *cli = arg;

	if (m->name[0] == '\0') {
		fputs(m->address, cli->out);
	} else {
		putc('"', cli->out);
		for (const char *p = m->name; *p; p++) {
			if (*p == '"' || *p == '\\')
				putc('\\', cli->out);
			putc(*p, cli->out);
		}
		fprintf(cli->out, "\" <%s>", m->address);
	}
	putc('\n', cli->out);
	return ferror(cli->out) ? 1 : 0;
}

static int
cmd_member_export(struct cli *cli, int argc, char **argv)
{
	const char *status = NULL;
	const struct cli_opt opts[] = {
	    {"status", 's', CLI_OPT_STR, &status},
	    {0},
	};
	struct db_list l;
	int n, rc;

	if ((n = cli_parse(cli, argc, argv, opts)) < 0)
		return EX_USAGE;
	if ((rc = cli_nargs(cli, n, 1, 1)) != 0)
		return rc;
	if (status != NULL && !db_member_status_valid(status))
		return cli_error(cli, EX_DATAERR,
		                 "--status %s: not one of enabled, disabled, unconfirmed", status);
	if ((rc = cli_find_list(cli, argv[0], &l)) != 0)
		return rc;
	rc = db_member_each(cli->db, l.id, status, export_one, cli);
	if (rc < 0)
		return cli_db_error(cli, l.address);
	if (rc > 0)
		return cli_error(cli, EX_IOERR, "error writing the output");
	return EX_OK;
}

struct import {
	int64_t good, added, unchanged, bad;
};

/* Reads the member file and feeds the good lines to the open import.
 * Returns 0, or an exit code after printing the error. */
static int
import_lines(struct cli *cli, FILE *in, const char *fname, struct db_import *dbi, struct import *im)
{
	char *line = NULL, name[DB_MEMBER_NAME_MAX + 1];
	size_t cap = 0;
	ssize_t len;
	unsigned long lineno = 0;
	const char *why;
	struct addr a;
	int r;

	while ((len = getline(&line, &cap, in)) >= 0) {
		const char *p = line;
		lineno++;
		/* A UTF-8 byte order mark (as some editors and spreadsheet
		 * exports write) is not part of the first address. */
		if (lineno == 1 && len >= 3 && memcmp(line, "\xef\xbb\xbf", 3) == 0) {
			memmove(line, line + 3, (size_t)len - 2);
			len -= 3;
		}
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == '\n' || *p == '\r' || *p == '#' || (*p == '\0' && p - line == len))
			continue;
		if (len > LINE_MAX_OCTETS)
			why = "the line is longer than 4096 octets";
		else if (addr_parse_line(line, (size_t)len, ADDR_UTF8, &a, name, sizeof(name),
		                         &why) == 0)
			why = NULL;
		if (why == NULL && (r = listaddr_is_ours(cli->db, &a)) != 0) {
			if (r < 0) {
				free(line);
				return cli_db_error(cli, fname);
			}
			why = OURS_WHY;
		}
		if (why != NULL) {
			if (im->bad++ < BAD_LINES_SHOWN) {
				int shown = len > 80 ? 80 : (int)len;
				while (shown > 0 &&
				       (line[shown - 1] == '\n' || line[shown - 1] == '\r'))
					shown--;
				cli_error(cli, EX_DATAERR, "%s:%lu: %s: '%.*s%s'", fname, lineno,
				          why, shown, line, len > 80 ? "..." : "");
			}
			continue;
		}
		r = store_member_import_add(cli->db, dbi, &a, name);
		if (r < 0) {
			if (db_status(cli->db) == DB_INVALID) {
				/* A bad name: the line's fault, not the database's. */
				if (im->bad++ < BAD_LINES_SHOWN)
					cli_error(cli, EX_DATAERR, "%s:%lu: %s", fname, lineno,
					          db_errmsg(cli->db));
				continue;
			}
			free(line);
			return cli_db_error(cli, fname);
		}
		im->good++;
	}
	free(line);
	if (ferror(in))
		return cli_error(cli, EX_IOERR, "%s: read error: %s", fname, strerror(errno));
	if (im->bad > BAD_LINES_SHOWN)
		cli_error(cli, EX_DATAERR, "%s: %lld more bad lines not shown", fname,
		          (long long)(im->bad - BAD_LINES_SHOWN));
	return 0;
}

static int
cmd_member_import(struct cli *cli, int argc, char **argv)
{
	int strict = 0, n, rc, commit;
	const char *delivery = NULL;
	const struct cli_opt opts[] = {
	    {"strict", 0, CLI_OPT_FLAG, &strict},
	    {"delivery", 0, CLI_OPT_STR, &delivery},
	    {0},
	};
	struct import im = {0};
	struct db_import *dbi;
	struct stat stbuf;
	const char *fname;
	struct db_list l;
	FILE *in;

	if ((n = cli_parse(cli, argc, argv, opts)) < 0)
		return EX_USAGE;
	if ((rc = cli_nargs(cli, n, 2, 2)) != 0)
		return rc;
	fname = strcmp(argv[1], "-") == 0 ? "<stdin>" : argv[1];
	in = strcmp(argv[1], "-") == 0 ? stdin : fopen(argv[1], "r");
	if (in == NULL)
		return cli_error(cli, EX_NOINPUT, "%s: cannot open: %s", argv[1], strerror(errno));
	if ((rc = cli_find_list(cli, argv[0], &l)) != 0)
		goto out;
	if ((dbi = db_member_import_begin(cli->db, l.id)) == NULL) {
		rc = cli_db_error(cli, l.address);
		goto out;
	}
	if (delivery != NULL && db_member_import_delivery(dbi, delivery) < 0) {
		rc = db_status(cli->db) == DB_INVALID
		         ? cli_error(cli, EX_USAGE, "%s", db_errmsg(cli->db))
		         : cli_db_error(cli, l.address);
		db_member_import_end(dbi, 0, NULL);
		goto out;
	}
	/* A file's size tells about how many lines come (an address line is
	 * rarely shorter than 16 bytes; a low guess only means the index is
	 * kept up to date row by row). */
	if (in != stdin && fstat(fileno(in), &stbuf) == 0 && S_ISREG(stbuf.st_mode) &&
	    db_member_import_expect(dbi, (int64_t)stbuf.st_size / 32) < 0) {
		rc = cli_db_error(cli, l.address);
		db_member_import_end(dbi, 0, NULL);
		goto out;
	}
	rc = import_lines(cli, in, fname, dbi, &im);
	commit = rc == 0 && !(strict && im.bad > 0);
	if (db_member_import_end(dbi, commit, &im.added) < 0) {
		rc = cli_db_error(cli, l.address);
		goto out;
	}
	im.unchanged = im.good - im.added;
	if (rc != 0)
		goto out;
	if (!commit) {
		rc = cli_error(cli, EX_DATAERR, "%s: %lld bad lines; nothing imported (--strict)",
		               fname, (long long)im.bad);
		goto out;
	}
	if (cli->json) {
		cli_json_begin_object(cli);
		cli_json_kv_int(cli, "added", im.added);
		cli_json_kv_int(cli, "unchanged", im.unchanged);
		cli_json_kv_int(cli, "bad", im.bad);
		cli_json_end_object(cli);
	} else {
		fprintf(cli->out, "added %lld, already members %lld, bad lines %lld\n",
		        (long long)im.added, (long long)im.unchanged, (long long)im.bad);
	}
	rc = im.bad > 0 ? EX_DATAERR : EX_OK;
out:
	if (in != stdin)
		fclose(in);
	return rc;
}

static int
cmd_member_set(struct cli *cli, int argc, char **argv)
{
	const struct cli_opt opts[] = {{0}};
	const char **keys, **values;
	struct db_list l;
	struct addr a;
	int n, rc;

	if ((n = cli_parse(cli, argc, argv, opts)) < 0)
		return EX_USAGE;
	if ((rc = cli_nargs(cli, n, 3, -1)) != 0)
		return rc;
	if ((rc = cli_addr_arg(cli, argv[1], &a)) != 0)
		return rc;
	keys = cli_alloc(cli, (size_t)n * sizeof(*keys));
	values = cli_alloc(cli, (size_t)n * sizeof(*values));
	for (int i = 2; i < n; i++)
		if ((rc = cli_keyvalue(cli, argv[i], &keys[i], &values[i])) != 0)
			return rc;
	if ((rc = cli_find_list(cli, argv[0], &l)) != 0)
		return rc;
	if (db_begin(cli->db) < 0)
		return cli_db_error(cli, l.address);
	for (int i = 2; i < n; i++) {
		if (store_member_set(cli->db, l.id, &a, keys[i], values[i]) < 0) {
			enum db_status st = db_status(cli->db);
			rc = cli_db_error(cli, st == DB_INVALID ? NULL : l.address);
			db_rollback(cli->db);
			return rc;
		}
	}
	if (db_commit(cli->db) < 0)
		return cli_db_error(cli, l.address);
	return EX_OK;
}

static const struct cli_cmd member_cmds[] = {
    {"add", cmd_member_add, 0, "LIST ADDR... [--status enabled|disabled|unconfirmed]",
     "Adds members. Each ADDR is an address or 'Name <address>'. All are added, or\n"
     "none is: an invalid address or one that is a member already changes nothing."},
    {"remove", cmd_member_remove, 0, "LIST ADDR...",
     "Removes members. All are removed, or none is (an address that is not a member\n"
     "changes nothing)."},
    {"ls", cmd_member_ls, CLI_JSON, "LIST [--status enabled|disabled|unconfirmed]",
     "Lists members in address order, one a line: address, status, delivery, name,\n"
     "tab-separated."},
    {"show", cmd_member_show, CLI_JSON, "LIST ADDR", "Shows one member and all its fields."},
    {"import", cmd_member_import, CLI_JSON,
     "LIST FILE|- [--strict] [--delivery regular|digest|digest-text|nomail]",
     "Adds the members listed in FILE (or standard input for -): one address, or\n"
     "'Name <address>', or 'address (Name)' a line; blank lines and lines that start\n"
     "with # are skipped. The good lines are added in one transaction; addresses that\n"
     "are members already are left as they are, so importing again changes nothing.\n"
     "Each bad line is reported as FILE:LINE with the reason, and the exit code is then\n"
     "65 (EX_DATAERR). With --strict a bad line imports nothing. Prints how many were\n"
     "added, were members already, and were bad. With --delivery the new members get\n"
     "that delivery mode (those that were members already keep theirs)."},
    {"export", cmd_member_export, 0, "LIST [--status enabled|disabled|unconfirmed]",
     "Writes the members in the format import reads: 'address' or '\"Name\" <address>',\n"
     "one a line."},
    {"set", cmd_member_set, 0, "LIST ADDR KEY=VALUE...",
     "Changes a member: status=enabled|disabled|unconfirmed (enabled also resets the\n"
     "bounce score), delivery=regular|digest|digest-text|nomail,\n"
     "self_copy=yes|no, name=TEXT.\n"
     "All pairs are applied together, or none is."},
    {0},
};

const struct cli_group cli_group_member = {
    "member", "Add, remove, list, import and export members.", member_cmds};
