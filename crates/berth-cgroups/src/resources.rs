//! Writing `linux.resources` into cgroup files, on v1 and v2.
//!
//! Only what the spec sets is written. A set value whose controller the host
//! lacks is an error naming the field; an unset one is never looked at.
//!
//! Conversions from the OCI (v1-shaped) values to v2 files:
//!
//! | OCI | v1 | v2 |
//! |---|---|---|
//! | memory.limit | memory.limit_in_bytes | memory.max |
//! | memory.reservation | memory.soft_limit_in_bytes | memory.low |
//! | memory.swap (memory + swap, docker's `--memory-swap`) | memory.memsw.limit_in_bytes | memory.swap.max = swap − limit |
//! | cpu.shares | cpu.shares | cpu.weight, see [`cpu_weight`] |
//! | cpu.quota, cpu.period | cpu.cfs_quota_us, cpu.cfs_period_us | cpu.max `"quota period"` |
//! | blockIO.weight (10–1000) | blkio.weight or blkio.bfq.weight | io.bfq.weight as is, else io.weight, see [`io_weight`] |
//! | blockIO.throttle* | blkio.throttle.*_device | io.max `rbps=`, `wbps=`, `riops=`, `wiops=` |
//! | hugepageLimits | hugetlb.SIZE.limit_in_bytes (+ rsvd) | hugetlb.SIZE.max (+ rsvd) |
//!
//! `-1` means unlimited everywhere (`max` on v2).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxMemory, LinuxResources, LinuxThrottleDevice};

use crate::ErrorKind;
use crate::devices::{self, DeviceError, DeviceRule};
use crate::fs::Files;
use crate::hierarchy::Controller;

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("{field}: write {value:?} to {}: {source}", path.display())]
    Write { field: &'static str, path: PathBuf, value: String, source: std::io::Error },
    #[error("{field}: the {controller} cgroup controller is not available on this host")]
    NoController { field: &'static str, controller: Controller },
    #[error("{field}: {reason}")]
    Unsupported { field: &'static str, reason: &'static str },
    #[error("{field}: invalid value {value}: {reason}")]
    Invalid { field: &'static str, value: String, reason: &'static str },
    #[error(transparent)]
    Devices(#[from] DeviceError),
    #[error(transparent)]
    Bpf(#[from] crate::bpf::BpfError),
}

impl ApplyError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            ApplyError::Write { source, .. } => match source.raw_os_error() {
                Some(libc::ENOENT) => ErrorKind::Unsupported,
                Some(libc::EINVAL | libc::ERANGE | libc::EOVERFLOW | libc::EBUSY) => ErrorKind::InvalidSpec,
                _ => ErrorKind::System,
            },
            ApplyError::NoController { .. } | ApplyError::Unsupported { .. } => ErrorKind::Unsupported,
            ApplyError::Invalid { .. } => ErrorKind::InvalidSpec,
            ApplyError::Devices(e) => e.kind(),
            ApplyError::Bpf(e) => e.kind(),
        }
    }
}

/// Where each controller's files are for one cgroup: the directory and
/// whether it is a v2 one.
#[derive(Debug, Default)]
pub(crate) struct Dirs {
    pub controllers: Vec<(Controller, PathBuf, bool)>,
    pub unified: Option<PathBuf>,
}

impl Dirs {
    pub(crate) fn get(&self, controller: Controller) -> Option<(&Path, bool)> {
        self.controllers.iter().find(|(c, _, _)| *c == controller).map(|(_, d, v2)| (d.as_path(), *v2))
    }

    fn need(&self, controller: Controller, field: &'static str) -> Result<(&Path, bool), ApplyError> {
        self.get(controller).ok_or(ApplyError::NoController { field, controller })
    }
}

/// v2 `cpu.weight` from v1 `cpu.shares`, as runc and crun convert it since
/// 2025: a quadratic in log2(shares) through the minimum (2 → 1), the default
/// (1024 → 100) and the maximum (262144 → 10000):
/// `weight = ceil(10^((l² + 125·l) / 612 − 7/34))`, `l = log2(shares)`.
/// The older linear formula `1 + (shares − 2)·9999/262142` mapped the default
/// 1024 to 39, below an unconfigured cgroup's 100.
pub fn cpu_weight(shares: u64) -> u64 {
    match shares {
        0 => 0,
        1..=2 => 1,
        262_144.. => 10_000,
        _ => {
            let l = (shares as f64).log2();
            let exponent = (l * l + 125.0 * l) / 612.0 - 7.0 / 34.0;
            10f64.powf(exponent).ceil() as u64
        }
    }
}

/// v2 `io.weight` (1–10000) from a blkio weight (10–1000), linear as runc:
/// `1 + (weight − 10)·9999/990`. `io.bfq.weight` takes the blkio range as is.
pub fn io_weight(weight: u16) -> u64 {
    1 + u64::from(weight.max(10) - 10) * 9999 / 990
}

