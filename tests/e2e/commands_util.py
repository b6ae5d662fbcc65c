"""Helpers for the email-command and moderation tests: a running fanmaild
with one list, mail sent with smtplib, and the store read back (spool
outcomes, the outbound queue) with sqlite3.

Delivery is pointed at a loopback port where nothing listens (relay_host)
and DNS at a loopback port with no server, so no test mail or query can
leave the machine; queued notices simply wait in the outbound queue, where
the tests read them.
"""
import email
import email.policy
import json
import smtplib
import sqlite3
import time

import fmtest

LIST = "dev@lists.example.org"
DOMAIN = "lists.example.org"


def addr(role=None, ext=None):
    local = "dev" if role is None else f"dev-{role}"
    if ext:
        local += "+" + ext
    return f"{local}@{DOMAIN}"


def message(frm, to, subject, body="", extra=None, msgid=None):
    lines = [f"From: {frm}", f"To: {to}", f"Subject: {subject}",
             f"Message-ID: <{msgid or str(time.monotonic_ns())}@example.net>"]
    for k, v in (extra or {}).items():
        lines.append(f"{k}: {v}")
    return ("\r\n".join(lines) + "\r\n\r\n" + body).encode()


class CommandsCase(fmtest.TestCase):
    """fanmaild running with the list dev@lists.example.org (owner
    owner@example.org, moderator mod@example.org, member
    member@example.net)."""

    # When set, delivery goes to a real receiving SMTP server (tests/e2e/
    # sink.py) on loopback, self.sink, instead of a port nobody listens on.
    use_sink = False

    def setUp(self):
        relay_port = fmtest.free_port()
        self.settings = {
            "relay_host": f"127.0.0.1:{relay_port}",
            "dns_servers": f"127.0.0.1:{fmtest.free_port()}",
        }
        if self.use_sink:
            from sink import Sink
            self.sink = Sink("127.0.0.1", relay_port)
            self.sink.start()
            self.addCleanup(self.sink.stop)
        super().setUp()
        self.fm.cli("list", "create", LIST, "--owner", "owner@example.org",
                    "--moderator", "mod@example.org")
        self.fm.cli("member", "add", LIST, "member@example.net")
        self.fm.start()
        self.spooled = 0

    # ---- the store ----

    def query(self, sql, args=()):
        deadline = time.monotonic() + 10
        while True:
            try:
                with sqlite3.connect(self.fm.db, timeout=10) as c:
                    return c.execute(sql, args).fetchall()
            except sqlite3.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def send(self, mail_from, rcpt, data):
        """Sends one message through fanmaild and waits until the list
        engine has handled it; returns its outcome."""
        with smtplib.SMTP("127.0.0.1", self.fm.port, timeout=10) as s:
            s.sendmail(mail_from, [rcpt], data)
        self.spooled += 1
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            rows = self.query("SELECT state, outcome FROM spool ORDER BY id")
            if len(rows) >= self.spooled and rows[-1][0] != "new":
                return rows[-1][1] or ""
            time.sleep(0.05)
        rows = self.query("SELECT state, outcome FROM spool ORDER BY id")
        raise AssertionError(f"expected spool entry {self.spooled} handled within 20s, "
                             f"got {rows}; log:\n{self.fm.logtext()[-3000:]}")

    def mails_to(self, rcpt):
        """[(env_from, kind, parsed message)] queued for rcpt, oldest first."""
        rows = self.query("SELECT m.env_from, m.kind, m.body FROM out_msg m JOIN deliveries d"
                          " ON d.msg_id = m.id WHERE d.rcpt = ? ORDER BY m.id", (rcpt,))
        return [(e, k, email.message_from_bytes(b, policy=email.policy.default))
                for e, k, b in rows]

    def last_mail_to(self, rcpt):
        mails = self.mails_to(rcpt)
        self.assertTrue(mails, f"expected a mail queued for {rcpt}, got none")
        return mails[-1]

    def posts(self):
        """Recipients of every post queued to the list, per message."""
        out = []
        for (mid,) in self.query("SELECT id FROM out_msg WHERE kind = 'post' ORDER BY id"):
            out.append(sorted(r for (r,) in self.query(
                "SELECT rcpt FROM deliveries WHERE msg_id = ?", (mid,))))
        return out

    def members(self):
        p = self.fm.cli("member", "ls", LIST, "--json")
        return {m["address"]: m["status"] for m in json.loads(p.stdout)}

    def holds(self, all_=False):
        args = ["mod", "ls", LIST, "--json"] + (["--all"] if all_ else [])
        return json.loads(self.fm.cli(*args).stdout)

    def received_by(self, rcpt, n=1, timeout=30):
        """The first n messages the sink received for rcpt, parsed; waits
        for them (bounded)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = [t for t in list(self.sink.transactions) if rcpt in t.rcpts]
            if len(got) >= n:
                return [(t.mail_from, email.message_from_bytes(t.data, policy=email.policy.default))
                        for t in got[:n]]
            time.sleep(0.05)
        raise AssertionError(f"expected {n} message(s) delivered to {rcpt} within {timeout}s, "
                             f"got {len([t for t in self.sink.transactions if rcpt in t.rcpts])}; "
                             f"log:\n{self.fm.logtext()[-3000:]}")

    @staticmethod
    def text_of(msg):
        part = msg.get_body(preferencelist=("plain",))
        return part.get_content() if part is not None else ""
