# SPDX-License-Identifier: MIT
"""Keeping connections across a restart, without a booted systemd.

A fake systemd stands in for PID 1: it owns the listening socket, reads the
notification socket (with the fds of FDSTORE=1, honouring FDNAME=,
FDSTOREREMOVE=1 and BARRIER=1 as systemd 252 does), and starts each
instance with LISTEN_FDS / LISTEN_FDNAMES / LISTEN_PID naming the listener
and everything in its store.  Each test SIGTERMs one instance and starts the
next on the same store, as `systemctl restart` does."""
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
import tplib
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
        self.proc = None
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
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.sock.close()
        for _, s in self.sockets:
            s.close()
        with self.lock:
            for _, fd in self.store:
                os.close(fd)
            self.store = []
        for path in self.logs:
            os.unlink(path)


class Handover(unittest.TestCase):
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

    def test_partial_line_and_work_in_flight_cross_over(self):
        self.sd.start()
        a, ra = self.connect()
        b, rb = self.connect()
        quiet, _ = self.connect()
        self.assertEqual(request(a, ra, "ECHO one"), "OK one")
        # One send each, one read by this instance: the first line's reply
        # says the rest (a partial line; a SLEEP and what follows) was read too.
        a.sendall(b"ECHO mark-a\nECHO tw")
        b.sendall(b"ECHO mark-b\nSLEEP 300\nECHO after-sleep\n")
        self.assertEqual(ra.line(), "OK mark-a")
        self.assertEqual(rb.line(), "OK mark-b")
        self.sd.wait_log(r"connection from.*\n(.|\n)*connection from(.|\n)*connection from")
        self.sd.proc.send_signal(signal.SIGTERM)
        # Work already read is answered by the old instance, in order.
        self.assertEqual(rb.line(), "OK 300")
        self.assertEqual(rb.line(), "OK after-sleep")
        self.assertEqual(self.sd.proc.wait(30), 0, self.sd.log())
        old = self.sd.log()
        self.assertIn("handed 3 connections to systemd's fd store as tpc00", old)
        self.assertEqual(sorted(set(self.sd.names())), ["tpc00", "tps00"])
        # Between the instances: bytes wait in the socket.
        a.sendall(b"o\nECHO three\n")
        self.sd.start()
        self.assertEqual(ra.line(), "OK two")
        self.assertEqual(ra.line(), "OK three")
        self.assertEqual(request(b, rb, "ECHO b-again"), "OK b-again")
        self.assertEqual(request(quiet, LineReader(quiet), "ECHO quiet"), "OK quiet")
        self.assertIn("adopted 3 connections", self.sd.log())
        # Adopted fds leave the store: what this instance closes really closes.
        self.assertTrue(wait_until(lambda: self.sd.names() == [], 5), self.sd.names())
        # And the next generation is named apart.
        handed = self.restart()
        self.assertIn("as tpc01", handed)
        self.assertEqual(request(a, ra, "ECHO gen2"), "OK gen2")

    def test_the_connections_travel_in_one_stored_socket(self):
        """However many connections, the store holds two fds: the state and a
        socket the connections are in flight in, stored with FDPOLL=0 (its
        peer closes with the instance: polled, systemd would drop it)."""
        self.sd.start()
        clients = [self.connect() for _ in range(300)]  # more than one message of fds
        for i, (s, r) in enumerate(clients):
            self.assertEqual(request(s, r, "ECHO %d" % i), "OK %d" % i)
        self.assertEqual(self.sd.stop(), 0, self.sd.log())
        self.assertIn("handed 300 connections", self.sd.log())
        self.assertEqual(sorted(self.sd.names()), ["tpc00", "tps00"])
        with self.sd.lock:
            stored = [m for m in self.sd.messages if m.get("FDSTORE") == "1" and m.get("FDNAME") == "tpc00"]
        self.assertEqual([m.get("FDPOLL") for m in stored], ["0"])
        self.sd.start()
        self.assertIn("adopted 300 connections", self.sd.log())
        for i, (s, r) in enumerate(clients):
            self.assertEqual(request(s, r, "ECHO again %d" % i), "OK again %d" % i)
        self.assertTrue(wait_until(lambda: self.sd.names() == [], 5), self.sd.names())

    def test_connections_stored_one_by_one_are_adopted_too(self):
        self.sd.start()
        clients = [self.connect() for _ in range(3)]
        for i, (s, r) in enumerate(clients):
            self.assertEqual(request(s, r, "ECHO %d" % i), "OK %d" % i)
        self.assertEqual(self.sd.stop(), 0, self.sd.log())
        self.sd.unpack_carriers()
        self.assertEqual(sorted(self.sd.names()), ["tpc00", "tpc00", "tpc00", "tps00"])
        self.sd.start()
        self.assertIn("adopted 3 connections", self.sd.log())
        for i, (s, r) in enumerate(clients):
            self.assertEqual(request(s, r, "ECHO again %d" % i), "OK again %d" % i)
        self.assertTrue(wait_until(lambda: self.sd.names() == [], 5), self.sd.names())

    def test_connections_the_kernel_cannot_give_are_told(self):
        """An instance with too few fds for what it is handed gets the rest
        closed by the kernel (MSG_CTRUNC): the log says how many and why."""
        self.sd.start()
        clients = [self.connect() for _ in range(300)]
        for i, (s, r) in enumerate(clients):
            self.assertEqual(request(s, r, "ECHO %d" % i), "OK %d" % i)
        self.assertEqual(self.sd.stop(), 0, self.sd.log())
        self.sd.start(nofile=150)
        log = self.sd.log()
        adopted = int(re.search(r"adopted (\d+) connections", log).group(1))
        lost = re.search(r"(\d+) recorded connections did not arrive: out of file descriptors", log)
        self.assertIsNotNone(lost, log)
        self.assertGreater(adopted, 0, log)
        self.assertEqual(adopted + int(lost.group(1)), 300, log)
        answered = 0
        for i, (s, r) in enumerate(clients):
            try:
                answered += request(s, r, "ECHO again %d" % i) == "OK again %d" % i
            except (OSError, EOFError, AssertionError):
                pass
        self.assertEqual(answered, adopted)

    def test_a_full_fd_table_still_hands_over(self):
        """Out of fds at SIGTERM (clients up to RLIMIT_NOFILE), the hand-over
        still has the few fds of its own it needs: nothing is closed."""
        self.sd.start(nofile=64)
        clients = []
        for i in range(80):
            s, r = self.connect()
            try:
                ok = request(s, r, "ECHO %d" % i, timeout=1) == "OK %d" % i
            except (OSError, EOFError, AssertionError):
                ok = False
            if not ok:
                break
            clients.append((s, r))
        self.assertGreater(len(clients), 10)
        self.assertEqual(self.sd.stop(), 0, self.sd.log())
        self.assertIn("handed %d connections" % len(clients), self.sd.log())
        self.sd.start()
        for i, (s, r) in enumerate(clients):
            self.assertEqual(request(s, r, "ECHO again %d" % i), "OK again %d" % i)

    @unittest.skipUnless(os.geteuid() == 0 and shutil.which("setpriv"),
                         "needs root and setpriv (runs the daemon as nobody)")
    def test_connections_whose_state_is_not_stored_close_now(self):
        # fds in flight count against RLIMIT_NOFILE for an unprivileged user: with
        # the user's fds in flight 24 short of the limit (another process of its
        # holds them) and systemd slow to read, the carrier of 24 connections
        # passes, the state after it cannot.  Without their state the next
        # instance could only close them: they are removed from the store at
        # once, and the clients see EOF now.
        nobody, limit, n = 65534, 64, 24
        holder = subprocess.Popen(
            ["setpriv", "--reuid", str(nobody), "--regid", str(nobody), "--clear-groups", "/usr/bin/python3",
             "-c", HOLD_IN_FLIGHT, str(limit), str(n)], stdout=subprocess.PIPE, text=True)
        self.addCleanup(holder.stdout.close)
        self.addCleanup(holder.wait)
        self.addCleanup(holder.kill)
        self.assertRegex(holder.stdout.readline(), r"^in flight \d+$")
        self.sd.carrier_delay = 3
        self.sd.start(nofile=limit, uid=nobody)
        clients = [self.connect() for _ in range(n)]
        for i, (s, r) in enumerate(clients):
            self.assertEqual(request(s, r, "ECHO %d" % i), "OK %d" % i)
        self.assertEqual(self.sd.stop(), 0, self.sd.log())
        self.assertIn("failed (state not stored): %d closed" % len(clients), self.sd.log())
        removed = lambda: any(m.get("FDSTOREREMOVE") == "1" for m in list(self.sd.messages))
        self.assertTrue(wait_until(removed, 10), self.sd.messages)
        self.assertEqual(self.sd.names(), [])
        s, r = clients[0]
        s.settimeout(5)
        self.assertEqual(s.recv(16), b"")

    def test_another_version_s_stored_fd_is_closed_and_removed(self):
        # After a downgrade the store may hold a kind of fd this version does not
        # know: the start goes on, says so, and drops it from the store.
        r, w = os.pipe()
        self.addCleanup(os.close, w)
        with self.sd.lock:
            self.sd.store.append(("tpz07", r))
        self.sd.start()
        self.sd.wait_log(r"tpz07 in the fd store is of no kind this version knows: closed")
        self.assertTrue(wait_until(lambda: "tpz07" not in self.sd.names(), 10), self.sd.names())
        s, rd = self.connect()
        self.assertEqual(request(s, rd, "ECHO up"), "OK up")

    def test_adopted_connections_counted_apart_from_accepted(self):
        scrape = self.sd.metrics()

        def counts():
            m = scrape()
            return m.get("tpserver_connections_accepted_total"), m.get("tpserver_connections_adopted_total")
        self.sd.start("--metrics")
        clients = [self.connect() for _ in range(3)]
        for i, (s, r) in enumerate(clients):
            self.assertEqual(request(s, r, "ECHO %d" % i), "OK %d" % i)
        self.assertEqual(counts(), (3, 0))
        self.restart("--metrics")
        for i, (s, r) in enumerate(clients):
            self.assertEqual(request(s, r, "ECHO again %d" % i), "OK again %d" % i)
        self.assertEqual(counts(), (0, 3))
        self.connect()
        self.assertTrue(wait_until(lambda: counts() == (1, 3), 5), counts())

    def test_work_cut_at_the_deadline_answered_and_the_connection_kept(self):
        # Work cannot move: a SLEEP still running at shutdown.timeout_s is
        # answered ERR as without keeping, what follows it normally, and the
        # connection then goes over like any other.
        scrape = self.sd.metrics()
        self.sd.start("--shutdown-timeout-s", "1", "--metrics")
        a, ra = self.connect()
        self.assertEqual(request(a, ra, "ECHO a"), "OK a")
        a.sendall(b"SLEEP 5000\nECHO behind\n")
        self.assertTrue(wait_until(lambda: scrape().get("tpserver_workers_busy") == 1, 10))  # on a worker
        self.assertEqual(self.sd.stop(), 0, self.sd.log())
        self.assertEqual(ra.line(), "ERR server shutting down")
        self.assertEqual(ra.line(), "OK behind")
        self.assertIn("handed 1 connections to systemd", self.sd.log())
        self.sd.start("--metrics")
        self.assertEqual(request(a, ra, "ECHO still open"), "OK still open")

    def test_a_client_that_takes_no_replies_holds_the_hand_over_and_the_log_says_so(self):
        # Its replies cannot be written, so it cannot be handed over: every
        # connection waits for the deadline with it (the hand-over is one
        # step after every loop is done).  The log says why, then how many
        # were closed for it; the others are handed over as ever.
        self.sd.start("--shutdown-timeout-s", "2", "--max-unsent-kib", "64")
        a, ra = self.connect()
        self.assertEqual(request(a, ra, "ECHO a"), "OK a")
        hog = socket.create_connection(("127.0.0.1", self.sd.port), timeout=10)
        self.addCleanup(hog.close)
        hog.setblocking(False)
        line, last = b"ECHO " + b"h" * 995 + b"\n", time.monotonic()
        while time.monotonic() - last < 1.0:  # until the server stops reading it
            try:
                hog.send(line * 64)
                last = time.monotonic()
            except BlockingIOError:
                time.sleep(0.01)
        self.sd.proc.send_signal(signal.SIGTERM)
        self.sd.wait_log(r"warning: shutdown waits on 1 connections whose clients do not read their replies")
        self.assertEqual(self.sd.proc.wait(15), 0)
        log = self.sd.log()
        self.assertIn("warning: shutdown timeout: closed 1 connections whose clients did not read their replies",
                      log)
        self.assertIn("handed 1 connections to systemd", log)
        self.sd.start()
        self.assertEqual(request(a, ra, "ECHO still open"), "OK still open")

    def test_client_gone_meanwhile_is_cleaned_up(self):
        self.sd.start()
        a, ra = self.connect()
        self.assertEqual(request(a, ra, "ECHO x"), "OK x")
        b, rb = self.connect()
        self.assertEqual(request(b, rb, "ECHO y"), "OK y")
        self.assertEqual(self.sd.stop(), 0)
        a.close()
        self.sd.start()
        self.sd.wait_log(r"client closed")
        self.assertEqual(request(b, rb, "ECHO still"), "OK still")
        # Closing the adopted connection reaches the client: EOF.
        self.assertEqual(self.sd.stop(), 0)
        self.sd.start("--no-keep-connections")
        self.assertEqual(request(b, rb, "ECHO third"), "OK third")
        self.sd.proc.send_signal(signal.SIGTERM)
        b.settimeout(10)
        self.assertEqual(b.recv(100), b"")

    def test_a_start_that_fails_leaves_the_connections_stored(self):
        # An upgrade whose workers cannot start (here their stacks do not fit the address
        # space; a TasksMax= too low does the same) exits before it adopts anything.
        if tplib.SANITIZED:
            self.skipTest("a sanitizer's shadow memory does not fit a limited address space")
        self.sd.start()
        a, ra = self.connect()
        self.assertEqual(request(a, ra, "ECHO x"), "OK x")
        self.assertEqual(self.sd.stop(), 0)
        stored = self.sd.names()
        self.assertEqual(self.sd.start("--workers", "1024", ready=False, limit_as=192 << 20).wait(30), 1)
        self.assertIn("cannot start 1024 workers", self.sd.log())
        self.assertEqual(self.sd.names(), stored)
        self.sd.start()
        self.assertEqual(request(a, ra, "ECHO y"), "OK y")

    def test_damaged_or_other_version_state_closes_cleanly(self):
        for damage, reason in ((lambda buf: buf[:20] + bytes([buf[20] ^ 1]) + buf[21:], "damaged"),
                               (lambda buf: buf[:4] + b"\x09\x00" + buf[6:], "another version")):
            with self.subTest(reason=reason):
                self.sd.start()
                a, ra = self.connect()
                self.assertEqual(request(a, ra, "ECHO x"), "OK x")
                self.assertEqual(self.sd.stop(), 0)
                with self.sd.lock:
                    i = next(k for k, (n, _) in enumerate(self.sd.store) if n.startswith("tps"))
                    name, fd = self.sd.store[i]
                    buf = os.pread(fd, 1 << 20, 0)
                    os.close(fd)
                    bad = os.memfd_create("bad")
                    os.write(bad, damage(buf))
                    self.sd.store[i] = (name, bad)
                self.sd.start()
                self.sd.wait_log(reason)
                self.assertIn("1 handed-over connections closed", self.sd.log())
                a.settimeout(10)
                self.assertEqual(a.recv(100), b"")
                self.assertTrue(wait_until(lambda: self.sd.names() == [], 5), self.sd.names())
                self.assertEqual(self.sd.stop(), 0)

    def test_over_the_cap_closed(self):
        self.sd.start("--keep-connections-max", "1")
        a, ra = self.connect()
        self.assertEqual(request(a, ra, "ECHO a"), "OK a")
        b, rb = self.connect()
        self.assertEqual(request(b, rb, "ECHO b"), "OK b")
        self.assertEqual(self.sd.stop(), 0)
        self.assertIn("1 connections closed, not handed over", self.sd.log())
        self.assertEqual(self.sd.names().count("tpc00"), 1)
        self.sd.start()
        kept = [s for s, r in ((a, ra), (b, rb)) if self._alive(s, r)]
        self.assertEqual(len(kept), 1)

    def test_over_a_lowered_max_connections_told_as_a_new_client(self):
        # Handed over, but the new instance allows fewer: the ones it cannot
        # take get ERR too many connections, as a new connection over the
        # limit does, not a bare close or a reset.
        self.sd.start()
        clients = [self.connect() for _ in range(3)]
        for i, (s, r) in enumerate(clients):
            self.assertEqual(request(s, r, "ECHO %d" % i), "OK %d" % i)
        self.assertEqual(self.sd.stop(), 0, self.sd.log())
        for i, (s, r) in enumerate(clients):
            s.sendall(b"ECHO again %d\n" % i)
        self.sd.start("--max-connections", "1")
        replies = [r.line(timeout=5) for s, r in clients]
        self.assertEqual(replies.count("ERR too many connections"), 2, replies)
        self.assertEqual(len([x for x in replies if x.startswith("OK again ")]), 1, replies)
        self.assertIn("2 handed-over connections closed", self.sd.log())

    def test_over_the_cap_a_silent_client_still_gets_its_grace(self):
        # Not handed over, a connection ends as without keeping: one accepted just
        # before SIGTERM that has not spoken has its first request served.
        self.sd.start("--keep-connections-max", "0")
        s, r = self.connect()
        # Accepted by this instance (connect() returns once the kernel has it).
        self.sd.wait_log(r"connection from")
        self.sd.proc.send_signal(signal.SIGTERM)
        self.sd.wait_log(r"shutting down")
        self.assertEqual(request(s, r, "ECHO first", timeout=5), "OK first")
        self.assertEqual(self.sd.proc.wait(30), 0, self.sd.log())

    def test_an_unreachable_notify_socket_keeps_nothing(self):
        # A NOTIFY_SOCKET that leads nowhere has no fd store behind it: the stop
        # is the one without keep_connections, and the log says why.
        nowhere = os.path.join(tempfile.mkdtemp(), "no-such-notify-socket")
        with tplib.Server("--keep-connections", "--log-level", "debug",
                          env={"NOTIFY_SOCKET": nowhere}) as srv:
            s = srv.connect()
            r = LineReader(s)
            srv.wait_log(r"connection from")
            srv.proc.send_signal(signal.SIGTERM)
            srv.wait_log(r"shutting down")
            self.assertEqual(request(s, r, "ECHO first", timeout=5), "OK first")
            self.assertEqual(srv.proc.wait(30), 0, srv.log())
            self.assertIn("notify socket cannot be reached (No such file or directory): "
                          "connections are not kept", srv.log())
            self.assertNotIn("stored one by one", srv.log())

    def test_a_proxy_s_silent_connection_still_gets_its_grace(self):
        # Its PROXY header not read yet, it cannot be handed over: it ends as without
        # keeping, its header and first request served within the grace.
        self.sd.start("--proxy-protocol", "--proxy-trusted", "127.0.0.1")
        s, r = self.connect()
        self.sd.wait_log(r"connection from")
        self.sd.proc.send_signal(signal.SIGTERM)
        self.sd.wait_log(r"shutting down")
        s.sendall(b"PROXY TCP4 10.1.2.3 10.0.0.1 5555 9000\r\nECHO first\n")
        self.assertEqual(r.line(timeout=5), "OK first")
        s.settimeout(5)
        self.assertEqual(s.recv(16), b"")
        self.assertEqual(self.sd.proc.wait(10), 0)

    def test_a_leave_before_the_hand_over_leaves_no_cork(self):
        # The leave (drain_s) corks each reply with its FIN; a connection handed
        # over meanwhile must reach the next instance uncorked (a corked socket
        # holds every small reply 200 ms).
        self.sd.start("--drain-s", "1")
        a, ra = self.connect()
        self.assertEqual(request(a, ra, "ECHO before"), "OK before")
        self.assertEqual(self.sd.stop(), 0, self.sd.log())
        self.sd.start()
        took = []
        for i in range(5):
            t0 = time.monotonic()
            self.assertEqual(request(a, ra, "ECHO %d" % i), "OK %d" % i)
            took.append(time.monotonic() - t0)
        self.assertLess(min(took), 0.1, took)

    def test_a_proxy_s_unnamed_connections_are_not_capped_at_adoption(self):
        # LOCAL and UNKNOWN headers leave the proxy's own address, which the
        # per-address cap never counted; a restart must not close them.
        args = ("--proxy-protocol", "--proxy-trusted", "127.0.0.1", "--max-connections-per-address", "1")
        self.sd.start(*args)
        conns = []
        for i in range(3):
            s, r = self.connect()
            s.sendall(b"PROXY UNKNOWN\r\n")
            self.assertEqual(request(s, r, "ECHO b%d" % i), "OK b%d" % i)
            conns.append((s, r))
        self.restart(*args)
        self.assertIn("adopted 3 connections", self.sd.log())
        for i, (s, r) in enumerate(conns):
            self.assertEqual(request(s, r, "ECHO a%d" % i), "OK a%d" % i)

    @staticmethod
    def _alive(s, r):
        try:
            return request(s, r, "ECHO alive", timeout=5) == "OK alive"
        except (OSError, AssertionError, EOFError):
            return False


