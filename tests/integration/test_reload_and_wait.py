#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""tpserver --reload-and-wait: the reload helper's forms, its wait for
the daemon's verdict, and what ends it."""
import os
import shutil
import re
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest

import tplib
from tplib import (CHEAP_WORKERS, NOBODY, SLACK, TPSERVER, ConfFile, LineReader, Server, assert_threads, request,
                   tasks_of, wait_until)


class ReloadAndWait(unittest.TestCase):
    """The ExecReload helper and the daemon, without systemd."""

    def setUp(self):
        self.rundir = tempfile.mkdtemp(prefix="tp-run-")
        self.addCleanup(lambda: subprocess.run(["rm", "-rf", self.rundir]))
        self.env = {"RUNTIME_DIRECTORY": self.rundir}

    def helper(self, pid, timeout=40):
        t0 = time.monotonic()
        p = subprocess.run([TPSERVER, "--reload-and-wait", str(pid)], capture_output=True, text=True,
                           timeout=timeout, env=dict(os.environ, **self.env))
        return p, time.monotonic() - t0

    def test_its_forms(self):
        """PID joined with "=" works too; without a PID, or with anything else
        given, or a PID that is no number, it says how it is used, exit 78."""
        conf = ConfFile(self, "pool = { workers = 2; };\n")
        with Server("--config", conf.path, env=self.env) as srv:
            srv.wait_log(r"ready:")
            conf.write("pool = { workers = 3; };\n")
            p = subprocess.run([TPSERVER, "--reload-and-wait=%d" % srv.proc.pid], capture_output=True,
                               text=True, timeout=40, env=dict(os.environ, **self.env))
            self.assertEqual((p.returncode, p.stderr), (0, ""))
            self.assertIn("configuration reloaded: 3 workers", srv.log())
            for args in (["--reload-and-wait"], ["--reload-and-wait", str(srv.proc.pid), "-q"],
                         ["--reload-and-wait=%d" % srv.proc.pid, "x"]):
                p = subprocess.run([TPSERVER] + args, capture_output=True, text=True, timeout=10,
                                   env=dict(os.environ, **self.env))
                self.assertEqual(p.returncode, 78, args)
                self.assertIn("--reload-and-wait takes a process id and nothing else", p.stderr)
            p = subprocess.run([TPSERVER, "--reload-and-wait", "abc"], capture_output=True, text=True, timeout=10,
                               env=dict(os.environ, **self.env))
            self.assertEqual(p.returncode, 78)
            self.assertIn('invalid process id "abc"', p.stderr)

    def test_a_value_with_line_ends_is_refused_on_one_line(self):
        """A value quoting line ends (a forged "reading" line, say) is refused on
        one line of the log and of the status file, and the next reload is waited
        for as any other."""
        conf = ConfFile(self, "pool = { workers = 2; };\n")
        with Server("--config", conf.path, env=self.env) as srv:
            srv.wait_log(r"ready:")
            conf.write('log = { level = "x\ntpserver[1]: notice: forged\nreading 99"; };\n')
            p, _ = self.helper(srv.proc.pid)
            self.assertEqual(p.returncode, 1)
            self.assertIn('log.level: invalid value "x?tpserver[1]: notice: forged?reading 99"', p.stderr)
            self.assertNotIn("\ntpserver[1]: notice: forged", srv.log())
            with open(os.path.join(self.rundir, "reload-status")) as f:
                self.assertEqual(len(f.read().splitlines()), 1)
            conf.write("pool = { workers = 3; };\n")
            p, took = self.helper(srv.proc.pid)
            self.assertEqual((p.returncode, p.stderr), (0, ""))
            self.assertLess(took, 10)

    def test_applied_refused_and_gone(self):
        conf = ConfFile(self, "pool = { workers = 2; };\n")
        with Server("--config", conf.path, env=self.env) as srv:
            srv.wait_log(r"ready:")
            conf.write("pool = { workers = 3; };\n")
            p, _ = self.helper(srv.proc.pid)
            self.assertEqual((p.returncode, p.stderr), (0, ""))
            # Returned only once applied: the new pool is there.
            self.assertIn("configuration reloaded: 3 workers", srv.log())
            assert_threads(self, srv, 3 + 1 + CHEAP_WORKERS)

            conf.write("pool = {\n  workerz = 4;\n};\n")
            p, _ = self.helper(srv.proc.pid)
            self.assertEqual(p.returncode, 1)
            self.assertIn("reload refused: %s:2: pool.workerz: unknown setting" % conf.path, p.stderr)
            # An address -t and a start refuse: it was applied with a "restart is needed"
            # warning, and the next restart exited 78.
            conf.write("pool = { workers = 2; };\nmetrics = { enabled = true; host = \"999.1.1.1\"; };\n")
            p, _ = self.helper(srv.proc.pid)
            self.assertEqual(p.returncode, 1)
            self.assertIn("reload refused: %s:2: metrics.host" % conf.path, p.stderr)
            assert_threads(self, srv, 3 + 1 + CHEAP_WORKERS)  # nothing of it applied

            # A reload that blocks (the file is a FIFO) is waited for, then applied.
            os.unlink(conf.path)
            os.mkfifo(conf.path)
            res = {}
            t = threading.Thread(target=lambda: res.update(p=self.helper(srv.proc.pid)[0]))
            t.start()
            time.sleep(0.5)
            self.assertNotIn("p", res)
            with open(conf.path, "w") as f:
                f.write("pool = { workers = 2; };\n")
            t.join(10)
            self.assertEqual(res["p"].returncode, 0, res["p"].stderr)
            assert_threads(self, srv, 2 + 1 + CHEAP_WORKERS)
            self.assertEqual(srv.stop(), 0)
            pid = srv.proc.pid
        p, took = self.helper(pid)
        self.assertEqual(p.returncode, 1)
        self.assertLess(took, 2)

    def test_a_pool_that_cannot_grow_refuses_the_whole_reload(self):
        # Workers that cannot start (a task limit: the unit's TasksMax=, RLIMIT_NPROC) refuse the
        # reload as a whole: nothing of the file is applied, and the helper says why.
        if os.geteuid() != 0 or not shutil.which("setpriv") or not shutil.which("prlimit"):
            self.skipTest("needs root, setpriv and prlimit: the daemon runs as nobody under a task limit")
        if tplib.SANITIZED:
            self.skipTest("a sanitizer's own threads count against the task limit")
        home = tempfile.mkdtemp(prefix="tp-nproc-")
        self.addCleanup(shutil.rmtree, home)
        os.chmod(home, 0o755)  # nobody reaches the binary and the file
        os.chown(self.rundir, NOBODY, NOBODY)
        exe = shutil.copy(TPSERVER, home)
        conf = ConfFile(self, "pool = { workers = 2; };\nlimits = { max_sleep_ms = 100; };\n",
                        path=os.path.join(home, "tp.conf"))
        # Room for the threads nobody has now, the daemon's (2 workers, the cheap ones, its loop)
        # and the reload's reading thread: no more worker can start.
        limit = "--nproc=%d" % (tasks_of(NOBODY) + 2 + CHEAP_WORKERS + 1 + 1)
        with open(os.path.join(home, "log"), "w+") as log:
            proc = subprocess.Popen(["setpriv", "--reuid=%d" % NOBODY, "--regid=%d" % NOBODY, "--clear-groups",
                                     "prlimit", limit, exe, "--host", "127.0.0.1", "--port", "0", "--config",
                                     conf.path], stdout=log, stderr=subprocess.STDOUT,
                                    env=dict(os.environ, **self.env))
            self.addCleanup(lambda: proc.poll() is None and (proc.kill(), proc.wait()))
            self.assertTrue(wait_until(lambda: "ready:" in open(log.name).read(), 10 * SLACK))
            port = int(re.search(r"listening on 127\.0\.0\.1:(\d+)", open(log.name).read()).group(1))
            threads = len(os.listdir("/proc/%d/task" % proc.pid))
            conf.write("pool = { workers = 40; };\nlimits = { max_sleep_ms = 5000; };\n")
            p, _ = self.helper(proc.pid)
            self.assertEqual(p.returncode, 1, p.stderr)
            self.assertIn("reload refused: cannot resize the pool to 40 workers", p.stderr)
            # A worker the growth started before it failed was told to stop, and leaves on its own
            # thread after the verdict (the loop does not wait for it): wait for it, and for its
            # place under the limit, which the next reload's reading thread takes.
            wait_until(lambda: len(os.listdir("/proc/%d/task" % proc.pid)) == threads, 5 * SLACK)
            self.assertEqual(len(os.listdir("/proc/%d/task" % proc.pid)), threads)
            with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
                self.assertRegex(request(s, LineReader(s), "SLEEP 150"), "^ERR ")  # max_sleep_ms still 100
            # The same settings with no more workers are applied.
            conf.write("pool = { workers = 2; };\nlimits = { max_sleep_ms = 5000; };\n")
            p, _ = self.helper(proc.pid)
            self.assertEqual((p.returncode, p.stderr), (0, ""))
            with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
                self.assertEqual(request(s, LineReader(s), "SLEEP 150"), "OK 150")
            proc.kill()
            proc.wait()

    def test_a_refusal_naming_a_long_path_is_told_whole(self):
        # A path of some 3 000 bytes (components under NAME_MAX): the start's
        # refusal, the reload's log line and the helper's message name it whole.
        deep = os.path.join(self.rundir, *["p" * 250] * 12)
        os.makedirs(deep)
        conf = ConfFile(self, "pool = {\n  workerz = 4;\n};\n", path=os.path.join(deep, "tpserver.conf"))
        why = "%s:2: pool.workerz: unknown setting" % conf.path
        p = subprocess.run([TPSERVER, "--config", conf.path, "--port", "0"], capture_output=True, text=True,
                           timeout=10)
        self.assertEqual(p.returncode, 78)
        self.assertIn(why, p.stderr)
        p = subprocess.run([TPSERVER, "--check-config", "--config", conf.path], capture_output=True,
                           text=True, timeout=10)
        self.assertEqual(p.returncode, 78)
        self.assertIn(why, p.stderr)
        conf.write("pool = { workers = 2; };\n")
        with Server("--config", conf.path, env=self.env) as srv:
            srv.wait_log(r"ready:")
            conf.write("pool = {\n  workerz = 4;\n};\n")
            p, _ = self.helper(srv.proc.pid)
            self.assertEqual(p.returncode, 1)
            self.assertIn("reload refused: " + why, p.stderr)
            srv.wait_log(re.escape("keeping the running configuration: " + why))

    def test_another_program_is_not_signalled(self):
        """A PID that is not tpserver's (a typo, a stale $MAINPID) is not sent
        the SIGHUP that would end it."""
        other = subprocess.Popen(["sleep", "30"])
        self.addCleanup(lambda: other.poll() is None and (other.kill(), other.wait()))

        def comm():
            with open("/proc/%d/comm" % other.pid) as f:
                return f.read().strip()
        self.assertTrue(wait_until(lambda: comm() == "sleep", 5))  # until its exec, it is python3
        p, took = self.helper(other.pid)
        self.assertEqual(p.returncode, 1)
        self.assertIn('process %d is "sleep", not tpserver: not signalled' % other.pid, p.stderr)
        self.assertLess(took, 2)
        time.sleep(0.2)
        self.assertIsNone(other.poll())

    def test_a_reload_read_when_shutdown_began_is_logged(self):
        """A read that ends after SIGTERM is not applied: the helper and the log
        both say so."""
        conf = ConfFile(self, "pool = { workers = 2; };\n")
        with Server("--config", conf.path, env=self.env) as srv:
            srv.wait_log(r"ready:")
            s = srv.connect()
            s.sendall(b"SLEEP 1500\n")  # keeps the shutdown going while the read ends
            os.unlink(conf.path)
            os.mkfifo(conf.path)
            res = {}
            t = threading.Thread(target=lambda: res.update(p=self.helper(srv.proc.pid)[0]))
            t.start()
            self.assertTrue(wait_until(lambda: srv.threads() == 2 + 1 + 1 + CHEAP_WORKERS, 10))
            srv.signal(signal.SIGTERM)
            srv.wait_log(r"shutting down; answering")
            with open(conf.path, "w") as f:
                f.write("pool = { workers = 3; };\n")
            t.join(10)
            self.assertEqual(res["p"].returncode, 1)
            self.assertIn("reload refused: shutting down", res["p"].stderr)
            srv.wait_log(r"reload not applied: shutting down")
            self.assertNotIn("configuration reloaded", srv.log())
            self.assertEqual(srv.stop(timeout=10), 0)

    def test_a_reload_during_the_leave_is_refused_at_once(self):
        """The leave is the stop's first part: a SIGHUP then is refused at once,
        with no RELOADING=1 after STOPPING=1, and the file is not applied."""
        from test_systemd import Notify
        notify = Notify()
        self.addCleanup(notify.close)
        conf = ConfFile(self, "pool = { workers = 2; };\n")
        with Server("--config", conf.path, "--drain-s", "3",
                    env=dict(self.env, NOTIFY_SOCKET=notify.path)) as srv:
            notify.wait_for(r"^READY=1")
            srv.signal(signal.SIGTERM)
            notify.wait_for(r"^STOPPING=1", timeout=5)
            conf.write("pool = { workers = 3; };\n")
            p, took = self.helper(srv.proc.pid)
            self.assertEqual(p.returncode, 1)
            self.assertIn("reload refused: shutting down", p.stderr)
            self.assertLess(took, 2)
            self.assertEqual(srv.proc.wait(15), 0)
            self.assertIn("reload not applied: shutting down", srv.log())
            self.assertNotIn("configuration reloaded", srv.log())
        notify.collect(0.2)
        texts = [m for _, m in notify.messages]
        stop = next(i for i, t in enumerate(texts) if re.search(r"(?m)^STOPPING=1", t))
        self.assertFalse([t for t in texts[stop:] if re.search(r"(?m)^(RELOADING|READY)=1", t)], texts)

    def test_a_stop_during_the_wait_ends_it_with_success(self):
        """systemd sends SIGTERM to the helper too when the service stops or
        restarts during a reload: it stops waiting, says why, and exits 0 (a
        helper killed by the signal fails the unit).  SIGINT (by hand) the same."""
        conf = ConfFile(self, "pool = { workers = 2; };\n")
        with Server("--config", conf.path, env=self.env) as srv:
            srv.wait_log(r"ready:")
            os.unlink(conf.path)
            os.mkfifo(conf.path)  # the read waits until the test writes the file
            for signo, why in ((signal.SIGTERM, "Terminated): the service is stopping, so the reload's "
                                                "outcome is moot"),
                               (signal.SIGINT, "Interrupt): the daemon's log says whether the file was applied")):
                helper = subprocess.Popen([TPSERVER, "--reload-and-wait", str(srv.proc.pid)],
                                          stderr=subprocess.PIPE, text=True, env=dict(os.environ, **self.env))
                self.addCleanup(lambda h=helper: h.poll() is None and (h.kill(), h.wait()))
                # Once the reload's reader waits on the FIFO, the helper waits on the daemon.
                self.assertTrue(wait_until(lambda: srv.threads() == 2 + 1 + 1 + CHEAP_WORKERS, 10))
                time.sleep(0.1)
                self.assertIsNone(helper.poll())
                t0 = time.monotonic()
                helper.send_signal(signo)
                _, err = helper.communicate(timeout=5)
                self.assertEqual(helper.returncode, 0, err)
                self.assertLess(time.monotonic() - t0, 1)
                self.assertIn("tpserver: reload: stopped waiting (" + why, err)
                with open(conf.path, "w") as f:
                    f.write("pool = { workers = 2; };\n")
                n = 1 if signo == signal.SIGTERM else 2  # the daemon applies it all the same
                self.assertTrue(wait_until(lambda: srv.log().count("configuration reloaded") == n, 10))
            self.assertEqual(srv.stop(timeout=10), 0)

    def test_daemon_gone_while_waiting(self):
        conf = ConfFile(self, "pool = { workers = 2; };\n")
        with Server("--config", conf.path, env=self.env) as srv:
            srv.wait_log(r"ready:")
            os.unlink(conf.path)
            os.mkfifo(conf.path)  # the reload never ends
            res = {}
            t = threading.Thread(target=lambda: res.update(r=self.helper(srv.proc.pid)))
            t.start()
            time.sleep(0.5)
            srv.proc.kill()
            srv.proc.wait()  # reaped, as systemd would
            t.join(10)
            p, took = res["r"]
            self.assertEqual(p.returncode, 1)
            self.assertIn("exited before the reload was done", p.stderr)
            self.assertLess(took, 3)


if __name__ == "__main__":
    tplib.main(verbosity=2, warnings="ignore")
