//! In-process cost of answering requests (no socket): where a round trip's time goes.
//!   cargo run --release -p mantle-gofer --example server_cost
use std::os::fd::{FromRawFd, OwnedFd};
use std::time::Instant;

use gofer::protocol::{Handle, Owner, Request, Target};
use gofer::server::{Server, ServerConfig};

fn main() {
    let dir = std::env::temp_dir().join(format!("gofer-cost-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("usr/lib/x86_64-linux-gnu")).expect("mkdir");
    std::fs::write(dir.join("usr/lib/x86_64-linux-gnu/libc.so.6"), b"ELF").expect("write");
    let c = std::ffi::CString::new(dir.to_str().expect("utf-8")).expect("no NUL");
    // SAFETY: valid C string; checked below, then owned.
    let fd = unsafe {
        libc::open(
            c.as_ptr(),
            libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    };
    assert!(fd >= 0);
    // SAFETY: fresh fd.
    let root = unsafe { OwnedFd::from_raw_fd(fd) };
    let cfg = ServerConfig {
        masked_paths: vec!["/proc/kcore".into(), "/proc/acpi".into()],
        readonly_paths: vec!["/proc/sys".into()],
        ..Default::default()
    };
    let mut s = Server::new(root, &cfg).expect("server");
    let path = "usr/lib/x86_64-linux-gnu/libc.so.6";
    let cases = [
        ("Stats", Request::Stats),
        (
            "StatAt 4 components",
            Request::StatAt {
                at: Target::new(Handle::ROOT, path),
            },
        ),
        (
            "StatAt 1 component",
            Request::StatAt {
                at: Target::new(Handle::ROOT, "usr"),
            },
        ),
        (
            "Open 4 components",
            Request::Open {
                at: Target::new(Handle::ROOT, path),
                flags: libc::O_RDONLY as u32,
                mode: 0,
                owner: Owner::UNCHANGED,
            },
        ),
    ];
    let n = 50_000;
    for (name, req) in cases {
        let bytes = req.encode();
        let t = Instant::now();
        for _ in 0..n {
            let (r, fd) = s.handle_packet(&bytes);
            std::hint::black_box((r, fd));
        }
        println!(
            "{name:<24} {:>7.2} us",
            t.elapsed().as_secs_f64() * 1e6 / n as f64
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
