/*
 * fm_digest_build - a test tool (not installed) around mail/digest.c, so
 * that the e2e tests can hand the digests it builds to readers nobody here
 * wrote (Python's email package, formail).
 *
 *   fm_digest_build [-t] [-l LIST] [-r REQUEST] [-n NAME] [-v VOL] [-i ISSUE]
 *                   [-H HEADER] [-F FOOTER] [-f LISTFIELDS] [-T TIME] POST.eml...
 *       prints the MIME digest (or with -t the RFC 1153 text digest) of
 *       the posts, in the order given. LISTFIELDS is a file of List-*
 *       header lines.
 */
#include "mail/digest.h"
#include "mail/strbuf.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static char *
slurp_file(const char *path, size_t *len)
{
	struct strbuf b = {0};
	char buf[65536];
	size_t n;
	FILE *fp = fopen(path, "rb");

	if (fp == NULL) {
		perror(path);
		exit(2);
	}
	while ((n = fread(buf, 1, sizeof(buf), fp)) > 0)
		strbuf_add(&b, buf, n);
	fclose(fp);
	*len = b.len;
	return strbuf_done(&b);
}

int
main(int argc, char **argv)
{
	struct digest_info d = {.list_address = "dev@lists.example.org",
	                        .volume = 1,
	                        .issue = 1,
	                        .hostname = "lists.example.org",
	                        .now = 1800000000};
	struct digest_post *posts;
	char *out, *fields = NULL;
	size_t len, n;
	int opt, text = 0, rc;

	while ((opt = getopt(argc, argv, "tl:r:n:v:i:H:F:f:T:")) != -1) {
		switch (opt) {
		case 't':
			text = 1;
			break;
		case 'l':
			d.list_address = optarg;
			break;
		case 'r':
			d.request_address = optarg;
			break;
		case 'n':
			d.list_name = optarg;
			break;
		case 'v':
			d.volume = atoi(optarg);
			break;
		case 'i':
			d.issue = atoi(optarg);
			break;
		case 'H':
			d.header_text = optarg;
			break;
		case 'F':
			d.footer_text = optarg;
			break;
		case 'f':
			fields = slurp_file(optarg, &len);
			break;
		case 'T':
			d.now = atoll(optarg);
			break;
		default:
			fprintf(stderr, "usage: fm_digest_build [-t] [-l LIST] [-r REQUEST] "
			                "[-n NAME] [-v VOL] [-i ISSUE] [-H TEXT] [-F TEXT] "
			                "[-f FIELDS] [-T TIME] POST...\n");
			return 2;
		}
	}
	d.list_fields = fields;
	n = (size_t)(argc - optind);
	if ((posts = calloc(n ? n : 1, sizeof(*posts))) == NULL)
		return 1;
	for (size_t i = 0; i < n; i++)
		posts[i].msg = slurp_file(argv[optind + (int)i], &posts[i].len);
	rc = text ? digest_build_text(&d, posts, n, &out, &len)
	          : digest_build_mime(&d, posts, n, &out, &len);
	if (rc < 0) {
		fprintf(stderr, "fm_digest_build: cannot build the digest\n");
		return 1;
	}
	fwrite(out, 1, len, stdout);
	free(out);
	for (size_t i = 0; i < n; i++)
		free((char *)posts[i].msg);
	free(posts);
	free(fields);
	return 0;
}
