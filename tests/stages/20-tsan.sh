#!/bin/bash
# SPDX-License-Identifier: MIT
# Stage: the whole ctest suite (unit + integration) built with
# ThreadSanitizer (-DTP_SANITIZE=thread, -DTP_WERROR=ON) in $TOP/build-tsan.
# Fails on a failing test or on any report (data race, lock-order
# inversion, signal-unsafe call), also one from a server process.
# Env: TOP (source dir), JOBS; BUILD_DIR overrides the build tree.
set -euo pipefail
: "${TOP:?TOP must name the source directory}"
JOBS=${JOBS:-$(nproc)}
# shellcheck source=lib/sanitized-ctest.sh
. "$TOP/tests/stages/lib/sanitized-ctest.sh"

# No suppressions: every report is about the project's own code or a real
# misuse of a library, and fails the stage.
export TSAN_OPTIONS="halt_on_error=1:exitcode=66:second_deadlock_stack=1:detect_deadlocks=1:report_signal_unsafe=1"

sanitized_ctest thread "${BUILD_DIR:-$TOP/build-tsan}"
