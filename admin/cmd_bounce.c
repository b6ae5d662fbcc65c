/*
 * cmd_bounce.c - `fanmail bounce parse FILE...` (what fanmail makes of a
 * bounce: per message, each recipient with action, status, class and
 * reason) and `fanmail bounces ls LIST` (members with their bounce score,
 * last bounce and last reason, and policy bounces per domain),
 * `fanmail bounces sweep [LIST]` (the timed step for members disabled for
 * bounces, run now).
 */
#include "admin/cli.h"
#include "db/bounces.h"
#include "lists/bounce.h"
#include "lists/score.h"
#include "mail/strbuf.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Largest file `bounce parse` reads. */
#define PARSE_MAX_OCTETS (64 * 1024 * 1024)
/* How far back `bounces ls` counts policy bounces per domain. */
#define POLICY_WINDOW (30 * 86400)

/* All of f, NUL-terminated; NULL with errno set on a read error, EFBIG
 * from PARSE_MAX_OCTETS on, ENOMEM when memory runs out. */
static char *
read_all(FILE *f, size_t *len)
{
	struct strbuf b = {0};
	char chunk[65536];
	size_t r;

	while ((r = fread(chunk, 1, sizeof(chunk), f)) > 0) {
		strbuf_add(&b, chunk, r);
		if (b.len >= PARSE_MAX_OCTETS) {
			strbuf_free(&b);
			errno = EFBIG;
			return NULL;
		}
	}
	if (ferror(f)) {
		strbuf_free(&b);
		return NULL;
	}
	*len = b.len;
	if (b.oom)
		errno = ENOMEM;
	return strbuf_done(&b);
}

static const char *
dash(const char *s)
{
	return s && *s ? s : "-";
}

static void
print_report(struct cli *cli, const char *file, size_t msgno, int mbox,
             const struct bounce_report *r)
{
	if (cli->json) {
		cli_json_begin_object(cli);
		cli_json_kv_str(cli, "file", file);
		if (mbox)
			cli_json_kv_int(cli, "message", (int64_t)msgno);
		cli_json_kv_str(cli, "kind", bounce_kind_name(r->kind));
		cli_json_kv_str(cli, "detector", r->detector);
		cli_json_key(cli, "recipients");
		cli_json_begin_array(cli);
		for (size_t i = 0; i < r->n; i++) {
			const struct bounce_rcpt *b = &r->rcpts[i];
			cli_json_begin_object(cli);
			cli_json_kv_str(cli, "address", b->addr);
			cli_json_kv_str(cli, "original", b->orig[0] ? b->orig : NULL);
			cli_json_kv_str(cli, "action", b->action);
			cli_json_kv_str(cli, "status", b->status[0] ? b->status : NULL);
			cli_json_kv_str(cli, "class", bounce_class_name(b->cls));
			cli_json_kv_str(cli, "reason", b->reason);
			cli_json_kv_str(cli, "diagnostic", b->diag[0] ? b->diag : NULL);
			cli_json_kv_bool(cli, "bounced", bounce_rcpt_is_failure(b));
			cli_json_end_object(cli);
		}
		cli_json_end_array(cli);
		cli_json_end_object(cli);
		return;
	}
	if (mbox)
		fprintf(cli->out, "# %s message %zu: %s", file, msgno, bounce_kind_name(r->kind));
	else
		fprintf(cli->out, "# %s: %s", file, bounce_kind_name(r->kind));
	fprintf(cli->out, r->n ? "\n" : ", no recipients\n");
	for (size_t i = 0; i < r->n; i++) {
		const struct bounce_rcpt *b = &r->rcpts[i];
		fprintf(cli->out, "%s\t%s\t%s\t%s\t%s\t%s\n", b->addr, dash(b->action),
		        dash(b->status), bounce_class_name(b->cls), dash(b->reason), dash(b->diag));
	}
}

