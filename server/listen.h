/*
 * listen.h - binding the `listen` addresses (addr:port, [v6addr]:port,
 * *:port for every IPv4 and IPv6 address) before privileges are dropped.
 */
#ifndef FANMAIL_LISTEN_H
#define FANMAIL_LISTEN_H

#include <stddef.h>

/* Binds and listens on every address of spec (a LIST setting). On success
 * *fds is a malloc'd array of *n non-blocking sockets. */
int listen_bind_all(const char *spec, int **fds, size_t *n, char *err, size_t errlen);

#endif
