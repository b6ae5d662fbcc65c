/*
 * bounce.h - reading bounces: RFC 3464 delivery status notifications,
 * the non-standard bounces of real MTAs and providers, auto-replies
 * (RFC 3834) and ARF feedback reports (RFC 5965). Pure parsing, no I/O.
 *
 * Entry points: bounce_parse() turns one message into a report with one
 * result per recipient (address, action, status x.y.z, class, reason,
 * diagnostic text); bounce_classify() gives the class and reason of a
 * status code and a diagnostic text; bounce_mbox_next() splits a Unix mbox
 * into its messages. bounce_handle() (declared in lists/inbound.h, defined
 * in bounce_handle.c) is the list engine's handler for LIST-bounces mail.
 *
 * A report owns its results; bounce_report_free() releases them.
 */
#ifndef FANMAIL_BOUNCE_H
#define FANMAIL_BOUNCE_H

#include <stddef.h>

#include "lists/inbound.h"

#define BOUNCE_ADDR_MAX 256
#define BOUNCE_DIAG_MAX 320

/* What one recipient's result means for its member. */
enum bounce_class {
	BOUNCE_NONE = 0,  /* not a failure: delayed, delivered, relayed */
	BOUNCE_HARD,      /* the address is bad: unknown user or domain, null MX, moved */
	BOUNCE_SOFT,      /* temporary or unclear: mailbox full, expired, system error */
	BOUNCE_POLICY,    /* refused for policy: spam, DMARC/SPF/DKIM, blocked (5.7.x) */
	BOUNCE_COMPLAINT, /* an ARF abuse report about mail to this recipient */
};

/* What the message as a whole is. */
enum bounce_kind {
	BOUNCE_KIND_NONE = 0,  /* ordinary mail, or nothing recognisable */
	BOUNCE_KIND_DSN,       /* RFC 3464 multipart/report */
	BOUNCE_KIND_TEXT,      /* a non-standard bounce */
	BOUNCE_KIND_AUTOREPLY, /* RFC 3834 auto-reply (vacation and the like) */
	BOUNCE_KIND_ARF,       /* RFC 5965 feedback report */
};

struct bounce_rcpt {
	char addr[BOUNCE_ADDR_MAX]; /* final recipient */
	char orig[BOUNCE_ADDR_MAX]; /* original recipient when given, else "" */
	char action[16];            /* failed, delayed, delivered, relayed, expanded, complaint */
	char status[16];            /* x.y.z, or "" when none could be found or made */
	enum bounce_class cls;
	const char *reason;         /* static keyword: "user unknown", "mailbox full", ... */
	char diag[BOUNCE_DIAG_MAX]; /* the remote server's words, one line */
};

struct bounce_report {
	enum bounce_kind kind;
	const char *detector;      /* static: "dsn", "qmail", "exim", "text", "arf", ... */
	struct bounce_rcpt *rcpts; /* owned */
	size_t n;
	size_t cap;
};

/* Parses buf[0..len) (any line ends). Returns 0, or -1 when out of memory
 * (r is then empty). A message that is no bounce gives 0 and no failed
 * recipients. */
int bounce_parse(const char *buf, size_t len, struct bounce_report *r);
void bounce_report_free(struct bounce_report *r);

/* Whether result i counts as a bounce (action failed, class hard, soft or
 * policy). */
int bounce_rcpt_is_failure(const struct bounce_rcpt *b);

/* Class and reason keyword for a status code (x.y.z, may be NULL or "")
 * and the diagnostic text (may be NULL). temporary says the report marked
 * it a delay or a 4xx reply. */
enum bounce_class bounce_classify(const char *status, const char *text, int temporary,
                                  const char **reason);

const char *bounce_class_name(enum bounce_class c);
const char *bounce_kind_name(enum bounce_kind k);

/* The next message of a Unix mbox: messages start at "From " lines at the
 * beginning of the buffer or after a line end. *off is where to look (0
 * first); on return *msg and *msglen give the message without its "From "
 * line and *off moves past it. Returns 1 while there is a message, 0 at the
 * end. A buffer that does not start with "From " is one message. */
int bounce_mbox_next(const char *buf, size_t len, size_t *off, const char **msg, size_t *msglen);

#endif
