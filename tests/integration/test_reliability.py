#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Reliability regressions: reload of limits and files, refused clients,
the reload helper, check-config parity with a start."""
import os
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest

from tplib import TPSERVER, LineReader, Server, request, wait_until


class ConfFile:
    def __init__(self, test, text):
        fd, self.path = tempfile.mkstemp(suffix=".conf")
        os.close(fd)
        test.addCleanup(lambda: os.path.exists(self.path) and os.unlink(self.path))
        self.write(text)

    def write(self, text):
        # Replace, not rewrite: the server may be reading the old one.
        tmp = self.path + ".new"
        with open(tmp, "w") as f:
            f.write(text)
        os.rename(tmp, self.path)


class ReloadLimits(unittest.TestCase):
    def test_raising_max_unsent_resumes_a_paused_connection(self):
        conf = ConfFile(self, "limits = { max_unsent_kib = 4; };\n")
        with Server("--config", conf.path) as srv:
            s = srv.connect()
            r = LineReader(s)
            s.sendall(b"SLEEP 1000\n" + b"ECHO x\n" * 199)
            time.sleep(0.3)
            conf.write("limits = { max_unsent_kib = 256; };\n")
            srv.signal(signal.SIGHUP)
            srv.wait_log(r"configuration reloaded")
            # Every reply comes without the client sending another byte.
            self.assertEqual(r.line(timeout=5), "OK 1000")
            self.assertEqual(r.lines(199, timeout=5), ["OK x"] * 199)
            self.assertEqual(srv.stop(), 0)


if __name__ == "__main__":
    unittest.main(verbosity=2, warnings="ignore")
