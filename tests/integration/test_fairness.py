#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Integration tests of pool.fairness: one greedy client must not set
everyone else's latency.  A flooder pipelines SLEEPs from one address (over
one connection or many); a victim sends one request at a time, from another
address or from the flooder's own.  Before the victim starts, the metrics
must show the flood holding the queue (full, with more waiting for a
place), and, where the victim is to be fast, still holding it when the
victim is done, so that a late, short or dead flood cannot pass for a fair
queue; a flood's own errors (a refused or reset connection) fail the test.
Each claim of fairness has its `none` counterpart, where the same victim
waits behind the flood (or is answered ERR server busy).  The bounds are
generous (the expected values are about 50 ms with fairness and seconds
without); what is asserted is the ordering, not exact times.

Also: backlogged addresses share the workers equally (against one address
of ten connections), an ECHO flood (which builds no backlog in any mode),
and each connection's replies in order.  IPv6 prefixes and the
per-address limits are in test_fairness_limits.py."""
import os
import signal
import socket
import tempfile
import threading
import time
import unittest

import tplib
from metricslib import MetricsServer, queue_state
from tplib import SLACK, LineReader, Server, request, wait_until

WORKERS = "8"
QUEUE = "400"  # 400 SLEEP 40 on 8 workers: 2 s of backlog
UNIT = 16      # places a unit of ECHO lines may leave free in a full queue


class Flood:
    """nconns connections from source, each pipelining count copies of line
    (a thread writes them, another reads the replies) until stop().  An error
    before stop() is kept: check() fails the test with it."""

    def __init__(self, srv, source, nconns, count, line):
        self.errors = []
        self.stopping = False
        self.socks = [socket.create_connection(("127.0.0.1", srv.port), timeout=60,
                                               source_address=(source, 0)) for _ in range(nconns)]
        self.replies = [[] for _ in self.socks]
        data = (line + "\n").encode() * count
        self.threads = []
        for i in range(nconns):
            self.threads.append(threading.Thread(target=self._send, args=(i, data), daemon=True))
            self.threads.append(threading.Thread(target=self._read, args=(i,), daemon=True))
        for t in self.threads:
            t.start()

    def _failed(self, i, what, e):
        if not self.stopping:
            self.errors.append("connection %d of the flood, %s: %r" % (i, what, e))

    def _send(self, i, data):
        try:
            self.socks[i].sendall(data)
        except OSError as e:
            self._failed(i, "writing", e)

    def _read(self, i):
        reader = LineReader(self.socks[i])
        try:
            while True:
                self.replies[i].append(reader.line(timeout=60))
        except (OSError, EOFError) as e:
            self._failed(i, "reading", e)

    def stop(self):
        self.stopping = True
        for s in self.socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()
        for t in self.threads:
            t.join(timeout=10)

    def check(self, test):
        test.assertEqual(self.errors, [], "the flood failed")

    def served(self):
        return sum(len(r) for r in self.replies)

    def all_replies(self):
        return [r for rs in self.replies for r in rs]


def victim_latencies(srv, source, n, line="SLEEP 10", busy=False):
    """Send line n times, one at a time, from source; return the round trips
    in seconds.  With busy, ERR server busy (no place within the queue
    timeout) is a reply too, counted as infinitely late."""
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=30, source_address=(source, 0))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    reader = LineReader(s)
    out = []
    for _ in range(n):
        t0 = time.monotonic()
        reply = request(s, reader, line, timeout=30)
        out.append(time.monotonic() - t0)
        if busy and reply == "ERR server busy":
            out[-1] = float("inf")
        else:
            assert reply.startswith("OK"), reply
    s.close()
    return out


def is_full(q):
    """Whether a flood holds the queue: admitted requests up to the bound
    (but for a unit's free places) and more waiting for a place."""
    return q["depth"] >= q["capacity"] - UNIT and q["waiters"] >= 1


def still_full(srv, timeout=1.0):
    """The queue's gauges once a flood is seen holding it, within timeout; else
    the last ones seen.  One scrape can fall between a batch of waiters being
    admitted and the loop's next read of the flood's lines; a flood that has
    ended cannot fill the queue again."""
    q = queue_state(srv)
    deadline = time.monotonic() + timeout * SLACK
    while not is_full(q) and time.monotonic() < deadline:
        time.sleep(0.02)
        q = queue_state(srv)
    return q


def queue_filled(srv, timeout=10.0):
    """Wait until the flood fills the queue (it is read as fast as it is admitted)."""
    if not wait_until(lambda: is_full(queue_state(srv)), timeout * SLACK):
        raise AssertionError("the flood did not fill the queue within %.0f s: %s"
                             % (timeout * SLACK, queue_state(srv)))


class Fairness(unittest.TestCase):
    def flooded_victim(self, fairness, flood_source, nconns, victim_source, n, flood_line="SLEEP 40",
                       line="SLEEP 10", cheap_workers="1", under=None, over=None):
        """A flood of 1500 flood_line over nconns connections fills the
        queue, then the victim sends line n times.  Asserts that its worst
        round trip is under `under` seconds, and that the flood still held
        the queue when it was done (a fast victim then owes nothing to a
        flood that ended early); or, for the counterparts, that it is over
        `over` seconds, where ERR server busy counts as infinitely late."""
        with MetricsServer("--workers", WORKERS, "--queue-size", QUEUE, "--fairness", fairness,
                           "--cheap-workers", cheap_workers) as srv:
            flood = Flood(srv, flood_source, nconns, 1500 // nconns, flood_line)
            try:
                queue_filled(srv)
                lat = victim_latencies(srv, victim_source, n, line, busy=over is not None)
                after = still_full(srv)
            finally:
                flood.stop()
            flood.check(self)
        if under is not None:
            self.assertLess(max(lat), under, "victim latencies %s" % lat)
            self.assertTrue(is_full(after), "the flood no longer held the queue when the victim was done: %s"
                            % after)
        if over is not None:
            self.assertGreater(max(lat), over, "victim latencies %s" % lat)

    # An ECHO victim of a SLEEP flood: every general worker is inside a
    # SLEEP 400 (they run in lockstep), so without the cheap-only worker each
    # ECHO waits for the next SLEEP to end, up to 400 ms; with it, at once.
    def test_echo_victim_of_a_sleep_flood_takes_the_cheap_lane(self):
        self.flooded_victim("address", "127.0.0.2", 1, "127.0.0.3", 20, "SLEEP 400", "ECHO hi", under=0.15)

    def test_echo_victim_on_the_flooders_address_takes_the_cheap_lane(self):
        self.flooded_victim("address", "127.0.0.2", 50, "127.0.0.2", 20, "SLEEP 400", "ECHO hi", under=0.15)

    def test_echo_victim_of_a_sleep_flood_waits_without_cheap_workers(self):
        self.flooded_victim("address", "127.0.0.2", 1, "127.0.0.3", 5, "SLEEP 400", "ECHO hi",
                            cheap_workers="0", over=0.15)

    def test_the_lane_serves_what_the_only_busy_workers_pop_leaves(self):
        # One general worker: its pop of the second SLEEP makes the ECHO the
        # queue's head while it is about to sleep again; the idle cheap worker
        # must be woken for it then (at 0.3 s), not after that SLEEP (0.6 s).
        for fairness in ("none", "address"):
            with Server("--workers", "1", "--cheap-workers", "1", "--fairness", fairness) as srv:
                a, b = srv.connect(), srv.connect()
                t0 = time.monotonic()
                a.sendall(b"SLEEP 300\nSLEEP 300\n")
                time.sleep(0.05)
                self.assertEqual(request(b, LineReader(b), "ECHO x", timeout=5), "OK x")
                took = time.monotonic() - t0
                self.assertLess(took, 0.5, fairness)

    def test_an_address_that_never_queues_pays_its_debt(self):
        # 7 connections from one address, each with one SLEEP 400 running at a
        # time, spread so that none queues behind another: each used to start
        # with a fresh quantum and the address held 7 of the 8 workers against
        # a pipelining victim on another address (1.1 workers). Its debt now
        # outlives its idle moments: about half the pool each.
        with Server("--workers", WORKERS) as srv:
            stop = threading.Event()
            done = []

            def victim():
                s = srv.connect(source="127.0.0.2")
                r = LineReader(s)
                s.sendall(b"SLEEP 20\n" * 64)
                while not stop.is_set():
                    r.line(timeout=10)
                    done.append(time.monotonic())
                    s.sendall(b"SLEEP 20\n")

            def attacker(i):
                s = srv.connect(source="127.0.0.3")
                r = LineReader(s)
                time.sleep(0.4 / 7 * i)
                while not stop.is_set():
                    s.sendall(b"SLEEP 400\n")
                    r.line(timeout=10)

            threads = [threading.Thread(target=victim)] + [
                threading.Thread(target=attacker, args=(i,)) for i in range(7)]
            for t in threads:
                t.start()
            time.sleep(1.5)  # the attacker's debt builds up
            t0, n0 = time.monotonic(), len(done)
            time.sleep(2.0)
            workers = (len(done) - n0) * 0.020 / (time.monotonic() - t0)
            stop.set()
            for t in threads:
                t.join(15)
        self.assertGreater(workers, 2.5, "the victim had %.1f workers of 8" % workers)

    def test_two_floods_share_the_pool_whatever_their_requests_cost(self):
        # A full queue, two addresses flooding: one with SLEEP 20s, one with
        # SLEEP 1s.  A place that frees went to the address holding the least
        # queued cost, waiters included, so the costlier one lost them all
        # (0.15 of the pool, and all the refusals); counting only its next
        # waiter, each keeps its share of admitted work, and of the pool.
        with Server("--workers", "4", "--cheap-workers", "0", "--queue-size", "100") as srv:
            stop = threading.Event()
            time_used = {}

            def flood(source, ms, window):
                s = srv.connect(source=source)
                r = LineReader(s)
                s.sendall(b"SLEEP %d\n" % ms * window)
                used = 0
                while not stop.is_set():
                    line = r.line(timeout=10)
                    used += ms if line.startswith("OK") else 0
                    s.sendall(b"SLEEP %d\n" % ms)
                time_used[source] = used

            threads = [threading.Thread(target=flood, args=("127.0.0.2", 20, 200)),
                       threading.Thread(target=flood, args=("127.0.0.3", 1, 500))]
            for t in threads:
                t.start()
            time.sleep(4)
            stop.set()
            for t in threads:
                t.join(15)
        share = time_used["127.0.0.2"] / (time_used["127.0.0.2"] + time_used["127.0.0.3"])
        self.assertGreater(share, 0.35, time_used)

    def test_work_answered_unrun_leaves_no_debt(self):
        # A SLEEP 60000 refused by pool.max_wait_ms never ran: its cost goes
        # back, else its address, which keeps its debt while away, would then
        # wait for a minute of another address's backlogged work.
        with Server("--workers", "1", "--cheap-workers", "0", "--max-wait-ms", "200",
                    "--max-sleep-ms", "100000") as srv:
            c = srv.connect(source="127.0.0.4")
            c.sendall(b"SLEEP 300\n")  # the worker, while A's request waits past 200 ms
            time.sleep(0.05)
            a = srv.connect(source="127.0.0.2")
            ra = LineReader(a)
            self.assertEqual(request(a, ra, "SLEEP 60000", timeout=5), "ERR server busy")
            stop = threading.Event()
            b = srv.connect(source="127.0.0.3")

            def flood():  # always some queued, none waiting past max_wait_ms
                r = LineReader(b)
                b.sendall(b"SLEEP 20\n" * 5)
                while not stop.is_set():
                    r.line(timeout=10)
                    b.sendall(b"SLEEP 20\n")

            t = threading.Thread(target=flood)
            t.start()
            try:
                time.sleep(0.15)
                for _ in range(3):
                    t0 = time.monotonic()
                    self.assertEqual(request(a, ra, "SLEEP 1", timeout=5), "OK 1")
                    self.assertLess(time.monotonic() - t0, 0.5)
            finally:
                stop.set()
                t.join(15)

    def test_a_lighter_address_in_the_floods_bucket_is_served(self):
        """A flood of SLEEP 1 over 20 connections from 127.0.0.2 holds the
        queue (400 ms of queued work); the victim, one SLEEP 300 at a time,
        holds less but within the same power of 4 ([262, 1049) ms).  Each
        of its requests is admitted (an entry whose waiter was admitted
        goes behind the others of its bucket); while the flood stayed first
        in the bucket, the victim's first was refused ERR server busy."""
        with MetricsServer("--workers", WORKERS, "--queue-size", QUEUE) as srv:
            flood = Flood(srv, "127.0.0.2", 20, 1500, "SLEEP 1")
            try:
                queue_filled(srv)
                lat = victim_latencies(srv, "127.0.0.3", 3, "SLEEP 300", busy=True)
                after = still_full(srv)
            finally:
                flood.stop()
            flood.check(self)
        self.assertNotIn(float("inf"), lat, "victim latencies %s (inf: ERR server busy)" % lat)
        self.assertTrue(is_full(after), "the flood no longer held the queue when the victim was done: %s"
                        % after)

    def test_victim_on_another_address_is_served_next(self):
        self.flooded_victim("address", "127.0.0.2", 1, "127.0.0.3", 10, under=1.0)

    def test_victim_waits_behind_the_flood_without_fairness(self):
        # The counterpart of the one above: behind 400 SLEEP 40 on 8 workers.
        self.flooded_victim("none", "127.0.0.2", 1, "127.0.0.3", 1, over=1.2)

    def test_victim_on_the_flooders_address(self):
        # 50 flooding connections of its own address: its connection had
        # nothing queued, so it goes ahead of theirs.
        self.flooded_victim("address", "127.0.0.2", 50, "127.0.0.2", 10, under=1.0)

    def test_victim_on_the_flooders_address_waits_without_fairness(self):
        # Behind 400 SLEEP 40 and the 50 connections' waiters: past its
        # queue timeout (1 s), so usually answered ERR server busy.
        self.flooded_victim("none", "127.0.0.2", 50, "127.0.0.2", 1, over=1.2)

    def test_connection_mode(self):
        # The victim shares the flooder's address: by connection it is
        # served next all the same (test_victim_on_the_flooders_address
        # and its counterpart cover address mode and none).
        self.flooded_victim("connection", "127.0.0.2", 1, "127.0.0.2", 10, under=1.0)

    def share_of_one_connection(self, fairness, more_than=None, less_than=None):
        """An address of 10 connections floods SLEEP 20 and fills the queue;
        then an address of 1 connection floods the same.  Asserts the lone
        connection's share of the next 300 replies (at 400 a second), and
        that both floods still held the queue at the end."""
        with MetricsServer("--workers", WORKERS, "--queue-size", QUEUE, "--fairness", fairness) as srv:
            many = Flood(srv, "127.0.0.3", 10, 150, "SLEEP 20")
            one = None
            try:
                queue_filled(srv)
                b0 = many.served()  # what the ten got before the lone one started
                one = Flood(srv, "127.0.0.2", 1, 1500, "SLEEP 20")
                self.assertTrue(wait_until(lambda: one.served() + many.served() - b0 >= 300, 20 * SLACK),
                                (one.served(), many.served() - b0))
                a, b = one.served(), many.served() - b0
                after = still_full(srv)
            finally:
                many.stop()
                if one:
                    one.stop()
            many.check(self)
            one.check(self)
        self.assertEqual(set(one.all_replies() + many.all_replies()), {"OK 20"})
        msg = "the lone connection's share: %d of %d" % (a, a + b)
        if more_than is not None:
            self.assertGreater(a / (a + b), more_than, msg)
        if less_than is not None:
            self.assertLess(a / (a + b), less_than, msg)
        self.assertTrue(is_full(after), "the floods no longer held the queue: %s" % after)

    def test_backlogged_addresses_share_the_workers_equally(self):
        # Shares are of worker time by address: one connection against ten
        # of another address gets about half (0.52 measured).
        self.share_of_one_connection("address", more_than=0.35)

    def test_backlogged_connections_share_the_workers_in_connection_mode(self):
        # By connection it is one of 11, and its paused batch (64 lines)
        # counts against it when a place frees: 0 in this window (about
        # 1/10 later on); anyway far from half.
        self.share_of_one_connection("connection", less_than=0.2)

    def test_a_late_address_waits_its_turn_without_fairness(self):
        # The counterpart: in arrival order, behind the other address's 400
        # queued (a second of work), it gets nothing in this window.
        self.share_of_one_connection("none", less_than=0.2)

    def test_echo_flood_leaves_an_echo_victim_no_backlog_in_any_mode(self):
        # Not a test of the fair queue: ECHO is cheap, the workers take it as
        # fast as the loop reads it, and the queue holds a few turns'
        # batches at most (0 to 256 requests measured), so the victim waits
        # for the loop's turn (64 lines per connection), with fairness or
        # without.  What is checked is that it stays so while the flood is
        # being answered.
        total = 4 * 50000
        for fairness in ("address", "none"):
            with self.subTest(fairness=fairness), \
                    Server("--workers", WORKERS, "--fairness", fairness) as srv:
                flood = Flood(srv, "127.0.0.2", 4, total // 4, "ECHO " + "x" * 32)
                try:
                    self.assertTrue(wait_until(lambda: flood.served() >= 1000, 10 * SLACK), flood.errors)
                    before = flood.served()
                    lat = victim_latencies(srv, "127.0.0.3", 50, "ECHO hi")
                    after = flood.served()
                finally:
                    flood.stop()
                flood.check(self)
                self.assertGreater(after, before, "the flood was not answered during the victim's requests")
                self.assertLess(after, total, "the flood was over before the victim was done")
                lat.sort()
                self.assertLess(lat[len(lat) // 2], 0.2, "victim latencies %s" % lat)

    def test_each_connections_replies_stay_in_order(self):
        # Not a test of sharing: three connections of one address pipeline
        # 3000 lines at once, ECHOs (taken in batches across flows, by
        # several workers at once, some by the cheap lane) with a SLEEP 1
        # every 100 (taken alone); each connection's replies still leave in
        # its order, in every mode.
        def line(k, i):
            return "SLEEP 1" if i % 100 == 99 else "ECHO %d-%d" % (k, i)

        def reply(k, i):
            return "OK 1" if i % 100 == 99 else "OK %d-%d" % (k, i)

        for fairness in ("address", "connection", "none"):
            with self.subTest(fairness=fairness), \
                    Server("--workers", WORKERS, "--queue-size", QUEUE, "--fairness", fairness) as srv:
                socks = [srv.connect(timeout=30, source="127.0.0.2") for _ in range(3)]
                for k, s in enumerate(socks):
                    s.sendall("".join(line(k, i) + "\n" for i in range(3000)).encode())
                for k, s in enumerate(socks):
                    self.assertEqual(LineReader(s).lines(3000, timeout=30), [reply(k, i) for i in range(3000)])

    def test_reload_turns_fairness_on_with_work_queued(self):
        with tempfile.NamedTemporaryFile("w", suffix=".conf", delete=False) as f:
            f.write('pool = { fairness = "none"; };\n')
        try:
            with MetricsServer("--config", f.name, "--workers", WORKERS, "--queue-size", QUEUE) as srv:
                flood = Flood(srv, "127.0.0.2", 1, 1500, "SLEEP 40")
                try:
                    queue_filled(srv)
                    with open(f.name, "w") as conf:
                        conf.write('pool = { fairness = "address"; };\n')
                    srv.signal(signal.SIGHUP)
                    srv.wait_log(r"configuration reloaded")
                    lat = victim_latencies(srv, "127.0.0.3", 5)
                    after = still_full(srv)
                finally:
                    flood.stop()
                flood.check(self)
                # The queued work was kept and ran.
                replies = flood.all_replies()
                self.assertIn("OK 40", replies)
                self.assertEqual(set(replies) - {"OK 40", "ERR server busy"}, set())
                self.assertEqual(srv.log().count("reload failed"), 0)
            # Behind the 400 requests queued before the reload it would wait 2 s
            # (test_victim_waits_behind_the_flood_without_fairness).
            self.assertLess(max(lat), 1.0, "victim latencies %s" % lat)
            self.assertTrue(is_full(after), "the flood no longer held the queue: %s" % after)
        finally:
            os.unlink(f.name)


if __name__ == "__main__":
    tplib.main()
