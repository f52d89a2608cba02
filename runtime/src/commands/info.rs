//! Read-mostly commands: list, ps, features, spec, and the cgroup-facing update/events.

use crate::cli::{EventsArgs, GlobalOpts, ListArgs, OutputFormat, PsArgs, SpecArgs, UpdateArgs};
use crate::container::{self, cgroup, Container};
use anyhow::{bail, Context, Result};

pub fn list(g: &GlobalOpts, a: &ListArgs) -> Result<i32> {
    let cs = container::list(&g.root)?;
    if a.quiet {
        cs.iter().for_each(|c| println!("{}", c.state.id));
        return Ok(0);
    }
    match a.format {
        OutputFormat::Json => {
            let items: Vec<serde_json::Value> = cs
                .iter()
                .map(|c| {
                    let s = c.oci_state();
                    serde_json::json!({
                        "ociVersion": s["ociVersion"], "id": s["id"], "pid": s["pid"],
                        "status": s["status"], "bundle": s["bundle"], "rootfs": s["rootfs"],
                        "created": s["created"], "owner": s["owner"],
                        "annotations": s.get("annotations").cloned().unwrap_or(serde_json::json!({})),
                    })
                })
                .collect();
            println!("{}", serde_json::to_string(&items)?);
        }
        OutputFormat::Table => {
            println!(
                "{:<20} {:<8} {:<10} {:<40} {:<31} OWNER",
                "ID", "PID", "STATUS", "BUNDLE", "CREATED"
            );
            for c in &cs {
                let s = c.oci_state();
                println!(
                    "{:<20} {:<8} {:<10} {:<40} {:<31} {}",
                    c.state.id,
                    s["pid"],
                    s["status"].as_str().unwrap_or(""),
                    c.state.bundle.display(),
                    c.state.created,
                    if c.state.owner.is_empty() {
                        "root"
                    } else {
                        &c.state.owner
                    }
                );
            }
        }
    }
    Ok(0)
}

pub fn ps(g: &GlobalOpts, a: &PsArgs) -> Result<i32> {
    let c = Container::load(&g.root, &a.id)?;
    let pids = cgroup::procs(c.state.cgroup.as_ref())?;
    match a.format {
        OutputFormat::Json => println!("{}", serde_json::to_string(&pids)?),
        OutputFormat::Table => {
            let list: Vec<String> = pids.iter().map(|p| p.to_string()).collect();
            let mut cmd = std::process::Command::new("ps");
            cmd.args(if a.ps_args.is_empty() {
                vec!["-ef".to_string()]
            } else {
                a.ps_args.clone()
            });
            let out = cmd.output().context("run ps")?;
            let text = String::from_utf8_lossy(&out.stdout);
            let mut lines = text.lines();
            let header = lines.next().unwrap_or("");
            println!("{header}");
            let pid_col = header
                .split_whitespace()
                .position(|h| h == "PID")
                .unwrap_or(1);
            for l in lines {
                if l.split_whitespace()
                    .nth(pid_col)
                    .is_some_and(|p| list.iter().any(|x| x == p))
                {
                    println!("{l}");
                }
            }
        }
    }
    Ok(0)
}

/// `update`: a resources document (file or "-" for stdin) and/or individual flags, the flags
/// winning, applied to the live cgroup and remembered in the stored config.
pub fn update(g: &GlobalOpts, a: &UpdateArgs) -> Result<i32> {
    let mut c = Container::load(&g.root, &a.id)?;
    if c.status() == container::state::Status::Stopped {
        bail!("container not running");
    }
    let mut v: serde_json::Value = match a.resources.as_deref() {
        Some(p) if p == std::path::Path::new("-") => {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)?;
            serde_json::from_str(&text).context("resources from stdin: malformed JSON")?
        }
        Some(p) => serde_json::from_slice(
            &std::fs::read(p).with_context(|| format!("read {}", p.display()))?,
        )
        .with_context(|| format!("resources file {}: malformed JSON", p.display()))?,
        None => serde_json::json!({}),
    };
    apply_update_flags(&mut v, a)?;
    let r: oci_spec::runtime::LinuxResources = serde_path_to_error::deserialize(v.clone())
        .map_err(|e| anyhow::anyhow!("resources: field `{}`: {}", e.path(), e.inner()))?;
    cgroup::update(c.state.cgroup.as_ref(), &r)?;
    let merged = merge(
        c.state
            .config
            .pointer("/linux/resources")
            .cloned()
            .unwrap_or(serde_json::json!({})),
        v,
    );
    if let Some(linux) = c.state.config.get_mut("linux") {
        linux["resources"] = merged;
    }
    c.save()?;
    Ok(0)
}

