//! Memory of the runtime during a container's life.
//!
//! The container runs `sleep`; while it lives, every process descended from the bench (the
//! `run` process, its children, and orphans reparented to the bench as subreaper, such as a
//! sentry supervisor or gofer) is sampled every 10 ms from /proc/<pid>/status. The workload is
//! recognised by its executable (the rootfs busybox, same device and inode) and left out.
//! Reported: the peak over samples of the summed VmRSS of runtime processes alive at once,
//! the sum of each runtime process's VmHWM, and ru_maxrss of the `run` command from wait4
//! (the largest of it and its reaped descendants, workload included).

use crate::proc;
use crate::runtimes::{Runtime, TIMEOUT};
use crate::Ctx;
use anyhow::Result;
use std::collections::{BTreeMap, HashMap};
use std::os::unix::fs::MetadataExt;
use std::time::Duration;

/// Parent pid of every process, from /proc/<pid>/stat.
fn parents() -> HashMap<i32, i32> {
    let mut m = HashMap::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return m;
    };
    for e in dir.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // The command name is in parentheses and may contain spaces: parse after the last ')'.
        let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
            continue;
        };
        if let Some(ppid) = rest.split_whitespace().nth(1).and_then(|s| s.parse().ok()) {
            m.insert(pid, ppid);
        }
    }
    m
}

fn descendants(of: i32) -> Vec<i32> {
    let par = parents();
    let mut out = Vec::new();
    let mut frontier = vec![of];
    while let Some(p) = frontier.pop() {
        for (&c, &pp) in &par {
            if pp == p {
                out.push(c);
                frontier.push(c);
            }
        }
    }
    out
}

/// (name, VmRSS KiB, VmHWM KiB) of a live process; None for zombies, which have no memory
/// and no executable left to tell whether they were the workload.
fn status(pid: i32) -> Option<(String, u64, u64)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    if s.lines()
        .any(|l| l.starts_with("State:") && l.contains('Z'))
    {
        return None;
    }
    let field = |k: &str| -> Option<String> {
        s.lines()
            .find(|l| l.starts_with(k))
            .map(|l| l[k.len()..].trim().to_string())
    };
    let kib = |v: Option<String>| -> u64 {
        v.and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    };
    Some((field("Name:")?, kib(field("VmRSS:")), kib(field("VmHWM:"))))
}

/// Some(true) for the workload, Some(false) for a runtime process, None when the executable
/// cannot be read any more (the process exited between two reads): not counted either way.
fn is_workload(pid: i32, busybox: (u64, u64)) -> Option<bool> {
    std::fs::metadata(format!("/proc/{pid}/exe"))
        .map(|m| (m.dev(), m.ino()) == busybox)
        .ok()
}

struct Sample {
    peak_sum_kib: u64,
    hwm: BTreeMap<i32, (String, u64)>,
}

fn sample_into(acc: &mut Sample, me: i32, busybox: (u64, u64)) {
    let mut sum = 0;
    for pid in descendants(me) {
        // Status first, executable second: a process that execs the workload in between is
        // then skipped rather than counted under the workload's name.
        let st = status(pid);
        if is_workload(pid, busybox) != Some(false) {
            continue;
        }
        if let Some((name, rss, hwm)) = st {
            sum += rss;
            let e = acc.hwm.entry(pid).or_insert((name.clone(), 0));
            e.0 = name;
            e.1 = e.1.max(hwm);
        }
    }
    acc.peak_sum_kib = acc.peak_sum_kib.max(sum);
}

fn once(ctx: &mut Ctx, rt: &Runtime, id: &str) -> Result<()> {
    let me = std::process::id() as i32;
    let err = ctx.scratch.join(format!("{}-mem.err", rt.label));
    let cmd = rt.run_cmd(&ctx.wrapper, &ctx.bundle_sleep, id);
    let r = proc::start(cmd, &ctx.scratch.join("mem.out"), &err)?;
    let mut acc = Sample {
        peak_sum_kib: 0,
        hwm: BTreeMap::new(),
    };
    let deadline = std::time::Instant::now() + TIMEOUT;
    while !proc::wait_pidfd(&r.pidfd, Duration::from_millis(10))? {
        sample_into(&mut acc, me, ctx.rootfs.busybox_id);
        if std::time::Instant::now() > deadline {
            break;
        }
    }
    let o = proc::finish(r, Duration::from_secs(1))?;
    proc::reap_exited();
    if !o.ok {
        rt.force_delete(&ctx.wrapper, id, &ctx.scratch);
        ctx.results.err(
            "mem.peak_rss",
            rt.label,
            format!("run: {}: {}", o.status, proc::first_line(&err)),
        );
        return Ok(());
    }
    let mib = |k: u64| k as f64 / 1024.0;
    let hwm_sum: u64 = acc.hwm.values().map(|(_, h)| h).sum();
    ctx.results
        .ok("mem.peak_rss", rt.label, mib(acc.peak_sum_kib));
    ctx.results.ok("mem.hwm_sum", rt.label, mib(hwm_sum));
    ctx.results
        .ok("mem.run_maxrss", rt.label, o.maxrss_kib as f64 / 1024.0);
    let seen = ctx
        .results
        .mem_processes
        .entry(rt.label.to_string())
        .or_default();
    seen.extend(acc.hwm.values().map(|(n, _)| n.clone()));
    Ok(())
}

pub fn measure(ctx: &mut Ctx) -> Result<()> {
    let rts: Vec<Runtime> = ctx
        .runtimes
        .iter()
        .filter(|r| r.available())
        .cloned()
        .collect();
    for rep in 0..ctx.mem_reps {
        eprintln!("memory: repetition {}/{}", rep + 1, ctx.mem_reps);
        for k in 0..rts.len() {
            let rt = &rts[(k + rep) % rts.len()];
            once(ctx, rt, &format!("m-{}-{rep}", rt.label))?;
        }
    }
    Ok(())
}
