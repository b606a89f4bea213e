//! Docker's seccomp profile format (`--security-opt seccomp=<file>`, the
//! daemon's `seccomp-profile`): an OCI seccomp section whose rules carry
//! conditions (`includes` / `excludes` by capability, architecture and
//! minimum kernel), and an `archMap` from the native architecture to the
//! ones it also runs. Resolving it against a container's capabilities and
//! the host gives the plain OCI section that [`crate::compile`] takes.
//!
//! Lifecycle: [`DockerProfile::from_json`] (or
//! [`DockerProfile::docker_default`]) → [`DockerProfile::resolve`] with a
//! [`Target`] → `LinuxSeccomp` in the container's config.json.

use std::sync::OnceLock;

use oci_spec::runtime::{
    LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompArgBuilder,
    LinuxSeccompFilterFlag, LinuxSeccompOperator, LinuxSyscall,
};
use serde::Deserialize;

use crate::Arch;

/// Errors from reading a docker profile, each naming the field at fault.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    /// Docker's wording, which scripts grep for.
    #[error("decoding seccomp profile failed: {source}")]
    Decode { source: serde_json::Error },
    #[error("{field}: unknown action {value:?}")]
    UnknownAction { field: String, value: String },
    #[error("{field}: unknown operator {value:?}")]
    UnknownOperator { field: String, value: String },
    #[error("{field}: unknown architecture {value:?}")]
    UnknownArch { field: String, value: String },
    #[error("{field}: unknown flag {value:?}")]
    UnknownFlag { field: String, value: String },
    #[error("{field}: argument index {index} is out of range (0 to 5)")]
    ArgIndex { field: String, index: u64 },
    #[error("{field}: invalid kernel version {value:?}, expected \"<kernel>.<major>\"")]
    KernelVersion { field: String, value: String },
    #[error("defaultAction: missing, a profile with syscalls needs a default action")]
    MissingDefaultAction,
    /// Docker's wording.
    #[error(
        "both 'architectures' and 'archMap' are specified in the seccomp profile, use either 'architectures' or 'archMap'"
    )]
    ArchitecturesAndArchMap,
    /// Docker's wording, with the rule's position.
    #[error(
        "{field}: both 'name' and 'names' are specified in the seccomp profile, use either 'name' or 'names'"
    )]
    NameAndNames { field: String },
}

/// A kernel version as docker's `minKernel` compares it: only the first two
/// numbers count, so "5.15.0-91-generic" is 5.15.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KernelVersion {
    pub kernel: u32,
    pub major: u32,
}

impl KernelVersion {
    pub const fn new(kernel: u32, major: u32) -> Self {
        KernelVersion { kernel, major }
    }

    /// Parses the start of a release string (`uname -r`): "6.1.0-18-amd64",
    /// "3.12-1-amd64" and "4.8" all work.
    pub fn parse_release(release: &str) -> Option<KernelVersion> {
        let mut parts = release.splitn(3, |c: char| !c.is_ascii_digit());
        let kernel = parts.next()?.parse().ok()?;
        let major = parts.next()?.parse().ok()?;
        Some(KernelVersion { kernel, major })
    }

    /// The running kernel's version, read once. `None` if uname's release
    /// does not start with two numbers.
    pub fn host() -> Option<KernelVersion> {
        static HOST: OnceLock<Option<KernelVersion>> = OnceLock::new();
        *HOST.get_or_init(|| {
            let uts = nix::sys::utsname::uname().ok()?;
            KernelVersion::parse_release(uts.release().to_str()?)
        })
    }

    /// `minKernel`'s strict form: exactly "<kernel>.<major>", not 0.0.
    fn parse_min_kernel(value: &str) -> Option<KernelVersion> {
        let (kernel, major) = value.split_once('.')?;
        let version = KernelVersion {
            kernel: kernel.parse().ok()?,
            major: major.parse().ok()?,
        };
        (version != KernelVersion::new(0, 0)).then_some(version)
    }
}

/// What a profile is resolved against: the container's capabilities, the
/// architecture it runs on, and the host's kernel.
#[derive(Debug, Clone)]
pub struct Target {
    /// Capability names, as in the bounding set (`CAP_SYS_ADMIN`; the
    /// `CAP_` prefix and case are optional).
    pub caps: Vec<String>,
    pub arch: Arch,
    /// `None` (unknown) satisfies every `minKernel`.
    pub kernel: Option<KernelVersion>,
}

