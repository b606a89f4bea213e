//! Architectures as seccomp sees them: the OCI names (`SCMP_ARCH_X86_64`), the
//! names docker's profiles use in `includes.arches` (`amd64`), the libseccomp
//! token, the kernel's `AUDIT_ARCH_*` value, and docker's archMap (which
//! sub-architectures a native one also runs).

use libseccomp::ScmpArch;
use oci_spec::runtime::Arch as OciArch;

/// One architecture a seccomp filter can match.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Arch {
    X86_64,
    X86,
    X32,
    Aarch64,
    Arm,
    Riscv64,
    S390x,
    S390,
    Ppc64le,
    Ppc64,
    Ppc,
    Mips64,
    Mips64n32,
    Mips,
    Mipsel64,
    Mipsel64n32,
    Mipsel,
    Loongarch64,
    Parisc64,
    Parisc,
    M68k,
    Sh,
    Sheb,
}

/// `(arch, OCI name, docker's name, OCI enum)`; one row per architecture.
const TABLE: &[(Arch, &str, &str, OciArch)] = &[
    (
        Arch::X86_64,
        "SCMP_ARCH_X86_64",
        "amd64",
        OciArch::ScmpArchX86_64,
    ),
    (Arch::X86, "SCMP_ARCH_X86", "x86", OciArch::ScmpArchX86),
    (Arch::X32, "SCMP_ARCH_X32", "x32", OciArch::ScmpArchX32),
    (
        Arch::Aarch64,
        "SCMP_ARCH_AARCH64",
        "arm64",
        OciArch::ScmpArchAarch64,
    ),
    (Arch::Arm, "SCMP_ARCH_ARM", "arm", OciArch::ScmpArchArm),
    (
        Arch::Riscv64,
        "SCMP_ARCH_RISCV64",
        "riscv64",
        OciArch::ScmpArchRiscv64,
    ),
    (
        Arch::S390x,
        "SCMP_ARCH_S390X",
        "s390x",
        OciArch::ScmpArchS390x,
    ),
    (Arch::S390, "SCMP_ARCH_S390", "s390", OciArch::ScmpArchS390),
    (
        Arch::Ppc64le,
        "SCMP_ARCH_PPC64LE",
        "ppc64le",
        OciArch::ScmpArchPpc64le,
    ),
    (
        Arch::Ppc64,
        "SCMP_ARCH_PPC64",
        "ppc64",
        OciArch::ScmpArchPpc64,
    ),
    (Arch::Ppc, "SCMP_ARCH_PPC", "ppc", OciArch::ScmpArchPpc),
    (
        Arch::Mips64,
        "SCMP_ARCH_MIPS64",
        "mips64",
        OciArch::ScmpArchMips64,
    ),
    (
        Arch::Mips64n32,
        "SCMP_ARCH_MIPS64N32",
        "mips64n32",
        OciArch::ScmpArchMips64n32,
    ),
    (Arch::Mips, "SCMP_ARCH_MIPS", "mips", OciArch::ScmpArchMips),
    (
        Arch::Mipsel64,
        "SCMP_ARCH_MIPSEL64",
        "mipsel64",
        OciArch::ScmpArchMipsel64,
    ),
    (
        Arch::Mipsel64n32,
        "SCMP_ARCH_MIPSEL64N32",
        "mipsel64n32",
        OciArch::ScmpArchMipsel64n32,
    ),
    (
        Arch::Mipsel,
        "SCMP_ARCH_MIPSEL",
        "mipsel",
        OciArch::ScmpArchMipsel,
    ),
    (
        Arch::Loongarch64,
        "SCMP_ARCH_LOONGARCH64",
        "loongarch64",
        OciArch::ScmpArchLoongarch64,
    ),
    (
        Arch::Parisc64,
        "SCMP_ARCH_PARISC64",
        "parisc64",
        OciArch::ScmpArchParisc64,
    ),
    (
        Arch::Parisc,
        "SCMP_ARCH_PARISC",
        "parisc",
        OciArch::ScmpArchParisc,
    ),
    (Arch::M68k, "SCMP_ARCH_M68K", "m68k", OciArch::ScmpArchM68k),
    (Arch::Sh, "SCMP_ARCH_SH", "sh", OciArch::ScmpArchSh),
    (Arch::Sheb, "SCMP_ARCH_SHEB", "sheb", OciArch::ScmpArchSheb),
];

