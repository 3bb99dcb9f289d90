# SPDX-License-Identifier: MIT
"""What the tpclient tests share: its report formats (SUMMARY, GROUP,
JSON keys, the progress line, .hgrm files), running it, listeners that
drop every SYN, and a scripted server for what a correct server never
does."""
import contextlib
import os
import re
import socket
import subprocess
import threading
import time

from tplib import TPCLIENT

SUMMARY_RE = re.compile(
    r"^SUMMARY sent=(\d+) recv=(\d+) ok=(\d+) err=(\d+) elapsed=(\d+\.\d{3}) ok_rps=(\d+\.\d)$", re.M)
FIELDS_RE = re.compile(r"(\w[\w.]*)=([^\s]+)")

JSON_KEYS = {
    "tpclient", "host", "port", "loop", "clients", "threads", "max_inflight", "mix", "rate",
    "requests_per_client", "duration_s", "sources", "sleep_ms", "echo_bytes", "recv_timeout_s", "seed",
    "sent", "recv", "ok", "err", "busy", "other_err", "mismatch", "timeouts", "lost",
    "disconnects", "connect_failed", "reconnects", "reconnect", "late", "elapsed_s", "ok_rps", "interrupted", "latency_ms",
    "ops", "exit_status", "retries", "gave_up", "retry_busy", "warmup_s",
}
OP_KEYS = {"sent", "recv", "ok", "err", "busy", "other_err", "mismatch", "timeouts", "lost", "late", "ok_rps",
           "latency_ms", "retries", "gave_up"}
LATENCY_KEYS = {"count", "min", "mean", "p50", "p90", "p99", "p99_9", "max"}
PROGRESS_RE = re.compile(rb"\r\[(\d+\.\d) s( warmup)?\] ok (\d+)/s  busy (\d+)/s \((\d+)%\)  errors (\d+)/s  "
                         rb"p99 (\d+\.\d{3}) ms  replies (\d+)\x1b\[K")
HGRM_HEAD = "       Value   Percentile   TotalCount 1/(1-Percentile)"


def parse_hgrm(text):
    """An .hgrm file as HdrHistogram's plotter reads it: (value, percentile, total count) rows and
    the footer's numbers; asserts its shape on the way."""
    lines = text.splitlines()
    assert lines[0] == HGRM_HEAD and lines[1] == "", lines[:2]
    rows, footer = [], {}
    for line in lines[2:]:
        if line.startswith("#["):
            footer.update((k.strip(), float(v)) for k, v in
                          (kv.split("=") for kv in line[2:-1].split(",")))
            continue
        value, pct, count, inv = line.split()
        rows.append((float(value), float(pct), int(count)))
        assert inv == "inf" if float(pct) == 1.0 else abs(float(inv) - 1 / (1 - float(pct))) < 0.01 + float(inv) ** 2 * 1e-6, line
    return rows, footer


def run_client(port, *args, timeout=120):
    cmd = [TPCLIENT, "--host", "127.0.0.1", "--port", str(port)] + [str(a) for a in args]
    return subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout)


def fill_accept_queue(test, port):
    """Fill the accept queue of a listener on port made with backlog 0: it
    then drops every SYN."""
    for _ in range(2):
        f = socket.socket()
        test.addCleanup(f.close)
        f.setblocking(False)
        f.connect_ex(("127.0.0.1", port))
    time.sleep(0.2)


@contextlib.contextmanager
def full_accept_queue(test):
    """The port of a listener whose accept queue is full: it drops every SYN."""
    with socket.create_server(("127.0.0.1", 0), backlog=0) as lst:
        port = lst.getsockname()[1]
        fill_accept_queue(test, port)
        yield port


def read_pty(master):
    """Everything written to a pseudo-terminal until its other side closed; closes master."""
    err = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the terminal's other side is closed
            break
        if not chunk:
            break
        err += chunk
    os.close(master)
    return err


def parse_groups(out):
    """The GROUP lines of a text report, by name."""
    groups = {}
    for line in out.splitlines():
        if line.startswith("GROUP "):
            fields = dict(FIELDS_RE.findall(line[len("GROUP "):]))
            groups[fields["name"]] = fields
    return groups


def parse_text(out):
    """The SUMMARY numbers plus every KEY=VALUE of the lines after it, keyed by line tag."""
    m = SUMMARY_RE.search(out)
    if not m:
        raise AssertionError("no SUMMARY line in:\n" + out)
    report = {"SUMMARY": dict(zip(("sent", "recv", "ok", "err"), map(int, m.groups()[:4])))}
    report["SUMMARY"]["elapsed"] = float(m.group(5))
    report["SUMMARY"]["ok_rps"] = float(m.group(6))
    for line in out.splitlines()[1:]:
        tag, _, rest = line.partition(" ")
        report[tag] = dict(FIELDS_RE.findall(rest))
    return report


class ScriptedServer:
    """A one-thread-per-connection TCP server that records request lines and
    answers each with reply(line) (None: stay silent)."""

    def __init__(self, reply, host="127.0.0.1", close_after=None, accepts=None):
        self.reply = reply
        self.close_after = close_after  # replies per connection, then close it
        self.accepts = accepts  # connections to take, then stop listening (later ones are refused)
        self.lines = []
        self.peers = []  # the client address of each accepted connection
        self.lock = threading.Lock()
        self.sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, 0))
        self.sock.listen(128)
        self.port = self.sock.getsockname()[1]
        self.conns = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, peer = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.peers.append(peer[0])
            self.conns.append(c)
            if self.accepts is not None and len(self.conns) >= self.accepts:
                # Before this connection is served: whatever the client does
                # after its first reply, a new connection finds nothing listening.
                self.sock.shutdown(socket.SHUT_RDWR)
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c):
        buf = b""
        replies = 0
        while self.close_after is None or replies < self.close_after:
            try:
                data = c.recv(65536)
            except OSError:
                return
            if not data:
                return
            buf += data
            out = []
            while b"\n" in buf and (self.close_after is None or replies + len(out) < self.close_after):
                line, buf = buf.split(b"\n", 1)
                line = line.decode("latin-1")
                with self.lock:
                    self.lines.append(line)
                r = self.reply(line)
                if r is not None:
                    out.append(r + "\n")
            if out:
                try:
                    c.sendall("".join(out).encode("latin-1"))
                except OSError:
                    return
                replies += len(out)
        c.close()

    def close(self):
        self.sock.close()
        for c in self.conns:
            c.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def correct_reply(line):
    op, _, arg = line.partition(" ")
    return "OK " + arg
