#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Integration tests of the core server: the real tpserver binary on an
ephemeral loopback port, driven over TCP: the protocol, backpressure and
the command line."""
import socket
import struct
import subprocess
import threading
import time
import unittest

import tplib
from metricslib import MetricsServer
from tplib import SLACK, TPSERVER, LineReader, Server, check_help_layout, request, wait_until


class Protocol(unittest.TestCase):
    def test_reply_formats(self):
        with Server("--max-sleep-ms", "300") as srv:
            s = srv.connect()
            r = LineReader(s)
            cases = [
                ("ECHO hello world", "OK hello world"),
                ("echo  two  spaces ", "OK  two  spaces "),
                ("ECHO", "OK "),
                ("SLEEP 0", "OK 0"),
                ("sleep 15", "OK 15"),
                ("SLEEP 300", "OK 300"),
                ("SLEEP 0300", "OK 300"),
                ("SLEEP 301", "ERR invalid argument"),
                ("SLEEP -1", "ERR invalid argument"),
                ("SLEEP 5x", "ERR invalid argument"),
                ("SLEEP", "ERR invalid argument"),
                ("SLEEP 99999999999999999999999", "ERR invalid argument"),
                ("", "ERR empty request"),
                ("FROB x", "ERR unknown op FROB"),
            ]
            for line, want in cases:
                self.assertEqual(request(s, r, line), want, line)
            # CRLF is accepted and stripped once.
            s.sendall(b"ECHO crlf\r\n")
            self.assertEqual(r.line(), "OK crlf")
            # Binary bytes and invalid UTF-8 in ECHO come back byte for byte.
            s.sendall(b"ECHO \xff\xfe\x00\x01z\n")
            self.assertEqual(r.line().encode("latin-1"), b"OK \xff\xfe\x00\x01z")
            s.close()
            self.assertEqual(srv.stop(), 0)

    def test_pipelined_replies_in_order_run_concurrently(self):
        with Server("--workers", "8") as srv:
            s = srv.connect()
            r = LineReader(s)
            lines = ["SLEEP 1800", "SLEEP 900", "ECHO a", "SLEEP 1350", "ECHO b", "SLEEP 0"]
            t0 = time.monotonic()
            s.sendall("".join(l + "\n" for l in lines).encode())
            got = r.lines(len(lines))
            elapsed = time.monotonic() - t0
            self.assertEqual(got, ["OK 1800", "OK 900", "OK a", "OK 1350", "OK b", "OK 0"])
            # Concurrent: about the longest sleep, far less than their sum (4.05 s).
            self.assertLess(elapsed, 3.0)
            self.assertGreaterEqual(elapsed, 1.75)

    def test_many_pipelined_echo_in_order(self):
        with Server() as srv:
            s = srv.connect()
            r = LineReader(s)
            n = 5000
            s.sendall("".join("ECHO %d\n" % i for i in range(n)).encode())
            got = r.lines(n)
            self.assertEqual(got, ["OK %d" % i for i in range(n)])

    def test_pipelined_echo_in_order_whatever_the_queue_size(self):
        """ECHO lines read together travel as units of up to 16, never more
        than the queue holds: with queues smaller than a unit, in every
        discipline, every line is answered, in order."""
        lines = "".join("ECHO %d\n" % i for i in range(2000)).encode()
        for size in ("1", "2", "3", "17"):
            for fairness in ("none", "address"):
                with self.subTest(queue=size, fairness=fairness), \
                        Server("--queue-size", size, "--fairness", fairness, "--workers", "1") as srv:
                    s = srv.connect()
                    s.sendall(lines)
                    self.assertEqual(LineReader(s).lines(2000), ["OK %d" % i for i in range(2000)])

    def test_over_long_line_is_refused_and_connection_goes_on(self):
        with Server("--max-line-bytes", "100") as srv:
            s = srv.connect()
            r = LineReader(s)
            s.sendall(b"ECHO " + b"x" * 95 + b"\n")          # 100 bytes: fits
            self.assertEqual(r.line(), "OK " + "x" * 95)
            s.sendall(b"ECHO " + b"x" * 96 + b"\n")          # 101 bytes
            self.assertEqual(r.line(), "ERR line too long")
            self.assertEqual(request(s, r, "ECHO after"), "OK after")
            # 8 MiB without a newline, in pieces: one error, memory does not follow.
            rss0 = srv.rss_kib()
            chunk = b"y" * 65536
            for _ in range(128):
                s.sendall(chunk)
            s.sendall(b"\nECHO still here\n")
            self.assertEqual(r.line(), "ERR line too long")
            self.assertEqual(r.line(), "OK still here")
            self.assertLess(srv.rss_kib() - rss0, 4096)


class Backpressure(unittest.TestCase):
    def occupy(self, srv, n, ms):
        """n connections each sending SLEEP ms, once the server (a
        MetricsServer) runs or queues them all; returns them (kept open)."""
        socks = []
        for _ in range(n):
            s = srv.connect()
            s.sendall(b"SLEEP %d\n" % ms)
            socks.append(s)
        self.assertTrue(wait_until(lambda: self.held(srv) == n, 10), self.held(srv))
        return socks

    @staticmethod
    def queue(srv):
        m = srv.scrape()
        return m.get("tpserver_queue_depth"), m.get("tpserver_queue_waiters")

    @staticmethod
    def held(srv):
        """Requests running or queued."""
        return sum(srv.pool_state()[:2])

    def test_busy_after_queue_timeout(self):
        with MetricsServer("--workers", "1", "--queue", "1", "--queue-timeout-ms", "1000") as srv:
            hold = self.occupy(srv, 2, 4000)  # one running, one queued: full
            s = srv.connect()
            r = LineReader(s)
            t0 = time.monotonic()
            s.sendall(b"SLEEP 1\n")  # not ECHO: cheap work may skip the wait (pool.cheap_workers)
            self.assertEqual(r.line(timeout=5), "ERR server busy")
            elapsed = time.monotonic() - t0
            self.assertGreaterEqual(elapsed, 0.9)
            self.assertLess(elapsed, 3.0)  # at its deadline, not when the worker frees (4 s)
            # Busy is not fatal: the connection remains usable.  Free the
            # pool: the holders reset (a FIN alone would still be owed its
            # replies), the queued SLEEP gives its place back at once and the
            # running one ends at its time; the next request is then served.
            for h in hold:
                h.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                h.close()
            s.sendall(b"SLEEP 5\n")
            self.assertEqual(r.line(timeout=10), "OK 5")

    def test_pipelined_lines_read_together_share_one_deadline(self):
        """A connection frames at most 64 lines a turn, and none while one of
        them waits for room, so the rest of a large read waits in the framer.
        Its lines' wait still counts from the read: 1280 pipelined lines read
        at once are all refused about queue_timeout_ms later, not one group
        of 64 per timeout (20 s)."""
        with MetricsServer("--workers", "1", "--cheap-workers", "0", "--queue", "2",
                           "--queue-timeout-ms", "1000") as srv:
            hold = self.occupy(srv, 3, 9000)  # one running, two queued: full
            s = srv.connect()
            r = LineReader(s)
            t0 = time.monotonic()
            s.sendall(b"SLEEP 1\n" * 1280)  # 10 KiB: one read
            self.assertEqual(set(r.lines(1280, timeout=30)), {"ERR server busy"})
            elapsed = time.monotonic() - t0
            self.assertGreaterEqual(elapsed, 0.9)
            self.assertLess(elapsed, 1.0 + 2.0 * SLACK)
            self.assertEqual(srv.scrape().get("tpserver_requests_total", op="sleep", result="busy_timeout"), 1280)
            for h in hold:
                h.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                h.close()

    def test_set_aside_lines_leave_on_time_while_others_wait(self):
        """As above, while other clients' requests keep coming and waiting:
        the lines set aside, pushed behind those newer waiters, still leave at
        their own deadline (they were refused 64 at a time, the last 2.6 s
        late, as each group waited for the newer waiters ahead of it)."""
        with MetricsServer("--workers", "1", "--cheap-workers", "0", "--queue", "5",
                           "--queue-timeout-ms", "1000") as srv:
            hold = self.occupy(srv, 6, 9000)  # one running, five queued: full
            others, stop = [], threading.Event()

            def trickle():  # a new client's SLEEP 1 every 0.3 s, each waiting for a place
                for i in range(40):
                    if stop.wait(0.3):
                        return
                    o = socket.create_connection(("127.0.0.1", srv.port), timeout=5,
                                                 source_address=("127.0.1.%d" % (i + 1), 0))
                    o.sendall(b"SLEEP 1\n")
                    others.append(o)
            t = threading.Thread(target=trickle, daemon=True)
            t.start()
            try:
                time.sleep(0.45)
                s = srv.connect()
                r = LineReader(s)
                t0 = time.monotonic()
                s.sendall(b"SLEEP 1\n" * 200)  # 1 600 bytes: one read
                self.assertEqual(set(r.lines(200, timeout=30)), {"ERR server busy"})
                elapsed = time.monotonic() - t0
            finally:
                stop.set()
                t.join(10)
                for o in others + hold:
                    o.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    o.close()
            self.assertGreaterEqual(elapsed, 0.9)
            self.assertLess(elapsed, 1.0 + 0.8 * SLACK)

    def test_a_unit_takes_only_the_room_there_is(self):
        """Three pipelined ECHOs read together with two places free: two go in
        as one unit, the third waits alone and is refused at its deadline.
        (A unit of three waited whole, and held up every waiter after it while
        the two places stayed free.)"""
        with MetricsServer("--workers", "1", "--cheap-workers", "0", "--queue", "4",
                           "--queue-timeout-ms", "500") as srv:
            hold = self.occupy(srv, 3, 1500)  # one running, two queued: two places free
            s = srv.connect()
            r = LineReader(s)
            s.sendall(b"ECHO a\nECHO b\nECHO c\n")
            self.assertTrue(wait_until(lambda: self.queue(srv) == (4, 1), 5), self.queue(srv))
            self.assertTrue(wait_until(lambda: self.queue(srv) == (4, 0), 5), self.queue(srv))  # c expired
            # In order, once the SLEEPs free the worker.
            self.assertEqual([r.line(timeout=20) for _ in range(3)], ["OK a", "OK b", "ERR server busy"])
            for h in hold:
                h.close()

    def test_waiter_admitted_when_space_frees_in_time(self):
        # No cheap lane: the waiter must wait for the place the SLEEP 600 frees.
        with MetricsServer("--workers", "1", "--cheap-workers", "0", "--queue", "1",
                           "--queue-timeout-ms", "3000") as srv:
            a, b, c = srv.connect(), srv.connect(), srv.connect()
            rc = LineReader(c)
            t0 = time.monotonic()
            a.sendall(b"SLEEP 600\n")
            self.assertTrue(wait_until(lambda: self.held(srv) == 1, 10))
            b.sendall(b"SLEEP 1\n")
            self.assertTrue(wait_until(lambda: self.held(srv) == 2, 10))  # the queue is full
            c.sendall(b"ECHO admitted\n")
            self.assertEqual(rc.line(timeout=5), "OK admitted")
            self.assertGreaterEqual(time.monotonic() - t0, 0.55)  # it waited for the SLEEP 600's end
            self.assertLess(time.monotonic() - t0, 3.5)  # and got its place before its deadline
            self.assertEqual(LineReader(a).line(), "OK 600")
            self.assertEqual(LineReader(b).line(), "OK 1")

    def test_each_waiter_keeps_its_own_deadline(self):
        with MetricsServer("--workers", "1", "--queue", "1", "--queue-timeout-ms", "1000") as srv:
            hold = self.occupy(srv, 2, 5000)
            c, d = srv.connect(), srv.connect()
            rc, rd = LineReader(c), LineReader(d)
            results = {}

            def wait(name, reader):
                reply = reader.line(timeout=5)
                results[name] = time.monotonic()
                results[name + " reply"] = reply

            t0 = time.monotonic()
            c.sendall(b"SLEEP 1\n")
            tc = threading.Thread(target=wait, args=("c", rc))
            tc.start()
            time.sleep(1.0)
            td0 = time.monotonic()
            d.sendall(b"SLEEP 1\n")
            td = threading.Thread(target=wait, args=("d", rd))
            td.start()
            tc.join(6)
            td.join(6)
            self.assertEqual(results.get("c reply"), "ERR server busy")
            self.assertEqual(results.get("d reply"), "ERR server busy")
            # c's second was not moved by d's arrival (that would end it at 2 s).
            self.assertGreaterEqual(results["c"] - t0, 0.9)
            self.assertLess(results["c"] - t0, 1.7)
            # d waited its own full second, counted from its own send (however
            # late the sleep above made it), not the rest of c's.
            self.assertGreaterEqual(results["d"] - td0, 0.9)
            self.assertLess(results["d"] - td0, 1.7)
            self.assertGreater(results["d"] - results["c"], 0.5)
            for h in hold:
                h.close()

    def test_reset_client_gives_its_places_back(self):
        # A fills the queue (one SLEEP running, 10 queued, 9 waiting) and
        # resets.  Its queued requests leave the queue at once, so B's
        # request is admitted and runs after A's running SLEEP; were they left
        # for the worker to skip, B would time out first behind them.
        with Server("--workers", "1", "--queue", "10", "--queue-timeout-ms", "500") as srv:
            a = srv.connect()
            a.sendall(b"SLEEP 1500\n" * 20)
            time.sleep(0.3)
            a.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            a.close()
            time.sleep(0.1)  # the server sees the reset
            b = srv.connect()
            t0 = time.monotonic()
            self.assertEqual(request(b, LineReader(b), "SLEEP 1", timeout=5), "OK 1")
            self.assertLess(time.monotonic() - t0, 3.0)
            b.close()

    def test_waiting_connection_does_not_stall_others(self):
        with MetricsServer("--workers", "2", "--cheap-workers", "0", "--queue", "1",
                           "--queue-timeout-ms", "2000") as srv:
            hold = self.occupy(srv, 3, 3000)   # 2 running + 1 queued
            w = srv.connect()
            w.sendall(b"SLEEP 1\n" * 50)  # parks, and its connection pauses
            w.settimeout(0.3)
            with self.assertRaises(socket.timeout):  # parked: no reply yet
                w.recv(100)
            # A fresh connection's invalid request is answered at once.
            s = srv.connect()
            r = LineReader(s)
            t0 = time.monotonic()
            self.assertEqual(request(s, r, "SLEEP x"), "ERR invalid argument")
            self.assertLess(time.monotonic() - t0, 0.5)
            for h in hold:
                h.close()


class CommandLine(unittest.TestCase):
    def run_tp(self, *args):
        return subprocess.run([TPSERVER, "--config", "/dev/null"] + list(args),
                              capture_output=True, text=True, timeout=10)

    def test_invalid_values_name_the_flag(self):
        for args, flag in [(["--workers", "0"], "--workers"), (["--port", "70000"], "--port"),
                           (["--queue", "abc"], "--queue"), (["--queue-timeout-ms", "-5"], "--queue-timeout-ms"),
                           (["--max-line-bytes", "1"], "--max-line-bytes"), (["--bogus"], "--bogus"),
                           (["--log-level", "loud"], "--log-level")]:
            p = self.run_tp(*args)
            self.assertNotEqual(p.returncode, 0, args)
            self.assertIn(flag, p.stderr, args)
            self.assertEqual(len(p.stderr.strip().splitlines()), 1, p.stderr)

    def test_help_and_version(self):
        p = self.run_tp("--help")
        self.assertEqual(p.returncode, 0)
        self.assertIn("--workers", p.stdout)
        self.assertIn("--queue", p.stdout)
        self.assertIn("--reload-and-wait PID", p.stdout)
        self.assertNotIn("default )", p.stdout)
        check_help_layout(self, p.stdout, 32)
        long = [l for l in p.stdout.splitlines() if l.startswith("      --max-connections-per-address")]
        self.assertEqual(long, ["      --max-connections-per-address N"], p.stdout)
        p = self.run_tp("--version")
        self.assertEqual(p.returncode, 0)
        self.assertRegex(p.stdout, r"^tpserver \d+\.\d+\.\d+")

    def test_a_shutdown_longer_than_the_units_stop_timeout_is_warned_of(self):
        # Without a drain it still starts (a file that always worked), warned.
        with Server("--shutdown-timeout-s", "30") as srv:
            srv.wait_log(r"ready:")
            self.assertRegex(srv.log(), r"warning: shutdown.timeout_s \(30\) is not under "
                                        r"shutdown.stop_timeout_s \(30\), the unit's TimeoutStopSec")
        with Server("--shutdown-timeout-s", "29") as srv:
            srv.wait_log(r"ready:")
            self.assertNotIn("stop_timeout_s", srv.log())

    def test_original_interface(self):
        # tpserver --host 127.0.0.1 --port P --workers 8 --queue 500, as users know it.
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        with Server("--host", "127.0.0.1", "--port", str(port), "--workers", "8", "--queue", "500",
                    wait=False) as srv:
            srv.port = srv.wait_log(r"listening on 127\.0\.0\.1:(\d+)", group=1, cast=int)
            self.assertEqual(srv.port, port)
            self.assertIn("8 workers, queue 500", srv.wait_log(r"ready: .*"))
            s = srv.connect()
            self.assertEqual(request(s, LineReader(s), "ECHO classic"), "OK classic")


if __name__ == "__main__":
    tplib.main(verbosity=2, warnings="ignore")
