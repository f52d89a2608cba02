//! Every request through the Client against a real directory tree.

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};

use common::*;
use gofer::protocol::{setattr, Handle, MsgId, Owner, SetAttr, Target, Timespec};
use gofer::server::ServerConfig;

const R: Handle = Handle::ROOT;

fn rootfs() -> TempDir {
    let t = TempDir::new("ops");
    std::fs::create_dir_all(t.join("etc")).unwrap();
    std::fs::write(t.join("etc/passwd"), b"root:x:0:0::/root:/bin/sh\n").unwrap();
    std::fs::create_dir_all(t.join("usr/lib")).unwrap();
    std::fs::write(t.join("usr/lib/libc.so"), b"ELF").unwrap();
    std::os::unix::fs::symlink("usr/lib", t.join("lib")).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", t.join("abs-link")).unwrap();
    t
}

#[test]
fn hello_negotiates_version_and_lists_messages() {
    let t = rootfs();
    let g = start(t.path(), ServerConfig::default());
    let s = g.client.hello().unwrap();
    assert_eq!(s.version, gofer::protocol::VERSION);
    assert_eq!(s.root, Handle::ROOT);
    assert!(s.root_stat.is_dir());
    assert_eq!(s.root_stat.ino, std::fs::metadata(t.path()).unwrap().ino());
    for m in MsgId::ALL {
        assert!(s.supported.contains(&(m as u16)), "{m:?} missing");
    }
    let (r, _, _) = g.finish();
    r.unwrap();
}

#[test]
fn walk_stat_and_open_multi_component_paths() {
    let t = rootfs();
    let g = start(t.path(), ServerConfig::default());
    let c = &g.client;
    let st = c.stat(Target::new(R, "/etc/passwd")).unwrap();
    let meta = std::fs::metadata(t.join("etc/passwd")).unwrap();
    assert_eq!((st.ino, st.size), (meta.ino(), meta.len()));
    // Through a relative symlink in the middle of the path.
    let st = c.stat(Target::new(R, "lib/libc.so")).unwrap();
    assert_eq!(st.size, 3);
    // lstat vs stat of an absolute symlink (resolved inside the root).
    assert!(c
        .stat(Target::nofollow(R, "abs-link"))
        .unwrap()
        .is_symlink());
    assert_eq!(c.stat(Target::new(R, "abs-link")).unwrap().ino, meta.ino());
    // A handle, then paths relative to it, including `..`.
    let (h, hst) = c.walk(Target::new(R, "usr/lib")).unwrap();
    assert!(hst.is_dir());
    assert_eq!(c.stat(Target::new(h, "libc.so")).unwrap().size, 3);
    assert_eq!(
        c.stat(Target::new(h, "../../etc/passwd")).unwrap().ino,
        meta.ino()
    );
    assert_eq!(c.stat(Target::handle(h)).unwrap().ino, hst.ino);
    // Open returns a working host fd.
    let (fd, ost) = c
        .open(
            Target::new(h, "../../etc/passwd"),
            libc::O_RDONLY as u32,
            0,
            Owner::UNCHANGED,
        )
        .unwrap();
    assert_eq!(ost.ino, meta.ino());
    assert_eq!(read_fd(&fd), b"root:x:0:0::/root:/bin/sh\n");
    // The fd is a plain read fd: O_NONBLOCK the gofer used internally is cleared.
    // SAFETY: F_GETFL on a valid fd.
    let fl = unsafe { libc::fcntl(raw(&fd), libc::F_GETFL) };
    assert_eq!(fl & libc::O_NONBLOCK, 0);
    assert_eq!(fl & libc::O_ACCMODE, libc::O_RDONLY);
    // Errors come back as errnos.
    assert_eq!(errno(c.stat(Target::new(R, "nope"))), libc::ENOENT);
    assert_eq!(errno(c.stat(Target::new(R, "etc/passwd/x"))), libc::ENOTDIR);
    assert_eq!(errno(c.stat(Target::new(R, "etc/passwd/"))), libc::ENOTDIR);
    assert_eq!(errno(c.stat(Target::new(Handle(999), "x"))), libc::EBADF);
    // Re-opening a handle itself (empty path): a file handle and a directory handle.
    let (fh, _) = c.walk(Target::new(h, "libc.so")).unwrap();
    let (fd, _) = c
        .open(
            Target::handle(fh),
            libc::O_RDONLY as u32,
            0,
            Owner::UNCHANGED,
        )
        .unwrap();
    assert_eq!(read_fd(&fd), b"ELF");
    let (dfd, _) = c
        .open(
            Target::handle(h),
            (libc::O_RDONLY | libc::O_DIRECTORY) as u32,
            0,
            Owner::UNCHANGED,
        )
        .unwrap();
    // SAFETY: fstat into a zeroed struct from a valid fd.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    assert_eq!(unsafe { libc::fstat(raw(&dfd), &mut st) }, 0);
    assert_eq!(st.st_ino, hst.ino);
    let (ents, _) = c.readdir(Target::handle(h), 0, 4096).unwrap();
    assert!(ents.iter().any(|e| e.name == b"libc.so"));
    c.close(&[h, fh]).unwrap();
    assert_eq!(errno(c.stat(Target::new(h, "x"))), libc::EBADF);
    assert_eq!(errno(c.close(&[Handle::ROOT])), libc::EBADF);
    let (r, stats, handles) = g.finish();
    r.unwrap();
    assert_eq!(handles, 0);
    assert_eq!(stats.get(MsgId::Walk), 2);
    assert_eq!(stats.get(MsgId::Open), 3);
}

