/*
 * test_lists_doc.c - docs/lists.md describes every per-list setting, with
 * the default the table in conf/list_settings.def gives it. A setting
 * added to the table without a row in the guide fails here.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/conf.h"

/* docs/lists.md, read once. */
static const char *
guide(void)
{
	static char doc[1 << 17];
	static int read;
	FILE *f;
	size_t n;

	if (read)
		return doc;
	f = fopen(FANMAIL_SOURCE_DIR "/docs/lists.md", "r");
	if (f == NULL)
		fail_msg("cannot open %s", FANMAIL_SOURCE_DIR "/docs/lists.md");
	n = fread(doc, 1, sizeof(doc) - 1, f);
	doc[n] = '\0';
	fclose(f);
	read = 1;
	return doc;
}

static void
test_every_list_setting_has_a_row_with_its_default(void **state)
{
	const char *doc = guide();
	for (size_t i = 0; i < conf_list_ndefs; i++) {
		const struct conf_def *d = &conf_list_defs[i];
		char row[256], def[128];
		const char *p;

		snprintf(row, sizeof(row), "\n| `%s` | ", d->name);
		if ((p = strstr(doc, row)) == NULL)
			fail_msg(
			    "docs/lists.md: expected a table row for list setting %s, found none",
			    d->name);
		p = strchr(p + strlen(row), '|');
		if (*d->def)
			snprintf(def, sizeof(def), "| `%s` |", d->def);
		else
			snprintf(def, sizeof(def), "| empty |");
		if (p == NULL || strncmp(p, def, strlen(def)) != 0)
			fail_msg("docs/lists.md: %s: expected default %s, got %.40s", d->name, def,
			         p ? p : "(nothing)");
	}
}

/* A choice added to the table is named in the guide's row for it. */
static void
test_every_choice_is_in_its_row(void **state)
{
	const char *doc = guide();

	(void)state;
	for (size_t i = 0; i < conf_list_ndefs; i++) {
		const struct conf_def *d = &conf_list_defs[i];
		char row[256], word[128], *line;
		const char *p, *end;

		if (d->type != CONF_ENUM)
			continue;
		snprintf(row, sizeof(row), "\n| `%s` | choice |", d->name);
		if ((p = strstr(doc, row)) == NULL)
			fail_msg("docs/lists.md: expected a row '%s' for ENUM %s, found none",
			         row + 1, d->name);
		end = strchr(p + 1, '\n');
		line = strndup(p + 1, end ? (size_t)(end - p - 1) : strlen(p + 1));
		assert_non_null(line);
		assert_non_null(d->choices);
		for (size_t c = 0; d->choices[c] != NULL; c++) {
			snprintf(word, sizeof(word), "`%s`", d->choices[c]);
			if (strstr(line, word) == NULL)
				fail_msg("docs/lists.md: row for %s: expected choice %s in '%s'",
				         d->name, word, line);
		}
		free(line);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_every_list_setting_has_a_row_with_its_default),
	    cmocka_unit_test(test_every_choice_is_in_its_row),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
