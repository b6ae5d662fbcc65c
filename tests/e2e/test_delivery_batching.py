"""N recipients over D domains arrive in ceil(n/100) transactions per
domain, each with one copy of the body; the body is dot-stuffed and has no
bare CR or LF."""
import math
import re
import unittest

from delivery_util import BODY, DeliveryCase
from sink import wait_for


class TestBatching(DeliveryCase):
    nsinks = 3

    def test_recipients_share_transactions_per_domain(self):
        counts = {"a.test": 250, "b.test": 100, "c.test": 7}
        for i, dom in enumerate(counts):
            self.dns.mx(dom, f"mx.{dom}", 10)
            self.dns.host(f"mx.{dom}", self.ip(i))
        self.start_all()
        rcpts = [f"user{n}@{dom}" for dom, k in counts.items() for n in range(k)]
        qid = self.inject(rcpts)
        self.wait_states({"sent": len(rcpts)}, qid)
        for i, (dom, k) in enumerate(counts.items()):
            s = self.sinks[i]
            got = sorted(r for t in s.transactions for r in t.rcpts)
            self.assertEqual(sorted(f"user{n}@{dom}" for n in range(k)), got,
                             f"{dom}: recipients received")
            self.assertEqual(math.ceil(k / 100), len(s.transactions),
                             f"{dom}: expected {math.ceil(k / 100)} transactions, got "
                             f"{len(s.transactions)}: {s.transactions}")
            for t in s.transactions:
                self.assertEqual(BODY, t.data, "body as queued (dots unstuffed by the sink)")
                self.assertEqual("list-bounces@lists.test", t.mail_from)
            self.assertEqual([], s.bare_lf, "no bare CR or LF on the wire")
        rc = self.fm.stop()
        self.assertEqual(0, rc, f"fanmaild exits 0 on SIGTERM, got {rc}: {self.fm.logtext()[-2000:]}")
        log = self.fm.logtext()
        self.assertRegex(log, rf"{qid}: to=<user0@a\.test>, relay=mx\.a\.test\[{self.ip(0)}\]:"
                              rf"{self.port}, (conn_use=\d+, )?delay=[\d.]+, dsn=2\.0\.0, "
                              rf"status=sent \(250 2\.0\.0 Ok: queued\)")

    def test_bare_line_ends_become_crlf(self):
        self.dns.mx("a.test", "mx.a.test", 10)
        self.dns.host("mx.a.test", self.ip(0))
        self.start_all()
        body = b"Subject: x\n\nbare lf\nbare\rcr\r\n.\r\n..two\n"
        qid = self.inject(["u@a.test"], body=body)
        self.wait_states({"sent": 1}, qid)
        t = self.sinks[0].transactions[0]
        self.assertEqual([], self.sinks[0].bare_lf)
        self.assertEqual(b"Subject: x\r\n\r\nbare lf\r\nbare\r\ncr\r\n.\r\n..two\r\n", t.data)

    def test_verp_gives_each_recipient_its_own_sender(self):
        self.dns.mx("a.test", "mx.a.test", 10)
        self.dns.host("mx.a.test", self.ip(0))
        self.start_all({"domain_concurrency": "1"})
        rcpts = [f"u{n}@a.test" for n in range(5)]
        qid = self.inject(rcpts, sender="list-bounces@lists.test", verp=True)
        self.wait_states({"sent": 5}, qid)
        ts = self.sinks[0].transactions
        self.assertEqual(5, len(ts), "one transaction per recipient")
        for t in ts:
            self.assertEqual(1, len(t.rcpts))
            local, dom = t.rcpts[0].split("@")
            # Signed (lists/verp.h): +SIG, 12 base32 letters, after the domain.
            self.assertRegex(t.mail_from,
                             rf"^list-bounces\+{local}={re.escape(dom)}\+[a-z2-7]{{12}}@lists\.test$")
        self.assertEqual(1, self.sinks[0].connections, "one connection, reused")


if __name__ == "__main__":
    unittest.main()
