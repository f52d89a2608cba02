//! A small classic-BPF assembler and the compiler from the syscall table to a seccomp program.
//!
//! Why not libseccomp: the table is the single source of truth and the program shape is fixed
//! (arch check, x32 check, a binary search over number ranges, register conditions), which is
//! ~150 lines here; doing it ourselves keeps the filter byte-for-byte reproducible from the table,
//! needs no C library in a static build, and lets the unit tests run the program in an
//! interpreter against every row.
//!
//! Program shape:
//! ```text
//!   ld arch; jeq AUDIT_ARCH_X86_64 ? next : KILL_PROCESS     (i386 / int 0x80)
//!   ld nr;   jge 0x40000000        ? KILL_PROCESS : next     (x32 ABI)
//!   binary search over ranges of consecutive numbers with one action; outside every range
//!   (numbers the table does not know) -> ERRNO(ENOSYS)
//! ```

use crate::table::{Action, Cond, Row};

pub const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
const X32_BIT: u32 = 0x4000_0000;

// seccomp_data offsets.
const OFF_NR: u32 = 0;
const OFF_ARCH: u32 = 4;
const fn off_arg_lo(i: u8) -> u32 {
    16 + 8 * i as u32
}
const fn off_arg_hi(i: u8) -> u32 {
    20 + 8 * i as u32
}

// Classic BPF opcodes used here.
const LD_W_ABS: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS
const JMP_JA: u16 = 0x05;
const JMP_JEQ_K: u16 = 0x15;
const JMP_JGE_K: u16 = 0x35;
const JMP_JSET_K: u16 = 0x45;
const RET_K: u16 = 0x06;

pub const RET_KILL_PROCESS: u32 = 0x8000_0000;
pub const RET_ALLOW: u32 = 0x7fff_0000;
pub const RET_USER_NOTIF: u32 = 0x7fc0_0000;
pub const RET_ERRNO: u32 = 0x0005_0000;

/// One instruction, laid out as the kernel's `struct sock_filter`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Insn {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

const fn insn(code: u16, jt: u8, jf: u8, k: u32) -> Insn {
    Insn { code, jt, jf, k }
}

/// The seccomp return value of a plain action (conditions are expanded separately).
fn ret_value(a: &Action) -> u32 {
    match a {
        Action::Pass | Action::PassIf { .. } => RET_ALLOW,
        Action::Emulate(_) => RET_USER_NOTIF,
        Action::Deny(e) => RET_ERRNO | (*e as u32 & 0xffff),
        Action::Kill => RET_KILL_PROCESS,
    }
}

/// A run of consecutive syscall numbers sharing one action.
#[derive(Clone, Copy, Debug)]
struct Range {
    lo: u32,
    hi: u32, // inclusive
    action: Action,
}

fn same_filter_effect(a: &Action, b: &Action) -> bool {
    match (a, b) {
        // Different emulations are the same to the filter.
        (Action::Emulate(_), Action::Emulate(_)) => true,
        _ => a == b,
    }
}

fn ranges(rows: &[Row]) -> Result<Vec<Range>, String> {
    let mut out: Vec<Range> = Vec::new();
    for r in rows {
        if r.nr < 0 || r.nr >= X32_BIT as i64 {
            return Err(format!(
                "row {} has number {} outside 0..0x40000000",
                r.name, r.nr
            ));
        }
        let nr = r.nr as u32;
        let next_free = match out.last() {
            Some(last) if nr <= last.hi => {
                return Err(format!("rows not sorted at {} ({})", r.name, r.nr))
            }
            Some(last) => last.hi + 1,
            None => 0,
        };
        if let Some(last) = out.last_mut() {
            if nr == next_free && same_filter_effect(&last.action, &r.action) {
                last.hi = nr;
                continue;
            }
        }
        if nr > next_free {
            // A hole: numbers the table does not know.
            out.push(Range {
                lo: next_free,
                hi: nr - 1,
                action: Action::Deny(libc::ENOSYS),
            });
        }
        out.push(Range {
            lo: nr,
            hi: nr,
            action: r.action,
        });
    }
    let next = out.last().map(|r| r.hi + 1).unwrap_or(0);
    out.push(Range {
        lo: next,
        hi: X32_BIT - 1,
        action: Action::Deny(libc::ENOSYS),
    });
    Ok(out)
}

/// Code for one range's action; the accumulator holds nr on entry.
fn leaf(action: &Action) -> Vec<Insn> {
    match action {
        Action::PassIf { cond, errno } => {
            let deny = RET_ERRNO | (*errno as u32 & 0xffff);
            let mut v = cond_code(cond);
            // Layout: cond code jumps to the last two instructions: [.. ALLOW, DENY].
            v.push(insn(RET_K, 0, 0, RET_ALLOW));
            v.push(insn(RET_K, 0, 0, deny));
            v
        }
        a => vec![insn(RET_K, 0, 0, ret_value(a))],
    }
}

