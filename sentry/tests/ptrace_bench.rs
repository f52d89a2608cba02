//! Round-trip cost of the ptrace platform, next to its floor and to seccomp user notification.
//! Ignored by default (timing, not correctness); run with
//! `cargo test -p mantle-sentry --release --test ptrace_bench -- --ignored --nocapture`.
//!
//! * floor: a traced child calls getppid, which a two-line filter sends to the tracer
//!   (RET_TRACE); the tracer answers at once (GETREGS, SETREGS with orig_rax = -1, CONT);
//! * sentry/ptrace: the workload under the real table, `uname` (the cheapest emulated call: no
//!   gofer round trip; getppid itself passes natively in the table) answered by
//!   `Sentry::serve(&Ptrace)`;
//! * sentry/seccomp: the same loop on the seccomp user-notification platform;
//! * open+close: `open` of a file the gofer serves (a gofer round trip + fd injection) and a
//!   native `close`, on both platforms.
//!
//! Each is run with every thread pinned to CPU 0 and unpinned; the best of three runs is shown.

use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

use sentry::platforms::ptrace::{prepare_tracee_with, Ptrace, TraceProgram};
use sentry::{Sentry, SentryConfig};

const N: u64 = 20_000;

fn now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

fn pipe() -> (OwnedFd, OwnedFd) {
    let mut fds = [0; 2];
    // SAFETY: room for two fds.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: fresh fds.
    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}

fn pin(cpu: Option<usize>) {
    // SAFETY: cpu_set_t is plain data; sched_setaffinity on the calling thread.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        match cpu {
            Some(c) => libc::CPU_SET(c, &mut set),
            None => {
                for c in 0..libc::CPU_SETSIZE as usize {
                    libc::CPU_SET(c, &mut set);
                }
            }
        }
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

/// In the child: time N raw syscalls `nr` and write ns/call (as u64) to `out`. Never returns.
fn timed_loop(nr: libc::c_long, arg: u64, out: i32) -> ! {
    let n = if nr == libc::SYS_open { N / 10 } else { N };
    let t0 = now_ns();
    for _ in 0..n {
        // SAFETY: getppid/uname/open with a valid buffer or path pointer (or none).
        let r = unsafe { libc::syscall(nr, arg) };
        if nr == libc::SYS_open && r >= 0 {
            // SAFETY: closing the fd just opened.
            unsafe { libc::close(r as i32) };
        }
    }
    let per = (now_ns() - t0) / n;
    // SAFETY: write 8 bytes from the stack, then end the child.
    unsafe {
        libc::write(out, (&per as *const u64).cast(), 8);
        libc::_exit(0)
    }
}

fn read_result(r: OwnedFd) -> u64 {
    let mut f = std::fs::File::from(r);
    let mut b = [0u8; 8];
    f.read_exact(&mut b).expect("child reported");
    u64::from_ne_bytes(b)
}

/// The raw floor: a two-instruction-policy filter (getppid -> TRACE, else ALLOW).
fn floor() -> u64 {
    let prog: [libc::sock_filter; 4] = [
        libc::sock_filter {
            code: 0x20,
            jt: 0,
            jf: 0,
            k: 0,
        }, // ld nr
        libc::sock_filter {
            code: 0x15,
            jt: 0,
            jf: 1,
            k: libc::SYS_getppid as u32,
        },
        libc::sock_filter {
            code: 0x06,
            jt: 0,
            jf: 0,
            k: sentry::platforms::ptrace::RET_TRACE,
        },
        libc::sock_filter {
            code: 0x06,
            jt: 0,
            jf: 0,
            k: 0x7fff_0000,
        },
    ];
    let (res_r, res_w) = pipe();
    let (go_r, go_w) = pipe();
    // SAFETY: the child makes raw syscalls only and _exits.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0);
    if pid == 0 {
        // SAFETY: raw syscalls on prepared data.
        unsafe {
            libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
            let fprog = libc::sock_fprog {
                len: 4,
                filter: prog.as_ptr() as *mut _,
            };
            libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_SET_MODE_FILTER,
                0,
                &fprog as *const _,
            );
            let mut b = 0u8;
            libc::read(go_r.as_raw_fd(), (&mut b as *mut u8).cast(), 1);
        }
        timed_loop(libc::SYS_getppid, 0, res_w.as_raw_fd());
    }
    drop(res_w);
    let opts = libc::PTRACE_O_TRACESECCOMP | libc::PTRACE_O_EXITKILL;
    // SAFETY: seizing our own child.
    assert_eq!(
        unsafe { libc::ptrace(libc::PTRACE_SEIZE, pid, 0, opts as usize) },
        0
    );
    // SAFETY: one byte from the stack.
    unsafe { libc::write(go_w.as_raw_fd(), b"g".as_ptr().cast(), 1) };
    loop {
        let mut st = 0;
        // SAFETY: waiting for our own tracee.
        let r = unsafe { libc::waitpid(pid, &mut st, libc::__WALL) };
        assert_eq!(r, pid);
        if !libc::WIFSTOPPED(st) {
            break;
        }
        let mut sig = 0;
        if st >> 16 == libc::PTRACE_EVENT_SECCOMP {
            // SAFETY: plain data; ptrace fills/reads it.
            let mut regs: libc::user_regs_struct = unsafe { std::mem::zeroed() };
            // SAFETY: as above.
            unsafe {
                libc::ptrace(libc::PTRACE_GETREGS, pid, 0, &mut regs as *mut _ as usize);
                regs.orig_rax = u64::MAX;
                regs.rax = 42;
                libc::ptrace(libc::PTRACE_SETREGS, pid, 0, &regs as *const _ as usize);
            }
        } else if st >> 16 == 0 {
            sig = libc::WSTOPSIG(st);
        }
        // SAFETY: resuming our own tracee.
        unsafe { libc::ptrace(libc::PTRACE_CONT, pid, 0, sig as usize) };
    }
    read_result(res_r)
}

