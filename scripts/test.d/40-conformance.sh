#!/usr/bin/env bash
# The OCI conformance suite, differential: every clause test that passes under runc must pass
# under mantle (expected differences are listed, with reasons, in
# conformance/expected-differences.json).
set -euo pipefail
cd "$(dirname "$0")/../.."
out=$(mktemp -d /tmp/mantle-conformance-out.XXXXXX)
trap 'rm -rf "$out"' EXIT
cargo run -q -p mantle-conformance --release -- \
  --runtime /usr/sbin/runc --compare "${MANTLE_BIN:-$PWD/target/release/mantle}" \
  --json "$out/conformance.json"
# The same suite with mantle in sentry mode, reported as mantle-sentry.
cargo run -q -p mantle-conformance --release -- \
  --runtime /usr/sbin/runc --compare "${MANTLE_BIN:-$PWD/target/release/mantle}" \
  --compare-arg=--sandbox=sentry --compare-name mantle-sentry \
  --json "$out/conformance-sentry.json"
