#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Fair scheduling under a greedy client: the victim's latency and the
pool's throughput with pool.fairness = address and none.

A flooder (tpclient, from 127.0.0.1) keeps the pool saturated: pipelined
SLEEP 40 over one connection or 50, or pipelined ECHOs.  A victim (this
script, one request at a time) runs during the flood, from another
address (127.0.0.2) or from the flooders' own.  Reported: the victim's
p50/p99/max round trip, the flooder's completed requests per second, and for
SLEEP floods the pool's work: the mean number of workers busy sleeping
(flooder's and victim's SLEEPs over the run; 8 is all of them), which is
the pool's throughput whoever gets it.  Measures, does not assert.

usage: bench/fairness.py [--tpserver build/tpserver] [--tpclient build/tpclient]
                         [--seconds 8] [--repeat 1] [--modes address,none] [--only NAME,...]
                         [--json] [--csv PATH]

--csv PATH also writes every run as a row of a CSV file (one header line,
then one row per scenario, repetition and mode), which
bench/fairness_plot.sh draws.
"""
import argparse
import csv
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time

# name: (flooder tpclient args, victim source address, victim line)
SLEEP_FLOOD_1 = ["--clients", "1", "--max-inflight", "1500", "--mix", "sleep", "--sleep-ms", "40-40"]
SLEEP_FLOOD_50 = ["--clients", "50", "--max-inflight", "30", "--mix", "sleep", "--sleep-ms", "40-40"]
ECHO_FLOOD_4 = ["--clients", "4", "--max-inflight", "500", "--mix", "echo", "--echo-bytes", "32-32"]
SCENARIOS = [
    ("sleep-flood-1conn/victim-other-addr/SLEEP10", SLEEP_FLOOD_1, "127.0.0.2", "SLEEP 10"),
    ("sleep-flood-50conn/victim-other-addr/SLEEP10", SLEEP_FLOOD_50, "127.0.0.2", "SLEEP 10"),
    ("sleep-flood-50conn/victim-same-addr/SLEEP10", SLEEP_FLOOD_50, "127.0.0.1", "SLEEP 10"),
    ("sleep-flood-1conn/victim-other-addr/ECHO", SLEEP_FLOOD_1, "127.0.0.2", "ECHO hi"),
    ("sleep-flood-50conn/victim-same-addr/ECHO", SLEEP_FLOOD_50, "127.0.0.1", "ECHO hi"),
    ("echo-flood-4conn/victim-other-addr/ECHO", ECHO_FLOOD_4, "127.0.0.2", "ECHO hi"),
    ("echo-flood-4conn/victim-same-addr/ECHO", ECHO_FLOOD_4, "127.0.0.1", "ECHO hi"),
]


def start_server(tpserver, mode):
    log = tempfile.NamedTemporaryFile(prefix="fairness-", suffix=".log", delete=False)
    proc = subprocess.Popen([tpserver, "--config", "/dev/null", "--host", "127.0.0.1", "--port", "0",
                             "--fairness", mode],
                            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    port = None
    while port is None and time.monotonic() < deadline:
        with open(log.name, errors="replace") as f:
            m = re.search(r"listening on 127\.0\.0\.1:(\d+)", f.read())
        if m:
            port = int(m.group(1))
        elif proc.poll() is not None:
            break
        else:
            time.sleep(0.02)
    if port is None:
        proc.kill()
        sys.exit("fairness.py: tpserver did not start; log in %s" % log.name)
    return proc, port, log.name


def victim(port, source, line, until):
    """One request at a time until the monotonic time until; returns round trips in ms."""
    s = socket.create_connection(("127.0.0.1", port), timeout=60, source_address=(source, 0))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    out, buf, msg = [], b"", (line + "\n").encode()
    while time.monotonic() < until:
        t0 = time.perf_counter()
        s.sendall(msg)
        while b"\n" not in buf:
            chunk = s.recv(4096)
            if not chunk:
                raise SystemExit("fairness.py: the server closed the victim's connection")
            buf += chunk
        reply, buf = buf.split(b"\n", 1)
        out.append((time.perf_counter() - t0) * 1e3)
        if not reply.startswith(b"OK"):
            print("victim got %r" % reply, file=sys.stderr)
    s.close()
    return out


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p / 100.0 * len(xs)))] if xs else float("nan")


def run(args, name, flood, source, line, mode):
    proc, port, logname = start_server(args.tpserver, mode)
    try:
        fl = subprocess.Popen([args.tpclient, "--port", str(port), "--duration", str(args.seconds),
                               "--recv-timeout", "60", "--json", "-q"] + flood,
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        start = time.monotonic()
        time.sleep(min(1.0, args.seconds / 4))  # let the flood fill the queue
        lat = victim(port, source, line, start + args.seconds)
        out, _ = fl.communicate(timeout=120)
        res = json.loads(out)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        os.unlink(logname)
    work_ms = res["ok"] * res["sleep_ms"][0] if res["mix"] == "sleep" else 0
    if line.startswith("SLEEP "):
        work_ms += len(lat) * int(line.split()[1])
    return {"scenario": name, "fairness": mode, "victim_n": len(lat), "p50_ms": pct(lat, 50),
            "p99_ms": pct(lat, 99), "max_ms": max(lat) if lat else float("nan"),
            "flood_rps": res["ok_rps"], "busy_workers": work_ms / 1000.0 / res["elapsed_s"],
            "flood_busy": res["busy"]}


CSV_FIELDS = ["scenario", "flood", "victim_source", "victim_request", "fairness", "rep", "seconds",
              "victim_n", "p50_ms", "p99_ms", "max_ms", "flood_rps", "busy_workers", "flood_busy"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tpserver", default="build/tpserver")
    ap.add_argument("--tpclient", default="build/tpclient")
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--modes", default="address,none")
    ap.add_argument("--only", default="", help="comma-separated scenario names (default: all)")
    ap.add_argument("--json", action="store_true", help="one JSON object per run instead of the table")
    ap.add_argument("--csv", metavar="PATH", help="also write every run as a CSV row to PATH")
    args = ap.parse_args()
    only = set(filter(None, args.only.split(",")))
    out = None
    if args.csv:
        out_f = open(args.csv, "w", newline="")
        out = csv.DictWriter(out_f, fieldnames=CSV_FIELDS, lineterminator="\n")
        out.writeheader()
    if not args.json:
        print("%-46s %-8s %5s %9s %9s %9s %9s %6s %6s" % ("scenario", "fairness", "n", "p50_ms", "p99_ms",
                                                          "max_ms", "flood_rps", "workers", "busy"))
    for name, flood, source, line in SCENARIOS:
        if only and name not in only:
            continue
        for rep in range(args.repeat):
            for mode in args.modes.split(","):
                r = run(args, name, flood, source, line, mode)
                if out:
                    out.writerow(dict(r, flood=name.split("/")[0], victim_source=source, victim_request=line,
                                      rep=rep + 1, seconds=args.seconds, p50_ms="%.3f" % r["p50_ms"],
                                      p99_ms="%.3f" % r["p99_ms"], max_ms="%.3f" % r["max_ms"],
                                      flood_rps="%.1f" % r["flood_rps"],
                                      busy_workers="%.2f" % r["busy_workers"]))
                    out_f.flush()
                if args.json:
                    print(json.dumps(r), flush=True)
                else:
                    print("%-46s %-8s %5d %9.1f %9.1f %9.1f %9.0f %6.2f %6d" % (
                        name, mode, r["victim_n"], r["p50_ms"], r["p99_ms"], r["max_ms"], r["flood_rps"],
                        r["busy_workers"], r["flood_busy"]), flush=True)
    if out:
        out_f.close()


if __name__ == "__main__":
    main()
