# SPDX-License-Identifier: MIT
"""Integration tests of the metrics endpoint: the real tpserver with
--metrics-port 0, scraped over HTTP after known traffic (exact counts,
histogram counts, gauges back to zero), process metrics against /proc,
the queue's flows and largest address in each fairness mode, watchdog
episodes, requests refused by a shutdown, HTTP errors, hostile scrapers,
the stats line, reload counters and the metrics socket passed by
systemd-socket-activate.  The real Prometheus runs in test_prometheus.py."""
import json
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest

from metricslib import MetricsServer, http, parse
import tplib
from tplib import (CHEAP_WORKERS, SANITIZED, SLACK, TPCLIENT, TPSERVER, LineReader, read_to_eof, request,
                   wait_until)

HISTOGRAMS = ["tpserver_request_admission_wait_seconds", "tpserver_request_queue_wait_seconds",
              "tpserver_request_service_seconds", "tpserver_request_duration_seconds"]


def idle(srv):
    m = srv.scrape()
    return all(m.get(g) == 0 for g in ("tpserver_queue_depth", "tpserver_queue_waiters",
                                       "tpserver_workers_busy")) and m


def statm(pid):
    """(virtual, resident) memory of pid in bytes, from /proc/PID/statm."""
    with open("/proc/%d/statm" % pid) as f:
        vm, rss = f.read().split()[:2]
    page = os.sysconf("SC_PAGE_SIZE")
    return int(vm) * page, int(rss) * page


def burn_cpu(srv, seconds, timeout=10.0):
    """Echo 4 KB lines through srv, 50 at a time (their replies fit the socket
    buffers unread), until its process has used `seconds` of CPU time, most of
    it the system's (socket I/O).  Returns the CPU time /proc says."""
    line = b"ECHO " + b"x" * 4000 + b"\n"
    want = (len(line) - 2) * 50  # "OK " and the text for each "ECHO "
    deadline = time.monotonic() + timeout
    with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as s:
        while tplib.cpu_seconds(srv.proc.pid) < seconds and time.monotonic() < deadline:
            s.sendall(line * 50)
            got = 0
            while got < want:
                chunk = s.recv(1 << 20)
                if not chunk:
                    raise EOFError("tpserver closed the connection")
                got += len(chunk)
    return tplib.cpu_seconds(srv.proc.pid)


def replies_left_unread(srv):
    """A connection that pipelines 16 MB of ECHOs and reads none of the
    replies, once tpserver has stopped reading it (its replies fill the
    socket buffers, and then limits.max_unsent_kib) with nothing of it
    queued.  A connection whose replies cannot be written keeps a shutting
    down server up until 1 s past the shutdown deadline (before it is
    closed by force): time for a scrape after the deadline.  Returns the
    thread that sends, which ends when the connection does."""
    x = socket.socket()
    x.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    x.settimeout(30)
    x.connect(("127.0.0.1", srv.port))
    srv.sockets.append(x)
    data = (b"ECHO " + b"x" * 4000 + b"\n") * 4000

    def send():
        try:
            x.sendall(data)
        except OSError:
            pass  # closed by the server (or the test) with data still to send
    t = threading.Thread(target=send, daemon=True)
    t.start()

    def stopped_reading():
        m0 = idle(srv)
        time.sleep(0.2)
        m1 = idle(srv)
        received = m1 and m1.get("tpserver_received_bytes_total")
        return m0 and m1 and m0.get("tpserver_received_bytes_total") == received < len(data)
    assert wait_until(stopped_reading, 15), srv.scrape_text()
    return t


