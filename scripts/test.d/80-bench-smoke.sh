#!/usr/bin/env bash
# Smoke run of the benchmark (bench/README.md): 2 repetitions, small N, about a minute. It
# checks that every benchmark runs end to end and that the report and plot are written; the
# numbers are not checked (timing goals are ratios stated in bench/results.md, never asserted).
# Output goes to a temp dir, never over the committed bench/results.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${MANTLE_BIN:?set MANTLE_BIN to the mantle binary}"
dpkg -s fonts-dejavu-core >/dev/null 2>&1 || {
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fonts-dejavu-core >/dev/null
}
bench="${CARGO_TARGET_DIR:-$PWD/target}/release/mantle-bench"
[ -x "$bench" ] || cargo build -q --release -p mantle-bench
out=$(mktemp -d /tmp/mantle-bench-smoke.XXXXXX)
trap 'rm -rf "$out"' EXIT
"$bench" --smoke --mantle "$MANTLE_BIN" --out "$out/results.md"

fail() { echo "80-bench-smoke: $*" >&2; exit 1; }
[ -s "$out/results.md" ] || fail "no results.md"
# A PNG starts with \x89PNG.
[ "$(head -c 4 "$out/results.png" | tail -c 3)" = "PNG" ] || fail "results.png is not a PNG"
for section in "## 1. Lifecycle" "## 2. Concurrent" "## 3. Memory" "## 4. Syscall" "## 5. File-heavy"; do
  grep -qF "$section" "$out/results.md" || fail "missing section: $section"
done
# mantle (native) was measured: its lifecycle row has a number in the mantle column.
grep -E '^\| create\+start\+wait\+delete \| [0-9]' "$out/results.md" >/dev/null \
  || fail "no native mantle lifecycle number"
grep -E '^\| mantle \|.*\| measured \|' "$out/results.md" >/dev/null || fail "mantle not measured"
echo "80-bench-smoke: ok ($(grep -c '^| ' "$out/results.md") table rows)"
