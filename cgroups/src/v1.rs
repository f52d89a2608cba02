//! cgroup v1: one directory per mounted hierarchy (memory, cpu,cpuacct, name=systemd, ...).

use crate::common;
use crate::devices;
use crate::error::{Error, Result};
use crate::exit::Counters;
use crate::fsutil::{self, read_flat_keyed, read_u64_opt, write};
use crate::stats::{self, Stats};
use crate::FreezerState;
use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxMemory, LinuxResources};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The container's directory in each v1 hierarchy, keyed by the hierarchy's controller list
/// (`memory`, `cpu,cpuacct`, `name=systemd`), plus each hierarchy's mountpoint.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct V1Dirs {
    pub dirs: BTreeMap<String, PathBuf>,
    pub mounts: BTreeMap<String, PathBuf>,
}

/// Resources that v1 could not apply because the controller is not mounted on v1; the
/// hybrid manager applies them through the unified hierarchy instead.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Leftover {
    pub hugetlb: bool,
    pub devices: bool,
}

impl V1Dirs {
    /// The container's directory for `controller`, if that controller is mounted.
    pub fn dir(&self, controller: &str) -> Option<&Path> {
        self.dirs
            .iter()
            .find(|(k, _)| k.split(',').any(|c| c == controller))
            .map(|(_, p)| p.as_path())
    }

    fn need(&self, controller: &str, what: &str) -> Result<&Path> {
        self.dir(controller).ok_or_else(|| Error::Unsupported {
            what: format!("{what} (controller {controller} is not mounted)"),
            layout: "this host's cgroup v1 mounts".into(),
        })
    }

    /// Creates the directories (cpuset ones get their parent's cpus and mems, which v1
    /// requires before any task can join).
    pub fn create(&self) -> Result<()> {
        for (key, dir) in &self.dirs {
            let top = self.mounts.get(key).cloned().unwrap_or_default();
            let is_cpuset = key.split(',').any(|c| c == "cpuset");
            common::create_path(&top, dir, |d| {
                if is_cpuset {
                    inherit_cpuset(d)?;
                }
                Ok(())
            })?;
        }
        Ok(())
    }

    /// Moves `pid` into every hierarchy.
    pub fn join(&self, pid: i32) -> Result<()> {
        for dir in self.dirs.values() {
            write(dir, "cgroup.procs", &pid.to_string())?;
        }
        Ok(())
    }

    /// Applies `r`. Returns what it could not apply for lack of a v1 controller.
    pub fn set(&self, r: &LinuxResources) -> Result<Leftover> {
        let mut left = Leftover::default();
        if let Some(cpu) = r.cpu() {
            self.set_cpu(cpu)?;
        }
        if let Some(mem) = r.memory() {
            self.set_memory(mem)?;
        }
        if let Some(p) = r.pids() {
            let d = self.need("pids", "pids limit")?;
            let v = if p.limit() > 0 {
                p.limit().to_string()
            } else {
                "max".into()
            };
            write(d, "pids.max", &v)?;
        }
        if let Some(b) = r.block_io() {
            self.set_blkio(b)?;
        }
        if let Some(h) = r.hugepage_limits().as_ref().filter(|h| !h.is_empty()) {
            match self.dir("hugetlb") {
                Some(d) => {
                    for l in h {
                        let size = crate::convert::hugepage_size(l.page_size())?;
                        write(
                            d,
                            &format!("hugetlb.{size}.limit_in_bytes"),
                            &l.limit().to_string(),
                        )?;
                    }
                }
                None => left.hugetlb = true,
            }
        }
        if let Some(rules) = r.devices() {
            match self.dir("devices") {
                Some(d) => {
                    for (file, line) in devices::v1_writes(&devices::rules_from_oci(rules)?) {
                        write(d, file, &line)?;
                    }
                }
                None => left.devices = true,
            }
        }
        if let Some(n) = r.network() {
            if let Some(id) = n.class_id() {
                write(
                    self.need("net_cls", "network classID")?,
                    "net_cls.classid",
                    &id.to_string(),
                )?;
            }
            for p in n.priorities().iter().flatten() {
                let d = self.need("net_prio", "network priorities")?;
                write(
                    d,
                    "net_prio.ifpriomap",
                    &format!("{} {}", p.name(), p.priority()),
                )?;
            }
        }
        Ok(left)
    }

