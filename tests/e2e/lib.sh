# SPDX-License-Identifier: MIT
# The end-to-end test's helpers, sourced by run.sh once the container is
# up: check, fail and the calls into the container (c, cbg), the unit's
# properties, the journal, requests.

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
