#!/bin/bash
# SPDX-License-Identifier: MIT
# Install what building and testing tpserver needs on Debian 12 (as root).
# usage: packaging/deps.sh [build|test|bench|all]   (default: all)
#   build: compiler, CMake, libraries: enough to build and run tpserver and
#          tpclient (configure with -DTP_TESTS=OFF, as packaging/run.sh does)
#   test:  build + everything the test suite uses (cmocka, Python, sanitizer
#          runtimes, libFuzzer, static analysers (also pyflakes for the
#          Python of the tests and benchmarks), systemd tools, Debian
#          packaging, the container tools of the end-to-end test, and haproxy
#          for examples/haproxy.cfg and the scale-out stage)
#   bench: test + what bench/ compares with and profiles by: redis-server
#          (the Redis comparison of bench/perf.sh and cpu_per_req.sh) and
#          perf (bench/profile_pipeline.sh SYSCALLS=1 or PERF=1), liburing
#          (bench/alternate.sh's io_uring servers)
#   all:   the same as test
set -euo pipefail
what=${1:-all}

build_pkgs=(build-essential cmake pkg-config libsystemd-dev libconfig-dev)
test_pkgs=(libcmocka-dev python3 git systemd procps iproute2 clang libclang-rt-14-dev cppcheck clang-tidy clang-format
	debhelper devscripts lintian fakeroot debootstrap systemd-container gnuplot-nox
	prometheus haproxy pyflakes3)
bench_pkgs=(redis-server linux-perf liburing-dev)

case $what in
build) pkgs=("${build_pkgs[@]}") ;;
test | all) pkgs=("${build_pkgs[@]}" "${test_pkgs[@]}") ;;
bench) pkgs=("${build_pkgs[@]}" "${test_pkgs[@]}" "${bench_pkgs[@]}") ;;
*) echo "usage: $0 [build|test|bench|all]" >&2; exit 2 ;;
esac

missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0
if [[ $(id -u) -ne 0 ]]; then
	echo "deps: missing packages: ${missing[*]}; run as root or: sudo apt-get install ${missing[*]}" >&2
	exit 1
fi
echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >/dev/null
apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
