#!/bin/bash
# SPDX-License-Identifier: MIT
# Install what is missing, build, and run the whole test suite:
#   unit + integration tests (ctest), then the same under ASan+UBSan and
#   under TSan, the fuzz targets, static analysis, and the end-to-end test
#   under a booted systemd.
# usage: packaging/test.sh [--quick]     (--quick: the plain ctest run only)
# Build trees go to build-test*/ in the source tree.  Each further stage is a
# script in tests/stages/, run in name order with TOP and JOBS set.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
quick=0
[[ ${1:-} == --quick ]] && quick=1
jobs=$(nproc)
failed=()
skipped=()

stage() { printf '\n=== %s ===\n' "$*"; }

# The plain run names every skipped test, also one in a file whose other
# tests passed; under CI (every prerequisite installed) a skip fails it.
ctest_tree() { # ctest_tree DIR [cmake args...]
	local dir=$1 rc=0
	shift
	cmake -S "$top" -B "$dir" -DTP_WERROR=ON "$@" >/dev/null
	cmake --build "$dir" -j"$jobs" >/dev/null
	rm -f "$dir/skipped.txt"
	TP_SKIP_LOG="$dir/skipped.txt" ctest --test-dir "$dir" --output-on-failure -j"$jobs" |
		tee "$dir/ctest.out" || rc=1
	grep -E '\(Skipped\)$' "$dir/ctest.out" >>"$dir/skipped.txt" || true
	if [[ -s $dir/skipped.txt ]]; then
		echo "skipped tests:"
		sed 's/^/  /' "$dir/skipped.txt"
		if [[ ${CI:-} == true || -n ${TP_REQUIRE_ALL:-} ]]; then
			echo "test.sh: a test was skipped under CI or TP_REQUIRE_ALL"
			rc=1
		fi
	fi
	return "$rc"
}

"$top/packaging/deps.sh" all

# TP_REQUIRE_ALL asks of every stage what CI does: one that cannot run fails.
if [[ -n ${TP_REQUIRE_ALL:-} ]]; then
	export TP_E2E_REQUIRE=1
fi

stage "build and test (RelWithDebInfo, -Werror)"
ctest_tree "$top/build-test" || failed+=(ctest)

if [[ $quick == 0 ]]; then
	for extra in "$top"/tests/stages/*.sh; do
		[[ -e $extra ]] || continue
		name=$(basename "$extra" .sh)
		stage "$name"
		rc=0
		TOP=$top JOBS=$jobs bash "$extra" || rc=$?
		if [[ $rc -eq 77 && (${CI:-} == true || -n ${TP_REQUIRE_ALL:-}) ]]; then
			failed+=("$name") # it said why; under CI or TP_REQUIRE_ALL that is a failure
		elif [[ $rc -eq 77 ]]; then # the stage cannot run here, and said why
			skipped+=("$name")
		elif [[ $rc -ne 0 ]]; then
			failed+=("$name")
		fi
	done
fi

echo
if [[ ${#failed[@]} -gt 0 ]]; then
	echo "test.sh: FAILED: ${failed[*]}"
	exit 1
fi
if [[ ${#skipped[@]} -gt 0 ]]; then
	echo "test.sh: all stages that ran passed; SKIPPED: ${skipped[*]}"
else
	echo "test.sh: all stages passed"
fi
