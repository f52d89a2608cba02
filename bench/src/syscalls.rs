//! Syscall costs seen by a workload: the static workload program times N iterations of each
//! probe and prints ns per call, on the host (no container) and inside each runtime.

use crate::proc;
use crate::runtimes::{Runtime, TIMEOUT};
use crate::Ctx;
use anyhow::{anyhow, Context, Result};
use serde_json::Value;
use std::path::Path;

pub const PROBES: &[&str] = &[
    "getppid",
    "uname",
    "stat",
    "open_read_close",
    "pipe_write_read",
];

/// Parses the workload's JSON line into (probe, ns) or (probe, error).
fn parse(out: &Path) -> Result<Vec<(String, Result<f64, String>)>> {
    let text = std::fs::read_to_string(out)?;
    let line = text
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .ok_or_else(|| anyhow!("no JSON from the workload: {:?}", text.trim()))?;
    let v: Value = serde_json::from_str(line).context("workload JSON")?;
    let obj = v
        .as_object()
        .ok_or_else(|| anyhow!("workload JSON is not an object"))?;
    Ok(obj
        .iter()
        .map(|(k, v)| {
            let r = match (v.get("ns").and_then(Value::as_f64), v.get("error")) {
                (Some(ns), _) => Ok(ns),
                (None, Some(e)) => Err(e.to_string()),
                _ => Err("malformed".into()),
            };
            (k.clone(), r)
        })
        .collect())
}

fn record(ctx: &mut Ctx, env: &str, rows: Vec<(String, Result<f64, String>)>) {
    for (probe, r) in rows {
        let m = format!("sys.{probe}");
        match r {
            Ok(ns) => ctx.results.ok(&m, env, ns),
            Err(e) => ctx.results.err(&m, env, e),
        }
    }
}

fn in_runtime(ctx: &mut Ctx, rt: &Runtime, id: &str) -> Result<()> {
    let out = ctx.scratch.join("sys.out");
    let err = ctx.scratch.join(format!("{}-sys.err", rt.label));
    let o = proc::run(
        rt.run_cmd(&ctx.wrapper, &ctx.bundle_sys, id),
        &out,
        &err,
        TIMEOUT,
    )?;
    if !o.ok {
        rt.force_delete(&ctx.wrapper, id, &ctx.scratch);
        let msg = format!("run: {}: {}", o.status, proc::first_line(&err));
        for p in PROBES {
            ctx.results.err(&format!("sys.{p}"), rt.label, msg.clone());
        }
        return Ok(());
    }
    let rows = parse(&out)?;
    record(ctx, rt.label, rows);
    Ok(())
}

fn on_host(ctx: &mut Ctx) -> Result<()> {
    let out = ctx.scratch.join("sys-host.out");
    let mut cmd = std::process::Command::new(ctx.rootfs.path.join("bin/mantle-bench-workload"));
    cmd.arg("syscalls")
        .arg(ctx.sys_iters.to_string())
        .arg(ctx.rootfs.path.join("etc/bench-file"));
    let o = proc::run(cmd, &out, &ctx.scratch.join("sys-host.err"), TIMEOUT)?;
    if !o.ok {
        return Err(anyhow!("workload on the host: {}", o.status));
    }
    let rows = parse(&out)?;
    record(ctx, "host", rows);
    Ok(())
}

pub fn measure(ctx: &mut Ctx) -> Result<()> {
    let rts: Vec<Runtime> = ctx
        .runtimes
        .iter()
        .filter(|r| r.available())
        .cloned()
        .collect();
    for rep in 0..ctx.sys_reps {
        eprintln!("syscalls: repetition {}/{}", rep + 1, ctx.sys_reps);
        // The host run (index rts.len()) takes its turn in the rotation too.
        let envs = rts.len() + 1;
        for k in 0..envs {
            match rts.get((k + rep) % envs) {
                Some(rt) => in_runtime(ctx, rt, &format!("s-{}-{rep}", rt.label))?,
                None => on_host(ctx)?,
            }
            proc::reap_exited();
        }
        for (m, sync, pin) in [
            ("unotify.plain", false, false),
            ("unotify.sync_wakeup", true, false),
            ("unotify.plain_pinned", false, true),
            ("unotify.sync_wakeup_pinned", true, true),
        ] {
            match crate::unotify::round_trip(ctx.sys_iters, sync, pin) {
                Ok(ns) => ctx.results.ok(m, "host", ns),
                Err(e) => ctx.results.err(m, "host", format!("{e:#}")),
            }
        }
    }
    Ok(())
}
