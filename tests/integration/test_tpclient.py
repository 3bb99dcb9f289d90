# SPDX-License-Identifier: MIT
"""Integration tests of tpclient: the real load generator against the real
tpserver (each mix, the text and JSON reports, busy rejections, open loop,
interruption), and against small scripted servers in this file for what a
correct server never does (wrong replies, silence) and for reproducibility."""
import contextlib
import json
import os
import pty
import re
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest

import tplib
from tplib import SLACK, TPCLIENT, Server, check_help_layout

SUMMARY_RE = re.compile(
    r"^SUMMARY sent=(\d+) recv=(\d+) ok=(\d+) err=(\d+) elapsed=(\d+\.\d{3}) ok_rps=(\d+\.\d)$", re.M)
FIELDS_RE = re.compile(r"(\w[\w.]*)=([^\s]+)")

JSON_KEYS = {
    "tpclient", "host", "port", "loop", "clients", "threads", "max_inflight", "mix", "rate",
    "requests_per_client", "duration_s", "sources", "sleep_ms", "echo_bytes", "recv_timeout_s", "seed",
    "sent", "recv", "ok", "err", "busy", "other_err", "mismatch", "timeouts", "lost",
    "disconnects", "connect_failed", "reconnects", "reconnect", "late", "elapsed_s", "ok_rps", "interrupted", "latency_ms",
    "ops", "exit_status", "retries", "gave_up", "retry_busy", "warmup_s",
}
OP_KEYS = {"sent", "recv", "ok", "err", "busy", "other_err", "mismatch", "timeouts", "lost", "late", "ok_rps",
           "latency_ms", "retries", "gave_up"}
LATENCY_KEYS = {"count", "min", "mean", "p50", "p90", "p99", "p99_9", "max"}
PROGRESS_RE = re.compile(rb"\r\[(\d+\.\d) s( warmup)?\] ok (\d+)/s  busy (\d+)/s \((\d+)%\)  errors (\d+)/s  "
                         rb"p99 (\d+\.\d{3}) ms  replies (\d+)\x1b\[K")
HGRM_HEAD = "       Value   Percentile   TotalCount 1/(1-Percentile)"


def parse_hgrm(text):
    """An .hgrm file as HdrHistogram's plotter reads it: (value, percentile, total count) rows and
    the footer's numbers; asserts its shape on the way."""
    lines = text.splitlines()
    assert lines[0] == HGRM_HEAD and lines[1] == "", lines[:2]
    rows, footer = [], {}
    for line in lines[2:]:
        if line.startswith("#["):
            footer.update((k.strip(), float(v)) for k, v in
                          (kv.split("=") for kv in line[2:-1].split(",")))
            continue
        value, pct, count, inv = line.split()
        rows.append((float(value), float(pct), int(count)))
        assert inv == "inf" if float(pct) == 1.0 else abs(float(inv) - 1 / (1 - float(pct))) < 0.01 + float(inv) ** 2 * 1e-6, line
    return rows, footer


def run_client(port, *args, timeout=120):
    cmd = [TPCLIENT, "--host", "127.0.0.1", "--port", str(port)] + [str(a) for a in args]
    return subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout)


def fill_accept_queue(test, port):
    """Fill the accept queue of a listener on port made with backlog 0: it
    then drops every SYN."""
    for _ in range(2):
        f = socket.socket()
        test.addCleanup(f.close)
        f.setblocking(False)
        f.connect_ex(("127.0.0.1", port))
    time.sleep(0.2)


@contextlib.contextmanager
def full_accept_queue(test):
    """The port of a listener whose accept queue is full: it drops every SYN."""
    with socket.create_server(("127.0.0.1", 0), backlog=0) as lst:
        port = lst.getsockname()[1]
        fill_accept_queue(test, port)
        yield port


def read_pty(master):
    """Everything written to a pseudo-terminal until its other side closed; closes master."""
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
    return err


