# SPDX-License-Identifier: MIT
"""Integration tests of the configuration file against the real tpserver:
the reproductions of issue 11, defects 3 and 4.  An integer hidden behind a
comment is still checked against its text, and an @include of a directory
or a FIFO is refused with exit 78 and the including file's name and line,
both by `tpserver -t` and by a running daemon on SIGHUP (which keeps
serving, an in-flight SLEEP included)."""
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest

import tplib
from metricslib import MetricsServer
from tplib import CHEAP_WORKERS, TPSERVER, LineReader, Server, assert_threads, request, wait_until

# File text, and the error expected after "FILE:" (issue 11, defect 4).
HIDDEN_INTEGERS = [
    ("listen = { port = /**/ 4294976296; };\n",
     "1: listen.port: 4294976296 is out of range (0 to 65535)"),
    ("pool = { workers /* */ = 4294967297; };\n",
     "1: pool.workers: 4294967297 is out of range (1 to 1024)"),
    ("pool = {\n  workers = # c\n4294967297;\n};\n",
     "2: pool.workers: 4294967297 is out of range (1 to 1024)"),
]


class ConfigFile(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory(prefix="tpserver-conf-")
        self.addCleanup(self.dir.cleanup)
        os.chmod(self.dir.name, 0o755)  # as /etc: -t run by root warns of what others cannot read

    def path(self, name):
        return os.path.join(self.dir.name, name)

    def write(self, name, text):
        with open(self.path(name), "w") as f:
            f.write(text)
        return self.path(name)

    def check(self, conf):
        """tpserver -t -c conf, run in the directory of the files (libconfig
        opens an @include relative to the working directory)."""
        start = time.monotonic()
        env = {k: v for k, v in os.environ.items() if k not in ("LISTEN_FDS", "LISTEN_PID", "INVOCATION_ID")}
        p = subprocess.run([TPSERVER, "-t", "-c", conf], cwd=self.dir.name, stdin=subprocess.DEVNULL,
                           capture_output=True, text=True, timeout=20, env=env)
        return p, time.monotonic() - start

    def test_integer_behind_a_comment_is_refused(self):
        for text, want in HIDDEN_INTEGERS:
            with self.subTest(text=text):
                conf = self.write("hidden.conf", text)
                p, _ = self.check(conf)
                self.assertEqual(p.returncode, 78, p.stdout + p.stderr)
                self.assertEqual(p.stderr.strip(), "tpserver: %s:%s" % (conf, want))

    def test_a_long_address_list_is_quoted_whole(self):
        bad = "x" * 400
        conf = self.write("allow.conf", 'listen = { allow = ["%s"]; };\n' % bad)
        p, _ = self.check(conf)
        self.assertEqual(p.returncode, 78, p.stdout + p.stderr)
        self.assertIn('listen.allow: invalid address list "%s" (expected up to ' % bad, p.stderr)
        self.assertTrue(p.stderr.rstrip().endswith("2001:db8::/32)"), p.stderr)

    def test_an_address_string_is_read_whole(self):
        # A string of 2 000 bytes and more (blanks between prefixes) is not cut:
        # cut, "10.0.0.0/16" read as "10.0.0.0/1" let half the addresses in.
        conf = self.write("allow.conf", 'listen = { allow = "10.0.0.1,%s10.0.0.0/16"; '
                          'proxy_trusted = "%s10.0.0.2"; };\n' % (" " * 2060, " " * 2100))
        p, _ = self.check(conf)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertRegex(p.stdout, r'allow = \[ "10\.0\.0\.1", "10\.0\.0\.0/16" \];')
        self.assertRegex(p.stdout, r'proxy_trusted = \[ "10\.0\.0\.2" \];')
        conf = self.write("allow.conf", 'listen = { allow = "%s"; };\n' % ", ".join(["10.0.0.1"] * 33))
        p, _ = self.check(conf)
        self.assertEqual(p.returncode, 78, p.stdout + p.stderr)
        self.assertIn("listen.allow: invalid address list", p.stderr)

    def test_an_error_is_one_line_whatever_the_value_holds(self):
        conf = self.write("nl.conf", 'log = { level = "x\ny\x01z"; };\n')
        p, _ = self.check(conf)
        self.assertEqual(p.returncode, 78, p.stdout + p.stderr)
        self.assertEqual(p.stderr, 'tpserver: %s:1: log.level: invalid value "x?y?z" (expected debug, info, '
                         'notice, warning or error)\n' % conf)

    def test_a_last_comment_without_a_line_end_and_a_byte_order_mark(self):
        # What editors write: neither is a syntax error, and line numbers stay true.
        for text in ("pool = { workers = 3; };\n# the end", "pool = { workers = 3; }; // the end",
                     "\ufeffpool = { workers = 3; };\n", "\ufeff# c\npool = { workers = 3; };"):
            conf = self.write("editor.conf", text)
            p, _ = self.check(conf)
            self.assertEqual(p.returncode, 0, (text, p.stderr))
            self.assertRegex(p.stdout, r"(?m)^\s*workers = 3;.*from %s:%d$" % (re.escape(conf), 2 if "# c" in text else 1))
        conf = self.write("editor.conf", "\ufeff# c\npool = { workerz = 3; }; # z")
        p, _ = self.check(conf)
        self.assertEqual(p.stderr.strip(), "tpserver: %s:2: pool.workerz: unknown setting" % conf)

    def test_a_stall_timeout_not_above_max_sleep_is_warned_about(self):
        conf = self.write("stall.conf", "limits = { max_sleep_ms = 10000; stall_timeout_ms = 10000; };\n")
        p, _ = self.check(conf)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("warning: limits.stall_timeout_ms (10000) is not above limits.max_sleep_ms (10000)",
                      p.stderr)
        for text in ("limits = { max_sleep_ms = 10000; stall_timeout_ms = 10001; };\n",
                     "limits = { max_sleep_ms = 10000; stall_timeout_ms = 0; };\n"):
            p, _ = self.check(self.write("stall.conf", text))
            self.assertEqual((p.returncode, p.stderr), (0, ""), text)
        # At start and at a reload that sets it, in the log.
        conf = self.write("stall.conf", "limits = { stall_timeout_ms = 500; };\n")
        with Server("--config", conf) as srv:
            srv.wait_log(r"(?m)warning: limits\.stall_timeout_ms \(500\) is not above limits\.max_sleep_ms")
            self.write("stall.conf", "limits = { stall_timeout_ms = 0; };\n")
            srv.signal(signal.SIGHUP)
            srv.wait_log(r"configuration reloaded")
            self.write("stall.conf", "limits = { stall_timeout_ms = 700; };\n")
            srv.signal(signal.SIGHUP)
            srv.wait_log(r"stall_timeout_ms \(700\) is not above")
            self.assertEqual(len(re.findall(r"is not above limits\.max_sleep_ms", srv.log())), 2)

    def test_a_prefix_with_host_bits_is_warned_about(self):
        # It matches its whole network, which may not be what was meant: -t, a start and a reload say
        # so of every such prefix, as written.
        conf = self.write("allow.conf", 'listen = {\n  allow = ["127.0.0.0/8", "10.1.2.3/16", "192.168.1.7/24"];\n'
                                        '  proxy_trusted = ["2001:DB8:0:0::1/32", "10.1.2.3/0"];\n};\n')
        p, _ = self.check(conf)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("warning: listen.allow: 10.1.2.3/16 is 10.1.0.0/16, 192.168.1.7/24 is 192.168.1.0/24; "
                      "listen.proxy_trusted: 2001:DB8:0:0::1/32 is 2001:db8::/32, 10.1.2.3/0 is 0.0.0.0/0 "
                      "(every IPv4 address) (address bits set past a prefix's length: it matches its whole "
                      "network)", p.stderr)
        p, _ = self.check(self.write("allow.conf", 'listen = { allow = "127.0.0.0/8, 10.1.0.0/16"; };\n'))
        self.assertEqual((p.returncode, p.stderr), (0, ""))
        conf = self.write("allow.conf", 'listen = { proxy_trusted = "127.0.0.1/8"; };\n')
        with Server("--config", conf, "--allow", "127.0.0.9/8") as srv:
            srv.wait_log(r"warning: listen\.allow: 127\.0\.0\.9/8 is 127\.0\.0\.0/8; "
                         r"listen\.proxy_trusted: 127\.0\.0\.1/8 is 127\.0\.0\.0/8 \(address bits")
            s = srv.connect()  # a warning only: serving as usual
            self.assertEqual(request(s, LineReader(s), "ECHO x"), "OK x")
            self.write("allow.conf", 'listen = { proxy_trusted = "127.0.0.1/24"; };\n')
            srv.signal(signal.SIGHUP)
            srv.wait_log(r"warning: listen\.allow: 127\.0\.0\.9/8 is 127\.0\.0\.0/8; "
                         r"listen\.proxy_trusted: 127\.0\.0\.1/24 is 127\.0\.0\.0/24")

    def test_trusting_every_address_to_send_proxy_headers_is_warned_about(self):
        # With a /0 any client may name any address: fairness and the per-address cap believe it.
        conf = self.write("trust.conf", 'listen = { proxy_protocol = true; proxy_trusted = ["10.0.0.2", "::/0"]; };\n')
        p, _ = self.check(conf)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("warning: listen.proxy_trusted has ::/0, every address: any client may open with a PROXY "
                      "header naming any address", p.stderr)
        # Not without the PROXY protocol, nor for a list of real prefixes.
        for text in ('listen = { proxy_trusted = ["0.0.0.0/0"]; };\n',
                     'listen = { proxy_protocol = true; proxy_trusted = ["10.0.0.0/8", "fd00::/8"]; };\n'):
            p, _ = self.check(self.write("trust.conf", text))
            self.assertEqual((p.returncode, p.stderr), (0, ""), text)

    def test_a_shutdown_timeout_not_under_the_stop_timeout_is_warned_about(self):
        # -t says what a start says, and the stop's log line gives the deadline it keeps.
        conf = self.write("stop.conf", "shutdown = { timeout_s = 20; stop_timeout_s = 3; };\n")
        p, _ = self.check(conf)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("warning: shutdown.timeout_s (20) is not under shutdown.stop_timeout_s (3)", p.stderr)
        p, _ = self.check(self.write("stop.conf", "shutdown = { timeout_s = 2; stop_timeout_s = 3; };\n"))
        self.assertEqual((p.returncode, p.stderr), (0, ""))
        conf = self.write("stop.conf", "shutdown = { timeout_s = 20; stop_timeout_s = 3; };\n")
        with MetricsServer("--config", conf) as srv:
            srv.wait_log(r"warning: shutdown\.timeout_s \(20\) is not under shutdown\.stop_timeout_s \(3\)")
            sleeper = srv.connect()
            sleeper.sendall(b"SLEEP 8000\n")
            self.assertTrue(wait_until(lambda: srv.pool_state()[:2] == (1, 0), 10))  # the SLEEP runs
            t0 = time.monotonic()
            srv.signal(signal.SIGTERM)
            line = srv.wait_log(r"shutting down; answering 0 queued and 1 running requests, up to ([0-9.]+) s"
                                r" \(shortened to end before shutdown\.stop_timeout_s\)", group=1, cast=float)
            self.assertAlmostEqual(line, 2.0, delta=0.15)  # and the process gone by 2.5
            self.assertEqual(LineReader(sleeper).line(timeout=5), "ERR server shutting down")
            self.assertLess(time.monotonic() - t0, 3.0)
        # A deadline that fits is said as it is.
        with Server("--shutdown-timeout-s", "29") as srv:
            srv.signal(signal.SIGTERM)
            self.assertEqual(srv.proc.wait(10), 0)
            self.assertRegex(srv.log(), r"running requests, up to 29\.0 s\n")

    def test_a_file_only_root_can_read_is_warned_about(self):
        # The packaged service runs as a dynamic user: -t by root says what it could not read.
        if os.geteuid() != 0:
            self.skipTest("needs root: -t reads the files again as nobody only when run by root")
        conf = self.write("main.conf", "")
        os.mkdir(self.path("main.conf.d"))
        dropin = self.write("main.conf.d/10-local.conf", "pool = { workers = 5; };\n")
        os.chmod(dropin, 0o600)
        p, _ = self.check(conf)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("workers = 5;", p.stdout)
        self.assertEqual(p.stderr.strip(), "tpserver: warning: as an unprivileged user (the packaged service "
                         "runs as one): %s: cannot open: Permission denied" % dropin)
        os.chmod(dropin, 0o644)
        p, _ = self.check(conf)
        self.assertEqual((p.returncode, p.stderr), (0, ""))
        # Read again from / as the service is: a working directory only root
        # may enter is no reason to warn.
        private = tempfile.mkdtemp(prefix="tpserver-private-")
        self.addCleanup(os.rmdir, private)
        p = subprocess.run([TPSERVER, "-t", "-q", "-c", conf], cwd=private, capture_output=True, text=True,
                           timeout=20)
        self.assertEqual((p.returncode, p.stderr), (0, ""))

    def test_every_address_in_use_is_checked_and_named_by_its_line(self):
        conf = self.write("addr.conf", 'metrics = { enabled = true; host = "999.1.1.1"; };\n')
        p, _ = self.check(conf)
        self.assertEqual(p.returncode, 78, p.stdout + p.stderr)
        self.assertEqual(p.stderr.strip(), "tpserver: %s:1: metrics.host: cannot resolve metrics address "
                         "999.1.1.1: not a valid IPv4 or IPv6 address" % conf)
        # Not in use: not checked.
        p, _ = self.check(self.write("addr.conf", 'metrics = { enabled = false; host = "999.1.1.1"; };\n'))
        self.assertEqual(p.returncode, 0, p.stderr)
        conf = self.write("addr.conf", "# agent\nagent = {\n enabled = true;\n host = \"1.2.3.4.5\";\n};\n")
        p, _ = self.check(conf)
        self.assertEqual(p.stderr.strip(), "tpserver: %s:4: agent.host: cannot resolve agent address "
                         "1.2.3.4.5: not a valid IPv4 or IPv6 address" % conf)
        # A drop-in's value is named after the drop-in's line.
        conf = self.write("main.conf", "")
        os.mkdir(self.path("main.conf.d"))
        dropin = self.write("main.conf.d/50-net.conf", '\nlisten = { host = "10.0.0.300"; };\n')
        p, _ = self.check(conf)
        self.assertEqual(p.returncode, 78, p.stdout + p.stderr)
        self.assertEqual(p.stderr.strip(), "tpserver: %s:2: listen.host: cannot resolve listen address "
                         "10.0.0.300: not a valid IPv4 or IPv6 address" % dropin)

    def test_a_start_refuses_an_address_as_check_config_does(self):
        # Named by its line, with the same reason, before anything is bound. Not an address: exit 78.
        # Not one of this host's (192.0.2.0/24 is for documentation, no host has it): perhaps not yet
        # (a virtual address still to come up), so -t only warns and a start exits 1, which Restart= retries.
        env = {k: v for k, v in os.environ.items() if k not in ("LISTEN_FDS", "LISTEN_PID", "INVOCATION_ID")}
        for text, line, why, check_rc, start_rc in (
                ('\nlisten = {\n  host = "999.1.1.1";\n};\n', 3,
                 "listen.host: cannot resolve listen address 999.1.1.1: not a valid IPv4 or IPv6 address", 78, 78),
                ('listen = { host = "192.0.2.1"; };\n', 1,
                 "listen.host: listen address 192.0.2.1 is not one of this host's addresses", 0, 1),
                ('metrics = {\n  enabled = true;\n  host = "192.0.2.7";\n};\n', 3,
                 "metrics.host: metrics address 192.0.2.7 is not one of this host's addresses", 0, 1)):
            conf = self.write("addr.conf", text)
            want = "%s:%d: %s" % (conf, line, why)
            p, _ = self.check(conf)
            self.assertEqual(p.returncode, check_rc, p.stderr)
            self.assertIn(("tpserver: " if check_rc else "tpserver: warning: ") + want, p.stderr)
            p = subprocess.run([TPSERVER, "--config", conf, "--port", "0", "--metrics-port", "0"],
                               capture_output=True, text=True, timeout=10, env=env)
            self.assertEqual(p.returncode, start_rc, p.stderr)
            self.assertIn("error: " + want, p.stderr)
        p = subprocess.run([TPSERVER, "--config", "/dev/null", "--host", "192.0.2.1"], capture_output=True,
                           text=True, timeout=10, env=env)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn("error: the command line: listen.host: listen address 192.0.2.1 is not one of this "
                      "host's addresses", p.stderr)

    def test_a_start_passed_only_stored_fds_checks_what_it_binds(self):
        # A restart handing connections over passes stored fds (tpsNN) but no socket for requests: the
        # start binds its own, so it checks the address first, named by its line.
        if not shutil.which("systemd-socket-activate"):
            self.skipTest("systemd-socket-activate not installed")
        conf = self.write("addr.conf", 'listen = { host = "192.0.2.1"; };\n')
        port = tplib.free_ports(1)[0]
        env = {k: v for k, v in os.environ.items() if k not in ("LISTEN_FDS", "NOTIFY_SOCKET", "INVOCATION_ID")}
        proc = subprocess.Popen(["systemd-socket-activate", "-l", "127.0.0.1:%d" % port, "--fdname=tps00",
                                 TPSERVER, "--config", conf], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                env=env)
        self.addCleanup(lambda: (proc.kill(), proc.wait()))
        deadline = time.monotonic() + 10
        while True:  # the program starts on the first connection
            try:
                socket.create_connection(("127.0.0.1", port), timeout=10).close()
                break
            except ConnectionRefusedError:
                self.assertLess(time.monotonic(), deadline)
                time.sleep(0.05)
        out = proc.communicate(timeout=10)[0].decode()
        self.assertEqual(proc.returncode, 1, out)
        self.assertIn("error: %s:1: listen.host: listen address 192.0.2.1 is not one of this host's addresses"
                      % conf, out)

    def test_a_name_dns_gives_no_answer_for_yet_is_retried(self):
        # DNS not up yet (at boot, say): the resolver answers "try again" (EAI_AGAIN). Not the file's
        # fault: -t warns, a start exits 1, which Restart= retries, where 78 would stop it for good. The
        # resolver is the real one, pointed (in a mount namespace of its own) at a port with no server.
        if os.geteuid() != 0 or not shutil.which("unshare"):
            self.skipTest("needs root and unshare for a resolv.conf of its own")
        rc = self.write("resolv.conf", "nameserver 127.0.0.1\noptions timeout:1 attempts:1\n")
        conf = self.write("dns.conf", 'listen = { host = "dns-not-up.example"; };\n')
        env = {k: v for k, v in os.environ.items() if k not in ("LISTEN_FDS", "LISTEN_PID", "INVOCATION_ID")}
        want = ("%s:1: listen.host: cannot resolve listen address dns-not-up.example: Temporary failure in "
                "name resolution" % conf)
        ns = ["unshare", "-m", "sh", "-c", 'mount --bind "$0" /etc/resolv.conf && exec "$@"', rc]
        probe = subprocess.run(ns + ["true"], capture_output=True, text=True, timeout=20)
        if probe.returncode != 0:
            self.skipTest("no mount namespace here: %s" % probe.stderr.strip())
        for args, rc_want, said in ((["-t", "-q"], 0, "warning: " + want), (["--port", "0"], 1, "error: " + want)):
            p = subprocess.run(ns + [TPSERVER, "--config", conf, *args], capture_output=True, text=True, timeout=20,
                               env=env)
            self.assertEqual(p.returncode, rc_want, p.stderr)
            self.assertIn(said, p.stderr)

    def test_a_long_path_is_named_whole_in_the_origins(self):
        deep = os.path.join(self.dir.name, *["o" * 250] * 4)  # some 1 000 bytes
        os.makedirs(deep)
        conf = os.path.join(deep, "tpserver.conf")
        with open(conf, "w") as f:
            f.write("pool = { workers = 3; };\n")
        p, _ = self.check(conf)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertRegex(p.stdout, r"(?m)^\s*workers = 3;.*from %s:1$" % re.escape(conf))

    def test_a_refusal_too_long_to_print_whole_says_it_is_cut(self):
        # Three origins of some 3 400 bytes each do not fit a message: it ends after the whole entries that
        # fit, with "...)", not in the middle of a name.
        deep = os.path.join(self.dir.name, *["o" * 250] * 13)
        os.makedirs(os.path.join(deep, "m.conf.d"))
        conf = os.path.join(deep, "m.conf")
        for path, text in ((conf, "shutdown = { timeout_s = 10; };\n"),
                           (os.path.join(deep, "m.conf.d", "1" + "a" * 200 + ".conf"), "shutdown = { drain_s = 25; };\n"),
                           (os.path.join(deep, "m.conf.d", "2" + "b" * 200 + ".conf"),
                            "shutdown = { stop_timeout_s = 30; };\n")):
            with open(path, "w") as f:
                f.write(text)
        p, _ = self.check(conf)
        self.assertEqual(p.returncode, 78, p.stdout + p.stderr)
        self.assertIn("must stay under shutdown.stop_timeout_s (30)", p.stderr)
        self.assertTrue(p.stderr.endswith("; ...)\n"), p.stderr[-200:])
        self.assertRegex(p.stderr, r"shutdown\.drain_s at [^;]*/1a+\.conf:1; ")

    def test_a_group_written_twice_is_named_with_its_first_line(self):
        # libconfig says "duplicate setting name"; the message names the
        # setting and where it was set first: here a pool group added at the
        # end of the shipped file, which has one already.
        shipped = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "conf",
                               "tpserver.conf")
        with open(shipped) as f:
            text = f.read()
        lines = text.splitlines()
        first = next(i for i, l in enumerate(lines, 1) if l.startswith("pool = {"))
        conf = self.write("twice.conf", text + "pool = { workers = 32; };\n")
        p, _ = self.check(conf)
        self.assertEqual(p.returncode, 78, p.stdout + p.stderr)
        self.assertEqual(p.stderr.strip(),
                         "tpserver: %s:%d: pool: already set on line %d" % (conf, len(lines) + 1, first))
        # A setting twice in its group; the first in an included file.
        self.write("inc.conf", "pool = {\n  workers = 2;\n};\n")
        conf = self.write("twice.conf", "@include \"inc.conf\"\npool = { queue_size = 5; };\n")
        p, _ = self.check(conf)
        self.assertEqual(p.stderr.strip(), "tpserver: %s:2: pool: already set in inc.conf:1" % conf)
        conf = self.write("twice.conf", "pool = {\n  workers = 2;\n  workers = 3;\n};\n")
        p, _ = self.check(conf)
        self.assertEqual(p.stderr.strip(), "tpserver: %s:3: pool.workers: already set on line 2" % conf)

    def test_every_file_is_held_to_one_mib(self):
        # The main file, a drop-in and an include alike: 1 MiB is read, a byte more is refused.
        def sized(n):
            head = "pool = { workers = 3; };\n"
            return head + "#" * (n - len(head) - 1) + "\n"
        main = self.path("main.conf")
        os.mkdir(main + ".d")
        for where, name, conf in (("main", "main.conf", main), ("drop-in", "main.conf.d/10-big.conf", main),
                                  ("include", "inc.conf", self.write("outer.conf", '@include "inc.conf"\n'))):
            if where == "drop-in":
                self.write("main.conf", "")
            for n, rc in ((1 << 20, 0), ((1 << 20) + 1, 78)):
                with self.subTest(where=where, size=n):
                    self.write(name, sized(n))
                    p, _ = self.check(conf)
                    self.assertEqual(p.returncode, rc, p.stderr)
                    if rc:
                        self.assertIn("larger than 1048576 bytes", p.stderr)
            os.unlink(self.path(name))

    def test_include_of_a_directory_is_refused(self):
        os.mkdir(self.path("adir"))
        conf = self.write("inc.conf", "pool = { workers = 2; };\n\n@include \"adir\"\n")
        p, _ = self.check(conf)
        self.assertEqual(p.returncode, 78, p.stdout + p.stderr)
        self.assertEqual(p.stderr.strip(), "tpserver: %s:3: @include \"adir\": is a directory" % conf)
        self.assertNotIn("flex", p.stdout + p.stderr)

    def test_nested_include_of_a_fifo_is_refused_without_blocking(self):
        os.mkfifo(self.path("fifo"))
        self.write("inner.conf", "# nothing\n@include \"fifo\"\n")
        conf = self.write("outer.conf", "/*\n@include \"fifo\"\n*/\npool = {\n  @include \"inner.conf\"\n};\n")
        p, took = self.check(conf)
        self.assertEqual(p.returncode, 78, p.stdout + p.stderr)
        self.assertEqual(p.stderr.strip(), "tpserver: inner.conf:2: @include \"fifo\": not a regular file")
        self.assertLess(took, 10)

    def test_integer_in_an_included_file_is_checked(self):
        self.write("pool.conf", "workers = /* here */ 4294967297;\n")
        conf = self.write("main.conf", "pool = {\n  @include \"pool.conf\"\n};\n")
        p, _ = self.check(conf)
        self.assertEqual(p.returncode, 78, p.stdout + p.stderr)
        self.assertEqual(p.stderr.strip(),
                         "tpserver: pool.conf:1: pool.workers: 4294967297 is out of range (1 to 1024)")
        self.write("pool.conf", "workers = /* here */ 3;\n")
        p, _ = self.check(conf)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertRegex(p.stdout, r"(?m)^  workers = 3; # from pool.conf:1$")

    def test_reload_with_a_directory_include_keeps_serving(self):
        os.mkdir(self.path("adir"))
        conf = self.write("live.conf", "pool = { workers = 2; };\n")
        with Server("--config", conf) as srv:
            s = srv.connect()
            r = LineReader(s)
            s.sendall(b"SLEEP 500\n")  # in flight across the refused reload
            self.write("live.conf", "pool = { workers = 3; };\n@include \"%s\"\n" % self.path("adir"))
            srv.signal(signal.SIGHUP)
            log = srv.wait_log(r"reload failed.*")
            self.assertIn("%s:2: @include \"%s\": is a directory" % (conf, self.path("adir")), log)
            self.assertEqual(r.line(), "OK 500")
            self.assertEqual(request(s, r, "ECHO alive"), "OK alive")
            self.assertIsNone(srv.proc.poll())
            assert_threads(self, srv, 2 + 1 + CHEAP_WORKERS)
            self.assertEqual(srv.stop(), 0)


if __name__ == "__main__":
    tplib.main()
