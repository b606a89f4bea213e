//! Flag values with docker's rules and messages: environment and label
//! lists and files, ulimits, devices, throttles, sysctls, ports, restart
//! policies, filters, platforms. Each parser returns docker's error text.

pub mod container;

use std::collections::{BTreeMap, HashMap};

use berth_api::models::{ResourcesBlkioWeightDevice, ResourcesUlimits, ThrottleDevice};

use crate::units::{self, UnitsError};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OptsError {
    #[error(transparent)]
    Units(#[from] UnitsError),
    #[error("strconv.ParseBool: parsing \"{0}\": invalid syntax")]
    Bool(String),
    #[error("strconv.ParseInt: parsing \"{0}\": invalid syntax")]
    Int(String),
    #[error("strconv.ParseUint: parsing \"{0}\": invalid syntax")]
    Uint(String),
    #[error("invalid environment variable: {0}")]
    Env(String),
    #[error("invalid label '{0}': empty name")]
    LabelEmpty(String),
    #[error("label '{0}' contains whitespaces")]
    LabelSpace(String),
    #[error("invalid ulimit argument: {0}")]
    Ulimit(String),
    #[error("invalid ulimit type: {0}")]
    UlimitType(String),
    #[error("too many limit value arguments - {0}, can only have up to two, `soft[:hard]`")]
    UlimitValues(String),
    #[error("ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}")]
    UlimitOrder { soft: i64, hard: i64 },
    #[error("bad format: {0}")]
    DeviceFormat(String),
    #[error("bad format for device path: {0}")]
    DevicePath(String),
    #[error("invalid rate for device: {0}. The correct format is <device-path>:<number>[<unit>]. Number must be a positive integer. Unit is optional and can be kb, mb, or gb")]
    BpsRate(String),
    #[error("invalid rate for device: {0}. The correct format is <device-path>:<number>. Number must be a positive integer")]
    IopsRate(String),
    #[error("invalid weight for device: {0}")]
    Weight(String),
    #[error("sysctl '{0}' is not allowed")]
    Sysctl(String),
    #[error("bad format of filter (expected name=value)")]
    Filter,
    #[error("invalid restart policy format: no policy provided before colon")]
    RestartNoName,
    #[error("invalid restart policy format: maximum retry count must be an integer")]
    RestartCount,
    #[error("invalid restart policy: unknown policy '{0}'; use one of 'no', 'always', 'on-failure', or 'unless-stopped'")]
    RestartName(String),
    #[error("invalid restart policy: maximum retry count can only be used with 'on-failure'")]
    RestartCountWithout,
    #[error("{path}: {reason}")]
    File { path: String, reason: String },
    #[error("invalid env file ({path}): {reason}")]
    KvFile { path: String, reason: String },
    #[error("no port specified: {0}<empty>")]
    NoPort(String),
    #[error("invalid containerPort: {0}")]
    ContainerPort(String),
    #[error("invalid hostPort: {0}")]
    HostPort(String),
    #[error("invalid IP address: {0}")]
    Ip(String),
    #[error("invalid proto: {0}")]
    Proto(String),
    #[error("invalid ranges specified for container and host Ports: {0} and {1}")]
    PortRanges(String, String),
    #[error("invalid range format for --expose: {0}")]
    Expose(String),
    #[error("invalid publish opts format (should be name=value but got '{0}')")]
    PublishOpts(String),
    #[error("bad format for path: {0}")]
    PathFormat(String),
    #[error("bad mode specified: {0}")]
    PathMode(String),
    #[error("{0} is not an absolute path")]
    NotAbsolute(String),
    #[error("invalid device specification: {0}")]
    DeviceSpec(String),
    #[error("error parsing specified platform: \"{component}\" is an invalid component of \"{platform}\": platform specifier component must match \"^[A-Za-z0-9_.-]+$\": invalid argument")]
    Platform { component: String, platform: String },
    #[error("valid streams are STDIN, STDOUT and STDERR")]
    AttachStream,
    #[error("invalid pull option: '{0}': must be one of \"always\", \"missing\" or \"never\"")]
    Pull(String),
}

/// Go's `strconv.ParseBool`, for `--flag=false`.
pub fn go_bool(s: &str) -> Result<bool, OptsError> {
    match s {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        _ => Err(OptsError::Bool(s.to_owned())),
    }
}

pub fn go_i64(s: &str) -> Result<i64, OptsError> {
    s.parse().map_err(|_| OptsError::Int(s.to_owned()))
}

pub fn go_u16(s: &str) -> Result<u16, OptsError> {
    s.parse().map_err(|_| OptsError::Uint(s.to_owned()))
}

pub fn mem_bytes(s: &str) -> Result<i64, OptsError> {
    Ok(units::ram_in_bytes(s)?)
}

/// `--memory-swap`: `-1` means unlimited.
pub fn mem_swap_bytes(s: &str) -> Result<i64, OptsError> {
    if s == "-1" { Ok(-1) } else { mem_bytes(s) }
}

pub fn nano_cpus(s: &str) -> Result<i64, OptsError> {
    Ok(units::parse_cpus(s)?)
}

/// A Go duration in nanoseconds (`--health-interval 30s`).
pub fn duration(s: &str) -> Result<i64, OptsError> {
    Ok(units::parse_go_duration(s)?)
}

/// `-e KEY=value`, or `-e KEY` taking KEY's value from this environment
/// when it is set.
pub fn env_var(s: &str) -> Result<String, OptsError> {
    let (k, has_value) = match s.split_once('=') {
        Some((k, _)) => (k, true),
        None => (s, false),
    };
    if k.is_empty() {
        return Err(OptsError::Env(s.to_owned()));
    }
    if has_value {
        return Ok(s.to_owned());
    }
    Ok(match std::env::var(k) {
        Ok(v) => format!("{k}={v}"),
        Err(_) => s.to_owned(),
    })
}

pub fn label(s: &str) -> Result<String, OptsError> {
    let key = s.split_once('=').map_or(s, |(k, _)| k).trim_start_matches([' ', '\t']);
    if key.is_empty() {
        return Err(OptsError::LabelEmpty(s.to_owned()));
    }
    if key.contains([' ', '\t']) {
        return Err(OptsError::LabelSpace(key.to_owned()));
    }
    Ok(s.to_owned())
}

const ULIMITS: &[&str] =
    &["core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue", "nice", "nofile", "nproc", "rss", "rtprio", "rttime", "sigpending", "stack"];

/// `--ulimit nofile=1024:2048`.
pub fn ulimit(s: &str) -> Result<ResourcesUlimits, OptsError> {
    let (name, vals) = s.split_once('=').ok_or_else(|| OptsError::Ulimit(s.to_owned()))?;
    if !ULIMITS.contains(&name) {
        return Err(OptsError::UlimitType(name.to_owned()));
    }
    let parts: Vec<&str> = vals.split(':').collect();
    let (soft, hard) = match parts.as_slice() {
        [soft] => {
            let v = go_i64(soft)?;
            (v, v)
        }
        [soft, hard] => {
            let h = go_i64(hard)?;
            (go_i64(soft)?, h)
        }
        _ => return Err(OptsError::UlimitValues(vals.to_owned())),
    };
    if hard != -1 && soft > hard {
        return Err(OptsError::UlimitOrder { soft, hard });
    }
    Ok(ResourcesUlimits { name: Some(name.to_owned()), soft: Some(soft), hard: Some(hard) })
}

fn device_and_value(s: &str) -> Result<(&str, &str), OptsError> {
    let (k, v) = s.split_once(':').ok_or_else(|| OptsError::DeviceFormat(s.to_owned()))?;
    if k.is_empty() {
        return Err(OptsError::DeviceFormat(s.to_owned()));
    }
    if !k.starts_with("/dev/") {
        return Err(OptsError::DevicePath(s.to_owned()));
    }
    Ok((k, v))
}

/// `--device-read-bps /dev/sda:1mb`.
pub fn throttle_bps(s: &str) -> Result<ThrottleDevice, OptsError> {
    let (k, v) = device_and_value(s)?;
    let rate = units::ram_in_bytes(v).map_err(|_| OptsError::BpsRate(s.to_owned()))?;
    Ok(ThrottleDevice { path: Some(k.to_owned()), rate: Some(rate) })
}

/// `--device-read-iops /dev/sda:1000`.
pub fn throttle_iops(s: &str) -> Result<ThrottleDevice, OptsError> {
    let (k, v) = device_and_value(s)?;
    let rate: u64 = v.parse().map_err(|_| OptsError::IopsRate(s.to_owned()))?;
    Ok(ThrottleDevice { path: Some(k.to_owned()), rate: Some(rate as i64) })
}

/// `--blkio-weight-device /dev/sda:200`.
pub fn weight_device(s: &str) -> Result<ResourcesBlkioWeightDevice, OptsError> {
    let (k, v) = device_and_value(s)?;
    let w: u16 = v.parse().map_err(|_| OptsError::Weight(s.to_owned()))?;
    if w > 0 && !(10..=1000).contains(&w) {
        return Err(OptsError::Weight(s.to_owned()));
    }
    Ok(ResourcesBlkioWeightDevice { path: Some(k.to_owned()), weight: Some(w.into()) })
}

/// `--sysctl`: namespaced sysctls only, as docker allows.
pub fn sysctl(s: &str) -> Result<String, OptsError> {
    const KERNEL: &[&str] =
        &["kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem", "kernel.shmall", "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced"];
    let Some((k, _)) = s.split_once('=') else { return Err(OptsError::Sysctl(s.to_owned())) };
    if k.is_empty() {
        return Err(OptsError::Sysctl(s.to_owned()));
    }
    if KERNEL.contains(&k) || k.starts_with("net.") || k.starts_with("fs.mqueue.") {
        Ok(s.to_owned())
    } else {
        Err(OptsError::Sysctl(s.to_owned()))
    }
}

/// `--filter name=value`, collected as docker sends them:
/// `{"name": {"value": true}}`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filters(pub BTreeMap<String, BTreeMap<String, bool>>);

pub fn filter(s: &str) -> Result<(String, String), OptsError> {
    let (k, v) = s.split_once('=').ok_or(OptsError::Filter)?;
    Ok((k.trim().to_lowercase(), v.trim().to_owned()))
}

impl Filters {
    pub fn from_pairs(pairs: &[(String, String)]) -> Filters {
        let mut f = Filters::default();
        for (k, v) in pairs {
            f.add(k, v);
        }
        f
    }

    pub fn add(&mut self, k: &str, v: &str) {
        self.0.entry(k.to_owned()).or_default().insert(v.to_owned(), true);
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(&self.0).unwrap_or_default()
    }

    /// The `HashMap<String, Vec<String>>` form bollard's options take.
    pub fn to_lists(&self) -> HashMap<String, Vec<String>> {
        self.0.iter().map(|(k, v)| (k.clone(), v.keys().cloned().collect())).collect()
    }
}

/// A parsed `--restart` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restart {
    pub name: String,
    pub max_retry: i64,
}

