//! The physical floor of sentry mode: a raw seccomp user-notification round trip between two
//! processes on this machine, with and without SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP.
//!
//! A forked child installs a filter that sends getppid to a listener and calls it in a loop;
//! the parent takes the listener with pidfd_getfd and answers each notification at once.
//! Nothing is emulated, so this is the least a notify-based sentry can cost per syscall.

use anyhow::{bail, Context, Result};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

const SECCOMP_SET_MODE_FILTER: libc::c_uint = 1;
const SECCOMP_FILTER_FLAG_NEW_LISTENER: libc::c_ulong = 1 << 3;
const SECCOMP_RET_USER_NOTIF: u32 = 0x7fc0_0000;
const SECCOMP_RET_ALLOW: u32 = 0x7fff_0000;
const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
// _IOWR('!', 0, struct seccomp_notif) (80 bytes), _IOWR('!', 1, struct seccomp_notif_resp)
// (24 bytes), _IOW('!', 4, __u64).
const NOTIF_RECV: libc::c_ulong = 0xc050_2100;
const NOTIF_SEND: libc::c_ulong = 0xc018_2101;
const NOTIF_SET_FLAGS: libc::c_ulong = 0x4008_2104;
const USER_NOTIF_FD_SYNC_WAKE_UP: u64 = 1;

#[repr(C)]
struct SeccompData {
    nr: i32,
    arch: u32,
    ip: u64,
    args: [u64; 6],
}

#[repr(C)]
struct Notif {
    id: u64,
    pid: u32,
    flags: u32,
    data: SeccompData,
}

#[repr(C)]
struct NotifResp {
    id: u64,
    val: i64,
    error: i32,
    flags: u32,
}

fn stmt(code: u16, k: u32) -> libc::sock_filter {
    libc::sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

fn jeq(k: u32, jt: u8, jf: u8) -> libc::sock_filter {
    libc::sock_filter {
        code: (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16,
        jt,
        jf,
        k,
    }
}

/// getppid -> USER_NOTIF; everything else (and other architectures) -> ALLOW.
fn program() -> Vec<libc::sock_filter> {
    let ld = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
    let ret = (libc::BPF_RET | libc::BPF_K) as u16;
    vec![
        stmt(ld, 4),
        jeq(AUDIT_ARCH_X86_64, 0, 2),
        stmt(ld, 0),
        jeq(libc::SYS_getppid as u32, 1, 0),
        stmt(ret, SECCOMP_RET_ALLOW),
        stmt(ret, SECCOMP_RET_USER_NOTIF),
    ]
}

fn pipe() -> Result<(OwnedFd, OwnedFd)> {
    let mut p = [0; 2];
    // SAFETY: pipe2 fills two fds into the array.
    if unsafe { libc::pipe2(p.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        bail!("pipe2: {}", io::Error::last_os_error());
    }
    // SAFETY: both fds are fresh and owned here.
    Ok(unsafe { (OwnedFd::from_raw_fd(p[0]), OwnedFd::from_raw_fd(p[1])) })
}

/// The child: install the filter, report the listener fd number, time `warm + n` calls, write
/// ns/call as f64 bytes, exit. Only raw syscalls (the parent may have threads).
fn child(prog: &[libc::sock_filter], tx: i32, warm: u64, n: u64) -> ! {
    let fprog = libc::sock_fprog {
        len: prog.len() as u16,
        filter: prog.as_ptr() as *mut _,
    };
    // SAFETY: raw syscalls on valid pointers; the process exits at the end.
    unsafe {
        if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
            libc::_exit(10);
        }
        let fd = libc::syscall(
            libc::SYS_seccomp,
            SECCOMP_SET_MODE_FILTER,
            SECCOMP_FILTER_FLAG_NEW_LISTENER,
            &fprog as *const libc::sock_fprog,
        ) as i32;
        if fd < 0 {
            libc::_exit(11);
        }
        if libc::write(tx, (&fd as *const i32).cast(), 4) != 4 {
            libc::_exit(12);
        }
        for _ in 0..warm {
            libc::syscall(libc::SYS_getppid);
        }
        let t = std::time::Instant::now();
        for _ in 0..n {
            libc::syscall(libc::SYS_getppid);
        }
        let ns = t.elapsed().as_nanos() as f64 / n.max(1) as f64;
        let b = ns.to_ne_bytes();
        libc::write(tx, b.as_ptr().cast(), 8);
        libc::_exit(0)
    }
}

/// Answers `count` notifications on `listener`, each with "return 1".
///
/// It polls before each RECV, as an event-loop supervisor does: the kernel wakes pollers of
/// the listener (its wait queue) on the notifying CPU when SYNC_WAKE_UP is set, while a task
/// blocked inside RECV is woken through a semaphore that ignores the flag.
fn serve(listener: &OwnedFd, count: u64) -> Result<()> {
    for _ in 0..count {
        let mut p = libc::pollfd {
            fd: listener.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd; a 10 s timeout only guards against a dead child.
        if unsafe { libc::poll(&mut p, 1, 10_000) } != 1 {
            bail!(
                "poll on the listener: no notification ({})",
                io::Error::last_os_error()
            );
        }
        // SAFETY: Notif is plain data; RECV requires it zeroed.
        let mut req: Notif = unsafe { std::mem::zeroed() };
        // SAFETY: ioctl with a pointer to a correctly sized struct.
        if unsafe { libc::ioctl(listener.as_raw_fd(), NOTIF_RECV, &mut req as *mut Notif) } != 0 {
            bail!("SECCOMP_IOCTL_NOTIF_RECV: {}", io::Error::last_os_error());
        }
        let mut resp = NotifResp {
            id: req.id,
            val: 1,
            error: 0,
            flags: 0,
        };
        // SAFETY: as above.
        if unsafe {
            libc::ioctl(
                listener.as_raw_fd(),
                NOTIF_SEND,
                &mut resp as *mut NotifResp,
            )
        } != 0
        {
            bail!("SECCOMP_IOCTL_NOTIF_SEND: {}", io::Error::last_os_error());
        }
    }
    Ok(())
}

fn read_exact(fd: &OwnedFd, buf: &mut [u8]) -> Result<()> {
    let mut got = 0;
    while got < buf.len() {
        // SAFETY: writes into the unfilled tail of buf.
        let r = unsafe {
            libc::read(
                fd.as_raw_fd(),
                buf[got..].as_mut_ptr().cast(),
                buf.len() - got,
            )
        };
        if r <= 0 {
            bail!("child pipe closed early (read returned {r})");
        }
        got += r as usize;
    }
    Ok(())
}

/// Restricts the calling process to CPU 0 (returns the previous mask to restore).
fn pin_to_cpu0() -> Result<libc::cpu_set_t> {
    // SAFETY: cpu_set_t is plain data; the CPU_* helpers only touch the set we own.
    unsafe {
        let mut old: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut old) != 0 {
            bail!("sched_getaffinity: {}", io::Error::last_os_error());
        }
        let mut one: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(0, &mut one);
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &one) != 0 {
            bail!("sched_setaffinity: {}", io::Error::last_os_error());
        }
        Ok(old)
    }
}

fn restore_affinity(old: &libc::cpu_set_t) {
    // SAFETY: restores a mask read by sched_getaffinity.
    unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), old) };
}

