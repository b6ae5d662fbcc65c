"""PIPELINING (RFC 2920): when the exchanger offers it, MAIL FROM, every
RCPT TO and DATA of a transaction reach it in one write, before it has
replied to any of them; when it does not, each command waits for the
reply to the one before. The sink records the recv() each command line
ended in."""
import unittest

from delivery_util import DeliveryCase


def transactions(reads):
    """[(conn, [(k, line), ...])] of each MAIL..DATA group, in order."""
    out, cur = [], None
    for conn, k, line in reads:
        verb = line[:4].upper()
        if verb == "MAIL":
            cur = (conn, [(k, line)])
            out.append(cur)
        elif cur is not None and cur[0] == conn and verb in ("RCPT", "DATA"):
            cur[1].append((k, line))
            if verb == "DATA":
                cur = None
    return out


class TestPipelining(DeliveryCase):
    nsinks = 1

    def setUp(self):
        super().setUp()
        self.dns.mx("a.test", "mx.a.test", 10)
        self.dns.host("mx.a.test", self.ip(0))
        self.rcpts = [f"user{n}@a.test" for n in range(30)]

    def test_mail_and_all_rcpts_arrive_in_one_write_when_offered(self):
        self.start_all()
        qid = self.inject(self.rcpts)
        self.wait_states({"sent": 30}, qid)
        txns = transactions(self.sinks[0].reads)
        self.assertEqual(1, len(txns), f"expected one transaction, got {txns}")
        conn, cmds = txns[0]
        self.assertEqual(1 + 30 + 1, len(cmds), "MAIL, 30 RCPT, DATA")
        chunks = {k for k, _ in cmds}
        self.assertEqual(1, len(chunks), "expected MAIL, every RCPT and DATA in one recv(), "
                                         f"got them over recv() numbers {sorted(chunks)}")

    def test_each_command_waits_for_its_reply_without_pipelining(self):
        self.sinks[0].pipelining = False
        self.start_all()
        qid = self.inject(self.rcpts)
        self.wait_states({"sent": 30}, qid)
        txns = transactions(self.sinks[0].reads)
        self.assertEqual(1, len(txns), f"expected one transaction, got {txns}")
        ks = [k for k, _ in txns[0][1]]
        self.assertEqual(32, len(ks), "MAIL, 30 RCPT, DATA")
        self.assertEqual(sorted(set(ks)), ks, f"expected each command in its own recv() "
                                              f"after the reply to the one before, got {ks}")


if __name__ == "__main__":
    unittest.main()
