//! A standalone launcher: gofer + workload + sentry, without the runtime (tests, benchmarks).
//!
//! `run_command` forks two processes and serves in the calling one:
//!
//! * the gofer: serves `rootfs` on a SOCK_SEQPACKET socketpair (confined when it can be);
//! * the workload: `chroot(rootfs)`, `chdir("/")`, install the filter (no_new_privs, TSYNC,
//!   NEW_LISTENER), send the listener fd to the parent, `execve(argv)`.
//!
//! The workload is chrooted rather than left with the host root because execve and chdir are
//! continued by the sentry and are sound only when the process root is the container root
//! (see `emulate::exec`). No namespaces are made: that is the runtime's job. Needs root (chroot).
//!
//! The children only make raw syscalls between fork and exec/serve, with everything they need
//! (CStrings, the compiled filter) prepared before forking.

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::ExitStatus;

use gofer::client::Client;

use crate::fdpass::recv_fd;
use crate::filter::{install_program, Program};
use crate::{Error, Sentry, SentryConfig};

/// The environment the workload gets.
pub const DEFAULT_ENV: &[&str] = &[
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "HOME=/",
];

fn cstr(s: &[u8], what: &str) -> Result<CString, Error> {
    CString::new(s).map_err(|_| Error::Invalid(format!("{what} contains a NUL byte")))
}

/// What both launchers (seccomp and ptrace platforms) prepare before forking: the checked
/// rootfs and the C strings the workload child needs (it may not allocate after fork).
pub(crate) struct Workload {
    pub c_root: CString,
    pub c_proc: Option<CString>,
    pub c_argv: Vec<CString>,
    pub c_env: Vec<CString>,
}

impl Workload {
    pub(crate) fn prepare(
        argv: &[&str],
        rootfs: &Path,
        cfg: &mut SentryConfig,
        mount_proc: bool,
    ) -> Result<Workload, Error> {
        if argv.is_empty() {
            return Err(Error::Invalid("empty argv".into()));
        }
        let root = rootfs
            .canonicalize()
            .map_err(|e| Error::Invalid(format!("rootfs {}: {e}", rootfs.display())))?;
        if !root.is_dir() {
            return Err(Error::Invalid(format!(
                "rootfs {} is not a directory",
                root.display()
            )));
        }
        cfg.root_path = Some(root.clone());
        let c_root = cstr(root.as_os_str().as_bytes(), "rootfs path")?;
        let c_proc = if mount_proc {
            let p = root.join("proc");
            if !p.is_dir() {
                return Err(Error::Invalid(format!(
                    "{} is not a directory",
                    p.display()
                )));
            }
            Some(cstr(p.as_os_str().as_bytes(), "proc path")?)
        } else {
            None
        };
        let c_argv = argv
            .iter()
            .map(|a| cstr(a.as_bytes(), "argv"))
            .collect::<Result<_, _>>()?;
        let c_env = DEFAULT_ENV
            .iter()
            .map(|a| cstr(a.as_bytes(), "env"))
            .collect::<Result<_, _>>()?;
        Ok(Workload {
            c_root,
            c_proc,
            c_argv,
            c_env,
        })
    }

    /// NULL-terminated pointer arrays for execve (valid while `self` lives).
    pub(crate) fn pointers(&self) -> (Vec<*const libc::c_char>, Vec<*const libc::c_char>) {
        let mut argv_p: Vec<*const libc::c_char> = self.c_argv.iter().map(|c| c.as_ptr()).collect();
        argv_p.push(std::ptr::null());
        let mut env_p: Vec<*const libc::c_char> = self.c_env.iter().map(|c| c.as_ptr()).collect();
        env_p.push(std::ptr::null());
        (argv_p, env_p)
    }
}

/// Run `argv` (argv[0] is the path inside `rootfs`) under the sentry; returns its exit status.
pub fn run_command(argv: &[&str], rootfs: &Path, cfg: SentryConfig) -> Result<ExitStatus, Error> {
    run_command_with_log(argv, rootfs, cfg, None)
}

