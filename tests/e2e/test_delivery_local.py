"""Mail to one of fanmail's own list domains goes straight into its inbound
spool, never over the network: a DSN for LIST-bounces lands there with role
bounces, and an unknown address of a list domain fails."""
import sqlite3
import unittest

from delivery_util import DeliveryCase
from sink import wait_for


class TestLocal(DeliveryCase):
    nsinks = 2

    def test_mail_for_own_list_domain_goes_to_inbound_spool(self):
        self.dns.mx("a.test", "mx.a.test", 10)
        self.dns.host("mx.a.test", self.ip(0))
        self.dns.mx("lists.test", "mx.lists.test", 10)  # must NOT be used
        self.dns.host("mx.lists.test", self.ip(1))
        self.start_all()
        self.fm.cli("list", "create", "list@lists.test")
        self.sinks[0].rcpt_reply["bad@a.test"] = "550 5.1.1 no such user"
        qid = self.inject(["bad@a.test", "list-owner@lists.test", "nolist@lists.test"],
                          sender="list-bounces@lists.test")
        self.wait_states({"sent": 1, "failed": 2}, qid)

        def spool():
            with sqlite3.connect(self.fm.db, timeout=10) as c:
                return c.execute("SELECT s.mail_from, r.rcpt, r.role, b.message FROM spool s"
                                 " JOIN spool_body b ON b.id = s.id"
                                 " JOIN spool_rcpt r ON r.spool_id = s.id ORDER BY s.id").fetchall()
        def dsns_cover_both():
            body = b"".join(r[3] for r in spool() if r[2] == "bounces")
            return b"bad@a.test" in body and b"nolist@lists.test" in body
        wait_for(dsns_cover_both, timeout=20, what="DSNs for both failures in the spool")
        rows = spool()
        owner = [r for r in rows if r[1] == "list-owner@lists.test"]
        self.assertEqual(1, len(owner))
        self.assertEqual(("list-bounces@lists.test", "owner"), (owner[0][0], owner[0][2]))
        for dsn in (r for r in rows if r[2] == "bounces"):
            self.assertEqual(("", "list-bounces@lists.test"), (dsn[0], dsn[1]),
                             "DSNs come from <> to LIST-bounces")
            self.assertIn(b"multipart/report", dsn[3])
        self.assertEqual(0, self.sinks[1].connections, "nothing went out to the list domain's MX")
        state = {r[0]: r for r in self.rows(qid)}
        self.assertIn("550 5.1.1", state["nolist@lists.test"][3])
        self.assertIn("relay=local", self.fm.logtext())


if __name__ == "__main__":
    unittest.main()
