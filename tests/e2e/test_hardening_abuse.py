"""Abuse of a running fanmaild: slow and silent clients, floods, huge and
binary input, every SMTP smuggling variant, STARTTLS injection and every
open-relay form. Each is refused with its precise reply, and after each the
daemon is alive, bounded in memory, and serves an honest client at once.
"""
import smtplib
import socket
import threading
import time
import unittest

import fmtest
from hardening import RawSMTP, db_query, spool_count, vmrss_kb
from smtpd_util import create_list, make_cert, wait_db, wait_idle

LIST = "abuse@lists.localhost"


class AbuseCase(fmtest.TestCase):
    settings = {"max_message_size": "2m", "command_timeout": "3s", "data_timeout": "3s",
                "max_bad_commands": "20"}

    def setUp(self):
        super().setUp()
        self.extra_setup()
        self.fm.start()
        wait_db(self.fm)
        create_list(self.fm, LIST)
        wait_idle(self.fm)
        self.honest = 0

    def extra_setup(self):
        pass

    def connect(self, **kw):
        c = RawSMTP("127.0.0.1", self.fm.port, **kw)
        g = c.reply()
        self.assertEqual(g.code, 220, f"greeting: expected 220, got {g}")
        return c

    def assert_serving(self, within=10.0):
        """An honest client gets a message in with 250 while abuse goes on."""
        self.assertIsNone(self.fm.proc.poll(), f"fanmaild exited: {self.fm.logtext()[-2000:]}")
        t = time.monotonic()
        self.honest += 1
        with smtplib.SMTP("127.0.0.1", self.fm.port, timeout=within) as s:
            s.ehlo("honest.example")
            s.sendmail("honest@example.org", [LIST],
                       f"From: honest@example.org\r\nSubject: honest {self.honest}\r\n\r\nhi\r\n")
        took = time.monotonic() - t
        self.assertLess(took, within, f"an honest client waited {took:.1f}s")

    def assert_not_stored(self, needle):
        self.assertEqual(spool_count(self.fm.db, needle), 0,
                         f"expected no stored message containing {needle!r}")


class SlowAndSilentClients(AbuseCase):

    def test_one_byte_a_second_client_is_served_while_others_are(self):
        slow = self.connect()
        result = {}

        def trickle():
            try:
                for b in b"HELO s.example\r\n":
                    slow.send(bytes([b]))
                    time.sleep(1.0 if b in b"HELO" else 0.2)
                result["reply"] = slow.reply(timeout=5)
            except Exception as e:  # reported below
                result["error"] = e

        t = threading.Thread(target=trickle)
        t.start()
        deadline = time.monotonic() + 20
        while t.is_alive() and time.monotonic() < deadline:
            self.assert_serving(within=5)
            time.sleep(0.5)
        t.join(timeout=10)
        self.assertNotIn("error", result, f"slow client: {result.get('error')}")
        self.assertEqual(result["reply"].code, 250, f"slow HELO: expected 250, got {result}")
        slow.close()

    def test_client_that_stalls_mid_command_is_dropped_after_command_timeout(self):
        c = self.connect()
        c.send(b"EHLO c\r\n")
        c.reply()
        c.send(b"MAIL FROM:<stall")
        t = time.monotonic()
        r = c.reply(timeout=10)
        self.assertEqual(r.code, 421, f"expected 421 4.4.2 after command_timeout, got {r}")
        self.assertTrue(r.text.startswith("4.4.2"), r)
        self.assertLess(time.monotonic() - t, 8, "the stalled client was kept too long")
        self.assertTrue(c.closed_by_peer())
        self.assert_serving()

    def test_client_that_never_reads_is_throttled_and_memory_stays_bounded(self):
        base = vmrss_kb(self.fm.proc.pid)
        c = self.connect()
        c.send(b"EHLO c\r\n")
        c.reply()
        c.sock.setblocking(False)
        chunk = b"NOOP\r\n" * 10000
        sent = 0
        deadline = time.monotonic() + 6
        while time.monotonic() < deadline and sent < 200 * 1024 * 1024:
            try:
                sent += c.sock.send(chunk)
            except BlockingIOError:
                time.sleep(0.05)
        # The daemon stops reading once its unsent replies pass its high
        # watermark, so the kernel buffers fill and the sender is stopped.
        self.assertLess(sent, 50 * 1024 * 1024,
                        f"the daemon kept reading {sent} octets from a client that never reads")
        grown = vmrss_kb(self.fm.proc.pid) - base
        self.assertLess(grown, 20 * 1024, f"RSS grew {grown} kB for one silent client")
        self.assert_serving()
        c.close()
        self.assert_serving()


