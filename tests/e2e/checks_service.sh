# SPDX-License-Identifier: MIT
# End-to-end checks, sourced by run.sh: each package installed alone, the
# units, start, requests, metrics, the socket from systemd, status, the
# journal and its catalog, the installed docs, reload and drop-ins.

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
