//! One function per request. Each resolves its target with a `Walker` (see `resolve.rs` for
//! why that cannot leave the root), applies the read-only / masked policy, then acts on fds
//! it holds, never on a path the kernel would resolve again.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use super::cstring;
use super::mask::Sources;
use super::resolve::{self, errno, open_child, Errno, Last, Mask, Node, Policy, Prot, Walker};
use super::ServerConfig;
use crate::protocol::{
    setattr, Dirent, Handle, MsgId, Owner, Reply, Request, SetAttr, Stat, Target, MAX_MESSAGE,
    MAX_READDIR_BYTES, MAX_XATTR_VALUE, VERSION,
};
use crate::sys;

/// What a handler produced.
pub enum Out {
    Reply(Reply),
    WithFd(Reply, OwnedFd),
    /// A new handle to insert, with the stat to show for it.
    NewHandle(Node, Stat),
}

type Res = Result<Out, Errno>;

/// open(2) flags the gofer accepts; anything else is EINVAL.
const OPEN_FLAGS: i32 = libc::O_ACCMODE
    | libc::O_CREAT
    | libc::O_EXCL
    | libc::O_TRUNC
    | libc::O_APPEND
    | libc::O_NONBLOCK
    | libc::O_DIRECTORY
    | libc::O_NOFOLLOW
    | libc::O_NOATIME
    | libc::O_DSYNC
    | libc::O_SYNC
    | libc::O_DIRECT
    | libc::O_LARGEFILE
    | KERNEL_O_LARGEFILE
    | libc::O_NOCTTY
    | libc::O_CLOEXEC
    | libc::O_PATH
    | libc::O_ASYNC;

/// The kernel's O_LARGEFILE on x86_64: musl passes it on every open, while the libc crate's
/// O_LARGEFILE is 0 on this target.
const KERNEL_O_LARGEFILE: i32 = 0o100000;

/// Bounded retries when the workload races us (entry created/removed between two steps).
const RACE_RETRIES: usize = 16;

pub struct Fs<'a> {
    pub root: &'a Node,
    pub policy: &'a Policy,
    pub handles: &'a std::collections::HashMap<u64, Node>,
    pub cfg: &'a ServerConfig,
    pub masks: &'a Sources,
}

/// O_NONBLOCK to add when opening `st`: a FIFO without a peer, a tty or another device can
/// block in open(2), which would stall the single-threaded gofer for every client. Regular
/// files and directories do not block in open. The flag is cleared again after the open.
fn forced_nonblock(st: &Stat, flags: i32) -> i32 {
    let ft = st.file_type();
    if ft == libc::S_IFREG || ft == libc::S_IFDIR || flags & libc::O_NONBLOCK != 0 {
        0
    } else {
        libc::O_NONBLOCK
    }
}

/// Count one lost race; give up with EAGAIN after too many (the workload keeps swapping).
fn raced(n: &mut usize) -> Result<(), Errno> {
    *n += 1;
    if *n > RACE_RETRIES {
        Err(libc::EAGAIN)
    } else {
        Ok(())
    }
}

fn ok(r: Reply) -> Res {
    Ok(Out::Reply(r))
}

impl<'a> Fs<'a> {
    pub fn handle(&self, req: &Request) -> Res {
        match req {
            Request::Hello { version } => self.hello(*version),
            Request::Walk { at } => self.walk(at),
            Request::StatAt { at } => self.stat_at(at),
            Request::Open {
                at,
                flags,
                mode,
                owner,
            } => self.open(at, *flags, *mode, *owner),
            Request::Readdir {
                at,
                offset,
                max_bytes,
            } => self.readdir(at, *offset, *max_bytes),
            Request::Readlink { at } => self.readlink(at),
            Request::Mkdir { at, mode, owner } => self.mkdir(at, *mode, *owner),
            Request::Mknod {
                at,
                mode,
                rdev,
                owner,
            } => self.mknod(at, *mode, *rdev, *owner),
            Request::Symlink { at, target, owner } => self.symlink(at, target, *owner),
            Request::Link { old, new } => self.link(old, new),
            Request::Unlink { at, flags } => self.unlink(at, *flags),
            Request::Rename { old, new, flags } => self.rename(old, new, *flags),
            Request::SetAttr { at, attr } => self.setattr(at, attr),
            Request::GetXattr { at, name, size } => self.getxattr(at, name, *size),
            Request::SetXattr {
                at,
                name,
                value,
                flags,
            } => self.setxattr(at, name, value, *flags),
            Request::ListXattr { at, size } => self.listxattr(at, *size),
            Request::RemoveXattr { at, name } => self.removexattr(at, name),
            Request::StatFs { at } => self.statfs(at),
            Request::DonateDir { at } => self.donate(at),
            // Handled by the server itself (they touch its mutable state).
            Request::Close { .. } | Request::Stats => Err(libc::EINVAL),
        }
    }

