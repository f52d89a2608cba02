//! Confined path resolution.
//!
//! Threat: the workload controls every byte of the container rootfs and every path it asks
//! for, and it can change the tree while we walk it (swap a directory for a symlink, rename
//! directories). Nothing it does may make the gofer open anything outside the container root.
//!
//! Defence: the kernel never resolves more than one component for us. Each step is
//! `openat2(dir, "name", O_PATH|O_NOFOLLOW, RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS|
//! RESOLVE_NO_MAGICLINKS)` where `name` is a single component that is neither `.` nor `..`
//! and contains no `/`: it can only name a child of `dir` (crossing a mount point is fine).
//! `..` is never given to the kernel: we pop our own stack of directories, whose bottom is
//! the root fd, so `..` at the root stays at the root. Symlinks are read with `readlinkat` on
//! the O_PATH fd of the very inode we opened (no re-lookup, so no swap window) and their
//! content is spliced into the remaining path; absolute targets restart from the root fd.
//! Magic links (`/proc/self/root`, `/proc/<pid>/fd/N`) are never followed as magic links:
//! their `readlink` text is resolved like any symlink, beneath the root.
//!
//! Re-opening an ancestor of a handle (for `..` from a handle) uses
//! `openat2(root, "a/b/c", O_PATH|O_DIRECTORY, RESOLVE_IN_ROOT|RESOLVE_NO_SYMLINKS|
//! RESOLVE_NO_MAGICLINKS)` on the canonical path we recorded: it either finds a real
//! directory beneath the root or fails.
//!
//! Every directory visited is checked against the protected identities (read-only and masked
//! paths, by device and inode, so renames cannot shake them off).

use std::collections::{HashMap, VecDeque};
use std::ffi::CString;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use crate::protocol::{Stat, MAX_NAME};
use crate::sys;

/// Linux MAXSYMLINKS.
const MAX_SYMLINKS: u32 = 40;

const STEP_RESOLVE: u64 =
    libc::RESOLVE_BENEATH | libc::RESOLVE_NO_SYMLINKS | libc::RESOLVE_NO_MAGICLINKS;
const REOPEN_RESOLVE: u64 =
    libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_SYMLINKS | libc::RESOLVE_NO_MAGICLINKS;

/// An errno; the resolution layer deals in them because they go straight into replies.
pub type Errno = i32;

pub fn errno(e: io::Error) -> Errno {
    e.raw_os_error().unwrap_or(libc::EIO)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mask {
    /// Looks like /dev/null.
    File,
    /// Looks like an empty read-only directory.
    Dir,
}

/// Protection of one object, inherited down the tree.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Prot {
    /// Beneath a read-only path: no writes (EROFS).
    pub ro: bool,
    /// Is a masked path.
    pub masked: Option<Mask>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    ReadOnly,
    Masked,
}

/// A canonical path from the root, one entry per component.
pub type CanonicalPath = Vec<Vec<u8>>;

/// Protected objects by (device, inode), and by canonical path.
///
/// The two views agree because the gofer never lets a protected path, or a directory above
/// one, be renamed (EBUSY), and removing a non-empty directory is impossible: the recorded
/// paths stay true for as long as the gofer serves (changes made on the host behind the
/// gofer's back are outside this model). The per-component walk checks identities; the fast
/// path, which does not see intermediate directories, checks paths.
#[derive(Default)]
pub struct Policy {
    pub ids: HashMap<(u64, u64), (Kind, CanonicalPath)>,
    pub by_path: HashMap<CanonicalPath, Kind>,
    pub root_prot: Prot,
}

impl Policy {
    /// Protection of an object with attributes `st` under a parent with `parent`.
    pub fn child_prot(&self, parent: Prot, st: &Stat) -> Prot {
        let mut p = Prot {
            ro: parent.ro,
            masked: None,
        };
        match self.ids.get(&(st.dev, st.ino)).map(|v| v.0) {
            Some(Kind::ReadOnly) => p.ro = true,
            Some(Kind::Masked) => {
                p.masked = Some(if st.is_dir() { Mask::Dir } else { Mask::File });
            }
            None => {}
        }
        p
    }

    /// Whether this object is itself a protected path (cannot be renamed, removed or linked,
    /// like a mount point).
    pub fn is_protected(&self, st: &Stat) -> bool {
        self.ids.contains_key(&(st.dev, st.ino))
    }

