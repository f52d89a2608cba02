//! Facts about the host the suite runs on: cgroup layout and security modules.

use anyhow::{Context, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub struct Host {
    /// cgroup v1 controller -> mount point (e.g. "memory" -> /sys/fs/cgroup/memory).
    pub v1: BTreeMap<String, PathBuf>,
    /// True when /sys/fs/cgroup itself is cgroup2 (the pure unified layout).
    pub pure_v2: bool,
    pub apparmor: bool,
    pub selinux: bool,
}

impl Host {
    pub fn detect() -> Result<Host> {
        let mountinfo =
            std::fs::read_to_string("/proc/self/mountinfo").context("reading mountinfo")?;
        let mut v1 = BTreeMap::new();
        let mut v2 = None;
        for line in mountinfo.lines() {
            let Some((pre, post)) = line.split_once(" - ") else {
                continue;
            };
            let mnt = pre.split(' ').nth(4).unwrap_or("");
            let mut post = post.split(' ');
            let fstype = post.next().unwrap_or("");
            let _source = post.next();
            let opts = post.next().unwrap_or("");
            match fstype {
                "cgroup" => {
                    for o in opts.split(',') {
                        if matches!(
                            o,
                            "cpu"
                                | "cpuacct"
                                | "cpuset"
                                | "memory"
                                | "devices"
                                | "freezer"
                                | "blkio"
                                | "pids"
                                | "hugetlb"
                                | "net_cls"
                                | "net_prio"
                                | "perf_event"
                                | "rdma"
                                | "misc"
                        ) {
                            v1.insert(o.to_string(), PathBuf::from(mnt));
                        }
                    }
                }
                "cgroup2" => v2 = Some(PathBuf::from(mnt)),
                _ => {}
            }
        }
        let pure_v2 = v2.as_deref() == Some(Path::new("/sys/fs/cgroup"));
        Ok(Host {
            v1,
            pure_v2,
            apparmor: Path::new("/sys/kernel/security/apparmor").exists(),
            selinux: Path::new("/sys/fs/selinux/enforce").exists(),
        })
    }

    /// The cgroup directory of `pid` for a v1 controller, as seen on the host.
    pub fn v1_dir(&self, pid: i32, controller: &str) -> Result<PathBuf> {
        let mnt = self
            .v1
            .get(controller)
            .with_context(|| format!("no cgroup v1 {controller} hierarchy on this host"))?;
        let rel = cgroup_path(pid, controller)?;
        Ok(mnt.join(rel.trim_start_matches('/')))
    }
}

/// The path of `pid` in the hierarchy that has `controller` (from /proc/<pid>/cgroup).
pub fn cgroup_path(pid: i32, controller: &str) -> Result<String> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .with_context(|| format!("reading /proc/{pid}/cgroup"))?;
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, ctrls, path) = (parts.next(), parts.next(), parts.next());
        if let (Some(ctrls), Some(path)) = (ctrls, path) {
            if ctrls.split(',').any(|c| c == controller) {
                return Ok(path.to_string());
            }
        }
    }
    anyhow::bail!("{controller} not in /proc/{pid}/cgroup")
}
