//! What to mount for a `cgroup` entry in config.json's mounts, so the container sees its own
//! cgroups at /sys/fs/cgroup: one step list per layout, performed in order by the runtime.

use crate::layout::LayoutKind;
use crate::CgroupPaths;
use std::path::{Path, PathBuf};

/// One step. Targets are paths inside the container (e.g. `/sys/fs/cgroup/memory`); the
/// runtime resolves them beneath the rootfs and creates missing target directories.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountStep {
    /// mount(2) with these arguments. `fstype: None` with MS_BIND is a bind of a host path
    /// (do it before pivot_root, while `source` is reachable).
    Mount {
        source: PathBuf,
        target: PathBuf,
        fstype: Option<String>,
        flags: libc::c_ulong,
        data: Option<String>,
    },
    /// symlink(2): `link` points to `target` (relative, e.g. `cpu,cpuacct`).
    Symlink { target: PathBuf, link: PathBuf },
}

const BASE: libc::c_ulong = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;

fn ro_flag(readonly: bool) -> libc::c_ulong {
    if readonly {
        libc::MS_RDONLY
    } else {
        0
    }
}

/// Builds the steps. `cgroupns`: the container has its own cgroup namespace, so fresh cgroup
/// filesystems are mounted (they show the namespace root); otherwise the container's own
/// cgroup directories are bind-mounted, so the host tree above them stays hidden.
pub fn plan(paths: &CgroupPaths, dest: &Path, cgroupns: bool, readonly: bool) -> Vec<MountStep> {
    let mut steps = Vec::new();
    match paths.layout {
        LayoutKind::V2 => {
            if let Some(dir) = &paths.unified {
                steps.extend(v2_steps(dir, dest, cgroupns, readonly));
            }
        }
        LayoutKind::V1 | LayoutKind::Hybrid => {
            steps.push(MountStep::Mount {
                source: "tmpfs".into(),
                target: dest.to_path_buf(),
                fstype: Some("tmpfs".into()),
                flags: BASE,
                data: Some("mode=755".into()),
            });
            for (key, dir) in &paths.v1 {
                steps.extend(v1_steps(key, dir, dest, cgroupns, readonly));
            }
            if paths.layout == LayoutKind::Hybrid {
                if let Some(dir) = &paths.unified {
                    steps.extend(v2_steps(dir, &dest.join("unified"), cgroupns, readonly));
                }
            }
            if readonly {
                steps.push(MountStep::Mount {
                    source: "tmpfs".into(),
                    target: dest.to_path_buf(),
                    fstype: None,
                    flags: BASE | libc::MS_REMOUNT | libc::MS_RDONLY,
                    data: Some("mode=755".into()),
                });
            }
        }
    }
    steps
}

fn bind_steps(src: &Path, target: PathBuf, readonly: bool) -> Vec<MountStep> {
    vec![
        MountStep::Mount {
            source: src.to_path_buf(),
            target: target.clone(),
            fstype: None,
            flags: libc::MS_BIND | libc::MS_REC,
            data: None,
        },
        // Bind mounts ignore flags other than MS_REC on creation; a remount applies them.
        MountStep::Mount {
            source: src.to_path_buf(),
            target,
            fstype: None,
            flags: libc::MS_BIND | libc::MS_REMOUNT | BASE | ro_flag(readonly),
            data: None,
        },
    ]
}

fn v1_steps(key: &str, dir: &Path, dest: &Path, cgroupns: bool, readonly: bool) -> Vec<MountStep> {
    // Named hierarchies (`name=systemd`) live at their name; others at the joined list.
    let name = key.strip_prefix("name=").unwrap_or(key);
    let target = dest.join(name);
    let mut steps = if cgroupns {
        vec![MountStep::Mount {
            source: "cgroup".into(),
            target,
            fstype: Some("cgroup".into()),
            flags: BASE | ro_flag(readonly),
            data: Some(key.to_string()),
        }]
    } else {
        bind_steps(dir, target, readonly)
    };
    if key.contains(',') {
        for single in key.split(',') {
            steps.push(MountStep::Symlink {
                target: PathBuf::from(key),
                link: dest.join(single),
            });
        }
    }
    steps
}

