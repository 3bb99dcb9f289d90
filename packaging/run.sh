#!/bin/bash
# SPDX-License-Identifier: MIT
# Install what is missing, build, and run tpserver in the foreground on
# 127.0.0.1:9000 (extra arguments are passed to tpserver; Ctrl-C stops it).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
"$top/packaging/deps.sh" build
cmake -S "$top" -B "$top/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$top/build" -j"$(nproc)" >/dev/null
exec "$top/build/tpserver" --host 127.0.0.1 --port 9000 "$@"
