# SPDX-License-Identifier: MIT
# End-to-end checks, sourced by run.sh: the watchdog, restarts and SIGKILL
# under load, a reload storm, connections kept across restarts, stops
# during a reload or with work in flight, socket activation.

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
