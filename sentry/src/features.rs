//! What the running kernel offers sentry mode (for `mantle features` and error messages).

use std::fmt;

use crate::bpf::{self, Insn};

/// Kernel support relevant to the sentry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Features {
    pub platform: &'static str,
    pub kernel_release: String,
    /// seccomp user notification (SECCOMP_FILTER_FLAG_NEW_LISTENER, Linux 5.0).
    pub user_notif: bool,
    /// SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP (Linux 6.6): the fast round trip.
    pub sync_wake_up: bool,
    /// SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV (Linux 5.19).
    pub wait_killable_recv: bool,
    /// SECCOMP_ADDFD_FLAG_SEND (Linux 5.14) is assumed with SYNC_WAKE_UP's kernels.
    pub syscalls_known: usize,
    pub syscalls_passed: usize,
}

impl Features {
    /// The error to show when sentry mode cannot run here.
    pub fn require(&self) -> Result<(), crate::Error> {
        if self.user_notif {
            Ok(())
        } else {
            Err(crate::Error::NoUserNotif(
                std::io::Error::from_raw_os_error(libc::ENOSYS),
            ))
        }
    }
}

impl fmt::Display for Features {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "platform: {}", self.platform)?;
        writeln!(f, "kernel: {}", self.kernel_release)?;
        writeln!(f, "seccomp user notification: {}", yes(self.user_notif))?;
        writeln!(
            f,
            "SYNC_WAKE_UP (fast round trip): {}",
            yes(self.sync_wake_up)
        )?;
        writeln!(f, "WAIT_KILLABLE_RECV: {}", yes(self.wait_killable_recv))?;
        write!(
            f,
            "syscall table: {} rows, {} pass natively",
            self.syscalls_known, self.syscalls_passed
        )?;
        if !self.user_notif {
            write!(
                f,
                "\nsentry mode needs seccomp user notification; use the ptrace platform"
            )?;
        }
        Ok(())
    }
}

fn yes(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

/// Probe in a throwaway child process: install an allow-all filter with a listener (so this
/// process stays unfiltered), try the flags, report through the exit code.
pub fn probe() -> Features {
    let allow = [Insn {
        code: 0x06,
        jt: 0,
        jf: 0,
        k: bpf::RET_ALLOW,
    }];
    let bits = probe_child(&allow).unwrap_or(0);
    // SAFETY: utsname is plain chars; zeroed is valid.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: `u` is writable for the call.
    unsafe { libc::uname(&mut u) };
    // SAFETY: the kernel NUL-terminates `release`.
    let release = unsafe { std::ffi::CStr::from_ptr(u.release.as_ptr()) }
        .to_string_lossy()
        .into_owned();
    Features {
        platform: "seccomp-notify",
        kernel_release: release,
        user_notif: bits & 1 != 0,
        sync_wake_up: bits & 2 != 0,
        wait_killable_recv: bits & 4 != 0,
        syscalls_known: crate::table::table().len(),
        syscalls_passed: crate::table::pass_count(),
    }
}

fn probe_child(prog: &[Insn]) -> Option<i32> {
    let fprog = libc::sock_fprog {
        len: prog.len() as u16,
        filter: prog.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: the child only makes raw syscalls (async-signal-safe) and _exits.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return None;
    }
    if pid == 0 {
        // SAFETY: raw syscalls on values prepared before fork; the child never returns.
        unsafe {
            let mut bits = 0;
            libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
            let base = libc::SECCOMP_FILTER_FLAG_NEW_LISTENER;
            let mut fd = libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_SET_MODE_FILTER,
                base | libc::SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV,
                &fprog as *const libc::sock_fprog,
            );
            if fd >= 0 {
                bits |= 4;
            } else {
                fd = libc::syscall(
                    libc::SYS_seccomp,
                    libc::SECCOMP_SET_MODE_FILTER,
                    base,
                    &fprog as *const libc::sock_fprog,
                );
            }
            if fd >= 0 {
                bits |= 1;
                let flags: u64 = 1;
                if libc::ioctl(fd as i32, libc::SECCOMP_IOCTL_NOTIF_SET_FLAGS as _, flags) == 0 {
                    bits |= 2;
                }
            }
            libc::_exit(bits);
        }
    }
    let mut status = 0;
    // SAFETY: waiting for our own child.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status))
}
