//! The standalone launcher on the ptrace platform (tests, benchmarks): gofer + workload +
//! sentry, like `crate::launch`, but traced.
//!
//! Process tree, chosen so that the sentry is *not* the workload's parent, as in the runtime
//! (where conmon or `mantle run` is):
//!
//! ```text
//!   launcher (sentry: tracer thread + workers)
//!   ├── gofer
//!   └── parent  — waits for the workload like conmon would, reports every status it sees
//!       └── workload  — chroot, prepare_tracee, execve
//! ```
//!
//! `parent` writes the workload's pid, then every wait status it observes (stops and
//! continues included, WUNTRACED|WCONTINUED), into a pipe. The exit status the launcher returns
//! is the one the real parent saw, which checks that tracing does not change it.

use std::ffi::CString;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::ExitStatus;

use gofer::client::Client;

use super::{prepare_tracee_with, Ptrace, TraceProgram};
use crate::launch::LaunchOptions;
use crate::{Error, Sentry, SentryConfig};

/// The environment variable that selects the platform for `crate::launch::run_command*`
/// (`ptrace`; anything else or unset: seccomp user notification).
pub const PLATFORM_ENV: &str = "MANTLE_SENTRY_PLATFORM";

/// Does the environment ask `crate::launch` for the ptrace platform?
pub fn selected() -> bool {
    std::env::var(PLATFORM_ENV).is_ok_and(|v| v == "ptrace")
}

/// What the workload's real parent observed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Observed {
    /// The workload's pid (in the launcher's pid namespace).
    pub pid: i32,
    /// Every raw wait status the parent got, in order; the last is the exit.
    pub statuses: Vec<i32>,
}

impl Observed {
    /// The final (exit) status.
    pub fn exit_status(&self) -> ExitStatus {
        ExitStatus::from_raw(self.statuses.last().copied().unwrap_or(0))
    }
}

/// Run `argv` under the sentry on the ptrace platform; returns the exit status its parent saw.
pub fn run_command(argv: &[&str], rootfs: &Path, cfg: SentryConfig) -> Result<ExitStatus, Error> {
    run_command_with_log(argv, rootfs, cfg, None)
}

/// `run_command` with strace lines sent to `log`.
pub fn run_command_with_log(
    argv: &[&str],
    rootfs: &Path,
    cfg: SentryConfig,
    log: Option<Box<dyn std::io::Write + Send>>,
) -> Result<ExitStatus, Error> {
    run_command_opts(
        argv,
        rootfs,
        cfg,
        LaunchOptions {
            log,
            ..Default::default()
        },
    )
}

/// `crate::launch::run_command_opts` on the ptrace platform.
pub fn run_command_opts(
    argv: &[&str],
    rootfs: &Path,
    cfg: SentryConfig,
    opts: LaunchOptions,
) -> Result<ExitStatus, Error> {
    run_observed(argv, rootfs, cfg, opts, |_| {}).map(|o| o.exit_status())
}

