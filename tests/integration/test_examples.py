# SPDX-License-Identifier: MIT
"""The shipped Prometheus examples: promtool check config on the scrape
configuration, check rules on the alerting rules, and their unit tests
(promtool test rules), skipped without promtool (Debian package
prometheus); and that the rules name only metrics the server exports."""
import os
import shutil
import subprocess
import unittest

import tplib

EXAMPLES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "examples")


class Examples(unittest.TestCase):
    def promtool(self, *args):
        if not shutil.which("promtool"):
            self.skipTest("promtool not installed (Debian package prometheus)")
        p = subprocess.run(["promtool", *args], capture_output=True, text=True, timeout=60, cwd=EXAMPLES)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        return p.stdout + p.stderr

    def test_check_config(self):
        out = self.promtool("check", "config", "prometheus.yml")
        self.assertIn("1 rule files found", out)

    def test_check_rules(self):
        out = self.promtool("check", "rules", "tpserver-alerts.yml")
        self.assertIn("7 rules found", out)

    def test_rules_unit_tests(self):
        out = self.promtool("test", "rules", "tpserver-alerts.test.yml")
        self.assertIn("SUCCESS", out)

    def test_rules_name_real_metrics(self):
        """Every tpserver_* name the rules use is one the server exports (METRICS.md lists them)."""
        import re
        with open(os.path.join(EXAMPLES, "tpserver-alerts.yml")) as f:
            names = set(re.findall(r"\b(tpserver_[a-z_]+)", f.read()))
        with open(os.path.join(EXAMPLES, "..", "docs", "METRICS.md")) as f:
            doc = f.read()
        for n in names:
            base = re.sub(r"_(bucket|sum|count)$", "", n)
            self.assertIn("`%s`" % base, doc, n)


if __name__ == "__main__":
    tplib.main()
