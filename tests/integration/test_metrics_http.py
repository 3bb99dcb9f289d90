#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Integration tests of the metrics endpoint as a scraper meets it: requests
refused by a shutdown and scraped before the exit, HTTP errors, hostile
scrapers, the metrics socket passed by systemd-socket-activate, and the
unit's metrics socket."""
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

from metricslib import MetricsServer, check_histograms, http, parse, replies_left_unread
import tplib
from tplib import SANITIZED, SLACK, TPSERVER, LineReader, read_to_eof, request, wait_until


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
        check_histograms(self, m)


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
            # Another major version is not served (505); a later 1.x is answered as 1.1, which
            # needs a Host field (RFC 9110 2.5); anything else is no version at all (400).
            self.assertEqual(http(p, b"GET /metrics HTTP/2.0" + host)[0], 505)
            self.assertEqual(http(p, b"GET /metrics HTTP/1.2" + host)[0], 200)
            self.assertEqual(http(p, b"GET /metrics HTTP/1.2\r\n\r\n")[0], 400)
            for version in (b"HTTP/1", b"HTTP/1.10", b"http/1.1", b"HTTP/a.1", b"HTTP/1.1x"):
                self.assertEqual(http(p, b"GET /metrics " + version + host)[0], 400, version)
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

            # Silent connections fill the table; a scrape then takes the place of
            # the oldest, so that they cannot keep Prometheus out.
            fds0 = srv.fds()
            t_open = time.monotonic()
            silent = [socket.create_connection(("127.0.0.1", mp), timeout=10) for _ in range(8)]
            # The server has taken all eight (not just the kernel) before the next one comes.
            self.assertTrue(wait_until(lambda: srv.fds() >= fds0 + 8, 10 * SLACK), srv.fds() - fds0)
            with socket.create_connection(("127.0.0.1", mp), timeout=5) as extra:
                extra.sendall(b"GET /metrics HTTP/1.0\r\n\r\n")
                self.assertTrue(read_to_eof(extra).startswith(b"HTTP/1.1 200 OK"))
            with silent.pop(0) as oldest:
                oldest.settimeout(1 * SLACK)
                try:
                    self.assertEqual(oldest.recv(100), b"")
                except ConnectionResetError:
                    pass
            self.assertLess(self.echo_latency(srv, s, r), 0.5 * SLACK)
            # Each other silent one is closed at its time limit (5 s).
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

    def test_renewed_silent_connections_cannot_keep_a_scraper_out(self):
        # Eight connections that never ask, each renewed every half second,
        # took every place before each scrape came: every scrape failed.
        with MetricsServer() as srv:
            mp, stop, errors = srv.metrics_port, threading.Event(), []

            def hog():
                held = []
                try:
                    while not stop.is_set():
                        held.append(socket.create_connection(("127.0.0.1", mp), timeout=5))
                        if len(held) > 8:
                            held.pop(0).close()
                        time.sleep(0.06)
                except OSError as e:
                    errors.append(e)
                finally:
                    for c in held:
                        c.close()
            t = threading.Thread(target=hog)
            t.start()
            try:
                time.sleep(1)
                codes = [http(mp, b"GET /metrics HTTP/1.0\r\n\r\n")[0] for _ in range(10)]
            finally:
                stop.set()
                t.join(10)
            self.assertEqual(codes, [200] * 10)
            self.assertEqual(errors, [])

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
