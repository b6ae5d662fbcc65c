"""`fanmail secret`: the one-click key's versions are listed, rotated and
dropped; no command ever prints a key's value."""
import json
import os
import sqlite3
import unittest

import fmtest


class SecretTest(fmtest.TestCase):
    def values(self):
        with sqlite3.connect(self.fm.db) as db:
            return [v.hex() for (v,) in db.execute("SELECT value FROM secrets")]

    def test_first_start_makes_version_1_and_rotation_keeps_old_ones_until_dropped(self):
        self.fm.cli("list", "create", "news@lists.example.org")
        out = self.fm.cli("secret", "ls").stdout.splitlines()
        self.assertEqual(len(out), 1)
        family, version, created, state = out[0].split("\t")
        self.assertEqual((family, version, state), ("oneclick", "1", "active"))
        self.assertRegex(created, r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")

        p = self.fm.cli("secret", "rotate", "oneclick")
        self.assertIn("version 2 is active", p.stdout)
        rows = json.loads(self.fm.cli("secret", "ls", "--json").stdout)
        self.assertEqual([(r["version"], r["state"]) for r in rows],
                         [(2, "active"), (1, "honoured")])

        p = self.fm.cli("secret", "rotate", "oneclick", "--drop-old")
        self.assertIn("version 3 is active", p.stdout)
        rows = json.loads(self.fm.cli("secret", "ls", "--json").stdout)
        self.assertEqual([r["version"] for r in rows], [3])

        self.fm.cli("secret", "rotate", "oneclick")
        p = self.fm.cli("secret", "drop-old", "oneclick")
        self.assertIn("1 older version dropped; version 4", p.stdout)

        # No output of any of these holds a key, in hex or otherwise.
        outputs = "".join(self.fm.cli(*a).stdout for a in
                          (("secret", "ls"), ("secret", "ls", "--json"), ("config",)))
        for v in self.values():
            self.assertNotIn(v, outputs.lower())

    def test_bad_arguments(self):
        self.fm.cli("list", "create", "news@lists.example.org")
        self.expect(os.EX_DATAERR, "secret", "rotate", "report",
                    err="report: no such key family (there is: oneclick)")
        self.expect(os.EX_USAGE, "secret", "rotate")
        self.expect(os.EX_USAGE, "secret", "ls", "extra")
        self.expect(os.EX_USAGE, "secret", "rotate", "oneclick", "--bogus")


if __name__ == "__main__":
    unittest.main()