    fn set_cpu(&self, cpu: &LinuxCpu) -> Result<()> {
        if cpu.cpus().is_some() || cpu.mems().is_some() {
            let d = self.need("cpuset", "cpuset")?;
            if let Some(c) = cpu.cpus().as_deref().filter(|s| !s.is_empty()) {
                write(d, "cpuset.cpus", c)?;
            }
            if let Some(m) = cpu.mems().as_deref().filter(|s| !s.is_empty()) {
                write(d, "cpuset.mems", m)?;
            }
        }
        let wants_cpu = cpu.shares().is_some_and(|v| v != 0)
            || cpu.quota().is_some_and(|v| v != 0)
            || cpu.period().is_some_and(|v| v != 0)
            || cpu.burst().is_some()
            || cpu.idle().is_some()
            || cpu.realtime_runtime().is_some_and(|v| v != 0)
            || cpu.realtime_period().is_some_and(|v| v != 0);
        if !wants_cpu {
            return Ok(());
        }
        let d = self.need("cpu", "cpu limits")?;
        if let Some(s) = cpu.shares().filter(|v| *v != 0) {
            write(d, "cpu.shares", &s.to_string())?;
        }
        // The kernel checks quota against period on each write, so when a period write is
        // refused, write the quota first and retry.
        let period = cpu.period().filter(|v| *v != 0);
        let quota = cpu.quota().filter(|v| *v != 0);
        if let Some(p) = period {
            if write(d, "cpu.cfs_period_us", &p.to_string()).is_err() {
                if let Some(q) = quota {
                    write(d, "cpu.cfs_quota_us", &q.to_string())?;
                }
                write(d, "cpu.cfs_period_us", &p.to_string())?;
            }
        }
        if let Some(q) = quota {
            write(d, "cpu.cfs_quota_us", &q.to_string())?;
        }
        if let Some(b) = cpu.burst() {
            write(d, "cpu.cfs_burst_us", &b.to_string())?;
        }
        if let Some(p) = cpu.realtime_period().filter(|v| *v != 0) {
            write(d, "cpu.rt_period_us", &p.to_string())?;
        }
        if let Some(rt) = cpu.realtime_runtime().filter(|v| *v != 0) {
            write(d, "cpu.rt_runtime_us", &rt.to_string())?;
        }
        if let Some(i) = cpu.idle() {
            write(d, "cpu.idle", &i.to_string())?;
        }
        Ok(())
    }

    fn set_memory(&self, m: &LinuxMemory) -> Result<()> {
        let wants = m.limit().is_some()
            || m.swap().is_some()
            || m.reservation().is_some()
            || m.swappiness().is_some()
            || m.disable_oom_killer().is_some();
        if !wants {
            return Ok(());
        }
        let d = self.need("memory", "memory limits")?;
        let limit = m.limit().unwrap_or(0);
        let mut swap = m.swap().unwrap_or(0);
        if limit == -1 && swap == 0 {
            swap = -1; // "unlimited memory" means unlimited memory+swap too, as in runc
        }
        let has_memsw = d.join("memory.memsw.limit_in_bytes").exists();
        let write_swap = |v: i64| -> Result<()> {
            if has_memsw {
                write(d, "memory.memsw.limit_in_bytes", &v.to_string())
            } else if v == -1 {
                Ok(()) // no swap accounting: "unlimited" is already the case
            } else {
                Err(Error::Unsupported {
                    what: "memory.swap (no memory.memsw.limit_in_bytes: swap accounting is off)"
                        .into(),
                    layout: "this kernel".into(),
                })
            }
        };
        // memsw must stay >= limit at every step, so the order depends on the direction.
        if limit != 0 && swap != 0 {
            let cur = read_u64_opt(d, "memory.limit_in_bytes")?.unwrap_or(u64::MAX);
            if swap == -1 || (cur as i128) < swap as i128 {
                write_swap(swap)?;
                write(d, "memory.limit_in_bytes", &limit.to_string())?;
            } else {
                write(d, "memory.limit_in_bytes", &limit.to_string())?;
                write_swap(swap)?;
            }
        } else if limit != 0 {
            write(d, "memory.limit_in_bytes", &limit.to_string())?;
        } else if swap != 0 {
            write_swap(swap)?;
        }
        if let Some(r) = m.reservation().filter(|v| *v != 0) {
            write(d, "memory.soft_limit_in_bytes", &r.to_string())?;
        }
        if let Some(s) = m.swappiness() {
            if s > 100 {
                return Err(Error::invalid_resource(
                    "memory.swappiness",
                    format!("{s} is not in 0..=100"),
                ));
            }
            write(d, "memory.swappiness", &s.to_string())?;
        }
        if m.disable_oom_killer() == Some(true) {
            write(d, "memory.oom_control", "1")?;
        }
        Ok(())
    }

