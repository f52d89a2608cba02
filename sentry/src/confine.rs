//! Confining the sentry process itself.
//!
//! Threat: a bug in the sentry (decoding hostile workload memory, a gofer reply) turned into
//! code execution. Then the attacker holds the listener fd and can answer the workload's calls,
//! but should gain nothing beyond what the workload could already reach through the gofer.
//! `confine` bounds the process:
//!
//! 1. `no_new_privs` (needed for an unprivileged filter; no exec can ever gain privileges);
//! 2. capabilities: only CAP_SYS_PTRACE is kept (process_vm_readv/writev and /proc/<tid>/fd,
//!    /proc/<tid>/root of the workload's tasks); the bounding and ambient sets are cleared;
//! 3. seccomp allowlist (`ALLOWED`, compiled by the same BPF compiler as the workload filter):
//!    no exec, no sockets of its own (only send/recvmsg on the gofer socket it holds), no
//!    ptrace, no mount or namespace calls, ioctl only for the five SECCOMP_IOCTL_NOTIF_*
//!    requests, clone only for threads. Anything else fails with EPERM (ENOSYS for clone3, so
//!    the Rust runtime falls back to clone); other ABIs kill.
//!
//! Call it in the sentry process once the listener and the gofer socket are in hand and before
//! the first `Sentry::serve_seccomp`. Irreversible.
//!
//! Not done here: a filesystem view narrowed to /proc (Landlock cannot express "the workload's
//! procfs" before the workload exists; the runtime can bind the sentry into an empty root).

use crate::bpf;
use crate::table::{Action, Cond, Row};
use crate::Error;

/// SECCOMP_IOCTL_NOTIF_{RECV,SEND,ID_VALID,ADDFD,SET_FLAGS}.
const NOTIF_IOCTLS: &[u64] = &[
    libc::SECCOMP_IOCTL_NOTIF_RECV,
    libc::SECCOMP_IOCTL_NOTIF_SEND,
    libc::SECCOMP_IOCTL_NOTIF_ID_VALID,
    libc::SECCOMP_IOCTL_NOTIF_ADDFD,
    libc::SECCOMP_IOCTL_NOTIF_SET_FLAGS,
];

/// clone may only make threads of this process.
const CLONE_THREAD_FLAGS: u64 = (libc::CLONE_VM | libc::CLONE_THREAD | libc::CLONE_SIGHAND) as u64;

/// The sentry's own syscalls, by name; everything else is refused.
pub const ALLOWED: &[&str] = &[
    // Serving: notifications, workload memory, the gofer socket.
    "ioctl",
    "poll",
    "ppoll",
    "process_vm_readv",
    "process_vm_writev",
    "sendmsg",
    "recvmsg",
    "eventfd2",
    // /proc of the workload (cwd, fd links, status, root) and fstat-style answers.
    "openat",
    "openat2",
    "readlink",
    "readlinkat",
    "statx",
    "newfstatat",
    "fstat",
    "close",
    "read",
    "pread64",
    "write",
    "writev",
    "lseek",
    "fcntl",
    "ftruncate",
    "capget",
    // Host facts for uname/sysinfo.
    "uname",
    "sysinfo",
    // The Rust runtime: memory, threads, signals, time.
    "mmap",
    "munmap",
    "mprotect",
    "mremap",
    "madvise",
    "brk",
    "futex",
    "set_robust_list",
    "rseq",
    "sigaltstack",
    "rt_sigaction",
    "rt_sigprocmask",
    "rt_sigreturn",
    "sched_yield",
    "sched_getaffinity",
    "getrandom",
    "exit",
    "exit_group",
    "gettid",
    "getpid",
    "tgkill",
    "clock_gettime",
    "clock_nanosleep",
    "nanosleep",
    "prlimit64",
    "membarrier",
];

#[cfg(test)]
fn rows() -> Vec<Row> {
    rows_with(&[])
}

/// The allowlist plus `extra` (a platform's own calls, e.g. `platforms::ptrace::CONFINE_EXTRA`).
fn rows_with(extra: &[&str]) -> Vec<Row> {
    crate::table::table()
        .iter()
        .map(|r| {
            let action = match r.name {
                "clone" => Action::PassIf {
                    cond: Cond::MaskClear {
                        arg: 0,
                        // Threads only: everything but the thread flags and the usual
                        // CLONE_SETTLS / *_TID bookkeeping is refused.
                        mask: !(CLONE_THREAD_FLAGS
                            | (libc::CLONE_FS
                                | libc::CLONE_FILES
                                | libc::CLONE_SYSVSEM
                                | libc::CLONE_SETTLS
                                | libc::CLONE_PARENT_SETTID
                                | libc::CLONE_CHILD_CLEARTID) as u64),
                    },
                    errno: libc::EPERM,
                },
                "clone3" => Action::Deny(libc::ENOSYS),
                "ioctl" => Action::PassIf {
                    cond: Cond::OneOf {
                        arg: 1,
                        values: NOTIF_IOCTLS,
                    },
                    errno: libc::EPERM,
                },
                n if ALLOWED.contains(&n) || extra.contains(&n) => Action::Pass,
                _ => Action::Deny(libc::EPERM),
            };
            Row { action, ..*r }
        })
        .collect()
}

