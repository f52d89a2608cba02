//! config-linux.md#namespaces and #user-namespace-mappings, and the time namespace offsets.

use super::util::{host_ns, ns_of_pid};
use super::wait_file;
use crate::suite::{Ctx, Test, TestResult};
use anyhow::{ensure, Context};
use serde_json::{json, Value};

pub fn tests() -> Vec<Test> {
    vec![
        Test {
            name: "ns.pid_new",
            clause: "config-linux.md#namespaces: pid: processes inside the container will only be able to see other processes inside the same container",
            run: pid_new,
        },
        Test {
            name: "ns.network_new",
            clause: "config-linux.md#namespaces: network: the container will have its own network stack",
            run: net_new,
        },
        Test {
            name: "ns.mount_new",
            clause: "config-linux.md#namespaces: mount: the container will have an isolated mount table",
            run: |ctx| kind_new(ctx, "mount", "mnt"),
        },
        Test {
            name: "ns.ipc_new",
            clause: "config-linux.md#namespaces: ipc: processes inside the container will only be able to communicate to other processes inside the same container via system level IPC",
            run: |ctx| kind_new(ctx, "ipc", "ipc"),
        },
        Test {
            name: "ns.uts_new",
            clause: "config-linux.md#namespaces: uts: the container will be able to have its own hostname and domain name",
            run: |ctx| kind_new(ctx, "uts", "uts"),
        },
        Test {
            name: "ns.cgroup_new",
            clause: "config-linux.md#namespaces: cgroup: the container will have an isolated view of the cgroup hierarchy",
            run: cgroup_new,
        },
        Test {
            name: "ns.user_new_with_mappings",
            clause: "config-linux.md#user-namespace-mappings: uidMappings/gidMappings describe the user/group namespace mappings from the host to the container",
            run: user_new,
        },
        Test {
            name: "ns.user_rootfs_ownership_unchanged",
            clause: "config-linux.md#user-namespace-mappings: The runtime SHOULD NOT modify the ownership of referenced filesystems to realize the mapping",
            run: user_ownership,
        },
        Test {
            name: "ns.time_new_with_offsets",
            clause: "config-linux.md#offset-for-time-namespace: timeOffsets sets the offset for the time namespace (monotonic, boottime)",
            run: time_new,
        },
        Test {
            name: "ns.not_listed_inherited",
            clause: "config-linux.md#namespaces: If a namespace type is not specified in the namespaces array, the container MUST inherit the runtime namespace of that type",
            run: not_listed_inherited,
        },
        Test {
            name: "ns.join_by_path",
            clause: "config-linux.md#namespaces: path: The runtime MUST place the container process in the namespace associated with that path",
            run: join_by_path,
        },
        Test {
            name: "ns.user_join_by_path",
            clause: "config-linux.md#namespaces: path: The runtime MUST place the container process in the namespace associated with that path (user namespace)",
            run: user_join,
        },
        Test {
            name: "ns.join_path_wrong_type_error",
            clause: "config-linux.md#namespaces: The runtime MUST generate an error if path is not associated with a namespace of type type",
            run: join_wrong_type,
        },
        Test {
            name: "ns.duplicate_type_error",
            clause: "config-linux.md#namespaces: If a namespace type is duplicated in the namespaces array, the runtime MUST generate an error",
            run: duplicate_type,
        },
    ]
}

fn ns_link(r: &Value, kind: &str) -> anyhow::Result<String> {
    r["ns"][kind]
        .as_str()
        .map(String::from)
        .with_context(|| format!("probe saw no {kind} namespace"))
}

fn kind_new(ctx: &Ctx, _config_kind: &str, proc_kind: &str) -> TestResult {
    let mut b = ctx.bundle()?;
    let r = ctx.report(&mut b)?;
    let got = ns_link(&r, proc_kind)?;
    let host = host_ns(proc_kind)?;
    ensure!(
        got != host,
        "container shares the runtime's {proc_kind} namespace {host}"
    );
    Ok(())
}

fn pid_new(ctx: &Ctx) -> TestResult {
    kind_new(ctx, "pid", "pid")?;
    let mut b = ctx.bundle()?;
    let r = ctx.report(&mut b)?;
    ensure!(
        r["pid"] == 1,
        "container process is pid {} in its namespace, want 1",
        r["pid"]
    );
    Ok(())
}