/// `run_command`, with strace lines sent to `log` instead of stderr.
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

/// Extra launcher knobs.
#[derive(Default)]
pub struct LaunchOptions {
    /// Where strace lines go (stderr when None).
    pub log: Option<Box<dyn std::io::Write + Send>>,
    /// Give the workload a private mount namespace with procfs mounted on `<rootfs>/proc`
    /// (which must exist). No pid namespace: the procfs shows host pids.
    pub mount_proc: bool,
    /// Serve from a forked child that first calls `confine::confine()` (its own seccomp
    /// allowlist, capabilities dropped), as the runtime's sentry process would.
    pub confine_sentry: bool,
}

/// `run_command` with options.
pub fn run_command_opts(
    argv: &[&str],
    rootfs: &Path,
    mut cfg: SentryConfig,
    opts: LaunchOptions,
) -> Result<ExitStatus, Error> {
    // MANTLE_SENTRY_PLATFORM=ptrace: the same workload on the ptrace platform (test matrix).
    if crate::platforms::ptrace::launch::selected() {
        return crate::platforms::ptrace::launch::run_command_opts(argv, rootfs, cfg, opts);
    }
    let log = opts.log;
    let w = Workload::prepare(argv, rootfs, &mut cfg, opts.mount_proc)?;
    let (c_root, c_proc) = (&w.c_root, &w.c_proc);
    let (argv_p, env_p) = w.pointers();
    let prog = Program::new()?;

    let root_fd = open_dir(c_root)?;
    let (gofer_client, gofer_server) =
        gofer::wire::socketpair().map_err(Error::sys("gofer socketpair"))?;
    let gofer_pid = fork_gofer(gofer_server, root_fd, gofer_client.as_raw_fd())?;

    let (parent_sock, child_sock) = unix_pair()?;
    // SAFETY: the child runs only `workload_child`, which makes raw syscalls and never returns.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(Error::last("fork workload"));
    }
    if pid == 0 {
        drop(parent_sock);
        workload_child(
            c_root,
            c_proc.as_ref(),
            &prog,
            child_sock.as_raw_fd(),
            &argv_p,
            &env_p,
        );
    }
    drop(child_sock);

    let result = serve(
        parent_sock,
        gofer_client,
        cfg,
        log,
        pid,
        opts.confine_sentry,
    );
    // Whatever happened, the gofer's socket is closed now (the Sentry was dropped): reap it.
    let mut st = 0;
    // SAFETY: waiting for our own child.
    unsafe { libc::waitpid(gofer_pid, &mut st, 0) };
    result
}

