//! Bringing a workload under ptrace: the RET_TRACE filter, the workload's side of the
//! handshake (`prepare_tracee`) and the sentry's checks (`recv_ready`, Yama).
//!
//! Handshake over a unix socket shared by the workload and the sentry:
//!
//! ```text
//!   workload                                  sentry
//!   no_new_privs; RET_TRACE filter (TSYNC)
//!   SO_PASSCRED; send "R"          ------->   recv "R" (+ the sender's pid, if attached)
//!                                             PTRACE_SEIZE every thread of pid
//!   recv "S"                       <-------   send "S"
//!   close the socket; execve (traced: the first emulated call)
//! ```
//!
//! Until it is seized, an emulated call in the workload fails with ENOSYS (RET_TRACE without a
//! tracer), so nothing escapes the sentry in between; the handshake itself uses pass rows only.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};

use crate::bpf::{self, Insn};
use crate::table;
use crate::Error;

/// SECCOMP_RET_TRACE.
pub const RET_TRACE: u32 = 0x7ff0_0000;
/// BPF_RET | BPF_K.
const RET_K: u16 = 0x06;

const READY: u8 = b'R';
const SEIZED: u8 = b'S';

/// The table's filter for the ptrace platform, ready to install without allocating.
pub struct TraceProgram {
    insns: Vec<Insn>,
}

impl TraceProgram {
    /// Compile the syscall table, with the emulated rows returning RET_TRACE instead of
    /// RET_USER_NOTIF. The table's compiler emits RET_USER_NOTIF only as the return of an
    /// emulated row, so swapping that one return value changes nothing else.
    pub fn new() -> Result<TraceProgram, Error> {
        let mut insns = bpf::compile(table::table()).map_err(Error::Filter)?;
        for i in insns.iter_mut() {
            if i.code == RET_K && i.k == bpf::RET_USER_NOTIF {
                i.k = RET_TRACE;
            }
        }
        Ok(TraceProgram { insns })
    }

    pub fn instructions(&self) -> &[Insn] {
        &self.insns
    }
}

/// Set no_new_privs and install `prog` on every thread of the calling process (TSYNC).
/// Async-signal-safe apart from error construction.
pub fn install_trace_filter(prog: &TraceProgram) -> Result<(), Error> {
    // SAFETY: prctl with integer arguments only.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        return Err(Error::last("prctl(PR_SET_NO_NEW_PRIVS)"));
    }
    let fprog = libc::sock_fprog {
        len: prog.insns.len() as u16,
        filter: prog.insns.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: `fprog` points at `prog.insns` (repr(C), sock_filter layout), alive for the call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            libc::SECCOMP_FILTER_FLAG_TSYNC,
            &fprog as *const libc::sock_fprog,
        )
    };
    match rc {
        0 => Ok(()),
        r if r > 0 => Err(Error::Sys {
            context: "seccomp TSYNC (another thread has an incompatible filter)",
            source: io::Error::from_raw_os_error(libc::EBUSY),
        }),
        _ => Err(Error::last("seccomp(SET_MODE_FILTER) trace filter")),
    }
}

/// The workload's side, right before `execve`: install the RET_TRACE filter, tell the sentry
/// over `sock` that it is ready, and block until the sentry has seized it. Compiles the
/// table (allocates): between fork and exec in a multithreaded program, compile before forking
/// and use `prepare_tracee_with`.
pub fn prepare_tracee(sock: BorrowedFd<'_>) -> Result<(), Error> {
    prepare_tracee_with(&TraceProgram::new()?, sock.as_raw_fd())
}

/// `prepare_tracee` with a program compiled earlier. Makes raw syscalls only on success.
pub fn prepare_tracee_with(prog: &TraceProgram, sock: RawFd) -> Result<(), Error> {
    install_trace_filter(prog)?;
    // Best effort: with it the kernel attaches our pid to the message, for the sentry to check.
    set_passcred(sock);
    write_byte(sock, READY).map_err(Error::sys("tell the sentry the workload is ready"))?;
    match read_byte(sock) {
        Ok(Some(SEIZED)) => Ok(()),
        Ok(Some(b)) => Err(Error::Invalid(format!(
            "ptrace handshake: unexpected byte {b:#x} from the sentry"
        ))),
        Ok(None) => Err(Error::Invalid(
            "ptrace handshake: the sentry closed the socket before seizing".into(),
        )),
        Err(e) => Err(Error::Sys {
            context: "wait for the sentry to seize the workload",
            source: e,
        }),
    }
}

