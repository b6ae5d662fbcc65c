"""Digests end to end (issue 15): posts through fanmaild's SMTP server, a
sink as every member's MX. Regular members get each post as before; a
`delivery=digest` member gets one MIME digest with every post as a
message/rfc822 part (read with Python's email package), a
`delivery=digest-text` member one RFC 1153 digest that `formail -ds`
(Debian's procmail) splits into the posts. A held post enters a digest
only once approved; the issue number continues across a restart; a
second `digest send` sends nothing."""
import email
import email.policy
import json
import os
import shutil
import smtplib
import sqlite3
import subprocess
import tempfile
import unittest

import fmtest
from delivery_util import DeliveryCase
from sink import wait_for

LIST = "dev@lists.test"


@fmtest.require(shutil.which("formail"), "formail missing (Debian package procmail)")
class Digests(DeliveryCase):
    nsinks = 1

    def setUp(self):
        super().setUp()
        self.dns.mx("a.test", "mx.a.test", 10)
        self.dns.host("mx.a.test", self.ip(0))
        self.start_all({"queue_run_interval": "1s"})
        self.fm.cli("list", "create", LIST)
        # Only by hand: no interval, no early issue.
        self.fm.cli("list", "set", LIST, "digest_interval=0", "digest_max_posts=0",
                    "digest_max_size=0")
        for who in ("reg", "dig", "txt", "ann"):
            self.fm.cli("member", "add", LIST, f"{who}@a.test")
        self.fm.cli("member", "set", LIST, "dig@a.test", "delivery=digest")
        self.fm.cli("member", "set", LIST, "txt@a.test", "delivery=digest-text")

    def post(self, subject, sender="ann@a.test"):
        msg = (f"From: <{sender}>\r\nTo: {LIST}\r\nSubject: {subject}\r\n"
               f"Message-ID: <{subject.replace(' ', '.')}@a.test>\r\n\r\n"
               f"The text of {subject}.\r\n").encode()
        with smtplib.SMTP("127.0.0.1", self.fm.port, timeout=30) as s:
            s.sendmail(sender, [LIST], msg)

    def pending(self):
        with sqlite3.connect(self.fm.db, timeout=10) as c:
            return c.execute("SELECT count(*) FROM digest_posts WHERE issue_id IS NULL"
                             " AND list_id = (SELECT id FROM lists WHERE local = 'dev')"
                             ).fetchone()[0]

    def got(self, rcpt, marker):
        return [t.data for t in list(self.sinks[0].transactions)
                if t.data and rcpt in t.rcpts and marker in t.data]

    def wait_got(self, rcpt, marker, n=1):
        return wait_for(lambda: (lambda g: g if len(g) >= n else None)(self.got(rcpt, marker)),
                        timeout=30, what=f"{n} message(s) with {marker!r} for {rcpt}")

    def send(self):
        return self.fm.cli("digest", "send", LIST).stdout

    def split_text(self, raw):
        out = tempfile.mkdtemp(prefix="fm-digest-split-")
        self.addCleanup(shutil.rmtree, out, True)
        subprocess.run(["formail", "+1", "-ds", "sh", "-c", 'cat > "$0/$FILENO"', out],
                       input=raw.replace(b"\r\n", b"\n"), check=True, timeout=30)
        msgs = []
        for f in sorted(os.listdir(out), key=int):
            with open(os.path.join(out, f), "rb") as fh:
                msgs.append(email.message_from_bytes(fh.read(), policy=email.policy.default))
        return msgs

    def test_digest_members_get_one_issue_regular_members_each_post(self):
        subjects = ["first post", "second post", "third post"]
        for s in subjects:
            self.post(s)
        for s in subjects:
            self.wait_got("reg@a.test", s.encode())
        wait_for(lambda: self.pending() == 3, timeout=30, what="3 posts pending")
        for s in subjects:
            self.assertEqual([], self.got("dig@a.test", s.encode()), "digest member got a post")
            self.assertEqual([], self.got("txt@a.test", s.encode()))
        out = self.send()
        self.assertIn("vol 1 issue 1, 3 post(s)", out)

        mime = self.wait_got("dig@a.test", b"Vol 1, Issue 1")
        self.assertEqual(1, len(mime))
        msg = email.message_from_bytes(mime[0], policy=email.policy.default)
        self.assertEqual("dev digest, Vol 1, Issue 1", msg["Subject"])
        self.assertEqual("multipart/mixed", msg.get_content_type())
        self.assertIn("<dev.lists.test>", msg["List-Id"])
        digest = [p for p in msg.walk() if p.get_content_type() == "multipart/digest"]
        self.assertEqual(1, len(digest))
        parts = digest[0].get_payload()
        self.assertEqual(["message/rfc822"] * 3, [p.get_content_type() for p in parts])
        self.assertEqual([f"[dev] {s}" for s in subjects],
                         [p.get_payload()[0]["Subject"] for p in parts])

        text = self.wait_got("txt@a.test", b"Vol 1, Issue 1")
        self.assertEqual(1, len(text))
        self.assertEqual([], self.got("txt@a.test", b"multipart/digest"))
        posts = self.split_text(text[0])
        self.assertEqual([f"[dev] {s}" for s in subjects], [p["Subject"] for p in posts])
        for p, s in zip(posts, subjects):
            self.assertIn(f"The text of {s}.", p.get_content())

        # Exactly once: nothing is pending, a second send sends nothing.
        self.assertEqual(0, self.pending())
        self.assertIn("nothing pending", self.send())
        j = json.loads(self.fm.cli("digest", "ls", LIST, "--json").stdout)
        self.assertEqual([], j["pending"])
        self.assertEqual([(1, 1, 3)], [(i["volume"], i["number"], i["posts"])
                                       for i in j["issues"]])

    def test_held_post_enters_only_when_approved_and_numbering_survives_restart(self):
        self.post("members post")
        self.wait_got("reg@a.test", b"members post")
        self.post("outsider post", sender="out@b.test")
        wait_for(lambda: self.pending() == 1, timeout=30, what="1 post pending")
        with sqlite3.connect(self.fm.db, timeout=10) as c:
            wait_for(lambda: c.execute("SELECT count(*) FROM holds WHERE state = 'held'"
                                       ).fetchone()[0] == 1, timeout=30, what="a held post")
            hold = c.execute("SELECT id FROM holds").fetchone()[0]
        self.assertIn("vol 1 issue 1, 1 post(s)", self.send())
        self.wait_got("dig@a.test", b"Issue 1")
        self.assertEqual([], self.got("dig@a.test", b"outsider post"))

        self.fm.cli("mod", "approve", LIST, str(hold))
        self.assertEqual(1, self.pending())
        self.fm.stop()
        self.fm.start()
        self.assertIn("vol 1 issue 2, 1 post(s)", self.send())
        self.wait_got("dig@a.test", b"outsider post")
        self.wait_got("txt@a.test", b"outsider post")

    def test_rejected_post_never_enters(self):
        self.fm.cli("list", "set", LIST, "nonmember_action=reject")
        self.post("rejected post", sender="out@b.test")
        self.post("accepted post")
        wait_for(lambda: self.pending() == 1, timeout=30, what="1 post pending")
        self.send()
        got = self.wait_got("dig@a.test", b"Issue 1")
        self.assertNotIn(b"rejected post", got[0])
        self.assertIn(b"accepted post", got[0])

    def test_max_posts_sends_early_and_regular_again_by_cli(self):
        self.fm.cli("list", "set", LIST, "digest_max_posts=2")
        self.post("one")
        self.post("two")
        self.wait_got("dig@a.test", b"Vol 1, Issue 1")
        self.assertIn("engine: digest: list=<dev@lists.test>, vol 1 issue 1", self.fm.logtext())
        self.fm.cli("member", "set", LIST, "dig@a.test", "delivery=regular")
        self.post("three")
        self.wait_got("dig@a.test", b"three")


if __name__ == "__main__":
    unittest.main()
