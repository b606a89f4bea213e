//! Loading and attaching eBPF cgroup device programs with the raw bpf(2)
//! syscall.
//!
//! No crate is used on purpose: the program is a few instructions per rule
//! from a fixed set (see [`crate::devices::program`]), and all berth needs is
//! five bpf(2) commands (PROG_LOAD, PROG_ATTACH, PROG_QUERY,
//! PROG_GET_FD_BY_ID, PROG_DETACH). The general loaders (aya, libbpf-rs)
//! bring ELF/BTF handling, and libbpf-rs a C library, which a container start
//! measured against crun should not carry.
//!
//! Attachment is done with `BPF_F_ALLOW_MULTI`, as runc and crun do, so that
//! a program attached by someone else above us (systemd) still applies. An
//! attached program stays alive after its fd is closed; it goes when it is
//! detached or when the cgroup is removed.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use crate::ErrorKind;

#[derive(Debug, thiserror::Error)]
pub enum BpfError {
    #[error("load the device program ({insns} instructions): {source}{}", verifier_log(log))]
    Load { insns: usize, log: String, source: std::io::Error },
    #[error("open cgroup {path}: {source}")]
    Open { path: PathBuf, source: std::io::Error },
    #[error("attach the device program to {path}: {source}")]
    Attach { path: PathBuf, source: std::io::Error },
    #[error("list the device programs of {path}: {source}")]
    Query { path: PathBuf, source: std::io::Error },
    #[error("detach device program {id} from {path}: {source}")]
    Detach { path: PathBuf, id: u32, source: std::io::Error },
}

fn verifier_log(log: &str) -> String {
    if log.is_empty() { String::new() } else { format!("; verifier: {}", log.trim()) }
}

impl BpfError {
    pub fn kind(&self) -> ErrorKind {
        let source = match self {
            BpfError::Load { source, .. }
            | BpfError::Open { source, .. }
            | BpfError::Attach { source, .. }
            | BpfError::Query { source, .. }
            | BpfError::Detach { source, .. } => source,
        };
        crate::io_kind(source)
    }
}

/// One eBPF instruction, fields apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    pub code: u8,
    pub dst: u8,
    pub src: u8,
    pub off: i16,
    pub imm: i32,
}

impl Insn {
    // ALU ops (class BPF_ALU, 32-bit) with an immediate.
    pub const AND: u8 = 0x54;
    pub const RSH: u8 = 0x74;
    // Jumps (class BPF_JMP) with an immediate; `| 0x08` compares a register.
    pub const JEQ: u8 = 0x15;
    pub const JNE: u8 = 0x55;

    /// `dst = *(u32 *)(src + off)`
    pub fn ldx_w(dst: u8, src: u8, off: i16) -> Insn {
        Insn { code: 0x61, dst, src, off, imm: 0 }
    }
    /// `dst op= imm` (32-bit)
    pub fn alu32_imm(op: u8, dst: u8, imm: i32) -> Insn {
        Insn { code: op, dst, src: 0, off: 0, imm }
    }
    /// `dst = src` (32-bit)
    pub fn mov32_reg(dst: u8, src: u8) -> Insn {
        Insn { code: 0xbc, dst, src, off: 0, imm: 0 }
    }
    /// `dst = imm` (32-bit)
    pub fn mov32_imm(dst: u8, imm: i32) -> Insn {
        Insn { code: 0xb4, dst, src: 0, off: 0, imm }
    }
    /// `if dst op imm goto +off`
    pub fn jmp_imm(op: u8, dst: u8, imm: i32, off: i16) -> Insn {
        Insn { code: op, dst, src: 0, off, imm }
    }
    /// `if dst op src goto +off`
    pub fn jmp_reg(op: u8, dst: u8, src: u8, off: i16) -> Insn {
        Insn { code: op | 0x08, dst, src, off, imm: 0 }
    }
    pub fn exit() -> Insn {
        Insn { code: 0x95, dst: 0, src: 0, off: 0, imm: 0 }
    }

