//! Container networking in berthd, over berth-network's [`Controller`] and
//! embedded [`DnsServer`]: the daemon's network options, start-up
//! (reconcile after a crash), and what container start, stop, inspect and
//! the `/networks` routes need of them.
//!
//! A container's networks are kept in its record (`endpoints`, by network
//! name, as docker keeps `NetworkSettings.Networks`); its sandbox exists only
//! while it runs: [`Daemon::setup_container_network`] at start,
//! [`Daemon::teardown_container_network`] at exit.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

use berth_api::models::{EndpointIpamConfig, EndpointSettings};
use berth_network::files::{self, DnsSettings, HostsSpec, ResolvConf};
use berth_network::ipam::AddressPool;
use berth_network::{BindProbe, Controller, DnsServer, EndpointSpec, NetworkError, SandboxMode, TeardownError};
use ipnet::IpNet;
use serde_json::{Value, json};

use crate::Daemon;
use crate::config::FileConfig;
use crate::containers::store::Container;
use crate::error::{ApiError, ApiResult};

/// dockerd's networking flags, and berth's `--network-prefix`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct NetworkFlags {
    /// Attach containers to a network bridge (default berth0)
    #[arg(short = 'b', long = "bridge")]
    pub bridge: Option<String>,
    /// Network bridge IP (CIDR)
    #[arg(long = "bip")]
    pub bip: Option<String>,
    /// IPv4 subnet for fixed IPs on the default bridge
    #[arg(long = "fixed-cidr")]
    pub fixed_cidr: Option<String>,
    /// Default address pools for new networks (base=CIDR,size=N)
    #[arg(long = "default-address-pool")]
    pub default_address_pool: Vec<String>,
    /// MTU of the default bridge's containers
    #[arg(long = "mtu")]
    pub mtu: Option<u32>,
    /// Enable inter-container communication on the default bridge
    #[arg(long = "icc", num_args = 0..=1, default_missing_value = "true")]
    pub icc: Option<bool>,
    /// Enable IP masquerading
    #[arg(long = "ip-masq", num_args = 0..=1, default_missing_value = "true")]
    pub ip_masq: Option<bool>,
    /// DNS server for containers
    #[arg(long = "dns")]
    pub dns: Vec<String>,
    /// Prefix of berth's nftables table and host links (default berth); two
    /// daemons on one host need different ones
    #[arg(long = "network-prefix")]
    pub network_prefix: Option<String>,
    /// Remove the bridges, links and nftables table berth set up, then exit
    #[arg(long = "uninstall-network")]
    pub uninstall: bool,
}

/// The daemon's resolved network options.
#[derive(Debug, Clone)]
pub struct NetworkOptions {
    pub bridge: String,
    pub bip: Option<IpNet>,
    pub fixed_cidr: Option<IpNet>,
    pub pools: Vec<AddressPool>,
    pub mtu: Option<u32>,
    pub icc: bool,
    pub ip_masq: bool,
    pub dns: Vec<IpAddr>,
    pub prefix: String,
    pub uninstall: bool,
}

