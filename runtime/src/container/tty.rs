//! Foreground `run`/`exec` of a process with `terminal: true` and no `--console-socket`:
//! like runc, mantle receives the pty master itself and copies between it and its own stdio.

use anyhow::{Context, Result};
use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg, Termios};
use std::io::{IoSliceMut, Read, Write};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::PathBuf;

/// A console socket owned by the runtime for the duration of one foreground command.
pub struct ConsoleSocket {
    pub path: PathBuf,
    listener: UnixListener,
}

impl ConsoleSocket {
    pub fn new(dir: &std::path::Path, tag: &str) -> Result<ConsoleSocket> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join(format!(".console-{tag}-{}.sock", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path).context("bind console socket")?;
        Ok(ConsoleSocket { path, listener })
    }

    /// The container connected while being created; take the pty master it sent.
    pub fn receive_master(self) -> Result<OwnedFd> {
        let (conn, _) = self
            .listener
            .accept()
            .context("accept console connection")?;
        let _ = std::fs::remove_file(&self.path);
        let mut buf = [0u8; 64];
        let mut iov = [IoSliceMut::new(&mut buf)];
        let mut space = nix::cmsg_space!([std::os::fd::RawFd; 1]);
        let msg = recvmsg::<()>(
            conn.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::MSG_CMSG_CLOEXEC,
        )
        .context("receive pty master")?;
        for c in msg.cmsgs().context("console message")? {
            if let ControlMessageOwned::ScmRights(fds) = c {
                if let Some(fd) = fds.first() {
                    // SAFETY: SCM_RIGHTS just installed this fd in our table; we own it.
                    return Ok(unsafe { OwnedFd::from_raw_fd(*fd) });
                }
            }
        }
        anyhow::bail!("console socket: no pty master received")
    }
}

impl Drop for ConsoleSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Restores the caller's terminal mode when the proxy ends.
pub struct RawMode(Option<Termios>, std::sync::mpsc::Receiver<()>);

impl RawMode {
    /// Let the output copy drain (the pty reports EOF once the process is gone).
    pub fn finish(self) {
        let _ = self.1.recv_timeout(std::time::Duration::from_secs(2));
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if let Some(t) = self.0.take() {
            let _ = tcsetattr(std::io::stdin().as_fd(), SetArg::TCSANOW, &t);
        }
    }
}

/// Copy stdin -> master and master -> stdout in background threads.
pub fn proxy(master: OwnedFd) -> Result<RawMode> {
    let stdin = std::io::stdin();
    let saved = tcgetattr(stdin.as_fd()).ok();
    if let Some(t) = &saved {
        let mut raw = t.clone();
        cfmakeraw(&mut raw);
        let _ = tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &raw);
        copy_winsize(&master);
    }
    let mut to_pty = std::fs::File::from(master.try_clone()?);
    let mut from_pty = std::fs::File::from(master);
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        let mut input = std::io::stdin();
        while let Ok(n) = input.read(&mut buf) {
            if n == 0 || to_pty.write_all(&buf[..n]).is_err() {
                break;
            }
        }
    });
    let (done, drained) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut out = std::io::stdout();
        let _ = std::io::copy(&mut from_pty, &mut out);
        let _ = out.flush();
        let _ = done.send(());
    });
    Ok(RawMode(saved, drained))
}

fn copy_winsize(master: &OwnedFd) {
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ/TIOCSWINSZ read/write a winsize struct that lives for the calls.
    unsafe {
        if libc::ioctl(0, libc::TIOCGWINSZ, &mut ws) == 0 {
            libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &ws);
        }
    }
}
