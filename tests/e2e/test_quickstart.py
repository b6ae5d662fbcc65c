"""The README's set-up: scripts/quickstart creates the demo list and runs
fanmaild so that `swaks --to demo@lists.localhost` is accepted; and
`cmake --install` puts the programs, man pages, example configuration and
systemd unit in the usual places.

The quickstart runs with FANMAIL_QUICKSTART_NO_BUILD=1 (the build is
there already, and apt-get is not the test's business) in a private
directory whose fanmail.conf (kept by the script as it is) listens on a
free loopback port and sends DNS to a loopback port where nothing answers.
"""
import os
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

import fmtest

QUICKSTART = os.path.join(fmtest.SOURCE_DIR, "scripts", "quickstart")
BUILD = os.path.join(fmtest.SOURCE_DIR, "build")


class Quickstart(unittest.TestCase):
    def setUp(self):
        self.var = tempfile.mkdtemp(prefix="fanmail-quickstart-")
        self.addCleanup(shutil.rmtree, self.var, True)
        self.port = fmtest.free_port()
        with open(os.path.join(self.var, "fanmail.conf"), "w") as f:
            f.write(f"hostname = localhost\ndatabase = {self.var}/fanmail.db\n"
                    f"listen = 127.0.0.1:{self.port}\n"
                    f"dns_servers = 127.0.0.1:{fmtest.free_port()}\n")

    @fmtest.require(os.access(os.path.join(BUILD, "fanmaild"), os.X_OK),
                    "the quickstart runs ./build/fanmaild")
    @fmtest.require(shutil.which("swaks"), "swaks is installed by scripts/deps")
    def test_demo_list_accepts_swaks(self):
        env = dict(os.environ, FANMAIL_QUICKSTART_NO_BUILD="1", FANMAIL_QUICKSTART_VAR=self.var)
        out = open(os.path.join(self.var, "out"), "w+b")
        p = subprocess.Popen([QUICKSTART], env=env, stdout=out, stderr=subprocess.STDOUT,
                             start_new_session=True)
        try:
            fmtest.wait_port("127.0.0.1", self.port, timeout=30)
            s = subprocess.run(["swaks", "--server", f"127.0.0.1:{self.port}",
                                "--to", "demo@lists.localhost", "--from", "me@localhost"],
                               capture_output=True, text=True, timeout=60)
            self.assertEqual(0, s.returncode, s.stdout + s.stderr)
            self.assertRegex(s.stdout, r"<-  250 2\.0\.0 Ok: queued as [0-9A-F]{16}")
            conf = os.path.join(self.var, "fanmail.conf")
            deadline = time.monotonic() + 20
            while True:
                shown = subprocess.run([os.path.join(BUILD, "fanmail"), "-c", conf, "list",
                                        "show", "demo@lists.localhost"], capture_output=True,
                                       text=True, timeout=30)
                self.assertEqual(0, shown.returncode, shown.stderr)
                if "posts        1" in shown.stdout or time.monotonic() > deadline:
                    break
                time.sleep(0.1)
            self.assertIn("posts        1", shown.stdout, "the post went through the demo list")
        finally:
            os.killpg(p.pid, signal.SIGTERM)
            p.wait(30)
            out.seek(0)
            log = out.read().decode(errors="replace")
            out.close()
        self.assertIn(f"fanmaild: listening on 127.0.0.1:{self.port}; try: swaks --server "
                      f"127.0.0.1:{self.port} --to demo@lists.localhost", log)


class Install(unittest.TestCase):
    @fmtest.require(os.path.exists(os.path.join(BUILD, "CMakeCache.txt")), "needs ./build")
    def test_install_puts_everything_in_place(self):
        dest = tempfile.mkdtemp(prefix="fanmail-install-")
        self.addCleanup(shutil.rmtree, dest, True)
        p = subprocess.run(["cmake", "--install", BUILD, "--prefix", "/usr"],
                           env=dict(os.environ, DESTDIR=dest), capture_output=True, text=True,
                           timeout=120)
        self.assertEqual(0, p.returncode, p.stdout + p.stderr)
        for path in ("usr/sbin/fanmaild", "usr/bin/fanmail"):
            self.assertTrue(os.access(os.path.join(dest, path), os.X_OK), path)
        for path in ("usr/share/man/man1/fanmail.1", "usr/share/man/man5/fanmail.conf.5",
                     "usr/share/man/man8/fanmaild.8",
                     "usr/share/doc/fanmail/fanmail.conf.example",
                     "usr/lib/systemd/system/fanmaild.service"):
            self.assertTrue(os.path.isfile(os.path.join(dest, path)), path)
        # The installed programs run, and the example configuration parses.
        conf = os.path.join(dest, "usr/share/doc/fanmail/fanmail.conf.example")
        c = subprocess.run([os.path.join(dest, "usr/bin/fanmail"), "-c", conf, "config", "-n"],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(0, c.returncode, c.stderr)


if __name__ == "__main__":
    unittest.main()
