"""The posting path end to end: a real SMTP client posts to fanmaild, the
list engine queues one message for the members, delivery hands it to
receiving SMTP servers (sinks) found through a real DNS server (dnsmasq),
and `fanmail queue ls|show --json` show the message and its recipients.
DMARC policies come from `_dmarc` TXT records served by the same dnsmasq.
"""
import email
import email.policy
import json
import mailbox
import os
import smtplib
import sqlite3
import unittest

from delivery_util import DeliveryCase
from sink import wait_for

LIST = "test@lists.test"


def post(fm, sender, from_hdr, subject="hello", extra="", body="Hi all.\r\n", rcpt=LIST):
    host, port = fm.settings["listen"].rsplit(":", 1)
    msg = (f"From: {from_hdr}\r\nTo: {rcpt}\r\nSubject: {subject}\r\n"
           f"Message-ID: <{abs(hash((sender, subject, extra)))}@example>\r\n{extra}\r\n{body}")
    with smtplib.SMTP(host, int(port), timeout=30) as s:
        s.sendmail(sender, [rcpt], msg.encode())


class EngineCase(DeliveryCase):
    nsinks = 4  # a.test, b.test, c.test, and the owner's o.test

    def setUp(self):
        super().setUp()
        for i, dom in enumerate(["a.test", "b.test", "c.test", "o.test"]):
            self.dns.mx(dom, f"mx.{dom}", 10)
            self.dns.host(f"mx.{dom}", self.ip(i))

    def start_list(self, settings=None, members=("ann@a.test", "bob@b.test", "cy@c.test")):
        self.start_all()
        self.fm.cli("list", "create", LIST, "--owner", "boss@o.test")
        self.fm.cli("member", "add", LIST, *members)
        if settings:
            self.fm.cli("list", "set", LIST, *[f"{k}={v}" for k, v in settings.items()])

    def spool_outcomes(self):
        with sqlite3.connect(self.fm.db, timeout=10) as c:
            return c.execute("SELECT state, outcome FROM spool ORDER BY id").fetchall()

    def wait_handled(self, n):
        try:
            wait_for(lambda: sum(1 for s, _ in self.spool_outcomes() if s != "new") >= n,
                     timeout=30, what=f"{n} spool entries handled")
        except AssertionError:
            raise AssertionError(f"expected {n} entries handled, got {self.spool_outcomes()}\n"
                                 f"log:\n{self.fm.logtext()[-3000:]}")

    def queue(self, kind=None):
        out = json.loads(self.fm.cli("queue", "ls", "--json").stdout)
        return [m for m in out if kind is None or m["kind"] == kind]

    def received(self, sink):
        return [email.message_from_bytes(t.data, policy=email.policy.default)
                for t in self.sinks[sink].transactions]


