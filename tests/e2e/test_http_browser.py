"""The HTTP face through a real browser and a "link scanner".

- Headless Chromium (Debian's chromium + chromium-driver, driven by
  python3-selenium) opens the link of a confirmation mail and the one-click
  link of a personalized copy, exactly as they arrived at a receiving MX,
  sees the page and its button, and the member changes only when the
  button is clicked.
- The link scanner fetches (GET and HEAD) every URL in every message
  fanmail sent during the test (confirmations, welcomes, personalized and
  batched posts, goodbyes), as mail-security proxies do, and the store is
  the same afterwards.

Mail goes out for real: fanmaild delivers to Python sinks found through
dnsmasq's MX records on loopback addresses.
"""
import email
import email.policy
import os
import re
import shutil
import smtplib
import sqlite3
import time
import unittest
import urllib.error
import urllib.request

import fmtest
from delivery_util import DeliveryCase
from sink import wait_for

try:
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    HAVE_SELENIUM = True
except ImportError:  # the test fails below: it never skips
    HAVE_SELENIUM = False

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
URL_RE = re.compile(r"https?://[^\s<>\"']+")


def message_of(data):
    return email.message_from_bytes(data, policy=email.policy.compat32)


def text_of(m):
    """Headers and every text part, decoded (quoted-printable, base64)."""
    out = [f"{k}: {v}" for k, v in m.items()]
    for part in m.walk():
        if part.get_content_maintype() == "text":
            payload = part.get_payload(decode=True) or b""
            out.append(payload.decode("utf-8", "replace"))
    return "\n".join(out)


