#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Renders the study's CSV files (written by run.sh) to PNG with gnuplot:
#
#   bench/study/plot.sh CSVDIR [IMGDIR]
#
#   pool_throughput.png      throughput vs workers per mix, with the ideal lines
#   load_latency.png         latency percentiles and busy rejections vs offered rate
#   load_queue_wait.png      where a request's time goes in the server vs offered
#                            rate: waiting for queue space, in the queue, in service
#                            (the server's own histograms), beside the client's latency
#   conn_threads_memory.png  threads and memory vs idle connections, beside the
#                            computed cost of one thread per connection
#
# A plot whose CSV file is missing is skipped. IMGDIR defaults to CSVDIR.
set -euo pipefail

if [ $# -lt 1 ] || [ $# -gt 2 ]; then
	echo "usage: plot.sh CSVDIR [IMGDIR]" >&2
	exit 2
fi
csv=$1
img=${2:-$1}
mkdir -p "$img"
command -v gnuplot >/dev/null 2>&1 || { echo "plot.sh: gnuplot not found (apt-get install gnuplot-nox)" >&2; exit 1; }

# field FILE COLUMN: the value of COLUMN (by header name) in FILE's first data row.
field() {
	awk -F, -v col="$2" 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == col) c = i; next }
		NR == 2 { print $c; exit }' "$1"
}

common='
set terminal pngcairo size 1100,700 enhanced font "DejaVu Sans,12" linewidth 1.5
set datafile separator ","
set datafile columnheaders
set grid lc rgb "#d0d0d0"
set key box opaque
c_sleep = "#1f77b4"; c_echo = "#d62728"; c_bal = "#2ca02c"; c_other = "#7f7f7f"
is(m) = strcol("mix") eq m
'

plotted=()

f=$csv/pool_sweep.csv
if [ -f "$f" ]; then
	clients=$(field "$f" clients)
	inflight=$(field "$f" max_inflight)
	sleep_ms=$(field "$f" sleep_ms)
	dur=$(field "$f" duration_s)
	reps=$(field "$f" reps)
	gnuplot <<EOF
$common
f = "$f"
set output "$img/pool_throughput.png"
set title sprintf("tpserver throughput vs worker threads\n{/*0.8 closed loop, %s clients x %s in flight = %d requests outstanding, SLEEP %s ms, %s s per run, median of %s runs (bars: min-max)}", "$clients", "$inflight", $clients * $inflight, "$sleep_ms", "$dur", "$reps")
set xlabel "worker threads (log_2 scale)"
set ylabel "throughput (OK replies per second, log scale)"
set logscale x 2
set logscale y 10
set xrange [0.8:160]
set xtics ("1" 1, "2" 2, "4" 4, "8" 8, "16" 16, "32" 32, "64" 64, "128" 128)
set format y "10^{%L}"
set key bottom right
plot \
  f using (is("echo") ? column("workers") : NaN):"ok_rps":"ok_rps_min":"ok_rps_max" with yerrorlines lc rgb c_echo pt 7 title "echo: measured", \
  f using (is("balanced") ? column("workers") : NaN):"ok_rps":"ok_rps_min":"ok_rps_max" with yerrorlines lc rgb c_bal pt 5 title "balanced: measured", \
  f using (is("balanced") ? column("workers") : NaN):"ideal_rps" with lines dt 2 lc rgb c_bal title "balanced: ideal = workers x 1000 / ($sleep_ms/2 ms)", \
  f using (is("sleep") ? column("workers") : NaN):"ok_rps":"ok_rps_min":"ok_rps_max" with yerrorlines lc rgb c_sleep pt 9 title "sleep: measured", \
  f using (is("sleep") ? column("workers") : NaN):"ideal_rps" with lines dt 2 lc rgb c_sleep title "sleep: ideal = workers x 1000 / $sleep_ms ms"

EOF
	plotted+=(pool_throughput.png)
fi

