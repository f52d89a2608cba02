//! Shared test helpers: a throwaway rootfs under /tmp and a gofer serving it on a thread.
#![allow(dead_code)]

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;

use gofer::client::Client;
use gofer::server::{Server, ServerConfig, Stats};

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A directory under /tmp removed (recursively) on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let p = std::env::temp_dir().join(format!("gofer-test-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("create temp dir");
        TempDir(p)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
    pub fn join(&self, p: &str) -> PathBuf {
        self.0.join(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn open_dir(p: &Path) -> OwnedFd {
    let c = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: valid C string; the returned fd is checked and then owned.
    let fd = unsafe {
        libc::open(
            c.as_ptr(),
            libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    };
    assert!(fd >= 0, "open {p:?}: {}", std::io::Error::last_os_error());
    // SAFETY: fresh fd owned by nobody else.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// A gofer serving `root` on a thread; joins it (and returns its stats) on `finish`.
pub struct Running {
    pub client: Client,
    thread: JoinHandle<(Result<(), gofer::Error>, Stats, usize)>,
}

impl Running {
    /// Close the client end and wait for the server: returns its result, stats, and the
    /// number of handles it still held.
    pub fn finish(self) -> (Result<(), gofer::Error>, Stats, usize) {
        drop(self.client);
        self.thread.join().expect("server thread panicked")
    }
}

pub fn start(root: &Path, cfg: ServerConfig) -> Running {
    start_with_log(root, cfg, None)
}

pub fn start_with_log(
    root: &Path,
    cfg: ServerConfig,
    log: Option<Box<dyn std::io::Write + Send>>,
) -> Running {
    let (a, b) = gofer::wire::socketpair().expect("socketpair");
    let rootfd = open_dir(root);
    let mut server = Server::new(rootfd, &cfg).expect("server");
    if let Some(l) = log {
        server = server.with_log(l);
    }
    let thread = std::thread::spawn(move || {
        let r = server.run(b);
        (r, server.stats().clone(), server.handle_count())
    });
    Running {
        client: Client::new(a),
        thread,
    }
}

/// Number of open fds of this process.
pub fn fd_count() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

pub fn raw(fd: &OwnedFd) -> i32 {
    fd.as_raw_fd()
}

/// Read a whole fd from offset 0.
pub fn read_fd(fd: &OwnedFd) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let mut off = 0i64;
    loop {
        // SAFETY: buf is writable for its length.
        let n = unsafe { libc::pread(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), off) };
        assert!(n >= 0, "pread: {}", std::io::Error::last_os_error());
        if n == 0 {
            return out;
        }
        out.extend_from_slice(&buf[..n as usize]);
        off += n as i64;
    }
}

/// The errno of a gofer call's failure.
pub fn errno<T: std::fmt::Debug>(r: Result<T, gofer::Error>) -> i32 {
    match r {
        Err(gofer::Error::Remote(e)) => e,
        other => panic!("expected an errno reply, got {other:?}"),
    }
}
