#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Reliability regressions: reload of limits and files, refused clients,
the reload helper, check-config parity with a start."""
import os
import random
import shutil
import re
import signal
import socket
import subprocess
import struct
import sys
import tempfile
import threading
import time
import unittest

import tplib
from metricslib import MetricsServer
from tplib import CHEAP_WORKERS, NOBODY, SLACK, TPSERVER, LineReader, Server, read_to_eof, request, tasks_of, wait_until

BURST = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "bench", "burst_rss.py")


class ConfFile:
    def __init__(self, test, text, path=None):
        if path is None:
            fd, path = tempfile.mkstemp(suffix=".conf")
            os.close(fd)
        self.path = path
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
        # Replies held behind a long SLEEP count against max_unsent_kib from
        # the moment their lines are read, so the server stops reading; the
        # client's sends stall. A reload that raises the bound makes the
        # server read on at once, while the SLEEP still runs.
        conf = ConfFile(self, "limits = { max_unsent_kib = 4; };\n")
        with Server("--config", conf.path, "--max-sleep-ms", "60000") as srv:
            s = srv.connect()
            r = LineReader(s)
            s.sendall(b"SLEEP 6000\n")
            t0 = time.monotonic()
            line = b"ECHO " + b"x" * 995 + b"\n"
            stream = line * 256
            sent = [0]

            def push_until_stalled():
                s.setblocking(False)
                still = time.monotonic()
                while time.monotonic() - still < 0.4:
                    try:
                        n = s.send(stream[sent[0] % len(line):])
                    except BlockingIOError:
                        time.sleep(0.02)
                        continue
                    sent[0] += n
                    still = time.monotonic()
                s.setblocking(True)
                return sent[0]

            before = push_until_stalled()
            conf.write("limits = { max_unsent_kib = 256; };\n")
            srv.signal(signal.SIGHUP)
            srv.wait_log(r"configuration reloaded")
            after = push_until_stalled()
            self.assertLess(time.monotonic() - t0, 5.5, "too slow to tell from the SLEEP's end")
            # 256 KiB of 1 KiB replies: some 250 more lines read.
            self.assertGreater(after - before, 100 * len(line), (before, after))
            lines = sent[0] // len(line)
            s.sendall(stream[sent[0] % len(line):][:len(line) - sent[0] % len(line)])
            lines += 1 if sent[0] % len(line) else 0
            s.settimeout(None)
            self.assertEqual(r.line(timeout=10), "OK 6000")
            self.assertEqual(r.lines(lines, timeout=30), ["OK " + "x" * 995] * lines)
            self.assertEqual(srv.stop(), 0)

    def shorten_the_queue_timeout(self, queue_after, then_from_waiter=None):
        """One worker busy 5 s, the queue's one place taken, a waiter under a
        20 s timeout (then_from_waiter: its connection's next line, left
        unread while it waits); then a reload to a 300 ms timeout and
        queue_after places, and a fourth client's SLEEP, waiting under it.
        Returns the server, the readers of the four connections and the
        time of that SLEEP."""
        conf = ConfFile(self, "pool = { workers = 1; queue_size = 1; queue_timeout_ms = 20000; };\n")
        srv = self.enterContext(MetricsServer("--config", conf.path))
        socks = [srv.connect() for _ in range(4)]
        readers = [LineReader(s) for s in socks]
        socks[0].sendall(b"SLEEP 5000\n")  # the worker
        self.assertTrue(wait_until(lambda: srv.pool_state() == (1, 0, 0), 10))
        socks[1].sendall(b"SLEEP 100\n")  # the queue's one place
        self.assertTrue(wait_until(lambda: srv.pool_state() == (1, 1, 0), 10))
        socks[2].sendall(b"SLEEP 100\n")  # waits, under the long timeout
        self.assertTrue(wait_until(lambda: srv.pool_state() == (1, 1, 1), 10))
        if then_from_waiter:
            socks[2].sendall(then_from_waiter)
            time.sleep(0.2)
        conf.write("pool = { workers = 1; queue_size = %d; queue_timeout_ms = 300; };\n" % queue_after)
        srv.signal(signal.SIGHUP)
        srv.wait_log(r"configuration reloaded")
        start = time.monotonic()
        socks[3].sendall(b"SLEEP 100\n")  # waits, under the short one
        return srv, readers, start

    def test_shortening_the_queue_timeout_reaches_those_waiting(self):
        # A waiter that arrived under a long timeout must not hold the
        # newcomers of a shorter one behind it: both leave by the new timeout.
        srv, readers, start = self.shorten_the_queue_timeout(1)
        self.assertEqual(readers[2].line(timeout=3), "ERR server busy")
        self.assertEqual(readers[3].line(timeout=3), "ERR server busy")
        # Both well before the running SLEEP ends and frees the place.
        self.assertLess(time.monotonic() - start, 3.5)
        self.assertEqual(readers[0].line(timeout=8), "OK 5000")
        self.assertEqual(readers[1].line(timeout=3), "OK 100")
        self.assertEqual(srv.stop(), 0)

    def test_a_line_read_in_the_reloads_turn_gets_the_shorter_timeout(self):
        # The reload that shortens the timeout also grows the queue: the
        # waiter it admits lets its connection read on in the same turn of
        # the loop.  The line read then must wait under the new timeout too,
        # or, first in the wait list, it holds every later waiter past theirs.
        srv, readers, start = self.shorten_the_queue_timeout(2, b"SLEEP 200\n")
        self.assertEqual(readers[3].line(timeout=3), "ERR server busy")
        self.assertLess(time.monotonic() - start, 3.5)
        self.assertEqual(readers[0].line(timeout=8), "OK 5000")
        self.assertEqual(readers[1].line(timeout=3), "OK 100")
        self.assertEqual(readers[2].lines(2, timeout=3), ["OK 100", "ERR server busy"])
        self.assertEqual(srv.stop(), 0)


class ReloadStormUnderPipelining(unittest.TestCase):
    """Pipelined lines of every kind (ECHOs that travel as units among them),
    split at random, some connections reset mid-pipeline, on two loops, while
    reloads change the queue's size, discipline, timeout and max wait every few
    tens of milliseconds: every reply comes once, in order, and is the right
    one (or ERR server busy for a queued request)."""

    SECONDS = 5.0
    CLIENTS = 6

    @staticmethod
    def line(rng):
        r = rng.random()
        if r < 0.75:
            text = "".join(rng.choice("abcXYZ0129") for _ in range(rng.choice([1, 3, 7, 16, 40, 379, 380,
                                                                               381, 700])))
            return rng.choice(["ECHO", "echo", "Echo"]) + " " + text, "OK " + text
        if r < 0.85:
            ms = rng.choice([0, 0, 1, 3])
            return "SLEEP %d" % ms, "OK %d" % ms
        if r < 0.9:
            return "FOO bar", "ERR unknown op FOO"
        if r < 0.95:
            return "SLEEP x", "ERR invalid argument"
        return "", "ERR empty request"

    def client(self, port, seed, stop, out):
        rng = random.Random(seed)
        try:
            while time.monotonic() < stop:
                with socket.create_connection(("127.0.0.1", port), timeout=15) as s:
                    self.pipelines(s, rng, out)
        except Exception as e:  # noqa: BLE001 - reported by the test, not lost with the thread
            out.append("client %d: %r" % (seed, e))

    def pipelines(self, s, rng, out):
        r = LineReader(s)
        for _ in range(rng.randint(1, 6)):
            pairs = [self.line(rng) for _ in range(rng.randint(1, 60))]
            data = "".join(l + rng.choice(["\n", "\n", "\r\n"]) for l, _ in pairs).encode()
            pos = 0
            while pos < len(data):  # split anywhere
                k = rng.choice([1, 5, 64, 4096, len(data)])
                s.sendall(data[pos:pos + k])
                pos += k
            if rng.random() < 0.05:  # reset with the pipeline in flight
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                return
            for i, (l, want) in enumerate(pairs):
                got = r.line(timeout=15)
                if got != want and not (got == "ERR server busy" and want.startswith("OK")):
                    raise AssertionError("reply %d to %r: %r, want %r" % (i, l[:40], got[:40], want[:40]))
                out.append(None)

    def test_every_reply_once_and_in_order(self):
        def conf(rng):
            return ('pool = { workers = 2; cheap_workers = 1; queue_size = %d; fairness = "%s"; '
                    'queue_timeout_ms = %d; max_wait_ms = %d; io_threads = 2; };\n' %
                    (rng.choice([1, 2, 3, 5, 8, 15, 16, 17, 40]), rng.choice(["none", "connection", "address"]),
                     rng.choice([20, 60, 300]), rng.choice([0, 0, 5])))
        rng = random.Random(1)
        cf = ConfFile(self, conf(rng))
        with Server("--config", cf.path) as srv:
            stop = time.monotonic() + self.SECONDS
            outs = [[] for _ in range(self.CLIENTS)]
            threads = [threading.Thread(target=self.client, args=(srv.port, 100 + i, stop, outs[i]))
                       for i in range(self.CLIENTS)]
            for t in threads:
                t.start()
            reloads = 0
            while time.monotonic() < stop:
                cf.write(conf(rng))
                srv.signal(signal.SIGHUP)
                reloads += 1
                time.sleep(rng.uniform(0.02, 0.1))
            for t in threads:
                t.join(30)
            errors = [e for o in outs for e in o if e is not None]
            self.assertEqual(errors, [])
            self.assertGreater(sum(len(o) for o in outs), 1000)
            self.assertGreater(reloads, 20)
            self.assertEqual(srv.stop(), 0)

class StallDeadline(unittest.TestCase):
    def lower_the_stall_threshold(self, queued):
        # SLEEP 2500 accepted under a 4 s threshold (with `queued`, behind a
        # SLEEP 1500 on the one worker), the threshold lowered to 0.8 s while
        # it waits or runs: the watchdog spares it; a SLEEP read after the
        # reload is held to the new threshold.
        from test_systemd import Notify
        notify = Notify()
        self.addCleanup(notify.close)
        done = threading.Event()
        self.addCleanup(done.set)
        conf = ConfFile(self, "limits = { max_sleep_ms = 60000; stall_timeout_ms = 4000; };\n")
        env = {"NOTIFY_SOCKET": notify.path, "WATCHDOG_USEC": "400000"}
        with MetricsServer("--config", conf.path, "--workers", "1", "--cheap-workers", "0", env=env) as srv:
            notify.wait_for(r"^READY=1")
            # Keep reading: a full notification socket would block the daemon.
            reader = threading.Thread(target=lambda: [notify.poll(0.1) for _ in iter(done.is_set, True)])
            reader.start()
            if queued:
                first = srv.connect()
                first.sendall(b"SLEEP 1500\n")
                self.assertTrue(wait_until(lambda: srv.pool_state()[:2] == (1, 0), 10))
            s = srv.connect()
            r = LineReader(s)
            s.sendall(b"SLEEP 2500\n")
            # Read (accepted) before the reload below.
            self.assertTrue(wait_until(lambda: srv.pool_state()[:2] == (1, 1 if queued else 0), 10))
            conf.write("limits = { max_sleep_ms = 3000; stall_timeout_ms = 800; };\n")
            srv.signal(signal.SIGHUP)
            srv.wait_log(r"configuration reloaded")
            if queued:
                self.assertEqual(LineReader(first).line(timeout=5), "OK 1500")
            self.assertEqual(r.line(timeout=5), "OK 2500")
            self.assertNotIn("unhealthy", srv.log())
            # A request read after the reload is held to the new threshold.
            s.sendall(b"SLEEP 1500\n")
            srv.wait_log(r"unhealthy: a worker has been on one request", timeout=5)
            self.assertEqual(r.line(timeout=5), "OK 1500")
            self.assertEqual(srv.stop(), 0)
            done.set()
            reader.join()

    def test_lowering_the_stall_threshold_spares_a_running_sleep(self):
        # The watchdog checks each request against the threshold in force
        # when it started, not against one a later reload lowered.
        self.lower_the_stall_threshold(queued=False)

    def test_lowering_the_stall_threshold_spares_a_queued_sleep(self):
        # Nor against one lowered while it waited in the queue: what was
        # accepted keeps the terms it was accepted under.
        self.lower_the_stall_threshold(queued=True)


class Refused(unittest.TestCase):
    def test_a_client_that_speaks_first_reads_the_refusal(self):
        with Server("--max-connections", "1") as srv:
            held = srv.connect()
            self.assertEqual(request(held, LineReader(held), "ECHO 1"), "OK 1")
            for i in range(20):
                s = srv.connect()
                s.sendall(b"ECHO 2\n")
                time.sleep(0.01)  # the request reaches the server before its refusal is read
                r = LineReader(s)
                self.assertEqual(r.line(), "ERR too many connections", i)
                with self.assertRaises(EOFError):
                    r.line()
                s.close()
            # Counted and logged in one line, not one per connection.
            total = lambda: sum(int(n) for n in re.findall(r"refused \d+ connections? \((\d+) over max_connections\)",
                                                           srv.log()))
            self.assertEqual(wait_until(lambda: total() == 20, 12) and total(), 20, srv.log())
            self.assertIn("since start", srv.log())
            self.assertEqual(request(held, LineReader(held), "ECHO 3"), "OK 3")


    def test_refusals_just_before_the_stop_are_logged(self):
        # Logged in one line every 5 s at most, the refusals since the last
        # line are logged at the stop, however soon after it.
        with Server("--max-connections", "1") as srv:
            held = srv.connect()
            self.assertEqual(request(held, LineReader(held), "ECHO 1"), "OK 1")

            def refuse(n):
                for _ in range(n):
                    with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as s:
                        self.assertEqual(LineReader(s).line(), "ERR too many connections")

            refuse(100)
            srv.wait_log(r"refused \d+ connections? \(")
            refuse(300)
            self.assertEqual(srv.stop(), 0)
            log = srv.log()
            counts = [int(n) for n in re.findall(r"refused (\d+) connections? \(\1 over max_connections\)", log)]
            self.assertEqual(sum(counts), 400, log)
            self.assertGreaterEqual(len(counts), 2, log)
            self.assertGreater(log.index("stopped:"), log.rindex("over max_connections"), log)

    def test_busy_rejections_just_before_the_stop_are_logged(self):
        # Logged in one line every 5 s at most, the rejections since the last
        # line are logged at the stop, and stopped: gives the totals.
        with MetricsServer("--workers", "1", "--cheap-workers", "0", "--queue", "1", "--fairness", "none",
                           "--queue-timeout-ms", "50") as srv:
            def reject(n):
                hold = srv.connect()
                hold.sendall(b"SLEEP 300\n")
                self.assertTrue(wait_until(lambda: srv.scrape().get("tpserver_workers_busy") == 1, 5))
                queued = srv.connect()
                queued.sendall(b"SLEEP 1\n")
                self.assertTrue(wait_until(lambda: srv.scrape().get("tpserver_queue_depth") == 1, 5))
                busy = [srv.connect() for _ in range(n)]
                for s in busy:
                    s.sendall(b"SLEEP 1\n")
                for s in busy:
                    self.assertEqual(LineReader(s).line(timeout=5), "ERR server busy")
                self.assertEqual(LineReader(hold).line(timeout=5), "OK 300")
                self.assertEqual(LineReader(queued).line(timeout=5), "OK 1")
                for s in [hold, queued, *busy]:
                    s.close()

            reject(3)
            srv.wait_log(r"overloaded: \d+ requests refused")
            reject(4)
            self.assertEqual(srv.stop(), 0)
            log = srv.log()
            counts = [int(n) for n in re.findall(r"overloaded: (\d+) requests refused with ERR server busy", log)]
            self.assertEqual(sum(counts), 7, log)
            self.assertGreaterEqual(len(counts), 2, log)
            self.assertRegex(log, r"stopped: 11 requests served, 7 busy rejections, 0 over max wait")
            self.assertGreater(log.index("stopped:"), log.rindex("overloaded:"), log)

    def test_a_refusal_storm_reads_its_refusals(self):
        """A reconnect storm against a full server: 150 clients that each send a
        line at once are all refused with the line, not a reset, past the 64 that
        drain at once. The loop is stopped meanwhile, so that every client's line
        is in its socket before the accept."""
        with Server("--max-connections", "1") as srv:
            held = srv.connect()
            self.assertEqual(request(held, LineReader(held), "ECHO 1"), "OK 1")
            storm = []
            with srv.stopped(settle=0.2):
                for _ in range(150):
                    s = srv.connect()
                    s.sendall(b"ECHO 2\n")
                    storm.append(s)
            got = {}
            for s in storm:
                try:
                    s.settimeout(10)
                    key = read_to_eof(s)
                except ConnectionResetError:
                    key = "reset"
                got[key] = got.get(key, 0) + 1
            self.assertEqual(got, {b"ERR too many connections\n": 150})
            self.assertEqual(request(held, LineReader(held), "ECHO 3"), "OK 3")


class ReloadOffLoop(unittest.TestCase):
    def test_a_reload_blocked_on_a_fifo_blocks_no_loop(self):
        conf = ConfFile(self, "pool = { workers = 2; };\n")
        with Server("--config", conf.path) as srv:
            s = srv.connect()
            r = LineReader(s)
            os.unlink(conf.path)
            os.mkfifo(conf.path)
            srv.signal(signal.SIGHUP)
            # The reload's reader is the one extra thread while it lasts: once
            # it is there, it waits on the FIFO, and the loop still answers.
            self.assertTrue(wait_until(lambda: srv.threads() == 2 + 1 + 1 + CHEAP_WORKERS, 10), srv.threads())
            self.assertEqual(request(s, r, "ECHO during", timeout=2), "OK during")
            self.assertEqual(srv.threads(), 2 + 1 + 1 + CHEAP_WORKERS)
            srv.signal(signal.SIGHUP)  # coalesced: one more read once this one is done
            with open(conf.path, "w") as f:
                f.write("pool = { workers = 3; };\n")
            srv.wait_log(r"configuration reloaded: 3 workers")
            # The second read now waits on the FIFO, beside the grown pool.
            self.assertTrue(wait_until(lambda: srv.threads() == 3 + 1 + 1 + CHEAP_WORKERS, 10), srv.threads())
            self.assertEqual(request(s, r, "ECHO after", timeout=2), "OK after")
            self.assertEqual(srv.threads(), 3 + 1 + 1 + CHEAP_WORKERS)
            self.assertEqual(len(re.findall("configuration reloaded", srv.log())), 1)
            t0 = time.monotonic()
            self.assertEqual(srv.stop(timeout=5), 0)
            self.assertLess(time.monotonic() - t0, 3)


class ReloadAndWait(unittest.TestCase):
    """The ExecReload helper and the daemon, without systemd."""

    def setUp(self):
        self.rundir = tempfile.mkdtemp(prefix="tp-run-")
        self.addCleanup(lambda: subprocess.run(["rm", "-rf", self.rundir]))
        self.env = {"RUNTIME_DIRECTORY": self.rundir}

    def helper(self, pid, timeout=40):
        t0 = time.monotonic()
        p = subprocess.run([TPSERVER, "--reload-and-wait", str(pid)], capture_output=True, text=True,
                           timeout=timeout, env=dict(os.environ, **self.env))
        return p, time.monotonic() - t0

    def test_its_forms(self):
        """PID joined with "=" works too; without a PID, or with anything else
        given, or a PID that is no number, it says how it is used, exit 78."""
        conf = ConfFile(self, "pool = { workers = 2; };\n")
        with Server("--config", conf.path, env=self.env) as srv:
            srv.wait_log(r"ready:")
            conf.write("pool = { workers = 3; };\n")
            p = subprocess.run([TPSERVER, "--reload-and-wait=%d" % srv.proc.pid], capture_output=True,
                               text=True, timeout=40, env=dict(os.environ, **self.env))
            self.assertEqual((p.returncode, p.stderr), (0, ""))
            self.assertIn("configuration reloaded: 3 workers", srv.log())
            for args in (["--reload-and-wait"], ["--reload-and-wait", str(srv.proc.pid), "-q"],
                         ["--reload-and-wait=%d" % srv.proc.pid, "x"]):
                p = subprocess.run([TPSERVER] + args, capture_output=True, text=True, timeout=10,
                                   env=dict(os.environ, **self.env))
                self.assertEqual(p.returncode, 78, args)
                self.assertIn("--reload-and-wait takes a process id and nothing else", p.stderr)
            p = subprocess.run([TPSERVER, "--reload-and-wait", "abc"], capture_output=True, text=True, timeout=10,
                               env=dict(os.environ, **self.env))
            self.assertEqual(p.returncode, 78)
            self.assertIn('invalid process id "abc"', p.stderr)

    def test_a_value_with_line_ends_is_refused_on_one_line(self):
        """A value quoting line ends (a forged "reading" line, say) is refused on
        one line of the log and of the status file, and the next reload is waited
        for as any other."""
        conf = ConfFile(self, "pool = { workers = 2; };\n")
        with Server("--config", conf.path, env=self.env) as srv:
            srv.wait_log(r"ready:")
            conf.write('log = { level = "x\ntpserver[1]: notice: forged\nreading 99"; };\n')
            p, _ = self.helper(srv.proc.pid)
            self.assertEqual(p.returncode, 1)
            self.assertIn('log.level: invalid value "x?tpserver[1]: notice: forged?reading 99"', p.stderr)
            self.assertNotIn("\ntpserver[1]: notice: forged", srv.log())
            with open(os.path.join(self.rundir, "reload-status")) as f:
                self.assertEqual(len(f.read().splitlines()), 1)
            conf.write("pool = { workers = 3; };\n")
            p, took = self.helper(srv.proc.pid)
            self.assertEqual((p.returncode, p.stderr), (0, ""))
            self.assertLess(took, 10)

    def test_applied_refused_and_gone(self):
        conf = ConfFile(self, "pool = { workers = 2; };\n")
        with Server("--config", conf.path, env=self.env) as srv:
            srv.wait_log(r"ready:")
            conf.write("pool = { workers = 3; };\n")
            p, _ = self.helper(srv.proc.pid)
            self.assertEqual((p.returncode, p.stderr), (0, ""))
            # Returned only once applied: the new pool is there.
            self.assertIn("configuration reloaded: 3 workers", srv.log())
            self.assertEqual(srv.threads(), 3 + 1 + CHEAP_WORKERS)

            conf.write("pool = {\n  workerz = 4;\n};\n")
            p, _ = self.helper(srv.proc.pid)
            self.assertEqual(p.returncode, 1)
            self.assertIn("reload refused: %s:2: pool.workerz: unknown setting" % conf.path, p.stderr)
            # An address -t and a start refuse: it was applied with a "restart is needed"
            # warning, and the next restart exited 78.
            conf.write("pool = { workers = 2; };\nmetrics = { enabled = true; host = \"999.1.1.1\"; };\n")
            p, _ = self.helper(srv.proc.pid)
            self.assertEqual(p.returncode, 1)
            self.assertIn("reload refused: %s:2: metrics.host" % conf.path, p.stderr)
            self.assertEqual(srv.threads(), 3 + 1 + CHEAP_WORKERS)  # nothing of it applied

            # A reload that blocks (the file is a FIFO) is waited for, then applied.
            os.unlink(conf.path)
            os.mkfifo(conf.path)
            res = {}
            t = threading.Thread(target=lambda: res.update(p=self.helper(srv.proc.pid)[0]))
            t.start()
            time.sleep(0.5)
            self.assertNotIn("p", res)
            with open(conf.path, "w") as f:
                f.write("pool = { workers = 2; };\n")
            t.join(10)
            self.assertEqual(res["p"].returncode, 0, res["p"].stderr)
            self.assertEqual(srv.threads(), 2 + 1 + CHEAP_WORKERS)
            self.assertEqual(srv.stop(), 0)
            pid = srv.proc.pid
        p, took = self.helper(pid)
        self.assertEqual(p.returncode, 1)
        self.assertLess(took, 2)

    def test_a_pool_that_cannot_grow_refuses_the_whole_reload(self):
        # Workers that cannot start (a task limit: the unit's TasksMax=, RLIMIT_NPROC) refuse the
        # reload as a whole: nothing of the file is applied, and the helper says why.
        if os.geteuid() != 0 or not shutil.which("setpriv") or not shutil.which("prlimit"):
            self.skipTest("needs root, setpriv and prlimit: the daemon runs as nobody under a task limit")
        if tplib.SANITIZED:
            self.skipTest("a sanitizer's own threads count against the task limit")
        home = tempfile.mkdtemp(prefix="tp-nproc-")
        self.addCleanup(shutil.rmtree, home)
        os.chmod(home, 0o755)  # nobody reaches the binary and the file
        os.chown(self.rundir, NOBODY, NOBODY)
        exe = shutil.copy(TPSERVER, home)
        conf = ConfFile(self, "pool = { workers = 2; };\nlimits = { max_sleep_ms = 100; };\n",
                        path=os.path.join(home, "tp.conf"))
        # Room for the threads nobody has now, the daemon's (2 workers, the cheap ones, its loop)
        # and the reload's reading thread: no more worker can start.
        limit = "--nproc=%d" % (tasks_of(NOBODY) + 2 + CHEAP_WORKERS + 1 + 1)
        with open(os.path.join(home, "log"), "w+") as log:
            proc = subprocess.Popen(["setpriv", "--reuid=%d" % NOBODY, "--regid=%d" % NOBODY, "--clear-groups",
                                     "prlimit", limit, exe, "--host", "127.0.0.1", "--port", "0", "--config",
                                     conf.path], stdout=log, stderr=subprocess.STDOUT,
                                    env=dict(os.environ, **self.env))
            self.addCleanup(lambda: proc.poll() is None and (proc.kill(), proc.wait()))
            self.assertTrue(wait_until(lambda: "ready:" in open(log.name).read(), 10 * SLACK))
            port = int(re.search(r"listening on 127\.0\.0\.1:(\d+)", open(log.name).read()).group(1))
            threads = len(os.listdir("/proc/%d/task" % proc.pid))
            conf.write("pool = { workers = 40; };\nlimits = { max_sleep_ms = 5000; };\n")
            p, _ = self.helper(proc.pid)
            self.assertEqual(p.returncode, 1, p.stderr)
            self.assertIn("reload refused: cannot resize the pool to 40 workers", p.stderr)
            self.assertEqual(len(os.listdir("/proc/%d/task" % proc.pid)), threads)
            with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
                self.assertRegex(request(s, LineReader(s), "SLEEP 150"), "^ERR ")  # max_sleep_ms still 100
            # The same settings with no more workers are applied.
            conf.write("pool = { workers = 2; };\nlimits = { max_sleep_ms = 5000; };\n")
            p, _ = self.helper(proc.pid)
            self.assertEqual((p.returncode, p.stderr), (0, ""))
            with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
                self.assertEqual(request(s, LineReader(s), "SLEEP 150"), "OK 150")
            proc.kill()
            proc.wait()

    def test_a_refusal_naming_a_long_path_is_told_whole(self):
        # A path of some 3 000 bytes (components under NAME_MAX): the start's
        # refusal, the reload's log line and the helper's message name it whole.
        deep = os.path.join(self.rundir, *["p" * 250] * 12)
        os.makedirs(deep)
        conf = ConfFile(self, "pool = {\n  workerz = 4;\n};\n", path=os.path.join(deep, "tpserver.conf"))
        why = "%s:2: pool.workerz: unknown setting" % conf.path
        p = subprocess.run([TPSERVER, "--config", conf.path, "--port", "0"], capture_output=True, text=True,
                           timeout=10)
        self.assertEqual(p.returncode, 78)
        self.assertIn(why, p.stderr)
        p = subprocess.run([TPSERVER, "--check-config", "--config", conf.path], capture_output=True,
                           text=True, timeout=10)
        self.assertEqual(p.returncode, 78)
        self.assertIn(why, p.stderr)
        conf.write("pool = { workers = 2; };\n")
        with Server("--config", conf.path, env=self.env) as srv:
            srv.wait_log(r"ready:")
            conf.write("pool = {\n  workerz = 4;\n};\n")
            p, _ = self.helper(srv.proc.pid)
            self.assertEqual(p.returncode, 1)
            self.assertIn("reload refused: " + why, p.stderr)
            srv.wait_log(re.escape("keeping the running configuration: " + why))

    def test_another_program_is_not_signalled(self):
        """A PID that is not tpserver's (a typo, a stale $MAINPID) is not sent
        the SIGHUP that would end it."""
        other = subprocess.Popen(["sleep", "30"])
        self.addCleanup(lambda: other.poll() is None and (other.kill(), other.wait()))

        def comm():
            with open("/proc/%d/comm" % other.pid) as f:
                return f.read().strip()
        self.assertTrue(wait_until(lambda: comm() == "sleep", 5))  # until its exec, it is python3
        p, took = self.helper(other.pid)
        self.assertEqual(p.returncode, 1)
        self.assertIn('process %d is "sleep", not tpserver: not signalled' % other.pid, p.stderr)
        self.assertLess(took, 2)
        time.sleep(0.2)
        self.assertIsNone(other.poll())

    def test_a_reload_read_when_shutdown_began_is_logged(self):
        """A read that ends after SIGTERM is not applied: the helper and the log
        both say so."""
        conf = ConfFile(self, "pool = { workers = 2; };\n")
        with Server("--config", conf.path, env=self.env) as srv:
            srv.wait_log(r"ready:")
            s = srv.connect()
            s.sendall(b"SLEEP 1500\n")  # keeps the shutdown going while the read ends
            os.unlink(conf.path)
            os.mkfifo(conf.path)
            res = {}
            t = threading.Thread(target=lambda: res.update(p=self.helper(srv.proc.pid)[0]))
            t.start()
            self.assertTrue(wait_until(lambda: srv.threads() == 2 + 1 + 1 + CHEAP_WORKERS, 10))
            srv.signal(signal.SIGTERM)
            srv.wait_log(r"shutting down; answering")
            with open(conf.path, "w") as f:
                f.write("pool = { workers = 3; };\n")
            t.join(10)
            self.assertEqual(res["p"].returncode, 1)
            self.assertIn("reload refused: shutting down", res["p"].stderr)
            srv.wait_log(r"reload not applied: shutting down")
            self.assertNotIn("configuration reloaded", srv.log())
            self.assertEqual(srv.stop(timeout=10), 0)

    def test_a_reload_during_the_leave_is_refused_at_once(self):
        """The leave is the stop's first part: a SIGHUP then is refused at once,
        with no RELOADING=1 after STOPPING=1, and the file is not applied."""
        from test_systemd import Notify
        notify = Notify()
        self.addCleanup(notify.close)
        conf = ConfFile(self, "pool = { workers = 2; };\n")
        with Server("--config", conf.path, "--drain-s", "3",
                    env=dict(self.env, NOTIFY_SOCKET=notify.path)) as srv:
            notify.wait_for(r"^READY=1")
            srv.signal(signal.SIGTERM)
            notify.wait_for(r"^STOPPING=1", timeout=5)
            conf.write("pool = { workers = 3; };\n")
            p, took = self.helper(srv.proc.pid)
            self.assertEqual(p.returncode, 1)
            self.assertIn("reload refused: shutting down", p.stderr)
            self.assertLess(took, 2)
            self.assertEqual(srv.proc.wait(15), 0)
            self.assertIn("reload not applied: shutting down", srv.log())
            self.assertNotIn("configuration reloaded", srv.log())
        notify.collect(0.2)
        texts = [m for _, m in notify.messages]
        stop = next(i for i, t in enumerate(texts) if re.search(r"(?m)^STOPPING=1", t))
        self.assertFalse([t for t in texts[stop:] if re.search(r"(?m)^(RELOADING|READY)=1", t)], texts)

    def test_a_stop_during_the_wait_ends_it_with_success(self):
        """systemd sends SIGTERM to the helper too when the service stops or
        restarts during a reload: it stops waiting, says why, and exits 0 (a
        helper killed by the signal fails the unit).  SIGINT (by hand) the same."""
        conf = ConfFile(self, "pool = { workers = 2; };\n")
        with Server("--config", conf.path, env=self.env) as srv:
            srv.wait_log(r"ready:")
            os.unlink(conf.path)
            os.mkfifo(conf.path)  # the read waits until the test writes the file
            for signo, why in ((signal.SIGTERM, "Terminated): the service is stopping, so the reload's "
                                                "outcome is moot"),
                               (signal.SIGINT, "Interrupt): the daemon's log says whether the file was applied")):
                helper = subprocess.Popen([TPSERVER, "--reload-and-wait", str(srv.proc.pid)],
                                          stderr=subprocess.PIPE, text=True, env=dict(os.environ, **self.env))
                self.addCleanup(lambda h=helper: h.poll() is None and (h.kill(), h.wait()))
                # Once the reload's reader waits on the FIFO, the helper waits on the daemon.
                self.assertTrue(wait_until(lambda: srv.threads() == 2 + 1 + 1 + CHEAP_WORKERS, 10))
                time.sleep(0.1)
                self.assertIsNone(helper.poll())
                t0 = time.monotonic()
                helper.send_signal(signo)
                _, err = helper.communicate(timeout=5)
                self.assertEqual(helper.returncode, 0, err)
                self.assertLess(time.monotonic() - t0, 1)
                self.assertIn("tpserver: reload: stopped waiting (" + why, err)
                with open(conf.path, "w") as f:
                    f.write("pool = { workers = 2; };\n")
                n = 1 if signo == signal.SIGTERM else 2  # the daemon applies it all the same
                self.assertTrue(wait_until(lambda: srv.log().count("configuration reloaded") == n, 10))
            self.assertEqual(srv.stop(timeout=10), 0)

    def test_daemon_gone_while_waiting(self):
        conf = ConfFile(self, "pool = { workers = 2; };\n")
        with Server("--config", conf.path, env=self.env) as srv:
            srv.wait_log(r"ready:")
            os.unlink(conf.path)
            os.mkfifo(conf.path)  # the reload never ends
            res = {}
            t = threading.Thread(target=lambda: res.update(r=self.helper(srv.proc.pid)))
            t.start()
            time.sleep(0.5)
            srv.proc.kill()
            srv.proc.wait()  # reaped, as systemd would
            t.join(10)
            p, took = res["r"]
            self.assertEqual(p.returncode, 1)
            self.assertIn("exited before the reload was done", p.stderr)
            self.assertLess(took, 3)


class CheckConfigUnderJournal(unittest.TestCase):
    def run_check(self, conf, journal):
        with tempfile.TemporaryFile() as err:
            env = dict(os.environ)
            env.pop("JOURNAL_STREAM", None)
            if journal:
                st = os.fstat(err.fileno())
                env["JOURNAL_STREAM"] = "%d:%d" % (st.st_dev, st.st_ino)
            p = subprocess.run([TPSERVER, "--check-config", "--quiet", "--config", conf], stderr=err,
                               env=env, timeout=10)
            err.seek(0)
            return p.returncode, err.read().decode()

    def test_errors_reach_the_journal_at_err(self):
        conf = ConfFile(self, "pool = { workerz = 1; };\n")
        code, text = self.run_check(conf.path, journal=True)
        self.assertEqual(code, 78)
        # systemd's SyslogLevelPrefix= reads <3> as priority err.
        self.assertTrue(text.startswith("<3>tpserver: %s:1: pool.workerz" % conf.path), text)
        self.assertEqual(len(text.splitlines()), 1, text)
        code, text = self.run_check(conf.path, journal=False)
        self.assertEqual(code, 78)
        self.assertTrue(text.startswith("tpserver: "), text)


class JournalFields(unittest.TestCase):
    """The daemon under journald (JOURNAL_STREAM names its stderr) sends
    native journal entries: here to a test-owned socket mounted over
    /run/systemd/journal/socket in a mount namespace of its own."""

    def start_under_journal(self, conf):
        """tpserver --config conf with its stderr the journal's stream and a
        test-owned journal socket: (process, entry_with(KEY), stderr())."""
        if os.geteuid() != 0 or not shutil.which("unshare"):
            self.skipTest("needs root and unshare(1) for a private /run")
        tmp = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, tmp, True)
        journal = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.addCleanup(journal.close)
        journal.bind(os.path.join(tmp, "socket"))
        journal.settimeout(0.2)
        script = ("mount -t tmpfs tmpfs /run && mkdir -p /run/systemd/journal && "
                  "touch /run/systemd/journal/socket && "
                  "mount --bind %s/socket /run/systemd/journal/socket && echo TP-MOUNTED >&2 && "
                  "exec \"$@\"" % tmp)
        err = tempfile.TemporaryFile()
        self.addCleanup(err.close)
        st = os.fstat(err.fileno())
        env = dict(os.environ, JOURNAL_STREAM="%d:%d" % (st.st_dev, st.st_ino))
        proc = subprocess.Popen(["unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh",
                                 TPSERVER, "--config", conf, "--port", "0"], stderr=err, env=env)
        self.addCleanup(lambda: proc.poll() is None and (proc.kill(), proc.wait()))
        entries = []

        def entry_with(key, text=""):
            try:
                entries.append(journal.recv(65536).decode(errors="replace"))
            except socket.timeout:
                pass
            return next((e for e in entries if ("\n%s=" % key) in "\n" + e and text in e), None)

        def stderr():
            err.seek(0)
            return err.read().decode(errors="replace")

        started = wait_until(lambda: entry_with("TP_EVENT") or proc.poll() is not None, 10)
        if "TP-MOUNTED" not in stderr():
            self.skipTest("no private /run here: %s" % stderr()[-300:])
        # The private journal socket is there: a daemon that sends it nothing fails.
        self.assertTrue(started, "no journal entry: %r %s" % (entries, stderr()[-300:]))
        return proc, entry_with, stderr

    def test_a_long_field_reaches_the_journal_whole(self):
        tmp = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, tmp, True)
        deep = os.path.join(tmp, *["d" * 250] * 8)  # a path of some 2 000 bytes
        os.makedirs(deep)
        conf = os.path.join(deep, "tpserver.conf")
        with open(conf, "w") as f:
            f.write("pool = { workers = 2; };\n")
        proc, entry_with, stderr = self.start_under_journal(conf)
        self.assertIsNone(proc.poll(), stderr()[-300:])
        with open(conf, "w") as f:
            f.write("pool = { workers = -5; };\n")
        proc.send_signal(signal.SIGHUP)
        self.assertTrue(wait_until(lambda: entry_with("TP_RELOAD_ERROR"), 10))
        fields = dict(line.split("=", 1) for line in entry_with("TP_RELOAD_ERROR").splitlines() if "=" in line)
        self.assertIn("%s:1: pool.workers" % conf, fields["TP_RELOAD_ERROR"])
        self.assertIn("%s:1: pool.workers" % conf, fields["MESSAGE"])
        self.assertEqual(fields["PRIORITY"], "3")
        proc.terminate()
        self.assertEqual(proc.wait(10), 0)

    def test_a_configuration_error_at_start_is_its_start_event(self):
        # The start event's catalog entry explains exit 78: the failure is that event (it was plain stderr).
        conf = ConfFile(self, "pool = { workers = 0; };\n")
        proc, entry_with, stderr = self.start_under_journal(conf.path)
        self.assertEqual(proc.wait(10), 78)
        fields = dict(line.split("=", 1) for line in entry_with("TP_EVENT").splitlines() if "=" in line)
        self.assertEqual((fields["TP_EVENT"], fields["PRIORITY"]), ("start", "3"))
        self.assertIn("MESSAGE_ID", fields)
        self.assertIn("%s:1: pool.workers" % conf.path, fields["MESSAGE"])


    def test_refused_connections_have_their_message_id(self):
        # An operator looks overload up by MESSAGE_ID: refusals over a limit have theirs.
        conf = ConfFile(self, "limits = { max_connections = 1; };\n")
        proc, entry_with, stderr = self.start_under_journal(conf.path)
        self.assertTrue(wait_until(lambda: entry_with("MESSAGE", "listening on 127.0.0.1:"), 10), stderr())
        port = int(re.search(r"listening on 127\.0\.0\.1:(\d+)", entry_with("MESSAGE", "listening on")).group(1))
        first = socket.create_connection(("127.0.0.1", port))
        self.addCleanup(first.close)
        first.sendall(b"ECHO a\n")
        self.assertEqual(first.recv(16), b"OK a\n")
        with socket.create_connection(("127.0.0.1", port)) as second:
            second.settimeout(5)
            self.assertEqual(second.recv(64), b"ERR too many connections\n")
        self.assertTrue(wait_until(lambda: entry_with("TP_REFUSED"), 10), stderr())
        fields = dict(line.split("=", 1) for line in entry_with("TP_REFUSED").splitlines() if "=" in line)
        self.assertEqual((fields["TP_EVENT"], fields["TP_REFUSED"]), ("refused", "1"))
        self.assertEqual(fields["MESSAGE_ID"], "c8c9863655044936a429b8024e7baf06")
        proc.terminate()
        self.assertEqual(proc.wait(10), 0)

    def test_late_refusals_have_their_message_id(self):
        # Refusals past pool.max_wait_ms are busy refusals too: an operator finds them by ID.
        conf = ConfFile(self, "pool = { workers = 1; cheap_workers = 0; max_wait_ms = 100; };\n")
        proc, entry_with, stderr = self.start_under_journal(conf.path)
        self.assertTrue(wait_until(lambda: entry_with("MESSAGE", "listening on 127.0.0.1:"), 10), stderr())
        port = int(re.search(r"listening on 127\.0\.0\.1:(\d+)", entry_with("MESSAGE", "listening on")).group(1))
        with socket.create_connection(("127.0.0.1", port)) as s:
            s.sendall(b"SLEEP 300\nECHO a\nECHO b\n")  # the ECHOs wait 300 ms behind it
            self.assertEqual(LineReader(s).lines(3, timeout=5), ["OK 300", "ERR server busy", "ERR server busy"])
        self.assertTrue(wait_until(lambda: entry_with("TP_LATE"), 10), stderr())
        fields = dict(line.split("=", 1) for line in entry_with("TP_LATE").splitlines() if "=" in line)
        self.assertEqual((fields["TP_EVENT"], fields["TP_LATE"]), ("late", "2"))
        self.assertEqual(fields["MESSAGE_ID"], "6da03b6347c34b78bc1e3fa0993bfdf5")
        proc.terminate()
        self.assertEqual(proc.wait(10), 0)


class Notices(unittest.TestCase):
    def test_reloading_carries_monotonic_usec(self):
        from test_systemd import Notify
        notify = Notify()
        self.addCleanup(notify.close)
        with Server(env={"NOTIFY_SOCKET": notify.path}) as srv:
            notify.wait_for(r"^READY=1")
            before = time.monotonic()
            srv.signal(signal.SIGHUP)
            m = notify.wait_for(r"^RELOADING=1")
            after = time.monotonic()
            usec = re.search(r"(?m)^MONOTONIC_USEC=(\d+)$", m)
            self.assertIsNotNone(usec, m)
            self.assertGreaterEqual(int(usec.group(1)), int(before * 1e6) - 1000)
            self.assertLessEqual(int(usec.group(1)), int(after * 1e6) + 1000)
            notify.wait_for(r"^READY=1")

    def test_first_busy_line_says_since_start(self):
        with Server("--workers", "1", "--queue", "1", "--queue-timeout-ms", "100") as srv:
            s = srv.connect()
            # Written (and so counted) before the first look, a second after the start.
            s.sendall(b"SLEEP 300\nSLEEP 1\nSLEEP 1\n")
            r = LineReader(s)
            self.assertEqual(r.lines(3, timeout=5), ["OK 300", "OK 1", "ERR server busy"])
            line = srv.wait_log(r"overloaded: .*", timeout=10)
            self.assertIn("refused with ERR server busy since start", line)


    def test_busy_line_counts_only_refusals_written(self):
        """The overloaded line counts ERR server busy replies as the metrics
        and the stats line do: not those of clients that left while their
        requests waited (it counted 6 here, the metrics 1)."""
        with MetricsServer("--workers", "1", "--cheap-workers", "0", "--queue", "1",
                           "--fairness", "none", "--queue-timeout-ms", "500") as srv:
            hold = srv.connect()
            hold.sendall(b"SLEEP 3000\nSLEEP 3000\n")  # one running, one queued: full
            self.assertTrue(wait_until(lambda: srv.scrape().get("tpserver_queue_depth") == 1, 5))
            gone = [srv.connect() for _ in range(5)]
            live = srv.connect()
            for g in gone:
                g.sendall(b"SLEEP 1\n")
            live.sendall(b"SLEEP 1\n")
            self.assertTrue(wait_until(lambda: srv.scrape().get("tpserver_queue_waiters") == 6, 5))
            for g in gone:  # with fairness none their requests stay queued until they expire
                g.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                g.close()
            self.assertEqual(LineReader(live).line(timeout=5), "ERR server busy")
            line = srv.wait_log(r"overloaded: .*", timeout=10)
            self.assertIn("overloaded: 1 requests refused", line)
            self.assertEqual(srv.scrape().get("tpserver_requests_total", op="sleep", result="busy_timeout"), 1)
            hold.close()
            live.close()

    def unwritten_status(self, args, client):
        """The counts STATUS= gives after client(srv) ran and 2.5 s more."""
        from test_systemd import Notify
        notify = Notify()
        self.addCleanup(notify.close)
        with Server(*args, env={"NOTIFY_SOCKET": notify.path}) as srv:
            notify.wait_for(r"^READY=1")
            client(srv)
            start = time.monotonic()
            notify.collect(2.5)
        status = [m for t, m in notify.messages if t > start and m.startswith("STATUS=")]
        self.assertTrue(status, notify.messages)
        return re.search(r"(\d+) busy rejections, (\d+) over max wait", status[-1]).groups()

    def test_busy_and_late_replies_never_written_are_not_counted(self):
        """STATUS=, the overloaded lines and the agent's weight count ERR
        server busy replies as the metrics do, when written: not those
        behind a request still running when their client left (here 1 and
        1 were counted, the metrics 0)."""
        def behind(hold_ms, lines, leave_after):
            """A client that leaves with ERR server busy done, not written, behind its first line."""
            def client(srv):
                hold = srv.connect()
                hold.sendall(b"SLEEP %d\n" % hold_ms)
                time.sleep(0.1)
                gone = srv.connect()
                gone.sendall(lines)
                time.sleep(leave_after)
                gone.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                gone.close()
                self.assertEqual(LineReader(hold).line(), "OK %d" % hold_ms)
            return client

        # The second line refused at 200 ms behind the first, queued; popped at 300 ms, over 100 ms.
        busy, late = behind(1500, b"SLEEP 1\nSLEEP 1\n", 0.5), behind(300, b"SLEEP 1000\nSLEEP 1\n", 0.6)
        self.assertEqual(self.unwritten_status(("--workers", "1", "--cheap-workers", "0", "--queue", "1",
                                                "--queue-timeout-ms", "200"), busy), ("0", "0"))
        self.assertEqual(self.unwritten_status(("--workers", "2", "--cheap-workers", "0",
                                                "--max-wait-ms", "100"), late), ("0", "0"))

class CheckConfigParity(unittest.TestCase):
    def run_tp(self, *args, env=None):
        e = dict(os.environ)
        for k in ("LISTEN_FDS", "LISTEN_PID", "INVOCATION_ID", "JOURNAL_STREAM"):
            e.pop(k, None)
        e.update(env or {})
        return subprocess.run([TPSERVER, *args], capture_output=True, text=True, timeout=20, env=e)

    def test_check_refuses_an_address_a_start_refuses(self):
        conf = ConfFile(self, 'listen = { host = "999.1.1.1"; port = 0; };\n')
        start = self.run_tp("--config", conf.path)
        self.assertEqual(start.returncode, 78, start.stderr)
        check = self.run_tp("-t", "--config", conf.path)
        self.assertEqual(check.returncode, 78, check.stdout)
        self.assertIn("999.1.1.1", check.stderr)
        # Caught without DNS, also where the listen settings are not used.
        check = self.run_tp("-t", "--config", conf.path, env={"INVOCATION_ID": "0" * 32})
        self.assertEqual(check.returncode, 78, check.stdout)
        for good in ("127.0.0.1", "::1", "127.1"):
            conf.write('listen = { host = "%s"; };\n' % good)
            self.assertEqual(self.run_tp("-t", "-q", "--config", conf.path).returncode, 0, good)
        # A name is resolved as a start would, except under systemd (socket activation).
        conf.write('listen = { host = "no-such-host.invalid"; };\n')
        self.assertEqual(self.run_tp("-t", "-q", "--config", conf.path).returncode, 78)
        self.assertEqual(self.run_tp("-t", "-q", "--config", conf.path,
                                     env={"INVOCATION_ID": "0" * 32}).returncode, 0)
        # A host holding a line end is named on one line, as every error is (it was two).
        conf.write('agent = { enabled = true; host = "127.0.0.1\\n<3>x"; };\n')
        check = self.run_tp("-t", "-q", "--config", conf.path)
        self.assertEqual(check.returncode, 78)
        self.assertEqual(len(check.stderr.splitlines()), 1, check.stderr)

    def test_config_path_too_long_is_refused(self):
        path = "/" + "a/" * 2100 + "tp.conf"
        p = self.run_tp("-t", "--config", path)
        self.assertEqual(p.returncode, 78)
        self.assertIn("--config", p.stderr)
        self.assertIn("4095", p.stderr)


class MemoryAfterBurst(unittest.TestCase):
    def test_memory_is_given_back_once_quiet(self):
        self.burst_then(9)

    def test_memory_is_given_back_while_traffic_goes_on(self):
        # One ECHO every half second: never quiet for 5 s, yet the free heap goes back.
        self.burst_then(8, 0.5)

    def burst_then(self, seconds, *trickle):
        with Server("--io-threads", "2") as srv:
            with open("/proc/%d/exe" % srv.proc.pid, "rb") as f:
                if b"__asan_init" in f.read() or srv.under_tsan():
                    self.skipTest("a sanitizer's allocator keeps memory of its own")
            time.sleep(0.3)
            before = srv.rss_kib()
            out = subprocess.run([sys.executable, BURST, str(srv.proc.pid), str(srv.port), "200", str(seconds)]
                                 + [str(t) for t in trickle], capture_output=True, text=True, timeout=120).stdout
            burst = int(re.search(r"rss_kib_burst=(\d+)", out).group(1))
            after = [int(v) for v in re.findall(r"after_s=\d+ rss_kib=(\d+)", out)]
            self.assertGreater(burst, before + 20000, out)  # the burst did cost memory
            # Within a few seconds of quiet it is given back (glibc alone keeps most of it).  Under
            # traffic the heap may keep up to TRIM_BUSY_FREE (4 MiB, health.c) freed after its
            # last trim: whether the burst's last frees come before or after that trim is a race.
            self.assertLess(after[-1], before + (8192 if trickle else 4096), out)
            s = srv.connect()
            self.assertEqual(request(s, LineReader(s), "ECHO alive"), "OK alive")


class OneHeap(unittest.TestCase):
    """What connections of one event loop freed serves those of another:
    MEMORY.md's bound is on the whole heap's high-water mark, not on one
    per loop (per-thread arenas each kept their own)."""

    def loop_of(self, srv, sock):
        """The epoll fd of the loop that watches sock's server side (from /proc)."""
        cport = sock.getsockname()[1]
        for _ in range(200):
            inode = None
            with open("/proc/net/tcp") as f:
                for line in f.read().splitlines()[1:]:
                    fields = line.split()
                    if (int(fields[1].split(":")[1], 16), int(fields[2].split(":")[1], 16)) == (srv.port, cport):
                        inode = "socket:[%s]" % fields[9]
            fds = {}
            for fd in os.listdir("/proc/%d/fd" % srv.proc.pid):
                try:
                    fds[fd] = os.readlink("/proc/%d/fd/%s" % (srv.proc.pid, fd))
                except OSError:
                    pass
            for fd, target in fds.items():
                if target != "anon_inode:[eventpoll]":
                    continue
                with open("/proc/%d/fdinfo/%s" % (srv.proc.pid, fd)) as f:
                    watched = re.findall(r"tfd:\s+(\d+)", f.read())
                if any(fds.get(t) == inode for t in watched):
                    return int(fd)
            time.sleep(0.01)
        self.fail("no loop watches the connection")

    def open_on(self, srv, loop, n, other=None):
        """n connections on loop (an epoll fd), others closed again; a
        pipelining client on other keeps that loop busy meanwhile, so that the
        listening socket wakes this one."""
        got = []
        stop = threading.Event()

        def keep_busy():
            while not stop.is_set():
                other.sendall(b"ECHO x\n" * 1024)
                want = 1024 * 5
                while want > 0:
                    want -= len(other.recv(65536))
        busy = threading.Thread(target=keep_busy) if other else None
        if busy:
            busy.start()
        try:
            for _ in range(60 * n):
                if len(got) == n:
                    break
                s = socket.socket()
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                s.connect(("127.0.0.1", srv.port))
                if self.loop_of(srv, s) == loop:
                    got.append(s)
                else:
                    s.close()
                    time.sleep(0.003)
        finally:
            stop.set()
            if busy:
                busy.join(10)
        self.assertEqual(len(got), n)
        return got

    def fill(self, socks):
        """Empty lines, not reading the replies, until the server stops reading every one."""
        for s in socks:
            s.setblocking(False)
        last = time.monotonic()
        while time.monotonic() - last < 0.7:
            sent = False
            for s in socks:
                try:
                    sent = s.send(b"\n" * 65536) > 0 or sent
                except BlockingIOError:
                    pass
            if sent:
                last = time.monotonic()
            else:
                time.sleep(0.005)

    @staticmethod
    def reset(socks):
        for s in socks:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            s.close()

    def test_what_one_loop_freed_serves_another(self):
        n = 16
        with Server("--io-threads", "2", "--max-connections", str(2 * n + 2)) as srv:
            with open("/proc/%d/exe" % srv.proc.pid, "rb") as f:
                if b"__asan_init" in f.read() or srv.under_tsan():
                    self.skipTest("a sanitizer's allocator keeps memory of its own")
            probe = srv.connect()
            loop_a = self.loop_of(srv, probe)
            time.sleep(0.3)
            rss0 = srv.rss_kib()
            a = self.open_on(srv, loop_a, n)
            self.fill(a)
            first = srv.rss_kib() - rss0
            self.assertGreater(first, n * 512, "the fill did not cost memory")
            # A busy trim now, on the first resets (over 4 MiB freed): the next is 5 s away.
            before = srv.rss_kib()
            self.reset(a[:6])
            self.assertTrue(wait_until(lambda: srv.rss_kib() < before - 2048, 3), "no trim")
            self.reset(a[6:])
            busy = self.open_on(srv, loop_a, 1)[0]
            epolls = [int(fd) for fd in os.listdir("/proc/%d/fd" % srv.proc.pid)
                      if os.readlink("/proc/%d/fd/%s" % (srv.proc.pid, fd)) == "anon_inode:[eventpoll]"]
            self.assertEqual(len(epolls), 2, "one epoll set per loop")
            loop_b = next(fd for fd in epolls if fd != loop_a)
            b = self.open_on(srv, loop_b, n, other=busy)
            self.fill(b)
            second = srv.rss_kib() - rss0
            # Per-thread arenas: 1.6 times the first (the first loop's freed memory stays until its trim).
            self.assertLess(second, first * 1.4, (first, second))
            self.assertEqual(request(probe, LineReader(probe), "ECHO alive"), "OK alive")


