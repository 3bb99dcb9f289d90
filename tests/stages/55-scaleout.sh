#!/bin/bash
# SPDX-License-Identifier: MIT
# Stage: scale-out end to end: three tpserver hosts behind a real HAProxy,
# each host a network namespace, all joined by a bridge in a namespace of
# its own; tpclient loads them through HAProxy from two client addresses.
#
#   client ns  10.0.0.101, 10.0.0.102  --+
#   lb ns      10.0.0.2 (HAProxy :9000)  +-- br0 (bridge ns)
#   tp1..tp3   10.0.0.11..13 (:9000 data with PROXY protocol v2, :9102 agent)
#
# HAProxy runs examples/haproxy.cfg (its addresses are these).  The checks
# (tests/e2e/scaleout.py), each printing its figures: 1 load spreads over
# the three; 2 a SIGTERM with shutdown.drain_s loses nothing for clients
# that reconnect, HAProxy shows DRAIN then DOWN; 3 a SIGKILL fails only
# what was in flight and HAProxy marks the host down within its check
# interval; 4 the agent's weights steer load off a 1-worker host; 5 fairness
# by address still works through the proxy (skipped where tpserver has no
# pool.fairness); 6 throughput of three through HAProxy against one direct.
#
# Needs root (ip netns) and haproxy; where either is missing it prints a
# SKIPPED line with the reason and exits 77 (packaging/test.sh reports the
# stage skipped), or fails under CI or TP_E2E_REQUIRE.  Builds tpserver and tpclient
# in $TOP/build-scaleout (BUILD_DIR overrides).  Every namespace and process
# it made is removed on exit, whatever happens.  About a minute.
# Env: TOP (source dir), JOBS.
set -euo pipefail
: "${TOP:?TOP must name the source directory}"
build=${BUILD_DIR:-$TOP/build-scaleout}
start=$SECONDS

# Under CI (or TP_E2E_REQUIRE) a missing prerequisite fails, as in tests/e2e/run.sh.
skip() {
	if [[ ${CI:-} == true || -n ${TP_E2E_REQUIRE:-} ]]; then
		echo "scale-out stage: FAIL: $* (required: CI or TP_E2E_REQUIRE)"
		exit 1
	fi
	echo "scale-out stage: SKIPPED ($*)"
	exit 77
}
command -v haproxy >/dev/null || skip "haproxy not installed (packaging/deps.sh test installs it)"
command -v ip >/dev/null || skip "ip (iproute2) not installed"
[[ $(id -u) -eq 0 ]] || skip "network namespaces need root"
probe=tpsx-probe-$$
ip netns add "$probe" 2>/dev/null || skip "ip netns add fails here (no CAP_SYS_ADMIN?)"
ip netns del "$probe"

prefix=tpsx$$
work=$(mktemp -d /tmp/tp-scaleout.XXXXXX)
cleanup() {
	local n
	for n in cl lb tp1 tp2 tp3 br; do
		# Whatever still runs in a namespace of ours goes with it.
		if ip netns pids "$prefix-$n" >/dev/null 2>&1; then
			for pid in $(ip netns pids "$prefix-$n"); do kill -9 "$pid" 2>/dev/null || true; done
			ip netns del "$prefix-$n" 2>/dev/null || true
		fi
	done
	rm -rf "$work"
}
trap cleanup EXIT

cmake -S "$TOP" -B "$build" -DTP_TESTS=OFF -DTP_WERROR=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j"${JOBS:-2}" --target tpserver tpclient >/dev/null

rc=0
TPSERVER=$build/tpserver TPCLIENT=$build/tpclient TP_SCALE_PREFIX=$prefix TP_SCALE_DIR=$work \
	HAPROXY_CFG=$TOP/examples/haproxy.cfg timeout 300 python3 "$TOP/tests/e2e/scaleout.py" || rc=$?
if [[ $rc -ne 0 ]]; then
	for f in "$work"/*.log; do
		printf '\n--- %s (tail) ---\n' "$f" >&2
		tail -n 20 "$f" >&2
	done
	echo "scale-out stage: FAILED (exit $rc) after $((SECONDS - start)) s" >&2
	exit 1
fi
echo "scale-out stage: passed in $((SECONDS - start)) s"
