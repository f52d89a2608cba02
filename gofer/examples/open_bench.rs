//! open + fstat + close through the gofer vs natively, printing the ratio. No assertions:
//! a measurement to read, not a pass/fail test.
//!
//!   cargo run --release -p mantle-gofer --example open_bench [-- ITERATIONS [--confine]]
//!
//! The gofer runs in a forked child process (as in production, so every request is a real
//! cross-process round trip), confined with `--confine`.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Instant;

use gofer::client::Client;
use gofer::protocol::{Handle, Owner, Target};
use gofer::server::ServerConfig;

fn open_root(p: &std::path::Path) -> OwnedFd {
    let c = std::ffi::CString::new(p.to_str().expect("utf-8 path")).expect("no NUL");
    // SAFETY: valid C string; the fd is checked and then owned.
    let fd = unsafe {
        libc::open(
            c.as_ptr(),
            libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    };
    assert!(fd >= 0, "open {}", p.display());
    // SAFETY: fresh fd owned by nothing else.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

fn fstat(fd: i32) {
    // SAFETY: stat into a zeroed struct from a valid fd.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    assert_eq!(unsafe { libc::fstat(fd, &mut st) }, 0);
}

fn time(label: &str, n: u32, mut f: impl FnMut()) -> f64 {
    for _ in 0..n / 10 {
        f(); // warm up
    }
    let t = Instant::now();
    for _ in 0..n {
        f();
    }
    let us = t.elapsed().as_secs_f64() * 1e6 / n as f64;
    println!("{label:<48} {us:>8.2} us/op");
    us
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n: u32 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(20_000);
    let confine = args.iter().any(|a| a == "--confine");
    let dir = std::env::temp_dir().join(format!("gofer-bench-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("usr/lib/x86_64-linux-gnu")).expect("mkdir");
    std::fs::write(dir.join("usr/lib/x86_64-linux-gnu/libc.so.6"), b"ELF").expect("write");
    let path = "usr/lib/x86_64-linux-gnu/libc.so.6";
    let cpath = std::ffi::CString::new(path).expect("no NUL");
    let root = open_root(&dir);

    gofer::server::prepare_mask_sources();
    let (mine, theirs) = gofer::wire::socketpair().expect("socketpair");
    // SAFETY: the child only serves and then _exits.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        drop(mine);
        let cfg = ServerConfig::default();
        if confine {
            gofer::confine::confine(&root, &cfg).expect("confine");
        }
        let rc = gofer::server::serve(theirs, root, &cfg).map_or(1, |_| 0);
        // SAFETY: leave the child without the parent's destructors.
        unsafe { libc::_exit(rc) };
    }
    drop(theirs);
    let c = Client::new(mine);
    c.hello().expect("hello");
    println!(
        "gofer in pid {pid}{}; {n} iterations",
        if confine { " (confined)" } else { "" }
    );

    let native = time("native openat+fstat+close (4 components)", n, || {
        // SAFETY: valid dir fd and C string; the fd is closed right away.
        let fd = unsafe {
            libc::openat(
                root.as_raw_fd(),
                cpath.as_ptr(),
                libc::O_RDONLY | libc::O_CLOEXEC,
            )
        };
        assert!(fd >= 0);
        fstat(fd);
        // SAFETY: closing the fd we just opened.
        unsafe { libc::close(fd) };
    });
    let ro = libc::O_RDONLY as u32;
    let via = time("gofer Open+fstat+close (4 components, 1 trip)", n, || {
        let (fd, _) = c
            .open(Target::new(Handle::ROOT, path), ro, 0, Owner::UNCHANGED)
            .expect("open");
        fstat(fd.as_raw_fd());
    });
    let (dirh, _) = c
        .walk(Target::new(Handle::ROOT, "usr/lib/x86_64-linux-gnu"))
        .expect("walk");
    let via_h = time("gofer Open+fstat+close (dir handle + name)", n, || {
        let (fd, _) = c
            .open(Target::new(dirh, "libc.so.6"), ro, 0, Owner::UNCHANGED)
            .expect("open");
        fstat(fd.as_raw_fd());
    });
    let stat = time("gofer StatAt (4 components)", n, || {
        c.stat(Target::new(Handle::ROOT, path)).expect("stat");
    });
    let nstat = time("native fstatat (4 components)", n, || {
        // SAFETY: stat into a zeroed struct.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: valid dir fd, C string and buffer.
        assert_eq!(
            unsafe { libc::fstatat(root.as_raw_fd(), cpath.as_ptr(), &mut st, 0) },
            0
        );
    });
    let null = time("gofer Stats (empty round trip)", n, || {
        c.stats().expect("stats");
    });
    println!("ratio open gofer/native:             {:.1}x", via / native);
    println!(
        "ratio open via dir handle/native:    {:.1}x",
        via_h / native
    );
    println!("ratio stat gofer/native:             {:.1}x", stat / nstat);
    println!(
        "round trip share of a gofer open:    {:.0}%",
        100.0 * null / via
    );
    drop(c);
    let mut status = 0;
    // SAFETY: reaping our own child.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    let _ = std::fs::remove_dir_all(&dir);
}
