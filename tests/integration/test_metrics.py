#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Integration tests of the metrics endpoint: the real tpserver with
--metrics-port 0, scraped over HTTP after known traffic (exact counts,
histogram counts, gauges back to zero), process metrics against /proc,
the queue's flows and largest address in each fairness mode, watchdog
episodes, the stats line and reload counters.  The real Prometheus runs
in test_prometheus.py."""
import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest

from metricslib import MetricsServer, check_histograms, idle
import tplib
from tplib import CHEAP_WORKERS, SLACK, TPCLIENT, ConfFile, LineReader, assert_threads, request, wait_until


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


class Counts(unittest.TestCase):
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
            check_histograms(self, m)
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
            check_histograms(self, m)
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

    def test_busy_never_exceeds_workers_after_a_shrink(self):
        # Utilisation is busy / workers: a reload from 6 workers to 2 while 6
        # SLEEPs run leaves 6 threads at work until they end, not "6 of 2".
        conf = ConfFile(self, "pool = { workers = 6; cheap_workers = 0; };\n")
        with MetricsServer("--config", conf.path) as srv:
            s = srv.connect()
            s.sendall(b"SLEEP 1500\n" * 6)
            self.assertTrue(wait_until(lambda: srv.scrape().get("tpserver_workers_busy") == 6, 10))
            conf.write("pool = { workers = 2; cheap_workers = 0; };\n")
            srv.signal(signal.SIGHUP)
            self.assertTrue(wait_until(lambda: srv.scrape().get("tpserver_reloads_total", result="ok") == 1, 5))
            m = srv.scrape()
            self.assertEqual((m.get("tpserver_workers_busy"), m.get("tpserver_workers")), (6, 6))
            self.assertEqual(LineReader(s).lines(6, timeout=10), ["OK 1500"] * 6)
            self.assertTrue(wait_until(lambda: srv.scrape().get("tpserver_workers") == 2, 5), srv.scrape_text())

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
            assert_threads(self, srv, 5 + CHEAP_WORKERS)

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


if __name__ == "__main__":
    tplib.main()
