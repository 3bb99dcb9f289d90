# SPDX-License-Identifier: MIT
"""The tpclient commands of docs/TPCLIENT.md and tpclient(1), run against a
real tpserver: each documented command runs (made shorter where it would
take long, by the flags in SHORTER), and where the documentation shows its
output, the real output has the same shape: the same lines with the same
fields in the same order (values aside), the same log lines (numbers
aside), the same JSON fields, the same .hgrm layout.

In docs/TPCLIENT.md an example is an indented block whose commands start
with "$ ": "$ tpserver ARGS &" names the server the block runs against,
"$ tpclient ..." is run and followed by its output (stderr, then stdout),
"$ cat FILE" by a file the block's commands wrote.  In tpclient(1) every
.EX block that starts with "tpclient" is a command; the block under OUTPUT
is the output of the first one."""
import json
import os
import re
import shlex
import subprocess
import tempfile
import unittest

import tplib
from tplib import TPCLIENT, Server

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
DOC = os.path.join(ROOT, "docs", "TPCLIENT.md")
MAN = os.path.join(ROOT, "packaging", "man", "tpclient.1")

# Documented command (as written, after "tpclient") -> flags appended to run it quickly.
SHORTER = {
    "--host 127.0.0.1 --port 9000 --clients 5 --requests 200 --mix balanced --max-inflight 10":
        ["--sleep-ms", "1-10"],
    "--host 127.0.0.1 --port 9000 --clients 5 --requests 200 --mix balanced --max-inflight 10 --json":
        ["--sleep-ms", "1-10"],
    "--clients 20 --duration 30 --rate 500 --sleep-ms 1-50 --json": ["--duration", "1"],
    "--clients 50 --max-inflight 16 --mix echo --duration 10": ["--duration", "1"],
    "-c 4 -R 2k -d 4s --warmup 1s --interval 1s --mix echo": ["-d", "1s"],
    "-c 4 -R 1k -d 5s --mix echo --latency-file run.hgrm": ["-d", "1s"],
}
GROUP_DURATION = ["--duration", "1"]  # the --group examples: 5 s each

NUM = re.compile(r"\d+(\.\d+)?")
KV_LINE = re.compile(r"^([A-Z][A-Z_]*)((?: [\w.]+=\S*)+)$")
LOG_LINE = re.compile(r"^tpclient\[\d+\]: (\w+): (.*)$")


def shape(line):
    """What stays the same between two runs of one command."""
    m = KV_LINE.match(line)
    if m:
        return (m.group(1),) + tuple(kv.split("=", 1)[0] for kv in m.group(2).split())
    m = LOG_LINE.match(line)
    if m:
        return ("log", m.group(1), NUM.sub("N", m.group(2)))
    if re.match(r"^ *[\d.]+ +[\d.]+ +\d+ +([\d.]+|inf)$", line):
        return ("hgrm row",)
    return ("line", re.sub(r"\s+", " ", NUM.sub("N", line.strip())))  # numbers and their padding aside


def shapes(lines):
    """The shapes of the lines, with runs of one shape (interval rows, .hgrm rows) as one."""
    out = []
    for line in lines:
        if not line.strip() or line.strip() in ("...", "(shortened)"):
            continue
        s = shape(line)
        if not out or out[-1] != s:
            out.append(s)
    return out


def clean_run(lines):
    """Whether a report (its SUMMARY and ERRORS lines) is of a run that
    exits 0 (TPCLIENT.md, "Exit status"), None without a report."""
    fields = {}
    for line in lines:
        if line.startswith(("SUMMARY ", "ERRORS ")):
            fields.update(kv.split("=", 1) for kv in line.split()[1:])
    if "sent" not in fields or "busy" not in fields:
        return None
    n = {k: int(v) for k, v in fields.items() if v.isdigit()}
    failures = ("other", "mismatch", "timeouts", "lost", "disconnects", "connect_failed", "gave_up")
    return (not any(n[k] for k in failures) and n["busy"] == n["retries"]
            and n["ok"] + n["retries"] == n["sent"])


def json_keys(value, acc):
    if isinstance(value, dict):
        for k, v in value.items():
            acc.add(k)
            json_keys(v, acc)
    elif isinstance(value, list):
        for v in value:
            json_keys(v, acc)
    return acc


def doc_blocks(text):
    """The "$ " examples of a markdown file: a list of blocks, each a list of
    (command, output lines)."""
    blocks, block, cmd = [], None, None
    for line in text.splitlines() + ["(end)"]:
        if block is not None and not line:
            continue  # a blank line inside a block (an .hgrm file has one)
        if line.startswith("    ") and (block is not None or line[4:].startswith("$ ")):
            if block is None:
                block = []
            body = line[4:]
            if cmd is not None and cmd[0].endswith("\\"):
                cmd[0] = cmd[0][:-1].rstrip() + " " + body.strip()
            elif body.startswith("$ "):
                cmd = [body[2:], []]
                block.append(cmd)
            elif cmd is not None:
                cmd[1].append(body)
            continue
        if block:
            blocks.append([(c, out) for c, out in block])
        block, cmd = None, None
    return blocks


