"""`fanmail member` end to end: add, remove, ls, show, set, import, export.

Runs the built `fanmail` against a private config and database.
"""
import json
import os
import sqlite3
import unittest

import fmtest

LIST = "team@example.org"


class MemberCase(fmtest.TestCase):
    def setUp(self):
        super().setUp()
        self.fm.cli("list", "create", LIST)

    def members(self, *extra):
        return json.loads(self.fm.cli("member", "ls", LIST, "--json", *extra).stdout)

    def addresses(self, *extra):
        return [m["address"] for m in self.members(*extra)]


class AddRemoveTest(MemberCase):
    def test_add_with_names_and_list_in_key_order(self):
        self.fm.cli("member", "add", LIST, "carol@example.org", "Alice Smith <Alice@Example.org>",
                    "bob@example.net (Bob)")
        ms = self.members()
        self.assertEqual([m["address"] for m in ms],
                         ["Alice@Example.org", "bob@example.net", "carol@example.org"])
        self.assertEqual([m["name"] for m in ms], ["Alice Smith", "Bob", None])
        self.assertEqual({m["status"] for m in ms}, {"enabled"})
        plain = self.fm.cli("member", "ls", LIST).stdout.splitlines()
        self.assertEqual(plain[0], "Alice@Example.org\tenabled\tregular\tAlice Smith")
        self.assertEqual(plain[2], "carol@example.org\tenabled\tregular\t")

    def test_invalid_address_adds_nothing(self):
        self.expect(os.EX_DATAERR, "member", "add", LIST, "ok@example.org", "bad@@example.org",
                    err="invalid address 'bad@@example.org'")
        self.assertEqual(self.addresses(), [])

    def test_duplicate_adds_nothing(self):
        self.fm.cli("member", "add", LIST, "dup@example.org")
        self.expect(os.EX_CANTCREAT, "member", "add", LIST, "new@example.org", "DUP@Example.ORG",
                    err="DUP@Example.ORG is already a member")
        self.assertEqual(self.addresses(), ["dup@example.org"])

    def test_remove_all_or_nothing(self):
        self.fm.cli("member", "add", LIST, "a@example.org", "b@example.org")
        self.expect(os.EX_NOINPUT, "member", "remove", LIST, "a@example.org", "zz@example.org",
                    err="zz@example.org is not a member")
        self.assertEqual(self.addresses(), ["a@example.org", "b@example.org"])
        self.fm.cli("member", "remove", LIST, "A@EXAMPLE.ORG")
        self.assertEqual(self.addresses(), ["b@example.org"])

    def test_utf8_and_quoted_addresses_round_trip(self):
        self.fm.cli("member", "add", LIST, "J\u00f6rg <j\u00f6rg@b\u00fccher.example>",
                    '"john doe"@example.org', "x@[192.0.2.1]", "y@[IPv6:2001:db8::1]")
        self.assertEqual(sorted(self.addresses()), sorted([
            "j\u00f6rg@b\u00fccher.example", '"john doe"@example.org', "x@[192.0.2.1]",
            "y@[IPv6:2001:db8::1]"]))
        self.expect(os.EX_CANTCREAT, "member", "add", LIST, '"John Doe"@EXAMPLE.org')
        self.expect(os.EX_CANTCREAT, "member", "add", LIST, "y@[ipv6:2001:DB8:0::1]")


class SetShowTest(MemberCase):
    def test_set_fields_and_enable_resets_bounce_score(self):
        self.fm.cli("member", "add", LIST, "m@example.org")
        self.fm.cli("member", "set", LIST, "m@example.org", "status=disabled", "delivery=nomail",
                    "self_copy=yes", "name=Em Example")
        m = json.loads(self.fm.cli("member", "show", LIST, "M@example.org", "--json").stdout)
        self.assertEqual((m["status"], m["delivery"], m["self_copy"], m["name"]),
                         ("disabled", "nomail", True, "Em Example"))
        self.assertEqual(self.addresses("--status", "disabled"), ["m@example.org"])
        self.assertEqual(self.addresses("--status", "enabled"), [])
        with sqlite3.connect(self.fm.db) as c:
            c.execute("UPDATE members SET bounce_score = 7.5")
        self.fm.cli("member", "set", LIST, "m@example.org", "status=enabled")
        m = json.loads(self.fm.cli("member", "show", LIST, "m@example.org", "--json").stdout)
        self.assertEqual((m["status"], m["bounce_score"]), ("enabled", 0))
        show = json.loads(self.fm.cli("list", "show", LIST, "--json").stdout)
        self.assertEqual(show["members"]["enabled"], 1)

    def test_bad_set_changes_nothing(self):
        self.fm.cli("member", "add", LIST, "m@example.org")
        self.expect(os.EX_DATAERR, "member", "set", LIST, "m@example.org", "delivery=nomail",
                    "status=gone", err="status: 'gone' is not one of")
        self.expect(os.EX_DATAERR, "member", "set", LIST, "m@example.org", "colour=red",
                    err="colour: unknown member field")
        self.expect(os.EX_DATAERR, "member", "set", LIST, "m@example.org", "self_copy=perhaps",
                    err="self_copy: 'perhaps' is not yes or no")
        self.expect(os.EX_USAGE, "member", "set", LIST, "m@example.org", "status",
                    err="expected KEY=VALUE")
        self.expect(os.EX_NOINPUT, "member", "set", LIST, "other@example.org", "status=enabled",
                    err="other@example.org is not a member")
        self.expect(os.EX_DATAERR, "member", "set", LIST, "not an address", "status=enabled",
                    err="invalid address 'not an address'")
        m = self.members()[0]
        self.assertEqual((m["status"], m["delivery"]), ("enabled", "regular"))

    def test_ls_status_filter_is_checked(self):
        self.expect(os.EX_DATAERR, "member", "ls", LIST, "--status", "asleep",
                    err="--status asleep")


