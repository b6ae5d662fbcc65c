/*
 * test_bounce_corpus.c - the bounce parser over every file of the corpus in
 * tests/corpus/bounces (FANMAIL_CORPUS_DIR), held to the figures of
 * issue 7. The exact figures are printed; FANMAIL_CORPUS_VERBOSE=1 also
 * prints every miss.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "lists/bounce.h"

#define ROOT FANMAIL_CORPUS_DIR "/bounces"

struct row {
	char path[256];
	char rcpt[256];
	char status[32];
	char reason[32];
	int hard; /* -1 empty */
};

static struct row *rows;
static size_t nrows;
static int verbose;

static char *
slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *b;
	long n;

	if (f == NULL)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	b = malloc((size_t)n + 1);
	if (b == NULL || fread(b, 1, (size_t)n, f) != (size_t)n) {
		free(b);
		fclose(f);
		return NULL;
	}
	b[n] = '\0';
	fclose(f);
	*len = (size_t)n;
	return b;
}

static void
load_rows(void)
{
	size_t len, cap = 0;
	char *t = slurp(ROOT "/expected.tsv", &len), *line, *save = NULL;

	assert_non_null(t);
	line = strtok_r(t, "\n", &save); /* header */
	while ((line = strtok_r(NULL, "\n", &save)) != NULL) {
		char *f[5] = {0};
		int k = 0;
		char *p = line;
		f[k++] = p;
		while (*p && k < 5) {
			if (*p == '\t') {
				*p = '\0';
				f[k++] = p + 1;
			}
			p++;
		}
		if (nrows == cap) {
			cap = cap ? cap * 2 : 512;
			rows = realloc(rows, cap * sizeof(*rows));
			assert_non_null(rows);
		}
		memset(&rows[nrows], 0, sizeof(rows[0]));
		snprintf(rows[nrows].path, sizeof(rows[0].path), "%s", f[0]);
		snprintf(rows[nrows].rcpt, sizeof(rows[0].rcpt), "%s", f[1] ? f[1] : "");
		snprintf(rows[nrows].status, sizeof(rows[0].status), "%s", f[2] ? f[2] : "");
		snprintf(rows[nrows].reason, sizeof(rows[0].reason), "%s", f[3] ? f[3] : "");
		rows[nrows].hard = f[4] && *f[4] ? atoi(f[4]) : -1;
		nrows++;
	}
	free(t);
}

static int
parse_file(const char *rel, struct bounce_report *r)
{
	char path[512];
	size_t len;
	char *b;
	int rc;

	snprintf(path, sizeof(path), "%s/%s", ROOT, rel);
	b = slurp(path, &len);
	if (b == NULL)
		return -1;
	rc = bounce_parse(b, len, r);
	free(b);
	return rc;
}

static int
pseudo_code(const char *s)
{
	int c, sub, d;

	if (sscanf(s, "%d.%d.%d", &c, &sub, &d) != 3)
		return 1;
	return sub == 9 || (sub == 0 && d >= 900);
}

static int
has_failure(const struct bounce_report *r)
{
	for (size_t i = 0; i < r->n; i++)
		if (bounce_rcpt_is_failure(&r->rcpts[i]))
			return 1;
	return 0;
}

static void
dump(const char *what, const char *rel, const struct bounce_report *r)
{
	if (!verbose)
		return;
	printf("MISS %s %s [%s]", what, rel, r->detector);
	for (size_t i = 0; i < r->n; i++)
		printf(" {%s %s %s %s %s}", r->rcpts[i].addr, r->rcpts[i].action,
		       r->rcpts[i].status, bounce_class_name(r->rcpts[i].cls), r->rcpts[i].reason);
	printf("\n");
}