/// Condition code that falls through to the ALLOW return when `cond` holds and jumps to the
/// DENY return right after it otherwise. Built back to front so jump offsets are known.
fn cond_code(cond: &Cond) -> Vec<Insn> {
    match *cond {
        Cond::MaskClear { arg, mask } => {
            let (lo, hi) = (mask as u32, (mask >> 32) as u32);
            // Distance to DENY counted from the instruction after each jump:
            //   0 ld lo; 1 jset lo -> DENY; 2 ld hi; 3 jset hi -> DENY; [ALLOW][DENY]
            vec![
                insn(LD_W_ABS, 0, 0, off_arg_lo(arg)),
                insn(JMP_JSET_K, 3, 0, lo),
                insn(LD_W_ABS, 0, 0, off_arg_hi(arg)),
                insn(JMP_JSET_K, 1, 0, hi),
            ]
        }
        Cond::OneOf { arg, values } => {
            // For each value: ld lo; jeq lo ? (ld hi; jeq hi ? ALLOW : next) : next.
            // Each value is 4 instructions; after the last comes a jump to DENY.
            let n = values.len();
            let mut v = Vec::with_capacity(4 * n + 1);
            for (i, val) in values.iter().enumerate() {
                let (lo, hi) = (*val as u32, (*val >> 32) as u32);
                let rest = 4 * (n - i - 1) as u32 + 1; // instructions after this block before ALLOW
                v.push(insn(LD_W_ABS, 0, 0, off_arg_lo(arg)));
                v.push(insn(JMP_JEQ_K, 0, 2, lo));
                v.push(insn(LD_W_ABS, 0, 0, off_arg_hi(arg)));
                v.push(insn(JMP_JEQ_K, rest as u8, 0, hi));
            }
            v.push(insn(JMP_JA, 0, 0, 1)); // none matched: skip ALLOW, land on DENY
            v
        }
        Cond::Low32NoneOf { arg, values } => {
            // 0: ld lo; 1+i: jeq values[i] -> DENY; then [ALLOW][DENY].
            let n = values.len();
            let mut v = Vec::with_capacity(n + 1);
            v.push(insn(LD_W_ABS, 0, 0, off_arg_lo(arg)));
            for (i, val) in values.iter().enumerate() {
                v.push(insn(JMP_JEQ_K, (n - i) as u8, 0, *val));
            }
            v
        }
    }
}

/// Binary search over `rs` (accumulator = nr). Each split is
/// `jge mid ? (ja right) : left`, so long subtrees never overflow the 8-bit conditional offsets.
fn tree(rs: &[Range]) -> Vec<Insn> {
    if rs.len() == 1 {
        return leaf(&rs[0].action);
    }
    let mid = rs.len() / 2;
    let left = tree(&rs[..mid]);
    let right = tree(&rs[mid..]);
    let mut v = Vec::with_capacity(2 + left.len() + right.len());
    v.push(insn(JMP_JGE_K, 0, 1, rs[mid].lo));
    v.push(insn(JMP_JA, 0, 0, left.len() as u32));
    v.extend(left);
    v.extend(right);
    v
}

/// Compile the table into a seccomp program.
pub fn compile(rows: &[Row]) -> Result<Vec<Insn>, String> {
    let rs = ranges(rows)?;
    let mut p = vec![
        insn(LD_W_ABS, 0, 0, OFF_ARCH),
        insn(JMP_JEQ_K, 1, 0, AUDIT_ARCH_X86_64),
        insn(RET_K, 0, 0, RET_KILL_PROCESS),
        insn(LD_W_ABS, 0, 0, OFF_NR),
        insn(JMP_JGE_K, 0, 1, X32_BIT),
        insn(RET_K, 0, 0, RET_KILL_PROCESS),
    ];
    p.extend(tree(&rs));
    if p.len() > 4096 {
        return Err(format!(
            "program has {} instructions, the kernel allows 4096",
            p.len()
        ));
    }
    Ok(p)
}

