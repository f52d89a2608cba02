//! config.md#process (+ config-linux process fields): args, env, cwd, user, rlimits,
//! capabilities, noNewPrivileges, oomScoreAdj, terminal, consoleSize.

use super::util::{check_caps, status};
use crate::suite::{Ctx, Test, TestResult};
use anyhow::{bail, ensure, Context};
use serde_json::{json, Value};

pub fn tests() -> Vec<Test> {
    vec![
        Test {
            name: "process.args_exact",
            clause: "config.md#process: args (array of strings, REQUIRED) with similar semantics to IEEE Std 1003.1-2008 execvp's argv",
            run: args_exact,
        },
        Test {
            name: "process.args_path_lookup",
            clause: "config.md#process: args ... execvp semantics (args[0] without a slash is looked up in PATH)",
            run: args_path_lookup,
        },
        Test {
            name: "process.args_empty_error",
            clause: "config.md#process: args ... This specification extends the IEEE standard in that at least one entry is REQUIRED",
            run: args_empty,
        },
        Test {
            name: "process.env",
            clause: "config.md#process: env (array of strings, OPTIONAL) with the same semantics as IEEE Std 1003.1-2008's environ",
            run: env,
        },
        Test {
            name: "process.cwd",
            clause: "config.md#process: cwd (string, REQUIRED) is the working directory that will be set for the executable",
            run: cwd,
        },
        Test {
            name: "process.user_uid_gid",
            clause: "config.md#posix-platform-user: uid (int, REQUIRED) specifies the user ID; gid (int, REQUIRED) specifies the group ID in the container namespace",
            run: user_uid_gid,
        },
        Test {
            name: "process.user_additional_gids",
            clause: "config.md#posix-platform-user: additionalGids (array of ints, OPTIONAL) specifies additional group IDs in the container namespace to be added to the process",
            run: additional_gids,
        },
        Test {
            name: "process.user_umask",
            clause: "config.md#posix-platform-user: umask (int, OPTIONAL) specifies the umask of the user",
            run: umask,
        },
        Test {
            name: "process.rlimits",
            clause: "config.md#posix-process: rlimits: soft: rlim.rlim_cur MUST match the configured value; hard: rlim.rlim_max MUST match the configured value",
            run: rlimits,
        },
        Test {
            name: "process.rlimits_invalid_type",
            clause: "config.md#posix-process: rlimits type: The runtime MUST generate an error for any values which cannot be mapped to a relevant kernel interface",
            run: rlimits_invalid,
        },
        Test {
            name: "process.rlimits_duplicate_type",
            clause: "config.md#posix-process: If rlimits contains duplicated entries with same type, the runtime MUST generate an error",
            run: rlimits_duplicate,
        },
        Test {
            name: "process.capabilities_root",
            clause: "config-linux.md/config.md#linux-process: capabilities effective, permitted, bounding sets of the process",
            run: caps_root,
        },
        Test {
            name: "process.capabilities_ambient_nonroot",
            clause: "config.md#linux-process: capabilities inheritable and ambient sets (ambient survive execve for a non-root user)",
            run: caps_ambient,
        },
        Test {
            name: "process.capabilities_bounding_only",
            clause: "config.md#linux-process: bounding (array of strings, OPTIONAL) the bounding capabilities that are kept for the process",
            run: caps_bounding,
        },
        Test {
            name: "process.capabilities_unknown_not_fatal",
            clause: "config.md#linux-process: a capability that cannot be granted MUST be logged as a warning; runtimes SHOULD NOT fail",
            run: caps_unknown,
        },
        Test {
            name: "process.no_new_privileges_true",
            clause: "config.md#linux-process: noNewPrivileges (bool, OPTIONAL) setting noNewPrivileges to true prevents the process from gaining additional privileges",
            run: nnp_true,
        },
        Test {
            name: "process.no_new_privileges_false",
            clause: "config.md#linux-process: noNewPrivileges false leaves no_new_privs unset",
            run: nnp_false,
        },
        Test {
            name: "process.oom_score_adj",
            clause: "config.md#linux-process: oomScoreAdj (int, OPTIONAL) adjusts the oom-killer score in [pid]/oom_score_adj for the process's [pid] in a proc pseudo-filesystem",
            run: oom_score_adj,
        },
        Test {
            name: "process.terminal",
            clause: "config.md#process: terminal (bool, OPTIONAL) specifies whether a terminal is attached to the process",
            run: terminal,
        },
        Test {
            name: "process.terminal_console_size",
            clause: "config.md#process: consoleSize (object, OPTIONAL) specifies the console size in characters of the terminal",
            run: console_size,
        },
        Test {
            name: "process.no_terminal_inherits_stdio",
            clause: "config.md#process: terminal false: no terminal; the process uses the stdio the runtime was given (runc model)",
            run: no_terminal,
        },
        Test {
            name: "process.apparmor_profile",
            clause: "config.md#linux-process: apparmorProfile (string, OPTIONAL) specifies the name of the AppArmor profile for the process",
            run: apparmor,
        },
        Test {
            name: "process.selinux_label",
            clause: "config.md#linux-process: selinuxLabel (string, OPTIONAL) specifies the SELinux label for the process",
            run: selinux,
        },
    ]
}

