"""Moderation through fanmaild with a real SMTP client: a non-member post
is held, the moderator is told, and the post is approved or rejected by
`fanmail mod` and by mail."""
import json
import re
import time
import unittest

from commands_util import CommandsCase, LIST, addr, message


class Moderation(CommandsCase):

    def hold_post(self, subject="from outside"):
        out = self.send("stranger@example.com", LIST,
                        message("Stranger <stranger@example.com>", LIST, subject,
                                "a post from a non-member\r\n"))
        self.assertIn("held: ", out)
        env_from, _, notice = self.last_mail_to("mod@example.org")
        self.assertEqual(env_from, "dev-bounces@lists.example.org")
        self.assertEqual(notice["Auto-Submitted"], "auto-generated")
        match = re.fullmatch(r"dev-confirm\+([0-9a-f]{32})@lists\.example\.org",
                             str(notice["Reply-To"]))
        self.assertIsNotNone(match, f"expected Reply-To dev-confirm+TOKEN, got "
                                    f"{notice['Reply-To']!r}")
        attached = [p for p in notice.iter_attachments()
                    if p.get_content_type() == "message/rfc822"]
        self.assertEqual(len(attached), 1, "expected the post attached as message/rfc822")
        held = self.holds()
        self.assertEqual(len(held), 1, f"expected one hold, got {held}")
        return held[0]["id"], match.group(1)

    def test_non_member_post_is_held_and_approved_by_cli(self):
        hid, _ = self.hold_post()
        self.assertEqual(self.posts(), [])
        p = self.fm.cli("mod", "approve", LIST, hid)
        self.assertIn("approved held message", p.stdout)
        self.assertEqual(self.posts(), [["member@example.net"]])
        # The released post as the queue CLI shows it.
        m = re.search(r"queued as ([0-9A-F]{16})", p.stdout)
        self.assertIsNotNone(m, f"expected 'queued as QID' in {p.stdout!r}")
        shown = json.loads(self.fm.cli("queue", "show", m.group(1), "--json").stdout)
        self.assertEqual(shown["kind"], "post")
        self.assertEqual(shown["from"], "dev-bounces@lists.example.org")
        self.assertEqual([r["rcpt"] for r in shown["recipients"]], ["member@example.net"])
        self.assertEqual(self.holds(), [])
        # Deciding again changes nothing and says so.
        p = self.fm.cli("mod", "approve", LIST, hid, check=False)
        self.assertEqual(p.returncode, 66, f"expected exit 66, got {p.returncode}: {p.stderr}")
        self.assertEqual(len(self.posts()), 1)

    def test_decoded_subject_with_cr_lf_is_one_line_in_every_notice(self):
        # =0D=0A inside an encoded-word decodes to CR LF: pasted raw into
        # the notices' text it started a line of its own ("Forged: ...").
        subject = "=?utf-8?q?a=0D=0AForged:_yes=0Ab?="
        _, token = self.hold_post(subject)
        for rcpt in ("mod@example.org", "stranger@example.com"):
            _, _, m = self.last_mail_to(rcpt)
            raw = m.as_bytes()
            text = self.text_of(m)
            with self.subTest(notice_to=rcpt):
                self.assertNotIn("\nForged: yes", text, f"expected no forged line, got {text!r}")
                self.assertRegex(text, "a +Forged: yes b")
                self.assertNotIn(b"\nForged:", raw)
                self.assertNotIn("\n", str(m["Subject"]).replace("\r\n ", ""))
        out = self.send("mod@example.org", addr("request"),
                        message("mod@example.org", addr("request"), "decision",
                                f"reject {token} no\r\n"))
        self.assertIn("rejected held message", out)
        _, _, m = self.last_mail_to("stranger@example.com")
        self.assertRegex(self.text_of(m), "a +Forged: yes b")
        self.assertNotIn("\nForged: yes", self.text_of(m))

    def test_mod_show_has_the_message(self):
        hid, token = self.hold_post()
        p = self.fm.cli("mod", "show", LIST, hid, "--json")
        shown = json.loads(p.stdout)
        self.assertEqual(shown["sender"], "stranger@example.com")
        self.assertIn("non-member", shown["reason"])
        self.assertEqual(shown["token"], token)
        self.assertIn("a post from a non-member", shown["message"])

    def test_reply_to_the_notice_approves_by_mail(self):
        _, token = self.hold_post()
        out = self.send("mod@example.org", addr("confirm", token),
                        message("mod@example.org", addr("confirm", token), "Re: held", "ok\r\n"))
        self.assertIn("approved held message", out)
        self.assertEqual(self.posts(), [["member@example.net"]])

    def test_approve_command_by_mail(self):
        _, token = self.hold_post()
        out = self.send("mod@example.org", addr("request"),
                        message("mod@example.org", addr("request"), f"approve {token}"))
        self.assertIn("approved held message", out)
        self.assertEqual(len(self.posts()), 1)

    def test_reject_by_mail_notifies_the_poster(self):
        _, token = self.hold_post()
        out = self.send("mod@example.org", addr("request"),
                        message("mod@example.org", addr("request"), "decision",
                                f"reject {token} please ask on the forum\r\n"))
        self.assertIn("rejected held message", out)
        self.assertEqual(self.posts(), [])
        env_from, _, m = self.last_mail_to("stranger@example.com")
        self.assertEqual(env_from, "", "notices to posters go with the null sender")
        self.assertIn("Reason: please ask on the forum", self.text_of(m))
        states = [h["state"] for h in self.holds(all_=True)]
        self.assertEqual(states, ["rejected"])

    def test_reject_and_discard_by_cli(self):
        first, _ = self.hold_post("one")
        second, _ = self.hold_post_again("two")
        p = self.fm.cli("mod", "reject", LIST, first, "--reason", "off topic")
        self.assertIn("rejected held message", p.stdout)
        p = self.fm.cli("mod", "discard", LIST, second)
        self.assertIn("discarded held message", p.stdout)
        self.assertEqual(self.posts(), [])
        _, _, m = self.last_mail_to("stranger@example.com")
        self.assertIn("Reason: off topic", self.text_of(m))

    def test_overdue_hold_is_expired_when_the_cli_looks(self):
        self.fm.cli("list", "set", LIST, "hold_lifetime=1s", "hold_expire_action=reject")
        hid, token = self.hold_post()
        # Times are whole seconds and a hold is overdue once now > expires,
        # so up to two seconds after it was held.
        time.sleep(2.2)
        self.assertEqual(self.holds(), [])
        self.assertEqual([h["state"] for h in self.holds(all_=True)], ["expired"])
        _, _, m = self.last_mail_to("stranger@example.com")
        self.assertIn("not approved by a moderator", self.text_of(m))
        p = self.fm.cli("mod", "approve", LIST, hid, check=False)
        self.assertEqual(p.returncode, 66, f"expected exit 66, got {p.returncode}")
        self.assertEqual(self.posts(), [])

    def hold_post_again(self, subject):
        out = self.send("stranger@example.com", LIST,
                        message("stranger@example.com", LIST, subject, "again\r\n"))
        self.assertIn("held: ", out)
        return self.holds()[-1]["id"], None


if __name__ == "__main__":
    unittest.main()
