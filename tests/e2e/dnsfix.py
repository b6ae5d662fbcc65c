"""A real DNS server for delivery tests: dnsmasq on 127.0.0.1, a free UDP
port, serving only the records a test gives it (--no-resolv --no-hosts,
everything else under the test zones is NXDOMAIN).

    dns = DnsFixture(zones=["test"])
    dns.mx("a.test", "mx1.a.test", 10)
    dns.host("mx1.a.test", "127.0.0.2")
    dns.null_mx("null.test")
    dns.start()          # then: dns_servers = dns.server
    ...
    dns.stop()
"""
import os
import random
import shutil
import socket
import subprocess
import tempfile
import time

DNSMASQ = shutil.which("dnsmasq") or "/usr/sbin/dnsmasq"


def free_udp_port():
    for _ in range(50):
        port = random.randint(20000, 60000)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    raise RuntimeError("no free UDP port for dnsmasq")


class DnsFixture:
    def __init__(self, zones=("test",)):
        self.zones = list(zones)
        self.args = []
        self.proc = None
        self.port = None
        self.dir = tempfile.mkdtemp(prefix="fanmail-dns-")

    def mx(self, domain, host, pref):
        self.args.append(f"--mx-host={domain},{host},{pref}")

    def null_mx(self, domain):
        # RFC 7505: one MX of preference 0 pointing at the root.
        self.args.append(f"--mx-host={domain},.,0")

    def host(self, name, *addrs):
        self.args.append(f"--host-record={name},{','.join(addrs)}")

    def txt(self, name, text):
        self.args.append(f"--txt-record={name},{text}")

    @property
    def server(self):
        return f"127.0.0.1:{self.port}"

    def start(self):
        # dnsmasq reads long argument lists badly from the command line
        # only in size; a config file keeps 1000s of records manageable.
        conf = os.path.join(self.dir, "dnsmasq.conf")
        for attempt in range(5):
            self.port = free_udp_port()
            with open(conf, "w") as f:
                for a in self.args:
                    f.write(a[2:] + "\n")
                for z in self.zones:
                    f.write(f"local=/{z}/\n")
            cmd = [DNSMASQ, "--keep-in-foreground", "--no-resolv", "--no-hosts",
                   f"--port={self.port}", "--listen-address=127.0.0.1",
                   "--bind-interfaces", "--pid-file=", "--user=" + os.environ.get("USER", "root"),
                   "--cache-size=0", f"--conf-file={conf}", "--log-facility=-"]
            with open(os.path.join(self.dir, "log"), "w") as log:
                self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=log)
            if self._wait_ready():
                return self
            self.stop()
        raise RuntimeError("dnsmasq did not start: " + open(os.path.join(self.dir, "log")).read())

    def _wait_ready(self, timeout=5.0):
        deadline = time.monotonic() + timeout
        query = (b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00"
                 b"\x05probe\x04test\x00\x00\x01\x00\x01")
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.settimeout(0.2)
                try:
                    s.sendto(query, ("127.0.0.1", self.port))
                    s.recv(512)
                    return True
                except OSError:
                    pass
        return False

    def stop(self):
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.terminate()
                try:
                    self.proc.wait(5)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
            self.proc = None

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