/* flufl: the expected recipients found, per file that names one. */
static void
test_flufl_recipients_found_in_95_percent(void **state)
{
	size_t files = 0, ok = 0;

	for (size_t i = 0; i < nrows;) {
		size_t j = i;
		struct bounce_report r;
		int all = 1;

		while (j < nrows && strcmp(rows[j].path, rows[i].path) == 0)
			j++;
		if (strncmp(rows[i].path, "flufl/", 6) != 0 || rows[i].rcpt[0] == '\0') {
			i = j;
			continue;
		}
		assert_int_equal(parse_file(rows[i].path, &r), 0);
		for (size_t k = i; k < j; k++) {
			int found = 0;
			for (size_t m = 0; m < r.n; m++)
				if (strcasecmp(r.rcpts[m].addr, rows[k].rcpt) == 0 ||
				    strcasecmp(r.rcpts[m].orig, rows[k].rcpt) == 0)
					found = 1;
			if (!found) {
				all = 0;
				if (verbose)
					printf("want %s\n", rows[k].rcpt);
			}
		}
		files++;
		ok += all;
		if (!all)
			dump("flufl", rows[i].path, &r);
		bounce_report_free(&r);
		i = j;
	}
	printf("flufl: expected recipients found in %zu of %zu files (%.1f%%)\n", ok, files,
	       100.0 * (double)ok / (double)files);
	assert_true(files > 0);
	assert_true(ok * 100 >= files * 95);
}

/* sisimai rows with a real status code, matched to results by order. */
static void
test_sisimai_status_and_hardness_match_90_percent(void **state)
{
	size_t total = 0, st_ok = 0, hard_ok = 0, nfiles = 0;

	for (size_t i = 0; i < nrows;) {
		size_t j = i;
		struct bounce_report r;

		while (j < nrows && strcmp(rows[j].path, rows[i].path) == 0)
			j++;
		if (strncmp(rows[i].path, "sisimai/", 8) != 0) {
			i = j;
			continue;
		}
		assert_int_equal(parse_file(rows[i].path + 0, &r), 0);
		nfiles++;
		for (size_t k = i; k < j; k++) {
			const struct bounce_rcpt *b = k - i < r.n ? &r.rcpts[k - i] : NULL;
			int s_ok, h_ok;
			if (rows[k].status[0] == '\0' || pseudo_code(rows[k].status))
				continue;
			total++;
			s_ok = b && strcmp(b->status, rows[k].status) == 0;
			h_ok = b && ((b->cls == BOUNCE_HARD) == (rows[k].hard == 1));
			st_ok += s_ok;
			hard_ok += h_ok;
			if (verbose && (!s_ok || !h_ok))
				printf("want %s %s hard=%d: got %s %s %s | %s\n", rows[k].status,
				       rows[k].reason, rows[k].hard, b ? b->status : "-",
				       b ? bounce_class_name(b->cls) : "-", b ? b->reason : "-",
				       b ? b->diag : "-");
			if (!s_ok || !h_ok)
				dump("sisimai", rows[k].path, &r);
		}
		bounce_report_free(&r);
		i = j;
	}
	printf("sisimai: %zu rows with a real status code; same x.y.z in %zu (%.1f%%), "
	       "hard-bounce column matched in %zu (%.1f%%)\n",
	       total, st_ok, 100.0 * (double)st_ok / (double)total, hard_ok,
	       100.0 * (double)hard_ok / (double)total);
	assert_true(total > 0);
	assert_true(st_ok * 100 >= total * 90);
	assert_true(hard_ok * 100 >= total * 90);
}

static int
is_non_bounce_name(const char *dir, const char *name)
{
	return strcmp(dir, "sisimai/maildir/not") == 0 || strncmp(name, "rfc3834-", 8) == 0 ||
	       strncmp(name, "arf-", 4) == 0;
}

/* maildir/not, rfc3834-*, arf-*: nobody reported as bounced. */
static void
test_non_bounces_report_no_bounced_recipient(void **state)
{
	static const char *const dirs[] = {"sisimai/maildir/bsd", "sisimai/maildir/dos",
	                                   "sisimai/maildir/mac", "sisimai/maildir/not"};
	size_t files = 0, clean = 0, arf = 0, autoreply = 0;

	for (size_t d = 0; d < 4; d++) {
		char dpath[512];
		DIR *dir;
		struct dirent *e;

		snprintf(dpath, sizeof(dpath), "%s/%s", ROOT, dirs[d]);
		assert_non_null(dir = opendir(dpath));
		while ((e = readdir(dir)) != NULL) {
			char rel[512];
			struct bounce_report r;
			if (e->d_name[0] == '.' || !is_non_bounce_name(dirs[d], e->d_name))
				continue;
			snprintf(rel, sizeof(rel), "%s/%s", dirs[d], e->d_name);
			assert_int_equal(parse_file(rel, &r), 0);
			files++;
			if (!has_failure(&r))
				clean++;
			else
				dump("non-bounce", rel, &r);
			arf += r.kind == BOUNCE_KIND_ARF;
			autoreply += r.kind == BOUNCE_KIND_AUTOREPLY;
			bounce_report_free(&r);
		}
		closedir(dir);
	}
	printf("non-bounces: %zu files (maildir/not, rfc3834-*, arf-*), %zu with no bounced "
	       "recipient; %zu read as ARF complaints, %zu as auto-replies\n",
	       files, clean, arf, autoreply);
	assert_true(files > 0);
	assert_int_equal(clean, files);
}

