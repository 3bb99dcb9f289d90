#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""A tiny tpserver client for the end-to-end test; runs inside the container.

  tpc.py req [--port P] [--timeout S] LINE...
      One connection; send each LINE, read one reply per line, print the
      replies.  Exit 0 when every reply arrived, 1 otherwise.
  tpc.py loop [--port P] --seconds S
      Open a new connection after another for S seconds, each sending
      "ECHO <n>" and expecting "OK <n>".  Print "attempts=A failures=F" and
      the first few failures.  Exit 0 when nothing failed.
"""
import argparse
import socket
import sys
import time


def request(port, lines, timeout):
    """Send lines on one connection; return the list of reply lines."""
    deadline = time.monotonic() + timeout
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall("".join(line + "\n" for line in lines).encode())
        buf = b""
        replies = []
        while len(replies) < len(lines):
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no reply within %.1f s" % timeout)
            s.settimeout(left)
            chunk = s.recv(65536)
            if not chunk:
                raise ConnectionError("closed by server after %d replies" % len(replies))
            buf += chunk
            while b"\n" in buf and len(replies) < len(lines):
                line, buf = buf.split(b"\n", 1)
                replies.append(line.decode(errors="replace").rstrip("\r"))
        return replies


def cmd_req(args):
    start = time.monotonic()
    try:
        replies = request(args.port, args.lines, args.timeout)
    except (OSError, ValueError) as e:
        print("error: %s after %.3f s" % (e, time.monotonic() - start))
        return 1
    for r in replies:
        print(r)
    print("elapsed %.3f" % (time.monotonic() - start), flush=True)
    return 0


def cmd_loop(args):
    end = time.monotonic() + args.seconds
    attempts = failures = 0
    errors = []
    while time.monotonic() < end:
        attempts += 1
        try:
            got = request(args.port, ["ECHO %d" % attempts], 10.0)
            if got != ["OK %d" % attempts]:
                raise ValueError("reply %r" % got)
        except (OSError, ValueError) as e:
            failures += 1
            if len(errors) < 5:
                errors.append("attempt %d: %s" % (attempts, e))
        time.sleep(args.pause)
    print("attempts=%d failures=%d" % (attempts, failures))
    for e in errors:
        print(e)
    return 0 if failures == 0 else 1


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("req")
    r.add_argument("--port", type=int, default=9000)
    r.add_argument("--timeout", type=float, default=15.0)
    r.add_argument("lines", nargs="+")
    lp = sub.add_parser("loop")
    lp.add_argument("--port", type=int, default=9000)
    lp.add_argument("--seconds", type=float, required=True)
    lp.add_argument("--pause", type=float, default=0.01)
    args = p.parse_args()
    sys.stdout.reconfigure(line_buffering=True)
    return cmd_req(args) if args.cmd == "req" else cmd_loop(args)


if __name__ == "__main__":
    sys.exit(main())
