# SPDX-License-Identifier: MIT
"""Integration tests of pool.fairness: one greedy client must not set
everyone else's latency.  A flooder pipelines SLEEPs from one address (over
one connection or many); a victim sends one request at a time, from another
address or from the flooder's own.  The bounds are generous (the expected
values are about 50 ms with fairness and seconds without); what is asserted
is the ordering, not exact times."""
import os
import signal
import socket
import tempfile
import threading
import time
import unittest

import tplib
from tplib import LineReader, Server, request, wait_until

WORKERS = "8"
QUEUE = "400"  # 400 SLEEP 40 on 8 workers: 2 s of backlog


class Flood:
    """nconns connections from source, each pipelining count copies of line
    and reading the replies, until stop()."""

    def __init__(self, srv, source, nconns, count, line):
        self.socks = [socket.create_connection(("127.0.0.1", srv.port), timeout=30,
                                               source_address=(source, 0)) for _ in range(nconns)]
        self.replies = [[] for _ in self.socks]
        self.threads = [threading.Thread(target=self._run, args=(i, count, line), daemon=True)
                        for i in range(nconns)]
        for t in self.threads:
            t.start()

    def _run(self, i, count, line):
        s = self.socks[i]
        try:
            s.sendall((line + "\n").encode() * count)
            reader = LineReader(s)
            while True:
                self.replies[i].append(reader.line(timeout=30))
        except (OSError, EOFError):
            pass  # stop() closed it

    def stop(self):
        for s in self.socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()
        for t in self.threads:
            t.join(timeout=10)

    def all_replies(self):
        return [r for rs in self.replies for r in rs]


def victim_latencies(srv, source, n, line="SLEEP 10"):
    """Send line n times, one at a time, from source; return the round trips in seconds."""
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=30, source_address=(source, 0))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    reader = LineReader(s)
    out = []
    for _ in range(n):
        t0 = time.monotonic()
        reply = request(s, reader, line, timeout=30)
        out.append(time.monotonic() - t0)
        assert reply.startswith("OK"), reply
    s.close()
    return out


def queue_filled(seconds=0.3):
    """Give the flood time to fill the queue (it is read as fast as it is admitted)."""
    time.sleep(seconds)


class Fairness(unittest.TestCase):
    def flooded_victim(self, fairness, flood_source, nconns, victim_source, n, flood_line="SLEEP 40",
                       line="SLEEP 10", cheap_workers="1"):
        with Server("--workers", WORKERS, "--queue-size", QUEUE, "--fairness", fairness,
                    "--cheap-workers", cheap_workers) as srv:
            flood = Flood(srv, flood_source, nconns, 1500 // nconns, flood_line)
            try:
                queue_filled()
                return victim_latencies(srv, victim_source, n, line)
            finally:
                flood.stop()

    # An ECHO victim of a SLEEP flood: every general worker is inside a
    # SLEEP 400 (they run in lockstep), so without the cheap-only worker each
    # ECHO waits for the next SLEEP to end, up to 400 ms; with it, at once.
    def test_echo_victim_of_a_sleep_flood_takes_the_cheap_lane(self):
        lat = self.flooded_victim("address", "127.0.0.2", 1, "127.0.0.3", 20, "SLEEP 400", "ECHO hi")
        self.assertLess(max(lat), 0.15, "victim latencies %s" % lat)

    def test_echo_victim_on_the_flooders_address_takes_the_cheap_lane(self):
        lat = self.flooded_victim("address", "127.0.0.2", 50, "127.0.0.2", 20, "SLEEP 400", "ECHO hi")
        self.assertLess(max(lat), 0.15, "victim latencies %s" % lat)

    def test_echo_victim_of_a_sleep_flood_waits_without_cheap_workers(self):
        lat = self.flooded_victim("address", "127.0.0.2", 1, "127.0.0.3", 5, "SLEEP 400", "ECHO hi",
                                  cheap_workers="0")
        self.assertGreater(max(lat), 0.15, "victim latencies %s" % lat)

    def test_victim_on_another_address_is_served_next(self):
        lat = self.flooded_victim("address", "127.0.0.2", 1, "127.0.0.3", 10)
        self.assertLess(max(lat), 1.0, "victim latencies %s" % lat)

    def test_victim_waits_behind_the_flood_without_fairness(self):
        lat = self.flooded_victim("none", "127.0.0.2", 1, "127.0.0.3", 1)
        self.assertGreater(max(lat), 1.2, "victim latencies %s" % lat)

    def test_victim_on_the_flooders_address(self):
        # 50 flooding connections of its own address: its connection had
        # nothing queued, so it goes ahead of theirs.
        lat = self.flooded_victim("address", "127.0.0.2", 50, "127.0.0.2", 10)
        self.assertLess(max(lat), 1.0, "victim latencies %s" % lat)

    def test_connection_mode(self):
        lat = self.flooded_victim("connection", "127.0.0.2", 1, "127.0.0.2", 10)
        self.assertLess(max(lat), 1.0, "victim latencies %s" % lat)

    def test_echo_victim_of_an_echo_flood(self):
        with Server("--workers", WORKERS, "--fairness", "address") as srv:
            flood = Flood(srv, "127.0.0.2", 4, 50000, "ECHO " + "x" * 32)
            try:
                queue_filled()
                lat = victim_latencies(srv, "127.0.0.3", 50, "ECHO hi")
            finally:
                flood.stop()
            lat.sort()
            self.assertLess(lat[len(lat) // 2], 0.2, "victim latencies %s" % lat)

    def test_flood_keeps_its_share_and_order(self):
        # Fairness gives the victim its turn without starving the flooder,
        # and each connection's replies stay in order.
        with Server("--workers", WORKERS, "--queue-size", QUEUE) as srv:
            with socket.create_connection(("127.0.0.1", srv.port), timeout=30,
                                          source_address=("127.0.0.2", 0)) as s:
                s.sendall(b"".join(b"ECHO %d\n" % i for i in range(3000)))
                reader = LineReader(s)
                lat = victim_latencies(srv, "127.0.0.3", 5)
                self.assertEqual(reader.lines(3000, timeout=30), ["OK %d" % i for i in range(3000)])
            self.assertLess(max(lat), 1.0)

    def test_reload_turns_fairness_on_with_work_queued(self):
        with tempfile.NamedTemporaryFile("w", suffix=".conf", delete=False) as f:
            f.write('pool = { fairness = "none"; };\n')
        try:
            with Server("--config", f.name, "--workers", WORKERS, "--queue-size", QUEUE) as srv:
                flood = Flood(srv, "127.0.0.2", 1, 1500, "SLEEP 40")
                try:
                    queue_filled()
                    with open(f.name, "w") as conf:
                        conf.write('pool = { fairness = "address"; };\n')
                    srv.signal(signal.SIGHUP)
                    srv.wait_log(r"configuration reloaded")
                    lat = victim_latencies(srv, "127.0.0.3", 5)
                finally:
                    flood.stop()
                # The queued work was kept and ran.
                replies = flood.all_replies()
                self.assertIn("OK 40", replies)
                self.assertEqual(set(replies) - {"OK 40", "ERR server busy"}, set())
                self.assertEqual(srv.log().count("reload failed"), 0)
            # Behind the 400 requests queued before the reload it would wait 2 s.
            self.assertLess(max(lat), 1.0, "victim latencies %s" % lat)
        finally:
            os.unlink(f.name)


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