fn serve(
    sock: OwnedFd,
    gofer_client: OwnedFd,
    cfg: SentryConfig,
    log: Option<Box<dyn std::io::Write + Send>>,
    pid: libc::pid_t,
    confine: bool,
) -> Result<ExitStatus, Error> {
    // Reap the workload concurrently: the filter is released only when the task is reaped, and
    // the sentry waits for that release.
    let reaper = std::thread::spawn(move || {
        let mut st = 0;
        // SAFETY: waiting for our own child.
        let r = unsafe { libc::waitpid(pid, &mut st, 0) };
        (r, st)
    });
    let served = (|| {
        let listener = recv_fd(sock.as_fd())?;
        if confine {
            return serve_confined(listener, gofer_client, cfg, log);
        }
        let mut sentry = Sentry::new(cfg, Client::new(gofer_client))?;
        if let Some(w) = log {
            sentry = sentry.with_log(w);
        }
        sentry.serve_seccomp(listener)
    })();
    if served.is_err() {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
    let (r, st) = reaper
        .join()
        .map_err(|_| Error::Invalid("reaper thread panicked".into()))?;
    served?;
    if r < 0 {
        return Err(Error::last("waitpid workload"));
    }
    Ok(ExitStatus::from_raw(st))
}

/// Serve in a forked, confined child; strace lines come back through a pipe.
fn serve_confined(
    listener: OwnedFd,
    gofer_client: OwnedFd,
    cfg: SentryConfig,
    log: Option<Box<dyn std::io::Write + Send>>,
) -> Result<(), Error> {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for two fds.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(Error::last("pipe"));
    }
    // SAFETY: two fresh fds we own.
    let (rd, wr) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    // SAFETY: the child confines itself, serves and _exits; glibc keeps malloc usable after
    // fork and the child uses no lock another thread of this process could hold.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(Error::last("fork sentry"));
    }
    if pid == 0 {
        drop(rd);
        // Only what the sentry needs: see `fork_gofer` for why stray fds matter.
        close_fds_except(&[
            wr.as_raw_fd(),
            listener.as_raw_fd(),
            gofer_client.as_raw_fd(),
        ]);
        let code = (|| -> Result<(), Error> {
            crate::confine::confine()?;
            let s = Sentry::new(cfg, Client::new(gofer_client))?
                .with_log(Box::new(std::fs::File::from(wr)));
            s.serve_seccomp(listener)
        })()
        .map_or(1, |_| 0);
        // SAFETY: end the child without running the parent's atexit handlers.
        unsafe { libc::_exit(code) };
    }
    drop((wr, listener, gofer_client));
    let mut log = log;
    let mut src = std::fs::File::from(rd);
    let mut buf = Vec::new();
    let _ = std::io::Read::read_to_end(&mut src, &mut buf);
    match log.as_mut() {
        Some(w) => {
            let _ = w.write_all(&buf);
        }
        None => {
            let _ = std::io::Write::write_all(&mut std::io::stderr(), &buf);
        }
    }
    let mut st = 0;
    // SAFETY: waiting for our own child.
    unsafe { libc::waitpid(pid, &mut st, 0) };
    if libc::WIFEXITED(st) && libc::WEXITSTATUS(st) == 0 {
        Ok(())
    } else {
        Err(Error::Invalid(format!(
            "confined sentry failed (wait status {st:#x})"
        )))
    }
}

/// Close every fd above stderr except `keep` (close_range over the gaps; async-signal-safe).
fn close_fds_except(keep: &[i32]) {
    // No allocation: this runs between fork and exec/serve.
    let mut sorted = [u32::MAX; 4];
    for (d, &f) in sorted.iter_mut().zip(keep.iter()) {
        *d = f as u32;
    }
    sorted.sort_unstable();
    let mut from = 3u32;
    for k in sorted.into_iter().filter(|&k| k >= 3 && k != u32::MAX) {
        if k > from {
            // SAFETY: closes fd numbers only; none of them is used by this child afterwards.
            unsafe { libc::syscall(libc::SYS_close_range, from, k - 1, 0) };
        }
        from = k + 1;
    }
    // SAFETY: as above.
    unsafe { libc::syscall(libc::SYS_close_range, from, u32::MAX, 0) };
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

fn unix_pair() -> Result<(OwnedFd, OwnedFd), Error> {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for two fds.
    if unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
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

/// Fork the gofer serving `root` on `sock`. `client_end` (the sentry's end) is closed in the
/// child along with every other fd but `sock` and `root`.
pub(crate) fn fork_gofer(
    sock: OwnedFd,
    root: OwnedFd,
    client_end: i32,
) -> Result<libc::pid_t, Error> {
    // SAFETY: the child serves and _exits. glibc makes malloc usable after fork; the gofer
    // touches no lock another thread of this process could hold, except stderr when debugging.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(Error::last("fork gofer"));
    }
    if pid == 0 {
        // Die with the launcher rather than linger.
        // SAFETY: prctl with integer arguments.
        unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) };
        // The gofer must not hold the client end, or it would never see the sentry hang up;
        // nor any other fd of this process (another launch's gofer socket, when launches run
        // in parallel threads, would keep that gofer alive: two gofers holding each other's
        // client ends never exit).
        debug_assert!(client_end != sock.as_raw_fd() && client_end != root.as_raw_fd());
        close_fds_except(&[sock.as_raw_fd(), root.as_raw_fd()]);
        // The sentry applies the workload's umask to every create; the gofer must not apply
        // its own on top.
        // SAFETY: umask has no failure modes.
        unsafe { libc::umask(0) };
        let cfg = gofer::server::ServerConfig::default();
        let code = match gofer::server::serve(sock, root, &cfg) {
            Ok(()) => 0,
            Err(_) => 1,
        };
        // SAFETY: end the child without running the parent's atexit handlers.
        unsafe { libc::_exit(code) };
    }
    drop(sock);
    drop(root);
    Ok(pid)
}

