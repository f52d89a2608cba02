//! Paths under /proc, served from the workload's own procfs instead of through the gofer.
//!
//! The gofer serves the rootfs directory, where /proc is an empty mount point: the container's
//! procfs is mounted in the container's mount namespace only. So for a path that is lexically
//! under /proc the sentry opens it itself, from the workload's root (`/proc/<tid>/root`, i.e.
//! the container's mount namespace and its pid-namespaced procfs), with openat2
//! RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS:
//!
//! * in-root resolution: `..` and symlinks cannot leave the workload's own root;
//! * no magic links: /proc/<pid>/fd/N, /proc/<pid>/root, /proc/<pid>/exe, ... are never
//!   *traversed* (that is how a process reaches files outside its root); they can still be
//!   read as links (readlink), whose host-view targets are translated to container paths;
//! * `self` and `thread-self` are rewritten to the caller's pid and tid in its pid namespace
//!   (the sentry's own "self" would be wrong, and absent from that procfs).
//!
//! What this shows is exactly what the container's procfs shows in native mode (runc): its own
//! pid namespace; meminfo/cpuinfo as the host has them. When no procfs is mounted in the
//! container (the standalone launcher), these paths fail with ENOENT as they would natively.

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use super::path::absolute;
use super::{Call, Fail};

/// If (dirfd, path) names something under /proc, the path relative to the workload's root
/// with self/thread-self rewritten.
pub(crate) fn lookup(c: &Call<'_>, dirfd: i32, p: &[u8]) -> Result<Option<Vec<u8>>, Fail> {
    if p.is_empty() {
        return Ok(None);
    }
    // Only absolute /proc paths and relative paths whose base is under /proc qualify; decide
    // lexically (normalising "." and ".."), the kernel does the real resolution below.
    let abs = if p.starts_with(b"/") {
        p.to_vec()
    } else if dirfd == libc::AT_FDCWD || dirfd >= 0 {
        absolute(c, dirfd, p)?
    } else {
        return Ok(None);
    };
    let mut parts: Vec<&[u8]> = Vec::new();
    for comp in abs.split(|&b| b == b'/') {
        match comp {
            b"" | b"." => {}
            b".." => {
                parts.pop();
            }
            x => parts.push(x),
        }
    }
    if parts.first() != Some(&&b"proc"[..]) {
        return Ok(None);
    }
    let mut out = b"proc".to_vec();
    for (i, comp) in parts.iter().enumerate().skip(1) {
        out.push(b'/');
        match (i, *comp) {
            (1, b"self") => out.extend_from_slice(ns_id(c, "NStgid:")?.as_bytes()),
            // /proc/net is procfs's link to "self/net": resolved by the kernel it would name
            // the opener's (the sentry's) entry, absent from the workload's procfs.
            (1, b"net") => {
                out.extend_from_slice(ns_id(c, "NStgid:")?.as_bytes());
                out.extend_from_slice(b"/net");
            }
            (1, b"thread-self") => {
                out.extend_from_slice(ns_id(c, "NStgid:")?.as_bytes());
                out.extend_from_slice(b"/task/");
                out.extend_from_slice(ns_id(c, "NSpid:")?.as_bytes());
            }
            (_, x) => out.extend_from_slice(x),
        }
    }
    Ok(Some(out))
}

/// The caller's id in its own (innermost) pid namespace, from /proc/<tid>/status.
fn ns_id(c: &Call<'_>, field: &str) -> Result<String, Fail> {
    let s =
        std::fs::read_to_string(format!("/proc/{}/status", c.ev.tid)).map_err(|_| Fail::Gone)?;
    if !c.p.is_pending(&c.ev) {
        return Err(Fail::Gone);
    }
    s.lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().last().map(str::to_string))
        .ok_or(Fail::Errno(libc::EIO))
}

/// Open `rel` beneath the workload's root (see the module comment).
pub(crate) fn open(c: &Call<'_>, rel: &[u8], flags: i32, mode: u32) -> Result<OwnedFd, Fail> {
    let root_path =
        CString::new(format!("/proc/{}/root", c.ev.tid)).map_err(|_| Fail::Errno(libc::EINVAL))?;
    // SAFETY: valid path; O_PATH opens nothing for I/O.
    let root = unsafe {
        libc::open(
            root_path.as_ptr(),
            libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    };
    if root < 0 {
        return Err(Fail::Gone);
    }
    // SAFETY: fresh fd we own.
    let root = unsafe { OwnedFd::from_raw_fd(root) };
    if !c.p.is_pending(&c.ev) {
        return Err(Fail::Gone);
    }
    let path = CString::new(rel).map_err(|_| Fail::Errno(libc::EINVAL))?;
    // SAFETY: open_how is plain integers; zeroed is valid.
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = (flags | libc::O_CLOEXEC) as u64;
    how.mode = if flags & libc::O_CREAT != 0 {
        mode as u64 & 0o7777
    } else {
        0
    };
    how.resolve = libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS;
    // SAFETY: valid dirfd, NUL-terminated path, `how` valid for the call with its exact size.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            root.as_raw_fd(),
            path.as_ptr(),
            &how as *const libc::open_how,
            std::mem::size_of::<libc::open_how>(),
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error().into());
    }
    // SAFETY: fresh fd we own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// readlink of a /proc entry (magic links included); host paths become container paths.
pub(crate) fn readlink(c: &Call<'_>, rel: &[u8]) -> Result<Vec<u8>, Fail> {
    let fd = open(c, rel, libc::O_PATH | libc::O_NOFOLLOW, 0)?;
    let mut buf = vec![0u8; libc::PATH_MAX as usize];
    // SAFETY: valid fd, empty path (the link itself), buffer writable for its length.
    let n = unsafe {
        libc::readlinkat(
            fd.as_raw_fd(),
            c"".as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    if n < 0 {
        return Err(std::io::Error::last_os_error().into());
    }
    buf.truncate(n as usize);
    if buf.starts_with(b"/") {
        // Targets are printed from the sentry's root: translate to the container view.
        return super::path::to_container(c, &buf);
    }
    Ok(buf)
}