impl Arch {
    /// The architecture this binary was built for, which is the one the
    /// container's processes run natively.
    pub const fn native() -> Arch {
        if cfg!(all(target_arch = "x86_64", target_pointer_width = "32")) {
            Arch::X32
        } else if cfg!(target_arch = "x86_64") {
            Arch::X86_64
        } else if cfg!(target_arch = "x86") {
            Arch::X86
        } else if cfg!(target_arch = "aarch64") {
            Arch::Aarch64
        } else if cfg!(target_arch = "arm") {
            Arch::Arm
        } else if cfg!(target_arch = "riscv64") {
            Arch::Riscv64
        } else if cfg!(target_arch = "s390x") {
            Arch::S390x
        } else if cfg!(all(target_arch = "powerpc64", target_endian = "little")) {
            Arch::Ppc64le
        } else if cfg!(target_arch = "powerpc64") {
            Arch::Ppc64
        } else if cfg!(target_arch = "powerpc") {
            Arch::Ppc
        } else if cfg!(target_arch = "loongarch64") {
            Arch::Loongarch64
        } else if cfg!(all(target_arch = "mips64", target_endian = "little")) {
            Arch::Mipsel64
        } else if cfg!(target_arch = "mips64") {
            Arch::Mips64
        } else if cfg!(all(target_arch = "mips", target_endian = "little")) {
            Arch::Mipsel
        } else if cfg!(target_arch = "mips") {
            Arch::Mips
        } else if cfg!(target_arch = "m68k") {
            Arch::M68k
        } else {
            // Any other target cannot run berth today; x86_64 keeps the
            // function total.
            Arch::X86_64
        }
    }

    /// Every architecture berth knows, in a stable order.
    pub fn all() -> impl Iterator<Item = Arch> {
        TABLE.iter().map(|row| row.0)
    }

