"""bench/run --smoke: the benchmark harness runs every scenario at tiny
sizes against the real peers (private Postfix, mlmmj, dnsmasq, smtp-sink,
nginx, wrk) and writes a results table with the right rows, so that it cannot rot.

fanmail's own rows are either measured ("ok", with numbers) or say why not
("not run: ..." when build/fanmaild or build/fanmail is missing, "failed:
..." when it ran and went wrong); never a number without "ok". Set
FANMAIL_BENCH_STRICT=1 to require fanmail's rows to be "ok" too.
FANMAIL_BENCH_SMOKE_SCENARIOS=dkim,http (comma-separated) runs and checks
only those scenarios, for a focused run.
"""
import csv
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

import fmtest

BENCH = os.path.join(fmtest.SOURCE_DIR, "bench", "run")
BUILD = os.environ.get("FANMAIL_BUILD_DIR", os.path.join(fmtest.SOURCE_DIR, "build"))
COLS = ["scenario", "case", "system", "metric", "runs", "min", "median", "max",
        "fanmail/this", "goal", "status", "when"]
REFERENCES = {"postfix", "smtp-sink", "mlmmj", "smtp-source", "nginx", "openssl-speed",
              "mlmmj+opendkim"}
# Which systems each scenario must report, and in how many cases.
EXPECTED = {
    "inbound": ({"fanmail", "postfix", "smtp-sink"}, 2),
    "fanout": ({"fanmail", "postfix", "mlmmj", "smtp-source"}, 1),
    "personalized": ({"fanmail", "mlmmj", "smtp-source"}, 1),
    "scale": ({"fanmail"}, 1),
    "queue": ({"fanmail", "postfix"}, 1),
    "idle": ({"fanmail"}, 1),
    "admin": ({"fanmail"}, 1),
    # The GETs next to nginx, and the one-click POSTs.
    "http": ({"fanmail", "nginx"}, 2),
    # Personalized and signed next to the signing floor and
    # mlmmj+Postfix+OpenDKIM; batched signed next to batched unsigned.
    "dkim": ({"fanmail", "openssl-speed", "mlmmj+opendkim", "fanmail unsigned"}, 2),
    # `digest send` for the digest members, the post fan-out beside it.
    "digest": ({"fanmail"}, 1),
}
ONLY = [s for s in os.environ.get("FANMAIL_BENCH_SMOKE_SCENARIOS", "").split(",") if s]
if ONLY:
    EXPECTED = {k: v for k, v in EXPECTED.items() if k in ONLY}


