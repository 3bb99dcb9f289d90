# SPDX-License-Identifier: MIT
"""What the adversarial tests share: a sampler of the server's resident
memory and its peak, resets, and reading lines with a deadline."""
import socket
import struct
import threading
import time


class RssSampler:
    """Samples a server's RSS in the background; .peak is the largest seen (KiB)."""

    def __init__(self, srv, every=0.01):
        self.srv, self.every, self.peak = srv, every, srv.rss_kib()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        while not self.stop.is_set():
            try:
                self.peak = max(self.peak, self.srv.rss_kib())
            except OSError:
                return
            time.sleep(self.every)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()
        return False


def reset(sock):
    """Close with RST instead of FIN."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def read_lines_until(sock, n, timeout):
    """Read up to n LF-terminated lines; stops early at EOF. Returns (lines, eof)."""
    buf, lines = b"", []
    sock.settimeout(timeout)
    while len(lines) < n:
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            break
        if not chunk:
            return lines, True
        buf += chunk
        *done, buf = buf.split(b"\n")
        lines += done
    return lines, False


def peak_rss_kib(pid):
    """The largest resident set of process pid so far (VmHWM), in KiB."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0
