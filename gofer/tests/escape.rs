//! Escape attempts from a hostile rootfs: `..`, absolute and relative symlinks pointing out,
//! magic links in a real procfs, a directory moved out from under a handle, and a thread
//! swapping a directory for a symlink while the gofer resolves through it.

mod common;

use std::os::fd::AsRawFd;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use gofer::protocol::{Handle, Owner, Target};
use gofer::server::ServerConfig;

const R: Handle = Handle::ROOT;
const SECRET: &[u8] = b"HOST SECRET\n";
const INSIDE: &[u8] = b"inside\n";

/// `<tmp>/outside/secret` (what must stay unreachable) and `<tmp>/root` (the container).
fn layout() -> (TempDir, std::path::PathBuf) {
    let t = TempDir::new("escape");
    std::fs::create_dir_all(t.join("outside")).unwrap();
    std::fs::write(t.join("outside/secret"), SECRET).unwrap();
    let root = t.join("root");
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::write(root.join("etc/secret"), INSIDE).unwrap();
    std::fs::create_dir_all(root.join("a/b/c")).unwrap();
    (t, root)
}

fn sym(target: &str, at: &Path) {
    std::os::unix::fs::symlink(target, at).unwrap();
}

fn read_via(c: &gofer::client::Client, at: Target) -> Result<Vec<u8>, i32> {
    match c.open(at, libc::O_RDONLY as u32, 0, Owner::UNCHANGED) {
        Ok((fd, _)) => Ok(read_fd(&fd)),
        Err(gofer::Error::Remote(e)) => Err(e),
        Err(e) => panic!("transport error {e}"),
    }
}

#[test]
fn dotdot_and_symlinks_stay_inside() {
    let (t, root) = layout();
    let outside = t.join("outside");
    sym("../../../../../outside", &root.join("rel-out"));
    sym(outside.to_str().unwrap(), &root.join("abs-out"));
    sym("/etc", &root.join("abs-etc"));
    sym("/../../../etc/secret", &root.join("abs-dotdot"));
    sym("loop2", &root.join("loop1"));
    sym("loop1", &root.join("loop2"));
    let g = start(&root, ServerConfig::default());
    let c = &g.client;
    // `..` beyond the root stays at the root.
    assert_eq!(
        read_via(c, Target::new(R, "../../../../outside/secret")),
        Err(libc::ENOENT)
    );
    assert_eq!(
        read_via(c, Target::new(R, "../../../../etc/secret")),
        Ok(INSIDE.to_vec())
    );
    let (h, _) = c.walk(Target::new(R, "a/b/c")).unwrap();
    assert_eq!(
        read_via(c, Target::new(h, "../../../../../../etc/secret")),
        Ok(INSIDE.to_vec())
    );
    assert_eq!(
        c.stat(Target::new(h, "../../../../..")).unwrap().ino,
        c.stat(Target::new(R, "/")).unwrap().ino
    );
    // Symlinks pointing out resolve inside.
    assert_eq!(
        read_via(c, Target::new(R, "rel-out/secret")),
        Err(libc::ENOENT)
    );
    assert_eq!(
        read_via(c, Target::new(R, "abs-out/secret")),
        Err(libc::ENOENT)
    );
    assert_eq!(
        read_via(c, Target::new(R, "abs-etc/secret")),
        Ok(INSIDE.to_vec())
    );
    assert_eq!(
        read_via(c, Target::new(R, "abs-dotdot")),
        Ok(INSIDE.to_vec())
    );
    assert_eq!(
        read_via(c, Target::new(h, "../../../abs-etc/secret")),
        Ok(INSIDE.to_vec())
    );
    assert_eq!(read_via(c, Target::new(R, "loop1")), Err(libc::ELOOP));
    // Creating through an escaping symlink creates inside.
    sym("../../outside/created", &root.join("create-out"));
    c.open(
        Target::new(R, "create-out"),
        (libc::O_CREAT | libc::O_WRONLY) as u32,
        0o600,
        Owner::UNCHANGED,
    )
    .map(drop)
    .unwrap_or_else(|e| assert_eq!(e.errno(), libc::ENOENT));
    assert!(!t.join("outside/created").exists());
    // Names with '/' where one component is expected, in raw requests, are refused.
    assert_eq!(
        errno(c.readlink(Target::new(R, "rel-out/"))),
        libc::ENOENT,
        "trailing slash follows the link, whose target is missing inside"
    );
    g.finish().0.unwrap();
}

#[test]
fn handle_moved_outside_cannot_be_used_to_climb_out() {
    let (t, root) = layout();
    std::fs::create_dir_all(root.join("x/y")).unwrap();
    let g = start(&root, ServerConfig::default());
    let c = &g.client;
    let (h, _) = c.walk(Target::new(R, "x/y")).unwrap();
    // The host (or a racing sibling) moves the directory out of the root.
    std::fs::rename(root.join("x/y"), t.join("outside/y")).unwrap();
    // `..` from the handle is resolved from the recorded path inside the root, never by
    // the kernel's `..` (which would now lead to <tmp>/outside).
    assert_eq!(read_via(c, Target::new(h, "../secret")), Err(libc::ENOENT));
    assert_eq!(
        read_via(c, Target::new(h, "../../etc/secret")),
        Ok(INSIDE.to_vec())
    );
    g.finish().0.unwrap();
}

