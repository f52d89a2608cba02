//! The seccomp user-notification platform.
//!
//! How it works: the workload installs the table's BPF filter with
//! SECCOMP_FILTER_FLAG_NEW_LISTENER before `execve` (`filter::install`); rows marked "emulate"
//! return SECCOMP_RET_USER_NOTIF, which stops the calling thread in the kernel and queues a
//! notification on the listener fd. The sentry holds that fd: `receive` is
//! SECCOMP_IOCTL_NOTIF_RECV, `reply` is NOTIF_SEND, fd injection is NOTIF_ADDFD, and memory is
//! read with process_vm_readv followed by NOTIF_ID_VALID.
//!
//! Speed: with SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP (Linux 6.6) the kernel hands the CPU straight
//! from the workload thread to the receiving sentry thread and back, which is the 3.5–6 µs round
//! trip; without it each direction is an ordinary wakeup (40–70 µs measured here). To keep that
//! benefit every worker thread blocks in NOTIF_RECV itself (the kernel semaphore wakes exactly
//! one of them, no herd), and the thread that received an event is the one that answers it; no
//! hand-off to another thread is on the hot path.
//!
//! Ending: NOTIF_RECV does not return when the last workload process exits (only poll reports
//! POLLHUP). `watch_hangup` polls for that and calls `shutdown`, which interrupts blocked
//! receivers with SIGUSR2 (a no-op handler installed without SA_RESTART). The sentry process
//! must therefore not use SIGUSR2 for anything else.
//!
//! Locks: `receivers` is the only lock; it is never held across a blocking call.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, Once};
use std::time::Duration;

use crate::platform::{AccessError, FdInjection, Platform, Reply, SyscallEvent};

/// SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP (uapi seccomp.h, Linux 6.6).
const SYNC_WAKE_UP: u64 = 1;

/// A listener fd and the threads currently waiting on it.
pub struct SeccompNotify {
    listener: OwnedFd,
    sync_wake_up: bool,
    stopping: AtomicBool,
    receivers: Mutex<Vec<libc::pthread_t>>,
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
        install_wakeup_handler();
        SeccompNotify {
            listener,
            sync_wake_up: rc == 0,
            stopping: AtomicBool::new(false),
            receivers: Mutex::new(Vec::new()),
        }
    }

    /// Like `new` but leaves SYNC_WAKE_UP off (benchmarks, and kernels where it misbehaves).
    pub fn new_without_sync_wake_up(listener: OwnedFd) -> SeccompNotify {
        install_wakeup_handler();
        SeccompNotify {
            listener,
            sync_wake_up: false,
            stopping: AtomicBool::new(false),
            receivers: Mutex::new(Vec::new()),
        }
    }

    /// Whether SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP is on (kernel >= 6.6).
    pub fn sync_wake_up(&self) -> bool {
        self.sync_wake_up
    }

    /// Block until every process holding the filter is gone (POLLHUP on the listener), then
    /// `shutdown`. Run it on its own thread. Polling with no requested events means this
    /// thread is woken only by the hangup, never by ordinary notifications.
    pub fn watch_hangup(&self) {
        loop {
            let mut pfd = libc::pollfd {
                fd: self.listener.as_raw_fd(),
                events: 0,
                revents: 0,
            };
            // SAFETY: one valid pollfd, count 1.
            let rc = unsafe { libc::poll(&mut pfd, 1, 200) };
            if self.stopping.load(Ordering::SeqCst) {
                break;
            }
            if rc > 0 && pfd.revents & (libc::POLLHUP | libc::POLLERR | libc::POLLNVAL) != 0 {
                break;
            }
        }
        self.shutdown();
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

    fn register(&self) {
        // SAFETY: pthread_self has no preconditions.
        let me = unsafe { libc::pthread_self() };
        self.receivers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(me);
    }

    fn deregister(&self) {
        // SAFETY: pthread_self has no preconditions.
        let me = unsafe { libc::pthread_self() };
        let mut r = self.receivers.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(i) = r.iter().position(|t| *t == me) {
            r.swap_remove(i);
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
        // Register before checking `stopping`: `shutdown` keeps signalling registered threads
        // until they leave, so a thread cannot slip into the ioctl unnoticed.
        self.register();
        let out = loop {
            if self.stopping.load(Ordering::SeqCst) {
                break Ok(None);
            }
            match self.recv_once() {
                Ok(n) => {
                    break Ok(Some(SyscallEvent {
                        id: n.id,
                        tid: n.pid as i32,
                        nr: n.data.nr as i64,
                        arch: n.data.arch,
                        ip: n.data.instruction_pointer,
                        args: n.data.args,
                    }))
                }
                // EINTR: our wakeup signal (or another); ENOENT: the caller died or was
                // interrupted between queueing and our receive. Both: look again.
                Err(e) if matches!(e.raw_os_error(), Some(libc::EINTR) | Some(libc::ENOENT)) => {}
                Err(e) => break Err(AccessError::Io(e)),
            }
        };
        self.deregister();
        out
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
        // A receiver may be between its `stopping` check and the ioctl when the signal lands;
        // keep signalling until every registered receiver has left.
        loop {
            {
                let r = self.receivers.lock().unwrap_or_else(|p| p.into_inner());
                if r.is_empty() {
                    break;
                }
                for t in r.iter() {
                    // SAFETY: every registered pthread_t is a live thread: it deregisters
                    // before returning from `receive`, under this same lock.
                    unsafe { libc::pthread_kill(*t, libc::SIGUSR2) };
                }
            }
            std::thread::sleep(Duration::from_millis(2));
        }
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

extern "C" fn wakeup_handler(_: libc::c_int) {}

/// SIGUSR2 with a no-op handler and no SA_RESTART: interrupts NOTIF_RECV with EINTR.
fn install_wakeup_handler() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // SAFETY: sigaction is plain data; zeroed is a valid empty mask and no flags.
        let mut sa: libc::sigaction = unsafe { std::mem::zeroed() };
        sa.sa_sigaction = wakeup_handler as *const () as usize;
        // SAFETY: installs an async-signal-safe (empty) handler; `sa` is valid for the call.
        unsafe {
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(libc::SIGUSR2, &sa, std::ptr::null_mut());
        }
    });
}
