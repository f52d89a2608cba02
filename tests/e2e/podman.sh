# shellcheck shell=bash
# shellcheck disable=SC2016,SC2034  # single quotes are for the container shell; variables are read by run.sh
# podman scenarios (rootful, cgroupfs manager, /etc/containers/containers.conf from
# scripts/setup-host.sh). One function per scenario; each runs under $RT and returns 0 on
# success or calls `why` and returns 1.

PODMAN_SCENARIOS="
podman_run_exit_codes
podman_run_exit_137
podman_missing_executable
podman_not_executable
podman_detach_exec_logs_stop_rm
podman_run_it
podman_exec_it
podman_kill_signal
podman_pause_unpause
podman_top
podman_oom
podman_pids_limit
podman_cpus
podman_update
podman_read_only
podman_caps
podman_seccomp
podman_user
podman_workdir
podman_bind_mounts
podman_network_none
podman_network_bridge
podman_hostname
podman_env
podman_init
podman_runtime_flag_debug
podman_exec_options
podman_run_stdin
podman_restart
podman_ulimits
podman_privileged
podman_tmpfs
podman_sysctl
podman_pod
podman_userns
podman_setup_error_message
podman_device
podman_cgroupns_private
podman_host_namespaces
podman_process_attrs
podman_parallel_runs
podman_create_init_start
podman_cgroup_resources
podman_sentry_run
"

# Exit codes of the container's process reach `podman run`.
sc_podman_run_exit_codes() {
  prun -- true
  expect_rc 0 "exit 0" || return 1
  prun -- sh -c 'echo out; exit 3'
  expect_rc 3 "exit 3" || return 1
  expect_out '^out$' "stdout" || return 1
}

# A container killed by SIGKILL: `podman run --rm` exits 128+9.
sc_podman_run_exit_137() {
  local name rc
  name=$(cname)
  TMO=60 pm run --rm --name "$name" "$IMAGE" sleep 30 >/dev/null 2>&1 &
  local client=$!
  waitfor 20 sh -c "[ \"\$(podman inspect -f '{{.State.Status}}' $name 2>/dev/null)\" = running ]" ||
    { kill "$client"; why "container never running"; return 1; }
  timeout 20 podman kill -s KILL "$name" >/dev/null || why "podman kill failed"
  wait "$client"
  rc=$?
  [ "$rc" = 137 ] || why "podman run --rm exit code $rc after SIGKILL, want 137"
}

# A command that does not exist: exit 127 and the runtime's own message, not a generic one.
sc_podman_missing_executable() {
  prun -- /no/such/program
  expect_rc 127 "missing executable" || return 1
  expect_out '/no/such/program' "message names the program" || return 1
  expect_out '[Nn]o such file or directory' "message gives the cause" || return 1
}

# A file that cannot be executed: exit 126 and the cause.
sc_podman_not_executable() {
  prun -- /bin/notexec
  expect_rc 126 "non-executable file" || return 1
  expect_out '[Pp]ermission denied' "message gives the cause" || return 1
}

# run -d, exec, logs, stop (SIGTERM honoured, no 10 s SIGKILL fallback), rm.
sc_podman_detach_exec_logs_stop_rm() {
  local name t0 code
  name=$(cname)
  dstart "$name" -- sh -c 'echo started; trap "echo stopping; exit 0" TERM; while :; do sleep 0.1; done' || return 1
  OUT=$(pm exec "$name" sh -c 'echo from-exec $((6*7)); exit 5' 2>&1)
  RC=$?
  expect_rc 5 "exec exit code" || return 1
  expect_out 'from-exec 42' "exec output" || return 1
  waitfor 10 sh -c "podman logs $name | grep -q started" || { why "logs lack 'started'"; return 1; }
  t0=$SECONDS
  pm stop -t 20 "$name" >/dev/null || { why "podman stop failed"; return 1; }
  [ $((SECONDS - t0)) -lt 10 ] || why "stop took $((SECONDS - t0))s: SIGTERM not delivered?"
  code=$(pm inspect -f '{{.State.ExitCode}}' "$name")
  [ "$code" = 0 ] || why "exit code after stop $code, want 0 (the TERM trap)"
  OUT=$(pm logs "$name" 2>&1)
  expect_out 'stopping' "logs after stop" || return 1
  pm rm "$name" >/dev/null || { why "podman rm failed"; return 1; }
  ! timeout 20 podman container exists "$name" || why "container still exists after rm"
}

