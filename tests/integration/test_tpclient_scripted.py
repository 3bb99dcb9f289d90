#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Integration tests of tpclient against small scripted servers, for what
a correct server never does (wrong replies, silence, refusals, closing
between requests) and for reproducibility: the seed, source addresses,
reconnects, timeouts, signals, reports that cannot be written."""
import json
import signal
import socket
import subprocess
import threading
import time
import unittest

import tplib
from tplib import TPCLIENT
from tpclientlib import ScriptedServer, correct_reply, fill_accept_queue, full_accept_queue, parse_groups, parse_text, run_client


class AgainstScriptedServers(unittest.TestCase):
    def test_retries_stop_with_the_duration(self):
        # Every request refused: retries go on until --duration is over, then
        # those waiting are given up; nothing is sent after the end.
        with ScriptedServer(lambda line: "ERR server busy") as srv:
            t0 = time.monotonic()
            p = run_client(srv.port, "-c", 1, "-P", 1, "-d", 1, "--mix", "echo", "--retry-busy", "300ms,1000",
                           "--json", timeout=30)
            took = time.monotonic() - t0
            self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
            doc = json.loads(p.stdout)
            self.assertEqual(doc["gave_up"], 1)
            self.assertEqual(doc["sent"], doc["retries"] + 1)
            self.assertLessEqual(doc["retries"], 4)  # 1 s of 300 ms delays
            self.assertEqual(len(srv.lines), doc["sent"])
            self.assertLess(took, 5)

    def test_a_tiny_rate_ends_with_the_duration(self):
        # Far requests of a rate of 1e-10/s lie past what a clock holds: they are
        # never due, not overdue.
        with ScriptedServer(correct_reply) as srv:
            for clients in (1, 20):
                p = run_client(srv.port, "-c", clients, "-R", "1e-10", "-d", 1, "--mix", "echo", "--json",
                               timeout=20)
                self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
                self.assertEqual(json.loads(p.stdout)["ok"], 1)

    def test_open_loop_requests_after_a_warmup_keep_their_schedule(self):
        # The warm-up's requests do not count towards --requests; those that do
        # still go out on the schedule, not late.  Had the schedule ended with
        # as many rounds as --requests, warm-up included, every one of the 20
        # counted requests would go out late, at the next periodic wake-up.  A
        # loaded machine delays some sends by over 1 ms too, in bursts: 20
        # requests over a second average those out, and at most half of them
        # may be late.
        with ScriptedServer(correct_reply) as srv:
            p = run_client(srv.port, "-c", 2, "-R", 20, "--requests", 10, "--warmup", 1, "--mix", "echo",
                           "--json", timeout=30)
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
            doc = json.loads(p.stdout)
            self.assertEqual(doc["ok"], 20)
            self.assertLessEqual(doc["late"], 10, p.stdout)

    def test_seed_reproduces_the_request_sequence(self):
        runs = []
        for _ in range(2):
            with ScriptedServer(correct_reply) as srv:
                p = run_client(srv.port, "--clients", 1, "--requests", 200, "--seed", 12345,
                               "--sleep-ms", "0-1000", "--echo-bytes", "0-50")
                self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
                runs.append(list(srv.lines))
        self.assertEqual(len(runs[0]), 200)
        self.assertEqual(runs[0], runs[1])
        ops = [l.split(" ", 1)[0] for l in runs[0]]
        self.assertTrue(60 < ops.count("SLEEP") < 140, ops.count("SLEEP"))  # balanced: about half
        for line in runs[0]:
            op, _, arg = line.partition(" ")
            if op == "SLEEP":
                self.assertTrue(arg.isdigit() and 0 <= int(arg) <= 1000, line)
            else:
                self.assertEqual(op, "ECHO")
                self.assertTrue(len(arg) <= 50 and (arg == "" or arg.isalnum()), line)
        with ScriptedServer(correct_reply) as srv:
            p = run_client(srv.port, "--clients", 1, "--requests", 200, "--seed", 54321,
                           "--sleep-ms", "0-1000", "--echo-bytes", "0-50")
            self.assertNotEqual(list(srv.lines), runs[0])

    def test_source_binds_each_connection_in_turn(self):
        with ScriptedServer(correct_reply) as srv:
            p = run_client(srv.port, "--clients", 5, "--requests", 3, "--mix", "echo",
                           "--source", "127.0.0.2,127.0.0.3", "--threads", 1)
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
            self.assertEqual(sorted(srv.peers), ["127.0.0.2"] * 3 + ["127.0.0.3"] * 2)
            self.assertEqual(parse_text(p.stdout)["RUN"]["sources"], "127.0.0.2,127.0.0.3")
        # Without --source the kernel picks, as before: 127.0.0.1 towards 127.0.0.1.
        with ScriptedServer(correct_reply) as srv:
            p = run_client(srv.port, "--clients", 2, "--requests", 3, "--mix", "echo")
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
            self.assertEqual(srv.peers, ["127.0.0.1"] * 2)
            self.assertNotIn("sources", parse_text(p.stdout)["RUN"])

    def test_group_sources_bind_apart(self):
        with ScriptedServer(correct_reply) as srv:
            p = run_client(srv.port, "--source", "127.0.0.9",
                           "--group", "name=a,clients=3,requests=2,mix=echo,source=127.0.0.2",
                           "--group", "name=b,clients=2,requests=2,mix=echo,source=127.0.0.3,source=127.0.0.4",
                           "--group", "name=c,clients=1,requests=2,mix=echo")
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
            # c inherits the top-level --source; a and b replace it.
            self.assertEqual(sorted(srv.peers), ["127.0.0.2"] * 3 + ["127.0.0.3", "127.0.0.4", "127.0.0.9"])
            g = parse_groups(p.stdout)
            self.assertEqual((g["a"]["sources"], g["b"]["sources"], g["c"]["sources"]),
                             ("127.0.0.2", "127.0.0.3,127.0.0.4", "127.0.0.9"))

    def test_source_ipv6(self):
        try:
            srv = ScriptedServer(correct_reply, host="::1")
        except OSError:
            self.skipTest("no IPv6 loopback")
        with srv:
            cmd = [TPCLIENT, "--host", "::1", "--port", str(srv.port), "--clients", 2, "--requests", 2,
                   "--mix", "echo", "--source", "::1", "--json"]
            p = subprocess.run([str(c) for c in cmd], stdin=subprocess.DEVNULL, capture_output=True,
                               text=True, timeout=60)
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
            self.assertEqual(srv.peers, ["::1"] * 2)
            self.assertEqual(json.loads(p.stdout)["sources"], ["::1"])

    def test_source_bind_failure_names_the_address(self):
        with ScriptedServer(correct_reply) as srv:
            # 192.0.2.0/24 is for documentation: no host has it.
            p = run_client(srv.port, "--clients", 4, "--requests", 3, "--mix", "echo",
                           "--source", "127.0.0.2,192.0.2.1", "--json")
            self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
            doc = json.loads(p.stdout)
            self.assertEqual((doc["connect_failed"], doc["ok"]), (2, 6))
            self.assertEqual(srv.peers, ["127.0.0.2"] * 2)
            self.assertRegex(p.stderr, r"cannot connect client 1 from 192\.0\.2\.1 to 127\.0\.0\.1:\d+: "
                                       r"bind\(\): Cannot assign requested address")

    def test_reconnect_between_requests(self):
        # Open loop, 5/s: the server closes each connection after 2 replies,
        # when nothing is in flight; the client reopens it and goes on.  The
        # close follows the second reply at once; the 200 ms until the next
        # request is due leave the client ample time to see it first.
        with ScriptedServer(correct_reply, close_after=2) as srv:
            p = run_client(srv.port, "--clients", 1, "--requests", 10, "--rate", 5, "--mix", "echo",
                           "--reconnect", "--json")
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
            doc = json.loads(p.stdout)
            self.assertTrue(doc["reconnect"])
            # Closed after replies 2, 4, 6 and 8; after the 10th the client is done first.
            self.assertEqual((doc["sent"], doc["ok"], doc["lost"]), (10, 10, 0))
            self.assertEqual((doc["reconnects"], doc["disconnects"]), (4, 0))
            self.assertEqual(len(srv.peers), 5)
            self.assertEqual(len(srv.lines), 10)

    def test_without_reconnect_a_closed_connection_stops_its_client(self):
        # 5/s, as above: the close is seen before a third request is due.
        with ScriptedServer(correct_reply, close_after=2) as srv:
            p = run_client(srv.port, "--clients", 1, "--requests", 10, "--rate", 5, "--mix", "echo", "--json")
            self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
            doc = json.loads(p.stdout)
            self.assertFalse(doc["reconnect"])
            self.assertEqual((doc["sent"], doc["ok"], doc["lost"]), (2, 2, 0))
            self.assertEqual((doc["reconnects"], doc["disconnects"]), (0, 1))
            self.assertEqual(len(srv.peers), 1)
            self.assertIn("server closed the connection", p.stderr)

    def test_reconnect_counts_in_flight_requests_lost(self):
        # Closed loop with a window of 4: each close catches requests in flight.
        with ScriptedServer(correct_reply, close_after=10) as srv:
            p = run_client(srv.port, "--clients", 2, "--requests", 60, "--max-inflight", 4, "--mix", "echo",
                           "--reconnect", "--json")
            self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
            doc = json.loads(p.stdout)
            self.assertEqual(doc["sent"], 120)
            self.assertGreater(doc["lost"], 0)
            self.assertEqual(doc["ok"] + doc["lost"], doc["sent"])
            self.assertEqual(doc["ok"], doc["recv"])
            self.assertGreaterEqual(doc["reconnects"], 4)
            # Each connection the server opened answered 10 (the last may answer fewer).
            self.assertEqual(len(srv.peers), doc["reconnects"] + 2)
            self.assertLessEqual(doc["ok"], 10 * len(srv.peers))
            # Closes are expected with --reconnect: not logged at the default level.
            self.assertNotIn("server closed", p.stderr)
            self.assertNotIn("Connection reset", p.stderr)

    def test_reconnect_keeps_the_source(self):
        with ScriptedServer(correct_reply, close_after=3) as srv:
            p = run_client(srv.port, "--clients", 2, "--requests", 9, "--max-inflight", 1, "--mix", "echo",
                           "--source", "127.0.0.2,127.0.0.3", "--reconnect", "--json")
            doc = json.loads(p.stdout)
            self.assertGreaterEqual(doc["reconnects"], 2)
            self.assertEqual(set(srv.peers), {"127.0.0.2", "127.0.0.3"})

    def test_reconnect_failure_is_a_disconnect(self):
        # The server stops listening once the first connection is in, however
        # late the client starts: the reconnect is refused.
        srv = ScriptedServer(correct_reply, close_after=2, accepts=1)
        port = srv.port
        proc = subprocess.Popen([TPCLIENT, "--port", str(port), "--clients", "1", "--requests", "10",
                                 "--rate", "10", "--mix", "echo", "--reconnect", "--json"],
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)
        out, err = proc.communicate(timeout=30)
        srv.close()
        self.assertEqual(proc.returncode, 1, out + err)
        doc = json.loads(out)
        self.assertEqual((doc["ok"], doc["reconnects"], doc["disconnects"]), (2, 0, 1))
        self.assertRegex(err, r"cannot reconnect client 0 to 127\.0\.0\.1:\d+: connect\(\): Connection refused")

    def test_clients_that_end_in_the_warmup_fail_the_run(self):
        # A silent server: the timeouts close every connection, in the warmup
        # (recv-timeout 0.5 s) or just after it on requests of the warmup
        # (1.5 s).  The requests are left out of the totals; the clients that
        # ended are not: a disconnect each, and exit status 1.
        with ScriptedServer(lambda line: None) as srv:
            for timeout in ("0.5", "1.5"):
                with self.subTest(recv_timeout=timeout):
                    p = run_client(srv.port, "-c", 3, "-P", 2, "--recv-timeout", timeout, "--warmup", 1, "-d", 2,
                                   "--mix", "echo", "--json", timeout=30)
                    self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
                    doc = json.loads(p.stdout)
                    self.assertEqual((doc["sent"], doc["timeouts"], doc["disconnects"], doc["exit_status"]),
                                     (0, 0, 3, 1), p.stdout)
        # A reconnect that fails in the warmup ends its client too.
        srv = ScriptedServer(correct_reply, close_after=2, accepts=1)
        with srv:
            p = run_client(srv.port, "-c", 1, "-R", 10, "--warmup", 1, "-d", 1, "--mix", "echo", "--reconnect",
                           "--json", timeout=30)
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertEqual(json.loads(p.stdout)["disconnects"], 1, p.stdout)

    def test_reply_text_reaches_the_log_as_one_line(self):
        # Control bytes of a wrong reply must not reach the terminal.
        with ScriptedServer(lambda line: "OK \x1b[31mred\x07\rtpclient[1]: error: forged") as srv:
            p = run_client(srv.port, "-c", 1, "--requests", 1, "--mix", "echo", timeout=30)
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertIn("got 'OK ?[31mred??tpclient[1]: error: forged'", p.stderr)
        self.assertNotIn("\x1b", p.stderr)
        self.assertNotIn("\r", p.stderr)

    def test_an_ipv6_server_is_bracketed_in_messages(self):
        try:
            with socket.socket(socket.AF_INET6) as s:
                s.bind(("::1", 0))  # not listening: a connect is refused
                port = s.getsockname()[1]
        except OSError:
            self.skipTest("no IPv6 loopback")
        p = subprocess.run([TPCLIENT, "--host", "::1", "--port", str(port), "-c", "1", "--requests", "1",
                            "--log-level", "info"], stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           timeout=30)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn("cannot connect client 0 to [::1]:%d: connect(): Connection refused" % port, p.stderr)
        self.assertIn("0 of 1 clients connected to [::1]:%d" % port, p.stderr)

    def test_wrong_replies_are_mismatches(self):
        def wrong(line):
            op, _, arg = line.partition(" ")
            if op == "SLEEP":
                return "OK " + str(int(arg) + 1)
            return "OK " + arg + "x"
        with ScriptedServer(wrong) as srv:
            p = run_client(srv.port, "--clients", 2, "--requests", 20, "--json")
            self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
            doc = json.loads(p.stdout)
            self.assertEqual((doc["sent"], doc["recv"], doc["mismatch"], doc["ok"]), (40, 40, 40, 0))
            self.assertEqual(doc["err"], 40)
            self.assertIn("mismatch", p.stderr)

    def test_other_errors_are_not_busy(self):
        with ScriptedServer(lambda line: "ERR invalid argument") as srv:
            p = run_client(srv.port, "--clients", 1, "--requests", 10, "--json")
            self.assertEqual(p.returncode, 1)
            doc = json.loads(p.stdout)
            self.assertEqual((doc["other_err"], doc["busy"], doc["mismatch"]), (10, 0, 0))

    def test_silent_server_times_out(self):
        with ScriptedServer(lambda line: None) as srv:
            t0 = time.monotonic()
            p = run_client(srv.port, "--clients", 3, "--requests", 100, "--max-inflight", 5,
                           "--recv-timeout", 0.5, "--json")
            took = time.monotonic() - t0
            self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
            doc = json.loads(p.stdout)
            # The whole window of each connection, then the client stops.
            self.assertEqual((doc["sent"], doc["timeouts"], doc["recv"]), (15, 15, 0))
            self.assertGreaterEqual(took, 0.5)
            self.assertLess(took, 5.0)

    def test_the_shortest_timeout_still_bounds_the_connect(self):
        # A server whose accept queue is full drops each SYN: only the timeout ends a connect.
        with full_accept_queue(self) as port:
            t0 = time.monotonic()
            p = run_client(port, "--clients", 3, "--requests", 5, "--recv-timeout", "1ms", "--json",
                           timeout=60)
            self.assertLess(time.monotonic() - t0, 10)
            self.assertEqual(json.loads(p.stdout)["connect_failed"], 3, p.stderr)
            # Shorter reads as 0 in the report (and was one): refused.
            p = run_client(port, "--clients", 3, "--recv-timeout", "0.0000005", timeout=60)
            self.assertEqual(p.returncode, 2, p.stderr)
            self.assertIn("a duration from 1 ms to 86400 s", p.stderr)

    def test_a_signal_stops_the_connecting(self):
        # Eight clients against a full accept queue would take 8 x 5 s to give up.
        with full_accept_queue(self) as port:
            p = subprocess.Popen([TPCLIENT, "--host", "127.0.0.1", "--port", str(port), "--clients", "8",
                                  "--requests", "5", "--recv-timeout", "5"],
                                 stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            self.addCleanup(lambda: p.poll() is None and (p.kill(), p.communicate()))
            time.sleep(0.5)
            t0 = time.monotonic()
            p.send_signal(signal.SIGINT)
            out, err = p.communicate(timeout=20)
            self.assertLess(time.monotonic() - t0, 2)
            self.assertEqual(p.returncode, 1, err)
            self.assertIn("stopped while connecting the clients", err)
            self.assertEqual(out, "")

    def test_a_signal_stops_a_reconnect(self):
        # The server closes the connection, then its accept queue is full: the
        # reconnect's SYN is dropped and only --recv-timeout (5 s) would end it.
        with socket.create_server(("127.0.0.1", 0), backlog=0) as lst:
            port = lst.getsockname()[1]
            p = subprocess.Popen([TPCLIENT, "--host", "127.0.0.1", "--port", str(port), "--clients", "1",
                                  "--requests", "50", "--rate", "20", "--mix", "echo", "--reconnect",
                                  "--recv-timeout", "5", "--json"],
                                 stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            self.addCleanup(lambda: p.poll() is None and (p.kill(), p.communicate()))
            c, _ = lst.accept()
            with c:
                c.settimeout(10)
                self.assertTrue(c.recv(100).startswith(b"ECHO "))
                fill_accept_queue(self, port)
            time.sleep(0.5)  # the client is in its reconnect
            t0 = time.monotonic()
            p.send_signal(signal.SIGINT)
            out, err = p.communicate(timeout=20)
            self.assertLess(time.monotonic() - t0, 2, err)
            self.assertTrue(json.loads(out)["interrupted"], out)

    def test_an_unasked_refusal_is_an_error_reply_not_a_mismatch(self):
        # A server over its connection limit says so before any request: the
        # second client's first request is due 0.5 s in, after the refusal.
        # Counted with the other ERR replies, in the totals.
        def serve(lst):
            first, _ = lst.accept()
            second, _ = lst.accept()
            second.sendall(b"ERR too many connections\n")
            second.close()
            with first, first.makefile("rb") as lines:
                first.settimeout(10)
                line = lines.readline().decode().strip()  # up to 100 bytes of text: one recv may not hold it
                first.sendall(("OK " + line.split(" ", 1)[1] + "\n").encode())
                first.recv(100)
        with socket.create_server(("127.0.0.1", 0)) as lst:
            t = threading.Thread(target=serve, args=(lst,), daemon=True)
            t.start()
            p = run_client(lst.getsockname()[1], "--clients", 2, "--requests", 2, "--rate", 2, "--mix", "echo",
                           "--json", timeout=30)
            t.join(10)
        doc = json.loads(p.stdout)
        self.assertEqual((doc["ok"], doc["other_err"], doc["mismatch"]), (1, 1, 0), p.stdout + p.stderr)
        self.assertEqual(p.returncode, 1)

    def test_a_report_that_cannot_be_written_fails_the_run(self):
        with ScriptedServer(correct_reply) as srv:
            for extra in ([], ["--json"]):
                with open("/dev/full", "w") as full:
                    p = subprocess.run([TPCLIENT, "--port", str(srv.port), "--clients", "1", "--requests", "3"]
                                       + extra, stdin=subprocess.DEVNULL, stdout=full, stderr=subprocess.PIPE,
                                       text=True, timeout=30)
                self.assertEqual(p.returncode, 1, extra)
                self.assertIn("cannot write the report", p.stderr)

    def test_timeline_rows_that_cannot_be_written_fail_the_run(self):
        with ScriptedServer(correct_reply) as srv:
            p = run_client(srv.port, "--clients", 1, "--rate", 50, "--duration", "1.2s", "--mix", "echo",
                           "--interval", 0.5, "--timeline", "/dev/full", "--json", timeout=30)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertEqual(json.loads(p.stdout)["exit_status"], 1)
        self.assertIn("cannot write /dev/full", p.stderr)


if __name__ == "__main__":
    tplib.main(verbosity=2, warnings="ignore")
