//! OCI hooks: all six kinds in order, the state JSON on stdin, env and args, where each runs,
//! timeouts, and what a failure does (fatal before start, logged after).

use mantle_tests::*;
use serde_json::{json, Value};
use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

/// A hook that records its stdin, its mount namespace, $K, and appends its name to `order`.
fn recorder(kind: &str, dir: &str) -> Value {
    json!({
        "path": "/bin/sh",
        "args": ["sh", "-c", format!("cat > {dir}/{kind}.json; readlink /proc/self/ns/mnt > {dir}/{kind}.mnt; echo \"$K\" > {dir}/{kind}.env; echo {kind} >> {dir}/order")],
        "env": [format!("K=val-{kind}")],
        "timeout": 10
    })
}

fn read_json(p: &Path) -> Value {
    serde_json::from_str(&fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())))
        .unwrap()
}

#[test]
fn all_six_kinds_run_in_order_with_state_on_stdin() {
    let rt = Runtime::mantle();
    let out = TempDir::new("hooks");
    let host = out.path().to_str().unwrap().to_string();
    let mut b = Bundle::new(&["sleep", "100"]);
    b.bind_dir(out.path(), "/hooks");
    b.set("/annotations", json!({"hook.test": "yes"}));
    b.set(
        "/hooks",
        json!({
            "prestart": [recorder("prestart", &host)],
            "createRuntime": [recorder("createRuntime", &host)],
            "createContainer": [recorder("createContainer", &host)],
            // startContainer runs inside the container: its paths are the container's.
            "startContainer": [recorder("startContainer", "/hooks")],
            "poststart": [recorder("poststart", &host)],
            "poststop": [recorder("poststop", &host)]
        }),
    );
    let id = unique("hooks");
    let c = rt.create(&b, &id, &[]);
    let order = || fs::read_to_string(out.path().join("order")).unwrap_or_default();
    assert_eq!(order(), "prestart\ncreateRuntime\ncreateContainer\n");
    let pid = c.pid();
    for kind in ["prestart", "createRuntime", "createContainer"] {
        let s = read_json(&out.path().join(format!("{kind}.json")));
        assert_eq!(s["id"], json!(id), "{kind}: {s}");
        assert_eq!(s["status"], "creating", "{kind}: {s}");
        assert_eq!(s["pid"], json!(pid), "{kind}: {s}");
        assert_eq!(s["bundle"], json!(b.path()), "{kind}: {s}");
        assert_eq!(s["annotations"]["hook.test"], "yes", "{kind}: {s}");
        assert!(s.get("ociVersion").is_some());
        assert_eq!(
            fs::read_to_string(out.path().join(format!("{kind}.env"))).unwrap(),
            format!("val-{kind}\n")
        );
    }
    c.start().success();
    assert_eq!(
        order(),
        "prestart\ncreateRuntime\ncreateContainer\nstartContainer\npoststart\n"
    );
    let s = read_json(&out.path().join("startContainer.json"));
    assert_eq!(s["id"], json!(id));
    // startContainer ran in the container's mount namespace, the runtime hooks on the host's.
    let container_mnt = fs::read_link(format!("/proc/{pid}/ns/mnt")).unwrap();
    let host_mnt = fs::read_link("/proc/self/ns/mnt").unwrap();
    let mnt = |k: &str| {
        fs::read_to_string(out.path().join(format!("{k}.mnt")))
            .unwrap()
            .trim()
            .to_string()
    };
    assert_eq!(mnt("startContainer"), container_mnt.to_string_lossy());
    assert_eq!(mnt("createRuntime"), host_mnt.to_string_lossy());
    assert_eq!(mnt("poststart"), host_mnt.to_string_lossy());
    let s = read_json(&out.path().join("poststart.json"));
    assert_eq!(s["status"], "running", "{s}");
    assert_eq!(s["pid"], json!(pid));
    c.kill("KILL").success();
    c.wait_status("stopped");
    rt.run(&["delete", &id]).success();
    assert_eq!(
        order(),
        "prestart\ncreateRuntime\ncreateContainer\nstartContainer\npoststart\npoststop\n"
    );
    let s = read_json(&out.path().join("poststop.json"));
    assert_eq!(s["status"], "stopped", "{s}");
    assert_eq!(s["id"], json!(id));
}

#[test]
fn failing_hooks_before_start_fail_create_and_leave_nothing() {
    let rt = Runtime::mantle();
    for kind in ["prestart", "createRuntime", "createContainer"] {
        let mut b = Bundle::new(&["sleep", "100"]);
        b.set(
            &format!("/hooks/{kind}"),
            json!([{"path": "/bin/sh", "args": ["sh", "-c", "echo hook-said-no >&2; exit 7"]}]),
        );
        let id = unique("hookfail");
        b.write();
        let _g = rt.guard(&id);
        let out = rt.run(&["create", "--bundle", b.path_str(), &id]).failure();
        assert!(out.stderr.contains(kind), "{kind}: {out:?}");
        let left = leftovers(&rt, &id, b.path(), &[]);
        assert!(left.is_empty(), "{kind}: {left:?}");
    }
}

