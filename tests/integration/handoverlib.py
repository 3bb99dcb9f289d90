# SPDX-License-Identifier: MIT
"""What the hand-over tests share: a fake systemd that stands in for PID 1
(it owns the listening socket, reads the notification socket with the fds
of FDSTORE=1, honouring FDNAME=, FDSTOREREMOVE=1 and BARRIER=1 as systemd
252 does, and starts each instance with LISTEN_FDS / LISTEN_FDNAMES /
LISTEN_PID naming the listener and everything in its store), and a test
case whose restart SIGTERMs one instance and starts the next on the same
store, as `systemctl restart` does."""
import array
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

import metricslib
from tplib import TPSERVER, LineReader, request, wait_until

# Puts the fds named in TP_TEST_FDS at 3, 4, ... in order, sets LISTEN_PID
# to its own pid (the exec keeps it) and execs the daemon.
WRAPPER = r"""
import fcntl, os, sys
srcs = [int(x) for x in os.environ.pop("TP_TEST_FDS").split(",")]
n = len(srcs)
where = {fd: i for i, fd in enumerate(srcs)}
for i in range(n):
    t, s = 3 + i, srcs[i]
    if s == t:
        continue
    j = where.pop(t, None)
    if j is not None and j > i:
        moved = fcntl.fcntl(t, fcntl.F_DUPFD, 3 + n)
        srcs[j] = moved
        where[moved] = j
    os.dup2(s, t)
    os.close(s)
    where.pop(s, None)
os.environ["LISTEN_PID"] = str(os.getpid())
os.execv(sys.argv[1], sys.argv[1:])
"""

SCM_MAX_FD = 253

# Run as an unprivileged user with RLIMIT_NOFILE argv[1]: holds fds in flight in a
# socket pair until killed, so many that the user's fds in flight (whatever its
# other processes hold too) are argv[2] short of what the limit lets a send add
# to; prints how many it holds.  A send passes while they are at most the limit.
HOLD_IN_FLIGHT = r"""
import array, errno, os, resource, socket, sys, time
limit, short = int(sys.argv[1]), int(sys.argv[2])
resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))
a, b = socket.socketpair()
null = os.open("/dev/null", os.O_RDONLY)
held = 0
while True:  # until the user's fds in flight are limit + 1
    try:
        a.sendmsg([b"x"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [null]))])
    except OSError as e:
        if e.errno != errno.ETOOMANYREFS:
            raise
        break
    held += 1
for _ in range(short + 1):  # each one taken back is one fewer in flight
    _, anc, _, _ = b.recvmsg(1, socket.CMSG_SPACE(4))
    for _, _, data in anc:
        os.close(int.from_bytes(data[:4], sys.byteorder))
    held -= 1
print("in flight", held, flush=True)
time.sleep(60)
"""


def limits(limit_as, nofile):
    if limit_as:
        resource.setrlimit(resource.RLIMIT_AS, (limit_as, limit_as))
    if nofile:
        resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))


