#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Integration tests of tpclient against the real tpserver over time:
reconnects (idle timeouts, restarts, refusals), source addresses, the
open loop, the progress line, --duration and interruption."""
import json
import os
import pty
import re
import signal
import subprocess
import time
import unittest

import tplib
from tplib import SLACK, TPCLIENT, Server
from tpclientlib import PROGRESS_RE, ScriptedServer, correct_reply, parse_text, read_pty, run_client


class AgainstTpserver(unittest.TestCase):
    def test_reconnect_after_idle_timeout(self):
        # tpserver closes connections idle for 1 s (checked about once a second);
        # at 0.4/s in the open loop the client is idle 2.5 s between requests,
        # so the gap costs a connection.
        with Server("--idle-timeout-s", "1") as srv:
            p = run_client(srv.port, "--clients", 1, "--requests", 2, "--rate", 0.4, "--mix", "echo",
                           "--reconnect")
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
            rep = parse_text(p.stdout)
            self.assertEqual((rep["SUMMARY"]["sent"], rep["SUMMARY"]["ok"]), (2, 2))
            self.assertEqual(rep["ERRORS"]["reconnects"], "1")
            self.assertEqual((rep["ERRORS"]["lost"], rep["ERRORS"]["disconnects"]), ("0", "0"))
            self.assertEqual(rep["RUN"]["reconnect"], "1")

            # Without --reconnect, as before: the client stops at the first close.
            p = run_client(srv.port, "--clients", 1, "--requests", 2, "--rate", 0.4, "--mix", "echo")
            self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
            rep = parse_text(p.stdout)
            self.assertEqual((rep["SUMMARY"]["sent"], rep["SUMMARY"]["ok"]), (1, 1))
            self.assertEqual((rep["ERRORS"]["reconnects"], rep["ERRORS"]["disconnects"]), ("0", "1"))
            self.assertNotIn("reconnect", rep["RUN"])

    def test_a_server_lost_in_the_warmup_fails_the_run(self):
        # The server dies 0.7 s into a 2 s warmup: every client ends there,
        # nothing is measured, and the run must not pass.
        srv = Server()
        with srv:
            proc = subprocess.Popen([TPCLIENT, "--port", str(srv.port), "-c", "4", "-d", "5", "--warmup", "2",
                                     "--mix", "sleep", "--sleep-ms", "50", "--json"],
                                    stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    text=True)
            self.addCleanup(lambda: proc.poll() is None and (proc.kill(), proc.communicate()))
            time.sleep(0.7)
            srv.proc.kill()
            out, err = proc.communicate(timeout=30)
        self.assertEqual(proc.returncode, 1, out + err)
        doc = json.loads(out)
        self.assertEqual((doc["sent"], doc["disconnects"], doc["exit_status"]), (0, 4, 1), out)

    def test_reconnect_rides_through_a_server_restart(self):
        # The server is killed 1 s into the run and back 0.3 s later on the
        # same port: the redials it refuses meanwhile are tried again (not the
        # client's end, as they were), and the open loop's requests that fell
        # due in the gap are sent late, timed from their due time.
        first = Server()
        port = first.port
        with first:
            proc = subprocess.Popen([TPCLIENT, "--port", str(port), "-c", "2", "-R", "100", "-d", "3",
                                     "--mix", "echo", "--reconnect", "--json"],
                                    stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    text=True)
            self.addCleanup(lambda: proc.poll() is None and (proc.kill(), proc.communicate()))
            time.sleep(1)
            first.proc.kill()
        time.sleep(0.3)
        with Server("--port", str(port)):
            out, err = proc.communicate(timeout=30)
        doc = json.loads(out)
        self.assertEqual((doc["disconnects"], doc["sent"]), (0, 300), out + err)
        # Each client once; or twice, where its first redial reached the killed
        # server's listening socket before the exit closed it (the kernel completes
        # a handshake there, then resets it).
        self.assertIn(doc["reconnects"], (2, 3, 4), out + err)
        self.assertEqual(doc["ok"] + doc["lost"], 300, out)
        self.assertGreater(doc["latency_ms"]["max"], 250, out)  # the gap shows

    def test_reconnect_backs_off_from_a_refusing_server(self):
        # One connection at a time: the second client is refused at accept
        # (ERR too many connections, then the close) each time it dials.  It
        # redials after 10 ms, then 20, 40, ... up to 1 s, not as fast as the
        # refusals come, while the first client goes on.
        with Server("--max-connections", "1") as srv:
            for loop in (["-P", "4"], ["-R", "200"]):
                with self.subTest(loop=loop):
                    t0 = time.monotonic()
                    p = run_client(srv.port, "-c", 2, "-d", 2, "--mix", "echo", "--reconnect", "--json", *loop,
                                   timeout=30)
                    took = time.monotonic() - t0
                    self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
                    doc = json.loads(p.stdout)
                    self.assertGreaterEqual(doc["reconnects"], 3, p.stdout)
                    self.assertLessEqual(doc["reconnects"], 20, p.stdout)
                    self.assertGreater(doc["ok"], 100, p.stdout)
                    self.assertLess(took, 6 * SLACK)

    def test_source_against_tpserver(self):
        with Server() as srv:
            p = run_client(srv.port, "--clients", 4, "--requests", 20, "--mix", "echo",
                           "--source", "127.0.0.2,127.0.0.3", "--json")
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
            doc = json.loads(p.stdout)
            self.assertEqual((doc["sent"], doc["ok"]), (80, 80))
            self.assertEqual(doc["sources"], ["127.0.0.2", "127.0.0.3"])

    def test_open_loop_rate_and_duration(self):
        with Server() as srv:
            p = run_client(srv.port, "--clients", 4, "--mix", "echo", "--rate", 2000, "--duration", 1,
                           "--json")
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
            doc = json.loads(p.stdout)
            self.assertEqual(doc["loop"], "open")
            self.assertIsNone(doc["requests_per_client"])
            # 2000/s for 1 s, issued on a schedule: about 2000, never more.
            self.assertGreaterEqual(doc["sent"], 1900)
            self.assertLessEqual(doc["sent"], 2000)
            self.assertEqual(doc["ok"], doc["sent"])
            self.assertGreaterEqual(doc["elapsed_s"], 0.99)
            self.assertLess(doc["elapsed_s"], 3.0)

    def test_open_loop_counts_a_stall_from_the_schedule(self):
        # The server is stopped for 0.5 s of a 3 s run at 1000/s: about 500
        # requests fall due in the stall and wait up to 0.5 s from their due
        # time, so about a sixth of all latencies are large.  A client that
        # measured from its actual send would see only the few in flight.
        with Server() as srv:
            proc = subprocess.Popen([TPCLIENT, "--port", str(srv.port), "--clients", "4", "--mix", "echo",
                                     "--rate", "1000", "--duration", "3", "--json"],
                                    stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True)
            time.sleep(1.0)
            with srv.stopped():
                time.sleep(0.5)
            out, err = proc.communicate(timeout=30)
            self.assertEqual(proc.returncode, 0, out + err)
            doc = json.loads(out)
            lat = doc["latency_ms"]
            self.assertGreater(lat["p90"], 50.0)
            self.assertGreater(lat["max"], 350.0)
            self.assertLess(lat["max"], 2000.0)
            self.assertLess(lat["p50"], 50.0)
            self.assertGreater(doc["late"], 100)
            self.assertGreaterEqual(doc["sent"], 2900)

    def test_progress_line_only_on_a_terminal(self):
        with Server() as srv:
            for quiet in (False, True):
                master, slave = pty.openpty()
                args = [TPCLIENT, "--port", str(srv.port), "--clients", "2", "--mix", "echo",
                        "--rate", "500", "--duration", "2.2"] + (["--quiet"] if quiet else [])
                proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                        stderr=slave, text=True)
                os.close(slave)
                out, _ = proc.communicate(timeout=30)
                err = read_pty(master)
                self.assertEqual(proc.returncode, 0, out)
                self.assertIn("SUMMARY", out)
                progress = PROGRESS_RE.findall(err)
                if quiet:
                    self.assertEqual(progress, [])
                    self.assertNotIn(b"\r", err)
                else:
                    self.assertGreaterEqual(len(progress), 2, err)
                    done = [int(p[-1]) for p in progress]
                    self.assertEqual(done, sorted(done))
                    self.assertGreater(done[-1], 0)
                    # 500 OK/s on the schedule, nothing busy, and the elapsed time counting up.
                    self.assertLess(abs(int(progress[0][2]) - 500), 100 * SLACK, err)
                    self.assertEqual((progress[0][3], progress[0][4], progress[0][5]), (b"0", b"0", b"0"))
                    # A line a second; its time is read when it is drawn, to a
                    # tenth, so a line drawn 50 ms late says 1.1.
                    for got, want in zip([float(p[0]) for p in progress[:2]], (1.0, 2.0)):
                        self.assertLess(abs(got - want), 0.3 * SLACK, err)

    def test_progress_line_tells_busy_apart(self):
        # One worker, a queue of one, no wait: most pipelined sleeps are refused;
        # the progress line says so instead of counting them as done requests.
        with Server("--workers", "1", "--queue", "1", "--queue-timeout-ms", "0") as srv:
            master, slave = pty.openpty()
            proc = subprocess.Popen([TPCLIENT, "--port", str(srv.port), "-c", "2", "-P", "8", "--mix", "sleep",
                                     "--sleep-ms", "20", "-d", "2.3"],
                                    stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=slave, text=True)
            os.close(slave)
            out, _ = proc.communicate(timeout=30)
            err = read_pty(master)
            progress = PROGRESS_RE.findall(err)
            self.assertGreaterEqual(len(progress), 2, err)
            _, warm, ok_s, busy_s, busy_pct, _, _, _ = progress[-1]
            self.assertEqual(warm, b"")
            self.assertLess(int(ok_s), 60)  # one 20 ms sleep at a time: about 50/s
            self.assertGreater(int(busy_s), int(ok_s))
            self.assertGreater(int(busy_pct), 50)
            self.assertGreater(int(parse_text(out)["ERRORS"]["busy"]), 0)

    def test_a_log_line_erases_the_progress_line(self):
        # The server closes the connection 1.5 s in, while the progress line
        # is shown: the log line starts on a clean line, not glued to it.
        with ScriptedServer(correct_reply, close_after=15) as srv:
            master, slave = pty.openpty()
            proc = subprocess.Popen([TPCLIENT, "--port", str(srv.port), "-c", "1", "-R", "10", "-d", "3",
                                     "--mix", "echo"],
                                    stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=slave, text=True)
            os.close(slave)
            out, _ = proc.communicate(timeout=30)
            err = read_pty(master)
        self.assertEqual(proc.returncode, 1, out)
        self.assertGreaterEqual(len(PROGRESS_RE.findall(err)), 1, err)
        self.assertIn(b"server closed the connection", err)
        for m in re.finditer(rb"tpclient\[\d+\]: ", err):
            self.assertTrue(err[:m.start()].endswith(b"\r\x1b[K") or err[:m.start()].endswith(b"\n")
                            or m.start() == 0, err)

    def test_duration_closed_loop(self):
        with Server() as srv:
            t0 = time.monotonic()
            p = run_client(srv.port, "--clients", 2, "--mix", "echo", "--duration", 0.5, "--json")
            took = time.monotonic() - t0
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
            doc = json.loads(p.stdout)
            self.assertGreater(doc["sent"], 100)
            self.assertEqual(doc["ok"], doc["sent"])
            self.assertGreaterEqual(doc["elapsed_s"], 0.5)
            self.assertLess(took, 5.0)

    def test_sigint_stops_cleanly(self):
        with Server() as srv:
            cmd = [TPCLIENT, "--port", str(srv.port), "--clients", 2, "--mix", "sleep",
                   "--sleep-ms", "20-40", "--duration", 60, "--json"]
            proc = subprocess.Popen([str(c) for c in cmd], stdin=subprocess.DEVNULL,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            time.sleep(0.5)
            t0 = time.monotonic()
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=10)
            self.assertLess(time.monotonic() - t0, 2.0)
            doc = json.loads(out)
            self.assertTrue(doc["interrupted"])
            # Outstanding requests were waited for, not dropped.
            self.assertGreater(doc["sent"], 0)
            self.assertEqual(doc["ok"], doc["sent"])
            self.assertEqual(proc.returncode, 0, err)


if __name__ == "__main__":
    tplib.main(verbosity=2, warnings="ignore")