impl Restart {
    pub fn is_none(&self) -> bool {
        self.name.is_empty() || self.name == "no"
    }
}

/// `--restart no|always|unless-stopped|on-failure[:N]`.
pub fn restart_policy(s: &str) -> Result<Restart, OptsError> {
    if s.is_empty() {
        return Ok(Restart { name: String::new(), max_retry: 0 });
    }
    let (name, count) = match s.split_once(':') {
        Some(("", _)) => return Err(OptsError::RestartNoName),
        Some((n, c)) => (n, c),
        None => (s, ""),
    };
    let max_retry = if count.is_empty() { 0 } else { count.parse::<i64>().map_err(|_| OptsError::RestartCount)? };
    match name {
        "no" | "always" | "unless-stopped" if max_retry != 0 => Err(OptsError::RestartCountWithout),
        "no" | "always" | "unless-stopped" | "on-failure" => Ok(Restart { name: name.to_owned(), max_retry }),
        other => Err(OptsError::RestartName(other.to_owned())),
    }
}

/// Read `KEY=value` lines (`--env-file`, `--label-file`). With `lookup`, a
/// bare `KEY` takes its value from this environment (and is dropped when
/// unset); without, a bare key is dropped.
pub fn read_kv_file(path: &str, lookup: bool) -> Result<Vec<String>, OptsError> {
    let data = std::fs::read(path).map_err(|e| OptsError::File { path: format!("open {path}"), reason: io_reason(&e) })?;
    parse_kv(&data, lookup).map_err(|reason| OptsError::KvFile { path: path.to_owned(), reason })
}

