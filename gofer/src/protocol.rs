//! The gofer wire protocol: one request enum, one reply enum, a compact hand-written encoding.
//!
//! Framing (one SOCK_SEQPACKET packet = one message):
//!
//! ```text
//! offset 0  u32 LE  body length (must equal packet length - 8)
//! offset 4  u16 LE  message id (requests: MsgId, replies: ReplyId)
//! offset 6  u16 LE  requests: 0 (reserved); replies: number of fds sent with SCM_RIGHTS
//! offset 8  body    fields in declaration order, little endian, no padding
//! ```
//!
//! Field encodings: integers are fixed-width little endian; `bool` is one byte (0 or 1, anything
//! else is an error); byte strings are a `u32` length then the bytes; lists are a `u32` count then
//! the items. Every length is checked against the bytes that are actually left and against a
//! per-field cap before anything is allocated, so a hostile length can neither panic nor make the
//! decoder allocate more than the packet it received.
//!
//! Message ids are append-only: a new message gets the next free id, an id is never reused or
//! renumbered, and a message's body never changes within a protocol version.

use std::fmt;

/// Protocol version this crate speaks. Negotiated by `Hello`: the server answers with
/// `min(client, server)`.
pub const VERSION: u32 = 1;
/// Largest packet either side sends or accepts (header included).
pub const MAX_MESSAGE: usize = 128 * 1024;
/// Size of the fixed header.
pub const HEADER_LEN: usize = 8;
/// Longest path accepted in a request (Linux PATH_MAX).
pub const MAX_PATH: usize = 4096;
/// Longest single name: a path component, a symlink component, an xattr name (Linux NAME_MAX,
/// XATTR_NAME_MAX).
pub const MAX_NAME: usize = 255;
/// Largest xattr value (Linux XATTR_SIZE_MAX).
pub const MAX_XATTR_VALUE: usize = 64 * 1024;
/// Most handles one `Close` may name.
pub const MAX_HANDLES_PER_CLOSE: usize = 1024;
/// Largest byte budget a `Readdir` may ask for; the reply must still fit in `MAX_MESSAGE`.
pub const MAX_READDIR_BYTES: u32 = 64 * 1024;

/// A server-side reference to a file or directory beneath the container root. Opaque to the
/// client; `Handle::ROOT` always names the root and can never be closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Handle(pub u64);

impl Handle {
    /// The container root; valid from the first message on.
    pub const ROOT: Handle = Handle(1);
}

/// Where an operation applies: `path` resolved relative to `dir`.
///
/// * empty `path`: the object `dir` names itself;
/// * a path starting with `/`: resolved from the container root (`dir` is still validated);
/// * `..` never leaves the container root; absolute symlinks are resolved from the container root.
///
/// `follow` says whether a symlink in the *last* component is followed (like the absence of
/// `AT_SYMLINK_NOFOLLOW`). Operations that create or remove the last component never follow it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub dir: Handle,
    pub path: Vec<u8>,
    pub follow: bool,
}

impl Target {
    /// `path` relative to `dir`, following a final symlink.
    pub fn new(dir: Handle, path: impl AsRef<[u8]>) -> Target {
        Target {
            dir,
            path: path.as_ref().to_vec(),
            follow: true,
        }
    }
    /// `path` relative to `dir`, not following a final symlink.
    pub fn nofollow(dir: Handle, path: impl AsRef<[u8]>) -> Target {
        Target {
            follow: false,
            ..Target::new(dir, path)
        }
    }
    /// The object `dir` itself.
    pub fn handle(dir: Handle) -> Target {
        Target::nofollow(dir, b"")
    }
}

/// Owner given to a newly created object; `u32::MAX` (the kernel's `-1`) leaves that id as the
/// gofer created it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Owner {
    pub uid: u32,
    pub gid: u32,
}

impl Owner {
    /// Keep whatever owner the gofer's own credentials give.
    pub const UNCHANGED: Owner = Owner {
        uid: u32::MAX,
        gid: u32::MAX,
    };
}

/// A point in time as (seconds, nanoseconds).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Timespec {
    pub sec: i64,
    pub nsec: u32,
}

/// The attributes of a file, from `statx(2)`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stat {
    /// statx `stx_mask`: which fields the filesystem filled in.
    pub mask: u32,
    pub mode: u32,
    pub nlink: u32,
    pub uid: u32,
    pub gid: u32,
    pub blksize: u32,
    pub attributes: u64,
    pub ino: u64,
    pub size: u64,
    pub blocks: u64,
    /// `makedev(major, minor)` of the device holding the file.
    pub dev: u64,
    /// `makedev(major, minor)` for device files.
    pub rdev: u64,
    pub atime: Timespec,
    pub btime: Timespec,
    pub ctime: Timespec,
    pub mtime: Timespec,
    /// statx `stx_mnt_id`: lets the sentry tell mounts apart.
    pub mnt_id: u64,
}

impl Stat {
    /// File type bits of `mode`.
    pub fn file_type(&self) -> u32 {
        self.mode & libc::S_IFMT
    }
    pub fn is_dir(&self) -> bool {
        self.file_type() == libc::S_IFDIR
    }
    pub fn is_symlink(&self) -> bool {
        self.file_type() == libc::S_IFLNK
    }
}

