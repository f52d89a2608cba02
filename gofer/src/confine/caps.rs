//! Dropping capabilities with raw capget/capset and prctl (no crate needed for five calls).

use std::io;

use crate::Error;

/// Capabilities the gofer keeps: enough to act on any file of the container as its owner
/// would (the sentry decides who may do what; the gofer is the hand that does it).
pub const KEPT: &[u32] = &[
    0,  // CAP_CHOWN: give created files the workload's owner
    1,  // CAP_DAC_OVERRIDE
    2,  // CAP_DAC_READ_SEARCH
    3,  // CAP_FOWNER: chmod/utimes/xattrs on files owned by others
    4,  // CAP_FSETID: keep setgid bits on chmod
    31, // CAP_SETFCAP: package managers set file capabilities
];

const CAP_SETPCAP: u32 = 8;
const VERSION_3: u32 = 0x2008_0522;

#[repr(C)]
struct Header {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct Data {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

fn kept_mask() -> u64 {
    KEPT.iter().fold(0, |m, c| m | 1 << c)
}

fn get() -> Result<[Data; 2], Error> {
    let mut h = Header {
        version: VERSION_3,
        pid: 0,
    };
    let mut d = [Data::default(); 2];
    // SAFETY: header and a two-element data array as capget(2) v3 expects.
    let rc = unsafe { libc::syscall(libc::SYS_capget, &mut h as *mut Header, d.as_mut_ptr()) };
    if rc < 0 {
        return Err(Error::Confine {
            step: "capget",
            source: io::Error::last_os_error(),
        });
    }
    Ok(d)
}

fn last_cap() -> u32 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(40)
}

/// Reduce bounding, ambient, inheritable, permitted and effective sets to `KEPT` (or less,
/// if we had less). Returns the effective set and whether the bounding set was reduced.
pub fn drop_to_kept() -> Result<(u64, bool), Error> {
    let cur = get()?;
    let permitted = cur[0].permitted as u64 | (cur[1].permitted as u64) << 32;
    let can_setpcap = permitted & (1 << CAP_SETPCAP) != 0;
    let keep = kept_mask();
    if can_setpcap {
        for cap in 0..=last_cap() {
            if keep & (1 << cap) == 0 {
                // SAFETY: prctl with integer arguments only.
                unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) };
            }
        }
    }
    // SAFETY: prctl with integer arguments only; failure (old kernel) is harmless.
    unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
            0,
            0,
            0,
        )
    };
    let new = permitted & keep;
    let mut h = Header {
        version: VERSION_3,
        pid: 0,
    };
    let d = [
        Data {
            effective: new as u32,
            permitted: new as u32,
            inheritable: 0,
        },
        Data {
            effective: (new >> 32) as u32,
            permitted: (new >> 32) as u32,
            inheritable: 0,
        },
    ];
    // SAFETY: header and a two-element data array as capset(2) v3 expects.
    let rc = unsafe { libc::syscall(libc::SYS_capset, &mut h as *mut Header, d.as_ptr()) };
    if rc < 0 {
        return Err(Error::Confine {
            step: "capset",
            source: io::Error::last_os_error(),
        });
    }
    Ok((new, can_setpcap))
}
