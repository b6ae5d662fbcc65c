/*
 * cli.c - the command framework of `fanmail`: option parsing, config and
 * database set-up, error reporting with sysexits codes, and a streaming
 * JSON writer. See cli.h for how a command group plugs in.
 */
#include "admin/cli.h"
#include "lists/listaddr.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mail/utf8.h"

#define JSON_DEPTH 32

struct cli_json {
	int depth;
	int count[JSON_DEPTH]; /* values written at each level */
	int after_key;
};

static void
oom(void)
{
	fputs("fanmail: out of memory\n", stderr);
	exit(EX_OSERR);
}

void *
cli_alloc(struct cli *cli, size_t size)
{
	void *p = calloc(1, size ? size : 1);
	void **owned;

	if (p == NULL)
		oom();
	owned = realloc(cli->owned, (cli->nowned + 1) * sizeof(*owned));
	if (owned == NULL)
		oom();
	cli->owned = owned;
	cli->owned[cli->nowned++] = p;
	return p;
}

char *
cli_strdup(struct cli *cli, const char *s)
{
	size_t n = strlen(s) + 1;
	char *p = cli_alloc(cli, n);

	memcpy(p, s, n);
	return p;
}

static void
print_prefix(struct cli *cli)
{
	fputs(cli->prog ? cli->prog : "fanmail", stderr);
	if (cli->group != NULL) {
		fprintf(stderr, " %s", cli->group->name);
		if (cli->cmd != NULL && cli->cmd->name[0] != '\0')
			fprintf(stderr, " %s", cli->cmd->name);
	}
	fputs(": ", stderr);
}

/* "fanmail GROUP CMD: message" on stderr, after what was written to
 * cli->out. */
