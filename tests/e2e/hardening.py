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
    return db_query(path, "SELECT count(*) FROM spool_body WHERE instr(message, ?) > 0",
                    (needle.encode() if isinstance(needle, str) else needle,))[0][0]


def message(subject="hello", body="body\r\n", sender="alice@example.org",
            to="list@lists.localhost", extra=""):
    return (f"From: <{sender}>\r\nTo: <{to}>\r\nSubject: {subject}\r\n"
            f"Message-ID: <{time.time_ns()}.{os.getpid()}@example.org>\r\n{extra}\r\n{body}")


class DnsFront:
    """A UDP DNS front for a real DNS server (dnsmasq): in mode "pass" it
    relays queries and answers, in "servfail" it answers every query with
    SERVFAIL itself, in "drop" it answers nothing (the resolver times out).
    Set .mode at any time; .queries counts what arrived."""

    def __init__(self, upstream_port):
        self.upstream = ("127.0.0.1", upstream_port)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.mode = "pass"
        self.queries = {"pass": 0, "servfail": 0, "drop": 0}
        self._stop = False
        import threading
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    @property
    def server(self):
        return f"127.0.0.1:{self.port}"

    def _run(self):
        while not self._stop:
            try:
                q, client = self.sock.recvfrom(4096)
            except (socket.timeout, OSError):
                continue
            if len(q) < 12:
                continue
            mode = self.mode
            self.queries[mode] += 1
            if mode == "drop":
                continue
            if mode == "servfail":
                flags = 0x8000 | (q[2] & 0x79) << 8 | 0x0080 | 2  # QR, opcode+RD, RA, rcode 2
                self.sock.sendto(q[:2] + flags.to_bytes(2, "big") + q[4:6] + b"\0\0\0\0\0\0" +
                                 q[12:], client)
                continue
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as up:
                up.settimeout(2)
                try:
                    up.sendto(q, self.upstream)
                    a, _ = up.recvfrom(65535)
                    self.sock.sendto(a, client)
                except OSError:
                    pass

    def stop(self):
        self._stop = True
        self._t.join(2)
        self.sock.close()


def sanitized():
    """True when the programs under test are the ASan+UBSan build."""
    cache = os.path.join(os.environ.get("FANMAIL_BUILD_DIR", ""), "CMakeCache.txt")
    try:
        with open(cache) as f:
            return "FANMAIL_SANITIZE:BOOL=ON" in f.read()
    except OSError:
        return False
