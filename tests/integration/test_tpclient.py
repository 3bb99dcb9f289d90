# SPDX-License-Identifier: MIT
"""Integration tests of tpclient: the real load generator against the real
tpserver (each mix, the text and JSON reports, busy rejections, open loop,
interruption), and against small scripted servers in this file for what a
correct server never does (wrong replies, silence) and for reproducibility."""
import json
import os
import pty
import re
import signal
import socket
import subprocess
import threading
import time
import unittest

import tplib
from tplib import TPCLIENT, Server

SUMMARY_RE = re.compile(
    r"^SUMMARY sent=(\d+) recv=(\d+) ok=(\d+) err=(\d+) elapsed=(\d+\.\d{3}) ok_rps=(\d+\.\d)$", re.M)
FIELDS_RE = re.compile(r"(\w[\w.]*)=([^\s]+)")

JSON_KEYS = {
    "tpclient", "host", "port", "loop", "clients", "threads", "max_inflight", "mix", "rate",
    "requests_per_client", "duration_s", "sleep_ms", "echo_bytes", "recv_timeout_s", "seed",
    "sent", "recv", "ok", "err", "busy", "other_err", "mismatch", "timeouts", "lost",
    "disconnects", "connect_failed", "late", "elapsed_s", "ok_rps", "interrupted", "latency_ms",
    "exit_status",
}
LATENCY_KEYS = {"count", "min", "mean", "p50", "p90", "p99", "p99_9", "max"}


def run_client(port, *args, timeout=120):
    cmd = [TPCLIENT, "--host", "127.0.0.1", "--port", str(port)] + [str(a) for a in args]
    return subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout)


def parse_text(out):
    """The SUMMARY numbers plus every KEY=VALUE of the lines after it, keyed by line tag."""
    m = SUMMARY_RE.search(out)
    if not m:
        raise AssertionError("no SUMMARY line in:\n" + out)
    report = {"SUMMARY": dict(zip(("sent", "recv", "ok", "err"), map(int, m.groups()[:4])))}
    report["SUMMARY"]["elapsed"] = float(m.group(5))
    report["SUMMARY"]["ok_rps"] = float(m.group(6))
    for line in out.splitlines()[1:]:
        tag, _, rest = line.partition(" ")
        report[tag] = dict(FIELDS_RE.findall(rest))
    return report


class ScriptedServer:
    """A one-thread-per-connection TCP server that records request lines and
    answers each with reply(line) (None: stay silent)."""

    def __init__(self, reply):
        self.reply = reply
        self.lines = []
        self.lock = threading.Lock()
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.port = self.sock.getsockname()[1]
        self.conns = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(c)
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c):
        buf = b""
        while True:
            try:
                data = c.recv(65536)
            except OSError:
                return
            if not data:
                return
            buf += data
            out = []
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                line = line.decode("latin-1")
                with self.lock:
                    self.lines.append(line)
                r = self.reply(line)
                if r is not None:
                    out.append(r + "\n")
            if out:
                try:
                    c.sendall("".join(out).encode("latin-1"))
                except OSError:
                    return

    def close(self):
        self.sock.close()
        for c in self.conns:
            c.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def correct_reply(line):
    op, _, arg = line.partition(" ")
    return "OK " + arg