    fn set_blkio(&self, b: &LinuxBlockIo) -> Result<()> {
        let wants = b.weight().is_some_and(|w| w != 0)
            || b.weight_device().as_ref().is_some_and(|v| !v.is_empty())
            || [
                b.throttle_read_bps_device(),
                b.throttle_write_bps_device(),
                b.throttle_read_iops_device(),
                b.throttle_write_iops_device(),
            ]
            .iter()
            .any(|t| t.as_ref().is_some_and(|v| !v.is_empty()));
        if !wants {
            return Ok(());
        }
        let d = self.need("blkio", "blkio limits")?;
        // CFQ-era kernels have blkio.weight; BFQ ones blkio.bfq.weight (same 10..1000 scale).
        let weight_file = ["blkio.weight", "blkio.bfq.weight"]
            .into_iter()
            .find(|f| d.join(f).exists());
        let no_weight = || Error::Unsupported {
            what: "blkio weight (no blkio.weight or blkio.bfq.weight: BFQ not in use)".into(),
            layout: "this host".into(),
        };
        if let Some(w) = b.weight().filter(|w| *w != 0) {
            write(d, weight_file.ok_or_else(no_weight)?, &w.to_string())?;
        }
        for wd in b.weight_device().iter().flatten() {
            if let Some(w) = wd.weight() {
                let file = match weight_file.ok_or_else(no_weight)? {
                    "blkio.weight" => "blkio.weight_device",
                    _ => "blkio.bfq.weight",
                };
                write(d, file, &format!("{}:{} {}", wd.major(), wd.minor(), w))?;
            }
        }
        for (list, file) in [
            (
                b.throttle_read_bps_device(),
                "blkio.throttle.read_bps_device",
            ),
            (
                b.throttle_write_bps_device(),
                "blkio.throttle.write_bps_device",
            ),
            (
                b.throttle_read_iops_device(),
                "blkio.throttle.read_iops_device",
            ),
            (
                b.throttle_write_iops_device(),
                "blkio.throttle.write_iops_device",
            ),
        ] {
            for t in list.iter().flatten() {
                write(
                    d,
                    file,
                    &format!("{}:{} {}", t.major(), t.minor(), t.rate()),
                )?;
            }
        }
        Ok(())
    }

    /// Freezes through the freezer controller and waits until the kernel reports FROZEN.
    pub fn freeze(&self) -> Result<()> {
        let d = self.need("freezer", "freeze")?;
        write(d, "freezer.state", "FROZEN")?;
        let mut tries = 0u32;
        let ok = common::wait_until(Duration::from_secs(5), || {
            tries += 1;
            if read_state(d)? == FreezerState::Frozen {
                return Ok(true);
            }
            // A task in an uninterruptible sleep can leave the cgroup in FREEZING; asking
            // again makes the kernel retry the tasks that were not frozen yet.
            if tries.is_multiple_of(8) {
                write(d, "freezer.state", "FROZEN")?;
            }
            Ok(false)
        })?;
        if !ok {
            let _ = write(d, "freezer.state", "THAWED");
            return Err(Error::FreezeTimeout {
                path: d.to_path_buf(),
                state: "FROZEN".into(),
            });
        }
        Ok(())
    }