class Floods(AbuseCase):

    def test_pipelined_flood_of_10000_commands_gets_every_reply_in_order(self):
        c = self.connect(timeout=30)
        c.cmd("EHLO flood.example")
        n = 10000
        payload = b"".join(b"NOOP\r\n" if i % 2 else b"RSET\r\n" for i in range(n))
        sender = threading.Thread(target=c.send, args=(payload,))
        sender.start()
        codes = [c.reply(timeout=30).code for _ in range(n)]
        sender.join(timeout=30)
        self.assertEqual(codes.count(250), n, f"expected {n} replies 250, got "
                         f"{len(codes)} with {sorted(set(codes))}")
        self.assertEqual(c.cmd("QUIT").code, 221)
        self.assert_serving()

    def test_flood_of_bad_commands_is_cut_off_at_max_bad_commands(self):
        c = self.connect()
        c.send(b"XYZZY\r\n" * 5000)
        replies = c.all_replies(timeout=10)
        codes = [r.code for r in replies]
        self.assertEqual(codes[-1], 421, f"expected the session closed with 421, got {codes[-3:]}")
        self.assertTrue(replies[-1].text.startswith("4.7.0"), replies[-1])
        self.assertLessEqual(len(codes), 22, f"expected at most 21 refusals, got {len(codes)}")
        self.assert_serving()

    def test_flood_of_connections_past_the_per_ip_limit_gets_421(self):
        self.fm.stop()
        self.fm.settings["max_sessions_per_ip"] = "50"
        self.fm.start()
        wait_idle(self.fm)
        held, codes = [], []
        try:
            for _ in range(60):
                s = RawSMTP("127.0.0.1", self.fm.port)
                held.append(s)
                codes.append(s.reply().code)
            self.assertEqual(codes[:50], [220] * 50, f"first 50: {codes[:50]}")
            self.assertEqual(codes[50:], [421] * 10, f"past the limit: {codes[50:]}")
            # Another address is not held back by the flood.
            other = RawSMTP("127.0.0.1", self.fm.port, source="127.0.0.2")
            self.assertEqual(other.reply().code, 220)
            other.close()
        finally:
            for s in held:
                s.close()
        wait_idle(self.fm, timeout=30)  # the held sessions are gone
        self.assert_serving()


