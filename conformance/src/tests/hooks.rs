//! config.md#posix-platform-hooks and runtime.md#lifecycle: kinds, order, namespaces, the state
//! on stdin, args/env, timeouts and what a failing hook does.

use crate::bundle::Bundle;
use crate::suite::{Ctx, Test, TestResult};
use anyhow::{ensure, Context};
use serde_json::{json, Value};
use std::time::Instant;

pub fn tests() -> Vec<Test> {
    vec![
        Test {
            name: "hooks.order_all_kinds",
            clause: "runtime.md#lifecycle steps 4-14: prestart, createRuntime, createContainer (create); startContainer, poststart (start); poststop (delete)",
            run: order,
        },
        Test {
            name: "hooks.same_kind_listed_order",
            clause: "config.md#posix-platform-hooks: Hooks MUST be called in the listed order",
            run: same_kind_order,
        },
        Test {
            name: "hooks.state_on_stdin",
            clause: "config.md#posix-platform-hooks: The state of the container MUST be passed to hooks over stdin",
            run: state_stdin,
        },
        Test {
            name: "hooks.state_on_stdin_container_hooks",
            clause: "config.md#posix-platform-hooks: the state passed to createContainer/startContainer hooks; runtime.md#state: pid is the ID of the container process, as seen by the host",
            run: state_stdin_container,
        },
        Test {
            name: "hooks.args_and_env",
            clause: "config.md#posix-platform-hooks: args (array of strings, OPTIONAL) with the same semantics as execv's argv; env with the same semantics as environ",
            run: args_env,
        },
        Test {
            name: "hooks.runtime_namespace_kinds",
            clause: "config.md#posix-platform-hooks: prestart, createRuntime, poststart and poststop hooks MUST be called in the runtime namespace",
            run: create_runtime_ns,
        },
        Test {
            name: "hooks.create_container_in_container_namespace",
            clause: "config.md#createcontainer-hooks: The createContainer hooks MUST be called ... in the container namespace",
            run: create_container_ns,
        },
        Test {
            name: "hooks.start_container_in_container",
            clause: "config.md#startcontainer-hooks: The startContainer hooks MUST be called ... in the container namespace; the path MUST resolve in the container namespace",
            run: start_container_ns,
        },
        Test {
            name: "hooks.prestart_failure",
            clause: "runtime.md#lifecycle: If any prestart hook fails, the runtime MUST generate an error, stop the container",
            run: prestart_fail,
        },
        Test {
            name: "hooks.create_runtime_failure",
            clause: "runtime.md#lifecycle step 5: If any createRuntime hook fails, the runtime MUST generate an error, stop the container",
            run: create_runtime_fail,
        },
        Test {
            name: "hooks.create_container_failure",
            clause: "runtime.md#lifecycle step 6: If any createContainer hook fails, the runtime MUST generate an error, stop the container",
            run: create_container_fail,
        },
        Test {
            name: "hooks.start_container_failure_stops",
            clause: "runtime.md#lifecycle step 8: If any startContainer hook fails, the runtime MUST ... stop the container (the user program does not run)",
            run: start_container_fail_stops,
        },
        Test {
            name: "hooks.start_container_failure_error",
            clause: "runtime.md#lifecycle step 8: If any startContainer hook fails, the runtime MUST generate an error",
            run: start_container_fail_error,
        },
        Test {
            name: "hooks.poststart_failure_warns",
            clause: "runtime.md#lifecycle step 10: If any poststart hook fails, the runtime MUST log a warning, but the remaining hooks and lifecycle continue as if the hook had succeeded",
            run: poststart_fail,
        },
        Test {
            name: "hooks.poststop_failure_warns",
            clause: "runtime.md#lifecycle step 14: If any poststop hook fails, the runtime MUST log a warning, but the remaining hooks and lifecycle continue as if the hook had succeeded",
            run: poststop_fail,
        },
        Test {
            name: "hooks.timeout",
            clause: "config.md#posix-platform-hooks: timeout (int, OPTIONAL) is the number of seconds before aborting the hook",
            run: timeout,
        },
    ]
}

/// A hook run from the host's /bin/busybox: logs its name, saves its stdin, then runs `extra`.
fn host_hook(b: &Bundle, name: &str, extra: &str) -> Value {
    let log = b.shared_file("hooks.log");
    let state = b.shared_file(format!("{name}.json").as_str());
    json!({
        "path": "/bin/busybox",
        "args": ["sh", "-c", format!("echo {name} >> {}; cat > {}; {extra}", log.display(), state.display())]
    })
}

