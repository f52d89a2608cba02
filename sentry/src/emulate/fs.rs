//! Path syscalls, emulated through the gofer.
//!
//! Every path is read once from workload memory (then NOTIF_ID_VALID), turned into a container
//! path (`path`), and handed to the gofer, which resolves it beneath the root. The kernel never
//! sees the workload's pointer for these calls, so a second thread rewriting the path after we
//! read it changes nothing. Opened files come back as host fds and are installed with ADDFD.

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use gofer::client::XattrData;
use gofer::protocol::{setattr, SetAttr, Stat, Timespec};

use super::path::{self, absolute, creds, target};
use super::procfs;
use super::structs::{self, bytes_of};
use super::{err, ok, Call, Fail, Outcome, Res};
use crate::platform::Reply;

const XATTR_NAME_MAX: usize = 255;
const XATTR_SIZE_MAX: u64 = 64 * 1024;

fn show(c: &mut Call<'_>, i: usize, s: String) {
    c.shown.push((i, s));
}

fn show_dirfd(c: &mut Call<'_>, i: usize, fd: i32) {
    let s = if fd == libc::AT_FDCWD {
        "AT_FDCWD".to_string()
    } else {
        fd.to_string()
    };
    show(c, i, s);
}

pub(crate) fn open(c: &mut Call<'_>, dirfd: i32, pi: usize, flags: i32, mode: u32) -> Res {
    if pi == 1 {
        show_dirfd(c, 0, dirfd);
    }
    let p = c.path_arg(pi)?;
    show(c, pi + 1, format!("{flags:#o}"));
    open_path(c, dirfd, &p, flags, mode)
}

fn open_path(c: &mut Call<'_>, dirfd: i32, p: &[u8], flags: i32, mode: u32) -> Res {
    let cloexec = flags & libc::O_CLOEXEC != 0;
    let creates = flags & libc::O_CREAT != 0 || flags & libc::O_TMPFILE == libc::O_TMPFILE;
    // One capget tells whether permission bits bind the caller; the full identity (a
    // /proc/<tid>/status read) is needed only to create or to check bits.
    let privileged = path::dac_override(c)?;
    let cr = if creates || !privileged {
        Some(creds(c)?)
    } else {
        None
    };
    let (mode, owner) = match (&cr, creates) {
        (Some(cr), true) => (mode & 0o7777 & !cr.umask, cr.owner()),
        _ => (0, gofer::protocol::Owner::UNCHANGED),
    };
    let unprivileged = cr.as_ref().filter(|_| !privileged);
    if let Some(rel) = procfs::lookup(c, dirfd, p)? {
        // Opened with the sentry's credentials in the workload's procfs: procfs applies its
        // own per-process checks (ptrace access) against the sentry, so check the bits too.
        let fd = procfs::open(c, &rel, flags & !libc::O_CLOEXEC, mode)?;
        if let Some(cr) = unprivileged {
            check_open_access(cr, &fd_stat(c, &fd)?, flags)?;
        }
        return Ok(Outcome::Fd { fd, cloexec });
    }
    let t = target(c, dirfd, p, true)?;
    // The gofer opens with its own (privileged) credentials. For a caller without
    // CAP_DAC_OVERRIDE the sentry checks the permission bits of the inode actually opened (no
    // race: it is the object the fd refers to), and applies O_TRUNC only after that check so
    // a refused open cannot have truncated the file.
    let mut out = flags & !libc::O_CLOEXEC;
    if unprivileged.is_some() {
        out &= !libc::O_TRUNC;
    }
    let (fd, st) = c.gofer().open(t, out as u32, mode, owner)?;
    if let Some(cr) = unprivileged {
        let created_by_caller = creates && st.uid == cr.fsuid;
        if !created_by_caller {
            check_open_access(cr, &st, flags)?;
        }
        if flags & libc::O_TRUNC != 0 && st.file_type() == libc::S_IFREG {
            // SAFETY: valid fd we own; truncation to 0 as O_TRUNC would have done.
            if unsafe { libc::ftruncate(fd.as_raw_fd(), 0) } != 0 {
                return Err(std::io::Error::last_os_error().into());
            }
        }
    }
    Ok(Outcome::Fd { fd, cloexec })
}

