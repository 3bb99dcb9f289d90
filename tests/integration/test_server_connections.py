#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Integration tests of the core server's connections and its stop: the
real tpserver binary on an ephemeral loopback port, driven over TCP."""
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time
import unittest

import tplib
from metricslib import MetricsServer
from tplib import (CHEAP_WORKERS, SLACK, LineReader, Server, assert_threads, cpu_seconds, flood_until_blocked,
                   read_to_eof, request, wait_until)


class Connections(unittest.TestCase):
    def test_200_simultaneous_clients(self):
        with Server("--workers", "16") as srv:
            errors = []
            barrier = threading.Barrier(200)

            def client(i):
                try:
                    s = srv.connect(timeout=20)
                    r = LineReader(s)
                    barrier.wait(20)
                    s.sendall(b"ECHO client-%d\nSLEEP 50\n" % i)
                    got = r.lines(2, timeout=20)
                    if got != ["OK client-%d" % i, "OK 50"]:
                        errors.append((i, got))
                    s.close()
                except Exception as e:  # noqa: BLE001 - reported below
                    errors.append((i, repr(e)))

            threads = [threading.Thread(target=client, args=(i,)) for i in range(200)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(60)
            self.assertEqual(errors, [])

    def test_thread_count_independent_of_connections(self):
        with Server("--workers", "4") as srv:
            before = srv.threads()
            socks = []
            for i in range(300):
                s = srv.connect()
                socks.append(s)
            for i, s in enumerate(socks):
                s.sendall(b"ECHO %d\n" % i)
            for i, s in enumerate(socks):
                self.assertEqual(LineReader(s).line(), "OK %d" % i)
            assert_threads(self, srv, before)
            self.assertEqual(before, 4 + 1 + CHEAP_WORKERS)  # workers + one event loop
            for s in socks:
                s.close()

    def test_several_event_loops(self):
        # Connections spread over three loops; a waiter parked by one loop
        # may be expired or admitted by another, and still answered in order.
        with Server("--io-threads", "3", "--workers", "2", "--queue", "2",
                    "--queue-timeout-ms", "700") as srv:
            assert_threads(self, srv, 2 + 3 + CHEAP_WORKERS)
            socks = [srv.connect() for _ in range(12)]
            for i, s in enumerate(socks):
                s.sendall(b"SLEEP 1500\nECHO %d\n" % i)
            outcomes = []
            for i, s in enumerate(socks):
                got = LineReader(s).lines(2, timeout=15)
                outcomes.append(got)
                self.assertIn(got[0], ("OK 1500", "ERR server busy"))
                self.assertIn(got[1], ("OK %d" % i, "ERR server busy"))
            flat = [x for o in outcomes for x in o]
            # 2 workers and 2 places: a few SLEEPs run, most requests time out waiting.
            self.assertGreaterEqual(flat.count("OK 1500"), 2)
            self.assertGreaterEqual(flat.count("ERR server busy"), 8)
            for i, s in enumerate(socks):
                self.assertEqual(request(s, LineReader(s), "ECHO again %d" % i), "OK again %d" % i)
            self.assertEqual(srv.stop(), 0)

    def test_idle_server_uses_no_cpu(self):
        # Loops and workers spin briefly after work; once it stops they must sleep.
        with Server() as srv:
            s = srv.connect()
            r = LineReader(s)
            for i in range(2000):
                s.sendall(b"ECHO %d\n" % i)
            r.lines(2000)
            time.sleep(0.5)

            before = cpu_seconds(srv.proc.pid)
            time.sleep(3)
            self.assertLess(cpu_seconds(srv.proc.pid) - before, 0.1)

    def test_max_connections(self):
        with Server("--max-connections", "5") as srv:
            socks = [srv.connect() for _ in range(5)]
            for s in socks:
                self.assertEqual(request(s, LineReader(s), "ECHO in"), "OK in")
            extra = srv.connect()
            r = LineReader(extra)
            self.assertEqual(r.line(), "ERR too many connections")
            with self.assertRaises(EOFError):
                r.line()
            socks[0].close()
            # Its place is given back once the server has seen the close.
            replies = []

            def back():
                again = srv.connect()
                try:
                    replies.append(request(again, LineReader(again), "ECHO back"))
                except (OSError, EOFError) as e:  # refused, and closed, meanwhile
                    replies.append(repr(e))
                return replies[-1] == "OK back"
            self.assertTrue(wait_until(back, 5, step=0.1), replies)

    def test_clients_vanishing_mid_request(self):
        with Server("--workers", "4") as srv:
            base_fds = srv.fds()
            for i in range(50):
                s = srv.connect()
                s.sendall(b"SLEEP 200\nECHO x\n" * 5)
                if i % 2:
                    # Reset instead of FIN.
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                s.close()
            # Still serving everyone else meanwhile.
            s = srv.connect()
            self.assertEqual(request(s, LineReader(s), "ECHO alive"), "OK alive")
            s.close()
            wait_until(lambda: srv.fds() <= base_fds, 10, step=0.1)
            self.assertEqual(srv.fds(), base_fds)
            self.assertIsNone(srv.proc.poll())
            self.assertEqual(srv.stop(), 0)

    def half_close(self, payload, replies):
        """Send payload, shut the sending side: replies, then EOF and nothing else."""
        with Server() as srv:
            s = srv.connect()
            s.sendall(payload)
            s.shutdown(socket.SHUT_WR)
            r = LineReader(s)
            self.assertEqual(r.lines(len(replies)), replies)
            s.settimeout(10)
            self.assertEqual(r.buf + read_to_eof(s), b"")

    def test_half_close_leaves_a_trailing_partial_line_unanswered(self):
        # PROTOCOL.md: bytes after the last line end when the client shuts
        # down its sending side are not a request and get no reply; the
        # replies to the lines before them are all sent first.
        self.half_close(b"SLEEP 200\nECHO a\nECHO partial", ["OK 200", "OK a"])

    def test_half_close_after_an_over_long_partial_line_answers_it(self):
        # The exception PROTOCOL.md names: a partial line already over
        # max_line_bytes (4096) was refused as it passed the limit, one byte
        # over too, unless that byte is the CR of a CRLF to come.
        self.half_close(b"ECHO a\nECHO " + b"x" * 4091, ["OK a"])
        self.half_close(b"ECHO a\nECHO " + b"x" * 4091 + b"\r", ["OK a"])
        self.half_close(b"ECHO a\nECHO " + b"x" * 4092, ["OK a", "ERR line too long"])
        self.half_close(b"ECHO a\nECHO " + b"x" * 4093, ["OK a", "ERR line too long"])

    def test_half_close_still_gets_replies(self):
        self.half_close(b"SLEEP 100\nECHO bye\n", ["OK 100", "OK bye"])


class Shutdown(unittest.TestCase):
    def test_sigterm_answers_in_flight_work_and_exits_0(self):
        with MetricsServer("--workers", "2") as srv:
            a = srv.connect()
            ra = LineReader(a)
            a.sendall(b"SLEEP 800\nSLEEP 800\nSLEEP 800\n")  # two run, one queued
            self.assertTrue(wait_until(lambda: srv.pool_state() == (2, 1, 0), 10), srv.pool_state())
            t0 = time.monotonic()
            srv.signal(signal.SIGTERM)
            srv.wait_log("shutting down")
            a.sendall(b"ECHO late\n")
            self.assertEqual(ra.lines(4, timeout=10),
                             ["OK 800", "OK 800", "OK 800", "ERR server shutting down"])
            self.assertEqual(srv.proc.wait(10), 0)
            self.assertLess(time.monotonic() - t0, 5)
            log = srv.log()
            self.assertIn("shutting down", log)
            self.assertIn("stopped", log)

    def test_a_port_bound_by_the_daemon_refuses_new_connections_from_sigterm_on(self):
        # No systemd holds the socket and no next instance will serve its
        # backlog: a connection made during the shutdown would wait unserved,
        # then be reset at the exit.  Refused at once, a load balancer retries
        # it on another host.
        with MetricsServer("--workers", "1") as srv:
            busy = srv.connect()
            busy.sendall(b"SLEEP 1500\n")  # the shutdown lasts until it is answered
            self.assertTrue(wait_until(lambda: srv.pool_state()[0] == 1, 10), srv.pool_state())
            srv.signal(signal.SIGTERM)
            srv.wait_log("shutting down")
            t0 = time.monotonic()
            with self.assertRaises(ConnectionRefusedError):
                socket.create_connection(("127.0.0.1", srv.port), timeout=5).close()
            self.assertLess(time.monotonic() - t0, 1)
            self.assertEqual(LineReader(busy).lines(1, timeout=10), ["OK 1500"])
            self.assertEqual(srv.proc.wait(10), 0)
            self.assertNotIn("accept on", srv.log())

    def test_silent_connection_gets_its_first_request_served(self):
        # Accepted just before SIGTERM, not yet spoken: to its client it is no
        # different from a connection the next instance would serve.
        with Server() as srv:
            busy = srv.connect()
            busy.sendall(b"SLEEP 700\n")
            silent = srv.connect()
            talked = srv.connect()
            self.assertEqual(request(talked, LineReader(talked), "ECHO before"), "OK before")
            time.sleep(0.1)
            srv.signal(signal.SIGTERM)
            srv.wait_log("shutting down")
            rs = LineReader(silent)
            self.assertEqual(request(silent, rs, "ECHO first"), "OK first")
            # It closes once answered; an idle connection that had spoken closes at once.
            with self.assertRaises(EOFError):
                rs.line(timeout=5)
            with self.assertRaises(EOFError):
                LineReader(talked).line(timeout=5)
            self.assertEqual(LineReader(busy).line(), "OK 700")
            self.assertEqual(srv.proc.wait(10), 0)

    def test_shutdown_timeout_cuts_long_sleeps(self):
        with MetricsServer("--shutdown-timeout-s", "1") as srv:
            a = srv.connect()
            a.sendall(b"SLEEP 10000\n")
            self.assertTrue(wait_until(lambda: srv.pool_state()[:2] == (1, 0), 10))  # on its worker
            t0 = time.monotonic()
            srv.signal(signal.SIGTERM)
            self.assertEqual(LineReader(a).line(timeout=10), "ERR server shutting down")
            cut = time.monotonic() - t0
            # It slept until the 1 s deadline, no longer than about that.
            self.assertGreaterEqual(cut, 0.9, "cut %.3f s after SIGTERM, before the deadline" % cut)
            self.assertLess(cut, 4)
            self.assertEqual(srv.proc.wait(10), 0)
            self.assertLess(time.monotonic() - t0, 4)

    def test_a_client_that_takes_no_replies_is_closed_a_second_after_the_deadline(self):
        # Its replies cannot go out, so its connection cannot close by itself:
        # the shutdown deadline (1 s) passes, a second later the connection is
        # closed anyway (the forced close), and tpserver exits 0.
        with Server("--shutdown-timeout-s", "1", "--max-unsent-kib", "64") as srv:
            hog = socket.socket()
            hog.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            hog.connect(("127.0.0.1", srv.port))
            srv.sockets.append(hog)
            sent = flood_until_blocked(hog, b"ECHO " + b"h" * 995 + b"\n", limit=64 << 20)
            self.assertLess(sent, 64 << 20, "the server kept reading a client that never reads")
            t0 = time.monotonic()
            srv.signal(signal.SIGTERM)
            bound = 2.0 + 1.5 * tplib.SLACK  # deadline + forced close + margin
            try:
                status = srv.proc.wait(bound)
            except subprocess.TimeoutExpired:
                self.fail("still running %.1f s after SIGTERM:\n%s" % (bound, srv.log()))
            took = time.monotonic() - t0
            self.assertEqual(status, 0)
            self.assertGreaterEqual(took, 1.9, "exited %.3f s after SIGTERM, before deadline + 1 s" % took)
            self.assertIn("shutdown timeout reached", srv.log())

    def test_the_log_says_a_client_that_takes_no_replies_holds_the_shutdown(self):
        # The stop waits for it until the deadline: the log says so when the
        # shutdown begins, with the count and the client, and how many the
        # forced close closed for it.  A client that reads is not counted.
        with Server("--shutdown-timeout-s", "3", "--max-unsent-kib", "64") as srv:
            reader = srv.connect()
            self.assertEqual(request(reader, LineReader(reader), "ECHO r"), "OK r")
            hog = socket.socket()
            hog.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            hog.connect(("127.0.0.1", srv.port))
            srv.sockets.append(hog)
            flood_until_blocked(hog, b"ECHO " + b"h" * 995 + b"\n", limit=64 << 20)
            t0 = time.monotonic()
            srv.signal(signal.SIGTERM)
            srv.wait_log(r"shutdown waits on 1 connection whose client does not read its replies "
                         r"\(longest stalled: 127\.0\.0\.1:%d\); it is closed after shutdown\.timeout_s"
                         % hog.getsockname()[1], timeout=5)
            self.assertLess(time.monotonic() - t0, 1.5 * SLACK)
            self.assertEqual(srv.proc.wait(10), 0)
            log = srv.log()
            self.assertLess(log.index("shutdown waits on"), log.index("shutdown timeout reached"))
            self.assertIn("warning: shutdown timeout: closed 1 connection whose client did not read its "
                          "replies", log)
            self.assertEqual(log.count("whose client "), 2)

    def test_a_pipelined_burst_after_sigterm_gets_every_reply_then_eof(self):
        # Told ERR server shutting down, a client that pipelined a burst is
        # still read to its end: every line gets its reply, in order, and the
        # connection ends with a FIN.  A close with its input unread would
        # send a reset, which drops the replies still queued.
        with Server("--shutdown-timeout-s", "5") as srv:
            a = srv.connect()
            first = [b"SLEEP 1000"] + [b"ECHO %05d" % i + b"y" * 1000 for i in range(300)]
            a.sendall(b"\n".join(first) + b"\n")
            time.sleep(0.3)
            srv.signal(signal.SIGTERM)
            srv.wait_log("shutting down")
            a.sendall(b"ECHO late\n" * 3000)
            time.sleep(1.5)  # replies queue up unread meanwhile
            a.settimeout(10)
            data, end = b"", None
            try:
                while True:
                    d = a.recv(1 << 20)
                    if not d:
                        end = "EOF"
                        break
                    data += d
            except OSError as e:
                end = repr(e)
            lines = data.split(b"\n")[:-1]
            self.assertEqual(end, "EOF", "%d replies, then %s" % (len(lines), end))
            self.assertEqual(len(lines), len(first) + 3000)
            self.assertEqual(lines[0], b"OK 1000")
            ok = [l for l in lines if l.startswith(b"OK ")]
            self.assertEqual(ok, [b"OK 1000"] + [b"OK " + l[5:] for l in first[1:len(ok)]])
            self.assertEqual(lines[len(ok):], [b"ERR server shutting down"] * (len(lines) - len(ok)))
            self.assertEqual(srv.proc.wait(10), 0)

    def test_a_client_that_keeps_streaming_does_not_hold_the_shutdown(self):
        # It reads every reply and never stops sending: there is always more
        # of its input to read.  Once answered ERR server shutting down,
        # nothing more of it is read, and it is closed once answered, not held
        # until the deadline (10 s) and the forced close.
        with Server() as srv:
            a = srv.connect()
            a.settimeout(20)
            stop = threading.Event()
            got = {"end": None}

            lines = tempfile.TemporaryFile()
            self.addCleanup(lines.close)
            lines.write(b"ECHO flood\n" * 200000)

            def stream():  # at the kernel's pace: its input never runs dry
                while not stop.is_set():
                    try:
                        lines.seek(0)
                        a.sendfile(lines)
                    except OSError:
                        return

            def drain():
                try:
                    while True:
                        d = a.recv(1 << 16)
                        if not d:
                            got["end"] = "EOF"
                            break
                except OSError as e:
                    got["end"] = repr(e)
            threads = [threading.Thread(target=stream), threading.Thread(target=drain)]
            for t in threads:
                t.start()
            self.addCleanup(lambda: (stop.set(), [t.join(20) for t in threads]))
            time.sleep(1)  # streaming, replies flowing
            t0 = time.monotonic()
            srv.signal(signal.SIGTERM)
            self.assertEqual(srv.proc.wait(15), 0)
            took = time.monotonic() - t0
            threads[1].join(10)
            self.assertLess(took, 3, "exited %.1f s after SIGTERM" % took)
            self.assertIsNotNone(got["end"], "the connection was not closed")
            self.assertNotIn("shutdown timeout reached", srv.log())

    def test_a_second_sigterm_cuts_the_wait_short_at_once(self):
        # Not at the next one-second tick: the signal brings the tick
        # forward. Four runs at a random phase of the tick, so that a
        # server that waited for it would be late in at least one.
        import random
        for run in range(4):
            with Server("--shutdown-timeout-s", "30") as srv:
                a = srv.connect()
                a.sendall(b"SLEEP 10000\n")
                time.sleep(0.1)
                srv.signal(signal.SIGTERM)
                srv.wait_log("shutting down")
                time.sleep(random.uniform(0.05, 1.05))
                t0 = time.monotonic()
                srv.signal(signal.SIGTERM)
                self.assertEqual(LineReader(a).line(timeout=10), "ERR server shutting down")
                late = time.monotonic() - t0
                self.assertLess(late, 0.3 * SLACK, "run %d: answered %.3f s after the second SIGTERM" % (run, late))
                self.assertEqual(srv.proc.wait(10), 0)
                self.assertIn("cutting the shutdown short", srv.log())

    def test_sigusr2_drains_and_sigusr1_undoes_without_stopping(self):
        with Server() as srv:
            a = srv.connect()
            ra = LineReader(a)
            self.assertEqual(request(a, ra, "ECHO before"), "OK before")
            srv.signal(signal.SIGUSR2)
            srv.wait_log("SIGUSR2: drained")
            self.assertIsNone(srv.proc.poll())
            self.assertEqual(request(a, ra, "ECHO drained"), "OK drained")
            srv.signal(signal.SIGUSR1)
            srv.wait_log("SIGUSR1: ready again")
            self.assertEqual(request(a, ra, "ECHO after"), "OK after")
            b = srv.connect()
            self.assertEqual(request(b, LineReader(b), "SLEEP 1"), "OK 1")


if __name__ == "__main__":
    tplib.main(verbosity=2, warnings="ignore")
