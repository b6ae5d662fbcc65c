"""DSNs that name UTF-8 addresses (RFC 6533), end to end.

fanmaild posts to three members, two of them with UTF-8 addresses; the
members' MX (the Python sink) takes the post. Then a DSN written the way
Postfix writes one for SMTPUTF8 mail (message/global-delivery-status with
"Final-Recipient: utf-8; ..." and the returned message's header as
message/global-headers) comes back over SMTP to LIST-bounces. It reports
bob only delayed and zoë and jürgen failed: exactly those two must be
scored. Before the fix jürgen was read as "rgen@c.test" (nobody), zoë's
block was dropped and its 5.1.1 landed on bob, who was disabled instead."""
import smtplib
import sqlite3
import time
import unittest

from delivery_util import DeliveryCase
from sink import wait_for

POST = ("From: Ann <ann@a.test>\r\nTo: dev@lists.test\r\nSubject: hello list\r\n"
        "Message-ID: <post-utf8@a.test>\r\n\r\nHello everyone.\r\n")
ZOE = "zo\u00eb@a.test"
JURGEN = "j\u00fcrgen@c.test"


def postfix_dsn(headers):
    """A DSN as Postfix 3.x writes it for an SMTPUTF8 message."""
    b = "4XyZ1.1800000000/mx.a.test"
    return (
        "Return-Path: <>\r\n"
        "From: MAILER-DAEMON@mx.a.test (Mail Delivery System)\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
        "To: dev-bounces@lists.test\r\n"
        "Auto-Submitted: auto-replied\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: multipart/report; report-type=delivery-status;\r\n"
        f"\tboundary=\"{b}\"\r\n"
        "Content-Transfer-Encoding: 8bit\r\n"
        "Message-Id: <20260101000000.4XyZ1@mx.a.test>\r\n\r\n"
        "This is a MIME-encapsulated message.\r\n\r\n"
        f"--{b}\r\n"
        "Content-Description: Notification\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "Content-Transfer-Encoding: 8bit\r\n\r\n"
        "This is the mail system at host mx.a.test.\r\n\r\n"
        "I'm sorry to have to inform you that your message could not\r\n"
        "be delivered to one or more recipients. It's attached below.\r\n\r\n"
        f"<{ZOE}>: host store.a.test[127.0.0.9] said: 550 5.1.1 <{ZOE}>:\r\n"
        "    Recipient address rejected: User unknown in local recipient table (in\r\n"
        "    reply to RCPT TO command)\r\n\r\n"
        f"<{JURGEN}>: host store.c.test[127.0.0.10] said: 550 5.1.1 <{JURGEN}>:\r\n"
        "    Recipient address rejected: User unknown in local recipient table (in\r\n"
        "    reply to RCPT TO command)\r\n\r\n"
        f"--{b}\r\n"
        "Content-Description: Delivery report\r\n"
        "Content-Type: message/global-delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.a.test\r\n"
        "X-Postfix-Queue-ID: 4XyZ1\r\n"
        "X-Postfix-Sender: rfc822; dev-bounces@lists.test\r\n"
        "Arrival-Date: Thu,  1 Jan 2026 00:00:00 +0000 (UTC)\r\n\r\n"
        "Final-Recipient: rfc822; bob@a.test\r\n"
        "Original-Recipient: rfc822;bob@a.test\r\n"
        "Action: delayed\r\n"
        "Status: 4.4.1\r\n"
        "Diagnostic-Code: X-Postfix; connect to store.a.test[127.0.0.9]:25: Connection\r\n"
        "    timed out\r\n\r\n"
        f"Final-Recipient: utf-8; {ZOE}\r\n"
        f"Original-Recipient: utf-8;{ZOE}\r\n"
        "Action: failed\r\n"
        "Status: 5.1.1\r\n"
        "Remote-MTA: dns; store.a.test\r\n"
        f"Diagnostic-Code: smtp; 550 5.1.1 <{ZOE}>: Recipient address rejected: User\r\n"
        "    unknown in local recipient table\r\n\r\n"
        f"Final-Recipient: utf-8; {JURGEN}\r\n"
        f"Original-Recipient: utf-8;{JURGEN}\r\n"
        "Action: failed\r\n"
        "Status: 5.1.1\r\n"
        "Remote-MTA: dns; store.c.test\r\n"
        f"Diagnostic-Code: smtp; 550 5.1.1 <{JURGEN}>: Recipient address rejected:\r\n"
        "    User unknown in local recipient table\r\n\r\n"
        f"--{b}\r\n"
        "Content-Description: Undelivered Message Headers\r\n"
        "Content-Type: message/global-headers\r\n"
        "Content-Transfer-Encoding: 8bit\r\n\r\n"
        f"{headers}\r\n"
        f"--{b}--\r\n")


class TestUtf8Dsn(DeliveryCase):
    nsinks = 1

    def setUp(self):
        super().setUp()
        for dom in ("a.test", "c.test"):
            self.dns.mx(dom, "mx." + dom, 10)
            self.dns.host("mx." + dom, self.ip(0))

    def q(self, sql, *args):
        with sqlite3.connect(self.fm.db, timeout=10) as c:
            return c.execute(sql, args).fetchall()

    def member(self, addr):
        rows = self.q("SELECT status, bounce_score FROM members WHERE address = ?", addr)
        return rows[0] if rows else None

    def test_postfix_utf8_dsn_scores_the_members_it_names(self):
        self.start_all({"default_list_domain": "lists.test"})
        self.fm.cli("list", "create", "dev@lists.test", "--policy", "open",
                    "--owner", "owner@a.test")
        self.fm.cli("member", "add", "dev@lists.test", "bob@a.test", ZOE, JURGEN)
        self.fm.cli("list", "set", "dev@lists.test", "bounce_threshold=1")
        with smtplib.SMTP("127.0.0.1", self.fm.port, timeout=30) as s:
            s.sendmail("ann@a.test", ["dev@lists.test"], POST)

        def copies():
            with self.sinks[0].lock:
                return [t for t in self.sinks[0].transactions
                        if b"hello list" in t.data and JURGEN in t.rcpts]
        sent = wait_for(copies, timeout=60, step=0.2, what="the post delivered to the sink")
        head = sent[0].data.decode("utf-8").split("\r\n\r\n", 1)[0]
        with smtplib.SMTP("127.0.0.1", self.fm.port, timeout=30) as s:
            s.ehlo("mx.a.test")
            s.sendmail("", ["dev-bounces@lists.test"], postfix_dsn(head).encode("utf-8"),
                       mail_options=["SMTPUTF8", "BODY=8BITMIME"])
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            st = self.q("SELECT state, outcome FROM spool s JOIN spool_rcpt r"
                        " ON r.spool_id = s.id WHERE r.role = 'bounces'")
            if st and st[0][0] != "new":
                break
            time.sleep(0.2)
        self.assertEqual("done", st[0][0] if st else None, f"the DSN handled: {st}")
        events = sorted(self.q("SELECT address, class, status FROM bounce_events"))
        self.assertEqual(sorted([(JURGEN, "hard", "5.1.1"), (ZOE, "hard", "5.1.1")]), events,
                         f"one hard event for each failed UTF-8 recipient; outcome {st}")
        self.assertEqual(("disabled", 1.0), self.member(ZOE))
        self.assertEqual(("disabled", 1.0), self.member(JURGEN))
        self.assertEqual(("enabled", 0.0), self.member("bob@a.test"),
                         "bob, only delayed, must not take zoë's 5.1.1")


if __name__ == "__main__":
    unittest.main()
