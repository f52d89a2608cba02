//! mantle-conformance: checks any OCI runtime binary against the OCI runtime specification.
//!
//! The runtime is a black box driven through its runc-compatible CLI (create, start, state,
//! kill, delete, features). Inside the container a static probe reports what the kernel sees;
//! the suite compares that with what config.json asked for. See README.md.

mod bundle;
mod console;
mod exec;
mod expected;
mod host;
mod probe_build;
mod report;
mod runtime;
mod suite;
mod tests;

use anyhow::{Context, Result};
use clap::Parser;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Parser, Debug)]
#[command(about = "OCI runtime-spec conformance suite for any runtime binary")]
struct Args {
    /// Runtime under test (the reference when --compare is given).
    #[arg(long, env = "RUNTIME", default_value = "/usr/sbin/runc")]
    runtime: PathBuf,
    /// Second runtime: every test passing under --runtime must pass under this one.
    #[arg(long)]
    compare: Option<PathBuf>,
    /// Global option for --runtime, put before every subcommand (repeatable).
    #[arg(long, allow_hyphen_values = true)]
    runtime_arg: Vec<String>,
    /// Global option for --compare, e.g. --compare-arg=--sandbox=sentry (repeatable).
    #[arg(long, allow_hyphen_values = true)]
    compare_arg: Vec<String>,
    /// Name of --runtime in reports and expected-differences.json (default: file name).
    #[arg(long)]
    runtime_name: Option<String>,
    /// Name of --compare in reports and expected-differences.json (default: file name).
    #[arg(long)]
    compare_name: Option<String>,
    /// Write machine-readable results here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Only run tests whose name contains this string (repeatable).
    #[arg(long)]
    filter: Vec<String>,
    /// A prebuilt static probe (default: build it with cargo).
    #[arg(long, env = "CONFORMANCE_PROBE")]
    probe: Option<PathBuf>,
    /// Static busybox copied into every rootfs.
    #[arg(long, default_value = "/bin/busybox")]
    busybox: PathBuf,
    /// Deadline for each runtime invocation and each container wait, in seconds.
    #[arg(long, default_value_t = 10)]
    timeout: u64,
    /// The list of explained differences.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/expected-differences.json"))]
    expected: PathBuf,
    /// Keep the work directory (bundles, runtime logs) for debugging.
    #[arg(long)]
    keep: bool,
    /// Do not move the suite into a private mount namespace first.
    #[arg(long)]
    no_unshare: bool,
    /// Unmount the cgroup2 hierarchy at /sys/fs/cgroup/unified in the suite's private mount
    /// namespace (crun refuses the hybrid layout otherwise).
    #[arg(long)]
    hide_unified: bool,
    /// List the tests and their clauses, run nothing.
    #[arg(long)]
    list: bool,
}

fn main() {
    match real_main() {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("mantle-conformance: {e:#}");
            std::process::exit(2);
        }
    }
}

fn real_main() -> Result<i32> {
    let args = Args::parse();
    let all = tests::all();
    let selected: Vec<&suite::Test> = all
        .iter()
        .filter(|t| args.filter.is_empty() || args.filter.iter().any(|f| t.name.contains(f)))
        .collect();
    if args.list {
        for t in &selected {
            println!("{:<44} {}", t.name, t.clause);
        }
        return Ok(0);
    }
    // Must happen while single-threaded (unshare(CLONE_NEWNS) refuses threaded callers).
    if !args.no_unshare {
        isolate_mounts(args.hide_unified)?;
    }
    become_subreaper()?;
    suite::install_interrupt_handler();
    let probe = match &args.probe {
        Some(p) => {
            probe_build::check_static(p)?;
            p.clone()
        }
        None => probe_build::build()?,
    };
    let expected = expected::Expected::load(&args.expected)?;
    let work = std::env::temp_dir().join(format!("mantle-conformance-{}", std::process::id()));
    std::fs::create_dir_all(&work).with_context(|| format!("creating {work:?}"))?;
    let work_is_shared = !args.no_unshare && make_shared_mount(&work).is_ok();
    let timeout = Duration::from_secs(args.timeout);

    // Absolute paths: `create` runs with the bundle as its working directory.
    let mut runtimes = vec![runtime_spec(
        &args.runtime,
        &args.runtime_name,
        &args.runtime_arg,
    )?];
    if let Some(other) = &args.compare {
        runtimes.push(runtime_spec(other, &args.compare_name, &args.compare_arg)?);
    }
    if runtimes.len() == 2 && runtimes[0].name == runtimes[1].name {
        anyhow::bail!(
            "both runtimes are named {:?}; give --compare-name",
            runtimes[0].name
        );
    }
    let total = selected.len() * runtimes.len();
    println!("TAP version 13");
    println!("1..{total}");
    let mut counter = 0;
    let mut runs = Vec::new();
    for spec in &runtimes {
        let setup = report::Setup {
            work: &work,
            probe: &probe,
            busybox: &args.busybox,
            timeout,
            work_is_shared,
            keep: args.keep,
        };
        let run = report::run_suite(spec, &setup, &selected, &mut counter)?;
        runs.push(run);
    }
    if suite::INTERRUPTED.load(std::sync::atomic::Ordering::SeqCst) {
        cleanup_cgroups();
        if !args.keep {
            detach(&work);
            let _ = std::fs::remove_dir_all(&work);
        }
        eprintln!("mantle-conformance: interrupted");
        return Ok(130);
    }
    let code = report::finish(&runs, &selected, &expected, args.json.as_deref())?;
    cleanup_cgroups();
    if !args.keep {
        if work_is_shared {
            // Container mounts may have propagated back into the bundles (rootfsPropagation
            // shared); detach everything below the work dir before deleting it.
            detach(&work);
        }
        let _ = std::fs::remove_dir_all(&work);
    } else {
        eprintln!("# work directory kept: {}", work.display());
    }
    Ok(code)
}

