//! mantle-bench: mantle (native and sentry) side by side with runc and crun, interleaved,
//! repeated, reported as medians with spread and ratios (bench/README.md).
//!
//! A black box: it only runs runtime binaries, like a container manager would.

mod bundle;
mod concurrent;
mod files;
mod lifecycle;
mod memory;
mod plot;
mod proc;
mod report;
mod results;
mod runtimes;
mod stats;
mod syscalls;
mod unotify;

use anyhow::{bail, Context, Result};
use clap::Parser;
use proc::Wrapper;
use results::Results;
use runtimes::Runtime;
use std::path::{Path, PathBuf};
use std::process::Command;

#[derive(Parser, Debug)]
#[command(about = "Benchmark mantle against runc and crun")]
struct Args {
    /// The mantle binary.
    #[arg(long, env = "MANTLE_BIN", default_value = "target/release/mantle")]
    mantle: PathBuf,
    /// runc binary (name looked up in PATH, or a path).
    #[arg(long, default_value = "runc")]
    runc: String,
    /// crun binary (name looked up in PATH, or a path).
    #[arg(long, default_value = "crun")]
    crun: String,
    /// Markdown report to write; the PNG goes beside it (results.png).
    #[arg(long, default_value = "bench/results.md")]
    out: PathBuf,
    /// Short run that only checks everything works end to end (2 repetitions, small N).
    #[arg(long)]
    smoke: bool,
    /// Repetitions of the lifecycle benchmark (default 20, smoke 2).
    #[arg(long)]
    reps: Option<usize>,
    /// Containers started at once in the concurrency benchmark (default 50, smoke 8).
    #[arg(long)]
    concurrent: Option<usize>,
    /// A prebuilt static workload binary (default: built here with crt-static).
    #[arg(long)]
    workload: Option<PathBuf>,
    /// Static busybox for the rootfs.
    #[arg(long, default_value = "/bin/busybox")]
    busybox: PathBuf,
    /// TrueType font for the plot.
    #[arg(
        long,
        default_value = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
    )]
    font: PathBuf,
    /// Run runtimes directly, without the common mount-namespace wrapper (crun then fails
    /// on a hybrid cgroup host).
    #[arg(long)]
    no_wrapper: bool,
    /// Keep the work directory (bundles, state, logs).
    #[arg(long)]
    keep: bool,
    /// What the mantle binary was built from, for the report (default: `git describe --always
    /// --dirty` of this workspace).
    #[arg(long)]
    mantle_source: Option<String>,
    /// Also run the sentry crate's own microbenchmark (`cargo run --example sentry-bench`,
    /// in-process, needs gcc) and include its output verbatim.
    #[arg(long)]
    sentry_example: bool,
}

/// Everything the benchmarks share.
pub struct Ctx {
    pub wrapper: Wrapper,
    pub runtimes: Vec<Runtime>,
    pub scratch: PathBuf,
    pub rootfs: bundle::Rootfs,
    pub bundle_true: PathBuf,
    pub bundle_sleep: PathBuf,
    pub bundle_sys: PathBuf,
    pub bundle_files: PathBuf,
    pub reps: usize,
    pub concurrent: usize,
    pub conc_reps: usize,
    pub mem_reps: usize,
    pub sys_reps: usize,
    pub sys_iters: u64,
    pub files_reps: usize,
    pub results: Results,
}

fn which(name: &str) -> Option<PathBuf> {
    if name.contains('/') {
        return Some(PathBuf::from(name));
    }
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
}

/// Builds the static workload program (bench/workload, its own workspace) with crt-static.
fn build_workload() -> Result<PathBuf> {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("workload/Cargo.toml");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"))
        .join("bench-workload");
    let triple = "x86_64-unknown-linux-gnu";
    eprintln!("building the static workload ({})", manifest.display());
    let st = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args([
            "build",
            "--release",
            "-q",
            "--target",
            triple,
            "--manifest-path",
        ])
        .arg(&manifest)
        .env("CARGO_TARGET_DIR", &target)
        .env("RUSTFLAGS", "-C target-feature=+crt-static")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .status()
        .context("running cargo to build the workload")?;
    if !st.success() {
        bail!("building the workload failed: {st}");
    }
    Ok(target.join(triple).join("release/mantle-bench-workload"))
}

