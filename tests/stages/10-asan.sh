#!/bin/bash
# SPDX-License-Identifier: MIT
# Stage: the whole ctest suite (unit + integration) built with
# AddressSanitizer, LeakSanitizer and UndefinedBehaviorSanitizer
# (-DTP_SANITIZE=address, -DTP_WERROR=ON) in $TOP/build-asan.  Fails on a
# failing test or on any sanitizer report, also one from a server process.
# Env: TOP (source dir), JOBS; BUILD_DIR overrides the build tree.
set -euo pipefail
: "${TOP:?TOP must name the source directory}"
JOBS=${JOBS:-$(nproc)}
# shellcheck source=lib/sanitized-ctest.sh
. "$TOP/tests/stages/lib/sanitized-ctest.sh"

# halt_on_error: stop at the first report; exitcode: a distinctive status
# (the report file, not the status, is what the stage relies on).
export ASAN_OPTIONS="halt_on_error=1:exitcode=66:detect_leaks=1:detect_stack_use_after_return=1:check_initialization_order=1:strict_init_order=1:strict_string_checks=1:detect_invalid_pointer_pairs=0"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:exitcode=67"
export LSAN_OPTIONS="exitcode=66"

sanitized_ctest address "${BUILD_DIR:-$TOP/build-asan}"
