# SPDX-License-Identifier: MIT
"""Smoke test of the throughput/latency study (bench/study/run.sh):
its --quick subset against the real binaries writes every CSV file with the
expected header and plausible rows (the plots: test_study_plots.py).
No timing is asserted: the numbers depend on the machine."""
import csv
import os
import shutil
import subprocess
import tempfile
import unittest

import tplib
from tplib import TPCLIENT, TPSERVER

HERE = os.path.dirname(os.path.abspath(__file__))
RUN_SH = os.path.join(HERE, "..", "..", "bench", "study", "run.sh")

HEADERS = {
    "pool_sweep.csv": ["mix", "workers", "clients", "max_inflight", "sleep_ms", "duration_s", "reps",
                       "ok_rps", "ok_rps_min", "ok_rps_max", "ideal_rps", "p50_ms", "p90_ms",
                       "p99_ms", "max_ms", "ok", "busy", "errors", "other_cpu"],
    "pool_sweep_runs.csv": ["mix", "workers", "rep", "ok_rps", "elapsed_s", "ok", "busy", "errors",
                            "p50_ms", "p90_ms", "p99_ms", "max_ms", "seed", "other_cpu"],
    "load_sweep.csv": ["offered_rps", "offered_pct", "capacity_rps", "workers", "queue", "sleep_ms",
                       "clients", "max_inflight", "duration_s", "sent", "ok", "ok_rps", "busy",
                       "busy_pct", "errors", "late", "p50_ms", "p90_ms", "p99_ms", "p99_9_ms",
                       "max_ms", "other_cpu"],
    "load_queue_wait.csv": ["offered_rps", "offered_pct", "capacity_rps", "workers", "queue", "sleep_ms",
                            "duration_s", "ok", "busy_pct", "client_p50_ms", "client_p99_ms",
                            "queue_wait_n", "queue_wait_mean_ms", "queue_wait_p50_ms", "queue_wait_p99_ms",
                            "admission_wait_n", "admission_wait_mean_ms", "admission_wait_p99_ms",
                            "service_mean_ms", "service_p99_ms", "duration_p50_ms", "duration_p99_ms",
                            "other_cpu"],
    "conn_sweep.csv": ["connections", "threads", "vmrss_kib", "vmrss_after_echo_kib", "vmsize_kib",
                       "fds", "tpc_threads_computed", "tpc_stack_reserved_kib_computed",
                       "tpc_stack_touched_kib_computed"],
}
PLOTS = ["pool_throughput.png", "load_latency.png", "load_queue_wait.png", "conn_threads_memory.png"]


def read_csv(path):
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    return rows[0], [dict(zip(rows[0], r)) for r in rows[1:]]


def run_quick(out):
    """bench/study/run.sh --quick writing into OUT (created afresh)."""
    shutil.rmtree(out, ignore_errors=True)
    env = dict(os.environ, TPSERVER=TPSERVER, TPCLIENT=TPCLIENT)
    return subprocess.run(["bash", RUN_SH, "--quick", out], env=env, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=240)


