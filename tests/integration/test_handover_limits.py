#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Connections handed over through systemd's fd store when something is
short or wrong: a start that fails, damaged or another version's state,
the connection cap and a lowered max_connections, the grace of silent
clients, an unreachable notify socket, a proxy's connections.  The fake
systemd of handoverlib.py stands in for PID 1."""
import os
import signal
import tempfile
import time

import tplib
from handoverlib import HandoverCase
from tplib import LineReader, request, wait_until


class HandoverLimits(HandoverCase):
    def test_a_start_that_fails_leaves_the_connections_stored(self):
        # An upgrade whose workers cannot start (here their stacks do not fit the address
        # space; a TasksMax= too low does the same) exits before it adopts anything.
        if tplib.SANITIZED:
            self.skipTest("a sanitizer's shadow memory does not fit a limited address space")
        self.sd.start()
        a, ra = self.connect()
        self.assertEqual(request(a, ra, "ECHO x"), "OK x")
        self.assertEqual(self.sd.stop(), 0)
        stored = self.sd.names()
        self.assertEqual(self.sd.start("--workers", "1024", ready=False, limit_as=192 << 20).wait(30), 1)
        self.assertIn("cannot start 1024 workers", self.sd.log())
        self.assertEqual(self.sd.names(), stored)
        self.sd.start()
        self.assertEqual(request(a, ra, "ECHO y"), "OK y")

    def test_damaged_or_other_version_state_closes_cleanly(self):
        for damage, reason in ((lambda buf: buf[:20] + bytes([buf[20] ^ 1]) + buf[21:], "damaged"),
                               (lambda buf: buf[:4] + b"\x09\x00" + buf[6:], "another version")):
            with self.subTest(reason=reason):
                self.sd.start()
                a, ra = self.connect()
                self.assertEqual(request(a, ra, "ECHO x"), "OK x")
                self.assertEqual(self.sd.stop(), 0)
                with self.sd.lock:
                    i = next(k for k, (n, _) in enumerate(self.sd.store) if n.startswith("tps"))
                    name, fd = self.sd.store[i]
                    buf = os.pread(fd, 1 << 20, 0)
                    os.close(fd)
                    bad = os.memfd_create("bad")
                    os.write(bad, damage(buf))
                    self.sd.store[i] = (name, bad)
                self.sd.start()
                self.sd.wait_log(reason)
                self.assertIn("1 handed-over connections closed", self.sd.log())
                a.settimeout(10)
                self.assertEqual(a.recv(100), b"")
                self.assertTrue(wait_until(lambda: self.sd.names() == [], 5), self.sd.names())
                self.assertEqual(self.sd.stop(), 0)

    def test_over_the_cap_closed(self):
        self.sd.start("--keep-connections-max", "1")
        a, ra = self.connect()
        self.assertEqual(request(a, ra, "ECHO a"), "OK a")
        b, rb = self.connect()
        self.assertEqual(request(b, rb, "ECHO b"), "OK b")
        self.assertEqual(self.sd.stop(), 0)
        self.assertIn("1 connection closed, not handed over", self.sd.log())
        self.assertEqual(self.sd.names().count("tpc00"), 1)
        self.sd.start()
        kept = [s for s, r in ((a, ra), (b, rb)) if self._alive(s, r)]
        self.assertEqual(len(kept), 1)

    def test_over_a_lowered_max_connections_told_as_a_new_client(self):
        # Handed over, but the new instance allows fewer: the ones it cannot
        # take get ERR too many connections, as a new connection over the
        # limit does, not a bare close or a reset.
        self.sd.start()
        clients = [self.connect() for _ in range(3)]
        for i, (s, r) in enumerate(clients):
            self.assertEqual(request(s, r, "ECHO %d" % i), "OK %d" % i)
        self.assertEqual(self.sd.stop(), 0, self.sd.log())
        for i, (s, r) in enumerate(clients):
            s.sendall(b"ECHO again %d\n" % i)
        self.sd.start("--max-connections", "1")
        replies = [r.line(timeout=5) for s, r in clients]
        self.assertEqual(replies.count("ERR too many connections"), 2, replies)
        self.assertEqual(len([x for x in replies if x.startswith("OK again ")]), 1, replies)
        self.assertIn("2 handed-over connections closed", self.sd.log())

    def test_over_the_cap_a_silent_client_still_gets_its_grace(self):
        # Not handed over, a connection ends as without keeping: one accepted just
        # before SIGTERM that has not spoken has its first request served.
        self.sd.start("--keep-connections-max", "0")
        s, r = self.connect()
        # Accepted by this instance (connect() returns once the kernel has it).
        self.sd.wait_log(r"connection from")
        self.sd.proc.send_signal(signal.SIGTERM)
        self.sd.wait_log(r"shutting down")
        self.assertEqual(request(s, r, "ECHO first", timeout=5), "OK first")
        self.assertEqual(self.sd.proc.wait(30), 0, self.sd.log())

    def test_an_unreachable_notify_socket_keeps_nothing(self):
        # A NOTIFY_SOCKET that leads nowhere has no fd store behind it: the stop
        # is the one without keep_connections, and the log says why.
        nowhere = os.path.join(tempfile.mkdtemp(), "no-such-notify-socket")
        with tplib.Server("--keep-connections", "--log-level", "debug",
                          env={"NOTIFY_SOCKET": nowhere}) as srv:
            s = srv.connect()
            r = LineReader(s)
            srv.wait_log(r"connection from")
            srv.proc.send_signal(signal.SIGTERM)
            srv.wait_log(r"shutting down")
            self.assertEqual(request(s, r, "ECHO first", timeout=5), "OK first")
            self.assertEqual(srv.proc.wait(30), 0, srv.log())
            self.assertIn("notify socket cannot be reached (No such file or directory): "
                          "connections are not kept", srv.log())
            self.assertNotIn("stored one by one", srv.log())

    def test_a_proxy_s_silent_connection_still_gets_its_grace(self):
        # Its PROXY header not read yet, it cannot be handed over: it ends as without
        # keeping, its header and first request served within the grace.
        self.sd.start("--proxy-protocol", "--proxy-trusted", "127.0.0.1")
        s, r = self.connect()
        self.sd.wait_log(r"connection from")
        self.sd.proc.send_signal(signal.SIGTERM)
        self.sd.wait_log(r"shutting down")
        s.sendall(b"PROXY TCP4 10.1.2.3 10.0.0.1 5555 9000\r\nECHO first\n")
        self.assertEqual(r.line(timeout=5), "OK first")
        s.settimeout(5)
        self.assertEqual(s.recv(16), b"")
        self.assertEqual(self.sd.proc.wait(10), 0)

    def test_a_leave_before_the_hand_over_leaves_no_cork(self):
        # The leave (drain_s) corks each reply with its FIN; a connection handed
        # over meanwhile must reach the next instance uncorked (a corked socket
        # holds every small reply 200 ms).
        self.sd.start("--drain-s", "1")
        a, ra = self.connect()
        self.assertEqual(request(a, ra, "ECHO before"), "OK before")
        self.assertEqual(self.sd.stop(), 0, self.sd.log())
        self.sd.start()
        took = []
        for i in range(5):
            t0 = time.monotonic()
            self.assertEqual(request(a, ra, "ECHO %d" % i), "OK %d" % i)
            took.append(time.monotonic() - t0)
        self.assertLess(min(took), 0.1, took)

    def test_a_proxy_s_unnamed_connections_are_not_capped_at_adoption(self):
        # LOCAL and UNKNOWN headers leave the proxy's own address, which the
        # per-address cap never counted; a restart must not close them.
        args = ("--proxy-protocol", "--proxy-trusted", "127.0.0.1", "--max-connections-per-address", "1")
        self.sd.start(*args)
        conns = []
        for i in range(3):
            s, r = self.connect()
            s.sendall(b"PROXY UNKNOWN\r\n")
            self.assertEqual(request(s, r, "ECHO b%d" % i), "OK b%d" % i)
            conns.append((s, r))
        self.restart(*args)
        self.assertIn("adopted 3 connections", self.sd.log())
        for i, (s, r) in enumerate(conns):
            self.assertEqual(request(s, r, "ECHO a%d" % i), "OK a%d" % i)


if __name__ == "__main__":
    tplib.main()
