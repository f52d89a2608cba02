//! `linux.cgroupsPath` parsing: absolute, relative (to the runtime's own cgroup, as runc
//! does) and systemd's `slice:prefix:name` form.
//!
//! Threat: the path comes from config.json. A `..` component would let a bundle name any
//! directory on the host (`/sys/fs/cgroup/memory/../../../etc`), and a path equal to a
//! hierarchy root would make `destroy(kill)` signal every process on the machine. Both are
//! refused here, before any path is joined to a mountpoint.

use crate::error::{Error, Result};
use crate::layout::Hierarchy;
use serde::{Deserialize, Serialize};
use std::path::{Component, Path, PathBuf};

/// A validated cgroup path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "path", rename_all = "lowercase")]
pub enum CgroupPath {
    /// From the root of every hierarchy, e.g. `/mantle/abc`.
    Absolute(PathBuf),
    /// Below the calling process's own cgroup in each hierarchy.
    Relative(PathBuf),
}

impl CgroupPath {
    /// Parses a cgroupfs-driver path.
    pub fn parse(spec: &str) -> Result<CgroupPath> {
        let bad = |reason: &str| Error::InvalidPath {
            path: spec.to_string(),
            reason: reason.to_string(),
        };
        if spec.is_empty() {
            return Err(bad("empty path"));
        }
        if spec.contains('\0') {
            return Err(bad("contains a NUL byte"));
        }
        let mut clean = PathBuf::new();
        for c in Path::new(spec).components() {
            match c {
                Component::RootDir | Component::CurDir => {}
                Component::Normal(n) => clean.push(n),
                Component::ParentDir => return Err(bad("'..' is not allowed")),
                Component::Prefix(_) => return Err(bad("unexpected prefix")),
            }
        }
        if clean.as_os_str().is_empty() {
            return Err(bad(
                "names the root cgroup; a container needs its own cgroup",
            ));
        }
        if spec.starts_with('/') {
            Ok(CgroupPath::Absolute(Path::new("/").join(clean)))
        } else {
            Ok(CgroupPath::Relative(clean))
        }
    }

    /// The directory of this cgroup in hierarchy `h`. `own` is this process's cgroup in that
    /// hierarchy (from /proc/self/cgroup), used for relative paths.
    pub fn dir_in(&self, h: &Hierarchy, own: &Path) -> PathBuf {
        match self {
            CgroupPath::Absolute(p) => h.dir_of(p),
            CgroupPath::Relative(p) => h.dir_of(&own.join(p)),
        }
    }

    /// The path as text (absolute ones start with `/`).
    pub fn display(&self) -> String {
        match self {
            CgroupPath::Absolute(p) | CgroupPath::Relative(p) => p.display().to_string(),
        }
    }
}

/// Turns `linux.cgroupsPath` (or the caller's default when absent) into a cgroup path.
/// With `systemd`, the path must be `slice:prefix:name` and systemd must be running.
pub fn resolve(spec: Option<&str>, default: &str, systemd: bool) -> Result<CgroupPath> {
    resolve_with(spec, default, systemd, systemd_running())
}

/// `resolve` with the systemd check injected (for tests).
pub fn resolve_with(
    spec: Option<&str>,
    default: &str,
    systemd: bool,
    systemd_is_running: bool,
) -> Result<CgroupPath> {
    let spec = spec.filter(|s| !s.is_empty()).unwrap_or(default);
    if !systemd {
        return CgroupPath::parse(spec);
    }
    if !systemd_is_running {
        return Err(Error::SystemdNotRunning);
    }
    CgroupPath::parse(&systemd_to_path(spec)?.display().to_string())
}

/// True when systemd is PID 1's init (sd_booted(3) checks the same directory).
pub fn systemd_running() -> bool {
    Path::new("/run/systemd/system").is_dir()
}

/// Expands `slice:prefix:name` to the cgroup path systemd uses:
/// `a-b.slice:pfx:id` -> `/a.slice/a-b.slice/pfx-id.scope`.
pub fn systemd_to_path(spec: &str) -> Result<PathBuf> {
    let bad = |reason: &str| Error::InvalidPath {
        path: spec.to_string(),
        reason: reason.to_string(),
    };
    let parts: Vec<&str> = spec.split(':').collect();
    let [slice, prefix, name] = parts[..] else {
        return Err(bad("systemd cgroup driver expects \"slice:prefix:name\""));
    };
    if name.is_empty() {
        return Err(bad("empty unit name"));
    }
    for part in [slice, prefix, name] {
        if part.contains('/') || part == ".." {
            return Err(bad("slice, prefix and name must not contain '/'"));
        }
    }
    let mut path = expand_slice(if slice.is_empty() {
        "system.slice"
    } else {
        slice
    })
    .ok_or_else(|| bad("slice must look like \"a-b.slice\""))?;
    let unit = if name.ends_with(".slice") {
        name.to_string()
    } else if prefix.is_empty() {
        format!("{name}.scope")
    } else {
        format!("{prefix}-{name}.scope")
    };
    path.push(unit);
    Ok(path)
}

/// `a-b-c.slice` -> `/a.slice/a-b.slice/a-b-c.slice`; `-.slice` is the root slice.
fn expand_slice(slice: &str) -> Option<PathBuf> {
    let base = slice.strip_suffix(".slice")?;
    let mut path = PathBuf::from("/");
    if base == "-" {
        return Some(path);
    }
    if base.is_empty() || base.starts_with('-') || base.ends_with('-') || base.contains("--") {
        return None;
    }
    let mut prefix = String::new();
    for comp in base.split('-') {
        if !prefix.is_empty() {
            prefix.push('-');
        }
        prefix.push_str(comp);
        path.push(format!("{prefix}.slice"));
    }
    Some(path)
}

