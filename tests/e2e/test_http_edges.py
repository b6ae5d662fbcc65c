"""The HTTP face's parsing edges through real clients (urllib, curl, raw
sockets): form values with %00 or bad escapes, multipart bodies without
their boundary or naming the field only in a filename, duplicate fields,
CONNECT, a client that goes away while its request waits on the store, an
http_max_connections too large to size a table for, and paths with %00,
bad escapes and invalid UTF-8."""
import sqlite3
import subprocess
import time
import unittest

import fmtest
from commands_util import LIST
from http_util import HttpCase

CSP = ("default-src 'none'; style-src 'self' 'unsafe-inline'; form-action 'self'; "
       "frame-ancestors 'none'; base-uri 'none'")


def multipart(boundary, parts):
    """A multipart/form-data body of (disposition params, value) parts."""
    out = b""
    for params, value in parts:
        out += (f"--{boundary}\r\nContent-Disposition: form-data; {params}\r\n\r\n"
                .encode() + value.encode() + b"\r\n")
    return out + f"--{boundary}--\r\n".encode()


class Edges(HttpCase):

    def post_form(self, body, ctype):
        return self.req(f"/subscribe/{LIST}", method="POST", data=body,
                        headers={"Content-Type": ctype})

    def test_nul_and_bad_escapes_in_a_form_are_refused(self):
        # "bob@example.net%00junk" used to be cut at the NUL and taken.
        for body in ("address=bob%40example.net%00junk", "address=bob%40example.net&x=%zz",
                     "address=bob%40example.net&address=eve%40example.net"):
            status, _, page = self.post_form(body, "application/x-www-form-urlencoded")
            self.assertEqual(status, 400, body)
            self.assertIn("Please give an email address", page)
        self.assertEqual(self.mails_to("bob@example.net"), [])
        self.assertEqual(self.mails_to("eve@example.net"), [])
        status, _, _ = self.post_form("address=bob%40example.net",
                                      "application/x-www-form-urlencoded")
        self.assertEqual(status, 200)
        self.assertEqual(len(self.mails_to("bob@example.net")), 1)

    def test_multipart_needs_its_boundary_and_a_real_field(self):
        # The field named only in a file part's filename, or in another
        # part's value, used to be taken as the address.
        tricks = [
            ("BnD", multipart("BnD", [('name="f"; filename="address"', "eve@example.net")])),
            ("BnD", multipart("BnD", [('name="x"', 'name="address"\r\n\r\neve@example.net')])),
            (None, multipart("BnD", [('name="address"', "eve@example.net")])),
            ("Other", multipart("BnD", [('name="address"', "eve@example.net")])),
            ("BnD", multipart("BnD", [('name="address"', "eve@example.net"),
                                      ('name="address"', "eve@example.net")])),
        ]
        for boundary, body in tricks:
            ctype = "multipart/form-data" + (f"; boundary={boundary}" if boundary else "")
            status, _, _ = self.post_form(body, ctype)
            self.assertEqual(status, 400, (ctype, body))
        self.assertEqual(self.mails_to("eve@example.net"), [])
        # A browser's and curl's multipart forms still work.
        status, _, _ = self.post_form(
            multipart("----WebKitFormBoundaryx", [('name="address"', "carol@example.net")]),
            'multipart/form-data; boundary="----WebKitFormBoundaryx"')
        self.assertEqual(status, 200)
        code, _ = self.curl(f"/subscribe/{LIST}", "-F", "address=dave@example.net")
        self.assertEqual(code, 200)
        self.assertEqual(len(self.mails_to("carol@example.net")), 1)
        self.assertEqual(len(self.mails_to("dave@example.net")), 1)

    def test_connect_gets_our_405(self):
        # libevent answered CONNECT itself: 501, without our headers.
        out = self.raw(b"CONNECT example.org:443 HTTP/1.1\r\nHost: example.org\r\n\r\n")
        head = out.split(b"\r\n\r\n", 1)[0].decode("latin-1")
        self.assertTrue(head.startswith("HTTP/1.1 405"), head)
        self.assertIn(f"Content-Security-Policy: {CSP}", head)
        self.assertIn("Allow: GET, HEAD, POST", head)
        self.assert_alive()

    def test_paths_with_nul_bad_escapes_and_bad_utf8(self):
        for path, want in (("/confirm/ab%00cd", 400), ("/subscribe/a%zz@b.c", 400),
                           (f"/subscribe/{LIST}/%00", 400), ("/subscribe/%C0%80x@b.c", 400),
                           ("/subscribe/%FF@b.c", 400), ("//healthz", 404),
                           ("/healthz/", 404), ("/x/../healthz", 404)):
            status, headers, _ = self.req(path)
            self.assertEqual(status, want, path)
            self.assertEqual(headers["Content-Security-Policy"], CSP)
        self.assert_alive()

    def test_client_gone_while_its_request_waits_on_the_store(self):
        # The worker blocks on the write lock; the client closes; the
        # answer comes later for a request whose connection is gone.
        c = sqlite3.connect(self.fm.db, timeout=10, isolation_level=None)
        self.addCleanup(c.close)
        c.execute("BEGIN IMMEDIATE")
        body = b"address=gone%40example.net"
        req = (f"POST /subscribe/{LIST} HTTP/1.1\r\nHost: x\r\n"
               "Content-Type: application/x-www-form-urlencoded\r\n"
               f"Content-Length: {len(body)}\r\n\r\n").encode() + body
        for i in range(5):
            with __import__("socket").create_connection(("127.0.0.1", self.http_port),
                                                        timeout=5) as s:
                s.sendall(req if i % 2 == 0 else req + req)  # pipelined too
                time.sleep(0.1)
        time.sleep(0.5)
        c.execute("ROLLBACK")
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and self.req("/healthz")[0] != 200:
            time.sleep(0.2)
        self.assert_alive()
        self.assertIsNone(self.fm.proc.poll())
        # The requests were served (and their commits made) all the same.
        while time.monotonic() < deadline and not self.mails_to("gone@example.net"):
            time.sleep(0.2)
        self.assertTrue(self.mails_to("gone@example.net"))
        self.assertNotIn("AddressSanitizer", self.fm.logtext())


class TooManyConnections(fmtest.TestCase):

    def test_http_max_connections_past_the_bound_is_refused_at_start(self):
        # It used to size its table by doubling past size_t: a hang.
        self.fm.settings["http_listen"] = f"127.0.0.1:{fmtest.free_port()}"
        self.fm.settings["http_max_connections"] = "9223372036854775807"
        proc = self.fm.start(wait=False)
        try:
            rc = proc.wait(15)
        except subprocess.TimeoutExpired:
            self.fail("fanmaild neither started nor refused in 15 s")
        self.assertNotEqual(rc, 0)
        self.assertIn("http_max_connections", self.fm.logtext())


if __name__ == "__main__":
    unittest.main()
