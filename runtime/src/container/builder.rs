//! `create`: from a bundle to a container whose init waits for `start`.
//!
//! Failure at any step leaves nothing behind: the guard kills the half-made init, removes
//! its cgroups and the state directory.

use super::cgroup;
use super::state::{self, State, Status};
use crate::linux::init::{self, InitConfig};
use crate::linux::sync::{self, Msg};
use crate::linux::{capabilities, console, hooks, seccomp};
use crate::sentry_mode::PlatformKind;
use anyhow::{anyhow, bail, Context, Result};
use oci_spec::runtime::Spec;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sandbox {
    Native,
    Sentry,
}

pub struct ContainerBuilder {
    pub id: String,
    pub root: PathBuf,
    pub bundle: PathBuf,
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
    pub preserve_fds: u32,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    pub systemd_cgroup: bool,
    pub sandbox: Option<Sandbox>,
    /// Sentry platform from the command line (overrides the annotation).
    pub platform: Option<PlatformKind>,
    /// Sentry mode: log every emulated syscall.
    pub strace: bool,
    pub debug: bool,
    pub log: Option<PathBuf>,
}

/// runc's rule: ids are non-empty and made of [A-Za-z0-9_+.-], and never "." or "..".
pub fn validate_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id != "."
        && id != ".."
        && id.len() <= 1024
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_+-.".contains(c));
    if !ok {
        bail!("invalid container id {id:?}: use letters, digits and _+-.");
    }
    Ok(())
}

