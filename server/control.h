/*
 * control.h - how `fanmail queue` tells the running fanmaild that the queue
 * changed ("flush": deferred mail is due now; "kick": new mail).
 *
 * The channel is a file next to the database (setting control_file, by
 * default DATABASE.kick): the CLI writes one word into it and closes it;
 * fanmaild watches the file's directory with inotify and, on every close
 * after a write, reads the word and calls back on its event loop. A file
 * needs no socket in the CLI, works whoever owns the daemon as long as the
 * CLI can write the database (and so its directory), and is harmless when
 * no daemon runs: the next start scans the queue anyway.
 */
#ifndef FANMAIL_CONTROL_H
#define FANMAIL_CONTROL_H

#include <stddef.h>

struct event_base;
struct control;

/* The path: setting if not empty, else database with ".kick" appended. */
void control_path(const char *setting, const char *database, char *out, size_t len);

/* Watches path; cb gets the word written ("flush", "kick"). NULL on
 * failure (logged). */
struct control *control_listen(struct event_base *base, const char *path,
                               void (*cb)(void *arg, const char *what), void *arg);
void control_close(struct control *c);

#endif
