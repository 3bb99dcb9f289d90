# SPDX-License-Identifier: MIT
# End-to-end checks, sourced by run.sh: invalid configurations and their
# recovery, upgrades (one with 200 clients keeping their connections), the
# sockets across upgrades, autopkgtest, purge.

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

# An upgrade (here a reinstallation: the same configure step) over a drop-in
# the daemon cannot start with: the running daemon is not restarted and
# serves on, apt succeeds, and its output names the file, line and setting
# and says what to do.  Once the file is fixed, the next upgrade restarts it.
t_upgrade_broken_config() {
	local pid npid
	is_active tpserver.service || TMO=30 c systemctl start tpserver
	echo_ok "before" || fail "not serving before the upgrade"
	pid=$(mainpid)
	c sh -c 'mkdir -p /etc/tpserver.conf.d && printf "pool = { workers = \"many\"; };\n" >/etc/tpserver.conf.d/50-broken.conf'
	trap 'c rm -f /etc/tpserver.conf.d/50-broken.conf' EXIT
	TMO=180 c apt-get install -y -q --reinstall "/srv/test/$DEB3" >"$WORK/broken-upgrade.out" 2>&1 ||
		{ tail "$WORK/broken-upgrade.out"; fail "apt-get install --reinstall $DEB3 failed"; }
	grep '^tpserver: ' "$WORK/broken-upgrade.out"
	grep -q '^tpserver: /etc/tpserver.conf.d/50-broken.conf:1: pool.workers: expected an integer' \
		"$WORK/broken-upgrade.out" || fail "the upgrade's output does not name the file, line and setting"
	grep -q 'the daemon is not restarted and serves on' "$WORK/broken-upgrade.out" ||
		fail "the upgrade's output does not say the daemon was not restarted"
	! grep -q "Could not execute systemctl" "$WORK/broken-upgrade.out" || fail "the upgrade tried a restart that failed"
	[ "$(mainpid)" = "$pid" ] || fail "the daemon was restarted over a configuration it cannot start with"
	echo_ok "still" || fail "not serving after the upgrade"
	c rm -f /etc/tpserver.conf.d/50-broken.conf
	TMO=180 c apt-get install -y -q --reinstall "/srv/test/$DEB3" >"$WORK/fixed-upgrade.out" 2>&1 ||
		{ tail "$WORK/fixed-upgrade.out"; fail "apt-get install --reinstall $DEB3 with the file fixed failed"; }
	! grep -q '^tpserver: ' "$WORK/fixed-upgrade.out" || fail "a warning with the file fixed"
	npid=$(mainpid)
	echo "MainPID $pid, then $npid once the file is fixed"
	[ "$npid" != "$pid" ] && [ "$npid" != 0 ] || fail "the upgrade did not restart the daemon once the file was fixed"
	echo_ok "again" || fail "not serving after the restart"
}

# A downgrade to $V1 that fails while unpacking (a file of $V1 diverted
# into a directory that does not exist): dpkg runs this version's abort-upgrade, which puts the
# sockets the prerm stopped and forgot back as they were, here the metrics
# one enabled and running, the agent's enabled but stopped by the admin.
# The daemon is stopped first, so that nothing stands in the way of a start.
t_failed_downgrade() {
	local unit
	path=$(comm -23 <(dpkg-deb -c "$ART/$DEB1" | awk '$1 ~ /^-/ {print $6}' | sed 's|^\./|/|' | sort) \
		<({ dpkg-deb -c "$ART/$DEB3"; dpkg-deb -c "$ART/$CLI3"; } | awk '{print $6}' | sed 's|^\./|/|' | sort) |
		head -n 1)
	[ -n "$path" ] || fail "no file of $V1 that $V3 does not ship, to divert"
	# (path is not local: the trap below reads it when the check's subshell exits)
	TMO=30 c systemctl stop tpserver.service
	is_active tpserver-metrics.socket || TMO=30 c systemctl start tpserver-metrics.socket
	c systemctl enable tpserver-agent.socket 2>/dev/null
	! is_active tpserver-agent.socket || c systemctl stop tpserver-agent.socket
	c dpkg-divert --local --add --divert "/nonexistent-tpserver-e2e/${path##*/}" "$path"
	trap 'c dpkg-divert --local --remove "$path"; c systemctl disable tpserver-agent.socket 2>/dev/null' EXIT
	if TMO=180 c apt-get install -y -q --allow-downgrades -o Dpkg::Options::=--force-confdef \
		-o Dpkg::Options::=--force-confold "/srv/test/$DEB1" >"$WORK/failed-downgrade.out" 2>&1; then
		fail "the downgrade went through with $path diverted where it cannot go"
	fi
	grep -m 1 "nonexistent-tpserver-e2e" "$WORK/failed-downgrade.out" || true
	[ "$(c dpkg-query -W -f='${Version} ${Status}' tpserver)" = "$V3 install ok installed" ] ||
		fail "tpserver is not $V3, installed, after the failed downgrade: $(c dpkg-query -W -f='${Version} ${Status}' tpserver)"
	for unit in tpserver-metrics.socket tpserver-agent.socket; do
		c test -L "/etc/systemd/system/sockets.target.wants/$unit" || fail "$unit is not enabled again"
	done
	is_active tpserver-metrics.socket || fail "tpserver-metrics.socket is not running again"
	! is_active tpserver-agent.socket || fail "tpserver-agent.socket, stopped before, was started"
	echo "both sockets enabled again, the metrics one running, the agent's still stopped"
	scrape_9101 | head -n 1 | grep -q '^HTTP/1.1 200' || fail "GET /metrics did not answer 200 after the failed downgrade"
	echo_ok "after" || fail "not serving after the failed downgrade"
}

# A downgrade to the release before the metrics and agent sockets, then an
# upgrade back: the two sockets are stopped and forgotten on the way down
# (nothing left "active" without a socket, no enablement left behind), and
# the metrics endpoint serves again after the way up.
t_downgrade_and_back() {
	local unit out
	TMO=180 c apt-get install -y -q --allow-downgrades -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "/srv/test/$DEB1" >"$WORK/downgrade.out" 2>&1 ||
		{ tail "$WORK/downgrade.out"; fail "apt-get install $DEB1 (the downgrade) failed"; }
	[ "$(c dpkg-query -W -f='${Version}' tpserver)" = "$V1" ] || fail "installed version is not $V1"
	for unit in tpserver-metrics.socket tpserver-agent.socket; do
		! is_active "$unit" || fail "$unit is still active after the downgrade to $V1, which has no such unit"
		c test ! -e "/etc/systemd/system/sockets.target.wants/$unit" || fail "$unit is still enabled after the downgrade"
	done
	echo_ok "downgraded" || fail "$V1 does not serve after the downgrade"
	TMO=180 c apt-get install -y -q -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "/srv/test/$DEB3" "/srv/test/$CLI3" >"$WORK/upgrade-back.out" 2>&1 ||
		{ tail "$WORK/upgrade-back.out"; fail "apt-get install $DEB3 $CLI3 (the way back) failed"; }
	is_active tpserver-metrics.socket || fail "tpserver-metrics.socket is not active after the upgrade back"
	echo_ok "back" || fail "not serving after the upgrade back"
	out=$(scrape_9101) || fail "no answer on 127.0.0.1:9101 after the upgrade back"
	head -n 1 <<<"$out"
	head -n 1 <<<"$out" | grep -q '^HTTP/1.1 200' || fail "GET /metrics did not answer 200 after the upgrade back"
}