# run -it: a tty through the console socket, stdin relayed, exit code kept.
sc_podman_run_it() {
  OUT=$(printf 'tty; echo pong$((40+2))\nexit 5\n' |
    timeout 60 script -qec "podman --runtime $RT ${PODMAN_FLAGS:-} run -it --rm --pull=never $IMAGE sh" /dev/null 2>&1)
  RC=$?
  printf '%s\n' "$OUT"
  expect_rc 5 "run -it exit code" || return 1
  expect_out '/dev/pts/[0-9]+' "tty in the container" || return 1
  expect_out 'pong42' "command typed on the tty ran" || return 1
}

# exec -it into a running container.
sc_podman_exec_it() {
  local name
  name=$(cname)
  dstart "$name" -- sleep 60 || return 1
  OUT=$(printf 'tty; echo pong$((40+2))\nexit 4\n' |
    timeout 60 script -qec "podman --runtime $RT ${PODMAN_FLAGS:-} exec -it $name sh" /dev/null 2>&1)
  RC=$?
  printf '%s\n' "$OUT"
  expect_rc 4 "exec -it exit code" || return 1
  expect_out '/dev/pts/[0-9]+' "tty in exec" || return 1
  expect_out 'pong42' "command typed on the tty ran" || return 1
}

# kill -s delivers the named signal; SIGKILL ends the container with 137.
sc_podman_kill_signal() {
  local name code
  name=$(cname)
  dstart "$name" -- sh -c 'trap "echo got-usr1" USR1; echo ready; while :; do sleep 0.1; done' || return 1
  waitfor 10 sh -c "podman logs $name | grep -q ready" || { why "container not ready"; return 1; }
  pm kill -s USR1 "$name" >/dev/null || { why "podman kill -s USR1 failed"; return 1; }
  waitfor 10 sh -c "podman logs $name | grep -q got-usr1" || { why "USR1 not delivered"; return 1; }
  pm kill -s KILL "$name" >/dev/null || { why "podman kill -s KILL failed"; return 1; }
  code=$(pm wait "$name")
  [ "$code" = 137 ] || why "exit code after SIGKILL $code, want 137"
}

# pause freezes every process (a counter stops), unpause thaws it.
sc_podman_pause_unpause() {
  local name dir a b st
  name=$(cname)
  dir=$WORK/$RTNAME-pause
  mkdir -p "$dir"
  dstart "$name" -v "$dir:/out" -- sh -c 'i=0; while :; do i=$((i+1)); echo $i >/out/n; sleep 0.05; done' || return 1
  waitfor 10 test -s "$dir/n" || { why "counter never written"; return 1; }
  pm pause "$name" >/dev/null || { why "podman pause failed"; return 1; }
  st=$(pm inspect -f '{{.State.Status}}' "$name")
  [ "$st" = paused ] || { why "status after pause: $st"; return 1; }
  a=$(cat "$dir/n")
  sleep 0.5
  b=$(cat "$dir/n")
  [ "$a" = "$b" ] || { why "counter moved while paused ($a -> $b)"; return 1; }
  pm unpause "$name" >/dev/null || { why "podman unpause failed"; return 1; }
  waitfor 5 sh -c "[ \"\$(cat $dir/n)\" != $b ]" || { why "counter stuck after unpause"; return 1; }
  st=$(pm inspect -f '{{.State.Status}}' "$name")
  [ "$st" = running ] || why "status after unpause: $st"
}

# top lists the container's processes.
sc_podman_top() {
  local name
  name=$(cname)
  dstart "$name" -- sh -c 'sleep 77 & wait' || return 1
  waitfor 10 sh -c "podman top $name | grep -q 'sleep 77'" || {
    OUT=$(pm top "$name" 2>&1)
    why "top does not list 'sleep 77': $(echo "$OUT" | tr '\n' ' ' | cut -c1-160)"
  }
}

