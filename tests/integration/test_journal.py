#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""What the journal and systemd are told: error lines under journald,
native entries and their MESSAGE_IDs, notices (the overloaded and refused
lines once per interval), and --check-config refusing what a start
refuses."""
import os
import shutil
import re
import signal
import socket
import subprocess
import struct
import tempfile
import time
import unittest

import tplib
from metricslib import MetricsServer
from tplib import TPSERVER, ConfFile, LineReader, Server, request, wait_until


def fields_of(entry):
    """A journal entry's fields, by name."""
    return dict(line.split("=", 1) for line in entry.splitlines() if "=" in line)


class CheckConfigUnderJournal(unittest.TestCase):
    def run_check(self, conf, journal):
        with tempfile.TemporaryFile() as err:
            env = dict(os.environ)
            env.pop("JOURNAL_STREAM", None)
            if journal:
                st = os.fstat(err.fileno())
                env["JOURNAL_STREAM"] = "%d:%d" % (st.st_dev, st.st_ino)
            p = subprocess.run([TPSERVER, "--check-config", "--quiet", "--config", conf], stderr=err,
                               env=env, timeout=10)
            err.seek(0)
            return p.returncode, err.read().decode()

    def test_errors_reach_the_journal_at_err(self):
        conf = ConfFile(self, "pool = { workerz = 1; };\n")
        code, text = self.run_check(conf.path, journal=True)
        self.assertEqual(code, 78)
        # systemd's SyslogLevelPrefix= reads <3> as priority err.
        self.assertTrue(text.startswith("<3>tpserver: %s:1: pool.workerz" % conf.path), text)
        self.assertEqual(len(text.splitlines()), 1, text)
        code, text = self.run_check(conf.path, journal=False)
        self.assertEqual(code, 78)
        self.assertTrue(text.startswith("tpserver: "), text)


