//! hostname/domainname, rootfsPropagation, personality, ioPriority, scheduler.

use super::util::mount_at;
use crate::suite::{Ctx, Test, TestResult};
use anyhow::ensure;
use serde_json::json;

pub fn tests() -> Vec<Test> {
    vec![
        Test {
            name: "uts.hostname",
            clause: "config.md#hostname: hostname (string, OPTIONAL) specifies the container's hostname as seen by processes running inside the container",
            run: hostname,
        },
        Test {
            name: "uts.domainname",
            clause: "config.md#domainname: domainname (string, OPTIONAL) specifies the container's domainname as seen by processes running inside the container",
            run: domainname,
        },
        Test {
            name: "propagation.rootfs_shared",
            clause: "config-linux.md#rootfs-mount-propagation: rootfsPropagation (string, OPTIONAL) sets the rootfs's mount propagation: shared",
            run: |ctx| propagation(ctx, "shared"),
        },
        Test {
            name: "propagation.rootfs_private",
            clause: "config-linux.md#rootfs-mount-propagation: rootfsPropagation: private",
            run: |ctx| propagation(ctx, "private"),
        },
        Test {
            name: "propagation.rootfs_slave",
            clause: "config-linux.md#rootfs-mount-propagation: rootfsPropagation: slave",
            run: |ctx| propagation(ctx, "slave"),
        },
        Test {
            name: "propagation.rootfs_unbindable",
            clause: "config-linux.md#rootfs-mount-propagation: rootfsPropagation: unbindable",
            run: |ctx| propagation(ctx, "unbindable"),
        },
        Test {
            name: "personality.linux32",
            clause: "config-linux.md#personality: domain (string, REQUIRED) the execution domain: LINUX or LINUX32",
            run: personality,
        },
        Test {
            name: "process.io_priority",
            clause: "config.md#process: ioPriority (object, OPTIONAL) configures the I/O priority settings for the container's processes (class, priority)",
            run: io_priority,
        },
        Test {
            name: "process.scheduler",
            clause: "config.md#process: scheduler (object, OPTIONAL) represents the scheduling attributes for a process (policy, nice)",
            run: scheduler,
        },
    ]
}

fn hostname(ctx: &Ctx) -> TestResult {
    let mut b = ctx.bundle()?;
    b.config["hostname"] = json!("conf-host-1");
    let r = ctx.report(&mut b)?;
    ensure!(
        r["uname"]["nodename"] == "conf-host-1",
        "hostname {}",
        r["uname"]["nodename"]
    );
    Ok(())
}

fn domainname(ctx: &Ctx) -> TestResult {
    let mut b = ctx.bundle()?;
    b.config["domainname"] = json!("conf.example.org");
    let r = ctx.report(&mut b)?;
    ensure!(
        r["uname"]["domainname"] == "conf.example.org",
        "domainname {}",
        r["uname"]["domainname"]
    );
    Ok(())
}

fn propagation(ctx: &Ctx, mode: &str) -> TestResult {
    if mode == "slave" && !ctx.work_is_shared {
        crate::skip!("the bundle is not on a shared mount (run without --no-unshare), so slave propagation is unobservable");
    }
    let mut b = ctx.bundle()?;
    b.linux()["rootfsPropagation"] = json!(mode);
    let r = ctx.report(&mut b)?;
    let root = mount_at(&r, "/")?;
    let has = |p: &str| root.optional.iter().any(|o| o.starts_with(p));
    let ok = match mode {
        "shared" => has("shared:"),
        "slave" => has("master:") && !has("shared:"),
        "private" => !has("shared:") && !has("master:") && !has("unbindable"),
        "unbindable" => has("unbindable"),
        _ => false,
    };
    ensure!(
        ok,
        "root mount propagation fields {:?} do not match {mode}",
        root.optional
    );
    Ok(())
}

fn personality(ctx: &Ctx) -> TestResult {
    let mut b = ctx.bundle()?;
    b.linux()["personality"] = json!({"domain": "LINUX32"});
    let r = ctx.report(&mut b)?;
    let p = r["personality"].as_i64().unwrap_or(-1);
    ensure!(
        p & 0xff == 0x0008,
        "personality {p:#x}, want PER_LINUX32 (0x8)"
    );
    Ok(())
}

fn io_priority(ctx: &Ctx) -> TestResult {
    let mut b = ctx.bundle()?;
    b.process()["ioPriority"] = json!({"class": "IOPRIO_CLASS_BE", "priority": 5});
    let r = ctx.report(&mut b)?;
    // IOPRIO_PRIO_VALUE(class, data) = class << 13 | data; IOPRIO_CLASS_BE = 2.
    let want = (2 << 13) | 5;
    ensure!(
        r["ioprio"] == want,
        "ioprio {}, want {want} (BE/5)",
        r["ioprio"]
    );
    Ok(())
}

fn scheduler(ctx: &Ctx) -> TestResult {
    let mut b = ctx.bundle()?;
    b.process()["scheduler"] = json!({"policy": "SCHED_BATCH", "nice": 5});
    let r = ctx.report(&mut b)?;
    ensure!(
        r["sched"]["policy"] == libc::SCHED_BATCH,
        "policy {}, want SCHED_BATCH",
        r["sched"]["policy"]
    );
    ensure!(
        r["sched"]["nice"] == 5,
        "nice {}, want 5",
        r["sched"]["nice"]
    );
    Ok(())
}
