#!/bin/bash
# SPDX-License-Identifier: MIT
# The Debian package under a booted systemd (systemd-nspawn): see tests/e2e/run.sh.
set -euo pipefail
exec bash "$TOP/tests/e2e/run.sh"
