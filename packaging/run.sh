#!/bin/bash
# SPDX-License-Identifier: MIT
# Install what is missing, build, and run tpserver in the foreground on
# 127.0.0.1:9000 (extra arguments are passed to tpserver; Ctrl-C stops it).
# Only the build packages are needed: the tests are not configured
# (-DTP_TESTS=OFF), unless build/ was already configured with them and
# their tools (cmocka, Python 3) are installed.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
"$top/packaging/deps.sh" build
tests=OFF
if grep -qx 'TP_TESTS:BOOL=ON' "$top/build/CMakeCache.txt" 2>/dev/null &&
	pkg-config --exists cmocka && command -v python3 >/dev/null; then
	tests=ON
fi
cmake -S "$top" -B "$top/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTP_TESTS=$tests >/dev/null
cmake --build "$top/build" -j"$(nproc)" >/dev/null
exec "$top/build/tpserver" --host 127.0.0.1 --port 9000 "$@"
