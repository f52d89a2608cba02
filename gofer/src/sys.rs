//! Thin, safe wrappers over the raw system calls the server uses. Each returns `io::Result`
//! and takes names as `&CStr` so no caller can pass an interior NUL.

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use crate::protocol::{Stat, StatFs, Timespec};

const EMPTY: &CStr = c"";

fn cvt(rc: libc::c_long) -> io::Result<libc::c_long> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

fn cvt_int(rc: libc::c_int) -> io::Result<libc::c_int> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

/// Retry a call interrupted by a signal.
fn retry<T>(mut f: impl FnMut() -> io::Result<T>) -> io::Result<T> {
    loop {
        match f() {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            r => return r,
        }
    }
}

/// `openat2(2)`. `O_CLOEXEC` is always added.
pub fn openat2(
    dir: BorrowedFd<'_>,
    path: &CStr,
    flags: i32,
    mode: u32,
    resolve: u64,
) -> io::Result<OwnedFd> {
    let mut how: libc::open_how = {
        // SAFETY: open_how is a plain C struct; all-zero is its documented default.
        unsafe { std::mem::zeroed() }
    };
    how.flags = (flags | libc::O_CLOEXEC) as u64;
    how.mode = if flags & (libc::O_CREAT | libc::O_TMPFILE) != 0 {
        mode as u64
    } else {
        0
    };
    how.resolve = resolve;
    let fd = retry(|| {
        // SAFETY: path is a valid C string and how a valid open_how of the size passed.
        cvt(unsafe {
            libc::syscall(
                libc::SYS_openat2,
                dir.as_raw_fd(),
                path.as_ptr(),
                &how as *const libc::open_how,
                std::mem::size_of::<libc::open_how>(),
            )
        })
    })?;
    // SAFETY: the kernel returned a new fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// `openat(2)` (used only with "." on a directory fd we already hold).
pub fn openat(dir: BorrowedFd<'_>, path: &CStr, flags: i32) -> io::Result<OwnedFd> {
    let fd = retry(|| {
        // SAFETY: path is a valid C string.
        cvt_int(unsafe { libc::openat(dir.as_raw_fd(), path.as_ptr(), flags | libc::O_CLOEXEC) })
    })?;
    // SAFETY: the kernel returned a new fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// A close-on-exec duplicate.
pub fn dup(fd: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    fd.try_clone_to_owned()
}

fn time(t: libc::statx_timestamp) -> Timespec {
    Timespec {
        sec: t.tv_sec,
        nsec: t.tv_nsec,
    }
}

/// `statx(fd, "", AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW)`: the attributes of exactly the object
/// `fd` refers to (works on O_PATH fds, symlinks included).
pub fn fstat(fd: BorrowedFd<'_>) -> io::Result<Stat> {
    // SAFETY: statx is a plain C struct the kernel fills in.
    let mut st: libc::statx = unsafe { std::mem::zeroed() };
    retry(|| {
        // SAFETY: valid fd, empty C string, and a statx buffer of the right type.
        cvt_int(unsafe {
            libc::statx(
                fd.as_raw_fd(),
                EMPTY.as_ptr(),
                libc::AT_EMPTY_PATH | libc::AT_SYMLINK_NOFOLLOW | libc::AT_STATX_SYNC_AS_STAT,
                libc::STATX_BASIC_STATS | libc::STATX_BTIME | libc::STATX_MNT_ID,
                &mut st,
            )
        })
    })?;
    Ok(Stat {
        mask: st.stx_mask,
        mode: st.stx_mode as u32,
        nlink: st.stx_nlink,
        uid: st.stx_uid,
        gid: st.stx_gid,
        blksize: st.stx_blksize,
        attributes: st.stx_attributes,
        ino: st.stx_ino,
        size: st.stx_size,
        blocks: st.stx_blocks,
        dev: libc::makedev(st.stx_dev_major, st.stx_dev_minor),
        rdev: libc::makedev(st.stx_rdev_major, st.stx_rdev_minor),
        atime: time(st.stx_atime),
        btime: time(st.stx_btime),
        ctime: time(st.stx_ctime),
        mtime: time(st.stx_mtime),
        mnt_id: st.stx_mnt_id,
    })
}

/// The target of the symlink `fd` (an O_PATH|O_NOFOLLOW fd) refers to.
pub fn readlink_fd(fd: BorrowedFd<'_>) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; libc::PATH_MAX as usize + 1];
    let n = retry(|| {
        // SAFETY: buf is writable for buf.len() bytes.
        cvt(unsafe {
            libc::readlinkat(
                fd.as_raw_fd(),
                EMPTY.as_ptr(),
                buf.as_mut_ptr() as *mut libc::c_char,
                buf.len(),
            ) as libc::c_long
        })
    })? as usize;
    if n >= buf.len() {
        return Err(io::Error::from_raw_os_error(libc::ENAMETOOLONG));
    }
    buf.truncate(n);
    Ok(buf)
}

pub fn fstatfs(fd: BorrowedFd<'_>) -> io::Result<StatFs> {
    // SAFETY: statfs is a plain C struct the kernel fills in.
    let mut s: libc::statfs64 = unsafe { std::mem::zeroed() };
    // SAFETY: valid fd and a statfs buffer of the right type.
    retry(|| cvt_int(unsafe { libc::fstatfs64(fd.as_raw_fd(), &mut s) }))?;
    Ok(StatFs {
        fs_type: s.f_type as u64,
        bsize: s.f_bsize as u64,
        blocks: s.f_blocks,
        bfree: s.f_bfree,
        bavail: s.f_bavail,
        files: s.f_files,
        ffree: s.f_ffree,
        namelen: s.f_namelen as u64,
        frsize: s.f_frsize as u64,
        flags: s.f_flags as u64,
    })
}

pub fn mkdirat(dir: BorrowedFd<'_>, name: &CStr, mode: u32) -> io::Result<()> {
    // SAFETY: name is a valid C string.
    retry(|| cvt_int(unsafe { libc::mkdirat(dir.as_raw_fd(), name.as_ptr(), mode) })).map(drop)
}

pub fn mknodat(dir: BorrowedFd<'_>, name: &CStr, mode: u32, rdev: u64) -> io::Result<()> {
    // SAFETY: name is a valid C string.
    retry(|| cvt_int(unsafe { libc::mknodat(dir.as_raw_fd(), name.as_ptr(), mode, rdev) }))
        .map(drop)
}

pub fn symlinkat(target: &CStr, dir: BorrowedFd<'_>, name: &CStr) -> io::Result<()> {
    // SAFETY: both are valid C strings.
    retry(|| cvt_int(unsafe { libc::symlinkat(target.as_ptr(), dir.as_raw_fd(), name.as_ptr()) }))
        .map(drop)
}

/// `linkat` without AT_SYMLINK_FOLLOW: links the directory entry itself.
pub fn linkat(
    old_dir: BorrowedFd<'_>,
    old: &CStr,
    new_dir: BorrowedFd<'_>,
    new: &CStr,
) -> io::Result<()> {
    retry(|| {
        // SAFETY: both names are valid C strings.
        cvt_int(unsafe {
            libc::linkat(
                old_dir.as_raw_fd(),
                old.as_ptr(),
                new_dir.as_raw_fd(),
                new.as_ptr(),
                0,
            )
        })
    })
    .map(drop)
}

pub fn unlinkat(dir: BorrowedFd<'_>, name: &CStr, flags: i32) -> io::Result<()> {
    // SAFETY: name is a valid C string.
    retry(|| cvt_int(unsafe { libc::unlinkat(dir.as_raw_fd(), name.as_ptr(), flags) })).map(drop)
}

pub fn renameat2(
    old_dir: BorrowedFd<'_>,
    old: &CStr,
    new_dir: BorrowedFd<'_>,
    new: &CStr,
    flags: u32,
) -> io::Result<()> {
    retry(|| {
        // SAFETY: both names are valid C strings.
        cvt_int(unsafe {
            libc::renameat2(
                old_dir.as_raw_fd(),
                old.as_ptr(),
                new_dir.as_raw_fd(),
                new.as_ptr(),
                flags,
            )
        })
    })
    .map(drop)
}

/// chmod of exactly the object `fd` (O_PATH) refers to, via fchmodat2(AT_EMPTY_PATH).
pub fn fchmod_path_fd(fd: BorrowedFd<'_>, mode: u32) -> io::Result<()> {
    retry(|| {
        // SAFETY: empty C string with AT_EMPTY_PATH: the call acts on fd itself.
        cvt(unsafe {
            libc::syscall(
                libc::SYS_fchmodat2,
                fd.as_raw_fd(),
                EMPTY.as_ptr(),
                mode,
                libc::AT_EMPTY_PATH,
            )
        })
    })
    .map(drop)
}

/// chown of exactly the object `fd` (O_PATH) refers to.
pub fn fchown_path_fd(fd: BorrowedFd<'_>, uid: u32, gid: u32) -> io::Result<()> {
    retry(|| {
        // SAFETY: empty C string with AT_EMPTY_PATH: the call acts on fd itself.
        cvt_int(unsafe {
            libc::fchownat(
                fd.as_raw_fd(),
                EMPTY.as_ptr(),
                uid,
                gid,
                libc::AT_EMPTY_PATH,
            )
        })
    })
    .map(drop)
}

/// utimensat on exactly the object `fd` (O_PATH) refers to.
pub fn futimens_path_fd(fd: BorrowedFd<'_>, times: &[libc::timespec; 2]) -> io::Result<()> {
    retry(|| {
        // SAFETY: times points to two timespecs; empty path with AT_EMPTY_PATH acts on fd.
        cvt_int(unsafe {
            libc::utimensat(
                fd.as_raw_fd(),
                EMPTY.as_ptr(),
                times.as_ptr(),
                libc::AT_EMPTY_PATH,
            )
        })
    })
    .map(drop)
}

pub fn ftruncate(fd: BorrowedFd<'_>, size: u64) -> io::Result<()> {
    let size = i64::try_from(size).map_err(|_| io::Error::from_raw_os_error(libc::EFBIG))?;
    // SAFETY: plain syscall on a valid fd.
    retry(|| cvt_int(unsafe { libc::ftruncate(fd.as_raw_fd(), size) })).map(drop)
}

pub fn set_nonblocking(fd: BorrowedFd<'_>, on: bool) -> io::Result<()> {
    // SAFETY: plain fcntl on a valid fd.
    let fl = cvt_int(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) })?;
    let new = if on {
        fl | libc::O_NONBLOCK
    } else {
        fl & !libc::O_NONBLOCK
    };
    // SAFETY: plain fcntl on a valid fd.
    cvt_int(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, new) }).map(drop)
}