class JournalFields(unittest.TestCase):
    """The daemon under journald (JOURNAL_STREAM names its stderr) sends
    native journal entries: here to a test-owned socket mounted over
    /run/systemd/journal/socket in a mount namespace of its own."""

    def start_under_journal(self, conf):
        """tpserver --config conf with its stderr the journal's stream and a
        test-owned journal socket: (process, entry_with(KEY), stderr())."""
        if os.geteuid() != 0 or not shutil.which("unshare"):
            self.skipTest("needs root and unshare(1) for a private /run")
        tmp = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, tmp, True)
        journal = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.addCleanup(journal.close)
        journal.bind(os.path.join(tmp, "socket"))
        journal.settimeout(0.2)
        script = ("mount -t tmpfs tmpfs /run && mkdir -p /run/systemd/journal && "
                  "touch /run/systemd/journal/socket && "
                  "mount --bind %s/socket /run/systemd/journal/socket && echo TP-MOUNTED >&2 && "
                  "exec \"$@\"" % tmp)
        err = tempfile.TemporaryFile()
        self.addCleanup(err.close)
        st = os.fstat(err.fileno())
        env = dict(os.environ, JOURNAL_STREAM="%d:%d" % (st.st_dev, st.st_ino))
        proc = subprocess.Popen(["unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh",
                                 TPSERVER, "--config", conf, "--port", "0"], stderr=err, env=env)
        self.addCleanup(lambda: proc.poll() is None and (proc.kill(), proc.wait()))
        entries = []

        def entry_with(key, text=""):
            try:
                entries.append(journal.recv(65536).decode(errors="replace"))
            except socket.timeout:
                pass
            return next((e for e in entries if ("\n%s=" % key) in "\n" + e and text in e), None)

        def stderr():
            err.seek(0)
            return err.read().decode(errors="replace")

        started = wait_until(lambda: entry_with("TP_EVENT") or proc.poll() is not None, 10)
        if "TP-MOUNTED" not in stderr():
            self.skipTest("no private /run here: %s" % stderr()[-300:])
        # The private journal socket is there: a daemon that sends it nothing fails.
        self.assertTrue(started, "no journal entry: %r %s" % (entries, stderr()[-300:]))
        return proc, entry_with, stderr

    def test_a_long_field_reaches_the_journal_whole(self):
        tmp = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, tmp, True)
        deep = os.path.join(tmp, *["d" * 250] * 8)  # a path of some 2 000 bytes
        os.makedirs(deep)
        conf = os.path.join(deep, "tpserver.conf")
        with open(conf, "w") as f:
            f.write("pool = { workers = 2; };\n")
        proc, entry_with, stderr = self.start_under_journal(conf)
        self.assertIsNone(proc.poll(), stderr()[-300:])
        with open(conf, "w") as f:
            f.write("pool = { workers = -5; };\n")
        proc.send_signal(signal.SIGHUP)
        self.assertTrue(wait_until(lambda: entry_with("TP_RELOAD_ERROR"), 10))
        fields = fields_of(entry_with("TP_RELOAD_ERROR"))
        self.assertIn("%s:1: pool.workers" % conf, fields["TP_RELOAD_ERROR"])
        self.assertIn("%s:1: pool.workers" % conf, fields["MESSAGE"])
        self.assertEqual(fields["PRIORITY"], "3")
        proc.terminate()
        self.assertEqual(proc.wait(10), 0)

    def test_a_configuration_error_at_start_is_its_start_event(self):
        # The start event's catalog entry explains exit 78: the failure is that event (it was plain stderr).
        conf = ConfFile(self, "pool = { workers = 0; };\n")
        proc, entry_with, stderr = self.start_under_journal(conf.path)
        self.assertEqual(proc.wait(10), 78)
        fields = fields_of(entry_with("TP_EVENT"))
        self.assertEqual((fields["TP_EVENT"], fields["PRIORITY"]), ("start", "3"))
        self.assertIn("MESSAGE_ID", fields)
        self.assertIn("%s:1: pool.workers" % conf.path, fields["MESSAGE"])


    def listening_port(self, entry_with, stderr):
        self.assertTrue(wait_until(lambda: entry_with("MESSAGE", "listening on 127.0.0.1:"), 10), stderr())
        return int(re.search(r"listening on 127\.0\.0\.1:(\d+)", entry_with("MESSAGE", "listening on")).group(1))

    def refused_entry(self, conf_text, source):
        """The fields of the refused entry of a server started with conf_text,
        once a second client from source is refused."""
        conf = ConfFile(self, conf_text)
        proc, entry_with, stderr = self.start_under_journal(conf.path)
        port = self.listening_port(entry_with, stderr)
        first = socket.create_connection(("127.0.0.1", port), source_address=(source, 0))
        self.addCleanup(first.close)
        first.sendall(b"ECHO a\n")
        self.assertEqual(first.recv(16), b"OK a\n")
        with socket.create_connection(("127.0.0.1", port), source_address=(source, 0)) as second:
            second.settimeout(5)
            self.assertEqual(second.recv(64), b"ERR too many connections\n")
        self.assertTrue(wait_until(lambda: entry_with("TP_REFUSED"), 10), stderr())
        fields = fields_of(entry_with("TP_REFUSED"))
        proc.terminate()
        self.assertEqual(proc.wait(10), 0)
        return fields

    def test_refused_connections_have_their_message_id(self):
        # An operator looks overload up by MESSAGE_ID: refusals over a limit have theirs.
        fields = self.refused_entry("limits = { max_connections = 1; };\n", "127.0.0.1")
        self.assertEqual((fields["TP_EVENT"], fields["TP_REFUSED"]), ("refused", "1"))
        self.assertNotIn("TP_REFUSED_ADDR", fields)  # over the total, not an address's cap
        self.assertEqual(fields["MESSAGE_ID"], "c8c9863655044936a429b8024e7baf06")

    def test_a_client_refused_over_its_address_cap_is_a_field(self):
        fields = self.refused_entry("limits = { max_connections_per_address = 1; };\n", "127.0.0.2")
        self.assertEqual((fields["TP_REFUSED"], fields["TP_REFUSED_ADDR"]), ("1", "127.0.0.2"))
        self.assertIn("all from 127.0.0.2", fields["MESSAGE"])

    def test_late_refusals_have_their_message_id(self):
        # Refusals past pool.max_wait_ms are busy refusals too: an operator finds them by ID.
        conf = ConfFile(self, "pool = { workers = 1; cheap_workers = 0; max_wait_ms = 100; };\n")
        proc, entry_with, stderr = self.start_under_journal(conf.path)
        port = self.listening_port(entry_with, stderr)
        with socket.create_connection(("127.0.0.1", port)) as s:
            s.sendall(b"SLEEP 300\nECHO a\nECHO b\n")  # the ECHOs wait 300 ms behind it
            self.assertEqual(LineReader(s).lines(3, timeout=5), ["OK 300", "ERR server busy", "ERR server busy"])
        self.assertTrue(wait_until(lambda: entry_with("TP_LATE"), 10), stderr())
        fields = fields_of(entry_with("TP_LATE"))
        self.assertEqual((fields["TP_EVENT"], fields["TP_LATE"]), ("late", "2"))
        self.assertEqual(fields["MESSAGE_ID"], "6da03b6347c34b78bc1e3fa0993bfdf5")
        proc.terminate()
        self.assertEqual(proc.wait(10), 0)


