"""`fanmail dkim`: keys made or imported, the TXT records they need, rotation,
and `dkim check` against a real DNS server (dnsmasq).

The public key in each record is checked against the private key in the
store by tools nobody here wrote: the openssl CLI derives the public key
from the stored PEM (read with sqlite3: no command prints it), and dkimpy
(python3-dkim) parses the record as a DKIM key record and verifies a
message it signed with the stored private key against it."""
import base64
import json
import os
import re
import shutil
import sqlite3
import subprocess
import unittest

import fmtest
from dnsfix import DnsFixture

try:
    import dkim
    import dkim.util
except ImportError:  # the test fails below, saying why
    dkim = None

OPENSSL = shutil.which("openssl")
DOMAIN = "example.test"


def strings_of(out):
    """The character-strings of the (first) TXT record in zone-file text."""
    m = re.search(r"IN TXT \((.*?)\)", out, re.S)
    assert m, f"no record in {out!r}"
    return re.findall(r'"([^"]*)"', m.group(1))


def tags(value):
    return {k.decode(): v.decode() for k, v in dkim.util.parse_tag_value(value.encode()).items()}


@fmtest.require(OPENSSL is not None, "openssl (the CLI) is not installed")
@fmtest.require(dkim is not None, "dkimpy is not installed (Debian: python3-dkim)")
class DkimKeysTest(fmtest.TestCase):
    def setUp(self):
        super().setUp()
        self.outputs = []

    def run_cli(self, *args, input=None):
        p = self.fm.cli(*args, input=input)
        self.outputs.append(p.stdout + p.stderr)
        return p

    def expect(self, code, *args, input=None, err=None):
        p = super().expect(code, *args, input=input, err=err)
        self.outputs.append(p.stdout + p.stderr)
        return p

    def stored(self, selector, domain=DOMAIN):
        with sqlite3.connect(self.fm.db) as db:
            row = db.execute("SELECT private_key, public_key, algorithm, bits, state"
                             " FROM dkim_keys WHERE domain = ? AND selector = ?",
                             (domain, selector)).fetchone()
        self.assertIsNotNone(row, f"no key {selector} of {domain} in the store")
        pem = row[0] if isinstance(row[0], bytes) else row[0].encode()
        return pem, row[1], row[2], row[3], row[4]

    def openssl_public_der(self, pem):
        p = subprocess.run([OPENSSL, "pkey", "-pubout", "-outform", "DER"], input=pem,
                           capture_output=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)
        return p.stdout

    def states(self):
        rows = json.loads(self.run_cli("dkim", "ls", "--json").stdout)
        return {r["selector"]: r["state"] for r in rows}

    def assert_record_is_key(self, out, selector, algorithm):
        """out holds the record of selector: strings of <= 255 octets whose
        p= is the public key of the stored private key."""
        self.assertIn(f"{selector}._domainkey.{DOMAIN}. IN TXT (", out)
        strings = strings_of(out)
        for s in strings:
            self.assertLessEqual(len(s.encode()), 255)
        value = "".join(strings)
        t = tags(value)
        self.assertEqual((t["v"], t["k"]), ("DKIM1", algorithm))
        pem, public, alg, bits, _ = self.stored(selector)
        self.assertEqual(alg, algorithm)
        self.assertEqual(t["p"], public)
        der = self.openssl_public_der(pem)
        if algorithm == "rsa":
            self.assertEqual(base64.b64decode(t["p"]), der)  # SubjectPublicKeyInfo
        else:
            self.assertEqual(len(der), 44)  # SPKI of Ed25519: 12-octet prefix + raw key
            self.assertEqual(base64.b64decode(t["p"]), der[-32:])
        return value, pem, bits

    def assert_no_private_key_printed(self):
        with sqlite3.connect(self.fm.db) as db:
            pems = [bytes(r[0]).decode() for r in db.execute("SELECT private_key FROM dkim_keys")]
        printed = "".join(self.outputs)
        self.assertNotIn("PRIVATE KEY", printed)
        for pem in pems:
            body = "".join(l for l in pem.splitlines() if not l.startswith("-----"))
            # Any 40-character piece of the key's base64 would be a leak.
            for i in range(0, len(body) - 40, 20):
                self.assertNotIn(body[i:i + 40], printed.replace("\n", "").replace("\t", ""))

    def dkimpy_verifies(self, value, pem, selector, algorithm):
        """dkimpy signs a message with the stored private key and verifies it
        against the record value, as a receiver would with DNS."""
        msg = (b"From: a@" + DOMAIN.encode() + b"\r\nTo: b@example.org\r\n"
               b"Subject: hello\r\nMessage-ID: <1@example.test>\r\n\r\nbody\r\n")
        if algorithm == "rsa":
            key, alg = pem, b"rsa-sha256"
        else:
            der = subprocess.run([OPENSSL, "pkey", "-outform", "DER"], input=pem,
                                 capture_output=True, check=True, timeout=30).stdout
            key, alg = base64.b64encode(der[-32:]), b"ed25519-sha256"
        sig = dkim.sign(msg, selector.encode(), DOMAIN.encode(), key,
                        canonicalize=(b"relaxed", b"relaxed"), signature_algorithm=alg)
        name = f"{selector}._domainkey.{DOMAIN}.".encode()

        def dns(qname, timeout=5):
            return value.encode() if qname == name else None

        self.assertTrue(dkim.verify(sig + msg, dnsfunc=dns), f"{algorithm} key {selector}")
        # and a tampered body fails: the check can fail
        self.assertFalse(dkim.verify(sig + msg.replace(b"body", b"bodY"), dnsfunc=dns))

    def test_keygen_rsa_and_ed25519_print_their_public_keys(self):
        p = self.run_cli("dkim", "keygen", "Example.TEST.")
        m = re.search(r"(fm\d{6})\._domainkey", p.stdout)
        self.assertIsNotNone(m, p.stdout)
        sel = m.group(1)
        value, pem, bits = self.assert_record_is_key(p.stdout, sel, "rsa")
        self.assertEqual(bits, 2048)
        self.assertGreater(len(strings_of(p.stdout)), 1)  # 2048 bits need two strings
        self.assertIn("active now", p.stdout)
        self.assertEqual(evaluate(sel, value)[1:3], (2048, b"rsa"))
        self.dkimpy_verifies(value, pem, sel, "rsa")

        p = self.run_cli("dkim", "keygen", DOMAIN, "--algorithm", "ed25519")
        value, pem, bits = self.assert_record_is_key(p.stdout, sel + "-ed", "ed25519")
        self.assertEqual(len(strings_of(p.stdout)), 1)
        self.assertEqual(evaluate(sel + "-ed", value)[1:3], (256, b"ed25519"))
        self.dkimpy_verifies(value, pem, sel + "-ed", "ed25519")

        for bits, n in ((1024, 1), (4096, 3)):
            p = self.run_cli("dkim", "keygen", DOMAIN, "--selector", f"s{bits}", "--bits", bits)
            _, _, stored_bits = self.assert_record_is_key(p.stdout, f"s{bits}", "rsa")
            self.assertEqual((stored_bits, len(strings_of(p.stdout))), (bits, n))
            self.assertIn("not signing yet", p.stdout)  # an rsa key is active already

        # show prints the same records again; JSON has the strings too
        p = self.run_cli("dkim", "show", DOMAIN, "--selector", "s4096")
        self.assert_record_is_key(p.stdout, "s4096", "rsa")
        rows = json.loads(self.run_cli("dkim", "show", DOMAIN, "--json").stdout)
        self.assertEqual(sorted(r["selector"] for r in rows),
                         sorted([sel, sel + "-ed", "s1024", "s4096"]))
        for r in rows:
            self.assertEqual("".join(r["strings"]), r["value"])
            self.assertTrue(all(len(s) <= 255 for s in r["strings"]))
            self.assertEqual(r["name"], f"{r['selector']}._domainkey.{DOMAIN}.")
            evaluate(r["selector"], r["value"])
        ls = self.run_cli("dkim", "ls").stdout.splitlines()
        self.assertEqual(len(ls), 4)
        for line in ls:
            domain, selector, algorithm, bits, state, created = line.split("\t")
            self.assertEqual(domain, DOMAIN)
            self.assertRegex(created, r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
        self.run_cli("dkim", "ls", "--json")
        self.run_cli("dkim", "keygen", DOMAIN, "--json", "--selector", "j", "--no-activate")
        self.assert_no_private_key_printed()

    def write_key(self, name, *genpkey, mode=0o600, traditional=False):
        path = os.path.join(self.fm.dir, name)
        made = path + ".pkcs8" if traditional else path
        subprocess.run([OPENSSL, "genpkey", *genpkey, "-out", made], check=True,
                       capture_output=True, timeout=60)
        if traditional:  # PKCS#1: -----BEGIN RSA PRIVATE KEY-----
            subprocess.run([OPENSSL, "pkey", "-in", made, "-out", path, "-traditional"],
                           check=True, capture_output=True, timeout=30)
        os.chmod(path, mode)
        return path

    def test_import_pem_keys_and_refuse_bad_ones(self):
        rsa8 = self.write_key("rsa8.pem", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048")
        rsa1 = self.write_key("rsa1.pem", "-algorithm", "RSA", "-pkeyopt",
                              "rsa_keygen_bits:1024", mode=0o644, traditional=True)
        with open(rsa1) as f:
            self.assertIn("BEGIN RSA PRIVATE KEY", f.read())
        ed = self.write_key("ed.pem", "-algorithm", "ed25519")

        p = self.run_cli("dkim", "import", DOMAIN, "--selector", "old", rsa8)
        self.assertEqual(p.stderr, "")  # mode 0600: no warning
        value, pem, _ = self.assert_record_is_key(p.stdout, "old", "rsa")
        with open(rsa8, "rb") as f:
            self.assertEqual(self.openssl_public_der(f.read()), self.openssl_public_der(pem))
        self.dkimpy_verifies(value, pem, "old", "rsa")
        self.assertEqual(self.states(), {"old": "active"})

        p = self.run_cli("dkim", "import", DOMAIN, "--selector", "pkcs1", rsa1)
        self.assertIn("readable by everyone (mode 0644)", p.stderr)
        self.assert_record_is_key(p.stdout, "pkcs1", "rsa")
        self.assertEqual(self.stored("pkcs1")[3], 1024)
        with open(ed, "rb") as f:
            p = self.run_cli("dkim", "import", DOMAIN, "--selector", "ed", "-", "--no-activate",
                             input=f.read().decode())
        value, pem, _ = self.assert_record_is_key(p.stdout, "ed", "ed25519")
        self.dkimpy_verifies(value, pem, "ed", "ed25519")
        self.assertEqual(self.states(), {"old": "active", "pkcs1": "published", "ed": "published"})

        weak = self.write_key("weak.pem", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:512")
        self.expect(os.EX_DATAERR, "dkim", "import", DOMAIN, "--selector", "w", weak,
                    err="an rsa key of 512 bits; DKIM needs 1024 to 4096 (RFC 8301): too weak")
        ec = self.write_key("ec.pem", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256")
        self.expect(os.EX_DATAERR, "dkim", "import", DOMAIN, "--selector", "w", ec,
                    err="a EC key; DKIM signs with rsa or ed25519")
        junk = os.path.join(self.fm.dir, "junk.pem")
        with open(junk, "w") as f:
            f.write("-----BEGIN PRIVATE KEY-----\nnot base64 at all\n-----END PRIVATE KEY-----\n")
        self.expect(os.EX_DATAERR, "dkim", "import", DOMAIN, "--selector", "w", junk,
                    err="not a PEM private key")
        pub = os.path.join(self.fm.dir, "pub.pem")
        subprocess.run([OPENSSL, "pkey", "-in", rsa8, "-pubout", "-out", pub], check=True,
                       timeout=30)
        self.expect(os.EX_DATAERR, "dkim", "import", DOMAIN, "--selector", "w", pub,
                    err="not a PEM private key")
        enc = os.path.join(self.fm.dir, "enc.pem")
        subprocess.run([OPENSSL, "pkey", "-in", rsa8, "-aes256", "-passout", "pass:x",
                        "-out", enc], check=True, timeout=30)
        self.expect(os.EX_DATAERR, "dkim", "import", DOMAIN, "--selector", "w", enc,
                    err="the key is encrypted")
        self.expect(os.EX_NOINPUT, "dkim", "import", DOMAIN, "--selector", "w",
                    os.path.join(self.fm.dir, "nonesuch.pem"), err="No such file")
        self.expect(os.EX_CANTCREAT, "dkim", "import", DOMAIN, "--selector", "old", rsa8,
                    err="example.test has a key with selector old already")
        self.expect(os.EX_USAGE, "dkim", "import", DOMAIN, rsa8, err="--selector SEL is required")
        # nothing refused reached the store
        self.assertEqual(sorted(self.states()), ["ed", "old", "pkcs1"])
        self.assert_no_private_key_printed()

    def test_rotation_states(self):
        self.run_cli("dkim", "keygen", DOMAIN, "--selector", "a", "--bits", "1024")
        self.run_cli("dkim", "keygen", DOMAIN, "--selector", "e", "--algorithm", "ed25519")
        p = self.run_cli("dkim", "keygen", DOMAIN, "--selector", "b", "--bits", "1024")
        self.assertIn("fanmail dkim activate example.test --selector b", p.stdout)
        self.assertEqual(self.states(), {"a": "active", "b": "published", "e": "active"})

        p = self.run_cli("dkim", "activate", DOMAIN, "--selector", "b")
        self.assertIn("rsa key b is active", p.stdout)
        self.assertIn("a stays published for mail in flight", p.stdout)
        # the other algorithm's active key is left alone
        self.assertEqual(self.states(), {"a": "published", "b": "active", "e": "active"})
        rows = {r["selector"]: r for r in json.loads(self.run_cli("dkim", "ls", "--json").stdout)}
        self.assertIsNotNone(rows["b"]["activated"])

        p = self.run_cli("dkim", "retire", DOMAIN, "--selector", "a")
        self.assertIn("a._domainkey.example.test can leave DNS in a few days", p.stdout)
        self.assertEqual(self.states(), {"a": "retired", "b": "active", "e": "active"})
        # show without a selector: what should be in DNS; the retired one by name
        shown = {r["selector"] for r in json.loads(self.run_cli("dkim", "show", DOMAIN,
                                                                "--json").stdout)}
        self.assertEqual(shown, {"b", "e"})
        p = self.run_cli("dkim", "show", DOMAIN, "--selector", "a")
        self.assertIn("retired: this record may leave DNS", p.stdout)

        p = self.run_cli("dkim", "activate", DOMAIN, "--selector", "a")
        self.assertIn("it was retired: make sure its record is in DNS again", p.stdout)
        self.assertEqual(self.states(), {"a": "active", "b": "published", "e": "active"})
        p = self.run_cli("dkim", "activate", DOMAIN, "--selector", "a")
        self.assertIn("active already", p.stdout)

        p = self.run_cli("dkim", "retire", DOMAIN, "--selector", "e")
        self.assertIn("no active ed25519 key now", p.stdout)

        self.expect(os.EX_USAGE, "dkim", "delete", DOMAIN, "--selector", "b",
                    err="cannot be undone: add --yes")
        p = self.run_cli("dkim", "delete", DOMAIN, "--selector", "b", "--yes")
        self.assertIn("it was published: remove b._domainkey.example.test from DNS", p.stdout)
        self.assertEqual(self.states(), {"a": "active", "e": "retired"})
        self.expect(os.EX_NOINPUT, "dkim", "activate", DOMAIN, "--selector", "b",
                    err="example.test has no DKIM key with selector b")

        # The store itself refuses a second active key of one domain and algorithm.
        with sqlite3.connect(self.fm.db) as db:
            with self.assertRaises(sqlite3.IntegrityError):
                db.execute("INSERT INTO dkim_keys (domain, selector, algorithm, bits,"
                           " private_key, public_key, state, created)"
                           " VALUES ('example.test', 'x', 'rsa', 1024, 'k', 'p', 'active', 0)")
        self.assert_no_private_key_printed()

    def test_bad_arguments(self):
        self.expect(os.EX_DATAERR, "dkim", "keygen", "exa mple.test",
                    err="domain 'exa mple.test': only letters, digits")
        self.expect(os.EX_DATAERR, "dkim", "keygen", "bücher.test", err="A-label")
        self.expect(os.EX_DATAERR, "dkim", "keygen", "a-.test", err="may not start or end")
        self.expect(os.EX_DATAERR, "dkim", "keygen", DOMAIN, "--bits", "512",
                    err="--bits 512: an rsa key has 1024 to 4096 bits")
        self.expect(os.EX_DATAERR, "dkim", "keygen", DOMAIN, "--bits", "2k")
        self.expect(os.EX_DATAERR, "dkim", "keygen", DOMAIN, "--algorithm", "dsa",
                    err="there is rsa and ed25519")
        self.expect(os.EX_DATAERR, "dkim", "keygen", DOMAIN, "-a", "ed25519", "--bits", "2048",
                    err="--bits is for rsa keys")
        self.expect(os.EX_DATAERR, "dkim", "keygen", DOMAIN, "--selector", "a_b")
        self.expect(os.EX_USAGE, "dkim", "keygen", DOMAIN, "--activate", "--no-activate")
        self.expect(os.EX_USAGE, "dkim", "keygen")
        self.expect(os.EX_USAGE, "dkim", "activate", DOMAIN, err="--selector SEL is required")
        self.expect(os.EX_NOINPUT, "dkim", "show", DOMAIN, err="example.test has no DKIM key")
        self.run_cli("dkim", "keygen", DOMAIN, "--selector", "Sel", "--bits", "1024")
        self.assertEqual(self.states(), {"sel": "active"})  # DNS names are lower-cased
        self.expect(os.EX_CANTCREAT, "dkim", "keygen", DOMAIN, "--selector", "SEL",
                    err="has a key with selector sel already")
        self.assertEqual(self.states(), {"sel": "active"})

    def serve_and_check(self, records, *args):
        """Starts dnsmasq with records {name: [strings]} and runs dkim check."""
        dns = DnsFixture(zones=["test"])
        self.addCleanup(dns.cleanup)
        for name, strings in records.items():
            dns.txt(name, ",".join(f'"{s}"' for s in strings))
        dns.start()
        self.fm.settings["dns_servers"] = dns.server
        self.fm.write_conf()
        p = self.fm.cli("dkim", "check", DOMAIN, *args, check=False, timeout=60)
        self.outputs.append(p.stdout + p.stderr)
        dns.stop()
        return p

    def test_check_against_dns(self):
        self.run_cli("dkim", "keygen", DOMAIN, "--selector", "r1")
        self.run_cli("dkim", "keygen", DOMAIN, "--selector", "ed", "-a", "ed25519")
        self.run_cli("dkim", "keygen", DOMAIN, "--selector", "r2", "--bits", "1024")
        self.run_cli("dkim", "keygen", DOMAIN, "--selector", "old", "--bits", "1024")
        self.run_cli("dkim", "retire", DOMAIN, "--selector", "old")
        shown = json.loads(self.run_cli("dkim", "show", DOMAIN, "--json").stdout)
        good = {r["name"].rstrip("."): r["strings"] for r in shown}
        self.assertEqual(len(good["r1._domainkey.example.test"]), 2)

        # every record as `dkim show` prints it: all match
        p = self.serve_and_check(good)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        for sel in ("r1", "ed", "r2"):
            self.assertIn(f"{sel}._domainkey.example.test", p.stdout)
        self.assertEqual(p.stdout.count(": matches"), 3, p.stdout)
        self.assertNotIn("old._domainkey", p.stdout)  # retired keys only when named

        # r2's record holds r1's public key: differs, exit 1
        wrong = dict(good)
        wrong["r2._domainkey.example.test"] = good["r1._domainkey.example.test"]
        p = self.serve_and_check(wrong)
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertIn("r2._domainkey.example.test (rsa, published): differs: "
                      "p= is another public key", p.stdout)
        self.assertIn("r1._domainkey.example.test (rsa, active): matches", p.stdout)

        # the ed25519 record missing, r2 in testing mode (t=y)
        partial = dict(good)
        del partial["ed._domainkey.example.test"]
        r2 = "".join(good["r2._domainkey.example.test"]) + "; t=y"
        partial["r2._domainkey.example.test"] = [r2[:200], r2[200:]]
        p = self.serve_and_check(partial, "--json")
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        result = {r["selector"]: r["result"] for r in json.loads(p.stdout)}
        self.assertEqual(result, {"r1": "matches", "ed": "missing", "r2": "testing"})

        # k= saying another algorithm, and a revoked (empty p=) record
        bad = dict(good)
        bad["ed._domainkey.example.test"] = [good["ed._domainkey.example.test"][0]
                                             .replace("k=ed25519", "k=rsa")]
        bad["r1._domainkey.example.test"] = ["v=DKIM1; k=rsa; p="]
        p = self.serve_and_check(bad)
        self.assertEqual(p.returncode, 1)
        self.assertIn("differs: k=rsa in DNS, the key is ed25519", p.stdout)
        self.assertIn("differs: p= is empty: the key is revoked in DNS", p.stdout)

        # one key by name, a retired one too
        p = self.serve_and_check(good, "--selector", "r1")
        self.assertEqual((p.returncode, p.stdout.count("\n")), (0, 1), p.stdout)
        p = self.serve_and_check(good, "--selector", "old")
        self.assertEqual(p.returncode, 0)
        self.assertIn("retired, not in DNS (as it may be)", p.stdout)

        # no DNS server answers: nothing can be said, exit 69
        self.fm.settings["dns_servers"] = f"127.0.0.1:{fmtest.free_port()}"
        self.fm.write_conf()
        p = self.expect(69, "dkim", "check", DOMAIN, err="look-ups failed")
        self.assertIn("lookup failed", p.stdout)
        self.assert_no_private_key_printed()


def evaluate(selector, value):
    """dkimpy's own reading of a key record: (key, bits, k=, tlsrpt)."""
    return dkim.evaluate_pk(f"{selector}._domainkey.{DOMAIN}.".encode(), value.encode())


if __name__ == "__main__":
    unittest.main()
