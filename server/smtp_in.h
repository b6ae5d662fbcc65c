/*
 * smtp_in.h - fanmaild's SMTP server (RFC 5321 with PIPELINING, SIZE,
 * 8BITMIME, ENHANCEDSTATUSCODES, SMTPUTF8, STARTTLS): accepts mail for list
 * addresses and hands each message to the spool writer, answering 250 only
 * after the commit.
 *
 * Entry points: smtp_in_start() puts the daemon's bound listening sockets
 * on its event base; smtp_in_shutdown() stops accepting and closes idle
 * sessions (sessions in a transaction finish it, then get 421);
 * smtp_in_sessions() counts what is still open; smtp_in_close_all() ends
 * everything at the shutdown deadline; smtp_in_free().
 */
#ifndef FANMAIL_SMTP_IN_H
#define FANMAIL_SMTP_IN_H

#include <stddef.h>

struct daemon;
struct smtp_in;

struct smtp_in *smtp_in_start(struct daemon *d, char *err, size_t errlen);
void smtp_in_shutdown(struct smtp_in *srv);
size_t smtp_in_sessions(const struct smtp_in *srv);
void smtp_in_close_all(struct smtp_in *srv);
void smtp_in_free(struct smtp_in *srv);

#endif