/// open(2)'s permission rule on the opened inode: read for O_RDONLY/O_RDWR, write for
/// O_WRONLY/O_RDWR/O_TRUNC; nothing for O_PATH.
fn check_open_access(cr: &path::Creds, st: &Stat, flags: i32) -> Result<(), Fail> {
    if flags & libc::O_PATH != 0 {
        return Ok(());
    }
    let mut need = match flags & libc::O_ACCMODE {
        libc::O_RDONLY => 4,
        libc::O_WRONLY => 2,
        _ => 6,
    };
    if flags & libc::O_TRUNC != 0 {
        need |= 2;
    }
    if cr.granted(st) & need != need {
        return Err(Fail::Errno(libc::EACCES));
    }
    Ok(())
}

/// openat2(dirfd, path, how, size). Only `resolve == 0` is emulated: the RESOLVE_* flags
/// describe kernel lookups the gofer does its own way; ENOSYS makes callers fall back to openat.
pub(crate) fn openat2(c: &mut Call<'_>) -> Res {
    let dirfd = c.int(0);
    show_dirfd(c, 0, dirfd);
    let p = c.path_arg(1)?;
    let size = c.arg(3) as usize;
    if size < 24 {
        return err(libc::EINVAL);
    }
    let mut how = [0u8; 24];
    c.read(c.arg(2), &mut how)?;
    let word = |i: usize| u64::from_le_bytes(how[i * 8..i * 8 + 8].try_into().unwrap_or([0; 8]));
    let (flags, mode, resolve) = (word(0), word(1), word(2));
    if resolve != 0 {
        return err(libc::ENOSYS);
    }
    if flags > u32::MAX as u64 || mode > 0o7777 {
        return err(libc::EINVAL);
    }
    open_path(c, dirfd, &p, flags as i32, mode as u32)
}

/// The stat of an fd the workload holds (or its cwd), taken by the sentry itself through
/// /proc/<tid>/fd/<n> opened O_PATH: the same object the kernel would stat, no gofer trip.
fn local_stat(c: &Call<'_>, fd: i32) -> Result<Stat, Fail> {
    let link = if fd == libc::AT_FDCWD {
        format!("/proc/{}/cwd", c.ev.tid)
    } else if fd < 0 {
        return Err(Fail::Errno(libc::EBADF));
    } else {
        format!("/proc/{}/fd/{}", c.ev.tid, fd)
    };
    let cpath = CString::new(link).map_err(|_| Fail::Errno(libc::EINVAL))?;
    // SAFETY: valid NUL-terminated path; O_PATH opens nothing for I/O.
    let raw = unsafe { libc::open(cpath.as_ptr(), libc::O_PATH | libc::O_CLOEXEC) };
    if raw < 0 {
        let e = std::io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EIO);
        return Err(Fail::Errno(if e == libc::ENOENT { libc::EBADF } else { e }));
    }
    // SAFETY: fresh fd we own.
    let f = unsafe { OwnedFd::from_raw_fd(raw) };
    if !c.p.is_pending(&c.ev) {
        return Err(Fail::Gone);
    }
    fd_stat(c, &f)
}

/// statx of an fd the sentry holds.
fn fd_stat(_c: &Call<'_>, f: &OwnedFd) -> Result<Stat, Fail> {
    // SAFETY: statx is plain integers; zeroed is valid.
    let mut x: libc::statx = unsafe { std::mem::zeroed() };
    let empty = c"";
    // SAFETY: valid fd, empty path with AT_EMPTY_PATH, `x` writable for the call.
    let rc = unsafe {
        libc::statx(
            f.as_raw_fd(),
            empty.as_ptr(),
            libc::AT_EMPTY_PATH,
            libc::STATX_BASIC_STATS | libc::STATX_BTIME | libc::STATX_MNT_ID,
            &mut x,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error().into());
    }
    Ok(structs::from_statx(&x))
}

