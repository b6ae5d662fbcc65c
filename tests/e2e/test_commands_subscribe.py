"""Email commands through fanmaild with a real SMTP client: subscribing
and confirming by mail, leaving, rate limits, RFC 3834."""
import re
import unittest

from commands_util import CommandsCase, LIST, addr, message


class SubscribeByMail(CommandsCase):

    def confirmation_token(self, rcpt):
        env_from, kind, m = self.last_mail_to(rcpt)
        self.assertEqual(env_from, "dev-bounces@lists.example.org")
        self.assertEqual(m["Auto-Submitted"], "auto-replied")
        match = re.fullmatch(r"confirm ([0-9a-f]{32})", str(m["Subject"]))
        self.assertIsNotNone(match, f"expected subject 'confirm TOKEN', got {m['Subject']!r}")
        token = match.group(1)
        self.assertEqual(str(m["Reply-To"]), addr("confirm", token))
        return token

    def test_subscribe_then_reply_to_confirmation_enables_member(self):
        out = self.send("bob@example.net", addr("request"),
                        message("Bob <bob@example.net>", addr("request"), "subscribe"))
        self.assertIn("confirmation sent", out)
        self.assertNotIn("bob@example.net", self.members())
        token = self.confirmation_token("bob@example.net")

        # The reply goes to the Reply-To address, quoting the request.
        out = self.send("bob@example.net", addr("confirm", token),
                        message("bob@example.net", addr("confirm", token),
                                f"Re: confirm {token}", "yes\r\n\r\n> Someone asked\r\n"))
        self.assertIn("confirmed", out)
        self.assertEqual(self.members().get("bob@example.net"), "enabled")
        _, _, welcome = self.last_mail_to("bob@example.net")
        self.assertIn("Welcome to dev@lists.example.org", str(welcome["Subject"]))

        # The token is used up.
        out = self.send("bob@example.net", addr("request"),
                        message("bob@example.net", addr("request"), f"confirm {token}"))
        self.assertIn("unknown token", out)

    def test_command_without_from_answers_the_envelope_sender(self):
        # docs/commands.md: the sender is the From: address, else the
        # envelope sender. This mail has no From: at all.
        data = ("To: " + addr("request") + "\r\nSubject: subscribe\r\n"
                "Message-ID: <no-from@example.net>\r\n\r\nsubscribe\r\n").encode()
        out = self.send("envonly@example.net", addr("request"), data)
        self.assertIn("subscribe envonly@example.net: confirmation sent", out,
                      f"expected a confirmation to the envelope sender, outcome: {out!r}")
        self.confirmation_token("envonly@example.net")

    def test_from_without_valid_address_answers_the_envelope_sender(self):
        data = message("undisclosed-recipients:;", addr("request"), "subscribe")
        out = self.send("envonly2@example.net", addr("request"), data)
        self.assertIn("subscribe envonly2@example.net: confirmation sent", out,
                      f"expected a confirmation to the envelope sender, outcome: {out!r}")
        self.confirmation_token("envonly2@example.net")

    def test_join_address_and_confirm_command_in_body(self):
        self.send("carol@example.net", addr("join"),
                  message("carol@example.net", addr("join"), "please add me"))
        token = self.confirmation_token("carol@example.net")
        out = self.send("carol@example.net", addr("request"),
                        message("carol@example.net", addr("request"), "Re: your mail",
                                f"confirm {token}\r\n-- \r\nCarol\r\n"))
        self.assertIn("confirmed", out)
        self.assertEqual(self.members().get("carol@example.net"), "enabled")

    def test_unsubscribe_by_mail_confirms_then_removes(self):
        out = self.send("member@example.net", addr("leave"),
                        message("member@example.net", addr("leave"), "bye"))
        self.assertIn("confirmation sent", out)
        self.assertIn("member@example.net", self.members())
        token = self.confirmation_token("member@example.net")
        out = self.send("member@example.net", addr("confirm", token),
                        message("member@example.net", addr("confirm", token), "Re: bye"))
        self.assertIn("unsubscribe member@example.net: done", out)
        self.assertNotIn("member@example.net", self.members())

    def test_unsubscribe_at_once_when_the_list_says_so(self):
        self.fm.cli("list", "set", LIST, "unsubscribe_confirm=no")
        out = self.send("member@example.net", addr("request"),
                        message("member@example.net", addr("request"), "unsubscribe"))
        self.assertIn("unsubscribe member@example.net: done", out)
        self.assertNotIn("member@example.net", self.members())

    def test_confirmations_are_rate_limited_per_address(self):
        self.fm.cli("list", "set", LIST, "confirm_limit_per_address=2")
        outcomes = [self.send("bomb@example.net", addr("subscribe"),
                              message("bomb@example.net", addr("subscribe"), f"x{i}"))
                    for i in range(4)]
        self.assertEqual(len(self.mails_to("bomb@example.net")), 2,
                         f"expected 2 confirmations, outcomes: {outcomes}")
        self.assertIn("confirm_limit_per_address", outcomes[-1])

    def test_auto_submitted_mail_gets_no_action_and_no_reply(self):
        out = self.send("robot@example.net", addr("request"),
                        message("robot@example.net", addr("request"), "subscribe",
                                extra={"Auto-Submitted": "auto-replied"}))
        self.assertIn("ignored: auto-submitted", out)
        out = self.send("", addr("join"),
                        message("robot@example.net", addr("join"), "subscribe"))
        self.assertIn("ignored: null sender", out)
        self.assertEqual(self.mails_to("robot@example.net"), [])

    def test_a_list_of_this_server_cannot_subscribe_by_mail(self):
        # Another list of this server, and this list's own role addresses,
        # asking to join: no confirmation (it would reach every member of
        # that list, token included), no reply, no member.
        self.fm.cli("list", "create", "other@lists.example.org")
        self.fm.cli("member", "add", "other@lists.example.org", "victim@example.net")
        for sender in ("other@lists.example.org", "Other-Request@Lists.Example.ORG",
                       addr("bounces", "x"), addr()):
            with self.subTest(sender=sender):
                # (-request and -bounces senders are already ignored as
                # automatic senders, RFC 3834.)
                for rcpt, text in ((addr("join"), "join"), (addr("request"), "subscribe")):
                    out = self.send(sender, rcpt, message(sender, rcpt, text))
                    self.assertRegex(out, "is a list address of this server|automatic sender")
        queued = self.query("SELECT d.rcpt FROM deliveries d")
        self.assertEqual([r for (r,) in queued if "lists.example.org" in r.lower()], [],
                         "expected nothing queued to an address of this server")
        self.assertEqual(set(self.members()), {"member@example.net"})

    def test_owner_mail_reaches_the_owners(self):
        out = self.send("q@example.net", addr("owner"),
                        message("q@example.net", addr("owner"), "a question", "hello\r\n"))
        self.assertIn("forwarded to 1 owner", out)
        _, _, m = self.last_mail_to("owner@example.org")
        self.assertEqual(str(m["Subject"]), "a question")
        self.assertEqual(m["X-Loop"], "dev-owner@lists.example.org")


