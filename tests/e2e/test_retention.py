"""Retention: what is finished and old leaves the store (settings
queue_keep_done, spool_keep_done, bounce_events_keep), and nothing that is
still needed does: pending recipients, posts held for moderation, each
member's latest scored bounce. `fanmail queue purge` runs the pass that
fanmaild runs once a minute."""
import json
import time
import unittest

from commands_util import LIST, CommandsCase, message


class Retention(CommandsCase):
    use_sink = True

    def setUp(self):
        super().setUp()
        # The poster gets no copy of their own post: someone else reads.
        self.fm.cli("member", "add", LIST, "reader@example.org")
        # Only the CLI reads these here: the daemon's own pass (once a
        # minute) runs the same code with what it was started with.
        self.fm.settings.update({"queue_keep_done": "1s", "spool_keep_done": "1s",
                                 "bounce_events_keep": "1s"})
        self.fm.write_conf()

    def keep(self, t):
        self.fm.settings.update({"queue_keep_done": t, "spool_keep_done": t})
        self.fm.write_conf()

    def purge(self):
        return json.loads(self.fm.cli("queue", "purge", "--json").stdout)

    def pending(self):
        return self.query("SELECT count(*) FROM deliveries"
                          " WHERE state IN ('queued', 'deferred')")[0][0]

    def wait_no_pending(self, timeout=30):
        deadline = time.monotonic() + timeout
        while self.pending() and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertEqual(0, self.pending(), f"log:\n{self.fm.logtext()[-3000:]}")

    def test_finished_mail_goes_held_post_stays(self):
        out = self.send("member@example.net", LIST,
                        message("member@example.net", LIST, "hello", "hi\r\n"))
        self.assertIn("posted", out)
        out = self.send("stranger@example.com", LIST,
                        message("stranger@example.com", LIST, "from outside", "hi\r\n"))
        self.assertIn("held", out)
        self.received_by("reader@example.org")
        self.wait_no_pending()
        queued = self.query("SELECT count(*) FROM out_msg")[0][0]
        self.assertGreaterEqual(queued, 2, "the post and the moderator's notice")

        self.keep("1h")
        got = self.purge()
        self.assertEqual((0, 0), (got["messages"], got["spool_entries"]),
                         f"nothing is an hour old: {got}")
        self.keep("1s")

        # Times are whole seconds: past the keep of 1 s for sure after 2.2 s.
        time.sleep(2.2)
        # A recipient still to be sent keeps its message, however old.
        self.query("UPDATE deliveries SET state = 'deferred', next_attempt = ?"
                   " WHERE id = (SELECT max(id) FROM deliveries)", (int(time.time()) + 3600,))
        got = self.purge()
        self.assertEqual(queued - 1, got["messages"], f"every finished message: {got}")
        self.assertEqual(1, got["spool_entries"], f"the member's post, not the held one: {got}")
        self.assertEqual(1, self.query("SELECT count(*) FROM out_msg")[0][0])
        self.assertEqual(1, self.query("SELECT count(*) FROM deliveries")[0][0])
        ls = json.loads(self.fm.cli("queue", "ls", "--json").stdout)
        self.assertEqual(1, len(ls), f"queue ls: {ls}")

        # The held post's spool entry is still there: it can be approved.
        hid = self.holds()[0]["id"]
        self.fm.cli("mod", "approve", LIST, hid)
        self.assertEqual(2, len(self.received_by("reader@example.org", n=2)))

        # Decided, it is an old handled entry like any other (the post went
        # out with its own copy of the message).
        got = self.purge()
        self.assertEqual(1, got["spool_entries"], f"the approved post's entry: {got}")

    def test_old_bounce_events_go_but_the_latest_scored_stays(self):
        (mid,) = self.query("SELECT id FROM members WHERE address = 'member@example.net'")[0]
        (lid,) = self.query("SELECT id FROM lists")[0]
        old = int(time.time()) - 86400
        rows = [(mid, old - 300, 1.0), (mid, old - 200, 1.0), (mid, old - 100, 0.0),
                (None, old, 0.0)]
        for member, t, scored in rows:
            self.query("INSERT INTO bounce_events (list_id, member_id, address, domain, time,"
                       " class, scored) VALUES (?, ?, 'member@example.net', 'example.net', ?,"
                       " 'hard', ?)", (lid, member, t, scored))
        got = self.purge()
        self.assertEqual(3, got["bounce_events"], f"{got}")
        left = self.query("SELECT member_id, time, scored FROM bounce_events")
        self.assertEqual([(mid, old - 200, 1.0)], left)
        self.assertEqual(0, self.purge()["bounce_events"])

    def test_zero_keeps_everything(self):
        self.fm.settings.update({"queue_keep_done": "0", "spool_keep_done": "0",
                                 "bounce_events_keep": "0"})
        self.fm.write_conf()
        self.send("member@example.net", LIST,
                  message("member@example.net", LIST, "hello", "hi\r\n"))
        self.received_by("reader@example.org")
        self.wait_no_pending()
        time.sleep(1.2)
        out = self.fm.cli("queue", "purge").stdout
        self.assertIn("purged 0 outbound message(s) (0 recipient rows), 0 spool entries, "
                      "0 bounce events", out)


if __name__ == "__main__":
    unittest.main()
