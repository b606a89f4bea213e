//! The cgroup readout behind `berth stats`, shaped like docker's stats JSON
//! (moby `api/types/container/stats.go`) so the daemon copies rather than
//! converts: the field names are docker's and CPU times are nanoseconds.
//!
//! | stat | v1 | v2 |
//! |---|---|---|
//! | cpu total, user, system | cpuacct.usage, cpuacct.stat (ticks) | cpu.stat usage_usec, user_usec, system_usec |
//! | cpu per-cpu | cpuacct.usage_percpu | (none) |
//! | throttling | cpu.stat nr_periods, nr_throttled, throttled_time | cpu.stat nr_periods, nr_throttled, throttled_usec |
//! | memory usage, max, limit | memory.usage_in_bytes, .max_usage_in_bytes, .limit_in_bytes | memory.current, memory.peak, memory.max |
//! | memory stats map | memory.stat | memory.stat |
//! | oom kills | memory.oom_control oom_kill | memory.events oom_kill |
//! | pids | pids.current, pids.max | pids.current, pids.max |
//! | io | blkio.throttle.io_service_bytes_recursive, io_serviced_recursive | io.stat |
//! | hugetlb | hugetlb.SIZE.usage_in_bytes, max_usage_in_bytes, failcnt | hugetlb.SIZE.current, events max |
//!
//! A controller this cgroup does not have leaves its section `None`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::ErrorKind;
use crate::hierarchy::Controller;
use crate::resources::Dirs;

#[derive(Debug, thiserror::Error)]
pub enum StatsError {
    #[error("read {}: {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    #[error("parse {}: unexpected {text:?}", path.display())]
    Parse { path: PathBuf, text: String },
}

impl StatsError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            StatsError::Read { source, .. } => crate::io_kind(source),
            StatsError::Parse { .. } => ErrorKind::System,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_stats: Option<CpuStats>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_stats: Option<MemoryStats>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pids_stats: Option<PidsStats>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blkio_stats: Option<BlkioStats>,
    /// By page size (`2MB`, `1GB`).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub hugetlb_stats: BTreeMap<String, HugetlbStats>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CpuStats {
    pub cpu_usage: CpuUsage,
    pub throttling_data: ThrottlingData,
}

/// CPU time in nanoseconds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CpuUsage {
    pub total_usage: u64,
    /// v1 only.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu_usage: Vec<u64>,
    pub usage_in_kernelmode: u64,
    pub usage_in_usermode: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThrottlingData {
    pub periods: u64,
    pub throttled_periods: u64,
    /// Nanoseconds.
    pub throttled_time: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemoryStats {
    pub usage: u64,
    /// v1 max_usage_in_bytes; v2 memory.peak (Linux 5.19+).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_usage: Option<u64>,
    /// v1 only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failcnt: Option<u64>,
    /// `None` when unlimited.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u64>,
    /// Processes killed by the OOM killer in this cgroup.
    pub oom_kill: u64,
    /// memory.stat as is (v1 and v2 keys differ: `total_inactive_file` vs
    /// `inactive_file`, which is what docker subtracts for "used").
    pub stats: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PidsStats {
    pub current: u64,
    /// `None` when unlimited.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlkioStats {
    pub io_service_bytes_recursive: Vec<BlkioEntry>,
    pub io_serviced_recursive: Vec<BlkioEntry>,
}

/// One device's counter. `op` is the v1 kernel's word (`Read`, `Write`,
/// `Sync`, `Async`, `Discard`, `Total`) on v1, and `read`/`write` on v2, as
/// docker reports them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlkioEntry {
    pub major: u64,
    pub minor: u64,
    pub op: String,
    pub value: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HugetlbStats {
    pub usage: u64,
    /// v1 only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_usage: Option<u64>,
    pub failcnt: u64,
}

/// v1 writes "unlimited" as PAGE_COUNTER_MAX pages (0x7FFFFFFFFFFFF000 with
/// 4 KiB pages, more with larger ones): anything this large is no limit.
const V1_UNLIMITED: u64 = 0x7FFF_FFFF_FFFF_0000;

fn read(path: &Path) -> Result<String, StatsError> {
    std::fs::read_to_string(path).map_err(|source| StatsError::Read { path: path.to_owned(), source })
}

/// `None` when the file does not exist (a newer or optional counter).
fn read_opt(path: &Path) -> Result<Option<String>, StatsError> {
    match std::fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(StatsError::Read { path: path.to_owned(), source }),
    }
}

fn parse_err(path: &Path, text: &str) -> StatsError {
    StatsError::Parse { path: path.to_owned(), text: text.chars().take(200).collect() }
}

/// A single number, or `max` (→ `None`).
pub fn parse_value(path: &Path, text: &str) -> Result<Option<u64>, StatsError> {
    match text.trim() {
        "max" => Ok(None),
        t => t.parse().map(Some).map_err(|_| parse_err(path, text)),
    }
}

fn read_value(dir: &Path, file: &str) -> Result<u64, StatsError> {
    let path = dir.join(file);
    parse_value(&path, &read(&path)?)?.ok_or_else(|| parse_err(&path, "max"))
}

fn read_value_opt(dir: &Path, file: &str) -> Result<Option<u64>, StatsError> {
    let path = dir.join(file);
    match read_opt(&path)? {
        Some(t) => parse_value(&path, &t),
        None => Ok(None),
    }
}

/// `key value` lines (memory.stat, cpu.stat, memory.events,
/// memory.oom_control). Lines that are not a key and a number are skipped.
pub fn parse_flat_keyed(text: &str) -> BTreeMap<String, u64> {
    text.lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(' ')?;
            Some((k.to_owned(), v.trim().parse().ok()?))
        })
        .collect()
}

