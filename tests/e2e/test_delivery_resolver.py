"""DNS answers beyond the plain ones (server/dns.c): an exchanger reached
only through an AAAA record (IPv6 loopback), SERVFAIL defers, and MX
answers are cached for their TTL and not beyond it."""
import socket
import time
import unittest

from delivery_util import DeliveryCase
from sink import Sink


def ipv6_port_free(port):
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            s.bind(("::1", port))
        return True
    except OSError:
        return False


class TestResolver(DeliveryCase):
    nsinks = 1

    def test_aaaa_only_exchanger_on_ipv6_loopback_gets_mail(self):
        if not socket.has_ipv6 or not ipv6_port_free(self.port):
            self.fail(f"::1 port {self.port} is not available")
        self.dns.mx("v6.test", "mx.v6.test", 10)
        self.dns.host("mx.v6.test", "::1")  # an AAAA record only
        self.sinks = [Sink("::1", self.port, name="mx.v6.test")]
        self.start_all()
        qid = self.inject(["u@v6.test"])
        self.wait_states({"sent": 1}, qid)
        self.assertEqual(["u@v6.test"], self.sinks[0].all_rcpts())
        self.assertRegex(self.fm.logtext(), rf"{qid}: to=<u@v6\.test>, relay=mx\.v6\.test"
                                            rf"\[::1\]:{self.port}, .*status=sent")

    def test_servfail_defers(self):
        self.dns.servfail("sf.test")
        self.start_all()
        qid = self.inject(["u@sf.test"])
        self.wait_states({"deferred": 1}, qid)
        rcpt, state, attempts, reply = self.rows(qid)[0]
        self.assertEqual("deferred", state, f"expected deferred, got {state} ({reply})")
        self.assertGreater(self.dns.failer.queries, 0, "the SERVFAIL came from upstream")
        self.assertRegex(self.fm.logtext(), rf"{qid}: to=<u@sf\.test>, relay=none, "
                                            r"delay=[\d.]+, dsn=4\.4\.3, status=deferred")

    def _deliver_then_stop_dns(self, ttl):
        self.dns.local_ttl = ttl
        self.dns.mx("a.test", "mx.a.test", 10)
        self.dns.host("mx.a.test", self.ip(0))
        self.start_all({"retry_min": "1h", "retry_max": "2h"})
        qid = self.inject(["first@a.test"])
        self.wait_states({"sent": 1}, qid)
        self.dns.stop()

    def test_mx_answer_is_used_again_within_its_ttl(self):
        self._deliver_then_stop_dns(ttl=120)
        qid = self.inject(["second@a.test"])
        self.wait_states({"sent": 1}, qid, timeout=20)
        self.assertEqual(["first@a.test", "second@a.test"], self.sinks[0].all_rcpts(),
                         "the second message went out with the DNS server stopped")

    def test_mx_answer_is_not_used_after_its_ttl(self):
        self._deliver_then_stop_dns(ttl=1)
        time.sleep(2.5)
        qid = self.inject(["second@a.test"])
        self.wait_states({"deferred": 1}, qid, timeout=40)
        self.assertEqual(["first@a.test"], self.sinks[0].all_rcpts(),
                         "expected no delivery without DNS once the TTL ran out")
        self.assertRegex(self.fm.logtext(), rf"{qid}: to=<second@a\.test>, relay=none, "
                                            r".*dsn=4\.4\.3, status=deferred")


if __name__ == "__main__":
    unittest.main()