/// A thread exchanges `root/a` (a real directory holding `secret` = "inside") with a
/// symlink pointing out of the root, as fast as it can, while the client reads `a/secret`
/// through the gofer. Every read must be the inside file or an error, never the host's.
#[test]
fn symlink_swap_race_never_escapes() {
    let (t, root) = layout();
    std::fs::create_dir_all(root.join("race")).unwrap();
    std::fs::write(root.join("race/secret"), INSIDE).unwrap();
    let outside = t.join("outside");
    sym(outside.to_str().unwrap(), &root.join("race-link-abs"));
    sym("../outside", &root.join("race-link-rel"));
    let g = start(&root, ServerConfig::default());
    let stop = Arc::new(AtomicBool::new(false));
    let swaps = {
        let stop = stop.clone();
        let root = root.clone();
        std::thread::spawn(move || {
            let dir = open_dir(&root);
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                for link in [c"race-link-abs", c"race-link-rel"] {
                    // SAFETY: valid C strings and dir fd.
                    unsafe {
                        libc::renameat2(
                            dir.as_raw_fd(),
                            c"race".as_ptr(),
                            dir.as_raw_fd(),
                            link.as_ptr(),
                            libc::RENAME_EXCHANGE,
                        )
                    };
                    n += 1;
                }
            }
            n
        })
    };
    let c = &g.client;
    let (mut inside, mut errors) = (0, 0);
    let deadline = Instant::now() + Duration::from_millis(1500);
    let mut i = 0;
    while Instant::now() < deadline || i < 200 {
        i += 1;
        let name = [
            "race/secret",
            "race-link-abs/secret",
            "race-link-rel/secret",
        ][i % 3];
        match read_via(c, Target::new(R, name)) {
            Ok(b) if b == INSIDE => inside += 1,
            Ok(b) => panic!(
                "read {:?} through {name}: escaped the root",
                String::from_utf8_lossy(&b)
            ),
            Err(_) => errors += 1,
        }
        if let Ok(st) = c.stat(Target::new(R, name)) {
            let host = std::fs::metadata(t.join("outside/secret")).unwrap();
            assert_ne!(
                std::os::unix::fs::MetadataExt::ino(&host),
                st.ino,
                "stat escaped"
            );
        }
    }
    stop.store(true, Ordering::Relaxed);
    let n = swaps.join().unwrap();
    eprintln!("race: {i} reads, {inside} inside, {errors} errors, {n} swaps");
    assert!(n > 100, "the attacker thread barely ran ({n} swaps)");
    assert!(inside > 0, "never read the inside file");
    g.finish().0.unwrap();
}

/// Magic links in a real procfs mounted inside the rootfs (in a private mount namespace of
/// this test's thread): they are resolved as plain text beneath the root, never jumped
/// through.
#[test]
fn magic_links_do_not_escape() {
    let (t, root) = layout();
    std::fs::create_dir_all(root.join("proc")).unwrap();
    let outer = t.path().to_path_buf();
    // Everything that sees the procfs mount runs on one thread in its own mount namespace.
    let r = std::thread::spawn(move || {
        // SAFETY: unshare affects only this thread (mount namespaces are per task).
        if unsafe { libc::unshare(libc::CLONE_NEWNS) } != 0 {
            return Err(format!("unshare: {}", std::io::Error::last_os_error()));
        }
        // SAFETY: valid C strings; makes our copy of the mount tree private so nothing
        // propagates back to the host.
        let rc = unsafe {
            libc::mount(
                std::ptr::null(),
                c"/".as_ptr(),
                std::ptr::null(),
                libc::MS_REC | libc::MS_PRIVATE,
                std::ptr::null(),
            )
        };
        assert_eq!(rc, 0, "make / private: {}", std::io::Error::last_os_error());
        let proc_dir = std::ffi::CString::new(root.join("proc").to_str().unwrap()).unwrap();
        // SAFETY: valid C strings; mounts procfs on a directory of our temp rootfs.
        let rc = unsafe {
            libc::mount(
                c"proc".as_ptr(),
                proc_dir.as_ptr(),
                c"proc".as_ptr(),
                0,
                std::ptr::null(),
            )
        };
        assert_eq!(rc, 0, "mount proc: {}", std::io::Error::last_os_error());
        let g = start(&root, ServerConfig::default());
        let c = &g.client;
        // /proc/self/root: its readlink text ("/") is resolved beneath the root.
        assert_eq!(
            read_via(c, Target::new(R, "proc/self/root/etc/secret")),
            Ok(INSIDE.to_vec())
        );
        let outside = format!("proc/self/root{}/outside/secret", outer.display());
        assert_eq!(read_via(c, Target::new(R, &outside)), Err(libc::ENOENT));
        // /proc/self/cwd and /proc/self/fd/N point at host paths: resolved inside, they
        // name nothing.
        assert_eq!(
            read_via(c, Target::new(R, "proc/self/cwd/Cargo.toml")),
            Err(libc::ENOENT)
        );
        for n in 0..16 {
            let p = format!("proc/self/fd/{n}/outside/secret");
            let r = read_via(c, Target::new(R, &p));
            assert!(r.is_err() || r == Ok(INSIDE.to_vec()), "{p}: {r:?}");
        }
        // A symlink in the rootfs through /proc/self/root.
        std::os::unix::fs::symlink(
            format!("/proc/self/root{}/outside", outer.display()),
            root.join("via-proc"),
        )
        .unwrap();
        assert_eq!(
            read_via(c, Target::new(R, "via-proc/secret")),
            Err(libc::ENOENT)
        );
        g.finish().0.unwrap();
        // SAFETY: valid C string; detaches the procfs before the temp dir is removed.
        unsafe { libc::umount2(proc_dir.as_ptr(), libc::MNT_DETACH) };
        Ok(())
    })
    .join()
    .expect("namespace thread panicked");
    if let Err(e) = r {
        eprintln!("skipping magic link test: {e}");
    }
}
