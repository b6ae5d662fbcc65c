/*
 * secrets.h - server secrets kept in the store: random keys made once by
 * the schema (migration 4, SQLite's randomblob(), which draws on the OS's
 * random source) and never printed. The one in use, "report", keys the
 * HMAC that signs VERP addresses and the report tag on list mail
 * (lists/verp.h).
 */
#ifndef FANMAIL_DB_SECRETS_H
#define FANMAIL_DB_SECRETS_H

#include <stddef.h>

#include "db/db.h"

#define DB_SECRET_MAX 64

/* Copies secret name into buf[0..len). Returns its length, or -1 (status
 * DB_NOTFOUND when there is none, or an error). */
int db_secret_get(struct db *db, const char *name, unsigned char *buf, size_t len);

#endif