/// Go's wording for an io error ("no such file or directory").
pub fn io_reason(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(code) => nix::errno::Errno::from_raw(code).desc().to_lowercase(),
        None => e.to_string(),
    }
}

fn parse_kv(data: &[u8], lookup: bool) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for (i, raw) in data.split(|b| *b == b'\n').enumerate() {
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        let raw = if i == 0 { raw.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(raw) } else { raw };
        let line = std::str::from_utf8(raw).map_err(|_| format!("invalid utf8 bytes at line {}: {:?}", i + 1, raw))?;
        let line = line.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, has_value) = match line.split_once('=') {
            Some((k, _)) => (k, true),
            None => (line, false),
        };
        if key.is_empty() {
            return Err(format!("no variable name on line '{line}'"));
        }
        if key.contains([' ', '\t']) {
            return Err(format!("variable '{key}' contains whitespaces"));
        }
        if has_value {
            out.push(line.to_owned());
        } else if lookup && let Ok(v) = std::env::var(key) {
            out.push(format!("{key}={v}"));
        }
    }
    Ok(out)
}

/// One published port: container port key (`80/tcp`) and its binding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortMapping {
    pub port: String,
    pub host_ip: String,
    pub host_port: String,
}

fn port_range(s: &str) -> Option<(u64, u64)> {
    if s.is_empty() {
        return None;
    }
    let parse = |p: &str| p.parse::<u64>().ok().filter(|v| *v <= 65535);
    match s.split_once('-') {
        None => parse(s).map(|v| (v, v)),
        Some((a, b)) => {
            let (a, b) = (parse(a)?, parse(b)?);
            (b >= a).then_some((a, b))
        }
    }
}

