#!/bin/bash
# SPDX-License-Identifier: MIT
# CPU time per request of the server and of the client, for tpserver beside
# redis-server (inline PING) and the bare epoll ceiling, with the same client
# (lineload from $BENCH, by default ../shared/bench), alternating the servers in rounds.
#
# On a machine whose cores are all busy during the run (the client and the
# server together), throughput is cores / (server + client CPU per request),
# so this says where a throughput ratio comes from and how far it can go.
# usage: bench/cpu_per_req.sh [TPSERVER] [CONNS] [PIPELINE] [ROUNDS] [SECONDS]
# Not a test: prints figures, asserts nothing.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
tp=${1:-$top/build/tpserver}
conns=${2:-50}
pipeline=${3:-1}
rounds=${4:-5}
secs=${5:-4}
bench=${BENCH:-$top/../shared/bench}
[[ -x $tp ]] || { echo "cpu_per_req: no tpserver at $tp (build first)" >&2; exit 2; }
[[ -f $bench/lineload.c ]] || { echo "cpu_per_req: $bench/lineload.c not found; skipped"; exit 0; }
command -v redis-server >/dev/null || { echo "cpu_per_req: redis-server missing (packaging/deps.sh bench); skipped"; exit 0; }

. "$top/bench/lib.sh"
bench_scratch
bench_build ceiling

declare -A port pid req
port[tp]=$(bench_free_port)
bench_start_tpserver "$tp" "${port[tp]}"
pid[tp]=$!
port[redis]=$(bench_free_port)
redis-server --port "${port[redis]}" --bind 127.0.0.1 --save '' --appendonly no >/dev/null &
pid[redis]=$!
port[ceiling]=$(bench_free_port)
"$work/limit_echo" "${port[ceiling]}" 1 &
pid[ceiling]=$!
pids+=("${pid[@]}")
req[tp]='ECHO hello'
req[redis]=PING
req[ceiling]='ECHO hello'
for s in tp redis ceiling; do
	bench_wait_port "${port[$s]}"
done

echo "# ${conns} connections x pipeline ${pipeline}, ${rounds} rounds of ${secs} s; server CPU from /proc, client CPU from getrusage"
for _ in $(seq "$rounds"); do
	for s in tp redis ceiling; do
		before=$(bench_cpu_ticks "${pid[$s]}")
		out=$(bench_client_cpu "$work/lineload" 127.0.0.1 "${port[$s]}" "$conns" "$pipeline" "$secs" "${req[$s]}")
		after=$(bench_cpu_ticks "${pid[$s]}")
		echo "$s $out srv_ticks=$((after - before))" >>"$work/rows"
	done
done
python3 - "$work/rows" "$(getconf CLK_TCK)" <<'PY'
import re, statistics as st, sys
hz = int(sys.argv[2])
rows = {}
for line in open(sys.argv[1]):
    name = line.split()[0]
    f = dict(re.findall(r"(\w+)=([0-9.]+)", line))
    done = int(f["done"])
    rows.setdefault(name, []).append((int(f["rps"]), int(f["srv_ticks"]) / hz * 1e6 / done,
                                      (float(f["cli_user"]) + float(f["cli_sys"])) * 1e6 / done))
print("%-8s %9s %14s %14s" % ("server", "rps", "server_us/req", "client_us/req"))
for name in ("tp", "redis", "ceiling"):
    r = rows[name]
    print("%-8s %9d %14.2f %14.2f" % (name, st.median(x[0] for x in r), st.median(x[1] for x in r),
                                       st.median(x[2] for x in r)))
PY
