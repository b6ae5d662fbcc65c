"""The connection pool (server/deliver_pool.c pool_put/pool_take): an idle
connection is reused for the next message to the same exchanger, closed
with QUIT after connection_idle_timeout, and a connection carries at most
connection_reuse_limit transactions."""
import collections
import unittest

from delivery_util import DeliveryCase
from sink import wait_for


class TestConnectionPool(DeliveryCase):
    nsinks = 1

    def setUp(self):
        super().setUp()
        self.dns.mx("a.test", "mx.a.test", 10)
        self.dns.host("mx.a.test", self.ip(0))

    def closes(self, s):
        return [t for t, _, what in s.own.samples if what.endswith("closed")]

    def test_idle_connection_is_reused_then_closed_after_idle_timeout(self):
        s = self.sinks[0]
        self.start_all({"connection_idle_timeout": "3s"})
        q1 = self.inject(["one@a.test"])
        self.wait_states({"sent": 1}, q1)
        q2 = self.inject(["two@a.test"])
        self.wait_states({"sent": 1}, q2)
        self.assertEqual(1, s.connections, "the second message reused the idle connection")
        wait_for(lambda: self.closes(s), timeout=15, what="the idle connection to close")
        idle = self.closes(s)[0] - s.transactions[-1].end
        self.assertTrue(2.5 <= idle <= 5.0,
                        f"expected the connection closed ~3s after its last transaction, "
                        f"got {idle:.2f}s")
        self.assertEqual("QUIT", [line for c, line in s.commands if c == 1][-1],
                         "closed politely with QUIT")
        q3 = self.inject(["three@a.test"])
        self.wait_states({"sent": 1}, q3)
        self.assertEqual(2, s.connections, "a new connection after the idle one was closed")

    def test_new_connection_after_reuse_limit_transactions(self):
        s = self.sinks[0]
        self.start_all({"connection_reuse_limit": "3", "domain_concurrency": "1",
                        "max_rcpt_per_transaction": "1", "connection_idle_timeout": "10s"})
        qid = self.inject([f"u{n}@a.test" for n in range(7)])
        self.wait_states({"sent": 7}, qid)
        per_conn = collections.Counter(t.conn for t in s.transactions)
        self.assertEqual([3, 3, 1], [per_conn[c] for c in sorted(per_conn)],
                         f"expected 3, 3 and 1 transactions per connection, got {dict(per_conn)}")
        for c in sorted(per_conn)[:2]:
            self.assertEqual("QUIT", [line for n, line in s.commands if n == c][-1],
                             f"connection {c} ended with QUIT at the limit")


if __name__ == "__main__":
    unittest.main()
