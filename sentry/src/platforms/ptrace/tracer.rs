//! The tracer thread: waits for tracee stops, turns seccomp stops into events, applies the
//! answers the workers queue, and resumes every other kind of stop the way the kernel would
//! have without a tracer.

use std::collections::HashMap;
use std::io;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::mpsc::SyncSender;
use std::sync::{Arc, Once};

use super::sys::{self, Waited};
use super::{At, Command, Pending, Shared};
use crate::bpf::AUDIT_ARCH_X86_64;
use crate::platform::{Reply, SyscallEvent};

/// How long the tracer sleeps at most when no signal arrives (a lost SIGCHLD costs this much).
const IDLE_TIMEOUT_NS: i64 = 50_000_000;

pub(super) struct Tracer {
    pub(super) shared: Arc<Shared>,
    pub(super) tid: i32,
    /// Threads resumed to re-issue their own syscall after an injection answered Continue:
    /// (nr, rip) of the call whose next seccomp stop is let through without a new event.
    pub(super) reissue: HashMap<i32, (u64, u64)>,
    /// Signals that arrived while a thread ran injected syscalls, re-sent when it resumes.
    pub(super) deferred: HashMap<i32, i32>,
}

impl Tracer {
    /// Thread body: seize `pid`, report the result on `ready`, then serve until no tracee is
    /// left or the platform is shut down. Returning ends the thread, and with it (EXITKILL)
    /// every tracee still attached.
    pub(super) fn start(shared: Arc<Shared>, pid: i32, ready: SyncSender<io::Result<()>>) {
        // SAFETY: gettid has no preconditions.
        let tid = unsafe { libc::gettid() };
        block_wakeup_signals();
        install_sigchld_forwarder();
        shared.tracer_tid.store(tid, Ordering::SeqCst);
        let slot = register(tid);
        let mut t = Tracer {
            shared,
            tid,
            reissue: HashMap::new(),
            deferred: HashMap::new(),
        };
        let r = seize_all(pid);
        let ok = r.is_ok();
        let _ = ready.send(r);
        if ok {
            t.run();
        }
        deregister(slot);
        t.shared.tracer_tid.store(0, Ordering::SeqCst);
        t.finish();
    }

    fn run(&mut self) {
        loop {
            if self.shared.lock().stopping {
                return;
            }
            match self.reap() {
                Ok(true) => {}
                Ok(false) => return,
                Err(_) => return,
            }
            self.run_commands();
            if self.shared.lock().stopping {
                return;
            }
            self.sleep();
        }
    }

    /// Mark the platform finished and release everyone waiting on it.
    fn finish(&mut self) {
        let cmds = {
            let mut st = self.shared.lock();
            st.finished = true;
            st.events.clear();
            st.pending.clear();
            std::mem::take(&mut st.commands)
        };
        // Dropping Inject commands drops their reply channels: the waiting workers get Gone.
        drop(cmds);
        self.shared.events.notify_all();
    }

    /// Handle every waitable tracee state. `Ok(false)` once no tracee is left.
    fn reap(&mut self) -> io::Result<bool> {
        loop {
            match sys::peek(None, false)? {
                Waited::Nothing => return Ok(true),
                Waited::NoChildren => return Ok(false),
                Waited::Exited(tid) => {
                    // Forget before reaping: the tid can be reused only after the reap.
                    self.forget(tid);
                    // ECHILD: gone already (another waiter in the process; see the module
                    // comment). Nothing is lost by moving on.
                    let _ = sys::consume(tid);
                }
                Waited::Stopped(tid) => {
                    // A thread stopped in an outstanding seccomp stop makes no new stop until
                    // we resume it; a new state for its tid means the event is stale (the
                    // thread was killed, or its tid was taken over by an exec'ing thread).
                    self.forget(tid);
                    let st = sys::consume(tid).unwrap_or(0);
                    if libc::WIFSTOPPED(st) {
                        self.handle_stop(tid, st);
                    }
                }
            }
        }
    }

    pub(super) fn forget(&mut self, tid: i32) {
        self.shared.lock().pending.remove(&tid);
    }

