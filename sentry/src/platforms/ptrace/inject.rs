//! Fd injection on ptrace: the tracee is made to run a few syscalls of our choosing.
//!
//! Sequence, with the thread in the seccomp stop of the call being emulated (say `openat`):
//!
//! 1. block every signal in the thread (PTRACE_SETSIGMASK) so no handler runs between the
//!    injected calls (SIGKILL still kills; SIGSTOP is deferred, see `wait_syscall_stop`);
//! 2. turn the stopped call into `socketpair(AF_UNIX, SOCK_SEQPACKET|SOCK_CLOEXEC, 0, scratch)`
//!    and resume to its syscall-exit stop (PTRACE_SYSCALL);
//! 3. take the first end into the sentry with pidfd_getfd and send the fd over it (SCM_RIGHTS);
//! 4. re-run the `syscall` instruction (rip - 2) as `close(first end)`: that end is the lowest
//!    free fd, where a native open would have put its result, and the receive below then
//!    lands there (`close(0); open("/dev/null")` must yield 0);
//! 5. re-run it as `recvmsg(second end, scratch msghdr, MSG_DONTWAIT [|MSG_CMSG_CLOEXEC])` and
//!    read the received fd number from the scratch cmsg; then `close(second end)`; restore the
//!    signal mask;
//! 6. answer: restore the original registers with `rax` = the new fd (or keep the thread in its
//!    syscall-exit stop for a later answer: `inject_fd`).
//!
//! Cost: 4 injected calls, 7 stops. The socketpair needs two free fds where a native open
//! needs one: with exactly one slot left below RLIMIT_NOFILE the open fails with EMFILE.
//!
//! Scratch memory is 256 bytes of the thread's stack below the 128-byte red zone, which the
//! x86_64 ABI lets anything clobber while the thread is not running. Nothing persists in the
//! tracee: no extra fd at a fixed number (which `close_range` loops would close anyway), no
//! mapping.
//!
//! Limitation: SIGSTOP cannot be blocked. One sent to this thread mid-sequence is held and
//! re-sent when the thread resumes; a group stop started by another thread in those few
//! microseconds is missed by this thread.
//!
//! What the workload can do about it: other threads of the workload run meanwhile and could
//! close or replace the two socket fds, or read from them. All they achieve is a failed or
//! wrong answer to their *own* open: the fd we send is one the gofer opened for them, and the
//! fd number we return is read back from their own memory. The sentry never acts on what it
//! reads here beyond returning it to the workload.

use std::io::{self, IoSlice};
use std::os::fd::{AsRawFd, RawFd};

use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};

use super::sys::{self, Waited};
use super::tracer::Tracer;
use super::{At, Pending};
use crate::platform::{AccessError, Reply};

const RED_ZONE: u64 = 128;
const SCRATCH: u64 = 256;
// Offsets in the scratch area.
const OFF_SV: u64 = 0; // int[2]
const OFF_MSG: u64 = 16; // struct msghdr (56 bytes)
const OFF_IOV: u64 = 80; // struct iovec (16)
const OFF_BYTE: u64 = 96; // 1 data byte
const OFF_CMSG: u64 = 104; // CMSG_SPACE(sizeof(int)) = 24

fn gone_or_io(e: io::Error) -> AccessError {
    match e.raw_os_error() {
        Some(libc::ESRCH) => AccessError::Gone,
        _ => AccessError::Io(e),
    }
}

fn errno(e: i32) -> AccessError {
    AccessError::Io(io::Error::from_raw_os_error(e))
}

impl Tracer {
    /// Run the injection for the outstanding event (tid, id); with `answer`, also answer the
    /// event with the new fd number.
    pub(super) fn inject(
        &mut self,
        tid: i32,
        id: u64,
        fd: RawFd,
        cloexec: bool,
        answer: bool,
    ) -> Result<i32, AccessError> {
        let mut p = self.take_pending(tid, id).ok_or(AccessError::Gone)?;
        let old_mask = sys::getsigmask(tid).map_err(gone_or_io)?;
        let res = match sys::setsigmask(tid, !0) {
            Ok(()) => self.fd_sequence(tid, &mut p, fd, cloexec),
            Err(e) => Err(gone_or_io(e)),
        };
        if matches!(res, Err(AccessError::Gone)) {
            return res;
        }
        if let Err(e) = sys::setsigmask(tid, old_mask) {
            return Err(gone_or_io(e));
        }
        match res {
            Ok(n) if answer => {
                self.answer(tid, &p, Reply::Value(n as i64));
                Ok(n)
            }
            other => {
                // The event stays outstanding (at its seccomp stop if nothing ran yet, else
                // at the syscall-exit stop of the last injected call) for the worker's answer.
                self.shared.lock().pending.insert(tid, p);
                other
            }
        }
    }