f=$csv/load_sweep.csv
if [ -f "$f" ]; then
	cap=$(field "$f" capacity_rps)
	workers=$(field "$f" workers)
	queue=$(field "$f" queue)
	sleep_ms=$(field "$f" sleep_ms)
	dur=$(field "$f" duration_s)
	gnuplot <<EOF
$common
f = "$f"
cap = $cap
set output "$img/load_latency.png"
set title sprintf("tpserver latency vs offered load (open loop)\n{/*0.8 %s workers, queue %s, queue wait 1 s, SLEEP %s ms: capacity %g req/s; %s s per rate; latency of OK replies from their scheduled send time}", "$workers", "$queue", "$sleep_ms", cap, "$dur")
set xlabel "offered load (requests per second)"
set x2label "offered load (% of capacity)"
set link x2 via x * 100.0 / cap inverse x * cap / 100.0
set x2tics 20
set xtics nomirror
set ylabel "latency of OK replies (ms, log scale)"
set logscale y 10
set format y "%g"
set y2label "busy rejections (% of requests sent)"
set y2range [0:100]
set y2tics 10
set ytics nomirror
set arrow from cap, graph 0 to cap, graph 1 nohead dt 3 lc rgb "black"
set label sprintf("capacity %g req/s", cap) at cap, graph 0.04 offset -0.5,0 right font ",11"
set key top left
set offsets graph 0.03, graph 0.03, 0, 0
set yrange [10:10000]
set style fill transparent solid 0.35 border
plot \
  f using "offered_rps":"busy_pct":(cap * 0.04) axes x1y2 with boxes lc rgb c_echo title "ERR server busy, % of sent (right axis)", \
  f using "offered_rps":"busy_pct":(column("busy") > 0 ? sprintf("%.0f%%", column("busy_pct")) : "") axes x1y2 with labels offset 0,0.8 font ",10" tc rgb c_echo notitle, \
  f using "offered_rps":"max_ms" with linespoints lc rgb c_other pt 1 title "max", \
  f using "offered_rps":"p99_ms" with linespoints lc rgb c_sleep pt 7 title "p99", \
  f using "offered_rps":"p90_ms" with linespoints lc rgb c_bal pt 5 title "p90", \
  f using "offered_rps":"p50_ms" with linespoints lc rgb "#ff7f0e" pt 9 title "p50"
EOF
	plotted+=(load_latency.png)
fi

f=$csv/load_queue_wait.csv
if [ -f "$f" ]; then
	cap=$(field "$f" capacity_rps)
	workers=$(field "$f" workers)
	queue=$(field "$f" queue)
	sleep_ms=$(field "$f" sleep_ms)
	dur=$(field "$f" duration_s)
	gnuplot <<EOF
$common
f = "$f"
cap = $cap
set output "$img/load_queue_wait.png"
set title sprintf("Where a request's time goes in tpserver vs offered load (open loop)\n{/*0.8 %s workers, queue %s, SLEEP %s ms, capacity %g req/s, %s s per rate; server: its GET /metrics histograms, admitted requests, p99 estimated in buckets}", "$workers", "$queue", "$sleep_ms", cap, "$dur")
set xlabel "offered load (requests per second)"
set x2label "offered load (% of capacity)"
set link x2 via x * 100.0 / cap inverse x * cap / 100.0
set x2tics 20
set xtics nomirror
set ylabel "time (ms, log scale)"
set logscale y 10
set format y "%g"
set yrange [0.001:10000]
set arrow from cap, graph 0 to cap, graph 1 nohead dt 3 lc rgb "black"
set label sprintf("capacity %g req/s", cap) at cap, graph 0.04 offset -0.5,0 right font ",11"
set key at graph 0.99, graph 0.62 right top box opaque font ",11"
set tmargin 6
set label "0.001: none waited (0)" at graph 0.01, first 0.0013 left font ",10" tc rgb c_echo
set offsets graph 0.03, graph 0.03, 0, 0
# A time of 0 (nothing waited) has no place on a log scale: drawn at the bottom.
lo(v) = v > 0.001 ? v : 0.001
plot \
  f using "offered_rps":"client_p99_ms" with linespoints dt 2 lc rgb c_other pt 1 title "client: round trip p99 (from scheduled send)", \
  f using "offered_rps":"client_p50_ms" with linespoints dt 3 lc rgb c_other pt 2 title "client: round trip p50", \
  f using "offered_rps":"service_mean_ms" with linespoints lc rgb c_bal pt 5 title "server: in service, mean", \
  f using "offered_rps":(lo(column("queue_wait_p99_ms"))) with linespoints lc rgb c_sleep pt 7 title "server: in the queue for a worker, p99", \
  f using "offered_rps":(lo(column("queue_wait_mean_ms"))) with linespoints dt 2 lc rgb c_sleep pt 6 title "server: in the queue for a worker, mean", \
  f using "offered_rps":(lo(column("admission_wait_p99_ms"))) with linespoints lc rgb c_echo pt 9 title "server: waiting for queue space, p99", \
  f using "offered_rps":(lo(column("admission_wait_mean_ms"))) with linespoints dt 2 lc rgb c_echo pt 8 title "server: waiting for queue space, mean"