/// A hook resolved inside the container (startContainer): same, through /shared.
fn container_hook(name: &str, extra: &str) -> Value {
    json!({
        "path": "/bin/busybox",
        "args": ["sh", "-c", format!("echo {name} >> /shared/hooks.log; cat > /shared/{name}.json; {extra}")]
    })
}

fn log(b: &Bundle) -> Vec<String> {
    std::fs::read_to_string(b.shared_file("hooks.log"))
        .unwrap_or_default()
        .lines()
        .map(String::from)
        .collect()
}

fn all_hooks(b: &mut Bundle) {
    b.config["hooks"] = json!({
        "prestart": [host_hook(b, "prestart", "")],
        "createRuntime": [host_hook(b, "createRuntime", "")],
        "createContainer": [host_hook(b, "createContainer", "")],
        "startContainer": [container_hook("startContainer", "")],
        "poststart": [host_hook(b, "poststart", "")],
        "poststop": [host_hook(b, "poststop", "")],
    });
}

fn order(ctx: &Ctx) -> TestResult {
    let mut b = ctx.bundle()?;
    all_hooks(&mut b);
    b.set_shell("echo process >> /shared/hooks.log");
    let mut c = ctx.create(&b)?;
    let after_create = log(&b);
    ensure!(
        after_create == ["prestart", "createRuntime", "createContainer"],
        "after create: {after_create:?}"
    );
    c.start()?;
    let after_start = log(&b);
    // poststart runs after the process was started; the process may or may not have logged.
    let without_proc: Vec<&String> = after_start.iter().filter(|l| *l != "process").collect();
    ensure!(
        without_proc
            == [
                "prestart",
                "createRuntime",
                "createContainer",
                "startContainer",
                "poststart"
            ],
        "after start: {after_start:?}"
    );
    let sc = after_start.iter().position(|l| l == "startContainer");
    let pr = after_start.iter().position(|l| l == "process");
    if let (Some(sc), Some(pr)) = (sc, pr) {
        ensure!(
            sc < pr,
            "startContainer ran after the process: {after_start:?}"
        );
    }
    c.wait()?;
    c.destroy()?;
    let end = log(&b);
    ensure!(
        end.last().map(String::as_str) == Some("poststop"),
        "after delete: {end:?}"
    );
    ensure!(
        end.iter().filter(|l| *l == "poststop").count() == 1,
        "poststop ran more than once: {end:?}"
    );
    Ok(())
}

fn same_kind_order(ctx: &Ctx) -> TestResult {
    let mut b = ctx.bundle()?;
    b.set_args(&["/bin/true"]);
    b.config["hooks"] = json!({
        "createRuntime": [host_hook(&b, "cr1", ""), host_hook(&b, "cr2", ""), host_hook(&b, "cr3", "")],
        "poststop": [host_hook(&b, "ps1", ""), host_hook(&b, "ps2", "")],
    });
    ctx.run(&b)?;
    let l = log(&b);
    ensure!(
        l == ["cr1", "cr2", "cr3", "ps1", "ps2"],
        "hooks ran as {l:?}"
    );
    Ok(())
}

fn read_state(b: &Bundle, name: &str) -> anyhow::Result<Value> {
    let text = std::fs::read_to_string(b.shared_file(&format!("{name}.json")))
        .with_context(|| format!("{name} hook left no state"))?;
    serde_json::from_str(&text).with_context(|| format!("{name} hook stdin is not JSON: {text:?}"))
}

/// Runs a container with every hook kind and checks the state each of `names` received.
fn check_hook_states(ctx: &Ctx, names: &[&str]) -> TestResult {
    let mut b = ctx.bundle()?;
    all_hooks(&mut b);
    b.set_args(&["/bin/true"]);
    let mut c = ctx.create(&b)?;
    let pid = c.pid()?;
    c.start()?;
    c.wait()?;
    c.destroy()?;
    for &name in names {
        let st = read_state(&b, name)?;
        ensure!(st["id"] == json!(b.id), "{name}: id {}", st["id"]);
        ensure!(
            st["ociVersion"].is_string(),
            "{name}: no ociVersion in {st}"
        );
        ensure!(st["status"].is_string(), "{name}: no status in {st}");
        let bundle = st["bundle"]
            .as_str()
            .with_context(|| format!("{name}: no bundle in {st}"))?;
        ensure!(
            std::path::Path::new(bundle).canonicalize()? == b.dir.canonicalize()?,
            "{name}: bundle {bundle}"
        );
        if name != "poststop" {
            ensure!(
                st["pid"] == json!(pid),
                "{name}: pid {} want {pid}",
                st["pid"]
            );
        }
        if name == "poststop" {
            ensure!(
                st["status"] == "stopped",
                "poststop status {}",
                st["status"]
            );
        }
    }
    Ok(())
}

