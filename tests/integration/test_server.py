# SPDX-License-Identifier: MIT
"""Integration tests of the core server: the real tpserver binary on an
ephemeral loopback port, driven over TCP."""
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
from tplib import (CHEAP_WORKERS, SLACK, TPSERVER, LineReader, Server, check_help_layout, cpu_seconds, read_to_eof,
                   request, wait_until)


def flood_until_blocked(sock, payload, quiet_s=1.0, limit=256 << 20):
    """Send payload over and over without reading, until no byte has gone
    out for quiet_s (the server stopped reading); returns the bytes sent."""
    sock.setblocking(False)
    block = payload * max(1, 65536 // len(payload))
    sent, rest, last = 0, b"", time.monotonic()
    while sent < limit:
        if not rest:
            rest = block
        try:
            n = sock.send(rest)
        except BlockingIOError:
            if time.monotonic() - last >= quiet_s:
                break
            time.sleep(0.01)
            continue
        sent += n
        rest = rest[n:]
        last = time.monotonic()
    sock.setblocking(True)
    return sent


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
            self.assertEqual(srv.threads(), before)
            self.assertEqual(before, 4 + 1 + CHEAP_WORKERS)  # workers + one event loop
            for s in socks:
                s.close()

    def test_several_event_loops(self):
        # Connections spread over three loops; a waiter parked by one loop
        # may be expired or admitted by another, and still answered in order.
        with Server("--io-threads", "3", "--workers", "2", "--queue", "2",
                    "--queue-timeout-ms", "700") as srv:
            self.assertEqual(srv.threads(), 2 + 3 + CHEAP_WORKERS)
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
            srv.wait_log(r"shutdown waits on 1 connections whose clients do not read their replies "
                         r"\(longest stalled: 127\.0\.0\.1:%d\); they are closed after shutdown\.timeout_s"
                         % hog.getsockname()[1], timeout=5)
            self.assertLess(time.monotonic() - t0, 1.5 * SLACK)
            self.assertEqual(srv.proc.wait(10), 0)
            log = srv.log()
            self.assertLess(log.index("shutdown waits on"), log.index("shutdown timeout reached"))
            self.assertIn("warning: shutdown timeout: closed 1 connections whose clients did not read their "
                          "replies", log)
            self.assertEqual(log.count("whose clients"), 2)

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