/// Removes what a failed create made, in reverse order.
struct Cleanup {
    dir: PathBuf,
    helpers: Vec<i32>,
    init_pid: Option<i32>,
    cgroup: Option<serde_json::Value>,
    armed: bool,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        for pid in &self.helpers {
            let _ =
                nix::sys::signal::kill(nix::unistd::Pid::from_raw(*pid), nix::sys::signal::SIGKILL);
        }
        if let Some(pid) = self.init_pid {
            let _ =
                nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGKILL);
            let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None);
        }
        if let Some(cg) = self.cgroup.take() {
            let _ = cgroup::destroy(&cg);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl ContainerBuilder {
    pub fn create(self) -> Result<State> {
        validate_id(&self.id)?;
        std::fs::create_dir_all(&self.root)
            .with_context(|| format!("create state root {}", self.root.display()))?;
        let bundle = std::fs::canonicalize(&self.bundle)
            .with_context(|| format!("bundle {}", self.bundle.display()))?;
        let (spec, raw) = crate::config::load(&bundle)?;
        for w in crate::config::validate(&spec)? {
            crate::warn!("{w}");
        }
        let dir = State::dir(&self.root, &self.id);
        match std::fs::create_dir(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                bail!("container with id exists: {}", self.id)
            }
            Err(e) => return Err(e).with_context(|| format!("create state dir {}", dir.display())),
        }
        let mut guard = Cleanup {
            dir: dir.clone(),
            helpers: vec![],
            init_pid: None,
            cgroup: None,
            armed: true,
        };
        let state = self.create_in(&dir, bundle, spec, raw, &mut guard)?;
        guard.armed = false;
        Ok(state)
    }

    fn create_in(
        &self,
        dir: &Path,
        bundle: PathBuf,
        spec: Spec,
        raw: serde_json::Value,
        guard: &mut Cleanup,
    ) -> Result<State> {
        let root_path = spec
            .root()
            .as_ref()
            .map(|r| r.path().clone())
            .unwrap_or_default();
        let rootfs = std::fs::canonicalize(bundle.join(&root_path))
            .with_context(|| format!("rootfs {}", root_path.display()))?;
        let process = spec
            .process()
            .clone()
            .ok_or_else(|| anyhow!("config.json: process is required"))?;
        let mut warnings = Vec::new();
        let caps = capabilities::from_spec(process.capabilities().as_ref(), &mut warnings)
            .map_err(|e| anyhow!("process.capabilities: {e}"))?;
        warnings.iter().for_each(|w| crate::warn!("{w}"));
        let (seccomp_ctx, seccomp_agent) =
            seccomp::prepare(spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()))
                .map_err(|e| anyhow!(e))?;
        let terminal = process.terminal().unwrap_or(false);
        let console = match (&self.console_socket, terminal) {
            (Some(p), true) => Some(console::connect_socket(p).map_err(|e| anyhow!(e))?),
            (None, true) => {
                bail!("cannot allocate tty if mantle will detach without setting console socket")
            }
            (Some(_), false) => {
                bail!("cannot use console socket if mantle will not detach or allocate tty")
            }
            (None, false) => None,
        };
        let sandbox = self.sandbox_mode(&spec)?;
        let platform = self.platform_kind(&spec)?;
        let notify_profile = spec
            .linux()
            .as_ref()
            .and_then(|l| l.seccomp().as_ref())
            .is_some_and(seccomp::uses_notify);
        if sandbox == Sandbox::Sentry && platform == PlatformKind::Seccomp && notify_profile {
            // The kernel allows one notification listener per filter chain.
            bail!("linux.seccomp uses SCMP_ACT_NOTIFY, which the sentry's seccomp platform cannot share: use --platform=ptrace or native mode");
        }
        let annotations = spec.annotations().clone().unwrap_or_default();
        let mut state = State {
            oci_version: spec.version().clone(),
            id: self.id.clone(),
            pid: 0,
            init_start_time: 0,
            bundle: bundle.clone(),
            rootfs: rootfs.clone(),
            created: crate::logging::now_rfc3339(),
            annotations,
            owner: String::new(),
            cgroup: None,
            platform: if sandbox == Sandbox::Sentry {
                platform.name().into()
            } else {
                String::new()
            },
            sandbox: if sandbox == Sandbox::Sentry {
                "sentry".into()
            } else {
                "native".into()
            },
            helpers: vec![],
            exit_reason: None,
            started: false,
            paused: false,
            config: raw,
        };
        // Cgroup placement is recorded before anything is created, so `delete --force` can
        // clean up even if this process is killed mid-way.
        let cg = cgroup::prepare(&spec, &self.id, self.systemd_cgroup)?;
        state.cgroup = Some(cg.clone());
        state.save(dir).context("save state")?;
        guard.cgroup = Some(cg.clone());

        let link = crate::sentry_mode::link(sandbox)?;
        let (sentry_end, before_exec) = match link {
            Some(l) => (
                Some(l.runtime_end),
                Some(crate::sentry_mode::before_exec_hook(l.init_end, platform)),
            ),
            None => (None, None),
        };
        let (_dir_fd, addr) = state::start_socket_addr(dir).context("start socket address")?;
        let listener = UnixListener::bind(addr).context("bind start socket")?;
        let (parent, child) = sync::pair()?;
        let state_json = state_for_hooks(&state, Status::Creating, 0);
        let cfg = InitConfig {
            spec: spec.clone(),
            rootfs,
            bundle,
            caps,
            seccomp: seccomp_ctx,
            seccomp_agent,
            console,
            start_listener: Some(listener),
            preserve_fds: self.preserve_fds,
            no_pivot: self.no_pivot,
            no_new_keyring: self.no_new_keyring,
            join_pid: None,
            state_json,
            before_exec,
        };
        crate::debug!("forking stage 1 for {}", self.id);
        let stage1 = match init::fork_plain().context("fork")? {
            0 => {
                drop(parent);
                init::stage1(cfg, child)
            }
            pid => pid,
        };
        drop(child);
        drop(cfg);
        let result = self.drive(&parent, stage1, &spec, &mut state, &cg, guard);
        // On failure stage 1 may still be blocked on the channel (e.g. waiting for id maps
        // we failed to write): close our end so it reads EOF, and kill it, before reaping.
        drop(parent);
        if result.is_err() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(stage1),
                nix::sys::signal::SIGKILL,
            );
        }
        let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(stage1), None);
        result?;
        if let Some(end) = sentry_end {
            state.helpers = self.start_sentry(end, &spec, &state, dir)?;
            guard.helpers = state.helpers.clone();
        }
        state.save(dir).context("save state")?;
        if let Some(p) = &self.pid_file {
            write_pid_file(p, state.pid)?;
        }
        Ok(state)
    }

    /// The runtime's half of the sync protocol.
    fn drive(
        &self,
        chan: &sync::Channel,
        stage1: i32,
        spec: &Spec,
        state: &mut State,
        cg: &serde_json::Value,
        guard: &mut Cleanup,
    ) -> Result<()> {
        loop {
            match chan.recv("container set up")? {
                Msg::UsernsReady => {
                    let linux = spec.linux().clone().unwrap_or_default();
                    crate::linux::namespaces::write_id_maps(stage1, &linux)
                        .map_err(|e| anyhow!(e))?;
                    chan.send(&Msg::UsernsMapped)?;
                }
                Msg::InitPid(pid) => {
                    crate::debug!("container init is pid {pid}");
                    guard.init_pid = Some(pid);
                    state.pid = pid;
                    state.init_start_time = super::state::proc_start_time(pid).unwrap_or(0);
                    let placed = cgroup::apply(cg, spec, pid)?;
                    guard.cgroup = Some(placed.clone());
                    state.cgroup = Some(placed);
                    chan.send(&Msg::CgroupJoined)?;
                }
                Msg::MountsReady => {
                    let h = spec.hooks().clone().unwrap_or_default();
                    let sj = state_for_hooks(state, Status::Creating, state.pid);
                    // prestart is deprecated but still run, before createRuntime (runtime.md).
                    hooks::run_all("prestart", h.prestart().as_deref().unwrap_or(&[]), &sj)
                        .map_err(|e| anyhow!(e))?;
                    hooks::run_all(
                        "createRuntime",
                        h.create_runtime().as_deref().unwrap_or(&[]),
                        &sj,
                    )
                    .map_err(|e| anyhow!(e))?;
                    // createContainer runs in the container's namespaces: the init does it.
                    let created = state_for_hooks(state, Status::Created, state.pid);
                    chan.send(&Msg::HooksDone(
                        String::from_utf8_lossy(&created).into_owned(),
                    ))?;
                }
                Msg::Ready => return Ok(()),
                Msg::Error(e) => bail!("{e}"),
                other => bail!("unexpected message from container init: {other:?}"),
            }
        }
    }

    fn start_sentry(
        &self,
        end: std::os::fd::OwnedFd,
        spec: &Spec,
        state: &State,
        dir: &Path,
    ) -> Result<Vec<i32>> {
        let linux = spec.linux().clone().unwrap_or_default();
        crate::sentry_mode::spawn_supervisor(
            end,
            crate::sentry_mode::SupervisorConfig {
                platform: PlatformKind::parse(&state.platform)?,
                init_pid: state.pid,
                state_dir: dir.to_path_buf(),
                hostname: spec.hostname().clone().unwrap_or_default(),
                strace: self.strace,
                debug: self.debug,
                log: self.log.clone(),
                masked_paths: linux.masked_paths().clone().unwrap_or_default(),
            },
        )
    }

    fn platform_kind(&self, spec: &Spec) -> Result<PlatformKind> {
        if let Some(p) = self.platform {
            return Ok(p);
        }
        match spec
            .annotations()
            .as_ref()
            .and_then(|a| a.get("dev.mantle.platform"))
        {
            None => Ok(PlatformKind::Seccomp),
            Some(p) => PlatformKind::parse(p).context("annotation dev.mantle.platform"),
        }
    }

    fn sandbox_mode(&self, spec: &Spec) -> Result<Sandbox> {
        if let Some(s) = self.sandbox {
            return Ok(s);
        }
        match spec
            .annotations()
            .as_ref()
            .and_then(|a| a.get("dev.mantle.sandbox"))
            .map(String::as_str)
        {
            None | Some("native") => Ok(Sandbox::Native),
            Some("sentry") => Ok(Sandbox::Sentry),
            Some(other) => {
                bail!("annotation dev.mantle.sandbox: unknown mode {other:?} (native or sentry)")
            }
        }
    }
}