def leftovers(root):
    """Processes whose command line or working directory is under root."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
            cwd = os.readlink(f"/proc/{pid}/cwd")
        except OSError:
            continue
        if root in cmd or cwd.startswith(root):
            found.append(f"{pid}: {cmd.strip()} (cwd {cwd})")
    return found


@fmtest.require(os.geteuid() == 0, "bench/run needs root (private Postfix, DNS on port 53)")
class BenchSmoke(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="bench-smoke-")
        os.chmod(cls.tmp, 0o755)  # Postfix's and mlmmj's users work under it
        cls.out = os.path.join(cls.tmp, "results")
        env = dict(os.environ, TMPDIR=cls.tmp, FANMAIL_BENCH_SCRATCH=cls.tmp)
        cls.proc = subprocess.run([sys.executable, BENCH, "--smoke", "--out", cls.out,
                                   "--build-dir", BUILD] + ONLY, capture_output=True, text=True,
                                  timeout=600, env=env)
        cls.left = leftovers(cls.tmp)
        cls.rows = []
        tsv = os.path.join(cls.out, "latest.tsv")
        if os.path.exists(tsv):
            with open(tsv, newline="") as f:
                cls.rows = list(csv.DictReader(f, delimiter="\t"))
                f.seek(0)
                cls.header = f.readline().rstrip("\n").split("\t")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def test_harness_exits_zero(self):
        self.assertEqual(self.proc.returncode, 0,
                         f"expected exit 0, got {self.proc.returncode}: {self.proc.stderr[-2000:]}")

    def test_result_files_written(self):
        names = sorted(os.listdir(self.out)) if os.path.isdir(self.out) else []
        for want in ("latest.md", "latest.tsv"):
            self.assertIn(want, names, f"expected {want} in {self.out}, got {names}")
        stamped = [n for n in names if n.endswith("-smoke.tsv")]
        self.assertEqual(len(stamped), 1, f"expected one dated -smoke.tsv, got {names}")

    def test_tsv_has_the_columns(self):
        self.assertTrue(self.rows, "expected rows in latest.tsv, got none")
        self.assertEqual(self.header, COLS)

    def test_every_scenario_reports_every_system(self):
        for scenario, (systems, ncases) in EXPECTED.items():
            rows = [r for r in self.rows if r["scenario"] == scenario]
            got = {r["system"] for r in rows}
            self.assertTrue(systems <= got,
                            f"{scenario}: expected systems {sorted(systems)}, got {sorted(got)}")
            cases = {r["case"] for r in rows if r["system"] in systems
                     and "callgrind" not in r["metric"]}
            self.assertEqual(len(cases), ncases,
                             f"{scenario}: expected {ncases} cases, got {sorted(cases)}")

    def test_reference_rows_are_measured(self):
        refs = [r for r in self.rows if r["system"] in REFERENCES]
        # A focused run of scenarios measured against fanmail alone (digest,
        # idle, admin, scale) has no reference row to look for.
        if any(systems & REFERENCES for systems, _ in EXPECTED.values()):
            self.assertTrue(refs, "expected rows for Postfix, mlmmj and the sinks")
        for r in refs:
            where = f"{r['scenario']}/{r['case']}/{r['system']}/{r['metric']}"
            self.assertEqual(r["status"], "ok", f"{where}: expected ok, got {r['status']}")
            lo, mid, hi = (float(r[k]) for k in ("min", "median", "max"))
            self.assertTrue(0 < lo <= mid <= hi,
                            f"{where}: expected 0 < min <= median <= max, got {lo} {mid} {hi}")
            self.assertGreaterEqual(int(r["runs"]), 1, f"{where}: expected runs >= 1")

    def test_fanout_counts_every_recipient_once(self):
        if "fanout" not in EXPECTED:
            return
        for system in ("postfix", "mlmmj"):
            rows = {r["metric"]: r for r in self.rows
                    if r["scenario"] == "fanout" and r["system"] == system}
            tx = float(rows["transactions"]["median"])
            conns = float(rows["connections"]["median"])
            # 60 members over 6 domains: at least one transaction per domain.
            self.assertGreaterEqual(tx, 6, f"{system}: expected >= 6 transactions, got {tx}")
            self.assertGreaterEqual(conns, 1, f"{system}: expected connections, got {conns}")

    def test_http_posts_are_committed_unsubscribes(self):
        if "http" not in EXPECTED:
            return
        rows = {(r["system"], r["metric"]): r for r in self.rows if r["scenario"] == "http"}
        ng = rows[("nginx", "requests/s")]
        self.assertGreater(float(ng["median"]), 0, f"nginx: expected a rate, got {ng}")
        done = rows[("fanmail", "unsubscribes committed")]
        if done["status"] != "ok":
            return  # said why; test_fanmail_rows_are_measured_or_say_why judges it
        # bench/run checked each run against the store and /metrics; the
        # smoke list has 200 members.
        n = float(done["median"])
        self.assertTrue(1 <= n <= 200, f"expected 1..200 unsubscribes, got {n}")
        self.assertTrue(rows[("fanmail", "requests/s")]["status"] == "ok" and
                        ng["fanmail/this"], f"expected a GET ratio to nginx, got {ng}")

    def test_dkim_copies_are_signed_and_verified(self):
        if "dkim" not in EXPECTED:
            return
        rows = {(r["case"].split(", ")[2], r["system"], r["metric"]): r
                for r in self.rows if r["scenario"] == "dkim"}
        # mlmmj+OpenDKIM's copies: every one signed, a sample verified by dkimpy
        for m in ("signed/received", "sample verified (dkimpy)"):
            r = rows[("personalized", "mlmmj+opendkim", m)]
            self.assertEqual(float(r["median"]), 1.0, f"mlmmj+opendkim {m}: {r}")
        floor = rows[("personalized", "openssl-speed", "rcpts/s")]
        self.assertGreater(float(floor["median"]), 0, f"expected a signing rate: {floor}")
        for case in ("personalized", "batched"):
            for m in ("signed/received", "sample verified (dkimpy)"):
                r = rows[(case, "fanmail", m)]
                if r["status"] != "ok":
                    continue  # test_fanmail_rows_are_measured_or_say_why judges it
                self.assertEqual(float(r["median"]), 1.0, f"fanmail {case} {m}: {r}")
            # the ratios the goals are read from
            ref = "fanmail unsigned" if case == "batched" else "openssl-speed"
            r = rows[(case, ref, "seconds")]
            if rows[(case, "fanmail", "seconds")]["status"] == "ok":
                self.assertTrue(r["fanmail/this"], f"expected a ratio to {ref}: {r}")

    def test_fanmail_rows_are_measured_or_say_why(self):
        mine = [r for r in self.rows if r["system"] == "fanmail"]
        self.assertTrue(mine, "expected fanmail rows")
        strict = os.environ.get("FANMAIL_BENCH_STRICT") == "1"
        for r in mine:
            where = f"{r['scenario']}/{r['case']}/{r['metric']}"
            if r["status"] == "ok":
                self.assertTrue(r["median"], f"{where}: ok without a value")
                continue
            self.assertFalse(strict, f"{where}: expected ok (strict), got {r['status']}")
            self.assertEqual(r["fanmail/this"], "", f"{where}: ratio without a measurement")
            if r["status"].startswith("failed: "):
                print(f"note: {where}: {r['status']}", file=sys.stderr)
                continue
            self.assertTrue(r["status"].startswith("not run: ") and
                            r["status"].endswith(" not built"),
                            f"{where}: expected ok, 'failed: ...' or "
                            f"'not run: ... not built', got {r['status']}")
            named = r["status"][len("not run: "):-len(" not built")].split(", ")
            for prog in named:
                path = os.path.join(BUILD, os.path.basename(prog))
                self.assertFalse(os.access(path, os.X_OK),
                                 f"{where}: says {prog} is not built, but {path} exists")
            self.assertEqual(r["median"], "", f"{where}: not run but has a value")

    def test_markdown_matches_tsv(self):
        with open(os.path.join(self.out, "latest.md")) as f:
            md = f.read()
        lines = [ln for ln in md.splitlines() if ln.startswith("| ") and
                 not ln.startswith("| scenario |")]
        self.assertEqual(len(lines), len(self.rows),
                         f"expected {len(self.rows)} table rows in latest.md, got {len(lines)}")
        for want in ("machine:", "postfix:", "mlmmj:", "Command: `bench/run --smoke"):
            self.assertIn(want, md, f"expected {want!r} in latest.md")

    def test_everything_started_is_stopped(self):
        self.assertEqual(self.left, [], f"expected no processes left, got {self.left}")
        stray = [n for n in os.listdir(self.tmp) if n.startswith(("fanmail-bench-", "sinks-"))]
        self.assertEqual(stray, [], f"expected the work directory removed, got {stray}")


if __name__ == "__main__":
    unittest.main()