fn read_keyed(dir: &Path, file: &str) -> Result<BTreeMap<String, u64>, StatsError> {
    Ok(parse_flat_keyed(&read(&dir.join(file))?))
}

fn major_minor(path: &Path, s: &str) -> Result<(u64, u64), StatsError> {
    s.split_once(':').and_then(|(a, b)| Some((a.parse().ok()?, b.parse().ok()?))).ok_or_else(|| parse_err(path, s))
}

/// v1 `blkio.throttle.io_service_bytes(_recursive)` and `io_serviced`:
/// `MAJ:MIN Op value` lines and a final `Total value`, which is dropped.
pub fn parse_blkio_v1(path: &Path, text: &str) -> Result<Vec<BlkioEntry>, StatsError> {
    let mut out = Vec::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        match f[..] {
            [] | ["Total", _] => {}
            [dev, op, value] => {
                let (major, minor) = major_minor(path, dev)?;
                let value = value.parse().map_err(|_| parse_err(path, line))?;
                out.push(BlkioEntry { major, minor, op: op.to_owned(), value });
            }
            _ => return Err(parse_err(path, line)),
        }
    }
    Ok(out)
}

/// v2 `io.stat`: `MAJ:MIN rbytes=N wbytes=N rios=N wios=N dbytes=N dios=N`
/// lines, into (service bytes, serviced) with `read`/`write` entries.
pub fn parse_io_stat(path: &Path, text: &str) -> Result<BlkioStats, StatsError> {
    let mut s = BlkioStats::default();
    for line in text.lines() {
        let mut f = line.split_whitespace();
        let Some(dev) = f.next() else { continue };
        let (major, minor) = major_minor(path, dev)?;
        for kv in f {
            let Some((k, v)) = kv.split_once('=') else { return Err(parse_err(path, line)) };
            let (list, op) = match k {
                "rbytes" => (&mut s.io_service_bytes_recursive, "read"),
                "wbytes" => (&mut s.io_service_bytes_recursive, "write"),
                "rios" => (&mut s.io_serviced_recursive, "read"),
                "wios" => (&mut s.io_serviced_recursive, "write"),
                _ => continue,
            };
            let value = v.parse().map_err(|_| parse_err(path, line))?;
            list.push(BlkioEntry { major, minor, op: op.to_owned(), value });
        }
    }
    Ok(s)
}

fn user_hz() -> u64 {
    // SAFETY: sysconf has no memory-safety preconditions.
    match unsafe { libc::sysconf(libc::_SC_CLK_TCK) } {
        n if n > 0 => n as u64,
        _ => 100,
    }
}

