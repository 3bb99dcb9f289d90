#!/bin/bash
# SPDX-License-Identifier: MIT
# Where the CPU of a pipelined ECHO run goes, thread by thread: the event loop
# (the main thread, loop 0), the workers (every other thread) and the client,
# each split into user and kernel (system) time, per request; plus context
# switches (voluntary = the thread blocked, so each one is a later wake-up)
# per batch of PIPELINE requests, and optionally syscalls per batch and a
# cpu-clock profile.
#
# Per-thread CPU comes from /proc/PID/task/*/stat (utime, stime) and
# /proc/PID/task/*/status (context switches) read just before and just after
# one run of lineload (../shared/bench); the client's from getrusage.
#
# usage: bench/profile_pipeline.sh [TPSERVER] [CONNS] [PIPELINE] [SECONDS] [ROUNDS]
#   BENCH=DIR   where lineload.c is (default: ../shared/bench beside the tree)
#   SYSCALLS=1  also count syscalls, context switches and wake-ups per thread
#               for one round with perf stat (tracepoints; root or perf_event_paranoid<=-1)
#   PERF=1      also run one round under `perf record -e cpu-clock -g` and
#               print the top functions (self) of the server
# Not a test: prints figures, asserts nothing.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
tp=${1:-$top/build/tpserver}
conns=${2:-50}
pipeline=${3:-16}
secs=${4:-3}
rounds=${5:-3}
bench=${BENCH:-$top/../shared/bench}
[[ -x $tp ]] || { echo "profile_pipeline: no tpserver at $tp (build first)" >&2; exit 2; }
[[ -f $bench/lineload.c ]] || { echo "profile_pipeline: $bench/lineload.c not found; skipped"; exit 0; }
if [[ ${SYSCALLS:-0} == 1 || ${PERF:-0} == 1 ]] && ! command -v perf >/dev/null; then
	echo "profile_pipeline: SYSCALLS=1 and PERF=1 need perf (apt-get install linux-perf)" >&2
	exit 2
fi

. "$top/bench/lib.sh"
bench_scratch
bench_build
port=$(bench_free_port)
bench_start_tpserver "$tp" "$port"
srv=$!
pids+=("$srv")
bench_wait_port "$port"

# One line per thread: tid utime stime voluntary nonvoluntary
snap() {
	for t in /proc/"$srv"/task/*; do
		tid=${t##*/}
		read -r ut st < <(awk '{print $14, $15}' "$t/stat")
		vol=$(awk '/^voluntary_ctxt_switches/ {print $2}' "$t/status")
		inv=$(awk '/^nonvoluntary_ctxt_switches/ {print $2}' "$t/status")
		echo "$tid $ut $st $vol $inv"
	done
}
load() { bench_client_cpu "$work/lineload" 127.0.0.1 "$port" "$conns" "$pipeline" "$secs" 'ECHO hello'; }

echo "# $conns connections x pipeline $pipeline, $rounds rounds of $secs s; loop = thread $srv (loop 0), workers = the other threads"
for r in $(seq "$rounds"); do
	snap >"$work/before"
	load >"$work/out"
	snap >"$work/after"
	python3 - "$work/before" "$work/after" "$work/out" "$srv" "$(getconf CLK_TCK)" "$pipeline" "$r" <<'PY'
import re, sys
before, after, out, srv, hz, pipeline, rnd = sys.argv[1:]
hz, pipeline = int(hz), int(pipeline)
def rows(p):
    return {l.split()[0]: list(map(int, l.split()[1:])) for l in open(p)}
b, a = rows(before), rows(after)
f = dict(re.findall(r"(\w+)=([0-9.]+)", open(out).read()))
done = int(f["done"])
us = lambda ticks: ticks / hz * 1e6 / done
acc = {"loop": [0, 0, 0, 0], "workers": [0, 0, 0, 0]}
for tid, v in a.items():
    d = [x - y for x, y in zip(v, b.get(tid, [0, 0, 0, 0]))]
    k = "loop" if tid == srv else "workers"
    acc[k] = [x + y for x, y in zip(acc[k], d)]
cu, cs = float(f["cli_user"]) * 1e6 / done, float(f["cli_sys"]) * 1e6 / done
lu, ls, lv, li = acc["loop"]; wu, ws, wv, wi = acc["workers"]
batches = done / pipeline
print(f"round {rnd}: rps={f['rps']} done={done}")
print(f"  us/req   loop user {us(lu):.3f} sys {us(ls):.3f} | workers user {us(wu):.3f} sys {us(ws):.3f}"
      f" | server {us(lu+ls+wu+ws):.3f} | client user {cu:.3f} sys {cs:.3f}")
print(f"  per batch of {pipeline}: loop ctx switches vol {lv/batches:.4f} invol {li/batches:.4f}"
      f" | workers vol {wv/batches:.4f} invol {wi/batches:.4f}")
PY
done

if [[ ${SYSCALLS:-0} == 1 ]]; then
	# Syscalls, context switches and wake-ups counted by tracepoints (perf stat
	# counts in the kernel, without stopping the threads as strace does), per thread.
	ev=sched:sched_switch,sched:sched_wakeup
	for sc in read writev write epoll_wait futex sched_yield; do ev+=,syscalls:sys_enter_$sc; done
	perf stat --per-thread -x, -e "$ev" -p "$srv" -o "$work/stat" -- sleep "$secs" &
	ps=$!
	load >"$work/out"
	wait "$ps" || true
	done=$(sed -n 's/.*done=\([0-9]*\).*/\1/p' "$work/out")
	echo "# perf stat tracepoints over one round ($done requests): count per batch of $pipeline"
	python3 - "$work/stat" "$srv" "$done" "$pipeline" <<'PY'
import sys
path, srv, done, pl = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
tot = {}
for line in open(path):
    f = line.strip().split(",")
    if len(f) < 4 or not f[1].replace(".", "").isdigit():
        continue
    who = "loop" if f[0].rsplit("-", 1)[-1] == srv else "workers"
    ev = f[3].split(":")[-1].replace("sys_enter_", "")
    tot[(ev, who)] = tot.get((ev, who), 0) + float(f[1])
for ev in sorted({e for e, _ in tot}):
    l, w = tot.get((ev, "loop"), 0), tot.get((ev, "workers"), 0)
    print("  %-14s loop %8.3f  workers %8.3f  per batch" % (ev, l * pl / done, w * pl / done))
PY
fi

if [[ ${PERF:-0} == 1 ]]; then
	perf record -q -e cpu-clock -g -p "$srv" -o "$work/perf.data" -- sleep "$secs" 2>/dev/null &
	pr=$!
	load >"$work/out"
	wait "$pr" || true
	echo "# perf record -e cpu-clock -g -p SERVER ($(sed -n "s/.*\(rps=[0-9]*\).*/\1/p" "$work/out") while recorded): top functions by self time"
	perf report -i "$work/perf.data" --no-children --sort sym --stdio 2>/dev/null |
		grep -E '^ +[0-9.]+%' | head -30 || true
	echo "# samples by thread"
	perf script -i "$work/perf.data" -F tid 2>/dev/null | awk -v srv="$srv" '
		{ n++; if ($1 == srv) l++ } END { if (n) printf "  loop %.1f%%  workers %.1f%%  (%d samples)\n", 100 * l / n, 100 * (n - l) / n, n }'
fi
