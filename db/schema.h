/*
 * schema.h - the migrations that build and upgrade the database.
 */
#ifndef FANMAIL_SCHEMA_H
#define FANMAIL_SCHEMA_H

int schema_latest(void);
/* The SQL that takes user_version from version-1 to version. */
const char *schema_migration(int version);

#endif