/// The attributes of a filesystem, from `fstatfs(2)`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StatFs {
    pub fs_type: u64,
    pub bsize: u64,
    pub blocks: u64,
    pub bfree: u64,
    pub bavail: u64,
    pub files: u64,
    pub ffree: u64,
    pub namelen: u64,
    pub frsize: u64,
    pub flags: u64,
}

/// Which attributes a `SetAttr` changes (bits of `SetAttr::mask`).
pub mod setattr {
    pub const MODE: u32 = 1 << 0;
    pub const UID: u32 = 1 << 1;
    pub const GID: u32 = 1 << 2;
    pub const SIZE: u32 = 1 << 3;
    pub const ATIME: u32 = 1 << 4;
    pub const MTIME: u32 = 1 << 5;
    /// Set atime to the current time (ignores `SetAttr::atime`).
    pub const ATIME_NOW: u32 = 1 << 6;
    /// Set mtime to the current time (ignores `SetAttr::mtime`).
    pub const MTIME_NOW: u32 = 1 << 7;
    pub const ALL: u32 = (1 << 8) - 1;
}

/// chmod / chown / truncate / utimes in one message.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SetAttr {
    pub mask: u32,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    pub atime: Timespec,
    pub mtime: Timespec,
}

/// One directory entry, as `getdents64` reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dirent {
    pub ino: u64,
    /// Offset to pass as `Readdir::offset` to continue after this entry.
    pub next_offset: u64,
    /// `DT_*` type.
    pub kind: u8,
    pub name: Vec<u8>,
}

/// Message ids of requests. Append-only: never renumber, never reuse.
#[repr(u16)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MsgId {
    Hello = 1,
    Walk = 2,
    StatAt = 3,
    Open = 4,
    Close = 5,
    Readdir = 6,
    Readlink = 7,
    Mkdir = 8,
    Mknod = 9,
    Symlink = 10,
    Link = 11,
    Unlink = 12,
    Rename = 13,
    SetAttr = 14,
    GetXattr = 15,
    SetXattr = 16,
    ListXattr = 17,
    RemoveXattr = 18,
    StatFs = 19,
    DonateDir = 20,
    Stats = 21,
}

impl MsgId {
    /// Every request id this build knows, in id order.
    pub const ALL: [MsgId; 21] = [
        MsgId::Hello,
        MsgId::Walk,
        MsgId::StatAt,
        MsgId::Open,
        MsgId::Close,
        MsgId::Readdir,
        MsgId::Readlink,
        MsgId::Mkdir,
        MsgId::Mknod,
        MsgId::Symlink,
        MsgId::Link,
        MsgId::Unlink,
        MsgId::Rename,
        MsgId::SetAttr,
        MsgId::GetXattr,
        MsgId::SetXattr,
        MsgId::ListXattr,
        MsgId::RemoveXattr,
        MsgId::StatFs,
        MsgId::DonateDir,
        MsgId::Stats,
    ];

    pub fn from_u16(v: u16) -> Option<MsgId> {
        MsgId::ALL.iter().copied().find(|m| *m as u16 == v)
    }

    pub fn name(self) -> &'static str {
        match self {
            MsgId::Hello => "Hello",
            MsgId::Walk => "Walk",
            MsgId::StatAt => "StatAt",
            MsgId::Open => "Open",
            MsgId::Close => "Close",
            MsgId::Readdir => "Readdir",
            MsgId::Readlink => "Readlink",
            MsgId::Mkdir => "Mkdir",
            MsgId::Mknod => "Mknod",
            MsgId::Symlink => "Symlink",
            MsgId::Link => "Link",
            MsgId::Unlink => "Unlink",
            MsgId::Rename => "Rename",
            MsgId::SetAttr => "SetAttr",
            MsgId::GetXattr => "GetXattr",
            MsgId::SetXattr => "SetXattr",
            MsgId::ListXattr => "ListXattr",
            MsgId::RemoveXattr => "RemoveXattr",
            MsgId::StatFs => "StatFs",
            MsgId::DonateDir => "DonateDir",
            MsgId::Stats => "Stats",
        }
    }
}

