#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The source tree's structure, as docs/DESIGN.md states it ("Layers and
modules"): no include circle between modules (a .c file and the .h of the
same name are one module), no include of a higher layer, no file over
500 lines, no function over 80.

    tests/layers_check.py [SRC]      (default: src beside this file's folder)

Prints one line per finding, "PATH[:LINE]: what"; exit status 1 when there
is one, 0 when there is none, 2 on bad usage.  The layers, lowest first:
common < workq < server, and common < client; a folder not named here is a
finding of its own.  An include names the file beside the including one
(quoted), else the file it names below a layer folder (the build's include
directories are the layer folders), else (quoted) the file of its name
anywhere; one that names no file of the tree is not the project's, one
that names several is a finding.  Comments and #if 0 branches are not read
(strings and character constants are, whole: "/*" or '"' opens nothing).
"""
import os
import re
import sys

# Each layer and the layers it may include, itself among them.
MAY_INCLUDE = {
    "common": {"common"},
    "workq": {"workq", "common"},
    "server": {"server", "workq", "common"},
    "client": {"client", "common"},
}
MAX_FILE_LINES = 500
MAX_FUNCTION_LINES = 80
INCLUDE = re.compile(r'^\s*#\s*include\s*(["<])([^">]+)[">]')
IF_ZERO = re.compile(r"^\s*#\s*if\s+0\b")
IF_ANY = re.compile(r"^\s*#\s*if")
ELSE_OR_END = re.compile(r"^\s*#\s*(else|elif|endif)\b")


def code_of(lines):
    """The lines as the compiler reads them for includes: comments blanked
    (a line stays a line), the lines of an #if 0 branch empty."""
    out, in_comment, skip_depth = [], False, 0
    for line in lines:
        text, i = [], 0
        while i < len(line):
            if in_comment:
                end = line.find("*/", i)
                if end < 0:
                    break
                in_comment, i = False, end + 2
            elif line.startswith("/*", i):
                in_comment, i = True, i + 2
            elif line.startswith("//", i):
                break
            elif line[i] in "\"'":  # a string or a character: copied whole, "/*" or '"' in it is no comment
                end = i + 1
                while end < len(line) and line[end] != line[i]:
                    end += 2 if line[end] == "\\" else 1
                text.append(line[i:end + 1])
                i = end + 1
            else:
                text.append(line[i])
                i += 1
        code = "".join(text)
        if skip_depth:
            branch = ELSE_OR_END.match(code)
            if IF_ANY.match(code):
                skip_depth += 1
            elif branch and (branch.group(1) == "endif" or skip_depth == 1):
                skip_depth -= 1  # the end of an #if inside, or the live branch of the #if 0
            code = ""
        elif IF_ZERO.match(code):
            skip_depth, code = 1, ""
        out.append(code)
    return out


def read_tree(src):
    """{path relative to src: list of lines} of every .c and .h file."""
    tree = {}
    for root, dirs, names in os.walk(src):
        dirs.sort()
        for name in sorted(names):
            if name.endswith((".c", ".h")):
                path = os.path.join(root, name)
                with open(path, encoding="utf-8", errors="replace") as f:
                    tree[os.path.relpath(path, src)] = f.read().splitlines()
    return tree


def resolver(tree):
    """resolve(rel, quote, inc) -> the files of the tree the include may
    name: the one beside the including file, else those the include names
    below a layer folder (the build's include directories), else (a quoted
    include) those of its file name anywhere.  No file: not the project's."""
    by_name = {}
    for rel in tree:
        by_name.setdefault(os.path.basename(rel), []).append(rel)

    def resolve(rel, quote, inc):
        beside = os.path.normpath(os.path.join(os.path.dirname(rel), inc))
        if quote == '"' and beside in tree:
            return [beside]
        below = [os.path.normpath(os.path.join(folder, inc)) for folder in MAY_INCLUDE]
        found = sorted({t for t in below if t in tree})
        return found or (by_name.get(os.path.basename(inc), []) if quote == '"' else [])

    return resolve


def layer(rel):
    return rel.split(os.sep, 1)[0] if os.sep in rel else ""


def module(rel):
    return os.path.splitext(rel)[0]


def include_findings(tree, graph):
    """Includes up a layer; fills graph (module -> set of modules) on the way."""
    resolve, found = resolver(tree), []
    for rel, lines in sorted(tree.items()):
        own = layer(rel)
        if own not in MAY_INCLUDE:
            found.append("%s: in no layer (%s)" % (rel, ", ".join(sorted(MAY_INCLUDE))))
            continue
        for n, line in enumerate(code_of(lines), 1):
            m = INCLUDE.match(line)
            targets = resolve(rel, m.group(1), m.group(2)) if m else []
            if len(targets) > 1:
                found.append("%s:%d: includes %s, which names %s" % (rel, n, m.group(2), ", ".join(targets)))
            if len(targets) != 1:
                continue
            target = targets[0]
            if layer(target) not in MAY_INCLUDE[own]:
                found.append("%s:%d: includes %s, a layer above %s" % (rel, n, target, own))
            if module(target) != module(rel):
                graph.setdefault(module(rel), set()).add(module(target))
    return found


def circles(graph):
    """The strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on_stack, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(max(1000, 4 * len(graph)))
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def length_findings(tree):
    """Files over MAX_FILE_LINES; functions over MAX_FUNCTION_LINES.  In the
    tree's layout (.clang-format) a function body opens with a line that is
    "{" alone and closes with the next line that starts with "}" (a comment
    may follow it)."""
    found = []
    for rel, lines in sorted(tree.items()):
        if len(lines) > MAX_FILE_LINES:
            found.append("%s: %d lines (at most %d)" % (rel, len(lines), MAX_FILE_LINES))
        start = None
        for n, line in enumerate(lines, 1):
            if line == "{":
                start = n
            elif line.startswith("}") and start is not None:
                if n - start - 1 > MAX_FUNCTION_LINES:
                    found.append("%s:%d: a function of %d lines (at most %d)"  # at its name's line
                                 % (rel, max(start - 1, 1), n - start - 1, MAX_FUNCTION_LINES))
                start = None
    return found


def check(src):
    tree, graph = read_tree(src), {}
    found = include_findings(tree, graph)
    found += ["%s: an include circle: %s" % (c[0], " <-> ".join(c)) for c in circles(graph)]
    return found + length_findings(tree), len(tree)


def main(argv):
    if len(argv) > 2:
        print("usage: tests/layers_check.py [SRC]", file=sys.stderr)
        return 2
    src = argv[1] if len(argv) == 2 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src")
    if not os.path.isdir(src):
        print("layers_check: %s is not a directory" % src, file=sys.stderr)
        return 2
    found, nfiles = check(src)
    for line in found:
        print(line)
    print("layers: %d finding%s in %d files" % (len(found), "" if len(found) == 1 else "s", nfiles))
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
