//! runtime.md#state: the state JSON in every status, and annotations.

use super::wait_file;
use crate::suite::{Ctx, Test, TestResult};
use anyhow::{ensure, Context};
use serde_json::{json, Value};
use std::path::Path;

pub fn tests() -> Vec<Test> {
    vec![
        Test {
            name: "state.schema_created",
            clause: "runtime.md#state: ociVersion, id, status (created), pid (REQUIRED when created or running), bundle (absolute path)",
            run: created,
        },
        Test {
            name: "state.schema_running",
            clause: "runtime.md#state: status running: the container process has executed the user-specified program but has not exited",
            run: running,
        },
        Test {
            name: "state.schema_stopped",
            clause: "runtime.md#state: status stopped: the container process has exited",
            run: stopped,
        },
        Test {
            name: "state.annotations",
            clause: "runtime.md#state: annotations (map, OPTIONAL) contains the list of annotations associated with the container",
            run: annotations,
        },
        Test {
            name: "state.pid_is_container_process",
            clause: "runtime.md#state: pid is the ID of the container process, as seen by the host",
            run: pid_is_process,
        },
    ]
}

/// Checks the fields every state must have.
fn check_common(st: &Value, id: &str, bundle: &Path) -> anyhow::Result<()> {
    ensure!(
        st["ociVersion"].is_string(),
        "ociVersion missing or not a string: {st}"
    );
    ensure!(st["id"] == json!(id), "id is {}, want {id}", st["id"]);
    let b = st["bundle"]
        .as_str()
        .context("bundle missing or not a string")?;
    ensure!(b.starts_with('/'), "bundle {b:?} is not absolute");
    let want = bundle.canonicalize()?;
    let got = Path::new(b)
        .canonicalize()
        .with_context(|| format!("bundle {b:?}"))?;
    ensure!(got == want, "bundle is {b:?}, want {}", want.display());
    if let Some(a) = st.get("annotations") {
        ensure!(
            a.is_object() || a.is_null(),
            "annotations is not a map: {a}"
        );
    }
    Ok(())
}

fn created(ctx: &Ctx) -> TestResult {
    let b = ctx.bundle()?;
    let c = ctx.create(&b)?;
    let st = c.state()?;
    check_common(&st, &b.id, &b.dir)?;
    ensure!(st["status"] == "created", "status {}", st["status"]);
    let pid = st["pid"].as_i64().context("pid missing in created state")?;
    ensure!(
        pid > 0 && crate::suite::alive(pid as i32),
        "pid {pid} is not a live process"
    );
    Ok(())
}

fn running(ctx: &Ctx) -> TestResult {
    let mut b = ctx.bundle()?;
    b.set_args(&["/bin/probe", "waitsig", "/shared/ready"]);
    let mut c = ctx.create(&b)?;
    c.start()?;
    wait_file(&b.shared_file("ready"), ctx.rt.timeout)?;
    let st = c.state()?;
    check_common(&st, &b.id, &b.dir)?;
    ensure!(st["status"] == "running", "status {}", st["status"]);
    ensure!(
        st["pid"].as_i64().unwrap_or(0) > 0,
        "pid missing in running state"
    );
    Ok(())
}

fn stopped(ctx: &Ctx) -> TestResult {
    let mut b = ctx.bundle()?;
    b.set_args(&["/bin/true"]);
    let mut c = ctx.create(&b)?;
    c.start()?;
    c.wait()?;
    c.wait_status("stopped")?;
    let st = c.state()?;
    check_common(&st, &b.id, &b.dir)?;
    Ok(())
}

fn annotations(ctx: &Ctx) -> TestResult {
    let mut b = ctx.bundle()?;
    let want = json!({"org.example.key": "value", "com.example.other": "x y z"});
    b.config["annotations"] = want.clone();
    let c = ctx.create(&b)?;
    let st = c.state()?;
    ensure!(
        st["annotations"] == want,
        "annotations {} want {want}",
        st["annotations"]
    );
    Ok(())
}

fn pid_is_process(ctx: &Ctx) -> TestResult {
    let mut b = ctx.bundle()?;
    b.set_args(&["/bin/probe", "waitsig", "/shared/ready"]);
    let mut c = ctx.create(&b)?;
    c.start()?;
    wait_file(&b.shared_file("ready"), ctx.rt.timeout)?;
    let pid = c.pid()?;
    let exe = std::fs::read_link(format!("/proc/{pid}/exe"))?;
    ensure!(
        exe.file_name().map(|n| n == "probe").unwrap_or(false),
        "state pid {pid} runs {}, not the container process",
        exe.display()
    );
    Ok(())
}
