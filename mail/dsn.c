/*
 * dsn.c - RFC 3464 delivery status notifications (see dsn.h).
 */
#include "mail/dsn.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mail/strbuf.h"
#include "mail/utf8.h"

#define ORIG_HEADER_MAX (64 * 1024)

#define SB_LIT(b, lit) strbuf_add((b), (lit), sizeof(lit) - 1)

static void
rfc5322_date(int64_t t, char *buf, size_t len)
{
	time_t tt = (time_t)t;
	struct tm tm;

	gmtime_r(&tt, &tm);
	strftime(buf, len, "%a, %d %b %Y %H:%M:%S +0000", &tm);
}

/* Text that goes into a header field or DSN field: one line, no controls. */
static void
sb_field(struct strbuf *b, const char *s)
{
	for (; *s; s++) {
		char c = (*s == '\r' || *s == '\n' || *s == '\t') ? ' ' : *s;
		strbuf_add(b, &c, 1);
	}
}

/* The header section of orig with CRLF line ends, bare CR/LF normalised. */
static void
add_orig_header(struct strbuf *b, const char *orig, size_t len)
{
	size_t i = 0, start;

	while (i < len && b->len < ORIG_HEADER_MAX) {
		start = i;
		while (i < len && orig[i] != '\r' && orig[i] != '\n')
			i++;
		if (i == start)
			break; /* the empty line: end of the header */
		strbuf_add(b, orig + start, i - start);
		strbuf_add(b, "\r\n", 2);
		if (i < len && orig[i] == '\r')
			i++;
		if (i < len && orig[i] == '\n')
			i++;
	}
}

