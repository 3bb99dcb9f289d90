# SPDX-License-Identifier: MIT
"""Socket activation without a booted systemd: tpserver started by
systemd-socket-activate serves the socket it is passed and refuses one it
cannot serve.  Skipped, and reported by ctest as skipped, where
systemd-socket-activate is not installed."""
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest

import tplib
from test_systemd import TPSERVER, Notify
from tplib import LineReader, free_port, free_ports, request


class SocketActivation(unittest.TestCase):
    def start(self, *extra, sa_args=()):
        if not shutil.which("systemd-socket-activate"):
            self.skipTest("systemd-socket-activate not installed")
        self.port = free_port()
        self.notify = Notify()
        self.log = tempfile.TemporaryFile()
        env = dict(os.environ, NOTIFY_SOCKET=self.notify.path)
        env.pop("LISTEN_FDS", None)
        self.proc = subprocess.Popen(
            ["systemd-socket-activate", "-l", "127.0.0.1:%d" % self.port, *sa_args,
             "-E", "NOTIFY_SOCKET", TPSERVER, "--config", "/dev/null", "--port", "1", *extra],
            stdout=self.log, stderr=subprocess.STDOUT, env=env)
        self.addCleanup(self.cleanup)
        # systemd-socket-activate listens before it execs the daemon.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                return socket.create_connection(("127.0.0.1", self.port), timeout=10)
            except ConnectionRefusedError:
                time.sleep(0.05)
        self.fail("systemd-socket-activate did not listen")

    def cleanup(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.notify.close()

    def output(self):
        self.log.seek(0)
        return self.log.read().decode(errors="replace")

    def test_serves_on_the_passed_socket(self):
        s = self.start()
        r = LineReader(s)
        self.assertEqual(request(s, r, "ECHO activated"), "OK activated")
        self.assertEqual(request(s, r, "SLEEP 20"), "OK 20")
        self.notify.wait_for(r"READY=1")
        out = self.output()
        self.assertIn("socket from systemd", out)
        self.assertIn("127.0.0.1:%d" % self.port, out)
        # --port 1 was ignored: nothing could have bound it without root anyway.
        s2 = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        self.assertEqual(request(s2, LineReader(s2), "ECHO second"), "OK second")
        self.proc.send_signal(signal.SIGTERM)
        self.assertEqual(self.proc.wait(10), 0)

    def test_endpoints_turned_on_without_their_sockets_are_named(self):
        # metrics.enabled and agent.enabled bind nothing under socket
        # activation (the sandbox could not): the log says which socket
        # unit would serve them, and nothing listens on their ports.
        port = free_port()
        s = self.start("--metrics", "--agent", "--agent-port", str(port))
        self.assertEqual(request(s, LineReader(s), "ECHO x"), "OK x")
        self.notify.wait_for(r"READY=1")
        out = self.output()
        self.assertIn('notice: metrics.enabled is set but systemd passed no "metrics" socket: enable '
                      'tpserver-metrics.socket', out)
        self.assertIn('notice: agent.enabled is set but systemd passed no "agent" socket: enable '
                      'tpserver-agent.socket', out)
        with self.assertRaises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=5).close()

    def test_a_reload_says_the_bound_settings_are_ignored(self):
        # Not that a restart would apply them: under activation it binds nothing itself.
        with tempfile.NamedTemporaryFile("w", suffix=".conf", delete=False) as f:
            f.write("pool = { workers = 2; };\n")
        self.addCleanup(os.unlink, f.name)
        s = self.start("--config", f.name)
        self.notify.wait_for(r"READY=1")
        with open(f.name + ".new", "w") as new:
            new.write("metrics = { enabled = true; port = %d; };\nagent = { port = %d; };\n"
                      "pool = { workers = 3; };\n" % tuple(free_ports(2)))
        os.rename(f.name + ".new", f.name)
        self.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while "configuration reloaded" not in self.output() and time.monotonic() < deadline:
            time.sleep(0.05)
        out = self.output()
        self.assertIn("configuration reloaded: 3 workers", out)
        for said in ("metrics.enabled is ignored under socket activation",
                     "metrics.port is ignored under socket activation",
                     "agent.port is ignored under socket activation"):
            self.assertIn(said, out)
        self.assertNotIn("a restart is needed", out)
        self.assertEqual(request(s, LineReader(s), "ECHO still"), "OK still")
        s.close()

    def test_refuses_a_datagram_socket(self):
        if not shutil.which("systemd-socket-activate"):
            self.skipTest("systemd-socket-activate not installed")
        port = free_port()
        self.notify = Notify()
        self.log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            ["systemd-socket-activate", "--datagram", "-l", "127.0.0.1:%d" % port, TPSERVER,
             "--config", "/dev/null"], stdout=self.log, stderr=subprocess.STDOUT)
        self.addCleanup(self.cleanup)
        # The first datagram starts tpserver; one sent before
        # systemd-socket-activate has bound the port is lost, so send again
        # until tpserver has started and exited.
        deadline = time.monotonic() + 10
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as d:
            while self.proc.poll() is None and time.monotonic() < deadline:
                d.sendto(b"ECHO x\n", ("127.0.0.1", port))
                try:
                    self.proc.wait(0.3)
                except subprocess.TimeoutExpired:
                    pass
        self.assertEqual(self.proc.wait(10), 78)
        self.assertIn("not a listening TCP socket", self.output())


if __name__ == "__main__":
    tplib.main(verbosity=2, warnings="ignore")
