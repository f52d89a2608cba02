//! The three `CgroupManager` implementations: pure v1, pure v2, and hybrid (v1 controllers
//! plus the container's directory in the secondary cgroup2 mount, joined as runc does).

use crate::error::{Error, Result};
use crate::exit::Counters;
use crate::oom::OomWatcher;
use crate::stats::Stats;
use crate::v1::V1Dirs;
use crate::v2::V2Dir;
use crate::{CgroupManager, CgroupPaths, FreezerState, LayoutKind};
use oci_spec::runtime::LinuxResources;

/// Without `kill`, a cgroup that still has members is not removed: wait briefly for tasks
/// that are already exiting, then report Busy instead of retrying rmdir for seconds.
fn require_empty(procs: impl Fn() -> Result<Vec<i32>>, path: &CgroupPaths) -> Result<()> {
    let empty = crate::common::wait_until(std::time::Duration::from_millis(500), || {
        Ok(procs()?.is_empty())
    })?;
    if empty {
        Ok(())
    } else {
        Err(Error::Busy {
            path: path.path.clone().into(),
        })
    }
}

fn unsupported(what: &str, layout: LayoutKind) -> Error {
    Error::Unsupported {
        what: what.into(),
        layout: layout.to_string(),
    }
}

/// Pure cgroup v1.
pub struct V1Manager {
    pub(crate) v1: V1Dirs,
    pub(crate) paths: CgroupPaths,
}

impl CgroupManager for V1Manager {
    fn layout(&self) -> LayoutKind {
        LayoutKind::V1
    }

    fn apply(&mut self, pid: i32) -> Result<()> {
        self.v1.create()?;
        self.paths.baseline = self.v1.counters()?;
        if pid > 0 {
            self.v1.join(pid)?;
        }
        Ok(())
    }

    fn join(&self, pid: i32) -> Result<()> {
        self.v1.join(pid)
    }

    fn set(&self, r: &LinuxResources) -> Result<()> {
        if r.unified().as_ref().is_some_and(|u| !u.is_empty()) {
            return Err(unsupported("linux.resources.unified", LayoutKind::V1));
        }
        let left = self.v1.set(r)?;
        if left.hugetlb {
            return Err(unsupported(
                "hugepageLimits (no hugetlb controller mounted)",
                LayoutKind::V1,
            ));
        }
        if left.devices {
            return Err(unsupported(
                "devices (no devices controller mounted)",
                LayoutKind::V1,
            ));
        }
        Ok(())
    }

    fn freeze(&self) -> Result<()> {
        self.v1.freeze()
    }
    fn thaw(&self) -> Result<()> {
        self.v1.thaw()
    }
    fn state(&self) -> Result<FreezerState> {
        self.v1.state()
    }
    fn stats(&self) -> Result<Stats> {
        self.v1.stats()
    }
    fn procs(&self) -> Result<Vec<i32>> {
        self.v1.procs()
    }
    fn counters(&self) -> Result<Counters> {
        self.v1.counters()
    }
    fn oom_watcher(&self) -> Result<OomWatcher> {
        let d = self
            .v1
            .dir("memory")
            .ok_or_else(|| unsupported("OOM events (no memory controller)", LayoutKind::V1))?;
        OomWatcher::v1(d)
    }
    fn kill_all(&self) -> Result<()> {
        self.v1.kill_all()
    }
    fn destroy(&mut self, kill: bool) -> Result<()> {
        if kill {
            self.v1.kill_all()?;
        } else {
            require_empty(|| self.v1.procs(), &self.paths)?;
        }
        self.v1.remove()
    }
    fn paths(&self) -> CgroupPaths {
        self.paths.clone()
    }
}

/// Pure cgroup v2.
pub struct V2Manager {
    pub(crate) v2: V2Dir,
    pub(crate) paths: CgroupPaths,
}

impl CgroupManager for V2Manager {
    fn layout(&self) -> LayoutKind {
        LayoutKind::V2
    }

    fn apply(&mut self, pid: i32) -> Result<()> {
        self.v2.create()?;
        self.v2.enable_controllers(None)?;
        self.paths.baseline = self.v2.counters()?;
        if pid > 0 {
            self.v2.join(pid)?;
        }
        Ok(())
    }

    fn join(&self, pid: i32) -> Result<()> {
        self.v2.join(pid)
    }

    fn set(&self, r: &LinuxResources) -> Result<()> {
        self.v2.set(r)
    }
    fn freeze(&self) -> Result<()> {
        self.v2.freeze()
    }
    fn thaw(&self) -> Result<()> {
        self.v2.thaw()
    }
    fn state(&self) -> Result<FreezerState> {
        self.v2.state()
    }
    fn stats(&self) -> Result<Stats> {
        self.v2.stats()
    }
    fn procs(&self) -> Result<Vec<i32>> {
        self.v2.procs()
    }
    fn counters(&self) -> Result<Counters> {
        self.v2.counters()
    }
    fn oom_watcher(&self) -> Result<OomWatcher> {
        OomWatcher::v2(&self.v2.dir)
    }
    fn kill_all(&self) -> Result<()> {
        self.v2.kill_all()
    }
    fn destroy(&mut self, kill: bool) -> Result<()> {
        if kill {
            self.v2.kill_all()?;
        } else {
            require_empty(|| self.v2.procs(), &self.paths)?;
        }
        self.v2.remove()
    }
    fn paths(&self) -> CgroupPaths {
        self.paths.clone()
    }
}

