/*
 * test_http_parse.c - the HTTP face's pure parsing (server/http_parse.c):
 * percent-decoding (%00 and bad escapes refused), the path into route,
 * list and token (prefix, double slashes, %2F, "..", invalid UTF-8),
 * form bodies (urlencoded and multipart: boundaries, duplicates, NUL,
 * a field named only in a filename), the rate table's keys (an IPv6 /64,
 * a zone too long for the old 48-octet slot) and html_escape.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "fm_assert.h"

#include <stdio.h>
#include <string.h>

#include "mail/strbuf.h"
#include "server/http_pages.h"
#include "server/http_parse.h"

static void
test_pct_decode(void **state)
{
	char out[16];

	(void)state;
	assert_int_equal(http_pct_decode("a%41%2f+b", 9, 0, out, sizeof(out)), 5);
	assert_string_equal(out, "aA/+b");
	assert_int_equal(http_pct_decode("a+b", 3, 1, out, sizeof(out)), 3);
	assert_string_equal(out, "a b");
	assert_int_equal(http_pct_decode("a%00b", 5, 0, out, sizeof(out)), -1);
	assert_int_equal(http_pct_decode("%zz", 3, 0, out, sizeof(out)), -1);
	assert_int_equal(http_pct_decode("a%4", 3, 0, out, sizeof(out)), -1);
	assert_int_equal(http_pct_decode("a%", 2, 0, out, sizeof(out)), -1);
	assert_int_equal(http_pct_decode("0123456789abcdef", 16, 0, out, sizeof(out)), -2);
	assert_int_equal(http_pct_decode("", 0, 0, out, sizeof(out)), 0);
	assert_string_equal(out, "");
}

static void
test_paths_route(void **state)
{
	struct http_target t;
	char tok[ONECLICK_TOKEN_MAX + 10];

	(void)state;
	assert_int_equal(http_parse_target("", "/", &t), 0);
	assert_int_equal(t.route, ROUTE_STATIC);
	assert_int_equal(http_parse_target("", NULL, &t), 0);
	assert_int_equal(t.route, ROUTE_STATIC);
	assert_int_equal(http_parse_target("", "/healthz", &t), 0);
	assert_int_equal(t.route, ROUTE_HEALTHZ);
	assert_int_equal(http_parse_target("", "/confirm/0123abcd", &t), 0);
	assert_int_equal(t.route, ROUTE_CONFIRM);
	assert_true(t.args_ok);
	assert_string_equal(t.token, "0123abcd");
	assert_int_equal(http_parse_target("", "/unsubscribe/dev%40lists.example.org/1-ab-cd", &t),
	                 0);
	assert_int_equal(t.route, ROUTE_ONECLICK);
	assert_true(t.args_ok);
	assert_string_equal(t.list, "dev@lists.example.org");
	assert_string_equal(t.token, "1-ab-cd");
	/* the prefix, and the same paths without it */
	assert_int_equal(http_parse_target("/lists", "/lists/subscribe/a@b.c", &t), 0);
	assert_int_equal(t.route, ROUTE_SUBSCRIBE);
	assert_string_equal(t.list, "a@b.c");
	assert_int_equal(http_parse_target("/lists", "/lists", &t), 0);
	assert_int_equal(t.route, ROUTE_STATIC);
	assert_int_equal(http_parse_target("/lists", "/listsx/healthz", &t), 0);
	assert_int_equal(t.route, ROUTE_OTHER);
	assert_int_equal(http_parse_target("/lists", "/healthz", &t), 0);
	assert_int_equal(t.route, ROUTE_HEALTHZ);
	/* double slashes, trailing slashes, dot segments, too many */
	assert_int_equal(http_parse_target("", "//healthz", &t), 0);
	assert_int_equal(t.route, ROUTE_OTHER);
	assert_int_equal(http_parse_target("", "/healthz/", &t), 0);
	assert_int_equal(t.route, ROUTE_OTHER);
	assert_int_equal(http_parse_target("", "/confirm//x", &t), 0);
	assert_int_equal(t.route, ROUTE_OTHER);
	assert_int_equal(http_parse_target("", "/x/../healthz", &t), 0);
	assert_int_equal(t.route, ROUTE_OTHER);
	assert_int_equal(http_parse_target("", "/confirm/..", &t), 0);
	assert_int_equal(t.route, ROUTE_CONFIRM);
	assert_false(t.args_ok);
	assert_int_equal(http_parse_target("", "/a/b/c/d/e/f", &t), 0);
	assert_int_equal(t.route, ROUTE_OTHER);
	/* malformed: %00 and bad escapes anywhere, even past the route */
	assert_int_equal(http_parse_target("", "/confirm/ab%00cd", &t), -1);
	assert_int_equal(http_parse_target("", "/confirm/ab%zz", &t), -1);
	assert_int_equal(http_parse_target("", "/a/b/c/d/e/%00", &t), -1);
	assert_int_equal(http_parse_target("", "healthz", &t), -1);
	/* %2F does not split; a list with '/' or invalid UTF-8 is no list */
	assert_int_equal(http_parse_target("", "/subscribe/a%2Fb@c.d", &t), 0);
	assert_int_equal(t.route, ROUTE_SUBSCRIBE);
	assert_false(t.args_ok);
	assert_int_equal(http_parse_target("", "/subscribe/%C0%80a@b.c", &t), 0);
	assert_false(t.args_ok); /* overlong NUL */
	assert_int_equal(http_parse_target("", "/subscribe/%ff@b.c", &t), 0);
	assert_false(t.args_ok);
	assert_int_equal(http_parse_target("", "/subscribe/j%C3%BCrgen@b.c", &t), 0);
	assert_true(t.args_ok);
	assert_int_equal(http_parse_target("", "/subscribe/a%0d%0ab@c.d", &t), 0);
	assert_false(t.args_ok);
	/* the request target as it came: "//healthz" is no host name here */
	assert_int_equal(http_parse_request_target("", "//healthz", "", &t), 0);
	assert_int_equal(t.route, ROUTE_OTHER);
	assert_int_equal(http_parse_request_target("", "/healthz?x=/a#b", "/healthz", &t), 0);
	assert_int_equal(t.route, ROUTE_HEALTHZ);
	assert_int_equal(http_parse_request_target("", "http://h/healthz", "/healthz", &t), 0);
	assert_int_equal(t.route, ROUTE_HEALTHZ);
	/* a token past ONECLICK_TOKEN_MAX */
	memset(tok, 'a', sizeof(tok) - 1);
	tok[sizeof(tok) - 1] = '\0';
	{
		char path[sizeof(tok) + 16];

		snprintf(path, sizeof(path), "/confirm/%s", tok);
		assert_int_equal(http_parse_target("", path, &t), 0);
		assert_int_equal(t.route, ROUTE_CONFIRM);
		assert_false(t.args_ok);
	}
}

