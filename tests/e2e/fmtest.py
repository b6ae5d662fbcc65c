"""Shared helpers for fanmail's end-to-end tests.

Everything here talks to real programs: the built `fanmail` and `fanmaild`,
real SMTP clients, real DNS and SMTP servers on loopback. Ports are picked
free at run time, so tests can run side by side; every wait is bounded.
Add helpers for one area in a module of its own (sinks.py, dns.py, ...).
"""
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest

FANMAIL = os.environ.get("FANMAIL_BIN", "fanmail")
FANMAILD = os.environ.get("FANMAILD_BIN", "fanmaild")
SOURCE_DIR = os.environ.get("FANMAIL_SOURCE_DIR",
                            os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
CORPUS_DIR = os.path.join(SOURCE_DIR, "tests", "corpus")


def require(cond, why):
    """Marks a test (function or class) that needs `cond`. When it does not
    hold, the test FAILS saying why: ctest counts a skipped test as passed,
    so a test that cannot run here must never skip."""
    def deco(obj):
        if cond:
            return obj
        if isinstance(obj, type):
            def set_up_class(cls):
                raise AssertionError(f"{obj.__name__} cannot run here: {why}")
            obj.setUpClass = classmethod(set_up_class)
            return obj

        def failing(self, *args, **kwargs):
            self.fail(f"{obj.__name__} cannot run here: {why}")
        failing.__name__ = obj.__name__
        return failing
    return deco


def require_root(case, why):
    """Fails `case` (a TestCase) unless running as root; see require()."""
    if os.geteuid() != 0:
        case.fail(f"needs root: {why}")


def free_port(host="127.0.0.1", family=socket.AF_INET):
    """A TCP port nobody listens on right now."""
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def wait_port(host, port, timeout=10.0):
    """Waits until something accepts on host:port; raises after timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listening on {host}:{port} after {timeout}s")


class Instance:
    """A private fanmail setup: a temp dir with its config and database."""

    def __init__(self, settings=None):
        self.dir = tempfile.mkdtemp(prefix="fanmail-test-")
        self.port = free_port()
        self.db = os.path.join(self.dir, "fanmail.db")
        self.conf = os.path.join(self.dir, "fanmail.conf")
        base = {
            "hostname": "mx.lists.localhost",
            "database": self.db,
            "listen": f"127.0.0.1:{self.port}",
            # No test may query a resolver off this machine: unless a test
            # names its own (dnsmasq on loopback), DNS goes to a loopback
            # port where nothing answers, and every lookup fails at once.
            "dns_servers": f"127.0.0.1:{free_port()}",
        }
        base.update(settings or {})
        self.settings = base
        self.write_conf()
        self.proc = None
        self.log_path = os.path.join(self.dir, "fanmaild.log")

    def write_conf(self):
        with open(self.conf, "w") as f:
            for k, v in self.settings.items():
                f.write(f"{k} = {v}\n")

    def cli(self, *args, input=None, check=True, timeout=60):
        """Runs `fanmail -c CONF ARGS...`; returns the CompletedProcess."""
        cmd = [FANMAIL, "-c", self.conf] + [str(a) for a in args]
        p = subprocess.run(cmd, input=input, capture_output=True, text=True, timeout=timeout)
        if check and p.returncode != 0:
            raise AssertionError(f"{' '.join(cmd)} exited {p.returncode}: {p.stderr}")
        return p

    def start(self, wait=True, extra_args=()):
        self.write_conf()
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([FANMAILD, "-c", self.conf, *extra_args],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        if wait:
            host, port = self.settings["listen"].split()[0].rsplit(":", 1)
            wait_port(host.strip("[]"), int(port))
        return self.proc

    def stop(self, sig=signal.SIGTERM, timeout=30):
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        rc = self.proc.returncode
        self.proc = None
        self.log.close()
        return rc

    def logtext(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


class TestCase(unittest.TestCase):
    """A test case with a fresh Instance in self.fm for every test."""

    settings = None

    def setUp(self):
        self.fm = Instance(self.settings)
        self.addCleanup(self.fm.cleanup)

    def expect(self, code, *args, input=None, err=None):
        """Runs `fanmail ARGS` and asserts its exit code (and that err, when
        given, is in what it wrote to stderr); returns the finished process."""
        p = self.fm.cli(*args, input=input, check=False)
        self.assertEqual(p.returncode, code,
                         f"fanmail {' '.join(map(str, args))}: expected exit {code}, "
                         f"got {p.returncode}; stderr: {p.stderr!r}")
        if err is not None:
            self.assertIn(err, p.stderr, f"expected {err!r} in stderr, got {p.stderr!r}")
        return p
