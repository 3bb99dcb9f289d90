#!/bin/bash
# SPDX-License-Identifier: MIT
# Stage: fuzz the framer and the protocol parser/formatters with libFuzzer.
# Builds tests/fuzz/fuzz_proto.c with clang -fsanitize=fuzzer,address,undefined
# in $TOP/build-fuzz and runs it for FUZZ_SECONDS (default 60) on a fresh
# copy of tests/fuzz/corpus (the committed corpus is never modified).  A
# crash, a leak, a failed check (abort), a timeout or an out-of-memory fails
# the stage; the reproducer is left in $TOP/build-fuzz/artifacts/ and can be
# replayed with: build-fuzz/fuzz_proto build-fuzz/artifacts/<file>
# Env: TOP (source dir), JOBS (unused); BUILD_DIR, FUZZ_SECONDS override.
set -euo pipefail
: "${TOP:?TOP must name the source directory}"
build=${BUILD_DIR:-$TOP/build-fuzz}
seconds=${FUZZ_SECONDS:-60}
cc=${FUZZ_CC:-clang}

rm -rf "$build/corpus" "$build/artifacts"
mkdir -p "$build/corpus" "$build/artifacts"
cp "$TOP"/tests/fuzz/corpus/* "$build/corpus/"

"$cc" -std=c11 -D_GNU_SOURCE -g -O1 -fno-omit-frame-pointer \
	-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
	-Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wpointer-arith \
	-Wcast-qual -Wwrite-strings -Wformat=2 -Wundef -Wimplicit-fallthrough -Werror \
	-I"$TOP/src/common" "$TOP/tests/fuzz/fuzz_proto.c" "$TOP/src/common/framer.c" "$TOP/src/common/proto.c" \
	-o "$build/fuzz_proto"

export ASAN_OPTIONS="halt_on_error=1:detect_leaks=1:detect_stack_use_after_return=1"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
rc=0
# -max_len: long enough for a line over the default limit (4096) split in chunks.
"$build/fuzz_proto" -max_total_time="$seconds" -rss_limit_mb=2048 -malloc_limit_mb=1024 \
	-detect_leaks=1 -timeout=10 -max_len=20000 -print_final_stats=1 \
	-artifact_prefix="$build/artifacts/" "$build/corpus" 2>"$build/fuzz.log" || rc=$?
grep -E '^(Done|stat::number_of_executed_units|stat::peak_rss_mb)|cov:.*DONE' "$build/fuzz.log" || true

mapfile -t found < <(find "$build/artifacts" -type f)
if [[ $rc -ne 0 || ${#found[@]} -gt 0 ]]; then
	tail -n 60 "$build/fuzz.log" >&2
	echo "fuzz stage: FAILED (exit $rc; reproducers: ${found[*]:-none})" >&2
	exit 1
fi
echo "fuzz stage: no crash, leak or failed check in ${seconds} s"
