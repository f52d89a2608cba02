//! features.md / features-linux.md: the `features` document.

use super::util::CAPS;
use crate::suite::{Ctx, Test, TestResult};
use anyhow::{ensure, Context};
use serde_json::Value;

pub fn tests() -> Vec<Test> {
    vec![
        Test {
            name: "features.document",
            clause: "features.md: ociVersionMin (string, REQUIRED) and ociVersionMax (string, REQUIRED)",
            run: document,
        },
        Test {
            name: "features.hooks_and_mount_options",
            clause: "features.md: hooks (array of strings, OPTIONAL) the list of the recognized hook names; mountOptions (array of strings, OPTIONAL)",
            run: hooks,
        },
        Test {
            name: "features.linux_namespaces_and_caps",
            clause: "features-linux.md: namespaces (array of strings, OPTIONAL) the list of the recognized namespaces; capabilities (array of strings, OPTIONAL)",
            run: namespaces,
        },
        Test {
            name: "features.linux_seccomp",
            clause: "features-linux.md#seccomp: enabled, actions, operators, archs (recognized values)",
            run: seccomp,
        },
    ]
}

fn features(ctx: &Ctx) -> anyhow::Result<Value> {
    let out = ctx.rt.raw(&["features"])?;
    ensure!(out.success(), "features failed: {}", out.describe());
    let v: Value = serde_json::from_str(out.stdout.trim())
        .with_context(|| format!("features output is not JSON: {:?}", out.stdout))?;
    ensure!(v.is_object(), "features is not an object");
    Ok(v)
}

fn strings<'a>(v: &'a Value, what: &str) -> anyhow::Result<Vec<&'a str>> {
    match v {
        Value::Null => Ok(Vec::new()),
        Value::Array(a) => a
            .iter()
            .map(|x| {
                x.as_str()
                    .with_context(|| format!("{what} holds a non-string {x}"))
            })
            .collect(),
        other => anyhow::bail!("{what} is not an array: {other}"),
    }
}

fn is_version(s: &str) -> bool {
    let core = s.split(['-', '+']).next().unwrap_or("");
    let parts: Vec<&str> = core.split('.').collect();
    parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
}

fn document(ctx: &Ctx) -> TestResult {
    let f = features(ctx)?;
    for k in ["ociVersionMin", "ociVersionMax"] {
        let v = f[k].as_str().with_context(|| format!("{k} missing"))?;
        ensure!(is_version(v), "{k} {v:?} is not a semantic version");
    }
    Ok(())
}

fn hooks(ctx: &Ctx) -> TestResult {
    let f = features(ctx)?;
    let known = [
        "prestart",
        "createRuntime",
        "createContainer",
        "startContainer",
        "poststart",
        "poststop",
    ];
    for h in strings(&f["hooks"], "hooks")? {
        ensure!(known.contains(&h), "unknown hook name {h:?}");
    }
    strings(&f["mountOptions"], "mountOptions")?;
    Ok(())
}

fn namespaces(ctx: &Ctx) -> TestResult {
    let f = features(ctx)?;
    let known = [
        "cgroup", "ipc", "mount", "network", "pid", "user", "uts", "time",
    ];
    for n in strings(&f["linux"]["namespaces"], "linux.namespaces")? {
        ensure!(known.contains(&n), "unknown namespace {n:?}");
    }
    for c in strings(&f["linux"]["capabilities"], "linux.capabilities")? {
        ensure!(
            CAPS.contains(&c) || c.starts_with("CAP_"),
            "bad capability name {c:?}"
        );
    }
    Ok(())
}

fn seccomp(ctx: &Ctx) -> TestResult {
    let f = features(ctx)?;
    let s = &f["linux"]["seccomp"];
    if s.is_null() {
        return Ok(());
    }
    ensure!(
        s["enabled"].is_boolean() || s["enabled"].is_null(),
        "enabled {}",
        s["enabled"]
    );
    for a in strings(&s["actions"], "seccomp.actions")? {
        ensure!(a.starts_with("SCMP_ACT_"), "bad action {a:?}");
    }
    for o in strings(&s["operators"], "seccomp.operators")? {
        ensure!(o.starts_with("SCMP_CMP_"), "bad operator {o:?}");
    }
    for a in strings(&s["archs"], "seccomp.archs")? {
        ensure!(a.starts_with("SCMP_ARCH_"), "bad arch {a:?}");
    }
    Ok(())
}
