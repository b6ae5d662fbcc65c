"""Connection limits: with more recipients than connections can carry at
once, no domain sees more than domain_concurrency sessions at a time and
all destinations together no more than delivery_max_connections."""
import unittest

from delivery_util import DeliveryCase
from sink import Gauge


def timeline(g):
    t0 = g.samples[0][0] if g.samples else 0
    return "\n" + "\n".join(f"{t - t0:7.3f} {n} {what}" for t, n, what in g.samples)


class TestConnectionLimits(DeliveryCase):
    nsinks = 3

    def test_sessions_stay_within_domain_and_global_limits(self):
        doms = ["a.test", "b.test", "c.test"]
        total = Gauge()
        for i, dom in enumerate(doms):
            self.dns.mx(dom, f"mx.{dom}", 10)
            self.dns.host(f"mx.{dom}", self.ip(i))
            self.sinks[i].gauge = total
            # a slow end-of-data reply keeps sessions open, so the
            # scheduler always wants more connections than it may open
            self.sinks[i].data_delay = 0.3
        self.start_all({"domain_concurrency": "2", "delivery_max_connections": "3",
                        "max_rcpt_per_transaction": "1", "connection_reuse_limit": "100"})
        rcpts = [f"u{n}@{dom}" for dom in doms for n in range(12)]
        qid = self.inject(rcpts)
        self.wait_states({"sent": len(rcpts)}, qid, timeout=60)
        for dom, s in zip(doms, self.sinks):
            self.assertLessEqual(s.peak, 2, f"{dom}: expected at most domain_concurrency=2 "
                                            f"sessions at once, got {s.peak}")
        self.assertLessEqual(total.peak, 3, "expected at most delivery_max_connections=3 "
                                            f"sessions at once, got {total.peak}: "
                                            f"{timeline(total)}")
        # the limits were reached, so they were what held delivery back
        self.assertEqual(3, total.peak, f"expected 3 sessions at once at the peak, got {total.peak}")
        self.assertEqual(2, max(s.peak for s in self.sinks),
                         f"expected some domain at 2 sessions, got {[s.peak for s in self.sinks]}")


if __name__ == "__main__":
    unittest.main()