static char *
to_lf(char *b, size_t *len)
{
	size_t o = 0;

	for (size_t i = 0; i < *len; i++) {
		if (b[i] == '\r') {
			b[o++] = '\n';
			if (i + 1 < *len && b[i + 1] == '\n')
				i++;
		} else {
			b[o++] = b[i];
		}
	}
	b[o] = '\0';
	*len = o;
	return b;
}

static int
same_report(const struct bounce_report *a, const struct bounce_report *b)
{
	if (a->kind != b->kind || a->n != b->n)
		return 0;
	for (size_t i = 0; i < a->n; i++) {
		const struct bounce_rcpt *x = &a->rcpts[i], *y = &b->rcpts[i];
		if (strcmp(x->addr, y->addr) || strcmp(x->status, y->status) ||
		    strcmp(x->action, y->action) || x->cls != y->cls ||
		    strcmp(x->reason, y->reason) || strcmp(x->diag, y->diag))
			return 0;
	}
	return 1;
}

/* Every file of dos/ and mac/ parses; those with a bsd/ twin (same text
 * once line ends are LF) parse as the twin does, and those without one
 * parse as their own text with LF line ends does. */
static void
test_dos_and_mac_copies_parse_as_their_bsd_twins(void **state)
{
	static const char *const dirs[] = {"sisimai/maildir/dos", "sisimai/maildir/mac"};
	char bsd[512];
	struct {
		char name[256];
		char *text, *lf;
		size_t len, lflen;
	} *twins = NULL;
	size_t ntw = 0, cap = 0, pairs = 0, same = 0, files = 0, alone = 0, alone_same = 0;
	DIR *dir;
	struct dirent *e;

	snprintf(bsd, sizeof(bsd), "%s/sisimai/maildir/bsd", ROOT);
	assert_non_null(dir = opendir(bsd));
	while ((e = readdir(dir)) != NULL) {
		char p[1024];
		if (e->d_name[0] == '.')
			continue;
		if (ntw == cap) {
			cap = cap ? cap * 2 : 1024;
			twins = realloc(twins, cap * sizeof(*twins));
			assert_non_null(twins);
		}
		snprintf(twins[ntw].name, sizeof(twins[ntw].name), "%s", e->d_name);
		snprintf(p, sizeof(p), "%s/%s", bsd, e->d_name);
		assert_non_null(twins[ntw].text = slurp(p, &twins[ntw].len));
		twins[ntw].lf = malloc(twins[ntw].len + 1);
		assert_non_null(twins[ntw].lf);
		memcpy(twins[ntw].lf, twins[ntw].text, twins[ntw].len + 1);
		twins[ntw].lflen = twins[ntw].len;
		to_lf(twins[ntw].lf, &twins[ntw].lflen);
		ntw++;
	}
	closedir(dir);
	for (size_t d = 0; d < 2; d++) {
		char dpath[512];
		snprintf(dpath, sizeof(dpath), "%s/%s", ROOT, dirs[d]);
		assert_non_null(dir = opendir(dpath));
		while ((e = readdir(dir)) != NULL) {
			char p[1024], *raw, *lf;
			size_t len, lflen;
			if (e->d_name[0] == '.')
				continue;
			snprintf(p, sizeof(p), "%s/%s", dpath, e->d_name);
			assert_non_null(raw = slurp(p, &len));
			lf = malloc(len + 1);
			memcpy(lf, raw, len + 1);
			lflen = len;
			to_lf(lf, &lflen);
			files++;
			size_t t;
			for (t = 0; t < ntw; t++) {
				struct bounce_report a, b;
				if (twins[t].lflen != lflen || memcmp(twins[t].lf, lf, lflen) != 0)
					continue;
				assert_int_equal(bounce_parse(raw, len, &a), 0);
				assert_int_equal(bounce_parse(twins[t].text, twins[t].len, &b), 0);
				pairs++;
				if (same_report(&a, &b))
					same++;
				else if (verbose)
					printf("MISS twin %s/%s vs bsd/%s\n", dirs[d], e->d_name,
					       twins[t].name);
				bounce_report_free(&a);
				bounce_report_free(&b);
				break;
			}
			if (t == ntw) {
				struct bounce_report a, b;
				assert_int_equal(bounce_parse(raw, len, &a), 0);
				assert_int_equal(bounce_parse(lf, lflen, &b), 0);
				alone++;
				if (same_report(&a, &b))
					alone_same++;
				else if (verbose)
					printf("MISS no twin %s/%s vs its LF text\n", dirs[d],
					       e->d_name);
				bounce_report_free(&a);
				bounce_report_free(&b);
			}
			free(lf);
			free(raw);
		}
		closedir(dir);
	}
	for (size_t t = 0; t < ntw; t++) {
		free(twins[t].text);
		free(twins[t].lf);
	}
	free(twins);
	printf("dos/mac: %zu files parsed; %zu with a bsd twin, %zu parse the same; %zu "
	       "without one, %zu parse as their LF text\n",
	       files, pairs, same, alone, alone_same);
	assert_int_equal(files, 160);
	assert_int_equal(pairs, 132);
	assert_int_equal(same, pairs);
	assert_int_equal(alone, files - pairs);
	assert_int_equal(alone_same, alone);
}

