//! The `--console-socket` peer: receives the pty master a runtime sends for
//! `process.terminal: true` and reads everything the container writes to its terminal.

use anyhow::{bail, Context, Result};
use std::fs::File;
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// What came over the console socket.
pub struct Console {
    /// Everything read from the pty master until the container closed its side.
    pub output: String,
}

/// Listens on `path` and, on a thread, accepts one connection, receives the master fd and
/// drains it. The thread ends on EOF/EIO of the master or when `timeout` passes.
pub fn capture(path: &Path, timeout: Duration) -> Result<JoinHandle<Result<Console>>> {
    let listener = UnixListener::bind(path).with_context(|| format!("binding {path:?}"))?;
    listener.set_nonblocking(true)?;
    Ok(std::thread::spawn(move || serve(listener, timeout)))
}

fn serve(listener: UnixListener, timeout: Duration) -> Result<Console> {
    let deadline = Instant::now() + timeout;
    let stream = loop {
        match listener.accept() {
            Ok((s, _)) => break s,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if Instant::now() > deadline {
                    bail!("nobody connected to the console socket");
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => return Err(e).context("accept on console socket"),
        }
    };
    stream.set_nonblocking(false)?;
    let master = recv_fd(stream.as_raw_fd())?;
    let mut file = File::from(master);
    let mut output = Vec::new();
    let mut buf = [0u8; 4096];
    // The master reports EIO once the last slave fd is closed (container exited).
    while Instant::now() < deadline {
        match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => output.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        }
    }
    Ok(Console {
        output: String::from_utf8_lossy(&output).into_owned(),
    })
}

/// Receives one fd passed with SCM_RIGHTS.
fn recv_fd(sock: i32) -> Result<OwnedFd> {
    let mut data = [0u8; 4096];
    let mut iov = libc::iovec {
        iov_base: data.as_mut_ptr().cast(),
        iov_len: data.len(),
    };
    let mut cmsg_buf = [0u64; 16];
    // SAFETY: msghdr is plain data; zeroed is valid and every pointer is set below.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cmsg_buf.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&cmsg_buf);
    // SAFETY: msg points at live buffers of the stated lengths.
    let n = unsafe { libc::recvmsg(sock, &mut msg, libc::MSG_CMSG_CLOEXEC) };
    if n < 0 {
        return Err(std::io::Error::last_os_error()).context("recvmsg on console socket");
    }
    // SAFETY: msg was filled by recvmsg; CMSG_FIRSTHDR stays within msg_control.
    let cmsg = unsafe { libc::CMSG_FIRSTHDR(&msg) };
    if cmsg.is_null() {
        bail!("console socket message carried no file descriptor");
    }
    // SAFETY: cmsg is non-null and inside the control buffer.
    let (level, kind) = unsafe { ((*cmsg).cmsg_level, (*cmsg).cmsg_type) };
    if level != libc::SOL_SOCKET || kind != libc::SCM_RIGHTS {
        bail!("console socket message is not SCM_RIGHTS");
    }
    // SAFETY: an SCM_RIGHTS payload starts with at least one int fd.
    let fd = unsafe { std::ptr::read_unaligned(libc::CMSG_DATA(cmsg) as *const i32) };
    // SAFETY: the kernel just installed this fd in our table; we are its only owner.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}
