"""8-bit messages and receivers without SMTPUTF8 or 8BITMIME (RFC 6531 3.4,
RFC 6152): UTF-8 header text goes out as RFC 2047 encoded words, an 8-bit
body as quoted-printable (each 8-bit part of a multipart), BODY=8BITMIME
and SMTPUTF8 are declared when offered, and a message whose header holds a
non-ASCII address fails with 5.6.7 at a server without SMTPUTF8. What the
receiver gets is decoded with Python's email package and compared with
what was sent."""
import email
import email.policy
import unittest

from delivery_util import DeliveryCase

SUBJECT = "Grüße aus Köln – ein längerer Betreff, damit er gefaltet werden muss: ✓ ünïcödé"
NAME = "Jörg Müller"
TEXT = "Hallo zusammen,\r\nÄrger mit Öl? Nein: süß.\r\n.eine Zeile mit Punkt\r\n" + \
       "eine sehr lange Zeile " + "ä" * 300 + "\r\nEnde  \r\n"

UTF8_MSG = (f"From: {NAME} <list@lists.test>\r\nTo: list@lists.test\r\n"
            f"Subject: {SUBJECT}\r\nMessage-ID: <d1@lists.test>\r\nMIME-Version: 1.0\r\n"
            "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n"
            f"\r\n{TEXT}").encode()

LATIN = "Grüße in Latin-1: façade, naïve\r\n"
MULTI = ("From: list@lists.test\r\nTo: list@lists.test\r\nSubject: parts\r\n"
         "Message-ID: <d2@lists.test>\r\nMIME-Version: 1.0\r\n"
         'Content-Type: multipart/mixed; boundary="BB"\r\n\r\n'
         "preamble\r\n--BB\r\nContent-Type: text/plain; charset=utf-8\r\n"
         f"Content-Transfer-Encoding: 8bit\r\n\r\n{TEXT}\r\n"
         "--BB\r\nContent-Type: text/plain; charset=iso-8859-1\r\n"
         "Content-Transfer-Encoding: 8bit\r\n\r\n").encode() + LATIN.encode("latin-1") + (
         "\r\n--BB\r\nContent-Type: application/octet-stream\r\n"
         "Content-Transfer-Encoding: base64\r\n\r\nAAECAwQF\r\n--BB--\r\n").encode()


