/*
 * fuzz_http.c - the HTTP face's request parsing (server/http_parse.c) and
 * its HTML escaping (server/http_pages.c), fed a request as the server
 * sees it.
 *
 * Input: a request line, header lines and a body ("METHOD TARGET
 * VERSION\r\nName: value\r\n...\r\n\r\nBODY"; a bare LF ends a line too, as
 * evhttp allows). The target goes through libevent's own URI parser, as
 * evhttp does it (a URI it refuses never reaches fanmaild), and its path
 * through http_parse_target under two prefixes; the Content-Type header
 * and the body through http_form_field for the two fields fanmaild reads;
 * every value decoded on the way through html_escape and into a page.
 *
 * Beyond "does not crash and leaks nothing": decoded lists, tokens and
 * field values hold no NUL and fit their buffers; a list has its '@' and
 * no '/', a token only its own letters; a field decodes the same twice;
 * escaped text holds none of < > " ' and every '&' starts one of the five
 * references; and a page shows a value without changing its markup (the
 * same count of < > " ' as with the value replaced by letters).
 */
#include "lists/web.h"
#include "mail/strbuf.h"
#include "server/http_pages.h"
#include "server/http_parse.h"

#include <event2/http.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "http parser invariant failed: %s\n", #cond);              \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

static void
check_escaped(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		CHECK(s[i] != '<' && s[i] != '>' && s[i] != '"' && s[i] != '\'');
		if (s[i] == '&')
			CHECK(strncmp(s + i, "&amp;", 5) == 0 || strncmp(s + i, "&lt;", 4) == 0 ||
			      strncmp(s + i, "&gt;", 4) == 0 || strncmp(s + i, "&quot;", 6) == 0 ||
			      strncmp(s + i, "&#39;", 5) == 0);
	}
}

static void
count_markup(const struct strbuf *b, size_t counts[4])
{
	memset(counts, 0, 4 * sizeof(counts[0]));
	for (size_t i = 0; i < b->len; i++) {
		const char *m = memchr("<>\"'", b->p[i], 4);

		if (m != NULL && b->p[i] != '\0')
			counts[m - "<>\"'"]++;
	}
}

/* The page for a result holding value in every field a user can fill,
 * against the same page with value's octets replaced by 'x'. */
static void
check_page(const char *value)
{
	struct web_result *r = calloc(2, sizeof(*r));
	struct strbuf b[2] = {{0}};
	size_t counts[2][4];
	char *plain = strdup(value);

	CHECK(r != NULL && plain != NULL);
	for (char *p = plain; *p; p++)
		*p = 'x';
	for (int i = 0; i < 2; i++) {
		const char *v = i == 0 ? value : plain;

		r[i].status = 200;
		r[i].kind = (enum web_kind)(strlen(value) % (WEB_ERROR + 1));
		snprintf(r[i].list_address, sizeof(r[i].list_address), "%s", v);
		snprintf(r[i].list_name, sizeof(r[i].list_name), "%s", v);
		snprintf(r[i].list_description, sizeof(r[i].list_description), "%s", v);
		snprintf(r[i].address, sizeof(r[i].address), "%s", v);
		snprintf(r[i].message, sizeof(r[i].message), "%s", v);
		page_web(&b[i], &r[i], (int)(strlen(value) & 1));
		CHECK(!b[i].oom && b[i].p != NULL);
		count_markup(&b[i], counts[i]);
	}
	CHECK(memcmp(counts[0], counts[1], sizeof(counts[0])) == 0);
	strbuf_free(&b[0]);
	strbuf_free(&b[1]);
	free(plain);
	free(r);
}

static void
check_value(const char *v)
{
	struct strbuf b = {0};

	html_escape(&b, v);
	CHECK(!b.oom);
	if (b.p != NULL)
		check_escaped(b.p, b.len);
	strbuf_free(&b);
	check_page(v);
}