/// `-p [ip:][hostPort:]containerPort[/proto]`, ranges allowed, and the
/// long form `published=8080,target=80,protocol=udp`.
pub fn publish(raw: &str) -> Result<Vec<PortMapping>, OptsError> {
    let raw_owned;
    let raw = if raw.contains('=') {
        let mut params: HashMap<&str, &str> = HashMap::from([("protocol", "tcp")]);
        for p in raw.split(',') {
            match p.split_once('=') {
                Some((k, v)) if !k.is_empty() => {
                    params.insert(k, v);
                }
                _ => return Err(OptsError::PublishOpts(p.to_owned())),
            }
        }
        let g = |k| params.get(k).copied().unwrap_or("");
        raw_owned = format!("{}:{}/{}", g("published"), g("target"), g("protocol"));
        raw_owned.as_str()
    } else {
        raw
    };
    let parts: Vec<&str> = raw.split(':').collect();
    let n = parts.len();
    let (mut ip, host_port, container) = match n {
        1 => (String::new(), "", parts[0]),
        2 => (String::new(), parts[0], parts[1]),
        3 => (parts[0].to_owned(), parts[1], parts[2]),
        _ => (parts[..n - 2].join(":"), parts[n - 2], parts[n - 1]),
    };
    let (container, proto) = match container.split_once('/') {
        Some((c, p)) => (c, p),
        None => (container, "tcp"),
    };
    if ip.starts_with('[') {
        ip = ip.trim_start_matches('[').trim_end_matches(']').to_owned();
    }
    if !ip.is_empty() && ip.parse::<std::net::IpAddr>().is_err() {
        return Err(OptsError::Ip(ip));
    }
    if container.is_empty() {
        return Err(OptsError::NoPort(raw.to_owned()));
    }
    let (start, end) = port_range(container).ok_or_else(|| OptsError::ContainerPort(container.to_owned()))?;
    let (hstart, hend) = if host_port.is_empty() {
        (0, 0)
    } else {
        port_range(host_port).ok_or_else(|| OptsError::HostPort(host_port.to_owned()))?
    };
    if !host_port.is_empty() && (end - start) != (hend - hstart) && end != start {
        return Err(OptsError::PortRanges(container.to_owned(), host_port.to_owned()));
    }
    let proto = proto.to_lowercase();
    if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        return Err(OptsError::Proto(proto));
    }
    let mut out = Vec::new();
    for i in 0..=(end - start) {
        let mut hp = if host_port.is_empty() { String::new() } else { (hstart + i).to_string() };
        if start == end && hstart != hend {
            hp = format!("{hp}-{hend}");
        }
        out.push(PortMapping { port: format!("{}/{proto}", start + i), host_ip: ip.clone(), host_port: hp });
    }
    Ok(out)
}

