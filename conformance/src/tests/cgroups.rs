//! config-linux.md#control-groups: cgroupsPath and resources, read back from the host's view
//! of the container's cgroup (v1 controllers, or the unified hierarchy on a pure v2 host).

use crate::suite::{Container, Ctx, Test, TestResult};
use anyhow::{ensure, Context};
use serde_json::{json, Value};
use std::os::unix::fs::MetadataExt;

pub fn tests() -> Vec<Test> {
    vec![
        Test {
            name: "cgroups.path",
            clause: "config-linux.md#cgroups-path: cgroupsPath (string, OPTIONAL) path to the cgroups; absolute: relative to the cgroups mount point",
            run: path,
        },
        Test {
            name: "cgroups.memory_limit",
            clause: "config-linux.md#memory: limit (int64, OPTIONAL) sets limit of memory usage in bytes",
            run: memory_limit,
        },
        Test {
            name: "cgroups.memory_reservation",
            clause: "config-linux.md#memory: reservation (int64, OPTIONAL) sets soft limit of memory usage in bytes",
            run: memory_reservation,
        },
        Test {
            name: "cgroups.memory_swap",
            clause: "config-linux.md#memory: swap (int64, OPTIONAL) sets limit of memory+Swap usage",
            run: memory_swap,
        },
        Test {
            name: "cgroups.memory_swappiness",
            clause: "config-linux.md#memory: swappiness (uint64, OPTIONAL) sets swappiness parameter of vmscan (v1 only)",
            run: memory_swappiness,
        },
        Test {
            name: "cgroups.memory_disable_oom_killer",
            clause: "config-linux.md#memory: disableOOMKiller (bool, OPTIONAL) disables the OOM killer for out of memory conditions (v1 only)",
            run: disable_oom,
        },
        Test {
            name: "cgroups.hugepage_limits",
            clause: "config-linux.md#huge-page-limits: hugepageLimits (array of objects, OPTIONAL) limits HugeTLB usage",
            run: hugepages,
        },
        Test {
            name: "cgroups.cpu_shares",
            clause: "config-linux.md#cpu: shares (uint64, OPTIONAL) specifies a relative share of CPU time available to the tasks in a cgroup",
            run: cpu_shares,
        },
        Test {
            name: "cgroups.cpu_quota_period",
            clause: "config-linux.md#cpu: quota (int64, OPTIONAL) / period (uint64, OPTIONAL) CFS bandwidth",
            run: cpu_quota,
        },
        Test {
            name: "cgroups.cpuset",
            clause: "config-linux.md#cpu: cpus (string, OPTIONAL) list of CPUs the container will run on; mems (string, OPTIONAL) list of memory nodes",
            run: cpuset,
        },
        Test {
            name: "cgroups.pids_limit",
            clause: "config-linux.md#pids: limit (int64, REQUIRED) specifies the maximum number of tasks in the cgroup",
            run: pids,
        },
        Test {
            name: "cgroups.unified",
            clause: "config-linux.md#unified: unified (object, OPTIONAL) allows cgroup v2 parameters to be set and modified for the container",
            run: unified,
        },
        Test {
            name: "intelrdt.closid",
            clause: "config-linux.md#intelrdt: intelRdt (object, OPTIONAL) represents the Intel Resource Director Technology (closID, l3CacheSchema)",
            run: intel_rdt,
        },
        Test {
            name: "cgroups.blkio_throttle",
            clause: "config-linux.md#block-io: throttleReadBpsDevice (array of objects, OPTIONAL) specify the list of devices which will be IO rate limited",
            run: blkio_throttle,
        },
    ]
}

/// Creates a container with `resources` under a cgroupsPath of its own.
fn create_with<'a>(ctx: &'a Ctx, resources: Value) -> anyhow::Result<(Container<'a>, String)> {
    let mut b = ctx.bundle()?;
    let cg = format!("/conformance/{}", b.id);
    b.linux()["cgroupsPath"] = json!(cg);
    if let (Some(dst), Some(src)) = (
        b.config["linux"]["resources"].as_object_mut(),
        resources.as_object(),
    ) {
        for (k, v) in src {
            dst.insert(k.clone(), v.clone());
        }
    }
    let c = ctx.create(&b)?;
    Ok((c, cg))
}

/// Reads a cgroup file of the container: `v1` = (controller, file) on hybrid/v1 hosts,
/// `v2` = file in the unified hierarchy on pure v2 hosts.
fn cg_read(ctx: &Ctx, c: &mut Container, v1: (&str, &str), v2: &str) -> anyhow::Result<String> {
    let pid = c.pid()?;
    let path = if ctx.host.pure_v2 {
        let rel = crate::host::cgroup_path(pid, "").or_else(|_| unified_path(pid))?;
        std::path::Path::new("/sys/fs/cgroup")
            .join(rel.trim_start_matches('/'))
            .join(v2)
    } else {
        ctx.host.v1_dir(pid, v1.0)?.join(v1.1)
    };
    crate::suite::read_host(&path)
}

