//! The client side of the gofer protocol, used by the sentry.
//!
//! One method per request. Every method sends one packet and waits for its reply, so a method
//! call is one round trip. `Client` is `Sync`: calls from several threads are serialized on an
//! internal mutex (requests and replies are matched by order on the socket).
//!
//! Errors: `Error::Remote(errno)` is the gofer's answer (hand it to the workload as is); any
//! other `Error` means the connection is broken or the peer misbehaved (treat as EIO).
//!
//! ```no_run
//! # fn demo(sock: std::os::fd::OwnedFd) -> Result<(), gofer::Error> {
//! use gofer::client::Client;
//! use gofer::protocol::{Handle, Target};
//! let c = Client::new(sock);
//! c.hello()?;
//! let st = c.stat(Target::new(Handle::ROOT, "/etc/passwd"))?;
//! let (fd, _st) = c.open(Target::new(Handle::ROOT, "/etc/passwd"), libc::O_RDONLY as u32, 0,
//!                        gofer::protocol::Owner::UNCHANGED)?;
//! # let _ = (st, fd); Ok(()) }
//! ```

use std::os::fd::{AsFd, OwnedFd};
use std::sync::Mutex;

use crate::protocol::{
    Dirent, Handle, Owner, Reply, Request, SetAttr, Stat, StatFs, Target, MAX_MESSAGE, VERSION,
};
use crate::{wire, Error};

/// What `Hello` negotiated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Session {
    pub version: u32,
    pub max_message: u32,
    /// Request ids the server implements.
    pub supported: Vec<u16>,
    pub root: Handle,
    pub root_stat: Stat,
}

/// A connection to a gofer.
pub struct Client {
    inner: Mutex<Conn>,
}

struct Conn {
    sock: OwnedFd,
    buf: Vec<u8>,
}

impl Client {
    /// Wrap the client end of the socketpair. Does no I/O; call `hello` first.
    pub fn new(sock: OwnedFd) -> Client {
        Client {
            inner: Mutex::new(Conn {
                sock,
                buf: vec![0; MAX_MESSAGE],
            }),
        }
    }

    /// Send one request, return its reply and the fd that came with it (if any).
    pub fn call(&self, req: &Request) -> Result<(Reply, Option<OwnedFd>), Error> {
        let packet = req.encode();
        if packet.len() > MAX_MESSAGE {
            return Err(Error::Remote(libc::ENAMETOOLONG));
        }
        let mut conn = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let Conn { sock, buf } = &mut *conn;
        wire::send(sock.as_fd(), &packet, &[]).map_err(Error::io("send request"))?;
        let pkt = wire::recv(sock.as_fd(), buf)
            .map_err(Error::io("receive reply"))?
            .ok_or(Error::Closed)?;
        if pkt.truncated || pkt.fds_truncated {
            return Err(Error::Protocol("oversized reply".into()));
        }
        let (reply, nfds) = Reply::decode(&buf[..pkt.len])?;
        let mut fds = pkt.fds;
        if fds.len() != nfds {
            return Err(Error::Protocol(format!(
                "reply announced {nfds} fds, {} arrived",
                fds.len()
            )));
        }
        if let Reply::Error { errno } = reply {
            return Err(Error::Remote(errno));
        }
        Ok((reply, fds.pop()))
    }

    fn unexpected(reply: Reply) -> Error {
        Error::Protocol(format!("unexpected reply {:?}", reply.id()))
    }

    fn expect_ok(&self, req: &Request) -> Result<(), Error> {
        match self.call(req)?.0 {
            Reply::Ok => Ok(()),
            r => Err(Self::unexpected(r)),
        }
    }

    fn expect_stat(&self, req: &Request) -> Result<Stat, Error> {
        match self.call(req)?.0 {
            Reply::Stat(s) => Ok(s),
            r => Err(Self::unexpected(r)),
        }
    }

    fn expect_fd(&self, req: &Request) -> Result<(OwnedFd, Stat), Error> {
        match self.call(req)? {
            (Reply::Opened { stat }, Some(fd)) => Ok((fd, stat)),
            (r, _) => Err(Self::unexpected(r)),
        }
    }

    fn expect_bytes_or_size(&self, req: &Request) -> Result<XattrData, Error> {
        match self.call(req)?.0 {
            Reply::Bytes(b) => Ok(XattrData::Bytes(b)),
            Reply::Size(n) => Ok(XattrData::Size(n)),
            r => Err(Self::unexpected(r)),
        }
    }

    /// Negotiate the protocol version; returns the root handle and what the server supports.
    pub fn hello(&self) -> Result<Session, Error> {
        match self.call(&Request::Hello { version: VERSION })?.0 {
            Reply::Hello {
                version,
                max_message,
                supported,
                root,
                root_stat,
            } => Ok(Session {
                version,
                max_message,
                supported,
                root,
                root_stat,
            }),
            r => Err(Self::unexpected(r)),
        }
    }

    /// Resolve `at` (a whole path in one round trip) and keep a handle to the result.
    pub fn walk(&self, at: Target) -> Result<(Handle, Stat), Error> {
        match self.call(&Request::Walk { at })?.0 {
            Reply::Walked { handle, stat } => Ok((handle, stat)),
            r => Err(Self::unexpected(r)),
        }
    }

    /// stat / lstat / fstatat: resolve and stat without keeping a handle.
    pub fn stat(&self, at: Target) -> Result<Stat, Error> {
        self.expect_stat(&Request::StatAt { at })
    }

