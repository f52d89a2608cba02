//! cgroup v2 paths. On this hybrid host the cgroup2 hierarchy (/sys/fs/cgroup/unified) has
//! only hugetlb, so: value conversion is checked against a fake directory tree; what works
//! for real in cgroup2 (create/destroy, procs, cgroup.freeze, cgroup.kill, device BPF,
//! hugetlb) is checked on the real hierarchy; and a pure-v2 layout is built in a private
//! mount namespace (the test re-runs itself under `unshare -m --propagation private`).

mod common;

use cgroups::v2::V2Dir;
use cgroups::{CgroupPaths, FreezerState, LayoutKind, OomEvent, OomWatcher};
use common::*;
use oci_spec::runtime::LinuxResources;
use std::collections::BTreeMap;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

const UNIFIED: &str = "/sys/fs/cgroup/unified";

/// The real-hierarchy tests both enable hugetlb on the unified root and restore it after;
/// run them one at a time so each restores what it found.
static UNIFIED_ROOT: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn resources(json: &str) -> LinuxResources {
    serde_json::from_str(json).expect("resources json")
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .trim()
        .to_string()
}

/// A temp dir with empty files standing in for a v2 cgroup's knobs.
fn fake_tree(tag: &str, files: &[&str]) -> PathBuf {
    let d = std::env::temp_dir().join(format!("mantle-cg-fake-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    for f in files {
        std::fs::write(d.join(f), "").unwrap();
    }
    d
}

#[test]
fn v2_values_are_converted_like_runc() {
    let d = fake_tree(
        "values",
        &[
            "cpu.weight",
            "cpu.max",
            "cpu.max.burst",
            "cpuset.cpus",
            "cpuset.mems",
            "memory.max",
            "memory.swap.max",
            "memory.low",
            "pids.max",
            "io.weight",
            "io.max",
            "hugetlb.2MB.max",
            "memory.high",
        ],
    );
    let v2 = V2Dir {
        dir: d.clone(),
        mount: d.parent().unwrap().to_path_buf(),
    };
    v2.set(&resources(
        r#"{"cpu":{"shares":1024,"quota":50000,"period":100000,"burst":1000,"cpus":"0-1","mems":"0"},
            "memory":{"limit":104857600,"swap":314572800,"reservation":52428800},
            "pids":{"limit":-1},
            "blockIO":{"weight":500,"throttleReadBpsDevice":[{"major":8,"minor":0,"rate":1048576}]},
            "hugepageLimits":[{"pageSize":"2MB","limit":4194304}],
            "unified":{"memory.high":"90000000"}}"#,
    ))
    .unwrap();
    let f = |n: &str| read(&d.join(n));
    assert_eq!(f("cpu.weight"), "39");
    assert_eq!(f("cpu.max"), "50000 100000");
    assert_eq!(f("cpu.max.burst"), "1000");
    assert_eq!(f("cpuset.cpus"), "0-1");
    assert_eq!(f("memory.max"), "104857600");
    assert_eq!(
        f("memory.swap.max"),
        "209715200",
        "swap is memsw minus memory"
    );
    assert_eq!(f("memory.low"), "52428800");
    assert_eq!(f("pids.max"), "max");
    assert_eq!(f("io.weight"), "default 4950");
    assert_eq!(f("io.max"), "8:0 rbps=1048576");
    assert_eq!(f("hugetlb.2MB.max"), "4194304");
    assert_eq!(f("memory.high"), "90000000");

    let unlimited = fake_tree("unlimited", &["memory.max", "memory.swap.max", "cpu.max"]);
    let v2 = V2Dir {
        dir: unlimited.clone(),
        mount: unlimited.parent().unwrap().to_path_buf(),
    };
    v2.set(&resources(
        r#"{"memory":{"limit":-1},"cpu":{"quota":-1,"period":20000}}"#,
    ))
    .unwrap();
    assert_eq!(read(&unlimited.join("memory.max")), "max");
    assert_eq!(read(&unlimited.join("memory.swap.max")), "max");
    assert_eq!(read(&unlimited.join("cpu.max")), "max 20000");

    for (json, want) in [
        (r#"{"cpu":{"realtimeRuntime":1000}}"#, "realtime"),
        (r#"{"memory":{"limit":100,"swap":50}}"#, ">= memory limit"),
        (
            r#"{"memory":{"disableOOMKiller":true}}"#,
            "disableOOMKiller",
        ),
        (
            r#"{"unified":{"cgroup.procs":"1"}}"#,
            "not a cgroup resource file",
        ),
        (r#"{"unified":{"nosuch.file":"1"}}"#, "nosuch.file"),
        (
            r#"{"hugepageLimits":[{"pageSize":"2M","limit":1}]}"#,
            "pageSize",
        ),
    ] {
        let e = v2.set(&resources(json)).unwrap_err().to_string();
        assert!(e.contains(want), "{json}: {e}");
    }
    std::fs::remove_dir_all(&d).unwrap();
    std::fs::remove_dir_all(&unlimited).unwrap();
}

#[test]
fn v2_oom_watcher_sees_counter_changes() {
    let d = fake_tree("oomwatch", &[]);
    std::fs::write(
        d.join("memory.events"),
        "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\n",
    )
    .unwrap();
    let mut w = OomWatcher::v2(&d).unwrap();
    assert_eq!(
        w.wait(Some(Duration::from_millis(50))).unwrap(),
        OomEvent::Timeout
    );
    let path = d.join("memory.events");
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        std::fs::write(path, "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n").unwrap();
    });
    assert_eq!(w.wait(Some(Duration::from_secs(5))).unwrap(), OomEvent::Oom);
    t.join().unwrap();
    assert_eq!(
        w.wait(Some(Duration::from_millis(50))).unwrap(),
        OomEvent::Timeout
    );
    std::fs::remove_dir_all(&d).unwrap();
    assert_eq!(
        w.wait(Some(Duration::from_millis(50))).unwrap(),
        OomEvent::Gone
    );
}

fn unified_ready() -> bool {
    can_run() && Path::new(UNIFIED).join("cgroup.procs").exists()
}

/// Exercises a V2 manager for real on `mount` (the unified mount, or a pure-v2 mount).
fn exercise_v2_manager(mut m: Guard, mount: &Path) {
    let dir = m.paths().unified.unwrap();
    let mut child =
        spawn("echo x > /dev/null && echo wrote; cat /dev/null && echo read; while :; do :; done");
    m.apply(child.id() as i32).unwrap();
    assert!(dir.is_dir());
    let rel = dir.strip_prefix(mount).unwrap();
    let cg = std::fs::read_to_string(format!("/proc/{}/cgroup", child.id())).unwrap();
    assert!(
        cg.lines().any(|l| l == format!("0::/{}", rel.display())),
        "{cg}"
    );
    assert_eq!(m.procs().unwrap(), vec![child.id() as i32]);

    // device program: deny writes to /dev/null; replacing it keeps exactly one attached
    let rules = r#"{"devices":[{"allow":true,"access":"rwm"},
                   {"allow":false,"type":"c","major":1,"minor":3,"access":"w"}]}"#;
    m.set(&resources(rules)).unwrap();
    m.set(&resources(rules)).unwrap();
    assert_eq!(
        cgroups::bpf::attached_device_programs(&dir).unwrap().len(),
        1
    );

    // hugetlb is the one controller this cgroup2 hierarchy has
    if cgroups::convert::host_hugepage_sizes().contains(&"2MB".to_string()) {
        m.set(&resources(
            r#"{"hugepageLimits":[{"pageSize":"2MB","limit":4194304}]}"#,
        ))
        .unwrap();
        assert_eq!(read(&dir.join("hugetlb.2MB.max")), "4194304");
        assert_eq!(m.stats().unwrap().hugetlb["2MB"].max, 4194304);
    }

    go(&mut child);
    std::thread::sleep(Duration::from_millis(150));
    m.freeze().unwrap();
    assert_eq!(m.state().unwrap(), FreezerState::Frozen);
    let t0 = cpu_ticks(child.id());
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(cpu_ticks(child.id()), t0, "frozen via cgroup.freeze");
    m.thaw().unwrap();
    assert_eq!(m.state().unwrap(), FreezerState::Thawed);

    m.destroy(true).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.signal(), Some(libc::SIGKILL));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        !text.contains("wrote"),
        "BPF let a write to /dev/null through: {text}"
    );
    assert!(
        text.contains("read"),
        "BPF refused a read of /dev/null: {text}"
    );
    assert!(!dir.exists());
}

