/*
 * personal.c - markers of a personal post and the rendering of one
 * member's copy (see personal.h).
 */
#include "lists/personal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lists/oneclick.h"
#include "mail/encode.h"
#include "mail/fold.h"
#include "mail/strbuf.h"

void
personal_marker(char *buf, char what, int qp)
{
	buf[0] = '\0';
	buf[1] = what;
	buf[2] = qp ? 'q' : 'r';
	buf[3] = '\0';
}

char *
personal_headers(const char *local, const char *domain, const char *base, const char *token,
                 char *url, size_t urllen, size_t *len)
{
	char list[400], mailto[PERSONAL_MAILTO_MAX + 400], ourl[2048];
	struct strbuf b = {0}, f = {0};
	char *folded;
	int n;

	snprintf(list, sizeof(list), "%s@%s", local, domain);
	if (token == NULL || *token == '\0')
		n = -1;
	else
		n = snprintf(mailto, sizeof(mailto), "%s-leave+%s@%s", local, token, domain);
	if (n < 0 || (size_t)n > PERSONAL_MAILTO_MAX)
		snprintf(mailto, sizeof(mailto), "%s-leave@%s", local, domain);
	if (*base == '\0' || token == NULL || *token == '\0' ||
	    oneclick_url(base, list, token, ourl, sizeof(ourl)) < 0)
		ourl[0] = '\0';
	if (url != NULL && urllen > 0)
		snprintf(url, urllen, "%s", ourl);
	strbuf_str(&f, "List-Unsubscribe: ");
	if (ourl[0])
		strbuf_printf(&f, "<%s>, ", ourl);
	strbuf_printf(&f, "<mailto:%s>", mailto);
	/* FOLD_URLS: a URL too long for a line is split inside its angle
	 * brackets, where RFC 2369 says white space is ignored. */
	if (f.oom || (folded = fold_field(f.p, f.len, FOLD_URLS)) == NULL) {
		strbuf_free(&f);
		strbuf_free(&b);
		return NULL;
	}
	strbuf_free(&f);
	strbuf_str(&b, folded);
	free(folded);
	if (ourl[0])
		strbuf_str(&b, "List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n");
	*len = b.len;
	return strbuf_done(&b);
}

int
personal_has_marker(const char *body, size_t len)
{
	return memchr(body, '\0', len) != NULL;
}

char *
personal_fill(const char *body, size_t len, const char *head, size_t headlen, const char *addr,
              const char *url, size_t *outlen)
{
	const char *p = body, *end = body + len, *z;
	struct strbuf b = {0};

	strbuf_add(&b, head, headlen);
	while ((z = memchr(p, '\0', (size_t)(end - p))) != NULL) {
		strbuf_add(&b, p, (size_t)(z - p));
		if (end - z >= PERSONAL_MARK_LEN && (z[1] == 'm' || z[1] == 'u') &&
		    (z[2] == 'r' || z[2] == 'q') && z[3] == '\0') {
			const char *v = z[1] == 'm' ? addr : url;

			if (z[2] == 'q')
				encode_qp(&b, v, strlen(v));
			else
				strbuf_str(&b, v);
			p = z + PERSONAL_MARK_LEN;
		} else {
			p = z + 1; /* not ours: never sent */
		}
	}
	strbuf_add(&b, p, (size_t)(end - p));
	*outlen = b.len;
	return strbuf_done(&b);
}
