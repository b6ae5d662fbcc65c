/*
 * cmd_dkim.c - `fanmail dkim`: DKIM signing keys per domain in the store
 * (db/dkim.h), the DNS records to publish for them, rotation, and a check
 * of what DNS says.
 *
 * Keys are made or read with OpenSSL and kept as unencrypted PKCS#8 PEM
 * (the store is the server's, as its other secrets are); no command
 * prints a private key. The DNS record's p= is the public key: base64 of
 * the SubjectPublicKeyInfo for rsa (RFC 6376 3.6.1), of the raw 32-octet
 * key for ed25519 (RFC 8463 4.2).
 *
 * Rotation without a gap: a new key is added "published" (not signing),
 * its record goes into DNS, `dkim check` says it is there, `dkim activate`
 * makes it sign and the old one "published" (mail already sent still
 * verifies), and some days later `dkim retire` lets the old record go.
 *
 * Records are printed as zone-file text, split into character-strings of
 * at most 255 octets (RFC 1035 3.3, RFC 6376 3.6.2.2: verifiers join them
 * with nothing between); what is said around them are zone-file comments
 * (";"), so that the output can go into a zone as it is.
 */
#include <ares.h>
#include <arpa/nameser.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "admin/cli.h"
#include "db/dkim.h"

#define RSA_BITS_MIN 1024 /* RFC 8301 3.2: verifiers refuse smaller */
#define RSA_BITS_MAX 4096 /* ... and need not take larger */
#define RSA_BITS_DEFAULT 2048
#define IMPORT_MAX (64 * 1024)
#define DOMAINKEY "._domainkey."
#define RECORD_MAX 1200 /* "v=DKIM1; k=rsa; p=" and an RSA-4096 key */

/* ---- names ---- */

/* Checks a dot-separated run of LDH labels (what a DKIM d= or s= may be,
 * in its A-label form) and lower-cases it into out; a final dot goes. */
static int
dns_name(struct cli *cli, const char *what, const char *arg, char *out, size_t outlen)
{
	size_t n = strlen(arg), label = 0;

	if (n > 0 && arg[n - 1] == '.')
		n--;
	if (n == 0)
		return cli_error(cli, EX_DATAERR, "empty %s", what);
	if (n >= outlen)
		return cli_error(cli, EX_DATAERR, "%s '%s' is too long (at most %zu octets)", what,
		                 arg, outlen - 1);
	for (size_t i = 0; i <= n; i++) {
		unsigned char c = i < n ? (unsigned char)arg[i] : '.';

		if (c >= 0x80)
			return cli_error(cli, EX_DATAERR,
			                 "%s '%s': not ASCII; give its A-label (xn--) form", what,
			                 arg);
		if (c == '.') {
			if (label == 0 || label > 63)
				return cli_error(cli, EX_DATAERR,
				                 "%s '%s': each label must have 1 to 63 characters",
				                 what, arg);
			if (arg[i - 1] == '-' || arg[i - label] == '-')
				return cli_error(cli, EX_DATAERR,
				                 "%s '%s': a label may not start or end with '-'",
				                 what, arg);
			label = 0;
		} else if (isalnum(c) || c == '-') {
			label++;
		} else {
			return cli_error(cli, EX_DATAERR,
			                 "%s '%s': only letters, digits, '-' and '.' may be in it",
			                 what, arg);
		}
		if (i < n)
			out[i] = (char)tolower(c);
	}
	out[n] = '\0';
	return 0;
}

static int
domain_arg(struct cli *cli, const char *arg, char out[DB_DOMAIN_MAX + 1])
{
	return dns_name(cli, "domain", arg, out, DB_DOMAIN_MAX + 1);
}

static int
selector_arg(struct cli *cli, const char *arg, const char *domain,
             char out[DB_DKIM_SELECTOR_MAX + 1])
{
	int rc = dns_name(cli, "selector", arg, out, DB_DKIM_SELECTOR_MAX + 1);

	if (rc == 0 && strlen(out) + strlen(DOMAINKEY) + strlen(domain) > 253)
		return cli_error(cli, EX_DATAERR, "%s%s%s is longer than a DNS name may be", out,
		                 DOMAINKEY, domain);
	return rc;
}

/* ---- keys ---- */

static const char *
ssl_error(void)
{
	static char buf[256];
	unsigned long e = ERR_get_error();

	if (e == 0)
		return "unknown OpenSSL error";
	ERR_error_string_n(e, buf, sizeof(buf));
	ERR_clear_error();
	return buf;
}

/* The p= value of key into out: base64 of the SubjectPublicKeyInfo (rsa)
 * or of the raw public key (ed25519). */
static int
public_value(EVP_PKEY *key, const char *algorithm, char *out, size_t outlen)
{
	unsigned char der[1024], *p = der;
	size_t len = sizeof(der);

	if (strcmp(algorithm, "rsa") == 0) {
		int n = i2d_PUBKEY(key, NULL);

		if (n <= 0 || (size_t)n > sizeof(der) || i2d_PUBKEY(key, &p) != n)
			return -1;
		len = (size_t)n;
	} else if (EVP_PKEY_get_raw_public_key(key, der, &len) != 1) {
		return -1;
	}
	if ((len + 2) / 3 * 4 + 1 > outlen)
		return -1;
	EVP_EncodeBlock((unsigned char *)out, der, (int)len);
	return 0;
}

/* key as unencrypted PKCS#8 PEM in *pem (OPENSSL_cleanse and free it). */
static int
private_pem(EVP_PKEY *key, char **pem, size_t *len)
{
	BIO *b = BIO_new(BIO_s_secmem());
	char *data;
	long n;
	int rc = -1;

	if (b == NULL)
		return -1;
	if (PEM_write_bio_PrivateKey(b, key, NULL, NULL, 0, NULL, NULL) == 1 &&
	    (n = BIO_get_mem_data(b, &data)) > 0 && (*pem = malloc((size_t)n)) != NULL) {
		memcpy(*pem, data, (size_t)n);
		*len = (size_t)n;
		rc = 0;
	}
	BIO_free(b);
	return rc;
}

