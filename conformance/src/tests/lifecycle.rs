//! runtime.md: the lifecycle and the operations (state, create, start, kill, delete).

use super::wait_file;
use crate::suite::{Ctx, Test, TestResult};
use anyhow::{bail, ensure, Context};
use serde_json::json;

pub fn tests() -> Vec<Test> {
    vec![
        Test {
            name: "lifecycle.create_does_not_run_process",
            clause: "runtime.md#lifecycle step 2: the user-specified program MUST NOT be run at this time",
            run: create_does_not_run,
        },
        Test {
            name: "lifecycle.start_runs_process",
            clause: "runtime.md#start: This operation MUST run the user-specified program as specified by process",
            run: start_runs,
        },
        Test {
            name: "lifecycle.config_changes_after_create_ignored",
            clause: "runtime.md#create: Any changes made to the config.json file after this operation will not have an effect on the container",
            run: config_changes_ignored,
        },
        Test {
            name: "lifecycle.kill_created_container",
            clause: "runtime.md#kill: a signal may be sent to a container that is created or running",
            run: kill_created,
        },
        Test {
            name: "lifecycle.missing_program_error",
            clause: "runtime.md#lifecycle step 9: the runtime MUST run the user-specified program; a program that cannot be executed is an error (at create or start)",
            run: missing_program,
        },
        Test {
            name: "create.duplicate_id_rejected",
            clause: "runtime.md#create: If the ID provided is not unique ... MUST generate an error and a new container MUST NOT be created",
            run: duplicate_id,
        },
        Test {
            name: "create.missing_config_rejected",
            clause: "runtime.md#lifecycle step 2: If the runtime is unable to create the environment specified in the config.json, it MUST generate an error",
            run: missing_config,
        },
        Test {
            name: "create.error_leaves_no_container",
            clause: "runtime.md#errors: generating an error MUST leave the state of the environment as if the operation were never attempted",
            run: error_leaves_nothing,
        },
        Test {
            name: "state.unknown_id_error",
            clause: "runtime.md#query-state: Attempting to query a container that does not exist MUST generate an error",
            run: state_unknown,
        },
        Test {
            name: "start.unknown_id_error",
            clause: "runtime.md#start: Attempting to start a container that does not exist MUST generate an error",
            run: start_unknown,
        },
        Test {
            name: "start.running_container_error",
            clause: "runtime.md#start: Attempting to start a container that is not created MUST have no effect on the container and MUST generate an error",
            run: start_running,
        },
        Test {
            name: "start.stopped_container_error",
            clause: "runtime.md#start: Attempting to start a container that is not created MUST have no effect on the container and MUST generate an error",
            run: start_stopped,
        },
        Test {
            name: "kill.running_delivers_signal",
            clause: "runtime.md#kill: This operation MUST send the specified signal to the container process",
            run: kill_running,
        },
        Test {
            name: "kill.stopped_container_error",
            clause: "runtime.md#kill: Attempting to send a signal to a container that is neither created nor running MUST have no effect on the container and MUST generate an error",
            run: kill_stopped,
        },
        Test {
            name: "kill.unknown_id_error",
            clause: "runtime.md#kill: This operation MUST generate an error if it is not provided the container ID",
            run: kill_unknown,
        },
        Test {
            name: "delete.running_container_error",
            clause: "runtime.md#delete: Attempting to delete a container that is not stopped MUST have no effect on the container and MUST generate an error",
            run: delete_running,
        },
        Test {
            name: "delete.created_container_error",
            clause: "runtime.md#delete: Attempting to delete a container that is not stopped MUST have no effect on the container and MUST generate an error",
            run: delete_created,
        },
        Test {
            name: "delete.stopped_removes_container",
            clause: "runtime.md#delete: Deleting a container MUST delete the resources that were created during the create step",
            run: delete_stopped,
        },
        Test {
            name: "delete.unknown_id_error",
            clause: "runtime.md#delete: Attempting to delete a container that does not exist MUST generate an error",
            run: delete_unknown,
        },
        Test {
            name: "delete.id_reusable",
            clause: "runtime.md#delete: Once a container is deleted its ID MAY be used by a subsequent container",
            run: id_reusable,
        },
    ]
}

fn create_does_not_run(ctx: &Ctx) -> TestResult {
    let mut b = ctx.bundle()?;
    b.set_shell("touch /shared/ran");
    let marker = b.shared_file("ran");
    let mut c = ctx.create(&b)?;
    std::thread::sleep(std::time::Duration::from_millis(300));
    ensure!(!marker.exists(), "the process ran during create");
    ensure!(
        c.status()? == "created",
        "status after create is not created"
    );
    c.start()?;
    c.wait()?;
    ensure!(marker.exists(), "the process did not run after start");
    Ok(())
}