/* Every other file parses without error; the mbox files split. */
static void
test_every_file_parses_and_mboxes_split(void **state)
{
	static const char *const dirs[] = {
	    "sisimai/maildir/err", "sisimai/to-be-debugged-because/something-is-wrong", "flufl"};
	size_t files = 0, bounced = 0, msgs[2] = {0, 0}, mbox_bounced = 0;

	for (size_t d = 0; d < 3; d++) {
		char dpath[512];
		DIR *dir;
		struct dirent *e;

		snprintf(dpath, sizeof(dpath), "%s/%s", ROOT, dirs[d]);
		assert_non_null(dir = opendir(dpath));
		while ((e = readdir(dir)) != NULL) {
			char rel[512];
			struct bounce_report r;
			if (e->d_name[0] == '.' || strcmp(e->d_name, "LICENSE") == 0)
				continue;
			snprintf(rel, sizeof(rel), "%s/%s", dirs[d], e->d_name);
			assert_int_equal(parse_file(rel, &r), 0);
			files++;
			bounced += has_failure(&r);
			bounce_report_free(&r);
		}
		closedir(dir);
	}
	for (int m = 0; m < 2; m++) {
		char path[512], *b;
		size_t len, off = 0, mlen;
		const char *msg;

		snprintf(path, sizeof(path), "%s/sisimai/mailbox/mbox-%d", ROOT, m);
		assert_non_null(b = slurp(path, &len));
		while (bounce_mbox_next(b, len, &off, &msg, &mlen)) {
			struct bounce_report r;
			assert_int_equal(bounce_parse(msg, mlen, &r), 0);
			msgs[m]++;
			mbox_bounced += has_failure(&r);
			bounce_report_free(&r);
		}
		free(b);
	}
	printf("other files: %zu parsed (maildir/err, to-be-debugged, flufl), %zu with a "
	       "bounced recipient; mbox-0 split into %zu messages (maildir/err has 37), mbox-1 "
	       "into %zu, %zu of "
	       "them with a bounced recipient\n",
	       files, bounced, msgs[0], msgs[1], mbox_bounced);
	assert_int_equal(msgs[0], 37);
	assert_int_equal(msgs[1], 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_flufl_recipients_found_in_95_percent),
	    cmocka_unit_test(test_sisimai_status_and_hardness_match_90_percent),
	    cmocka_unit_test(test_non_bounces_report_no_bounced_recipient),
	    cmocka_unit_test(test_dos_and_mac_copies_parse_as_their_bsd_twins),
	    cmocka_unit_test(test_every_file_parses_and_mboxes_split),
	};
	verbose = getenv("FANMAIL_CORPUS_VERBOSE") != NULL;
	load_rows();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