# --memory 32m: the memory hog is OOM-killed, the container exits 137.
# NOTE: on this hybrid-cgroup host podman/conmon never sets State.OOMKilled, not even under
# runc, so it is not checked. Under mantle the runtime's own exit reason is checked instead:
# podman deletes the runtime's container in its cleanup right after the exit, so the runtime
# is wrapped by a script that saves `mantle state` (annotation dev.mantle.exit-reason) just
# before that delete.
sc_podman_oom() {
  local name id cap=$WORK/$RTNAME-oom-state wrapper st
  name=$(cname)
  mkdir -p "$cap"
  wrapper=$(state_capturing_wrapper "$cap") || { why "cannot write the runtime wrapper"; return 1; }
  OUT=$(RT=$wrapper pm run --pull=never --name "$name" --memory 32m "$IMAGE" tail /dev/zero 2>&1)
  RC=$?
  expect_rc 137 "memory hog under --memory 32m" || return 1
  echo "inspect: $(pm inspect -f '{{.State.ExitCode}} oomkilled={{.State.OOMKilled}}' "$name")" \
    "(OOMKilled is not set by podman on this host, not checked)"
  id=$(pm inspect -f '{{.Id}}' "$name")
  RT=$wrapper pm rm "$name" >/dev/null
  st=$(cat "$cap/$id.state" 2>/dev/null)
  echo "runtime state before delete: $st"
  [ "$RTNAME" = mantle ] || return 0
  [ -n "$st" ] || { why "the wrapper saw no delete of $id"; return 1; }
  echo "$st" | grep -q '"dev.mantle.exit-reason": *"oom-killed"' ||
    why "mantle state before delete lacks exit-reason oom-killed: $(echo "$st" | tr '\n' ' ' | cut -c1-200)"
}

# A runtime wrapper that runs `<runtime> state <id>` into DIR/<id>.state before each
# `delete`, then execs the runtime; prints its path.
state_capturing_wrapper() {
  local w=$WORK/$RTNAME-capture.sh
  cat >"$w" <<EOF || return 1
#!/bin/sh
# Global flags are the arguments before the subcommand; the id is the last argument.
g=""
for a; do [ "\$a" = delete ] && break; g="\$g \$a"; done
if [ "\$a" = delete ]; then
  for id; do :; done
  timeout 10 $RT \$g state "\$id" >"$1/\$id.state" 2>&1
fi
exec $RT "\$@"
EOF
  chmod +x "$w" && echo "$w"
}

# --pids-limit: the cgroup limit is set and forks beyond it fail.
sc_podman_pids_limit() {
  local name dir n
  name=$(cname)
  dstart "$name" --pids-limit 10 -- sleep 60 || return 1
  dir=$(cgroup_dir "$name" pids) || { why "no pids cgroup for the container"; return 1; }
  n=$(cat "$dir/pids.max")
  [ "$n" = 10 ] || { why "pids.max is $n, want 10"; return 1; }
  # Try to start 20 sleepers: the shell's fork fails at the limit.
  OUT=$(pm exec "$name" sh -c 'for i in $(seq 20); do sleep 30 & done' 2>&1)
  echo "$OUT"
  expect_out "can't fork|Resource temporarily unavailable" "fork beyond the limit fails" || return 1
  n=$(cat "$dir/pids.current")
  [ "$n" -le 10 ] || why "pids.current $n with --pids-limit 10"
}

# --cpus 0.5: CFS quota 50000 per 100000 period.
sc_podman_cpus() {
  local name dir q p
  name=$(cname)
  dstart "$name" --cpus 0.5 -- sleep 60 || return 1
  dir=$(cgroup_dir "$name" cpu) || { why "no cpu cgroup for the container"; return 1; }
  q=$(cat "$dir/cpu.cfs_quota_us") p=$(cat "$dir/cpu.cfs_period_us")
  [ "$q/$p" = 50000/100000 ] || why "cfs quota/period $q/$p, want 50000/100000"
}

# podman update changes limits of a running container (runtime `update --resources`);
# podman 4.3's update has no --pids-limit.
sc_podman_update() {
  local name dir v
  name=$(cname)
  dstart "$name" --memory 64m --cpus 1 -- sleep 60 || return 1
  pm update --memory 128m --cpus 0.5 "$name" >/dev/null 2>"$WORK/update.err" ||
    { why "podman update failed: $(head -c 200 "$WORK/update.err")"; return 1; }
  dir=$(cgroup_dir "$name" memory) || { why "no memory cgroup"; return 1; }
  v=$(cat "$dir/memory.limit_in_bytes")
  [ "$v" = 134217728 ] || { why "memory.limit_in_bytes $v after update, want 134217728"; return 1; }
  dir=$(cgroup_dir "$name" cpu) || { why "no cpu cgroup"; return 1; }
  v=$(cat "$dir/cpu.cfs_quota_us")
  [ "$v" = 50000 ] || why "cpu.cfs_quota_us $v after update, want 50000"
}

