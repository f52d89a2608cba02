//! Defence against CVE-2019-5736: a container process that opens /proc/<runtime pid>/exe
//! (the runtime while it joins the container) and writes to it would overwrite the host's
//! mantle binary. Before touching a container, mantle re-executes itself from a sealed memfd
//! copy: /proc/self/exe is then an anonymous, write-sealed file, and the host binary is never
//! mapped by a process inside the container.

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

const MARK: &str = "_MANTLE_SEALED";

pub fn is_sealed() -> bool {
    std::env::var_os(MARK).is_some()
}

/// Re-exec from a sealed memfd unless already running from one. Returns only on failure
/// (or when already sealed).
pub fn ensure_sealed() -> Result<(), String> {
    if is_sealed() {
        // Do not leak the marker into anything we exec later (hooks, workload).
        std::env::remove_var(MARK);
        return Ok(());
    }
    let mut bin =
        std::fs::File::open("/proc/self/exe").map_err(|e| format!("open /proc/self/exe: {e}"))?;
    let name = CString::new("mantle-sealed").expect("static");
    // SAFETY: memfd_create with a NUL-terminated name; returns a new fd or -1.
    let fd =
        unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING) };
    if fd < 0 {
        return Err(format!("memfd_create: {}", std::io::Error::last_os_error()));
    }
    // SAFETY: fresh fd we own.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut f = std::fs::File::from(fd);
    // In-kernel copy (copy_file_range/sendfile under std::io::copy): no pass through userspace.
    std::io::copy(&mut bin, &mut f).map_err(|e| format!("copy binary to memfd: {e}"))?;
    let seals = libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;
    // SAFETY: fcntl(F_ADD_SEALS) on our memfd.
    if unsafe { libc::fcntl(f.as_raw_fd(), libc::F_ADD_SEALS, seals) } < 0 {
        return Err(format!("seal memfd: {}", std::io::Error::last_os_error()));
    }
    let args: Vec<CString> = std::env::args_os()
        .map(|a| CString::new(a.as_encoded_bytes()).unwrap_or_default())
        .collect();
    let mut env: Vec<CString> = std::env::vars_os()
        .map(|(k, v)| {
            let mut s = k.as_encoded_bytes().to_vec();
            s.push(b'=');
            s.extend_from_slice(v.as_encoded_bytes());
            CString::new(s).unwrap_or_default()
        })
        .collect();
    env.push(CString::new(format!("{MARK}=1")).expect("static"));
    let e = nix::unistd::fexecve(f.as_raw_fd(), &args, &env).unwrap_err();
    Err(format!("re-exec from sealed memfd: {e}"))
}
