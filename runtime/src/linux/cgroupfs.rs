//! The container's view of /sys/fs/cgroup (a `cgroup` entry in config.json mounts).
//!
//! With a cgroup namespace, fresh cgroup filesystems are mounted: the kernel roots them at the
//! namespace's cgroup, so the container sees only its own subtree. Without one, the host
//! hierarchy is bind-mounted at the container's own cgroup directory. Works for v1, v2 and
//! hybrid hosts alike, because it mirrors whatever hierarchies the host has mounted.

use super::rootfs::{ensure_in_root, fd_path, Kind};
use nix::mount::{mount as sys_mount, MsFlags};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;

struct Hierarchy {
    /// Name under /sys/fs/cgroup (e.g. "cpu,cpuacct", "unified", or "" for a v2 root).
    name: String,
    fstype: String,
    /// v1 super options naming the controllers, e.g. "cpu,cpuacct".
    opts: String,
    host_mount: String,
}

fn host_hierarchies() -> Vec<Hierarchy> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut out = Vec::new();
    for line in info.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let l: Vec<&str> = left.split(' ').collect();
        let r: Vec<&str> = right.split(' ').collect();
        if l.len() < 5 || r.len() < 3 {
            continue;
        }
        let mnt = l[4];
        let fstype = r[0];
        if !matches!(fstype, "cgroup" | "cgroup2") || !mnt.starts_with("/sys/fs/cgroup") {
            continue;
        }
        let name = mnt
            .trim_start_matches("/sys/fs/cgroup")
            .trim_start_matches('/')
            .to_string();
        let opts = r[2]
            .split(',')
            .filter(|o| !matches!(*o, "rw" | "ro") && !o.starts_with("release_agent"))
            .collect::<Vec<_>>()
            .join(",");
        out.push(Hierarchy {
            name,
            fstype: fstype.into(),
            opts,
            host_mount: mnt.into(),
        });
    }
    out
}

/// Our cgroup path in a hierarchy, from /proc/self/cgroup ("0::/x" for v2).
fn own_path(h: &Hierarchy) -> String {
    let text = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, ctrls, path) = (
            parts.next(),
            parts.next().unwrap_or(""),
            parts.next().unwrap_or("/"),
        );
        let matches = if h.fstype == "cgroup2" {
            ctrls.is_empty()
        } else {
            let want: Vec<&str> = h
                .opts
                .split(',')
                .filter(|o| !o.contains('=') && *o != "none")
                .collect();
            !ctrls.is_empty()
                && ctrls
                    .split(',')
                    .all(|c| want.contains(&c.trim_start_matches("name=")) || want.contains(&c))
        };
        if matches {
            return path.to_string();
        }
    }
    "/".into()
}

/// The initial cgroup namespace's fixed inode (the kernel's PROC_CGROUP_INIT_INO).
const INIT_CGROUPNS: &str = "cgroup:[4026531835]";

fn in_own_cgroupns() -> bool {
    let own = std::fs::read_link("/proc/self/ns/cgroup").ok();
    match std::fs::read_link("/proc/1/ns/cgroup") {
        Ok(host) => own.as_ref() != Some(&host),
        // Inside a user namespace the host's pid 1 cannot be inspected (EACCES); an
        // unreadable link must not count as "different", or a v1 cgroup fs would be mounted
        // where the kernel forbids it. Compare with the initial namespace instead.
        Err(_) => own.is_some_and(|l| l.as_os_str() != INIT_CGROUPNS),
    }
}

/// Mount the cgroup view at `dest` (a path inside the rootfs fd `root`).
pub fn mount(root: &OwnedFd, dest: &Path, readonly: bool) -> Result<(), String> {
    let hs = host_hierarchies();
    let reopen = || ensure_in_root(root.as_raw_fd(), dest, Kind::Dir);
    let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    let ro = if readonly {
        MsFlags::MS_RDONLY
    } else {
        MsFlags::empty()
    };
    let v2_only = hs.len() == 1 && hs[0].fstype == "cgroup2" && hs[0].name.is_empty();
    let fresh = in_own_cgroupns();
    if !v2_only {
        // A tmpfs holds one directory per hierarchy, like the host's /sys/fs/cgroup.
        let under = reopen()?;
        sys_mount(
            Some("tmpfs"),
            fd_path(&under).as_str(),
            Some("tmpfs"),
            flags,
            Some("mode=755"),
        )
        .map_err(|e| format!("mount tmpfs for cgroups: {e}"))?;
    }
    // Re-resolve: an fd opened before the tmpfs names the directory *under* it.
    let top = reopen()?;
    let target = fd_path(&top);
    for h in &hs {
        let dest = if v2_only {
            target.clone()
        } else {
            format!("{target}/{}", h.name)
        };
        if !v2_only {
            std::fs::create_dir_all(&dest).map_err(|e| format!("mkdir {dest}: {e}"))?;
        }
        if fresh {
            let data = (h.fstype == "cgroup").then_some(h.opts.as_str());
            sys_mount(
                Some(h.fstype.as_str()),
                dest.as_str(),
                Some(h.fstype.as_str()),
                flags | ro,
                data,
            )
            .map_err(|e| format!("mount {} at {dest}: {e}", h.fstype))?;
        } else {
            let src = format!("{}{}", h.host_mount, own_path(h));
            sys_mount(
                Some(src.as_str()),
                dest.as_str(),
                None::<&str>,
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None::<&str>,
            )
            .map_err(|e| format!("bind {src} at {dest}: {e}"))?;
            sys_mount(
                None::<&str>,
                dest.as_str(),
                None::<&str>,
                MsFlags::MS_BIND | MsFlags::MS_REMOUNT | flags | ro,
                None::<&str>,
            )
            .map_err(|e| format!("remount {dest}: {e}"))?;
        }
        // Co-mounted controllers get per-controller links (cpu -> cpu,cpuacct), as on the host.
        if h.name.contains(',') {
            for c in h.name.split(',') {
                let _ = std::os::unix::fs::symlink(&h.name, format!("{target}/{c}"));
            }
        }
    }
    if readonly && !v2_only {
        sys_mount(
            None::<&str>,
            target.as_str(),
            None::<&str>,
            MsFlags::MS_REMOUNT | flags | MsFlags::MS_RDONLY,
            Some("mode=755"),
        )
        .map_err(|e| format!("remount cgroup tmpfs read-only: {e}"))?;
    }
    Ok(())
}
