#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# The throughput/latency study of tpserver (docs/STUDY.md) in one command:
# runs tpserver and tpclient on loopback for each configuration, writes CSV
# files into OUTDIR, then renders the plots with plot.sh (if gnuplot is
# installed). About 9 minutes on 2 cores; --quick runs a tiny subset in
# seconds, for a smoke test.
#
#   bench/study/run.sh [--quick] [--build-dir DIR] [--img-dir DIR]
#                            [--only pool|load|conn]... [--quiet-cpu CORES] [OUTDIR]
#
# The binaries come from --build-dir, else $TPSERVER and $TPCLIENT (default:
# tpclient beside $TPSERVER), else ./build. OUTDIR defaults to a new
# directory under ${TMPDIR:-/tmp}; the plots go to --img-dir (default OUTDIR).
# On a shared machine, --quiet-cpu 0.3 waits (up to 60 s) before each run
# for other processes to use at most 0.3 cores, and repeats (up to twice) a
# run they disturbed more; every row records the cores they used (other_cpu).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)

usage() {
	sed -n '3,/^[^#]/s/^# \{0,1\}//p' "$0"
	exit "${1:-2}"
}

args=("$@")
quick=()
extra=()
build_dir=
img_dir=
outdir=
while [ $# -gt 0 ]; do
	case $1 in
	--quick) quick=(--quick) ;;
	--build-dir) build_dir=${2:?--build-dir needs a directory}; shift ;;
	--build-dir=*) build_dir=${1#*=} ;;
	--img-dir) img_dir=${2:?--img-dir needs a directory}; shift ;;
	--img-dir=*) img_dir=${1#*=} ;;
	--only) extra+=(--only "${2:?--only needs pool, load or conn}"); shift ;;
	--only=*) extra+=(--only "${1#*=}") ;;
	--quiet-cpu) extra+=(--quiet-cpu "${2:?--quiet-cpu needs a number of cores}"); shift ;;
	--quiet-cpu=*) extra+=(--quiet-cpu "${1#*=}") ;;
	-h | --help) usage 0 ;;
	-*) echo "run.sh: unknown option $1" >&2; usage ;;
	*)
		[ -z "$outdir" ] || { echo "run.sh: more than one OUTDIR" >&2; usage; }
		outdir=$1
		;;
	esac
	shift
done

if [ -n "$build_dir" ]; then
	TPSERVER=$build_dir/tpserver
	TPCLIENT=$build_dir/tpclient
fi
TPSERVER=${TPSERVER:-$repo/build/tpserver}
TPCLIENT=${TPCLIENT:-$(dirname "$TPSERVER")/tpclient}
for b in "$TPSERVER" "$TPCLIENT"; do
	[ -x "$b" ] || { echo "run.sh: $b is not an executable (build first, or set --build-dir)" >&2; exit 1; }
done

[ -n "$outdir" ] || outdir=$(mktemp -d "${TMPDIR:-/tmp}/tpserver-study.XXXXXX")
mkdir -p "$outdir"
img_dir=${img_dir:-$outdir}

# 10000 idle connections need 10000 descriptors in this script's helper and
# in tpserver: take the hard limit (both inherit it). Sizes above it are
# skipped by study.py, with a note in machine.txt.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

command="bench/study/run.sh ${args[*]}"

start=$(date +%s)
python3 "$here/study.py" "${quick[@]}" "${extra[@]}" --tpserver "$TPSERVER" --tpclient "$TPCLIENT" \
	--command "$command" "$outdir"

if command -v gnuplot >/dev/null 2>&1; then
	"$here/plot.sh" "$outdir" "$img_dir"
else
	echo "run.sh: gnuplot not found: CSV files written, plots skipped (apt-get install gnuplot-nox)" >&2
fi
echo "run.sh: done in $(($(date +%s) - start)) s: CSV in $outdir, plots in $img_dir" >&2
