//! The five capability sets of process.capabilities.
//!
//! Order (the kernel dictates it): shrink the bounding set while we still hold CAP_SETPCAP,
//! switch user with keep-caps so the permitted set survives, then set effective, permitted
//! and inheritable at once, then raise ambient (which must be in permitted and inheritable).
//! A capability the running kernel does not know is skipped with a warning, as runc does.

use caps::{CapSet, Capability, CapsHashSet};
use oci_spec::runtime::LinuxCapabilities;
use std::str::FromStr;

pub type Result<T> = std::result::Result<T, String>;

/// Parse names like "CAP_NET_ADMIN" into the kernel's capability set, dropping (and
/// reporting) ones this kernel does not support.
pub fn parse(names: &[String], warnings: &mut Vec<String>) -> Result<CapsHashSet> {
    let supported = caps::runtime::procfs_all_supported(None).unwrap_or_else(|_| caps::all());
    let mut out = CapsHashSet::new();
    for n in names {
        let cap = Capability::from_str(n).map_err(|_| format!("unknown capability {n:?}"))?;
        if supported.contains(&cap) {
            out.insert(cap);
        } else {
            warnings.push(format!(
                "capability {n} is not supported by this kernel; ignored"
            ));
        }
    }
    Ok(out)
}

/// Set in OCI terms, computed once in the parent so errors surface before forking.
#[derive(Default, Clone, Debug)]
pub struct Sets {
    pub bounding: CapsHashSet,
    pub effective: CapsHashSet,
    pub permitted: CapsHashSet,
    pub inheritable: CapsHashSet,
    pub ambient: CapsHashSet,
}

pub fn from_spec(c: Option<&LinuxCapabilities>, warnings: &mut Vec<String>) -> Result<Sets> {
    let Some(c) = c else {
        return Ok(Sets::default());
    };
    let conv =
        |s: &Option<oci_spec::runtime::Capabilities>, w: &mut Vec<String>| -> Result<CapsHashSet> {
            let names: Vec<String> = s.iter().flatten().map(|c| c.to_string()).collect();
            let names: Vec<String> = names
                .into_iter()
                .map(|n| {
                    if n.starts_with("CAP_") {
                        n
                    } else {
                        format!("CAP_{n}")
                    }
                })
                .collect();
            parse(&names, w)
        };
    Ok(Sets {
        bounding: conv(c.bounding(), warnings)?,
        effective: conv(c.effective(), warnings)?,
        permitted: conv(c.permitted(), warnings)?,
        inheritable: conv(c.inheritable(), warnings)?,
        ambient: conv(c.ambient(), warnings)?,
    })
}

/// Step 1: drop from the bounding set everything not listed.
pub fn drop_bounding(sets: &Sets) -> Result<()> {
    let current =
        caps::read(None, CapSet::Bounding).map_err(|e| format!("read bounding set: {e}"))?;
    for cap in current.difference(&sets.bounding) {
        caps::drop(None, CapSet::Bounding, *cap)
            .map_err(|e| format!("drop {cap} from bounding set: {e}"))?;
    }
    Ok(())
}

/// Step 3 (after the user switch): effective, permitted, inheritable, then ambient.
pub fn apply(sets: &Sets) -> Result<()> {
    // Permitted first would drop caps needed to set the others; set all three with capset
    // semantics through the crate: inheritable and effective must be subsets of permitted.
    caps::set(None, CapSet::Inheritable, &sets.inheritable)
        .map_err(|e| format!("set inheritable capabilities: {e}"))?;
    caps::set(
        None,
        CapSet::Effective,
        &sets
            .effective
            .intersection(&current_permitted())
            .cloned()
            .collect(),
    )
    .map_err(|e| format!("set effective capabilities: {e}"))?;
    caps::set(None, CapSet::Permitted, &sets.permitted)
        .map_err(|e| format!("set permitted capabilities: {e}"))?;
    caps::set(None, CapSet::Effective, &sets.effective)
        .map_err(|e| format!("set effective capabilities: {e}"))?;
    caps::clear(None, CapSet::Ambient).map_err(|e| format!("clear ambient capabilities: {e}"))?;
    for cap in &sets.ambient {
        // The kernel refuses ambient caps that are not permitted+inheritable (runc's own
        // `spec` asks for such); runc goes on silently. Only a debug line: this runs in the
        // container process, whose stderr may already be the workload's terminal.
        if let Err(e) = caps::raise(None, CapSet::Ambient, *cap) {
            crate::debug!("cannot raise ambient capability {cap}: {e}");
        }
    }
    Ok(())
}

fn current_permitted() -> CapsHashSet {
    caps::read(None, CapSet::Permitted).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_and_unknown_names_error() {
        let mut w = vec![];
        let s = parse(&["CAP_CHOWN".into(), "CAP_KILL".into()], &mut w).unwrap();
        assert!(s.contains(&Capability::CAP_CHOWN) && s.contains(&Capability::CAP_KILL));
        assert!(parse(&["CAP_NOT_A_THING".into()], &mut w).is_err());
    }
}
