/*
 * build.c - composing the messages fanmail writes itself.
 *
 * Entry point build_message(); see build.h. Header values are folded at
 * white space to keep lines near 78 octets; a subject or display name that
 * is not plain ASCII becomes UTF-8 "B" encoded-words of at most 75 octets
 * that never split a UTF-8 sequence (RFC 2047 section 5).
 */
#include "mail/build.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/time.h>

#include "mail/encode.h"
#include "mail/fold.h"
#include "mail/strbuf.h"
#include "mail/utf8.h"

#define FOLD_AT 78
/* Encoded-words as these notices have always been written: "=?UTF-8?B?",
 * separated by spaces, where put_header() folds. */
#define EW_HOW (ENCODE_EW_B | ENCODE_EW_UPPER)
#define EW_MAX 75
#define MAX_REFS 10 /* References keeps the newest ids only */

int
build_random_hex(char *buf, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char raw[64];
	size_t done = 0;

	while (done < n) {
		size_t want = (n - done + 1) / 2;
		ssize_t got;
		if (want > sizeof(raw))
			want = sizeof(raw);
		got = getrandom(raw, want, 0);
		if (got < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		for (ssize_t i = 0; i < got && done < n; i++) {
			buf[done++] = hex[raw[i] >> 4];
			if (done < n)
				buf[done++] = hex[raw[i] & 0xf];
		}
	}
	buf[n] = '\0';
	return 0;
}

int
build_message_id(const char *hostname, char *buf, size_t len)
{
	struct timeval tv;
	char rnd[17];
	int n;

	if (hostname == NULL || *hostname == '\0')
		hostname = "localhost";
	if (build_random_hex(rnd, 16) < 0)
		return -1;
	gettimeofday(&tv, NULL);
	n = snprintf(buf, len, "<%llx.%s@%s>", (unsigned long long)tv.tv_sec, rnd, hostname);
	if (n < 0 || (size_t)n >= len)
		return -1;
	return n;
}

void
build_date(time_t t, char *buf, size_t len)
{
	static const char *const days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
	static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
	                                     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
	struct tm tm;

	gmtime_r(&t, &tm);
	snprintf(buf, len, "%s, %d %s %04d %02d:%02d:%02d +0000", days[tm.tm_wday], tm.tm_mday,
	         months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* A copy of s with every control character (CR and LF included) turned
 * into a space, so that a value taken from a message cannot start a new
 * header. */
static char *
flatten(const char *s)
{
	return fold_flatten(strdup(s ? s : ""));
}

/* "Name: value" folded at spaces: a fold goes before a word that would
 * take the line past FOLD_AT. */
static void
put_header(struct strbuf *b, const char *name, const char *value)
{
	size_t col = strlen(name) + 1;
	const char *p = value;

	strbuf_str(b, name);
	strbuf_str(b, ":");
	while (*p == ' ')
		p++;
	if (*p == '\0') {
		strbuf_str(b, " \r\n");
		return;
	}
	while (*p) {
		const char *w = p;
		size_t n;
		while (*p && *p != ' ')
			p++;
		n = (size_t)(p - w);
		if (col > strlen(name) + 1 && col + 1 + n > FOLD_AT) {
			strbuf_str(b, "\r\n");
			col = 0;
		}
		strbuf_str(b, " ");
		strbuf_add(b, w, n);
		col += 1 + n;
		while (*p == ' ')
			p++;
	}
	strbuf_str(b, "\r\n");
}

static size_t
longest_word(const char *s)
{
	size_t n = 0, max = 0;

	for (; *s; s++) {
		n = *s == ' ' ? 0 : n + 1;
		if (n > max)
			max = n;
	}
	return max;
}

/* The subject as it goes in the header: as given when it is plain ASCII and
 * could not be mistaken for an encoded-word, else encoded. */
static void
put_subject(struct strbuf *b, const char *subject)
{
	char *s = flatten(subject);
	struct strbuf v = {0};

	if (s == NULL) {
		b->oom = 1;
		return;
	}
	/* A word too long for a line (998 octets) is encoded: encoded-words
	 * fold. */
	if (utf8_is_ascii(s) && strstr(s, "=?") == NULL && longest_word(s) < 900)
		strbuf_str(&v, s);
	else
		encode_words(&v, s, strlen(s), EW_HOW, EW_MAX, " ");
	if (v.oom)
		b->oom = 1;
	else
		put_header(b, "Subject", v.p ? v.p : "");
	free(v.p);
	free(s);
}

static int
is_atext_phrase(const char *s)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == ' ' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || strchr("!#$%&'*+-/=?^_`{|}~", c))
			continue;
		return 0;
	}
	return 1;
}

