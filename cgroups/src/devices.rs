//! Device access rules: the v1 `devices.allow`/`devices.deny` lines and, for cgroup v2, a
//! BPF_PROG_TYPE_CGROUP_DEVICE program assembled here (no compiler, no libbpf).
//!
//! Semantics follow the v1 controller, which OCI was written for: a rule `a *:* rwm` sets the
//! default (allow or deny everything) and drops every earlier rule; other rules are
//! exceptions, and a later rule wins over an earlier one. An allow rule grants a request only
//! if it covers every access bit asked for; a deny rule refuses a request that asks for any
//! bit it names. With no "all" rule the default is deny (an allow list), as in runc: a bundle
//! that forgets its leading deny-all must not get every device. (v1 cannot punch a hole into
//! a wildcard allow; the program can, and does.)
//!
//! Threat: this program is the only thing between the container and raw disks or /dev/mem on
//! cgroup v2. It is generated from a small rule model, never from text, and tested by running
//! it through an interpreter of the instruction subset it uses (see tests).

use crate::error::{Error, Result};
use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};

/// Access bits, numbered as the kernel's BPF_DEVCG_ACC_*.
pub const ACC_MKNOD: u8 = 1;
pub const ACC_READ: u8 = 2;
pub const ACC_WRITE: u8 = 4;
const ACC_ALL: u8 = ACC_MKNOD | ACC_READ | ACC_WRITE;

/// Device kinds, numbered as BPF_DEVCG_DEV_*.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DevKind {
    All,
    Block = 1,
    Char = 2,
}

/// One validated rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceRule {
    pub allow: bool,
    pub kind: DevKind,
    /// `None` is the wildcard `*`.
    pub major: Option<u32>,
    pub minor: Option<u32>,
    pub access: u8,
}

impl DeviceRule {
    /// Converts an OCI rule. FIFO (`p`) rules return `None`: the device controller does
    /// not govern FIFOs.
    pub fn from_oci(r: &LinuxDeviceCgroup) -> Result<Option<DeviceRule>> {
        let kind = match r.typ().unwrap_or(LinuxDeviceType::A) {
            LinuxDeviceType::A => DevKind::All,
            LinuxDeviceType::B => DevKind::Block,
            LinuxDeviceType::C | LinuxDeviceType::U => DevKind::Char,
            LinuxDeviceType::P => return Ok(None),
        };
        let num = |v: Option<i64>, what: &str| -> Result<Option<u32>> {
            match v {
                None | Some(-1) => Ok(None),
                Some(n) => u32::try_from(n).map(Some).map_err(|_| {
                    Error::invalid_resource("devices", format!("{what} {n} out of range"))
                }),
            }
        };
        Ok(Some(DeviceRule {
            allow: r.allow(),
            kind,
            major: num(r.major(), "major")?,
            minor: num(r.minor(), "minor")?,
            access: parse_access(r.access().as_deref().unwrap_or(""))?,
        }))
    }

    /// True for `a *:* rwm`, the rule that resets the default.
    pub fn is_everything(&self) -> bool {
        self.kind == DevKind::All
            && self.major.is_none()
            && self.minor.is_none()
            && self.access == ACC_ALL
    }

    /// The v1 lines for this rule. The kernel reads a leading `a` as "everything" whatever
    /// follows, so a narrower `a` rule is split into its `b` and `c` halves.
    pub fn v1_lines(&self) -> Vec<String> {
        if self.is_everything() {
            return vec!["a".to_string()];
        }
        let kinds: &[char] = match self.kind {
            DevKind::All => &['b', 'c'],
            DevKind::Block => &['b'],
            DevKind::Char => &['c'],
        };
        let n = |v: Option<u32>| v.map_or("*".to_string(), |n| n.to_string());
        kinds
            .iter()
            .map(|k| {
                format!(
                    "{k} {}:{} {}",
                    n(self.major),
                    n(self.minor),
                    access_string(self.access)
                )
            })
            .collect()
    }
}

