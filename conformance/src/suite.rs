//! What a test sees: the runtime, fresh bundles, containers that clean up after themselves,
//! and one-call helpers for the common "run the probe and look at its report" pattern.

use crate::bundle::{Bundle, RootfsTemplate};
use crate::console::{self, Console};
use crate::exec::Output;
use crate::host::Host;
use crate::runtime::Runtime;
use anyhow::{bail, Context, Result};
use serde_json::Value;
use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Set by SIGINT/SIGTERM: the current test stops waiting, its containers are cleaned up by
/// their guards, and no further test starts.
pub static INTERRUPTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

pub fn interrupted() -> bool {
    INTERRUPTED.load(std::sync::atomic::Ordering::SeqCst)
}

extern "C" fn on_interrupt(_: libc::c_int) {
    INTERRUPTED.store(true, std::sync::atomic::Ordering::SeqCst);
}

/// Turns SIGINT/SIGTERM into a graceful stop (a killed suite would leak containers).
pub fn install_interrupt_handler() {
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        unsafe { libc::signal(sig, on_interrupt as *const () as libc::sighandler_t) };
    }
}

/// A test ends with Ok (pass), an error (fail), or an error wrapping `Skip`.
pub type TestResult = Result<()>;

/// Marker error: the host lacks what the test needs.
#[derive(Debug)]
pub struct Skip(pub String);

impl std::fmt::Display for Skip {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl std::error::Error for Skip {}

/// Returns from the test with a skip and its reason.
#[macro_export]
macro_rules! skip {
    ($($t:tt)*) => {
        return Err(anyhow::Error::new($crate::suite::Skip(format!($($t)*))))
    };
}

/// One test: a name, the clause it checks (document#section: short quote), the check.
pub struct Test {
    pub name: &'static str,
    pub clause: &'static str,
    pub run: fn(&Ctx) -> TestResult,
}

/// How a container process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Code(i32),
    Signal(i32),
    /// The process was not our child (the runtime kept it elsewhere); it is gone.
    Unknown,
}

pub struct Ctx {
    pub rt: Runtime,
    pub template: RootfsTemplate,
    pub host: Host,
    pub work: PathBuf,
    /// The bundles live on a shared mount (see main::isolate_mounts), so slave propagation
    /// of the container's root can be observed.
    pub work_is_shared: bool,
    seq: Cell<u64>,
}

impl Ctx {
    pub fn new(
        rt: Runtime,
        template: RootfsTemplate,
        host: Host,
        work: PathBuf,
        work_is_shared: bool,
    ) -> Ctx {
        Ctx {
            rt,
            template,
            host,
            work,
            work_is_shared,
            seq: Cell::new(0),
        }
    }

    /// A container id unique to this run.
    pub fn new_id(&self) -> String {
        let n = self.seq.get() + 1;
        self.seq.set(n);
        format!("conf-{}-{}-{n}", std::process::id(), self.rt.name)
    }

    /// A fresh bundle with the default config (see bundle::default_config).
    pub fn bundle(&self) -> Result<Bundle> {
        let id = self.new_id();
        let dir = self.work.join("bundles").join(&id);
        Bundle::create(&self.template, &dir, &id)
    }

