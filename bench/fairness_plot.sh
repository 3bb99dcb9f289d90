#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Draws the victim's round trip from bench/fairness.py --csv with gnuplot:
# per scenario, p50, p99 and max with --fairness address beside none
# (log scale, ms).
#
#   bench/fairness.py --seconds 4 --csv fairness_victim.csv
#   bench/fairness_plot.sh fairness_victim.csv fairness_victim.png
set -euo pipefail

if [ $# -ne 2 ]; then
	echo "usage: fairness_plot.sh CSV PNG" >&2
	exit 2
fi
csv=$1
png=$2
command -v gnuplot >/dev/null 2>&1 || { echo "fairness_plot.sh: gnuplot not found (apt-get install gnuplot-nox)" >&2; exit 1; }

# One line per run: scenario index (in order of first appearance), mode,
# p50, p99, max, the victim's replies; and one tick label per scenario.
dat=$(mktemp "${TMPDIR:-/tmp}/fairness-plot.XXXXXX")
trap 'rm -f "$dat" "$dat.tics"' EXIT
awk -F, '
NR == 1 { for (i = 1; i <= NF; i++) c[$i] = i; next }
{
	s = $c["scenario"]
	if (!(s in idx)) { idx[s] = n++ }
	split(s, part, "/")
	fl = part[1]
	if (fl ~ /^sleep-flood-1conn/) fl = "flood: 1 conn,\\n1500 SLEEP 40"
	else if (fl ~ /^sleep-flood-50conn/) fl = "flood: 50 conns\\n× 30 SLEEP 40"
	else if (fl ~ /^echo-flood-4conn/) fl = "flood: 4 conns\\n× 500 ECHO"
	vs = (part[2] ~ /other/) ? "other address" : "same address"
	vr = ($c["victim_request"] ~ /^SLEEP/) ? $c["victim_request"] : "ECHO"
	printf "%d\t%s\t%s\t%s\t%s\t%s\n", idx[s], $c["fairness"], $c["p50_ms"], $c["p99_ms"], $c["max_ms"], \
		$c["victim_n"] >dat
	if (!(s in lab)) {
		lab[s] = 1
		tics = tics (tics == "" ? "" : ", ") sprintf("\"%s\\nvictim: %s,\\n%s\" %d", fl, vr, vs, idx[s])
	}
}
END { print "set xtics (" tics ")" }' dat="$dat" "$csv" >"$dat.tics"
n=$(cut -f1 "$dat" | sort -un | wc -l)
secs=$(awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == "seconds") c = i; next } { print $c; exit }' "$csv")
reps=$(awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == "rep") c = i; next } $c > m { m = $c } END { print m }' "$csv")

gnuplot <<EOF
set terminal pngcairo size 1400,760 enhanced font "DejaVu Sans,12" linewidth 1.5
set output "$png"
set datafile separator "\t"
set title "The victim's round trip while one client floods tpserver: fair scheduling by address vs none\n{/*0.8 bench/fairness.py: 8 workers, queue 1000, flood from 127.0.0.1 (tpclient), victim one request at a time, $secs s per run, $reps run(s) per mode; n: the victim's replies in a run}"
set ylabel "victim round trip (ms, log scale)"
set logscale y 10
set yrange [0.01:20000]
set format y "%g"
set grid ytics lc rgb "#d0d0d0"
set xrange [-0.6:$n - 0.4]
load "$dat.tics"
set xtics scale 0 font ",10" offset 0,-0.3
set bmargin 8
set key bottom left box opaque font ",11"
c_addr = "#2ca02c"; c_none = "#d62728"
off = 0.17
isaddr(m) = (m eq "address")
set arrow from graph 0, first 100 to graph 1, first 100 nohead dt 3 lc rgb "#7f7f7f"
set label "100 ms" at graph 1, first 100 offset -0.5,0.6 right font ",10" tc rgb "#7f7f7f"
plot \
  "$dat" using (\$1 - off):(isaddr(strcol(2)) ? \$4 : NaN):3:5 with yerrorbars lc rgb c_addr pt 5 ps 1.3 title "fairness address: p99 (bar: p50 to max)", \
  "$dat" using (\$1 - off):(isaddr(strcol(2)) ? \$3 : NaN) with points lc rgb c_addr pt 6 ps 1.3 title "address: p50", \
  "$dat" using (\$1 - off):(isaddr(strcol(2)) ? \$5 : NaN) with points lc rgb c_addr pt 8 ps 1.3 title "address: max", \
  "$dat" using (\$1 + off):(strcol(2) eq "none" ? \$4 : NaN):3:5 with yerrorbars lc rgb c_none pt 5 ps 1.3 title "fairness none: p99 (bar: p50 to max)", \
  "$dat" using (\$1 + off):(strcol(2) eq "none" ? \$3 : NaN) with points lc rgb c_none pt 6 ps 1.3 title "none: p50", \
  "$dat" using (\$1 + off):(strcol(2) eq "none" ? \$5 : NaN) with points lc rgb c_none pt 8 ps 1.3 title "none: max", \
  "$dat" using (\$1 - off):5:(isaddr(strcol(2)) ? sprintf("n=%d", \$6) : "") with labels offset 0,1 font ",9" tc rgb c_addr notitle, \
  "$dat" using (\$1 + off):5:(strcol(2) eq "none" ? sprintf("n=%d", \$6) : "") with labels offset 0,1 font ",9" tc rgb c_none notitle
EOF
echo "fairness_plot.sh: wrote $png" >&2
