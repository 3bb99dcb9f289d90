# SPDX-License-Identifier: MIT
"""PROXY protocol and listen.allow on the real tpserver: headers written by
hand (v1 and v2, split across writes, followed by requests in the same
write), the client address they name in the logs, refusals (malformed,
untrusted, overdue) closing the connection and logged in one aggregated
line, v2 LOCAL, listen.allow at accept, a reload of proxy_trusted, and the
same under socket activation.  Untrusted and disallowed peers are other
loopback addresses (127.0.0.2): the kernel routes all of 127/8 to lo."""
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time
import unittest

from metricslib import MetricsServer
import tplib
from tplib import LineReader, Server, free_port, read_to_eof, request, wait_until

V2SIG = b"\r\n\r\n\x00\r\nQUIT\n"
PROXY = ("--proxy-protocol", "--proxy-trusted", "127.0.0.1", "--log-level", "debug")


def v2_ipv4(src, dst, sport, dport, tlvs=b""):
    body = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!HH", sport, dport) + tlvs
    return V2SIG + bytes([0x21, 0x11]) + struct.pack("!H", len(body)) + body


def v2_ipv6(src, dst, sport, dport, tlvs=b""):
    body = (socket.inet_pton(socket.AF_INET6, src) + socket.inet_pton(socket.AF_INET6, dst)
            + struct.pack("!HH", sport, dport) + tlvs)
    return V2SIG + bytes([0x21, 0x21]) + struct.pack("!H", len(body)) + body


def long_v2_ipv4(total, src="192.0.2.44", sport=4444, bad_at=None):
    """A v2 PROXY header of total bytes, TLVs of up to 1000 bytes (HAProxy's unique id,
    SSL, custom ones) filling it; with bad_at, the first TLV that starts at that offset
    or after claims more than the header holds."""
    tlvs = b""
    while 28 + len(tlvs) < total:
        n = min(total - 28 - len(tlvs) - 3, 1000)
        claimed = 0xFFFF if bad_at is not None and 28 + len(tlvs) >= bad_at else n
        tlvs += bytes([0xE0]) + struct.pack("!H", claimed) + b"z" * n
        bad_at = None if claimed != n else bad_at
    return v2_ipv4(src, "10.0.0.2", sport, 9000, tlvs)


