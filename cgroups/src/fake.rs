//! An in-memory `CgroupManager` for the runtime's unit tests: records every call and lets
//! the test choose counters, pids and failures.

use crate::error::{Error, Result};
use crate::exit::Counters;
use crate::oom::OomWatcher;
use crate::stats::Stats;
use crate::{CgroupManager, CgroupPaths, FreezerState, LayoutKind};
use oci_spec::runtime::LinuxResources;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// Shared, inspectable state of a `FakeManager`.
#[derive(Debug, Default)]
pub struct FakeState {
    /// One entry per call: `apply(42)`, `set`, `freeze`, `destroy(kill=true)`, ...
    pub calls: Vec<String>,
    pub frozen: bool,
    pub pids: Vec<i32>,
    pub counters: Counters,
    pub resources: Option<LinuxResources>,
    pub destroyed: bool,
    /// When set, the next call fails with this message.
    pub fail_next: Option<String>,
}

/// Cloneable handle; clones share state so a test can inspect what the runtime did.
#[derive(Debug, Clone, Default)]
pub struct FakeManager {
    pub state: Arc<Mutex<FakeState>>,
    pub path: String,
}

impl FakeManager {
    pub fn new(path: &str) -> FakeManager {
        FakeManager {
            state: Arc::default(),
            path: path.into(),
        }
    }

    fn call(&self, what: String) -> Result<std::sync::MutexGuard<'_, FakeState>> {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        s.calls.push(what.clone());
        if let Some(msg) = s.fail_next.take() {
            return Err(Error::sys(what, std::io::Error::other(msg)));
        }
        Ok(s)
    }
}

impl CgroupManager for FakeManager {
    fn layout(&self) -> LayoutKind {
        LayoutKind::V2
    }
    fn apply(&mut self, pid: i32) -> Result<()> {
        let mut s = self.call(format!("apply({pid})"))?;
        if pid > 0 {
            s.pids.push(pid);
        }
        Ok(())
    }
    fn join(&self, pid: i32) -> Result<()> {
        self.call(format!("join({pid})"))?.pids.push(pid);
        Ok(())
    }
    fn set(&self, r: &LinuxResources) -> Result<()> {
        self.call("set".into())?.resources = Some(r.clone());
        Ok(())
    }
    fn freeze(&self) -> Result<()> {
        self.call("freeze".into())?.frozen = true;
        Ok(())
    }
    fn thaw(&self) -> Result<()> {
        self.call("thaw".into())?.frozen = false;
        Ok(())
    }
    fn state(&self) -> Result<FreezerState> {
        let s = self.call("state".into())?;
        Ok(if s.frozen {
            FreezerState::Frozen
        } else {
            FreezerState::Thawed
        })
    }
    fn stats(&self) -> Result<Stats> {
        let s = self.call("stats".into())?;
        let mut st = Stats::default();
        st.pids.current = s.pids.len() as u64;
        Ok(st)
    }
    fn procs(&self) -> Result<Vec<i32>> {
        Ok(self.call("procs".into())?.pids.clone())
    }
    fn counters(&self) -> Result<Counters> {
        Ok(self.call("counters".into())?.counters)
    }
    fn oom_watcher(&self) -> Result<OomWatcher> {
        drop(self.call("oom_watcher".into())?);
        Err(Error::Unsupported {
            what: "OOM watcher".into(),
            layout: "the fake manager".into(),
        })
    }
    fn kill_all(&self) -> Result<()> {
        self.call("kill_all".into())?.pids.clear();
        Ok(())
    }
    fn destroy(&mut self, kill: bool) -> Result<()> {
        let mut s = self.call(format!("destroy(kill={kill})"))?;
        if kill {
            s.pids.clear();
        }
        s.destroyed = true;
        Ok(())
    }
    fn paths(&self) -> CgroupPaths {
        CgroupPaths {
            layout: LayoutKind::V2,
            path: self.path.clone(),
            v1: BTreeMap::new(),
            v1_mounts: BTreeMap::new(),
            unified: None,
            unified_mount: None,
            baseline: Counters::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ExitReason, Termination};

    #[test]
    fn records_and_classifies() {
        let fake = FakeManager::new("/mantle/t");
        let mut m: Box<dyn CgroupManager> = Box::new(fake.clone());
        m.apply(7).unwrap();
        m.freeze().unwrap();
        assert_eq!(m.state().unwrap(), FreezerState::Frozen);
        fake.state.lock().unwrap().counters.oom_kill = 1;
        assert_eq!(
            m.exit_reason(Termination::Signaled(9)),
            ExitReason::OomKilled
        );
        fake.state.lock().unwrap().fail_next = Some("boom".into());
        assert!(m.thaw().unwrap_err().to_string().contains("boom"));
        m.destroy(true).unwrap();
        let s = fake.state.lock().unwrap();
        assert_eq!(
            s.calls,
            [
                "apply(7)",
                "freeze",
                "state",
                "counters",
                "thaw",
                "destroy(kill=true)"
            ]
        );
        assert!(s.destroyed && s.pids.is_empty());
    }
}