static EVP_PKEY *
generate(const char *algorithm, int bits)
{
	int rsa = strcmp(algorithm, "rsa") == 0;
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_id(rsa ? EVP_PKEY_RSA : EVP_PKEY_ED25519, NULL);
	EVP_PKEY *key = NULL;

	if (ctx == NULL)
		return NULL;
	if (EVP_PKEY_keygen_init(ctx) != 1 ||
	    (rsa && EVP_PKEY_CTX_set_rsa_keygen_bits(ctx, bits) != 1) ||
	    EVP_PKEY_keygen(ctx, &key) != 1)
		key = NULL;
	EVP_PKEY_CTX_free(ctx);
	return key;
}

/* ---- records ---- */

static void
record_value(const struct db_dkim_key *k, char *buf, size_t len)
{
	snprintf(buf, len, "v=DKIM1; k=%s; p=%s", k->algorithm, k->public_key);
}

static void
print_record(struct cli *cli, const struct db_dkim_key *k)
{
	char value[RECORD_MAX];
	size_t n;

	record_value(k, value, sizeof(value));
	n = strlen(value);
	if (cli->json) {
		cli_json_begin_object(cli);
		cli_json_kv_str(cli, "domain", k->domain);
		cli_json_kv_str(cli, "selector", k->selector);
		cli_json_kv_str(cli, "algorithm", k->algorithm);
		cli_json_kv_int(cli, "bits", k->bits);
		cli_json_kv_str(cli, "state", k->state);
		char name[300];

		snprintf(name, sizeof(name), "%s%s%s.", k->selector, DOMAINKEY, k->domain);
		cli_json_kv_str(cli, "name", name);
		cli_json_kv_str(cli, "value", value);
		cli_json_key(cli, "strings");
		cli_json_begin_array(cli);
		for (size_t o = 0; o < n; o += 255)
			cli_json_strn(cli, value + o, n - o > 255 ? 255 : n - o);
		cli_json_end_array(cli);
		cli_json_end_object(cli);
		return;
	}
	fprintf(cli->out, "; %s: %s key %s (%d bits), %s\n", k->domain, k->algorithm, k->selector,
	        k->bits, k->state);
	fprintf(cli->out, "%s%s%s. IN TXT (", k->selector, DOMAINKEY, k->domain);
	for (size_t o = 0; o < n; o += 255)
		fprintf(cli->out, "%s\"%.*s\"", o ? "\n\t" : " ", (int)(n - o > 255 ? 255 : n - o),
		        value + o);
	fputs(" )\n", cli->out);
}

/* ---- finding keys ---- */

struct find_active {
	const char *algorithm;
	struct db_dkim_key key;
	int found;
};

static int
find_active_cb(void *arg, const struct db_dkim_key *k)
{
	struct find_active *f = arg;

	if (strcmp(k->state, "active") == 0 && strcmp(k->algorithm, f->algorithm) == 0) {
		f->key = *k;
		f->found = 1;
		return 1;
	}
	return 0;
}

/* The active key of domain and algorithm into f; -1 on a db error. */
static int
active_of(struct cli *cli, const char *domain, const char *algorithm, struct find_active *f)
{
	memset(f, 0, sizeof(*f));
	f->algorithm = algorithm;
	return db_dkim_list(cli->db, domain, find_active_cb, f) < 0 ? -1 : 0;
}

/* The key named by DOMAIN and --selector SEL into k; an exit code after
 * printing the error. */
static int
named_key(struct cli *cli, const char *darg, const char *sarg, struct db_dkim_key *k)
{
	char domain[DB_DOMAIN_MAX + 1], selector[DB_DKIM_SELECTOR_MAX + 1];
	int rc;

	if (sarg == NULL)
		return cli_usage_error(cli, "--selector SEL is required");
	if ((rc = domain_arg(cli, darg, domain)) != 0 ||
	    (rc = selector_arg(cli, sarg, domain, selector)) != 0)
		return rc;
	if ((rc = cli_open_db(cli)) != 0)
		return rc;
	if (db_dkim_find(cli->db, domain, selector, k) < 0)
		return cli_db_error(cli, NULL);
	return 0;
}

/* ---- adding a key (keygen, import) ---- */

enum activate { ACT_AUTO, ACT_YES, ACT_NO };

static int
activate_mode(struct cli *cli, int yes, int no, enum activate *mode)
{
	if (yes && no)
		return cli_usage_error(cli, "--activate and --no-activate exclude each other");
	*mode = yes ? ACT_YES : no ? ACT_NO : ACT_AUTO;
	return 0;
}

/* Stores key under domain and selector, active by mode, and prints its
 * record and what to do next. */
static int
add_key(struct cli *cli, const char *domain, const char *selector, const char *algorithm,
        EVP_PKEY *key, enum activate mode)
{
	struct db_dkim_key k;
	struct find_active old;
	char *pem = NULL;
	size_t pemlen = 0;
	int rc, activate;

	memset(&k, 0, sizeof(k));
	snprintf(k.domain, sizeof(k.domain), "%s", domain);
	snprintf(k.selector, sizeof(k.selector), "%s", selector);
	snprintf(k.algorithm, sizeof(k.algorithm), "%s", algorithm);
	snprintf(k.state, sizeof(k.state), "published");
	k.bits = EVP_PKEY_get_bits(key);
	k.created = db_now();
	if (public_value(key, algorithm, k.public_key, sizeof(k.public_key)) < 0 ||
	    private_pem(key, &pem, &pemlen) < 0)
		return cli_error(cli, EX_SOFTWARE, "encoding the key: %s", ssl_error());
	if (db_begin(cli->db) < 0) {
		OPENSSL_clear_free(pem, pemlen);
		return cli_db_error(cli, domain);
	}
	rc = active_of(cli, domain, algorithm, &old);
	activate = mode == ACT_YES || (mode == ACT_AUTO && !old.found);
	if (rc == 0)
		rc = db_dkim_add(cli->db, &k, pem, pemlen);
	OPENSSL_clear_free(pem, pemlen);
	if (rc == 0 && activate)
		rc = db_dkim_set_state(cli->db, k.id, "active", k.created);
	if (rc < 0 || db_commit(cli->db) < 0) {
		rc = cli_db_error(cli, NULL);
		db_rollback(cli->db);
		return rc;
	}
	if (activate)
		snprintf(k.state, sizeof(k.state), "active");
	print_record(cli, &k);
	if (cli->json)
		return EX_OK;
	if (activate && old.found)
		fprintf(
		    cli->out,
		    "; active now: fanmail signs %s's mail with it; publish the record at once.\n"
		    "; The old key %s stays published for mail in flight: retire it in a few "
		    "days\n;   fanmail dkim retire %s --selector %s\n",
		    domain, old.key.selector, domain, old.key.selector);
	else if (activate)
		fprintf(
		    cli->out,
		    "; active now: fanmail signs %s's mail with it; publish the record at once "
		    "(until\n; it is in DNS, receivers cannot verify), then: fanmail dkim check "
		    "%s\n",
		    domain, domain);
	else
		fprintf(
		    cli->out,
		    "; not signing yet: publish the record, wait until it is seen (fanmail dkim "
		    "check %s),\n; then: fanmail dkim activate %s --selector %s\n",
		    domain, domain, selector);
	return EX_OK;
}