class ShutdownGrace(unittest.TestCase):
    def test_a_silent_connection_is_closed_one_second_after_sigterm(self):
        # The grace ends on its own timer, not at the next one-second tick.
        for _ in range(4):  # the tick's phase is random: a close at the tick passes 1.5 s half the time
            with Server("--io-threads", "2") as srv:
                socks = [srv.connect() for _ in range(4)]  # on both loops
                time.sleep(0.1 + random.random())  # anywhere in the ticks' phase
                t0 = time.monotonic()
                srv.signal(signal.SIGTERM)
                for s in socks:
                    s.settimeout(5)
                    self.assertEqual(s.recv(16), b"")
                took = time.monotonic() - t0
                self.assertGreaterEqual(took, 0.95)
                self.assertLess(took, 1.0 + 0.5 * SLACK)  # 1.5 s where it is not sanitized
                self.assertEqual(srv.proc.wait(timeout=5), 0)

    def test_the_leave_and_the_deadline_end_on_time(self):
        # Each on its own timer, not at the next one-second tick after it.
        for _ in range(3):  # the tick's phase is random: a deadline kept at the tick is late half the time
            with Server("--drain-s", "1", "--shutdown-timeout-s", "1") as srv:
                s = srv.connect()
                r = LineReader(s)
                s.sendall(b"SLEEP 9000\n")
                srv.wait_log(r"ready:")
                time.sleep(0.1 + random.random())  # anywhere in the ticks' phase
                t0 = time.monotonic()
                srv.signal(signal.SIGTERM)
                self.assertEqual(r.line(timeout=10), "ERR server shutting down")
                took = time.monotonic() - t0
                self.assertGreaterEqual(took, 1.95)  # the leave's 1 s, then the shutdown's
                self.assertLess(took, 2.0 + 0.3 * SLACK, srv.log()[-2000:])
                self.assertEqual(srv.proc.wait(timeout=5), 0)

    def test_the_grace_serves_one_request_not_one_read(self):
        # Lines that come with the first one, in the same segment, are later lines all the same.
        with Server() as srv:
            s = srv.connect()
            time.sleep(0.2)  # accepted, silent
            srv.signal(signal.SIGTERM)
            srv.wait_log(r"shutting down; answering")
            s.sendall(b"ECHO first\nSLEEP 2000\nSLEEP 2000\n")
            r = LineReader(s)
            self.assertEqual(r.lines(3, timeout=5),
                             ["OK first", "ERR server shutting down", "ERR server shutting down"])
            s.settimeout(5)
            self.assertEqual(s.recv(16), b"")
            self.assertEqual(srv.proc.wait(timeout=5), 0)


    def test_a_first_request_read_in_the_turn_of_the_signal_is_served(self):
        # SIGTERM and a silent client's first lines reach the loop in one turn: the
        # grace holds for them too, whichever of the two events the loop takes first.
        for io_threads in ("1", "2"):
            with Server("--io-threads", io_threads, "--log-level", "debug") as srv:
                s = srv.connect()
                srv.wait_log(r"connection from")
                with srv.stopped(settle=0.1):
                    s.sendall(b"ECHO first\nECHO second\n")
                    srv.signal(signal.SIGTERM)
                r = LineReader(s)
                self.assertEqual(r.line(timeout=5), "OK first", srv.log()[-2000:])
                self.assertIn(r.line(timeout=5), ("OK second", "ERR server shutting down"))
                self.assertEqual(srv.proc.wait(timeout=10), 0)


