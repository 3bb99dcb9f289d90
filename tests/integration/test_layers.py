#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""tests/layers_check.py: the tree passes it, and each kind of finding
(an include circle, an include up a layer, quoted or in angle brackets, an
include naming several files, a folder in no layer, a long file, a long
function) fails it; what comments and #if 0 hide is not read."""
import os
import subprocess
import sys
import tempfile
import unittest

import tplib

TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
CHECK = os.path.join(TOP, "tests", "layers_check.py")


def function(name, body_lines):
    return "void %s(void)\n{\n%s}\n" % (name, "\tx++;\n" * body_lines)


class LayersCheck(unittest.TestCase):
    def run_check(self, files):
        src = tempfile.mkdtemp()
        self.addCleanup(subprocess.run, ["rm", "-rf", src])
        for rel, text in files.items():
            os.makedirs(os.path.join(src, os.path.dirname(rel)), exist_ok=True)
            with open(os.path.join(src, rel), "w") as f:
                f.write(text)
        p = subprocess.run([sys.executable, CHECK, src], capture_output=True, text=True, timeout=60)
        return p.returncode, p.stdout.splitlines()[:-1]

    def test_the_tree_passes(self):
        p = subprocess.run([sys.executable, CHECK, os.path.join(TOP, "src")], capture_output=True,
                           text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertRegex(p.stdout, r"^layers: 0 findings in [1-9][0-9]+ files\n$")

    def test_a_clean_tree_passes(self):
        code, found = self.run_check({
            "common/a.h": "int a(void);\n",
            "common/a.c": '#include "a.h"\n#include <stdio.h>\n' + function("a", 80),
            "workq/q.c": '#include "q.h"\n#include "a.h"\n',
            "workq/q.h": "",
            "server/s.c": '#include "q.h"\n#include "../common/a.h"\n',
            "client/c.c": '#include "a.h"\n'})
        self.assertEqual((code, found), (0, []))

    def test_an_include_circle(self):
        code, found = self.run_check({
            "server/a.c": '#include "a.h"\n#include "b.h"\n', "server/a.h": "",
            "server/b.c": '#include "b.h"\n', "server/b.h": '#include "c.h"\n',
            "server/c.h": '#include "a.h"\n', "server/d.c": '#include "a.h"\n'})
        self.assertEqual(code, 1)
        self.assertEqual(found, ["server/a: an include circle: server/a <-> server/b <-> server/c"])

    def test_an_include_up_a_layer(self):
        code, found = self.run_check({
            "common/a.c": '\n#include "../workq/q.h"\n', "workq/q.h": "",
            "client/c.c": '#include "s.h"\n', "server/s.h": ""})
        self.assertEqual(code, 1)
        self.assertEqual(found, ["client/c.c:1: includes server/s.h, a layer above client",
                                 "common/a.c:2: includes workq/q.h, a layer above common"])

    def test_an_include_in_angle_brackets_or_ambiguous(self):
        code, found = self.run_check({
            "client/c.c": "#include <stdio.h>\n#include <../server/s.h>\n#include <s.h>\n",
            "server/s.h": "", "server/x.h": "", "workq/x.h": "",
            "server/t.c": '#include "x.h"\n', "common/u.c": '#include "x.h"\n'})
        self.assertEqual(code, 1)
        self.assertEqual(found, ["client/c.c:2: includes server/s.h, a layer above client",
                                 "client/c.c:3: includes server/s.h, a layer above client",
                                 "common/u.c:1: includes x.h, which names server/x.h, workq/x.h"])

    def test_comments_and_if_0_are_not_read(self):
        code, found = self.run_check({
            "common/a.c": ('/* #include "s.h" */\n/*\n#include "s.h"\n*/\n// #include "s.h"\n'
                           '#if 0\n#include "s.h"\n#ifdef X\n#else\n#endif\n#include "s.h"\n'
                           '#else\nconst char *p = "/*";\n#include "t.h"\n#endif\n'),
            "server/s.h": "", "common/t.h": ""})
        self.assertEqual((code, found), (0, []))
        code, found = self.run_check({"common/a.c": '#if 0\n#else\nchar *p = "/*";\n#include "s.h"\n#endif\n',
                                      "server/s.h": ""})
        self.assertEqual(found, ["common/a.c:4: includes server/s.h, a layer above common"])
        # A quote in a character constant opens no string: the comment after it hides the include.
        code, found = self.run_check({"common/a.c": "char q = '\"'; /*\n#include \"s.h\"\n*/\n"
                                                    "char b = '\\\\', e = '\\''; // '\"'\n#include \"s.h\"\n",
                                      "server/s.h": ""})
        self.assertEqual(found, ["common/a.c:5: includes server/s.h, a layer above common"])

    def test_a_folder_in_no_layer(self):
        code, found = self.run_check({"net/n.c": "", "top.c": ""})
        self.assertEqual(code, 1)
        self.assertEqual(found, ["net/n.c: in no layer (client, common, server, workq)",
                                 "top.c: in no layer (client, common, server, workq)"])

    def test_a_long_file_and_a_long_function(self):
        code, found = self.run_check({
            "common/long.c": "\n" * 501,
            "common/f.c": ("struct s {\n\tint x;\n};\n" + function("ok", 80) + function("long", 81) +
                           function("commented", 81).replace("}\n", "} /* commented */\n"))})
        self.assertEqual(code, 1)
        self.assertEqual(found, ["common/f.c:87: a function of 81 lines (at most 80)",
                                 "common/f.c:171: a function of 81 lines (at most 80)",
                                 "common/long.c: 501 lines (at most 500)"])


if __name__ == "__main__":
    tplib.main()