fn unified_path(pid: i32) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup"))?;
    text.lines()
        .find_map(|l| l.strip_prefix("0::"))
        .map(String::from)
        .context("no unified cgroup line")
}

fn need(ctx: &Ctx, controller: &str) -> TestResult {
    if !ctx.host.pure_v2 && !ctx.host.v1.contains_key(controller) {
        crate::skip!(
            "host has neither a pure cgroup v2 hierarchy nor a v1 {controller} controller"
        );
    }
    Ok(())
}

fn path(ctx: &Ctx) -> TestResult {
    let (mut c, cg) = create_with(ctx, json!({}))?;
    let pid = c.pid()?;
    if ctx.host.pure_v2 {
        let got = unified_path(pid)?;
        ensure!(got == cg, "process is in {got}, want {cg}");
    } else {
        for ctrl in ["memory", "pids", "cpu"] {
            if ctx.host.v1.contains_key(ctrl) {
                let got = crate::host::cgroup_path(pid, ctrl)?;
                ensure!(got == cg, "{ctrl}: process is in {got}, want {cg}");
            }
        }
    }
    Ok(())
}

fn memory_limit(ctx: &Ctx) -> TestResult {
    need(ctx, "memory")?;
    let (mut c, _) = create_with(ctx, json!({"memory": {"limit": 67108864}}))?;
    let v = cg_read(
        ctx,
        &mut c,
        ("memory", "memory.limit_in_bytes"),
        "memory.max",
    )?;
    ensure!(v == "67108864", "memory limit {v}");
    Ok(())
}

fn memory_reservation(ctx: &Ctx) -> TestResult {
    need(ctx, "memory")?;
    let (mut c, _) = create_with(
        ctx,
        json!({"memory": {"limit": 67108864, "reservation": 33554432}}),
    )?;
    let v = cg_read(
        ctx,
        &mut c,
        ("memory", "memory.soft_limit_in_bytes"),
        "memory.low",
    )?;
    ensure!(v == "33554432", "memory reservation {v}");
    Ok(())
}

fn memory_swap(ctx: &Ctx) -> TestResult {
    need(ctx, "memory")?;
    let memsw = ctx
        .host
        .v1
        .get("memory")
        .map(|m| m.join("memory.memsw.limit_in_bytes").exists());
    if !ctx.host.pure_v2 && memsw != Some(true) {
        crate::skip!("swap accounting (memory.memsw.*) is not enabled on this host");
    }
    let (mut c, _) = create_with(
        ctx,
        json!({"memory": {"limit": 67108864, "swap": 134217728}}),
    )?;
    let v = cg_read(
        ctx,
        &mut c,
        ("memory", "memory.memsw.limit_in_bytes"),
        "memory.swap.max",
    )?;
    // v1 stores memory+swap; v2 stores swap alone (the runtime converts).
    let want = if ctx.host.pure_v2 {
        "67108864"
    } else {
        "134217728"
    };
    ensure!(v == want, "memory+swap limit {v}, want {want}");
    Ok(())
}

fn v1_only(ctx: &Ctx, controller: &str, file: &str) -> TestResult {
    if ctx.host.pure_v2 {
        crate::skip!("{file} is a cgroup v1 knob; this host is pure v2");
    }
    need(ctx, controller)?;
    let present = ctx.host.v1.get(controller).map(|m| m.join(file).exists());
    if present != Some(true) {
        crate::skip!("this kernel's v1 {controller} controller has no {file}");
    }
    Ok(())
}

fn memory_swappiness(ctx: &Ctx) -> TestResult {
    v1_only(ctx, "memory", "memory.swappiness")?;
    let (mut c, _) = create_with(ctx, json!({"memory": {"swappiness": 17}}))?;
    let v = cg_read(ctx, &mut c, ("memory", "memory.swappiness"), "")?;
    ensure!(v == "17", "memory.swappiness {v}");
    Ok(())
}

fn disable_oom(ctx: &Ctx) -> TestResult {
    v1_only(ctx, "memory", "memory.oom_control")?;
    let (mut c, _) = create_with(
        ctx,
        json!({"memory": {"limit": 67108864, "disableOOMKiller": true}}),
    )?;
    let v = cg_read(ctx, &mut c, ("memory", "memory.oom_control"), "")?;
    ensure!(
        v.lines().any(|l| l == "oom_kill_disable 1"),
        "memory.oom_control {v:?}"
    );
    Ok(())
}

fn hugepages(ctx: &Ctx) -> TestResult {
    let v2_has = ctx.host.pure_v2
        && std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
        && std::fs::read_to_string("/sys/fs/cgroup/cgroup.controllers")
            .unwrap_or_default()
            .contains("hugetlb");
    if !ctx.host.v1.contains_key("hugetlb") && !v2_has {
        crate::skip!("no hugetlb controller where the runtime can use it (on this hybrid host it sits in the v2 hierarchy next to v1 controllers)");
    }
    let (mut c, _) = create_with(
        ctx,
        json!({"hugepageLimits": [{"pageSize": "2MB", "limit": 4194304}]}),
    )?;
    let v = cg_read(
        ctx,
        &mut c,
        ("hugetlb", "hugetlb.2MB.limit_in_bytes"),
        "hugetlb.2MB.max",
    )?;
    ensure!(v == "4194304", "hugetlb 2MB limit {v}");
    Ok(())
}

