"""Helpers for the HTTP face's tests: fanmaild with the list of
commands_util (dev@lists.example.org, member member@example.net) and
http_listen on a free loopback port; requests through Python's urllib,
curl, or raw sockets."""
import socket
import subprocess
import time
import urllib.error
import urllib.request

import fmtest
from commands_util import CommandsCase, LIST


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


OPENER = urllib.request.build_opener(NoRedirect)


class HttpCase(CommandsCase):
    """CommandsCase plus the HTTP face; http_extra adds settings."""

    http_extra = {}
    scheme = "http"

    def extra_settings(self):
        return dict(self.http_extra)

    def setUp(self):
        self.http_port = fmtest.free_port()
        self.settings = {
            "relay_host": f"127.0.0.1:{fmtest.free_port()}",
            "dns_servers": f"127.0.0.1:{fmtest.free_port()}",
            "http_listen": f"127.0.0.1:{self.http_port}",
        }
        self.settings.update(self.extra_settings())
        fmtest.TestCase.setUp(self)
        self.fm.cli("list", "create", LIST, "--owner", "owner@example.org",
                    "--moderator", "mod@example.org")
        self.fm.cli("member", "add", LIST, "member@example.net")
        self.fm.start()
        fmtest.wait_port("127.0.0.1", self.http_port)
        self.spooled = 0
        self.base = f"{self.scheme}://127.0.0.1:{self.http_port}"

    def req(self, path, method="GET", data=None, headers=None):
        """(status, headers, body text) through urllib; errors included."""
        if isinstance(data, str):
            data = data.encode()
        r = urllib.request.Request(self.base + path, data=data, method=method,
                                   headers=headers or {})
        if data is not None and "Content-Type" not in (headers or {}):
            r.add_header("Content-Type", "application/x-www-form-urlencoded")
        try:
            with OPENER.open(r, timeout=10) as resp:
                return resp.status, resp.headers, resp.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as e:
            return e.code, e.headers, e.read().decode("utf-8", "replace")

    def curl(self, path, *args):
        """(status, body) of curl ARGS URL."""
        p = subprocess.run(["curl", "-sk", "--max-time", "10", "-w", "\n%{http_code}", *args,
                            self.base + path], capture_output=True, text=True, timeout=20)
        self.assertEqual(p.returncode, 0, f"curl failed: {p.stderr}")
        body, _, code = p.stdout.rpartition("\n")
        return int(code), body

    def raw(self, data, timeout=5.0):
        """Sends data on a new connection; returns what came back until
        the server closed or timeout passed."""
        with socket.create_connection(("127.0.0.1", self.http_port), timeout=timeout) as s:
            s.sendall(data)
            out = b""
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                try:
                    chunk = s.recv(65536)
                except (socket.timeout, ConnectionResetError):
                    break
                if not chunk:
                    break
                out += chunk
            return out

    def assert_alive(self):
        status, _, body = self.req("/healthz")
        self.assertEqual((status, body), (200, "ok\n"),
                         f"log:\n{self.fm.logtext()[-2000:]}")
        self.assertIsNone(self.fm.proc.poll(), "fanmaild exited")
