#!/bin/bash
# SPDX-License-Identifier: MIT
#
# End-to-end test of the Debian package under a real, booted systemd.
#
# Builds the packages of the tree (tpserver and tpclient) and the single
# tpserver package of the last release before the split (TP_E2E_OLD_REV),
# boots a throw-away copy of a minimal Debian 12 root file system with
# systemd-nspawn (private network: loopback only), installs each package
# alone in it and checks what a user would: what each package brings,
# socket activation, requests, status, journal, reload, watchdog, restart,
# SIGKILL under load, a reload storm under load, stop, purge, the
# upgrade from the single package to the two, and an upgrade to the next
# version (the tree built once more as that version, e.g. 0.2.0 -> 0.2.1)
# under 200 clients that keep their connections.
#
#   tests/e2e/run.sh [--prepare-rootfs]
#
# --prepare-rootfs only creates the cached root file system.
#
# Environment:
#   TP_E2E_DEBS=DIR        use the .deb files in DIR instead of building
#                          them: the highest tpserver_*.deb and the
#                          tpclient_*.deb of that version, and the lowest
#                          tpserver_*.deb as the single package to upgrade
#                          from (the next version is still built from the
#                          tree, unless DIR/next holds its two .debs)
#   TP_E2E_OLD_REV=REV     git revision of the single package to upgrade
#                          from (default 2fb842d, tpserver 0.1.0)
#   TP_E2E_CACHE=DIR       root file system cache
#                          (default /var/tmp/tpserver-e2e-rootfs)
#   TP_E2E_MIRROR=URL      Debian mirror for debootstrap
#   TP_E2E_TIMEOUT=SEC     limit for the whole run (default 1800)
#   TP_E2E_REQUIRE=1       a missing prerequisite fails instead of skipping
#                          (CI=true implies it)
#   TP_E2E_VERBOSE=1       show what each check saw, not only for failures
#
# Prints one PASS or FAIL line per check and ends with "N passed, N failed".
# A check marked as a known defect (check --known-defect) that fails prints
# KNOWN-DEFECT instead of FAIL and does not fail the run.
# Exit status: 0 all passed, 1 a check failed, 77 skipped (not root, or no
# debootstrap/systemd-nspawn and no Debian archive to install them from).
set -euo pipefail

