//! cgroup v2: one directory in the unified hierarchy. Also used by the hybrid manager for the
//! container's directory under the host's secondary cgroup2 mount.

use crate::common;
use crate::convert;
use crate::devices;
use crate::error::{Error, Result};
use crate::exit::Counters;
use crate::fsutil::{self, read_flat_keyed, read_u64_opt, write};
use crate::stats::{self, Stats};
use crate::FreezerState;
use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxHugepageLimit, LinuxMemory, LinuxResources};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The container's cgroup2 directory and the mountpoint it lives under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V2Dir {
    pub dir: PathBuf,
    pub mount: PathBuf,
}

/// Unified keys a bundle may not write: they move or kill processes rather than set limits.
const FORBIDDEN_KEYS: &[&str] = &["cgroup.procs", "cgroup.threads", "cgroup.kill"];

impl V2Dir {
    /// Creates the directory (and missing parents).
    pub fn create(&self) -> Result<()> {
        common::create_path(&self.mount, &self.dir, |_| Ok(()))
    }

    /// Enables `wanted` controllers (or all available with `None`) in every ancestor's
    /// cgroup.subtree_control so the leaf gets their files. A refusal (an ancestor with
    /// processes, a controller busy elsewhere) is left for the knob write to report.
    pub fn enable_controllers(&self, wanted: Option<&[&str]>) -> Result<()> {
        let rel = self.dir.strip_prefix(&self.mount).unwrap_or(Path::new(""));
        let mut cur = self.mount.clone();
        for comp in rel.components() {
            let avail = fsutil::read_opt(&cur, "cgroup.controllers")?.unwrap_or_default();
            let on = fsutil::read_opt(&cur, "cgroup.subtree_control")?.unwrap_or_default();
            for c in avail.split_whitespace() {
                let want = wanted.is_none_or(|w| w.contains(&c));
                if want && !on.split_whitespace().any(|x| x == c) {
                    let _ = write(&cur, "cgroup.subtree_control", &format!("+{c}"));
                }
            }
            cur.push(comp);
        }
        Ok(())
    }

    pub fn join(&self, pid: i32) -> Result<()> {
        write(&self.dir, "cgroup.procs", &pid.to_string())
    }

    /// Applies every resource; v1-style values are converted as runc does.
    pub fn set(&self, r: &LinuxResources) -> Result<()> {
        if let Some(c) = r.cpu() {
            self.set_cpu(c)?;
        }
        if let Some(m) = r.memory() {
            self.set_memory(m)?;
        }
        if let Some(p) = r.pids() {
            let v = if p.limit() > 0 {
                p.limit().to_string()
            } else {
                "max".into()
            };
            write(&self.dir, "pids.max", &v)?;
        }
        if let Some(b) = r.block_io() {
            self.set_io(b)?;
        }
        if let Some(h) = r.hugepage_limits() {
            self.set_hugetlb(h)?;
        }
        if let Some(d) = r.devices() {
            self.set_devices(d)?;
        }
        if r.network()
            .as_ref()
            .is_some_and(|n| n.class_id().is_some() || n.priorities().is_some())
        {
            return Err(Error::Unsupported {
                what: "linux.resources.network (net_cls/net_prio)".into(),
                layout: "cgroup v2".into(),
            });
        }
        if let Some(u) = r.unified() {
            self.set_unified(u)?;
        }
        Ok(())
    }