impl Target {
    /// The given capabilities and architecture, on this host's kernel.
    pub fn new(caps: &[String], arch: Arch) -> Target {
        Target {
            caps: caps.to_vec(),
            arch,
            kernel: KernelVersion::host(),
        }
    }

    fn has_cap(&self, cap: &str) -> bool {
        let cap = normalize_cap(cap);
        self.caps.iter().any(|c| normalize_cap(c) == cap)
    }

    fn kernel_at_least(&self, min: KernelVersion) -> bool {
        self.kernel.is_none_or(|k| k >= min)
    }
}

fn normalize_cap(cap: &str) -> String {
    let upper = cap.trim().to_ascii_uppercase();
    if upper.starts_with("CAP_") {
        upper
    } else {
        format!("CAP_{upper}")
    }
}

/// When a rule applies. Empty lists and `None` impose nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Condition {
    /// Capability names (`CAP_SYS_ADMIN`).
    pub caps: Vec<String>,
    /// Docker architecture names (`amd64`, `x86`, `x32`, `arm64`, `arm`, …),
    /// see [`Arch::docker_name`].
    pub arches: Vec<String>,
    pub min_kernel: Option<KernelVersion>,
}

/// One rule of a docker profile: an OCI syscall rule and its conditions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConditionalRule {
    pub rule: LinuxSyscall,
    /// Applies only if the target has every listed cap, runs one of the
    /// listed arches, and has at least the kernel.
    pub includes: Condition,
    /// Does not apply if the target has any listed cap, runs one of the
    /// listed arches, or has at least the kernel.
    pub excludes: Condition,
}

impl ConditionalRule {
    fn applies_to(&self, target: &Target) -> bool {
        let arch = target.arch.docker_name();
        let ex = &self.excludes;
        if ex.arches.iter().any(|a| a == arch)
            || ex.caps.iter().any(|c| target.has_cap(c))
            || ex.min_kernel.is_some_and(|k| target.kernel_at_least(k))
        {
            return false;
        }
        let inc = &self.includes;
        (inc.arches.is_empty() || inc.arches.iter().any(|a| a == arch))
            && inc.caps.iter().all(|c| target.has_cap(c))
            && inc.min_kernel.is_none_or(|k| target.kernel_at_least(k))
    }
}

/// Which architectures the resolved section lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Architectures {
    /// `architectures`: used as is.
    List(Vec<Arch>),
    /// `archMap`: the entry of the target's architecture, with its
    /// sub-architectures; none if the map has no entry for it.
    Map(Vec<(Arch, Vec<Arch>)>),
}

/// A docker seccomp profile, validated, not yet resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DockerProfile {
    /// `None` only for the empty profile, which means "no seccomp".
    pub default_action: Option<LinuxSeccompAction>,
    pub default_errno_ret: Option<u32>,
    pub architectures: Architectures,
    pub flags: Vec<LinuxSeccompFilterFlag>,
    pub listener_path: Option<String>,
    pub listener_metadata: Option<String>,
    pub rules: Vec<ConditionalRule>,
}

impl DockerProfile {
    /// Reads and validates a profile in docker's JSON format. Unknown fields
    /// are ignored, as docker does; unknown actions, operators, architectures
    /// and flags are errors naming their field.
    pub fn from_json(json: &[u8]) -> Result<DockerProfile, ProfileError> {
        let raw: RawProfile =
            serde_json::from_slice(json).map_err(|source| ProfileError::Decode { source })?;
        raw.validate()
    }