SRCDIR=$(cd "$(dirname "$0")/../.." && pwd)
CACHE=${TP_E2E_CACHE:-/var/tmp/tpserver-e2e-rootfs}
MIRROR=${TP_E2E_MIRROR:-http://deb.debian.org/debian}
SUITE=bookworm
TIMEOUT=${TP_E2E_TIMEOUT:-1800}
REQUIRE=${TP_E2E_REQUIRE:-}
if [ "${CI:-}" = true ]; then REQUIRE=1; fi
# Everything the package and the checks need inside the container: it has
# no network, so nothing can be downloaded there.
INCLUDE=systemd,systemd-sysv,dbus,procps,libconfig9,libsystemd0,python3,apt
ROOTFS_STAMP="$SUITE minbase $INCLUDE v1"

skip() {
	if [ -n "$REQUIRE" ]; then
		echo "e2e: FAIL: $* (required: CI or TP_E2E_REQUIRE)"
		echo "0 passed, 1 failed"
		exit 1
	fi
	echo "e2e: SKIP: $*"
	exit 77
}

log() { echo "e2e: $*"; }

[ "$(id -u)" = 0 ] || skip "needs root (debootstrap, systemd-nspawn)"

# Stop the container whose nspawn pid is in $1/nspawn.pid: SIGTERM asks
# nspawn for an orderly shutdown, SIGKILL follows if that takes too long.
stop_container() {
	local pid
	pid=$(cat "$1/nspawn.pid" 2>/dev/null) || return 0
	rm -f "$1/nspawn.pid"
	kill -0 "$pid" 2>/dev/null || return 0
	kill -TERM "$pid" 2>/dev/null
	for _ in $(seq 1 60); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.5
	done
	kill -KILL "$pid" 2>/dev/null
	sleep 1
	# The throw-away copy a killed nspawn leaves next to the root file system.
	rm -rf "$CACHE"/.#* 2>/dev/null
	return 0
}

# The outer process bounds the whole run and cleans up whatever the inner
# one (this script again, under timeout) left behind, however it ended.
if [ -z "${TP_E2E_WORK:-}" ]; then
	TP_E2E_WORK=$(mktemp -d /var/tmp/tpserver-e2e.XXXXXX)
	export TP_E2E_WORK
	trap 'stop_container "$TP_E2E_WORK"; rm -rf "$TP_E2E_WORK"' EXIT
	trap 'exit 130' INT TERM
	rc=0
	timeout --foreground --kill-after=30 "$TIMEOUT" "$0" "$@" || rc=$?
	if [ $rc = 124 ] || [ $rc = 137 ]; then
		read -r p f <"$TP_E2E_WORK/counts" 2>/dev/null || { p=0; f=0; }
		echo "FAIL overall time limit of $TIMEOUT s reached"
		echo "$p passed, $((f + 1)) failed"
		rc=1
	fi
	exit $rc
fi

WORK=$TP_E2E_WORK
ART="$WORK/art" # bound read-only at /srv/test in the container
mkdir -p "$ART"
echo "0 0" >"$WORK/counts"
CPID=""

cleanup() {
	local rc=$?
	trap - EXIT
	set +e
	stop_container "$WORK"
	exit "$rc"
}
trap cleanup EXIT
trap 'echo "e2e: interrupted"; exit 1' INT TERM

need_pkgs=()
command -v debootstrap >/dev/null || need_pkgs+=(debootstrap)
command -v systemd-nspawn >/dev/null || need_pkgs+=(systemd-container)
command -v nsenter >/dev/null || need_pkgs+=(util-linux)
command -v flock >/dev/null || need_pkgs+=(util-linux)
if [ ${#need_pkgs[@]} -gt 0 ]; then
	log "installing ${need_pkgs[*]}"
	export DEBIAN_FRONTEND=noninteractive
	{ apt-get update -q && apt-get install -y -q --no-install-recommends "${need_pkgs[@]}"; } >&2 ||
		skip "cannot install ${need_pkgs[*]} (no access to the Debian archive?)"
fi

# --- the root file system (cached) -----------------------------------------

mkdir -p "$CACHE"
exec 9>"$CACHE/lock"
flock -w 1200 9 || skip "cache $CACHE is locked by another run"
ROOTFS="$CACHE/rootfs"
if [ ! -f "$CACHE/stamp" ] || [ "$(cat "$CACHE/stamp")" != "$ROOTFS_STAMP" ]; then
	log "creating the $SUITE root file system in $ROOTFS (once)"
	rm -rf "$ROOTFS" "$CACHE/stamp"
	t0=$SECONDS
	if ! debootstrap --variant=minbase --include="$INCLUDE" "$SUITE" "$ROOTFS" "$MIRROR" \
		>"$WORK/debootstrap.log" 2>&1; then
		tail -n 20 "$WORK/debootstrap.log"
		rm -rf "$ROOTFS"
		skip "debootstrap $SUITE from $MIRROR failed (no access to the Debian archive?)"
	fi
	# Nothing should touch dpkg or the clock behind the test's back.
	for u in apt-daily.timer apt-daily-upgrade.timer dpkg-db-backup.timer \
		systemd-timesyncd.service console-getty.service; do
		ln -sf /dev/null "$ROOTFS/etc/systemd/system/$u"
	done
	rm -f "$ROOTFS/etc/machine-id"
	: >"$ROOTFS/etc/machine-id"
	echo tpserver-e2e >"$ROOTFS/etc/hostname"
	rm -f "$ROOTFS"/var/cache/apt/archives/*.deb
	echo "$ROOTFS_STAMP" >"$CACHE/stamp"
	log "root file system ready in $((SECONDS - t0)) s"
fi

if [ "${1:-}" = --prepare-rootfs ]; then
	log "root file system cached in $ROOTFS"
	exit 0
fi

# --- the packages ----------------------------------------------------------

OLD_REV=${TP_E2E_OLD_REV:-2fb842d}
# next_version V: the version after V, its last number plus one (0.2.0 ->
# 0.2.1), numbers only, so that the programs report it too.
next_version() {
	[[ "$1" =~ ^([0-9]+\.){1,3}[0-9]+$ ]] || { echo "e2e: no next version after '$1' (numbers only)" >&2; return 1; }
	echo "${1%.*}.$((${1##*.} + 1))"
}
if [ -n "${TP_E2E_DEBS:-}" ]; then
	cp "$TP_E2E_DEBS"/tpserver_*.deb "$TP_E2E_DEBS"/tpclient_*.deb "$ART/"
else
	V3=$(next_version "$(dpkg-parsechangelog -l "$SRCDIR/debian/changelog" -S Version)")
	log "building the packages of the tree, the single package of $OLD_REV and the tree as $V3"
	t0=$SECONDS
	# The old package and the next version without their tests, beside the
	# new one: the old was tested when it was released, the next is this
	# tree.
	DEB_BUILD_OPTIONS=nocheck "$SRCDIR/packaging/build-deb.sh" --from "$OLD_REV" "$WORK/old" \
		>"$WORK/build-old.log" 2>&1 &
	oldb=$!
	DEB_BUILD_OPTIONS=nocheck "$SRCDIR/packaging/build-deb.sh" --version "$V3" "$WORK/next" \
		>"$WORK/build-next.log" 2>&1 &
	nextb=$!
	"$SRCDIR/packaging/build-deb.sh" --lintian "$WORK/new" >/dev/null || { echo "FAIL build the packages (or lintian found errors or warnings)"; echo "0 passed, 1 failed"; exit 1; }
	wait "$oldb" || { tail -n 20 "$WORK/build-old.log"; echo "FAIL build the package of $OLD_REV"; echo "0 passed, 1 failed"; exit 1; }
	wait "$nextb" || { tail -n 20 "$WORK/build-next.log"; echo "FAIL build the packages as $V3"; echo "0 passed, 1 failed"; exit 1; }
	cp "$WORK"/old/tpserver_*.deb "$WORK"/new/tpserver_*.deb "$WORK"/new/tpclient_*.deb "$ART/"
	mkdir -p "$ART/next"
	cp "$WORK"/next/tpserver_*.deb "$WORK"/next/tpclient_*.deb "$ART/next/"
	log "built in $((SECONDS - t0)) s"
fi
# Oldest and newest tpserver, by dpkg's ordering; tpclient of the newest.
mapfile -t debs < <(for f in "$ART"/tpserver_*.deb; do echo "$(dpkg-deb -f "$f" Version) $(basename "$f")"; done |
	sort -V -k1,1 | awk '{print $2}')
[ ${#debs[@]} -ge 2 ] || { echo "FAIL need two versions of tpserver_*.deb, have: ${debs[*]:-none}"; echo "0 passed, 1 failed"; exit 1; }
DEB1=${debs[0]} # the single package of the release before the split
DEB2=${debs[-1]}
V1=$(dpkg-deb -f "$ART/$DEB1" Version)
V2=$(dpkg-deb -f "$ART/$DEB2" Version)
CLI=tpclient_${V2}_$(dpkg-deb -f "$ART/$DEB2" Architecture).deb
[ -f "$ART/$CLI" ] || { echo "FAIL no $CLI beside $DEB2"; echo "0 passed, 1 failed"; exit 1; }
# The next version, to upgrade to under load: the tree once more, as the
# version after V2.
if [ -n "${TP_E2E_DEBS:-}" ]; then
	mkdir -p "$ART/next"
	if compgen -G "$TP_E2E_DEBS/next/tpserver_*.deb" >/dev/null; then
		cp "$TP_E2E_DEBS"/next/tpserver_*.deb "$TP_E2E_DEBS"/next/tpclient_*.deb "$ART/next/"
	else
		V3=$(next_version "$V2")
		log "building the tree as $V3"
		DEB_BUILD_OPTIONS=nocheck "$SRCDIR/packaging/build-deb.sh" --version "$V3" "$WORK/next" \
			>"$WORK/build-next.log" 2>&1 ||
			{ tail -n 20 "$WORK/build-next.log"; echo "FAIL build the packages as $V3"; echo "0 passed, 1 failed"; exit 1; }
		cp "$WORK"/next/tpserver_*.deb "$WORK"/next/tpclient_*.deb "$ART/next/"
	fi
fi
DEB3=$(cd "$ART" && ls next/tpserver_*.deb | head -n 1)
V3=$(dpkg-deb -f "$ART/$DEB3" Version)
CLI3=next/tpclient_${V3}_$(dpkg-deb -f "$ART/$DEB3" Architecture).deb
[ -f "$ART/$CLI3" ] || { echo "FAIL no $CLI3 beside $DEB3"; echo "0 passed, 1 failed"; exit 1; }
dpkg --compare-versions "$V3" gt "$V2" || { echo "FAIL $DEB3 ($V3) is not newer than $V2"; echo "0 passed, 1 failed"; exit 1; }
dpkg-deb -c "$ART/$DEB1" >"$WORK/old.contents"
grep -q ' \./usr/bin/tpclient$' "$WORK/old.contents" ||
	{ echo "FAIL $DEB1 is not the single package (no /usr/bin/tpclient)"; echo "0 passed, 1 failed"; exit 1; }
cp "$SRCDIR/tests/e2e/tpc.py" "$SRCDIR/tests/e2e/keepconn.py" "$SRCDIR/tests/e2e/reload-a.conf" \
	"$SRCDIR/tests/e2e/reload-b.conf" "$ART/"
# debian/tests alone is a tree autopkgtest takes as built: it runs the
# tests against what is installed.
mkdir -p "$ART/autopkgtest/debian"
cp -r "$SRCDIR/debian/tests" "$ART/autopkgtest/debian/"
# autopkgtest and what the root file system lacks of its dependencies, for
# the container (it has no network); none when the archive is out of reach.
mkdir -p "$ART/autopkgtest-debs"
if apt-get -q -y --no-install-recommends --download-only \
	-o Dir::State::status="$ROOTFS/var/lib/dpkg/status" -o Dir::Cache::archives="$ART/autopkgtest-debs/" \
	install autopkgtest >"$WORK/autopkgtest-download.log" 2>&1; then
	log "autopkgtest: $(find "$ART/autopkgtest-debs" -name '*.deb' | wc -l) packages for the container"
else
	rm -rf "$ART/autopkgtest-debs"
	log "autopkgtest: cannot download it (see below); debian/tests will run without it"
	tail -n 3 "$WORK/autopkgtest-download.log"
fi
cp "$SRCDIR/tests/e2e/doclinks.py" "$ART/"
ls "$SRCDIR/docs/img" >"$ART/img.list"
chmod -R a+rX "$ART"

# --- boot ------------------------------------------------------------------

log "booting the container"
systemd-nspawn --register=no --keep-unit --private-network --link-journal=no -x \
	--bind-ro="$ART:/srv/test" -D "$ROOTFS" --boot \
	</dev/null >"$WORK/console.log" 2>&1 &
NSPAWN_PID=$!
echo "$NSPAWN_PID" >"$WORK/nspawn.pid"

# The container's init is nspawn's child.
for _ in $(seq 1 300); do
	kill -0 "$NSPAWN_PID" 2>/dev/null || break
	CPID=$(cat "/proc/$NSPAWN_PID/task/$NSPAWN_PID/children" 2>/dev/null | awk '{print $1}')
	if [ -n "$CPID" ] && [ -e "/proc/$CPID/root/run/systemd/private" ]; then
		break
	fi
	CPID=""
	sleep 0.1
done
if [ -z "$CPID" ]; then
	echo "FAIL boot the container (console below)"
	tail -n 40 "$WORK/console.log"
	echo "0 passed, 1 failed"
	exit 1
fi

# Run a command inside the container, with a bound.
c() {
	timeout --kill-after=5 "${TMO:-60}" nsenter --target "$CPID" --mount --uts --ipc --net --pid -- \
		env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C.UTF-8 TERM=dumb HOME=/root \
		SYSTEMD_PAGER= SYSTEMD_COLORS=0 DEBIAN_FRONTEND=noninteractive "$@"
}
# The same in the background (the caller waits for $!).
cbg() {
	timeout --kill-after=5 "${TMO:-60}" nsenter --target "$CPID" --mount --uts --ipc --net --pid -- \
		env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C.UTF-8 HOME=/root "$@" &
}

state=$(TMO=120 c systemctl is-system-running --wait 2>&1 || true)
log "container up (init pid $CPID): $state"
case "$state" in
running | degraded) ;;
*)
	echo "FAIL boot the container: $state"
	tail -n 40 "$WORK/console.log"
	echo "0 passed, 1 failed"
	exit 1
	;;
esac
[ "$state" = running ] || c systemctl --failed --no-legend || true

# --- checks ----------------------------------------------------------------

PASSED=0
FAILED=0
FAILED_NAMES=()
KNOWN=() # checks of known defects that failed: reported, not counted
OUT="$WORK/out"   # what the current check saw, shown when it fails
NOTE="$WORK/note" # what the current check wants shown also when it passes

# check [--known-defect WHY] NAME FUNCTION: run FUNCTION, print PASS/FAIL
# with its duration.  With --known-defect, a failure prints KNOWN-DEFECT and
# its output but does not fail the run (a pass says the mark can go).
check() {
	local known=""
	if [ "$1" = --known-defect ]; then
		known=$2
		shift 2
	fi
	local name=$1 fn=$2 t0 rc
	t0=$(date +%s.%N)
	: >"$OUT"
	: >"$NOTE"
	set +e
	("$fn") >>"$OUT" 2>&1
	rc=$?
	set -e
	local dt
	dt=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}')
	if [ $rc != 0 ] && [ -n "$known" ]; then
		KNOWN+=("$name")
		echo "KNOWN-DEFECT $name (${dt}s): fails, reported only: $known"
		sed 's/^/    | /' "$OUT" | tail -n 40
	elif [ $rc = 0 ]; then
		PASSED=$((PASSED + 1))
		echo "$PASSED $FAILED" >"$WORK/counts"
		echo "PASS $name (${dt}s)"
		if [ -n "$known" ]; then
			echo "    note: marked as a known defect ($known) but passed: make it an ordinary check"
		fi
		if [ -n "${TP_E2E_VERBOSE:-}" ]; then
			sed 's/^/    | /' "$OUT" | tail -n 40
		elif [ -s "$NOTE" ]; then
			sed 's/^/    | /' "$NOTE"
		fi
	else
		FAILED=$((FAILED + 1))
		echo "$PASSED $FAILED" >"$WORK/counts"
		FAILED_NAMES+=("$name")
		echo "FAIL $name (${dt}s)"
		sed 's/^/    | /' "$OUT" | tail -n 40
	fi
}

fail() {
	echo "$*"
	exit 1
}

prop() { c systemctl show -P "$2" "$1"; }
mainpid() { prop tpserver.service MainPID; }

# Wait until "$@" succeeds, up to $1 seconds.
wait_for() {
	local secs=$1
	shift
	local end=$((SECONDS + secs))
	while [ $SECONDS -lt $end ]; do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.2
	done
	"$@"
}

is_active() { [ "$(prop "$1" ActiveState)" = active ]; }

# journal UNIT FILE: the unit's journal as JSON lines, flushed first.
journal() {
	c journalctl --sync || true
	c journalctl -u "$1" -o json --no-pager >"$2" || true
}

# jhas FILE KEY=VALUE: an entry of the JSON journal FILE has that field.
jhas() {
	python3 -c 'import json, sys
k, v = sys.argv[2].split("=", 1)
sys.exit(not any(json.loads(l).get(k) == v for l in open(sys.argv[1]) if l.strip()))' "$1" "$2"
}

journal_text() {
	c journalctl --sync || true
	c journalctl -u "$1" -o short-monotonic --no-pager >"$2" || true
}

# Wait (up to 5 s) until a client connection to port 9000 is established.
wait_conn() {
	wait_for 5 c awk '$4 == "01" && $3 ~ /:2328$/ {n++} END {exit !n}' /proc/1/net/tcp
	sleep 0.2
}

threads() { c awk '/^Threads:/ {print $2}' "/proc/$1/status"; }

req() { c python3 /srv/test/tpc.py req "$@"; }

# echo_ok TEXT: "ECHO TEXT" on a new connection is answered "OK TEXT".
echo_ok() {
	local out
	out=$(req "ECHO $1") || { echo "$out"; return 1; }
	grep -qx "OK $1" <<<"$out" || { echo "$out"; return 1; }
}

conf_set_workers() {
	c sed -i -E "s/^([[:space:]]*)#?[[:space:]]*workers[[:space:]]*=.*/\\1workers = $1;/" /etc/tpserver.conf
}

listening_9000() { c awk '$2 == "0100007F:2328" && $4 == "0A" {f=1} END {exit !f}' /proc/1/net/tcp; }

# installed PKG: dpkg says PKG is installed.
installed() { [ "$(c dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null)" = installed ]; }

# The load generator alone: its program and man page, no daemon, no unit,
# nothing listening; then removed without a trace.
t_install_client() {
	TMO=180 c apt-get install -y -q --no-install-recommends "/srv/test/$CLI" || fail "apt-get install $CLI failed"
	installed tpclient || fail "tpclient not installed"
	installed tpserver && fail "installing tpclient installed tpserver"
	c tpclient --version || fail "tpclient --version failed"
	c test -f /usr/share/man/man1/tpclient.1.gz || fail "tpclient(1) missing"
	c test -f /usr/share/doc/tpclient/copyright || fail "/usr/share/doc/tpclient/copyright missing"
	c test -f /usr/share/doc/tpclient/TPCLIENT.md || fail "/usr/share/doc/tpclient/TPCLIENT.md missing (tpclient(1) names it)"
	local f
	for f in /usr/sbin/tpserver /etc/tpserver.conf /lib/systemd/system/tpserver.socket \
		/lib/systemd/system/tpserver.service; do
		c test ! -e "$f" || fail "tpclient brought $f"
	done
	[ "$(prop tpserver.socket LoadState)" = not-found ] || fail "a tpserver.socket unit is loaded"
	listening_9000 && fail "something listens on 127.0.0.1:9000"
	TMO=120 c apt-get purge -y -q tpclient >"$WORK/purge.out" 2>&1 || { tail "$WORK/purge.out"; fail "apt-get purge tpclient failed"; }
	c test ! -e /usr/bin/tpclient || fail "/usr/bin/tpclient still there after purge"
}

# The daemon alone: its program, units, conffile and man pages, not the
# load generator.
t_install() {
	TMO=180 c apt-get install -y -q --no-install-recommends "/srv/test/$DEB2" || fail "apt-get install failed"
	local v
	v=$(c dpkg-query -W -f='${Version}' tpserver)
	[ "$v" = "$V2" ] || fail "installed version '$v', expected $V2"
	installed tpclient && fail "installing tpserver installed tpclient"
	[ "$(c systemctl is-enabled tpserver.socket)" = enabled ] || fail "tpserver.socket not enabled"
	is_active tpserver.socket || fail "tpserver.socket not active after install"
	c test -f /etc/tpserver.conf || fail "/etc/tpserver.conf missing"
	c test -d /etc/tpserver.conf.d || fail "/etc/tpserver.conf.d (for local drop-ins) missing"
	c dpkg-query -W -f='${Conffiles}\n' tpserver | grep -q '/etc/tpserver.conf' ||
		fail "/etc/tpserver.conf is not a conffile"
	c test -x /usr/sbin/tpserver || fail "/usr/sbin/tpserver missing"
	for m in man8/tpserver.8 man5/tpserver.conf.5; do
		c test -f "/usr/share/man/$m.gz" || fail "/usr/share/man/$m.gz missing"
	done
	for f in /usr/bin/tpclient /usr/share/man/man1/tpclient.1.gz; do
		c test ! -e "$f" || fail "tpserver brought $f"
	done
	c dpkg-query -W -f='${Recommends}\n' tpserver | grep -qw tpclient || fail "tpserver does not recommend tpclient"
}

# The single package of the last release, configured as an administrator
# would (a local edit of the conffile), serving.
t_install_old() {
	TMO=180 c apt-get install -y -q "/srv/test/$DEB1" || fail "apt-get install $DEB1 failed"
	[ "$(c dpkg-query -W -f='${Version}' tpserver)" = "$V1" ] || fail "installed version is not $V1"
	c test -x /usr/bin/tpclient || fail "$DEB1 has no /usr/bin/tpclient"
	conf_set_workers 12
	TMO=30 c systemctl start tpserver || fail "systemctl start failed"
	echo_ok "old" || fail "the old package does not serve"
}

t_units() {
	c systemd-analyze verify --man=no tpserver.socket tpserver.service || fail "systemd-analyze verify complained"
	c systemd-analyze security --no-pager tpserver.service >"$WORK/security" 2>&1 || true
	tail -n 1 "$WORK/security"
	local score
	score=$(sed -n 's/.*Overall exposure level for tpserver.service: \([0-9.]*\).*/\1/p' "$WORK/security")
	[ -n "$score" ] || fail "no exposure level in systemd-analyze security output"
	awk -v s="$score" 'BEGIN{exit !(s <= 1.0)}' || fail "exposure level $score > 1.0"
}

t_start() {
	TMO=60 c systemctl start tpserver || { c systemctl status --no-pager tpserver; fail "systemctl start failed"; }
	is_active tpserver.service || fail "tpserver.service not active"
	is_active tpserver.socket || fail "tpserver.socket not active"
	local pid
	pid=$(mainpid)
	[ "${pid:-0}" -gt 0 ] || fail "no MainPID"
	echo "MainPID $pid"
}

# GET /metrics on 127.0.0.1:9101: the whole answer on stdout.
scrape_9101() {
	c bash -c 'exec 3<>/dev/tcp/127.0.0.1/9101 &&
		printf "GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n" >&3 &&
		timeout 5 cat <&3'
}

# The package enables tpserver-metrics.socket: systemd passes it to the
# daemon (FileDescriptorName=metrics), which serves GET /metrics from it
# inside its sandbox (it binds nothing itself).
t_metrics() {
	local out
	c systemctl is-enabled tpserver-metrics.socket || fail "tpserver-metrics.socket is not enabled"
	c systemctl restart tpserver.service
	echo_ok "before scrape" || fail "not serving after restart"
	out=$(scrape_9101) || fail "no answer on 127.0.0.1:9101"
	head -n 3 <<<"$out"
	grep -c '^tpserver_' <<<"$out" | sed 's/^/tpserver_ samples: /'
	head -n 1 <<<"$out" | grep -q '^HTTP/1.1 200' || fail "GET /metrics did not answer 200"
	grep -q '^tpserver_requests_total{op="echo",result="ok"} [1-9]' <<<"$out" ||
		fail "no tpserver_requests_total for the ECHO just answered"
	journal_text tpserver "$WORK/journal.txt"
	grep -q 'metrics on http://127.0.0.1:9101/metrics (socket from systemd)' "$WORK/journal.txt" ||
		fail "the journal does not say the metrics socket came from systemd"
}

t_requests() {
	local out
	out=$(req "ECHO hello world" "SLEEP 300" "echo again") || fail "request failed: $out"
	echo "$out"
	[ "$(sed -n 1p <<<"$out")" = "OK hello world" ] || fail "ECHO reply wrong"
	[ "$(sed -n 2p <<<"$out")" = "OK 300" ] || fail "SLEEP reply wrong"
	[ "$(sed -n 3p <<<"$out")" = "OK again" ] || fail "lower-case echo reply wrong"
	awk '/^elapsed/ {exit !($2 >= 0.29)}' <<<"$out" || fail "SLEEP 300 answered too early"
}

t_socket_from_systemd() {
	# The listening socket on 127.0.0.1:9000 in the container's network
	# namespace (where PID 1 opened it) must be one of the daemon's fds: the
	# daemon runs in its own network namespace and could not have bound it.
	local pid ino
	pid=$(mainpid)
	ino=$(c awk '$2 == "0100007F:2328" && $4 == "0A" {print $10}' /proc/1/net/tcp | head -n 1)
	[ -n "$ino" ] || fail "nothing listens on 127.0.0.1:9000"
	echo "listening socket inode $ino, daemon pid $pid"
	c ls -l "/proc/$pid/fd" >"$WORK/fds"
	grep -q "socket:\[$ino\]" "$WORK/fds" || { cat "$WORK/fds"; fail "daemon does not hold socket:[$ino]"; }
	[ "$(c readlink /proc/1/ns/net)" != "$(c readlink "/proc/$pid/ns/net")" ] ||
		fail "daemon is not in a network namespace of its own (PrivateNetwork=)"
}

t_status() {
	c systemctl status --no-pager tpserver >"$WORK/status" 2>&1 || true
	cat "$WORK/status"
	grep -q '^ *Status: "' "$WORK/status" || fail "no Status: line (STATUS=) in systemctl status"
}

t_journal_fields() {
	journal tpserver "$WORK/journal.json"
	python3 - "$WORK/journal.json" <<'PY' || fail "journal check failed"
import json, sys
entries = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
mine = [e for e in entries if "TP_EVENT" in e]
print("%d entries, %d with TP_EVENT; events: %s" % (len(entries), len(mine), sorted({e["TP_EVENT"] for e in mine})))
start = [e for e in mine if e.get("TP_EVENT") == "start"]
assert start, "no TP_EVENT=start entry"
e = start[-1]
for k in ("CODE_FILE", "CODE_LINE", "CODE_FUNC", "MESSAGE_ID", "PRIORITY", "MESSAGE"):
    assert k in e, "start entry lacks %s: %r" % (k, e)
assert e["MESSAGE_ID"] == "98f9f5bf22e845a781568eca8f836c2f", e["MESSAGE_ID"]
assert any(x.get("TP_EVENT") == "ready" for x in mine), "no TP_EVENT=ready entry"
PY
}

# The documentation is installed whole: the study's plots too, and every
# relative link of the installed Markdown files resolves.
t_docs() {
	local img
	while read -r img; do
		c test -f "/usr/share/doc/tpserver/docs/img/$img" || fail "/usr/share/doc/tpserver/docs/img/$img missing"
	done <"$ART/img.list"
	c python3 /srv/test/doclinks.py /usr/share/doc/tpserver || fail "a link in /usr/share/doc/tpserver is broken"
}

# The catalog is installed, systemd's dpkg trigger compiled it (journalctl
# --update-catalog), and journalctl -x explains the start entry.
t_catalog() {
	c test -f /usr/lib/systemd/catalog/tpserver.catalog || fail "/usr/lib/systemd/catalog/tpserver.catalog missing"
	c journalctl --list-catalog >"$WORK/catalog.txt" 2>&1 || fail "journalctl --list-catalog failed"
	grep tpserver "$WORK/catalog.txt" || fail "journalctl --list-catalog lists no tpserver entry (trigger not run?)"
	grep -q '^98f9f5bf22e845a781568eca8f836c2f tpserver: ' "$WORK/catalog.txt" || fail "no catalog entry for the start MESSAGE_ID"
	c journalctl --sync || true
	c journalctl -x -u tpserver --no-pager >"$WORK/journal-x.txt" 2>&1 || true
	grep -A 3 'tpserver is starting' "$WORK/journal-x.txt" | head -n 8
	grep -q '^ *░░ Subject: tpserver is starting' "$WORK/journal-x.txt" ||
		fail "journalctl -x -u tpserver does not explain the start entry"
	grep -q '^ *░░ .*tpserver --check-config' "$WORK/journal-x.txt" || fail "the explanation is not shown whole"
}

t_reload() {
	local pid before after want
	pid=$(mainpid)
	before=$(threads "$pid")
	echo "pid $pid, $before threads with the default 8 workers"
	conf_set_workers 12
	c grep -n 'workers' /etc/tpserver.conf
	TMO=30 c systemctl reload tpserver || fail "systemctl reload failed"
	want=$((before + 4))
	# systemctl reload returns once the daemon applied the file: no waiting.
	after=$(threads "$pid")
	c cat /run/tpserver/reload-status
	c grep -qE '^[0-9]+ applied' /run/tpserver/reload-status ||
		fail "/run/tpserver/reload-status does not say applied"
	echo "after reload: MainPID $(mainpid), $after threads"
	[ "$(mainpid)" = "$pid" ] || fail "MainPID changed on reload"
	[ "$after" = "$want" ] || fail "expected $want threads after pool.workers 8 -> 12, have $after"
	is_active tpserver.service || fail "not active after reload"
	journal tpserver "$WORK/journal.json"
	jhas "$WORK/journal.json" TP_EVENT=reload || fail "no TP_EVENT=reload in the journal"
}

t_reload_broken() {
	local pid before line
	pid=$(mainpid)
	before=$(threads "$pid")
	c cp /etc/tpserver.conf /root/tpserver.conf.good
	# An editing mistake on a known line: a value left out.
	line=$(c grep -n '^ *workers = 12;' /etc/tpserver.conf | cut -d: -f1)
	[ -n "$line" ] || fail "no 'workers = 12;' line to break"
	c sed -i "${line}s/workers = 12;/workers = ;/" /etc/tpserver.conf
	if TMO=30 c systemctl reload tpserver; then
		c cp /root/tpserver.conf.good /etc/tpserver.conf
		fail "reload of a broken file succeeded"
	fi
	c cp /root/tpserver.conf.good /etc/tpserver.conf
	journal_text tpserver "$WORK/journal.txt"
	tail -n 8 "$WORK/journal.txt"
	grep -q "/etc/tpserver.conf:$line" "$WORK/journal.txt" ||
		fail "journal does not name /etc/tpserver.conf:$line"
	# At priority err, so that journalctl -p err shows why the reload failed.
	c journalctl -q -p err -u tpserver --no-pager >"$WORK/journal-err.txt" || true
	grep -q "/etc/tpserver.conf:$line" "$WORK/journal-err.txt" ||
		fail "journalctl -p err -u tpserver does not show /etc/tpserver.conf:$line"
	is_active tpserver.service || fail "service not active after a refused reload"
	[ "$(mainpid)" = "$pid" ] || fail "MainPID changed"
	[ "$(threads "$pid")" = "$before" ] || fail "thread count changed ($before -> $(threads "$pid"))"
	echo_ok "still here" || fail "not serving after a refused reload"
}

# A drop-in overrides the main file's pool.workers (12) on reload, -t
# names it, and removing it restores the main file's value.
t_dropin() {
	local pid before want
	pid=$(mainpid)
	before=$(threads "$pid")
	c mkdir -p /etc/tpserver.conf.d
	c sh -c 'printf "# local override\npool = { workers = 10; };\n" >/etc/tpserver.conf.d/50-local.conf'
	c tpserver --check-config >"$WORK/check.txt" 2>&1 || { cat "$WORK/check.txt"; fail "tpserver --check-config failed"; }
	grep -E 'workers|queue_size' "$WORK/check.txt"
	grep -qx '  workers = 10; # from /etc/tpserver.conf.d/50-local.conf:2' "$WORK/check.txt" ||
		fail "--check-config does not name the drop-in"
	TMO=30 c systemctl reload tpserver || fail "systemctl reload failed"
	want=$((before - 2))
	wait_for 10 test "$(threads "$pid")" = "$want" || fail "expected $want threads with the drop-in, have $(threads "$pid")"
	c rm /etc/tpserver.conf.d/50-local.conf
	TMO=30 c systemctl reload tpserver || fail "systemctl reload without the drop-in failed"
	wait_for 10 test "$(threads "$pid")" = "$before" || fail "expected $before threads again, have $(threads "$pid")"
	[ "$(mainpid)" = "$pid" ] || fail "MainPID changed"
}

t_watchdog() {
	local pid up new end
	pid=$(mainpid)
	# First: a daemon that is fine keeps its MainPID past WatchdogSec.
	up=$(prop tpserver.service ActiveEnterTimestampMonotonic)
	# The timestamp is CLOCK_MONOTONIC; /proc/uptime is not the same clock
	# (it also counts time the machine was suspended).
	local now_us wait_s
	now_us=$(c python3 -c 'import time; print(time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000)')
	wait_s=$((12 - (now_us - up) / 1000000))
	if [ "$wait_s" -gt 12 ]; then wait_s=12; fi
	if [ "$wait_s" -gt 0 ]; then
		sleep "$wait_s"
	fi
	[ "$(mainpid)" = "$pid" ] || fail "MainPID changed before any stall (daemon not pinging the watchdog?)"
	[ "$(prop tpserver.service NRestarts)" = 0 ] || fail "NRestarts is not 0 before the stall"
	c kill -STOP "$pid"
	echo "stopped $pid at $(date +%T)"
	end=$((SECONDS + 45))
	new=$pid
	while [ $SECONDS -lt $end ]; do
		new=$(mainpid)
		if [ "${new:-0}" -gt 0 ] && [ "$new" != "$pid" ] && is_active tpserver.service; then
			break
		fi
		sleep 0.5
	done
	echo "new MainPID $new at $(date +%T), NRestarts $(prop tpserver.service NRestarts)"
	[ "${new:-0}" -gt 0 ] && [ "$new" != "$pid" ] || fail "not restarted within 45 s"
	echo_ok "after watchdog" || fail "not serving after the restart"
	journal_text tpserver "$WORK/journal.txt"
	grep -E -i "watchdog timeout|result 'watchdog'" "$WORK/journal.txt" || fail "journal does not say watchdog"
}

t_restart_under_load() {
	TMO=40 cbg python3 /srv/test/tpc.py loop --seconds 8 >"$WORK/loop.out" 2>&1
	local lp=$! pids=()
	sleep 1.5
	pids+=("$(mainpid)")
	TMO=40 c systemctl restart tpserver || fail "restart 1 failed"
	sleep 1.5
	pids+=("$(mainpid)")
	TMO=40 c systemctl restart tpserver || fail "restart 2 failed"
	pids+=("$(mainpid)")
	local rc=0
	wait "$lp" || rc=$?
	cat "$WORK/loop.out"
	echo "MainPIDs: ${pids[*]}"
	[ "${pids[0]}" != "${pids[1]}" ] && [ "${pids[1]}" != "${pids[2]}" ] || fail "MainPID did not change on restart"
	[ $rc = 0 ] || fail "connection attempts failed during restarts"
	grep -q '^attempts=[1-9][0-9]* failures=0$' "$WORK/loop.out" || fail "client loop did not run"
}

t_kill_under_load() {
	is_active tpserver.service || TMO=30 c systemctl start tpserver
	local before after rc=0
	# Earlier checks started the service too: count only this check's
	# starts against the unit's start limit (30 in 60 s).
	c systemctl reset-failed tpserver.service || true
	before=$(prop tpserver.service NRestarts)
	# 4 clients, each connection "SLEEP 100" and an ECHO; SIGKILL 5 times,
	# 3 s apart.
	TMO=60 c python3 /srv/test/tpc.py killload --clients 4 --kills 5 --every 3 >"$WORK/kill.out" 2>&1 || rc=$?
	cat "$WORK/kill.out"
	grep -E '^(kill|connections=)' "$WORK/kill.out" >"$NOTE" || true
	after=$(prop tpserver.service NRestarts)
	echo "NRestarts $before -> $after"
	[ $rc = 0 ] || fail "a connection was refused, a reply was wrong, or a request not in flight at a kill failed"
	[ "$((after - before))" = 5 ] || fail "expected 5 restarts, NRestarts went from $before to $after"
	is_active tpserver.socket || fail "tpserver.socket not active"
	is_active tpserver.service || fail "tpserver.service not active"
	echo_ok "after kills" || fail "not serving after the kills"
}

# 50 reloads in a row, alternating two files that differ in every setting
# a reload applies, while pipelining clients run: no reply lost, wrong or
# out of order; ERR server busy is allowed.
t_reload_storm() {
	is_active tpserver.service || TMO=30 c systemctl start tpserver
	local pid before rc=0
	pid=$(mainpid)
	before=$(prop tpserver.service NRestarts)
	c cp /etc/tpserver.conf /root/tpserver.conf.saved
	# However this ends: stop the clients, and put back the file the
	# upgrade check expects (with its local edit).
	trap 'c touch /run/storm.stop; c cp /root/tpserver.conf.saved /etc/tpserver.conf;
		TMO=30 c systemctl reload tpserver || echo "reload with the saved file failed"' EXIT
	c cp /srv/test/reload-a.conf /etc/tpserver.conf
	TMO=30 c systemctl reload tpserver || fail "reload with reload-a.conf failed"
	c rm -f /run/storm.stop
	TMO=90 cbg python3 /srv/test/tpc.py pipeline --clients 4 --stop-file /run/storm.stop >"$WORK/storm.out" 2>&1
	local cl=$!
	sleep 1
	TMO=120 c bash -c 'for i in $(seq 1 50); do
		if [ $((i % 2)) = 1 ]; then f=b; else f=a; fi
		cp /srv/test/reload-$f.conf /etc/tpserver.conf
		systemctl reload tpserver || { echo "reload $i ($f) failed"; exit 1; }
	done' || rc=$?
	sleep 1
	c touch /run/storm.stop
	local crc=0
	wait "$cl" || crc=$?
	cat "$WORK/storm.out"
	grep '^batches=' "$WORK/storm.out" >"$NOTE" || true
	[ $rc = 0 ] || fail "a systemctl reload failed"
	[ "$(mainpid)" = "$pid" ] || fail "MainPID changed during the reloads"
	[ "$(prop tpserver.service NRestarts)" = "$before" ] || fail "restarted during the reloads"
	[ $crc = 0 ] || fail "replies lost, wrong or out of order during the reloads"
	echo_ok "after the storm" || fail "not serving after the reloads"
}

# shutdown.keep_connections (on in the shipped file): 200 clients hold one
# connection each and send a request every 10 ms; three restarts; every
# client gets every reply, in order, on its original connection, no EOF.
t_keep_connections() {
	is_active tpserver.service || TMO=30 c systemctl start tpserver
	c grep -q '^ *keep_connections = true;' /etc/tpserver.conf || fail "the shipped file does not keep connections"
	c rm -f /run/keepconn.stop
	TMO=150 cbg python3 /srv/test/keepconn.py --clients 200 --every-ms 10 --stop-file /run/keepconn.stop \
		--seconds 100 >"$WORK/keep.out" 2>&1
	local cl=$! pids=() rc=0 t0
	wait_for 20 grep -q '^connected 200' "$WORK/keep.out" || fail "the 200 clients did not connect"
	sleep 2
	for i in 1 2 3; do
		pids+=("$(mainpid)")
		t0=$SECONDS
		TMO=60 c systemctl restart tpserver || fail "restart $i failed"
		echo "restart $i: $((SECONDS - t0)) s, stored $(prop tpserver.service NFileDescriptorStore) fds after it"
		sleep 3
	done
	pids+=("$(mainpid)")
	c touch /run/keepconn.stop
	wait "$cl" || rc=$?
	cat "$WORK/keep.out"
	grep -E '^(clients=|longest)' "$WORK/keep.out" >"$NOTE" || true
	echo "MainPIDs: ${pids[*]}"
	journal_text tpserver.service "$WORK/keep.journal"
	grep -E 'handed|adopted|closed' "$WORK/keep.journal" | tail -n 8
	[ "$(printf '%s\n' "${pids[@]}" | sort -u | wc -l)" = 4 ] || fail "MainPID did not change at every restart"
	[ "$(grep -c 'adopted 200 connections' "$WORK/keep.journal")" -ge 3 ] || fail "an instance did not adopt the 200 connections"
	[ "$(prop tpserver.service NFileDescriptorStore)" = 0 ] || fail "fds left in the store while running"
	[ $rc = 0 ] || fail "a client saw EOF, a wrong or missing reply"
}

# Eight restarts in a row (an admin or configuration management applying
# changes one by one) under 20 clients: within the unit's start limit
# (systemd's default, 5 starts in 10 s, fails the service and its sockets
# at the sixth), the service and its sockets stay active and every client
# keeps its connection and gets every reply.
t_quick_restarts() {
	is_active tpserver.service || TMO=30 c systemctl start tpserver
	local i rc=0 crc=0 cl
	# Only this check's starts count against the limit.
	c systemctl reset-failed tpserver.service || true
	c rm -f /run/keepconn.stop
	TMO=90 cbg python3 /srv/test/keepconn.py --clients 20 --every-ms 10 --stop-file /run/keepconn.stop \
		--seconds 60 >"$WORK/quick.out" 2>&1
	cl=$!
	wait_for 20 grep -q '^connected 20' "$WORK/quick.out" || fail "the 20 clients did not connect"
	for i in $(seq 8); do
		TMO=60 c systemctl restart tpserver || { echo "restart $i failed"; rc=1; break; }
	done
	echo "after $i restarts: tpserver.service $(prop tpserver.service ActiveState)," \
		"tpserver.socket $(prop tpserver.socket ActiveState)," \
		"tpserver-metrics.socket $(prop tpserver-metrics.socket ActiveState)" | tee "$NOTE"
	c touch /run/keepconn.stop
	wait "$cl" || crc=$?
	cat "$WORK/quick.out"
	[ $rc = 0 ] || fail "a restart failed: start limit hit?"
	is_active tpserver.service || fail "tpserver.service not active"
	is_active tpserver.socket || fail "tpserver.socket not active"
	is_active tpserver-metrics.socket || fail "tpserver-metrics.socket not active"
	[ $crc = 0 ] || fail "a client saw EOF, a wrong or missing reply"
}

# systemctl stop with keep_connections: the connections close (EOF, no ERR
# line) and nothing stays in the store; start serves again.
t_keep_then_stop() {
	is_active tpserver.service || TMO=30 c systemctl start tpserver
	TMO=60 cbg python3 /srv/test/keepconn.py --expect-eof --clients 20 --seconds 40 >"$WORK/eof.out" 2>&1
	local cl=$! rc=0
	wait_for 20 grep -q '^ready' "$WORK/eof.out" || fail "the clients did not connect"
	TMO=40 c systemctl stop tpserver || fail "systemctl stop failed"
	wait "$cl" || rc=$?
	cat "$WORK/eof.out"
	local n
	n=$(prop tpserver.service NFileDescriptorStore)
	echo "after stop: ActiveState=$(prop tpserver.service ActiveState) NFileDescriptorStore=$n"
	[ $rc = 0 ] || fail "a connection was not closed by the stop"
	[ "$n" = 0 ] || fail "NFileDescriptorStore=$n after stop"
	TMO=30 c systemctl start tpserver || fail "start after stop failed"
	echo_ok "after stop and start" || fail "not serving after stop and start"
	c journalctl --sync || true
	c journalctl --no-pager -o cat _PID="$(mainpid)" >"$WORK/stop.journal" || true
	grep 'adopted' "$WORK/stop.journal" && fail "the start after the stop adopted connections"
	return 0
}

# systemctl stop while a systemctl reload waits: systemd sends the
# ExecReload helper SIGTERM with the daemon; it exits 0, so the unit ends
# inactive, not failed with Result=signal.  (A reload done before the stop
# came passes too: three tries, each 20 ms apart as the race wants.)
t_stop_during_reload() {
	is_active tpserver.service || TMO=30 c systemctl start tpserver
	local i res st since n
	since=$(c date '+%Y-%m-%d %H:%M:%S')
	c cp -p /etc/tpserver.conf /root/tpserver.conf.saved
	for i in 1 2 3; do
		# The reload's read waits on a FIFO, so the stop comes while the
		# helper waits for the outcome (not while systemd still sets it up:
		# a control process killed before its exec fails any unit).
		c sh -c 'rm /etc/tpserver.conf && mkfifo -m 644 /etc/tpserver.conf'
		TMO=40 c sh -c 'systemctl reload tpserver & r=$!
			for t in $(seq 100); do
				p=$(systemctl show --value -p ControlPID tpserver)
				[ "$p" != 0 ] && tr "\0" " " </proc/"$p"/cmdline 2>/dev/null | grep -q reload-and-wait && break
				sleep 0.05
			done
			sleep 0.2; systemctl stop tpserver; wait $r; echo "reload rc $?"' || true
		c sh -c 'rm -f /etc/tpserver.conf && cp -p /root/tpserver.conf.saved /etc/tpserver.conf'
		res=$(prop tpserver.service Result)
		st=$(prop tpserver.service ActiveState)
		echo "try $i: Result=$res ActiveState=$st"
		[ "$res" = success ] || fail "a stop during a reload left Result=$res"
		[ "$st" = inactive ] || fail "a stop during a reload left ActiveState=$st"
		TMO=30 c systemctl start tpserver || fail "start after try $i failed"
	done
	c journalctl --sync || true
	n=$(c journalctl -q -u tpserver --since "$since" --no-pager | grep -c 'reload: stopped waiting (Terminated)') || true
	echo "helper ended by the stop in $n of 3 tries" | tee "$NOTE"
	[ "$n" = 3 ] || fail "the helper said it stopped waiting in $n of 3 tries"
}

t_stop_inflight() {
	is_active tpserver.service || TMO=30 c systemctl start tpserver
	TMO=30 cbg python3 /srv/test/tpc.py req "SLEEP 2000" >"$WORK/sleep.out" 2>&1
	local cp=$!
	wait_conn || fail "client did not connect"
	TMO=40 c systemctl stop tpserver || fail "systemctl stop failed"
	local rc=0
	wait "$cp" || rc=$?
	cat "$WORK/sleep.out"
	[ $rc = 0 ] && grep -qx "OK 2000" "$WORK/sleep.out" || fail "the request in flight was not answered OK 2000"
	local res st
	res=$(prop tpserver.service Result)
	st=$(prop tpserver.service ExecMainStatus)
	echo "Result=$res ExecMainStatus=$st ActiveState=$(prop tpserver.service ActiveState)"
	[ "$res" = success ] || fail "Result=$res"
	[ "$(prop tpserver.service ActiveState)" = inactive ] || fail "not inactive after stop"
	is_active tpserver.socket || fail "socket stopped with the service"
}

t_activation() {
	# With the service stopped, a connection starts it.
	is_active tpserver.service && fail "service already running"
	echo_ok "wake up" || fail "first connection not answered"
	wait_for 10 is_active tpserver.service || fail "service not active after a connection"
}

t_config_error() {
	local pid before
	c cp /etc/tpserver.conf /root/tpserver.conf.good
	# Out of range (pool.workers is 1 to 1024).
	c sed -i -E 's/^( *)workers = 12;/\1workers = 0;/' /etc/tpserver.conf
	c grep -q '^ *workers = 0;' /etc/tpserver.conf || fail "could not edit pool.workers"
	before=$(prop tpserver.service NRestarts)
	TMO=40 c systemctl restart tpserver && { c cp /root/tpserver.conf.good /etc/tpserver.conf; fail "restart with an invalid file succeeded"; }
	sleep 3
	local st res n
	st=$(prop tpserver.service ExecMainStatus)
	res=$(prop tpserver.service Result)
	n=$(prop tpserver.service NRestarts)
	echo "ExecMainStatus=$st Result=$res NRestarts $before -> $n ActiveState=$(prop tpserver.service ActiveState)"
	c cp /root/tpserver.conf.good /etc/tpserver.conf
	journal_text tpserver "$WORK/journal.txt"
	grep -E '/etc/tpserver.conf:[0-9]+.*workers' "$WORK/journal.txt" | tail -n 2
	[ "$st" = 78 ] || fail "exit status $st, expected 78"
	grep -q -E '/etc/tpserver.conf:[0-9]+.*workers' "$WORK/journal.txt" ||
		fail "journal does not name the file, line and setting"
	[ "$n" = "$before" ] || fail "restarted despite RestartPreventExitStatus=78"
	c systemctl reset-failed tpserver.service || true
	TMO=40 c systemctl start tpserver || fail "start with the good file failed"
	echo_ok "back" || fail "not serving with the good file"
}

# After exit 78, a client that keeps connecting makes systemd start the
# service again and again until it gives up on the service and on every
# socket that starts it; the recovery tpserver(8) and the catalog give
# brings all of them back.
t_config_error_recovery() {
	local st i
	c cp /etc/tpserver.conf /root/tpserver.conf.good
	c sed -i -E 's/^( *)workers = 12;/\1workers = 0;/' /etc/tpserver.conf
	TMO=40 c systemctl restart tpserver && { c cp /root/tpserver.conf.good /etc/tpserver.conf; fail "restart with an invalid file succeeded"; }
	# Past the unit's start limit, 30 starts in 60 s (the restart above is one).
	for i in $(seq 40); do
		c bash -c 'exec 3<>/dev/tcp/127.0.0.1/9000 && timeout 0.3 cat <&3' >/dev/null 2>&1 || true
		[ "$(prop tpserver.socket ActiveState)" = failed ] && break
	done
	st="tpserver.socket $(prop tpserver.socket ActiveState) ($(prop tpserver.socket Result)), tpserver-metrics.socket $(prop tpserver-metrics.socket ActiveState) ($(prop tpserver-metrics.socket Result))"
	echo "after $i connection(s): $st" | tee "$NOTE"
	c cp /root/tpserver.conf.good /etc/tpserver.conf
	c tpserver --check-config --quiet || fail "the good file does not check"
	[ "$(prop tpserver.socket ActiveState)" = failed ] || fail "systemd did not give up on tpserver.socket"
	c systemctl reset-failed 'tpserver*' || fail "systemctl reset-failed 'tpserver*' failed"
	TMO=40 c systemctl start tpserver.socket tpserver-metrics.socket tpserver || fail "the documented start failed"
	echo_ok "recovered" || fail "not serving after the recovery"
	scrape_9101 | head -n 1 | grep -q '^HTTP/1.1 200' || fail "no metrics after the recovery"
	is_active tpserver-metrics.socket || fail "tpserver-metrics.socket not active after the recovery"
}

t_upgrade() {
	local pid sock_ts out rc=0
	is_active tpserver.service || TMO=30 c systemctl start tpserver
	pid=$(mainpid)
	sock_ts=$(prop tpserver.socket ActiveEnterTimestampMonotonic)
	c grep -q '^ *workers = 12;' /etc/tpserver.conf || fail "the local edit of /etc/tpserver.conf is missing"
	TMO=40 cbg python3 /srv/test/tpc.py req --timeout 30 "SLEEP 2500" >"$WORK/upgrade-client.out" 2>&1
	local cl=$!
	wait_conn || fail "client did not connect"
	TMO=180 c apt-get install -y -q -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
		"/srv/test/$DEB2" "/srv/test/$CLI" >"$WORK/upgrade.out" 2>&1 || rc=$?
	tail -n 5 "$WORK/upgrade.out"
	[ $rc = 0 ] || fail "apt-get install $DEB2 $CLI failed"
	wait "$cl" || true
	echo "client: $(tr '\n' ' ' <"$WORK/upgrade-client.out")"
	local v
	v=$(c dpkg-query -W -f='${Version}' tpserver)
	[ "$v" = "$V2" ] || fail "version after upgrade '$v', expected $V2"
	# This upgrade brings the metrics socket: the daemon is stopped to start
	# it, and the next connection starts the daemon again.
	echo_ok "upgraded" || fail "not serving after upgrade"
	wait_for 20 is_active tpserver.service || fail "service not active after upgrade"
	local npid
	npid=$(mainpid)
	echo "MainPID $pid -> $npid; socket ActiveEnter $sock_ts -> $(prop tpserver.socket ActiveEnterTimestampMonotonic)"
	[ "$npid" != "$pid" ] || fail "service not restarted by the upgrade"
	[ "$(prop tpserver.socket ActiveEnterTimestampMonotonic)" = "$sock_ts" ] || fail "socket unit was restarted"
	c grep -q '^ *workers = 12;' /etc/tpserver.conf || fail "local edit of /etc/tpserver.conf lost"
	grep -qx "OK 2500" "$WORK/upgrade-client.out" || fail "request in flight during the upgrade not answered"
	# /usr/bin/tpclient moved from tpserver to tpclient.
	local owner
	owner=$(c dpkg-query -S /usr/bin/tpclient) || fail "no package owns /usr/bin/tpclient"
	echo "dpkg-query -S: $owner"
	[ "$owner" = "tpclient: /usr/bin/tpclient" ] || fail "/usr/bin/tpclient belongs to: $owner"
	c dpkg-query -L tpserver | grep -q '^/usr/bin/tpclient$' && fail "tpserver still lists /usr/bin/tpclient"
	c tpclient --version || fail "tpclient does not run after the upgrade"
	# The metrics socket is new in this version: started before the service
	# restarted, it was passed to the new daemon, which answers on it.
	scrape_9101 | head -n 1 | grep -q '^HTTP/1.1 200' ||
		fail "GET /metrics on the socket the upgrade added is not answered"
}

# The tests of debian/tests/control against both installed packages: with
# autopkgtest and its null runner, or, where it could not be downloaded
# (or with TP_E2E_REQUIRE, a failure), each test as autopkgtest runs it
# (as root, AUTOPKGTEST_TMP set).
# An upgrade to the next version (tpserver and tpclient $V3, the tree built
# as that version) under 200 clients: the maintainer scripts' restart keeps
# every connection, and the new version serves them.  The conffile is the
# locally edited one of the last release, which predates keep_connections:
# a drop-in turns it on.
t_keep_upgrade() {
	is_active tpserver.service || TMO=30 c systemctl start tpserver
	c bash -c 'mkdir -p /etc/tpserver.conf.d &&
		printf "shutdown = {\n  keep_connections = true;\n};\n" >/etc/tpserver.conf.d/60-keep.conf'
	trap 'c rm -f /etc/tpserver.conf.d/60-keep.conf /run/keepconn.stop' EXIT
	# Where the admin enabled the agent check, the upgrade leaves its socket be.
	# (A socket cannot start while its service runs: SCALE-OUT.md's steps.)
	c systemctl enable tpserver-agent.socket || fail "enable tpserver-agent.socket failed"
	TMO=30 c systemctl stop tpserver.service || fail "stop before starting the agent socket failed"
	TMO=30 c systemctl start tpserver-agent.socket tpserver.service || fail "start of the agent socket failed"
	c rm -f /run/keepconn.stop
	TMO=200 cbg python3 /srv/test/keepconn.py --clients 200 --every-ms 10 --stop-file /run/keepconn.stop \
		--seconds 150 >"$WORK/keep-up.out" 2>&1
	local cl=$! pid rc=0 arc=0
	wait_for 20 grep -q '^connected 200' "$WORK/keep-up.out" || fail "the 200 clients did not connect"
	sleep 1
	pid=$(mainpid)
	[ "$(c dpkg-query -W -f='${Version}' tpserver)" = "$V2" ] || fail "installed version is not $V2"
	local t0=$SECONDS
	TMO=180 c apt-get install -y -q -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
		"/srv/test/$DEB3" "/srv/test/$CLI3" >"$WORK/upgrade-next.out" 2>&1 || arc=$?
	echo "apt-get install: $((SECONDS - t0)) s"
	sleep 2
	c touch /run/keepconn.stop
	wait "$cl" || rc=$?
	tail -n 3 "$WORK/upgrade-next.out"
	cat "$WORK/keep-up.out"
	local npid v
	npid=$(mainpid)
	v=$(c dpkg-query -W -f='${Version} ' tpserver tpclient)
	v=${v% }
	journal_text tpserver.service "$WORK/keep-up.journal"
	grep -E "\[$npid\].*(starting|adopted)" "$WORK/keep-up.journal" | tail -n 2
	{ grep -E '^(clients=|longest)' "$WORK/keep-up.out"; echo "$V2 -> $V3, MainPID $pid -> $npid"; } >"$NOTE" || true
	echo "MainPID $pid -> $npid; installed: $v"
	[ $arc = 0 ] || { tail -n 20 "$WORK/upgrade-next.out"; fail "apt-get install $DEB3 $CLI3 failed"; }
	[ "$npid" != "$pid" ] || fail "the upgrade did not restart the service"
	[ $rc = 0 ] || fail "a client saw EOF, a wrong or missing reply across the upgrade"
	[ "$v" = "$V3 $V3" ] || fail "installed versions '$v', expected $V3 for both"
	grep -q "\[$npid\]: .*tpserver $V3 starting" "$WORK/keep-up.journal" || fail "the running tpserver (pid $npid) is not $V3"
	grep -q "\[$npid\]: .*adopted 200 connections" "$WORK/keep-up.journal" || fail "$V3 did not adopt the 200 connections"
	[ "$(c readlink "/proc/$npid/exe")" = /usr/sbin/tpserver ] || fail "the running executable is not the installed one"
	[ "$(c tpclient --version)" = "tpclient $V3" ] || fail "tpclient --version: $(c tpclient --version)"
	is_active tpserver-agent.socket || fail "the upgrade stopped tpserver-agent.socket"
	local agent
	agent=$(c bash -c 'exec 3<>/dev/tcp/127.0.0.1/9102 && timeout 5 cat <&3') || true
	echo "agent check: $agent"
	grep -Eq '^(ready|drain)' <<<"$agent" || fail "the agent check is not answered after the upgrade"
}

# An upgrade leaves each socket as the admin set it: stopped to take the host
# out for good (SCALE-OUT.md), they stay stopped.  A removal stops them all
# and an installation after it starts the enabled ones, the agent's too.
t_sockets_as_set() {
	local unit out
	TMO=30 c systemctl stop tpserver.socket tpserver-metrics.socket tpserver.service ||
		fail "stopping the sockets and the service failed"
	TMO=180 c apt-get install -y -q --reinstall "/srv/test/$DEB3" >"$WORK/reinstall.out" 2>&1 ||
		{ tail "$WORK/reinstall.out"; fail "apt-get install --reinstall $DEB3 failed"; }
	for unit in tpserver.socket tpserver-metrics.socket; do
		! is_active "$unit" || fail "the upgrade started $unit, which the admin had stopped"
	done
	! listening_9000 || fail "127.0.0.1:9000 listens again after the upgrade"
	! grep -q "Could not execute systemctl" "$WORK/reinstall.out" || fail "the upgrade could not run systemctl"
	TMO=30 c systemctl start tpserver.socket tpserver-metrics.socket || fail "starting the sockets again failed"
	is_active tpserver-agent.socket || fail "tpserver-agent.socket is not active before the removal"
	TMO=180 c apt-get remove -y -q tpserver >"$WORK/remove.out" 2>&1 || { tail "$WORK/remove.out"; fail "apt-get remove failed"; }
	for unit in tpserver.socket tpserver-metrics.socket tpserver-agent.socket; do
		! is_active "$unit" || fail "the removal left $unit active"
	done
	TMO=180 c apt-get install -y -q "/srv/test/$DEB3" >"$WORK/reinstall.out" 2>&1 ||
		{ tail "$WORK/reinstall.out"; fail "apt-get install $DEB3 after the removal failed"; }
	for unit in tpserver.socket tpserver-metrics.socket tpserver-agent.socket; do
		is_active "$unit" || fail "the reinstallation did not start $unit again"
	done
	out=$(c bash -c 'exec 3<>/dev/tcp/127.0.0.1/9000 && printf "ECHO back\n" >&3 && timeout 5 head -n 1 <&3') || true
	[ "$out" = "OK back" ] || fail "ECHO after the reinstallation: '$out'"
	c test ! -e /var/lib/tpserver/start-sockets || fail "the preinst's request is left behind"
}

t_autopkgtest() {
	TMO=180 c apt-get install -y -q "/srv/test/$CLI" >"$WORK/install.out" 2>&1 ||
		{ tail "$WORK/install.out"; fail "apt-get install $CLI failed"; }
	if [ -d "$ART/autopkgtest-debs" ]; then
		TMO=300 c sh -c 'apt-get install -y -q --no-install-recommends /srv/test/autopkgtest-debs/*.deb' \
			>"$WORK/install.out" 2>&1 || { tail "$WORK/install.out"; fail "installing autopkgtest failed"; }
		local rc=0
		TMO=300 c autopkgtest --no-built-binaries /srv/test/autopkgtest/ -- null >"$WORK/autopkgtest.out" 2>&1 || rc=$?
		sed -n '/@@@@ summary/,$p' "$WORK/autopkgtest.out" | tee "$NOTE"
		[ $rc = 0 ] || { tail -n 30 "$WORK/autopkgtest.out"; fail "autopkgtest exited with $rc"; }
		grep -q '^smoke  *PASS' "$WORK/autopkgtest.out" || fail "no 'smoke PASS' in autopkgtest's summary"
		return 0
	fi
	[ -z "$REQUIRE" ] || fail "autopkgtest could not be downloaded (required: CI or TP_E2E_REQUIRE)"
	echo "autopkgtest not available: running debian/tests directly" | tee "$NOTE"
	local tests t rc=0
	tests=$(sed -n 's/^Tests: *//p' "$ART/autopkgtest/debian/tests/control" | tr ',' ' ')
	[ -n "$tests" ] || fail "no Tests: in debian/tests/control"
	for t in $tests; do
		echo "--- $t"
		TMO=120 c bash -c 'd=$(mktemp -d) && cd /root && AUTOPKGTEST_TMP=$d /srv/test/autopkgtest/debian/tests/'"$t" ||
			{ echo "$t failed"; rc=1; }
	done
	[ $rc = 0 ]
}

# t_purge [PACKAGE...]: purge tpserver (and the packages named); nothing of
# it is left.
t_purge() {
	TMO=180 c apt-get purge -y -q tpserver "$@" >"$WORK/purge.out" 2>&1 || { tail "$WORK/purge.out"; fail "apt-get purge failed"; }
	local f
	for f in /etc/tpserver.conf /lib/systemd/system/tpserver.service /lib/systemd/system/tpserver.socket \
		/usr/sbin/tpserver /etc/systemd/system/sockets.target.wants/tpserver.socket; do
		c test ! -e "$f" || fail "$f still there after purge"
	done
	[ "$(prop tpserver.socket ActiveState)" != active ] || fail "socket still active"
	[ "$(prop tpserver.service ActiveState)" != active ] || fail "service still active"
	[ "$(prop tpserver-agent.socket ActiveState)" != active ] || fail "tpserver-agent.socket still active"
	listening_9000 && fail "something still listens on 127.0.0.1:9000"
	true
}
t_purge_all() {
	t_purge tpclient
	c test ! -e /usr/bin/tpclient || fail "/usr/bin/tpclient still there after purge"
}

check "install $CLI alone (program and man page; no daemon, unit or socket)" t_install_client
check "install $DEB2 alone (socket enabled and started, conffile, man pages; no tpclient)" t_install
check "systemd-analyze verify and security (exposure <= 1.0)" t_units
check "systemctl start tpserver" t_start
check "ECHO and SLEEP answered on 127.0.0.1:9000" t_requests
check "GET /metrics on 127.0.0.1:9101 from tpserver-metrics.socket, inside the sandbox" t_metrics
check "listening socket comes from systemd (daemon in its own netns)" t_socket_from_systemd
check "systemctl status shows STATUS=" t_status
check "journal has TP_EVENT, CODE_FILE, MESSAGE_ID on start" t_journal_fields
check "docs installed whole: plots shipped, every relative link resolves" t_docs
check "journalctl -x explains the entries (catalog installed, trigger ran)" t_catalog
check "reload applies pool.workers (same MainPID, more threads)" t_reload
check "reload of a broken file refused, error names file:line, old settings kept" t_reload_broken
check "drop-in /etc/tpserver.conf.d/50-local.conf: named by -t, applied and undone on reload" t_dropin
check "watchdog: SIGSTOP -> killed and restarted, journal says watchdog" t_watchdog
check "restart under a connecting client: no failed connection" t_restart_under_load
check "SIGKILL 5 times under load: restarted, no refused connection, only requests in flight lost, cleanly" t_kill_under_load
check "50 reloads alternating every reloadable setting under pipelining clients: no reply lost or reordered" t_reload_storm
check "keep_connections: 200 clients every 10 ms through 3 restarts: every reply, in order, no EOF" t_keep_connections
check "8 restarts in a row under 20 clients: within the start limit, service and sockets active, nothing lost" t_quick_restarts
check "keep_connections then systemctl stop: connections closed, store empty, start serves" t_keep_then_stop
check "stop during a reload: the reload helper exits 0, the unit ends inactive, not failed" t_stop_during_reload
check "stop with SLEEP 2000 in flight: OK 2000, Result=success" t_stop_inflight
check "socket activation: a connection starts the stopped service" t_activation
check "invalid configuration: exit 78, not restarted" t_config_error
check "invalid configuration under a connecting client: sockets given up, the documented recovery brings them back" t_config_error_recovery
check "autopkgtest (null runner) of debian/tests against the installed tpserver and tpclient" t_autopkgtest
check "purge removes configuration and units" t_purge_all
check "install $DEB1, the single package of the last release, locally edited" t_install_old
check "upgrade $V1 -> $V2 (tpserver and tpclient) with a client connected; tpclient moves" t_upgrade
check "upgrade $V2 -> $V3 under 200 clients every 10 ms: every reply, in order, no EOF; $V3 runs" t_keep_upgrade
check "an upgrade leaves stopped sockets stopped; remove and install start the enabled ones again" t_sockets_as_set
check "purge tpserver and tpclient" t_purge_all

if [ $FAILED -gt 0 ]; then
	echo "failed: ${FAILED_NAMES[*]}"
	echo "--- journal of tpserver.service and tpserver.socket (last lines)"
	c journalctl --no-pager -n 30 -u tpserver.service -u tpserver.socket 2>&1 | sed 's/^/    | /' || true
fi
if [ ${#KNOWN[@]} -gt 0 ]; then
	echo "known defects reported, not counted as failures: ${KNOWN[*]}"
fi
echo "$PASSED passed, $FAILED failed"
[ $FAILED = 0 ]