/// v2 `memory.swap.max` from the OCI swap (memory + swap) and limit, as
/// docker means them; `None` when nothing is to be written.
fn swap_max(limit: Option<i64>, swap: Option<i64>) -> Result<Option<String>, ApplyError> {
    const FIELD: &str = "linux.resources.memory.swap";
    match (limit, swap) {
        (Some(-1), None) | (_, Some(-1)) => Ok(Some("max".into())),
        (_, None) => Ok(None),
        (Some(l), Some(s)) if l > 0 => {
            if s < l {
                return Err(ApplyError::Invalid {
                    field: FIELD,
                    value: s.to_string(),
                    reason: "memory+swap must be at least the memory limit",
                });
            }
            Ok(Some((s - l).to_string()))
        }
        (_, Some(s)) => {
            Err(ApplyError::Invalid { field: FIELD, value: s.to_string(), reason: "a swap limit needs a memory limit" })
        }
    }
}

/// A value as runc reads it, which docker and containerd rely on: 0 means
/// "not set" for limits, reservations, swap, quotas, periods and weights.
fn set<T: Default + PartialEq>(v: Option<T>) -> Option<T> {
    v.filter(|v| *v != T::default())
}

fn max_or(v: i64) -> String {
    if v < 0 { "max".into() } else { v.to_string() }
}

struct Writer<'a> {
    files: &'a dyn Files,
}

