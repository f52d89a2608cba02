//! Shared helpers: busybox rootfs, running under the sentry and natively in a chroot.
#![allow(dead_code)]

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::sync::{Arc, Mutex};

use sentry::launch::run_command_with_log;
use sentry::SentryConfig;

pub const BUSYBOX: &str = "/bin/busybox";

/// A temporary directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!(
            "sentry-{tag}-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A rootfs (`root`) with static busybox and its applets as symlinks in /bin, plus /tmp, /etc,
/// /work; it lives in `tmp`, whose other entries (a host "secret") are outside the root.
pub struct Rootfs {
    pub tmp: TempDir,
    pub root: PathBuf,
}

impl Rootfs {
    pub fn path(&self) -> &Path {
        &self.root
    }

    /// Compile tests/progs/<name>.c statically into /bin/<name>.
    pub fn add_prog(&self, name: &str) {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/progs/{name}.c"));
        let out = Command::new("gcc")
            .args(["-static", "-O2", "-pthread", "-w", "-o"])
            .arg(self.root.join("bin").join(name))
            .arg(&src)
            .output()
            .expect("run gcc");
        assert!(
            out.status.success(),
            "gcc {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// A file outside the root that nothing inside must be able to read.
    pub fn plant_secret(&self) -> &'static str {
        std::fs::write(self.tmp.path().join("secret"), "HOST-SECRET\n").unwrap();
        "secret"
    }
}

pub fn busybox_rootfs(tag: &str) -> Rootfs {
    let t = TempDir::new(tag);
    let r = t.path().join("root");
    for d in ["bin", "tmp", "etc", "work", "dev"] {
        std::fs::create_dir_all(r.join(d)).unwrap();
    }
    for (name, minor) in [("null", 3), ("zero", 5)] {
        let p = std::ffi::CString::new(
            r.join("dev")
                .join(name)
                .into_os_string()
                .into_encoded_bytes(),
        )
        .unwrap();
        // SAFETY: valid path; creates a device node inside the temporary rootfs (needs root).
        let rc = unsafe { libc::mknod(p.as_ptr(), libc::S_IFCHR | 0o666, libc::makedev(1, minor)) };
        assert_eq!(
            rc,
            0,
            "mknod /dev/{name}: {}",
            std::io::Error::last_os_error()
        );
    }
    std::fs::copy(BUSYBOX, r.join("bin/busybox")).unwrap();
    let out = Command::new(BUSYBOX).arg("--list").output().unwrap();
    for name in String::from_utf8_lossy(&out.stdout).lines() {
        if name != "busybox" && !name.is_empty() {
            let _ = symlink("busybox", r.join("bin").join(name));
        }
    }
    std::fs::write(r.join("etc/passwd"), "root:x:0:0:root:/:/bin/sh\n").unwrap();
    std::fs::write(r.join("etc/group"), "root:x:0:\n").unwrap();
    Rootfs { tmp: t, root: r }
}

/// Strace lines collected by the sentry.
#[derive(Clone, Default)]
pub struct Log(pub Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Log {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Log {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

pub fn config(strace: bool) -> SentryConfig {
    SentryConfig {
        hostname: "sentry-test".into(),
        strace,
        ..Default::default()
    }
}

/// Run argv under the sentry with strace on; returns status and the strace log.
pub fn run_sentry(root: &Path, argv: &[&str]) -> (ExitStatus, String) {
    let log = Log::default();
    let st = run_command_with_log(argv, root, config(true), Some(Box::new(log.clone())))
        .expect("run under sentry");
    (st, log.text())
}

/// Run a shell script under the sentry; its stdout goes to /work/out inside the rootfs.
pub fn sh_sentry(root: &Path, script: &str) -> (ExitStatus, String, String) {
    let full = format!("exec >/work/out 2>&1\n{script}");
    std::fs::write(root.join("work/script.sh"), full).unwrap();
    let (st, log) = run_sentry(root, &["/bin/sh", "/work/script.sh"]);
    let out = std::fs::read_to_string(root.join("work/out")).unwrap_or_default();
    (st, out, log)
}

/// The same script natively, chrooted into `root` (the reference for differential tests).
pub fn sh_native(root: &Path, script: &str) -> (ExitStatus, String) {
    let full = format!("exec >/work/out 2>&1\n{script}");
    std::fs::write(root.join("work/script.sh"), full).unwrap();
    let st = Command::new("chroot")
        .arg(root)
        .args(["/bin/sh", "/work/script.sh"])
        .env_clear()
        .env(
            "PATH",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        )
        .env("HOME", "/")
        .current_dir("/")
        .status()
        .unwrap();
    let out = std::fs::read_to_string(root.join("work/out")).unwrap_or_default();
    (st, out)
}