/// What `confine` put in place.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Confinement {
    pub syscalls_allowed: usize,
    /// Effective capability mask after the drop.
    pub capabilities: u64,
}

/// Confine the calling process (all threads): see the module comment.
pub fn confine() -> Result<Confinement, Error> {
    confine_with(&[])
}

/// `confine`, also allowing the syscalls in `extra` (the ptrace platform's tracer needs a few).
pub fn confine_with(extra: &[&str]) -> Result<Confinement, Error> {
    let rows = rows_with(extra);
    let prog = bpf::compile(&rows).map_err(Error::Filter)?;
    // SAFETY: prctl with integer arguments.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        return Err(Error::last("prctl(PR_SET_NO_NEW_PRIVS)"));
    }
    let caps = drop_capabilities()?;
    let fprog = libc::sock_fprog {
        len: prog.len() as u16,
        filter: prog.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: `fprog` points at `prog`, sock_filter-layout instructions alive for the call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            libc::SECCOMP_FILTER_FLAG_TSYNC,
            &fprog as *const libc::sock_fprog,
        )
    };
    if rc != 0 {
        return Err(Error::last("install the sentry's own seccomp filter"));
    }
    Ok(Confinement {
        syscalls_allowed: rows
            .iter()
            .filter(|r| matches!(r.action, Action::Pass | Action::PassIf { .. }))
            .count(),
        capabilities: caps,
    })
}

const CAP_SYS_PTRACE: u32 = 19;
const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;

/// Keep only CAP_SYS_PTRACE in every set; clear the bounding and ambient sets.
fn drop_capabilities() -> Result<u64, Error> {
    // The bounding set can only shrink with CAP_SETPCAP, which we still have here (or not,
    // when the sentry runs unprivileged: then there is nothing to drop).
    for cap in 0..64u32 {
        if cap != CAP_SYS_PTRACE {
            // SAFETY: prctl with integer arguments; EINVAL past the last capability.
            unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) };
        }
    }
    // SAFETY: prctl with integer arguments.
    unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL,
            0,
            0,
            0,
        )
    };
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy, Default)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    let mut hdr = Header {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let mut cur = [Data::default(); 2];
    // SAFETY: capget writes two Data entries for version 3; both pointers are valid.
    if unsafe { libc::syscall(libc::SYS_capget, &mut hdr as *mut Header, cur.as_mut_ptr()) } != 0 {
        return Err(Error::last("capget"));
    }
    let keep = 1u32 << CAP_SYS_PTRACE;
    let mut new = [Data::default(); 2];
    new[0].permitted = cur[0].permitted & keep;
    new[0].effective = cur[0].effective & keep;
    // SAFETY: capset reads two Data entries; pointers valid for the call.
    if unsafe { libc::syscall(libc::SYS_capset, &mut hdr as *mut Header, new.as_ptr()) } != 0 {
        return Err(Error::last("capset"));
    }
    Ok(new[0].effective as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allowlist_names_are_syscalls() {
        for n in ALLOWED {
            assert!(crate::table::table().iter().any(|r| r.name == *n), "{n}");
        }
    }

    #[test]
    fn sentry_filter_refuses_exec_sockets_and_foreign_ioctls() {
        let prog = bpf::compile(&rows()).unwrap();
        let run =
            |nr: i64, a: [u64; 6]| bpf::run(&prog, nr as i32, bpf::AUDIT_ARCH_X86_64, a).unwrap();
        let eperm = bpf::RET_ERRNO | libc::EPERM as u32;
        assert_eq!(run(libc::SYS_execve, [0; 6]), eperm);
        assert_eq!(run(libc::SYS_socket, [0; 6]), eperm);
        assert_eq!(run(libc::SYS_ptrace, [0; 6]), eperm);
        assert_eq!(run(libc::SYS_ioctl, [3, 0x5412, 0, 0, 0, 0]), eperm);
        let recv = libc::SECCOMP_IOCTL_NOTIF_RECV;
        assert_eq!(run(libc::SYS_ioctl, [3, recv, 0, 0, 0, 0]), bpf::RET_ALLOW);
        let thread = CLONE_THREAD_FLAGS | libc::CLONE_SETTLS as u64;
        assert_eq!(
            run(libc::SYS_clone, [thread, 0, 0, 0, 0, 0]),
            bpf::RET_ALLOW
        );
        assert_eq!(
            run(libc::SYS_clone, [libc::SIGCHLD as u64, 0, 0, 0, 0, 0]),
            eperm
        );
        assert_eq!(run(libc::SYS_read, [0; 6]), bpf::RET_ALLOW);
    }
}
