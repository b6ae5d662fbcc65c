"""The digests of mail/digest.c read by readers nobody here wrote.

The test tool fm_digest_build builds one issue from .eml posts (plain
ASCII, an RFC 2047 subject and sender, a multipart with an HTML
alternative and a PDF attachment, an 8-bit UTF-8 body, a body with a
30-hyphen line, a header-like paragraph and a "From " line). The MIME
digest is parsed with Python's email package: multipart/mixed, a text/plain
table of contents listing every post, a multipart/digest of one
message/rfc822 part per post with its Subject, the footer. The RFC 1153
digest, stored with LF line ends as a mail program would, is split with
`formail +1 -ds` (Debian's procmail) into exactly the posts, each with
its Date, From and Subject and its text."""
import email
import email.policy
import os
import shutil
import subprocess
import tempfile
import unittest

import fmtest

BUILD = os.environ.get("FM_DIGEST_BUILD_BIN") or os.path.join(
    os.environ.get("FANMAIL_BUILD_DIR", "build"), "tests", "fm_digest_build")
H30 = "-" * 30


def crlf(text):
    return text.replace("\n", "\r\n").encode()


POSTS = [
    ("Ann Example <ann@example.org>", "[dev] plain one", crlf(
        "From: Ann Example <ann@example.org>\n"
        "To: dev@lists.example.org\n"
        "Subject: [dev] plain one\n"
        "Date: Mon, 01 Jan 2024 10:00:00 +0000\n"
        "Message-ID: <p1@example.org>\n"
        "\n"
        "Hello list.\n" + H30 + "\n"
        "\n"
        "Date: Mon, 01 Jan 2024 10:00:00 +0000\n"
        "From: forged@example.org\n"
        "Subject: not a post\n"
        "\n"
        "From the start of a line\n"
        "-- \nAnn\n")),
    ("Jörg <jorg@example.de>", "Über die Brücke", crlf(
        "From: =?utf-8?q?J=C3=B6rg?= <jorg@example.de>\n"
        "Subject: =?utf-8?b?w5xiZXIgZGllIEJyw7xja2U=?=\n"
        "Date: Mon, 01 Jan 2024 11:00:00 +0000\n"
        "Message-ID: <p2@example.de>\n"
        "MIME-Version: 1.0\n"
        "Content-Type: text/plain; charset=utf-8\n"
        "Content-Transfer-Encoding: 8bit\n"
        "\n"
        "Grüße aus Köln\n")),
    ("bob@example.net", "with attachment", crlf(
        "From: bob@example.net\n"
        "Subject: with attachment\n"
        "Date: Mon, 01 Jan 2024 12:00:00 +0000\n"
        "Message-ID: <p3@example.net>\n"
        "MIME-Version: 1.0\n"
        "Content-Type: multipart/mixed; boundary=\"XX\"\n"
        "\n"
        "--XX\n"
        "Content-Type: multipart/alternative; boundary=\"YY\"\n"
        "\n"
        "--YY\n"
        "Content-Type: text/plain; charset=iso-8859-1\n"
        "Content-Transfer-Encoding: quoted-printable\n"
        "\n"
        "See the file, caf=E9.\n"
        "--YY\n"
        "Content-Type: text/html\n"
        "\n"
        "<p>See the file</p>\n"
        "--YY--\n"
        "--XX\n"
        "Content-Type: application/pdf; name=\"r.pdf\"\n"
        "Content-Disposition: attachment; filename=\"report.pdf\"\n"
        "Content-Transfer-Encoding: base64\n"
        "\n"
        "JVBERi0xLjQK\n"
        "--XX--\n")),
    ("carol@example.com", "last one", crlf(
        "From: carol@example.com\n"
        "Subject: last one\n"
        "Date: Mon, 01 Jan 2024 13:00:00 +0000\n"
        "\n"
        "Bye.\n")),
]


