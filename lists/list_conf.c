/*
 * list_conf.c - loads a list's typed settings from the store. See
 * list_conf.h.
 */
#include "lists/list_conf.h"

#include "db/lists.h"

static void
apply(void *arg, const char *key, const char *value)
{
	char err[256];

	/* Unknown keys and unreadable values keep the default (see the
	 * header): there is nobody here to tell. */
	(void)conf_list_set(arg, key, value, err, sizeof(err));
}

int
list_conf_load(struct db *db, int64_t list_id, struct list_conf *lc)
{
	conf_list_init(lc);
	return db_list_settings_each(db, list_id, apply, lc);
}

void
list_conf_free(struct list_conf *lc)
{
	conf_list_free(lc);
}