pub fn lseek_set(fd: BorrowedFd<'_>, off: u64) -> io::Result<()> {
    let off = i64::try_from(off).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: plain syscall on a valid fd.
    cvt(unsafe { libc::lseek(fd.as_raw_fd(), off, libc::SEEK_SET) }).map(drop)
}

/// One `getdents64` call into `buf`; returns the bytes filled.
pub fn getdents64(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    retry(|| {
        // SAFETY: buf is writable for buf.len() bytes.
        cvt(unsafe {
            libc::syscall(
                libc::SYS_getdents64,
                fd.as_raw_fd(),
                buf.as_mut_ptr(),
                buf.len(),
            )
        })
    })
    .map(|n| n as usize)
}

// The *xattrat family (Linux 6.13). Not yet in the libc crate.
const SYS_SETXATTRAT: libc::c_long = 463;
const SYS_GETXATTRAT: libc::c_long = 464;
const SYS_LISTXATTRAT: libc::c_long = 465;
const SYS_REMOVEXATTRAT: libc::c_long = 466;

#[repr(C)]
struct XattrArgs {
    value: u64,
    size: u32,
    flags: u32,
}

/// The `/proc/self/fd/N` name of an fd: the fallback when *xattrat cannot be used. The
/// kernel jumps through the magic link to exactly the object the fd refers to and does not
/// follow that object further even when it is a symlink, so the following (non-`l`) calls
/// act on it, not on the link in /proc.
fn proc_fd_path(fd: BorrowedFd<'_>) -> std::ffi::CString {
    std::ffi::CString::new(format!("/proc/self/fd/{}", fd.as_raw_fd()))
        .expect("formatted path has no NUL")
}

