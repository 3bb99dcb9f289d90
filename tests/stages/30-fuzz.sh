#!/bin/bash
# SPDX-License-Identifier: MIT
# Stage: fuzz with libFuzzer, four targets sharing the time budget:
# - fuzz_proto: the framer and the protocol parser/formatters
#   (tests/fuzz/fuzz_proto.c, corpus tests/fuzz/corpus);
# - fuzz_config_lex: the configuration scanner against libconfig 1.5
#   (tests/fuzz/fuzz_config_lex.c, corpus tests/fuzz/corpus-config);
# - fuzz_proxy: the PROXY protocol header parser (tests/fuzz/fuzz_proxy.c,
#   corpus tests/fuzz/corpus-proxy);
# - fuzz_handover_state: the reader of the record of connections handed to
#   the next instance (tests/fuzz/fuzz_handover_state.c, corpus
#   tests/fuzz/corpus-handover).
# Each is built with clang -fsanitize=fuzzer,address,undefined in
# $TOP/build-fuzz and runs for a quarter of FUZZ_SECONDS (default 60, so 15 s
# each) on a fresh copy of its corpus (the committed corpus is never
# modified).  A crash, a leak, a failed check (abort), a timeout or an
# out-of-memory fails the stage; the reproducer is left in
# $TOP/build-fuzz/artifacts-<target>/ and can be replayed with:
# build-fuzz/<target> build-fuzz/artifacts-<target>/<file>
# Env: TOP (source dir), JOBS (unused); BUILD_DIR, FUZZ_SECONDS override.
set -euo pipefail
: "${TOP:?TOP must name the source directory}"
build=${BUILD_DIR:-$TOP/build-fuzz}
seconds=${FUZZ_SECONDS:-60}
cc=${FUZZ_CC:-clang}
each=$(((seconds + 3) / 4))

build_target() { # NAME SOURCES... [-- LIBS...]
	local name=$1
	shift
	"$cc" -std=c11 -D_GNU_SOURCE -g -O1 -fno-omit-frame-pointer \
		-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
		-Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wpointer-arith \
		-Wcast-qual -Wwrite-strings -Wformat=2 -Wundef -Wimplicit-fallthrough -Werror \
		-I"$TOP/src/common" -I"$TOP/src/server" "$@" -o "$build/$name"
}

failed=0
run_target() { # NAME CORPUS MAX_LEN
	local name=$1 corpus=$2 max_len=$3 rc=0 found
	rm -rf "$build/corpus-$name" "$build/artifacts-$name"
	mkdir -p "$build/corpus-$name" "$build/artifacts-$name"
	cp "$TOP/tests/fuzz/$corpus"/* "$build/corpus-$name/"
	"$build/$name" -max_total_time="$each" -rss_limit_mb=2048 -malloc_limit_mb=1024 \
		-detect_leaks=1 -timeout=10 -max_len="$max_len" -print_final_stats=1 \
		-artifact_prefix="$build/artifacts-$name/" "$build/corpus-$name" 2>"$build/$name.log" || rc=$?
	echo "$name:"
	grep -E '^(Done|stat::number_of_executed_units|stat::peak_rss_mb)|cov:.*DONE' "$build/$name.log" || true
	mapfile -t found < <(find "$build/artifacts-$name" -type f)
	if [[ $rc -ne 0 || ${#found[@]} -gt 0 ]]; then
		tail -n 60 "$build/$name.log" >&2
		echo "fuzz stage: $name FAILED (exit $rc; reproducers: ${found[*]:-none})" >&2
		failed=1
	fi
}

mkdir -p "$build"
build_target fuzz_proto "$TOP/tests/fuzz/fuzz_proto.c" "$TOP/src/common/framer.c" "$TOP/src/common/proto.c"
# shellcheck disable=SC2046 # pkg-config's flags are words
build_target fuzz_config_lex "$TOP/tests/fuzz/fuzz_config_lex.c" "$TOP/src/server/config_lex.c" \
	"$TOP/src/server/config_scan.c" $(pkg-config --cflags --libs libconfig)
build_target fuzz_proxy "$TOP/tests/fuzz/fuzz_proxy.c" "$TOP/src/common/proxy.c"
build_target fuzz_handover_state "$TOP/tests/fuzz/fuzz_handover_state.c" "$TOP/src/server/handover_state.c"

export ASAN_OPTIONS="halt_on_error=1:detect_leaks=1:detect_stack_use_after_return=1"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
# libconfig 1.5 leaks a string on some syntax errors: not a finding of ours.
export LSAN_OPTIONS="suppressions=$TOP/tests/fuzz/libconfig.supp"
# -max_len: long enough for a line over the default limit (4096) split in chunks.
run_target fuzz_proto corpus 20000
run_target fuzz_config_lex corpus-config 4096
# fuzz_proxy: past the 1024 bytes a long v2 header is decided on, so that its tail is walked.
run_target fuzz_proxy corpus-proxy 8192
run_target fuzz_handover_state corpus-handover 65536

[[ $failed -eq 0 ]] || exit 1
echo "fuzz stage: no crash, leak or failed check in ${each} s per target"
