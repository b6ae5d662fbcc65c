"""A failed recipient produces an RFC 3464 report to the envelope sender,
checked part by part with Python's email package; the null sender gets
none."""
import email
import email.policy
import time
import unittest

from delivery_util import BODY, DeliveryCase
from sink import wait_for


class TestDsn(DeliveryCase):
    nsinks = 2

    def setUp(self):
        super().setUp()
        self.dns.mx("a.test", "mx.a.test", 10)
        self.dns.host("mx.a.test", self.ip(0))
        self.dns.mx("lists.test", "mx.lists.test", 10)  # where DSNs go
        self.dns.host("mx.lists.test", self.ip(1))

    def test_failed_recipients_get_one_report_part_by_part(self):
        self.sinks[0].rcpt_reply["bad@a.test"] = "550 5.1.1 <bad@a.test>: no such user"
        self.sinks[0].rcpt_reply["full@a.test"] = "552 5.2.2 mailbox full"
        self.start_all()
        qid = self.inject(["bad@a.test", "full@a.test", "ok@a.test"],
                          sender="list-bounces@lists.test")
        self.wait_states({"sent": 1, "failed": 2}, qid)
        wait_for(lambda: self.sinks[1].transactions, timeout=20, what="the DSN")
        t = self.sinks[1].transactions[0]
        self.assertEqual("", t.mail_from, "a DSN has the null sender")
        self.assertEqual(["list-bounces@lists.test"], t.rcpts)
        msg = email.message_from_bytes(t.data, policy=email.policy.default)
        self.assertEqual("multipart/report", msg.get_content_type())
        self.assertEqual("delivery-status", msg.get_param("report-type"))
        self.assertEqual("list-bounces@lists.test", str(msg["To"]))
        self.assertIn("MAILER-DAEMON@mx.lists.test", str(msg["From"]))
        self.assertEqual("auto-replied", str(msg["Auto-Submitted"]))
        parts = list(msg.iter_parts())
        self.assertEqual(["text/plain", "message/delivery-status", "text/rfc822-headers"],
                         [p.get_content_type() for p in parts])
        self.assertIn("bad@a.test", parts[0].get_content())
        # message/delivery-status: per-message fields, then per recipient
        blocks = parts[1].get_payload()
        self.assertEqual(3, len(blocks), f"1 per-message + 2 recipient blocks: {blocks}")
        self.assertEqual("dns; mx.lists.test", blocks[0]["Reporting-MTA"])
        self.assertIsNotNone(blocks[0]["Arrival-Date"])
        by = {b["Final-Recipient"]: b for b in blocks[1:]}
        self.assertEqual({"rfc822; bad@a.test", "rfc822; full@a.test"}, set(by))
        bad = by["rfc822; bad@a.test"]
        self.assertEqual("failed", bad["Action"])
        self.assertEqual("5.1.1", bad["Status"])
        self.assertEqual("dns; mx.a.test", bad["Remote-MTA"])
        self.assertTrue(bad["Diagnostic-Code"].startswith("smtp; 550 5.1.1"),
                        bad["Diagnostic-Code"])
        self.assertEqual("5.2.2", by["rfc822; full@a.test"]["Status"])
        headers = parts[2].get_payload()
        self.assertIn("Message-ID: <t1@lists.test>", str(headers) if not isinstance(headers, str)
                      else headers)
        self.assertIn(f"{qid}: sender non-delivery notification:", self.fm.logtext())

    def test_null_sender_gets_no_report(self):
        self.sinks[0].rcpt_reply["bad@a.test"] = "550 5.1.1 no such user"
        self.start_all()
        qid = self.inject(["bad@a.test"], sender="")
        self.wait_states({"failed": 1}, qid)
        time.sleep(2)
        self.assertEqual(0, self.sinks[1].connections, "no DSN sent anywhere")
        self.assertNotIn("non-delivery notification", self.fm.logtext())


if __name__ == "__main__":
    unittest.main()