fn net_new(ctx: &Ctx) -> TestResult {
    kind_new(ctx, "network", "net")?;
    let mut b = ctx.bundle()?;
    let r = ctx.report(&mut b)?;
    let dev = r["net_dev"].as_str().unwrap_or("");
    let ifaces: Vec<&str> = dev
        .lines()
        .skip(2)
        .filter_map(|l| l.split(':').next())
        .map(str::trim)
        .collect();
    ensure!(
        ifaces == ["lo"],
        "interfaces in a new network namespace: {ifaces:?}"
    );
    Ok(())
}

fn cgroup_new(ctx: &Ctx) -> TestResult {
    let mut b = ctx.bundle()?;
    b.set_namespace("cgroup", None);
    let r = ctx.report(&mut b)?;
    let got = ns_link(&r, "cgroup")?;
    ensure!(
        got != host_ns("cgroup")?,
        "container shares the runtime's cgroup namespace"
    );
    let text = r["cgroup"].as_str().unwrap_or("");
    for line in text.lines() {
        if line.contains(":memory:") || line.contains(":pids:") {
            ensure!(line.ends_with(":/"), "cgroup path not virtualised: {line}");
        }
    }
    Ok(())
}

fn user_new(ctx: &Ctx) -> TestResult {
    let mut b = ctx.bundle()?;
    b.set_namespace("user", None);
    b.linux()["uidMappings"] = json!([{"containerID": 0, "hostID": 200000, "size": 65536}]);
    b.linux()["gidMappings"] = json!([{"containerID": 0, "hostID": 300000, "size": 65536}]);
    let r = ctx.report(&mut b)?;
    ensure!(
        ns_link(&r, "user")? != host_ns("user")?,
        "no new user namespace"
    );
    let norm = |s: &Value| {
        s.as_str()
            .unwrap_or("")
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    ensure!(
        norm(&r["uid_map"]) == "0 200000 65536",
        "uid_map {:?}",
        r["uid_map"]
    );
    ensure!(
        norm(&r["gid_map"]) == "0 300000 65536",
        "gid_map {:?}",
        r["gid_map"]
    );
    let uid = super::util::status(&r, "Uid")?;
    ensure!(
        uid.starts_with('0'),
        "process is not root inside the user namespace: {uid}"
    );
    Ok(())
}

fn user_ownership(ctx: &Ctx) -> TestResult {
    use std::os::unix::fs::MetadataExt;
    let mut b = ctx.bundle()?;
    b.set_namespace("user", None);
    b.linux()["uidMappings"] = json!([{"containerID": 0, "hostID": 200000, "size": 65536}]);
    b.linux()["gidMappings"] = json!([{"containerID": 0, "hostID": 200000, "size": 65536}]);
    ctx.report(&mut b)?;
    for p in ["bin/busybox", "bin/probe", "etc/passwd", "tmp", ""] {
        let md = std::fs::symlink_metadata(b.rootfs().join(p))?;
        ensure!(
            md.uid() == 0 && md.gid() == 0,
            "rootfs/{p} now owned by {}:{}",
            md.uid(),
            md.gid()
        );
    }
    Ok(())
}

fn time_new(ctx: &Ctx) -> TestResult {
    if !std::path::Path::new("/proc/self/ns/time").exists() {
        crate::skip!("kernel has no time namespaces");
    }
    let mut b = ctx.bundle()?;
    b.set_namespace("time", None);
    b.linux()["timeOffsets"] = json!({
        "monotonic": {"secs": 86400, "nanosecs": 0},
        "boottime": {"secs": 172800, "nanosecs": 0}
    });
    let r = ctx.report(&mut b)?;
    ensure!(
        ns_link(&r, "time")? != host_ns("time")?,
        "no new time namespace"
    );
    let offs = r["timens_offsets"].as_str().unwrap_or("");
    let norm: Vec<String> = offs
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    ensure!(
        norm.contains(&"monotonic 86400 0".to_string()),
        "timens_offsets {offs:?}"
    );
    ensure!(
        norm.contains(&"boottime 172800 0".to_string()),
        "timens_offsets {offs:?}"
    );
    Ok(())
}

fn not_listed_inherited(ctx: &Ctx) -> TestResult {
    let mut b = ctx.bundle()?;
    for k in ["network", "ipc", "uts"] {
        b.remove_namespace(k);
    }
    // Setting a hostname needs a UTS namespace of its own.
    if let Some(o) = b.config.as_object_mut() {
        o.remove("hostname");
    }
    // sysfs cannot be mounted without a new network namespace.
    if let Some(m) = b.config["mounts"].as_array_mut() {
        m.retain(|m| m["destination"] != "/sys");
    }
    let r = ctx.report(&mut b)?;
    for k in ["net", "ipc", "uts"] {
        let got = ns_link(&r, k)?;
        let host = host_ns(k)?;
        ensure!(got == host, "{k}: container has {got}, runtime has {host}");
    }
    Ok(())
}

fn join_by_path(ctx: &Ctx) -> TestResult {
    let mut a = ctx.bundle()?;
    a.set_args(&["/bin/probe", "waitsig", "/shared/ready"]);
    let mut ca = ctx.create(&a)?;
    ca.start()?;
    wait_file(&a.shared_file("ready"), ctx.rt.timeout)?;
    let pid = ca.pid()?;
    let mut b = ctx.bundle()?;
    for (kind, proc_kind) in [("network", "net"), ("ipc", "ipc"), ("uts", "uts")] {
        b.set_namespace(kind, Some(&format!("/proc/{pid}/ns/{proc_kind}")));
    }
    if let Some(o) = b.config.as_object_mut() {
        o.remove("hostname");
    }
    let r = ctx.report(&mut b)?;
    for k in ["net", "ipc", "uts"] {
        let got = ns_link(&r, k)?;
        let want = ns_of_pid(pid, k)?;
        ensure!(got == want, "{k}: joined {got}, want {want}");
    }
    Ok(())
}

fn user_join(ctx: &Ctx) -> TestResult {
    let mut a = ctx.bundle()?;
    a.set_namespace("user", None);
    a.linux()["uidMappings"] = json!([{"containerID": 0, "hostID": 200000, "size": 65536}]);
    a.linux()["gidMappings"] = json!([{"containerID": 0, "hostID": 200000, "size": 65536}]);
    a.set_args(&["/bin/probe", "waitsig", "/shared/ready"]);
    let mut ca = ctx.create(&a)?;
    ca.start()?;
    wait_file(&a.shared_file("ready"), ctx.rt.timeout)?;
    let pid = ca.pid()?;
    let mut b = ctx.bundle()?;
    // Join the user namespace and the namespaces it owns (as podman does for pods).
    for (kind, proc_kind) in [
        ("user", "user"),
        ("network", "net"),
        ("ipc", "ipc"),
        ("uts", "uts"),
    ] {
        b.set_namespace(kind, Some(&format!("/proc/{pid}/ns/{proc_kind}")));
    }
    if let Some(o) = b.config.as_object_mut() {
        o.remove("hostname");
    }
    // The mappings of the joined namespace, restated (runc insists on them; they describe the
    // namespace being joined, so they cannot contradict it).
    b.linux()["uidMappings"] = a.config["linux"]["uidMappings"].clone();
    b.linux()["gidMappings"] = a.config["linux"]["gidMappings"].clone();
    let r = ctx.report(&mut b)?;
    let want = ns_of_pid(pid, "user")?;
    ensure!(
        ns_link(&r, "user")? == want,
        "user namespace {} want {want}",
        r["ns"]["user"]
    );
    let norm = |s: &Value| {
        s.as_str()
            .unwrap_or("")
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    ensure!(
        norm(&r["uid_map"]) == "0 200000 65536",
        "uid_map {:?}",
        r["uid_map"]
    );
    Ok(())
}

fn join_wrong_type(ctx: &Ctx) -> TestResult {
    let mut b = ctx.bundle()?;
    // The suite's own uts namespace given as the network namespace.
    let me = std::process::id();
    b.set_namespace("network", Some(&format!("/proc/{me}/ns/uts")));
    let (out, _c) = ctx.try_create(&b)?;
    ensure!(
        !out.success(),
        "create accepted a uts namespace path as the network namespace"
    );
    Ok(())
}

fn duplicate_type(ctx: &Ctx) -> TestResult {
    let mut b = ctx.bundle()?;
    if let Some(a) = b.config["linux"]["namespaces"].as_array_mut() {
        a.push(json!({"type": "ipc"}));
    }
    let (out, _c) = ctx.try_create(&b)?;
    ensure!(
        !out.success(),
        "create accepted a duplicated ipc namespace entry"
    );
    Ok(())
}
