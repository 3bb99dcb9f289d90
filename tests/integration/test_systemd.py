# SPDX-License-Identifier: MIT
"""systemd integration without a booted systemd: socket activation through
systemd-socket-activate, sd_notify to a test-owned NOTIFY_SOCKET, the
watchdog's pings and their absence on a stall, and live reload."""
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest

import tplib
from tplib import CHEAP_WORKERS, TPSERVER, LineReader, Server, request, wait_until

TPSERVER = os.path.abspath(TPSERVER)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Notify:
    """A unix datagram socket standing in for systemd's notification socket."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="tp-notify-")
        self.path = os.path.join(self.dir, "notify")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.messages = []  # (monotonic time, text)

    def poll(self, timeout):
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(4096)
        except socket.timeout:
            return None
        msg = data.decode()
        self.messages.append((time.monotonic(), msg))
        return msg

    def wait_for(self, pattern, timeout=10.0):
        deadline = time.monotonic() + timeout
        for _, m in self.messages:
            if re.search(pattern, m):
                return m
        while time.monotonic() < deadline:
            m = self.poll(max(0.01, deadline - time.monotonic()))
            if m is not None and re.search(pattern, m):
                return m
        raise AssertionError("no notification matching %r; got %r" % (pattern, [m for _, m in self.messages]))

    def collect(self, seconds):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.poll(max(0.01, end - time.monotonic()))

    def close(self):
        self.sock.close()
        shutil.rmtree(self.dir, ignore_errors=True)


class Notifications(unittest.TestCase):
    def setUp(self):
        self.notify = Notify()
        self.addCleanup(self.notify.close)

    def test_ready_status_reload_stopping(self):
        with Server(env={"NOTIFY_SOCKET": self.notify.path}) as srv:
            self.notify.wait_for(r"^READY=1")
            status = self.notify.wait_for(r"^STATUS=", timeout=5)
            self.assertRegex(status, r"workers 0/%d busy, queue 0/1000" % (8 + CHEAP_WORKERS))
            s = srv.connect()
            self.assertEqual(request(s, LineReader(s), "ECHO x"), "OK x")
            # Refreshed every few seconds with live figures.
            self.notify.messages.clear()
            status = self.notify.wait_for(r"STATUS=.*1 connections, 1 served", timeout=6)
            self.assertIn("busy rejections", status)
            self.assertRegex(status, r"req/s")

            self.notify.messages.clear()
            srv.signal(signal.SIGHUP)
            self.notify.wait_for(r"^READY=1")
            texts = [m for _, m in self.notify.messages]
            reloading = [i for i, t in enumerate(texts) if t.split("\n")[0] == "RELOADING=1"]
            self.assertTrue(reloading, texts)
            self.assertLess(reloading[0],
                            [i for i, t in enumerate(texts) if t.startswith("READY=1")][0])

            srv.signal(signal.SIGTERM)
            self.notify.wait_for(r"^STOPPING=1")
            self.assertEqual(srv.proc.wait(10), 0)

    def test_ready_only_after_workers_run(self):
        with Server("--workers", "64", env={"NOTIFY_SOCKET": self.notify.path}) as srv:
            self.notify.wait_for(r"^READY=1")
            # When READY=1 is sent, every worker thread exists (64 + 1 event loop).
            self.assertGreaterEqual(srv.threads(), 65)


class Watchdog(unittest.TestCase):
    def setUp(self):
        self.notify = Notify()
        self.addCleanup(self.notify.close)

    def pings(self, since, until):
        return [t for t, m in self.notify.messages if m == "WATCHDOG=1" and since <= t < until]

    def test_pings_at_half_the_interval_and_stop_on_stall(self):
        env = {"NOTIFY_SOCKET": self.notify.path, "WATCHDOG_USEC": "1000000"}
        with Server("--workers", "1", "--max-sleep-ms", "60000", "--stall-timeout-ms", "1500",
                    env=env) as srv:
            self.notify.wait_for(r"^READY=1")
            t0 = time.monotonic()
            self.notify.collect(3.0)
            healthy = self.pings(t0, t0 + 3.0)
            # About every 0.5 s: 6 in 3 s; allow for a noisy machine.
            self.assertGreaterEqual(len(healthy), 4)
            self.assertLessEqual(len(healthy), 8)

            # Stall the pool: its only worker on one request longer than the threshold.
            s = srv.connect()
            s.sendall(b"SLEEP 6000\n")
            t1 = time.monotonic()
            self.notify.collect(5.0)
            # Pings may go on until the stall threshold (1.5 s) passes, then stop.
            self.assertEqual(self.pings(t1 + 2.2, t1 + 5.0), [])
            self.assertRegex(srv.log(), r"critical: unhealthy: a worker has been on one request")
            # The request finishes: healthy again, pings resume.
            self.assertEqual(LineReader(s).line(timeout=5), "OK 6000")
            t2 = time.monotonic()
            self.notify.collect(2.0)
            self.assertGreaterEqual(len(self.pings(t2, t2 + 2.0)), 2)
            self.assertIn("healthy again", srv.log())

    def test_no_pings_without_watchdog_usec(self):
        with Server(env={"NOTIFY_SOCKET": self.notify.path}):
            self.notify.wait_for(r"^READY=1")
            self.notify.collect(1.5)
            self.assertNotIn("WATCHDOG=1", [m for _, m in self.notify.messages])


class Reload(unittest.TestCase):
    def write(self, text):
        with open(self.conf, "w") as f:
            f.write(text)

    def setUp(self):
        fd, self.conf = tempfile.mkstemp(suffix=".conf")
        os.close(fd)
        self.addCleanup(os.unlink, self.conf)

    def test_sighup_resizes_the_pool_live(self):
        self.write("pool = { workers = 2; };\n")
        notify = Notify()
        self.addCleanup(notify.close)
        with Server("--config", self.conf, env={"NOTIFY_SOCKET": notify.path}) as srv:
            notify.wait_for(r"^READY=1")
            self.assertEqual(srv.threads(), 2 + 1 + CHEAP_WORKERS)
            s = srv.connect()
            r = LineReader(s)
            s.sendall(b"SLEEP 700\n")  # in flight across the reload
            self.write("pool = { workers = 6; queue_size = 50; };\n")
            notify.messages.clear()
            srv.signal(signal.SIGHUP)
            notify.wait_for(r"^READY=1")
            self.assertEqual(srv.threads(), 6 + 1 + CHEAP_WORKERS)
            self.assertEqual(r.line(), "OK 700")
            self.assertEqual(request(s, r, "ECHO same connection"), "OK same connection")
            self.assertIn("configuration reloaded: 6 workers, queue 50", srv.log())

            # Shrinking waits for busy workers to finish, never drops their work.
            s.sendall(b"SLEEP 500\nSLEEP 500\nSLEEP 500\n")
            time.sleep(0.1)
            self.write("pool = { workers = 1; };\n")
            srv.signal(signal.SIGHUP)
            self.assertEqual(r.lines(3, timeout=10), ["OK 500"] * 3)
            wait_until(lambda: srv.threads() == 1 + 1 + CHEAP_WORKERS, 5)
            self.assertEqual(srv.threads(), 1 + 1 + CHEAP_WORKERS)
            self.assertEqual(srv.stop(), 0)

    def test_broken_file_keeps_the_old_settings(self):
        self.write("pool = { workers = 3; };\n")
        notify = Notify()
        self.addCleanup(notify.close)
        with Server("--config", self.conf, env={"NOTIFY_SOCKET": notify.path}) as srv:
            notify.wait_for(r"^READY=1")
            self.assertEqual(srv.threads(), 3 + 1 + CHEAP_WORKERS)
            s = srv.connect()
            self.write("pool = {\n  workers = 5;\n  workerz = 6;\n};\n")
            notify.messages.clear()
            srv.signal(signal.SIGHUP)
            notify.wait_for(r"^READY=1")  # READY=1 also after a rejected file
            log = srv.wait_log(r"reload failed.*")
            self.assertIn("%s:3: pool.workerz: unknown setting" % self.conf, log)
            self.assertEqual(srv.threads(), 3 + 1 + CHEAP_WORKERS)
            self.assertEqual(request(s, LineReader(s), "ECHO unharmed"), "OK unharmed")
            # Syntax errors too, with libconfig's line.
            self.write("pool = { workers = ; };\n")
            srv.signal(signal.SIGHUP)
            srv.wait_log(r"%s:1: syntax error" % re.escape(self.conf))
            self.assertEqual(srv.threads(), 3 + 1 + CHEAP_WORKERS)

    def test_flags_override_the_file_also_on_reload(self):
        self.write("pool = { workers = 2; };\n")
        with Server("--config", self.conf, "--workers", "3") as srv:
            self.assertEqual(srv.threads(), 3 + 1 + CHEAP_WORKERS)
            self.write("pool = { workers = 5; };\n")
            srv.signal(signal.SIGHUP)
            srv.wait_log(r"configuration reloaded")
            self.assertEqual(srv.threads(), 3 + 1 + CHEAP_WORKERS)


class ConfigErrors(unittest.TestCase):
    def test_config_error_at_start_exits_78(self):
        fd, conf = tempfile.mkstemp(suffix=".conf")
        os.write(fd, b"limits = { max_sleep_ms = -3; };\n")
        os.close(fd)
        self.addCleanup(os.unlink, conf)
        p = subprocess.run([TPSERVER, "--config", conf], capture_output=True, text=True, timeout=10)
        self.assertEqual(p.returncode, 78)
        self.assertIn("%s:1: limits.max_sleep_ms" % conf, p.stderr)
        p = subprocess.run([TPSERVER, "--config", "/nonexistent/tp.conf"], capture_output=True, text=True,
                           timeout=10)
        self.assertEqual(p.returncode, 78)
        self.assertIn("/nonexistent/tp.conf", p.stderr)

    def test_check_config(self):
        fd, conf = tempfile.mkstemp(suffix=".conf")
        os.write(fd, b"pool = { workers = 12; };\nlog_level = \"debug\";\n")
        os.close(fd)
        self.addCleanup(os.unlink, conf)
        for flag in ("--check-config", "-t"):
            p = subprocess.run([TPSERVER, flag, "--config", conf], capture_output=True, text=True, timeout=10)
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertRegex(p.stdout, r"workers\s*=\s*12;")
            self.assertRegex(p.stdout, r'log = \{\n  level = "debug";')
        p = subprocess.run([TPSERVER, "-t", "--quiet", "--config", conf], capture_output=True, text=True,
                           timeout=10)
        self.assertEqual((p.returncode, p.stdout), (0, ""))
        with open(conf, "w") as f:
            f.write("pool = { workers = 0; };\n")
        for quiet in ([], ["-q"]):
            p = subprocess.run([TPSERVER, "-t", "--config", conf] + quiet, capture_output=True, text=True,
                               timeout=10)
            self.assertEqual(p.returncode, 78)
            self.assertIn("pool.workers: 0 is out of range", p.stderr)


if __name__ == "__main__":
    tplib.main(verbosity=2, warnings="ignore")
