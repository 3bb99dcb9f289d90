#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Fair scheduling of IPv6 clients, grouped by pool.fairness_ipv6_prefix
(PROXY headers name the addresses; tpserver_queue_largest_address shows
the grouping), and the per-address limits."""
import os
import re
import signal
import socket
import tempfile
import time
import unittest

import tplib
from metricslib import MetricsServer, queue_state
from tplib import SLACK, LineReader, Server, request, wait_until

PROXIED = ("--proxy-protocol", "--proxy-trusted", "127.0.0.1", "--workers", "1", "--cheap-workers", "0",
           "--max-sleep-ms", "600000")


# Two clients of one /64 (they differ from bit 64 on) and one of the /64
# next to it (it differs from them in bit 63 only).
A1, A2, B = "2001:db8:0:1::a", "2001:db8:0:1:ffff:ffff:ffff:fffb", "2001:db8::a"


class Ipv6Prefix(unittest.TestCase):
    """pool.fairness_ipv6_prefix: the PROXY protocol names IPv6 clients
    (loopback has only ::1); one worker is kept busy so that what they send
    stays queued, and tpserver_queue_largest_address tells how their
    requests are grouped into client addresses."""

    def named(self, srv, client):
        """A connection through the trusted proxy (127.0.0.1) for client, once its header is read."""
        s = srv.connect(timeout=30, source="127.0.0.1")
        s.sendall(b"PROXY TCP6 %s 2001:db8::ffff 40000 9000\r\nECHO named\n" % client.encode())
        self.assertEqual(LineReader(s).line(timeout=30), "OK named")
        return s

    def queued(self, srv, socks, counts):
        """Occupy the worker, have each socket queue its count of SLEEP 1;
        returns the queue's state once all are queued."""
        plug = srv.connect(timeout=30, source="127.0.0.2")  # not a proxy: served as is
        plug.sendall(b"SLEEP 600000\n")
        self.assertTrue(wait_until(lambda: srv.pool_state() == (1, 0, 0), 10 * SLACK), srv.pool_state())
        total = 0
        for s, n in zip(socks, counts):
            s.sendall(b"SLEEP 1\n" * n)
            total += n
        self.assertTrue(wait_until(lambda: queue_state(srv)["depth"] == total, 10 * SLACK), queue_state(srv))
        q = queue_state(srv)
        self.assertEqual(q["flows"], len(socks), q)
        return q

    def test_clients_are_grouped_by_prefix(self):
        # 8 + 8 from A1 and A2, 12 from B: the largest address holds 16 when
        # A1 and A2 are one (/64), 12 when every client is apart, 28 when all
        # are one.
        for prefix, largest in ((None, 16), ("63", 28), ("65", 12), ("128", 12)):
            with self.subTest(prefix=prefix), \
                    MetricsServer(*PROXIED, *(("--fairness-ipv6-prefix", prefix) if prefix else ())) as srv:
                socks = [self.named(srv, c) for c in (A1, A2, B)]
                q = self.queued(srv, socks, (8, 8, 12))
                self.assertEqual(q["largest_address"], largest, q)

    def test_reload_regroups_only_new_connections(self):
        # A1 and A2 connect under /64; after a reload to /128, A3 and A4 of
        # the same /64 connect.  The first two stay one address (5 + 5), the
        # other two are apart (7, 6): the largest holds 10, not 7 (all apart)
        # nor 23 (all one).
        a3, a4 = "2001:db8:0:1::c", "2001:db8:0:1::d"
        with tempfile.NamedTemporaryFile("w", suffix=".conf", delete=False) as f:
            f.write("pool = { fairness_ipv6_prefix = 64; };\n")
        self.addCleanup(os.unlink, f.name)
        with MetricsServer("--config", f.name, *PROXIED) as srv:
            old = [self.named(srv, c) for c in (A1, A2)]
            with open(f.name, "w") as conf:
                conf.write("pool = { fairness_ipv6_prefix = 128; };\n")
            srv.signal(signal.SIGHUP)
            self.assertTrue(wait_until(lambda: srv.scrape().get("tpserver_reloads_total", result="ok") == 1,
                                       10 * SLACK), srv.log())
            new = [self.named(srv, c) for c in (a3, a4)]
            q = self.queued(srv, old + new, (5, 5, 7, 6))
            self.assertEqual(q["largest_address"], 10, q)


