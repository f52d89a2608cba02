//! Any bytes handed to a live server over a scratch rootfs: never a panic, and the handle
//! table stays bounded. The scratch tree lives under the system temp dir.
#![no_main]

use std::os::fd::{FromRawFd, OwnedFd};
use std::sync::Mutex;

use gofer::server::{Server, ServerConfig};
use libfuzzer_sys::fuzz_target;

static SERVER: Mutex<Option<Server>> = Mutex::new(None);

fn server() -> Server {
    let dir = std::env::temp_dir().join(format!("gofer-fuzz-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("d/e")).expect("scratch dir");
    std::fs::write(dir.join("d/f"), b"data").expect("scratch file");
    let _ = std::os::unix::fs::symlink("/d/../../..", dir.join("up"));
    let c = std::ffi::CString::new(dir.to_str().expect("utf-8 temp dir")).expect("no NUL");
    // SAFETY: valid C string; the fd is checked and then owned.
    let fd = unsafe {
        libc::open(
            c.as_ptr(),
            libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    };
    assert!(fd >= 0, "open scratch root");
    // SAFETY: a fresh fd owned by nothing else.
    let root = unsafe { OwnedFd::from_raw_fd(fd) };
    let cfg = ServerConfig {
        masked_paths: vec!["/d/e".into()],
        readonly_paths: vec!["/d".into()],
        ..Default::default()
    };
    Server::new(root, &cfg).expect("server")
}

fuzz_target!(|data: &[u8]| {
    let mut guard = SERVER.lock().unwrap_or_else(|p| p.into_inner());
    let s = guard.get_or_insert_with(server);
    let _ = s.handle_packet(data);
    assert!(s.handle_count() <= gofer::server::MAX_HANDLES);
});
