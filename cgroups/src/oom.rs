//! Waiting for OOM events: v1 registers an eventfd on memory.oom_control through
//! cgroup.event_control; v2 watches memory.events with inotify and compares counters.

use crate::error::{Error, Result};
use crate::fsutil::{self, read_flat_keyed};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::eventfd::{EfdFlags, EventFd};
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// What `OomWatcher::wait` saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OomEvent {
    /// At least one OOM happened since the last event.
    Oom,
    /// The timeout passed first.
    Timeout,
    /// The cgroup was removed; no more events will come.
    Gone,
}

enum Inner {
    V1 {
        efd: EventFd,
        dir: PathBuf,
        _oom_control: File,
    },
    V2 {
        ino: Inotify,
        dir: PathBuf,
        seen: u64,
    },
}

/// A handle that reports OOM events of one cgroup. `fd()` can go into the caller's own
/// poll loop; call `wait(Some(Duration::ZERO))` when it is readable.
pub struct OomWatcher {
    inner: Inner,
}

impl OomWatcher {
    /// Registers for OOM notifications on a v1 memory cgroup directory.
    pub fn v1(dir: &Path) -> Result<OomWatcher> {
        let efd = EventFd::from_flags(EfdFlags::EFD_CLOEXEC)
            .map_err(|e| Error::sys("eventfd", e.into()))?;
        let oc_path = dir.join("memory.oom_control");
        let oc = File::open(&oc_path).map_err(|source| Error::Read {
            path: oc_path,
            source,
        })?;
        let line = format!("{} {}", efd.as_raw_fd(), oc.as_raw_fd());
        fsutil::write(dir, "cgroup.event_control", &line)?;
        Ok(OomWatcher {
            inner: Inner::V1 {
                efd,
                dir: dir.to_path_buf(),
                _oom_control: oc,
            },
        })
    }

    /// Watches memory.events of a v2 cgroup directory.
    pub fn v2(dir: &Path) -> Result<OomWatcher> {
        let ino = Inotify::init(InitFlags::IN_CLOEXEC | InitFlags::IN_NONBLOCK)
            .map_err(|e| Error::sys("inotify_init", e.into()))?;
        let file = dir.join("memory.events");
        ino.add_watch(
            &file,
            AddWatchFlags::IN_MODIFY | AddWatchFlags::IN_DELETE_SELF,
        )
        .map_err(|e| Error::sys(format!("inotify_add_watch {}", file.display()), e.into()))?;
        let seen = oom_count(dir)?;
        Ok(OomWatcher {
            inner: Inner::V2 {
                ino,
                dir: dir.to_path_buf(),
                seen,
            },
        })
    }

    /// The fd that becomes readable when there may be an event.
    pub fn fd(&self) -> BorrowedFd<'_> {
        match &self.inner {
            Inner::V1 { efd, .. } => efd.as_fd(),
            Inner::V2 { ino, .. } => ino.as_fd(),
        }
    }

    /// Waits up to `timeout` (`None`: forever) for an OOM event.
    pub fn wait(&mut self, timeout: Option<Duration>) -> Result<OomEvent> {
        loop {
            if let Inner::V2 { dir, seen, .. } = &mut self.inner {
                // Counters first: an OOM before the watch was armed must not be missed.
                if !dir.exists() {
                    return Ok(OomEvent::Gone);
                }
                let now = oom_count(dir)?;
                if now > *seen {
                    *seen = now;
                    return Ok(OomEvent::Oom);
                }
            }
            if !self.readable(timeout)? {
                return Ok(OomEvent::Timeout);
            }
            match &mut self.inner {
                Inner::V1 { efd, dir, .. } => {
                    efd.read()
                        .map_err(|e| Error::sys("read eventfd", e.into()))?;
                    // The kernel also signals the eventfd when the cgroup is removed.
                    if !dir.join("cgroup.event_control").exists() {
                        return Ok(OomEvent::Gone);
                    }
                    return Ok(OomEvent::Oom);
                }
                Inner::V2 { ino, .. } => {
                    // Drain; the counter check at the top of the loop decides.
                    let _ = ino.read_events();
                }
            }
        }
    }

    fn readable(&self, timeout: Option<Duration>) -> Result<bool> {
        let t = match timeout {
            None => PollTimeout::NONE,
            Some(d) => PollTimeout::try_from(d).unwrap_or(PollTimeout::MAX),
        };
        let mut fds = [PollFd::new(self.fd(), PollFlags::POLLIN)];
        loop {
            match poll(&mut fds, t) {
                Ok(n) => return Ok(n > 0),
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(Error::sys("poll", e.into())),
            }
        }
    }
}

fn oom_count(dir: &Path) -> Result<u64> {
    let ev = read_flat_keyed(dir, "memory.events")?;
    Ok(ev
        .get("oom")
        .copied()
        .unwrap_or(0)
        .max(ev.get("oom_kill").copied().unwrap_or(0)))
}
