//! Real cgroups on this host's layout (hybrid here: v1 controllers + /sys/fs/cgroup/unified).
//! Needs root; every test creates /mantle-test-<pid>-<tag> and removes it, even on failure.

mod common;

use cgroups::{ExitReason, FreezerState, LayoutKind, OomEvent, Termination};
use common::*;
use oci_spec::runtime::LinuxResources;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::time::Duration;

fn resources(json: &str) -> LinuxResources {
    serde_json::from_str(json).expect("resources json")
}

fn manager(tag: &str) -> Guard {
    Guard(cgroups::create(Some(&name(tag)), "/unused", false).expect("create"))
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .trim()
        .to_string()
}

#[test]
fn limits_are_written_and_read_back() {
    if !can_run() {
        return;
    }
    let mut m = manager("limits");
    m.apply(0).unwrap();
    // a real block device for the throttle (virtio disk or whatever comes first)
    let dev = std::fs::read_dir("/sys/block")
        .unwrap()
        .flatten()
        .filter(|e| !e.file_name().to_string_lossy().starts_with("loop"))
        .find_map(|e| std::fs::read_to_string(e.path().join("dev")).ok())
        .unwrap_or_else(|| "7:0".into());
    let (maj, min) = dev.trim().split_once(':').unwrap();
    m.set(&resources(&format!(
        r#"{{"memory":{{"limit":33554432,"reservation":16777216,"swap":67108864}},
            "cpu":{{"shares":512,"quota":50000,"period":100000,"cpus":"0","mems":"0"}},
            "pids":{{"limit":17}},
            "blockIO":{{"throttleReadBpsDevice":[{{"major":{maj},"minor":{min},"rate":1048576}}]}}}}"#
    )))
    .unwrap();
    let p = m.paths();
    let dir = |c: &str| {
        p.v1.iter()
            .find(|(k, _)| k.split(',').any(|x| x == c))
            .map(|(_, d)| d.clone())
            .unwrap()
    };
    assert_eq!(
        read(&dir("memory").join("memory.limit_in_bytes")),
        "33554432"
    );
    assert_eq!(
        read(&dir("memory").join("memory.soft_limit_in_bytes")),
        "16777216"
    );
    assert_eq!(read(&dir("cpu").join("cpu.cfs_quota_us")), "50000");
    assert_eq!(read(&dir("cpu").join("cpu.cfs_period_us")), "100000");
    assert_eq!(read(&dir("cpu").join("cpu.shares")), "512");
    assert_eq!(read(&dir("cpuset").join("cpuset.cpus")), "0");
    assert_eq!(read(&dir("pids").join("pids.max")), "17");
    if dir("memory").join("memory.memsw.limit_in_bytes").exists() {
        assert_eq!(
            read(&dir("memory").join("memory.memsw.limit_in_bytes")),
            "67108864"
        );
    }
    assert_eq!(
        read(&dir("blkio").join("blkio.throttle.read_bps_device")),
        format!("{}:{} 1048576", maj, min)
    );

    // update on the live cgroup; stats reflect the limits
    m.set(&resources(
        r#"{"memory":{"limit":67108864},"pids":{"limit":0}}"#,
    ))
    .unwrap();
    assert_eq!(
        read(&dir("memory").join("memory.limit_in_bytes")),
        "67108864"
    );
    assert_eq!(read(&dir("pids").join("pids.max")), "max");
    let s = m.stats().unwrap();
    assert_eq!(s.memory.usage.limit, 67108864);
    assert_eq!(s.pids.limit, 0);
}

