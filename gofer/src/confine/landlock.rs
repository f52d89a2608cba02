//! Landlock through its three system calls (no crate needed, and every ABI difference is
//! visible here). Best effort: a kernel without Landlock, or with it disabled, leaves the
//! process unrestricted by it and the report says so.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use crate::Error;

const SYS_CREATE_RULESET: libc::c_long = 444;
const SYS_ADD_RULE: libc::c_long = 445;
const SYS_RESTRICT_SELF: libc::c_long = 446;
const CREATE_RULESET_VERSION: u32 = 1;
const RULE_PATH_BENEATH: u32 = 1;

// Filesystem access rights, by the ABI version that introduced them.
const EXECUTE: u64 = 1 << 0;
const READ_DIR: u64 = 1 << 3;
const MAKE_CHAR: u64 = 1 << 6;
const MAKE_BLOCK: u64 = 1 << 11;
const ABI1_ALL: u64 = (1 << 13) - 1;
const REFER: u64 = 1 << 13; // ABI 2
const TRUNCATE: u64 = 1 << 14; // ABI 3
const IOCTL_DEV: u64 = 1 << 15; // ABI 5
                                // Network rights (ABI 4) and scopes (ABI 6).
const NET_BIND_TCP: u64 = 1 << 0;
const NET_CONNECT_TCP: u64 = 1 << 1;
const SCOPE_ABSTRACT_UNIX_SOCKET: u64 = 1 << 0;
const SCOPE_SIGNAL: u64 = 1 << 1;

#[repr(C)]
struct RulesetAttr {
    handled_access_fs: u64,
    handled_access_net: u64,
    scoped: u64,
}

#[repr(C, packed)]
struct PathBeneathAttr {
    allowed_access: u64,
    parent_fd: i32,
}

/// What `restrict` put in force.
pub struct Applied {
    pub abi: Option<u32>,
    pub net: bool,
    pub scoped: bool,
}

/// The Landlock ABI version, or None when unsupported or disabled.
pub fn abi() -> Option<u32> {
    // SAFETY: the version query takes no attribute pointer.
    let v = unsafe {
        libc::syscall(
            SYS_CREATE_RULESET,
            std::ptr::null::<RulesetAttr>(),
            0usize,
            CREATE_RULESET_VERSION,
        )
    };
    (v > 0).then_some(v as u32)
}

fn handled_fs(abi: u32) -> u64 {
    let mut a = ABI1_ALL;
    if abi >= 2 {
        a |= REFER;
    }
    if abi >= 3 {
        a |= TRUNCATE;
    }
    if abi >= 5 {
        a |= IOCTL_DEV;
    }
    a
}

fn fail(step: &'static str) -> Error {
    Error::Confine {
        step,
        source: io::Error::last_os_error(),
    }
}

fn add_rule(ruleset: &OwnedFd, dir: &OwnedFd, access: u64) -> Result<(), Error> {
    let attr = PathBeneathAttr {
        allowed_access: access,
        parent_fd: dir.as_raw_fd(),
    };
    // SAFETY: attr is a valid landlock_path_beneath_attr for the duration of the call.
    let rc = unsafe {
        libc::syscall(
            SYS_ADD_RULE,
            ruleset.as_raw_fd(),
            RULE_PATH_BENEATH,
            &attr as *const PathBeneathAttr,
            0u32,
        )
    };
    if rc < 0 {
        return Err(fail("landlock add rule"));
    }
    Ok(())
}

/// Allow file access only beneath `root` (everything but executing and making device
/// nodes) and reading `empty_dir`; deny TCP and cross-domain abstract sockets and signals
/// where the ABI can express them.
pub fn restrict(root: &OwnedFd, empty_dir: Option<&OwnedFd>) -> Result<Applied, Error> {
    let Some(abi) = abi() else {
        return Ok(Applied {
            abi: None,
            net: false,
            scoped: false,
        });
    };
    let fs = handled_fs(abi);
    let attr = RulesetAttr {
        handled_access_fs: fs,
        handled_access_net: if abi >= 4 {
            NET_BIND_TCP | NET_CONNECT_TCP
        } else {
            0
        },
        scoped: if abi >= 6 {
            SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL
        } else {
            0
        },
    };
    // Older ABIs reject a larger struct with non-zero tail fields: pass only what they know.
    let size = match abi {
        1..=3 => 8,
        4 | 5 => 16,
        _ => std::mem::size_of::<RulesetAttr>(),
    };
    // SAFETY: attr is valid for `size` bytes (size <= its size).
    let fd = unsafe { libc::syscall(SYS_CREATE_RULESET, &attr as *const RulesetAttr, size, 0u32) };
    if fd < 0 {
        return Err(fail("landlock create ruleset"));
    }
    // SAFETY: a new fd that nothing else owns.
    let ruleset = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    add_rule(&ruleset, root, fs & !(EXECUTE | MAKE_CHAR | MAKE_BLOCK))?;
    if let Some(d) = empty_dir {
        add_rule(&ruleset, d, READ_DIR)?;
    }
    // SAFETY: plain syscall on the ruleset fd; no_new_privs is already set.
    let rc = unsafe { libc::syscall(SYS_RESTRICT_SELF, ruleset.as_raw_fd(), 0u32) };
    if rc < 0 {
        return Err(fail("landlock restrict self"));
    }
    Ok(Applied {
        abi: Some(abi),
        net: abi >= 4,
        scoped: abi >= 6,
    })
}
