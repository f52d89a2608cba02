//! linux.seccomp: errno rules, argument filters (MASKED_EQ), defaultErrnoRet, kill actions,
//! and that exec'd processes are filtered too.

use mantle_tests::*;
use serde_json::json;

fn probe_run(rt: &Runtime, b: &mut Bundle, script: &str) -> Output {
    b.add_probe();
    b.set_args(&["sh", "-c", script]);
    rt.run_bundle(b, &unique("sc"))
}

#[test]
fn errno_rules_and_masked_eq_arguments() {
    let rt = Runtime::mantle();
    let mut b = Bundle::sh("");
    b.set(
        "/linux/seccomp",
        json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86_64"],
            "syscalls": [
                {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
                // chmod with the set-uid bit: refused; other modes pass.
                {"names": ["chmod"], "action": "SCMP_ACT_ERRNO",
                 "args": [{"index": 1, "value": 2048, "valueTwo": 2048, "op": "SCMP_CMP_MASKED_EQ"}]},
                {"names": ["unshare"], "action": "SCMP_ACT_ERRNO", "errnoRet": 22,
                 "args": [{"index": 0, "value": 268435456, "op": "SCMP_CMP_EQ"}]}
            ]
        }),
    );
    let out = probe_run(
        &rt,
        &mut b,
        "probe sys mkdir mkdirat chmod-plain chmod-suid unshare-user unshare-uts getpid",
    )
    .success();
    let r = kv_lines(&out.stdout);
    assert_eq!(r["mkdir"], "EACCES", "{out:?}");
    assert_eq!(r["mkdirat"], "EACCES");
    assert_eq!(r["chmod-plain"], "0");
    assert_eq!(r["chmod-suid"], "EPERM", "no errnoRet means EPERM");
    assert_eq!(
        r["unshare-user"], "EINVAL",
        "CLONE_NEWUSER matched the EQ rule"
    );
    assert_eq!(
        r["unshare-uts"], "EPERM",
        "not filtered: the missing capability refuses it"
    );
    assert_eq!(r["getpid"], "0");
}

#[test]
fn default_errno_ret_applies_to_the_default_action() {
    let rt = Runtime::mantle();
    let Some(mut profile) = podman_seccomp_for(&DEFAULT_CAPS) else {
        eprintln!("skipped: /usr/share/containers/seccomp.json missing");
        return;
    };
    // An allow-list without mkdir: mkdir falls to the default action and its errno.
    for r in profile["syscalls"].as_array_mut().unwrap() {
        if let Some(names) = r["names"].as_array_mut() {
            names.retain(|n| n != "mkdir" && n != "mkdirat");
        }
    }
    profile["defaultErrnoRet"] = json!(95);
    let mut b = Bundle::sh("");
    b.set("/linux/seccomp", profile);
    let out = probe_run(&rt, &mut b, "probe sys mkdir mkdirat getpid").success();
    let r = kv_lines(&out.stdout);
    assert_eq!(r["mkdir"], "EOPNOTSUPP", "{out:?}");
    assert_eq!(r["mkdirat"], "EOPNOTSUPP");
    assert_eq!(r["getpid"], "0");
}

#[test]
fn kill_and_trap_actions_end_the_caller_with_sigsys() {
    let rt = Runtime::mantle();
    for action in [
        "SCMP_ACT_KILL",
        "SCMP_ACT_KILL_PROCESS",
        "SCMP_ACT_KILL_THREAD",
        "SCMP_ACT_TRAP",
    ] {
        let mut b = Bundle::sh("");
        b.set(
            "/linux/seccomp",
            json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"], "action": action}]}),
        );
        let out = probe_run(&rt, &mut b, "probe sys getpid mkdir; echo rc=$?").success();
        assert!(out.stdout.contains("getpid=0"), "{action}: {out:?}");
        assert!(
            !out.stdout.contains("mkdir="),
            "{action}: mkdir returned: {out:?}"
        );
        assert!(
            out.stdout.contains("rc=159"),
            "{action}: want 128+SIGSYS: {out:?}"
        );
    }
}

#[test]
fn exec_processes_are_filtered_too() {
    let rt = Runtime::mantle();
    let mut b = Bundle::new(&["sleep", "100"]);
    b.add_probe();
    b.set(
        "/linux/seccomp",
        json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]}),
    );
    let c = rt.create(&b, &unique("scexec"), &[]);
    c.start().success();
    let out = c.exec(&["probe", "sys", "mkdir"]).success();
    assert_eq!(out.stdout.trim(), "mkdir=EPERM");
    let out = c.exec(&["grep", "Seccomp:", "/proc/self/status"]).success();
    assert!(out.stdout.contains('2'), "{out:?}");
}

#[test]
fn podman_default_profile_blocks_what_it_should() {
    let rt = Runtime::mantle();
    let Some(profile) = podman_seccomp_for(&DEFAULT_CAPS) else {
        eprintln!("skipped: /usr/share/containers/seccomp.json missing");
        return;
    };
    let mut b = Bundle::sh("");
    b.set("/linux/seccomp", profile);
    let out = probe_run(
        &rt,
        &mut b,
        "probe sys getpid mkdir mount keyctl add_key personality-query personality-linux32 personality-weird clone3 bpf chroot",
    )
    .success();
    let r = kv_lines(&out.stdout);
    assert_eq!(r["getpid"], "0");
    assert_eq!(r["mkdir"], "0");
    assert_eq!(r["mount"], "EPERM", "{out:?}");
    // This profile allows keyctl but not add_key: the default errno (ENOSYS).
    assert_eq!(r["keyctl"], "0", "{out:?}");
    assert_eq!(r["add_key"], "ENOSYS");
    assert_eq!(r["personality-query"], "0");
    assert_eq!(r["personality-linux32"], "0");
    assert_eq!(
        r["personality-weird"], "ENOSYS",
        "only listed personalities pass"
    );
    // clone3 is allowed by this profile: the kernel's own answer to a NULL argument.
    assert_eq!(r["clone3"], "EINVAL");
    assert_eq!(r["bpf"], "EPERM");
    assert_eq!(r["chroot"], "EPERM");
}

#[test]
fn bad_seccomp_profiles_are_clear_errors() {
    let rt = Runtime::mantle();
    for (profile, words) in [
        (json!({"defaultAction": "SCMP_ACT_BOGUS"}), "defaultAction"),
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_NOPE"]}),
            "architectures",
        ),
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]}),
            "listenerPath",
        ),
    ] {
        let mut b = Bundle::new(&["true"]);
        b.set("/linux/seccomp", profile);
        let id = unique("badsc");
        let out = rt.run_bundle(&b, &id).failure();
        assert!(out.stderr.contains(words), "{words}: {out:?}");
        assert!(leftovers(&rt, &id, b.path(), &[]).is_empty());
    }
}