#[test]
fn create_write_truncate_and_ownership() {
    let t = rootfs();
    let g = start(t.path(), ServerConfig::default());
    let c = &g.client;
    let flags = (libc::O_CREAT | libc::O_EXCL | libc::O_RDWR) as u32;
    let owner = Owner {
        uid: 1234,
        gid: 5678,
    };
    let (fd, st) = c.open(Target::new(R, "/new"), flags, 0o640, owner).unwrap();
    assert_eq!((st.uid, st.gid, st.mode & 0o777), (1234, 5678, 0o640));
    // SAFETY: writing from a valid buffer to a valid fd.
    assert_eq!(
        unsafe { libc::write(raw(&fd), b"hello".as_ptr().cast(), 5) },
        5
    );
    assert_eq!(std::fs::read(t.join("new")).unwrap(), b"hello");
    assert_eq!(
        errno(c.open(Target::new(R, "/new"), flags, 0o640, owner)),
        libc::EEXIST
    );
    // O_TRUNC on an existing file.
    let (_fd, st) = c
        .open(
            Target::new(R, "new"),
            (libc::O_WRONLY | libc::O_TRUNC) as u32,
            0,
            owner,
        )
        .unwrap();
    assert_eq!(st.size, 0);
    // O_CREAT through a dangling absolute symlink creates the target inside the root.
    std::os::unix::fs::symlink("/etc/created-via-link", t.join("dangling")).unwrap();
    c.open(
        Target::new(R, "dangling"),
        (libc::O_CREAT | libc::O_WRONLY) as u32,
        0o600,
        owner,
    )
    .unwrap();
    assert!(t.join("etc/created-via-link").exists());
    // ...but O_CREAT|O_EXCL never follows it.
    assert_eq!(
        errno(c.open(Target::new(R, "dangling"), flags, 0o600, owner)),
        libc::EEXIST
    );
    // musl passes the kernel's O_LARGEFILE on every open.
    c.open(
        Target::new(R, "new"),
        (libc::O_RDONLY | 0o100000) as u32,
        0,
        owner,
    )
    .unwrap();
    assert_eq!(
        errno(c.open(Target::new(R, "new"), 0x4000_0000, 0, owner)),
        libc::EINVAL
    );
    // O_NOFOLLOW on a symlink.
    let nf = (libc::O_RDONLY | libc::O_NOFOLLOW) as u32;
    assert_eq!(
        errno(c.open(Target::new(R, "abs-link"), nf, 0, owner)),
        libc::ELOOP
    );
    // setattr: truncate, chmod, chown, times.
    let attr = SetAttr {
        mask: setattr::SIZE | setattr::MODE | setattr::UID | setattr::MTIME,
        mode: 0o600,
        uid: 42,
        size: 100,
        mtime: Timespec {
            sec: 1_000_000,
            nsec: 5,
        },
        ..Default::default()
    };
    let st = c.setattr(Target::new(R, "new"), attr).unwrap();
    assert_eq!((st.size, st.mode & 0o777, st.uid), (100, 0o600, 42));
    assert_eq!(
        st.mtime,
        Timespec {
            sec: 1_000_000,
            nsec: 5
        }
    );
    let m = std::fs::metadata(t.join("new")).unwrap();
    assert_eq!(
        (m.len(), m.uid(), m.permissions().mode() & 0o777),
        (100, 42, 0o600)
    );
    assert_eq!(
        errno(c.setattr(
            Target::new(R, "etc"),
            SetAttr {
                mask: setattr::SIZE,
                ..attr
            }
        )),
        libc::EISDIR
    );
    assert_eq!(
        errno(c.setattr(
            Target::new(R, "new"),
            SetAttr {
                mask: 1 << 20,
                ..attr
            }
        )),
        libc::EINVAL
    );
    g.finish().0.unwrap();
}

