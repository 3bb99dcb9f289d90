#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Clients that hold one connection each across restarts (end-to-end test;
runs inside the container, one thread, non-blocking sockets).

  keepconn.py [--port P] [--clients N] [--every-ms MS] --stop-file PATH [--seconds S]
      N connections, each sending "ECHO <client>-<n>" every MS ms on the one
      connection it opened, until PATH exists (or S seconds passed); then
      waits for the replies still due.  A reply is right when it is the one
      for the oldest request unanswered on its connection, or "ERR server
      busy".  Prints the counts and the longest time a client waited for a
      reply; exit 0 when no connection ended (EOF or error), and every reply
      came, right and in order.
  keepconn.py --expect-eof [--port P] [--clients N] --seconds S
      N connections, one ECHO each, then "ready" on stdout; waits up to S
      seconds for each to be closed by the server.  Prints "eofs=E of N";
      exit 0 when all were closed.
"""
import argparse
import os
import selectors
import socket
import sys
import time


def connect_all(port, n):
    conns = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.setblocking(False)
        conns.append(s)
    return conns


def expect_eof(args):
    conns = connect_all(args.port, args.clients)
    for i, s in enumerate(conns):
        s.setblocking(True)
        s.sendall(b"ECHO e%d\n" % i)
        if s.recv(64) != b"OK e%d\n" % i:
            print("wrong first reply on %d" % i)
            return 1
        s.setblocking(False)
    print("ready", flush=True)
    sel = selectors.DefaultSelector()
    for s in conns:
        sel.register(s, selectors.EVENT_READ)
    eofs, deadline = 0, time.monotonic() + args.seconds
    while eofs < len(conns) and time.monotonic() < deadline:
        for key, _ in sel.select(0.5):
            try:
                data = key.fileobj.recv(4096)
            except OSError:
                data = b""
            if not data:
                eofs += 1
                sel.unregister(key.fileobj)
    print("eofs=%d of %d" % (eofs, len(conns)), flush=True)
    return 0 if eofs == len(conns) else 1


class Client:
    def __init__(self, cid, sock, now):
        self.cid, self.sock = cid, sock
        self.seq = 0
        self.due = []  # requests unanswered, oldest first
        self.head = 0
        self.buf = b""
        self.out = b""
        self.next_send = now
        self.last_reply = now
        self.max_pause = 0.0
        self.dead = None


def run(args):
    conns = connect_all(args.port, args.clients)
    sel = selectors.DefaultSelector()
    t0 = time.monotonic()
    clients = [Client(i, s, t0) for i, s in enumerate(conns)]
    for c in clients:
        sel.register(c.sock, selectors.EVENT_READ, c)
    counts = dict(sent=0, replies=0, busy=0, wrong=0)
    first_wrong = []
    every = args.every_ms / 1000.0
    stopping_at = None
    print("connected %d" % len(clients), flush=True)
    while True:
        now = time.monotonic()
        if stopping_at is None and (os.path.exists(args.stop_file) or now - t0 > args.seconds):
            stopping_at = now
        live = [c for c in clients if not c.dead]
        if stopping_at is not None and (all(c.head == len(c.due) for c in live) or now - stopping_at > 15):
            break
        for c in live:
            if stopping_at is None and now >= c.next_send:
                line = b"ECHO %d-%d\n" % (c.cid, c.seq)
                c.due.append(b"OK %d-%d" % (c.cid, c.seq))
                c.seq += 1
                c.out += line
                c.next_send += every
                counts["sent"] += 1
            if c.out:
                try:
                    n = c.sock.send(c.out)
                    c.out = c.out[n:]
                except BlockingIOError:
                    pass
                except OSError as e:
                    c.dead = "send: %s" % e
        for key, _ in sel.select(0.002):
            c = key.data
            try:
                data = c.sock.recv(65536)
            except BlockingIOError:
                continue
            except OSError as e:
                data, c.dead = b"", "recv: %s" % e
            if not data:
                c.dead = c.dead or "EOF"
                sel.unregister(c.sock)
                continue
            c.buf += data
            t = time.monotonic()
            while b"\n" in c.buf:
                line, c.buf = c.buf.split(b"\n", 1)
                want = c.due[c.head] if c.head < len(c.due) else None
                c.head += 1
                counts["replies"] += 1
                if line == b"ERR server busy":
                    counts["busy"] += 1
                elif line != want:
                    counts["wrong"] += 1
                    if len(first_wrong) < 5:
                        first_wrong.append("client %d: got %r, want %r" % (c.cid, line, want))
                c.max_pause = max(c.max_pause, t - c.last_reply)
                c.last_reply = t
    dead = [c for c in clients if c.dead]
    missing = sum(len(c.due) - c.head for c in clients if not c.dead)
    longest = max(clients, key=lambda c: c.max_pause)
    print("clients=%d sent=%d replies=%d busy=%d wrong=%d missing=%d ended=%d"
          % (len(clients), counts["sent"], counts["replies"], counts["busy"], counts["wrong"], missing,
             len(dead)))
    print("longest pause %.0f ms (client %d)" % (longest.max_pause * 1000, longest.cid))
    for c in dead[:5]:
        print("client %d ended: %s after %d replies" % (c.cid, c.dead, c.head))
    for w in first_wrong:
        print(w)
    return 0 if not dead and counts["wrong"] == 0 and missing == 0 and counts["replies"] > 0 else 1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=9000)
    ap.add_argument("--clients", type=int, default=200)
    ap.add_argument("--every-ms", type=float, default=10)
    ap.add_argument("--stop-file", default="/run/keepconn.stop")
    ap.add_argument("--seconds", type=float, default=120)
    ap.add_argument("--expect-eof", action="store_true")
    args = ap.parse_args()
    return expect_eof(args) if args.expect_eof else run(args)


if __name__ == "__main__":
    sys.exit(main())
