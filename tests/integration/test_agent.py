# SPDX-License-Identifier: MIT
"""The HAProxy agent check and the graceful leave on the real tpserver:
one line per connection ("ready up N%", "drain", never 0 %), SIGUSR2 and
SIGUSR1, the weight falling under load, shutdown.drain_s (drain reported
while serving, connections closed between requests, then the shutdown),
the check of drain_s against the unit's stop timeout, and the agent socket
passed by systemd under the name "agent"."""
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest

import tplib
from metricslib import MetricsServer
from tplib import TPSERVER, LineReader, Server, cpu_seconds, read_to_eof, request, wait_until


def agent_line(port):
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        return read_to_eof(s).decode()


def agent_port(srv):
    return srv.wait_log(r"agent check on 127\.0\.0\.1:(\d+)", group=1, cast=int)


class Agent(unittest.TestCase):
    def test_ready_drain_ready(self):
        with Server("--agent", "--agent-port", "0") as srv:
            port = agent_port(srv)
            self.assertEqual(agent_line(port), "ready up 100%\n")
            srv.signal(signal.SIGUSR2)
            srv.wait_log("SIGUSR2: drained")
            self.assertEqual(agent_line(port), "drain\n")
            s = srv.connect()
            self.assertEqual(request(s, LineReader(s), "ECHO still"), "OK still")
            srv.signal(signal.SIGUSR1)
            srv.wait_log("SIGUSR1: ready again")
            self.assertTrue(agent_line(port).startswith("ready up "))

    def test_ready_only_for_agent_ready_s(self):
        """"ready" ends a DRAIN or MAINT state in HAProxy, an operator's on the
        runtime API too: it is said for agent.ready_s after the start (to end a
        drain this host's agent left before a restart) and after SIGUSR1, then
        the answers carry the state and weight alone, so an operator's drain
        holds (it was undone within a second by every answer's ready)."""
        with Server("--agent", "--agent-port", "0", "--agent-ready-s", "1") as srv:
            port = agent_port(srv)
            self.assertEqual(agent_line(port), "ready up 100%\n")
            self.assertTrue(wait_until(lambda: agent_line(port) == "up 100%\n", 5, step=0.1))
            srv.signal(signal.SIGUSR2)
            srv.wait_log("SIGUSR2: drained")
            self.assertEqual(agent_line(port), "drain\n")
            srv.signal(signal.SIGUSR1)
            srv.wait_log("SIGUSR1: ready again")
            self.assertEqual(agent_line(port), "ready up 100%\n")
            self.assertTrue(wait_until(lambda: agent_line(port) == "up 100%\n", 5, step=0.1))
            # Not drained: SIGUSR1 still says ready again, for a balancer that missed the window.
            srv.signal(signal.SIGUSR1)
            srv.wait_log("SIGUSR1: not drained")
            self.assertEqual(agent_line(port), "ready up 100%\n")

    def test_sigusr1_during_a_leave_says_the_agent_still_answers_drain(self):
        # The log tells an operator what HAProxy will read: during a leave
        # SIGUSR1 brings nothing back, and the log said it did.
        with Server("--agent", "--agent-port", "0", "--drain-s", "5") as srv:
            port = agent_port(srv)
            srv.signal(signal.SIGTERM)
            srv.wait_log("leaving:")
            srv.signal(signal.SIGUSR1)
            line = srv.wait_log(r"SIGUSR1: .*")
            self.assertIn("the agent check answers drain: the host is leaving", line)
            self.assertEqual(agent_line(port), "drain\n")

    def test_ready_s_0_is_warned_of_and_sigusr1_says_so(self):
        # agent.ready_s 0: no answer carries ready, so nothing ends a drain in
        # HAProxy; -t and the start warn, and SIGUSR1's line does not claim ready.
        out = subprocess.run([TPSERVER, "--config", "/dev/null", "--agent-ready-s", "0", "-t", "-q"],
                             capture_output=True, text=True, timeout=10)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("agent.ready_s is 0: the agent check never answers ready", out.stdout + out.stderr)
        with Server("--agent", "--agent-port", "0", "--agent-ready-s", "0") as srv:
            port = agent_port(srv)
            srv.wait_log("agent.ready_s is 0")
            srv.signal(signal.SIGUSR2)
            srv.wait_log("SIGUSR2: drained")
            srv.signal(signal.SIGUSR1)
            line = srv.wait_log(r"SIGUSR1: .*")
            self.assertIn("never ready (agent.ready_s is 0)", line)
            self.assertEqual(agent_line(port), "up 100%\n")

    def test_the_metrics_show_the_weight_and_why_the_agent_drains(self):
        # A host left drained (a forgotten SIGUSR2) looks idle in HAProxy and
        # healthy in its metrics unless they say what the agent answers.
        def drains(m):
            return {r: m.get("tpserver_draining", reason=r) for r in ("operator", "leaving", "stopping")}
        with MetricsServer("--agent", "--agent-port", "0", "--drain-s", "3", "--workers", "1",
                           "--cheap-workers", "0") as srv:
            port = agent_port(srv)
            m = srv.scrape()
            self.assertEqual(m.get("tpserver_agent_weight"), 100)
            self.assertEqual(drains(m), {"operator": 0, "leaving": 0, "stopping": 0})
            busy = srv.connect()
            busy.sendall(b"SLEEP 4000\n" * 3)  # the one worker busy, two queued: the weight falls
            self.assertTrue(wait_until(lambda: srv.scrape().get("tpserver_agent_weight") < 100, 10),
                            srv.scrape_text())
            # The same figure the agent answers (both move once a tick: look until they agree).
            self.assertTrue(wait_until(lambda: agent_line(port).split()[-1] ==
                                       "%d%%" % srv.scrape().get("tpserver_agent_weight"), 5),
                            (agent_line(port), srv.scrape().get("tpserver_agent_weight")))
            srv.signal(signal.SIGUSR2)
            srv.wait_log("SIGUSR2: drained")
            self.assertEqual(drains(srv.scrape()), {"operator": 1, "leaving": 0, "stopping": 0})
            srv.signal(signal.SIGUSR1)
            srv.wait_log("SIGUSR1: ready again")
            self.assertEqual(drains(srv.scrape()), {"operator": 0, "leaving": 0, "stopping": 0})
            srv.signal(signal.SIGTERM)
            srv.wait_log("leaving:")
            self.assertEqual(drains(srv.scrape()), {"operator": 0, "leaving": 1, "stopping": 0})
            srv.wait_log("shutting down")
            self.assertEqual(drains(srv.scrape()), {"operator": 0, "leaving": 0, "stopping": 1})

    def test_every_socket_it_binds_listens_with_listen_backlog(self):
        """HAProxy's checks of many load balancers, and scrapes, arrive in bursts as
        connections do: the agent and metrics sockets get listen.backlog too (a
        listening socket's Send-Q in ss is its backlog)."""
        with MetricsServer("--agent", "--agent-port", "0", "--backlog", "300") as srv:
            ports = {"listen": srv.port, "agent": agent_port(srv), "metrics": srv.metrics_port}
            out = subprocess.run(["ss", "-ltnH"], capture_output=True, text=True, check=True).stdout
            for name, port in ports.items():
                rows = [r.split() for r in out.splitlines() if r.split()[3].endswith(":%d" % port)]
                self.assertEqual(len(rows), 1, (name, out))
                self.assertEqual(rows[0][2], "300", (name, rows[0]))

    def test_what_the_checker_sent_is_read_so_the_close_is_clean(self):
        """HAProxy's agent-send: bytes the checker sent before the answer are read,
        so the close is a FIN after the line rather than a reset (which over a
        real network can destroy the line)."""
        with Server("--agent", "--agent-port", "0") as srv:
            port = agent_port(srv)
            for sent in (b"hello\n", b"x" * 3000):
                # The loop is stopped while the peer connects and sends: the bytes are
                # in the socket before the accept, whatever the scheduling.
                with srv.stopped(settle=0.1):
                    s = socket.create_connection(("127.0.0.1", port), timeout=5)
                    s.sendall(sent)
                self.assertEqual(read_to_eof(s), b"ready up 100%\n", sent[:8])

    def test_weight_falls_under_load_and_never_reaches_zero(self):
        with Server("--agent", "--agent-port", "0", "--workers", "1", "--queue-size", "50",
                    "--queue-timeout-ms", "100") as srv:
            port = agent_port(srv)
            stop = threading.Event()

            def flood():
                s = srv.connect()
                r = LineReader(s)
                while not stop.is_set():
                    s.sendall(b"SLEEP 20\n" * 20)
                    try:
                        r.lines(20, timeout=10)
                    except Exception:
                        return

            threads = [threading.Thread(target=flood) for _ in range(4)]
            for t in threads:
                t.start()
            try:
                weights = []
                deadline = time.monotonic() + 12
                while time.monotonic() < deadline:
                    line = agent_line(port)
                    m = re.fullmatch(r"ready up (\d+)%\n", line)
                    self.assertIsNotNone(m, line)
                    weights.append(int(m.group(1)))
                    if weights[-1] <= 30:
                        break
                    time.sleep(0.5)
                self.assertLessEqual(min(weights), 30, weights)
                self.assertGreaterEqual(min(weights), 1, weights)
            finally:
                stop.set()
                for t in threads:
                    t.join(15)

    def test_a_refusal_by_max_wait_counts_as_busy(self):
        # pool.max_wait_ms answers ERR server busy too: it sets the pressure to 1
        # as a refusal for want of space does, so the weight falls all the same.
        with Server("--agent", "--agent-port", "0", "--workers", "1", "--cheap-workers", "0",
                    "--max-wait-ms", "20") as srv:
            port = agent_port(srv)
            stop = threading.Event()
            busy = []

            def client():
                s = srv.connect()
                r = LineReader(s)
                while not stop.is_set():
                    s.sendall(b"SLEEP 100\nSLEEP 1\n")  # the second waits 100 ms, over 20
                    busy.extend(l for l in r.lines(2, timeout=10) if l == "ERR server busy")

            t = threading.Thread(target=client)
            t.start()
            try:
                weights = []
                deadline = time.monotonic() + 12
                while time.monotonic() < deadline:
                    m = re.fullmatch(r"ready up (\d+)%\n", agent_line(port))
                    weights.append(int(m.group(1)))
                    if weights[-1] <= 10:
                        break
                    time.sleep(0.5)
                self.assertLessEqual(min(weights), 10, weights)
                self.assertGreater(len(busy), 0)
            finally:
                stop.set()
                t.join(15)

    def test_a_stuck_worker_makes_the_host_ready_down_until_it_ends(self):
        # A busy host keeps its weight above 0; a worker past the stall
        # threshold takes it out ("ready down"), and it comes back by itself.
        with Server("--agent", "--agent-port", "0", "--workers", "1",
                    "--stall-timeout-ms", "1000", "--max-sleep-ms", "60000") as srv:
            port = agent_port(srv)
            self.assertEqual(agent_line(port), "ready up 100%\n")
            a = srv.connect()
            ra = LineReader(a)
            a.sendall(b"SLEEP 3500\n")
            t0 = time.monotonic()
            line = wait_until(lambda: agent_line(port) == "ready down\n", 10, step=0.1)
            self.assertTrue(line, "never ready down while the worker was stuck")
            self.assertGreaterEqual(time.monotonic() - t0, 0.9)  # not before the threshold
            self.assertEqual(ra.line(timeout=10), "OK 3500")
            line = wait_until(lambda: agent_line(port).startswith("ready up "), 5, step=0.1)
            self.assertTrue(line, "still not ready up once the worker was done")

    def test_graceful_leave(self):
        with Server("--agent", "--agent-port", "0", "--drain-s", "2",
                    "--log-level", "debug") as srv:
            port = agent_port(srv)
            a = srv.connect()
            ra = LineReader(a)
            self.assertEqual(request(a, ra, "ECHO before"), "OK before")
            t0 = time.monotonic()
            srv.signal(signal.SIGTERM)
            srv.wait_log("leaving")
            self.assertEqual(agent_line(port), "drain\n")
            # Still serving; the connection closes right after its reply.
            self.assertEqual(request(a, ra, "ECHO during"), "OK during")
            a.settimeout(5)
            self.assertEqual(a.recv(10), b"")
            b = srv.connect()
            self.assertEqual(request(b, LineReader(b), "ECHO new"), "OK new")
            self.assertEqual(srv.proc.wait(15), 0)
            took = time.monotonic() - t0
            self.assertGreaterEqual(took, 1.9)
            self.assertLess(took, 8)
            self.assertIn("closed between requests", srv.log())

    def test_the_agent_answers_drain_during_a_shutdown_without_a_drain_period(self):
        # Without shutdown.drain_s there is no leave: the shutdown starts at
        # SIGTERM and waits for the running requests.  The agent still
        # answers drain meanwhile, so that the balancer sends nothing new to
        # a host that only finishes what it has.
        with MetricsServer("--agent", "--agent-port", "0", "--workers", "1",
                           "--shutdown-timeout-s", "10") as srv:
            port = agent_port(srv)
            a = srv.connect()
            a.sendall(b"SLEEP 3000\n")
            self.assertTrue(wait_until(lambda: srv.pool_state()[0] == 1, 10))  # the SLEEP runs
            srv.signal(signal.SIGTERM)
            srv.wait_log("shutting down; answering")
            self.assertEqual(agent_line(port), "drain\n")
            self.assertEqual(srv.proc.poll(), None, "the shutdown did not wait for the SLEEP")
            self.assertEqual(LineReader(a).line(timeout=10), "OK 3000")
            self.assertEqual(srv.proc.wait(10), 0)

    def test_the_leave_tells_systemd_it_is_stopping(self):
        # The leave is the shutdown's first part: STOPPING=1 and a STATUS
        # that says so at its start, not when the drain ends.
        from test_systemd import Notify
        notify = Notify()
        self.addCleanup(notify.close)
        with Server("--drain-s", "3", env={"NOTIFY_SOCKET": notify.path}) as srv:
            notify.wait_for(r"^READY=1")
            t0 = time.monotonic()
            srv.signal(signal.SIGTERM)
            notify.wait_for(r"^STOPPING=1", timeout=5)
            self.assertLess(time.monotonic() - t0, 1.5)
            notify.wait_for(r"^STATUS=leaving: workers 0/", timeout=5)
            notify.wait_for(r"^STATUS=shutting down: workers 0/", timeout=10)
            self.assertGreaterEqual(time.monotonic() - t0, 2.5)
            self.assertEqual(srv.proc.wait(10), 0)

    def test_second_sigterm_cuts_the_leave_short(self):
        with Server("--drain-s", "20", "--stop-timeout-s", "40") as srv:
            srv.signal(signal.SIGTERM)
            srv.wait_log("leaving")
            t0 = time.monotonic()
            srv.signal(signal.SIGTERM)
            self.assertEqual(srv.proc.wait(10), 0)
            self.assertLess(time.monotonic() - t0, 5)

    def test_the_shutdown_after_a_cut_leave_still_waits_for_work(self):
        # The second SIGTERM ends the leave; the shutdown that follows waits
        # shutdown.timeout_s for the running and queued requests, also past
        # the moment the leave would have ended (2 s here).
        with MetricsServer("--drain-s", "2", "--shutdown-timeout-s", "10", "--stop-timeout-s", "40",
                           "--workers", "1") as srv:
            a, b = srv.connect(), srv.connect()
            a.sendall(b"SLEEP 5000\n")
            self.assertTrue(wait_until(lambda: srv.pool_state()[:2] == (1, 0), 10))  # the one worker runs it
            b.sendall(b"SLEEP 100\n")
            self.assertTrue(wait_until(lambda: srv.pool_state()[:2] == (1, 1), 10))  # the next one is queued
            srv.signal(signal.SIGTERM)
            srv.wait_log("leaving")
            srv.signal(signal.SIGTERM)
            self.assertEqual(LineReader(a).line(timeout=8), "OK 5000")
            self.assertEqual(LineReader(b).line(timeout=8), "OK 100")
            self.assertEqual(srv.proc.wait(10), 0)
            self.assertIn("ending the leave now", srv.log())
            self.assertNotIn("cutting the shutdown short", srv.log())

    def test_out_of_fds_the_agent_socket_does_not_spin(self):
        nofile = 64
        with Server("--agent", "--agent-port", "0", "--max-connections", "1000") as srv:
            port = agent_port(srv)
            resource.prlimit(srv.proc.pid, resource.RLIMIT_NOFILE, (nofile, nofile))
            # Client connections take every fd the server has left.
            conns = [srv.connect() for _ in range(nofile + 10)]
            for c in conns:
                c.sendall(b"ECHO x\n")
            self.assertTrue(wait_until(lambda: srv.fds() >= nofile, 5))
            check = socket.create_connection(("127.0.0.1", port), timeout=10)
            self.addCleanup(check.close)
            time.sleep(0.3)
            cpu0 = cpu_seconds(srv.proc.pid)
            time.sleep(2.0)
            cpu = cpu_seconds(srv.proc.pid) - cpu0
            self.assertLess(cpu, 0.5, "%.2f s of CPU in 2 s: the agent socket spins" % cpu)
            log = srv.log()
            self.assertEqual(len(re.findall(r"agent check on \S+: accept: Too many open files", log)), 1, log)
            # With fds free again, the waiting check is answered at the next tick.
            for c in conns:
                c.close()
            self.assertRegex(read_to_eof(check).decode(), r"^ready up \d+%\n$")
            self.assertRegex(agent_line(port), r"^ready up \d+%\n$")

    def test_drain_must_fit_the_stop_timeout(self):
        r = subprocess.run([TPSERVER, "--config", "/dev/null", "--drain-s", "25", "-t"],
                           capture_output=True, text=True, timeout=10)
        self.assertEqual(r.returncode, 78, r.stdout + r.stderr)
        self.assertIn("must stay under shutdown.stop_timeout_s (30)", r.stdout + r.stderr)
        r = subprocess.run([TPSERVER, "--config", "/dev/null", "--drain-s", "19", "-t", "-q"],
                           capture_output=True, text=True, timeout=10)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def test_the_stop_ends_within_the_stop_timeout(self):
        # drain 2 + timeout 3 fit under a stop timeout of 6; a client that takes no
        # replies still makes the process wait for the forced close's grace (1 s)
        # after the deadline, which is shortened so that it is gone before systemd
        # would kill it, 6 s after SIGTERM.
        with Server("--drain-s", "2", "--shutdown-timeout-s", "3", "--stop-timeout-s", "6",
                    "--max-sleep-ms", "20000") as srv:
            sleeper = srv.connect()
            sleeper.sendall(b"SLEEP 15000\n")
            deaf = srv.connect()
            deaf.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            deaf.setblocking(False)
            end = time.monotonic() + 1.5
            while time.monotonic() < end:  # until its replies fill every buffer, and more
                try:
                    deaf.send((b"ECHO " + b"x" * 1000 + b"\n") * 50)
                except BlockingIOError:
                    time.sleep(0.01)
            t0 = time.monotonic()
            srv.signal(signal.SIGTERM)
            self.assertEqual(srv.proc.wait(15), 0)
            took = time.monotonic() - t0
            self.assertLess(took, 6.0)
            self.assertGreaterEqual(took, 4.9)  # the requests' 3 s after the 2 s leave
            self.assertEqual(LineReader(sleeper).line(timeout=5), "ERR server shutting down")

    def test_agent_socket_from_systemd(self):
        if not shutil.which("systemd-socket-activate"):
            self.skipTest("systemd-socket-activate not installed")
        data, agent = tplib.free_ports(2)
        log = tempfile.TemporaryFile()
        self.addCleanup(log.close)
        env = dict(os.environ)
        env.pop("LISTEN_FDS", None)
        env.pop("NOTIFY_SOCKET", None)
        proc = subprocess.Popen(["systemd-socket-activate", "-l", "127.0.0.1:%d" % data, "-l",
                                 "127.0.0.1:%d" % agent, "--fdname=tpserver:agent", TPSERVER,
                                 "--config", "/dev/null"], stdout=log, stderr=subprocess.STDOUT, env=env)
        self.addCleanup(lambda: (proc.kill(), proc.wait()))
        deadline = time.monotonic() + 10
        while True:
            try:
                s = socket.create_connection(("127.0.0.1", data), timeout=10)
                self.addCleanup(s.close)
                break
            except ConnectionRefusedError:
                self.assertLess(time.monotonic(), deadline)
                time.sleep(0.05)
        self.assertEqual(request(s, LineReader(s), "ECHO data"), "OK data")
        self.assertEqual(agent_line(agent), "ready up 100%\n")
        ok = wait_until(lambda: (log.seek(0), b"agent check on 127.0.0.1:%d (socket from systemd)" % agent
                                 in log.read())[1], 10)
        self.assertTrue(ok)


if __name__ == "__main__":
    tplib.main()
