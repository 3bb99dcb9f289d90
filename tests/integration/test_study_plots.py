# SPDX-License-Identifier: MIT
"""The plots of the study's --quick run (bench/study/run.sh) are PNG files.
Needs gnuplot: without it every test here is skipped, and ctest reports the
file as skipped.  Under ctest it reads what test_study_smoke.py left in
TP_STUDY_OUT; run alone, it runs the study itself."""
import os
import shutil
import tempfile
import unittest

import tplib
from test_study_smoke import PLOTS, run_quick


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
                self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n", name)


if __name__ == "__main__":
    tplib.main(verbosity=2, warnings="ignore")