    pub(super) fn handle_stop(&mut self, tid: i32, status: i32) {
        let sig = libc::WSTOPSIG(status);
        let event = (status >> 16) & 0xff;
        match event {
            sys::EVENT_SECCOMP => self.on_seccomp(tid),
            sys::EVENT_EXEC => {
                // A non-leader thread that execs takes over the leader's tid; the old leader's
                // outstanding event (if any) is void.
                if let Ok(former) = sys::eventmsg(tid) {
                    self.forget(former as i32);
                    self.reissue.remove(&(former as i32));
                }
                self.reissue.remove(&tid);
                resume(tid, 0);
            }
            sys::EVENT_STOP => {
                if is_stop_signal(sig) {
                    // Group stop: stay stopped (the real parent sees it, SIGCONT ends it) but
                    // keep reporting to us. LISTEN fails if this is not a group stop after all.
                    if sys::listen(tid).is_err() {
                        resume(tid, 0);
                    }
                } else {
                    // Initial stop of an auto-attached task, or the end of a LISTEN.
                    resume(tid, 0);
                }
            }
            sys::EVENT_FORK | sys::EVENT_VFORK | sys::EVENT_CLONE => resume(tid, 0),
            0 if sig == sys::SYSCALL_STOP_SIG => resume(tid, 0),
            // Signal-delivery stop: deliver the signal unchanged.
            0 => resume(tid, sig),
            _ => resume(tid, 0),
        }
    }

    fn on_seccomp(&mut self, tid: i32) {
        let regs = match sys::getregs(tid) {
            Ok(r) => r,
            Err(_) => return, // killed meanwhile; its exit is reaped next
        };
        if let Some((nr, rip)) = self.reissue.remove(&tid) {
            if regs.orig_rax == nr && regs.rip == rip {
                resume(tid, 0);
                return;
            }
        }
        let id = self.shared.next_id.fetch_add(1, Ordering::Relaxed);
        let ev = SyscallEvent {
            id,
            tid,
            nr: regs.orig_rax as i64,
            // The filter kills every other architecture before RET_TRACE.
            arch: AUDIT_ARCH_X86_64,
            ip: regs.rip,
            args: [regs.rdi, regs.rsi, regs.rdx, regs.r10, regs.r8, regs.r9],
        };
        {
            let mut st = self.shared.lock();
            st.pending.insert(
                tid,
                Pending {
                    id,
                    regs,
                    at: At::Seccomp,
                },
            );
            st.events.push_back(ev);
        }
        self.shared.events.notify_one();
    }

    fn run_commands(&mut self) {
        let cmds = std::mem::take(&mut self.shared.lock().commands);
        for c in cmds {
            match c {
                Command::Reply { tid, id, reply } => self.apply_reply(tid, id, reply),
                Command::Inject {
                    tid,
                    id,
                    fd,
                    cloexec,
                    answer,
                    done,
                } => {
                    let r = self.inject(tid, id, fd, cloexec, answer);
                    let _ = done.send(r);
                }
            }
        }
    }

    /// Take the outstanding event (tid, id) if the thread is still in the stop it was in.
    pub(super) fn take_pending(&mut self, tid: i32, id: u64) -> Option<Pending> {
        let p = {
            let mut st = self.shared.lock();
            match st.pending.get(&tid) {
                Some(p) if p.id == id => st.pending.remove(&tid)?,
                _ => return None,
            }
        };
        // Belt and braces against a tid taken over by an exec whose EXEC stop we have not
        // reaped yet: registers are only ever written into the stop they were read from.
        let want = match p.at {
            At::Seccomp => sys::SI_SECCOMP_STOP,
            At::SyscallExit => sys::SYSCALL_STOP_SIG,
        };
        match sys::stop_code(tid) {
            Ok(c) if c == want => Some(p),
            _ => None,
        }
    }

    fn apply_reply(&mut self, tid: i32, id: u64, reply: Reply) {
        let p = match self.take_pending(tid, id) {
            Some(p) => p,
            None => return,
        };
        self.answer(tid, &p, reply);
    }

    /// Resume a thread from its outstanding stop with `reply`.
    pub(super) fn answer(&mut self, tid: i32, p: &Pending, reply: Reply) {
        let sig = self.deferred.remove(&tid).unwrap_or(0);
        let mut r = p.regs;
        match (reply, p.at) {
            (Reply::Continue, At::Seccomp) => {}
            (Reply::Continue, At::SyscallExit) => {
                // The original call was replaced by injected ones: run it again from its
                // `syscall` instruction (2 bytes), and let its next seccomp stop through.
                r.rip = p.regs.rip.wrapping_sub(2);
                r.rax = p.regs.orig_rax;
                self.reissue.insert(tid, (p.regs.orig_rax, p.regs.rip));
                if sys::setregs(tid, &r).is_err() {
                    return;
                }
            }
            (Reply::Value(v), _) => {
                if set_result(tid, &mut r, v).is_err() {
                    return;
                }
            }
            (Reply::Error(e), _) => {
                if set_result(tid, &mut r, -(e.abs() as i64)).is_err() {
                    return;
                }
            }
        }
        resume(tid, sig);
    }

