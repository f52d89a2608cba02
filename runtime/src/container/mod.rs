//! Container lifecycle over persisted state: the operations behind each CLI command.

pub mod builder;
pub mod cgroup;
pub mod exec;
pub mod state;
pub mod tty;

use anyhow::{anyhow, bail, Context, Result};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use state::{State, Status, START_SOCKET};
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

pub struct Container {
    pub state: State,
    pub dir: PathBuf,
}

impl Container {
    /// Load by id; the error wording ("does not exist") is what podman and containerd match.
    pub fn load(root: &Path, id: &str) -> Result<Container> {
        builder::validate_id(id)?;
        let dir = State::dir(root, id);
        match State::load(&dir) {
            Ok(state) => Ok(Container { state, dir }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                bail!("container {id} does not exist")
            }
            Err(e) => Err(anyhow!(e).context(format!("load state of {id}"))),
        }
    }

    pub fn status(&self) -> Status {
        let s = &self.state;
        if s.pid == 0 {
            return if self.dir.join(START_SOCKET).exists() {
                Status::Creating
            } else {
                Status::Stopped
            };
        }
        if !state::init_alive(s.pid, s.init_start_time) {
            return Status::Stopped;
        }
        if !s.started && self.dir.join(START_SOCKET).exists() {
            return Status::Created;
        }
        if s.paused || cgroup::is_frozen(s.cgroup.as_ref()) {
            return Status::Paused;
        }
        Status::Running
    }

    /// runc's `state` document.
    pub fn oci_state(&self) -> serde_json::Value {
        let status = self.status();
        let s = &self.state;
        let pid = if status == Status::Stopped { 0 } else { s.pid };
        let mut annotations = s.annotations.clone();
        if let Some(r) = self.exit_reason(status) {
            annotations.insert("dev.mantle.exit-reason".into(), r);
        }
        let mut v = serde_json::json!({
            "ociVersion": s.oci_version,
            "id": s.id,
            "pid": pid,
            "status": status.to_string(),
            "bundle": s.bundle,
            "rootfs": s.rootfs,
            "created": s.created,
            "owner": s.owner,
        });
        if !annotations.is_empty() {
            v["annotations"] = serde_json::to_value(annotations).unwrap_or_default();
        }
        v
    }

    fn exit_reason(&self, status: Status) -> Option<String> {
        if status != Status::Stopped {
            return None;
        }
        self.state
            .exit_reason
            .clone()
            .or_else(|| cgroup::exit_reason_hint(self.state.cgroup.as_ref()))
    }

    pub fn save(&self) -> Result<()> {
        self.state.save(&self.dir).context("save state")
    }

    /// Release the init waiting in `create`; returns once it acknowledged.
    pub fn start(&mut self) -> Result<()> {
        match self.status() {
            Status::Created => {}
            Status::Stopped => bail!("cannot start a container that has stopped"),
            other => bail!("cannot start an already {other} container"),
        }
        let sock = self.dir.join(START_SOCKET);
        let (_dir_fd, addr) =
            state::start_socket_addr(&self.dir).context("start socket address")?;
        let mut conn = UnixStream::connect(addr).context("connect to container init")?;
        // Mark started first: once the byte is sent the init may exec and exit at once.
        self.state.started = true;
        self.save()?;
        let _ = std::fs::remove_file(&sock);
        conn.write_all(b"s").context("signal container init")?;
        let mut reply = String::new();
        let _ = conn.read_to_string(&mut reply);
        if let Some(err) = reply.strip_prefix("error: ") {
            bail!("{err}");
        }
        let hooks = self.spec_hooks();
        let sj = builder::state_for_hooks(&self.state, Status::Running, self.state.pid);
        for (i, h) in hooks.poststart().iter().flatten().enumerate() {
            if let Err(e) = crate::linux::hooks::run(h, &sj) {
                crate::warn!("poststart hook #{i}: {e}");
            }
        }
        Ok(())
    }

    fn spec_hooks(&self) -> oci_spec::runtime::Hooks {
        self.state
            .config
            .get("hooks")
            .and_then(|h| serde_json::from_value(h.clone()).ok())
            .unwrap_or_default()
    }

    /// `sig` is a raw signal number: real-time signals (SIGRTMIN+3 stops systemd in a
    /// container) have no `nix::Signal` variant.
    pub fn kill(&self, sig: i32, all: bool) -> Result<()> {
        let status = self.status();
        if status == Status::Stopped {
            bail!("container not running");
        }
        if all {
            for pid in cgroup::procs(self.state.cgroup.as_ref())? {
                let _ = send_signal(pid, sig);
            }
            // A frozen task only dies once thawed.
            if status == Status::Paused && sig == libc::SIGKILL {
                let _ = cgroup::thaw(self.state.cgroup.as_ref());
            }
        }
        match send_signal(self.state.pid, sig) {
            Ok(()) | Err(nix::Error::ESRCH) if all => Ok(()),
            Ok(()) => Ok(()),
            Err(nix::Error::ESRCH) => bail!("container not running"),
            Err(e) => Err(anyhow!("kill container init: {e}")),
        }
    }

