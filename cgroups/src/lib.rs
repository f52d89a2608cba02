//! cgroups: v1, v2 and hybrid cgroup management for mantle containers.
//!
//! Use: `create(cgroups_path, default, systemd)` computes where the container's cgroups go
//! on this host's layout (nothing is touched yet); `apply(pid)` creates them and moves the
//! pid in; `set(&resources)` writes limits. `paths()` is saved in the container state and
//! `open(&saved)` gives the manager back to later commands. `destroy_path` cleans up from
//! the cgroupsPath alone when no state survived.
//!
//! Layouts: pure v1, pure v2, and hybrid (v1 controllers plus a cgroup2 mount, which runc
//! also joins). On hybrid, a controller that is not on v1 (hugetlb here, or devices/freezer
//! elsewhere) is driven through the unified hierarchy instead.

pub mod bpf;
mod common;
pub mod convert;
pub mod devices;
pub mod error;
pub mod exit;
pub mod fake;
pub mod fsutil;
mod hybrid;
pub mod layout;
pub mod mounts;
pub mod oom;
pub mod path;
pub mod stats;
pub mod v1;
pub mod v2;

pub use error::{Error, Result};
pub use exit::{Counters, ExitReason, Termination};
pub use layout::{Layout, LayoutKind};
pub use mounts::MountStep;
pub use oom::{OomEvent, OomWatcher};
pub use stats::{Event, Stats};

use oci_spec::runtime::LinuxResources;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

/// Freezer state of a container cgroup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FreezerState {
    Thawed,
    /// Freeze asked for, not all tasks stopped yet.
    Freezing,
    Frozen,
}

/// Everything needed to reopen a container's cgroups later: save it in the state JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CgroupPaths {
    pub layout: LayoutKind,
    /// The cgroup path as resolved from cgroupsPath (informational).
    pub path: String,
    /// v1: controller list (`memory`, `cpu,cpuacct`, `name=systemd`) -> directory.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub v1: BTreeMap<String, PathBuf>,
    /// v1: controller list -> mountpoint of that hierarchy.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub v1_mounts: BTreeMap<String, PathBuf>,
    /// v2 / hybrid: the directory in the cgroup2 hierarchy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unified: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unified_mount: Option<PathBuf>,
    /// Event counters when the container was set up; exit reasons compare against them.
    #[serde(default)]
    pub baseline: Counters,
}

/// A container's cgroups on one layout. Call `exit_reason` before `destroy`.
pub trait CgroupManager: Send {
    /// Which layout this manager drives.
    fn layout(&self) -> LayoutKind;
    /// Creates the cgroup directories and moves `pid` in (`pid <= 0`: only create). Records
    /// the baseline event counters.
    fn apply(&mut self, pid: i32) -> Result<()>;
    /// Moves `pid` into the existing cgroups (for `exec`); creates nothing.
    fn join(&self, pid: i32) -> Result<()>;
    /// Writes resource limits (create and `update`).
    fn set(&self, resources: &LinuxResources) -> Result<()>;
    /// Freezes every process and returns once the kernel reports them frozen.
    fn freeze(&self) -> Result<()>;
    /// Thaws and returns once the kernel reports them running.
    fn thaw(&self) -> Result<()>;
    fn state(&self) -> Result<FreezerState>;
    fn stats(&self) -> Result<Stats>;
    /// Every pid in the container's cgroups, recursively, sorted.
    fn procs(&self) -> Result<Vec<i32>>;
    /// Current OOM / pids event counters.
    fn counters(&self) -> Result<Counters>;
    /// A handle to wait for OOM events on.
    fn oom_watcher(&self) -> Result<OomWatcher>;
    /// SIGKILLs every process until the cgroups are empty.
    fn kill_all(&self) -> Result<()>;
    /// Removes every directory `apply` created (and sub-cgroups below them); with `kill`,
    /// kills remaining processes first. Idempotent.
    fn destroy(&mut self, kill: bool) -> Result<()>;
    /// What to save for `open`.
    fn paths(&self) -> CgroupPaths;

    /// The precise reason the container's init ended, from its wait status and the event
    /// counters (compared with the baseline taken by `apply`).
    fn exit_reason(&self, t: Termination) -> ExitReason {
        let base = self.paths().baseline;
        let now = self.counters().unwrap_or(base);
        ExitReason::classify(t, &base, &now)
    }

    /// Mount steps for a `cgroup` mount at `dest` inside the container.
    fn mounts(&self, dest: &Path, cgroupns: bool, readonly: bool) -> Vec<MountStep> {
        mounts::plan(&self.paths(), dest, cgroupns, readonly)
    }
}

/// Computes the container's cgroup directories for this host. `path_spec` is
/// `linux.cgroupsPath` (absent or empty: `default_path`, e.g. `/mantle/<id>`). With
/// `systemd`, the path must be `slice:prefix:name` and systemd must be running.
pub fn create(
    path_spec: Option<&str>,
    default_path: &str,
    systemd: bool,
) -> Result<Box<dyn CgroupManager>> {
    let layout = Layout::detect()?;
    let cg = path::resolve(path_spec, default_path, systemd)?;
    let own = path::own_cgroups()?;
    open(&paths_for(&layout, &cg, &own)?)
}