fn stat_of(c: &mut Call<'_>, dirfd: i32, pi: usize, flags: i32) -> Result<Stat, Fail> {
    let p = c.path_arg(pi)?;
    if p.is_empty() && flags & libc::AT_EMPTY_PATH != 0 {
        return local_stat(c, dirfd);
    }
    let follow = flags & libc::AT_SYMLINK_NOFOLLOW == 0;
    if let Some(rel) = procfs::lookup(c, dirfd, &p)? {
        let nofollow = if follow { 0 } else { libc::O_NOFOLLOW };
        let fd = procfs::open(c, &rel, libc::O_PATH | nofollow, 0)?;
        return fd_stat(c, &fd);
    }
    let t = target(c, dirfd, &p, follow)?;
    Ok(c.gofer().stat(t)?)
}

/// stat / lstat / newfstatat.
pub(crate) fn stat(c: &mut Call<'_>, dirfd: i32, pi: usize, bi: usize, flags: i32) -> Res {
    if pi == 1 {
        show_dirfd(c, 0, dirfd);
    }
    let st = stat_of(c, dirfd, pi, flags)?;
    c.write(c.arg(bi), bytes_of(&structs::stat(&st)))?;
    ok(0)
}

/// statx(dirfd, path, flags, mask, buf).
pub(crate) fn statx(c: &mut Call<'_>) -> Res {
    let dirfd = c.int(0);
    show_dirfd(c, 0, dirfd);
    let st = stat_of(c, dirfd, 1, c.int(2))?;
    c.write(c.arg(4), bytes_of(&structs::statx(&st, c.int(3) as u32)))?;
    ok(0)
}

/// access / faccessat / faccessat2: the gofer's stat checked against the workload's ids.
pub(crate) fn access(c: &mut Call<'_>, dirfd: i32, pi: usize, mode: i32, flags: i32) -> Res {
    if pi == 1 {
        show_dirfd(c, 0, dirfd);
    }
    if mode & !(libc::R_OK | libc::W_OK | libc::X_OK) != 0 {
        return err(libc::EINVAL);
    }
    let st = stat_of(c, dirfd, pi, flags)?;
    if mode == libc::F_OK {
        return ok(0);
    }
    let cr = creds(c)?;
    let granted = if cr.dac_override() {
        // Root may read and write anything; execute needs one x bit (or a directory).
        let x_ok = st.is_dir() || st.mode & 0o111 != 0;
        libc::R_OK | libc::W_OK | if x_ok { libc::X_OK } else { 0 }
    } else {
        cr.granted(&st) as i32
    };
    if mode & !granted != 0 {
        return err(libc::EACCES);
    }
    ok(0)
}

pub(crate) fn readlink(c: &mut Call<'_>, dirfd: i32, pi: usize) -> Res {
    if pi == 1 {
        show_dirfd(c, 0, dirfd);
    }
    let p = c.path_arg(pi)?;
    let (buf, size) = (c.arg(pi + 1), c.arg(pi + 2) as i32);
    if size <= 0 {
        return err(libc::EINVAL);
    }
    let content = match procfs::lookup(c, dirfd, &p)? {
        Some(rel) => procfs::readlink(c, &rel)?,
        None => c.gofer().readlink(target(c, dirfd, &p, false)?)?,
    };
    let n = content.len().min(size as usize);
    c.write(buf, &content[..n])?;
    ok(n as i64)
}