static int
selector_taken(struct cli *cli, const char *domain, const char *selector, int *taken)
{
	struct db_dkim_key k;

	if (db_dkim_find(cli->db, domain, selector, &k) == 0) {
		*taken = 1;
		return 0;
	}
	*taken = 0;
	return db_status(cli->db) == DB_NOTFOUND ? 0 : -1;
}

/* fmYYYYMM (rsa) or fmYYYYMM-ed (ed25519), with -2, -3 ... when taken. */
static int
default_selector(struct cli *cli, const char *domain, const char *algorithm,
                 char out[DB_DKIM_SELECTOR_MAX + 1])
{
	time_t now = time(NULL);
	struct tm tm;
	char base[32];
	int taken = 1;

	gmtime_r(&now, &tm);
	snprintf(base, sizeof(base), "fm%04d%02d%s", tm.tm_year + 1900, tm.tm_mon + 1,
	         strcmp(algorithm, "rsa") == 0 ? "" : "-ed");
	snprintf(out, DB_DKIM_SELECTOR_MAX + 1, "%s", base);
	for (int i = 2; i < 1000; i++) {
		if (selector_taken(cli, domain, out, &taken) < 0)
			return cli_db_error(cli, domain);
		if (!taken)
			return 0;
		snprintf(out, DB_DKIM_SELECTOR_MAX + 1, "%s-%d", base, i);
	}
	return cli_error(cli, EX_CANTCREAT, "%s: no free selector %s-N; give --selector", domain,
	                 base);
}

static int
algorithm_arg(struct cli *cli, const char *arg, const char **out)
{
	if (arg == NULL || strcasecmp(arg, "rsa") == 0)
		*out = "rsa";
	else if (strcasecmp(arg, "ed25519") == 0)
		*out = "ed25519";
	else
		return cli_error(cli, EX_DATAERR, "--algorithm %s: there is rsa and ed25519", arg);
	return 0;
}

static int
cmd_dkim_keygen(struct cli *cli, int argc, char **argv)
{
	const char *sel = NULL, *alg = NULL, *bits_arg = NULL, *algorithm = "rsa";
	char domain[DB_DOMAIN_MAX + 1], selector[DB_DKIM_SELECTOR_MAX + 1];
	int yes = 0, no = 0, bits = RSA_BITS_DEFAULT, n, rc, taken;
	enum activate mode = ACT_AUTO;
	EVP_PKEY *key;
	const struct cli_opt opts[] = {
	    {"selector", 's', CLI_OPT_STR, &sel},  {"algorithm", 'a', CLI_OPT_STR, &alg},
	    {"bits", 'b', CLI_OPT_STR, &bits_arg}, {"activate", 0, CLI_OPT_FLAG, &yes},
	    {"no-activate", 0, CLI_OPT_FLAG, &no}, {0},
	};

	if ((n = cli_parse(cli, argc, argv, opts)) < 0)
		return EX_USAGE;
	if ((rc = cli_nargs(cli, n, 1, 1)) != 0 || (rc = activate_mode(cli, yes, no, &mode)) != 0)
		return rc;
	if ((rc = algorithm_arg(cli, alg, &algorithm)) != 0 ||
	    (rc = domain_arg(cli, argv[0], domain)) != 0)
		return rc;
	if (bits_arg != NULL) {
		char *end;
		long b;

		if (strcmp(algorithm, "rsa") != 0)
			return cli_error(cli, EX_DATAERR,
			                 "--bits is for rsa keys (ed25519 has one size)");
		errno = 0;
		b = strtol(bits_arg, &end, 10);
		if (errno != 0 || end == bits_arg || *end != '\0' || b < RSA_BITS_MIN ||
		    b > RSA_BITS_MAX)
			return cli_error(cli, EX_DATAERR,
			                 "--bits %s: an rsa key has %d to %d bits (RFC 8301)",
			                 bits_arg, RSA_BITS_MIN, RSA_BITS_MAX);
		bits = (int)b;
	}
	if (sel != NULL && (rc = selector_arg(cli, sel, domain, selector)) != 0)
		return rc;
	if ((rc = cli_open_db(cli)) != 0)
		return rc;
	if (sel == NULL) {
		if ((rc = default_selector(cli, domain, algorithm, selector)) != 0)
			return rc;
	} else {
		/* Told before the (slow) key generation, not after. */
		if (selector_taken(cli, domain, selector, &taken) < 0)
			return cli_db_error(cli, domain);
		if (taken)
			return cli_error(cli, EX_CANTCREAT, "%s has a key with selector %s already",
			                 domain, selector);
	}
	if ((key = generate(algorithm, bits)) == NULL)
		return cli_error(cli, EX_SOFTWARE, "generating a key: %s", ssl_error());
	rc = add_key(cli, domain, selector, algorithm, key, mode);
	EVP_PKEY_free(key);
	return rc;
}

/* Reads all of fd (at most IMPORT_MAX octets) into buf; its length or -1. */
static long
read_all(int fd, char *buf, size_t len)
{
	size_t n = 0;

	while (n < len) {
		ssize_t r = read(fd, buf + n, len - n);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -1;
		if (r == 0)
			return (long)n;
		n += (size_t)r;
	}
	return -1; /* too long for a key */
}

