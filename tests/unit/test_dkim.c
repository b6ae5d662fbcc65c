/*
 * test_dkim.c - DKIM signing (mail/dkim.c): the relaxed canonicalizations
 * against RFC 6376's own example and the edge cases (empty body, no final
 * CRLF, folds), and signatures checked here with OpenSSL's verify over
 * header data written out by hand: oversigned From, several instances
 * signed bottom-up, per-copy extra fields, Ed25519 (RFC 8463). The e2e test
 * test_dkim_verify.py checks the same code against dkimpy and OpenDKIM.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fm_assert.h"
#include "mail/dkim.h"

static EVP_PKEY *rsa_pkey, *ed_pkey;
static struct dkim_key *rsa_key, *ed_key;

static char *
pem_of(EVP_PKEY *pk, size_t *len)
{
	BIO *bio = BIO_new(BIO_s_mem());
	char *p, *s;
	long n;

	assert_int_equal(PEM_write_bio_PrivateKey(bio, pk, NULL, NULL, 0, NULL, NULL), 1);
	n = BIO_get_mem_data(bio, &p);
	s = malloc((size_t)n + 1);
	memcpy(s, p, (size_t)n);
	s[n] = '\0';
	*len = (size_t)n;
	BIO_free(bio);
	return s;
}

static int
setup(void **state)
{
	char err[DKIM_ERR_MAX], *pem;
	size_t len;

	rsa_pkey = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	ed_pkey = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	if (rsa_pkey == NULL || ed_pkey == NULL)
		return -1;
	pem = pem_of(rsa_pkey, &len);
	if (dkim_key_load(pem, len, "example.org", "s2024", &rsa_key, err) < 0)
		return -1;
	free(pem);
	pem = pem_of(ed_pkey, &len);
	if (dkim_key_load(pem, len, "example.org", "ed", &ed_key, err) < 0)
		return -1;
	free(pem);
	return 0;
}

static int
teardown(void **state)
{
	dkim_key_free(rsa_key);
	dkim_key_free(ed_key);
	EVP_PKEY_free(rsa_pkey);
	EVP_PKEY_free(ed_pkey);
	return 0;
}

/* base64(sha256(s)) */
static void
b64_sha256(const char *s, size_t n, char out[DKIM_BH_SIZE])
{
	unsigned char d[32];

	assert_int_equal(EVP_Digest(s, n, d, NULL, EVP_sha256(), NULL), 1);
	EVP_EncodeBlock((unsigned char *)out, d, 32);
}

static void
check_body(const char *body, const char *canon)
{
	char got[DKIM_BH_SIZE], want[DKIM_BH_SIZE];

	b64_sha256(canon, strlen(canon), want);
	assert_int_equal(dkim_body_hash_body(body, strlen(body), got), 0);
	assert_string_equal(got, want);
}

static void
canon_header(const char *field, const char *want)
{
	struct strbuf b = {0};

	dkim_canon_field(field, strlen(field), &b);
	assert_string_equal(b.p, want);
	strbuf_free(&b);
}

/* RFC 6376 section 3.4.5, relaxed/relaxed. */
static void
test_rfc_example(void **state)
{
	char a[DKIM_BH_SIZE], b[DKIM_BH_SIZE];
	const char *msg = "A: X\r\nB : Y\t\r\n\tZ  \r\n\r\n C \r\nD \t E\r\n\r\n\r\n";

	canon_header("A: X", "a:X\r\n");
	canon_header("B : Y\t\r\n\tZ  ", "b:Y Z\r\n");
	check_body(" C \r\nD \t E\r\n\r\n\r\n", " C\r\nD E\r\n");
	/* dkim_body_hash finds the body after the empty line. */
	assert_int_equal(dkim_body_hash(msg, strlen(msg), a), 0);
	b64_sha256(" C\r\nD E\r\n", 9, b);
	assert_string_equal(a, b);
}

