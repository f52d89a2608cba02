//! Which cgroup hierarchies are mounted where: pure v1, pure v2 (unified) or hybrid
//! (v1 controllers plus a cgroup2 mount, usually at /sys/fs/cgroup/unified).
//! Read from /proc/self/mountinfo; /proc/cgroups tells which controllers the kernel has.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// v1 controllers mantle knows how to recognise in mount options.
pub const V1_CONTROLLERS: &[&str] = &[
    "cpu",
    "cpuacct",
    "cpuset",
    "memory",
    "devices",
    "freezer",
    "net_cls",
    "net_prio",
    "blkio",
    "perf_event",
    "hugetlb",
    "pids",
    "rdma",
    "misc",
];

/// The three layouts a host can have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LayoutKind {
    V1,
    V2,
    Hybrid,
}

impl std::fmt::Display for LayoutKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            LayoutKind::V1 => "cgroup v1",
            LayoutKind::V2 => "cgroup v2",
            LayoutKind::Hybrid => "hybrid cgroups",
        })
    }
}

/// One mounted hierarchy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hierarchy {
    /// Where it is mounted, e.g. /sys/fs/cgroup/memory.
    pub mountpoint: PathBuf,
    /// The cgroup that is the root of this mount (not "/" inside a cgroup namespace).
    pub root: PathBuf,
    /// v1: controllers bound to it (with `name=systemd` style named hierarchies); v2: empty.
    pub controllers: Vec<String>,
}

impl Hierarchy {
    /// The directory of the cgroup with absolute path `cgroup` (e.g. `/mantle/abc`).
    pub fn dir_of(&self, cgroup: &Path) -> PathBuf {
        let rel = cgroup.strip_prefix(&self.root).unwrap_or(cgroup);
        let rel = rel.strip_prefix("/").unwrap_or(rel);
        self.mountpoint.join(rel)
    }

    /// The directory name the kernel gives a v1 mount, e.g. `cpu,cpuacct`.
    pub fn joined_name(&self) -> String {
        self.controllers.join(",")
    }
}

/// The cgroup mounts of this process's mount namespace.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Layout {
    /// v1 hierarchies, one per mounted set of controllers (first mount wins).
    pub v1: Vec<Hierarchy>,
    /// The cgroup2 mount, if any.
    pub unified: Option<Hierarchy>,
}

impl Layout {
    /// Reads /proc/self/mountinfo.
    pub fn detect() -> Result<Layout> {
        let p = Path::new("/proc/self/mountinfo");
        let s = std::fs::read_to_string(p).map_err(|source| Error::Read {
            path: p.to_path_buf(),
            source,
        })?;
        let layout = Layout::parse_mountinfo(&s);
        layout.kind()?;
        Ok(layout)
    }

    /// Parses mountinfo text (see proc(5)).
    pub fn parse_mountinfo(text: &str) -> Layout {
        let mut layout = Layout::default();
        for line in text.lines() {
            let Some((pre, post)) = line.split_once(" - ") else {
                continue;
            };
            let pre: Vec<&str> = pre.split(' ').collect();
            let post: Vec<&str> = post.split(' ').collect();
            if pre.len() < 5 || post.len() < 3 {
                continue;
            }
            let root = PathBuf::from(unescape(pre[3]));
            let mountpoint = PathBuf::from(unescape(pre[4]));
            match post[0] {
                "cgroup2" if layout.unified.is_none() => {
                    layout.unified = Some(Hierarchy {
                        mountpoint,
                        root,
                        controllers: Vec::new(),
                    })
                }
                "cgroup" => {
                    let controllers: Vec<String> = post[2]
                        .split(',')
                        .filter(|o| V1_CONTROLLERS.contains(o) || o.starts_with("name="))
                        .map(str::to_string)
                        .collect();
                    if controllers.is_empty()
                        || layout.v1.iter().any(|h| h.controllers == controllers)
                    {
                        continue;
                    }
                    layout.v1.push(Hierarchy {
                        mountpoint,
                        root,
                        controllers,
                    });
                }
                _ => {}
            }
        }
        layout
    }

    /// Which layout this is.
    pub fn kind(&self) -> Result<LayoutKind> {
        match (self.v1.is_empty(), &self.unified) {
            (true, Some(_)) => Ok(LayoutKind::V2),
            (false, Some(_)) => Ok(LayoutKind::Hybrid),
            (false, None) => Ok(LayoutKind::V1),
            (true, None) => Err(Error::NoCgroupMounts),
        }
    }

