# SPDX-License-Identifier: MIT
"""The systemd units: systemd-analyze verify passes on the four, and the
service's sandbox rates 1.0 or better in systemd-analyze security; and the
package's postinst, which starts the socket an upgrade from 0.1 brings."""
import os
import re
import shutil
import subprocess
import tempfile
import unittest

import tplib
from tplib import TPSERVER

UNITS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "systemd")


@unittest.skipUnless(shutil.which("systemd-analyze"), "systemd-analyze not installed")
class Units(unittest.TestCase):
    def setUp(self):
        # The units name /usr/sbin/tpserver; point them at the binary under test
        # so verify can check ExecStart= without an installed package.
        self.dir = tempfile.mkdtemp(prefix="tp-units-")
        self.addCleanup(shutil.rmtree, self.dir)
        for name in ("tpserver.socket", "tpserver.service", "tpserver-agent.socket",
                     "tpserver-metrics.socket"):
            with open(os.path.join(UNITS, name)) as f:
                text = f.read().replace("/usr/sbin/tpserver", os.path.abspath(TPSERVER))
            with open(os.path.join(self.dir, name), "w") as f:
                f.write(text)

    def test_verify(self):
        p = subprocess.run(["systemd-analyze", "verify", "--man=no",
                            os.path.join(self.dir, "tpserver.socket"),
                            os.path.join(self.dir, "tpserver.service"),
                            os.path.join(self.dir, "tpserver-agent.socket"),
                            os.path.join(self.dir, "tpserver-metrics.socket")],
                           capture_output=True, text=True, timeout=60, cwd=self.dir)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stderr.strip(), "")

    def test_security_rating(self):
        p = subprocess.run(["systemd-analyze", "security", "--offline=yes",
                            os.path.join(self.dir, "tpserver.service")],
                           capture_output=True, text=True, timeout=60, cwd=self.dir)
        m = re.search(r"Overall exposure level for tpserver.service: ([0-9.]+)", p.stdout + p.stderr)
        self.assertIsNotNone(m, p.stdout + p.stderr)
        self.assertLessEqual(float(m.group(1)), 1.0)

    def test_fd_store_fits_the_kept_connections(self):
        with open(os.path.join(UNITS, "tpserver.service")) as f:
            service = f.read()
        store = int(re.search(r"(?m)^FileDescriptorStoreMax=(\d+)$", service).group(1))
        nofile = int(re.search(r"(?m)^LimitNOFILE=(\d+)", service).group(1))
        out = subprocess.run([TPSERVER, "--config", "/dev/null", "--check-config"], capture_output=True,
                             text=True, timeout=30).stdout
        kept = int(re.search(r"keep_connections_max = (\d+);", out).group(1))
        conns = int(re.search(r"max_connections = (\d+);", out).group(1))
        # Every kept connection, the state memfd and up to 16 listening sockets
        # plus the metrics one; and a new instance must be able to receive them.
        self.assertGreaterEqual(store, max(kept, conns) + 1 + 16 + 1)
        self.assertGreater(nofile, store + conns)

    def test_start_limit_lets_restarts_in_a_row_through_and_stops_a_crash_loop(self):
        """Every start counts, restarts included, and hitting the limit fails the
        sockets too (systemd's default, 5 starts in 10 s, is six quick restarts):
        room for restarts in a row, while a start every RestartSec= (a crash loop)
        still reaches the limit within its interval."""
        with open(os.path.join(UNITS, "tpserver.service")) as f:
            service = f.read()
        unit = service.split("\n[Service]\n")[0]  # [Unit] settings: ignored elsewhere
        interval = re.search(r"(?m)^StartLimitIntervalSec=(\d+)s$", unit)
        burst = re.search(r"(?m)^StartLimitBurst=(\d+)$", unit)
        self.assertIsNotNone(interval, "no StartLimitIntervalSec= in [Unit]")
        self.assertIsNotNone(burst, "no StartLimitBurst= in [Unit]")
        interval, burst = int(interval.group(1)), int(burst.group(1))
        restart_s = int(re.search(r"(?m)^RestartSec=(\d+)s$", service).group(1))
        self.assertGreaterEqual(burst, 20)
        self.assertLess(burst * restart_s, interval)
        self.assertLessEqual(interval, 120)

    def test_reload_waits_for_the_daemon_and_socket_outlives_restarts(self):
        with open(os.path.join(UNITS, "tpserver.service")) as f:
            service = f.read()
        with open(os.path.join(UNITS, "tpserver.socket")) as f:
            socket_unit = f.read()
        reloads = re.findall(r"^ExecReload=(.*)$", service, re.M)
        # The reload returns once the daemon applied or refused the file.  Only
        # the daemon checks it: a check beforehand would read the default path
        # as root, not what ExecStart= names as the service's user, and refuse
        # every reload of a daemon started with --config or a flag it overrides.
        self.assertEqual(reloads, ["/usr/sbin/tpserver --reload-and-wait $MAINPID"])
        self.assertRegex(service, r"(?m)^RuntimeDirectory=tpserver$")
        self.assertRegex(service, r"(?m)^RestartPreventExitStatus=.*\b78\b")
        self.assertRegex(service, r"(?m)^WatchdogSec=")
        # PartOf= or ReusePort= would close or duplicate the listening socket on restarts.
        self.assertNotRegex(socket_unit, r"(?m)^(PartOf|ReusePort)=")
        self.assertNotRegex(service, r"(?m)^Also=.*tpserver\.socket")