pub(crate) fn getcwd(c: &mut Call<'_>) -> Res {
    let (buf, size) = (c.arg(0), c.arg(1) as usize);
    let mut cwd = path::cwd(c)?;
    cwd.push(0);
    if cwd.len() > size {
        return err(libc::ERANGE);
    }
    c.write(buf, &cwd)?;
    ok(cwd.len() as i64)
}

pub(crate) fn mkdir(c: &mut Call<'_>, dirfd: i32, pi: usize, mode: u32) -> Res {
    if pi == 1 {
        show_dirfd(c, 0, dirfd);
    }
    let p = c.path_arg(pi)?;
    let cr = creds(c)?;
    let t = target(c, dirfd, &p, false)?;
    c.gofer().mkdir(t, mode & 0o7777 & !cr.umask, cr.owner())?;
    ok(0)
}

pub(crate) fn mknod(c: &mut Call<'_>, dirfd: i32, pi: usize, mode: u32, dev: u64) -> Res {
    if pi == 1 {
        show_dirfd(c, 0, dirfd);
    }
    let p = c.path_arg(pi)?;
    let cr = creds(c)?;
    let kind = match mode & libc::S_IFMT {
        0 => libc::S_IFREG,
        k => k,
    };
    let t = target(c, dirfd, &p, false)?;
    let mode = kind | (mode & 0o7777 & !cr.umask);
    c.gofer().mknod(t, mode, dev, cr.owner())?;
    ok(0)
}

pub(crate) fn unlink(c: &mut Call<'_>, dirfd: i32, pi: usize, flags: i32) -> Res {
    if pi == 1 {
        show_dirfd(c, 0, dirfd);
    }
    if flags & !libc::AT_REMOVEDIR != 0 {
        return err(libc::EINVAL);
    }
    let p = c.path_arg(pi)?;
    let t = target(c, dirfd, &p, false)?;
    c.gofer().unlink(t, flags as u32)?;
    ok(0)
}

pub(crate) fn rename(c: &mut Call<'_>, dirfds: [i32; 2], pis: [usize; 2], flags: u32) -> Res {
    let old = c.path_arg(pis[0])?;
    let new = c.path_arg(pis[1])?;
    let o = target(c, dirfds[0], &old, false)?;
    let n = target(c, dirfds[1], &new, false)?;
    c.gofer().rename(o, n, flags)?;
    ok(0)
}

pub(crate) fn link(c: &mut Call<'_>, dirfds: [i32; 2], pis: [usize; 2], flags: i32) -> Res {
    if flags & !(libc::AT_SYMLINK_FOLLOW | libc::AT_EMPTY_PATH) != 0 {
        return err(libc::EINVAL);
    }
    let old = c.path_arg(pis[0])?;
    let new = c.path_arg(pis[1])?;
    if old.is_empty() {
        // linkat(fd, "", ..., AT_EMPTY_PATH) links an open file; not offered.
        return err(if flags & libc::AT_EMPTY_PATH != 0 {
            libc::EPERM
        } else {
            libc::ENOENT
        });
    }
    let o = target(c, dirfds[0], &old, flags & libc::AT_SYMLINK_FOLLOW != 0)?;
    let n = target(c, dirfds[1], &new, false)?;
    c.gofer().link(o, n)?;
    ok(0)
}

/// symlink(target, linkpath) / symlinkat(target, newdirfd, linkpath). The target is stored as
/// written; it is only ever resolved later, by the gofer, beneath the root.
pub(crate) fn symlink(c: &mut Call<'_>, dirfd: i32, ti: usize, li: usize) -> Res {
    let content = c.path_arg(ti)?;
    let p = c.path_arg(li)?;
    if content.is_empty() {
        return err(libc::ENOENT);
    }
    let cr = creds(c)?;
    let t = target(c, dirfd, &p, false)?;
    c.gofer().symlink(t, &content, cr.owner())?;
    ok(0)
}