    /// open / openat / creat: returns a host fd ready to install in the workload.
    /// `flags` are open(2) flags (O_CREAT, O_EXCL, O_TRUNC, O_DIRECTORY, O_NOFOLLOW, O_APPEND,
    /// O_NONBLOCK, ...). `at.follow` is ignored: O_NOFOLLOW in `flags` decides.
    pub fn open(
        &self,
        at: Target,
        flags: u32,
        mode: u32,
        owner: Owner,
    ) -> Result<(OwnedFd, Stat), Error> {
        self.expect_fd(&Request::Open {
            at,
            flags,
            mode,
            owner,
        })
    }

    /// Release handles. Handle::ROOT cannot be closed (EBADF).
    pub fn close(&self, handles: &[Handle]) -> Result<(), Error> {
        self.expect_ok(&Request::Close {
            handles: handles.to_vec(),
        })
    }

    /// Read directory entries starting at `offset` (0 = start; otherwise a `next_offset`
    /// from a previous entry). Returns the entries and whether the end was reached.
    pub fn readdir(
        &self,
        at: Target,
        offset: u64,
        max_bytes: u32,
    ) -> Result<(Vec<Dirent>, bool), Error> {
        match self
            .call(&Request::Readdir {
                at,
                offset,
                max_bytes,
            })?
            .0
        {
            Reply::Dirents { entries, eof } => Ok((entries, eof)),
            r => Err(Self::unexpected(r)),
        }
    }

    /// readlink(at): the last component is never followed.
    pub fn readlink(&self, at: Target) -> Result<Vec<u8>, Error> {
        match self.call(&Request::Readlink { at })?.0 {
            Reply::Bytes(b) => Ok(b),
            r => Err(Self::unexpected(r)),
        }
    }

    pub fn mkdir(&self, at: Target, mode: u32, owner: Owner) -> Result<Stat, Error> {
        self.expect_stat(&Request::Mkdir { at, mode, owner })
    }

    /// `mode` carries the file type (S_IFREG, S_IFIFO, S_IFSOCK, S_IFCHR, S_IFBLK).
    pub fn mknod(&self, at: Target, mode: u32, rdev: u64, owner: Owner) -> Result<Stat, Error> {
        self.expect_stat(&Request::Mknod {
            at,
            mode,
            rdev,
            owner,
        })
    }

    /// Create `at` as a symlink whose content is `target`.
    pub fn symlink(&self, at: Target, target: &[u8], owner: Owner) -> Result<Stat, Error> {
        self.expect_stat(&Request::Symlink {
            at,
            target: target.to_vec(),
            owner,
        })
    }

    /// Hard link `new` to `old` (`old.follow` = AT_SYMLINK_FOLLOW).
    pub fn link(&self, old: Target, new: Target) -> Result<Stat, Error> {
        self.expect_stat(&Request::Link { old, new })
    }

    /// unlink (`flags` 0) or rmdir (`flags` AT_REMOVEDIR).
    pub fn unlink(&self, at: Target, flags: u32) -> Result<(), Error> {
        self.expect_ok(&Request::Unlink { at, flags })
    }

    /// renameat2 with RENAME_NOREPLACE / RENAME_EXCHANGE / 0.
    pub fn rename(&self, old: Target, new: Target, flags: u32) -> Result<(), Error> {
        self.expect_ok(&Request::Rename { old, new, flags })
    }

    /// chmod / chown / truncate / utimensat in one trip; returns the new attributes.
    pub fn setattr(&self, at: Target, attr: SetAttr) -> Result<Stat, Error> {
        self.expect_stat(&Request::SetAttr { at, attr })
    }

    /// getxattr; `size` 0 asks for the value's size only.
    pub fn getxattr(&self, at: Target, name: &[u8], size: u32) -> Result<XattrData, Error> {
        self.expect_bytes_or_size(&Request::GetXattr {
            at,
            name: name.to_vec(),
            size,
        })
    }

    /// setxattr with XATTR_CREATE / XATTR_REPLACE / 0.
    pub fn setxattr(&self, at: Target, name: &[u8], value: &[u8], flags: u32) -> Result<(), Error> {
        self.expect_ok(&Request::SetXattr {
            at,
            name: name.to_vec(),
            value: value.to_vec(),
            flags,
        })
    }

    /// listxattr: NUL-separated names; `size` 0 asks for the size only.
    pub fn listxattr(&self, at: Target, size: u32) -> Result<XattrData, Error> {
        self.expect_bytes_or_size(&Request::ListXattr { at, size })
    }

    pub fn removexattr(&self, at: Target, name: &[u8]) -> Result<(), Error> {
        self.expect_ok(&Request::RemoveXattr {
            at,
            name: name.to_vec(),
        })
    }

    pub fn statfs(&self, at: Target) -> Result<StatFs, Error> {
        match self.call(&Request::StatFs { at })?.0 {
            Reply::StatFs(s) => Ok(s),
            r => Err(Self::unexpected(r)),
        }
    }

    /// An O_PATH directory fd for directfs-style opens; EPERM unless the server allows it.
    pub fn donate_dir(&self, at: Target) -> Result<(OwnedFd, Stat), Error> {
        self.expect_fd(&Request::DonateDir { at })
    }

    /// Request counts by message id (id 0: undecodable messages).
    pub fn stats(&self) -> Result<Vec<(u16, u64)>, Error> {
        match self.call(&Request::Stats)?.0 {
            Reply::Stats(v) => Ok(v),
            r => Err(Self::unexpected(r)),
        }
    }
}

/// Result of getxattr/listxattr: the data, or only its size when size 0 was asked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum XattrData {
    Bytes(Vec<u8>),
    Size(u64),
}
