//! A gofer confined in a forked child: it still serves every request through its seccomp
//! allowlist and Landlock rules, and it can no longer reach the host.

mod common;

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use common::*;
use gofer::client::Client;
use gofer::protocol::{setattr, Handle, Owner, SetAttr, Target};
use gofer::server::ServerConfig;

const R: Handle = Handle::ROOT;

fn write_all(fd: i32, b: &[u8]) {
    // SAFETY: b is readable for its length.
    unsafe { libc::write(fd, b.as_ptr().cast(), b.len()) };
}

fn last_errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// Runs in the forked child: confine, probe what is still possible, report on `pipe`, serve.
/// Never returns.
fn child(sock: OwnedFd, root_path: &std::path::Path, outside: &std::path::Path, pipe: i32) -> ! {
    let root = open_dir(root_path);
    let cfg = ServerConfig {
        masked_paths: vec!["/masked".into(), "/masked-file".into()],
        ..Default::default()
    };
    let report = match gofer::confine::confine(&root, &cfg) {
        Ok(r) => r,
        Err(e) => {
            write_all(pipe, format!("confine failed: {e}\n").as_bytes());
            // SAFETY: leaving the forked child without running the parent's destructors.
            unsafe { libc::_exit(2) }
        }
    };
    let mut out = format!("{report:?}\n");
    let secret = std::ffi::CString::new(outside.to_str().unwrap()).unwrap();
    // SAFETY: valid C string; the fd (if any) is closed right away.
    let fd = unsafe { libc::open(secret.as_ptr(), libc::O_RDONLY) };
    out += &format!("host_open={}\n", if fd >= 0 { 0 } else { last_errno() });
    // SAFETY: plain syscall; a created socket is closed right away.
    let s = unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0) };
    out += &format!("socket={}\n", if s >= 0 { 0 } else { last_errno() });
    // SAFETY: plain syscall.
    let p = unsafe { libc::ptrace(libc::PTRACE_TRACEME, 0, 0, 0) };
    out += &format!("ptrace={}\n", if p >= 0 { 0 } else { last_errno() });
    write_all(pipe, out.as_bytes());
    // SAFETY: closing our end of the report pipe.
    unsafe { libc::close(pipe) };
    let code = match gofer::server::serve(sock, root, &cfg) {
        Ok(()) => 0,
        Err(_) => 1,
    };
    // SAFETY: leaving the forked child without running the parent's destructors.
    unsafe { libc::_exit(code) }
}