fn set_attr(
    c: &mut Call<'_>,
    dirfd: i32,
    pi: usize,
    follow: bool,
    flags: i32,
    attr: SetAttr,
) -> Res {
    let p = c.path_arg(pi)?;
    if p.is_empty() {
        // AT_EMPTY_PATH forms act on an open fd: glibc uses fchmod/fchown/futimens for that.
        return err(if flags & libc::AT_EMPTY_PATH != 0 {
            libc::ENOSYS
        } else {
            libc::ENOENT
        });
    }
    let t = target(c, dirfd, &p, follow)?;
    check_ownership(c, &t, &attr)?;
    c.gofer().setattr(t, attr)?;
    ok(0)
}

const CAP_CHOWN: u64 = 1 << 0;
const CAP_FOWNER: u64 = 1 << 3;

/// The kernel's ownership rules for chown/chgrp/chmod, which the gofer (acting with its own
/// capabilities) cannot apply for the workload: without CAP_CHOWN only the owner may change
/// the group, to one of its groups, and nobody may give a file away; without CAP_FOWNER only
/// the owner may chmod. Threat: a container started with `--cap-drop CHOWN` (or as a
/// non-root user) must not chown files through the sentry.
///
/// Residual race: the owner is read in one gofer request and the change made in the next, so
/// a concurrent rename in the container could swap the file in between; the swapped-in file
/// is still inside the container root.
fn check_ownership(
    c: &mut Call<'_>,
    t: &gofer::protocol::Target,
    attr: &SetAttr,
) -> Result<(), Fail> {
    let owner_change = attr.mask & (setattr::UID | setattr::GID);
    let mode_change = attr.mask & setattr::MODE;
    if owner_change == 0 && mode_change == 0 {
        return Ok(());
    }
    let cr = creds(c)?;
    let need_chown = owner_change != 0 && cr.cap_eff & CAP_CHOWN == 0;
    let need_fowner = mode_change != 0 && cr.cap_eff & CAP_FOWNER == 0;
    if !need_chown && !need_fowner {
        return Ok(());
    }
    let st = c.gofer().stat(t.clone())?;
    let is_owner = cr.fsuid == st.uid;
    if need_fowner && !is_owner {
        return Err(Fail::Errno(libc::EPERM));
    }
    if need_chown {
        if attr.mask & setattr::UID != 0 && !(is_owner && attr.uid == st.uid) {
            return Err(Fail::Errno(libc::EPERM));
        }
        let in_group = attr.gid == st.gid || attr.gid == cr.fsgid || cr.groups.contains(&attr.gid);
        if attr.mask & setattr::GID != 0 && !(is_owner && in_group) {
            return Err(Fail::Errno(libc::EPERM));
        }
    }
    Ok(())
}

pub(crate) fn chmod(c: &mut Call<'_>, dirfd: i32, pi: usize, mode: u32, flags: i32) -> Res {
    show(c, pi + 1, format!("{mode:#o}"));
    let attr = SetAttr {
        mask: setattr::MODE,
        mode: mode & 0o7777,
        ..Default::default()
    };
    set_attr(
        c,
        dirfd,
        pi,
        flags & libc::AT_SYMLINK_NOFOLLOW == 0,
        flags,
        attr,
    )
}

pub(crate) fn chown(c: &mut Call<'_>, dirfd: i32, pi: usize, ui: usize, flags: i32) -> Res {
    let (uid, gid) = (c.arg(ui) as u32, c.arg(ui + 1) as u32);
    let mut attr = SetAttr {
        uid,
        gid,
        ..Default::default()
    };
    if uid != u32::MAX {
        attr.mask |= setattr::UID;
    }
    if gid != u32::MAX {
        attr.mask |= setattr::GID;
    }
    set_attr(
        c,
        dirfd,
        pi,
        flags & libc::AT_SYMLINK_NOFOLLOW == 0,
        flags,
        attr,
    )
}

