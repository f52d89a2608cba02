//! What runs in the forked children: stage 1 (namespace entry) and the container init.
//!
//! The runtime is single-threaded when it forks, so the children may allocate and use the
//! full library. Each step is a small function; the order is the contract:
//!
//! stage 1: join namespaces by path -> new user ns (runtime writes maps) -> other new
//!          namespaces -> fork the init with CLONE_PARENT (so the runtime, not stage 1, is its
//!          parent and `run` can wait for it) -> report its pid -> exit.
//! init:    wait for cgroup placement -> cgroup ns -> rootfs and mounts -> hooks (runtime) ->
//!          pivot_root -> console, hostname, sysctl, masked/read-only paths -> rlimits, caps,
//!          user, cwd -> report Ready -> wait for `start` -> startContainer hooks -> seccomp ->
//!          execve.

use super::sync::{Channel, Msg};
use super::{capabilities, console, hooks, namespaces, process, rootfs, seccomp};
use libseccomp::ScmpFilterContext;
use nix::sched::CloneFlags;
use oci_spec::runtime::{LinuxNamespaceType, Spec};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixListener;
use std::path::PathBuf;

/// Everything the children need, prepared (and validated) by the runtime before forking.
pub struct InitConfig {
    pub spec: Spec,
    pub rootfs: PathBuf,
    pub bundle: PathBuf,
    pub caps: capabilities::Sets,
    pub seccomp: Option<ScmpFilterContext>,
    /// Connection to the seccomp agent (listenerPath), made before forking.
    pub seccomp_agent: Option<OwnedFd>,
    pub console: Option<OwnedFd>,
    pub start_listener: Option<UnixListener>,
    pub preserve_fds: u32,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    /// exec: join this process's namespaces instead of creating them.
    pub join_pid: Option<i32>,
    /// State JSON handed to startContainer hooks.
    pub state_json: Vec<u8>,
    /// Sentry mode: called right before execve to install interception.
    pub before_exec: Option<Box<dyn Fn() -> Result<(), String>>>,
}

/// Raw clone that behaves like fork but lets us pass CLONE_PARENT.
fn fork_with(flags: libc::c_ulong) -> std::io::Result<i32> {
    // SAFETY: with a NULL stack, clone behaves like fork: the child runs on a copy of our
    // stack. We are single-threaded, so no lock can be held by a thread that does not exist
    // in the child.
    let pid = unsafe {
        libc::syscall(
            libc::SYS_clone,
            flags | libc::SIGCHLD as libc::c_ulong,
            0usize,
            0usize,
            0usize,
            0usize,
        )
    };
    if pid < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(pid as i32)
}

/// Runs in stage 1 (a plain fork of the runtime); never returns.
pub fn stage1(cfg: InitConfig, chan: Channel) -> ! {
    let code = match stage1_steps(cfg, &chan) {
        Ok(()) => 0,
        Err(e) => {
            let _ = chan.send(&Msg::Error(e));
            1
        }
    };
    // SAFETY: _exit skips atexit handlers and stdio flushing that belong to the parent.
    unsafe { libc::_exit(code) }
}

fn stage1_steps(cfg: InitConfig, chan: &Channel) -> Result<(), String> {
    let linux = cfg.spec.linux().clone();
    let nss = namespaces::list(linux.as_ref());
    if let Some(pid) = cfg.join_pid {
        join_all(pid, &nss)?;
    } else {
        namespaces::join_paths(&nss)?;
        // In a joined user namespace our host uid may be unmapped (files we create would get
        // EOVERFLOW): become its root, as in a new one.
        if nss
            .iter()
            .any(|n| n.typ() == LinuxNamespaceType::User && n.path().is_some())
        {
            become_ns_root()?;
        }
        let new_user = nss
            .iter()
            .any(|n| n.typ() == LinuxNamespaceType::User && n.path().is_none());
        if new_user {
            namespaces::unshare_flags(CloneFlags::CLONE_NEWUSER)?;
            chan.send(&Msg::UsernsReady).map_err(|e| e.to_string())?;
            chan.expect(Msg::UsernsMapped, "user namespace maps")?;
            become_ns_root()?;
        }
        namespaces::unshare_flags(namespaces::new_flags(&nss))?;
        if namespaces::has(&nss, LinuxNamespaceType::Time) {
            if let Some(l) = linux.as_ref() {
                namespaces::write_time_offsets(l)?;
            }
        }
    }
    match fork_with(libc::CLONE_PARENT as libc::c_ulong)
        .map_err(|e| format!("fork container init: {e}"))?
    {
        0 => container_init(cfg, chan),
        pid => chan.send(&Msg::InitPid(pid)).map_err(|e| e.to_string()),
    }
}

