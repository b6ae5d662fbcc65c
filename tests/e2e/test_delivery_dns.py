"""Where mail goes, from real DNS (dnsmasq): MX preference order and
fallback, the domain's own address when it has no MX (RFC 5321 5.1), null
MX (RFC 7505) and NXDOMAIN failures."""
import unittest

from delivery_util import DeliveryCase


class TestDns(DeliveryCase):
    nsinks = 4

    def test_lowest_preference_is_tried_first(self):
        self.dns.mx("a.test", "mx1.a.test", 10)
        self.dns.mx("a.test", "mx2.a.test", 20)
        self.dns.host("mx1.a.test", self.ip(0))
        self.dns.host("mx2.a.test", self.ip(1))
        self.start_all()
        qid = self.inject(["u@a.test"])
        self.wait_states({"sent": 1}, qid)
        self.assertEqual(1, len(self.sinks[0].transactions), "preference 10 got the mail")
        self.assertEqual(0, self.sinks[1].connections, "preference 20 was not contacted")

    def test_next_mx_when_first_refuses_connections(self):
        self.dns.mx("a.test", "mx1.a.test", 10)
        self.dns.mx("a.test", "mx2.a.test", 20)
        self.dns.host("mx1.a.test", self.ip(3))  # nothing listens there
        self.dns.host("mx2.a.test", self.ip(1))
        self.sinks[3] = None
        self.sinks = [s for s in self.sinks if s is not None]
        self.start_all()
        qid = self.inject(["u@a.test"])
        self.wait_states({"sent": 1}, qid)
        self.assertEqual(["u@a.test"], self.sinks[1].all_rcpts())

    def test_next_mx_after_4xx_greeting(self):
        self.dns.mx("a.test", "mx1.a.test", 10)
        self.dns.mx("a.test", "mx2.a.test", 20)
        self.dns.host("mx1.a.test", self.ip(0))
        self.dns.host("mx2.a.test", self.ip(1))
        self.sinks[0].greeting = "421 4.3.2 busy, try later"
        self.start_all()
        qid = self.inject(["u@a.test"])
        self.wait_states({"sent": 1}, qid)
        self.assertEqual(1, self.sinks[0].connections, "first MX tried")
        self.assertEqual(["u@a.test"], self.sinks[1].all_rcpts(), "second MX got it")

    def test_domain_without_mx_gets_mail_at_its_address(self):
        self.dns.host("nomx.test", self.ip(2))
        self.start_all()
        qid = self.inject(["u@nomx.test"])
        self.wait_states({"sent": 1}, qid)
        self.assertEqual(["u@nomx.test"], self.sinks[2].all_rcpts())

    def test_null_mx_fails_at_once_with_556(self):
        self.dns.null_mx("null.test")
        self.start_all()
        qid = self.inject(["u@null.test"])
        self.wait_states({"failed": 1}, qid)
        rcpt, state, attempts, reply = self.rows(qid)[0]
        self.assertEqual(1, attempts, "failed at the first attempt")
        self.assertIn("556 5.1.10", reply)
        self.assertRegex(self.fm.logtext(), rf"{qid}: to=<u@null\.test>, relay=none, "
                                            r"delay=[\d.]+, dsn=5\.1\.10, status=bounced")

    def test_nxdomain_fails(self):
        self.start_all()
        qid = self.inject(["u@nowhere.test"])
        self.wait_states({"failed": 1}, qid)
        rcpt, state, attempts, reply = self.rows(qid)[0]
        self.assertIn("Host or domain name not found", reply)
        self.assertIn("dsn=5.1.2, status=bounced", self.fm.logtext())

    def test_dns_server_down_defers(self):
        self.start_all()
        self.dns.stop()  # SERVFAIL-like: no answer at all
        qid = self.inject(["u@a.test"])
        self.wait_states({"deferred": 1}, qid, timeout=40)
        self.assertIn("dsn=4.4.3, status=deferred", self.fm.logtext())


if __name__ == "__main__":
    unittest.main()