/// `--expose 7000` or `--expose 7000-7010/udp`: the port keys.
pub fn expose(s: &str) -> Result<Vec<String>, OptsError> {
    let (range, proto) = s.split_once('/').unwrap_or((s, "tcp"));
    let (a, b) = port_range(range).ok_or_else(|| OptsError::Expose(format!("invalid start port '{range}': invalid syntax")))?;
    Ok((a..=b).map(|p| format!("{p}/{}", proto.to_lowercase())).collect())
}

fn valid_device_mode(m: &str) -> bool {
    if m.is_empty() {
        return false;
    }
    let mut seen = [false; 3];
    for c in m.chars() {
        let i = match c {
            'r' => 0,
            'w' => 1,
            'm' => 2,
            _ => return false,
        };
        if seen[i] {
            return false;
        }
        seen[i] = true;
    }
    true
}

/// `--device /dev/x[:/dev/y][:rwm]`.
pub fn device(s: &str) -> Result<berth_api::models::DeviceMapping, OptsError> {
    if s.matches(':').count() > 2 || s.starts_with(':') || s.is_empty() {
        return Err(OptsError::PathFormat(s.to_owned()));
    }
    let parts: Vec<&str> = s.splitn(3, ':').collect();
    let (src, dst, perms) = match parts.as_slice() {
        [src] => (*src, *src, "rwm"),
        [src, m] if valid_device_mode(m) => (*src, *src, *m),
        [src, dst] => (*src, *dst, "rwm"),
        [src, dst, m] => {
            if !valid_device_mode(m) {
                return Err(OptsError::PathMode((*m).to_owned()));
            }
            (*src, *dst, *m)
        }
        _ => return Err(OptsError::DeviceSpec(s.to_owned())),
    };
    if !dst.starts_with('/') {
        return Err(OptsError::NotAbsolute(dst.to_owned()));
    }
    Ok(berth_api::models::DeviceMapping {
        path_on_host: Some(src.to_owned()),
        path_in_container: Some(clean_path(dst)),
        cgroup_permissions: Some(perms.to_owned()),
    })
}

/// Go's `path.Clean` for absolute paths.
pub fn clean_path(p: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    let joined = parts.join("/");
    if p.starts_with('/') { format!("/{joined}") } else if joined.is_empty() { ".".into() } else { joined }
}

/// `--platform os[/arch[/variant]]`: checked as containerd's parser does.
pub fn platform(s: &str) -> Result<String, OptsError> {
    for c in s.split('/') {
        if c.is_empty() || !c.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-')) {
            return Err(OptsError::Platform { component: c.to_owned(), platform: s.to_owned() });
        }
    }
    Ok(s.to_owned())
}

/// `--pull always|missing|never`.
pub fn pull_policy(s: &str) -> Result<String, OptsError> {
    match s {
        "always" | "missing" | "never" | "" => Ok(s.to_owned()),
        other => Err(OptsError::Pull(other.to_owned())),
    }
}