/// ns per notified getppid, measured over `n` calls; `pinned`: both processes on CPU 0 (the
/// child inherits the mask across fork).
pub fn round_trip(n: u64, sync_wakeup: bool, pinned: bool) -> Result<f64> {
    let old = if pinned { Some(pin_to_cpu0()?) } else { None };
    let r = round_trip_inner(n, sync_wakeup);
    if let Some(old) = old {
        restore_affinity(&old);
    }
    r
}

fn round_trip_inner(n: u64, sync_wakeup: bool) -> Result<f64> {
    let prog = program();
    let (rx, tx) = pipe()?;
    let warm = (n / 10).clamp(10, 1000);
    // SAFETY: the child only makes raw syscalls and exits (see `child`).
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        bail!("fork: {}", io::Error::last_os_error());
    }
    if pid == 0 {
        child(&prog, tx.as_raw_fd(), warm, n);
    }
    drop(tx);
    let result = (|| -> Result<f64> {
        let mut b = [0u8; 4];
        read_exact(&rx, &mut b)?;
        let remote = i32::from_ne_bytes(b);
        let pidfd = crate::proc::pidfd_open(pid).context("pidfd_open")?;
        // SAFETY: pidfd_getfd duplicates the child's listener into this process.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd.as_raw_fd(), remote, 0) };
        if fd < 0 {
            bail!("pidfd_getfd: {}", io::Error::last_os_error());
        }
        // SAFETY: fresh fd owned here.
        let listener = unsafe { OwnedFd::from_raw_fd(fd as i32) };
        if sync_wakeup {
            // SAFETY: ioctl with an integer argument.
            let r = unsafe {
                libc::ioctl(
                    listener.as_raw_fd(),
                    NOTIF_SET_FLAGS,
                    USER_NOTIF_FD_SYNC_WAKE_UP,
                )
            };
            if r != 0 {
                bail!(
                    "SECCOMP_IOCTL_NOTIF_SET_FLAGS: {}",
                    io::Error::last_os_error()
                );
            }
        }
        serve(&listener, warm + n)?;
        let mut b = [0u8; 8];
        read_exact(&rx, &mut b)?;
        Ok(f64::from_ne_bytes(b))
    })();
    let mut status = 0;
    if result.is_err() {
        // SAFETY: the child is ours and not yet reaped.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
    // SAFETY: reaps our own child.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A notified syscall costs more than a plain one: the round trip really went through the
    /// listener (a filter that was not installed would make both equal).
    #[test]
    fn round_trip_is_slower_than_a_plain_syscall() {
        let notified = round_trip(2000, true, false).expect("round trip");
        let t = std::time::Instant::now();
        for _ in 0..2000 {
            // SAFETY: getppid has no arguments.
            unsafe { libc::syscall(libc::SYS_getppid) };
        }
        let plain = t.elapsed().as_nanos() as f64 / 2000.0;
        assert!(
            notified.is_finite() && notified > plain,
            "{notified} vs {plain}"
        );
    }
}
