/*
 * conf.h - the settings of both programs, declared once in settings.def
 * (server settings) and list_settings.def (per-list settings).
 *
 * Entry points: conf_init() fills defaults, conf_load() reads a main.cf-style
 * file (`key = value`, `#` comments, continuation lines that start with
 * white space), conf_set() sets one value, conf_print() writes the effective
 * configuration. conf_list_check() validates a per-list KEY=VALUE pair;
 * struct list_conf is a list's settings typed, enums included, generated
 * from list_settings.def the way struct conf is from settings.def.
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

/* ---- per-list settings (list_settings.def) ---- */

/* The choices column, (a, b, c), applied one by one: CONF_EACH(m, s, a, b)
 * is m(s, a) m(s, b). Up to 8 choices. */
#define CONF_UNPAREN(...) __VA_ARGS__
#define CONF_NARGS_(_1, _2, _3, _4, _5, _6, _7, _8, n, ...) n
#define CONF_NARGS(...) CONF_NARGS_(__VA_ARGS__, 8, 7, 6, 5, 4, 3, 2, 1, 0)
#define CONF_CAT_(a, b) a##b
#define CONF_CAT(a, b) CONF_CAT_(a, b)
#define CONF_EACH_1(m, s, a) m(s, a)
#define CONF_EACH_2(m, s, a, ...) m(s, a) CONF_EACH_1(m, s, __VA_ARGS__)
#define CONF_EACH_3(m, s, a, ...) m(s, a) CONF_EACH_2(m, s, __VA_ARGS__)
#define CONF_EACH_4(m, s, a, ...) m(s, a) CONF_EACH_3(m, s, __VA_ARGS__)
#define CONF_EACH_5(m, s, a, ...) m(s, a) CONF_EACH_4(m, s, __VA_ARGS__)
#define CONF_EACH_6(m, s, a, ...) m(s, a) CONF_EACH_5(m, s, __VA_ARGS__)
#define CONF_EACH_7(m, s, a, ...) m(s, a) CONF_EACH_6(m, s, __VA_ARGS__)
#define CONF_EACH_8(m, s, a, ...) m(s, a) CONF_EACH_7(m, s, __VA_ARGS__)
#define CONF_EACH(m, s, ...) CONF_CAT(CONF_EACH_, CONF_NARGS(__VA_ARGS__))(m, s, __VA_ARGS__)

/* enum list_NAME { list_NAME_CHOICE, ... } for every ENUM list setting. */
#define CONF_LIST_ENUMERATOR(n, choice) list_##n##_##choice,
#define CONF_LIST_ENUM_ENUM(n, choices)                                                            \
	enum list_##n{CONF_EACH(CONF_LIST_ENUMERATOR, n, CONF_UNPAREN choices)};
#define CONF_LIST_ENUM_STR(n, choices)
#define CONF_LIST_ENUM_LIST(n, choices)
#define CONF_LIST_ENUM_INT(n, choices)
#define CONF_LIST_ENUM_SIZE(n, choices)
#define CONF_LIST_ENUM_TIME(n, choices)
#define CONF_LIST_ENUM_BOOL(n, choices)
#define LIST_SETTING(n, type, def, choices, doc) CONF_LIST_ENUM_##type(n, choices)
#include "conf/list_settings.def"
#undef LIST_SETTING

/* One list's settings, typed: strings (owned, freed by conf_list_free()),
 * numbers in their unit (seconds, bytes), yes/no as 0/1, choices as their
 * enum. Filled by conf_list_init() and conf_list_set(); lists/ loads a
 * stored list's with list_conf_load(). */
#define CONF_LIST_FIELD_STR(n) char *n;
#define CONF_LIST_FIELD_LIST(n) char *n;
#define CONF_LIST_FIELD_INT(n) long long n;
#define CONF_LIST_FIELD_SIZE(n) long long n;
#define CONF_LIST_FIELD_TIME(n) long long n;
#define CONF_LIST_FIELD_BOOL(n) int n;
#define CONF_LIST_FIELD_ENUM(n) enum list_##n n;
struct list_conf {
#define LIST_SETTING(n, type, def, choices, doc) CONF_LIST_FIELD_##type(n)
#include "conf/list_settings.def"
#undef LIST_SETTING
};

struct conf_def {
	const char *name;
	enum conf_type type;
	const char *def;
	const char *doc;
	size_t offset;              /* into struct conf, or struct list_conf */
	const char *const *choices; /* an ENUM's, NULL-terminated; else NULL */
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

/* Per-list settings: every setting's default (from the table). */
void conf_list_init(struct list_conf *lc);
/* Sets one per-list setting from its text (checked as conf_list_check()
 * does). Returns 0, or -1 with err saying why (unknown name, bad value);
 * lc then keeps the value it had. */
int conf_list_set(struct list_conf *lc, const char *name, const char *value, char *err,
                  size_t errlen);
void conf_list_free(struct list_conf *lc);
/* The text of choice value of ENUM list setting name; "" when there is no
 * such setting or choice. */
const char *conf_list_choice(const char *name, int value);

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

/* The URL links in mail start with, without a trailing '/': http_base_url,
 * or http(s):// and http_listen when that is empty (the host name for a
 * wildcard address); "" when the HTTP face is off and no base is set. */
void conf_http_base_url(const struct conf *c, char *buf, size_t len);

#endif
