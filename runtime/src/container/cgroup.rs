//! Adapter between the lifecycle and the `cgroups` crate. The state file stores the
//! placement as JSON so later commands (delete after a crash, pause, update) can reopen it.
//! TEMPORARY minimal implementation: joins every mounted hierarchy; resources are wired to
//! the cgroups crate in the next step.

use anyhow::{Context, Result};
use oci_spec::runtime::Spec;
use std::path::PathBuf;

fn hierarchies() -> Vec<PathBuf> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    info.lines()
        .filter_map(|l| {
            let (left, right) = l.split_once(" - ")?;
            let fstype = right.split(' ').next()?;
            let mnt = left.split(' ').nth(4)?;
            (matches!(fstype, "cgroup" | "cgroup2") && mnt.starts_with("/sys/fs/cgroup")).then(|| PathBuf::from(mnt))
        })
        .collect()
}

fn rel_path(v: &serde_json::Value) -> PathBuf {
    PathBuf::from(v.get("path").and_then(|p| p.as_str()).unwrap_or("/").trim_start_matches('/'))
}

pub fn prepare(spec: &Spec, id: &str, _systemd: bool) -> Result<serde_json::Value> {
    let path = spec
        .linux()
        .as_ref()
        .and_then(|l| l.cgroups_path().clone())
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_else(|| format!("/mantle/{id}"));
    Ok(serde_json::json!({ "path": path }))
}

pub fn apply(cg: &serde_json::Value, _spec: &Spec, pid: i32) -> Result<()> {
    let rel = rel_path(cg);
    for h in hierarchies() {
        let dir = h.join(&rel);
        std::fs::create_dir_all(&dir).with_context(|| format!("create cgroup {}", dir.display()))?;
        // v1 cpuset starts empty: inherit from the parent chain or the join fails (ENOSPC).
        if h.ends_with("cpuset") {
            let mut chain = vec![dir.clone()];
            let mut d = dir.clone();
            while d.pop() && d.starts_with(&h) && d != h {
                chain.push(d.clone());
            }
            for d in chain.iter().rev() {
                for f in ["cpuset.cpus", "cpuset.mems"] {
                    if std::fs::read_to_string(d.join(f)).unwrap_or_default().trim().is_empty() {
                        let parent = std::fs::read_to_string(d.parent().unwrap_or(&h).join(f)).unwrap_or_default();
                        let _ = std::fs::write(d.join(f), parent.trim());
                    }
                }
            }
        }
        std::fs::write(dir.join("cgroup.procs"), pid.to_string()).with_context(|| format!("join cgroup {}", dir.display()))?;
    }
    Ok(())
}

pub fn destroy(cg: &serde_json::Value) -> Result<()> {
    let rel = rel_path(cg);
    for h in hierarchies() {
        let dir = h.join(&rel);
        for _ in 0..100 {
            match std::fs::remove_dir(&dir) {
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) => std::thread::sleep(std::time::Duration::from_millis(10)),
                _ => break,
            }
        }
    }
    Ok(())
}

pub fn procs(cg: Option<&serde_json::Value>) -> Result<Vec<i32>> {
    let Some(cg) = cg else { return Ok(vec![]) };
    let rel = rel_path(cg);
    let Some(h) = hierarchies().into_iter().find(|h| h.ends_with("pids") || h.ends_with("memory")) else { return Ok(vec![]) };
    let text = std::fs::read_to_string(h.join(rel).join("cgroup.procs")).unwrap_or_default();
    Ok(text.lines().filter_map(|l| l.trim().parse().ok()).collect())
}

fn freezer(cg: Option<&serde_json::Value>) -> Option<PathBuf> {
    let cg = cg?;
    Some(hierarchies().into_iter().find(|h| h.ends_with("freezer"))?.join(rel_path(cg)).join("freezer.state"))
}

pub fn freeze(cg: Option<&serde_json::Value>) -> Result<()> {
    let f = freezer(cg).context("no freezer cgroup")?;
    std::fs::write(&f, "FROZEN").context("freeze")
}

pub fn thaw(cg: Option<&serde_json::Value>) -> Result<()> {
    let f = freezer(cg).context("no freezer cgroup")?;
    std::fs::write(&f, "THAWED").context("thaw")
}

pub fn is_frozen(cg: Option<&serde_json::Value>) -> bool {
    freezer(cg).and_then(|f| std::fs::read_to_string(f).ok()).is_some_and(|s| s.trim() == "FROZEN")
}

pub fn exit_reason_hint(_cg: Option<&serde_json::Value>) -> Option<String> {
    None
}
