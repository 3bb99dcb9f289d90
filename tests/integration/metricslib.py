# SPDX-License-Identifier: MIT
"""Helpers for the metrics tests: start tpserver with its metrics endpoint,
scrape it over plain HTTP, read the Prometheus text format, check the
request histograms' shape, see the pool idle, read the queue's gauges, and
leave a connection's replies unread."""
import re
import socket
import threading
import time

from tplib import Server, read_to_eof, wait_until

SAMPLE_RE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
LABEL_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')
# The request histograms, each with 22 buckets (METRICS.md).
HISTOGRAMS = ["tpserver_request_admission_wait_seconds", "tpserver_request_queue_wait_seconds",
              "tpserver_request_service_seconds", "tpserver_request_duration_seconds"]


class MetricsServer(Server):
    """A tpserver with --metrics-port 0; self.metrics_port is where it serves /metrics."""

    def __init__(self, *args, **kw):
        super().__init__("--metrics-port", "0", *args, **kw)
        self.metrics_port = self.wait_log(r"metrics on http://127\.0\.0\.1:(\d+)/metrics", group=1, cast=int)

    def scrape_text(self, timeout=5.0):
        status, headers, body = http(self.metrics_port, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", timeout)
        assert status == 200, (status, body)
        assert headers["content-type"].startswith("text/plain; version=0.0.4"), headers
        assert int(headers["content-length"]) == len(body)
        return body.decode()

    def scrape(self, timeout=5.0):
        return parse(self.scrape_text(timeout))

    def pool_state(self):
        """(workers busy, requests queued, requests waiting for a place), as floats."""
        m = self.scrape()
        return tuple(m.get(n) for n in ("tpserver_workers_busy", "tpserver_queue_depth",
                                        "tpserver_queue_waiters"))


def http(port, request, timeout=5.0):
    """Send request as is; returns (status, headers with lower-case names, body) once the server closes."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.sendall(request)
    data = read_to_eof(s)
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    return status, headers, body


class Metrics:
    """Samples by name, each a list of (labels dict, value)."""

    def __init__(self):
        self.samples = {}
        self.types = {}

    def get(self, name, **labels):
        """The value of the one sample of name whose labels include labels."""
        found = [v for l, v in self.samples.get(name, []) if all(l.get(k) == str(x) for k, x in labels.items())]
        if len(found) != 1:
            raise AssertionError("%s%r: %d samples" % (name, labels, len(found)))
        return found[0]

    def buckets(self, name, **labels):
        """[(le, cumulative count)] of histogram name, in order."""
        return [(l["le"], v) for l, v in self.samples.get(name + "_bucket", [])
                if all(l.get(k) == str(x) for k, x in labels.items())]


def parse(text):
    m = Metrics()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, typ = line.split(" ", 3)
            m.types[name] = typ
            continue
        if not line or line.startswith("#"):
            continue
        g = SAMPLE_RE.match(line)
        assert g, "not a sample line: %r" % line
        labels = dict(LABEL_RE.findall(g.group(2) or ""))
        value = float(g.group(3))
        m.samples.setdefault(g.group(1), []).append((labels, value))
    return m


def idle(srv):
    m = srv.scrape()
    return all(m.get(g) == 0 for g in ("tpserver_queue_depth", "tpserver_queue_waiters",
                                       "tpserver_workers_busy")) and m


def replies_left_unread(srv):
    """A connection that pipelines 16 MB of ECHOs and reads none of the
    replies, once tpserver has stopped reading it (its replies fill the
    socket buffers, and then limits.max_unsent_kib) with nothing of it
    queued.  A connection whose replies cannot be written keeps a shutting
    down server up until 1 s past the shutdown deadline (before it is
    closed by force): time for a scrape after the deadline.  Returns the
    thread that sends, which ends when the connection does."""
    x = socket.socket()
    x.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    x.settimeout(30)
    x.connect(("127.0.0.1", srv.port))
    srv.sockets.append(x)
    data = (b"ECHO " + b"x" * 4000 + b"\n") * 4000

    def send():
        try:
            x.sendall(data)
        except OSError:
            pass  # closed by the server (or the test) with data still to send
    t = threading.Thread(target=send, daemon=True)
    t.start()

    def stopped_reading():
        m0 = idle(srv)
        time.sleep(0.2)
        m1 = idle(srv)
        received = m1 and m1.get("tpserver_received_bytes_total")
        return m0 and m1 and m0.get("tpserver_received_bytes_total") == received < len(data)
    assert wait_until(stopped_reading, 15), srv.scrape_text()
    return t


def check_histograms(test, m):
    """Cumulative buckets never go down; +Inf equals _count for every series
    of the request histograms in scrape m (test: the asserting TestCase)."""
    for name in HISTOGRAMS:
        test.assertEqual(m.types[name], "histogram")
        for labels, count in m.samples[name + "_count"]:
            b = m.buckets(name, **labels)
            test.assertEqual(len(b), 22)
            test.assertEqual(b[-1], ("+Inf", count))
            test.assertEqual([v for _, v in b], sorted(v for _, v in b), name)


def queue_state(srv):
    """The queue's gauges in one scrape: depth, capacity, waiters, flows, largest_address."""
    m = srv.scrape()
    return {k: m.get("tpserver_queue_" + k)
            for k in ("depth", "capacity", "waiters", "flows", "largest_address")}