    /// Whether `path` is a directory above a protected path.
    pub fn is_above_protected(&self, path: &[Vec<u8>]) -> bool {
        self.by_path
            .keys()
            .any(|p| p.len() > path.len() && p[..path.len()] == *path)
    }

    /// Record a protected object.
    pub fn protect(&mut self, kind: Kind, st: &Stat, path: CanonicalPath) {
        self.by_path.insert(path.clone(), kind);
        self.ids.insert((st.dev, st.ino), (kind, path));
    }
}

/// One component of a canonical path.
#[derive(Clone, Debug)]
pub struct Comp {
    pub name: Vec<u8>,
    pub prot: Prot,
}

/// What a handle holds: an O_PATH fd, the canonical path (no `.`, `..` or symlinks) from the
/// root at the time it was resolved, and the object's attributes then.
pub struct Node {
    pub fd: OwnedFd,
    pub path: Vec<Comp>,
    pub stat: Stat,
    pub prot: Prot,
}

enum FrameFd<'a> {
    Borrowed(BorrowedFd<'a>),
    Owned(OwnedFd),
    /// Not opened yet: re-opened from the root by canonical path when needed.
    Lazy,
}

struct Frame<'a> {
    fd: FrameFd<'a>,
    name: Vec<u8>,
    prot: Prot,
    /// None only for lazy ancestors (known to have been directories).
    stat: Option<Stat>,
}

/// What the last component of a path is, once everything before it is resolved.
#[derive(Debug, PartialEq, Eq)]
pub enum Last {
    /// The path names the start itself (empty, `/`, `.`).
    None,
    /// The path ends in `..`.
    DotDot,
    /// A normal name (no `/`, not `.` or `..`, no NUL).
    Name(Vec<u8>),
}

/// A resolution in progress: a stack of directories (bottom = root) and the components left.
pub struct Walker<'a> {
    root: BorrowedFd<'a>,
    policy: &'a Policy,
    stack: Vec<Frame<'a>>,
    queue: VecDeque<Vec<u8>>,
    links: u32,
    /// The path ended in `/`: the result must be a directory.
    pub must_dir: bool,
}

fn split(path: &[u8]) -> impl Iterator<Item = &[u8]> {
    path.split(|b| *b == b'/')
        .filter(|c| !c.is_empty() && *c != b".")
}

