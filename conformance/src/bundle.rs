//! Bundles: a rootfs made of busybox-static plus the probe, and a config.json per test.

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};

/// Applets the tests use through `sh -c`; linked to /bin/busybox in every rootfs.
const APPLETS: &[&str] = &[
    "sh", "cat", "echo", "ls", "sleep", "true", "false", "touch", "mkdir", "id", "env", "test",
    "grep", "mount", "stat", "readlink", "printf", "rm", "hostname",
];

/// Everything a rootfs needs, found once per run.
pub struct RootfsTemplate {
    pub busybox: PathBuf,
    pub probe: PathBuf,
}

impl RootfsTemplate {
    pub fn new(busybox: &Path, probe: &Path) -> Result<RootfsTemplate> {
        for p in [busybox, probe] {
            if !p.is_file() {
                bail!("{} does not exist or is not a file", p.display());
            }
        }
        Ok(RootfsTemplate {
            busybox: busybox.to_path_buf(),
            probe: probe.to_path_buf(),
        })
    }

    /// Writes a fresh rootfs at `dir`: FHS directories, busybox with applet links, the probe.
    pub fn populate(&self, dir: &Path) -> Result<()> {
        for d in [
            "bin", "sbin", "dev", "proc", "sys", "tmp", "etc", "root", "mnt", "run", "var", "usr",
            // Mount point of the shared bind mount, made here because a runtime running as a
            // mapped user (user namespace) may not be allowed to create it.
            "shared",
        ] {
            fs::create_dir_all(dir.join(d)).with_context(|| format!("mkdir {d}"))?;
        }
        fs::set_permissions(dir.join("tmp"), fs::Permissions::from_mode(0o1777))?;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o755))?;
        copy_exec(&self.busybox, &dir.join("bin/busybox"))?;
        copy_exec(&self.probe, &dir.join("bin/probe"))?;
        for a in APPLETS {
            symlink("busybox", dir.join("bin").join(a)).with_context(|| format!("applet {a}"))?;
        }
        fs::write(
            dir.join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n",
        )?;
        fs::write(dir.join("etc/group"), "root:x:0:\nnogroup:x:65534:\n")?;
        Ok(())
    }
}

fn copy_exec(from: &Path, to: &Path) -> Result<()> {
    fs::copy(from, to).with_context(|| format!("copying {from:?} to {to:?}"))?;
    fs::set_permissions(to, fs::Permissions::from_mode(0o755))?;
    Ok(())
}

/// One bundle directory: `config.json`, `rootfs/`, and `shared/` (bind-mounted at /shared so
/// the container and host-side hooks can leave files for the suite).
pub struct Bundle {
    pub id: String,
    pub dir: PathBuf,
    pub config: Value,
}

impl Bundle {
    pub fn create(template: &RootfsTemplate, dir: &Path, id: &str) -> Result<Bundle> {
        fs::create_dir_all(dir.join("rootfs")).with_context(|| format!("creating {dir:?}"))?;
        fs::create_dir_all(dir.join("shared"))?;
        fs::set_permissions(dir.join("shared"), fs::Permissions::from_mode(0o777))?;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o755))?;
        template.populate(&dir.join("rootfs"))?;
        let config = default_config(&dir.join("shared"));
        Ok(Bundle {
            id: id.to_string(),
            dir: dir.to_path_buf(),
            config,
        })
    }

    pub fn rootfs(&self) -> PathBuf {
        self.dir.join("rootfs")
    }

    pub fn shared(&self) -> PathBuf {
        self.dir.join("shared")
    }

    /// Host path of a file in the shared directory.
    pub fn shared_file(&self, name: &str) -> PathBuf {
        self.shared().join(name)
    }

    pub fn write_config(&self) -> Result<()> {
        let text = serde_json::to_string_pretty(&self.config)?;
        fs::write(self.dir.join("config.json"), text).context("writing config.json")
    }

    pub fn set_args(&mut self, args: &[&str]) {
        self.config["process"]["args"] = json!(args);
    }

    /// Shell command run by busybox sh in the container.
    pub fn set_shell(&mut self, script: &str) {
        self.set_args(&["/bin/sh", "-c", script]);
    }

    pub fn process(&mut self) -> &mut Value {
        &mut self.config["process"]
    }

    pub fn linux(&mut self) -> &mut Value {
        &mut self.config["linux"]
    }

    pub fn add_mount(&mut self, m: Value) {
        if let Some(a) = self.config["mounts"].as_array_mut() {
            a.push(m);
        }
    }

    /// Adds (or replaces) a namespace entry.
    pub fn set_namespace(&mut self, kind: &str, path: Option<&str>) {
        self.remove_namespace(kind);
        let mut ns = json!({"type": kind});
        if let Some(p) = path {
            ns["path"] = json!(p);
        }
        if let Some(a) = self.config["linux"]["namespaces"].as_array_mut() {
            a.push(ns);
        }
    }

    pub fn remove_namespace(&mut self, kind: &str) {
        if let Some(a) = self.config["linux"]["namespaces"].as_array_mut() {
            a.retain(|n| n["type"] != kind);
        }
    }
}

/// The capability set of the default process (a docker-like default).
pub const DEFAULT_CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// A minimal valid config: the probe prints its report; no terminal; the usual /proc, /dev,
/// /sys mounts; pid, ipc, uts, mount and network namespaces.
pub fn default_config(shared: &Path) -> Value {
    json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": false,
            "user": {"uid": 0, "gid": 0},
            "args": ["/bin/probe", "report"],
            "env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
            "cwd": "/",
            "capabilities": {
                "bounding": DEFAULT_CAPS,
                "effective": DEFAULT_CAPS,
                "permitted": DEFAULT_CAPS,
            },
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": true
        },
        "root": {"path": "rootfs", "readonly": false},
        "hostname": "conformance",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
             "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs",
             "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/shared", "type": "bind", "source": shared,
             "options": ["rbind", "rw"]}
        ],
        "linux": {
            "resources": {"devices": [{"allow": false, "access": "rwm"}]},
            "namespaces": [
                {"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"},
                {"type": "mount"}
            ],
            "maskedPaths": [],
            "readonlyPaths": []
        }
    })
}
