#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Keeping connections across a restart, without a booted systemd: lines
and work in flight crossing over, one stored socket or many, what the
kernel cannot give, a full fd table, clients that take no replies or are
gone meanwhile, and ten thousand idle connections.  The fake systemd of
handoverlib.py stands in for PID 1."""
import errno
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import unittest

import tplib
from handoverlib import HOLD_IN_FLIGHT, FakeSystemd, HandoverCase
from tplib import LineReader, request, wait_until


class Handover(HandoverCase):
    def test_partial_line_and_work_in_flight_cross_over(self):
        self.sd.start()
        a, ra = self.connect()
        b, rb = self.connect()
        quiet, _ = self.connect()
        self.assertEqual(request(a, ra, "ECHO one"), "OK one")
        # One send each, one read by this instance: the first line's reply
        # says the rest (a partial line; a SLEEP and what follows) was read too.
        a.sendall(b"ECHO mark-a\nECHO tw")
        b.sendall(b"ECHO mark-b\nSLEEP 300\nECHO after-sleep\n")
        self.assertEqual(ra.line(), "OK mark-a")
        self.assertEqual(rb.line(), "OK mark-b")
        self.sd.wait_log(r"connection from.*\n(.|\n)*connection from(.|\n)*connection from")
        self.sd.proc.send_signal(signal.SIGTERM)
        # Work already read is answered by the old instance, in order.
        self.assertEqual(rb.line(), "OK 300")
        self.assertEqual(rb.line(), "OK after-sleep")
        self.assertEqual(self.sd.proc.wait(30), 0, self.sd.log())
        old = self.sd.log()
        self.assertIn("handed 3 connections to systemd's fd store as tpc00", old)
        self.assertEqual(sorted(set(self.sd.names())), ["tpc00", "tps00"])
        # Between the instances: bytes wait in the socket.
        a.sendall(b"o\nECHO three\n")
        self.sd.start()
        self.assertEqual(ra.line(), "OK two")
        self.assertEqual(ra.line(), "OK three")
        self.assertEqual(request(b, rb, "ECHO b-again"), "OK b-again")
        self.assertEqual(request(quiet, LineReader(quiet), "ECHO quiet"), "OK quiet")
        self.assertIn("adopted 3 connections", self.sd.log())
        # Adopted fds leave the store: what this instance closes really closes.
        self.assertTrue(wait_until(lambda: self.sd.names() == [], 5), self.sd.names())
        # And the next generation is named apart.
        handed = self.restart()
        self.assertIn("as tpc01", handed)
        self.assertEqual(request(a, ra, "ECHO gen2"), "OK gen2")

    def test_the_connections_travel_in_one_stored_socket(self):
        """However many connections, the store holds two fds: the state and a
        socket the connections are in flight in, stored with FDPOLL=0 (its
        peer closes with the instance: polled, systemd would drop it)."""
        self.sd.start()
        clients = [self.connect() for _ in range(300)]  # more than one message of fds
        for i, (s, r) in enumerate(clients):
            self.assertEqual(request(s, r, "ECHO %d" % i), "OK %d" % i)
        self.assertEqual(self.sd.stop(), 0, self.sd.log())
        self.assertIn("handed 300 connections", self.sd.log())
        self.assertEqual(sorted(self.sd.names()), ["tpc00", "tps00"])
        with self.sd.lock:
            stored = [m for m in self.sd.messages if m.get("FDSTORE") == "1" and m.get("FDNAME") == "tpc00"]
        self.assertEqual([m.get("FDPOLL") for m in stored], ["0"])
        self.sd.start()
        self.assertIn("adopted 300 connections", self.sd.log())
        for i, (s, r) in enumerate(clients):
            self.assertEqual(request(s, r, "ECHO again %d" % i), "OK again %d" % i)
        self.assertTrue(wait_until(lambda: self.sd.names() == [], 5), self.sd.names())

    def test_connections_stored_one_by_one_are_adopted_too(self):
        self.sd.start()
        clients = [self.connect() for _ in range(3)]
        for i, (s, r) in enumerate(clients):
            self.assertEqual(request(s, r, "ECHO %d" % i), "OK %d" % i)
        self.assertEqual(self.sd.stop(), 0, self.sd.log())
        self.sd.unpack_carriers()
        self.assertEqual(sorted(self.sd.names()), ["tpc00", "tpc00", "tpc00", "tps00"])
        self.sd.start()
        self.assertIn("adopted 3 connections", self.sd.log())
        for i, (s, r) in enumerate(clients):
            self.assertEqual(request(s, r, "ECHO again %d" % i), "OK again %d" % i)
        self.assertTrue(wait_until(lambda: self.sd.names() == [], 5), self.sd.names())

    def test_connections_the_kernel_cannot_give_are_told(self):
        """An instance with too few fds for what it is handed gets the rest
        closed by the kernel (MSG_CTRUNC): the log says how many and why."""
        self.sd.start()
        clients = [self.connect() for _ in range(300)]
        for i, (s, r) in enumerate(clients):
            self.assertEqual(request(s, r, "ECHO %d" % i), "OK %d" % i)
        self.assertEqual(self.sd.stop(), 0, self.sd.log())
        self.sd.start(nofile=150)
        log = self.sd.log()
        adopted = int(re.search(r"adopted (\d+) connections", log).group(1))
        lost = re.search(r"(\d+) recorded connections did not arrive: out of file descriptors", log)
        self.assertIsNotNone(lost, log)
        self.assertGreater(adopted, 0, log)
        self.assertEqual(adopted + int(lost.group(1)), 300, log)
        answered = 0
        for i, (s, r) in enumerate(clients):
            try:
                answered += request(s, r, "ECHO again %d" % i) == "OK again %d" % i
            except (OSError, EOFError, AssertionError):
                pass
        self.assertEqual(answered, adopted)

    def test_a_carrier_that_cannot_be_read_is_told_with_its_error(self):
        """A stored carrier whose read fails loses the connections in it:
        the log names the read's error, not a store that never had them."""
        self.sd.start()
        a, ra = self.connect()
        self.assertEqual(request(a, ra, "ECHO x"), "OK x")
        self.assertEqual(self.sd.stop(), 0, self.sd.log())
        # In the carrier's place, a unix stream socket never connected: its read fails (EINVAL).
        broken = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        with self.sd.lock:
            i = next(k for k, (n, _) in enumerate(self.sd.store) if n == "tpc00")
            os.close(self.sd.store[i][1])
            self.sd.store[i] = ("tpc00", broken.detach())
        self.sd.start()
        self.sd.wait_log(r"adopted 0 connections")
        self.assertIn("1 recorded connections did not arrive: %s" % os.strerror(errno.EINVAL), self.sd.log())
        a.settimeout(10)
        self.assertEqual(a.recv(16), b"")  # closed with the carrier it was in
        self.assertTrue(wait_until(lambda: self.sd.names() == [], 5), self.sd.names())

    def test_a_full_fd_table_still_hands_over(self):
        """Out of fds at SIGTERM (clients up to RLIMIT_NOFILE), the hand-over
        still has the few fds of its own it needs: nothing is closed."""
        self.sd.start(nofile=64)
        clients = []
        for i in range(80):
            s, r = self.connect()
            try:
                ok = request(s, r, "ECHO %d" % i, timeout=1) == "OK %d" % i
            except (OSError, EOFError, AssertionError):
                ok = False
            if not ok:
                break
            clients.append((s, r))
        self.assertGreater(len(clients), 10)
        self.assertEqual(self.sd.stop(), 0, self.sd.log())
        self.assertIn("handed %d connections" % len(clients), self.sd.log())
        self.sd.start()
        for i, (s, r) in enumerate(clients):
            self.assertEqual(request(s, r, "ECHO again %d" % i), "OK again %d" % i)

    @unittest.skipUnless(os.geteuid() == 0 and shutil.which("setpriv"),
                         "needs root and setpriv (runs the daemon as nobody)")
    def test_connections_whose_state_is_not_stored_close_now(self):
        # fds in flight count against RLIMIT_NOFILE for an unprivileged user: with
        # the user's fds in flight 24 short of the limit (another process of its
        # holds them) and systemd slow to read, the carrier of 24 connections
        # passes, the state after it cannot.  Without their state the next
        # instance could only close them: they are removed from the store at
        # once, and the clients see EOF now.
        nobody, limit, n = 65534, 64, 24
        holder = subprocess.Popen(
            ["setpriv", "--reuid", str(nobody), "--regid", str(nobody), "--clear-groups", "/usr/bin/python3",
             "-c", HOLD_IN_FLIGHT, str(limit), str(n)], stdout=subprocess.PIPE, text=True)
        self.addCleanup(holder.stdout.close)
        self.addCleanup(holder.wait)
        self.addCleanup(holder.kill)
        self.assertRegex(holder.stdout.readline(), r"^in flight \d+$")
        self.sd.carrier_delay = 3
        self.sd.start(nofile=limit, uid=nobody)
        clients = [self.connect() for _ in range(n)]
        for i, (s, r) in enumerate(clients):
            self.assertEqual(request(s, r, "ECHO %d" % i), "OK %d" % i)
        self.assertEqual(self.sd.stop(), 0, self.sd.log())
        self.assertIn("failed (state not stored): %d closed" % len(clients), self.sd.log())
        removed = lambda: any(m.get("FDSTOREREMOVE") == "1" for m in list(self.sd.messages))
        self.assertTrue(wait_until(removed, 10), self.sd.messages)
        self.assertEqual(self.sd.names(), [])
        s, r = clients[0]
        s.settimeout(5)
        self.assertEqual(s.recv(16), b"")

    def test_another_version_s_stored_fd_is_closed_and_removed(self):
        # After a downgrade the store may hold a kind of fd this version does not
        # know: the start goes on, says so, and drops it from the store.
        r, w = os.pipe()
        self.addCleanup(os.close, w)
        with self.sd.lock:
            self.sd.store.append(("tpz07", r))
        self.sd.start()
        self.sd.wait_log(r"tpz07 in the fd store is of no kind this version knows: closed")
        self.assertTrue(wait_until(lambda: "tpz07" not in self.sd.names(), 10), self.sd.names())
        s, rd = self.connect()
        self.assertEqual(request(s, rd, "ECHO up"), "OK up")

    def test_adopted_connections_counted_apart_from_accepted(self):
        scrape = self.sd.metrics()

        def counts():
            m = scrape()
            return m.get("tpserver_connections_accepted_total"), m.get("tpserver_connections_adopted_total")
        self.sd.start("--metrics")
        clients = [self.connect() for _ in range(3)]
        for i, (s, r) in enumerate(clients):
            self.assertEqual(request(s, r, "ECHO %d" % i), "OK %d" % i)
        self.assertEqual(counts(), (3, 0))
        self.restart("--metrics")
        for i, (s, r) in enumerate(clients):
            self.assertEqual(request(s, r, "ECHO again %d" % i), "OK again %d" % i)
        self.assertEqual(counts(), (0, 3))
        self.connect()
        self.assertTrue(wait_until(lambda: counts() == (1, 3), 5), counts())

    def test_work_cut_at_the_deadline_answered_and_the_connection_kept(self):
        # Work cannot move: a SLEEP still running at shutdown.timeout_s is
        # answered ERR as without keeping, what follows it normally, and the
        # connection then goes over like any other.
        scrape = self.sd.metrics()
        self.sd.start("--shutdown-timeout-s", "1", "--metrics")
        a, ra = self.connect()
        self.assertEqual(request(a, ra, "ECHO a"), "OK a")
        a.sendall(b"SLEEP 5000\nECHO behind\n")
        self.assertTrue(wait_until(lambda: scrape().get("tpserver_workers_busy") == 1, 10))  # on a worker
        self.assertEqual(self.sd.stop(), 0, self.sd.log())
        self.assertEqual(ra.line(), "ERR server shutting down")
        self.assertEqual(ra.line(), "OK behind")
        self.assertIn("handed 1 connection to systemd", self.sd.log())
        self.sd.start("--metrics")
        self.assertEqual(request(a, ra, "ECHO still open"), "OK still open")

    def test_a_client_that_takes_no_replies_holds_the_hand_over_and_the_log_says_so(self):
        # Its replies cannot be written, so it cannot be handed over: every
        # connection waits for the deadline with it (the hand-over is one
        # step after every loop is done).  The log says why, then how many
        # were closed for it; the others are handed over as ever.
        self.sd.start("--shutdown-timeout-s", "2", "--max-unsent-kib", "64")
        a, ra = self.connect()
        self.assertEqual(request(a, ra, "ECHO a"), "OK a")
        hog = socket.create_connection(("127.0.0.1", self.sd.port), timeout=10)
        self.addCleanup(hog.close)
        hog.setblocking(False)
        line, last = b"ECHO " + b"h" * 995 + b"\n", time.monotonic()
        while time.monotonic() - last < 1.0:  # until the server stops reading it
            try:
                hog.send(line * 64)
                last = time.monotonic()
            except BlockingIOError:
                time.sleep(0.01)
        self.sd.proc.send_signal(signal.SIGTERM)
        self.sd.wait_log(r"warning: shutdown waits on 1 connection whose client does not read its replies")
        self.assertEqual(self.sd.proc.wait(15), 0)
        log = self.sd.log()
        self.assertIn("warning: shutdown timeout: closed 1 connection whose client did not read its replies", log)
        self.assertIn("handed 1 connection to systemd", log)
        self.sd.start()
        self.assertEqual(request(a, ra, "ECHO still open"), "OK still open")

    def test_client_gone_meanwhile_is_cleaned_up(self):
        self.sd.start()
        a, ra = self.connect()
        self.assertEqual(request(a, ra, "ECHO x"), "OK x")
        b, rb = self.connect()
        self.assertEqual(request(b, rb, "ECHO y"), "OK y")
        self.assertEqual(self.sd.stop(), 0)
        a.close()
        self.sd.start()
        self.sd.wait_log(r"client closed")
        self.assertEqual(request(b, rb, "ECHO still"), "OK still")
        # Closing the adopted connection reaches the client: EOF.
        self.assertEqual(self.sd.stop(), 0)
        self.sd.start("--no-keep-connections")
        self.assertEqual(request(b, rb, "ECHO third"), "OK third")
        self.sd.proc.send_signal(signal.SIGTERM)
        b.settimeout(10)
        self.assertEqual(b.recv(100), b"")


