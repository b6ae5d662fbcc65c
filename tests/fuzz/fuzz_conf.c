/*
 * fuzz_conf.c - the fanmail.conf parser (conf_parse) and the per-list
 * setting checker (conf_list_check).
 *
 * Beyond "does not crash": a file that parses must print (conf_print) as a
 * file that parses again to the same effective configuration, since that is
 * what `fanmail config` promises an admin.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/conf.h"

static char *
print_conf(const struct conf *c, size_t *len)
{
	char *text = NULL;
	FILE *f = open_memstream(&text, len);

	if (f == NULL)
		abort();
	conf_print(c, f, 0);
	fclose(f);
	return text;
}

static void
check_list_setting(const uint8_t *data, size_t size)
{
	char value[512], canon[512], err[512];
	const struct conf_def *d;
	size_t n;

	if (size < 1 || conf_list_ndefs == 0)
		return;
	d = &conf_list_defs[data[0] % conf_list_ndefs];
	n = size - 1 < sizeof(value) - 1 ? size - 1 : sizeof(value) - 1;
	memcpy(value, data + 1, n);
	value[n] = '\0';
	if (conf_list_def(d->name) != d)
		abort();
	conf_list_check(d->name, value, canon, sizeof(canon), err, sizeof(err));
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct conf c, again;
	char err[512];
	char *text, *text2;
	size_t len, len2;

	check_list_setting(data, size);

	conf_init(&c);
	if (conf_parse(&c, "fuzz.conf", (const char *)data, size, err, sizeof(err)) < 0) {
		if (memchr(err, '\0', sizeof(err)) == NULL)
			abort();
		conf_free(&c);
		return 0;
	}
	text = print_conf(&c, &len);
	conf_init(&again);
	if (conf_parse(&again, "printed.conf", text, len, err, sizeof(err)) < 0) {
		fprintf(stderr, "printed configuration does not parse: %s\n", err);
		abort();
	}
	text2 = print_conf(&again, &len2);
	if (len != len2 || memcmp(text, text2, len) != 0) {
		fprintf(stderr, "printed configuration changes when parsed again\n");
		abort();
	}
	free(text);
	free(text2);
	conf_free(&again);
	conf_free(&c);
	return 0;
}
