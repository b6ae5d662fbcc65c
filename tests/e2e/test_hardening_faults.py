"""Faults around fanmaild, end to end (a post through SMTP, the list
engine, delivery): receiving servers that answer 421 at the greeting, drop
the connection in mid-DATA, stall past the reply timeout, answer slowly, or
refuse some recipients; a DNS server that answers SERVFAIL or nothing; a
full disk under the database. In every case mail is deferred and later
delivered, or refused with a 4xx before the 250, and nothing is lost.
"""
import os
import smtplib
import sqlite3
import subprocess
import time
import unittest

import fmtest
from delivery_util import DeliveryCase
from hardening import DnsFront
from sink import wait_for

LIST = "faults@lists.test"


def post(fm, n, rcpt=LIST):
    msg = (f"From: poster@example.org\r\nTo: {rcpt}\r\nSubject: fault {n}\r\n"
           f"Message-ID: <fault.{n}.{time.time_ns()}@example.org>\r\n\r\nbody {n}\r\n")
    with smtplib.SMTP("127.0.0.1", fm.port, timeout=30) as s:
        s.sendmail("poster@example.org", [rcpt], msg.encode())


class FaultCase(DeliveryCase):
    nsinks = 5

    def states(self, qid=None):
        with sqlite3.connect(self.fm.db, timeout=10) as c:
            return {r: (s, a, lr) for r, s, a, lr in c.execute(
                "SELECT rcpt, state, attempts, last_reply FROM deliveries d JOIN out_msg m"
                " ON m.id = d.msg_id WHERE m.kind = 'post'")}

    def wait_final(self, rcpts, timeout=90):
        def done():
            st = self.states()
            return all(r in st and st[r][0] in ("sent", "failed") for r in rcpts)
        try:
            wait_for(done, timeout=timeout, step=0.2, what="every recipient sent or failed")
        except AssertionError:
            raise AssertionError(f"states: {self.states()}\nlog:\n{self.fm.logtext()[-4000:]}")
        return self.states()

    def got(self, sink):
        return [r for t in self.sinks[sink].transactions for r in t.rcpts]


class ReceivingServerFaults(FaultCase):

    def test_each_misbehaving_server_defers_then_delivers(self):
        doms = ["g421", "drop", "stall", "slow", "rej"]
        for i, d in enumerate(doms):
            self.dns.mx(f"{d}.test", f"mx.{d}.test", 10)
            self.dns.host(f"mx.{d}.test", self.ip(i))
        g421, drop, stall, slow, rej = self.sinks
        g421.greetings = ["421 4.7.0 busy, come back later"] * 2
        drop.drop_in_data = 2
        stall.stall = 5          # past smtp_reply_timeout (2s)
        slow.data_delay = 1.5    # slow, but inside the timeout
        rej.rcpt_replies["f@rej.test"] = ["451 4.2.1 try later"]
        rej.rcpt_reply["g@rej.test"] = "550 5.1.1 no such user"
        self.start_all({"smtp_reply_timeout": "2s", "connect_timeout": "2s"})
        self.fm.cli("list", "create", LIST, "--policy", "open")
        members = ["a@g421.test", "b@drop.test", "c@stall.test", "d@slow.test", "e@rej.test",
                   "f@rej.test", "g@rej.test"]
        self.fm.cli("member", "add", LIST, *members)
        post(self.fm, 1)
        # The stalled server gets well for the retries after its timeouts.
        wait_for(lambda: self.states().get("c@stall.test", ("", 0))[1] >= 1, timeout=60,
                 what="a first attempt at the stalled server")
        stall.stall = 0
        st = self.wait_final(members)
        for r in members:
            want = "failed" if r == "g@rej.test" else "sent"
            self.assertEqual(st[r][0], want, f"{r}: expected {want}, got {st[r]}")
        for r in ("a@g421.test", "b@drop.test", "c@stall.test", "f@rej.test"):
            self.assertGreaterEqual(st[r][1], 2, f"{r}: expected a deferral then a retry: {st[r]}")
        self.assertEqual(st["d@slow.test"][1], 1, f"slow but in time: {st['d@slow.test']}")
        self.assertIn("550", st["g@rej.test"][2] or "")
        for i, r in enumerate(["a@g421.test", "b@drop.test", "c@stall.test", "d@slow.test"]):
            self.assertIn(r, self.got(i), f"{r} not received by its server")
        self.assertIn("e@rej.test", self.got(4))
        self.assertIn("f@rej.test", self.got(4))
        self.assertIsNone(self.fm.proc.poll(), "fanmaild exited")


