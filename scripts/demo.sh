#!/usr/bin/env bash
# Builds mantle and runs a demo container from a busybox bundle made here (no registry):
# once natively (namespaces, cgroups, seccomp) and once under the sentry.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v busybox >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq busybox-static libseccomp-dev pkg-config >/dev/null; }
dpkg -s libseccomp-dev >/dev/null 2>&1 || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libseccomp-dev pkg-config >/dev/null
cargo build --release -q -p mantle-runtime
mantle="$PWD/target/release/mantle"
bundle=$(mktemp -d /tmp/mantle-demo.XXXXXX)
root=$(mktemp -d /tmp/mantle-demo-root.XXXXXX)
trap 'rm -rf "$bundle" "$root"' EXIT
mkdir -p "$bundle/rootfs/bin"
cp "$(command -v busybox)" "$bundle/rootfs/bin/busybox"
for a in $("$bundle/rootfs/bin/busybox" --list); do [ "$a" = busybox ] || ln -sf busybox "$bundle/rootfs/bin/$a"; done
(cd "$bundle" && "$mantle" spec)
python3 - "$bundle/config.json" <<'PY'
import json, sys
p = sys.argv[1]; c = json.load(open(p))
c["process"]["terminal"] = False
c["process"]["args"] = ["sh", "-c", "echo \"hello from $(hostname): pid $$, uid $(id -u)\"; uname -a; ls /"]
json.dump(c, open(p, "w"), indent=2)
PY
echo "--- native mode"
"$mantle" --root "$root" run --bundle "$bundle" demo-native
echo "--- sentry mode (syscalls emulated by mantle's sentry, files through the gofer)"
"$mantle" --root "$root" --sandbox=sentry run --bundle "$bundle" demo-sentry
