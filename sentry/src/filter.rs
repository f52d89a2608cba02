//! Installing the sentry's filter in the workload process.
//!
//! Call order in the workload (container init or `launch`): set no_new_privs, install any OCI
//! filter, then `install` (or `Program::new` before forking and `install_program` after), send
//! the returned listener fd to the sentry, then `execve`. The `execve` itself is the first
//! intercepted call, so the sentry must be serving by then.

use std::io;
use std::os::fd::{FromRawFd, OwnedFd};

use crate::bpf::{self, Insn};
use crate::table;
use crate::Error;

/// A compiled filter, ready to install without allocating (so it can be used between `fork`
/// and `execve`).
pub struct Program {
    insns: Vec<Insn>,
}

impl Program {
    /// Compile the syscall table.
    pub fn new() -> Result<Program, Error> {
        let insns = bpf::compile(table::table()).map_err(Error::Filter)?;
        Ok(Program { insns })
    }

    pub fn instructions(&self) -> &[Insn] {
        &self.insns
    }
}

/// Compile the table and install it; see `install_program`.
pub fn install() -> Result<OwnedFd, Error> {
    install_program(&Program::new()?)
}

/// Install `prog` on every thread of the calling process (TSYNC) with a new user-notification
/// listener, and return the listener. Requires no_new_privs (or CAP_SYS_ADMIN); sets it if it is
/// not set yet. Uses SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV when the kernel has it (5.19) so a
/// signal cannot interrupt a syscall the sentry is already emulating (only SIGKILL can).
///
/// Async-signal-safe apart from error construction: safe to call between fork and execve.
pub fn install_program(prog: &Program) -> Result<OwnedFd, Error> {
    // SAFETY: prctl with integer arguments only.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        return Err(Error::last("prctl(PR_SET_NO_NEW_PRIVS)"));
    }
    let fprog = libc::sock_fprog {
        len: prog.insns.len() as u16,
        filter: prog.insns.as_ptr() as *mut libc::sock_filter,
    };
    // TSYNC together with NEW_LISTENER needs TSYNC_ESRCH (both would use the return value).
    let base = libc::SECCOMP_FILTER_FLAG_NEW_LISTENER
        | libc::SECCOMP_FILTER_FLAG_TSYNC
        | libc::SECCOMP_FILTER_FLAG_TSYNC_ESRCH;
    let mut last = io::Error::from_raw_os_error(libc::EINVAL);
    for flags in [base | libc::SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV, base] {
        // SAFETY: `fprog` points at `prog.insns`, a valid array of sock_filter-layout
        // instructions (Insn is repr(C) with the same fields) alive for the call.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_SET_MODE_FILTER,
                flags,
                &fprog as *const libc::sock_fprog,
            )
        };
        if rc >= 0 {
            // SAFETY: on success the kernel returned a new fd that nothing else owns.
            return Ok(unsafe { OwnedFd::from_raw_fd(rc as i32) });
        }
        last = io::Error::last_os_error();
        if last.raw_os_error() != Some(libc::EINVAL) {
            break;
        }
    }
    Err(Error::NoUserNotif(last))
}