    /// Resolves the profile for `target`. `None` for a profile with neither
    /// a default action nor syscalls: docker runs such a container without
    /// seccomp.
    pub fn resolve(&self, target: &Target) -> Option<LinuxSeccomp> {
        let default_action = match self.default_action {
            Some(action) => action,
            None if self.rules.is_empty() => return None,
            // from_json refuses this; a hand-built profile gets ERRNO.
            None => LinuxSeccompAction::ScmpActErrno,
        };
        let arches: Vec<Arch> = match &self.architectures {
            Architectures::List(list) => list.clone(),
            Architectures::Map(map) => map
                .iter()
                .find(|(native, _)| *native == target.arch)
                .map(|(native, subs)| {
                    std::iter::once(*native)
                        .chain(subs.iter().copied())
                        .collect()
                })
                .unwrap_or_default(),
        };
        let syscalls: Vec<LinuxSyscall> = self
            .rules
            .iter()
            .filter(|r| r.applies_to(target))
            .map(|r| r.rule.clone())
            .collect();

        let mut out = LinuxSeccomp::default();
        out.set_default_action(default_action);
        out.set_default_errno_ret(self.default_errno_ret);
        if !arches.is_empty() {
            out.set_architectures(Some(arches.iter().map(|a| a.to_oci()).collect()));
        }
        if !self.flags.is_empty() {
            out.set_flags(Some(self.flags.clone()));
        }
        out.set_listener_path(self.listener_path.as_ref().map(Into::into));
        out.set_listener_metadata(self.listener_metadata.clone());
        out.set_syscalls(Some(syscalls));
        Some(out)
    }
}

/// Reads a docker profile and resolves it for `caps` on `arch` and this
/// host's kernel. `Ok(None)` means the profile is empty and the container
/// runs without seccomp, as docker does.
pub fn parse_docker_profile(
    json: &[u8],
    caps: &[String],
    arch: Arch,
) -> Result<Option<LinuxSeccomp>, ProfileError> {
    Ok(DockerProfile::from_json(json)?.resolve(&Target::new(caps, arch)))
}

