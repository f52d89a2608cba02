//! How the gofer process locks itself down before it serves.
//!
//! Threat: a bug in the gofer (or in the kernel code it reaches) turned into code execution
//! by a hostile workload's requests. What such an attacker can do is bounded by what the
//! process still may do after `confine`:
//!
//! 1. open the mask sources (/dev/null, an empty detached tmpfs) while it still can;
//! 2. `no_new_privs` (needed for an unprivileged seccomp filter and Landlock, and no exec
//!    can ever gain privileges);
//! 3. not dumpable (other processes of the same uid cannot ptrace it or read its fds);
//! 4. Landlock: file access only beneath the container root (minus executing and making
//!    device nodes) and read access to the empty mask directory; no TCP, no abstract unix
//!    sockets, no signals to other domains where the kernel supports those;
//! 5. capabilities: only those needed to act on any file of the container as its owner
//!    would (CHOWN, DAC_OVERRIDE, DAC_READ_SEARCH, FOWNER, FSETID, SETFCAP); the bounding and
//!    ambient sets are cleared of the rest;
//! 6. seccomp last (so the steps above need not be allowed): an allowlist of exactly the
//!    system calls the server uses; anything else fails with EPERM, other architectures and
//!    x32 calls kill the process.
//!
//! Order matters: Landlock and seccomp need no_new_privs (or CAP_SYS_ADMIN); capabilities
//! are dropped after Landlock (which does not need them) and before seccomp (which would
//! forbid capset).

mod caps;
mod landlock;
mod seccomp;

use std::os::fd::OwnedFd;

use crate::server::ServerConfig;
use crate::Error;

pub use self::caps::KEPT as KEPT_CAPABILITIES;

/// What `confine` put in place. `mantle features` can show it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfinementReport {
    pub no_new_privs: bool,
    /// Landlock ABI version in force, or None when the kernel lacks or disables it.
    pub landlock_abi: Option<u32>,
    /// Whether TCP bind/connect are denied by Landlock (ABI >= 4).
    pub landlock_net: bool,
    /// Whether abstract unix sockets and signals are scoped by Landlock (ABI >= 6).
    pub landlock_scoped: bool,
    /// Effective capabilities after the drop (bit mask).
    pub capabilities: u64,
    /// Whether the bounding set could be reduced (needs CAP_SETPCAP).
    pub bounding_set_dropped: bool,
    /// Number of system calls the seccomp filter allows.
    pub seccomp_syscalls: usize,
    /// Masked files open as /dev/null.
    pub mask_null: bool,
    /// Masked directories open as an empty read-only tmpfs.
    pub mask_empty_dir: bool,
    /// Soft limit on open fds (each handle holds one; at most `server::MAX_HANDLES`).
    pub nofile: u64,
}

/// What the kernel offers, without changing anything (for `mantle features`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Support {
    /// Landlock ABI version, None if unsupported or disabled.
    pub landlock_abi: Option<u32>,
    /// openat2 with RESOLVE_IN_ROOT exists (Linux 5.6).
    pub openat2: bool,
}

/// Probe the kernel for what confinement is available.
pub fn support() -> Support {
    Support {
        landlock_abi: landlock::abi(),
        openat2: openat2_works(),
    }
}

fn openat2_works() -> bool {
    // SAFETY: AT_FDCWD is a valid directory fd for openat2 with "/".
    let cwd = unsafe { std::os::fd::BorrowedFd::borrow_raw(libc::AT_FDCWD) };
    crate::sys::openat2(cwd, c"/", libc::O_PATH, 0, libc::RESOLVE_IN_ROOT).is_ok()
}

/// Confine the calling process (all its threads) for serving `root`. Irreversible: call it
/// in the gofer process (or a forked child in tests), right before `server::serve`.
pub fn confine(root: &OwnedFd, cfg: &ServerConfig) -> Result<ConfinementReport, Error> {
    let _ = cfg; // policy is per request; confinement is the same for every config
    let masks = crate::server::prepare_mask_sources();
    set_no_new_privs()?;
    set_not_dumpable()?;
    let empty_dir = masks.empty_dir.as_ref().map(|(fd, _)| fd);
    let ll = landlock::restrict(root, empty_dir)?;
    let (capabilities, bounding_set_dropped) = caps::drop_to_kept()?;
    let nofile = raise_nofile();
    let seccomp_syscalls = seccomp::install()?;
    Ok(ConfinementReport {
        no_new_privs: true,
        landlock_abi: ll.abi,
        landlock_net: ll.net,
        landlock_scoped: ll.scoped,
        capabilities,
        bounding_set_dropped,
        seccomp_syscalls,
        mask_null: masks.null.is_some(),
        mask_empty_dir: masks.empty_dir.is_some(),
        nofile,
    })
}

/// Every handle is an open fd: raise the soft fd limit to the hard one (best effort; seccomp
/// forbids it later). Returns the soft limit in force.
fn raise_nofile() -> u64 {
    // SAFETY: getrlimit/setrlimit into and from a local struct.
    unsafe {
        let mut r: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) != 0 {
            return 0;
        }
        if r.rlim_cur < r.rlim_max {
            let want = libc::rlimit {
                rlim_cur: r.rlim_max,
                rlim_max: r.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &want) == 0 {
                return want.rlim_cur;
            }
        }
        r.rlim_cur
    }
}

fn prctl(step: &'static str, op: libc::c_int, arg: libc::c_ulong) -> Result<(), Error> {
    // SAFETY: prctl with integer arguments only.
    let rc = unsafe { libc::prctl(op, arg, 0, 0, 0) };
    if rc < 0 {
        return Err(Error::Confine {
            step,
            source: std::io::Error::last_os_error(),
        });
    }
    Ok(())
}

fn set_no_new_privs() -> Result<(), Error> {
    prctl("no_new_privs", libc::PR_SET_NO_NEW_PRIVS, 1)
}

fn set_not_dumpable() -> Result<(), Error> {
    prctl("not dumpable", libc::PR_SET_DUMPABLE, 0)
}
