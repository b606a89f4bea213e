//! [`Controller`]: the one object the daemon holds for networking.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use berth_api::ErrorKind;
use ipnet::IpNet;
use rand::Rng;

use crate::dns::{DnsEndpoint, DnsNetwork, DnsRequester, DnsTable};
use crate::firewall::{BridgeRules, FirewallError, Load, Nft, PortRule, render_delete, render_host};
use crate::ipam::{self, AddressPool, IpamError, SubnetAllocator, SubnetConfig};
use crate::model::{Driver, Endpoint, EndpointSpec, Network, NetworkCreate, NetworkView, Sandbox, SandboxMode, opts};
use crate::netlink::{IpvlanMode, MacvlanMode, Netlink, NetlinkError, SubKind};
use crate::netns::{self, Netns, NetnsError};
use crate::ports::{PortAllocator, PortError, PortMapping, PortProbe, PortRequest};
use crate::store::{RecordDir, StoreError};

/// Errors of the controller's operations, with docker's wording where it
/// has one.
#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    #[error("network {name} not found")]
    NotFound { name: String },
    #[error("network with name {name} already exists")]
    NameExists { name: String },
    #[error("{name} is a pre-defined network and cannot be removed")]
    Predefined { name: String },
    #[error("error while removing network: network {name} id {id} has active endpoints")]
    ActiveEndpoints { name: String, id: String },
    #[error("plugin \"{driver}\" not found")]
    UnknownDriver { driver: String },
    #[error("invalid option {key}={value}: {reason}")]
    InvalidOption { key: String, value: String, reason: String },
    #[error("invalid {what} {value}: {reason}")]
    InvalidAddress { what: &'static str, value: String, reason: String },
    #[error("bridge name {name} is already used by network {network}")]
    BridgeInUse { name: String, network: String },
    #[error("user specified IP address is supported on user defined networks only")]
    StaticIpOnDefault,
    #[error("container {container} has no network sandbox")]
    NoSandbox { container: String },
    #[error("container {container} already has a network sandbox")]
    SandboxExists { container: String },
    #[error("endpoint with name {container} already exists in network {network}")]
    AlreadyConnected { container: String, network: String },
    #[error("container {container} is not connected to network {network}")]
    NotConnected { container: String, network: String },
    #[error("container {container} shares the network namespace of container {owner}: connect that container instead")]
    JoinedSandbox { container: String, owner: String },
    #[error("invalid MAC address {mac}")]
    InvalidMac { mac: String },
    #[error("container {container} has no endpoint on a bridge network to publish ports on")]
    NothingToPublish { container: String },
    #[error(transparent)]
    Ipam(#[from] IpamError),
    #[error("driver failed programming external connectivity on endpoint {endpoint}: {source}")]
    Ports { endpoint: String, source: PortError },
    #[error("{context}: {source}")]
    Netlink { context: String, source: NetlinkError },
    #[error(transparent)]
    Netns(#[from] NetnsError),
    #[error(transparent)]
    Firewall(#[from] FirewallError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("set {path}: {source}")]
    Sysctl { path: PathBuf, source: std::io::Error },
}

impl NetworkError {
    pub fn kind(&self) -> ErrorKind {
        use NetworkError::*;
        match self {
            NotFound { .. } | NoSandbox { .. } | UnknownDriver { .. } => ErrorKind::NotFound,
            NameExists { .. } | SandboxExists { .. } | BridgeInUse { .. } => ErrorKind::Conflict,
            Predefined { .. } | ActiveEndpoints { .. } | AlreadyConnected { .. } => ErrorKind::Forbidden,
            InvalidOption { .. } | InvalidAddress { .. } | StaticIpOnDefault | InvalidMac { .. } | NotConnected { .. } | JoinedSandbox { .. } | NothingToPublish { .. } => {
                ErrorKind::InvalidParameter
            }
            Ipam(e) => e.kind(),
            Ports { source, .. } => source.kind(),
            Netlink { source, .. } => source.kind(),
            Netns(e) => e.kind(),
            Firewall(e) => e.kind(),
            Store(e) => e.kind(),
            Sysctl { .. } => ErrorKind::Internal,
        }
    }
}

/// Every error a teardown met; it still removed everything else.
#[derive(Debug, thiserror::Error)]
#[error("network teardown of {subject}: {}", errors.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("; "))]
pub struct TeardownError {
    pub subject: String,
    pub errors: Vec<NetworkError>,
}

impl TeardownError {
    pub fn kind(&self) -> ErrorKind {
        ErrorKind::Internal
    }
}

/// What [`Controller::reconcile`] found and removed.
#[derive(Debug, Default)]
pub struct ReconcileReport {
    /// Sandboxes of containers that are gone, torn down.
    pub sandboxes_removed: Vec<String>,
    /// Links no record accounts for, deleted.
    pub links_removed: Vec<String>,
    /// Namespace files no record accounts for, removed.
    pub netns_removed: Vec<PathBuf>,
    /// Records that could not be read (left in place) and failures met.
    pub errors: Vec<String>,
}

/// The default `bridge` network, from the daemon's configuration.
#[derive(Debug, Clone)]
pub struct DefaultBridge {
    /// Bridge device (`berth0`; docker's `-b`).
    pub device: String,
    /// `--bip`: the bridge's address and prefix (`172.17.0.1/16`).
    pub bip: Option<IpNet>,
    /// `--fixed-cidr`: where container addresses come from.
    pub fixed_cidr: Option<IpNet>,
    /// `--mtu`.
    pub mtu: Option<u32>,
    /// `--icc`.
    pub icc: bool,
    /// `--ip-masq`.
    pub masquerade: bool,
}

impl Default for DefaultBridge {
    fn default() -> Self {
        DefaultBridge { device: "berth0".into(), bip: None, fixed_cidr: None, mtu: None, icc: true, masquerade: true }
    }
}

/// Where the controller keeps things and which names it uses. Two daemons
/// side by side need different roots, `nft_table`, `link_prefix` and
/// default bridge device.
#[derive(Debug, Clone)]
pub struct Config {
    /// The daemon's data root: records go to `<data_root>/network/`.
    pub data_root: PathBuf,
    /// The daemon's exec root: namespace files go to `<exec_root>/netns/`.
    pub exec_root: PathBuf,
    /// berth's nftables table (`berth`), on the host and in sandboxes.
    pub nft_table: String,
    /// Prefix of every link berth creates on the host: `<prefix>v<hex>`
    /// (host veth ends), `<prefix>b<hex>` (bridges of user-defined
    /// networks), `<prefix>m<hex>` (dummy parents). Reconcile deletes links
    /// of that form no record accounts for. At most 9 bytes.
    pub link_prefix: String,
    pub default_bridge: DefaultBridge,
    /// `default-address-pools`.
    pub address_pools: Vec<AddressPool>,
    /// `/proc/sys`, for the forwarding sysctls.
    pub proc_sys: PathBuf,
    /// Where sandbox records (endpoints, their addresses, published ports)
    /// are kept: `<exec_root>/network` by default. They describe the
    /// namespace files under the exec root and share their lifetime: they
    /// survive a daemon restart, and a reboot (which ends every sandbox)
    /// clears both together. On the tmpfs an exec root normally is, their
    /// fsyncs cost nothing, which matters on the container start path.
    /// Network records (the durable configuration) stay in the data root.
    pub sandbox_records: PathBuf,
}

impl Config {
    /// Production names under the given roots.
    pub fn new(data_root: &Path, exec_root: &Path) -> Config {
        Config {
            data_root: data_root.to_owned(),
            exec_root: exec_root.to_owned(),
            nft_table: "berth".into(),
            link_prefix: "berth".into(),
            default_bridge: DefaultBridge::default(),
            address_pools: ipam::default_pools(),
            proc_sys: PathBuf::from("/proc/sys"),
            sandbox_records: exec_root.join("network"),
        }
    }
}

struct State {
    networks: BTreeMap<String, Network>,
    sandboxes: BTreeMap<String, Sandbox>,
    ipam: HashMap<String, Vec<SubnetAllocator>>,
    ports: PortAllocator,
}

/// Networks, sandboxes, endpoints and published ports of one daemon.
///
/// Every method is blocking (netlink, `nft`, file writes): call them from
/// `spawn_blocking`. One lock serializes them; each takes well under a
/// millisecond of it except those that load firewall rules.
///
/// # Lifecycle, as the daemon calls it
///
/// At daemon start:
/// 1. [`Controller::open`]: reads the records, creates the default `bridge`
///    network's record if missing. Touches no kernel state.
/// 2. [`Controller::reconcile`] with the set of containers whose shims are
///    still alive: tears down the sandboxes of the others, brings back the
///    bridges, deletes links and namespace files nothing accounts for, and
///    reloads berth's nft table from the records (this also removes rules a
///    crash left behind).
/// 3. [`crate::DnsServer::new`] over [`Controller::dns_table`], then
///    [`crate::DnsServer::attach`] again for every running container that
///    [`Controller::needs_dns`].
///
/// `network create/rm/ls/inspect/prune`: [`Controller::create_network`],
/// [`Controller::remove_network`], [`Controller::networks`],
/// [`Controller::network`], [`Controller::prune`].
///
/// For each container start (docker sets networking up at start and tears
/// it down at stop; the addresses are not kept in between):
/// 1. [`Controller::create_sandbox`] (`SandboxMode::New`, or
///    `SandboxMode::Join(other)` for `--net container:other`; nothing for
///    `--net host`). Its `netns` path goes into the OCI spec as
///    `{"type": "network", "path": <netns>}`.
/// 2. [`Controller::connect`] for each network, the first one first (it
///    gives the default route). Nothing for `--net none`.
/// 3. [`Controller::publish`] with the `-p`/`-P` requests (from
///    [`crate::ports::requests_from_bindings`]): all ports or none, a taken
///    one fails with docker's message.
/// 4. If [`Controller::needs_dns`]: [`crate::DnsServer::attach`]
///    ([`crate::DnsServer::attach_with`] the container's `--dns` servers).
/// 5. Write `/etc/hosts` ([`crate::files::hosts_file`]) and
///    `/etc/resolv.conf` ([`crate::files::resolv_conf`], embedded when
///    `needs_dns`) from [`Controller::sandbox`]'s addresses.
/// 6. Start the container.
///
/// Live changes: [`Controller::connect`] / [`Controller::disconnect`] on a
/// running container's sandbox; [`Controller::rename`] when it is renamed.
///
/// Build steps (docker's classic builder runs RUN on the default bridge) go
/// through steps 1, 2 and 5 and the teardown, keyed by the step
/// container's id.
///
/// At container stop (or when its start fails after step 1):
/// [`crate::DnsServer::detach`], then [`Controller::teardown`], which keeps
/// going past errors and reports them all. It releases addresses and ports
/// and removes the namespace at once; the links themselves are deleted on a
/// background thread (the kernel needs ~25 ms per link), whose errors
/// [`Controller::flush`] returns (the daemon may call it from a periodic
/// task; `reconcile` and `uninstall` call it).
///
/// At daemon shutdown nothing is needed (containers keep running); to
/// remove everything berth set up on the host: [`Controller::uninstall`].
pub struct Controller {
    cfg: Config,
    nft: Arc<dyn Nft>,
    probe: Box<dyn PortProbe + Send + Sync>,
    networks_dir: RecordDir,
    sandboxes_dir: RecordDir,
    state: Mutex<State>,
    dns: Arc<RwLock<DnsTable>>,
    load_errors: Vec<String>,
    pending: Mutex<Vec<std::thread::JoinHandle<()>>>,
    deferred_errors: Arc<Mutex<Vec<NetworkError>>>,
}

fn random_hex(n: usize) -> String {
    let mut rng = rand::rng();
    (0..n).map(|_| format!("{:x}", rng.random_range(0..16u8))).collect()
}

fn nl_err(context: impl Into<String>) -> impl FnOnce(NetlinkError) -> NetworkError {
    let context = context.into();
    move |source| NetworkError::Netlink { context, source }
}

/// docker's MAC for an IPv4 address: 02:42 and the four address bytes.
pub fn mac_for(ip: Option<IpAddr>) -> [u8; 6] {
    match ip {
        Some(IpAddr::V4(v4)) => {
            let o = v4.octets();
            [0x02, 0x42, o[0], o[1], o[2], o[3]]
        }
        _ => {
            let mut rng = rand::rng();
            [0x02, 0x42, rng.random(), rng.random(), rng.random(), rng.random()]
        }
    }
}

pub fn format_mac(mac: [u8; 6]) -> String {
    mac.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
}

pub fn parse_mac(s: &str) -> Result<[u8; 6], NetworkError> {
    let parts: Vec<&str> = s.split([':', '-']).collect();
    let bad = || NetworkError::InvalidMac { mac: s.to_owned() };
    if parts.len() != 6 {
        return Err(bad());
    }
    let mut mac = [0u8; 6];
    for (i, p) in parts.iter().enumerate() {
        mac[i] = u8::from_str_radix(p, 16).map_err(|_| bad())?;
    }
    Ok(mac)
}

fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

impl Controller {
    /// Read the records under `cfg.data_root` and make sure the default
    /// network has one. `nft` loads firewall rules ([`crate::NftCommand`] in
    /// production); `probe` tells whether a host port is free
    /// ([`crate::ports::BindProbe`]).
    pub fn open(cfg: Config, nft: Arc<dyn Nft>, probe: Box<dyn PortProbe + Send + Sync>) -> Result<Controller, NetworkError> {
        let root = cfg.data_root.join("network");
        let networks_dir = RecordDir::open(root.join("networks"))?;
        let sandboxes_dir = RecordDir::open(cfg.sandbox_records.join("sandboxes"))?;
        let (networks, mut errs) = networks_dir.load_all::<Network>();
        let (sandboxes, errs2) = sandboxes_dir.load_all::<Sandbox>();
        errs.extend(errs2);
        let ephemeral = crate::ports::ephemeral_range(&cfg.proc_sys);
        let mut state = State {
            networks: networks.into_iter().map(|n| (n.id.clone(), n)).collect(),
            sandboxes: sandboxes.into_iter().map(|s| (s.container_id.clone(), s)).collect(),
            ipam: HashMap::new(),
            ports: PortAllocator::holding(ephemeral),
        };
        let c = Controller {
            cfg,
            nft,
            probe,
            networks_dir,
            sandboxes_dir,
            state: Mutex::new(State { networks: BTreeMap::new(), sandboxes: BTreeMap::new(), ipam: HashMap::new(), ports: PortAllocator::holding(ephemeral) }),
            dns: Arc::new(RwLock::new(DnsTable::default())),
            load_errors: errs.iter().map(|e| e.to_string()).collect(),
            pending: Mutex::new(Vec::new()),
            deferred_errors: Arc::new(Mutex::new(Vec::new())),
        };
        c.ensure_default_network(&mut state)?;
        rebuild_allocations(&mut state);
        *c.state.lock().unwrap() = state;
        c.rebuild_dns(&c.lock());
        Ok(c)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// The table the embedded DNS answers from (shared, kept current).
    pub fn dns_table(&self) -> Arc<RwLock<DnsTable>> {
        self.dns.clone()
    }

    /// Subnets the host routes through devices that are not berth's.
    fn host_routes(&self, state: &State) -> Vec<IpNet> {
        let path = self.cfg.proc_sys.parent().map(|p| p.join("net/route")).unwrap_or_default();
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let mut own: Vec<&str> = state.networks.values().map(|n| n.device.as_str()).collect();
        own.push(&self.cfg.default_bridge.device);
        ipam::host_routes_v4(&text, &own)
    }

    fn ensure_default_network(&self, state: &mut State) -> Result<(), NetworkError> {
        let db = &self.cfg.default_bridge;
        let existing = state.networks.values().find(|n| n.predefined).cloned();
        let in_use = existing.as_ref().is_some_and(|n| state.sandboxes.values().any(|s| s.endpoints.iter().any(|e| e.network_id == n.id)));
        let mut taken: Vec<IpNet> = state.networks.values().filter(|n| !n.predefined).flat_map(|n| n.subnets.iter().map(|s| s.subnet)).collect();
        taken.extend(self.host_routes(state));
        let (subnet, gateway) = match db.bip {
            Some(bip) => (bip.trunc(), Some(bip.addr())),
            None => match &existing {
                Some(n) if n.subnets.first().is_some_and(|s| !taken.iter().any(|t| ipam::overlaps(t, &s.subnet))) => {
                    (n.subnets[0].subnet, n.subnets[0].gateway)
                }
                _ => (ipam::pick_subnet(&self.cfg.address_pools, &taken, false)?, None),
            },
        };
        let mut sc = SubnetConfig { subnet, ip_range: db.fixed_cidr, gateway, aux_addresses: BTreeMap::new(), user_configured: false };
        if sc.gateway.is_none() {
            sc.gateway = Some(ipam::nth_host(&subnet, 1));
        }
        let mut options = BTreeMap::new();
        options.insert(opts::DEFAULT_BRIDGE.into(), "true".into());
        options.insert(opts::ICC.into(), db.icc.to_string());
        options.insert(opts::MASQUERADE.into(), db.masquerade.to_string());
        options.insert(opts::HOST_BINDING_IPV4.into(), "0.0.0.0".into());
        options.insert(opts::BRIDGE_NAME.into(), db.device.clone());
        options.insert(opts::MTU.into(), db.mtu.unwrap_or(1500).to_string());
        if let Some(n) = &existing {
            if n.device == db.device && n.subnets.first() == Some(&sc) && n.options == options {
                return Ok(());
            }
            if in_use {
                // Keep the old settings while containers use them.
                return Ok(());
            }
        }
        let net = Network {
            id: existing.as_ref().map(|n| n.id.clone()).unwrap_or_else(|| random_hex(64)),
            name: "bridge".into(),
            driver: Driver::Bridge,
            created: existing.as_ref().map(|n| n.created.clone()).unwrap_or_else(now_rfc3339),
            subnets: vec![sc],
            enable_ipv6: false,
            internal: false,
            attachable: false,
            labels: BTreeMap::new(),
            options,
            device: db.device.clone(),
            owned_device: true,
            mtu: db.mtu,
            predefined: true,
        };
        self.networks_dir.write(&net.id, &net)?;
        state.networks.insert(net.id.clone(), net);
        Ok(())
    }

    // ---- networks ----------------------------------------------------

    fn find<'a>(state: &'a State, name_or_id: &str) -> Result<&'a Network, NetworkError> {
        let nf = || NetworkError::NotFound { name: name_or_id.to_owned() };
        if let Some(n) = state.networks.get(name_or_id) {
            return Ok(n);
        }
        if let Some(n) = state.networks.values().find(|n| n.name == name_or_id) {
            return Ok(n);
        }
        let mut prefixed = state.networks.values().filter(|n| !name_or_id.is_empty() && n.id.starts_with(name_or_id));
        match (prefixed.next(), prefixed.next()) {
            (Some(n), None) => Ok(n),
            _ => Err(nf()),
        }
    }

    fn view(state: &State, n: &Network) -> NetworkView {
        let containers = state
            .sandboxes
            .values()
            .filter_map(|s| s.endpoints.iter().find(|e| e.network_id == n.id).map(|e| (s.container_id.clone(), e.clone())))
            .collect();
        NetworkView { network: n.clone(), containers }
    }

    /// One network by id, name or unique id prefix, with its endpoints.
    pub fn network(&self, name_or_id: &str) -> Result<NetworkView, NetworkError> {
        let state = self.lock();
        let n = Self::find(&state, name_or_id)?;
        Ok(Self::view(&state, n))
    }

    /// Every network, with its endpoints.
    pub fn networks(&self) -> Vec<NetworkView> {
        let state = self.lock();
        state.networks.values().map(|n| Self::view(&state, n)).collect()
    }

    /// `network create`: validate, assign subnets, set the devices up,
    /// persist, reload the firewall. On an error nothing stays.
    pub fn create_network(&self, req: &NetworkCreate) -> Result<Network, NetworkError> {
        let mut state = self.lock();
        if state.networks.values().any(|n| n.name == req.name) {
            return Err(NetworkError::NameExists { name: req.name.clone() });
        }
        let driver = match req.driver.as_deref().unwrap_or("bridge") {
            "bridge" | "" => Driver::Bridge,
            "macvlan" => Driver::Macvlan,
            "ipvlan" => Driver::Ipvlan,
            other => return Err(NetworkError::UnknownDriver { driver: other.to_owned() }),
        };
        let mtu = match req.options.get(opts::MTU) {
            Some(v) => Some(v.parse::<u32>().ok().filter(|m| (68..=65535).contains(m)).ok_or_else(|| NetworkError::InvalidOption {
                key: opts::MTU.into(),
                value: v.clone(),
                reason: "not a valid MTU".into(),
            })?),
            None => None,
        };
        let subnets = self.plan_subnets(&state, req)?;
        let id = random_hex(64);
        let (device, owned_device) = match driver {
            Driver::Bridge => {
                let name = match req.options.get(opts::BRIDGE_NAME) {
                    Some(b) => b.clone(),
                    None => self.link_name("b", &id),
                };
                if name.is_empty() || name.len() > 15 || name.contains('/') || name.contains(char::is_whitespace) {
                    return Err(NetworkError::InvalidOption { key: opts::BRIDGE_NAME.into(), value: name, reason: "not a valid interface name".into() });
                }
                if let Some(other) = state.networks.values().find(|n| n.driver == Driver::Bridge && n.device == name) {
                    return Err(NetworkError::BridgeInUse { name, network: other.name.clone() });
                }
                let exists = Netlink::open().and_then(|mut nl| nl.link_index(&name)).map_err(nl_err(format!("bridge {name}")))?.is_some();
                (name, !exists)
            }
            Driver::Macvlan | Driver::Ipvlan => match req.options.get(opts::PARENT) {
                Some(p) => (p.clone(), false),
                None => (self.link_name("m", &id), true),
            },
        };
        let net = Network {
            id: id.clone(),
            name: req.name.clone(),
            driver,
            created: now_rfc3339(),
            subnets,
            enable_ipv6: req.ipv6,
            internal: req.internal,
            attachable: req.attachable,
            labels: req.labels.clone(),
            options: req.options.clone(),
            device,
            owned_device,
            mtu,
            predefined: false,
        };
        sub_mode(&net)?;
        if let Err(e) = self.setup_network_devices(&net) {
            let _ = self.remove_network_devices(&net);
            return Err(e);
        }
        let undo = |s: &Self| {
            let _ = s.remove_network_devices(&net);
            let _ = s.networks_dir.remove(&net.id);
        };
        if let Err(e) = self.networks_dir.write(&net.id, &net) {
            undo(self);
            return Err(e.into());
        }
        state.ipam.insert(net.id.clone(), net.subnets.iter().cloned().map(SubnetAllocator::new).collect());
        state.networks.insert(net.id.clone(), net.clone());
        if net.driver == Driver::Bridge
            && let Err(e) = self.apply_firewall(&state)
        {
            state.networks.remove(&net.id);
            state.ipam.remove(&net.id);
            undo(self);
            let _ = self.apply_firewall(&state);
            return Err(e);
        }
        Ok(net)
    }

    /// Whether `name` is a link this controller names: its prefix, a kind
    /// letter, hex. (A second daemon whose prefix merely starts with ours,
    /// `berth2` beside `berth`, does not match.)
    fn is_own_link(&self, name: &str) -> bool {
        let Some(rest) = name.strip_prefix(&self.cfg.link_prefix) else { return false };
        let mut chars = rest.chars();
        matches!(chars.next(), Some('v' | 'b' | 'm')) && !chars.as_str().is_empty() && chars.all(|c| c.is_ascii_hexdigit())
    }

    /// A `kind` link name with random hex that no link has yet (short
    /// prefixes leave few hex digits, so collisions are checked for).
    fn free_link_name(&self, kind: &str) -> String {
        let mut nl = Netlink::open().ok();
        loop {
            let name = self.link_name(kind, &random_hex(16));
            match nl.as_mut().map(|nl| nl.link_index(&name)) {
                Some(Ok(Some(_))) => continue,
                _ => return name,
            }
        }
    }

    fn link_name(&self, kind: &str, id: &str) -> String {
        let mut s = format!("{}{kind}", self.cfg.link_prefix);
        let room = 15usize.saturating_sub(s.len());
        s.push_str(&id[..room.min(id.len())]);
        s
    }

    fn plan_subnets(&self, state: &State, req: &NetworkCreate) -> Result<Vec<SubnetConfig>, NetworkError> {
        let existing: Vec<IpNet> = state.networks.values().flat_map(|n| n.subnets.iter().map(|s| s.subnet)).collect();
        let mut out: Vec<SubnetConfig> = Vec::new();
        let parse_ip = |what: &'static str, s: &str| -> Result<IpAddr, NetworkError> {
            s.parse().map_err(|_| NetworkError::InvalidAddress { what, value: s.to_owned(), reason: "not an IP address".into() })
        };
        for r in &req.ipam {
            let Some(subnet) = r.subnet.as_deref() else {
                if let Some(range) = &r.ip_range {
                    return Err(IpamError::RangeWithoutSubnet { range: range.clone() }.into());
                }
                continue;
            };
            let subnet = ipam::parse_subnet(subnet)?;
            let ip_range = r.ip_range.as_deref().map(ipam::parse_subnet).transpose()?;
            let gateway = r.gateway.as_deref().map(|g| parse_ip("gateway", g)).transpose()?;
            let mut aux = BTreeMap::new();
            for (k, v) in &r.aux_addresses {
                aux.insert(k.clone(), parse_ip("aux-address", v)?);
            }
            let mut sc = SubnetConfig { subnet, ip_range, gateway, aux_addresses: aux, user_configured: true };
            sc.validate()?;
            if sc.gateway.is_none() {
                sc.gateway = Some(sc.default_gateway());
            }
            for other in existing.iter().chain(out.iter().map(|s| &s.subnet)) {
                if ipam::overlaps(other, &subnet) {
                    return Err(IpamError::Overlap { subnet, other: *other }.into());
                }
            }
            out.push(sc);
        }
        let mut taken = existing.clone();
        taken.extend(out.iter().map(|s| s.subnet));
        taken.extend(self.host_routes(state));
        if !out.iter().any(|s| s.subnet.addr().is_ipv4()) {
            let subnet = ipam::pick_subnet(&self.cfg.address_pools, &taken, false)?;
            let mut sc = SubnetConfig { subnet, ip_range: None, gateway: None, aux_addresses: BTreeMap::new(), user_configured: false };
            sc.gateway = Some(sc.default_gateway());
            out.insert(0, sc);
        }
        if req.ipv6 && !out.iter().any(|s| s.subnet.addr().is_ipv6()) {
            let subnet = ipam::pick_subnet(&self.cfg.address_pools, &taken, true)?;
            let mut sc = SubnetConfig { subnet, ip_range: None, gateway: None, aux_addresses: BTreeMap::new(), user_configured: false };
            sc.gateway = Some(sc.default_gateway());
            out.push(sc);
        }
        if !req.ipv6 {
            out.retain(|s| s.subnet.addr().is_ipv4());
        }
        Ok(out)
    }

    fn setup_network_devices(&self, net: &Network) -> Result<(), NetworkError> {
        let mut nl = Netlink::open().map_err(nl_err("netlink"))?;
        match net.driver {
            Driver::Bridge => {
                let idx = nl.ensure_bridge(&net.device, net.mtu).map_err(nl_err(format!("bridge {}", net.device)))?;
                for s in &net.subnets {
                    if let Some(gw) = s.gateway {
                        let addr = IpNet::new(gw, s.subnet.prefix_len()).expect("prefix from subnet");
                        nl.add_address(idx, addr, &net.device).map_err(nl_err(format!("bridge {}", net.device)))?;
                    }
                }
                nl.set_up(&net.device).map_err(nl_err(format!("bridge {}", net.device)))?;
                self.sysctl("net/ipv4/ip_forward", "1")?;
                self.sysctl(&format!("net/ipv4/conf/{}/route_localnet", net.device), "1")?;
                if net.enable_ipv6 {
                    self.sysctl("net/ipv6/conf/all/forwarding", "1")?;
                }
            }
            Driver::Macvlan | Driver::Ipvlan => {
                if net.owned_device {
                    nl.ensure_dummy(&net.device).map_err(nl_err(format!("parent {}", net.device)))?;
                    nl.set_up(&net.device).map_err(nl_err(format!("parent {}", net.device)))?;
                } else if nl.link_index(&net.device).map_err(nl_err("parent"))?.is_none() {
                    return Err(NetworkError::InvalidOption { key: opts::PARENT.into(), value: net.device.clone(), reason: "no such link".into() });
                }
            }
        }
        Ok(())
    }

    fn remove_network_devices(&self, net: &Network) -> Result<(), NetworkError> {
        if net.owned_device {
            let mut nl = Netlink::open().map_err(nl_err("netlink"))?;
            nl.delete_link(&net.device).map_err(nl_err(format!("delete {}", net.device)))?;
        }
        Ok(())
    }

    fn sysctl(&self, key: &str, value: &str) -> Result<(), NetworkError> {
        let path = self.cfg.proc_sys.join(key);
        if std::fs::read_to_string(&path).map(|v| v.trim() == value).unwrap_or(false) {
            return Ok(());
        }
        std::fs::write(&path, value).map_err(|source| NetworkError::Sysctl { path, source })
    }

    /// `network rm`. The default network cannot be removed; a network with
    /// endpoints neither.
    pub fn remove_network(&self, name_or_id: &str) -> Result<(), NetworkError> {
        let mut state = self.lock();
        let net = Self::find(&state, name_or_id)?.clone();
        if net.predefined {
            return Err(NetworkError::Predefined { name: net.name });
        }
        if state.sandboxes.values().any(|s| s.endpoints.iter().any(|e| e.network_id == net.id)) {
            return Err(NetworkError::ActiveEndpoints { name: net.name, id: net.id });
        }
        self.networks_dir.remove(&net.id)?;
        state.networks.remove(&net.id);
        state.ipam.remove(&net.id);
        let mut errors = Vec::new();
        if net.driver == Driver::Bridge
            && let Err(e) = self.apply_firewall(&state)
        {
            errors.push(e);
        }
        if let Err(e) = self.remove_network_devices(&net) {
            errors.push(e);
        }
        self.rebuild_dns(&state);
        match errors.into_iter().next() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// `network prune`: remove every user-defined network without endpoints
    /// for which `select` is true (the daemon's filters); returns the names.
    pub fn prune(&self, select: &dyn Fn(&Network) -> bool) -> Result<Vec<String>, NetworkError> {
        let candidates: Vec<Network> = {
            let state = self.lock();
            state
                .networks
                .values()
                .filter(|n| !n.predefined && select(n) && !state.sandboxes.values().any(|s| s.endpoints.iter().any(|e| e.network_id == n.id)))
                .cloned()
                .collect()
        };
        let mut removed = Vec::new();
        for n in candidates {
            match self.remove_network(&n.id) {
                Ok(()) => removed.push(n.name),
                Err(NetworkError::ActiveEndpoints { .. }) | Err(NetworkError::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(removed)
    }

    // ---- sandboxes ---------------------------------------------------

    /// Where the namespace file of `container` lives.
    pub fn netns_path(&self, container: &str) -> PathBuf {
        self.cfg.exec_root.join("netns").join(container)
    }

    /// Make the network namespace of `container` (see the lifecycle above).
    pub fn create_sandbox(&self, container: &str, mode: SandboxMode) -> Result<Sandbox, NetworkError> {
        let mut state = self.lock();
        if state.sandboxes.contains_key(container) {
            return Err(NetworkError::SandboxExists { container: container.to_owned() });
        }
        let sb = match mode {
            SandboxMode::New => {
                let dir = self.cfg.exec_root.join("netns");
                netns::prepare_dir(&dir)?;
                let path = self.netns_path(container);
                let sb = Sandbox { container_id: container.to_owned(), netns: path.clone(), joined: None, endpoints: vec![], ports: vec![], ports_network: None };
                // Record first: a crash between the two leaves a record that
                // reconcile tears down, never an unaccounted namespace.
                self.sandboxes_dir.write(container, &sb)?;
                if let Err(e) = netns::create(&path) {
                    let _ = self.sandboxes_dir.remove(container);
                    return Err(e.into());
                }
                sb
            }
            SandboxMode::Join(owner) => {
                let o = state.sandboxes.get(&owner).ok_or_else(|| NetworkError::NoSandbox { container: owner.clone() })?;
                let (path, owner) = match &o.joined {
                    Some(root) => (o.netns.clone(), root.clone()),
                    None => (o.netns.clone(), owner),
                };
                let sb = Sandbox { container_id: container.to_owned(), netns: path, joined: Some(owner), endpoints: vec![], ports: vec![], ports_network: None };
                self.sandboxes_dir.write(container, &sb)?;
                sb
            }
        };
        state.sandboxes.insert(container.to_owned(), sb.clone());
        self.rebuild_dns(&state);
        Ok(sb)
    }

    /// The sandbox of `container`, if it has one.
    pub fn sandbox(&self, container: &str) -> Option<Sandbox> {
        self.lock().sandboxes.get(container).cloned()
    }

    /// Whether `container` needs the embedded DNS: it is on a user-defined
    /// network.
    pub fn needs_dns(&self, container: &str) -> bool {
        let state = self.lock();
        let Some(sb) = state.sandboxes.get(container) else { return false };
        let sb = match &sb.joined {
            Some(owner) => match state.sandboxes.get(owner) {
                Some(o) => o,
                None => return false,
            },
            None => sb,
        };
        sb.endpoints.iter().any(|e| state.networks.get(&e.network_id).is_some_and(|n| n.has_dns()))
    }

    /// Attach `container`'s sandbox to `network`: addresses from IPAM, a
    /// veth pair (bridge) or sub-interface (macvlan/ipvlan) named `ethN`
    /// inside, MAC, MTU, routes. Returns once the kernel has the endpoint
    /// ready for traffic (links active, IPv6 addresses usable), so a
    /// container started right after loses no first packets. On an error
    /// nothing stays.
    pub fn connect(&self, container: &str, network: &str, spec: &EndpointSpec) -> Result<Endpoint, NetworkError> {
        let mut state = self.lock();
        let net = Self::find(&state, network)?.clone();
        let sb = state.sandboxes.get(container).ok_or_else(|| NetworkError::NoSandbox { container: container.to_owned() })?.clone();
        if let Some(owner) = &sb.joined {
            return Err(NetworkError::JoinedSandbox { container: container.to_owned(), owner: owner.clone() });
        }
        if sb.endpoints.iter().any(|e| e.network_id == net.id) {
            return Err(NetworkError::AlreadyConnected { container: spec.container_name.clone(), network: net.name.clone() });
        }
        if net.predefined && (spec.ipv4.is_some() || spec.ipv6.is_some()) {
            return Err(NetworkError::StaticIpOnDefault);
        }
        let mac = spec.mac.as_deref().map(parse_mac).transpose()?;
        // Addresses.
        let allocs = state.ipam.entry(net.id.clone()).or_insert_with(|| net.subnets.iter().cloned().map(SubnetAllocator::new).collect());
        let mut taken: Vec<(usize, IpAddr)> = Vec::new();
        let result = (|| -> Result<(), IpamError> {
            for (want, v6) in [(spec.ipv4, false), (spec.ipv6, true)] {
                if let Some(ip) = want
                    && ip.is_ipv6() != v6
                {
                    return Err(IpamError::NotInSubnet { addr: ip });
                }
                let idx = match want {
                    Some(ip) => allocs.iter().position(|a| a.contains(ip)).ok_or(IpamError::NotInSubnet { addr: ip })?,
                    None => match allocs.iter().position(|a| a.config().subnet.addr().is_ipv6() == v6) {
                        Some(i) => i,
                        None => continue,
                    },
                };
                if want.is_some() && !allocs[idx].config().user_configured {
                    return Err(IpamError::NoUserSubnet);
                }
                let ip = allocs[idx].allocate(want, &net.name)?;
                taken.push((idx, ip));
            }
            Ok(())
        })();
        let release = |state: &mut State, taken: &[(usize, IpAddr)]| {
            if let Some(allocs) = state.ipam.get_mut(&net.id) {
                for (i, ip) in taken {
                    allocs[*i].release(*ip);
                }
            }
        };
        if let Err(e) = result {
            release(&mut state, &taken);
            return Err(e.into());
        }
        let allocs = &state.ipam[&net.id];
        let addr = |v6: bool| {
            taken.iter().find(|(_, ip)| ip.is_ipv6() == v6).map(|(i, ip)| {
                let c = allocs[*i].config();
                (IpNet::new(*ip, c.subnet.prefix_len()).expect("prefix from subnet"), c.gateway)
            })
        };
        let (v4, v6) = (addr(false), addr(true));
        let has_gateway = sb.endpoints.iter().any(|e| e.gateway_provider);
        let mut used: BTreeSet<&str> = sb.endpoints.iter().map(|e| e.ifname.as_str()).collect();
        used.insert("lo");
        let ifname = (0..).map(|i| format!("eth{i}")).find(|n| !used.contains(n.as_str())).expect("a free ethN");
        let mac = mac.unwrap_or_else(|| mac_for(v4.map(|(a, _)| a.addr())));
        let dns_names = dns_names(container, &spec.container_name, &spec.aliases);
        let ep = Endpoint {
            network_id: net.id.clone(),
            container_name: spec.container_name.trim_start_matches('/').to_owned(),
            endpoint_id: random_hex(64),
            ifname: ifname.clone(),
            host_ifname: (net.driver == Driver::Bridge).then(|| self.free_link_name("v")),
            mac: format_mac(mac),
            ipv4: v4.map(|(a, _)| a),
            ipv6: v6.map(|(a, _)| a),
            gateway4: v4.and_then(|(_, g)| g),
            gateway6: v6.and_then(|(_, g)| g),
            aliases: spec.aliases.clone(),
            dns_names,
            links: spec.links.clone(),
            gateway_provider: !has_gateway && !net.internal,
            static_ip: spec.ipv4.is_some() || spec.ipv6.is_some(),
        };
        let mut new_sb = sb.clone();
        new_sb.endpoints.push(ep.clone());
        if let Err(e) = self.sandboxes_dir.write(container, &new_sb) {
            release(&mut state, &taken);
            return Err(e.into());
        }
        if let Err(e) = self.setup_endpoint(&net, &sb, &ep, mac) {
            let _ = self.remove_endpoint_links(&net, &sb, &ep);
            release(&mut state, &taken);
            let _ = self.sandboxes_dir.write(container, &sb);
            return Err(e);
        }
        state.sandboxes.insert(container.to_owned(), new_sb);
        self.rebuild_dns(&state);
        Ok(ep)
    }

    /// `docker rename`: the container's endpoints take `new_name`; the
    /// embedded DNS answers to it, no longer to the old one. Nothing to do
    /// for a container without a sandbox (its next start uses the new name).
    pub fn rename(&self, container: &str, new_name: &str) -> Result<(), NetworkError> {
        let mut state = self.lock();
        let Some(sb) = state.sandboxes.get(container) else { return Ok(()) };
        let mut new_sb = sb.clone();
        let name = new_name.trim_start_matches('/');
        for ep in &mut new_sb.endpoints {
            ep.container_name = name.to_owned();
            ep.dns_names = dns_names(container, name, &ep.aliases);
        }
        self.sandboxes_dir.write(container, &new_sb)?;
        state.sandboxes.insert(container.to_owned(), new_sb);
        self.rebuild_dns(&state);
        Ok(())
    }

    fn setup_endpoint(&self, net: &Network, sb: &Sandbox, ep: &Endpoint, mac: [u8; 6]) -> Result<(), NetworkError> {
        let ns = Netns::open(&sb.netns)?;
        let mut host = Netlink::open().map_err(nl_err("netlink"))?;
        match net.driver {
            Driver::Bridge => {
                let h = ep.host_ifname.as_deref().expect("bridge endpoints have a host end");
                let br = match host.link_index(&net.device).map_err(nl_err(format!("bridge {}", net.device)))? {
                    Some(i) => i,
                    None => {
                        // The bridge went away (someone deleted it): bring it back.
                        self.setup_network_devices(net)?;
                        host.link_index(&net.device).map_err(nl_err("bridge"))?.ok_or_else(|| NetworkError::Netlink {
                            context: format!("bridge {}", net.device),
                            source: NetlinkError::NoLink { name: net.device.clone() },
                        })?
                    }
                };
                host.create_veth(h, &ep.ifname, ns.fd(), net.mtu, Some(mac)).map_err(nl_err(format!("veth {h} for {}", sb.container_id)))?;
                host.enslave(h, br).map_err(nl_err(format!("veth {h}")))?;
            }
            Driver::Macvlan | Driver::Ipvlan => {
                let parent = host
                    .link_index(&net.device)
                    .map_err(nl_err("parent"))?
                    .ok_or_else(|| NetworkError::InvalidOption { key: opts::PARENT.into(), value: net.device.clone(), reason: "no such link".into() })?;
                host.create_sub(&ep.ifname, parent, sub_mode(net)?, ns.fd(), net.mtu, Some(mac)).map_err(nl_err(format!("{} link for {}", net.driver.as_str(), sb.container_id)))?;
            }
        }
        let mut inner = ns.netlink()?;
        let ctx = format!("{} in sandbox of {}", ep.ifname, sb.container_id);
        let idx = inner.link_index(&ep.ifname).map_err(nl_err(ctx.clone()))?.ok_or_else(|| NetworkError::Netlink {
            context: ctx.clone(),
            source: NetlinkError::NoLink { name: ep.ifname.clone() },
        })?;
        for a in [ep.ipv4, ep.ipv6].into_iter().flatten() {
            inner.add_address(idx, a, &ep.ifname).map_err(nl_err(ctx.clone()))?;
        }
        inner.set_up(&ep.ifname).map_err(nl_err(ctx.clone()))?;
        if ep.gateway_provider {
            self.add_default_routes(&mut inner, idx, ep).map_err(nl_err(ctx.clone()))?;
        }
        let bridge = (net.driver == Driver::Bridge).then_some(net.device.as_str());
        wait_until_usable(&mut host, &mut inner, ep, bridge).map_err(nl_err(ctx))
    }

    fn add_default_routes(&self, nl: &mut Netlink, idx: u32, ep: &Endpoint) -> Result<(), NetlinkError> {
        if let Some(g) = ep.gateway4 {
            nl.add_default_route(idx, g, &ep.ifname)?;
        }
        if let (Some(g), Some(_)) = (ep.gateway6, ep.ipv6) {
            nl.add_default_route(idx, g, &ep.ifname)?;
        }
        Ok(())
    }

    fn remove_endpoint_links(&self, net: &Network, sb: &Sandbox, ep: &Endpoint) -> Result<(), NetworkError> {
        match &ep.host_ifname {
            Some(h) => {
                let mut nl = Netlink::open().map_err(nl_err("netlink"))?;
                nl.delete_link(h).map_err(nl_err(format!("veth {h}")))?;
            }
            None => {
                let _ = net;
                match Netns::open(&sb.netns) {
                    Ok(ns) => {
                        let mut nl = ns.netlink()?;
                        nl.delete_link(&ep.ifname).map_err(nl_err(format!("{} in sandbox of {}", ep.ifname, sb.container_id)))?;
                    }
                    // No namespace left: its links went with it.
                    Err(e) if e.kind() == ErrorKind::NotFound => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
        Ok(())
    }

    /// Detach `container` from `network` (live): its link goes, its
    /// addresses are released, ports published on it are withdrawn, and if it
    /// carried the default route another endpoint takes over.
    pub fn disconnect(&self, container: &str, network: &str) -> Result<(), NetworkError> {
        let mut state = self.lock();
        let net = Self::find(&state, network)?.clone();
        let sb = state.sandboxes.get(container).ok_or_else(|| NetworkError::NoSandbox { container: container.to_owned() })?.clone();
        let Some(pos) = sb.endpoints.iter().position(|e| e.network_id == net.id) else {
            return Err(NetworkError::NotConnected { container: container.to_owned(), network: net.name.clone() });
        };
        let ep = sb.endpoints[pos].clone();
        self.remove_endpoint_links(&net, &sb, &ep)?;
        let mut new_sb = sb.clone();
        new_sb.endpoints.remove(pos);
        let mut firewall = false;
        if new_sb.ports_network.as_deref() == Some(net.id.as_str()) {
            for m in &new_sb.ports {
                state.ports.release(m);
            }
            new_sb.ports.clear();
            new_sb.ports_network = None;
            firewall = true;
        }
        release_endpoint(&mut state, &ep);
        let mut result = Ok(());
        if ep.gateway_provider
            && let Some(next) = new_sb.endpoints.iter_mut().find(|e| state.networks.get(&e.network_id).is_some_and(|n| !n.internal))
        {
            next.gateway_provider = true;
            let next = next.clone();
            result = Netns::open(&sb.netns).map_err(NetworkError::from).and_then(|ns| {
                let mut nl = ns.netlink()?;
                let idx = nl.link_index(&next.ifname).map_err(nl_err("gateway"))?.unwrap_or(0);
                self.add_default_routes(&mut nl, idx, &next).map_err(nl_err(format!("default route of {container}")))
            });
        }
        self.sandboxes_dir.write(container, &new_sb)?;
        state.sandboxes.insert(container.to_owned(), new_sb);
        if firewall {
            self.apply_firewall(&state)?;
        }
        self.rebuild_dns(&state);
        result
    }

    // ---- ports ---------------------------------------------------------

    /// Publish ports of `container` (after `connect`): host ports chosen
    /// (random ones from the ephemeral range), DNAT rules loaded. All or
    /// nothing; a port in use fails with docker's message.
    pub fn publish(&self, container: &str, reqs: &[PortRequest]) -> Result<Vec<PortMapping>, NetworkError> {
        if reqs.is_empty() {
            return Ok(vec![]);
        }
        let mut state = self.lock();
        let sb = state.sandboxes.get(container).ok_or_else(|| NetworkError::NoSandbox { container: container.to_owned() })?.clone();
        let ep = sb
            .endpoints
            .iter()
            .find(|e| state.networks.get(&e.network_id).is_some_and(|n| n.driver == Driver::Bridge && !n.internal))
            .cloned()
            .ok_or_else(|| NetworkError::NothingToPublish { container: container.to_owned() })?;
        let endpoint = format!("{} ({})", container, &ep.endpoint_id[..12]);
        let mappings = state.ports.allocate(reqs, self.probe.as_ref()).map_err(|source| NetworkError::Ports { endpoint, source })?;
        let mut new_sb = sb.clone();
        new_sb.ports.extend(mappings.iter().cloned());
        new_sb.ports_network = Some(ep.network_id.clone());
        let undo = |state: &mut State| {
            for m in &mappings {
                state.ports.release(m);
            }
        };
        if let Err(e) = self.sandboxes_dir.write(container, &new_sb) {
            undo(&mut state);
            return Err(e.into());
        }
        state.sandboxes.insert(container.to_owned(), new_sb);
        if let Err(e) = self.apply_firewall(&state) {
            undo(&mut state);
            state.sandboxes.insert(container.to_owned(), sb.clone());
            let _ = self.sandboxes_dir.write(container, &sb);
            let _ = self.apply_firewall(&state);
            return Err(e);
        }
        Ok(mappings)
    }

    fn firewall_rules(&self, state: &State) -> (Vec<BridgeRules>, Vec<PortRule>) {
        let bridges = state
            .networks
            .values()
            .filter(|n| n.driver == Driver::Bridge)
            .map(|n| BridgeRules {
                bridge: n.device.clone(),
                subnets: n.subnets.iter().map(|s| s.subnet).collect(),
                gateways: n.subnets.iter().filter_map(|s| s.gateway).collect(),
                internal: n.internal,
                icc: n.icc(),
                masquerade: n.masquerade(),
            })
            .collect();
        let mut ports = Vec::new();
        for sb in state.sandboxes.values() {
            let Some(nid) = &sb.ports_network else { continue };
            let (Some(ep), Some(net)) = (sb.endpoints.iter().find(|e| &e.network_id == nid), state.networks.get(nid)) else { continue };
            for m in &sb.ports {
                for ip in [ep.ipv4, ep.ipv6].into_iter().flatten() {
                    ports.push(PortRule { mapping: m.clone(), container_ip: ip.addr(), bridge: net.device.clone() });
                }
            }
        }
        (bridges, ports)
    }

    fn apply_firewall(&self, state: &State) -> Result<(), NetworkError> {
        self.load_firewall(state, Load::Update)
    }

    fn load_firewall(&self, state: &State, load: Load) -> Result<(), NetworkError> {
        let (bridges, ports) = self.firewall_rules(state);
        self.nft.apply(&render_host(&self.cfg.nft_table, &bridges, &ports, load), "host")?;
        Ok(())
    }

    /// The host table as it would be loaded now (for diagnostics and tests).
    pub fn firewall_script(&self) -> String {
        let state = self.lock();
        let (bridges, ports) = self.firewall_rules(&state);
        render_host(&self.cfg.nft_table, &bridges, &ports, Load::Update)
    }

    // ---- teardown ------------------------------------------------------

    /// Remove everything of `container`'s sandbox: published ports, links,
    /// addresses, the namespace (unless joined), the record. Keeps going
    /// past errors and returns them all.
    pub fn teardown(&self, container: &str) -> Result<(), TeardownError> {
        let mut state = self.lock();
        self.teardown_locked(&mut state, container)
    }

    fn teardown_locked(&self, state: &mut State, container: &str) -> Result<(), TeardownError> {
        let mut errors = Vec::new();
        let Some(sb) = state.sandboxes.get(container).cloned() else { return Ok(()) };
        let had_ports = !sb.ports.is_empty();
        for m in &sb.ports {
            state.ports.release(m);
        }
        // Links are deleted on a thread of their own: the kernel takes
        // ~25 ms per deleted link (an RCU grace period), which would
        // otherwise be most of a container's stop. Their addresses are
        // released now; [`Controller::flush`] waits for the deletions.
        let mut host_links = Vec::new();
        let mut inner_links = Vec::new();
        for ep in &sb.endpoints {
            match &ep.host_ifname {
                Some(h) => host_links.push(h.clone()),
                None => inner_links.push(ep.ifname.clone()),
            }
            release_endpoint(state, ep);
        }
        let inner = if inner_links.is_empty() {
            None
        } else {
            match Netns::open(&sb.netns) {
                Ok(ns) => Some((ns, inner_links)),
                Err(e) if e.kind() == ErrorKind::NotFound => None,
                Err(e) => {
                    errors.push(e.into());
                    None
                }
            }
        };
        state.sandboxes.remove(container);
        if had_ports && let Err(e) = self.apply_firewall(state) {
            errors.push(e);
        }
        if sb.joined.is_none()
            && let Err(e) = netns::remove(&sb.netns)
        {
            errors.push(e.into());
        }
        self.remove_links_later(host_links, inner);
        if let Err(e) = self.sandboxes_dir.remove(container) {
            errors.push(e.into());
        }
        self.rebuild_dns(state);
        if errors.is_empty() { Ok(()) } else { Err(TeardownError { subject: format!("container {container}"), errors }) }
    }

    fn remove_links_later(&self, host: Vec<String>, inner: Option<(Netns, Vec<String>)>) {
        if host.is_empty() && inner.is_none() {
            return;
        }
        let errors = self.deferred_errors.clone();
        let handle = std::thread::spawn(move || {
            let mut errs = Vec::new();
            if let Some((ns, names)) = inner {
                match ns.netlink() {
                    Ok(mut nl) => {
                        for n in names {
                            if let Err(e) = nl.delete_link(&n) {
                                errs.push(NetworkError::Netlink { context: format!("{n} in {}", ns.path().display()), source: e });
                            }
                        }
                    }
                    Err(e) => errs.push(e.into()),
                }
            }
            if !host.is_empty() {
                match Netlink::open() {
                    Ok(mut nl) => {
                        for h in host {
                            if let Err(e) = nl.delete_link(&h) {
                                errs.push(NetworkError::Netlink { context: format!("veth {h}"), source: e });
                            }
                        }
                    }
                    Err(e) => errs.push(NetworkError::Netlink { context: "netlink".into(), source: e }),
                }
            }
            for e in &errs {
                tracing::warn!("network teardown: {e}");
            }
            errors.lock().unwrap_or_else(|p| p.into_inner()).extend(errs);
        });
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        pending.retain(|h| !h.is_finished());
        pending.push(handle);
    }

    /// Wait for the link deletions teardowns started, and return the errors
    /// they met since the last call.
    pub fn flush(&self) -> Vec<NetworkError> {
        let handles: Vec<_> = std::mem::take(&mut *self.pending.lock().unwrap_or_else(|p| p.into_inner()));
        for h in handles {
            let _ = h.join();
        }
        std::mem::take(&mut *self.deferred_errors.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// At daemon start: tear down the sandboxes of containers for which
    /// `alive` is false, bring back the bridges of all networks, delete
    /// host links with berth's prefix and namespace files no record
    /// accounts for, and reload the firewall from the records.
    pub fn reconcile(&self, alive: &dyn Fn(&str) -> bool) -> ReconcileReport {
        let mut report = ReconcileReport { errors: self.load_errors.clone(), ..Default::default() };
        let mut state = self.lock();
        let dead: Vec<String> = state.sandboxes.keys().filter(|c| !alive(c)).cloned().collect();
        // Joined sandboxes first, then the namespaces they joined.
        let mut order = dead.clone();
        order.sort_by_key(|c| state.sandboxes.get(c).is_some_and(|s| s.joined.is_none()));
        for c in order {
            if let Err(e) = self.teardown_locked(&mut state, &c) {
                report.errors.push(e.to_string());
            }
            report.sandboxes_removed.push(c);
        }
        report.errors.extend(self.flush().iter().map(|e| e.to_string()));
        for net in state.networks.values() {
            if let Err(e) = self.setup_network_devices(net) {
                report.errors.push(format!("network {}: {e}", net.name));
            }
        }
        // Links no record accounts for.
        let mut keep: BTreeSet<String> = state.networks.values().map(|n| n.device.clone()).collect();
        keep.extend(state.sandboxes.values().flat_map(|s| s.endpoints.iter().filter_map(|e| e.host_ifname.clone())));
        match Netlink::open() {
            Ok(mut nl) => match nl.links() {
                Ok(links) => {
                    for l in links {
                        if self.is_own_link(&l.name)
                            && !keep.contains(&l.name)
                            && matches!(l.kind.as_deref(), Some("veth") | Some("bridge") | Some("dummy"))
                        {
                            match nl.delete_link(&l.name) {
                                Ok(_) => report.links_removed.push(l.name),
                                Err(e) => report.errors.push(format!("delete link {}: {e}", l.name)),
                            }
                        }
                    }
                }
                Err(e) => report.errors.push(e.to_string()),
            },
            Err(e) => report.errors.push(e.to_string()),
        }
        // Namespace files no record accounts for.
        let known: BTreeSet<PathBuf> = state.sandboxes.values().map(|s| s.netns.clone()).collect();
        if let Ok(rd) = std::fs::read_dir(self.cfg.exec_root.join("netns")) {
            for e in rd.flatten() {
                let p = e.path();
                if !known.contains(&p) {
                    match netns::remove(&p) {
                        Ok(()) => report.netns_removed.push(p),
                        Err(e) => report.errors.push(e.to_string()),
                    }
                }
            }
        }
        if let Err(e) = self.load_firewall(&state, Load::Replace) {
            report.errors.push(e.to_string());
        }
        rebuild_allocations(&mut state);
        self.rebuild_dns(&state);
        report
    }

    /// Remove everything berth set up on the host: every sandbox, every
    /// network's devices, the nft table. Records of networks stay (a new
    /// start brings them back); sandbox records go.
    pub fn uninstall(&self) -> Result<(), TeardownError> {
        let mut errors = Vec::new();
        let mut state = self.lock();
        let all: Vec<String> = state.sandboxes.keys().cloned().collect();
        for c in all {
            if let Err(e) = self.teardown_locked(&mut state, &c) {
                errors.extend(e.errors);
            }
        }
        errors.extend(self.flush());
        for net in state.networks.values() {
            if let Err(e) = self.remove_network_devices(net) {
                errors.push(e);
            }
        }
        if let Err(e) = self.nft.apply(&render_delete(&self.cfg.nft_table), "host") {
            errors.push(e.into());
        }
        if let Err(e) = netns::release_dir(&self.cfg.exec_root.join("netns")) {
            errors.push(e.into());
        }
        if errors.is_empty() { Ok(()) } else { Err(TeardownError { subject: "berth networking".into(), errors }) }
    }

    fn rebuild_dns(&self, state: &State) {
        let mut t = DnsTable::default();
        for n in state.networks.values().filter(|n| n.has_dns()) {
            t.networks.insert(n.id.clone(), DnsNetwork { name: n.name.clone(), internal: n.internal, endpoints: vec![] });
        }
        for sb in state.sandboxes.values() {
            let mut req = DnsRequester::default();
            for ep in &sb.endpoints {
                let Some(dn) = t.networks.get_mut(&ep.network_id) else { continue };
                dn.endpoints.push(DnsEndpoint {
                    container_id: sb.container_id.clone(),
                    names: ep.dns_names.clone(),
                    ipv4: ep.ipv4.and_then(|a| match a.addr() {
                        IpAddr::V4(v) => Some(v),
                        _ => None,
                    }),
                    ipv6: ep.ipv6.and_then(|a| match a.addr() {
                        IpAddr::V6(v) => Some(v),
                        _ => None,
                    }),
                });
                req.networks.push(ep.network_id.clone());
                req.links.extend(ep.links.iter().map(|(target, alias)| (alias.to_ascii_lowercase(), target.clone())));
            }
            t.requesters.insert(sb.container_id.clone(), req);
        }
        // Containers sharing another's namespace see what it sees.
        for sb in state.sandboxes.values() {
            if let Some(owner) = &sb.joined
                && let Some(r) = t.requesters.get(owner).cloned()
            {
                t.requesters.insert(sb.container_id.clone(), r);
            }
        }
        *self.dns.write().unwrap_or_else(|p| p.into_inner()) = t;
    }
}

/// The names the embedded DNS answers for an endpoint: the container's
/// name, its short id, its aliases (lower case, each once).
fn dns_names(container: &str, name: &str, aliases: &[String]) -> Vec<String> {
    let short = &container[..container.len().min(12)];
    let mut out: Vec<String> = Vec::new();
    for n in std::iter::once(name).chain(std::iter::once(short)).chain(aliases.iter().map(String::as_str)) {
        let n = n.trim_start_matches('/').to_ascii_lowercase();
        if !n.is_empty() && !out.contains(&n) {
            out.push(n);
        }
    }
    out
}

fn release_endpoint(state: &mut State, ep: &Endpoint) {
    if let Some(allocs) = state.ipam.get_mut(&ep.network_id) {
        for a in [ep.ipv4, ep.ipv6].into_iter().flatten() {
            for al in allocs.iter_mut() {
                if al.contains(a.addr()) {
                    al.release(a.addr());
                }
            }
        }
    }
}

fn rebuild_allocations(state: &mut State) {
    state.ipam = state.networks.values().map(|n| (n.id.clone(), n.subnets.iter().cloned().map(SubnetAllocator::new).collect::<Vec<_>>())).collect();
    // The old allocator (and its sockets) goes before the ports are marked
    // (and bound) again.
    state.ports = state.ports.emptied();
    for sb in state.sandboxes.values() {
        for m in &sb.ports {
            state.ports.mark(m);
        }
        for ep in &sb.endpoints {
            if let Some(allocs) = state.ipam.get_mut(&ep.network_id) {
                for a in [ep.ipv4, ep.ipv6].into_iter().flatten() {
                    for al in allocs.iter_mut() {
                        if al.contains(a.addr()) {
                            al.mark(a.addr());
                        }
                    }
                }
            }
        }
    }
}

/// How long [`wait_until_usable`] waits for the kernel at most.
const READY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

/// Wait until the kernel has finished bringing a new endpoint up, so that
/// the container's first packets are not lost: links just set up are
/// activated (their transmit queues, the bridge port leaving the disabled
/// state, the bridge's own carrier) by the kernel's link-watch work, and
/// IPv6 addresses become reachable by its address configuration work, both
/// run later from work queues; on a loaded host that can be long enough for
/// a first ARP request or TCP SYN to be dropped, costing the container a
/// second or a failed lookup. Bounded: a link that stays without carrier
/// has nothing pending, and after [`READY_TIMEOUT`] the endpoint is used as
/// it is.
fn wait_until_usable(host: &mut Netlink, inner: &mut Netlink, ep: &Endpoint, bridge: Option<&str>) -> Result<(), NetlinkError> {
    let deadline = std::time::Instant::now() + READY_TIMEOUT;
    let v6: Vec<IpAddr> = ep.ipv6.iter().map(|a| a.addr()).collect();
    loop {
        let mut ready = inner.readiness(&ep.ifname)?.is_none_or(|r| r.settled());
        if ready && let Some(h) = &ep.host_ifname {
            ready = host.readiness(h)?.is_none_or(|r| r.settled());
        }
        if ready && let Some(b) = bridge {
            ready = host.readiness(b)?.is_none_or(|r| r.settled());
        }
        for a in &v6 {
            if ready {
                ready = inner.is_local(*a)?;
            }
        }
        if ready {
            return Ok(());
        }
        if std::time::Instant::now() >= deadline {
            tracing::warn!("endpoint {} ({}): links not ready after {READY_TIMEOUT:?}, going on", ep.ifname, ep.host_ifname.as_deref().unwrap_or("-"));
            return Ok(());
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

fn sub_mode(net: &Network) -> Result<SubKind, NetworkError> {
    let bad = |key: &str, v: &str| NetworkError::InvalidOption { key: key.into(), value: v.into(), reason: "unknown mode".into() };
    Ok(match net.driver {
        Driver::Macvlan => SubKind::Macvlan(match net.options.get(opts::MACVLAN_MODE).map(String::as_str).unwrap_or("bridge") {
            "bridge" => MacvlanMode::Bridge,
            "private" => MacvlanMode::Private,
            "vepa" => MacvlanMode::Vepa,
            "passthru" => MacvlanMode::Passthru,
            v => return Err(bad(opts::MACVLAN_MODE, v)),
        }),
        Driver::Ipvlan => SubKind::Ipvlan(match net.options.get(opts::IPVLAN_MODE).map(String::as_str).unwrap_or("l2") {
            "l2" => IpvlanMode::L2,
            "l3" => IpvlanMode::L3,
            "l3s" => IpvlanMode::L3s,
            v => return Err(bad(opts::IPVLAN_MODE, v)),
        }),
        Driver::Bridge => SubKind::Macvlan(MacvlanMode::Bridge),
    })
}