impl Default for NetworkOptions {
    fn default() -> Self {
        NetworkOptions {
            bridge: "berth0".into(),
            bip: None,
            fixed_cidr: None,
            pools: berth_network::ipam::default_pools(),
            mtu: None,
            icc: true,
            ip_masq: true,
            dns: Vec::new(),
            prefix: "berth".into(),
            uninstall: false,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum NetworkConfigError {
    #[error("invalid {what} {value:?}: {reason}")]
    Invalid { what: &'static str, value: String, reason: String },
    #[error("network prefix {0:?}: use 1 to 9 letters or digits")]
    Prefix(String),
    #[error("bridge name {0:?}: use 1 to 15 characters")]
    Bridge(String),
}

fn invalid(what: &'static str, value: &str, reason: impl ToString) -> NetworkConfigError {
    NetworkConfigError::Invalid { what, value: value.to_owned(), reason: reason.to_string() }
}

/// `base=10.10.0.0/16,size=24`, dockerd's `--default-address-pool`.
pub fn parse_pool(s: &str) -> Result<AddressPool, NetworkConfigError> {
    let (mut base, mut size) = (None, None);
    for kv in s.split(',') {
        match kv.split_once('=') {
            Some(("base", v)) => base = Some(v.parse::<IpNet>().map_err(|e| invalid("default address pool", s, e))?),
            Some(("size", v)) => size = Some(v.parse::<u8>().map_err(|e| invalid("default address pool", s, e))?),
            _ => return Err(invalid("default address pool", s, "want base=CIDR,size=N")),
        }
    }
    match (base, size) {
        (Some(base), Some(size)) if size >= base.prefix_len() && size <= base.max_prefix_len() => Ok(AddressPool { base: base.trunc(), size }),
        (Some(_), Some(_)) => Err(invalid("default address pool", s, "size must be between the base's prefix length and the address length")),
        _ => Err(invalid("default address pool", s, "want base=CIDR,size=N")),
    }
}

impl NetworkOptions {
    /// Flags over the config file over defaults.
    pub fn resolve(flags: &NetworkFlags, file: &FileConfig) -> Result<NetworkOptions, NetworkConfigError> {
        let d = NetworkOptions::default();
        let bridge = flags.bridge.clone().or(file.bridge.clone()).unwrap_or(d.bridge);
        if bridge.is_empty() || bridge.len() > 15 {
            return Err(NetworkConfigError::Bridge(bridge));
        }
        let cidr = |what: &'static str, v: Option<&String>| -> Result<Option<IpNet>, NetworkConfigError> {
            v.filter(|v| !v.is_empty()).map(|v| v.parse::<IpNet>().map_err(|e| invalid(what, v, e))).transpose()
        };
        let pools = if !flags.default_address_pool.is_empty() {
            flags.default_address_pool.iter().map(|p| parse_pool(p)).collect::<Result<Vec<_>, _>>()?
        } else {
            file.default_address_pools.clone().filter(|p| !p.is_empty()).unwrap_or(d.pools)
        };
        let dns_strings: Vec<String> = if flags.dns.is_empty() { file.dns.clone().unwrap_or_default() } else { flags.dns.clone() };
        let dns = dns_strings.iter().map(|s| s.parse::<IpAddr>().map_err(|e| invalid("dns", s, e))).collect::<Result<Vec<_>, _>>()?;
        let prefix = flags.network_prefix.clone().or(file.network_prefix.clone()).unwrap_or(d.prefix);
        if prefix.is_empty() || prefix.len() > 9 || !prefix.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(NetworkConfigError::Prefix(prefix));
        }
        Ok(NetworkOptions {
            bridge,
            bip: cidr("bip", flags.bip.as_ref().or(file.bip.as_ref()))?,
            fixed_cidr: cidr("fixed-cidr", flags.fixed_cidr.as_ref().or(file.fixed_cidr.as_ref()))?,
            pools,
            mtu: flags.mtu.or(file.mtu),
            icc: flags.icc.or(file.icc).unwrap_or(true),
            ip_masq: flags.ip_masq.or(file.ip_masq).unwrap_or(true),
            dns,
            prefix,
            uninstall: flags.uninstall,
        })
    }

    /// berth-network's configuration under the daemon's roots.
    pub fn controller_config(&self, data_root: &std::path::Path, exec_root: &std::path::Path) -> berth_network::Config {
        let mut cfg = berth_network::Config::new(data_root, exec_root);
        cfg.nft_table = self.prefix.clone();
        cfg.link_prefix = self.prefix.clone();
        cfg.default_bridge.device = self.bridge.clone();
        cfg.default_bridge.bip = self.bip;
        cfg.default_bridge.fixed_cidr = self.fixed_cidr;
        cfg.default_bridge.mtu = self.mtu;
        cfg.default_bridge.icc = self.icc;
        cfg.default_bridge.masquerade = self.ip_masq;
        cfg.address_pools = self.pools.clone();
        cfg
    }
}

/// The daemon's networking: the controller, the embedded DNS, and the
/// host's resolv.conf as read at start.
pub struct Networking {
    pub ctl: Arc<Controller>,
    pub dns: DnsServer,
    host_resolv: ResolvConf,
    daemon_dns: Vec<IpAddr>,
}

impl Networking {
    /// Open the controller (reads records, touches nothing in the kernel).
    pub fn open(config: &crate::config::Config) -> Result<Networking, NetworkError> {
        let opts = &config.network;
        let cfg = opts.controller_config(&config.data_root, &config.exec_root);
        let nft = berth_network::system_nft();
        let ctl = Arc::new(Controller::open(cfg, nft.clone(), Box::new(BindProbe))?);
        let host_resolv = files::parse_resolv_conf(&std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default());
        let settings = DnsSettings { servers: opts.dns.clone(), ..Default::default() };
        let upstreams: Vec<SocketAddr> = files::upstream_servers(&host_resolv, &settings).into_iter().map(|ip| SocketAddr::new(ip, 53)).collect();
        let dns = DnsServer::new(ctl.dns_table(), upstreams, nft, &opts.prefix);
        Ok(Networking { ctl, dns, host_resolv, daemon_dns: opts.dns.clone() })
    }
}

impl Networking {
    /// What builds give their RUN steps: an endpoint on the default bridge.
    pub fn build_network(&self) -> Arc<BuildNetwork> {
        Arc::new(BuildNetwork { ctl: self.ctl.clone(), host_resolv: self.host_resolv.clone(), daemon_dns: self.daemon_dns.clone() })
    }
}

/// RUN steps of builds on the default bridge, as docker's classic builder
/// runs its step containers: a sandbox and an endpoint for the step's
/// container, `/etc/hosts` with its address, the default bridge's
/// resolv.conf; all of it gone when the step ends. The sandbox is keyed by
/// the step container's id: a daemon killed mid-build tears it down at its
/// next start (no shim owns it).
pub struct BuildNetwork {
    ctl: Arc<Controller>,
    host_resolv: ResolvConf,
    daemon_dns: Vec<IpAddr>,
}

impl berth_build::exec::StepNetwork for BuildNetwork {
    fn attach(&self, id: &str, hostname: &str) -> Result<berth_build::exec::StepSandbox, String> {
        let sb = self.ctl.create_sandbox(id, SandboxMode::New).map_err(|e| e.to_string())?;
        let spec = EndpointSpec { container_name: hostname.to_owned(), ..Default::default() };
        let ep = self.ctl.connect(id, "bridge", &spec).map_err(|e| e.to_string())?;
        let hosts = files::hosts_file(&HostsSpec {
            hostname: hostname.to_owned(),
            addresses: ep.ipv4.map(|a| a.addr()).into_iter().collect(),
            ipv6: true,
            ..Default::default()
        });
        let settings = DnsSettings { servers: self.daemon_dns.clone(), ..Default::default() };
        let resolv_conf = files::resolv_conf(&self.host_resolv, &settings, false, ep.ipv6.is_some());
        Ok(berth_build::exec::StepSandbox { netns: sb.netns, hosts, resolv_conf })
    }

    fn detach(&self, id: &str) {
        if let Err(e) = self.ctl.teardown(id) {
            tracing::warn!(container = %id, "build step network teardown: {e}");
        }
    }
}

/// `berthd --uninstall-network`: remove what berth set up on the host.
pub fn uninstall(config: &crate::config::Config) -> Result<(), String> {
    let n = Networking::open(config).map_err(|e| e.to_string())?;
    n.ctl.uninstall().map_err(|e| e.to_string())
}

pub fn net_err(e: NetworkError) -> ApiError {
    ApiError::new(e.kind(), e.to_string())
}

fn teardown_err(e: TeardownError) -> ApiError {
    ApiError::new(e.kind(), e.to_string())
}

/// How a container is networked, from `HostConfig.NetworkMode`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    None,
    Host,
    Container(String),
    /// The default bridge or a user-defined network (its name or id).
    Network(String),
}

impl Mode {
    pub fn of(c: &Container) -> Mode {
        Mode::parse(c.host_config.network_mode.as_deref().unwrap_or(""))
    }