const UTIME_NOW: i64 = (1 << 30) - 1;
const UTIME_OMIT: i64 = (1 << 30) - 2;

fn times_attr(times: Option<[(i64, i64); 2]>) -> Result<SetAttr, Fail> {
    let mut a = SetAttr::default();
    let Some(t) = times else {
        a.mask = setattr::ATIME_NOW | setattr::MTIME_NOW;
        return Ok(a);
    };
    for (i, (sec, nsec)) in t.iter().enumerate() {
        let (now, set) = if i == 0 {
            (setattr::ATIME_NOW, setattr::ATIME)
        } else {
            (setattr::MTIME_NOW, setattr::MTIME)
        };
        match *nsec {
            UTIME_OMIT => {}
            UTIME_NOW => a.mask |= now,
            n if (0..1_000_000_000).contains(&n) => {
                a.mask |= set;
                let ts = Timespec {
                    sec: *sec,
                    nsec: n as u32,
                };
                if i == 0 {
                    a.atime = ts;
                } else {
                    a.mtime = ts;
                }
            }
            _ => return Err(Fail::Errno(libc::EINVAL)),
        }
    }
    Ok(a)
}

fn read_pairs(c: &Call<'_>, addr: u64, scale: i64) -> Result<Option<[(i64, i64); 2]>, Fail> {
    if addr == 0 {
        return Ok(None);
    }
    let mut b = [0u8; 32];
    c.read(addr, &mut b)?;
    let w = |i: usize| i64::from_le_bytes(b[i * 8..i * 8 + 8].try_into().unwrap_or([0; 8]));
    let conv = |s: i64, f: i64| -> Result<(i64, i64), Fail> {
        if scale == 1000 && !(0..1_000_000).contains(&f) {
            return Err(Fail::Errno(libc::EINVAL));
        }
        Ok((s, f * scale))
    };
    Ok(Some([conv(w(0), w(1))?, conv(w(2), w(3))?]))
}

/// utime(path, struct utimbuf *).
pub(crate) fn utime(c: &mut Call<'_>) -> Res {
    let addr = c.arg(1);
    let times = if addr == 0 {
        None
    } else {
        let mut b = [0u8; 16];
        c.read(addr, &mut b)?;
        let w = |i: usize| i64::from_le_bytes(b[i * 8..i * 8 + 8].try_into().unwrap_or([0; 8]));
        Some([(w(0), 0), (w(1), 0)])
    };
    set_attr(c, libc::AT_FDCWD, 0, true, 0, times_attr(times)?)
}

/// utimes(path, timeval[2]) / futimesat(dirfd, path, timeval[2]).
pub(crate) fn utimes(c: &mut Call<'_>, dirfd: i32, pi: usize, ti: usize) -> Res {
    let times = read_pairs(c, c.arg(ti), 1000)?;
    set_attr(c, dirfd, pi, true, 0, times_attr(times)?)
}

/// utimensat(dirfd, path, timespec[2], flags). A NULL path is futimens(dirfd): it names no
/// path, only a register, so it is continued (nothing in memory for the kernel to re-read that
/// we checked).
pub(crate) fn utimensat(c: &mut Call<'_>) -> Res {
    let dirfd = c.int(0);
    show_dirfd(c, 0, dirfd);
    if c.arg(1) == 0 {
        return Ok(Outcome::Reply(Reply::Continue));
    }
    let flags = c.int(3);
    let times = read_pairs(c, c.arg(2), 1)?;
    let attr = times_attr(times)?;
    set_attr(
        c,
        dirfd,
        1,
        flags & libc::AT_SYMLINK_NOFOLLOW == 0,
        flags,
        attr,
    )
}

pub(crate) fn truncate(c: &mut Call<'_>) -> Res {
    let len = c.arg(1) as i64;
    if len < 0 {
        return err(libc::EINVAL);
    }
    let attr = SetAttr {
        mask: setattr::SIZE,
        size: len as u64,
        ..Default::default()
    };
    set_attr(c, libc::AT_FDCWD, 0, true, 0, attr)
}

