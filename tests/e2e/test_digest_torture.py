"""Digest crash torture (issue 15): posts keep arriving over SMTP to a list
with regular, digest and digest-text members; digest_max_posts is 3, so the
engine sends issues all the time, and `fanmail digest send` runs beside it;
fanmaild is killed with SIGKILL at random moments and restarted each time.

At the end, after a final `fanmail digest send`:
- no post is pending; every post that got a 250 after DATA is in exactly
  one issue (digest_posts), and a post whose final reply was lost to a kill
  is in at most one;
- every issue was queued: its MIME and text messages are in out_msg with a
  recipient row per digest (digest-text) member;
- issue numbers run 1, 2, 3, ... in the order the issues were made, none
  reused or skipped;
- the digest members get every issue, and each acknowledged post's
  Message-ID is in exactly one issue they received (a redelivery of the
  same issue after a kill is the same issue);
- PRAGMA integrity_check is ok.

TORTURE_KILLS and TORTURE_SEED as for test_hardening_torture.
"""
import collections
import json
import os
import random
import re
import signal
import socket
import sqlite3
import threading
import time
import unittest

from delivery_util import DeliveryCase
from sink import wait_for

LIST = "dt@lists.test"
KILLS = int(os.environ.get("TORTURE_KILLS", "8"))
SEED = int(os.environ.get("TORTURE_SEED", str(random.randrange(1 << 30))))
DIGEST = [f"d{i}@a.test" for i in range(3)]
TEXT = [f"t{i}@a.test" for i in range(3)]
REGULAR = ["r0@a.test"]
MSGID = re.compile(rb"Message-ID: <dt\.(\d+)\.\d+@example\.org>", re.I)
ISSUE = re.compile(rb"^Subject: dt digest, Vol 1, Issue (\d+)\r?$", re.M)


class Poster(threading.Thread):
    """One post a session, as fast as the daemon takes them; records each
    post's final reply (as in test_hardening_torture)."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.port = port
        self.stop = threading.Event()
        self.acked, self.in_doubt, self.other = set(), set(), set()
        self.n = 0

    def run(self):
        while not self.stop.is_set():
            self.n += 1
            n = self.n
            body = (f"From: poster@example.org\r\nTo: {LIST}\r\nSubject: dt {n}\r\n"
                    f"Message-ID: <dt.{n}.{SEED}@example.org>\r\n\r\n" +
                    f"digest post {n}\r\n" * 10).encode()
            sent_dot = False
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=20) as s:
                    f = s.makefile("rb")

                    def reply():
                        while True:
                            line = f.readline()
                            if not line:
                                raise ConnectionError("closed")
                            if line[3:4] != b"-":
                                return int(line[:3])

                    def cmd(data, want):
                        s.sendall(data)
                        if reply() != want:
                            raise ValueError(data)

                    if reply() != 220:
                        raise ValueError("greeting")
                    cmd(b"EHLO poster.example\r\n", 250)
                    cmd(b"MAIL FROM:<poster@example.org>\r\n", 250)
                    cmd(f"RCPT TO:<{LIST}>\r\n".encode(), 250)
                    cmd(b"DATA\r\n", 354)
                    s.sendall(body + b".\r\n")
                    sent_dot = True
                    (self.acked if reply() == 250 else self.other).add(n)
                    try:
                        s.sendall(b"QUIT\r\n")
                    except OSError:
                        pass
                time.sleep(0.02)
            except ValueError:
                self.other.add(n)
            except (OSError, ConnectionError):
                (self.in_doubt if sent_dot else self.other).add(n)
                time.sleep(0.1)


class Sender(threading.Thread):
    """`fanmail digest send` now and then, racing the engine's issues."""

    def __init__(self, fm, rnd):
        super().__init__(daemon=True)
        self.fm, self.rnd = fm, rnd
        self.stop = threading.Event()
        self.runs = 0

    def run(self):
        while not self.stop.wait(self.rnd.uniform(0.2, 1.0)):
            self.fm.cli("digest", "send", LIST, check=False, timeout=60)
            self.runs += 1


