//! The `run`/`create` flags and the create body they make, as docker's CLI
//! makes it (`opts.go` `parse`): same defaults, same validation order, same
//! zero values where the daemon reads them (`MemorySwappiness: -1`,
//! `RestartPolicy: {"Name": "no"}`, the `default` endpoint).

use std::collections::HashMap;

use berth_api::models::{
    ContainerCreateBody, EndpointIpamConfig, EndpointSettings, HealthConfig, HostConfig, HostConfigLogConfig, Mount,
    MountBindOptions, MountTmpfsOptions, MountType, MountVolumeOptions, NetworkingConfig, PortBinding, RestartPolicy,
    RestartPolicyNameEnum, ResourcesBlkioWeightDevice, ResourcesUlimits, ThrottleDevice,
};
use clap::{ArgAction, Args};

use super::{OptsError, PortMapping};
use crate::opts;

/// Errors in the combination of run/create flags (after each value parsed).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RunOptsError {
    #[error(transparent)]
    Value(#[from] OptsError),
    #[error("conflicting options: cannot specify both --restart and --rm")]
    RestartAndRm,
    #[error("conflicting options: cannot specify both --attach and --detach")]
    AttachAndDetach,
    #[error("--no-healthcheck conflicts with --health-* options")]
    NoHealthcheck,
    #[error("--{0} cannot be negative")]
    Negative(&'static str),
    #[error("invalid logging opts for driver {0}")]
    LogOpts(String),
    #[error("Invalid --security-opt: {0:?}")]
    SecurityOpt(String),
    #[error("opening seccomp profile ({path}) failed: {reason}")]
    SeccompOpen { path: String, reason: String },
    #[error("compacting json for seccomp profile ({path}) failed: {reason}")]
    SeccompJson { path: String, reason: String },
    #[error("--pid: invalid PID mode")]
    Pid,
    #[error("--uts: invalid UTS mode")]
    Uts,
    #[error("--userns: invalid USER mode")]
    Userns,
    #[error("--cgroupns: invalid CGROUP mode")]
    Cgroupns,
    #[error("invalid value: {0}. Valid memory swappiness range is 0-100")]
    Swappiness(i64),
    #[error("{0} is not a valid mac address")]
    Mac(String),
    #[error("invalid storage option")]
    StorageOpt,
    #[error("invalid field '{0}' must be a key=value pair")]
    MountField(String),
    #[error("unknown option '{0}' in '{1}'")]
    MountKey(String, String),
    #[error("invalid value for {key}: {value}")]
    MountValue { key: String, value: String },
    #[error("target is required")]
    MountTarget,
    #[error("invalid volume specification: '{0}'")]
    Volume(String),
    #[error("network-scoped aliases are only supported for user-defined networks")]
    AliasesNeedUserNetwork,
    #[error("conflicting options: cannot attach both user-defined and non-user-defined network-modes")]
    NetworkModes,
    #[error("network {0:?} is specified multiple times")]
    NetworkTwice(String),
    #[error("invalid network option '{0}'")]
    NetworkOpt(String),
}

fn bool_flag(s: &str) -> Result<bool, OptsError> {
    opts::go_bool(s)
}

/// Flags shared by `run` and `create` (docker's `addFlags`).
#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = "Options")]
pub struct ContainerFlags {
    /// Add a custom host-to-IP mapping (host:ip)
    #[arg(long = "add-host", value_name = "list")]
    pub add_host: Vec<String>,
    /// Add an annotation to the container (passed through to the OCI runtime)
    #[arg(long = "annotation", value_name = "map")]
    pub annotation: Vec<String>,
    /// Attach to STDIN, STDOUT or STDERR
    #[arg(short = 'a', long = "attach", value_name = "list", value_parser = opts::attach_stream)]
    pub attach: Vec<String>,
    /// Block IO weight (relative device weight)
    #[arg(long = "blkio-weight-device", value_name = "list", value_parser = opts::weight_device)]
    pub blkio_weight_device: Vec<ResourcesBlkioWeightDevice>,
    /// Add Linux capabilities
    #[arg(long = "cap-add", value_name = "list")]
    pub cap_add: Vec<String>,
    /// Drop Linux capabilities
    #[arg(long = "cap-drop", value_name = "list")]
    pub cap_drop: Vec<String>,
    /// Optional parent cgroup for the container
    #[arg(long = "cgroup-parent", value_name = "string")]
    pub cgroup_parent: Option<String>,
    /// Cgroup namespace to use (host|private)
    #[arg(long = "cgroupns", value_name = "string")]
    pub cgroupns: Option<String>,
    /// Write the container ID to the file
    #[arg(long = "cidfile", value_name = "string")]
    pub cidfile: Option<String>,
    /// CPU count (Windows only)
    #[arg(long = "cpu-count", value_name = "int", value_parser = opts::go_i64, hide = true)]
    pub cpu_count: Option<i64>,
    /// CPU percent (Windows only)
    #[arg(long = "cpu-percent", value_name = "int", value_parser = opts::go_i64, hide = true)]
    pub cpu_percent: Option<i64>,
    /// Add a host device to the container
    #[arg(long = "device", value_name = "list")]
    pub device: Vec<String>,
    /// Add a rule to the cgroup allowed devices list
    #[arg(long = "device-cgroup-rule", value_name = "list")]
    pub device_cgroup_rule: Vec<String>,
    /// Limit read rate (bytes per second) from a device
    #[arg(long = "device-read-bps", value_name = "list", value_parser = opts::throttle_bps)]
    pub device_read_bps: Vec<ThrottleDevice>,
    /// Limit read rate (IO per second) from a device
    #[arg(long = "device-read-iops", value_name = "list", value_parser = opts::throttle_iops)]
    pub device_read_iops: Vec<ThrottleDevice>,
    /// Limit write rate (bytes per second) to a device
    #[arg(long = "device-write-bps", value_name = "list", value_parser = opts::throttle_bps)]
    pub device_write_bps: Vec<ThrottleDevice>,
    /// Limit write rate (IO per second) to a device
    #[arg(long = "device-write-iops", value_name = "list", value_parser = opts::throttle_iops)]
    pub device_write_iops: Vec<ThrottleDevice>,
    /// Set custom DNS servers
    #[arg(long = "dns", value_name = "list")]
    pub dns: Vec<String>,
    /// Set DNS options
    #[arg(long = "dns-option", visible_alias = None, alias = "dns-opt", value_name = "list")]
    pub dns_option: Vec<String>,
    /// Set custom DNS search domains
    #[arg(long = "dns-search", value_name = "list")]
    pub dns_search: Vec<String>,
    /// Container NIS domain name
    #[arg(long = "domainname", value_name = "string")]
    pub domainname: Option<String>,
    /// Overwrite the default ENTRYPOINT of the image
    #[arg(long = "entrypoint", value_name = "string")]
    pub entrypoint: Option<String>,
    /// Set environment variables
    #[arg(short = 'e', long = "env", value_name = "list", value_parser = opts::env_var)]
    pub env: Vec<String>,
    /// Read in a file of environment variables
    #[arg(long = "env-file", value_name = "list")]
    pub env_file: Vec<String>,
    /// Expose a port or a range of ports
    #[arg(long = "expose", value_name = "list")]
    pub expose: Vec<String>,
    /// GPU devices to add to the container ('all' to pass all GPUs)
    #[arg(long = "gpus", value_name = "gpu-request")]
    pub gpus: Option<String>,
    /// Add additional groups to join
    #[arg(long = "group-add", value_name = "list")]
    pub group_add: Vec<String>,
    /// Command to run to check health
    #[arg(long = "health-cmd", value_name = "string")]
    pub health_cmd: Option<String>,
    /// Time between running the check (ms|s|m|h) (default 0s)
    #[arg(long = "health-interval", value_name = "duration", value_parser = opts::duration)]
    pub health_interval: Option<i64>,
    /// Consecutive failures needed to report unhealthy
    #[arg(long = "health-retries", value_name = "int", value_parser = opts::go_i64)]
    pub health_retries: Option<i64>,
    /// Time between running the check during the start period (ms|s|m|h) (default 0s)
    #[arg(long = "health-start-interval", value_name = "duration", value_parser = opts::duration)]
    pub health_start_interval: Option<i64>,
    /// Start period for the container to initialize before starting health-retries countdown (ms|s|m|h) (default 0s)
    #[arg(long = "health-start-period", value_name = "duration", value_parser = opts::duration)]
    pub health_start_period: Option<i64>,
    /// Maximum time to allow one check to run (ms|s|m|h) (default 0s)
    #[arg(long = "health-timeout", value_name = "duration", value_parser = opts::duration)]
    pub health_timeout: Option<i64>,
    /// Print usage
    #[arg(long = "help", action = ArgAction::Help)]
    pub help: Option<bool>,
    /// Container host name
    #[arg(short = 'h', long = "hostname", value_name = "string")]
    pub hostname: Option<String>,
    /// Run an init inside the container that forwards signals and reaps processes
    #[arg(long = "init", num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = bool_flag)]
    pub init: Option<bool>,
    /// Keep STDIN open even if not attached
    #[arg(short = 'i', long = "interactive", num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false", value_parser = bool_flag)]
    pub interactive: bool,
    /// Maximum IO bandwidth limit for the system drive (Windows only)
    #[arg(long = "io-maxbandwidth", value_name = "bytes", value_parser = opts::mem_bytes, hide = true)]
    pub io_maxbandwidth: Option<i64>,
    /// Maximum IOps limit for the system drive (Windows only)
    #[arg(long = "io-maxiops", value_name = "uint", value_parser = opts::go_i64, hide = true)]
    pub io_maxiops: Option<i64>,
    /// IPv4 address (e.g., 172.30.100.104)
    #[arg(long = "ip", value_name = "ip")]
    pub ip: Option<std::net::Ipv4Addr>,
    /// IPv6 address (e.g., 2001:db8::33)
    #[arg(long = "ip6", value_name = "ip")]
    pub ip6: Option<std::net::Ipv6Addr>,
    /// IPC mode to use
    #[arg(long = "ipc", value_name = "string")]
    pub ipc: Option<String>,
    /// Container isolation technology
    #[arg(long = "isolation", value_name = "string")]
    pub isolation: Option<String>,
    /// Set meta data on a container
    #[arg(short = 'l', long = "label", value_name = "list", value_parser = opts::label)]
    pub label: Vec<String>,
    /// Read in a line delimited file of labels
    #[arg(long = "label-file", value_name = "list")]
    pub label_file: Vec<String>,
    /// Add link to another container
    #[arg(long = "link", value_name = "list")]
    pub link: Vec<String>,
    /// Container IPv4/IPv6 link-local addresses
    #[arg(long = "link-local-ip", value_name = "list")]
    pub link_local_ip: Vec<String>,
    /// Logging driver for the container
    #[arg(long = "log-driver", value_name = "string")]
    pub log_driver: Option<String>,
    /// Log driver options
    #[arg(long = "log-opt", value_name = "list")]
    pub log_opt: Vec<String>,
    /// Container MAC address (e.g., 92:d0:c6:0a:29:33)
    #[arg(long = "mac-address", value_name = "string")]
    pub mac_address: Option<String>,
    /// Tune container memory swappiness (0 to 100)
    #[arg(long = "memory-swappiness", value_name = "int", allow_hyphen_values = true, default_value = "-1", value_parser = opts::go_i64)]
    pub memory_swappiness: i64,
    /// Attach a filesystem mount to the container
    #[arg(long = "mount", value_name = "mount")]
    pub mount: Vec<String>,
    /// Assign a name to the container
    #[arg(long = "name", value_name = "string")]
    pub name: Option<String>,
    /// Connect a container to a network
    #[arg(long = "network", alias = "net", value_name = "network")]
    pub network: Vec<String>,
    /// Add network-scoped alias for the container
    #[arg(long = "network-alias", alias = "net-alias", value_name = "list")]
    pub network_alias: Vec<String>,
    /// Disable any container-specified HEALTHCHECK
    #[arg(long = "no-healthcheck", num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false", value_parser = bool_flag)]
    pub no_healthcheck: bool,
    /// Disable OOM Killer
    #[arg(long = "oom-kill-disable", num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false", value_parser = bool_flag)]
    pub oom_kill_disable: bool,
    /// Tune host's OOM preferences (-1000 to 1000)
    #[arg(long = "oom-score-adj", value_name = "int", allow_hyphen_values = true, value_parser = opts::go_i64)]
    pub oom_score_adj: Option<i64>,
    /// PID namespace to use
    #[arg(long = "pid", value_name = "string")]
    pub pid: Option<String>,
    /// Set platform if server is multi-platform capable
    #[arg(long = "platform", value_name = "string", env = "DOCKER_DEFAULT_PLATFORM", hide_env = true)]
    pub platform: Option<String>,
    /// Give extended privileges to this container
    #[arg(long = "privileged", num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false", value_parser = bool_flag)]
    pub privileged: bool,
    /// Publish a container's port(s) to the host
    #[arg(short = 'p', long = "publish", value_name = "list")]
    pub publish: Vec<String>,
    /// Publish all exposed ports to random ports
    #[arg(short = 'P', long = "publish-all", num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false", value_parser = bool_flag)]
    pub publish_all: bool,
    /// Pull image before running ("always", "missing", "never")
    #[arg(long = "pull", value_name = "string", default_value = "missing", value_parser = opts::pull_policy)]
    pub pull: String,
    /// Suppress the pull output
    #[arg(short = 'q', long = "quiet", num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false", value_parser = bool_flag)]
    pub quiet: bool,
    /// Mount the container's root filesystem as read only
    #[arg(long = "read-only", num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false", value_parser = bool_flag)]
    pub read_only: bool,
    /// Restart policy to apply when a container exits
    #[arg(long = "restart", value_name = "string", default_value = "no")]
    pub restart: String,
    /// Automatically remove the container and its associated anonymous volumes when it exits
    #[arg(long = "rm", num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false", value_parser = bool_flag)]
    pub rm: bool,
    /// Runtime to use for this container
    #[arg(long = "runtime", value_name = "string")]
    pub runtime: Option<String>,
    /// Security Options
    #[arg(long = "security-opt", value_name = "list")]
    pub security_opt: Vec<String>,
    /// Size of /dev/shm
    #[arg(long = "shm-size", value_name = "bytes", value_parser = opts::mem_bytes)]
    pub shm_size: Option<i64>,
    /// Signal to stop the container
    #[arg(long = "stop-signal", value_name = "string")]
    pub stop_signal: Option<String>,
    /// Timeout (in seconds) to stop a container
    #[arg(long = "stop-timeout", value_name = "int", allow_hyphen_values = true, value_parser = opts::go_i64)]
    pub stop_timeout: Option<i64>,
    /// Storage driver options for the container
    #[arg(long = "storage-opt", value_name = "list")]
    pub storage_opt: Vec<String>,
    /// Sysctl options
    #[arg(long = "sysctl", value_name = "map", value_parser = opts::sysctl)]
    pub sysctl: Vec<String>,
    /// Mount a tmpfs directory
    #[arg(long = "tmpfs", value_name = "list")]
    pub tmpfs: Vec<String>,
    /// Allocate a pseudo-TTY
    #[arg(short = 't', long = "tty", num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false", value_parser = bool_flag)]
    pub tty: bool,
    /// Ulimit options
    #[arg(long = "ulimit", value_name = "ulimit", value_parser = opts::ulimit)]
    pub ulimit: Vec<ResourcesUlimits>,
    /// Username or UID (format: <name|uid>[:<group|gid>])
    #[arg(short = 'u', long = "user", value_name = "string")]
    pub user: Option<String>,
    /// User namespace to use
    #[arg(long = "userns", value_name = "string")]
    pub userns: Option<String>,
    /// UTS namespace to use
    #[arg(long = "uts", value_name = "string")]
    pub uts: Option<String>,
    /// Bind mount a volume
    #[arg(short = 'v', long = "volume", value_name = "list")]
    pub volume: Vec<String>,
    /// Optional volume driver for the container
    #[arg(long = "volume-driver", value_name = "string")]
    pub volume_driver: Option<String>,
    /// Mount volumes from the specified container(s)
    #[arg(long = "volumes-from", value_name = "list")]
    pub volumes_from: Vec<String>,
    /// Working directory inside the container
    #[arg(short = 'w', long = "workdir", value_name = "string")]
    pub workdir: Option<String>,
    #[command(flatten)]
    pub resources: ResourceFlags,
}

/// Resource limits shared by `run`/`create` and `update`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Args)]
pub struct ResourceFlags {
    /// Block IO (relative weight), between 10 and 1000, or 0 to disable (default 0)
    #[arg(long = "blkio-weight", value_name = "uint16", value_parser = opts::go_u16)]
    pub blkio_weight: Option<u16>,
    /// Limit CPU CFS (Completely Fair Scheduler) period
    #[arg(long = "cpu-period", value_name = "int", value_parser = opts::go_i64)]
    pub cpu_period: Option<i64>,
    /// Limit CPU CFS (Completely Fair Scheduler) quota
    #[arg(long = "cpu-quota", value_name = "int", value_parser = opts::go_i64)]
    pub cpu_quota: Option<i64>,
    /// Limit CPU real-time period in microseconds
    #[arg(long = "cpu-rt-period", value_name = "int", value_parser = opts::go_i64)]
    pub cpu_rt_period: Option<i64>,
    /// Limit CPU real-time runtime in microseconds
    #[arg(long = "cpu-rt-runtime", value_name = "int", value_parser = opts::go_i64)]
    pub cpu_rt_runtime: Option<i64>,
    /// CPU shares (relative weight)
    #[arg(short = 'c', long = "cpu-shares", value_name = "int", value_parser = opts::go_i64)]
    pub cpu_shares: Option<i64>,
    /// Number of CPUs
    #[arg(long = "cpus", value_name = "decimal", value_parser = opts::nano_cpus)]
    pub cpus: Option<i64>,
    /// CPUs in which to allow execution (0-3, 0,1)
    #[arg(long = "cpuset-cpus", value_name = "string")]
    pub cpuset_cpus: Option<String>,
    /// MEMs in which to allow execution (0-3, 0,1)
    #[arg(long = "cpuset-mems", value_name = "string")]
    pub cpuset_mems: Option<String>,
    /// Memory limit
    #[arg(short = 'm', long = "memory", value_name = "bytes", value_parser = opts::mem_bytes)]
    pub memory: Option<i64>,
    /// Memory soft limit
    #[arg(long = "memory-reservation", value_name = "bytes", value_parser = opts::mem_bytes)]
    pub memory_reservation: Option<i64>,
    /// Swap limit equal to memory plus swap: '-1' to enable unlimited swap
    #[arg(long = "memory-swap", value_name = "bytes", allow_hyphen_values = true, value_parser = opts::mem_swap_bytes)]
    pub memory_swap: Option<i64>,
    /// Tune container pids limit (set -1 for unlimited)
    #[arg(long = "pids-limit", value_name = "int", allow_hyphen_values = true, value_parser = opts::go_i64)]
    pub pids_limit: Option<i64>,
}

/// A create request: the name and platform go in the query, the rest in
/// the body.
#[derive(Debug, Clone)]
pub struct CreateRequest {
    pub name: Option<String>,
    pub platform: Option<String>,
    pub body: ContainerCreateBody,
}

fn non_empty<T>(v: Vec<T>) -> Option<Vec<T>> {
    if v.is_empty() { None } else { Some(v) }
}

fn kv_map(items: &[String]) -> HashMap<String, String> {
    items.iter().map(|s| s.split_once('=').map_or((s.clone(), String::new()), |(k, v)| (k.to_owned(), v.to_owned()))).collect()
}

/// Capabilities as docker 28 sends them: `CAP_` prefixed, upper case, `ALL`
/// kept as is.
fn normalize_caps(caps: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for c in caps {
        let u = c.trim().to_uppercase();
        let n = if u == "ALL" || u.starts_with("CAP_") { u } else { format!("CAP_{u}") };
        if !out.contains(&n) {
            out.push(n);
        }
    }
    out
}

fn is_user_defined_network(n: &str) -> bool {
    !matches!(n, "default" | "bridge" | "host" | "none") && !n.starts_with("container:")
}

impl ContainerFlags {
    /// Make the create request for `IMAGE [COMMAND] [ARG...]`, with the
    /// local terminal's size (rows, columns) when it has one.
    pub fn to_request(&self, image: &str, args: &[String], console: (u16, u16)) -> Result<CreateRequest, RunOptsError> {
        let mut attach_stdin = self.attach.iter().any(|a| a == "stdin");
        let mut attach_stdout = self.attach.iter().any(|a| a == "stdout");
        let mut attach_stderr = self.attach.iter().any(|a| a == "stderr");
        if let Some(mac) = &self.mac_address
            && !valid_mac(mac.trim())
        {
            return Err(RunOptsError::Mac(mac.clone()));
        }
        if self.interactive {
            attach_stdin = true;
        }
        if self.attach.is_empty() {
            attach_stdout = true;
            attach_stderr = true;
        }
        let swappiness = self.memory_swappiness;
        if swappiness != -1 && !(0..=100).contains(&swappiness) {
            return Err(RunOptsError::Swappiness(swappiness));
        }

        // -v: binds (with a source) and anonymous volumes.
        let mut binds = Vec::new();
        let mut volumes = Vec::new();
        for v in &self.volume {
            let (src, rest) = split_volume(v)?;
            match src {
                Some(src) => {
                    let src = if src.starts_with('.') {
                        std::path::absolute(src).map(|p| p.to_string_lossy().into_owned()).unwrap_or_else(|_| src.to_owned())
                    } else {
                        src.to_owned()
                    };
                    binds.push(format!("{src}:{rest}"));
                }
                None => {
                    if !volumes.contains(v) {
                        volumes.push(v.clone());
                    }
                }
            }
        }

        let tmpfs: HashMap<String, String> =
            self.tmpfs.iter().map(|t| t.split_once(':').map_or((t.clone(), String::new()), |(k, v)| (k.to_owned(), v.to_owned()))).collect();

        let cmd = non_empty(args.to_vec());
        let entrypoint = match &self.entrypoint {
            Some(e) if !e.is_empty() => Some(vec![e.clone()]),
            Some(_) => Some(vec![String::new()]),
            None => None,
        };

        // -p and --expose
        let mut bindings: HashMap<String, Option<Vec<PortBinding>>> = HashMap::new();
        let mut exposed: Vec<String> = Vec::new();
        for p in &self.publish {
            for PortMapping { port, host_ip, host_port } in opts::publish(p)? {
                bindings
                    .entry(port.clone())
                    .or_insert_with(|| Some(Vec::new()))
                    .get_or_insert_with(Vec::new)
                    .push(PortBinding { host_ip: Some(host_ip), host_port: Some(host_port) });
                if !exposed.contains(&port) {
                    exposed.push(port);
                }
            }
        }
        for e in &self.expose {
            for port in opts::expose(e)? {
                if !exposed.contains(&port) {
                    exposed.push(port);
                }
            }
        }
        exposed.sort();

        let mut devices = Vec::new();
        for d in &self.device {
            devices.push(opts::device(d)?);
        }

        let mut env = Vec::new();
        for f in &self.env_file {
            env.extend(opts::read_kv_file(f, true)?);
        }
        env.extend(self.env.iter().cloned());
        let mut labels = Vec::new();
        for f in &self.label_file {
            labels.extend(opts::read_kv_file(f, false)?);
        }
        labels.extend(self.label.iter().cloned());

        let pid = self.pid.clone().unwrap_or_default();
        if !(pid.is_empty() || pid == "host" || pid.strip_prefix("container:").is_some_and(|c| !c.is_empty())) {
            return Err(RunOptsError::Pid);
        }
        let uts = self.uts.clone().unwrap_or_default();
        if !(uts.is_empty() || uts == "host") {
            return Err(RunOptsError::Uts);
        }
        let userns = self.userns.clone().unwrap_or_default();
        if !matches!(userns.split(':').next().unwrap_or(""), "" | "host" | "private") {
            return Err(RunOptsError::Userns);
        }
        let cgroupns = self.cgroupns.clone().unwrap_or_default();
        let cgroupns_mode = match cgroupns.as_str() {
            "" => None,
            s => Some(s.parse().map_err(|_| RunOptsError::Cgroupns)?),
        };
        let restart = opts::restart_policy(&self.restart)?;

        let log_config = kv_map(&self.log_opt);
        if self.log_driver.as_deref() == Some("none") && !self.log_opt.is_empty() {
            return Err(RunOptsError::LogOpts("none".into()));
        }
        let security = parse_security_opts(&self.security_opt)?;
        let (security, masked, readonly) = system_paths(security);
        let mut storage = HashMap::new();
        for s in &self.storage_opt {
            let (k, v) = s.split_once('=').ok_or(RunOptsError::StorageOpt)?;
            storage.insert(k.to_owned(), v.to_owned());
        }

        // Healthcheck
        let have_health = self.health_cmd.as_deref().is_some_and(|c| !c.is_empty())
            || self.health_interval.is_some_and(|v| v != 0)
            || self.health_timeout.is_some_and(|v| v != 0)
            || self.health_start_period.is_some_and(|v| v != 0)
            || self.health_retries.is_some_and(|v| v != 0)
            || self.health_start_interval.is_some_and(|v| v != 0);
        let healthcheck = if self.no_healthcheck {
            if have_health {
                return Err(RunOptsError::NoHealthcheck);
            }
            Some(HealthConfig { test: Some(vec!["NONE".into()]), ..Default::default() })
        } else if have_health {
            for (name, v) in [
                ("health-interval", self.health_interval),
                ("health-timeout", self.health_timeout),
                ("health-retries", self.health_retries),
                ("health-start-period", self.health_start_period),
                ("health-start-interval", self.health_start_interval),
            ] {
                if v.is_some_and(|v| v < 0) {
                    return Err(RunOptsError::Negative(name));
                }
            }
            Some(HealthConfig {
                test: self.health_cmd.as_ref().filter(|c| !c.is_empty()).map(|c| vec!["CMD-SHELL".into(), c.clone()]),
                interval: self.health_interval.filter(|v| *v != 0),
                timeout: self.health_timeout.filter(|v| *v != 0),
                retries: self.health_retries.filter(|v| *v != 0),
                start_period: self.health_start_period.filter(|v| *v != 0),
                start_interval: self.health_start_interval.filter(|v| *v != 0),
            })
        } else {
            None
        };

        let mut mounts = Vec::new();
        for m in &self.mount {
            mounts.push(parse_mount(m)?);
        }

        let network_mode = self.network.first().map(|n| network_target(n)).unwrap_or_else(|| "default".into());
        let endpoints = self.endpoints()?;

        let host_config = HostConfig {
            binds: non_empty(binds),
            container_id_file: self.cidfile.clone(),
            oom_score_adj: self.oom_score_adj,
            auto_remove: Some(self.rm),
            privileged: Some(self.privileged),
            port_bindings: Some(bindings),
            links: non_empty(self.link.clone()),
            publish_all_ports: Some(self.publish_all),
            dns: Some(self.dns.clone()),
            dns_search: Some(self.dns_search.clone()),
            dns_options: Some(self.dns_option.clone()),
            extra_hosts: non_empty(self.add_host.clone()),
            volumes_from: non_empty(self.volumes_from.clone()),
            ipc_mode: self.ipc.clone(),
            network_mode: Some(network_mode),
            pid_mode: Some(pid).filter(|s| !s.is_empty()),
            uts_mode: Some(uts).filter(|s| !s.is_empty()),
            userns_mode: Some(userns).filter(|s| !s.is_empty()),
            cgroupns_mode,
            cap_add: non_empty(normalize_caps(&self.cap_add)),
            cap_drop: non_empty(normalize_caps(&self.cap_drop)),
            group_add: non_empty(self.group_add.clone()),
            restart_policy: Some(RestartPolicy {
                name: Some(match restart.name.as_str() {
                    "always" => RestartPolicyNameEnum::ALWAYS,
                    "unless-stopped" => RestartPolicyNameEnum::UNLESS_STOPPED,
                    "on-failure" => RestartPolicyNameEnum::ON_FAILURE,
                    _ => RestartPolicyNameEnum::NO,
                }),
                maximum_retry_count: Some(restart.max_retry),
            }),
            security_opt: security,
            storage_opt: if storage.is_empty() { None } else { Some(storage) },
            readonly_rootfs: Some(self.read_only),
            log_config: Some(HostConfigLogConfig { typ: Some(self.log_driver.clone().unwrap_or_default()), config: Some(log_config) }),
            volume_driver: self.volume_driver.clone(),
            isolation: self.isolation.as_deref().and_then(|s| s.parse().ok()),
            shm_size: self.shm_size,
            tmpfs: if tmpfs.is_empty() { None } else { Some(tmpfs) },
            sysctls: if self.sysctl.is_empty() { None } else { Some(kv_map(&self.sysctl)) },
            runtime: self.runtime.clone(),
            mounts: non_empty(mounts),
            masked_paths: masked,
            readonly_paths: readonly,
            annotations: if self.annotation.is_empty() { None } else { Some(kv_map(&self.annotation)) },
            console_size: Some(vec![console.0.into(), console.1.into()]),
            init: self.init,
            // Resources
            cgroup_parent: self.cgroup_parent.clone(),
            memory: self.resources.memory,
            memory_reservation: self.resources.memory_reservation,
            memory_swap: self.resources.memory_swap,
            memory_swappiness: Some(swappiness),
            oom_kill_disable: Some(self.oom_kill_disable),
            nano_cpus: self.resources.cpus,
            cpu_count: self.cpu_count,
            cpu_percent: self.cpu_percent,
            cpu_shares: self.resources.cpu_shares,
            cpu_period: self.resources.cpu_period,
            cpuset_cpus: self.resources.cpuset_cpus.clone(),
            cpuset_mems: self.resources.cpuset_mems.clone(),
            cpu_quota: self.resources.cpu_quota,
            cpu_realtime_period: self.resources.cpu_rt_period,
            cpu_realtime_runtime: self.resources.cpu_rt_runtime,
            pids_limit: Some(self.resources.pids_limit.unwrap_or(0)),
            blkio_weight: self.resources.blkio_weight,
            blkio_weight_device: Some(self.blkio_weight_device.clone()),
            blkio_device_read_bps: Some(self.device_read_bps.clone()),
            blkio_device_write_bps: Some(self.device_write_bps.clone()),
            blkio_device_read_iops: Some(self.device_read_iops.clone()),
            blkio_device_write_iops: Some(self.device_write_iops.clone()),
            io_maximum_iops: self.io_maxiops,
            io_maximum_bandwidth: self.io_maxbandwidth,
            ulimits: Some(self.ulimit.clone()),
            device_cgroup_rules: non_empty(self.device_cgroup_rule.clone()),
            devices: Some(devices),
            ..Default::default()
        };
        if self.rm && !restart.is_none() {
            return Err(RunOptsError::RestartAndRm);
        }

        let stdin_once = self.interactive && attach_stdin;
        let body = ContainerCreateBody {
            hostname: self.hostname.clone(),
            domainname: self.domainname.clone(),
            user: self.user.clone(),
            attach_stdin: Some(attach_stdin),
            attach_stdout: Some(attach_stdout),
            attach_stderr: Some(attach_stderr),
            exposed_ports: non_empty(exposed),
            tty: Some(self.tty),
            open_stdin: Some(self.interactive),
            stdin_once: Some(stdin_once),
            env: non_empty(env),
            cmd,
            healthcheck,
            image: Some(image.to_owned()),
            volumes: Some(volumes),
            working_dir: self.workdir.clone(),
            entrypoint,
            labels: Some(kv_map(&labels)),
            stop_signal: self.stop_signal.clone().filter(|s| !s.is_empty()),
            stop_timeout: self.stop_timeout,
            host_config: Some(host_config),
            networking_config: Some(NetworkingConfig { endpoints_config: Some(endpoints) }),
            ..Default::default()
        };
        Ok(CreateRequest {
            name: self.name.clone().filter(|n| !n.is_empty()),
            platform: match &self.platform {
                Some(p) if !p.is_empty() => Some(opts::platform(p)?),
                _ => None,
            },
            body,
        })
    }

    /// The endpoints docker sends: `default` when no `--network`, else the
    /// networks given, the first carrying `--network-alias`, `--ip`, ...
    fn endpoints(&self) -> Result<HashMap<String, EndpointSettings>, RunOptsError> {
        let mut out = HashMap::new();
        let legacy = EndpointSettings {
            aliases: non_empty(self.network_alias.clone()),
            ipam_config: if self.ip.is_some() || self.ip6.is_some() || !self.link_local_ip.is_empty() {
                Some(EndpointIpamConfig {
                    ipv4_address: self.ip.map(|i| i.to_string()),
                    ipv6_address: self.ip6.map(|i| i.to_string()),
                    link_local_ips: non_empty(self.link_local_ip.clone()),
                })
            } else {
                None
            },
            mac_address: self.mac_address.clone(),
            ..Default::default()
        };
        if self.network.is_empty() {
            if legacy.aliases.is_some() {
                return Err(RunOptsError::AliasesNeedUserNetwork);
            }
            out.insert("default".to_owned(), legacy);
            return Ok(out);
        }
        let (mut user, mut non_user) = (false, false);
        for (i, n) in self.network.iter().enumerate() {
            let (target, mut ep) = parse_network_opt(n)?;
            if is_user_defined_network(&target) { user = true } else { non_user = true }
            if i == 0 {
                ep.aliases = ep.aliases.or(legacy.aliases.clone());
                ep.ipam_config = ep.ipam_config.or(legacy.ipam_config.clone());
                ep.mac_address = ep.mac_address.or(legacy.mac_address.clone());
                if is_user_defined_network(&target) && !self.link.is_empty() {
                    ep.links = Some(self.link.clone());
                }
            }
            if !is_user_defined_network(&target) && ep.aliases.is_some() {
                return Err(RunOptsError::AliasesNeedUserNetwork);
            }
            if out.contains_key(&target) {
                return Err(RunOptsError::NetworkTwice(target));
            }
            if i == 0 && self.network.len() == 1 && ep == EndpointSettings::default() {
                continue;
            }
            out.insert(target, ep);
        }
        if user && non_user {
            return Err(RunOptsError::NetworkModes);
        }
        Ok(out)
    }
}

fn network_target(n: &str) -> String {
    if n.contains('=') {
        n.split(',').find_map(|kv| kv.strip_prefix("name=")).unwrap_or(n).to_owned()
    } else {
        n.to_owned()
    }
}

/// `--network name` or the long form `name=x,alias=a,ip=...,driver-opt=k=v`.
fn parse_network_opt(n: &str) -> Result<(String, EndpointSettings), RunOptsError> {
    if !n.contains('=') {
        return Ok((n.to_owned(), EndpointSettings::default()));
    }
    let mut target = String::new();
    let mut ep = EndpointSettings::default();
    for kv in n.split(',') {
        let (k, v) = kv.split_once('=').ok_or_else(|| RunOptsError::NetworkOpt(kv.to_owned()))?;
        match k {
            "name" => target = v.to_owned(),
            "alias" => ep.aliases.get_or_insert_with(Vec::new).push(v.to_owned()),
            "ip" => ep.ipam_config.get_or_insert_with(Default::default).ipv4_address = Some(v.to_owned()),
            "ip6" => ep.ipam_config.get_or_insert_with(Default::default).ipv6_address = Some(v.to_owned()),
            "mac-address" => ep.mac_address = Some(v.to_owned()),
            "link-local-ip" => {
                ep.ipam_config.get_or_insert_with(Default::default).link_local_ips.get_or_insert_with(Vec::new).push(v.to_owned())
            }
            "driver-opt" => {
                let (dk, dv) = v.split_once('=').ok_or_else(|| RunOptsError::NetworkOpt(kv.to_owned()))?;
                ep.driver_opts.get_or_insert_with(HashMap::new).insert(dk.to_owned(), dv.to_owned());
            }
            "gw-priority" => ep.gw_priority = Some(v.parse().map_err(|_| RunOptsError::NetworkOpt(kv.to_owned()))?),
            _ => return Err(RunOptsError::NetworkOpt(kv.to_owned())),
        }
    }
    Ok((target, ep))
}

fn valid_mac(s: &str) -> bool {
    let parts: Vec<&str> = s.split([':', '-']).collect();
    matches!(parts.len(), 6 | 8 | 20) && parts.iter().all(|p| p.len() == 2 && p.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Split `-v` into (source, `dest[:mode]`); no source for an anonymous volume.
fn split_volume(v: &str) -> Result<(Option<&str>, &str), RunOptsError> {
    if v.is_empty() {
        return Err(RunOptsError::Volume(v.to_owned()));
    }
    let parts: Vec<&str> = v.splitn(2, ':').collect();
    match parts.as_slice() {
        [_] => Ok((None, v)),
        [src, rest] if !src.is_empty() && !rest.is_empty() => Ok((Some(src), rest)),
        _ => Err(RunOptsError::Volume(v.to_owned())),
    }
}

fn parse_security_opts(opts: &[String]) -> Result<Option<Vec<String>>, RunOptsError> {
    if opts.is_empty() {
        return Ok(None);
    }
    let mut out = Vec::new();
    for opt in opts {
        let (k, v) = match opt.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None if opt == "no-new-privileges" => (opt.as_str(), None),
            None => match opt.split_once(':') {
                Some((k, v)) => (k, Some(v)),
                None => (opt.as_str(), None),
            },
        };
        if k != "no-new-privileges" && v.is_none_or(str::is_empty) {
            return Err(RunOptsError::SecurityOpt(opt.clone()));
        }
        if k == "seccomp"
            && let Some(v) = v
            && v != "builtin"
            && v != "unconfined"
        {
            let data = std::fs::read(v).map_err(|e| RunOptsError::SeccompOpen { path: v.to_owned(), reason: opts::io_reason(&e) })?;
            let json: serde_json::Value =
                serde_json::from_slice(&data).map_err(|e| RunOptsError::SeccompJson { path: v.to_owned(), reason: e.to_string() })?;
            out.push(format!("seccomp={json}"));
            continue;
        }
        out.push(opt.clone());
    }
    Ok(Some(out))
}

type SystemPaths = (Option<Vec<String>>, Option<Vec<String>>, Option<Vec<String>>);

/// `systempaths=unconfined` is handled by the client: empty masked and
/// read-only path lists.
fn system_paths(opts: Option<Vec<String>>) -> SystemPaths {
    let Some(opts) = opts else { return (None, None, None) };
    let mut masked = None;
    let mut readonly = None;
    let filtered: Vec<String> = opts
        .into_iter()
        .filter(|o| {
            if o == "systempaths=unconfined" {
                masked = Some(Vec::new());
                readonly = Some(Vec::new());
                false
            } else {
                true
            }
        })
        .collect();
    (Some(filtered), masked, readonly)
}

/// `--mount type=bind,source=/a,target=/b,readonly`.
pub fn parse_mount(s: &str) -> Result<Mount, RunOptsError> {
    let mut m = Mount { typ: Some(MountType::VOLUME), ..Default::default() };
    let bad = |k: &str, v: &str| RunOptsError::MountValue { key: k.to_owned(), value: v.to_owned() };
    for field in s.split(',') {
        let (k, v) = match field.split_once('=') {
            Some((k, v)) => (k.to_lowercase(), Some(v)),
            None => (field.to_lowercase(), None),
        };
        let flag = |v: Option<&str>| match v {
            None => Ok(true),
            Some(v) => opts::go_bool(v).map_err(|_| bad(&k, v)),
        };
        match (k.as_str(), v) {
            ("readonly" | "ro", v) => m.read_only = Some(flag(v)?),
            ("volume-nocopy", v) => m.volume_options.get_or_insert_with(MountVolumeOptions::default).no_copy = Some(flag(v)?),
            ("bind-nonrecursive", v) => m.bind_options.get_or_insert_with(MountBindOptions::default).non_recursive = Some(flag(v)?),
            (_, None) => return Err(RunOptsError::MountField(field.to_owned())),
            ("type", Some(v)) => m.typ = Some(v.parse().map_err(|_| bad("type", v))?),
            ("source" | "src", Some(v)) => m.source = Some(v.to_owned()),
            ("target" | "dst" | "destination", Some(v)) => m.target = Some(v.to_owned()),
            ("consistency", Some(v)) => m.consistency = Some(v.to_owned()),
            ("bind-propagation", Some(v)) => {
                m.bind_options.get_or_insert_with(MountBindOptions::default).propagation = Some(v.parse().map_err(|_| bad(&k, v))?)
            }
            ("volume-subpath", Some(v)) => m.volume_options.get_or_insert_with(MountVolumeOptions::default).subpath = Some(v.to_owned()),
            ("volume-label", Some(v)) => {
                let (lk, lv) = v.split_once('=').unwrap_or((v, ""));
                m.volume_options
                    .get_or_insert_with(MountVolumeOptions::default)
                    .labels
                    .get_or_insert_with(HashMap::new)
                    .insert(lk.to_owned(), lv.to_owned());
            }
            ("tmpfs-size", Some(v)) => {
                m.tmpfs_options.get_or_insert_with(MountTmpfsOptions::default).size_bytes = Some(opts::mem_bytes(v).map_err(|_| bad(&k, v))?)
            }
            ("tmpfs-mode", Some(v)) => {
                m.tmpfs_options.get_or_insert_with(MountTmpfsOptions::default).mode = Some(i64::from_str_radix(v, 8).map_err(|_| bad(&k, v))?)
            }
            _ => return Err(RunOptsError::MountKey(k, s.to_owned())),
        }
    }
    if m.target.as_deref().is_none_or(str::is_empty) {
        return Err(RunOptsError::MountTarget);
    }
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    #[command(disable_help_flag = true)]
    struct T {
        #[command(flatten)]
        f: ContainerFlags,
        #[arg(required = true, num_args = 1.., trailing_var_arg = true)]
        cmdline: Vec<String>,
    }

    fn parse(argv: impl IntoIterator<Item = String>) -> T {
        use clap::{CommandFactory, FromArgMatches};
        let m = crate::cli::pflag_like(T::command()).try_get_matches_from(argv).unwrap();
        T::from_arg_matches(&m).unwrap()
    }

    fn req(line: &str) -> Result<CreateRequest, RunOptsError> {
        let t = parse(std::iter::once("create".to_owned()).chain(shell_words(line)));
        t.f.to_request(&t.cmdline[0], &t.cmdline[1..], (0, 0))
    }

    /// Enough of a shell to split the fixture lines.
    fn shell_words(s: &str) -> Vec<String> {
        let mut out = Vec::new();
        let mut cur = String::new();
        let mut quoted = false;
        let mut any = false;
        for c in s.chars() {
            match c {
                '"' => {
                    quoted = !quoted;
                    any = true;
                }
                ' ' if !quoted => {
                    if any || !cur.is_empty() {
                        out.push(std::mem::take(&mut cur));
                    }
                    any = false;
                }
                c => cur.push(c),
            }
        }
        if any || !cur.is_empty() {
            out.push(cur);
        }
        out
    }

    /// Drop the zero values Go sends and bollard omits, so that the bodies
    /// compare by meaning: `""`, `0`, `false`, `null`, `[]`, and `{}` for
    /// struct fields (capitalised keys); data maps keep their `{}` values.
    fn normalize(v: serde_json::Value) -> serde_json::Value {
        use serde_json::Value as V;
        match v {
            V::Object(o) => V::Object(
                o.into_iter()
                    .map(|(k, v)| (k, normalize(v)))
                    .filter(|(k, v)| {
                        let struct_field = k.starts_with(|c: char| c.is_ascii_uppercase());
                        !(matches!(v, V::Null | V::Bool(false))
                            || v.as_str() == Some("")
                            || v.as_i64() == Some(0)
                            || v.as_array().is_some_and(|a| a.is_empty())
                            || (struct_field && v.as_object().is_some_and(|o| o.is_empty())))
                    })
                    .collect(),
            ),
            V::Array(a) => V::Array(a.into_iter().map(normalize).collect()),
            other => other,
        }
    }

    #[test]
    fn bodies_match_what_docker_sends() {
        let fixtures = include_str!("../../tests/fixtures/docker-create-bodies.jsonl");
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");
        for line in fixtures.lines() {
            let case: serde_json::Value = serde_json::from_str(line).unwrap();
            let args = case["args"].as_str().unwrap().replace("/tmp/fk", dir);
            // The fixtures were recorded with HOME=/root.
            if args.contains("HOME") && std::env::var("HOME").as_deref() != Ok("/root") {
                continue;
            }
            if args.contains("--sig-proxy") {
                continue; // a run-only flag: create refuses it
            }
            let r = req(&args).unwrap_or_else(|e| panic!("{args}: {e}"));
            let mine = normalize(serde_json::to_value(&r.body).unwrap());
            let docker = normalize(case["body"].clone());
            assert_eq!(mine, docker, "\nargs: {args}\n mine: {mine}\ndocker: {docker}");
            let q = case["query"].as_str().unwrap();
            assert_eq!(r.name.map(|n| format!("name={n}")).unwrap_or_default(), if q.starts_with("name=") { q } else { "" });
            assert_eq!(r.platform.is_some(), q.contains("platform="), "{args}");
        }
    }

    #[test]
    fn flag_combinations_are_checked() {
        assert_eq!(req("--restart always --rm busybox").unwrap_err(), RunOptsError::RestartAndRm);
        assert_eq!(req("--health-cmd x --no-healthcheck busybox").unwrap_err(), RunOptsError::NoHealthcheck);
        assert_eq!(req("--health-interval -1s busybox").unwrap_err().to_string(), "--health-interval cannot be negative");
        assert_eq!(req("--log-driver none --log-opt a=b busybox").unwrap_err().to_string(), "invalid logging opts for driver none");
        assert_eq!(req("--security-opt foo busybox").unwrap_err().to_string(), "Invalid --security-opt: \"foo\"");
        assert_eq!(req("--pid bogus busybox").unwrap_err().to_string(), "--pid: invalid PID mode");
        assert_eq!(req("--uts bogus busybox").unwrap_err().to_string(), "--uts: invalid UTS mode");
        assert_eq!(req("--userns bogus busybox").unwrap_err().to_string(), "--userns: invalid USER mode");
        assert_eq!(req("--cgroupns bogus busybox").unwrap_err().to_string(), "--cgroupns: invalid CGROUP mode");
        assert_eq!(req("--device /dev/a:b busybox").unwrap_err().to_string(), "b is not an absolute path");
        assert_eq!(req("-p 80:80/xyz busybox").unwrap_err().to_string(), "invalid proto: xyz");
        assert_eq!(req("--memory-swappiness 101 busybox").unwrap_err().to_string(), "invalid value: 101. Valid memory swappiness range is 0-100");
        assert_eq!(req("--restart on-failure:x busybox").unwrap_err().to_string(), "invalid restart policy format: maximum retry count must be an integer");
        assert_eq!(req("--env-file /nonexistent/x busybox").unwrap_err().to_string(), "open /nonexistent/x: no such file or directory");
        assert_eq!(req("--network-alias a busybox").unwrap_err(), RunOptsError::AliasesNeedUserNetwork);
        assert_eq!(req("--network host --network mynet busybox").unwrap_err(), RunOptsError::NetworkModes);
    }

    #[test]
    fn mounts_and_seccomp_files() {
        let m = parse_mount("type=bind,source=/a,target=/b,readonly,bind-propagation=rshared").unwrap();
        let j = serde_json::to_value(&m).unwrap();
        assert_eq!(j, serde_json::json!({"Type": "bind", "Source": "/a", "Target": "/b", "ReadOnly": true, "BindOptions": {"Propagation": "rshared"}}));
        let m = parse_mount("type=tmpfs,dst=/t,tmpfs-size=64m,tmpfs-mode=1770").unwrap();
        assert_eq!(m.tmpfs_options.unwrap(), MountTmpfsOptions { size_bytes: Some(64 << 20), mode: Some(0o1770), options: None });
        assert_eq!(parse_mount("type=bind,source=/a").unwrap_err(), RunOptsError::MountTarget);
        assert!(parse_mount("type=bogus,target=/a").is_err());

        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("profile.json");
        std::fs::write(&p, "{ \"defaultAction\" : \"SCMP_ACT_ALLOW\" }").unwrap();
        let r = req(&format!("--security-opt seccomp={} busybox", p.display())).unwrap();
        assert_eq!(r.body.host_config.unwrap().security_opt.unwrap(), vec![r#"seccomp={"defaultAction":"SCMP_ACT_ALLOW"}"#]);
        let r = req("--security-opt systempaths=unconfined busybox").unwrap();
        let hc = r.body.host_config.unwrap();
        assert_eq!(hc.masked_paths, Some(vec![]));
        assert_eq!(hc.security_opt, Some(vec![]));
    }

    #[test]
    fn console_size_and_interspersed_args() {
        let t = parse(["create", "-t", "busybox", "sh", "-c", "echo -it"].map(String::from));
        assert!(t.f.tty);
        assert_eq!(t.cmdline, vec!["busybox", "sh", "-c", "echo -it"]);
        let r = t.f.to_request(&t.cmdline[0], &t.cmdline[1..], (24, 80)).unwrap();
        assert_eq!(r.body.host_config.unwrap().console_size, Some(vec![24, 80]));
    }
}
