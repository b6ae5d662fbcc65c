"""The poster's own DKIM signature through the list (remove_dkim_signatures,
issue 14): a post signed by the poster's domain with dkimpy arrives at a
member's MX with that signature still verifying when the list's rewrite
left everything it signs alone (auto keeps it), and without it when the
rewrite broke it (a subject prefix: auto removes it) or when the list says
yes. dkimpy verifies with the poster's public key; fanmail's own signing
is off (lists.test has no key), so the poster's is the only one."""
import base64
import email
import smtplib
import unittest

import fmtest
from delivery_util import DeliveryCase

try:
    import dkim  # python3-dkim
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
except ImportError:
    dkim = None


@fmtest.require(dkim is not None, "dkimpy is not installed (Debian: python3-dkim)")
class PosterSignature(DeliveryCase):
    nsinks = 1

    def setUp(self):
        super().setUp()
        self.dns.mx("a.test", "mx.a.test", 10)
        self.dns.host("mx.a.test", self.ip(0))
        self.start_all({"queue_run_interval": "1s"})
        self.fm.cli("list", "create", "dev@lists.test", "--policy", "open")
        self.fm.cli("member", "add", "dev@lists.test", "ann@a.test")
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.pem = key.private_bytes(serialization.Encoding.PEM,
                                     serialization.PrivateFormat.TraditionalOpenSSL,
                                     serialization.NoEncryption())
        pub = key.public_key().public_bytes(serialization.Encoding.DER,
                                            serialization.PublicFormat.SubjectPublicKeyInfo)
        self.record = b"v=DKIM1; k=rsa; p=" + base64.b64encode(pub)

    def dnsfunc(self, name, timeout=5):
        name = name.decode() if isinstance(name, bytes) else name
        return self.record if name.rstrip(".") == "sel._domainkey.poster.test" else None

    def post(self, subject):
        msg = (f"From: Poe <poe@poster.test>\r\nTo: dev@lists.test\r\n"
               f"Subject: {subject}\r\nDate: Mon, 07 Dec 2026 10:00:00 +0000\r\n"
               f"Message-ID: <{subject.replace(' ', '.')}@poster.test>\r\n\r\n"
               "Signed by the poster.\r\n").encode()
        sig = dkim.sign(msg, b"sel", b"poster.test", self.pem,
                        include_headers=[b"from", b"date", b"message-id", b"to"],
                        canonicalize=(b"relaxed", b"relaxed"))
        signed = sig + msg
        self.assertTrue(dkim.verify(signed, dnsfunc=self.dnsfunc))
        with smtplib.SMTP("127.0.0.1", self.fm.port, timeout=30) as s:
            s.sendmail("poe@poster.test", ["dev@lists.test"], signed)

    def received(self, subject):
        def find():
            for t in list(self.sinks[0].transactions):
                if t.data and subject.encode() in t.data:
                    return t.data
            return None
        from sink import wait_for
        return wait_for(find, timeout=30, what=f"the copy of {subject!r}")

    def test_auto_keeps_a_signature_the_rewrite_left_alone(self):
        self.fm.cli("list", "set", "dev@lists.test", "subject_prefix=")
        self.post("kept intact")
        got = self.received("kept intact")
        self.assertIn(b"DKIM-Signature", got)
        self.assertTrue(dkim.verify(got, dnsfunc=self.dnsfunc),
                        "the poster's signature no longer verifies after the list")
        self.assertIn("1 kept", self.fm.logtext())

    def test_auto_removes_a_signature_the_list_broke(self):
        # The default subject prefix changes Subject, which this signature
        # does not cover; the footer changes the body, which it does.
        self.fm.cli("list", "set", "dev@lists.test", "footer=-- the dev list")
        self.post("footer breaks it")
        got = self.received("footer breaks it")
        self.assertNotIn(b"DKIM-Signature", got)
        self.assertIn("1 removed, 0 kept", self.fm.logtext())

    def test_yes_removes_and_no_keeps_even_when_broken(self):
        self.fm.cli("list", "set", "dev@lists.test", "subject_prefix=",
                    "remove_dkim_signatures=yes")
        self.post("yes removes")
        self.assertNotIn(b"DKIM-Signature", self.received("yes removes"))
        self.fm.cli("list", "set", "dev@lists.test", "footer=-- the dev list",
                    "remove_dkim_signatures=no")
        self.post("no keeps")
        got = self.received("no keeps")
        self.assertIn(b"DKIM-Signature", got)
        self.assertFalse(dkim.verify(got, dnsfunc=self.dnsfunc),
                         "a footer must break the poster's body hash")


if __name__ == "__main__":
    unittest.main()
