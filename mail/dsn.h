/*
 * dsn.h - delivery status notifications (RFC 3464): the multipart/report
 * that tells an envelope sender which recipients failed and why.
 *
 * dsn_build() composes the whole message: a human-readable text/plain part,
 * the message/delivery-status part (per-message fields, then one block per
 * recipient), and the original message's header as text/rfc822-headers.
 * dsn_status_of() reads the enhanced status code (RFC 3463) of an SMTP
 * reply, or derives one from its basic code.
 */
#ifndef FANMAIL_DSN_H
#define FANMAIL_DSN_H

#include <stddef.h>
#include <stdint.h>

struct dsn_rcpt {
	const char *addr;       /* the recipient as it was sent to */
	const char *action;     /* "failed" or "delayed" */
	const char *status;     /* x.y.z */
	const char *remote_mta; /* host that answered, or NULL */
	const char *diag;       /* its SMTP reply ("550 5.1.1 ..."), or NULL */
	int64_t last_attempt;   /* 0: unknown */
};

struct dsn_info {
	const char *reporting_mta; /* our host name */
	const char *to;            /* the envelope sender being told */
	const char *qid;           /* queue id of the failed message */
	const char *message_id;    /* Message-ID of the report, with <> */
	int64_t arrival;           /* when the failed message was queued */
	int64_t now;               /* the report's Date */
};

/* Returns the report as one malloc'd CRLF message (the caller frees it) and
 * its length in *len; NULL when out of memory. orig is the failed message
 * (only its header section is copied). */
char *dsn_build(const struct dsn_info *info, const struct dsn_rcpt *rcpts, size_t n,
                const char *orig, size_t origlen, size_t *len);

/* Writes the enhanced status code of reply ("550 5.1.1 no such user" gives
 * "5.1.1", "451 try later" gives "4.0.0") into out. Returns 0, or -1 when
 * reply does not start with a 2xx/4xx/5xx code. */
int dsn_status_of(const char *reply, char out[16]);

#endif
