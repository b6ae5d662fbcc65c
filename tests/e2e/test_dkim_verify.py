"""DKIM signatures of mail/dkim.c checked by verifiers nobody here wrote.

fanmail canonicalizes and signs with OpenSSL itself (mail/dkim.h says why
not libopendkim), so every signature the test tool fm_dkim_sign makes over
a set of awkward messages (folded and 8-bit headers, trailing whitespace,
an empty body, long lines, several Received, a personalized copy's own
List-Unsubscribe lines) is verified by dkimpy (Debian's python3-dkim) and
by OpenDKIM (Debian's opendkim, `opendkim -t` with the public keys from a
TestPublicKeys file), for RSA-2048 and Ed25519 (RFC 8463) keys made by
`openssl genpkey`. A changed body byte, a changed signed header and a
changed per-copy header make both verifiers fail, so the check can fail.
dkimpy signing the same messages relaxed/relaxed gives the same bh=."""
import base64
import os
import re
import shutil
import subprocess
import tempfile
import unittest

import fmtest

SIGN = os.environ.get("FM_DKIM_SIGN_BIN") or os.path.join(
    os.environ.get("FANMAIL_BUILD_DIR", "build"), "tests", "fm_dkim_sign")
DOMAIN = "lists.example.org"

try:
    import dkim  # python3-dkim
except ImportError:
    dkim = None


def crlf(text):
    return text.replace("\n", "\r\n").encode()


SIGNED_HEAD = (
    "From: Ann Example <ann@example.org>\n"
    "To: test@lists.example.org\n"
    "Subject: [test] hello\n"
    "Date: Mon, 01 Jan 2024 10:00:00 +0000\n"
    "Message-ID: <m1@example.org>\n")

MESSAGES = {
    "plain": crlf(SIGNED_HEAD + "\nHello list.\n"),
    "folded": crlf(
        "From: Ann Example\n <ann@example.org>\n"
        "To: one@example.net,\n\ttwo@example.net,\n  three@example.net\n"
        "Subject: a subject that is long enough to be folded\n over\tseveral\n   lines\n"
        "Date: Mon, 01 Jan 2024 10:00:00 +0000\n"
        "Message-ID:\n <m2@example.org>\n"
        "\nBody.\n"),
    "whitespace": crlf(
        "From:ann@example.org   \n"
        # ("To :" with WSP before the colon, obsolete syntax, is refused by
        # dkimpy as a malformed message; test_dkim's RFC vector covers it.)
        "To:\ttest@lists.example.org\t\n"
        "Subject:   spaced    out \t \n"
        "Message-ID: <m3@example.org>\n"
        "\n  leading\tand   inner  \t\nline with trailing space   \n\t\n  \n\n\n"),
    "empty_body": crlf(SIGNED_HEAD + "\n"),
    "utf8": crlf(
        "From: Zoë Ünïcode <zoe@example.org>\n"
        "To: test@lists.example.org\n"
        "Subject: [test] ça marche — 日本語のテスト\n"
        "Date: Mon, 01 Jan 2024 10:00:00 +0000\n"
        "Message-ID: <m4@example.org>\n"
        "MIME-Version: 1.0\n"
        "Content-Type: text/plain; charset=utf-8\n"
        "Content-Transfer-Encoding: 8bit\n"
        "\nGrüße aus Köln.  Ünïcödé   \n日本語\n"),
    "long_lines": crlf(
        SIGNED_HEAD
        + "References: " + " ".join(f"<ref{i}@example.org>" for i in range(40)) + "\n"
        + "\n" + "x" * 990 + "\n" + ("word " * 190).rstrip() + "\n"),
    "received_and_lists": crlf(
        "Received: from a.example.net by b.example.net; Mon, 01 Jan 2024 10:00:00 +0000\n"
        "Received: from c.example.net\n\tby a.example.net; Mon, 01 Jan 2024 09:59:00 +0000\n"
        "Received: from d.example.net by c.example.net; Mon, 01 Jan 2024 09:58:00 +0000\n"
        + SIGNED_HEAD
        + "Cc: cc1@example.net\nCc: cc2@example.net\n"
        "Reply-To: test@lists.example.org\n"
        "Sender: test-bounces@lists.example.org\n"
        "List-Id: <test.lists.example.org>\n"
        "List-Post: <mailto:test@lists.example.org>\n"
        "List-Archive: <https://lists.example.org/archive/test>\n"
        "List-Help: <mailto:test-request@lists.example.org?subject=help>\n"
        "In-Reply-To: <m0@example.org>\n"
        "MIME-Version: 1.0\n"
        "Content-Type: multipart/alternative; boundary=\"b1\"\n"
        "\n--b1\nContent-Type: text/plain\n\nplain part\n--b1\n"
        "Content-Type: text/html\n\n<p>html part</p>\n--b1--\n"),
}