fn state_stdin(ctx: &Ctx) -> TestResult {
    check_hook_states(ctx, &["prestart", "createRuntime", "poststart", "poststop"])
}

fn state_stdin_container(ctx: &Ctx) -> TestResult {
    check_hook_states(ctx, &["createContainer", "startContainer"])
}

fn args_env(ctx: &Ctx) -> TestResult {
    let mut b = ctx.bundle()?;
    b.set_args(&["/bin/true"]);
    let out = b.shared_file("argsenv");
    b.config["hooks"] = json!({"createRuntime": [{
        "path": "/bin/busybox",
        "args": ["sh", "-c", format!("echo \"$0|$1|$HOOK_VAR\" > {}", out.display()), "zero", "one"],
        "env": ["HOOK_VAR=hook value", "PATH=/bin"]
    }]});
    ctx.run(&b)?;
    let got = std::fs::read_to_string(&out).context("hook did not run")?;
    ensure!(got.trim() == "zero|one|hook value", "hook saw {got:?}");
    Ok(())
}

fn create_runtime_ns(ctx: &Ctx) -> TestResult {
    let mut b = ctx.bundle()?;
    b.set_args(&["/bin/true"]);
    let kinds = ["prestart", "createRuntime", "poststart", "poststop"];
    let mut hooks = serde_json::Map::new();
    for k in kinds {
        let out = b.shared_file(&format!("ns-{k}"));
        let script = format!(
            "readlink /proc/self/ns/mnt > {0}; readlink /proc/self/ns/pid >> {0}",
            out.display()
        );
        hooks.insert(
            k.to_string(),
            json!([{"path": "/bin/busybox", "args": ["sh", "-c", script]}]),
        );
    }
    b.config["hooks"] = Value::Object(hooks);
    ctx.run(&b)?;
    let host = format!(
        "{}\n{}",
        super::util::host_ns("mnt")?,
        super::util::host_ns("pid")?
    );
    for k in kinds {
        let got = std::fs::read_to_string(b.shared_file(&format!("ns-{k}")))
            .with_context(|| format!("{k} hook did not run"))?;
        ensure!(
            got.trim() == host,
            "{k} ran in {got:?}, the runtime namespace is {host:?}"
        );
    }
    Ok(())
}

fn create_container_ns(ctx: &Ctx) -> TestResult {
    let mut b = ctx.bundle()?;
    b.set_args(&["/bin/true"]);
    let out = b.shared_file("ns");
    b.config["hooks"] = json!({"createContainer": [{
        "path": "/bin/busybox",
        "args": ["sh", "-c", format!("readlink /proc/self/ns/mnt > {0}; readlink /proc/self/ns/uts >> {0}", out.display())]
    }]});
    let mut c = ctx.create(&b)?;
    let pid = c.pid()?;
    let want = format!(
        "{}\n{}",
        super::util::ns_of_pid(pid, "mnt")?,
        super::util::ns_of_pid(pid, "uts")?
    );
    let got = std::fs::read_to_string(&out).context("hook did not run")?;
    ensure!(
        got.trim() == want,
        "createContainer ran in {got:?}, container has {want:?}"
    );
    Ok(())
}

fn start_container_ns(ctx: &Ctx) -> TestResult {
    let mut b = ctx.bundle()?;
    b.set_args(&["/bin/true"]);
    // Only the container's rootfs has this file: the path must resolve there.
    std::fs::write(b.rootfs().join("in-container"), "yes")?;
    b.config["hooks"] = json!({"startContainer": [{
        "path": "/bin/busybox",
        "args": ["sh", "-c", "hostname > /shared/sc; cat /in-container >> /shared/sc"]
    }]});
    ctx.run(&b)?;
    let got = std::fs::read_to_string(b.shared_file("sc")).context("hook did not run")?;
    ensure!(got == "conformance\nyes", "startContainer saw {got:?}");
    Ok(())
}