class TestDowngrade(DeliveryCase):
    nsinks = 1

    def setUp(self):
        super().setUp()
        self.dns.mx("a.test", "mx.a.test", 10)
        self.dns.host("mx.a.test", self.ip(0))

    def deliver(self, body, smtputf8, eightbit, rcpts=("u@a.test",)):
        sink = self.sinks[0]
        sink.smtputf8 = smtputf8
        sink.eightbitmime = eightbit
        self.start_all()
        qid = self.inject(list(rcpts), body=body)
        self.wait_states({"sent": len(rcpts)}, qid)
        self.assertEqual(1, len(sink.transactions))
        return sink.transactions[0]

    def assert_7bit(self, data, longest=78):
        lines = data.split(b"\r\n")
        bad = [l for l in lines if any(b >= 0x80 for b in l)]
        self.assertEqual([], bad[:5], "8-bit lines sent to a server without 8BITMIME/SMTPUTF8")
        long = [l for l in lines if len(l) > longest]
        self.assertEqual([], long[:5], f"lines longer than {longest} octets")

    def test_utf8_headers_and_8bit_body_to_a_7bit_server(self):
        t = self.deliver(UTF8_MSG, smtputf8=False, eightbit=False)
        self.assertNotIn("SMTPUTF8", t.params)
        self.assertNotIn("BODY=", t.params)
        self.assert_7bit(t.data)
        m = email.message_from_bytes(t.data, policy=email.policy.default)
        self.assertEqual(SUBJECT, str(m["Subject"]))
        self.assertEqual(NAME, m["From"].addresses[0].display_name)
        self.assertEqual("list@lists.test", m["From"].addresses[0].addr_spec)
        self.assertEqual("quoted-printable", m["Content-Transfer-Encoding"])
        self.assertEqual(TEXT.replace("\r\n", "\n"), m.get_content().replace("\r\n", "\n"))
        self.assertEqual(TEXT.encode(), m.get_payload(decode=True))

    def test_8bitmime_without_smtputf8_keeps_the_body_and_says_so(self):
        t = self.deliver(UTF8_MSG, smtputf8=False, eightbit=True)
        self.assertIn("BODY=8BITMIME", t.params)
        self.assertNotIn("SMTPUTF8", t.params)
        head, _, body = t.data.partition(b"\r\n\r\n")
        self.assertTrue(all(b < 0x80 for b in head), f"8-bit header: {head!r}")
        self.assertEqual(TEXT.encode(), body, "the 8-bit body went as it was")
        m = email.message_from_bytes(t.data, policy=email.policy.default)
        self.assertEqual(SUBJECT, str(m["Subject"]))

    def test_smtputf8_server_gets_the_message_as_it_is(self):
        t = self.deliver(UTF8_MSG, smtputf8=True, eightbit=True)
        self.assertIn("SMTPUTF8", t.params)
        self.assertIn("BODY=8BITMIME", t.params)
        self.assertEqual(UTF8_MSG, t.data)

    def test_multipart_each_8bit_part_becomes_quoted_printable(self):
        t = self.deliver(MULTI, smtputf8=False, eightbit=False)
        self.assertNotIn("BODY=", t.params)
        self.assert_7bit(t.data)
        m = email.message_from_bytes(t.data, policy=email.policy.default)
        parts = list(m.iter_parts())
        self.assertEqual(3, len(parts))
        self.assertEqual("quoted-printable", parts[0]["Content-Transfer-Encoding"])
        self.assertEqual(TEXT.encode(), parts[0].get_payload(decode=True))
        self.assertEqual("quoted-printable", parts[1]["Content-Transfer-Encoding"])
        self.assertEqual(LATIN.encode("latin-1"), parts[1].get_payload(decode=True))
        self.assertEqual(LATIN, parts[1].get_content())
        self.assertEqual(bytes(range(6)), parts[2].get_payload(decode=True))

    def test_utf8_file_name_in_a_part_header_is_encoded_for_an_8bitmime_server(self):
        body = ("From: list@lists.test\r\nTo: list@lists.test\r\nSubject: file\r\n"
                "Message-ID: <d5@lists.test>\r\nMIME-Version: 1.0\r\n"
                "Content-Type: multipart/mixed; boundary=BB\r\n\r\n--BB\r\n"
                "Content-Type: text/plain; charset=utf-8\r\n"
                'Content-Disposition: attachment; filename="Bücher.txt"\r\n'
                f"Content-Transfer-Encoding: 8bit\r\n\r\n{TEXT}\r\n--BB--\r\n").encode()
        t = self.deliver(body, smtputf8=False, eightbit=True)
        self.assertIn("BODY=8BITMIME", t.params)
        self.assertNotIn("SMTPUTF8", t.params)
        m = email.message_from_bytes(t.data, policy=email.policy.default)
        part = list(m.iter_parts())[0]
        for name, value in part.raw_items():
            self.assertTrue(value.isascii(), f"8-bit part header {name}: {value!r}")
        self.assertEqual("Bücher.txt", part.get_filename())
        self.assertEqual(TEXT.encode(), part.get_payload(decode=True), "the 8-bit text kept")

    def test_non_ascii_header_address_fails_with_5_6_7(self):
        body = ("From: Jörg <jörg@lists.test>\r\nTo: list@lists.test\r\nSubject: x\r\n"
                "Message-ID: <d3@lists.test>\r\n\r\nbody\r\n").encode()
        sink = self.sinks[0]
        sink.smtputf8 = False
        sink.eightbitmime = False
        self.start_all()
        qid = self.inject(["u@a.test"], body=body, sender="owner@a.test")
        self.wait_states({"failed": 1}, qid)
        rows = self.rows(qid)
        self.assertIn("5.6.7", rows[0][3])
        self.assertIn("SMTPUTF8", rows[0][3])
        self.assertNotIn("said", rows[0][3], "fanmail's own refusal, not the server's words")
        log = self.fm.logtext()
        self.assertRegex(log, r"to=<u@a\.test>.*dsn=5\.6\.7, status=bounced .*SMTPUTF8.*"
                              r"From header field has a non-ASCII address")
        # The DSN says so too; it reaches the same 7-bit server, itself
        # downgraded (the original header it quotes is 8-bit).
        self.wait_states({"sent": 1})
        self.assertEqual(1, len(sink.transactions))
        t = sink.transactions[0]
        self.assertEqual("", t.mail_from)
        self.assert_7bit(t.data, longest=998)  # the DSN's own lines are long
        dsn = email.message_from_bytes(t.data, policy=email.policy.default)
        status = [p for p in dsn.walk() if p.get_content_type() == "message/delivery-status"]
        self.assertEqual(1, len(status))
        text = status[0].as_string()
        self.assertIn("Status: 5.6.7", text)
        self.assertIn("SMTPUTF8", text)

    def test_non_ascii_header_address_goes_to_a_smtputf8_server(self):
        body = ("From: Jörg <jörg@lists.test>\r\nTo: list@lists.test\r\nSubject: x\r\n"
                "Message-ID: <d4@lists.test>\r\n\r\nbody\r\n").encode()
        t = self.deliver(body, smtputf8=True, eightbit=True)
        self.assertIn("SMTPUTF8", t.params)
        self.assertEqual(body, t.data)


if __name__ == "__main__":
    unittest.main()
