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
import threading
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


class ServfailUpstream:
    """An upstream DNS server on 127.0.0.1 that answers SERVFAIL (RCODE 2)
    to every query: the question echoed, no records."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for _ in range(50):
            try:
                self.sock.bind(("127.0.0.1", random.randint(20000, 60000)))
                break
            except OSError:
                continue
        self.port = self.sock.getsockname()[1]
        self.sock.settimeout(0.2)
        self.queries = 0
        self._stop = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while not self._stop:
            try:
                q, peer = self.sock.recvfrom(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            if len(q) < 12:
                continue
            self.queries += 1
            # QR=1, opcode and RD copied, RA=1, RCODE=2; one question
            flags = bytes([0x80 | (q[2] & 0x79), 0x80 | 2])
            reply = q[:2] + flags + b"\x00\x01\x00\x00\x00\x00\x00\x00"
            i = 12
            while i < len(q) and q[i] != 0:
                i += q[i] + 1
            reply += q[12:i + 5]
            try:
                self.sock.sendto(reply, peer)
            except OSError:
                pass

    def stop(self):
        self._stop = True
        self.thread.join(2)
        self.sock.close()


class DnsFixture:
    def __init__(self, zones=("test",)):
        self.zones = list(zones)
        self.args = []
        self.proc = None
        self.port = None
        self.dir = tempfile.mkdtemp(prefix="fanmail-dns-")
        self.local_ttl = 0  # TTL of the records served (dnsmasq's default: 0)
        self.failer = None

    def mx(self, domain, host, pref):
        self.args.append(f"--mx-host={domain},{host},{pref}")

    def null_mx(self, domain):
        # RFC 7505: one MX of preference 0 pointing at the root.
        self.args.append(f"--mx-host={domain},.,0")

    def host(self, name, *addrs):
        self.args.append(f"--host-record={name},{','.join(addrs)}")

    def servfail(self, domain):
        """dnsmasq forwards queries under domain to an upstream on loopback
        that answers every query with SERVFAIL, and passes that on (an
        upstream that is not there gives no answer at all, not SERVFAIL)."""
        if self.failer is None:
            self.failer = ServfailUpstream()
        self.args.append(f"--server=/{domain}/127.0.0.1#{self.failer.port}")

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
                   "--cache-size=0", f"--local-ttl={self.local_ttl}",
                   f"--conf-file={conf}", "--log-facility=-"]
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

    def query(self, name, qtype=15, timeout=5.0):
        """The rcode of dnsmasq's answer to one query (15 = MX)."""
        q = b"\x43\x21\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00"
        for label in name.split("."):
            q += bytes([len(label)]) + label.encode()
        q += b"\x00" + qtype.to_bytes(2, "big") + b"\x00\x01"
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(timeout)
            s.sendto(q, ("127.0.0.1", self.port))
            return s.recv(4096)[3] & 0x0F

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
        if self.failer is not None:
            self.failer.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
