//! Turning the workload's (dirfd, path) into a container path for the gofer.
//!
//! The workload's cwd and directory fds are real kernel objects (chdir is continued, see
//! `exec`), so the sentry keeps no cwd state of its own: it reads `/proc/<tid>/cwd` or
//! `/proc/<tid>/fd/<dirfd>` when a relative path needs a base, and turns the link target into a
//! container path (strip `root_path`).
//!
//! Security argument: these link targets are only *hints*. Whatever base the sentry computes,
//! the result is a path the gofer resolves beneath the container root (RESOLVE_IN_ROOT
//! semantics: `..` and absolute symlinks stay inside). A wrong or raced hint (the workload
//! renames its cwd, or a second thread changes the fd table between our readlink and the gofer
//! call) can at worst name another file *beneath the root*, which the workload could have named
//! directly. So no check made here is a security boundary; the gofer is. The event is checked
//! to still be pending after the /proc reads, so a recycled tid cannot lend us another process's
//! cwd.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use gofer::protocol::{Handle, Owner, Target};

use super::{Call, Fail};

/// Container path of a host path the kernel printed in /proc.
pub(crate) fn to_container(c: &Call<'_>, host: &[u8]) -> Result<Vec<u8>, Fail> {
    if host.ends_with(b" (deleted)") {
        return Err(Fail::Errno(libc::ENOENT));
    }
    if !host.starts_with(b"/") {
        // pipe:[..], socket:[..], anon_inode:..: not a directory.
        return Err(Fail::Errno(libc::ENOTDIR));
    }
    let Some(root) = &c.s.cfg.root_path else {
        return Ok(host.to_vec());
    };
    let root = root.as_os_str().as_bytes();
    let root = root.strip_suffix(b"/").unwrap_or(root);
    match host.strip_prefix(root) {
        Some(b"") => Ok(b"/".to_vec()),
        Some(rest) if rest.starts_with(b"/") => Ok(rest.to_vec()),
        // Not under root_path: either the kernel already printed it relative to the container
        // root (the workload's root is not reachable from the sentry's, as in a pivoted mount
        // namespace), or it is outside the root (an inherited fd). Either way it is used as a
        // container path: the gofer resolves it beneath the root, so a wrong guess can only
        // name another file inside.
        _ => Ok(host.to_vec()),
    }
}

fn proc_link(c: &Call<'_>, what: &str) -> Result<Vec<u8>, Fail> {
    let p = format!("/proc/{}/{}", c.ev.tid, what);
    let t = std::fs::read_link(&p).map_err(|e| match e.raw_os_error() {
        Some(libc::ENOENT) if what.starts_with("fd/") => Fail::Errno(libc::EBADF),
        Some(libc::ENOENT) | Some(libc::ESRCH) => Fail::Gone,
        _ => Fail::Errno(libc::EIO),
    })?;
    if !c.p.is_pending(&c.ev) {
        return Err(Fail::Gone);
    }
    to_container(c, t.as_os_str().as_bytes())
}

/// The workload thread's cwd as a container path.
pub(crate) fn cwd(c: &Call<'_>) -> Result<Vec<u8>, Fail> {
    proc_link(c, "cwd")
}

/// The base directory for `dirfd` as a container path.
fn base(c: &Call<'_>, dirfd: i32) -> Result<Vec<u8>, Fail> {
    if dirfd == libc::AT_FDCWD {
        cwd(c)
    } else if dirfd < 0 {
        Err(Fail::Errno(libc::EBADF))
    } else {
        proc_link(c, &format!("fd/{dirfd}"))
    }
}

/// Join `path` onto `dirfd`'s directory, giving an absolute container path. `path` must not be
/// empty (callers handle AT_EMPTY_PATH first).
pub(crate) fn absolute(c: &Call<'_>, dirfd: i32, path: &[u8]) -> Result<Vec<u8>, Fail> {
    if path.is_empty() {
        return Err(Fail::Errno(libc::ENOENT));
    }
    if path.starts_with(b"/") {
        return Ok(path.to_vec());
    }
    let mut b = base(c, dirfd)?;
    if !b.ends_with(b"/") {
        b.push(b'/');
    }
    b.extend_from_slice(path);
    Ok(b)
}

