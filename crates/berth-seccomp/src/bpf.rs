//! The ENOSYS prefix placed in front of libseccomp's program.
//!
//! A deny-by-default profile names the syscalls it allows. A syscall newer
//! than the profile (or than the libseccomp that compiled it) then gets the
//! default action, usually EPERM, and libc, which falls back to an older
//! syscall only on ENOSYS, fails instead: glibc's `fchmodat` tries
//! `fchmodat2` first, `clone3` before `clone`. runc answers ENOSYS for every
//! syscall number above the highest one the profile names; we do the same,
//! with our own small prefix:
//!
//! ```text
//!       ld  [arch]
//!       jeq AUDIT_ARCH_a, 0, next   ; one block per architecture
//!       ld  [nr]
//!       jset 0x40000000, filter, 0  ; x86_64 only: x32 calls are left alone
//!       jgt max_a, enosys, filter
//! next: ...
//!       ja  filter
//! enosys: ret ERRNO(ENOSYS)
//! filter: libseccomp's program, unchanged
//! ```
//!
//! All jumps go forward and stay inside the prefix, so libseccomp's program
//! is appended as is.

use libseccomp::ScmpSyscall;

use crate::Arch;

const LD_W_ABS: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS
const JMP_JA: u16 = 0x05; // BPF_JMP | BPF_JA
const JMP_JEQ_K: u16 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
const JMP_JGT_K: u16 = 0x25; // BPF_JMP | BPF_JGT | BPF_K
const JMP_JSET_K: u16 = 0x45; // BPF_JMP | BPF_JSET | BPF_K
const RET_K: u16 = 0x06; // BPF_RET | BPF_K

/// Offsets in `struct seccomp_data`.
const DATA_NR: u32 = 0;
const DATA_ARCH: u32 = 4;

/// The x32 ABI marks its syscall numbers with this bit.
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

fn insn(code: u16, jt: u8, jf: u8, k: u32) -> libc::sock_filter {
    libc::sock_filter { code, jt, jf, k }
}

/// The highest syscall number, on `arch`, of the names in `names`; `None` if
/// none of them exists there.
fn highest(arch: Arch, names: &[&str]) -> Option<u32> {
    names
        .iter()
        .filter_map(|name| ScmpSyscall::from_name_by_arch(name, arch.scmp()).ok())
        .filter_map(|nr| u32::try_from(nr.as_raw_syscall()).ok())
        .max()
}

/// The prefix for a filter over `arches` whose rules name `names` (every
/// name libseccomp knows, rules equal to the default action included).
/// Empty when no architecture has a named syscall.
pub(crate) fn enosys_prefix(arches: &[Arch], names: &[&str]) -> Vec<libc::sock_filter> {
    // x32 shares x86_64's AUDIT_ARCH; its calls are told apart by a bit in
    // the number, and are left to libseccomp's program.
    let blocks: Vec<(Arch, u32)> = arches
        .iter()
        .filter(|a| **a != Arch::X32)
        .filter_map(|a| highest(*a, names).map(|max| (*a, max)))
        .collect();
    if blocks.is_empty() {
        return Vec::new();
    }
    let size = |arch: Arch| if arch == Arch::X86_64 { 4 } else { 3 };
    let len = 1 + blocks.iter().map(|(a, _)| size(*a)).sum::<usize>() + 2;
    let enosys = len - 1;
    let filter = len;
    // A jump from the instruction at `from` to `to`, as BPF counts it.
    let skip = |from: usize, to: usize| -> u8 {
        u8::try_from(to - from - 1).expect("the ENOSYS prefix is far shorter than 255 instructions")
    };

    let mut out = Vec::with_capacity(len);
    out.push(insn(LD_W_ABS, 0, 0, DATA_ARCH));
    for (arch, max) in &blocks {
        let start = out.len();
        let next = start + size(*arch);
        out.push(insn(JMP_JEQ_K, 0, skip(start, next), arch.audit_arch()));
        out.push(insn(LD_W_ABS, 0, 0, DATA_NR));
        if *arch == Arch::X86_64 {
            let at = out.len();
            out.push(insn(JMP_JSET_K, skip(at, filter), 0, X32_SYSCALL_BIT));
        }
        let at = out.len();
        out.push(insn(JMP_JGT_K, skip(at, enosys), skip(at, filter), *max));
    }
    out.push(insn(JMP_JA, 0, 0, 1));
    out.push(insn(
        RET_K,
        0,
        0,
        libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32,
    ));
    debug_assert_eq!(out.len(), len);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn prefix_layout_for_x86_64_and_x86() {
        let names = ["read", "write", "futex_waitv", "socketcall"];
        let prefix = enosys_prefix(&[Arch::X86_64, Arch::X86, Arch::X32], &names);
        // ld, (jeq ld jset jgt), (jeq ld jgt), ja, ret
        assert_eq!(prefix.len(), 1 + 4 + 3 + 2);
        // futex_waitv is 449 on x86_64 and on x86.
        assert_eq!(prefix[4].code, JMP_JGT_K);
        assert_eq!(prefix[4].k, 449);
        assert_eq!(prefix[1].k, Arch::X86_64.audit_arch());
        assert_eq!(prefix[5].k, Arch::X86.audit_arch());
        // Every jump lands inside the prefix or on the first instruction
        // after it.
        for (i, insn) in prefix.iter().enumerate() {
            if insn.code & 0x07 == 0x05 {
                let far = if insn.code == JMP_JA {
                    insn.k as usize
                } else {
                    insn.jt.max(insn.jf) as usize
                };
                assert!(i + 1 + far <= prefix.len(), "jump at {i} leaves the prefix");
            }
        }
        let ret = prefix.last().unwrap();
        assert_eq!(ret.k, libc::SECCOMP_RET_ERRNO | 38);
    }

    #[test]
    fn no_prefix_without_known_names() {
        assert!(enosys_prefix(&[Arch::native()], &[]).is_empty());
        assert!(enosys_prefix(&[Arch::native()], &["no_such_syscall"]).is_empty());
    }

    #[test]
    fn libseccomp_programs_load_their_own_accumulator_first() {
        // The prefix leaves the syscall number in A; libseccomp's program
        // must not rely on the kernel's initial A = 0.
        let seccomp: oci_spec::runtime::LinuxSeccomp = serde_json::from_value(serde_json::json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW"}]
        }))
        .unwrap();
        let program = crate::compile(&seccomp).unwrap();
        let insns = program.instructions();
        let prefix = enosys_prefix(&[Arch::native()], &["read"]);
        assert_eq!(insns[0].code, LD_W_ABS);
        let first = &insns[prefix.len()];
        assert_eq!((first.code, first.k), (LD_W_ABS, DATA_ARCH));
    }
}