#[test]
fn v2_manager_on_the_real_unified_hierarchy() {
    if !unified_ready() {
        return;
    }
    let _serial = UNIFIED_ROOT.lock().unwrap_or_else(|p| p.into_inner());
    let _restore = RestoreSubtree(
        UNIFIED.into(),
        std::fs::read_to_string(Path::new(UNIFIED).join("cgroup.subtree_control")).unwrap(),
    );
    let top = Path::new(UNIFIED).join(name("v2").trim_start_matches('/'));
    let paths = CgroupPaths {
        layout: LayoutKind::V2,
        path: name("v2"),
        v1: BTreeMap::new(),
        v1_mounts: BTreeMap::new(),
        unified: Some(top.join("ctr")),
        unified_mount: Some(UNIFIED.into()),
        baseline: Default::default(),
    };
    let m = Guard(cgroups::open(&paths).unwrap());
    exercise_v2_manager(m, Path::new(UNIFIED));
    std::fs::remove_dir(&top).unwrap();
}

/// Re-runs `inner_pure_v2_layout` in a private mount namespace where /sys/fs/cgroup is a
/// cgroup2 mount, i.e. a pure-v2 host.
#[test]
fn pure_v2_layout_in_private_mount_ns() {
    if !unified_ready() {
        return;
    }
    let _serial = UNIFIED_ROOT.lock().unwrap_or_else(|p| p.into_inner());
    let root_before =
        std::fs::read_to_string(Path::new(UNIFIED).join("cgroup.subtree_control")).unwrap();
    let exe = std::env::current_exe().unwrap();
    let out = std::process::Command::new("unshare")
        .args(["-m", "--propagation", "private", "--"])
        .arg(&exe)
        .args([
            "--exact",
            "inner_pure_v2_layout",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("MANTLE_CG_PURE_V2", "1")
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("1 passed"), "inner test did not run: {text}");
    let root_after =
        std::fs::read_to_string(Path::new(UNIFIED).join("cgroup.subtree_control")).unwrap();
    assert_eq!(
        root_before, root_after,
        "unified root subtree_control restored"
    );
}

#[test]
#[ignore = "run by pure_v2_layout_in_private_mount_ns inside a private mount namespace"]
fn inner_pure_v2_layout() {
    assert_eq!(
        std::env::var("MANTLE_CG_PURE_V2").as_deref(),
        Ok("1"),
        "only in a private mount ns"
    );
    let cg = c"/sys/fs/cgroup";
    // SAFETY: plain syscalls on a constant path, in the private mount namespace unshare made.
    unsafe {
        assert_eq!(libc::umount2(cg.as_ptr(), libc::MNT_DETACH), 0, "umount");
        assert_eq!(
            libc::mount(
                c"cgroup2".as_ptr(),
                cg.as_ptr(),
                c"cgroup2".as_ptr(),
                0,
                std::ptr::null()
            ),
            0,
            "mount cgroup2: {}",
            std::io::Error::last_os_error()
        );
    }
    // Same hierarchy as the host's unified mount, now seen at /sys/fs/cgroup.
    let _restore = RestoreSubtree(
        "/sys/fs/cgroup".into(),
        std::fs::read_to_string("/sys/fs/cgroup/cgroup.subtree_control").unwrap(),
    );
    let layout = cgroups::Layout::detect().unwrap();
    assert_eq!(layout.kind().unwrap(), LayoutKind::V2);
    let m = Guard(cgroups::create(Some(&name("pure")), "", false).unwrap());
    assert_eq!(m.layout(), LayoutKind::V2);
    let steps = m.mounts(Path::new("/sys/fs/cgroup"), true, true);
    assert_eq!(steps.len(), 1);
    exercise_v2_manager(m, Path::new("/sys/fs/cgroup"));
}

#[test]
fn verifier_accepts_generated_programs() {
    if !can_run() {
        return;
    }
    use cgroups::devices::{default_allowed, device_program, rules_from_oci, DevKind, DeviceRule};
    let mut big = vec![DeviceRule {
        allow: false,
        kind: DevKind::All,
        major: None,
        minor: None,
        access: 7,
    }];
    big.extend(rules_from_oci(&default_allowed()).unwrap());
    for i in 0..1000 {
        big.push(DeviceRule {
            allow: i % 2 == 0,
            kind: if i % 3 == 0 {
                DevKind::Block
            } else {
                DevKind::Char
            },
            major: Some(i),
            minor: if i % 5 == 0 { None } else { Some(u32::MAX - i) },
            access: (i % 7 + 1) as u8,
        });
    }
    for rules in [Vec::new(), big.clone(), big[..1].to_vec()] {
        let prog = device_program(&rules);
        cgroups::bpf::load_device_program(&prog)
            .unwrap_or_else(|e| panic!("{} rules: {e}", rules.len()));
    }
    // a program the verifier rejects (falls off the end) reports the log
    let bad = &device_program(&[])[..1];
    let e = cgroups::bpf::load_device_program(bad)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("BPF_PROG_LOAD") && e.contains("verifier log"),
        "{e}"
    );
}
