//! The library's one error type. Every variant names the file or value at fault so the
//! runtime can print it as-is.

use std::io;
use std::path::PathBuf;

/// Errors from cgroup management.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("cannot write {value:?} to {path}: {source}")]
    Write {
        path: PathBuf,
        value: String,
        source: io::Error,
    },
    #[error("cannot create cgroup {path}: {source}")]
    Mkdir { path: PathBuf, source: io::Error },
    #[error("cannot remove cgroup {path}: {source}")]
    Rmdir { path: PathBuf, source: io::Error },
    #[error("cannot parse {what} in {path}: {detail}")]
    Parse {
        path: PathBuf,
        what: String,
        detail: String,
    },
    #[error("invalid cgroupsPath {path:?}: {reason}")]
    InvalidPath { path: String, reason: String },
    #[error("invalid resource {resource}: {reason}")]
    InvalidResource { resource: String, reason: String },
    #[error("{what} is not supported on {layout}")]
    Unsupported { what: String, layout: String },
    #[error("systemd cgroup driver requested but systemd is not running (no /run/systemd/system)")]
    SystemdNotRunning,
    #[error("no cgroup hierarchy is mounted (checked /proc/self/mountinfo)")]
    NoCgroupMounts,
    #[error("cgroup {path} did not reach state {state} in time")]
    FreezeTimeout { path: PathBuf, state: String },
    #[error("cgroup {path} still has processes")]
    Busy { path: PathBuf },
    #[error("refusing to {action} {path}: {reason}")]
    Refused {
        action: String,
        path: PathBuf,
        reason: String,
    },
    #[error("bpf {op} failed: {source}{log}")]
    Bpf {
        op: &'static str,
        source: io::Error,
        log: String,
    },
    #[error("{op}: {source}")]
    Sys { op: String, source: io::Error },
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub(crate) fn invalid_resource(resource: &str, reason: impl Into<String>) -> Self {
        Error::InvalidResource {
            resource: resource.to_string(),
            reason: reason.into(),
        }
    }

    pub(crate) fn sys(op: impl Into<String>, source: io::Error) -> Self {
        Error::Sys {
            op: op.into(),
            source,
        }
    }
}