class Counts(unittest.TestCase):
    def check_histograms(self, m):
        """Cumulative buckets never go down; +Inf equals _count for every series."""
        for name in HISTOGRAMS:
            self.assertEqual(m.types[name], "histogram")
            for labels, count in m.samples[name + "_count"]:
                b = m.buckets(name, **labels)
                self.assertEqual(len(b), 22)
                self.assertEqual(b[-1], ("+Inf", count))
                self.assertEqual([v for _, v in b], sorted(v for _, v in b), name)

    def test_exact_counts_after_known_traffic(self):
        with MetricsServer("--workers", "4") as srv:
            m0 = srv.scrape()
            self.assertEqual(m0.get("tpserver_requests_total", op="echo", result="ok"), 0)
            s = srv.connect()
            r = LineReader(s)
            n = 500
            lines = ["ECHO m%d" % i for i in range(n)] + ["SLEEP 10"] * 3 + ["FROB x", "", "SLEEP x"]
            data = "".join(l + "\n" for l in lines).encode()
            s.sendall(data)
            replies = r.lines(len(lines))
            self.assertEqual(replies[:2], ["OK m0", "OK m1"])
            self.assertEqual(replies[-3:], ["ERR unknown op FROB", "ERR empty request", "ERR invalid argument"])
            out_bytes = sum(len(x) + 1 for x in replies)

            m = wait_until(lambda: idle(srv), 5)
            self.assertTrue(m, "not idle")
            self.assertEqual(m.get("tpserver_requests_total", op="echo", result="ok"), n)
            self.assertEqual(m.get("tpserver_requests_total", op="sleep", result="ok"), 3)
            self.assertEqual(m.get("tpserver_requests_total", op="none", result="unknown_op"), 1)
            self.assertEqual(m.get("tpserver_requests_total", op="none", result="empty"), 1)
            self.assertEqual(m.get("tpserver_requests_total", op="sleep", result="invalid"), 1)
            self.assertEqual(m.get("tpserver_requests_total", op="echo", result="busy_timeout"), 0)
            # Each histogram counts exactly the requests it covers.
            self.assertEqual(m.get("tpserver_request_duration_seconds_count", op="echo"), n)
            self.assertEqual(m.get("tpserver_request_duration_seconds_count", op="sleep"), 4)
            self.assertEqual(m.get("tpserver_request_duration_seconds_count", op="none"), 2)
            self.assertEqual(m.get("tpserver_request_service_seconds_count", op="echo"), n)
            self.assertEqual(m.get("tpserver_request_service_seconds_count", op="sleep"), 3)
            self.assertEqual(m.get("tpserver_request_queue_wait_seconds_count"), n + 3)
            self.assertEqual(m.get("tpserver_request_admission_wait_seconds_count", result="admitted"), n + 3)
            self.assertEqual(m.get("tpserver_request_admission_wait_seconds_count", result="busy_timeout"), 0)
            # Nobody waited for space: every admission wait is exactly 0.
            self.assertEqual(m.get("tpserver_request_admission_wait_seconds_sum", result="admitted"), 0)
            # Three 10 ms sleeps: at least 30 ms of service, each in the 10-25 ms bucket or above.
            self.assertGreaterEqual(m.get("tpserver_request_service_seconds_sum", op="sleep"), 0.030)
            self.assertEqual(dict(m.buckets("tpserver_request_service_seconds", op="sleep"))["0.01"], 0)
            self.check_histograms(m)
            # Bytes both ways, exactly; one connection, open now.
            self.assertEqual(m.get("tpserver_received_bytes_total"), len(data))
            self.assertEqual(m.get("tpserver_sent_bytes_total"), out_bytes)
            self.assertEqual(m.get("tpserver_connections"), 1)
            self.assertEqual(m.get("tpserver_connections_accepted_total"), 1)
            self.assertEqual(m.get("tpserver_workers"), 4 + CHEAP_WORKERS)
            self.assertEqual(m.get("tpserver_queue_capacity"), 1000)
            self.assertEqual(m.get("tpserver_build_info", version=m.samples["tpserver_build_info"][0][0]["version"]), 1)
            s.close()
            self.assertTrue(wait_until(lambda: srv.scrape().get("tpserver_connections") == 0, 5))
            self.assertEqual(srv.stop(), 0)

    def test_busy_replies_match_the_counters(self):
        """tpclient counts B busy replies; the busy counters and histograms say B too."""
        with MetricsServer("--workers", "1", "--queue", "1", "--queue-timeout-ms", "100") as srv:
            p = subprocess.run([TPCLIENT, "--host", "127.0.0.1", "--port", str(srv.port), "--clients", "4",
                                "--requests", "10", "--max-inflight", "4", "--mix", "sleep",
                                "--sleep-ms", "50-100", "--json"],
                               stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)
            doc = json.loads(p.stdout)
            self.assertGreater(doc["busy"], 0)
            m = wait_until(lambda: idle(srv), 5)
            self.assertTrue(m)
            busy = doc["busy"]
            self.assertEqual(m.get("tpserver_requests_total", op="sleep", result="busy_timeout"), busy)
            self.assertEqual(m.get("tpserver_requests_total", op="sleep", result="ok"), doc["ok"])
            self.assertEqual(m.get("tpserver_request_admission_wait_seconds_count", result="busy_timeout"), busy)
            # Each refused request waited its whole 100 ms.
            self.assertGreaterEqual(m.get("tpserver_request_admission_wait_seconds_sum", result="busy_timeout"),
                                    0.1 * busy - 0.001)
            self.assertEqual(dict(m.buckets("tpserver_request_admission_wait_seconds",
                                            result="busy_timeout"))["0.05"], 0)
            self.assertEqual(m.get("tpserver_request_admission_wait_seconds_count", result="admitted"), doc["ok"])
            self.assertEqual(m.get("tpserver_request_service_seconds_count", op="sleep"), doc["ok"])
            self.check_histograms(m)
            self.assertEqual(m.get("tpserver_queue_waiters"), 0)

    def test_refused_connections_counted(self):
        with MetricsServer("--max-connections", "2") as srv:
            keep = [srv.connect() for _ in range(2)]
            for s in keep:
                self.assertEqual(request(s, LineReader(s), "ECHO x"), "OK x")
            extra = srv.connect()
            self.assertEqual(LineReader(extra).line(), "ERR too many connections")
            m = srv.scrape()
            self.assertEqual(m.get("tpserver_connections_refused_total", reason="max_connections"), 1)
            self.assertEqual(m.get("tpserver_connections_accepted_total"), 2)
            # The refusal's line is bytes written to a client too (it was left out).
            self.assertEqual(m.get("tpserver_sent_bytes_total"), 2 * len("OK x\n") + len("ERR too many connections\n"))

    def test_connections_closed_before_a_request_counted(self):
        # listen.allow and the PROXY header's refusals, by reason, as the log line counts them.
        with MetricsServer("--allow", "127.0.0.1,127.0.0.2", "--proxy-protocol", "--proxy-trusted",
                           "127.0.0.1") as srv:
            def closed(src, data):
                with socket.socket() as s:
                    s.settimeout(5)
                    s.bind((src, 0))
                    s.connect(("127.0.0.1", srv.port))
                    if data:
                        s.sendall(data)
                    try:
                        self.assertEqual(s.recv(100), b"")
                    except ConnectionResetError:
                        pass
            for _ in range(3):
                closed("127.0.0.3", b"")                                 # not in listen.allow
            for _ in range(2):
                closed("127.0.0.1", b"PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n")  # a malformed header
            closed("127.0.0.2", b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n")    # from an untrusted peer
            want = {"not_allowed": 3, "proxy_bad_header": 2, "proxy_untrusted": 1, "proxy_timeout": 0}
            self.assertTrue(wait_until(lambda: all(
                srv.scrape().get("tpserver_connections_refused_total", reason=k) == v
                for k, v in want.items()), 5), srv.scrape_text())
            # Those outside listen.allow were never taken; the others were, until their header.
            self.assertEqual(srv.scrape().get("tpserver_connections_accepted_total"), 3)

    def test_a_header_cut_short_by_a_close_is_counted_as_malformed(self):
        # A trusted proxy that closes halfway through its header sent a malformed one;
        # one that connects and closes having sent nothing is a TCP check, not counted.
        with MetricsServer("--proxy-protocol", "--proxy-trusted", "127.0.0.1") as srv:
            for data in (b"PROXY TCP4 1.2", b"\r\n\r\n\0\r\nQUIT\n", b""):
                with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as s:
                    if data:
                        s.sendall(data)
            self.assertTrue(wait_until(lambda: srv.scrape().get(
                "tpserver_connections_refused_total", reason="proxy_bad_header") == 2, 5),
                srv.scrape_text())
            time.sleep(0.2)
            m = srv.scrape()
            self.assertEqual(m.get("tpserver_connections_refused_total", reason="proxy_bad_header"), 2)
            self.assertEqual(m.get("tpserver_connections_refused_total", reason="proxy_timeout"), 0)
            self.assertEqual(m.get("tpserver_connections_accepted_total"), 3)

    def test_reloads_counted(self):
        with tempfile.NamedTemporaryFile("w", suffix=".conf", delete=False) as f:
            f.write("pool = { workers = 3; };\n")
        try:
            with MetricsServer("--config", f.name) as srv:
                srv.signal(signal.SIGHUP)
                self.assertTrue(wait_until(lambda: srv.scrape().get("tpserver_reloads_total", result="ok") == 1, 5))
                with open(f.name, "w") as g:
                    g.write("pool = { workers = -1; };\n")
                srv.signal(signal.SIGHUP)
                self.assertTrue(wait_until(
                    lambda: srv.scrape().get("tpserver_reloads_total", result="failed") == 1, 5))
        finally:
            os.unlink(f.name)

    def test_promtool_accepts_the_output(self):
        if not shutil.which("promtool"):
            self.skipTest("promtool not installed (Debian package prometheus)")
        with MetricsServer() as srv:
            s = srv.connect()
            r = LineReader(s)
            self.assertEqual(request(s, r, "ECHO a"), "OK a")
            self.assertEqual(request(s, r, "BAD"), "ERR unknown op BAD")
            text = srv.scrape_text()
            p = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True,
                               timeout=30)
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)

    def test_process_metrics(self):
        with MetricsServer() as srv:
            pid = srv.proc.pid
            # CPU time clearly above 0 (and above a tick or two of /proc's granularity).
            self.assertGreaterEqual(burn_cpu(srv, 0.3), 0.3, "could not make tpserver use 0.3 s of CPU")
            self.assertTrue(wait_until(lambda: srv.scrape().get("tpserver_connections") == 0, 5))
            srv.scrape()  # the first one's page faults and allocations are behind
            cpu0, (vm0, rss0) = tplib.cpu_seconds(pid), statm(pid)
            m = srv.scrape()
            cpu1, (vm1, rss1) = tplib.cpu_seconds(pid), statm(pid)
            # The scrape read getrusage() between the two reads of /proc/PID/stat, whose
            # utime and stime are whole clock ticks (cut, not rounded): a few ticks either side.
            cpu = m.get("process_cpu_seconds_total")
            self.assertGreaterEqual(cpu, cpu0 - 0.05)
            self.assertLessEqual(cpu, cpu1 + 0.05)
            # /proc/self/statm as the scrape read it, in bytes (pages times the page size);
            # what a scrape allocates (and a sanitizer's allocator) may move it a little.
            for name, lo, hi in (("process_virtual_memory_bytes", vm0, vm1),
                                 ("process_resident_memory_bytes", rss0, rss1)):
                v = m.get(name)
                slack = (1 << 20) + max(lo, hi) // 100
                self.assertGreaterEqual(v, min(lo, hi) - slack, name)
                self.assertLessEqual(v, max(lo, hi) + slack, name)
            self.assertAlmostEqual(m.get("process_start_time_seconds"), time.time(), delta=30)
            # The scrape's own connection was open while it counted.
            self.assertEqual(m.get("process_open_fds"), srv.fds() + 1)

    def test_process_max_fds_is_the_soft_limit_at_scrape_time(self):
        with MetricsServer() as srv:
            pid = srv.proc.pid
            soft, hard = resource.prlimit(pid, resource.RLIMIT_NOFILE)
            self.assertEqual(srv.scrape().get("process_max_fds"), soft)
            # A soft limit lowered under the running server (to a value of its own, not the
            # hard limit the server raised it to at start) is what the next scrape says.
            lowered = soft - 7
            try:
                resource.prlimit(pid, resource.RLIMIT_NOFILE, (lowered, hard))
            except PermissionError:
                self.skipTest("prlimit on tpserver not permitted")
            self.assertEqual(srv.scrape().get("process_max_fds"), lowered)

    def test_thread_count_unchanged(self):
        with MetricsServer("--workers", "3", "--io-threads", "2") as srv:
            srv.scrape()
            self.assertEqual(srv.threads(), 5 + CHEAP_WORKERS)

    def test_stats_line(self):
        with MetricsServer("--stats-interval-s", "1") as srv:
            s = srv.connect()
            self.assertEqual(request(s, LineReader(s), "ECHO x"), "OK x")
            line = srv.wait_log(r"stats: [1-9]\d* requests in \d+ s[^\n]*", timeout=5)
            self.assertIn("1 ok, 0 busy", line)
            self.assertIn("queue 0/1000", line)

    def test_service_time_counts_only_requests_that_ran(self):
        # Refused past pool.max_wait_ms, a request did not run: no service time.
        with MetricsServer("--workers", "1", "--cheap-workers", "0", "--max-wait-ms", "50") as srv:
            s = srv.connect()
            s.sendall(b"SLEEP 100\n" * 6)
            replies = LineReader(s).lines(6)
            ok = replies.count("OK 100")
            self.assertEqual(ok + replies.count("ERR server busy"), 6)
            self.assertLess(ok, 6)
            m = srv.scrape()
            self.assertEqual(m.get("tpserver_requests_total", op="sleep", result="busy_max_wait"), 6 - ok)
            self.assertEqual(m.get("tpserver_request_service_seconds_count", op="sleep"), ok)
            self.assertGreaterEqual(m.get("tpserver_request_service_seconds_sum", op="sleep"), 0.09 * ok)

    def test_stats_line_turned_on_by_a_reload_counts_its_interval_only(self):
        with tempfile.NamedTemporaryFile("w", suffix=".conf", delete=False) as f:
            f.write("log = { stats_interval_s = 0; };\n")
        try:
            with MetricsServer("--config", f.name) as srv:
                s = srv.connect()
                r = LineReader(s)
                s.sendall(b"ECHO x\n" * 500)
                self.assertEqual(r.lines(500), ["OK x"] * 500)
                time.sleep(1.5)  # a tick or two with the line off
                with open(f.name, "w") as g:
                    g.write("log = { stats_interval_s = 1; };\n")
                srv.signal(signal.SIGHUP)
                line = srv.wait_log(r"stats: [^\n]*", timeout=5)
                self.assertRegex(line, r"^stats: 0 requests in \d+ s", "the 500 before the reload counted")
        finally:
            os.unlink(f.name)

    def test_stats_line_counts_max_wait_refusals_as_busy(self):
        # Both refusals read "ERR server busy": the stats line counts both.
        with MetricsServer("--stats-interval-s", "1", "--workers", "1", "--cheap-workers", "0",
                           "--max-wait-ms", "100") as srv:
            s = srv.connect()
            r = LineReader(s)
            s.sendall(b"SLEEP 400\nSLEEP 10\n")
            self.assertEqual(r.lines(2), ["OK 400", "ERR server busy"])
            line = srv.wait_log(r"stats: [^\n]* 1 busy[^\n]*", timeout=5)
            self.assertIn(", 0 other errors", line)


