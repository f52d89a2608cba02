//! Namespaces: which to create, which to join, and the user-namespace id maps.
//!
//! Order matters and is fixed here: join by path first (user namespace first of all, so the
//! others are joined with the right credentials), then create the user namespace (the runtime
//! writes its maps), then create the rest. The pid and time namespaces only apply to children,
//! which is why the init is forked after this step.

use nix::fcntl::{open, OFlag};
use nix::sched::{setns, unshare, CloneFlags};
use nix::sys::stat::Mode;
use oci_spec::runtime::{Linux, LinuxIdMapping, LinuxNamespace, LinuxNamespaceType};
use std::path::Path;

pub fn flag(t: LinuxNamespaceType) -> CloneFlags {
    match t {
        LinuxNamespaceType::Mount => CloneFlags::CLONE_NEWNS,
        LinuxNamespaceType::Cgroup => CloneFlags::CLONE_NEWCGROUP,
        LinuxNamespaceType::Uts => CloneFlags::CLONE_NEWUTS,
        LinuxNamespaceType::Ipc => CloneFlags::CLONE_NEWIPC,
        LinuxNamespaceType::User => CloneFlags::CLONE_NEWUSER,
        LinuxNamespaceType::Pid => CloneFlags::CLONE_NEWPID,
        LinuxNamespaceType::Network => CloneFlags::CLONE_NEWNET,
        LinuxNamespaceType::Time => CloneFlags::from_bits_retain(libc::CLONE_NEWTIME),
    }
}

/// The /proc/PID/ns/<name> of a namespace type.
pub fn proc_name(t: LinuxNamespaceType) -> &'static str {
    match t {
        LinuxNamespaceType::Mount => "mnt",
        LinuxNamespaceType::Cgroup => "cgroup",
        LinuxNamespaceType::Uts => "uts",
        LinuxNamespaceType::Ipc => "ipc",
        LinuxNamespaceType::User => "user",
        LinuxNamespaceType::Pid => "pid",
        LinuxNamespaceType::Network => "net",
        LinuxNamespaceType::Time => "time",
    }
}

pub fn list(linux: Option<&Linux>) -> Vec<LinuxNamespace> {
    linux
        .and_then(|l| l.namespaces().clone())
        .unwrap_or_default()
}

pub fn has(nss: &[LinuxNamespace], t: LinuxNamespaceType) -> bool {
    nss.iter().any(|n| n.typ() == t)
}

/// Namespaces to create (no path), excluding user and cgroup which are handled at their own
/// step.
pub fn new_flags(nss: &[LinuxNamespace]) -> CloneFlags {
    nss.iter()
        .filter(|n| n.path().is_none())
        .filter(|n| {
            !matches!(
                n.typ(),
                LinuxNamespaceType::User | LinuxNamespaceType::Cgroup
            )
        })
        .fold(CloneFlags::empty(), |acc, n| acc | flag(n.typ()))
}

/// setns() into every namespace that has a path, user namespace first.
pub fn join_paths(nss: &[LinuxNamespace]) -> Result<(), String> {
    let mut with_path: Vec<&LinuxNamespace> = nss.iter().filter(|n| n.path().is_some()).collect();
    with_path.sort_by_key(|n| n.typ() != LinuxNamespaceType::User);
    for ns in with_path {
        let path = ns.path().as_ref().expect("filtered");
        join(path, flag(ns.typ())).map_err(|e| {
            format!(
                "join {} namespace {}: {e}",
                proc_name(ns.typ()),
                path.display()
            )
        })?;
    }
    Ok(())
}

pub fn join(path: &Path, flag: CloneFlags) -> nix::Result<()> {
    let fd = open(path, OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty())?;
    // SAFETY: `open` returned a fresh fd that we now own.
    let fd = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    setns(fd, flag)
}

pub fn unshare_flags(flags: CloneFlags) -> Result<(), String> {
    if flags.is_empty() {
        return Ok(());
    }
    unshare(flags).map_err(|e| format!("unshare namespaces {flags:?}: {e}"))
}

fn map_text(maps: &[LinuxIdMapping]) -> String {
    maps.iter()
        .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
        .collect()
}

/// Written by the runtime (outside the new user namespace) for the process `pid`.
pub fn write_id_maps(pid: i32, linux: &Linux) -> Result<(), String> {
    if let Some(g) = linux.gid_mappings() {
        std::fs::write(format!("/proc/{pid}/gid_map"), map_text(g))
            .map_err(|e| format!("write gid_map: {e}"))?;
    }
    if let Some(u) = linux.uid_mappings() {
        std::fs::write(format!("/proc/{pid}/uid_map"), map_text(u))
            .map_err(|e| format!("write uid_map: {e}"))?;
    }
    Ok(())
}

/// Time namespace offsets must be written after unshare(CLONE_NEWTIME) and before the first
/// child enters it.
pub fn write_time_offsets(linux: &Linux) -> Result<(), String> {
    let Some(offsets) = linux.time_offsets() else {
        return Ok(());
    };
    let mut text = String::new();
    for (clock, off) in offsets {
        let name = match clock.as_str() {
            "monotonic" | "boottime" => clock.as_str(),
            other => return Err(format!("linux.timeOffsets: unknown clock {other:?}")),
        };
        text.push_str(&format!(
            "{name} {} {}\n",
            off.secs().unwrap_or(0),
            off.nanosecs().unwrap_or(0)
        ));
    }
    std::fs::write("/proc/self/timens_offsets", text)
        .map_err(|e| format!("write timens_offsets: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::LinuxNamespaceBuilder;

    #[test]
    fn new_flags_skip_joined_user_and_cgroup() {
        let nss = vec![
            LinuxNamespaceBuilder::default()
                .typ(LinuxNamespaceType::Pid)
                .build()
                .unwrap(),
            LinuxNamespaceBuilder::default()
                .typ(LinuxNamespaceType::User)
                .build()
                .unwrap(),
            LinuxNamespaceBuilder::default()
                .typ(LinuxNamespaceType::Cgroup)
                .build()
                .unwrap(),
            LinuxNamespaceBuilder::default()
                .typ(LinuxNamespaceType::Network)
                .path("/proc/1/ns/net")
                .build()
                .unwrap(),
        ];
        assert_eq!(new_flags(&nss), CloneFlags::CLONE_NEWPID);
    }
}
