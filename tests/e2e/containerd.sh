# shellcheck shell=bash
# shellcheck disable=SC2016,SC2034  # single quotes are for the container shell; variables are read by run.sh
# containerd scenarios: a private containerd (lib.sh start_containerd) and its `ctr` client;
# the runtime is chosen per container with --runc-binary, its state root with --runc-root.

CONTAINERD_SCENARIOS="
ctr_run_exit_code
ctr_task_exec
ctr_task_kill
ctr_task_pause_resume
ctr_run_tty
ctr_exec_tty
ctr_task_ps_metrics
ctr_missing_executable
ctr_sentry_run
"

# `ctr run --rm`: output and exit code of the container's process.
sc_ctr_run_exit_code() {
  # shellcheck disable=SC2046
  OUT=$(ctrx run --rm $(ctr_rt_flags) "$IMAGE" "$(cname)" sh -c 'echo ctr-hello; exit 3' 2>&1)
  RC=$?
  echo "$OUT"
  expect_rc 3 "ctr run exit code" || return 1
  expect_out '^ctr-hello' "ctr run output" || return 1
}

# Start a detached task: cstart NAME cmd...
cstart() {
  local name=$1
  shift
  # shellcheck disable=SC2046
  ctrx run -d $(ctr_rt_flags) "$@" >/dev/null 2>"$WORK/cstart.err" ||
    { why "ctr run -d failed: $(head -c 200 "$WORK/cstart.err")"; return 1; }
  waitfor 10 sh -c "ctr -a $CTRD_DIR/containerd.sock -n $CTR_NS task ls | grep -q '^$name .*RUNNING'" ||
    why "task $name never RUNNING"
}

# Remove a task and its container (bounded, errors ignored: the cleanup trap retries).
cremove() {
  TMO=20 ctrx task kill -s SIGKILL "$1" >/dev/null 2>&1
  TMO=20 ctrx task rm -f "$1" >/dev/null 2>&1
  TMO=20 ctrx container rm "$1" >/dev/null 2>&1
}

# task exec: output and exit code of a second process in a running task.
sc_ctr_task_exec() {
  local name
  name=$(cname)
  cstart "$name" "$IMAGE" "$name" sleep 60 || { cremove "$name"; return 1; }
  OUT=$(ctrx task exec --exec-id e2e-exec "$name" sh -c 'echo exec-$((6*7)); exit 4' 2>&1)
  RC=$?
  echo "$OUT"
  cremove "$name"
  expect_rc 4 "task exec exit code" || return 1
  expect_out '^exec-42' "task exec output" || return 1
}

# task kill: a TERM trap runs, SIGKILL ends the task with 137 (seen by the `ctr run` client).
sc_ctr_task_kill() {
  local name dir client rc
  name=$(cname)
  dir=$WORK/$RTNAME-ctrkill
  mkdir -p "$dir"
  # shellcheck disable=SC2046
  TMO=60 ctrx run --rm $(ctr_rt_flags) --mount "type=bind,src=$dir,dst=/out,options=rbind:rw" \
    "$IMAGE" "$name" sh -c 'trap "echo term >/out/log" TERM; echo ready >/out/log; while :; do sleep 0.1; done' \
    >/dev/null 2>&1 &
  client=$!
  waitfor 15 grep -q ready "$dir/log" || { why "task never ready"; kill "$client"; cremove "$name"; return 1; }
  ctrx task kill -s SIGTERM "$name" >/dev/null || why "task kill -s SIGTERM failed"
  waitfor 10 grep -q term "$dir/log" || why "SIGTERM not delivered"
  ctrx task kill -s SIGKILL "$name" >/dev/null || why "task kill -s SIGKILL failed"
  wait "$client"
  rc=$?
  cremove "$name"
  [ "$rc" = 137 ] || why "ctr run exit code $rc after SIGKILL, want 137"
  [ ! -s "$REASON_FILE" ]
}

# task pause/resume: status and a counter that stops while paused.
sc_ctr_task_pause_resume() {
  local name dir a b
  name=$(cname)
  dir=$WORK/$RTNAME-ctrpause
  mkdir -p "$dir"
  cstart "$name" --mount "type=bind,src=$dir,dst=/out,options=rbind:rw" "$IMAGE" "$name" \
    sh -c 'i=0; while :; do i=$((i+1)); echo $i >/out/n; sleep 0.05; done' || { cremove "$name"; return 1; }
  waitfor 10 test -s "$dir/n" || { why "counter never written"; cremove "$name"; return 1; }
  if ! ctrx task pause "$name" >/dev/null 2>"$WORK/pause.err"; then
    why "task pause failed: $(head -c 200 "$WORK/pause.err")"
    cremove "$name"
    return 1
  fi
  ctrx task ls | grep -q "^$name .*PAUSED" || why "task not PAUSED after pause"
  a=$(cat "$dir/n")
  sleep 0.5
  b=$(cat "$dir/n")
  [ "$a" = "$b" ] || why "counter moved while paused ($a -> $b)"
  ctrx task resume "$name" >/dev/null || why "task resume failed"
  ctrx task ls | grep -q "^$name .*RUNNING" || why "task not RUNNING after resume"
  waitfor 5 sh -c "[ \"\$(cat $dir/n)\" != $b ]" || why "counter stuck after resume"
  cremove "$name"
  [ ! -s "$REASON_FILE" ]
}