class StudyQuick(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        # Under ctest the output stays in TP_STUDY_OUT for test_study_plots.py.
        cls.tmp = None
        cls.out = os.environ.get("TP_STUDY_OUT")
        if not cls.out:
            cls.tmp = tempfile.mkdtemp(prefix="study-smoke-")
            cls.out = os.path.join(cls.tmp, "out")
        cls.proc = run_quick(cls.out)

    @classmethod
    def tearDownClass(cls):
        if cls.tmp:
            shutil.rmtree(cls.tmp, ignore_errors=True)

    def setUp(self):
        self.assertEqual(self.proc.returncode, 0, "run.sh --quick failed:\n" + self.proc.stderr)

    def table(self, name):
        path = os.path.join(self.out, name)
        self.assertTrue(os.path.isfile(path), name + " missing")
        header, rows = read_csv(path)
        self.assertEqual(header, HEADERS[name], name)
        self.assertTrue(rows, name + " has no rows")
        for r in rows:
            self.assertEqual(len(r), len(header), "%s: short row %r" % (name, r))
        return rows

    def test_pool_sweep(self):
        rows = self.table("pool_sweep.csv")
        self.assertEqual({r["mix"] for r in rows}, {"sleep", "echo", "balanced"})
        for r in rows:
            workers = int(r["workers"])
            self.assertGreaterEqual(workers, 1)
            self.assertGreater(float(r["ok_rps"]), 0, r)
            self.assertLessEqual(float(r["ok_rps_min"]), float(r["ok_rps"]), r)
            self.assertLessEqual(float(r["ok_rps"]), float(r["ok_rps_max"]), r)
            self.assertLessEqual(float(r["p50_ms"]), float(r["p90_ms"]), r)
            self.assertLessEqual(float(r["p90_ms"]), float(r["p99_ms"]), r)
            self.assertLessEqual(float(r["p99_ms"]), float(r["max_ms"]), r)
            self.assertEqual(int(r["busy"]), 0, r)
            self.assertEqual(int(r["errors"]), 0, r)
            self.assertGreaterEqual(float(r["other_cpu"]), 0, r)
            if r["mix"] == "echo":
                self.assertEqual(r["ideal_rps"], "", r)
            else:
                per_req_ms = float(r["sleep_ms"]) / (1 if r["mix"] == "sleep" else 2)
                self.assertAlmostEqual(float(r["ideal_rps"]), workers * 1000.0 / per_req_ms, places=0)
            if r["mix"] == "sleep":
                # A SLEEP takes at least its time: never faster than the ideal.
                self.assertLessEqual(float(r["ok_rps"]), float(r["ideal_rps"]) * 1.02, r)
                self.assertGreaterEqual(float(r["p50_ms"]), float(r["sleep_ms"]), r)
        runs = self.table("pool_sweep_runs.csv")
        self.assertEqual(len(runs), sum(int(r["reps"]) for r in rows))

    def test_load_sweep(self):
        rows = self.table("load_sweep.csv")
        self.assertGreaterEqual(len(rows), 2)
        for r in rows:
            cap = float(r["capacity_rps"])
            self.assertAlmostEqual(cap, int(r["workers"]) * 1000.0 / float(r["sleep_ms"]), places=0)
            self.assertAlmostEqual(float(r["offered_rps"]), cap * int(r["offered_pct"]) / 100.0, places=0)
            sent, ok, busy = int(r["sent"]), int(r["ok"]), int(r["busy"])
            self.assertGreater(sent, 0, r)
            self.assertEqual(int(r["errors"]), 0, r)
            # Without failures every request sent is answered: OK or busy.
            self.assertEqual(ok + busy, sent, r)
            self.assertGreaterEqual(float(r["p50_ms"]), float(r["sleep_ms"]), r)
            self.assertLessEqual(float(r["p50_ms"]), float(r["p99_ms"]), r)
            self.assertLessEqual(float(r["p99_ms"]), float(r["max_ms"]), r)
        pcts = [int(r["offered_pct"]) for r in rows]
        self.assertEqual(pcts, sorted(pcts))
        self.assertLessEqual(pcts[0], 100)
        self.assertGreater(pcts[-1], 100)

    def test_load_queue_wait(self):
        """The server's histograms of the load sweep's runs, one row per rate."""
        load = self.table("load_sweep.csv")
        rows = self.table("load_queue_wait.csv")
        self.assertEqual([r["offered_pct"] for r in rows], [r["offered_pct"] for r in load])
        for r, lr in zip(rows, load):
            self.assertEqual(r["ok"], lr["ok"], r)
            self.assertEqual(r["client_p99_ms"], lr["p99_ms"], r)
            # Every OK request went through the queue and was served; the
            # histograms also count the refused ones' admission waits apart.
            self.assertGreaterEqual(int(r["queue_wait_n"]), int(r["ok"]), r)
            self.assertGreaterEqual(int(r["admission_wait_n"]), int(r["queue_wait_n"]), r)
            for k in ("queue_wait", "admission_wait"):
                self.assertGreaterEqual(float(r[k + "_mean_ms"]), 0, r)
                self.assertGreaterEqual(float(r[k + "_p99_ms"]), 0, r)
            self.assertLessEqual(float(r["queue_wait_p50_ms"]), float(r["queue_wait_p99_ms"]), r)
            # A SLEEP is served in at least its time; the server sees less
            # than the client's round trip, which starts at the scheduled send.
            self.assertGreaterEqual(float(r["service_mean_ms"]), float(r["sleep_ms"]), r)
            self.assertLess(float(r["queue_wait_mean_ms"]), float(r["client_p99_ms"]), r)

    def test_conn_sweep(self):
        rows = self.table("conn_sweep.csv")
        conns = [int(r["connections"]) for r in rows]
        self.assertEqual(conns[0], 0)
        self.assertGreater(conns[-1], 0)
        threads = {int(r["threads"]) for r in rows}
        # A fixed pool: the thread count does not follow the connections.
        self.assertEqual(len(threads), 1, rows)
        for r in rows:
            n = int(r["connections"])
            self.assertGreaterEqual(int(r["fds"]), n, r)
            self.assertGreater(int(r["vmrss_kib"]), 0, r)
            self.assertGreater(int(r["vmsize_kib"]), int(r["vmrss_kib"]), r)
            self.assertEqual(int(r["tpc_threads_computed"]), n + 1, r)
            self.assertEqual(int(r["tpc_stack_touched_kib_computed"]), n * 16, r)
            self.assertEqual(int(r["tpc_stack_reserved_kib_computed"]) % max(n, 1), 0, r)

    def test_machine_info(self):
        with open(os.path.join(self.out, "machine.txt")) as f:
            info = f.read()
        for key in ("nproc:", "cpu:", "kernel:", "command: bench/study/run.sh --quick"):
            self.assertIn(key, info)
        # The plots are checked by test_study_plots.py, skipped without gnuplot.
        if shutil.which("gnuplot") is None:
            self.assertIn("gnuplot not found", self.proc.stderr)


if __name__ == "__main__":
    tplib.main()