class QueueShape(unittest.TestCase):
    """tpserver_queue_flows and tpserver_queue_largest_address with a known
    backlog: the only worker busy, then 127.0.0.2 queues 3 SLEEPs on one
    connection and 127.0.0.3 queues 2 on each of two connections."""

    def backlog(self, fairness):
        with MetricsServer("--workers", "1", "--cheap-workers", "0", "--fairness", fairness) as srv:
            blocker = srv.connect()
            blocker.sendall(b"SLEEP %d\n" % int(1200 * SLACK))
            self.assertTrue(wait_until(lambda: srv.scrape().get("tpserver_workers_busy") == 1, 5))
            for source, n in (("127.0.0.2", 3), ("127.0.0.3", 2), ("127.0.0.3", 2)):
                srv.connect(source=source).sendall(b"SLEEP 10\n" * n)
            m = wait_until(lambda: (lambda m: m.get("tpserver_queue_depth") == 7 and m)(srv.scrape()), 5)
            self.assertTrue(m, srv.scrape_text())
            # Still the blocker's SLEEP alone on the worker: nothing of the backlog was taken.
            self.assertEqual(m.get("tpserver_workers_busy"), 1)
            shape = (m.get("tpserver_queue_flows"), m.get("tpserver_queue_largest_address"))
            # Drained: both back to 0.
            m = wait_until(lambda: idle(srv), 10)
            self.assertTrue(m, srv.scrape_text())
            self.assertEqual((m.get("tpserver_queue_flows"), m.get("tpserver_queue_largest_address")), (0, 0))
            return shape

    def test_by_address(self):
        # Three connections with requests queued (the blocker's running SLEEP is not queued);
        # 127.0.0.3 holds 4 of the 7 over its two connections.
        self.assertEqual(self.backlog("address"), (3, 4))

    def test_by_connection(self):
        # Per connection: the largest holds 3.
        self.assertEqual(self.backlog("connection"), (3, 3))

    def test_none(self):
        self.assertEqual(self.backlog("none"), (0, 0))


