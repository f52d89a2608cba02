//! Helpers for the real-kernel tests: children held at a `read` until they are in the
//! cgroup, and a guard that always removes the test cgroups.
#![allow(dead_code)]

use cgroups::CgroupManager;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub const BUSYBOX: &str = "/bin/busybox";

/// A cgroup path unique to this test process and tag, at the top of every hierarchy.
pub fn name(tag: &str) -> String {
    format!("/mantle-test-{}-{tag}", std::process::id())
}

/// True when the tests can touch real cgroups (root, v1 memory hierarchy present).
pub fn can_run() -> bool {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    root && Path::new("/sys/fs/cgroup/memory/cgroup.procs").exists()
}

/// Spawns `busybox sh -c 'read x; <script>'`: the script starts only after `go`.
pub fn spawn(script: &str) -> Child {
    Command::new(BUSYBOX)
        .args(["sh", "-c", &format!("read x; {script}")])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn busybox")
}

pub fn go(child: &mut Child) {
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(b"\n").expect("release child");
}

/// Destroys (with kill) on drop, so a failing assertion still cleans up.
pub struct Guard(pub Box<dyn CgroupManager>);

impl Drop for Guard {
    fn drop(&mut self) {
        if let Err(e) = self.0.destroy(true) {
            eprintln!("cleanup failed: {e}");
        }
    }
}

impl std::ops::Deref for Guard {
    type Target = Box<dyn CgroupManager>;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl std::ops::DerefMut for Guard {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

/// utime+stime of a process, in clock ticks.
pub fn cpu_ticks(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    let after = &s[s.rfind(')').expect("comm") + 2..];
    let f: Vec<&str> = after.split(' ').collect();
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
}

/// Every directory the test path could have left in any mounted hierarchy.
pub fn leftovers(cg: &str) -> Vec<String> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
        let p = entry.path().join(cg.trim_start_matches('/'));
        if p.exists() {
            out.push(p.display().to_string());
        }
    }
    out
}

/// Restores the unified root's subtree_control when dropped (the v2 manager enables the
/// available controllers on its ancestors, the root included).
pub struct RestoreSubtree(pub PathBuf, pub String);

impl Drop for RestoreSubtree {
    fn drop(&mut self) {
        let now =
            std::fs::read_to_string(self.0.join("cgroup.subtree_control")).unwrap_or_default();
        for c in now.split_whitespace() {
            if !self.1.split_whitespace().any(|x| x == c) {
                // A removed child's css lingers briefly (dying) and blocks this with EBUSY.
                for _ in 0..200 {
                    let f = self.0.join("cgroup.subtree_control");
                    if std::fs::write(f, format!("-{c}")).is_ok() {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
        }
    }
}
