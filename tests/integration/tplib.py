# SPDX-License-Identifier: MIT
"""Helpers for integration tests: start the real tpserver on an ephemeral
loopback port, talk to it over TCP, and inspect the process."""
import contextlib
import os
import random
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import warnings

# Tests close what they open; TP_RESOURCE_WARNINGS=default shows what one leaves to the collector.
warnings.simplefilter(os.environ.get("TP_RESOURCE_WARNINGS", "ignore"), ResourceWarning)

# Threads besides pool.workers and the event loops: pool.cheap_workers at its default.
CHEAP_WORKERS = 1

TPSERVER = os.environ.get("TPSERVER") or os.path.join(os.environ.get("TP_BUILD_DIR", "build"), "tpserver")
TPCLIENT = os.environ.get("TPCLIENT") or os.path.join(os.path.dirname(TPSERVER), "tpclient")


_TSAN_EXES = {}


def _sanitized():
    with open(TPSERVER, "rb") as f:
        exe = f.read()
    return b"__asan_init" in exe or b"__tsan_init" in exe


# Sanitizer builds are slower and keep shadow memory: tests multiply time
# bounds by SLACK there, and check absolute memory bounds in plain builds only.
SANITIZED = _sanitized()
SLACK = 4.0 if SANITIZED else 1.0


NOBODY = 65534


def tasks_of(uid):
    """Tasks (threads) whose real user is uid: what RLIMIT_NPROC counts."""
    n = 0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open("/proc/%s/status" % pid) as f:
                ruid = int(re.search(r"(?m)^Uid:\s+(\d+)", f.read()).group(1))
            n += len(os.listdir("/proc/%s/task" % pid)) if ruid == uid else 0
        except (OSError, AttributeError):
            pass  # gone meanwhile
    return n


class Server:
    """A tpserver process listening on 127.0.0.1:<ephemeral>; use as a context manager.
    listen_flags=False leaves out --host and --port, which would override a
    file's listen settings: the test's --config file then sets them."""

    def __init__(self, *args, env=None, wait=True, listen_flags=True):
        self.logfile = tempfile.NamedTemporaryFile(prefix="tpserver-", suffix=".log", delete=False)
        listen = ["--host", "127.0.0.1", "--port", "0"] if listen_flags else []
        cmd = [TPSERVER, *listen, "--config", "/dev/null"] + list(args)
        full_env = dict(os.environ)
        full_env.pop("NOTIFY_SOCKET", None)
        full_env.pop("LISTEN_FDS", None)
        full_env.pop("JOURNAL_STREAM", None)
        if env:
            full_env.update(env)
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=self.logfile,
                                     stderr=subprocess.STDOUT, env=full_env)
        self.port = None
        self.sockets = []  # from connect(): closed on exit, those the test did not close itself
        if wait:
            try:
                self.port = self.wait_log(r"listening on 127\.0\.0\.1:(\d+)", group=1, cast=int)
            except BaseException:
                self.__exit__()
                raise

    def log(self):
        with open(self.logfile.name, "r", errors="replace") as f:
            return f.read()

    def wait_log(self, pattern, timeout=10.0, group=0, cast=str):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            m = re.search(pattern, self.log())
            if m:
                return cast(m.group(group))
            if self.proc.poll() is not None:
                raise AssertionError("tpserver exited (%s) before logging %r:\n%s"
                                     % (self.proc.returncode, pattern, self.log()))
            time.sleep(0.02)
        raise AssertionError("timed out waiting for %r in log:\n%s" % (pattern, self.log()))

    def connect(self, timeout=10.0, source=None):
        """A connection to the server, from the loopback address source if
        given (127.0.0.0/8); closed when the server is stopped."""
        s = socket.create_connection(("127.0.0.1", self.port), timeout=timeout,
                                     source_address=(source, 0) if source else None)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sockets.append(s)
        return s

    def threads(self):
        """The server's own threads: ThreadSanitizer's runtime adds a
        background thread of its own to every process it instruments, which
        is not counted."""
        n = len(os.listdir("/proc/%d/task" % self.proc.pid))
        return n - 1 if n > 1 and self.under_tsan() else n

    def under_tsan(self):
        # The runtime may be linked statically (clang) or dynamically (gcc):
        # look for its entry point in the executable itself.
        exe = os.readlink("/proc/%d/exe" % self.proc.pid)
        if exe not in _TSAN_EXES:
            with open(exe, "rb") as f:
                _TSAN_EXES[exe] = b"__tsan_init" in f.read()
        return _TSAN_EXES[exe]

    def fds(self):
        return len(os.listdir("/proc/%d/fd" % self.proc.pid))

    def rss_kib(self):
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def signal(self, sig):
        self.proc.send_signal(sig)

    @contextlib.contextmanager
    def stopped(self, settle=0.0):
        """The whole process stopped (SIGSTOP) for the block, then settle
        seconds more, and continued even if the block fails: what clients send
        meanwhile is in their sockets before the server reads anything."""
        self.signal(signal.SIGSTOP)
        try:
            yield
            time.sleep(settle)
        finally:
            self.signal(signal.SIGCONT)

    def stop(self, timeout=20.0):
        """SIGTERM and wait; returns the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("tpserver did not exit within %.0f s of SIGTERM" % timeout)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        for s in self.sockets:
            s.close()
        self.logfile.close()
        os.unlink(self.logfile.name)
        return False


class LineReader:
    """Reads newline-terminated replies from a socket."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def line(self, timeout=10.0):
        self.sock.settimeout(timeout)
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("connection closed with %r unread" % self.buf)
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line.decode("latin-1")

    def lines(self, n, timeout=10.0):
        return [self.line(timeout) for _ in range(n)]


