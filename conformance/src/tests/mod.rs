//! The tests, one module per area of the spec. Each test names the clause it checks.

mod cgroups;
mod devices;
mod features;
mod hooks;
mod lifecycle;
mod misc;
mod mounts;
mod namespaces;
mod paths;
mod process;
mod seccomp;
mod state;
pub mod util;

use crate::suite::Test;
use anyhow::{bail, Result};
use std::path::Path;
use std::time::{Duration, Instant};

pub fn all() -> Vec<Test> {
    let mut v = Vec::new();
    v.extend(lifecycle::tests());
    v.extend(state::tests());
    v.extend(process::tests());
    v.extend(mounts::tests());
    v.extend(hooks::tests());
    v.extend(namespaces::tests());
    v.extend(devices::tests());
    v.extend(paths::tests());
    v.extend(seccomp::tests());
    v.extend(cgroups::tests());
    v.extend(misc::tests());
    v.extend(features::tests());
    v
}

/// Waits for a file the container creates to signal readiness.
pub fn wait_file(path: &Path, timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    while !path.exists() {
        if Instant::now() > deadline || crate::suite::interrupted() {
            bail!("{} did not appear within {timeout:?}", path.display());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    Ok(())
}
