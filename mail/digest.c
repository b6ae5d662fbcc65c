/*
 * digest.c - STAND-IN until branch digestbuild lands: the smallest
 * builder that makes a MIME and an RFC 1153 digest, for the tests of the
 * sending side. Replaced by digestbuild's mail/digest.c on merge.
 */
#include "mail/digest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "mail/strbuf.h"

static void
head(struct strbuf *b, const struct digest_info *d, const char *kind)
{
	char date[64];
	time_t t = (time_t)d->now;
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);
	strbuf_printf(b, "From: %s <%s>\r\n", d->list_name, d->request_address);
	strbuf_printf(b, "To: %s\r\n", d->list_address);
	strbuf_printf(b, "Subject: %s digest, Vol %d, Issue %d\r\n", d->list_name, d->volume,
	              d->issue);
	strbuf_printf(b, "Date: %s\r\n", date);
	strbuf_printf(b, "Message-ID: <digest.%s.%d.%d.%lld@%s>\r\n", kind, d->volume, d->issue,
	              (long long)d->now, d->hostname);
	if (d->list_fields)
		strbuf_str(b, d->list_fields);
	strbuf_str(b, "MIME-Version: 1.0\r\n");
}

static const char *
find_field(const char *m, size_t len, const char *name, size_t *vlen)
{
	size_t nl = strlen(name);
	const char *p = m, *end = m + len;

	while (p < end && !(p[0] == '\r' && p + 1 < end && p[1] == '\n')) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));

		if (eol == NULL)
			eol = end;
		if ((size_t)(eol - p) > nl && strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
			const char *v = p + nl + 1;

			while (v < eol && *v == ' ')
				v++;
			*vlen = (size_t)(eol - v);
			if (*vlen && v[*vlen - 1] == '\r')
				--*vlen;
			return v;
		}
		p = eol + 1;
	}
	return NULL;
}

int
digest_build_mime(const struct digest_info *d, const struct digest_post *p, size_t n, char **out,
                  size_t *len)
{
	struct strbuf b = {0};
	char bnd[64];

	snprintf(bnd, sizeof(bnd), "=_digest_%d_%d_%lld", d->volume, d->issue, (long long)d->now);
	head(&b, d, "mime");
	strbuf_printf(&b, "Content-Type: multipart/mixed; boundary=\"%s\"\r\n\r\n", bnd);
	strbuf_printf(&b, "--%s\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n", bnd);
	if (d->header_text && *d->header_text)
		strbuf_printf(&b, "%s\r\n\r\n", d->header_text);
	strbuf_str(&b, "Today's Topics:\r\n\r\n");
	for (size_t i = 0; i < n; i++) {
		size_t vl = 0;
		const char *v = find_field(p[i].msg, p[i].len, "Subject", &vl);

		strbuf_printf(&b, "  %zu. %.*s\r\n", i + 1, (int)vl, v ? v : "");
	}
	strbuf_printf(&b, "\r\n--%s\r\nContent-Type: multipart/digest; boundary=\"%s_d\"\r\n\r\n",
	              bnd, bnd);
	for (size_t i = 0; i < n; i++) {
		strbuf_printf(&b, "--%s_d\r\n\r\n", bnd);
		strbuf_add(&b, p[i].msg, p[i].len);
		if (p[i].len < 2 || memcmp(p[i].msg + p[i].len - 2, "\r\n", 2) != 0)
			strbuf_str(&b, "\r\n");
	}
	strbuf_printf(&b, "--%s_d--\r\n", bnd);
	if (d->footer_text && *d->footer_text)
		strbuf_printf(&b,
		              "\r\n--%s\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n%s\r\n",
		              bnd, d->footer_text);
	strbuf_printf(&b, "\r\n--%s--\r\n", bnd);
	*len = b.len;
	return (*out = strbuf_done(&b)) == NULL ? -1 : 0;
}

int
digest_build_text(const struct digest_info *d, const struct digest_post *p, size_t n, char **out,
                  size_t *len)
{
	static const char sep30[] = "------------------------------";
	struct strbuf b = {0};

	head(&b, d, "text");
	strbuf_str(&b, "Content-Type: text/plain; charset=utf-8\r\n\r\n");
	if (d->header_text && *d->header_text)
		strbuf_printf(&b, "%s\r\n\r\n", d->header_text);
	strbuf_str(&b, "Today's Topics:\r\n\r\n");
	for (size_t i = 0; i < n; i++) {
		size_t vl = 0;
		const char *v = find_field(p[i].msg, p[i].len, "Subject", &vl);

		strbuf_printf(&b, "  %zu. %.*s\r\n", i + 1, (int)vl, v ? v : "");
	}
	strbuf_str(
	    &b,
	    "\r\n----------------------------------------------------------------------\r\n\r\n");
	for (size_t i = 0; i < n; i++) {
		static const char *const keep[] = {"Date", "From", "Subject", "Message-ID"};
		const char *body = memmem(p[i].msg, p[i].len, "\r\n\r\n", 4);

		for (size_t k = 0; k < 4; k++) {
			size_t vl;
			const char *v = find_field(p[i].msg, p[i].len, keep[k], &vl);

			if (v)
				strbuf_printf(&b, "%s: %.*s\r\n", keep[k], (int)vl, v);
		}
		strbuf_str(&b, "\r\n");
		if (body)
			strbuf_add(&b, body + 4, p[i].len - (size_t)(body + 4 - p[i].msg));
		strbuf_printf(&b, "\r\n%s\r\n\r\n", sep30);
	}
	strbuf_printf(&b, "End of %s Digest, Vol %d, Issue %d\r\n", d->list_name, d->volume,
	              d->issue);
	*len = b.len;
	return (*out = strbuf_done(&b)) == NULL ? -1 : 0;
}