    fn raw(self) -> RawInsn {
        // struct bpf_insn's `dst_reg:4, src_reg:4` bitfield: the first
        // declared field takes the low bits on little-endian targets.
        #[cfg(target_endian = "little")]
        let regs = (self.src << 4) | (self.dst & 0xf);
        #[cfg(target_endian = "big")]
        let regs = (self.dst << 4) | (self.src & 0xf);
        RawInsn { code: self.code, regs, off: self.off, imm: self.imm }
    }
}

#[repr(C)]
struct RawInsn {
    code: u8,
    regs: u8,
    off: i16,
    imm: i32,
}

const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_ATTACH: libc::c_long = 8;
const BPF_PROG_DETACH: libc::c_long = 9;
const BPF_PROG_GET_FD_BY_ID: libc::c_long = 13;
const BPF_PROG_QUERY: libc::c_long = 16;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
const BPF_F_ALLOW_MULTI: u32 = 2;

// The leading members of `union bpf_attr` for each command; the kernel
// accepts an attr shorter than its own and zero-fills the rest.
#[repr(C)]
#[derive(Default)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
}

#[repr(C)]
#[derive(Default)]
struct AttachAttr {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
    replace_bpf_fd: u32,
}

#[repr(C)]
#[derive(Default)]
struct QueryAttr {
    target_fd: u32,
    attach_type: u32,
    query_flags: u32,
    attach_flags: u32,
    prog_ids: u64,
    prog_cnt: u32,
    _pad: u32,
}

#[repr(C)]
#[derive(Default)]
struct GetFdAttr {
    prog_id: u32,
    next_id: u32,
    open_flags: u32,
}

fn bpf<T>(cmd: libc::c_long, attr: &mut T) -> std::io::Result<libc::c_long> {
    // SAFETY: `attr` is a live, initialized #[repr(C)] prefix of `union
    // bpf_attr` for `cmd`, and its size is passed along; pointers inside it
    // point at buffers that outlive the call.
    let r = unsafe { libc::syscall(libc::SYS_bpf, cmd, attr as *mut T, std::mem::size_of::<T>() as libc::c_uint) };
    if r < 0 { Err(std::io::Error::last_os_error()) } else { Ok(r) }
}

fn owned_fd(fd: libc::c_long) -> OwnedFd {
    // SAFETY: bpf(2) returned a new file descriptor that nothing else owns.
    unsafe { OwnedFd::from_raw_fd(fd as libc::c_int) }
}

/// A loaded device program; closed on drop (an attached program lives on).
#[derive(Debug)]
pub struct Program {
    fd: OwnedFd,
}

impl Program {
    /// Loads `insns` as a BPF_PROG_TYPE_CGROUP_DEVICE program. When the
    /// verifier refuses it, loads once more with a log for the error.
    pub fn load(insns: &[Insn]) -> Result<Program, BpfError> {
        let raw: Vec<RawInsn> = insns.iter().map(|i| i.raw()).collect();
        let license = c"Apache-2.0";
        let mut name = [0u8; 16];
        name[..9].copy_from_slice(b"berth_dev");
        let mut attr = ProgLoadAttr {
            prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
            insn_cnt: raw.len() as u32,
            insns: raw.as_ptr() as u64,
            license: license.as_ptr() as u64,
            prog_name: name,
            ..ProgLoadAttr::default()
        };
        match bpf(BPF_PROG_LOAD, &mut attr) {
            Ok(fd) => Ok(Program { fd: owned_fd(fd) }),
            Err(source) => {
                let mut log = vec![0u8; 64 * 1024];
                attr.log_level = 1;
                attr.log_size = log.len() as u32;
                attr.log_buf = log.as_mut_ptr() as u64;
                if let Ok(fd) = bpf(BPF_PROG_LOAD, &mut attr) {
                    return Ok(Program { fd: owned_fd(fd) });
                }
                let end = log.iter().position(|b| *b == 0).unwrap_or(log.len());
                Err(BpfError::Load {
                    insns: insns.len(),
                    log: String::from_utf8_lossy(&log[..end]).into_owned(),
                    source,
                })
            }
        }
    }

