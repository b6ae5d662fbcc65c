/*
 * test_post_golden.c - golden files for the posting path: every directory
 * tests/golden/NAME/ holds
 *   input.eml      the message as posted (LF line ends, for readability)
 *   settings       the list's settings, `key = value` per line, plus
 *                  `list = name@domain`, `http_base = URL` (the HTTP face's
 *                  base URL; none when absent) and
 *                  `dmarc_policy = none|quarantine|reject|norecord|fail`
 *                  (what the DNS lookup of the From domain answered)
 *   expected.eml   what goes out (LF line ends here; the real output is
 *                  checked to use CRLF only), or `dropped: loop`. The
 *                  footer markers of a personal post (lists/personal.h)
 *                  are shown as {{m/q}} (variable, context).
 * One cmocka test per directory. FANMAIL_GOLDEN_UPDATE=1 rewrites the
 * expected files from the current output (review the diff!).
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

#include "lists/post.h"

#define GOLDEN_DIR FANMAIL_SOURCE_DIR "/tests/golden"

static char *
slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	long n;

	if (f == NULL)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = malloc((size_t)n + 1);
	if (fread(buf, 1, (size_t)n, f) != (size_t)n)
		n = 0;
	buf[n] = '\0';
	fclose(f);
	*len = (size_t)n;
	return buf;
}

static char *
trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' || e[-1] == '\r'))
		*--e = '\0';
	return s;
}

/* Output with CRLF made LF and markers shown; fails on a bare CR or LF,
 * or a NUL outside a marker. */
static char *
to_lf(const char *s, size_t len, const char *name)
{
	char *out = malloc(len * 3 + 1), *o = out;

	for (size_t i = 0; i < len; i++) {
		if (s[i] == '\0') {
			if (i + 3 >= len || s[i + 3] != '\0')
				fail_msg("%s: a NUL that starts no marker at offset %zu", name, i);
			o += sprintf(o, "{{%c/%c}}", s[i + 1], s[i + 2]);
			i += 3;
			continue;
		}
		if (s[i] == '\r') {
			if (i + 1 >= len || s[i + 1] != '\n')
				fail_msg("%s: bare CR at offset %zu of the output", name, i);
			continue;
		}
		if (s[i] == '\n' && (i == 0 || s[i - 1] != '\r'))
			fail_msg("%s: bare LF at offset %zu of the output", name, i);
		*o++ = s[i];
	}
	*o = '\0';
	return out;
}

static void
run_case(void **state)
{
	const char *name = *state;
	char path[1024], line[8192], *input, *expected, *got = NULL, *gotlf;
	char policy[32] = "norecord", base[512] = "", local[65] = "test",
	     domain[256] = "lists.example.org";
	size_t inlen, explen;
	struct list_conf lc;
	struct post_cfg cfg;
	struct post_env env = {"lists.example.org", "0000000000000001", 1700000000, 0};
	struct post_out out;
	struct msg m;
	FILE *f;
	int applies;

	snprintf(path, sizeof(path), "%s/%s/settings", GOLDEN_DIR, name);
	f = fopen(path, "r");
	if (f == NULL)
		fail_msg("%s: no settings file", name);
	conf_list_init(&lc);
	while (fgets(line, sizeof(line), f) != NULL) {
		char *eq = strchr(line, '='), *k, *v, err[256];

		if (line[0] == '#' || eq == NULL)
			continue;
		*eq = '\0';
		k = trim(line);
		v = trim(eq + 1);
		if (strcmp(k, "http_base") == 0) {
			snprintf(base, sizeof(base), "%s", v);
		} else if (strcmp(k, "dmarc_policy") == 0) {
			snprintf(policy, sizeof(policy), "%s", v);
		} else if (strcmp(k, "list") == 0) {
			char *at = strchr(v, '@');

			*at = '\0';
			snprintf(local, sizeof(local), "%s", v);
			snprintf(domain, sizeof(domain), "%s", at + 1);
		} else if (conf_list_set(&lc, k, v, err, sizeof(err)) < 0) {
			fail_msg("%s: bad setting %s = %s: %s", name, k, v, err);
		}
	}
	/* After the list's address is known: settings expand %n with it. */
	post_cfg_init(&cfg, local, domain, &lc);
	snprintf(cfg.http_base, sizeof(cfg.http_base), "%s", base);
	conf_list_free(&lc);
	fclose(f);

	snprintf(path, sizeof(path), "%s/%s/input.eml", GOLDEN_DIR, name);
	input = slurp(path, &inlen);
	assert_non_null(input);
	assert_int_equal(msg_parse(&m, input, inlen), 0);
	if (post_is_loop(&m, &cfg)) {
		got = strdup("dropped: loop\n");
		gotlf = strdup(got);
	} else {
		applies = post_dmarc_applies(&cfg, strcmp(policy, "fail") == 0       ? NULL
		                                   : strcmp(policy, "norecord") == 0 ? ""
		                                                                     : policy);
		env.mitigate = applies;
		assert_int_equal(post_rewrite(input, inlen, &cfg, &env, &out), 0);
		gotlf = to_lf(out.data, out.len, name);
		post_out_free(&out);
	}
	msg_free(&m);
	snprintf(path, sizeof(path), "%s/%s/expected.eml", GOLDEN_DIR, name);
	if (getenv("FANMAIL_GOLDEN_UPDATE") != NULL) {
		f = fopen(path, "wb");
		fputs(gotlf, f);
		fclose(f);
	}
	expected = slurp(path, &explen);
	if (expected == NULL)
		fail_msg("%s: no expected.eml", name);
	if (strcmp(expected, gotlf) != 0) {
		fail_msg("%s: output differs from expected.eml\n--- expected\n%s--- got\n%s---",
		         name, expected, gotlf);
	}
	free(expected);
	free(gotlf);
	free(got);
	free(input);
}

static int
by_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int
main(void)
{
	struct CMUnitTest tests[256];
	char *names[256];
	size_t n = 0;
	DIR *d = opendir(GOLDEN_DIR);
	struct dirent *e;

	if (d == NULL) {
		fprintf(stderr, "cannot open %s\n", GOLDEN_DIR);
		return 1;
	}
	while ((e = readdir(d)) != NULL && n < 256)
		if (e->d_name[0] != '.')
			names[n++] = strdup(e->d_name);
	closedir(d);
	qsort(names, n, sizeof(names[0]), by_name);
	for (size_t i = 0; i < n; i++) {
		memset(&tests[i], 0, sizeof(tests[i]));
		tests[i].name = names[i];
		tests[i].test_func = run_case;
		tests[i].initial_state = names[i];
	}
	{
		int rc = _cmocka_run_group_tests("golden", tests, n, NULL, NULL);

		for (size_t i = 0; i < n; i++)
			free(names[i]);
		return rc;
	}
}
