#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Reload of limits and files: a raised max_unsent_kib resumes paused
connections, the log level is applied, a listen address a start refuses
is refused, reloads under pipelining lose and reorder nothing, a reload
read off the loop blocks no request."""
import os
import random
import re
import signal
import socket
import struct
import threading
import time
import unittest

import tplib
from metricslib import MetricsServer
from tplib import CHEAP_WORKERS, ConfFile, LineReader, Server, assert_threads, request, wait_until


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


class ReloadLogLevel(unittest.TestCase):
    def test_a_reload_applies_the_log_level(self):
        # log.level is read again by a reload: an operator turns on debug
        # lines (one per connection) on a running server and off again.
        conf = ConfFile(self, 'log = { level = "info"; };\n')
        with Server("--config", conf.path) as srv:
            s = srv.connect()
            self.assertEqual(request(s, LineReader(s), "ECHO info"), "OK info")
            self.assertNotIn("connection from", srv.log())
            conf.write('log = { level = "debug"; };\n')
            srv.signal(signal.SIGHUP)
            srv.wait_log(r"configuration reloaded")
            s = srv.connect()
            self.assertEqual(request(s, LineReader(s), "ECHO debug"), "OK debug")
            srv.wait_log(r"connection from 127\.0\.0\.1")
            self.assertEqual(len(re.findall("connection from", srv.log())), 1, srv.log())
            conf.write('log = { level = "info"; };\n')
            srv.signal(signal.SIGHUP)
            self.assertTrue(wait_until(lambda: len(re.findall("configuration reloaded", srv.log())) == 2, 10))
            s = srv.connect()
            self.assertEqual(request(s, LineReader(s), "ECHO info again"), "OK info again")
            self.assertEqual(len(re.findall("connection from", srv.log())), 1, srv.log())
            self.assertEqual(srv.stop(), 0)


class ReloadRefused(unittest.TestCase):
    def test_a_reload_refuses_a_listen_address_a_start_refuses(self):
        # Applied only by the next restart, listen.host is still checked by a
        # reload as a start checks it: accepted now, it would fail that
        # restart.  The address comes from the file alone: --host would
        # override it.
        conf = ConfFile(self, 'listen = { host = "127.0.0.1"; port = 0; };\n')
        with MetricsServer("--config", conf.path, listen_flags=False) as srv:
            workers = srv.scrape().get("tpserver_workers")
            conf.write('listen = { host = "999.1.1.1"; port = 0; };\npool = { workers = 3; };\n')
            srv.signal(signal.SIGHUP)
            line = srv.wait_log(r"reload failed, keeping the running configuration: .*")
            self.assertIn("listen.host", line)
            self.assertIn("999.1.1.1", line)
            self.assertNotIn("configuration reloaded", srv.log())
            m = srv.scrape()
            self.assertEqual(m.get("tpserver_reloads_total", result="failed"), 1)
            self.assertEqual(m.get("tpserver_reloads_total", result="ok"), 0)
            self.assertEqual(m.get("tpserver_workers"), workers)  # nothing of the file applied
            s = srv.connect()
            self.assertEqual(request(s, LineReader(s), "ECHO still"), "OK still")
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
            assert_threads(self, srv, 2 + 1 + 1 + CHEAP_WORKERS)
            srv.signal(signal.SIGHUP)  # coalesced: one more read once this one is done
            with open(conf.path, "w") as f:
                f.write("pool = { workers = 3; };\n")
            srv.wait_log(r"configuration reloaded: 3 workers")
            # The second read now waits on the FIFO, beside the grown pool.
            self.assertTrue(wait_until(lambda: srv.threads() == 3 + 1 + 1 + CHEAP_WORKERS, 10), srv.threads())
            self.assertEqual(request(s, r, "ECHO after", timeout=2), "OK after")
            assert_threads(self, srv, 3 + 1 + 1 + CHEAP_WORKERS)
            self.assertEqual(len(re.findall("configuration reloaded", srv.log())), 1)
            t0 = time.monotonic()
            self.assertEqual(srv.stop(timeout=5), 0)
            self.assertLess(time.monotonic() - t0, 3)


if __name__ == "__main__":
    tplib.main(verbosity=2, warnings="ignore")
