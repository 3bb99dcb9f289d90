# SPDX-License-Identifier: MIT
"""10000 concurrent connections to the real tpserver, each of them usable.
Needs an RLIMIT_NOFILE hard limit above 10500: where it is lower the test
is skipped, and ctest reports this file as skipped (test_adversarial.py
holds the tests that always run)."""
import resource
import selectors
import socket
import time
import unittest

import tplib
from advlib import peak_rss_kib
from tplib import SLACK, Server, wait_until


class ManyConnections(unittest.TestCase):
    N = 10000

    def raise_nofile(self):
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if hard != resource.RLIM_INFINITY and hard < self.N + 500:
            self.skipTest("RLIMIT_NOFILE hard limit %d is below the %d fds this test needs "
                          "(raise it, e.g. ulimit -Hn)" % (hard, self.N + 500))
        want = hard if hard != resource.RLIM_INFINITY else self.N + 1000
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
        self.addCleanup(resource.setrlimit, resource.RLIMIT_NOFILE, (soft, hard))

    def test_10000_concurrent_connections_all_usable(self):
        self.raise_nofile()
        with Server("--backlog", "4096", "--max-connections", str(self.N), "--workers", "8") as srv:
            base_fds = srv.fds()
            rss0 = srv.rss_kib()
            socks = [socket.create_connection(("127.0.0.1", srv.port), timeout=30) for _ in range(self.N)]
            self.assertTrue(wait_until(lambda: srv.fds() >= base_fds + self.N, 20 * SLACK),
                            "server holds %d fds" % srv.fds())
            # Every connection is usable: ECHO on each, replies collected with one selector.
            sel = selectors.DefaultSelector()
            pending = {}
            for i, s in enumerate(socks):
                s.setblocking(False)
                s.send(b"ECHO c%d\n" % i)
                sel.register(s, selectors.EVENT_READ, i)
                pending[i] = b""
            got = {}
            deadline = time.monotonic() + 60 * SLACK
            while pending and time.monotonic() < deadline:
                for key, _ in sel.select(timeout=1):
                    i = key.data
                    data = key.fileobj.recv(4096)
                    if not data:
                        got[i] = pending.pop(i) + b"<EOF>"
                        sel.unregister(key.fileobj)
                        continue
                    pending[i] += data
                    if pending[i].endswith(b"\n"):
                        got[i] = pending.pop(i)
                        sel.unregister(key.fileobj)
            sel.close()
            self.assertEqual(len(pending), 0, "%d connections got no reply" % len(pending))
            bad = [i for i in range(self.N) if got[i] != b"OK c%d\n" % i]
            self.assertEqual(bad, [])
            print("\nmemory: %d idle connections: RSS %d -> %d KiB, peak %d KiB"
                  % (self.N, rss0, srv.rss_kib(), peak_rss_kib(srv.proc.pid)), flush=True)
            for s in socks:
                s.close()
            self.assertTrue(wait_until(lambda: srv.fds() <= base_fds, 20 * SLACK))
            self.assertEqual(srv.stop(), 0)


if __name__ == "__main__":
    tplib.main(verbosity=2, warnings="ignore")
