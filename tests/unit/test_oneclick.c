/*
 * test_oneclick.c - one-click unsubscribe tokens (lists/oneclick.c) over
 * keys from a real store: round trip, case, every malformed form, forged
 * signatures, unknown and dropped versions, rotation; and the rendering of
 * a personal copy (lists/personal.c): header lines, folding, the long
 * mailto fallback, markers filled per context.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "db/db.h"
#include "db/secrets.h"
#include "lists/oneclick.h"
#include "lists/personal.h"

struct fixture {
	char dir[64];
	char path[128];
	struct db *db;
	struct oneclick_keys k;
};

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	char err[256];

	snprintf(f->dir, sizeof(f->dir), "/tmp/fm-oneclick-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/t.db", f->dir);
	f->db = db_open(f->path, DB_OPEN_CREATE, err, sizeof(err));
	if (f->db == NULL)
		fail_msg("db_open: %s", err);
	assert_int_equal(oneclick_keys_load(f->db, &f->k), 0);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;
	char p[200];

	db_close(f->db);
	unlink(f->path);
	snprintf(p, sizeof(p), "%s-wal", f->path);
	unlink(p);
	snprintf(p, sizeof(p), "%s-shm", f->path);
	unlink(p);
	rmdir(f->dir);
	free(f);
	return 0;
}

static enum oneclick_check
check(const struct oneclick_keys *k, int64_t list, const char *tok, char *key, size_t keylen)
{
	return oneclick_check(k, list, tok, strlen(tok), key, keylen);
}

static void
test_round_trip(void **state)
{
	struct fixture *f = *state;
	char tok[ONECLICK_TOKEN_MAX], key[400];
	const char *addrs[] = {"bob@a.test", "\"odd local\"@b.test", "x@y.z",
	                       "dee.case+tag@example.org"};

	assert_int_equal(f->k.n, 1);
	assert_int_equal(f->k.key[0].version, 1);
	for (size_t i = 0; i < sizeof(addrs) / sizeof(addrs[0]); i++) {
		int n = oneclick_token(&f->k, 7, addrs[i], tok, sizeof(tok));

		assert_true(n > 0);
		assert_int_equal((size_t)n, strlen(tok));
		for (const char *p = tok; *p; p++)
			assert_true(islower((unsigned char)*p) || isdigit((unsigned char)*p) ||
			            *p == '-');
		assert_int_equal(check(&f->k, 7, tok, key, sizeof(key)), ONECLICK_OK);
		assert_string_equal(key, addrs[i]);
		/* Another list: the same token is worth nothing there. */
		assert_int_equal(check(&f->k, 8, tok, key, sizeof(key)), ONECLICK_FORGED);
	}
	/* No room: -1, never a cut token. */
	assert_int_equal(oneclick_token(&f->k, 7, "bob@a.test", tok, 10), -1);
}

static void
test_case_insensitive(void **state)
{
	struct fixture *f = *state;
	char tok[ONECLICK_TOKEN_MAX], key[400];

	assert_true(oneclick_token(&f->k, 3, "bob@a.test", tok, sizeof(tok)) > 0);
	for (char *p = tok; *p; p++)
		*p = (char)toupper((unsigned char)*p);
	assert_int_equal(check(&f->k, 3, tok, key, sizeof(key)), ONECLICK_OK);
	assert_string_equal(key, "bob@a.test");
}

static void
test_malformed(void **state)
{
	struct fixture *f = *state;
	char tok[ONECLICK_TOKEN_MAX], bad[ONECLICK_TOKEN_MAX + 8], key[400];
	const char *d1, *d2;
	const char *forms[] = {
	    "",
	    "-",
	    "--",
	    "1",
	    "1-",
	    "1--aaaaaaaaaaaaaaaa",             /* no address */
	    "-mjqxgzjaojsxi-aaaaaaaaaaaaaaaa", /* no version */
	    "x-mjqxgzjaojsxi-aaaaaaaaaaaaaaaa",
	    "1234567-mjqxgzjaojsxi-aaaaaaaaaaaaaaaa", /* version too long */
	    "1-mjqxgzjaojsxi",                        /* no signature */
	    "1-mjqxgzjaojsxi-aaaa",                   /* signature too short */
	    "1-mjqxgzjaojsxi-aaaaaaaaaaaaaaaaa",      /* too long */
	    "1-mjqxgzjaojsxi-aaaaaaaaaaaaaaa1",       /* not base32 */
	    "1-mjqx!zjaojsxi-aaaaaaaaaaaaaaaa",       /* not base32 */
	    "1-b-aaaaaaaaaaaaaaaa",                   /* leftover bits */
	    "1-mjqxgzjaojsxi-aaaaaaaaaaaaaaa-",
	};

	for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++)
		if (check(&f->k, 1, forms[i], key, sizeof(key)) != ONECLICK_MALFORMED)
			fail_msg("%s: not taken as malformed", forms[i]);
	/* A NUL inside (the length says more than the string). */
	assert_true(oneclick_token(&f->k, 1, "bob@a.test", tok, sizeof(tok)) > 0);
	memcpy(bad, tok, strlen(tok) + 1);
	bad[strlen(tok) - 3] = '\0';
	assert_int_equal(oneclick_check(&f->k, 1, bad, strlen(tok), key, sizeof(key)),
	                 ONECLICK_MALFORMED);
	/* An address that does not fit the caller's buffer. */
	assert_int_equal(check(&f->k, 1, tok, key, 4), ONECLICK_MALFORMED);
	/* The address part with a NUL in it (base32 of "a\0b"). */
	d1 = strchr(tok, '-');
	d2 = strchr(d1 + 1, '-');
	snprintf(bad, sizeof(bad), "1-mead%s", d2);
	assert_int_equal(check(&f->k, 1, bad, key, sizeof(key)), ONECLICK_MALFORMED);
}

