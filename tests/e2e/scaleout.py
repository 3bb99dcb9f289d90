# SPDX-License-Identifier: MIT
"""Scale-out end to end: three tpserver hosts behind a real HAProxy, in
real network namespaces, loaded by tpclient from two client addresses.
Run by tests/stages/55-scaleout.sh, which checks the prerequisites and
cleans up after it; see that file for the topology.

Every check prints its figures on one "check N: ..." line; a failed check
raises and the run exits 1.  The backends are started afresh for each check
and stopped (SIGTERM) at its end: their "stopped: N requests served, M busy
rejections" line gives the per-backend counts (the metrics endpoint would do
as well where it exists; this works on every build).

Environment: TPSERVER, TPCLIENT (binaries), TP_SCALE_PREFIX (namespace
prefix), TP_SCALE_DIR (work directory), HAPROXY_CFG (examples/haproxy.cfg).
"""
import csv
import io
import json
import os
import re
import signal
import socket
import subprocess
import time

TPSERVER = os.environ["TPSERVER"]
TPCLIENT = os.environ["TPCLIENT"]
PREFIX = os.environ["TP_SCALE_PREFIX"]
WORK = os.environ["TP_SCALE_DIR"]
EXAMPLE = os.environ["HAPROXY_CFG"]

LB = "10.0.0.2"
BACKENDS = {"tp1": "10.0.0.11", "tp2": "10.0.0.12", "tp3": "10.0.0.13"}
CLIENTS = ["10.0.0.101", "10.0.0.102"]
FAIRNESS = None  # set in main: does this tpserver have fairness by address?

procs = []  # every process started here, killed by pid at the end


def sh(*args, check=True):
    return subprocess.run(list(args), check=check, capture_output=True, text=True)


def ns(name):
    return "%s-%s" % (PREFIX, name)


def in_ns(name, *args):
    return ["ip", "netns", "exec", ns(name)] + list(args)


def topology():
    """A bridge in its own namespace; each host a namespace with a veth on it."""
    sh("ip", "netns", "add", ns("br"))
    sh("ip", "-n", ns("br"), "link", "add", "br0", "type", "bridge")
    sh("ip", "-n", ns("br"), "link", "set", "br0", "up")
    hosts = {"lb": [LB], "cl": CLIENTS}
    hosts.update({k: [v] for k, v in BACKENDS.items()})
    for i, (name, addrs) in enumerate(hosts.items()):
        sh("ip", "netns", "add", ns(name))
        sh("ip", "link", "add", "v0", "netns", ns(name), "type", "veth", "peer", "name", "p%d" % i,
           "netns", ns("br"))
        sh("ip", "-n", ns("br"), "link", "set", "p%d" % i, "master", "br0", "up")
        for a in addrs:
            sh("ip", "-n", ns(name), "addr", "add", a + "/24", "dev", "v0")
        sh("ip", "-n", ns(name), "link", "set", "v0", "up")
        sh("ip", "-n", ns(name), "link", "set", "lo", "up")