static void
test_base_prefix(void **state)
{
	char out[2048], url[1100];

	(void)state;
	assert_int_equal(http_base_prefix("https://x.example", out, sizeof(out)), 0);
	assert_string_equal(out, "");
	assert_int_equal(http_base_prefix("https://x.example/lists//", out, sizeof(out)), 0);
	assert_string_equal(out, "/lists");
	/* a path longer than the 255 octets fanmaild kept before */
	memset(url, 'p', sizeof(url) - 1);
	url[sizeof(url) - 1] = '\0';
	memcpy(url, "http://x.example/", 17);
	assert_int_equal(http_base_prefix(url, out, sizeof(out)), 0);
	assert_int_equal(strlen(out), sizeof(url) - 1 - 16);
	assert_int_equal(http_base_prefix(url, out, 100), -1);
}

static int
field(const char *ctype, const char *body, const char *name, char *out, size_t outlen)
{
	return http_form_field(ctype, body, strlen(body), name, out, outlen);
}

#define URLENC "application/x-www-form-urlencoded"
#define MP "multipart/form-data; boundary=XyZ"

static void
test_urlencoded(void **state)
{
	char out[64];

	(void)state;
	assert_int_equal(field(URLENC, "address=a%40b.c&x=1", "address", out, sizeof(out)), 0);
	assert_string_equal(out, "a@b.c");
	assert_int_equal(
	    field(NULL, "List-Unsubscribe=One-Click", "List-Unsubscribe", out, sizeof(out)), 0);
	assert_string_equal(out, "One-Click");
	assert_int_equal(
	    field(URLENC "; charset=UTF-8", "ADDRESS=a+b", "address", out, sizeof(out)), 0);
	assert_string_equal(out, "a b");
	assert_int_equal(field(URLENC, "x=1&&y", "address", out, sizeof(out)), -1);
	assert_int_equal(field(URLENC, "", "address", out, sizeof(out)), -1);
	/* %00 no longer cuts the value short: "a@b.c%00evil" was "a@b.c" */
	assert_int_equal(field(URLENC, "address=a%40b.c%00evil", "address", out, sizeof(out)), -2);
	assert_int_equal(
	    field(NULL, "List-Unsubscribe=One-Click%00x", "List-Unsubscribe", out, sizeof(out)),
	    -2);
	/* twice: which one a proxy saw is anyone's guess */
	assert_int_equal(field(URLENC, "address=a@b.c&address=d@e.f", "address", out, sizeof(out)),
	                 -2);
	/* a bad escape in another field, a raw NUL, another media type */
	assert_int_equal(field(URLENC, "address=a@b.c&x=%zz", "address", out, sizeof(out)), -2);
	assert_int_equal(http_form_field(URLENC, "address=a\0b", 11, "address", out, sizeof(out)),
	                 -2);
	assert_int_equal(
	    field("application/x-www-form-urlencodedX", "address=a", "address", out, sizeof(out)),
	    -2);
	assert_int_equal(field("text/plain", "address=a", "address", out, sizeof(out)), -2);
	/* too long for out */
	assert_int_equal(field(URLENC, "address=0123456789", "address", out, 8), -2);
}

