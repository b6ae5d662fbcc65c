/*
 * cmd_queue.c - `fanmail queue`: ls, show, flush, delete, hold, release,
 * inject.
 *
 * Every command that changes the queue then tells a running fanmaild by
 * writing one word ("kick" or "flush") into the control file (setting
 * control_file, by default the database path with ".kick" appended), which
 * fanmaild watches (server/control.h). Without a daemon the file is
 * harmless: fanmaild scans the queue when it starts.
 */
#include "admin/cli.h"
#include "db/queue.h"
#include "db/retention.h"
#include "mail/strbuf.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static void
put_time(struct cli *cli, int64_t t)
{
	char buf[40];

	fputs(t > 0 ? cli_time(t, buf, sizeof(buf)) : "-", cli->out);
}

/* The fields of a queued message that `queue ls` and `queue show` share,
 * inside an object the caller opened. */
static void
json_message(struct cli *cli, const struct db_qsummary *s)
{
	cli_json_kv_str(cli, "qid", s->qid);
	cli_json_kv_str(cli, "kind", s->kind);
	cli_json_kv_str(cli, "from", s->env_from);
	cli_json_kv_int(cli, "created", s->created);
	cli_json_kv_int(cli, "expires", s->expires);
	cli_json_kv_int(cli, "size", s->size);
	cli_json_kv_bool(cli, "held", s->held);
}

static void
ls_row(void *arg, const struct db_qsummary *s)
{
	struct cli *cli = arg;

	if (cli->json) {
		cli_json_begin_object(cli);
		json_message(cli, s);
		cli_json_kv_int(cli, "queued", s->queued);
		cli_json_kv_int(cli, "deferred", s->deferred);
		cli_json_kv_int(cli, "sent", s->sent);
		cli_json_kv_int(cli, "failed", s->failed);
		cli_json_end_object(cli);
		return;
	}
	fprintf(cli->out, "%s\t%s\t", s->qid, s->kind);
	put_time(cli, s->created);
	fprintf(cli->out, "\t%lld\t<", (long long)s->size);
	cli_put_field(cli->out, s->env_from);
	fprintf(cli->out, ">\t%squeued=%lld deferred=%lld sent=%lld failed=%lld\n",
	        s->held ? "HELD " : "", (long long)s->queued, (long long)s->deferred,
	        (long long)s->sent, (long long)s->failed);
}

static int
cmd_queue_ls(struct cli *cli, int argc, char **argv)
{
	const struct cli_opt opts[] = {{0}};
	int n, rc;

	if ((n = cli_parse(cli, argc, argv, opts)) < 0)
		return EX_USAGE;
	if ((rc = cli_nargs(cli, n, 0, 0)) != 0)
		return rc;
	if ((rc = cli_open_db(cli)) != 0)
		return rc;
	if (cli->json)
		cli_json_begin_array(cli);
	if (db_queue_list(cli->db, ls_row, cli) < 0)
		return cli_db_error(cli, "queue ls");
	if (cli->json)
		cli_json_end_array(cli);
	return EX_OK;
}

static void
show_msg(void *arg, const struct db_qsummary *s)
{
	struct cli *cli = arg;

	if (cli->json) {
		cli_json_begin_object(cli);
		json_message(cli, s);
		cli_json_key(cli, "recipients");
		cli_json_begin_array(cli);
		return;
	}
	fprintf(cli->out, "qid: %s\nkind: %s\nfrom: <", s->qid, s->kind);
	cli_put_field(cli->out, s->env_from);
	fprintf(cli->out, ">\ncreated: ");
	put_time(cli, s->created);
	fprintf(cli->out, "\nexpires: ");
	put_time(cli, s->expires);
	fprintf(cli->out, "\nsize: %lld\nheld: %s\n", (long long)s->size, s->held ? "yes" : "no");
}

