"""/metrics end to end: fanmaild with http_listen takes mail from a real SMTP
client (smtplib), posts it to a list whose members' domain goes to a sink,
and /metrics, read with urllib and parsed by the Prometheus client's own
parser, counts the sessions, the accepted and refused messages, the
deliveries, the bounce, the queue by state and the HTTP requests. A client
not in http_metrics_allow gets 403.
"""
import smtplib
import time
import unittest
import urllib.error
import urllib.request

import fmtest
from delivery_util import DeliveryCase
from sink import wait_for

try:
    from prometheus_client.parser import text_string_to_metric_families
except ImportError:  # the test fails (never skips) below
    text_string_to_metric_families = None

LIST = "test@lists.test"

FAMILIES = {
    "fanmail_smtp_sessions": "counter",
    "fanmail_smtp_sessions_active": "gauge",
    "fanmail_messages_accepted": "counter",
    "fanmail_messages_refused": "counter",
    "fanmail_queue_recipients": "gauge",
    "fanmail_queue_messages": "gauge",
    "fanmail_deliveries": "counter",
    "fanmail_bounces": "counter",
    "fanmail_http_requests": "counter",
    "fanmail_start_time_seconds": "gauge",
}


def get(url):
    """(status, content type, body) of GET url; HTTP errors are answers."""
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.headers.get("Content-Type", ""), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type", ""), e.read().decode("utf-8", "replace")


@fmtest.require(text_string_to_metric_families is not None,
                "python3-prometheus-client is not installed (scripts/deps)")
class TestHttpMetrics(DeliveryCase):
    nsinks = 1

    def start(self, settings):
        self.http = f"127.0.0.1:{fmtest.free_port()}"
        self.dns.mx("a.test", "mx.a.test", 10)
        self.dns.host("mx.a.test", self.ip(0))
        self.start_all({"http_listen": self.http, **settings})
        host, port = self.http.rsplit(":", 1)
        fmtest.wait_port(host, int(port))

    def scrape(self):
        """{(sample name, frozenset of labels): value} and {family: type}."""
        status, ctype, text = get(f"http://{self.http}/metrics")
        self.assertEqual(200, status, f"/metrics: {status} {text[:500]}")
        self.assertTrue(ctype.startswith("text/plain"), f"Content-Type {ctype!r}")
        self.assertIn("version=0.0.4", ctype)
        samples, types = {}, {}
        for fam in text_string_to_metric_families(text):
            types[fam.name] = fam.type
            for s in fam.samples:
                samples[(s.name, frozenset(s.labels.items()))] = s.value
        self.text = text
        return samples, types

    def smtp(self):
        host, port = self.fm.settings["listen"].rsplit(":", 1)
        return smtplib.SMTP(host, int(port), timeout=30)

    def test_metrics_count_what_happened(self):
        t0 = time.time()
        self.start({"http_metrics_allow": "127.0.0.1"})
        self.fm.cli("list", "create", LIST, "--owner", "boss@a.test")
        self.fm.cli("member", "add", LIST, "ann@a.test", "bob@a.test", "cy@a.test")
        before, types = self.scrape()
        self.assertEqual(FAMILIES, {k: v for k, v in types.items() if k in FAMILIES},
                         f"families and types in:\n{self.text}")

        def v(samples, name, **labels):
            return samples.get((name, frozenset(labels.items())), 0)

        # A member's post: accepted, then sent to the two other members.
        with self.smtp() as s:
            s.sendmail("ann@a.test", [LIST],
                       b"From: Ann <ann@a.test>\r\nTo: test@lists.test\r\nSubject: hi\r\n"
                       b"Message-ID: <m1@a.test>\r\n\r\nHello.\r\n")
        # A report to the list's -bounces address: accepted, and counted as
        # a bounce once the engine handled it (unsigned, so it changes no
        # score).
        with self.smtp() as s:
            s.sendmail("", ["test-bounces@lists.test"],
                       b"From: MAILER-DAEMON@a.test\r\nTo: test-bounces@lists.test\r\n"
                       b"Subject: Undelivered Mail\r\n\r\nnot a report we sent\r\n")
        # DATA with no valid recipient: refused.
        with self.smtp() as s:
            s.ehlo("client.test")
            s.mail("x@a.test")
            code, _ = s.rcpt("nobody@lists.test")
            self.assertEqual(550, code)
            code, _ = s.docmd("DATA")
            self.assertEqual(554, code)
        self.wait_states({"sent": 2})
        self.assertEqual(200, get(f"http://{self.http}/healthz")[0])
        self.assertEqual(404, get(f"http://{self.http}/no/such/page")[0])

        def settled():
            after, _ = self.scrape()
            return (v(after, "fanmail_bounces_total") - v(before, "fanmail_bounces_total") >= 1
                    and v(after, "fanmail_smtp_sessions_active") == 0
                    and v(after, "fanmail_deliveries_total", result="sent") -
                    v(before, "fanmail_deliveries_total", result="sent") >= 2)
        wait_for(settled, timeout=30, what="the bounce handled, sessions closed, 2 sent")
        after, _ = self.scrape()

        def delta(name, **labels):
            return v(after, name, **labels) - v(before, name, **labels)

        self.assertEqual(3, delta("fanmail_smtp_sessions_total"), self.text)
        self.assertEqual(0, v(after, "fanmail_smtp_sessions_active"), self.text)
        self.assertEqual(2, delta("fanmail_messages_accepted_total"), self.text)
        self.assertEqual(1, delta("fanmail_messages_refused_total"), self.text)
        self.assertEqual(2, delta("fanmail_deliveries_total", result="sent"), self.text)
        self.assertEqual(0, delta("fanmail_deliveries_total", result="deferred"), self.text)
        self.assertEqual(0, delta("fanmail_deliveries_total", result="failed"), self.text)
        self.assertEqual(1, delta("fanmail_bounces_total"), self.text)
        # The queue as the store holds it: both rows sent, nothing waiting.
        queue = {st: v(after, "fanmail_queue_recipients", state=st)
                 for st in ("queued", "deferred", "sent", "failed")}
        self.assertEqual({"queued": 0, "deferred": 0, "sent": 2, "failed": 0}, queue,
                         f"{queue}; the store says {self.states()}")
        self.assertEqual(0, v(after, "fanmail_queue_messages"), self.text)
        # HTTP: the pairs seen, and no others.
        http = {dict(k[1])["route"] + " " + dict(k[1])["status"]: val
                for k, val in after.items() if k[0] == "fanmail_http_requests_total"}
        self.assertEqual(1, http.get("healthz 200"), http)
        self.assertEqual(1, http.get("other 404"), http)
        # The scrapes before this one (a request is counted once answered).
        self.assertGreaterEqual(http.get("metrics 200", 0), 2, http)
        self.assertEqual({"healthz 200", "other 404", "metrics 200"}, set(http), http)
        start = v(after, "fanmail_start_time_seconds")
        self.assertTrue(t0 - 2 <= start <= time.time() + 1,
                        f"start time {start}, test started at {t0}")

    def test_client_not_allowed_gets_403(self):
        # Only an address this test is not connecting from may read them.
        self.start({"http_metrics_allow": "192.0.2.1"})
        status, _, body = get(f"http://{self.http}/metrics")
        self.assertEqual(403, status, body[:500])
        self.assertNotIn("fanmail_smtp_sessions_total", body)
        self.assertEqual(200, get(f"http://{self.http}/healthz")[0], "the rest is served")


if __name__ == "__main__":
    unittest.main()
