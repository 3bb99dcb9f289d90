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
from tplib import (CHEAP_WORKERS, NOBODY, TPSERVER, Frozen, LineReader, Server, assert_threads, request, tasks_of,
                   threads_in, wait_until)

TPSERVER = os.path.abspath(TPSERVER)


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

    def start_short_of_tasks(self, threads, *args):
        """Start the daemon as nobody under a task limit (the unit's TasksMax=,
        RLIMIT_NPROC) with room for the main thread and `threads` more; it must
        fail, say why, and never tell systemd READY=1 (the unit fails instead
        of running short).  Returns (its stderr, the notifications' texts)."""
        if os.geteuid() != 0 or not shutil.which("setpriv") or not shutil.which("prlimit"):
            self.skipTest("needs root, setpriv and prlimit: the daemon runs as nobody under a task limit")
        if tplib.SANITIZED:
            self.skipTest("a sanitizer's own threads count against the task limit")
        os.chmod(self.notify.dir, 0o755)
        os.chmod(self.notify.path, 0o777)  # nobody may send to it
        home = tempfile.mkdtemp(prefix="tp-nproc-")
        self.addCleanup(shutil.rmtree, home)
        os.chmod(home, 0o755)
        exe = shutil.copy(TPSERVER, home)
        limit = "--nproc=%d" % (tasks_of(NOBODY) + 1 + threads)
        p = subprocess.run(["setpriv", "--reuid=%d" % NOBODY, "--regid=%d" % NOBODY, "--clear-groups",
                            "prlimit", limit, exe, "--config", "/dev/null", "--host", "127.0.0.1",
                            "--port", "0"] + list(args),
                           capture_output=True, text=True, timeout=30,
                           env=dict(os.environ, NOTIFY_SOCKET=self.notify.path))
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertNotIn("ready:", p.stderr)
        self.notify.collect(0.2)
        texts = [m for _, m in self.notify.messages]
        self.assertFalse([t for t in texts if re.search(r"(?m)^(READY|STOPPING)=1", t)], texts)
        return p.stderr, texts

    def assert_cannot_start(self, texts, why):
        # What `systemctl status` shows of the failure.
        self.assertTrue([t for t in texts if re.search(r"(?m)^STATUS=cannot start: " + why, t)
                         and re.search(r"(?m)^ERRNO=11$", t)], texts)

    def test_no_ready_when_the_workers_cannot_all_start(self):
        err, texts = self.start_short_of_tasks(4, "--workers", "16")
        self.assertIn("cannot start 16 workers", err)
        self.assert_cannot_start(texts, "cannot start 16 workers")

    def test_no_ready_when_an_event_loop_cannot_start(self):
        # Room for 2 workers, 1 cheap one and loop 1's thread, none for loop 2's: the
        # loop already started leaves at its gate, and the start fails as a whole.
        err, texts = self.start_short_of_tasks(2 + 1 + 1, "--workers", "2", "--cheap-workers", "1",
                                               "--io-threads", "3")
        self.assertIn("cannot start 2 event loop threads", err)
        self.assert_cannot_start(texts, "cannot start 2 event loop threads")


