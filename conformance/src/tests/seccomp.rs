//! config-linux.md#seccomp: actions, errnoRet, argument conditions, architectures and the
//! notify listener.
//!
//! Syscalls are issued raw by number from the probe (x86_64 ABI), so the test does not depend
//! on what libc wraps: getpid 39, getppid 110, getpgid 121, getpriority 140; 32-bit getpid 20.

use crate::bundle::Bundle;
use crate::suite::{Ctx, Exit, Test, TestResult};
use anyhow::{bail, ensure, Context};
use serde_json::{json, Value};

const GETPID: &str = "39";
const GETPPID: &str = "110";
const GETPGID: &str = "121";
const GETPRIORITY: &str = "140";

pub fn tests() -> Vec<Test> {
    vec![
        Test {
            name: "seccomp.errno_with_errno_ret",
            clause: "config-linux.md#seccomp: errnoRet (uint, OPTIONAL) the errno return code to use for SCMP_ACT_ERRNO",
            run: errno_ret,
        },
        Test {
            name: "seccomp.errno_default_eperm",
            clause: "config-linux.md#seccomp: errnoRet ... If not specified then its default value is EPERM",
            run: errno_default,
        },
        Test {
            name: "seccomp.action_kill",
            clause: "config-linux.md#seccomp: action SCMP_ACT_KILL",
            run: |ctx| killed_by(ctx, "SCMP_ACT_KILL"),
        },
        Test {
            name: "seccomp.action_kill_process",
            clause: "config-linux.md#seccomp: action SCMP_ACT_KILL_PROCESS",
            run: |ctx| killed_by(ctx, "SCMP_ACT_KILL_PROCESS"),
        },
        Test {
            name: "seccomp.action_kill_thread",
            clause: "config-linux.md#seccomp: action SCMP_ACT_KILL_THREAD",
            run: |ctx| killed_by(ctx, "SCMP_ACT_KILL_THREAD"),
        },
        Test {
            name: "seccomp.action_trap",
            clause: "config-linux.md#seccomp: action SCMP_ACT_TRAP (SIGSYS)",
            run: |ctx| killed_by(ctx, "SCMP_ACT_TRAP"),
        },
        Test {
            name: "seccomp.action_trace_without_tracer",
            clause: "config-linux.md#seccomp: action SCMP_ACT_TRACE (no tracer: the syscall fails with ENOSYS)",
            run: trace,
        },
        Test {
            name: "seccomp.action_log",
            clause: "config-linux.md#seccomp: action SCMP_ACT_LOG (the syscall is allowed and logged)",
            run: log,
        },
        Test {
            name: "seccomp.default_action",
            clause: "config-linux.md#seccomp: defaultAction (string, REQUIRED) the default action for seccomp",
            run: default_action,
        },
        Test {
            name: "seccomp.multiple_names",
            clause: "config-linux.md#seccomp: names (array of strings, REQUIRED) the names of the syscalls",
            run: multiple_names,
        },
        Test {
            name: "seccomp.args_eq",
            clause: "config-linux.md#seccomp: args: index, value, op SCMP_CMP_EQ",
            run: args_eq,
        },
        Test {
            name: "seccomp.args_all_must_match",
            clause: "config-linux.md#seccomp: args (array of objects, OPTIONAL) the specific syscall in seccomp (all conditions of an entry apply together)",
            run: args_and,
        },
        Test {
            name: "seccomp.args_masked_eq_and_gt",
            clause: "config-linux.md#seccomp: op SCMP_CMP_MASKED_EQ (valueTwo) and SCMP_CMP_GT",
            run: args_masked_gt,
        },
        Test {
            name: "seccomp.architectures_x86",
            clause: "config-linux.md#seccomp: architectures (array of strings, OPTIONAL) the architecture used for system calls (rules apply to SCMP_ARCH_X86 calls too)",
            run: arch_x86,
        },
        Test {
            name: "seccomp.notify_listener",
            clause: "config-linux.md#seccomp: listenerPath: the runtime sends the container process state with the seccomp fd (fds: [\"seccompFd\"]) over SCM_RIGHTS",
            run: notify,
        },
    ]
}

fn with_rules(b: &mut Bundle, default: &str, rules: Value) {
    b.linux()["seccomp"] = json!({
        "defaultAction": default,
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": rules
    });
}

/// Runs `probe syscall ...` commands and returns their {ret, errno} results.
fn calls(ctx: &Ctx, b: &mut Bundle, calls: &[&[&str]]) -> anyhow::Result<crate::suite::Probed> {
    let mut args: Vec<&str> = Vec::new();
    for c in calls {
        if !args.is_empty() {
            args.push(";");
        }
        args.extend_from_slice(c);
    }
    ctx.probe_cmd(b, &args)
}

fn expect_errno(v: &Value, errno: i64, what: &str) -> anyhow::Result<()> {
    ensure!(
        v["ret"] == -1 && v["errno"] == errno,
        "{what}: got {v}, want errno {errno}"
    );
    Ok(())
}

