"""Raw-socket dialogs: every bad input gets its precise reply, and no SMTP
smuggling variant ends a message or starts another."""
import time
import unittest

from smtpd_util import Dialog, SmtpdCase, run_table, spool_count

MAIL = b"MAIL FROM:<a@example.org>\r\n"
RCPT = b"RCPT TO:<demo@lists.localhost>\r\n"


class BadInputTest(SmtpdCase):
    settings = {"max_message_size": "20000", "max_bad_commands": "50"}

    def test_before_ehlo(self):
        run_table(self, self.port, [
            (MAIL, 503), (RCPT, 503), (b"DATA\r\n", 503), (b"EHLO\r\n", 501),
            (b"HELO\r\n", 501), (b"HELO client.example\r\n", 250), (MAIL, 250),
        ], ehlo=False)

    def test_unknown_commands_and_syntax_errors(self):
        run_table(self, self.port, [
            (b"FOO\r\n", 500),
            (b"BDAT 10 LAST\r\n", 500),
            (b"MAILFROM:<a@example.org>\r\n", 500),
            (b"RCPT TO:<demo@lists.localhost>\r\n", 503),
            (b"DATA\r\n", 503),
            (b"MAIL FROM:a@example.org\r\n", 501),
            (b"MAIL FROM:<a@example.org\r\n", 501),
            (b"MAIL TO:<a@example.org>\r\n", 501),
            (b"MAIL FROM:<a@@example.org>\r\n", 501),
            (b"MAIL FROM:<a b@example.org>\r\n", 501),
            (b"MAIL FROM:<a@example.org>x\r\n", 501),
            (b"MAIL FROM:<a@example.org> FOO=1\r\n", 555),
            (b"MAIL FROM:<a@example.org> BODY=BINARYMIME\r\n", 501),
            (b"MAIL FROM:<a@example.org> SIZE=abc\r\n", 501),
            (b"MAIL FROM:<a@example.org> SIZE=20001\r\n", 552),
            (b"DATA\r\n", 503),
            (MAIL, 250),
            (MAIL, 503),
            (b"DATA\r\n", 554),
            (b"RCPT TO:<>\r\n", 501),
            (b"RCPT TO:demo@lists.localhost\r\n", 501),
            (b"RCPT TO:<demo>\r\n", 501),
            (b"RCPT TO:<demo@lists.localhost> NOTIFY=NEVER\r\n", 555),
            (b"RCPT TO:<d\xc3\xa9mo@lists.localhost>\r\n", 553),
            (b"STARTTLS\r\n", 502),
            (b"DATA extra\r\n", 501),
            (b"RSET extra\r\n", 501),
            (b"EXPN demo\r\n", 502),
            (b"NOOP\x00\r\n", 500),
            (b"RSET\r\n", 250),
            (b"QUIT\r\n", 221),
        ])

    def test_command_line_over_512_octets_is_refused_and_session_goes_on(self):
        run_table(self, self.port, [
            (b"NOOP " + b"x" * 505 + b"\r\n", 250),   # 512 octets with CRLF: allowed
            (b"NOOP " + b"x" * 506 + b"\r\n", 500),   # 513
            (b"NOOP " + b"x" * 200000 + b"\r\n", 500),  # far past any buffer
            (b"NOOP\r\n", 250),
        ])

    def test_oversize_message_is_read_to_its_end_then_552(self):
        d = Dialog(self.port)
        d.cmd(b"EHLO c\r\n")
        self.data_dialog(d)
        body = b"Subject: big\r\n\r\n" + (b"x" * 70 + b"\r\n") * 400  # 28 KB
        # What follows the real end must be read as commands, and what is
        # inside the message must not.
        code, lines = d.cmd(body + b"MAIL FROM:<inside@example.org>\r\n.\r\n")
        self.assertEqual(code, 552, lines)
        self.assertTrue(lines[0].startswith(b"552 5.3.4"), lines)
        self.assertEqual(d.cmd(b"NOOP\r\n")[0], 250)
        self.assertEqual(d.cmd(MAIL)[0], 250, "the oversize transaction was not reset")
        d.close()
        self.assertEqual(spool_count(self.fm), 0)

    def test_message_line_over_1000_octets_is_500(self):
        d = Dialog(self.port)
        d.cmd(b"EHLO c\r\n")
        self.data_dialog(d)
        code, lines = d.cmd(b"Subject: x\r\n\r\n" + b"y" * 999 + b"\r\n.\r\n")
        self.assertEqual(code, 500, lines)
        self.assertTrue(lines[0].startswith(b"500 5.5.2"), lines)
        self.data_dialog(d)
        self.assertEqual(d.cmd(b"Subject: x\r\n\r\n" + b"y" * 998 + b"\r\n.\r\n")[0], 250)
        d.close()
        self.assertEqual(spool_count(self.fm), 1)

    def test_more_than_30_received_headers_is_a_loop(self):
        d = Dialog(self.port)
        d.cmd(b"EHLO c\r\n")
        hops = lambda n: b"".join(b"Received: from hop%d by x; Sun, 1 Jan 2026 00:00:00 +0000\r\n"
                                  % i for i in range(n))
        self.data_dialog(d)
        code, lines = d.cmd(hops(31) + b"Subject: loop\r\n\r\nx\r\n.\r\n")
        self.assertEqual(code, 554, lines)
        self.assertTrue(lines[0].startswith(b"554 5.4.6"), lines)
        self.data_dialog(d)
        self.assertEqual(d.cmd(hops(30) + b"Subject: ok\r\n\r\nx\r\n.\r\n")[0], 250)
        d.close()
        self.assertEqual(spool_count(self.fm), 1)

    def test_improper_pipelining_after_ehlo_is_refused(self):
        d = Dialog(self.port)
        code, lines = d.cmd(b"EHLO c\r\nMAIL FROM:<a@example.org>\r\n")
        self.assertEqual(code, 554, lines)
        self.assertTrue(lines[0].startswith(b"554 5.5.0"), lines)
        self.assertTrue(d.closed(), "the session stayed open")
        d.close()

    def test_pipelined_transaction_gets_every_reply_in_order(self):
        d = Dialog(self.port)
        d.cmd(b"EHLO c\r\n")
        d.send(MAIL + b"RCPT TO:<nobody@lists.localhost>\r\n" + RCPT + b"DATA\r\n")
        self.assertEqual([d.reply()[0] for _ in range(4)], [250, 550, 250, 354])
        d.send(b"Subject: p\r\n\r\nx\r\n.\r\n" + MAIL + RCPT + b"RSET\r\nQUIT\r\n")
        self.assertEqual([d.reply()[0] for _ in range(5)], [250, 250, 250, 250, 221])
        d.close()
        self.assertEqual(spool_count(self.fm), 1)