fn runtime_spec(
    bin: &std::path::Path,
    name: &Option<String>,
    args: &[String],
) -> Result<runtime::RuntimeSpec> {
    let abs = std::path::absolute(bin)?;
    if !abs.is_file() {
        anyhow::bail!("runtime {} does not exist", bin.display());
    }
    let name = name
        .clone()
        .or_else(|| abs.file_name().map(|n| n.to_string_lossy().into_owned()));
    Ok(runtime::RuntimeSpec {
        bin: abs,
        name,
        args: args.to_vec(),
    })
}

/// Moves the suite (and so every runtime it starts) into a private mount namespace: whatever a
/// faulty runtime mounts outside its container stays here and dies with the suite.
fn isolate_mounts(hide_unified: bool) -> Result<()> {
    // SAFETY: unshare of the mount namespace affects only this (still single-threaded) process.
    if unsafe { libc::unshare(libc::CLONE_NEWNS) } != 0 {
        return Err(std::io::Error::last_os_error()).context("unshare(CLONE_NEWNS)");
    }
    let root = c"/";
    // SAFETY: remount / recursively private in our own new namespace; no data pointer.
    let r = unsafe {
        libc::mount(
            std::ptr::null(),
            root.as_ptr(),
            std::ptr::null(),
            libc::MS_REC | libc::MS_PRIVATE,
            std::ptr::null(),
        )
    };
    if r != 0 {
        return Err(std::io::Error::last_os_error()).context("making / private");
    }
    if hide_unified {
        let unified = c"/sys/fs/cgroup/unified";
        // SAFETY: unmounts in our private namespace only; the host keeps its mount.
        if unsafe { libc::umount2(unified.as_ptr(), libc::MNT_DETACH) } != 0 {
            return Err(std::io::Error::last_os_error()).context("umount /sys/fs/cgroup/unified");
        }
    }
    Ok(())
}

/// Bind-mounts the work directory onto itself as a shared mount (in our private namespace), so
/// rootfs propagation modes that depend on a shared parent can be observed.
fn make_shared_mount(dir: &std::path::Path) -> Result<()> {
    let c = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes())?;
    // SAFETY: bind of our own temp dir onto itself, in the suite's private mount namespace.
    let r = unsafe {
        libc::mount(
            c.as_ptr(),
            c.as_ptr(),
            std::ptr::null(),
            libc::MS_BIND,
            std::ptr::null(),
        )
    };
    if r != 0 {
        return Err(std::io::Error::last_os_error()).context("bind work dir");
    }
    // SAFETY: changes propagation of the mount just created; no data pointer.
    let r = unsafe {
        libc::mount(
            std::ptr::null(),
            c.as_ptr(),
            std::ptr::null(),
            libc::MS_SHARED,
            std::ptr::null(),
        )
    };
    if r != 0 {
        return Err(std::io::Error::last_os_error()).context("make work dir shared");
    }
    Ok(())
}

fn detach(dir: &std::path::Path) {
    if let Ok(c) = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()) {
        // SAFETY: lazy unmount of our own work dir in our private namespace.
        unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
    }
}

/// Removes the (now empty) parent cgroups the tests' cgroupsPath values created.
fn cleanup_cgroups() {
    if let Ok(rd) = std::fs::read_dir("/sys/fs/cgroup") {
        for e in rd.flatten() {
            let _ = std::fs::remove_dir(e.path().join("conformance"));
        }
    }
    let _ = std::fs::remove_dir("/sys/fs/cgroup/conformance");
}

/// Container processes are reparented to us when `create` exits, so we can reap them and
/// read their exit status (what conmon or a containerd shim does).
fn become_subreaper() -> Result<()> {
    // SAFETY: PR_SET_CHILD_SUBREAPER takes an integer flag only.
    if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } != 0 {
        return Err(std::io::Error::last_os_error()).context("PR_SET_CHILD_SUBREAPER");
    }
    Ok(())
}
