//! Spawning, timing and waiting for runtime commands.
//!
//! Every runtime command goes through the same [`Wrapper`], so whatever it costs is common to
//! all runtimes. Waiting uses pidfds: `poll` on a pidfd wakes exactly when the process exits,
//! for children and non-children alike, with a timeout and without a watchdog thread, and a
//! pidfd cannot be confused with a recycled pid when we kill on timeout.

use anyhow::{bail, Context, Result};
use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// What is done between `fork` and `exec` of every runtime command.
///
/// crun refuses a hybrid cgroup layout (a cgroup2 mount beside v1 controllers). The wrapper
/// gives each command a private mount namespace where /sys/fs/cgroup/unified is unmounted, so
/// every runtime sees the same pure-v1 layout. It never changes the host's mounts: the mount
/// namespace is new and private before anything is unmounted.
#[derive(Clone, Debug)]
pub struct Wrapper {
    /// unshare(CLONE_NEWNS) + make / private.
    pub private_mount_ns: bool,
    /// Detach /sys/fs/cgroup/unified inside that namespace.
    pub umount_unified: bool,
}

impl Wrapper {
    pub fn describe(&self) -> String {
        match (self.private_mount_ns, self.umount_unified) {
            (false, _) => "none: runtimes run directly".into(),
            (true, false) => "unshare(CLONE_NEWNS) + mount --make-rprivate / before exec".into(),
            (true, true) => "in the forked child before exec: unshare(CLONE_NEWNS), \
                             mount(\"/\", MS_REC|MS_PRIVATE), umount2(\"/sys/fs/cgroup/unified\", \
                             MNT_DETACH) (= `unshare -m --propagation private sh -c 'umount \
                             /sys/fs/cgroup/unified && exec RUNTIME ...'` without the extra \
                             processes)"
                .into(),
        }
    }

    /// A command for `program` with the wrapper applied.
    pub fn command(&self, program: &Path) -> Command {
        let mut cmd = Command::new(program);
        if !self.private_mount_ns {
            return cmd;
        }
        let root = CString::new("/").expect("constant");
        let unified = CString::new("/sys/fs/cgroup/unified").expect("constant");
        let umount = self.umount_unified;
        // SAFETY: the closure runs in the forked child before exec and only makes raw
        // syscalls (async-signal-safe) on pointers prepared before the fork.
        unsafe {
            cmd.pre_exec(move || {
                if libc::unshare(libc::CLONE_NEWNS) != 0 {
                    return Err(io::Error::last_os_error());
                }
                let flags = libc::MS_REC | libc::MS_PRIVATE;
                if libc::mount(
                    std::ptr::null(),
                    root.as_ptr(),
                    std::ptr::null(),
                    flags,
                    std::ptr::null(),
                ) != 0
                {
                    return Err(io::Error::last_os_error());
                }
                if umount && libc::umount2(unified.as_ptr(), libc::MNT_DETACH) != 0 {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            });
        }
        cmd
    }
}

/// True when /sys/fs/cgroup/unified is a cgroup2 mount (the hybrid layout crun refuses).
pub fn host_is_hybrid() -> bool {
    std::fs::read_to_string("/proc/self/mountinfo")
        .map(|m| {
            m.lines().any(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                f.get(4) == Some(&"/sys/fs/cgroup/unified") && l.contains(" - cgroup2 ")
            })
        })
        .unwrap_or(false)
}

/// Makes this process the reaper of orphaned descendants, as a container manager (conmon,
/// containerd-shim) is: a container init left behind by `create` becomes our child.
pub fn become_subreaper() -> Result<()> {
    // SAFETY: prctl with integer arguments only.
    if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } != 0 {
        bail!(
            "prctl(PR_SET_CHILD_SUBREAPER): {}",
            io::Error::last_os_error()
        );
    }
    Ok(())
}

/// Reaps every exited child without blocking; returns (pid, ru_maxrss KiB) of each.
pub fn reap_exited() -> Vec<(i32, i64)> {
    let mut out = Vec::new();
    loop {
        let mut status = 0;
        // SAFETY: rusage is plain data filled by wait4.
        let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: valid pointers to locals.
        let pid = unsafe { libc::wait4(-1, &mut status, libc::WNOHANG, &mut ru) };
        if pid <= 0 {
            return out;
        }
        out.push((pid, ru.ru_maxrss));
    }
}

