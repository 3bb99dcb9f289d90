# SPDX-License-Identifier: MIT
"""Integration tests of the metrics endpoint: the real tpserver with
--metrics-port 0, scraped over HTTP after known traffic (exact counts,
histogram counts, gauges back to zero), HTTP errors, hostile scrapers,
the stats line, reload counters and the metrics socket passed by
systemd-socket-activate.  The real Prometheus runs in test_prometheus.py."""
import json
import os
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
            m = srv.scrape()
            self.assertAlmostEqual(m.get("process_start_time_seconds"), time.time(), delta=30)
            # The scrape's own connection was open while it counted.
            self.assertEqual(m.get("process_open_fds"), srv.fds() + 1)
            self.assertGreater(m.get("process_resident_memory_bytes"), 1 << 20)
            self.assertGreater(m.get("process_max_fds"), 0)
            self.assertGreaterEqual(m.get("process_cpu_seconds_total"), 0)

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


class Http(unittest.TestCase):
    def test_header_limit_is_8_KiB_and_its_refusal_arrives_whole(self):
        with MetricsServer() as srv:
            p = srv.metrics_port
            start = b"GET /metrics HTTP/1.1\r\nX-Pad: "
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
            self.assertEqual(http(p, b"GET /metrics HTTP/1.1\r\n\r\n")[0], 200)

    def test_errors_and_head(self):
        with MetricsServer() as srv:
            p = srv.metrics_port
            self.assertEqual(http(p, b"GET /nope HTTP/1.1\r\n\r\n")[0], 404)
            st, h, body = http(p, b"POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n")
            self.assertEqual((st, h.get("allow")), (405, "GET, HEAD"))
            self.assertEqual(http(p, b"garbage\r\n\r\n")[0], 400)
            self.assertEqual(http(p, b"GET /metrics HTTP/2.0\r\n\r\n")[0], 400)
            self.assertEqual(http(p, b"GET /metrics HTTP/1.1 more\r\n\r\n")[0], 400)
            self.assertEqual(http(p, b"GET  /metrics HTTP/1.1\r\n\r\n")[0], 400)
            self.assertEqual(http(p, b"GET /metrics HTTP/1.1 \r\n\r\n")[0], 400)
            self.assertEqual(http(p, b"GET /metrics\tHTTP/1.1\r\n\r\n")[0], 400)
            # No space before the version, where the target fills its buffer to the byte.
            self.assertEqual(http(p, b"GET /metrics?" + b"a" * 118 + b"HTTP/1.1\r\n\r\n")[0], 400)
            self.assertEqual(http(p, b"GET /metrics?" + b"a" * 118 + b" HTTP/1.1\r\n\r\n")[0], 200)
            self.assertEqual(http(p, b"GET /" + b"m" * 200 + b" HTTP/1.1\r\n\r\n")[0], 400)
            self.assertEqual(http(p, b"GET /metrics\x00 HTTP/1.1\r\n\r\n")[0], 400)
            st, h, body = http(p, b"HEAD /metrics HTTP/1.1\r\n\r\n")
            self.assertEqual((st, body), (200, b""))
            self.assertGreater(int(h["content-length"]), 1000)
            st, h, body = http(p, b"GET /metrics?x=1 HTTP/1.0\r\n\r\n")
            self.assertEqual(st, 200)
            self.assertIn(b"tpserver_requests_total", body)
            # A bare LF ends the headers too.
            self.assertEqual(http(p, b"GET /metrics HTTP/1.1\n\n")[0], 200)


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
            st, _, body = http(mp, b"GET /metrics HTTP/1.1\r\n\r\n")
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
