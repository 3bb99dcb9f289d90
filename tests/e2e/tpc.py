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
  tpc.py killload [--port P] [--clients N] [--kills K] [--every S] [--sleep-ms MS]
      N clients each open a new connection after another and ask
      "SLEEP MS+13*client" and "ECHO <client>-<n>" on it (so that requests
      are in flight most of the time); meanwhile SIGKILL the MainPID of tpserver.service
      K times, S seconds apart, each time once systemd has restarted it.
      Print per kill the requests in flight and how many of them were lost.
      Exit 0 when every connection attempt was accepted, every reply was
      right, and every request that failed was in flight at a kill and ended
      cleanly (EOF or reset, never a wrong reply or a timeout).
  tpc.py pipeline [--port P] [--clients N] [--batch B] [--sleep-ms MS]
                  [--size BYTES] --stop-file PATH [--seconds S]
      N connections, each writing batches of "SLEEP MS" followed by B-1
      "ECHO <unique text of BYTES bytes>" in one write, then reading every
      reply, until PATH exists (or S seconds passed).  A reply is right when
      it is the one for its request, in order, or "ERR server busy".  A
      connection that gets no byte for --reply-timeout seconds loses the
      rest of its batch and is replaced.  Print the counts; exit 0 when no
      reply was lost, wrong or out of order.
"""
import argparse
import os
import signal
import socket
import subprocess
import sys
import threading
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


def unit_prop(unit, prop):
    return subprocess.run(["systemctl", "show", "-P", prop, unit], capture_output=True,
                          text=True, timeout=10).stdout.strip()


def wait_new_mainpid(unit, old, timeout):
    """Wait until UNIT is active with a MainPID other than OLD; return it or 0."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        pid = int(unit_prop(unit, "MainPID") or 0)
        if pid and pid != old and unit_prop(unit, "ActiveState") == "active":
            return pid
        time.sleep(0.05)
    return 0


def ask_once(port, lines, expect):
    """Send LINES on a new connection and read a reply to each: (outcome,
    detail, replies received).  outcome is ok, connect (the attempt failed), eof or reset
    (closed before every reply came, the replies before were right: clean),
    or wrong, partial (a line cut short), timeout, error (not clean)."""
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=10.0)
    except OSError as e:
        return "connect", str(e), 0
    got = []
    with s:
        try:
            s.settimeout(15.0)
            s.sendall("".join(line + "\n" for line in lines).encode())
            buf = b""
            while len(got) < len(expect):
                chunk = s.recv(4096)
                if not chunk:
                    if buf:
                        return "partial", repr(buf), len(got)
                    return "eof", "after %d of %d replies" % (len(got), len(expect)), len(got)
                buf += chunk
                while b"\n" in buf and len(got) < len(expect):
                    line, buf = buf.split(b"\n", 1)
                    reply = line.decode(errors="replace").rstrip("\r")
                    if reply != expect[len(got)]:
                        return "wrong", "%r, expected %r" % (reply, expect[len(got)]), len(got)
                    got.append(reply)
        except socket.timeout:
            return "timeout", "no reply within 15 s", len(got)
        except (ConnectionResetError, BrokenPipeError) as e:
            return "reset", "%s after %d of %d replies" % (e, len(got), len(expect)), len(got)
        except OSError as e:
            return "error", str(e), len(got)
    return "ok", "", len(got)


def cmd_killload(args):
    unit = "tpserver.service"
    stop = threading.Event()
    lock = threading.Lock()
    done = []  # (start, end, outcome, detail, requests lost)

    def client(cid):
        n = 0
        ms = args.sleep_ms + 13 * cid  # out of step with each other
        while not stop.is_set():
            n += 1
            t0 = time.monotonic()
            text = "%d-%d" % (cid, n)
            outcome, detail, got = ask_once(args.port, ["SLEEP %d" % ms, "ECHO " + text],
                                            ["OK %d" % ms, "OK " + text])
            with lock:
                done.append((t0, time.monotonic(), outcome, detail, 2 - got))
            time.sleep(args.pause)

    pid = wait_new_mainpid(unit, 0, 10)
    if not pid:
        print("%s is not active" % unit)
        return 1
    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(args.clients)]
    for t in threads:
        t.start()
    kills = []  # (pid, before, after)
    problems = []
    start = time.monotonic()
    for k in range(args.kills):
        time.sleep(max(0.0, start + args.first + k * args.every - time.monotonic()))
        if k:
            pid = wait_new_mainpid(unit, kills[-1][0], 10)
            if not pid:
                problems.append("not restarted after kill %d" % k)
                break
        t0 = time.monotonic()
        os.kill(pid, signal.SIGKILL)
        kills.append((pid, t0, time.monotonic()))
    final = wait_new_mainpid(unit, kills[-1][0] if kills else 0, 10)
    if not final:
        problems.append("not restarted after the last kill")
    time.sleep(1.0)
    stop.set()
    for t in threads:
        t.join(30)

    counts = {}
    for _, _, outcome, _, _ in done:
        counts[outcome] = counts.get(outcome, 0) + 1
    failed = [0] * len(kills)  # connections
    lost = [0] * len(kills)  # requests
    inflight = [0] * len(kills)
    for t0, t1, outcome, detail, nlost in done:
        hit = [i for i, (_, k0, k1) in enumerate(kills) if t0 <= k1 and t1 >= k0]
        for i in hit:
            inflight[i] += 1
        if outcome == "ok":
            continue
        if outcome in ("eof", "reset") and hit:
            failed[hit[0]] += 1
            lost[hit[0]] += nlost
        elif len(problems) < 10:
            problems.append("%s at +%.3f s (%.3f s long)%s: %s" % (
                outcome, t0 - start, t1 - t0, "" if hit else ", not in flight at a kill", detail))
    for i, (kpid, k0, _) in enumerate(kills):
        print("kill %d at +%.1f s (pid %d): %d connections in flight, %d of them closed "
              "cleanly before every reply, %d requests lost"
              % (i + 1, k0 - start, kpid, inflight[i], failed[i], lost[i]))
    print("connections=%d %s kills=%d lost_requests=%d" % (
        len(done), " ".join("%s=%d" % kv for kv in sorted(counts.items())), len(kills), sum(lost)))
    for p in problems:
        print("problem: " + p)
    ok = not problems and len(kills) == args.kills and counts.get("ok", 0) > 0
    return 0 if ok else 1