/// Output of the sentry crate's benchmarks (the seccomp example and the ptrace platform's
/// round-trip bench), or why they could not run.
fn sentry_example(scratch: &Path, iters: u64) -> String {
    let mut text = cargo_output(
        scratch,
        "sentry-ex",
        &[
            "run",
            "--release",
            "-q",
            "-p",
            "mantle-sentry",
            "--example",
            "sentry-bench",
            "--",
            &iters.to_string(),
        ],
    );
    text.push_str("\n--- ptrace platform (cargo test --release -p mantle-sentry --test ptrace_bench -- --ignored --nocapture)\n");
    text.push_str(&cargo_output(
        scratch,
        "ptrace-bench",
        &[
            "test",
            "--release",
            "-q",
            "-p",
            "mantle-sentry",
            "--test",
            "ptrace_bench",
            "--",
            "--ignored",
            "--nocapture",
        ],
    ));
    text
}

/// Run cargo in the workspace; its stdout, or why it failed.
fn cargo_output(scratch: &Path, tag: &str, args: &[&str]) -> String {
    let ws = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(&ws).args(args);
    eprintln!("running the sentry crate's benchmark ({tag})");
    let (out, err) = (
        scratch.join(format!("{tag}.out")),
        scratch.join(format!("{tag}.err")),
    );
    match proc::run(cmd, &out, &err, std::time::Duration::from_secs(900)) {
        Ok(o) if o.ok => std::fs::read_to_string(&out).unwrap_or_default(),
        Ok(o) => format!(
            "failed ({}): {}\n{}",
            o.status,
            proc::first_line(&err),
            std::fs::read_to_string(&out).unwrap_or_default()
        ),
        Err(e) => format!("could not run: {e:#}"),
    }
}

fn sh(cmd: &str, args: &[&str]) -> String {
    Command::new(cmd)
        .args(args)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

/// The three load averages from /proc/loadavg.
fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" / "))
        .unwrap_or_else(|_| "unknown".into())
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into())
}

fn mem_total() -> String {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            let kib: f64 = s.lines().next()?.split_whitespace().nth(1)?.parse().ok()?;
            Some(format!("{:.0} GiB", kib / 1024.0 / 1024.0))
        })
        .unwrap_or_else(|| "unknown".into())
}

fn runtimes(args: &Args, state: &Path) -> Result<Vec<Runtime>> {
    let mantle = std::fs::canonicalize(&args.mantle)
        .with_context(|| format!("mantle binary {}", args.mantle.display()))?;
    let mk = |label, bin: Option<PathBuf>, global: &[&str], missing: &str| Runtime {
        label,
        bin: bin.clone().unwrap_or_default(),
        global: global.iter().map(|s| s.to_string()).collect(),
        root: state.join(label),
        unavailable: bin.is_none().then(|| format!("{missing} not found")),
    };
    Ok(vec![
        mk("mantle", Some(mantle.clone()), &[], ""),
        mk("mantle-sentry", Some(mantle), &["--sandbox=sentry"], ""),
        mk("runc", which(&args.runc), &[], &args.runc),
        mk("crun", which(&args.crun), &[], &args.crun),
    ])
}

fn main() {
    if let Err(e) = real_main() {
        eprintln!("mantle-bench: error: {e:#}");
        std::process::exit(1);
    }
}

fn real_main() -> Result<()> {
    let args = Args::parse();
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        bail!("run as root: the runtimes create namespaces, mounts and cgroups");
    }
    plot::register_font(&args.font)?;
    proc::become_subreaper()?;
    let work = PathBuf::from(format!("/tmp/mantle-bench.{}", std::process::id()));
    std::fs::create_dir_all(work.join("scratch"))?;
    let result = run_all(&args, &work);
    if args.keep {
        eprintln!("work directory kept: {}", work.display());
    } else {
        let _ = std::fs::remove_dir_all(&work);
    }
    result
}