    fn set_cpu(&self, c: &LinuxCpu) -> Result<()> {
        let d = &self.dir;
        if c.realtime_runtime().is_some_and(|v| v != 0)
            || c.realtime_period().is_some_and(|v| v != 0)
        {
            return Err(Error::Unsupported {
                what: "cpu realtimeRuntime/realtimePeriod".into(),
                layout: "cgroup v2".into(),
            });
        }
        if let Some(s) = c.shares().filter(|s| *s != 0) {
            write(d, "cpu.weight", &convert::shares_to_weight(s).to_string())?;
        }
        if let Some(v) = convert::cpu_max(c.quota(), c.period()) {
            write(d, "cpu.max", &v)?;
        }
        if let Some(b) = c.burst() {
            write(d, "cpu.max.burst", &b.to_string())?;
        }
        if let Some(i) = c.idle() {
            write(d, "cpu.idle", &i.to_string())?;
        }
        if let Some(v) = c.cpus().as_deref().filter(|s| !s.is_empty()) {
            write(d, "cpuset.cpus", v)?;
        }
        if let Some(v) = c.mems().as_deref().filter(|s| !s.is_empty()) {
            write(d, "cpuset.mems", v)?;
        }
        Ok(())
    }

    fn set_memory(&self, m: &LinuxMemory) -> Result<()> {
        let d = &self.dir;
        let limit = m.limit().unwrap_or(0);
        let swap = convert::memory_swap_to_v2(m.swap().unwrap_or(0), limit)?;
        // Swap first: lowering memory.max first could push the workload into swap that the
        // old swap limit does not allow.
        if swap != 0 {
            let v = convert::v2_limit(swap);
            match write(d, "memory.swap.max", &v) {
                // No swap accounting: "max" is already true; anything else must not be lost.
                Err(Error::Write { source, .. })
                    if source.kind() == std::io::ErrorKind::NotFound && v == "max" => {}
                r => r?,
            }
        }
        if limit != 0 {
            write(d, "memory.max", &convert::v2_limit(limit))?;
        }
        if let Some(r) = m.reservation().filter(|v| *v != 0) {
            write(d, "memory.low", &convert::v2_limit(r))?;
        }
        if m.disable_oom_killer() == Some(true) {
            return Err(Error::Unsupported {
                what: "memory.disableOOMKiller".into(),
                layout: "cgroup v2".into(),
            });
        }
        Ok(())
    }

    fn set_io(&self, b: &LinuxBlockIo) -> Result<()> {
        let d = &self.dir;
        // BFQ takes the v1 10..1000 scale directly; io.weight wants 1..10000.
        let bfq = d.join("io.bfq.weight").exists();
        if let Some(w) = b.weight().filter(|w| *w != 0) {
            if bfq {
                write(d, "io.bfq.weight", &w.to_string())?;
            } else {
                let v = convert::blkio_weight_to_io_weight(w);
                write(d, "io.weight", &format!("default {v}"))?;
            }
        }
        for wd in b.weight_device().iter().flatten() {
            if let Some(w) = wd.weight() {
                let (file, v) = if bfq {
                    ("io.bfq.weight", u64::from(w))
                } else {
                    ("io.weight", convert::blkio_weight_to_io_weight(w))
                };
                write(d, file, &format!("{}:{} {}", wd.major(), wd.minor(), v))?;
            }
        }
        for (list, key) in [
            (b.throttle_read_bps_device(), "rbps"),
            (b.throttle_write_bps_device(), "wbps"),
            (b.throttle_read_iops_device(), "riops"),
            (b.throttle_write_iops_device(), "wiops"),
        ] {
            for t in list.iter().flatten() {
                let rate = if t.rate() == 0 {
                    "max".to_string()
                } else {
                    t.rate().to_string()
                };
                write(
                    d,
                    "io.max",
                    &format!("{}:{} {key}={rate}", t.major(), t.minor()),
                )?;
            }
        }
        Ok(())
    }

    /// hugetlb.<size>.max; used by the hybrid manager as well.
    pub fn set_hugetlb(&self, limits: &[LinuxHugepageLimit]) -> Result<()> {
        for l in limits {
            let size = convert::hugepage_size(l.page_size())?;
            write(
                &self.dir,
                &format!("hugetlb.{size}.max"),
                &convert::v2_limit(l.limit()),
            )?;
        }
        Ok(())
    }

    /// Replaces the device BPF program on this directory.
    pub fn set_devices(&self, rules: &[oci_spec::runtime::LinuxDeviceCgroup]) -> Result<()> {
        let rules = devices::rules_from_oci(rules)?;
        crate::bpf::apply_device_rules(&self.dir, &rules)
    }