EOF
	plotted+=(load_queue_wait.png)
fi

f=$csv/conn_sweep.csv
if [ -f "$f" ]; then
	# The stack reservation per thread the computed lines assumed (RLIMIT_STACK).
	stack_mib=$(awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) { if ($i == "connections") n = i; if ($i == "tpc_stack_reserved_kib_computed") r = i }; next }
		$n > 0 { print $r / $n / 1024; exit }' "$f")
	gnuplot <<EOF
$common
f = "$f"
set terminal pngcairo size 1400,820 enhanced font "DejaVu Sans,12" linewidth 1.5
set output "$img/conn_threads_memory.png"
set multiplot layout 1,2 title "tpserver threads and memory vs idle connections, beside one thread per connection\n{/*0.8 tpserver: measured (/proc/PID/status, 8 workers, 1 event loop); thread per connection: computed, not measured}"
set xlabel "idle connections"
set offsets graph 0.04, graph 0.04, 0, 0
set autoscale xfix
set logscale y 10
set format y "%g"
set key at graph 0, graph -0.17 left top vertical Left reverse font ",11" spacing 1.1 width -4
set bmargin 10
set tmargin 4

set title "threads"
set ylabel "threads (log scale)"
set yrange [0.8:*]
plot \
  f using "connections":"tpc_threads_computed" with linespoints dt 2 lc rgb c_echo pt 6 title "thread per connection: N + 1 (computed)", \
  f using "connections":"threads" with linespoints lc rgb c_sleep pt 7 title "tpserver (measured)"

set title "memory"
set ylabel "MiB (log scale)"
set yrange [1:*]
plot \
  f using "connections":(column("tpc_stack_reserved_kib_computed") > 0 ? column("tpc_stack_reserved_kib_computed") / 1024.0 : NaN) with linespoints dt 2 lc rgb c_echo pt 6 title "thread per connection: stack reserved, N x ${stack_mib:-8} MiB (computed)", \
  f using "connections":(column("tpc_stack_touched_kib_computed") > 0 ? column("tpc_stack_touched_kib_computed") / 1024.0 : NaN) with linespoints dt 4 lc rgb "#ff7f0e" pt 4 title "thread per connection: stack touched, N x 16 KiB (computed)", \
  f using "connections":(column("vmsize_kib") / 1024.0) with linespoints lc rgb c_bal pt 5 title "tpserver VmSize (measured)", \
  f using "connections":(column("vmrss_after_echo_kib") / 1024.0) with linespoints lc rgb c_other dt 3 pt 12 ps 1.5 title "tpserver VmRSS after one ECHO each (measured)", \
  f using "connections":(column("vmrss_kib") / 1024.0) with linespoints lc rgb c_sleep pt 7 title "tpserver VmRSS idle (measured)"
unset multiplot
EOF
	plotted+=(conn_threads_memory.png)
fi

echo "plot.sh: wrote ${plotted[*]:-nothing} in $img" >&2