/// The workload side: chroot, filter, hand over the listener, exec. Never returns.
fn workload_child(
    root: &CString,
    proc_dir: Option<&CString>,
    prog: &Program,
    sock: i32,
    argv: &[*const libc::c_char],
    envp: &[*const libc::c_char],
) -> ! {
    // SAFETY: raw syscalls with pointers prepared before fork; every path ends in _exit/exec.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
        // The workload gets stdio and nothing else of ours (no gofer socket, no listener).
        close_fds_except(&[sock]);
        enter_root(root, proc_dir);
        let listener = match install_program(prog) {
            Ok(fd) => fd,
            Err(_) => libc::_exit(125),
        };
        if send_fd_raw(sock, listener.as_raw_fd()) != 0 {
            libc::_exit(124);
        }
        // The workload must not keep the listener: it could answer its own syscalls.
        libc::close(listener.as_raw_fd());
        std::mem::forget(listener);
        libc::close(sock);
        libc::execve(argv[0], argv.as_ptr(), envp.as_ptr());
        libc::_exit(127);
    }
}

/// sendmsg with one SCM_RIGHTS fd, on the stack only (async-signal-safe).
fn send_fd_raw(sock: i32, fd: i32) -> i32 {
    #[repr(C)]
    struct Cmsg {
        hdr: libc::cmsghdr,
        fd: i32,
        pad: i32,
    }
    let mut byte = *b"L";
    let mut iov = libc::iovec {
        iov_base: byte.as_mut_ptr().cast(),
        iov_len: 1,
    };
    // SAFETY: plain data; zeroed is valid.
    let mut c: Cmsg = unsafe { std::mem::zeroed() };
    // SAFETY: CMSG_LEN is a pure computation.
    c.hdr.cmsg_len = unsafe { libc::CMSG_LEN(4) } as _;
    c.hdr.cmsg_level = libc::SOL_SOCKET;
    c.hdr.cmsg_type = libc::SCM_RIGHTS;
    c.fd = fd;
    // SAFETY: plain data; zeroed is valid.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = (&mut c as *mut Cmsg).cast();
    // SAFETY: as above.
    msg.msg_controllen = unsafe { libc::CMSG_SPACE(4) } as _;
    // SAFETY: `msg` points at live stack buffers for the duration of the call.
    let r = unsafe { libc::sendmsg(sock, &msg, 0) };
    if r == 1 {
        0
    } else {
        -1
    }
}

/// In a forked workload child: mount a procfs in a private mount namespace (so it never
/// appears on the host) when asked, then chroot into the rootfs. Exits the child (123: proc,
/// 126: chroot) on failure. Raw syscalls only: safe between fork and exec.
pub(crate) fn enter_root(root: &CString, proc_dir: Option<&CString>) {
    // SAFETY: raw syscalls on NUL-terminated strings prepared before fork; failures _exit.
    unsafe {
        if let Some(p) = proc_dir {
            if libc::unshare(libc::CLONE_NEWNS) != 0
                || libc::mount(
                    std::ptr::null(),
                    c"/".as_ptr(),
                    std::ptr::null(),
                    libc::MS_REC | libc::MS_PRIVATE,
                    std::ptr::null(),
                ) != 0
                || libc::mount(
                    c"proc".as_ptr(),
                    p.as_ptr(),
                    c"proc".as_ptr(),
                    libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
                    std::ptr::null(),
                ) != 0
            {
                libc::_exit(123);
            }
        }
        if libc::chroot(root.as_ptr()) != 0 || libc::chdir(c"/".as_ptr()) != 0 {
            libc::_exit(126);
        }
    }
}
