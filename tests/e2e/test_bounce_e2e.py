"""Bounces end to end: fanmaild delivers a post to a sink that refuses one
member, writes its own DSN to LIST-bounces, delivers that DSN straight into
its own inbound spool (a list domain of its own: not over the network), and
the bounce handler scores and disables the member and queues the owner's
notice. The same with VERP (the DSN comes back to LIST-bounces+bob=a.test+SIG@),
with a VERP'd probe whose bounce removes the member, with a
bounce sent straight to a VERP address, and with a 5.7.1 policy refusal that
must not disable anyone.

Waits allow 150 s: the list engine also picks up spool entries on its 60 s
rescan, so a missed wake-up shows as slowness, not as a failure."""
import json
import re
import smtplib
import sqlite3
import unittest

from delivery_util import DeliveryCase
from sink import wait_for

# The list's signed VERP address for member %s (lists/verp.h).
SIGNED = r"^dev-bounces\+%s=a\.test\+[a-z2-7]{12}@lists\.test$"

POST = ("From: Ann <ann@a.test>\r\nTo: dev@lists.test\r\nSubject: hello list\r\n"
        "Message-ID: <post1@a.test>\r\n\r\nHello everyone.\r\n")


class BounceCase(DeliveryCase):
    # One sink: the members' MX. The list domain has no DNS records at all,
    # so its bounces can only come back through fanmaild's local delivery.
    nsinks = 1

    def setUp(self):
        super().setUp()
        self.dns.mx("a.test", "mx.a.test", 10)
        self.dns.host("mx.a.test", self.ip(0))

    def start_list(self, **list_settings):
        self.start_all({"default_list_domain": "lists.test"})
        self.fm.cli("list", "create", "dev@lists.test", "--policy", "open",
                    "--owner", "owner@a.test")
        self.fm.cli("member", "add", "dev@lists.test", "bob@a.test", "cy@a.test")
        pairs = [f"{k}={v}" for k, v in list_settings.items()]
        if pairs:
            self.fm.cli("list", "set", "dev@lists.test", *pairs)

    def post(self):
        with smtplib.SMTP("127.0.0.1", self.fm.port, timeout=30) as s:
            s.sendmail("ann@a.test", ["dev@lists.test"], POST)

    def q(self, sql, *args):
        with sqlite3.connect(self.fm.db, timeout=10) as c:
            return c.execute(sql, args).fetchall()

    def member(self, addr):
        rows = self.q("SELECT status, bounce_score FROM members WHERE addr_key = ?", addr)
        return rows[0] if rows else None

    def wait(self, pred, what, timeout=150):
        try:
            return wait_for(pred, timeout=timeout, step=0.2, what=what)
        except AssertionError:
            raise AssertionError(
                f"timed out waiting for {what}\nmembers: "
                f"{self.q('SELECT address, status, bounce_score FROM members')}\n"
                f"events: {self.q('SELECT address, class, status, reason FROM bounce_events')}\n"
                f"spool: {self.q('SELECT qid, state, outcome FROM spool')}\n"
                f"log:\n{self.fm.logtext()[-3000:]}")

    def owner_notices(self):
        return self.q("SELECT count(*) FROM out_msg m JOIN deliveries d ON d.msg_id = m.id"
                      " WHERE m.kind = 'notice' AND d.rcpt = 'owner@a.test'")[0][0]