/// The OCI state document given to hooks on stdin.
pub fn state_for_hooks(s: &State, status: Status, pid: i32) -> Vec<u8> {
    let mut v = serde_json::json!({
        "ociVersion": s.oci_version,
        "id": s.id,
        "status": status.to_string(),
        "bundle": s.bundle,
        "annotations": s.annotations,
    });
    if pid > 0 {
        v["pid"] = pid.into();
    }
    serde_json::to_vec(&v).unwrap_or_default()
}

/// Written atomically: callers poll for the file and must never read a partial pid.
pub fn write_pid_file(path: &Path, pid: i32) -> Result<()> {
    let abs = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()?.join(path)
    };
    let tmp = abs.with_file_name(format!(
        ".{}.tmp",
        abs.file_name().and_then(|n| n.to_str()).unwrap_or("pid")
    ));
    std::fs::write(&tmp, pid.to_string())
        .with_context(|| format!("write pid file {}", tmp.display()))?;
    std::fs::rename(&tmp, &abs).with_context(|| format!("write pid file {}", abs.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_follow_runc_rules() {
        assert!(validate_id("abc-1_2.3+x").is_ok());
        for bad in ["", ".", "..", "a/b", "a b", "x\0"] {
            assert!(validate_id(bad).is_err(), "{bad:?}");
        }
    }
}
