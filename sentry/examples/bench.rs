//! Sentry micro-benchmarks (needs root and gcc). Prints ns per call and ratios:
//!
//! * raw unotify floor: a filter that notifies only getppid and a supervisor thread that
//!   answers immediately, with and without SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP;
//! * the same syscalls natively (chroot) and under the sentry (launch::run_command).
//!
//! `cargo run --release -p mantle-sentry --example sentry-bench [ITERATIONS]`

use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use sentry::bpf::{Insn, RET_ALLOW, RET_USER_NOTIF};
use sentry::platform::{Platform, Reply};
use sentry::platforms::seccomp_notify::SeccompNotify;

fn native_getppid(n: u32) -> f64 {
    let t = Instant::now();
    for _ in 0..n {
        // SAFETY: getppid has no arguments and no side effects.
        unsafe { libc::syscall(libc::SYS_getppid) };
    }
    t.elapsed().as_nanos() as f64 / n as f64
}

/// A child notifies getppid `n` times; we answer each at once. Returns ns per call measured
/// in the child.
fn raw_floor(n: u32, sync_wake_up: bool) -> f64 {
    let prog = [
        Insn {
            code: 0x20,
            jt: 0,
            jf: 0,
            k: 0,
        }, // ld nr
        Insn {
            code: 0x15,
            jt: 0,
            jf: 1,
            k: libc::SYS_getppid as u32,
        }, // jeq getppid
        Insn {
            code: 0x06,
            jt: 0,
            jf: 0,
            k: RET_USER_NOTIF,
        },
        Insn {
            code: 0x06,
            jt: 0,
            jf: 0,
            k: RET_ALLOW,
        },
    ];
    let mut sv = [0; 2];
    // SAFETY: `sv` has room for two fds.
    assert_eq!(
        unsafe { libc::socketpair(libc::AF_UNIX, libc::SOCK_STREAM, 0, sv.as_mut_ptr()) },
        0
    );
    // SAFETY: the child makes raw syscalls only and _exits.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        // SAFETY: raw syscalls on stack data; never returns.
        unsafe {
            libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
            let fprog = libc::sock_fprog {
                len: prog.len() as u16,
                filter: prog.as_ptr() as *mut libc::sock_filter,
            };
            let fd = libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_SET_MODE_FILTER,
                libc::SECCOMP_FILTER_FLAG_NEW_LISTENER,
                &fprog,
            );
            let fd_sock = OwnedFd::from_raw_fd(sv[1]);
            let lfd = OwnedFd::from_raw_fd(fd as i32);
            let _ = sentry::fdpass::send_fd(fd_sock.as_fd(), lfd.as_fd());
            drop(lfd);
            let mut ts0: libc::timespec = std::mem::zeroed();
            let mut ts1: libc::timespec = std::mem::zeroed();
            libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts0);
            for _ in 0..n {
                libc::syscall(libc::SYS_getppid);
            }
            libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts1);
            let ns = ((ts1.tv_sec - ts0.tv_sec) as f64 * 1e9 + (ts1.tv_nsec - ts0.tv_nsec) as f64)
                / n as f64;
            let b = ns.to_le_bytes();
            libc::write(sv[1], b.as_ptr().cast(), 8);
            libc::_exit(0);
        }
    }
    // SAFETY: our end of the pair.
    let sock = unsafe { OwnedFd::from_raw_fd(sv[0]) };
    // SAFETY: the child's end, closed here.
    unsafe { libc::close(sv[1]) };
    let listener = sentry::fdpass::recv_fd(sock.as_fd()).expect("listener");
    let p = if sync_wake_up {
        SeccompNotify::new(listener)
    } else {
        // Without the flag: a listener on which SET_FLAGS is never called.
        SeccompNotify::new_without_sync_wake_up(listener)
    };
    for _ in 0..n {
        let ev = p.receive().expect("receive").expect("event");
        p.reply(&ev, Reply::Value(1)).expect("reply");
    }
    let mut b = [0u8; 8];
    // SAFETY: reading 8 bytes into `b`.
    unsafe { libc::read(sock.as_raw_fd(), b.as_mut_ptr().cast(), 8) };
    let mut st = 0;
    // SAFETY: our child.
    unsafe { libc::waitpid(pid, &mut st, 0) };
    f64::from_le_bytes(b)
}

fn parse(out: &str) -> Vec<(String, f64)> {
    out.lines()
        .filter_map(|l| {
            let (a, b) = l.rsplit_once(' ')?;
            Some((a.to_string(), b.parse().ok()?))
        })
        .collect()
}

fn main() {
    let n: u32 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(20000);
    let native = native_getppid(n);
    let sync = raw_floor(n, true);
    let plain = raw_floor(n.min(5000), false);
    println!("raw unotify floor (getppid, answered at once):");
    println!("  native getppid            {native:>8.0} ns");
    println!(
        "  unotify + SYNC_WAKE_UP    {sync:>8.0} ns  ({:.0}x native)",
        sync / native
    );
    println!(
        "  unotify, no SYNC_WAKE_UP  {plain:>8.0} ns  ({:.0}x native)",
        plain / native
    );

    let dir = std::env::temp_dir().join(format!("sentry-bench-{}", std::process::id()));
    let root = dir.join("root");
    std::fs::create_dir_all(root.join("tmp")).unwrap();
    std::fs::create_dir_all(root.join("bin")).unwrap();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/bench_prog.c");
    let ok = Command::new("gcc")
        .args(["-static", "-O2", "-o"])
        .arg(root.join("bin/bench"))
        .arg(&src)
        .status();
    if !matches!(ok, Ok(s) if s.success()) {
        eprintln!("gcc failed; skipping the sentry part");
        return;
    }
    let ns = n.to_string();
    let nat = Command::new("chroot")
        .arg(&root)
        .args(["/bin/bench", &ns])
        .output()
        .unwrap();
    let native_rows = parse(&String::from_utf8_lossy(&nat.stdout));
    // Under the sentry: the workload writes to our stdout; capture it through a file.
    let out_path = root.join("tmp/out");
    std::fs::write(root.join("tmp/run.sh"), "").ok();
    let cfg = sentry::SentryConfig::default();
    let _ = std::fs::remove_file(&out_path);
    // Redirect our stdout to the file for the workload's lifetime.
    let saved = unsafe { libc::dup(1) };
    let f = std::fs::File::create(&out_path).unwrap();
    // SAFETY: duplicating valid fds onto stdout and back.
    unsafe { libc::dup2(f.as_raw_fd(), 1) };
    let st = sentry::launch::run_command(&["/bin/bench", &ns], &root, cfg);
    // SAFETY: as above.
    unsafe {
        libc::dup2(saved, 1);
        libc::close(saved)
    };
    st.expect("run under sentry");
    let sen_rows = parse(&std::fs::read_to_string(&out_path).unwrap_or_default());
    println!("per call, native chroot vs under the sentry ({n} iterations):");
    for ((name, a), (_, b)) in native_rows.iter().zip(sen_rows.iter()) {
        println!(
            "  {name:<28} {a:>8.0} ns  {b:>8.0} ns  ({:.1}x)",
            b / a.max(1.0)
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
