# SPDX-License-Identifier: MIT
"""The throughput/latency study of tpserver: runs the real tpserver and
tpclient on loopback and writes CSV files (see docs/STUDY.md).

  pool_sweep.csv       throughput and latency vs worker count, per request mix
  pool_sweep_runs.csv  every repetition behind pool_sweep.csv
  load_sweep.csv       latency and busy rejections vs offered rate (open loop)
  load_queue_wait.csv  the same runs seen by the server: its own histograms of
                       the time a request waits for queue space, in the queue
                       for a worker, and in service (GET /metrics)
  conn_sweep.csv       tpserver threads and memory vs idle connections, beside
                       the computed cost of one thread per connection
  machine.txt          the machine, the binaries and the command

Normally started by run.sh, which raises the file descriptor limit first.
Every server and client run is bounded in time; a hung one is killed."""
import argparse
import csv
import json
import os
import re
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

# --- Study parameters (the reasons are in docs/STUDY.md) -------------------

FULL = {
    "pool_workers": [1, 2, 4, 8, 16, 32, 64, 128],
    "pool_mixes": ["sleep", "echo", "balanced"],
    # 32 x 16 = 512 requests in flight: four per worker at 128 workers, so
    # the pool, not the client, is the limit for SLEEP; under the default
    # queue of 1000, so nothing is refused.
    "pool_clients": 32,
    "pool_inflight": 16,
    "pool_sleep_ms": 20,
    "pool_duration_s": 3.0,
    "pool_reps": 3,
    "load_workers": 8,
    "load_queue": 50,
    "load_sleep_ms": 50,
    "load_pcts": [20, 40, 60, 80, 90, 95, 100, 105, 110, 120, 150, 200],
    # 20 x 64 = 1280 in flight: more than the server can hold (8 running,
    # 50 queued, one waiting per connection), so the open loop keeps its
    # schedule instead of the client's window throttling it.
    "load_clients": 20,
    "load_inflight": 64,
    "load_duration_s": 12.0,
    "conn_sizes": [0, 100, 1000, 2000, 5000, 10000],
}

QUICK = dict(FULL)
QUICK.update({
    "pool_workers": [1, 8],
    "pool_clients": 4,
    "pool_inflight": 4,
    "pool_duration_s": 0.5,
    "pool_reps": 1,
    "load_pcts": [50, 200],
    "load_clients": 4,
    "load_inflight": 16,
    "load_duration_s": 1.0,
    "conn_sizes": [0, 100],
})

SEED = 20240601
RECV_TIMEOUT_S = 30
# One thread per connection, computed: glibc reserves RLIMIT_STACK (8 MiB by
# default) of address space per thread; a thread blocked in read() with a
# 4 KiB line buffer touches a few pages of it (assumed 16 KiB, TLS included).
TPC_TOUCHED_KIB = 16
FD_MARGIN = 64

POOL_FIELDS = ["mix", "workers", "clients", "max_inflight", "sleep_ms", "duration_s", "reps",
               "ok_rps", "ok_rps_min", "ok_rps_max", "ideal_rps", "p50_ms", "p90_ms", "p99_ms",
               "max_ms", "ok", "busy", "errors", "other_cpu"]
RUN_FIELDS = ["mix", "workers", "rep", "ok_rps", "elapsed_s", "ok", "busy", "errors",
              "p50_ms", "p90_ms", "p99_ms", "max_ms", "seed", "other_cpu"]
LOAD_FIELDS = ["offered_rps", "offered_pct", "capacity_rps", "workers", "queue", "sleep_ms",
               "clients", "max_inflight", "duration_s", "sent", "ok", "ok_rps", "busy",
               "busy_pct", "errors", "late", "p50_ms", "p90_ms", "p99_ms", "p99_9_ms", "max_ms", "other_cpu"]
QWAIT_FIELDS = ["offered_rps", "offered_pct", "capacity_rps", "workers", "queue", "sleep_ms",
                "duration_s", "ok", "busy_pct", "client_p50_ms", "client_p99_ms",
                "queue_wait_n", "queue_wait_mean_ms", "queue_wait_p50_ms", "queue_wait_p99_ms",
                "admission_wait_n", "admission_wait_mean_ms", "admission_wait_p99_ms",
                "service_mean_ms", "service_p99_ms", "duration_p50_ms", "duration_p99_ms", "other_cpu"]