class Watchdog(unittest.TestCase):
    # WATCHDOG_USEC alone turns the watchdog on (without NOTIFY_SOCKET its pings go
    # nowhere); at 1 s it looks at the server's health every 0.5 s.
    WATCHDOG = {"WATCHDOG_USEC": "1000000"}

    def test_unhealthy_episodes_counted_once_each(self):
        with MetricsServer("--workers", "1", "--stall-timeout-ms", "300", env=self.WATCHDOG) as srv:
            def episodes():
                return srv.scrape().get("tpserver_watchdog_unhealthy_episodes_total")
            self.assertEqual(episodes(), 0)
            s = srv.connect()
            r = LineReader(s)
            # Stuck from 0.3 s to 2 s: unhealthy at three or four checks in a row, one episode.
            s.sendall(b"SLEEP 2000\n")
            self.assertTrue(wait_until(lambda: episodes() == 1, 5), srv.log())
            self.assertEqual(r.line(), "OK 2000")
            self.assertTrue(wait_until(lambda: "healthy again" in srv.log(), 5), srv.log())
            self.assertEqual(episodes(), 1)
            # Healthy again: the next stall is an episode of its own (at least one check
            # falls within its 0.9 s).
            self.assertEqual(request(s, r, "SLEEP 1200"), "OK 1200")
            self.assertTrue(wait_until(lambda: srv.log().count("healthy again") == 2, 5), srv.log())
            self.assertEqual(episodes(), 2)
            self.assertEqual(srv.log().count("critical: unhealthy: a worker has been on one request"), 2)

    def test_no_episodes_without_a_watchdog(self):
        with MetricsServer("--workers", "1", "--stall-timeout-ms", "300") as srv:
            s = srv.connect()
            self.assertEqual(request(s, LineReader(s), "SLEEP 1500"), "OK 1500")
            self.assertEqual(srv.scrape().get("tpserver_watchdog_unhealthy_episodes_total"), 0)
            self.assertNotIn("unhealthy", srv.log())


