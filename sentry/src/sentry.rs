//! The sentry: a supervisor process that answers the workload's intercepted syscalls.
//!
//! Threads: leader/follower. One worker at a time (the leader) waits in `Platform::receive`;
//! it answers the event it received itself, so the hot path has no hand-off between threads
//! and SYNC_WAKE_UP keeps the round trip on one CPU. A worker keeps the lead across cheap
//! emulations (uname, fstat of a held fd, exec checks) and passes it to a follower only before
//! something that may block — a gofer round trip (`Lead::release`, called by `Call::gofer`) —
//! starting a new worker when none is idle (up to `max_workers`). So one slow emulation never
//! stalls the workload's other threads, and the extra wakeup is paid only where a round trip to
//! the gofer already costs far more.
//!
//! Lock order: `Pool::state` is the only lock, never held across a blocking call.

use std::cell::Cell;
use std::io::Write;
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::Instant;

use gofer::client::Client;
use gofer::protocol::Stat;

use crate::emulate::{self, Call};
use crate::platform::{AccessError, Platform, SyscallEvent};
use crate::platforms::seccomp_notify::SeccompNotify;
use crate::strace;
use crate::Error;

/// How the sentry serves one container.
#[derive(Clone, Debug)]
pub struct SentryConfig {
    /// What `uname` reports as nodename.
    pub hostname: String,
    /// Log every emulated syscall, one line each (like `runsc --strace`).
    pub strace: bool,
    /// Where the container root appears in the sentry's own filesystem view (the rootfs path
    /// the gofer serves), used to turn `/proc/<tid>/cwd` and `/proc/<tid>/fd/<n>` link targets
    /// into container paths: targets under it are stripped of it; other targets are taken as
    /// already container-relative (the kernel prints them so when the workload's root is not
    /// reachable from the sentry's, e.g. a pivoted mount namespace). `None`: no stripping.
    pub root_path: Option<PathBuf>,
    /// Upper bound on worker threads.
    pub max_workers: usize,
}

impl Default for SentryConfig {
    fn default() -> Self {
        SentryConfig {
            hostname: "mantle".into(),
            strace: false,
            root_path: None,
            max_workers: 32,
        }
    }
}

/// The sentry for one container.
pub struct Sentry {
    pub(crate) cfg: SentryConfig,
    pub(crate) gofer: Client,
    /// The container root as the gofer sees it: exec and chdir check the workload's process
    /// root against its (dev, ino).
    pub(crate) root_stat: Stat,
    pub(crate) started: Instant,
    log: Mutex<Box<dyn Write + Send>>,
}

impl Sentry {
    /// Connect to the gofer (one Hello round trip) and get ready to serve.
    pub fn new(cfg: SentryConfig, gofer: Client) -> Result<Sentry, Error> {
        let session = gofer.hello()?;
        Ok(Sentry {
            cfg,
            gofer,
            root_stat: session.root_stat,
            started: Instant::now(),
            log: Mutex::new(Box::new(std::io::stderr())),
        })
    }

    /// Send strace lines somewhere other than stderr.
    pub fn with_log(self, w: Box<dyn Write + Send>) -> Sentry {
        *self.log.lock().unwrap_or_else(|p| p.into_inner()) = w;
        self
    }

    /// Serve a seccomp listener until every process holding the filter is gone.
    pub fn serve_seccomp(&self, listener: OwnedFd) -> Result<(), Error> {
        let p = SeccompNotify::new(listener);
        self.serve(&p)
    }