fn args_exact(ctx: &Ctx) -> TestResult {
    let mut b = ctx.bundle()?;
    let args = [
        "/bin/probe",
        "report",
        "two words",
        "",
        "tab\there",
        "ünïcode",
    ];
    b.set_args(&args);
    let r = ctx.probe(&b)?[0].clone();
    ensure!(
        r["args"] == json!(args),
        "argv {} want {:?}",
        r["args"],
        args
    );
    Ok(())
}

fn args_path_lookup(ctx: &Ctx) -> TestResult {
    let mut b = ctx.bundle()?;
    b.set_args(&["probe", "report"]);
    b.process()["env"] = json!(["PATH=/usr/bin:/bin"]);
    let r = ctx.probe(&b)?[0].clone();
    ensure!(
        r["args"][0] == "probe",
        "argv[0] is {}, want \"probe\"",
        r["args"][0]
    );
    Ok(())
}

fn args_empty(ctx: &Ctx) -> TestResult {
    let mut b = ctx.bundle()?;
    b.set_args(&[]);
    let (out, mut c) = ctx.try_create(&b)?;
    if !out.success() {
        return Ok(());
    }
    // Accepted at create: then start must fail (nothing can be executed).
    c.pid()?;
    let st = ctx.rt.start(&c.id)?;
    ensure!(
        !st.success(),
        "an empty process.args was accepted by create and start"
    );
    Ok(())
}

fn env(ctx: &Ctx) -> TestResult {
    let mut b = ctx.bundle()?;
    let env = ["PATH=/bin", "A=1", "SPACES=a b  c", "EMPTY=", "EQ=x=y"];
    b.process()["env"] = json!(env);
    let r = ctx.report(&mut b)?;
    let got: Vec<&str> = r["env"]
        .as_array()
        .context("no env")?
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for e in env {
        ensure!(got.contains(&e), "{e:?} missing from environment {got:?}");
    }
    Ok(())
}

fn cwd(ctx: &Ctx) -> TestResult {
    let mut b = ctx.bundle()?;
    std::fs::create_dir_all(b.rootfs().join("var/work"))?;
    b.process()["cwd"] = json!("/var/work");
    let r = ctx.report(&mut b)?;
    ensure!(r["cwd"] == "/var/work", "cwd {} want /var/work", r["cwd"]);
    Ok(())
}

fn user_uid_gid(ctx: &Ctx) -> TestResult {
    let mut b = ctx.bundle()?;
    b.process()["user"] = json!({"uid": 1234, "gid": 2345});
    let r = ctx.report(&mut b)?;
    let uid = status(&r, "Uid")?;
    let gid = status(&r, "Gid")?;
    ensure!(
        uid.split_whitespace().all(|x| x == "1234"),
        "Uid line {uid:?}"
    );
    ensure!(
        gid.split_whitespace().all(|x| x == "2345"),
        "Gid line {gid:?}"
    );
    Ok(())
}

fn additional_gids(ctx: &Ctx) -> TestResult {
    let mut b = ctx.bundle()?;
    b.process()["user"] = json!({"uid": 1234, "gid": 2345, "additionalGids": [3001, 3002, 3003]});
    let r = ctx.report(&mut b)?;
    let groups = status(&r, "Groups")?;
    let mut got: Vec<&str> = groups.split_whitespace().collect();
    got.sort();
    got.retain(|g| *g != "2345");
    ensure!(got == ["3001", "3002", "3003"], "Groups line {groups:?}");
    Ok(())
}