fn expect_success(v: &Value, what: &str) -> anyhow::Result<()> {
    ensure!(
        v["ret"].as_i64().unwrap_or(-1) >= 0,
        "{what}: got {v}, want success"
    );
    Ok(())
}

fn errno_ret(ctx: &Ctx) -> TestResult {
    let mut b = ctx.bundle()?;
    with_rules(
        &mut b,
        "SCMP_ACT_ALLOW",
        json!([{"names": ["getppid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 42}]),
    );
    let r = calls(ctx, &mut b, &[&["syscall", GETPPID], &["syscall", GETPID]])?;
    expect_errno(&r[0], 42, "getppid")?;
    expect_success(&r[1], "getpid (default action allow)")?;
    Ok(())
}

fn errno_default(ctx: &Ctx) -> TestResult {
    let mut b = ctx.bundle()?;
    with_rules(
        &mut b,
        "SCMP_ACT_ALLOW",
        json!([{"names": ["getppid"], "action": "SCMP_ACT_ERRNO"}]),
    );
    let r = calls(ctx, &mut b, &[&["syscall", GETPPID]])?;
    expect_errno(&r[0], libc::EPERM as i64, "getppid")
}

fn killed_by(ctx: &Ctx, action: &str) -> TestResult {
    let mut b = ctx.bundle()?;
    with_rules(
        &mut b,
        "SCMP_ACT_ALLOW",
        json!([{"names": ["getppid"], "action": action}]),
    );
    b.set_args(&["/bin/probe", "syscall", GETPPID]);
    let fin = ctx.run(&b)?;
    ensure!(
        fin.exit == Exit::Signal(libc::SIGSYS),
        "process ended with {:?}, want SIGSYS; stdout {:?}",
        fin.exit,
        fin.stdout
    );
    Ok(())
}

fn trace(ctx: &Ctx) -> TestResult {
    let mut b = ctx.bundle()?;
    with_rules(
        &mut b,
        "SCMP_ACT_ALLOW",
        json!([{"names": ["getppid"], "action": "SCMP_ACT_TRACE"}]),
    );
    let r = calls(ctx, &mut b, &[&["syscall", GETPPID]])?;
    expect_errno(
        &r[0],
        libc::ENOSYS as i64,
        "getppid under SCMP_ACT_TRACE without a tracer",
    )
}

fn log(ctx: &Ctx) -> TestResult {
    let mut b = ctx.bundle()?;
    with_rules(
        &mut b,
        "SCMP_ACT_ALLOW",
        json!([{"names": ["getppid"], "action": "SCMP_ACT_LOG"}]),
    );
    let r = calls(ctx, &mut b, &[&["syscall", GETPPID], &["report"]])?;
    expect_success(&r[0], "getppid under SCMP_ACT_LOG")?;
    let mode = super::util::status(&r[1], "Seccomp")?;
    ensure!(mode == "2", "Seccomp mode {mode}, want 2 (filter)");
    Ok(())
}

fn default_action(ctx: &Ctx) -> TestResult {
    // A restrictive default would also hit whatever the runtime's final execve and the probe's
    // startup need, which differs per runtime; so a non-ALLOW but permissive default (LOG) is
    // used: unlisted calls must succeed, listed ones get their rule.
    let mut b = ctx.bundle()?;
    with_rules(
        &mut b,
        "SCMP_ACT_LOG",
        json!([{"names": ["getppid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 43}]),
    );
    let r = calls(ctx, &mut b, &[&["syscall", GETPPID], &["syscall", GETPID]])?;
    expect_errno(&r[0], 43, "getppid")?;
    expect_success(&r[1], "getpid under defaultAction SCMP_ACT_LOG")?;
    Ok(())
}

fn multiple_names(ctx: &Ctx) -> TestResult {
    let mut b = ctx.bundle()?;
    with_rules(
        &mut b,
        "SCMP_ACT_ALLOW",
        json!([{"names": ["getppid", "getpgid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 44}]),
    );
    let r = calls(
        ctx,
        &mut b,
        &[&["syscall", GETPPID], &["syscall", GETPGID, "0"]],
    )?;
    expect_errno(&r[0], 44, "getppid")?;
    expect_errno(&r[1], 44, "getpgid")?;
    Ok(())
}

fn args_eq(ctx: &Ctx) -> TestResult {
    let mut b = ctx.bundle()?;
    with_rules(
        &mut b,
        "SCMP_ACT_ALLOW",
        json!([{"names": ["getpgid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 77,
        "args": [{"index": 0, "value": 12345, "op": "SCMP_CMP_EQ"}]}]),
    );
    let r = calls(
        ctx,
        &mut b,
        &[&["syscall", GETPGID, "12345"], &["syscall", GETPGID, "0"]],
    )?;
    expect_errno(&r[0], 77, "getpgid(12345)")?;
    expect_success(&r[1], "getpgid(0)")?;
    Ok(())
}

fn args_and(ctx: &Ctx) -> TestResult {
    let mut b = ctx.bundle()?;
    with_rules(
        &mut b,
        "SCMP_ACT_ALLOW",
        json!([{"names": ["getpriority"], "action": "SCMP_ACT_ERRNO", "errnoRet": 78,
        "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"}, {"index": 1, "value": 4242, "op": "SCMP_CMP_EQ"}]}]),
    );
    let r = calls(
        ctx,
        &mut b,
        &[
            &["syscall", GETPRIORITY, "0", "4242"],
            &["syscall", GETPRIORITY, "1", "4242"],
            &["syscall", GETPRIORITY, "0", "0"],
        ],
    )?;
    expect_errno(&r[0], 78, "getpriority(0, 4242): both conditions match")?;
    expect_errno(
        &r[1],
        libc::ESRCH as i64,
        "getpriority(1, 4242): only one condition matches",
    )?;
    expect_success(&r[2], "getpriority(0, 0)")?;
    Ok(())
}

fn args_masked_gt(ctx: &Ctx) -> TestResult {
    let mut b = ctx.bundle()?;
    with_rules(
        &mut b,
        "SCMP_ACT_ALLOW",
        json!([
            {"names": ["getpgid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 79,
             "args": [{"index": 0, "value": 4096, "valueTwo": 4096, "op": "SCMP_CMP_MASKED_EQ"}]},
            {"names": ["getpriority"], "action": "SCMP_ACT_ERRNO", "errnoRet": 80,
             "args": [{"index": 1, "value": 50000, "op": "SCMP_CMP_GT"}]}
        ]),
    );
    let r = calls(
        ctx,
        &mut b,
        &[
            &["syscall", GETPGID, "4097"],
            &["syscall", GETPGID, "4095"],
            &["syscall", GETPRIORITY, "0", "50001"],
            &["syscall", GETPRIORITY, "0", "0"],
        ],
    )?;
    expect_errno(&r[0], 79, "getpgid(0x1001) with mask 0x1000 == 0x1000")?;
    expect_errno(
        &r[1],
        libc::ESRCH as i64,
        "getpgid(0x0fff) outside the mask",
    )?;
    expect_errno(&r[2], 80, "getpriority(0, 50001) > 50000")?;
    expect_success(&r[3], "getpriority(0, 0)")?;
    Ok(())
}

fn arch_x86(ctx: &Ctx) -> TestResult {
    let mut b = ctx.bundle()?;
    with_rules(
        &mut b,
        "SCMP_ACT_ALLOW",
        json!([{"names": ["getpid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 55}]),
    );
    let r = calls(ctx, &mut b, &[&["syscall", GETPID], &["syscall32", "20"]])?;
    expect_errno(&r[0], 55, "x86_64 getpid")?;
    expect_errno(&r[1], 55, "i386 getpid through int 0x80")?;
    Ok(())
}

fn notify(ctx: &Ctx) -> TestResult {
    let mut b = ctx.bundle()?;
    let sock = b.dir.join("seccomp.sock");
    b.linux()["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64"],
        "listenerPath": sock,
        "listenerMetadata": "conformance-metadata",
        "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_NOTIFY"}]
    });
    b.set_args(&["/bin/probe", "syscall", GETPPID]);
    let listener = crate::console::receive_one(&sock, ctx.rt.timeout)?;
    let mut c = ctx.create(&b)?;
    // Runtimes may send the fd during create (runc) or when the filter is loaded at start
    // (crun); the notified syscall waits for us either way.
    c.start()?;
    let got = match listener.join() {
        Ok(r) => r.context("seccomp listener")?,
        Err(_) => bail!("listener thread failed"),
    };
    let msg: Value = serde_json::from_slice(&got.data).with_context(|| {
        format!(
            "listener payload is not JSON: {:?}",
            String::from_utf8_lossy(&got.data)
        )
    })?;
    ensure!(
        got.fds.len() == 1,
        "{} fds received, want 1 (seccompFd)",
        got.fds.len()
    );
    ensure!(msg["fds"] == json!(["seccompFd"]), "fds {}", msg["fds"]);
    ensure!(
        msg["metadata"] == "conformance-metadata",
        "metadata {}",
        msg["metadata"]
    );
    ensure!(msg["state"]["id"] == json!(b.id), "state {}", msg["state"]);
    ensure!(msg["pid"].as_i64().unwrap_or(0) > 0, "pid {}", msg["pid"]);
    // With the notify fd closed, the notified syscall fails with ENOSYS.
    drop(got);
    let exit = c.wait()?;
    ensure!(exit == Exit::Code(0), "probe ended with {exit:?}");
    let r = crate::suite::parse_probe(&c.stdout())?;
    expect_errno(&r[0], libc::ENOSYS as i64, "getppid with the listener gone")
}