class TestPosting(EngineCase):

    def test_member_post_reaches_the_other_members_with_list_headers(self):
        self.start_list()
        post(self.fm, "ann@a.test", "Ann <ann@a.test>", subject="Re: [test] Re: [test] news")
        self.wait_handled(1)
        posts = self.queue("post")
        self.assertEqual(1, len(posts), f"expected one post in the queue, got {posts}")
        self.assertEqual("test-bounces@lists.test", posts[0]["from"])
        show = json.loads(self.fm.cli("queue", "show", posts[0]["qid"], "--json").stdout)
        rcpts = sorted(r["rcpt"] for r in show["recipients"])
        self.assertEqual(["bob@b.test", "cy@c.test"], rcpts,
                         "recipients: every member but the poster")
        self.wait_states({"sent": 2}, posts[0]["qid"])
        self.assertEqual([], self.sinks[0].transactions, "the poster gets no copy")
        for i in (1, 2):
            (m,) = self.received(i)
            self.assertEqual("Re: [test] news", m["Subject"])
            self.assertEqual("test <test.lists.test>", m["List-Id"])
            self.assertEqual("<mailto:test-leave@lists.test>", m["List-Unsubscribe"])
            self.assertEqual("list", m["Precedence"])
            self.assertEqual("Ann <ann@a.test>", m["From"])
            self.assertEqual("test-bounces@lists.test", self.sinks[i].transactions[0].mail_from)
        with sqlite3.connect(self.fm.db) as c:
            (n,) = c.execute("SELECT count(*) FROM archive").fetchone()
        self.assertEqual(1, n, "the post is archived")

    def test_non_member_post_is_held_and_not_sent(self):
        self.start_list()
        post(self.fm, "eve@c.test", "Eve <eve@c.test>")
        self.wait_handled(1)
        self.assertEqual([], self.queue("post"), "nothing goes to the list")
        (state, outcome), = self.spool_outcomes()
        self.assertEqual("done", state)
        self.assertIn("held: non-member", outcome)

    def test_non_member_post_rejected_with_notice_to_the_poster(self):
        self.start_list({"nonmember_action": "reject"})
        post(self.fm, "eve@c.test", "Eve <eve@c.test>")
        self.wait_handled(1)
        self.assertEqual([], self.queue("post"))
        notices = self.queue("notice")
        self.assertEqual(1, len(notices), f"expected one notice, got {notices}")
        show = json.loads(self.fm.cli("queue", "show", notices[0]["qid"], "--json").stdout)
        self.assertEqual(["eve@c.test"], [r["rcpt"] for r in show["recipients"]])
        self.wait_states({"sent": 1}, notices[0]["qid"])
        (m,) = self.received(2)
        self.assertIn("not accepted", m["Subject"])
        self.assertEqual("auto-replied", m["Auto-Submitted"])

    def test_self_copy_member_gets_own_post(self):
        self.start_list()
        with sqlite3.connect(self.fm.db, timeout=10) as c:
            c.execute("UPDATE members SET self_copy = 1 WHERE address = 'ann@a.test'")
        post(self.fm, "ann@a.test", "ann@a.test")
        self.wait_handled(1)
        (p,) = self.queue("post")
        self.wait_states({"sent": 3}, p["qid"])
        self.assertEqual(1, len(self.sinks[0].transactions))

    def test_message_carrying_our_list_id_is_dropped_as_a_loop(self):
        self.start_list()
        post(self.fm, "ann@a.test", "ann@a.test", extra="List-Id: <test.lists.test>\r\n")
        self.wait_handled(1)
        self.assertEqual([], self.queue())
        (state, outcome), = self.spool_outcomes()
        self.assertIn("dropped: loop", outcome)
        self.assertRegex(self.fm.logtext(), r"engine: to=<test@lists\.test>, role=post, "
                                            r"dropped: loop")

    def test_footer_and_reply_to_from_list_settings(self):
        self.start_list({"footer": "--\\nLeave: test-leave@lists.test", "reply_to": "list"})
        post(self.fm, "ann@a.test", "ann@a.test")
        self.wait_handled(1)
        (p,) = self.queue("post")
        self.wait_states({"sent": 2}, p["qid"])
        (m,) = self.received(1)
        self.assertEqual("test@lists.test", m["Reply-To"].addresses[0].addr_spec)
        self.assertTrue(m.get_content().endswith("Hi all.\r\n--\r\nLeave: test-leave@lists.test\r\n"),
                        f"footer after the body, got {m.get_content()!r}")

    def test_archive_export_writes_every_post_as_mbox(self):
        self.start_list()
        post(self.fm, "ann@a.test", "Ann <ann@a.test>", subject="first",
             body="From the start, a line that mbox must quote.\r\n")
        post(self.fm, "bob@b.test", "Bob <bob@b.test>", subject="second")
        post(self.fm, "eve@c.test", "Eve <eve@c.test>", subject="held, not archived")
        self.wait_handled(3)
        path = os.path.join(self.fm.dir, "test.mbox")
        self.fm.cli("archive", "export", LIST, "-o", path)
        box = mailbox.mbox(path)
        subjects = [m["Subject"] for m in box]
        self.assertEqual(["[test] first", "[test] second"], subjects)
        self.assertEqual("From the start, a line that mbox must quote.\n",
                         box[0].get_payload().replace(">From ", "From ", 1))
        with open(path) as f:
            self.assertIn("\n>From the start", f.read())
        out = self.fm.cli("archive", "export", "nosuch@lists.test", check=False)
        self.assertEqual(66, out.returncode, f"unknown list is EX_NOINPUT: {out.stderr}")


class TestLongLines(EngineCase):
    """No line fanmail sends is over 998 octets (RFC 5322 2.1.1): the
    subject prefix used to unfold a folded Subject onto one line."""

    def raw_lines(self, sink):
        (t,) = self.sinks[sink].transactions
        return t.data.split(b"\r\n")

    def header_lines(self, raw, name):
        out, inside = [], False
        for line in raw:
            if line == b"":
                break
            if line[:1] in (b" ", b"\t"):
                if inside:
                    out.append(line)
                continue
            inside = line.lower().startswith(name.lower() + b":")
            if inside:
                out.append(line)
        return out

    def check_post(self, settings, subject, expect_subject, soft=True):
        self.start_list(settings, members=("ann@a.test", "bob@b.test"))
        post(self.fm, "ann@a.test", "Ann <ann@a.test>", subject=subject)
        self.wait_handled(1)
        (p,) = self.queue("post")
        self.wait_states({"sent": 1}, p["qid"])
        raw = self.raw_lines(1)
        longest = max(len(line) for line in raw)
        self.assertLessEqual(longest, 998, f"expected no line over 998 octets, the longest "
                                           f"has {longest}")
        subj = self.header_lines(raw, b"Subject")
        if soft:
            self.assertTrue(all(len(line) <= 78 for line in subj),
                            f"expected the Subject folded to 78, got lengths "
                            f"{[len(line) for line in subj]}")
        (m,) = self.received(1)
        self.assertEqual(expect_subject, str(m["Subject"]))
        return raw, m

    def test_folded_80_line_subject_is_folded_again_after_the_prefix(self):
        words = [f"word{i:02d}" for i in range(160)]
        folded = "\r\n ".join(" ".join(words[i:i + 2]) for i in range(0, 160, 2))
        raw, _ = self.check_post(None, folded, "[test] " + " ".join(words))
        self.assertGreater(len(self.header_lines(raw, b"Subject")), 10)

    def test_a_subject_word_too_long_for_any_line_is_encoded(self):
        # 3,000 octets with no white space, as adjacent encoded-words
        # (which a reader joins): written out again as encoded-words.
        chunks = ["=?utf-8?q?" + "x" * 60 + "?=" for _ in range(50)]
        self.check_post(None, "\r\n ".join(chunks) + "\r\n tail",
                        "[test] " + "x" * 3000 + " tail")


    def test_long_archive_url_and_footer_line_stay_under_998(self):
        url = "https://archive.example/" + "a" * 990
        footer = "--\\n" + "f" * 1500
        raw, m = self.check_post({"archive_url": url, "footer": footer}, "hi", "[test] hi")
        self.assertEqual(f"<{url}>", "".join(str(m["List-Archive"]).split()))
        body = m.get_body(preferencelist=("plain",))
        texts = [part.get_content() for part in m.walk()
                 if part.get_content_type() == "text/plain"]
        self.assertTrue(any("f" * 1500 in t for t in texts),
                        f"expected the footer line whole after decoding, got {texts!r}")


