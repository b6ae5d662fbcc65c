/*
 * conf.h - the settings of both programs, declared once in settings.def
 * (server settings) and list_settings.def (per-list settings).
 *
 * Entry points: conf_init() fills defaults, conf_load() reads a main.cf-style
 * file (`key = value`, `#` comments, continuation lines that start with
 * white space), conf_set() sets one value, conf_print() writes the effective
 * configuration. conf_list_check() validates a per-list KEY=VALUE pair.
 * The struct owns its strings; conf_free() releases them.
 */
#ifndef FANMAIL_CONF_H
#define FANMAIL_CONF_H

#include <stddef.h>
#include <stdio.h>

enum conf_type {
	CONF_STR,
	CONF_INT,
	CONF_SIZE,
	CONF_TIME,
	CONF_BOOL,
	CONF_LIST,
	CONF_ENUM,
};

#define CONF_CTYPE_STR char *
#define CONF_CTYPE_LIST char *
#define CONF_CTYPE_INT long long
#define CONF_CTYPE_SIZE long long
#define CONF_CTYPE_TIME long long
#define CONF_CTYPE_BOOL int

struct conf {
#define SETTING(name, type, def, doc) CONF_CTYPE_##type name;
#include "conf/settings.def"
#undef SETTING
	char *path; /* file it was loaded from, or NULL */
};

struct conf_def {
	const char *name;
	enum conf_type type;
	const char *def;
	const char *doc;
	size_t offset; /* into struct conf; unused for list settings */
};

extern const struct conf_def conf_defs[];
extern const size_t conf_ndefs;
extern const struct conf_def conf_list_defs[];
extern const size_t conf_list_ndefs;

/* Where the configuration is read from: path if given, else
 * $FANMAIL_CONFIG, else FANMAIL_SYSCONFDIR/fanmail/fanmail.conf. */
const char *conf_default_path(const char *path);

void conf_init(struct conf *c);
void conf_free(struct conf *c);

/* Reads FILE into c. On error returns -1 and writes "file:line: setting:
 * what is wrong" into err; c then holds defaults plus whatever came before
 * the error and must not be used to start anything. When must_exist is 0
 * a missing file is not an error (c keeps its defaults). */
int conf_load(struct conf *c, const char *file, int must_exist, char *err, size_t errlen);

/* Parses text (the whole file) as conf_load() would; name is used in errors. */
int conf_parse(struct conf *c, const char *name, const char *text, size_t len, char *err,
               size_t errlen);

int conf_set(struct conf *c, const char *name, const char *value, char *err, size_t errlen);

/* The effective value of a setting as text, in the form the file takes.
 * Returns the number of bytes written (as snprintf) or -1 for an unknown
 * name. */
int conf_get_text(const struct conf *c, const char *name, char *buf, size_t len);
int conf_is_default(const struct conf *c, const struct conf_def *d);

/* Writes `name = value` lines; only those that differ from the default when
 * changed_only. */
void conf_print(const struct conf *c, FILE *out, int changed_only);

/* The settings table as man(7) source for fanmail.conf(5). */
void conf_print_man(FILE *out);

/* Per-list settings: finds the definition of name, or NULL. */
const struct conf_def *conf_list_def(const char *name);
/* Checks value for list setting name; on success writes the canonical form
 * (sizes and times in plain numbers, booleans as yes/no) to canon. */
int conf_list_check(const char *name, const char *value, char *canon, size_t canonlen, char *err,
                    size_t errlen);

/* Value parsers shared with callers that read per-list settings. */
int conf_parse_int(const char *s, long long *out);
int conf_parse_size(const char *s, long long *out);
int conf_parse_time(const char *s, long long *out);
int conf_parse_bool(const char *s, int *out);

/* Iterates the items of a LIST value: returns a pointer to the next item
 * and its length in *len, or NULL at the end. *cursor starts at the value. */
const char *conf_list_next(const char **cursor, size_t *len);

#endif
