//! Loading and checking a bundle's config.json.
//!
//! Errors name the offending field (`process.user.uid: invalid type ...`) because a user
//! staring at a 300-line generated config needs to know where to look. Known settings that
//! mantle cannot honour are reported (error when ignoring them would weaken isolation the user
//! asked for, warning otherwise); unknown properties are ignored, as the OCI spec requires.

use oci_spec::runtime::{LinuxNamespaceType, Spec};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("open {path}")]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config.json: {0}")]
    Parse(String),
    #[error("config.json: {0}")]
    Invalid(String),
}

/// Parse config.json text; the error names the JSON path of the bad field.
pub fn parse(text: &[u8]) -> Result<(Spec, serde_json::Value), ConfigError> {
    let mut value: serde_json::Value = serde_json::from_slice(text)
        .map_err(|e| ConfigError::Parse(format!("malformed JSON: {e}")))?;
    drop_unknown_capabilities(&mut value);
    let de = value.clone();
    let spec: Spec = serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        ConfigError::Parse(format!("field `{path}`: {}", e.into_inner()))
    })?;
    Ok((spec, value))
}

pub fn load(bundle: &Path) -> Result<(Spec, serde_json::Value), ConfigError> {
    let path = bundle.join("config.json");
    let text = std::fs::read(&path).map_err(|source| ConfigError::Open {
        path: path.clone(),
        source,
    })?;
    parse(&text)
}

/// Capabilities this build does not know are warned about and dropped, as runc does (a
/// config written for a newer kernel must still start); everything else is typed strictly.
fn drop_unknown_capabilities(v: &mut serde_json::Value) {
    let Some(caps) = v
        .pointer_mut("/process/capabilities")
        .and_then(|c| c.as_object_mut())
    else {
        return;
    };
    for (set, list) in caps.iter_mut() {
        let Some(list) = list.as_array_mut() else {
            continue;
        };
        list.retain(|c| {
            let known = serde_json::from_value::<oci_spec::runtime::Capability>(c.clone()).is_ok();
            if !known {
                crate::warn!("process.capabilities.{set}: unknown capability {c} ignored");
            }
            known
        });
    }
}

/// Structural checks the types cannot express. Returns warnings for settings that are
/// accepted but not applied.
pub fn validate(spec: &Spec) -> Result<Vec<String>, ConfigError> {
    let mut warnings = Vec::new();
    if spec.version().is_empty() {
        return Err(ConfigError::Invalid(
            "field `ociVersion` is required".into(),
        ));
    }
    let root = spec
        .root()
        .as_ref()
        .ok_or_else(|| ConfigError::Invalid("field `root` is required".into()))?;
    if root.path().as_os_str().is_empty() {
        return Err(ConfigError::Invalid(
            "field `root.path` must not be empty".into(),
        ));
    }
    let process = spec
        .process()
        .as_ref()
        .ok_or_else(|| ConfigError::Invalid("field `process` is required".into()))?;
    if process.args().as_ref().is_none_or(|a| a.is_empty()) {
        return Err(ConfigError::Invalid(
            "field `process.args` must name the program to run".into(),
        ));
    }
    if !process.cwd().is_absolute() {
        return Err(ConfigError::Invalid(format!(
            "field `process.cwd` must be an absolute path, got {:?}",
            process.cwd()
        )));
    }
    let mut seen = std::collections::HashSet::new();
    for l in process.rlimits().iter().flatten() {
        if !seen.insert(format!("{:?}", l.typ())) {
            return Err(ConfigError::Invalid(format!(
                "process.rlimits: {:?} is listed twice",
                l.typ()
            )));
        }
    }
    for m in spec.mounts().iter().flatten() {
        if !m.destination().is_absolute() {
            return Err(ConfigError::Invalid(format!(
                "field `mounts[].destination` must be absolute, got {:?}",
                m.destination()
            )));
        }
    }
    if let Some(linux) = spec.linux() {
        check_namespaces(
            linux,
            spec.hostname().is_some() || spec.domainname().is_some(),
        )?;
        if linux.intel_rdt().is_some() {
            warnings.push("linux.intelRdt is not supported by mantle and is ignored".into());
        }
        if linux.mount_label().as_ref().is_some_and(|l| !l.is_empty()) && !selinux_enabled() {
            warnings.push(
                "linux.mountLabel is set but SELinux is not enabled on this host; ignored".into(),
            );
        }
        if linux.memory_policy().is_some() {
            warnings.push("linux.memoryPolicy is not supported by mantle and is ignored".into());
        }
        if linux.net_devices().as_ref().is_some_and(|d| !d.is_empty()) {
            return Err(ConfigError::Invalid(
                "linux.netDevices is not supported by mantle".into(),
            ));
        }
    }
    if let Some(p) = process
        .apparmor_profile()
        .as_ref()
        .filter(|p| !p.is_empty())
    {
        if apparmor_enabled() {
            return Err(ConfigError::Invalid(format!(
                "process.apparmorProfile {p:?}: AppArmor profiles are not supported by mantle yet"
            )));
        }
        warnings.push(format!(
            "process.apparmorProfile {p:?} ignored: AppArmor is not enabled on this host"
        ));
    }
    if let Some(l) = process.selinux_label().as_ref().filter(|l| !l.is_empty()) {
        if selinux_enabled() {
            return Err(ConfigError::Invalid(format!(
                "process.selinuxLabel {l:?}: SELinux labels are not supported by mantle yet"
            )));
        }
        warnings.push(format!(
            "process.selinuxLabel {l:?} ignored: SELinux is not enabled on this host"
        ));
    }
    Ok(warnings)
}

