"""Adaptive throttling (server/deliver_pool.c throttle/unthrottle_step): after a
4.7.x reply the domain's concurrency is halved and new transactions to it
pause for throttle_delay; it then grows by one connection after 4 x limit
good transactions in a row, back to domain_concurrency. Other domains go on
meanwhile. Concurrency is measured at the sink as transactions in progress
(MAIL to the reply to the end of data)."""
import unittest

from delivery_util import DeliveryCase
from sink import wait_for


def busy_between(sink, t0, t1):
    """Most transactions in progress at once at any instant in [t0, t1)."""
    peak = 0
    for t, n, _ in sink.busy.samples:
        if t0 <= t < t1:
            peak = max(peak, n)
    # the count on entry to the window
    before = [x[1] for x in sink.busy.samples if x[0] < t0]
    return max(peak, before[-1] if before else 0)


class TestAdaptiveThrottle(DeliveryCase):
    nsinks = 2

    def test_4_7_x_halves_concurrency_pauses_and_recovers_slowly(self):
        for i, dom in enumerate(["a.test", "b.test"]):
            self.dns.mx(dom, f"mx.{dom}", 10)
            self.dns.host(f"mx.{dom}", self.ip(i))
            self.sinks[i].data_delay = 0.2
        a, b = self.sinks
        a.mail_replies_at[6] = "451 4.7.1 rate limited, slow down"
        self.start_all({"domain_concurrency": "4", "max_rcpt_per_transaction": "1",
                        "throttle_delay": "3s", "connection_idle_timeout": "10s"})
        rcpts = [f"u{n}@a.test" for n in range(60)]
        qid = self.inject(rcpts)
        wait_for(lambda: a.replied, timeout=30, what="the 4.7.1 reply")
        t_throttle = a.replied[0][0]
        wait_for(lambda: "a.test: throttled after" in self.fm.logtext(), timeout=10,
                 what="the throttle log line")
        log = self.fm.logtext()
        self.assertRegex(log, r"a\.test: throttled after a 421/4\.7\.x reply: 2 connection\(s\), "
                              r"pausing 3s", "concurrency 4 halved to 2, paused throttle_delay")
        self.assertEqual(4, busy_between(a, 0, t_throttle),
                         f"expected 4 transactions at once before the throttle, got "
                         f"{busy_between(a, 0, t_throttle)}")

        # b.test is not held back: a message to it goes out during a's pause
        qb = self.inject(["v@b.test"])
        self.wait_states({"sent": 1}, qb, timeout=10)
        tb = b.transactions[0]
        self.assertLess(tb.end, t_throttle + 3.0,
                        f"b.test delivered {tb.end - t_throttle:.2f}s after a.test's throttle, "
                        f"expected within its 3s pause")

        self.wait_states({"sent": 60}, qid, timeout=60)
        txns = sorted(a.transactions, key=lambda t: t.start)
        # transactions in flight when the 4.7.1 came end within data_delay;
        # after that no transaction to a.test starts until the pause ends
        started = [t.start - t_throttle for t in txns if t_throttle + 0.15 < t.start]
        self.assertGreaterEqual(min(started), 2.9,
                                f"expected no new a.test transaction for 3s, first began "
                                f"{min(started):.2f}s after the throttle")
        t_resume = t_throttle + min(started)
        # concurrency after the pause grows one step at a time: 2 until
        # 4 x 2 good transactions ended since the throttle (3 of those may be
        # the ones that were in flight), then 3 for 4 x 3 more, then 4
        samples = [(t, n) for t, n, _ in a.busy.samples if t >= t_resume]
        self.assertLessEqual(busy_between(a, t_resume, t_resume + 0.1), 2,
                             "expected 2 transactions at once right after the pause")
        first = {}
        for t, n in samples:
            for k in (3, 4):
                if n >= k and k not in first:
                    first[k] = t
        self.assertIn(3, first, f"concurrency never came back to 3: {samples}")
        self.assertIn(4, first, f"concurrency never came back to 4: {samples}")
        done3 = sum(1 for t in txns if t_throttle < t.end <= first[3])
        done4 = sum(1 for t in txns if first[3] < t.end <= first[4])
        self.assertGreaterEqual(done3, 8 - 3, f"expected >= 5 good transactions before "
                                              f"a 3rd connection, got {done3}")
        self.assertGreaterEqual(done4, 12 - 2, f"expected >= 10 good transactions at 3 before "
                                               f"a 4th, got {done4}")
        self.assertEqual(1, self.fm.logtext().count("a.test: throttled after"),
                         "expected one throttle only")


if __name__ == "__main__":
    unittest.main()