/* The passphrase callback: an encrypted key is refused, not prompted for
 * (the server could not use it either). */
static int
no_passphrase(char *buf, int size, int rwflag, void *arg)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	*(int *)arg = 1;
	return -1;
}

static int
cmd_dkim_import(struct cli *cli, int argc, char **argv)
{
	const char *sel = NULL, *file, *algorithm = NULL;
	char domain[DB_DOMAIN_MAX + 1], selector[DB_DKIM_SELECTOR_MAX + 1];
	int yes = 0, no = 0, n, rc, fd, encrypted = 0, taken;
	enum activate mode = ACT_AUTO;
	struct stat st;
	char *buf;
	long len;
	BIO *bio;
	EVP_PKEY *key;
	const struct cli_opt opts[] = {
	    {"selector", 's', CLI_OPT_STR, &sel},
	    {"activate", 0, CLI_OPT_FLAG, &yes},
	    {"no-activate", 0, CLI_OPT_FLAG, &no},
	    {0},
	};

	if ((n = cli_parse(cli, argc, argv, opts)) < 0)
		return EX_USAGE;
	if ((rc = cli_nargs(cli, n, 2, 2)) != 0 || (rc = activate_mode(cli, yes, no, &mode)) != 0)
		return rc;
	if (sel == NULL)
		return cli_usage_error(cli, "--selector SEL is required");
	if ((rc = domain_arg(cli, argv[0], domain)) != 0 ||
	    (rc = selector_arg(cli, sel, domain, selector)) != 0)
		return rc;
	file = argv[1];
	if (strcmp(file, "-") == 0) {
		fd = 0;
	} else if ((fd = open(file, O_RDONLY | O_CLOEXEC)) < 0) {
		return cli_error(cli, EX_NOINPUT, "%s: %s", file, strerror(errno));
	} else if (fstat(fd, &st) == 0 && (st.st_mode & (S_IRGRP | S_IROTH)) != 0) {
		fprintf(stderr,
		        "fanmail dkim import: warning: %s is readable by %s (mode %04o): a private "
		        "key should be readable by its owner only; fanmail keeps its own copy, so "
		        "consider removing this file\n",
		        file, (st.st_mode & S_IROTH) ? "everyone" : "its group",
		        (unsigned)(st.st_mode & 07777));
	}
	if ((buf = OPENSSL_malloc(IMPORT_MAX)) == NULL)
		return cli_error(cli, EX_SOFTWARE, "out of memory");
	errno = 0;
	len = read_all(fd, buf, IMPORT_MAX);
	if (fd != 0)
		close(fd);
	if (len < 0) {
		OPENSSL_clear_free(buf, IMPORT_MAX);
		return cli_error(cli, EX_DATAERR, "%s: %s", file,
		                 errno ? strerror(errno) : "too long for a private key");
	}
	bio = BIO_new_mem_buf(buf, (int)len);
	key = bio ? PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, &encrypted) : NULL;
	BIO_free(bio);
	OPENSSL_clear_free(buf, IMPORT_MAX);
	ERR_clear_error();
	if (key == NULL)
		return cli_error(cli, EX_DATAERR, "%s: %s", file,
		                 encrypted ? "the key is encrypted; decrypt it first (openssl pkey)"
		                           : "not a PEM private key (PKCS#1 or PKCS#8, rsa or "
		                             "ed25519)");
	rc = EX_OK;
	switch (EVP_PKEY_get_base_id(key)) {
	case EVP_PKEY_RSA:
		algorithm = "rsa";
		if (EVP_PKEY_get_bits(key) < RSA_BITS_MIN || EVP_PKEY_get_bits(key) > RSA_BITS_MAX)
			rc =
			    cli_error(cli, EX_DATAERR,
			              "%s: an rsa key of %d bits; DKIM needs %d to %d (RFC 8301)%s",
			              file, EVP_PKEY_get_bits(key), RSA_BITS_MIN, RSA_BITS_MAX,
			              EVP_PKEY_get_bits(key) < RSA_BITS_MIN ? ": too weak" : "");
		break;
	case EVP_PKEY_ED25519:
		algorithm = "ed25519";
		break;
	default:
		algorithm = NULL;
		rc = cli_error(
		    cli, EX_DATAERR, "%s: a %s key; DKIM signs with rsa or ed25519", file,
		    EVP_PKEY_get0_type_name(key) ? EVP_PKEY_get0_type_name(key) : "other");
		break;
	}
	if (rc == EX_OK) {
		EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(key, NULL);

		if (ctx == NULL || EVP_PKEY_check(ctx) != 1)
			rc = cli_error(cli, EX_DATAERR, "%s: the key is not consistent: %s", file,
			               ssl_error());
		EVP_PKEY_CTX_free(ctx);
	}
	if (rc == EX_OK && (rc = cli_open_db(cli)) == 0) {
		if (selector_taken(cli, domain, selector, &taken) < 0)
			rc = cli_db_error(cli, domain);
		else if (taken)
			rc = cli_error(cli, EX_CANTCREAT, "%s has a key with selector %s already",
			               domain, selector);
		else
			rc = add_key(cli, domain, selector, algorithm, key, mode);
	}
	EVP_PKEY_free(key);
	return rc;
}

/* ---- show, ls ---- */

struct show {
	struct cli *cli;
	int n;
};

static int
show_cb(void *arg, const struct db_dkim_key *k)
{
	struct show *s = arg;

	if (strcmp(k->state, "retired") == 0)
		return 0;
	print_record(s->cli, k);
	s->n++;
	return 0;
}

