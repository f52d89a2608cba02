# shellcheck shell=bash
# shellcheck disable=SC2016,SC2034  # single quotes are for the container shell; variables are read by run.sh
# Helpers of the end-to-end suite (sourced by run.sh): the test image, the podman and ctr
# wrappers, the private containerd, and the assertions scenarios use.
#
# Conventions every scenario follows:
#   - $RT is the runtime binary under test (mantle or runc), $RTNAME its short name;
#   - every external command is bounded by `timeout` (via pm/ctrx or explicitly);
#   - a failed check calls `why "reason"` and returns 1; the last reason is what gets reported;
#   - containers are named with `cname` so the cleanup finds them all.

IMAGE=localhost/mantle-e2e-busybox:latest
PREFIX=mantle-e2e
CTR_NS=mantle-e2e

# Scenarios whose control is another scenario's runc result (variants of mantle-only modes).
declare -A CONTROL_OF=()

# Record why the current scenario failed (shown on its result line).
why() {
  printf '%s\n' "$*" >>"$REASON_FILE"
  return 1
}

# Container name for this runtime and scenario.
cname() { echo "$PREFIX-$RTNAME-$SCENARIO${1:+-$1}"; }

# podman with the runtime under test; extra global flags may come in $PODMAN_FLAGS.
pm() {
  # shellcheck disable=SC2086
  timeout "${TMO:-60}" podman --runtime "$RT" ${PODMAN_FLAGS:-} "$@"
}

