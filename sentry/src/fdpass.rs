//! Passing the listener fd from the workload to the sentry over a unix socket (SCM_RIGHTS).

use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use nix::sys::socket::{recvmsg, sendmsg, ControlMessage, ControlMessageOwned, MsgFlags};

use crate::Error;

/// Send one fd with a one-byte message.
pub fn send_fd(sock: BorrowedFd<'_>, fd: BorrowedFd<'_>) -> Result<(), Error> {
    let fds = [fd.as_raw_fd()];
    let cmsg = [ControlMessage::ScmRights(&fds)];
    let iov = [IoSlice::new(b"L")];
    sendmsg::<()>(sock.as_raw_fd(), &iov, &cmsg, MsgFlags::empty(), None).map_err(|e| {
        Error::Sys {
            context: "send listener fd",
            source: e.into(),
        }
    })?;
    Ok(())
}

/// Receive one fd sent by `send_fd`. The fd arrives close-on-exec.
pub fn recv_fd(sock: BorrowedFd<'_>) -> Result<OwnedFd, Error> {
    let mut byte = [0u8; 1];
    let mut iov = [IoSliceMut::new(&mut byte)];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let msg = recvmsg::<()>(
        sock.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .map_err(|e| Error::Sys {
        context: "receive listener fd",
        source: e.into(),
    })?;
    let mut got: Option<OwnedFd> = None;
    for c in msg.cmsgs().map_err(|e| Error::Sys {
        context: "receive listener fd",
        source: e.into(),
    })? {
        if let ControlMessageOwned::ScmRights(fds) = c {
            for fd in fds {
                // SAFETY: the kernel just installed this fd for us; we are its only owner.
                let owned = unsafe { OwnedFd::from_raw_fd(fd) };
                if got.is_none() {
                    got = Some(owned);
                }
            }
        }
    }
    got.ok_or_else(|| {
        Error::Invalid("peer closed the socket without sending the listener fd".into())
    })
}
