//! What masked paths look like (OCI: a file masked by binding /dev/null over it, a directory
//! by a read-only empty tmpfs).
//!
//! The gofer opens both sources once per process, before it confines itself (after Landlock
//! it could not open /dev/null, and after dropping CAP_SYS_ADMIN it could not make a mount):
//! * `/dev/null`, opened read-write, checked to really be the 1:3 character device, and
//!   handed out (dup'ed) for every open of a masked file;
//! * a *detached* read-only tmpfs (`fsopen` + `fsmount`, never attached to any path, gone
//!   when the process exits), re-opened for every open of a masked directory.
//!
//! If a source cannot be had (no /dev/null, no CAP_SYS_ADMIN), opening a masked object fails
//! with EACCES instead; stat and readdir still show the masked view.

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::sync::{Arc, OnceLock};

use crate::protocol::Stat;
use crate::sys;

pub struct Sources {
    pub null: Option<(OwnedFd, Stat)>,
    pub empty_dir: Option<(OwnedFd, Stat)>,
}

static SOURCES: OnceLock<Arc<Sources>> = OnceLock::new();

/// The process-wide sources, opened on first use.
pub fn sources() -> Arc<Sources> {
    SOURCES
        .get_or_init(|| {
            Arc::new(Sources {
                null: open_null().ok(),
                empty_dir: empty_tmpfs().ok(),
            })
        })
        .clone()
}

fn open_null() -> io::Result<(OwnedFd, Stat)> {
    let fd = sys::openat(
        // SAFETY: AT_FDCWD is a valid "directory fd" for openat with an absolute path.
        unsafe { std::os::fd::BorrowedFd::borrow_raw(libc::AT_FDCWD) },
        c"/dev/null",
        libc::O_RDWR | libc::O_NOCTTY,
    )?;
    let st = sys::fstat(fd.as_fd())?;
    if st.file_type() != libc::S_IFCHR || st.rdev != libc::makedev(1, 3) {
        return Err(io::Error::from_raw_os_error(libc::ENODEV));
    }
    Ok((fd, st))
}

fn fsconfig_str(fs: &OwnedFd, key: &CStr, value: &CStr) -> io::Result<()> {
    const FSCONFIG_SET_STRING: libc::c_uint = 1;
    // SAFETY: key and value are valid C strings; fs is an fs context fd.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fs.as_raw_fd(),
            FSCONFIG_SET_STRING,
            key.as_ptr(),
            value.as_ptr(),
            0,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// A detached, read-only, empty tmpfs: needs CAP_SYS_ADMIN over the mount namespace.
fn empty_tmpfs() -> io::Result<(OwnedFd, Stat)> {
    const FSOPEN_CLOEXEC: libc::c_uint = 1;
    const FSCONFIG_CMD_CREATE: libc::c_uint = 6;
    const FSMOUNT_CLOEXEC: libc::c_uint = 1;
    const MOUNT_ATTR_RDONLY: libc::c_uint = 0x1;
    const MOUNT_ATTR_NOSUID: libc::c_uint = 0x2;
    const MOUNT_ATTR_NODEV: libc::c_uint = 0x4;
    const MOUNT_ATTR_NOEXEC: libc::c_uint = 0x8;
    // SAFETY: valid C string; the kernel returns a new fd or -1.
    let fs = unsafe { libc::syscall(libc::SYS_fsopen, c"tmpfs".as_ptr(), FSOPEN_CLOEXEC) };
    if fs < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a new fd that nothing else owns.
    let fs = unsafe { OwnedFd::from_raw_fd(fs as i32) };
    fsconfig_str(&fs, c"mode", c"0555")?;
    fsconfig_str(&fs, c"size", c"4k")?;
    fsconfig_str(&fs, c"nr_inodes", c"1")?;
    // SAFETY: plain syscall on the fs context fd.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fs.as_raw_fd(),
            FSCONFIG_CMD_CREATE,
            std::ptr::null::<libc::c_char>(),
            std::ptr::null::<libc::c_void>(),
            0,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    let attrs = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC;
    // SAFETY: plain syscall on the fs context fd; returns a new fd or -1.
    let m = unsafe { libc::syscall(libc::SYS_fsmount, fs.as_raw_fd(), FSMOUNT_CLOEXEC, attrs) };
    if m < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a new fd that nothing else owns.
    let m = unsafe { OwnedFd::from_raw_fd(m as i32) };
    let st = sys::fstat(m.as_fd())?;
    Ok((m, st))
}

impl Sources {
    /// What stat shows for a masked file.
    pub fn file_stat(&self, real: &Stat) -> Stat {
        match &self.null {
            Some((_, st)) => *st,
            None => Stat {
                mode: libc::S_IFCHR | 0o666,
                rdev: libc::makedev(1, 3),
                size: 0,
                blocks: 0,
                nlink: 1,
                uid: 0,
                gid: 0,
                ..*real
            },
        }
    }

    /// What stat shows for a masked directory.
    pub fn dir_stat(&self, real: &Stat) -> Stat {
        match &self.empty_dir {
            Some((_, st)) => *st,
            None => Stat {
                mode: libc::S_IFDIR | 0o555,
                nlink: 2,
                size: 40,
                blocks: 0,
                uid: 0,
                gid: 0,
                ..*real
            },
        }
    }
}
