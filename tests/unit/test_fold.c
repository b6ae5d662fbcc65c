/*
 * test_fold.c - folding the header fields fanmail writes (mail/fold.c):
 * no line over 998 octets, 78 where white space allows, and the field
 * reads back (unfolded and, for text, RFC 2047-decoded) as it was.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mail/fold.h"
#include "mail/msg.h"

static char *
repeat(const char *unit, size_t n, const char *sep)
{
	size_t ul = strlen(unit), sl = strlen(sep);
	char *s = malloc(n * (ul + sl) + 1), *p = s;

	for (size_t i = 0; i < n; i++) {
		memcpy(p, unit, ul);
		p += ul;
		if (i + 1 < n) {
			memcpy(p, sep, sl);
			p += sl;
		}
	}
	*p = '\0';
	return s;
}

/* Checks the folded text f of field: CRLF line ends only, every line at
 * most `soft` octets (or 998), a fold only before white space, and the
 * value read back equal to the field's. */
static void
check(const char *what, const char *field, const char *f, size_t soft, enum fold_kind kind)
{
	size_t n = strlen(f), start = 0;
	char *unf, *dec, *want;

	if (n < 2 || strcmp(f + n - 2, "\r\n") != 0)
		fail_msg("%s: expected the field to end in CRLF", what);
	for (size_t i = 0; i < n; i++) {
		if (f[i] == '\n' && (i == 0 || f[i - 1] != '\r'))
			fail_msg("%s: bare LF at %zu", what, i);
		if (f[i] != '\r')
			continue;
		if (f[i + 1] != '\n')
			fail_msg("%s: bare CR at %zu", what, i);
		if (i - start > soft)
			fail_msg("%s: expected lines of at most %zu octets, one has %zu", what,
			         soft, i - start);
		if (i + 2 < n && f[i + 2] != ' ' && f[i + 2] != '\t')
			fail_msg("%s: a fold not followed by white space at %zu", what, i);
		start = i + 2;
	}
	unf = msg_unfold(f, n);
	want = msg_unfold(field, strlen(field));
	if (kind == FOLD_TEXT) {
		dec = msg_decode_words(unf, strlen(unf), NULL);
		free(unf);
		unf = dec;
	} else if (kind == FOLD_URLS) {
		/* RFC 2369: white space inside the brackets is ignored. */
		char *o = unf;
		for (char *p = unf; *p; p++)
			if (*p != ' ' || strchr(p, '<') != NULL)
				*o++ = *p;
		*o = '\0';
	}
	if (strcmp(unf, want) != 0)
		fail_msg("%s: expected it to read back as\n%.200s...\ngot\n%.200s...", what, want,
		         unf);
	free(unf);
	free(want);
}

static void
test_fields_fold_and_read_back(void **state)
{
	char *words = repeat("word", 300, " ");
	char *longword = repeat("x", 3000, "");
	char *tworun = repeat("y", 1200, "");
	char *spaces = repeat(" ", 1500, "");
	char buf[8192];
	const struct {
		const char *what;
		const char *field;
		enum fold_kind kind;
		size_t soft; /* the longest line allowed */
	} rows[] = {
	    {"short field stays one line", "Subject: [x] hello", FOLD_TEXT, 78},
	    {"300 words fold at 78", NULL, FOLD_TEXT, 78},
	    {"an 80-line folded subject folds again", NULL, FOLD_TEXT, 78},
	    {"a 3000-octet word becomes encoded-words", NULL, FOLD_TEXT, 78},
	    {"two long words after one another", NULL, FOLD_TEXT, 78},
	    {"a 1500-space run is folded inside", NULL, FOLD_TEXT, 998},
	    {"a long URL in List-Archive is split", NULL, FOLD_URLS, 998},
	    {"a long quoted name in From folds at its spaces", NULL, FOLD_STRUCTURED, 78},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		const char *field = rows[i].field;
		char *f, *folded80;

		switch (i) {
		case 1:
			snprintf(buf, sizeof(buf), "Subject: %s", words);
			field = buf;
			break;
		case 2:
			folded80 = repeat("abcdefghijklmno pqrs", 80, "\r\n ");
			snprintf(buf, sizeof(buf), "Subject: [list] %s", folded80);
			free(folded80);
			field = buf;
			break;
		case 3:
			snprintf(buf, sizeof(buf), "Subject: [list] %s end", longword);
			field = buf;
			break;
		case 4:
			snprintf(buf, sizeof(buf), "Subject: %s %s", tworun, tworun);
			field = buf;
			break;
		case 5:
			snprintf(buf, sizeof(buf), "Subject: a%sb", spaces);
			field = buf;
			break;
		case 6:
			snprintf(buf, sizeof(buf), "List-Archive: <https://a.example/%s>",
			         longword);
			field = buf;
			break;
		case 7:
			snprintf(buf, sizeof(buf), "From: \"%s via list\" <list@example.org>",
			         words);
			field = buf;
			break;
		}
		f = fold_field(field, strlen(field), rows[i].kind);
		assert_non_null(f);
		check(rows[i].what, field, f, rows[i].soft, rows[i].kind);
		free(f);
	}
	free(words);
	free(longword);
	free(tworun);
	free(spaces);
}

static void
test_no_fold_right_after_the_name(void **state)
{
	char *f = fold_field("Subject: a", 10, FOLD_TEXT);

	(void)state;
	assert_string_equal(f, "Subject: a\r\n");
	free(f);
	{
		const char *id =
		    "List-Id: \"A very long list name that goes on and on and on and on\" "
		    "<x.example.org>";

		f = fold_field(id, strlen(id), FOLD_STRUCTURED);
	}
	assert_non_null(f);
	assert_true(strncmp(f, "List-Id: \"A", 11) == 0); /* the name stays on line 1 */
	assert_non_null(strstr(f, "\r\n "));              /* 87 octets: folded */
	free(f);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_fields_fold_and_read_back),
	    cmocka_unit_test(test_no_fold_right_after_the_name),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