fn start_runs(ctx: &Ctx) -> TestResult {
    let mut b = ctx.bundle()?;
    b.set_args(&["/bin/probe", "waitsig", "/shared/ready"]);
    let mut c = ctx.create(&b)?;
    c.start()?;
    wait_file(&b.shared_file("ready"), ctx.rt.timeout)?;
    let st = c.status()?;
    ensure!(
        st == "running",
        "status after start is {st:?}, want running"
    );
    Ok(())
}

fn config_changes_ignored(ctx: &Ctx) -> TestResult {
    let mut b = ctx.bundle()?;
    b.set_shell("echo original > /shared/out");
    let mut c = ctx.create(&b)?;
    b.set_shell("echo changed > /shared/out");
    b.write_config()?;
    c.start()?;
    c.wait()?;
    let out = std::fs::read_to_string(b.shared_file("out")).context("no output")?;
    ensure!(
        out.trim() == "original",
        "the process saw the edited config: {out:?}"
    );
    Ok(())
}

fn kill_created(ctx: &Ctx) -> TestResult {
    let b = ctx.bundle()?;
    let mut c = ctx.create(&b)?;
    c.pid()?;
    let out = ctx.rt.kill(&c.id, "KILL")?;
    ensure!(
        out.success(),
        "kill of a created container failed: {}",
        out.describe()
    );
    c.wait()?;
    c.wait_status("stopped")?;
    Ok(())
}

fn missing_program(ctx: &Ctx) -> TestResult {
    let mut b = ctx.bundle()?;
    b.set_args(&["/bin/no-such-program"]);
    let (out, mut c) = ctx.try_create(&b)?;
    if !out.success() {
        return Ok(());
    }
    c.pid()?;
    let st = ctx.rt.start(&c.id)?;
    ensure!(
        !st.success(),
        "create and start both succeeded for a program that does not exist"
    );
    Ok(())
}

fn duplicate_id(ctx: &Ctx) -> TestResult {
    let b = ctx.bundle()?;
    let mut c = ctx.create(&b)?;
    let pid = c.pid()?;
    let mut b2 = ctx.bundle()?;
    b2.id = b.id.clone();
    b2.write_config()?;
    let out = ctx.rt.create(&b2.id, &b2.dir, None)?;
    ensure!(!out.success(), "second create with the same id succeeded");
    let st = c.state()?;
    ensure!(st["status"] == "created", "first container disturbed: {st}");
    ensure!(
        st["pid"] == json!(pid),
        "first container's pid changed: {st}"
    );
    ensure!(
        st["bundle"]
            .as_str()
            .map(|p| p.ends_with(b.dir.file_name().and_then(|n| n.to_str()).unwrap_or("?")))
            == Some(true),
        "state now points at another bundle: {st}"
    );
    Ok(())
}

fn missing_config(ctx: &Ctx) -> TestResult {
    let b = ctx.bundle()?;
    // No write_config: the bundle has a rootfs but no config.json.
    let out = ctx.rt.create(&b.id, &b.dir, None)?;
    let _cleanup = ctx.rt.delete(&b.id, true);
    ensure!(!out.success(), "create without config.json succeeded");
    Ok(())
}

fn error_leaves_nothing(ctx: &Ctx) -> TestResult {
    let mut b = ctx.bundle()?;
    b.set_args(&["/bin/does-not-exist"]);
    b.config["root"]["path"] = json!("no-such-rootfs");
    let (out, _c) = ctx.try_create(&b)?;
    ensure!(!out.success(), "create with a missing rootfs succeeded");
    let st = ctx.rt.raw(&["state", &b.id])?;
    ensure!(
        !st.success(),
        "a failed create left a container behind: {}",
        st.stdout
    );
    Ok(())
}

fn state_unknown(ctx: &Ctx) -> TestResult {
    let out = ctx.rt.raw(&["state", &ctx.new_id()])?;
    ensure!(
        !out.success(),
        "state of an unknown id succeeded: {}",
        out.stdout
    );
    Ok(())
}

fn start_unknown(ctx: &Ctx) -> TestResult {
    let out = ctx.rt.start(&ctx.new_id())?;
    ensure!(!out.success(), "start of an unknown id succeeded");
    Ok(())
}

fn start_running(ctx: &Ctx) -> TestResult {
    let mut b = ctx.bundle()?;
    b.set_shell("echo x >> /shared/runs; exec /bin/probe waitsig /shared/ready");
    let mut c = ctx.create(&b)?;
    c.start()?;
    wait_file(&b.shared_file("ready"), ctx.rt.timeout)?;
    let pid = c.pid()?;
    let out = ctx.rt.start(&c.id)?;
    ensure!(!out.success(), "second start succeeded");
    std::thread::sleep(std::time::Duration::from_millis(200));
    let st = c.state()?;
    ensure!(
        st["status"] == "running" && st["pid"] == json!(pid),
        "container changed: {st}"
    );
    let runs = std::fs::read_to_string(b.shared_file("runs"))?;
    ensure!(
        runs.lines().count() == 1,
        "the process ran {} times",
        runs.lines().count()
    );
    Ok(())
}