    /// The v1 hierarchy that holds `controller` (`memory`, or `name=systemd`).
    pub fn v1_hierarchy(&self, controller: &str) -> Option<&Hierarchy> {
        self.v1
            .iter()
            .find(|h| h.controllers.iter().any(|c| c == controller))
    }

    /// Controllers available in the unified hierarchy (its root `cgroup.controllers`).
    pub fn unified_controllers(&self) -> Vec<String> {
        let Some(u) = &self.unified else {
            return Vec::new();
        };
        std::fs::read_to_string(u.mountpoint.join("cgroup.controllers"))
            .map(|s| s.split_whitespace().map(str::to_string).collect())
            .unwrap_or_default()
    }
}

/// One row of /proc/cgroups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelController {
    pub name: String,
    /// v1 hierarchy id; 0 means on the unified hierarchy or not mounted.
    pub hierarchy: u32,
    pub enabled: bool,
}

/// Parses /proc/cgroups text.
pub fn parse_proc_cgroups(text: &str) -> Vec<KernelController> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            if f.len() < 4 {
                return None;
            }
            Some(KernelController {
                name: f[0].to_string(),
                hierarchy: f[1].parse().ok()?,
                enabled: f[3] == "1",
            })
        })
        .collect()
}

/// Reads /proc/cgroups (absent on some v2-only kernels: then empty).
pub fn kernel_controllers() -> Vec<KernelController> {
    std::fs::read_to_string("/proc/cgroups")
        .map(|s| parse_proc_cgroups(&s))
        .unwrap_or_default()
}

/// Decodes the octal escapes (`\040`) mountinfo uses for spaces and friends.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw,nsdelegate
99 31 0:32 /x /mnt/mem\\040x rw,relatime - cgroup cgroup rw,memory
";

    #[test]
    fn hybrid_detected() {
        let l = Layout::parse_mountinfo(HYBRID);
        assert_eq!(l.kind().unwrap(), LayoutKind::Hybrid);
        assert_eq!(l.v1.len(), 3, "duplicate memory mount ignored");
        let cpu = l.v1_hierarchy("cpuacct").unwrap();
        assert_eq!(cpu.joined_name(), "cpu,cpuacct");
        assert_eq!(
            l.v1_hierarchy("name=systemd").unwrap().mountpoint,
            Path::new("/sys/fs/cgroup/systemd")
        );
        assert_eq!(
            l.unified.as_ref().unwrap().mountpoint,
            Path::new("/sys/fs/cgroup/unified")
        );
    }

    #[test]
    fn pure_layouts() {
        let v2 = "30 23 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n";
        assert_eq!(Layout::parse_mountinfo(v2).kind().unwrap(), LayoutKind::V2);
        let v1 = "32 31 0:29 / /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids\n";
        assert_eq!(Layout::parse_mountinfo(v1).kind().unwrap(), LayoutKind::V1);
        assert!(Layout::parse_mountinfo("").kind().is_err());
    }

    #[test]
    fn dir_of_strips_mount_root() {
        let h = Hierarchy {
            mountpoint: "/sys/fs/cgroup/memory".into(),
            root: "/docker/abc".into(),
            controllers: vec!["memory".into()],
        };
        assert_eq!(
            h.dir_of(Path::new("/docker/abc/mantle/x")),
            Path::new("/sys/fs/cgroup/memory/mantle/x")
        );
        let h = Hierarchy {
            root: "/".into(),
            ..h
        };
        assert_eq!(
            h.dir_of(Path::new("/mantle/x")),
            Path::new("/sys/fs/cgroup/memory/mantle/x")
        );
    }

    #[test]
    fn unescape_octal() {
        assert_eq!(unescape("/a\\040b"), "/a b");
        assert_eq!(unescape("/a\\04"), "/a\\04");
    }

    #[test]
    fn proc_cgroups_parsed() {
        let k = parse_proc_cgroups(
            "#subsys_name\thierarchy\tnum_cgroups\tenabled\ncpu\t1\t1\t1\nhugetlb\t0\t1\t1\n",
        );
        assert_eq!(k.len(), 2);
        assert_eq!(k[1].hierarchy, 0);
        assert!(k[1].enabled);
    }

    #[test]
    fn this_host_detects() {
        // Whatever the host is, detection must succeed and agree with /proc/cgroups: every
        // enabled controller with a v1 hierarchy id is found among the v1 mounts.
        let l = Layout::detect().unwrap();
        for k in kernel_controllers() {
            if k.enabled && k.hierarchy != 0 {
                assert!(l.v1_hierarchy(&k.name).is_some(), "{} missing", k.name);
            }
        }
    }
}
