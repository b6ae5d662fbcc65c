"""`fanmail` refuses what would hurt a list and reads what it may only read
(issue 11, hardening round 2): no list or role address of this server as a
member, a byte order mark is not part of an imported address, digest
delivery is refused until digests exist, and a read-only database still
answers reading commands (exit 77 for writing ones).

Runs the built `fanmail` against a private config and database.
"""
import json
import os
import pwd
import sqlite3
import subprocess
import unittest

import fmtest

LIST = "team@example.org"
OTHER = "other@example.org"


class AdminCase(fmtest.TestCase):
    def setUp(self):
        super().setUp()
        self.fm.cli("list", "create", LIST)
        self.fm.cli("list", "create", OTHER)

    def addresses(self, lst=LIST):
        return [m["address"] for m in
                json.loads(self.fm.cli("member", "ls", lst, "--json").stdout)]


OURS = ["team@example.org", "TEAM@Example.ORG", "other@example.org",
        "team-request@example.org", "team-owner@example.org", "team-bounces@example.org",
        "team-bounces+x=y@example.org", "team-join@example.org", "team-leave@example.org",
        "team-subscribe@example.org", "team-unsubscribe@example.org",
        "other-confirm+0123abcd@example.org", '"team-owner"@example.org']


class OwnAddressesTest(AdminCase):
    def test_member_add_refuses_every_list_and_role_address(self):
        for a in OURS:
            with self.subTest(address=a):
                self.expect(os.EX_DATAERR, "member", "add", LIST, "ok@example.net", a,
                            err="a list or list role address of this server cannot be a member")
        self.assertEqual(self.addresses(), [], "expected no member added at all")

    def test_addresses_that_only_look_like_ours_are_members(self):
        fine = ["team@example.net", "team-request@lists.example.net", "team-helper@example.org",
                "nolist-owner@example.org", "team-confirm@example.org"]
        self.fm.cli("member", "add", LIST, *fine)
        self.assertEqual(sorted(self.addresses()), sorted(fine))

    def test_member_import_reports_our_addresses_as_bad_lines(self):
        body = "ok@example.net\nother@example.org\nteam-bounces+abc@example.org\nz@example.net\n"
        p = self.expect(os.EX_DATAERR, "member", "import", OTHER, "-", input=body)
        self.assertIn("<stdin>:2: a list or list role address of this server", p.stderr)
        self.assertIn("<stdin>:3: a list or list role address of this server", p.stderr)
        self.assertIn("added 2, already members 0, bad lines 2", p.stdout)
        self.assertEqual(sorted(self.addresses(OTHER)), ["ok@example.net", "z@example.net"])


class ImportBomTest(AdminCase):
    def test_leading_utf8_bom_is_not_part_of_the_first_address(self):
        path = os.path.join(self.fm.dir, "members.txt")
        with open(path, "wb") as f:
            f.write("\ufeffalice@example.net\nBob <bob@example.net>\n".encode("utf-8"))
        p = self.fm.cli("member", "import", LIST, path)
        self.assertIn("added 2, already members 0, bad lines 0", p.stdout)
        self.assertEqual(sorted(self.addresses()), ["alice@example.net", "bob@example.net"])
        # The same from standard input, and a BOM-only first line.
        p = self.fm.cli("member", "import", OTHER, "-", input="\ufeff\ncarol@example.net\n")
        self.assertIn("added 1, already members 0, bad lines 0", p.stdout)
        self.assertEqual(self.addresses(OTHER), ["carol@example.net"])


class DigestTest(AdminCase):
    def test_every_delivery_mode_is_taken_and_nothing_else(self):
        self.fm.cli("member", "add", LIST, "d@example.net")
        for mode in ("digest", "digest-text", "nomail", "regular"):
            self.fm.cli("member", "set", LIST, "d@example.net", f"delivery={mode}")
            m = json.loads(self.fm.cli("member", "show", LIST, "d@example.net",
                                       "--json").stdout)
            self.assertEqual(m["delivery"], mode)
        self.expect(os.EX_DATAERR, "member", "set", LIST, "d@example.net", "delivery=weekly")
        m = json.loads(self.fm.cli("member", "show", LIST, "d@example.net", "--json").stdout)
        self.assertEqual(m["delivery"], "regular")


class ReadOnlyDatabaseTest(AdminCase):
    """The database's directory 0555 and the file 0444, fanmail run as
    nobody (the tests run as root, who could write anyway)."""

    def setUp(self):
        fmtest.require_root(self, "runs fanmail as nobody with setpriv")
        super().setUp()
        self.fm.cli("member", "add", LIST, "m@example.net")
        os.chmod(self.fm.conf, 0o644)
        os.chmod(self.fm.dir, 0o755)

    def as_nobody(self, *args):
        cmd = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
               fmtest.FANMAIL, "-c", self.fm.conf] + list(args)
        return subprocess.run(cmd, capture_output=True, text=True, timeout=60)

    def make_read_only(self):
        os.chmod(self.fm.db, 0o444)
        for ext in ("-wal", "-shm"):
            if os.path.exists(self.fm.db + ext):
                os.chmod(self.fm.db + ext, 0o444)
        os.chmod(self.fm.dir, 0o555)
        self.addCleanup(os.chmod, self.fm.dir, 0o755)

    def check_reads_work_and_writes_are_77(self):
        p = self.as_nobody("list", "ls")
        self.assertEqual(p.returncode, 0, f"list ls on a read-only database: expected exit 0, "
                                          f"got {p.returncode}; stderr: {p.stderr!r}")
        self.assertEqual(sorted(line.split("\t")[0] for line in p.stdout.splitlines()),
                         [OTHER, LIST])
        p = self.as_nobody("member", "ls", LIST)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertTrue(p.stdout.startswith("m@example.net\t"), p.stdout)
        for args in (["list", "create", "new@example.org"],
                     ["member", "add", LIST, "n@example.net"]):
            p = self.as_nobody(*args)
            self.assertEqual(p.returncode, os.EX_NOPERM,
                             f"fanmail {' '.join(args)}: expected exit 77, got {p.returncode}; "
                             f"stderr: {p.stderr!r}")
            self.assertIn("read-only", p.stderr)

    def test_no_wal_or_shm_files(self):
        self.assertFalse(os.path.exists(self.fm.db + "-shm"), "expected a cleanly closed db")
        self.make_read_only()
        self.check_reads_work_and_writes_are_77()

    def test_wal_and_shm_present(self):
        # A reader holding the database open keeps its -wal and -shm files.
        con = sqlite3.connect(self.fm.db)
        self.addCleanup(con.close)
        con.execute("SELECT count(*) FROM lists").fetchall()
        self.assertTrue(os.path.exists(self.fm.db + "-shm"), "expected a -shm file")
        self.make_read_only()
        self.check_reads_work_and_writes_are_77()


if __name__ == "__main__":
    unittest.main()
