//! Running a program with a deadline and capturing its output through files.
//!
//! Output goes to files, never pipes: a runtime may hand its stdio to a container process or a
//! hook that outlives it, and a pipe we read to EOF would then block until that process exits.

use anyhow::{Context, Result};
use std::fs::File;
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// The outcome of one invocation.
#[derive(Debug, Clone)]
pub struct Output {
    pub status: Option<ExitStatus>,
    pub stdout: String,
    pub stderr: String,
    pub timed_out: bool,
}

impl Output {
    pub fn success(&self) -> bool {
        self.status.map(|s| s.success()).unwrap_or(false)
    }

    /// A one-line description for failure messages.
    pub fn describe(&self) -> String {
        let status = if self.timed_out {
            "timed out".to_string()
        } else {
            match self.status {
                Some(s) => s.to_string(),
                None => "no status".to_string(),
            }
        };
        let err = self.stderr.trim();
        let err: String = err.chars().take(600).collect();
        format!("{status}; stderr: {err:?}")
    }
}

/// Where the child's stdio goes.
pub struct Stdio3 {
    pub stdout: File,
    pub stderr: File,
}

/// Runs `cmd` with stdin from /dev/null and stdout/stderr into `out_dir/<tag>.{out,err}`,
/// killing it when `timeout` elapses.
pub fn run(cmd: &mut Command, out_dir: &Path, tag: &str, timeout: Duration) -> Result<Output> {
    let out_path = out_dir.join(format!("{tag}.out"));
    let err_path = out_dir.join(format!("{tag}.err"));
    let stdio = Stdio3 {
        stdout: File::create(&out_path).with_context(|| format!("creating {out_path:?}"))?,
        stderr: File::create(&err_path).with_context(|| format!("creating {err_path:?}"))?,
    };
    let start = Instant::now();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(stdio.stdout)
        .stderr(stdio.stderr)
        .spawn()
        .with_context(|| format!("spawning {cmd:?}"))?;
    let mut timed_out = false;
    let status = loop {
        if let Some(st) = child.try_wait()? {
            break Some(st);
        }
        if start.elapsed() > timeout {
            // A hung runtime must fail the test, not hang the suite.
            let _ = child.kill();
            timed_out = true;
            break child.wait().ok();
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    Ok(Output {
        status,
        stdout: std::fs::read_to_string(&out_path).unwrap_or_default(),
        stderr: std::fs::read_to_string(&err_path).unwrap_or_default(),
        timed_out,
    })
}