    pub fn thaw(&self) -> Result<()> {
        let d = self.need("freezer", "thaw")?;
        write(d, "freezer.state", "THAWED")?;
        let ok = common::wait_until(Duration::from_secs(5), || {
            Ok(read_state(d)? == FreezerState::Thawed)
        })?;
        if !ok {
            return Err(Error::FreezeTimeout {
                path: d.to_path_buf(),
                state: "THAWED".into(),
            });
        }
        Ok(())
    }

    pub fn state(&self) -> Result<FreezerState> {
        match self.dir("freezer") {
            Some(d) => read_state(d),
            None => Ok(FreezerState::Thawed),
        }
    }

    /// Every pid in any hierarchy's subtree, sorted and unique.
    pub fn procs(&self) -> Result<Vec<i32>> {
        let mut out = Vec::new();
        for d in self.dirs.values() {
            fsutil::procs_recursive(d, &mut out)?;
        }
        out.sort_unstable();
        out.dedup();
        Ok(out)
    }

    /// OOM and pids counters (0 where the controller is absent).
    pub fn counters(&self) -> Result<Counters> {
        let mut c = Counters::default();
        if let Some(d) = self.dir("memory") {
            let oc = read_flat_keyed(d, "memory.oom_control")?;
            c.oom_kill = oc.get("oom_kill").copied().unwrap_or(0);
            c.oom = c.oom_kill;
        }
        if let Some(d) = self.dir("pids") {
            c.pids_max = read_flat_keyed(d, "pids.events")?
                .get("max")
                .copied()
                .unwrap_or(0);
        }
        Ok(c)
    }

    pub fn stats(&self) -> Result<Stats> {
        let mut s = Stats::default();
        if let Some(d) = self.dir("cpuacct") {
            let u = &mut s.cpu.usage;
            u.total = read_u64_opt(d, "cpuacct.usage")?.unwrap_or(0);
            u.percpu = read_list(d, "cpuacct.usage_percpu")?;
            u.percpu_user = read_list(d, "cpuacct.usage_percpu_user")?;
            u.percpu_kernel = read_list(d, "cpuacct.usage_percpu_sys")?;
            match (
                read_u64_opt(d, "cpuacct.usage_user")?,
                read_u64_opt(d, "cpuacct.usage_sys")?,
            ) {
                (Some(user), Some(sys)) => (u.user, u.kernel) = (user, sys),
                _ => {
                    // cpuacct.stat is in clock ticks.
                    let st = read_flat_keyed(d, "cpuacct.stat")?;
                    // SAFETY: sysconf has no preconditions.
                    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
                    u.user = st.get("user").copied().unwrap_or(0) * (1_000_000_000 / hz);
                    u.kernel = st.get("system").copied().unwrap_or(0) * (1_000_000_000 / hz);
                }
            }
        }
        if let Some(d) = self.dir("cpu") {
            let st = read_flat_keyed(d, "cpu.stat")?;
            let t = &mut s.cpu.throttling;
            t.periods = st.get("nr_periods").copied().unwrap_or(0);
            t.throttled_periods = st.get("nr_throttled").copied().unwrap_or(0);
            t.throttled_time = st.get("throttled_time").copied().unwrap_or(0);
        }
        if let Some(d) = self.dir("memory") {
            let m = &mut s.memory;
            m.usage = mem_entry(d, "memory")?;
            m.swap = mem_entry(d, "memory.memsw")?;
            m.kernel = mem_entry(d, "memory.kmem")?;
            m.kernel_tcp = mem_entry(d, "memory.kmem.tcp")?;
            m.raw = read_flat_keyed(d, "memory.stat")?;
            m.cache = m.raw.get("cache").copied().unwrap_or(0);
        }
        if let Some(d) = self.dir("pids") {
            s.pids.current = read_u64_opt(d, "pids.current")?.unwrap_or(0);
            s.pids.limit = match read_u64_opt(d, "pids.max")? {
                Some(u64::MAX) | None => 0,
                Some(v) => v,
            };
        }
        if let Some(d) = self.dir("blkio") {
            let b = &mut s.blkio;
            if let Some(t) = fsutil::read_opt(d, "blkio.throttle.io_service_bytes_recursive")? {
                b.io_service_bytes_recursive = stats::parse_blkio_v1(&t);
            }
            if let Some(t) = fsutil::read_opt(d, "blkio.throttle.io_serviced_recursive")? {
                b.io_serviced_recursive = stats::parse_blkio_v1(&t);
            }
        }
        if let Some(d) = self.dir("hugetlb") {
            for size in crate::convert::host_hugepage_sizes() {
                let p = format!("hugetlb.{size}");
                let e = crate::stats::Hugetlb {
                    usage: read_u64_opt(d, &format!("{p}.usage_in_bytes"))?.unwrap_or(0),
                    max: read_u64_opt(d, &format!("{p}.max_usage_in_bytes"))?.unwrap_or(0),
                    failcnt: read_u64_opt(d, &format!("{p}.failcnt"))?.unwrap_or(0),
                };
                s.hugetlb.insert(size, e);
            }
        }
        Ok(s)
    }

