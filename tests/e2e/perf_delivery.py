"""Delivery throughput and memory, measured by hand (not a ctest):

    python3 perf_delivery.py [RCPTS] [DOMAINS]

Queues one message for RCPTS recipients over DOMAINS domains (with
`fanmail queue inject` while fanmaild is stopped), points every domain's MX
at Postfix's smtp-sink on loopback, starts fanmaild, and reports the time
from start to the last recipient marked sent, recipients per second, and
fanmaild's peak RSS (VmHWM). Everything it starts is stopped at the end.
"""
import os
import sqlite3
import subprocess
import sys
import time

import fmtest
from delivery_util import BODY, pick_net_and_port
from dnsfix import DnsFixture


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100000
    ndom = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
    nsink = 4
    net, port = pick_net_and_port(nsink)
    dns = DnsFixture(zones=["test"])
    for d in range(ndom):
        dns.mx(f"d{d}.test", f"mx{d % nsink}.test", 10)
    for i in range(nsink):
        dns.host(f"mx{i}.test", f"{net}{2 + i}")
    dns.start()
    sinks = [subprocess.Popen(["smtp-sink", "-u", "nobody", "-m", "1000", f"{net}{2 + i}:{port}",
                               "1024"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
             for i in range(nsink)]
    fm = fmtest.Instance({"dns_servers": dns.server, "delivery_port": str(port),
                          "hostname": "mx.lists.test", "log_level": os.environ.get("PERF_LOG", "warning"),
                          "connection_idle_timeout": "5s"})
    try:
        fm.cli("config")  # creates nothing; the inject below creates the db
        rpath = os.path.join(fm.dir, "rcpts")
        with open(rpath, "w") as f:
            for i in range(n):
                f.write(f"user{i}@d{i % ndom}.test\n")
        mpath = os.path.join(fm.dir, "msg")
        with open(mpath, "wb") as f:
            f.write(BODY + b"x" * 2000 + b"\r\n")
        t0 = time.monotonic()
        fm.cli("queue", "inject", "--from", "list-bounces@lists.test", "--rcpt-file", rpath,
               mpath, timeout=600)
        t_inject = time.monotonic() - t0
        t0 = time.monotonic()
        fm.start()
        hwm = 0
        while True:
            with open(f"/proc/{fm.proc.pid}/status") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        hwm = int(line.split()[1])
            with sqlite3.connect(fm.db, timeout=30) as c:
                left = c.execute("SELECT COUNT(*) FROM deliveries WHERE state IN"
                                 " ('queued', 'deferred')").fetchone()[0]
            if left == 0:
                break
            if time.monotonic() - t0 > 600:
                raise SystemExit(f"not done after 600 s: {left} left")
            time.sleep(0.05)
        dt = time.monotonic() - t0
        with open(f"/proc/{fm.proc.pid}/stat") as f:
            st = f.read().rsplit(")", 1)[1].split()
        tck = os.sysconf("SC_CLK_TCK")
        print(f"fanmaild cpu: user={int(st[11]) / tck:.2f}s sys={int(st[12]) / tck:.2f}s")
        with sqlite3.connect(fm.db, timeout=30) as c:
            states = dict(c.execute("SELECT state, COUNT(*) FROM deliveries GROUP BY state"))
        print(f"recipients={n} domains={ndom} inject={t_inject:.2f}s deliver={dt:.2f}s "
              f"rate={n / dt:.0f} rcpt/s peak_rss={hwm / 1024:.1f}MB states={states}")
    finally:
        fm.stop()
        if os.environ.get("PERF_KEEP"):
            print(fm.dir)  # the log and database stay for a look
        else:
            fm.cleanup()
        for s in sinks:
            s.terminate()
            s.wait(5)
        dns.cleanup()


if __name__ == "__main__":
    main()