static int
cmd_bounce_parse(struct cli *cli, int argc, char **argv)
{
	const struct cli_opt opts[] = {{0}};
	int n, rc;

	if ((n = cli_parse(cli, argc, argv, opts)) < 0)
		return EX_USAGE;
	if ((rc = cli_nargs(cli, n, 1, -1)) != 0)
		return rc;
	/* Every file readable before anything is printed: no half a report. */
	for (int i = 0; i < n; i++)
		if (strcmp(argv[i], "-") != 0 && access(argv[i], R_OK) != 0)
			return cli_error(cli, EX_NOINPUT, "%s: %s", argv[i], strerror(errno));
	if (cli->json)
		cli_json_begin_array(cli);
	for (int i = 0; i < n; i++) {
		const char *file = argv[i];
		FILE *f = strcmp(file, "-") == 0 ? stdin : fopen(file, "rb");
		size_t len = 0, off = 0, mlen, msgno = 0;
		const char *msg;
		char *buf;
		int mbox;

		if (f == NULL)
			return cli_error(cli, EX_NOINPUT, "%s: %s", file, strerror(errno));
		buf = read_all(f, &len);
		if (f != stdin)
			fclose(f);
		if (buf == NULL)
			return cli_error(cli, EX_IOERR, "%s: %s", file, strerror(errno));
		mbox = len >= 5 && memcmp(buf, "From ", 5) == 0;
		while (bounce_mbox_next(buf, len, &off, &msg, &mlen)) {
			struct bounce_report r;
			msgno++;
			if (bounce_parse(msg, mlen, &r) < 0) {
				free(buf);
				return cli_error(cli, EX_SOFTWARE, "%s: out of memory", file);
			}
			print_report(cli, file, msgno, mbox, &r);
			bounce_report_free(&r);
		}
		free(buf);
	}
	if (cli->json)
		cli_json_end_array(cli);
	return EX_OK;
}

static const struct cli_cmd bounce_cmds[] = {
    {"parse", cmd_bounce_parse, CLI_JSON, "FILE...",
     "Show what fanmail makes of each bounce message in the files (a file may be a Unix "
     "mbox; - reads standard input): per message its kind (dsn, text, arf, autoreply, "
     "none), then per recipient the address, action, status x.y.z, class (hard, soft, "
     "policy, complaint, none), reason and the remote server's words."},
    {0},
};

const struct cli_group cli_group_bounce = {"bounce", "Parse bounce messages.", bounce_cmds};

/* ---- bounces ls ---- */

struct ls_ctx {
	struct cli *cli;
	int64_t decay_after;
	int64_t now;
};

/* The score as the next bounce would find it: an enabled member's stored
 * score halved for each full quiet period since its last counted bounce
 * (lists/score.h); a disabled member keeps the score it was disabled with. */
static double
ls_score(const struct ls_ctx *c, const struct db_bounce_member *m)
{
	if (strcmp(m->status, "enabled") != 0)
		return m->score;
	return score_decay(m->score, m->last_scored, c->now, c->decay_after);
}

static int
ls_member(const struct db_bounce_member *m, void *arg)
{
	struct ls_ctx *c = arg;
	struct cli *cli = c->cli;
	double score = ls_score(c, m);
	char t[32], d[32];

	if (cli->json) {
		cli_json_begin_object(cli);
		cli_json_kv_str(cli, "address", m->address);
		cli_json_kv_str(cli, "status", m->status);
		cli_json_key(cli, "score");
		cli_json_double(cli, score);
		cli_json_key(cli, "stored_score");
		cli_json_double(cli, m->score);
		cli_json_kv_str(cli, "last_bounce",
		                m->last_bounce ? cli_time(m->last_bounce, t, sizeof(t)) : NULL);
		cli_json_kv_str(cli, "last_reason", m->last_reason[0] ? m->last_reason : NULL);
		cli_json_kv_str(cli, "disabled_reason",
		                m->disabled_reason[0] ? m->disabled_reason : NULL);
		cli_json_kv_str(cli, "disabled_since",
		                m->disabled_since ? cli_time(m->disabled_since, d, sizeof(d))
		                                  : NULL);
		cli_json_kv_bool(cli, "probed", m->probe_sent > 0);
		cli_json_end_object(cli);
		return 0;
	}
	fprintf(cli->out, "%s\t%s\t%.1f\t%s\t%s\n", m->address, m->status, score,
	        m->last_bounce ? cli_time(m->last_bounce, t, sizeof(t)) : "-",
	        m->last_reason[0] ? m->last_reason : "-");
	return 0;
}