// ---- JSON as docker writes it ----

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawProfile {
    default_action: Option<String>,
    default_errno_ret: Option<u32>,
    architectures: Option<Vec<String>>,
    arch_map: Option<Vec<RawArchMap>>,
    flags: Option<Vec<String>>,
    listener_path: Option<String>,
    listener_metadata: Option<String>,
    syscalls: Option<Vec<RawSyscall>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawArchMap {
    architecture: String,
    sub_architectures: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawSyscall {
    name: Option<String>,
    names: Option<Vec<String>>,
    action: Option<String>,
    errno_ret: Option<u32>,
    args: Option<Vec<RawArg>>,
    includes: Option<RawFilter>,
    excludes: Option<RawFilter>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawArg {
    index: u64,
    value: u64,
    #[serde(default)]
    value_two: u64,
    op: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawFilter {
    caps: Option<Vec<String>>,
    arches: Option<Vec<String>>,
    min_kernel: Option<String>,
}

impl RawProfile {
    fn validate(self) -> Result<DockerProfile, ProfileError> {
        let default_action = match self.default_action.as_deref() {
            None | Some("") => None,
            Some(value) => Some(parse_action("defaultAction", value)?),
        };
        let syscalls = self.syscalls.unwrap_or_default();
        if default_action.is_none() && !syscalls.is_empty() {
            return Err(ProfileError::MissingDefaultAction);
        }
        let list = self.architectures.unwrap_or_default();
        let map = self.arch_map.unwrap_or_default();
        let architectures = match (list.is_empty(), map.is_empty()) {
            (false, false) => return Err(ProfileError::ArchitecturesAndArchMap),
            (_, true) => Architectures::List(
                list.iter()
                    .enumerate()
                    .map(|(i, a)| parse_arch(&format!("architectures[{i}]"), a))
                    .collect::<Result<_, _>>()?,
            ),
            (true, false) => Architectures::Map(
                map.iter()
                    .enumerate()
                    .map(|(i, entry)| {
                        let native =
                            parse_arch(&format!("archMap[{i}].architecture"), &entry.architecture)?;
                        let subs = entry
                            .sub_architectures
                            .iter()
                            .flatten()
                            .enumerate()
                            .map(|(j, a)| {
                                parse_arch(&format!("archMap[{i}].subArchitectures[{j}]"), a)
                            })
                            .collect::<Result<_, _>>()?;
                        Ok((native, subs))
                    })
                    .collect::<Result<_, ProfileError>>()?,
            ),
        };
        let flags = self
            .flags
            .unwrap_or_default()
            .iter()
            .enumerate()
            .map(|(i, f)| parse_flag(&format!("flags[{i}]"), f))
            .collect::<Result<_, _>>()?;
        let rules = syscalls
            .into_iter()
            .enumerate()
            .map(|(i, s)| s.validate(&format!("syscalls[{i}]")))
            .collect::<Result<_, _>>()?;
        Ok(DockerProfile {
            default_action,
            default_errno_ret: self.default_errno_ret,
            architectures,
            flags,
            listener_path: self.listener_path.filter(|p| !p.is_empty()),
            listener_metadata: self.listener_metadata.filter(|m| !m.is_empty()),
            rules,
        })
    }
}

impl RawSyscall {
    fn validate(self, field: &str) -> Result<ConditionalRule, ProfileError> {
        let names = match (self.name.filter(|n| !n.is_empty()), self.names) {
            (Some(_), Some(names)) if !names.is_empty() => {
                return Err(ProfileError::NameAndNames {
                    field: field.to_owned(),
                });
            }
            (Some(name), _) => vec![name],
            (None, names) => names.unwrap_or_default(),
        };
        // Docker passes an empty action through, and the runtime refuses it.
        let action = parse_action(
            &format!("{field}.action"),
            self.action.as_deref().unwrap_or(""),
        )?;
        let args = self
            .args
            .unwrap_or_default()
            .iter()
            .enumerate()
            .map(|(j, a)| a.validate(&format!("{field}.args[{j}]")))
            .collect::<Result<Vec<_>, _>>()?;
        let mut rule = LinuxSyscall::default();
        rule.set_names(names);
        rule.set_action(action);
        rule.set_errno_ret(self.errno_ret);
        if !args.is_empty() {
            rule.set_args(Some(args));
        }
        Ok(ConditionalRule {
            rule,
            includes: RawFilter::validate(self.includes, &format!("{field}.includes"))?,
            excludes: RawFilter::validate(self.excludes, &format!("{field}.excludes"))?,
        })
    }
}

impl RawArg {
    fn validate(&self, field: &str) -> Result<LinuxSeccompArg, ProfileError> {
        if self.index > 5 {
            return Err(ProfileError::ArgIndex {
                field: format!("{field}.index"),
                index: self.index,
            });
        }
        let op = parse_op(&format!("{field}.op"), &self.op)?;
        Ok(seccomp_arg(
            self.index as usize,
            self.value,
            self.value_two,
            op,
        ))
    }
}

impl RawFilter {
    fn validate(filter: Option<RawFilter>, field: &str) -> Result<Condition, ProfileError> {
        let Some(filter) = filter else {
            return Ok(Condition::default());
        };
        let min_kernel = match filter.min_kernel.as_deref() {
            None | Some("") => None,
            Some(value) => Some(KernelVersion::parse_min_kernel(value).ok_or_else(|| {
                ProfileError::KernelVersion {
                    field: format!("{field}.minKernel"),
                    value: value.to_owned(),
                }
            })?),
        };
        Ok(Condition {
            caps: filter.caps.unwrap_or_default(),
            arches: filter.arches.unwrap_or_default(),
            min_kernel,
        })
    }
}

/// An OCI argument condition; `value_two` only matters for MASKED_EQ.
pub(crate) fn seccomp_arg(
    index: usize,
    value: u64,
    value_two: u64,
    op: LinuxSeccompOperator,
) -> LinuxSeccompArg {
    LinuxSeccompArgBuilder::default()
        .index(index)
        .value(value)
        .value_two(value_two)
        .op(op)
        .build()
        .expect("every field of the argument is set")
}

const ACTIONS: &[(&str, LinuxSeccompAction)] = &[
    ("SCMP_ACT_KILL", LinuxSeccompAction::ScmpActKill),
    (
        "SCMP_ACT_KILL_THREAD",
        LinuxSeccompAction::ScmpActKillThread,
    ),
    (
        "SCMP_ACT_KILL_PROCESS",
        LinuxSeccompAction::ScmpActKillProcess,
    ),
    ("SCMP_ACT_TRAP", LinuxSeccompAction::ScmpActTrap),
    ("SCMP_ACT_ERRNO", LinuxSeccompAction::ScmpActErrno),
    ("SCMP_ACT_TRACE", LinuxSeccompAction::ScmpActTrace),
    ("SCMP_ACT_ALLOW", LinuxSeccompAction::ScmpActAllow),
    ("SCMP_ACT_LOG", LinuxSeccompAction::ScmpActLog),
    ("SCMP_ACT_NOTIFY", LinuxSeccompAction::ScmpActNotify),
];

const OPERATORS: &[(&str, LinuxSeccompOperator)] = &[
    ("SCMP_CMP_NE", LinuxSeccompOperator::ScmpCmpNe),
    ("SCMP_CMP_LT", LinuxSeccompOperator::ScmpCmpLt),
    ("SCMP_CMP_LE", LinuxSeccompOperator::ScmpCmpLe),
    ("SCMP_CMP_EQ", LinuxSeccompOperator::ScmpCmpEq),
    ("SCMP_CMP_GE", LinuxSeccompOperator::ScmpCmpGe),
    ("SCMP_CMP_GT", LinuxSeccompOperator::ScmpCmpGt),
    ("SCMP_CMP_MASKED_EQ", LinuxSeccompOperator::ScmpCmpMaskedEq),
];

const FLAGS: &[(&str, LinuxSeccompFilterFlag)] = &[
    (
        "SECCOMP_FILTER_FLAG_TSYNC",
        LinuxSeccompFilterFlag::SeccompFilterFlagTsync,
    ),
    (
        "SECCOMP_FILTER_FLAG_LOG",
        LinuxSeccompFilterFlag::SeccompFilterFlagLog,
    ),
    (
        "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
        LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow,
    ),
    (
        "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
        LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv,
    ),
];

fn lookup<T: Copy>(table: &[(&str, T)], value: &str) -> Option<T> {
    table
        .iter()
        .find(|(name, _)| *name == value)
        .map(|(_, t)| *t)
}

fn parse_action(field: &str, value: &str) -> Result<LinuxSeccompAction, ProfileError> {
    lookup(ACTIONS, value).ok_or_else(|| ProfileError::UnknownAction {
        field: field.to_owned(),
        value: value.to_owned(),
    })
}

fn parse_op(field: &str, value: &str) -> Result<LinuxSeccompOperator, ProfileError> {
    lookup(OPERATORS, value).ok_or_else(|| ProfileError::UnknownOperator {
        field: field.to_owned(),
        value: value.to_owned(),
    })
}

fn parse_flag(field: &str, value: &str) -> Result<LinuxSeccompFilterFlag, ProfileError> {
    lookup(FLAGS, value).ok_or_else(|| ProfileError::UnknownFlag {
        field: field.to_owned(),
        value: value.to_owned(),
    })
}

fn parse_arch(field: &str, value: &str) -> Result<Arch, ProfileError> {
    Arch::from_oci_name(value).ok_or_else(|| ProfileError::UnknownArch {
        field: field.to_owned(),
        value: value.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use oci_spec::runtime::Arch as OciArch;

    use super::*;

    const PROFILE: &str = r#"{
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": 1,
        "archMap": [
            {"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]},
            {"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": ["SCMP_ARCH_ARM"]}
        ],
        "someFieldDockerIgnores": true,
        "syscalls": [
            {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW", "comment": "always"},
            {"name": "mount", "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN"]}},
            {"names": ["kexec_load"], "action": "SCMP_ACT_ALLOW",
             "includes": {"caps": ["CAP_SYS_ADMIN", "CAP_SYS_BOOT"]}},
            {"names": ["arch_prctl"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["amd64", "x32"]}},
            {"names": ["set_tls"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["arm64"]}},
            {"names": ["clone"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 2114060288, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}],
             "excludes": {"caps": ["CAP_SYS_ADMIN"], "arches": ["s390x"]}},
            {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38,
             "excludes": {"caps": ["CAP_SYS_ADMIN"]}},
            {"names": ["landlock_create_ruleset"], "action": "SCMP_ACT_ALLOW",
             "includes": {"minKernel": "5.13"}},
            {"names": ["old_thing"], "action": "SCMP_ACT_LOG", "excludes": {"minKernel": "4.0"}}
        ]
    }"#;

    fn names(profile: &LinuxSeccomp) -> Vec<String> {
        profile
            .syscalls()
            .iter()
            .flatten()
            .flat_map(|r| r.names().clone())
            .collect()
    }

    fn target(caps: &[&str], arch: Arch, kernel: (u32, u32)) -> Target {
        Target {
            caps: caps.iter().map(|c| (*c).to_owned()).collect(),
            arch,
            kernel: Some(KernelVersion::new(kernel.0, kernel.1)),
        }
    }

    #[test]
    fn includes_and_excludes_follow_caps_arches_and_kernel() {
        let profile = DockerProfile::from_json(PROFILE.as_bytes()).unwrap();

        let plain = profile.resolve(&target(&[], Arch::X86_64, (6, 1))).unwrap();
        assert_eq!(
            names(&plain),
            [
                "read",
                "write",
                "arch_prctl",
                "clone",
                "clone3",
                "landlock_create_ruleset"
            ]
        );
        assert_eq!(plain.default_action(), LinuxSeccompAction::ScmpActErrno);
        assert_eq!(plain.default_errno_ret(), Some(1));
        assert_eq!(
            plain.architectures().as_deref(),
            Some(
                &[
                    OciArch::ScmpArchX86_64,
                    OciArch::ScmpArchX86,
                    OciArch::ScmpArchX32
                ][..]
            )
        );
        let clone = &plain.syscalls().as_ref().unwrap()[2];
        let arg = clone.args().as_ref().unwrap()[0];
        assert_eq!(arg.op(), LinuxSeccompOperator::ScmpCmpMaskedEq);
        assert_eq!(arg.value(), 0x7e02_0000);

        // One of two caps is not enough for an include; one cap is enough
        // for an exclude.
        let admin = profile
            .resolve(&target(&["CAP_SYS_ADMIN"], Arch::X86_64, (6, 1)))
            .unwrap();
        assert_eq!(
            names(&admin),
            [
                "read",
                "write",
                "mount",
                "arch_prctl",
                "landlock_create_ruleset"
            ]
        );
        let both = profile
            .resolve(&target(
                &["cap_sys_admin", "SYS_BOOT"],
                Arch::X86_64,
                (6, 1),
            ))
            .unwrap();
        assert!(names(&both).contains(&"kexec_load".to_owned()));

        let arm = profile
            .resolve(&target(&[], Arch::Aarch64, (5, 10)))
            .unwrap();
        assert_eq!(names(&arm), ["read", "write", "set_tls", "clone", "clone3"]);
        assert_eq!(
            arm.architectures().as_deref(),
            Some(&[OciArch::ScmpArchAarch64, OciArch::ScmpArchArm][..])
        );

        let s390x = profile.resolve(&target(&[], Arch::S390x, (3, 10))).unwrap();
        assert_eq!(names(&s390x), ["read", "write", "clone3", "old_thing"]);
        assert_eq!(s390x.architectures(), &None, "no archMap entry for s390x");
    }

    #[test]
    fn the_resolved_profile_compiles() {
        let profile = parse_docker_profile(PROFILE.as_bytes(), &[], Arch::native())
            .unwrap()
            .unwrap();
        crate::compile(&profile).unwrap();
    }

    #[test]
    fn architectures_list_and_flags_pass_through() {
        let json = br#"{
            "defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
            "flags": ["SECCOMP_FILTER_FLAG_LOG"],
            "listenerPath": "/run/agent.sock",
            "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]
        }"#;
        let p = parse_docker_profile(json, &[], Arch::Aarch64)
            .unwrap()
            .unwrap();
        assert_eq!(
            p.architectures().as_deref(),
            Some(&[OciArch::ScmpArchX86_64, OciArch::ScmpArchX86][..])
        );
        assert_eq!(
            p.flags().as_deref(),
            Some(&[LinuxSeccompFilterFlag::SeccompFilterFlagLog][..])
        );
        assert_eq!(
            p.listener_path().as_deref(),
            Some(std::path::Path::new("/run/agent.sock"))
        );
    }

    #[test]
    fn an_empty_profile_means_no_seccomp() {
        assert!(
            parse_docker_profile(b"{}", &[], Arch::X86_64)
                .unwrap()
                .is_none()
        );
        assert!(
            parse_docker_profile(
                br#"{"defaultAction": "", "syscalls": null}"#,
                &[],
                Arch::X86_64
            )
            .unwrap()
            .is_none()
        );
    }

    #[test]
    fn errors_name_the_field() {
        let err = |json: &str| {
            DockerProfile::from_json(json.as_bytes())
                .unwrap_err()
                .to_string()
        };
        let rule = |n: usize, last: &str| {
            let mut rules = vec![r#"{"names": ["read"], "action": "SCMP_ACT_ALLOW"}"#; n];
            rules.push(last);
            format!(
                r#"{{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{}]}}"#,
                rules.join(",")
            )
        };
        assert_eq!(
            err(&rule(3, r#"{"names": ["read"], "action": "SCMP_ACT_FOO"}"#)),
            r#"syscalls[3].action: unknown action "SCMP_ACT_FOO""#
        );
        assert_eq!(
            err(&rule(
                1,
                r#"{"names": ["read"], "action": "SCMP_ACT_ALLOW",
                "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"},
                         {"index": 1, "value": 1, "op": "SCMP_CMP_SOMETIMES"}]}"#
            )),
            r#"syscalls[1].args[1].op: unknown operator "SCMP_CMP_SOMETIMES""#
        );
        assert_eq!(
            err(&rule(
                0,
                r#"{"names": ["read"], "action": "SCMP_ACT_ALLOW",
                "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}"#
            )),
            "syscalls[0].args[0].index: argument index 6 is out of range (0 to 5)"
        );
        assert_eq!(
            err(&rule(0, r#"{"names": ["read"]}"#)),
            r#"syscalls[0].action: unknown action """#
        );
        assert_eq!(
            err(&rule(
                2,
                r#"{"name": "read", "names": ["write"], "action": "SCMP_ACT_ALLOW"}"#
            )),
            "syscalls[2]: both 'name' and 'names' are specified in the seccomp profile, use either 'name' or 'names'"
        );
        assert_eq!(
            err(&rule(
                0,
                r#"{"names": ["read"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "4"}}"#
            )),
            r#"syscalls[0].includes.minKernel: invalid kernel version "4", expected "<kernel>.<major>""#
        );
        assert_eq!(
            err(r#"{"defaultAction": "SCMP_ACT_NOPE"}"#),
            r#"defaultAction: unknown action "SCMP_ACT_NOPE""#
        );
        assert_eq!(
            err(
                r#"{"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_PDP11"]}"#
            ),
            r#"architectures[1]: unknown architecture "SCMP_ARCH_PDP11""#
        );
        assert_eq!(
            err(r#"{"defaultAction": "SCMP_ACT_ALLOW",
                "archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["x86"]}]}"#),
            r#"archMap[0].subArchitectures[0]: unknown architecture "x86""#
        );
        assert_eq!(
            err(r#"{"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_FAST"]}"#),
            r#"flags[0]: unknown flag "SECCOMP_FILTER_FLAG_FAST""#
        );
        assert_eq!(
            err(
                r#"{"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"],
                "archMap": [{"architecture": "SCMP_ARCH_X86_64"}]}"#
            ),
            "both 'architectures' and 'archMap' are specified in the seccomp profile, use either 'architectures' or 'archMap'"
        );
        assert_eq!(
            err(r#"{"syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW"}]}"#),
            "defaultAction: missing, a profile with syscalls needs a default action"
        );
        assert!(err("{not json").starts_with("decoding seccomp profile failed: "));
        assert!(
            err(r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": "read"}]}"#)
                .starts_with("decoding seccomp profile failed: invalid type")
        );
    }

    #[test]
    fn kernel_versions() {
        assert_eq!(
            KernelVersion::parse_release("6.1.0-18-amd64"),
            Some(KernelVersion::new(6, 1))
        );
        assert_eq!(
            KernelVersion::parse_release("3.12-1-amd64"),
            Some(KernelVersion::new(3, 12))
        );
        assert_eq!(
            KernelVersion::parse_release("4.8"),
            Some(KernelVersion::new(4, 8))
        );
        assert_eq!(KernelVersion::parse_release("junk"), None);
        assert!(KernelVersion::host().is_some());
        assert_eq!(KernelVersion::parse_min_kernel("0.0"), None);
        assert_eq!(
            KernelVersion::parse_min_kernel("5.13"),
            Some(KernelVersion::new(5, 13))
        );
        assert_eq!(KernelVersion::parse_min_kernel("5.13.1"), None);
    }
}