CONN_FIELDS = ["connections", "threads", "vmrss_kib", "vmrss_after_echo_kib", "vmsize_kib",
               "fds", "tpc_threads_computed", "tpc_stack_reserved_kib_computed",
               "tpc_stack_touched_kib_computed"]


def log(msg):
    print("study: " + msg, file=sys.stderr, flush=True)


class Server:
    """tpserver on 127.0.0.1 and an ephemeral port; stopped by stop()."""

    def __init__(self, tpserver, *args):
        self.logf = tempfile.NamedTemporaryFile(prefix="study-tpserver-", suffix=".log")
        cmd = [tpserver, "--host", "127.0.0.1", "--port", "0", "--config", "/dev/null",
               "--log-level", "info"] + [str(a) for a in args]
        env = {k: v for k, v in os.environ.items()
               if k not in ("NOTIFY_SOCKET", "LISTEN_FDS", "LISTEN_PID", "JOURNAL_STREAM")}
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=self.logf,
                                     stderr=subprocess.STDOUT, env=env)
        self.pid = self.proc.pid
        self.port = None
        self.metrics_port = None
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            text = self.log()
            m = re.search(r"listening on 127\.0\.0\.1:(\d+)", text)
            mm = re.search(r"metrics on http://127\.0\.0\.1:(\d+)/metrics", text)
            if m and "ready" in text and (mm or "--metrics-port" not in cmd):
                self.port = int(m.group(1))
                self.metrics_port = int(mm.group(1)) if mm else None
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.02)
        self.stop()
        raise RuntimeError("tpserver did not start (%s):\n%s" % (" ".join(cmd), self.log()))

    def log(self):
        with open(self.logf.name, errors="replace") as f:
            return f.read()

    def metrics(self):
        """GET /metrics: {(name, labels): value}, labels a sorted tuple of pairs."""
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % self.metrics_port, timeout=10) as r:
            text = r.read().decode()
        out = {}
        for line in text.splitlines():
            m = re.match(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)$", line)
            if m:
                labels = tuple(sorted(re.findall(r'(\w+)="([^"]*)"', m.group(2) or "")))
                out[(m.group(1), labels)] = float(m.group(3))
        return out

    def status(self):
        """Threads, VmRSS and VmSize (KiB) from /proc/PID/status, and the fd count."""
        out = {}
        with open("/proc/%d/status" % self.pid) as f:
            for line in f:
                key, _, val = line.partition(":")
                if key in ("Threads", "VmRSS", "VmSize"):
                    out[key] = int(val.split()[0])
        out["fds"] = len(os.listdir("/proc/%d/fd" % self.pid))
        return out

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.logf.close()


def cpu_busy_s():
    """CPU seconds all cores spent in processes (or stolen) since boot
    (/proc/stat). Interrupt time is left out: loopback traffic is processed
    there, and it belongs to this study's own server and client."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal
    return (v[0] + v[1] + v[2] + v[7]) / os.sysconf("SC_CLK_TCK")


def proc_cpu_s(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children_cpu_s():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def run_client(tpclient, srv, args, bound_s):
    """One tpclient run with --json against srv; returns its report (a dict)
    plus "other_cpu": the cores that processes other than this server and
    client kept busy meanwhile, on average (interference: the study shares
    the machine)."""
    port = srv.port
    busy0, child0, srv0, t0 = cpu_busy_s(), children_cpu_s(), proc_cpu_s(srv.pid), time.monotonic()
    r = run_tpclient(tpclient, port, args, bound_s)
    ours = children_cpu_s() - child0 + proc_cpu_s(srv.pid) - srv0
    r["other_cpu"] = max(0.0, (cpu_busy_s() - busy0 - ours) / (time.monotonic() - t0))
    return r


def self_cpu_s():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def wait_quiet(limit_cores, max_wait_s):
    """Wait (up to max_wait_s) for a second in which other processes keep
    at most limit_cores busy."""
    deadline = time.monotonic() + max_wait_s
    while True:
        busy0, self0, t0 = cpu_busy_s(), self_cpu_s(), time.monotonic()
        time.sleep(1)
        other = (cpu_busy_s() - busy0 - (self_cpu_s() - self0)) / (time.monotonic() - t0)
        if other <= limit_cores or time.monotonic() >= deadline:
            return other


class Runner:
    """Runs one measurement: a fresh tpserver, one tpclient run, stop.
    With quiet_cores > 0 it first waits for the machine to be quiet, and
    repeats a run during which other processes kept more than quiet_cores
    busy (up to `retries` times), keeping the least disturbed attempt."""

    def __init__(self, opts, quiet_cores, retries=2, max_wait_s=60):
        self.opts = opts
        self.quiet_cores = quiet_cores
        self.retries = retries if quiet_cores > 0 else 0
        self.max_wait_s = max_wait_s
        self.repeated = 0
        self.disturbed = []

    def measure(self, label, server_args, client_args, bound_s, after=None):
        """after(srv), if given, runs before the server stops; its result is
        the report's "server" entry."""
        best = None
        for attempt in range(1 + self.retries):
            if self.quiet_cores > 0:
                wait_quiet(self.quiet_cores, self.max_wait_s)
            srv = Server(self.opts.tpserver, *server_args)
            try:
                r = run_client(self.opts.tpclient, srv, client_args, bound_s)
                if after:
                    r["server"] = after(srv)
            finally:
                srv.stop()
            if best is None or r["other_cpu"] < best["other_cpu"]:
                best = r
            if self.quiet_cores <= 0 or r["other_cpu"] <= self.quiet_cores:
                break
            if attempt < self.retries:
                self.repeated += 1
                log("%s: other processes kept %.2f cores busy: repeating" % (label, r["other_cpu"]))
        if self.quiet_cores > 0 and best["other_cpu"] > self.quiet_cores:
            self.disturbed.append("%s (%.2f cores)" % (label, best["other_cpu"]))
        return best