static int
ls_domain(const char *domain, int64_t count, int64_t last, void *arg)
{
	struct cli *cli = arg;
	char t[32];

	if (cli->json) {
		cli_json_begin_object(cli);
		cli_json_kv_str(cli, "domain", domain);
		cli_json_kv_int(cli, "count", count);
		cli_json_kv_str(cli, "last", cli_time(last, t, sizeof(t)));
		cli_json_end_object(cli);
		return 0;
	}
	fprintf(cli->out, "policy\t%s\t%lld\t%s\n", domain, (long long)count,
	        cli_time(last, t, sizeof(t)));
	return 0;
}

static int
cmd_bounces_ls(struct cli *cli, int argc, char **argv)
{
	const struct cli_opt opts[] = {{0}};
	struct db_list l;
	struct score_settings s;
	struct ls_ctx ctx = {cli, 0, db_now()};
	int n, rc;

	if ((n = cli_parse(cli, argc, argv, opts)) < 0)
		return EX_USAGE;
	if ((rc = cli_nargs(cli, n, 1, 1)) != 0)
		return rc;
	if ((rc = cli_find_list(cli, argv[0], &l)) != 0)
		return rc;
	if (cli->json) {
		cli_json_begin_object(cli);
		cli_json_kv_str(cli, "list", l.address);
		cli_json_key(cli, "members");
		cli_json_begin_array(cli);
	}
	score_settings_load(cli->db, l.id, &s);
	ctx.decay_after = s.decay_after;
	if (db_bounce_member_each(cli->db, l.id, ls_member, &ctx) < 0)
		return cli_db_error(cli, l.address);
	if (cli->json) {
		cli_json_end_array(cli);
		cli_json_key(cli, "policy_domains");
		cli_json_begin_array(cli);
	}
	if (db_bounce_policy_domains(cli->db, l.id, db_now() - POLICY_WINDOW, ls_domain, cli) < 0)
		return cli_db_error(cli, l.address);
	if (cli->json) {
		cli_json_end_array(cli);
		cli_json_end_object(cli);
	}
	return EX_OK;
}

static int
cmd_bounces_sweep(struct cli *cli, int argc, char **argv)
{
	const struct cli_opt opts[] = {{0}};
	struct db_list l = {0};
	int n, rc, acted = 0;

	if ((n = cli_parse(cli, argc, argv, opts)) < 0)
		return EX_USAGE;
	if ((rc = cli_nargs(cli, n, 0, 1)) != 0)
		return rc;
	if (n == 1) {
		if ((rc = cli_find_list(cli, argv[0], &l)) != 0)
			return rc;
	} else if ((rc = cli_open_db(cli)) != 0) {
		return rc;
	}
	if (db_begin(cli->db) < 0)
		return cli_db_error(cli, "bounces sweep");
	if (score_sweep(cli->db, &cli->conf, l.id, db_now(), &acted) < 0) {
		rc = cli_db_error(cli, "bounces sweep");
		db_rollback(cli->db);
		return rc;
	}
	if (db_commit(cli->db) < 0)
		return cli_db_error(cli, "bounces sweep");
	fprintf(cli->out, "%d members removed or probed\n", acted);
	return EX_OK;
}

static const struct cli_cmd bounces_cmds[] = {
    {"ls", cmd_bounces_ls, CLI_JSON, "LIST",
     "Members that have bounced or are disabled for bounces, the highest stored score "
     "first: address, status, score (an enabled member's decayed to now, as the next "
     "bounce would find it), last bounce (UTC), last reason. Then, as lines starting "
     "with `policy`, policy bounces per domain over the last 30 days."},
    {"sweep", cmd_bounces_sweep, 0, "[LIST]",
     "Run now the timed step for members disabled for bounces (all lists, or LIST): "
     "remove or probe those whose bounce_disabled_wait is over, as bounce_disabled_action "
     "says. fanmaild runs it whenever a bounce comes in for the list."},
    {0},
};

const struct cli_group cli_group_bounces = {
    "bounces", "Members' bounce scores and policy bounces per domain.", bounces_cmds};