#[test]
fn hook_timeout_is_enforced() {
    let rt = Runtime::mantle();
    let mut b = Bundle::new(&["true"]);
    b.set(
        "/hooks/createRuntime",
        json!([{"path": "/bin/sh", "args": ["sh", "-c", "sleep 20"], "timeout": 1}]),
    );
    let id = unique("hooktimeout");
    b.write();
    let _g = rt.guard(&id);
    let t = Instant::now();
    let out = rt.run(&["create", "--bundle", b.path_str(), &id]).failure();
    assert!(
        t.elapsed() < Duration::from_secs(10),
        "timeout not enforced: {:?}",
        t.elapsed()
    );
    assert!(out.stderr.contains("timed out"), "{out:?}");
    assert!(leftovers(&rt, &id, b.path(), &[]).is_empty());
}

#[test]
fn failing_start_container_hook_fails_start() {
    let rt = Runtime::mantle();
    let mut b = Bundle::new(&["sleep", "100"]);
    b.set(
        "/hooks/startContainer",
        json!([{"path": "/bin/sh", "args": ["sh", "-c", "exit 3"]}]),
    );
    let c = rt.create(&b, &unique("startfail"), &[]);
    let out = c.start().failure();
    assert!(out.stderr.contains("startContainer"), "{out:?}");
    // The workload never ran: the container is stopped, not running.
    c.wait_status("stopped");
}

#[test]
fn failing_poststart_and_poststop_are_only_warnings() {
    let rt = Runtime::mantle();
    let out_dir = TempDir::new("hookwarn");
    let mut b = Bundle::new(&["sleep", "100"]);
    let fail = json!([{"path": "/bin/sh", "args": ["sh", "-c", "exit 9"]}]);
    let mark = json!([{"path": "/bin/sh", "args": ["sh", "-c", format!("touch {}/second", out_dir.path().display())]}]);
    let mut poststop = fail.as_array().unwrap().clone();
    poststop.extend(mark.as_array().unwrap().iter().cloned());
    b.set("/hooks/poststart", fail.clone())
        .set("/hooks/poststop", json!(poststop));
    let id = unique("postfail");
    let c = rt.create(&b, &id, &[]);
    c.start().success();
    assert_eq!(c.status(), "running");
    c.kill("KILL").success();
    c.wait_status("stopped");
    rt.run(&["delete", &id]).success();
    assert!(
        out_dir.path().join("second").exists(),
        "the hook after a failed poststop hook did not run"
    );
    assert!(leftovers(&rt, &id, b.path(), &[]).is_empty());
}

#[test]
fn missing_hook_binary_fails_create() {
    let rt = Runtime::mantle();
    let mut b = Bundle::new(&["true"]);
    b.set("/hooks/createRuntime", json!([{"path": "/no/such/hook"}]));
    let id = unique("nohook");
    b.write();
    let _g = rt.guard(&id);
    let out = rt.run(&["create", "--bundle", b.path_str(), &id]).failure();
    assert!(out.stderr.contains("/no/such/hook"), "{out:?}");
    assert!(leftovers(&rt, &id, b.path(), &[]).is_empty());
}

#[test]
fn hooks_inherit_no_runtime_fds() {
    let rt = Runtime::mantle();
    let out = TempDir::new("hookfds");
    let mut b = Bundle::new(&["sleep", "100"]);
    b.bind_dir(out.path(), "/hooks");
    // `ls` holds its own directory fd (3); nothing else may be open.
    let lister = |dir: &str, name: &str| json!([{"path": "/bin/sh", "args": ["sh", "-c", format!("ls /proc/self/fd > {dir}/{name}")]}]);
    let host = out.path().to_str().unwrap().to_string();
    b.set("/hooks/createRuntime", lister(&host, "createRuntime"))
        .set("/hooks/createContainer", lister(&host, "createContainer"))
        .set("/hooks/startContainer", lister("/hooks", "startContainer"))
        .set("/hooks/poststart", lister(&host, "poststart"));
    let c = rt.create(&b, &unique("hookfds"), &[]);
    c.start().success();
    for kind in [
        "createRuntime",
        "createContainer",
        "startContainer",
        "poststart",
    ] {
        let fds = fs::read_to_string(out.path().join(kind)).unwrap();
        assert_eq!(
            fds.split_whitespace().collect::<Vec<_>>(),
            vec!["0", "1", "2", "3"],
            "{kind} hook fds"
        );
    }
}