    /// Remove the container; without `force` only a stopped (or never started) one.
    pub fn delete(self, force: bool) -> Result<()> {
        let status = self.status();
        match status {
            Status::Stopped | Status::Created | Status::Creating => {}
            _ if force => {}
            other => bail!(
                "cannot delete container {} that is not stopped: {other}",
                self.state.id
            ),
        }
        if status != Status::Stopped {
            if let Ok(procs) = cgroup::procs(self.state.cgroup.as_ref()) {
                for pid in procs {
                    let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
                }
            }
            if self.state.pid > 0 && state::init_alive(self.state.pid, self.state.init_start_time) {
                let _ = kill(Pid::from_raw(self.state.pid), Signal::SIGKILL);
            }
            let _ = cgroup::thaw(self.state.cgroup.as_ref());
            wait_gone(self.state.pid, self.state.init_start_time);
        }
        for pid in &self.state.helpers {
            let _ = kill(Pid::from_raw(*pid), Signal::SIGKILL);
        }
        if let Some(cg) = &self.state.cgroup {
            cgroup::destroy(cg)?;
        }
        let started = self.state.started;
        let sj = builder::state_for_hooks(&self.state, Status::Stopped, 0);
        let hooks = self.spec_hooks();
        std::fs::remove_dir_all(&self.dir)
            .with_context(|| format!("remove {}", self.dir.display()))?;
        if started || status != Status::Creating {
            for (i, h) in hooks.poststop().iter().flatten().enumerate() {
                if let Err(e) = crate::linux::hooks::run(h, &sj) {
                    crate::warn!("poststop hook #{i}: {e}");
                }
            }
        }
        Ok(())
    }

    pub fn pause(&mut self) -> Result<()> {
        match self.status() {
            Status::Running | Status::Created => {}
            other => bail!("container not running (status {other})"),
        }
        cgroup::freeze(self.state.cgroup.as_ref())?;
        self.state.paused = true;
        self.save()
    }

    pub fn resume(&mut self) -> Result<()> {
        if self.status() != Status::Paused {
            bail!("container not paused");
        }
        cgroup::thaw(self.state.cgroup.as_ref())?;
        self.state.paused = false;
        self.save()
    }
}

/// Wait (bounded) for a killed init to disappear, so cgroup removal does not race it.
fn wait_gone(pid: i32, start: u64) {
    for _ in 0..500 {
        if !state::init_alive(pid, start) {
            let _ = nix::sys::wait::waitpid(
                Pid::from_raw(pid),
                Some(nix::sys::wait::WaitPidFlag::WNOHANG),
            );
            return;
        }
        let _ = nix::sys::wait::waitpid(
            Pid::from_raw(pid),
            Some(nix::sys::wait::WaitPidFlag::WNOHANG),
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// All containers under the state root.
pub fn list(root: &Path) -> Result<Vec<Container>> {
    let mut out = Vec::new();
    let rd = match std::fs::read_dir(root) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(anyhow!(e).context(format!("read {}", root.display()))),
    };
    for ent in rd.flatten() {
        if let Some(id) = ent.file_name().to_str() {
            if let Ok(c) = Container::load(root, id) {
                out.push(c);
            }
        }
    }
    out.sort_by(|a, b| a.state.id.cmp(&b.state.id));
    Ok(out)
}

/// Parse "KILL", "SIGKILL" or "9".
pub fn parse_signal(s: &str) -> Result<i32> {
    let max = libc::SIGRTMAX();
    if let Ok(n) = s.parse::<i32>() {
        // Any number the kernel knows, real-time signals included (runc accepts them too).
        return match n {
            1.. if n <= max => Ok(n),
            _ => Err(anyhow!("unknown signal {s:?}")),
        };
    }
    let up = s.to_ascii_uppercase();
    let name = up.strip_prefix("SIG").unwrap_or(&up);
    // RTMIN, RTMIN+n, RTMAX, RTMAX-n.
    let rt = |base: i32, rest: &str, sign: i32| -> Option<i32> {
        let off = if rest.is_empty() {
            0
        } else {
            rest.parse::<i32>().ok()?
        };
        let n = base + sign * off;
        (libc::SIGRTMIN()..=max).contains(&n).then_some(n)
    };
    let parsed = if let Some(rest) = name.strip_prefix("RTMIN") {
        rt(libc::SIGRTMIN(), rest.strip_prefix('+').unwrap_or(rest), 1)
    } else if let Some(rest) = name.strip_prefix("RTMAX") {
        rt(max, rest.strip_prefix('-').unwrap_or(rest), -1)
    } else {
        format!("SIG{name}")
            .parse::<Signal>()
            .ok()
            .map(|sig| sig as i32)
    };
    parsed.ok_or_else(|| anyhow!("unknown signal {s:?}"))
}

/// kill(2) with a raw signal number.
fn send_signal(pid: i32, sig: i32) -> nix::Result<()> {
    // SAFETY: kill(2) takes two integers and touches no memory of ours.
    let rc = unsafe { libc::kill(pid, sig) };
    nix::errno::Errno::result(rc).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_parse_by_name_and_number() {
        assert_eq!(parse_signal("9").unwrap(), libc::SIGKILL);
        assert_eq!(parse_signal("KILL").unwrap(), libc::SIGKILL);
        assert_eq!(parse_signal("sigterm").unwrap(), libc::SIGTERM);
        assert_eq!(parse_signal("37").unwrap(), 37);
        assert_eq!(parse_signal("SIGRTMIN+3").unwrap(), libc::SIGRTMIN() + 3);
        assert_eq!(parse_signal("RTMAX-1").unwrap(), libc::SIGRTMAX() - 1);
        assert!(parse_signal("NOPE").is_err());
        assert!(parse_signal("99").is_err());
        assert!(parse_signal("0").is_err());
        assert!(parse_signal("RTMIN+99").is_err());
    }
}
