//! Sentry mode, wired into the lifecycle.
//!
//! Process model (the design card's simplest one): `state.pid` is the workload itself, so
//! podman's signals and exit statuses are exactly native. Beside it, outside every container
//! namespace, runs one *supervisor* per container: the sentry (answers the workload's
//! intercepted syscalls) and, forked from it, the gofer (the only process that opens container
//! files). Neither is visible from inside the container's pid namespace.
//!
//! 1. `create` makes a socketpair; the container init keeps one end.
//! 2. After the init is set up (namespaces, mounts, pivot) `create` forks the supervisor, which
//!    opens the container root as the init sees it (/proc/<init>/root), forks the gofer on it,
//!    and waits for a listener fd.
//! 3. Right before execve the init installs the sentry's seccomp filter (NEW_LISTENER) and
//!    sends the listener fd over its end; execve itself is the first intercepted syscall.
//! 4. `exec` into the container connects to `<state>/sentry.sock`; the new process sends its
//!    own listener there and the supervisor serves it with the same sentry.
//!
//! The supervisor exits when the workload's listener reports that every process holding the
//! filter has exited; the gofer exits when its socket closes.

use crate::container::builder::Sandbox;
use anyhow::{anyhow, Context, Result};
use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};

pub const SENTRY_SOCKET: &str = "sentry.sock";

/// The interception mechanism of a sentry-mode container.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlatformKind {
    /// seccomp user notification (default).
    Seccomp,
    /// ptrace with a SECCOMP_RET_TRACE filter.
    Ptrace,
}

impl PlatformKind {
    pub fn name(self) -> &'static str {
        match self {
            PlatformKind::Seccomp => "seccomp",
            PlatformKind::Ptrace => "ptrace",
        }
    }

    pub fn parse(s: &str) -> Result<PlatformKind> {
        match s {
            "seccomp" => Ok(PlatformKind::Seccomp),
            "ptrace" => Ok(PlatformKind::Ptrace),
            other => anyhow::bail!("unknown sentry platform {other:?} (seccomp or ptrace)"),
        }
    }
}

/// The socket pair that carries the workload's listener fd to the supervisor.
pub struct Link {
    pub runtime_end: OwnedFd,
    pub init_end: OwnedFd,
}