class TestBounceEndToEnd(BounceCase):

    def test_550_511_comes_back_as_dsn_and_disables_member(self):
        self.sinks[0].rcpt_reply["bob@a.test"] = "550 5.1.1 <bob@a.test>: user unknown"
        self.start_list(bounce_threshold=1)
        self.post()
        self.wait(lambda: self.member("bob@a.test") == ("disabled", 1.0),
                  "bob disabled with score 1.0")
        ev = self.q("SELECT class, status FROM bounce_events WHERE address = 'bob@a.test'")
        # The "you have been disabled" notice to bob bounces too, so a
        # second hard event may follow; it must not raise the score again
        # the same day.
        self.assertTrue(ev and all(e == ("hard", "5.1.1") for e in ev),
                        f"expected only hard 5.1.1 events, got {ev}")
        self.assertEqual(("disabled", 1.0), self.member("bob@a.test"),
                         "a second bounce the same day must not raise the score")
        # The DSN came in over SMTP to the list's bounce address.
        rows = self.q("SELECT r.role, s.mail_from, s.state FROM spool s JOIN spool_rcpt r"
                      " ON r.spool_id = s.id WHERE r.rcpt = 'dev-bounces@lists.test'")
        self.assertEqual([("bounces", "", "done")], rows[:1], "the DSN spooled as a bounce")
        self.assertRegex(self.fm.logtext(), r"to=<dev-bounces@lists\.test>, relay=local, "
                                            r".*status=sent", "the DSN delivered locally")
        self.wait(lambda: self.owner_notices() >= 1, "the owner's notice queued")
        self.assertEqual(("enabled", 0.0), self.member("cy@a.test"), "cy untouched")
        ls = json.loads(self.fm.cli("bounces", "ls", "--json", "dev@lists.test").stdout)
        bob = [m for m in ls["members"] if m["address"] == "bob@a.test"]
        self.assertEqual(1, len(bob), f"bob in bounces ls: {ls}")
        self.assertEqual(1.0, bob[0]["score"])
        self.assertIn("5.1.1", bob[0]["last_reason"])
        # Re-enabling resets the score.
        self.fm.cli("member", "set", "dev@lists.test", "bob@a.test", "status=enabled")
        self.assertEqual(("enabled", 0.0), self.member("bob@a.test"))

    def test_verp_post_550_511_dsn_comes_back_to_verp_address_and_disables_member(self):
        self.sinks[0].rcpt_reply["bob@a.test"] = "550 5.1.1 <bob@a.test>: user unknown"
        self.start_list(verp="always", bounce_threshold=1)
        self.post()
        self.wait(lambda: self.member("bob@a.test") == ("disabled", 1.0),
                  "bob disabled with score 1.0")
        # The post went out with one envelope sender per recipient.
        with self.sinks[0].lock:
            froms = {r: t.mail_from for t in self.sinks[0].transactions for r in t.rcpts
                     if "hello list" in t.data.decode("utf-8", "replace")}
        self.assertEqual(["cy@a.test"], list(froms), "only cy's copy delivered")
        self.assertRegex(froms["cy@a.test"], SIGNED % "cy",
                         "cy's copy of the post with cy's signed VERP return path")
        mails = [line for _, line in self.sinks[0].commands
                 if line.upper().startswith("MAIL FROM:")]
        bob_from = [re.search(SIGNED[1:-1] % "bob", m) for m in mails]
        bob_from = [m.group(0) for m in bob_from if m]
        self.assertTrue(bob_from,
                        f"bob's copy tried with bob's VERP return path; MAIL FROMs: {mails}")
        out = self.q("SELECT m.verp, m.env_from FROM out_msg m JOIN deliveries d"
                     " ON d.msg_id = m.id WHERE m.kind = 'post' AND d.rcpt = 'bob@a.test'")
        self.assertEqual([(1, "dev-bounces@lists.test")], out, "the post queued with VERP")
        # fanmail's own DSN came back to bob's VERP address, through local
        # delivery, and the handler took the member from the address.
        rows = self.q("SELECT r.role, r.extension, s.mail_from, s.state FROM spool s"
                      " JOIN spool_rcpt r ON r.spool_id = s.id"
                      " WHERE r.rcpt = ?", bob_from[0])
        ext = bob_from[0].split("+", 1)[1].split("@")[0]
        self.assertEqual([("bounces", ext, "", "done")], rows[:1],
                         "the DSN spooled for bob's VERP address, got "
                         f"{self.q('SELECT rcpt, role, extension FROM spool_rcpt')}")
        self.assertRegex(self.fm.logtext(), r"to=<dev-bounces\+bob=a\.test\+[a-z2-7]{12}"
                                            r"@lists\.test>, relay=local, .*status=sent",
                         "the DSN delivered locally to the VERP address")
        ev = self.q("SELECT class, status, scored FROM bounce_events"
                    " WHERE address = 'bob@a.test' ORDER BY id")
        self.assertEqual(("hard", "5.1.1", 1.0), ev[0] if ev else None,
                         f"the first event raised the score by 1, got {ev}")
        self.wait(lambda: self.owner_notices() >= 1, "the owner's notice queued")
        subj = self.q("SELECT m.body FROM out_msg m JOIN deliveries d ON d.msg_id = m.id"
                      " WHERE m.kind = 'notice' AND d.rcpt = 'owner@a.test'")
        self.assertTrue(any("bob@a.test disabled" in (b[0].decode("utf-8", "replace")
                                                      if isinstance(b[0], bytes) else b[0])
                            for b in subj),
                        f"the owner's notice names bob as disabled, got {subj}")
        self.assertEqual(("enabled", 0.0), self.member("cy@a.test"), "cy untouched")

    def test_score_rises_below_threshold_without_disabling(self):
        self.sinks[0].rcpt_reply["bob@a.test"] = "550 5.1.1 <bob@a.test>: user unknown"
        self.start_list(bounce_threshold=3)
        self.post()
        self.wait(lambda: self.member("bob@a.test") == ("enabled", 1.0),
                  "bob's score 1.0, still enabled")
        self.assertEqual(0, self.owner_notices(), "no notice below the threshold")

    def test_bounces_ls_shows_the_score_decayed_to_now(self):
        self.sinks[0].rcpt_reply["bob@a.test"] = "550 5.1.1 <bob@a.test>: user unknown"
        self.start_list(bounce_threshold=3, bounce_decay_after="1s")
        self.post()
        self.wait(lambda: self.member("bob@a.test") == ("enabled", 1.0), "bob's score 1.0")

        def bob():
            ls = json.loads(self.fm.cli("bounces", "ls", "--json", "dev@lists.test").stdout)
            return [m for m in ls["members"] if m["address"] == "bob@a.test"][0]
        # Halved for each full second without a bounce, while the store
        # still holds 1.0 (decay is stored only when the next bounce comes).
        b = self.wait(lambda: (lambda m: m if m["score"] < 1.0 else None)(bob()),
                      "bob's listed score below 1.0", timeout=15)
        self.assertEqual(1.0, b["stored_score"], f"the stored score stays, got {b}")
        self.assertIn(b["score"], [0.5, 0.25, 0.125, 0.0625, 0.03125, 0.015625, 0.0],
                      f"expected 1.0 halved per full period, got {b}")
        self.assertEqual(("enabled", 1.0), self.member("bob@a.test"))
        self.wait(lambda: bob()["score"] == 0.0, "bob's listed score decayed to 0", timeout=20)
        line = [ln for ln in self.fm.cli("bounces", "ls", "dev@lists.test").stdout.splitlines()
                if ln.startswith("bob@a.test\t")]
        self.assertEqual("0.0", line[0].split("\t")[2] if line else None,
                         f"the text listing shows the decayed score, got {line}")

    def test_verp_probe_bounce_removes_member(self):
        self.sinks[0].rcpt_reply["bob@a.test"] = "550 5.1.1 <bob@a.test>: user unknown"
        self.start_list(bounce_threshold=1, bounce_disabled_wait=0,
                        bounce_disabled_action="probe", bounce_notify_member="no")
        self.post()
        self.wait(lambda: self.member("bob@a.test") is None, "bob removed after the probe")
        probes = self.q("SELECT m.verp, m.env_from FROM out_msg m JOIN deliveries d"
                        " ON d.msg_id = m.id WHERE m.kind = 'probe' AND d.rcpt = 'bob@a.test'")
        self.assertEqual([(1, "dev-bounces@lists.test")], probes, "one VERP'd probe")
        froms = [line for _, line in self.sinks[0].commands
                 if line.upper().startswith("MAIL FROM:")]
        self.assertTrue(any(re.search(SIGNED[1:-1] % "bob", f) for f in froms),
                        f"the probe went out with bob's VERP address; MAIL FROMs: {froms}")
        self.assertEqual(("enabled", 0.0), self.member("cy@a.test"))

    def test_bounce_to_verp_address_scores_that_member(self):
        self.start_list(bounce_threshold=1, verp="always")
        self.post()

        def bob_from():
            with self.sinks[0].lock:
                return [t.mail_from for t in self.sinks[0].transactions
                        if "bob@a.test" in t.rcpts]
        sent = wait_for(bob_from, timeout=60, step=0.2, what="bob's copy delivered")
        self.assertRegex(sent[0], SIGNED % "bob")
        body = ("From: MAILER-DAEMON@mx.a.test\r\nTo: dev-bounces@lists.test\r\n"
                "Subject: failure notice\r\n\r\n"
                "Hi. This is the qmail-send program at mx.a.test.\r\n"
                "I'm afraid I wasn't able to deliver your message to the following"
                " addresses.\r\n\r\n<robert.alias@a.test>:\r\n"
                "550 5.1.1 mailbox unknown\r\n\r\n"
                "--- Below this line is a copy of the message.\r\n")
        with smtplib.SMTP("127.0.0.1", self.fm.port, timeout=30) as s:
            # An MTA that upper-cases the return path.
            s.sendmail("", [sent[0].upper()], body)
        self.wait(lambda: self.member("bob@a.test") == ("disabled", 1.0),
                  "bob (named only by the VERP address) disabled")
        self.assertEqual(("enabled", 0.0), self.member("cy@a.test"))

    def test_571_policy_rejection_disables_nobody(self):
        self.sinks[0].rcpt_reply["bob@a.test"] = (
            "550 5.7.1 Message rejected as spam by content filter policy")
        self.start_list(bounce_threshold=1)
        self.post()
        self.wait(lambda: self.q("SELECT class, status FROM bounce_events") ==
                  [("policy", "5.7.1")], "one policy event")
        self.assertEqual(("enabled", 0.0), self.member("bob@a.test"), "bob not penalised")
        self.assertEqual(("enabled", 0.0), self.member("cy@a.test"))
        self.wait(lambda: self.owner_notices() >= 1, "the owner told about the policy bounce")
        out = self.fm.cli("bounces", "ls", "dev@lists.test").stdout
        self.assertRegex(out, r"policy\ta\.test\t1\t")


if __name__ == "__main__":
    unittest.main()
