#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Integration tests of tpclient against the real tpserver: its reports
(text, JSON, latency files, interval rows, timelines, groups and ops
apart), each mix, busy rejections and retries, and its command line."""
import json
import os
import socket
import subprocess
import tempfile
import time
import unittest

import tplib
from tplib import SLACK, TPCLIENT, Server, check_help_layout
from tpclientlib import FIELDS_RE, JSON_KEYS, LATENCY_KEYS, OP_KEYS, parse_groups, parse_hgrm, parse_text, run_client


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
            # A reply counts in the row that receives it: one held past the row's end (by the client, the
            # server or a busy machine) counts in the next.  Its latency counts from its scheduled send, so
            # the hold shows there: no more replies move into a row than were scheduled over its p99, nor
            # out of it than over the next row's.
            for i, r in enumerate(rows[:4]):
                dt, ok = float(r["dt"]), int(r["ok"])
                self.assertLess(abs(float(r["ok_rps"]) - ok / dt), 2, r)
                moved_in = float(r["p99"])  # ms at 1000/s: replies
                moved_out = float(rows[i + 1]["p99"]) if i + 1 < len(rows) else 0.0
                self.assertLess(ok, 1000 * dt * (1 + 0.15 * SLACK) + moved_in, r)
                self.assertGreater(ok, 1000 * dt * (1 - 0.15 * SLACK) - moved_out, rows[i:i + 2])
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
    tplib.main(verbosity=2, warnings="ignore")
