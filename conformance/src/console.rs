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
    stream.set_read_timeout(Some(remaining(deadline)))?;
    let master = recv_fd(stream.as_raw_fd())?;
    let mut file = File::from(master);
    let mut output = Vec::new();
    let mut buf = [0u8; 4096];
    // The master reports EIO once the last slave fd is closed (container exited). Poll with a
    // deadline: a runtime that keeps a slave fd open must not hang the suite.
    while Instant::now() < deadline {
        let mut pfd = libc::pollfd {
            fd: file.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd, bounded timeout.
        let n = unsafe { libc::poll(&mut pfd, 1, 100) };
        if n <= 0 {
            continue;
        }
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

/// What arrived on a fd-passing socket: the payload bytes and the descriptors.
pub struct Received {
    pub data: Vec<u8>,
    pub fds: Vec<OwnedFd>,
}

/// Listens on `path` and, on a thread, accepts one connection and receives one message with
/// its SCM_RIGHTS descriptors (the seccomp `listenerPath` protocol).
pub fn receive_one(path: &Path, timeout: Duration) -> Result<JoinHandle<Result<Received>>> {
    let listener = UnixListener::bind(path).with_context(|| format!("binding {path:?}"))?;
    listener.set_nonblocking(true)?;
    Ok(std::thread::spawn(move || {
        let deadline = Instant::now() + timeout;
        let stream = loop {
            match listener.accept() {
                Ok((s, _)) => break s,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    if Instant::now() > deadline {
                        bail!("nobody connected to the listener socket");
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(e) => return Err(e).context("accept"),
            }
        };
        stream.set_nonblocking(false)?;
        // The peer may connect early and send late (or never): bound the wait.
        stream.set_read_timeout(Some(remaining(deadline)))?;
        recv_msg(stream.as_raw_fd())
    }))
}

fn recv_fd(sock: i32) -> Result<OwnedFd> {
    let mut r = recv_msg(sock)?;
    if r.fds.is_empty() {
        bail!("console socket message carried no file descriptor");
    }
    Ok(r.fds.remove(0))
}

fn remaining(deadline: Instant) -> Duration {
    deadline
        .saturating_duration_since(Instant::now())
        .max(Duration::from_millis(10))
}

/// Receives one message and every fd passed with SCM_RIGHTS.
fn recv_msg(sock: i32) -> Result<Received> {
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
    let n = loop {
        // SAFETY: msg points at live buffers of the stated lengths.
        let n = unsafe { libc::recvmsg(sock, &mut msg, libc::MSG_CMSG_CLOEXEC) };
        let err = std::io::Error::last_os_error();
        if n >= 0 {
            break n;
        }
        match err.kind() {
            std::io::ErrorKind::Interrupted => continue,
            std::io::ErrorKind::WouldBlock => bail!("nothing received before the deadline"),
            _ => return Err(err).context("recvmsg"),
        }
    };
    let mut fds = Vec::new();
    // SAFETY: msg was filled by recvmsg; CMSG_FIRSTHDR/NXTHDR stay within msg_control.
    let mut cmsg = unsafe { libc::CMSG_FIRSTHDR(&msg) };
    while !cmsg.is_null() {
        // SAFETY: cmsg is non-null and inside the control buffer.
        let (level, kind, len) =
            unsafe { ((*cmsg).cmsg_level, (*cmsg).cmsg_type, (*cmsg).cmsg_len) };
        if level == libc::SOL_SOCKET && kind == libc::SCM_RIGHTS {
            // SAFETY: CMSG_LEN(0) is a pure size computation.
            let header = unsafe { libc::CMSG_LEN(0) } as usize;
            let count = len.saturating_sub(header) / std::mem::size_of::<i32>();
            for i in 0..count {
                // SAFETY: the payload holds `count` ints, written by the kernel.
                let fd = unsafe {
                    std::ptr::read_unaligned((libc::CMSG_DATA(cmsg) as *const i32).add(i))
                };
                // SAFETY: the kernel just installed this fd in our table; we own it alone.
                fds.push(unsafe { OwnedFd::from_raw_fd(fd) });
            }
        }
        // SAFETY: advancing within the same control buffer.
        cmsg = unsafe { libc::CMSG_NXTHDR(&msg, cmsg) };
    }
    Ok(Received {
        data: data[..n as usize].to_vec(),
        fds,
    })
}
