"""Helpers for fanmaild's SMTP tests: lists in the store, raw SMTP dialogs,
and reading the spool back.

Everything is bounded: socket reads time out, waits have deadlines.
"""
import os
import re
import socket
import sqlite3
import subprocess
import time

import fmtest

ENHANCED = re.compile(rb"^\d{3}[ -][245]\.\d{1,3}\.\d{1,3}( |$)")


def wait_db(fm, timeout=10.0):
    """Waits until fanmaild has created the database and its schema."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if os.path.exists(fm.db):
            try:
                with sqlite3.connect(fm.db, timeout=5) as c:
                    c.execute("SELECT 1 FROM lists LIMIT 1")
                return
            except sqlite3.Error:
                pass
        time.sleep(0.05)
    raise TimeoutError(f"{fm.db} has no schema after {timeout}s")


def wait_idle(fm, timeout=10.0):
    """After fm.start(): waits until the readiness probe's session, and any
    other the running fanmaild logged, has ended."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        tag = f"fanmaild[{fm.proc.pid}]: "
        log = [l for l in fm.logtext().splitlines() if tag in l]
        n = sum(1 for l in log if ": connect from " in l)
        if n > 0 and n == sum(1 for l in log if ": disconnect from " in l):
            return
        time.sleep(0.02)
    raise TimeoutError(f"sessions still open after {timeout}s")


def create_list(fm, address):
    """Creates a list with the admin CLI (`fanmail list create`)."""
    p = fm.cli("list", "create", address, "--policy", "open", check=False)
    if p.returncode != 0:
        raise AssertionError(f"fanmail list create {address} exited {p.returncode}: {p.stderr}")


def spool_rows(fm):
    """[(qid, mail_from, message bytes, [(rcpt, list_id, role, extension)])]
    of the messages fanmaild took over SMTP (its client column is
    unknown[IP]:PORT); what delivery or the list engine put into the spool
    themselves (notices to list addresses) is left out."""
    with sqlite3.connect(fm.db, timeout=10) as c:
        out = []
        for sid, qid, mail_from, msg in c.execute(
                "SELECT s.id, s.qid, s.mail_from, b.message FROM spool s"
                " JOIN spool_body b ON b.id = s.id"
                " WHERE s.client LIKE 'unknown[%' ORDER BY s.id"):
            rcpts = c.execute("SELECT rcpt, list_id, role, extension FROM spool_rcpt"
                              " WHERE spool_id = ? ORDER BY rowid", (sid,)).fetchall()
            out.append((qid, mail_from, bytes(msg), rcpts))
        return out


def spool_count(fm):
    with sqlite3.connect(fm.db, timeout=10) as c:
        return c.execute("SELECT count(*) FROM spool"
                         " WHERE client LIKE 'unknown[%'").fetchone()[0]


class Dialog:
    """A raw SMTP connection: send exact bytes, read whole replies."""

    def __init__(self, port, host="127.0.0.1", timeout=10.0, greet=True):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.buf = b""
        self.greeting = self.reply() if greet else None

    def send(self, data):
        self.sock.sendall(data)

    def reply(self):
        """The next complete reply: (code, [lines]); (None, []) at EOF."""
        lines = []
        while True:
            while b"\r\n" not in self.buf:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return (None, lines)
                self.buf += chunk
            line, self.buf = self.buf.split(b"\r\n", 1)
            lines.append(line)
            if len(line) < 4 or line[3:4] != b"-":
                return (int(line[:3]), lines)

    def cmd(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.send(data)
        return self.reply()

    def closed(self, timeout=5.0):
        """True when the server closes the connection within timeout."""
        self.sock.settimeout(timeout)
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return True
                self.buf += chunk
        except socket.timeout:
            return False
        except ConnectionResetError:
            return True

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def run_table(test, port, rows, ehlo=True):
    """Runs rows of (bytes sent, reply code expected) on one connection;
    a code of None means the server must close the connection."""
    d = Dialog(port)
    try:
        test.assertEqual(d.greeting[0], 220, f"greeting: expected 220, got {d.greeting}")
        if ehlo:
            test.assertEqual(d.cmd(b"EHLO client.example\r\n")[0], 250)
        for sent, want in rows:
            code, lines = d.cmd(sent)
            test.assertEqual(code, want, f"sent {sent[:80]!r}: expected {want}, got {code} {lines}")
            if want is None:
                break
            # RFC 2034: every reply but the greeting, the answer to
            # EHLO/HELO and 354 (RFC 3463 has no class 3) carries one.
            if code == 354 or sent[:4].upper() in (b"EHLO", b"HELO"):
                continue
            for line in lines:
                test.assertRegex(line, ENHANCED,
                                 f"sent {sent[:80]!r}: reply without an enhanced status code")
    finally:
        d.close()


def make_cert(dirpath):
    """A self-signed certificate and key made with openssl now."""
    cert = os.path.join(dirpath, "cert.pem")
    key = os.path.join(dirpath, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                    "-out", cert, "-days", "2", "-subj", "/CN=mx.lists.localhost"],
                   check=True, capture_output=True, timeout=60)
    return cert, key


class SmtpdCase(fmtest.TestCase):
    """A running fanmaild with the list demo@lists.localhost."""

    lists = ("demo@lists.localhost",)

    def setUp(self):
        super().setUp()
        self.start_daemon()

    def start_daemon(self):
        self.fm.start()
        wait_db(self.fm)
        for a in self.lists:
            create_list(self.fm, a)
        self.port = self.fm.port

    def data_dialog(self, d, rcpts=("demo@lists.localhost",), sender="a@example.org"):
        self.assertEqual(d.cmd(f"MAIL FROM:<{sender}>\r\n")[0], 250)
        for r in rcpts:
            self.assertEqual(d.cmd(f"RCPT TO:<{r}>\r\n")[0], 250)
        self.assertEqual(d.cmd(b"DATA\r\n")[0], 354)
