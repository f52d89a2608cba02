//! The bpf(2) calls needed to load a cgroup device program and attach it to a cgroup2
//! directory, replacing the programs mantle attached before.

use crate::devices::Insn;
use crate::error::{Error, Result};
use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

const BPF_PROG_LOAD: libc::c_int = 5;
const BPF_PROG_ATTACH: libc::c_int = 8;
const BPF_PROG_DETACH: libc::c_int = 9;
const BPF_PROG_GET_FD_BY_ID: libc::c_int = 13;
const BPF_PROG_QUERY: libc::c_int = 16;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
const BPF_F_ALLOW_MULTI: u32 = 2;

/// Big enough for every bpf_attr variant used here; the kernel wants unused bytes zero.
#[repr(C, align(8))]
struct Attr([u8; 128]);

impl Attr {
    fn new() -> Attr {
        Attr([0; 128])
    }
    fn put_u32(&mut self, off: usize, v: u32) {
        self.0[off..off + 4].copy_from_slice(&v.to_ne_bytes());
    }
    fn put_u64(&mut self, off: usize, v: u64) {
        self.0[off..off + 8].copy_from_slice(&v.to_ne_bytes());
    }
    fn get_u32(&self, off: usize) -> u32 {
        u32::from_ne_bytes(self.0[off..off + 4].try_into().unwrap_or([0; 4]))
    }
}

fn bpf(cmd: libc::c_int, attr: &mut Attr) -> io::Result<libc::c_long> {
    // SAFETY: `attr` is a live, zero-initialised 128-byte buffer laid out as the union
    // bpf_attr variant for `cmd`; any pointers stored in it point to buffers that outlive
    // this call. The kernel reads/writes at most the size passed.
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr.0.as_mut_ptr(),
            std::mem::size_of::<Attr>() as libc::c_uint,
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn fd_from(r: libc::c_long) -> OwnedFd {
    // SAFETY: a successful bpf() that returns an fd hands us its only reference.
    unsafe { OwnedFd::from_raw_fd(r as i32) }
}

/// Loads a BPF_PROG_TYPE_CGROUP_DEVICE program; on a verifier error the log is included.
/// The first attempt runs without a log: a verbose log of a long program overflows any
/// buffer (ENOSPC) even when the program is fine. Only a failure is retried with one.
pub fn load_device_program(insns: &[Insn]) -> Result<OwnedFd> {
    let license = CString::new("Apache-2.0").unwrap_or_default();
    let attempt = |log: Option<&mut Vec<u8>>| {
        let mut attr = Attr::new();
        attr.put_u32(0, BPF_PROG_TYPE_CGROUP_DEVICE);
        attr.put_u32(4, insns.len() as u32);
        attr.put_u64(8, insns.as_ptr() as u64);
        attr.put_u64(16, license.as_ptr() as u64);
        if let Some(log) = log {
            attr.put_u32(24, 1); // log_level
            attr.put_u32(28, log.len() as u32);
            attr.put_u64(32, log.as_mut_ptr() as u64);
        }
        bpf(BPF_PROG_LOAD, &mut attr)
    };
    let source = match attempt(None) {
        Ok(fd) => return Ok(fd_from(fd)),
        Err(e) => e,
    };
    let mut log = vec![0u8; 256 * 1024];
    match attempt(Some(&mut log)) {
        Ok(fd) => Ok(fd_from(fd)),
        Err(_) => {
            // Report the first error; the log (possibly truncated) explains it, and its
            // last lines are where the verifier stopped.
            let end = log.iter().position(|b| *b == 0).unwrap_or(0);
            let text = String::from_utf8_lossy(&log[..end]);
            let lines: Vec<&str> = text.trim().lines().collect();
            let text = lines[lines.len().saturating_sub(20)..].join("\n");
            Err(Error::Bpf {
                op: "BPF_PROG_LOAD",
                source,
                log: if text.is_empty() {
                    String::new()
                } else {
                    format!("\nverifier log:\n{text}")
                },
            })
        }
    }
}

fn open_dir(dir: &Path) -> Result<File> {
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
        .open(dir)
        .map_err(|source| Error::Read {
            path: dir.to_path_buf(),
            source,
        })
}

/// Ids of the device programs attached directly to the cgroup `dir`.
pub fn attached_device_programs(dir: &Path) -> Result<Vec<u32>> {
    let cg = open_dir(dir)?;
    let mut ids = vec![0u32; 64];
    let mut attr = Attr::new();
    attr.put_u32(0, cg.as_raw_fd() as u32);
    attr.put_u32(4, BPF_CGROUP_DEVICE);
    attr.put_u64(16, ids.as_mut_ptr() as u64);
    attr.put_u32(24, ids.len() as u32);
    bpf(BPF_PROG_QUERY, &mut attr).map_err(|source| Error::Bpf {
        op: "BPF_PROG_QUERY",
        source,
        log: String::new(),
    })?;
    ids.truncate(attr.get_u32(24) as usize);
    Ok(ids)
}

/// Attaches `prog` to `dir` and then detaches every device program that was attached there
/// before, so the cgroup is never without a filter during an update.
pub fn replace_device_program(dir: &Path, prog: &OwnedFd) -> Result<()> {
    let old = attached_device_programs(dir)?;
    let cg = open_dir(dir)?;
    let mut attr = Attr::new();
    attr.put_u32(0, cg.as_raw_fd() as u32);
    attr.put_u32(4, prog.as_raw_fd() as u32);
    attr.put_u32(8, BPF_CGROUP_DEVICE);
    attr.put_u32(12, BPF_F_ALLOW_MULTI);
    bpf(BPF_PROG_ATTACH, &mut attr).map_err(|source| Error::Bpf {
        op: "BPF_PROG_ATTACH",
        source,
        log: String::new(),
    })?;
    for id in old {
        let mut a = Attr::new();
        a.put_u32(0, id);
        let Ok(fd) = bpf(BPF_PROG_GET_FD_BY_ID, &mut a) else {
            continue; // already gone
        };
        let old_fd = fd_from(fd);
        let mut d = Attr::new();
        d.put_u32(0, cg.as_raw_fd() as u32);
        d.put_u32(4, old_fd.as_raw_fd() as u32);
        d.put_u32(8, BPF_CGROUP_DEVICE);
        bpf(BPF_PROG_DETACH, &mut d).map_err(|source| Error::Bpf {
            op: "BPF_PROG_DETACH",
            source,
            log: String::new(),
        })?;
    }
    Ok(())
}

/// Loads the program for `rules` and installs it on `dir`.
pub fn apply_device_rules(dir: &Path, rules: &[crate::devices::DeviceRule]) -> Result<()> {
    let prog = load_device_program(&crate::devices::device_program(rules))?;
    replace_device_program(dir, &prog)
}