static void
test_multipart(void **state)
{
	char out[64];

	(void)state;
	assert_int_equal(field(MP,
	                       "--XyZ\r\nContent-Disposition: form-data; name=\"address\"\r\n\r\n"
	                       "a@b.c\r\n--XyZ--\r\n",
	                       "address", out, sizeof(out)),
	                 0);
	assert_string_equal(out, "a@b.c");
	/* curl's form: a quoted boundary, a preamble-less body, two parts */
	assert_int_equal(field("multipart/form-data; boundary=\"XyZ\"",
	                       "--XyZ\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\n1\r\n"
	                       "--XyZ\r\ncontent-disposition: form-data; name=List-Unsubscribe\r\n"
	                       "\r\nOne-Click\r\n--XyZ--\r\n",
	                       "List-Unsubscribe", out, sizeof(out)),
	                 0);
	assert_string_equal(out, "One-Click");
	/* a value across lines is the whole value */
	assert_int_equal(field(MP,
	                       "--XyZ\r\nContent-Disposition: form-data; name=\"address\"\r\n\r\n"
	                       "a@b.c\r\nmore\r\n--XyZ--",
	                       "address", out, sizeof(out)),
	                 0);
	assert_string_equal(out, "a@b.c\r\nmore");
	/* the field named only in a filename, or in another part's value */
	assert_int_equal(field(MP,
	                       "--XyZ\r\nContent-Disposition: form-data; name=\"f\"; "
	                       "filename=\"address\"\r\n\r\nevil@b.c\r\n--XyZ--\r\n",
	                       "address", out, sizeof(out)),
	                 -1);
	assert_int_equal(field(MP,
	                       "--XyZ\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\n"
	                       "name=\"address\"\r\n\r\nevil@b.c\r\n--XyZ--\r\n",
	                       "address", out, sizeof(out)),
	                 -1);
	/* no boundary, a different one, unterminated, twice, a NUL */
	assert_int_equal(field("multipart/form-data",
	                       "--XyZ\r\nContent-Disposition: form-data; name=\"address\"\r\n\r\n"
	                       "a@b.c\r\n--XyZ--\r\n",
	                       "address", out, sizeof(out)),
	                 -2);
	assert_int_equal(field("multipart/form-data; boundary=Other",
	                       "--XyZ\r\nContent-Disposition: form-data; name=\"address\"\r\n\r\n"
	                       "a@b.c\r\n--XyZ--\r\n",
	                       "address", out, sizeof(out)),
	                 -2);
	assert_int_equal(field(MP,
	                       "--XyZ\r\nContent-Disposition: form-data; name=\"address\"\r\n\r\n"
	                       "a@b.c",
	                       "address", out, sizeof(out)),
	                 -2);
	assert_int_equal(field(MP,
	                       "--XyZ\r\nContent-Disposition: form-data; name=\"address\"\r\n\r\n"
	                       "a@b.c\r\n--XyZ\r\nContent-Disposition: form-data; "
	                       "name=\"address\"\r\n\r\nd@e.f\r\n--XyZ--\r\n",
	                       "address", out, sizeof(out)),
	                 -2);
	{
		static const char nul[] = "--XyZ\r\nContent-Disposition: form-data; "
		                          "name=\"address\"\r\n\r\na\0b\r\n--XyZ--\r\n";

		assert_int_equal(
		    http_form_field(MP, nul, sizeof(nul) - 1, "address", out, sizeof(out)), -2);
	}
}

