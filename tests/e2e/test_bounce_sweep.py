"""The timed step for members disabled for bounces runs in fanmaild itself:
with bounce_disabled_wait=1s and bounce_sweep_interval=1s, a member that a
real 550 5.1.1 (fanmail's own DSN, back through local delivery) disabled is
removed, or probed with its VERP return path, by the daemon's housekeeping,
with no `fanmail bounces sweep` and no further bounce for the list.

The member is not told of its disabling (bounce_notify_member=no): that
notice would bounce too, and the bounce handler's own sweep would then do
the work. The log line checked is written only by the daemon's sweep."""
import re
import unittest

from test_bounce_e2e import BounceCase


class TestBounceSweepInDaemon(BounceCase):
    extra = {"bounce_sweep_interval": "1s"}

    def disable_bob(self, action):
        self.sinks[0].rcpt_reply["bob@a.test"] = "550 5.1.1 <bob@a.test>: user unknown"
        self.start_list(bounce_threshold=1, bounce_disabled_wait="1s",
                        bounce_disabled_action=action, bounce_notify_member="no")
        self.post()
        self.wait(lambda: self.member("bob@a.test") is None or
                  self.member("bob@a.test")[0] == "disabled", "bob disabled")

    def test_disabled_member_is_removed_by_the_daemon_after_the_wait(self):
        self.disable_bob("remove")
        self.wait(lambda: self.member("bob@a.test") is None, "bob removed by fanmaild")
        self.wait(lambda: re.search(r"engine: bounces: list=<dev@lists\.test>, 1 member\(s\): "
                                    r"bob@a\.test removed", self.fm.logtext()),
                  "the sweep's log line")
        self.wait(lambda: self.owner_notices() >= 2,
                  "the owner's notices of the disabling and the removal queued")
        self.assertEqual(("enabled", 0.0), self.member("cy@a.test"), "cy untouched")

    def test_disabled_member_is_probed_by_the_daemon_after_the_wait(self):
        self.disable_bob("probe")
        # bob's mailbox works again: the probe is delivered and bob stays
        # disabled until someone re-enables it.
        self.sinks[0].rcpt_reply.pop("bob@a.test", None)
        self.wait(lambda: re.search(r"engine: bounces: list=<dev@lists\.test>, 1 member\(s\): "
                                    r"bob@a\.test probe queued as \w+", self.fm.logtext()),
                  "the sweep's log line")

        def probe_mail_from():
            with self.sinks[0].lock:
                return [t.mail_from for t in self.sinks[0].transactions
                        if "bob@a.test" in t.rcpts]
        self.wait(lambda: any(re.fullmatch(r"dev-bounces\+bob=a\.test\+[a-z2-7]{12}@lists\.test",
                                           f) for f in probe_mail_from()),
                  "the probe delivered with bob's VERP return path")
        probes = self.q("SELECT m.verp FROM out_msg m JOIN deliveries d ON d.msg_id = m.id"
                        " WHERE m.kind = 'probe' AND d.rcpt = 'bob@a.test'")
        self.assertEqual([(1,)], probes, "expected one VERP'd probe queued")
        self.assertEqual("disabled", self.member("bob@a.test")[0], "bob stays disabled")
        self.assertEqual(("enabled", 0.0), self.member("cy@a.test"), "cy untouched")


if __name__ == "__main__":
    unittest.main()
