//! The seccomp user-notification platform.
//!
//! How it works: the workload installs the table's BPF filter with
//! SECCOMP_FILTER_FLAG_NEW_LISTENER before `execve` (`filter::install`); rows marked "emulate"
//! return SECCOMP_RET_USER_NOTIF, which stops the calling thread in the kernel and queues a
//! notification on the listener fd. The sentry holds that fd: `receive` is
//! SECCOMP_IOCTL_NOTIF_RECV, `reply` is NOTIF_SEND, fd injection is NOTIF_ADDFD, and memory is
//! read with process_vm_readv followed by NOTIF_ID_VALID.
//!
//! Speed: with SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP (Linux 6.6) the kernel wakes the sentry
//! thread *polling* the listener on the workload's CPU (WF_CURRENT_CPU) and wakes the workload
//! on the sentry's CPU when answered: the fast round trip. The hint only reaches `poll(2)`
//! waiters (not threads blocked in NOTIF_RECV, which sleep on a semaphore, nor epoll, which
//! drops the flag), so `receive` polls first and then takes the event with NOTIF_RECV. Pollers
//! are woken all at once, so only one thread should be in `receive` at a time: the sentry's
//! worker pool is leader/follower (see `sentry.rs`) and the thread that received an event is
//! the one that answers it.
//!
//! Ending: NOTIF_RECV never returns when the last workload process exits; poll reports
//! POLLHUP, and `receive` then returns `Ok(None)`. `shutdown` wakes pollers through an eventfd.
//!
//! Locks: none. `stopping` is an atomic; the eventfd is written once.

use std::io;
use std::os::fd::FromRawFd;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};

use crate::platform::{AccessError, FdInjection, Platform, Reply, SyscallEvent};

/// SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP (uapi seccomp.h, Linux 6.6).
const SYNC_WAKE_UP: u64 = 1;

/// A listener fd and the threads currently waiting on it.
pub struct SeccompNotify {
    listener: OwnedFd,
    sync_wake_up: bool,
    stopping: AtomicBool,
    /// Written by `shutdown` to wake pollers.
    wake: OwnedFd,
}