#[test]
fn confined_gofer_serves_but_cannot_reach_the_host() {
    let t = TempDir::new("confine");
    let root = t.join("root");
    std::fs::create_dir_all(root.join("d")).unwrap();
    std::fs::write(root.join("d/f"), b"inside").unwrap();
    std::fs::write(t.join("secret"), b"host").unwrap();
    std::fs::create_dir_all(root.join("masked")).unwrap();
    std::fs::write(root.join("masked/hidden"), b"x").unwrap();
    std::fs::write(root.join("masked-file"), b"x").unwrap();
    // Open the mask sources here: the child must not initialise process-wide state that
    // another test thread might have been holding a lock on at fork time.
    gofer::server::prepare_mask_sources();
    let (mine, theirs) = gofer::wire::socketpair().unwrap();
    let mut p = [0i32; 2];
    // SAFETY: p has room for two fds.
    assert_eq!(unsafe { libc::pipe2(p.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: the child only runs `child`, which ends in _exit.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0);
    if pid == 0 {
        drop(mine);
        // SAFETY: closing the read end in the child.
        unsafe { libc::close(p[0]) };
        child(theirs, &root, &t.join("secret"), p[1]);
    }
    drop(theirs);
    // SAFETY: the parent's copy of the write end; reading until the child closes it.
    unsafe { libc::close(p[1]) };
    // SAFETY: we own the read end.
    let report = read_fd_stream(unsafe { OwnedFd::from_raw_fd(p[0]) });
    eprintln!("{report}");
    assert!(!report.contains("confine failed"), "{report}");
    let kv = |k: &str| -> i32 {
        report
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{k}=")))
            .unwrap_or_else(|| panic!("{k} missing in {report}"))
            .parse()
            .unwrap()
    };
    // seccomp: socket and ptrace are not in the allowlist.
    assert_eq!(kv("socket"), libc::EPERM);
    assert_eq!(kv("ptrace"), libc::EPERM);
    // Landlock (when the kernel has it): the host file outside the root is out of reach.
    if gofer::confine::support().landlock_abi.is_some() {
        assert!(report.contains("landlock_abi: Some("), "{report}");
        assert_eq!(kv("host_open"), libc::EACCES);
    }
    // The confined gofer still does all its work.
    let c = Client::new(mine);
    let o = Owner::UNCHANGED;
    c.hello().unwrap();
    let (fd, _) = c
        .open(Target::new(R, "d/f"), libc::O_RDONLY as u32, 0, o)
        .unwrap();
    assert_eq!(read_fd(&fd), b"inside");
    let (h, _) = c.walk(Target::new(R, "d")).unwrap();
    c.mkdir(Target::new(h, "sub"), 0o755, Owner { uid: 5, gid: 5 })
        .unwrap();
    let flags = (libc::O_CREAT | libc::O_RDWR | libc::O_TRUNC) as u32;
    c.open(Target::new(h, "sub/new"), flags, 0o600, o).unwrap();
    c.symlink(Target::new(h, "l"), b"/d/f", o).unwrap();
    assert_eq!(c.readlink(Target::new(h, "l")).unwrap(), b"/d/f");
    c.link(Target::new(h, "f"), Target::new(h, "f2")).unwrap();
    c.rename(
        Target::new(h, "f2"),
        Target::new(h, "f3"),
        libc::RENAME_NOREPLACE,
    )
    .unwrap();
    c.unlink(Target::new(h, "f3"), 0).unwrap();
    c.mknod(Target::new(h, "fifo"), libc::S_IFIFO | 0o600, 0, o)
        .unwrap();
    let attr = SetAttr {
        mask: setattr::MODE | setattr::SIZE | setattr::MTIME_NOW | setattr::UID,
        mode: 0o640,
        size: 3,
        uid: 9,
        ..Default::default()
    };
    let st = c.setattr(Target::new(h, "f"), attr).unwrap();
    assert_eq!((st.size, st.mode & 0o777, st.uid), (3, 0o640, 9));
    c.setxattr(Target::new(h, "f"), b"user.k", b"v", 0).unwrap();
    assert_eq!(
        c.getxattr(Target::new(h, "f"), b"user.k", 16).unwrap(),
        gofer::client::XattrData::Bytes(b"v".to_vec())
    );
    c.listxattr(Target::new(h, "f"), 256).unwrap();
    c.removexattr(Target::new(h, "f"), b"user.k").unwrap();
    let (ents, _) = c.readdir(Target::new(h, ""), 0, 4096).unwrap();
    assert!(ents.iter().any(|e| e.name == b"sub"));
    c.statfs(Target::new(R, "/")).unwrap();
    // Masked objects open as their stand-ins (reopened under Landlock and seccomp).
    let dflags = (libc::O_RDONLY | libc::O_DIRECTORY) as u32;
    let (md, _) = c.open(Target::new(R, "masked"), dflags, 0, o).unwrap();
    let mut buf = [0u8; 512];
    // SAFETY: buf is writable for its length.
    let n = unsafe { libc::syscall(libc::SYS_getdents64, md.as_raw_fd(), buf.as_mut_ptr(), 512) };
    assert_eq!(n, 48, "only . and .. in the masked directory");
    let (mf, st) = c
        .open(Target::new(R, "masked-file"), libc::O_RDONLY as u32, 0, o)
        .unwrap();
    assert_eq!(st.rdev, libc::makedev(1, 3));
    assert!(read_fd(&mf).is_empty());
    // Escapes are still refused by resolution itself.
    let esc = Target::new(R, format!("../../../..{}", t.join("secret").display()));
    assert_eq!(errno(c.stat(esc)), libc::ENOENT);
    c.close(&[h]).unwrap();
    assert!(std::fs::read(root.join("d/f")).unwrap() == b"ins");
    // Closing the socket ends the gofer, which exits 0.
    drop(c);
    let mut status = 0;
    // SAFETY: waiting for our own child.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    assert!(
        libc::WIFEXITED(status),
        "gofer did not exit normally: {status:#x}"
    );
    assert_eq!(libc::WEXITSTATUS(status), 0);
}

fn read_fd_stream(fd: OwnedFd) -> String {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        // SAFETY: buf is writable for its length.
        let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n <= 0 {
            break;
        }
        out.extend_from_slice(&buf[..n as usize]);
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn support_probe_reports_the_kernel() {
    let s = gofer::confine::support();
    assert!(s.openat2, "this kernel has openat2");
    // The probe agrees with the kernel's own answer.
    // SAFETY: Landlock version query.
    let v = unsafe { libc::syscall(444, std::ptr::null::<u8>(), 0usize, 1u32) };
    assert_eq!(s.landlock_abi, (v > 0).then_some(v as u32));
}
