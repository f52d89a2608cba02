#!/usr/bin/env bash
# End-to-end suite: real clients (podman, containerd's ctr) drive a runtime binary.
#
# Every scenario runs twice: under runc (the control) and under mantle. A scenario that fails
# under runc too is an environment problem: it is reported as SKIP with runc's reason, never as
# a mantle pass. A mantle failure listed in KNOWN_FAILURES is reported as KNOWN and is not
# counted as a failure while it stays listed.
#
# Output: one line per scenario per runtime, then a final line `N passed, M failed`; the exit
# status is 1 when M > 0.
#
# Environment:
#   MANTLE_BIN     mantle binary (default: target/release/mantle of this checkout)
#   RUNC_BIN       control runtime (default: runc from PATH)
#   E2E_ONLY       extended regex: run only the scenarios whose name matches
#   E2E_KEEP_LOGS  keep the per-scenario logs (their directory is printed at the end)
# Run as root (rootful podman, a private containerd).
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
MANTLE_BIN=${MANTLE_BIN:-$REPO/target/release/mantle}
RUNC_BIN=${RUNC_BIN:-$(command -v runc || true)}
E2E_ONLY=${E2E_ONLY:-.}

# shellcheck source=tests/e2e/lib.sh
. "$HERE/lib.sh"
# shellcheck source=tests/e2e/podman.sh
. "$HERE/podman.sh"
# shellcheck source=tests/e2e/containerd.sh
. "$HERE/containerd.sh"

if [ "$(id -u)" != 0 ]; then
  echo "e2e: must run as root" >&2
  exit 1
fi
[ -x "$MANTLE_BIN" ] || { echo "e2e: mantle binary $MANTLE_BIN not found (set MANTLE_BIN)" >&2; exit 1; }
[ -x "$RUNC_BIN" ] || { echo "e2e: runc not found (set RUNC_BIN)" >&2; exit 1; }

WORK=$(mktemp -d /tmp/mantle-e2e.XXXXXX)
REASON_FILE=$WORK/reason
LOGS=$WORK/logs
mkdir -p "$LOGS"

cleanup() {
  trap - EXIT INT TERM
  podman_cleanup
  stop_containerd
  remove_image
  # Servers and other helpers scenarios left in the background.
  local j
  for j in $(jobs -p); do kill "$j" 2>/dev/null; done
  if [ -n "${E2E_KEEP_LOGS:-}" ]; then
    echo "e2e: logs kept in $LOGS"
    rm -rf "$WORK/rootfs" "$WORK/rootfs.tar" "$WORK/image.tar"
  else
    rm -rf "$WORK"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Known mantle failures: "scenario reason..." per line; # comments.
declare -A KNOWN=()
if [ -f "$HERE/KNOWN_FAILURES" ]; then
  while read -r name reason; do
    case $name in '' | '#'*) continue ;; esac
    KNOWN[$name]=$reason
  done <"$HERE/KNOWN_FAILURES"
fi

PASSED=0 FAILED=0 SKIPPED=0 KNOWNS=0

# Run one scenario function under one runtime; sets RESULT (0 ok) and REASON.
run_one() {
  local sc=$1
  : >"$REASON_FILE"
  SCENARIO=$sc
  (
    set +e
    "sc_$sc"
  ) >"$LOGS/$sc.$RTNAME.log" 2>&1
  RESULT=$?
  REASON=$(tail -n 1 "$REASON_FILE")
  if [ "$RESULT" != 0 ] && [ -z "$REASON" ]; then
    REASON="scenario returned $RESULT (see $sc.$RTNAME.log)"
  fi
  if [ "$RESULT" = 0 ] && [ -n "$REASON" ]; then
    RESULT=1 # a check failed but the scenario forgot to return
  fi
  podman_cleanup
}

# runc's result per scenario, reused as the control of variants (CONTROL_OF).
declare -A RUNC_RESULT=() RUNC_REASON=()

# runc's result for scenario $1 (run once).
control_result() {
  if [ -z "${RUNC_RESULT[$1]+set}" ]; then
    RT=$RUNC_BIN RTNAME=runc run_one "$1"
    RUNC_RESULT[$1]=$RESULT RUNC_REASON[$1]=$REASON
  fi
}

# The control first, then mantle; print one line each and count.
scenario() {
  local sc=$1 t0=$SECONDS runc_ok runc_reason control note=""
  [[ $sc =~ $E2E_ONLY ]] || return 0
  control=${CONTROL_OF[$sc]:-$sc}
  [ "$control" = "$sc" ] || note=" (control: $control)"
  control_result "$control"
  runc_ok=${RUNC_RESULT[$control]} runc_reason=${RUNC_REASON[$control]}
  if [ "$runc_ok" = 0 ]; then
    printf 'PASS  runc    %s%s\n' "$sc" "$note"
    PASSED=$((PASSED + 1))
  else
    printf 'SKIP  runc    %s%s: environment: %s\n' "$sc" "$note" "$runc_reason"
    SKIPPED=$((SKIPPED + 1))
  fi
  RT=$MANTLE_BIN RTNAME=mantle run_one "$sc"
  if [ "$runc_ok" != 0 ]; then
    printf 'SKIP  mantle  %s: environment (fails under runc too); mantle: %s\n' "$sc" \
      "$([ "$RESULT" = 0 ] && echo ok || echo "$REASON")"
    SKIPPED=$((SKIPPED + 1))
  elif [ "$RESULT" = 0 ]; then
    if [ -n "${KNOWN[$sc]:-}" ]; then
      printf 'PASS  mantle  %s (listed in KNOWN_FAILURES: remove it)\n' "$sc"
    else
      printf 'PASS  mantle  %s\n' "$sc"
    fi
    PASSED=$((PASSED + 1))
  elif [ -n "${KNOWN[$sc]:-}" ]; then
    printf 'KNOWN mantle  %s: %s [known: %s]\n' "$sc" "$REASON" "${KNOWN[$sc]}"
    KNOWNS=$((KNOWNS + 1))
  else
    printf 'FAIL  mantle  %s: %s\n' "$sc" "$REASON"
    FAILED=$((FAILED + 1))
  fi
  [ $((SECONDS - t0)) -lt 60 ] || echo "      ($sc took $((SECONDS - t0))s)"
}

echo "e2e: mantle=$MANTLE_BIN control=$RUNC_BIN ($("$RUNC_BIN" --version | head -n 1))"
if ! build_image >"$LOGS/image.log" 2>&1; then
  echo "e2e: cannot build the test image (environment): $(tail -n 3 "$LOGS/image.log" | tr '\n' ' ')"
  echo "0 passed, 1 failed"
  exit 1
fi

for sc in $PODMAN_SCENARIOS; do scenario "$sc"; done

if [[ $CONTAINERD_SCENARIOS =~ $E2E_ONLY ]] || [ "$E2E_ONLY" = . ]; then
  if start_containerd >"$LOGS/containerd-start.log" 2>&1; then
    for sc in $CONTAINERD_SCENARIOS; do scenario "$sc"; done
  else
    for sc in $CONTAINERD_SCENARIOS; do
      [[ $sc =~ $E2E_ONLY ]] || continue
      printf 'SKIP  runc    %s: environment: private containerd did not start\n' "$sc"
      printf 'SKIP  mantle  %s: environment: private containerd did not start\n' "$sc"
      SKIPPED=$((SKIPPED + 2))
    done
  fi
fi

echo "e2e: $SKIPPED skipped (environment), $KNOWNS known mantle failures, ${SECONDS}s"
echo "$PASSED passed, $FAILED failed"
[ "$FAILED" = 0 ]
