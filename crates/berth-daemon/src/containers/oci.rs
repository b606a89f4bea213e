//! A container record turned into an OCI runtime spec, with docker's
//! defaults: its capability set and seccomp profile, masked and read-only
//! paths, the standard mounts, namespaces per the host config's modes, and
//! resources from the host config. Pure: tested without root.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use berth_api::models::{HostConfig, HostConfigCgroupnsModeEnum};
use serde_json::{Value, json};

use super::store::Container;
use super::user::ExecUser;
use crate::error::ApiError;

/// Default PATH docker puts in a container's env when it has none.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Where `--init`'s binary appears in the container (docker's path).
pub const INIT_IN_CONTAINER: &str = "/sbin/docker-init";

/// Whether an ELF file has no program interpreter (is statically linked).
pub fn is_static_elf(path: &Path) -> bool {
    let Ok(data) = std::fs::read(path) else { return false };
    if data.len() < 64 || &data[..4] != b"\x7fELF" || data[4] != 2 {
        return false;
    }
    let u16at = |o: usize| u16::from_le_bytes([data[o], data[o + 1]]) as usize;
    let phoff = u64::from_le_bytes(data[0x20..0x28].try_into().expect("8 bytes")) as usize;
    let (phentsize, phnum) = (u16at(0x36), u16at(0x38));
    (0..phnum).all(|i| {
        let off = phoff + i * phentsize;
        // PT_INTERP = 3
        data.get(off..off + 4).is_some_and(|t| u32::from_le_bytes(t.try_into().expect("4 bytes")) != 3)
    })
}

/// Default /dev/shm size: 64 MiB.
pub const DEFAULT_SHM_SIZE: i64 = 64 * 1024 * 1024;

/// What the spec needs beyond the record.
#[derive(Debug, Clone)]
pub struct SpecInput {
    pub rootfs: PathBuf,
    pub user: ExecUser,
    /// Files generated for the container, bound over the image's.
    pub hostname_file: Option<PathBuf>,
    pub hosts_file: Option<PathBuf>,
    pub resolv_conf: Option<PathBuf>,
    /// `/<cgroup parent>/<id>`.
    pub cgroups_path: String,
    /// Host pids of containers named by `container:<x>` modes.
    pub net_container_pid: Option<i32>,
    /// The sandbox's namespace file, for networked modes.
    pub netns: Option<PathBuf>,
    pub pid_container_pid: Option<i32>,
    pub ipc_container_pid: Option<i32>,
    /// cgroup v2 host: docker's default cgroupns mode is private there.
    pub cgroup_v2: bool,
    /// docker's seccomp profile for the given capabilities (None: unconfined).
    pub seccomp: Option<Value>,
    /// `--init`: the static init binary to run as pid 1.
    pub init: Option<PathBuf>,
}

/// Capabilities docker grants by default.
pub use berth_runtime::capabilities::DOCKER_DEFAULT as DEFAULT_CAPS;

/// Every capability the kernel knows, by name.
pub fn all_caps() -> Vec<String> {
    (0..=berth_runtime::capabilities::last_cap()).filter_map(berth_runtime::capabilities::name).collect()
}

fn normalize_cap(c: &str) -> String {
    let u = c.to_ascii_uppercase();
    if u == "ALL" || u.starts_with("CAP_") { u } else { format!("CAP_{u}") }
}

/// docker's capability set for a host config: defaults (or all when
/// privileged), then `--cap-add`, then `--cap-drop` (`ALL` allowed in both).
pub fn capabilities(hc: &HostConfig) -> Result<Vec<String>, ApiError> {
    if hc.privileged.unwrap_or(false) {
        return Ok(all_caps());
    }
    let adds: Vec<String> = hc.cap_add.iter().flatten().map(|c| normalize_cap(c)).collect();
    let drops: Vec<String> = hc.cap_drop.iter().flatten().map(|c| normalize_cap(c)).collect();
    for c in adds.iter().chain(&drops) {
        if c != "ALL" && berth_runtime::capabilities::from_name(c).is_none() {
            return Err(ApiError::invalid(format!("invalid capability: {c:?}")));
        }
    }
    let mut caps: Vec<String> = if adds.iter().any(|c| c == "ALL") {
        all_caps()
    } else {
        let mut v: Vec<String> = DEFAULT_CAPS.iter().map(|s| s.to_string()).collect();
        for a in &adds {
            if !v.contains(a) {
                v.push(a.clone());
            }
        }
        v
    };
    if drops.iter().any(|c| c == "ALL") {
        caps.retain(|c| adds.contains(c));
    } else {
        caps.retain(|c| !drops.contains(c));
    }
    Ok(caps)
}