static void
show_rcpt(void *arg, const struct db_qrcpt *r)
{
	struct cli *cli = arg;

	if (cli->json) {
		cli_json_begin_object(cli);
		cli_json_kv_str(cli, "rcpt", r->rcpt);
		cli_json_kv_str(cli, "state", r->state);
		cli_json_kv_int(cli, "attempts", r->attempts);
		cli_json_key(cli, "next_attempt");
		if (strcmp(r->state, "deferred") == 0 || strcmp(r->state, "queued") == 0)
			cli_json_int(cli, r->next_attempt);
		else
			cli_json_null(cli);
		cli_json_key(cli, "updated");
		if (r->updated > 0)
			cli_json_int(cli, r->updated);
		else
			cli_json_null(cli);
		cli_json_kv_str(cli, "last_reply", r->last_reply);
		cli_json_end_object(cli);
		return;
	}
	cli_put_field(cli->out, r->rcpt);
	fprintf(cli->out, "\t%s\t%d\t", r->state, r->attempts);
	if (strcmp(r->state, "deferred") == 0 || strcmp(r->state, "queued") == 0)
		put_time(cli, r->next_attempt > 0 ? r->next_attempt : 0);
	else
		fputs("-", cli->out);
	fputs("\t", cli->out);
	cli_put_field(cli->out, r->last_reply ? r->last_reply : "-");
	fputs("\n", cli->out);
}

static int
cmd_queue_show(struct cli *cli, int argc, char **argv)
{
	const struct cli_opt opts[] = {{0}};
	int n, rc;

	if ((n = cli_parse(cli, argc, argv, opts)) < 0)
		return EX_USAGE;
	if ((rc = cli_nargs(cli, n, 1, 1)) != 0)
		return rc;
	if ((rc = cli_open_db(cli)) != 0)
		return rc;
	if (!cli->json)
		fprintf(cli->out, "%s", "");
	if (db_queue_show(cli->db, argv[0], show_msg, show_rcpt, cli) < 0) {
		if (db_status(cli->db) == DB_NOTFOUND)
			return cli_error(cli, EX_NOINPUT, "no message %s in the queue", argv[0]);
		return cli_db_error(cli, argv[0]);
	}
	if (cli->json) {
		cli_json_end_array(cli);
		cli_json_end_object(cli);
	}
	return EX_OK;
}

static int
cmd_queue_flush(struct cli *cli, int argc, char **argv)
{
	const struct cli_opt opts[] = {{0}};
	int64_t changed = 0;
	int n, rc;

	if ((n = cli_parse(cli, argc, argv, opts)) < 0)
		return EX_USAGE;
	if ((rc = cli_nargs(cli, n, 0, 0)) != 0)
		return rc;
	if ((rc = cli_open_db(cli)) != 0)
		return rc;
	if (db_queue_flush(cli->db, &changed) < 0)
		return cli_db_error(cli, "queue flush");
	cli_notify_daemon(cli, "flush");
	fprintf(cli->out, "%lld recipient(s) due now\n", (long long)changed);
	return EX_OK;
}

/* The retention pass fanmaild runs once a minute, run to the end now. */
static int
cmd_queue_purge(struct cli *cli, int argc, char **argv)
{
	const struct cli_opt opts[] = {{0}};
	struct db_retention r = {0};
	int n, rc;

	if ((n = cli_parse(cli, argc, argv, opts)) < 0)
		return EX_USAGE;
	if ((rc = cli_nargs(cli, n, 0, 0)) != 0)
		return rc;
	if ((rc = cli_open_db(cli)) != 0)
		return rc;
	if (db_retention_pass(cli->db, &r, db_now(), cli->conf.queue_keep_done,
	                      cli->conf.spool_keep_done, cli->conf.bounce_events_keep, 1e9) < 0)
		return cli_db_error(cli, "queue purge");
	if (cli->json) {
		cli_json_begin_object(cli);
		cli_json_kv_int(cli, "messages", r.msgs);
		cli_json_kv_int(cli, "recipient_rows", r.rows);
		cli_json_kv_int(cli, "spool_entries", r.spool);
		cli_json_kv_int(cli, "bounce_events", r.events);
		cli_json_kv_int(cli, "digest_posts", r.digest_posts);
		cli_json_kv_int(cli, "digest_issues", r.digest_issues);
		cli_json_end_object(cli);
	} else {
		fprintf(cli->out,
		        "purged %lld outbound message(s) (%lld recipient rows), %lld spool "
		        "entries, %lld bounce events, %lld digest posts, %lld digest issues\n",
		        r.msgs, r.rows, r.spool, r.events, r.digest_posts, r.digest_issues);
	}
	return EX_OK;
}