class ImportExportTest(MemberCase):
    def test_import_reports_bad_lines_and_imports_the_good(self):
        text = ("# members of the team\n"
                "alice@example.org\n"
                "\n"
                "Bob Builder <bob@example.org>\n"
                "not an address\n"
                "carol@example.org (Carol)\n"
                "dave@@example.org\n"
                "\"Eve, E.\" <eve@example.org>\r\n")
        p = self.expect(os.EX_DATAERR, "member", "import", LIST, "-", input=text)
        self.assertIn("<stdin>:5: ", p.stderr)
        self.assertIn("<stdin>:7: ", p.stderr)
        self.assertNotIn("<stdin>:2:", p.stderr)
        self.assertIn("added 4, already members 0, bad lines 2", p.stdout)
        self.assertEqual(self.addresses(), ["alice@example.org", "bob@example.org",
                                            "carol@example.org", "eve@example.org"])
        self.assertEqual([m["name"] for m in self.members()],
                         [None, "Bob Builder", "Carol", "Eve, E."])

    def test_strict_import_with_a_bad_line_imports_nothing(self):
        self.expect(os.EX_DATAERR, "member", "import", LIST, "-", "--strict",
                    input="a@example.org\nbad line\n", err="nothing imported")
        self.assertEqual(self.addresses(), [])

    def test_reimport_changes_nothing(self):
        path = os.path.join(self.fm.dir, "m.txt")
        with open(path, "w") as f:
            f.write("a@example.org\nB <b@example.org>\nA@EXAMPLE.ORG\n")
        out = self.fm.cli("member", "import", LIST, path, "--json").stdout
        self.assertEqual(json.loads(out), {"added": 2, "unchanged": 1, "bad": 0})
        before = self.members()
        out = self.fm.cli("member", "import", LIST, path).stdout
        self.assertIn("added 0, already members 3, bad lines 0", out)
        self.assertEqual(self.members(), before)

    def test_import_delivery_sets_only_the_new_members(self):
        self.fm.cli("member", "add", LIST, "old@example.org")
        self.expect(os.EX_USAGE, "member", "import", LIST, "-", "--delivery", "weekly",
                    input="x@example.org\n", err="'weekly' is not one of")
        self.assertEqual(self.addresses(), ["old@example.org"])
        out = self.fm.cli("member", "import", LIST, "-", "--delivery", "digest-text",
                          input="old@example.org\nnew@example.org\n").stdout
        self.assertIn("added 1, already members 1", out)
        self.assertEqual([(m["address"], m["delivery"]) for m in self.members()],
                         [("new@example.org", "digest-text"), ("old@example.org", "regular")])

    def test_export_reimports_to_the_same_set(self):
        self.fm.cli("member", "add", LIST, 'Ann "The Boss" O\'Neil <ann@example.org>',
                    '"quoted local"@example.org', "Back\\slash <bs@example.org>",
                    "J\u00f6rg <j\u00f6rg@example.org>", "plain@example.org",
                    "lit@[192.0.2.7]", "Comma, Name <comma@example.org>")
        exported = self.fm.cli("member", "export", LIST).stdout
        self.fm.cli("list", "create", "copy@example.org")
        self.fm.cli("member", "import", "copy@example.org", "-", input=exported)
        a = [(m["address"], m["name"]) for m in self.members()]
        b = [(m["address"], m["name"]) for m in json.loads(
            self.fm.cli("member", "ls", "copy@example.org", "--json").stdout)]
        self.assertEqual(a, b)
        self.assertEqual(len(a), 7)
        self.assertEqual(self.fm.cli("member", "export", "copy@example.org").stdout, exported)

    def test_import_missing_file_is_ex_noinput(self):
        self.expect(os.EX_NOINPUT, "member", "import", LIST, "/nonexistent/members.txt",
                    err="/nonexistent/members.txt: cannot open")

    def test_long_and_binary_lines_are_bad_lines(self):
        text = "a@example.org\n" + "x" * 5000 + "@example.org\n" + "b\x00@example.org\n"
        p = self.expect(os.EX_DATAERR, "member", "import", LIST, "-", input=text)
        self.assertIn("<stdin>:2: the line is longer than 4096 octets", p.stderr)
        self.assertIn("<stdin>:3: ", p.stderr)
        self.assertEqual(self.addresses(), ["a@example.org"])

    def test_counts_follow_import_and_status_changes(self):
        self.fm.cli("member", "import", LIST, "-",
                    input="".join(f"u{i}@example.org\n" for i in range(500)))
        self.fm.cli("member", "set", LIST, "u1@example.org", "status=disabled")
        self.fm.cli("member", "set", LIST, "u2@example.org", "status=unconfirmed")
        self.fm.cli("member", "remove", LIST, "u3@example.org")
        show = json.loads(self.fm.cli("list", "show", LIST, "--json").stdout)
        self.assertEqual(show["members"], {"enabled": 497, "disabled": 1, "unconfirmed": 1,
                                           "total": 499})


class JsonEscapingTest(MemberCase):
    def test_names_with_quotes_backslashes_and_controls_are_valid_json(self):
        self.fm.cli("member", "add", LIST, 'x@example.org')
        self.fm.cli("member", "set", LIST, "x@example.org", 'name=a "b" \\c \u2028 \u00e9')
        m = self.members()[0]
        self.assertEqual(m["name"], 'a "b" \\c \u2028 \u00e9')


if __name__ == "__main__":
    unittest.main()