/// The general form: `started` is called with the workload's pid once it is seized (before it
/// runs `execve`), from the serving thread; it must not block (spawn a thread to signal it).
pub fn run_observed(
    argv: &[&str],
    rootfs: &Path,
    mut cfg: SentryConfig,
    opts: LaunchOptions,
    started: impl FnOnce(i32),
) -> Result<Observed, Error> {
    let log = opts.log;
    let w = crate::launch::Workload::prepare(argv, rootfs, &mut cfg, opts.mount_proc)?;
    let (c_root, c_proc) = (&w.c_root, &w.c_proc);
    let (argv_p, env_p) = w.pointers();
    let prog = TraceProgram::new()?;

    let root_fd = open_dir(c_root)?;
    let (gofer_client, gofer_server) =
        gofer::wire::socketpair().map_err(Error::sys("gofer socketpair"))?;
    let gofer_pid = crate::launch::fork_gofer(gofer_server, root_fd, gofer_client.as_raw_fd())?;

    let (sentry_sock, child_sock) = pair(libc::SOCK_SEQPACKET)?;
    let (report_r, report_w) = pipe()?;
    // SAFETY: the child runs only `parent_child`, which makes raw syscalls and never returns.
    let parent = unsafe { libc::fork() };
    if parent < 0 {
        return Err(Error::last("fork workload parent"));
    }
    if parent == 0 {
        parent_child(
            c_root,
            c_proc.as_ref(),
            &prog,
            child_sock.as_raw_fd(),
            report_w.as_raw_fd(),
            &argv_p,
            &env_p,
        );
    }
    drop(child_sock);
    drop(report_w);

    let mut report = std::fs::File::from(report_r);
    let confine = opts.confine_sentry;
    let served = (|| {
        let pid = read_i32(&mut report)?
            .ok_or_else(|| Error::Invalid("the workload's parent died before forking it".into()))?;
        if confine {
            serve_confined(pid, sentry_sock, gofer_client, cfg, log, started)?;
            return Ok::<i32, Error>(pid);
        }
        let tracer = Ptrace::seize(pid, std::os::fd::AsFd::as_fd(&sentry_sock))?;
        drop(sentry_sock);
        started(pid);
        let mut sentry = Sentry::new(cfg, Client::new(gofer_client))?;
        if let Some(w) = log {
            sentry = sentry.with_log(w);
        }
        sentry.serve(&tracer)?;
        Ok::<i32, Error>(pid)
    })();
    if served.is_err() {
        // SAFETY: signalling our own child; the workload dies with it (PDEATHSIG, EXITKILL).
        unsafe { libc::kill(parent, libc::SIGKILL) };
    }
    let mut statuses = Vec::new();
    while let Ok(Some(s)) = read_i32(&mut report) {
        statuses.push(s);
    }
    for p in [parent, gofer_pid] {
        let mut st = 0;
        // SAFETY: waiting for our own children.
        unsafe { libc::waitpid(p, &mut st, 0) };
    }
    let pid = served?;
    if statuses.is_empty() {
        return Err(Error::Invalid(
            "the workload's parent reported no exit status".into(),
        ));
    }
    Ok(Observed { pid, statuses })
}

/// Serve from a forked child that seizes the workload, confines itself
/// (`confine::confine_with(CONFINE_EXTRA)`) and serves, as the runtime's sentry process would;
/// its strace lines come back through a pipe. The workload then has three distinct processes
/// around it: its parent, its tracer and the launcher.
fn serve_confined(
    pid: i32,
    sock: OwnedFd,
    gofer_client: OwnedFd,
    cfg: SentryConfig,
    log: Option<Box<dyn std::io::Write + Send>>,
    started: impl FnOnce(i32),
) -> Result<(), Error> {
    let (rd, wr) = pipe()?;
    // SAFETY: the child seizes, confines itself and serves, then _exits.
    let child = unsafe { libc::fork() };
    if child < 0 {
        return Err(Error::last("fork sentry"));
    }
    if child == 0 {
        drop(rd);
        close_fds_except(&[sock.as_raw_fd(), gofer_client.as_raw_fd(), wr.as_raw_fd()]);
        let code = (|| -> Result<(), Error> {
            let tracer = Ptrace::seize(pid, std::os::fd::AsFd::as_fd(&sock))?;
            drop(sock);
            crate::confine::confine_with(super::CONFINE_EXTRA)?;
            let s = Sentry::new(cfg, Client::new(gofer_client))?
                .with_log(Box::new(std::fs::File::from(wr)));
            s.serve(&tracer)
        })()
        .map_or(1, |_| 0);
        // SAFETY: end the child without running the parent's atexit handlers.
        unsafe { libc::_exit(code) };
    }
    drop((wr, sock, gofer_client));
    started(pid);
    let mut buf = Vec::new();
    let _ = std::fs::File::from(rd).read_to_end(&mut buf);
    let _ = match log {
        Some(mut w) => w.write_all(&buf),
        None => std::io::stderr().write_all(&buf),
    };
    let mut st = 0;
    // SAFETY: waiting for our own child.
    unsafe { libc::waitpid(child, &mut st, 0) };
    if !libc::WIFEXITED(st) || libc::WEXITSTATUS(st) != 0 {
        return Err(Error::Invalid(format!(
            "the confined sentry failed (wait status {st:#x})"
        )));
    }
    Ok(())
}