@fmtest.require(os.access(BUILD, os.X_OK), f"no test tool {BUILD} (build first)")
@fmtest.require(shutil.which("formail"), "formail missing (Debian package procmail)")
class DigestFormatTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="fm-digest-")
        cls.files = []
        for i, (_, _, raw) in enumerate(POSTS):
            path = os.path.join(cls.tmp, f"post{i}.eml")
            with open(path, "wb") as f:
                f.write(raw)
            cls.files.append(path)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def build(self, *args):
        out = subprocess.run(
            [BUILD, "-n", "dev", "-r", "dev-request@lists.example.org", "-v", "3", "-i", "12",
             "-H", "Welcome to dev.", "-F", "To leave, mail dev-request.", *args, *self.files],
            check=True, capture_output=True, timeout=30).stdout
        for line in out.split(b"\r\n"):
            self.assertLessEqual(len(line), 998)
        self.assertNotIn(b"\n", out.replace(b"\r\n", b""))
        return out

    def test_mime_digest(self):
        raw = self.build()
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        self.assertEqual(msg["Subject"], "dev digest, Vol 3, Issue 12")
        self.assertEqual(msg["To"], "dev@lists.example.org")
        self.assertEqual(msg.get_content_type(), "multipart/mixed")
        self.assertEqual(msg.defects, [])
        parts = list(msg.iter_parts())
        self.assertEqual([p.get_content_type() for p in parts],
                         ["text/plain", "multipart/digest", "text/plain"])
        # (get_content() keeps the CRLF line ends of the text parts.)
        toc = parts[0].get_content().replace("\r\n", "\n")
        self.assertIn("Welcome to dev.", toc)
        # The table of contents lists every post, numbered, in order.
        pos = toc.index("Today's Topics:")
        for i, (sender, subject, _) in enumerate(POSTS):
            line = f"{i + 1:4d}. {subject} ({sender})\n"
            self.assertIn(line, toc)
            self.assertGreater(toc.index(line), pos)
            pos = toc.index(line)
        inner = list(parts[1].iter_parts())
        self.assertEqual(len(inner), len(POSTS))
        for part, (sender, subject, _) in zip(inner, POSTS):
            self.assertEqual(part.get_content_type(), "message/rfc822")
            post = part.get_content()
            self.assertEqual(str(post["Subject"]), subject)
            self.assertEqual(str(post["From"]), sender)
        self.assertIn("Grüße aus Köln", inner[1].get_content().get_content())
        att = [p for p in inner[2].get_content().walk() if p.get_filename()]
        self.assertEqual(att[0].get_filename(), "report.pdf")
        self.assertEqual(att[0].get_content(), b"%PDF-1.4\n")
        self.assertIn("End of dev digest, Vol 3, Issue 12", parts[2].get_content())
        # The boundaries occur in no post.
        for b in (msg.get_boundary(), parts[1].get_boundary()):
            for _, _, post in POSTS:
                self.assertNotIn(b.encode(), post)

    def split_text(self, raw):
        """The text digest stored with LF line ends, split by formail into
        files; the first part (the digest's own header and topics) is
        skipped with +1."""
        outdir = os.path.join(self.tmp, "split")
        shutil.rmtree(outdir, ignore_errors=True)
        os.mkdir(outdir)
        subprocess.run(["formail", "+1", "-ds", "sh", "-c", 'cat > "$0/$FILENO"', outdir],
                       input=raw.replace(b"\r\n", b"\n"), check=True, timeout=30)
        return [open(os.path.join(outdir, f), "rb").read()
                for f in sorted(os.listdir(outdir), key=int)]

    def test_text_digest_splits_into_the_posts(self):
        raw = self.build("-t")
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        self.assertEqual(msg["Subject"], "dev digest, Vol 3, Issue 12")
        self.assertEqual(msg.get_content_type(), "text/plain")
        self.assertFalse(msg.is_multipart())
        text = msg.get_content().replace("\r\n", "\n")
        self.assertIn("Today's Topics:", text)
        self.assertIn("\n" + "-" * 70 + "\n", text)
        self.assertTrue(text.rstrip("\n").endswith(
            "End of dev digest, Vol 3, Issue 12\n" + "*" * 34))

        pieces = self.split_text(raw)
        self.assertEqual(len(pieces), len(POSTS), pieces)
        for piece, (sender, subject, post) in zip(pieces, POSTS):
            got = email.message_from_bytes(piece, policy=email.policy.default)
            orig = email.message_from_bytes(post, policy=email.policy.default)
            self.assertEqual(str(got["Subject"]), subject)
            self.assertEqual(str(got["From"]), sender)
            self.assertEqual(got["Date"], orig["Date"])
        bodies = [p.decode("utf-8") for p in pieces]
        self.assertIn("Hello list.\n- " + H30 + "\n", bodies[0])
        self.assertIn("From the start of a line", bodies[0])
        self.assertIn("Grüße aus Köln", bodies[1])
        self.assertIn("See the file, café.", bodies[2])
        self.assertNotIn("<p>", bodies[2])
        self.assertIn("[attachment: application/pdf, report.pdf, 9 bytes omitted]", bodies[2])
        self.assertIn("Bye.", bodies[3])


if __name__ == "__main__":
    unittest.main()
