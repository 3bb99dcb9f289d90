#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""RSS and thread count of a running tpserver with N idle connections.

usage: idle_conns.py PID PORT N
Prints rss_kib_before, rss_kib_after, per_conn_bytes, threads_before/after.
"""
import resource
import socket
import sys
import time

pid, port, n = (int(a) for a in sys.argv[1:4])
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def status(key):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


time.sleep(0.3)
rss0, thr0 = status("VmRSS"), status("Threads")
socks = []
for i in range(n):
    s = socket.create_connection(("127.0.0.1", port))
    socks.append(s)
# Touch every connection once so each is accepted and has served a request.
for s in socks:
    s.sendall(b"ECHO x\n")
for s in socks:
    s.recv(16)
time.sleep(1.0)
rss1, thr1 = status("VmRSS"), status("Threads")
print("connections=%d rss_kib_before=%d rss_kib_after=%d per_conn_bytes=%.0f threads_before=%d threads_after=%d"
      % (n, rss0, rss1, (rss1 - rss0) * 1024.0 / max(n, 1), thr0, thr1))
