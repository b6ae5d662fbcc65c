/*
 * list_conf.h - a list's settings as the list logic reads them: the one
 * loader of per-list settings.
 *
 * struct list_conf and its enums are generated from conf/list_settings.def
 * (conf/conf.h); list_conf_load() fills one from the table's defaults and
 * the values stored for the list. Posting, commands, moderation and bounce
 * scores all read settings through it; nothing else parses stored setting
 * text.
 */
#ifndef FANMAIL_LIST_CONF_H
#define FANMAIL_LIST_CONF_H

#include <stdint.h>

#include "conf/conf.h"

struct db;

/* Loads list list_id's settings into lc. A stored value this build cannot
 * read keeps the default: `fanmail list set` checks every value against
 * the same table, so that happens only after a downgrade. Returns 0, or -1
 * when the store failed (db_errmsg() says why; lc then holds the defaults
 * and what was read before the failure). lc owns its strings either way:
 * release them with list_conf_free(). */
int list_conf_load(struct db *db, int64_t list_id, struct list_conf *lc);
void list_conf_free(struct list_conf *lc);

#endif
