//! Emulation of intercepted syscalls, by subsystem: `fs` (paths, through the gofer), `exec`
//! (execve/chdir: checked, then continued), `identity` (uname, sysinfo). `path` turns the
//! workload's (dirfd, path) pairs into container paths.

mod exec;
mod fs;
mod identity;
mod path;
mod procfs;
mod structs;

use std::io;
use std::os::fd::OwnedFd;

use crate::platform::{read_cstring, AccessError, Platform, Reply, SyscallEvent};
use crate::sentry::{Lead, Sentry};
use crate::table::{self, Action, Emu};

/// What an emulation decided.
pub(crate) enum Outcome {
    Reply(Reply),
    /// Install this fd in the workload and return its number.
    Fd {
        fd: OwnedFd,
        cloexec: bool,
    },
}

/// Why an emulation did not produce an outcome.
#[derive(Debug)]
pub(crate) enum Fail {
    /// Answer with this errno.
    Errno(i32),
    /// The thread is gone: answer nothing.
    Gone,
}

pub(crate) type Res = Result<Outcome, Fail>;

impl From<AccessError> for Fail {
    fn from(e: AccessError) -> Fail {
        match e {
            AccessError::Gone => Fail::Gone,
            AccessError::Fault => Fail::Errno(libc::EFAULT),
            AccessError::Io(e) => Fail::Errno(e.raw_os_error().unwrap_or(libc::EIO)),
        }
    }
}

impl From<gofer::Error> for Fail {
    fn from(e: gofer::Error) -> Fail {
        Fail::Errno(e.errno())
    }
}

impl From<io::Error> for Fail {
    fn from(e: io::Error) -> Fail {
        Fail::Errno(e.raw_os_error().unwrap_or(libc::EIO))
    }
}

pub(crate) fn ok(v: i64) -> Res {
    Ok(Outcome::Reply(Reply::Value(v)))
}

pub(crate) fn err(e: i32) -> Res {
    Err(Fail::Errno(e))
}

/// One intercepted syscall being emulated.
pub(crate) struct Call<'a> {
    pub s: &'a Sentry,
    pub p: &'a dyn Platform,
    pub ev: SyscallEvent,
    /// Decoded arguments for strace: (index, text).
    pub shown: Vec<(usize, String)>,
    lead: &'a Lead<'a>,
}

/// What was answered, for strace.
pub(crate) enum Answered {
    Value(i64),
    Errno(i32),
    Continue,
    Gone,
}

impl<'a> Call<'a> {
    pub fn new(
        s: &'a Sentry,
        p: &'a dyn Platform,
        ev: SyscallEvent,
        lead: &'a Lead<'a>,
    ) -> Call<'a> {
        Call {
            s,
            p,
            ev,
            shown: Vec::new(),
            lead,
        }
    }

    /// The gofer client. A gofer call is a blocking round trip, so the worker first hands the
    /// lead to another thread (see `sentry.rs`).
    pub fn gofer(&self) -> &'a gofer::client::Client {
        self.lead.release();
        &self.s.gofer
    }

    pub fn arg(&self, i: usize) -> u64 {
        self.ev.args[i]
    }

    /// Argument as the C `int` the kernel sees (fd, flags, mode).
    pub fn int(&self, i: usize) -> i32 {
        self.ev.args[i] as u32 as i32
    }

    /// Read a path argument (max PATH_MAX) and remember it for strace.
    pub fn path_arg(&mut self, i: usize) -> Result<Vec<u8>, Fail> {
        let p = read_cstring(self.p, &self.ev, self.arg(i), libc::PATH_MAX as usize)?;
        self.shown
            .push((i, format!("{:?}", String::from_utf8_lossy(&p))));
        Ok(p)
    }

    pub fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), Fail> {
        let n = self.p.read_memory(&self.ev, addr, buf)?;
        if n < buf.len() {
            return Err(Fail::Errno(libc::EFAULT));
        }
        Ok(())
    }

    pub fn write(&self, addr: u64, data: &[u8]) -> Result<(), Fail> {
        if addr == 0 {
            return Err(Fail::Errno(libc::EFAULT));
        }
        Ok(self.p.write_memory(&self.ev, addr, data)?)
    }

    /// Send the answer; returns what was answered.
    pub fn finish(&mut self, r: Res) -> Answered {
        let (reply, answered) = match r {
            Ok(Outcome::Reply(Reply::Value(v))) => (Reply::Value(v), Answered::Value(v)),
            Ok(Outcome::Reply(Reply::Error(e))) | Err(Fail::Errno(e)) => {
                (Reply::Error(e), Answered::Errno(e))
            }
            Ok(Outcome::Reply(Reply::Continue)) => (Reply::Continue, Answered::Continue),
            Ok(Outcome::Fd { fd, cloexec }) => {
                return match self.p.fd_injection() {
                    Some(inj) => {
                        match inj.reply_with_fd(&self.ev, std::os::fd::AsFd::as_fd(&fd), cloexec) {
                            Ok(n) => Answered::Value(n as i64),
                            Err(AccessError::Gone) => Answered::Gone,
                            Err(e) => {
                                let errno = Fail::from(e);
                                let e = match errno {
                                    Fail::Errno(e) => e,
                                    Fail::Gone => return Answered::Gone,
                                };
                                let _ = self.p.reply(&self.ev, Reply::Error(e));
                                Answered::Errno(e)
                            }
                        }
                    }
                    // A platform without fd injection cannot emulate opens.
                    None => {
                        let _ = self.p.reply(&self.ev, Reply::Error(libc::ENOSYS));
                        Answered::Errno(libc::ENOSYS)
                    }
                };
            }
            Err(Fail::Gone) => return Answered::Gone,
        };
        match self.p.reply(&self.ev, reply) {
            Ok(true) => answered,
            _ => Answered::Gone,
        }
    }
}