/// `--security-opt` values that matter here.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SecurityOpts {
    pub no_new_privileges: bool,
    /// None: docker's default; Some(None): unconfined; Some(Some(json)): a profile.
    pub seccomp: Option<Option<String>>,
    pub unmask_system_paths: bool,
}

pub fn security_opts(hc: &HostConfig) -> Result<SecurityOpts, ApiError> {
    let mut o = SecurityOpts::default();
    for opt in hc.security_opt.iter().flatten() {
        let (k, v) = opt.split_once(['=', ':']).unwrap_or((opt.as_str(), ""));
        match k {
            "no-new-privileges" => o.no_new_privileges = v.is_empty() || v == "true",
            "seccomp" if v == "unconfined" => o.seccomp = Some(None),
            "seccomp" => o.seccomp = Some(Some(v.to_owned())),
            "systempaths" if v == "unconfined" => o.unmask_system_paths = true,
            "apparmor" | "label" => {}
            _ => return Err(ApiError::invalid(format!("invalid --security-opt: {opt:?}"))),
        }
    }
    Ok(o)
}

fn rlimit_name(n: &str) -> Option<&'static str> {
    Some(match n {
        "core" => "RLIMIT_CORE",
        "cpu" => "RLIMIT_CPU",
        "data" => "RLIMIT_DATA",
        "fsize" => "RLIMIT_FSIZE",
        "locks" => "RLIMIT_LOCKS",
        "memlock" => "RLIMIT_MEMLOCK",
        "msgqueue" => "RLIMIT_MSGQUEUE",
        "nice" => "RLIMIT_NICE",
        "nofile" => "RLIMIT_NOFILE",
        "nproc" => "RLIMIT_NPROC",
        "rss" => "RLIMIT_RSS",
        "rtprio" => "RLIMIT_RTPRIO",
        "rttime" => "RLIMIT_RTTIME",
        "sigpending" => "RLIMIT_SIGPENDING",
        "stack" => "RLIMIT_STACK",
        "as" => "RLIMIT_AS",
        _ => return None,
    })
}

fn device_numbers(path: &str) -> Result<(char, i64, i64), ApiError> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let meta = std::fs::metadata(path)
        .map_err(|e| ApiError::invalid(format!("error gathering device information while adding custom device {path:?}: {e}")))?;
    let kind = if meta.file_type().is_char_device() {
        'c'
    } else if meta.file_type().is_block_device() {
        'b'
    } else {
        return Err(ApiError::invalid(format!("{path:?} is not a device node")));
    };
    let rdev = meta.rdev();
    Ok((kind, nix::sys::stat::major(rdev) as i64, nix::sys::stat::minor(rdev) as i64))
}

fn throttles(list: &Option<Vec<berth_api::models::ThrottleDevice>>) -> Result<Vec<Value>, ApiError> {
    list.iter()
        .flatten()
        .map(|t| {
            let path = t.path.clone().unwrap_or_default();
            let (_, major, minor) = device_numbers(&path)?;
            Ok(json!({"major": major, "minor": minor, "rate": t.rate.unwrap_or(0)}))
        })
        .collect()
}