/// Requests, sent by the client (the sentry). The reply each one gets is written next to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    /// Negotiate the version. -> `Reply::Hello`.
    Hello { version: u32 },
    /// Resolve a path (all components in one trip) and keep a handle to it. -> `Reply::Walked`.
    Walk { at: Target },
    /// Resolve a path and stat it, without keeping a handle. -> `Reply::Stat`.
    StatAt { at: Target },
    /// Resolve (and with `O_CREAT` create) and open; the host fd comes with the reply.
    /// `flags` are `open(2)` flags; `O_CLOEXEC` is always added. -> `Reply::Opened` + 1 fd.
    Open {
        at: Target,
        flags: u32,
        mode: u32,
        owner: Owner,
    },
    /// Forget handles. Unknown handles are an error (EBADF) but the known ones are still
    /// closed. -> `Reply::Ok`.
    Close { handles: Vec<Handle> },
    /// Read entries of a directory from `offset` (0 = start), at most `max_bytes` of names.
    /// -> `Reply::Dirents`.
    Readdir {
        at: Target,
        offset: u64,
        max_bytes: u32,
    },
    /// Read a symlink (the last component is never followed). -> `Reply::Bytes`.
    Readlink { at: Target },
    /// -> `Reply::Stat` of the new directory.
    Mkdir { at: Target, mode: u32, owner: Owner },
    /// `mode` includes the file type (S_IFREG, S_IFIFO, S_IFCHR, ...). -> `Reply::Stat`.
    Mknod {
        at: Target,
        mode: u32,
        rdev: u64,
        owner: Owner,
    },
    /// Create `at` as a symlink to `target`. -> `Reply::Stat`.
    Symlink {
        at: Target,
        target: Vec<u8>,
        owner: Owner,
    },
    /// Hard link: `new` becomes another name of `old` (`old.follow` = AT_SYMLINK_FOLLOW).
    /// -> `Reply::Stat`.
    Link { old: Target, new: Target },
    /// `flags`: 0 or `AT_REMOVEDIR`. -> `Reply::Ok`.
    Unlink { at: Target, flags: u32 },
    /// `flags`: 0, `RENAME_NOREPLACE`, `RENAME_EXCHANGE` (and `RENAME_WHITEOUT`, which the host
    /// may refuse). -> `Reply::Ok`.
    Rename {
        old: Target,
        new: Target,
        flags: u32,
    },
    /// chmod / chown / truncate / utimes. -> `Reply::Stat` (after the change).
    SetAttr { at: Target, attr: SetAttr },
    /// `size` 0 asks for the size only (the reply's bytes are then empty and
    /// `Reply::Size` carries it). -> `Reply::Bytes` or `Reply::Size`.
    GetXattr {
        at: Target,
        name: Vec<u8>,
        size: u32,
    },
    /// `flags`: 0, `XATTR_CREATE`, `XATTR_REPLACE`. -> `Reply::Ok`.
    SetXattr {
        at: Target,
        name: Vec<u8>,
        value: Vec<u8>,
        flags: u32,
    },
    /// NUL-separated names as `listxattr(2)`; `size` 0 asks for the size only.
    /// -> `Reply::Bytes` or `Reply::Size`.
    ListXattr { at: Target, size: u32 },
    /// -> `Reply::Ok`.
    RemoveXattr { at: Target, name: Vec<u8> },
    /// -> `Reply::StatFs`.
    StatFs { at: Target },
    /// Donate an `O_PATH` directory fd for directfs-style opens (see README, "Directory
    /// donation"). Refused with EPERM unless the server allows it. -> `Reply::Opened` + 1 fd.
    DonateDir { at: Target },
    /// Request counters by message id. -> `Reply::Stats`.
    Stats,
}

/// Reply ids. Append-only.
#[repr(u16)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplyId {
    Error = 0,
    Ok = 1,
    Hello = 2,
    Walked = 3,
    Stat = 4,
    Opened = 5,
    Dirents = 6,
    Bytes = 7,
    Size = 8,
    StatFs = 9,
    Stats = 10,
}

/// Replies, sent by the server. Exactly one per request, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    /// The request failed with this errno (positive, e.g. `libc::ENOENT`).
    Error {
        errno: i32,
    },
    Ok,
    Hello {
        version: u32,
        max_message: u32,
        /// Request ids this server implements.
        supported: Vec<u16>,
        root: Handle,
        root_stat: Stat,
    },
    Walked {
        handle: Handle,
        stat: Stat,
    },
    Stat(Stat),
    /// Carries one fd (SCM_RIGHTS); `stat` describes it.
    Opened {
        stat: Stat,
    },
    Dirents {
        entries: Vec<Dirent>,
        /// No entries remain after the last one returned.
        eof: bool,
    },
    Bytes(Vec<u8>),
    Size(u64),
    StatFs(StatFs),
    /// (request id, count) for every id that was received at least once; id 0 counts
    /// messages that could not be decoded.
    Stats(Vec<(u16, u64)>),
}

impl Reply {
    /// Number of fds that travel with this reply.
    pub fn fd_count(&self) -> usize {
        match self {
            Reply::Opened { .. } => 1,
            _ => 0,
        }
    }
    pub fn id(&self) -> ReplyId {
        match self {
            Reply::Error { .. } => ReplyId::Error,
            Reply::Ok => ReplyId::Ok,
            Reply::Hello { .. } => ReplyId::Hello,
            Reply::Walked { .. } => ReplyId::Walked,
            Reply::Stat(_) => ReplyId::Stat,
            Reply::Opened { .. } => ReplyId::Opened,
            Reply::Dirents { .. } => ReplyId::Dirents,
            Reply::Bytes(_) => ReplyId::Bytes,
            Reply::Size(_) => ReplyId::Size,
            Reply::StatFs(_) => ReplyId::StatFs,
            Reply::Stats(_) => ReplyId::Stats,
        }
    }
}

