# SPDX-License-Identifier: MIT
"""The real Prometheus scrapes tpserver: a prometheus server started here on
loopback (1 s scrape interval, temporary storage) scrapes the metrics
endpoint, and queries through its HTTP API return the series after known
traffic.  Heavy (ctest label heavy); exits 77 (skipped) without prometheus
(Debian package prometheus)."""
import json
import shutil
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.parse
import urllib.request

from metricslib import MetricsServer
from tplib import CHEAP_WORKERS, LineReader, free_port

DEADLINE_S = 60


class RealPrometheus(unittest.TestCase):
    def start_prometheus(self, target_port):
        d = tempfile.mkdtemp(prefix="tp-prom-")
        self.addCleanup(shutil.rmtree, d, True)
        with open(d + "/prometheus.yml", "w") as f:
            f.write("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
                    "scrape_configs:\n  - job_name: tpserver\n    scrape_timeout: 1s\n"
                    "    static_configs:\n      - targets: ['127.0.0.1:%d']\n" % target_port)
        self.web = free_port()
        self.log = open(d + "/prometheus.log", "w+")
        self.prom = subprocess.Popen(
            ["prometheus", "--config.file=" + d + "/prometheus.yml", "--storage.tsdb.path=" + d + "/data",
             "--web.listen-address=127.0.0.1:%d" % self.web], stdout=self.log, stderr=subprocess.STDOUT)
        self.addCleanup(self.stop_prometheus)

    def stop_prometheus(self):
        if self.prom.poll() is None:
            self.prom.terminate()
            try:
                self.prom.wait(20)
            except subprocess.TimeoutExpired:
                self.prom.kill()
                self.prom.wait()
        self.log.close()

    def query(self, expr):
        url = "http://127.0.0.1:%d/api/v1/query?%s" % (self.web, urllib.parse.urlencode({"query": expr}))
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                doc = json.load(r)
        except OSError:
            return None
        self.assertEqual(doc["status"], "success")
        return doc["data"]["result"]

    def wait_value(self, expr, want, deadline):
        got = None
        while time.monotonic() < deadline:
            got = self.query(expr)
            if got and float(got[0]["value"][1]) == want:
                return got
            time.sleep(0.5)
        self.log.seek(0)
        self.fail("%s: want %r, last %r\n%s" % (expr, want, got, self.log.read()[-3000:]))

    def test_scraped_series_after_known_traffic(self):
        deadline = time.monotonic() + DEADLINE_S
        with MetricsServer() as srv:
            self.start_prometheus(srv.metrics_port)
            s = srv.connect()
            r = LineReader(s)
            n = 250
            s.sendall(b"".join(b"ECHO p%d\n" % i for i in range(n)) + b"SLEEP 5\nNOPE\n")
            r.lines(n + 2)
            self.wait_value('up{job="tpserver"}', 1, deadline)
            got = self.wait_value('tpserver_requests_total{op="echo",result="ok"}', n, deadline)
            self.assertEqual(got[0]["metric"]["job"], "tpserver")
            self.wait_value('tpserver_requests_total{op="sleep",result="ok"}', 1, deadline)
            self.wait_value('tpserver_requests_total{op="none",result="unknown_op"}', 1, deadline)
            self.wait_value('tpserver_request_queue_wait_seconds_count', n + 1, deadline)
            self.wait_value('tpserver_request_duration_seconds_bucket{op="echo",le="+Inf"}', n, deadline)
            self.wait_value('tpserver_connections', 1, deadline)
            self.wait_value('tpserver_workers', 8 + CHEAP_WORKERS, deadline)
            # PromQL over the histogram: a quantile is a number within the buckets.
            q = self.query('histogram_quantile(0.99, tpserver_request_service_seconds_bucket{op="echo"})')
            self.assertTrue(q and 0 <= float(q[0]["value"][1]) <= 50, q)
            self.wait_value('count(process_start_time_seconds{job="tpserver"})', 1, deadline)


if __name__ == "__main__":
    if not shutil.which("prometheus"):
        print("SKIP: prometheus not installed (Debian package prometheus)")
        sys.exit(77)
    unittest.main()
