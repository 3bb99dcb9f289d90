# SPDX-License-Identifier: MIT
"""The systemd units: systemd-analyze verify passes on the four, and the
service's sandbox rates 1.0 or better in systemd-analyze security."""
import os
import re
import shutil
import subprocess
import tempfile
import unittest

import tplib
from tplib import TPSERVER

UNITS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "systemd")


@unittest.skipUnless(shutil.which("systemd-analyze"), "systemd-analyze not installed")
class Units(unittest.TestCase):
    def setUp(self):
        # The units name /usr/sbin/tpserver; point them at the binary under test
        # so verify can check ExecStart= without an installed package.
        self.dir = tempfile.mkdtemp(prefix="tp-units-")
        self.addCleanup(shutil.rmtree, self.dir)
        for name in ("tpserver.socket", "tpserver.service", "tpserver-agent.socket",
                     "tpserver-metrics.socket"):
            with open(os.path.join(UNITS, name)) as f:
                text = f.read().replace("/usr/sbin/tpserver", os.path.abspath(TPSERVER))
            with open(os.path.join(self.dir, name), "w") as f:
                f.write(text)

    def test_verify(self):
        p = subprocess.run(["systemd-analyze", "verify", "--man=no",
                            os.path.join(self.dir, "tpserver.socket"),
                            os.path.join(self.dir, "tpserver.service"),
                            os.path.join(self.dir, "tpserver-agent.socket"),
                            os.path.join(self.dir, "tpserver-metrics.socket")],
                           capture_output=True, text=True, timeout=60, cwd=self.dir)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stderr.strip(), "")

    def test_security_rating(self):
        p = subprocess.run(["systemd-analyze", "security", "--offline=yes",
                            os.path.join(self.dir, "tpserver.service")],
                           capture_output=True, text=True, timeout=60, cwd=self.dir)
        m = re.search(r"Overall exposure level for tpserver.service: ([0-9.]+)", p.stdout + p.stderr)
        self.assertIsNotNone(m, p.stdout + p.stderr)
        self.assertLessEqual(float(m.group(1)), 1.0)

    def test_fd_store_fits_the_kept_connections(self):
        with open(os.path.join(UNITS, "tpserver.service")) as f:
            service = f.read()
        store = int(re.search(r"(?m)^FileDescriptorStoreMax=(\d+)$", service).group(1))
        nofile = int(re.search(r"(?m)^LimitNOFILE=(\d+)", service).group(1))
        out = subprocess.run([TPSERVER, "--config", "/dev/null", "--check-config"], capture_output=True,
                             text=True, timeout=30).stdout
        kept = int(re.search(r"keep_connections_max = (\d+);", out).group(1))
        conns = int(re.search(r"max_connections = (\d+);", out).group(1))
        # Every kept connection, the state memfd and up to 16 listening sockets
        # plus the metrics one; and a new instance must be able to receive them.
        self.assertGreaterEqual(store, max(kept, conns) + 1 + 16 + 1)
        self.assertGreater(nofile, store + conns)

    def test_reload_validates_first_and_socket_outlives_restarts(self):
        with open(os.path.join(UNITS, "tpserver.service")) as f:
            service = f.read()
        with open(os.path.join(UNITS, "tpserver.socket")) as f:
            socket_unit = f.read()
        reloads = re.findall(r"^ExecReload=(.*)$", service, re.M)
        self.assertEqual(reloads[0].split()[:2], ["/usr/sbin/tpserver", "--check-config"])
        # The reload returns once the daemon applied or refused the file.
        self.assertEqual(reloads[-1], "/usr/sbin/tpserver --reload-and-wait $MAINPID")
        self.assertRegex(service, r"(?m)^RuntimeDirectory=tpserver$")
        self.assertRegex(service, r"(?m)^RestartPreventExitStatus=.*\b78\b")
        self.assertRegex(service, r"(?m)^WatchdogSec=")
        # PartOf= or ReusePort= would close or duplicate the listening socket on restarts.
        self.assertNotRegex(socket_unit, r"(?m)^(PartOf|ReusePort)=")
        self.assertNotRegex(service, r"(?m)^Also=.*tpserver\.socket")


if __name__ == "__main__":
    tplib.main(verbosity=2, warnings="ignore")
