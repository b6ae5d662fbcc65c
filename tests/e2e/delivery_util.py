"""Shared set-up for the delivery tests: a dnsmasq with the test zones, sinks
on 127.x.y.z addresses at one port (fanmaild's delivery_port), a fanmaild
pointed at both, and `fanmail queue inject` to queue messages.
"""
import os
import random
import socket
import sqlite3
import tempfile
import time

import fmtest
from dnsfix import DnsFixture
from sink import Sink, wait_for

BODY = (b"From: sender@lists.test\r\nTo: list@lists.test\r\nSubject: hello\r\n"
        b"Message-ID: <t1@lists.test>\r\n\r\nline one\r\n.starts with a dot\r\nlast\r\n")


def pick_net_and_port(count):
    """A random 127.A.B.0/24 network and a TCP port free on its first
    `count` addresses."""
    for _ in range(50):
        a, b = random.randint(1, 250), random.randint(1, 250)
        net = f"127.{a}.{b}."
        port = random.randint(20000, 60000)
        ok = True
        for i in range(2, 2 + count):
            with socket.socket() as s:
                try:
                    s.bind((net + str(i), port))
                except OSError:
                    ok = False
                    break
        if ok:
            return net, port
    raise RuntimeError("no free address/port for sinks")


class DeliveryCase(fmtest.TestCase):
    """self.dns (DnsFixture, not started), self.net ("127.A.B."),
    self.port, self.sinks (started by start_all)."""

    nsinks = 4
    extra = {}

    def setUp(self):
        self.net, self.port = pick_net_and_port(self.nsinks)
        self.dns = DnsFixture(zones=["test"])
        self.addCleanup(self.dns.cleanup)
        self.sinks = [Sink(self.ip(i), self.port, name=f"mx{i}.test") for i in range(self.nsinks)]
        super().setUp()

    def ip(self, i):
        return self.net + str(2 + i)

    def start_all(self, settings=None, sinks=True):
        self.dns.start()
        if sinks:
            for s in self.sinks:
                s.start()
                self.addCleanup(s.stop)
        base = {
            "dns_servers": self.dns.server,
            "delivery_port": str(self.port),
            "retry_min": "1s",
            "retry_max": "2s",
            "queue_run_interval": "2s",
            "connection_idle_timeout": "2s",
            "connect_timeout": "5s",
            "smtp_reply_timeout": "10s",
            "throttle_delay": "1s",
            "hostname": "mx.lists.test",
            "log_level": os.environ.get("FM_LOG_LEVEL", "info"),
        }
        base.update(self.extra)
        base.update(settings or {})
        self.fm.settings.update(base)
        self.fm.start()

    def inject(self, rcpts, sender="list-bounces@lists.test", body=BODY, verp=False):
        path = os.path.join(self.fm.dir, f"msg{random.randint(0, 1 << 30)}.eml")
        with open(path, "wb") as f:
            f.write(body)
        rpath = path + ".rcpts"
        with open(rpath, "w") as f:
            f.write("\n".join(rcpts) + "\n")
        args = ["queue", "inject", "--from", sender, "--rcpt-file", rpath, path]
        if verp:
            args.insert(2, "--verp")
        return self.fm.cli(*args).stdout.strip()

    def states(self, qid=None):
        """{state: count} over the queue (or one message)."""
        with sqlite3.connect(self.fm.db, timeout=10) as c:
            if qid:
                rows = c.execute("SELECT d.state, COUNT(*) FROM deliveries d JOIN out_msg m"
                                 " ON m.id = d.msg_id WHERE m.qid = ? GROUP BY d.state",
                                 (qid,)).fetchall()
            else:
                rows = c.execute("SELECT state, COUNT(*) FROM deliveries GROUP BY state").fetchall()
        return dict(rows)

    def rows(self, qid):
        with sqlite3.connect(self.fm.db, timeout=10) as c:
            return c.execute("SELECT d.rcpt, d.state, d.attempts, d.last_reply FROM deliveries d"
                             " JOIN out_msg m ON m.id = d.msg_id WHERE m.qid = ? ORDER BY d.id",
                             (qid,)).fetchall()

    def wait_states(self, want, qid=None, timeout=30):
        """Waits until states(qid) has at least the counts in want."""
        def ok():
            got = self.states(qid)
            return all(got.get(k, 0) >= v for k, v in want.items())
        try:
            wait_for(ok, timeout=timeout, what=f"states {want}")
        except AssertionError:
            raise AssertionError(f"expected states {want}, got {self.states(qid)}\n"
                                 f"log:\n{self.fm.logtext()[-4000:]}")
