"""The SMTP client against a real server: opportunistic STARTTLS (logged
with version and cipher), relay_host with AUTH PLAIN over TLS, HELO when
EHLO is refused, no PIPELINING, SIZE, and SMTPUTF8 required for UTF-8
addresses."""
import os
import subprocess
import unittest

from delivery_util import DeliveryCase


def make_cert(dir):
    cert, key = os.path.join(dir, "cert.pem"), os.path.join(dir, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                    "-out", cert, "-days", "2", "-subj", "/CN=mx.test"],
                   check=True, capture_output=True, timeout=60)
    return cert, key


class TestClient(DeliveryCase):
    nsinks = 2

    def setUp(self):
        super().setUp()
        self.dns.mx("a.test", "mx.a.test", 10)
        self.dns.host("mx.a.test", self.ip(0))

    def test_starttls_when_offered_and_logged(self):
        self.sinks[0].starttls = make_cert(self.fm.dir)
        self.start_all()
        qid = self.inject(["u@a.test"])
        self.wait_states({"sent": 1}, qid)
        t = self.sinks[0].transactions[0]
        self.assertTrue(t.tls, "the transaction ran over TLS")
        self.assertEqual("mx.lists.test", t.helo, "EHLO again after STARTTLS")
        self.assertRegex(self.fm.logtext(), r"Untrusted TLS connection established to "
                                            r"mx\.a\.test\[[\d.]+\]:\d+: TLSv1\.[23] with cipher "
                                            r"\S+ \(\d+/\d+ bits\)")

    def test_relay_host_with_auth_plain_over_tls(self):
        relay = self.sinks[1]
        relay.starttls = make_cert(self.fm.dir)
        relay.auth = ("fan", "s3cret")
        pw = os.path.join(self.fm.dir, "relay.pw")
        with open(pw, "w") as f:
            f.write("s3cret\n")
        self.start_all({"relay_host": f"{self.ip(1)}:{self.port}", "relay_user": "fan",
                        "relay_password_file": pw})
        # no DNS records at all for these domains: the relay takes everything
        qid = self.inject(["x@far.example", "y@other.example"])
        self.wait_states({"sent": 2}, qid)
        self.assertEqual(sorted(["x@far.example", "y@other.example"]), sorted(relay.all_rcpts()))
        self.assertTrue(all(t.tls for t in relay.transactions))
        self.assertEqual(0, self.sinks[0].connections)
        self.assertIn(f"relay={self.ip(1)}[{self.ip(1)}]:{self.port}", self.fm.logtext())

    def test_relay_without_tls_gets_no_password(self):
        relay = self.sinks[1]
        relay.auth = ("fan", "s3cret")
        pw = os.path.join(self.fm.dir, "relay.pw")
        with open(pw, "w") as f:
            f.write("s3cret\n")
        self.start_all({"relay_host": f"{self.ip(1)}:{self.port}", "relay_user": "fan",
                        "relay_password_file": pw})
        qid = self.inject(["x@far.example"])
        self.wait_states({"deferred": 1}, qid)
        self.assertFalse(any(l.startswith("AUTH") for _, l in relay.commands),
                         f"AUTH sent in clear: {relay.commands}")
        self.assertIn("not sending the relay password in clear", self.fm.logtext())

    def test_helo_when_ehlo_refused_and_no_pipelining(self):
        self.sinks[0].ehlo = False
        self.sinks[0].pipelining = False
        self.start_all()
        qid = self.inject(["u1@a.test", "u2@a.test"])
        self.wait_states({"sent": 2}, qid)
        verbs = [l.split()[0].upper() for _, l in self.sinks[0].commands]
        self.assertIn("HELO", verbs)
        self.assertEqual(1, len(self.sinks[0].transactions))

    def test_size_limit_of_server_is_respected(self):
        self.sinks[0].size = 100
        self.start_all()
        qid = self.inject(["u@a.test"], sender="", body=b"Subject: big\r\n\r\n" + b"x" * 500 + b"\r\n")
        self.wait_states({"failed": 1}, qid)
        self.assertIn("552 5.3.4", self.rows(qid)[0][3])
        self.assertEqual(0, len(self.sinks[0].transactions))

    def test_utf8_address_needs_smtputf8(self):
        self.sinks[0].smtputf8 = False
        self.start_all()
        qid = self.inject(["jörg@a.test", "plain@a.test"], sender="")
        self.wait_states({"failed": 1, "sent": 1}, qid)
        rows = {r[0]: r for r in self.rows(qid)}
        self.assertEqual("failed", rows["jörg@a.test"][1])
        self.assertIn("5.6.7", rows["jörg@a.test"][3])
        self.assertEqual(["plain@a.test"], self.sinks[0].all_rcpts())

    def test_utf8_address_with_smtputf8(self):
        self.start_all()
        qid = self.inject(["jörg@a.test"], sender="")
        self.wait_states({"sent": 1}, qid)
        t = self.sinks[0].transactions[0]
        self.assertIn("SMTPUTF8", t.params)
        self.assertEqual(["jörg@a.test"], t.rcpts)


if __name__ == "__main__":
    unittest.main()