/// The *xattrat call cannot be used: an old kernel (ENOSYS) or an O_PATH fd, which the
/// AT_EMPTY_PATH form refuses (EBADF).
fn enosys(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENOSYS | libc::EBADF))
}

pub fn getxattr_fd(fd: BorrowedFd<'_>, name: &CStr, buf: &mut [u8]) -> io::Result<usize> {
    let args = XattrArgs {
        value: buf.as_mut_ptr() as u64,
        size: buf.len() as u32,
        flags: 0,
    };
    // SAFETY: args points to buf (writable for size bytes); empty path + AT_EMPTY_PATH acts
    // on fd itself.
    let r = retry(|| {
        cvt(unsafe {
            libc::syscall(
                SYS_GETXATTRAT,
                fd.as_raw_fd(),
                EMPTY.as_ptr(),
                libc::AT_EMPTY_PATH,
                name.as_ptr(),
                &args as *const XattrArgs,
                std::mem::size_of::<XattrArgs>(),
            )
        })
    });
    match r {
        Err(e) if enosys(&e) => {
            let p = proc_fd_path(fd);
            // SAFETY: valid C strings and a writable buffer of buf.len() bytes.
            retry(|| {
                cvt(unsafe {
                    libc::getxattr(
                        p.as_ptr(),
                        name.as_ptr(),
                        buf.as_mut_ptr() as *mut libc::c_void,
                        buf.len(),
                    ) as libc::c_long
                })
            })
            .map(|n| n as usize)
        }
        r => r.map(|n| n as usize),
    }
}