static int
cmd_dkim_show(struct cli *cli, int argc, char **argv)
{
	const char *sel = NULL;
	char domain[DB_DOMAIN_MAX + 1];
	struct db_dkim_key k;
	struct show s = {.cli = cli};
	int n, rc;
	const struct cli_opt opts[] = {
	    {"selector", 's', CLI_OPT_STR, &sel},
	    {0},
	};

	if ((n = cli_parse(cli, argc, argv, opts)) < 0)
		return EX_USAGE;
	if ((rc = cli_nargs(cli, n, 1, 1)) != 0)
		return rc;
	if (sel != NULL) {
		if ((rc = named_key(cli, argv[0], sel, &k)) != 0)
			return rc;
		if (cli->json)
			cli_json_begin_array(cli);
		print_record(cli, &k);
		if (cli->json)
			cli_json_end_array(cli);
		else if (strcmp(k.state, "retired") == 0)
			fprintf(cli->out, "; retired: this record may leave DNS\n");
		return EX_OK;
	}
	if ((rc = domain_arg(cli, argv[0], domain)) != 0 || (rc = cli_open_db(cli)) != 0)
		return rc;
	if (cli->json)
		cli_json_begin_array(cli);
	if (db_dkim_list(cli->db, domain, show_cb, &s) < 0)
		return cli_db_error(cli, domain);
	if (cli->json)
		cli_json_end_array(cli);
	if (s.n == 0)
		return cli_error(cli, EX_NOINPUT,
		                 "%s has no DKIM key in DNS (fanmail dkim keygen %s)", domain,
		                 domain);
	return EX_OK;
}

static int
ls_cb(void *arg, const struct db_dkim_key *k)
{
	struct cli *cli = arg;
	char created[32], activated[32];

	cli_time(k->created, created, sizeof(created));
	if (k->activated > 0)
		cli_time(k->activated, activated, sizeof(activated));
	else
		snprintf(activated, sizeof(activated), "-");
	if (cli->json) {
		cli_json_begin_object(cli);
		cli_json_kv_str(cli, "domain", k->domain);
		cli_json_kv_str(cli, "selector", k->selector);
		cli_json_kv_str(cli, "algorithm", k->algorithm);
		cli_json_kv_int(cli, "bits", k->bits);
		cli_json_kv_str(cli, "state", k->state);
		cli_json_kv_str(cli, "created", created);
		if (k->activated > 0)
			cli_json_kv_str(cli, "activated", activated);
		else
			cli_json_kv_str(cli, "activated", NULL);
		cli_json_end_object(cli);
	} else {
		fprintf(cli->out, "%s\t%s\t%s\t%d\t%s\t%s\n", k->domain, k->selector, k->algorithm,
		        k->bits, k->state, created);
	}
	return 0;
}

static int
cmd_dkim_ls(struct cli *cli, int argc, char **argv)
{
	char domain[DB_DOMAIN_MAX + 1];
	int n, rc;

	if ((n = cli_parse(cli, argc, argv, NULL)) < 0)
		return EX_USAGE;
	if ((rc = cli_nargs(cli, n, 0, 1)) != 0)
		return rc;
	if (n == 1 && (rc = domain_arg(cli, argv[0], domain)) != 0)
		return rc;
	if ((rc = cli_open_db(cli)) != 0)
		return rc;
	if (cli->json)
		cli_json_begin_array(cli);
	if (db_dkim_list(cli->db, n == 1 ? domain : NULL, ls_cb, cli) < 0)
		return cli_db_error(cli, "dkim ls");
	if (cli->json)
		cli_json_end_array(cli);
	return EX_OK;
}

/* ---- rotation ---- */

static int
set_state(struct cli *cli, const struct db_dkim_key *k, const char *state)
{
	int rc;

	if (db_begin(cli->db) < 0)
		return cli_db_error(cli, k->domain);
	if (db_dkim_set_state(cli->db, k->id, state, db_now()) < 0 || db_commit(cli->db) < 0) {
		rc = cli_db_error(cli, k->domain);
		db_rollback(cli->db);
		return rc;
	}
	return 0;
}

static int
cmd_dkim_activate(struct cli *cli, int argc, char **argv)
{
	const char *sel = NULL;
	struct db_dkim_key k;
	struct find_active old;
	int n, rc;
	const struct cli_opt opts[] = {
	    {"selector", 's', CLI_OPT_STR, &sel},
	    {0},
	};

	if ((n = cli_parse(cli, argc, argv, opts)) < 0)
		return EX_USAGE;
	if ((rc = cli_nargs(cli, n, 1, 1)) != 0 || (rc = named_key(cli, argv[0], sel, &k)) != 0)
		return rc;
	if (strcmp(k.state, "active") == 0) {
		fprintf(cli->out, "%s: %s key %s is active already\n", k.domain, k.algorithm,
		        k.selector);
		return EX_OK;
	}
	if (active_of(cli, k.domain, k.algorithm, &old) < 0)
		return cli_db_error(cli, k.domain);
	if ((rc = set_state(cli, &k, "active")) != 0)
		return rc;
	fprintf(cli->out, "%s: %s key %s is active: fanmail signs with it from now on\n", k.domain,
	        k.algorithm, k.selector);
	if (strcmp(k.state, "retired") == 0)
		fprintf(
		    cli->out,
		    "it was retired: make sure its record is in DNS again (fanmail dkim check %s "
		    "--selector %s)\n",
		    k.domain, k.selector);
	if (old.found)
		fprintf(
		    cli->out,
		    "%s stays published for mail in flight; retire it in a few days: fanmail dkim "
		    "retire %s --selector %s\n",
		    old.key.selector, k.domain, old.key.selector);
	return EX_OK;
}

static int
cmd_dkim_retire(struct cli *cli, int argc, char **argv)
{
	const char *sel = NULL;
	struct db_dkim_key k;
	int n, rc;
	const struct cli_opt opts[] = {
	    {"selector", 's', CLI_OPT_STR, &sel},
	    {0},
	};

	if ((n = cli_parse(cli, argc, argv, opts)) < 0)
		return EX_USAGE;
	if ((rc = cli_nargs(cli, n, 1, 1)) != 0 || (rc = named_key(cli, argv[0], sel, &k)) != 0)
		return rc;
	if (strcmp(k.state, "retired") == 0) {
		fprintf(cli->out, "%s: %s is retired already\n", k.domain, k.selector);
		return EX_OK;
	}
	if ((rc = set_state(cli, &k, "retired")) != 0)
		return rc;
	fprintf(cli->out,
	        "%s: %s is retired; its record %s%s%s can leave DNS in a few days, once mail "
	        "signed with it has been delivered\n",
	        k.domain, k.selector, k.selector, DOMAINKEY, k.domain);
	if (strcmp(k.state, "active") == 0)
		fprintf(cli->out,
		        "%s has no active %s key now: its mail is no longer signed with %s\n",
		        k.domain, k.algorithm, k.algorithm);
	return EX_OK;
}