/// A failing hook of `kind` during create: create fails and the process never runs.
fn failing_create_hook(ctx: &Ctx, kind: &str) -> TestResult {
    let mut b = ctx.bundle()?;
    b.set_shell("touch /shared/ran");
    b.config["hooks"] = json!({kind: [{"path": "/bin/busybox", "args": ["false"]}]});
    let (out, mut c) = ctx.try_create(&b)?;
    ensure!(
        !out.success(),
        "create succeeded although a {kind} hook failed"
    );
    let _ = ctx.rt.start(&c.id);
    std::thread::sleep(std::time::Duration::from_millis(200));
    ensure!(!b.shared_file("ran").exists(), "the process ran");
    c.mark_deleted();
    let _ = ctx.rt.delete(&c.id, true);
    Ok(())
}

fn prestart_fail(ctx: &Ctx) -> TestResult {
    failing_create_hook(ctx, "prestart")
}

fn create_runtime_fail(ctx: &Ctx) -> TestResult {
    failing_create_hook(ctx, "createRuntime")
}

fn create_container_fail(ctx: &Ctx) -> TestResult {
    failing_create_hook(ctx, "createContainer")
}

/// Starts a container whose startContainer hook fails; returns whether start succeeded and
/// whether the user program ran.
fn start_with_failing_hook(ctx: &Ctx) -> anyhow::Result<(bool, bool)> {
    let mut b = ctx.bundle()?;
    b.set_shell("touch /shared/ran");
    b.config["hooks"] = json!({"startContainer": [{"path": "/bin/busybox", "args": ["false"]}]});
    let mut c = ctx.create(&b)?;
    c.pid()?;
    let out = ctx.rt.start(&c.id)?;
    std::thread::sleep(std::time::Duration::from_millis(200));
    Ok((out.success(), b.shared_file("ran").exists()))
}

fn start_container_fail_stops(ctx: &Ctx) -> TestResult {
    let (_, ran) = start_with_failing_hook(ctx)?;
    ensure!(
        !ran,
        "the user program ran although a startContainer hook failed"
    );
    Ok(())
}

fn start_container_fail_error(ctx: &Ctx) -> TestResult {
    let (ok, _) = start_with_failing_hook(ctx)?;
    ensure!(!ok, "start succeeded although a startContainer hook failed");
    Ok(())
}

fn poststart_fail(ctx: &Ctx) -> TestResult {
    let mut b = ctx.bundle()?;
    b.set_shell("touch /shared/ran; exec /bin/probe waitsig /shared/ready");
    b.config["hooks"] = json!({"poststart": [
        {"path": "/bin/busybox", "args": ["false"]},
        host_hook(&b, "second", "")
    ]});
    let mut c = ctx.create(&b)?;
    c.pid()?;
    let out = ctx.rt.start(&c.id)?;
    ensure!(
        out.success(),
        "start failed because of a poststart hook: {}",
        out.describe()
    );
    super::wait_file(&b.shared_file("ready"), ctx.rt.timeout)?;
    ensure!(
        log(&b) == ["second"],
        "the remaining poststart hook did not run: {:?}",
        log(&b)
    );
    ensure!(
        c.status()? == "running",
        "container not running after a poststart failure"
    );
    Ok(())
}

fn poststop_fail(ctx: &Ctx) -> TestResult {
    let mut b = ctx.bundle()?;
    b.set_args(&["/bin/true"]);
    b.config["hooks"] = json!({"poststop": [
        {"path": "/bin/busybox", "args": ["false"]},
        host_hook(&b, "second", "")
    ]});
    let mut c = ctx.create(&b)?;
    c.start()?;
    c.wait()?;
    let out = ctx.rt.delete(&c.id, false)?;
    ensure!(
        out.success(),
        "delete failed because of a poststop hook: {}",
        out.describe()
    );
    c.mark_deleted();
    ensure!(
        log(&b) == ["second"],
        "the remaining poststop hook did not run: {:?}",
        log(&b)
    );
    Ok(())
}

fn timeout(ctx: &Ctx) -> TestResult {
    let mut b = ctx.bundle()?;
    b.config["hooks"] = json!({"createRuntime": [
        {"path": "/bin/busybox", "args": ["sleep", "30"], "timeout": 1}
    ]});
    let t0 = Instant::now();
    let (out, _c) = ctx.try_create(&b)?;
    let took = t0.elapsed();
    ensure!(!out.timed_out, "create hung on a hook with a 1s timeout");
    ensure!(
        !out.success(),
        "create succeeded although the hook timed out"
    );
    ensure!(
        took.as_secs() < 8,
        "create took {took:?} for a 1s hook timeout"
    );
    Ok(())
}