DEBIAN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "debian")
PREINST = os.path.join(DEBIAN, "tpserver.preinst")
POSTINST = os.path.join(DEBIAN, "tpserver.postinst")
PRERM = os.path.join(DEBIAN, "tpserver.prerm")
START = "/var/lib/tpserver/start-sockets"


class Postinst(unittest.TestCase):
    """debian/tpserver's own maintainer script parts (debhelper's are added
    at build time): which sockets they start and stop, when the postinst
    restarts the daemon or stops it to start a socket.  systemctl,
    deb-systemd-invoke and deb-systemd-helper are scripts that read the
    units' state from the environment and log what they are asked; a
    private /run has /run/systemd/system, as under a booted systemd, a
    private /var/lib what the preinst leaves for the postinst, and a
    private /usr/sbin a tpserver whose --check-config passes, or fails
    with TP_CHECK's message."""

    def run_scripts(self, calls, enabled, active, check=None):
        """Run each (script, args) of calls in turn, as dpkg would: what
        deb-systemd-invoke and deb-systemd-helper were asked, and whether
        the preinst's request is left at the end; their stderr in
        self.stderr.  check: the configuration check's error, None if it
        passes."""
        if os.geteuid() != 0 or not shutil.which("unshare"):
            self.skipTest("needs root and unshare(1) for a private /run")
        d = tempfile.mkdtemp(prefix="tp-postinst-")
        self.addCleanup(shutil.rmtree, d)
        log = os.path.join(d, "log")
        open(log, "w").close()
        fakes = {
            "systemctl": 'case "$2" in is-enabled) l=$TP_ENABLED;; is-active) l=$TP_ACTIVE;; *) exit 1;; esac\n'
                         'for u in $l; do [ "$u" = "$3" ] && exit 0; done\nexit 1\n',
            "deb-systemd-invoke": 'echo "$*" >>"$TP_LOG"\n',
            "deb-systemd-helper": 'if [ "$1 $2" = "--quiet was-enabled" ]; then\n'
                                  '  for u in $TP_ENABLED; do [ "$u" = "$3" ] && exit 0; done; exit 1\nfi\n'
                                  'echo "helper $*" >>"$TP_LOG"\n',
            "tpserver": '[ "$*" = "--check-config --quiet" ] || exit 2\n'
                        '[ -z "$TP_CHECK" ] || { echo "tpserver: $TP_CHECK" >&2; exit 78; }\n',
        }
        for name, body in fakes.items():
            path = os.path.join(d, name)
            with open(path, "w") as f:
                f.write("#!/bin/sh\n" + body)
            os.chmod(path, 0o755)
        runs = " && ".join("sh %s %s" % (script, " ".join(args)) for script, args in calls)
        script = ("mount -t tmpfs tmpfs /run && mkdir -p /run/systemd/system && "
                  "mount -t tmpfs tmpfs /var/lib && mount -t tmpfs tmpfs /usr/sbin && "
                  "cp %s/tpserver /usr/sbin/tpserver && echo TP-MOUNTED >&2 && %s && "
                  "if [ -e %s ]; then touch \"$TP_LOG.left\"; fi" % (d, runs, START))
        env = dict(os.environ, PATH=d + ":" + os.environ["PATH"], TP_ENABLED=" ".join(enabled),
                   TP_ACTIVE=" ".join(active), TP_LOG=log, TP_CHECK=check or "")
        p = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", script],
                           env=env, capture_output=True, text=True, timeout=30)
        if "TP-MOUNTED" not in p.stderr:
            self.skipTest("no private /run here: %s" % p.stderr[-300:])
        self.assertEqual(p.returncode, 0, p.stderr)
        self.stderr = p.stderr
        with open(log) as f:
            return f.read().splitlines(), os.path.exists(log + ".left")

    def postinst(self, args, enabled, active, preinst=None, check=None):
        """What the postinst (after the preinst with preinst's args, if any) asks."""
        calls = ([(PREINST, preinst)] if preinst else []) + [(POSTINST, args)]
        asked, left = self.run_scripts(calls, enabled, active, check)
        self.assertFalse(left, "the preinst's request is left behind")
        return asked

    SOCKETS = ["tpserver.socket", "tpserver-metrics.socket", "tpserver-agent.socket"]
    ALL = "start " + " ".join(SOCKETS)

    def test_the_upgrade_that_brings_the_metrics_socket_starts_it(self):
        self.assertEqual(self.postinst(["configure", "0.1.0"], self.SOCKETS[:2],
                                       ["tpserver.socket", "tpserver.service"]),
                         ["stop tpserver.service", "start tpserver-metrics.socket"])
        # The daemon idle: nothing to stop, the socket started all the same.
        self.assertEqual(self.postinst(["configure", "0.1.0"], self.SOCKETS[:2], ["tpserver.socket"]),
                         ["start tpserver-metrics.socket"])
        # Over a configuration that does not check, the running daemon is not stopped
        # (the one started next could not run), and the admin is told how to go on.
        self.assertEqual(self.postinst(["configure", "0.1.0"], self.SOCKETS[:2],
                                       ["tpserver.socket", "tpserver.service"], check="x.conf:1: y"), [])
        self.assertIn("the daemon is not restarted and serves on", self.stderr)
        self.assertIn("tpserver: tpserver-metrics.socket not started beside the running daemon; once the file is "
                      "fixed: systemctl stop tpserver.service && systemctl start tpserver-metrics.socket "
                      "tpserver.service", self.stderr)

    def test_later_upgrades_leave_the_sockets_be(self):
        # The agent socket enabled but stopped by the admin (the host taken out).
        for old in ("0.2.0", "0.3"):
            self.assertEqual(self.postinst(["configure", old], self.SOCKETS,
                                           self.SOCKETS[:2] + ["tpserver.service"],
                                           preinst=["upgrade", old]), ["restart tpserver.service"], old)
        # Every socket stopped (the host taken out for good): none is started (they were).
        self.assertEqual(self.postinst(["configure", "0.2.0"], self.SOCKETS, [], preinst=["upgrade", "0.2.0"]), [])

    def test_the_upgrade_from_0_1_leaves_a_stopped_agent_socket_be(self):
        self.assertEqual(self.postinst(["configure", "0.1.0"], self.SOCKETS,
                                       self.SOCKETS[:2] + ["tpserver.service"]), ["restart tpserver.service"])

    def test_an_upgrade_restarts_only_a_running_daemon_whose_configuration_checks(self):
        running = self.SOCKETS[:2] + ["tpserver.service"]
        self.assertEqual(self.postinst(["configure", "0.2.0"], self.SOCKETS[:2], running),
                         ["restart tpserver.service"])
        self.assertEqual(self.stderr.count("tpserver: "), 0, self.stderr)
        # Idle (no connection has started it): nothing to restart.
        self.assertEqual(self.postinst(["configure", "0.2.0"], self.SOCKETS[:2], self.SOCKETS[:2]), [])
        # A file it cannot start with: the running daemon serves on, and the admin is told.
        bad = "/etc/tpserver.conf.d/50-x.conf:1: pool.workers: expected an integer"
        self.assertEqual(self.postinst(["configure", "0.2.0"], self.SOCKETS[:2], running, check=bad), [])
        self.assertIn("tpserver: " + bad, self.stderr)
        self.assertIn("the daemon is not restarted and serves on with its settings", self.stderr)
        self.assertEqual(self.postinst(["configure", "0.2.0"], self.SOCKETS[:2], self.SOCKETS[:2], check=bad), [])
        self.assertIn("tpserver will not start until the file is fixed", self.stderr)
        # A new installation with such a file (a drop-in left by an earlier one) is warned too.
        self.assertEqual(self.postinst(["configure"], self.SOCKETS[:2], [], preinst=["install"], check=bad),
                         [self.ALL])
        self.assertIn("tpserver: " + bad, self.stderr)

    def test_an_installation_starts_the_enabled_sockets(self):
        # The first (configure names no version), and one after a removal (it names the old one).
        self.assertEqual(self.postinst(["configure"], self.SOCKETS[:2], [], preinst=["install"]), [self.ALL])
        self.assertEqual(self.postinst(["configure", "0.2.0"], self.SOCKETS, [], preinst=["install", "0.2.0"]),
                         [self.ALL])
        # A removal that failed after the prerm stopped them.
        self.assertEqual(self.postinst(["abort-remove"], self.SOCKETS, []), [self.ALL])

    def test_a_removal_stops_the_sockets(self):
        self.assertEqual(self.run_scripts([(PRERM, ["remove"])], self.SOCKETS, self.SOCKETS),
                         (["stop tpserver-agent.socket tpserver-metrics.socket tpserver.socket",
                           "stop tpserver.service"], False))
        self.assertEqual(self.run_scripts([(PRERM, ["upgrade", "0.2.1"])], self.SOCKETS, self.SOCKETS), ([], False))

    def test_a_downgrade_before_0_2_stops_and_forgets_the_sockets_it_does_not_ship(self):
        self.assertEqual(self.run_scripts([(PRERM, ["upgrade", "0.1.0"])], self.SOCKETS, self.SOCKETS),
                         (["stop tpserver-agent.socket tpserver-metrics.socket",
                           "helper purge tpserver-agent.socket tpserver-metrics.socket"], False))

    def test_a_downgrade_that_fails_puts_the_sockets_back_as_they_were(self):
        # The metrics socket enabled and running, the agent's enabled but stopped by the admin.
        enabled, active = self.SOCKETS, self.SOCKETS[:2]
        down = [(PRERM, ["upgrade", "0.1.0"]), (POSTINST, ["abort-upgrade", "0.1.0"])]
        self.assertEqual(self.run_scripts(down, enabled, active),
                         (["stop tpserver-agent.socket tpserver-metrics.socket",
                           "helper purge tpserver-agent.socket tpserver-metrics.socket",
                           "helper reenable tpserver-metrics.socket", "helper reenable tpserver-agent.socket",
                           "start tpserver-metrics.socket"], False))
        # The metrics socket disabled and stopped by the admin, the agent's never enabled: so again.
        self.assertEqual(self.run_scripts(down, ["tpserver.socket"], ["tpserver.socket"])[0][2:],
                         ["helper disable tpserver-metrics.socket", "helper disable tpserver-agent.socket"])
        # The daemon running: no socket starts beside it; the admin is told how.
        self.assertEqual(self.run_scripts(down, enabled, active + ["tpserver.service"])[0][2:],
                         ["helper reenable tpserver-metrics.socket", "helper reenable tpserver-agent.socket"])
        self.assertIn("tpserver: tpserver-metrics.socket not started again beside the running daemon", self.stderr)
        # Nothing is put back after a downgrade that went through (the upgrade back configures),
        # nor by a later upgrade's abort to a version that has the sockets.
        for calls in ([(PRERM, ["upgrade", "0.1.0"]), (POSTINST, ["configure", "0.1.0"]),
                       (POSTINST, ["abort-upgrade", "0.1.0"])],
                      [(PRERM, ["upgrade", "0.1.0"]), (POSTINST, ["abort-upgrade", "0.3"])]):
            asked = self.run_scripts(calls, enabled, active)[0]
            self.assertFalse([a for a in asked if "reenable" in a or a.startswith("start ")], asked)


if __name__ == "__main__":
    tplib.main(verbosity=2, warnings="ignore")
