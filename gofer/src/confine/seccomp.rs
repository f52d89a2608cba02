//! The gofer's own seccomp filter: a classic BPF allowlist built from
//! `sys::SERVER_SYSCALLS` (the list lives next to the wrappers that make those calls).

use std::io;

use crate::sys::SERVER_SYSCALLS;
use crate::Error;

const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
const X32_SYSCALL_BIT: u32 = 0x4000_0000;
const RET_KILL_PROCESS: u32 = 0x8000_0000;
const RET_ERRNO: u32 = 0x0005_0000;
const RET_ALLOW: u32 = 0x7fff_0000;
// struct seccomp_data offsets.
const OFF_NR: u32 = 0;
const OFF_ARCH: u32 = 4;

fn stmt(code: u16, k: u32) -> libc::sock_filter {
    libc::sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

fn jump(code: u16, k: u32, jt: u8, jf: u8) -> libc::sock_filter {
    libc::sock_filter { code, jt, jf, k }
}

/// The filter program. Unknown calls get EPERM rather than a kill: a syscall missed here
/// then shows up as an error reply (and a failing test), not a dead container; the attack
/// surface is the same either way.
pub fn program() -> Vec<libc::sock_filter> {
    const LD_W_ABS: u16 = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
    const JEQ: u16 = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
    const JGE: u16 = (libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K) as u16;
    const RET: u16 = (libc::BPF_RET | libc::BPF_K) as u16;
    let mut nrs: Vec<u32> = SERVER_SYSCALLS.iter().map(|n| *n as u32).collect();
    nrs.sort_unstable();
    nrs.dedup();
    assert!(nrs.len() < 255, "jump offsets are 8 bits");
    let mut p = vec![
        stmt(LD_W_ABS, OFF_ARCH),
        jump(JEQ, AUDIT_ARCH_X86_64, 1, 0),
        stmt(RET, RET_KILL_PROCESS),
        stmt(LD_W_ABS, OFF_NR),
        jump(JGE, X32_SYSCALL_BIT, 0, 1),
        stmt(RET, RET_KILL_PROCESS),
    ];
    let n = nrs.len();
    for (i, nr) in nrs.iter().enumerate() {
        // On a match skip the remaining checks and the default return, landing on ALLOW.
        p.push(jump(JEQ, *nr, (n - i) as u8, 0));
    }
    p.push(stmt(RET, RET_ERRNO | libc::EPERM as u32));
    p.push(stmt(RET, RET_ALLOW));
    p
}

/// Install the filter on every thread of the process. Returns the number of allowed calls.
pub fn install() -> Result<usize, Error> {
    let prog = program();
    let fprog = libc::sock_fprog {
        len: prog.len() as u16,
        filter: prog.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: fprog points to `prog`, alive for the call; no_new_privs is already set.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            libc::SECCOMP_FILTER_FLAG_TSYNC,
            &fprog as *const libc::sock_fprog,
        )
    };
    if rc != 0 {
        return Err(Error::Confine {
            step: "seccomp filter",
            source: if rc < 0 {
                io::Error::last_os_error()
            } else {
                io::Error::other(format!("TSYNC failed for thread {rc}"))
            },
        });
    }
    Ok(prog.len() - 8)
}