pub fn pidfd_open(pid: i32) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd is a fresh descriptor owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Waits until the process behind `pidfd` exits; false on timeout.
pub fn wait_pidfd(pidfd: &OwnedFd, timeout: Duration) -> io::Result<bool> {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let mut p = libc::pollfd {
            fd: pidfd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = left.as_millis().min(i32::MAX as u128) as i32;
        // SAFETY: one valid pollfd.
        let r = unsafe { libc::poll(&mut p, 1, ms) };
        if r > 0 {
            return Ok(true);
        }
        if r == 0 {
            return Ok(false);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

pub fn kill_pidfd(pidfd: &OwnedFd) {
    // SAFETY: signals exactly the process the pidfd refers to (no pid reuse race).
    unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            libc::SIGKILL,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
}

/// Waits for a pid that may or may not be our child, then reaps it if it is.
/// Returns the time it took, or an error on timeout (after killing it).
pub fn wait_any_pid(pid: i32, timeout: Duration) -> Result<Duration> {
    let t = Instant::now();
    let fd = match pidfd_open(pid) {
        Ok(fd) => fd,
        // Already gone and reaped by someone else.
        Err(e) if e.raw_os_error() == Some(libc::ESRCH) => return Ok(t.elapsed()),
        Err(e) => return Err(e).context("pidfd_open"),
    };
    if !wait_pidfd(&fd, timeout)? {
        kill_pidfd(&fd);
        bail!("container process {pid} still running after {timeout:?}; killed");
    }
    let d = t.elapsed();
    let mut status = 0;
    // SAFETY: reaps only this pid, if it is our child (ECHILD otherwise, ignored).
    unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
    Ok(d)
}

/// The result of one command.
#[derive(Debug)]
pub struct Outcome {
    pub elapsed: Duration,
    pub ok: bool,
    pub status: String,
    /// ru_maxrss of the process and its reaped descendants, KiB.
    pub maxrss_kib: i64,
}

/// A started command: its pid and pidfd.
pub struct Running {
    pub pid: i32,
    pub pidfd: OwnedFd,
    pub started: Instant,
}

/// Starts `cmd` with stdin from /dev/null, stdout and stderr to the given files.
pub fn start(mut cmd: Command, stdout: &Path, stderr: &Path) -> Result<Running> {
    let out = File::create(stdout).with_context(|| format!("create {}", stdout.display()))?;
    let err = File::create(stderr).with_context(|| format!("create {}", stderr.display()))?;
    cmd.stdin(Stdio::null()).stdout(out).stderr(err);
    let started = Instant::now();
    let child = cmd.spawn().with_context(|| format!("spawn {cmd:?}"))?;
    let pid = child.id() as i32;
    // The child is waited with wait4 below, never through `Child` (dropping it does not wait).
    drop(child);
    let pidfd = pidfd_open(pid).context("pidfd_open of a child")?;
    Ok(Running {
        pid,
        pidfd,
        started,
    })
}

/// Waits for a started command (killing it after `timeout`).
pub fn finish(r: Running, timeout: Duration) -> Result<Outcome> {
    let exited = wait_pidfd(&r.pidfd, timeout)?;
    if !exited {
        kill_pidfd(&r.pidfd);
    }
    let mut status = 0;
    // SAFETY: rusage is plain data filled by wait4.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: the pid is our child and has exited (or was just killed).
    let w = unsafe { libc::wait4(r.pid, &mut status, 0, &mut ru) };
    let elapsed = r.started.elapsed();
    if w != r.pid {
        bail!("wait4({}): {}", r.pid, io::Error::last_os_error());
    }
    let (ok, desc) = if !exited {
        (false, format!("timed out after {timeout:?}"))
    } else if libc::WIFEXITED(status) {
        let c = libc::WEXITSTATUS(status);
        (c == 0, format!("exit status {c}"))
    } else {
        (
            false,
            format!("killed by signal {}", libc::WTERMSIG(status)),
        )
    };
    Ok(Outcome {
        elapsed,
        ok,
        status: desc,
        maxrss_kib: ru.ru_maxrss,
    })
}

/// Runs a command to completion.
pub fn run(cmd: Command, stdout: &Path, stderr: &Path, timeout: Duration) -> Result<Outcome> {
    finish(start(cmd, stdout, stderr)?, timeout)
}

/// The first non-empty line of a file (an error message), shortened.
pub fn first_line(p: &Path) -> String {
    let s = std::fs::read_to_string(p).unwrap_or_default();
    let line = s
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim();
    let mut l: String = line.chars().take(160).collect();
    if l.is_empty() {
        l = "(no message)".into();
    }
    l
}