static void
test_body_edges(void **state)
{
	/* An empty body stays empty in relaxed (RFC 6376 3.4.4; the CRLF of
	 * an empty body is simple's rule, 3.4.3): the well-known hash. */
	check_body("", "");
	check_body("\r\n\r\n", "");
	check_body(" \t \r\n", "");
	{
		char bh[DKIM_BH_SIZE];
		assert_int_equal(dkim_body_hash_body("", 0, bh), 0);
		assert_string_equal(bh, "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=");
	}
	/* No final CRLF: one is added; trailing WSP goes anyway. */
	check_body("abc", "abc\r\n");
	check_body("abc  ", "abc\r\n");
	check_body("a\r\n\r\nb\t\r\n \r\n", "a\r\n\r\nb\r\n");
	/* WSP inside and at the start of a line: one SP. */
	check_body("\t\tx  y\r\n", " x y\r\n");
	/* A lone CR is content, 8-bit octets are kept. */
	check_body("a\rb\r\n", "a\rb\r\n");
	check_body("caf\xc3\xa9 \r\n", "caf\xc3\xa9\r\n");
}

/* Fed in pieces of any size (a CRLF split across pieces, WSP at a
 * boundary), and a shared prefix copied to hash two endings. */
static void
test_body_stream(void **state)
{
	const char *body = "Hello  \t world \r\n\r\nline two\r\n\r\n\r\n";
	char whole[DKIM_BH_SIZE], got[DKIM_BH_SIZE], b1[DKIM_BH_SIZE], b2[DKIM_BH_SIZE];
	struct dkim_bh h, h2;

	assert_int_equal(dkim_body_hash_body(body, strlen(body), whole), 0);
	for (size_t step = 1; step < 8; step++) {
		assert_int_equal(dkim_bh_init(&h), 0);
		for (size_t i = 0; i < strlen(body); i += step)
			dkim_bh_add(&h, body + i,
			            strlen(body) - i < step ? strlen(body) - i : step);
		assert_int_equal(dkim_bh_end(&h, got), 0);
		assert_string_equal(got, whole);
	}
	assert_int_equal(dkim_bh_init(&h), 0);
	dkim_bh_add(&h, "Hi  \r\n\r\n", 8);
	assert_int_equal(dkim_bh_copy(&h2, &h), 0);
	dkim_bh_add(&h, "-- \r\nfor a@x\r\n", 14);
	dkim_bh_add(&h2, "-- \r\nfor bob@y\r\n", 16);
	assert_int_equal(dkim_bh_end(&h, got), 0);
	check_body("Hi  \r\n\r\n-- \r\nfor a@x\r\n", "Hi\r\n\r\n--\r\nfor a@x\r\n");
	b64_sha256("Hi\r\n\r\n--\r\nfor a@x\r\n", 19, b1);
	assert_string_equal(got, b1);
	assert_int_equal(dkim_bh_end(&h2, got), 0);
	b64_sha256("Hi\r\n\r\n--\r\nfor bob@y\r\n", 21, b2);
	assert_string_equal(got, b2);
}

static void
test_header_edges(void **state)
{
	canon_header("Subject: a\r\n  folded \t line ", "subject:a folded line\r\n");
	canon_header("SUBJECT:no space", "subject:no space\r\n");
	canon_header("X-Empty:", "x-empty:\r\n");
	canon_header("X-Empty:  \r\n ", "x-empty:\r\n");
	canon_header("Subject: caf\xc3\xa9", "subject:caf\xc3\xa9\r\n");
}

/* The text of the n-th (from 0) DKIM-Signature field in out, without its
 * final CRLF. */
static char *
sig_field(const char *out, int n)
{
	const char *p = out, *e;

	for (int i = 0; i <= n; i++) {
		p = strstr(i == 0 ? p : p + 1, "DKIM-Signature:");
		assert_non_null(p);
	}
	for (e = p; !(e[0] == '\r' && e[1] == '\n' && e[2] != ' ' && e[2] != '\t'); e++)
		;
	return strndup(p, (size_t)(e - p));
}

