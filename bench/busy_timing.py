#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""How precisely does ERR server busy keep its deadline?

Fills the pool and the queue of a running tpserver with long SLEEPs, then
sends single `SLEEP 1` requests (an ECHO would go to the cheap lane, which
the long SLEEPs do not fill) from several connections at staggered moments
(optionally while another load runs) and measures, per request, the time
from sending it to receiving ERR server busy.  Prints p50/p99/max of
(elapsed - queue_timeout_ms) in milliseconds.

usage: busy_timing.py PORT WORKERS QUEUE TIMEOUT_MS [SAMPLES]
"""
import selectors
import socket
import sys
import time

port, workers, queue, timeout_ms = (int(a) for a in sys.argv[1:5])
samples = int(sys.argv[5]) if len(sys.argv) > 5 else 200

hold = []
for _ in range(workers + queue):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"SLEEP 60000\n")
    hold.append(s)
time.sleep(0.5)

sel = selectors.DefaultSelector()
sent = {}
errors = []
deltas = []
conns = [socket.create_connection(("127.0.0.1", port)) for _ in range(20)]
for c in conns:
    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    c.setblocking(False)
    sel.register(c, selectors.EVENT_READ)
pending = 0
nsent = 0
last = 0.0
end = time.monotonic() + samples * (0.02 + timeout_ms / 1000 / len(conns)) + timeout_ms / 1000 + 10
while (nsent < samples or pending) and time.monotonic() < end:
    # One probe every 20 ms, on a connection that has none outstanding.
    free = [c for c in conns if c not in sent]
    if nsent < samples and free and time.monotonic() - last >= 0.02:
        c = free[0]
        last = sent[c] = time.monotonic()
        c.sendall(b"SLEEP 1\n")
        pending += 1
        nsent += 1
    for key, _ in sel.select(timeout=0.005):
        data = key.fileobj.recv(4096)
        t = time.monotonic()
        for line in data.decode().splitlines():
            if line == "ERR server busy":
                deltas.append((t - sent.pop(key.fileobj)) * 1000 - timeout_ms)
            else:
                errors.append(line)
                sent.pop(key.fileobj, None)
            pending -= 1
for s in hold:
    s.close()
if errors:
    print("unexpected replies: %r" % errors[:5])
deltas.sort()
if not deltas:
    print("no busy replies")
    sys.exit(1)
pick = lambda q: deltas[min(len(deltas) - 1, int(q * len(deltas)))]
print("busy_samples=%d late_ms_p50=%.1f late_ms_p99=%.1f late_ms_max=%.1f early_ms_max=%.1f"
      % (len(deltas), pick(0.5), pick(0.99), deltas[-1], -min(0.0, deltas[0])))