static int
cmd_dkim_delete(struct cli *cli, int argc, char **argv)
{
	const char *sel = NULL;
	struct db_dkim_key k;
	int yes = 0, n, rc;
	const struct cli_opt opts[] = {
	    {"selector", 's', CLI_OPT_STR, &sel},
	    {"yes", 'y', CLI_OPT_FLAG, &yes},
	    {0},
	};

	if ((n = cli_parse(cli, argc, argv, opts)) < 0)
		return EX_USAGE;
	if ((rc = cli_nargs(cli, n, 1, 1)) != 0)
		return rc;
	if (!yes)
		return cli_usage_error(cli, "deleting a key cannot be undone: add --yes");
	if ((rc = named_key(cli, argv[0], sel, &k)) != 0)
		return rc;
	if (db_dkim_delete(cli->db, k.id) < 0)
		return cli_db_error(cli, k.domain);
	fprintf(cli->out, "%s: key %s deleted\n", k.domain, k.selector);
	if (strcmp(k.state, "retired") != 0)
		fprintf(cli->out, "it was %s: remove %s%s%s from DNS in a few days\n", k.state,
		        k.selector, DOMAINKEY, k.domain);
	if (strcmp(k.state, "active") == 0)
		fprintf(cli->out,
		        "%s has no active %s key now: its mail is no longer signed with %s\n",
		        k.domain, k.algorithm, k.algorithm);
	return EX_OK;
}

/* ---- check ---- */

/* What DNS holds at one name: the TXT records, each its strings joined. */
struct txt_answer {
	int done;
	int status;
	int nrec;
	char rec[4][RECORD_MAX * 2];
	int toolong;
};

static void
on_txt(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
	struct txt_answer *a = arg;
	struct ares_txt_ext *txt = NULL;

	(void)timeouts;
	a->done = 1;
	a->status = status;
	if (status != ARES_SUCCESS)
		return;
	if ((a->status = ares_parse_txt_reply_ext(abuf, alen, &txt)) != ARES_SUCCESS)
		return;
	size_t o = 0;
	for (struct ares_txt_ext *t = txt; t != NULL; t = t->next) {
		if (t->record_start) {
			if (a->nrec >= 4) {
				a->toolong = 1;
				break;
			}
			a->nrec++;
			o = 0;
		}
		if (a->nrec == 0)
			continue;
		char *r = a->rec[a->nrec - 1];
		if (o + t->length + 1 > sizeof(a->rec[0])) {
			a->toolong = 1;
			continue;
		}
		/* A NUL inside a string would cut it short: shown as a '?'
		 * so that the comparison fails, as it must. */
		for (size_t i = 0; i < t->length; i++)
			r[o++] = t->txt[i] ? (char)t->txt[i] : '?';
		r[o] = '\0';
	}
	ares_free_data(txt);
}