def man_commands(text):
    """The tpclient commands of tpclient(1)'s .EX blocks, and the OUTPUT sample."""
    cmds, sample = [], []
    for block in re.findall(r"^\.EX\n(.*?)^\.EE", text, re.M | re.S):
        block = block.replace("\\-", "-").replace("\\e", "\\")
        lines = block.splitlines()
        if lines[0].startswith("tpclient "):
            cmds.append(" ".join(l.rstrip("\\").strip() for l in lines))
        elif lines[0].startswith("SUMMARY ") and not sample:
            sample = lines
    return cmds, sample


def server_args(block):
    for cmd, _ in block:
        if cmd.startswith("tpserver "):
            args = shlex.split(cmd.rstrip("&").strip())[1:]
            # The test's server listens where it is told; the rest is the example's.
            while "--port" in args:
                i = args.index("--port")
                del args[i:i + 2]
            return args
    return []


class Documented(unittest.TestCase):
    def run_tpclient(self, port, cmd, cwd):
        args = shlex.split(cmd)[1:]
        extra = SHORTER.get(" ".join(args), [])
        if not extra and "--group" in args and "--duration" in args:
            extra = GROUP_DURATION
        full = [TPCLIENT] + args + extra + ["--port", str(port)]
        p = subprocess.run(full, cwd=cwd, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
        return p, " ".join(args)

    def check_output(self, cmd, documented, p, cwd):
        if documented and documented[0].startswith("{"):
            doc_keys = set(re.findall(r'"(\w+)":', "\n".join(documented)))
            real = json.loads(p.stdout)
            self.assertEqual(doc_keys - json_keys(real, set()), set(), cmd)
            self.assertEqual(set(real) - doc_keys, set(), "fields the example of %r does not show" % cmd)
            return
        real = p.stderr.splitlines() + p.stdout.splitlines()
        self.assertEqual(shapes(real), shapes(documented), "%s\n--- documented:\n%s\n--- real:\n%s"
                         % (cmd, "\n".join(documented), "\n".join(real)))

    def check_status(self, cmd, documented, p):
        # The exit status follows the report (0 for a clean run, 1 with any
        # failure in it), and an example shown clean runs clean here too.
        real = clean_run(p.stdout.splitlines())
        if real is not None:
            self.assertEqual(p.returncode, 0 if real else 1, "%s\n%s%s" % (cmd, p.stdout, p.stderr))
        else:
            self.assertIn(p.returncode, (0, 1), p.stderr)
        if clean_run(documented):
            self.assertEqual(p.returncode, 0, "%s: shown clean\n%s%s" % (cmd, p.stdout, p.stderr))

    def test_markdown_examples(self):
        with open(DOC) as f:
            blocks = doc_blocks(f.read())
        ran = 0
        for block in blocks:
            with self.subTest(block=block[0][0]), tempfile.TemporaryDirectory() as cwd, \
                    Server(*server_args(block)) as srv:
                for cmd, documented in block:
                    if cmd.startswith("tpclient "):
                        p, args = self.run_tpclient(srv.port, cmd, cwd)
                        self.check_status(cmd, documented, p)
                        if documented:
                            self.check_output(args, documented, p, cwd)
                        else:
                            self.assertTrue(p.stdout.startswith(("SUMMARY ", "{")), p.stdout + p.stderr)
                        ran += 1
                    elif cmd.startswith("cat "):
                        with open(os.path.join(cwd, cmd.split()[1])) as f:
                            self.assertEqual(shapes(f.read().splitlines()), shapes(documented), cmd)
        self.assertGreaterEqual(ran, 8)

    def test_man_page_examples(self):
        with open(MAN) as f:
            cmds, sample = man_commands(f.read())
        self.assertGreaterEqual(len(cmds), 5)
        with open(DOC) as f:
            doc_outputs = {c: out for b in doc_blocks(f.read()) for c, out in b}
        doc_cmds = set(doc_outputs)
        for i, cmd in enumerate(cmds):
            with self.subTest(cmd=cmd), tempfile.TemporaryDirectory() as cwd, Server() as srv:
                # The examples of the man page are those of docs/TPCLIENT.md, where their output is shown.
                self.assertIn(cmd, doc_cmds)
                p, args = self.run_tpclient(srv.port, cmd, cwd)
                self.assertTrue(p.stdout.startswith(("SUMMARY ", "{")), p.stdout + p.stderr)
                self.check_status(cmd, doc_outputs[cmd], p)
                if i == 0:
                    self.check_output(args, sample, p, cwd)


if __name__ == "__main__":
    tplib.main()