    fn walker(&self, t: &Target) -> Result<Walker<'a>, Errno> {
        let start = if t.dir == Handle::ROOT {
            self.root
        } else {
            self.handles.get(&t.dir.0).ok_or(libc::EBADF)?
        };
        Walker::new(self.root, self.policy, start, &t.path)
    }

    /// Resolve the whole target.
    fn resolve(&self, t: &Target) -> Result<Walker<'a>, Errno> {
        let mut w = self.walker(t)?;
        w.resolve(t.follow)?;
        Ok(w)
    }

    /// Resolve the parent of the target's last component, which must be a new name in a
    /// writable directory (for create / remove / rename).
    fn resolve_parent(
        &self,
        t: &Target,
        none_errno: Errno,
    ) -> Result<(Walker<'a>, Vec<u8>), Errno> {
        let mut w = self.walker(t)?;
        let name = match w.parent()? {
            Last::Name(n) => n,
            Last::None | Last::DotDot => return Err(none_errno),
        };
        self.check_writable_dir(w.top_prot())?;
        Ok((w, name))
    }

    fn check_writable_dir(&self, p: Prot) -> Result<(), Errno> {
        match p.masked {
            Some(Mask::Dir) => return Err(libc::EROFS),
            Some(Mask::File) => return Err(libc::ENOTDIR),
            None => {}
        }
        self.check_writable(p)
    }

    fn check_writable(&self, p: Prot) -> Result<(), Errno> {
        if self.cfg.read_only || p.ro {
            return Err(libc::EROFS);
        }
        Ok(())
    }

    /// The stat a client sees: masked objects show their mask.
    fn shown(&self, prot: Prot, st: Stat) -> Stat {
        match prot.masked {
            Some(Mask::File) => self.masks.file_stat(&st),
            Some(Mask::Dir) => self.masks.dir_stat(&st),
            None => st,
        }
    }

    fn hello(&self, version: u32) -> Res {
        if version == 0 {
            return Err(libc::EPROTONOSUPPORT);
        }
        ok(Reply::Hello {
            version: version.min(VERSION),
            max_message: MAX_MESSAGE as u32,
            supported: MsgId::ALL.iter().map(|m| *m as u16).collect(),
            root: Handle::ROOT,
            root_stat: self.root.stat,
        })
    }

    fn walk(&self, t: &Target) -> Res {
        let w = self.resolve(t)?;
        let node = w.into_node()?;
        let shown = self.shown(node.prot, node.stat);
        Ok(Out::NewHandle(node, shown))
    }

    fn stat_at(&self, t: &Target) -> Res {
        let mut w = self.resolve(t)?;
        let st = w.top_stat()?;
        ok(Reply::Stat(self.shown(w.top_prot(), st)))
    }

    /// Threat model for open: the entry is looked at first through an O_PATH fd (which has
    /// no side effect, even on a device or FIFO), the policy is decided on what that fd is,
    /// then the entry is opened for real by name and must still be the same inode.
    fn open(&self, t: &Target, flags: u32, mode: u32, owner: Owner) -> Res {
        let flags = flags as i32;
        if flags & !OPEN_FLAGS != 0 {
            return Err(libc::EINVAL);
        }
        let creat = flags & libc::O_CREAT != 0;
        let excl = creat && flags & libc::O_EXCL != 0;
        let follow = flags & libc::O_NOFOLLOW == 0 && !excl;
        let path_only = flags & libc::O_PATH != 0;
        let acc = flags & libc::O_ACCMODE;
        let write = !path_only && (acc != libc::O_RDONLY || flags & libc::O_TRUNC != 0);
        // O_TRUNC is applied only after the policy check, in finish_open.
        let base = flags & !(libc::O_CREAT | libc::O_EXCL | libc::O_TRUNC | libc::O_NOFOLLOW);
        let mut w = self.walker(t)?;
        let mut races = 0;
        loop {
            let name = match w.parent()? {
                Last::Name(n) => n,
                last => {
                    if last == Last::DotDot {
                        w.push_back(b"..".to_vec());
                        w.resolve(true)?;
                    }
                    if excl {
                        return Err(libc::EEXIST);
                    }
                    let st = w.top_stat()?;
                    let prot = w.top_prot();
                    self.check_open(prot, &st, flags, write, w.must_dir)?;
                    if prot.masked.is_some() {
                        return self.open_masked(prot, write, &st);
                    }
                    let nb = forced_nonblock(&st, flags);
                    let fd = resolve::reopen(&mut w, base | nb)?;
                    return self.finish_open(fd, st, flags, false, owner, nb != 0);
                }
            };
            resolve::check_name(&name)?;
            let parent_prot = w.top_prot();
            match parent_prot.masked {
                Some(Mask::Dir) if creat => return Err(libc::EROFS),
                Some(Mask::Dir) => return Err(libc::ENOENT),
                Some(Mask::File) => return Err(libc::ENOTDIR),
                None => {}
            }
            let must_dir = w.must_dir;
            let dir = w.top_fd()?;
            let probe = match open_child(dir, &name, libc::O_PATH, 0) {
                Ok(p) => p,
                Err(libc::ENOENT) if creat && !must_dir => {
                    self.check_writable(parent_prot)?;
                    let cflags = base | libc::O_CREAT | libc::O_EXCL;
                    match open_child(dir, &name, cflags, mode & 0o7777) {
                        Ok(fd) => {
                            let st = sys::fstat(fd.as_fd()).map_err(errno)?;
                            return self.finish_open(fd, st, flags, true, owner, false);
                        }
                        Err(libc::EEXIST) if !excl => {
                            raced(&mut races)?; // appeared meanwhile
                            continue;
                        }
                        Err(e) => return Err(e),
                    }
                }
                Err(e) => return Err(e),
            };
            if excl {
                return Err(libc::EEXIST);
            }
            let st = sys::fstat(probe.as_fd()).map_err(errno)?;
            if st.is_symlink() && follow {
                w.follow_link(probe.as_fd())?;
                continue;
            }
            let prot = self.policy.child_prot(parent_prot, &st);
            self.check_open(prot, &st, flags, write, must_dir)?;
            if prot.masked.is_some() {
                return self.open_masked(prot, write, &st);
            }
            if path_only {
                return Ok(Out::WithFd(Reply::Opened { stat: st }, probe));
            }
            if st.is_symlink() {
                return Err(libc::ELOOP);
            }
            let nb = forced_nonblock(&st, flags);
            let fd = match open_child(dir, &name, base | nb, 0) {
                Ok(fd) => fd,
                Err(libc::ENOENT | libc::ELOOP) => {
                    raced(&mut races)?; // swapped under us
                    continue;
                }
                Err(e) => return Err(e),
            };
            let now = sys::fstat(fd.as_fd()).map_err(errno)?;
            if (now.dev, now.ino) != (st.dev, st.ino) {
                raced(&mut races)?; // swapped under us: decide again on what is there now
                continue;
            }
            return self.finish_open(fd, now, flags, false, owner, nb != 0);
        }
    }

    /// Policy checks on an existing object about to be opened.
    fn check_open(
        &self,
        prot: Prot,
        st: &Stat,
        flags: i32,
        write: bool,
        must_dir: bool,
    ) -> Result<(), Errno> {
        if (must_dir || flags & libc::O_DIRECTORY != 0) && !st.is_dir() {
            return Err(libc::ENOTDIR);
        }
        if prot.masked.is_some() {
            return Ok(());
        }
        if write {
            if st.is_dir() {
                return Err(libc::EISDIR);
            }
            self.check_writable(prot)?;
        }
        // Even an O_PATH fd of a device is refused: it could be re-opened through
        // /proc/self/fd by whoever holds it.
        self.check_device(st)
    }

    /// Apply what was held back while opening: truncation, ownership, blocking mode.
    fn finish_open(
        &self,
        fd: OwnedFd,
        st: Stat,
        flags: i32,
        created: bool,
        owner: Owner,
        forced_nb: bool,
    ) -> Res {
        if flags & libc::O_PATH != 0 {
            return Ok(Out::WithFd(Reply::Opened { stat: st }, fd));
        }
        let mut changed = false;
        if flags & libc::O_TRUNC != 0
            && st.file_type() == libc::S_IFREG
            && flags & libc::O_ACCMODE != libc::O_RDONLY
        {
            sys::ftruncate(fd.as_fd(), 0).map_err(errno)?;
            changed = true;
        }
        if created && owner != Owner::UNCHANGED {
            sys::fchown_path_fd(fd.as_fd(), owner.uid, owner.gid).map_err(errno)?;
            changed = true;
        }
        if forced_nb {
            sys::set_nonblocking(fd.as_fd(), false).map_err(errno)?;
        }
        let st = if changed {
            sys::fstat(fd.as_fd()).map_err(errno)?
        } else {
            st
        };
        Ok(Out::WithFd(Reply::Opened { stat: st }, fd))
    }

    /// Threat: a device node in the rootfs (shipped in the image) opened by the gofer would
    /// give the workload the host device. Only the allow-listed devices open.
    fn check_device(&self, st: &Stat) -> Result<(), Errno> {
        let kind = match st.file_type() {
            libc::S_IFCHR => 'c',
            libc::S_IFBLK => 'b',
            _ => return Ok(()),
        };
        let (maj, min) = (libc::major(st.rdev), libc::minor(st.rdev));
        let allowed = self.cfg.allowed_devices.iter().any(|r| {
            r.kind == kind && r.major.is_none_or(|m| m == maj) && r.minor.is_none_or(|m| m == min)
        });
        if allowed {
            Ok(())
        } else {
            Err(libc::EPERM)
        }
    }

    fn open_masked(&self, prot: Prot, write: bool, real: &Stat) -> Res {
        match prot.masked {
            Some(Mask::File) => {
                let (null, st) = self.masks.null.as_ref().ok_or(libc::EACCES)?;
                let fd = sys::dup(null.as_fd()).map_err(errno)?;
                Ok(Out::WithFd(Reply::Opened { stat: *st }, fd))
            }
            _ => {
                if write {
                    return Err(libc::EISDIR);
                }
                let (dir, _) = self.masks.empty_dir.as_ref().ok_or(libc::EACCES)?;
                let fd = sys::openat(dir.as_fd(), c".", libc::O_RDONLY | libc::O_DIRECTORY)
                    .map_err(errno)?;
                Ok(Out::WithFd(
                    Reply::Opened {
                        stat: self.masks.dir_stat(real),
                    },
                    fd,
                ))
            }
        }
    }

    fn readdir(&self, t: &Target, offset: u64, max_bytes: u32) -> Res {
        let mut w = self.resolve(t)?;
        if w.top_prot().masked == Some(Mask::Dir) {
            return ok(Reply::Dirents {
                entries: Vec::new(),
                eof: true,
            });
        }
        if !w.top_stat()?.is_dir() {
            return Err(libc::ENOTDIR);
        }
        let fd = resolve::reopen(&mut w, libc::O_RDONLY | libc::O_DIRECTORY)?;
        if offset != 0 {
            sys::lseek_set(fd.as_fd(), offset).map_err(errno)?;
        }
        let mut buf = vec![0u8; max_bytes.clamp(512, MAX_READDIR_BYTES) as usize];
        let n = sys::getdents64(fd.as_fd(), &mut buf).map_err(errno)?;
        let entries = parse_dirents(&buf[..n]);
        ok(Reply::Dirents {
            eof: entries.is_empty(),
            entries,
        })
    }

    fn readlink(&self, t: &Target) -> Res {
        let t = Target {
            follow: false,
            ..t.clone()
        };
        let mut w = self.resolve(&t)?;
        if !w.top_stat()?.is_symlink() {
            return Err(libc::EINVAL);
        }
        let target = sys::readlink_fd(w.top_fd()?).map_err(errno)?;
        ok(Reply::Bytes(target))
    }

    /// Stat a just-created entry and give it its owner.
    fn created(&self, dir: BorrowedFd<'_>, name: &[u8], owner: Owner) -> Res {
        let fd = open_child(dir, name, libc::O_PATH, 0)?;
        if owner != Owner::UNCHANGED {
            sys::fchown_path_fd(fd.as_fd(), owner.uid, owner.gid).map_err(errno)?;
        }
        ok(Reply::Stat(sys::fstat(fd.as_fd()).map_err(errno)?))
    }

    fn mkdir(&self, t: &Target, mode: u32, owner: Owner) -> Res {
        let (mut w, name) = self.resolve_parent(t, libc::EEXIST)?;
        resolve::check_name(&name)?;
        let dir = w.top_fd()?;
        sys::mkdirat(dir, &cstring(&name)?, mode & 0o7777).map_err(errno)?;
        self.created(dir, &name, owner)
    }

    fn mknod(&self, t: &Target, mode: u32, rdev: u64, owner: Owner) -> Res {
        // Threat: a device node made through the gofer and then opened by it would reach
        // host devices; the gofer makes only files, FIFOs and sockets.
        let mode = match mode & libc::S_IFMT {
            0 => mode | libc::S_IFREG,
            libc::S_IFREG | libc::S_IFIFO | libc::S_IFSOCK => mode,
            libc::S_IFCHR | libc::S_IFBLK => return Err(libc::EPERM),
            _ => return Err(libc::EINVAL),
        };
        let (mut w, name) = self.resolve_parent(t, libc::EEXIST)?;
        resolve::check_name(&name)?;
        let dir = w.top_fd()?;
        let mode = mode & (libc::S_IFMT | 0o7777);
        sys::mknodat(dir, &cstring(&name)?, mode, rdev).map_err(errno)?;
        self.created(dir, &name, owner)
    }

    fn symlink(&self, t: &Target, target: &[u8], owner: Owner) -> Res {
        if target.is_empty() {
            return Err(libc::ENOENT);
        }
        let (mut w, name) = self.resolve_parent(t, libc::EEXIST)?;
        resolve::check_name(&name)?;
        let dir = w.top_fd()?;
        // The content is stored, never followed by the kernel on our behalf.
        sys::symlinkat(&cstring(target)?, dir, &cstring(&name)?).map_err(errno)?;
        self.created(dir, &name, owner)
    }

    fn link(&self, old: &Target, new: &Target) -> Res {
        let mut ow = self.resolve(old)?;
        let ost = ow.top_stat()?;
        if ost.is_dir() {
            return Err(libc::EPERM);
        }
        // A protected path cannot get a second, unprotected name... it would keep its
        // identity, but refusing keeps the rule simple: protected paths are like mounts.
        if ow.policy().is_protected(&ost) || ow.top_prot().masked.is_some() {
            return Err(libc::EPERM);
        }
        let (mut nw, name) = self.resolve_parent(new, libc::EEXIST)?;
        resolve::check_name(&name)?;
        // A second name outside a read-only subtree would make its file writable; a
        // read-only bind mount answers EXDEV to the same request.
        if ow.top_prot().ro && !nw.top_prot().ro {
            return Err(libc::EXDEV);
        }
        let (odir, oname) = ow.parent_and_name()?;
        let ndir = nw.top_fd()?;
        sys::linkat(odir, &cstring(&oname)?, ndir, &cstring(&name)?).map_err(errno)?;
        self.created(ndir, &name, Owner::UNCHANGED)
    }

    /// Threat: removing or renaming a protected path would shed its protection (as
    /// unmounting would); like a mount point it is busy.
    fn check_not_protected(&self, dir: BorrowedFd<'_>, name: &[u8]) -> Result<(), Errno> {
        match open_child(dir, name, libc::O_PATH, 0) {
            Ok(fd) => {
                let st = sys::fstat(fd.as_fd()).map_err(errno)?;
                if self.policy.is_protected(&st) {
                    Err(libc::EBUSY)
                } else {
                    Ok(())
                }
            }
            Err(libc::ENOENT) => Ok(()),
            Err(e) => Err(e),
        }
    }

    fn unlink(&self, t: &Target, flags: u32) -> Res {
        if flags & !(libc::AT_REMOVEDIR as u32) != 0 {
            return Err(libc::EINVAL);
        }
        let (mut w, name) = self.resolve_parent(t, libc::EBUSY)?;
        resolve::check_name(&name)?;
        let dir = w.top_fd()?;
        self.check_not_protected(dir, &name)?;
        sys::unlinkat(dir, &cstring(&name)?, flags as i32).map_err(errno)?;
        ok(Reply::Ok)
    }

    fn rename(&self, old: &Target, new: &Target, flags: u32) -> Res {
        let known = libc::RENAME_NOREPLACE | libc::RENAME_EXCHANGE | libc::RENAME_WHITEOUT;
        if flags & !known != 0 {
            return Err(libc::EINVAL);
        }
        let (mut ow, oname) = self.resolve_parent(old, libc::EBUSY)?;
        let (mut nw, nname) = self.resolve_parent(new, libc::EBUSY)?;
        resolve::check_name(&oname)?;
        resolve::check_name(&nname)?;
        // Renaming a directory above a protected path would move the protection away from
        // the path recorded for it (see `Policy`): busy, like a directory holding a mount.
        if self.policy.is_above_protected(&ow.child_path(&oname))
            || self.policy.is_above_protected(&nw.child_path(&nname))
        {
            return Err(libc::EBUSY);
        }
        let odir = ow.top_fd()?;
        let ndir = nw.top_fd()?;
        self.check_not_protected(odir, &oname)?;
        self.check_not_protected(ndir, &nname)?;
        sys::renameat2(odir, &cstring(&oname)?, ndir, &cstring(&nname)?, flags).map_err(errno)?;
        ok(Reply::Ok)
    }

    /// Resolve a target whose object will be modified in place.
    fn resolve_writable(&self, t: &Target) -> Result<Walker<'a>, Errno> {
        let w = self.resolve(t)?;
        if w.top_prot().masked.is_some() {
            return Err(libc::EPERM);
        }
        self.check_writable(w.top_prot())?;
        Ok(w)
    }

    fn setattr(&self, t: &Target, a: &SetAttr) -> Res {
        if a.mask & !setattr::ALL != 0 {
            return Err(libc::EINVAL);
        }
        let mut w = self.resolve_writable(t)?;
        let st = w.top_stat()?;
        if a.mask & setattr::SIZE != 0 {
            if st.is_dir() {
                return Err(libc::EISDIR);
            }
            if st.file_type() != libc::S_IFREG {
                return Err(libc::EINVAL);
            }
            let f = resolve::reopen(&mut w, libc::O_WRONLY | libc::O_NONBLOCK)?;
            sys::ftruncate(f.as_fd(), a.size).map_err(errno)?;
        }
        let fd = w.top_fd()?;
        if a.mask & (setattr::UID | setattr::GID) != 0 {
            let uid = if a.mask & setattr::UID != 0 {
                a.uid
            } else {
                u32::MAX
            };
            let gid = if a.mask & setattr::GID != 0 {
                a.gid
            } else {
                u32::MAX
            };
            sys::fchown_path_fd(fd, uid, gid).map_err(errno)?;
        }
        if a.mask & setattr::MODE != 0 {
            sys::fchmod_path_fd(fd, a.mode & 0o7777).map_err(errno)?;
        }
        let times_mask = setattr::ATIME | setattr::MTIME | setattr::ATIME_NOW | setattr::MTIME_NOW;
        if a.mask & times_mask != 0 {
            let ts = |set: u32, now: u32, t: crate::protocol::Timespec| libc::timespec {
                tv_sec: t.sec,
                tv_nsec: if a.mask & now != 0 {
                    libc::UTIME_NOW
                } else if a.mask & set != 0 {
                    t.nsec as i64
                } else {
                    libc::UTIME_OMIT
                },
            };
            let times = [
                ts(setattr::ATIME, setattr::ATIME_NOW, a.atime),
                ts(setattr::MTIME, setattr::MTIME_NOW, a.mtime),
            ];
            sys::futimens_path_fd(fd, &times).map_err(errno)?;
        }
        ok(Reply::Stat(sys::fstat(fd).map_err(errno)?))
    }

    fn getxattr(&self, t: &Target, name: &[u8], size: u32) -> Res {
        let mut w = self.resolve(t)?;
        if w.top_prot().masked.is_some() {
            return Err(libc::ENODATA);
        }
        let cname = cstring(name)?;
        let fd = w.top_fd()?;
        if size == 0 {
            let n = sys::getxattr_fd(fd, &cname, &mut []).map_err(errno)?;
            return ok(Reply::Size(n as u64));
        }
        let mut buf = vec![0u8; (size as usize).min(MAX_XATTR_VALUE)];
        let n = sys::getxattr_fd(fd, &cname, &mut buf).map_err(errno)?;
        buf.truncate(n);
        ok(Reply::Bytes(buf))
    }

    fn setxattr(&self, t: &Target, name: &[u8], value: &[u8], flags: u32) -> Res {
        if flags & !((libc::XATTR_CREATE | libc::XATTR_REPLACE) as u32) != 0 {
            return Err(libc::EINVAL);
        }
        let mut w = self.resolve_writable(t)?;
        let fd = w.top_fd()?;
        sys::setxattr_fd(fd, &cstring(name)?, value, flags).map_err(errno)?;
        ok(Reply::Ok)
    }

    fn listxattr(&self, t: &Target, size: u32) -> Res {
        let mut w = self.resolve(t)?;
        if w.top_prot().masked.is_some() {
            return ok(if size == 0 {
                Reply::Size(0)
            } else {
                Reply::Bytes(Vec::new())
            });
        }
        let fd = w.top_fd()?;
        if size == 0 {
            let n = sys::listxattr_fd(fd, &mut []).map_err(errno)?;
            return ok(Reply::Size(n as u64));
        }
        let mut buf = vec![0u8; (size as usize).min(MAX_XATTR_VALUE)];
        let n = sys::listxattr_fd(fd, &mut buf).map_err(errno)?;
        buf.truncate(n);
        ok(Reply::Bytes(buf))
    }

    fn removexattr(&self, t: &Target, name: &[u8]) -> Res {
        let mut w = self.resolve_writable(t)?;
        let fd = w.top_fd()?;
        sys::removexattr_fd(fd, &cstring(name)?).map_err(errno)?;
        ok(Reply::Ok)
    }

    fn statfs(&self, t: &Target) -> Res {
        let mut w = self.resolve(t)?;
        ok(Reply::StatFs(sys::fstatfs(w.top_fd()?).map_err(errno)?))
    }

    /// Directory donation (directfs). See README "Directory donation" for the argument; the
    /// gofer's part is to refuse any directory whose subtree holds something the policy
    /// protects, because the holder of the fd resolves beneath it without asking us.
    fn donate(&self, t: &Target) -> Res {
        if !self.cfg.allow_donate || self.cfg.read_only {
            return Err(libc::EPERM);
        }
        let mut w = self.resolve(t)?;
        if !w.top_stat()?.is_dir() {
            return Err(libc::ENOTDIR);
        }
        let prot = w.top_prot();
        if prot.ro || prot.masked.is_some() {
            return Err(libc::EPERM);
        }
        let node = w.into_node()?;
        let mine: Vec<&[u8]> = node.path.iter().map(|c| c.name.as_slice()).collect();
        let covers = self.policy.ids.values().any(|(_, p)| {
            p.len() >= mine.len() && p.iter().zip(&mine).all(|(a, b)| a.as_slice() == *b)
        });
        if covers {
            return Err(libc::EPERM);
        }
        let fd =
            sys::openat(node.fd.as_fd(), c".", libc::O_PATH | libc::O_DIRECTORY).map_err(errno)?;
        Ok(Out::WithFd(Reply::Opened { stat: node.stat }, fd))
    }
}

/// Parse `getdents64` output defensively (lengths are checked, never trusted).
fn parse_dirents(mut b: &[u8]) -> Vec<Dirent> {
    let mut out = Vec::new();
    // struct linux_dirent64 { u64 d_ino; s64 d_off; u16 d_reclen; u8 d_type; char d_name[]; }
    while b.len() >= 19 {
        let ino = u64::from_ne_bytes(b[0..8].try_into().unwrap_or_default());
        let off = u64::from_ne_bytes(b[8..16].try_into().unwrap_or_default());
        let reclen = u16::from_ne_bytes([b[16], b[17]]) as usize;
        if reclen < 19 || reclen > b.len() {
            break;
        }
        let kind = b[18];
        let raw = &b[19..reclen];
        let name = raw.split(|c| *c == 0).next().unwrap_or_default().to_vec();
        out.push(Dirent {
            ino,
            next_offset: off,
            kind,
            name,
        });
        b = &b[reclen..];
    }
    out
}
