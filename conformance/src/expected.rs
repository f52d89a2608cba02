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

#[cfg(test)]
mod unit {
    #[test]
    fn shipped_list_parses_and_every_entry_has_a_reason() {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("expected-differences.json");
        let e = super::Expected::load(&path).unwrap();
        assert!(!e.entries.is_empty());
        for entry in &e.entries {
            assert!(entry.reason.len() > 20, "{} needs a reason", entry.test);
        }
        let names: Vec<&str> = crate::tests::all().iter().map(|t| t.name).collect();
        for entry in &e.entries {
            assert!(
                names.contains(&entry.test.as_str()),
                "{} is not a test",
                entry.test
            );
        }
    }

    #[test]
    fn test_names_are_unique() {
        let all = crate::tests::all();
        let mut names: Vec<&str> = all.iter().map(|t| t.name).collect();
        names.sort();
        let n = names.len();
        names.dedup();
        assert_eq!(n, names.len());
    }
}