# Holds N idle connections in its own process (the test process holds the
# store), then, told to on stdin, sends one ECHO on each and checks the reply.
HOLDER = r"""
import socket, sys
port, n = int(sys.argv[1]), int(sys.argv[2])
conns = [socket.create_connection(("127.0.0.1", port), timeout=30) for _ in range(n)]
print("connected", flush=True)
sys.stdin.readline()
bad = 0
for i, s in enumerate(conns):
    s.sendall(b"ECHO %d\n" % i)
for i, s in enumerate(conns):
    buf = b""
    while not buf.endswith(b"\n"):
        d = s.recv(64)
        if not d:
            break
        buf += d
    bad += buf != b"OK %d\n" % i
print("bad", bad, flush=True)
"""


class Cleanup(unittest.TestCase):
    def test_a_failing_test_leaves_no_instance_running(self):
        """Every instance a test started is killed when it ends, also one
        it started before the last (a failed round of a subTest loop starts
        the next one's beside it): none outlives the test run."""
        procs = []
        self.addCleanup(lambda: [(p.kill(), p.wait()) for p in procs if p.poll() is None])

        class Failing(HandoverCase):
            def runTest(inner):
                procs.append(inner.sd.start())
                procs.append(inner.sd.start())
                inner.fail("a failure with two instances running")

        result = unittest.TestResult()
        Failing().run(result)
        self.assertEqual(len(result.failures), 1, result.errors)
        self.assertEqual(len(procs), 2)
        self.assertEqual([p.poll() for p in procs], [-signal.SIGKILL] * 2)


