//! N containers started at once: each a `run` of /bin/true with its own id. Wall time from the
//! first spawn until the last runtime process exited; failures are non-zero exits.

use crate::proc;
use crate::runtimes::{Runtime, TIMEOUT};
use crate::Ctx;
use anyhow::Result;
use std::time::Instant;

pub fn measure(ctx: &mut Ctx) -> Result<()> {
    let rts: Vec<Runtime> = ctx
        .runtimes
        .iter()
        .filter(|r| r.available())
        .cloned()
        .collect();
    let n = ctx.concurrent;
    for rep in 0..ctx.conc_reps {
        eprintln!("concurrent: repetition {}/{}", rep + 1, ctx.conc_reps);
        for k in 0..rts.len() {
            let rt = &rts[(k + rep) % rts.len()];
            let ids: Vec<String> = (0..n)
                .map(|i| format!("c-{}-{rep}-{i}", rt.label))
                .collect();
            let t0 = Instant::now();
            let mut running = Vec::new();
            for id in &ids {
                let err = ctx.scratch.join(format!("{id}.err"));
                let cmd = rt.run_cmd(&ctx.wrapper, &ctx.bundle_true, id);
                running.push((
                    id,
                    err.clone(),
                    proc::start(cmd, &ctx.scratch.join("c.out"), &err),
                ));
            }
            let mut failed = Vec::new();
            for (id, err, r) in running {
                let outcome = r.and_then(|r| proc::finish(r, TIMEOUT));
                match outcome {
                    Ok(o) if o.ok => {}
                    Ok(o) => failed.push((id, format!("{}: {}", o.status, proc::first_line(&err)))),
                    Err(e) => failed.push((id, format!("{e:#}"))),
                }
            }
            let wall = t0.elapsed().as_secs_f64() * 1e3;
            ctx.results.ok("concurrent.wall", rt.label, wall);
            ctx.results
                .ok("concurrent.failed", rt.label, failed.len() as f64);
            for (id, msg) in failed {
                ctx.results.err("concurrent.wall", rt.label, msg);
                rt.force_delete(&ctx.wrapper, id, &ctx.scratch);
            }
            for id in &ids {
                let _ = std::fs::remove_file(ctx.scratch.join(format!("{id}.err")));
            }
            proc::reap_exited();
        }
    }
    Ok(())
}
