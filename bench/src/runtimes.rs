//! The runtimes under test and the command lines they are driven with (runc's CLI, which
//! mantle and crun share).

use crate::proc::{self, Outcome, Wrapper};
use anyhow::Result;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

#[derive(Clone, Debug)]
pub struct Runtime {
    /// Column name: mantle, mantle-sentry, runc, crun.
    pub label: &'static str,
    pub bin: PathBuf,
    /// Global flags placed before the subcommand (`--sandbox=sentry`).
    pub global: Vec<String>,
    /// State directory (`--root`), private to this runtime.
    pub root: PathBuf,
    /// Why this runtime is not measured (its probe failed), if so.
    pub unavailable: Option<String>,
}

pub const TIMEOUT: Duration = Duration::from_secs(120);

impl Runtime {
    pub fn available(&self) -> bool {
        self.unavailable.is_none()
    }

    /// `<bin> <global> --root <root> <args>` through the wrapper.
    pub fn cmd(&self, w: &Wrapper, args: &[&str]) -> Command {
        let mut c = w.command(&self.bin);
        c.args(&self.global)
            .arg("--root")
            .arg(&self.root)
            .args(args);
        c
    }

    pub fn run_cmd(&self, w: &Wrapper, bundle: &Path, id: &str) -> Command {
        let mut c = self.cmd(w, &["run", "--bundle"]);
        c.arg(bundle).arg(id);
        c
    }

    /// Best-effort removal of a container left behind by a failed step.
    pub fn force_delete(&self, w: &Wrapper, id: &str, scratch: &Path) {
        let _ = proc::run(
            self.cmd(w, &["delete", "--force", id]),
            &scratch.join("fd.out"),
            &scratch.join("fd.err"),
            Duration::from_secs(30),
        );
    }

    /// The first line of `--version`.
    pub fn version(&self) -> String {
        Command::new(&self.bin)
            .arg("--version")
            .output()
            .ok()
            .and_then(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .lines()
                    .next()
                    .map(str::to_string)
            })
            .unwrap_or_else(|| "(unknown version)".into())
    }

    /// Runs the probe bundle once; on failure records why and returns false.
    pub fn probe(&mut self, w: &Wrapper, bundle: &Path, scratch: &Path) -> Result<bool> {
        std::fs::create_dir_all(&self.root)?;
        let id = format!("probe-{}", self.label);
        let err = scratch.join(format!("probe-{}.err", self.label));
        let o: Outcome = proc::run(
            self.run_cmd(w, bundle, &id),
            &scratch.join("probe.out"),
            &err,
            Duration::from_secs(60),
        )?;
        if !o.ok {
            self.unavailable = Some(format!("{}: {}", o.status, proc::first_line(&err)));
            self.force_delete(w, &id, scratch);
        }
        crate::proc::reap_exited();
        Ok(o.ok)
    }
}