fn start_stopped(ctx: &Ctx) -> TestResult {
    let mut b = ctx.bundle()?;
    b.set_shell("echo x >> /shared/runs");
    let mut c = ctx.create(&b)?;
    c.start()?;
    c.wait()?;
    c.wait_status("stopped")?;
    let out = ctx.rt.start(&c.id)?;
    ensure!(!out.success(), "start of a stopped container succeeded");
    std::thread::sleep(std::time::Duration::from_millis(200));
    ensure!(c.status()? == "stopped", "status changed");
    let runs = std::fs::read_to_string(b.shared_file("runs"))?;
    ensure!(
        runs.lines().count() == 1,
        "the process ran {} times",
        runs.lines().count()
    );
    Ok(())
}

fn kill_running(ctx: &Ctx) -> TestResult {
    let mut b = ctx.bundle()?;
    b.set_args(&["/bin/probe", "waitsig", "/shared/ready"]);
    let mut c = ctx.create(&b)?;
    c.start()?;
    wait_file(&b.shared_file("ready"), ctx.rt.timeout)?;
    let out = ctx.rt.kill(&c.id, "USR1")?;
    ensure!(out.success(), "kill USR1 failed: {}", out.describe());
    c.wait()?;
    let got = crate::suite::parse_probe(&c.stdout())?;
    ensure!(
        got[0]["signal"] == json!(libc::SIGUSR1),
        "process saw {}",
        got[0]
    );
    c.wait_status("stopped")?;
    Ok(())
}

fn kill_stopped(ctx: &Ctx) -> TestResult {
    let mut b = ctx.bundle()?;
    b.set_args(&["/bin/true"]);
    let mut c = ctx.create(&b)?;
    c.start()?;
    c.wait()?;
    c.wait_status("stopped")?;
    let out = ctx.rt.kill(&c.id, "TERM")?;
    ensure!(!out.success(), "kill of a stopped container succeeded");
    ensure!(c.status()? == "stopped", "status changed");
    Ok(())
}

fn kill_unknown(ctx: &Ctx) -> TestResult {
    let out = ctx.rt.kill(&ctx.new_id(), "TERM")?;
    ensure!(!out.success(), "kill of an unknown id succeeded");
    Ok(())
}

fn delete_running(ctx: &Ctx) -> TestResult {
    let mut b = ctx.bundle()?;
    b.set_args(&["/bin/probe", "waitsig", "/shared/ready"]);
    let mut c = ctx.create(&b)?;
    c.start()?;
    wait_file(&b.shared_file("ready"), ctx.rt.timeout)?;
    let pid = c.pid()?;
    let out = ctx.rt.delete(&c.id, false)?;
    ensure!(!out.success(), "delete of a running container succeeded");
    ensure!(
        crate::suite::alive(pid),
        "delete killed the container process"
    );
    ensure!(c.status()? == "running", "status changed");
    Ok(())
}

fn delete_created(ctx: &Ctx) -> TestResult {
    let b = ctx.bundle()?;
    let mut c = ctx.create(&b)?;
    let pid = c.pid()?;
    let out = ctx.rt.delete(&c.id, false)?;
    if out.success() {
        c.mark_deleted();
        bail!("delete of a created (not stopped) container succeeded");
    }
    ensure!(
        crate::suite::alive(pid),
        "delete killed the container process"
    );
    ensure!(c.status()? == "created", "status changed");
    Ok(())
}

fn delete_stopped(ctx: &Ctx) -> TestResult {
    let mut b = ctx.bundle()?;
    b.set_args(&["/bin/true"]);
    b.linux()["cgroupsPath"] = json!(format!("/conformance/{}", b.id));
    let mut c = ctx.create(&b)?;
    let pid = c.pid()?;
    let dirs: Vec<_> = ["memory", "pids", "cpu"]
        .iter()
        .filter_map(|k| ctx.host.v1_dir(pid, k).ok())
        .collect();
    c.start()?;
    c.wait()?;
    c.destroy()?;
    let st = ctx.rt.raw(&["state", &c.id])?;
    ensure!(
        !st.success(),
        "state still works after delete: {}",
        st.stdout
    );
    for d in dirs {
        ensure!(
            !d.exists(),
            "cgroup {} still exists after delete",
            d.display()
        );
    }
    Ok(())
}

fn delete_unknown(ctx: &Ctx) -> TestResult {
    let out = ctx.rt.delete(&ctx.new_id(), false)?;
    ensure!(!out.success(), "delete of an unknown id succeeded");
    Ok(())
}

fn id_reusable(ctx: &Ctx) -> TestResult {
    let mut b = ctx.bundle()?;
    b.set_args(&["/bin/true"]);
    ctx.run(&b)?;
    let mut c = ctx.create(&b)?;
    ensure!(
        c.status()? == "created",
        "re-created container is not created"
    );
    c.start()?;
    c.wait()?;
    Ok(())
}
