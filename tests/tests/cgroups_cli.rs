//! cgroups through the mantle CLI on this host's real (hybrid) layout: limits enforced with a
//! precise exit reason, live update, events, and no cgroup left behind — not even after the
//! runtime is killed in the middle of `create`.

use mantle_tests::{unique, Bundle, Runtime};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The container's directory in a v1 controller hierarchy.
fn v1_dir(ctrl: &str, cgpath: &str) -> PathBuf {
    Path::new("/sys/fs/cgroup")
        .join(ctrl)
        .join(cgpath.trim_start_matches('/'))
}

fn with_cgroup(b: &mut Bundle, id: &str) -> String {
    let path = format!("/mantle-it/{id}");
    b.set("/linux/cgroupsPath", json!(path));
    path
}

fn run_keep(rt: &Runtime, b: &Bundle, id: &str) -> (i32, serde_json::Value) {
    b.write();
    let out = rt.run(&["run", "--keep", "--bundle", b.path_str(), id]);
    let state = rt.state(id);
    rt.run(&["delete", "--force", id]);
    (out.code, state)
}

#[test]
fn memory_limit_kills_with_reason_oom() {
    let rt = Runtime::mantle();
    let id = unique("oom");
    let mut b = Bundle::sh("x=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa; while :; do x=$x$x; done");
    let cg = with_cgroup(&mut b, &id);
    b.set(
        "/linux/resources/memory",
        json!({"limit": 16 << 20, "swap": 16 << 20}),
    );
    let (code, state) = run_keep(&rt, &b, &id);
    assert_eq!(code, 137, "killed by SIGKILL");
    assert_eq!(
        state["annotations"]["dev.mantle.exit-reason"], "oom-killed",
        "{state}"
    );
    assert!(!v1_dir("memory", &cg).exists(), "memory cgroup left behind");
}

#[test]
fn pids_limit_contains_a_fork_bomb_with_reason() {
    let rt = Runtime::mantle();
    let id = unique("pids");
    // 64 background forks against a limit of 10: the kernel refuses the extra forks (counted
    // in pids.events), and the job fails. The reason must name the limit, not just "exit 1".
    let mut b = Bundle::sh("for i in $(seq 64); do sleep 3 & done 2>/dev/null; wait; exit 1");
    let cg = with_cgroup(&mut b, &id);
    b.set("/linux/resources/pids", json!({"limit": 10}));
    let (code, state) = run_keep(&rt, &b, &id);
    assert_ne!(code, 0);
    assert_eq!(
        state["annotations"]["dev.mantle.exit-reason"], "pids-limit",
        "{state}"
    );
    assert!(!v1_dir("pids", &cg).exists());
}

/// CPU time the container used over a fixed wall-clock window, from `events --stats`.
fn cpu_ns_over(rt: &Runtime, id: &str, window: Duration) -> f64 {
    let usage = |rt: &Runtime| -> f64 {
        let out = rt.run(&["events", "--stats", id]).success();
        let v: serde_json::Value = serde_json::from_str(out.stdout.trim()).unwrap();
        v["data"]["cpu"]["usage"]["total"].as_f64().unwrap()
    };
    let a = usage(rt);
    let t = Instant::now();
    std::thread::sleep(window);
    (usage(rt) - a) / t.elapsed().as_nanos() as f64
}

#[test]
fn cpu_quota_throttles_and_update_changes_it_live() {
    let rt = Runtime::mantle();
    let id = unique("cpu");
    let mut b = Bundle::sh("while :; do :; done");
    let cg = with_cgroup(&mut b, &id);
    b.set(
        "/linux/resources/cpu",
        json!({"quota": 10000, "period": 100000}),
    );
    let c = rt.create(&b, &id, &[]);
    c.start().success();
    // A ratio, not a timed assert: 10% quota vs 50% after update, measured side by side.
    let throttled = cpu_ns_over(&rt, &id, Duration::from_millis(1500));
    rt.run(&["update", "--cpu-quota", "50000", &id]).success();
    let quota = std::fs::read_to_string(v1_dir("cpu", &cg).join("cpu.cfs_quota_us")).unwrap();
    assert_eq!(quota.trim(), "50000", "update reached the live cgroup");
    let relaxed = cpu_ns_over(&rt, &id, Duration::from_millis(1500));
    eprintln!("cpu share: {throttled:.3} at 10% quota, {relaxed:.3} at 50%");
    assert!(
        throttled < 0.2,
        "10% quota not enforced: {throttled:.3} of a CPU"
    );
    assert!(
        relaxed > throttled * 2.0,
        "raising the quota did not help: {throttled:.3} -> {relaxed:.3}"
    );
    rt.run(&["update", "--memory", "64m", "--pids-limit", "33", &id])
        .success();
    let mem = std::fs::read_to_string(v1_dir("memory", &cg).join("memory.limit_in_bytes")).unwrap();
    assert_eq!(mem.trim(), (64u64 << 20).to_string());
    let pids = std::fs::read_to_string(v1_dir("pids", &cg).join("pids.max")).unwrap();
    assert_eq!(pids.trim(), "33");
}

