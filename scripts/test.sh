#!/usr/bin/env bash
# Runs every test of mantle: formatting and lints, unit and integration tests, the OCI
# conformance suite against runc and mantle, the podman/containerd end-to-end suite, and a
# smoke run of the benchmarks. Installs what it needs first. Run as root.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never
scripts/setup-host.sh

echo "== fmt and clippy"
cargo fmt --all --check
cargo clippy --workspace --all-targets --release -q -- -D warnings

echo "== build"
cargo build --workspace --release -q
export MANTLE_BIN="$PWD/target/release/mantle"

echo "== unit and integration tests"
cargo test --workspace --release --no-fail-fast -- --test-threads=2
for s in scripts/test.d/*.sh; do
  [ -e "$s" ] || continue
  echo "== $s"
  bash "$s"
done
echo "== all tests passed"