static void
test_rate_keys_and_table(void **state)
{
	char k1[HTTP_RATE_KEY_MAX], k2[HTTP_RATE_KEY_MAX];
	static const char zoned[] = "fe80::1234:5678:9abc:def0%averyverylonginterfacename0";
	struct http_rate *r = http_rate_new();

	(void)state;
	assert_non_null(r);
	http_rate_key("2001:db8:1:2:3:4:5:6", k1);
	http_rate_key("2001:db8:1:2:ffff::1", k2);
	assert_string_equal(k1, k2);
	assert_string_equal(k1, "2001:db8:1:2::");
	http_rate_key("::ffff:192.0.2.7", k1);
	assert_string_equal(k1, "192.0.2.7");
	http_rate_key("192.0.2.7", k1);
	assert_string_equal(k1, "192.0.2.7");
	/* An address longer than a slot was stored cut and never found
	 * again: each request took a new slot and was never limited. */
	assert_true(strlen(zoned) > HTTP_RATE_KEY_MAX);
	for (int i = 0; i < 3; i++)
		assert_int_equal(http_rate_hit(r, zoned, 3, 1000), 0);
	assert_int_equal(http_rate_hit(r, zoned, 3, 1010), 50);
	/* others are counted apart; a new minute starts over */
	assert_int_equal(http_rate_hit(r, "192.0.2.7", 3, 1010), 0);
	assert_int_equal(http_rate_hit(r, zoned, 3, 1060), 0);
	/* limit 0: none */
	for (int i = 0; i < 10; i++)
		assert_int_equal(http_rate_hit(r, "192.0.2.8", 0, 1060), 0);
	/* a full table lets new keys pass, and counts the known ones */
	for (int i = 0; i < HTTP_RATE_SLOTS; i++) {
		char ip[32];

		snprintf(ip, sizeof(ip), "10.%d.%d.1", i / 256, i % 256);
		assert_int_equal(http_rate_hit(r, ip, 1, 1070), 0);
	}
	assert_int_equal(http_rate_hit(r, "10.0.0.1", 1, 1070), 50);
	http_rate_free(r);
}

/* Every '&' starts one of the five references, and none of < > " ' is
 * left. */
static void
assert_escaped(const char *s)
{
	for (const char *p = s; *p; p++) {
		assert_null(strchr("<>\"'", *p));
		if (*p == '&')
			assert_true(strncmp(p, "&amp;", 5) == 0 || strncmp(p, "&lt;", 4) == 0 ||
			            strncmp(p, "&gt;", 4) == 0 || strncmp(p, "&quot;", 6) == 0 ||
			            strncmp(p, "&#39;", 5) == 0);
	}
}

static void
test_html_escape(void **state)
{
	struct strbuf b = {0};

	(void)state;
	html_escape(&b, "<a href=\"x\" onclick='y'>&amp;</a>");
	assert_false(b.oom);
	assert_string_equal(b.p,
	                    "&lt;a href=&quot;x&quot; onclick=&#39;y&#39;&gt;&amp;amp;&lt;/a&gt;");
	assert_escaped(b.p);
	strbuf_free(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_pct_decode),  cmocka_unit_test(test_paths_route),
	    cmocka_unit_test(test_base_prefix), cmocka_unit_test(test_urlencoded),
	    cmocka_unit_test(test_multipart),   cmocka_unit_test(test_rate_keys_and_table),
	    cmocka_unit_test(test_html_escape),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