fn umask(ctx: &Ctx) -> TestResult {
    let mut b = ctx.bundle()?;
    b.process()["user"] = json!({"uid": 0, "gid": 0, "umask": 0o027});
    let r = ctx.report(&mut b)?;
    let m = status(&r, "Umask")?;
    ensure!(m == "0027", "Umask {m:?}, want 0027");
    Ok(())
}

fn rlimits(ctx: &Ctx) -> TestResult {
    let mut b = ctx.bundle()?;
    b.process()["rlimits"] = json!([
        {"type": "RLIMIT_NOFILE", "soft": 123, "hard": 456},
        {"type": "RLIMIT_CORE", "soft": 0, "hard": 4096},
        {"type": "RLIMIT_NPROC", "soft": 1000, "hard": 2000},
        {"type": "RLIMIT_MSGQUEUE", "soft": 8192, "hard": 16384},
    ]);
    let r = ctx.report(&mut b)?;
    for (name, soft, hard) in [
        ("RLIMIT_NOFILE", 123u64, 456u64),
        ("RLIMIT_CORE", 0, 4096),
        ("RLIMIT_NPROC", 1000, 2000),
        ("RLIMIT_MSGQUEUE", 8192, 16384),
    ] {
        let got = &r["rlimits"][name];
        ensure!(
            got["soft"] == json!(soft) && got["hard"] == json!(hard),
            "{name}: got {got}, want soft {soft} hard {hard}"
        );
    }
    Ok(())
}

fn rlimits_invalid(ctx: &Ctx) -> TestResult {
    let mut b = ctx.bundle()?;
    b.process()["rlimits"] = json!([{"type": "RLIMIT_NOT_A_LIMIT", "soft": 1, "hard": 1}]);
    let (out, _c) = ctx.try_create(&b)?;
    ensure!(!out.success(), "create accepted an unknown rlimit type");
    Ok(())
}

fn rlimits_duplicate(ctx: &Ctx) -> TestResult {
    let mut b = ctx.bundle()?;
    b.process()["rlimits"] = json!([
        // Decreasing values, so applying both in order would succeed without privileges:
        // only a duplicate check can make create fail.
        {"type": "RLIMIT_NOFILE", "soft": 200, "hard": 200},
        {"type": "RLIMIT_NOFILE", "soft": 100, "hard": 100},
    ]);
    let (out, _c) = ctx.try_create(&b)?;
    ensure!(!out.success(), "create accepted duplicated rlimit types");
    Ok(())
}

fn caps_root(ctx: &Ctx) -> TestResult {
    let mut b = ctx.bundle()?;
    let set = [
        "CAP_CHOWN",
        "CAP_KILL",
        "CAP_NET_BIND_SERVICE",
        "CAP_SYS_CHROOT",
    ];
    b.process()["capabilities"] = json!({"bounding": set, "effective": set, "permitted": set});
    let r = ctx.report(&mut b)?;
    check_caps(&r, "CapBnd", &set)?;
    check_caps(&r, "CapPrm", &set)?;
    check_caps(&r, "CapEff", &set)?;
    Ok(())
}

fn caps_ambient(ctx: &Ctx) -> TestResult {
    let mut b = ctx.bundle()?;
    let amb = ["CAP_KILL", "CAP_NET_BIND_SERVICE"];
    let prm = ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"];
    b.process()["user"] = json!({"uid": 1000, "gid": 1000});
    b.process()["capabilities"] = json!({
        "bounding": prm, "effective": prm, "permitted": prm, "inheritable": amb, "ambient": amb
    });
    let r = ctx.report(&mut b)?;
    check_caps(&r, "CapAmb", &amb)?;
    check_caps(&r, "CapInh", &amb)?;
    check_caps(&r, "CapBnd", &prm)?;
    // execve as non-root keeps only the ambient set in permitted/effective.
    check_caps(&r, "CapPrm", &amb)?;
    check_caps(&r, "CapEff", &amb)?;
    Ok(())
}

fn caps_bounding(ctx: &Ctx) -> TestResult {
    let mut b = ctx.bundle()?;
    b.process()["capabilities"] =
        json!({"bounding": ["CAP_CHOWN"], "effective": ["CAP_CHOWN"], "permitted": ["CAP_CHOWN"]});
    let r = ctx.report(&mut b)?;
    check_caps(&r, "CapBnd", &["CAP_CHOWN"])?;
    check_caps(&r, "CapEff", &["CAP_CHOWN"])?;
    Ok(())
}