/// Route an event to its emulation by the table row; calls the table does not mark as
/// emulated never reach here unless the filter and table disagree, and get ENOSYS.
pub(crate) fn dispatch(c: &mut Call<'_>) -> Res {
    let emu = match table::lookup(c.ev.nr).map(|r| r.action) {
        Some(Action::Emulate(e)) => e,
        _ => return err(libc::ENOSYS),
    };
    match emu {
        Emu::Uname => identity::uname(c),
        Emu::Sysinfo => identity::sysinfo(c),
        Emu::Getcwd => fs::getcwd(c),
        Emu::Chdir => exec::chdir(c),
        Emu::Fchdir => exec::fchdir(c),
        Emu::Execve => exec::execve(c, libc::AT_FDCWD, 0, 0),
        Emu::ExecveAt => exec::execve(c, c.int(0), 1, c.int(4)),
        Emu::InotifyAddWatch => exec::inotify_add_watch(c),
        Emu::Open => fs::open(c, libc::AT_FDCWD, 0, c.int(1), c.int(2) as u32),
        Emu::OpenAt => fs::open(c, c.int(0), 1, c.int(2), c.int(3) as u32),
        Emu::Creat => fs::open(
            c,
            libc::AT_FDCWD,
            0,
            libc::O_CREAT | libc::O_WRONLY | libc::O_TRUNC,
            c.int(1) as u32,
        ),
        Emu::OpenAt2 => fs::openat2(c),
        Emu::Stat => fs::stat(c, libc::AT_FDCWD, 0, 1, 0),
        Emu::Lstat => fs::stat(c, libc::AT_FDCWD, 0, 1, libc::AT_SYMLINK_NOFOLLOW),
        Emu::NewFstatAt => fs::stat(c, c.int(0), 1, 2, c.int(3)),
        Emu::Statx => fs::statx(c),
        Emu::Access => fs::access(c, libc::AT_FDCWD, 0, c.int(1), 0),
        Emu::FAccessAt => fs::access(c, c.int(0), 1, c.int(2), 0),
        Emu::FAccessAt2 => fs::access(c, c.int(0), 1, c.int(2), c.int(3)),
        Emu::Readlink => fs::readlink(c, libc::AT_FDCWD, 0),
        Emu::ReadlinkAt => fs::readlink(c, c.int(0), 1),
        Emu::Mkdir => fs::mkdir(c, libc::AT_FDCWD, 0, c.int(1) as u32),
        Emu::MkdirAt => fs::mkdir(c, c.int(0), 1, c.int(2) as u32),
        Emu::Mknod => fs::mknod(c, libc::AT_FDCWD, 0, c.int(1) as u32, c.arg(2)),
        Emu::MknodAt => fs::mknod(c, c.int(0), 1, c.int(2) as u32, c.arg(3)),
        Emu::Unlink => fs::unlink(c, libc::AT_FDCWD, 0, 0),
        Emu::UnlinkAt => fs::unlink(c, c.int(0), 1, c.int(2)),
        Emu::Rmdir => fs::unlink(c, libc::AT_FDCWD, 0, libc::AT_REMOVEDIR),
        Emu::Rename => fs::rename(c, [libc::AT_FDCWD, libc::AT_FDCWD], [0, 1], 0),
        Emu::RenameAt => fs::rename(c, [c.int(0), c.int(2)], [1, 3], 0),
        Emu::RenameAt2 => fs::rename(c, [c.int(0), c.int(2)], [1, 3], c.int(4) as u32),
        Emu::Link => fs::link(c, [libc::AT_FDCWD, libc::AT_FDCWD], [0, 1], 0),
        Emu::LinkAt => fs::link(c, [c.int(0), c.int(2)], [1, 3], c.int(4)),
        Emu::Symlink => fs::symlink(c, libc::AT_FDCWD, 0, 1),
        Emu::SymlinkAt => fs::symlink(c, c.int(1), 0, 2),
        Emu::Chmod => fs::chmod(c, libc::AT_FDCWD, 0, c.int(1) as u32, 0),
        Emu::FchmodAt => fs::chmod(c, c.int(0), 1, c.int(2) as u32, 0),
        Emu::FchmodAt2 => fs::chmod(c, c.int(0), 1, c.int(2) as u32, c.int(3)),
        Emu::Chown => fs::chown(c, libc::AT_FDCWD, 0, 1, 0),
        Emu::Lchown => fs::chown(c, libc::AT_FDCWD, 0, 1, libc::AT_SYMLINK_NOFOLLOW),
        Emu::FchownAt => fs::chown(c, c.int(0), 1, 2, c.int(4)),
        Emu::Utime => fs::utime(c),
        Emu::Utimes => fs::utimes(c, libc::AT_FDCWD, 0, 1),
        Emu::FutimesAt => fs::utimes(c, c.int(0), 1, 2),
        Emu::UtimensAt => fs::utimensat(c),
        Emu::Truncate => fs::truncate(c),
        Emu::Statfs => fs::statfs(c),
        Emu::GetXattr => fs::getxattr(c, true),
        Emu::LGetXattr => fs::getxattr(c, false),
        Emu::SetXattr => fs::setxattr(c, true),
        Emu::LSetXattr => fs::setxattr(c, false),
        Emu::ListXattr => fs::listxattr(c, true),
        Emu::LListXattr => fs::listxattr(c, false),
        Emu::RemoveXattr => fs::removexattr(c, true),
        Emu::LRemoveXattr => fs::removexattr(c, false),
    }
}