class Shutdown(unittest.TestCase):
    def test_lines_after_sigterm_counted_shutting_down(self):
        with MetricsServer("--workers", "2") as srv:
            keep = srv.connect()
            keep.sendall(b"SLEEP 6000\n")  # keeps the server up past the scrape
            s = srv.connect()
            r = LineReader(s)
            s.sendall(b"SLEEP 1500\n")
            self.assertTrue(wait_until(lambda: srv.scrape().get("tpserver_workers_busy") == 2, 5))
            srv.signal(signal.SIGTERM)
            srv.wait_log("shutting down")
            # A connection with work in progress stays until it has its replies; the lines it
            # sends meanwhile are refused whatever they are, as no op.
            s.sendall(b"ECHO late\nSLEEP 5\nFROB\n")
            self.assertEqual(r.lines(4), ["OK 1500"] + ["ERR server shutting down"] * 3)
            with self.assertRaises(EOFError):
                r.line()
            m = srv.scrape()  # keep's SLEEP still running
            self.assertEqual(m.get("tpserver_requests_total", op="none", result="shutting_down"), 3)
            self.assertEqual(m.get("tpserver_request_duration_seconds_count", op="none"), 3)
            self.assertEqual(m.get("tpserver_requests_total", op="sleep", result="ok"), 1)
            self.assertEqual(m.get("tpserver_requests_total", op="echo", result="ok"), 0)
            # Refused as they were read: they never asked for queue space.
            self.assertEqual(m.get("tpserver_request_admission_wait_seconds_count", result="shutting_down"), 0)
            self.assertEqual(m.get("tpserver_request_admission_wait_seconds_count", result="admitted"), 1)

    def test_requests_cut_at_the_shutdown_deadline_counted(self):
        # SLEEP 10000s on the only worker (A), queued (B) and waiting for space (C) when a
        # 1 s shutdown timeout passes: each is answered ERR server shutting down.  The queue
        # is emptied before the worker is woken from A, so B and C never run.
        with MetricsServer("--workers", "1", "--cheap-workers", "0", "--queue-size", "1",
                           "--queue-timeout-ms", "30000", "--shutdown-timeout-s", "1",
                           "--max-unsent-kib", "4") as srv:
            sender = replies_left_unread(srv)
            self.addCleanup(sender.join, 10)
            echoes = srv.scrape().get("tpserver_requests_total", op="echo", result="ok")
            conns = []
            for gauge in ("tpserver_workers_busy", "tpserver_queue_depth", "tpserver_queue_waiters"):
                conns.append(srv.connect())
                conns[-1].sendall(b"SLEEP 10000\n")
                self.assertTrue(wait_until(lambda: srv.scrape().get(gauge) == 1, 5), gauge)
            srv.signal(signal.SIGTERM)
            for c in conns:
                self.assertEqual(LineReader(c).line(), "ERR server shutting down")
            # Still up for 1 s, for the connection whose replies are unread.
            m = srv.scrape()
        self.assertEqual(m.get("tpserver_requests_total", op="sleep", result="shutting_down"), 3)
        self.assertEqual(m.get("tpserver_requests_total", op="sleep", result="ok"), 0)
        self.assertEqual(m.get("tpserver_requests_total", op="sleep", result="busy_timeout"), 0)
        self.assertEqual(m.get("tpserver_requests_total", op="echo", result="ok"), echoes)
        self.assertEqual(m.get("tpserver_request_duration_seconds_count", op="sleep"), 3)
        # A alone ran, until the deadline 1 s after the signal.
        self.assertEqual(m.get("tpserver_request_service_seconds_count", op="sleep"), 1)
        self.assertGreaterEqual(m.get("tpserver_request_service_seconds_sum", op="sleep"), 0.9)
        self.assertEqual(m.get("tpserver_request_queue_wait_seconds_count"), echoes + 1)
        # Every request that asked for space is in the admission histogram once: A (and
        # the ECHOs) admitted; B, admitted at once, and C, cut while it waited for space,
        # under shutting_down, C with the second and more it waited.
        count = {res: m.get("tpserver_request_admission_wait_seconds_count", result=res)
                 for res in ("admitted", "busy_timeout", "shutting_down")}
        self.assertEqual(count, {"admitted": echoes + 1, "busy_timeout": 0, "shutting_down": 2})
        self.assertGreaterEqual(m.get("tpserver_request_admission_wait_seconds_sum", result="shutting_down"), 0.9)
        self.check_histograms(m)

    check_histograms = Counts.check_histograms


