"""Replies that a receiver may give and that the client must read right:
"452 4.5.3 too many recipients" after some RCPTs were taken (the rest go in
another transaction at once, with no attempt counted and no backoff), and a
multi-line reply whose lines carry different codes (a protocol error: the
connection is dropped and the recipients deferred, never bounced)."""
import sqlite3
import time
import unittest

from delivery_util import DeliveryCase


class TestReplies(DeliveryCase):
    nsinks = 1

    def setUp(self):
        super().setUp()
        self.dns.mx("a.test", "mx.a.test", 10)
        self.dns.host("mx.a.test", self.ip(0))

    def out_msgs(self):
        with sqlite3.connect(self.fm.db, timeout=10) as c:
            return c.execute("SELECT COUNT(*) FROM out_msg").fetchone()[0]

    def test_452_after_first_rcpt_sends_the_rest_in_new_transactions_now(self):
        sink = self.sinks[0]
        sink.rcpt_limit = 1
        # A backoff would hold the rest for an hour: only "now" passes.
        self.start_all({"retry_min": "1h", "retry_max": "2h"})
        rcpts = [f"m{i}@a.test" for i in range(20)]
        t0 = time.monotonic()
        qid = self.inject(rcpts)
        self.wait_states({"sent": 20}, qid, timeout=30)
        took = time.monotonic() - t0
        self.assertEqual(sorted(rcpts), sorted(sink.all_rcpts()),
                         "every member got the mail once")
        self.assertTrue(all(len(t.rcpts) == 1 for t in sink.transactions),
                        f"one recipient per transaction: {sink.transactions}")
        self.assertGreaterEqual(sink.rcpt_limited, 19, "the sink did refuse extra RCPTs")
        rows = self.rows(qid)
        self.assertEqual([1] * 20, [r[2] for r in rows],
                         f"one attempt counted per recipient: {rows}")
        self.assertEqual({"sent": 20}, self.states(qid))
        self.assertEqual(1, self.out_msgs(), "no DSN was queued")
        self.assertLess(took, 25, "delivered promptly")
        self.assertIn("took 1 of 20 recipient(s) in one transaction", self.fm.logtext())

    def test_452_to_the_first_rcpt_is_still_a_deferral(self):
        sink = self.sinks[0]
        sink.rcpt_replies["m0@a.test"] = ["452 4.2.2 mailbox full"]
        self.start_all()
        qid = self.inject(["m0@a.test"])
        self.wait_states({"deferred": 1}, qid, timeout=20)
        self.wait_states({"sent": 1}, qid, timeout=20)

    def test_mismatched_codes_at_end_of_data_defer_and_drop_connection(self):
        sink = self.sinks[0]
        # Taken by its last line, this reply bounced every recipient.
        sink.data_reply = "250-2.0.0 ok\r\n550 5.7.1 no"
        self.start_all({"retry_min": "1h", "retry_max": "2h"})
        qid = self.inject(["u1@a.test", "u2@a.test"])
        self.wait_states({"deferred": 2}, qid, timeout=20)
        self.assertEqual({"deferred": 2}, self.states(qid))
        log = self.fm.logtext()
        self.assertIn("mismatched reply codes", log)
        self.assertNotIn("status=bounced", log)
        self.assertEqual(1, self.out_msgs(), "no DSN was queued")
        self.assertFalse(any(l.upper() == "QUIT" for _, l in sink.commands),
                         "the connection was dropped, not reused or closed politely")

    def test_mismatched_codes_at_rcpt_defer(self):
        sink = self.sinks[0]
        sink.rcpt_reply["u1@a.test"] = "550-5.1.1 no such user\r\n250 2.1.5 ok"
        self.start_all({"retry_min": "1h", "retry_max": "2h"})
        qid = self.inject(["u1@a.test"])
        self.wait_states({"deferred": 1}, qid, timeout=20)
        self.assertEqual(0, len(sink.transactions), "nothing was delivered")
        self.assertIn("mismatched reply codes", self.fm.logtext())


if __name__ == "__main__":
    unittest.main()