/* The value of tag name in sig (whitespace removed). */
static char *
tag(const char *sig, const char *name)
{
	char pat[16];
	const char *p, *e;
	char *v, *w;

	snprintf(pat, sizeof(pat), " %s=", name);
	p = strstr(sig, pat);
	if (p == NULL) {
		snprintf(pat, sizeof(pat), "\n %s=", name);
		p = strstr(sig, pat);
	}
	assert_non_null(p);
	p += strlen(pat);
	e = strchr(p, ';');
	if (e == NULL)
		e = p + strlen(p);
	v = strndup(p, (size_t)(e - p));
	for (p = v, w = v; *p; p++)
		if (*p != ' ' && *p != '\t' && *p != '\r' && *p != '\n')
			*w++ = *p;
	*w = '\0';
	return v;
}

/* Verifies signature n of out with pk over headers (the canonical signed
 * fields, written out by the test) and the signature field itself with b=
 * emptied. Returns 1 when it verifies. */
static int
verify(const char *out, int n, EVP_PKEY *pk, const char *headers)
{
	char *sig = sig_field(out, n), *b = tag(sig, "b"), *cut;
	struct strbuf data = {0};
	unsigned char raw[1024], d[32];
	int rawlen, ok;
	size_t bl = strlen(b);
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();

	/* b= is the last tag: the field up to "b=" is what was signed. */
	cut = strstr(sig, " b=");
	assert_non_null(cut);
	strbuf_str(&data, headers);
	dkim_canon_field(sig, (size_t)(cut + 3 - sig), &data);
	data.len -= 2; /* no CRLF after the signature field */
	rawlen = EVP_DecodeBlock(raw, (unsigned char *)b, (int)bl);
	assert_true(rawlen > 0);
	rawlen -= (b[bl - 1] == '=') + (bl > 1 && b[bl - 2] == '=');
	if (EVP_PKEY_is_a(pk, "RSA")) {
		assert_int_equal(EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, pk), 1);
		ok = EVP_DigestVerify(ctx, raw, (size_t)rawlen, (unsigned char *)data.p, data.len);
	} else {
		/* RFC 8463: Ed25519 over the SHA-256 of the header data. */
		assert_int_equal(EVP_Digest(data.p, data.len, d, NULL, EVP_sha256(), NULL), 1);
		assert_int_equal(EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, pk), 1);
		ok = EVP_DigestVerify(ctx, raw, (size_t)rawlen, d, 32);
	}
	EVP_MD_CTX_free(ctx);
	strbuf_free(&data);
	free(sig);
	free(b);
	return ok == 1;
}

static const char msg1[] = "Received: from a by b; Mon, 1 Jan 2024 00:00:00 +0000\r\n"
                           "From: Ann <ann@example.org>\r\n"
                           "To: list@example.org\r\n"
                           "Subject: a  folded\r\n"
                           "\tsubject \r\n"
                           "Date: Mon, 1 Jan 2024 00:00:00 +0000\r\n"
                           "Message-ID: <1@example.org>\r\n"
                           "X-Not-Signed: x\r\n"
                           "\r\n"
                           "Hello  there \r\n\r\n";
static const char msg1_headers[] = "from:Ann <ann@example.org>\r\n"
                                   "to:list@example.org\r\n"
                                   "subject:a folded subject\r\n"
                                   "date:Mon, 1 Jan 2024 00:00:00 +0000\r\n"
                                   "message-id:<1@example.org>\r\n";

static void
check_lines(const char *out)
{
	size_t start = 0, n = strlen(out);

	for (size_t i = 0; i + 1 < n; i++) {
		if (out[i] == '\r' && out[i + 1] == '\n') {
			if (i - start > 78)
				fail_msg("a line of %zu octets: %.*s", i - start, (int)(i - start),
				         out + start);
			start = i + 2;
			i++;
		} else {
			assert_true(out[i] != '\n' && out[i] != '\r');
		}
	}
	assert_true(n >= 2 && out[n - 2] == '\r' && out[n - 1] == '\n');
}