def connect(port, source="127.0.0.1"):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(10)
    s.bind((source, 0))
    s.connect(("127.0.0.1", port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def closed_by_server(s, timeout=10.0):
    """True when the server closes s without a byte (EOF or reset)."""
    s.settimeout(timeout)
    try:
        return s.recv(100) == b""
    except ConnectionResetError:
        return True


class Proxy(unittest.TestCase):
    def test_v1_split_then_requests(self):
        with Server(*PROXY) as srv:
            s = srv.connect()
            r = LineReader(s)
            s.sendall(b"PROXY TCP4 192.0.2.7 ")
            time.sleep(0.05)
            s.sendall(b"198.51.100.1 5555 9000\r\nECHO one\nECHO tw")
            self.assertEqual(r.line(), "OK one")
            s.sendall(b"o\n")
            self.assertEqual(r.line(), "OK two")
            srv.wait_log(r"PROXY header names 192\.0\.2\.7:5555")
            s.close()
            srv.wait_log(r"client closed 192\.0\.2\.7:5555")

    def test_v2_ipv6_with_tlvs_and_v1_tcp6(self):
        with Server(*PROXY) as srv:
            with srv.connect() as s:
                tlvs = b"\x04\x00\x02xx" + b"\x05\x00\x04abcd"
                s.sendall(v2_ipv6("2001:db8::42", "::1", 40000, 9000, tlvs) + b"ECHO six\n")
                self.assertEqual(LineReader(s).line(), "OK six")
                srv.wait_log(r"PROXY header names \[2001:db8::42\]:40000")
            s = srv.connect()
            s.sendall(b"PROXY TCP6 2001:db8::43 ::1 40001 9000\r\nECHO v1\n")
            self.assertEqual(LineReader(s).line(), "OK v1")
            srv.wait_log(r"PROXY header names \[2001:db8::43\]:40001")

    def test_v2_longer_than_the_buffer(self):
        # A header past the 1024 bytes a connection holds for it (TLVs up to the
        # format's 16 + 65535 bytes) names its client all the same; its TLVs are
        # checked and dropped as they arrive, in one write or split, and the
        # requests that follow in their segment are served.
        with MetricsServer(*PROXY) as srv:
            received = 0
            for i, total in enumerate((1025, 2048, 8000, 16 + 65535)):
                hdr = long_v2_ipv4(total, "192.0.2.%d" % (i + 1), 1000 + i)
                self.assertEqual(len(hdr), total)
                with srv.connect() as s:
                    r = LineReader(s)
                    s.sendall(hdr + b"ECHO long %d\n" % total)
                    self.assertEqual(r.line(), "OK long %d" % total)
                    srv.wait_log(r"PROXY header names 192\.0\.2\.%d:%d\b" % (i + 1, 1000 + i))
                    received += len(hdr) + len(b"ECHO long %d\n" % total)
                with srv.connect() as s:  # in pieces that cut the TLVs anywhere
                    data = hdr + b"ECHO split\n"
                    for at in range(0, len(data), 997):
                        s.sendall(data[at:at + 997])
                        time.sleep(0.002)
                    self.assertEqual(LineReader(s).line(), "OK split")
                    received += len(data)
            self.assertEqual(srv.scrape().get("tpserver_received_bytes_total"), received)
            # Malformed past the first 1024 bytes, or cut short by the close: refused.
            for bad in (long_v2_ipv4(8000, bad_at=5000), long_v2_ipv4(8000, bad_at=0)):
                with srv.connect() as s:
                    s.sendall(bad + b"ECHO no\n")
                    self.assertTrue(closed_by_server(s))
            with srv.connect() as s:
                s.sendall(long_v2_ipv4(8000)[:6000])
                s.shutdown(socket.SHUT_WR)
                self.assertTrue(closed_by_server(s))
            self.assertTrue(wait_until(lambda: srv.scrape().get(
                "tpserver_connections_refused_total", reason="proxy_bad_header") == 3, 5))

    def test_v2_local_keeps_the_socket_address(self):
        with Server(*PROXY) as srv:
            s = srv.connect()
            for b in V2SIG + b"\x20\x00\x00\x00":  # one byte at a time
                s.sendall(bytes([b]))
            self.assertEqual(request(s, LineReader(s), "ECHO health"), "OK health")
            self.assertNotIn("PROXY header names", srv.log())

    def test_refusals_close_and_are_logged_together(self):
        with Server(*PROXY) as srv:
            bad = [b"PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n", b"PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n",
                   b"ECHO no header\n", long_v2_ipv4(2000, bad_at=1000), b"PROXY " + b"x" * 200,
                   v2_ipv4("10.0.0.1", "10.0.0.2", 1, 2, b"\x04\x00\x09") + b"\n" * 10]
            for n in range(4):
                for b in bad:
                    with srv.connect() as s:
                        s.sendall(b)
                        self.assertTrue(closed_by_server(s), b)
            # An untrusted client is served directly, and its PROXY header is refused.
            with connect(srv.port, "127.0.0.2") as s:
                self.assertEqual(request(s, LineReader(s), "ECHO direct"), "OK direct")
            for _ in range(3):
                with connect(srv.port, "127.0.0.2") as s:
                    s.sendall(b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\nECHO x\n")
                    self.assertTrue(closed_by_server(s))
            # An empty line only starts like a v2 signature: it is answered at once.
            for first in (b"\r\n", b"\r\n\r\n", b"\n"):
                with connect(srv.port, "127.0.0.2") as s:
                    s.sendall(first)
                    r = LineReader(s)
                    self.assertEqual(r.lines(first.count(b"\n"), timeout=1),
                                     ["ERR empty request"] * first.count(b"\n"))
                    self.assertEqual(request(s, r, "ECHO then"), "OK then")
            # So is one followed by more of the signature: the whole line does not wait for the rest.
            with connect(srv.port, "127.0.0.2") as s:
                s.sendall(b"\r\n\r")
                r = LineReader(s)
                self.assertEqual(r.line(timeout=1), "ERR empty request")
                s.sendall(b"\n")
                self.assertEqual(r.line(timeout=1), "ERR empty request")
            total = 4 * len(bad) + 3
            ok = wait_until(lambda: sum(int(n) for n in re.findall(
                r"closed (\d+) connections? before their first request", srv.log())) == total, 15)
            self.assertTrue(ok, srv.log()[-3000:])
            lines = [l for l in srv.log().splitlines() if "before their first request" in l]
            self.assertLessEqual(len(lines), 2, lines)  # aggregated, never a line per connection
            self.assertIn("PROXY header from an untrusted peer", "\n".join(lines))
            self.assertIn("bad PROXY header", "\n".join(lines))

    def test_closings_just_before_the_stop_are_logged(self):
        # Logged in one line every 10 s at most, the closings since the last
        # line are logged at the stop, however soon after it.
        with Server(*PROXY) as srv:
            def refuse(n):
                for _ in range(n):
                    with srv.connect() as s:
                        s.sendall(b"PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n")
                        self.assertTrue(closed_by_server(s))

            refuse(10)
            srv.wait_log(r"closed \d+ connections? before their first request")
            refuse(30)
            self.assertEqual(srv.stop(), 0)
            log = srv.log()
            counts = [int(n) for n in re.findall(
                r"closed (\d+) connections? before their first request: \1 bad PROXY header \[", log)]
            self.assertEqual(sum(counts), 40, log)
            self.assertGreaterEqual(len(counts), 2, log)
            self.assertGreater(log.index("stopped:"), log.rindex("before their first request"), log)

    def test_the_named_address_is_counted(self):
        # Every connection comes from the proxy (127.0.0.1): the cap per address applies to the
        # client each header names, not to the proxy.
        with Server(*PROXY, "--max-connections-per-address", "1") as srv:
            a, b = srv.connect(), srv.connect()
            a.sendall(b"PROXY TCP4 192.0.2.1 10.0.0.1 1000 9000\r\nECHO a\n")
            b.sendall(b"PROXY TCP4 192.0.2.2 10.0.0.1 1000 9000\r\nECHO b\n")
            self.assertEqual(LineReader(a).line(), "OK a")
            self.assertEqual(LineReader(b).line(), "OK b")
            c = srv.connect()
            c.sendall(b"PROXY TCP4 192.0.2.1 10.0.0.1 1001 9000\r\nECHO c\n")
            c.settimeout(5)
            self.assertEqual(read_to_eof(c), b"ERR too many connections\n")  # as a direct client is told
            srv.wait_log(r"over limits\.max_connections_per_address 192\.0\.2\.1:1001")

    def test_the_proxys_own_address_is_a_client_as_any(self):
        # HAProxy's check-send-proxy names the proxy itself: with a cap of 1, that
        # connection alone is within it; and connections still to send their
        # header weigh on no address, so they do not count against that client.
        with Server(*PROXY, "--max-connections-per-address", "1") as srv:
            pending = [srv.connect() for _ in range(3)]
            a = srv.connect()
            a.sendall(b"PROXY TCP4 127.0.0.1 127.0.0.1 40000 9000\r\nECHO a\n")
            self.assertEqual(LineReader(a).line(), "OK a")
            b = srv.connect()
            b.sendall(b"PROXY TCP4 127.0.0.1 127.0.0.1 40001 9000\r\nECHO b\n")
            b.settimeout(5)
            self.assertEqual(read_to_eof(b), b"ERR too many connections\n")  # the cap still holds
            a.close()
            for i, s in enumerate(pending):  # named later, each under its own client
                s.sendall(b"PROXY TCP4 192.0.2.%d 10.0.0.1 1000 9000\r\nECHO p\n" % (i + 1))
                self.assertEqual(LineReader(s).line(), "OK p")
            c = srv.connect()
            c.sendall(b"PROXY TCP4 127.0.0.1 127.0.0.1 40002 9000\r\nECHO c\n")
            self.assertEqual(LineReader(c).line(), "OK c")
            # A LOCAL header (a check) keeps the proxy's address and is served.
            with srv.connect() as d:
                d.sendall(b"\r\n\r\n\x00\r\nQUIT\n\x20\x00\x00\x00ECHO d\n")
                self.assertEqual(LineReader(d).line(), "OK d")

    def test_the_header_and_what_came_with_it_are_counted_as_received(self):
        # tpserver_received_bytes_total counts every byte read, the header's
        # phase too, where requests often arrive in the header's segment.
        with MetricsServer(*PROXY) as srv:
            data = b"PROXY TCP6 2001:db8::5 2001:db8::1 443 9000\r\n" + b"".join(
                b"ECHO %04d\n" % i for i in range(100))
            with srv.connect() as s:
                s.sendall(data)
                self.assertEqual(LineReader(s).lines(100, timeout=5)[-1], "OK 0099")
            self.assertEqual(srv.scrape().get("tpserver_received_bytes_total"), len(data))
            # The log names the client as the listeners are named, an IPv6 one in brackets.
            srv.wait_log(re.escape("PROXY header names [2001:db8::5]:443"))

    def test_refused_at_the_header_drained_and_logged_by_limit(self):
        # A client over the cap that pipelined behind its header reads the
        # refusal then EOF, as one refused at accept does, not a reset that
        # may cost it the line; the log line names the limit it was over and the client.
        with Server(*PROXY, "--max-connections-per-address", "1") as srv:
            a = srv.connect()
            a.sendall(b"PROXY TCP4 192.0.2.9 10.0.0.1 1000 9000\r\nECHO a\n")
            self.assertEqual(LineReader(a).line(), "OK a")
            for _ in range(3):
                with srv.connect() as c:
                    c.sendall(b"PROXY TCP4 192.0.2.9 10.0.0.1 1001 9000\r\n" + b"ECHO b\n" * 20000)
                    c.settimeout(5)
                    self.assertEqual(read_to_eof(c), b"ERR too many connections\n")
            # Each line names the address the header gave, not the proxy's (a tick may split them).
            pattern = r"refused (\d+) connections? \(\1 over max_connections_per_address, all from 192\.0\.2\.9\)"
            self.assertTrue(wait_until(lambda: sum(int(n) for n in re.findall(pattern, srv.log())) == 3, 10),
                            srv.log())
            self.assertNotRegex(srv.log(), r"over max_connections[^_]")

    def test_what_came_with_a_refused_header_takes_no_place(self):
        # The lines behind the header of a client refused over its cap are
        # not answered, nor queued: they held both places of the queue and
        # a waiter, and the next client was refused busy after 1 s.
        with MetricsServer(*PROXY, "--max-connections-per-address", "1", "--workers", "1",
                           "--cheap-workers", "0", "--queue", "2", "--queue-timeout-ms", "1000") as srv:
            hold = srv.connect()
            hold.sendall(b"PROXY TCP4 192.0.2.7 10.0.0.1 1000 9000\r\nSLEEP 2000\n")
            self.assertTrue(wait_until(lambda: srv.scrape().get("tpserver_workers_busy") == 1, 5))
            a = srv.connect()
            a.sendall(b"PROXY TCP4 192.0.2.8 10.0.0.1 1000 9000\r\n")
            b = srv.connect()
            b.sendall(b"PROXY TCP4 192.0.2.8 10.0.0.1 1001 9000\r\n" + b"SLEEP 1000\n" * 3)
            b.settimeout(5)
            self.assertEqual(read_to_eof(b), b"ERR too many connections\n")
            m = srv.scrape()
            self.assertEqual((m.get("tpserver_queue_depth"), m.get("tpserver_queue_waiters")), (0, 0))
            self.assertEqual(request(a, LineReader(a), "SLEEP 1"), "OK 1")
            self.assertEqual(LineReader(hold).line(), "OK 2000")

    def test_missing_header_times_out(self):
        with Server(*PROXY) as srv:
            s = srv.connect()
            t0 = time.monotonic()
            self.assertTrue(closed_by_server(s, timeout=10))
            took = time.monotonic() - t0
            self.assertGreaterEqual(took, 2.9)
            self.assertLess(took, 6.0)
            srv.wait_log(r"1 no PROXY header in time", timeout=15)

    def test_allow(self):
        with Server("--allow", "127.0.0.2/32, ::1") as srv:
            with connect(srv.port, "127.0.0.2") as s:
                self.assertEqual(request(s, LineReader(s), "ECHO in"), "OK in")
            with connect(srv.port, "127.0.0.1") as s:
                self.assertTrue(closed_by_server(s))
            srv.wait_log(r"1 not in listen\.allow", timeout=15)

    def test_reload_proxy_trusted(self):
        with tempfile.NamedTemporaryFile("w", suffix=".conf", delete=False) as f:
            f.write('listen = { proxy_protocol = true; proxy_trusted = ["127.0.0.9"]; };\n')
        self.addCleanup(os.unlink, f.name)
        with Server("--config", f.name, "--log-level", "debug") as srv:
            s = srv.connect()
            self.assertEqual(request(s, LineReader(s), "ECHO untrusted"), "OK untrusted")
            with open(f.name, "w") as g:
                g.write('listen = { proxy_protocol = true; proxy_trusted = ["127.0.0.0/8"]; };\n')
            srv.signal(signal.SIGHUP)
            srv.wait_log(r"reload")
            ok = False
            for _ in range(50):
                with srv.connect() as s:
                    s.sendall(b"PROXY TCP4 203.0.113.5 10.0.0.1 7 9000\r\nECHO t\n")
                    try:
                        if LineReader(s).line(timeout=2) == "OK t":
                            ok = True
                            break
                    except Exception:
                        time.sleep(0.1)
            self.assertTrue(ok)
            srv.wait_log(r"PROXY header names 203\.0\.113\.5:7")


class ProxyActivated(unittest.TestCase):
    def test_under_socket_activation(self):
        if not shutil.which("systemd-socket-activate"):
            self.skipTest("systemd-socket-activate not installed")
        port = free_port()
        log = tempfile.TemporaryFile()
        self.addCleanup(log.close)
        env = dict(os.environ)
        env.pop("LISTEN_FDS", None)
        env.pop("NOTIFY_SOCKET", None)
        proc = subprocess.Popen(["systemd-socket-activate", "-l", "127.0.0.1:%d" % port, tplib.TPSERVER,
                                 "--config", "/dev/null", *PROXY], stdout=log, stderr=subprocess.STDOUT,
                                env=env)
        self.addCleanup(lambda: (proc.kill(), proc.wait()))
        deadline = time.monotonic() + 10
        while True:
            try:
                s = socket.create_connection(("127.0.0.1", port), timeout=10)
                break
            except ConnectionRefusedError:
                self.assertLess(time.monotonic(), deadline)
                time.sleep(0.05)
        with s:
            s.sendall(b"PROXY TCP4 192.0.2.99 10.0.0.1 4242 9000\r\nECHO sa\n")
            self.assertEqual(LineReader(s).line(), "OK sa")
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(b"ECHO no header\n")
            self.assertTrue(closed_by_server(s))
        ok = wait_until(lambda: (log.seek(0), b"PROXY header names 192.0.2.99:4242" in log.read())[1], 10)
        self.assertTrue(ok)


if __name__ == "__main__":
    tplib.main()
