//! The program mantle-bench runs inside containers (static, no loader, no libraries), so that
//! what is timed is the runtime's syscall path and nothing else.
//!
//! `syscalls N [FILE]`: times N iterations of each probe and prints one JSON object of ns per call.
//! `phases LABEL CMD [LABEL CMD]...`: runs each CMD with /bin/sh -c in order, prints one JSON
//! object of elapsed ns per label; exits non-zero (after printing) if a command fails.
//!
//! Clocks come from the vDSO (clock_gettime), so reading the time is no syscall and is not
//! intercepted by the sentry.

use std::ffi::CString;
use std::process::{Command, ExitCode};
use std::time::Instant;

/// The file the open and stat probes use by default; the bench writes it into the rootfs.
const PROBE_FILE: &str = "/etc/bench-file";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("syscalls") => {
            let n = args
                .get(1)
                .and_then(|s| s.parse().ok())
                .unwrap_or(10_000u64);
            let file = args.get(2).map(String::as_str).unwrap_or(PROBE_FILE);
            syscalls(n, file)
        }
        Some("phases") => phases(&args[1..]),
        _ => {
            eprintln!("usage: mantle-bench-workload syscalls N [FILE] | phases LABEL CMD...");
            ExitCode::from(2)
        }
    }
}

/// One probe: a name and a closure doing one iteration; returns false on a failed call.
type Probe<'a> = (&'static str, Box<dyn FnMut() -> bool + 'a>);

fn syscalls(n: u64, file: &str) -> ExitCode {
    let Ok(path) = CString::new(file) else {
        eprintln!("syscalls: the probe path contains a NUL byte");
        return ExitCode::from(2);
    };
    let mut pipe = [0i32; 2];
    // SAFETY: pipe2 writes two fds into the array we own.
    if unsafe { libc::pipe2(pipe.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        eprintln!("pipe2: {}", std::io::Error::last_os_error());
        return ExitCode::from(1);
    }
    let mut buf = [0u8; 4096];
    let probes: Vec<Probe> = vec![
        // Allowed by the sentry's BPF filter: the cost of the filter alone.
        (
            "getppid",
            Box::new(|| {
                // SAFETY: getppid takes no arguments and cannot fail.
                unsafe { libc::syscall(libc::SYS_getppid) };
                true
            }),
        ),
        // Emulated by the sentry itself (container hostname), no gofer: one notify round trip.
        (
            "uname",
            Box::new(|| {
                // SAFETY: utsname is plain data; uname fills it.
                let mut u: libc::utsname = unsafe { std::mem::zeroed() };
                // SAFETY: u is a valid, writable utsname.
                unsafe { libc::uname(&mut u) == 0 }
            }),
        ),
        // Path syscall: emulated with the gofer's help.
        (
            "stat",
            Box::new(|| {
                // SAFETY: stat is plain data; newfstatat fills it from a NUL-terminated path.
                let mut st: libc::stat = unsafe { std::mem::zeroed() };
                // SAFETY: valid path pointer and writable stat buffer.
                unsafe {
                    libc::syscall(
                        libc::SYS_newfstatat,
                        libc::AT_FDCWD,
                        path.as_ptr(),
                        &mut st as *mut libc::stat,
                        0,
                    ) == 0
                }
            }),
        ),
        // Open (emulated: the gofer opens, the fd is injected), read (pass), close (pass).
        (
            "open_read_close",
            Box::new(|| {
                // SAFETY: valid NUL-terminated path.
                let fd = unsafe {
                    libc::syscall(
                        libc::SYS_openat,
                        libc::AT_FDCWD,
                        path.as_ptr(),
                        libc::O_RDONLY | libc::O_CLOEXEC,
                    )
                } as i32;
                if fd < 0 {
                    return false;
                }
                // SAFETY: buf is a writable buffer of the given length; fd is ours.
                let r = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
                // SAFETY: fd is ours and closed once.
                unsafe { libc::close(fd) };
                r >= 0
            }),
        ),
        // Pass-through data path: 64 bytes through a pipe the workload holds.
        (
            "pipe_write_read",
            Box::new(move || {
                let msg = [7u8; 64];
                let mut back = [0u8; 64];
                // SAFETY: buffers are valid for 64 bytes; the fds are the pipe we created.
                unsafe {
                    libc::write(pipe[1], msg.as_ptr().cast(), 64) == 64
                        && libc::read(pipe[0], back.as_mut_ptr().cast(), 64) == 64
                }
            }),
        ),
    ];
    let mut out = Vec::new();
    for (name, mut f) in probes {
        if !f() {
            out.push(format!(
                "\"{name}\":{{\"error\":\"{}\"}}",
                std::io::Error::last_os_error()
            ));
            continue;
        }
        for _ in 0..n.min(1000) / 10 {
            f();
        }
        let t = Instant::now();
        let mut failed = 0u64;
        for _ in 0..n {
            failed += u64::from(!f());
        }
        let ns = t.elapsed().as_nanos() as f64 / n.max(1) as f64;
        out.push(format!("\"{name}\":{{\"ns\":{ns:.1},\"failed\":{failed}}}"));
    }
    println!("{{{}}}", out.join(","));
    ExitCode::SUCCESS
}

fn phases(args: &[String]) -> ExitCode {
    if args.is_empty() || !args.len().is_multiple_of(2) {
        eprintln!("phases: expected LABEL CMD pairs");
        return ExitCode::from(2);
    }
    let mut out = Vec::new();
    let mut code = ExitCode::SUCCESS;
    for pair in args.chunks(2) {
        let t = Instant::now();
        let status = Command::new("/bin/sh").arg("-c").arg(&pair[1]).status();
        let ns = t.elapsed().as_nanos();
        match status {
            Ok(s) if s.success() => out.push(format!("\"{}\":{{\"ns\":{ns}}}", pair[0])),
            Ok(s) => {
                out.push(format!("\"{}\":{{\"error\":\"{s}\"}}", pair[0]));
                code = ExitCode::from(1);
                break;
            }
            Err(e) => {
                out.push(format!("\"{}\":{{\"error\":\"spawn: {e}\"}}", pair[0]));
                code = ExitCode::from(1);
                break;
            }
        }
    }
    println!("{{{}}}", out.join(","));
    code
}