# Run a container to completion, capture its output in $OUT and its exit code in $RC.
# Usage: prun [podman run flags...] -- cmd args...
prun() {
  local flags=()
  while [ $# -gt 0 ] && [ "$1" != -- ]; do flags+=("$1"); shift; done
  shift
  local t0=$SECONDS
  OUT=$(pm run --rm --pull=never "${flags[@]}" "$IMAGE" "$@" 2>&1)
  RC=$?
  printf '%s\n' "--- podman run ${flags[*]} $* -> rc=$RC ($((SECONDS - t0))s)" "$OUT"
}

# expect_rc WANT WHAT: check $RC.
expect_rc() {
  [ "$RC" = "$1" ] || why "$2: exit code $RC, want $1 (output: $(printf '%s' "$OUT" | tr '\n' ' ' | cut -c1-160))"
}

# expect_out REGEX WHAT: check $OUT matches (extended regex, whole output).
expect_out() {
  printf '%s' "$OUT" | grep -Eq -- "$1" || why "$2: output does not match /$1/: $(printf '%s' "$OUT" | tr '\n' ' ' | cut -c1-160)"
}

# Start a long-lived detached container: dstart NAME [flags...] -- cmd...
dstart() {
  local name=$1
  shift
  local flags=()
  while [ $# -gt 0 ] && [ "$1" != -- ]; do flags+=("$1"); shift; done
  shift
  pm run -d --pull=never --name "$name" "${flags[@]}" "$IMAGE" "$@" >/dev/null || why "run -d $name failed"
}

# Poll (bounded) until a command succeeds: waitfor SECONDS cmd...
waitfor() {
  local end=$((SECONDS + $1))
  shift
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $end ] || return 1
    sleep 0.1
  done
}

# Whether something listens on host address $1 port $2.
port_open() {
  timeout 2 bash -c "exec 3<>/dev/tcp/$1/$2" 2>/dev/null
}

# The host-side cgroup v1 directory of a container's init for controller $2.
cgroup_dir() {
  local pid rel
  pid=$(pm inspect -f '{{.State.Pid}}' "$1") || return 1
  rel=$(awk -F: -v c="$2" '{ n = split($2, a, ","); for (i = 1; i <= n; i++) if (a[i] == c) print $3 }' "/proc/$pid/cgroup")
  [ -n "$rel" ] || return 1
  echo "/sys/fs/cgroup/$2$rel"
}

# Remove every container this suite created with podman (whatever the runtime).
podman_cleanup() {
  local ids
  ids=$(timeout 30 podman ps -a -q --filter "name=^$PREFIX-" 2>/dev/null)
  # shellcheck disable=SC2086
  [ -z "$ids" ] || timeout 60 podman rm -f -t 0 $ids >/dev/null 2>&1
}

# --- image -----------------------------------------------------------------------------

# A busybox rootfs from the host's busybox-static, imported into podman (no registry), and
# saved as a docker archive for containerd.
build_image() {
  local root=$WORK/rootfs a
  mkdir -p "$root"/{bin,etc,tmp,proc,sys,dev,root,home/user}
  cp /bin/busybox "$root/bin/busybox"
  for a in $("$root/bin/busybox" --list); do
    [ "$a" = busybox ] || ln -sf busybox "$root/bin/$a"
  done
  printf '%s\n' 'root:x:0:0:root:/root:/bin/sh' 'nobody:x:65534:65534:nobody:/:/bin/sh' \
    'user:x:1000:1000:user:/home/user:/bin/sh' >"$root/etc/passwd"
  printf '%s\n' 'root:x:0:' 'nobody:x:65534:' 'user:x:1000:' >"$root/etc/group"
  # A file that exists but cannot be executed (exit 126 scenario).
  printf 'not a program\n' >"$root/bin/notexec"
  chmod 0644 "$root/bin/notexec"
  tar -C "$root" -cf "$WORK/rootfs.tar" . || return 1
  timeout 60 podman import -q --change 'CMD ["/bin/sh"]' "$WORK/rootfs.tar" "$IMAGE" >/dev/null || return 1
  timeout 60 podman save -q --format docker-archive -o "$WORK/image.tar" "$IMAGE" || return 1
}

remove_image() {
  timeout 60 podman rmi -f "$IMAGE" >/dev/null 2>&1
}

# --- containerd --------------------------------------------------------------------------

# A containerd of our own: its own root, state, sockets; the host's containerd (if any) is
# not touched.
CTRD_DIR=
CTRD_PID=
start_containerd() {
  CTRD_DIR=$WORK/containerd
  mkdir -p "$CTRD_DIR"/{root,state,opt}
  cat >"$CTRD_DIR/config.toml" <<EOF
version = 2
root = "$CTRD_DIR/root"
state = "$CTRD_DIR/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$CTRD_DIR/containerd.sock"
[ttrpc]
  address = "$CTRD_DIR/containerd.sock.ttrpc"
[debug]
  address = "$CTRD_DIR/debug.sock"
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "$CTRD_DIR/opt"
EOF
  # Bounded: the suite's own deadline; stopped by the cleanup trap.
  timeout 900 containerd --config "$CTRD_DIR/config.toml" >"$CTRD_DIR/containerd.log" 2>&1 &
  CTRD_PID=$!
  waitfor 20 ctr -a "$CTRD_DIR/containerd.sock" version || return 1
  timeout 60 ctr -a "$CTRD_DIR/containerd.sock" -n "$CTR_NS" image import "$WORK/image.tar" >/dev/null || return 1
}

# ctr against our containerd, in our namespace.
ctrx() {
  timeout "${TMO:-60}" ctr -a "$CTRD_DIR/containerd.sock" -n "$CTR_NS" "$@"
}

# Flags every `ctr run` of this runtime gets: the binary and a private state root.
ctr_rt_flags() {
  echo "--runc-binary $RT --runc-root $CTRD_DIR/runc-root-$RTNAME"
}

ctr_cleanup() {
  [ -n "$CTRD_DIR" ] && [ -S "$CTRD_DIR/containerd.sock" ] || return 0
  local c
  for c in $(TMO=20 ctrx task ls -q 2>/dev/null); do
    TMO=20 ctrx task kill -s SIGKILL "$c" >/dev/null 2>&1
    TMO=20 ctrx task rm -f "$c" >/dev/null 2>&1
  done
  for c in $(TMO=20 ctrx container ls -q 2>/dev/null); do
    TMO=20 ctrx container rm "$c" >/dev/null 2>&1
  done
  TMO=20 ctrx image rm "$IMAGE" >/dev/null 2>&1
}

stop_containerd() {
  [ -n "$CTRD_PID" ] || return 0
  ctr_cleanup
  kill "$CTRD_PID" 2>/dev/null
  local i
  for i in $(seq 50); do
    kill -0 "$CTRD_PID" 2>/dev/null || break
    sleep 0.1
  done
  kill -9 "$CTRD_PID" 2>/dev/null
  wait "$CTRD_PID" 2>/dev/null
  CTRD_PID=
  # Shims of our containerd outlive it; they hold the state dir's sockets.
  pkill_shims
  # Mounts of the snapshotter live under our root.
  grep -o " $CTRD_DIR/[^ ]*" /proc/self/mounts | sort -r | while read -r m; do umount -l "$m" 2>/dev/null; done
}

# Kill only the shims started for our containerd (matched by its exact socket address).
pkill_shims() {
  local p
  for p in $(pgrep -f containerd-shim-runc-v2); do
    if tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -q -- "-address $CTRD_DIR/containerd.sock"; then
      kill -9 "$p" 2>/dev/null
    fi
  done
}