impl Writer<'_> {
    fn set(&self, field: &'static str, dir: &Path, file: &str, value: &str) -> Result<(), ApplyError> {
        let path = dir.join(file);
        self.files.write(&path, value).map_err(|source| ApplyError::Write {
            field,
            path,
            value: value.to_owned(),
            source,
        })
    }

    /// Like `set`, but a missing file is `Ok(false)`.
    fn set_if_present(&self, field: &'static str, dir: &Path, file: &str, value: &str) -> Result<bool, ApplyError> {
        match self.set(field, dir, file, value) {
            Err(ApplyError::Write { source, .. }) if source.raw_os_error() == Some(libc::ENOENT) => Ok(false),
            r => r.map(|()| true),
        }
    }

    fn memory(&self, dirs: &Dirs, m: &LinuxMemory) -> Result<(), ApplyError> {
        const LIMIT: &str = "linux.resources.memory.limit";
        const SWAP: &str = "linux.resources.memory.swap";
        let (limit, reservation) = (set(m.limit()), set(m.reservation()));
        let (swap, kernel_tcp) = (set(m.swap()), set(m.kernel_tcp()));
        if m.kernel().is_some() {
            tracing::warn!("linux.resources.memory.kernel is deprecated and ignored");
        }
        let wanted = limit.is_some()
            || reservation.is_some()
            || swap.is_some()
            || m.swappiness().is_some()
            || m.disable_oom_killer() == Some(true)
            || kernel_tcp.is_some()
            || m.use_hierarchy().is_some();
        if !wanted {
            return Ok(());
        }
        let (dir, v2) = dirs.need(Controller::Memory, LIMIT)?;
        if v2 {
            if let Some(l) = limit {
                self.set(LIMIT, dir, "memory.max", &max_or(l))?;
            }
            if let Some(v) = swap_max(limit, swap)?
                && !self.set_if_present(SWAP, dir, "memory.swap.max", &v)?
                && v != "max"
            {
                return Err(ApplyError::Unsupported {
                    field: SWAP,
                    reason: "swap accounting is off on this host (no memory.swap.max)",
                });
            }
            if let Some(r) = reservation {
                self.set("linux.resources.memory.reservation", dir, "memory.low", &max_or(r))?;
            }
            if m.swappiness().is_some() {
                return Err(ApplyError::Unsupported {
                    field: "linux.resources.memory.swappiness",
                    reason: "cgroup v2 has no per-cgroup swappiness",
                });
            }
            if m.disable_oom_killer() == Some(true) {
                return Err(ApplyError::Unsupported {
                    field: "linux.resources.memory.disableOOMKiller",
                    reason: "cgroup v2 cannot disable the OOM killer",
                });
            }
            if kernel_tcp.is_some() {
                tracing::warn!("linux.resources.memory.kernelTCP has no cgroup v2 equivalent and is ignored");
            }
            return Ok(());
        }
        if let (Some(l), Some(s)) = (limit, swap)
            && l >= 0
            && s >= 0
            && s < l
        {
            return Err(ApplyError::Invalid {
                field: SWAP,
                value: s.to_string(),
                reason: "memory+swap must be at least the memory limit",
            });
        }
        // The kernel keeps memory.limit <= memory.memsw.limit at every step:
        // lowering limits goes limit first, raising them memsw first. Try
        // limit first (right for a new cgroup) and swap the order when the
        // kernel refuses.
        let memsw = |s: i64| -> Result<(), ApplyError> {
            if !self.set_if_present(SWAP, dir, "memory.memsw.limit_in_bytes", &s.to_string())? && s != -1 {
                return Err(ApplyError::Unsupported {
                    field: SWAP,
                    reason: "swap accounting is off on this host (no memory.memsw.limit_in_bytes)",
                });
            }
            Ok(())
        };
        match (limit, swap) {
            (Some(l), _) => match self.set(LIMIT, dir, "memory.limit_in_bytes", &l.to_string()) {
                Err(ApplyError::Write { source, .. })
                    if source.raw_os_error() == Some(libc::EINVAL) && swap.is_some() =>
                {
                    memsw(swap.unwrap_or(-1))?;
                    self.set(LIMIT, dir, "memory.limit_in_bytes", &l.to_string())?;
                }
                r => {
                    r?;
                    if let Some(s) = swap {
                        memsw(s)?;
                    }
                }
            },
            (None, Some(s)) => memsw(s)?,
            (None, None) => {}
        }
        if let Some(r) = reservation {
            self.set("linux.resources.memory.reservation", dir, "memory.soft_limit_in_bytes", &r.to_string())?;
        }
        if let Some(s) = m.swappiness() {
            if s > 100 {
                return Err(ApplyError::Invalid {
                    field: "linux.resources.memory.swappiness",
                    value: s.to_string(),
                    reason: "must be 0 to 100",
                });
            }
            self.set("linux.resources.memory.swappiness", dir, "memory.swappiness", &s.to_string())?;
        }
        if m.disable_oom_killer() == Some(true) {
            self.set("linux.resources.memory.disableOOMKiller", dir, "memory.oom_control", "1")?;
        }
        if let Some(t) = kernel_tcp {
            self.set("linux.resources.memory.kernelTCP", dir, "memory.kmem.tcp.limit_in_bytes", &t.to_string())?;
        }
        if let Some(h) = m.use_hierarchy() {
            self.set("linux.resources.memory.useHierarchy", dir, "memory.use_hierarchy", if h { "1" } else { "0" })?;
        }
        Ok(())
    }

    fn cpu(&self, dirs: &Dirs, c: &LinuxCpu) -> Result<(), ApplyError> {
        const SHARES: &str = "linux.resources.cpu.shares";
        const QUOTA: &str = "linux.resources.cpu.quota";
        const PERIOD: &str = "linux.resources.cpu.period";
        const RT_RUNTIME: &str = "linux.resources.cpu.realtimeRuntime";
        const RT_PERIOD: &str = "linux.resources.cpu.realtimePeriod";
        if let Some(cpus) = c.cpus().as_deref().filter(|s| !s.is_empty()) {
            let (dir, _) = dirs.need(Controller::Cpuset, "linux.resources.cpu.cpus")?;
            self.set("linux.resources.cpu.cpus", dir, "cpuset.cpus", cpus)?;
        }
        if let Some(mems) = c.mems().as_deref().filter(|s| !s.is_empty()) {
            let (dir, _) = dirs.need(Controller::Cpuset, "linux.resources.cpu.mems")?;
            self.set("linux.resources.cpu.mems", dir, "cpuset.mems", mems)?;
        }
        let (shares, quota, period) = (set(c.shares()), set(c.quota()), set(c.period()));
        let (realtime_runtime, realtime_period) = (set(c.realtime_runtime()), set(c.realtime_period()));
        let wanted = shares.is_some()
            || quota.is_some()
            || period.is_some()
            || c.burst().is_some()
            || c.idle().is_some()
            || realtime_runtime.is_some()
            || realtime_period.is_some();
        if !wanted {
            return Ok(());
        }
        let (dir, v2) = dirs.need(Controller::Cpu, SHARES)?;
        if v2 {
            if let Some(s) = shares {
                self.set(SHARES, dir, "cpu.weight", &cpu_weight(s).to_string())?;
            }
            if quota.is_some() || period.is_some() {
                // "QUOTA" keeps the period; "max PERIOD" when only the period
                // is given, as runc writes it.
                let mut v = quota.map_or("max".to_owned(), max_or);
                if let Some(p) = period {
                    v = format!("{v} {p}");
                }
                self.set(QUOTA, dir, "cpu.max", &v)?;
            }
            if let Some(b) = c.burst() {
                self.set("linux.resources.cpu.burst", dir, "cpu.max.burst", &b.to_string())?;
            }
            if let Some(i) = c.idle() {
                self.set("linux.resources.cpu.idle", dir, "cpu.idle", &i.to_string())?;
            }
            if realtime_runtime.is_some() || realtime_period.is_some() {
                return Err(ApplyError::Unsupported {
                    field: RT_RUNTIME,
                    reason: "cgroup v2 has no realtime scheduling groups",
                });
            }
            return Ok(());
        }
        if let Some(s) = shares {
            self.set(SHARES, dir, "cpu.shares", &s.to_string())?;
        }
        // A new period can be refused against the current quota (and the
        // parent's); then the quota goes first.
        match (period, quota) {
            (Some(p), q) => match self.set(PERIOD, dir, "cpu.cfs_period_us", &p.to_string()) {
                Err(ApplyError::Write { source, .. }) if source.raw_os_error() == Some(libc::EINVAL) && q.is_some() => {
                    self.set(QUOTA, dir, "cpu.cfs_quota_us", &q.unwrap_or(-1).to_string())?;
                    self.set(PERIOD, dir, "cpu.cfs_period_us", &p.to_string())?;
                }
                r => {
                    r?;
                    if let Some(q) = q {
                        self.set(QUOTA, dir, "cpu.cfs_quota_us", &q.to_string())?;
                    }
                }
            },
            (None, Some(q)) => self.set(QUOTA, dir, "cpu.cfs_quota_us", &q.to_string())?,
            (None, None) => {}
        }
        if let Some(b) = c.burst() {
            self.set("linux.resources.cpu.burst", dir, "cpu.cfs_burst_us", &b.to_string())?;
        }
        if let Some(p) = realtime_period {
            self.set(RT_PERIOD, dir, "cpu.rt_period_us", &p.to_string())?;
        }
        if let Some(r) = realtime_runtime {
            self.set(RT_RUNTIME, dir, "cpu.rt_runtime_us", &r.to_string())?;
        }
        if let Some(i) = c.idle() {
            self.set("linux.resources.cpu.idle", dir, "cpu.idle", &i.to_string())?;
        }
        Ok(())
    }

    fn block_io(&self, dirs: &Dirs, b: &LinuxBlockIo) -> Result<(), ApplyError> {
        const WEIGHT: &str = "linux.resources.blockIO.weight";
        const WEIGHT_DEVICE: &str = "linux.resources.blockIO.weightDevice";
        let throttles: [(&'static str, &Option<Vec<LinuxThrottleDevice>>, &str, &str); 4] = [
            (
                "linux.resources.blockIO.throttleReadBpsDevice",
                b.throttle_read_bps_device(),
                "blkio.throttle.read_bps_device",
                "rbps",
            ),
            (
                "linux.resources.blockIO.throttleWriteBpsDevice",
                b.throttle_write_bps_device(),
                "blkio.throttle.write_bps_device",
                "wbps",
            ),
            (
                "linux.resources.blockIO.throttleReadIOPSDevice",
                b.throttle_read_iops_device(),
                "blkio.throttle.read_iops_device",
                "riops",
            ),
            (
                "linux.resources.blockIO.throttleWriteIOPSDevice",
                b.throttle_write_iops_device(),
                "blkio.throttle.write_iops_device",
                "wiops",
            ),
        ];
        let (weight, leaf_weight) = (set(b.weight()), set(b.leaf_weight()));
        let weight_devices = b.weight_device().as_deref().unwrap_or_default();
        let wanted = weight.is_some()
            || leaf_weight.is_some()
            || !weight_devices.is_empty()
            || throttles.iter().any(|t| t.1.as_ref().is_some_and(|v| !v.is_empty()));
        if !wanted {
            return Ok(());
        }
        let (dir, v2) = dirs.need(Controller::Blkio, WEIGHT)?;
        if let Some(w) = weight
            && !(10..=1000).contains(&w)
        {
            return Err(ApplyError::Invalid { field: WEIGHT, value: w.to_string(), reason: "must be 10 to 1000" });
        }
        // BFQ takes the v1 weight range on both versions; without BFQ, v1
        // has blkio.weight (CFQ, gone from kernels since 5.0) and v2 has
        // io.weight in its own range.
        let (bfq, plain, plain_value): (&str, &str, fn(u16) -> String) = if v2 {
            ("io.bfq.weight", "io.weight", |w| io_weight(w).to_string())
        } else {
            ("blkio.bfq.weight", "blkio.weight", |w| w.to_string())
        };
        let write_weight = |field, w: u16, prefix: &str| -> Result<(), ApplyError> {
            if !self.set_if_present(field, dir, bfq, &format!("{prefix}{w}"))? {
                self.set(field, dir, plain, &format!("{prefix}{}", plain_value(w)))?;
            }
            Ok(())
        };
        if let Some(w) = weight {
            write_weight(WEIGHT, w, "")?;
        }
        if leaf_weight.is_some() || weight_devices.iter().any(|d| d.leaf_weight().is_some()) {
            return Err(ApplyError::Unsupported {
                field: "linux.resources.blockIO.leafWeight",
                reason: "leaf weights need the CFQ scheduler, gone from Linux since 5.0",
            });
        }
        for d in weight_devices {
            if let Some(w) = d.weight() {
                // v1 BFQ reads "MAJ:MIN W" from blkio.bfq.weight_device; v2
                // BFQ from io.bfq.weight itself.
                let prefix = format!("{}:{} ", d.major(), d.minor());
                if v2 {
                    write_weight(WEIGHT_DEVICE, w, &prefix)?;
                } else if !self.set_if_present(
                    WEIGHT_DEVICE,
                    dir,
                    "blkio.bfq.weight_device",
                    &format!("{prefix}{w}"),
                )? {
                    self.set(WEIGHT_DEVICE, dir, "blkio.weight_device", &format!("{prefix}{w}"))?;
                }
            }
        }
        for (field, list, v1_file, v2_key) in throttles {
            for t in list.as_deref().unwrap_or_default() {
                if v2 {
                    self.set(field, dir, "io.max", &format!("{}:{} {v2_key}={}", t.major(), t.minor(), t.rate()))?;
                } else {
                    self.set(field, dir, v1_file, &format!("{}:{} {}", t.major(), t.minor(), t.rate()))?;
                }
            }
        }
        Ok(())
    }

    fn hugetlb(&self, dirs: &Dirs, res: &LinuxResources) -> Result<(), ApplyError> {
        const FIELD: &str = "linux.resources.hugepageLimits";
        let limits = res.hugepage_limits().as_deref().unwrap_or_default();
        if limits.is_empty() {
            return Ok(());
        }
        let (dir, v2) = dirs.need(Controller::Hugetlb, FIELD)?;
        let (limit, rsvd) = if v2 { ("max", "rsvd.max") } else { ("limit_in_bytes", "rsvd.limit_in_bytes") };
        for l in limits {
            let size = l.page_size();
            if size.is_empty() || !size.bytes().all(|b| b.is_ascii_alphanumeric()) {
                return Err(ApplyError::Invalid {
                    field: FIELD,
                    value: size.clone(),
                    reason: "page size must look like 2MB or 1GB",
                });
            }
            let value = l.limit().to_string();
            self.set(FIELD, dir, &format!("hugetlb.{size}.{limit}"), &value)?;
            // Reservations (Linux 5.7+) are limited alongside, as runc does, so
            // that a mmap is refused up front rather than faulting later.
            self.set_if_present(FIELD, dir, &format!("hugetlb.{size}.{rsvd}"), &value)?;
        }
        Ok(())
    }

    fn network_and_rdma(&self, dirs: &Dirs, res: &LinuxResources) -> Result<(), ApplyError> {
        if let Some(n) = res.network() {
            if let Some(id) = n.class_id() {
                const FIELD: &str = "linux.resources.network.classID";
                let (dir, _) = dirs.need(Controller::NetCls, FIELD)?;
                self.set(FIELD, dir, "net_cls.classid", &id.to_string())?;
            }
            for p in n.priorities().as_deref().unwrap_or_default() {
                const FIELD: &str = "linux.resources.network.priorities";
                let (dir, _) = dirs.need(Controller::NetPrio, FIELD)?;
                self.set(FIELD, dir, "net_prio.ifpriomap", &format!("{} {}", p.name(), p.priority()))?;
            }
        }
        let rdma: BTreeMap<_, _> = res.rdma().iter().flatten().collect();
        for (hca, r) in rdma {
            const FIELD: &str = "linux.resources.rdma";
            let (dir, _) = dirs.need(Controller::Rdma, FIELD)?;
            let mut v = hca.clone();
            if let Some(h) = r.hca_handles() {
                v.push_str(&format!(" hca_handle={h}"));
            }
            if let Some(o) = r.hca_objects() {
                v.push_str(&format!(" hca_object={o}"));
            }
            if v.len() > hca.len() {
                self.set(FIELD, dir, "rdma.max", &v)?;
            }
        }
        Ok(())
    }

    fn unified(&self, dirs: &Dirs, res: &LinuxResources) -> Result<(), ApplyError> {
        const FIELD: &str = "linux.resources.unified";
        let map: BTreeMap<_, _> = res.unified().iter().flatten().collect();
        if map.is_empty() {
            return Ok(());
        }
        let dir = dirs
            .unified
            .as_deref()
            .ok_or(ApplyError::Unsupported { field: FIELD, reason: "the host has no cgroup v2 hierarchy" })?;
        for (key, value) in map {
            // The interface files that move processes or change the tree are
            // berth's to write, never the spec's.
            let tree_file =
                key.starts_with("cgroup.") && !matches!(key.as_str(), "cgroup.max.depth" | "cgroup.max.descendants");
            if key.is_empty() || key.starts_with('.') || key.contains('/') || tree_file {
                return Err(ApplyError::Invalid {
                    field: FIELD,
                    value: key.clone(),
                    reason: "keys must be controller file names such as memory.high",
                });
            }
            self.set(FIELD, dir, key, value)?;
        }
        Ok(())
    }
}

