"""fanmaild under valgrind memcheck for one end-to-end run: posts through
SMTP (plain and STARTTLS), bad input, the list engine, delivery to a sink
found through dnsmasq, then SIGTERM. The bar is zero errors: no invalid
read or write, no use of uninitialised memory, no definite leak.

Skipped in the sanitizer build (valgrind cannot run ASan binaries): the
plain build's run is the one that counts.
"""
import os
import re
import shutil
import signal
import smtplib
import ssl
import subprocess
import time
import unittest

import fmtest
from delivery_util import DeliveryCase
from hardening import sanitized
from sink import wait_for
from smtpd_util import make_cert

LIST = "vg@lists.test"
VALGRIND = shutil.which("valgrind")


@fmtest.require(VALGRIND is not None, "valgrind is not installed (scripts/deps installs it)")
@fmtest.require(not sanitized(), "valgrind cannot run an ASan build (tests/CMakeLists.txt "
                "registers this test in the plain build only)")
class Memcheck(DeliveryCase):
    nsinks = 1

    def start_under_valgrind(self):
        fm = self.fm
        fm.write_conf()
        self.vglog = os.path.join(fm.dir, "valgrind.log")
        fm.log = open(fm.log_path, "ab")
        fm.proc = subprocess.Popen(
            [VALGRIND, "--tool=memcheck", "--error-exitcode=99", "--leak-check=full",
             "--errors-for-leak-kinds=definite", "--show-leak-kinds=definite",
             "--track-origins=yes", "--num-callers=30", f"--log-file={self.vglog}",
             fmtest.FANMAILD, "-c", fm.conf], stdout=fm.log, stderr=subprocess.STDOUT)
        fmtest.wait_port("127.0.0.1", fm.port, timeout=120)

    def test_daemon_run_has_no_memcheck_errors(self):
        self.dns.mx("d.test", "mx.d.test", 10)
        self.dns.host("mx.d.test", self.ip(0))
        cert, key = make_cert(self.fm.dir)
        self.fm.start = lambda *a, **k: self.start_under_valgrind()
        self.start_all({"tls_cert_file": cert, "tls_key_file": key,
                        "smtp_reply_timeout": "30s"})
        self.fm.cli("list", "create", LIST, "--policy", "open")
        self.fm.cli("member", "add", LIST, "a@d.test", "b@d.test", "c@d.test")
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        for n in range(3):
            with smtplib.SMTP("127.0.0.1", self.fm.port, timeout=120) as s:
                if n == 1:
                    s.starttls(context=ctx)
                s.ehlo("vg.example")
                s.docmd("BOGUS")
                s.docmd("RCPT TO:<nobody@elsewhere.example>")
                s.sendmail("poster@example.org", [LIST],
                           (f"From: poster@example.org\r\nSubject: =?utf-8?q?vg_caf=C3=A9?= {n}\r\n"
                            "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n"
                            "Content-Type: text/plain\r\n\r\nhello\r\n--b--\r\n").encode())
        wait_for(lambda: len(self.sinks[0].all_rcpts()) >= 9, timeout=180,
                 what="three posts delivered to three members")
        self.fm.proc.send_signal(signal.SIGTERM)
        rc = self.fm.proc.wait(180)
        self.fm.proc = None
        self.fm.log.close()
        with open(self.vglog) as f:
            report = f.read()
        m = re.search(r"ERROR SUMMARY: (\d+) errors", report)
        self.assertIsNotNone(m, f"no valgrind summary:\n{report[-3000:]}")
        self.assertEqual((rc, int(m.group(1))), (0, 0),
                         f"expected exit 0 and 0 errors, got exit {rc}:\n{report[-6000:]}")
        print("\nvalgrind:", m.group(0))


if __name__ == "__main__":
    unittest.main()