class ManyIdle(unittest.TestCase):
    def test_ten_thousand_idle_connections(self):
        import resource
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        # The test process holds the store (n) and the holder the clients (n).
        n = 10000
        if hard != resource.RLIM_INFINITY and hard < n + 200:
            self.skipTest("RLIMIT_NOFILE hard limit %d is below the %d fds this test needs" % (hard, n + 200))
        if soft != resource.RLIM_INFINITY and soft < n + 200:
            resource.setrlimit(resource.RLIMIT_NOFILE, (n + 200, hard))  # the server and holder inherit it
            self.addCleanup(resource.setrlimit, resource.RLIMIT_NOFILE, (soft, hard))
        sd = FakeSystemd()
        self.addCleanup(sd.close)
        sd.start("--max-connections", str(n + 10), "--keep-connections-max", str(n), "--log-level", "info")
        open_fds = lambda: len(os.listdir("/proc/%d/fd" % sd.proc.pid))  # noqa: E731
        base = open_fds()
        holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(sd.port), str(n)],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.addCleanup(lambda: (holder.kill(), holder.communicate()))
        self.assertEqual(holder.stdout.readline().strip(), "connected")
        # The kernel completed the handshakes; wait until the daemon has accepted them all
        # (a sanitized build accepts 10000 connections in seconds, not milliseconds).
        self.assertTrue(wait_until(lambda: open_fds() >= base + n, 60),
                        "the daemon accepted only %d of %d connections" % (open_fds() - base, n))
        t0 = time.monotonic()
        self.assertEqual(sd.stop(60), 0, sd.log()[-3000:])
        stored = time.monotonic() - t0
        self.assertIn("handed %d connections" % n, sd.log())
        names = sd.names()
        self.assertEqual(sorted(names), ["tpc00", "tps00"])
        fdnames = len(":".join(["tpserver.socket"] + names))
        self.assertLess(fdnames, 128 * 1024)
        t0 = time.monotonic()
        sd.start("--max-connections", str(n + 10), "--keep-connections-max", str(n), "--log-level", "info")
        self.assertIn("adopted %d connections" % n, sd.log())
        adopted = time.monotonic() - t0
        holder.stdin.write("go\n")
        holder.stdin.flush()
        self.assertEqual(holder.stdout.readline().strip(), "bad 0")
        self.assertTrue(wait_until(lambda: sd.names() == [], 10))
        print("\n%d connections: handed over in %.2f s, adopted in %.2f s, LISTEN_FDNAMES %d bytes"
              % (n, stored, adopted, fdnames), file=sys.stderr)


if __name__ == "__main__":
    tplib.main()