class FakeSystemd:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="tp-handover-")
        self.path = os.path.join(self.dir, "notify")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        self.listener = socket.create_server(("127.0.0.1", 0), backlog=4096)
        self.port = self.listener.getsockname()[1]
        self.sockets = [("tpserver.socket", self.listener)]  # what a socket unit passes
        self.lock = threading.Lock()
        self.store = []  # (name, fd), in the order stored
        self.messages = []
        self.proc = None  # the instance started last
        self.procs = []  # every instance started: close() kills those still running
        self.logs = []
        self.closing = False
        self.carrier_delay = 0  # seconds systemd takes to get to a carrier's message (FDPOLL=0)
        self.thread = threading.Thread(target=self._receive, daemon=True)
        self.thread.start()

    def _receive(self):
        size = socket.CMSG_SPACE(SCM_MAX_FD * 4)
        while not self.closing:
            try:
                if self.carrier_delay and b"FDPOLL=0" in self.sock.recv(65536, socket.MSG_PEEK):
                    time.sleep(self.carrier_delay)
                data, anc, _, _ = self.sock.recvmsg(65536, size)
            except OSError:
                return
            fds = array.array("i")
            for level, kind, payload in anc:
                if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                    fds.frombytes(payload[:len(payload) - len(payload) % fds.itemsize])
            fields = dict(l.split("=", 1) for l in data.decode(errors="replace").splitlines() if "=" in l)
            with self.lock:
                self.messages.append(fields)
                if fields.get("FDSTORE") == "1":
                    self.store.extend((fields.get("FDNAME", "stored"), fd) for fd in fds)
                    fds = []
                elif fields.get("FDSTOREREMOVE") == "1":
                    for name, fd in [e for e in self.store if e[0] == fields.get("FDNAME")]:
                        os.close(fd)
                        self.store.remove((name, fd))
            for fd in fds:  # BARRIER=1's fd: closing it is the answer
                os.close(fd)

    def metrics(self):
        """Pass the daemon a metrics socket, as tpserver-metrics.socket does
        (start it with --metrics); returns a function that scrapes it, parsed."""
        sock = socket.create_server(("127.0.0.1", 0))
        self.sockets.append(("metrics", sock))

        def scrape():
            status, _, body = metricslib.http(sock.getsockname()[1], b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            assert status == 200, status
            return metricslib.parse(body.decode())
        return scrape

    def names(self):
        with self.lock:
            return [name for name, _ in self.store]

    def unpack_carriers(self):
        """Take the connections out of each stored carrier (a unix socket
        holding them in flight) and store them one by one, under its name,
        as an instance does when the carrier cannot take them all."""
        with self.lock:
            store = []
            for name, fd in self.store:
                copy = os.dup(fd)
                try:
                    s = socket.socket(fileno=copy)
                except OSError:  # the state: a memfd
                    os.close(copy)
                    store.append((name, fd))
                    continue
                if s.family != socket.AF_UNIX:
                    s.close()
                    store.append((name, fd))
                    continue
                s.setblocking(False)
                while True:
                    try:
                        data, anc, _, _ = s.recvmsg(1, socket.CMSG_SPACE(SCM_MAX_FD * 4))
                    except BlockingIOError:
                        break
                    if not data:  # the sender's end is closed: all taken
                        break
                    fds = array.array("i")
                    for level, kind, payload in anc:
                        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                            fds.frombytes(payload[:len(payload) - len(payload) % fds.itemsize])
                    store.extend((name, c) for c in fds)
                s.close()
                os.close(fd)
            self.store = store

    def start(self, *args, ready=True, limit_as=None, nofile=None, uid=None):
        """Start an instance the way systemd does: the listener, then the store;
        limit_as: its address space (RLIMIT_AS), in bytes; nofile: its RLIMIT_NOFILE;
        uid: the user it runs as (root only), a copy of the binary it can reach."""
        with self.lock:
            entries = [(name, s.fileno()) for name, s in self.sockets] + list(self.store)
        fds = [fd for _, fd in entries]
        env = dict(os.environ, NOTIFY_SOCKET=self.path, LISTEN_FDS=str(len(fds)),
                   LISTEN_FDNAMES=":".join(n for n, _ in entries), TP_TEST_FDS=",".join(map(str, fds)))
        env.pop("JOURNAL_STREAM", None)
        run = [sys.executable, "-c", WRAPPER, TPSERVER]
        if uid is not None:
            binary = os.path.join(self.dir, "tpserver")
            shutil.copy(TPSERVER, binary)
            os.chmod(self.dir, 0o755)
            os.chmod(self.path, 0o777)
            run = ["setpriv", "--reuid", str(uid), "--regid", str(uid), "--clear-groups",
                   "/usr/bin/python3", "-c", WRAPPER, binary]
        with tempfile.NamedTemporaryFile(prefix="tpserver-", suffix=".log", delete=False) as log:
            self.proc = subprocess.Popen(
                run + ["--config", "/dev/null", "--keep-connections", "--log-level", "debug", *args],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env, pass_fds=fds,
                preexec_fn=lambda: limits(limit_as, nofile))
        self.procs.append(self.proc)
        self.logs.append(log.name)
        if ready:
            self.wait_log(r"ready:")
        return self.proc

    def log(self):
        with open(self.logs[-1], errors="replace") as f:
            return f.read()

    def wait_log(self, pattern, timeout=20.0):
        ok = wait_until(lambda: re.search(pattern, self.log()) or self.proc.poll() is not None, timeout)
        m = re.search(pattern, self.log())
        if not ok or not m:
            raise AssertionError("no %r in the log (exit %s):\n%s" % (pattern, self.proc.poll(), self.log()[-4000:]))
        return m

    def stop(self, timeout=30.0):
        """SIGTERM the running instance, wait for its exit, return its status."""
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def close(self):
        self.closing = True
        # Not only the last: a test that failed may have started another beside it.
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        self.sock.close()
        for _, s in self.sockets:
            s.close()
        with self.lock:
            for _, fd in self.store:
                os.close(fd)
            self.store = []
        for path in self.logs:
            os.unlink(path)


class HandoverCase(unittest.TestCase):
    """A test with a fake systemd of its own (self.sd), its clients and its
    restarts; every instance it started is killed when it ends, failed or
    not."""

    def setUp(self):
        self.sd = FakeSystemd()
        self.addCleanup(self.sd.close)

    def connect(self):
        """A client of the instances, closed when the test ends."""
        s = socket.create_connection(("127.0.0.1", self.sd.port), timeout=10)
        self.addCleanup(s.close)
        return s, LineReader(s)

    def restart(self, *args):
        self.assertEqual(self.sd.stop(), 0, self.sd.log())
        handed = self.sd.log()
        self.sd.start(*args)
        return handed

    @staticmethod
    def _alive(s, r):
        try:
            return request(s, r, "ECHO alive", timeout=5) == "OK alive"
        except (OSError, AssertionError, EOFError):
            return False
