"""The man pages agree with the code.

fanmail.conf(5)'s SETTINGS section must be exactly what the settings table
generates (`fanmail config --man`), and fanmail(1) must document every
command `fanmail --help` lists.
"""
import os
import re
import subprocess
import unittest

import fmtest


def read(name):
    with open(os.path.join(fmtest.SOURCE_DIR, "docs", name), encoding="utf-8") as f:
        return f.read()


class ManPageTest(unittest.TestCase):
    def run_fanmail(self, *args):
        p = subprocess.run([fmtest.FANMAIL, *args], capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)
        return p.stdout

    def test_conf_page_settings_match_the_table(self):
        generated = self.run_fanmail("config", "--man")
        page = read("fanmail.conf.5")
        begin = page.index(".\\\" BEGIN GENERATED SETTINGS")
        begin = page.index("\n", begin) + 1
        end = page.index(".\\\" END GENERATED SETTINGS")
        self.assertEqual(page[begin:end], generated,
                         "docs/fanmail.conf.5 differs from conf/settings.def: "
                         "run scripts/update-conf-man and commit the page")

    def test_every_command_is_in_fanmail_1(self):
        page = read("fanmail.1").replace("\\-", "-")
        commands = []
        for line in self.run_fanmail("--help").splitlines():
            m = re.match(r"  ([a-z]+)(?: ([a-z]+))?(?: |$)", line)
            if m:
                commands.append(" ".join(x for x in m.groups() if x))
        self.assertIn("member import", commands)
        for cmd in commands:
            group, _, sub = cmd.partition(" ")
            pattern = r"(\.B |\\fB)" + re.escape(group) + (r"\s+" + re.escape(sub) if sub else "")
            self.assertRegex(page, pattern, f"fanmail(1) does not document '{cmd}'")


if __name__ == "__main__":
    unittest.main()
