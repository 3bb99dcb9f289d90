# SPDX-License-Identifier: MIT
"""The installed documentation: cmake --install (into a DESTDIR, as the
Debian package does) puts README.md, docs/, the study's plots and data in
the doc directory with the tree's layout, and every relative link of the
installed Markdown files resolves there (tests/e2e/doclinks.py, which the
e2e also runs on /usr/share/doc/tpserver)."""
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

import tplib

TOP = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
DOCLINKS = os.path.join(TOP, "tests", "e2e", "doclinks.py")
BUILD = os.environ.get("TP_BUILD_DIR")


@unittest.skipUnless(BUILD and shutil.which("cmake"), "needs TP_BUILD_DIR and cmake")
class InstalledDocs(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dest = tempfile.mkdtemp(prefix="tp-docs-")
        env = dict(os.environ, DESTDIR=cls.dest)
        p = subprocess.run(["cmake", "--install", BUILD], env=env, capture_output=True, text=True, timeout=120)
        assert p.returncode == 0, p.stdout + p.stderr
        found = [d for d, _, _ in os.walk(cls.dest) if d.endswith(os.path.join("share", "doc", "tpserver"))]
        assert len(found) == 1, found
        cls.doc = found[0]

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dest)

    def test_layout(self):
        for rel in ("README.md", "docs/STUDY.md", "docs/CONFIG.md", "docs/data/load_sweep.csv"):
            self.assertTrue(os.path.isfile(os.path.join(self.doc, rel)), rel)
        pngs = sorted(os.listdir(os.path.join(TOP, "docs", "img")))
        self.assertTrue(pngs)
        self.assertEqual(sorted(os.listdir(os.path.join(self.doc, "docs", "img"))), pngs)

    def test_every_relative_link_resolves(self):
        p = subprocess.run([sys.executable, DOCLINKS, self.doc], capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("docs/STUDY.md:", p.stdout)


if __name__ == "__main__":
    tplib.main()