/* "Display Name <addr>" with the name as atoms, a quoted-string or
 * encoded-words, whichever it needs; just "addr" without a name. */
static void
put_mailbox_header(struct strbuf *b, const char *hname, const char *name, const char *addr)
{
	char *n = flatten(name);
	char *a = flatten(addr);
	struct strbuf v = {0};

	if (n == NULL || a == NULL) {
		b->oom = 1;
		goto out;
	}
	if (*n == '\0') {
		strbuf_str(&v, a);
	} else {
		if (!utf8_is_ascii(n) || strstr(n, "=?") != NULL) {
			encode_words(&v, n, strlen(n), EW_HOW, EW_MAX, " ");
		} else if (is_atext_phrase(n)) {
			strbuf_str(&v, n);
		} else {
			strbuf_str(&v, "\"");
			for (const char *p = n; *p; p++) {
				if (*p == '"' || *p == '\\')
					strbuf_str(&v, "\\");
				strbuf_add(&v, p, 1);
			}
			strbuf_str(&v, "\"");
		}
		strbuf_str(&v, " <");
		strbuf_str(&v, a);
		strbuf_str(&v, ">");
	}
	if (v.oom)
		b->oom = 1;
	else
		put_header(b, hname, v.p);
out:
	free(v.p);
	free(n);
	free(a);
}

/* References: the newest MAX_REFS ids of the old References plus the id
 * answered. */
static void
put_references(struct strbuf *b, const char *refs, const char *irt)
{
	char *r = flatten(refs);
	const char *ids[MAX_REFS];
	size_t nids = 0;
	struct strbuf v = {0};
	char *save = NULL;

	if (r == NULL) {
		b->oom = 1;
		return;
	}
	for (char *t = strtok_r(r, " ", &save); t != NULL; t = strtok_r(NULL, " ", &save)) {
		if (*t != '<')
			continue;
		if (nids == MAX_REFS - 1) {
			memmove(ids, ids + 1, (MAX_REFS - 2) * sizeof(ids[0]));
			nids--;
		}
		ids[nids++] = t;
	}
	for (size_t i = 0; i < nids; i++) {
		strbuf_str(&v, ids[i]);
		strbuf_str(&v, " ");
	}
	strbuf_str(&v, irt);
	if (v.oom)
		b->oom = 1;
	else
		put_header(b, "References", v.p);
	free(v.p);
	free(r);
}

/* Calls line(start, len) for each line of s[0..n), whatever its line end. */
#define FOR_EACH_LINE(s, n, start, len, body)                                                      \
	do {                                                                                       \
		size_t i_ = 0;                                                                     \
		while (i_ < (n)) {                                                                 \
			size_t e_ = i_;                                                            \
			while (e_ < (n) && (s)[e_] != '\r' && (s)[e_] != '\n')                     \
				e_++;                                                              \
			{                                                                          \
				const char *start = (s) + i_;                                      \
				size_t len = e_ - i_;                                              \
				body                                                               \
			}                                                                          \
			if (e_ < (n) && (s)[e_] == '\r' && e_ + 1 < (n) && (s)[e_ + 1] == '\n')    \
				e_++;                                                              \
			i_ = e_ + 1;                                                               \
		}                                                                                  \
	} while (0)

static int
needs_qp(const char *s, size_t n)
{
	int need = 0;

	FOR_EACH_LINE(s, n, line, len, {
		if (len > 998)
			need = 1;
		for (size_t k = 0; k < len; k++)
			if ((unsigned char)line[k] >= 0x80 || line[k] == '\0')
				need = 1;
	});
	return need;
}

static void
put_text_crlf(struct strbuf *b, const char *s, size_t n)
{
	FOR_EACH_LINE(s, n, line, len, {
		strbuf_add(b, line, len);
		strbuf_str(b, "\r\n");
	});
}

/* The body quoted-printable (encode.h), every line ended. */
static void
put_qp(struct strbuf *b, const char *s, size_t n)
{
	encode_qp(b, s, n);
	if (n > 0 && s[n - 1] != '\r' && s[n - 1] != '\n')
		strbuf_str(b, "\r\n");
}