fn resources(hc: &HostConfig, device_rules: Vec<Value>) -> Result<Value, ApiError> {
    let mut r = json!({"devices": device_rules});
    let mut memory = serde_json::Map::new();
    if let Some(m) = hc.memory.filter(|m| *m > 0) {
        memory.insert("limit".into(), json!(m));
        // docker: no --memory-swap means as much swap as memory.
        match hc.memory_swap {
            Some(-1) => {
                memory.insert("swap".into(), json!(-1));
            }
            Some(s) if s > 0 => {
                memory.insert("swap".into(), json!(s));
            }
            _ => {
                memory.insert("swap".into(), json!(m * 2));
            }
        }
    }
    if let Some(v) = hc.memory_reservation.filter(|v| *v > 0) {
        memory.insert("reservation".into(), json!(v));
    }
    if let Some(v) = hc.memory_swappiness.filter(|v| *v >= 0) {
        memory.insert("swappiness".into(), json!(v));
    }
    if hc.oom_kill_disable == Some(true) {
        memory.insert("disableOOMKiller".into(), json!(true));
    }
    if !memory.is_empty() {
        r["memory"] = Value::Object(memory);
    }
    let mut cpu = serde_json::Map::new();
    if let Some(v) = hc.cpu_shares.filter(|v| *v > 0) {
        cpu.insert("shares".into(), json!(v));
    }
    if let Some(n) = hc.nano_cpus.filter(|v| *v > 0) {
        if hc.cpu_quota.unwrap_or(0) > 0 || hc.cpu_period.unwrap_or(0) > 0 {
            return Err(ApiError::invalid(
                "Conflicting options: Nano CPUs and CPU Period cannot both be set",
            ));
        }
        let period: i64 = 100_000;
        cpu.insert("period".into(), json!(period));
        cpu.insert("quota".into(), json!(n * period / 1_000_000_000));
    }
    if let Some(v) = hc.cpu_period.filter(|v| *v > 0) {
        cpu.insert("period".into(), json!(v));
    }
    if let Some(v) = hc.cpu_quota.filter(|v| *v > 0) {
        cpu.insert("quota".into(), json!(v));
    }
    if let Some(v) = hc.cpuset_cpus.clone().filter(|v| !v.is_empty()) {
        cpu.insert("cpus".into(), json!(v));
    }
    if let Some(v) = hc.cpuset_mems.clone().filter(|v| !v.is_empty()) {
        cpu.insert("mems".into(), json!(v));
    }
    if let Some(v) = hc.cpu_realtime_period.filter(|v| *v > 0) {
        cpu.insert("realtimePeriod".into(), json!(v));
    }
    if let Some(v) = hc.cpu_realtime_runtime.filter(|v| *v > 0) {
        cpu.insert("realtimeRuntime".into(), json!(v));
    }
    if !cpu.is_empty() {
        r["cpu"] = Value::Object(cpu);
    }
    if let Some(v) = hc.pids_limit.filter(|v| *v != 0) {
        r["pids"] = json!({"limit": v});
    }
    let mut blkio = serde_json::Map::new();
    if let Some(w) = hc.blkio_weight.filter(|w| *w > 0) {
        blkio.insert("weight".into(), json!(w));
    }
    let wd: Vec<Value> = hc
        .blkio_weight_device
        .iter()
        .flatten()
        .map(|d| {
            let (_, major, minor) = device_numbers(d.path.as_deref().unwrap_or(""))?;
            Ok(json!({"major": major, "minor": minor, "weight": d.weight.unwrap_or(0)}))
        })
        .collect::<Result<_, ApiError>>()?;
    if !wd.is_empty() {
        blkio.insert("weightDevice".into(), json!(wd));
    }
    for (key, list) in [
        ("throttleReadBpsDevice", &hc.blkio_device_read_bps),
        ("throttleWriteBpsDevice", &hc.blkio_device_write_bps),
        ("throttleReadIOPSDevice", &hc.blkio_device_read_iops),
        ("throttleWriteIOPSDevice", &hc.blkio_device_write_iops),
    ] {
        let t = throttles(list)?;
        if !t.is_empty() {
            blkio.insert(key.into(), json!(t));
        }
    }
    if !blkio.is_empty() {
        r["blockIO"] = Value::Object(blkio);
    }
    Ok(r)
}

fn mount(dest: &str, kind: &str, source: &str, options: &[&str]) -> Value {
    json!({"destination": dest, "type": kind, "source": source, "options": options})
}