static int
change(struct cli *cli, int argc, char **argv, int what)
{
	const struct cli_opt opts[] = {{0}};
	int n, rc;

	if ((n = cli_parse(cli, argc, argv, opts)) < 0)
		return EX_USAGE;
	if ((rc = cli_nargs(cli, n, 1, -1)) != 0)
		return rc;
	if ((rc = cli_open_db(cli)) != 0)
		return rc;
	for (int i = 0; i < n; i++) {
		int r = what == 0 ? db_queue_delete(cli->db, argv[i])
		                  : db_queue_hold(cli->db, argv[i], what == 1);
		if (r < 0) {
			if (db_status(cli->db) == DB_NOTFOUND)
				return cli_error(cli, EX_NOINPUT, "no message %s in the queue",
				                 argv[i]);
			return cli_db_error(cli, argv[i]);
		}
	}
	cli_notify_daemon(cli, "kick");
	return EX_OK;
}

static int
cmd_queue_delete(struct cli *cli, int argc, char **argv)
{
	return change(cli, argc, argv, 0);
}

static int
cmd_queue_hold(struct cli *cli, int argc, char **argv)
{
	return change(cli, argc, argv, 1);
}

static int
cmd_queue_release(struct cli *cli, int argc, char **argv)
{
	return change(cli, argc, argv, 2);
}

/* The whole of FILE ("-": standard input) with CRLF line ends. */
static char *
read_message(struct cli *cli, const char *path, size_t *len)
{
	FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
	struct strbuf b = {0};
	size_t n;
	char *raw, *out;
	int c, prev = 0;

	if (f == NULL)
		return NULL;
	while (!b.oom && (c = getc(f)) != EOF) {
		char ch = (char)c;

		if (c == '\n' && prev != '\r')
			strbuf_add(&b, "\r", 1);
		strbuf_add(&b, &ch, 1);
		prev = c;
	}
	if (f != stdin)
		fclose(f);
	n = b.len;
	if ((raw = strbuf_done(&b)) == NULL)
		return NULL;
	out = cli_alloc(cli, n + 1);
	memcpy(out, raw, n);
	free(raw);
	*len = n;
	return out;
}

struct rcpts {
	struct outq_rcpt *v;
	size_t n, cap;
};

static int
add_rcpt(struct cli *cli, struct rcpts *r, const char *s, size_t len)
{
	struct addr a;
	const char *why;
	char buf[ADDR_PATH_MAX + 1], dom[ADDR_DOMAIN_MAX + 1];

	if (addr_parse(s, len, ADDR_UTF8, &a, &why) < 0)
		return cli_error(cli, EX_DATAERR, "invalid address '%.*s': %s", (int)len, s, why);
	if (r->n == r->cap) {
		r->cap = r->cap ? r->cap * 2 : 64;
		r->v = realloc(r->v, r->cap * sizeof(*r->v));
		if (r->v == NULL)
			return cli_error(cli, EX_SOFTWARE, "out of memory");
	}
	addr_format(&a, buf, sizeof(buf));
	addr_domain_key(&a, dom, sizeof(dom));
	r->v[r->n].addr = cli_strdup(cli, buf);
	r->v[r->n].domain = cli_strdup(cli, dom);
	r->v[r->n].member_id = 0;
	r->n++;
	return 0;
}

