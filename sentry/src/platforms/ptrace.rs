//! The ptrace platform: the same syscall table and emulations as seccomp user notification,
//! intercepted with ptrace instead.
//!
//! How it works. Before `execve` the workload installs the table's filter with every "emulate"
//! row turned into SECCOMP_RET_TRACE (`TraceProgram`; pass rows ALLOW, deny rows as on the
//! seccomp platform), tells the sentry it is ready and waits (`prepare_tracee`). The sentry
//! attaches with PTRACE_SEIZE (`Ptrace::seize`) with TRACESECCOMP, fork/vfork/clone/exec
//! following and EXITKILL. Only emulated syscalls stop the tracee (a PTRACE_EVENT_SECCOMP
//! stop); everything else runs at native speed: there is no PTRACE_SYSCALL on every call.
//!
//! * `receive`: a seccomp stop's registers (PTRACE_GETREGS) become a `SyscallEvent`.
//! * `reply`: Value/Error set `orig_rax = -1` (the kernel skips the call) and `rax` to the
//!   result; Continue resumes unchanged (the kernel re-runs the filter on the same call, which
//!   allows it the second time round).
//! * memory: process_vm_readv/writev, /proc/<tid>/mem when those are refused.
//! * fd injection: the tracee is made to run syscalls (`inject`): it creates a socketpair, the
//!   sentry takes one end with pidfd_getfd and sends the fd over it, the tracee `recvmsg`s it
//!   from the other end and closes both ends. See `inject` for the details and the argument.
//!
//! Threads. The kernel ties a tracee to the *thread* that attached it, and only that thread may
//! issue ptrace requests for it. So one tracer thread owns every tracee: it waits for stops,
//! publishes events and applies the answers the sentry's workers queue for it (`Command`).
//! Workers call `receive` (a condvar on the event queue) and read memory directly. The tracer
//! sleeps in `sigtimedwait` for SIGCHLD (a tracee stopped) or SIGUSR2 (a command was queued);
//! both are blocked in that thread so neither can be lost between checking and sleeping.
//! SIGCHLD is process-directed, so another sentry thread may take it first: a SIGCHLD handler
//! (installed only where SIGCHLD has its default disposition) forwards it to every tracer, and
//! a 50 ms timeout backs that up. The sentry process must not ignore SIGCHLD, must not set
//! SA_NOCLDSTOP, and no other thread may wait for arbitrary children (`waitpid(-1)`), which
//! would consume ptrace stops; the tracer itself waits with __WNOTHREAD, so it never reaps the
//! sentry's other children.
//!
//! Exit status. When a tracee exits the tracer waits for it first; because the tracer is not
//! the tracee's parent, the kernel then detaches it and notifies the real parent (conmon,
//! `mantle run`), which sees the exit status or signal exactly as without tracing. Group stops
//! (SIGSTOP, SIGTSTP, ...) are left in place with PTRACE_LISTEN so the real parent sees them and
//! SIGCONT resumes them; signal-delivery stops re-inject the signal unchanged.
//!
//! Escapes. `ptrace`, `process_vm_*`, `pidfd_getfd`, `seccomp` are denied by the table, so the
//! workload can neither trace, detach from, nor read the sentry; if the tracer thread dies,
//! EXITKILL kills every tracee. A child cloned with CLONE_UNTRACED is not followed, but a
//! RET_TRACE call with no tracer fails with ENOSYS, so such a child can only make pass-through
//! calls: it fails closed.
//!
//! Visible differences from the seccomp platform: /proc/<pid>/status shows a TracerPid and a
//! group-stopped task shows state `t` instead of `T`; an emulated open costs four injected
//! calls, which pass through the workload's other filters too (an OCI profile denying
//! socketpair/recvmsg/close would make opens fail); a SIGSTOP group stop that starts while a
//! thread is mid-injection (microseconds) is missed by that thread.
//!
//! Use (runtime). In the workload, right before `execve` (after any OCI filter):
//! `prepare_tracee(sock)` (or `TraceProgram::new()` before forking and
//! `prepare_tracee_with(&prog, fd)` after); then close `sock` and `execve`. In the sentry
//! process, which must not be the workload's parent (the parent would otherwise never see the
//! exit: the tracer's wait would reap it): `let p = Ptrace::seize(pid, sock)?;` optionally
//! `confine::confine_with(CONFINE_EXTRA)?`, then `Sentry::serve(&p)`. `launch` shows all of it
//! (MANTLE_SENTRY_PLATFORM=ptrace selects it in `crate::launch`).
//!
//! Locks: `Shared::st` is the only lock, never held across a ptrace request or a wait.

mod attach;
mod inject;
pub mod launch;
mod sys;
mod tracer;

use std::collections::{HashMap, VecDeque};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

pub use attach::{
    install_trace_filter, prepare_tracee, prepare_tracee_with, TraceProgram, RET_TRACE,
};

