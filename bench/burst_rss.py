#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""RSS of a running tpserver before, during and after a burst of clients
that send without reading (each fills its max_unsent_kib of replies).

usage: burst_rss.py PID PORT [N [SECONDS_AFTER [TRICKLE]]]
Prints rss_kib_before, rss_kib_burst (all N clients stuck), and the RSS
every second for SECONDS_AFTER seconds once they are all gone.  With
TRICKLE, one more client sends an ECHO every TRICKLE seconds meanwhile
(the server is then never quiet).
"""
import resource
import socket
import sys
import time

pid, port = int(sys.argv[1]), int(sys.argv[2])
n = int(sys.argv[3]) if len(sys.argv) > 3 else 200
after = int(sys.argv[4]) if len(sys.argv) > 4 else 10
trickle = float(sys.argv[5]) if len(sys.argv) > 5 else 0.0
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def rss():
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


rss0 = rss()
chunk = b"ECHO " + b"x" * 200 + b"\n"
chunk *= 64 * 1024 // len(chunk)
socks = []
for _ in range(n):
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.setblocking(False)
    socks.append(s)
# Send until the server stops reading every one (its unsent replies are at
# the bound): no client could send anything for a whole second.
deadline = time.monotonic() + 60
last_progress = time.monotonic()
while time.monotonic() - last_progress < 1.0 and time.monotonic() < deadline:
    for s in socks:
        try:
            s.send(chunk)
            last_progress = time.monotonic()
        except BlockingIOError:
            pass
    time.sleep(0.01)
# A server slower than its clients (a loaded machine) is still reading what
# they sent: it has stopped every one once its RSS no longer grows.
rss1 = rss()
while time.monotonic() < deadline:
    time.sleep(1.0)
    rss1, last = rss(), rss1
    if rss1 <= last:
        break
for s in socks:
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    s.close()
print("clients=%d rss_kib_before=%d rss_kib_burst=%d" % (n, rss0, rss1))
side = socket.create_connection(("127.0.0.1", port)) if trickle else None
start = time.monotonic()
for t in range(1, after + 1):
    while time.monotonic() < start + t:
        if side:
            side.sendall(b"ECHO t\n")
            side.recv(16)
        time.sleep(min(trickle or 1.0, max(0.0, start + t - time.monotonic())))
    print("after_s=%d rss_kib=%d" % (t, rss()))
sys.stdout.flush()
