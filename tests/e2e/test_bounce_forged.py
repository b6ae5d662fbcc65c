"""Forged bounces and ARF reports change nothing; genuine ones still count.

fanmaild signs what its lists put in VERP addresses
(LIST-bounces+local=domain+SIG@) and tags every post with a signed
X-Fanmail-Report header (lists/verp.h). A report counts only when it names
a correctly signed VERP address or quotes a good tag of the list.

With complaint_action=unsubscribe and bounce_threshold=1, forged reports
sent over SMTP -- an ARF report and a DSN to LIST-bounces, a DSN to
LIST-bounces+bob=a.test without a signature and with a wrong one, an ARF
report quoting a made-up tag -- leave every member as it was, and each is
logged as ignored. Then a real post: the sink refuses cy with 550 5.1.1, so
fanmaild's own DSN (quoting the post's header) scores and disables cy; and an
ARF report quoting bob's real copy of the post unsubscribes bob. Before the
signatures the first forged ARF report alone unsubscribed bob."""
import smtplib
import sqlite3
import time
import unittest

from delivery_util import DeliveryCase
from sink import wait_for

POST = ("From: Ann <ann@a.test>\r\nTo: dev@lists.test\r\nSubject: hello list\r\n"
        "Message-ID: <post-forged@a.test>\r\n\r\nHello everyone.\r\n")


def arf(original, rcpt="bob@a.test"):
    return ("From: fbl@isp.test\r\nTo: dev-bounces@lists.test\r\n"
            "Subject: FW: hello list\r\nMIME-Version: 1.0\r\n"
            "Content-Type: multipart/report; report-type=feedback-report;"
            " boundary=\"arf\"\r\n\r\n"
            "--arf\r\nContent-Type: text/plain\r\n\r\n"
            "This is an email abuse report.\r\n\r\n"
            "--arf\r\nContent-Type: message/feedback-report\r\n\r\n"
            "Feedback-Type: abuse\r\nUser-Agent: isp-fbl/1.0\r\nVersion: 1\r\n"
            f"Original-Rcpt-To: <{rcpt}>\r\n\r\n"
            "--arf\r\nContent-Type: message/rfc822\r\n\r\n"
            f"{original}\r\n--arf--\r\n")


def dsn(rcpt="bob@a.test"):
    return ("From: MAILER-DAEMON@mx.a.test\r\nTo: dev-bounces@lists.test\r\n"
            "Subject: Undelivered Mail Returned to Sender\r\nMIME-Version: 1.0\r\n"
            "Content-Type: multipart/report; report-type=delivery-status;"
            " boundary=\"d\"\r\n\r\n"
            "--d\r\nContent-Type: text/plain\r\n\r\n"
            f"<{rcpt}>: 550 5.1.1 user unknown\r\n\r\n"
            "--d\r\nContent-Type: message/delivery-status\r\n\r\n"
            "Reporting-MTA: dns; mx.a.test\r\n\r\n"
            f"Final-Recipient: rfc822; {rcpt}\r\nAction: failed\r\nStatus: 5.1.1\r\n"
            f"Diagnostic-Code: smtp; 550 5.1.1 <{rcpt}>: user unknown\r\n\r\n"
            "--d\r\nContent-Type: text/rfc822-headers\r\n\r\n"
            "From: dev@lists.test\r\nTo: dev@lists.test\r\nSubject: hello list\r\n\r\n"
            "--d--\r\n")


FAKE_ORIGINAL = ("From: Ann <ann@a.test>\r\nTo: dev@lists.test\r\nSubject: hello list\r\n"
                 "Message-ID: <post-forged@a.test>\r\n\r\nHello everyone.\r\n")