    /// Sleep until a SIGCHLD (tracee state change), a SIGUSR2 (command queued) or the timeout.
    fn sleep(&self) {
        let set = wakeup_set();
        let ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: IDLE_TIMEOUT_NS,
        };
        // SAFETY: `set` and `ts` are valid for the call; a null siginfo pointer is allowed.
        let sig = unsafe { libc::sigtimedwait(&set, std::ptr::null_mut(), &ts) };
        if sig == libc::SIGCHLD {
            // It may have been meant for another tracer in this process (tests run several).
            poke_others(self.tid);
        }
    }
}

/// Skip the call (orig_rax = -1) and make it return `v` (a value, or -errno).
fn set_result(tid: i32, r: &mut sys::Regs, v: i64) -> io::Result<()> {
    r.orig_rax = u64::MAX;
    r.rax = v as u64;
    sys::setregs(tid, r)
}

/// Resume, ignoring a thread that died meanwhile (its exit is reaped next).
pub(super) fn resume(tid: i32, sig: i32) {
    let _ = sys::cont(tid, sig);
}

fn is_stop_signal(sig: i32) -> bool {
    matches!(
        sig,
        libc::SIGSTOP | libc::SIGTSTP | libc::SIGTTIN | libc::SIGTTOU
    )
}

/// Seize every thread of `pid` (normally one: the workload just before execve).
fn seize_all(pid: i32) -> io::Result<()> {
    sys::seize(pid)?;
    if let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for e in dir.flatten() {
            if let Some(t) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) {
                if t != pid {
                    // A thread that exits meanwhile is fine (ESRCH).
                    let _ = sys::seize(t);
                }
            }
        }
    }
    Ok(())
}

fn wakeup_set() -> libc::sigset_t {
    // SAFETY: sigset_t is plain data; sigemptyset/sigaddset initialise it.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGCHLD);
        libc::sigaddset(&mut set, libc::SIGUSR2);
        set
    }
}

/// Block SIGCHLD and SIGUSR2 in the calling (tracer) thread: they are collected by
/// sigtimedwait, so one arriving between a check and the sleep is not lost.
fn block_wakeup_signals() {
    let set = wakeup_set();
    // SAFETY: valid set; affects only the calling thread.
    unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
}

// Tracer threads of this process, for forwarding a SIGCHLD another thread received.
const SLOTS: usize = 64;
static TRACERS: [AtomicI32; SLOTS] = [const { AtomicI32::new(0) }; SLOTS];

fn register(tid: i32) -> Option<usize> {
    (0..SLOTS).find(|&i| {
        TRACERS[i]
            .compare_exchange(0, tid, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
    })
}

fn deregister(slot: Option<usize>) {
    if let Some(i) = slot {
        TRACERS[i].store(0, Ordering::SeqCst);
    }
}

/// Wake every tracer thread except `me` (async-signal-safe: atomics and raw syscalls only).
fn poke_others(me: i32) {
    // SAFETY: getpid has no preconditions.
    let pid = unsafe { libc::getpid() };
    for s in TRACERS.iter() {
        let t = s.load(Ordering::SeqCst);
        if t != 0 && t != me {
            // SAFETY: thread-directed signal within our own process.
            unsafe { libc::syscall(libc::SYS_tgkill, pid, t, libc::SIGUSR2) };
        }
    }
}

extern "C" fn forward_sigchld(_: libc::c_int) {
    // SAFETY: reading errno's location and restoring it is async-signal-safe.
    let saved = unsafe { *libc::__errno_location() };
    poke_others(0);
    // SAFETY: as above.
    unsafe { *libc::__errno_location() = saved };
}

extern "C" fn ignore_wakeup(_: libc::c_int) {}

/// Where SIGCHLD has its default disposition, handle it by forwarding it to the tracer
/// threads (SA_RESTART: other threads' syscalls are not disturbed). An existing handler or
/// SIG_IGN is left alone; the tracer then relies on its timeout when it misses a SIGCHLD.
/// Also give SIGUSR2 a no-op handler where it has the default (terminate) action: a wakeup
/// aimed at a tracer thread that just ended could land on a thread that reused its tid.
fn install_sigchld_forwarder() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        install_if_default(libc::SIGUSR2, ignore_wakeup as *const () as usize);
        install_if_default(libc::SIGCHLD, forward_sigchld as *const () as usize);
    });
}

fn install_if_default(sig: libc::c_int, handler: usize) {
    // SAFETY: sigaction is plain data; read the current action (null new action), then install
    // an async-signal-safe handler only where the default action is in place.
    unsafe {
        let mut old: libc::sigaction = std::mem::zeroed();
        if libc::sigaction(sig, std::ptr::null(), &mut old) != 0
            || old.sa_sigaction != libc::SIG_DFL
        {
            return;
        }
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = handler;
        sa.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut sa.sa_mask);
        libc::sigaction(sig, &sa, std::ptr::null_mut());
    }
}