#[test]
fn pause_freezes_a_busy_loop() {
    let rt = Runtime::mantle();
    let id = unique("pause");
    let b = Bundle::sh("while :; do :; done");
    let c = rt.create(&b, &id, &[]);
    c.start().success();
    rt.run(&["pause", &id]).success();
    assert_eq!(c.status(), "paused");
    let frozen = cpu_ns_over(&rt, &id, Duration::from_millis(700));
    assert!(
        frozen < 0.02,
        "a paused container used {frozen:.3} of a CPU"
    );
    rt.run(&["resume", &id]).success();
    assert_eq!(c.status(), "running");
    let thawed = cpu_ns_over(&rt, &id, Duration::from_millis(700));
    assert!(
        thawed > 0.2,
        "a resumed busy loop used only {thawed:.3} of a CPU"
    );
}

#[test]
fn events_reports_oom() {
    let rt = Runtime::mantle();
    let id = unique("evoom");
    // Allocate past the limit a few times in child shells, so the container itself survives.
    let mut b = Bundle::sh(
        "sleep 1; for i in 1 2 3; do sh -c 'x=aaaaaaaaaaaaaaaa; while :; do x=$x$x; done'; done; sleep 2",
    );
    with_cgroup(&mut b, &id);
    b.set(
        "/linux/resources/memory",
        json!({"limit": 16 << 20, "swap": 16 << 20}),
    );
    let c = rt.create(&b, &id, &[]);
    c.start().success();
    let mut cmd = rt.command(&["events", "--interval", "1s", &id]);
    cmd.stdout(std::process::Stdio::piped());
    let out = mantle_tests::run_with_timeout(cmd, Duration::from_secs(40));
    let kinds: Vec<String> = out
        .stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .map(|v| v["type"].as_str().unwrap_or_default().to_string())
        .collect();
    assert!(
        kinds.iter().any(|k| k == "oom"),
        "no oom event in {kinds:?}"
    );
    assert!(
        kinds.iter().any(|k| k == "stats"),
        "no stats event in {kinds:?}"
    );
}

#[test]
fn ps_lists_the_container_processes() {
    let rt = Runtime::mantle();
    let id = unique("ps");
    let b = Bundle::sh("sleep 30 & sleep 30 & wait");
    let c = rt.create(&b, &id, &[]);
    c.start().success();
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut pids: Vec<i32> = vec![];
    while Instant::now() < deadline {
        pids = serde_json::from_str(&rt.run(&["ps", "--format", "json", &id]).success().stdout)
            .unwrap();
        if pids.len() >= 3 {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(pids.len(), 3, "sh and two sleeps: {pids:?}");
    assert!(pids.contains(&c.pid()));
}

#[test]
fn many_create_delete_cycles_leave_no_cgroups() {
    let rt = Runtime::mantle();
    let mut b = Bundle::new(&["true"]);
    let base = format!("/mantle-it/cycles-{}", std::process::id());
    for i in 0..200 {
        let id = format!("cyc-{}-{i}", std::process::id());
        b.set("/linux/cgroupsPath", json!(format!("{base}/{id}")));
        b.write();
        rt.run(&["create", "--bundle", b.path_str(), &id]).success();
        rt.run(&["delete", "--force", &id]).success();
    }
    for ctrl in [
        "memory", "pids", "cpu", "freezer", "devices", "blkio", "cpuset",
    ] {
        let dir = v1_dir(ctrl, &base);
        let left = std::fs::read_dir(&dir)
            .map_or(0, |d| d.flatten().filter(|e| e.path().is_dir()).count());
        assert_eq!(left, 0, "{ctrl}: cgroups left under {}", dir.display());
        let _ = std::fs::remove_dir(&dir);
    }
}

#[test]
fn delete_force_cleans_up_after_the_runtime_is_killed_mid_create() {
    let rt = Runtime::mantle();
    let id = unique("killed");
    let mut b = Bundle::new(&["true"]);
    let cg = with_cgroup(&mut b, &id);
    let marker = rt.root.path().join("hook-ran");
    // The createRuntime hook runs while create holds a half-made container: kill -9 it there.
    b.set(
        "/hooks/createRuntime",
        json!([{"path": "/bin/sh", "args": ["sh", "-c", format!("touch {}; sleep 30", marker.display())]}]),
    );
    b.write();
    let mut child = rt
        .command(&["create", "--bundle", b.path_str(), &id])
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !marker.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(marker.exists(), "hook never ran");
    assert!(
        v1_dir("memory", &cg).exists(),
        "the cgroup exists while create runs"
    );
    child.kill().unwrap();
    child.wait().unwrap();
    rt.run(&["delete", "--force", &id]).success();
    assert!(
        !rt.root.path().join(&id).exists(),
        "state directory left behind"
    );
    for ctrl in ["memory", "pids", "cpu", "freezer"] {
        assert!(!v1_dir(ctrl, &cg).exists(), "{ctrl} cgroup left behind");
    }
}