/// `-a stdin|stdout|stderr` (any case).
pub fn attach_stream(s: &str) -> Result<String, OptsError> {
    let l = s.to_lowercase();
    if matches!(l.as_str(), "stdin" | "stdout" | "stderr") { Ok(l) } else { Err(OptsError::AttachStream) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_and_labels() {
        assert_eq!(env_var("A=1").unwrap(), "A=1");
        assert_eq!(env_var("=x").unwrap_err().to_string(), "invalid environment variable: =x");
        assert_eq!(env_var("BERTH_SURELY_UNSET_VAR").unwrap(), "BERTH_SURELY_UNSET_VAR");
        assert_eq!(label("=x").unwrap_err().to_string(), "invalid label '=x': empty name");
        assert_eq!(label("a b=x").unwrap_err().to_string(), "label 'a b' contains whitespaces");
        assert_eq!(label("a").unwrap(), "a");
    }

    #[test]
    fn ulimits() {
        let u = ulimit("nofile=1024:2048").unwrap();
        assert_eq!((u.soft, u.hard), (Some(1024), Some(2048)));
        let u = ulimit("nproc=512").unwrap();
        assert_eq!((u.soft, u.hard), (Some(512), Some(512)));
        assert_eq!(ulimit("nofile=x").unwrap_err().to_string(), "strconv.ParseInt: parsing \"x\": invalid syntax");
        assert_eq!(ulimit("bogus=1").unwrap_err().to_string(), "invalid ulimit type: bogus");
        assert_eq!(ulimit("nofile").unwrap_err().to_string(), "invalid ulimit argument: nofile");
        assert_eq!(ulimit("nofile=3:2").unwrap_err().to_string(), "ulimit soft limit must be less than or equal to hard limit: 3 > 2");
        assert!(ulimit("nofile=1:2:3").is_err());
    }

    #[test]
    fn throttles_and_weights() {
        let t = throttle_bps("/dev/sda:1mb").unwrap();
        assert_eq!((t.path.as_deref(), t.rate), (Some("/dev/sda"), Some(1 << 20)));
        assert_eq!(throttle_bps("sda:1mb").unwrap_err().to_string(), "bad format for device path: sda:1mb");
        assert_eq!(throttle_bps("sda").unwrap_err().to_string(), "bad format: sda");
        assert!(throttle_bps("/dev/sda:x").unwrap_err().to_string().starts_with("invalid rate for device: /dev/sda:x."));
        assert_eq!(throttle_iops("/dev/sda:1000").unwrap().rate, Some(1000));
        assert!(throttle_iops("/dev/sda:1k").is_err());
        assert_eq!(weight_device("/dev/sda:200").unwrap().weight, Some(200));
        assert!(weight_device("/dev/sda:5").is_err());
    }

    #[test]
    fn sysctls() {
        assert!(sysctl("net.ipv4.ip_forward=1").is_ok());
        assert!(sysctl("kernel.shmmax=1").is_ok());
        assert_eq!(sysctl("kernel.foo=1").unwrap_err().to_string(), "sysctl 'kernel.foo=1' is not allowed");
        assert!(sysctl("net.x").is_err());
    }

    #[test]
    fn restart_policies() {
        assert_eq!(restart_policy("on-failure:3").unwrap(), Restart { name: "on-failure".into(), max_retry: 3 });
        assert_eq!(restart_policy("always").unwrap(), Restart { name: "always".into(), max_retry: 0 });
        assert!(restart_policy("no").unwrap().is_none());
        assert_eq!(restart_policy(":3").unwrap_err().to_string(), "invalid restart policy format: no policy provided before colon");
        assert_eq!(
            restart_policy("on-failure:x").unwrap_err().to_string(),
            "invalid restart policy format: maximum retry count must be an integer"
        );
        assert_eq!(
            restart_policy("bogus").unwrap_err().to_string(),
            "invalid restart policy: unknown policy 'bogus'; use one of 'no', 'always', 'on-failure', or 'unless-stopped'"
        );
        assert!(restart_policy("always:2").is_err());
    }

    #[test]
    fn kv_files() {
        let v = parse_kv(b"\xEF\xBB\xBFA=1\n# c\n  B=two words \n\nBERTH_SURELY_UNSET\r\n", true).unwrap();
        assert_eq!(v, vec!["A=1", "B=two words "]);
        assert_eq!(parse_kv(b"a b=1", true).unwrap_err(), "variable 'a b' contains whitespaces");
        assert_eq!(parse_kv(b"=1", true).unwrap_err(), "no variable name on line '=1'");
        assert_eq!(
            read_kv_file("/nonexistent/berth.env", true).unwrap_err().to_string(),
            "open /nonexistent/berth.env: no such file or directory"
        );
    }

    #[test]
    fn ports() {
        let p = |s| publish(s).unwrap();
        assert_eq!(p("8080:80"), vec![PortMapping { port: "80/tcp".into(), host_ip: "".into(), host_port: "8080".into() }]);
        assert_eq!(p("127.0.0.1:53:53/udp")[0], PortMapping { port: "53/udp".into(), host_ip: "127.0.0.1".into(), host_port: "53".into() });
        assert_eq!(p("127.0.0.1::81")[0].host_port, "");
        assert_eq!(p("9000-9001:9000-9001").len(), 2);
        assert_eq!(p("8000-8010:80")[0].host_port, "8000-8010");
        assert_eq!(p("[::1]:80:80")[0].host_ip, "::1");
        assert_eq!(p("published=8080,target=80,protocol=udp")[0].port, "80/udp");
        assert_eq!(publish("99999:80").unwrap_err().to_string(), "invalid hostPort: 99999");
        assert_eq!(publish("80:80/xyz").unwrap_err().to_string(), "invalid proto: xyz");
        assert_eq!(publish("1.2.3:80:80").unwrap_err().to_string(), "invalid IP address: 1.2.3");
        assert_eq!(publish("80-81:90-92").unwrap_err().to_string(), "invalid ranges specified for container and host Ports: 90-92 and 80-81");
        assert_eq!(expose("7000-7001/udp").unwrap(), vec!["7000/udp", "7001/udp"]);
    }

    #[test]
    fn devices() {
        let d = device("/dev/sda:/dev/xvda:rw").unwrap();
        assert_eq!(d.path_in_container.as_deref(), Some("/dev/xvda"));
        assert_eq!(d.cgroup_permissions.as_deref(), Some("rw"));
        let d = device("/dev/fuse").unwrap();
        assert_eq!((d.path_on_host.as_deref(), d.cgroup_permissions.as_deref()), (Some("/dev/fuse"), Some("rwm")));
        assert_eq!(device("/dev/fuse:r").unwrap().cgroup_permissions.as_deref(), Some("r"));
        assert_eq!(device("/dev/a:b").unwrap_err().to_string(), "b is not an absolute path");
        assert_eq!(device("/dev/a:/b:x").unwrap_err().to_string(), "bad mode specified: x");
        assert_eq!(device("a:b:c:d").unwrap_err().to_string(), "bad format for path: a:b:c:d");
    }

    #[test]
    fn filters_and_platforms() {
        let f = Filters::from_pairs(&[filter("status=running").unwrap(), filter("Name = web ").unwrap()]);
        assert_eq!(f.to_json(), r#"{"name":{"web":true},"status":{"running":true}}"#);
        assert_eq!(filter("x").unwrap_err().to_string(), "bad format of filter (expected name=value)");
        assert!(platform("linux/amd64").is_ok());
        assert_eq!(
            platform("bad/").unwrap_err().to_string(),
            "error parsing specified platform: \"\" is an invalid component of \"bad/\": platform specifier component must match \"^[A-Za-z0-9_.-]+$\": invalid argument"
        );
        assert_eq!(pull_policy("bogus").unwrap_err().to_string(), "invalid pull option: 'bogus': must be one of \"always\", \"missing\" or \"never\"");
        assert_eq!(clean_path("/a/./b/../c/"), "/a/c");
    }
}