/// Computes `CgroupPaths` for a resolved path on a given layout.
pub fn paths_for(
    layout: &Layout,
    cg: &path::CgroupPath,
    own: &[(String, PathBuf)],
) -> Result<CgroupPaths> {
    let kind = layout.kind()?;
    let mut p = CgroupPaths {
        layout: kind,
        path: cg.display(),
        v1: BTreeMap::new(),
        v1_mounts: BTreeMap::new(),
        unified: None,
        unified_mount: None,
        baseline: Counters::default(),
    };
    if kind != LayoutKind::V2 {
        for h in &layout.v1 {
            let key = h.joined_name();
            p.v1.insert(key.clone(), cg.dir_in(h, &path::own_cgroup_in(own, h)));
            p.v1_mounts.insert(key, h.mountpoint.clone());
        }
    }
    if let Some(u) = &layout.unified {
        p.unified = Some(cg.dir_in(u, &path::own_cgroup_in(own, u)));
        p.unified_mount = Some(u.mountpoint.clone());
    }
    Ok(p)
}

/// Reopens a container's cgroups from saved paths.
pub fn open(paths: &CgroupPaths) -> Result<Box<dyn CgroupManager>> {
    validate(paths)?;
    let v1 = v1::V1Dirs {
        dirs: paths.v1.clone(),
        mounts: paths.v1_mounts.clone(),
    };
    let v2 = || -> Result<v2::V2Dir> {
        match (&paths.unified, &paths.unified_mount) {
            (Some(dir), Some(mount)) => Ok(v2::V2Dir {
                dir: dir.clone(),
                mount: mount.clone(),
            }),
            _ => Err(Error::InvalidPath {
                path: paths.path.clone(),
                reason: "saved cgroup state lacks the unified directory".into(),
            }),
        }
    };
    Ok(match paths.layout {
        LayoutKind::V1 => Box::new(hybrid::V1Manager {
            v1,
            paths: paths.clone(),
        }),
        LayoutKind::V2 => Box::new(hybrid::V2Manager {
            v2: v2()?,
            paths: paths.clone(),
        }),
        LayoutKind::Hybrid => Box::new(hybrid::HybridManager {
            v1,
            unified: v2()?,
            paths: paths.clone(),
        }),
    })
}

/// Removes a container's cgroups knowing only its cgroupsPath (e.g. `delete --force` after
/// the runtime was killed during `create`). A relative path is resolved against the calling
/// process's cgroup, so prefer saving `paths()` and using `open` when state exists.
pub fn destroy_path(path_spec: &str, default_path: &str, systemd: bool, kill: bool) -> Result<()> {
    create(Some(path_spec), default_path, systemd)?.destroy(kill)
}

/// Threat: the saved state is read back from disk; a tampered file must not turn `destroy`
/// into "rmdir/kill anything". Every directory must sit strictly below its mountpoint,
/// without `..`, and the mountpoint must be a cgroup filesystem.
fn validate(p: &CgroupPaths) -> Result<()> {
    let check = |dir: &Path, mount: Option<&PathBuf>| -> Result<()> {
        let bad = |reason: &str| Error::InvalidPath {
            path: dir.display().to_string(),
            reason: reason.into(),
        };
        let mount = mount.ok_or_else(|| bad("no mountpoint recorded"))?;
        if dir.components().any(|c| c == Component::ParentDir) {
            return Err(bad("contains '..'"));
        }
        if dir == mount.as_path() || !dir.starts_with(mount) {
            return Err(bad("not strictly below its cgroup mountpoint"));
        }
        if !is_cgroupfs(mount) {
            return Err(bad("mountpoint is not a cgroup filesystem"));
        }
        Ok(())
    };
    for (k, d) in &p.v1 {
        check(d, p.v1_mounts.get(k))?;
    }
    if let Some(u) = &p.unified {
        check(u, p.unified_mount.as_ref())?;
    }
    Ok(())
}

fn is_cgroupfs(p: &Path) -> bool {
    const CGROUP_SUPER_MAGIC: i64 = 0x0027_e0eb;
    const CGROUP2_SUPER_MAGIC: i64 = 0x6367_7270;
    match nix::sys::statfs::statfs(p) {
        Ok(s) => {
            let t = s.filesystem_type().0;
            t == CGROUP_SUPER_MAGIC || t == CGROUP2_SUPER_MAGIC
        }
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_json_round_trip_and_validation() {
        let layout = Layout::parse_mountinfo(
            "32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n\
             41 31 0:38 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n",
        );
        let cg = path::CgroupPath::parse("/mantle/x").unwrap();
        let p = paths_for(&layout, &cg, &[]).unwrap();
        assert_eq!(p.layout, LayoutKind::Hybrid);
        assert_eq!(
            p.v1["cpu,cpuacct"],
            Path::new("/sys/fs/cgroup/cpu,cpuacct/mantle/x")
        );
        assert_eq!(
            p.unified.as_deref(),
            Some(Path::new("/sys/fs/cgroup/unified/mantle/x"))
        );
        let j = serde_json::to_string(&p).unwrap();
        let back: CgroupPaths = serde_json::from_str(&j).unwrap();
        assert_eq!(back, p);

        let mut evil = p.clone();
        evil.v1.insert(
            "cpu,cpuacct".into(),
            "/sys/fs/cgroup/cpu,cpuacct/../../../etc".into(),
        );
        assert!(validate(&evil).unwrap_err().to_string().contains(".."));
        let mut evil = p.clone();
        evil.v1
            .insert("cpu,cpuacct".into(), "/sys/fs/cgroup/cpu,cpuacct".into());
        assert!(
            validate(&evil).is_err(),
            "the hierarchy root itself is refused"
        );
        let mut evil = p;
        evil.v1_mounts.insert("cpu,cpuacct".into(), "/tmp".into());
        evil.v1.insert("cpu,cpuacct".into(), "/tmp/x".into());
        assert!(validate(&evil)
            .unwrap_err()
            .to_string()
            .contains("not a cgroup filesystem"));
    }
}