fn cpu_shares(ctx: &Ctx) -> TestResult {
    need(ctx, "cpu")?;
    let (mut c, _) = create_with(ctx, json!({"cpu": {"shares": 512}}))?;
    let v = cg_read(ctx, &mut c, ("cpu", "cpu.shares"), "cpu.weight")?;
    // v2: weight = 1 + ((shares - 2) * 9999) / 262142
    let want = if ctx.host.pure_v2 { "20" } else { "512" };
    ensure!(v == want, "cpu shares {v}, want {want}");
    Ok(())
}

fn cpu_quota(ctx: &Ctx) -> TestResult {
    need(ctx, "cpu")?;
    let (mut c, _) = create_with(ctx, json!({"cpu": {"quota": 50000, "period": 200000}}))?;
    if ctx.host.pure_v2 {
        let v = cg_read(ctx, &mut c, ("cpu", ""), "cpu.max")?;
        ensure!(v == "50000 200000", "cpu.max {v}");
    } else {
        let q = cg_read(ctx, &mut c, ("cpu", "cpu.cfs_quota_us"), "")?;
        let p = cg_read(ctx, &mut c, ("cpu", "cpu.cfs_period_us"), "")?;
        ensure!(q == "50000" && p == "200000", "quota {q} period {p}");
    }
    Ok(())
}

fn cpuset(ctx: &Ctx) -> TestResult {
    need(ctx, "cpuset")?;
    let (mut c, _) = create_with(ctx, json!({"cpu": {"cpus": "0", "mems": "0"}}))?;
    let cpus = cg_read(ctx, &mut c, ("cpuset", "cpuset.cpus"), "cpuset.cpus")?;
    let mems = cg_read(ctx, &mut c, ("cpuset", "cpuset.mems"), "cpuset.mems")?;
    ensure!(cpus == "0" && mems == "0", "cpus {cpus:?} mems {mems:?}");
    Ok(())
}

fn pids(ctx: &Ctx) -> TestResult {
    need(ctx, "pids")?;
    let (mut c, _) = create_with(ctx, json!({"pids": {"limit": 42}}))?;
    let v = cg_read(ctx, &mut c, ("pids", "pids.max"), "pids.max")?;
    ensure!(v == "42", "pids.max {v}");
    Ok(())
}

fn unified(ctx: &Ctx) -> TestResult {
    if !ctx.host.pure_v2 {
        crate::skip!(
            "linux.resources.unified needs a pure cgroup v2 hierarchy; this host is v1/hybrid"
        );
    }
    let (mut c, _) = create_with(ctx, json!({"unified": {"pids.max": "33"}}))?;
    let v = cg_read(ctx, &mut c, ("pids", "pids.max"), "pids.max")?;
    ensure!(v == "33", "pids.max {v}, want 33 from unified");
    Ok(())
}

fn intel_rdt(ctx: &Ctx) -> TestResult {
    if !std::path::Path::new("/sys/fs/resctrl/schemata").exists() {
        crate::skip!("resctrl (Intel RDT) is not mounted at /sys/fs/resctrl on this host");
    }
    let mut b = ctx.bundle()?;
    let clos = format!("conf-{}", b.id);
    b.linux()["intelRdt"] = json!({"closID": clos});
    let mut c = ctx.create(&b)?;
    let pid = c.pid()?.to_string();
    let tasks = crate::suite::read_host(
        &std::path::Path::new("/sys/fs/resctrl")
            .join(&clos)
            .join("tasks"),
    )?;
    ensure!(
        tasks.lines().any(|t| t == pid),
        "pid {pid} not in resctrl group {clos}"
    );
    Ok(())
}

fn blkio_throttle(ctx: &Ctx) -> TestResult {
    need(ctx, "blkio")?;
    let dev = std::fs::metadata("/")?.dev();
    let (maj, min) = (libc::major(dev), libc::minor(dev));
    if !std::path::Path::new(&format!("/sys/dev/block/{maj}:{min}")).exists() || maj == 0 {
        crate::skip!("the root filesystem is not on a block device");
    }
    let (mut c, _) = create_with(
        ctx,
        json!({"blockIO": {"throttleReadBpsDevice": [{"major": maj, "minor": min, "rate": 1048576}]}}),
    )?;
    let v = cg_read(
        ctx,
        &mut c,
        ("blkio", "blkio.throttle.read_bps_device"),
        "io.max",
    )?;
    let want = if ctx.host.pure_v2 {
        format!("{maj}:{min} rbps=1048576")
    } else {
        format!("{maj}:{min} 1048576")
    };
    ensure!(
        v.lines().any(|l| l.starts_with(&want)),
        "throttle {v:?}, want {want}"
    );
    Ok(())
}