    /// Writes `linux.resources.unified` verbatim, after the converted values so it wins.
    /// Threat: keys are file names under the container's cgroup; a `/` or `..` would reach
    /// other cgroups, and process-moving files would let a bundle pull host processes in.
    pub fn set_unified(&self, u: &HashMap<String, String>) -> Result<()> {
        let mut keys: Vec<&String> = u.keys().collect();
        keys.sort();
        for k in keys {
            if k.is_empty()
                || k.contains('/')
                || k.starts_with('.')
                || FORBIDDEN_KEYS.contains(&k.as_str())
            {
                return Err(Error::invalid_resource(
                    "unified",
                    format!("key {k:?} is not a cgroup resource file"),
                ));
            }
            write(&self.dir, k, &u[k]).map_err(|e| match e {
                Error::Write { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
                    Error::invalid_resource(
                        "unified",
                        format!(
                            "{k}: no such file in {} (controller not enabled?)",
                            self.dir.display()
                        ),
                    )
                }
                e => e,
            })?;
        }
        Ok(())
    }

    /// Freezes with cgroup.freeze and waits for `frozen 1` in cgroup.events.
    pub fn freeze(&self) -> Result<()> {
        self.set_frozen(true)
    }

    pub fn thaw(&self) -> Result<()> {
        self.set_frozen(false)
    }

    fn set_frozen(&self, on: bool) -> Result<()> {
        write(&self.dir, "cgroup.freeze", if on { "1" } else { "0" })?;
        let want = if on { 1 } else { 0 };
        let ok = common::wait_until(Duration::from_secs(5), || {
            Ok(read_flat_keyed(&self.dir, "cgroup.events")?.get("frozen") == Some(&want))
        })?;
        if ok {
            return Ok(());
        }
        if on {
            let _ = write(&self.dir, "cgroup.freeze", "0");
        }
        Err(Error::FreezeTimeout {
            path: self.dir.clone(),
            state: if on { "frozen 1" } else { "frozen 0" }.into(),
        })
    }

    pub fn state(&self) -> Result<FreezerState> {
        let asked = fsutil::read_opt(&self.dir, "cgroup.freeze")?
            .map(|s| s.trim() == "1")
            .unwrap_or(false);
        let frozen = read_flat_keyed(&self.dir, "cgroup.events")?.get("frozen") == Some(&1);
        Ok(match (asked, frozen) {
            (_, true) => FreezerState::Frozen,
            (true, false) => FreezerState::Freezing,
            (false, false) => FreezerState::Thawed,
        })
    }

    pub fn procs(&self) -> Result<Vec<i32>> {
        let mut out = Vec::new();
        fsutil::procs_recursive(&self.dir, &mut out)?;
        out.sort_unstable();
        out.dedup();
        Ok(out)
    }

    pub fn counters(&self) -> Result<Counters> {
        let ev = read_flat_keyed(&self.dir, "memory.events")?;
        Ok(Counters {
            oom: ev.get("oom").copied().unwrap_or(0),
            oom_kill: ev.get("oom_kill").copied().unwrap_or(0),
            pids_max: read_flat_keyed(&self.dir, "pids.events")?
                .get("max")
                .copied()
                .unwrap_or(0),
        })
    }

