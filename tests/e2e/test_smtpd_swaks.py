"""swaks against fanmaild: plain, --pipeline, STARTTLS with a self-signed
certificate made at test time, and the STARTTLS plaintext injection."""
import os
import socket
import ssl
import subprocess
import unittest

from smtpd_util import Dialog, SmtpdCase, make_cert, spool_rows


def swaks(port, *args, to="demo@lists.localhost"):
    p = subprocess.run(["swaks", "--server", f"127.0.0.1:{port}", "--to", to,
                        "--from", "sender@example.org", "--helo", "swaks.example",
                        "--timeout", "20", *args],
                       capture_output=True, text=True, timeout=60)
    return p


class SwaksPlainTest(SmtpdCase):
    def test_swaks_plain_is_accepted(self):
        p = swaks(self.port)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertRegex(p.stdout, r"<-  250 2\.0\.0 Ok: queued as [0-9A-F]{16}")
        self.assertNotIn("STARTTLS", p.stdout)
        self.assertEqual(len(spool_rows(self.fm)), 1)

    def test_swaks_pipeline_is_accepted(self):
        p = swaks(self.port, "--pipeline")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("PIPELINING", p.stdout)
        self.assertRegex(p.stdout, r"250 2\.0\.0 Ok: queued as")
        self.assertEqual(len(spool_rows(self.fm)), 1)

    def test_swaks_pipeline_with_a_refused_recipient(self):
        p = swaks(self.port, "--pipeline", to="demo@lists.localhost,nobody@lists.localhost")
        self.assertIn("550 5.1.1", p.stdout)
        self.assertRegex(p.stdout, r"250 2\.0\.0 Ok: queued as")
        rows = spool_rows(self.fm)
        self.assertEqual([r[0] for r in rows[0][3]], ["demo@lists.localhost"])

    def test_swaks_relay_attempt_is_refused(self):
        p = swaks(self.port, to="someone@example.com")
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("550 5.7.1", p.stdout)
        self.assertEqual(spool_rows(self.fm), [])


class SwaksTlsTest(SmtpdCase):
    def setUp(self):
        import fmtest
        fmtest.TestCase.setUp(self)
        cert, key = make_cert(self.fm.dir)
        self.fm.settings.update({"tls_cert_file": cert, "tls_key_file": key})
        self.start_daemon()

    def test_swaks_tls_is_accepted_and_received_names_the_cipher(self):
        p = swaks(self.port, "-tls")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("250-STARTTLS", p.stdout)
        self.assertIn("220 2.0.0 Ready to start TLS", p.stdout)
        rows = spool_rows(self.fm)
        self.assertEqual(len(rows), 1)
        body = rows[0][2]
        self.assertIn(b"with ESMTPS id", body)
        self.assertRegex(body.split(b"\r\n\r\n")[0],
                         rb"\(using TLSv1\.[23] with cipher [A-Z0-9_-]+ \(\d+/\d+ bits\)\)")
        self.assertIn("TLS established: TLSv1.", self.fm.logtext())

    def test_starttls_plaintext_injection_is_discarded(self):
        d = Dialog(self.port)
        d.cmd(b"EHLO c\r\n")
        # RSET and MAIL ride in the same packet as STARTTLS: the CVE-2011-0411
        # class. They must never be answered as if sent over TLS.
        d.send(b"STARTTLS\r\nRSET\r\nMAIL FROM:<injected@example.org>\r\n")
        code, lines = d.reply()
        self.assertEqual(code, 220, lines)
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        tls = ctx.wrap_socket(d.sock, server_hostname="mx.lists.localhost")
        d.sock = tls
        self.assertEqual(d.buf, b"", "plaintext reply after STARTTLS")
        code, lines = d.cmd(b"EHLO c\r\n")
        self.assertEqual(code, 250, lines)
        self.assertTrue(lines[0].startswith(b"250-"), f"first reply over TLS was {lines}")
        self.assertNotIn(b"STARTTLS", b"".join(lines))
        # The injected MAIL was dropped: a MAIL now is not nested.
        self.assertEqual(d.cmd(b"MAIL FROM:<a@example.org>\r\n")[0], 250)
        self.assertEqual(d.cmd(b"STARTTLS\r\n")[0], 503)
        d.close()
        self.assertIn("discarding", self.fm.logtext())

    def test_starttls_needs_ehlo_and_no_transaction(self):
        d = Dialog(self.port)
        self.assertEqual(d.cmd(b"STARTTLS\r\n")[0], 503)
        d.cmd(b"EHLO c\r\n")
        d.cmd(b"MAIL FROM:<a@example.org>\r\n")
        self.assertEqual(d.cmd(b"STARTTLS\r\n")[0], 503)
        self.assertEqual(d.cmd(b"STARTTLS now\r\n")[0], 501)
        d.close()


class TlsRequiredTest(SmtpdCase):
    def setUp(self):
        import fmtest
        fmtest.TestCase.setUp(self)
        cert, key = make_cert(self.fm.dir)
        self.fm.settings.update({"tls_cert_file": cert, "tls_key_file": key,
                                 "tls_required": "yes"})
        self.start_daemon()

    def test_mail_before_starttls_is_530(self):
        d = Dialog(self.port)
        d.cmd(b"EHLO c\r\n")
        code, lines = d.cmd(b"MAIL FROM:<a@example.org>\r\n")
        self.assertEqual(code, 530, lines)
        self.assertTrue(lines[0].startswith(b"530 5.7.0"))
        d.close()
        p = swaks(self.port, "-tls")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)


if __name__ == "__main__":
    unittest.main()
