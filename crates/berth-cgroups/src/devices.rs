//! OCI device rules (`linux.resources.devices`), for v1 and v2.
//!
//! The rules are read in order and the last one that matches a request
//! decides; what no rule matches is denied. On v1 that is the kernel's
//! `devices.deny`/`devices.allow` lists, started from "deny all"; on v2 it is
//! the eBPF program that [`program`] emits.
//!
//! Normalization first turns each OCI rule into a [`DeviceRule`]:
//! - type `a` with a major, a minor or an access narrower than `rwm` becomes
//!   a `c` and a `b` rule: the v1 kernel reads any `a` line as "all devices",
//!   whatever follows it;
//! - type `u` (unbuffered character) is `c`; type `p` (FIFO) is dropped, the
//!   devices cgroup does not govern FIFOs;
//! - a missing major or minor, or `-1`, is the wildcard `*`; a missing or
//!   empty access is `rwm`.
//!
//! One difference remains between v1 and v2, from the v1 kernel: there a deny
//! rule only removes access from an earlier allow rule naming exactly the same
//! type and numbers, so `allow c *:* rwm` then `deny c 1:3 rwm` still allows
//! 1:3 on v1, while the v2 program denies it.

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};

use crate::ErrorKind;
use crate::bpf::Insn;

#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    #[error("linux.resources.devices[{index}] ({rule}): {reason}")]
    InvalidRule { index: usize, rule: String, reason: &'static str },
}

impl DeviceError {
    pub fn kind(&self) -> ErrorKind {
        ErrorKind::InvalidSpec
    }
}

/// Access bits, with the values of the kernel's `BPF_DEVCG_ACC_*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Access(u8);

impl Access {
    pub const MKNOD: Access = Access(1);
    pub const READ: Access = Access(2);
    pub const WRITE: Access = Access(4);
    pub const ALL: Access = Access(7);

    pub fn bits(self) -> u8 {
        self.0
    }

    fn parse(s: &str) -> Option<Access> {
        if s.is_empty() {
            return Some(Access::ALL);
        }
        s.chars().try_fold(Access(0), |a, c| match c {
            'm' => Some(Access(a.0 | 1)),
            'r' => Some(Access(a.0 | 2)),
            'w' => Some(Access(a.0 | 4)),
            _ => None,
        })
    }
}