    pub fn stats(&self) -> Result<Stats> {
        let d = &self.dir;
        let mut s = Stats::default();
        let cpu = read_flat_keyed(d, "cpu.stat")?;
        let g = |k: &str| cpu.get(k).copied().unwrap_or(0);
        s.cpu.usage.total = g("usage_usec") * 1000;
        s.cpu.usage.user = g("user_usec") * 1000;
        s.cpu.usage.kernel = g("system_usec") * 1000;
        s.cpu.throttling.periods = g("nr_periods");
        s.cpu.throttling.throttled_periods = g("nr_throttled");
        s.cpu.throttling.throttled_time = g("throttled_usec") * 1000;

        if let Some(current) = read_u64_opt(d, "memory.current")? {
            let m = &mut s.memory;
            m.usage.usage = current;
            m.usage.max = read_u64_opt(d, "memory.peak")?.unwrap_or(0);
            m.usage.limit = read_u64_opt(d, "memory.max")?.unwrap_or(u64::MAX);
            m.usage.failcnt = read_flat_keyed(d, "memory.events")?
                .get("max")
                .copied()
                .unwrap_or(0);
            // runc reports v2 swap as memory+swap, the v1 memsw meaning.
            if let Some(sw) = read_u64_opt(d, "memory.swap.current")? {
                m.swap.usage = sw + current;
                let sw_max = read_u64_opt(d, "memory.swap.max")?.unwrap_or(u64::MAX);
                m.swap.limit = sw_max.saturating_add(m.usage.limit);
            }
            m.raw = read_flat_keyed(d, "memory.stat")?;
            m.cache = m.raw.get("file").copied().unwrap_or(0);
        }
        s.pids.current = read_u64_opt(d, "pids.current")?.unwrap_or(0);
        s.pids.limit = match read_u64_opt(d, "pids.max")? {
            Some(u64::MAX) | None => 0,
            Some(v) => v,
        };
        if let Some(io) = fsutil::read_opt(d, "io.stat")? {
            let (bytes, ios) = stats::parse_io_stat(&io);
            s.blkio.io_service_bytes_recursive = bytes;
            s.blkio.io_serviced_recursive = ios;
        }
        s.hugetlb = self.hugetlb_stats()?;
        Ok(s)
    }

    /// hugetlb usage per page size (empty when the controller is not enabled here).
    pub fn hugetlb_stats(&self) -> Result<std::collections::BTreeMap<String, stats::Hugetlb>> {
        let mut out = std::collections::BTreeMap::new();
        for size in convert::host_hugepage_sizes() {
            let p = format!("hugetlb.{size}");
            let Some(usage) = read_u64_opt(&self.dir, &format!("{p}.current"))? else {
                continue;
            };
            let max = match read_u64_opt(&self.dir, &format!("{p}.max"))? {
                Some(u64::MAX) | None => 0,
                Some(v) => v,
            };
            let failcnt = read_flat_keyed(&self.dir, &format!("{p}.events"))?
                .get("max")
                .copied()
                .unwrap_or(0);
            out.insert(
                size,
                stats::Hugetlb {
                    usage,
                    max,
                    failcnt,
                },
            );
        }
        Ok(out)
    }

    /// Kills every member: cgroup.kill where the kernel has it (5.14+, race-free), otherwise
    /// freeze / SIGKILL / thaw until the cgroup is empty.
    pub fn kill_all(&self) -> Result<()> {
        if !self.dir.exists() {
            return Ok(());
        }
        let me = std::process::id() as i32;
        if self.procs()?.contains(&me) {
            return Err(Error::Refused {
                action: "kill the processes of".into(),
                path: self.dir.clone(),
                reason: "it contains the calling process".into(),
            });
        }
        let has_kill = self.dir.join("cgroup.kill").exists();
        let ok = common::wait_until(Duration::from_secs(10), || {
            let pids = self.procs()?;
            if pids.is_empty() {
                return Ok(true);
            }
            if has_kill {
                write(&self.dir, "cgroup.kill", "1")?;
            } else {
                let froze = self.freeze().is_ok();
                let r = common::signal_all(&self.dir, &self.procs()?, libc::SIGKILL);
                if froze {
                    self.thaw()?;
                }
                r?;
            }
            Ok(false)
        })?;
        if ok {
            Ok(())
        } else {
            Err(Error::Busy {
                path: self.dir.clone(),
            })
        }
    }

    pub fn remove(&self) -> Result<()> {
        common::remove_tree(&self.dir, Duration::from_secs(2))
    }
}