class Notices(unittest.TestCase):
    def test_reloading_carries_monotonic_usec(self):
        from test_systemd import Notify
        notify = Notify()
        self.addCleanup(notify.close)
        with Server(env={"NOTIFY_SOCKET": notify.path}) as srv:
            notify.wait_for(r"^READY=1")
            before = time.monotonic()
            srv.signal(signal.SIGHUP)
            m = notify.wait_for(r"^RELOADING=1")
            after = time.monotonic()
            usec = re.search(r"(?m)^MONOTONIC_USEC=(\d+)$", m)
            self.assertIsNotNone(usec, m)
            self.assertGreaterEqual(int(usec.group(1)), int(before * 1e6) - 1000)
            self.assertLessEqual(int(usec.group(1)), int(after * 1e6) + 1000)
            notify.wait_for(r"^READY=1")

    def test_first_busy_line_says_since_start(self):
        with Server("--workers", "1", "--queue", "1", "--queue-timeout-ms", "100") as srv:
            s = srv.connect()
            # Written (and so counted) before the first look, a second after the start.
            s.sendall(b"SLEEP 300\nSLEEP 1\nSLEEP 1\n")
            r = LineReader(s)
            self.assertEqual(r.lines(3, timeout=5), ["OK 300", "OK 1", "ERR server busy"])
            line = srv.wait_log(r"overloaded: .*", timeout=10)
            self.assertIn("refused with ERR server busy since start", line)


    def assert_one_line_per_interval(self, lines):
        """Only the first of lines may say since start; every other covers
        a whole interval (5 s at least): a count is logged once per
        interval, not at every tick that adds to it."""
        for line in lines[1:] if "since start" in lines[0] else lines:
            m = re.search(r"in the last (\d+(?:\.\d)?) s", line)
            self.assertIsNotNone(m, lines)
            self.assertGreaterEqual(float(m.group(1)), 5.0, lines)

    def test_the_busy_line_comes_once_per_interval(self):
        with Server("--workers", "1", "--cheap-workers", "0", "--queue", "1",
                    "--queue-timeout-ms", "100") as srv:
            def busy():
                s = srv.connect()
                s.sendall(b"SLEEP 300\nSLEEP 1\nSLEEP 1\n")
                self.assertEqual(LineReader(s).lines(3, timeout=5), ["OK 300", "OK 1", "ERR server busy"])
                s.close()

            # Two refusals 2 s apart: a tick (1 s) comes between them, the interval's end does not.
            busy()
            time.sleep(2)
            busy()
            pattern = r"overloaded: (\d+) requests refused with ERR server busy .*"
            self.assertTrue(wait_until(lambda: sum(int(n) for n in re.findall(pattern, srv.log())) == 2, 15),
                            srv.log())
            self.assert_one_line_per_interval([m.group(0) for m in re.finditer(pattern, srv.log())])

    def test_the_refused_line_comes_once_per_interval(self):
        with Server("--max-connections", "1") as srv:
            held = srv.connect()
            self.assertEqual(request(held, LineReader(held), "ECHO 1"), "OK 1")

            def refuse():
                with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as s:
                    self.assertEqual(LineReader(s).line(), "ERR too many connections")

            refuse()
            time.sleep(2)
            refuse()
            pattern = r"refused (\d+) connections? \(\d+ over max_connections\) .*"
            self.assertTrue(wait_until(lambda: sum(int(n) for n in re.findall(pattern, srv.log())) == 2, 15),
                            srv.log())
            self.assert_one_line_per_interval([m.group(0) for m in re.finditer(pattern, srv.log())])

    def test_busy_line_counts_only_refusals_written(self):
        """The overloaded line counts ERR server busy replies as the metrics
        and the stats line do: not those of clients that left while their
        requests waited (it counted 6 here, the metrics 1)."""
        with MetricsServer("--workers", "1", "--cheap-workers", "0", "--queue", "1",
                           "--fairness", "none", "--queue-timeout-ms", "500") as srv:
            hold = srv.connect()
            hold.sendall(b"SLEEP 3000\nSLEEP 3000\n")  # one running, one queued: full
            self.assertTrue(wait_until(lambda: srv.scrape().get("tpserver_queue_depth") == 1, 5))
            gone = [srv.connect() for _ in range(5)]
            live = srv.connect()
            for g in gone:
                g.sendall(b"SLEEP 1\n")
            live.sendall(b"SLEEP 1\n")
            self.assertTrue(wait_until(lambda: srv.scrape().get("tpserver_queue_waiters") == 6, 5))
            for g in gone:  # with fairness none their requests stay queued until they expire
                g.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                g.close()
            self.assertEqual(LineReader(live).line(timeout=5), "ERR server busy")
            line = srv.wait_log(r"overloaded: .*", timeout=10)
            self.assertIn("overloaded: 1 requests refused", line)
            self.assertEqual(srv.scrape().get("tpserver_requests_total", op="sleep", result="busy_timeout"), 1)
            hold.close()
            live.close()

    def unwritten_status(self, args, client):
        """The counts STATUS= gives after client(srv) ran and 2.5 s more."""
        from test_systemd import Notify
        notify = Notify()
        self.addCleanup(notify.close)
        with Server(*args, env={"NOTIFY_SOCKET": notify.path}) as srv:
            notify.wait_for(r"^READY=1")
            client(srv)
            start = time.monotonic()
            notify.collect(2.5)
        status = [m for t, m in notify.messages if t > start and m.startswith("STATUS=")]
        self.assertTrue(status, notify.messages)
        return re.search(r"(\d+) busy rejections, (\d+) over max wait", status[-1]).groups()

    def test_busy_and_late_replies_never_written_are_not_counted(self):
        """STATUS=, the overloaded lines and the agent's weight count ERR
        server busy replies as the metrics do, when written: not those
        behind a request still running when their client left (here 1 and
        1 were counted, the metrics 0)."""
        def behind(hold_ms, lines, leave_after):
            """A client that leaves with ERR server busy done, not written, behind its first line."""
            def client(srv):
                hold = srv.connect()
                hold.sendall(b"SLEEP %d\n" % hold_ms)
                time.sleep(0.1)
                gone = srv.connect()
                gone.sendall(lines)
                time.sleep(leave_after)
                gone.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                gone.close()
                self.assertEqual(LineReader(hold).line(), "OK %d" % hold_ms)
            return client

        # The second line refused at 200 ms behind the first, queued; popped at 300 ms, over 100 ms.
        busy, late = behind(1500, b"SLEEP 1\nSLEEP 1\n", 0.5), behind(300, b"SLEEP 1000\nSLEEP 1\n", 0.6)
        self.assertEqual(self.unwritten_status(("--workers", "1", "--cheap-workers", "0", "--queue", "1",
                                                "--queue-timeout-ms", "200"), busy), ("0", "0"))
        self.assertEqual(self.unwritten_status(("--workers", "2", "--cheap-workers", "0",
                                                "--max-wait-ms", "100"), late), ("0", "0"))