static void
test_sign_rsa_and_ed25519(void **state)
{
	const struct dkim_key *keys[] = {rsa_key, ed_key};
	struct dkim_signer *s = dkim_signer_new();
	struct strbuf out = {0};
	char err[DKIM_ERR_MAX], bh[DKIM_BH_SIZE], *sig, *v;

	assert_non_null(s);
	assert_int_equal(
	    dkim_sign(s, keys, 2, NULL, msg1, strlen(msg1), NULL, 1700000000, &out, err), 0);
	check_lines(out.p);
	sig = sig_field(out.p, 0);
	assert_string_contains(sig, "DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed;");
	assert_string_contains(sig, " d=example.org;");
	assert_string_contains(sig, " s=s2024;");
	assert_string_contains(sig, " t=1700000000;");
	assert_string_not_contains(sig, "l=");
	v = tag(sig, "h");
	assert_string_equal(v, "from:from:to:subject:date:message-id");
	free(v);
	v = tag(sig, "bh");
	assert_int_equal(dkim_body_hash(msg1, strlen(msg1), bh), 0);
	assert_string_equal(v, bh);
	free(v);
	free(sig);
	sig = sig_field(out.p, 1);
	assert_string_contains(sig, "a=ed25519-sha256;");
	assert_string_contains(sig, " s=ed;");
	free(sig);
	assert_true(verify(out.p, 0, rsa_pkey, msg1_headers));
	assert_true(verify(out.p, 1, ed_pkey, msg1_headers));
	/* The check can fail: other header data does not verify. */
	assert_false(verify(out.p, 0, rsa_pkey, "from:Ann <ann@example.org>\r\n"));
	assert_false(verify(out.p, 1, ed_pkey, "from:Ann <ann@example.org>\r\n"));

	/* The same signer again (contexts reused), with the body hash given:
	 * the same bh=, and it still verifies. */
	for (int i = 0; i < 3; i++) {
		strbuf_truncate(&out, 0);
		assert_int_equal(
		    dkim_sign(s, keys, 2, NULL, msg1, strlen(msg1), bh, 1700000001 + i, &out, err),
		    0);
		assert_true(verify(out.p, 0, rsa_pkey, msg1_headers));
		assert_true(verify(out.p, 1, ed_pkey, msg1_headers));
	}
	strbuf_free(&out);
	dkim_signer_free(s);
}

/* Two From fields: h= names From three times; two To fields are signed
 * bottom-up (the lower one first), and the extra per-copy fields, above
 * the message's, are signed like the others. */
static void
test_sign_instances_and_extra(void **state)
{
	const struct dkim_key *keys[] = {rsa_key};
	const char *msg = "From: a@example.org\r\n"
	                  "To: first@example.net\r\n"
	                  "From: b@example.org\r\n"
	                  "To: second@example.net\r\n"
	                  "List-Unsubscribe: <https://example.org/u/0>\r\n"
	                  "\r\n"
	                  "body\r\n";
	const char *extra = "List-Unsubscribe: <https://example.org/u/1>\r\n"
	                    "List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n";
	struct dkim_signer *s = dkim_signer_new();
	struct strbuf out = {0};
	char err[DKIM_ERR_MAX], *sig, *v;

	assert_int_equal(dkim_sign(s, keys, 1, extra, msg, strlen(msg), NULL, 1, &out, err), 0);
	sig = sig_field(out.p, 0);
	v = tag(sig, "h");
	assert_string_equal(v, "from:from:from:to:to:list-unsubscribe:list-unsubscribe:"
	                       "list-unsubscribe-post");
	free(v);
	free(sig);
	assert_true(verify(out.p, 0, rsa_pkey,
	                   "from:b@example.org\r\nfrom:a@example.org\r\n"
	                   "to:second@example.net\r\nto:first@example.net\r\n"
	                   "list-unsubscribe:<https://example.org/u/0>\r\n"
	                   "list-unsubscribe:<https://example.org/u/1>\r\n"
	                   "list-unsubscribe-post:List-Unsubscribe=One-Click\r\n"));
	/* Top-down is not what was signed. */
	assert_false(verify(out.p, 0, rsa_pkey,
	                    "from:a@example.org\r\nfrom:b@example.org\r\n"
	                    "to:first@example.net\r\nto:second@example.net\r\n"
	                    "list-unsubscribe:<https://example.org/u/1>\r\n"
	                    "list-unsubscribe:<https://example.org/u/0>\r\n"
	                    "list-unsubscribe-post:List-Unsubscribe=One-Click\r\n"));
	strbuf_free(&out);
	dkim_signer_free(s);
}

