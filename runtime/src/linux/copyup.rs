//! The `tmpcopyup` mount option (runc and crun extension, used by podman for tmpfs mounts):
//! a tmpfs mounted over a directory of the image starts with a copy of what it hides.
//!
//! Threat: the directory being copied is in the (attacker-controlled) rootfs. Every entry is
//! opened relative to its parent's fd with O_NOFOLLOW, symlinks are copied as links (never
//! followed), and nothing is resolved by path, so the copy cannot be steered to host files.

use nix::fcntl::{openat, readlinkat, AtFlags, OFlag};
use nix::sys::stat::{fchmodat, fstatat, mkdirat, mknodat, FchmodatFlags, Mode, SFlag};
use nix::unistd::{fchownat, Gid, Uid};
use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;

pub type Result<T> = std::result::Result<T, String>;

fn open_at(dir: RawFd, name: &std::ffi::OsStr, flags: OFlag, mode: Mode) -> nix::Result<OwnedFd> {
    let fd = openat(
        Some(dir),
        name,
        flags | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        mode,
    )?;
    // SAFETY: `openat` returned a fresh fd that we now own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Copy the contents of directory `src` into directory `dst` (both open directory fds),
/// keeping modes, owners, symlinks and device nodes.
pub fn copy_tree(src: &OwnedFd, dst: &OwnedFd) -> Result<()> {
    let dup = nix::unistd::dup(src.as_raw_fd()).map_err(|e| format!("tmpcopyup: dup: {e}"))?;
    let mut dir =
        nix::dir::Dir::from_fd(dup).map_err(|e| format!("tmpcopyup: read directory: {e}"))?;
    let names: Vec<std::ffi::OsString> = dir
        .iter()
        .flatten()
        .map(|e| std::ffi::OsStr::from_bytes(e.file_name().to_bytes()).to_os_string())
        .filter(|n| n != "." && n != "..")
        .collect();
    for name in names {
        copy_entry(src.as_raw_fd(), dst.as_raw_fd(), &name)
            .map_err(|e| format!("tmpcopyup {}: {e}", name.to_string_lossy()))?;
    }
    Ok(())
}

fn copy_entry(src: RawFd, dst: RawFd, name: &std::ffi::OsStr) -> Result<()> {
    let st = fstatat(Some(src), name, AtFlags::AT_SYMLINK_NOFOLLOW).map_err(|e| e.to_string())?;
    let kind = SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits());
    let mode = Mode::from_bits_truncate(st.st_mode & 0o7777);
    match kind {
        SFlag::S_IFDIR => {
            mkdirat(Some(dst), name, Mode::from_bits_truncate(0o700)).map_err(|e| e.to_string())?;
            let s = open_at(
                src,
                name,
                OFlag::O_RDONLY | OFlag::O_DIRECTORY,
                Mode::empty(),
            )
            .map_err(|e| e.to_string())?;
            let d = open_at(
                dst,
                name,
                OFlag::O_RDONLY | OFlag::O_DIRECTORY,
                Mode::empty(),
            )
            .map_err(|e| e.to_string())?;
            copy_tree(&s, &d)?;
        }
        SFlag::S_IFREG => {
            let s =
                open_at(src, name, OFlag::O_RDONLY, Mode::empty()).map_err(|e| e.to_string())?;
            let d = open_at(
                dst,
                name,
                OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL,
                Mode::from_bits_truncate(0o600),
            )
            .map_err(|e| e.to_string())?;
            std::io::copy(&mut File::from(s), &mut File::from(d)).map_err(|e| e.to_string())?;
        }
        SFlag::S_IFLNK => {
            let target = readlinkat(Some(src), name).map_err(|e| e.to_string())?;
            nix::unistd::symlinkat(target.as_os_str(), Some(dst), name)
                .map_err(|e| e.to_string())?;
        }
        _ => {
            mknodat(Some(dst), name, kind, mode, st.st_rdev).map_err(|e| e.to_string())?;
        }
    }
    fchownat(
        Some(dst),
        name,
        Some(Uid::from_raw(st.st_uid)),
        Some(Gid::from_raw(st.st_gid)),
        AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .map_err(|e| format!("chown: {e}"))?;
    // Symlinks have no mode of their own; the rest get theirs after the chown (which clears
    // set-id bits). Following is safe here: `dst` is the fresh tmpfs, not yet visible to
    // the container, and the entry was just made by us (not a link).
    if kind != SFlag::S_IFLNK {
        fchmodat(Some(dst), name, mode, FchmodatFlags::FollowSymlink)
            .map_err(|e| format!("chmod: {e}"))?;
    }
    Ok(())
}