impl std::fmt::Display for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (bit, c) in [(2, 'r'), (4, 'w'), (1, 'm')] {
            if self.0 & bit != 0 {
                write!(f, "{c}")?;
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceKind {
    /// Every device of every type, every access.
    All,
    Char,
    Block,
}

/// One normalized rule. `None` numbers are wildcards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceRule {
    pub allow: bool,
    pub kind: DeviceKind,
    pub major: Option<u32>,
    pub minor: Option<u32>,
    pub access: Access,
}

/// Normalizes OCI rules as the module doc says.
pub fn normalize(rules: &[LinuxDeviceCgroup]) -> Result<Vec<DeviceRule>, DeviceError> {
    let mut out = Vec::with_capacity(rules.len());
    for (index, r) in rules.iter().enumerate() {
        let bad = |reason| DeviceError::InvalidRule { index, rule: r.to_string(), reason };
        let number = |n: Option<i64>| match n {
            None | Some(-1) => Ok(None),
            Some(n) => u32::try_from(n).map(Some).map_err(|_| bad("major and minor must be -1 or 0 to 4294967295")),
        };
        let major = number(r.major())?;
        let minor = number(r.minor())?;
        let access = Access::parse(r.access().as_deref().unwrap_or(""))
            .ok_or_else(|| bad("access must be letters of \"rwm\""))?;
        let allow = r.allow();
        let rule = |kind| DeviceRule { allow, kind, major, minor, access };
        match r.typ().unwrap_or(LinuxDeviceType::A) {
            LinuxDeviceType::A if major.is_none() && minor.is_none() && access == Access::ALL => {
                out.push(rule(DeviceKind::All))
            }
            LinuxDeviceType::A => {
                out.push(rule(DeviceKind::Char));
                out.push(rule(DeviceKind::Block));
            }
            LinuxDeviceType::C | LinuxDeviceType::U => out.push(rule(DeviceKind::Char)),
            LinuxDeviceType::B => out.push(rule(DeviceKind::Block)),
            LinuxDeviceType::P => {}
        }
    }
    Ok(out)
}

/// The v1 writes, `(file, line)` in order: "deny all" first (unless the rules
/// start with it), then one line per rule.
pub fn v1_writes(rules: &[DeviceRule]) -> Vec<(&'static str, String)> {
    let mut out = Vec::with_capacity(rules.len() + 1);
    if !matches!(rules.first(), Some(DeviceRule { allow: false, kind: DeviceKind::All, .. })) {
        out.push(("devices.deny", "a".to_owned()));
    }
    for r in rules {
        let file = if r.allow { "devices.allow" } else { "devices.deny" };
        let num = |n: Option<u32>| n.map_or("*".to_owned(), |n| n.to_string());
        let line = match r.kind {
            DeviceKind::All => "a".to_owned(),
            DeviceKind::Char | DeviceKind::Block => {
                let t = if r.kind == DeviceKind::Char { 'c' } else { 'b' };
                format!("{t} {}:{} {}", num(r.major), num(r.minor), r.access)
            }
        };
        out.push((file, line));
    }
    out
}

// The program's input is `struct bpf_cgroup_dev_ctx { u32 access_type; u32
// major; u32 minor; }`, access_type being `access << 16 | type`.
const DEV_BLOCK: i32 = 1; // BPF_DEVCG_DEV_BLOCK
const DEV_CHAR: i32 = 2; // BPF_DEVCG_DEV_CHAR

/// The eBPF device program for `rules` (BPF_PROG_TYPE_CGROUP_DEVICE): returns
/// 1 to allow, 0 to deny.
///
/// Registers after the prologue: r2 = device type, r3 = requested access
/// bits, r4 = major, r5 = minor. Then one block per rule, last rule first, so
/// the first block that matches is the last matching rule; a block that does
/// not match jumps to the next. After the blocks: deny.
///
/// An allow rule matches when every requested access bit is allowed (opening
/// read-write needs both `r` and `w`); a deny rule matches when any requested
/// bit is denied. A rule matching everything ends the program: the rules
/// before it can never decide.
pub fn program(rules: &[DeviceRule]) -> Vec<Insn> {
    let mut p = vec![
        Insn::ldx_w(2, 1, 0),
        Insn::alu32_imm(Insn::AND, 2, 0xffff),
        Insn::ldx_w(3, 1, 0),
        Insn::alu32_imm(Insn::RSH, 3, 16),
        Insn::ldx_w(4, 1, 4),
        Insn::ldx_w(5, 1, 8),
    ];
    for r in rules.iter().rev() {
        // Each test jumps to the end of the block when it fails; the offsets
        // are filled in once the block's length is known.
        let mut block: Vec<Insn> = Vec::with_capacity(9);
        let mut tests = Vec::with_capacity(4);
        match r.kind {
            DeviceKind::All => {}
            DeviceKind::Char | DeviceKind::Block => {
                let t = if r.kind == DeviceKind::Char { DEV_CHAR } else { DEV_BLOCK };
                tests.push(block.len());
                block.push(Insn::jmp_imm(Insn::JNE, 2, t, 0));
            }
        }
        if r.access != Access::ALL {
            block.push(Insn::mov32_reg(1, 3));
            block.push(Insn::alu32_imm(Insn::AND, 1, i32::from(r.access.bits())));
            tests.push(block.len());
            block.push(if r.allow { Insn::jmp_reg(Insn::JNE, 1, 3, 0) } else { Insn::jmp_imm(Insn::JEQ, 1, 0, 0) });
        }
        for (reg, n) in [(4, r.major), (5, r.minor)] {
            if let Some(n) = n {
                // Compared as the 32-bit pattern; the JMP compares 64-bit
                // registers whose upper halves the 32-bit loads zeroed, and the
                // kernel sign-extends imm, so numbers above i32::MAX use a
                // register compare.
                match i32::try_from(n) {
                    Ok(imm) => {
                        tests.push(block.len());
                        block.push(Insn::jmp_imm(Insn::JNE, reg, imm, 0));
                    }
                    Err(_) => {
                        block.push(Insn::mov32_imm(1, n as i32));
                        tests.push(block.len());
                        block.push(Insn::jmp_reg(Insn::JNE, reg, 1, 0));
                    }
                }
            }
        }
        block.push(Insn::mov32_imm(0, i32::from(r.allow)));
        block.push(Insn::exit());
        let len = block.len();
        for t in tests {
            block[t].off = (len - t - 1) as i16;
        }
        p.extend(block);
        if r.kind == DeviceKind::All {
            return p;
        }
    }
    p.push(Insn::mov32_imm(0, 0));
    p.push(Insn::exit());
    p
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::LinuxDeviceCgroupBuilder;

    pub(crate) fn rule(allow: bool, typ: &str, major: i64, minor: i64, access: &str) -> LinuxDeviceCgroup {
        let typ = match typ {
            "a" => LinuxDeviceType::A,
            "c" => LinuxDeviceType::C,
            "b" => LinuxDeviceType::B,
            "u" => LinuxDeviceType::U,
            _ => LinuxDeviceType::P,
        };
        let mut b = LinuxDeviceCgroupBuilder::default().allow(allow).typ(typ).access(access);
        if major != -2 {
            b = b.major(major);
        }
        if minor != -2 {
            b = b.minor(minor);
        }
        b.build().unwrap()
    }

    /// docker's default device rules for a container.
    pub(crate) fn docker_default() -> Vec<LinuxDeviceCgroup> {
        vec![
            rule(false, "a", -2, -2, "rwm"),
            rule(true, "c", -1, -1, "m"),
            rule(true, "b", -1, -1, "m"),
            rule(true, "c", 1, 3, "rwm"),
            rule(true, "c", 1, 8, "rwm"),
            rule(true, "c", 1, 7, "rwm"),
            rule(true, "c", 5, 0, "rwm"),
            rule(true, "c", 1, 5, "rwm"),
            rule(true, "c", 1, 9, "rwm"),
            rule(true, "c", 5, 1, "rwm"),
            rule(true, "c", 136, -1, "rwm"),
            rule(true, "c", 5, 2, "rwm"),
            rule(true, "c", 10, 200, "rwm"),
        ]
    }

    /// Runs a device program the way the kernel would, for the opcodes the
    /// emitter uses; panics on anything else.
    fn run(prog: &[Insn], typ: i32, access: Access, major: u32, minor: u32) -> u64 {
        let ctx = [((access.bits() as u32) << 16) | typ as u32, major, minor];
        let mut r = [0u64; 11];
        let mut pc = 0usize;
        let mut steps = 0;
        loop {
            steps += 1;
            assert!(steps < 10_000, "program does not end");
            let i = prog[pc];
            let (d, s) = (i.dst as usize, i.src as usize);
            pc += 1;
            let jump = |cond: bool, pc: &mut usize| {
                if cond {
                    *pc = (*pc as isize + i.off as isize) as usize;
                }
            };
            match i.code {
                0x61 => {
                    assert_eq!(s, 1, "loads only from the context");
                    r[d] = u64::from(ctx[i.off as usize / 4]);
                }
                0x54 => r[d] = u64::from(r[d] as u32 & i.imm as u32),
                0x74 => r[d] = u64::from((r[d] as u32) >> i.imm),
                0xbc => r[d] = u64::from(r[s] as u32),
                0xb4 => r[d] = u64::from(i.imm as u32),
                0x55 => jump(r[d] != i.imm as i64 as u64, &mut pc),
                0x15 => jump(r[d] == i.imm as i64 as u64, &mut pc),
                0x5d => jump(r[d] != r[s], &mut pc),
                0x95 => return r[0],
                c => panic!("unexpected opcode {c:#x}"),
            }
        }
    }

    fn prog(rules: &[LinuxDeviceCgroup]) -> Vec<Insn> {
        program(&normalize(rules).unwrap())
    }

    const RW: Access = Access(6);

    #[test]
    fn docker_defaults_allow_listed_devices_only() {
        let p = prog(&docker_default());
        assert_eq!(run(&p, DEV_CHAR, RW, 1, 3), 1, "/dev/null");
        assert_eq!(run(&p, DEV_CHAR, Access::READ, 1, 9), 1, "/dev/urandom");
        assert_eq!(run(&p, DEV_CHAR, RW, 136, 4), 1, "pty");
        assert_eq!(run(&p, DEV_CHAR, RW, 1, 1), 0, "/dev/mem");
        assert_eq!(run(&p, DEV_BLOCK, Access::READ, 8, 0), 0, "/dev/sda");
        assert_eq!(run(&p, DEV_BLOCK, Access::MKNOD, 8, 0), 1, "mknod b *:* m");
        assert_eq!(run(&p, DEV_CHAR, Access(7), 1, 1), 0, "mknod and read together");
        // Prologue; nine "c M:m rwm" blocks; "c 136:* rwm"; the two "*:* m"
        // blocks; the deny-all rule, which ends the program.
        assert_eq!(p.len(), 6 + 9 * 5 + 4 + 2 * 6 + 2);
        assert_eq!(p.last().unwrap().code, 0x95);
    }

    #[test]
    fn last_matching_rule_wins_and_default_is_deny() {
        let p = prog(&[rule(true, "c", 1, 3, "rwm"), rule(false, "c", 1, 3, "w")]);
        assert_eq!(run(&p, DEV_CHAR, Access::READ, 1, 3), 1);
        assert_eq!(run(&p, DEV_CHAR, Access::WRITE, 1, 3), 0);
        assert_eq!(run(&p, DEV_CHAR, RW, 1, 3), 0, "any denied bit denies");
        assert_eq!(run(&p, DEV_CHAR, Access::READ, 1, 4), 0);
        let p = prog(&[]);
        assert_eq!(p.len(), 8);
        assert_eq!(run(&p, DEV_CHAR, Access::READ, 1, 3), 0);
        let p = prog(&[rule(false, "c", 1, 3, "rwm"), rule(true, "a", -2, -2, "rwm")]);
        assert_eq!(p.len(), 6 + 2, "allow-all ends the program early");
        assert_eq!(run(&p, DEV_CHAR, Access::READ, 1, 3), 1);
    }

    #[test]
    fn allow_rule_needs_every_requested_bit() {
        let p = prog(&[rule(true, "c", 1, 3, "r")]);
        assert_eq!(run(&p, DEV_CHAR, Access::READ, 1, 3), 1);
        assert_eq!(run(&p, DEV_CHAR, RW, 1, 3), 0);
    }

    #[test]
    fn big_numbers_use_a_register_compare() {
        let big = 3_000_000_000i64;
        let p = prog(&[rule(true, "c", big, 1, "rwm")]);
        assert_eq!(run(&p, DEV_CHAR, RW, big as u32, 1), 1);
        assert_eq!(run(&p, DEV_CHAR, RW, 5, 1), 0);
        assert_eq!(run(&p, DEV_CHAR, RW, big as u32, 2), 0);
    }

    #[test]
    fn type_a_with_numbers_splits_and_fifo_is_dropped() {
        let n = normalize(&[rule(true, "a", 1, -2, "r"), rule(true, "p", -2, -2, "rwm"), rule(true, "u", 4, 1, "")])
            .unwrap();
        assert_eq!(n.len(), 3);
        assert_eq!((n[0].kind, n[1].kind, n[2].kind), (DeviceKind::Char, DeviceKind::Block, DeviceKind::Char));
        assert_eq!(n[2].access, Access::ALL);
        let w = v1_writes(&n);
        assert_eq!(
            w,
            [
                ("devices.deny", "a".to_owned()),
                ("devices.allow", "c 1:* r".to_owned()),
                ("devices.allow", "b 1:* r".to_owned()),
                ("devices.allow", "c 4:1 rwm".to_owned()),
            ]
        );
    }

    #[test]
    fn v1_lines_for_docker_defaults() {
        let w = v1_writes(&normalize(&docker_default()).unwrap());
        assert_eq!(w.len(), 13, "no second deny-all");
        assert_eq!(w[0], ("devices.deny", "a".to_owned()));
        assert_eq!(w[1], ("devices.allow", "c *:* m".to_owned()));
        assert_eq!(w[10], ("devices.allow", "c 136:* rwm".to_owned()));
    }

    #[test]
    fn invalid_rules_name_the_index() {
        let e = normalize(&[rule(true, "c", 1, 3, "rwm"), rule(true, "c", 1, 3, "rx")]).unwrap_err();
        assert_eq!(e.to_string(), "linux.resources.devices[1] (c 1:3 rx): access must be letters of \"rwm\"");
        let e = normalize(&[rule(true, "c", -5, 3, "r")]).unwrap_err();
        assert!(e.to_string().contains("major and minor must be"), "{e}");
    }
}
