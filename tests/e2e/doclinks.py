#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Check that every relative link of the Markdown files under DIR resolves
to a file or directory that exists, as a reader of the installed copy
(/usr/share/doc/tpserver) follows them.

    doclinks.py DIR

Prints each Markdown file with its link count, and each broken link as
FILE:LINE: TARGET; exits 1 when a link is broken or no Markdown file was
found, and when a Markdown file is compressed (its links would not work).
Absolute URLs (scheme:) and links within a page (#anchor) are not checked.
"""
import os
import re
import sys

LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")


def check(top):
    broken, files = [], 0
    for d, _, names in os.walk(top):
        for n in sorted(names):
            path = os.path.join(d, n)
            if n.endswith(".md.gz"):
                broken.append("%s: compressed: its links do not work" % path)
                continue
            if not n.endswith(".md"):
                continue
            files += 1
            count = 0
            in_code = False
            with open(path, encoding="utf-8") as f:
                for lineno, line in enumerate(f, 1):
                    if line.lstrip().startswith("```"):
                        in_code = not in_code
                    if in_code:
                        continue
                    for target in LINK.findall(line):
                        if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", target) or target.startswith("#"):
                            continue
                        count += 1
                        rel = target.split("#", 1)[0]
                        if not os.path.exists(os.path.join(os.path.dirname(path), rel)):
                            broken.append("%s:%d: %s" % (path, lineno, target))
            print("%s: %d relative links" % (os.path.relpath(path, top), count))
    if files == 0:
        broken.append("%s: no Markdown file" % top)
    return broken


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    broken = check(sys.argv[1])
    for b in broken:
        print("broken: " + b)
    sys.exit(1 if broken else 0)


if __name__ == "__main__":
    main()