static void
put_body_part(struct strbuf *b, const char *body)
{
	size_t n = strlen(body);

	if (needs_qp(body, n)) {
		strbuf_str(b, "Content-Type: text/plain; charset=utf-8\r\n"
		              "Content-Transfer-Encoding: quoted-printable\r\n\r\n");
		put_qp(b, body, n);
	} else {
		strbuf_str(b, "Content-Type: text/plain; charset=us-ascii\r\n"
		              "Content-Transfer-Encoding: 7bit\r\n\r\n");
		put_text_crlf(b, body, n);
	}
}

int
build_message(const struct build_msg *m, char **out, size_t *outlen, char msgid[BUILD_MSGID_MAX],
              const char **why)
{
	struct strbuf b = {0};
	char id[BUILD_MSGID_MAX];
	char date[40];
	char boundary[40];

	if (m->from_addr == NULL || *m->from_addr == '\0' || m->to_addr == NULL ||
	    *m->to_addr == '\0') {
		*why = "a message needs a From and a To address";
		return -1;
	}
	if (build_message_id(m->hostname, id, sizeof(id)) < 0) {
		*why = "cannot make a Message-ID (hostname too long or no randomness)";
		return -1;
	}
	build_date(m->date ? m->date : time(NULL), date, sizeof(date));

	put_mailbox_header(&b, "From", m->from_name, m->from_addr);
	put_mailbox_header(&b, "To", m->to_name, m->to_addr);
	if (m->reply_to != NULL && *m->reply_to != '\0')
		put_mailbox_header(&b, "Reply-To", NULL, m->reply_to);
	put_subject(&b, m->subject ? m->subject : "");
	put_header(&b, "Date", date);
	put_header(&b, "Message-ID", id);
	if (m->in_reply_to != NULL && *m->in_reply_to == '<') {
		char *irt = flatten(m->in_reply_to);
		if (irt == NULL) {
			b.oom = 1;
		} else {
			put_header(&b, "In-Reply-To", irt);
			put_references(&b, m->references ? m->references : "", irt);
			free(irt);
		}
	}
	if (m->auto_submitted != NULL) {
		put_header(&b, "Auto-Submitted", m->auto_submitted);
		/* Asks Exchange and its kin not to answer with their own
		 * automatic replies. */
		put_header(&b, "X-Auto-Response-Suppress", "All");
	}
	for (size_t i = 0; i < m->nheaders; i++) {
		char *v = flatten(m->headers[i].value);
		if (v == NULL) {
			b.oom = 1;
			break;
		}
		put_header(&b, m->headers[i].name, v);
		free(v);
	}
	strbuf_str(&b, "MIME-Version: 1.0\r\n");
	if (m->attach == NULL) {
		put_body_part(&b, m->body ? m->body : "");
	} else {
		/* 48 random hex digits cannot plausibly occur in the attachment;
		 * check anyway. */
		do {
			memcpy(boundary, "=_fm", 4);
			if (build_random_hex(boundary + 4, 32) < 0) {
				*why = "no randomness for a MIME boundary";
				free(b.p);
				return -1;
			}
		} while (memmem(m->attach, m->attach_len, boundary, strlen(boundary)) != NULL);
		strbuf_printf(&b, "Content-Type: multipart/mixed; boundary=\"%s\"\r\n\r\n",
		              boundary);
		strbuf_str(&b, "This is a MIME-formatted message.\r\n");
		strbuf_printf(&b, "\r\n--%s\r\n", boundary);
		put_body_part(&b, m->body ? m->body : "");
		strbuf_printf(&b, "\r\n--%s\r\n", boundary);
		strbuf_printf(&b,
		              "Content-Type: message/rfc822\r\n"
		              "Content-Disposition: inline\r\n"
		              "Content-Transfer-Encoding: %s\r\n\r\n",
		              utf8_is_ascii_n(m->attach, m->attach_len) ? "7bit" : "8bit");
		put_text_crlf(&b, m->attach, m->attach_len);
		strbuf_printf(&b, "\r\n--%s--\r\n", boundary);
	}
	if (b.oom) {
		free(b.p);
		*why = "out of memory";
		return -1;
	}
	if (msgid != NULL)
		snprintf(msgid, BUILD_MSGID_MAX, "%s", id);
	*out = b.p;
	*outlen = b.len;
	return 0;
}
