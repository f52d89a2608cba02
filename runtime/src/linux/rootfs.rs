//! The container's root filesystem: propagation, mounts, devices, pivot_root, and the
//! post-pivot hardening (masked and read-only paths, read-only root).
//!
//! Threat: the rootfs is attacker-controlled (an image). A mount destination such as
//! `/proc` may be a symlink to `/../../etc`, or be swapped for one between our check and the
//! mount. Every destination is therefore resolved with openat2(RESOLVE_IN_ROOT) from an fd of
//! the rootfs (symlinks are followed as if the rootfs were `/`, and `..` cannot climb out) and
//! the mount is made onto `/proc/self/fd/N` of the opened fd, so what we checked is exactly what
//! gets mounted on. No path string is resolved twice.

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::stat::{makedev, mknod, Mode, SFlag};
use nix::unistd::{chdir, pivot_root, Gid, Uid};
use oci_spec::runtime::{LinuxDevice, LinuxDeviceType, Mount};
use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Component, Path, PathBuf};

pub type Result<T> = std::result::Result<T, String>;

const RESOLVE_IN_ROOT: u64 = 0x10;
const RESOLVE_NO_MAGICLINKS: u64 = 0x02;

/// openat2 beneath `root`, treating `root` as `/` for absolute symlinks and `..`.
pub fn openat_in_root(root: RawFd, path: &Path, flags: i32) -> std::io::Result<OwnedFd> {
    let rel = path.strip_prefix("/").unwrap_or(path);
    let rel = if rel.as_os_str().is_empty() {
        Path::new(".")
    } else {
        rel
    };
    let c = CString::new(rel.as_os_str().as_encoded_bytes()).map_err(std::io::Error::other)?;
    // libc's open_how is non-exhaustive; the kernel ABI is three u64s.
    let how: [u64; 3] = [
        (flags | libc::O_CLOEXEC) as u64,
        0,
        RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
    ];
    // SAFETY: openat2 reads `c` (NUL-terminated, alive for the call) and `how` (a fully
    // initialised open_how whose size we pass); it returns a new fd or -1.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            root,
            c.as_ptr(),
            how.as_ptr(),
            std::mem::size_of_val(&how),
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned this fd to us; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

#[derive(Clone, Copy, PartialEq)]
pub enum Kind {
    Dir,
    File,
}

/// Resolve `path` under `root`, creating missing components (directories, and a final file
/// when `kind` is File). Each component is created relative to the fd of its already-resolved
/// parent, so a symlink planted mid-way cannot redirect creation outside the root; a dangling
/// symlink is followed *inside* the root (its target is created there), as runc does.
pub fn ensure_in_root(root: RawFd, path: &Path, kind: Kind) -> Result<OwnedFd> {
    if let Ok(fd) = openat_in_root(root, path, libc::O_PATH) {
        return Ok(fd);
    }
    let mut todo: Vec<std::ffi::OsString> = normal_components(path);
    todo.reverse();
    let mut cur = PathBuf::from("/");
    let mut links = 0;
    while let Some(name) = todo.pop() {
        let next = cur.join(&name);
        if openat_in_root(root, &next, libc::O_PATH).is_ok() {
            cur = next;
            continue;
        }
        let parent = openat_in_root(root, &cur, libc::O_PATH | libc::O_DIRECTORY)
            .map_err(|e| format!("resolve {} in rootfs: {e}", cur.display()))?;
        // A dangling symlink: splice its target into the remaining components.
        if let Ok(target) = nix::fcntl::readlinkat(Some(parent.as_raw_fd()), name.as_os_str()) {
            links += 1;
            if links > 40 {
                return Err(format!(
                    "resolve {} in rootfs: too many symlinks",
                    path.display()
                ));
            }
            // A relative target is relative to the link's directory (its `..` must climb
            // from there, e.g. /var/run -> ../run); restart from the root with the whole
            // path so `..` is applied to it (clamped at the root, as RESOLVE_IN_ROOT does).
            let target = PathBuf::from(target);
            let whole = if target.is_absolute() {
                target
            } else {
                cur.join(&target)
            };
            cur = PathBuf::from("/");
            let mut more = normal_components(&whole);
            more.reverse();
            todo.extend(more);
            continue;
        }
        let last = todo.is_empty();
        create_at(&parent, &name, last && kind == Kind::File)
            .map_err(|e| format!("create {} in rootfs: {e}", next.display()))?;
        cur = next;
    }
    openat_in_root(root, &cur, libc::O_PATH)
        .map_err(|e| format!("resolve {} in rootfs: {e}", path.display()))
}

/// Path components with `.` dropped and `..` applied lexically (RESOLVE_IN_ROOT clamps at
/// the root anyway).
fn normal_components(p: &Path) -> Vec<std::ffi::OsString> {
    let mut out: Vec<std::ffi::OsString> = Vec::new();
    for c in p.components() {
        match c {
            Component::Normal(n) => out.push(n.to_os_string()),
            Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    out
}

fn create_at(parent: &OwnedFd, name: &std::ffi::OsStr, file: bool) -> std::io::Result<()> {
    let cname = CString::new(name.as_encoded_bytes()).map_err(std::io::Error::other)?;
    // SAFETY: plain *at syscalls on an fd we own and a NUL-terminated name.
    let rc = unsafe {
        if file {
            let flags =
                libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_WRONLY;
            let fd = libc::openat(parent.as_raw_fd(), cname.as_ptr(), flags, 0o644);
            if fd >= 0 {
                libc::close(fd);
            }
            fd
        } else {
            libc::mkdirat(parent.as_raw_fd(), cname.as_ptr(), 0o755)
        }
    };
    if rc < 0 {
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EEXIST) {
            return Err(e);
        }
    }
    Ok(())
}

pub fn fd_path(fd: &OwnedFd) -> String {
    format!("/proc/self/fd/{}", fd.as_raw_fd())
}

/// Make the host's mounts invisible to changes we make, and our rootfs a mount point.
pub fn prepare(rootfs: &Path, propagation: Option<&str>) -> Result<()> {
    let flags = propagation_flags(propagation.unwrap_or("rslave"))?;
    // Start private-ish so our mounts never leak to the host, then apply what was asked.
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_SLAVE | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(|e| format!("make / rslave: {e}"))?;
    if flags.contains(MsFlags::MS_SHARED)
        || flags.contains(MsFlags::MS_PRIVATE)
        || flags.contains(MsFlags::MS_UNBINDABLE)
    {
        mount(None::<&str>, "/", None::<&str>, flags, None::<&str>)
            .map_err(|e| format!("set / propagation: {e}"))?;
    }
    // pivot_root refuses a new root that is shared or whose parent mount is shared (EINVAL),
    // which "shared"/"rshared" just made it, and an unbindable parent cannot be bound: make
    // the parent private (in our own mount namespace only) before binding the rootfs, so
    // the bind is private too.
    make_parent_private(rootfs)?;
    mount(
        Some(rootfs),
        rootfs,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(|e| format!("bind rootfs {}: {e}", rootfs.display()))?;
    Ok(())
}

/// The mount `path` lives on, from /proc/self/mountinfo: (mount point, is shared or
/// unbindable).
fn parent_mount(path: &Path) -> Option<(PathBuf, bool)> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let mut best: Option<(PathBuf, bool)> = None;
    for line in info.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        let (Some(mp), Some(sep)) = (fields.get(4), fields.iter().position(|f| *f == "-")) else {
            continue;
        };
        let mp = PathBuf::from(mp.replace("\\040", " "));
        // Later lines are mounted on top of earlier ones: `>=` keeps the topmost.
        if path.starts_with(&mp)
            && best
                .as_ref()
                .is_none_or(|(b, _)| mp.as_os_str().len() >= b.as_os_str().len())
        {
            let shared = fields[6..sep]
                .iter()
                .any(|f| f.starts_with("shared:") || *f == "unbindable");
            best = Some((mp, shared));
        }
    }
    best
}

fn make_parent_private(rootfs: &Path) -> Result<()> {
    match parent_mount(rootfs) {
        Some((mp, true)) => mount(
            None::<&str>,
            &mp,
            None::<&str>,
            MsFlags::MS_PRIVATE,
            None::<&str>,
        )
        .map_err(|e| format!("make {} private: {e}", mp.display())),
        _ => Ok(()),
    }
}

/// linux.rootfsPropagation as mount flags.
fn propagation_flags(p: &str) -> Result<MsFlags> {
    Ok(match p {
        "shared" => MsFlags::MS_SHARED,
        "rshared" => MsFlags::MS_SHARED | MsFlags::MS_REC,
        "slave" => MsFlags::MS_SLAVE,
        "rslave" => MsFlags::MS_SLAVE | MsFlags::MS_REC,
        "private" => MsFlags::MS_PRIVATE,
        "rprivate" => MsFlags::MS_PRIVATE | MsFlags::MS_REC,
        "unbindable" => MsFlags::MS_UNBINDABLE,
        "runbindable" => MsFlags::MS_UNBINDABLE | MsFlags::MS_REC,
        other => return Err(format!("linux.rootfsPropagation: unknown value {other:?}")),
    })
}

/// rootfsPropagation on the (pivoted) root mount.
pub fn set_root_propagation(p: &str) -> Result<()> {
    let flags = propagation_flags(p)?;
    mount(None::<&str>, "/", None::<&str>, flags, None::<&str>)
        .map_err(|e| format!("set rootfsPropagation {p}: {e}"))
}

/// Parsed mount options: flags to set, flags to clear (for recursive remounts), propagation,
/// and the filesystem-specific data string.
#[derive(Debug, PartialEq)]
pub struct MountOpts {
    pub flags: MsFlags,
    pub propagation: Vec<MsFlags>,
    pub data: Vec<String>,
    pub recursive_ro: bool,
}

pub fn parse_options(opts: &[String]) -> MountOpts {
    let mut o = MountOpts {
        flags: MsFlags::empty(),
        propagation: vec![],
        data: vec![],
        recursive_ro: false,
    };
    for opt in opts {
        let (set, clear) = match opt.as_str() {
            "ro" => (MsFlags::MS_RDONLY, MsFlags::empty()),
            "rw" => (MsFlags::empty(), MsFlags::MS_RDONLY),
            "bind" => (MsFlags::MS_BIND, MsFlags::empty()),
            "rbind" => (MsFlags::MS_BIND | MsFlags::MS_REC, MsFlags::empty()),
            "nosuid" => (MsFlags::MS_NOSUID, MsFlags::empty()),
            "suid" => (MsFlags::empty(), MsFlags::MS_NOSUID),
            "nodev" => (MsFlags::MS_NODEV, MsFlags::empty()),
            "dev" => (MsFlags::empty(), MsFlags::MS_NODEV),
            "noexec" => (MsFlags::MS_NOEXEC, MsFlags::empty()),
            "exec" => (MsFlags::empty(), MsFlags::MS_NOEXEC),
            "sync" => (MsFlags::MS_SYNCHRONOUS, MsFlags::empty()),
            "async" => (MsFlags::empty(), MsFlags::MS_SYNCHRONOUS),
            "dirsync" => (MsFlags::MS_DIRSYNC, MsFlags::empty()),
            "remount" => (MsFlags::MS_REMOUNT, MsFlags::empty()),
            "mand" => (MsFlags::MS_MANDLOCK, MsFlags::empty()),
            "nomand" => (MsFlags::empty(), MsFlags::MS_MANDLOCK),
            "atime" => (MsFlags::empty(), MsFlags::MS_NOATIME),
            "noatime" => (MsFlags::MS_NOATIME, MsFlags::empty()),
            "diratime" => (MsFlags::empty(), MsFlags::MS_NODIRATIME),
            "nodiratime" => (MsFlags::MS_NODIRATIME, MsFlags::empty()),
            "relatime" => (MsFlags::MS_RELATIME, MsFlags::empty()),
            "norelatime" => (MsFlags::empty(), MsFlags::MS_RELATIME),
            "strictatime" => (MsFlags::MS_STRICTATIME, MsFlags::empty()),
            "nostrictatime" => (MsFlags::empty(), MsFlags::MS_STRICTATIME),
            "silent" => (MsFlags::MS_SILENT, MsFlags::empty()),
            "loud" => (MsFlags::empty(), MsFlags::MS_SILENT),
            "rro" => {
                o.recursive_ro = true;
                continue;
            }
            p @ ("private" | "rprivate" | "shared" | "rshared" | "slave" | "rslave"
            | "unbindable" | "runbindable") => {
                let base = match p.trim_start_matches('r') {
                    "private" => MsFlags::MS_PRIVATE,
                    "shared" => MsFlags::MS_SHARED,
                    "slave" => MsFlags::MS_SLAVE,
                    _ => MsFlags::MS_UNBINDABLE,
                };
                let rec = if p.starts_with('r') {
                    MsFlags::MS_REC
                } else {
                    MsFlags::empty()
                };
                o.propagation.push(base | rec);
                continue;
            }
            // Options the kernel does not know as flags are filesystem data (mode=755, size=..).
            other => {
                if !matches!(
                    other,
                    "defaults"
                        | "tmpcopyup"
                        | "idmap"
                        | "ridmap"
                        | "copy-symlink"
                        | "z"
                        | "Z"
                        | "nocopy"
                        | "notmpcopyup"
                ) {
                    o.data.push(other.to_string());
                }
                continue;
            }
        };
        o.flags.insert(set);
        o.flags.remove(clear);
    }
    o
}

/// Mount one config.json entry beneath the rootfs fd.
pub fn mount_entry(root: &OwnedFd, m: &Mount) -> Result<()> {
    let typ = m.typ().as_deref().unwrap_or("");
    let opts = parse_options(m.options().as_deref().unwrap_or(&[]));
    let dest = m.destination();
    if typ == "cgroup" || typ == "cgroup2" && !opts.flags.contains(MsFlags::MS_BIND) {
        return super::cgroupfs::mount(root, dest, opts.flags.contains(MsFlags::MS_RDONLY));
    }
    let is_bind = opts.flags.contains(MsFlags::MS_BIND) || typ == "bind";
    let source = m.source().clone().unwrap_or_else(|| PathBuf::from(typ));
    let kind = if is_bind && !source.is_dir() {
        Kind::File
    } else {
        Kind::Dir
    };
    if is_bind {
        std::fs::metadata(&source)
            .map_err(|e| format!("mount source {}: {e}", source.display()))?;
    }
    let target = ensure_in_root(root.as_raw_fd(), dest, kind)?;
    let tpath = fd_path(&target);
    let data = opts.data.join(",");
    let data = (!data.is_empty()).then_some(data.as_str());
    let what = || {
        format!(
            "mount {} on {} (type {typ:?})",
            source.display(),
            dest.display()
        )
    };
    if is_bind {
        let bind = MsFlags::MS_BIND | (opts.flags & MsFlags::MS_REC);
        mount(
            Some(&source),
            tpath.as_str(),
            None::<&str>,
            bind,
            None::<&str>,
        )
        .map_err(|e| format!("{}: {e}", what()))?;
        // Bind mounts ignore most flags: apply them with a remount of the new mount.
        let extra = opts.flags & !(MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_REMOUNT);
        if !extra.is_empty() {
            let fd = openat_in_root(root.as_raw_fd(), dest, libc::O_PATH)
                .map_err(|e| format!("{}: reopen: {e}", what()))?;
            remount(&fd_path(&fd), extra | locked_flags(&fd_path(&fd)))
                .map_err(|e| format!("{}: remount: {e}", what()))?;
        }
    } else {
        let flags = opts.flags & !MsFlags::MS_REMOUNT;
        // tmpcopyup: hold the directory the tmpfs will hide, to copy it in afterwards.
        let copyup = typ == "tmpfs" && m.options().iter().flatten().any(|o| o == "tmpcopyup");
        let below = match copyup {
            true => Some(
                openat_in_root(root.as_raw_fd(), dest, libc::O_RDONLY | libc::O_DIRECTORY)
                    .map_err(|e| format!("{}: tmpcopyup: {e}", what()))?,
            ),
            false => None,
        };
        mount(Some(&source), tpath.as_str(), Some(typ), flags, data)
            .map_err(|e| format!("{}: {e}", what()))?;
        if let Some(below) = below {
            let top = openat_in_root(root.as_raw_fd(), dest, libc::O_RDONLY | libc::O_DIRECTORY)
                .map_err(|e| format!("{}: tmpcopyup: {e}", what()))?;
            super::copyup::copy_tree(&below, &top)?;
        }
    }
    if !opts.propagation.is_empty() {
        let fd = openat_in_root(root.as_raw_fd(), dest, libc::O_PATH)
            .map_err(|e| format!("{}: reopen: {e}", what()))?;
        for p in &opts.propagation {
            mount(
                None::<&str>,
                fd_path(&fd).as_str(),
                None::<&str>,
                *p,
                None::<&str>,
            )
            .map_err(|e| format!("{}: propagation: {e}", what()))?;
        }
    }
    Ok(())
}

fn remount(path: &str, flags: MsFlags) -> nix::Result<()> {
    mount(
        None::<&str>,
        path,
        None::<&str>,
        flags | MsFlags::MS_BIND | MsFlags::MS_REMOUNT,
        None::<&str>,
    )
}

/// Flags the kernel locks on a mount inherited from a more privileged namespace: a remount
/// must repeat them or fail with EPERM.
fn locked_flags(path: &str) -> MsFlags {
    let Ok(st) = nix::sys::statvfs::statvfs(path) else {
        return MsFlags::empty();
    };
    use nix::sys::statvfs::FsFlags;
    let f = st.flags();
    let mut out = MsFlags::empty();
    for (a, b) in [
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
        (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
    ] {
        if f.contains(a) {
            out |= b;
        }
    }
    out
}

/// The default devices every container gets (OCI config-linux "Default Devices").
pub fn default_devices() -> Vec<(&'static str, u64, u64)> {
    vec![
        ("/dev/null", 1, 3),
        ("/dev/zero", 1, 5),
        ("/dev/full", 1, 7),
        ("/dev/random", 1, 8),
        ("/dev/urandom", 1, 9),
        ("/dev/tty", 5, 0),
    ]
}

/// Create default devices and linux.devices. In a user namespace mknod is not allowed, so
/// the host device node is bind-mounted instead (as runc does).
pub fn create_devices(root: &OwnedFd, devices: &[LinuxDevice], in_userns: bool) -> Result<()> {
    let old = nix::sys::stat::umask(Mode::empty());
    let res = (|| {
        for (path, major, minor) in default_devices() {
            if devices.iter().any(|d| d.path() == Path::new(path)) {
                continue;
            }
            make_device(
                root,
                Path::new(path),
                SFlag::S_IFCHR,
                major,
                minor,
                0o666,
                None,
                None,
                in_userns,
            )?;
        }
        for d in devices {
            let kind = match d.typ() {
                LinuxDeviceType::C | LinuxDeviceType::U => SFlag::S_IFCHR,
                LinuxDeviceType::B => SFlag::S_IFBLK,
                LinuxDeviceType::P => SFlag::S_IFIFO,
                LinuxDeviceType::A => {
                    return Err(format!(
                        "linux.devices {}: type \"a\" is not a device node type",
                        d.path().display()
                    ))
                }
            };
            if !d.path().starts_with("/dev") {
                return Err(format!(
                    "linux.devices {}: path must be under /dev",
                    d.path().display()
                ));
            }
            let mode = d.file_mode().unwrap_or(0o666);
            make_device(
                root,
                d.path(),
                kind,
                d.major() as u64,
                d.minor() as u64,
                mode,
                d.uid(),
                d.gid(),
                in_userns,
            )?;
        }
        Ok(())
    })();
    nix::sys::stat::umask(old);
    res
}

#[allow(clippy::too_many_arguments)]
fn make_device(
    root: &OwnedFd,
    path: &Path,
    kind: SFlag,
    major: u64,
    minor: u64,
    mode: u32,
    uid: Option<u32>,
    gid: Option<u32>,
    bind_host: bool,
) -> Result<()> {
    let parent = path.parent().unwrap_or(Path::new("/dev"));
    let dir = ensure_in_root(root.as_raw_fd(), parent, Kind::Dir)?;
    let name = path
        .file_name()
        .ok_or_else(|| format!("device path {} has no name", path.display()))?;
    let dirp = fd_path(&dir);
    let target = Path::new(&dirp).join(name);
    if bind_host {
        let f = ensure_in_root(root.as_raw_fd(), path, Kind::File)?;
        return mount(
            Some(path),
            fd_path(&f).as_str(),
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(|e| format!("bind device {}: {e}", path.display()));
    }
    // A file already there (e.g. a bind-mounted /dev) is replaced, never followed.
    let _ = nix::unistd::unlinkat(
        Some(dir.as_raw_fd()),
        name,
        nix::unistd::UnlinkatFlags::NoRemoveDir,
    );
    mknod(
        &target,
        kind,
        Mode::from_bits_truncate(mode & 0o7777),
        makedev(major, minor),
    )
    .map_err(|e| format!("mknod {}: {e}", path.display()))?;
    if uid.is_some() || gid.is_some() {
        let f = openat_in_root(root.as_raw_fd(), path, libc::O_PATH)
            .map_err(|e| format!("open {}: {e}", path.display()))?;
        nix::unistd::fchownat(
            None,
            fd_path(&f).as_str(),
            uid.map(Uid::from_raw),
            gid.map(Gid::from_raw),
            nix::fcntl::AtFlags::empty(),
        )
        .map_err(|e| format!("chown {}: {e}", path.display()))?;
    }
    Ok(())
}

/// /dev/fd, /dev/std{in,out,err}, /dev/ptmx and /dev/core links.
pub fn dev_symlinks(root: &OwnedFd) -> Result<()> {
    let dev = ensure_in_root(root.as_raw_fd(), Path::new("/dev"), Kind::Dir)?;
    let dir = nix::fcntl::open(
        fd_path(&dev).as_str(),
        nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| format!("open /dev: {e}"))?;
    // SAFETY: `open` returned a fresh fd that we now own.
    let dir = unsafe { OwnedFd::from_raw_fd(dir) };
    let mut links = vec![
        ("/proc/self/fd", "fd"),
        ("/proc/self/fd/0", "stdin"),
        ("/proc/self/fd/1", "stdout"),
        ("/proc/self/fd/2", "stderr"),
        ("pts/ptmx", "ptmx"),
    ];
    if Path::new("/proc/kcore").exists() {
        links.push(("/proc/kcore", "core"));
    }
    for (target, name) in links {
        if name == "ptmx" {
            let _ = nix::unistd::unlinkat(
                Some(dir.as_raw_fd()),
                name,
                nix::unistd::UnlinkatFlags::NoRemoveDir,
            );
        }
        match nix::unistd::symlinkat(target, Some(dir.as_raw_fd()), name) {
            Ok(()) | Err(nix::Error::EEXIST) => {}
            Err(e) => return Err(format!("symlink /dev/{name}: {e}")),
        }
    }
    Ok(())
}

/// Switch root. pivot_root(".", ".") stacks the old root under the new one; detaching it
/// leaves no path back to the host (the old root must first stop propagating to the host).
pub fn pivot(rootfs: &Path) -> Result<()> {
    // After pivot_root(".", ".") the old root is stacked on the new one, but "." still names
    // the new root's mount: step into the old root through an fd taken before the pivot.
    // Otherwise the rslave below hits the container's own tree and turns its shared mounts
    // (mount option "rshared") private.
    let old = nix::fcntl::open(
        "/",
        nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| format!("open old root: {e}"))?;
    // SAFETY: `open` returned a fresh fd that we now own.
    let old = unsafe { OwnedFd::from_raw_fd(old) };
    chdir(rootfs).map_err(|e| format!("chdir to rootfs: {e}"))?;
    pivot_root(".", ".").map_err(|e| format!("pivot_root: {e}"))?;
    nix::unistd::fchdir(old.as_raw_fd()).map_err(|e| format!("fchdir to old root: {e}"))?;
    drop(old);
    mount(
        None::<&str>,
        ".",
        None::<&str>,
        MsFlags::MS_SLAVE | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(|e| format!("make old root rslave: {e}"))?;
    umount2(".", MntFlags::MNT_DETACH).map_err(|e| format!("detach old root: {e}"))?;
    chdir("/").map_err(|e| format!("chdir /: {e}"))
}

/// --no-pivot: move the rootfs over / and chroot (for ramfs roots where pivot_root fails).
pub fn move_root(rootfs: &Path) -> Result<()> {
    chdir(rootfs).map_err(|e| format!("chdir to rootfs: {e}"))?;
    mount(
        Some(rootfs),
        "/",
        None::<&str>,
        MsFlags::MS_MOVE,
        None::<&str>,
    )
    .map_err(|e| format!("move rootfs to /: {e}"))?;
    nix::unistd::chroot(".").map_err(|e| format!("chroot: {e}"))?;
    chdir("/").map_err(|e| format!("chdir /: {e}"))
}

/// Remount / read-only (root.readonly).
pub fn readonly_root() -> Result<()> {
    remount("/", MsFlags::MS_RDONLY | locked_flags("/"))
        .map_err(|e| format!("remount / read-only: {e}"))
}

/// maskedPaths: /dev/null over files, an empty read-only tmpfs over directories. Missing
/// paths are skipped, as the spec allows.
pub fn mask_path(path: &str) -> Result<()> {
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(format!("maskedPaths {path}: {e}")),
        Ok(md) if md.is_dir() => mount(
            Some("tmpfs"),
            path,
            Some("tmpfs"),
            MsFlags::MS_RDONLY,
            None::<&str>,
        )
        .map_err(|e| format!("mask {path}: {e}")),
        Ok(_) => match mount(
            Some("/dev/null"),
            path,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        ) {
            Ok(()) | Err(nix::Error::ENOENT) => Ok(()),
            Err(e) => Err(format!("mask {path}: {e}")),
        },
    }
}

/// readonlyPaths: bind the path onto itself, then remount that bind read-only.
pub fn readonly_path(path: &str) -> Result<()> {
    match mount(
        Some(path),
        path,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    ) {
        Err(nix::Error::ENOENT) => return Ok(()),
        Err(e) => return Err(format!("readonlyPaths {path}: {e}")),
        Ok(()) => {}
    }
    remount(
        path,
        MsFlags::MS_RDONLY | MsFlags::MS_REC | locked_flags(path),
    )
    .map_err(|e| format!("readonlyPaths {path}: remount: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_split_into_flags_propagation_and_data() {
        let o = parse_options(&[
            "nosuid".into(),
            "rbind".into(),
            "ro".into(),
            "rprivate".into(),
            "mode=755".into(),
            "size=65536k".into(),
        ]);
        assert!(o.flags.contains(
            MsFlags::MS_NOSUID | MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_RDONLY
        ));
        assert_eq!(o.propagation, vec![MsFlags::MS_PRIVATE | MsFlags::MS_REC]);
        assert_eq!(
            o.data,
            vec!["mode=755".to_string(), "size=65536k".to_string()]
        );
    }

    #[test]
    fn later_options_override_earlier() {
        let o = parse_options(&["ro".into(), "rw".into()]);
        assert!(!o.flags.contains(MsFlags::MS_RDONLY));
    }

    #[test]
    fn resolution_stays_in_root_through_hostile_symlinks() {
        let dir = std::env::temp_dir().join(format!("mantle-rootfs-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("etc")).unwrap();
        std::os::unix::fs::symlink("/../../../../etc", dir.join("evil")).unwrap();
        std::os::unix::fs::symlink("../../../../../tmp", dir.join("up")).unwrap();
        let root = nix::fcntl::open(
            &dir,
            nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_DIRECTORY,
            Mode::empty(),
        )
        .unwrap();
        // SAFETY: fresh fd from open.
        let root = unsafe { OwnedFd::from_raw_fd(root) };
        // "evil/x" must be created as <root>/etc/x, never /etc/x on the host.
        ensure_in_root(
            root.as_raw_fd(),
            Path::new("/evil/mantle-probe"),
            Kind::File,
        )
        .unwrap();
        assert!(dir.join("etc/mantle-probe").exists());
        assert!(!Path::new("/etc/mantle-probe").exists());
        ensure_in_root(root.as_raw_fd(), Path::new("/up/sub"), Kind::Dir).unwrap();
        assert!(dir.join("tmp/sub").is_dir());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
