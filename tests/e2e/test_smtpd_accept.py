"""fanmaild accepts list mail with real clients (smtplib) and stores it,
with its envelope, before the 250; refuses everything else precisely."""
import smtplib
import sqlite3
import time
import unittest

import fmtest
from smtpd_util import (ENHANCED, Dialog, SmtpdCase, create_list, run_table, spool_rows,
                        wait_idle)

MSG = b"From: a@example.org\r\nTo: demo@lists.localhost\r\nSubject: hi\r\n\r\nhello\r\n"


class AcceptTest(SmtpdCase):
    settings = {"max_recipients": "3", "max_message_size": "20000"}

    def test_smtplib_message_is_spooled_with_received_header_before_250(self):
        with smtplib.SMTP("127.0.0.1", self.port, timeout=10) as s:
            code, _ = s.ehlo("client.example")
            self.assertEqual(code, 250)
            s.mail("a@example.org")
            s.rcpt("demo@lists.localhost")
            code, text = s.data(MSG)
            self.assertEqual(code, 250, f"expected 250 after DATA, got {code} {text}")
            m = text.decode()
            self.assertRegex(m, r"^2\.0\.0 Ok: queued as [0-9A-F]{16}$")
            qid = m.rsplit(" ", 1)[1]
            # The 250 came only after the commit: the row is there now.
            rows = spool_rows(self.fm)
        self.assertEqual(len(rows), 1, f"expected 1 spooled message, got {len(rows)}")
        rqid, sender, body, rcpts = rows[0]
        self.assertEqual(rqid, qid)
        self.assertEqual(sender, "a@example.org")
        self.assertEqual(rcpts, [("demo@lists.localhost", 1, "post", None)])
        self.assertTrue(body.startswith(b"Received: from client.example (unknown [127.0.0.1])\r\n"
                                        b"\tby mx.lists.localhost (fanmaild) with ESMTP id " +
                                        qid.encode()), body[:200])
        self.assertTrue(body.endswith(MSG), body[-200:])
        log = self.fm.logtext()
        self.assertIn(f"{qid}: client=unknown[127.0.0.1]", log)
        self.assertRegex(log, rf"{qid}: from=<a@example.org>, size=\d+, nrcpt=1")
        self.assertIn(f"{qid}: to=<demo@lists.localhost>, list_id=1, role=post", log)

    def test_every_role_address_is_stored_with_role_and_extension(self):
        want = [
            ("demo-request@lists.localhost", "request", None),
            ("demo-owner@lists.localhost", "owner", None),
            ("DEMO-Bounces+bob=example.net@Lists.Localhost", "bounces", "bob=example.net"),
        ]
        want2 = [
            ("demo-bounces@lists.localhost", "bounces", None),
            ("demo-join@lists.localhost", "join", None),
            ("demo-leave@lists.localhost", "leave", None),
        ]
        want3 = [
            ("demo-subscribe@lists.localhost", "subscribe", None),
            ("demo-unsubscribe@lists.localhost", "unsubscribe", None),
            ("demo-confirm+Tok3n@lists.localhost", "confirm", "Tok3n"),
        ]
        with smtplib.SMTP("127.0.0.1", self.port, timeout=10) as s:
            for group in (want, want2, want3):
                s.sendmail("a@example.org", [r for r, _, _ in group], MSG)
        rows = spool_rows(self.fm)
        got = [rc for _, _, _, rcpts in rows for rc in rcpts]
        expect = [(r, 1, role, ext) for r, role, ext in want + want2 + want3]
        self.assertEqual(got, expect)

    def test_rcpt_checks_unknown_relay_and_limit(self):
        run_table(self, self.port, [
            (b"MAIL FROM:<a@example.org>\r\n", 250),
            (b"RCPT TO:<nobody@lists.localhost>\r\n", 550),
            (b"RCPT TO:<demo-admin@lists.localhost>\r\n", 550),
            (b"RCPT TO:<demo-confirm@lists.localhost>\r\n", 550),
            (b"RCPT TO:<demo@example.com>\r\n", 550),
            (b"RCPT TO:<demo@[127.0.0.1]>\r\n", 550),
            (b"RCPT TO:<demo@lists.localhost>\r\n", 250),
            (b"RCPT TO:<demo-owner@lists.localhost>\r\n", 250),
            (b"RCPT TO:<demo-request@lists.localhost>\r\n", 250),
            (b"RCPT TO:<demo-join@lists.localhost>\r\n", 452),
        ])
        d = Dialog(self.port)
        d.cmd(b"EHLO c\r\n")
        d.cmd(b"MAIL FROM:<a@example.org>\r\n")
        self.assertEqual(d.cmd(b"RCPT TO:<nobody@lists.localhost>\r\n")[1][0][:9], b"550 5.1.1")
        self.assertEqual(d.cmd(b"RCPT TO:<x@example.com>\r\n")[1][0][:9], b"550 5.7.1")
        d.cmd(b"RCPT TO:<demo@lists.localhost>\r\n")
        d.cmd(b"RCPT TO:<demo-owner@lists.localhost>\r\n")
        d.cmd(b"RCPT TO:<demo-join@lists.localhost>\r\n")
        self.assertEqual(d.cmd(b"RCPT TO:<demo-leave@lists.localhost>\r\n")[1][0][:9],
                         b"452 4.5.3")
        d.close()

    def test_list_created_while_running_is_accepted_at_once(self):
        with smtplib.SMTP("127.0.0.1", self.port, timeout=10) as s:
            s.ehlo("c")
            s.mail("a@example.org")
            code, _ = s.rcpt("fresh@lists.localhost")
            self.assertEqual(code, 550)
            create_list(self.fm, "fresh@lists.localhost")
            code, text = s.rcpt("fresh@lists.localhost")
            self.assertEqual(code, 250, f"expected 250 for a new list, got {code} {text}")
            create_list(self.fm, "other@elsewhere.test")
            code, text = s.rcpt("other-owner@elsewhere.test")
            self.assertEqual(code, 250, f"expected 250 at a new list domain, got {code} {text}")

    def test_ehlo_keywords_and_enhanced_codes_on_every_reply(self):
        d = Dialog(self.port)
        code, lines = d.cmd(b"EHLO client.example\r\n")
        self.assertEqual(code, 250)
        kw = [l[4:].decode() for l in lines[1:]]
        for k in ("PIPELINING", "SIZE 20000", "8BITMIME", "ENHANCEDSTATUSCODES", "SMTPUTF8"):
            self.assertIn(k, kw)
        self.assertNotIn("STARTTLS", kw, "STARTTLS offered without a certificate")
        for cmd in (b"NOOP\r\n", b"HELP\r\n", b"VRFY demo\r\n", b"EXPN demo\r\n", b"RSET\r\n",
                    b"MAIL FROM:<a@example.org> BODY=8BITMIME SIZE=100\r\n",
                    b"RCPT TO:<demo@lists.localhost>\r\n", b"DATA\r\n"):
            code, lines = d.cmd(cmd)
            for l in lines:
                if code != 354:  # RFC 3463 has no class 3
                    self.assertRegex(l, ENHANCED, f"{cmd!r}: reply without enhanced code: {l!r}")
        code, lines = d.cmd(b"Subject: 8bit \xc3\xa9t\xc3\xa9\r\n\r\nbody\r\n.\r\n")
        self.assertEqual(code, 250)
        self.assertRegex(lines[0], ENHANCED)
        self.assertEqual(d.cmd(b"QUIT\r\n")[1][0], b"221 2.0.0 Bye")
        d.close()

    def test_vrfy_is_252_and_help_is_214(self):
        run_table(self, self.port, [(b"VRFY demo\r\n", 252), (b"HELP\r\n", 214),
                                    (b"NOOP\r\n", 250)])

    def test_size_is_checked_at_mail(self):
        run_table(self, self.port, [
            (b"MAIL FROM:<a@example.org> SIZE=20001\r\n", 552),
            (b"MAIL FROM:<a@example.org> SIZE=20000\r\n", 250),
        ])

    def test_smtputf8_addresses(self):
        d = Dialog(self.port)
        d.cmd(b"EHLO c\r\n")
        self.assertEqual(d.cmd("MAIL FROM:<jos\u00e9@example.org>\r\n".encode())[1][0][:9],
                         b"553 5.6.7")
        self.assertEqual(d.cmd("MAIL FROM:<jos\u00e9@example.org> SMTPUTF8\r\n".encode())[0], 250)
        self.assertEqual(d.cmd(b"RCPT TO:<demo@lists.localhost>\r\n")[0], 250)
        self.assertEqual(d.cmd(b"DATA\r\n")[0], 354)
        self.assertEqual(d.cmd("Subject: caf\u00e9\r\n\r\nx\r\n.\r\n".encode())[0], 250)
        d.close()
        _, sender, body, _ = spool_rows(self.fm)[0]
        self.assertEqual(sender, "jos\u00e9@example.org")
        self.assertIn(b"with UTF8SMTP id", body)

    def test_null_sender_and_source_route_are_accepted(self):
        run_table(self, self.port, [
            (b"MAIL FROM:<>\r\n", 250),
            (b"RCPT TO:<@relay.example:demo@lists.localhost>\r\n", 250),
        ])

    def test_session_limits_per_ip_and_global(self):
        self.fm.stop()
        self.fm.settings.update({"max_sessions_per_ip": "2"})
        self.fm.start()
        wait_idle(self.fm)
        a, b = Dialog(self.port), Dialog(self.port)
        c = Dialog(self.port)
        self.assertEqual(c.greeting[0], 421, f"third session: expected 421, got {c.greeting}")
        self.assertTrue(c.greeting[1][0].startswith(b"421 4.7.0"))
        self.assertTrue(c.closed())
        for x in (a, b, c):
            x.close()
        self.fm.stop()
        self.fm.settings.update({"max_sessions_per_ip": "100", "max_sessions": "1"})
        self.fm.start()
        wait_idle(self.fm)
        a = Dialog(self.port)
        b = Dialog(self.port)
        self.assertEqual(b.greeting[0], 421, self.fm.logtext())
        a.close()
        b.close()

    def test_disconnect_log_counts_commands(self):
        run_table(self, self.port, [(b"NOOP\r\n", 250), (b"BOGUS\r\n", 500),
                                    (b"QUIT\r\n", 221)])
        deadline = time.monotonic() + 5
        while "quit=1" not in self.fm.logtext() and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertRegex(self.fm.logtext(),
                         r"disconnect from unknown\[127\.0\.0\.1\]:\d+ ehlo=1 noop=1 quit=1 "
                         r"unknown=0/1 commands=3/4")


if __name__ == "__main__":
    unittest.main()
