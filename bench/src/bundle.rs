//! The busybox root filesystem and the bundles (config.json) the benchmarks run.
//!
//! One rootfs is shared by every bundle (`root.path` is absolute), built from the host's
//! static busybox with one symlink per applet, plus the static workload program, a probe file
//! and a tarball of a small-file tree.

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Command;

pub struct Rootfs {
    pub path: PathBuf,
    /// (st_dev, st_ino) of the rootfs busybox: processes running it are the workload.
    pub busybox_id: (u64, u64),
    pub files_in_tar: usize,
}

/// Builds the rootfs under `dir`.
pub fn build_rootfs(dir: &Path, busybox: &Path, workload: &Path, files: usize) -> Result<Rootfs> {
    let root = dir.join("rootfs");
    for d in ["bin", "etc", "proc", "sys", "dev", "tmp", "scratch"] {
        fs::create_dir_all(root.join(d)).with_context(|| format!("mkdir rootfs/{d}"))?;
    }
    let bb = root.join("bin/busybox");
    fs::copy(busybox, &bb).with_context(|| format!("copy {}", busybox.display()))?;
    let list = Command::new(&bb)
        .arg("--list")
        .output()
        .context("busybox --list")?;
    if !list.status.success() {
        bail!("{} --list failed: is it busybox-static?", busybox.display());
    }
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        // `--list` names busybox itself: a symlink there would replace the binary.
        if applet.is_empty() || applet == "busybox" || applet.contains('/') {
            continue;
        }
        let link = root.join("bin").join(applet);
        if !link.exists() {
            symlink("busybox", &link).with_context(|| format!("symlink {applet}"))?;
        }
    }
    fs::copy(workload, root.join("bin/mantle-bench-workload")).context("copy workload")?;
    fs::write(root.join("etc/bench-file"), vec![b'x'; 4096]).context("write probe file")?;
    fs::write(root.join("etc/passwd"), "root:x:0:0:root:/:/bin/sh\n")?;
    fs::write(root.join("etc/group"), "root:x:0:\n")?;
    make_tar(dir, &root, files)?;
    let meta = fs::metadata(&bb)?;
    use std::os::unix::fs::MetadataExt;
    Ok(Rootfs {
        path: root,
        busybox_id: (meta.dev(), meta.ino()),
        files_in_tar: files,
    })
}

/// `/data.tar` in the rootfs: `files` files of 256 bytes in directories of 100.
fn make_tar(dir: &Path, root: &Path, files: usize) -> Result<()> {
    let tree = dir.join("tree");
    let _ = fs::remove_dir_all(&tree);
    for i in 0..files {
        let d = tree.join(format!("d{:03}", i / 100));
        if i % 100 == 0 {
            fs::create_dir_all(&d)?;
        }
        fs::write(d.join(format!("f{:03}", i % 100)), [b'a'; 256])?;
    }
    let st = Command::new(root.join("bin/busybox"))
        .args(["tar", "-cf"])
        .arg(root.join("data.tar"))
        .arg("-C")
        .arg(&tree)
        .arg(".")
        .status()
        .context("busybox tar")?;
    if !st.success() {
        bail!("creating data.tar failed: {st}");
    }
    fs::remove_dir_all(&tree)?;
    Ok(())
}

/// Empties rootfs/scratch (between file-workload runs, outside any timing).
pub fn reset_scratch(root: &Rootfs) -> Result<()> {
    let s = root.path.join("scratch");
    let _ = fs::remove_dir_all(&s);
    fs::create_dir_all(&s).context("mkdir scratch")
}

/// Writes `<dir>/<name>/config.json` running `args`; returns the bundle path.
pub fn bundle(
    dir: &Path,
    name: &str,
    root: &Rootfs,
    args: &[&str],
    readonly: bool,
) -> Result<PathBuf> {
    let b = dir.join("bundles").join(name);
    fs::create_dir_all(&b)?;
    let cfg = config(&root.path, args, readonly);
    fs::write(b.join("config.json"), serde_json::to_vec_pretty(&cfg)?)?;
    Ok(b)
}

/// The defaults of `runc spec` (namespaces, capabilities, masked paths, mounts, the device
/// rule "deny rwm" that every runtime completes with its default device list), without a
/// terminal.
fn config(root: &Path, args: &[&str], readonly: bool) -> Value {
    let caps = json!(["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": false,
            "user": {"uid": 0, "gid": 0},
            "args": args,
            "env": ["PATH=/bin", "HOME=/"],
            "cwd": "/",
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps, "ambient": caps},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": true
        },
        "root": {"path": root, "readonly": readonly},
        "hostname": "bench",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
             "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs",
             "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
             "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}
        ],
        "linux": {
            "resources": {"devices": [{"allow": false, "access": "rwm"}]},
            "namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "ipc"},
                           {"type": "uts"}, {"type": "mount"}],
            "maskedPaths": ["/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
                            "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
                            "/proc/sched_debug", "/sys/firmware", "/proc/scsi"],
            "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys",
                              "/proc/sysrq-trigger"]
        }
    })
}