    /// Attaches the program to the cgroup directory `dir` (with
    /// `BPF_F_ALLOW_MULTI`).
    pub fn attach(&self, dir: &CgroupDir) -> Result<(), BpfError> {
        let mut attr = AttachAttr {
            target_fd: dir.fd.as_raw_fd() as u32,
            attach_bpf_fd: self.fd.as_raw_fd() as u32,
            attach_type: BPF_CGROUP_DEVICE,
            attach_flags: BPF_F_ALLOW_MULTI,
            ..AttachAttr::default()
        };
        bpf(BPF_PROG_ATTACH, &mut attr).map(drop).map_err(|source| BpfError::Attach { path: dir.path.clone(), source })
    }
}

/// An open cgroup directory, the target of attach, query and detach.
pub struct CgroupDir {
    fd: OwnedFd,
    path: PathBuf,
}

impl CgroupDir {
    pub fn open(path: &Path) -> Result<CgroupDir, BpfError> {
        let fd = std::fs::File::open(path).map_err(|source| BpfError::Open { path: path.to_owned(), source })?;
        Ok(CgroupDir { fd: fd.into(), path: path.to_owned() })
    }

    /// The ids of the device programs attached directly to this cgroup.
    pub fn device_programs(&self) -> Result<Vec<u32>, BpfError> {
        let mut ids = vec![0u32; 64];
        let mut attr = QueryAttr {
            target_fd: self.fd.as_raw_fd() as u32,
            attach_type: BPF_CGROUP_DEVICE,
            prog_ids: ids.as_mut_ptr() as u64,
            prog_cnt: ids.len() as u32,
            ..QueryAttr::default()
        };
        bpf(BPF_PROG_QUERY, &mut attr).map_err(|source| BpfError::Query { path: self.path.clone(), source })?;
        ids.truncate(attr.prog_cnt as usize);
        Ok(ids)
    }

    /// Detaches the device program with id `id`.
    pub fn detach(&self, id: u32) -> Result<(), BpfError> {
        let err = |source| BpfError::Detach { path: self.path.clone(), id, source };
        let mut get = GetFdAttr { prog_id: id, ..GetFdAttr::default() };
        let prog = owned_fd(bpf(BPF_PROG_GET_FD_BY_ID, &mut get).map_err(err)?);
        let mut attr = AttachAttr {
            target_fd: self.fd.as_raw_fd() as u32,
            attach_bpf_fd: prog.as_raw_fd() as u32,
            attach_type: BPF_CGROUP_DEVICE,
            ..AttachAttr::default()
        };
        bpf(BPF_PROG_DETACH, &mut attr).map(drop).map_err(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instruction_encoding() {
        assert_eq!(std::mem::size_of::<RawInsn>(), 8);
        assert_eq!(std::mem::size_of::<ProgLoadAttr>(), 64);
        assert_eq!(std::mem::size_of::<QueryAttr>(), 32);
        let r = Insn::ldx_w(3, 1, 4).raw();
        assert_eq!((r.code, r.off), (0x61, 4));
        #[cfg(target_endian = "little")]
        assert_eq!(r.regs, 0x13);
        assert_eq!(Insn::jmp_reg(Insn::JNE, 1, 3, 2).code, 0x5d);
    }

    #[test]
    fn load_error_carries_the_verifier_log() {
        let e = BpfError::Load {
            insns: 2,
            log: "R0 !read_ok\n".into(),
            source: std::io::Error::from_raw_os_error(libc::EACCES),
        };
        assert_eq!(
            e.to_string(),
            "load the device program (2 instructions): Permission denied (os error 13); verifier: R0 !read_ok"
        );
    }
}
