"""fanmaild as a process: configuration and exit codes, IPv4 and IPv6
listeners, dropping privileges, and backpressure on a client that does not
read its replies."""
import os
import pwd
import socket
import subprocess
import threading
import time
import unittest

import fmtest
from smtpd_util import Dialog, SmtpdCase, create_list, spool_rows, wait_db

EX_USAGE, EX_NOUSER, EX_OSERR, EX_CANTCREAT, EX_CONFIG = 64, 67, 71, 73, 78


def run_daemon(*args, env=None, timeout=20):
    return subprocess.run([fmtest.FANMAILD, *args], capture_output=True, text=True,
                          timeout=timeout, env=env)


class ExitCodeTest(fmtest.TestCase):
    def test_bad_option_is_ex_usage(self):
        self.assertEqual(run_daemon("-x").returncode, EX_USAGE)
        self.assertEqual(run_daemon("extra").returncode, EX_USAGE)

    def test_missing_explicit_config_is_ex_config(self):
        p = run_daemon("-c", os.path.join(self.fm.dir, "nope.conf"))
        self.assertEqual(p.returncode, EX_CONFIG, p.stderr)
        env = dict(os.environ, FANMAIL_CONFIG=os.path.join(self.fm.dir, "nope.conf"))
        self.assertEqual(run_daemon(env=env).returncode, EX_CONFIG)

    def test_bad_setting_is_ex_config(self):
        with open(self.fm.conf, "a") as f:
            f.write("max_recipients = many\n")
        p = run_daemon("-c", self.fm.conf)
        self.assertEqual(p.returncode, EX_CONFIG, p.stderr)
        self.assertIn("max_recipients", p.stderr)

    def test_bad_port_address_or_host_name_is_ex_config_naming_the_line(self):
        # Out-of-range ports used to be bound modulo 65536 (99999 is
        # 34463), and a host name with a space was taken.
        cases = [("listen", "127.0.0.1:99999", "port '99999' is not a number from 1 to 65535"),
                 ("listen", "127.0.0.1:0", "port '0'"),
                 ("listen", "::1:2525", "[address]:port"),
                 ("hostname", "bad host", "is not a host name"),
                 ("delivery_port", "65536", "is not a port"),
                 ("relay_host", "relay.example.org:70000", "port '70000'"),
                 ("dns_servers", "127.0.0.1:99999", "port '99999'")]
        for name, value, why in cases:
            with self.subTest(setting=name, value=value):
                settings = dict(self.fm.settings)
                settings[name] = value
                with open(self.fm.conf, "w") as f:
                    for k, v in settings.items():
                        f.write(f"{k} = {v}\n")
                line = list(settings).index(name) + 1
                p = run_daemon("-c", self.fm.conf)
                self.assertEqual(p.returncode, EX_CONFIG, f"{name} = {value}: {p.stderr}")
                self.assertIn(f"{self.fm.conf}:{line}: {name}: ", p.stderr)
                self.assertIn(why, p.stderr)
                with socket.socket() as s:  # nothing was bound meanwhile
                    self.assertNotEqual(s.connect_ex(("127.0.0.1", 34463)), 0)

    def test_half_tls_config_is_ex_config(self):
        with open(self.fm.conf, "a") as f:
            f.write("tls_cert_file = /nonexistent.pem\n")
        self.assertEqual(run_daemon("-c", self.fm.conf).returncode, EX_CONFIG)

    def test_port_in_use_is_ex_oserr(self):
        with socket.socket() as s:
            s.bind(("127.0.0.1", self.fm.port))
            s.listen(1)
            p = run_daemon("-c", self.fm.conf)
        self.assertEqual(p.returncode, EX_OSERR, p.stderr)
        self.assertIn("Address already in use", p.stderr)

    def test_unknown_user_is_ex_nouser(self):
        fmtest.require_root(self, "switching users")
        self.fm.settings["user"] = "no-such-user-fanmail"
        self.fm.write_conf()
        self.assertEqual(run_daemon("-c", self.fm.conf).returncode, EX_NOUSER)

    def test_unwritable_database_is_ex_cantcreat(self):
        self.fm.settings["database"] = "/proc/fanmail/x.db"
        self.fm.write_conf()
        self.assertEqual(run_daemon("-c", self.fm.conf).returncode, EX_CANTCREAT)


class ListenTest(fmtest.TestCase):
    def setUp(self):
        super().setUp()
        self.port6 = fmtest.free_port("::1", socket.AF_INET6)
        self.fm.settings["listen"] = f"127.0.0.1:{self.fm.port} [::1]:{self.port6}"
        self.fm.start()
        wait_db(self.fm)
        create_list(self.fm, "demo@lists.localhost")

    def test_ipv4_and_ipv6_listeners(self):
        for host, port in (("127.0.0.1", self.fm.port), ("::1", self.port6)):
            d = Dialog(port, host=host)
            self.assertEqual(d.greeting[0], 220)
            d.cmd(b"EHLO c\r\n")
            d.cmd(b"MAIL FROM:<a@example.org>\r\n")
            d.cmd(b"RCPT TO:<demo@lists.localhost>\r\n")
            d.cmd(b"DATA\r\n")
            self.assertEqual(d.cmd(b"Subject: x\r\n\r\nx\r\n.\r\n")[0], 250)
            d.close()
        rows = spool_rows(self.fm)
        self.assertEqual(len(rows), 2)
        self.assertIn(b"(unknown [IPv6:::1])", rows[1][2])


class PrivilegeTest(fmtest.TestCase):
    def test_binds_then_runs_as_user(self):
        fmtest.require_root(self, "switching users")
        nobody = pwd.getpwnam("nobody")
        os.chown(self.fm.dir, nobody.pw_uid, nobody.pw_gid)
        self.fm.settings["user"] = "nobody"
        self.fm.start()
        wait_db(self.fm)
        with open(f"/proc/{self.fm.proc.pid}/status") as f:
            uid = [l for l in f if l.startswith("Uid:")][0].split()[1:]
        self.assertEqual(set(uid), {str(nobody.pw_uid)}, f"expected uid {nobody.pw_uid}, got {uid}")
        self.assertEqual(os.stat(self.fm.db).st_uid, nobody.pw_uid)
        self.assertIn("running as user nobody", self.fm.logtext())


class BackpressureTest(SmtpdCase):
    def rss(self):
        with open(f"/proc/{self.fm.proc.pid}/status") as f:
            return int([l for l in f if l.startswith("VmRSS:")][0].split()[1])

    def test_client_that_does_not_read_replies_is_not_buffered_without_bound(self):
        # 200,000 HELPs: 1.2 MB in, about 40 MB of replies out. Without
        # backpressure all those replies would sit in fanmaild's memory.
        n = 200000
        d = Dialog(self.port, timeout=60)
        d.cmd(b"EHLO c\r\n")
        before = self.rss()
        d.sock.sendall(b"HELP\r\n" * n)
        time.sleep(2)
        grown = self.rss() - before
        self.assertLess(grown, 12000, f"RSS grew by {grown} kB while the client does not read")
        last = b"214 2.0.0 Write to LIST-request"
        got, tail = 0, b""
        while got < n:
            chunk = d.sock.recv(1 << 20)
            self.assertTrue(chunk, f"connection closed after {got} of {n} replies")
            data = tail + chunk
            got += data.count(last)
            tail = data[-(len(last) - 1):]
        self.assertEqual(got, n)
        d.buf = b""
        self.assertEqual(d.cmd(b"QUIT\r\n")[0], 221)
        d.close()


if __name__ == "__main__":
    unittest.main()