fn become_ns_root() -> Result<(), String> {
    nix::unistd::setresgid(0.into(), 0.into(), 0.into())
        .map_err(|e| format!("setgid 0 in user namespace: {e}"))?;
    nix::unistd::setresuid(0.into(), 0.into(), 0.into())
        .map_err(|e| format!("setuid 0 in user namespace: {e}"))
}

/// exec: enter every namespace of the running init, atomically through its pidfd.
fn join_all(pid: i32, nss: &[oci_spec::runtime::LinuxNamespace]) -> Result<(), String> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(format!(
            "pidfd_open {pid}: {}",
            std::io::Error::last_os_error()
        ));
    }
    // SAFETY: fresh fd from the kernel.
    let pidfd = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd as i32) };
    let mut flags = CloneFlags::empty();
    for ns in nss {
        // Only namespaces that differ from ours can be joined (setns on our own user ns fails).
        let name = namespaces::proc_name(ns.typ());
        let theirs = std::fs::read_link(format!("/proc/{pid}/ns/{name}")).ok();
        let ours = std::fs::read_link(format!("/proc/self/ns/{name}")).ok();
        if theirs.is_some() && theirs != ours {
            flags |= namespaces::flag(ns.typ());
        }
    }
    nix::sched::setns(pidfd, flags)
        .map_err(|e| format!("join namespaces of container init {pid}: {e}"))
}

/// The container init (or an exec'd process); never returns.
fn container_init(cfg: InitConfig, chan: &Channel) -> ! {
    let err = match init_steps(cfg, chan) {
        Ok(never) => match never {},
        Err(e) => e,
    };
    let _ = chan.send(&Msg::Error(err.clone()));
    eprintln!("mantle: {err}");
    // SAFETY: see stage1.
    unsafe { libc::_exit(127) }
}

enum Never {}

fn init_steps(mut cfg: InitConfig, chan: &Channel) -> Result<Never, String> {
    reset_signals();
    chan.expect(Msg::CgroupJoined, "cgroup placement")?;
    let linux = cfg.spec.linux().clone();
    let nss = namespaces::list(linux.as_ref());
    let process = cfg
        .spec
        .process()
        .clone()
        .ok_or("config.json: process is required")?;
    let exec_mode = cfg.join_pid.is_some();
    // Until execve, a container process must not be able to open /proc/<us>/exe or attach.
    // SAFETY: prctl(PR_SET_DUMPABLE, 0) changes only our own flag.
    unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) };

    if !exec_mode {
        if nss
            .iter()
            .any(|n| n.typ() == LinuxNamespaceType::Cgroup && n.path().is_none())
        {
            namespaces::unshare_flags(CloneFlags::CLONE_NEWCGROUP)?;
        }
        if !cfg.no_new_keyring {
            // SAFETY: keyctl(JOIN_SESSION_KEYRING, NULL) creates an anonymous session keyring.
            unsafe {
                libc::syscall(
                    libc::SYS_keyctl,
                    1, /* KEYCTL_JOIN_SESSION_KEYRING */
                    0usize,
                )
            };
        }
        cfg.state_json = setup_rootfs(&cfg, chan)?;
        if let Some(sock) = cfg.console.take() {
            let size = process
                .console_size()
                .map(|b| (b.height() as u16, b.width() as u16));
            console::setup(&sock, size)?;
        }
        finish_rootfs(&cfg.spec)?;
    } else if let Some(sock) = cfg.console.take() {
        let size = process
            .console_size()
            .map(|b| (b.height() as u16, b.width() as u16));
        console::setup(&sock, size)?;
    }

    if let Some(adj) = process.oom_score_adj() {
        process::set_oom_score_adj(adj)?;
    }
    process::set_rlimits(process.rlimits().as_deref().unwrap_or(&[]))?;
    let nnp = process.no_new_privileges().unwrap_or(false);
    if nnp {
        // SAFETY: prctl(PR_SET_NO_NEW_PRIVS, 1) only restricts this process.
        if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
            return Err(format!(
                "set no_new_privs: {}",
                std::io::Error::last_os_error()
            ));
        }
    }
    // Without no_new_privs the filter must be loaded while we still hold CAP_SYS_ADMIN.
    if !nnp {
        load_seccomp(&cfg)?;
    }
    process::cloexec_from(3 + cfg.preserve_fds)?;
    capabilities::drop_bounding(&cfg.caps)?;
    let cwd_done = process::set_cwd_before_user(process.cwd())?;
    // SAFETY: PR_SET_KEEPCAPS keeps permitted caps across the uid change below.
    unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 1, 0, 0, 0) };
    process::set_user(&process)?;
    // SAFETY: as above, turning keep-caps back off.
    unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 0, 0, 0, 0) };
    capabilities::apply(&cfg.caps)?;
    if !cwd_done {
        process::set_cwd(process.cwd())?;
    }
    process::set_umask(&process);

    let args = process.args().clone().unwrap_or_default();
    let mut env = process.env().clone().unwrap_or_default();
    process::default_home(&mut env, process.user().uid());
    if cfg.preserve_fds > 0 {
        env.push(format!("LISTEN_FDS={}", cfg.preserve_fds));
        env.push(format!("LISTEN_PID={}", std::process::id()));
    }
    let exe = process::find_executable(&args[0], &env)?;
    process::set_io_priority(process.io_priority().as_ref())?;
    process::set_scheduler(process.scheduler().as_ref())?;

    if let Some(listener) = cfg.start_listener.take() {
        chan.send(&Msg::Ready).map_err(|e| e.to_string())?;
        wait_for_start(&listener, &cfg)?;
    }
    if nnp {
        load_seccomp(&cfg)?;
    }
    if let Some(p) = linux.as_ref().and_then(|l| l.personality().as_ref()) {
        process::set_personality(p)?;
    }
    if let Some(hook) = cfg.before_exec.as_ref() {
        hook()?;
    }
    if exec_mode {
        chan.send(&Msg::Ready).map_err(|e| e.to_string())?;
    }
    Err(process::exec(&exe, &args, &env))
}

