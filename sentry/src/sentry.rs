//! The sentry: a supervisor process that answers the workload's intercepted syscalls.
//!
//! Threads: a pool of workers, each blocking in `Platform::receive` and answering the event it
//! received itself (no hand-off on the hot path). When the last idle worker picks up an event a
//! new worker is started (up to `max_workers`), so one slow emulation (a gofer call on a busy
//! disk) never stalls the workload's other threads. For seccomp, one more thread watches for
//! the listener's hangup and ends the pool.

use std::io::Write;
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
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
    /// Where the container root appears in the sentry's own filesystem view, used to turn
    /// `/proc/<tid>/cwd` and `/proc/<tid>/fd/<n>` link targets into container paths. `None`
    /// when the root is not reachable from the sentry (a pivoted mount namespace): the kernel
    /// then already prints those links relative to the container root.
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
        std::thread::scope(|s| {
            s.spawn(|| p.watch_hangup());
            self.serve(&p)
        })
    }

    /// Serve any platform until its `receive` returns `Ok(None)`.
    pub fn serve<P: Platform>(&self, p: &P) -> Result<(), Error> {
        let idle = AtomicUsize::new(0);
        let workers = AtomicUsize::new(0);
        let first_error: Mutex<Option<Error>> = Mutex::new(None);
        std::thread::scope(|s| {
            let pool = Pool {
                s,
                idle: &idle,
                workers: &workers,
                max: self.cfg.max_workers.max(1),
            };
            // Two to start: one to take the next event while another is being emulated.
            pool.spawn(self, p, &first_error);
            pool.spawn(self, p, &first_error);
        });
        match first_error.into_inner().unwrap_or_else(|p| p.into_inner()) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn worker<'scope, 'env, P: Platform>(
        &'scope self,
        p: &'scope P,
        pool: &Pool<'scope, 'env>,
        err: &'scope Mutex<Option<Error>>,
    ) {
        loop {
            pool.idle.fetch_add(1, Ordering::SeqCst);
            let got = p.receive();
            let was_idle = pool.idle.fetch_sub(1, Ordering::SeqCst);
            let ev = match got {
                Ok(Some(ev)) => ev,
                Ok(None) => return,
                Err(AccessError::Gone) => continue,
                Err(e) => {
                    err.lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .get_or_insert(Error::Sys {
                            context: "receive notification",
                            source: std::io::Error::other(e.to_string()),
                        });
                    p.shutdown();
                    return;
                }
            };
            if was_idle == 1 {
                pool.spawn(self, p, err);
            }
            self.handle(p, ev);
        }
    }

    /// Emulate one syscall and answer it.
    fn handle(&self, p: &dyn Platform, ev: SyscallEvent) {
        let mut call = Call::new(self, p, ev);
        let outcome = emulate::dispatch(&mut call);
        let shown = call.finish(outcome);
        if self.cfg.strace {
            let line = strace::line(&ev, &call, &shown);
            let mut w = self.log.lock().unwrap_or_else(|p| p.into_inner());
            let _ = writeln!(w, "{line}");
        }
    }
}

struct Pool<'scope, 'env> {
    s: &'scope std::thread::Scope<'scope, 'env>,
    idle: &'scope AtomicUsize,
    workers: &'scope AtomicUsize,
    max: usize,
}

impl<'scope, 'env> Pool<'scope, 'env> {
    fn spawn<P: Platform>(
        &self,
        sentry: &'scope Sentry,
        p: &'scope P,
        err: &'scope Mutex<Option<Error>>,
    ) {
        if self.workers.fetch_add(1, Ordering::SeqCst) >= self.max {
            self.workers.fetch_sub(1, Ordering::SeqCst);
            return;
        }
        let pool = Pool {
            s: self.s,
            idle: self.idle,
            workers: self.workers,
            max: self.max,
        };
        self.s.spawn(move || sentry.worker(p, &pool, err));
    }
}