    /// `create` that must succeed.
    pub fn create<'a>(&'a self, b: &Bundle) -> Result<Container<'a>> {
        let (out, c) = self.try_create(b)?;
        if !out.success() {
            bail!("create failed: {}", out.describe());
        }
        Ok(c)
    }

    /// `create` whose outcome the test inspects; the container is cleaned up either way.
    pub fn try_create<'a>(&'a self, b: &Bundle) -> Result<(Output, Container<'a>)> {
        b.write_config()?;
        let c = Container::new(self, b);
        let out = self.rt.create(&b.id, &b.dir, None)?;
        Ok((out, c))
    }

    /// `create` with a console socket, for `process.terminal: true`.
    pub fn create_with_console<'a>(
        &'a self,
        b: &Bundle,
    ) -> Result<(Container<'a>, std::thread::JoinHandle<Result<Console>>)> {
        b.write_config()?;
        let sock = b.dir.join("console.sock");
        let handle = console::capture(&sock, self.rt.timeout * 2)?;
        let c = Container::new(self, b);
        let out = self.rt.create(&b.id, &b.dir, Some(&sock))?;
        if !out.success() {
            bail!("create failed: {}", out.describe());
        }
        Ok((c, handle))
    }

    /// create + start + wait + delete; the process's exit and output.
    pub fn run(&self, b: &Bundle) -> Result<Finished> {
        let mut c = self.create(b)?;
        c.start()?;
        let exit = c.wait()?;
        let fin = Finished {
            exit,
            stdout: c.stdout(),
            stderr: c.stderr(),
        };
        c.destroy()?;
        Ok(fin)
    }

    /// Runs the bundle (whose args are a probe command line) and returns the probe's results,
    /// one JSON value per chained command. The probe must exit 0.
    pub fn probe(&self, b: &Bundle) -> Result<Probed> {
        let fin = self.run(b)?;
        if fin.exit != Exit::Code(0) {
            bail!(
                "container process ended with {:?}; stdout {:?}; stderr {:?}",
                fin.exit,
                fin.stdout,
                fin.stderr
            );
        }
        parse_probe(&fin.stdout)
    }

    /// Runs `probe report` with the bundle's config and returns the report.
    pub fn report(&self, b: &mut Bundle) -> Result<Value> {
        b.set_args(&["/bin/probe", "report"]);
        Ok(self.probe(b)?[0].clone())
    }

    /// Runs `probe <args...>` and returns the results.
    pub fn probe_cmd(&self, b: &mut Bundle, args: &[&str]) -> Result<Probed> {
        let mut full = vec!["/bin/probe"];
        full.extend_from_slice(args);
        b.set_args(&full);
        self.probe(b)
    }
}

/// The probe's results, one per chained command. Indexing past the end yields `null` instead
/// of panicking: a runtime that truncates output must fail a test, not abort the suite.
#[derive(Debug)]
pub struct Probed(pub Vec<Value>);

static NULL: Value = Value::Null;

impl std::ops::Index<usize> for Probed {
    type Output = Value;
    fn index(&self, i: usize) -> &Value {
        self.0.get(i).unwrap_or(&NULL)
    }
}

/// The probe prints one JSON array on its last stdout line.
pub fn parse_probe(stdout: &str) -> Result<Probed> {
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with('['))
        .with_context(|| format!("no probe output in {stdout:?}"))?;
    let v: Value = serde_json::from_str(line).with_context(|| format!("probe output {line:?}"))?;
    match v {
        Value::Array(a) if !a.is_empty() => Ok(Probed(a)),
        other => bail!("probe output is not a non-empty array: {other}"),
    }
}

pub struct Finished {
    pub exit: Exit,
    pub stdout: String,
    pub stderr: String,
}

/// A created container; dropping it kills and force-deletes it (cleanup even on failure).
pub struct Container<'a> {
    ctx: &'a Ctx,
    pub id: String,
    pub bundle: PathBuf,
    pid: Option<i32>,
    reaped: bool,
    deleted: bool,
}