/* Lines within 78 where the words allow, never over 998: a long domain,
 * many signed fields. */
static void
test_sign_folding(void **state)
{
	char domain[DKIM_DOMAIN_MAX + 1], err[DKIM_ERR_MAX], *pem;
	struct dkim_key *k;
	struct dkim_signer *s = dkim_signer_new();
	struct strbuf out = {0}, msg = {0};
	size_t len, start = 0;

	/* Three labels of 63 octets and ".org": 195 octets, one word. */
	memset(domain, 'a', 191);
	domain[63] = domain[127] = '.';
	memcpy(domain + 191, ".org", 5);
	pem = pem_of(rsa_pkey, &len);
	assert_int_equal(dkim_key_load(pem, len, domain, "sel", &k, err), 0);
	free(pem);
	strbuf_str(&msg, "From: a@example.org\r\n");
	for (int i = 0; i < 20; i++)
		strbuf_str(&msg, "References: <r@example.org>\r\nCc: c@example.org\r\n");
	strbuf_str(&msg, "\r\nbody\r\n");
	assert_int_equal(dkim_sign(s, (const struct dkim_key *const[]){k}, 1, NULL, msg.p, msg.len,
	                           NULL, 1, &out, err),
	                 0);
	for (size_t i = 0; i + 1 < out.len; i++) {
		if (out.p[i] != '\r')
			continue;
		/* Only the d= line may pass 78: the domain is one word. */
		if (i - start > 78)
			if (strncmp(out.p + start, " d=", 3) != 0)
				fail_msg("long line: %.*s", (int)(i - start), out.p + start);
		assert_true(i - start <= 998);
		start = i + 2;
	}
	strbuf_free(&out);
	strbuf_free(&msg);
	dkim_key_free(k);
	dkim_signer_free(s);
}

static void
test_errors(void **state)
{
	char err[DKIM_ERR_MAX], *pem;
	struct dkim_key *k;
	struct dkim_signer *s = dkim_signer_new();
	struct strbuf out = {0};
	EVP_PKEY *ec;
	size_t len;
	const struct dkim_key *keys[] = {rsa_key};

	assert_int_equal(dkim_key_load("junk", 4, "example.org", "s", &k, err), -1);
	assert_string_contains(err, "not a PEM private key");
	assert_null(k);
	pem = pem_of(rsa_pkey, &len);
	assert_int_equal(dkim_key_load(pem, len, "exa mple.org", "s", &k, err), -1);
	assert_string_contains(err, "not a domain");
	assert_int_equal(dkim_key_load(pem, len, "example.org", "s;x=1", &k, err), -1);
	assert_string_contains(err, "not a selector");
	free(pem);
	ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	pem = pem_of(ec, &len);
	assert_int_equal(dkim_key_load(pem, len, "example.org", "s", &k, err), -1);
	assert_string_contains(err, "DKIM signs with RSA or Ed25519");
	free(pem);
	EVP_PKEY_free(ec);
	strbuf_str(&out, "kept");
	assert_int_equal(
	    dkim_sign(s, keys, 1, NULL, "To: x@y\r\n\r\nb\r\n", 14, NULL, 1, &out, err), -1);
	assert_string_contains(err, "no From");
	assert_string_equal(out.p, "kept");
	strbuf_free(&out);
	dkim_signer_free(s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_rfc_example),
	    cmocka_unit_test(test_body_edges),
	    cmocka_unit_test(test_body_stream),
	    cmocka_unit_test(test_header_edges),
	    cmocka_unit_test(test_sign_rsa_and_ed25519),
	    cmocka_unit_test(test_sign_instances_and_extra),
	    cmocka_unit_test(test_sign_folding),
	    cmocka_unit_test(test_errors),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