class HugeAndBinaryInput(AbuseCase):

    def transaction(self, c):
        self.assertEqual(c.cmd("MAIL FROM:<big@example.org>").code, 250)
        self.assertEqual(c.cmd(f"RCPT TO:<{LIST}>").code, 250)
        self.assertEqual(c.cmd("DATA").code, 354)

    def test_huge_folded_header_is_taken_whole(self):
        c = self.connect(timeout=30)
        c.cmd("EHLO big.example")
        self.transaction(c)
        folded = b"X-Huge: start\r\n" + b"".join(b"\t%06d %s\r\n" % (i, b"h" * 900)
                                                   for i in range(1500))
        r = c.cmd(folded + b"Subject: huge-header-marker\r\n\r\nbody\r\n.")
        self.assertEqual(r.code, 250, f"a 1.4 MB folded header under the size limit: {r}")
        self.assertEqual(spool_count(self.fm.db, "huge-header-marker"), 1)
        self.assert_serving()

    def test_single_header_line_of_two_megabytes_is_refused_after_its_end(self):
        c = self.connect(timeout=30)
        c.cmd("EHLO big.example")
        self.transaction(c)
        r = c.cmd(b"X-Long: " + b"L" * (2 * 1024 * 1024) + b"\r\nSubject: long-line\r\n\r\n"
                  b"RSET\r\n.")
        self.assertIn(r.code, (500, 552), f"expected 500 5.5.2 or 552 5.3.4, got {r}")
        self.assertEqual(c.cmd("NOOP").code, 250, "the session did not go on after the refusal")
        self.assert_not_stored("long-line")
        self.assert_serving()

    def test_header_section_past_the_size_limit_is_552(self):
        c = self.connect(timeout=30)
        c.cmd("EHLO big.example")
        self.transaction(c)
        hdrs = b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 500) for i in range(6000))  # 3 MB
        r = c.cmd(hdrs + b"Subject: too-big-marker\r\n\r\nx\r\n.")
        self.assertEqual(r.code, 552, f"expected 552 5.3.4, got {r}")
        self.assert_not_stored("too-big-marker")
        self.assert_serving()

    def test_nul_in_a_command_is_500_and_the_session_goes_on(self):
        c = self.connect()
        c.cmd("EHLO nul.example")
        for line in (b"MAIL FROM:<a\x00b@example.org>", b"\x00", b"RCPT\x00TO:<x@y>",
                     b"EHLO \x00"):
            r = c.cmd(line)
            self.assertEqual(r.code, 500, f"{line!r}: expected 500 5.5.2, got {r}")
        self.assertEqual(c.cmd("MAIL FROM:<a@example.org>").code, 250)
        self.assert_serving()

    def test_nul_in_message_data_is_554_and_nothing_stored(self):
        c = self.connect()
        c.cmd("EHLO nul.example")
        self.transaction(c)
        r = c.cmd(b"Subject: nul-marker\r\n\r\nbefore\x00after-nul\r\n.")
        self.assertEqual((r.code, r.text[:5]), (554, "5.6.0"), f"expected 554 5.6.0, got {r}")
        self.assert_not_stored("nul-marker")
        self.assert_serving()

    def test_non_utf8_addresses_under_smtputf8_are_refused(self):
        c = self.connect()
        c.cmd("EHLO utf8.example")
        for sent, want, esc in (
                (b"MAIL FROM:<\xff\xfe@example.org> SMTPUTF8", 501, "5.1.7"),
                (b"MAIL FROM:<a@ex\xc3\x28mple.org> SMTPUTF8", 501, "5.1.7"),
                (b"MAIL FROM:<\xc0\xafroot@example.org> SMTPUTF8", 501, "5.1.7"),  # overlong '/'
                (b"MAIL FROM:<\xed\xa0\x80@example.org> SMTPUTF8", 501, "5.1.7"),  # surrogate
                (b"MAIL FROM:<caf\xc3\xa9@example.org>", 553, "5.6.7"),  # no SMTPUTF8
        ):
            r = c.cmd(sent)
            self.assertEqual((r.code, r.text[:5]), (want, esc), f"{sent!r}: expected {want} {esc}, got {r}")
        self.assertEqual(c.cmd(b"MAIL FROM:<caf\xc3\xa9@example.org> SMTPUTF8").code, 250)
        for rcpt in (b"<abuse\xff@lists.localhost>", b"<abuse@lists.local\xe2\x82host>"):
            r = c.cmd(b"RCPT TO:" + rcpt)
            self.assertEqual((r.code, r.text[:5]), (501, "5.1.3"), f"{rcpt!r}: got {r}")
        self.assert_serving()


class Smuggling(AbuseCase):
    # hannob's smtpsmug end-of-data variants, and the NUL forms.
    VARIANTS = {
        "lf-lf": b"\n.\n", "lf-crlf": b"\n.\r\n", "cr-cr": b"\r.\r", "cr-crlf": b"\r.\r\n",
        "crlf-cr": b"\r\n.\r", "crlf-lf": b"\r\n.\n", "lf-cr": b"\n.\r", "cr-lf": b"\r.\n",
        "crlf-crcrlf": b"\r\n.\r\r\n", "crlf-lfcrlf": b"\r\n\n.\r\n",
        "nul-dot": b"\r\n\x00.\r\n", "dot-nul": b"\r\n.\x00\r\n",
    }

    def smuggle(self, name, end):
        c = self.connect()
        c.cmd("EHLO smug.example")
        self.assertEqual(c.cmd("MAIL FROM:<outer@example.org>").code, 250)
        self.assertEqual(c.cmd(f"RCPT TO:<{LIST}>").code, 250)
        self.assertEqual(c.cmd("DATA").code, 354)
        inner = (b"MAIL FROM:<spoof@lists.localhost>\r\nRCPT TO:<" + LIST.encode() +
                 b">\r\nDATA\r\nSubject: smuggled-" + name.encode() + b"\r\n\r\nevil\r\n.\r\n")
        c.send(b"Subject: outer-" + name.encode() + b"\r\n\r\nhello" + end + inner)
        c.send(b"QUIT\r\n")
        replies = c.all_replies(timeout=8)
        c.close()
        return replies

    def test_no_smuggling_variant_starts_a_second_message(self):
        for name, end in self.VARIANTS.items():
            with self.subTest(variant=name):
                replies = self.smuggle(name, end)
                codes = [r.code for r in replies]
                self.assertNotIn(354, codes, f"{name}: the smuggled DATA was started: {replies}")
                if "nul" in name:
                    # A NUL line is no end: all of it, the would-be second
                    # message included, is one message, refused for its NUL
                    # (never relayed: a receiver may end DATA there).
                    self.assertEqual(codes, [554, 221], f"{name}: {replies}")
                    self.assertTrue(replies[0].text.startswith("5.6.0"), replies[0])
                    self.assert_not_stored(f"smuggled-{name}")
                    self.assert_not_stored(f"outer-{name}")
                else:
                    self.assertEqual(codes[:1], [521], f"{name}: expected 521 5.5.2, got {replies}")
                    self.assertTrue(replies[0].text.startswith("5.5.2"), replies[0])
                    self.assertNotIn(250, codes, f"{name}: {replies}")
                    self.assert_not_stored(f"smuggled-{name}")
                    self.assert_not_stored(f"outer-{name}")
        self.assert_serving()