static void
test_forged(void **state)
{
	struct fixture *f = *state;
	char tok[ONECLICK_TOKEN_MAX], other[ONECLICK_TOKEN_MAX], bad[ONECLICK_TOKEN_MAX + 8],
	    key[400];
	size_t n;
	const char *sig;

	assert_true(oneclick_token(&f->k, 1, "bob@a.test", tok, sizeof(tok)) > 0);
	n = strlen(tok);
	/* Each signature letter changed. */
	for (size_t i = n - ONECLICK_SIG_LEN; i < n; i++) {
		snprintf(bad, sizeof(bad), "%s", tok);
		bad[i] = bad[i] == 'a' ? 'b' : 'a';
		assert_int_equal(check(&f->k, 1, bad, key, sizeof(key)), ONECLICK_FORGED);
	}
	/* Another member's signature on bob's address. */
	assert_true(oneclick_token(&f->k, 1, "eve@a.test", other, sizeof(other)) > 0);
	sig = strrchr(other, '-');
	snprintf(bad, sizeof(bad), "%.*s%s", (int)(strrchr(tok, '-') - tok), tok, sig);
	assert_int_equal(check(&f->k, 1, bad, key, sizeof(key)), ONECLICK_FORGED);
	/* An unknown version. */
	snprintf(bad, sizeof(bad), "9%s", strchr(tok, '-'));
	assert_int_equal(check(&f->k, 1, bad, key, sizeof(key)), ONECLICK_FORGED);
	/* No keys at all. */
	{
		struct oneclick_keys none;

		memset(&none, 0, sizeof(none));
		assert_int_equal(check(&none, 1, tok, key, sizeof(key)), ONECLICK_FORGED);
		assert_int_equal(oneclick_token(&none, 1, "bob@a.test", other, sizeof(other)), -1);
	}
}

