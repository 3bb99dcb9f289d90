#!/bin/bash
# SPDX-License-Identifier: MIT
# README's run command (./packaging/run.sh) on a fresh minimal Debian 12 in
# systemd-nspawn: it installs, builds and serves (see tests/e2e/fresh.sh).
set -euo pipefail
exec bash "$TOP/tests/e2e/fresh.sh"