# ctr run -t: the shim's console socket gives the container a tty; typed input runs.
sc_ctr_run_tty() {
  local name
  name=$(cname)
  OUT=$(printf 'tty; echo pong$((40+2))\nexit 6\n' |
    timeout 60 script -qec "ctr -a $CTRD_DIR/containerd.sock -n $CTR_NS run --rm -t $(ctr_rt_flags) $IMAGE $name sh" /dev/null 2>&1)
  RC=$?
  echo "$OUT"
  cremove "$name"
  expect_rc 6 "ctr run -t exit code" || return 1
  expect_out '/dev/pts/[0-9]+' "tty in the container" || return 1
  expect_out 'pong42' "command typed on the tty ran" || return 1
}

# ctr task exec -t into a running task.
sc_ctr_exec_tty() {
  local name
  name=$(cname)
  cstart "$name" "$IMAGE" "$name" sleep 60 || { cremove "$name"; return 1; }
  OUT=$(printf 'tty; echo pong$((40+2))\nexit 7\n' |
    timeout 60 script -qec "ctr -a $CTRD_DIR/containerd.sock -n $CTR_NS task exec -t --exec-id e2e-tty $name sh" /dev/null 2>&1)
  RC=$?
  echo "$OUT"
  cremove "$name"
  expect_rc 7 "task exec -t exit code" || return 1
  expect_out '/dev/pts/[0-9]+' "tty in the exec" || return 1
  expect_out 'pong42' "command typed on the tty ran" || return 1
}

# Sentry mode under containerd: ctr has no way to pass runtime flags, so mantle is given as a
# wrapper adding `--sandbox=sentry`; the control is plain runc.
sc_ctr_sentry_run() {
  local rt=$RT
  if [ "$RTNAME" = mantle ]; then
    rt=$(sentry_wrapper) || { why "cannot write the sentry wrapper"; return 1; }
  fi
  # shellcheck disable=SC2046
  OUT=$(RT=$rt ctrx run --rm $(RT=$rt ctr_rt_flags) "$IMAGE" "$(cname)" \
    sh -c 'echo hi-$((6*7)); ls /bin/busybox; grep Seccomp: /proc/self/status; exit 3' 2>&1)
  RC=$?
  echo "$OUT"
  expect_rc 3 "exit code" || return 1
  expect_out '^hi-42' "output" || return 1
  expect_out '^/bin/busybox' "ls of an image file" || return 1
  # ctr's default spec has no seccomp profile: a filter is there only if the sentry is.
  if [ "$RTNAME" = mantle ]; then
    expect_out 'Seccomp:[[:space:]]+2' "the sentry's filter is installed" || return 1
  fi
}

# task ps (the shim asks the runtime: `ps --format json`) and task metrics (cgroup stats).
sc_ctr_task_ps_metrics() {
  local name
  name=$(cname)
  cstart "$name" "$IMAGE" "$name" sh -c 'sleep 61 & sleep 62; true' || { cremove "$name"; return 1; }
  # The shell forks its children after the task is RUNNING: give it a moment.
  waitfor 10 sh -c "ctr -a $CTRD_DIR/containerd.sock -n $CTR_NS task ps $name | grep -cE '^[0-9]+ ' | grep -qx 3"
  OUT=$(ctrx task ps "$name" 2>&1)
  RC=$?
  echo "$OUT"
  local n
  n=$(echo "$OUT" | grep -cE '^[0-9]+ ')
  [ "$RC/$n" = 0/3 ] || why "task ps: rc $RC, $n processes, want 3 (sh and two sleeps)"
  OUT=$(ctrx task metrics "$name" 2>&1)
  RC=$?
  echo "$OUT"
  expect_rc 0 "task metrics" && expect_out 'memory' "memory metrics"
  cremove "$name"
  [ ! -s "$REASON_FILE" ]
}

# A command that does not exist: ctr fails and shows the runtime's message (the shim reads it
# from the runtime's --log in JSON).
sc_ctr_missing_executable() {
  # shellcheck disable=SC2046
  OUT=$(ctrx run --rm $(ctr_rt_flags) "$IMAGE" "$(cname)" /no/such/program 2>&1)
  RC=$?
  echo "$OUT"
  cremove "$(cname)"
  [ "$RC" != 0 ] || { why "ctr run of a missing program succeeded"; return 1; }
  expect_out '/no/such/program' "message names the program" || return 1
  expect_out '[Nn]o such file or directory' "message gives the cause" || return 1
}

# mantle with `--sandbox=sentry` added (ctr cannot pass runtime flags); prints its path.
sentry_wrapper() {
  local w=$WORK/mantle-sentry.sh
  printf '#!/bin/sh\nexec %s --sandbox=sentry "$@"\n' "$MANTLE_BIN" >"$w" && chmod +x "$w" && echo "$w"
}

# Sentry-mode variants of the ctr scenarios (mantle only; control: runc's base result).
CTR_SENTRY_VARIANTS="
ctr_run_exit_code
ctr_task_exec
ctr_task_kill
ctr_task_pause_resume
ctr_run_tty
ctr_exec_tty
ctr_task_ps_metrics
ctr_missing_executable
"
for base in $CTR_SENTRY_VARIANTS; do
  variant=ctr_sentry_${base#ctr_}
  CONTAINERD_SCENARIOS+=" $variant"
  # shellcheck disable=SC2004  # associative array (lib.sh)
  CONTROL_OF[$variant]=$base
  eval "sc_$variant() { local w; w=\$(sentry_wrapper) || return 1; RT=\$w sc_$base; }"
done
unset base variant