class TestDmarc(EngineCase):

    def test_reject_policy_rewrites_from(self):
        self.dns.txt("_dmarc.a.test", "v=DMARC1; p=reject; rua=mailto:x@a.test")
        self.start_list({"display_name": "Test List"})
        post(self.fm, "ann@a.test", "Ann <ann@a.test>")
        self.wait_handled(1)
        (p,) = self.queue("post")
        self.wait_states({"sent": 2}, p["qid"])
        (m,) = self.received(1)
        self.assertEqual("Ann via Test List <test@lists.test>", m["From"])
        self.assertEqual("Ann <ann@a.test>", m["Reply-To"])
        (_, outcome), = self.spool_outcomes()
        self.assertIn("dmarc=reject (From rewritten)", outcome)

    def test_none_policy_leaves_from_alone(self):
        self.dns.txt("_dmarc.a.test", "v=DMARC1; p=none")
        self.start_list()
        post(self.fm, "ann@a.test", "Ann <ann@a.test>")
        self.wait_handled(1)
        (p,) = self.queue("post")
        self.wait_states({"sent": 2}, p["qid"])
        (m,) = self.received(1)
        self.assertEqual("Ann <ann@a.test>", m["From"])

    def test_subdomain_uses_organizational_domain_sp(self):
        # _dmarc.mail.b.test has no record: the organizational domain
        # b.test (public suffix list) answers, and sp= applies.
        self.dns.txt("_dmarc.b.test", "v=DMARC1; p=none; sp=quarantine")
        self.start_list(members=("ann@a.test", "bob@b.test", "sub@mail.b.test"))
        post(self.fm, "sub@mail.b.test", "Sub <sub@mail.b.test>")
        self.wait_handled(1)
        (p,) = self.queue("post")
        self.wait_states({"sent": 2}, p["qid"])
        (m,) = self.received(0)
        self.assertEqual("Sub via test <test@lists.test>", m["From"])

    def test_wrap_as_message_rfc822(self):
        self.dns.txt("_dmarc.a.test", "v=DMARC1; p=quarantine")
        self.start_list({"dmarc_mitigation": "wrap"})
        post(self.fm, "ann@a.test", "Ann <ann@a.test>", subject="wrapped")
        self.wait_handled(1)
        (p,) = self.queue("post")
        self.wait_states({"sent": 2}, p["qid"])
        (m,) = self.received(1)
        self.assertEqual("message/rfc822", m.get_content_type())
        inner = m.get_content()
        self.assertEqual("Ann <ann@a.test>", inner["From"])
        self.assertEqual("wrapped", inner["Subject"])
        self.assertEqual("[test] wrapped", m["Subject"])

    def test_policy_is_kept_for_its_ttl(self):
        # dnsmasq gives the record a TTL of 0: fanmail keeps an answer at
        # least a minute, so the second post is decided without DNS.
        self.dns.txt("_dmarc.a.test", "v=DMARC1; p=reject")
        self.start_list()
        post(self.fm, "ann@a.test", "Ann <ann@a.test>", subject="one")
        self.wait_handled(1)
        self.dns.stop()
        post(self.fm, "ann@a.test", "Ann <ann@a.test>", subject="two")
        self.wait_handled(2)
        outcomes = [o for _, o in self.spool_outcomes()]
        self.assertIn("dmarc=reject (From rewritten)", outcomes[0])
        self.assertIn("dmarc=reject (From rewritten)", outcomes[1],
                      "the second post's policy comes from the cache, DNS being down")

    def test_failed_lookup_applies_fallback(self):
        self.start_list({"dmarc_fallback": "skip"},
                        members=("ann@a.test", "bob@b.test", "x@c.test"))
        self.dns.stop()  # every lookup now times out
        post(self.fm, "ann@a.test", "Ann <ann@a.test>")
        self.wait_handled(1)
        (_, outcome), = self.spool_outcomes()
        self.assertIn("dmarc=lookup failed", outcome)
        self.assertNotIn("From rewritten", outcome)


if __name__ == "__main__":
    unittest.main()