pub fn setxattr_fd(fd: BorrowedFd<'_>, name: &CStr, value: &[u8], flags: u32) -> io::Result<()> {
    let args = XattrArgs {
        value: value.as_ptr() as u64,
        size: value.len() as u32,
        flags,
    };
    // SAFETY: args points to value (readable for size bytes); acts on fd itself.
    let r = retry(|| {
        cvt(unsafe {
            libc::syscall(
                SYS_SETXATTRAT,
                fd.as_raw_fd(),
                EMPTY.as_ptr(),
                libc::AT_EMPTY_PATH,
                name.as_ptr(),
                &args as *const XattrArgs,
                std::mem::size_of::<XattrArgs>(),
            )
        })
    });
    match r {
        Err(e) if enosys(&e) => {
            let p = proc_fd_path(fd);
            // SAFETY: valid C strings and a readable buffer of value.len() bytes.
            retry(|| {
                cvt_int(unsafe {
                    libc::setxattr(
                        p.as_ptr(),
                        name.as_ptr(),
                        value.as_ptr() as *const libc::c_void,
                        value.len(),
                        flags as i32,
                    )
                })
            })
            .map(drop)
        }
        r => r.map(drop),
    }
}

pub fn listxattr_fd(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: buf writable for buf.len() bytes; acts on fd itself.
    let r = retry(|| {
        cvt(unsafe {
            libc::syscall(
                SYS_LISTXATTRAT,
                fd.as_raw_fd(),
                EMPTY.as_ptr(),
                libc::AT_EMPTY_PATH,
                buf.as_mut_ptr(),
                buf.len(),
            )
        })
    });
    match r {
        Err(e) if enosys(&e) => {
            let p = proc_fd_path(fd);
            // SAFETY: valid C string and a writable buffer of buf.len() bytes.
            retry(|| {
                cvt(unsafe {
                    libc::listxattr(p.as_ptr(), buf.as_mut_ptr() as *mut libc::c_char, buf.len())
                        as libc::c_long
                })
            })
            .map(|n| n as usize)
        }
        r => r.map(|n| n as usize),
    }
}

pub fn removexattr_fd(fd: BorrowedFd<'_>, name: &CStr) -> io::Result<()> {
    // SAFETY: valid C strings; acts on fd itself.
    let r = retry(|| {
        cvt(unsafe {
            libc::syscall(
                SYS_REMOVEXATTRAT,
                fd.as_raw_fd(),
                EMPTY.as_ptr(),
                libc::AT_EMPTY_PATH,
                name.as_ptr(),
            )
        })
    });
    match r {
        Err(e) if enosys(&e) => {
            let p = proc_fd_path(fd);
            // SAFETY: valid C strings.
            retry(|| cvt_int(unsafe { libc::removexattr(p.as_ptr(), name.as_ptr()) })).map(drop)
        }
        r => r.map(drop),
    }
}

/// Syscall numbers the server and its helpers use; the seccomp allowlist is built from this.
pub const SERVER_SYSCALLS: &[libc::c_long] = &[
    libc::SYS_openat2,
    libc::SYS_openat,
    libc::SYS_statx,
    libc::SYS_newfstatat,
    libc::SYS_fstat,
    libc::SYS_readlinkat,
    libc::SYS_fstatfs,
    libc::SYS_mkdirat,
    libc::SYS_mknodat,
    libc::SYS_symlinkat,
    libc::SYS_linkat,
    libc::SYS_unlinkat,
    libc::SYS_renameat2,
    // glibc's renameat2() issues renameat when flags are 0.
    libc::SYS_renameat,
    libc::SYS_fchmodat2,
    libc::SYS_fchmodat,
    libc::SYS_fchownat,
    libc::SYS_fchown,
    libc::SYS_utimensat,
    libc::SYS_ftruncate,
    libc::SYS_fcntl,
    libc::SYS_lseek,
    libc::SYS_getdents64,
    SYS_SETXATTRAT,
    SYS_GETXATTRAT,
    SYS_LISTXATTRAT,
    SYS_REMOVEXATTRAT,
    libc::SYS_setxattr,
    libc::SYS_getxattr,
    libc::SYS_listxattr,
    libc::SYS_removexattr,
    libc::SYS_close,
    libc::SYS_recvmsg,
    libc::SYS_sendmsg,
    // Logging, allocation, threads and runtime housekeeping of Rust std.
    libc::SYS_write,
    libc::SYS_writev,
    libc::SYS_read,
    libc::SYS_brk,
    libc::SYS_mmap,
    libc::SYS_munmap,
    libc::SYS_mremap,
    libc::SYS_madvise,
    libc::SYS_mprotect,
    libc::SYS_futex,
    libc::SYS_sched_yield,
    libc::SYS_clock_gettime,
    libc::SYS_getrandom,
    libc::SYS_getpid,
    libc::SYS_gettid,
    libc::SYS_rt_sigreturn,
    libc::SYS_rt_sigprocmask,
    libc::SYS_sigaltstack,
    libc::SYS_restart_syscall,
    libc::SYS_exit,
    libc::SYS_exit_group,
];