fn check_namespaces(linux: &oci_spec::runtime::Linux, wants_uts: bool) -> Result<(), ConfigError> {
    let nss = linux.namespaces().clone().unwrap_or_default();
    let mut seen = std::collections::HashSet::new();
    for ns in &nss {
        if !seen.insert(ns.typ()) {
            return Err(ConfigError::Invalid(format!(
                "linux.namespaces: {:?} listed twice",
                ns.typ()
            )));
        }
    }
    if wants_uts && !nss.iter().any(|n| n.typ() == LinuxNamespaceType::Uts) {
        return Err(ConfigError::Invalid(
            "hostname/domainname need a new UTS namespace (linux.namespaces has no \"uts\")".into(),
        ));
    }
    let has_user = nss.iter().any(|n| n.typ() == LinuxNamespaceType::User);
    if !has_user && (linux.uid_mappings().is_some() || linux.gid_mappings().is_some()) {
        return Err(ConfigError::Invalid(
            "linux.uidMappings/gidMappings need a user namespace".into(),
        ));
    }
    if linux.time_offsets().is_some() && !nss.iter().any(|n| n.typ() == LinuxNamespaceType::Time) {
        return Err(ConfigError::Invalid(
            "linux.timeOffsets needs a time namespace".into(),
        ));
    }
    Ok(())
}

fn apparmor_enabled() -> bool {
    std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
        .is_ok_and(|s| s.starts_with('Y'))
}

fn selinux_enabled() -> bool {
    Path::new("/sys/fs/selinux/enforce").exists()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrong_type_names_the_field() {
        let text = br#"{"ociVersion":"1.0.0","root":{"path":"rootfs"},"process":{"cwd":"/","user":{"uid":"zero","gid":0},"args":["sh"]}}"#;
        let err = parse(text).unwrap_err().to_string();
        assert!(err.contains("process.user.uid"), "{err}");
    }

    #[test]
    fn malformed_json_is_reported() {
        let err = parse(b"{\"ociVersion\": ").unwrap_err().to_string();
        assert!(err.contains("malformed JSON"), "{err}");
    }

    #[test]
    fn unknown_fields_are_ignored_and_missing_root_rejected() {
        let text = br#"{"ociVersion":"1.0.0","future":{"x":1},"process":{"cwd":"/","user":{"uid":0,"gid":0},"args":["sh"]}}"#;
        let (spec, _) = parse(text).unwrap();
        let err = validate(&spec).unwrap_err().to_string();
        assert!(err.contains("root"), "{err}");
    }

    #[test]
    fn unknown_capabilities_are_dropped_and_duplicate_rlimits_rejected() {
        let text = br#"{"ociVersion":"1.0.0","root":{"path":"r"},"process":{"cwd":"/","user":{"uid":0,"gid":0},"args":["sh"],
            "capabilities":{"bounding":["CAP_KILL","CAP_FROM_THE_FUTURE"]},
            "rlimits":[{"type":"RLIMIT_NOFILE","hard":1,"soft":1},{"type":"RLIMIT_NOFILE","hard":2,"soft":2}]}}"#;
        let (spec, _) = parse(text).unwrap();
        let caps = spec
            .process()
            .as_ref()
            .unwrap()
            .capabilities()
            .clone()
            .unwrap();
        assert_eq!(caps.bounding().as_ref().unwrap().len(), 1);
        assert!(validate(&spec)
            .unwrap_err()
            .to_string()
            .contains("listed twice"));
    }

    #[test]
    fn relative_cwd_is_rejected() {
        let text = br#"{"ociVersion":"1.0.0","root":{"path":"r"},"process":{"cwd":"tmp","user":{"uid":0,"gid":0},"args":["sh"]}}"#;
        let (spec, _) = parse(text).unwrap();
        assert!(validate(&spec)
            .unwrap_err()
            .to_string()
            .contains("process.cwd"));
    }
}
