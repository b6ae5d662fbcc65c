"""Helpers for the hardening tests (abuse, load, torture, faults).

RawSMTP speaks SMTP over a plain socket byte for byte, so a test can send
exactly the bytes an attacker would (bare LF, NUL, pipelined floods) and read
the replies as they come. Every read is bounded by a deadline.
"""
import os
import socket
import sqlite3
import ssl
import subprocess
import time


class SMTPReply:
    def __init__(self, code, lines):
        self.code = code
        self.lines = lines

    @property
    def text(self):
        return "\n".join(self.lines)

    def __repr__(self):
        return f"<{self.code} {self.text!r}>"


class RawSMTP:
    """A byte-level SMTP client. reply() reads one (multi-line) reply."""

    def __init__(self, host, port, timeout=10.0, source=None):
        self.sock = socket.create_connection((host, port), timeout=timeout,
                                             source_address=(source, 0) if source else None)
        self.timeout = timeout
        self.buf = b""

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def _line(self, deadline):
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no complete reply line; have {self.buf[:200]!r}")
            self.sock.settimeout(left)
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError(f"connection closed; have {self.buf[:200]!r}")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line.rstrip(b"\r").decode("utf-8", "replace")

    def reply(self, timeout=None):
        deadline = time.monotonic() + (timeout or self.timeout)
        lines = []
        while True:
            line = self._line(deadline)
            if len(line) < 3 or not line[:3].isdigit():
                raise AssertionError(f"malformed reply line {line!r}")
            lines.append(line[4:])
            if len(line) == 3 or line[3] == " ":
                return SMTPReply(int(line[:3]), lines)

    def cmd(self, line, timeout=None):
        self.send(line.encode() + b"\r\n" if isinstance(line, str) else line + b"\r\n")
        return self.reply(timeout)

    def all_replies(self, timeout=None):
        """Every reply until the server closes (or the deadline passes)."""
        out = []
        deadline = time.monotonic() + (timeout or self.timeout)
        while time.monotonic() < deadline:
            try:
                out.append(self.reply(max(0.01, deadline - time.monotonic())))
            except (ConnectionError, TimeoutError, OSError):
                break
        return out

    def closed_by_peer(self, timeout=5.0):
        """True when the server closes the connection within timeout."""
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                self.sock.settimeout(max(0.01, deadline - time.monotonic()))
                chunk = self.sock.recv(65536)
                if not chunk:
                    return True
                self.buf += chunk
        except (ConnectionResetError, BrokenPipeError):
            return True
        except (socket.timeout, TimeoutError):
            return False
        return False

    def starttls(self, server_hostname="localhost"):
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        self.sock.settimeout(self.timeout)
        self.sock = ctx.wrap_socket(self.sock, server_hostname=server_hostname)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def make_cert(directory, name="localhost"):
    """A self-signed certificate and key for STARTTLS; returns (cert, key)."""
    cert = os.path.join(directory, "cert.pem")
    key = os.path.join(directory, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                    "-keyout", key, "-out", cert, "-days", "2", "-subj", f"/CN={name}"],
                   check=True, capture_output=True, timeout=60)
    return cert, key


def vmrss_kb(pid):
    """Resident memory of a process in kB, from /proc."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError(f"no VmRSS for pid {pid}")


def open_fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def db_query(path, sql, args=()):
    """Reads the daemon's database (read-only, WAL-safe) for checks."""
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    try:
        return con.execute(sql, args).fetchall()
    finally:
        con.close()


def spool_count(path, needle=None):
    if needle is None:
        return db_query(path, "SELECT count(*) FROM spool")[0][0]
    return db_query(path, "SELECT count(*) FROM spool WHERE instr(message, ?) > 0",
                    (needle.encode() if isinstance(needle, str) else needle,))[0][0]


def message(subject="hello", body="body\r\n", sender="alice@example.org",
            to="list@lists.localhost", extra=""):
    return (f"From: <{sender}>\r\nTo: <{to}>\r\nSubject: {subject}\r\n"
            f"Message-ID: <{time.time_ns()}.{os.getpid()}@example.org>\r\n{extra}\r\n{body}")