impl<'a> Walker<'a> {
    /// Start at `start` (the root node or a handle's node) with `path` to resolve.
    pub fn new(
        root: &'a Node,
        policy: &'a Policy,
        start: &'a Node,
        path: &[u8],
    ) -> Result<Walker<'a>, Errno> {
        if path.len() > libc::PATH_MAX as usize {
            return Err(libc::ENAMETOOLONG);
        }
        if path.contains(&0) {
            return Err(libc::EINVAL);
        }
        let mut w = Walker {
            root: root.fd.as_fd(),
            policy,
            stack: vec![Frame {
                fd: FrameFd::Borrowed(root.fd.as_fd()),
                name: Vec::new(),
                prot: root.prot,
                stat: Some(root.stat),
            }],
            queue: VecDeque::new(),
            links: 0,
            must_dir: path.ends_with(b"/"),
        };
        if !path.starts_with(b"/") && !start.path.is_empty() {
            let n = start.path.len();
            for c in &start.path[..n - 1] {
                w.stack.push(Frame {
                    fd: FrameFd::Lazy,
                    name: c.name.clone(),
                    prot: c.prot,
                    stat: None,
                });
            }
            w.stack.push(Frame {
                fd: FrameFd::Borrowed(start.fd.as_fd()),
                name: start.path[n - 1].name.clone(),
                prot: start.prot,
                stat: Some(start.stat),
            });
        }
        w.queue.extend(split(path).map(|c| c.to_vec()));
        Ok(w)
    }

    fn canonical(&self, upto: usize) -> Vec<u8> {
        let mut p = Vec::new();
        for f in &self.stack[1..upto] {
            if !p.is_empty() {
                p.push(b'/');
            }
            p.extend_from_slice(&f.name);
        }
        p
    }

    /// The fd of stack frame `i`, opening a lazy ancestor from the root if needed.
    fn fd_at(&mut self, i: usize) -> Result<BorrowedFd<'_>, Errno> {
        if let FrameFd::Lazy = self.stack[i].fd {
            let path = CString::new(self.canonical(i + 1)).map_err(|_| libc::EINVAL)?;
            let fd = sys::openat2(
                self.root,
                &path,
                libc::O_PATH | libc::O_DIRECTORY,
                0,
                REOPEN_RESOLVE,
            )
            .map_err(errno)?;
            let st = sys::fstat(fd.as_fd()).map_err(errno)?;
            self.stack[i].stat = Some(st);
            self.stack[i].fd = FrameFd::Owned(fd);
        }
        Ok(match &self.stack[i].fd {
            FrameFd::Borrowed(b) => *b,
            FrameFd::Owned(o) => o.as_fd(),
            FrameFd::Lazy => unreachable!("opened above"),
        })
    }

    /// The directory currently on top (where the next component is looked up).
    pub fn top_fd(&mut self) -> Result<BorrowedFd<'_>, Errno> {
        let i = self.stack.len() - 1;
        self.fd_at(i)
    }

    /// Protection of the top of the stack.
    pub fn top_prot(&self) -> Prot {
        self.stack[self.stack.len() - 1].prot
    }

    /// Attributes of the top of the stack.
    pub fn top_stat(&mut self) -> Result<Stat, Errno> {
        let i = self.stack.len() - 1;
        self.fd_at(i)?;
        Ok(self.stack[i].stat.unwrap_or_default())
    }

    /// The top is the root of the container.
    pub fn at_root(&self) -> bool {
        self.stack.len() == 1
    }

    /// Fd of the parent of the top and the top's name (for link/rename of a resolved object).
    pub fn parent_and_name(&mut self) -> Result<(BorrowedFd<'_>, Vec<u8>), Errno> {
        if self.at_root() {
            return Err(libc::EBUSY);
        }
        let i = self.stack.len() - 2;
        let name = self.stack[i + 1].name.clone();
        Ok((self.fd_at(i)?, name))
    }

    pub fn policy(&self) -> &Policy {
        self.policy
    }

    /// Canonical path of `name` in the top directory.
    pub fn child_path(&self, name: &[u8]) -> CanonicalPath {
        let mut p: CanonicalPath = self.stack[1..].iter().map(|f| f.name.clone()).collect();
        p.push(name.to_vec());
        p
    }

    /// Fast path: resolve the next `n` queued components with a single
    /// `openat2(top, "a/b/c", O_PATH|O_NOFOLLOW, RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS|
    /// RESOLVE_NO_MAGICLINKS)`. Taken only when none of them is `..` (so BENEATH cannot be
    /// hit by design) and the kernel meets no symlink (NO_SYMLINKS fails the call, and we fall
    /// back to the per-component walk, which handles symlinks). Returns false when it did not
    /// apply; the queue is then untouched. Protection of the directories passed is decided by
    /// their canonical paths (see `Policy`), of the result by its identity too.
    fn fast(&mut self, n: usize, last_is_final: bool, follow: bool) -> Result<bool, Errno> {
        if n < 2 || self.queue.iter().take(n).any(|c| c == b"..") {
            return Ok(false);
        }
        if self.top_prot().masked.is_some() {
            return Ok(false);
        }
        let mut joined = Vec::new();
        for c in self.queue.iter().take(n) {
            if c.len() > MAX_NAME {
                return Ok(false);
            }
            if !joined.is_empty() {
                joined.push(b'/');
            }
            joined.extend_from_slice(c);
        }
        let Ok(cpath) = CString::new(joined) else {
            return Ok(false);
        };
        let dir = self.top_fd()?;
        let Ok(fd) = sys::openat2(
            dir,
            &cpath,
            libc::O_PATH | libc::O_NOFOLLOW,
            0,
            STEP_RESOLVE,
        ) else {
            return Ok(false);
        };
        let st = sys::fstat(fd.as_fd()).map_err(errno)?;
        if (st.is_symlink() && (follow || !last_is_final)) || (!last_is_final && !st.is_dir()) {
            return Ok(false);
        }
        let mut path: CanonicalPath = self.stack[1..].iter().map(|f| f.name.clone()).collect();
        let mut prot = self.top_prot();
        let comps: Vec<Vec<u8>> = self.queue.drain(..n).collect();
        let last = comps.len() - 1;
        for (i, c) in comps.into_iter().enumerate() {
            path.push(c.clone());
            if i == last {
                let mut p = self.policy.child_prot(prot, &st);
                p.ro |= self.policy.by_path.get(&path) == Some(&Kind::ReadOnly);
                self.stack.push(Frame {
                    fd: FrameFd::Owned(fd),
                    name: c,
                    prot: p,
                    stat: Some(st),
                });
                break;
            }
            match self.policy.by_path.get(&path) {
                Some(Kind::Masked) => return Err(libc::ENOENT),
                Some(Kind::ReadOnly) => prot.ro = true,
                None => {}
            }
            self.stack.push(Frame {
                fd: FrameFd::Lazy,
                name: c,
                prot,
                stat: None,
            });
        }
        Ok(true)
    }

    fn pop(&mut self) {
        if self.stack.len() > 1 {
            self.stack.pop();
        }
    }

    /// Look up one normal component in the top directory and push it, or splice it if it
    /// is a symlink that must be followed. Returns true when it spliced.
    fn step(&mut self, name: Vec<u8>, last: bool, follow: bool) -> Result<bool, Errno> {
        match self.top_prot().masked {
            // A masked directory looks empty; a masked file looks like /dev/null.
            Some(Mask::Dir) => return Err(libc::ENOENT),
            Some(Mask::File) => return Err(libc::ENOTDIR),
            None => {}
        }
        if !self.top_stat()?.is_dir() {
            return Err(libc::ENOTDIR);
        }
        if name.len() > MAX_NAME {
            return Err(libc::ENAMETOOLONG);
        }
        let cname = CString::new(name.clone()).map_err(|_| libc::EINVAL)?;
        let dir = self.top_fd()?;
        let fd = sys::openat2(
            dir,
            &cname,
            libc::O_PATH | libc::O_NOFOLLOW,
            0,
            STEP_RESOLVE,
        )
        .map_err(errno)?;
        let st = sys::fstat(fd.as_fd()).map_err(errno)?;
        if st.is_symlink() && (!last || follow) {
            self.links += 1;
            if self.links > MAX_SYMLINKS {
                return Err(libc::ELOOP);
            }
            // readlink on the fd we hold: the content of exactly the inode we looked at.
            let target = sys::readlink_fd(fd.as_fd()).map_err(errno)?;
            self.splice(&target)?;
            return Ok(true);
        }
        if !last && !st.is_dir() {
            return Err(libc::ENOTDIR);
        }
        let prot = self.policy.child_prot(self.top_prot(), &st);
        self.stack.push(Frame {
            fd: FrameFd::Owned(fd),
            name,
            prot,
            stat: Some(st),
        });
        Ok(false)
    }

    /// Replace the symlink just met by its target.
    fn splice(&mut self, target: &[u8]) -> Result<(), Errno> {
        if target.is_empty() {
            return Err(libc::ENOENT);
        }
        if target.starts_with(b"/") {
            // Absolute symlink: from the container root, never the host's.
            self.stack.truncate(1);
        }
        if target.ends_with(b"/") && self.queue.is_empty() {
            self.must_dir = true;
        }
        for c in split(target).collect::<Vec<_>>().into_iter().rev() {
            self.queue.push_front(c.to_vec());
        }
        Ok(())
    }

    /// Resolve everything but the last component; the top is then the parent directory.
    pub fn parent(&mut self) -> Result<Last, Errno> {
        let n = self.queue.len().saturating_sub(1);
        self.fast(n, false, true)?;
        while self.queue.len() > 1 {
            let c = self.queue.pop_front().unwrap_or_default();
            if c == b".." {
                self.pop();
            } else {
                self.step(c, false, true)?;
            }
        }
        Ok(match self.queue.pop_front() {
            None => Last::None,
            Some(c) if c == b".." => Last::DotDot,
            Some(c) => Last::Name(c),
        })
    }

    /// Put a last component back after `parent` (to continue with `step` semantics).
    pub fn push_back(&mut self, name: Vec<u8>) {
        self.queue.push_back(name);
    }

    /// After `parent()` returned `Name(n)` and the caller found `n` is a symlink to follow:
    /// read it through `fd` (O_PATH of the link) and continue resolving from its target.
    pub fn follow_link(&mut self, link: BorrowedFd<'_>) -> Result<(), Errno> {
        self.links += 1;
        if self.links > MAX_SYMLINKS {
            return Err(libc::ELOOP);
        }
        let target = sys::readlink_fd(link).map_err(errno)?;
        self.splice(&target)
    }

    /// Resolve the whole path; the top is then the object named.
    pub fn resolve(&mut self, follow: bool) -> Result<(), Errno> {
        let follow = follow || self.must_dir;
        let n = self.queue.len();
        self.fast(n, true, follow)?;
        loop {
            match self.parent()? {
                Last::None => break,
                Last::DotDot => {
                    self.pop();
                    break;
                }
                Last::Name(n) => {
                    if !self.step(n, true, follow)? {
                        break;
                    }
                }
            }
        }
        if self.must_dir && !self.top_stat()?.is_dir() {
            return Err(libc::ENOTDIR);
        }
        Ok(())
    }

    /// Record a child of the top that the caller opened itself (after `parent`).
    pub fn push_child(&mut self, name: Vec<u8>, fd: OwnedFd, st: Stat) {
        let prot = self.policy.child_prot(self.top_prot(), &st);
        self.stack.push(Frame {
            fd: FrameFd::Owned(fd),
            name,
            prot,
            stat: Some(st),
        });
    }

    /// Turn the top of the stack into a handle node.
    pub fn into_node(mut self) -> Result<Node, Errno> {
        let stat = self.top_stat()?;
        let prot = self.top_prot();
        let path: Vec<Comp> = self.stack[1..]
            .iter()
            .map(|f| Comp {
                name: f.name.clone(),
                prot: f.prot,
            })
            .collect();
        let top = self.stack.pop().map(|f| f.fd);
        let fd = match top {
            Some(FrameFd::Owned(o)) => o,
            Some(FrameFd::Borrowed(b)) => sys::dup(b).map_err(errno)?,
            _ => return Err(libc::EIO),
        };
        Ok(Node {
            fd,
            path,
            stat,
            prot,
        })
    }
}