def parse_groups(out):
    """The GROUP lines of a text report, by name."""
    groups = {}
    for line in out.splitlines():
        if line.startswith("GROUP "):
            fields = dict(FIELDS_RE.findall(line[len("GROUP "):]))
            groups[fields["name"]] = fields
    return groups


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

    def __init__(self, reply, host="127.0.0.1", close_after=None, accepts=None):
        self.reply = reply
        self.close_after = close_after  # replies per connection, then close it
        self.accepts = accepts  # connections to take, then stop listening (later ones are refused)
        self.lines = []
        self.peers = []  # the client address of each accepted connection
        self.lock = threading.Lock()
        self.sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, 0))
        self.sock.listen(128)
        self.port = self.sock.getsockname()[1]
        self.conns = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, peer = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.peers.append(peer[0])
            self.conns.append(c)
            if self.accepts is not None and len(self.conns) >= self.accepts:
                # Before this connection is served: whatever the client does
                # after its first reply, a new connection finds nothing listening.
                self.sock.shutdown(socket.SHUT_RDWR)
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c):
        buf = b""
        replies = 0
        while self.close_after is None or replies < self.close_after:
            try:
                data = c.recv(65536)
            except OSError:
                return
            if not data:
                return
            buf += data
            out = []
            while b"\n" in buf and (self.close_after is None or replies + len(out) < self.close_after):
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
                replies += len(out)
        c.close()

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
    def test_known_interface(self):
        # The command line the README shows, unchanged, with short sleeps.
        with Server("--workers", "16") as srv:
            p = run_client(srv.port, "--clients", 5, "--requests", 200, "--mix", "balanced",
                           "--max-inflight", 10, "--sleep-ms", "1-5")
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
            rep = parse_text(p.stdout)
            self.assertEqual((rep["SUMMARY"]["sent"], rep["SUMMARY"]["ok"]), (1000, 1000))
            self.assertEqual([l.split(" ", 1)[0] for l in p.stdout.splitlines()],
                             ["SUMMARY", "ERRORS", "LATENCY_MS", "RUN", "OP", "OP", "OP"])

    def test_latency_file_and_spectrum(self):
        with Server("--workers", "8") as srv, tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "run.hgrm")
            p = run_client(srv.port, "-c", 4, "--requests", 300, "--sleep-ms", "1-20", "--latency-file", path,
                           "--json")
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
            doc = json.loads(p.stdout)
            with open(path) as f:
                rows, footer = parse_hgrm(f.read())
            for col in range(3):
                self.assertEqual([r[col] for r in rows], sorted(r[col] for r in rows))
            self.assertEqual((rows[0][1], rows[-1][1]), (0.0, 1.0))
            self.assertEqual(rows[-1][2], doc["ok"])
            self.assertEqual(int(footer["Total count"]), doc["recv"])
            self.assertAlmostEqual(footer["Max"], doc["latency_ms"]["max"], places=3)
            self.assertAlmostEqual(footer["Mean"], doc["latency_ms"]["mean"], places=3)
            self.assertEqual((footer["Buckets"], footer["SubBuckets"]), (57, 256))
            # The JSON carries the same spectrum, and its 50% point is p50's bucket.
            spectrum = doc["latency_ms"]["percentiles"]
            self.assertEqual([(round(x["ms"], 3), round(x["p"] / 100, 6), x["count"]) for x in spectrum],
                             [(v, p, c) for v, p, c in rows])
            p50 = next(x for x in spectrum if x["p"] == 50.0)
            self.assertLess(abs(p50["ms"] - doc["latency_ms"]["p50"]), doc["latency_ms"]["p50"] / 100)

            # A file that cannot be written fails the run, naming it; the report still comes,
            # and the JSON one says the status the run exits with.
            p = run_client(srv.port, "-c", 1, "--requests", 5, "--mix", "echo", "--latency-file",
                           os.path.join(d, "missing", "x.hgrm"))
            self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
            self.assertIn("SUMMARY sent=5", p.stdout)
            self.assertIn("cannot write " + os.path.join(d, "missing", "x.hgrm"), p.stderr)
            p = run_client(srv.port, "-c", 1, "--requests", 5, "--mix", "echo", "--json", "--latency-file",
                           os.path.join(d, "missing", "x.hgrm"))
            self.assertEqual((p.returncode, json.loads(p.stdout)["exit_status"]), (1, 1), p.stdout + p.stderr)

    def test_interval_rows_and_warmup(self):
        # 1000/s for 1 s after a warmup of 1 s: the totals are the second second only,
        # the rows on stderr cover both, the warmup ones marked.
        with Server() as srv:
            p = run_client(srv.port, "-c", 2, "--mix", "echo", "-R", "1k", "-d", 1, "--warmup", 1,
                           "--interval", "500ms", "--json")
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
            doc = json.loads(p.stdout)
            self.assertGreaterEqual(doc["sent"], 950)
            self.assertLessEqual(doc["sent"], 1000)
            self.assertEqual(doc["ok"], doc["sent"])
            self.assertLess(abs(doc["elapsed_s"] - 1.0), 0.3 * SLACK)
            rows = [dict(FIELDS_RE.findall(l)) for l in p.stderr.splitlines() if l.startswith("INTERVAL ")]
            self.assertGreaterEqual(len(rows), 4, p.stderr)
            self.assertEqual([r["warmup"] for r in rows[:3]], ["1", "1", "0"])
            self.assertGreaterEqual(sum(int(r["ok"]) for r in rows), 1900)
            for r in rows[:4]:
                self.assertLess(abs(float(r["ok_rps"]) - 1000), 150 * SLACK, r)  # a stall moves replies a row on
                self.assertEqual((r["busy"], r["errors"]), ("0", "0"))
                self.assertGreater(float(r["p99"]), 0)
            times = [float(r["t"]) for r in rows]
            self.assertEqual(times, sorted(times))

            # Closed loop: --requests counts what is sent after the warmup.
            p = run_client(srv.port, "-c", 2, "--requests", 50, "--mix", "echo", "-P", 1, "--warmup", "300ms",
                           "--json")
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
            doc = json.loads(p.stdout)
            self.assertEqual((doc["sent"], doc["ok"], doc["latency_ms"]["count"]), (100, 100, 100))

    def test_timeline_file(self):
        with Server() as srv, tempfile.TemporaryDirectory() as d:
            for name in ("rows.jsonl", "rows.csv"):
                path = os.path.join(d, name)
                p = run_client(srv.port, "-c", 2, "--mix", "echo", "-R", 500, "-d", "2s", "--timeline", path)
                self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
                self.assertNotIn("INTERVAL", p.stderr)
                with open(path) as f:
                    text = f.read()
                if name.endswith(".csv"):
                    lines = text.splitlines()
                    self.assertEqual(lines[0], "t_s,dt_s,ok,busy,errors,ok_rps,busy_rps,err_rps,p50_ms,p99_ms,warmup")
                    rows = [dict(zip(lines[0].split(","), l.split(","))) for l in lines[1:]]
                else:
                    rows = [json.loads(l) for l in text.splitlines()]
                self.assertGreaterEqual(len(rows), 2, text)
                self.assertLess(abs(float(rows[0]["t_s"]) - 1.0), 0.2 * SLACK)  # a row a second by default
                self.assertEqual(sum(int(r["ok"]) for r in rows), parse_text(p.stdout)["SUMMARY"]["ok"])

    def test_retry_busy(self):
        # One worker, a queue of one, no wait: pipelined 20 ms sleeps are mostly refused.
        args = ["-c", 2, "-P", 8, "--mix", "sleep", "--sleep-ms", 20, "--requests", 20, "--json"]
        with Server("--workers", "1", "--queue", "1", "--queue-timeout-ms", "0") as srv:
            p = run_client(srv.port, *args)
            self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
            plain = json.loads(p.stdout)
            self.assertEqual((plain["retries"], plain["gave_up"], plain["retry_busy"]), (0, 0, None))
            self.assertGreater(plain["busy"], 0)
            self.assertLess(plain["ok"], 40)

            # Backing off 30 ms, up to 50 times: every request gets its OK in the end.
            p = run_client(srv.port, *args, "--retry-busy", "30ms,50")
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
            doc = json.loads(p.stdout)
            self.assertEqual(doc["retry_busy"], {"delay_s": 0.03, "budget": 50})
            self.assertEqual((doc["ok"], doc["gave_up"]), (40, 0))
            self.assertGreater(doc["retries"], 0)
            self.assertEqual(doc["busy"], doc["retries"])
            self.assertEqual(doc["sent"], doc["ok"] + doc["retries"])
            self.assertEqual(doc["ops"]["sleep"]["retries"], doc["retries"])
            # A retried request's latency counts from its first send, delays included.
            self.assertGreater(doc["latency_ms"]["max"], 50.0)

            # A budget of one: what is refused twice is given up, and the run fails.
            p = run_client(srv.port, *args, "--retry-busy", "1ms,1")
            self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
            doc = json.loads(p.stdout)
            self.assertGreater(doc["gave_up"], 0)
            self.assertEqual(doc["busy"], doc["retries"] + doc["gave_up"])
            self.assertLessEqual(doc["retries"], 40)
            self.assertEqual(doc["sent"], 40 + doc["retries"])

            # The text report: the counts on ERRORS, the setting on RUN.
            p = run_client(srv.port, *args[:-1], "--retry-busy", "30ms,50")
            rep = parse_text(p.stdout)
            self.assertEqual(rep["ERRORS"]["gave_up"], "0")
            self.assertEqual(rep["ERRORS"]["retries"], rep["ERRORS"]["busy"])
            self.assertEqual(rep["RUN"]["retry_busy"], "0.030,50")

    def test_ops_are_reported_apart(self):
        # SLEEPs of 30 ms and ECHOs, one at a time per client: the ops' latencies differ by the sleep.
        with Server("--workers", "8") as srv:
            p = run_client(srv.port, "-c", 4, "--requests", 40, "--mix", "balanced", "--sleep-ms", 30,
                           "-P", 1, "--seed", 11, "--json")
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
            doc = json.loads(p.stdout)
            sleep, echo = doc["ops"]["sleep"], doc["ops"]["echo"]
            self.assertEqual(set(sleep), OP_KEYS)
            self.assertEqual(set(echo), OP_KEYS)
            for key in ("sent", "recv", "ok", "err", "busy"):
                self.assertEqual(sleep[key] + echo[key], doc[key], key)
            self.assertGreater(sleep["ok"], 20)
            self.assertGreater(echo["ok"], 20)
            self.assertEqual(sleep["latency_ms"]["count"] + echo["latency_ms"]["count"], doc["latency_ms"]["count"])
            self.assertGreaterEqual(sleep["latency_ms"]["min"], 30.0)
            self.assertLess(echo["latency_ms"]["p50"], 30.0)
            self.assertEqual(doc["latency_ms"]["max"], max(sleep["latency_ms"]["max"], echo["latency_ms"]["max"]))

            # The text report has the same rows: sleep, echo, total.
            p = run_client(srv.port, "-c", 4, "--requests", 40, "--mix", "sleep", "--sleep-ms", 5)
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
            ops = [dict(FIELDS_RE.findall(l)) for l in p.stdout.splitlines() if l.startswith("OP ")]
            self.assertEqual([o["op"] for o in ops], ["sleep", "echo", "total"])
            self.assertEqual((ops[0]["ok"], ops[1]["ok"], ops[2]["ok"]), ("160", "0", "160"))
            self.assertEqual(ops[2]["p99"], parse_text(p.stdout)["LATENCY_MS"]["p99"])

    def test_groups_are_reported_apart(self):
        groups = ["--group", "name=echoers,clients=2,requests=30,mix=echo,max-inflight=5",
                  "--group", "name=sleepers,clients=1,requests=4,mix=sleep,sleep-ms=20,max-inflight=1"]
        with Server("--workers", "4") as srv:
            p = run_client(srv.port, *groups, "--json")
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
            doc = json.loads(p.stdout)
            self.assertEqual(set(doc), JSON_KEYS | {"groups"})
            self.assertEqual((doc["sent"], doc["ok"], doc["clients"], doc["loop"]), (64, 64, 3, "closed"))
            self.assertEqual(doc["latency_ms"]["count"], 64)
            echoers, sleepers = doc["groups"]
            self.assertEqual((echoers["name"], echoers["mix"], echoers["clients"], echoers["max_inflight"]),
                             ("echoers", "echo", 2, 5))
            self.assertEqual((echoers["sent"], echoers["ok"], echoers["latency_ms"]["count"]), (60, 60, 60))
            self.assertEqual((sleepers["name"], sleepers["mix"], sleepers["sleep_ms"]), ("sleepers", "sleep", [20, 20]))
            self.assertEqual((sleepers["sent"], sleepers["ok"], sleepers["latency_ms"]["count"]), (4, 4, 4))
            # One at a time: each SLEEP 20 took its 20 ms; the ECHOs did not wait for them.
            self.assertGreaterEqual(sleepers["latency_ms"]["min"], 20.0)
            self.assertLess(echoers["latency_ms"]["p50"], 20.0)
            self.assertEqual((echoers["ops"]["echo"]["ok"], echoers["ops"]["sleep"]["ok"]), (60, 0))
            self.assertEqual((sleepers["ops"]["sleep"]["ok"], sleepers["ops"]["echo"]["sent"]), (4, 0))

            p = run_client(srv.port, *groups)
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
            rep = parse_text(p.stdout)
            self.assertEqual((rep["SUMMARY"]["sent"], rep["RUN"]["groups"], rep["RUN"]["clients"]), (64, "2", "3"))
            g = parse_groups(p.stdout)
            self.assertEqual(sorted(g), ["echoers", "sleepers"])
            self.assertEqual((g["echoers"]["sent"], g["echoers"]["ok"], g["echoers"]["mix"]), ("60", "60", "echo"))
            self.assertEqual((g["sleepers"]["sent"], g["sleepers"]["err"], g["sleepers"]["max_inflight"]),
                             ("4", "0", "1"))
            self.assertGreaterEqual(float(g["sleepers"]["min"]), 20.0)
            # Each group's OP rows, after the run's own.
            ops = [dict(FIELDS_RE.findall(l)) for l in p.stdout.splitlines() if l.startswith("OP ")]
            self.assertEqual([(o.get("group"), o["op"]) for o in ops],
                             [(None, "sleep"), (None, "echo"), (None, "total"), ("echoers", "sleep"),
                              ("echoers", "echo"), ("echoers", "total"), ("sleepers", "sleep"),
                              ("sleepers", "echo"), ("sleepers", "total")])
            self.assertEqual((ops[4]["ok"], ops[6]["ok"], ops[3]["ok"]), ("60", "4", "0"))

    def test_groups_count_failures_apart(self):
        # A queue of one, no wait: the flooder's pipelined sleeps fill it, and
        # busy replies are counted in the group that got them.
        with Server("--workers", "1", "--queue", "1", "--queue-timeout-ms", "0") as srv:
            p = run_client(srv.port, "--group", "name=flooder,clients=2,requests=20,mix=sleep,sleep-ms=30,max-inflight=10",
                           "--group", "name=quiet,clients=1,requests=5,mix=echo,max-inflight=1", "--json")
            self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
            doc = json.loads(p.stdout)
            flooder, quiet = doc["groups"]
            self.assertGreater(flooder["busy"], 0)
            self.assertEqual(doc["busy"], flooder["busy"] + quiet["busy"])
            self.assertEqual(doc["sent"], flooder["sent"] + quiet["sent"])
            self.assertEqual((flooder["sent"], quiet["sent"]), (40, 5))
            self.assertEqual(flooder["ok"] + flooder["busy"], 40)

    def test_group_rate_is_per_group(self):
        # The free group is a closed loop with a window of 16: unpaced it sends
        # thousands in the second even on a slow machine; held to any share of
        # the paced group's rate it would send 300 at most.
        with Server() as srv:
            p = run_client(srv.port, "--duration", 1, "--group", "name=paced,clients=2,rate=300,mix=echo",
                           "--group", "name=free,clients=1,mix=echo,max-inflight=16", "--json")
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
            doc = json.loads(p.stdout)
            paced, free = doc["groups"]
            self.assertEqual((doc["loop"], paced["loop"], free["loop"]), ("mixed", "open", "closed"))
            self.assertGreaterEqual(paced["sent"], 280)
            self.assertLessEqual(paced["sent"], 300)
            self.assertGreater(free["sent"], 300)
            self.assertEqual(doc["rate"], 300.0)

    def test_fairness_scenario_is_one_command(self):
        # The flooder pipelines SLEEP 40s from one address, the victim sends
        # SLEEP 10 one at a time from another: both run, each measured apart.
        with Server("--workers", "2") as srv:
            p = run_client(srv.port, "--duration", 1.5,
                           "--group", "name=flooder,clients=2,max-inflight=16,mix=sleep,sleep-ms=40,source=127.0.0.2",
                           "--group", "name=victim,clients=1,max-inflight=1,mix=sleep,sleep-ms=10,source=127.0.0.3",
                           "--json")
            doc = json.loads(p.stdout)
            flooder, victim = doc["groups"]
            self.assertEqual((flooder["sources"], victim["sources"]), (["127.0.0.2"], ["127.0.0.3"]))
            self.assertGreater(flooder["ok"], 0)
            self.assertGreater(victim["ok"], 0)
            self.assertGreaterEqual(victim["latency_ms"]["min"], 10.0)
            self.assertEqual(doc["ok"], flooder["ok"] + victim["ok"])

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
        self.assertEqual((doc["disconnects"], doc["reconnects"], doc["sent"]), (0, 2, 300), out + err)
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

    def test_each_mix(self):
        with Server("--workers", "8") as srv:
            for mix in ("sleep", "echo", "balanced"):
                with self.subTest(mix=mix):
                    t0 = time.monotonic()
                    p = run_client(srv.port, "--clients", 5, "--requests", 60, "--mix", mix,
                                   "--max-inflight", 10, "--sleep-ms", "10-30")
                    wall = time.monotonic() - t0
                    self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
                    rep = parse_text(p.stdout)
                    s = rep["SUMMARY"]
                    self.assertEqual((s["sent"], s["recv"], s["ok"], s["err"]), (300, 300, 300, 0))
                    # The run inside the process that ran it (elapsed= is rounded to 1 ms).
                    self.assertLessEqual(s["elapsed"], wall + 0.0005)
                    if mix == "sleep":
                        # 300 SLEEPs of at least 10 ms on 8 workers: 3 s of sleeping, 0.375 s at best.
                        self.assertGreaterEqual(s["elapsed"], 0.374)
                    self.assertGreater(s["ok_rps"], 0)
                    # ok_rps is ok / elapsed before elapsed's rounding to 1 ms.
                    self.assertLessEqual(abs(s["ok_rps"] * s["elapsed"] - 300), s["ok_rps"] * 0.0005 + 1)
                    self.assertEqual(rep["ERRORS"], {"busy": "0", "other": "0", "mismatch": "0",
                                                     "timeouts": "0", "lost": "0", "disconnects": "0",
                                                     "connect_failed": "0", "reconnects": "0", "retries": "0",
                                                     "gave_up": "0"})
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
            self.assertEqual(set(doc["latency_ms"]), LATENCY_KEYS | {"percentiles"})
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