class HttpFace(DeliveryCase):
    nsinks = 3

    def setUp(self):
        super().setUp()
        self.http_port = fmtest.free_port()
        self.base = f"http://127.0.0.1:{self.http_port}"
        for i, dom in enumerate(("a.test", "b.test", "c.test")):
            self.dns.mx(dom, f"mx.{dom}", 10)
            self.dns.host(f"mx.{dom}", self.ip(i))
        self.start_all({"http_listen": f"127.0.0.1:{self.http_port}",
                        "http_base_url": self.base + "/",
                        "queue_run_interval": "1s"})
        fmtest.wait_port("127.0.0.1", self.http_port)
        self.fm.cli("list", "create", "news@lists.test", "--policy", "open")
        self.fm.cli("list", "set", "news@lists.test", "personalize=yes",
                    "footer=Sent to %m. Leave: %u", "subject_prefix=")
        self.fm.cli("list", "create", "talk@lists.test", "--policy", "open")
        self.fm.cli("member", "add", "news@lists.test", "ann@a.test", "bob@b.test")
        self.fm.cli("member", "add", "talk@lists.test", "ann@a.test", "bob@b.test")

    # ---- helpers ----

    def smtp(self, mail_from, rcpt, subject, body="hello\r\n"):
        msg = (f"From: {mail_from}\r\nTo: {rcpt}\r\nSubject: {subject}\r\n"
               f"Message-ID: <{time.monotonic_ns()}@example.net>\r\n\r\n{body}")
        with smtplib.SMTP("127.0.0.1", self.fm.port, timeout=30) as s:
            s.sendmail(mail_from, [rcpt], msg.encode())

    def received(self):
        """Every message the sinks got: (rcpts, parsed message)."""
        out = []
        for s in self.sinks:
            for t in list(s.transactions):
                if t.data is not None:
                    out.append((list(t.rcpts), message_of(t.data)))
        return out

    def wait_mail(self, rcpt, pred=lambda m: True, what="mail"):
        def find():
            for rcpts, m in self.received():
                if rcpt in rcpts and pred(m):
                    return m
            return None
        return wait_for(find, timeout=30, what=f"{what} to {rcpt}")

    def store(self):
        """What a GET must never change: members, tokens, holds, the queue."""
        with sqlite3.connect(self.fm.db, timeout=10) as c:
            return (sorted(c.execute("SELECT list_id, addr_key, status FROM members")),
                    sorted(c.execute("SELECT token, expires FROM tokens")),
                    c.execute("SELECT count(*) FROM out_msg").fetchone(),
                    c.execute("SELECT count(*) FROM events").fetchone())

    def members(self, lst):
        return {r.split("\t")[0] for r in
                self.fm.cli("member", "ls", lst).stdout.splitlines() if r}

    def browser(self):
        fmtest.require(HAVE_SELENIUM, "python3-selenium is not installed (scripts/deps)")
        fmtest.require(os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER),
                       "chromium and chromium-driver are not installed (scripts/deps)")
        opts = Options()
        opts.binary_location = CHROMIUM
        for a in ("--headless=new", "--no-sandbox", "--disable-gpu",
                  "--disable-dev-shm-usage", "--no-first-run",
                  f"--user-data-dir={self.fm.dir}/chromium"):
            opts.add_argument(a)
        d = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
        d.set_page_load_timeout(30)
        self.addCleanup(d.quit)
        return d

    def button(self, d):
        found = d.find_elements(By.CSS_SELECTOR,
                                "form button, form input[type=submit]")
        self.assertEqual(len(found), 1, f"one button expected on {d.current_url}:\n"
                         f"{d.page_source[:2000]}")
        return found[0]

    # ---- the tests ----

    def test_browser_confirms_a_subscription_only_when_the_button_is_clicked(self):
        self.smtp("carol@c.test", "news-join@lists.test", "subscribe")
        m = self.wait_mail("carol@c.test", lambda m: str(m["Subject"]).startswith("confirm"),
                           "the confirmation")
        links = [u for u in URL_RE.findall(text_of(m)) if "/confirm/" in u]
        self.assertEqual(len(links), 1, text_of(m))
        d = self.browser()
        before = self.store()
        d.get(links[0])
        self.assertIn("carol@c.test", d.page_source)
        self.assertIn("news@lists.test", d.page_source)
        b = self.button(d)
        time.sleep(0.5)
        self.assertEqual(self.store(), before, "opening the link changed the store")
        self.assertNotIn("carol@c.test", self.members("news@lists.test"))
        b.click()
        wait_for(lambda: "subscribed" in d.page_source, timeout=15, what="the result page")
        self.assertIn("carol@c.test", self.members("news@lists.test"))
        # Reloading the link now (the token is used up) changes nothing more.
        d.get(links[0])
        self.assertIn("carol@c.test", self.members("news@lists.test"))

    def test_browser_one_click_link_of_a_personal_copy(self):
        self.smtp("poster@example.net", "news@lists.test", "announcement")
        m = self.wait_mail("ann@a.test", lambda m: "announcement" in str(m["Subject"]),
                           "ann's copy")
        lu = str(m["List-Unsubscribe"])
        self.assertEqual(str(m["List-Unsubscribe-Post"]), "List-Unsubscribe=One-Click")
        url = re.search(r"<(https?://[^>]+)>", lu).group(1)
        self.assertTrue(url.startswith(self.base + "/unsubscribe/news@lists.test/"), url)
        d = self.browser()
        before = self.store()
        d.get(url)
        self.assertIn("ann@a.test", d.page_source)
        b = self.button(d)
        time.sleep(0.5)
        self.assertEqual(self.store(), before, "opening the one-click link changed the store")
        b.click()
        wait_for(lambda: "has left" in d.page_source, timeout=15, what="the result page")
        self.assertEqual(self.members("news@lists.test"), {"bob@b.test"})
        self.assertEqual(self.members("talk@lists.test"), {"ann@a.test", "bob@b.test"})

    def test_rfc8058_post_with_curl_unsubscribes_exactly_that_member_idempotently(self):
        import subprocess
        self.smtp("poster@example.net", "news@lists.test", "one-click")
        copies = {}
        for rcpt in ("ann@a.test", "bob@b.test"):
            m = self.wait_mail(rcpt, lambda m: "one-click" in str(m["Subject"]))
            copies[rcpt] = re.search(r"<(https?://[^>]+)>", str(m["List-Unsubscribe"])).group(1)
        self.assertNotEqual(copies["ann@a.test"], copies["bob@b.test"])

        def post(url, body="List-Unsubscribe=One-Click"):
            p = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                                "-X", "POST", "-H",
                                "Content-Type: application/x-www-form-urlencoded",
                                "--data", body, url],
                               capture_output=True, text=True, timeout=30)
            return p.stdout

        # An altered token (its last letter) changes nothing: 403.
        url = copies["bob@b.test"]
        forged = url[:-1] + ("a" if url[-1] != "a" else "b")
        before = self.store()
        self.assertEqual(post(forged), "403")
        # Ann's token under Bob's address part is no token of Bob's either.
        self.assertEqual(post(url.rsplit("-", 1)[0] + "-" +
                              copies["ann@a.test"].rsplit("-", 1)[1]), "403")
        self.assertEqual(self.store(), before)
        self.assertEqual(post(url), "200")
        self.assertEqual(self.members("news@lists.test"), {"ann@a.test"})
        self.assertEqual(post(url), "200")  # again: idempotent
        self.assertEqual(self.members("news@lists.test"), {"ann@a.test"})
        self.assertEqual(self.members("talk@lists.test"), {"ann@a.test", "bob@b.test"})
        self.assertIn("one-click", self.fm.logtext())

    def test_link_scanner_fetching_every_url_changes_nothing(self):
        # Mail of every kind fanmail sends to members and would-be members.
        self.smtp("carol@c.test", "news-join@lists.test", "subscribe")
        self.smtp("bob@b.test", "talk-leave@lists.test", "unsubscribe")
        self.smtp("poster@example.net", "news@lists.test", "personal post")
        self.smtp("poster@example.net", "talk@lists.test", "batched post")
        self.wait_mail("carol@c.test", what="the confirmation")
        self.wait_mail("bob@b.test", lambda m: str(m["Subject"]).startswith("confirm"),
                       "the unsubscribe confirmation")
        for rcpt in ("ann@a.test", "bob@b.test"):
            self.wait_mail(rcpt, lambda m: "personal post" in str(m["Subject"]))
            self.wait_mail(rcpt, lambda m: "batched post" in str(m["Subject"]))
        urls = set()
        for _, m in self.received():
            for u in URL_RE.findall(text_of(m)):
                urls.add(u.rstrip(".,;)>"))
        kinds = {k for k in ("/confirm/", "/unsubscribe/news@lists.test/",
                             "/unsubscribe/talk@lists.test") for u in urls if k in u}
        self.assertEqual(len(kinds), 3, f"expected confirm, one-click and form URLs: {urls}")
        before = self.store()
        for u in sorted(urls):
            for method in ("GET", "HEAD"):
                req = urllib.request.Request(u, method=method)
                try:
                    with urllib.request.urlopen(req, timeout=10) as r:
                        status = r.status
                        r.read()
                except urllib.error.HTTPError as e:
                    status = e.code
                self.assertIn(status, (200, 404, 410), f"{method} {u}")
        self.assertEqual(self.store(), before, "a GET or HEAD changed the store")
        self.assertEqual(self.members("news@lists.test"), {"ann@a.test", "bob@b.test"})
        self.assertEqual(self.members("talk@lists.test"), {"ann@a.test", "bob@b.test"})


if __name__ == "__main__":
    unittest.main()