#[test]
fn bad_values_are_clear_errors() {
    if !can_run() {
        return;
    }
    let mut m = manager("bad");
    m.apply(0).unwrap();
    let e = m
        .set(&resources(r#"{"cpu":{"cpus":"999999"}}"#))
        .unwrap_err()
        .to_string();
    assert!(e.contains("cpuset.cpus"), "{e}");
    let e = m
        .set(&resources(r#"{"unified":{"memory.max":"1"}}"#))
        .unwrap_err()
        .to_string();
    assert!(e.contains("memory.max"), "{e}");
    let e = m
        .set(&resources(r#"{"unified":{"../x":"1"}}"#))
        .unwrap_err()
        .to_string();
    assert!(e.contains("not a cgroup resource file"), "{e}");
}

#[test]
fn freeze_and_thaw_a_busy_child() {
    if !can_run() {
        return;
    }
    let mut m = manager("freeze");
    let mut child = spawn("while :; do :; done");
    m.apply(child.id() as i32).unwrap();
    go(&mut child);
    std::thread::sleep(Duration::from_millis(100));
    m.freeze().unwrap();
    assert_eq!(m.state().unwrap(), FreezerState::Frozen);
    let t0 = cpu_ticks(child.id());
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(cpu_ticks(child.id()), t0, "a frozen task must not run");
    m.thaw().unwrap();
    assert_eq!(m.state().unwrap(), FreezerState::Thawed);
    std::thread::sleep(Duration::from_millis(300));
    assert!(cpu_ticks(child.id()) > t0, "a thawed task runs again");
    m.destroy(true).unwrap();
    let st = child.wait().unwrap();
    assert_eq!(st.signal(), Some(libc::SIGKILL));
}

#[test]
fn stats_numbers_move() {
    if !can_run() {
        return;
    }
    let mut m = manager("stats");
    // dd touches a 4 MiB buffer inside the cgroup (memory is charged where it is touched).
    let mut child = spawn(&format!(
        "{BUSYBOX} dd if=/dev/zero of=/dev/null bs=4M count=1 2>/dev/null; while :; do :; done"
    ));
    m.apply(child.id() as i32).unwrap();
    let before = m.stats().unwrap();
    go(&mut child);
    std::thread::sleep(Duration::from_millis(400));
    let after = m.stats().unwrap();
    assert!(
        after.cpu.usage.total > before.cpu.usage.total + 50_000_000,
        "{after:?}"
    );
    assert!(after.cpu.usage.user + after.cpu.usage.kernel > 0);
    assert!(
        after.memory.usage.max >= 4 << 20,
        "{:?}",
        after.memory.usage
    );
    assert!(after.memory.raw.contains_key("total_rss"));
    assert_eq!(after.pids.current, 1);
    assert_eq!(m.procs().unwrap(), vec![child.id() as i32]);
    let ev = cgroups::Event::stats("t", after);
    let j = serde_json::to_value(&ev).unwrap();
    assert_eq!(j["type"], "stats");
    assert!(j["data"]["cpu"]["usage"]["total"].as_u64().unwrap() > 0);
    drop(m);
    child.wait().unwrap();
}

#[test]
fn oom_kill_is_detected() {
    if !can_run() {
        return;
    }
    let mut m = manager("oom");
    let mut child = spawn(&format!(
        "exec {BUSYBOX} dd if=/dev/zero of=/dev/null bs=64M count=1"
    ));
    m.apply(child.id() as i32).unwrap();
    m.set(&resources(
        r#"{"memory":{"limit":16777216,"swap":16777216}}"#,
    ))
    .unwrap();
    let mut watcher = m.oom_watcher().unwrap();
    go(&mut child);
    let st = child.wait().unwrap();
    assert_eq!(
        watcher.wait(Some(Duration::from_secs(5))).unwrap(),
        OomEvent::Oom
    );
    let t = Termination::from_wait_status(st.into_raw());
    assert_eq!(t, Termination::Signaled(libc::SIGKILL));
    let reason = m.exit_reason(t);
    assert_eq!(reason, ExitReason::OomKilled);
    assert_eq!(reason.to_string(), "oom-killed");
    assert!(m.counters().unwrap().oom_kill >= 1);
    // removing the cgroup ends the event stream
    m.destroy(true).unwrap();
    assert_eq!(
        watcher.wait(Some(Duration::from_secs(5))).unwrap(),
        OomEvent::Gone
    );
}

#[test]
fn pids_limit_is_detected() {
    if !can_run() {
        return;
    }
    let mut m = manager("pids");
    let mut child = spawn("for i in 1 2 3 4 5 6 7 8; do sleep 5 & done; wait");
    m.apply(child.id() as i32).unwrap();
    m.set(&resources(r#"{"pids":{"limit":3}}"#)).unwrap();
    go(&mut child);
    let st = child.wait().unwrap();
    let t = Termination::from_wait_status(st.into_raw());
    assert_ne!(t, Termination::Exited(0), "the fork bomb must fail");
    assert!(m.counters().unwrap().pids_max >= 1);
    assert_eq!(m.exit_reason(t), ExitReason::PidsLimit);
    assert!(m.procs().unwrap().len() <= 3);
}

#[test]
fn plain_exit_and_signal_reasons() {
    if !can_run() {
        return;
    }
    let mut m = manager("plain");
    let mut child = spawn("exit 3");
    m.apply(child.id() as i32).unwrap();
    go(&mut child);
    let t = Termination::from_wait_status(child.wait().unwrap().into_raw());
    assert_eq!(m.exit_reason(t).to_string(), "exited:3");
    let mut child = spawn("sleep 100");
    m.apply(child.id() as i32).unwrap();
    child.kill().unwrap();
    let t = Termination::from_wait_status(child.wait().unwrap().into_raw());
    assert_eq!(m.exit_reason(t).to_string(), "signal:9");
}

#[test]
fn devices_are_enforced() {
    if !can_run() {
        return;
    }
    let mut m = manager("dev");
    let mut child = spawn("echo x > /dev/null && echo wrote; cat /dev/null && echo read");
    m.apply(child.id() as i32).unwrap();
    m.set(&resources(
        r#"{"devices":[{"allow":true,"access":"rwm"},
                       {"allow":false,"type":"c","major":1,"minor":3,"access":"w"}]}"#,
    ))
    .unwrap();
    go(&mut child);
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        !text.contains("wrote"),
        "write to /dev/null was allowed: {text}"
    );
    assert!(
        text.contains("read"),
        "read of /dev/null was refused: {text}"
    );
}

#[test]
fn destroy_kills_and_leaves_nothing() {
    if !can_run() {
        return;
    }
    let cg = name("destroy");
    let mut m = cgroups::create(Some(&cg), "", false).unwrap();
    let mut child = spawn("sleep 100");
    m.apply(child.id() as i32).unwrap();
    // a nested sub-cgroup the workload made must go too
    let mem = m.paths().v1["memory"].clone();
    std::fs::create_dir(mem.join("nested")).unwrap();
    assert!(!leftovers(&cg).is_empty());
    let t = std::time::Instant::now();
    let e = m.destroy(false).unwrap_err().to_string();
    assert!(e.contains("still has processes"), "{e}");
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "busy is reported promptly"
    );
    assert!(!leftovers(&cg).is_empty(), "nothing removed while busy");
    m.destroy(true).unwrap();
    assert_eq!(child.wait().unwrap().signal(), Some(libc::SIGKILL));
    assert!(leftovers(&cg).is_empty(), "{:?}", leftovers(&cg));
    m.destroy(true).unwrap(); // idempotent
}

#[test]
fn destroy_path_without_state() {
    if !can_run() {
        return;
    }
    let cg = name("nostate");
    let mut m = cgroups::create(Some(&cg), "", false).unwrap();
    let mut child = spawn("sleep 100");
    m.apply(child.id() as i32).unwrap();
    drop(m); // the runtime "died": no in-memory state left
    cgroups::destroy_path(&cg, "", false, true).unwrap();
    assert_eq!(child.wait().unwrap().signal(), Some(libc::SIGKILL));
    assert!(leftovers(&cg).is_empty(), "{:?}", leftovers(&cg));
}

#[test]
fn reopen_from_saved_paths() {
    if !can_run() {
        return;
    }
    let mut m = manager("reopen");
    let mut child = spawn("sleep 100");
    m.apply(child.id() as i32).unwrap();
    let saved = serde_json::to_string(&m.paths()).unwrap();
    let back: cgroups::CgroupPaths = serde_json::from_str(&saved).unwrap();
    let mut again = cgroups::open(&back).unwrap();
    assert_eq!(again.procs().unwrap(), vec![child.id() as i32]);
    // `exec`: a second process joins the existing cgroups of every hierarchy
    let mut second = spawn("sleep 100");
    again.join(second.id() as i32).unwrap();
    let mut want = vec![child.id() as i32, second.id() as i32];
    want.sort_unstable();
    assert_eq!(again.procs().unwrap(), want);
    let cg = std::fs::read_to_string(format!("/proc/{}/cgroup", second.id())).unwrap();
    assert!(cg.contains(&format!(":pids:{}", name("reopen"))), "{cg}");
    again.destroy(true).unwrap();
    child.wait().unwrap();
    second.wait().unwrap();
}

#[test]
fn hybrid_joins_unified_too() {
    if !can_run() {
        return;
    }
    let mut m = manager("unified");
    if m.layout() != LayoutKind::Hybrid {
        return;
    }
    let mut child = spawn("sleep 100");
    m.apply(child.id() as i32).unwrap();
    let cg = std::fs::read_to_string(format!("/proc/{}/cgroup", child.id())).unwrap();
    let want = format!("0::{}", name("unified"));
    assert!(cg.lines().any(|l| l == want), "{cg}");
    assert!(
        cg.lines()
            .any(|l| l == format!("4:memory:{}", name("unified"))
                || l.ends_with(&format!(":memory:{}", name("unified")))),
        "{cg}"
    );
    m.destroy(true).unwrap();
    child.wait().unwrap();
}

#[test]
fn relative_path_lands_below_own_cgroup() {
    if !can_run() {
        return;
    }
    let rel = format!("mantle-test-rel-{}", std::process::id());
    let mut m = Guard(cgroups::create(Some(&rel), "", false).unwrap());
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    let own_mem = own
        .lines()
        .find_map(|l| l.split_once(":memory:").map(|(_, p)| p.to_string()))
        .unwrap();
    let dir = m.paths().v1["memory"].clone();
    assert_eq!(
        dir,
        Path::new("/sys/fs/cgroup/memory")
            .join(own_mem.trim_start_matches('/'))
            .join(&rel)
    );
    m.apply(0).unwrap();
    assert!(dir.is_dir());
}

#[test]
fn two_hundred_cycles_leave_nothing() {
    if !can_run() {
        return;
    }
    let cg = name("cycles");
    let r = resources(r#"{"memory":{"limit":33554432},"pids":{"limit":10}}"#);
    for i in 0..200 {
        let mut m = cgroups::create(Some(&cg), "", false).unwrap();
        m.apply(0).unwrap();
        m.set(&r).unwrap();
        m.destroy(false)
            .unwrap_or_else(|e| panic!("cycle {i}: {e}"));
    }
    assert!(leftovers(&cg).is_empty(), "{:?}", leftovers(&cg));
}

#[test]
fn systemd_driver_without_systemd_is_a_clear_error() {
    if Path::new("/run/systemd/system").exists() {
        return;
    }
    let e = cgroups::create(Some("system.slice:mantle:x"), "", true)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("systemd is not running"), "{e}");
}

#[test]
fn root_and_traversal_paths_refused() {
    for bad in ["/", "/a/../../..", ""] {
        assert!(
            cgroups::destroy_path(bad, "", false, true).is_err(),
            "{bad:?} accepted"
        );
    }
}

#[test]
fn hybrid_hugetlb_goes_through_unified() {
    if !can_run() || !cgroups::convert::host_hugepage_sizes().contains(&"2MB".to_string()) {
        return;
    }
    let unified = Path::new("/sys/fs/cgroup/unified");
    if !Path::new("/sys/fs/cgroup/hugetlb").exists()
        && read(&unified.join("cgroup.controllers")).contains("hugetlb")
    {
        let _restore = RestoreSubtree(
            unified.into(),
            read(&unified.join("cgroup.subtree_control")),
        );
        let mut m = manager("huge");
        m.apply(0).unwrap();
        m.set(&resources(
            r#"{"hugepageLimits":[{"pageSize":"2MB","limit":2097152}]}"#,
        ))
        .unwrap();
        let dir = m.paths().unified.unwrap();
        assert_eq!(read(&dir.join("hugetlb.2MB.max")), "2097152");
        assert_eq!(m.stats().unwrap().hugetlb["2MB"].max, 2097152);
        m.destroy(false).unwrap();
    }
}

#[test]
fn devices_without_leading_deny_all_are_an_allow_list() {
    if !can_run() {
        return;
    }
    let mut m = manager("devlist");
    let mut child =
        spawn("head -c 1 /dev/zero >/dev/null && echo zero; echo x > /dev/null && echo null");
    m.apply(child.id() as i32).unwrap();
    // only /dev/null is listed: /dev/zero must be refused although no rule denies it
    m.set(&resources(
        r#"{"devices":[{"allow":true,"type":"c","major":1,"minor":3,"access":"rwm"}]}"#,
    ))
    .unwrap();
    let list = read(&m.paths().v1["devices"].join("devices.list"));
    assert_eq!(list, "c 1:3 rwm");
    go(&mut child);
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("null") && !text.contains("zero"), "{text}");
}
