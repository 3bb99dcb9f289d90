# SPDX-License-Identifier: MIT
"""Where the CPU goes in the ECHO runs of the pool sweep (docs/STUDY.md):
for each worker count, one 3 s closed-loop ECHO run with the pool sweep's
client settings, reporting the cores used by tpserver's main thread (its
event loop), by its worker threads together, and by tpclient, and the
server's context switches per second. A spot check printed on stdout, not
part of the CSV files.

  python3 bench/study/cpu_split.py [--build-dir DIR] [WORKERS...]

Per-thread CPU times come from /proc (sampled at the scheduler tick), so
threads that each run briefly, such as 128 workers sharing little work,
are under-counted; the main thread's and tpclient's figures are reliable."""
import argparse
import json
import os
import resource
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from study import SEED, Server  # noqa: E402

TCK = os.sysconf("SC_CLK_TCK")


def thread_cpu(pid):
    out = {}
    for t in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/stat" % (pid, t)) as f:
                s = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[t] = (int(s[11]) + int(s[12])) / TCK
    return out


def ctx_switches(pid):
    vol = invol = 0
    for t in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/status" % (pid, t)) as f:
                for line in f:
                    if line.startswith("voluntary_ctxt_switches"):
                        vol += int(line.split()[1])
                    elif line.startswith("nonvoluntary_ctxt_switches"):
                        invol += int(line.split()[1])
        except OSError:
            continue
    return vol, invol


def children_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build-dir", default=os.environ.get("TP_BUILD_DIR", "build"))
    ap.add_argument("workers", nargs="*", type=int, default=[1, 2, 8])
    opts = ap.parse_args()
    tpserver = os.path.join(opts.build_dir, "tpserver")
    tpclient = os.path.join(opts.build_dir, "tpclient")
    for w in opts.workers:
        srv = Server(tpserver, "--workers", w)
        try:
            main_tid = str(srv.pid)
            cpu0, ctx0, child0, t0 = thread_cpu(srv.pid), ctx_switches(srv.pid), children_cpu(), time.monotonic()
            p = subprocess.run([tpclient, "--host", "127.0.0.1", "--port", str(srv.port), "--clients", "32",
                                "--max-inflight", "16", "--mix", "echo", "--duration", "3",
                                "--seed", str(SEED), "--json", "--quiet"],
                               stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
            el = time.monotonic() - t0
            cpu1, ctx1, client = thread_cpu(srv.pid), ctx_switches(srv.pid), children_cpu() - child0
        finally:
            srv.stop()
        r = json.loads(p.stdout)
        loop = (cpu1.get(main_tid, 0) - cpu0.get(main_tid, 0)) / el
        workers = sum(v - cpu0.get(t, 0) for t, v in cpu1.items() if t != main_tid) / el
        print("workers=%-3d ok_rps=%9.0f  event loop %.2f cores  workers %.2f cores  tpclient %.2f cores  "
              "server context switches/s: voluntary %.0f, involuntary %.0f"
              % (w, r["ok_rps"], loop, workers, client / el, (ctx1[0] - ctx0[0]) / el, (ctx1[1] - ctx0[1]) / el))


if __name__ == "__main__":
    main()