fn caps_unknown(ctx: &Ctx) -> TestResult {
    let mut b = ctx.bundle()?;
    let set = ["CAP_CHOWN", "CAP_NOT_A_REAL_CAPABILITY"];
    b.process()["capabilities"] = json!({"bounding": set, "effective": set, "permitted": set});
    let r = ctx.report(&mut b)?;
    check_caps(&r, "CapBnd", &["CAP_CHOWN"])?;
    Ok(())
}

fn nnp(ctx: &Ctx, on: bool) -> TestResult {
    let mut b = ctx.bundle()?;
    b.process()["noNewPrivileges"] = json!(on);
    let r = ctx.report(&mut b)?;
    let v = status(&r, "NoNewPrivs")?;
    let want = if on { "1" } else { "0" };
    ensure!(v == want, "NoNewPrivs {v}, want {want}");
    Ok(())
}

fn nnp_true(ctx: &Ctx) -> TestResult {
    nnp(ctx, true)
}

fn nnp_false(ctx: &Ctx) -> TestResult {
    nnp(ctx, false)
}

fn oom_score_adj(ctx: &Ctx) -> TestResult {
    let mut b = ctx.bundle()?;
    b.process()["oomScoreAdj"] = json!(123);
    let r = ctx.report(&mut b)?;
    let v = r["oom_score_adj"].as_str().unwrap_or("").trim().to_string();
    ensure!(v == "123", "oom_score_adj {v:?}, want 123");
    Ok(())
}

/// Runs the probe with a terminal and returns its report, read from the pty master.
fn terminal_report(ctx: &Ctx, size: Option<(u32, u32)>) -> anyhow::Result<Value> {
    let mut b = ctx.bundle()?;
    b.process()["terminal"] = json!(true);
    if let Some((h, w)) = size {
        b.process()["consoleSize"] = json!({"height": h, "width": w});
    }
    b.set_args(&["/bin/probe", "report", ";", "stat", "/dev/console"]);
    let (mut c, console) = ctx.create_with_console(&b)?;
    c.start()?;
    let exit = c.wait()?;
    let out = match console.join() {
        Ok(r) => r?.output,
        Err(_) => bail!("console reader thread failed"),
    };
    ensure!(
        exit == crate::suite::Exit::Code(0),
        "probe ended with {exit:?}: {out:?}"
    );
    let v = crate::suite::parse_probe(&out)?;
    ensure!(v.0.len() == 2, "probe output {v:?}");
    let mut r = v[0].clone();
    r["console_stat"] = v[1]["/dev/console"].clone();
    Ok(r)
}

fn terminal(ctx: &Ctx) -> TestResult {
    let r = terminal_report(ctx, None)?;
    for fd in 0..3 {
        ensure!(
            r["tty"][format!("isatty{fd}")] == true,
            "fd {fd} is not a terminal: {}",
            r["tty"]
        );
    }
    Ok(())
}

fn console_size(ctx: &Ctx) -> TestResult {
    let r = terminal_report(ctx, Some((33, 111)))?;
    ensure!(
        r["tty"]["rows"] == 33 && r["tty"]["cols"] == 111,
        "window size {}x{}, want 33x111",
        r["tty"]["rows"],
        r["tty"]["cols"]
    );
    Ok(())
}

fn no_terminal(ctx: &Ctx) -> TestResult {
    let mut b = ctx.bundle()?;
    let r = ctx.report(&mut b)?;
    ensure!(
        r["tty"]["isatty0"] == false && r["tty"]["isatty1"] == false,
        "got a terminal: {}",
        r["tty"]
    );
    Ok(())
}

fn apparmor(ctx: &Ctx) -> TestResult {
    if !ctx.host.apparmor {
        crate::skip!("AppArmor is not enabled on this host");
    }
    let mut b = ctx.bundle()?;
    b.process()["apparmorProfile"] = json!("unconfined");
    let r = ctx.report(&mut b)?;
    let cur = r["attr_current"].as_str().unwrap_or("");
    ensure!(cur.contains("unconfined"), "attr/current {cur:?}");
    Ok(())
}

fn selinux(ctx: &Ctx) -> TestResult {
    if !ctx.host.selinux {
        crate::skip!("SELinux is not enabled on this host");
    }
    bail!("SELinux label check not implemented for SELinux hosts")
}