    /// Signals every member until none is left: freeze so nothing forks between listing and
    /// killing, SIGKILL, thaw so the kill is delivered, repeat.
    pub fn kill_all(&self) -> Result<()> {
        let can_freeze = self.dir("freezer").is_some();
        let ok = common::wait_until(Duration::from_secs(10), || {
            let pids = self.procs()?;
            if pids.is_empty() {
                return Ok(true);
            }
            let froze = can_freeze && self.freeze().is_ok();
            let r = common::signal_all(self.any_dir(), &self.procs()?, libc::SIGKILL);
            if froze {
                self.thaw()?;
            }
            r?;
            Ok(false)
        })?;
        if ok {
            Ok(())
        } else {
            Err(Error::Busy {
                path: self.any_dir().to_path_buf(),
            })
        }
    }

    fn any_dir(&self) -> &Path {
        self.dirs
            .values()
            .next()
            .map(PathBuf::as_path)
            .unwrap_or(Path::new("/"))
    }

    /// Removes the container's directory (and anything below it) from every hierarchy.
    pub fn remove(&self) -> Result<()> {
        let mut first_err = None;
        for d in self.dirs.values() {
            if let Err(e) = common::remove_tree(d, Duration::from_secs(2)) {
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }
}

fn read_state(d: &Path) -> Result<FreezerState> {
    let s = fsutil::read(d, "freezer.state")?;
    Ok(match s.trim() {
        "FROZEN" => FreezerState::Frozen,
        "FREEZING" => FreezerState::Freezing,
        _ => FreezerState::Thawed,
    })
}

fn read_list(d: &Path, file: &str) -> Result<Vec<u64>> {
    Ok(fsutil::read_opt(d, file)?
        .map(|s| {
            s.split_whitespace()
                .filter_map(|v| v.parse().ok())
                .collect()
        })
        .unwrap_or_default())
}

fn mem_entry(d: &Path, prefix: &str) -> Result<crate::stats::MemoryEntry> {
    Ok(crate::stats::MemoryEntry {
        limit: read_u64_opt(d, &format!("{prefix}.limit_in_bytes"))?.unwrap_or(0),
        usage: read_u64_opt(d, &format!("{prefix}.usage_in_bytes"))?.unwrap_or(0),
        max: read_u64_opt(d, &format!("{prefix}.max_usage_in_bytes"))?.unwrap_or(0),
        failcnt: read_u64_opt(d, &format!("{prefix}.failcnt"))?.unwrap_or(0),
    })
}

/// A fresh v1 cpuset cgroup has empty cpus/mems; copy the parent's so tasks can join.
fn inherit_cpuset(d: &Path) -> Result<()> {
    let parent = d.parent().unwrap_or(d);
    for f in ["cpuset.cpus", "cpuset.mems"] {
        if fsutil::read(d, f)?.trim().is_empty() {
            let v = fsutil::read(parent, f)?;
            write(d, f, v.trim())?;
        }
    }
    Ok(())
}
