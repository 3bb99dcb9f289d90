#!/bin/bash
# SPDX-License-Identifier: MIT
# Server CPU per request and throughput of several servers under the same
# client, alternated round by round so that the machine's drift hits all of
# them alike: an old and a new tpserver binary side by side in one sitting,
# with the bare epoll ceiling beside them.  Each run starts its server
# afresh, warms it for a second, then measures one run of lineload
# (../shared/bench) pipelining `ECHO hello`; server CPU from /proc.
#
# usage: bench/alternate.sh ROUNDS SECONDS CONNS PIPELINE SERVER...
#   SERVER  a tpserver binary (run with --config /dev/null), `ceiling`
#           (limit_echo, one thread), `uring` (bench/uring_echo.c: the
#           ceiling with io_uring in place of epoll), or `batch`,
#           `batch-uring-send`, `batch-uring` (bench/batch_echo.c: the
#           ceiling reading a turn's sockets before answering any, its
#           sends, or sends and receives, in one io_uring_enter); the
#           last four need liburing-dev
#   BENCH=DIR  where lineload.c and limit_echo.c are (default: ../shared/bench
#           beside the tree)
# Prints a line per run, then per server the median of its rounds.
# Not a test: prints figures, asserts nothing.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
[[ $# -ge 5 ]] || { sed -n 's/^# \{0,1\}//; 10,21p' "$0" >&2; exit 2; }
rounds=$1 secs=$2 conns=$3 pipeline=$4
shift 4
bench=${BENCH:-$top/../shared/bench}
[[ -f $bench/lineload.c ]] || { echo "alternate: $bench/lineload.c not found; skipped"; exit 0; }
for s in "$@"; do
	[[ $s == ceiling || $s == uring || $s == batch* || -x $s ]] || { echo "alternate: no server at $s" >&2; exit 2; }
done

. "$top/bench/lib.sh"
bench_scratch
bench_build ceiling
for s in "$@"; do
	case $s in
	uring) prog=uring_echo ;;
	batch*) prog=batch_echo ;;
	*) continue ;;
	esac
	[[ -x $work/$prog ]] || cc -O2 -o "$work/$prog" "$top/bench/$prog.c" -luring ||
		{ echo "alternate: $prog needs liburing-dev (apt-get install liburing-dev)" >&2; exit 2; }
done
hz=$(getconf CLK_TCK)

for r in $(seq "$rounds"); do
	for s in "$@"; do
		port=$(bench_free_port)
		if [[ $s == ceiling ]]; then
			"$work/limit_echo" "$port" 1 &
		elif [[ $s == uring ]]; then
			"$work/uring_echo" "$port" &
		elif [[ $s == batch* ]]; then
			mode=${s#batch-}
			"$work/batch_echo" "$port" "${mode/#batch/write}" &
		else
			bench_start_tpserver "$s" "$port"
		fi
		srv=$!
		pids=("$srv")
		bench_wait_port "$port"
		"$work/lineload" 127.0.0.1 "$port" "$conns" "$pipeline" 1 'ECHO hello' >/dev/null
		before=$(bench_cpu_ticks "$srv")
		out=$("$work/lineload" 127.0.0.1 "$port" "$conns" "$pipeline" "$secs" 'ECHO hello')
		after=$(bench_cpu_ticks "$srv")
		kill "$srv"
		wait "$srv" 2>/dev/null || true
		pids=()
		awk -v s="$s" -v r="$r" -v t=$((after - before)) -v hz="$hz" -v out="$out" 'BEGIN {
			match(out, /rps=[0-9]+/); rps = substr(out, RSTART + 4, RLENGTH - 4)
			match(out, /done=[0-9]+/); done = substr(out, RSTART + 5, RLENGTH - 5)
			printf "round %d %-40s rps %9d  server_us/req %.3f\n", r, s, rps, t / hz * 1e6 / done
		}' | tee -a "$work/runs"
	done
done
echo "# medians of $rounds rounds of $secs s, $conns connections x pipeline $pipeline"
for s in "$@"; do
	awk -v s="$s" '$3 == s { rps[++n] = $5; us[n] = $7 }
	function med(a, n,   i, j, t) {
		for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j - 1] > a[j]; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
		return a[int((n + 1) / 2)]
	}
	END { printf "%-40s rps %9d  server_us/req %.3f\n", s, med(rps, n), med(us, n) }' "$work/runs"
done