#[test]
fn directories_links_rename_unlink() {
    let t = rootfs();
    let g = start(t.path(), ServerConfig::default());
    let c = &g.client;
    let o = Owner::UNCHANGED;
    let st = c
        .mkdir(Target::new(R, "/d"), 0o755, Owner { uid: 7, gid: 8 })
        .unwrap();
    assert!(st.is_dir());
    assert_eq!((st.uid, st.gid), (7, 8));
    assert_eq!(errno(c.mkdir(Target::new(R, "/d"), 0o755, o)), libc::EEXIST);
    assert_eq!(errno(c.mkdir(Target::new(R, "/"), 0o755, o)), libc::EEXIST);
    c.mknod(Target::new(R, "d/fifo"), libc::S_IFIFO | 0o600, 0, o)
        .unwrap();
    c.mknod(Target::new(R, "d/file"), 0o600, 0, o).unwrap();
    assert_eq!(
        errno(c.mknod(
            Target::new(R, "d/dev"),
            libc::S_IFBLK | 0o600,
            libc::makedev(8, 0),
            o
        )),
        libc::EPERM
    );
    let st = c
        .symlink(Target::new(R, "d/sl"), b"../etc/passwd", o)
        .unwrap();
    assert!(st.is_symlink());
    assert_eq!(
        c.readlink(Target::new(R, "d/sl")).unwrap(),
        b"../etc/passwd"
    );
    assert_eq!(errno(c.readlink(Target::new(R, "d/file"))), libc::EINVAL);
    let st = c
        .link(Target::new(R, "d/file"), Target::new(R, "d/hard"))
        .unwrap();
    assert_eq!(st.nlink, 2);
    // Opening a FIFO with no writer does not block the gofer, and the fd the workload gets
    // is blocking as it asked.
    let (fifo, _) = c
        .open(Target::new(R, "d/fifo"), libc::O_RDONLY as u32, 0, o)
        .unwrap();
    // SAFETY: F_GETFL on a valid fd.
    assert_eq!(
        unsafe { libc::fcntl(raw(&fifo), libc::F_GETFL) } & libc::O_NONBLOCK,
        0
    );
    drop(fifo);
    // readdir sees everything, across several small calls.
    let mut names = Vec::new();
    let mut off = 0;
    loop {
        let (ents, eof) = c.readdir(Target::new(R, "d"), off, 512).unwrap();
        if eof {
            break;
        }
        off = ents.last().unwrap().next_offset;
        names.extend(ents.into_iter().map(|e| String::from_utf8(e.name).unwrap()));
    }
    names.sort();
    assert_eq!(names, [".", "..", "fifo", "file", "hard", "sl"]);
    // rename variants.
    c.rename(Target::new(R, "d/file"), Target::new(R, "d/file2"), 0)
        .unwrap();
    assert_eq!(
        errno(c.rename(
            Target::new(R, "d/file2"),
            Target::new(R, "d/hard"),
            libc::RENAME_NOREPLACE
        )),
        libc::EEXIST
    );
    c.rename(
        Target::new(R, "d/sl"),
        Target::new(R, "d/fifo"),
        libc::RENAME_EXCHANGE,
    )
    .unwrap();
    assert!(c.stat(Target::nofollow(R, "d/fifo")).unwrap().is_symlink());
    assert_eq!(
        errno(c.rename(Target::new(R, "d/x"), Target::new(R, "d/y"), 0xff)),
        libc::EINVAL
    );
    // unlink / rmdir.
    assert_eq!(
        errno(c.unlink(Target::new(R, "d"), libc::AT_REMOVEDIR as u32)),
        libc::ENOTEMPTY
    );
    for n in ["d/fifo", "d/sl", "d/file2", "d/hard"] {
        c.unlink(Target::new(R, n), 0).unwrap();
    }
    c.unlink(Target::new(R, "d"), libc::AT_REMOVEDIR as u32)
        .unwrap();
    assert!(!t.join("d").exists());
    assert_eq!(
        errno(c.unlink(Target::new(R, "/"), libc::AT_REMOVEDIR as u32)),
        libc::EBUSY
    );
    g.finish().0.unwrap();
}

