"""Personalized delivery (list setting personalize, issue 13) end to end:
posts over real SMTP to fanmaild, delivered to Python sinks at several
domains. Each member of a personalize=yes list gets exactly one copy in a
transaction of its own, the envelope sender VERP'd to them, their own
List-Unsubscribe (a one-click URL whose token checks for that member,
recomputed here from the key in the store) with List-Unsubscribe-Post,
and the footer variables %m and %u filled in (plain and quoted-printable
footers); no marker leaks and the copies are otherwise identical. A list
that is not personalized still batches, with the <BASE/unsubscribe/LIST>
URL and no List-Unsubscribe-Post. Mail to LIST-leave+TOKEN taken from a
copy unsubscribes that member at once; a forged token does not."""
import base64
import email
import email.policy
import hashlib
import hmac
import re
import smtplib
import sqlite3
import unittest

from delivery_util import DeliveryCase
from sink import wait_for

BASE = "https://lists.test/mail"
MEMBERS = ["bob@a.test", "cy@a.test", "Dee.Case@B.test", "eve@b.test", "fox@c.test"]
DOMAINS = ["a.test", "b.test", "c.test"]

PLAIN = ("From: Ann <ann@ext.test>\r\nTo: dev@lists.test\r\nSubject: news\r\n"
         "Message-ID: <p1@ext.test>\r\n\r\nHello everyone.\r\n.a line with a dot\r\n")
QP = ("From: Ann <ann@ext.test>\r\nTo: dev@lists.test\r\nSubject: nouvelles\r\n"
      "Message-ID: <p2@ext.test>\r\nMIME-Version: 1.0\r\n"
      "Content-Type: text/plain; charset=utf-8\r\n"
      "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
      "Caf=C3=A9 =C3=A0 midi.\r\n")


def b32(data):
    return base64.b32encode(data).decode().rstrip("=").lower()


def addr_key(addr):
    local, dom = addr.rsplit("@", 1)
    return f"{local.lower()}@{dom.lower()}"


class PersonalCase(DeliveryCase):
    nsinks = 3

    def setUp(self):
        super().setUp()
        for i, dom in enumerate(DOMAINS):
            self.dns.mx(dom, f"mx.{dom}", 10)
            self.dns.host(f"mx.{dom}", self.ip(i))

    def start_list(self, name="dev", members=MEMBERS, **settings):
        self.fm.cli("list", "create", f"{name}@lists.test", "--policy", "open",
                    "--owner", "owner@a.test")
        self.fm.cli("member", "add", f"{name}@lists.test", *members)
        pairs = [f"{k}={v}" for k, v in settings.items()]
        if pairs:
            self.fm.cli("list", "set", f"{name}@lists.test", *pairs)

    def start(self, **extra):
        s = {"default_list_domain": "lists.test", "http_base_url": BASE}
        s.update(extra)
        self.start_all(s)

    def post(self, msg, to="dev@lists.test", sender="ann@ext.test"):
        with smtplib.SMTP("127.0.0.1", self.fm.port, timeout=30) as s:
            s.sendmail(sender, [to], msg)

    def q(self, sql, *args):
        with sqlite3.connect(self.fm.db, timeout=10) as c:
            return c.execute(sql, args).fetchall()

    def keys(self):
        return {int(n.split(".")[1]): bytes(v) for n, v in
                self.q("SELECT name, value FROM secrets WHERE name LIKE 'oneclick.%'")}

    def token_for(self, list_id, addr, version=None):
        keys = self.keys()
        v = version if version is not None else max(keys)
        k = addr_key(addr)
        mac = hmac.new(keys[v], f"fanmail-oneclick\n{list_id}\n{k}\n{v}".encode(),
                       hashlib.sha256).digest()
        return f"{v}-{b32(k.encode())}-{b32(mac[:10])}"

    def list_id(self, name="dev"):
        return self.q("SELECT id FROM lists WHERE local = ?", name)[0][0]

    def copies(self, marker):
        """{rcpt: Txn} of the transactions carrying marker (bytes)."""
        out = {}
        for s in self.sinks:
            with s.lock:
                for t in s.transactions:
                    if marker in t.data:
                        for r in t.rcpts:
                            self.assertNotIn(r, out, f"{r} got two copies")
                            out[r] = t
        return out

    def wait_copies(self, marker, n):
        try:
            wait_for(lambda: len(self.copies(marker)) >= n, timeout=60, what=f"{n} copies")
        except AssertionError:
            raise AssertionError(f"copies: {list(self.copies(marker))}\n"
                                 f"log:\n{self.fm.logtext()[-4000:]}")
        return self.copies(marker)