    /// Serve any platform until its `receive` returns `Ok(None)`.
    pub fn serve<P: Platform>(&self, p: &P) -> Result<(), Error> {
        let pool = Pool {
            state: Mutex::new(PoolState::default()),
            cv: Condvar::new(),
            workers: AtomicUsize::new(0),
            max: self.cfg.max_workers.max(1),
            error: Mutex::new(None),
        };
        std::thread::scope(|s| spawn_worker(s, self, p, &pool));
        match pool.error.into_inner().unwrap_or_else(|p| p.into_inner()) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Emulate one syscall and answer it.
    fn handle(&self, p: &dyn Platform, ev: SyscallEvent, lead: &Lead<'_>) {
        let mut call = Call::new(self, p, ev, lead);
        let outcome = emulate::dispatch(&mut call);
        let shown = call.finish(outcome);
        if self.cfg.strace {
            let line = strace::line(&ev, &call, &shown);
            let mut w = self.log.lock().unwrap_or_else(|p| p.into_inner());
            let _ = writeln!(w, "{line}");
        }
    }
}

#[derive(Default)]
struct PoolState {
    /// A worker is (or is about to be) in `receive`.
    leader: bool,
    /// Workers waiting to become leader.
    idle: usize,
    stopping: bool,
}

struct Pool {
    state: Mutex<PoolState>,
    cv: Condvar,
    workers: AtomicUsize,
    max: usize,
    error: Mutex<Option<Error>>,
}

impl Pool {
    fn lock(&self) -> std::sync::MutexGuard<'_, PoolState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Block until this worker may lead; false when the pool is stopping.
    fn take_lead(&self) -> bool {
        let mut st = self.lock();
        st.idle += 1;
        while st.leader && !st.stopping {
            st = self.cv.wait(st).unwrap_or_else(|p| p.into_inner());
        }
        st.idle -= 1;
        if st.stopping {
            return false;
        }
        st.leader = true;
        true
    }

    /// Give up the lead; returns whether a new worker should be started (none is idle).
    fn give_lead(&self) -> bool {
        let mut st = self.lock();
        st.leader = false;
        self.cv.notify_one();
        st.idle == 0 && !st.stopping
    }

    fn stop(&self) {
        self.lock().stopping = true;
        self.cv.notify_all();
    }
}

/// The lead as held by one worker thread; emulation code releases it before blocking.
pub(crate) struct Lead<'a> {
    held: Cell<bool>,
    release_hook: &'a dyn Fn(),
}

impl Lead<'_> {
    /// Let another worker receive while this one blocks. Idempotent.
    pub(crate) fn release(&self) {
        if self.held.replace(false) {
            (self.release_hook)();
        }
    }
}

fn spawn_worker<'scope, 'env, P: Platform>(
    s: &'scope std::thread::Scope<'scope, 'env>,
    sentry: &'scope Sentry,
    p: &'scope P,
    pool: &'scope Pool,
) {
    if pool.workers.fetch_add(1, Ordering::SeqCst) >= pool.max {
        pool.workers.fetch_sub(1, Ordering::SeqCst);
        return;
    }
    s.spawn(move || worker(s, sentry, p, pool));
}

fn worker<'scope, 'env, P: Platform>(
    s: &'scope std::thread::Scope<'scope, 'env>,
    sentry: &'scope Sentry,
    p: &'scope P,
    pool: &'scope Pool,
) {
    let hook = || {
        if pool.give_lead() {
            spawn_worker(s, sentry, p, pool);
        }
    };
    let lead = Lead {
        held: Cell::new(false),
        release_hook: &hook,
    };
    loop {
        if !lead.held.get() {
            if !pool.take_lead() {
                break;
            }
            lead.held.set(true);
        }
        let ev = match p.receive() {
            Ok(Some(ev)) => ev,
            Ok(None) => {
                pool.stop();
                break;
            }
            Err(AccessError::Gone) => continue,
            Err(e) => {
                pool.error
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .get_or_insert(Error::Sys {
                        context: "receive notification",
                        source: std::io::Error::other(e.to_string()),
                    });
                p.shutdown();
                pool.stop();
                break;
            }
        };
        sentry.handle(p, ev, &lead);
    }
    pool.workers.fetch_sub(1, Ordering::SeqCst);
}