class DnsFaults(FaultCase):

    def test_servfail_then_timeout_defer_and_mail_goes_out_when_dns_recovers(self):
        self.dns.mx("d.test", "mx.d.test", 10)
        self.dns.host("mx.d.test", self.ip(0))
        self.dns.start()
        front = DnsFront(self.dns.port)
        self.addCleanup(front.stop)
        front.mode = "servfail"
        real = self.dns.server
        self.dns.start = lambda: None          # started above
        self.dns.port = front.port             # fanmaild asks the front
        self.start_all()
        self.fm.cli("list", "create", LIST, "--policy", "open")
        self.fm.cli("member", "add", LIST, "x@d.test")
        post(self.fm, 1)
        wait_for(lambda: self.states().get("x@d.test", ("", 0))[1] >= 1, timeout=60,
                 what="an attempt during SERVFAIL")
        self.assertEqual(self.states()["x@d.test"][0], "deferred", self.states())
        self.assertGreater(front.queries["servfail"], 0)
        front.mode = "drop"
        n = self.states()["x@d.test"][1]
        wait_for(lambda: self.states()["x@d.test"][1] > n, timeout=60,
                 what="an attempt while DNS does not answer")
        self.assertEqual(self.states()["x@d.test"][0], "deferred", self.states())
        self.assertGreater(front.queries["drop"], 0)
        self.assertEqual(self.got(0), [], "delivered while DNS was failing")
        front.mode = "pass"
        st = self.wait_final(["x@d.test"], timeout=90)
        self.assertEqual(st["x@d.test"][0], "sent", f"{st} (upstream {real})")
        self.assertEqual(self.got(0), ["x@d.test"])


class FullDisk(FaultCase):
    nsinks = 1

    def setUp(self):
        super().setUp()
        fmtest.require_root(self, "the full-disk test mounts a tmpfs")
        self.mnt = os.path.join(self.fm.dir, "small")
        os.mkdir(self.mnt)
        p = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=6m", "tmpfs", self.mnt],
                           capture_output=True, text=True)
        if p.returncode != 0:
            self.fail(f"cannot mount a tmpfs here: {p.stderr.strip()}")
        self.addCleanup(subprocess.run, ["umount", "-l", self.mnt], capture_output=True)
        self.fm.db = os.path.join(self.mnt, "fanmail.db")
        self.fm.settings["database"] = self.fm.db

    def fill(self, leave):
        """Fills the tmpfs until `leave` bytes are free."""
        path = os.path.join(self.mnt, "filler")
        st = os.statvfs(self.mnt)
        free = st.f_bavail * st.f_frsize
        with open(path, "ab") as f:
            f.write(b"\0" * max(0, free - leave))
        return path

    def test_full_disk_refuses_with_4xx_before_250_and_nothing_acked_is_lost(self):
        self.dns.mx("d.test", "mx.d.test", 10)
        self.dns.host("mx.d.test", self.ip(0))
        self.start_all()
        self.fm.cli("list", "create", LIST, "--policy", "open")
        self.fm.cli("member", "add", LIST, "x@d.test")
        post(self.fm, 0)
        filler = self.fill(leave=400 * 1024)
        acked, refused = [], []
        big = "y" * 70 + "\r\n"
        for n in range(1, 80):
            msg = (f"From: p@example.org\r\nSubject: fault {n}\r\n\r\n" + big * 200).encode()
            try:
                with smtplib.SMTP("127.0.0.1", self.fm.port, timeout=30) as s:
                    s.sendmail("p@example.org", [LIST], msg)
                acked.append(n)
            except smtplib.SMTPDataError as e:
                refused.append((n, e.smtp_code, e.smtp_error))
                self.assertEqual(e.smtp_code // 100, 4, f"post {n}: expected 4xx, got {e}")
                if len(refused) >= 3:
                    break
            except smtplib.SMTPResponseException as e:
                self.assertEqual(e.smtp_code // 100, 4, f"post {n}: expected 4xx, got {e}")
                refused.append((n, e.smtp_code, e.smtp_error))
                if len(refused) >= 3:
                    break
        self.assertTrue(refused, "the disk never filled up")
        self.assertIsNone(self.fm.proc.poll(), "fanmaild exited on a full disk")
        os.unlink(filler)
        post(self.fm, 1000)  # the disk has room again: accepted
        want = {0, 1000, *acked}
        subjects = lambda: {int(t.data.split(b"Subject: ")[1].split(b"\r\n")[0].split()[-1])
                            for t in self.sinks[0].transactions}
        try:
            wait_for(lambda: want <= subjects(), timeout=90, what="every acked post delivered")
        except AssertionError:
            raise AssertionError(f"missing {sorted(want - subjects())}; refused {refused}\n"
                                 f"{self.fm.logtext()[-3000:]}")
        self.assertEqual(subjects() & {n for n, _, _ in refused}, set(),
                         "a post refused with 4xx was delivered")
        self.fm.stop()
        with sqlite3.connect(self.fm.db) as c:
            self.assertEqual(c.execute("PRAGMA integrity_check").fetchall(), [("ok",)])
        print(f"\nfull disk: {len(acked)} acked while filling, refused {refused[:1]}")


if __name__ == "__main__":
    unittest.main()