    fn fd_sequence(
        &mut self,
        tid: i32,
        p: &mut Pending,
        fd: RawFd,
        cloexec: bool,
    ) -> Result<i32, AccessError> {
        let base = p.regs.rsp.wrapping_sub(RED_ZONE + SCRATCH) & !15;
        let r = self.call(
            tid,
            p,
            libc::SYS_socketpair,
            [
                libc::AF_UNIX as u64,
                (libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC) as u64,
                0,
                base + OFF_SV,
                0,
                0,
            ],
        )?;
        if r < 0 {
            // EFAULT here means our scratch area is not mapped (a stack at its very end).
            let e = if r == -(libc::EFAULT as i64) {
                libc::ENOMEM
            } else {
                (-r) as i32
            };
            return Err(errno(e));
        }
        let mut sv = [0u8; 8];
        read_exact(tid, base + OFF_SV, &mut sv)?;
        let a = i32::from_ne_bytes([sv[0], sv[1], sv[2], sv[3]]);
        let b = i32::from_ne_bytes([sv[4], sv[5], sv[6], sv[7]]);
        // `a` (the lowest free fd, where a native open would have put its fd) is closed in the
        // tracee before the receive, so the received fd lands there: `close(0);
        // open("/dev/null")` still yields 0.
        let sent = send_through(tid, a, fd);
        let closed_a = self.call(tid, p, libc::SYS_close, [a as u64, 0, 0, 0, 0, 0]);
        if let Err(AccessError::Gone) = closed_a {
            return Err(AccessError::Gone);
        }
        let got = match (sent, closed_a) {
            (Err(e), _) | (_, Err(e)) => Err(e),
            (Ok(()), Ok(_)) => self.receive_fd(tid, p, base, b, cloexec),
        };
        if let Err(AccessError::Gone) =
            self.call(tid, p, libc::SYS_close, [b as u64, 0, 0, 0, 0, 0])
        {
            return Err(AccessError::Gone);
        }
        got
    }

    /// Make the tracee receive the fd queued on its socket end `b`.
    fn receive_fd(
        &mut self,
        tid: i32,
        p: &mut Pending,
        base: u64,
        b: i32,
        cloexec: bool,
    ) -> Result<i32, AccessError> {
        let cmsg_space = cmsg_space_int();
        let mut area = [0u8; (OFF_CMSG - OFF_MSG) as usize + 24];
        let put = |area: &mut [u8], off: u64, v: u64| {
            let o = (off - OFF_MSG) as usize;
            area[o..o + 8].copy_from_slice(&v.to_ne_bytes());
        };
        // struct msghdr { name, namelen(+pad), iov, iovlen, control, controllen, flags(+pad) }
        put(&mut area, OFF_MSG, 0);
        put(&mut area, OFF_MSG + 8, 0);
        put(&mut area, OFF_MSG + 16, base + OFF_IOV);
        put(&mut area, OFF_MSG + 24, 1);
        put(&mut area, OFF_MSG + 32, base + OFF_CMSG);
        put(&mut area, OFF_MSG + 40, cmsg_space);
        put(&mut area, OFF_MSG + 48, 0);
        // struct iovec { base, len }
        put(&mut area, OFF_IOV, base + OFF_BYTE);
        put(&mut area, OFF_IOV + 8, 1);
        let n = sys::write_mem(tid, base + OFF_MSG, &area).map_err(gone_or_io)?;
        if n < area.len() {
            return Err(errno(libc::ENOMEM));
        }
        let mut flags = libc::MSG_DONTWAIT as u64;
        if cloexec {
            flags |= libc::MSG_CMSG_CLOEXEC as u64;
        }
        let r = self.call(
            tid,
            p,
            libc::SYS_recvmsg,
            [b as u64, base + OFF_MSG, flags, 0, 0, 0],
        )?;
        if r < 0 {
            return Err(errno((-r) as i32));
        }
        read_exact(tid, base + OFF_MSG, &mut area)?;
        let get = |off: u64| {
            let o = (off - OFF_MSG) as usize;
            u64::from_ne_bytes(area[o..o + 8].try_into().unwrap_or([0; 8]))
        };
        let msg_flags = get(OFF_MSG + 48) as i32;
        let controllen = get(OFF_MSG + 40);
        let c = (OFF_CMSG - OFF_MSG) as usize;
        let cmsg_len = u64::from_ne_bytes(area[c..c + 8].try_into().unwrap_or([0; 8]));
        let level = i32::from_ne_bytes(area[c + 8..c + 12].try_into().unwrap_or([0; 4]));
        let kind = i32::from_ne_bytes(area[c + 12..c + 16].try_into().unwrap_or([0; 4]));
        let newfd = i32::from_ne_bytes(area[c + 16..c + 20].try_into().unwrap_or([0; 4]));
        if r != 1
            || msg_flags & libc::MSG_CTRUNC != 0
            || controllen < cmsg_len_int()
            || cmsg_len != cmsg_len_int()
            || level != libc::SOL_SOCKET
            || kind != libc::SCM_RIGHTS
            || newfd < 0
        {
            // MSG_CTRUNC: the fd table is full (RLIMIT_NOFILE).
            return Err(errno(libc::EMFILE));
        }
        Ok(newfd)
    }