class TestForgedReports(DeliveryCase):
    nsinks = 1

    def setUp(self):
        super().setUp()
        self.dns.mx("a.test", "mx.a.test", 10)
        self.dns.host("mx.a.test", self.ip(0))

    def q(self, sql, *args):
        with sqlite3.connect(self.fm.db, timeout=10) as c:
            return c.execute(sql, args).fetchall()

    def members(self):
        return sorted(self.q("SELECT address, status, bounce_score FROM members"))

    def send(self, rcpt, body):
        """Sends body to rcpt and waits until the list engine has handled it;
        returns its outcome."""
        with smtplib.SMTP("127.0.0.1", self.fm.port, timeout=30) as s:
            s.sendmail("", [rcpt], body)
        deadline = time.monotonic() + 150
        while time.monotonic() < deadline:
            rows = self.q("SELECT s.state, s.outcome FROM spool s JOIN spool_rcpt r"
                          " ON r.spool_id = s.id WHERE r.rcpt = ? ORDER BY s.id DESC LIMIT 1",
                          rcpt)
            if rows and rows[0][0] != "new":
                return rows[0]
            time.sleep(0.1)
        self.fail(f"the report to {rcpt} was not handled in 150 s")

    def test_forged_reports_change_nothing_genuine_ones_count(self):
        self.sinks[0].rcpt_reply["cy@a.test"] = "550 5.1.1 <cy@a.test>: user unknown"
        self.start_all({"default_list_domain": "lists.test"})
        self.fm.cli("list", "create", "dev@lists.test", "--policy", "open",
                    "--owner", "owner@a.test")
        self.fm.cli("member", "add", "dev@lists.test", "bob@a.test", "cy@a.test")
        self.fm.cli("list", "set", "dev@lists.test", "bounce_threshold=1",
                    "complaint_action=unsubscribe")
        before = self.members()
        self.assertEqual([("bob@a.test", "enabled", 0.0), ("cy@a.test", "enabled", 0.0)],
                         before)

        tag = "X-Fanmail-Report: 0123456789ABCDEF.%d.abcdefghijkl\r\n" % int(time.time())
        forged = [
            ("ARF report to LIST-bounces", "dev-bounces@lists.test", arf(FAKE_ORIGINAL)),
            ("DSN to LIST-bounces", "dev-bounces@lists.test", dsn()),
            ("DSN to an unsigned VERP address", "dev-bounces+bob=a.test@lists.test", dsn()),
            ("DSN to a wrongly signed VERP address",
             "dev-bounces+bob=a.test+abcdefghijkl@lists.test", dsn()),
            ("ARF report quoting a made-up tag", "dev-bounces@lists.test",
             arf(tag + FAKE_ORIGINAL)),
        ]
        for what, rcpt, body in forged:
            state, outcome = self.send(rcpt, body)
            self.assertEqual("done", state, f"{what}: handled")
            self.assertIn(": ignored:", outcome,
                            f"{what}: expected an 'ignored: ...' outcome, got {outcome!r}")
            self.assertEqual(before, self.members(), f"{what}: no member changed")
            self.assertEqual([], self.q("SELECT address, class FROM bounce_events"),
                             f"{what}: nothing recorded")
        log = self.fm.logtext()
        self.assertIn("ignored: unverified", log, "unverified reports are logged")
        self.assertIn("without a valid signature", log, "unsigned VERP bounces are logged")

        # A real post. cy's server refuses it: fanmaild's own DSN, which
        # quotes the post's header, scores and disables cy.
        with smtplib.SMTP("127.0.0.1", self.fm.port, timeout=30) as s:
            s.sendmail("ann@a.test", ["dev@lists.test"], POST)
        wait_for(lambda: ("cy@a.test", "disabled", 1.0) in self.members(), timeout=150,
                 step=0.2, what=f"cy disabled by the genuine DSN; members {self.members()}")

        # An ARF report quoting bob's real copy unsubscribes bob.
        def bob_copy():
            with self.sinks[0].lock:
                return [t.data for t in self.sinks[0].transactions
                        if "bob@a.test" in t.rcpts and b"hello list" in t.data]
        copy = wait_for(bob_copy, timeout=60, step=0.2, what="bob's copy delivered")[0]
        self.assertIn(b"X-Fanmail-Report: ", copy, "the post carries the list's tag")
        state, outcome = self.send("dev-bounces@lists.test",
                                   arf(copy.decode("utf-8").rstrip("\r\n")))
        self.assertEqual("done", state)
        self.assertNotIn("ignored", outcome, f"the genuine report counted: {outcome}")
        self.assertEqual([("cy@a.test", "disabled", 1.0)], self.members(),
                         "bob unsubscribed by complaint_action")
        self.assertEqual([("bob@a.test", "complaint")],
                         self.q("SELECT address, class FROM bounce_events"
                                " WHERE class = 'complaint'"))

    def test_verp_list_believes_a_report_only_with_the_signed_return_path(self):
        """On a VERP'd list every copy had its own signed return path: a
        subscriber who quotes his own copy (tag and all) in an ARF report
        about another member changes nothing; the report as an ISP sends it,
        the copy with the Return-Path its MTA added, counts for that
        recipient."""
        self.start_all({"default_list_domain": "lists.test"})
        self.fm.cli("list", "create", "dev@lists.test", "--policy", "open",
                    "--owner", "owner@a.test")
        self.fm.cli("member", "add", "dev@lists.test", "bob@a.test", "cy@a.test")
        self.fm.cli("list", "set", "dev@lists.test", "verp=always",
                    "complaint_action=unsubscribe")
        with smtplib.SMTP("127.0.0.1", self.fm.port, timeout=30) as s:
            s.sendmail("ann@a.test", ["dev@lists.test"], POST)

        def bob_copy():
            with self.sinks[0].lock:
                return [t for t in self.sinks[0].transactions
                        if "bob@a.test" in t.rcpts and b"hello list" in t.data]
        t = wait_for(bob_copy, timeout=60, step=0.2, what="bob's copy delivered")[0]
        copy = t.data.decode("utf-8").rstrip("\r\n")
        before = self.members()
        # bob forges a complaint about cy, quoting his own real copy.
        state, outcome = self.send("dev-bounces@lists.test", arf(copy, rcpt="cy@a.test"))
        self.assertIn("ignored: unverified arf: it quotes a VERP'd post", outcome)
        self.assertEqual(before, self.members(), "nobody unsubscribed")
        # The ISP's report: the copy as delivered, with its Return-Path.
        state, outcome = self.send("dev-bounces@lists.test",
                                   arf(f"Return-Path: <{t.mail_from}>\r\n" + copy))
        self.assertNotIn("ignored", outcome, f"the genuine report counted: {outcome}")
        self.assertEqual([("cy@a.test", "enabled", 0.0)], self.members(),
                         "bob unsubscribed, cy untouched")


if __name__ == "__main__":
    unittest.main()