fn cpu(dirs: &Dirs) -> Result<Option<CpuStats>, StatsError> {
    let Some((acct, v2)) = dirs.get(Controller::Cpuacct) else { return Ok(None) };
    let mut s = CpuStats::default();
    if v2 {
        // cpu.stat's usage lines are core v2, there without the cpu
        // controller; the throttling lines come with it.
        let m = read_keyed(acct, "cpu.stat")?;
        let us = |k: &str| m.get(k).copied().unwrap_or(0) * 1000;
        s.cpu_usage = CpuUsage {
            total_usage: us("usage_usec"),
            percpu_usage: Vec::new(),
            usage_in_kernelmode: us("system_usec"),
            usage_in_usermode: us("user_usec"),
        };
        s.throttling_data = ThrottlingData {
            periods: m.get("nr_periods").copied().unwrap_or(0),
            throttled_periods: m.get("nr_throttled").copied().unwrap_or(0),
            throttled_time: us("throttled_usec"),
        };
        return Ok(Some(s));
    }
    s.cpu_usage.total_usage = read_value(acct, "cpuacct.usage")?;
    let path = acct.join("cpuacct.usage_percpu");
    let text = read(&path)?;
    s.cpu_usage.percpu_usage =
        text.split_whitespace().map(|v| v.parse().map_err(|_| parse_err(&path, &text))).collect::<Result<_, _>>()?;
    let ticks = read_keyed(acct, "cpuacct.stat")?;
    let ns = |k: &str| ticks.get(k).copied().unwrap_or(0) * 1_000_000_000 / user_hz();
    s.cpu_usage.usage_in_usermode = ns("user");
    s.cpu_usage.usage_in_kernelmode = ns("system");
    if let Some((cpu, false)) = dirs.get(Controller::Cpu) {
        let m = read_keyed(cpu, "cpu.stat")?;
        s.throttling_data = ThrottlingData {
            periods: m.get("nr_periods").copied().unwrap_or(0),
            throttled_periods: m.get("nr_throttled").copied().unwrap_or(0),
            throttled_time: m.get("throttled_time").copied().unwrap_or(0),
        };
    }
    Ok(Some(s))
}

fn memory(dirs: &Dirs) -> Result<Option<MemoryStats>, StatsError> {
    let Some((dir, v2)) = dirs.get(Controller::Memory) else { return Ok(None) };
    let mut s = MemoryStats { stats: read_keyed(dir, "memory.stat")?, ..MemoryStats::default() };
    if v2 {
        s.usage = read_value(dir, "memory.current")?;
        s.max_usage = read_value_opt(dir, "memory.peak")?;
        s.limit = parse_value(&dir.join("memory.max"), &read(&dir.join("memory.max"))?)?;
        s.oom_kill = read_keyed(dir, "memory.events")?.get("oom_kill").copied().unwrap_or(0);
    } else {
        s.usage = read_value(dir, "memory.usage_in_bytes")?;
        s.max_usage = Some(read_value(dir, "memory.max_usage_in_bytes")?);
        s.failcnt = Some(read_value(dir, "memory.failcnt")?);
        s.limit = Some(read_value(dir, "memory.limit_in_bytes")?).filter(|l| *l < V1_UNLIMITED);
        s.oom_kill = read_keyed(dir, "memory.oom_control")?.get("oom_kill").copied().unwrap_or(0);
    }
    Ok(Some(s))
}

fn pids(dirs: &Dirs) -> Result<Option<PidsStats>, StatsError> {
    let Some((dir, _)) = dirs.get(Controller::Pids) else { return Ok(None) };
    let path = dir.join("pids.max");
    Ok(Some(PidsStats { current: read_value(dir, "pids.current")?, limit: parse_value(&path, &read(&path)?)? }))
}

fn blkio(dirs: &Dirs) -> Result<Option<BlkioStats>, StatsError> {
    let Some((dir, v2)) = dirs.get(Controller::Blkio) else { return Ok(None) };
    if v2 {
        let path = dir.join("io.stat");
        return parse_io_stat(&path, &read(&path)?).map(Some);
    }
    // The _recursive files count the container's sub-cgroups too; kernels
    // before 4.x lack them.
    let list = |file: &str| -> Result<Vec<BlkioEntry>, StatsError> {
        let path = dir.join(format!("{file}_recursive"));
        let (path, text) = match read_opt(&path)? {
            Some(t) => (path, t),
            None => (dir.join(file), read(&dir.join(file))?),
        };
        parse_blkio_v1(&path, &text)
    };
    Ok(Some(BlkioStats {
        io_service_bytes_recursive: list("blkio.throttle.io_service_bytes")?,
        io_serviced_recursive: list("blkio.throttle.io_serviced")?,
    }))
}

