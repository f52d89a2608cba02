//! A container's persisted state: `<root>/<id>/state.json`, written atomically (temp file +
//! rename) so a concurrent `state` never reads half a file. The status is *derived* each time
//! from the init process and the start socket, never trusted from disk: a container whose
//! init died is `stopped` even if nobody told us.

use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

pub const STATE_FILE: &str = "state.json";
/// The init listens here until `start`; its presence means "created".
pub const START_SOCKET: &str = "start.sock";

/// The address to bind or connect the start socket of state directory `dir`. sun_path holds
/// 107 bytes and callers put state under long paths (containerd's shim:
/// `<state>/runc/<namespace>/<id>`), so a long path is reached through an `O_PATH` fd of the
/// directory as `/proc/self/fd/N/start.sock`; the returned file keeps that fd open and must
/// outlive the bind/connect.
pub fn start_socket_addr(dir: &Path) -> std::io::Result<(Option<fs::File>, PathBuf)> {
    socket_addr(dir, START_SOCKET)
}

/// The same for any socket `name` in state directory `dir` (e.g. the sentry's socket). The
/// `/proc/self/fd` form is only valid in the process that called this.
pub fn socket_addr(dir: &Path, name: &str) -> std::io::Result<(Option<fs::File>, PathBuf)> {
    use std::os::unix::fs::OpenOptionsExt;
    use std::os::unix::io::AsRawFd;
    let direct = dir.join(name);
    if direct.as_os_str().len() < 100 {
        return Ok((None, direct));
    }
    let f = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_DIRECTORY)
        .open(dir)?;
    let via_fd = PathBuf::from(format!("/proc/self/fd/{}/{name}", f.as_raw_fd()));
    Ok((Some(f), via_fd))
}

#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Creating,
    Created,
    Running,
    Stopped,
    Paused,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Stopped => "stopped",
            Status::Paused => "paused",
        };
        f.write_str(s)
    }
}

/// What mantle remembers about a container between commands.
#[derive(Serialize, Deserialize, Debug, Clone)]
#[serde(rename_all = "camelCase")]
pub struct State {
    pub oci_version: String,
    pub id: String,
    /// Host pid of the container init (0 before it exists).
    pub pid: i32,
    /// Start time (clock ticks since boot, /proc/PID/stat field 22) of the init, so a
    /// recycled pid is never mistaken for our init.
    pub init_start_time: u64,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub created: String,
    #[serde(default)]
    pub annotations: HashMap<String, String>,
    pub owner: String,
    /// Cgroup placement, saved so delete/pause/update can reopen it without the config.
    #[serde(default)]
    pub cgroup: Option<serde_json::Value>,
    /// "native" or "sentry".
    #[serde(default)]
    pub sandbox: String,
    /// Sentry platform ("seccomp" or "ptrace") in sentry mode.
    #[serde(default)]
    pub platform: String,
    /// Pids of helper processes (sentry, gofer) to reap on delete.
    #[serde(default)]
    pub helpers: Vec<i32>,
    /// Why the init ended, once known (see `exit_reason`).
    #[serde(default)]
    pub exit_reason: Option<String>,
    /// Set once the container has been started.
    #[serde(default)]
    pub started: bool,
    /// Set when paused through the freezer.
    #[serde(default)]
    pub paused: bool,
    /// The container's config.json, as validated at create time.
    pub config: serde_json::Value,
}

impl State {
    pub fn dir(root: &Path, id: &str) -> PathBuf {
        root.join(id)
    }

    pub fn load(dir: &Path) -> std::io::Result<State> {
        let data = fs::read(dir.join(STATE_FILE))?;
        serde_json::from_slice(&data)
            .map_err(|e| std::io::Error::other(format!("corrupt state: {e}")))
    }

    pub fn save(&self, dir: &Path) -> std::io::Result<()> {
        let tmp = dir.join(".state.json.tmp");
        let mut f = fs::File::create(&tmp)?;
        f.write_all(&serde_json::to_vec(self).map_err(std::io::Error::other)?)?;
        f.sync_all()?;
        fs::rename(&tmp, dir.join(STATE_FILE))
    }
}

/// Process start time from /proc/PID/stat, or None when the process is gone.
pub fn proc_start_time(pid: i32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // comm may contain spaces and parens: fields start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// Process state letter from /proc/PID/stat ('Z' zombie, 'X' dead).
pub fn proc_state(pid: i32) -> Option<char> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.chars().next()
}

/// Is `pid` still our init (same start time) and not a zombie?
pub fn init_alive(pid: i32, start_time: u64) -> bool {
    pid > 0
        && proc_start_time(pid) == Some(start_time)
        && !matches!(proc_state(pid), Some('Z') | Some('X') | None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_start_time_is_readable_and_alive() {
        let me = std::process::id() as i32;
        let st = proc_start_time(me).expect("own stat");
        assert!(init_alive(me, st));
        assert!(!init_alive(me, st + 1));
    }

    #[test]
    fn save_then_load_roundtrips() {
        let dir = std::env::temp_dir().join(format!("mantle-state-test-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let s = State {
            oci_version: "1.2.0".into(),
            id: "x".into(),
            pid: 42,
            init_start_time: 7,
            bundle: "/b".into(),
            rootfs: "/b/rootfs".into(),
            created: "now".into(),
            annotations: HashMap::new(),
            owner: String::new(),
            cgroup: None,
            sandbox: "native".into(),
            platform: String::new(),
            helpers: vec![],
            exit_reason: None,
            started: false,
            paused: false,
            config: serde_json::json!({}),
        };
        s.save(&dir).unwrap();
        let l = State::load(&dir).unwrap();
        assert_eq!(l.pid, 42);
        assert_eq!(l.init_start_time, 7);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn start_socket_works_under_a_path_longer_than_sun_path() {
        let base = std::env::temp_dir().join(format!("mantle-sock-test-{}", std::process::id()));
        let dir = base.join("d".repeat(120));
        fs::create_dir_all(&dir).unwrap();
        let (guard, addr) = start_socket_addr(&dir).unwrap();
        assert!(guard.is_some(), "a long path goes through the directory fd");
        let listener = std::os::unix::net::UnixListener::bind(&addr).unwrap();
        assert!(dir.join(START_SOCKET).exists());
        let (_g2, addr2) = start_socket_addr(&dir).unwrap();
        std::os::unix::net::UnixStream::connect(addr2).unwrap();
        drop(listener);
        fs::remove_dir_all(&base).unwrap();
    }
}
