"""Nothing acknowledged is lost, nothing unacknowledged is half-stored:
SIGKILL right after a 250, SIGTERM with a transaction in flight, the
shutdown deadline, and a locked database."""
import os
import re
import signal
import subprocess
import smtplib
import socket
import sqlite3
import threading
import time
import unittest

import fmtest
from smtpd_util import Dialog, SmtpdCase, spool_count, spool_rows, wait_db

MSG = b"From: a@example.org\r\nSubject: keep me\r\n\r\nbody\r\n"


class KillTest(SmtpdCase):
    def test_sigkill_right_after_250_keeps_the_message(self):
        with smtplib.SMTP("127.0.0.1", self.port, timeout=10) as s:
            s.ehlo("c")
            s.mail("a@example.org")
            s.rcpt("demo@lists.localhost")
            code, text = s.data(MSG)
            self.fm.proc.send_signal(signal.SIGKILL)
        self.assertEqual(code, 250)
        qid = text.decode().rsplit(" ", 1)[1]
        self.assertEqual(self.fm.stop(), -signal.SIGKILL)
        self.fm.start()
        wait_db(self.fm)
        rows = spool_rows(self.fm)
        self.assertEqual([r[0] for r in rows], [qid], f"expected {qid} in the spool, got {rows}")
        self.assertTrue(rows[0][2].endswith(MSG))
        self.assertEqual(rows[0][3], [("demo@lists.localhost", 1, "post", None)])
        with sqlite3.connect(self.fm.db) as c:
            self.assertEqual(c.execute("PRAGMA integrity_check").fetchone()[0], "ok")

    def test_sigkill_mid_data_stores_nothing(self):
        d = Dialog(self.port)
        d.cmd(b"EHLO c\r\n")
        self.data_dialog(d)
        d.send(b"Subject: half\r\n\r\nhalf a message\r\n")
        time.sleep(0.2)
        self.fm.proc.send_signal(signal.SIGKILL)
        d.close()
        self.fm.stop()
        self.assertEqual(spool_count(self.fm), 0)


class TermTest(SmtpdCase):
    settings = {"shutdown_timeout": "10s"}

    def test_sigterm_lets_the_transaction_in_flight_finish(self):
        idle = Dialog(self.port)
        idle.cmd(b"EHLO idle\r\n")
        busy = Dialog(self.port)
        busy.cmd(b"EHLO busy\r\n")
        self.data_dialog(busy)
        busy.send(b"Subject: in flight\r\n\r\nfirst half\r\n")
        time.sleep(0.2)
        self.fm.proc.send_signal(signal.SIGTERM)
        # The idle session is told at once; new clients are not taken.
        code, lines = idle.reply()
        self.assertEqual(code, 421, lines)
        self.assertTrue(lines[0].startswith(b"421 4.3.2"), lines)
        deadline = time.monotonic() + 5
        refused = False
        while time.monotonic() < deadline and not refused:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                time.sleep(0.05)
            except OSError:
                refused = True
        self.assertTrue(refused, "fanmaild still accepts connections after SIGTERM")
        self.assertIsNone(self.fm.proc.poll(), "fanmaild exited with a transaction in flight")
        code, lines = busy.cmd(b"second half\r\n.\r\n")
        self.assertEqual(code, 250, lines)
        qid = lines[0].decode().rsplit(" ", 1)[1]
        code, lines = busy.reply()
        self.assertEqual(code, 421, lines)
        self.assertEqual(self.fm.proc.wait(10), 0)
        rows = spool_rows(self.fm)
        self.assertEqual([r[0] for r in rows], [qid])
        self.assertTrue(rows[0][2].endswith(b"first half\r\nsecond half\r\n"))
        idle.close()
        busy.close()


class DeadlineTest(SmtpdCase):
    settings = {"shutdown_timeout": "1s"}

    def test_unfinished_transaction_is_dropped_at_the_deadline(self):
        busy = Dialog(self.port)
        busy.cmd(b"EHLO busy\r\n")
        self.data_dialog(busy)
        busy.send(b"Subject: never finished\r\n\r\n")
        time.sleep(0.2)
        t = time.monotonic()
        self.fm.proc.send_signal(signal.SIGTERM)
        self.assertEqual(self.fm.proc.wait(10), 0)
        self.assertLess(time.monotonic() - t, 5)
        self.assertTrue(busy.closed())
        busy.close()
        self.assertEqual(spool_count(self.fm), 0)