/// The devices every container may use, as runc allows them by default: mknod of any
/// node, and read/write of null, zero, full, random, urandom, tty, ptmx and the pty slaves.
/// The runtime appends these after the bundle's own rules (which usually start with a
/// deny-all), as runc does.
pub fn default_allowed() -> Vec<LinuxDeviceCgroup> {
    let rule = |typ: LinuxDeviceType, major: Option<i64>, minor: Option<i64>, access: &str| {
        let mut r = LinuxDeviceCgroup::default();
        r.set_allow(true);
        r.set_typ(Some(typ));
        r.set_major(major);
        r.set_minor(minor);
        r.set_access(Some(access.to_string()));
        r
    };
    use LinuxDeviceType::{B, C};
    vec![
        rule(C, None, None, "m"),
        rule(B, None, None, "m"),
        rule(C, Some(1), Some(3), "rwm"), // /dev/null
        rule(C, Some(1), Some(5), "rwm"), // /dev/zero
        rule(C, Some(1), Some(7), "rwm"), // /dev/full
        rule(C, Some(1), Some(8), "rwm"), // /dev/random
        rule(C, Some(1), Some(9), "rwm"), // /dev/urandom
        rule(C, Some(5), Some(0), "rwm"), // /dev/tty
        rule(C, Some(5), Some(2), "rwm"), // /dev/ptmx
        rule(C, Some(136), None, "rwm"),  // /dev/pts/*
    ]
}

/// Converts OCI rules, dropping FIFO rules.
pub fn rules_from_oci(rules: &[LinuxDeviceCgroup]) -> Result<Vec<DeviceRule>> {
    let mut out = Vec::new();
    for r in rules {
        out.extend(DeviceRule::from_oci(r)?);
    }
    Ok(out)
}

/// The v1 writes for `rules`: `(file, line)` pairs. They start from the last "everything"
/// rule (or an implicit deny-all when there is none, as in runc), since that rule discards
/// every rule before it anyway.
pub fn v1_writes(rules: &[DeviceRule]) -> Vec<(&'static str, String)> {
    let start = rules.iter().rposition(DeviceRule::is_everything);
    let mut out = Vec::new();
    if start.is_none() {
        out.push(("devices.deny", "a".to_string()));
    }
    for rule in &rules[start.unwrap_or(0)..] {
        let file = if rule.allow {
            "devices.allow"
        } else {
            "devices.deny"
        };
        out.extend(rule.v1_lines().into_iter().map(|l| (file, l)));
    }
    out
}

/// `"rwm"` -> bits; empty means all, as in runc.
pub fn parse_access(s: &str) -> Result<u8> {
    if s.is_empty() {
        return Ok(ACC_ALL);
    }
    let mut bits = 0;
    for c in s.chars() {
        bits |= match c {
            'r' => ACC_READ,
            'w' => ACC_WRITE,
            'm' => ACC_MKNOD,
            _ => {
                return Err(Error::invalid_resource(
                    "devices",
                    format!("access {s:?}: unknown letter {c:?}"),
                ))
            }
        };
    }
    Ok(bits)
}

fn access_string(bits: u8) -> String {
    let mut s = String::new();
    for (b, c) in [(ACC_READ, 'r'), (ACC_WRITE, 'w'), (ACC_MKNOD, 'm')] {
        if bits & b != 0 {
            s.push(c);
        }
    }
    s
}

/// One eBPF instruction as the kernel lays it out (struct bpf_insn).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C)]
pub struct Insn {
    pub code: u8,
    /// dst in the low nibble, src in the high nibble.
    pub regs: u8,
    pub off: i16,
    pub imm: i32,
}

// Opcodes used (class | op | source).
pub(crate) const LDX_W: u8 = 0x61; // BPF_LDX | BPF_MEM | BPF_W
pub(crate) const ALU32_AND_K: u8 = 0x54;
pub(crate) const ALU32_RSH_K: u8 = 0x74;
pub(crate) const ALU64_MOV_K: u8 = 0xb7;
pub(crate) const JMP32_JNE_K: u8 = 0x56;
pub(crate) const JMP32_JEQ_K: u8 = 0x16;
pub(crate) const EXIT: u8 = 0x95;

fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        regs: (src << 4) | dst,
        off,
        imm,
    }
}

/// Assembles the device program for `rules`.
/// The context is struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; } with
/// access_type = (access << 16) | kind; r1 points to it throughout.
///
/// Each rule block loads the fields it tests itself instead of sharing registers loaded
/// once: then no register is live across a block boundary, the verifier sees identical
/// states at every block entry and prunes them, and verification stays linear in the
/// number of rules (shared registers made it explode combinatorially past ~1000 rules).
pub fn device_program(rules: &[DeviceRule]) -> Vec<Insn> {
    let mut prog = Vec::new();
    // Later rules win, so test them first; an "everything" rule ends the search.
    let mut default_allow = false;
    for rule in rules.iter().rev() {
        if rule.is_everything() {
            default_allow = rule.allow;
            break;
        }
        prog.extend(rule_block(rule));
    }
    prog.push(insn(ALU64_MOV_K, 0, 0, 0, i32::from(default_allow)));
    prog.push(insn(EXIT, 0, 0, 0, 0));
    prog
}

/// The instructions that return the rule's verdict when a request matches it, and fall
/// through to the next block otherwise.
fn rule_block(rule: &DeviceRule) -> Vec<Insn> {
    // Jumps are emitted with off = -1 and patched to "past the end of this block".
    let mut b = Vec::new();
    if rule.kind != DevKind::All {
        b.push(insn(LDX_W, 2, 1, 0, 0));
        b.push(insn(ALU32_AND_K, 2, 0, 0, 0xffff));
        b.push(insn(JMP32_JNE_K, 2, 0, -1, rule.kind as i32));
    }
    if rule.access != ACC_ALL {
        b.push(insn(LDX_W, 3, 1, 0, 0));
        b.push(insn(ALU32_RSH_K, 3, 0, 0, 16));
        if rule.allow {
            // Any requested bit outside the rule -> not covered.
            b.push(insn(
                ALU32_AND_K,
                3,
                0,
                0,
                i32::from(!rule.access & ACC_ALL),
            ));
            b.push(insn(JMP32_JNE_K, 3, 0, -1, 0));
        } else {
            // No requested bit inside the rule -> not denied by it.
            b.push(insn(ALU32_AND_K, 3, 0, 0, i32::from(rule.access)));
            b.push(insn(JMP32_JEQ_K, 3, 0, -1, 0));
        }
    }
    if let Some(m) = rule.major {
        b.push(insn(LDX_W, 4, 1, 4, 0));
        b.push(insn(JMP32_JNE_K, 4, 0, -1, m as i32));
    }
    if let Some(m) = rule.minor {
        b.push(insn(LDX_W, 5, 1, 8, 0));
        b.push(insn(JMP32_JNE_K, 5, 0, -1, m as i32));
    }
    b.push(insn(ALU64_MOV_K, 0, 0, 0, i32::from(rule.allow)));
    b.push(insn(EXIT, 0, 0, 0, 0));
    let len = b.len();
    for (i, ins) in b.iter_mut().enumerate() {
        if ins.off == -1 {
            ins.off = (len - i - 1) as i16;
        }
    }
    b
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Runs a device program over one request, interpreting exactly the opcodes the
    /// generator uses; anything else fails the test.
    pub fn run(prog: &[Insn], kind: u32, access: u32, major: u32, minor: u32) -> u64 {
        let ctx = [(access << 16) | kind, major, minor];
        let mut r = [0u64; 11];
        let mut pc = 0usize;
        for _ in 0..10_000 {
            let i = prog[pc];
            let (dst, src) = ((i.regs & 0xf) as usize, (i.regs >> 4) as usize);
            pc += 1;
            match i.code {
                LDX_W => {
                    assert_eq!(src, 1, "loads only from ctx");
                    r[dst] = u64::from(ctx[(i.off / 4) as usize]);
                }
                ALU32_AND_K => r[dst] = u64::from((r[dst] as u32) & (i.imm as u32)),
                ALU32_RSH_K => r[dst] = u64::from((r[dst] as u32) >> i.imm),
                ALU64_MOV_K => r[dst] = i.imm as i64 as u64,
                JMP32_JNE_K if r[dst] as u32 != i.imm as u32 => pc += i.off as usize,
                JMP32_JEQ_K if r[dst] as u32 == i.imm as u32 => pc += i.off as usize,
                JMP32_JNE_K | JMP32_JEQ_K => {}
                EXIT => return r[0],
                c => panic!("unexpected opcode {c:#x}"),
            }
        }
        panic!("program did not terminate");
    }

    fn rule(
        allow: bool,
        kind: DevKind,
        maj: Option<u32>,
        min: Option<u32>,
        acc: &str,
    ) -> DeviceRule {
        DeviceRule {
            allow,
            kind,
            major: maj,
            minor: min,
            access: parse_access(acc).unwrap(),
        }
    }

    const R: u32 = ACC_READ as u32;
    const W: u32 = ACC_WRITE as u32;
    const M: u32 = ACC_MKNOD as u32;
    const CHR: u32 = 2;
    const BLK: u32 = 1;

    #[test]
    fn default_deny_with_exceptions() {
        let rules = [
            rule(false, DevKind::All, None, None, "rwm"),
            rule(true, DevKind::Char, Some(1), Some(3), "rwm"), // /dev/null
            rule(true, DevKind::Char, Some(1), None, "r"),
            rule(false, DevKind::Char, Some(1), Some(3), "w"),
            rule(true, DevKind::All, Some(8), None, "m"),
        ];
        let p = device_program(&rules);
        assert_eq!(run(&p, CHR, R, 1, 3), 1);
        assert_eq!(run(&p, CHR, W, 1, 3), 0, "later deny w wins");
        assert_eq!(run(&p, CHR, R | W, 1, 3), 0, "deny hits any requested bit");
        assert_eq!(run(&p, CHR, M, 1, 3), 1);
        assert_eq!(run(&p, CHR, R, 1, 9), 1, "c 1:* r");
        assert_eq!(run(&p, CHR, R | W, 1, 9), 0, "w not covered");
        assert_eq!(run(&p, CHR, R, 2, 9), 0, "default deny");
        assert_eq!(run(&p, BLK, R, 1, 3), 0, "kind must match");
        assert_eq!(run(&p, BLK, M, 8, 0), 1, "a 8:* m covers block");
        assert_eq!(run(&p, CHR, M, 8, 7), 1, "a 8:* m covers char");
        assert_eq!(run(&p, BLK, R, 8, 0), 0);
    }

    #[test]
    fn everything_rule_resets() {
        let rules = [
            rule(true, DevKind::Char, Some(1), Some(3), "rwm"),
            rule(false, DevKind::All, None, None, ""),
        ];
        let p = device_program(&rules);
        assert_eq!(
            run(&p, CHR, R, 1, 3),
            0,
            "earlier allow dropped by deny-all"
        );
        let p = device_program(&[rule(true, DevKind::All, None, None, "rwm")]);
        assert_eq!(run(&p, BLK, R | W | M, 259, 0), 1);
        let p = device_program(&[]);
        assert_eq!(
            run(&p, BLK, R, 8, 0),
            0,
            "no rules: default deny, like runc"
        );
        let p = device_program(&[rule(true, DevKind::Char, Some(1), Some(3), "rwm")]);
        assert_eq!(run(&p, CHR, R, 1, 3), 1);
        assert_eq!(
            run(&p, CHR, R, 1, 5),
            0,
            "no leading deny-all is still an allow list"
        );
    }

    #[test]
    fn allow_all_then_deny_one() {
        let rules = [
            rule(true, DevKind::All, None, None, "rwm"),
            rule(false, DevKind::Block, None, None, "rwm"),
            rule(false, DevKind::Char, Some(1), Some(1), "rw"), // /dev/mem
        ];
        let p = device_program(&rules);
        assert_eq!(run(&p, CHR, R, 1, 3), 1);
        assert_eq!(run(&p, BLK, R, 8, 0), 0);
        assert_eq!(run(&p, CHR, R, 1, 1), 0);
        assert_eq!(run(&p, CHR, M, 1, 1), 1, "only rw denied");
    }

    #[test]
    fn large_numbers_compare_as_u32() {
        let big = u32::MAX - 1;
        let rules = [
            rule(false, DevKind::All, None, None, "rwm"),
            rule(true, DevKind::Char, Some(big), Some(big), "r"),
        ];
        let p = device_program(&rules);
        assert_eq!(run(&p, CHR, R, big, big), 1);
        assert_eq!(run(&p, CHR, R, big - 1, big), 0);
    }

    #[test]
    fn defaults_open_only_the_usual_nodes() {
        let mut rules = vec![rule(false, DevKind::All, None, None, "rwm")];
        rules.extend(rules_from_oci(&default_allowed()).unwrap());
        let p = device_program(&rules);
        assert_eq!(run(&p, CHR, R | W, 1, 3), 1, "/dev/null");
        assert_eq!(run(&p, CHR, R | W, 136, 4), 1, "/dev/pts/4");
        assert_eq!(run(&p, BLK, M, 8, 0), 1, "mknod allowed");
        assert_eq!(run(&p, BLK, R, 8, 0), 0, "raw disk read refused");
        assert_eq!(run(&p, CHR, R, 1, 1), 0, "/dev/mem refused");
    }

    #[test]
    fn v1_writes_start_from_a_default() {
        let allow_null = rule(true, DevKind::Char, Some(1), Some(3), "rwm");
        let w = v1_writes(&[allow_null]);
        assert_eq!(w[0], ("devices.deny", "a".to_string()), "implicit deny-all");
        assert_eq!(w[1], ("devices.allow", "c 1:3 rwm".to_string()));
        let w = v1_writes(&[
            allow_null,
            rule(true, DevKind::All, None, None, "rwm"),
            rule(false, DevKind::Block, None, None, "w"),
        ]);
        assert_eq!(
            w,
            vec![
                ("devices.allow", "a".to_string()),
                ("devices.deny", "b *:* w".to_string())
            ]
        );
    }

    #[test]
    fn v1_lines() {
        let r = rule(true, DevKind::All, None, None, "");
        assert_eq!(r.v1_lines(), vec!["a"]);
        let r = rule(true, DevKind::All, Some(1), None, "rw");
        assert_eq!(r.v1_lines(), vec!["b 1:* rw", "c 1:* rw"]);
        let r = rule(false, DevKind::Char, Some(5), Some(1), "mwr");
        assert_eq!(r.v1_lines(), vec!["c 5:1 rwm"]);
    }

    #[test]
    fn oci_conversion() {
        let json = r#"[{"allow":false,"access":"rwm"},
            {"allow":true,"type":"c","major":1,"minor":3,"access":"rw"},
            {"allow":true,"type":"p","access":"rw"},
            {"allow":true,"type":"u","major":-1,"access":"r"}]"#;
        let oci: Vec<LinuxDeviceCgroup> = serde_json::from_str(json).unwrap();
        let rules = rules_from_oci(&oci).unwrap();
        assert_eq!(rules.len(), 3);
        assert!(rules[0].is_everything() && !rules[0].allow);
        assert_eq!(rules[1].major, Some(1));
        assert_eq!(rules[2].kind, DevKind::Char);
        assert_eq!(rules[2].major, None);
        let bad: Vec<LinuxDeviceCgroup> =
            serde_json::from_str(r#"[{"allow":true,"access":"rx"}]"#).unwrap();
        assert!(rules_from_oci(&bad)
            .unwrap_err()
            .to_string()
            .contains("'x'"));
        let bad: Vec<LinuxDeviceCgroup> =
            serde_json::from_str(r#"[{"allow":true,"major":-5}]"#).unwrap();
        assert!(rules_from_oci(&bad).is_err());
    }
}
