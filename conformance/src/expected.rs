//! expected-differences.json: the one list of known, explained divergences.
//!
//! Each entry names a test, the runtime (binary file name, e.g. "runc" or "mantle") it does not
//! pass on, and why. A listed failure is reported as `xfail`, never hidden; an entry whose test
//! now passes is reported as stale so the list does not rot.

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::path::Path;

#[derive(Debug, Deserialize, Serialize, Clone)]
pub struct Entry {
    pub test: String,
    pub runtime: String,
    pub reason: String,
}

#[derive(Debug, Deserialize, Default)]
pub struct Expected {
    pub entries: Vec<Entry>,
}

impl Expected {
    pub fn load(path: &Path) -> Result<Expected> {
        if !path.exists() {
            return Ok(Expected::default());
        }
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {path:?}"))?;
        serde_json::from_str(&text).with_context(|| format!("parsing {path:?}"))
    }

    pub fn find(&self, test: &str, runtime: &str) -> Option<&Entry> {
        self.entries
            .iter()
            .find(|e| e.test == test && e.runtime == runtime)
    }
}