/// Run a program on one seccomp_data in a tiny interpreter (tests and self-checks). Only the
/// opcodes this module emits are understood.
pub fn run(prog: &[Insn], nr: i32, arch: u32, args: [u64; 6]) -> Result<u32, String> {
    let mut data = [0u8; 64];
    data[0..4].copy_from_slice(&nr.to_le_bytes());
    data[4..8].copy_from_slice(&arch.to_le_bytes());
    for (i, a) in args.iter().enumerate() {
        data[16 + 8 * i..24 + 8 * i].copy_from_slice(&a.to_le_bytes());
    }
    let mut acc: u32 = 0;
    let mut pc = 0usize;
    while pc < prog.len() {
        let i = prog[pc];
        pc += 1;
        match i.code {
            LD_W_ABS => {
                let o = i.k as usize;
                acc = u32::from_le_bytes(data[o..o + 4].try_into().map_err(|_| "bad load")?);
            }
            JMP_JA => pc += i.k as usize,
            JMP_JEQ_K => pc += if acc == i.k { i.jt } else { i.jf } as usize,
            JMP_JGE_K => pc += if acc >= i.k { i.jt } else { i.jf } as usize,
            JMP_JSET_K => pc += if acc & i.k != 0 { i.jt } else { i.jf } as usize,
            RET_K => return Ok(i.k),
            c => return Err(format!("unknown opcode {c:#x} at {}", pc - 1)),
        }
    }
    Err("fell off the end of the program".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::table;

    fn prog() -> Vec<Insn> {
        compile(table()).unwrap()
    }

    #[test]
    fn every_row_gets_its_action() {
        let p = prog();
        for r in table() {
            let got = run(&p, r.nr as i32, AUDIT_ARCH_X86_64, [0; 6]).unwrap();
            // All-zero args satisfy every PassIf in the table (clone 0, personality 0).
            assert_eq!(got, ret_value(&r.action), "{} ({})", r.name, r.nr);
        }
    }

    #[test]
    fn unknown_numbers_get_enosys() {
        let p = prog();
        for nr in [336, 400, 423, 470, 1000, 0x3fff_ffff] {
            assert_eq!(
                run(&p, nr, AUDIT_ARCH_X86_64, [0; 6]).unwrap(),
                RET_ERRNO | libc::ENOSYS as u32
            );
        }
    }

    #[test]
    fn other_abis_are_killed() {
        let p = prog();
        assert_eq!(run(&p, 0, 0x4000_0003, [0; 6]).unwrap(), RET_KILL_PROCESS); // i386
        assert_eq!(
            run(&p, 0x4000_0000 | 1, AUDIT_ARCH_X86_64, [0; 6]).unwrap(),
            RET_KILL_PROCESS
        );
        assert_eq!(
            run(&p, 0x4000_0000 + 520, AUDIT_ARCH_X86_64, [0; 6]).unwrap(),
            RET_KILL_PROCESS
        );
        assert_eq!(
            run(&p, -1, AUDIT_ARCH_X86_64, [0; 6]).unwrap(),
            RET_KILL_PROCESS
        );
    }

    #[test]
    fn clone_namespace_flags_are_refused() {
        let p = prog();
        let eperm = RET_ERRNO | libc::EPERM as u32;
        let thread = (libc::CLONE_VM | libc::CLONE_THREAD | libc::CLONE_SIGHAND) as u64;
        assert_eq!(
            run(&p, 56, AUDIT_ARCH_X86_64, [thread, 0, 0, 0, 0, 0]).unwrap(),
            RET_ALLOW
        );
        let ns = thread | libc::CLONE_NEWUSER as u64;
        assert_eq!(
            run(&p, 56, AUDIT_ARCH_X86_64, [ns, 0, 0, 0, 0, 0]).unwrap(),
            eperm
        );
        assert_eq!(
            run(
                &p,
                56,
                AUDIT_ARCH_X86_64,
                [libc::CLONE_NEWNS as u64, 0, 0, 0, 0, 0]
            )
            .unwrap(),
            eperm
        );
    }

    #[test]
    fn ioctl_refuses_terminal_injection_whatever_the_upper_bits() {
        let p = prog();
        let eperm = RET_ERRNO | libc::EPERM as u32;
        let run_ioctl = |cmd: u64| run(&p, 16, AUDIT_ARCH_X86_64, [0, cmd, 0, 0, 0, 0]).unwrap();
        assert_eq!(run_ioctl(0x5401 /* TCGETS */), RET_ALLOW);
        assert_eq!(run_ioctl(0x5412), eperm);
        assert_eq!(run_ioctl(0xffff_ffff_0000_5412), eperm);
        assert_eq!(run_ioctl(0x541c), eperm);
        assert_eq!(run_ioctl(0x5413 /* TIOCGWINSZ */), RET_ALLOW);
    }

    #[test]
    fn personality_only_standard_values() {
        let p = prog();
        let eperm = RET_ERRNO | libc::EPERM as u32;
        for ok in [0u64, 0xffff_ffff, 0x20000, 8, 0x20008] {
            assert_eq!(
                run(&p, 135, AUDIT_ARCH_X86_64, [ok, 0, 0, 0, 0, 0]).unwrap(),
                RET_ALLOW,
                "{ok:#x}"
            );
        }
        for bad in [
            0x0040_0000u64, /* READ_IMPLIES_EXEC */
            1,
            0x1_0000_0000,
            0xffff_ffff_ffff_ffff,
        ] {
            assert_eq!(
                run(&p, 135, AUDIT_ARCH_X86_64, [bad, 0, 0, 0, 0, 0]).unwrap(),
                eperm,
                "{bad:#x}"
            );
        }
    }

    #[test]
    fn program_is_small_and_search_is_shallow() {
        let p = prog();
        assert!(p.len() < 1024, "{} instructions", p.len());
    }
}