class AgainstTpserver(unittest.TestCase):
    def test_each_mix(self):
        with Server("--workers", "8") as srv:
            for mix in ("sleep", "echo", "balanced"):
                with self.subTest(mix=mix):
                    p = run_client(srv.port, "--clients", 5, "--requests", 60, "--mix", mix,
                                   "--max-inflight", 10, "--sleep-ms", "10-30")
                    self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
                    rep = parse_text(p.stdout)
                    s = rep["SUMMARY"]
                    self.assertEqual((s["sent"], s["recv"], s["ok"], s["err"]), (300, 300, 300, 0))
                    self.assertGreater(s["elapsed"], 0)
                    self.assertGreater(s["ok_rps"], 0)
                    self.assertEqual(rep["ERRORS"], {"busy": "0", "other": "0", "mismatch": "0",
                                                     "timeouts": "0", "lost": "0", "disconnects": "0",
                                                     "connect_failed": "0"})
                    lat = {k: float(v) for k, v in rep["LATENCY_MS"].items()}
                    self.assertLessEqual(lat["p50"], lat["p90"])
                    self.assertLessEqual(lat["p90"], lat["p99"])
                    self.assertLessEqual(lat["p99"], lat["p99.9"])
                    self.assertLessEqual(lat["p99.9"], lat["max"])
                    if mix == "sleep":
                        # Every SLEEP took at least its 10 ms.
                        self.assertGreaterEqual(lat["min"], 10.0)
                    self.assertEqual(rep["RUN"]["mix"], mix)
                    self.assertEqual(rep["RUN"]["loop"], "closed")
                    # Not a terminal: no progress line on stderr.
                    self.assertNotIn("\r", p.stderr)

    def test_json(self):
        with Server() as srv:
            p = run_client(srv.port, "--clients", 3, "--requests", 50, "--mix", "balanced",
                           "--sleep-ms", "10-30", "--echo-bytes", "1-20", "--seed", 7, "--json")
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
            self.assertNotIn("SUMMARY", p.stdout)
            self.assertEqual(len(p.stdout.strip().splitlines()), 1)
            doc = json.loads(p.stdout)
            self.assertEqual(set(doc), JSON_KEYS)
            self.assertEqual(set(doc["latency_ms"]), LATENCY_KEYS)
            self.assertEqual((doc["sent"], doc["recv"], doc["ok"], doc["err"]), (150, 150, 150, 0))
            self.assertEqual(doc["latency_ms"]["count"], 150)
            self.assertEqual((doc["loop"], doc["mix"], doc["seed"]), ("closed", "balanced", 7))
            self.assertEqual((doc["sleep_ms"], doc["echo_bytes"]), ([10, 30], [1, 20]))
            self.assertEqual((doc["clients"], doc["requests_per_client"], doc["exit_status"]), (3, 50, 0))
            self.assertIsNone(doc["rate"])
            self.assertFalse(doc["interrupted"])

    def test_busy_rejections_are_counted_as_busy(self):
        with Server("--workers", "1", "--queue", "1", "--queue-timeout-ms", "100") as srv:
            p = run_client(srv.port, "--clients", 4, "--requests", 10, "--max-inflight", 4,
                           "--mix", "sleep", "--sleep-ms", "50-100", "--json")
            self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
            doc = json.loads(p.stdout)
            self.assertGreater(doc["busy"], 0)
            self.assertGreater(doc["ok"], 0)
            self.assertEqual((doc["other_err"], doc["mismatch"], doc["timeouts"], doc["lost"]), (0, 0, 0, 0))
            self.assertEqual(doc["err"], doc["busy"])
            self.assertEqual(doc["ok"] + doc["busy"], doc["sent"])
            self.assertEqual(doc["recv"], doc["sent"])

            # The text report says the same.
            p = run_client(srv.port, "--clients", 4, "--requests", 10, "--max-inflight", 4,
                           "--mix", "sleep", "--sleep-ms", "50-100")
            self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
            rep = parse_text(p.stdout)
            self.assertGreater(int(rep["ERRORS"]["busy"]), 0)
            self.assertEqual(rep["ERRORS"]["other"], "0")
            self.assertEqual(rep["SUMMARY"]["err"], int(rep["ERRORS"]["busy"]))

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
            srv.signal(signal.SIGSTOP)
            time.sleep(0.5)
            srv.signal(signal.SIGCONT)
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
                err = b""
                while True:
                    try:
                        chunk = os.read(master, 65536)
                    except OSError:  # EIO: the terminal's other side is closed
                        break
                    if not chunk:
                        break
                    err += chunk
                os.close(master)
                self.assertEqual(proc.returncode, 0, out)
                self.assertIn("SUMMARY", out)
                progress = re.findall(rb"\r(\d+) done  (\d+) req/s  p99 (\d+\.\d{3}) ms", err)
                if quiet:
                    self.assertEqual(progress, [])
                    self.assertNotIn(b"\r", err)
                else:
                    self.assertGreaterEqual(len(progress), 2, err)
                    done = [int(p[0]) for p in progress]
                    self.assertEqual(done, sorted(done))
                    self.assertGreater(done[-1], 0)

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


class AgainstScriptedServers(unittest.TestCase):
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


class CommandLine(unittest.TestCase):
    def test_usage_errors_exit_2_naming_the_flag(self):
        for args, flag in ((["--clients", "0"], "--clients"), (["--mix", "fast"], "--mix"),
                           (["--bogus"], "--bogus"), (["--sleep-ms", "9-1"], "--sleep-ms"),
                           (["--rate", "x"], "--rate"), (["--log-level", "loud"], "--log-level")):
            with self.subTest(args=args):
                p = run_client(9, *args)
                self.assertEqual(p.returncode, 2)
                self.assertEqual(p.stdout, "")
                lines = p.stderr.strip().splitlines()
                self.assertEqual(len(lines), 1, p.stderr)
                self.assertIn(flag, lines[0])

    def test_help_and_version(self):
        p = subprocess.run([TPCLIENT, "--help"], capture_output=True, text=True)
        self.assertEqual(p.returncode, 0)
        for flag in ("--clients", "--requests", "--mix", "--max-inflight", "--recv-timeout", "--rate",
                     "--duration", "--json", "--seed"):
            self.assertIn(flag, p.stdout)
        p = subprocess.run([TPCLIENT, "--version"], capture_output=True, text=True)
        self.assertEqual(p.returncode, 0)
        self.assertRegex(p.stdout, r"^tpclient \d+\.\d+\.\d+\n$")

    def test_nothing_listening(self):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        p = run_client(port, "--clients", 2, "--requests", 5)
        self.assertEqual(p.returncode, 1)
        self.assertIn("connect", p.stderr)
        rep = parse_text(p.stdout)
        self.assertEqual(rep["SUMMARY"]["sent"], 0)
        self.assertEqual(rep["ERRORS"]["connect_failed"], "2")


if __name__ == "__main__":
    if not os.access(TPCLIENT, os.X_OK):
        raise SystemExit("tpclient not found at %s (set TPCLIENT or TPSERVER)" % TPCLIENT)
    tplib.main()
