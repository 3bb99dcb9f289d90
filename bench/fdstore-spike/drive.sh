#!/bin/bash
# SPDX-License-Identifier: MIT
#
# The fd store spike behind docs/DESIGN.md "Keeping connections across
# restarts": boots the e2e's cached Debian 12 root file system (systemd 252)
# with systemd-nspawn, runs svc.py as spike.service and restarts it in each
# mode, printing what systemd and the service saw.  Root only; a few minutes.
#
#   bench/fdstore-spike/drive.sh > out.txt
set -u
ROOTFS=/var/tmp/tpserver-e2e-rootfs/rootfs
D=$(mktemp -d /tmp/fdspike.XXXXXX)
cp "$(dirname "$0")"/svc.py "$(dirname "$0")"/client.py "$(dirname "$0")"/spike.service "$D"/
systemd-nspawn --register=no --keep-unit --private-network --link-journal=no -x -M fdspike$$ \
  --bind="$D:/srv/spike" -D "$ROOTFS" --boot </dev/null >"$D/console.log" 2>&1 &
NP=$!
for _ in $(seq 1 300); do CPID=$(cat /proc/$NP/task/$NP/children 2>/dev/null | awk '{print $1}')
  [ -n "$CPID" ] && [ -e /proc/$CPID/root/run/systemd/private ] && break; sleep 0.1; done
c() { timeout 120 nsenter --target "$CPID" --mount --uts --ipc --net --pid -- env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin SYSTEMD_PAGER= SYSTEMD_COLORS=0 "$@"; }
say() { echo; echo "\$ $*"; }
run() { say "$@"; c "$@" 2>&1; }
c systemctl is-system-running --wait
c cp /srv/spike/spike.service /etc/systemd/system/; c systemctl daemon-reload
jr() { c journalctl --sync; c journalctl -u spike -o cat --no-pager -n "${1:-6}" | grep -v '^$'; }

echo "== 1. FDNAME with ':'"; echo colon > $D/mode
run systemctl start spike; run systemctl show -p NFileDescriptorStore spike
run systemctl restart spike; jr 8; run systemctl stop spike

echo "== 2. 253 vs 254 fds in one message"; echo 254 > $D/mode
run systemctl start spike; run systemctl show -p NFileDescriptorStore spike; jr 4; run systemctl stop spike

echo "== 3. LISTEN_FDNAMES size: 600 names of 200 chars (120 KB), then 700 (140 KB)"
for cnt in 600 700; do echo many > $D/mode; echo $cnt > $D/count; echo 200 > $D/namelen
  run systemctl start spike; run systemctl show -p NFileDescriptorStore spike
  echo none > $D/mode; run systemctl restart spike; run systemctl show -p NFileDescriptorStore,ActiveState,SubState,Result,ExecMainStatus spike; jr 6
  run systemctl stop spike; c systemctl reset-failed spike; done
echo "== 3b. 10000 names of 6 chars (LimitNOFILE=16384; with 8192 the start fails 202/FDS)"; echo many > $D/mode; echo 10000 > $D/count; echo 6 > $D/namelen
run systemctl start spike; run systemctl show -p NFileDescriptorStore spike
echo none > $D/mode; run systemctl restart spike; run systemctl show -p NFileDescriptorStore,ActiveState spike; jr 3; run systemctl stop spike; run systemctl show -p NFileDescriptorStore spike

echo "== 4. a stored connection closed by the new process without FDSTOREREMOVE"
echo conn > $D/mode; rm -f $D/remove
c systemctl start --no-block spike; sleep 1
c python3 /srv/spike/client.py 8 > $D/client1.out 2>&1 & CL=$!
sleep 2; run systemctl show -p NFileDescriptorStore spike
run systemctl restart spike; sleep 1; run systemctl show -p NFileDescriptorStore spike; jr 6
wait $CL; cat $D/client1.out
echo "== 4b. the same, with FDSTOREREMOVE=1 after the close"
run systemctl stop spike; touch $D/remove
c systemctl start --no-block spike; sleep 1
c python3 /srv/spike/client.py 8 > $D/client2.out 2>&1 & CL=$!
sleep 2; run systemctl restart spike; sleep 1; run systemctl show -p NFileDescriptorStore spike; jr 5
wait $CL; cat $D/client2.out

echo "== 5. SIGTERM at restart and at stop (the service logs each to sigterm.log)"; echo none > $D/mode
run systemctl start spike; run systemctl restart spike; sleep 1; run systemctl stop spike; sleep 1
cat $D/sigterm.log
kill $NP; wait $NP
