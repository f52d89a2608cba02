//! The runtime under test, driven only through its runc-compatible command line.
//!
//! Only the operations the OCI runtime spec defines are used (create, start, state, kill,
//! delete) plus `features`; every call has a deadline and a private `--root`.

use crate::exec::{self, Output};
use anyhow::{bail, Context, Result};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// A runtime as named on the command line.
#[derive(Debug, Clone)]
pub struct RuntimeSpec {
    pub bin: PathBuf,
    pub name: Option<String>,
    pub args: Vec<String>,
}

pub struct Runtime {
    /// Binary path as given by the user.
    pub bin: PathBuf,
    /// Short name used in reports and in expected-differences.json (binary file name unless
    /// given).
    pub name: String,
    /// Global options put before every subcommand (e.g. `--sandbox=sentry`).
    pub global_args: Vec<String>,
    /// Private state directory passed as `--root`.
    pub root: PathBuf,
    /// Where invocation output files go.
    pub logs: PathBuf,
    pub timeout: Duration,
    seq: AtomicU64,
}

impl Runtime {
    pub fn new(spec: &RuntimeSpec, work: &Path, timeout: Duration) -> Result<Runtime> {
        let bin = spec.bin.as_path();
        let name = spec.name.clone().unwrap_or_else(|| {
            bin.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| bin.display().to_string())
        });
        let root = work.join(format!("root-{name}"));
        let logs = work.join(format!("logs-{name}"));
        std::fs::create_dir_all(&root).with_context(|| format!("creating {root:?}"))?;
        std::fs::create_dir_all(&logs).with_context(|| format!("creating {logs:?}"))?;
        Ok(Runtime {
            bin: bin.to_path_buf(),
            name,
            global_args: spec.args.clone(),
            root,
            logs,
            timeout,
            seq: AtomicU64::new(0),
        })
    }

    fn command(&self) -> Command {
        let mut c = Command::new(&self.bin);
        c.arg("--root").arg(&self.root);
        c.args(&self.global_args);
        c
    }

    /// Runs `<runtime> --root R <args>` with the default deadline.
    pub fn raw(&self, args: &[&str]) -> Result<Output> {
        self.raw_in(args, None, self.timeout)
    }

    pub fn raw_in(&self, args: &[&str], cwd: Option<&Path>, timeout: Duration) -> Result<Output> {
        let mut c = self.command();
        c.args(args);
        if let Some(d) = cwd {
            c.current_dir(d);
        }
        let n = self.seq.fetch_add(1, Ordering::SeqCst);
        let tag = format!("{n:05}-{}", args.first().copied().unwrap_or("none"));
        exec::run(&mut c, &self.logs, &tag, timeout)
    }

    /// `create`: the container inherits create's stdio, so it goes to files in the bundle
    /// (`container.out`, `container.err`).
    pub fn create(&self, id: &str, bundle: &Path, console_socket: Option<&Path>) -> Result<Output> {
        let mut c = self.command();
        c.arg("create").arg("--bundle").arg(bundle);
        if let Some(s) = console_socket {
            c.arg("--console-socket").arg(s);
        }
        c.arg("--pid-file").arg(bundle.join("pid"));
        c.arg(id);
        c.current_dir(bundle);
        exec::run(&mut c, bundle, "container", self.timeout)
    }

    pub fn start(&self, id: &str) -> Result<Output> {
        self.raw(&["start", id])
    }

    /// `state` parsed as JSON; an error if the command fails or prints no JSON object.
    pub fn state(&self, id: &str) -> Result<Value> {
        let out = self.raw(&["state", id])?;
        if !out.success() {
            bail!("state {id} failed: {}", out.describe());
        }
        let v: Value = serde_json::from_str(out.stdout.trim())
            .with_context(|| format!("state output is not JSON: {:?}", out.stdout))?;
        if !v.is_object() {
            bail!("state output is not a JSON object: {v}");
        }
        Ok(v)
    }

    pub fn status(&self, id: &str) -> Result<String> {
        let st = self.state(id)?;
        Ok(st["status"].as_str().unwrap_or("").to_string())
    }

    pub fn kill(&self, id: &str, sig: &str) -> Result<Output> {
        self.raw(&["kill", id, sig])
    }

    pub fn delete(&self, id: &str, force: bool) -> Result<Output> {
        if force {
            self.raw(&["delete", "--force", id])
        } else {
            self.raw(&["delete", id])
        }
    }

    pub fn version(&self) -> String {
        let mut c = Command::new(&self.bin);
        c.arg("--version");
        match exec::run(&mut c, &self.logs, "version", self.timeout) {
            Ok(o) => o.stdout.lines().next().unwrap_or("").to_string(),
            Err(e) => format!("unknown ({e})"),
        }
    }
}
