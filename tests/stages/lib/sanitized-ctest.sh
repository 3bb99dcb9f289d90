# SPDX-License-Identifier: MIT
# Sourced by the sanitizer stages (10-asan.sh, 20-tsan.sh); not a stage itself.
#
# sanitized_ctest KIND BUILD_DIR: configure BUILD_DIR with -DTP_SANITIZE=KIND
# and -DTP_WERROR=ON, build it, and run the whole ctest suite (unit and
# integration).  Every sanitizer report goes to a file under
# BUILD_DIR/sanitizer-logs/ (log_path), including reports from the tpserver
# and tpclient processes that the Python tests start: a server that prints a
# report and still exits 0, or that the test kills, is not noticed by the test
# itself.  The run fails when ctest fails or when any report file exists.
# The caller exports the *SAN_OPTIONS it wants; log_path is appended here.

sanitized_ctest() {
	local kind=$1 build=$2
	local logs=$build/sanitizer-logs
	local rc=0

	cmake -S "$TOP" -B "$build" -DTP_WERROR=ON -DTP_SANITIZE="$kind" \
		-DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	cmake --build "$build" -j"$JOBS" >/dev/null
	rm -rf "$logs"
	mkdir -p "$logs"

	ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}log_path=$logs/asan"
	UBSAN_OPTIONS="${UBSAN_OPTIONS:+$UBSAN_OPTIONS:}log_path=$logs/ubsan"
	TSAN_OPTIONS="${TSAN_OPTIONS:+$TSAN_OPTIONS:}log_path=$logs/tsan"
	LSAN_OPTIONS="${LSAN_OPTIONS:+$LSAN_OPTIONS:}log_path=$logs/lsan"
	export ASAN_OPTIONS UBSAN_OPTIONS TSAN_OPTIONS LSAN_OPTIONS

	# Heavy tests (a real Prometheus) run once, in the plain build.
	ctest --test-dir "$build" --output-on-failure -j"$JOBS" -LE heavy || rc=$?

	local reports=()
	mapfile -t reports < <(find "$logs" -type f | sort)
	if [[ ${#reports[@]} -gt 0 ]]; then
		echo "${kind} sanitizer: ${#reports[@]} report(s):" >&2
		for f in "${reports[@]}"; do
			printf '\n--- %s ---\n' "$f" >&2
			head -n 60 "$f" >&2
		done
		rc=1
	fi
	if [[ $rc -ne 0 ]]; then
		echo "${kind} sanitizer stage: FAILED" >&2
		return 1
	fi
	echo "${kind} sanitizer stage: ctest passed, no sanitizer report"
}
