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
use anyhow::{bail, Result};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

/// The socket pair that carries the workload's listener fd to the supervisor.
pub struct Link {
    pub runtime_end: OwnedFd,
    pub init_end: OwnedFd,
}

pub fn link(mode: Sandbox) -> Result<Option<Link>> {
    if mode == Sandbox::Native {
        return Ok(None);
    }
    bail!("sentry mode is not available in this build yet")
}

pub fn before_exec_hook(_sock: OwnedFd) -> Box<dyn Fn() -> Result<(), String>> {
    Box::new(|| Err("sentry mode is not available in this build yet".into()))
}

pub struct SupervisorConfig {
    pub init_pid: i32,
    pub state_dir: PathBuf,
    pub hostname: String,
    pub strace: bool,
    pub debug: bool,
    pub log: Option<PathBuf>,
    pub read_only: bool,
    pub readonly_paths: Vec<String>,
    pub masked_paths: Vec<String>,
}

pub fn spawn_supervisor(_end: OwnedFd, _cfg: SupervisorConfig) -> Result<Vec<i32>> {
    bail!("sentry mode is not available in this build yet")
}

pub fn connect_for_exec(_dir: &Path) -> Result<OwnedFd> {
    bail!("sentry mode is not available in this build yet")
}

pub fn features() -> serde_json::Value {
    serde_json::json!({ "sandboxes": ["native"], "sentry": "not available in this build yet" })
}

pub fn syscall_table() -> String {
    "sentry mode is not available in this build yet".into()
}