class GroupCommitTest(SmtpdCase):
    settings = {"log_level": "debug"}

    def test_concurrent_sessions_share_commits(self):
        n = 40
        barrier = threading.Barrier(n)
        codes = []

        def client():
            with smtplib.SMTP("127.0.0.1", self.port, timeout=30) as s:
                s.ehlo("c")
                s.mail("a@example.org")
                s.rcpt("demo@lists.localhost")
                s.putcmd("data")
                s.getreply()
                barrier.wait(30)
                s.send(MSG + b".\r\n")
                codes.append(s.getreply()[0])

        threads = [threading.Thread(target=client) for _ in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        self.assertEqual(codes, [250] * n)
        self.assertEqual(spool_count(self.fm), n)
        sizes = [int(x) for x in re.findall(r"spool commit: (\d+) messages", self.fm.logtext())]
        self.assertEqual(sum(sizes), n, f"commit sizes {sizes}")
        self.assertLess(len(sizes), n, f"every message had its own commit: {sizes}")


class LockedTest(SmtpdCase):
    def test_locked_database_is_452_and_nothing_stored(self):
        locked = threading.Event()
        release = threading.Event()

        def hold():
            c = sqlite3.connect(self.fm.db, timeout=10, isolation_level=None)
            c.execute("BEGIN EXCLUSIVE")
            locked.set()
            release.wait(30)
            c.execute("ROLLBACK")
            c.close()

        t = threading.Thread(target=hold)
        t.start()
        try:
            self.assertTrue(locked.wait(10))
            d = Dialog(self.port, timeout=30)
            d.cmd(b"EHLO c\r\n")
            self.data_dialog(d)
            code, lines = d.cmd(b"Subject: x\r\n\r\nbody\r\n.\r\n")
            self.assertEqual(code, 452, lines)
            self.assertTrue(lines[0].startswith(b"452 4.3.1"), lines)
        finally:
            release.set()
            t.join(30)
        self.data_dialog(d)
        code, lines = d.cmd(b"Subject: x\r\n\r\nbody\r\n.\r\n")
        self.assertEqual(code, 250, lines)
        d.close()
        self.assertEqual(spool_count(self.fm), 1)


class DiskFullTest(SmtpdCase):
    """The database on a 3 MB tmpfs: once the disk is full, 452 4.3.1 and
    nothing half-stored; everything answered 250 is there."""

    def setUp(self):
        fmtest.TestCase.setUp(self)
        fmtest.require_root(self, "mounting a small tmpfs")
        self.mnt = os.path.join(self.fm.dir, "small")
        os.mkdir(self.mnt)
        p = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", self.mnt],
                           capture_output=True, text=True, timeout=30)
        if p.returncode != 0:
            self.fail(f"cannot mount a tmpfs: {p.stderr.strip()}")
        # Cleanups run last-in first-out: stop fanmaild, then unmount.
        self.addCleanup(subprocess.run, ["umount", "-l", self.mnt], timeout=30)
        self.addCleanup(self.fm.stop)
        self.fm.db = os.path.join(self.mnt, "fanmail.db")
        self.fm.settings["database"] = self.fm.db
        self.start_daemon()

    def test_full_disk_is_452_and_nothing_half_stored(self):
        chunk = b"Subject: big\r\n\r\n" + (b"z" * 76 + b"\r\n") * 5000  # 390 KB
        queued, refused = [], None
        d = Dialog(self.port, timeout=30)
        d.cmd(b"EHLO c\r\n")
        for _ in range(30):
            self.data_dialog(d)
            code, lines = d.cmd(chunk + b".\r\n")
            if code == 250:
                queued.append(lines[0].decode().rsplit(" ", 1)[1])
                continue
            refused = (code, lines)
            break
        self.assertIsNotNone(refused, "a 3 MB disk took 30 messages of 390 KB")
        self.assertEqual(refused[0], 452, refused)
        self.assertTrue(refused[1][0].startswith(b"452 4.3.1"), refused)
        self.assertEqual(d.cmd(b"NOOP\r\n")[0], 250, "the session did not survive")
        d.close()
        rows = spool_rows(self.fm)
        self.assertEqual([r[0] for r in rows], queued)
        for r in rows:
            self.assertTrue(r[2].endswith(chunk), f"{r[0]} is truncated")
        self.assertIn("the disk is full", self.fm.logtext())


if __name__ == "__main__":
    unittest.main()
