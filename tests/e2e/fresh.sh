#!/bin/bash
# SPDX-License-Identifier: MIT
#
# README's run command on a fresh minimal Debian 12.
#
# Copies the end-to-end test's cached minimal bookworm root file system
# (tests/e2e/run.sh --prepare-rootfs creates it), removes what the e2e adds
# to a minimal system for its own use (Python 3), puts the committed tree
# (git archive HEAD) in /root/tpserver, and there, as root with the host's
# network so that apt can download, runs ./packaging/run.sh --port PORT in
# the background: it must install what it needs, build, and serve.  The
# check sends "ECHO fresh" and expects "OK fresh", then stops the server
# with SIGTERM and expects exit status 0.
#
#   tests/e2e/fresh.sh
#
# Environment:
#   TP_E2E_CACHE, TP_E2E_MIRROR, TP_E2E_REQUIRE, CI   as for tests/e2e/run.sh
#   TP_FRESH_TIMEOUT=SEC   limit for the run in the container (default 900)
#
# Prints PASS or FAIL with the time taken, and the output of run.sh when it
# fails.  Exit status: 0 passed, 1 failed, 77 skipped (as tests/e2e/run.sh).
set -euo pipefail

SRCDIR=$(cd "$(dirname "$0")/../.." && pwd)
CACHE=${TP_E2E_CACHE:-/var/tmp/tpserver-e2e-rootfs}
TIMEOUT=${TP_FRESH_TIMEOUT:-900}
REQUIRE=${TP_E2E_REQUIRE:-}
if [ "${CI:-}" = true ]; then REQUIRE=1; fi

skip() {
	if [ -n "$REQUIRE" ]; then
		echo "fresh: FAIL: $* (required: CI or TP_E2E_REQUIRE)"
		exit 1
	fi
	echo "fresh: SKIP: $*"
	exit 77
}
log() { echo "fresh: $*"; }

[ "$(id -u)" = 0 ] || skip "needs root (systemd-nspawn)"
command -v git >/dev/null || skip "needs git (git archive of the tree)"
git -C "$SRCDIR" rev-parse --verify -q HEAD >/dev/null || skip "$SRCDIR is not a git checkout"

# The cached root file system (created, or skipped, as the e2e does).
rc=0
bash "$SRCDIR/tests/e2e/run.sh" --prepare-rootfs || rc=$?
[ $rc = 0 ] || exit $rc

WORK=$(mktemp -d /var/tmp/tpserver-fresh.XXXXXX)
NSPAWN=""
cleanup() {
	if [ -n "$NSPAWN" ] && kill -0 "$NSPAWN" 2>/dev/null; then
		kill -TERM "$NSPAWN" 2>/dev/null || true
		sleep 2
		kill -KILL "$NSPAWN" 2>/dev/null || true
		wait "$NSPAWN" 2>/dev/null || true
	fi
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'echo "fresh: interrupted"; exit 1' INT TERM

t0=$SECONDS
ROOT="$WORK/root"
# The e2e holds the cache's lock while it uses the root file system: copy
# it under the same lock (a copy on write where the file system can).
exec 9>"$CACHE/lock"
flock -w 1200 9 || skip "cache $CACHE is locked by another run"
cp -a --reflink=auto "$CACHE/rootfs" "$ROOT"
exec 9>&-

head=$(git -C "$SRCDIR" rev-parse --short HEAD)
if [ -n "$(git -C "$SRCDIR" status --porcelain --untracked-files=no)" ]; then
	log "note: testing the committed tree $head; uncommitted changes are not in it"
fi
mkdir "$ROOT/root/tpserver"
git -C "$SRCDIR" archive --format=tar HEAD | tar -C "$ROOT/root/tpserver" -xf -

# A free port on the host (the container shares its network).
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
log "root file system and tree $head ready in $((SECONDS - t0)) s; port $PORT"

# Runs in the container as its PID 1 (bash); every step bounded.
# shellcheck disable=SC2016
script='
set -uo pipefail
say() { echo "in container: $*"; }
port=$1
# A minimal Debian has no Python: remove what the e2e added for itself.
mapfile -t py < <(dpkg-query -W -f "\${Package}\n" | grep -E "^(lib)?python3")
if [ ${#py[@]} -gt 0 ]; then
	dpkg --purge "${py[@]}" >/tmp/purge.log 2>&1 || { cat /tmp/purge.log; say "could not remove ${py[*]}"; exit 1; }
fi
for t in python3 cmake cc pkg-config; do
	if command -v "$t" >/dev/null; then say "$t is installed: not a fresh minimal system"; exit 1; fi
done
cd /root/tpserver
t0=$SECONDS
./packaging/run.sh --port "$port" >/root/run.log 2>&1 &
pid=$!
reply=""
while [ $((SECONDS - t0)) -lt 840 ]; do
	if ! kill -0 "$pid" 2>/dev/null; then
		wait "$pid"
		say "./packaging/run.sh exited with status $? after $((SECONDS - t0)) s without serving:"
		tail -n 40 /root/run.log
		exit 1
	fi
	reply=$( (exec 3<>"/dev/tcp/127.0.0.1/$port" && printf "ECHO fresh\n" >&3 &&
		IFS= read -r -t 10 line <&3 && printf "%s" "$line") 2>/dev/null) || true
	[ -n "$reply" ] && break
	sleep 1
done
say "answered after $((SECONDS - t0)) s (install, build, start): ${reply:-nothing}"
grep "^deps:" /root/run.log | cut -c 1-300
kill -TERM "$pid" 2>/dev/null
st=0
wait "$pid" || st=$?
say "tpserver exit status after SIGTERM: $st"
if [ "$reply" != "OK fresh" ] || [ $st != 0 ]; then
	tail -n 40 /root/run.log
	exit 1
fi
'
rc=0
timeout --kill-after=10 "$TIMEOUT" systemd-nspawn --register=no --keep-unit --quiet \
	--machine="tpserver-fresh-${WORK##*.}" -D "$ROOT" --pipe --setenv=DEBIAN_FRONTEND=noninteractive --setenv=LC_ALL=C.UTF-8 \
	-- /bin/bash -c "$script" fresh "$PORT" </dev/null >"$WORK/out" 2>&1 &
NSPAWN=$!
wait "$NSPAWN" || rc=$?
NSPAWN=""
sed 's/^/    | /' "$WORK/out"
dt=$((SECONDS - t0))
if [ $rc = 0 ]; then
	echo "PASS ./packaging/run.sh on a fresh minimal Debian 12 serves ECHO (${dt}s)"
	exit 0
fi
if [ $rc = 124 ] || [ $rc = 137 ]; then
	echo "fresh: time limit of $TIMEOUT s reached"
fi
echo "FAIL ./packaging/run.sh on a fresh minimal Debian 12 serves ECHO (exit $rc, ${dt}s)"
exit 1
