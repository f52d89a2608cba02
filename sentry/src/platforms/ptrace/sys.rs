//! Thin wrappers over the ptrace, wait and pidfd calls the platform makes. Every request must
//! come from the tracer thread (the kernel ties a tracee to the *thread* that attached it).

use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

pub(crate) type Regs = libc::user_regs_struct;

pub(crate) const EVENT_FORK: i32 = 1;
pub(crate) const EVENT_VFORK: i32 = 2;
pub(crate) const EVENT_CLONE: i32 = 3;
pub(crate) const EVENT_EXEC: i32 = 4;
pub(crate) const EVENT_SECCOMP: i32 = 7;
pub(crate) const EVENT_STOP: i32 = 128;

/// Options set at seize; inherited by every auto-attached task.
pub(crate) const OPTIONS: i64 = libc::PTRACE_O_TRACESYSGOOD as i64
    | libc::PTRACE_O_TRACEFORK as i64
    | libc::PTRACE_O_TRACEVFORK as i64
    | libc::PTRACE_O_TRACECLONE as i64
    | libc::PTRACE_O_TRACEEXEC as i64
    | libc::PTRACE_O_TRACESECCOMP as i64
    | libc::PTRACE_O_EXITKILL as i64;

/// si_code of a seccomp event stop and of a syscall stop (TRACESYSGOOD) in PTRACE_GETSIGINFO.
pub(crate) const SI_SECCOMP_STOP: i32 = libc::SIGTRAP | (EVENT_SECCOMP << 8);
pub(crate) const SYSCALL_STOP_SIG: i32 = libc::SIGTRAP | 0x80;

const PTRACE_GETSIGMASK: libc::c_uint = 0x420a;
const PTRACE_SETSIGMASK: libc::c_uint = 0x420b;

fn req(request: libc::c_uint, tid: i32, addr: usize, data: usize) -> io::Result<libc::c_long> {
    // SAFETY: every caller passes addr/data that are either integers or pointers to live,
    // correctly sized buffers for `request`.
    let r = unsafe { libc::ptrace(request, tid, addr, data) };
    if r == -1 {
        let e = io::Error::last_os_error();
        if e.raw_os_error().unwrap_or(0) != 0 {
            return Err(e);
        }
    }
    Ok(r)
}

pub(crate) fn seize(tid: i32) -> io::Result<()> {
    req(libc::PTRACE_SEIZE, tid, 0, OPTIONS as usize).map(drop)
}

pub(crate) fn cont(tid: i32, sig: i32) -> io::Result<()> {
    req(libc::PTRACE_CONT, tid, 0, sig as usize).map(drop)
}

pub(crate) fn syscall(tid: i32, sig: i32) -> io::Result<()> {
    req(libc::PTRACE_SYSCALL, tid, 0, sig as usize).map(drop)
}

pub(crate) fn listen(tid: i32) -> io::Result<()> {
    req(libc::PTRACE_LISTEN, tid, 0, 0).map(drop)
}

pub(crate) fn getregs(tid: i32) -> io::Result<Regs> {
    // SAFETY: user_regs_struct is plain old data.
    let mut r: Regs = unsafe { std::mem::zeroed() };
    req(libc::PTRACE_GETREGS, tid, 0, &mut r as *mut Regs as usize)?;
    Ok(r)
}

pub(crate) fn setregs(tid: i32, r: &Regs) -> io::Result<()> {
    req(libc::PTRACE_SETREGS, tid, 0, r as *const Regs as usize).map(drop)
}

pub(crate) fn eventmsg(tid: i32) -> io::Result<u64> {
    let mut m: libc::c_ulong = 0;
    req(
        libc::PTRACE_GETEVENTMSG,
        tid,
        0,
        &mut m as *mut libc::c_ulong as usize,
    )?;
    Ok(m)
}

/// si_code of the stop the tracee is in.
pub(crate) fn stop_code(tid: i32) -> io::Result<i32> {
    // SAFETY: siginfo_t is plain old data.
    let mut si: libc::siginfo_t = unsafe { std::mem::zeroed() };
    req(
        libc::PTRACE_GETSIGINFO,
        tid,
        0,
        &mut si as *mut libc::siginfo_t as usize,
    )?;
    Ok(si.si_code)
}

pub(crate) fn getsigmask(tid: i32) -> io::Result<u64> {
    let mut m: u64 = 0;
    req(PTRACE_GETSIGMASK, tid, 8, &mut m as *mut u64 as usize)?;
    Ok(m)
}

pub(crate) fn setsigmask(tid: i32, m: u64) -> io::Result<()> {
    req(PTRACE_SETSIGMASK, tid, 8, &m as *const u64 as usize).map(drop)
}

/// What `waitid` reported for one task.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Waited {
    /// Nothing waitable right now (WNOHANG).
    Nothing,
    /// The tracer has no tracees left.
    NoChildren,
    /// `tid` exited or was killed.
    Exited(i32),
    /// `tid` is in a stop; `status` is the waitpid-style status word.
    Stopped(i32),
}

const WAIT_FLAGS: libc::c_int = libc::__WALL | libc::__WNOTHREAD;