class TestPersonalized(PersonalCase):

    def check_copies(self, copies, footer_of):
        lid = self.list_id()
        canon = set()
        for rcpt, t in copies.items():
            self.assertEqual([rcpt], t.rcpts, "one recipient per transaction")
            local, dom = rcpt.split("@")
            self.assertRegex(t.mail_from, rf"^dev-bounces\+{re.escape(local)}="
                                          rf"{re.escape(dom)}\+[a-z2-7]{{12}}@lists\.test$",
                             "envelope sender VERP'd to the member")
            self.assertNotIn(b"\0", t.data, "no marker leaks")
            m = email.message_from_bytes(t.data, policy=email.policy.default)
            tok = self.token_for(lid, rcpt)
            url = f"{BASE}/unsubscribe/dev@lists.test/{tok}"
            lu = re.sub(r"\s+", "", m["List-Unsubscribe"])
            self.assertEqual(f"<{url}>,<mailto:dev-leave+{tok}@lists.test>", lu,
                             f"{rcpt}: own List-Unsubscribe")
            self.assertEqual("List-Unsubscribe=One-Click", m["List-Unsubscribe-Post"])
            self.assertEqual(1, len(m.get_all("List-Unsubscribe")))
            text = footer_of(m)
            self.assertIn(f"You are {rcpt}.", text, f"{rcpt}: %m in the footer")
            self.assertIn(f"Leave: {url}", text, f"{rcpt}: %u in the footer")
            # Everything but the member's own parts is the same for all
            # (the footer compared decoded: quoted-printable soft breaks
            # fall where each value's length puts them).
            raw = t.data.decode("utf-8")
            raw = re.sub(r"(?im)^List-Unsubscribe(-Post)?:.*(\r\n[ \t].*)*\r\n", "", raw)
            head = raw.split("\r\n\r\n", 1)[0]
            canon.add(head + "\n\n" + text.replace(rcpt, "RCPT").replace(url, "URL"))
        self.assertEqual(1, len(canon), "copies differ only in the member's parts")
        return canon.pop()

    def test_each_member_gets_own_copy_plain_footer(self):
        self.start(domain_concurrency="1")
        self.start_list(personalize="yes", footer="--\\nYou are %m.\\nLeave: %u")
        self.post(PLAIN)
        copies = self.wait_copies(b"Hello everyone.", len(MEMBERS))
        self.assertEqual(sorted(MEMBERS), sorted(copies))
        body = self.check_copies(copies, lambda m: m.get_content())
        self.assertIn("\r\n.a line with a dot\r\n", body, "dots unstuffed by the sink")
        self.assertNotIn("List-Unsubscribe", body)
        # Different members, different tokens, each checked above.
        toks = {re.search(r"/([0-9]+-[a-z2-7]+-[a-z2-7]{16})>", str(email.message_from_bytes(
            t.data)["List-Unsubscribe"])).group(1) for t in copies.values()}
        self.assertEqual(len(MEMBERS), len(toks))
        rows = self.q("SELECT personal, verp FROM out_msg WHERE kind = 'post'")
        self.assertEqual([(1, 1)], rows, "one stored message, personal and VERP")
        stored = self.q("SELECT body FROM out_msg WHERE kind = 'post'")[0][0]
        self.assertNotIn(b"List-Unsubscribe", stored)
        self.assertIn(b"\0mr\0", stored, "the stored body keeps the marker")
        # One connection per domain, reused for each of its copies.
        self.assertEqual(len(DOMAINS), sum(s.connections for s in self.sinks))

    def test_quoted_printable_footer_and_archive(self):
        self.start()
        self.start_list(personalize="yes", archive="yes",
                        footer="-- \\nListe gérée. You are %m.\\nLeave: %u")
        self.post(QP)
        copies = self.wait_copies(b"Caf=C3=A9", len(MEMBERS))
        for t in copies.values():
            self.assertIn(b"Content-Transfer-Encoding: quoted-printable", t.data)
        self.check_copies(copies, lambda m: m.get_content())
        arch = self.q("SELECT raw FROM archive")
        self.assertEqual(1, len(arch))
        a = bytes(arch[0][0])
        self.assertNotIn(b"\0", a, "no marker in the archive")
        text = email.message_from_bytes(a, policy=email.policy.default).get_content()
        self.assertIn("You are dev@lists.test.", text)
        self.assertIn(f"Leave: {BASE}/unsubscribe/dev@lists.test", text)

    def test_footer_as_own_part_of_multipart(self):
        self.start()
        self.start_list(personalize="yes", footer="--\\nYou are %m.\\nLeave: %u")
        self.post("From: Ann <ann@ext.test>\r\nTo: dev@lists.test\r\nSubject: alt\r\n"
                  "MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=zz\r\n"
                  "\r\n--zz\r\nContent-Type: text/plain\r\n\r\nplain one\r\n"
                  "--zz\r\nContent-Type: text/html\r\n\r\n<p>html one</p>\r\n--zz--\r\n")
        copies = self.wait_copies(b"plain one", len(MEMBERS))

        def footer(m):
            parts = [p for p in m.walk() if p.get_content_type() == "text/plain"]
            return parts[-1].get_content()
        self.check_copies(copies, footer)

    def test_downgrade_per_copy(self):
        # No 8BITMIME at the receivers: each rendered copy is downgraded
        # (the 8-bit text becomes quoted-printable), footer values and all.
        for s in self.sinks:
            s.eightbitmime = False
            s.smtputf8 = False
        self.start()
        self.start_list(personalize="yes", footer="--\\nYou are %m.\\nLeave: %u")
        self.post(("From: Ann <ann@ext.test>\r\nTo: dev@lists.test\r\nSubject: 8bit\r\n"
                   "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
                   "Content-Transfer-Encoding: 8bit\r\n\r\nCafé à midi.\r\n").encode())
        copies = self.wait_copies(b"Subject: [dev] 8bit", len(MEMBERS))
        for t in copies.values():
            self.assertTrue(all(b < 128 for b in t.data), "7-bit on the wire")
        self.check_copies(copies, lambda m: m.get_content())

    def test_not_personalized_batches_with_unsubscribe_page(self):
        self.start()
        self.start_list(footer="--\\nYou are %m.\\nLeave: %u")
        self.post(PLAIN)
        copies = self.wait_copies(b"Hello everyone.", len(MEMBERS))
        txns = {id(t): t for t in copies.values()}
        self.assertEqual(len(DOMAINS), len(txns), "one transaction per domain")
        for t in txns.values():
            self.assertEqual("dev-bounces@lists.test", t.mail_from)
            m = email.message_from_bytes(t.data, policy=email.policy.default)
            self.assertEqual("<mailto:dev-leave@lists.test>,<%s/unsubscribe/dev@lists.test>"
                             % BASE, re.sub(r"\s+", "", m["List-Unsubscribe"]))
            self.assertIsNone(m["List-Unsubscribe-Post"], "not one-click")
            self.assertIn(f"Leave: {BASE}/unsubscribe/dev@lists.test", m.get_content())

    def test_no_http_base_only_mailto(self):
        self.start(http_base_url="")
        self.start_list(personalize="yes", footer="--\\nLeave: %u")
        self.post(PLAIN)
        copies = self.wait_copies(b"Hello everyone.", len(MEMBERS))
        lid = self.list_id()
        for rcpt, t in copies.items():
            m = email.message_from_bytes(t.data, policy=email.policy.default)
            tok = self.token_for(lid, rcpt)
            self.assertEqual(f"<mailto:dev-leave+{tok}@lists.test>",
                             re.sub(r"\s+", "", m["List-Unsubscribe"]))
            self.assertIsNone(m["List-Unsubscribe-Post"])
            self.assertIn(f"Leave: mailto:dev-leave+{tok}@lists.test", m.get_content())
        self.assertEqual(1, self.fm.logtext().count("no HTTP base URL"), "warned once")


