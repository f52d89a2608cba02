//! execve, execveat, chdir, fchdir, inotify_add_watch: checked, then continued.
//!
//! These are the only path-taking calls the kernel runs itself (Reply::Continue), because the
//! sentry cannot do them on the workload's behalf: unotify cannot make the workload execute
//! `execveat(injected_fd, "", AT_EMPTY_PATH)` or change its kernel cwd.
//!
//! Why continuing is sound here. Continue means the kernel re-reads the path pointer after we
//! looked at it, so a second thread can swap the string in between (the TOCTOU race). We
//! therefore make *no security decision from the string*. Safety comes from the process root:
//! before continuing, `require_container_root` checks that the calling process's root
//! (`/proc/<tid>/root`) is the very directory the gofer serves as the container root (same
//! device and inode as the gofer's root handle). The kernel resolves the path — whatever string
//! it finds — inside that root, and `..`/absolute symlinks cannot leave a process root. The
//! workload cannot change its root: chroot, pivot_root, mount, unshare, setns and
//! open_by_handle_at are denied by the filter. So the file the kernel executes (or the
//! directory it enters) is one beneath the container root, which the workload could have opened
//! through the gofer anyway. The only power exec adds over open+mmap is privilege gain through
//! setuid bits or file capabilities, which no_new_privs (set before the filter) removes.
//!
//! The gofer stat before continuing is not a check but a courtesy: it gives the strace line the
//! resolved path and fails early with the gofer's errno (ENOENT, EACCES) when there is nothing
//! to run. If the process root is not the container root (a workload started with the host
//! root), these calls fail with EACCES instead of continuing.

use std::os::unix::fs::MetadataExt;

use super::fs::checked_stat;
use super::{err, Call, Fail, Outcome, Res};
use crate::platform::Reply;

fn cont() -> Res {
    Ok(Outcome::Reply(Reply::Continue))
}

/// Is the calling process's root the container root the gofer serves?
fn require_container_root(c: &Call<'_>) -> Result<(), Fail> {
    let md = std::fs::metadata(format!("/proc/{}/root", c.ev.tid)).map_err(|_| Fail::Gone)?;
    if !c.p.is_pending(&c.ev) {
        return Err(Fail::Gone);
    }
    if md.dev() != c.s.root_stat.dev || md.ino() != c.s.root_stat.ino {
        return Err(Fail::Errno(libc::EACCES));
    }
    Ok(())
}

/// execve(path, argv, envp) (`dirfd` AT_FDCWD, `pi` 0) or
/// execveat(dirfd, path, argv, envp, flags) (`pi` 1).
pub(crate) fn execve(c: &mut Call<'_>, dirfd: i32, pi: usize, flags: i32) -> Res {
    require_container_root(c)?;
    let p = c.path_arg(pi)?;
    if p.is_empty() {
        if flags & libc::AT_EMPTY_PATH != 0 {
            // fexecve: an fd the workload holds, opened beneath the root by the gofer.
            return cont();
        }
        return err(libc::ENOENT);
    }
    let (_, st) = checked_stat(c, dirfd, &p, flags & libc::AT_SYMLINK_NOFOLLOW == 0)?;
    if st.is_dir() {
        return err(libc::EACCES);
    }
    cont()
}

pub(crate) fn chdir(c: &mut Call<'_>) -> Res {
    require_container_root(c)?;
    let p = c.path_arg(0)?;
    let (_, st) = checked_stat(c, libc::AT_FDCWD, &p, true)?;
    if !st.is_dir() {
        return err(libc::ENOTDIR);
    }
    cont()
}

pub(crate) fn fchdir(c: &mut Call<'_>) -> Res {
    require_container_root(c)?;
    cont()
}

pub(crate) fn inotify_add_watch(c: &mut Call<'_>) -> Res {
    require_container_root(c)?;
    let follow = c.int(2) as u32 & libc::IN_DONT_FOLLOW == 0;
    let p = c.path_arg(1)?;
    checked_stat(c, libc::AT_FDCWD, &p, follow)?;
    cont()
}