    fn row(self) -> &'static (Arch, &'static str, &'static str, OciArch) {
        TABLE
            .iter()
            .find(|row| row.0 == self)
            .expect("every Arch has a table row")
    }

    /// The OCI / libseccomp name, e.g. `SCMP_ARCH_X86_64`.
    pub fn oci_name(self) -> &'static str {
        self.row().1
    }

    /// The name docker's profiles use in `includes.arches` and
    /// `excludes.arches`, e.g. `amd64`, `x86`, `x32`, `arm64`, `arm`.
    pub fn docker_name(self) -> &'static str {
        self.row().2
    }

    /// The `oci-spec` enum value.
    pub fn to_oci(self) -> OciArch {
        self.row().3
    }

    /// Parses an OCI name such as `SCMP_ARCH_AARCH64`; `None` if unknown.
    /// `SCMP_ARCH_NATIVE` is the native architecture.
    pub fn from_oci_name(name: &str) -> Option<Arch> {
        if name == "SCMP_ARCH_NATIVE" {
            return Some(Arch::native());
        }
        TABLE.iter().find(|row| row.1 == name).map(|row| row.0)
    }

    /// Converts the `oci-spec` enum; `ScmpArchNative` is the native architecture.
    pub fn from_oci(arch: OciArch) -> Arch {
        if arch == OciArch::ScmpArchNative {
            return Arch::native();
        }
        TABLE
            .iter()
            .find(|row| row.3 == arch)
            .map(|row| row.0)
            .expect("every oci-spec architecture but native has a table row")
    }

    /// The architectures docker's archMap adds when this one is native:
    /// x86_64 also runs x86 and x32 binaries, aarch64 runs arm, and so on.
    /// Architectures docker's archMap does not list have none.
    pub fn sub_arches(self) -> &'static [Arch] {
        self.docker_arch_map_entry().unwrap_or_default()
    }

    /// This architecture's entry in docker's archMap, `None` if it has none.
    pub(crate) fn docker_arch_map_entry(self) -> Option<&'static [Arch]> {
        Some(match self {
            Arch::X86_64 => &[Arch::X86, Arch::X32],
            Arch::Aarch64 => &[Arch::Arm],
            Arch::Mips64 => &[Arch::Mips, Arch::Mips64n32],
            Arch::Mips64n32 => &[Arch::Mips, Arch::Mips64],
            Arch::Mipsel64 => &[Arch::Mipsel, Arch::Mipsel64n32],
            Arch::Mipsel64n32 => &[Arch::Mipsel, Arch::Mipsel64],
            Arch::S390x => &[Arch::S390],
            Arch::Riscv64 | Arch::Loongarch64 => &[],
            _ => return None,
        })
    }

    pub(crate) fn scmp(self) -> ScmpArch {
        match self {
            Arch::X86_64 => ScmpArch::X8664,
            Arch::X86 => ScmpArch::X86,
            Arch::X32 => ScmpArch::X32,
            Arch::Aarch64 => ScmpArch::Aarch64,
            Arch::Arm => ScmpArch::Arm,
            Arch::Riscv64 => ScmpArch::Riscv64,
            Arch::S390x => ScmpArch::S390X,
            Arch::S390 => ScmpArch::S390,
            Arch::Ppc64le => ScmpArch::Ppc64Le,
            Arch::Ppc64 => ScmpArch::Ppc64,
            Arch::Ppc => ScmpArch::Ppc,
            Arch::Mips64 => ScmpArch::Mips64,
            Arch::Mips64n32 => ScmpArch::Mips64N32,
            Arch::Mips => ScmpArch::Mips,
            Arch::Mipsel64 => ScmpArch::Mipsel64,
            Arch::Mipsel64n32 => ScmpArch::Mipsel64N32,
            Arch::Mipsel => ScmpArch::Mipsel,
            Arch::Loongarch64 => ScmpArch::Loongarch64,
            Arch::Parisc64 => ScmpArch::Parisc64,
            Arch::Parisc => ScmpArch::Parisc,
            Arch::M68k => ScmpArch::M68k,
            Arch::Sh => ScmpArch::Sh,
            Arch::Sheb => ScmpArch::Sheb,
        }
    }

    /// The kernel's `AUDIT_ARCH_*` value, the one a filter reads from
    /// `seccomp_data.arch`. It equals the OCI enum's value except for x32,
    /// whose syscalls arrive as x86_64 ones with bit 30 set in the number.
    pub(crate) fn audit_arch(self) -> u32 {
        match self {
            Arch::X32 => OciArch::ScmpArchX86_64 as u32,
            other => other.to_oci() as u32,
        }
    }
}

impl std::fmt::Display for Arch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.oci_name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_oci_spec() {
        for arch in Arch::all() {
            assert_eq!(Arch::from_oci_name(arch.oci_name()), Some(arch));
            assert_eq!(Arch::from_oci(arch.to_oci()), arch);
            // oci-spec's own serde name must be the one we print.
            let json = serde_json::to_string(&arch.to_oci()).unwrap();
            assert_eq!(json, format!("\"{}\"", arch.oci_name()));
        }
        assert_eq!(
            Arch::from_oci_name("SCMP_ARCH_NATIVE"),
            Some(Arch::native())
        );
        assert_eq!(Arch::from_oci_name("SCMP_ARCH_VAX"), None);
    }

    #[test]
    fn arch_map_matches_docker() {
        assert_eq!(Arch::X86_64.sub_arches(), &[Arch::X86, Arch::X32]);
        assert_eq!(Arch::Aarch64.sub_arches(), &[Arch::Arm]);
        assert_eq!(Arch::S390x.sub_arches(), &[Arch::S390]);
        assert!(Arch::Riscv64.sub_arches().is_empty());
        assert_eq!(Arch::X32.audit_arch(), Arch::X86_64.audit_arch());
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn native_is_x86_64_here() {
        assert_eq!(Arch::native(), Arch::X86_64);
        assert_eq!(Arch::native().docker_name(), "amd64");
    }
}
