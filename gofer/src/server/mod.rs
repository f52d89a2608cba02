//! The gofer server: a handle table over an O_PATH fd per handle, confined resolution
//! (`resolve`), the masked/read-only policy, and the request loop.
//!
//! One thread, one request at a time: the protocol is strictly request/reply, and a single
//! thread keeps the per-thread state the kernel keeps (none today, but fsuid would be) simple.
//! The loop ends when the peer closes its end of the socket.

mod mask;
mod ops;
pub mod resolve;

use std::collections::HashMap;
use std::ffi::CString;
use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::time::Instant;

use crate::protocol::{Handle, MsgId, Reply, Request, MAX_MESSAGE};
use crate::{sys, wire, Error};
use resolve::{Kind, Node, Policy, Walker};

pub use mask::Sources as MaskSources;

/// Most handles a client may hold at once (each is an open fd in the gofer).
pub const MAX_HANDLES: usize = 8192;

/// A device the gofer may open (`kind` is `'c'` or `'b'`; `None` matches any number).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceRule {
    pub kind: char,
    pub major: Option<u32>,
    pub minor: Option<u32>,
}

impl DeviceRule {
    pub const fn char(major: u32, minor: Option<u32>) -> DeviceRule {
        DeviceRule {
            kind: 'c',
            major: Some(major),
            minor,
        }
    }
}

/// The character devices every OCI container gets (null, zero, full, random, urandom, tty,
/// console, ptmx, pts/*).
pub fn default_devices() -> Vec<DeviceRule> {
    vec![
        DeviceRule::char(1, Some(3)),
        DeviceRule::char(1, Some(5)),
        DeviceRule::char(1, Some(7)),
        DeviceRule::char(1, Some(8)),
        DeviceRule::char(1, Some(9)),
        DeviceRule::char(5, Some(0)),
        DeviceRule::char(5, Some(1)),
        DeviceRule::char(5, Some(2)),
        DeviceRule::char(136, None),
    ]
}

/// How the gofer serves one container.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// The whole root is read-only (OCI `root.readonly`): every write gets EROFS.
    pub read_only: bool,
    /// OCI `linux.readonlyPaths`: these and everything beneath are read-only.
    pub readonly_paths: Vec<String>,
    /// OCI `linux.maskedPaths`: files look like /dev/null, directories like an empty
    /// read-only directory.
    pub masked_paths: Vec<String>,
    /// Log every request on one line (to stderr unless `Server::with_log` gave a writer).
    pub debug: bool,
    /// Allow `DonateDir` (directfs). Off by default; see README "Directory donation".
    pub allow_donate: bool,
    /// Device nodes the gofer will open. Opening any other character or block device fails
    /// with EPERM, so a device node planted in the rootfs cannot reach host hardware.
    pub allowed_devices: Vec<DeviceRule>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            read_only: false,
            readonly_paths: Vec::new(),
            masked_paths: Vec::new(),
            debug: false,
            allow_donate: false,
            allowed_devices: default_devices(),
        }
    }
}

/// Requests counted by message id.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    counts: HashMap<u16, u64>,
}

impl Stats {
    /// How many requests of this kind were received.
    pub fn get(&self, id: MsgId) -> u64 {
        self.counts.get(&(id as u16)).copied().unwrap_or(0)
    }
    /// How many packets could not be decoded.
    pub fn undecodable(&self) -> u64 {
        self.counts.get(&0).copied().unwrap_or(0)
    }
    /// All requests received.
    pub fn total(&self) -> u64 {
        self.counts.values().sum()
    }
    /// (id, count) pairs sorted by id (id 0 = undecodable).
    pub fn snapshot(&self) -> Vec<(u16, u64)> {
        let mut v: Vec<_> = self.counts.iter().map(|(k, v)| (*k, *v)).collect();
        v.sort();
        v
    }
    fn bump(&mut self, id: u16) {
        *self.counts.entry(id).or_default() += 1;
    }
}

/// A gofer serving one container root.
pub struct Server {
    root: Node,
    policy: Policy,
    handles: HashMap<u64, Node>,
    next_handle: u64,
    cfg: ServerConfig,
    masks: std::sync::Arc<mask::Sources>,
    stats: Stats,
    log: Option<Box<dyn Write + Send>>,
    seq: u64,
}

/// Serve `root` over `sock` until the peer closes it.
pub fn serve(sock: OwnedFd, root: OwnedFd, cfg: &ServerConfig) -> Result<(), Error> {
    Server::new(root, cfg)?.run(sock)
}

/// Open what masked paths are shown as (/dev/null, an empty read-only tmpfs). Called by
/// `confine` before it drops the rights to do so; `Server::new` calls it too.
pub fn prepare_mask_sources() -> std::sync::Arc<MaskSources> {
    mask::sources()
}