/// This process's cgroup in each hierarchy, from /proc/self/cgroup: the map key is the
/// comma-joined controller list (`""` for the unified hierarchy).
pub fn own_cgroups() -> Result<Vec<(String, PathBuf)>> {
    let p = Path::new("/proc/self/cgroup");
    let s = std::fs::read_to_string(p).map_err(|source| Error::Read {
        path: p.to_path_buf(),
        source,
    })?;
    Ok(parse_proc_cgroup(&s))
}

/// Parses `/proc/<pid>/cgroup` (`id:controllers:path` lines).
pub fn parse_proc_cgroup(s: &str) -> Vec<(String, PathBuf)> {
    s.lines()
        .filter_map(|l| {
            let mut it = l.splitn(3, ':');
            let (_, ctrls, path) = (it.next()?, it.next()?, it.next()?);
            Some((ctrls.to_string(), PathBuf::from(path)))
        })
        .collect()
}

/// This process's cgroup in hierarchy `h`, `/` when not listed.
pub fn own_cgroup_in(own: &[(String, PathBuf)], h: &Hierarchy) -> PathBuf {
    let key = h.joined_name();
    own.iter()
        .find(|(c, _)| {
            if key.is_empty() {
                c.is_empty()
            } else {
                let mut a: Vec<&str> = c.split(',').collect();
                let mut b: Vec<&str> = key.split(',').collect();
                a.sort_unstable();
                b.sort_unstable();
                a == b
            }
        })
        .map(|(_, p)| p.clone())
        .unwrap_or_else(|| PathBuf::from("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absolute_and_relative() {
        assert_eq!(
            CgroupPath::parse("/mantle//x/./y").unwrap(),
            CgroupPath::Absolute("/mantle/x/y".into())
        );
        assert_eq!(
            CgroupPath::parse("mantle/x").unwrap(),
            CgroupPath::Relative("mantle/x".into())
        );
    }

    #[test]
    fn traversal_and_root_refused() {
        for bad in ["/a/../../etc", "..", "/", "//", "", "a\0b", "./"] {
            let e = CgroupPath::parse(bad).unwrap_err().to_string();
            assert!(e.contains("cgroupsPath"), "{bad:?}: {e}");
        }
    }

    #[test]
    fn systemd_expansion() {
        assert_eq!(
            systemd_to_path("machine-pod.slice:libpod:abc").unwrap(),
            Path::new("/machine.slice/machine-pod.slice/libpod-abc.scope")
        );
        assert_eq!(
            systemd_to_path(":mantle:abc").unwrap(),
            Path::new("/system.slice/mantle-abc.scope")
        );
        assert_eq!(
            systemd_to_path("-.slice::x.slice").unwrap(),
            Path::new("/x.slice")
        );
        for bad in [
            "a:b",
            "a.slice:p:",
            "bad:p:n",
            "a--b.slice:p:n",
            "a.slice:p:../x",
        ] {
            assert!(systemd_to_path(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn resolve_defaults_and_systemd_error() {
        assert_eq!(
            resolve_with(None, "/mantle/id", false, false).unwrap(),
            CgroupPath::Absolute("/mantle/id".into())
        );
        assert_eq!(
            resolve_with(Some(""), "/mantle/id", false, false).unwrap(),
            CgroupPath::Absolute("/mantle/id".into())
        );
        let e = resolve_with(Some("system.slice:m:id"), "", true, false).unwrap_err();
        assert!(matches!(e, Error::SystemdNotRunning));
        assert!(e.to_string().contains("systemd is not running"));
        assert_eq!(
            resolve_with(Some("system.slice:m:id"), "", true, true).unwrap(),
            CgroupPath::Absolute("/system.slice/m-id.scope".into())
        );
    }

    #[test]
    fn relative_uses_own_cgroup() {
        let own = parse_proc_cgroup("4:memory:/pa/x\n2:cpuacct,cpu:/\n0::/u\n");
        let mem = Hierarchy {
            mountpoint: "/sys/fs/cgroup/memory".into(),
            root: "/".into(),
            controllers: vec!["memory".into()],
        };
        let cpu = Hierarchy {
            controllers: vec!["cpu".into(), "cpuacct".into()],
            mountpoint: "/sys/fs/cgroup/cpu,cpuacct".into(),
            ..mem.clone()
        };
        let uni = Hierarchy {
            controllers: vec![],
            mountpoint: "/sys/fs/cgroup/unified".into(),
            ..mem.clone()
        };
        let p = CgroupPath::parse("c/1").unwrap();
        assert_eq!(
            p.dir_in(&mem, &own_cgroup_in(&own, &mem)),
            Path::new("/sys/fs/cgroup/memory/pa/x/c/1")
        );
        assert_eq!(
            p.dir_in(&cpu, &own_cgroup_in(&own, &cpu)),
            Path::new("/sys/fs/cgroup/cpu,cpuacct/c/1")
        );
        assert_eq!(
            p.dir_in(&uni, &own_cgroup_in(&own, &uni)),
            Path::new("/sys/fs/cgroup/unified/u/c/1")
        );
    }
}