/// `--tmpfs /run:size=64m,mode=1777` → a tmpfs mount with docker's default
/// options (noexec, nosuid, nodev) unless the value overrides them.
pub(crate) fn tmpfs_mount(dest: &str, opts: &str) -> Value {
    let mut options: Vec<String> = vec!["noexec".into(), "nosuid".into(), "nodev".into()];
    for o in opts.split(',').filter(|o| !o.is_empty()) {
        match o {
            "exec" => options.retain(|x| x != "noexec"),
            "suid" => options.retain(|x| x != "nosuid"),
            "dev" => options.retain(|x| x != "nodev"),
            _ => options.push(o.to_owned()),
        }
    }
    json!({"destination": dest, "type": "tmpfs", "source": "tmpfs", "options": options})
}

/// A namespace entry: new (`None`), joined (`Some(path)`), or absent when
/// the host's is shared (handled by the caller not pushing it).
fn ns(kind: &str, path: Option<String>) -> Value {
    match path {
        Some(p) => json!({"type": kind, "path": p}),
        None => json!({"type": kind}),
    }
}

fn container_ns(pid: Option<i32>, kind: &str, what: &str) -> Result<Option<String>, ApiError> {
    let pid = pid.ok_or_else(|| ApiError::conflict(format!("cannot join the {what} of a container that is not running")))?;
    Ok(Some(format!("/proc/{pid}/ns/{kind}")))
}

