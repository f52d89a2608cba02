#!/usr/bin/env bash
# Installs what mantle's tests and demo need on a fresh Debian 12 machine (idempotent).
set -euo pipefail
need=(podman runc crun containerd busybox-static libseccomp-dev pkg-config iproute2 procps util-linux python3)
missing=()
for p in "${need[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup-host: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}" >/dev/null
fi
# podman on this host: no CAP_SYS_RESOURCE (rlimits cannot exceed the hard limits) and no
# systemd cgroup manager.
conf=/etc/containers/containers.conf
if ! grep -q 'mantle-tests' "$conf" 2>/dev/null; then
  mkdir -p /etc/containers
  cat > "$conf" <<'CONF'
# written by mantle's scripts/setup-host.sh (mantle-tests)
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]

[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
CONF
fi