/// Writes every file-based limit of `res` (all but v2 device programs).
pub(crate) fn apply(dirs: &Dirs, res: &LinuxResources, files: &dyn Files) -> Result<(), ApplyError> {
    let w = Writer { files };
    if let Some(c) = res.cpu() {
        w.cpu(dirs, c)?;
    }
    if let Some(m) = res.memory() {
        w.memory(dirs, m)?;
    }
    if let Some(p) = res.pids()
        && p.limit() != 0
    {
        const FIELD: &str = "linux.resources.pids.limit";
        let (dir, _) = dirs.need(Controller::Pids, FIELD)?;
        w.set(FIELD, dir, "pids.max", &max_or(p.limit()))?;
    }
    if let Some(b) = res.block_io() {
        w.block_io(dirs, b)?;
    }
    w.hugetlb(dirs, res)?;
    w.network_and_rdma(dirs, res)?;
    w.unified(dirs, res)
}

/// Device rules: v1 lines are written here; for v2 the directory to attach
/// a device program to is returned.
pub(crate) fn apply_devices<'d>(
    dirs: &'d Dirs,
    rules: &[DeviceRule],
    files: &dyn Files,
) -> Result<Option<&'d Path>, ApplyError> {
    const FIELD: &str = "linux.resources.devices";
    let (dir, v2) = dirs.need(Controller::Devices, FIELD)?;
    if v2 {
        return Ok(Some(dir));
    }
    let w = Writer { files };
    for (file, line) in devices::v1_writes(rules) {
        w.set(FIELD, dir, file, &line)?;
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::fake::Recorder;
    use oci_spec::runtime::*;

    fn dirs(v2: bool) -> Dirs {
        let root = if v2 { "/cg" } else { "/cg/v1" };
        Dirs {
            controllers: Controller::ALL.iter().map(|c| (*c, PathBuf::from(format!("{root}/{c}/ctr")), v2)).collect(),
            unified: Some(PathBuf::from("/cg/unified/ctr")),
        }
    }

    fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
    }

    fn mem(limit: Option<i64>, swap: Option<i64>) -> LinuxResources {
        let mut m = LinuxMemoryBuilder::default();
        if let Some(l) = limit {
            m = m.limit(l);
        }
        if let Some(s) = swap {
            m = m.swap(s);
        }
        LinuxResourcesBuilder::default().memory(m.build().unwrap()).build().unwrap()
    }

    const V1_MEMORY: &[&str] = &[
        "memory.limit_in_bytes",
        "memory.memsw.limit_in_bytes",
        "memory.soft_limit_in_bytes",
        "memory.swappiness",
        "memory.oom_control",
    ];
    const V2_MEMORY: &[&str] = &["memory.max", "memory.swap.max", "memory.low"];

    #[test]
    fn nothing_set_writes_nothing() {
        // Zero is "not set" for these, as runc reads them.
        let f = Recorder::default();
        let res = LinuxResourcesBuilder::default()
            .memory(
                LinuxMemoryBuilder::default()
                    .limit(0)
                    .swap(0)
                    .reservation(0)
                    .disable_oom_killer(false)
                    .build()
                    .unwrap(),
            )
            .cpu(LinuxCpuBuilder::default().shares(0u64).quota(0).period(0u64).cpus("").build().unwrap())
            .pids(LinuxPidsBuilder::default().limit(0).build().unwrap())
            .block_io(LinuxBlockIoBuilder::default().weight(0u16).build().unwrap())
            .build()
            .unwrap();
        apply(&Dirs::default(), &res, &f).unwrap();
        assert!(f.names().is_empty());
    }

    #[test]
    fn memory_v1_limit_then_memsw_and_the_rest() {
        let f = Recorder::with(V1_MEMORY);
        let m = LinuxMemoryBuilder::default()
            .limit(32 << 20)
            .swap(64 << 20)
            .reservation(16 << 20)
            .swappiness(10u64)
            .disable_oom_killer(true)
            .build()
            .unwrap();
        apply(&dirs(false), &LinuxResourcesBuilder::default().memory(m).build().unwrap(), &f).unwrap();
        assert_eq!(
            f.names(),
            pairs(&[
                ("memory.limit_in_bytes", "33554432"),
                ("memory.memsw.limit_in_bytes", "67108864"),
                ("memory.soft_limit_in_bytes", "16777216"),
                ("memory.swappiness", "10"),
                ("memory.oom_control", "1"),
            ])
        );
        assert_eq!(f.writes.borrow()[0].0, PathBuf::from("/cg/v1/memory/ctr/memory.limit_in_bytes"));
    }

    #[test]
    fn memory_v1_raising_above_memsw_writes_memsw_first() {
        let mut f = Recorder::with(V1_MEMORY);
        f.refuse.insert("memory.limit_in_bytes", libc::EINVAL);
        let e = apply(&dirs(false), &mem(Some(256 << 20), Some(512 << 20)), &f).unwrap_err();
        // The fake refuses every time, so the retry fails too; what matters
        // is that memsw was raised in between.
        assert_eq!(f.names(), pairs(&[("memory.memsw.limit_in_bytes", "536870912")]));
        assert_eq!(
            e.to_string(),
            "linux.resources.memory.limit: write \"268435456\" to /cg/v1/memory/ctr/memory.limit_in_bytes: Invalid argument (os error 22)"
        );
        assert_eq!(e.kind(), ErrorKind::InvalidSpec);
    }

    #[test]
    fn memory_v1_swap_checks() {
        let f = Recorder::with(&["memory.limit_in_bytes"]);
        let e = apply(&dirs(false), &mem(Some(100), Some(50)), &f).unwrap_err();
        assert_eq!(
            e.to_string(),
            "linux.resources.memory.swap: invalid value 50: memory+swap must be at least the memory limit"
        );
        let e = apply(&dirs(false), &mem(Some(100), Some(200)), &f).unwrap_err();
        assert!(e.to_string().contains("swap accounting is off"), "{e}");
        assert_eq!(e.kind(), ErrorKind::Unsupported);
        // Unlimited swap without swap accounting is no request at all.
        apply(&dirs(false), &mem(Some(100), Some(-1)), &f).unwrap();
    }

    #[test]
    fn memory_v2_converts_swap() {
        let f = Recorder::with(V2_MEMORY);
        apply(&dirs(true), &mem(Some(32 << 20), Some(96 << 20)), &f).unwrap();
        assert_eq!(f.names(), pairs(&[("memory.max", "33554432"), ("memory.swap.max", "67108864")]));
        let f = Recorder::with(V2_MEMORY);
        apply(&dirs(true), &mem(Some(-1), None), &f).unwrap();
        assert_eq!(f.names(), pairs(&[("memory.max", "max"), ("memory.swap.max", "max")]));
        let f = Recorder::with(V2_MEMORY);
        apply(&dirs(true), &mem(Some(100), Some(0)), &f).unwrap();
        assert_eq!(f.names(), pairs(&[("memory.max", "100")]));
        let e = apply(&dirs(true), &mem(None, Some(100)), &f).unwrap_err();
        assert_eq!(e.to_string(), "linux.resources.memory.swap: invalid value 100: a swap limit needs a memory limit");
        let m = LinuxMemoryBuilder::default().disable_oom_killer(true).build().unwrap();
        let e = apply(&dirs(true), &LinuxResourcesBuilder::default().memory(m).build().unwrap(), &f).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unsupported);
    }

    #[test]
    fn cpu_v1_and_cpuset() {
        let f = Recorder::with(&[
            "cpu.shares",
            "cpu.cfs_period_us",
            "cpu.cfs_quota_us",
            "cpu.rt_period_us",
            "cpu.rt_runtime_us",
            "cpuset.cpus",
            "cpuset.mems",
        ]);
        let c = LinuxCpuBuilder::default()
            .shares(512u64)
            .quota(50_000i64)
            .period(100_000u64)
            .realtime_period(1_000_000u64)
            .realtime_runtime(950_000i64)
            .cpus("0")
            .mems("0")
            .build()
            .unwrap();
        apply(&dirs(false), &LinuxResourcesBuilder::default().cpu(c).build().unwrap(), &f).unwrap();
        assert_eq!(
            f.names(),
            pairs(&[
                ("cpuset.cpus", "0"),
                ("cpuset.mems", "0"),
                ("cpu.shares", "512"),
                ("cpu.cfs_period_us", "100000"),
                ("cpu.cfs_quota_us", "50000"),
                ("cpu.rt_period_us", "1000000"),
                ("cpu.rt_runtime_us", "950000"),
            ])
        );
        assert!(f.writes.borrow()[0].0.starts_with("/cg/v1/cpuset/ctr"));
    }

    #[test]
    fn cpu_v2_weight_and_max() {
        let f = Recorder::with(&["cpu.weight", "cpu.max"]);
        let c = LinuxCpuBuilder::default().shares(1024u64).quota(50_000i64).period(100_000u64).build().unwrap();
        apply(&dirs(true), &LinuxResourcesBuilder::default().cpu(c).build().unwrap(), &f).unwrap();
        assert_eq!(f.names(), pairs(&[("cpu.weight", "100"), ("cpu.max", "50000 100000")]));
        let f = Recorder::with(&["cpu.max"]);
        let c = LinuxCpuBuilder::default().period(20_000u64).build().unwrap();
        apply(&dirs(true), &LinuxResourcesBuilder::default().cpu(c).build().unwrap(), &f).unwrap();
        assert_eq!(f.names(), pairs(&[("cpu.max", "max 20000")]));
        let c = LinuxCpuBuilder::default().realtime_runtime(10i64).build().unwrap();
        let e = apply(&dirs(true), &LinuxResourcesBuilder::default().cpu(c).build().unwrap(), &f).unwrap_err();
        assert_eq!(e.to_string(), "linux.resources.cpu.realtimeRuntime: cgroup v2 has no realtime scheduling groups");
    }

    #[test]
    fn conversions() {
        assert_eq!(
            [cpu_weight(0), cpu_weight(2), cpu_weight(1024), cpu_weight(262_144), cpu_weight(1 << 20)],
            [0, 1, 100, 10_000, 10_000]
        );
        assert_eq!(cpu_weight(512), 59);
        assert_eq!(cpu_weight(2048), 174);
        assert!((3..262_144).step_by(97).all(|s| cpu_weight(s) <= cpu_weight(s + 97)), "monotonic");
        assert_eq!([io_weight(10), io_weight(500), io_weight(1000)], [1, 4950, 10_000]);
        assert_eq!(swap_max(Some(10), Some(30)).unwrap(), Some("20".into()));
        assert_eq!(swap_max(None, Some(-1)).unwrap(), Some("max".into()));
        assert_eq!(swap_max(Some(10), None).unwrap(), None);
    }

    fn throttle(major: i64, minor: i64, rate: u64) -> LinuxThrottleDevice {
        LinuxThrottleDeviceBuilder::default().major(major).minor(minor).rate(rate).build().unwrap()
    }

    fn blkio() -> LinuxResources {
        let b = LinuxBlockIoBuilder::default()
            .weight(500u16)
            .weight_device(vec![LinuxWeightDeviceBuilder::default().major(8).minor(0).weight(300u16).build().unwrap()])
            .throttle_read_bps_device(vec![throttle(8, 0, 1 << 20)])
            .throttle_write_iops_device(vec![throttle(8, 0, 100), throttle(8, 16, 200)])
            .build()
            .unwrap();
        LinuxResourcesBuilder::default().block_io(b).build().unwrap()
    }

    #[test]
    fn blkio_v1_prefers_bfq_when_cfq_is_gone() {
        let throttles = ["blkio.throttle.read_bps_device", "blkio.throttle.write_iops_device"];
        let f = Recorder::with(&[&["blkio.bfq.weight", "blkio.bfq.weight_device"][..], &throttles].concat());
        apply(&dirs(false), &blkio(), &f).unwrap();
        assert_eq!(
            f.names(),
            pairs(&[
                ("blkio.bfq.weight", "500"),
                ("blkio.bfq.weight_device", "8:0 300"),
                ("blkio.throttle.read_bps_device", "8:0 1048576"),
                ("blkio.throttle.write_iops_device", "8:0 100"),
                ("blkio.throttle.write_iops_device", "8:16 200"),
            ])
        );
        let f = Recorder::with(&[&["blkio.weight", "blkio.weight_device"][..], &throttles].concat());
        apply(&dirs(false), &blkio(), &f).unwrap();
        assert_eq!(f.names()[..2], pairs(&[("blkio.weight", "500"), ("blkio.weight_device", "8:0 300")]));
    }

    #[test]
    fn io_v2_weight_conversion_and_io_max() {
        let f = Recorder::with(&["io.weight", "io.max"]);
        apply(&dirs(true), &blkio(), &f).unwrap();
        assert_eq!(
            f.names(),
            pairs(&[
                ("io.weight", "4950"),
                ("io.weight", "8:0 2930"),
                ("io.max", "8:0 rbps=1048576"),
                ("io.max", "8:0 wiops=100"),
                ("io.max", "8:16 wiops=200"),
            ])
        );
        let f = Recorder::with(&["io.bfq.weight", "io.max"]);
        apply(&dirs(true), &blkio(), &f).unwrap();
        assert_eq!(f.names()[..2], pairs(&[("io.bfq.weight", "500"), ("io.bfq.weight", "8:0 300")]));
    }

    #[test]
    fn pids_hugetlb_unified() {
        let f = Recorder::with(&["pids.max", "hugetlb.2MB.max", "memory.high"]);
        let res = LinuxResourcesBuilder::default()
            .pids(LinuxPidsBuilder::default().limit(-1).build().unwrap())
            .hugepage_limits(vec![
                LinuxHugepageLimitBuilder::default().page_size("2MB").limit(4 << 20).build().unwrap(),
            ])
            .unified(
                [("memory.high".to_owned(), "1G".to_owned())].into_iter().collect::<std::collections::HashMap<_, _>>(),
            )
            .build()
            .unwrap();
        apply(&dirs(true), &res, &f).unwrap();
        assert_eq!(f.names(), pairs(&[("pids.max", "max"), ("hugetlb.2MB.max", "4194304"), ("memory.high", "1G")]));
        assert_eq!(f.writes.borrow()[2].0, PathBuf::from("/cg/unified/ctr/memory.high"));
        let f = Recorder::with(&["hugetlb.1GB.limit_in_bytes", "hugetlb.1GB.rsvd.limit_in_bytes"]);
        let res = LinuxResourcesBuilder::default()
            .hugepage_limits(vec![LinuxHugepageLimitBuilder::default().page_size("1GB").limit(0).build().unwrap()])
            .build()
            .unwrap();
        apply(&dirs(false), &res, &f).unwrap();
        assert_eq!(f.names(), pairs(&[("hugetlb.1GB.limit_in_bytes", "0"), ("hugetlb.1GB.rsvd.limit_in_bytes", "0")]));
    }

    #[test]
    fn missing_controller_and_bad_keys() {
        let f = Recorder::default();
        let res = LinuxResourcesBuilder::default()
            .pids(LinuxPidsBuilder::default().limit(10).build().unwrap())
            .build()
            .unwrap();
        let e = apply(&Dirs::default(), &res, &f).unwrap_err();
        assert_eq!(
            e.to_string(),
            "linux.resources.pids.limit: the pids cgroup controller is not available on this host"
        );
        assert_eq!(e.kind(), ErrorKind::Unsupported);
        let res = LinuxResourcesBuilder::default()
            .unified([("../x".to_owned(), "1".to_owned())].into_iter().collect::<std::collections::HashMap<_, _>>())
            .build()
            .unwrap();
        let e = apply(&dirs(true), &res, &f).unwrap_err();
        assert!(e.to_string().starts_with("linux.resources.unified: invalid value ../x"), "{e}");
        let e = apply(&Dirs::default(), &res, &f).unwrap_err();
        assert_eq!(e.to_string(), "linux.resources.unified: the host has no cgroup v2 hierarchy");
        for key in ["cgroup.procs", "cgroup.subtree_control", ""] {
            let res = LinuxResourcesBuilder::default()
                .unified([(key.to_owned(), "1".to_owned())].into_iter().collect::<std::collections::HashMap<_, _>>())
                .build()
                .unwrap();
            assert!(apply(&dirs(true), &res, &f).is_err(), "{key:?} accepted");
        }
        let f = Recorder::with(&["cgroup.max.depth"]);
        let res = LinuxResourcesBuilder::default()
            .unified(
                [("cgroup.max.depth".to_owned(), "2".to_owned())]
                    .into_iter()
                    .collect::<std::collections::HashMap<_, _>>(),
            )
            .build()
            .unwrap();
        apply(&dirs(true), &res, &f).unwrap();
    }

    #[test]
    fn devices_v1_lines_and_v2_dir() {
        let f = Recorder::with(&["devices.allow", "devices.deny"]);
        let rules = devices::normalize(&[
            LinuxDeviceCgroupBuilder::default().allow(false).access("rwm").build().unwrap(),
            LinuxDeviceCgroupBuilder::default()
                .allow(true)
                .typ(LinuxDeviceType::C)
                .major(1)
                .minor(3)
                .access("rwm")
                .build()
                .unwrap(),
        ])
        .unwrap();
        assert!(apply_devices(&dirs(false), &rules, &f).unwrap().is_none());
        assert_eq!(f.names(), pairs(&[("devices.deny", "a"), ("devices.allow", "c 1:3 rwm")]));
        let d = dirs(true);
        assert_eq!(apply_devices(&d, &rules, &f).unwrap(), Some(Path::new("/cg/devices/ctr")));
        assert_eq!(f.names().len(), 2);
    }
}
