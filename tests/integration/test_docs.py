# SPDX-License-Identifier: MIT
"""The installed documentation: cmake --install (into a DESTDIR, as the
Debian package does) puts README.md, docs/, the study's plots and data in
the doc directory with the tree's layout, and every relative link of the
installed Markdown files resolves there (tests/e2e/doclinks.py, which the
e2e also runs on /usr/share/doc/tpserver)."""
import glob
import os
import re
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


def deps_lists():
    """The package arrays of packaging/deps.sh, by name (build, test, bench)."""
    with open(os.path.join(TOP, "packaging", "deps.sh")) as f:
        text = f.read()
    return {m.group(1): m.group(2).split() for m in re.finditer(r"^(\w+)_pkgs=\(([^)]*)\)", text, re.M)}


class BenchPackages(unittest.TestCase):
    """Every package a benchmark script asks for is one `deps.sh bench` installs."""

    def test_every_package_named_is_installed_by_deps_bench(self):
        lists = deps_lists()
        bench = set(lists["build"] + lists["test"] + lists["bench"])
        scripts = glob.glob(os.path.join(TOP, "bench", "**", "*.sh"), recursive=True)
        named = set()
        for path in scripts:
            with open(path) as f:
                for m in re.finditer(r"apt-get install ([a-z0-9.+-]+)", f.read()):
                    named.add(m.group(1))
        self.assertTrue({"linux-perf", "gnuplot-nox"} <= named, named)
        self.assertEqual(sorted(named - bench), [])
        self.assertIn("redis-server", lists["bench"])
        self.assertNotIn("redis-server", lists["test"])


if __name__ == "__main__":
    tplib.main()
