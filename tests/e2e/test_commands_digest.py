"""`set digest`, `set digest-text`, `set regular`, `set nomail` by mail to
LIST-request (issue 15): confirmed like unsubscribe (a token mailed to the
member, its reply changes the delivery), refused for a non-member and for
an unknown mode; the confirmation mail has no web link (the pages
confirm joining and leaving only)."""
import re
import sqlite3
import unittest

from commands_util import LIST, CommandsCase, addr, message


class SetDelivery(CommandsCase):
    def delivery(self, who):
        with sqlite3.connect(self.fm.db, timeout=10) as c:
            row = c.execute("SELECT delivery FROM members WHERE addr_key = ?", (who,)).fetchone()
        return row[0] if row else None

    def token(self, rcpt):
        """The token of the newest confirmation mailed to rcpt."""
        for _, _, m in reversed(self.mails_to(rcpt)):
            match = re.fullmatch(r"confirm ([0-9a-f]{32})", str(m["Subject"]))
            if match:
                return match.group(1), self.text_of(m)
        self.fail(f"no confirmation mailed to {rcpt}")

    def test_set_digest_then_confirm_by_reply(self):
        who = "member@example.net"
        # Four confirmations for one address: more than the default limit.
        self.fm.cli("list", "set", LIST, "confirm_limit_per_address=10")
        out = self.send(who, addr("request"), message(who, addr("request"), "set digest"))
        self.assertIn(": confirmation sent", out)
        self.assertEqual("regular", self.delivery(who), "changed before the confirmation")
        token, text = self.token(who)
        self.assertIn("MIME digests", text)
        self.assertNotIn("/confirm/", text, "set is confirmed by mail only")
        out = self.send(who, addr("confirm", token),
                        message(who, addr("confirm", token), f"Re: confirm {token}"))
        self.assertIn("set digest member@example.net: confirmed", out)
        self.assertEqual("digest", self.delivery(who))

        for mode in ("digest-text", "nomail", "regular"):
            old, _ = self.token(who)
            out = self.send(who, addr("request"),
                            message(who, addr("request"), "x", f"set {mode}\r\n"))
            self.assertIn(": confirmation sent", out)
            token, _ = self.token(who)
            self.assertNotEqual(old, token)
            self.send(who, addr("request"),
                      message(who, addr("request"), "x", f"confirm {token}\r\n"))
            self.assertEqual(mode, self.delivery(who))

    def test_non_member_and_bad_mode(self):
        out = self.send("zed@example.org", addr("request"),
                        message("zed@example.org", addr("request"), "set digest"))
        self.assertIn("not a member", out)
        self.assertIn("is not subscribed", self.text_of(self.last_mail_to("zed@example.org")[2]))
        who = "member@example.net"
        out = self.send(who, addr("request"),
                        message(who, addr("request"), "x", "set mime\r\n"))
        self.assertIn("no valid mode", out)
        self.assertEqual("regular", self.delivery(who))


if __name__ == "__main__":
    unittest.main()