use crate::platform::{AccessError, FdInjection, Platform, Reply, SyscallEvent};
use crate::Error;

/// Syscalls the tracer makes beyond `confine::ALLOWED`, for a sentry that confines itself
/// *after* `Ptrace::seize` (seize also reads /proc/<pid>/task and talks on the handshake
/// socket; do that first): `confine::confine_with(CONFINE_EXTRA)`.
pub const CONFINE_EXTRA: &[&str] = &[
    "ptrace",
    "wait4",
    "waitid",
    "rt_sigtimedwait",
    "pidfd_open",
    "pidfd_getfd",
    "pwrite64",
    // The handshake with a workload seized after confinement (`exec` into the container):
    // libc's send()/recv() are sendto/recvfrom.
    "sendto",
    "recvfrom",
];

/// Where a tracee with an outstanding event is stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum At {
    /// The PTRACE_EVENT_SECCOMP stop of the intercepted call.
    Seccomp,
    /// The syscall-exit stop of a syscall the sentry injected (after fd injection).
    SyscallExit,
}

/// An event delivered (or queued) and not answered yet.
struct Pending {
    id: u64,
    /// Registers at the seccomp stop, untouched: restored when the event is answered.
    regs: sys::Regs,
    at: At,
}

/// Work for the tracer thread.
enum Command {
    Reply {
        tid: i32,
        id: u64,
        reply: Reply,
    },
    Inject {
        tid: i32,
        id: u64,
        fd: RawFd,
        cloexec: bool,
        answer: bool,
        done: SyncSender<Result<i32, AccessError>>,
    },
}

#[derive(Default)]
struct State {
    events: VecDeque<SyscallEvent>,
    pending: HashMap<i32, Pending>,
    commands: Vec<Command>,
    /// No tracee is left, or the tracer thread ended.
    finished: bool,
    stopping: bool,
}

struct Shared {
    st: Mutex<State>,
    events: Condvar,
    tracer_tid: AtomicI32,
    next_id: AtomicU64,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.st.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Interrupt the tracer's sleep.
    fn wake_tracer(&self) {
        let t = self.tracer_tid.load(Ordering::SeqCst);
        if t > 0 {
            // SAFETY: thread-directed signal to our own tracer thread; SIGUSR2 is blocked there
            // and collected by sigtimedwait.
            unsafe { libc::syscall(libc::SYS_tgkill, libc::getpid(), t, libc::SIGUSR2) };
        }
    }

    fn push_command(&self, c: Command) {
        let was_empty = {
            let mut st = self.lock();
            let e = st.commands.is_empty();
            st.commands.push(c);
            e
        };
        // The tracer drains the whole queue after each wakeup: one signal per batch is enough.
        if was_empty {
            self.wake_tracer();
        }
    }

    fn is_pending(&self, ev: &SyscallEvent) -> bool {
        self.lock()
            .pending
            .get(&ev.tid)
            .is_some_and(|p| p.id == ev.id)
    }
}

/// A traced workload: every process and thread descended from the seized one.
pub struct Ptrace {
    shared: Arc<Shared>,
    tracer: Mutex<Option<JoinHandle<()>>>,
}

impl Ptrace {
    /// Attach to the workload `pid` (a process in the caller's pid namespace, not necessarily
    /// our child), which is blocked in `prepare_tracee` on the other end of `sock`.
    ///
    /// Protocol: read the tracee's "ready" byte (its filter is installed); check that the
    /// sender is `pid` when the kernel attached credentials; PTRACE_SEIZE every thread of `pid`
    /// from a new tracer thread; write the "seized" byte. Needs CAP_SYS_PTRACE over `pid`
    /// (root) and a Yama ptrace_scope below 3.
    pub fn seize(pid: i32, sock: BorrowedFd<'_>) -> Result<Ptrace, Error> {
        if pid <= 0 {
            return Err(Error::Invalid(format!("ptrace: bad workload pid {pid}")));
        }
        attach::check_yama()?;
        let sender = attach::recv_ready(sock)?;
        if let Some(s) = sender {
            if s != pid {
                return Err(Error::Invalid(format!(
                    "ptrace: the ready message came from pid {s}, not from the workload {pid}"
                )));
            }
        }
        let shared = Arc::new(Shared {
            st: Mutex::new(State::default()),
            events: Condvar::new(),
            tracer_tid: AtomicI32::new(0),
            next_id: AtomicU64::new(1),
        });
        let (tx, rx) = sync_channel::<io::Result<()>>(1);
        let sh = shared.clone();
        let handle = std::thread::Builder::new()
            .name("sentry-tracer".into())
            .spawn(move || tracer::Tracer::start(sh, pid, tx))
            .map_err(Error::sys("spawn tracer thread"))?;
        let seized = rx
            .recv()
            .unwrap_or_else(|_| Err(io::Error::other("tracer thread died")));
        if let Err(e) = seized {
            let _ = handle.join();
            return Err(Error::Sys {
                context: "PTRACE_SEIZE workload",
                source: e,
            });
        }
        attach::send_seized(sock)?;
        Ok(Ptrace {
            shared,
            tracer: Mutex::new(Some(handle)),
        })
    }