fn load_seccomp(cfg: &InitConfig) -> Result<(), String> {
    let Some(ctx) = cfg.seccomp.as_ref() else {
        return Ok(());
    };
    let profile = cfg.spec.linux().as_ref().and_then(|l| l.seccomp().clone());
    let notify = profile.as_ref().is_some_and(seccomp::uses_notify);
    if let Some(fd) = seccomp::load(ctx, notify)? {
        let (Some(profile), Some(agent)) = (profile.as_ref(), cfg.seccomp_agent.as_ref()) else {
            return Err("seccomp: notify filter loaded but no agent connection".into());
        };
        seccomp::send_to_agent(agent, profile, &cfg.state_json, &fd)?;
    }
    Ok(())
}

/// Block until `mantle start` connects, run startContainer hooks, acknowledge.
fn wait_for_start(listener: &UnixListener, cfg: &InitConfig) -> Result<(), String> {
    use std::io::{Read, Write};
    let (mut conn, _) = loop {
        match listener.accept() {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            r => break r.map_err(|e| format!("wait for start: {e}"))?,
        }
    };
    let mut b = [0u8; 1];
    conn.read_exact(&mut b)
        .map_err(|e| format!("wait for start: {e}"))?;
    let hooks = cfg
        .spec
        .hooks()
        .as_ref()
        .and_then(|h| h.start_container().clone())
        .unwrap_or_default();
    let res = hooks::run_all("startContainer", &hooks, &cfg.state_json);
    let reply = match &res {
        Ok(()) => b"ok".to_vec(),
        Err(e) => format!("error: {e}").into_bytes(),
    };
    let _ = conn.write_all(&reply);
    res
}