fn hugetlb(dirs: &Dirs) -> Result<BTreeMap<String, HugetlbStats>, StatsError> {
    let mut out = BTreeMap::new();
    let Some((dir, v2)) = dirs.get(Controller::Hugetlb) else { return Ok(out) };
    let usage_suffix = if v2 { ".current" } else { ".usage_in_bytes" };
    let entries = std::fs::read_dir(dir).map_err(|source| StatsError::Read { path: dir.to_owned(), source })?;
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(size) = name.strip_prefix("hugetlb.").and_then(|n| n.strip_suffix(usage_suffix)) else { continue };
        if size.contains('.') {
            continue; // hugetlb.2MB.rsvd.current
        }
        let mut s = HugetlbStats { usage: read_value(dir, &name)?, ..HugetlbStats::default() };
        if v2 {
            s.failcnt = read_keyed(dir, &format!("hugetlb.{size}.events"))?.get("max").copied().unwrap_or(0);
        } else {
            s.max_usage = Some(read_value(dir, &format!("hugetlb.{size}.max_usage_in_bytes"))?);
            s.failcnt = read_value(dir, &format!("hugetlb.{size}.failcnt"))?;
        }
        out.insert(size.to_owned(), s);
    }
    Ok(out)
}

pub(crate) fn read_all(dirs: &Dirs) -> Result<Stats, StatsError> {
    Ok(Stats {
        cpu_stats: cpu(dirs)?,
        memory_stats: memory(dirs)?,
        pids_stats: pids(dirs)?,
        blkio_stats: blkio(dirs)?,
        hugetlb_stats: hugetlb(dirs)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, files: &[(&str, &str)]) {
        std::fs::create_dir_all(dir).unwrap();
        for (f, v) in files {
            std::fs::write(dir.join(f), v).unwrap();
        }
    }

    /// Fixtures in the formats of the kernel's cgroup-v1 and cgroup-v2 docs.
    fn v1_fixture(root: &Path) -> Dirs {
        let d = |c: &str| root.join(c).join("ctr");
        write(
            &d("cpuacct"),
            &[
                ("cpuacct.usage", "2500000000\n"),
                ("cpuacct.usage_percpu", "1500000000 1000000000 \n"),
                ("cpuacct.stat", "user 150\nsystem 50\n"),
            ],
        );
        write(
            &d("cpu"),
            &[("cpu.stat", "nr_periods 10\nnr_throttled 3\nthrottled_time 4000000\nnr_bursts 0\nburst_time 0\n")],
        );
        write(
            &d("memory"),
            &[
                ("memory.usage_in_bytes", "10485760\n"),
                ("memory.max_usage_in_bytes", "20971520\n"),
                ("memory.failcnt", "7\n"),
                ("memory.limit_in_bytes", "9223372036854771712\n"),
                ("memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n"),
                ("memory.stat", "cache 4096\nrss 8192\nmapped_file 0\ntotal_inactive_file 4096\ntotal_rss 8192\n"),
            ],
        );
        write(&d("pids"), &[("pids.current", "3\n"), ("pids.max", "max\n")]);
        write(
            &d("blkio"),
            &[
                (
                    "blkio.throttle.io_service_bytes_recursive",
                    "8:0 Read 4096\n8:0 Write 8192\n8:0 Sync 0\n8:0 Async 12288\n8:0 Discard 0\n8:0 Total 12288\nTotal 12288\n",
                ),
                ("blkio.throttle.io_serviced", "8:0 Read 1\n8:0 Write 2\nTotal 3\n"),
            ],
        );
        write(
            &d("hugetlb"),
            &[
                ("hugetlb.2MB.usage_in_bytes", "2097152\n"),
                ("hugetlb.2MB.max_usage_in_bytes", "4194304\n"),
                ("hugetlb.2MB.failcnt", "1\n"),
                ("hugetlb.2MB.rsvd.usage_in_bytes", "0\n"),
            ],
        );
        let mut dirs = Dirs::default();
        for c in [
            Controller::Cpu,
            Controller::Cpuacct,
            Controller::Memory,
            Controller::Pids,
            Controller::Blkio,
            Controller::Hugetlb,
        ] {
            dirs.controllers.push((c, d(c.v1_name()), false));
        }
        dirs
    }

    #[test]
    fn v1_readout() {
        let tmp = tempfile::tempdir().unwrap();
        let s = read_all(&v1_fixture(tmp.path())).unwrap();
        let cpu = s.cpu_stats.unwrap();
        assert_eq!(cpu.cpu_usage.total_usage, 2_500_000_000);
        assert_eq!(cpu.cpu_usage.percpu_usage, [1_500_000_000, 1_000_000_000]);
        assert_eq!(cpu.cpu_usage.usage_in_usermode, 150 * 1_000_000_000 / user_hz());
        assert_eq!(
            cpu.throttling_data,
            ThrottlingData { periods: 10, throttled_periods: 3, throttled_time: 4_000_000 }
        );
        let m = s.memory_stats.unwrap();
        assert_eq!(
            (m.usage, m.max_usage, m.failcnt, m.limit, m.oom_kill),
            (10 << 20, Some(20 << 20), Some(7), None, 2)
        );
        assert_eq!(m.stats["total_inactive_file"], 4096);
        assert_eq!(s.pids_stats.unwrap(), PidsStats { current: 3, limit: None });
        let b = s.blkio_stats.unwrap();
        assert_eq!(b.io_service_bytes_recursive.len(), 6, "Total line dropped");
        assert_eq!(b.io_service_bytes_recursive[1], BlkioEntry { major: 8, minor: 0, op: "Write".into(), value: 8192 });
        assert_eq!(b.io_serviced_recursive.len(), 2, "falls back to the non-recursive file");
        assert_eq!(s.hugetlb_stats.len(), 1);
        assert_eq!(s.hugetlb_stats["2MB"], HugetlbStats { usage: 2 << 20, max_usage: Some(4 << 20), failcnt: 1 });
    }

    #[test]
    fn v2_readout() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path().join("ctr");
        write(
            &d,
            &[
                (
                    "cpu.stat",
                    "usage_usec 2000\nuser_usec 1500\nsystem_usec 500\nnr_periods 4\nnr_throttled 1\nthrottled_usec 30\n",
                ),
                ("memory.current", "1048576\n"),
                ("memory.max", "33554432\n"),
                ("memory.events", "low 0\nhigh 0\nmax 12\noom 1\noom_kill 1\noom_group_kill 0\n"),
                ("memory.stat", "anon 4096\nfile 8192\ninactive_file 8192\n"),
                ("pids.current", "1\n"),
                ("pids.max", "64\n"),
                ("io.stat", "8:16 rbytes=1459200 wbytes=314773504 rios=192 wios=353 dbytes=0 dios=0\n"),
                ("hugetlb.2MB.current", "0\n"),
                ("hugetlb.2MB.events", "max 0\n"),
                ("hugetlb.2MB.rsvd.current", "0\n"),
                ("hugetlb.1GB.current", "1073741824\n"),
                ("hugetlb.1GB.events", "max 2\n"),
            ],
        );
        let mut dirs = Dirs::default();
        for c in [Controller::Cpuacct, Controller::Memory, Controller::Pids, Controller::Blkio, Controller::Hugetlb] {
            dirs.controllers.push((c, d.clone(), true));
        }
        let s = read_all(&dirs).unwrap();
        let cpu = s.cpu_stats.unwrap();
        assert_eq!(
            cpu.cpu_usage,
            CpuUsage {
                total_usage: 2_000_000,
                percpu_usage: vec![],
                usage_in_kernelmode: 500_000,
                usage_in_usermode: 1_500_000
            }
        );
        assert_eq!(cpu.throttling_data.throttled_time, 30_000);
        let m = s.memory_stats.unwrap();
        assert_eq!((m.usage, m.max_usage, m.failcnt, m.limit, m.oom_kill), (1 << 20, None, None, Some(32 << 20), 1));
        assert_eq!(s.pids_stats.unwrap().limit, Some(64));
        let b = s.blkio_stats.unwrap();
        assert_eq!(
            b.io_service_bytes_recursive[1],
            BlkioEntry { major: 8, minor: 16, op: "write".into(), value: 314_773_504 }
        );
        assert_eq!(b.io_serviced_recursive[0].value, 192);
        assert_eq!(s.hugetlb_stats.keys().collect::<Vec<_>>(), ["1GB", "2MB"]);
        assert_eq!(s.hugetlb_stats["1GB"], HugetlbStats { usage: 1 << 30, max_usage: None, failcnt: 2 });
        let json =
            serde_json::to_value(Stats { pids_stats: Some(PidsStats { current: 1, limit: None }), ..Stats::default() })
                .unwrap();
        assert_eq!(json, serde_json::json!({"pids_stats": {"current": 1}}));
    }

    #[test]
    fn parse_errors_name_the_file() {
        let p = Path::new("/cg/ctr/io.stat");
        let e = parse_io_stat(p, "8:x rbytes=1\n").unwrap_err();
        assert_eq!(e.to_string(), "parse /cg/ctr/io.stat: unexpected \"8:x\"");
        assert!(parse_blkio_v1(p, "8:0 Read\n").is_err());
        assert!(parse_value(p, "12a").is_err());
        assert_eq!(parse_value(p, "max\n").unwrap(), None);
        let tmp = tempfile::tempdir().unwrap();
        let dirs = Dirs { controllers: vec![(Controller::Pids, tmp.path().join("gone"), false)], unified: None };
        let e = read_all(&dirs).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotFound);
    }
}