/// Why a packet could not be decoded. The server answers every one of these with an error
/// reply (its errno is `DecodeError::errno`), never by crashing.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("message shorter than its {0}-byte header")]
    ShortHeader(usize),
    #[error("header says {declared} body bytes but the packet has {actual}")]
    LengthMismatch { declared: usize, actual: usize },
    #[error("message of {0} bytes exceeds the {MAX_MESSAGE}-byte limit")]
    TooLarge(usize),
    #[error("unknown message id {0}")]
    UnknownId(u16),
    #[error("reserved header field is {0}, must be 0")]
    Reserved(u16),
    #[error("message truncated while reading {0}")]
    Truncated(&'static str),
    #[error("{field} length {len} exceeds the limit {max}")]
    FieldTooLong {
        field: &'static str,
        len: usize,
        max: usize,
    },
    #[error("{0} bytes left over after the message body")]
    TrailingBytes(usize),
    #[error("invalid boolean byte {0}")]
    BadBool(u8),
    #[error("{0} contains a NUL byte")]
    Nul(&'static str),
}

impl DecodeError {
    /// The errno the server replies with for this error.
    pub fn errno(&self) -> i32 {
        match self {
            DecodeError::UnknownId(_) => libc::ENOSYS,
            DecodeError::TooLarge(_) => libc::EMSGSIZE,
            DecodeError::FieldTooLong { field, .. } if field.contains("path") => libc::ENAMETOOLONG,
            DecodeError::FieldTooLong { .. } => libc::E2BIG,
            DecodeError::Nul(_) => libc::EINVAL,
            _ => libc::EBADMSG,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Encoding

/// Appends little-endian fields to a buffer.
#[derive(Default)]
pub struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }
    fn bool(&mut self, v: bool) {
        self.buf.push(v as u8);
    }
    fn u16(&mut self, v: u16) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    fn i32(&mut self, v: i32) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    fn i64(&mut self, v: i64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    fn bytes(&mut self, v: &[u8]) {
        self.u32(v.len() as u32);
        self.buf.extend_from_slice(v);
    }
    fn handle(&mut self, h: Handle) {
        self.u64(h.0);
    }
    fn target(&mut self, t: &Target) {
        self.handle(t.dir);
        self.bytes(&t.path);
        self.bool(t.follow);
    }
    fn owner(&mut self, o: Owner) {
        self.u32(o.uid);
        self.u32(o.gid);
    }
    fn time(&mut self, t: Timespec) {
        self.i64(t.sec);
        self.u32(t.nsec);
    }
    fn stat(&mut self, s: &Stat) {
        for v in [s.mask, s.mode, s.nlink, s.uid, s.gid, s.blksize] {
            self.u32(v);
        }
        for v in [s.attributes, s.ino, s.size, s.blocks, s.dev, s.rdev] {
            self.u64(v);
        }
        for t in [s.atime, s.btime, s.ctime, s.mtime] {
            self.time(t);
        }
        self.u64(s.mnt_id);
    }
    fn statfs(&mut self, s: &StatFs) {
        for v in [
            s.fs_type, s.bsize, s.blocks, s.bfree, s.bavail, s.files, s.ffree, s.namelen, s.frsize,
            s.flags,
        ] {
            self.u64(v);
        }
    }
    fn finish(mut self, id: u16, aux: u16) -> Vec<u8> {
        let body_len = (self.buf.len() - HEADER_LEN) as u32;
        self.buf[0..4].copy_from_slice(&body_len.to_le_bytes());
        self.buf[4..6].copy_from_slice(&id.to_le_bytes());
        self.buf[6..8].copy_from_slice(&aux.to_le_bytes());
        self.buf
    }
    fn with_header() -> Writer {
        Writer {
            buf: vec![0; HEADER_LEN],
        }
    }
}

impl Request {
    pub fn id(&self) -> MsgId {
        match self {
            Request::Hello { .. } => MsgId::Hello,
            Request::Walk { .. } => MsgId::Walk,
            Request::StatAt { .. } => MsgId::StatAt,
            Request::Open { .. } => MsgId::Open,
            Request::Close { .. } => MsgId::Close,
            Request::Readdir { .. } => MsgId::Readdir,
            Request::Readlink { .. } => MsgId::Readlink,
            Request::Mkdir { .. } => MsgId::Mkdir,
            Request::Mknod { .. } => MsgId::Mknod,
            Request::Symlink { .. } => MsgId::Symlink,
            Request::Link { .. } => MsgId::Link,
            Request::Unlink { .. } => MsgId::Unlink,
            Request::Rename { .. } => MsgId::Rename,
            Request::SetAttr { .. } => MsgId::SetAttr,
            Request::GetXattr { .. } => MsgId::GetXattr,
            Request::SetXattr { .. } => MsgId::SetXattr,
            Request::ListXattr { .. } => MsgId::ListXattr,
            Request::RemoveXattr { .. } => MsgId::RemoveXattr,
            Request::StatFs { .. } => MsgId::StatFs,
            Request::DonateDir { .. } => MsgId::DonateDir,
            Request::Stats => MsgId::Stats,
        }
    }

    /// Encode into one packet (header included).
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::with_header();
        match self {
            Request::Hello { version } => w.u32(*version),
            Request::Walk { at }
            | Request::StatAt { at }
            | Request::Readlink { at }
            | Request::StatFs { at }
            | Request::DonateDir { at } => w.target(at),
            Request::Open {
                at,
                flags,
                mode,
                owner,
            } => {
                w.target(at);
                w.u32(*flags);
                w.u32(*mode);
                w.owner(*owner);
            }
            Request::Close { handles } => {
                w.u32(handles.len() as u32);
                handles.iter().for_each(|h| w.handle(*h));
            }
            Request::Readdir {
                at,
                offset,
                max_bytes,
            } => {
                w.target(at);
                w.u64(*offset);
                w.u32(*max_bytes);
            }
            Request::Mkdir { at, mode, owner } => {
                w.target(at);
                w.u32(*mode);
                w.owner(*owner);
            }
            Request::Mknod {
                at,
                mode,
                rdev,
                owner,
            } => {
                w.target(at);
                w.u32(*mode);
                w.u64(*rdev);
                w.owner(*owner);
            }
            Request::Symlink { at, target, owner } => {
                w.target(at);
                w.bytes(target);
                w.owner(*owner);
            }
            Request::Link { old, new } => {
                w.target(old);
                w.target(new);
            }
            Request::Unlink { at, flags } => {
                w.target(at);
                w.u32(*flags);
            }
            Request::Rename { old, new, flags } => {
                w.target(old);
                w.target(new);
                w.u32(*flags);
            }
            Request::SetAttr { at, attr } => {
                w.target(at);
                w.u32(attr.mask);
                w.u32(attr.mode);
                w.u32(attr.uid);
                w.u32(attr.gid);
                w.u64(attr.size);
                w.time(attr.atime);
                w.time(attr.mtime);
            }
            Request::GetXattr { at, name, size } => {
                w.target(at);
                w.bytes(name);
                w.u32(*size);
            }
            Request::SetXattr {
                at,
                name,
                value,
                flags,
            } => {
                w.target(at);
                w.bytes(name);
                w.bytes(value);
                w.u32(*flags);
            }
            Request::ListXattr { at, size } => {
                w.target(at);
                w.u32(*size);
            }
            Request::RemoveXattr { at, name } => {
                w.target(at);
                w.bytes(name);
            }
            Request::Stats => {}
        }
        w.finish(self.id() as u16, 0)
    }

    /// Decode one packet. Never panics; every malformed input is a `DecodeError`.
    pub fn decode(packet: &[u8]) -> Result<Request, DecodeError> {
        let (id, aux, body) = split_header(packet)?;
        let id = MsgId::from_u16(id).ok_or(DecodeError::UnknownId(id))?;
        if aux != 0 {
            return Err(DecodeError::Reserved(aux));
        }
        let mut r = Reader { buf: body };
        let req = match id {
            MsgId::Hello => Request::Hello {
                version: r.u32("version")?,
            },
            MsgId::Walk => Request::Walk { at: r.target()? },
            MsgId::StatAt => Request::StatAt { at: r.target()? },
            MsgId::Readlink => Request::Readlink { at: r.target()? },
            MsgId::StatFs => Request::StatFs { at: r.target()? },
            MsgId::DonateDir => Request::DonateDir { at: r.target()? },
            MsgId::Open => Request::Open {
                at: r.target()?,
                flags: r.u32("flags")?,
                mode: r.u32("mode")?,
                owner: r.owner()?,
            },
            MsgId::Close => {
                let n = r.count("handles", MAX_HANDLES_PER_CLOSE, 8)?;
                let handles = (0..n).map(|_| r.handle()).collect::<Result<Vec<_>, _>>()?;
                Request::Close { handles }
            }
            MsgId::Readdir => Request::Readdir {
                at: r.target()?,
                offset: r.u64("offset")?,
                max_bytes: r.u32("max_bytes")?,
            },
            MsgId::Mkdir => Request::Mkdir {
                at: r.target()?,
                mode: r.u32("mode")?,
                owner: r.owner()?,
            },
            MsgId::Mknod => Request::Mknod {
                at: r.target()?,
                mode: r.u32("mode")?,
                rdev: r.u64("rdev")?,
                owner: r.owner()?,
            },
            MsgId::Symlink => Request::Symlink {
                at: r.target()?,
                target: r.cstr_bytes("symlink target", MAX_PATH)?,
                owner: r.owner()?,
            },
            MsgId::Link => Request::Link {
                old: r.target()?,
                new: r.target()?,
            },
            MsgId::Unlink => Request::Unlink {
                at: r.target()?,
                flags: r.u32("flags")?,
            },
            MsgId::Rename => Request::Rename {
                old: r.target()?,
                new: r.target()?,
                flags: r.u32("flags")?,
            },
            MsgId::SetAttr => Request::SetAttr {
                at: r.target()?,
                attr: SetAttr {
                    mask: r.u32("mask")?,
                    mode: r.u32("mode")?,
                    uid: r.u32("uid")?,
                    gid: r.u32("gid")?,
                    size: r.u64("size")?,
                    atime: r.time()?,
                    mtime: r.time()?,
                },
            },
            MsgId::GetXattr => Request::GetXattr {
                at: r.target()?,
                name: r.cstr_bytes("xattr name", MAX_NAME)?,
                size: r.u32("size")?,
            },
            MsgId::SetXattr => Request::SetXattr {
                at: r.target()?,
                name: r.cstr_bytes("xattr name", MAX_NAME)?,
                value: r.bytes("xattr value", MAX_XATTR_VALUE)?,
                flags: r.u32("flags")?,
            },
            MsgId::ListXattr => Request::ListXattr {
                at: r.target()?,
                size: r.u32("size")?,
            },
            MsgId::RemoveXattr => Request::RemoveXattr {
                at: r.target()?,
                name: r.cstr_bytes("xattr name", MAX_NAME)?,
            },
            MsgId::Stats => Request::Stats,
        };
        r.end()?;
        Ok(req)
    }
}

impl Reply {
    /// Encode into one packet; the header's aux field carries `fd_count()`.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::with_header();
        match self {
            Reply::Error { errno } => w.i32(*errno),
            Reply::Ok => {}
            Reply::Hello {
                version,
                max_message,
                supported,
                root,
                root_stat,
            } => {
                w.u32(*version);
                w.u32(*max_message);
                w.u32(supported.len() as u32);
                supported.iter().for_each(|s| w.u16(*s));
                w.handle(*root);
                w.stat(root_stat);
            }
            Reply::Walked { handle, stat } => {
                w.handle(*handle);
                w.stat(stat);
            }
            Reply::Stat(s) | Reply::Opened { stat: s } => w.stat(s),
            Reply::Dirents { entries, eof } => {
                w.u32(entries.len() as u32);
                for e in entries {
                    w.u64(e.ino);
                    w.u64(e.next_offset);
                    w.u8(e.kind);
                    w.bytes(&e.name);
                }
                w.bool(*eof);
            }
            Reply::Bytes(b) => w.bytes(b),
            Reply::Size(n) => w.u64(*n),
            Reply::StatFs(s) => w.statfs(s),
            Reply::Stats(v) => {
                w.u32(v.len() as u32);
                for (id, n) in v {
                    w.u16(*id);
                    w.u64(*n);
                }
            }
        }
        w.finish(self.id() as u16, self.fd_count() as u16)
    }

    /// Decode one packet; returns the reply and the number of fds its header announces.
    pub fn decode(packet: &[u8]) -> Result<(Reply, usize), DecodeError> {
        let (id, aux, body) = split_header(packet)?;
        let mut r = Reader { buf: body };
        let reply = match id {
            x if x == ReplyId::Error as u16 => Reply::Error {
                errno: r.i32("errno")?,
            },
            x if x == ReplyId::Ok as u16 => Reply::Ok,
            x if x == ReplyId::Hello as u16 => {
                let version = r.u32("version")?;
                let max_message = r.u32("max_message")?;
                let n = r.count("supported", 4096, 2)?;
                let supported = (0..n)
                    .map(|_| r.u16("supported"))
                    .collect::<Result<Vec<_>, _>>()?;
                Reply::Hello {
                    version,
                    max_message,
                    supported,
                    root: r.handle()?,
                    root_stat: r.stat()?,
                }
            }
            x if x == ReplyId::Walked as u16 => Reply::Walked {
                handle: r.handle()?,
                stat: r.stat()?,
            },
            x if x == ReplyId::Stat as u16 => Reply::Stat(r.stat()?),
            x if x == ReplyId::Opened as u16 => Reply::Opened { stat: r.stat()? },
            x if x == ReplyId::Dirents as u16 => {
                let n = r.count("dirents", MAX_MESSAGE / 21, 21)?;
                let mut entries = Vec::with_capacity(n);
                for _ in 0..n {
                    entries.push(Dirent {
                        ino: r.u64("ino")?,
                        next_offset: r.u64("offset")?,
                        kind: r.u8("kind")?,
                        name: r.bytes("name", MAX_NAME)?,
                    });
                }
                Reply::Dirents {
                    entries,
                    eof: r.bool()?,
                }
            }
            x if x == ReplyId::Bytes as u16 => Reply::Bytes(r.bytes("bytes", MAX_MESSAGE)?),
            x if x == ReplyId::Size as u16 => Reply::Size(r.u64("size")?),
            x if x == ReplyId::StatFs as u16 => Reply::StatFs(r.statfs()?),
            x if x == ReplyId::Stats as u16 => {
                let n = r.count("stats", 4096, 10)?;
                let v = (0..n)
                    .map(|_| Ok((r.u16("id")?, r.u64("count")?)))
                    .collect::<Result<Vec<_>, DecodeError>>()?;
                Reply::Stats(v)
            }
            other => return Err(DecodeError::UnknownId(other)),
        };
        r.end()?;
        if aux as usize != reply.fd_count() {
            return Err(DecodeError::Reserved(aux));
        }
        Ok((reply, aux as usize))
    }
}

fn split_header(packet: &[u8]) -> Result<(u16, u16, &[u8]), DecodeError> {
    if packet.len() > MAX_MESSAGE {
        return Err(DecodeError::TooLarge(packet.len()));
    }
    if packet.len() < HEADER_LEN {
        return Err(DecodeError::ShortHeader(HEADER_LEN));
    }
    let declared = u32::from_le_bytes([packet[0], packet[1], packet[2], packet[3]]) as usize;
    let body = &packet[HEADER_LEN..];
    if declared != body.len() {
        return Err(DecodeError::LengthMismatch {
            declared,
            actual: body.len(),
        });
    }
    let id = u16::from_le_bytes([packet[4], packet[5]]);
    let aux = u16::from_le_bytes([packet[6], packet[7]]);
    Ok((id, aux, body))
}

/// Bounds-checked reader over a message body.
struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], DecodeError> {
        if self.buf.len() < n {
            return Err(DecodeError::Truncated(what));
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }
    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], DecodeError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N, what)?);
        Ok(a)
    }
    fn u8(&mut self, what: &'static str) -> Result<u8, DecodeError> {
        Ok(self.take(1, what)?[0])
    }
    fn bool(&mut self) -> Result<bool, DecodeError> {
        match self.u8("bool")? {
            0 => Ok(false),
            1 => Ok(true),
            b => Err(DecodeError::BadBool(b)),
        }
    }
    fn u16(&mut self, what: &'static str) -> Result<u16, DecodeError> {
        Ok(u16::from_le_bytes(self.array(what)?))
    }
    fn u32(&mut self, what: &'static str) -> Result<u32, DecodeError> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }
    fn i32(&mut self, what: &'static str) -> Result<i32, DecodeError> {
        Ok(i32::from_le_bytes(self.array(what)?))
    }
    fn u64(&mut self, what: &'static str) -> Result<u64, DecodeError> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }
    fn i64(&mut self, what: &'static str) -> Result<i64, DecodeError> {
        Ok(i64::from_le_bytes(self.array(what)?))
    }
    /// A list count, checked against a cap and against the bytes left (each item takes at
    /// least `min_item` bytes), so the caller can allocate `count` items safely.
    fn count(
        &mut self,
        field: &'static str,
        max: usize,
        min_item: usize,
    ) -> Result<usize, DecodeError> {
        let n = self.u32(field)? as usize;
        if n > max {
            return Err(DecodeError::FieldTooLong { field, len: n, max });
        }
        if n.saturating_mul(min_item) > self.buf.len() {
            return Err(DecodeError::Truncated(field));
        }
        Ok(n)
    }
    fn bytes(&mut self, field: &'static str, max: usize) -> Result<Vec<u8>, DecodeError> {
        let n = self.u32(field)? as usize;
        if n > max {
            return Err(DecodeError::FieldTooLong { field, len: n, max });
        }
        Ok(self.take(n, field)?.to_vec())
    }
    /// Bytes that will be handed to the kernel as a C string: no NUL inside.
    fn cstr_bytes(&mut self, field: &'static str, max: usize) -> Result<Vec<u8>, DecodeError> {
        let b = self.bytes(field, max)?;
        if b.contains(&0) {
            return Err(DecodeError::Nul(field));
        }
        Ok(b)
    }
    fn handle(&mut self) -> Result<Handle, DecodeError> {
        Ok(Handle(self.u64("handle")?))
    }
    fn target(&mut self) -> Result<Target, DecodeError> {
        Ok(Target {
            dir: self.handle()?,
            path: self.cstr_bytes("path", MAX_PATH)?,
            follow: self.bool()?,
        })
    }
    fn owner(&mut self) -> Result<Owner, DecodeError> {
        Ok(Owner {
            uid: self.u32("uid")?,
            gid: self.u32("gid")?,
        })
    }
    fn time(&mut self) -> Result<Timespec, DecodeError> {
        Ok(Timespec {
            sec: self.i64("time")?,
            nsec: self.u32("time")?,
        })
    }
    fn stat(&mut self) -> Result<Stat, DecodeError> {
        let mut s = Stat {
            mask: self.u32("stat")?,
            mode: self.u32("stat")?,
            nlink: self.u32("stat")?,
            uid: self.u32("stat")?,
            gid: self.u32("stat")?,
            blksize: self.u32("stat")?,
            ..Stat::default()
        };
        s.attributes = self.u64("stat")?;
        s.ino = self.u64("stat")?;
        s.size = self.u64("stat")?;
        s.blocks = self.u64("stat")?;
        s.dev = self.u64("stat")?;
        s.rdev = self.u64("stat")?;
        s.atime = self.time()?;
        s.btime = self.time()?;
        s.ctime = self.time()?;
        s.mtime = self.time()?;
        s.mnt_id = self.u64("stat")?;
        Ok(s)
    }
    fn statfs(&mut self) -> Result<StatFs, DecodeError> {
        Ok(StatFs {
            fs_type: self.u64("statfs")?,
            bsize: self.u64("statfs")?,
            blocks: self.u64("statfs")?,
            bfree: self.u64("statfs")?,
            bavail: self.u64("statfs")?,
            files: self.u64("statfs")?,
            ffree: self.u64("statfs")?,
            namelen: self.u64("statfs")?,
            frsize: self.u64("statfs")?,
            flags: self.u64("statfs")?,
        })
    }
    fn end(&self) -> Result<(), DecodeError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::TrailingBytes(self.buf.len()))
        }
    }
}

