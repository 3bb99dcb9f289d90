# SPDX-License-Identifier: MIT
"""Helpers for the metrics tests: start tpserver with its metrics endpoint,
scrape it over plain HTTP, and read the Prometheus text format."""
import re
import socket

from tplib import Server, read_to_eof

SAMPLE_RE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
LABEL_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


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