static void
print_error(struct cli *cli, const char *fmt, va_list ap)
{
	fflush(cli->out);
	print_prefix(cli);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

int
cli_error(struct cli *cli, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	print_error(cli, fmt, ap);
	va_end(ap);
	return code;
}

static void
print_usage(struct cli *cli, FILE *out)
{
	const char *p = cli->prog ? cli->prog : "fanmail";

	if (cli->group == NULL) {
		fprintf(out, "usage: %s [-c FILE] COMMAND [ARGS...]\n", p);
		return;
	}
	if (cli->cmd == NULL) {
		fprintf(out, "usage: %s [-c FILE] %s COMMAND [ARGS...]\n", p, cli->group->name);
		return;
	}
	fprintf(out, "usage: %s [-c FILE] %s%s%s%s%s%s\n", p, cli->group->name,
	        cli->cmd->name[0] ? " " : "", cli->cmd->name, *cli->cmd->usage ? " " : "",
	        cli->cmd->usage, (cli->cmd->flags & CLI_JSON) ? " [--json]" : "");
}

int
cli_usage_error(struct cli *cli, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	print_error(cli, fmt, ap);
	va_end(ap);
	print_usage(cli, stderr);
	return EX_USAGE;
}

void
cli_print_help(struct cli *cli, FILE *out)
{
	print_usage(cli, out);
	if (cli->cmd != NULL && cli->cmd->help != NULL)
		fprintf(out, "\n%s\n", cli->cmd->help);
	if (cli->cmd != NULL && (cli->cmd->flags & CLI_JSON))
		fputs("\n  --json  print the result as JSON\n", out);
}

int
cli_exit_code(enum db_status st)
{
	switch (st) {
	case DB_OK:
		return EX_OK;
	case DB_BUSY:
		return EX_TEMPFAIL;
	case DB_FULL:
		return EX_IOERR;
	case DB_NOTFOUND:
		return EX_NOINPUT;
	case DB_EXISTS:
		return EX_CANTCREAT;
	case DB_INVALID:
		return EX_DATAERR;
	case DB_READONLY:
		return EX_NOPERM;
	case DB_TOO_NEW:
		return EX_CONFIG;
	case DB_ERR:
		break;
	}
	return EX_SOFTWARE;
}

int
cli_db_error(struct cli *cli, const char *what)
{
	enum db_status st = db_status(cli->db);
	const char *msg = db_errmsg(cli->db);

	if (st == DB_OK)
		st = DB_ERR;
	if (what != NULL)
		return cli_error(cli, cli_exit_code(st), "%s: %s", what, *msg ? msg : "failed");
	return cli_error(cli, cli_exit_code(st), "%s", *msg ? msg : "database error");
}

/* ---- options ---- */

static const struct cli_opt *
find_long(const struct cli_opt *opts, const char *name, size_t len)
{
	for (; opts->name != NULL || opts->short_name != 0; opts++)
		if (opts->name != NULL && strlen(opts->name) == len &&
		    memcmp(opts->name, name, len) == 0)
			return opts;
	return NULL;
}

static const struct cli_opt *
find_short(const struct cli_opt *opts, char c)
{
	for (; opts->name != NULL || opts->short_name != 0; opts++)
		if (opts->short_name == c)
			return opts;
	return NULL;
}

static void
store_opt(struct cli *cli, const struct cli_opt *o, const char *value)
{
	struct cli_strv *sv;
	const char **v;

	switch (o->kind) {
	case CLI_OPT_FLAG:
		*(int *)o->dest = 1;
		break;
	case CLI_OPT_STR:
		*(const char **)o->dest = value;
		break;
	case CLI_OPT_MULTI:
		sv = o->dest;
		v = cli_alloc(cli, (sv->n + 1) * sizeof(*v));
		if (sv->n > 0)
			memcpy(v, sv->v, sv->n * sizeof(*v));
		v[sv->n++] = value;
		sv->v = v;
		break;
	}
}

int
cli_parse(struct cli *cli, int argc, char **argv, const struct cli_opt *opts)
{
	int npos = 0, i;

	for (i = 1; i < argc; i++) {
		char *a = argv[i];
		const struct cli_opt *o;
		const char *value = NULL;

		if (strcmp(a, "--") == 0) {
			i++;
			break;
		}
		if (a[0] != '-' || a[1] == '\0') {
			argv[npos++] = a;
			continue;
		}
		if (a[1] == '-') {
			const char *eq = strchr(a + 2, '=');
			size_t len = eq ? (size_t)(eq - (a + 2)) : strlen(a + 2);
			o = find_long(opts, a + 2, len);
			if (o == NULL) {
				cli_usage_error(cli, "unknown option --%.*s", (int)len, a + 2);
				return -1;
			}
			if (o->kind == CLI_OPT_FLAG) {
				if (eq != NULL) {
					cli_usage_error(cli, "option --%s takes no value", o->name);
					return -1;
				}
			} else if (eq != NULL) {
				value = eq + 1;
			} else if (i + 1 < argc) {
				value = argv[++i];
			} else {
				cli_usage_error(cli, "option --%s needs a value", o->name);
				return -1;
			}
		} else {
			o = find_short(opts, a[1]);
			if (o == NULL) {
				cli_usage_error(cli, "unknown option -%c", a[1]);
				return -1;
			}
			if (o->kind == CLI_OPT_FLAG) {
				if (a[2] != '\0') {
					cli_usage_error(cli, "option -%c takes no value", a[1]);
					return -1;
				}
			} else if (a[2] != '\0') {
				value = a + 2;
			} else if (i + 1 < argc) {
				value = argv[++i];
			} else {
				cli_usage_error(cli, "option -%c needs a value", a[1]);
				return -1;
			}
		}
		store_opt(cli, o, value);
	}
	for (; i < argc; i++)
		argv[npos++] = argv[i];
	return npos;
}

int
cli_nargs(struct cli *cli, int n, int min, int max)
{
	if (n < min)
		return cli_usage_error(cli, "%s",
		                       n == 0 ? "missing arguments" : "too few arguments");
	if (max >= 0 && n > max)
		return cli_usage_error(cli, "too many arguments");
	return 0;
}

/* ---- set-up ---- */

int
cli_load_conf(struct cli *cli)
{
	char err[1024];
	const char *path;
	int named;

	if (cli->conf_loaded)
		return 0;
	named = (cli->conf_arg != NULL && *cli->conf_arg) ||
	        (getenv("FANMAIL_CONFIG") != NULL && *getenv("FANMAIL_CONFIG"));
	path = conf_default_path(cli->conf_arg);
	conf_init(&cli->conf);
	cli->conf_loaded = 1;
	if (conf_load(&cli->conf, path, named, err, sizeof(err)) < 0)
		return cli_error(cli, EX_CONFIG, "%s", err);
	return 0;
}

/* Whether this user may write the database file and its directory (where
 * SQLite creates the -wal and -shm files). access() is right here: it
 * answers for the real user, and says no to root on an immutable file. */
static int
may_write(const char *path)
{
	char dir[4096];
	char *slash;

	if (access(path, W_OK) < 0)
		return errno == ENOENT; /* none to read: the first error stands */
	if (snprintf(dir, sizeof(dir), "%s", path) >= (int)sizeof(dir))
		return 1;
	slash = strrchr(dir, '/');
	if (slash == NULL)
		snprintf(dir, sizeof(dir), ".");
	else if (slash == dir)
		dir[1] = '\0';
	else
		*slash = '\0';
	return access(dir, W_OK) == 0;
}

int
cli_open_db(struct cli *cli)
{
	char err[1024];
	int rc;

	if (cli->db != NULL)
		return 0;
	rc = cli_load_conf(cli);
	if (rc != 0)
		return rc;
	if (cli->conf.database == NULL || *cli->conf.database == '\0')
		return cli_error(cli, EX_CONFIG, "the setting 'database' is empty");
	cli->db = db_open(cli->conf.database, DB_OPEN_CREATE, err, sizeof(err));
	if (cli->db == NULL && !may_write(cli->conf.database)) {
		/* Reading commands work on a database this user may only read;
		 * a write then fails with DB_READONLY (exit 77). */
		char err2[1024];

		cli->db = db_open(cli->conf.database, DB_OPEN_READONLY, err2, sizeof(err2));
		if (cli->db == NULL)
			return cli_error(cli, EX_NOPERM, "%s (this user may not write it)", err2);
	}
	if (cli->db == NULL) {
		/* db_open() gives a message only; its wording tells a lock
		 * (db_fail's) and a newer schema apart from the rest. */
		if (strstr(err, "locked by another process") != NULL)
			return cli_error(cli, EX_TEMPFAIL, "%s", err);
		if (strstr(err, "this fanmail knows up to") != NULL)
			return cli_error(cli, EX_CONFIG, "%s", err);
		if (strstr(err, "cannot open") != NULL || strstr(err, "cannot create") != NULL)
			return cli_error(cli, EX_CANTCREAT, "%s", err);
		return cli_error(cli, EX_SOFTWARE, "%s", err);
	}
	return 0;
}

/* ---- arguments ---- */

int
cli_addr_arg(struct cli *cli, const char *arg, struct addr *a)
{
	const char *why;

	if (addr_parse(arg, strlen(arg), ADDR_UTF8, a, &why) < 0)
		return cli_error(cli, EX_DATAERR, "invalid address '%s': %s", arg, why);
	return 0;
}

int
cli_list_addr(struct cli *cli, const char *arg, struct addr *a)
{
	char buf[ADDR_PATH_MAX + 2];
	const char *why;
	int rc;

	if (strchr(arg, '@') == NULL && *arg != '\0') {
		if ((rc = cli_load_conf(cli)) != 0)
			return rc;
		if ((size_t)snprintf(buf, sizeof(buf), "%s@%s", arg,
		                     cli->conf.default_list_domain) >= sizeof(buf))
			return cli_error(cli, EX_DATAERR,
			                 "invalid list address '%s': longer than 254 octets", arg);
		arg = buf;
	}
	if (addr_parse(arg, strlen(arg), 0, a, &why) < 0 || listaddr_check_list(a, &why) < 0)
		return cli_error(cli, EX_DATAERR, "invalid list address '%s': %s", arg, why);
	return 0;
}

int
cli_find_list(struct cli *cli, const char *arg, struct db_list *out)
{
	struct addr a;
	char buf[ADDR_PATH_MAX + 1];
	int rc;

	if ((rc = cli_list_addr(cli, arg, &a)) != 0)
		return rc;
	if ((rc = cli_open_db(cli)) != 0)
		return rc;
	if (db_list_find(cli->db, a.local, a.domain, out) < 0) {
		if (db_status(cli->db) != DB_NOTFOUND)
			return cli_db_error(cli, NULL);
		addr_format(&a, buf, sizeof(buf));
		return cli_error(cli, EX_NOINPUT, "no list '%s'", buf);
	}
	return 0;
}

int
cli_keyvalue(struct cli *cli, const char *arg, const char **key, const char **value)
{
	char *copy = cli_strdup(cli, arg), *eq = strchr(copy, '=');

	if (eq == NULL || eq == copy)
		return cli_usage_error(cli, "'%s': expected KEY=VALUE", arg);
	*eq = '\0';
	*key = copy;
	*value = eq + 1;
	return 0;
}

const char *
cli_time(int64_t t, char *buf, size_t len)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (gmtime_r(&tt, &tm) == NULL || strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(buf, len, "%lld", (long long)t);
	return buf;
}

/* ---- JSON ---- */

void
cli_json_escape(FILE *out, const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s, *end = p + len;

	putc('"', out);
	while (p < end) {
		unsigned char c = *p;
		size_t n;

		switch (c) {
		case '"':
			fputs("\\\"", out);
			p++;
			continue;
		case '\\':
			fputs("\\\\", out);
			p++;
			continue;
		case '\n':
			fputs("\\n", out);
			p++;
			continue;
		case '\r':
			fputs("\\r", out);
			p++;
			continue;
		case '\t':
			fputs("\\t", out);
			p++;
			continue;
		case '\b':
			fputs("\\b", out);
			p++;
			continue;
		case '\f':
			fputs("\\f", out);
			p++;
			continue;
		default:
			break;
		}
		if (c < 0x20 || c == 0x7f) {
			fprintf(out, "\\u%04x", c);
			p++;
			continue;
		}
		n = utf8_seq_len(p, (size_t)(end - p));
		if (n == 0) {
			fputs("\\ufffd", out);
			p++;
			continue;
		}
		fwrite(p, 1, n, out);
		p += n;
	}
	putc('"', out);
}

static struct cli_json *
js(struct cli *cli)
{
	if (cli->js == NULL)
		cli->js = cli_alloc(cli, sizeof(*cli->js));
	return cli->js;
}

/* Writes the separator a new value needs at the current position. */
static void
json_sep(struct cli *cli)
{
	struct cli_json *j = js(cli);

	if (j->after_key) {
		j->after_key = 0;
		return;
	}
	if (j->depth > 0 && j->count[j->depth]++ > 0)
		putc(',', cli->out);
}

static void
json_done_value(struct cli *cli)
{
	if (js(cli)->depth == 0)
		putc('\n', cli->out);
}

static void
json_open(struct cli *cli, int c)
{
	struct cli_json *j = js(cli);

	json_sep(cli);
	putc(c, cli->out);
	if (j->depth + 1 >= JSON_DEPTH) {
		fputs("fanmail: JSON nested too deeply\n", stderr);
		abort();
	}
	j->depth++;
	j->count[j->depth] = 0;
}

static void
json_close(struct cli *cli, int c)
{
	struct cli_json *j = js(cli);

	putc(c, cli->out);
	if (j->depth > 0)
		j->depth--;
	json_done_value(cli);
}

void
cli_json_begin_object(struct cli *cli)
{
	json_open(cli, '{');
}

void
cli_json_end_object(struct cli *cli)
{
	json_close(cli, '}');
}

void
cli_json_begin_array(struct cli *cli)
{
	json_open(cli, '[');
}

void
cli_json_end_array(struct cli *cli)
{
	json_close(cli, ']');
}

void
cli_json_key(struct cli *cli, const char *key)
{
	json_sep(cli);
	cli_json_escape(cli->out, key, strlen(key));
	putc(':', cli->out);
	js(cli)->after_key = 1;
}

void
cli_json_strn(struct cli *cli, const char *s, size_t len)
{
	json_sep(cli);
	cli_json_escape(cli->out, s, len);
	json_done_value(cli);
}

void
cli_json_str(struct cli *cli, const char *s)
{
	if (s == NULL) {
		cli_json_null(cli);
		return;
	}
	cli_json_strn(cli, s, strlen(s));
}

void
cli_json_int(struct cli *cli, int64_t v)
{
	json_sep(cli);
	fprintf(cli->out, "%lld", (long long)v);
	json_done_value(cli);
}

void
cli_json_double(struct cli *cli, double v)
{
	json_sep(cli);
	if (v != v || v > 1e308 || v < -1e308)
		fputs("null", cli->out);
	else
		fprintf(cli->out, "%.17g", v);
	json_done_value(cli);
}

void
cli_json_bool(struct cli *cli, int v)
{
	json_sep(cli);
	fputs(v ? "true" : "false", cli->out);
	json_done_value(cli);
}

void
cli_json_null(struct cli *cli)
{
	json_sep(cli);
	fputs("null", cli->out);
	json_done_value(cli);
}

void
cli_json_kv_str(struct cli *cli, const char *key, const char *s)
{
	cli_json_key(cli, key);
	cli_json_str(cli, s);
}

void
cli_json_kv_int(struct cli *cli, const char *key, int64_t v)
{
	cli_json_key(cli, key);
	cli_json_int(cli, v);
}

void
cli_json_kv_bool(struct cli *cli, const char *key, int v)
{
	cli_json_key(cli, key);
	cli_json_bool(cli, v);
}

void
cli_put_field(FILE *out, const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '\t')
			fputs("\\t", out);
		else if (*p == '\n')
			fputs("\\n", out);
		else if (*p < 0x20 || *p == 0x7f)
			fprintf(out, "\\x%02x", *p);
		else
			putc(*p, out);
	}
}

void
cli_notify_daemon(struct cli *cli, const char *word)
{
	char path[4200];
	int fd;

	if (cli->conf.control_file[0] != '\0')
		snprintf(path, sizeof(path), "%s", cli->conf.control_file);
	else
		snprintf(path, sizeof(path), "%s.kick", cli->conf.database);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0660);
	if (fd < 0) {
		fprintf(stderr, "fanmail: warning: cannot notify fanmaild through %s: %s\n", path,
		        strerror(errno));
		return;
	}
	(void)!write(fd, word, strlen(word));
	close(fd);
}