class TestLeaveByToken(PersonalCase):

    def member(self, addr):
        return self.q("SELECT status FROM members WHERE addr_key = ?", addr_key(addr))

    def test_mailto_token_from_a_copy_unsubscribes_that_member(self):
        self.start()
        self.start_list(personalize="yes", owner_notify_leave="yes")
        self.post(PLAIN)
        copies = self.wait_copies(b"Hello everyone.", len(MEMBERS))
        lu = email.message_from_bytes(copies["eve@b.test"].data)["List-Unsubscribe"]
        mailto = re.search(r"<mailto:([^>]+)>", re.sub(r"\s+", "", lu)).group(1)
        self.assertTrue(mailto.startswith("dev-leave+"), mailto)
        # A forged token (one letter of the signature changed) and another
        # member's name under eve's signature change nothing.
        local, dom = mailto.split("@")
        forged = local[:-1] + ("a" if local[-1] != "a" else "b") + "@" + dom
        bob_tok = self.token_for(self.list_id(), "bob@a.test")
        swapped = (f"dev-leave+{bob_tok.rsplit('-', 1)[0]}-"
                   f"{local.rsplit('-', 1)[1]}@{dom}")
        for bad in (forged, swapped):
            self.post(f"From: x@ext.test\r\nTo: {bad}\r\nSubject: unsubscribe\r\n\r\n.\r\n",
                      to=bad, sender="x@ext.test")
        wait_for(lambda: self.q("SELECT count(*) FROM spool WHERE state = 'done'")[0][0] >= 3,
                 timeout=60, what="the forged mails handled")
        self.assertEqual([("enabled",)], self.member("eve@b.test"))
        self.assertEqual([("enabled",)], self.member("bob@a.test"))
        # The real one, in upper case as some MTAs write it, from anyone.
        self.post("From: x@ext.test\r\nTo: %s\r\nSubject: unsubscribe\r\n\r\n.\r\n"
                  % mailto, to=mailto.upper(), sender="x@ext.test")
        wait_for(lambda: self.member("eve@b.test") == [], timeout=60, what="eve gone")
        self.assertEqual(len(MEMBERS) - 1, self.q("SELECT count(*) FROM members")[0][0])
        outs = [o for (o,) in self.q("SELECT outcome FROM spool")]
        self.assertTrue(any("unsubscribe eve@b.test: done" in (o or "") for o in outs), outs)
        self.assertTrue(any("owners told" in (o or "") for o in outs), outs)


if __name__ == "__main__":
    unittest.main()
