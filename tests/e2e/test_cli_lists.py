"""`fanmail` CLI end to end: config, list commands, help, exit codes.

Runs the built `fanmail` against a private config and database.
"""
import json
import os
import sqlite3
import subprocess
import threading
import unittest

import fmtest


class CliCase(fmtest.TestCase):
    """fmtest.TestCase, whose expect() runs the CLI and checks its exit."""


class ConfigTest(CliCase):
    settings = {"max_recipients": "50"}

    def test_config_prints_every_setting_and_n_only_changed(self):
        out = self.fm.cli("config").stdout
        self.assertIn("max_recipients = 50\n", out)
        self.assertIn("delivery_port = 25\n", out)
        changed = self.fm.cli("config", "-n").stdout.splitlines()
        self.assertEqual(sorted(changed), sorted([
            f"database = {self.fm.db}", "hostname = mx.lists.localhost",
            f"dns_servers = {self.fm.settings['dns_servers']}",
            f"listen = 127.0.0.1:{self.fm.port}", "max_recipients = 50"]))

    def test_config_json_has_typed_values(self):
        cfg = json.loads(self.fm.cli("config", "--json").stdout)
        self.assertEqual(cfg["max_recipients"], 50)
        self.assertEqual(cfg["max_message_size"], 10 * 1024 * 1024)
        self.assertEqual(cfg["hostname"], "mx.lists.localhost")

    def test_config_from_environment_when_no_c(self):
        env = dict(os.environ, FANMAIL_CONFIG=self.fm.conf)
        p = subprocess.run([fmtest.FANMAIL, "config", "-n"], env=env, capture_output=True,
                           text=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("max_recipients = 50", p.stdout)

    def test_bad_config_is_ex_config_with_file_and_line(self):
        with open(self.fm.conf) as f:
            line = len(f.read().splitlines()) + 1
        with open(self.fm.conf, "a") as f:
            f.write("max_recipients = lots\n")
        self.expect(os.EX_CONFIG, "list", "ls", err=f"{self.fm.conf}:{line}: max_recipients")

    def test_missing_named_config_is_ex_config(self):
        p = subprocess.run([fmtest.FANMAIL, "-c", self.fm.conf + ".nope", "list", "ls"],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, os.EX_CONFIG, p.stderr)
        self.assertIn(".nope: cannot open", p.stderr)


class HelpTest(CliCase):
    def test_no_arguments_is_usage(self):
        self.expect(os.EX_USAGE, err="usage:")

    def test_every_command_has_help(self):
        top = self.fm.cli("--help").stdout
        listing = top[top.index("Commands:"):]
        cmds = [line.split()[:2] for line in listing.splitlines() if line.startswith("  ")]
        self.assertIn(["list", "create"], cmds)
        self.assertIn(["member", "import"], cmds)
        for group, cmd in cmds:
            args = [group] if cmd.startswith("[") or cmd.startswith("-") else [group, cmd]
            p = self.fm.cli(*args, "--help")
            self.assertIn("usage: fanmail", p.stdout, f"{args} --help: {p.stdout!r}")

    def test_unknown_command_and_option_are_usage(self):
        self.expect(os.EX_USAGE, "frobnicate", err="unknown command 'frobnicate'")
        self.expect(os.EX_USAGE, "list", "frobnicate", err="unknown command 'list frobnicate'")
        self.expect(os.EX_USAGE, "list", "ls", "--bogus", err="unknown option --bogus")
        self.expect(os.EX_USAGE, "list", "create", err="missing arguments")
        self.expect(os.EX_USAGE, "list", "show", "a@b.c", "d@e.f", err="too many arguments")


class ListTest(CliCase):
    def test_create_show_with_policy_and_owners(self):
        out = self.fm.cli("list", "create", "demo@lists.localhost", "--policy", "open",
                          "--owner", "postmaster@localhost", "--owner", "Bob@Example.org",
                          "--moderator", "mod@example.org").stdout
        self.assertEqual(out, "demo@lists.localhost\n")
        show = json.loads(self.fm.cli("list", "show", "demo@lists.localhost", "--json").stdout)
        self.assertEqual(show["address"], "demo@lists.localhost")
        self.assertEqual(show["settings"]["policy"], "open")
        self.assertEqual(sorted(show["owners"]), ["Bob@Example.org", "postmaster@localhost"])
        self.assertEqual(show["moderators"], ["mod@example.org"])
        self.assertEqual(show["members"], {"enabled": 0, "disabled": 0, "unconfirmed": 0,
                                           "total": 0})
        plain = self.fm.cli("list", "show", "demo@lists.localhost").stdout
        self.assertRegex(plain, r"(?m)^policy +open$")
        self.assertRegex(plain, r"(?m)^owner +postmaster@localhost$")

    def test_bare_name_gets_default_list_domain(self):
        self.fm.settings["default_list_domain"] = "lists.example.org"
        self.fm.write_conf()
        self.assertEqual(self.fm.cli("list", "create", "team").stdout, "team@lists.example.org\n")
        self.fm.cli("list", "show", "team")
        self.fm.cli("list", "show", "TEAM@Lists.Example.org")

    def test_list_ls_plain_and_json(self):
        self.fm.cli("list", "create", "b@example.org", "--description", "Bee list")
        self.fm.cli("list", "create", "a@example.org", "--policy", "announce")
        lines = self.fm.cli("list", "ls").stdout.splitlines()
        self.assertEqual(lines, ["a@example.org\tannounce\t0\t", "b@example.org\tmembers\t0\tBee list"])
        ls = json.loads(self.fm.cli("list", "ls", "--json").stdout)
        self.assertEqual([x["address"] for x in ls], ["a@example.org", "b@example.org"])
        self.assertEqual(ls[1]["description"], "Bee list")

    def test_empty_list_ls_json_is_empty_array(self):
        self.assertEqual(json.loads(self.fm.cli("list", "ls", "--json").stdout), [])

    def test_list_set_changes_all_or_nothing(self):
        self.fm.cli("list", "create", "x@example.org")
        self.fm.cli("list", "set", "x@example.org", "policy=moderated", "description=Hello world")
        show = json.loads(self.fm.cli("list", "show", "x@example.org", "--json").stdout)
        self.assertEqual((show["settings"]["policy"], show["settings"]["description"]),
                         ("moderated", "Hello world"))
        # One bad pair: nothing changes.
        self.expect(os.EX_DATAERR, "list", "set", "x@example.org", "policy=open",
                    "policy=everyone", err="bad setting 'policy=everyone'")
        self.expect(os.EX_DATAERR, "list", "set", "x@example.org", "color=blue",
                    err="color: unknown list setting")
        self.expect(os.EX_USAGE, "list", "set", "x@example.org", "policy",
                    err="'policy': expected KEY=VALUE")
        show = json.loads(self.fm.cli("list", "show", "x@example.org", "--json").stdout)
        self.assertEqual(show["settings"]["policy"], "moderated")

    def test_create_errors_name_the_argument(self):
        self.fm.cli("list", "create", "dup@example.org")
        self.expect(os.EX_CANTCREAT, "list", "create", "DUP@example.org",
                    err="the list DUP@example.org exists already")
        self.expect(os.EX_DATAERR, "list", "create", "bad list@example.org",
                    err="invalid list address 'bad list@example.org'")
        self.expect(os.EX_DATAERR, "list", "create", "x-request@example.org",
                    err="cannot end in -request")
        self.expect(os.EX_DATAERR, "list", "create", "y@example.org", "--policy", "everyone",
                    err="--policy everyone")
        self.expect(os.EX_DATAERR, "list", "create", "y@example.org", "--owner", "not-an-address",
                    err="--owner: invalid address 'not-an-address'")
        # The same owner twice: the whole create is rolled back.
        self.expect(os.EX_CANTCREAT, "list", "create", "z@example.org", "--owner", "o@example.org",
                    "--owner", "O@example.org", err="already an owner")
        self.expect(os.EX_NOINPUT, "list", "show", "z@example.org", err="no list 'z@example.org'")

    def test_create_refuses_every_role_address_of_another_list(self):
        # LIST-subscribe@... already routes to LIST's subscribe command, so a
        # list by that name could never receive a post: every role suffix is
        # refused, in any case, and nothing is created.
        self.fm.cli("list", "create", "foo@example.org")
        for role in ("request", "owner", "bounces", "join", "leave", "subscribe",
                     "unsubscribe", "confirm"):
            for local in (f"foo-{role}", f"Bar-{role.upper()}"):
                p = self.expect(os.EX_DATAERR, "list", "create", f"{local}@example.org",
                                err=f"invalid list address '{local}@example.org': "
                                    "a list address cannot end in")
                self.assertIn(f"-{role}", p.stderr, f"expected the suffix named: {p.stderr!r}")
        self.assertEqual(self.fm.cli("list", "ls").stdout.splitlines(),
                         ["foo@example.org\tmembers\t0\t"])

    def test_unknown_list_is_ex_noinput(self):
        for args in (("list", "show", "nope@example.org"),
                     ("list", "set", "nope@example.org", "policy=open"),
                     ("list", "delete", "nope@example.org", "--yes"),
                     ("member", "ls", "nope@example.org"),
                     ("member", "add", "nope@example.org", "a@example.org")):
            self.expect(os.EX_NOINPUT, *args, err="no list 'nope@example.org'")

    def test_delete_needs_yes_and_removes_members(self):
        self.fm.cli("list", "create", "del@example.org")
        self.fm.cli("member", "add", "del@example.org", "a@example.org", "b@example.org")
        self.expect(os.EX_USAGE, "list", "delete", "del@example.org",
                    err="without --yes")
        self.fm.cli("list", "show", "del@example.org")
        out = self.fm.cli("list", "delete", "del@example.org", "--yes").stdout
        self.assertIn("2 members", out)
        self.expect(os.EX_NOINPUT, "list", "show", "del@example.org")
        with sqlite3.connect(self.fm.db) as c:
            self.assertEqual(c.execute("SELECT count(*) FROM members").fetchone()[0], 0)


class LockedDatabaseTest(CliCase):
    def test_write_while_locked_is_tempfail_and_reads_still_work(self):
        self.fm.cli("list", "create", "locked@example.org")
        c = sqlite3.connect(self.fm.db, isolation_level=None, timeout=1)
        c.execute("BEGIN IMMEDIATE")
        try:
            # Readers are not blocked by a writer (WAL).
            self.fm.cli("list", "show", "locked@example.org")
            self.expect(os.EX_TEMPFAIL, "member", "add", "locked@example.org", "a@example.org",
                        err="the database is locked by another process")
            self.expect(os.EX_TEMPFAIL, "list", "create", "other@example.org",
                        err="locked by another process")
            self.expect(os.EX_TEMPFAIL, "member", "import", "locked@example.org", "-",
                        input="b@example.org\n", err="locked by another process")
        finally:
            c.execute("ROLLBACK")
            c.close()
        members = self.fm.cli("member", "ls", "locked@example.org").stdout
        self.assertEqual(members, "", "nothing may be written while locked")
        self.expect(os.EX_NOINPUT, "list", "show", "other@example.org")


if __name__ == "__main__":
    unittest.main()