/// Build the spec (as JSON) for a container.
pub fn build(c: &Container, input: &SpecInput) -> Result<Value, ApiError> {
    let hc = &c.host_config;
    let cfg = &c.config;
    let privileged = hc.privileged.unwrap_or(false);
    let sec = security_opts(hc)?;
    let caps = capabilities(hc)?;
    let user = &input.user;
    // Non-root users start without effective capabilities, as with docker.
    let (effective, permitted): (Vec<String>, Vec<String>) =
        if user.uid == 0 { (caps.clone(), caps.clone()) } else { (Vec::new(), Vec::new()) };
    let tty = cfg.tty.unwrap_or(false);

    let mut env: Vec<String> = Vec::new();
    let user_env = cfg.env.clone().unwrap_or_default();
    if !user_env.iter().any(|e| e.starts_with("PATH=")) {
        env.push(format!("PATH={DEFAULT_PATH}"));
    }
    let hostname = cfg.hostname.clone().filter(|h| !h.is_empty()).unwrap_or_else(|| c.id[..12].to_owned());
    env.push(format!("HOSTNAME={hostname}"));
    if tty {
        env.push("TERM=xterm".into());
    }
    env.extend(user_env);
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        env.push(format!("HOME={}", if user.home.is_empty() { "/" } else { &user.home }));
    }

    let mut args = Vec::new();
    if input.init.is_some() {
        args.extend([INIT_IN_CONTAINER.to_owned(), "--".to_owned()]);
    }
    args.push(c.path.clone());
    args.extend(c.args.iter().cloned());

    let mut rlimits = Vec::new();
    for u in hc.ulimits.iter().flatten() {
        let name = u.name.clone().unwrap_or_default();
        let typ = rlimit_name(&name).ok_or_else(|| ApiError::invalid(format!("invalid ulimit type: {name}")))?;
        rlimits.push(json!({"type": typ, "soft": u.soft.unwrap_or(0), "hard": u.hard.unwrap_or(0)}));
    }

    let mut process = json!({
        "terminal": tty,
        "user": {"uid": user.uid, "gid": user.gid, "additionalGids": user.additional_gids},
        "args": args,
        "env": env,
        "cwd": cfg.working_dir.clone().filter(|w| !w.is_empty()).unwrap_or_else(|| "/".into()),
        "capabilities": {"bounding": caps, "effective": effective, "permitted": permitted},
        "noNewPrivileges": sec.no_new_privileges,
    });
    if !rlimits.is_empty() {
        process["rlimits"] = json!(rlimits);
    }
    if let Some(adj) = hc.oom_score_adj.filter(|v| *v != 0) {
        process["oomScoreAdj"] = json!(adj);
    }
    if let Some(size) = hc.console_size.as_ref().filter(|s| s.len() == 2 && s[0] > 0) {
        process["consoleSize"] = json!({"height": size[0], "width": size[1]});
    }

    // Mounts: docker's standard set, then the generated files, then tmpfs.
    let shm_size = hc.shm_size.filter(|s| *s > 0).unwrap_or(DEFAULT_SHM_SIZE);
    let ipc_mode = hc.ipc_mode.clone().unwrap_or_default();
    let sys_ro = if privileged { "rw" } else { "ro" };
    let mut mounts = vec![
        mount("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"]),
        mount("/dev", "tmpfs", "tmpfs", &["nosuid", "strictatime", "mode=755", "size=65536k"]),
        mount("/dev/pts", "devpts", "devpts", &["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]),
        mount("/sys", "sysfs", "sysfs", &["nosuid", "noexec", "nodev", sys_ro]),
        mount("/sys/fs/cgroup", "cgroup", "cgroup", &["nosuid", "noexec", "nodev", "relatime", sys_ro]),
        mount("/dev/mqueue", "mqueue", "mqueue", &["nosuid", "noexec", "nodev"]),
    ];
    if ipc_mode != "none" && ipc_mode != "host" && !ipc_mode.starts_with("container:") {
        let size = format!("size={shm_size}");
        mounts.push(mount("/dev/shm", "tmpfs", "shm", &["nosuid", "noexec", "nodev", "mode=1777", &size]));
    } else if ipc_mode == "host" {
        mounts.push(mount("/dev/shm", "bind", "/dev/shm", &["rbind", "rprivate"]));
    }
    let tmpfs: HashMap<String, String> = hc.tmpfs.clone().unwrap_or_default();
    for (dest, file) in [
        ("/etc/resolv.conf", &input.resolv_conf),
        ("/etc/hostname", &input.hostname_file),
        ("/etc/hosts", &input.hosts_file),
    ] {
        if let Some(f) = file {
            mounts.push(mount(dest, "bind", &f.to_string_lossy(), &["rbind", "rprivate"]));
        }
    }
    if let Some(init) = &input.init {
        mounts.push(mount(INIT_IN_CONTAINER, "bind", &init.to_string_lossy(), &["bind", "ro"]));
    }
    let mut tmpfs_sorted: Vec<_> = tmpfs.iter().collect();
    tmpfs_sorted.sort();
    for (dest, opts) in tmpfs_sorted {
        if !dest.starts_with('/') {
            return Err(ApiError::invalid(format!("invalid mount path {dest:?}: must be absolute")));
        }
        mounts.push(tmpfs_mount(dest, opts));
    }

    // Namespaces.
    let mut namespaces = vec![ns("mount", None)];
    match hc.network_mode.as_deref().unwrap_or("") {
        "host" => {}
        m if m.starts_with("container:") => {
            namespaces.push(ns("network", container_ns(input.net_container_pid, "net", "network namespace")?));
        }
        _ => namespaces.push(ns("network", input.netns.as_ref().map(|p| p.to_string_lossy().into_owned()))),
    }
    match hc.pid_mode.as_deref().unwrap_or("") {
        "host" => {}
        m if m.starts_with("container:") => {
            namespaces.push(ns("pid", container_ns(input.pid_container_pid, "pid", "pid namespace")?))
        }
        _ => namespaces.push(ns("pid", None)),
    }
    match ipc_mode.as_str() {
        "host" => {}
        m if m.starts_with("container:") => {
            namespaces.push(ns("ipc", container_ns(input.ipc_container_pid, "ipc", "ipc namespace")?))
        }
        _ => namespaces.push(ns("ipc", None)),
    }
    let uts_host = hc.uts_mode.as_deref() == Some("host");
    if !uts_host {
        namespaces.push(ns("uts", None));
    }
    let cgroupns_private = match hc.cgroupns_mode {
        Some(HostConfigCgroupnsModeEnum::PRIVATE) => true,
        Some(HostConfigCgroupnsModeEnum::HOST) => false,
        _ => input.cgroup_v2,
    };
    if cgroupns_private {
        namespaces.push(ns("cgroup", None));
    }

    // Devices and their cgroup rules.
    let mut device_rules = if privileged {
        vec![json!({"allow": true, "access": "rwm"})]
    } else {
        vec![json!({"allow": false, "access": "rwm"})]
    };
    let mut devices = Vec::new();
    for d in hc.devices.iter().flatten() {
        let host = d.path_on_host.clone().unwrap_or_default();
        let inside = d.path_in_container.clone().filter(|p| !p.is_empty()).unwrap_or_else(|| host.clone());
        let perms = d.cgroup_permissions.clone().filter(|p| !p.is_empty()).unwrap_or_else(|| "rwm".into());
        let (kind, major, minor) = device_numbers(&host)?;
        devices.push(json!({"path": inside, "type": kind.to_string(), "major": major, "minor": minor, "fileMode": 0o666, "uid": 0, "gid": 0}));
        device_rules.push(json!({"allow": true, "type": kind.to_string(), "major": major, "minor": minor, "access": perms}));
    }
    for rule in hc.device_cgroup_rules.iter().flatten() {
        device_rules.push(parse_device_cgroup_rule(rule)?);
    }

    let mut linux = json!({
        "namespaces": namespaces,
        "resources": resources(hc, device_rules)?,
        "cgroupsPath": input.cgroups_path,
        "devices": devices,
    });
    if !privileged && !sec.unmask_system_paths {
        linux["maskedPaths"] = json!(berth_runtime::defaults::MASKED_PATHS);
        linux["readonlyPaths"] = json!(berth_runtime::defaults::READONLY_PATHS);
    }
    if let Some(m) = &hc.masked_paths {
        linux["maskedPaths"] = json!(m);
    }
    if let Some(r) = &hc.readonly_paths {
        linux["readonlyPaths"] = json!(r);
    }
    if let Some(s) = hc.sysctls.as_ref().filter(|s| !s.is_empty()) {
        linux["sysctl"] = json!(s);
    }
    if !privileged && let Some(profile) = &input.seccomp {
        linux["seccomp"] = profile.clone();
    }

    let mut spec = json!({
        "ociVersion": "1.2.0",
        "process": process,
        "root": {"path": input.rootfs, "readonly": hc.readonly_rootfs.unwrap_or(false)},
        "mounts": mounts,
        "linux": linux,
        "annotations": {"org.opencontainers.image.stopSignal": cfg.stop_signal.clone().unwrap_or_default()},
    });
    if !uts_host {
        spec["hostname"] = json!(hostname);
        if let Some(d) = cfg.domainname.clone().filter(|d| !d.is_empty()) {
            spec["domainname"] = json!(d);
        }
    }
    Ok(spec)
}

