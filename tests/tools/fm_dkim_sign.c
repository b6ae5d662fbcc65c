/*
 * fm_dkim_sign - a test tool (not installed) around mail/dkim.c, so that
 * the e2e tests can hand what it signs to verifiers nobody here wrote.
 *
 *   fm_dkim_sign [-e EXTRA] [-t TIME] KEY.pem DOMAIN SELECTOR [KEY DOMAIN SELECTOR]...
 *       reads a message (CRLF lines) on stdin and prints the signed copy:
 *       the signatures, the extra header lines of file EXTRA, the message;
 *   fm_dkim_sign -b            prints the body hash (bh=) of the message;
 *   fm_dkim_sign -n COUNT KEY DOMAIN SELECTOR
 *       signs the message COUNT times with one signer (precomputed body
 *       hash, as delivery does) and prints "signatures/s: N".
 */
#include "mail/dkim.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static char *
slurp(FILE *fp, size_t *len)
{
	struct strbuf b = {0};
	char buf[65536];
	size_t n;

	while ((n = fread(buf, 1, sizeof(buf), fp)) > 0)
		strbuf_add(&b, buf, n);
	*len = b.len;
	return strbuf_done(&b);
}

static char *
slurp_file(const char *path, size_t *len)
{
	FILE *fp = fopen(path, "rb");
	char *s;

	if (fp == NULL) {
		perror(path);
		exit(2);
	}
	s = slurp(fp, len);
	fclose(fp);
	return s;
}

int
main(int argc, char **argv)
{
	const char *extra_path = NULL;
	char *extra = NULL, *msg, err[DKIM_ERR_MAX], bh[DKIM_BH_SIZE];
	struct dkim_key *keys[8];
	struct dkim_signer *s;
	struct strbuf out = {0};
	size_t len, nkeys = 0;
	long count = 0;
	time_t now = time(NULL);
	int opt, bh_only = 0;

	while ((opt = getopt(argc, argv, "be:n:t:")) != -1) {
		switch (opt) {
		case 'b':
			bh_only = 1;
			break;
		case 'e':
			extra_path = optarg;
			break;
		case 'n':
			count = atol(optarg);
			break;
		case 't':
			now = (time_t)atoll(optarg);
			break;
		default:
			return 2;
		}
	}
	msg = slurp(stdin, &len);
	if (bh_only) {
		int rc = dkim_body_hash(msg, len, bh);
		if (rc == 0)
			printf("%s\n", bh);
		free(msg);
		return rc < 0;
	}
	if ((argc - optind) % 3 != 0 || argc == optind || (argc - optind) / 3 > 8) {
		fprintf(stderr, "usage: fm_dkim_sign [-e EXTRA] [-t TIME] [-n COUNT] KEY DOMAIN "
		                "SELECTOR...\n");
		return 2;
	}
	for (int i = optind; i < argc; i += 3) {
		size_t pl;
		char *pem = slurp_file(argv[i], &pl);
		if (dkim_key_load(pem, pl, argv[i + 1], argv[i + 2], &keys[nkeys], err) < 0) {
			fprintf(stderr, "fm_dkim_sign: %s: %s\n", argv[i], err);
			return 1;
		}
		nkeys++;
		free(pem);
	}
	if (extra_path != NULL) {
		size_t el;
		extra = slurp_file(extra_path, &el);
	}
	if ((s = dkim_signer_new()) == NULL)
		return 1;
	if (count > 0) {
		struct timespec t0, t1;
		double secs;
		if (dkim_body_hash(msg, len, bh) < 0)
			return 1;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		for (long i = 0; i < count; i++) {
			out.len = 0;
			if (dkim_sign(s, (const struct dkim_key *const *)keys, nkeys, extra, msg,
			              len, bh, now, &out, err) < 0) {
				fprintf(stderr, "fm_dkim_sign: %s\n", err);
				return 1;
			}
		}
		clock_gettime(CLOCK_MONOTONIC, &t1);
		secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
		printf("signatures/s: %.1f\n", (double)count * (double)nkeys / secs);
	} else if (dkim_sign(s, (const struct dkim_key *const *)keys, nkeys, extra, msg, len, NULL,
	                     now, &out, err) < 0) {
		fprintf(stderr, "fm_dkim_sign: %s\n", err);
		return 1;
	} else {
		fwrite(out.p, 1, out.len, stdout);
		if (extra != NULL)
			fputs(extra, stdout);
		fwrite(msg, 1, len, stdout);
	}
	strbuf_free(&out);
	dkim_signer_free(s);
	for (size_t i = 0; i < nkeys; i++)
		dkim_key_free(keys[i]);
	free(extra);
	free(msg);
	return 0;
}