    pub fn parse(mode: &str) -> Mode {
        match mode {
            "none" => Mode::None,
            "host" => Mode::Host,
            "" | "default" | "bridge" => Mode::Network("bridge".into()),
            m => match m.strip_prefix("container:") {
                Some(other) => Mode::Container(other.to_owned()),
                None => Mode::Network(m.to_owned()),
            },
        }
    }
}

/// What a started container's networking gives its bundle.
pub struct ContainerNet {
    /// The namespace file to join (None: host's, or the joined container's
    /// by pid as the spec builder does).
    pub netns: Option<PathBuf>,
    pub hosts: String,
    pub resolv: String,
}

/// The endpoints a new container's record starts with: docker's
/// `NetworkingConfig.EndpointsConfig`, or the network mode's network.
pub fn initial_endpoints(mode: &Mode, config: Option<&HashMap<String, EndpointSettings>>) -> BTreeMap<String, EndpointSettings> {
    let mut out: BTreeMap<String, EndpointSettings> = BTreeMap::new();
    let key = match mode {
        Mode::None => "none".to_owned(),
        Mode::Host => "host".to_owned(),
        Mode::Container(_) => return out,
        Mode::Network(n) => n.clone(),
    };
    for (name, ep) in config.into_iter().flatten() {
        let name = if matches!(name.as_str(), "default" | "") { "bridge".to_owned() } else { name.clone() };
        out.insert(name, ep.clone());
    }
    out.entry(key).or_default();
    out
}

fn endpoint_spec(name: &str, ep: &EndpointSettings, links: &[(String, String)]) -> ApiResult<EndpointSpec> {
    let ip = |s: Option<&String>, what: &str| -> ApiResult<Option<IpAddr>> {
        s.filter(|s| !s.is_empty()).map(|s| s.parse::<IpAddr>().map_err(|_| ApiError::invalid(format!("invalid {what} address: {s}")))).transpose()
    };
    let ipam = ep.ipam_config.clone().unwrap_or_default();
    Ok(EndpointSpec {
        container_name: name.to_owned(),
        ipv4: ip(ipam.ipv4_address.as_ref(), "IPv4")?,
        ipv6: ip(ipam.ipv6_address.as_ref(), "IPv6")?,
        aliases: ep.aliases.clone().unwrap_or_default(),
        links: links.to_vec(),
        mac: ep.mac_address.clone().filter(|m| !m.is_empty()),
    })
}

/// Where the embedded DNS forwards the names a container's networks do not
/// own: its `--dns` servers (none: the daemon's upstreams).
fn dns_upstreams(c: &Container) -> Vec<SocketAddr> {
    c.host_config.dns.iter().flatten().filter_map(|s| s.parse::<IpAddr>().ok()).map(|ip| SocketAddr::new(ip, 53)).collect()
}

/// `--link name:alias` pairs (alias defaults to the name).
pub fn parse_links(links: &[String]) -> Vec<(String, String)> {
    links
        .iter()
        .map(|l| {
            let l = l.trim_start_matches('/');
            match l.split_once(':') {
                Some((t, a)) => (t.trim_start_matches('/').to_owned(), a.rsplit('/').next().unwrap_or(a).to_owned()),
                None => (l.to_owned(), l.to_owned()),
            }
        })
        .collect()
}

impl Daemon {
    /// Blocking controller work, off the async threads.
    pub(crate) async fn net<T: Send + 'static>(&self, f: impl FnOnce(&Controller) -> Result<T, NetworkError> + Send + 'static) -> ApiResult<T> {
        let ctl = self.network.ctl.clone();
        tokio::task::spawn_blocking(move || f(&ctl)).await?.map_err(net_err)
    }