/// `--device-cgroup-rule 'c 42:* rmw'`.
pub fn parse_device_cgroup_rule(rule: &str) -> Result<Value, ApiError> {
    let bad = || ApiError::invalid(format!("invalid device cgroup format '{rule}'"));
    let parts: Vec<&str> = rule.split_whitespace().collect();
    let [kind, nums, access] = parts.as_slice() else { return Err(bad()) };
    if !matches!(*kind, "a" | "b" | "c") || access.is_empty() || !access.chars().all(|c| "rwm".contains(c)) {
        return Err(bad());
    }
    let (major, minor) = nums.split_once(':').ok_or_else(bad)?;
    let num = |s: &str| -> Result<Value, ApiError> {
        if s == "*" { Ok(Value::Null) } else { s.parse::<i64>().map(|n| json!(n)).map_err(|_| bad()) }
    };
    let mut v = json!({"allow": true, "type": kind, "access": access});
    if let n @ Value::Number(_) = num(major)? {
        v["major"] = n;
    }
    if let n @ Value::Number(_) = num(minor)? {
        v["minor"] = n;
    }
    Ok(v)
}

/// The seccomp section docker would use for these host settings.
pub fn seccomp_for(hc: &HostConfig, caps: &[String]) -> Result<Option<Value>, ApiError> {
    if hc.privileged.unwrap_or(false) {
        return Ok(None);
    }
    let arch = berth_seccomp::Arch::native();
    match security_opts(hc)?.seccomp {
        Some(None) => Ok(None),
        Some(Some(profile)) => {
            let parsed = berth_seccomp::parse_docker_profile(profile.as_bytes(), caps, arch)
                .map_err(|e| ApiError::invalid(format!("decoding seccomp profile failed: {e}")))?;
            Ok(parsed.map(|p| serde_json::to_value(p).expect("seccomp serializes")))
        }
        None => Ok(Some(serde_json::to_value(berth_seccomp::docker_default(caps, arch)).expect("seccomp serializes"))),
    }
}

