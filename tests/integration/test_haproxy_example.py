# SPDX-License-Identifier: MIT
"""The example configurations under examples/ are valid for the programs
they are written for: examples/haproxy.cfg passes haproxy -c (skipped where
haproxy is not installed; packaging/deps.sh test installs it), and it keeps
what docs/SCALE-OUT.md says it has (PROXY protocol v2 on data and checks,
the agent check, the ECHO health check)."""
import os
import shutil
import subprocess
import unittest

import tplib

TOP = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
HAPROXY_CFG = os.path.join(TOP, "examples", "haproxy.cfg")


class HAProxyExample(unittest.TestCase):
    def test_valid(self):
        if not shutil.which("haproxy"):
            self.skipTest("haproxy not installed")
        p = subprocess.run(["haproxy", "-c", "-f", HAPROXY_CFG], capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("Configuration file is valid", p.stdout + p.stderr)

    def test_says_what_the_docs_say(self):
        with open(HAPROXY_CFG) as f:
            text = f.read()
        for want in ("send-proxy-v2", "check-send-proxy", "agent-check agent-port 9102",
                     'tcp-check send "ECHO health\\n"', 'tcp-check expect string "OK health"',
                     "maxconn 9990", "timeout queue 30s"):
            self.assertIn(want, text)


if __name__ == "__main__":
    tplib.main()