/// Mounts, devices and the runtime hooks, then switch root.
fn setup_rootfs(cfg: &InitConfig, chan: &Channel) -> Result<Vec<u8>, String> {
    let linux = cfg.spec.linux().clone().unwrap_or_default();
    rootfs::prepare(&cfg.rootfs, linux.rootfs_propagation().as_deref())?;
    let root = nix::fcntl::open(
        &cfg.rootfs,
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(|e| format!("open rootfs {}: {e}", cfg.rootfs.display()))?;
    // SAFETY: fresh fd from open.
    let root = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(root) };
    // Relative bind sources are relative to the bundle.
    nix::unistd::chdir(&cfg.bundle).map_err(|e| format!("chdir to bundle: {e}"))?;
    let mounts = cfg.spec.mounts().clone().unwrap_or_default();
    let mut dev_is_bind = false;
    for m in &mounts {
        rootfs::mount_entry(&root, m)?;
        if m.destination() == std::path::Path::new("/dev") && m.typ().as_deref() == Some("bind") {
            dev_is_bind = true;
        }
    }
    let in_userns = namespaces::has(&namespaces::list(Some(&linux)), LinuxNamespaceType::User);
    if !dev_is_bind {
        rootfs::create_devices(&root, linux.devices().as_deref().unwrap_or(&[]), in_userns)?;
        rootfs::dev_symlinks(&root)?;
    }
    chan.send(&Msg::MountsReady).map_err(|e| e.to_string())?;
    let state_json = match chan
        .recv("prestart/createRuntime hooks")
        .map_err(|e| e.to_string())?
    {
        Msg::HooksDone(s) => s.into_bytes(),
        Msg::Error(e) => return Err(e),
        other => return Err(format!("sync channel: expected HooksDone, got {other:?}")),
    };
    // createContainer: in the container's namespaces, before pivot_root (runtime.md).
    let hooks = cfg
        .spec
        .hooks()
        .as_ref()
        .and_then(|h| h.create_container().clone())
        .unwrap_or_default();
    // The state handed over says "created" (what startContainer sees); createContainer runs
    // while the container is still being created, and runc reports "creating".
    hooks::run_all(
        "createContainer",
        &hooks,
        &with_status(&state_json, "creating"),
    )?;
    if cfg.no_pivot {
        rootfs::move_root(&cfg.rootfs)?;
    } else {
        rootfs::pivot(&cfg.rootfs)?;
    }
    Ok(state_json)
}

/// The state document with another status (unchanged if it does not parse).
fn with_status(state_json: &[u8], status: &str) -> Vec<u8> {
    match serde_json::from_slice::<serde_json::Value>(state_json) {
        Ok(mut v) => {
            v["status"] = status.into();
            serde_json::to_vec(&v).unwrap_or_else(|_| state_json.to_vec())
        }
        Err(_) => state_json.to_vec(),
    }
}

/// After the root switch: names, sysctls, masked and read-only paths, read-only root.
fn finish_rootfs(spec: &Spec) -> Result<(), String> {
    let linux = spec.linux().clone().unwrap_or_default();
    if let Some(h) = spec.hostname() {
        nix::unistd::sethostname(h).map_err(|e| format!("sethostname {h:?}: {e}"))?;
    }
    if let Some(d) = spec.domainname() {
        // SAFETY: setdomainname reads `d.len()` bytes from a live buffer.
        if unsafe { libc::setdomainname(d.as_ptr().cast(), d.len()) } != 0 {
            return Err(format!(
                "setdomainname {d:?}: {}",
                std::io::Error::last_os_error()
            ));
        }
    }
    for (k, v) in linux.sysctl().clone().unwrap_or_default() {
        let path = format!("/proc/sys/{}", k.replace('.', "/"));
        std::fs::write(&path, &v).map_err(|e| format!("sysctl {k}={v}: {e}"))?;
    }
    for p in linux.readonly_paths().clone().unwrap_or_default() {
        rootfs::readonly_path(&p)?;
    }
    for p in linux.masked_paths().clone().unwrap_or_default() {
        rootfs::mask_path(&p)?;
    }
    if spec
        .root()
        .as_ref()
        .and_then(|r| r.readonly())
        .unwrap_or(false)
    {
        rootfs::readonly_root()?;
    }
    // rootfsPropagation applies to the new root mount itself; last, because an unbindable
    // tree would refuse the bind mounts of readonlyPaths above.
    if let Some(p) = linux.rootfs_propagation().as_deref() {
        rootfs::set_root_propagation(p)?;
    }
    Ok(())
}

/// The runtime blocks signals it forwards and Rust ignores SIGPIPE; neither may leak into the
/// workload (execve keeps the mask and ignored dispositions).
fn reset_signals() {
    let empty = nix::sys::signal::SigSet::empty();
    let _ = nix::sys::signal::sigprocmask(
        nix::sys::signal::SigmaskHow::SIG_SETMASK,
        Some(&empty),
        None,
    );
    // SAFETY: restoring the default disposition of SIGPIPE has no memory-safety impact.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
}

pub fn fork_plain() -> std::io::Result<i32> {
    fork_with(0)
}