impl Server {
    /// Prepare to serve `root` (a directory fd); resolves the read-only and masked paths.
    pub fn new(root: OwnedFd, cfg: &ServerConfig) -> Result<Server, Error> {
        let stat = sys::fstat(root.as_fd()).map_err(Error::io("stat of the root fd"))?;
        if !stat.is_dir() {
            return Err(Error::Io {
                context: "root fd",
                source: std::io::Error::from_raw_os_error(libc::ENOTDIR),
            });
        }
        let root = Node {
            fd: root,
            path: Vec::new(),
            stat,
            prot: Default::default(),
        };
        let policy = build_policy(&root, cfg);
        let root = Node {
            prot: policy.root_prot,
            ..root
        };
        let log: Option<Box<dyn Write + Send>> = if cfg.debug {
            Some(Box::new(std::io::stderr()))
        } else {
            None
        };
        Ok(Server {
            root,
            policy,
            handles: HashMap::new(),
            next_handle: Handle::ROOT.0 + 1,
            cfg: cfg.clone(),
            masks: mask::sources(),
            stats: Stats::default(),
            log,
            seq: 0,
        })
    }

    /// Log requests to `w` (one line each) instead of stderr; turns logging on.
    pub fn with_log(mut self, w: Box<dyn Write + Send>) -> Server {
        self.log = Some(w);
        self
    }

    /// Counters of requests received so far.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Number of live handles (root excluded): lets tests check nothing leaks.
    pub fn handle_count(&self) -> usize {
        self.handles.len()
    }

    /// Answer requests on `sock` until the peer closes it.
    pub fn run(&mut self, sock: OwnedFd) -> Result<(), Error> {
        let mut buf = vec![0u8; MAX_MESSAGE];
        loop {
            let pkt = match wire::recv(sock.as_fd(), &mut buf) {
                Ok(Some(p)) => p,
                Ok(None) => return Ok(()),
                Err(e) if e.raw_os_error() == Some(libc::ECONNRESET) => return Ok(()),
                Err(e) => return Err(Error::io("receive request")(e)),
            };
            let (reply, fd) = if !pkt.fds.is_empty() || pkt.fds_truncated {
                // Requests never carry fds: refuse, and close whatever arrived (dropping
                // `pkt.fds` closes them) so a hostile peer cannot fill our fd table.
                self.reject("request with fds", libc::EBADMSG)
            } else if pkt.truncated {
                self.reject("oversized request", libc::EMSGSIZE)
            } else {
                self.handle_packet(&buf[..pkt.len])
            };
            drop(pkt.fds);
            let bytes = reply.encode();
            let sent = match &fd {
                Some(f) => wire::send(sock.as_fd(), &bytes, &[f.as_fd()]),
                None => wire::send(sock.as_fd(), &bytes, &[]),
            };
            match sent {
                Ok(()) => {}
                Err(e) if matches!(e.raw_os_error(), Some(libc::EPIPE | libc::ECONNRESET)) => {
                    return Ok(())
                }
                Err(e) => return Err(Error::io("send reply")(e)),
            }
        }
    }

    fn reject(&mut self, what: &str, errno: i32) -> (Reply, Option<OwnedFd>) {
        self.stats.bump(0);
        self.log_line(what, &Reply::Error { errno }, None);
        (Reply::Error { errno }, None)
    }

    /// Decode and answer one packet. Never panics; every failure is an error reply.
    pub fn handle_packet(&mut self, packet: &[u8]) -> (Reply, Option<OwnedFd>) {
        let start = Instant::now();
        match Request::decode(packet) {
            Err(e) => {
                let errno = e.errno();
                self.stats.bump(0);
                self.log_line(&format!("undecodable ({e})"), &Reply::Error { errno }, None);
                (Reply::Error { errno }, None)
            }
            Ok(req) => {
                self.stats.bump(req.id() as u16);
                let (reply, fd) = self.dispatch(&req);
                if self.log.is_some() {
                    self.log_line(&describe(&req), &reply, Some(start));
                }
                (reply, fd)
            }
        }
    }

    fn log_line(&mut self, what: &str, reply: &Reply, start: Option<Instant>) {
        self.seq += 1;
        let Some(log) = self.log.as_mut() else {
            return;
        };
        let outcome = match reply {
            Reply::Error { errno } => {
                format!("error {}", std::io::Error::from_raw_os_error(*errno))
            }
            Reply::Walked { handle, .. } => format!("ok {handle}"),
            r => format!("ok {:?}", r.id()),
        };
        let us = start.map(|s| s.elapsed().as_micros()).unwrap_or(0);
        // A failing log writer must not stop the gofer.
        let _ = writeln!(log, "gofer: #{} {what} -> {outcome} ({us}us)", self.seq);
    }