def run_tpclient(tpclient, port, args, bound_s):
    cmd = [tpclient, "--host", "127.0.0.1", "--port", str(port), "--json", "--quiet",
           "--seed", str(SEED), "--recv-timeout", str(RECV_TIMEOUT_S)] + [str(a) for a in args]
    try:
        p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           timeout=bound_s)
    except subprocess.TimeoutExpired:
        raise RuntimeError("tpclient ran over %.0f s: %s" % (bound_s, " ".join(cmd)))
    try:
        return json.loads(p.stdout)
    except ValueError:
        raise RuntimeError("tpclient gave no JSON report (exit %d): %s\n%s"
                           % (p.returncode, " ".join(cmd), p.stderr))


def errors_of(r):
    """Every failure except busy, which is backpressure and counted apart."""
    return (r["other_err"] + r["mismatch"] + r["timeouts"] + r["lost"] + r["disconnects"]
            + r["connect_failed"])


def histogram(metrics, name, **labels):
    """The buckets [(le, cumulative count)], count and sum of one histogram
    series in a /metrics scrape."""
    want = set(labels.items())
    buckets = []
    for (n, lab), v in metrics.items():
        d = dict(lab)
        if n == name + "_bucket" and want <= set(lab):
            buckets.append((float(d["le"]), v))
    buckets.sort()
    key = tuple(sorted(labels.items()))
    return buckets, metrics.get((name + "_count", key), 0.0), metrics.get((name + "_sum", key), 0.0)


def hist_quantile(q, buckets):
    """Prometheus' histogram_quantile(): linear within the bucket holding
    the rank; the last finite bound if the rank is in the +Inf bucket."""
    if not buckets or buckets[-1][1] == 0:
        return 0.0
    rank = q * buckets[-1][1]
    prev_le, prev_c = 0.0, 0.0
    for le, c in buckets:
        if c >= rank:
            if le == float("inf"):
                return prev_le
            return prev_le + (le - prev_le) * ((rank - prev_c) / (c - prev_c) if c > prev_c else 1.0)
        prev_le, prev_c = le, c
    return prev_le


def server_waits(srv):
    """The server's own view of a run: its time histograms (seconds) in ms."""
    m = srv.metrics()
    out = {}
    for key, name, labels in (("queue_wait", "tpserver_request_queue_wait_seconds", {}),
                              ("admission_wait", "tpserver_request_admission_wait_seconds",
                               {"result": "admitted"}),
                              ("service", "tpserver_request_service_seconds", {"op": "sleep"}),
                              ("duration", "tpserver_request_duration_seconds", {"op": "sleep"})):
        buckets, count, total = histogram(m, name, **labels)
        if total == 0:  # nothing waited: not "somewhere in the first bucket"
            buckets = []
        out[key] = {"n": int(count), "mean": 1e3 * total / count if count else float("nan"),
                    "p50": 1e3 * hist_quantile(0.50, buckets), "p99": 1e3 * hist_quantile(0.99, buckets)}
    return out


