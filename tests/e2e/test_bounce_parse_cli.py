"""`fanmail bounce parse` on real bounces from the corpus
(tests/corpus/bounces, as tests/unit/test_bounce_corpus.c reads it): an
RFC 3464 DSN, a qmail text bounce, an ARF complaint and an mbox, as text and
as JSON, with the fields an admin reads."""
import json
import os
import unittest

import fmtest

SISIMAI = os.path.join(fmtest.CORPUS_DIR, "bounces", "sisimai")
DSN = os.path.join(SISIMAI, "maildir", "bsd", "rfc3464-01.eml")
QMAIL = os.path.join(SISIMAI, "maildir", "bsd", "lhost-qmail-02.eml")
ARF = os.path.join(SISIMAI, "maildir", "bsd", "arf-01.eml")
MBOX = os.path.join(SISIMAI, "mailbox", "mbox-0")


class TestBounceParseCli(fmtest.TestCase):

    def setUp(self):
        super().setUp()
        for f in (DSN, QMAIL, ARF, MBOX):
            self.assertTrue(os.path.isfile(f), f"corpus file missing: {f}")

    def parse(self, *args):
        return self.fm.cli("bounce", "parse", *args).stdout

    def text_rows(self, out):
        """{file line: [recipient fields...]} from the text output."""
        blocks, cur = {}, None
        for line in out.splitlines():
            if line.startswith("# "):
                cur = blocks.setdefault(line, [])
            else:
                self.assertIsNotNone(cur, f"recipient line before any '# FILE' line: {out}")
                cur.append(line.split("\t"))
        return blocks

    def test_dsn_text_names_recipient_status_class_and_diagnostic(self):
        blocks = self.text_rows(self.parse(DSN))
        self.assertEqual([f"# {DSN}: dsn"], list(blocks), f"got {blocks}")
        rows = blocks[f"# {DSN}: dsn"]
        self.assertEqual(1, len(rows), f"expected one recipient, got {rows}")
        self.assertEqual(["userunknown@bouncehammer.jp", "failed", "5.1.1", "hard",
                          "unknown user"], rows[0][:5])
        self.assertIn("User Unknown", rows[0][5], "the remote server's words")

    def test_qmail_text_bounce_gives_each_recipient(self):
        blocks = self.text_rows(self.parse(QMAIL))
        rows = blocks.get(f"# {QMAIL}: text")
        self.assertIsNotNone(rows, f"expected kind text, got {list(blocks)}")
        self.assertEqual([["userunknown@example.jp", "failed", "5.1.1", "hard"],
                          ["filtered@example.jp", "failed", "5.2.1", "hard"]],
                         [r[:4] for r in rows])

    def test_arf_report_is_a_complaint_not_a_bounce(self):
        rows = self.text_rows(self.parse(ARF)).get(f"# {ARF}: arf")
        self.assertEqual([["redacted@example.net", "complaint", "-", "complaint", "complaint",
                           "-"]], rows)
        j = json.loads(self.parse("--json", ARF))
        self.assertEqual(1, len(j), f"one report, got {j}")
        self.assertEqual("arf", j[0]["kind"])
        self.assertNotIn("message", j[0], "a single message has no message number")
        self.assertEqual([{"address": "redacted@example.net", "original": None,
                           "action": "complaint", "status": None, "class": "complaint",
                           "reason": "complaint", "diagnostic": None, "bounced": False}],
                         j[0]["recipients"])

    def test_json_reports_every_file_in_order(self):
        j = json.loads(self.parse("--json", DSN, QMAIL, ARF))
        self.assertEqual([(DSN, "dsn"), (QMAIL, "text"), (ARF, "arf")],
                         [(r["file"], r["kind"]) for r in j])
        dsn = j[0]["recipients"]
        self.assertEqual(1, len(dsn), f"got {dsn}")
        self.assertEqual(("userunknown@bouncehammer.jp", "failed", "5.1.1", "hard", True),
                         (dsn[0]["address"], dsn[0]["action"], dsn[0]["status"],
                          dsn[0]["class"], dsn[0]["bounced"]))
        self.assertIn("550 5.1.1", dsn[0]["diagnostic"])
        self.assertEqual(["5.1.1", "5.2.1"], [r["status"] for r in j[1]["recipients"]])
        self.assertTrue(all(r["bounced"] for r in j[1]["recipients"]))

    def test_mbox_splits_into_its_messages(self):
        heads = [line for line in self.parse(MBOX).splitlines() if line.startswith("# ")]
        self.assertEqual(37, len(heads), f"expected 37 messages, got {len(heads)}")
        self.assertEqual(f"# {MBOX} message 1: dsn", heads[0])
        self.assertTrue(heads[36].startswith(f"# {MBOX} message 37: "), heads[36])
        first = self.text_rows(self.parse(MBOX))[heads[0]]
        self.assertEqual(["domain-does-not-exist@example.gov", "failed", "5.1.2", "hard",
                          "unknown domain"], first[0][:5])
        j = json.loads(self.parse("--json", MBOX))
        self.assertEqual(list(range(1, 38)), [r["message"] for r in j])
        self.assertTrue(all(r["file"] == MBOX for r in j))
        self.assertEqual("domain-does-not-exist@example.gov", j[0]["recipients"][0]["address"])

    def test_missing_file_is_ex_noinput(self):
        p = self.fm.cli("bounce", "parse", os.path.join(self.fm.dir, "nope.eml"), check=False)
        self.assertEqual(66, p.returncode, f"expected EX_NOINPUT (66), got {p.returncode}")
        self.assertIn("nope.eml", p.stderr)


if __name__ == "__main__":
    unittest.main()