fn set_passcred(sock: RawFd) {
    let one: libc::c_int = 1;
    // SAFETY: `one` is a valid int for the call.
    unsafe {
        libc::setsockopt(
            sock,
            libc::SOL_SOCKET,
            libc::SO_PASSCRED,
            &one as *const libc::c_int as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
}

fn write_byte(sock: RawFd, b: u8) -> io::Result<()> {
    loop {
        // SAFETY: one readable byte on the stack.
        let r = unsafe {
            libc::send(
                sock,
                &b as *const u8 as *const libc::c_void,
                1,
                libc::MSG_NOSIGNAL,
            )
        };
        if r == 1 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        if r < 0 && e.raw_os_error() == Some(libc::EINTR) {
            continue;
        }
        return Err(if r < 0 {
            e
        } else {
            io::Error::from_raw_os_error(libc::EIO)
        });
    }
}

fn read_byte(sock: RawFd) -> io::Result<Option<u8>> {
    let mut b = 0u8;
    loop {
        // SAFETY: one writable byte on the stack.
        let r = unsafe { libc::recv(sock, &mut b as *mut u8 as *mut libc::c_void, 1, 0) };
        match r {
            1 => return Ok(Some(b)),
            0 => return Ok(None),
            _ => {
                let e = io::Error::last_os_error();
                if e.raw_os_error() != Some(libc::EINTR) {
                    return Err(e);
                }
            }
        }
    }
}

/// Refuse early when Yama forbids attaching to non-children even for root (scope 3).
pub(super) fn check_yama() -> Result<(), Error> {
    match std::fs::read_to_string("/proc/sys/kernel/yama/ptrace_scope") {
        Ok(s) if s.trim() == "3" => Err(Error::Invalid(
            "ptrace platform: kernel.yama.ptrace_scope is 3 (no attach at all); use the seccomp platform".into(),
        )),
        _ => Ok(()),
    }
}

/// Read the workload's "ready" byte; returns the sender's pid when the kernel attached
/// credentials (SO_PASSCRED), translated into our pid namespace.
pub(super) fn recv_ready(sock: BorrowedFd<'_>) -> Result<Option<i32>, Error> {
    let fd = sock.as_raw_fd();
    // Credentials reach us as a control message only if our end asks for them too.
    set_passcred(fd);
    let mut byte = 0u8;
    let mut iov = libc::iovec {
        iov_base: (&mut byte as *mut u8).cast(),
        iov_len: 1,
    };
    #[repr(C)]
    struct Space {
        hdr: libc::cmsghdr,
        cred: libc::ucred,
        pad: [u64; 4],
    }
    // SAFETY: plain data; zeroed is valid.
    let mut space: Space = unsafe { std::mem::zeroed() };
    // SAFETY: plain data; zeroed is valid.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = (&mut space as *mut Space).cast();
    msg.msg_controllen = std::mem::size_of::<Space>() as _;
    let r = loop {
        // SAFETY: `msg` points at live stack buffers for the call.
        let r = unsafe { libc::recvmsg(fd, &mut msg, libc::MSG_CMSG_CLOEXEC) };
        if r < 0 && io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
            continue;
        }
        break r;
    };
    if r < 0 {
        return Err(Error::last("receive the workload's ready message"));
    }
    if r == 0 {
        return Err(Error::Invalid(
            "ptrace handshake: the workload closed the socket before it was ready".into(),
        ));
    }
    if byte != READY {
        return Err(Error::Invalid(format!(
            "ptrace handshake: unexpected byte {byte:#x} from the workload"
        )));
    }
    let mut sender = None;
    // SAFETY: CMSG_* walk the control buffer the kernel filled, bounded by msg_controllen.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_CREDENTIALS {
                let cred = std::ptr::read_unaligned(libc::CMSG_DATA(c) as *const libc::ucred);
                // pid 0: the sender is not visible in our pid namespace; nothing to check.
                if cred.pid > 0 {
                    sender = Some(cred.pid);
                }
            } else if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_RIGHTS {
                // Nobody should send us fds here; close them rather than leak them.
                let n = ((*c).cmsg_len as usize - libc::CMSG_LEN(0) as usize) / 4;
                let p = libc::CMSG_DATA(c) as *const i32;
                for i in 0..n {
                    libc::close(std::ptr::read_unaligned(p.add(i)));
                }
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    Ok(sender)
}

pub(super) fn send_seized(sock: BorrowedFd<'_>) -> Result<(), Error> {
    write_byte(sock.as_raw_fd(), SEIZED).map_err(Error::sys("tell the workload it is seized"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bpf::{run, AUDIT_ARCH_X86_64, RET_ALLOW, RET_ERRNO, RET_KILL_PROCESS};
    use crate::table::{table, Action};

    #[test]
    fn emulated_rows_trace_and_the_rest_is_unchanged() {
        let notify = bpf::compile(table()).unwrap();
        let trace = TraceProgram::new().unwrap();
        assert_eq!(notify.len(), trace.instructions().len());
        let mut traced = 0;
        for r in table() {
            let n = run(&notify, r.nr as i32, AUDIT_ARCH_X86_64, [0; 6]).unwrap();
            let t = run(trace.instructions(), r.nr as i32, AUDIT_ARCH_X86_64, [0; 6]).unwrap();
            match r.action {
                Action::Emulate(_) => {
                    assert_eq!(t, RET_TRACE, "{}", r.name);
                    traced += 1;
                }
                _ => assert_eq!(t, n, "{}", r.name),
            }
        }
        assert!(traced > 40, "only {traced} traced rows");
        // Spot checks on the policy the platform relies on.
        let nr = |name: &str| table().iter().find(|r| r.name == name).unwrap().nr as i32;
        let eperm = RET_ERRNO | libc::EPERM as u32;
        for denied in [
            "ptrace",
            "process_vm_readv",
            "process_vm_writev",
            "pidfd_getfd",
            "seccomp",
        ] {
            assert_eq!(
                run(trace.instructions(), nr(denied), AUDIT_ARCH_X86_64, [0; 6]).unwrap(),
                eperm,
                "{denied}"
            );
        }
        for injected in ["socketpair", "recvmsg", "close", "close_range"] {
            assert_eq!(
                run(
                    trace.instructions(),
                    nr(injected),
                    AUDIT_ARCH_X86_64,
                    [0; 6]
                )
                .unwrap(),
                RET_ALLOW,
                "{injected}"
            );
        }
        assert_eq!(
            run(trace.instructions(), 0, 0x4000_0003, [0; 6]).unwrap(),
            RET_KILL_PROCESS
        );
    }
}
