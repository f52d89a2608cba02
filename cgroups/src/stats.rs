//! Resource usage numbers, shaped like runc's `events --stats` JSON (runc types/events.go)
//! so tools that parse runc's output can parse mantle's.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

fn is_zero(v: &u64) -> bool {
    *v == 0
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    pub cpu: Cpu,
    pub memory: Memory,
    pub pids: Pids,
    pub blkio: Blkio,
    /// Keyed by page size (`2MB`).
    pub hugetlb: BTreeMap<String, Hugetlb>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cpu {
    pub usage: CpuUsage,
    pub throttling: Throttling,
}

/// All in nanoseconds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CpuUsage {
    #[serde(default, skip_serializing_if = "is_zero")]
    pub total: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub percpu: Vec<u64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub percpu_kernel: Vec<u64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub percpu_user: Vec<u64>,
    pub kernel: u64,
    pub user: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Throttling {
    #[serde(default, skip_serializing_if = "is_zero")]
    pub periods: u64,
    #[serde(default, rename = "throttledPeriods", skip_serializing_if = "is_zero")]
    pub throttled_periods: u64,
    /// Nanoseconds.
    #[serde(default, rename = "throttledTime", skip_serializing_if = "is_zero")]
    pub throttled_time: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemoryEntry {
    /// `u64::MAX` when unlimited, as runc reports it.
    pub limit: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub usage: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub max: u64,
    pub failcnt: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Memory {
    #[serde(default, skip_serializing_if = "is_zero")]
    pub cache: u64,
    pub usage: MemoryEntry,
    pub swap: MemoryEntry,
    pub kernel: MemoryEntry,
    #[serde(rename = "kernelTCP")]
    pub kernel_tcp: MemoryEntry,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub raw: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pids {
    #[serde(default, skip_serializing_if = "is_zero")]
    pub current: u64,
    /// 0 when unlimited, as runc reports it.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub limit: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlkioEntry {
    #[serde(default, skip_serializing_if = "is_zero")]
    pub major: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub minor: u64,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub op: String,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub value: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Blkio {
    #[serde(
        default,
        rename = "ioServiceBytesRecursive",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub io_service_bytes_recursive: Vec<BlkioEntry>,
    #[serde(
        default,
        rename = "ioServicedRecursive",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub io_serviced_recursive: Vec<BlkioEntry>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hugetlb {
    #[serde(default, skip_serializing_if = "is_zero")]
    pub usage: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub max: u64,
    pub failcnt: u64,
}

/// One line of `runc events` output: `{"type":"stats","id":..,"data":{..}}` or
/// `{"type":"oom","id":..}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    #[serde(rename = "type")]
    pub kind: String,
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Stats>,
}

impl Event {
    pub fn stats(id: &str, stats: Stats) -> Event {
        Event {
            kind: "stats".into(),
            id: id.into(),
            data: Some(stats),
        }
    }

    pub fn oom(id: &str) -> Event {
        Event {
            kind: "oom".into(),
            id: id.into(),
            data: None,
        }
    }
}

/// Parses v1 `blkio.throttle.*_recursive` text: `8:0 Read 4096` lines plus a `Total` line.
pub fn parse_blkio_v1(s: &str) -> Vec<BlkioEntry> {
    s.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let (dev, op, v) = match f[..] {
                [dev, op, v] => (dev, op, v),
                _ => return None,
            };
            let (maj, min) = dev.split_once(':')?;
            Some(BlkioEntry {
                major: maj.parse().ok()?,
                minor: min.parse().ok()?,
                op: op.to_string(),
                value: v.parse().ok()?,
            })
        })
        .collect()
}

/// Parses v2 `io.stat` (`8:0 rbytes=1 wbytes=2 rios=3 wios=4 ...`) into runc's v1-style
/// (bytes, ops) entry lists.
pub fn parse_io_stat(s: &str) -> (Vec<BlkioEntry>, Vec<BlkioEntry>) {
    let (mut bytes, mut ios) = (Vec::new(), Vec::new());
    for l in s.lines() {
        let mut it = l.split_whitespace();
        let Some((maj, min)) = it.next().and_then(|d| d.split_once(':')) else {
            continue;
        };
        let (Ok(major), Ok(minor)) = (maj.parse::<u64>(), min.parse::<u64>()) else {
            continue;
        };
        for kv in it {
            let Some((k, v)) = kv.split_once('=') else {
                continue;
            };
            let Ok(value) = v.parse::<u64>() else {
                continue;
            };
            let (list, op) = match k {
                "rbytes" => (&mut bytes, "Read"),
                "wbytes" => (&mut bytes, "Write"),
                "rios" => (&mut ios, "Read"),
                "wios" => (&mut ios, "Write"),
                _ => continue,
            };
            list.push(BlkioEntry {
                major,
                minor,
                op: op.into(),
                value,
            });
        }
    }
    (bytes, ios)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_json_shape() {
        let mut s = Stats::default();
        s.cpu.usage.total = 5;
        s.cpu.throttling.throttled_periods = 2;
        s.memory.usage.limit = u64::MAX;
        s.pids.current = 3;
        let v: serde_json::Value = serde_json::to_value(Event::stats("c1", s)).unwrap();
        assert_eq!(v["type"], "stats");
        assert_eq!(v["id"], "c1");
        assert_eq!(v["data"]["cpu"]["usage"]["total"], 5);
        assert_eq!(v["data"]["cpu"]["usage"]["kernel"], 0);
        assert_eq!(v["data"]["cpu"]["throttling"]["throttledPeriods"], 2);
        assert_eq!(v["data"]["memory"]["usage"]["limit"], u64::MAX);
        assert!(v["data"]["memory"]["kernelTCP"].is_object());
        assert_eq!(v["data"]["pids"]["current"], 3);
        assert!(v["data"]["blkio"].is_object());
        let oom = serde_json::to_string(&Event::oom("c1")).unwrap();
        assert_eq!(oom, r#"{"type":"oom","id":"c1"}"#);
    }

    #[test]
    fn blkio_parsers() {
        let v1 = parse_blkio_v1("8:0 Read 4096\n8:0 Write 0\nTotal 4096\n");
        assert_eq!(v1.len(), 2);
        assert_eq!(
            (v1[0].major, v1[0].op.as_str(), v1[0].value),
            (8, "Read", 4096)
        );
        let (b, i) = parse_io_stat("259:0 rbytes=10 wbytes=20 rios=1 wios=2 dbytes=0 dios=0\n");
        assert_eq!(b.len(), 2);
        assert_eq!(i[1].op, "Write");
        assert_eq!(i[1].value, 2);
        assert_eq!(b[0].major, 259);
    }
}