fn eventfd() -> OwnedFd {
    // SAFETY: eventfd has no pointer arguments.
    let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
    if fd < 0 {
        // Only ENFILE/EMFILE/ENOMEM: the process cannot go on serving anyway.
        panic!("eventfd: {}", io::Error::last_os_error());
    }
    // SAFETY: fresh fd we own.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

impl SeccompNotify {
    /// Take ownership of a listener fd (from `filter::install`, usually via `fdpass::recv_fd`).
    /// Turns on SYNC_WAKE_UP when the kernel has it; falls back silently otherwise (see
    /// `sync_wake_up()`).
    pub fn new(listener: OwnedFd) -> SeccompNotify {
        let flags: u64 = SYNC_WAKE_UP;
        // SAFETY: NOTIF_SET_FLAGS reads one u64 flag word passed by value; the fd is ours.
        let rc = unsafe {
            libc::ioctl(
                listener.as_raw_fd(),
                libc::SECCOMP_IOCTL_NOTIF_SET_FLAGS as _,
                flags,
            )
        };
        SeccompNotify {
            listener,
            sync_wake_up: rc == 0,
            stopping: AtomicBool::new(false),
            wake: eventfd(),
        }
    }

    /// Like `new` but leaves SYNC_WAKE_UP off (benchmarks, and kernels where it misbehaves).
    pub fn new_without_sync_wake_up(listener: OwnedFd) -> SeccompNotify {
        SeccompNotify {
            listener,
            sync_wake_up: false,
            stopping: AtomicBool::new(false),
            wake: eventfd(),
        }
    }

    /// Whether SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP is on (kernel >= 6.6).
    pub fn sync_wake_up(&self) -> bool {
        self.sync_wake_up
    }

    fn id_valid(&self, id: u64) -> bool {
        let mut id = id;
        // SAFETY: NOTIF_ID_VALID reads one u64 through the pointer, which is valid for the call.
        let rc = unsafe {
            libc::ioctl(
                self.listener.as_raw_fd(),
                libc::SECCOMP_IOCTL_NOTIF_ID_VALID as _,
                &mut id as *mut u64,
            )
        };
        rc == 0
    }

    /// Wait until an event is pending (true) or the workload is gone / shutdown (false).
    fn wait_ready(&self) -> io::Result<bool> {
        loop {
            if self.stopping.load(Ordering::SeqCst) {
                return Ok(false);
            }
            let mut fds = [
                libc::pollfd {
                    fd: self.listener.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                },
                libc::pollfd {
                    fd: self.wake.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                },
            ];
            // SAFETY: two valid pollfds.
            let rc = unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) };
            if rc < 0 {
                let e = io::Error::last_os_error();
                if e.raw_os_error() == Some(libc::EINTR) {
                    continue;
                }
                return Err(e);
            }
            if fds[0].revents & libc::POLLIN != 0 {
                return Ok(true);
            }
            if fds[0].revents & (libc::POLLHUP | libc::POLLERR | libc::POLLNVAL) != 0 {
                // Every holder of the filter is gone.
                self.shutdown();
                return Ok(false);
            }
        }
    }

    fn recv_once(&self) -> io::Result<libc::seccomp_notif> {
        // SAFETY: seccomp_notif is plain old data; all-zero is the state the kernel requires
        // (NOTIF_RECV fails with EINVAL on a non-zeroed buffer).
        let mut n: libc::seccomp_notif = unsafe { std::mem::zeroed() };
        // SAFETY: the kernel writes one seccomp_notif into `n`, which lives across the call.
        let rc = unsafe {
            libc::ioctl(
                self.listener.as_raw_fd(),
                libc::SECCOMP_IOCTL_NOTIF_RECV as _,
                &mut n as *mut libc::seccomp_notif,
            )
        };
        if rc == 0 {
            Ok(n)
        } else {
            Err(io::Error::last_os_error())
        }
    }

    fn addfd(
        &self,
        ev: &SyscallEvent,
        fd: BorrowedFd<'_>,
        cloexec: bool,
        send: bool,
    ) -> io::Result<i32> {
        let a = libc::seccomp_notif_addfd {
            id: ev.id,
            flags: if send {
                libc::SECCOMP_ADDFD_FLAG_SEND as u32
            } else {
                0
            },
            srcfd: fd.as_raw_fd() as u32,
            newfd: 0,
            newfd_flags: if cloexec { libc::O_CLOEXEC as u32 } else { 0 },
        };
        // SAFETY: NOTIF_ADDFD reads one seccomp_notif_addfd from a pointer valid for the call.
        let rc = unsafe {
            libc::ioctl(
                self.listener.as_raw_fd(),
                libc::SECCOMP_IOCTL_NOTIF_ADDFD as _,
                &a as *const libc::seccomp_notif_addfd,
            )
        };
        if rc >= 0 {
            Ok(rc)
        } else {
            Err(io::Error::last_os_error())
        }
    }
}

fn gone_or(e: io::Error) -> AccessError {
    match e.raw_os_error() {
        Some(libc::ENOENT) | Some(libc::ESRCH) => AccessError::Gone,
        _ => AccessError::Io(e),
    }
}

