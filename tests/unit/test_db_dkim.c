/*
 * test_db_dkim.c - the dkim_keys table: add, find, list order, one active
 * key per domain and algorithm, the signer's read of the active keys.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "db/db.h"
#include "db/dkim.h"

struct fixture {
	char dir[64];
	char path[128];
	struct db *db;
};

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	char err[512];

	snprintf(f->dir, sizeof(f->dir), "/tmp/fm-unit-dkim-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/fanmail.db", f->dir);
	f->db = db_open(f->path, DB_OPEN_CREATE, err, sizeof(err));
	if (f->db == NULL)
		fail_msg("db_open: %s", err);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;
	char p[160];

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

static int64_t
add(struct db *db, const char *domain, const char *sel, const char *alg, int active)
{
	struct db_dkim_key k;
	char pem[64];

	memset(&k, 0, sizeof(k));
	snprintf(k.domain, sizeof(k.domain), "%s", domain);
	snprintf(k.selector, sizeof(k.selector), "%s", sel);
	snprintf(k.algorithm, sizeof(k.algorithm), "%s", alg);
	snprintf(k.state, sizeof(k.state), "published");
	snprintf(k.public_key, sizeof(k.public_key), "PUB-%s", sel);
	snprintf(pem, sizeof(pem), "PEM-%s", sel);
	k.bits = strcmp(alg, "rsa") == 0 ? 2048 : 256;
	k.created = 1000;
	assert_int_equal(db_begin(db), 0);
	assert_int_equal(db_dkim_add(db, &k, pem, strlen(pem)), 0);
	if (active)
		assert_int_equal(db_dkim_set_state(db, k.id, "active", 2000), 0);
	assert_int_equal(db_commit(db), 0);
	return k.id;
}

struct seen {
	char text[512];
	int stop_after;
	int n;
};

static int
active_cb(void *arg, const char *selector, const char *algorithm, const char *pem, size_t len)
{
	struct seen *s = arg;
	size_t o = strlen(s->text);

	snprintf(s->text + o, sizeof(s->text) - o, "%s/%s/%.*s;", selector, algorithm, (int)len,
	         pem);
	return ++s->n == s->stop_after;
}

static int
list_cb(void *arg, const struct db_dkim_key *k)
{
	struct seen *s = arg;
	size_t o = strlen(s->text);

	snprintf(s->text + o, sizeof(s->text) - o, "%s:%s:%s;", k->domain, k->selector, k->state);
	return 0;
}

static void
test_one_active_key_per_domain_and_algorithm(void **state)
{
	struct fixture *f = *state;
	struct db_dkim_key k;
	struct seen s = {0};
	int64_t a, b;

	a = add(f->db, "example.org", "a", "rsa", 1);
	add(f->db, "example.org", "ed", "ed25519", 1);
	b = add(f->db, "example.org", "b", "rsa", 0);
	add(f->db, "other.org", "a", "rsa", 1);

	/* the signer's read: rsa first, then ed25519; with the PEM */
	assert_int_equal(db_dkim_active(f->db, "example.org", active_cb, &s), 2);
	assert_string_equal(s.text, "a/rsa/PEM-a;ed/ed25519/PEM-ed;");
	memset(&s, 0, sizeof(s));
	s.stop_after = 1;
	assert_int_equal(db_dkim_active(f->db, "example.org", active_cb, &s), 1);
	assert_string_equal(s.text, "a/rsa/PEM-a;");
	memset(&s, 0, sizeof(s));
	assert_int_equal(db_dkim_active(f->db, "none.org", active_cb, &s), 0);

	/* activating b makes a published; the ed25519 key stays active */
	assert_int_equal(db_begin(f->db), 0);
	assert_int_equal(db_dkim_set_state(f->db, b, "active", 3000), 0);
	assert_int_equal(db_commit(f->db), 0);
	assert_int_equal(db_dkim_find(f->db, "example.org", "a", &k), 0);
	assert_string_equal(k.state, "published");
	assert_int_equal(db_dkim_find(f->db, "example.org", "b", &k), 0);
	assert_string_equal(k.state, "active");
	assert_int_equal(k.activated, 3000);
	assert_string_equal(k.public_key, "PUB-b");
	assert_int_equal(k.bits, 2048);

	/* listing: by domain, then active, published, retired, rsa first */
	assert_int_equal(db_dkim_set_state(f->db, a, "retired", 4000), 0);
	memset(&s, 0, sizeof(s));
	assert_int_equal(db_dkim_list(f->db, NULL, list_cb, &s), 4);
	assert_string_equal(s.text, "example.org:b:active;example.org:ed:active;"
	                            "example.org:a:retired;other.org:a:active;");

	/* the other domain's key of the same selector is its own */
	assert_int_equal(db_dkim_find(f->db, "other.org", "a", &k), 0);
	assert_string_equal(k.state, "active");
}

static void
test_errors(void **state)
{
	struct fixture *f = *state;
	struct db_dkim_key k;
	int64_t a;

	a = add(f->db, "example.org", "a", "rsa", 1);
	memset(&k, 0, sizeof(k));
	snprintf(k.domain, sizeof(k.domain), "example.org");
	snprintf(k.selector, sizeof(k.selector), "a");
	snprintf(k.algorithm, sizeof(k.algorithm), "ed25519");
	snprintf(k.state, sizeof(k.state), "published");
	assert_int_equal(db_dkim_add(f->db, &k, "x", 1), -1);
	assert_int_equal(db_status(f->db), DB_EXISTS);

	/* a second active rsa key is refused by the store itself */
	snprintf(k.selector, sizeof(k.selector), "b");
	snprintf(k.algorithm, sizeof(k.algorithm), "rsa");
	snprintf(k.state, sizeof(k.state), "active");
	assert_int_equal(db_dkim_add(f->db, &k, "x", 1), -1);
	assert_int_not_equal(db_status(f->db), DB_OK);

	/* the schema's checks: lower-case domains, known algorithms */
	snprintf(k.state, sizeof(k.state), "published");
	snprintf(k.domain, sizeof(k.domain), "Example.org");
	assert_int_equal(db_dkim_add(f->db, &k, "x", 1), -1);
	snprintf(k.domain, sizeof(k.domain), "example.org");
	snprintf(k.algorithm, sizeof(k.algorithm), "dsa");
	assert_int_equal(db_dkim_add(f->db, &k, "x", 1), -1);

	assert_int_equal(db_dkim_find(f->db, "example.org", "zz", &k), -1);
	assert_int_equal(db_status(f->db), DB_NOTFOUND);
	assert_int_equal(db_dkim_delete(f->db, a), 0);
	assert_int_equal(db_dkim_delete(f->db, a), -1);
	assert_int_equal(db_status(f->db), DB_NOTFOUND);
	assert_int_equal(db_dkim_set_state(f->db, a, "retired", 1), -1);
	assert_int_equal(db_status(f->db), DB_NOTFOUND);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_one_active_key_per_domain_and_algorithm, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