/// Hybrid: v1 for every controller mounted there; the unified directory is always joined
/// (so `cgroup.kill`, `cgroup.freeze` and device BPF work on it) and takes over controllers
/// that v1 lacks.
pub struct HybridManager {
    pub(crate) v1: V1Dirs,
    pub(crate) unified: V2Dir,
    pub(crate) paths: CgroupPaths,
}

impl HybridManager {
    fn unified_has(&self, controller: &str) -> bool {
        let mount = &self.unified.mount;
        crate::fsutil::read_opt(mount, "cgroup.controllers")
            .ok()
            .flatten()
            .is_some_and(|s| s.split_whitespace().any(|c| c == controller))
    }
}

impl CgroupManager for HybridManager {
    fn layout(&self) -> LayoutKind {
        LayoutKind::Hybrid
    }

    fn apply(&mut self, pid: i32) -> Result<()> {
        self.v1.create()?;
        self.unified.create()?;
        self.paths.baseline = self.v1.counters()?;
        if pid > 0 {
            self.v1.join(pid)?;
            self.unified.join(pid)?;
        }
        Ok(())
    }

    fn join(&self, pid: i32) -> Result<()> {
        self.v1.join(pid)?;
        self.unified.join(pid)
    }

    fn set(&self, r: &LinuxResources) -> Result<()> {
        let left = self.v1.set(r)?;
        if left.hugetlb {
            if !self.unified_has("hugetlb") {
                return Err(unsupported(
                    "hugepageLimits (hugetlb is on neither v1 nor the unified hierarchy)",
                    LayoutKind::Hybrid,
                ));
            }
            self.unified.enable_controllers(Some(&["hugetlb"]))?;
            self.unified
                .set_hugetlb(r.hugepage_limits().as_deref().unwrap_or_default())?;
        }
        if left.devices {
            self.unified
                .set_devices(r.devices().as_deref().unwrap_or_default())?;
        }
        if let Some(u) = r.unified().as_ref().filter(|u| !u.is_empty()) {
            // Keys go to the unified hierarchy; enable the controllers they name first.
            let ctrls: Vec<&str> = u.keys().filter_map(|k| k.split('.').next()).collect();
            self.unified.enable_controllers(Some(&ctrls))?;
            self.unified.set_unified(u)?;
        }
        Ok(())
    }

    fn freeze(&self) -> Result<()> {
        if self.v1.dir("freezer").is_some() {
            self.v1.freeze()
        } else {
            self.unified.freeze()
        }
    }
    fn thaw(&self) -> Result<()> {
        if self.v1.dir("freezer").is_some() {
            self.v1.thaw()
        } else {
            self.unified.thaw()
        }
    }
    fn state(&self) -> Result<FreezerState> {
        if self.v1.dir("freezer").is_some() {
            self.v1.state()
        } else {
            self.unified.state()
        }
    }
    fn stats(&self) -> Result<Stats> {
        let mut s = self.v1.stats()?;
        if self.v1.dir("hugetlb").is_none() {
            s.hugetlb = self.unified.hugetlb_stats()?;
        }
        Ok(s)
    }
    fn procs(&self) -> Result<Vec<i32>> {
        let mut p = self.v1.procs()?;
        p.extend(self.unified.procs()?);
        p.sort_unstable();
        p.dedup();
        Ok(p)
    }
    fn counters(&self) -> Result<Counters> {
        self.v1.counters()
    }
    fn oom_watcher(&self) -> Result<OomWatcher> {
        match self.v1.dir("memory") {
            Some(d) => OomWatcher::v1(d),
            None => Err(unsupported(
                "OOM events (no v1 memory controller)",
                LayoutKind::Hybrid,
            )),
        }
    }
    fn kill_all(&self) -> Result<()> {
        // cgroup.kill on the unified directory reaches every member atomically; the v1
        // pass catches processes that joined only v1 directories.
        if self.unified.dir.join("cgroup.kill").exists() {
            self.unified.kill_all()?;
        }
        self.v1.kill_all()
    }
    fn destroy(&mut self, kill: bool) -> Result<()> {
        if kill {
            self.kill_all()?;
        } else {
            require_empty(|| self.procs(), &self.paths)?;
        }
        let a = self.v1.remove();
        let b = self.unified.remove();
        a.and(b)
    }
    fn paths(&self) -> CgroupPaths {
        self.paths.clone()
    }
}
