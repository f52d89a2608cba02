//! OCI resources are written in v1 terms; these convert them to v2 values the way runc does
//! (libcontainer/cgroups/utils.go), so a bundle means the same thing on either version.

use crate::error::{Error, Result};

/// cpu.shares [2, 262144] -> cpu.weight [1, 10000]; 0 stays "unset".
pub fn shares_to_weight(shares: u64) -> u64 {
    if shares == 0 {
        return 0;
    }
    // Clamp into the v1 range first so the linear map cannot underflow or exceed 10000.
    let s = shares.clamp(2, 262_144);
    1 + ((s - 2) * 9999) / 262_142
}

/// blkio.weight [10, 1000] -> io.weight [1, 10000]; 0 stays "unset".
pub fn blkio_weight_to_io_weight(weight: u16) -> u64 {
    if weight == 0 {
        return 0;
    }
    let w = u64::from(weight.clamp(10, 1000));
    1 + (w - 10) * 9999 / 990
}

/// OCI `memory.swap` is memory+swap (v1 memsw); v2 `memory.swap.max` is swap alone.
/// Returns -1 for "max", 0 for "leave unset".
pub fn memory_swap_to_v2(swap: i64, memory: i64) -> Result<i64> {
    let bad = |r: String| Err(Error::invalid_resource("memory.swap", r));
    match () {
        // Unlimited memory with no explicit swap means "both unlimited", as on v1.
        _ if memory == -1 && swap == 0 => Ok(-1),
        _ if swap == -1 || swap == 0 => Ok(swap),
        _ if swap < -1 => bad(format!("invalid value {swap}")),
        _ if memory == -1 => Ok(swap),
        _ if memory == 0 => bad("unable to set swap limit without memory limit".into()),
        _ if memory < 0 => bad(format!("invalid memory value: {memory}")),
        _ if swap < memory => bad("memory+swap limit should be >= memory limit".into()),
        _ => Ok(swap - memory),
    }
}

/// Formats a v2 limit: negative means `max`.
pub fn v2_limit(v: i64) -> String {
    if v < 0 {
        "max".to_string()
    } else {
        v.to_string()
    }
}

/// cpu.max: `"<quota|max> <period>"`; `None` when neither is set.
pub fn cpu_max(quota: Option<i64>, period: Option<u64>) -> Option<String> {
    let quota = quota.filter(|q| *q != 0);
    let period = period.filter(|p| *p != 0);
    if quota.is_none() && period.is_none() {
        return None;
    }
    let mut s = match quota {
        Some(q) if q > 0 => q.to_string(),
        _ => "max".to_string(),
    };
    if let Some(p) = period {
        s.push(' ');
        s.push_str(&p.to_string());
    }
    Some(s)
}

/// Hugepage size as written in OCI (`2MB`, `1GB`, `64KB`) -> the same string, validated.
/// Both v1 (`hugetlb.2MB.limit_in_bytes`) and v2 (`hugetlb.2MB.max`) use this form.
pub fn hugepage_size(size: &str) -> Result<&str> {
    let ok = size.len() > 2
        && ["KB", "MB", "GB"].iter().any(|u| size.ends_with(u))
        && size[..size.len() - 2].bytes().all(|b| b.is_ascii_digit());
    if ok {
        Ok(size)
    } else {
        Err(Error::invalid_resource(
            "hugepageLimits.pageSize",
            format!("{size:?} is not like \"2MB\""),
        ))
    }
}

/// Hugepage sizes the kernel offers, in cgroup naming (`2MB`, `1GB`).
pub fn host_hugepage_sizes() -> Vec<String> {
    let Ok(rd) = std::fs::read_dir("/sys/kernel/mm/hugepages") else {
        return Vec::new();
    };
    let mut out: Vec<String> = rd
        .flatten()
        .filter_map(|e| {
            let n = e.file_name().into_string().ok()?;
            let kb: u64 = n
                .strip_prefix("hugepages-")?
                .strip_suffix("kB")?
                .parse()
                .ok()?;
            Some(kb_to_cgroup_size(kb))
        })
        .collect();
    out.sort();
    out
}

fn kb_to_cgroup_size(kb: u64) -> String {
    if kb >= 1 << 20 && kb.is_multiple_of(1 << 20) {
        format!("{}GB", kb >> 20)
    } else if kb >= 1 << 10 && kb.is_multiple_of(1 << 10) {
        format!("{}MB", kb >> 10)
    } else {
        format!("{kb}KB")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares() {
        assert_eq!(shares_to_weight(0), 0);
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(1024), 39);
        assert_eq!(shares_to_weight(262_144), 10_000);
        assert_eq!(shares_to_weight(1), 1);
        assert_eq!(shares_to_weight(u64::MAX), 10_000);
    }

    #[test]
    fn blkio() {
        assert_eq!(blkio_weight_to_io_weight(0), 0);
        assert_eq!(blkio_weight_to_io_weight(10), 1);
        assert_eq!(blkio_weight_to_io_weight(500), 4950);
        assert_eq!(blkio_weight_to_io_weight(1000), 10_000);
    }

    #[test]
    fn swap() {
        assert_eq!(memory_swap_to_v2(0, -1).unwrap(), -1);
        assert_eq!(memory_swap_to_v2(-1, 100).unwrap(), -1);
        assert_eq!(memory_swap_to_v2(0, 100).unwrap(), 0);
        assert_eq!(memory_swap_to_v2(300, -1).unwrap(), 300);
        assert_eq!(memory_swap_to_v2(300, 100).unwrap(), 200);
        assert_eq!(memory_swap_to_v2(100, 100).unwrap(), 0);
        assert!(memory_swap_to_v2(50, 100)
            .unwrap_err()
            .to_string()
            .contains(">= memory limit"));
        assert!(memory_swap_to_v2(50, 0)
            .unwrap_err()
            .to_string()
            .contains("without memory limit"));
        assert!(memory_swap_to_v2(50, -5).is_err());
        assert!(memory_swap_to_v2(-7, 5).is_err());
    }

    #[test]
    fn cpu_max_forms() {
        assert_eq!(cpu_max(None, None), None);
        assert_eq!(cpu_max(Some(0), Some(0)), None);
        assert_eq!(cpu_max(Some(50_000), None).unwrap(), "50000");
        assert_eq!(
            cpu_max(Some(50_000), Some(100_000)).unwrap(),
            "50000 100000"
        );
        assert_eq!(cpu_max(Some(-1), Some(100_000)).unwrap(), "max 100000");
        assert_eq!(cpu_max(None, Some(20_000)).unwrap(), "max 20000");
    }

    #[test]
    fn hugepages() {
        assert_eq!(hugepage_size("2MB").unwrap(), "2MB");
        assert!(hugepage_size("2M").is_err());
        assert!(hugepage_size("../x.MB").is_err());
        assert_eq!(kb_to_cgroup_size(2048), "2MB");
        assert_eq!(kb_to_cgroup_size(1_048_576), "1GB");
        assert_eq!(kb_to_cgroup_size(64), "64KB");
    }

    #[test]
    fn v2_limits() {
        assert_eq!(v2_limit(-1), "max");
        assert_eq!(v2_limit(4096), "4096");
    }
}