class SmugglingTest(SmtpdCase):
    """Only CRLF.CRLF ends DATA; a bare CR or LF anywhere gets 521 5.5.2
    and the connection is closed, so nothing after it is ever a command."""

    VARIANTS = {
        "LF.LF": b"\n.\n",
        "LF.CRLF": b"\n.\r\n",
        "CRLF.LF": b"\r\n.\n",
        "CR.CR": b"\r.\r",
        "CR.CRLF": b"\r.\r\n",
        "CRLF.CR": b"\r\n.\r",
        "CR.LF": b"\r.\n",
        "LF.CR": b"\n.\r",
        "CRLF.CRCRLF": b"\r\n.\r\r\n",
        "CRLF.NUL.CRLF": b"\r\n.\x00\r\n",  # not an end; then bare LF below
    }
    SMUGGLED = (b"MAIL FROM:<admin@lists.localhost>\r\nRCPT TO:<demo@lists.localhost>\r\n"
                b"DATA\r\nSubject: smuggled\r\n\r\nevil\n")

    def test_no_smuggling_variant_ends_the_message(self):
        for name, end in self.VARIANTS.items():
            with self.subTest(variant=name):
                d = Dialog(self.port)
                d.cmd(b"EHLO c\r\n")
                self.data_dialog(d)
                code, lines = d.cmd(b"Subject: first\r\n\r\nhello" + end + self.SMUGGLED)
                self.assertEqual(code, 521, f"{name}: expected 521, got {code} {lines}")
                self.assertTrue(lines[0].startswith(b"521 5.5.2"), lines)
                self.assertTrue(d.closed(), f"{name}: session stayed open")
                d.close()
        self.assertEqual(spool_count(self.fm), 0, "a smuggled or refused message was stored")

    def test_bare_lf_or_cr_in_commands_is_refused(self):
        for sent in (b"NOOP\n", b"NOOP\nNOOP\r\n", b"NOOP\rNOOP\r\n", b"MAIL FROM:<a@b.c>\n",
                     b"RSET\r\r\n"):
            with self.subTest(sent=sent):
                run_table(self, self.port, [(sent, 521)])

    def test_bare_lf_in_header_is_refused(self):
        d = Dialog(self.port)
        d.cmd(b"EHLO c\r\n")
        self.data_dialog(d)
        self.assertEqual(d.cmd(b"Subject: a\nBcc: x\r\n\r\nbody\r\n.\r\n")[0], 521)
        d.close()


class LimitsTest(SmtpdCase):
    settings = {"max_bad_commands": "3", "command_timeout": "1s", "greeting_timeout": "2s",
                "data_timeout": "1s"}

    def test_too_many_bad_commands_closes_the_session(self):
        d = Dialog(self.port)
        for _ in range(3):
            self.assertEqual(d.cmd(b"FOO\r\n")[0], 500)
        code, lines = d.cmd(b"FOO\r\n")
        self.assertEqual(code, 500)
        code, lines = d.reply()
        self.assertEqual(code, 421, lines)
        self.assertTrue(lines[0].startswith(b"421 4.7.0"), lines)
        self.assertTrue(d.closed())
        d.close()

    def test_command_timeout_is_421(self):
        d = Dialog(self.port)
        d.cmd(b"EHLO c\r\n")
        t = time.monotonic()
        code, lines = d.reply()
        self.assertEqual(code, 421, lines)
        self.assertTrue(lines[0].startswith(b"421 4.4.2"), lines)
        self.assertLess(time.monotonic() - t, 5)
        d.close()

    def test_data_timeout_is_421_and_nothing_stored(self):
        d = Dialog(self.port)
        d.cmd(b"EHLO c\r\n")
        self.data_dialog(d)
        d.send(b"Subject: slow\r\n")
        code, lines = d.reply()
        self.assertEqual(code, 421, lines)
        d.close()
        self.assertEqual(spool_count(self.fm), 0)


class GreetingTest(SmtpdCase):
    settings = {"greeting_delay": "1s"}

    def test_talking_before_the_greeting_is_refused(self):
        d = Dialog(self.port, greet=False)
        d.send(b"EHLO early.example\r\n")
        code, lines = d.reply()
        self.assertEqual(code, 554, lines)
        self.assertTrue(lines[0].startswith(b"554 5.5.1"), lines)
        self.assertTrue(d.closed())
        d.close()

    def test_patient_client_is_greeted(self):
        d = Dialog(self.port)
        self.assertEqual(d.greeting[0], 220)
        self.assertEqual(d.cmd(b"EHLO c\r\n")[0], 250)
        d.close()


if __name__ == "__main__":
    unittest.main()