fn v2_steps(dir: &Path, target: &Path, cgroupns: bool, readonly: bool) -> Vec<MountStep> {
    if cgroupns {
        vec![MountStep::Mount {
            source: "cgroup2".into(),
            target: target.to_path_buf(),
            fstype: Some("cgroup2".into()),
            flags: BASE | ro_flag(readonly),
            data: None,
        }]
    } else {
        bind_steps(dir, target.to_path_buf(), readonly)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn hybrid() -> CgroupPaths {
        let mut v1 = BTreeMap::new();
        v1.insert(
            "cpu,cpuacct".to_string(),
            PathBuf::from("/sys/fs/cgroup/cpu,cpuacct/m/c"),
        );
        v1.insert(
            "memory".to_string(),
            PathBuf::from("/sys/fs/cgroup/memory/m/c"),
        );
        v1.insert(
            "name=systemd".to_string(),
            PathBuf::from("/sys/fs/cgroup/systemd/m/c"),
        );
        CgroupPaths {
            layout: LayoutKind::Hybrid,
            path: "/m/c".into(),
            v1,
            v1_mounts: BTreeMap::new(),
            unified: Some("/sys/fs/cgroup/unified/m/c".into()),
            unified_mount: Some("/sys/fs/cgroup/unified".into()),
            baseline: Default::default(),
        }
    }

    fn targets(steps: &[MountStep]) -> Vec<String> {
        steps
            .iter()
            .map(|s| match s {
                MountStep::Mount { target, fstype, .. } => {
                    format!(
                        "{}:{}",
                        target.display(),
                        fstype.as_deref().unwrap_or("bind")
                    )
                }
                MountStep::Symlink { target, link } => {
                    format!("{}->{}", link.display(), target.display())
                }
            })
            .collect()
    }

    #[test]
    fn hybrid_bind_plan() {
        let steps = plan(&hybrid(), Path::new("/sys/fs/cgroup"), false, true);
        let t = targets(&steps);
        assert_eq!(t[0], "/sys/fs/cgroup:tmpfs");
        assert!(t.contains(&"/sys/fs/cgroup/cpu,cpuacct:bind".to_string()));
        assert!(t.contains(&"/sys/fs/cgroup/cpu->cpu,cpuacct".to_string()));
        assert!(t.contains(&"/sys/fs/cgroup/cpuacct->cpu,cpuacct".to_string()));
        assert!(t.contains(&"/sys/fs/cgroup/systemd:bind".to_string()));
        assert!(t.contains(&"/sys/fs/cgroup/unified:bind".to_string()));
        // Every bind is followed by a read-only remount, and the tmpfs ends read-only.
        let ro_remounts = steps
            .iter()
            .filter(|s| {
                matches!(s, MountStep::Mount { flags, .. }
                if flags & libc::MS_REMOUNT != 0 && flags & libc::MS_RDONLY != 0)
            })
            .count();
        assert_eq!(ro_remounts, 5);
        assert!(
            matches!(steps.last(), Some(MountStep::Mount { flags, .. }) if flags & libc::MS_RDONLY != 0)
        );
    }

    #[test]
    fn cgroupns_mounts_fresh_filesystems() {
        let steps = plan(&hybrid(), Path::new("/sys/fs/cgroup"), true, false);
        let datas: Vec<String> = steps
            .iter()
            .filter_map(|s| match s {
                MountStep::Mount {
                    fstype: Some(f),
                    data,
                    ..
                } if f == "cgroup" => data.clone(),
                _ => None,
            })
            .collect();
        assert_eq!(datas, vec!["cpu,cpuacct", "memory", "name=systemd"]);
        assert!(targets(&steps).contains(&"/sys/fs/cgroup/unified:cgroup2".to_string()));
        assert!(steps
            .iter()
            .all(|s| !matches!(s, MountStep::Mount { flags, .. } if flags & libc::MS_RDONLY != 0)));
    }

    #[test]
    fn v2_plan() {
        let mut p = hybrid();
        p.layout = LayoutKind::V2;
        let t = targets(&plan(&p, Path::new("/sys/fs/cgroup"), true, true));
        assert_eq!(t, vec!["/sys/fs/cgroup:cgroup2"]);
        let t = targets(&plan(&p, Path::new("/sys/fs/cgroup"), false, true));
        assert_eq!(t, vec!["/sys/fs/cgroup:bind", "/sys/fs/cgroup:bind"]);
    }
}