#[test]
fn xattrs_and_statfs() {
    let t = rootfs();
    let g = start(t.path(), ServerConfig::default());
    let c = &g.client;
    let at = Target::new(R, "etc/passwd");
    c.setxattr(at.clone(), b"user.test", b"value", 0).unwrap();
    assert_eq!(
        c.getxattr(at.clone(), b"user.test", 0).unwrap(),
        gofer::client::XattrData::Size(5)
    );
    assert_eq!(
        c.getxattr(at.clone(), b"user.test", 100).unwrap(),
        gofer::client::XattrData::Bytes(b"value".to_vec())
    );
    match c.listxattr(at.clone(), 1024).unwrap() {
        gofer::client::XattrData::Bytes(b) => {
            assert!(b.split(|x| *x == 0).any(|n| n == b"user.test"))
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        errno(c.setxattr(at.clone(), b"user.test", b"v", libc::XATTR_CREATE as u32)),
        libc::EEXIST
    );
    c.removexattr(at.clone(), b"user.test").unwrap();
    assert_eq!(
        errno(c.getxattr(at.clone(), b"user.test", 10)),
        libc::ENODATA
    );
    let fs = c.statfs(Target::new(R, "/")).unwrap();
    // SAFETY: statfs into a zeroed struct.
    let mut host: libc::statfs = unsafe { std::mem::zeroed() };
    let p = std::ffi::CString::new(t.path().as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: valid path and buffer.
    assert_eq!(unsafe { libc::statfs(p.as_ptr(), &mut host) }, 0);
    assert_eq!(fs.fs_type, host.f_type as u64);
    assert_eq!(fs.bsize, host.f_bsize as u64);
    g.finish().0.unwrap();
}

#[test]
fn read_only_root_refuses_every_write() {
    let t = rootfs();
    let cfg = ServerConfig {
        read_only: true,
        ..Default::default()
    };
    let g = start(t.path(), cfg);
    let c = &g.client;
    let o = Owner::UNCHANGED;
    let at = |p: &str| Target::new(R, p);
    assert_eq!(
        errno(c.open(at("x"), (libc::O_CREAT | libc::O_WRONLY) as u32, 0o600, o)),
        libc::EROFS
    );
    assert_eq!(
        errno(c.open(at("etc/passwd"), libc::O_RDWR as u32, 0, o)),
        libc::EROFS
    );
    assert_eq!(
        errno(c.open(
            at("etc/passwd"),
            (libc::O_RDONLY | libc::O_TRUNC) as u32,
            0,
            o
        )),
        libc::EROFS
    );
    assert_eq!(errno(c.mkdir(at("d"), 0o755, o)), libc::EROFS);
    assert_eq!(errno(c.symlink(at("s"), b"x", o)), libc::EROFS);
    assert_eq!(errno(c.unlink(at("etc/passwd"), 0)), libc::EROFS);
    assert_eq!(errno(c.rename(at("etc/passwd"), at("p"), 0)), libc::EROFS);
    assert_eq!(errno(c.link(at("etc/passwd"), at("p"))), libc::EROFS);
    let chmod = SetAttr {
        mask: setattr::MODE,
        mode: 0o777,
        ..Default::default()
    };
    assert_eq!(errno(c.setattr(at("etc/passwd"), chmod)), libc::EROFS);
    assert_eq!(
        errno(c.setxattr(at("etc/passwd"), b"user.a", b"b", 0)),
        libc::EROFS
    );
    // Reads still work, and the file is untouched.
    let (fd, _) = c
        .open(at("etc/passwd"), libc::O_RDONLY as u32, 0, o)
        .unwrap();
    assert_eq!(read_fd(&fd), b"root:x:0:0::/root:/bin/sh\n");
    assert_eq!(
        std::fs::metadata(t.join("etc/passwd"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o644
    );
    g.finish().0.unwrap();
}

#[test]
fn readonly_and_masked_paths() {
    let t = rootfs();
    std::fs::create_dir_all(t.join("proc/acpi")).unwrap();
    std::fs::write(t.join("proc/acpi/secret"), b"s3cret").unwrap();
    std::fs::write(t.join("proc/kcore"), b"kernel memory").unwrap();
    std::fs::create_dir_all(t.join("proc/sys/kernel")).unwrap();
    std::fs::write(t.join("proc/sys/kernel/hostname"), b"h").unwrap();
    let cfg = ServerConfig {
        readonly_paths: vec!["/proc/sys".into(), "/does/not/exist".into()],
        masked_paths: vec!["/proc/acpi".into(), "/proc/kcore".into()],
        ..Default::default()
    };
    let g = start(t.path(), cfg);
    let c = &g.client;
    let o = Owner::UNCHANGED;
    let at = |p: &str| Target::new(R, p);
    // Read-only subtree.
    assert_eq!(
        errno(c.open(at("proc/sys/kernel/hostname"), libc::O_WRONLY as u32, 0, o)),
        libc::EROFS
    );
    assert_eq!(
        errno(c.mkdir(at("proc/sys/kernel/x"), 0o755, o)),
        libc::EROFS
    );
    assert_eq!(
        errno(c.unlink(at("proc/sys/kernel/hostname"), 0)),
        libc::EROFS
    );
    c.open(at("proc/sys/kernel/hostname"), libc::O_RDONLY as u32, 0, o)
        .unwrap();
    // The protected directory itself cannot be moved away to shed its protection...
    assert_eq!(
        errno(c.rename(at("proc/sys"), at("proc/sys2"), 0)),
        libc::EBUSY
    );
    // ...nor can a directory above it (that would move the protected path), nor can a
    // file escape the read-only subtree by a hard link.
    assert_eq!(errno(c.rename(at("proc"), at("proc2"), 0)), libc::EBUSY);
    std::fs::create_dir_all(t.join("other")).unwrap();
    assert_eq!(
        errno(c.rename(at("other"), at("proc"), libc::RENAME_EXCHANGE)),
        libc::EBUSY
    );
    assert_eq!(
        errno(c.link(at("proc/sys/kernel/hostname"), at("h2"))),
        libc::EXDEV
    );
    // Through a symlink and through a handle the read-only subtree is the same.
    std::os::unix::fs::symlink("/proc/sys", t.join("sys-link")).unwrap();
    assert_eq!(
        errno(c.open(at("sys-link/kernel/hostname"), libc::O_WRONLY as u32, 0, o)),
        libc::EROFS
    );
    let (k, _) = c.walk(at("proc/sys/kernel")).unwrap();
    assert_eq!(errno(c.mkdir(Target::new(k, "y"), 0o755, o)), libc::EROFS);
    // `..` from a handle inside the read-only subtree leaves it: /proc itself is writable.
    c.mkdir(Target::new(k, "../../z"), 0o755, o).unwrap();
    assert!(t.join("proc/z").is_dir());
    // Masked file: looks like /dev/null, reads nothing.
    let st = c.stat(at("proc/kcore")).unwrap();
    assert_eq!(st.file_type(), libc::S_IFCHR);
    assert_eq!(st.rdev, libc::makedev(1, 3));
    let (fd, _) = c
        .open(at("proc/kcore"), libc::O_RDONLY as u32, 0, o)
        .unwrap();
    assert!(read_fd(&fd).is_empty());
    assert_eq!(errno(c.unlink(at("proc/kcore"), 0)), libc::EBUSY);
    assert_eq!(errno(c.link(at("proc/kcore"), at("k2"))), libc::EPERM);
    // Masked directory: looks empty, nothing beneath is reachable.
    let st = c.stat(at("proc/acpi")).unwrap();
    assert!(st.is_dir());
    assert_eq!(errno(c.stat(at("proc/acpi/secret"))), libc::ENOENT);
    assert_eq!(
        errno(c.open(at("proc/acpi/secret"), libc::O_RDONLY as u32, 0, o)),
        libc::ENOENT
    );
    assert_eq!(c.readdir(at("proc/acpi"), 0, 4096).unwrap(), (vec![], true));
    assert_eq!(errno(c.mkdir(at("proc/acpi/x"), 0o755, o)), libc::EROFS);
    let (h, _) = c.walk(at("proc/acpi")).unwrap();
    assert_eq!(errno(c.stat(Target::new(h, "secret"))), libc::ENOENT);
    // Reaching the masked content through a symlink or a hard link does not help either.
    std::os::unix::fs::symlink("/proc/acpi/secret", t.join("via-link")).unwrap();
    assert_eq!(errno(c.stat(at("via-link"))), libc::ENOENT);
    std::fs::hard_link(t.join("proc/kcore"), t.join("kcore-link")).unwrap();
    let (fd, st) = c
        .open(at("kcore-link"), libc::O_RDONLY as u32, 0, o)
        .unwrap();
    assert_eq!(st.file_type(), libc::S_IFCHR);
    assert!(read_fd(&fd).is_empty());
    // A masked dir opened as a directory is empty (when the gofer could make its tmpfs).
    if let Ok((fd, _)) = c.open(
        at("proc/acpi"),
        (libc::O_RDONLY | libc::O_DIRECTORY) as u32,
        0,
        o,
    ) {
        let mut buf = [0u8; 1024];
        // SAFETY: buf is writable for its length.
        let n =
            unsafe { libc::syscall(libc::SYS_getdents64, raw(&fd), buf.as_mut_ptr(), buf.len()) };
        assert!(n > 0);
        let mut names = Vec::new();
        let mut b = &buf[..n as usize];
        while b.len() > 19 {
            let reclen = u16::from_ne_bytes([b[16], b[17]]) as usize;
            names.push(b[19..reclen].split(|c| *c == 0).next().unwrap().to_vec());
            b = &b[reclen..];
        }
        names.sort();
        assert_eq!(names, [b".".to_vec(), b"..".to_vec()]);
    }
    g.finish().0.unwrap();
}

#[test]
fn devices_outside_the_allowlist_do_not_open() {
    let t = rootfs();
    // SAFETY: mknod of device nodes in our own temp dir (we are root in the test VM).
    let mk = |name: &str, mode: u32, dev: u64| {
        let p = std::ffi::CString::new(t.join(name).as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: valid C string.
        unsafe { libc::mknod(p.as_ptr(), mode | 0o666, dev) }
    };
    if mk("sda", libc::S_IFBLK, libc::makedev(8, 0)) != 0 {
        eprintln!("skipping: cannot mknod (no CAP_MKNOD)");
        return;
    }
    assert_eq!(mk("null", libc::S_IFCHR, libc::makedev(1, 3)), 0);
    assert_eq!(mk("mem", libc::S_IFCHR, libc::makedev(1, 1)), 0);
    let g = start(t.path(), ServerConfig::default());
    let c = &g.client;
    let o = Owner::UNCHANGED;
    assert_eq!(
        errno(c.open(Target::new(R, "sda"), libc::O_RDONLY as u32, 0, o)),
        libc::EPERM
    );
    assert_eq!(
        errno(c.open(Target::new(R, "mem"), libc::O_RDONLY as u32, 0, o)),
        libc::EPERM
    );
    let opath = (libc::O_PATH | libc::O_NOFOLLOW) as u32;
    assert_eq!(
        errno(c.open(Target::new(R, "sda"), opath, 0, o)),
        libc::EPERM
    );
    // stat is fine: it does not open the device.
    assert_eq!(
        c.stat(Target::new(R, "sda")).unwrap().rdev,
        libc::makedev(8, 0)
    );
    c.open(Target::new(R, "null"), libc::O_RDWR as u32, 0, o)
        .unwrap();
    g.finish().0.unwrap();
}

#[test]
fn debug_log_has_one_line_per_request() {
    use std::sync::{Arc, Mutex};
    #[derive(Clone)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let t = rootfs();
    let buf = Buf(Arc::new(Mutex::new(Vec::new())));
    let g = start_with_log(
        t.path(),
        ServerConfig::default(),
        Some(Box::new(buf.clone())),
    );
    g.client.hello().unwrap();
    g.client.stat(Target::new(R, "/etc/passwd")).unwrap();
    let _ = g.client.stat(Target::new(R, "/missing"));
    let stats = g.client.stats().unwrap();
    assert!(stats.contains(&(MsgId::StatAt as u16, 2)));
    g.finish().0.unwrap();
    let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "{text}");
    assert!(
        lines[1].contains("StatAt h1:\"/etc/passwd\" -> ok"),
        "{}",
        lines[1]
    );
    assert!(lines[2].contains("No such file"), "{}", lines[2]);
}

#[test]
fn directory_donation_only_when_allowed_and_unprotected() {
    let t = rootfs();
    std::fs::create_dir_all(t.join("proc/sys")).unwrap();
    let cfg = ServerConfig {
        allow_donate: true,
        readonly_paths: vec!["/proc/sys".into()],
        ..Default::default()
    };
    let g = start(t.path(), cfg);
    let c = &g.client;
    let (fd, st) = c.donate_dir(Target::new(R, "usr")).unwrap();
    assert!(st.is_dir());
    // SAFETY: F_GETFL on a valid fd.
    let fl = unsafe { libc::fcntl(raw(&fd), libc::F_GETFL) };
    assert_ne!(fl & libc::O_PATH, 0, "donated fds are O_PATH");
    // The holder can open beneath it (with RESOLVE_BENEATH, as the README requires).
    // SAFETY: open_how is a plain C struct; zero is its default.
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = (libc::O_RDONLY | libc::O_CLOEXEC) as u64;
    how.resolve = libc::RESOLVE_BENEATH | libc::RESOLVE_NO_MAGICLINKS;
    // SAFETY: valid fd, C string and open_how.
    let f = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            raw(&fd),
            c"lib/libc.so".as_ptr(),
            &how as *const libc::open_how,
            std::mem::size_of::<libc::open_how>(),
        )
    };
    assert!(f >= 0, "openat2 beneath the donated dir");
    // SAFETY: closing the fd just opened.
    unsafe { libc::close(f as i32) };
    // Refused: not a directory, a directory above or inside a protected path.
    assert_eq!(
        errno(c.donate_dir(Target::new(R, "etc/passwd"))),
        libc::ENOTDIR
    );
    assert_eq!(errno(c.donate_dir(Target::new(R, "proc"))), libc::EPERM);
    assert_eq!(errno(c.donate_dir(Target::new(R, "proc/sys"))), libc::EPERM);
    assert_eq!(errno(c.donate_dir(Target::new(R, "/"))), libc::EPERM);
    g.finish().0.unwrap();
}