class CheckConfigParity(unittest.TestCase):
    def run_tp(self, *args, env=None):
        e = dict(os.environ)
        for k in ("LISTEN_FDS", "LISTEN_PID", "INVOCATION_ID", "JOURNAL_STREAM"):
            e.pop(k, None)
        e.update(env or {})
        return subprocess.run([TPSERVER, *args], capture_output=True, text=True, timeout=20, env=e)

    def test_check_refuses_an_address_a_start_refuses(self):
        conf = ConfFile(self, 'listen = { host = "999.1.1.1"; port = 0; };\n')
        start = self.run_tp("--config", conf.path)
        self.assertEqual(start.returncode, 78, start.stderr)
        check = self.run_tp("-t", "--config", conf.path)
        self.assertEqual(check.returncode, 78, check.stdout)
        self.assertIn("999.1.1.1", check.stderr)
        # Caught without DNS, also where the listen settings are not used.
        check = self.run_tp("-t", "--config", conf.path, env={"INVOCATION_ID": "0" * 32})
        self.assertEqual(check.returncode, 78, check.stdout)
        for good in ("127.0.0.1", "::1", "127.1"):
            conf.write('listen = { host = "%s"; };\n' % good)
            self.assertEqual(self.run_tp("-t", "-q", "--config", conf.path).returncode, 0, good)
        # A name is resolved as a start would, except under systemd (socket activation).
        conf.write('listen = { host = "no-such-host.invalid"; };\n')
        self.assertEqual(self.run_tp("-t", "-q", "--config", conf.path).returncode, 78)
        self.assertEqual(self.run_tp("-t", "-q", "--config", conf.path,
                                     env={"INVOCATION_ID": "0" * 32}).returncode, 0)
        # A host holding a line end is named on one line, as every error is (it was two).
        conf.write('agent = { enabled = true; host = "127.0.0.1\\n<3>x"; };\n')
        check = self.run_tp("-t", "-q", "--config", conf.path)
        self.assertEqual(check.returncode, 78)
        self.assertEqual(len(check.stderr.splitlines()), 1, check.stderr)

    def test_config_path_too_long_is_refused(self):
        path = "/" + "a/" * 2100 + "tp.conf"
        p = self.run_tp("-t", "--config", path)
        self.assertEqual(p.returncode, 78)
        self.assertIn("--config", p.stderr)
        self.assertIn("4095", p.stderr)


if __name__ == "__main__":
    tplib.main(verbosity=2, warnings="ignore")