/// Peek at the next waitable tracee without consuming its state (WNOWAIT). Only tracees of
/// *this thread* are considered (__WNOTHREAD): other children of the sentry process are not
/// ours to reap.
pub(crate) fn peek(tid: Option<i32>, block: bool) -> io::Result<Waited> {
    // SAFETY: siginfo_t is plain old data; zeroed si_pid means "nothing" under WNOHANG.
    let mut si: libc::siginfo_t = unsafe { std::mem::zeroed() };
    let (idtype, id) = match tid {
        Some(t) => (libc::P_PID, t as libc::id_t),
        None => (libc::P_ALL, 0),
    };
    let mut flags = libc::WEXITED | libc::WSTOPPED | libc::WNOWAIT | WAIT_FLAGS;
    if !block {
        flags |= libc::WNOHANG;
    }
    loop {
        // SAFETY: `si` is a valid siginfo_t for the kernel to fill.
        let r = unsafe { libc::waitid(idtype, id, &mut si, flags) };
        if r == 0 {
            break;
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::ECHILD) => return Ok(Waited::NoChildren),
            _ => return Err(e),
        }
    }
    // SAFETY: waitid filled a SIGCHLD siginfo, for which si_pid is the valid union member.
    let pid = unsafe { si.si_pid() };
    if pid == 0 {
        return Ok(Waited::Nothing);
    }
    Ok(match si.si_code {
        libc::CLD_EXITED | libc::CLD_KILLED | libc::CLD_DUMPED => Waited::Exited(pid),
        _ => Waited::Stopped(pid),
    })
}

/// Consume the state `peek` reported for `tid`; returns the status word (0 if it vanished).
pub(crate) fn consume(tid: i32) -> io::Result<i32> {
    let mut st = 0;
    loop {
        // SAFETY: `st` is a valid int for the status.
        let r = unsafe { libc::waitpid(tid, &mut st, libc::WNOHANG | WAIT_FLAGS) };
        if r >= 0 {
            return Ok(if r == 0 { 0 } else { st });
        }
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINTR) {
            return Err(e);
        }
    }
}

/// A pidfd for one thread (PIDFD_THREAD, Linux 6.9), or for its process on older kernels.
pub(crate) fn pidfd_open(tid: i32) -> io::Result<OwnedFd> {
    for flags in [libc::O_EXCL, 0] {
        // SAFETY: integer arguments only.
        let r = unsafe { libc::syscall(libc::SYS_pidfd_open, tid, flags) };
        if r >= 0 {
            // SAFETY: a fresh fd the kernel just gave us.
            return Ok(unsafe { OwnedFd::from_raw_fd(r as RawFd) });
        }
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINVAL) {
            return Err(e);
        }
    }
    Err(io::Error::from_raw_os_error(libc::EINVAL))
}

/// Duplicate fd `n` of the process behind `pidfd` into the sentry (pidfd_getfd, Linux 5.6).
pub(crate) fn pidfd_getfd(pidfd: RawFd, n: i32) -> io::Result<OwnedFd> {
    // SAFETY: integer arguments only.
    let r = unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd, n, 0) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh fd the kernel just gave us.
    Ok(unsafe { OwnedFd::from_raw_fd(r as RawFd) })
}

/// Copy tracee memory (process_vm_readv; /proc/<tid>/mem when that is not permitted).
pub(crate) fn read_mem(tid: i32, addr: u64, buf: &mut [u8]) -> io::Result<usize> {
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
    // SAFETY: `local` covers `buf`, writable for its length; `remote` is only interpreted in
    // the tracee's address space.
    let n = unsafe { libc::process_vm_readv(tid, &local, 1, &remote, 1, 0) };
    if n >= 0 {
        return Ok(n as usize);
    }
    let e = io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::ENOSYS) | Some(libc::EPERM) => proc_mem(tid, addr, buf.len(), |f, off| {
            std::os::unix::fs::FileExt::read_at(f, buf, off)
        }),
        _ => Err(e),
    }
}

/// Write tracee memory (process_vm_writev; /proc/<tid>/mem when that is not permitted).
pub(crate) fn write_mem(tid: i32, addr: u64, data: &[u8]) -> io::Result<usize> {
    if data.is_empty() {
        return Ok(0);
    }
    let local = libc::iovec {
        iov_base: data.as_ptr() as *mut libc::c_void,
        iov_len: data.len(),
    };
    let remote = libc::iovec {
        iov_base: addr as *mut libc::c_void,
        iov_len: data.len(),
    };
    // SAFETY: `local` covers `data`, which the kernel only reads.
    let n = unsafe { libc::process_vm_writev(tid, &local, 1, &remote, 1, 0) };
    if n >= 0 {
        return Ok(n as usize);
    }
    let e = io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::ENOSYS) | Some(libc::EPERM) => proc_mem(tid, addr, data.len(), |f, off| {
            std::os::unix::fs::FileExt::write_at(f, data, off)
        }),
        _ => Err(e),
    }
}

fn proc_mem(
    tid: i32,
    addr: u64,
    _len: usize,
    op: impl FnOnce(&std::fs::File, u64) -> io::Result<usize>,
) -> io::Result<usize> {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(format!("/proc/{tid}/mem"))?;
    op(&f, addr)
}