class CommandLine(unittest.TestCase):
    def test_usage_errors_exit_2_naming_the_flag(self):
        for args, flag in ((["--clients", "0"], "--clients"), (["--mix", "fast"], "--mix"),
                           (["--bogus"], "--bogus"), (["--sleep-ms", "9-1"], "--sleep-ms"),
                           (["--rate", "x"], "--rate"), (["--log-level", "loud"], "--log-level"),
                           (["--duration", "0x10"], "--duration"), (["--duration", "+0.5"], "--duration"),
                           (["--duration", " 0.5"], "--duration"), (["--rate", "1e-300"], "--rate"),
                           (["--source", "127.0.0.256"], "--source"),
                           (["--source", "127.0.0.2,nonsense"], "--source"),
                           (["--group", "clients=0"], "--group"), (["--group", "colour=red"], "--group")):
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
                     "--duration", "--json", "--seed", "--source", "--group", "--reconnect"):
            self.assertIn(flag, p.stdout)
        check_help_layout(self, p.stdout, 29)
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

    def test_a_host_that_does_not_resolve_is_one_line(self):
        # A name with a space never reaches a resolver: it fails at once, here and anywhere.
        p = subprocess.run([TPCLIENT, "--host", "bad host", "--port", "9", "--requests", "1"],
                           stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 1)
        self.assertEqual(p.stdout, "")
        lines = p.stderr.strip().splitlines()
        self.assertEqual(len(lines), 1, p.stderr)
        self.assertIn("cannot resolve bad host:9", lines[0])


if __name__ == "__main__":
    if not os.access(TPCLIENT, os.X_OK):
        raise SystemExit("tpclient not found at %s (set TPCLIENT or TPSERVER)" % TPCLIENT)
    tplib.main()