class Http(unittest.TestCase):
    def test_header_limit_is_8_KiB_and_its_refusal_arrives_whole(self):
        with MetricsServer() as srv:
            p = srv.metrics_port
            start = b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Pad: "
            head = start + b"a" * (8192 - len(start) - 4) + b"\r\n\r\n"
            self.assertEqual(len(head), 8192)
            self.assertEqual(http(p, head)[0], 200)
            # Over it: the client is still sending when it is refused, and reads the
            # refusal rather than a reset (the server reads what is left before it closes).
            for pad in (1, 3000, 200000):
                s = socket.create_connection(("127.0.0.1", p), timeout=5)
                s.sendall(start + b"a" * (8192 + pad) + b"\r\n\r\n")
                s.shutdown(socket.SHUT_WR)
                self.assertTrue(read_to_eof(s).startswith(b"HTTP/1.1 431 "), pad)
            # A NUL in the headers: 400, also read whole while more follows.
            s = socket.create_connection(("127.0.0.1", p), timeout=5)
            s.sendall(b"GET /metrics HTTP/1.1\r\nX: \0\r\n" + b"X-More: b\r\n" * 3000 + b"\r\n")
            s.shutdown(socket.SHUT_WR)
            self.assertTrue(read_to_eof(s).startswith(b"HTTP/1.1 400 "))
            self.assertEqual(http(p, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")[0], 200)

    def test_errors_and_head(self):
        with MetricsServer() as srv:
            p = srv.metrics_port
            host = b"\r\nHost: x\r\n\r\n"
            self.assertEqual(http(p, b"GET /nope HTTP/1.1" + host)[0], 404)
            st, h, body = http(p, b"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
            self.assertEqual((st, h.get("allow")), (405, "GET, HEAD"))
            self.assertEqual(http(p, b"garbage\r\n\r\n")[0], 400)
            self.assertEqual(http(p, b"GET /metrics HTTP/2.0" + host)[0], 400)
            self.assertEqual(http(p, b"GET /metrics HTTP/1.1 more" + host)[0], 400)
            self.assertEqual(http(p, b"GET  /metrics HTTP/1.1" + host)[0], 400)
            self.assertEqual(http(p, b"GET /metrics HTTP/1.1 " + host)[0], 400)
            self.assertEqual(http(p, b"GET /metrics\tHTTP/1.1" + host)[0], 400)
            self.assertEqual(http(p, b"GET /metrics?" + b"a" * 118 + b"HTTP/1.1" + host)[0], 400)
            # A query or a path of any length that fits the head: no limit of its own.
            self.assertEqual(http(p, b"GET /metrics?" + b"a" * 5000 + b" HTTP/1.1" + host)[0], 200)
            self.assertEqual(http(p, b"GET /" + b"m" * 5000 + b" HTTP/1.1" + host)[0], 404)
            self.assertEqual(http(p, b"GET /metrics\x00 HTTP/1.1" + host)[0], 400)
            st, h, body = http(p, b"HEAD /metrics HTTP/1.1" + host)
            self.assertEqual((st, body), (200, b""))
            self.assertGreater(int(h["content-length"]), 1000)
            # HTTP/1.0 needs no Host.
            st, h, body = http(p, b"GET /metrics?x=1 HTTP/1.0\r\n\r\n")
            self.assertEqual(st, 200)
            self.assertIn(b"tpserver_requests_total", body)
            # A bare LF ends the lines and the headers too, whatever ends the empty line after
            # it (a CRLF there left the head open until the 5 s deadline, with no answer).
            self.assertEqual(http(p, b"GET /metrics HTTP/1.1\nHost: x\n\n")[0], 200)
            self.assertEqual(http(p, b"GET /metrics HTTP/1.1\r\nHost: x\n\r\n")[0], 200)
            self.assertEqual(http(p, b"GET /metrics HTTP/1.0\n\r\n")[0], 200)

    def test_http_1_1_framing(self):
        """RFC 9112: empty lines before the request are skipped, the absolute form is
        a target like any other, a bare CR ends nothing, and HTTP/1.1 needs one Host."""
        with MetricsServer() as srv:
            p = srv.metrics_port
            host = b"\r\nHost: x\r\n\r\n"
            self.assertEqual(http(p, b"\r\nGET /metrics HTTP/1.1" + host)[0], 200)
            self.assertEqual(http(p, b"\r\n\n\r\nGET /metrics HTTP/1.1" + host)[0], 200)
            # Empty lines sent apart from the request, one byte at a time.
            s = socket.create_connection(("127.0.0.1", p), timeout=5)
            for b in b"\r\n\r\n":
                s.sendall(bytes([b]))
                time.sleep(0.02)
            s.sendall(b"GET /metrics HTTP/1.1" + host)
            self.assertTrue(read_to_eof(s).startswith(b"HTTP/1.1 200 "))
            s.close()
            for target in (b"http://127.0.0.1:9101/metrics", b"HTTP://x/metrics?a=b", b"https://x/metrics"):
                self.assertEqual(http(p, b"GET " + target + b" HTTP/1.1" + host)[0], 200, target)
            for target in (b"http://x", b"http://x/", b"http://x/metricsz", b"ftp://x/metrics"):
                self.assertEqual(http(p, b"GET " + target + b" HTTP/1.1" + host)[0], 404, target)
            self.assertEqual(http(p, b"GET /metrics HTTP/1.1\rX: y" + host)[0], 400)
            self.assertEqual(http(p, b"GET /metrics\rx HTTP/1.1" + host)[0], 400)
            self.assertEqual(http(p, b"GET /metrics HTTP/1.1\r\n\r\n")[0], 400)
            self.assertEqual(http(p, b"GET /metrics HTTP/1.1\r\nX-Host: y\r\n\r\n")[0], 400)
            self.assertEqual(http(p, b"GET /metrics HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n")[0], 400)
            self.assertEqual(http(p, b"GET /metrics HTTP/1.1\r\nhOST: a\r\n\r\n")[0], 200)


class Hostile(unittest.TestCase):
    def echo_latency(self, srv, s, r, n=20):
        worst = 0
        for i in range(n):
            t0 = time.monotonic()
            self.assertEqual(request(s, r, "ECHO h%d" % i), "OK h%d" % i)
            worst = max(worst, time.monotonic() - t0)
        return worst

    def test_silent_huge_and_many_scrapers(self):
        with MetricsServer() as srv:
            s = srv.connect()
            r = LineReader(s)
            self.echo_latency(srv, s, r)
            rss0 = srv.rss_kib()
            mp = srv.metrics_port

            # Silent connections fill the table; more are closed at once.
            fds0 = srv.fds()
            t_open = time.monotonic()
            silent = [socket.create_connection(("127.0.0.1", mp), timeout=10) for _ in range(8)]
            # The server has taken all eight (not just the kernel) before the next one comes.
            self.assertTrue(wait_until(lambda: srv.fds() >= fds0 + 8, 10 * SLACK), srv.fds() - fds0)
            with socket.create_connection(("127.0.0.1", mp), timeout=5) as extra:
                extra.sendall(b"GET /metrics HTTP/1.1\r\n\r\n")
                try:
                    self.assertEqual(extra.recv(100), b"")
                except ConnectionResetError:
                    pass
            self.assertLess(self.echo_latency(srv, s, r), 0.5 * SLACK)
            # Each silent one is closed at its time limit (5 s).
            t0 = time.monotonic()
            for c in silent:
                with c:
                    try:
                        self.assertEqual(c.recv(100), b"")
                    except ConnectionResetError:
                        pass
            self.assertLess(time.monotonic() - t0, 8 * SLACK)
            self.assertGreaterEqual(time.monotonic() - t_open, 4.5)  # at the limit, not at once

            # 1 MiB of headers: refused after the header cap, never buffered.
            with socket.create_connection(("127.0.0.1", mp), timeout=10) as big:
                big.sendall(b"GET /metrics HTTP/1.1\r\n")
                got, reset = b"", False
                try:
                    for _ in range(1024):
                        big.sendall(b"X-Junk: " + b"a" * 1014 + b"\r\n")
                except (BrokenPipeError, ConnectionResetError):
                    reset = True
                try:
                    got = big.recv(200)
                except ConnectionResetError:
                    reset = True
            # The 431, unless the close with our unread junk reset the connection before we read it.
            self.assertTrue(got.startswith(b"HTTP/1.1 431 ") or (reset and not got), (got, reset))
            self.assertLess(self.echo_latency(srv, s, r), 0.5 * SLACK)

            # 1000 connections at once, while requests go on.
            stop = threading.Event()
            errors = []

            def flood():
                socks = []
                try:
                    for _ in range(1000):
                        if stop.is_set():
                            break
                        try:
                            socks.append(socket.create_connection(("127.0.0.1", mp), timeout=5))
                        except OSError as e:
                            errors.append(e)
                finally:
                    time.sleep(0.5)
                    for c in socks:
                        c.close()

            t = threading.Thread(target=flood)
            t.start()
            worst = self.echo_latency(srv, s, r, 200)
            t.join(60)
            stop.set()
            self.assertEqual(errors, [])  # every one connected (and was closed at once, or served)
            self.assertLess(worst, 0.5 * SLACK)
            if not SANITIZED:
                self.assertLess(srv.rss_kib() - rss0, 8 * 1024)
            # Gone: scrapes work again, and the data connection was never disturbed.
            m = parse(wait_until(lambda: self.try_scrape(srv), 10))
            self.assertEqual(m.get("tpserver_connections"), 1)
            self.assertTrue(wait_until(lambda: srv.fds() < 30, 10), srv.fds())

    @staticmethod
    def try_scrape(srv):
        try:
            return srv.scrape_text(timeout=2)
        except (OSError, AssertionError):
            return None

    def test_a_scrape_that_waits_out_of_fds_is_answered_once_fds_free(self):
        # Out of fds, the metrics socket leaves the epoll set for 100 ms at a
        # time rather than spin, and is watched again after: a scrape that
        # waits in the backlog meanwhile is answered once an fd is free, with
        # no other scrape to wake the socket.
        nofile = 64
        with MetricsServer("--max-connections", "1000") as srv:
            resource.prlimit(srv.proc.pid, resource.RLIMIT_NOFILE, (nofile, nofile))
            # Client connections take every fd the server has left.
            conns = [srv.connect() for _ in range(nofile + 10)]
            for c in conns:
                c.sendall(b"ECHO x\n")
            self.assertTrue(wait_until(lambda: srv.fds() >= nofile, 5))
            scraper = socket.create_connection(("127.0.0.1", srv.metrics_port), timeout=10)
            self.addCleanup(scraper.close)
            scraper.sendall(b"GET /metrics HTTP/1.0\r\n\r\n")
            time.sleep(0.3)
            cpu0 = tplib.cpu_seconds(srv.proc.pid)
            time.sleep(1.0)
            cpu = tplib.cpu_seconds(srv.proc.pid) - cpu0
            self.assertLess(cpu, 0.3, "%.2f s of CPU in 1 s: the metrics socket spins" % cpu)
            for c in conns:
                c.close()
            try:
                reply = read_to_eof(scraper)
            except socket.timeout:
                self.fail("the scrape that waited out of fds is not answered within 10 s")
            self.assertTrue(reply.startswith(b"HTTP/1.1 200 OK\r\n"), reply[:100])
            self.assertIn(b"\ntpserver_connections ", reply)
            self.assertEqual(len(re.findall(r"metrics on \S+: accept: Too many open files", srv.log())), 1,
                             srv.log())
            self.assertEqual(srv.stop(), 0)


class SocketActivation(unittest.TestCase):
    def test_metrics_socket_passed_by_name(self):
        if not shutil.which("systemd-socket-activate"):
            self.skipTest("systemd-socket-activate not installed")
        dp, mp = tplib.free_ports(2)
        env = dict(os.environ)
        for k in ("LISTEN_FDS", "NOTIFY_SOCKET", "JOURNAL_STREAM"):
            env.pop(k, None)
        log = tempfile.TemporaryFile()
        self.addCleanup(log.close)
        # --metrics-port would bind a socket of its own: under activation it must not.
        proc = subprocess.Popen(["systemd-socket-activate", "-l", "127.0.0.1:%d" % dp, "-l", "127.0.0.1:%d" % mp,
                                 "--fdname=tpserver.socket:metrics", TPSERVER, "--config", "/dev/null",
                                 "--metrics-port", "1"],
                                stdout=log, stderr=subprocess.STDOUT, env=env)
        try:
            s = None
            deadline = time.monotonic() + 10
            while s is None and time.monotonic() < deadline:
                try:
                    s = socket.create_connection(("127.0.0.1", dp), timeout=10)
                    self.addCleanup(s.close)
                except ConnectionRefusedError:
                    time.sleep(0.05)
            self.assertIsNotNone(s)
            self.assertEqual(request(s, LineReader(s), "ECHO sa"), "OK sa")
            st, _, body = http(mp, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            self.assertEqual(st, 200)
            m = parse(body.decode())
            self.assertEqual(m.get("tpserver_requests_total", op="echo", result="ok"), 1)
            log.seek(0)
            out = log.read().decode(errors="replace")
            self.assertIn("metrics on http://127.0.0.1:%d/metrics (socket from systemd)" % mp, out)
            proc.send_signal(signal.SIGTERM)
            self.assertEqual(proc.wait(10), 0)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


@unittest.skipUnless(shutil.which("systemd-analyze"), "systemd-analyze not installed")
class Unit(unittest.TestCase):
    UNITS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "systemd")

    def test_metrics_socket_unit(self):
        d = tempfile.mkdtemp(prefix="tp-units-")
        self.addCleanup(shutil.rmtree, d)
        for name in ("tpserver.socket", "tpserver-metrics.socket", "tpserver.service"):
            with open(os.path.join(self.UNITS, name)) as f:
                text = f.read().replace("/usr/sbin/tpserver", os.path.abspath(TPSERVER))
            with open(os.path.join(d, name), "w") as f:
                f.write(text)
        p = subprocess.run(["systemd-analyze", "verify", "--man=no", os.path.join(d, "tpserver-metrics.socket")],
                           capture_output=True, text=True, timeout=60, cwd=d)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stderr.strip(), "")
        with open(os.path.join(self.UNITS, "tpserver-metrics.socket")) as f:
            unit = f.read()
        self.assertRegex(unit, r"(?m)^FileDescriptorName=metrics$")
        self.assertRegex(unit, r"(?m)^Service=tpserver\.service$")
        self.assertRegex(unit, r"(?m)^ListenStream=127\.0\.0\.1:9101$")
        self.assertNotRegex(unit, r"(?m)^(PartOf|ReusePort)=")


if __name__ == "__main__":
    tplib.main()