/// Where a container's generated files live.
pub fn etc_files(container_dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    (container_dir.join("hostname"), container_dir.join("hosts"), container_dir.join("resolv.conf"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::containers::state::State;
    use berth_api::models::{ContainerConfig, DeviceMapping, ResourcesUlimits};

    fn container(hc: HostConfig) -> Container {
        Container {
            id: "0123456789abcdef".repeat(4),
            name: "t".into(),
            created: String::new(),
            image_id: "sha256:00".into(),
            config: ContainerConfig { env: Some(vec!["A=1".into()]), ..Default::default() },
            host_config: hc,
            state: State::created(),
            path: "sh".into(),
            args: vec!["-c".into(), "true".into()],
            restart_count: 0,
            has_been_started: false,
            manually_stopped: false,
            log_path: String::new(),
            endpoints: Default::default(),
            platform: "linux".into(),
            run: 0,
            mounts: Vec::new(),
        }
    }

    fn input() -> SpecInput {
        SpecInput {
            rootfs: "/r".into(),
            user: ExecUser { uid: 0, gid: 0, additional_gids: vec![], home: "/root".into() },
            hostname_file: Some("/c/hostname".into()),
            hosts_file: None,
            resolv_conf: None,
            cgroups_path: "/berth/x".into(),
            net_container_pid: None,
            netns: None,
            pid_container_pid: None,
            ipc_container_pid: Some(77),
            cgroup_v2: false,
            seccomp: None,
            init: None,
        }
    }

    #[test]
    fn defaults_match_docker() {
        let spec = build(&container(HostConfig::default()), &input()).unwrap();
        assert_eq!(spec["hostname"], "0123456789ab");
        assert_eq!(spec["process"]["args"], json!(["sh", "-c", "true"]));
        assert_eq!(spec["process"]["env"][0], format!("PATH={DEFAULT_PATH}"));
        assert!(spec["process"]["env"].as_array().unwrap().contains(&json!("HOSTNAME=0123456789ab")));
        assert_eq!(spec["process"]["capabilities"]["bounding"].as_array().unwrap().len(), 14);
        let kinds: Vec<&str> = spec["linux"]["namespaces"].as_array().unwrap().iter().map(|n| n["type"].as_str().unwrap()).collect();
        assert_eq!(kinds, ["mount", "network", "pid", "ipc", "uts"]);
        assert_eq!(spec["linux"]["maskedPaths"].as_array().unwrap().len(), berth_runtime::defaults::MASKED_PATHS.len());
        assert!(spec["mounts"].as_array().unwrap().iter().any(|m| m["destination"] == "/dev/shm" && m["options"].as_array().unwrap().contains(&json!("size=67108864"))));
        assert!(spec["mounts"].as_array().unwrap().iter().any(|m| m["destination"] == "/etc/hostname"));
        // The spec is one our runtime accepts.
        berth_runtime::spec::parse(spec.to_string().as_bytes(), Path::new("config.json")).unwrap();
    }

    #[test]
    fn resources_and_caps_from_host_config() {
        let hc = HostConfig {
            memory: Some(64 << 20),
            nano_cpus: Some(1_500_000_000),
            pids_limit: Some(50),
            cap_add: Some(vec!["sys_admin".into()]),
            cap_drop: Some(vec!["CAP_CHOWN".into(), "NET_RAW".into()]),
            ulimits: Some(vec![ResourcesUlimits { name: Some("nofile".into()), soft: Some(100), hard: Some(200) }]),
            devices: Some(vec![DeviceMapping { path_on_host: Some("/dev/null".into()), path_in_container: Some("/dev/mynull".into()), cgroup_permissions: Some("rw".into()) }]),
            ..Default::default()
        };
        let spec = build(&container(hc), &input()).unwrap();
        let r = &spec["linux"]["resources"];
        assert_eq!(r["memory"], json!({"limit": 64 << 20, "swap": 128 << 20}));
        assert_eq!(r["cpu"], json!({"period": 100000, "quota": 150000}));
        assert_eq!(r["pids"], json!({"limit": 50}));
        let caps: Vec<&str> = spec["process"]["capabilities"]["bounding"].as_array().unwrap().iter().map(|c| c.as_str().unwrap()).collect();
        assert!(caps.contains(&"CAP_SYS_ADMIN") && !caps.contains(&"CAP_CHOWN") && !caps.contains(&"CAP_NET_RAW"));
        assert_eq!(spec["process"]["rlimits"], json!([{"type": "RLIMIT_NOFILE", "soft": 100, "hard": 200}]));
        assert_eq!(spec["linux"]["devices"][0]["path"], "/dev/mynull");
        assert_eq!(r["devices"][1], json!({"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rw"}));
    }

    #[test]
    fn modes_share_or_join_namespaces() {
        let hc = HostConfig {
            network_mode: Some("host".into()),
            pid_mode: Some("host".into()),
            ipc_mode: Some("container:abc".into()),
            uts_mode: Some("host".into()),
            ..Default::default()
        };
        let spec = build(&container(hc), &input()).unwrap();
        let ns = spec["linux"]["namespaces"].as_array().unwrap();
        assert_eq!(ns, &vec![json!({"type": "mount"}), json!({"type": "ipc", "path": "/proc/77/ns/ipc"})]);
        assert!(spec.get("hostname").is_none());
        assert!(!spec["mounts"].as_array().unwrap().iter().any(|m| m["destination"] == "/dev/shm"));
    }

    #[test]
    fn privileged_and_non_root_users() {
        let spec = build(&container(HostConfig { privileged: Some(true), ..Default::default() }), &input()).unwrap();
        assert!(spec["linux"].get("maskedPaths").is_none());
        assert_eq!(spec["linux"]["resources"]["devices"][0], json!({"allow": true, "access": "rwm"}));
        let mut i = input();
        i.user = ExecUser { uid: 1000, gid: 1000, additional_gids: vec![], home: "/home/u".into() };
        let spec = build(&container(HostConfig::default()), &i).unwrap();
        assert_eq!(spec["process"]["capabilities"]["effective"], json!([]));
        assert!(spec["process"]["env"].as_array().unwrap().contains(&json!("HOME=/home/u")));
    }

    #[test]
    fn init_wraps_the_command() {
        let mut i = input();
        i.init = Some("/usr/bin/berth-init".into());
        let spec = build(&container(HostConfig::default()), &i).unwrap();
        assert_eq!(spec["process"]["args"], json!(["/sbin/docker-init", "--", "sh", "-c", "true"]));
        assert!(spec["mounts"].as_array().unwrap().iter().any(|m| m["destination"] == "/sbin/docker-init" && m["source"] == "/usr/bin/berth-init"));
        assert!(!is_static_elf(Path::new("/bin/sh")));
        assert!(is_static_elf(Path::new("/bin/busybox")));
    }

    #[test]
    fn bad_options_are_refused_with_dockers_words() {
        let hc = HostConfig { cap_add: Some(vec!["CAP_FLY".into()]), ..Default::default() };
        assert_eq!(build(&container(hc), &input()).unwrap_err().message, "invalid capability: \"CAP_FLY\"");
        let hc = HostConfig { security_opt: Some(vec!["bogus=1".into()]), ..Default::default() };
        assert!(build(&container(hc), &input()).is_err());
        assert!(parse_device_cgroup_rule("c 1:3 rwm").is_ok());
        assert_eq!(parse_device_cgroup_rule("c 42:* rw").unwrap(), json!({"allow": true, "type": "c", "access": "rw", "major": 42}));
        assert!(parse_device_cgroup_rule("x 1:3 rwm").is_err());
    }
}