# A personalized copy: these lines go above the stored message, per member.
EXTRA = crlf(
    "List-Unsubscribe: <https://lists.example.org/unsubscribe/test@lists.example.org/"
    "tok3n>,\n <mailto:test-leave@lists.example.org>\n"
    "List-Unsubscribe-Post: List-Unsubscribe=One-Click\n")


def run(cmd, data=None):
    return subprocess.run(cmd, input=data, capture_output=True, check=True, timeout=60)


@fmtest.require(dkim is not None, "python3-dkim is not installed (scripts/deps)")
@fmtest.require(shutil.which("opendkim") or os.path.exists("/usr/sbin/opendkim"),
                "opendkim is not installed (scripts/deps)")
@fmtest.require(os.access(SIGN, os.X_OK), f"{SIGN} is not built")
class DkimVerify(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="fm-dkim-")
        cls.rsa = os.path.join(cls.tmp, "rsa.pem")
        cls.ed = os.path.join(cls.tmp, "ed.pem")
        run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt",
             "rsa_keygen_bits:2048", "-out", cls.rsa])
        run(["openssl", "genpkey", "-algorithm", "ED25519", "-out", cls.ed])
        # The TXT records as they would be published.
        rsa_der = run(["openssl", "pkey", "-in", cls.rsa, "-pubout", "-outform", "DER"]).stdout
        ed_der = run(["openssl", "pkey", "-in", cls.ed, "-pubout", "-outform", "DER"]).stdout
        cls.txt = {
            f"rsa._domainkey.{DOMAIN}":
                "v=DKIM1; k=rsa; p=" + base64.b64encode(rsa_der).decode(),
            # RFC 8463: the raw 32-octet key, not the SubjectPublicKeyInfo.
            f"ed._domainkey.{DOMAIN}":
                "v=DKIM1; k=ed25519; p=" + base64.b64encode(ed_der[-32:]).decode(),
        }
        keys = os.path.join(cls.tmp, "keys.txt")
        with open(keys, "w") as f:
            for name, rec in cls.txt.items():
                f.write(f"{name} {rec}\n")
        cls.conf = os.path.join(cls.tmp, "opendkim.conf")
        with open(cls.conf, "w") as f:
            f.write(f"Mode v\nSyslog no\nTestPublicKeys {keys}\n")
        cls.extra = os.path.join(cls.tmp, "extra")
        with open(cls.extra, "wb") as f:
            f.write(EXTRA)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def sign(self, msg, extra=False):
        cmd = [SIGN]
        if extra:
            cmd += ["-e", self.extra]
        cmd += [self.rsa, DOMAIN, "rsa", self.ed, DOMAIN, "ed"]
        return run(cmd, msg).stdout

    def dnsfunc(self, name, timeout=5):
        rec = self.txt.get(name.decode().rstrip("."))
        return rec.encode() if rec else None

    def dkimpy(self, signed):
        """dkimpy's verdict on each of the two signatures."""
        d = dkim.DKIM(signed)
        verdicts = []
        for i in range(2):
            try:
                verdicts.append(bool(d.verify(idx=i, dnsfunc=self.dnsfunc)))
            except dkim.ValidationError:  # a body hash mismatch is raised
                verdicts.append(False)
        return verdicts

    def opendkim(self, signed):
        """OpenDKIM's verdict per selector, from the Authentication-Results
        header `opendkim -t` would add."""
        path = os.path.join(self.tmp, "msg.eml")
        with open(path, "wb") as f:
            f.write(signed)
        p = subprocess.run(["opendkim", "-x", self.conf, "-vvv", "-t", path],
                           capture_output=True, timeout=60)
        out = (p.stdout + p.stderr).decode(errors="replace")
        got = dict((s, r) for r, s in re.findall(
            r"dkim=(\w+)[^;']*?header\.s=([\w.-]+)", out))
        self.assertEqual(set(got), {"rsa", "ed"}, out)
        return [got["rsa"] == "pass", got["ed"] == "pass"]

    def check(self, name, signed, want):
        self.assertEqual(self.dkimpy(signed), [want, want], f"dkimpy on {name}")
        self.assertEqual(self.opendkim(signed), [want, want], f"OpenDKIM on {name}")

    def test_every_message_verifies(self):
        for name, msg in MESSAGES.items():
            with self.subTest(msg=name):
                signed = self.sign(msg)
                self.assertTrue(signed.startswith(b"DKIM-Signature: v=1; a=rsa-sha256;"))
                head = signed.split(b"\r\n\r\n", 1)[0]
                self.assertTrue(all(len(l) <= 998 for l in head.split(b"\r\n")))
                self.check(name, signed, True)

    def test_personalized_copy(self):
        for name in ("plain", "utf8", "received_and_lists"):
            with self.subTest(msg=name):
                signed = self.sign(MESSAGES[name], extra=True)
                sig = signed.split(b"DKIM-Signature:")[1]
                h = re.search(rb"h=([^;]*);", sig).group(1)
                h = re.sub(rb"\s", b"", h).split(b":")
                self.assertIn(b"list-unsubscribe", h)
                self.assertIn(b"list-unsubscribe-post", h)
                self.assertEqual(h.count(b"from"), 2, "From oversigned")
                self.check(name, signed, True)
                # Another member's link in the same signed copy: broken.
                self.check(name + " with another token",
                           signed.replace(b"/tok3n>", b"/tok4n>"), False)

    def test_tampering_fails(self):
        for name in ("plain", "utf8", "long_lines"):
            with self.subTest(msg=name):
                signed = self.sign(MESSAGES[name])
                head, body = signed.split(b"\r\n\r\n", 1)
                # One body byte.
                i = len(body) // 2
                bad = head + b"\r\n\r\n" + body[:i] + bytes([body[i] ^ 1]) + body[i + 1:]
                self.check(name + " body byte", bad, False)
                # One signed header.
                bad = signed.replace(b"Subject: [test]", b"Subject: [tost]", 1)
                self.assertNotEqual(bad, signed)
                self.check(name + " subject", bad, False)
                # A From added above the signed ones: oversigning catches it.
                bad = head + b"\r\nFrom: evil@example.com\r\n\r\n" + body
                self.check(name + " added From", bad, False)

    def test_body_hash_equals_dkimpy(self):
        with open(self.rsa, "rb") as f:
            pem = f.read()
        for name, msg in MESSAGES.items():
            with self.subTest(msg=name):
                theirs = dkim.sign(msg, b"rsa", DOMAIN.encode(), pem,
                                   canonicalize=(b"relaxed", b"relaxed"))
                theirs_bh = re.search(rb"bh=([^;]*);", re.sub(rb"\s", b"", theirs)).group(1)
                ours = run([SIGN, "-b"], msg).stdout.strip()
                self.assertEqual(ours, theirs_bh)
                signed = self.sign(msg)
                ours_sig = re.search(rb"bh=([^;]*);", re.sub(rb"\s", b"", signed)).group(1)
                self.assertEqual(ours_sig, theirs_bh)


if __name__ == "__main__":
    unittest.main()
