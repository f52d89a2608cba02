//! Every config.json feature, observed from inside a real container.

use mantle_tests::*;
use serde_json::json;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::time::Duration;

/// `run` the bundle with `script`, require success, return stdout.
#[track_caller]
fn run_sh(rt: &Runtime, b: &mut Bundle, script: &str) -> String {
    b.set_args(&["sh", "-c", script]);
    rt.run_bundle(b, &unique("cfg")).success().stdout
}

fn host_ns(name: &str) -> String {
    fs::read_link(format!("/proc/self/ns/{name}"))
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

/// Bits of /proc/self/status capability lines ("CapEff:\t0000...").
fn cap_line(status: &str, name: &str) -> u64 {
    let line = status
        .lines()
        .find(|l| l.starts_with(name))
        .unwrap_or_else(|| panic!("{name} missing in {status}"));
    u64::from_str_radix(line.split_whitespace().nth(1).unwrap(), 16).unwrap()
}

#[test]
fn namespaces_are_new_where_asked_and_shared_otherwise() {
    let rt = Runtime::mantle();
    let mut b = Bundle::sh("");
    b.add_namespace("cgroup", None).add_namespace("time", None);
    let out = run_sh(&rt, &mut b, "for n in pid net ipc uts mnt cgroup time user; do echo $n $(readlink /proc/self/ns/$n); done");
    for line in out.lines() {
        let (n, inside) = line.split_once(' ').unwrap();
        let host = host_ns(n);
        if n == "user" {
            assert_eq!(inside, host, "no user namespace was asked for");
        } else {
            assert_ne!(inside, host, "{n} namespace is the host's");
        }
    }
    // Without a network namespace the host's is shared.
    let mut b = Bundle::sh("");
    b.remove_namespace("network");
    let out = run_sh(&rt, &mut b, "readlink /proc/self/ns/net");
    assert_eq!(out.trim(), host_ns("net"));
    // In its pid namespace the workload is pid 1.
    let mut b = Bundle::sh("");
    assert_eq!(run_sh(&rt, &mut b, "echo $$").trim(), "1");
}

#[test]
fn user_namespace_with_id_mappings() {
    let rt = Runtime::mantle();
    let out_dir = TempDir::new("userns");
    fs::set_permissions(
        out_dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .unwrap();
    let mut b = Bundle::sh("");
    // The container's root is host uid 200000: mount targets must exist already (it cannot
    // create them in a root-owned rootfs, exactly as with runc).
    fs::create_dir(b.rootfs().join("out")).unwrap();
    b.add_namespace("user", None)
        .set(
            "/linux/uidMappings",
            json!([{"containerID": 0, "hostID": 200000, "size": 65536}]),
        )
        .set(
            "/linux/gidMappings",
            json!([{"containerID": 0, "hostID": 300000, "size": 65536}]),
        )
        .bind_dir(out_dir.path(), "/out")
        .set("/process/capabilities/bounding", json!(["CAP_CHOWN"]))
        .set("/process/capabilities/effective", json!(["CAP_CHOWN"]))
        .set("/process/capabilities/permitted", json!(["CAP_CHOWN"]));
    let out = run_sh(
        &rt,
        &mut b,
        "cat /proc/self/uid_map /proc/self/gid_map; id -u; touch /out/f; chown 5:6 /out/f",
    );
    let maps: Vec<Vec<&str>> = out
        .lines()
        .take(2)
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(maps[0], vec!["0", "200000", "65536"], "{out}");
    assert_eq!(maps[1], vec!["0", "300000", "65536"], "{out}");
    assert_eq!(out.lines().nth(2), Some("0"));
    // Seen from the host, the file belongs to the mapped ids.
    let md = fs::metadata(out_dir.path().join("f")).unwrap();
    assert_eq!((md.uid(), md.gid()), (200005, 300006));
    assert_ne!(
        run_sh(&rt, &mut b, "readlink /proc/self/ns/user").trim(),
        host_ns("user"),
        "user namespace not created"
    );
}

#[test]
fn namespaces_joined_by_path() {
    let rt = Runtime::mantle();
    let a = Bundle::new(&["sleep", "100"]);
    let ca = rt.create(&a, &unique("nsowner"), &[]);
    ca.start().success();
    let pid = ca.pid();
    let theirs = |n: &str| {
        fs::read_link(format!("/proc/{pid}/ns/{n}"))
            .unwrap()
            .to_string_lossy()
            .into_owned()
    };
    let mut b = Bundle::sh("");
    b.add_namespace("network", Some(&format!("/proc/{pid}/ns/net")))
        .add_namespace("uts", Some(&format!("/proc/{pid}/ns/uts")))
        .add_namespace("ipc", Some(&format!("/proc/{pid}/ns/ipc")));
    b.config.as_object_mut().unwrap().remove("hostname");
    let out = run_sh(
        &rt,
        &mut b,
        "for n in net uts ipc pid; do readlink /proc/self/ns/$n; done; hostname",
    );
    let l: Vec<&str> = out.lines().collect();
    assert_eq!(l[0], theirs("net"));
    assert_eq!(l[1], theirs("uts"));
    assert_eq!(l[2], theirs("ipc"));
    assert_ne!(
        l[3],
        theirs("pid"),
        "pid namespace was not asked to be joined"
    );
    assert_eq!(
        l[4], "mantle-it",
        "hostname comes from the joined uts namespace"
    );
    // A path that is not a namespace of the right type is an error, and nothing is left.
    let mut bad = Bundle::new(&["true"]);
    bad.add_namespace("network", Some(&format!("/proc/{pid}/ns/uts")));
    let id = unique("badjoin");
    rt.run_bundle(&bad, &id).failure();
    assert!(leftovers(&rt, &id, bad.path(), &[]).is_empty());
}

#[test]
fn readonly_root() {
    let rt = Runtime::mantle();
    let mut b = Bundle::sh("");
    b.set("/root/readonly", json!(true));
    b.push_mount(json!({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs"}));
    let out = run_sh(
        &rt,
        &mut b,
        "touch /x 2>&1; echo rc=$?; touch /tmp/y && echo tmp-ok",
    );
    assert!(out.contains("Read-only file system"), "{out}");
    assert!(out.contains("tmp-ok"), "{out}");
    assert!(!b.rootfs().join("x").exists());
}

#[test]
fn mounts_of_every_kind_with_options() {
    let rt = Runtime::mantle();
    let host = TempDir::new("mnt");
    fs::write(host.path().join("file"), "bound-file\n").unwrap();
    fs::create_dir(host.path().join("sub")).unwrap();
    fs::write(host.path().join("sub/inner"), "inner\n").unwrap();
    let mut b = Bundle::sh("");
    b.push_mount(json!({"destination": "/data", "type": "bind", "source": host.path(), "options": ["rbind", "ro"]}))
        .push_mount(json!({"destination": "/etc/bound", "type": "bind", "source": host.path().join("file"), "options": ["bind"]}))
        .push_mount(json!({"destination": "/rw", "source": host.path().join("sub"), "options": ["bind", "rw", "nosuid", "noexec"]}))
        .push_mount(json!({"destination": "/scratch", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m", "mode=700", "nodev"]}))
        .push_mount(json!({"destination": "/deep/new/dir", "type": "tmpfs", "source": "tmpfs"}));
    let out = run_sh(
        &rt,
        &mut b,
        "cat /data/file /etc/bound /data/sub/inner; \
         touch /data/x 2>/dev/null && echo data-rw || echo data-ro; \
         echo w > /rw/written && echo rw-ok; \
         stat -c %a /scratch; \
         grep -E ' /(scratch|rw|data|proc|sys|dev/pts|dev/mqueue|dev/shm|deep/new/dir) ' /proc/self/mountinfo",
    );
    let l: Vec<&str> = out.lines().collect();
    assert_eq!(&l[0..3], &["bound-file", "bound-file", "inner"], "{out}");
    assert_eq!(l[3], "data-ro");
    assert_eq!(l[4], "rw-ok");
    assert_eq!(
        fs::read_to_string(host.path().join("sub/written")).unwrap(),
        "w\n"
    );
    assert_eq!(l[5], "700");
    let info = |mp: &str| {
        l.iter()
            .find(|x| x.split(' ').nth(4) == Some(mp))
            .unwrap_or_else(|| panic!("{mp} not mounted:\n{out}"))
            .to_string()
    };
    assert!(
        info("/scratch").contains(" - tmpfs ") && info("/scratch").contains("size=1024k"),
        "{}",
        info("/scratch")
    );
    assert!(info("/scratch").contains("nodev"));
    assert!(
        info("/rw").contains("nosuid") && info("/rw").contains("noexec"),
        "{}",
        info("/rw")
    );
    assert!(info("/proc").contains(" - proc "));
    assert!(
        info("/sys").contains(" - sysfs ") && info("/sys").contains(" ro,"),
        "{}",
        info("/sys")
    );
    assert!(info("/dev/pts").contains(" - devpts "));
    assert!(info("/dev/mqueue").contains(" - mqueue "));
    assert!(info("/dev/shm").contains(" - tmpfs "));
    assert!(info("/deep/new/dir").contains(" - tmpfs "));
    // Nothing of it reached the host.
    assert!(
        mounts_under(b.path()).is_empty(),
        "{:?}",
        mounts_under(b.path())
    );
}

#[test]
fn mount_propagation_options() {
    let rt = Runtime::mantle();
    let mut b = Bundle::sh("");
    b.push_mount(json!({"destination": "/shared", "type": "tmpfs", "source": "tmpfs", "options": ["rshared"]}))
        .push_mount(json!({"destination": "/private", "type": "tmpfs", "source": "tmpfs", "options": ["rprivate"]}));
    let out = run_sh(
        &rt,
        &mut b,
        "grep -E ' /(shared|private) ' /proc/self/mountinfo",
    );
    let shared = out.lines().find(|l| l.contains(" /shared ")).unwrap();
    let private = out.lines().find(|l| l.contains(" /private ")).unwrap();
    assert!(shared.contains("shared:"), "{shared}");
    assert!(
        !private.contains("shared:") && !private.contains("master:"),
        "{private}"
    );
}

#[test]
fn rootfs_propagation() {
    // The host's mounts here are private, so what propagates from the host cannot be
    // observed; every value must be accepted (pivot_root refuses shared parents: the
    // runtime has to cope) and a bad value refused.
    let rt = Runtime::mantle();
    for prop in [
        "shared",
        "rshared",
        "slave",
        "rslave",
        "private",
        "rprivate",
        "unbindable",
        "runbindable",
    ] {
        let mut b = Bundle::sh("");
        b.set("/linux/rootfsPropagation", json!(prop));
        b.set_args(&["sh", "-c", "echo ok"]);
        let out = rt.run_bundle(&b, &unique("prop"));
        assert_eq!(
            (out.code, out.stdout.as_str()),
            (0, "ok\n"),
            "rootfsPropagation {prop}: {out:?}"
        );
        assert!(
            mounts_under(b.path()).is_empty(),
            "{prop}: {:?}",
            mounts_under(b.path())
        );
    }
    let mut b = Bundle::new(&["true"]);
    b.set("/linux/rootfsPropagation", json!("sideways"));
    let out = rt.run_bundle(&b, &unique("badprop")).failure();
    assert!(out.stderr.contains("rootfsPropagation"), "{out:?}");
}

#[test]
fn masked_and_readonly_paths() {
    let rt = Runtime::mantle();
    let mut b = Bundle::sh("");
    let cur = b.config["linux"]["maskedPaths"].as_array().unwrap().clone();
    let mut masked = cur;
    masked.push(json!("/etc/secret"));
    masked.push(json!("/nonexistent/path"));
    b.set("/linux/maskedPaths", json!(masked));
    b.set("/linux/readonlyPaths", json!(["/proc/sys", "/etc/ro-dir"]));
    fs::write(b.rootfs().join("etc/secret"), "top secret\n").unwrap();
    fs::create_dir(b.rootfs().join("etc/ro-dir")).unwrap();
    let out = run_sh(
        &rt,
        &mut b,
        "echo timer_list=$(wc -c < /proc/timer_list); echo secret=$(cat /etc/secret); ls -A /sys/firmware | wc -l; \
         echo 1 > /proc/sys/kernel/domainname 2>/dev/null && echo sys-rw || echo sys-ro; \
         touch /etc/ro-dir/x 2>/dev/null && echo dir-rw || echo dir-ro",
    );
    let l: Vec<&str> = out.lines().collect();
    assert_eq!(
        l,
        vec!["timer_list=0", "secret=", "0", "sys-ro", "dir-ro"],
        "{out}"
    );
}

#[test]
fn default_devices_symlinks_and_linux_devices() {
    let rt = Runtime::mantle();
    let mut b = Bundle::sh("");
    b.set(
        "/linux/devices",
        json!([{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 384, "uid": 7, "gid": 8},
               {"path": "/dev/mydir/loopx", "type": "b", "major": 7, "minor": 200, "fileMode": 432}]),
    );
    let out = run_sh(
        &rt,
        &mut b,
        "for d in null zero full random urandom tty fuse mydir/loopx; do stat -c \"$d %F %t:%T %a %u:%g\" /dev/$d; done; \
         for l in fd stdin stdout stderr ptmx; do echo $l $(readlink /dev/$l); done; \
         head -c 4 /dev/zero | wc -c; echo x > /dev/null && echo null-ok",
    );
    let want = [
        "null character special file 1:3 666 0:0",
        "zero character special file 1:5 666 0:0",
        "full character special file 1:7 666 0:0",
        "random character special file 1:8 666 0:0",
        "urandom character special file 1:9 666 0:0",
        "tty character special file 5:0 666 0:0",
        "fuse character special file a:e5 600 7:8",
        "mydir/loopx block special file 7:c8 660 0:0",
        "fd /proc/self/fd",
        "stdin /proc/self/fd/0",
        "stdout /proc/self/fd/1",
        "stderr /proc/self/fd/2",
        "ptmx pts/ptmx",
        "4",
        "null-ok",
    ];
    assert_eq!(out.lines().collect::<Vec<_>>(), want, "{out}");
}

#[test]
fn device_cgroup_deny_all_still_allows_default_devices() {
    // runc's spec denies every device in linux.resources and relies on the runtime's
    // default allow list (null, zero, tty, pts ...), which must also let mknod work.
    let rt = Runtime::mantle();
    let mut b = Bundle::sh("");
    b.set(
        "/linux/resources",
        json!({"devices": [{"allow": false, "access": "rwm"}]}),
    );
    let out = run_sh(&rt, &mut b, "echo x > /dev/null && head -c 1 /dev/zero | wc -c; head -c 1 /dev/full >/dev/null; cat /dev/kmsg 2>/dev/null | head -c 1 | wc -c");
    assert_eq!(out.lines().collect::<Vec<_>>(), vec!["1", "0"], "{out}");
}

#[test]
fn hostname_domainname_sysctl() {
    let rt = Runtime::mantle();
    let mut b = Bundle::sh("");
    b.set("/hostname", json!("box-a"))
        .set("/domainname", json!("example.org"));
    b.set(
        "/linux/sysctl",
        json!({"net.ipv4.ip_forward": "1", "kernel.shmmax": "123456789"}),
    );
    let out = run_sh(&rt, &mut b, "hostname; cat /proc/sys/kernel/domainname /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/shmmax");
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        vec!["box-a", "example.org", "1", "123456789"]
    );
    // The host is untouched.
    assert_ne!(
        fs::read_to_string("/proc/sys/kernel/shmmax")
            .unwrap()
            .trim(),
        "123456789"
    );
    // An unknown sysctl fails cleanly.
    let mut bad = Bundle::new(&["true"]);
    bad.set("/linux/sysctl", json!({"kernel.no_such_knob": "1"}));
    let id = unique("badsysctl");
    let out = rt.run_bundle(&bad, &id).failure();
    assert!(out.stderr.contains("no_such_knob"), "{out:?}");
    assert!(
        leftovers(&rt, &id, bad.path(), &[]).is_empty(),
        "{:?}",
        leftovers(&rt, &id, bad.path(), &[])
    );
}

#[test]
fn rlimits() {
    let rt = Runtime::mantle();
    let mut b = Bundle::sh("");
    b.set(
        "/process/rlimits",
        json!([{"type": "RLIMIT_NOFILE", "hard": 2048, "soft": 512},
               {"type": "RLIMIT_CORE", "hard": 4096, "soft": 0},
               {"type": "RLIMIT_NPROC", "hard": 500, "soft": 400}]),
    );
    let out = run_sh(
        &rt,
        &mut b,
        "grep -E 'open files|core file|processes' /proc/self/limits",
    );
    let row = |name: &str| {
        let l = out.lines().find(|l| l.starts_with(name)).unwrap();
        l[name.len()..]
            .split_whitespace()
            .take(2)
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    assert_eq!(row("Max open files"), vec!["512", "2048"]);
    assert_eq!(row("Max core file size"), vec!["0", "4096"]);
    assert_eq!(row("Max processes"), vec!["400", "500"]);
    // Raising above the host hard limit needs CAP_SYS_RESOURCE: a clear error.
    let mut bad = Bundle::new(&["true"]);
    bad.set(
        "/process/rlimits",
        json!([{"type": "RLIMIT_NOFILE", "hard": 1u64 << 40, "soft": 1u64 << 40}]),
    );
    let out = rt.run_bundle(&bad, &unique("badrlimit")).failure();
    assert!(
        out.stderr.contains("RLIMIT_NOFILE") || out.stderr.contains("Nofile"),
        "{out:?}"
    );
}

#[test]
fn capability_sets_for_root_and_non_root() {
    let rt = Runtime::mantle();
    const CHOWN: u64 = 1 << 0;
    const KILL: u64 = 1 << 5;
    const NET_RAW: u64 = 1 << 13;
    let mut b = Bundle::sh("");
    b.set(
        "/process/capabilities",
        json!({"bounding": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_RAW"], "effective": ["CAP_KILL"],
               "permitted": ["CAP_KILL", "CAP_CHOWN"], "inheritable": ["CAP_KILL", "CAP_CHOWN"], "ambient": ["CAP_KILL"]}),
    );
    b.set("/process/noNewPrivileges", json!(false));
    b.set("/process/user", json!({"uid": 1000, "gid": 1000}));
    let st = run_sh(&rt, &mut b, "cat /proc/self/status");
    assert_eq!(cap_line(&st, "CapBnd:"), CHOWN | KILL | NET_RAW, "{st}");
    assert_eq!(cap_line(&st, "CapInh:"), CHOWN | KILL);
    // A non-root process keeps only its ambient set across execve.
    assert_eq!(cap_line(&st, "CapAmb:"), KILL);
    assert_eq!(cap_line(&st, "CapPrm:"), KILL);
    assert_eq!(cap_line(&st, "CapEff:"), KILL);
    // Root gets its bounding set (the kernel's rule for uid 0).
    b.set("/process/user", json!({"uid": 0, "gid": 0}));
    let st = run_sh(&rt, &mut b, "cat /proc/self/status");
    assert_eq!(cap_line(&st, "CapBnd:"), CHOWN | KILL | NET_RAW);
    assert_eq!(cap_line(&st, "CapEff:"), CHOWN | KILL | NET_RAW);
    // Without CAP_CHOWN in any set, chown is refused.
    b.set(
        "/process/capabilities",
        json!({"bounding": ["CAP_KILL"], "effective": ["CAP_KILL"], "permitted": ["CAP_KILL"]}),
    );
    let out = run_sh(&rt, &mut b, "touch /tmp/f; chown 5 /tmp/f 2>&1; echo rc=$?");
    assert!(
        out.contains("Operation not permitted") && out.contains("rc=1"),
        "{out}"
    );
}

#[test]
fn no_new_privileges() {
    let rt = Runtime::mantle();
    let mut b = Bundle::sh("");
    for (nnp, want) in [(true, "1"), (false, "0")] {
        b.set("/process/noNewPrivileges", json!(nnp));
        let out = run_sh(&rt, &mut b, "grep NoNewPrivs /proc/self/status");
        assert_eq!(out.split_whitespace().nth(1), Some(want), "{nnp}: {out}");
    }
}

#[test]
fn user_groups_umask_cwd_env_oom_score() {
    let rt = Runtime::mantle();
    let mut b = Bundle::sh("");
    b.set(
        "/process/user",
        json!({"uid": 1001, "gid": 1002, "additionalGids": [5, 1003], "umask": 23}),
    );
    b.set("/process/cwd", json!("/home"));
    b.set("/process/env", json!(["PATH=/bin", "A=1", "SPACES=a b c"]));
    b.set("/process/oomScoreAdj", json!(432));
    let out = run_sh(
        &rt,
        &mut b,
        "id -u; id -g; id -G; umask; pwd; echo \"$A|$SPACES\"; cat /proc/self/oom_score_adj",
    );
    let l: Vec<&str> = out.lines().collect();
    assert_eq!(l[0], "1001");
    assert_eq!(l[1], "1002");
    let mut groups: Vec<&str> = l[2].split_whitespace().collect();
    groups.sort();
    assert_eq!(groups, vec!["1002", "1003", "5"], "{out}");
    assert_eq!(l[3], "0027");
    assert_eq!(l[4], "/home");
    assert_eq!(l[5], "1|a b c");
    assert_eq!(l[6], "432");
}

#[test]
fn cgroup_mount_is_read_only_and_shows_controllers() {
    let rt = Runtime::mantle();
    let mut b = Bundle::sh("");
    b.push_mount(json!({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}));
    let out = run_sh(
        &rt,
        &mut b,
        "ls /sys/fs/cgroup; mkdir /sys/fs/cgroup/memory/x 2>/dev/null && echo writable || echo ro",
    );
    assert!(out.lines().any(|l| l == "memory"), "{out}");
    assert!(out.lines().any(|l| l == "pids"), "{out}");
    assert_eq!(out.lines().last(), Some("ro"), "{out}");
}

#[test]
fn time_namespace_offsets() {
    let rt = Runtime::mantle();
    let mut b = Bundle::sh("");
    b.add_namespace("time", None);
    b.set(
        "/linux/timeOffsets",
        json!({"boottime": {"secs": 86400 * 365, "nanosecs": 0}}),
    );
    let out = run_sh(&rt, &mut b, "cut -d. -f1 /proc/uptime");
    let inside: u64 = out.trim().parse().unwrap();
    let host: u64 = fs::read_to_string("/proc/uptime")
        .unwrap()
        .split('.')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        inside >= host + 86400 * 365 - 5,
        "inside {inside} host {host}"
    );
}

#[test]
fn annotations_are_kept_in_state() {
    let rt = Runtime::mantle();
    let mut b = Bundle::new(&["sleep", "50"]);
    b.set("/annotations", json!({"a.b/c": "1", "empty": ""}));
    let c = rt.create(&b, &unique("annot"), &[]);
    let s = c.state();
    assert_eq!(s["annotations"], json!({"a.b/c": "1", "empty": ""}));
    c.start().success();
    assert!(wait_for(Duration::from_secs(5), || c.status() == "running"));
}

#[test]
fn user_namespace_joined_by_path() {
    let rt = Runtime::mantle();
    let mut a = Bundle::new(&["sleep", "100"]);
    a.add_namespace("user", None)
        .set(
            "/linux/uidMappings",
            json!([{"containerID": 0, "hostID": 400000, "size": 65536}]),
        )
        .set(
            "/linux/gidMappings",
            json!([{"containerID": 0, "hostID": 400000, "size": 65536}]),
        );
    let ca = rt.create(&a, &unique("userowner"), &[]);
    ca.start().success();
    let pid = ca.pid();
    let mut b = Bundle::sh("");
    b.add_namespace("user", Some(&format!("/proc/{pid}/ns/user")))
        .add_namespace("network", Some(&format!("/proc/{pid}/ns/net")));
    // Files the joiner creates belong to the mapped root of the joined namespace.
    fs::set_permissions(
        b.rootfs().join("tmp"),
        std::os::unix::fs::PermissionsExt::from_mode(0o1777),
    )
    .unwrap();
    let out = run_sh(
        &rt,
        &mut b,
        "cat /proc/self/uid_map; readlink /proc/self/ns/user; id -u; touch /tmp/made",
    );
    let l: Vec<&str> = out.lines().collect();
    assert_eq!(
        l[0].split_whitespace().collect::<Vec<_>>(),
        vec!["0", "400000", "65536"],
        "{out}"
    );
    assert_eq!(
        l[1],
        fs::read_link(format!("/proc/{pid}/ns/user"))
            .unwrap()
            .to_string_lossy()
    );
    assert_eq!(l[2], "0");
    assert_eq!(
        fs::metadata(b.rootfs().join("tmp/made")).unwrap().uid(),
        400000
    );
}

#[test]
fn tmpfs_tmpcopyup_starts_with_the_hidden_content() {
    let rt = Runtime::mantle();
    let mut b = Bundle::sh("");
    let data = b.rootfs().join("data");
    fs::create_dir_all(data.join("sub")).unwrap();
    fs::write(data.join("f"), "hi\n").unwrap();
    fs::write(data.join("sub/g"), "deep\n").unwrap();
    std::os::unix::fs::symlink("f", data.join("link")).unwrap();
    // A link out of the rootfs is copied as a link, never followed.
    std::os::unix::fs::symlink("/../../../../etc/shadow", data.join("out")).unwrap();
    fs::set_permissions(
        data.join("f"),
        std::os::unix::fs::PermissionsExt::from_mode(0o640),
    )
    .unwrap();
    std::os::unix::fs::chown(data.join("sub/g"), Some(7), Some(8)).unwrap();
    b.push_mount(json!({"destination": "/data", "type": "tmpfs", "source": "tmpfs", "options": ["tmpcopyup", "mode=755"]}));
    let out = run_sh(
        &rt,
        &mut b,
        "cat /data/f /data/sub/g /data/link; readlink /data/out; stat -c '%a' /data/f; stat -c '%u:%g' /data/sub/g; \
         grep ' /data ' /proc/self/mountinfo | grep -c tmpfs; echo new > /data/new",
    );
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        vec![
            "hi",
            "deep",
            "hi",
            "/../../../../etc/shadow",
            "640",
            "7:8",
            "1"
        ],
        "{out}"
    );
    // Writes went to the tmpfs, not the image.
    assert!(!data.join("new").exists());
}
