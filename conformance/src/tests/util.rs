//! Helpers shared by the test groups: capability numbers, mountinfo parsing, field access.

use anyhow::{bail, Context, Result};
use serde_json::Value;

/// capabilities(7) names in kernel bit order.
pub const CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

pub fn cap_mask(names: &[&str]) -> u64 {
    names
        .iter()
        .filter_map(|n| CAPS.iter().position(|c| c == n))
        .fold(0, |m, bit| m | (1u64 << bit))
}

pub fn cap_names(mask: u64) -> Vec<&'static str> {
    CAPS.iter()
        .enumerate()
        .filter(|(i, _)| mask & (1u64 << i) != 0)
        .map(|(_, n)| *n)
        .collect()
}

/// A /proc/self/status field from a probe report (e.g. "CapEff", "Uid").
pub fn status<'a>(report: &'a Value, field: &str) -> Result<&'a str> {
    report["status"][field]
        .as_str()
        .with_context(|| format!("report has no status field {field}"))
}

pub fn status_hex(report: &Value, field: &str) -> Result<u64> {
    let s = status(report, field)?;
    u64::from_str_radix(s, 16).with_context(|| format!("{field} is not hex: {s:?}"))
}

/// Compares a capability set with what was asked for, naming the differences.
pub fn check_caps(report: &Value, field: &str, want: &[&str]) -> Result<()> {
    let got = status_hex(report, field)?;
    let want_mask = cap_mask(want);
    // Capabilities the kernel does not know cannot be granted; ignore bits above the last cap.
    let last_cap = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok())
        .unwrap_or(40);
    let known = if last_cap >= 63 {
        u64::MAX
    } else {
        (1u64 << (last_cap + 1)) - 1
    };
    if got != want_mask & known {
        bail!(
            "{field}: got {:?}, want {:?}",
            cap_names(got),
            cap_names(want_mask & known)
        );
    }
    Ok(())
}

/// One line of /proc/self/mountinfo.
#[derive(Debug, Clone)]
pub struct MountEntry {
    pub mount_point: String,
    pub opts: Vec<String>,
    pub optional: Vec<String>,
    pub fstype: String,
    pub super_opts: Vec<String>,
}

impl MountEntry {
    pub fn has_opt(&self, o: &str) -> bool {
        self.opts.iter().any(|x| x == o) || self.super_opts.iter().any(|x| x == o)
    }
}

pub fn mountinfo(report: &Value) -> Result<Vec<MountEntry>> {
    let text = report["mountinfo"]
        .as_str()
        .context("report has no mountinfo")?;
    let mut v = Vec::new();
    for line in text.lines() {
        let Some((pre, post)) = line.split_once(" - ") else {
            continue;
        };
        let f: Vec<&str> = pre.split(' ').collect();
        let p: Vec<&str> = post.split(' ').collect();
        if f.len() < 6 || p.len() < 3 {
            continue;
        }
        v.push(MountEntry {
            mount_point: unescape(f[4]),
            opts: f[5].split(',').map(String::from).collect(),
            optional: f[6..].iter().map(|s| s.to_string()).collect(),
            fstype: p[0].to_string(),
            super_opts: p[2].split(',').map(String::from).collect(),
        });
    }
    Ok(v)
}

fn unescape(s: &str) -> String {
    s.replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\012", "\n")
        .replace("\\134", "\\")
}

/// The topmost mount at `path` (the last one listed).
pub fn mount_at(report: &Value, path: &str) -> Result<MountEntry> {
    mountinfo(report)?
        .into_iter()
        .rev()
        .find(|m| m.mount_point == path)
        .with_context(|| format!("no mount at {path}"))
}

/// `{"ok": false, "errno": N}` from a probe command.
pub fn errno_of(v: &Value) -> Option<i64> {
    if v["ok"] == Value::Bool(false) {
        v["errno"].as_i64()
    } else {
        None
    }
}

pub fn expect_ok(v: &Value, what: &str) -> Result<()> {
    if v["ok"] != Value::Bool(true) {
        bail!("{what}: expected success, got {v}");
    }
    Ok(())
}

pub fn expect_errno(v: &Value, errno: i64, what: &str) -> Result<()> {
    match errno_of(v) {
        Some(e) if e == errno => Ok(()),
        _ => bail!("{what}: expected errno {errno}, got {v}"),
    }
}

/// Namespace link of the suite itself (the runtime namespace), e.g. "net:[4026531840]".
pub fn host_ns(kind: &str) -> Result<String> {
    let link = std::fs::read_link(format!("/proc/self/ns/{kind}"))
        .with_context(|| format!("reading /proc/self/ns/{kind}"))?;
    Ok(link.display().to_string())
}

pub fn ns_of_pid(pid: i32, kind: &str) -> Result<String> {
    let link = std::fs::read_link(format!("/proc/{pid}/ns/{kind}"))
        .with_context(|| format!("reading /proc/{pid}/ns/{kind}"))?;
    Ok(link.display().to_string())
}

#[cfg(test)]
mod unit {
    use super::*;
    use serde_json::json;

    #[test]
    fn cap_masks_follow_kernel_bit_order() {
        assert_eq!(cap_mask(&["CAP_CHOWN"]), 1);
        assert_eq!(
            cap_mask(&["CAP_KILL", "CAP_NET_BIND_SERVICE"]),
            (1 << 5) | (1 << 10)
        );
        assert_eq!(cap_mask(&["CAP_NOT_REAL"]), 0);
        assert_eq!(cap_names(1 << 21), vec!["CAP_SYS_ADMIN"]);
    }

    #[test]
    fn mountinfo_lines_parse_with_optional_fields() {
        let r = json!({"mountinfo": "162 84 254:0 /x / rw,relatime shared:5 master:2 - ext4 /dev/vda rw\n\
            170 162 0:60 / /mnt/a\\040b ro,nosuid - tmpfs tmpfs rw,size=1024k\n"});
        let m = mountinfo(&r).unwrap();
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].optional, vec!["shared:5", "master:2"]);
        assert_eq!(m[1].mount_point, "/mnt/a b");
        assert!(m[1].has_opt("nosuid") && m[1].has_opt("size=1024k"));
        assert!(mount_at(&r, "/nope").is_err());
    }

    #[test]
    fn errno_helpers() {
        let v = json!({"ok": false, "errno": 30});
        assert_eq!(errno_of(&v), Some(30));
        assert!(expect_errno(&v, 30, "x").is_ok());
        assert!(expect_errno(&v, 1, "x").is_err());
        assert!(expect_ok(&v, "x").is_err());
    }
}
