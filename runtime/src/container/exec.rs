//! `exec` (a new process in a running container) and waiting for a container process with
//! signal forwarding (`run`, foreground `exec`).

use super::state::Status;
use super::{cgroup, Container};
use crate::linux::init::{self, InitConfig};
use crate::linux::sync::{self, Msg};
use crate::linux::{capabilities, console, seccomp};
use anyhow::{anyhow, bail, Context, Result};
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;
use oci_spec::runtime::{Process, Spec};
use std::path::PathBuf;

pub struct ExecRequest {
    pub process: Process,
    pub console_socket: Option<PathBuf>,
    pub preserve_fds: u32,
}

/// Start the process; returns its host pid. The caller decides whether to wait.
pub fn exec(c: &Container, req: ExecRequest) -> Result<i32> {
    match c.status() {
        Status::Running | Status::Created => {}
        Status::Paused => bail!("cannot exec in a paused container"),
        Status::Stopped | Status::Creating => bail!("cannot exec in a stopped container"),
    }
    let mut spec: Spec = serde_json::from_value(c.state.config.clone()).context("stored config")?;
    let mut warnings = Vec::new();
    let caps = capabilities::from_spec(req.process.capabilities().as_ref(), &mut warnings)
        .map_err(|e| anyhow!("process.capabilities: {e}"))?;
    warnings.iter().for_each(|w| crate::warn!("{w}"));
    let (seccomp_ctx, seccomp_agent) =
        seccomp::prepare(spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()))
            .map_err(|e| anyhow!(e))?;
    let console = match (&req.console_socket, req.process.terminal().unwrap_or(false)) {
        (Some(p), true) => Some(console::connect_socket(p).map_err(|e| anyhow!(e))?),
        (None, true) => bail!("cannot allocate tty without a console socket"),
        _ => None,
    };
    spec.set_process(Some(req.process));
    let (before_exec, on_pid) = sentry_hooks(c)?;
    let (parent, child) = sync::pair()?;
    let cfg = InitConfig {
        spec: spec.clone(),
        rootfs: c.state.rootfs.clone(),
        bundle: c.state.bundle.clone(),
        caps,
        seccomp: seccomp_ctx,
        seccomp_agent,
        console,
        start_listener: None,
        preserve_fds: req.preserve_fds,
        no_pivot: false,
        no_new_keyring: true,
        join_pid: Some(c.state.pid),
        state_json: Vec::new(),
        before_exec,
    };
    let stage1 = match init::fork_plain().context("fork")? {
        0 => {
            drop(parent);
            init::stage1(cfg, child)
        }
        pid => pid,
    };
    drop(child);
    drop(cfg);
    let res = drive(&parent, c, on_pid);
    let _ = waitpid(Pid::from_raw(stage1), None);
    res
}

type BeforeExec = Option<Box<dyn Fn() -> Result<(), String>>>;
type OnPid = Option<Box<dyn FnOnce(i32) -> Result<()>>>;

/// Sentry mode: how the new process comes under the container's sentry. seccomp: it sends its
/// listener to sentry.sock itself; ptrace: the runtime hands the sentry its pid and one end of
/// a handshake socket once the pid is known, and the process waits to be seized.
fn sentry_hooks(c: &Container) -> Result<(BeforeExec, OnPid)> {
    use crate::sentry_mode::{self as sm, PlatformKind};
    if c.state.sandbox != "sentry" {
        return Ok((None, None));
    }
    let sentry_sock = sm::connect_for_exec(&c.dir)?;
    match PlatformKind::parse(if c.state.platform.is_empty() {
        "seccomp"
    } else {
        &c.state.platform
    })? {
        PlatformKind::Seccomp => Ok((
            Some(sm::before_exec_hook(sentry_sock, PlatformKind::Seccomp)),
            None,
        )),
        PlatformKind::Ptrace => {
            let (ours, theirs) = nix::sys::socket::socketpair(
                nix::sys::socket::AddressFamily::Unix,
                nix::sys::socket::SockType::Stream,
                None,
                nix::sys::socket::SockFlag::SOCK_CLOEXEC,
            )?;
            let hook = sm::before_exec_hook(theirs, PlatformKind::Ptrace);
            let on_pid: Box<dyn FnOnce(i32) -> Result<()>> =
                Box::new(move |pid| sm::send_exec_handshake(&sentry_sock, pid, &ours));
            Ok((Some(hook), Some(on_pid)))
        }
    }
}

fn drive(chan: &sync::Channel, c: &Container, mut on_pid: OnPid) -> Result<i32> {
    let mut pid = 0;
    loop {
        match chan.recv("exec set up") {
            Ok(Msg::InitPid(p)) => {
                pid = p;
                if let Err(e) = cgroup::join(c.state.cgroup.as_ref(), p) {
                    let _ = nix::sys::signal::kill(Pid::from_raw(p), Signal::SIGKILL);
                    return Err(e);
                }
                if let Some(f) = on_pid.take() {
                    f(p)?;
                }
                chan.send(&Msg::CgroupJoined)?;
            }
            Ok(Msg::Ready) => {
                // The process is about to execve; the channel closes (CLOEXEC) on success or
                // carries the exec error.
                return match chan.recv("exec") {
                    Ok(Msg::Error(e)) => {
                        let _ = waitpid(Pid::from_raw(pid), None);
                        bail!("{e}")
                    }
                    _ => Ok(pid),
                };
            }
            Ok(Msg::Error(e)) => {
                if pid > 0 {
                    let _ = waitpid(Pid::from_raw(pid), None);
                }
                bail!("{e}")
            }
            Ok(other) => bail!("unexpected message from exec process: {other:?}"),
            Err(e) => bail!("exec failed: {e}"),
        }
    }
}

/// Signals a foreground runtime forwards to the container process, as runc does.
const FORWARDED: [Signal; 8] = [
    Signal::SIGHUP,
    Signal::SIGINT,
    Signal::SIGQUIT,
    Signal::SIGTERM,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGWINCH,
    Signal::SIGCONT,
];

/// Block the forwarded signals (and SIGCHLD) before forking, so none is lost; the children
/// unblock them before execve.
pub fn block_signals() -> SigSet {
    let mut set = SigSet::empty();
    for s in FORWARDED {
        set.add(s);
    }
    set.add(Signal::SIGCHLD);
    let _ = nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set), None);
    set
}

/// Shell-style exit code of a raw wait status (128+N on signal).
pub fn exit_code(status: i32) -> i32 {
    if libc::WIFSIGNALED(status) {
        128 + libc::WTERMSIG(status)
    } else {
        libc::WEXITSTATUS(status)
    }
}

/// Wait for `pid`, forwarding signals; returns the raw wait status.
pub fn wait_forwarding(pid: i32, set: &SigSet) -> Result<i32> {
    let target = Pid::from_raw(pid);
    loop {
        match waitpid(target, Some(nix::sys::wait::WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(_, code)) => return Ok((code & 0xff) << 8),
            Ok(WaitStatus::Signaled(_, sig, core)) => {
                return Ok(sig as i32 | if core { 0x80 } else { 0 })
            }
            Ok(_) => {}
            Err(nix::Error::ECHILD) => bail!("container process {pid} is not our child"),
            Err(e) => bail!("wait for container process: {e}"),
        }
        match set.wait() {
            Ok(Signal::SIGCHLD) => {}
            Ok(sig) => {
                let _ = nix::sys::signal::kill(target, sig);
            }
            Err(_) => {}
        }
    }
}