def ms(x):
    return "%.3f" % x


def pool_sweep(p, runner, out):
    rows, runs = [], []
    for mix in p["pool_mixes"]:
        for workers in p["pool_workers"]:
            reports = []
            for rep in range(p["pool_reps"]):
                # Closed loop; the bound covers draining 512 SLEEPs on one worker.
                inflight = p["pool_clients"] * p["pool_inflight"]
                bound = p["pool_duration_s"] + inflight * p["pool_sleep_ms"] / 1000.0 / workers + 60
                r = runner.measure("pool %s workers=%d rep %d" % (mix, workers, rep + 1),
                                   ["--workers", workers],
                                   ["--clients", p["pool_clients"], "--max-inflight", p["pool_inflight"],
                                    "--mix", mix, "--sleep-ms", p["pool_sleep_ms"],
                                    "--duration", p["pool_duration_s"]], bound)
                lat = r["latency_ms"]
                runs.append({"mix": mix, "workers": workers, "rep": rep + 1, "ok_rps": r["ok_rps"],
                             "elapsed_s": r["elapsed_s"], "ok": r["ok"], "busy": r["busy"],
                             "errors": errors_of(r), "p50_ms": ms(lat["p50"]), "p90_ms": ms(lat["p90"]),
                             "p99_ms": ms(lat["p99"]), "max_ms": ms(lat["max"]), "seed": r["seed"],
                             "other_cpu": "%.2f" % r["other_cpu"]})
                reports.append(r)
                log("pool %-8s workers=%-3d rep %d: %.1f ok/s p99 %.1f ms busy %d errors %d other cpu %.2f"
                    % (mix, workers, rep + 1, r["ok_rps"], lat["p99"], r["busy"], errors_of(r),
                       r["other_cpu"]))
            # The median repetition by throughput gives the row; min/max show the spread.
            reports.sort(key=lambda x: x["ok_rps"])
            med = reports[len(reports) // 2]
            lat = med["latency_ms"]
            per_req_ms = {"sleep": p["pool_sleep_ms"], "balanced": p["pool_sleep_ms"] / 2.0}.get(mix)
            ideal = "%.1f" % (workers * 1000.0 / per_req_ms) if per_req_ms else ""
            rows.append({"mix": mix, "workers": workers, "clients": p["pool_clients"],
                         "max_inflight": p["pool_inflight"], "sleep_ms": p["pool_sleep_ms"],
                         "duration_s": p["pool_duration_s"], "reps": len(reports),
                         "ok_rps": med["ok_rps"], "ok_rps_min": reports[0]["ok_rps"],
                         "ok_rps_max": reports[-1]["ok_rps"], "ideal_rps": ideal,
                         "p50_ms": ms(lat["p50"]), "p90_ms": ms(lat["p90"]), "p99_ms": ms(lat["p99"]),
                         "max_ms": ms(lat["max"]), "ok": med["ok"],
                         "busy": sum(x["busy"] for x in reports),
                         "errors": sum(errors_of(x) for x in reports),
                         "other_cpu": "%.2f" % max(x["other_cpu"] for x in reports)})
    write_csv(os.path.join(out, "pool_sweep.csv"), POOL_FIELDS, rows)
    write_csv(os.path.join(out, "pool_sweep_runs.csv"), RUN_FIELDS, runs)


def load_sweep(p, runner, out):
    workers, sleep_ms = p["load_workers"], p["load_sleep_ms"]
    capacity = workers * 1000.0 / sleep_ms
    rows, qrows = [], []
    for pct in p["load_pcts"]:
        rate = capacity * pct / 100.0
        # Open loop: after the schedule ends, every queued or waiting
        # request is answered or refused within a few seconds.
        bound = p["load_duration_s"] + 60
        r = runner.measure("load %d%%" % pct, ["--workers", workers, "--queue", p["load_queue"],
                                               "--metrics-port", 0],
                           ["--rate", "%.1f" % rate, "--clients", p["load_clients"],
                            "--max-inflight", p["load_inflight"], "--mix", "sleep",
                            "--sleep-ms", sleep_ms, "--duration", p["load_duration_s"]], bound,
                           after=server_waits)
        lat = r["latency_ms"]
        sent = r["sent"]
        rows.append({"offered_rps": "%.1f" % rate, "offered_pct": pct, "capacity_rps": "%.1f" % capacity,
                     "workers": workers, "queue": p["load_queue"], "sleep_ms": sleep_ms,
                     "clients": p["load_clients"], "max_inflight": p["load_inflight"],
                     "duration_s": p["load_duration_s"], "sent": sent, "ok": r["ok"],
                     "ok_rps": r["ok_rps"], "busy": r["busy"],
                     "busy_pct": "%.2f" % (100.0 * r["busy"] / sent if sent else 0.0),
                     "errors": errors_of(r), "late": r["late"],
                     "p50_ms": ms(lat["p50"]), "p90_ms": ms(lat["p90"]), "p99_ms": ms(lat["p99"]),
                     "p99_9_ms": ms(lat["p99_9"]), "max_ms": ms(lat["max"]),
                     "other_cpu": "%.2f" % r["other_cpu"]})
        sv = r["server"]
        qrows.append({"offered_rps": "%.1f" % rate, "offered_pct": pct, "capacity_rps": "%.1f" % capacity,
                      "workers": workers, "queue": p["load_queue"], "sleep_ms": sleep_ms,
                      "duration_s": p["load_duration_s"], "ok": r["ok"],
                      "busy_pct": "%.2f" % (100.0 * r["busy"] / sent if sent else 0.0),
                      "client_p50_ms": ms(lat["p50"]), "client_p99_ms": ms(lat["p99"]),
                      "queue_wait_n": sv["queue_wait"]["n"], "queue_wait_mean_ms": ms(sv["queue_wait"]["mean"]),
                      "queue_wait_p50_ms": ms(sv["queue_wait"]["p50"]),
                      "queue_wait_p99_ms": ms(sv["queue_wait"]["p99"]),
                      "admission_wait_n": sv["admission_wait"]["n"],
                      "admission_wait_mean_ms": ms(sv["admission_wait"]["mean"]),
                      "admission_wait_p99_ms": ms(sv["admission_wait"]["p99"]),
                      "service_mean_ms": ms(sv["service"]["mean"]), "service_p99_ms": ms(sv["service"]["p99"]),
                      "duration_p50_ms": ms(sv["duration"]["p50"]),
                      "duration_p99_ms": ms(sv["duration"]["p99"]),
                      "other_cpu": "%.2f" % r["other_cpu"]})
        log("load %3d%% (%.0f req/s): %.1f ok/s p50 %.1f p99 %.1f ms busy %d late %d errors %d other cpu %.2f"
            % (pct, rate, r["ok_rps"], lat["p50"], lat["p99"], r["busy"], r["late"], errors_of(r),
               r["other_cpu"]))
    write_csv(os.path.join(out, "load_sweep.csv"), LOAD_FIELDS, rows)
    write_csv(os.path.join(out, "load_queue_wait.csv"), QWAIT_FIELDS, qrows)


def wait_fds(srv, want, timeout_s):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        st = srv.status()
        if st["fds"] >= want:
            return st
        time.sleep(0.05)
    raise RuntimeError("tpserver holds %d fds, expected %d" % (srv.status()["fds"], want))


def echo_all(socks):
    """One ECHO on every connection, so each has had its buffers in use."""
    for s in socks:
        s.sendall(b"ECHO x\n")
    for s in socks:
        buf = b""
        while not buf.endswith(b"\n"):
            chunk = s.recv(64)
            if not chunk:
                raise RuntimeError("tpserver closed a connection")
            buf += chunk
        if buf != b"OK x\n":
            raise RuntimeError("unexpected reply %r" % buf)


def conn_sweep(p, opts, out, notes):
    nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    stack = resource.getrlimit(resource.RLIMIT_STACK)[0]
    stack_kib = stack // 1024 if stack != resource.RLIM_INFINITY else 8192
    rows = []
    for n in p["conn_sizes"]:
        if n + FD_MARGIN > nofile:
            note = ("conn sweep: %d connections skipped: RLIMIT_NOFILE is %d (need %d)"
                    % (n, nofile, n + FD_MARGIN))
            log(note)
            notes.append(note)
            continue
        srv = Server(opts.tpserver, "--max-connections", max(10000, n + FD_MARGIN),
                     "--idle-timeout-s", 0)
        socks = []
        try:
            base = srv.status()["fds"]
            for _ in range(n):
                socks.append(socket.create_connection(("127.0.0.1", srv.port), timeout=10))
            wait_fds(srv, base + n, 30)
            time.sleep(0.3)
            idle = srv.status()
            echo_all(socks)
            time.sleep(0.3)
            busy = srv.status()
        finally:
            for s in socks:
                s.close()
            srv.stop()
        rows.append({"connections": n, "threads": idle["Threads"], "vmrss_kib": idle["VmRSS"],
                     "vmrss_after_echo_kib": busy["VmRSS"], "vmsize_kib": idle["VmSize"],
                     "fds": idle["fds"], "tpc_threads_computed": n + 1,
                     "tpc_stack_reserved_kib_computed": n * stack_kib,
                     "tpc_stack_touched_kib_computed": n * TPC_TOUCHED_KIB})
        log("conn %5d: threads %d VmRSS %d KiB (%d KiB after one ECHO each) VmSize %d KiB"
            % (n, idle["Threads"], idle["VmRSS"], busy["VmRSS"], idle["VmSize"]))
    write_csv(os.path.join(out, "conn_sweep.csv"), CONN_FIELDS, rows)


def write_csv(path, fields, rows):
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields, lineterminator="\n")
        w.writeheader()
        w.writerows(rows)