class Backend:
    def __init__(self, name, workers=8, queue=1000, queue_timeout_ms=1000, extra=()):
        self.name = name
        self.log = os.path.join(WORK, "%s.%d.log" % (name, time.monotonic_ns()))
        args = [TPSERVER, "--config", "/dev/null", "--host", "0.0.0.0", "--port", "9000",
                "--proxy-protocol", "--proxy-trusted", LB, "--allow", "10.0.0.0/24",
                "--agent", "--agent-host", "0.0.0.0", "--agent-port", "9102",
                "--workers", str(workers), "--queue-size", str(queue),
                "--queue-timeout-ms", str(queue_timeout_ms), "--drain-s", "3"] + list(extra)
        with open(self.log, "w") as f:
            self.proc = subprocess.Popen(in_ns(name, *args), stdout=f, stderr=subprocess.STDOUT)
        procs.append(self.proc)
        self.wait_log(r"ready: ")

    def text(self):
        with open(self.log, errors="replace") as f:
            return f.read()

    def wait_log(self, pattern, timeout=10):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            m = re.search(pattern, self.text())
            if m:
                return m
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError("%s: no %r in its log:\n%s" % (self.name, pattern, self.text()[-2000:]))

    def stop(self):
        """SIGTERM and wait; returns (served, busy) from its last line."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(30)
        m = self.wait_log(r"stopped: (\d+) requests served, (\d+) busy rejections")
        return int(m.group(1)), int(m.group(2))


class HAProxy:
    def __init__(self, agent=True, server_opts=None):
        with open(EXAMPLE) as f:
            cfg = f.read()
        for name, opts in (server_opts or {}).items():  # a host of its own kind
            cfg = cfg.replace("server %s %s:9000\n" % (name, BACKENDS[name]),
                              "server %s %s:9000 %s\n" % (name, BACKENDS[name], opts))
        self.sock = os.path.join(WORK, "haproxy.sock")
        cfg = cfg.replace("bind :9000", "bind %s:9000" % LB)
        cfg = cfg.replace("maxconn 20000", "maxconn 4000")  # fits a test machine's fd limit
        cfg = re.sub(r"stats socket \S+", "stats socket %s" % self.sock, cfg)
        if not agent:
            cfg = cfg.replace(" agent-check agent-port 9102 agent-inter 1s", "")
        path = os.path.join(WORK, "haproxy%s%s.cfg" % ("" if agent else "-noagent", "-opts" if server_opts else ""))
        with open(path, "w") as f:
            f.write(cfg)
        self.log = open(os.path.join(WORK, "haproxy.log"), "a")
        self.proc = subprocess.Popen(in_ns("lb", "haproxy", "-db", "-f", path), stdout=self.log,
                                     stderr=subprocess.STDOUT)
        procs.append(self.proc)
        deadline = time.monotonic() + 10
        while not os.path.exists(self.sock):
            assert time.monotonic() < deadline and self.proc.poll() is None, "haproxy did not start"
            time.sleep(0.05)

    def command(self, line):
        # The socket lives in the file system: reachable from any namespace.
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(5)
        s.connect(self.sock)
        s.sendall(line.encode() + b"\n")
        out = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            out += chunk
        s.close()
        return out.decode()

    def servers(self):
        """{name: (status, weight)} of the tp_hosts backend."""
        text = self.command("show stat").lstrip("# ")
        out = {}
        for row in csv.DictReader(io.StringIO(text)):
            if row.get("pxname") == "tp_hosts" and row.get("svname") in BACKENDS:
                out[row["svname"]] = (row["status"], int(row["weight"] or 0))
        return out

    def wait_all_up(self, timeout=15):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            st = self.servers()
            if len(st) == 3 and all(s.startswith("UP") and w > 0 for s, w in st.values()):
                return
            time.sleep(0.1)
        raise AssertionError("backends not all UP in HAProxy: %s" % self.servers())

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(10)


def tpclient(*args, background=False):
    cmd = in_ns("cl", TPCLIENT, "--host", LB, "--port", "9000", "--json", *args)
    if background:
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        procs.append(p)
        return p
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert p.returncode in (0, 1), p.stderr
    return json.loads(p.stdout)


def result(p):
    out, err = p.communicate(timeout=120)
    return json.loads(out)


def start_backends(**kw):
    return {name: Backend(name, **kw) for name in BACKENDS}


def stop_backends(bs):
    return {name: b.stop() for name, b in bs.items()}


def check_spread(lb):
    bs = start_backends()
    lb.wait_all_up()
    r = tpclient("-c", "30", "-P", "1", "--mix", "sleep", "--sleep-ms", "5-5", "-d", "3s",
                 "--source", ",".join(CLIENTS))
    counts = stop_backends(bs)
    total = sum(s for s, _ in counts.values())
    shares = {k: s / total for k, (s, _) in counts.items()}
    print("check 1: spread: served %s of %d (%s); client ok=%d err=%d, %.0f req/s"
          % (", ".join("%s=%d" % (k, s) for k, (s, _) in sorted(counts.items())), total,
             ", ".join("%s %.0f%%" % (k, 100 * v) for k, v in sorted(shares.items())), r["ok"], r["err"],
             r["ok_rps"]), flush=True)
    assert r["err"] == 0 and r["lost"] == 0, r
    assert all(v >= 0.2 for v in shares.values()), shares
    return r["ok_rps"]


def check_direct(three_rps):
    """Check 6: the same load on one backend, directly (no HAProxy)."""
    b = Backend("tp1")
    cmd = in_ns("cl", TPCLIENT, "--host", BACKENDS["tp1"], "--port", "9000", "--json", "-c", "30", "-P", "1",
                "--mix", "sleep", "--sleep-ms", "5-5", "-d", "3s", "--source", ",".join(CLIENTS))
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    r = json.loads(p.stdout)
    b.stop()
    ratio = three_rps / r["ok_rps"] if r["ok_rps"] else 0
    print("check 6: throughput: 3 backends through HAProxy %.0f req/s, 1 backend direct %.0f req/s, "
          "ratio %.2f (SLEEP 5 ms, 30 connections, 8 workers each)" % (three_rps, r["ok_rps"], ratio), flush=True)
    assert r["err"] == 0, r
    assert ratio > 1.5, ratio


def watch_states(lb, name, seconds, ret, until=None):
    """Poll HAProxy's view of one server; record each new state with its time.
    Stops early once the state is until."""
    t0 = time.monotonic()
    last = None
    while time.monotonic() - t0 < seconds and last != until:
        st = lb.servers().get(name, ("?", 0))
        state = "DRAIN" if st[0].startswith("DRAIN") or (st[0].startswith("UP") and st[1] == 0) else \
            st[0].split()[0]
        if state != last:
            ret.append((round(time.monotonic() - t0, 2), state))
            last = state
        time.sleep(0.1)


def check_drain(lb):
    bs = start_backends()
    lb.wait_all_up()
    p = tpclient("-c", "30", "-P", "1", "--reconnect", "--mix", "sleep", "--sleep-ms", "5-5", "-d", "7s",
                 "--source", ",".join(CLIENTS), background=True)
    time.sleep(2)
    t_term = time.monotonic()
    bs["tp2"].proc.send_signal(signal.SIGTERM)
    states = []
    # DRAIN within an agent interval (1 s); DOWN once tp2 has left (drain_s 3)
    # and two health checks 1 s apart have failed: 4 to 5 s, later on a busy
    # machine.  Watch up to 10 s, and no longer than DOWN.
    watch_states(lb, "tp2", 10.0, states, until="DOWN")
    r = result(p)
    tp2_served, _ = bs["tp2"].stop()
    left = time.monotonic() - t_term
    rest = stop_backends({k: v for k, v in bs.items() if k != "tp2"})
    names = [s for _, s in states]
    print("check 2: graceful drain of tp2 (drain_s 3): HAProxy states %s; client ok=%d err=%d lost=%d "
          "timeouts=%d reconnects=%d; tp2 served %d, tp1 %d, tp3 %d"
          % (" -> ".join("%s@%.1fs" % (s, t) for t, s in states), r["ok"], r["err"], r["lost"], r["timeouts"],
             r["reconnects"], tp2_served, rest["tp1"][0], rest["tp3"][0]), flush=True)
    assert "DRAIN" in names and "DOWN" in names and names.index("DRAIN") < names.index("DOWN"), states
    assert r["err"] == 0 and r["lost"] == 0 and r["timeouts"] == 0 and r["disconnects"] == 0, r
    assert left < 30


def check_crash(lb):
    bs = start_backends()
    lb.wait_all_up()
    p = tpclient("-c", "30", "-P", "1", "--reconnect", "--mix", "sleep", "--sleep-ms", "5-5", "-d", "7s",
                 "--source", ",".join(CLIENTS), background=True)
    time.sleep(2)
    t_kill = time.monotonic()
    bs["tp3"].proc.send_signal(signal.SIGKILL)
    bs["tp3"].proc.wait(10)
    down_after = None
    while time.monotonic() - t_kill < 5:
        st = lb.servers().get("tp3", ("?", 0))
        if st[0].startswith("DOWN"):
            down_after = time.monotonic() - t_kill
            break
        time.sleep(0.05)
    r = result(p)
    rest = stop_backends({k: v for k, v in bs.items() if k != "tp3"})
    print("check 3: crash of tp3 (SIGKILL): HAProxy marked it DOWN after %s s (inter 1 s x fall 2); "
          "client ok=%d lost=%d (in flight on tp3, 1 per connection) err=%d reconnects=%d; "
          "tp1 served %d, tp2 %d"
          % ("%.1f" % down_after if down_after is not None else "never", r["ok"], r["lost"], r["err"],
             r["reconnects"], rest["tp1"][0], rest["tp2"][0]), flush=True)
    assert down_after is not None and down_after < 3.5, down_after
    assert r["lost"] <= 15 and r["err"] == 0, r
    assert r["ok"] > 0 and min(rest["tp1"][0], rest["tp2"][0]) > 0


def check_capped():
    """A host with a lower limits.max_connections (10) and the example's
    advice, a maxconn below it (8) on its server line: 45 clients through
    HAProxy, 15 a host by round robin, never see ERR too many connections,
    and the capped host stays UP (its health check always finds room)."""
    lb = HAProxy(server_opts={"tp1": "maxconn 8"})
    try:
        bs = {"tp1": Backend("tp1", extra=("--max-connections", "10")), "tp2": Backend("tp2"),
              "tp3": Backend("tp3")}
        lb.wait_all_up()
        p = tpclient("-c", "45", "-P", "1", "--mix", "sleep", "--sleep-ms", "50-50", "-d", "5s",
                     "--source", ",".join(CLIENTS), background=True)
        states = []
        watch_states(lb, "tp1", 5.0, states, until="gone")
        r = result(p)
        counts = stop_backends(bs)
    finally:
        lb.stop()
    print("check 7: tp1 capped at 10 connections, maxconn 8 on its server line, 45 clients: client ok=%d "
          "err=%d disconnects=%d; tp1 states %s; served tp1 %d, tp2 %d, tp3 %d"
          % (r["ok"], r["err"], r["disconnects"], " -> ".join("%s@%.1fs" % (s, t) for t, s in states),
             counts["tp1"][0], counts["tp2"][0], counts["tp3"][0]), flush=True)
    assert r["err"] == 0 and r["disconnects"] == 0 and r["timeouts"] == 0, r
    assert [s for _, s in states] == ["UP"], states
    assert r["ok"] > 0 and min(c for c, _ in counts.values()) > 0, counts


def steering_run(lb_agent):
    lb = HAProxy(agent=lb_agent)
    try:
        # Small queues so that an overloaded host answers busy instead of queueing long.
        small = Backend("tp1", workers=1, queue=4, queue_timeout_ms=50)
        bs = {"tp1": small, "tp2": Backend("tp2", queue=4, queue_timeout_ms=50),
              "tp3": Backend("tp3", queue=4, queue_timeout_ms=50)}
        lb.wait_all_up()
        t0 = time.monotonic()
        weights = []
        ok = 0
        # New connections every half second: a weight steers connections, not requests.
        while time.monotonic() - t0 < 6:
            r = tpclient("-c", "24", "-P", "1", "--mix", "sleep", "--sleep-ms", "20-20", "-d", "500ms",
                         "--source", ",".join(CLIENTS))
            ok += r["ok"]
            weights.append(lb.servers().get("tp1", ("?", 0))[1])
        counts = stop_backends(bs)
    finally:
        lb.stop()
    served, busy = counts["tp1"]
    rate = busy / (served + busy) if served + busy else 0
    share = served / max(1, sum(s for s, _ in counts.values()))
    return rate, share, weights, counts


def check_steering():
    off_rate, off_share, _, off = steering_run(False)
    on_rate, on_share, weights, on = steering_run(True)
    print("check 4: overload steering (tp1: 1 worker, tp2/tp3: 8; roundrobin): tp1 busy rate %.1f%% without "
          "the agent, %.1f%% with it; tp1 share of served %.1f%% -> %.1f%%; tp1 weights seen %s"
          % (100 * off_rate, 100 * on_rate, 100 * off_share, 100 * on_share, weights), flush=True)
    assert on_rate < off_rate * 0.8, (off_rate, on_rate)


def check_fairness(lb):
    if not FAIRNESS:
        print("check 5: SKIPPED: this tpserver has no fairness by client address (pool.fairness); "
              "the check runs once it does", flush=True)
        return
    # Every connection to tp1: drain the others in HAProxy's runtime API, once
    # their agents no longer answer "ready" (agent.ready_s after the start),
    # which would end that drain.
    bs = start_backends(workers=2, queue=1000, queue_timeout_ms=5000,
                        extra=("--fairness", "address", "--agent-ready-s", "2"))
    lb.wait_all_up()
    time.sleep(2.5)
    for other in ("tp2", "tp3"):
        lb.command("set server tp_hosts/%s state drain" % other)
    time.sleep(1.5)
    st = lb.servers()
    assert all(st[o][0].startswith("DRAIN") or st[o][1] == 0 for o in ("tp2", "tp3")), st
    flood = in_ns("cl", TPCLIENT, "--host", LB, "--port", "9000", "--json", "-c", "20", "-P", "8",
                  "--mix", "sleep", "--sleep-ms", "50-50", "-d", "4s", "--source", CLIENTS[0])
    pf = subprocess.Popen(flood, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    procs.append(pf)
    time.sleep(1)
    victim = tpclient("-c", "1", "-P", "1", "--mix", "sleep", "--sleep-ms", "50-50", "-d", "2500ms",
                      "--source", CLIENTS[1])
    fl = result(pf)
    for other in ("tp2", "tp3"):
        lb.command("set server tp_hosts/%s state ready" % other)
    stop_backends(bs)
    p99 = victim["latency_ms"]["p99"]
    print("check 5: fairness through the proxy (all on tp1, 2 workers, SLEEP 50 ms): victim %s (1 connection) "
          "p99 %.0f ms ok=%d; flooder %s (20 connections x 8 in flight) p99 %.0f ms ok=%d"
          % (CLIENTS[1], p99, victim["ok"], CLIENTS[0], fl["latency_ms"]["p99"], fl["ok"]), flush=True)
    # Without fairness by address the victim queues behind 160 flooder requests of 50 ms (4 s).
    assert victim["ok"] > 0 and p99 < 1000, victim["latency_ms"]


def main():
    global FAIRNESS
    t0 = time.monotonic()
    FAIRNESS = "--fairness" in sh(TPSERVER, "--help").stdout
    topology()
    lb = HAProxy()
    try:
        three = check_spread(lb)
        check_drain(lb)
        check_crash(lb)
        check_fairness(lb)
    finally:
        lb.stop()
    check_direct(three)
    check_steering()
    check_capped()
    print("scale-out: all checks passed in %.0f s" % (time.monotonic() - t0), flush=True)


if __name__ == "__main__":
    try:
        main()
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