/* Runs the channel until a->done; c-ares bounds it by timeout x tries. */
static void
wait_txt(ares_channel ch, struct txt_answer *a)
{
	while (!a->done) {
		ares_socket_t socks[ARES_GETSOCK_MAXNUM];
		struct pollfd pfd[ARES_GETSOCK_MAXNUM];
		struct timeval tv, *tvp;
		int bits = ares_getsock(ch, socks, ARES_GETSOCK_MAXNUM), n = 0, ms;

		for (int i = 0; i < ARES_GETSOCK_MAXNUM; i++) {
			unsigned rd = ((unsigned)bits >> i) & 1u;
			unsigned wr = ((unsigned)bits >> (i + ARES_GETSOCK_MAXNUM)) & 1u;

			if (!rd && !wr)
				continue;
			pfd[n].fd = socks[i];
			pfd[n].events = (short)((rd ? POLLIN : 0) | (wr ? POLLOUT : 0));
			pfd[n].revents = 0;
			n++;
		}
		tvp = ares_timeout(ch, NULL, &tv);
		ms = tvp ? (int)(tvp->tv_sec * 1000 + tvp->tv_usec / 1000) : 1000;
		if (poll(pfd, (nfds_t)n, ms) <= 0) {
			ares_process_fd(ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
			continue;
		}
		for (int i = 0; i < n; i++)
			ares_process_fd(ch,
			                (pfd[i].revents & (POLLIN | POLLERR | POLLHUP))
			                    ? pfd[i].fd
			                    : ARES_SOCKET_BAD,
			                (pfd[i].revents & POLLOUT) ? pfd[i].fd : ARES_SOCKET_BAD);
	}
}

/* One tag=value of a DKIM key record (RFC 6376 3.2, 3.6.1). */
struct tag {
	char name[16];
	char value[RECORD_MAX * 2];
};

static void
trim(char *s)
{
	size_t n = strlen(s), i = 0;

	while (n > 0 && isspace((unsigned char)s[n - 1]))
		s[--n] = '\0';
	while (isspace((unsigned char)s[i]))
		i++;
	memmove(s, s + i, n - i + 1);
}

/* Splits rec into tags; -1 with why on a syntax error. */
static int
parse_tags(const char *rec, struct tag *tags, int max, int *ntags, const char **why)
{
	const char *p = rec;

	*ntags = 0;
	while (*p) {
		const char *end = strchr(p, ';'), *eq;
		size_t len = end ? (size_t)(end - p) : strlen(p);
		char spec[RECORD_MAX * 2];

		if (len >= sizeof(spec)) {
			*why = "a tag is too long";
			return -1;
		}
		memcpy(spec, p, len);
		spec[len] = '\0';
		p = end ? end + 1 : p + len;
		trim(spec);
		if (spec[0] == '\0') {
			if (end == NULL || *p == '\0')
				break; /* a final ';' */
			*why = "an empty tag";
			return -1;
		}
		if ((eq = strchr(spec, '=')) == NULL) {
			*why = "a tag without '='";
			return -1;
		}
		if (*ntags >= max) {
			*why = "too many tags";
			return -1;
		}
		struct tag *t = &tags[(*ntags)++];
		size_t nl = (size_t)(eq - spec);
		if (nl >= sizeof(t->name)) {
			*why = "a tag name is too long";
			return -1;
		}
		memcpy(t->name, spec, nl);
		t->name[nl] = '\0';
		trim(t->name);
		snprintf(t->value, sizeof(t->value), "%s", eq + 1);
		trim(t->value);
		for (int i = 0; i < *ntags - 1; i++)
			if (strcmp(tags[i].name, t->name) == 0) {
				*why = "a tag appears twice";
				return -1;
			}
	}
	return 0;
}

static const char *
tag_of(const struct tag *tags, int n, const char *name)
{
	for (int i = 0; i < n; i++)
		if (strcmp(tags[i].name, name) == 0)
			return tags[i].value;
	return NULL;
}

/* Whether the colon-separated list has item (case-insensitive). */
static int
has_item(const char *list, const char *item)
{
	size_t n = strlen(item);

	for (const char *p = list; *p;) {
		while (*p == ':' || isspace((unsigned char)*p))
			p++;
		const char *e = p;
		while (*e && *e != ':' && !isspace((unsigned char)*e))
			e++;
		if ((size_t)(e - p) == n && strncasecmp(p, item, n) == 0)
			return 1;
		p = e;
	}
	return 0;
}

enum verdict { V_MATCH, V_TESTING, V_DIFFERS, V_MISSING, V_FAILED };
static const char *const verdict_names[] = {"matches", "testing", "differs", "missing",
                                            "lookup failed"};

/* Compares the record rec with key k; what differs into why. */
static enum verdict
compare(const struct db_dkim_key *k, const char *rec, char *why, size_t len)
{
	struct tag tags[16];
	int n;
	const char *err, *v, *kk, *p, *t, *h, *s;
	char pv[RECORD_MAX * 2];
	size_t o = 0;

	if (parse_tags(rec, tags, 16, &n, &err) < 0) {
		snprintf(why, len, "not a DKIM key record: %s", err);
		return V_DIFFERS;
	}
	v = tag_of(tags, n, "v");
	if (v != NULL && (strcmp(tags[0].name, "v") != 0 || strcmp(v, "DKIM1") != 0)) {
		snprintf(why, len, "v= must be DKIM1 and come first");
		return V_DIFFERS;
	}
	kk = tag_of(tags, n, "k");
	if (kk == NULL)
		kk = "rsa";
	if (strcasecmp(kk, k->algorithm) != 0) {
		snprintf(why, len, "k=%s in DNS, the key is %s", kk, k->algorithm);
		return V_DIFFERS;
	}
	if ((p = tag_of(tags, n, "p")) == NULL) {
		snprintf(why, len, "the record has no p=");
		return V_DIFFERS;
	}
	for (; *p && o + 1 < sizeof(pv); p++)
		if (!isspace((unsigned char)*p))
			pv[o++] = *p;
	pv[o] = '\0';
	if (pv[0] == '\0') {
		snprintf(why, len, "p= is empty: the key is revoked in DNS");
		return V_DIFFERS;
	}
	if (strcmp(pv, k->public_key) != 0) {
		snprintf(why, len, "p= is another public key");
		return V_DIFFERS;
	}
	if ((h = tag_of(tags, n, "h")) != NULL && !has_item(h, "sha256")) {
		snprintf(why, len, "h=%s leaves out sha256, which fanmail signs with", h);
		return V_DIFFERS;
	}
	if ((s = tag_of(tags, n, "s")) != NULL && !has_item(s, "email") && !has_item(s, "*")) {
		snprintf(why, len, "s=%s does not allow email", s);
		return V_DIFFERS;
	}
	if ((t = tag_of(tags, n, "t")) != NULL && has_item(t, "y")) {
		snprintf(
		    why, len,
		    "the record matches but says t=y: receivers may treat the mail as unsigned");
		return V_TESTING;
	}
	why[0] = '\0';
	return V_MATCH;
}

struct check {
	struct cli *cli;
	ares_channel ch;
	const char *selector; /* --selector, or NULL: every key in DNS */
	int differs, failed, n;
};

static int
check_cb(void *arg, const struct db_dkim_key *k)
{
	struct check *c = arg;
	struct txt_answer a;
	char name[300], why[256] = "";
	enum verdict v = V_MISSING;
	int retired = strcmp(k->state, "retired") == 0;

	if (c->selector != NULL ? strcmp(k->selector, c->selector) != 0 : retired)
		return 0;
	c->n++;
	memset(&a, 0, sizeof(a));
	snprintf(name, sizeof(name), "%s%s%s", k->selector, DOMAINKEY, k->domain);
	ares_query(c->ch, name, ns_c_in, ns_t_txt, on_txt, &a);
	wait_txt(c->ch, &a);
	if (a.status == ARES_ENOTFOUND || a.status == ARES_ENODATA) {
		snprintf(why, sizeof(why), "no TXT record at %s", name);
	} else if (a.status != ARES_SUCCESS) {
		v = V_FAILED;
		snprintf(why, sizeof(why), "%s", ares_strerror(a.status));
	} else if (a.toolong) {
		v = V_DIFFERS;
		snprintf(why, sizeof(why), "the TXT records at %s are too many or too long", name);
	} else if (a.nrec > 1) {
		v = V_DIFFERS;
		snprintf(why, sizeof(why), "%d TXT records at %s: verifiers may pick any", a.nrec,
		         name);
	} else if (a.nrec == 0) {
		snprintf(why, sizeof(why), "no TXT record at %s", name);
	} else {
		v = compare(k, a.rec[0], why, sizeof(why));
	}
	if (retired) {
		/* A retired key may be in DNS or not; neither is wrong. */
		snprintf(
		    why, sizeof(why), "%s",
		    v == V_MATCH || v == V_TESTING
		        ? "retired, still in DNS (the record may go once its mail is delivered)"
		    : v == V_FAILED ? why
		                    : "retired, not in DNS (as it may be)");
	} else if (v == V_FAILED) {
		c->failed++;
	} else if (v == V_DIFFERS || v == V_MISSING) {
		c->differs++;
	}
	if (c->cli->json) {
		cli_json_begin_object(c->cli);
		cli_json_kv_str(c->cli, "domain", k->domain);
		cli_json_kv_str(c->cli, "selector", k->selector);
		cli_json_kv_str(c->cli, "algorithm", k->algorithm);
		cli_json_kv_str(c->cli, "state", k->state);
		cli_json_kv_str(c->cli, "name", name);
		cli_json_kv_str(c->cli, "result", verdict_names[v]);
		cli_json_kv_str(c->cli, "detail", why);
		cli_json_end_object(c->cli);
	} else {
		fprintf(c->cli->out, "%s (%s, %s): %s%s%s\n", name, k->algorithm, k->state,
		        verdict_names[v], why[0] ? ": " : "", why);
	}
	return 0;
}

/* A c-ares channel on the server's dns_servers, else the system's. */
static int
open_resolver(struct cli *cli, ares_channel *ch)
{
	struct ares_options opt;
	int rc;

	if ((rc = ares_library_init(ARES_LIB_INIT_ALL)) != ARES_SUCCESS)
		return cli_error(cli, EX_SOFTWARE, "c-ares: %s", ares_strerror(rc));
	memset(&opt, 0, sizeof(opt));
	opt.timeout = 2000; /* ms, per try */
	opt.tries = 2;
	if ((rc = ares_init_options(ch, &opt, ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES)) != ARES_SUCCESS)
		return cli_error(cli, EX_SOFTWARE, "c-ares: %s", ares_strerror(rc));
	if (cli->conf.dns_servers != NULL && *cli->conf.dns_servers) {
		char csv[1024] = "";
		const char *cur = cli->conf.dns_servers, *item;
		size_t n, o = 0;

		while ((item = conf_list_next(&cur, &n)) != NULL && o + n + 2 < sizeof(csv)) {
			if (o)
				csv[o++] = ',';
			memcpy(csv + o, item, n);
			o += n;
			csv[o] = '\0';
		}
		if ((rc = ares_set_servers_ports_csv(*ch, csv)) != ARES_SUCCESS) {
			ares_destroy(*ch);
			return cli_error(cli, EX_CONFIG, "dns_servers = %s: %s",
			                 cli->conf.dns_servers, ares_strerror(rc));
		}
	}
	return 0;
}

static int
cmd_dkim_check(struct cli *cli, int argc, char **argv)
{
	const char *sel = NULL;
	char domain[DB_DOMAIN_MAX + 1], selector[DB_DKIM_SELECTOR_MAX + 1];
	struct check c = {.cli = cli};
	int n, rc;
	const struct cli_opt opts[] = {
	    {"selector", 's', CLI_OPT_STR, &sel},
	    {0},
	};

	if ((n = cli_parse(cli, argc, argv, opts)) < 0)
		return EX_USAGE;
	if ((rc = cli_nargs(cli, n, 1, 1)) != 0 || (rc = domain_arg(cli, argv[0], domain)) != 0)
		return rc;
	if (sel != NULL) {
		struct db_dkim_key k;

		if ((rc = named_key(cli, domain, sel, &k)) != 0)
			return rc;
		snprintf(selector, sizeof(selector), "%s", k.selector);
		c.selector = selector;
	} else if ((rc = cli_open_db(cli)) != 0) {
		return rc;
	}
	if ((rc = open_resolver(cli, &c.ch)) != 0)
		return rc;
	if (cli->json)
		cli_json_begin_array(cli);
	rc = db_dkim_list(cli->db, domain, check_cb, &c);
	if (cli->json && rc >= 0)
		cli_json_end_array(cli);
	ares_destroy(c.ch);
	ares_library_cleanup();
	if (rc < 0)
		return cli_db_error(cli, domain);
	if (c.n == 0)
		return cli_error(cli, EX_NOINPUT, "%s has no DKIM key in DNS to check", domain);
	if (c.differs > 0)
		return 1;
	if (c.failed > 0)
		return cli_error(cli, EX_UNAVAILABLE, "%d look-up%s failed: nothing said about %s",
		                 c.failed, c.failed == 1 ? "" : "s", c.failed == 1 ? "it" : "them");
	return EX_OK;
}

static const struct cli_cmd dkim_cmds[] = {
    {"keygen", cmd_dkim_keygen, CLI_JSON,
     "DOMAIN [--selector SEL] [--algorithm rsa|ed25519] [--bits N] [--activate|--no-activate]",
     "Makes a DKIM key for DOMAIN (rsa of 1024 to 4096 bits, 2048 unless told; or ed25519)\n"
     "and prints the TXT record to publish. It signs at once when DOMAIN has no active key\n"
     "of its algorithm (or with --activate); else it waits for `dkim activate`."},
    {"import", cmd_dkim_import, CLI_JSON, "DOMAIN --selector SEL FILE [--activate|--no-activate]",
     "Stores an existing unencrypted PEM private key (PKCS#1 or PKCS#8, rsa of 1024 to 4096\n"
     "bits or ed25519; FILE '-' is standard input) and prints its record, as keygen."},
    {"show", cmd_dkim_show, CLI_JSON, "DOMAIN [--selector SEL]",
     "Prints the TXT records of DOMAIN's active and published keys (or of key SEL)."},
    {"ls", cmd_dkim_ls, CLI_JSON, "[DOMAIN]",
     "Lists the keys: domain, selector, algorithm, bits, state, created (never a key)."},
    {"activate", cmd_dkim_activate, 0, "DOMAIN --selector SEL",
     "Makes key SEL the one that signs DOMAIN's mail with its algorithm; the key that\n"
     "signed before stays published for mail in flight."},
    {"retire", cmd_dkim_retire, 0, "DOMAIN --selector SEL",
     "Stops signing and publishing with key SEL: its record may leave DNS in a few days."},
    {"delete", cmd_dkim_delete, 0, "DOMAIN --selector SEL --yes", "Deletes key SEL for good."},
    {"check", cmd_dkim_check, CLI_JSON, "DOMAIN [--selector SEL]",
     "Looks up the records of DOMAIN's active and published keys (or of key SEL) in DNS\n"
     "and says for each: matches, testing (t=y), differs (and how), missing. Exit 0 when\n"
     "every one matches, 1 when one differs or is missing, 69 when a look-up failed."},
    {0},
};

const struct cli_group cli_group_dkim = {
    "dkim", "DKIM signing keys per domain and their DNS records.", dkim_cmds};