static void
check_target(const char *prefix, const char *raw, const char *path)
{
	struct http_target t;

	if (http_parse_request_target(prefix, raw, path, &t) < 0)
		return;
	CHECK(t.route >= 0 && t.route < ROUTE_COUNT);
	CHECK(memchr(t.list, '\0', sizeof(t.list)) != NULL);
	CHECK(memchr(t.token, '\0', sizeof(t.token)) != NULL);
	if (!t.args_ok) {
		CHECK(t.list[0] == '\0' && t.token[0] == '\0');
		return;
	}
	if (t.route == ROUTE_ONECLICK || t.route == ROUTE_SUBSCRIBE ||
	    t.route == ROUTE_UNSUBSCRIBE) {
		CHECK(strchr(t.list, '@') != NULL && strchr(t.list, '/') == NULL);
		for (const char *p = t.list; *p; p++)
			CHECK((unsigned char)*p > ' ' && *p != 0x7f);
		check_value(t.list);
	} else {
		CHECK(t.list[0] == '\0');
	}
	if (t.route == ROUTE_ONECLICK || t.route == ROUTE_CONFIRM) {
		CHECK(t.token[0] != '\0');
		CHECK(strspn(t.token,
		             "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_") ==
		      strlen(t.token));
	} else {
		CHECK(t.token[0] == '\0');
	}
}

static void
check_form(const char *ctype, const char *body, size_t len, const char *name)
{
	char out[340], again[340];
	int rc = http_form_field(ctype, body, len, name, out, sizeof(out));

	CHECK(rc == 0 || rc == -1 || rc == -2);
	CHECK(http_form_field(ctype, body, len, name, again, sizeof(again)) == rc);
	if (rc != 0)
		return;
	CHECK(memchr(out, '\0', sizeof(out)) != NULL);
	CHECK(strcmp(out, again) == 0);
	check_value(out);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *in, *line_end, *target, *sp, *ctype = NULL, *body;
	const char *p, *end;
	struct evhttp_uri *uri;

	if (size > 65536)
		return 0;
	if ((in = malloc(size + 1)) == NULL)
		return 0;
	memcpy(in, data, size);
	in[size] = '\0';
	end = in + size;

	/* the request line: METHOD SP TARGET SP VERSION */
	line_end = memchr(in, '\n', size);
	if (line_end == NULL)
		line_end = in + size;
	*line_end = '\0';
	if (line_end > in && line_end[-1] == '\r')
		line_end[-1] = '\0';
	target = strchr(in, ' ');
	if (target != NULL) {
		target++;
		if ((sp = strchr(target, ' ')) != NULL)
			*sp = '\0';
		/* evhttp: EVHTTP_URI_NONCONFORMANT, and a NUL ends the line */
		uri = evhttp_uri_parse_with_flags(target, EVHTTP_URI_NONCONFORMANT);
		if (uri != NULL) {
			check_target("", target, evhttp_uri_get_path(uri));
			check_target("/lists", target, evhttp_uri_get_path(uri));
			evhttp_uri_free(uri);
		}
		/* and the raw target as a path, without the URI parser */
		check_target("/x", NULL, target);
	}

	/* headers, until an empty line */
	p = line_end < end ? line_end + 1 : end;
	while (p < end) {
		char *eol = memchr(p, '\n', (size_t)(end - p)), *colon;

		if (eol == NULL)
			eol = (char *)end;
		*eol = '\0';
		if (eol > p && eol[-1] == '\r')
			eol[-1] = '\0';
		if (*p == '\0') {
			p = eol < end ? eol + 1 : end;
			break;
		}
		colon = strchr(p, ':');
		if (colon != NULL && (size_t)(colon - p) == 12 &&
		    strncasecmp(p, "Content-Type", 12) == 0) {
			ctype = colon + 1;
			while (*ctype == ' ' || *ctype == '\t')
				ctype++;
		}
		p = eol < end ? eol + 1 : end;
	}
	body = (char *)p;
	check_form(ctype, body, (size_t)(end - p), "address");
	check_form(ctype, body, (size_t)(end - p), "List-Unsubscribe");
	free(in);
	return 0;
}