impl Platform for SeccompNotify {
    fn name(&self) -> &'static str {
        "seccomp-notify"
    }

    fn receive(&self) -> Result<Option<SyscallEvent>, AccessError> {
        loop {
            if !self.wait_ready()? {
                return Ok(None);
            }
            match self.recv_once() {
                Ok(n) => {
                    return Ok(Some(SyscallEvent {
                        id: n.id,
                        tid: n.pid as i32,
                        nr: n.data.nr as i64,
                        arch: n.data.arch,
                        ip: n.data.instruction_pointer,
                        args: n.data.args,
                    }))
                }
                // EINTR: a signal; ENOENT: the caller died or was interrupted between queueing
                // and our receive. Both: look again.
                Err(e) if matches!(e.raw_os_error(), Some(libc::EINTR) | Some(libc::ENOENT)) => {}
                Err(e) => return Err(AccessError::Io(e)),
            }
        }
    }

    fn reply(&self, ev: &SyscallEvent, reply: Reply) -> Result<bool, AccessError> {
        let (val, error, flags) = match reply {
            Reply::Value(v) => (v, 0, 0),
            Reply::Error(e) => (0, -e.abs(), 0),
            Reply::Continue => (0, 0, libc::SECCOMP_USER_NOTIF_FLAG_CONTINUE as u32),
        };
        let resp = libc::seccomp_notif_resp {
            id: ev.id,
            val,
            error,
            flags,
        };
        // SAFETY: NOTIF_SEND reads one seccomp_notif_resp from a pointer valid for the call.
        let rc = unsafe {
            libc::ioctl(
                self.listener.as_raw_fd(),
                libc::SECCOMP_IOCTL_NOTIF_SEND as _,
                &resp as *const libc::seccomp_notif_resp,
            )
        };
        if rc == 0 {
            return Ok(true);
        }
        match gone_or(io::Error::last_os_error()) {
            AccessError::Gone => Ok(false),
            e => Err(e),
        }
    }

    fn is_pending(&self, ev: &SyscallEvent) -> bool {
        self.id_valid(ev.id)
    }

    fn read_memory(
        &self,
        ev: &SyscallEvent,
        addr: u64,
        buf: &mut [u8],
    ) -> Result<usize, AccessError> {
        if buf.is_empty() {
            return Ok(0);
        }
        let local = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        let remote = libc::iovec {
            iov_base: addr as *mut libc::c_void,
            iov_len: buf.len(),
        };
        // SAFETY: `local` points into `buf`, which is writable for its length; the remote iovec
        // is only interpreted by the kernel in the target's address space.
        let n = unsafe { libc::process_vm_readv(ev.tid, &local, 1, &remote, 1, 0) };
        let res = if n < 0 {
            let e = io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::EFAULT) => Err(AccessError::Fault),
                _ => Err(gone_or(e)),
            }
        } else {
            Ok(n as usize)
        };
        // TOCTOU: the tid may have died and been reused between the notification and the read.
        // The event still pending proves the thread we read from is the one stopped in it.
        if !self.id_valid(ev.id) {
            return Err(AccessError::Gone);
        }
        res
    }

    fn write_memory(&self, ev: &SyscallEvent, addr: u64, data: &[u8]) -> Result<(), AccessError> {
        if data.is_empty() {
            return Ok(());
        }
        // Check first so we do not write into a process that reused the tid. The residual
        // window (the thread killed by SIGKILL and its tid recycled between this check and the
        // write) needs a full pid wrap-around in microseconds; it is accepted, as in other
        // unotify supervisors.
        if !self.id_valid(ev.id) {
            return Err(AccessError::Gone);
        }
        let local = libc::iovec {
            iov_base: data.as_ptr() as *mut libc::c_void,
            iov_len: data.len(),
        };
        let remote = libc::iovec {
            iov_base: addr as *mut libc::c_void,
            iov_len: data.len(),
        };
        // SAFETY: `local` points into `data`, readable for its length; the kernel only reads it.
        let n = unsafe { libc::process_vm_writev(ev.tid, &local, 1, &remote, 1, 0) };
        if n < 0 {
            let e = io::Error::last_os_error();
            return match e.raw_os_error() {
                Some(libc::EFAULT) => Err(AccessError::Fault),
                _ => Err(gone_or(e)),
            };
        }
        if (n as usize) < data.len() {
            return Err(AccessError::Fault);
        }
        Ok(())
    }

    fn shutdown(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from `one` to our eventfd; pollers see it readable.
        unsafe { libc::write(self.wake.as_raw_fd(), (&one as *const u64).cast(), 8) };
    }

    fn fd_injection(&self) -> Option<&dyn FdInjection> {
        Some(self)
    }
}

impl FdInjection for SeccompNotify {
    fn inject_fd(
        &self,
        ev: &SyscallEvent,
        fd: BorrowedFd<'_>,
        cloexec: bool,
    ) -> Result<i32, AccessError> {
        self.addfd(ev, fd, cloexec, false).map_err(gone_or)
    }

    fn reply_with_fd(
        &self,
        ev: &SyscallEvent,
        fd: BorrowedFd<'_>,
        cloexec: bool,
    ) -> Result<i32, AccessError> {
        match self.addfd(ev, fd, cloexec, true) {
            Ok(n) => Ok(n),
            // ADDFD_FLAG_SEND is Linux 5.14; before it, install then answer (the workload can
            // then briefly hold an fd it was not told about: harmless, it is its own file).
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                let n = self.addfd(ev, fd, cloexec, false).map_err(gone_or)?;
                self.reply(ev, Reply::Value(n as i64))?;
                Ok(n)
            }
            Err(e) => Err(gone_or(e)),
        }
    }
}
