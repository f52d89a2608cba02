//! Adapter between the lifecycle and the `cgroups` crate. The placement (`CgroupPaths`) is
//! stored in the state file as JSON, so later commands (delete after a crash, pause, update,
//! events) reopen it without the config and without guessing the layout again.

use anyhow::{anyhow, Context, Result};
use cgroups::{CgroupManager, CgroupPaths, FreezerState};
use oci_spec::runtime::Spec;

fn open(v: &serde_json::Value) -> Result<Box<dyn CgroupManager>> {
    let paths: CgroupPaths = serde_json::from_value(v.clone()).context("saved cgroup placement")?;
    cgroups::open(&paths).map_err(|e| anyhow!("cgroups: {e}"))
}

fn open_opt(v: Option<&serde_json::Value>) -> Result<Option<Box<dyn CgroupManager>>> {
    match v {
        Some(v) if !v.is_null() => open(v).map(Some),
        _ => Ok(None),
    }
}

/// Decide the placement (nothing is created yet).
pub fn prepare(spec: &Spec, id: &str, systemd: bool) -> Result<serde_json::Value> {
    let path = spec.linux().as_ref().and_then(|l| l.cgroups_path().clone());
    let path = path.as_ref().map(|p| p.to_string_lossy().into_owned());
    let mgr = cgroups::create(path.as_deref(), &format!("/mantle/{id}"), systemd)
        .map_err(|e| anyhow!("linux.cgroupsPath: {e}"))?;
    Ok(serde_json::to_value(mgr.paths())?)
}

/// Create the cgroups, set linux.resources and move `pid` in. Returns the placement with the
/// event-counter baseline taken at creation (for the exit reason).
pub fn apply(cg: &serde_json::Value, spec: &Spec, pid: i32) -> Result<serde_json::Value> {
    let mut mgr = open(cg)?;
    mgr.apply(pid).map_err(|e| anyhow!("cgroups: {e}"))?;
    mgr.set(&effective_resources(spec))
        .map_err(|e| anyhow!("linux.resources: {e}"))?;
    Ok(serde_json::to_value(mgr.paths())?)
}

/// linux.resources plus the device rules runc adds after the bundle's own: the default
/// devices (and mknod of anything), then every node listed in linux.devices.
fn effective_resources(spec: &Spec) -> oci_spec::runtime::LinuxResources {
    let linux = spec.linux().clone().unwrap_or_default();
    let mut r = linux.resources().clone().unwrap_or_default();
    let mut devices = r.devices().clone().unwrap_or_default();
    devices.extend(cgroups::devices::default_allowed());
    for d in linux.devices().iter().flatten() {
        let mut rule = oci_spec::runtime::LinuxDeviceCgroup::default();
        rule.set_allow(true);
        rule.set_typ(Some(d.typ()));
        rule.set_major(Some(d.major()));
        rule.set_minor(Some(d.minor()));
        rule.set_access(Some("rwm".into()));
        devices.push(rule);
    }
    r.set_devices(Some(devices));
    r
}

/// `exec`: join an existing placement without touching resources.
pub fn join(cg: Option<&serde_json::Value>, pid: i32) -> Result<()> {
    if let Some(mgr) = open_opt(cg)? {
        mgr.join(pid).map_err(|e| anyhow!("cgroups: {e}"))?;
    }
    Ok(())
}

pub fn destroy(cg: &serde_json::Value) -> Result<()> {
    let mut mgr = open(cg)?;
    mgr.destroy(true)
        .map_err(|e| anyhow!("remove cgroups: {e}"))
}

pub fn procs(cg: Option<&serde_json::Value>) -> Result<Vec<i32>> {
    match open_opt(cg)? {
        Some(m) => m.procs().map_err(|e| anyhow!("cgroups: {e}")),
        None => Ok(vec![]),
    }
}

pub fn freeze(cg: Option<&serde_json::Value>) -> Result<()> {
    let m = open_opt(cg)?.context("container has no cgroup")?;
    m.freeze().map_err(|e| anyhow!("freeze: {e}"))
}

pub fn thaw(cg: Option<&serde_json::Value>) -> Result<()> {
    let m = open_opt(cg)?.context("container has no cgroup")?;
    m.thaw().map_err(|e| anyhow!("thaw: {e}"))
}

pub fn is_frozen(cg: Option<&serde_json::Value>) -> bool {
    matches!(open_opt(cg), Ok(Some(m)) if matches!(m.state(), Ok(FreezerState::Frozen)))
}

pub fn update(cg: Option<&serde_json::Value>, r: &oci_spec::runtime::LinuxResources) -> Result<()> {
    let m = open_opt(cg)?.context("container has no cgroup")?;
    m.set(r).map_err(|e| anyhow!("update resources: {e}"))
}

pub fn stats(cg: Option<&serde_json::Value>) -> Result<cgroups::Stats> {
    let m = open_opt(cg)?.context("container has no cgroup")?;
    m.stats().map_err(|e| anyhow!("stats: {e}"))
}

pub fn oom_watcher(cg: Option<&serde_json::Value>) -> Result<cgroups::OomWatcher> {
    let m = open_opt(cg)?.context("container has no cgroup")?;
    m.oom_watcher().map_err(|e| anyhow!("oom events: {e}"))
}

/// The exit reason from a known wait status (what `run` sees).
pub fn exit_reason(cg: Option<&serde_json::Value>, wait_status: i32) -> Option<String> {
    let m = open_opt(cg).ok()??;
    Some(
        m.exit_reason(cgroups::Termination::from_wait_status(wait_status))
            .to_string(),
    )
}

/// For a stopped container whose wait status we never saw (its parent is conmon or a shim):
/// the cgroup's counters still tell an OOM kill or a pids-limit failure apart.
pub fn exit_reason_hint(cg: Option<&serde_json::Value>) -> Option<String> {
    let m = open_opt(cg).ok()??;
    let (base, now) = (m.paths().baseline, m.counters().ok()?);
    if now.oom_kill > base.oom_kill {
        Some("oom-killed".into())
    } else if now.pids_max > base.pids_max {
        Some("pids-limit".into())
    } else {
        None
    }
}