    /// Make the stopped thread run syscall `nr` with `args`; returns its raw result. Leaves the
    /// thread in that call's syscall-exit stop.
    fn call(
        &mut self,
        tid: i32,
        p: &mut Pending,
        nr: i64,
        args: [u64; 6],
    ) -> Result<i64, AccessError> {
        let mut r = p.regs;
        r.orig_rax = nr as u64;
        r.rax = nr as u64;
        r.rdi = args[0];
        r.rsi = args[1];
        r.rdx = args[2];
        r.r10 = args[3];
        r.r8 = args[4];
        r.r9 = args[5];
        match p.at {
            // Changing orig_rax at a seccomp stop runs the new call in place of the old one
            // (the kernel re-runs the filter on it: injected calls are all pass rows).
            At::Seccomp => {
                sys::setregs(tid, &r).map_err(gone_or_io)?;
                sys::syscall(tid, 0).map_err(gone_or_io)?;
                self.wait_syscall_stop(tid)?;
            }
            // From a syscall-exit stop: back to the `syscall` instruction, through its entry
            // stop, to its exit stop.
            At::SyscallExit => {
                r.rip = p.regs.rip.wrapping_sub(2);
                sys::setregs(tid, &r).map_err(gone_or_io)?;
                sys::syscall(tid, 0).map_err(gone_or_io)?;
                self.wait_syscall_stop(tid)?;
                sys::syscall(tid, 0).map_err(gone_or_io)?;
                self.wait_syscall_stop(tid)?;
            }
        }
        p.at = At::SyscallExit;
        let after = sys::getregs(tid).map_err(gone_or_io)?;
        Ok(after.rax as i64)
    }

    /// Wait for `tid`'s next syscall stop, resuming it through anything else.
    fn wait_syscall_stop(&mut self, tid: i32) -> Result<(), AccessError> {
        loop {
            match sys::peek(Some(tid), true).map_err(gone_or_io)? {
                Waited::Stopped(_) => {}
                Waited::Exited(_) | Waited::NoChildren => {
                    let _ = sys::consume(tid);
                    return Err(AccessError::Gone);
                }
                Waited::Nothing => continue,
            }
            let st = sys::consume(tid).map_err(gone_or_io)?;
            if !libc::WIFSTOPPED(st) {
                return Err(AccessError::Gone);
            }
            let sig = libc::WSTOPSIG(st);
            let event = (st >> 16) & 0xff;
            match event {
                0 if sig == sys::SYSCALL_STOP_SIG => return Ok(()),
                // Only SIGSTOP gets past the blocked mask: hold it and re-send it when the
                // thread resumes for good.
                0 => {
                    self.deferred.insert(tid, sig);
                }
                // A group stop another thread started within these few microseconds cannot be
                // honoured mid-injection: this thread finishes its calls and misses that stop
                // (the other threads stop; a known limitation, see the module comment).
                sys::EVENT_STOP | sys::EVENT_SECCOMP => {}
                // Anything else (an EXEC stop: another thread exec'd, killed ours and took
                // over its tid) means the thread we were driving is gone. Hand the stop to
                // the normal handling and never touch these registers again.
                _ => {
                    self.deferred.remove(&tid);
                    self.handle_stop(tid, st);
                    return Err(AccessError::Gone);
                }
            }
            sys::syscall(tid, 0).map_err(gone_or_io)?;
        }
    }
}

/// Take the tracee's socket end `a` with pidfd_getfd and send `fd` through it.
fn send_through(tid: i32, a: i32, fd: RawFd) -> Result<(), AccessError> {
    let pidfd = sys::pidfd_open(tid).map_err(gone_or_io)?;
    let ours = sys::pidfd_getfd(pidfd.as_raw_fd(), a).map_err(gone_or_io)?;
    let fds = [fd];
    let cmsg = [ControlMessage::ScmRights(&fds)];
    sendmsg::<()>(
        ours.as_raw_fd(),
        &[IoSlice::new(b"F")],
        &cmsg,
        MsgFlags::MSG_DONTWAIT,
        None,
    )
    .map_err(|e| AccessError::Io(e.into()))?;
    drop(ours);
    Ok(())
}

fn read_exact(tid: i32, addr: u64, buf: &mut [u8]) -> Result<(), AccessError> {
    let n = sys::read_mem(tid, addr, buf).map_err(gone_or_io)?;
    if n < buf.len() {
        return Err(errno(libc::ENOMEM));
    }
    Ok(())
}

fn cmsg_space_int() -> u64 {
    // SAFETY: pure arithmetic.
    unsafe { libc::CMSG_SPACE(std::mem::size_of::<i32>() as u32) as u64 }
}

fn cmsg_len_int() -> u64 {
    // SAFETY: pure arithmetic.
    unsafe { libc::CMSG_LEN(std::mem::size_of::<i32>() as u32) as u64 }
}
