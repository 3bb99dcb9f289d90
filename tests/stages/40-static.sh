#!/bin/bash
# SPDX-License-Identifier: MIT
# Stage: static analysis of src/.  clang-tidy with the committed .clang-tidy
# and the compile_commands.json of a configured tree ($TOP/build-static),
# then cppcheck (warning, performance, portability), then clang-format's
# check of the layout, then the layers (tests/layers_check.py), then
# pyflakes on the Python of tests/ and bench/ (an undefined name in a test
# shows only when that test runs, and only as an error).  Any finding
# fails the stage.  False positives get a NOLINT(check) / cppcheck-suppress
# on their line with the reason beside it; exclusions of whole checks are in
# .clang-tidy, each with its reason.
# Env: TOP (source dir), JOBS; BUILD_DIR overrides the build tree.
set -euo pipefail
: "${TOP:?TOP must name the source directory}"
JOBS=${JOBS:-$(nproc)}
build=${BUILD_DIR:-$TOP/build-static}
rc=0

# A tool that is not there fails the stage under its own name, not as a finding.
for tool in clang-tidy cppcheck clang-format pyflakes3; do
	command -v "$tool" >/dev/null || { echo "static: $tool is not installed (packaging/deps.sh test installs it)" >&2; exit 1; }
done

# Configuring is enough: clang-tidy needs the compile commands, not objects.
cmake -S "$TOP" -B "$build" -DCMAKE_EXPORT_COMPILE_COMMANDS=ON -DTP_TESTS=OFF >/dev/null
cd "$TOP"
mapfile -t sources < <(find src -name '*.c' | sort)
includes=()
for d in src/*/; do includes+=(-I "${d%/}"); done

echo "clang-tidy: ${#sources[@]} files"
printf '%s\n' "${sources[@]}" |
	xargs -P "$JOBS" -n 1 clang-tidy -p "$build" --quiet 2>"$build/clang-tidy.stderr" || rc=1
if [[ $rc -ne 0 ]]; then
	grep -v -E '^[0-9]+ warnings? (and [0-9]+ errors? )?generated\.$' "$build/clang-tidy.stderr" >&2 || true
	echo "clang-tidy: FAILED" >&2
fi

echo "cppcheck: ${#sources[@]} files"
cppcheck --enable=warning,performance,portability --error-exitcode=1 --inline-suppr \
	--std=c11 --library=posix --library=gnu -D_GNU_SOURCE -DTP_VERSION='"0.0.0"' \
	"${includes[@]}" -j "$JOBS" --quiet "${sources[@]}" || { echo "cppcheck: FAILED" >&2; rc=1; }

echo "clang-format: ${#sources[@]} files and their headers"
clang-format --dry-run --Werror src/*/*.[ch] || { echo "clang-format: src/ is not in the .clang-format layout" >&2; rc=1; }

# The layers: no include circles, no include up a layer (a relative
# "../server/x.h" compiles, so the include-directory rule alone cannot catch
# it), no file over 500 lines, no function over 80.
echo "layers: tests/layers_check.py src"
python3 tests/layers_check.py src || { echo "layers: FAILED" >&2; rc=1; }
mapfile -t python < <(find tests bench -name '*.py' -not -path '*/__pycache__/*' | sort)
echo "pyflakes: ${#python[@]} files"
pyflakes3 "${python[@]}" || { echo "pyflakes: FAILED" >&2; rc=1; }

[[ $rc -eq 0 ]] && echo "static analysis: no finding"
exit $rc
