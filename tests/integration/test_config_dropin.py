# SPDX-License-Identifier: MIT
"""Integration tests of the drop-in directory (FILE.d/*.conf) against the
real tpserver: `tpserver -t` merges the drop-ins in name order over the
main file and says where each setting came from; an error in a drop-in
exits 78 naming that file and line; a running daemon reads the directory
again on SIGHUP, and a broken drop-in is refused there while it keeps
serving."""
import os
import signal
import subprocess
import tempfile
import unittest

import tplib
from tplib import TPSERVER, LineReader, Server, request


class DropIns(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory(prefix="tpserver-dropin-")
        self.addCleanup(self.dir.cleanup)
        self.conf = self.write("tp.conf", "pool = {\n  workers = 4;\n  queue_size = 50;\n};\n")
        os.mkdir(self.conf + ".d")

    def write(self, name, text):
        path = os.path.join(self.dir.name, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def check(self, *args):
        return subprocess.run([TPSERVER, "-t", "-c", self.conf] + list(args), stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=20)

    def test_check_config_merges_and_names_the_origin(self):
        a = self.write("tp.conf.d/10-local.conf", "# local overrides\npool = { workers = 6; };\n")
        b = self.write("tp.conf.d/20-log.conf", "log = { level = \"debug\"; };\npool = { workers = 7; };\n")
        self.write("tp.conf.d/README", "not read\n")
        self.write("tp.conf.d/30-x.conf.dpkg-old", "pool = { workers = 99; };\n")
        p = self.check("--port", "9100")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        out = p.stdout
        self.assertIn("  workers = 7; # from %s:2\n" % b, out)
        self.assertIn("  queue_size = 50; # from %s:3\n" % self.conf, out)
        self.assertIn("  level = \"debug\"; # from %s:1\n" % b, out)
        self.assertIn("  port = 9100; # from the command line\n", out)
        self.assertIn("  backlog = 1024; # default\n", out)
        self.assertNotIn(a, out)  # every setting of 10-local.conf was overridden

    def test_error_in_a_dropin_names_file_and_line(self):
        bad = self.write("tp.conf.d/50-bad.conf", "pool = {\n  workers = 0;\n};\n")
        p = self.check()
        self.assertEqual(p.returncode, 78, p.stdout + p.stderr)
        self.assertEqual(p.stderr.strip(),
                         "tpserver: %s:2: pool.workers: 0 is out of range (1 to 1024)" % bad)

    def test_cross_setting_rule_is_checked_on_the_result(self):
        # drain_s + timeout_s must stay under stop_timeout_s: a drop-in or a
        # flag that raises stop_timeout_s makes the main file's drain_s fit.
        self.write("tp.conf", "shutdown = {\n  drain_s = 25;\n};\n")
        p = self.check()
        self.assertEqual(p.returncode, 78, p.stdout + p.stderr)
        self.assertIn("must stay under shutdown.stop_timeout_s (30)", p.stderr)
        # No line alone is to blame: the refusal says where each value came from.
        self.assertIn("(shutdown.drain_s at %s:2; shutdown.timeout_s by default; "
                      "shutdown.stop_timeout_s by default)" % self.conf, p.stderr)
        p = self.check("--stop-timeout-s", "60")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("  stop_timeout_s = 60; # from the command line\n", p.stdout)
        b = self.write("tp.conf.d/10-stop.conf", "shutdown = {\n  stop_timeout_s = 60;\n};\n")
        p = self.check()
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("  drain_s = 25; # from %s:2\n" % self.conf, p.stdout)
        self.assertIn("  stop_timeout_s = 60; # from %s:2\n" % b, p.stdout)
        p = self.check("--shutdown-timeout-s", "40")
        self.assertEqual(p.returncode, 78, p.stdout + p.stderr)
        self.assertIn("shutdown.timeout_s (40) must stay under shutdown.stop_timeout_s (60)", p.stderr)
        self.assertIn("(shutdown.drain_s at %s:2; shutdown.timeout_s from the command line; "
                      "shutdown.stop_timeout_s at %s:2)" % (self.conf, b), p.stderr)

    def test_missing_directory_is_fine(self):
        os.rmdir(self.conf + ".d")
        p = self.check()
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("  workers = 4; # from %s:2\n" % self.conf, p.stdout)

    def test_reload_reads_the_directory_again(self):
        with Server("--config", self.conf) as srv:
            s = srv.connect()
            r = LineReader(s)
            self.write("tp.conf.d/10-more.conf", "pool = { workers = 5; };\n")
            srv.signal(signal.SIGHUP)
            srv.wait_log(r"configuration reloaded: 5 workers")
            bad = self.write("tp.conf.d/20-bad.conf", "pool = { workerz = 6; };\n")
            s.sendall(b"SLEEP 300\n")  # in flight across the refused reload
            srv.signal(signal.SIGHUP)
            log = srv.wait_log(r"reload failed.*")
            self.assertIn("%s:1: pool.workerz: unknown setting" % bad, log)
            self.assertEqual(r.line(), "OK 300")
            self.assertEqual(request(s, r, "ECHO alive"), "OK alive")
            self.assertIsNone(srv.proc.poll())

    def test_a_reload_refused_by_a_rule_says_where_each_value_came_from(self):
        with Server("--config", self.conf) as srv:
            drain = self.write("tp.conf.d/30-drain.conf", "shutdown = {\n  drain_s = 25;\n};\n")
            srv.signal(signal.SIGHUP)
            log = srv.wait_log(r"reload failed.*")
            self.assertIn("(shutdown.drain_s at %s:2; shutdown.timeout_s by default; "
                          "shutdown.stop_timeout_s by default)" % drain, log)
            s = srv.connect()
            self.assertEqual(request(s, LineReader(s), "ECHO alive"), "OK alive")


if __name__ == "__main__":
    tplib.main()
