//! Differential: the same bundles under runc (`runc --root <tmp>`) and under mantle must give
//! the same state document keys, exit codes, stdout, and the same effect of podman's default
//! seccomp profile. Skipped (with a message) when runc is not installed.

use mantle_tests::*;
use serde_json::{json, Value};
use std::collections::BTreeSet;

fn both() -> Option<(Runtime, Runtime)> {
    match Runtime::runc() {
        Some(r) => Some((r, Runtime::mantle())),
        None => {
            eprintln!("skipped: runc is not installed");
            None
        }
    }
}

/// Run `b` under a runtime, return (code, stdout).
fn outcome(rt: &Runtime, b: &Bundle) -> (i32, String) {
    let out = rt.run_bundle(b, &unique("diff"));
    (out.code, out.stdout)
}

#[track_caller]
fn same(runc: &Runtime, mantle: &Runtime, b: &Bundle, what: &str) -> (i32, String) {
    let r = outcome(runc, b);
    let m = outcome(mantle, b);
    assert_eq!(m, r, "{what}: mantle (left) differs from runc (right)");
    r
}

/// `same`, and both must have succeeded (two identical failures prove nothing here).
#[track_caller]
fn same_ok(runc: &Runtime, mantle: &Runtime, b: &Bundle, what: &str) -> String {
    let (code, out) = same(runc, mantle, b, what);
    assert_eq!(code, 0, "{what}: both runtimes failed");
    out
}

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default()
}

#[test]
fn state_documents_have_the_same_keys_and_statuses() {
    let Some((runc, mantle)) = both() else { return };
    let mut b = Bundle::new(&["sleep", "100"]);
    b.set("/annotations", json!({"x.y": "z"}));
    let cr = runc.create(&b, &unique("dstate"), &[]);
    let cm = mantle.create(&b, &unique("dstate"), &[]);
    let (sr, sm) = (cr.state(), cm.state());
    assert_eq!(keys(&sm), keys(&sr), "mantle {sm}\nrunc {sr}");
    for k in [
        "ociVersion",
        "status",
        "bundle",
        "rootfs",
        "annotations",
        "owner",
    ] {
        assert_eq!(sm[k], sr[k], "{k}");
    }
    cr.start().success();
    cm.start().success();
    assert_eq!(cm.status(), cr.status());
    cr.kill("KILL").success();
    cm.kill("KILL").success();
    cr.wait_status("stopped");
    cm.wait_status("stopped");
    let (sr, sm) = (cr.state(), cm.state());
    assert_eq!(sm["pid"], sr["pid"], "pid of a stopped container");
    // list --format json has the same item keys.
    let lr: Value =
        serde_json::from_str(&runc.run(&["list", "--format", "json"]).success().stdout).unwrap();
    let lm: Value =
        serde_json::from_str(&mantle.run(&["list", "--format", "json"]).success().stdout).unwrap();
    assert_eq!(keys(&lm[0]), keys(&lr[0]), "mantle {lm}\nrunc {lr}");
}

#[test]
fn exit_codes_and_output_match() {
    let Some((runc, mantle)) = both() else { return };
    for script in [
        "echo hello; exit 0",
        "exit 3",
        "no-such-program",
        "/etc/passwd",
        "sh -c 'kill -KILL $$'",
        "sh -c 'kill -TERM $$'",
        "echo err >&2; exit 255",
    ] {
        same(&runc, &mantle, &Bundle::sh(script), script);
    }
    // A workload that cannot start: both fail, with the same words.
    for (args, words) in [
        (
            vec!["no-such-program"],
            "executable file not found in $PATH",
        ),
        (vec!["/etc/passwd"], "permission denied"),
        (vec!["/no/such/file"], "no such file or directory"),
    ] {
        let b = Bundle::new(&args);
        let r = runc.run_bundle(&b, &unique("dfail"));
        let m = mantle.run_bundle(&b, &unique("dfail"));
        assert_ne!(r.code, 0);
        assert_eq!(m.code, r.code, "{args:?}: mantle {m:?} runc {r:?}");
        assert!(
            r.stderr.contains(words) && m.stderr.contains(words),
            "{args:?}: mantle {m:?} runc {r:?}"
        );
    }
}

/// What the workload sees of its environment, printed by busybox.
const VIEW: &str = "id; hostname; grep -E '^(Cap|NoNewPrivs|Seccomp:)' /proc/self/status; \
    ls -l /dev | awk '{print $1, $3, $4, $5, $6, $NF}'; umask; ulimit -n; cat /proc/self/oom_score_adj; \
    awk '{for (i = 7; $i != \"-\"; i++); print $5, $6, $(i+1)}' /proc/self/mountinfo; \
    env | sort; pwd; ls -ln / | awk '{print $1, $3, $4, $NF}'; cat /proc/self/limits";