    /// At daemon start, before containers are restored: bring the bridges
    /// and the firewall back, remove what a crash left, serve DNS again for
    /// the containers still running.
    pub async fn reconcile_network(&self) {
        let mut alive = HashSet::new();
        let mut own_dns = HashMap::new();
        for h in self.containers.all() {
            let c = h.lock().await;
            if (c.state.status.is_alive() || c.state.status == crate::containers::state::Status::Restarting)
                && crate::shim::connect(&self.shim_dir(&c.id)).await.is_ok()
            {
                alive.insert(c.id.clone());
                own_dns.insert(c.id.clone(), dns_upstreams(&c));
            }
        }
        let ctl = self.network.ctl.clone();
        let keep = alive.clone();
        let report = tokio::task::spawn_blocking(move || ctl.reconcile(&|id| keep.contains(id))).await;
        match report {
            Ok(r) => {
                for e in &r.errors {
                    tracing::warn!("network reconcile: {e}");
                }
                if !r.sandboxes_removed.is_empty() || !r.links_removed.is_empty() || !r.netns_removed.is_empty() {
                    tracing::info!(sandboxes = ?r.sandboxes_removed, links = ?r.links_removed, netns = ?r.netns_removed, "network reconcile removed leftovers");
                }
            }
            Err(e) => tracing::warn!("network reconcile: {e}"),
        }
        for id in alive {
            if self.network.ctl.needs_dns(&id)
                && let Some(sb) = self.network.ctl.sandbox(&id)
                && let Err(e) = self.network.dns.attach_with(&id, &sb.netns, own_dns.remove(&id).unwrap_or_default()).await
            {
                tracing::warn!(container = %id, "embedded DNS: {e}");
            }
        }
    }

    /// Check a new container's networks: they exist, and `--ip`, aliases
    /// and links are allowed where they are given.
    pub async fn check_container_networks(&self, hc: &berth_api::models::HostConfig, endpoints: &BTreeMap<String, EndpointSettings>) -> ApiResult<()> {
        let mode = Mode::parse(hc.network_mode.as_deref().unwrap_or(""));
        if let Mode::Container(other) = &mode {
            self.container(other)?;
            if hc.port_bindings.as_ref().is_some_and(|p| !p.is_empty()) || hc.publish_all_ports == Some(true) {
                return Err(ApiError::invalid("conflicting options: port publishing and the container type network mode"));
            }
        }
        if matches!(mode, Mode::Host | Mode::None) && hc.links.as_ref().is_some_and(|l| !l.is_empty()) {
            return Err(ApiError::invalid("conflicting options: links and the network mode"));
        }
        for (name, ep) in endpoints {
            if matches!(name.as_str(), "none" | "host") {
                continue;
            }
            let view = self.network.ctl.network(name).map_err(net_err)?;
            let ipam = ep.ipam_config.clone().unwrap_or_default();
            let static_ip = ipam.ipv4_address.as_deref().is_some_and(|s| !s.is_empty()) || ipam.ipv6_address.as_deref().is_some_and(|s| !s.is_empty());
            if view.network.predefined && static_ip {
                return Err(net_err(NetworkError::StaticIpOnDefault));
            }
            if view.network.predefined && ep.aliases.as_ref().is_some_and(|a| !a.is_empty()) {
                return Err(ApiError::invalid("network-scoped alias is supported only for containers in user defined networks"));
            }
            endpoint_spec("", ep, &[])?;
        }
        for (target, _) in parse_links(hc.links.as_deref().unwrap_or(&[])) {
            self.container(&target).map_err(|_| ApiError::invalid(format!("could not get container for {target}")))?;
        }
        Ok(())
    }

    /// At container start, before the bundle: the sandbox, an endpoint per
    /// network (the mode's network first), published ports, embedded DNS,
    /// and the texts of /etc/hosts and /etc/resolv.conf. On an error
    /// nothing stays.
    pub async fn setup_container_network(&self, c: &Container) -> ApiResult<ContainerNet> {
        let mode = Mode::of(c);
        let hostname = c.config.hostname.clone().filter(|h| !h.is_empty()).unwrap_or_else(|| c.id[..12].to_owned());
        match &mode {
            Mode::Host => {
                let hosts = std::fs::read_to_string("/etc/hosts").unwrap_or_default();
                let resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
                return Ok(ContainerNet { netns: None, hosts: self.with_extra_hosts(c, hosts, None)?, resolv });
            }
            Mode::Container(other) => {
                let o = self.container(other)?;
                let o = o.lock().await;
                let (_, hosts, resolv) = crate::containers::oci::etc_files(&self.containers.container_dir(&o.id));
                return Ok(ContainerNet {
                    netns: None,
                    hosts: std::fs::read_to_string(hosts).unwrap_or_default(),
                    resolv: std::fs::read_to_string(resolv).unwrap_or_default(),
                });
            }
            _ => {}
        }
        let id = c.id.clone();
        self.net({
            let id = id.clone();
            move |ctl| {
                // A sandbox a crash left for this container goes first.
                if ctl.sandbox(&id).is_some() {
                    let _ = ctl.teardown(&id);
                }
                ctl.create_sandbox(&id, SandboxMode::New)
            }
        })
        .await?;
        match self.connect_all(c, &mode, hostname).await {
            Ok(net) => Ok(net),
            Err(e) => {
                self.teardown_container_network(&id).await;
                Err(e)
            }
        }
    }

