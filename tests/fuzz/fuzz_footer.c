/*
 * fuzz_footer.c - the rewrite of a post into the message that goes out
 * (lists/post.c post_rewrite): List-* fields, subject prefix, the footer on
 * every MIME shape, DMARC From rewriting and wrapping.
 *
 * Input: one octet choosing the settings (footer ASCII or not, DMARC
 * munge/wrap, Reply-To), then the posted message. Beyond "does not crash":
 * what goes out uses CRLF line ends only (no bare CR or LF reaches a
 * receiving server), has no line over 998 octets when the post has none,
 * is a message msg_parse and msg_walk read, and carries the list's List-Id
 * exactly once.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lists/post.h"
#include "mail/msg.h"

static size_t
longest_line(const char *s, size_t n)
{
	size_t cur = 0, max = 0;

	for (size_t i = 0; i < n; i++) {
		cur = s[i] == '\r' || s[i] == '\n' ? 0 : cur + 1;
		if (cur > max)
			max = cur;
	}
	return max;
}

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "footer invariant failed: %s\n", #cond);                   \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

static int
count_parts(const struct msg_part *p, void *arg)
{
	(void)p;
	return ++*(int *)arg > 5000;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct list_conf lc;
	struct post_cfg c;
	struct post_env env = {"mx.lists.example.org", "4F2A1C", 1700000000, 0};
	struct post_out out;
	struct msg m;
	char *raw;
	int sel, parts = 0;

	if (size < 1)
		return 0;
	sel = data[0];
	conf_list_init(&lc);
	conf_list_set(&lc, "footer",
	              (sel & 1) ? "-- \\nListe g\xc3\xa9r\xc3\xa9"
	                          "e par %n"
	                        : "--\\nTo leave %a, write to %n-leave@lists.example.org",
	              NULL, 0);
	if (sel & 2)
		conf_list_set(&lc, "subject_prefix", "", NULL, 0);
	if (sel & 4)
		conf_list_set(&lc, "reply_to", "list", NULL, 0);
	if (sel & 8)
		conf_list_set(&lc, "dmarc_mitigation", (sel & 16) ? "wrap" : "munge", NULL, 0);
	post_cfg_init(&c, "test", "lists.example.org", &lc);
	conf_list_free(&lc);
	env.mitigate = (sel & 8) != 0;
	raw = malloc(size - 1 ? size - 1 : 1);
	CHECK(raw != NULL);
	memcpy(raw, data + 1, size - 1);
	if (post_rewrite(raw, size - 1, &c, &env, &out) < 0) {
		free(raw);
		return 0;
	}
	CHECK(out.data != NULL);
	for (size_t i = 0; i < out.len; i++) {
		if (out.data[i] == '\n' && (i == 0 || out.data[i - 1] != '\r')) {
			fprintf(stderr, "bare LF at %zu of the rewritten message\n", i);
			abort();
		}
		if (out.data[i] == '\r' && (i + 1 == out.len || out.data[i + 1] != '\n')) {
			fprintf(stderr, "bare CR at %zu of the rewritten message\n", i);
			abort();
		}
	}
	/* No line fanmail writes is over 998 octets: when none of the
	 * post's is, none of what goes out is. */
	if (longest_line(raw, size - 1) <= 998 && longest_line(out.data, out.len) > 998) {
		fprintf(stderr, "a line of %zu octets in the rewritten message\n",
		        longest_line(out.data, out.len));
		abort();
	}
	CHECK(msg_parse(&m, out.data, out.len) == 0);
	CHECK(msg_header_count(&m, "List-Id") == 1);
	msg_free(&m);
	CHECK(msg_walk(out.data, out.len, count_parts, &parts) >= 0);
	post_out_free(&out);
	free(raw);
	return 0;
}