#[test]
fn the_workload_sees_the_same_environment() {
    let Some((runc, mantle)) = both() else { return };
    let mut b = Bundle::sh(VIEW);
    b.set("/process/oomScoreAdj", json!(100));
    b.set("/process/user", json!({"uid": 0, "gid": 0, "umask": 18}));
    same_ok(&runc, &mantle, &b, "default bundle");
    // Non-root user with capability sets, read-only root, a bind and a tmpfs.
    let host = TempDir::new("dview");
    b.set(
        "/process/user",
        json!({"uid": 1000, "gid": 1000, "additionalGids": [5]}),
    );
    b.set(
        "/process/capabilities",
        json!({"bounding": ["CAP_CHOWN", "CAP_KILL"], "effective": ["CAP_KILL"], "permitted": ["CAP_KILL"],
               "inheritable": ["CAP_KILL"], "ambient": ["CAP_KILL"]}),
    );
    b.set("/root/readonly", json!(true));
    b.push_mount(json!({"destination": "/data", "type": "bind", "source": host.path(), "options": ["rbind", "ro", "nosuid"]}));
    b.push_mount(json!({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m", "mode=1777"]}));
    same_ok(&runc, &mantle, &b, "non-root, read-only root, extra mounts");
}

#[test]
fn user_namespace_view_matches() {
    let Some((runc, mantle)) = both() else { return };
    // (/dev/mqueue is left out: runc mounts it with an unmapped group, mantle as the
    // container's root; both are fine.)
    let mut b = Bundle::sh("cat /proc/self/uid_map /proc/self/gid_map; id; ls -ln /dev | grep -v mqueue | awk '{print $1, $3, $4, $NF}'");
    b.add_namespace("user", None)
        .set(
            "/linux/uidMappings",
            json!([{"containerID": 0, "hostID": 300000, "size": 65536}]),
        )
        .set(
            "/linux/gidMappings",
            json!([{"containerID": 0, "hostID": 300000, "size": 65536}]),
        );
    same_ok(&runc, &mantle, &b, "user namespace");
}

#[test]
fn podman_seccomp_profile_has_the_same_effect() {
    let Some((runc, mantle)) = both() else { return };
    let Some(profile) = podman_seccomp_for(&DEFAULT_CAPS) else {
        eprintln!("skipped: /usr/share/containers/seccomp.json missing");
        return;
    };
    let checks = "getpid mkdir mount unshare-user unshare-mnt unshare-uts keyctl add_key personality-query \
                  personality-linux32 personality-weird clone3 chroot setns bpf perf_event_open userfaultfd io_uring_setup";
    let mut b = Bundle::sh(&format!(
        "probe sys {checks}; grep Seccomp: /proc/self/status"
    ));
    b.add_probe();
    b.set("/linux/seccomp", profile);
    let (code, out) = same(&runc, &mantle, &b, "podman seccomp profile");
    assert_eq!(code, 0);
    // The run must have exercised every check (a probe that died early compares equal too).
    assert_eq!(
        kv_lines(&out).len(),
        checks.split_whitespace().count(),
        "{out}"
    );
    // And the same profile on a process with CAP_SYS_ADMIN.
    let caps = [
        "CAP_SYS_ADMIN",
        "CAP_AUDIT_WRITE",
        "CAP_KILL",
        "CAP_NET_BIND_SERVICE",
    ];
    b.set("/linux/seccomp", podman_seccomp_for(&caps).unwrap());
    b.set(
        "/process/capabilities",
        json!({"bounding": caps, "effective": caps, "permitted": caps}),
    );
    same_ok(
        &runc,
        &mantle,
        &b,
        "podman seccomp profile with CAP_SYS_ADMIN",
    );
}

#[test]
fn mount_propagation_matches() {
    let Some((runc, mantle)) = both() else { return };
    let mut b = Bundle::sh("awk '$5 == \"/shared\" || $5 == \"/private\" || $5 == \"/slave\" {print $5, ($7 ~ /shared/) ? \"shared\" : \"-\"}' /proc/self/mountinfo");
    b.push_mount(json!({"destination": "/shared", "type": "tmpfs", "source": "tmpfs", "options": ["rshared"]}))
        .push_mount(json!({"destination": "/private", "type": "tmpfs", "source": "tmpfs", "options": ["rprivate"]}))
        .push_mount(json!({"destination": "/slave", "type": "tmpfs", "source": "tmpfs", "options": ["rslave"]}));
    same_ok(&runc, &mantle, &b, "mount propagation options");
    // ("runbindable" is left out: runc 1.1 fails it, binding readonlyPaths in an
    // unbindable tree; mantle applies it last and succeeds.)
    for prop in [
        "shared", "rshared", "slave", "rslave", "private", "rprivate",
    ] {
        let mut b = Bundle::sh("echo ok");
        b.set("/linux/rootfsPropagation", json!(prop));
        same_ok(&runc, &mantle, &b, &format!("rootfsPropagation {prop}"));
    }
}

#[test]
fn exec_matches() {
    let Some((runc, mantle)) = both() else { return };
    let b = Bundle::new(&["sleep", "100"]);
    let cr = runc.create(&b, &unique("dexec"), &[]);
    let cm = mantle.create(&b, &unique("dexec"), &[]);
    cr.start().success();
    cm.start().success();
    for (flags, args) in [
        (vec![], vec!["sh", "-c", "id; pwd; exit 7"]),
        (
            vec!["--user", "1000:1000", "--cwd", "/tmp", "--env", "A=b"],
            vec!["sh", "-c", "id; pwd; echo $A"],
        ),
        (
            vec![],
            vec!["sh", "-c", "grep -E '^(Cap|NoNewPrivs)' /proc/self/status"],
        ),
        (vec![], vec!["sh", "-c", "kill -KILL $$"]),
        (
            vec!["--cap", "CAP_NET_RAW", "--user", "1000"],
            vec!["sh", "-c", "id; grep -E '^Cap' /proc/self/status"],
        ),
        (vec!["--cwd", "/bin"], vec!["./busybox", "echo", "relative"]),
        (vec![], vec!["sh", "-c", "exit 200"]),
        (
            vec!["--env", "TERM=dumb", "--env", "NEW=1"],
            vec!["sh", "-c", "env | sort"],
        ),
    ] {
        let r = cr.exec_with(&flags, &args);
        let m = cm.exec_with(&flags, &args);
        assert_eq!(
            (m.code, &m.stdout),
            (r.code, &r.stdout),
            "exec {flags:?} {args:?}"
        );
    }
    // A program that is not there: both fail with the same words (runc exits 255, mantle 1;
    // callers go by the message, which podman maps to 127).
    let r = cr.exec(&["no-such-program"]);
    let m = cm.exec(&["no-such-program"]);
    assert!(r.code != 0 && m.code != 0, "mantle {m:?} runc {r:?}");
    let words = "executable file not found in $PATH";
    assert!(
        r.stderr.contains(words) && m.stderr.contains(words),
        "mantle {m:?} runc {r:?}"
    );
}

#[test]
fn cwd_not_accessible_to_the_user_and_missing_cwd() {
    let Some((runc, mantle)) = both() else { return };
    // /root is 0700 root: runc changes directory before switching user, so this works.
    let mut b = Bundle::sh("pwd; id -u");
    std::fs::set_permissions(
        b.rootfs().join("root"),
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .unwrap();
    b.set("/process/user", json!({"uid": 1000, "gid": 1000}))
        .set("/process/cwd", json!("/root"));
    same_ok(&runc, &mantle, &b, "cwd only root can enter");
    // A cwd that does not exist in the image.
    let mut b = Bundle::sh("pwd");
    b.set("/process/cwd", json!("/does/not/exist"));
    same(&runc, &mantle, &b, "missing cwd");
}

#[test]
fn sysfs_in_a_user_namespace_without_its_own_network_namespace() {
    // Rootless podman with --network=host: sysfs cannot be mounted fresh (the network
    // namespace belongs to the host's user namespace). runc 1.1 fails with EPERM (podman
    // writes an rbind of /sys instead); mantle must fail the same way, not differently.
    let Some((runc, mantle)) = both() else { return };
    let mut b =
        Bundle::sh("ls /sys | grep -c . ; grep ' /sys ' /proc/self/mountinfo | grep -c ' ro'");
    b.add_namespace("user", None)
        .remove_namespace("network")
        .set(
            "/linux/uidMappings",
            json!([{"containerID": 0, "hostID": 500000, "size": 65536}]),
        )
        .set(
            "/linux/gidMappings",
            json!([{"containerID": 0, "hostID": 500000, "size": 65536}]),
        );
    same(
        &runc,
        &mantle,
        &b,
        "sysfs in a userns with the host network namespace",
    );
}

#[test]
fn mount_below_a_dangling_relative_link() {
    // Alpine-style /var/run -> ../run, with /run missing from the image: the mount target is
    // created where the link points, inside the rootfs. (A fresh bundle per runtime: the
    // first run creates /run.)
    let Some((runc, mantle)) = both() else { return };
    let make = || {
        let mut b = Bundle::sh("grep -E ' /(var/)?run/secrets ' /proc/self/mountinfo | awk '{print $5}'; test -d /run/secrets && echo at-run");
        std::fs::remove_dir(b.rootfs().join("run")).unwrap();
        std::os::unix::fs::symlink("../run", b.rootfs().join("var/run")).unwrap();
        b.push_mount(
            json!({"destination": "/var/run/secrets", "type": "tmpfs", "source": "tmpfs"}),
        );
        b
    };
    let m = mantle.run_bundle(&make(), &unique("dangle"));
    let r = runc.run_bundle(&make(), &unique("dangle"));
    assert_eq!(
        (m.code, &m.stdout),
        (r.code, &r.stdout),
        "mantle {m:?}\nrunc {r:?}"
    );
    assert!(r.stdout.contains("at-run"), "{r:?}");
}