fn run_all(args: &Args, work: &Path) -> Result<()> {
    let smoke = args.smoke;
    let workload = match &args.workload {
        Some(p) => p.clone(),
        None => build_workload()?,
    };
    let files = if smoke { 500 } else { 10_000 };
    eprintln!("building the busybox rootfs ({files} files in the tarball)");
    let rootfs = bundle::build_rootfs(work, &args.busybox, &workload, files)?;
    let sys_iters: u64 = if smoke { 2_000 } else { 50_000 };
    let sleep = if smoke { "0.3" } else { "1" };
    let iters = sys_iters.to_string();
    let bundle_true = bundle::bundle(work, "true", &rootfs, &["/bin/true"], true)?;
    let bundle_sleep = bundle::bundle(work, "sleep", &rootfs, &["/bin/sleep", sleep], true)?;
    let bundle_sys = bundle::bundle(
        work,
        "sys",
        &rootfs,
        &["/bin/mantle-bench-workload", "syscalls", &iters],
        true,
    )?;
    let bundle_files = bundle::bundle(
        work,
        "files",
        &rootfs,
        &[
            "/bin/mantle-bench-workload",
            "phases",
            "untar",
            "tar -xf /data.tar -C /scratch",
            "find_stat",
            "find /scratch -exec stat {} + >/dev/null",
        ],
        false,
    )?;
    let hybrid = proc::host_is_hybrid();
    let wrapper = Wrapper {
        private_mount_ns: !args.no_wrapper,
        umount_unified: !args.no_wrapper && hybrid,
    };
    let scratch = work.join("scratch");
    let mut rts = runtimes(args, &work.join("state"))?;
    for rt in rts.iter_mut().filter(|r| r.available()) {
        eprintln!("probing {} ({})", rt.label, rt.bin.display());
        rt.probe(&wrapper, &bundle_true, &scratch)?;
        if let Some(e) = &rt.unavailable {
            eprintln!("  {} is n/a: {e}", rt.label);
        }
    }
    if !rts[0].available() {
        bail!(
            "mantle (native) does not run the probe container: {}",
            rts[0].unavailable.clone().unwrap_or_default()
        );
    }
    let two_or = |full: usize| if smoke { 2 } else { full };
    let mut ctx = Ctx {
        wrapper,
        runtimes: rts,
        scratch,
        rootfs,
        bundle_true,
        bundle_sleep,
        bundle_sys,
        bundle_files,
        reps: args.reps.unwrap_or(two_or(20)),
        concurrent: args.concurrent.unwrap_or(if smoke { 8 } else { 50 }),
        conc_reps: two_or(5),
        mem_reps: two_or(5),
        sys_reps: two_or(5),
        sys_iters,
        files_reps: two_or(3),
        results: Results::default(),
    };
    let date = sh("date", &["-u", "+%Y-%m-%d %H:%M UTC"]);
    let load_start = loadavg();
    lifecycle::measure(&mut ctx)?;
    concurrent::measure(&mut ctx)?;
    memory::measure(&mut ctx)?;
    syscalls::measure(&mut ctx)?;
    files::measure(&mut ctx)?;
    proc::reap_exited();
    let example = args
        .sentry_example
        .then(|| sentry_example(&ctx.scratch, ctx.sys_iters));

    let plot_name = "results.png";
    let out_dir = args
        .out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(out_dir)?;
    let plot_path = out_dir.join(plot_name);
    let ws = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let source = args
        .mantle_source
        .clone()
        .unwrap_or_else(|| sh("git", &["-C", ws, "describe", "--always", "--dirty"]));
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let meta =
        report::Meta {
            date: date.clone(),
            kernel: sh("uname", &["-r"]),
            cpu: cpu_model(),
            cores,
            mem: mem_total(),
            versions: ctx
                .runtimes
                .iter()
                .map(|r| {
                    let v = r.version();
                    if r.label.starts_with("mantle") && !source.is_empty() {
                        (r.label.to_string(), format!("{v} (source tree {source})"))
                    } else {
                        (r.label.to_string(), v)
                    }
                })
                .collect(),
            command: std::env::args().collect::<Vec<_>>().join(" "),
            wrapper: ctx.wrapper.describe(),
            params: format!(
            "{} lifecycle repetitions; {} × {} concurrent runs; {} memory runs (`sleep {sleep}`); \
             {} × {} iterations per syscall probe; {} file-workload runs over {} files{}",
            ctx.reps,
            ctx.conc_reps,
            ctx.concurrent,
            ctx.mem_reps,
            ctx.sys_reps,
            ctx.sys_iters,
            ctx.files_reps,
            ctx.rootfs.files_in_tar,
            if smoke { " (smoke run: numbers not meaningful)" } else { "" }
        ),
            plot_name: plot_name.into(),
            load: (load_start, loadavg()),
        };
    let md = report::render(&meta, &ctx.runtimes, &ctx.results, example.as_deref());
    std::fs::write(&args.out, md).with_context(|| format!("write {}", args.out.display()))?;
    let title = format!(
        "mantle vs runc vs crun — {date}, kernel {}, {cores} cores",
        meta.kernel
    );
    plot::render(&plot_path, &ctx.results, &title)?;
    let raw = out_dir.join("results.json");
    let mut json = ctx.results.to_json();
    json["meta"] = serde_json::json!({"date": meta.date, "kernel": meta.kernel, "cores": cores,
        "cpu": meta.cpu, "command": meta.command});
    std::fs::write(&raw, serde_json::to_vec_pretty(&json)?)
        .with_context(|| format!("write {}", raw.display()))?;
    eprintln!(
        "wrote {}, {} and {}",
        args.out.display(),
        plot_path.display(),
        raw.display()
    );
    let native_failures = ctx.results.failures_of("mantle");
    if !native_failures.is_empty() {
        bail!("mantle (native) failed in: {native_failures:?}");
    }
    Ok(())
}