class StartTLSInjection(AbuseCase):

    def extra_setup(self):
        cert, key = make_cert(self.fm.dir)
        self.fm.settings.update({"tls_cert_file": cert, "tls_key_file": key})

    def test_commands_pipelined_after_starttls_are_discarded(self):
        c = self.connect()
        ehlo = c.cmd("EHLO inject.example")
        self.assertIn("STARTTLS", ehlo.text)
        r = c.cmd(b"STARTTLS\r\nMAIL FROM:<injected@example.org>")
        self.assertEqual(r.code, 220, f"STARTTLS: {r}")
        c.starttls()
        first = c.cmd("EHLO inject.example")
        self.assertEqual(first.code, 250)
        self.assertEqual(first.lines[0].split()[0], "mx.lists.localhost",
                         f"the first reply over TLS was not EHLO's: {first}")
        r = c.cmd(f"RCPT TO:<{LIST}>")
        self.assertEqual(r.code, 503, f"the injected MAIL took effect: RCPT got {r}")
        c.close()
        self.assertIn("discarding", self.fm.logtext())
        self.assert_serving()

    def test_injection_in_the_same_segment_as_the_handshake_start_fails_the_session(self):
        c = self.connect()
        c.cmd("EHLO inject.example")
        c.send(b"STARTTLS\r\nRSET\r\nRSET\r\nRSET\r\n")
        self.assertEqual(c.reply().code, 220)
        # Nothing but the 220: the RSETs were dropped, not answered in clear.
        self.assertFalse(c.buf, f"plaintext replies after 220: {c.buf!r}")
        c.close()
        self.assert_serving()


class OpenRelay(AbuseCase):
    # (recipient, reply code, enhanced status) as relay testers send them.
    FORMS = [
        ("<victim@example.com>", 550, "5.7.1"),
        ("<victim@[127.0.0.1]>", 550, "5.7.1"),
        ("<victim%example.com@lists.localhost>", 550, "5.1.1"),
        ("<abuse%example.com@lists.localhost>", 550, "5.1.1"),
        ("<victim%example.com>", 501, "5.1.3"),
        ("<@lists.localhost:victim@example.com>", 550, "5.7.1"),
        ("<@lists.localhost,@mx.example.com:victim@example.com>", 550, "5.7.1"),
        ('<"victim@example.com">', 501, "5.1.3"),
        ('<"victim@example.com"@lists.localhost>', 550, "5.1.1"),
        ('<"abuse@lists.localhost"@example.com>', 550, "5.7.1"),
        ("<example.com!victim@lists.localhost>", 550, "5.1.1"),
        ("<example.com!victim>", 501, "5.1.3"),
        ("<victim@example.com@lists.localhost>", 501, "5.1.3"),
        ("<victim@example.com.>", 501, "5.1.3"),
        ("<victim@lists.localhost.example.com>", 550, "5.7.1"),
        ("<abuse@LISTS.LOCALHOST.evil.example>", 550, "5.7.1"),
        ("<postmaster@example.com>", 550, "5.7.1"),
    ]

    def test_every_relay_form_is_refused_with_its_code(self):
        c = self.connect()
        c.cmd("EHLO relay.example")
        self.assertEqual(c.cmd("MAIL FROM:<spammer@example.net>").code, 250)
        for rcpt, code, esc in self.FORMS:
            r = c.cmd(f"RCPT TO:{rcpt}")
            self.assertEqual((r.code, r.text[:5]), (code, esc),
                             f"RCPT TO:{rcpt}: expected {code} {esc}, got {r}")
        # Nothing was accepted, so there is nothing to send.
        self.assertEqual(c.cmd("DATA").code, 554)
        self.assert_serving()


if __name__ == "__main__":
    unittest.main()
