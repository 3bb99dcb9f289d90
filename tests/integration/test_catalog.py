# SPDX-License-Identifier: MIT
"""The journal catalog (systemd/tpserver.catalog): every MESSAGE_ID the
daemon logs (message_ids[] in src/common/log.c) has an entry, every entry
is one of them, each says what happened, why and what to do, and
journalctl compiles the file into a catalog database that lists them."""
import os
import re
import shutil
import subprocess
import tempfile
import unittest

import tplib

TOP = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
CATALOG = os.path.join(TOP, "systemd", "tpserver.catalog")
LOG_C = os.path.join(TOP, "src", "common", "log.c")


def logged_ids():
    """{MESSAGE_ID: event} from the message_ids[] table of log.c."""
    with open(LOG_C) as f:
        text = f.read()
    m = re.search(r"message_ids\[\]\s*=\s*\{(.*?)\n\};", text, re.S)
    assert m, "no message_ids[] table in log.c"
    return {i: e for e, i in re.findall(r'\{\s*"([a-z_]+)"\s*,\s*"([0-9a-f]{32})"\s*\}', m.group(1))}


def catalog_entries():
    """{MESSAGE_ID: (headers, body)} from the catalog file."""
    entries = {}
    with open(CATALOG) as f:
        lines = [l.rstrip("\n") for l in f if not l.startswith("#")]
    cur = None
    for line in lines:
        m = re.match(r"^-- ([0-9a-f]{32})$", line)
        if m:
            assert m.group(1) not in entries, "entry %s twice" % m.group(1)
            cur = entries[m.group(1)] = ({}, [])
        elif cur is not None and not cur[1] and ":" in line and re.match(r"^[A-Z][A-Za-z-]*: ", line):
            k, v = line.split(": ", 1)
            cur[0][k] = v
        elif cur is not None:
            cur[1].append(line)
    return entries


class Catalog(unittest.TestCase):
    def test_every_id_has_an_entry_and_back(self):
        ids = logged_ids()
        self.assertGreaterEqual(len(ids), 8)
        entries = catalog_entries()
        missing = sorted("%s (%s)" % (i, e) for i, e in ids.items() if i not in entries)
        self.assertEqual(missing, [], "MESSAGE_IDs of log.c without a catalog entry")
        extra = sorted(set(entries) - set(ids))
        self.assertEqual(extra, [], "catalog entries for no MESSAGE_ID of log.c")

    def test_entries_say_what_why_and_what_to_do(self):
        for mid, (headers, body) in catalog_entries().items():
            with self.subTest(id=mid):
                for k in ("Subject", "Defined-By", "Support", "Documentation"):
                    self.assertIn(k, headers)
                self.assertTrue(headers["Subject"].startswith("tpserver "), headers["Subject"])
                text = " ".join(body)
                self.assertGreater(len(text.split()), 40, "a short explanation")
                # Either something to do or that nothing needs doing.
                self.assertRegex(text, r"systemctl|tpserver --check-config|raise|[Rr]eport|Nothing needs")

    @unittest.skipUnless(shutil.which("journalctl"), "journalctl not installed")
    def test_journalctl_reads_the_catalog(self):
        root = tempfile.mkdtemp(prefix="tp-catalog-")
        self.addCleanup(shutil.rmtree, root)
        d = os.path.join(root, "usr", "lib", "systemd", "catalog")
        os.makedirs(d)
        shutil.copy(CATALOG, d)
        p = subprocess.run(["journalctl", "--root", root, "--update-catalog"],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stderr.strip(), "")
        p = subprocess.run(["journalctl", "--root", root, "--list-catalog"],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        listed = {l.split()[0] for l in p.stdout.splitlines() if l.strip()}
        self.assertEqual(listed, set(logged_ids()))


if __name__ == "__main__":
    tplib.main()