impl fmt::Display for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "h{}", self.0)
    }
}

/// One value of every request, in id order: the unit-test corpus, the fuzz seeds
/// (`cargo run -p mantle-gofer --example fuzz_seeds`), and a handy list for a client's tests.
pub fn samples() -> Vec<Request> {
    let t = |p: &str| Target::new(Handle(7), p);
    let o = Owner { uid: 1, gid: 2 };
    vec![
        Request::Hello { version: 1 },
        Request::Walk { at: t("/a/b") },
        Request::StatAt {
            at: Target::nofollow(Handle::ROOT, "x"),
        },
        Request::Open {
            at: t("f"),
            flags: 0o1102,
            mode: 0o644,
            owner: o,
        },
        Request::Close {
            handles: vec![Handle(2), Handle(3)],
        },
        Request::Readdir {
            at: t("d"),
            offset: 99,
            max_bytes: 4096,
        },
        Request::Readlink { at: t("l") },
        Request::Mkdir {
            at: t("d"),
            mode: 0o755,
            owner: o,
        },
        Request::Mknod {
            at: t("p"),
            mode: libc::S_IFIFO | 0o600,
            rdev: 0,
            owner: o,
        },
        Request::Symlink {
            at: t("s"),
            target: b"/etc".to_vec(),
            owner: o,
        },
        Request::Link {
            old: t("a"),
            new: t("b"),
        },
        Request::Unlink {
            at: t("a"),
            flags: libc::AT_REMOVEDIR as u32,
        },
        Request::Rename {
            old: t("a"),
            new: t("b"),
            flags: libc::RENAME_EXCHANGE,
        },
        Request::SetAttr {
            at: t("a"),
            attr: SetAttr {
                mask: setattr::ALL,
                mode: 0o600,
                uid: 3,
                gid: 4,
                size: 5,
                atime: Timespec { sec: -6, nsec: 7 },
                mtime: Timespec { sec: 8, nsec: 9 },
            },
        },
        Request::GetXattr {
            at: t("a"),
            name: b"user.x".to_vec(),
            size: 10,
        },
        Request::SetXattr {
            at: t("a"),
            name: b"user.x".to_vec(),
            value: vec![0, 1, 2],
            flags: 1,
        },
        Request::ListXattr {
            at: t("a"),
            size: 0,
        },
        Request::RemoveXattr {
            at: t("a"),
            name: b"user.x".to_vec(),
        },
        Request::StatFs { at: t("") },
        Request::DonateDir { at: t("d") },
        Request::Stats,
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(p: &str) -> Target {
        Target::new(Handle(7), p)
    }

    fn all_requests() -> Vec<Request> {
        samples()
    }

    fn all_replies() -> Vec<Reply> {
        let st = Stat {
            mode: libc::S_IFREG | 0o644,
            ino: 42,
            size: 7,
            ..Default::default()
        };
        vec![
            Reply::Error {
                errno: libc::ENOENT,
            },
            Reply::Ok,
            Reply::Hello {
                version: 1,
                max_message: 4096,
                supported: vec![1, 2, 3],
                root: Handle::ROOT,
                root_stat: st,
            },
            Reply::Walked {
                handle: Handle(9),
                stat: st,
            },
            Reply::Stat(st),
            Reply::Opened { stat: st },
            Reply::Dirents {
                entries: vec![Dirent {
                    ino: 1,
                    next_offset: 2,
                    kind: 4,
                    name: b"x".to_vec(),
                }],
                eof: false,
            },
            Reply::Bytes(b"abc".to_vec()),
            Reply::Size(77),
            Reply::StatFs(StatFs {
                fs_type: 0x01021994,
                bsize: 4096,
                ..Default::default()
            }),
            Reply::Stats(vec![(0, 1), (2, 3)]),
        ]
    }

    #[test]
    fn every_request_round_trips() {
        let reqs = all_requests();
        assert_eq!(
            reqs.len(),
            MsgId::ALL.len(),
            "one corpus entry per message id"
        );
        for r in reqs {
            let bytes = r.encode();
            assert_eq!(Request::decode(&bytes).unwrap(), r);
            assert_eq!(u16::from_le_bytes([bytes[4], bytes[5]]), r.id() as u16);
        }
    }

    #[test]
    fn every_reply_round_trips() {
        for r in all_replies() {
            let (back, nfds) = Reply::decode(&r.encode()).unwrap();
            assert_eq!(back, r);
            assert_eq!(nfds, r.fd_count());
        }
    }

    #[test]
    fn message_ids_are_stable() {
        // Append-only: these numbers are the wire format.
        assert_eq!(MsgId::Hello as u16, 1);
        assert_eq!(MsgId::Open as u16, 4);
        assert_eq!(MsgId::Stats as u16, 21);
        for (i, m) in MsgId::ALL.iter().enumerate() {
            assert_eq!(*m as usize, i + 1);
            assert_eq!(MsgId::from_u16(*m as u16), Some(*m));
        }
        assert_eq!(MsgId::from_u16(0), None);
        assert_eq!(MsgId::from_u16(22), None);
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        for r in all_requests() {
            let bytes = r.encode();
            for cut in 0..bytes.len() {
                let mut p = bytes[..cut].to_vec();
                if p.len() >= HEADER_LEN {
                    // Fix the length so the body decoder (not the framing check) sees it.
                    let n = (p.len() - HEADER_LEN) as u32;
                    p[0..4].copy_from_slice(&n.to_le_bytes());
                }
                assert!(Request::decode(&p).is_err(), "{r:?} cut at {cut}");
            }
        }
    }

    #[test]
    fn nul_in_paths_and_names_is_refused() {
        let r = Request::StatAt { at: t("a\0b") }.encode();
        assert_eq!(Request::decode(&r), Err(DecodeError::Nul("path")));
        let r = Request::GetXattr {
            at: t("a"),
            name: b"x\0".to_vec(),
            size: 1,
        }
        .encode();
        assert_eq!(Request::decode(&r).unwrap_err().errno(), libc::EINVAL);
    }

    /// Randomized mutation of valid packets (runs in `cargo test`; the cargo-fuzz target in
    /// gofer/fuzz does the same at scale).
    #[test]
    fn random_mutations_never_panic() {
        let corpus: Vec<Vec<u8>> = all_requests().iter().map(|r| r.encode()).collect();
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut decoded = 0;
        for i in 0..200_000 {
            let mut p = corpus[i % corpus.len()].clone();
            for _ in 0..(next() % 4 + 1) {
                let r = next();
                let len = p.len();
                match r % 5 {
                    0 if len > 0 => p[(r >> 8) as usize % len] = (r >> 32) as u8,
                    1 => p.push((r >> 8) as u8),
                    2 if len > 0 => {
                        p.truncate((r >> 8) as usize % len);
                    }
                    3 if len >= 12 => {
                        // Plant a large length somewhere.
                        let at = (r >> 8) as usize % (len - 4);
                        p[at..at + 4].copy_from_slice(&((r >> 32) as u32).to_le_bytes());
                    }
                    _ => {}
                }
            }
            if let Ok(req) = Request::decode(&p) {
                decoded += 1;
                // Whatever decodes must encode back to something that decodes the same.
                assert_eq!(Request::decode(&req.encode()).unwrap(), req);
            }
            let _ = Reply::decode(&p);
        }
        assert!(decoded > 0, "mutations never produced a valid packet");
    }
}
