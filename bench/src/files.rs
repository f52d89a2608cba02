//! A file-heavy workload: untar a tree of small files into the container's /scratch, then
//! `find /scratch -exec stat {} +`; each phase timed inside the container by the workload.

use crate::runtimes::{Runtime, TIMEOUT};
use crate::{bundle, proc, Ctx};
use anyhow::{anyhow, Context, Result};
use serde_json::Value;

fn once(ctx: &mut Ctx, rt: &Runtime, id: &str) -> Result<()> {
    bundle::reset_scratch(&ctx.rootfs)?;
    let out = ctx.scratch.join("files.out");
    let err = ctx.scratch.join(format!("{}-files.err", rt.label));
    let o = proc::run(
        rt.run_cmd(&ctx.wrapper, &ctx.bundle_files, id),
        &out,
        &err,
        TIMEOUT,
    )?;
    let text = std::fs::read_to_string(&out)?;
    let json = text.lines().rev().find(|l| l.starts_with('{'));
    if !o.ok && json.is_none() {
        rt.force_delete(&ctx.wrapper, id, &ctx.scratch);
        let msg = format!("run: {}: {}", o.status, proc::first_line(&err));
        ctx.results.err("files.untar", rt.label, msg.clone());
        ctx.results.err("files.find_stat", rt.label, msg);
        return Ok(());
    }
    let v: Value = serde_json::from_str(json.ok_or_else(|| anyhow!("no JSON"))?)
        .context("files workload JSON")?;
    for phase in ["untar", "find_stat"] {
        let m = format!("files.{phase}");
        match v.get(phase) {
            Some(p) if p.get("ns").is_some() => {
                let ns = p["ns"].as_f64().unwrap_or(f64::NAN);
                ctx.results.ok(&m, rt.label, ns / 1e6);
            }
            Some(p) => ctx.results.err(&m, rt.label, p.to_string()),
            None => ctx.results.err(&m, rt.label, "phase not reached"),
        }
    }
    if !o.ok {
        rt.force_delete(&ctx.wrapper, id, &ctx.scratch);
    }
    Ok(())
}

pub fn measure(ctx: &mut Ctx) -> Result<()> {
    let rts: Vec<Runtime> = ctx
        .runtimes
        .iter()
        .filter(|r| r.available())
        .cloned()
        .collect();
    for rep in 0..ctx.files_reps {
        eprintln!("files: repetition {}/{}", rep + 1, ctx.files_reps);
        for k in 0..rts.len() {
            let rt = &rts[(k + rep) % rts.len()];
            once(ctx, rt, &format!("f-{}-{rep}", rt.label))?;
            proc::reap_exited();
        }
    }
    bundle::reset_scratch(&ctx.rootfs)
}
