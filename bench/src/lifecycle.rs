//! Container lifecycle: create + start + wait + delete of /bin/true, and `run` alone; plus
//! the cost of the common wrapper itself.
//!
//! What "wait" means: after `start` returns we wait, on a pidfd, for the container init
//! (pid from `--pid-file`) to exit. The bench is a child subreaper, so the init left behind
//! by `create` is its child and is reaped by it, as conmon or containerd-shim would.

use crate::proc::{self, Wrapper};
use crate::runtimes::{Runtime, TIMEOUT};
use crate::Ctx;
use anyhow::{anyhow, Result};
use std::path::Path;
use std::time::Duration;

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// One command of a runtime; an error carries the exit status and the first stderr line.
fn step(ctx: &Ctx, rt: &Runtime, what: &str, args: &[&str]) -> Result<Duration> {
    let err = ctx.scratch.join(format!("{}-{what}.err", rt.label));
    let o = proc::run(
        rt.cmd(&ctx.wrapper, args),
        &ctx.scratch.join("step.out"),
        &err,
        TIMEOUT,
    )?;
    if !o.ok {
        return Err(anyhow!("{what}: {}: {}", o.status, proc::first_line(&err)));
    }
    Ok(o.elapsed)
}

/// create, start, wait, delete; times in ms.
fn lifecycle_once(ctx: &Ctx, rt: &Runtime, id: &str) -> Result<[f64; 4]> {
    let pidfile = ctx.scratch.join(format!("{id}.pid"));
    let bundle = ctx
        .bundle_true
        .to_str()
        .ok_or_else(|| anyhow!("bundle path not UTF-8"))?;
    let pf = pidfile
        .to_str()
        .ok_or_else(|| anyhow!("pid path not UTF-8"))?;
    let create = step(
        ctx,
        rt,
        "create",
        &["create", "--bundle", bundle, "--pid-file", pf, id],
    )?;
    let pid: i32 = std::fs::read_to_string(&pidfile)?
        .trim()
        .parse()
        .map_err(|e| anyhow!("pid file: {e}"))?;
    let start = step(ctx, rt, "start", &["start", id])?;
    let wait = proc::wait_any_pid(pid, TIMEOUT)?;
    let delete = step(ctx, rt, "delete", &["delete", id])?;
    Ok([ms(create), ms(start), ms(wait), ms(delete)])
}

fn run_once(ctx: &Ctx, rt: &Runtime, id: &str) -> Result<f64> {
    let err = ctx.scratch.join(format!("{}-run.err", rt.label));
    let o = proc::run(
        rt.run_cmd(&ctx.wrapper, &ctx.bundle_true, id),
        &ctx.scratch.join("run.out"),
        &err,
        TIMEOUT,
    )?;
    if !o.ok {
        return Err(anyhow!("run: {}: {}", o.status, proc::first_line(&err)));
    }
    Ok(ms(o.elapsed))
}

/// Spawn-to-exit of the host's /bin/true, with or without the wrapper.
fn true_once(w: &Wrapper, scratch: &Path) -> Result<f64> {
    let o = proc::run(
        w.command(Path::new("/bin/true")),
        &scratch.join("true.out"),
        &scratch.join("true.err"),
        TIMEOUT,
    )?;
    Ok(ms(o.elapsed))
}

pub fn measure(ctx: &mut Ctx) -> Result<()> {
    let rts: Vec<Runtime> = ctx
        .runtimes
        .iter()
        .filter(|r| r.available())
        .cloned()
        .collect();
    let direct = Wrapper {
        private_mount_ns: false,
        umount_unified: false,
    };
    for rep in 0..ctx.reps {
        eprintln!("lifecycle: repetition {}/{}", rep + 1, ctx.reps);
        for k in 0..rts.len() {
            // Round robin, starting one further each repetition so no runtime is always first.
            let rt = &rts[(k + rep) % rts.len()];
            let id = format!("lc-{}-{rep}", rt.label);
            match lifecycle_once(ctx, rt, &id) {
                Ok([c, s, w, d]) => {
                    let r = &mut ctx.results;
                    r.ok("lifecycle.total", rt.label, c + s + w + d);
                    r.ok("lifecycle.create", rt.label, c);
                    r.ok("lifecycle.start", rt.label, s);
                    r.ok("lifecycle.wait", rt.label, w);
                    r.ok("lifecycle.delete", rt.label, d);
                }
                Err(e) => {
                    rt.force_delete(&ctx.wrapper, &id, &ctx.scratch);
                    ctx.results
                        .err("lifecycle.total", rt.label, format!("{e:#}"));
                }
            }
            let id = format!("run-{}-{rep}", rt.label);
            match run_once(ctx, rt, &id) {
                Ok(v) => ctx.results.ok("run", rt.label, v),
                Err(e) => {
                    rt.force_delete(&ctx.wrapper, &id, &ctx.scratch);
                    ctx.results.err("run", rt.label, format!("{e:#}"));
                }
            }
            proc::reap_exited();
        }
        for _ in 0..3 {
            let a = true_once(&direct, &ctx.scratch)?;
            let b = true_once(&ctx.wrapper, &ctx.scratch)?;
            ctx.results.ok("wrapper.direct", "host", a);
            ctx.results.ok("wrapper.wrapped", "host", b);
        }
    }
    Ok(())
}