char *
dsn_build(const struct dsn_info *info, const struct dsn_rcpt *rcpts, size_t n, const char *orig,
          size_t origlen, size_t *len)
{
	struct strbuf b = {0};
	char date[64], boundary[96];
	int delayed_only = 1;

	for (size_t i = 0; i < n; i++)
		if (strcmp(rcpts[i].action, "delayed") != 0)
			delayed_only = 0;
	rfc5322_date(info->now, date, sizeof(date));
	snprintf(boundary, sizeof(boundary), "%s/%lld/%s", info->qid, (long long)info->now,
	         info->reporting_mta);

	strbuf_printf(&b, "From: Mail Delivery System <MAILER-DAEMON@%s>\r\n", info->reporting_mta);
	SB_LIT(&b, "To: ");
	sb_field(&b, info->to);
	SB_LIT(&b, "\r\n");
	strbuf_printf(&b, "Subject: %s\r\n",
	              delayed_only ? "Delayed Mail (still being retried)"
	                           : "Undelivered Mail Returned to Sender");
	strbuf_printf(&b, "Date: %s\r\n", date);
	strbuf_printf(&b, "Message-ID: %s\r\n", info->message_id);
	SB_LIT(&b, "Auto-Submitted: auto-replied\r\n");
	SB_LIT(&b, "MIME-Version: 1.0\r\n");
	strbuf_printf(&b,
	              "Content-Type: multipart/report; report-type=delivery-status;\r\n"
	              "\tboundary=\"%s\"\r\n",
	              boundary);
	SB_LIT(&b, "Content-Transfer-Encoding: 8bit\r\n\r\n");
	SB_LIT(&b, "This is a MIME-encapsulated message.\r\n\r\n");

	/* 1: for people. */
	strbuf_printf(&b, "--%s\r\n", boundary);
	SB_LIT(&b, "Content-Description: Notification\r\n");
	SB_LIT(&b, "Content-Type: text/plain; charset=utf-8\r\n");
	SB_LIT(&b, "Content-Transfer-Encoding: 8bit\r\n\r\n");
	strbuf_printf(&b, "This is the mail system at host %s.\r\n\r\n", info->reporting_mta);
	if (delayed_only)
		SB_LIT(&b, "Your message could not be delivered yet to the recipients below.\r\n"
		           "The mail system will go on trying.\r\n\r\n");
	else
		SB_LIT(&b, "I'm sorry to have to inform you that your message could not\r\n"
		           "be delivered to one or more recipients.\r\n\r\n");
	for (size_t i = 0; i < n; i++) {
		SB_LIT(&b, "<");
		sb_field(&b, rcpts[i].addr);
		SB_LIT(&b, ">: ");
		if (rcpts[i].remote_mta != NULL) {
			SB_LIT(&b, "host ");
			sb_field(&b, rcpts[i].remote_mta);
			SB_LIT(&b, " said: ");
		}
		sb_field(&b, rcpts[i].diag ? rcpts[i].diag : rcpts[i].status);
		SB_LIT(&b, "\r\n");
	}
	SB_LIT(&b, "\r\n");

	/* 2: for programs (RFC 3464 section 2). */
	strbuf_printf(&b, "--%s\r\n", boundary);
	SB_LIT(&b, "Content-Description: Delivery report\r\n");
	SB_LIT(&b, "Content-Type: message/delivery-status\r\n\r\n");
	strbuf_printf(&b, "Reporting-MTA: dns; %s\r\n", info->reporting_mta);
	strbuf_printf(&b, "X-Fanmail-Queue-ID: %s\r\n", info->qid);
	if (info->arrival > 0) {
		rfc5322_date(info->arrival, date, sizeof(date));
		strbuf_printf(&b, "Arrival-Date: %s\r\n", date);
	}
	for (size_t i = 0; i < n; i++) {
		const struct dsn_rcpt *r = &rcpts[i];
		const char *type = utf8_is_ascii(r->addr) ? "rfc822" : "utf-8";
		SB_LIT(&b, "\r\n");
		strbuf_printf(&b, "Final-Recipient: %s; ", type);
		sb_field(&b, r->addr);
		/* No Original-Recipient: we never get an ORCPT to report. */
		strbuf_printf(&b, "\r\nAction: %s\r\nStatus: %s\r\n", r->action, r->status);
		if (r->remote_mta != NULL) {
			SB_LIT(&b, "Remote-MTA: dns; ");
			sb_field(&b, r->remote_mta);
			SB_LIT(&b, "\r\n");
		}
		if (r->diag != NULL) {
			SB_LIT(&b, "Diagnostic-Code: smtp; ");
			sb_field(&b, r->diag);
			SB_LIT(&b, "\r\n");
		}
		if (r->last_attempt > 0) {
			rfc5322_date(r->last_attempt, date, sizeof(date));
			strbuf_printf(&b, "Last-Attempt-Date: %s\r\n", date);
		}
	}
	SB_LIT(&b, "\r\n");

	/* 3: the header of what was sent. */
	strbuf_printf(&b, "--%s\r\n", boundary);
	SB_LIT(&b, "Content-Description: Undelivered Message Headers\r\n");
	SB_LIT(&b, "Content-Type: text/rfc822-headers\r\n");
	SB_LIT(&b, "Content-Transfer-Encoding: 8bit\r\n\r\n");
	add_orig_header(&b, orig, origlen);
	SB_LIT(&b, "\r\n");
	strbuf_printf(&b, "--%s--\r\n", boundary);

	if (b.oom) {
		free(b.p);
		return NULL;
	}
	*len = b.len;
	return b.p;
}

int
dsn_status_of(const char *reply, char out[16])
{
	const char *p = reply;
	int cls, a, b;

	if (!(p[0] == '2' || p[0] == '4' || p[0] == '5') || !isdigit((unsigned char)p[1]) ||
	    !isdigit((unsigned char)p[2]))
		return -1;
	cls = p[0] - '0';
	p += 3;
	if (*p == ' ' || *p == '-')
		p++;
	/* class.subject.detail: 1 digit, 1-3 digits, 1-3 digits. */
	if (p[0] - '0' == cls && p[1] == '.' && isdigit((unsigned char)p[2])) {
		const char *q = p + 2;
		a = 0;
		for (int k = 0; k < 3 && isdigit((unsigned char)*q); k++)
			a = a * 10 + (*q++ - '0');
		if (*q == '.' && isdigit((unsigned char)q[1])) {
			q++;
			b = 0;
			int k;
			for (k = 0; k < 3 && isdigit((unsigned char)*q); k++)
				b = b * 10 + (*q++ - '0');
			if (*q == '\0' || *q == ' ' || *q == '\r' || *q == '\n') {
				snprintf(out, 16, "%d.%d.%d", cls, a, b);
				return 0;
			}
		}
	}
	snprintf(out, 16, "%d.0.0", cls);
	return 0;
}