fn apply_update_flags(v: &mut serde_json::Value, a: &UpdateArgs) -> Result<()> {
    let mut set = |path: &[&str], val: serde_json::Value| {
        let mut cur = &mut *v;
        for k in &path[..path.len() - 1] {
            if !cur.get(*k).is_some_and(|x| x.is_object()) {
                cur[*k] = serde_json::json!({});
            }
            cur = &mut cur[*k];
        }
        cur[path[path.len() - 1]] = val;
    };
    if let Some(m) = &a.memory {
        set(&["memory", "limit"], parse_bytes(m)?.into());
    }
    if let Some(m) = &a.memory_reservation {
        set(&["memory", "reservation"], parse_bytes(m)?.into());
    }
    if let Some(m) = &a.memory_swap {
        set(&["memory", "swap"], parse_bytes(m)?.into());
    }
    if let Some(x) = a.cpu_shares {
        set(&["cpu", "shares"], x.into());
    }
    if let Some(x) = a.cpu_quota {
        set(&["cpu", "quota"], x.into());
    }
    if let Some(x) = a.cpu_period {
        set(&["cpu", "period"], x.into());
    }
    if let Some(x) = &a.cpuset_cpus {
        set(&["cpu", "cpus"], x.clone().into());
    }
    if let Some(x) = &a.cpuset_mems {
        set(&["cpu", "mems"], x.clone().into());
    }
    if let Some(x) = a.pids_limit {
        set(&["pids", "limit"], x.into());
    }
    if let Some(x) = a.blkio_weight {
        set(&["blockIO", "weight"], x.into());
    }
    Ok(())
}

fn merge(mut base: serde_json::Value, over: serde_json::Value) -> serde_json::Value {
    match (base.as_object_mut(), over) {
        (Some(b), serde_json::Value::Object(o)) => {
            for (k, v) in o {
                let cur = b.remove(&k).unwrap_or(serde_json::Value::Null);
                b.insert(k, merge(cur, v));
            }
            base
        }
        (_, over) => over,
    }
}

/// "32m", "1G", "4096", "-1" (unlimited) as bytes, like docker/runc units.
pub fn parse_bytes(s: &str) -> Result<i64> {
    let t = s.trim();
    if t == "-1" {
        return Ok(-1);
    }
    let split = t
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| anyhow::anyhow!("invalid size {s:?}"))?;
    let mult: f64 = match unit
        .trim()
        .to_ascii_lowercase()
        .trim_end_matches('b')
        .trim_end_matches('i')
    {
        "" => 1.0,
        "k" => 1024.0,
        "m" => 1024.0 * 1024.0,
        "g" => 1024.0 * 1024.0 * 1024.0,
        "t" => 1024f64.powi(4),
        _ => bail!("invalid size {s:?}"),
    };
    Ok((n * mult) as i64)
}

