//! The `Platform` trait: the only thing that differs between interception mechanisms.
//!
//! A platform delivers "thread T made syscall N with args A" and applies one answer to it. It
//! knows nothing about what syscalls mean: the syscall table and the emulation code do.
//!
//! Contract (every implementation must keep all of it):
//!
//! * **Delivery.** `receive` blocks until one intercepted syscall is pending and hands it to
//!   exactly one caller. Several threads may call `receive` at once; each event goes to one of
//!   them (a platform may wake them all, and one may then stay blocked until the next event even
//!   after `shutdown`: the sentry keeps one receiving thread at a time). While an event is outstanding the thread that made the syscall is stopped inside it.
//! * **One answer.** Every delivered event gets exactly one answer: `reply` (a value, an errno or
//!   `Continue`) or `FdInjection::reply_with_fd`. Answering an event whose thread has died is not
//!   an error the caller must handle specially: it returns `Ok(false)` or `Err(Gone)`.
//! * **Continue.** `Reply::Continue` lets the kernel run the syscall with the registers as they
//!   are *now*. Pointer arguments are re-read by the kernel after the sentry looked at them, so a
//!   `Continue` must never depend on the content of workload memory (see `table::Emu` for the
//!   few calls that use it and why they are sound).
//! * **Memory.** `read_memory` copies from the stopped thread's address space and returns only
//!   after checking that the event is still pending (for seccomp: NOTIF_ID_VALID). A read that
//!   returns `Ok` therefore came from the process that made this syscall, not from a process that
//!   reused its pid. The content may still change under a second thread afterwards: callers act
//!   on their copy, never on the pointer.
//! * **End.** `receive` returns `Ok(None)` once no process can make intercepted syscalls any
//!   more (every holder of the filter has exited), or after `shutdown` was called.
//! * **Threads.** Implementations are `Sync`; all methods may be called from any thread.
//!
//! How a workload comes under a platform is platform specific and happens in the workload's own
//! process before `execve` (seccomp: `filter::install`). A `Platform` value exists only once a
//! workload is under interception.

use std::io;
use std::os::fd::BorrowedFd;

/// One intercepted syscall.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SyscallEvent {
    /// Platform cookie identifying this event (seccomp: the notification id).
    pub id: u64,
    /// Thread id of the caller, in the sentry's pid namespace.
    pub tid: i32,
    pub nr: i64,
    /// AUDIT_ARCH_* of the call (only x86_64 ever reaches the sentry: others are killed in BPF).
    pub arch: u32,
    pub ip: u64,
    pub args: [u64; 6],
}

/// The answer to an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reply {
    /// The syscall returns this value (>= 0).
    Value(i64),
    /// The syscall fails with this errno (positive).
    Error(i32),
    /// The kernel runs the syscall itself (see the contract above).
    Continue,
}

/// Why a memory access or a reply failed.
#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    /// The thread is no longer in the syscall (it died, or was killed): drop the event.
    #[error("the intercepted thread is gone")]
    Gone,
    /// The address is not mapped readable/writable in the workload: answer EFAULT.
    #[error("bad address in the workload")]
    Fault,
    /// Anything else.
    #[error("platform: {0}")]
    Io(#[from] io::Error),
}

/// The interception mechanism. See the module comment for the contract.
pub trait Platform: Send + Sync {
    /// Short name for reports ("seccomp-notify", "ptrace").
    fn name(&self) -> &'static str;

    /// Wait for the next intercepted syscall. `Ok(None)`: the workload is gone or `shutdown`
    /// was called.
    fn receive(&self) -> Result<Option<SyscallEvent>, AccessError>;

    /// Answer an event. `Ok(false)` when the thread was already gone.
    fn reply(&self, ev: &SyscallEvent, reply: Reply) -> Result<bool, AccessError>;

    /// Is the event still pending (the thread still stopped in this syscall)?
    fn is_pending(&self, ev: &SyscallEvent) -> bool;

    /// Copy workload memory at `addr` into `buf`, then check the event is still pending.
    /// Short reads at the end of a mapping copy what they can and return the count.
    fn read_memory(
        &self,
        ev: &SyscallEvent,
        addr: u64,
        buf: &mut [u8],
    ) -> Result<usize, AccessError>;

    /// Copy `data` into workload memory at `addr`; checks the event is pending first.
    fn write_memory(&self, ev: &SyscallEvent, addr: u64, data: &[u8]) -> Result<(), AccessError>;

    /// Make every blocked and future `receive` return `Ok(None)`.
    fn shutdown(&self);

    /// The optional fd-injection capability (`None` when the platform cannot do it).
    fn fd_injection(&self) -> Option<&dyn FdInjection> {
        None
    }
}

/// Optional capability: put a sentry-held fd into the workload's fd table.
pub trait FdInjection {
    /// Install `fd` in the calling thread's process; returns the workload's fd number. The
    /// event stays pending (answer it afterwards).
    fn inject_fd(
        &self,
        ev: &SyscallEvent,
        fd: BorrowedFd<'_>,
        cloexec: bool,
    ) -> Result<i32, AccessError>;

    /// Install `fd` and answer the event with its number in one atomic step, so the workload
    /// never holds an fd it was not told about (seccomp: ADDFD with SECCOMP_ADDFD_FLAG_SEND).
    fn reply_with_fd(
        &self,
        ev: &SyscallEvent,
        fd: BorrowedFd<'_>,
        cloexec: bool,
    ) -> Result<i32, AccessError>;
}

/// Read a NUL-terminated string of at most `max` bytes (without the NUL).
/// Errors: `Fault` for unmapped memory, `Io(ENAMETOOLONG)` when no NUL within `max`.
pub fn read_cstring<P: Platform + ?Sized>(
    p: &P,
    ev: &SyscallEvent,
    addr: u64,
    max: usize,
) -> Result<Vec<u8>, AccessError> {
    if addr == 0 {
        return Err(AccessError::Fault);
    }
    let mut out = Vec::new();
    let mut cur = addr;
    let mut chunk = [0u8; 256];
    while out.len() < max {
        // Never cross a page boundary in one read: the next page may be unmapped even though
        // the string ends before it.
        let to_page_end = 4096 - (cur % 4096) as usize;
        let want = chunk.len().min(to_page_end).min(max - out.len());
        let n = p.read_memory(ev, cur, &mut chunk[..want])?;
        if n == 0 {
            return Err(AccessError::Fault);
        }
        if let Some(z) = chunk[..n].iter().position(|&b| b == 0) {
            out.extend_from_slice(&chunk[..z]);
            return Ok(out);
        }
        out.extend_from_slice(&chunk[..n]);
        cur += n as u64;
    }
    Err(AccessError::Io(io::Error::from_raw_os_error(
        libc::ENAMETOOLONG,
    )))
}