/// Close every fd but `keep` (stray fds of the launcher would keep peers from seeing hangups).
fn close_fds_except(keep: &[i32]) {
    let mut k = keep.to_vec();
    k.sort_unstable();
    let mut from = 3u32;
    for &fd in &k {
        let fd = fd as u32;
        if fd > from {
            // SAFETY: closing fd numbers in this (forked) process.
            unsafe { libc::syscall(libc::SYS_close_range, from, fd - 1, 0u32) };
        }
        from = from.max(fd + 1);
    }
    // SAFETY: as above.
    unsafe { libc::syscall(libc::SYS_close_range, from, u32::MAX, 0u32) };
}

fn read_i32(r: &mut impl Read) -> Result<Option<i32>, Error> {
    let mut b = [0u8; 4];
    match r.read_exact(&mut b) {
        Ok(()) => Ok(Some(i32::from_ne_bytes(b))),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(None),
        Err(e) => Err(Error::Sys {
            context: "read the workload parent's report",
            source: e,
        }),
    }
}

fn open_dir(path: &CString) -> Result<OwnedFd, Error> {
    // SAFETY: valid NUL-terminated path.
    let fd = unsafe {
        libc::open(
            path.as_ptr(),
            libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(Error::last("open rootfs"));
    }
    // SAFETY: fresh fd we own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn pair(kind: i32) -> Result<(OwnedFd, OwnedFd), Error> {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for two fds.
    if unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            kind | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    } != 0
    {
        return Err(Error::last("socketpair"));
    }
    // SAFETY: two fresh fds we own.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

fn pipe() -> Result<(OwnedFd, OwnedFd), Error> {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for two fds.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(Error::last("pipe"));
    }
    // SAFETY: two fresh fds we own.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

fn write_i32(fd: i32, v: i32) {
    let b = v.to_ne_bytes();
    // SAFETY: four readable bytes on the stack.
    unsafe { libc::write(fd, b.as_ptr().cast(), 4) };
}

/// The workload's real parent: fork the workload, report its pid and every status. Never
/// returns.
fn parent_child(
    root: &CString,
    proc_dir: Option<&CString>,
    prog: &TraceProgram,
    sock: i32,
    report: i32,
    argv: &[*const libc::c_char],
    envp: &[*const libc::c_char],
) -> ! {
    // SAFETY: raw syscalls with data prepared before fork; every path ends in _exit or exec.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
        let w = libc::fork();
        if w < 0 {
            libc::_exit(1);
        }
        if w == 0 {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            crate::launch::enter_root(root, proc_dir);
            if prepare_tracee_with(prog, sock).is_err() {
                libc::_exit(125);
            }
            libc::close(sock);
            libc::execve(argv[0], argv.as_ptr(), envp.as_ptr());
            libc::_exit(127);
        }
        // Keep only the report pipe (as fd 3): holding the launcher's other fds (gofer and
        // sentry sockets, other tests' fds) would keep their peers from seeing hangups.
        if libc::dup2(report, 3) != 3 {
            libc::_exit(1);
        }
        libc::syscall(libc::SYS_close_range, 4u32, u32::MAX, 0u32);
        write_i32(3, w);
        loop {
            let mut st = 0;
            let r = libc::waitpid(w, &mut st, libc::WUNTRACED | libc::WCONTINUED);
            if r < 0 {
                if *libc::__errno_location() == libc::EINTR {
                    continue;
                }
                libc::_exit(1);
            }
            write_i32(3, st);
            if libc::WIFEXITED(st) || libc::WIFSIGNALED(st) {
                libc::_exit(0);
            }
        }
    }
}