    /// The tracer thread's id (for tests and diagnostics).
    pub fn tracer_tid(&self) -> i32 {
        self.shared.tracer_tid.load(Ordering::SeqCst)
    }

    fn ask_inject(
        &self,
        ev: &SyscallEvent,
        fd: BorrowedFd<'_>,
        cloexec: bool,
        answer: bool,
    ) -> Result<i32, AccessError> {
        if !self.shared.is_pending(ev) {
            return Err(AccessError::Gone);
        }
        let (done, rx) = sync_channel(1);
        // The fd stays valid: we block below until the tracer has used it.
        self.shared.push_command(Command::Inject {
            tid: ev.tid,
            id: ev.id,
            fd: fd.as_raw_fd(),
            cloexec,
            answer,
            done,
        });
        // A dropped sender means the tracer ended (shutdown): the tracee is being killed.
        rx.recv().unwrap_or(Err(AccessError::Gone))
    }
}

impl Drop for Ptrace {
    fn drop(&mut self) {
        self.shutdown();
        let h = self.tracer.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(h) = h {
            let _ = h.join();
        }
    }
}

fn access_err(e: io::Error) -> AccessError {
    match e.raw_os_error() {
        Some(libc::EFAULT) | Some(libc::EIO) => AccessError::Fault,
        Some(libc::ESRCH) | Some(libc::ENOENT) => AccessError::Gone,
        _ => AccessError::Io(e),
    }
}

impl Platform for Ptrace {
    fn name(&self) -> &'static str {
        "ptrace"
    }

    fn receive(&self) -> Result<Option<SyscallEvent>, AccessError> {
        let mut st = self.shared.lock();
        loop {
            if st.stopping {
                return Ok(None);
            }
            while let Some(ev) = st.events.pop_front() {
                // Events whose thread died before anyone took them are dropped here.
                if st.pending.get(&ev.tid).is_some_and(|p| p.id == ev.id) {
                    return Ok(Some(ev));
                }
            }
            if st.finished {
                return Ok(None);
            }
            st = self
                .shared
                .events
                .wait(st)
                .unwrap_or_else(|p| p.into_inner());
        }
    }

    fn reply(&self, ev: &SyscallEvent, reply: Reply) -> Result<bool, AccessError> {
        if !self.shared.is_pending(ev) {
            return Ok(false);
        }
        // Asynchronous: the tracer applies it (and drops it if the thread died meanwhile).
        self.shared.push_command(Command::Reply {
            tid: ev.tid,
            id: ev.id,
            reply,
        });
        Ok(true)
    }

    fn is_pending(&self, ev: &SyscallEvent) -> bool {
        self.shared.is_pending(ev)
    }

    fn read_memory(
        &self,
        ev: &SyscallEvent,
        addr: u64,
        buf: &mut [u8],
    ) -> Result<usize, AccessError> {
        let res = sys::read_mem(ev.tid, addr, buf).map_err(access_err);
        // TOCTOU: the tid could have died and been reused. The tracer forgets an event before
        // it reaps the thread (waitid WNOWAIT first), and a tid is free for reuse only after
        // that reap, so "still pending" proves we read the thread that is stopped in this call.
        if !self.shared.is_pending(ev) {
            return Err(AccessError::Gone);
        }
        res
    }

    fn write_memory(&self, ev: &SyscallEvent, addr: u64, data: &[u8]) -> Result<(), AccessError> {
        if !self.shared.is_pending(ev) {
            return Err(AccessError::Gone);
        }
        let n = sys::write_mem(ev.tid, addr, data).map_err(access_err)?;
        if n < data.len() {
            return Err(AccessError::Fault);
        }
        Ok(())
    }

    fn shutdown(&self) {
        self.shared.lock().stopping = true;
        self.shared.events.notify_all();
        self.shared.wake_tracer();
    }

    fn fd_injection(&self) -> Option<&dyn FdInjection> {
        Some(self)
    }
}

impl FdInjection for Ptrace {
    fn inject_fd(
        &self,
        ev: &SyscallEvent,
        fd: BorrowedFd<'_>,
        cloexec: bool,
    ) -> Result<i32, AccessError> {
        self.ask_inject(ev, fd, cloexec, false)
    }

    fn reply_with_fd(
        &self,
        ev: &SyscallEvent,
        fd: BorrowedFd<'_>,
        cloexec: bool,
    ) -> Result<i32, AccessError> {
        self.ask_inject(ev, fd, cloexec, true)
    }
}
