//! Why a container's init ended: the wait status alone says "killed by signal 9"; the
//! cgroup's event counters say whether that was the OOM killer or a pids limit.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Event counters read from the container cgroup. `oom_kill` counts processes the OOM
/// killer killed (v1 memory.oom_control `oom_kill`, v2 memory.events `oom_kill`), `oom`
/// times the limit was hit and reclaim failed (v2 only; v1 reports `oom_kill` here too),
/// `pids_max` forks refused by pids.max (pids.events `max`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    pub oom: u64,
    pub oom_kill: u64,
    pub pids_max: u64,
}

/// How the process ended, from waitpid(2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Termination {
    Exited(i32),
    Signaled(i32),
}

impl Termination {
    /// Decodes a raw wait status (as filled in by waitpid(2)).
    pub fn from_wait_status(status: i32) -> Termination {
        if libc::WIFSIGNALED(status) {
            Termination::Signaled(libc::WTERMSIG(status))
        } else {
            Termination::Exited(libc::WEXITSTATUS(status))
        }
    }
}

/// The precise reason, with a stable string form: `oom-killed`, `pids-limit`,
/// `seccomp-killed`, `signal:N`, `exited:N`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitReason {
    OomKilled,
    PidsLimit,
    SeccompKilled,
    Signal(i32),
    Exited(i32),
}

impl ExitReason {
    /// Classifies `t` given the counters when the container started and at its exit.
    ///
    /// - SIGSYS is what SECCOMP_RET_KILL_* delivers -> `seccomp-killed`.
    /// - An OOM kill in the cgroup and an init that died of SIGKILL (or a shell that
    ///   reported 128+9 for its child) -> `oom-killed`.
    /// - A refused fork and an init that failed -> `pids-limit`.
    ///
    /// An init that exits 0 keeps `exited:0` even if some child hit a limit: it coped.
    pub fn classify(t: Termination, before: &Counters, after: &Counters) -> ExitReason {
        let oom = after.oom_kill > before.oom_kill;
        let pids = after.pids_max > before.pids_max;
        match t {
            Termination::Signaled(libc::SIGSYS) => ExitReason::SeccompKilled,
            Termination::Signaled(libc::SIGKILL) if oom => ExitReason::OomKilled,
            Termination::Exited(137) if oom => ExitReason::OomKilled,
            Termination::Exited(c) if c != 0 && pids => ExitReason::PidsLimit,
            Termination::Signaled(s) if pids && s != libc::SIGKILL && s != libc::SIGTERM => {
                ExitReason::PidsLimit
            }
            Termination::Signaled(s) => ExitReason::Signal(s),
            Termination::Exited(c) => ExitReason::Exited(c),
        }
    }

    /// The exit code a shell would report (128+N for signals; 137 for OOM kills).
    pub fn exit_code(&self, t: Termination) -> i32 {
        match t {
            Termination::Exited(c) => c,
            Termination::Signaled(s) => 128 + s,
        }
    }
}

impl fmt::Display for ExitReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExitReason::OomKilled => f.write_str("oom-killed"),
            ExitReason::PidsLimit => f.write_str("pids-limit"),
            ExitReason::SeccompKilled => f.write_str("seccomp-killed"),
            ExitReason::Signal(s) => write!(f, "signal:{s}"),
            ExitReason::Exited(c) => write!(f, "exited:{c}"),
        }
    }
}

/// Error for an unrecognised exit-reason string.
#[derive(Debug, thiserror::Error)]
#[error("unknown exit reason {0:?}")]
pub struct ParseExitReasonError(String);

impl FromStr for ExitReason {
    type Err = ParseExitReasonError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || ParseExitReasonError(s.to_string());
        match s {
            "oom-killed" => Ok(ExitReason::OomKilled),
            "pids-limit" => Ok(ExitReason::PidsLimit),
            "seccomp-killed" => Ok(ExitReason::SeccompKilled),
            _ => {
                let (k, v) = s.split_once(':').ok_or_else(err)?;
                let n: i32 = v.parse().map_err(|_| err())?;
                match k {
                    "signal" => Ok(ExitReason::Signal(n)),
                    "exited" => Ok(ExitReason::Exited(n)),
                    _ => Err(err()),
                }
            }
        }
    }
}

impl Serialize for ExitReason {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ExitReason {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(oom_kill: u64, pids_max: u64) -> Counters {
        Counters {
            oom: oom_kill,
            oom_kill,
            pids_max,
        }
    }

    #[test]
    fn classification() {
        use ExitReason as R;
        use Termination as T;
        let z = c(0, 0);
        assert_eq!(
            ExitReason::classify(T::Signaled(9), &z, &c(1, 0)),
            R::OomKilled
        );
        assert_eq!(
            ExitReason::classify(T::Exited(137), &z, &c(1, 0)),
            R::OomKilled
        );
        assert_eq!(ExitReason::classify(T::Signaled(9), &z, &z), R::Signal(9));
        assert_eq!(
            ExitReason::classify(T::Signaled(9), &c(2, 0), &c(2, 0)),
            R::Signal(9)
        );
        assert_eq!(
            ExitReason::classify(T::Signaled(31), &z, &c(1, 0)),
            R::SeccompKilled
        );
        assert_eq!(
            ExitReason::classify(T::Exited(1), &z, &c(0, 4)),
            R::PidsLimit
        );
        assert_eq!(
            ExitReason::classify(T::Exited(0), &z, &c(0, 4)),
            R::Exited(0)
        );
        assert_eq!(
            ExitReason::classify(T::Exited(0), &z, &c(3, 0)),
            R::Exited(0)
        );
        assert_eq!(
            ExitReason::classify(T::Signaled(11), &z, &c(0, 1)),
            R::PidsLimit
        );
        assert_eq!(
            ExitReason::classify(T::Signaled(15), &z, &c(0, 1)),
            R::Signal(15)
        );
        assert_eq!(ExitReason::classify(T::Exited(3), &z, &z), R::Exited(3));
    }

    #[test]
    fn strings_round_trip() {
        for r in [
            ExitReason::OomKilled,
            ExitReason::PidsLimit,
            ExitReason::SeccompKilled,
            ExitReason::Signal(9),
            ExitReason::Exited(0),
        ] {
            let s = r.to_string();
            assert_eq!(s.parse::<ExitReason>().unwrap(), r);
            let j = serde_json::to_string(&r).unwrap();
            assert_eq!(serde_json::from_str::<ExitReason>(&j).unwrap(), r);
        }
        assert_eq!(ExitReason::Signal(9).to_string(), "signal:9");
        assert!("exited:x".parse::<ExitReason>().is_err());
        assert!("nope".parse::<ExitReason>().is_err());
    }

    #[test]
    fn wait_status_decoding() {
        assert_eq!(Termination::from_wait_status(0), Termination::Exited(0));
        assert_eq!(
            Termination::from_wait_status(3 << 8),
            Termination::Exited(3)
        );
        assert_eq!(Termination::from_wait_status(9), Termination::Signaled(9));
        assert_eq!(
            Termination::from_wait_status(0x80 | 11),
            Termination::Signaled(11)
        );
    }
}
