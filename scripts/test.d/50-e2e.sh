#!/usr/bin/env bash
# End-to-end suite: podman and containerd drive mantle, with runc as the control
# (tests/e2e/run.sh). Expects MANTLE_BIN (set by scripts/test.sh). Bounded to 15 minutes.
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${MANTLE_BIN:=$PWD/target/release/mantle}"
export MANTLE_BIN
timeout --kill-after=30 900 bash tests/e2e/run.sh