def pipeline_client(cid, args, stop, totals, lock, problems):
    seq = 0
    sock = None
    mine = {"batches": 0, "requests": 0, "ok": 0, "busy": 0, "lost": 0, "wrong": 0, "reconnects": 0}
    while not stop():
        if sock is None:
            try:
                sock = socket.create_connection(("127.0.0.1", args.port), timeout=10.0)
            except OSError as e:
                with lock:
                    problems.append("client %d: connect: %s" % (cid, e))
                time.sleep(0.5)
                continue
        lines = ["SLEEP %d" % args.sleep_ms]
        expect = ["OK %d" % args.sleep_ms]
        for _ in range(args.batch - 1):
            seq += 1
            text = ("%d-%d-" % (cid, seq)).ljust(args.size, "x")
            lines.append("ECHO " + text)
            expect.append("OK " + text)
        mine["batches"] += 1
        mine["requests"] += len(lines)
        got = 0
        buf = b""
        try:
            sock.sendall("".join(line + "\n" for line in lines).encode())
            sock.settimeout(args.reply_timeout)
            while got < len(expect):
                chunk = sock.recv(65536)
                if not chunk:
                    raise ConnectionError("closed by the server")
                buf += chunk
                while b"\n" in buf and got < len(expect):
                    line, buf = buf.split(b"\n", 1)
                    reply = line.decode(errors="replace")
                    if reply == expect[got]:
                        mine["ok"] += 1
                    elif reply == "ERR server busy":
                        mine["busy"] += 1
                    else:
                        mine["wrong"] += 1
                        with lock:
                            if len(problems) < 10:
                                problems.append("client %d: reply %d of a batch: %r, expected %r"
                                                % (cid, got, reply[:80], expect[got][:80]))
                    got += 1
        except (OSError, ConnectionError) as e:
            mine["lost"] += len(expect) - got
            mine["reconnects"] += 1
            with lock:
                if len(problems) < 10:
                    problems.append("client %d: %d of %d replies of a batch missing after %s: %s"
                                    % (cid, len(expect) - got, len(expect),
                                       "%.1f s without a byte" % args.reply_timeout
                                       if isinstance(e, socket.timeout) else "an error", e))
            sock.close()
            sock = None
    if sock is not None:
        sock.close()
    with lock:
        for k, v in mine.items():
            totals[k] = totals.get(k, 0) + v


def cmd_pipeline(args):
    end = time.monotonic() + args.seconds
    lock = threading.Lock()
    totals = {}
    problems = []

    def stop():
        return os.path.exists(args.stop_file) or time.monotonic() >= end

    threads = [threading.Thread(target=pipeline_client, args=(i, args, stop, totals, lock, problems))
               for i in range(args.clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(" ".join("%s=%d" % (k, totals.get(k, 0)) for k in
                   ("batches", "requests", "ok", "busy", "lost", "wrong", "reconnects")))
    for p in problems:
        print("problem: " + p)
    bad = totals.get("lost", 0) + totals.get("wrong", 0) + totals.get("reconnects", 0)
    return 0 if bad == 0 and not problems and totals.get("ok", 0) > 0 else 1


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
    kl = sub.add_parser("killload")
    kl.add_argument("--port", type=int, default=9000)
    kl.add_argument("--clients", type=int, default=4)
    kl.add_argument("--kills", type=int, default=5)
    kl.add_argument("--every", type=float, default=3.0)
    kl.add_argument("--first", type=float, default=1.0)
    kl.add_argument("--pause", type=float, default=0.002)
    kl.add_argument("--sleep-ms", type=int, default=100)
    pl = sub.add_parser("pipeline")
    pl.add_argument("--port", type=int, default=9000)
    pl.add_argument("--clients", type=int, default=4)
    pl.add_argument("--batch", type=int, default=200)
    pl.add_argument("--sleep-ms", type=int, default=100)
    pl.add_argument("--size", type=int, default=64)
    pl.add_argument("--reply-timeout", type=float, default=5.0)
    pl.add_argument("--stop-file", required=True)
    pl.add_argument("--seconds", type=float, default=120.0)
    args = p.parse_args()
    sys.stdout.reconfigure(line_buffering=True)
    cmds = {"req": cmd_req, "loop": cmd_loop, "killload": cmd_killload, "pipeline": cmd_pipeline}
    return cmds[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