class Resets(unittest.TestCase):
    def test_a_reset_while_waiting_for_room_is_seen_at_once(self):
        # Its waiting requests pause its reading; the reset is not left until a reply fails.
        with Server("--workers", "2", "--cheap-workers", "0", "--queue-size", "4", "--log-level", "debug") as srv:
            s = socket.socket()
            s.bind(("127.0.0.2", 0))
            s.connect(("127.0.0.1", srv.port))
            s.sendall(b"SLEEP 1000\n" * 20)
            time.sleep(0.2)  # read: two running, four queued, the rest waiting for room
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            s.close()
            srv.wait_log(r"read: Connection reset by peer 127\.0\.0\.2:", timeout=0.5 * SLACK)
            # Its queued and waiting requests went with it: a newcomer waits for a worker, not for them.
            with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as b:
                t0 = time.monotonic()
                self.assertEqual(request(b, LineReader(b), "SLEEP 10"), "OK 10")
                self.assertLess(time.monotonic() - t0, 1.0 + 0.2 * SLACK)

    def test_lines_read_with_their_reset_take_no_place(self):
        """Lines that arrive with the client's reset are read in the turn that
        closes the connection: they are not pushed after the close took its
        requests out (two held the queue and one waited; the newcomer was
        refused busy after 1 s)."""
        with MetricsServer("--workers", "1", "--cheap-workers", "0", "--queue", "2",
                           "--queue-timeout-ms", "1000") as srv:
            hold = srv.connect()
            hold.sendall(b"SLEEP 2000\n")
            self.assertTrue(wait_until(lambda: srv.scrape().get("tpserver_workers_busy") == 1, 5))
            gone = srv.connect()
            gone.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.assertTrue(wait_until(lambda: srv.scrape().get("tpserver_connections") == 2, 5))
            with srv.stopped():  # the lines and the reset reach the server in one turn
                gone.sendall(b"SLEEP 1000\nSLEEP 1000\nSLEEP 1000\n")
                gone.close()
            self.assertTrue(wait_until(lambda: srv.scrape().get("tpserver_connections") == 1, 5))
            m = srv.scrape()
            self.assertEqual((m.get("tpserver_queue_depth"), m.get("tpserver_queue_waiters")), (0, 0))
            live = srv.connect()
            self.assertEqual(request(live, LineReader(live), "SLEEP 1"), "OK 1")
            self.assertEqual(LineReader(hold).line(), "OK 2000")


if __name__ == "__main__":
    tplib.main(verbosity=2, warnings="ignore")
