//! config-linux.md#masked-paths, #readonly-paths and #sysctl.

use super::util::{expect_errno, expect_ok};
use crate::suite::{Ctx, Test, TestResult};
use anyhow::ensure;
use serde_json::json;

pub fn tests() -> Vec<Test> {
    vec![
        Test {
            name: "paths.masked_file",
            clause: "config-linux.md#masked-paths: maskedPaths will mask over the provided paths inside the container so that they cannot be read",
            run: masked_file,
        },
        Test {
            name: "paths.masked_directory",
            clause: "config-linux.md#masked-paths: maskedPaths (directories) cannot be read",
            run: masked_dir,
        },
        Test {
            name: "paths.masked_proc_entry",
            clause: "config-linux.md#masked-paths: maskedPaths (a /proc entry such as /proc/kcore)",
            run: masked_proc,
        },
        Test {
            name: "paths.readonly_dir",
            clause: "config-linux.md#readonly-paths: readonlyPaths will set the provided paths as readonly inside the container",
            run: readonly_dir,
        },
        Test {
            name: "paths.readonly_proc_sys",
            clause: "config-linux.md#readonly-paths: readonlyPaths (/proc/sys)",
            run: readonly_proc_sys,
        },
        Test {
            name: "sysctl.applied",
            clause: "config-linux.md#sysctl: sysctl (object, OPTIONAL) allows kernel parameters to be modified at runtime for the container",
            run: sysctl,
        },
    ]
}

fn masked_file(ctx: &Ctx) -> TestResult {
    let mut b = ctx.bundle()?;
    std::fs::write(b.rootfs().join("etc/secret"), "top secret")?;
    b.linux()["maskedPaths"] = json!(["/etc/secret"]);
    let r = ctx.probe_cmd(&mut b, &["read", "/etc/secret"])?;
    ensure!(
        r[0]["data"] != "top secret",
        "masked file readable: {}",
        r[0]
    );
    Ok(())
}

fn masked_dir(ctx: &Ctx) -> TestResult {
    let mut b = ctx.bundle()?;
    std::fs::create_dir_all(b.rootfs().join("secrets"))?;
    std::fs::write(b.rootfs().join("secrets/key"), "k")?;
    b.linux()["maskedPaths"] = json!(["/secrets"]);
    let r = ctx.probe_cmd(&mut b, &["ls", "/secrets", ";", "read", "/secrets/key"])?;
    let listed = r[0]["entries"]
        .as_array()
        .map(|a| !a.is_empty())
        .unwrap_or(false);
    ensure!(!listed, "masked directory lists {}", r[0]);
    ensure!(r[1]["data"] != "k", "masked file readable: {}", r[1]);
    Ok(())
}

fn masked_proc(ctx: &Ctx) -> TestResult {
    let mut b = ctx.bundle()?;
    b.linux()["maskedPaths"] = json!(["/proc/kcore", "/proc/timer_list"]);
    let r = ctx.probe_cmd(&mut b, &["read", "/proc/timer_list"])?;
    let data = r[0]["data"].as_str().unwrap_or("");
    ensure!(
        data.is_empty(),
        "masked /proc/timer_list returned {} bytes",
        data.len()
    );
    Ok(())
}

fn readonly_dir(ctx: &Ctx) -> TestResult {
    let mut b = ctx.bundle()?;
    std::fs::create_dir_all(b.rootfs().join("rodir"))?;
    b.linux()["readonlyPaths"] = json!(["/rodir"]);
    let r = ctx.probe_cmd(&mut b, &["write", "/rodir/x", ";", "write", "/tmp/x"])?;
    expect_errno(&r[0], libc::EROFS as i64, "write under a readonly path")?;
    expect_ok(&r[1], "write elsewhere")?;
    Ok(())
}

fn readonly_proc_sys(ctx: &Ctx) -> TestResult {
    let mut b = ctx.bundle()?;
    b.linux()["readonlyPaths"] = json!(["/proc/sys"]);
    let r = ctx.probe_cmd(&mut b, &["write", "/proc/sys/kernel/hostname", "x"])?;
    expect_errno(&r[0], libc::EROFS as i64, "write to /proc/sys")?;
    Ok(())
}

fn sysctl(ctx: &Ctx) -> TestResult {
    let mut b = ctx.bundle()?;
    b.linux()["sysctl"] = json!({"net.ipv4.ip_forward": "1", "kernel.shm_rmid_forced": "1", "net.ipv4.ping_group_range": "0 1000"});
    let r = ctx.probe_cmd(
        &mut b,
        &[
            "read",
            "/proc/sys/net/ipv4/ip_forward",
            ";",
            "read",
            "/proc/sys/kernel/shm_rmid_forced",
            ";",
            "read",
            "/proc/sys/net/ipv4/ping_group_range",
        ],
    )?;
    let v = |i: usize| {
        r[i]["data"]
            .as_str()
            .unwrap_or("")
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    ensure!(v(0) == "1", "net.ipv4.ip_forward = {:?}", v(0));
    ensure!(v(1) == "1", "kernel.shm_rmid_forced = {:?}", v(1));
    ensure!(v(2) == "0 1000", "net.ipv4.ping_group_range = {:?}", v(2));
    Ok(())
}
