/*
 * archive.h - the archive (table archive): every post that went out, as
 * sent, written by the list engine and read by `fanmail archive`. Runs
 * inside the caller's transaction when there is one.
 */
#ifndef FANMAIL_DB_ARCHIVE_H
#define FANMAIL_DB_ARCHIVE_H

#include <stddef.h>
#include <stdint.h>

#include "db/db.h"

/* The archive: every post that went out. */
int db_engine_archive_add(struct db *db, int64_t list_id, const char *message_id, int64_t date,
                          const char *sender, const char *subject, const void *raw, size_t len);
/* Calls fn for each archived post of the list, oldest first; fn returning
 * non-zero stops the walk (the function then returns -1 with DB_INVALID). */
int db_engine_archive_each(struct db *db, int64_t list_id,
                           int (*fn)(void *arg, int64_t date, const char *sender, const void *raw,
                                     size_t len),
                           void *arg);

#endif
