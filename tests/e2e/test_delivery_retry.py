"""Results per recipient: 4xx deferred and retried with backoff until it
works, 5xx failed at once, a connection dropped in mid-DATA retried; and the
queue commands that show and steer it."""
import json
import sqlite3
import time
import unittest

from delivery_util import DeliveryCase
from sink import wait_for


class TestRetry(DeliveryCase):
    nsinks = 2

    def setUp(self):
        super().setUp()
        self.dns.mx("a.test", "mx.a.test", 10)
        self.dns.host("mx.a.test", self.ip(0))

    def test_4xx_is_deferred_then_sent_on_retry(self):
        self.sinks[0].rcpt_replies["slow@a.test"] = ["451 4.3.0 try again later"]
        self.start_all()
        qid = self.inject(["slow@a.test", "ok@a.test"])
        self.wait_states({"sent": 2}, qid, timeout=40)
        rows = {r[0]: r for r in self.rows(qid)}
        self.assertEqual(2, rows["slow@a.test"][2], "two attempts for the deferred one")
        self.assertEqual(1, rows["ok@a.test"][2], "one attempt for the other")
        log = self.fm.logtext()
        self.assertRegex(log, rf"{qid}: to=<slow@a\.test>, relay=mx\.a\.test\[[\d.]+\]:\d+, "
                              r"delay=[\d.]+, dsn=4\.3\.0, status=deferred \(host mx\.a\.test"
                              r"\[[\d.]+\] said: 451 4\.3\.0 try again later \(in reply to "
                              r"RCPT TO command\)\)")
        self.assertEqual(sorted(["slow@a.test", "ok@a.test"]), sorted(self.sinks[0].all_rcpts()))

    def test_5xx_fails_only_that_recipient(self):
        self.sinks[0].rcpt_reply["bad@a.test"] = "550 5.1.1 <bad@a.test>: no such user"
        self.start_all()
        qid = self.inject(["bad@a.test", "good@a.test"], sender="")
        self.wait_states({"sent": 1, "failed": 1}, qid)
        rows = {r[0]: r for r in self.rows(qid)}
        self.assertEqual("failed", rows["bad@a.test"][1])
        self.assertIn("550 5.1.1", rows["bad@a.test"][3])
        self.assertEqual("sent", rows["good@a.test"][1])
        self.assertEqual(["good@a.test"], self.sinks[0].all_rcpts())
        self.assertIn("dsn=5.1.1, status=bounced", self.fm.logtext())

    def test_connection_dropped_in_data_is_retried(self):
        self.sinks[0].drop_in_data = 1
        self.start_all()
        body = b"Subject: long\r\n\r\n" + b"x" * 70 + b"\r\n" * 1 + (b"line\r\n" * 2000)
        qid = self.inject(["u1@a.test", "u2@a.test"], body=body)
        self.wait_states({"sent": 2}, qid, timeout=40)
        self.assertEqual(1, len(self.sinks[0].transactions), "one complete transaction")
        self.assertEqual(sorted(["u1@a.test", "u2@a.test"]), sorted(self.sinks[0].all_rcpts()))
        self.assertRegex(self.fm.logtext(), r"dsn=4\.4\.2, status=deferred \(lost connection "
                                            r"with mx\.a\.test\[[\d.]+\]:\d+ while sending "
                                            r"message body\)")

    def test_expired_recipient_fails(self):
        self.sinks[0].rcpt_reply["slow@a.test"] = "451 4.3.0 try again later"
        self.start_all({"max_queue_lifetime": "3s"})
        qid = self.inject(["slow@a.test"], sender="")
        self.wait_states({"failed": 1}, qid, timeout=40)
        self.assertIn("status=expired, returned to sender", self.fm.logtext())


class TestThrottle(DeliveryCase):
    nsinks = 2

    def test_421_throttles_only_that_domain(self):
        self.dns.mx("a.test", "mx.a.test", 10)
        self.dns.host("mx.a.test", self.ip(0))
        self.dns.mx("b.test", "mx.b.test", 10)
        self.dns.host("mx.b.test", self.ip(1))
        self.sinks[0].greetings = ["421 4.7.28 rate limited, slow down"]
        self.start_all()
        qid = self.inject(["u@a.test", "u@b.test"])
        self.wait_states({"sent": 1, "deferred": 1}, qid)
        self.assertEqual(["u@b.test"], self.sinks[1].all_rcpts(), "b.test not held back")
        self.assertIn("a.test: throttled after a 421/4.7.x reply", self.fm.logtext())
        self.wait_states({"sent": 2}, qid, timeout=40)


class TestQueueCommands(DeliveryCase):
    nsinks = 1

    def setUp(self):
        super().setUp()
        self.dns.mx("a.test", "mx.a.test", 10)
        self.dns.host("mx.a.test", self.ip(0))

    def test_ls_show_hold_release_flush_delete(self):
        self.sinks[0].rcpt_reply["slow@a.test"] = "451 4.3.0 try again later"
        self.start_all({"retry_min": "1h", "retry_max": "2h"})
        qid = self.inject(["slow@a.test"])
        self.wait_states({"deferred": 1}, qid)
        ls = json.loads(self.fm.cli("queue", "ls", "--json").stdout)
        self.assertEqual([qid], [m["qid"] for m in ls])
        self.assertEqual(1, ls[0]["deferred"])
        show = json.loads(self.fm.cli("queue", "show", qid, "--json").stdout)
        r = show["recipients"][0]
        self.assertEqual(("slow@a.test", "deferred", 1), (r["rcpt"], r["state"], r["attempts"]))
        self.assertGreater(r["next_attempt"], time.time() + 3000, "next attempt in about 1h")
        self.assertIn("451 4.3.0", r["last_reply"])
        plain = self.fm.cli("queue", "show", qid).stdout
        self.assertIn("slow@a.test\tdeferred\t1\t", plain)

        # flush: due now, and the daemon is told at once
        self.sinks[0].rcpt_reply.clear()
        self.fm.cli("queue", "hold", qid)
        self.fm.cli("queue", "flush")
        time.sleep(2)
        self.assertEqual({"deferred": 1}, self.states(qid), "a held message is not sent")
        self.assertIn("HELD", self.fm.cli("queue", "ls").stdout)
        self.fm.cli("queue", "release", qid)
        self.wait_states({"sent": 1}, qid, timeout=10)
        self.assertEqual(["slow@a.test"], self.sinks[0].all_rcpts())

        self.fm.cli("queue", "delete", qid)
        self.assertEqual([], json.loads(self.fm.cli("queue", "ls", "--json").stdout))
        p = self.fm.cli("queue", "show", qid, check=False)
        self.assertEqual(66, p.returncode, f"EX_NOINPUT for an unknown id, got {p.returncode}")


if __name__ == "__main__":
    unittest.main()