    async fn connect_all(&self, c: &Container, mode: &Mode, hostname: String) -> ApiResult<ContainerNet> {
        let id = c.id.clone();
        let mut link_hosts = Vec::new();
        if let Mode::Network(first) = mode {
            let links = parse_links(c.host_config.links.as_deref().unwrap_or(&[]));
            let mut order: Vec<(String, EndpointSettings)> = Vec::new();
            let eps = &c.endpoints;
            order.push((first.clone(), eps.get(first).cloned().unwrap_or_default()));
            for (n, ep) in eps {
                if n != first && !matches!(n.as_str(), "none" | "host") {
                    order.push((n.clone(), ep.clone()));
                }
            }
            for (net, ep) in order {
                let predefined = self.network.ctl.network(&net).map_err(net_err)?.network.predefined;
                let spec = endpoint_spec(&c.name, &ep, if predefined { &[] } else { &links })?;
                let (id2, net2) = (id.clone(), net.clone());
                self.net(move |ctl| ctl.connect(&id2, &net2, &spec)).await?;
            }
            // Legacy links on the default bridge: the target must run;
            // its address goes into /etc/hosts.
            if let Some((_, bridge_ep)) = self.network.ctl.sandbox(&id).and_then(|sb| sb.endpoints.first().cloned().map(|e| (sb, e)))
                && self.network.ctl.network(&bridge_ep.network_id).is_ok_and(|v| v.network.predefined)
            {
                for (target, alias) in links {
                    let h = self.container(&target).map_err(|_| ApiError::invalid(format!("could not get container for {target}")))?;
                    let t = h.lock().await;
                    if !t.state.status.is_alive() {
                        return Err(ApiError::invalid(format!("cannot link to a non running container: /{} AS /{}/{alias}", t.name, c.name)));
                    }
                    let ip = self
                        .network
                        .ctl
                        .sandbox(&t.id)
                        .and_then(|sb| sb.endpoints.iter().find(|e| e.network_id == bridge_ep.network_id).and_then(|e| e.ipv4))
                        .ok_or_else(|| ApiError::invalid(format!("cannot link to /{}: it is not on the default bridge network", t.name)))?;
                    let mut names = vec![alias.clone()];
                    for n in [t.name.clone(), t.id[..12].to_owned()] {
                        if !names.contains(&n) {
                            names.push(n);
                        }
                    }
                    link_hosts.push((ip.addr(), names));
                }
            }
            let hc = &c.host_config;
            let exposed: Vec<String> = c.config.exposed_ports.clone().unwrap_or_default();
            let bindings: BTreeMap<String, Vec<(String, String)>> = hc
                .port_bindings
                .clone()
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k, v.unwrap_or_default().into_iter().map(|b| (b.host_ip.unwrap_or_default(), b.host_port.unwrap_or_default())).collect()))
                .collect();
            let reqs = berth_network::ports::requests_from_bindings(&bindings, &exposed, hc.publish_all_ports == Some(true))
                .map_err(|e| ApiError::new(e.kind(), e.to_string()))?;
            if !reqs.is_empty() {
                let id2 = id.clone();
                self.net(move |ctl| ctl.publish(&id2, &reqs)).await?;
            }
        }
        let sb = self.network.ctl.sandbox(&id).ok_or_else(|| net_err(NetworkError::NoSandbox { container: id.clone() }))?;
        let embedded = self.network.ctl.needs_dns(&id);
        if embedded {
            self.network.dns.attach_with(&id, &sb.netns, dns_upstreams(c)).await.map_err(|e| ApiError::new(e.kind(), e.to_string()))?;
        }
        let hosts = files::hosts_file(&HostsSpec {
            hostname,
            domainname: c.config.domainname.clone().filter(|d| !d.is_empty()),
            addresses: sb.endpoints.iter().filter_map(|e| e.ipv4.map(|a| a.addr())).collect(),
            extra_hosts: Vec::new(),
            links: link_hosts,
            ipv6: true,
        });
        let gateway = sb.endpoints.first().and_then(|e| e.gateway4);
        let hosts = self.with_extra_hosts(c, hosts, gateway)?;
        let hc = &c.host_config;
        let settings = DnsSettings {
            servers: {
                let given = hc.dns.clone().unwrap_or_default();
                let parsed = given.iter().map(|s| s.parse::<IpAddr>().map_err(|_| ApiError::invalid(format!("{s} is not an ip address")))).collect::<ApiResult<Vec<_>>>()?;
                if parsed.is_empty() { self.network.daemon_dns.clone() } else { parsed }
            },
            search: hc.dns_search.clone().unwrap_or_default(),
            options: hc.dns_options.clone().unwrap_or_default(),
        };
        let ipv6 = sb.endpoints.iter().any(|e| e.ipv6.is_some());
        let resolv = files::resolv_conf(&self.network.host_resolv, &settings, embedded, ipv6);
        Ok(ContainerNet { netns: Some(sb.netns.clone()), hosts, resolv })
    }

    /// `--add-host` lines after the first line (localhost), as docker puts them.
    fn with_extra_hosts(&self, c: &Container, hosts: String, gateway: Option<IpAddr>) -> ApiResult<String> {
        let extra = c.host_config.extra_hosts.clone().unwrap_or_default();
        if extra.is_empty() {
            return Ok(hosts);
        }
        let gateway = gateway.or_else(|| {
            self.network.ctl.network("bridge").ok().and_then(|v| v.network.subnets.first().and_then(|s| s.gateway))
        });
        let mut lines = String::new();
        for e in &extra {
            let (name, ip) = files::parse_add_host(e, gateway).map_err(|e| ApiError::new(e.kind(), e.to_string()))?;
            lines.push_str(&format!("{ip}\t{name}\n"));
        }
        Ok(format!("{hosts}{lines}"))
    }

    /// At container exit (or a failed start): DNS off, sandbox gone.
    pub async fn teardown_container_network(&self, id: &str) {
        self.network.dns.detach(id);
        let ctl = self.network.ctl.clone();
        let id2 = id.to_owned();
        match tokio::task::spawn_blocking(move || ctl.teardown(&id2)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(container = %id, "network teardown: {}", teardown_err(e)),
            Err(e) => tracing::warn!(container = %id, "network teardown: {e}"),
        }
    }

    /// `NetworkSettings` as docker's inspect shows them.
    pub fn network_settings(&self, c: &Container) -> Value {
        let exposed: Vec<String> = c.config.exposed_ports.clone().unwrap_or_default();
        let running = c.state.status.is_alive();
        let live = if running { self.network.ctl.settings_json(&c.id, &exposed) } else { None };
        let mut networks = serde_json::Map::new();
        for (name, ep) in &c.endpoints {
            let mut v = json!({
                "IPAMConfig": ep.ipam_config.as_ref().filter(|i| i.ipv4_address.is_some() || i.ipv6_address.is_some()).map(|i| json!({
                    "IPv4Address": i.ipv4_address, "IPv6Address": i.ipv6_address})),
                "Links": ep.links, "Aliases": ep.aliases, "MacAddress": ep.mac_address.clone().unwrap_or_default(),
                "DriverOpts": null, "GwPriority": 0,
                "NetworkID": self.network.ctl.network(name).map(|v| v.network.id).unwrap_or_default(),
                "EndpointID": "", "Gateway": "", "IPAddress": "", "IPPrefixLen": 0, "IPv6Gateway": "",
                "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0, "DNSNames": null,
            });
            if let Some(l) = live.as_ref().and_then(|l| l["Networks"].get(name)) {
                let aliases = v["Aliases"].clone();
                v = l.clone();
                if v["Aliases"].is_null() {
                    v["Aliases"] = aliases;
                }
            }
            networks.insert(name.clone(), v);
        }
        let ports = live.as_ref().map(|l| l["Ports"].clone()).unwrap_or_else(|| {
            if running { json!(exposed.iter().map(|k| (k.clone(), Value::Null)).collect::<serde_json::Map<_, _>>()) } else { json!({}) }
        });
        let bridge = networks.get("bridge").cloned().unwrap_or(Value::Null);
        let field = |k: &str, d: Value| bridge.get(k).cloned().unwrap_or(d);
        json!({
            "Bridge": "",
            "SandboxID": live.as_ref().map(|l| l["SandboxID"].clone()).unwrap_or(json!("")),
            "SandboxKey": live.as_ref().map(|l| l["SandboxKey"].clone()).unwrap_or(json!("")),
            "Ports": ports,
            "HairpinMode": false,
            "LinkLocalIPv6Address": "", "LinkLocalIPv6PrefixLen": 0,
            "SecondaryIPAddresses": null, "SecondaryIPv6Addresses": null,
            "EndpointID": field("EndpointID", json!("")),
            "Gateway": field("Gateway", json!("")),
            "GlobalIPv6Address": field("GlobalIPv6Address", json!("")),
            "GlobalIPv6PrefixLen": field("GlobalIPv6PrefixLen", json!(0)),
            "IPAddress": field("IPAddress", json!("")),
            "IPPrefixLen": field("IPPrefixLen", json!(0)),
            "IPv6Gateway": field("IPv6Gateway", json!("")),
            "MacAddress": field("MacAddress", json!("")),
            "Networks": networks,
        })
    }

    /// `Ports` of a `GET /containers/json` row.
    pub fn port_summary(&self, c: &Container) -> Value {
        let mut out = Vec::new();
        let sb = if c.state.status.is_alive() { self.network.ctl.sandbox(&c.id) } else { None };
        let published: Vec<_> = sb.map(|s| s.ports).unwrap_or_default();
        for m in &published {
            out.push(json!({"IP": m.host_ip_string(), "PrivatePort": m.container_port, "PublicPort": m.host_port, "Type": m.proto.as_str()}));
        }
        for key in c.config.exposed_ports.clone().unwrap_or_default() {
            if let Ok((port, proto)) = berth_network::ports::parse_port_key(&key)
                && !published.iter().any(|m| m.container_port == port && m.proto == proto)
            {
                out.push(json!({"PrivatePort": port, "Type": proto.as_str()}));
            }
        }
        Value::Array(out)
    }

    /// `POST /networks/{id}/connect`: live on a running container (its
    /// /etc/hosts rewritten in place), recorded for a stopped one.
    pub async fn connect_container(&self, network: &str, container: &str, ep: EndpointSettings) -> ApiResult<()> {
        let view = self.network.ctl.network(network).map_err(net_err)?;
        let name = view.network.name.clone();
        let h = self.container(container)?;
        let mut c = h.lock().await;
        let mode = Mode::of(&c);
        if matches!(mode, Mode::Host | Mode::None | Mode::Container(_)) {
            return Err(ApiError::invalid("container cannot be disconnected from host network or connected to host network"));
        }
        if c.endpoints.contains_key(&name) {
            return Err(ApiError::new(berth_api::ErrorKind::Forbidden, format!("endpoint with name {} already exists in network {name}", c.name)));
        }
        let mut probe = BTreeMap::new();
        probe.insert(name.clone(), ep.clone());
        self.check_container_networks(&c.host_config, &probe).await?;
        if c.state.status.is_alive() {
            let spec = endpoint_spec(&c.name, &ep, &[])?;
            let (id, n2) = (c.id.clone(), name.clone());
            self.net(move |ctl| ctl.connect(&id, &n2, &spec)).await?;
            if self.network.ctl.needs_dns(&c.id)
                && !self.network.dns.attached().contains(&c.id)
                && let Some(sb) = self.network.ctl.sandbox(&c.id)
            {
                self.network.dns.attach_with(&c.id, &sb.netns, dns_upstreams(&c)).await.map_err(|e| ApiError::new(e.kind(), e.to_string()))?;
            }
            self.rewrite_hosts(&c);
        }
        c.endpoints.insert(name.clone(), ep);
        self.containers.save(&c)?;
        self.events.publish("network", "connect", &view.network.id, &[("container", &c.id), ("name", &name), ("type", view.network.driver.as_str())]);
        Ok(())
    }

    /// `POST /networks/{id}/disconnect`.
    pub async fn disconnect_container(&self, network: &str, container: &str, force: bool) -> ApiResult<()> {
        let view = self.network.ctl.network(network).map_err(net_err)?;
        let name = view.network.name.clone();
        let h = match self.container(container) {
            Ok(h) => h,
            Err(e) if force => {
                // docker's force: drop an endpoint of a container that is gone.
                let id = container.to_owned();
                self.net(move |ctl| ctl.disconnect(&id, &name)).await.map_err(|_| e)?;
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        let mut c = h.lock().await;
        if !c.endpoints.contains_key(&name) {
            return Err(ApiError::new(berth_api::ErrorKind::Forbidden, format!("container {} is not connected to network {name}", c.id)));
        }
        if c.state.status.is_alive() && self.network.ctl.sandbox(&c.id).is_some_and(|sb| sb.endpoints.iter().any(|e| e.network_id == view.network.id)) {
            let (id, n2) = (c.id.clone(), name.clone());
            self.net(move |ctl| ctl.disconnect(&id, &n2)).await?;
            if !self.network.ctl.needs_dns(&c.id) {
                self.network.dns.detach(&c.id);
            }
            self.rewrite_hosts(&c);
        }
        c.endpoints.remove(&name);
        self.containers.save(&c)?;
        self.events.publish("network", "disconnect", &view.network.id, &[("container", &c.id), ("name", &name), ("type", view.network.driver.as_str())]);
        Ok(())
    }

    /// `docker rm --link /parent/alias`: remove a legacy link of `parent`.
    /// The link is gone from the parent's record (its next start does not
    /// make it), and a running parent's /etc/hosts loses the link's line.
    /// The linked container itself stays.
    pub async fn remove_link(&self, name: &str) -> ApiResult<()> {
        let full = format!("/{}", name.trim_start_matches('/'));
        let (parent, alias) = full.rsplit_once('/').expect("starts with /");
        if parent.is_empty() {
            self.container(alias)?;
            return Err(ApiError::internal("Conflict, cannot remove the default link name of the container"));
        }
        let h = self.container(parent.trim_start_matches('/')).map_err(|_| crate::containers::no_such(&full))?;
        let mut c = h.lock().await;
        let links = c.host_config.links.clone().unwrap_or_default();
        let kept: Vec<String> = links.iter().filter(|l| parse_links(std::slice::from_ref(*l)).first().is_none_or(|(_, a)| a != alias)).cloned().collect();
        if kept.len() == links.len() {
            return Err(crate::containers::no_such(&full));
        }
        let before = c.host_config.links.replace(kept);
        if let Err(e) = self.containers.save(&c) {
            c.host_config.links = before;
            return Err(e.into());
        }
        if c.state.status.is_alive() {
            let (_, hosts, _) = crate::containers::oci::etc_files(&self.containers.container_dir(&c.id));
            if let Ok(old) = std::fs::read_to_string(&hosts) {
                let link_line = |l: &str| l.split('\t').nth(1).and_then(|n| n.split(' ').next()) == Some(alias);
                let text: String = old.lines().filter(|l| !link_line(l)).map(|l| format!("{l}\n")).collect();
                // In place: the file is bind mounted.
                if let Err(e) = std::fs::write(&hosts, text) {
                    tracing::warn!(container = %c.id, "rewrite /etc/hosts: {e}");
                }
            }
        }
        Ok(())
    }

    /// After a live connect/disconnect: the container's own lines of
    /// /etc/hosts follow its addresses. Written in place: the file is bind
    /// mounted, a rename would not reach the container.
    fn rewrite_hosts(&self, c: &Container) {
        let Some(sb) = self.network.ctl.sandbox(&c.id) else { return };
        let (_, hosts, _) = crate::containers::oci::etc_files(&self.containers.container_dir(&c.id));
        let Ok(old) = std::fs::read_to_string(&hosts) else { return };
        let hostname = c.config.hostname.clone().filter(|h| !h.is_empty()).unwrap_or_else(|| c.id[..12].to_owned());
        let own = |l: &str| l.split('\t').nth(1).is_some_and(|n| n.split(' ').any(|w| w == hostname));
        let mut text: String = old.lines().filter(|l| !own(l)).map(|l| format!("{l}\n")).collect();
        for e in &sb.endpoints {
            if let Some(a) = e.ipv4 {
                text.push_str(&format!("{}\t{hostname}\n", a.addr()));
            }
        }
        if let Err(e) = std::fs::write(&hosts, text) {
            tracing::warn!(container = %c.id, "rewrite /etc/hosts: {e}");
        }
    }
}

/// An `EndpointSettings` from `network connect`'s body.
pub fn endpoint_from_body(v: &Value) -> ApiResult<EndpointSettings> {
    let cfg = v.get("EndpointConfig").cloned().unwrap_or(Value::Null);
    if cfg.is_null() {
        return Ok(EndpointSettings::default());
    }
    let mut ep: EndpointSettings = serde_json::from_value(cfg).map_err(|e| ApiError::invalid(format!("invalid JSON: {e}")))?;
    if let Some(i) = &ep.ipam_config
        && i.ipv4_address.as_deref().unwrap_or("").is_empty()
        && i.ipv6_address.as_deref().unwrap_or("").is_empty()
    {
        ep.ipam_config = None::<EndpointIpamConfig>;
    }
    Ok(ep)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_parse() {
        assert_eq!(Mode::parse(""), Mode::Network("bridge".into()));
        assert_eq!(Mode::parse("default"), Mode::Network("bridge".into()));
        assert_eq!(Mode::parse("none"), Mode::None);
        assert_eq!(Mode::parse("container:web"), Mode::Container("web".into()));
        assert_eq!(Mode::parse("front"), Mode::Network("front".into()));
    }

    #[test]
    fn links_and_pools_parse() {
        assert_eq!(parse_links(&["db:data".into(), "/web".into(), "/db:/me/data".into()]), vec![
            ("db".to_string(), "data".to_string()),
            ("web".into(), "web".into()),
            ("db".into(), "data".into())
        ]);
        let p = parse_pool("base=10.10.0.0/16,size=24").unwrap();
        assert_eq!((p.base.to_string(), p.size), ("10.10.0.0/16".into(), 24));
        assert!(parse_pool("base=10.10.0.0/16,size=8").unwrap_err().to_string().contains("size must be"));
        assert!(parse_pool("10.10.0.0/16").is_err());
    }

    #[test]
    fn options_from_flags_over_file() {
        let file: FileConfig = serde_json::from_str(
            r#"{"bridge":"br9","bip":"10.5.0.1/24","default-address-pools":[{"base":"10.6.0.0/16","size":24}],"network-prefix":"bt9"}"#,
        )
        .unwrap();
        let o = NetworkOptions::resolve(&NetworkFlags::default(), &file).unwrap();
        assert_eq!(o.bridge, "br9");
        assert_eq!(o.bip.unwrap().to_string(), "10.5.0.1/24");
        assert_eq!(o.pools[0].size, 24);
        assert_eq!(o.prefix, "bt9");
        let flags = NetworkFlags { bridge: Some("br8".into()), network_prefix: Some("toolongprefix".into()), ..Default::default() };
        assert!(NetworkOptions::resolve(&flags, &file).unwrap_err().to_string().contains("network prefix"));
        let flags = NetworkFlags { bridge: Some("br8".into()), ..Default::default() };
        assert_eq!(NetworkOptions::resolve(&flags, &file).unwrap().bridge, "br8");
    }

    #[test]
    fn initial_endpoints_follow_the_mode() {
        let m = initial_endpoints(&Mode::Network("bridge".into()), None);
        assert_eq!(m.keys().collect::<Vec<_>>(), ["bridge"]);
        let mut cfg = HashMap::new();
        cfg.insert("front".to_string(), EndpointSettings { aliases: Some(vec!["web".into()]), ..Default::default() });
        cfg.insert("back".to_string(), EndpointSettings::default());
        let m = initial_endpoints(&Mode::Network("front".into()), Some(&cfg));
        assert_eq!(m.keys().collect::<Vec<_>>(), ["back", "front"]);
        assert!(initial_endpoints(&Mode::Container("x".into()), Some(&cfg)).is_empty());
    }
}