# --read-only: the root is read-only, podman's /tmp tmpfs is writable.
sc_podman_read_only() {
  prun --read-only -- sh -c 'touch /rootfile && echo rootfile-written; touch /tmp/ok && echo tmp-written'
  expect_rc 0 "read-only run" || return 1
  ! printf '%s' "$OUT" | grep -q rootfile-written || { why "wrote to a read-only root"; return 1; }
  expect_out 'Read-only file system' "error of the root write" || return 1
  expect_out 'tmp-written' "/tmp writable" || return 1
}

# --cap-drop/--cap-add: the effective set is exactly what was asked for, and it is enforced.
sc_podman_caps() {
  prun --cap-drop all --cap-add NET_ADMIN -- grep CapEff /proc/self/status
  expect_out 'CapEff:[[:space:]]+0000000000001000' "CapEff with only NET_ADMIN" || return 1
  prun --cap-drop CHOWN -- sh -c 'chown 1000 /tmp && echo chowned'
  ! printf '%s' "$OUT" | grep -q chowned || { why "chown worked without CAP_CHOWN"; return 1; }
  expect_out 'Operation not permitted' "chown error" || return 1
  prun -- sh -c 'chown 1000 /tmp && echo chowned'
  expect_out 'chowned' "chown with the default caps" || return 1
}

