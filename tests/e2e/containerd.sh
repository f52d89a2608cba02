# shellcheck shell=bash
# shellcheck disable=SC2016,SC2034  # single quotes are for the container shell; variables are read by run.sh
# containerd scenarios: a private containerd (lib.sh start_containerd) and its `ctr` client;
# the runtime is chosen per container with --runc-binary, its state root with --runc-root.

CONTAINERD_SCENARIOS="
ctr_run_exit_code
ctr_task_exec
ctr_task_kill
ctr_task_pause_resume
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