impl<'a> Container<'a> {
    fn new(ctx: &'a Ctx, b: &Bundle) -> Container<'a> {
        Container {
            ctx,
            id: b.id.clone(),
            bundle: b.dir.clone(),
            pid: None,
            reaped: false,
            deleted: false,
        }
    }

    pub fn state(&self) -> Result<Value> {
        self.ctx.rt.state(&self.id)
    }

    pub fn status(&self) -> Result<String> {
        self.ctx.rt.status(&self.id)
    }

    /// The container process's host pid, from `state` (cached).
    pub fn pid(&mut self) -> Result<i32> {
        if let Some(p) = self.pid {
            return Ok(p);
        }
        let st = self.state()?;
        let pid = st["pid"]
            .as_i64()
            .filter(|p| *p > 0)
            .with_context(|| format!("state has no positive pid: {st}"))? as i32;
        self.pid = Some(pid);
        Ok(pid)
    }

    pub fn start(&mut self) -> Result<()> {
        self.pid()?;
        let out = self.ctx.rt.start(&self.id)?;
        if !out.success() {
            bail!("start failed: {}", out.describe());
        }
        Ok(())
    }

    /// Waits for the container process to end (we are its subreaper).
    pub fn wait(&mut self) -> Result<Exit> {
        let pid = self.pid()?;
        let exit = wait_pid(pid, self.ctx.rt.timeout)?;
        self.reaped = true;
        Ok(exit)
    }

    /// Waits until `state` reports `want` (status changes may lag the process exit).
    pub fn wait_status(&self, want: &str) -> Result<()> {
        let deadline = Instant::now() + self.ctx.rt.timeout;
        loop {
            let s = self.status()?;
            if s == want {
                return Ok(());
            }
            if Instant::now() > deadline || interrupted() {
                bail!("status stayed {s:?}, expected {want:?}");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn stdout(&self) -> String {
        std::fs::read_to_string(self.bundle.join("container.out")).unwrap_or_default()
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.bundle.join("container.err")).unwrap_or_default()
    }

    /// Plain `delete` that must succeed.
    pub fn destroy(&mut self) -> Result<()> {
        let out = self.ctx.rt.delete(&self.id, false)?;
        if !out.success() {
            bail!("delete failed: {}", out.describe());
        }
        self.deleted = true;
        Ok(())
    }

    pub fn mark_deleted(&mut self) {
        self.deleted = true;
    }
}

impl Drop for Container<'_> {
    fn drop(&mut self) {
        if !self.deleted {
            let _ = self.ctx.rt.kill(&self.id, "KILL");
            let _ = self.ctx.rt.delete(&self.id, true);
        }
        if let (Some(pid), false) = (self.pid, self.reaped) {
            let _ = wait_pid(pid, Duration::from_secs(5));
        }
    }
}

/// waitpid with a deadline; falls back to watching /proc when the process is not our child.
pub fn wait_pid(pid: i32, timeout: Duration) -> Result<Exit> {
    let deadline = Instant::now() + timeout;
    loop {
        let mut st = 0;
        // SAFETY: st is a valid out-pointer; WNOHANG never blocks.
        let r = unsafe { libc::waitpid(pid, &mut st, libc::WNOHANG) };
        if r == pid {
            if libc::WIFEXITED(st) {
                return Ok(Exit::Code(libc::WEXITSTATUS(st)));
            }
            if libc::WIFSIGNALED(st) {
                return Ok(Exit::Signal(libc::WTERMSIG(st)));
            }
        } else if r < 0 && !alive(pid) {
            return Ok(Exit::Unknown);
        }
        if Instant::now() > deadline {
            bail!("process {pid} still running after {timeout:?}");
        }
        if interrupted() {
            bail!("interrupted");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Whether `pid` exists and is not a zombie.
pub fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => s
            .rsplit_once(')')
            .map(|(_, rest)| !rest.trim_start().starts_with('Z'))
            .unwrap_or(false),
        Err(_) => false,
    }
}

/// Reaps any orphaned descendants (hooks, intermediate runtime processes) between tests.
pub fn reap_orphans() {
    loop {
        let mut st = 0;
        // SAFETY: non-blocking wait for any child; st is a valid out-pointer.
        let r = unsafe { libc::waitpid(-1, &mut st, libc::WNOHANG) };
        if r <= 0 {
            break;
        }
    }
}

/// Lazily unmounts every mount below `dir` in the suite's mount namespace: with
/// `rootfsPropagation: shared` a container's mounts propagate back into its bundle, and deleting
/// the bundle must not walk into them.
pub fn detach_mounts_under(dir: &Path) {
    let Ok(text) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return;
    };
    let prefix = format!("{}/", dir.display());
    let mut points: Vec<String> = text
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|p| p.replace("\\040", " "))
        .filter(|p| p.starts_with(&prefix))
        .collect();
    // Deepest first.
    points.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for p in points {
        if let Ok(c) = std::ffi::CString::new(p) {
            // SAFETY: lazy unmount of a mount below our own work dir, in our namespace.
            unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
        }
    }
}

/// Reads a file of the host, trimmed.
pub fn read_host(path: &Path) -> Result<String> {
    Ok(std::fs::read_to_string(path)
        .with_context(|| format!("reading {path:?}"))?
        .trim()
        .to_string())
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn probe_output_is_the_last_array_line() {
        let p = parse_probe("noise\n[{\"a\":1},{\"b\":2}]\n").unwrap();
        assert_eq!(p[1]["b"], 2);
        // Out of range is null, never a panic.
        assert!(p[7].is_null());
        assert!(parse_probe("no json here").is_err());
        assert!(parse_probe("[]").is_err());
    }
}