def sh(cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "?"


def machine_lines(opts, command):
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    with open("/proc/loadavg") as f:
        load = " ".join(f.read().split()[:3])
    return ["date: " + time.strftime("%Y-%m-%d %H:%M:%S %z"),
            "nproc: %d" % os.cpu_count(),
            "cpu: " + cpu,
            "kernel: " + " ".join(os.uname()[2:4]),
            "memory: " + sh(["sh", "-c", "grep MemTotal /proc/meminfo | tr -s ' '"]),
            "RLIMIT_NOFILE: %d, RLIMIT_STACK: %s" % (resource.getrlimit(resource.RLIMIT_NOFILE)[0],
                                                     resource.getrlimit(resource.RLIMIT_STACK)[0]),
            "source: git HEAD %s" % sh(["git", "-C", os.path.dirname(os.path.abspath(__file__)),
                                         "rev-parse", "--short", "HEAD"]),
            "tpserver: %s (%s, built %s)" % (opts.tpserver, sh([opts.tpserver, "--version"]),
                                              time.strftime("%Y-%m-%d %H:%M:%S",
                                                            time.localtime(os.path.getmtime(opts.tpserver)))),
            "tpclient: %s (%s)" % (opts.tpclient, sh([opts.tpclient, "--version"])),
            "command: " + command,
            "loadavg at start: " + load]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="a tiny subset, for a smoke test")
    ap.add_argument("--tpserver", required=True)
    ap.add_argument("--tpclient", required=True)
    ap.add_argument("--only", choices=["pool", "load", "conn"], action="append",
                    help="run only this part (repeatable)")
    ap.add_argument("--command", default=" ".join(sys.argv), help="the command line to record")
    ap.add_argument("--quiet-cpu", type=float, default=0.0, metavar="CORES",
                    help="wait for, and repeat runs disturbed by, other processes using more than CORES")
    ap.add_argument("outdir")
    opts = ap.parse_args()
    p = QUICK if opts.quick else FULL
    os.makedirs(opts.outdir, exist_ok=True)

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    parts = opts.only or ["pool", "load", "conn"]
    info = machine_lines(opts, opts.command)
    notes = []
    t0 = time.monotonic()
    runner = Runner(opts, opts.quiet_cpu)
    if "pool" in parts:
        pool_sweep(p, runner, opts.outdir)
    if "load" in parts:
        load_sweep(p, runner, opts.outdir)
    if "conn" in parts:
        conn_sweep(p, opts, opts.outdir, notes)
    with open("/proc/loadavg") as f:
        info.append("loadavg at end: " + " ".join(f.read().split()[:3]))
    info.append("run time: %.0f s" % (time.monotonic() - t0))
    if opts.quiet_cpu > 0:
        info.append("quiet-cpu %.2f: %d runs repeated; still disturbed: %s"
                    % (opts.quiet_cpu, runner.repeated, ", ".join(runner.disturbed) or "none"))
    info += ["note: " + n for n in notes]
    with open(os.path.join(opts.outdir, "machine.txt"), "w") as f:
        f.write("\n".join(info) + "\n")
    log("done in %.0f s; results in %s" % (time.monotonic() - t0, opts.outdir))


if __name__ == "__main__":
    main()
