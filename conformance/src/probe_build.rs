//! Builds the static in-container probe with cargo, in its own target directory so it never
//! fights the caller's build over a lock and never mixes static and dynamic artifacts.

use anyhow::{bail, Context, Result};
use std::path::PathBuf;
use std::process::Command;

const TARGET: &str = "x86_64-unknown-linux-gnu";

pub fn build() -> Result<PathBuf> {
    let manifest_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let target_dir = std::env::var_os("CONFORMANCE_PROBE_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest_dir.join("../target/conformance-probe"));
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    eprintln!("# building the static probe in {}", target_dir.display());
    let status = Command::new(cargo)
        .args([
            "build",
            "--release",
            "--bin",
            "conformance-probe",
            "--target",
            TARGET,
        ])
        .arg("--manifest-path")
        .arg(manifest_dir.join("Cargo.toml"))
        .env("CARGO_TARGET_DIR", &target_dir)
        .env("RUSTFLAGS", "-C target-feature=+crt-static")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .status()
        .context("running cargo to build the probe")?;
    if !status.success() {
        bail!("building the probe failed ({status}); pass a prebuilt one with --probe");
    }
    let probe = target_dir.join(TARGET).join("release/conformance-probe");
    check_static(&probe)?;
    Ok(probe)
}

/// The rootfs has no dynamic loader, so the probe must not need one (no PT_INTERP).
pub fn check_static(path: &std::path::Path) -> Result<()> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {path:?}"))?;
    if bytes.len() < 64 || &bytes[..4] != b"\x7fELF" || bytes[4] != 2 {
        bail!("{path:?} is not a 64-bit ELF file");
    }
    let u16_at = |o: usize| u16::from_le_bytes([bytes[o], bytes[o + 1]]) as usize;
    let u64_at = |o: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&bytes[o..o + 8]);
        u64::from_le_bytes(b) as usize
    };
    let (phoff, phentsize, phnum) = (u64_at(0x20), u16_at(0x36), u16_at(0x38));
    for i in 0..phnum {
        let off = phoff + i * phentsize;
        if off + 4 > bytes.len() {
            bail!("{path:?}: truncated program headers");
        }
        const PT_INTERP: u32 = 3;
        if u32::from_le_bytes([bytes[off], bytes[off + 1], bytes[off + 2], bytes[off + 3]])
            == PT_INTERP
        {
            bail!("{path:?} is dynamically linked; build it with +crt-static");
        }
    }
    Ok(())
}

#[cfg(test)]
mod unit {
    #[test]
    fn static_check_tells_static_from_dynamic() {
        // busybox-static is static; the host's sh is dynamically linked.
        if std::path::Path::new("/bin/busybox").exists() {
            assert!(super::check_static(std::path::Path::new("/bin/busybox")).is_ok());
        }
        assert!(super::check_static(std::path::Path::new("/bin/sh")).is_err());
        assert!(super::check_static(std::path::Path::new("/etc/hostname")).is_err());
    }
}