class DigestTorture(DeliveryCase):
    nsinks = 1

    def test_sigkill_at_random_moments_each_post_in_exactly_one_issue(self):
        rnd = random.Random(SEED)
        self.dns.mx("a.test", "mx.a.test", 10)
        self.dns.host("mx.a.test", self.ip(0))
        self.start_all({"queue_run_interval": "1s"})
        self.fm.cli("list", "create", LIST, "--policy", "open")
        self.fm.cli("list", "set", LIST, "digest_max_posts=3", "digest_interval=0",
                    "digest_max_size=0")
        for a in DIGEST + TEXT + REGULAR:
            self.fm.cli("member", "add", LIST, a)
        for a in DIGEST:
            self.fm.cli("member", "set", LIST, a, "delivery=digest")
        for a in TEXT:
            self.fm.cli("member", "set", LIST, a, "delivery=digest-text")

        t0 = time.monotonic()
        poster = Poster(self.fm.port)
        sender = Sender(self.fm, random.Random(SEED + 1))
        poster.start()
        sender.start()
        kills = 0
        try:
            for _ in range(KILLS):
                time.sleep(rnd.uniform(0.3, 2.0))
                self.fm.proc.send_signal(signal.SIGKILL)
                self.fm.proc.wait(10)
                self.fm.stop()
                kills += 1
                time.sleep(rnd.uniform(0, 0.3))
                self.fm.start()
            time.sleep(1)
        finally:
            poster.stop.set()
            sender.stop.set()
            poster.join(30)
            sender.join(60)
        self.assertGreater(len(poster.acked), 10, "too few posts acknowledged")
        # Let the engine handle what the spool holds, then the last issue.
        wait_for(lambda: self.spool_open() == 0, timeout=30, what="the spool handled")
        self.fm.cli("digest", "send", LIST)
        info = f"(seed {SEED})\nlog:\n{self.fm.logtext()[-3000:]}"

        with sqlite3.connect(self.fm.db, timeout=30) as c:
            pending = c.execute("SELECT count(*) FROM digest_posts WHERE issue_id IS NULL"
                                ).fetchone()[0]
            issues = c.execute("SELECT id, volume, number, posts, qid_mime, qid_text"
                               " FROM digest_issues ORDER BY id").fetchall()
            rows = c.execute("SELECT issue_id, body FROM digest_posts").fetchall()
            queued = {qid: n for qid, n in c.execute(
                "SELECT m.qid, count(d.msg_id) FROM out_msg m LEFT JOIN deliveries d"
                " ON d.msg_id = m.id WHERE m.kind = 'digest' GROUP BY m.id")}
            ic = c.execute("PRAGMA integrity_check").fetchall()
        self.assertEqual(0, pending, f"posts pending after the final send {info}")
        self.assertEqual(list(range(1, len(issues) + 1)), [i[2] for i in issues],
                         f"issue numbers not 1, 2, 3, ... in order {info}")
        self.assertEqual({1}, {i[1] for i in issues})
        in_issue = collections.defaultdict(list)
        per_issue = collections.Counter()
        for issue_id, body in rows:
            m = MSGID.search(body)
            self.assertIsNotNone(m, f"a digest post without our Message-ID: {body[:300]!r}")
            in_issue[int(m.group(1))].append(issue_id)
            per_issue[issue_id] += 1
        for iid, _, number, posts, qm, qt in issues:
            self.assertEqual(posts, per_issue[iid], f"issue {number}: post count {info}")
            self.assertGreater(posts, 0, f"issue {number} is empty")
            self.assertEqual(len(DIGEST), queued.get(qm), f"issue {number}: MIME not queued")
            self.assertEqual(len(TEXT), queued.get(qt), f"issue {number}: text not queued")
        missing = sorted(poster.acked - set(in_issue))
        self.assertEqual([], missing[:20], f"{len(missing)} acknowledged post(s) in no issue "
                         f"{info}")
        twice = {n: v for n, v in in_issue.items() if len(v) > 1}
        self.assertEqual({}, twice, f"posts in more than one issue {info}")
        never = set(in_issue) - poster.acked - poster.in_doubt
        self.assertEqual(set(), never, "posts in an issue that were never sent in full")
        self.assertEqual(ic, [("ok",)], f"integrity_check: {ic}")

        # What the digest members received: every issue, each acknowledged
        # post in exactly one of them.
        numbers = {i[2] for i in issues}

        def received(rcpt):
            got = collections.defaultdict(set)  # issue number -> post numbers
            with self.sinks[0].lock:
                txns = list(self.sinks[0].transactions)
            for t in txns:
                m = ISSUE.search(t.data or b"")
                if m and rcpt in t.rcpts:
                    got[int(m.group(1))] |= {int(x) for x in MSGID.findall(t.data)}
            return got

        for rcpt in (DIGEST[0], TEXT[0]):
            got = wait_for(lambda: (lambda g: g if set(g) >= numbers else None)(received(rcpt)),
                           timeout=60, what=f"every issue at {rcpt}")
            where = collections.Counter(p for posts in got.values() for p in posts)
            self.assertEqual([], sorted(n for n in poster.acked if where[n] != 1)[:20],
                             f"acknowledged posts not in exactly one issue at {rcpt} {info}")
        # Regular members are unaffected: the same posts one by one.
        figures = {"kills": kills, "posts_acked": len(poster.acked),
                   "posts_in_doubt": len(poster.in_doubt), "issues": len(issues),
                   "cli_sends": sender.runs, "seconds": round(time.monotonic() - t0),
                   "seed": SEED}
        print("\ndigest torture:", json.dumps(figures))

    def spool_open(self):
        with sqlite3.connect(self.fm.db, timeout=30) as c:
            return c.execute("SELECT count(*) FROM spool WHERE state = 'new'"
                             ).fetchone()[0]


if __name__ == "__main__":
    unittest.main()
