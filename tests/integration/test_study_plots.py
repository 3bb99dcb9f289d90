# SPDX-License-Identifier: MIT
"""The plots of the study's --quick run (bench/study/run.sh) are PNG files,
and so are bench/fairness_plot.sh's drawings of the committed fairness data
and of a 1 s bench/fairness.py --csv run.
Needs gnuplot: without it every test here is skipped, and ctest reports the
file as skipped.  Under ctest it reads what test_study_smoke.py left in
TP_STUDY_OUT; run alone, it runs the study itself."""
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

import tplib
from test_study_smoke import HERE, PLOTS, read_csv, run_quick
from tplib import TPCLIENT, TPSERVER

REPO = os.path.join(HERE, "..", "..")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@unittest.skipUnless(shutil.which("gnuplot"), "gnuplot not installed: plots not checked")
class StudyPlots(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.out = os.environ.get("TP_STUDY_OUT")
        if not cls.out:
            tmp = tempfile.mkdtemp(prefix="study-plots-")
            cls.addClassCleanup(shutil.rmtree, tmp, ignore_errors=True)
            cls.out = os.path.join(tmp, "out")
            proc = run_quick(cls.out)
            assert proc.returncode == 0, "run.sh --quick failed:\n" + proc.stderr

    def test_plots_are_png(self):
        for name in PLOTS:
            with open(os.path.join(self.out, name), "rb") as f:
                self.assertEqual(f.read(8), PNG_MAGIC, name)

    def fairness_plot(self, csv_path):
        tmp = tempfile.mkdtemp(prefix="fairness-plot-")
        self.addCleanup(shutil.rmtree, tmp, ignore_errors=True)
        png = os.path.join(tmp, "f.png")
        proc = subprocess.run(["bash", os.path.join(REPO, "bench", "fairness_plot.sh"), csv_path, png],
                              stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        with open(png, "rb") as f:
            self.assertEqual(f.read(8), PNG_MAGIC)

    def test_fairness_plot_committed(self):
        """The committed fairness run (docs/data) still draws."""
        self.fairness_plot(os.path.join(REPO, "docs", "data", "fairness_victim.csv"))

    def test_fairness_csv(self):
        """bench/fairness.py --csv: one row per mode, the committed file's
        columns, drawn by fairness_plot.sh."""
        tmp = tempfile.mkdtemp(prefix="fairness-csv-")
        self.addCleanup(shutil.rmtree, tmp, ignore_errors=True)
        path = os.path.join(tmp, "f.csv")
        proc = subprocess.run([sys.executable, os.path.join(REPO, "bench", "fairness.py"),
                               "--tpserver", TPSERVER, "--tpclient", TPCLIENT, "--seconds", "1",
                               "--only", "echo-flood-4conn/victim-other-addr/ECHO", "--csv", path],
                              stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        header, rows = read_csv(path)
        committed, _ = read_csv(os.path.join(REPO, "docs", "data", "fairness_victim.csv"))
        self.assertEqual(header, committed)
        self.assertEqual([r["fairness"] for r in rows], ["address", "none"])
        for r in rows:
            self.assertGreater(int(r["victim_n"]), 0, r)
            self.assertLessEqual(float(r["p50_ms"]), float(r["p99_ms"]), r)
            self.assertLessEqual(float(r["p99_ms"]), float(r["max_ms"]), r)
        self.fairness_plot(path)


if __name__ == "__main__":
    tplib.main(verbosity=2, warnings="ignore")