# --security-opt seccomp=<profile>: a profile that denies mkdir/mkdirat with EPERM.
sc_podman_seccomp() {
  local prof=$WORK/seccomp-deny-mkdir.json
  cat >"$prof" <<'EOF'
{"defaultAction": "SCMP_ACT_ALLOW",
 "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]}
EOF
  prun --security-opt "seccomp=$prof" -- sh -c 'mkdir /tmp/d && echo made; touch /tmp/f && echo touched'
  ! printf '%s' "$OUT" | grep -q made || { why "mkdir worked under a profile denying it"; return 1; }
  expect_out 'Operation not permitted' "mkdir error is EPERM" || return 1
  expect_out 'touched' "other syscalls allowed" || return 1
  prun --security-opt seccomp=unconfined -- sh -c 'grep Seccomp: /proc/self/status'
  expect_out 'Seccomp:[[:space:]]+0' "unconfined" || return 1
  prun -- sh -c 'grep Seccomp: /proc/self/status'
  expect_out 'Seccomp:[[:space:]]+2' "podman's default profile is a filter" || return 1
}

# --user by number and by name (podman resolves it from the image's /etc/passwd).
sc_podman_user() {
  prun --user 65534:65534 -- sh -c 'echo $(id -u):$(id -g)'
  expect_out '^65534:65534$' "--user 65534:65534" || return 1
  prun --user user -- sh -c 'echo $(id -u):$(id -g)'
  expect_out '^1000:1000$' "--user user" || return 1
}

# --workdir (podman itself refuses a directory missing from the image).
sc_podman_workdir() {
  prun --workdir /home/user -- pwd
  expect_rc 0 "workdir run" || return 1
  expect_out '^/home/user$' "--workdir" || return 1
}

# -v host:ctr (rw) and :ro.
sc_podman_bind_mounts() {
  local dir=$WORK/$RTNAME-bind
  mkdir -p "$dir" && echo from-host >"$dir/in"
  prun -v "$dir:/data" -- sh -c 'cat /data/in; echo from-ctr >/data/out'
  expect_out 'from-host' "read of a bind mount" || return 1
  [ "$(cat "$dir/out" 2>/dev/null)" = from-ctr ] || { why "write through a bind mount missing"; return 1; }
  prun -v "$dir:/ro:ro" -- sh -c 'echo x >/ro/x && echo wrote'
  ! printf '%s' "$OUT" | grep -q wrote || { why "wrote to a :ro bind mount"; return 1; }
  expect_out 'Read-only file system' "error of a :ro write" || return 1
}

# --network none: only a loopback interface.
sc_podman_network_none() {
  prun --network none -- sh -c 'echo ifaces=$(ls /sys/class/net)'
  expect_rc 0 "network none" || return 1
  expect_out '^ifaces=lo$' "only lo with --network none" || return 1
}

# Default bridge network: the container reaches a server on the host's address.
sc_podman_network_bridge() {
  local ip port dir srv
  ip=$(ip -4 route get 1.1.1.1 2>/dev/null | sed -n 's/.* src \([0-9.]*\).*/\1/p')
  [ -n "$ip" ] || { why "no host address to serve on"; return 1; }
  port=$((20000 + RANDOM % 20000))
  dir=$WORK/$RTNAME-www
  mkdir -p "$dir" && echo "hello-from-host-$port" >"$dir/index.html"
  timeout 60 busybox httpd -f -p "$ip:$port" -h "$dir" &
  srv=$!
  # Wait until it listens (also: timeout has forked httpd before it may be signalled).
  waitfor 10 port_open "$ip" "$port" || { kill "$srv"; why "host server did not start"; return 1; }
  # busybox-static's wget crashes in static glibc's NSS: speak HTTP with nc.
  prun -- sh -c "ip -4 addr show eth0 | grep inet; printf 'GET /index.html HTTP/1.0\r\n\r\n' | nc -w 10 $ip $port"
  kill "$srv" 2>/dev/null
  wait "$srv" 2>/dev/null
  expect_rc 0 "nc from the container" || return 1
  expect_out "hello-from-host-$port" "page served by the host" || return 1
}

sc_podman_hostname() {
  prun --hostname mantle-host -- hostname
  expect_out '^mantle-host$' "--hostname" || return 1
}

sc_podman_env() {
  prun --env FOO=bar --env 'SPACED=a b' -- sh -c 'echo "$FOO|$SPACED"'
  expect_out '^bar\|a b$' "--env" || return 1
}

# --init: podman's catatonit is PID 1 and reaps; the command is its child.
sc_podman_init() {
  prun --init -- sh -c 'cat /proc/1/cmdline | tr "\0" " "; echo; echo self=$$'
  expect_rc 0 "--init run" || return 1
  expect_out 'catatonit|init' "PID 1 is the init" || return 1
  if printf '%s' "$OUT" | grep -q '^self=1$'; then why "the command is PID 1 despite --init"; return 1; fi
}

# --runtime-flag debug: a global flag passed through to the runtime still runs containers.
sc_podman_runtime_flag_debug() {
  prun --runtime-flag debug -- sh -c 'echo dbg-ok'
  expect_rc 0 "--runtime-flag debug" || return 1
  expect_out '^dbg-ok' "output" || return 1
}

# A setup step that fails in the runtime (an unknown sysctl): podman shows the runtime's own
# message naming the problem.
sc_podman_setup_error_message() {
  prun --sysctl net.ipv4.no_such_knob=1 -- true
  [ "$RC" != 0 ] || { why "a container with an unknown sysctl started"; return 1; }
  expect_out 'no_such_knob' "message names the sysctl" || return 1
  expect_out '[Nn]o such file or directory' "message gives the cause" || return 1
}

# --device: a host device node under another name, usable (device cgroup rule).
sc_podman_device() {
  prun --device /dev/null:/dev/mynull -- sh -c 'test -c /dev/mynull && echo x >/dev/mynull && echo dev-ok'
  expect_out '^dev-ok$' "--device node usable" || return 1
}

# --cgroupns private: the container's cgroups appear as the root.
sc_podman_cgroupns_private() {
  prun --cgroupns private -- sh -c 'grep ":pids:" /proc/self/cgroup; test -f /sys/fs/cgroup/pids/cgroup.procs && echo pids-visible'
  expect_out ':pids:/$' "own cgroup is / in a private cgroupns" || return 1
  expect_out '^pids-visible$' "cgroup fs mounted" || return 1
}

# --pid host --network host: the host's namespaces are kept.
sc_podman_host_namespaces() {
  local host_init
  host_init=$(cat /proc/1/comm)
  prun --pid host --network host -- sh -c 'echo init=$(cat /proc/1/comm); echo ifaces=$(ls /sys/class/net)'
  expect_out "^init=$host_init\$" "host pid namespace" || return 1
  expect_out "^ifaces=$(echo /sys/class/net/* | sed 's#/sys/class/net/##g')\$" "host network namespace" || return 1
}

# --group-add, --oom-score-adj, --security-opt no-new-privileges.
sc_podman_process_attrs() {
  prun --group-add 1234 --oom-score-adj 100 --security-opt no-new-privileges -- sh -c 'echo groups=$(id -G); echo oom=$(cat /proc/self/oom_score_adj); grep NoNewPrivs /proc/self/status'
  expect_out '^groups=0 1234$' "--group-add" || return 1
  expect_out '^oom=100$' "--oom-score-adj" || return 1
  expect_out 'NoNewPrivs:[[:space:]]+1' "no-new-privileges" || return 1
}

# Several containers at once: independent state, each exit code kept.
sc_podman_parallel_runs() {
  local i pids=() rc
  for i in 1 2 3 4 5 6; do
    pm run --rm --pull=never --name "$(cname "$i")" "$IMAGE" sh -c "sleep 0.$i; exit $((10 + i))" >/dev/null 2>&1 &
    pids+=($!)
  done
  for i in 1 2 3 4 5 6; do
    wait "${pids[$((i - 1))]}"
    rc=$?
    [ "$rc" = $((10 + i)) ] || why "parallel run $i exited $rc, want $((10 + i))"
  done
  [ ! -s "$REASON_FILE" ]
}

# create + init (the runtime's `create` alone) leaves a created container; start runs it.
sc_podman_create_init_start() {
  local name id st
  name=$(cname)
  pm create --pull=never --name "$name" "$IMAGE" sh -c 'echo created-ran; exit 2' >/dev/null || { why "create failed"; return 1; }
  pm init "$name" >/dev/null || { why "init (runtime create) failed"; return 1; }
  id=$(pm inspect -f '{{.Id}}' "$name")
  # The runtime's own state: runc keeps it under /run/runc, mantle under /run/mantle.
  st=$(timeout 10 "$RT" state "$id" 2>&1)
  echo "$st"
  echo "$st" | grep -q '"status": *"created"' || { why "runtime state after init is not created: $(echo "$st" | tr '\n' ' ' | cut -c1-160)"; return 1; }
  OUT=$(pm start --attach "$name" 2>&1)
  RC=$?
  expect_rc 2 "start --attach exit code" || return 1
  expect_out '^created-ran$' "output of the started container" || return 1
}

# CPU and memory settings reach the container's cgroups.
sc_podman_cgroup_resources() {
  local name d
  name=$(cname)
  dstart "$name" --cpu-shares 512 --cpuset-cpus 0 --memory 48m --memory-reservation 24m -- sleep 60 || return 1
  d=$(cgroup_dir "$name" cpu) || { why "no cpu cgroup"; return 1; }
  [ "$(cat "$d/cpu.shares")" = 512 ] || { why "cpu.shares $(cat "$d/cpu.shares"), want 512"; return 1; }
  d=$(cgroup_dir "$name" cpuset) || { why "no cpuset cgroup"; return 1; }
  [ "$(cat "$d/cpuset.cpus")" = 0 ] || { why "cpuset.cpus $(cat "$d/cpuset.cpus"), want 0"; return 1; }
  d=$(cgroup_dir "$name" memory) || { why "no memory cgroup"; return 1; }
  [ "$(cat "$d/memory.limit_in_bytes")" = $((48 << 20)) ] || { why "memory.limit_in_bytes $(cat "$d/memory.limit_in_bytes")"; return 1; }
  [ "$(cat "$d/memory.soft_limit_in_bytes")" = $((24 << 20)) ] || why "memory.soft_limit_in_bytes $(cat "$d/memory.soft_limit_in_bytes")"
}

# Sentry mode through podman (`--runtime-flag sandbox=sentry` becomes mantle's global
# `--sandbox sentry`). The control is runc without the flag: the observable result must match.
sentry_flags() {
  if [ "$RTNAME" = mantle ]; then echo "--runtime-flag sandbox=sentry"; fi
}

sc_podman_sentry_run() {
  # shellcheck disable=SC2046
  prun --security-opt seccomp=unconfined $(sentry_flags) -- sh -c 'echo hi-$((6*7)); grep -c root /etc/passwd; ls /bin/busybox; grep Seccomp: /proc/self/status; exit 3'
  expect_rc 3 "exit code" || return 1
  # Without podman's profile a filter is there only if the sentry is.
  if [ "$RTNAME" = mantle ]; then
    expect_out 'Seccomp:[[:space:]]+2' "the sentry's filter is installed" || return 1
  fi
  expect_out '^hi-42$' "shell arithmetic and echo" || return 1
  expect_out '^/bin/busybox$' "ls of an image file" || return 1
  expect_out '^1$' "read of /etc/passwd" || return 1
}

# exec with its own user, working directory and environment (podman's process.json).
sc_podman_exec_options() {
  local name
  name=$(cname)
  dstart "$name" -- sleep 60 || return 1
  OUT=$(pm exec --user 65534:65534 --workdir /tmp --env X=exec-env "$name" sh -c 'echo "$(id -u):$(id -g) $(pwd) $X"' 2>&1)
  RC=$?
  expect_rc 0 "exec with options" || return 1
  expect_out '^65534:65534 /tmp exec-env$' "user, cwd and env of the exec" || return 1
}

# -i: stdin of `podman run` reaches the container and EOF ends it.
sc_podman_run_stdin() {
  OUT=$(printf 'line-one\nline-two\n' | pm run --rm -i --pull=never "$IMAGE" sh -c 'wc -l; echo done' 2>&1)
  RC=$?
  expect_rc 0 "run -i" || return 1
  expect_out '^2$' "lines read from stdin" || return 1
}

# A stopped container starts again (a second create/start of the same id).
sc_podman_restart() {
  local name code
  name=$(cname)
  dstart "$name" -- sh -c 'echo run >>/tmp/runs; cat /tmp/runs | wc -l; sleep 60' || return 1
  pm stop -t 1 "$name" >/dev/null || { why "stop failed"; return 1; }
  pm start "$name" >/dev/null || { why "start of a stopped container failed"; return 1; }
  waitfor 10 sh -c "podman logs $name | grep -q '^2$'" || { why "second run did not happen"; return 1; }
  pm restart -t 1 "$name" >/dev/null || { why "restart failed"; return 1; }
  waitfor 10 sh -c "podman logs $name | grep -q '^3$'" || { why "third run after restart did not happen"; return 1; }
  code=$(pm inspect -f '{{.State.Status}}' "$name")
  [ "$code" = running ] || why "status after restart: $code"
}

# Rlimits: containers.conf default_ulimits and --ulimit.
sc_podman_ulimits() {
  prun -- sh -c 'echo nofile=$(ulimit -n)'
  expect_out '^nofile=20000$' "default_ulimits nofile from containers.conf" || return 1
  # Any --ulimit replaces the defaults, and podman's own nproc default exceeds this host's
  # hard limit (no CAP_SYS_RESOURCE): give nproc too.
  prun --ulimit nofile=1024:2048 --ulimit nproc=1000:2000 -- sh -c 'echo soft=$(ulimit -Sn) hard=$(ulimit -Hn) nproc=$(ulimit -Hu)'
  expect_out '^soft=1024 hard=2048 nproc=2000$' "--ulimit nofile and nproc" || return 1
}

# --privileged: every capability, host devices, no seccomp, writable /sys.
sc_podman_privileged() {
  prun --privileged -- sh -c 'grep -E "^(CapEff|Seccomp):" /proc/self/status; test -c /dev/loop-control && echo host-devs; touch /sys/fs/cgroup 2>/dev/null; mount | grep -E " /sys (type )?sysfs" | grep -q "[(,]rw[,)]" && echo sys-rw'
  expect_rc 0 "privileged run" || return 1
  # Every capability the host has (this host lacks CAP_SYS_RESOURCE).
  expect_out "CapEff:[[:space:]]+$(awk '/^CapBnd:/ { print $2 }' /proc/self/status)" "all capabilities" || return 1
  expect_out 'Seccomp:[[:space:]]+0' "no seccomp filter" || return 1
  expect_out '^host-devs$' "host devices" || return 1
  expect_out '^sys-rw$' "writable /sys" || return 1
}

# --tmpfs with options, --shm-size.
sc_podman_tmpfs() {
  prun --tmpfs /scratch:rw,size=1m,mode=1777 --shm-size 8m -- sh -c 'grep -E " /scratch | /dev/shm " /proc/mounts; stat -c %a /scratch; echo x >/scratch/f && echo wrote'
  expect_rc 0 "tmpfs run" || return 1
  expect_out ' /scratch tmpfs [^ ]*size=1024k' "tmpfs size" || return 1
  expect_out '^1777$' "tmpfs mode" || return 1
  expect_out ' /dev/shm tmpfs [^ ]*size=8192k' "--shm-size" || return 1
  expect_out '^wrote$' "tmpfs writable" || return 1
}

# --sysctl: a namespaced sysctl is set in the container only.
sc_podman_sysctl() {
  prun --sysctl net.ipv4.ip_unprivileged_port_start=123 -- cat /proc/sys/net/ipv4/ip_unprivileged_port_start
  expect_out '^123$' "--sysctl" || return 1
}

# A pod: containers join the infra container's namespaces (linux.namespaces with paths).
sc_podman_pod() {
  local pod
  pod=$(cname pod)
  # The pod's infra container runs under the runtime under test too.
  pm pod create --name "$pod" --hostname pod-host >/dev/null || { why "pod create failed"; return 1; }
  dstart "$(cname a)" --pod "$pod" -- sh -c 'echo $$ >/dev/shm/a-pid; sleep 60'
  if [ ! -s "$REASON_FILE" ]; then
    OUT=$(pm run --rm --pull=never --pod "$pod" "$IMAGE" sh -c 'hostname; sleep 1; echo a-pid=$(cat /dev/shm/a-pid)' 2>&1)
    RC=$?
    echo "$OUT"
    expect_rc 0 "second container in the pod" &&
      expect_out '^pod-host$' "UTS namespace of the pod" &&
      expect_out '^a-pid=[0-9]+$' "/dev/shm of the pod shared"
  fi
  timeout 60 podman pod rm -f "$pod" >/dev/null 2>&1
  [ ! -s "$REASON_FILE" ]
}

# --uidmap/--gidmap: a user namespace; root in the container is uid 100000 on the host.
sc_podman_userns() {
  local name pid map
  name=$(cname)
  dstart "$name" --uidmap 0:100000:65536 --gidmap 0:100000:65536 -- sh -c 'touch /tmp/mine; sleep 60' || return 1
  pid=$(pm inspect -f '{{.State.Pid}}' "$name")
  map=$(tr -s ' ' <"/proc/$pid/uid_map")
  echo "uid_map: $map"
  [ "$map" = " 0 100000 65536" ] || { why "uid_map '$map', want '0 100000 65536'"; return 1; }
  [ "$(stat -c %u "/proc/$pid")" = 100000 ] || { why "init's host uid is not 100000"; return 1; }
  OUT=$(pm exec "$name" sh -c 'id -u; stat -c %u /tmp/mine' 2>&1)
  RC=$?
  expect_rc 0 "exec in a user namespace" || return 1
  expect_out '^0$' "root in the container" || return 1
}

# Sentry-mode variants: the base scenario with mantle in sentry mode (podman passes
# `--runtime-flag sandbox=sentry` on as mantle's global `--sandbox=sentry`). runc has no such
# flag: their control is runc's result for the base scenario.
SENTRY_VARIANTS="
podman_run_exit_codes
podman_run_exit_137
podman_missing_executable
podman_detach_exec_logs_stop_rm
podman_run_it
podman_exec_it
podman_kill_signal
podman_pause_unpause
podman_oom
podman_pids_limit
podman_read_only
podman_caps
podman_user
podman_bind_mounts
podman_network_bridge
podman_hostname
podman_env
podman_init
podman_exec_options
podman_run_stdin
podman_restart
podman_userns
podman_process_attrs
podman_parallel_runs
podman_create_init_start
"
for base in $SENTRY_VARIANTS; do
  variant=podman_sentry_${base#podman_}
  PODMAN_SCENARIOS+=" $variant"
  # shellcheck disable=SC2004  # associative array (lib.sh)
  CONTROL_OF[$variant]=$base
  eval "sc_$variant() { PODMAN_FLAGS='--runtime-flag sandbox=sentry' sc_$base; }"
done
unset base variant