class SubscribeThroughRealDelivery(CommandsCase):
    """The whole loop as a person sees it: the confirmation and the welcome
    are delivered over SMTP to a receiving server, and the reply is written
    from what arrived there."""

    use_sink = True

    def test_confirmation_arrives_and_a_reply_to_it_subscribes(self):
        self.send("dora@example.net", addr("request"),
                  message("Dora <dora@example.net>", addr("request"), "subscribe"))
        [(env_from, conf)] = self.received_by("dora@example.net")
        self.assertEqual(env_from, "dev-bounces@lists.example.org")
        self.assertIn("confirm", self.text_of(conf))
        reply_to = str(conf["Reply-To"])
        self.assertTrue(reply_to.startswith("dev-confirm+"), f"got Reply-To {reply_to!r}")

        quoted = "".join("> " + line + "\r\n" for line in self.text_of(conf).splitlines())
        self.send("dora@example.net", reply_to,
                  message("dora@example.net", reply_to, "Re: " + str(conf["Subject"]),
                          "Yes please.\r\n\r\n" + quoted,
                          extra={"In-Reply-To": str(conf["Message-ID"])}))
        self.assertEqual(self.members().get("dora@example.net"), "enabled")
        [_, (_, welcome)] = self.received_by("dora@example.net", n=2)
        self.assertIn("Welcome to dev@lists.example.org", str(welcome["Subject"]))


if __name__ == "__main__":
    unittest.main()