pub(crate) fn statfs(c: &mut Call<'_>) -> Res {
    let p = c.path_arg(0)?;
    let t = target(c, libc::AT_FDCWD, &p, true)?;
    let s = c.gofer().statfs(t)?;
    c.write(c.arg(1), bytes_of(&structs::statfs(&s)))?;
    ok(0)
}

fn xattr_name(c: &mut Call<'_>, i: usize) -> Result<Vec<u8>, Fail> {
    let n =
        crate::platform::read_cstring(c.p, &c.ev, c.arg(i), XATTR_NAME_MAX + 1).map_err(|e| {
            match Fail::from(e) {
                Fail::Errno(libc::ENAMETOOLONG) => Fail::Errno(libc::ERANGE),
                f => f,
            }
        })?;
    if n.is_empty() || n.len() > XATTR_NAME_MAX {
        return Err(Fail::Errno(libc::ERANGE));
    }
    c.shown
        .push((i, format!("{:?}", String::from_utf8_lossy(&n))));
    Ok(n)
}

fn xattr_reply(c: &mut Call<'_>, data: XattrData, buf: u64, size: u64) -> Res {
    match data {
        XattrData::Size(n) => ok(n as i64),
        XattrData::Bytes(b) => {
            if size != 0 && (b.len() as u64) > size {
                return err(libc::ERANGE);
            }
            c.write(buf, &b)?;
            ok(b.len() as i64)
        }
    }
}

pub(crate) fn getxattr(c: &mut Call<'_>, follow: bool) -> Res {
    let p = c.path_arg(0)?;
    let name = xattr_name(c, 1)?;
    let (buf, size) = (c.arg(2), c.arg(3).min(XATTR_SIZE_MAX));
    let t = target(c, libc::AT_FDCWD, &p, follow)?;
    let d = c.gofer().getxattr(t, &name, size as u32)?;
    xattr_reply(c, d, buf, size)
}

pub(crate) fn setxattr(c: &mut Call<'_>, follow: bool) -> Res {
    let p = c.path_arg(0)?;
    let name = xattr_name(c, 1)?;
    let size = c.arg(3);
    if size > XATTR_SIZE_MAX {
        return err(libc::E2BIG);
    }
    let mut value = vec![0u8; size as usize];
    if size > 0 {
        c.read(c.arg(2), &mut value)?;
    }
    let t = target(c, libc::AT_FDCWD, &p, follow)?;
    c.gofer().setxattr(t, &name, &value, c.int(4) as u32)?;
    ok(0)
}

pub(crate) fn listxattr(c: &mut Call<'_>, follow: bool) -> Res {
    let p = c.path_arg(0)?;
    let (buf, size) = (c.arg(1), c.arg(2).min(XATTR_SIZE_MAX));
    let t = target(c, libc::AT_FDCWD, &p, follow)?;
    let d = c.gofer().listxattr(t, size as u32)?;
    xattr_reply(c, d, buf, size)
}

pub(crate) fn removexattr(c: &mut Call<'_>, follow: bool) -> Res {
    let p = c.path_arg(0)?;
    let name = xattr_name(c, 1)?;
    let t = target(c, libc::AT_FDCWD, &p, follow)?;
    c.gofer().removexattr(t, &name)?;
    ok(0)
}

/// Resolve a path argument only to show and check it (exec, chdir, inotify).
pub(crate) fn checked_stat(
    c: &mut Call<'_>,
    dirfd: i32,
    p: &[u8],
    follow: bool,
) -> Result<(Vec<u8>, Stat), Fail> {
    let abs = absolute(c, dirfd, p)?;
    let t = target(c, libc::AT_FDCWD, &abs, follow)?;
    let st = c.gofer().stat(t)?;
    Ok((abs, st))
}