pub fn link(mode: Sandbox) -> Result<Option<Link>> {
    if mode == Sandbox::Native {
        return Ok(None);
    }
    let (a, b) = socketpair(
        AddressFamily::Unix,
        SockType::Stream,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .context("sentry socketpair")?;
    Ok(Some(Link {
        runtime_end: a,
        init_end: b,
    }))
}

/// Run in the workload right before execve: come under interception. seccomp: install the
/// filter and hand the listener over; ptrace: install the RET_TRACE filter and wait until the
/// sentry has seized us.
pub fn before_exec_hook(sock: OwnedFd, kind: PlatformKind) -> Box<dyn Fn() -> Result<(), String>> {
    Box::new(move || match kind {
        PlatformKind::Seccomp => {
            let listener =
                sentry::filter::install().map_err(|e| format!("install sentry filter: {e}"))?;
            sentry::fdpass::send_fd(sock.as_fd(), listener.as_fd())
                .map_err(|e| format!("send listener to sentry: {e}"))
        }
        PlatformKind::Ptrace => sentry::platforms::ptrace::prepare_tracee(sock.as_fd())
            .map_err(|e| format!("ptrace platform: {e}")),
    })
}

/// What the supervisor needs to know.
pub struct SupervisorConfig {
    pub platform: PlatformKind,
    pub init_pid: i32,
    pub state_dir: PathBuf,
    pub hostname: String,
    pub strace: bool,
    pub debug: bool,
    pub log: Option<PathBuf>,
    pub masked_paths: Vec<String>,
}

/// Fork the supervisor (sentry + gofer). Returns the pids to reap at delete.
pub fn spawn_supervisor(link_end: OwnedFd, cfg: SupervisorConfig) -> Result<Vec<i32>> {
    // Opened here, by the runtime, so an error is reported by `create`.
    let root = nix::fcntl::open(
        format!("/proc/{}/root", cfg.init_pid).as_str(),
        nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .context("open container root for the gofer")?;
    // SAFETY: fresh fd from open.
    let root = unsafe { OwnedFd::from_raw_fd(root) };
    // State directories of containerd can be long: socket_addr goes through /proc/self/fd when
    // the path would not fit in sun_path.
    let (_dir, addr) = crate::container::state::socket_addr(&cfg.state_dir, SENTRY_SOCKET)
        .context("sentry socket address")?;
    let exec_listener = UnixDatagram::bind(addr).context("bind sentry socket")?;
    let (g_sentry, g_gofer) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .context("gofer socketpair")?;
    let gofer_pid = match crate::linux::init::fork_plain().context("fork gofer")? {
        0 => {
            drop(g_sentry);
            drop(link_end);
            drop(exec_listener);
            child_exit(run_gofer(g_gofer, root, &cfg))
        }
        pid => pid,
    };
    drop(g_gofer);
    drop(root);
    let sentry_pid = match crate::linux::init::fork_plain().context("fork sentry")? {
        0 => child_exit(run_sentry(g_sentry, link_end, exec_listener, &cfg)),
        pid => pid,
    };
    Ok(vec![sentry_pid, gofer_pid])
}

fn child_exit(r: Result<()>) -> ! {
    let code = match r {
        Ok(()) => 0,
        Err(e) => {
            crate::logging::log(crate::logging::Level::Error, &format!("{e:#}"));
            1
        }
    };
    // SAFETY: _exit in a forked child: the parent's atexit state is not ours to run.
    unsafe { libc::_exit(code) }
}

/// Helpers must not hold the container's stdio (conmon waits for EOF on it) and must not
/// die with the terminal of the caller.
fn detach_stdio(cfg: &SupervisorConfig) {
    let _ = nix::unistd::setsid();
    if let Ok(null) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
    {
        let _ = nix::unistd::dup2(null.as_raw_fd(), 0);
        let _ = nix::unistd::dup2(null.as_raw_fd(), 1);
        let keep_stderr = (cfg.strace || cfg.debug) && cfg.log.is_none();
        if !keep_stderr {
            let err = cfg.log.as_ref().and_then(|p| {
                std::fs::OpenOptions::new()
                    .append(true)
                    .create(true)
                    .open(p)
                    .ok()
            });
            let fd = err
                .as_ref()
                .map(|f| f.as_raw_fd())
                .unwrap_or(null.as_raw_fd());
            let _ = nix::unistd::dup2(fd, 2);
        }
    }
}

fn run_gofer(sock: OwnedFd, root: OwnedFd, cfg: &SupervisorConfig) -> Result<()> {
    detach_stdio(cfg);
    join_view_namespaces(cfg.init_pid)?;
    // The sentry applies the workload's umask to every create; ours must not mask it again.
    nix::sys::stat::umask(nix::sys::stat::Mode::empty());
    // root.readonly and readonlyPaths are read-only *mounts* in the container's mount
    // namespace, which the gofer walks through the root fd: the kernel refuses writes there and
    // still allows them on read-write volumes mounted beneath (which a gofer-level "whole tree
    // read-only" rule would wrongly refuse). Masked paths stay enforced by the gofer too.
    let scfg = gofer::server::ServerConfig {
        read_only: false,
        readonly_paths: Vec::new(),
        masked_paths: cfg.masked_paths.clone(),
        debug: cfg.debug,
        ..Default::default()
    };
    // Confine before the first request: no_new_privs, Landlock beneath the root, capabilities
    // cut to file ownership/permission ones, then the gofer's own seccomp allowlist.
    gofer::confine::confine(&root, &scfg).map_err(|e| anyhow!("gofer: confine: {e}"))?;
    gofer::server::serve(sock, root, &scfg).map_err(|e| anyhow!("gofer: {e}"))
}

/// Files under /proc/sys and /proc/net render the namespaces of whoever opens them: the gofer
/// and the sentry open them for the workload, so both join the workload's ipc, uts, net and cgroup
/// namespaces (not the mount namespace: it reaches the container's mounts through the root
/// fd; not the user namespace: it keeps the host credentials the rootfs is owned by).
fn join_view_namespaces(pid: i32) -> Result<()> {
    use nix::sched::CloneFlags;
    for (name, flag) in [
        ("ipc", CloneFlags::CLONE_NEWIPC),
        ("uts", CloneFlags::CLONE_NEWUTS),
        ("net", CloneFlags::CLONE_NEWNET),
        ("cgroup", CloneFlags::CLONE_NEWCGROUP),
    ] {
        let theirs = format!("/proc/{pid}/ns/{name}");
        if std::fs::read_link(&theirs).ok()
            == std::fs::read_link(format!("/proc/self/ns/{name}")).ok()
        {
            continue;
        }
        crate::linux::namespaces::join(Path::new(&theirs), flag)
            .with_context(|| format!("gofer: join {name} namespace of the container"))?;
    }
    Ok(())
}

fn run_sentry(
    gofer_sock: OwnedFd,
    link_end: OwnedFd,
    exec_listener: UnixDatagram,
    cfg: &SupervisorConfig,
) -> Result<()> {
    detach_stdio(cfg);
    // The sentry opens /proc entries of the workload itself; they render the opener's
    // namespaces, so it joins the same ones as the gofer.
    join_view_namespaces(cfg.init_pid)?;
    let client = gofer::client::Client::new(gofer_sock);
    let scfg = sentry::SentryConfig {
        hostname: cfg.hostname.clone(),
        strace: cfg.strace,
        ..Default::default()
    };
    let sentry = sentry::Sentry::new(scfg, client).map_err(|e| anyhow!("sentry: {e}"))?;
    if cfg.platform == PlatformKind::Ptrace {
        return serve_ptrace(&sentry, link_end, exec_listener, cfg);
    }
    // From here on the sentry can only do what its own allowlist permits (no exec, no new
    // sockets, no mounts or namespaces); a compromised sentry still reaches files only
    // through the gofer.
    sentry::confine::confine().map_err(|e| anyhow!("sentry: confine: {e}"))?;
    // Blocks until `start` lets the init reach its execve.
    let listener = sentry::fdpass::recv_fd(link_end.as_fd())
        .map_err(|e| anyhow!("sentry: receive workload listener: {e}"))?;
    std::thread::scope(|s| {
        let sentry = &sentry;
        s.spawn(move || accept_exec_listeners(sentry, &exec_listener));
        let r = sentry
            .serve_seccomp(listener)
            .map_err(|e| anyhow!("sentry: {e}"));
        // The workload is gone: nothing more to serve. Exit the whole process (the accept
        // thread is blocked in accept and would keep the scope open).
        child_exit(r)
    })
}

/// The ptrace platform: seize the workload (blocks until `start` lets the init reach its
/// execve), then confine the sentry with its allowlist plus the ptrace calls the tracer needs.
fn serve_ptrace(
    sentry: &sentry::Sentry,
    link_end: OwnedFd,
    exec_listener: UnixDatagram,
    cfg: &SupervisorConfig,
) -> Result<()> {
    let p = sentry::platforms::ptrace::Ptrace::seize(cfg.init_pid, link_end.as_fd())
        .map_err(|e| anyhow!("sentry: {e}"))?;
    sentry::confine::confine_with(sentry::platforms::ptrace::CONFINE_EXTRA)
        .map_err(|e| anyhow!("sentry: confine: {e}"))?;
    std::thread::scope(|s| {
        s.spawn(|| {
            std::thread::scope(|inner| {
                while let Ok((pid, sock)) = recv_exec_handshake(&exec_listener) {
                    inner.spawn(move || {
                        match sentry::platforms::ptrace::Ptrace::seize(pid, sock.as_fd()) {
                            Ok(p) => {
                                if let Err(e) = sentry.serve(&p) {
                                    crate::warn!("sentry (exec): {e}");
                                }
                            }
                            Err(e) => crate::warn!("sentry (exec): {e}"),
                        }
                    });
                }
            })
        });
        child_exit(sentry.serve(&p).map_err(|e| anyhow!("sentry: {e}")))
    })
}

/// ptrace `exec`: one datagram carrying the new process's host pid and its handshake socket.
fn recv_exec_handshake(l: &UnixDatagram) -> Result<(i32, OwnedFd)> {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    let mut buf = [0u8; 4];
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let mut space = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let msg = recvmsg::<()>(
        l.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )?;
    let mut fd = None;
    for c in msg.cmsgs()? {
        if let ControlMessageOwned::ScmRights(fds) = c {
            for f in fds {
                // SAFETY: SCM_RIGHTS installed these fds in our table; we own them.
                let owned = unsafe { OwnedFd::from_raw_fd(f) };
                fd.get_or_insert(owned);
            }
        }
    }
    let fd = fd.context("exec handshake without a socket")?;
    Ok((i32::from_ne_bytes(buf), fd))
}

/// ptrace `exec`, runtime side: hand the sentry the new process's pid and its end of the
/// handshake socket (the process itself waits in `prepare_tracee` on the other end).
pub fn send_exec_handshake(sentry_sock: &OwnedFd, pid: i32, sock: &OwnedFd) -> Result<()> {
    use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
    let fds = [sock.as_raw_fd()];
    let bytes = pid.to_ne_bytes();
    let iov = [std::io::IoSlice::new(&bytes)];
    sendmsg::<()>(
        sentry_sock.as_raw_fd(),
        &iov,
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::empty(),
        None,
    )
    .context("hand the exec'd process to the sentry")?;
    Ok(())
}

/// `exec`: each new process sends its own listener as one datagram to sentry.sock. A
/// datagram socket needs no accept(), so the confined sentry never creates a socket.
fn accept_exec_listeners(sentry: &sentry::Sentry, l: &UnixDatagram) {
    std::thread::scope(|s| {
        while let Ok(listener) = sentry::fdpass::recv_fd(l.as_fd()) {
            s.spawn(move || {
                if let Err(e) = sentry.serve_seccomp(listener) {
                    crate::warn!("sentry (exec): {e}");
                }
            });
        }
    });
}

/// `exec` side: connect to the container's supervisor (before forking the new process,
/// while the host path is still reachable).
pub fn connect_for_exec(state_dir: &Path) -> Result<OwnedFd> {
    let s = UnixDatagram::unbound().context("sentry socket")?;
    let (_dir, addr) = crate::container::state::socket_addr(state_dir, SENTRY_SOCKET)
        .context("sentry socket address")?;
    s.connect(addr)
        .context("connect to the container's sentry")?;
    Ok(s.into())
}

/// What `mantle features` reports about sentry mode.
pub fn features() -> serde_json::Value {
    serde_json::json!({
        "sandboxes": ["native", "sentry"],
        "platforms": ["seccomp", "ptrace"],
        "sentry": format!("{:?}", sentry::features::probe()),
        "gofer": format!("{:?}", gofer::confine::support()),
        "passThroughSyscalls": sentry::table::pass_count(),
    })
}

/// The sentry's syscall table, as text.
pub fn syscall_table() -> String {
    sentry::table::render()
}