/// Check that `name` is a single normal component (for callers that take one).
pub fn check_name(name: &[u8]) -> Result<(), Errno> {
    if name.is_empty() || name == b"." || name == b".." {
        return Err(libc::EINVAL);
    }
    if name.contains(&b'/') || name.contains(&0) {
        return Err(libc::EINVAL);
    }
    if name.len() > MAX_NAME {
        return Err(libc::ENAMETOOLONG);
    }
    Ok(())
}

/// Open `name` in `dir` with `flags`, never following a symlink in `name` and never leaving
/// `dir`. O_CLOEXEC and O_NOCTTY are always added.
pub fn open_child(
    dir: BorrowedFd<'_>,
    name: &[u8],
    flags: i32,
    mode: u32,
) -> Result<OwnedFd, Errno> {
    check_name(name)?;
    let cname = CString::new(name).map_err(|_| libc::EINVAL)?;
    // openat2 refuses O_PATH combined with anything but these.
    let flags = if flags & libc::O_PATH != 0 {
        flags & (libc::O_PATH | libc::O_DIRECTORY)
    } else {
        flags | libc::O_NOCTTY
    };
    sys::openat2(dir, &cname, flags | libc::O_NOFOLLOW, mode, STEP_RESOLVE).map_err(errno)
}

/// Open a handle's object again with real access flags. Directories are re-opened through
/// "." on their own fd (no lookup at all); other objects through their parent and name, and
/// the result must be the same inode or the call fails with ESTALE.
pub fn reopen(w: &mut Walker<'_>, flags: i32) -> Result<OwnedFd, Errno> {
    let st = w.top_stat()?;
    if st.is_dir() {
        let fd = w.top_fd()?;
        let flags = if flags & libc::O_PATH != 0 {
            flags & (libc::O_PATH | libc::O_DIRECTORY)
        } else {
            flags | libc::O_NOCTTY
        };
        return sys::openat(fd, c".", flags).map_err(errno);
    }
    if st.is_symlink() {
        return Err(libc::ELOOP);
    }
    let (parent, name) = w.parent_and_name()?;
    let fd = open_child(parent, &name, flags, 0)?;
    let now = sys::fstat(fd.as_fd()).map_err(errno)?;
    if (now.dev, now.ino) != (st.dev, st.ino) {
        return Err(libc::ESTALE);
    }
    Ok(fd)
}