static void
test_rotation(void **state)
{
	struct fixture *f = *state;
	char old[ONECLICK_TOKEN_MAX], new[ONECLICK_TOKEN_MAX], key[400];
	struct oneclick_keys k2, k3;
	int version = 0;
	int64_t n = 0;

	assert_true(oneclick_token(&f->k, 5, "bob@a.test", old, sizeof(old)) > 0);
	assert_int_equal(db_secret_rotate(f->db, "oneclick", 1700000000, &version), 0);
	assert_int_equal(version, 2);
	assert_int_equal(oneclick_keys_load(f->db, &k2), 0);
	assert_int_equal(k2.n, 2);
	assert_int_equal(k2.key[0].version, 2);
	/* New tokens use the new version; old ones still check. */
	assert_true(oneclick_token(&k2, 5, "bob@a.test", new, sizeof(new)) > 0);
	assert_int_equal(strncmp(new, "2-", 2), 0);
	assert_int_equal(strncmp(old, "1-", 2), 0);
	assert_int_equal(check(&k2, 5, old, key, sizeof(key)), ONECLICK_OK);
	assert_int_equal(check(&k2, 5, new, key, sizeof(key)), ONECLICK_OK);
	/* The old keys do not know the new version. */
	assert_int_equal(check(&f->k, 5, new, key, sizeof(key)), ONECLICK_FORGED);
	/* Version 1 dropped: its tokens are forged from then on. */
	assert_int_equal(db_secret_drop_before(f->db, "oneclick", 2, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(oneclick_keys_load(f->db, &k3), 0);
	assert_int_equal(k3.n, 1);
	assert_int_equal(check(&k3, 5, old, key, sizeof(key)), ONECLICK_FORGED);
	assert_int_equal(check(&k3, 5, new, key, sizeof(key)), ONECLICK_OK);
}

static void
test_url(void **state)
{
	char buf[300];

	(void)state;
	assert_int_equal(
	    oneclick_url("https://l.test/x", "dev@lists.test", "1-ab-cd", buf, sizeof(buf)),
	    (int)strlen("https://l.test/x/unsubscribe/dev@lists.test/1-ab-cd"));
	assert_string_equal(buf, "https://l.test/x/unsubscribe/dev@lists.test/1-ab-cd");
	assert_true(oneclick_url("https://l.test", "a b@c", "t", buf, sizeof(buf)) > 0);
	assert_string_equal(buf, "https://l.test/unsubscribe/a%20b@c/t");
	assert_int_equal(oneclick_url("https://l.test", "dev@lists.test", "t", buf, 20), -1);
}

/* --- personal copies --- */

static void
test_personal_headers(void **state)
{
	char url[2048], tok[300], local[70];
	size_t len;
	char *h;

	(void)state;
	h = personal_headers("dev", "lists.test", "https://l.test", "1-abc-def", url, sizeof(url),
	                     &len);
	assert_string_equal(
	    h, "List-Unsubscribe: <https://l.test/unsubscribe/dev@lists.test/1-abc-def>,\r\n"
	       " <mailto:dev-leave+1-abc-def@lists.test>\r\n"
	       "List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n");
	assert_int_equal(len, strlen(h));
	assert_string_equal(url, "https://l.test/unsubscribe/dev@lists.test/1-abc-def");
	free(h);
	/* No HTTP face: the mailto form alone, and not one-click. */
	h = personal_headers("dev", "lists.test", "", "1-abc-def", url, sizeof(url), &len);
	assert_string_equal(h, "List-Unsubscribe: <mailto:dev-leave+1-abc-def@lists.test>\r\n");
	assert_string_equal(url, "");
	free(h);
	/* No token (no key): the plain leave address. */
	h = personal_headers("dev", "lists.test", "https://l.test", NULL, url, sizeof(url), &len);
	assert_string_equal(h, "List-Unsubscribe: <mailto:dev-leave@lists.test>\r\n");
	free(h);
	/* A mailto address over 254 octets: the URL and the plain one. */
	memset(tok, 'a', 250);
	tok[250] = '\0';
	memset(local, 'l', 60);
	local[60] = '\0';
	h = personal_headers(local, "lists.test", "https://l.test", tok, url, sizeof(url), &len);
	assert_non_null(strstr(h, "<mailto:"
	                          "llllllllllllllllllllllllllllllllllllllllllllllllllllllllllll"
	                          "-leave@lists.test>"));
	assert_null(strstr(h, "-leave+"));
	assert_non_null(strstr(h, "List-Unsubscribe-Post"));
	/* No line over 998 octets even with a long URL. */
	for (const char *p = h, *e; *p; p = e + 2) {
		e = strstr(p, "\r\n");
		assert_non_null(e);
		assert_true(e - p <= 998);
	}
	free(h);
	{
		char base[1500];

		snprintf(base, sizeof(base), "https://l.test/");
		memset(base + 15, 'p', 1400);
		base[1415] = '\0';
		h = personal_headers("dev", "lists.test", base, "1-abc-def", url, sizeof(url),
		                     &len);
		for (const char *p = h, *e; *p; p = e + 2) {
			e = strstr(p, "\r\n");
			assert_non_null(e);
			assert_true(e - p <= 998);
		}
		free(h);
	}
}

static void
test_personal_fill(void **state)
{
	char body[256], mk[PERSONAL_MARK_LEN];
	size_t n = 0, len;
	char *out;

	(void)state;
#define ADD(s) (memcpy(body + n, s, strlen(s)), n += strlen(s))
#define MARK(w, q) (personal_marker(mk, w, q), memcpy(body + n, mk, sizeof(mk)), n += sizeof(mk))
	ADD("Subject: x\r\n\r\nYou are ");
	MARK('m', 0);
	ADD(".\r\nLeave=");
	MARK('u', 1);
	ADD("\r\nstray");
	body[n++] = '\0';
	ADD("end\r\n");
	assert_true(personal_has_marker(body, n));
	out = personal_fill(body, n, "H: 1\r\n", 6, "a=b@c.test", "https://l/u?x=1", &len);
	assert_non_null(out);
	assert_int_equal(len, strlen(out));
	assert_string_equal(out, "H: 1\r\nSubject: x\r\n\r\nYou are a=b@c.test.\r\n"
	                         "Leave=https://l/u?x=3D1\r\nstrayend\r\n");
	free(out);
	out = personal_fill("plain", 5, "", 0, "a", "u", &len);
	assert_string_equal(out, "plain");
	assert_false(personal_has_marker("plain", 5));
	free(out);
#undef ADD
#undef MARK
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_case_insensitive, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_malformed, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_forged, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_rotation, setup, teardown),
	    cmocka_unit_test(test_url),
	    cmocka_unit_test(test_personal_headers),
	    cmocka_unit_test(test_personal_fill),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