static int
cmd_queue_inject(struct cli *cli, int argc, char **argv)
{
	const char *from = NULL, *rfile = NULL, *kind = "post";
	struct cli_strv to = {0};
	int verp = 0;
	const struct cli_opt opts[] = {
	    {"from", 'f', CLI_OPT_STR, &from},       {"to", 't', CLI_OPT_MULTI, &to},
	    {"rcpt-file", 'r', CLI_OPT_STR, &rfile}, {"verp", 0, CLI_OPT_FLAG, &verp},
	    {"kind", 'k', CLI_OPT_STR, &kind},       {0},
	};
	struct rcpts r = {0};
	struct outq_msg m = {0};
	char qid[DB_QID_LEN];
	const char *why;
	struct addr fa;
	size_t len;
	char *body;
	int n, rc;

	if ((n = cli_parse(cli, argc, argv, opts)) < 0)
		return EX_USAGE;
	if ((rc = cli_nargs(cli, n, 1, 1)) != 0)
		return rc;
	if (from == NULL)
		return cli_usage_error(cli, "--from is required (\"\" for the null sender)");
	if (*from && addr_parse(from, strlen(from), ADDR_UTF8, &fa, &why) < 0)
		return cli_error(cli, EX_DATAERR, "--from: invalid address '%s': %s", from, why);
	for (size_t i = 0; i < to.n; i++)
		if ((rc = add_rcpt(cli, &r, to.v[i], strlen(to.v[i]))) != 0)
			return rc;
	if (rfile != NULL) {
		FILE *f = strcmp(rfile, "-") == 0 ? stdin : fopen(rfile, "r");
		char line[1024];
		if (f == NULL)
			return cli_error(cli, EX_NOINPUT, "--rcpt-file %s: %s", rfile,
			                 strerror(errno));
		while (fgets(line, sizeof(line), f) != NULL) {
			size_t l = strcspn(line, "\r\n");
			if (l == 0 || line[0] == '#')
				continue;
			if ((rc = add_rcpt(cli, &r, line, l)) != 0)
				return rc;
		}
		if (f != stdin)
			fclose(f);
	}
	if (r.n == 0)
		return cli_usage_error(cli, "no recipients: give --to or --rcpt-file");
	if ((rc = cli_load_conf(cli)) != 0)
		return rc;
	if ((body = read_message(cli, argv[0], &len)) == NULL)
		return cli_error(cli, EX_NOINPUT, "%s: %s", argv[0], strerror(errno));
	if ((rc = cli_open_db(cli)) != 0)
		return rc;
	m.kind = kind;
	m.env_from = from;
	m.verp = verp;
	m.body = body;
	m.len = len;
	m.lifetime = cli->conf.max_queue_lifetime;
	rc = db_outq_add(cli->db, &m, r.v, r.n, qid, NULL);
	free(r.v);
	if (rc < 0)
		return cli_db_error(cli, "queue inject");
	cli_notify_daemon(cli, "kick");
	fprintf(cli->out, "%s\n", qid);
	return EX_OK;
}

static const struct cli_cmd queue_cmds[] = {
    {"ls", cmd_queue_ls, CLI_JSON, "",
     "List queued messages with their recipients counted per state (queued, deferred, sent, "
     "failed)."},
    {"show", cmd_queue_show, CLI_JSON, "QID",
     "Show a message and every recipient's state, attempts, next attempt and last reply."},
    {"flush", cmd_queue_flush, 0, "", "Make every deferred recipient due now and tell fanmaild."},
    {"delete", cmd_queue_delete, 0, "QID...", "Delete messages and all their recipients."},
    {"purge", cmd_queue_purge, CLI_JSON, "",
     "Delete now what fanmaild's retention pass would: finished messages older than "
     "queue_keep_done, spool entries handled before spool_keep_done, bounce events older than "
     "bounce_events_keep."},
    {"hold", cmd_queue_hold, 0, "QID...", "Hold messages: nothing of them is sent until release."},
    {"release", cmd_queue_release, 0, "QID...", "Release held messages."},
    {"inject", cmd_queue_inject, 0,
     "--from ADDR (--to ADDR... | --rcpt-file FILE) [--verp] [--kind K] FILE",
     "Queue the message in FILE (\"-\": standard input) for the given recipients, and print "
     "its queue id."},
    {0},
};

const struct cli_group cli_group_queue = {"queue", "Inspect and manage the outbound queue.",
                                          queue_cmds};