/// A gofer target for (dirfd, path).
pub(crate) fn target(c: &Call<'_>, dirfd: i32, path: &[u8], follow: bool) -> Result<Target, Fail> {
    let p = absolute(c, dirfd, path)?;
    Ok(if follow {
        Target::new(Handle::ROOT, p)
    } else {
        Target::nofollow(Handle::ROOT, p)
    })
}

/// The workload's file-creation identity and umask, from /proc/<tid>/status.
pub(crate) struct Creds {
    pub fsuid: u32,
    pub fsgid: u32,
    pub groups: Vec<u32>,
    pub umask: u32,
    /// Effective capabilities (CapEff).
    pub cap_eff: u64,
}

impl Creds {
    /// CAP_DAC_OVERRIDE in the effective set: permission bits do not bind this caller.
    pub fn dac_override(&self) -> bool {
        self.cap_eff & (1 << 1/* CAP_DAC_OVERRIDE */) != 0
    }

    /// The rwx bits `mode` grants this caller as file-system user (no ACLs).
    pub fn granted(&self, st: &gofer::protocol::Stat) -> u32 {
        let shift = if st.uid == self.fsuid {
            6
        } else if st.gid == self.fsgid || self.groups.contains(&st.gid) {
            3
        } else {
            0
        };
        (st.mode >> shift) & 7
    }

    pub fn owner(&self) -> Owner {
        Owner {
            uid: self.fsuid,
            gid: self.fsgid,
        }
    }
}

/// Whether the calling thread has CAP_DAC_OVERRIDE in its effective set: one capget(2) on
/// its tid (no permission needed), then the pending check so a recycled tid cannot answer.
pub(crate) fn dac_override(c: &Call<'_>) -> Result<bool, Fail> {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy, Default)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    let mut hdr = Header {
        version: 0x2008_0522,
        pid: c.ev.tid,
    };
    let mut data = [Data::default(); 2];
    // SAFETY: capget writes two Data entries (version 3); both pointers are valid.
    let rc = unsafe { libc::syscall(libc::SYS_capget, &mut hdr as *mut Header, data.as_mut_ptr()) };
    if rc != 0 || !c.p.is_pending(&c.ev) {
        return Err(Fail::Gone);
    }
    Ok(data[0].effective & (1 << 1/* CAP_DAC_OVERRIDE */) != 0)
}

pub(crate) fn creds(c: &Call<'_>) -> Result<Creds, Fail> {
    let s = std::fs::read(Path::new(OsStr::new(&format!("/proc/{}/status", c.ev.tid))))
        .map_err(|_| Fail::Gone)?;
    if !c.p.is_pending(&c.ev) {
        return Err(Fail::Gone);
    }
    let text = String::from_utf8_lossy(&s);
    let field = |name: &str| -> Vec<u32> {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|rest| {
                rest.split_whitespace()
                    .filter_map(|w| w.parse::<u32>().ok())
                    .collect()
            })
            .unwrap_or_default()
    };
    let uid = field("Uid:");
    let gid = field("Gid:");
    let umask = text
        .lines()
        .find_map(|l| l.strip_prefix("Umask:"))
        .and_then(|v| u32::from_str_radix(v.trim(), 8).ok())
        .unwrap_or(0o022);
    if uid.len() < 4 || gid.len() < 4 {
        return Err(Fail::Errno(libc::EIO));
    }
    Ok(Creds {
        fsuid: uid[3],
        fsgid: gid[3],
        groups: field("Groups:"),
        umask,
        cap_eff: text
            .lines()
            .find_map(|l| l.strip_prefix("CapEff:"))
            .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
            .unwrap_or(0),
    })
}