def read_to_eof(sock):
    """Everything the peer sends until it closes; closes sock."""
    data = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    sock.close()
    return data


def cpu_seconds(pid):
    """utime + stime of a process, in seconds."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_until(cond, timeout, step=0.05):
    """Poll cond() until true or timeout; returns its last value."""
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v or time.monotonic() >= deadline:
            return v
        time.sleep(step)


def check_help_layout(test, text, column):
    """--help's layout: no line past column 79; each option's text starts at
    `column`, on the option's line or, below an option too long for it, on
    the next."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        test.assertLessEqual(len(line), 79, line)
        if not line.startswith(("  -", "      --")):
            continue
        if re.match(r"^.{%d}  \S" % (column - 2), line) is None:  # the option alone, its text below
            test.assertRegex(lines[i + 1], r"^ {%d}\S" % column, line)


class Frozen:
    """A thread of another process stopped with ptrace (PTRACE_SEIZE and
    PTRACE_INTERRUPT stop that thread alone) until the block ends, as a
    wedged thread would be.  Raises unittest.SkipTest where ptrace is not
    allowed."""

    SEIZE, INTERRUPT, DETACH, WALL = 0x4206, 0x4207, 17, 0x40000000

    def __init__(self, tid):
        import ctypes
        self.libc = ctypes.CDLL(None, use_errno=True)
        self.libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
        self.tid = tid
        self.ctypes = ctypes

    def __enter__(self):
        if self.libc.ptrace(self.SEIZE, self.tid, None, None) != 0:
            raise unittest.SkipTest("ptrace: %s" % os.strerror(self.ctypes.get_errno()))
        if self.libc.ptrace(self.INTERRUPT, self.tid, None, None) != 0:
            err = self.ctypes.get_errno()
            self.libc.ptrace(self.DETACH, self.tid, None, None)
            raise OSError(err, "ptrace(PTRACE_INTERRUPT, %d): %s" % (self.tid, os.strerror(err)))
        os.waitpid(self.tid, self.WALL)
        return self

    def __exit__(self, *exc):
        self.libc.ptrace(self.DETACH, self.tid, None, None)


class ConfFile:
    """A configuration file of a test, removed at its end; write() replaces
    it whole (a rename), as an operator's editor would."""

    def __init__(self, test, text, path=None):
        if path is None:
            fd, path = tempfile.mkstemp(suffix=".conf")
            os.close(fd)
        self.path = path
        test.addCleanup(lambda: os.path.exists(self.path) and os.unlink(self.path))
        self.write(text)

    def write(self, text):
        # Replace, not rewrite: the server may be reading the old one.
        tmp = self.path + ".new"
        with open(tmp, "w") as f:
            f.write(text)
        os.rename(tmp, self.path)


