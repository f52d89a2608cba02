//! Operations shared by every layout: removing cgroup trees, signalling members, waiting.

use crate::error::{Error, Result};
use crate::fsutil;
use std::path::Path;
use std::time::{Duration, Instant};

/// Polls `done` every few milliseconds until it returns true or `timeout` passes.
pub fn wait_until(timeout: Duration, mut done: impl FnMut() -> Result<bool>) -> Result<bool> {
    let start = Instant::now();
    let mut nap = Duration::from_millis(1);
    loop {
        if done()? {
            return Ok(true);
        }
        if start.elapsed() >= timeout {
            return Ok(false);
        }
        std::thread::sleep(nap);
        nap = (nap * 2).min(Duration::from_millis(20));
    }
}

/// Removes `dir` and every cgroup below it, deepest first. EBUSY (members still exiting) is
/// retried for up to `timeout`; an absent directory is success, so this is idempotent.
pub fn remove_tree(dir: &Path, timeout: Duration) -> Result<()> {
    for child in fsutil::child_dirs(dir)? {
        remove_tree(&child, timeout)?;
    }
    let mut last = None;
    let ok = wait_until(timeout, || match std::fs::remove_dir(dir) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(true),
        Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
            last = Some(e);
            Ok(false)
        }
        Err(source) => Err(Error::Rmdir {
            path: dir.to_path_buf(),
            source,
        }),
    })?;
    match (ok, last) {
        (true, _) => Ok(()),
        (false, Some(source)) => Err(Error::Rmdir {
            path: dir.to_path_buf(),
            source,
        }),
        (false, None) => Err(Error::Busy {
            path: dir.to_path_buf(),
        }),
    }
}

/// Sends `sig` to every pid. Our own pid is refused rather than signalled: a cgroup that
/// holds the runtime itself is not a container's cgroup.
pub fn signal_all(dir: &Path, pids: &[i32], sig: i32) -> Result<()> {
    // SAFETY: getpid has no preconditions.
    let me = unsafe { libc::getpid() };
    if pids.contains(&me) {
        return Err(Error::Refused {
            action: "signal the processes of".into(),
            path: dir.to_path_buf(),
            reason: "it contains the calling process".into(),
        });
    }
    for &pid in pids {
        if pid <= 0 {
            continue; // never kill(0) or kill(-1): those address process groups / everyone
        }
        // SAFETY: kill with a positive pid only signals that process.
        if unsafe { libc::kill(pid, sig) } != 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::ESRCH) {
                return Err(Error::sys(format!("kill({pid}, {sig})"), e));
            }
        }
    }
    Ok(())
}

/// Creates every missing directory from `top` (exclusive; must exist) down to `dir`, calling
/// `init` on each new one, parents first (v1 cpuset needs cpus/mems before children exist).
pub fn create_path(
    top: &Path,
    dir: &Path,
    mut init: impl FnMut(&Path) -> Result<()>,
) -> Result<()> {
    let rel = dir.strip_prefix(top).map_err(|_| Error::InvalidPath {
        path: dir.display().to_string(),
        reason: format!("not below {}", top.display()),
    })?;
    let mut cur = top.to_path_buf();
    for comp in rel.components() {
        cur.push(comp);
        match std::fs::create_dir(&cur) {
            Ok(()) => init(&cur)?,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(source) => {
                return Err(Error::Mkdir {
                    path: cur.clone(),
                    source,
                })
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remove_tree_plain_dirs_and_absent() {
        let base = std::env::temp_dir().join(format!("mantle-cg-rt-{}", std::process::id()));
        std::fs::create_dir_all(base.join("a/b/c")).unwrap();
        std::fs::create_dir_all(base.join("d")).unwrap();
        remove_tree(&base, Duration::from_millis(10)).unwrap();
        assert!(!base.exists());
        remove_tree(&base, Duration::from_millis(10)).unwrap();
    }

    #[test]
    fn create_path_calls_init_for_new_dirs_only() {
        let base = std::env::temp_dir().join(format!("mantle-cg-cp-{}", std::process::id()));
        std::fs::create_dir_all(base.join("x")).unwrap();
        let mut seen = Vec::new();
        create_path(&base, &base.join("x/y/z"), |p| {
            seen.push(p.strip_prefix(&base).unwrap().display().to_string());
            Ok(())
        })
        .unwrap();
        assert_eq!(seen, vec!["x/y", "x/y/z"]);
        assert!(create_path(&base, Path::new("/elsewhere"), |_| Ok(())).is_err());
        std::fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn refuses_to_signal_self() {
        let me = std::process::id() as i32;
        assert!(signal_all(Path::new("/x"), &[me], 0).is_err());
        assert!(
            signal_all(Path::new("/x"), &[0, -1], 9).is_ok(),
            "non-positive skipped"
        );
    }
}