    fn dispatch(&mut self, req: &Request) -> (Reply, Option<OwnedFd>) {
        match req {
            Request::Close { handles } => (self.close(handles), None),
            Request::Stats => (Reply::Stats(self.stats.snapshot()), None),
            _ => {
                let fs = ops::Fs {
                    root: &self.root,
                    policy: &self.policy,
                    handles: &self.handles,
                    cfg: &self.cfg,
                    masks: &self.masks,
                };
                match fs.handle(req) {
                    Err(errno) => (Reply::Error { errno }, None),
                    Ok(ops::Out::Reply(r)) => (r, None),
                    Ok(ops::Out::WithFd(r, fd)) => (r, Some(fd)),
                    Ok(ops::Out::NewHandle(node, stat)) => (self.insert(node, stat), None),
                }
            }
        }
    }

    fn insert(&mut self, node: Node, stat: crate::protocol::Stat) -> Reply {
        if self.handles.len() >= MAX_HANDLES {
            return Reply::Error {
                errno: libc::EMFILE,
            };
        }
        let h = Handle(self.next_handle);
        self.next_handle += 1;
        self.handles.insert(h.0, node);
        Reply::Walked { handle: h, stat }
    }

    fn close(&mut self, handles: &[Handle]) -> Reply {
        let mut bad = false;
        for h in handles {
            if *h == Handle::ROOT || self.handles.remove(&h.0).is_none() {
                bad = true;
            }
        }
        if bad {
            Reply::Error { errno: libc::EBADF }
        } else {
            Reply::Ok
        }
    }
}

/// Resolve the configured read-only and masked paths to identities. Paths that do not exist
/// are skipped (as OCI runtimes do); a masked path also listed read-only stays masked.
fn build_policy(root: &Node, cfg: &ServerConfig) -> Policy {
    let mut policy = Policy::default();
    let lists = [
        (Kind::ReadOnly, &cfg.readonly_paths),
        (Kind::Masked, &cfg.masked_paths),
    ];
    for (kind, paths) in lists {
        for p in paths {
            let Ok(mut w) = Walker::new(root, &policy, root, p.as_bytes()) else {
                continue;
            };
            if w.resolve(true).is_err() {
                continue;
            }
            let at_root = w.at_root();
            let Ok(node) = w.into_node() else { continue };
            if at_root && kind == Kind::ReadOnly {
                policy.root_prot.ro = true;
            }
            let path = node.path.iter().map(|c| c.name.clone()).collect();
            policy.protect(kind, &node.stat, path);
        }
    }
    policy
}

fn lossy(b: &[u8]) -> String {
    let s = String::from_utf8_lossy(b);
    if s.len() > 200 {
        format!("{:?}...", &s[..s.floor_char_boundary(200)])
    } else {
        format!("{s:?}")
    }
}

fn target(t: &crate::protocol::Target) -> String {
    format!(
        "{}:{}{}",
        t.dir,
        lossy(&t.path),
        if t.follow { "" } else { " nofollow" }
    )
}

/// One-line description of a request for the debug log.
fn describe(req: &Request) -> String {
    let name = req.id().name();
    match req {
        Request::Hello { version } => format!("{name} v{version}"),
        Request::Walk { at }
        | Request::StatAt { at }
        | Request::Readlink { at }
        | Request::StatFs { at }
        | Request::DonateDir { at }
        | Request::ListXattr { at, .. } => format!("{name} {}", target(at)),
        Request::Open { at, flags, .. } => format!("{name} {} flags={flags:#o}", target(at)),
        Request::Close { handles } => format!("{name} {} handles", handles.len()),
        Request::Readdir { at, offset, .. } => format!("{name} {} off={offset}", target(at)),
        Request::Mkdir { at, mode, .. } | Request::Mknod { at, mode, .. } => {
            format!("{name} {} mode={mode:#o}", target(at))
        }
        Request::Symlink { at, target: t, .. } => {
            format!("{name} {} -> {}", target(at), lossy(t))
        }
        Request::Link { old, new } => format!("{name} {} {}", target(old), target(new)),
        Request::Rename { old, new, flags } => {
            format!("{name} {} {} flags={flags:#x}", target(old), target(new))
        }
        Request::Unlink { at, flags } => format!("{name} {} flags={flags:#x}", target(at)),
        Request::SetAttr { at, attr } => format!("{name} {} mask={:#x}", target(at), attr.mask),
        Request::GetXattr { at, name: n, .. }
        | Request::SetXattr { at, name: n, .. }
        | Request::RemoveXattr { at, name: n } => format!("{name} {} {}", target(at), lossy(n)),
        Request::Stats => name.to_string(),
    }
}

/// Convert bytes known to hold no NUL (the decoder checks) into a C string.
pub(crate) fn cstring(b: &[u8]) -> Result<CString, i32> {
    CString::new(b).map_err(|_| libc::EINVAL)
}