def flood_until_blocked(sock, payload, quiet_s=1.0, limit=256 << 20):
    """Send payload over and over without reading, until no byte has gone
    out for quiet_s (the server stopped reading); returns the bytes sent."""
    sock.setblocking(False)
    block = payload * max(1, 65536 // len(payload))
    sent, rest, last = 0, b"", time.monotonic()
    while sent < limit:
        if not rest:
            rest = block
        try:
            n = sock.send(rest)
        except BlockingIOError:
            if time.monotonic() - last >= quiet_s:
                break
            time.sleep(0.01)
            continue
        sent += n
        rest = rest[n:]
        last = time.monotonic()
    sock.setblocking(True)
    return sent


def assert_threads(test, srv, want):
    """Asserts that srv runs want threads, once those on their way out are
    gone (waiting up to 2 s, times SLACK): a thread just joined, or told to
    leave, is listed in /proc until the kernel has reaped it."""
    wait_until(lambda: srv.threads() == want, 2 * SLACK, step=0.01)
    test.assertEqual(srv.threads(), want)


def free_ports(n):
    """n distinct ports of 127.0.0.1 free now, for a test to bind later (each
    held bound until all are chosen, so that no two are the same).  They come
    from below the kernel's ephemeral range (ip_local_port_range), which
    neither a connection's source port nor a "--port 0" listener of a test
    running beside it is ever given: the port stays free until it is bound."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    socks = []
    try:
        for _ in range(1000):
            if len(socks) == n:
                break
            s = socket.socket()
            try:
                s.bind(("127.0.0.1", random.randrange(max(1024, low // 2), max(1025, low))))
                socks.append(s)
            except OSError:  # in use: another
                s.close()
        while len(socks) < n:  # no luck below the range: any free port
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def free_port():
    """One port of 127.0.0.1 free now (free_ports)."""
    return free_ports(1)[0]


def threads_in(pid, syscalls):
    """The threads of pid (not its main one) now blocked in one of the
    given system calls (numbers, as /proc/PID/task/TID/syscall gives them)."""
    found = []
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/syscall" % (pid, tid)) as f:
                nr = f.read().split()[0]
        except OSError:
            continue
        if int(tid) != pid and nr.lstrip("-").isdigit() and int(nr) in syscalls:
            found.append(int(tid))
    return found


def request(sock, reader, line, timeout=10.0):
    sock.sendall(line.encode("latin-1") + b"\n")
    return reader.line(timeout)


# ctest's SKIP_RETURN_CODE for the integration tests (tests/CMakeLists.txt).
SKIP_RETURN_CODE = 77


class _Result(unittest.TextTestResult):
    """Also counts the tests that ran to the end and passed (a class
    skipped in setUpClass shows up as one skip, its tests not as run)."""

    passed = 0

    def addSuccess(self, test):
        super().addSuccess(test)
        self.passed += 1


class _Runner(unittest.TextTestRunner):
    resultclass = _Result


def _report_skips(skipped):
    """Name every skipped test and its reason, also when others of the file
    passed (ctest then says Passed); append them to $TP_SKIP_LOG if set,
    where the test stage gathers them for its summary."""
    name = os.path.splitext(os.path.basename(sys.argv[0]))[0]
    lines = ["SKIPPED %s: %s" % (test.id().replace("__main__", name, 1), reason) for test, reason in skipped]
    for line in lines:
        print(line, flush=True)
    log = os.environ.get("TP_SKIP_LOG")
    if log and lines:
        with open(log, "a") as f:
            f.write("".join(line + "\n" for line in lines))


def main(**kwargs):
    """unittest.main() for a test file, with the exit status ctest reads:
    0 when at least one test passed and none failed, 1 when one failed or
    none ran, SKIP_RETURN_CODE when every test of the file was skipped, so
    that ctest reports the file as skipped rather than passed.  A file whose
    tests skip for a reason shares that reason with all of them."""
    result = unittest.main(exit=False, testRunner=_Runner, **kwargs).result
    _report_skips(result.skipped)
    if not result.wasSuccessful():
        sys.exit(1)
    if result.passed == 0 and result.skipped:
        print("all tests skipped", flush=True)
        sys.exit(SKIP_RETURN_CODE)
    if result.passed == 0:
        print("no test ran", flush=True)
        sys.exit(1)
    sys.exit(0)