/// `events`: stats every interval (or once with --stats) and an `oom` line when the memory
/// cgroup hits its limit; ends when the container stops.
pub fn events(g: &GlobalOpts, a: &EventsArgs) -> Result<i32> {
    let c = Container::load(&g.root, &a.id)?;
    if c.status() == container::state::Status::Stopped {
        bail!("container not running");
    }
    let emit = |e: &cgroups::Event| -> Result<()> {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        writeln!(out, "{}", serde_json::to_string(e)?)?;
        out.flush()?;
        Ok(())
    };
    if a.stats {
        emit(&cgroups::Event::stats(
            &a.id,
            cgroup::stats(c.state.cgroup.as_ref())?,
        ))?;
        return Ok(0);
    }
    let interval = parse_duration(&a.interval)?;
    let mut watcher = cgroup::oom_watcher(c.state.cgroup.as_ref())?;
    let mut next = std::time::Instant::now();
    loop {
        if c.status() == container::state::Status::Stopped {
            // Not a runc event type: mantle's termination reason (OOM, pids limit...).
            let reason = cgroup::exit_reason_hint(c.state.cgroup.as_ref())
                .unwrap_or_else(|| "exited".into());
            println!(
                "{}",
                serde_json::json!({"type": "exit", "id": a.id, "data": {"reason": reason}})
            );
            return Ok(0);
        }
        let now = std::time::Instant::now();
        if now >= next {
            if let Ok(s) = cgroup::stats(c.state.cgroup.as_ref()) {
                emit(&cgroups::Event::stats(&a.id, s))?;
            }
            next = now + interval;
        }
        let wait = next
            .saturating_duration_since(std::time::Instant::now())
            .min(std::time::Duration::from_millis(500));
        match watcher.wait(Some(wait)) {
            Ok(cgroups::OomEvent::Oom) => emit(&cgroups::Event::oom(&a.id))?,
            Ok(cgroups::OomEvent::Gone) => return Ok(0),
            Ok(cgroups::OomEvent::Timeout) => {}
            Err(e) => bail!("oom events: {e}"),
        }
    }
}

fn parse_duration(s: &str) -> Result<std::time::Duration> {
    let t = s.trim();
    let (num, mult) = if let Some(n) = t.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = t.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = t.strip_suffix('m') {
        (n, 60.0)
    } else {
        (t, 1.0)
    };
    let v: f64 = num
        .parse()
        .map_err(|_| anyhow::anyhow!("invalid interval {s:?}"))?;
    if v <= 0.0 {
        bail!("invalid interval {s:?}: must be positive");
    }
    Ok(std::time::Duration::from_secs_f64(v * mult))
}

/// The OCI features document (features.md) for this build and host.
pub fn features() -> Result<i32> {
    let ns = [
        "cgroup", "ipc", "mount", "network", "pid", "user", "uts", "time",
    ];
    let caps: Vec<String> = caps::all().iter().map(|c| c.to_string()).collect();
    let actions = [
        "SCMP_ACT_ALLOW",
        "SCMP_ACT_ERRNO",
        "SCMP_ACT_KILL",
        "SCMP_ACT_KILL_PROCESS",
        "SCMP_ACT_KILL_THREAD",
        "SCMP_ACT_LOG",
        "SCMP_ACT_NOTIFY",
        "SCMP_ACT_TRACE",
        "SCMP_ACT_TRAP",
    ];
    let ops = [
        "SCMP_CMP_EQ",
        "SCMP_CMP_GE",
        "SCMP_CMP_GT",
        "SCMP_CMP_LE",
        "SCMP_CMP_LT",
        "SCMP_CMP_MASKED_EQ",
        "SCMP_CMP_NE",
    ];
    let doc = serde_json::json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": "1.2.1",
        "hooks": ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"],
        "mountOptions": ["async","atime","bind","defaults","dev","diratime","dirsync","exec","loud","mand","noatime","nodev","nodiratime","noexec","nomand","norelatime","nostrictatime","nosuid","private","rbind","relatime","remount","ro","rprivate","rshared","rslave","runbindable","rw","shared","silent","slave","strictatime","suid","sync","unbindable"],
        "linux": {
            "namespaces": ns,
            "capabilities": caps,
            "cgroup": { "v1": true, "v2": true, "systemd": false, "systemdUser": false, "rdma": false },
            "seccomp": {
                "enabled": true,
                "actions": actions,
                "operators": ops,
                "archs": ["SCMP_ARCH_X86", "SCMP_ARCH_X86_64", "SCMP_ARCH_X32"],
                "knownFlags": ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"],
                "supportedFlags": ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"],
            },
            "apparmor": { "enabled": false },
            "selinux": { "enabled": false },
            "intelRdt": { "enabled": false },
            "mountExtensions": { "idmap": { "enabled": false } },
        },
        "annotations": {
            "dev.mantle.sandbox": "native|sentry",
            "dev.mantle.platform": "seccomp|ptrace",
            "org.opencontainers.runtime-spec.features.version": "1.2.1",
        },
        "potentiallyUnsafeConfigAnnotations": [],
        "mantle": crate::sentry_mode::features(),
    });
    println!("{}", serde_json::to_string_pretty(&doc)?);
    Ok(0)
}

