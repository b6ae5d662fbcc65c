/*
 * secrets.h - server secrets kept in the store: random keys made once by
 * the schema (migration 4, SQLite's randomblob(), which draws on the OS's
 * random source) and never printed. The one in use, "report", keys the
 * HMAC that signs VERP addresses and the report tag on list mail
 * (lists/verp.h); "oneclick.N" (versions, below) keys the one-click
 * unsubscribe tokens (lists/oneclick.h).
 */
#ifndef FANMAIL_DB_SECRETS_H
#define FANMAIL_DB_SECRETS_H

#include <stddef.h>
#include <stdint.h>

#include "db/db.h"

#define DB_SECRET_MAX 64

/* Copies secret name into buf[0..len). Returns its length, or -1 (status
 * DB_NOTFOUND when there is none, or an error). */
int db_secret_get(struct db *db, const char *name, unsigned char *buf, size_t len);

/* Keys with versions are named FAMILY.N ("oneclick.1", "oneclick.2"): the
 * highest version signs what is made now, the older ones are still
 * honoured until they are dropped. */

/* Calls cb with each version of family, highest first (value valid only
 * during the call); stops early when cb returns non-zero. Returns the
 * number given to cb, or -1. */
int db_secret_versions(struct db *db, const char *family,
                       int (*cb)(void *arg, int version, const unsigned char *value, size_t len,
                                 int64_t created),
                       void *arg);

/* Adds version (highest + 1) of family, a new random 32-octet key, made
 * at now; *version gets its number. */
int db_secret_rotate(struct db *db, const char *family, int64_t now, int *version);

/* Deletes every version of family older than keep; *n gets how many. */
int db_secret_drop_before(struct db *db, const char *family, int keep, int64_t *n);

#endif