class Limits(unittest.TestCase):
    def test_max_connections_per_address(self):
        with Server("--max-connections-per-address", "3") as srv:
            socks = [socket.create_connection(("127.0.0.1", srv.port), timeout=10,
                                              source_address=("127.0.0.2", 0)) for _ in range(4)]
            extra = socks.pop()
            for s in socks:
                self.assertEqual(request(s, LineReader(s), "ECHO in"), "OK in")
            self.assertEqual(LineReader(extra).line(), "ERR too many connections")
            extra.close()
            other = socket.create_connection(("127.0.0.1", srv.port), timeout=10,
                                             source_address=("127.0.0.3", 0))
            self.assertEqual(request(other, LineReader(other), "ECHO ok"), "OK ok")
            other.close()
            # A place freed by a connection of that address is free again.
            socks.pop(0).close()

            def again():
                with socket.create_connection(("127.0.0.1", srv.port), timeout=10,
                                              source_address=("127.0.0.2", 0)) as s:
                    try:
                        return request(s, LineReader(s), "ECHO back", timeout=5) == "OK back"
                    except (OSError, EOFError):
                        return False
            self.assertTrue(wait_until(again, 5))
            for s in socks:
                s.close()

    def test_the_refused_line_names_who_was_over_the_cap(self):
        # An operator reads which client hit limits.max_connections_per_address, not only how often.
        with Server("--max-connections-per-address", "1") as srv:
            held = []

            def connect(source):
                s = socket.create_connection(("127.0.0.1", srv.port), timeout=10, source_address=(source, 0))
                self.addCleanup(s.close)
                return s

            def refused(source):
                with connect(source) as s:
                    self.assertEqual(LineReader(s).line(), "ERR too many connections")

            for source in ("127.0.0.2", "127.0.0.3", "127.0.0.4"):
                held.append(connect(source))
                self.assertEqual(request(held[-1], LineReader(held[-1]), "ECHO in"), "OK in")
            refused("127.0.0.4")
            srv.wait_log(r"refused 1 connection \(1 over max_connections_per_address, all from 127\.0\.0\.4\)")
            # The next line comes 5 s after it and counts these four: three from .2, one from .3
            # (unless the machine stalled that long, and two lines count them).
            for source in ("127.0.0.2", "127.0.0.3", "127.0.0.2", "127.0.0.2"):
                refused(source)
            pattern = r"refused (\d+) connections? \(\1 over max_connections_per_address(.*)\) (?:since|in the)"

            def later():
                return re.findall(pattern, srv.log())[1:]
            self.assertTrue(wait_until(lambda: sum(int(n) for n, _ in later()) == 4, 15), srv.log())
            named = [who for _, who in later()]
            if len(named) == 1:
                self.assertEqual(named[0], " from 2 addresses, 3 from 127.0.0.2")
            for who in named:
                self.assertRegex(who, r"^(, all| from 2 addresses, \d) from 127\.0\.0\.[23]$")

    def test_max_wait_answers_busy_without_running(self):
        # 200 SLEEP 50 on 2 workers is 5 s of work; with a 300 ms bound on the
        # total wait most of it is answered ERR server busy at once.
        with Server("--workers", "2", "--max-wait-ms", "300") as srv, srv.connect() as s:
            t0 = time.monotonic()
            s.sendall(b"SLEEP 50\n" * 200)
            replies = LineReader(s).lines(200, timeout=30)
            took = time.monotonic() - t0
            busy = replies.count("ERR server busy")
            self.assertGreater(busy, 100, replies[:20])
            self.assertEqual(busy + replies.count("OK 50"), 200)
            self.assertLess(took, 3.0)
            # Counted apart from the refusals for lack of space.
            srv.wait_log(r"waited over pool.max_wait_ms", timeout=10)


if __name__ == "__main__":
    tplib.main()