pub fn spec(a: &SpecArgs) -> Result<i32> {
    let path = a.bundle.join("config.json");
    if path.exists() {
        bail!("File {} exists. Remove it first", path.display());
    }
    let mut v = default_spec();
    if a.rootless {
        make_rootless(&mut v);
    }
    std::fs::write(&path, serde_json::to_string_pretty(&v)?)
        .with_context(|| format!("write {}", path.display()))?;
    Ok(0)
}

fn default_spec() -> serde_json::Value {
    serde_json::json!({
        "ociVersion": "1.2.0",
        "process": {
            "terminal": true,
            "user": {"uid": 0, "gid": 0},
            "args": ["sh"],
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
            "cwd": "/",
            "capabilities": {
                "bounding": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
                "effective": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
                "permitted": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
            },
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": true
        },
        "root": {"path": "rootfs", "readonly": true},
        "hostname": "mantle",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}
        ],
        "linux": {
            "resources": {"devices": [{"allow": false, "access": "rwm"}]},
            "namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}, {"type": "cgroup"}],
            "maskedPaths": ["/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi"],
            "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
        }
    })
}

fn make_rootless(v: &mut serde_json::Value) {
    let uid = nix::unistd::geteuid().as_raw();
    let gid = nix::unistd::getegid().as_raw();
    v["linux"]["namespaces"]
        .as_array_mut()
        .expect("array")
        .push(serde_json::json!({"type": "user"}));
    v["linux"]["namespaces"] = serde_json::Value::Array(
        v["linux"]["namespaces"]
            .as_array()
            .expect("array")
            .iter()
            .filter(|n| n["type"] != "network")
            .cloned()
            .collect(),
    );
    v["linux"]["uidMappings"] = serde_json::json!([{"containerID": 0, "hostID": uid, "size": 1}]);
    v["linux"]["gidMappings"] = serde_json::json!([{"containerID": 0, "hostID": gid, "size": 1}]);
    v["linux"]
        .as_object_mut()
        .expect("object")
        .remove("resources");
    let mounts = v["mounts"].as_array_mut().expect("array");
    mounts.retain(|m| m["type"] != "sysfs" && m["type"] != "cgroup");
    mounts.push(serde_json::json!({"destination": "/sys", "type": "none", "source": "/sys", "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]}));
    for m in mounts.iter_mut() {
        if m["destination"] == "/dev/pts" {
            m["options"] = serde_json::json!([
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620"
            ]);
        }
    }
}

pub fn syscalls() -> Result<i32> {
    println!("{}", crate::sentry_mode::syscall_table());
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_durations_parse() {
        assert_eq!(parse_bytes("32m").unwrap(), 32 << 20);
        assert_eq!(parse_bytes("1G").unwrap(), 1 << 30);
        assert_eq!(parse_bytes("4096").unwrap(), 4096);
        assert_eq!(parse_bytes("-1").unwrap(), -1);
        assert!(parse_bytes("lots").is_err());
        assert_eq!(
            parse_duration("500ms").unwrap(),
            std::time::Duration::from_millis(500)
        );
        assert_eq!(
            parse_duration("5s").unwrap(),
            std::time::Duration::from_secs(5)
        );
        assert!(parse_duration("0s").is_err());
    }

    #[test]
    fn default_specs_parse_and_validate() {
        for rootless in [false, true] {
            let mut v = default_spec();
            if rootless {
                make_rootless(&mut v);
            }
            let (spec, _) = crate::config::parse(&serde_json::to_vec(&v).unwrap()).unwrap();
            crate::config::validate(&spec).unwrap();
        }
    }
}
