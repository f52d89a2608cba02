//! The typed channel between the runtime and the processes it forks (stage 1, the container
//! init, an exec'd process). One SOCK_SEQPACKET socketpair; each datagram is one JSON `Msg`,
//! so a message boundary can never be confused and a dead peer reads as EOF, not a hang.

use nix::sys::socket::{recv, send, socketpair, AddressFamily, MsgFlags, SockFlag, SockType};
use serde::{Deserialize, Serialize};
use std::os::fd::{AsRawFd, OwnedFd};

#[derive(Serialize, Deserialize, Debug, PartialEq)]
pub enum Msg {
    /// Stage 1 unshared a user namespace: write its id maps.
    UsernsReady,
    /// The runtime wrote the id maps.
    UsernsMapped,
    /// Stage 1 forked the container init, which has this pid in the runtime's pid namespace.
    InitPid(i32),
    /// The runtime placed the init in its cgroups: go on.
    CgroupJoined,
    /// The rootfs is mounted, not yet pivoted: run the prestart and createRuntime hooks.
    MountsReady,
    /// prestart/createRuntime ran; the payload is the state JSON (with the init's host pid)
    /// for the hooks the init runs itself (createContainer, startContainer).
    HooksDone(String),
    /// Set up finished; the init now waits for `start` (create) or execs (exec).
    Ready,
    /// A step failed; the message is meant for the user.
    Error(String),
}

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("sync channel: {0}")]
    Io(#[from] nix::Error),
    #[error("sync channel: peer closed before {0}")]
    Eof(&'static str),
    #[error("sync channel: bad message: {0}")]
    Decode(#[from] serde_json::Error),
}

pub struct Channel {
    fd: OwnedFd,
}

/// A connected pair: (runtime end, child end). Both are CLOEXEC so they never reach the
/// workload through execve.
pub fn pair() -> Result<(Channel, Channel), SyncError> {
    let (a, b) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )?;
    Ok((Channel { fd: a }, Channel { fd: b }))
}

impl Channel {
    pub fn send(&self, msg: &Msg) -> Result<(), SyncError> {
        let buf = serde_json::to_vec(msg)?;
        send(self.fd.as_raw_fd(), &buf, MsgFlags::MSG_NOSIGNAL)?;
        Ok(())
    }

    pub fn recv(&self, waiting_for: &'static str) -> Result<Msg, SyncError> {
        let mut buf = vec![0u8; 64 * 1024];
        let n = loop {
            match recv(self.fd.as_raw_fd(), &mut buf, MsgFlags::empty()) {
                Err(nix::Error::EINTR) => continue,
                r => break r?,
            }
        };
        if n == 0 {
            return Err(SyncError::Eof(waiting_for));
        }
        Ok(serde_json::from_slice(&buf[..n])?)
    }

    /// Receive and require a specific message; an `Error` from the peer is passed through.
    pub fn expect(&self, want: Msg, waiting_for: &'static str) -> Result<(), String> {
        match self.recv(waiting_for) {
            Ok(m) if m == want => Ok(()),
            Ok(Msg::Error(e)) => Err(e),
            Ok(other) => Err(format!("sync channel: expected {want:?}, got {other:?}")),
            Err(e) => Err(e.to_string()),
        }
    }
}