class Watchdog(unittest.TestCase):
    def setUp(self):
        self.notify = Notify()
        self.addCleanup(self.notify.close)

    def wait_log(self, srv, pattern, timeout):
        # Reading the notifications meanwhile: a full socket would block the daemon.
        self.assertTrue(wait_until(lambda: (self.notify.poll(0.05), re.search(pattern, srv.log()))[1], timeout),
                        "no %r in log:\n%s" % (pattern, srv.log()))

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

    def test_pings_at_half_an_interval_of_seconds(self):
        # 2.1 s: a ping every 1.05 s, not on the next whole second after it.
        env = {"NOTIFY_SOCKET": self.notify.path, "WATCHDOG_USEC": "2100000"}
        with Server(env=env):
            self.notify.wait_for(r"^READY=1")
            t0 = time.monotonic()
            self.notify.collect(5.0)
            pings = self.pings(t0, t0 + 5.0)
            gaps = sorted(b - a for a, b in zip(pings, pings[1:]))
            self.assertGreaterEqual(len(gaps), 3, pings)
            self.assertLess(gaps[len(gaps) // 2], 1.5, gaps)  # 2.0 when pings waited for a whole second

    @unittest.skipUnless(os.uname().machine == "x86_64", "system call numbers of x86_64")
    def test_pings_stop_while_queued_work_is_not_taken(self):
        # The only worker, idle, stops (as one that missed its wake-up would):
        # a request waits in the queue beside it, and the pings stop.
        env = {"NOTIFY_SOCKET": self.notify.path, "WATCHDOG_USEC": "1000000"}
        with Server("--workers", "1", "--cheap-workers", "0", env=env) as srv:
            self.notify.wait_for(r"^READY=1")
            if srv.under_tsan():
                self.skipTest("the sanitizer's own thread cannot be told from the worker")
            self.notify.collect(0.5)  # the worker is past its start, waiting for work
            self.assertEqual(len(threads_in(srv.proc.pid, {202})), 1)
            s = srv.connect()
            r = LineReader(s)
            with Frozen(threads_in(srv.proc.pid, {202})[0]):
                s.sendall(b"SLEEP 1\n")
                t1 = time.monotonic()
                self.wait_log(srv, r"critical: unhealthy: 1 requests queued and 1 workers idle, none taken",
                              timeout=10)
                self.assertGreaterEqual(time.monotonic() - t1, 4.5)
                t2 = time.monotonic()
                self.notify.collect(1.5)
                self.assertEqual(self.pings(t2, t2 + 1.5), [])
            self.assertEqual(r.line(timeout=5), "OK 1")
            self.wait_log(srv, r"healthy again", timeout=5)

    @unittest.skipUnless(os.uname().machine == "x86_64", "system call numbers of x86_64")
    def test_a_loop_stopped_before_its_first_turn_is_unhealthy(self):
        env = {"NOTIFY_SOCKET": self.notify.path, "WATCHDOG_USEC": "1000000"}
        with Server("--io-threads", "2", env=env) as srv:
            # Loop 1 waits in its first epoll_wait (up to its 1 s tick) when it is caught.
            loop1 = []
            self.assertTrue(wait_until(lambda: loop1.extend(threads_in(srv.proc.pid, {232, 281, 441}))
                                       or loop1, 5, step=0.002))
            with Frozen(loop1[0]):
                self.wait_log(srv, r"critical: unhealthy: event loop 1 has not run for", timeout=10)
                t1 = time.monotonic()
                self.notify.collect(1.5)
                self.assertEqual(self.pings(t1, t1 + 1.5), [])
            self.wait_log(srv, r"healthy again", timeout=5)

    def test_loops_that_ended_with_the_shutdown_are_not_stalled(self):
        # Loops 1 and 2 end once their connections are gone (one of them holds none),
        # loop 0 stays for the running SLEEP.
        env = {"NOTIFY_SOCKET": self.notify.path, "WATCHDOG_USEC": "1000000"}
        with Server("--io-threads", "3", env=env) as srv:
            self.notify.wait_for(r"^READY=1")
            s = srv.connect()
            s.sendall(b"SLEEP 7000\n")
            time.sleep(0.3)  # on a worker
            srv.signal(signal.SIGTERM)
            t0 = time.monotonic()
            self.wait_log(srv, r"stopped: 1 requests served", timeout=15)
            self.assertEqual(LineReader(s).line(timeout=5), "OK 7000")
            self.assertEqual(srv.proc.wait(timeout=10), 0)
            self.assertNotIn("unhealthy", srv.log())
            late = self.pings(t0 + 5.5, t0 + 6.5)  # past loop 1's last turn + 5 s, the SLEEP still running
            self.assertTrue(late, [m for _, m in self.notify.messages])

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
            assert_threads(self, srv, 2 + 1 + CHEAP_WORKERS)
            s = srv.connect()
            r = LineReader(s)
            s.sendall(b"SLEEP 700\n")  # in flight across the reload
            self.write("pool = { workers = 6; queue_size = 50; };\n")
            notify.messages.clear()
            srv.signal(signal.SIGHUP)
            notify.wait_for(r"^READY=1")
            assert_threads(self, srv, 6 + 1 + CHEAP_WORKERS)
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
            assert_threads(self, srv, 1 + 1 + CHEAP_WORKERS)
            self.assertEqual(srv.stop(), 0)

    def test_broken_file_keeps_the_old_settings(self):
        self.write("pool = { workers = 3; };\n")
        notify = Notify()
        self.addCleanup(notify.close)
        with Server("--config", self.conf, env={"NOTIFY_SOCKET": notify.path}) as srv:
            notify.wait_for(r"^READY=1")
            assert_threads(self, srv, 3 + 1 + CHEAP_WORKERS)
            s = srv.connect()
            self.write("pool = {\n  workers = 5;\n  workerz = 6;\n};\n")
            notify.messages.clear()
            srv.signal(signal.SIGHUP)
            notify.wait_for(r"^READY=1")  # READY=1 also after a rejected file
            log = srv.wait_log(r"reload failed.*")
            self.assertIn("%s:3: pool.workerz: unknown setting" % self.conf, log)
            assert_threads(self, srv, 3 + 1 + CHEAP_WORKERS)
            self.assertEqual(request(s, LineReader(s), "ECHO unharmed"), "OK unharmed")
            # Syntax errors too, with libconfig's line.
            self.write("pool = { workers = ; };\n")
            srv.signal(signal.SIGHUP)
            srv.wait_log(r"%s:1: syntax error" % re.escape(self.conf))
            assert_threads(self, srv, 3 + 1 + CHEAP_WORKERS)

    def test_flags_override_the_file_also_on_reload(self):
        self.write("pool = { workers = 2; };\n")
        with Server("--config", self.conf, "--workers", "3") as srv:
            assert_threads(self, srv, 3 + 1 + CHEAP_WORKERS)
            self.write("pool = { workers = 5; };\n")
            srv.signal(signal.SIGHUP)
            srv.wait_log(r"configuration reloaded")
            assert_threads(self, srv, 3 + 1 + CHEAP_WORKERS)


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

    def test_quiet_goes_with_check_config(self):
        # Alone it would have started a daemon at full verbosity, ignored.
        p = subprocess.run([TPSERVER, "-q", "--config", "/dev/null", "--port", "0"], capture_output=True, text=True,
                           timeout=10)
        self.assertEqual(p.returncode, 78)
        self.assertIn("-q/--quiet goes with -t/--check-config", p.stderr)

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
