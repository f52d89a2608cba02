//! process.terminal: the init allocates a pty inside the container (its own devpts) and sends
//! the master to the caller's --console-socket with SCM_RIGHTS, as runc does; the slave
//! becomes the process's controlling terminal and stdio.

use nix::fcntl::{open, OFlag};
use nix::pty::{grantpt, posix_openpt, ptsname_r, unlockpt};
use nix::sys::socket::{
    connect, sendmsg, socket, AddressFamily, ControlMessage, MsgFlags, SockFlag, SockType, UnixAddr,
};
use nix::sys::stat::Mode;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

pub type Result<T> = std::result::Result<T, String>;

/// Connected in the runtime (host paths) before the init pivots away from them.
pub fn connect_socket(path: &Path) -> Result<OwnedFd> {
    let sock = socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(|e| format!("console socket: {e}"))?;
    let addr =
        UnixAddr::new(path).map_err(|e| format!("console socket {}: {e}", path.display()))?;
    connect(sock.as_raw_fd(), &addr)
        .map_err(|e| format!("connect console socket {}: {e}", path.display()))?;
    Ok(sock)
}

/// In the init, after pivot: open a pty, send its master, make the slave our terminal.
pub fn setup(sock: &OwnedFd, size: Option<(u16, u16)>) -> Result<()> {
    let master = posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)
        .map_err(|e| format!("open pty master: {e}"))?;
    grantpt(&master).map_err(|e| format!("grantpt: {e}"))?;
    unlockpt(&master).map_err(|e| format!("unlockpt: {e}"))?;
    let slave_name = ptsname_r(&master).map_err(|e| format!("ptsname: {e}"))?;
    if let Some((rows, cols)) = size {
        let ws = libc::winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCSWINSZ reads a winsize struct that lives for the call.
        unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
    }
    let fds = [master.as_raw_fd()];
    let iov = [std::io::IoSlice::new(b"/dev/ptmx")];
    sendmsg::<()>(
        sock.as_raw_fd(),
        &iov,
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::empty(),
        None,
    )
    .map_err(|e| format!("send pty master to console socket: {e}"))?;
    drop(master);
    nix::unistd::setsid().map_err(|e| format!("setsid: {e}"))?;
    let slave = open(
        slave_name.as_str(),
        OFlag::O_RDWR | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| format!("open {slave_name}: {e}"))?;
    // SAFETY: `open` returned a fresh fd we own.
    let slave = unsafe { OwnedFd::from_raw_fd(slave) };
    // SAFETY: TIOCSCTTY takes an int argument; we are a session leader without a ctty.
    if unsafe { libc::ioctl(slave.as_raw_fd(), libc::TIOCSCTTY, 0) } < 0 {
        return Err(format!(
            "set controlling terminal: {}",
            std::io::Error::last_os_error()
        ));
    }
    // /dev/console is the pty slave, as runc arranges (bind over a file we create).
    let _ = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open("/dev/console");
    if let Err(e) = nix::mount::mount(
        Some(slave_name.as_str()),
        "/dev/console",
        None::<&str>,
        nix::mount::MsFlags::MS_BIND,
        None::<&str>,
    ) {
        crate::warn!("bind {slave_name} to /dev/console: {e}");
    }
    for target in 0..3 {
        nix::unistd::dup2(slave.as_raw_fd(), target)
            .map_err(|e| format!("dup2 pty to fd {target}: {e}"))?;
    }
    Ok(())
}