fn fork_gofer(root: &std::path::Path) -> (OwnedFd, i32) {
    let (client, server) = gofer::wire::socketpair().unwrap();
    let root_fd: OwnedFd = std::fs::File::open(root).unwrap().into();
    // SAFETY: the child serves and _exits.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0);
    if pid == 0 {
        drop(client);
        let code = gofer::server::serve(server, root_fd, &gofer::server::ServerConfig::default())
            .is_err() as i32;
        // SAFETY: end the child.
        unsafe { libc::_exit(code) };
    }
    (client, pid)
}

fn reap(pid: i32) {
    let mut st = 0;
    // SAFETY: waiting for our own child (ECHILD if the tracer already reaped it is fine).
    unsafe { libc::waitpid(pid, &mut st, libc::__WALL) };
}

/// `uname` (or `open` + `close` of a file, with `open_file`) through the sentry on either
/// platform.
fn through_sentry(ptrace: bool, open_file: bool) -> u64 {
    let tmp = std::env::temp_dir().join(format!("ptrace-bench-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    std::fs::write(tmp.join("f"), "x").unwrap();
    let path = std::ffi::CString::new("/f").unwrap();
    let (gofer_client, gofer_pid) = fork_gofer(&tmp);
    let trace_prog = TraceProgram::new().unwrap();
    let notify_prog = sentry::filter::Program::new().unwrap();
    let (ours, theirs) = std::os::unix::net::UnixStream::pair().unwrap();
    let (res_r, res_w) = pipe();
    // SAFETY: plain data, filled by the kernel in the child.
    let mut uts: Box<libc::utsname> = Box::new(unsafe { std::mem::zeroed() });
    let uts_ptr = &mut *uts as *mut libc::utsname as u64;
    // SAFETY: the child makes raw syscalls on data prepared before the fork and _exits.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0);
    if pid == 0 {
        let sock = theirs.as_raw_fd();
        if ptrace {
            if prepare_tracee_with(&trace_prog, sock).is_err() {
                // SAFETY: end the child.
                unsafe { libc::_exit(100) };
            }
        } else {
            let l = sentry::filter::install_program(&notify_prog).unwrap();
            sentry::fdpass::send_fd(theirs.as_fd(), l.as_fd()).unwrap();
            drop(l);
        }
        if open_file {
            timed_loop(libc::SYS_open, path.as_ptr() as u64, res_w.as_raw_fd());
        }
        timed_loop(libc::SYS_uname, uts_ptr, res_w.as_raw_fd());
    }
    drop(theirs);
    drop(res_w);
    let s = Sentry::new(
        SentryConfig::default(),
        gofer::client::Client::new(gofer_client),
    )
    .unwrap();
    if ptrace {
        let p = Ptrace::seize(pid, ours.as_fd()).unwrap();
        s.serve(&p).unwrap();
    } else {
        let l = sentry::fdpass::recv_fd(ours.as_fd()).unwrap();
        std::thread::scope(|sc| {
            sc.spawn(|| {
                reap(pid);
            });
            s.serve_seccomp(l).unwrap();
        });
    }
    let per = read_result(res_r);
    reap(pid);
    drop(s);
    reap(gofer_pid);
    let _ = std::fs::remove_dir_all(&tmp);
    per
}

#[test]
#[ignore = "benchmark: run with --ignored --nocapture"]
fn ptrace_round_trip() {
    let mut rows = Vec::new();
    for (label, cpu) in [("pinned to CPU 0", Some(0)), ("unpinned", None)] {
        pin(cpu);
        // Best of three: the machine is shared, and the minimum is the least disturbed run.
        let best = |f: &dyn Fn() -> u64| (0..3).map(|_| f()).min().unwrap_or(0);
        let f = best(&floor);
        let p = best(&|| through_sentry(true, false));
        let s = best(&|| through_sentry(false, false));
        let po = best(&|| through_sentry(true, true));
        let so = best(&|| through_sentry(false, true));
        rows.push(format!(
            "{label:16} floor (getppid, RET_TRACE, answered at once): {:6.2} us | \
             sentry/ptrace uname: {:6.2} us | sentry/seccomp uname: {:6.2} us | \
             open+close ptrace: {:6.2} us, seccomp: {:6.2} us | ratios: ptrace uname/floor \
             {:.2}x, ptrace/seccomp uname {:.2}x, open+close {:.2}x",
            f as f64 / 1000.0,
            p as f64 / 1000.0,
            s as f64 / 1000.0,
            po as f64 / 1000.0,
            so as f64 / 1000.0,
            p as f64 / f.max(1) as f64,
            p as f64 / s.max(1) as f64,
            po as f64 / so.max(1) as f64
        ));
        assert!(f > 0 && p > 0 && s > 0);
    }
    pin(None);
    std::thread::sleep(Duration::from_millis(1));
    for r in rows {
        println!("{r}");
    }
}