# Holds N idle connections in its own process (the test process holds the
# store), then, told to on stdin, sends one ECHO on each and checks the reply.
HOLDER = r"""
import socket, sys
port, n = int(sys.argv[1]), int(sys.argv[2])
conns = [socket.create_connection(("127.0.0.1", port), timeout=30) for _ in range(n)]
print("connected", flush=True)
sys.stdin.readline()
bad = 0
for i, s in enumerate(conns):
    s.sendall(b"ECHO %d\n" % i)
for i, s in enumerate(conns):
    buf = b""
    while not buf.endswith(b"\n"):
        d = s.recv(64)
        if not d:
            break
        buf += d
    bad += buf != b"OK %d\n" % i
print("bad", bad, flush=True)
"""


class ManyIdle(unittest.TestCase):
    def test_ten_thousand_idle_connections(self):
        import resource
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        # The test process holds the store (n) and the holder the clients (n).
        n = 10000
        if hard != resource.RLIM_INFINITY and hard < n + 200:
            self.skipTest("RLIMIT_NOFILE hard limit %d is below the %d fds this test needs" % (hard, n + 200))
        if soft != resource.RLIM_INFINITY and soft < n + 200:
            resource.setrlimit(resource.RLIMIT_NOFILE, (n + 200, hard))  # the server and holder inherit it
            self.addCleanup(resource.setrlimit, resource.RLIMIT_NOFILE, (soft, hard))
        sd = FakeSystemd()
        self.addCleanup(sd.close)
        sd.start("--max-connections", str(n + 10), "--keep-connections-max", str(n), "--log-level", "info")
        open_fds = lambda: len(os.listdir("/proc/%d/fd" % sd.proc.pid))  # noqa: E731
        base = open_fds()
        holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(sd.port), str(n)],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.addCleanup(lambda: (holder.kill(), holder.communicate()))
        self.assertEqual(holder.stdout.readline().strip(), "connected")
        # The kernel completed the handshakes; wait until the daemon has accepted them all
        # (a sanitized build accepts 10000 connections in seconds, not milliseconds).
        self.assertTrue(wait_until(lambda: open_fds() >= base + n, 60),
                        "the daemon accepted only %d of %d connections" % (open_fds() - base, n))
        t0 = time.monotonic()
        self.assertEqual(sd.stop(60), 0, sd.log()[-3000:])
        stored = time.monotonic() - t0
        self.assertIn("handed %d connections" % n, sd.log())
        names = sd.names()
        self.assertEqual(sorted(names), ["tpc00", "tps00"])
        fdnames = len(":".join(["tpserver.socket"] + names))
        self.assertLess(fdnames, 128 * 1024)
        t0 = time.monotonic()
        sd.start("--max-connections", str(n + 10), "--keep-connections-max", str(n), "--log-level", "info")
        self.assertIn("adopted %d connections" % n, sd.log())
        adopted = time.monotonic() - t0
        holder.stdin.write("go\n")
        holder.stdin.flush()
        self.assertEqual(holder.stdout.readline().strip(), "bad 0")
        self.assertTrue(wait_until(lambda: sd.names() == [], 10))
        print("\n%d connections: handed over in %.2f s, adopted in %.2f s, LISTEN_FDNAMES %d bytes"
              % (n, stored, adopted, fdnames), file=sys.stderr)


if __name__ == "__main__":
    tplib.main()
