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

static void
test_every_list_setting_has_a_row_with_its_default(void **state)
{
	FILE *f = fopen(FANMAIL_SOURCE_DIR "/docs/lists.md", "r");
	static char doc[1 << 17];
	size_t n;

	assert_non_null(f);
	n = fread(doc, 1, sizeof(doc) - 1, f);
	doc[n] = '\0';
	fclose(f);
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

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_every_list_setting_has_a_row_with_its_default),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
