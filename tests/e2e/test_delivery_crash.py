"""SIGKILL in the middle of a large delivery loses nobody: after a restart
every recipient arrives, and only the batches in flight at the kill may
arrive twice (at-least-once)."""
import collections
import signal
import sqlite3
import unittest

from delivery_util import DeliveryCase
from sink import wait_for


class TestCrash(DeliveryCase):
    nsinks = 4

    def test_sigkill_during_delivery_then_restart_loses_nobody(self):
        ndom, per = 40, 250
        for d in range(ndom):
            self.dns.mx(f"d{d}.test", f"mx{d % self.nsinks}.test", 10)
        for i in range(self.nsinks):
            self.dns.host(f"mx{i}.test", self.ip(i))
            self.sinks[i].data_delay = 0.15
        self.start_all({"delivery_max_connections": "20"})
        rcpts = [f"u{n}@d{d}.test" for d in range(ndom) for n in range(per)]
        qid = self.inject(rcpts)
        total = lambda: sum(s.rcpt_count() for s in self.sinks)
        wait_for(lambda: total() >= len(rcpts) // 5, timeout=60, what="a fifth delivered")
        self.fm.proc.send_signal(signal.SIGKILL)
        self.fm.proc.wait(10)
        self.fm.stop()
        received_before = total()
        self.assertLess(received_before, len(rcpts), "killed before the end")
        # Nothing marked sent that the sinks did not receive.
        with sqlite3.connect(self.fm.db, timeout=10) as c:
            sent = {r for (r,) in c.execute("SELECT rcpt FROM deliveries WHERE state='sent'")}
        got = set(r for s in self.sinks for r in s.all_rcpts())
        self.assertEqual(set(), sent - got, "rows marked sent were received")

        self.fm.start()
        self.wait_states({"sent": len(rcpts)}, qid, timeout=120)
        counts = collections.Counter(r for s in self.sinks for r in s.all_rcpts())
        self.assertEqual(set(rcpts), set(counts), "every recipient arrived")
        dups = sum(v - 1 for v in counts.values())
        # at most one batch per connection was in flight at the kill
        self.assertLessEqual(dups, 20 * 100, f"{dups} duplicates")


if __name__ == "__main__":
    unittest.main()
