#!/bin/bash
# SPDX-License-Identifier: MIT
# The performance targets, measured in one run on this machine:
#  1. ECHO path against redis-server and a bare epoll ceiling (shared/bench/compare
#     when available), and the CPU each spends per request at 50x1;
#  2. SLEEP path: --mix sleep --sleep-ms 20-20 keeping every worker busy, for
#     workers = 8, 64, 512: throughput against workers x 50/s;
#  3. ERR server busy timing: how late after queue_timeout_ms it arrives, idle
#     and under an ECHO load;
#  4. idle connections: RSS per connection and thread count with 10000 of them.
# usage: bench/perf.sh [BUILD_DIR]      (default: build)
# Not a test: prints figures, asserts nothing.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$top/build}
tp=$build/tpserver
tc=$build/tpclient
[[ -x $tp && -x $tc ]] || { echo "perf: build first (cmake -S . -B build && cmake --build build)" >&2; exit 2; }
ulimit -n "$(ulimit -Hn)"
pids=()
logs=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	rm -f "${logs[@]}"
}
trap cleanup EXIT

start() { # start ARGS... -> sets port and pid
	local log
	log=$(mktemp)
	"$tp" --config /dev/null --port 0 "$@" 2>"$log" &
	pid=$!
	pids+=("$pid")
	for _ in $(seq 100); do
		port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$log" | head -1)
		[[ -n $port ]] && break
		sleep 0.05
	done
	logs+=("$log")
}
stop() { kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; }

echo "# machine: $(nproc) cores, $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1), kernel $(uname -r)"
echo "# date: $(date -u +%Y-%m-%dT%H:%MZ)"

echo "## 1. ECHO path (compare: tpserver vs redis-server vs bare epoll)"
compare=${BENCH:-$top/../shared/bench}/compare
if [[ -x $compare ]]; then
	"$compare" "$tp" 3 3
else
	echo "($compare not found; skipped)"
fi

echo "## 1b. CPU per request at 50x1 (where the 50x1 ratio comes from)"
"$top/bench/cpu_per_req.sh" "$tp" 50 1 5 4

echo "## 2. SLEEP path: 20 ms sleeps, every worker busy"
for w in 8 64 512; do
	start --workers "$w" --queue 1000
	clients=$(((w * 2 + 15) / 16))
	out=$("$tc" --port "$port" --clients "$clients" --max-inflight 16 --mix sleep --sleep-ms 20-20 \
		--duration 10 --recv-timeout 30 --json -q || true)
	stop
	python3 - "$w" "$out" <<'PY'
import json, sys
w = int(sys.argv[1]); d = json.loads(sys.argv[2])
ideal = w * 50.0
print("workers=%d ok_rps=%.0f ideal=%.0f ratio=%.3f busy=%d p99_ms=%.1f"
      % (w, d["ok_rps"], ideal, d["ok_rps"] / ideal, d.get("busy", 0), d["latency_ms"]["p99"]))
PY
done

echo "## 3. ERR server busy timing (queue_timeout_ms=1000)"
start --workers 4 --queue 16 --max-sleep-ms 60000 --shutdown-timeout-s 1
python3 "$top/bench/busy_timing.py" "$port" 4 16 1000 200
echo "# the same while 20 connections keep ECHO traffic going"
"$tc" --port "$port" --clients 20 --max-inflight 8 --mix echo --duration 20 --recv-timeout 30 -q \
	>/dev/null 2>&1 &
load=$!
sleep 1
python3 "$top/bench/busy_timing.py" "$port" 4 16 1000 200
kill "$load" 2>/dev/null || true
wait "$load" 2>/dev/null || true
stop

echo "## 4. idle connections"
start --workers 8
python3 "$top/bench/idle_conns.py" "$pid" "$port" 10000
stop
