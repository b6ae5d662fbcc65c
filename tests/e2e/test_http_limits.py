"""The HTTP face's limits, through real clients and raw sockets: huge
headers, slow clients, bad methods and request lines, bodies past
http_max_body_size, the per-IP rate limit, http_max_connections, HTTPS
with a self-signed certificate, and a bounded fuzz of broken requests
after which fanmaild still serves HTTP and SMTP."""
import http.client
import random
import smtplib
import socket
import subprocess
import time
import unittest

import fmtest
from commands_util import LIST
from http_util import HttpCase
from smtpd_util import make_cert


class Limits(HttpCase):
    http_extra = {"http_timeout": "2s", "http_max_header_size": "2k",
                  "http_max_body_size": "1k", "http_rate_limit": "10",
                  "http_max_connections": "4"}

    def test_huge_header_is_refused(self):
        out = self.raw(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 8000 +
                       b"\r\n\r\n")
        self.assertRegex(out, rb"^HTTP/1\.[01] (4\d\d)")
        self.assertFalse(out.startswith(b"HTTP/1.1 200"))
        code, _ = self.curl("/healthz", "-H", "X-Big: " + "b" * 4000)
        self.assertIn(code, (400, 413, 431))
        self.assert_alive()

    def test_slow_client_is_closed_after_the_timeout(self):
        with socket.create_connection(("127.0.0.1", self.http_port), timeout=10) as s:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            t0 = time.monotonic()
            try:
                data = s.recv(4096)
            except ConnectionResetError:
                data = b""
            took = time.monotonic() - t0
        self.assertNotIn(b"200 OK", data)
        self.assertLess(took, 8, "the slow client was not closed")
        self.assertGreater(took, 1)
        self.assert_alive()

    def test_bad_methods_and_request_lines(self):
        for m in ("PUT", "DELETE"):
            code, _ = self.curl("/healthz", "-X", m)
            self.assertEqual(code, 405, m)
        out = self.raw(b"BREW /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertTrue(out.startswith(b"HTTP/1.1 400") or out.startswith(b"HTTP/1.1 405") or
                        out.startswith(b"HTTP/1.1 501"), out[:80])
        out = self.raw(b"\x00\x01garbage\r\n\r\n")
        self.assertTrue(out == b"" or out.startswith(b"HTTP/1.1 400"), out[:80])
        out = self.raw(b"GET /healthz HTTP/9.9\r\n\r\n")
        self.assertFalse(out.startswith(b"HTTP/1.1 200"), out[:80])
        self.assert_alive()

    def test_body_too_large(self):
        status, _, _ = self.req(f"/subscribe/{LIST}", method="POST",
                                data="address=" + "a" * 4000)
        self.assertEqual(status, 413)
        self.assertEqual(len(self.mails_to("a" * 10)), 0)
        self.assert_alive()

    def test_rate_limit_per_ip(self):
        codes = [self.req(f"/unsubscribe/{LIST}")[0] for _ in range(10)]
        self.assertEqual(codes, [200] * 10)
        status, headers, body = self.req(f"/unsubscribe/{LIST}")
        self.assertEqual(status, 429, body)
        self.assertTrue(1 <= int(headers["Retry-After"]) <= 60)
        # /healthz and /metrics are not limited.
        for _ in range(15):
            self.assertEqual(self.req("/healthz")[0], 200)

    def test_max_connections(self):
        conns = []
        for _ in range(4):
            c = http.client.HTTPConnection("127.0.0.1", self.http_port, timeout=5)
            c.request("GET", "/healthz")
            r = c.getresponse()
            self.assertEqual(r.status, 200)
            r.read()
            conns.append(c)
        c = http.client.HTTPConnection("127.0.0.1", self.http_port, timeout=5)
        c.request("GET", "/healthz")
        r = c.getresponse()
        self.assertEqual(r.status, 503)
        self.assertEqual(r.getheader("Connection"), "close")
        c.close()
        for c in conns:
            c.close()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            if self.req("/healthz")[0] == 200:
                break
            time.sleep(0.1)
        self.assert_alive()

    def test_fuzz_broken_requests(self):
        rnd = random.Random(1337)
        pieces = [b"GET", b"POST", b"HEAD", b"PUT", b"\x00", b"\xff\xfe", b" ", b"/", b"%",
                  b"%zz", b"%00", b"/confirm/", b"/unsubscribe/", LIST.encode(), b"HTTP/1.1",
                  b"HTTP/1.0", b"HTTP/", b"\r\n", b"\n", b"\r", b":", b"Host: x",
                  b"Content-Length: 5", b"Content-Length: -1", b"Content-Length: 99999999999",
                  b"Transfer-Encoding: chunked", b"0\r\n\r\n", b"zz\r\n", b"a" * 300,
                  b"Content-Type: multipart/form-data", b"name=\"List-Unsubscribe\""]
        for i in range(300):
            data = b"".join(rnd.choice(pieces) for _ in range(rnd.randint(1, 25)))
            if rnd.random() < 0.5:
                data += b"\r\n\r\n"
            try:
                with socket.create_connection(("127.0.0.1", self.http_port), timeout=3) as s:
                    s.sendall(data)
                    s.shutdown(socket.SHUT_WR)
                    s.settimeout(3)
                    while s.recv(65536):
                        pass
            except OSError:
                pass
            self.assertIsNone(self.fm.proc.poll(), f"fanmaild died on {data!r}")
        self.assert_alive()
        with smtplib.SMTP("127.0.0.1", self.fm.port, timeout=10) as s:
            self.assertEqual(s.ehlo()[0], 250)
            self.assertEqual(s.noop()[0], 250)


class Https(HttpCase):
    scheme = "https"

    def extra_settings(self):
        self.certdir = __import__("tempfile").mkdtemp(prefix="fanmail-cert-")
        self.addCleanup(__import__("shutil").rmtree, self.certdir, True)
        cert, key = make_cert(self.certdir)
        return {"http_tls_cert": cert, "http_tls_key": key}

    def test_https_with_a_self_signed_certificate(self):
        code, body = self.curl("/healthz")
        self.assertEqual((code, body), (200, "ok\n"))
        code, body = self.curl(f"/unsubscribe/{LIST}")
        self.assertEqual(code, 200)
        self.assertIn("<form", body)
        # Plain HTTP on the HTTPS port gets nothing useful, and the
        # daemon carries on.
        p = subprocess.run(["curl", "-s", "--max-time", "5", "-o", "/dev/null", "-w",
                            "%{http_code}", f"http://127.0.0.1:{self.http_port}/healthz"],
                           capture_output=True, text=True, timeout=20)
        self.assertNotEqual(p.stdout, "200")
        code, _ = self.curl("/healthz")
        self.assertEqual(code, 200)


if __name__ == "__main__":
    unittest.main()
