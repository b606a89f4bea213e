//! The records berth keeps about networks and sandboxes, and the requests
//! that create them. They are what the daemon renders as docker's JSON
//! (`network inspect`, a container's `NetworkSettings`).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::ipam::SubnetConfig;
use crate::ports::PortMapping;

/// Network drivers berth has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Driver {
    Bridge,
    Macvlan,
    Ipvlan,
}

impl Driver {
    pub fn as_str(self) -> &'static str {
        match self {
            Driver::Bridge => "bridge",
            Driver::Macvlan => "macvlan",
            Driver::Ipvlan => "ipvlan",
        }
    }
}

/// docker's option keys berth reads.
pub mod opts {
    pub const BRIDGE_NAME: &str = "com.docker.network.bridge.name";
    pub const MTU: &str = "com.docker.network.driver.mtu";
    pub const ICC: &str = "com.docker.network.bridge.enable_icc";
    pub const MASQUERADE: &str = "com.docker.network.bridge.enable_ip_masquerade";
    pub const DEFAULT_BRIDGE: &str = "com.docker.network.bridge.default_bridge";
    pub const HOST_BINDING_IPV4: &str = "com.docker.network.bridge.host_binding_ipv4";
    pub const PARENT: &str = "parent";
    pub const MACVLAN_MODE: &str = "macvlan_mode";
    pub const IPVLAN_MODE: &str = "ipvlan_mode";
}

/// `POST /networks/create`, already split into typed fields.
#[derive(Debug, Clone, Default)]
pub struct NetworkCreate {
    pub name: String,
    /// `bridge` (default), `macvlan` or `ipvlan`.
    pub driver: Option<String>,
    /// One entry per `--subnet` (with its `--ip-range`, `--gateway`, `--aux-address`).
    pub ipam: Vec<IpamRequest>,
    pub ipv6: bool,
    pub internal: bool,
    pub attachable: bool,
    pub labels: BTreeMap<String, String>,
    pub options: BTreeMap<String, String>,
}

/// One `IPAM.Config` entry of a create request, as strings.
#[derive(Debug, Clone, Default)]
pub struct IpamRequest {
    pub subnet: Option<String>,
    pub ip_range: Option<String>,
    pub gateway: Option<String>,
    pub aux_addresses: BTreeMap<String, String>,
}

/// A network, as persisted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Network {
    pub id: String,
    pub name: String,
    pub driver: Driver,
    /// RFC 3339 creation time.
    pub created: String,
    pub subnets: Vec<SubnetConfig>,
    pub enable_ipv6: bool,
    pub internal: bool,
    pub attachable: bool,
    pub labels: BTreeMap<String, String>,
    pub options: BTreeMap<String, String>,
    /// The bridge device (bridge driver) or the parent link (macvlan, ipvlan).
    pub device: String,
    /// Whether berth created `device` (a bridge, or the dummy parent of a
    /// macvlan/ipvlan network given no `parent`) and deletes it with the
    /// network; a bridge that existed before `network create` is left alone.
    pub owned_device: bool,
    pub mtu: Option<u32>,
    /// The default `bridge` network: cannot be removed, no DNS, no `--ip`.
    pub predefined: bool,
}

impl Network {
    fn opt_bool(&self, key: &str, default: bool) -> bool {
        self.options.get(key).map(|v| v == "true" || v == "1").unwrap_or(default)
    }

    pub fn icc(&self) -> bool {
        self.opt_bool(opts::ICC, true)
    }

    pub fn masquerade(&self) -> bool {
        self.opt_bool(opts::MASQUERADE, true)
    }

    /// Whether containers on it get the embedded DNS (user-defined networks).
    pub fn has_dns(&self) -> bool {
        !self.predefined
    }
}

/// A container's place on one network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    pub network_id: String,
    /// The container's name (`Containers.<id>.Name` of `network inspect`).
    pub container_name: String,
    pub endpoint_id: String,
    /// Name inside the sandbox: `eth0`, `eth1`...
    pub ifname: String,
    /// The host end of the veth pair (bridge driver).
    pub host_ifname: Option<String>,
    pub mac: String,
    pub ipv4: Option<IpNet>,
    pub ipv6: Option<IpNet>,
    pub gateway4: Option<IpAddr>,
    pub gateway6: Option<IpAddr>,
    /// `--network-alias`.
    pub aliases: Vec<String>,
    /// Names the embedded DNS answers for this endpoint (container name,
    /// short id, aliases).
    pub dns_names: Vec<String>,
    /// `--link target:alias` on this network: (target container id, alias).
    pub links: Vec<(String, String)>,
    /// Whether the sandbox's default route goes through this endpoint.
    pub gateway_provider: bool,
    /// Whether the address was given with `--ip`/`--ip6` (kept across restarts, as docker).
    #[serde(default)]
    pub static_ip: bool,
}

/// A container's network namespace and what is attached to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sandbox {
    pub container_id: String,
    /// The namespace file the container joins (`{"type": "network", "path": ...}`).
    pub netns: PathBuf,
    /// `Some(owner)` for `--net container:<owner>`: the namespace is the
    /// owner's and is not removed with this sandbox.
    pub joined: Option<String>,
    pub endpoints: Vec<Endpoint>,
    /// Published ports, DNATed to the address on `ports_network`.
    pub ports: Vec<PortMapping>,
    pub ports_network: Option<String>,
}

/// How a sandbox is made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SandboxMode {
    /// A new namespace with only `lo` (then `connect` adds networks; `--net none` stops there).
    New,
    /// `--net container:<id>`: share the namespace of that container's sandbox.
    Join(String),
}

/// `connect` options for one endpoint (`EndpointSettings` of the API).
#[derive(Debug, Clone, Default)]
pub struct EndpointSpec {
    /// The container's name (no leading `/`), answered by the DNS.
    pub container_name: String,
    /// `--ip`.
    pub ipv4: Option<IpAddr>,
    /// `--ip6`.
    pub ipv6: Option<IpAddr>,
    /// `--network-alias` / `--alias`.
    pub aliases: Vec<String>,
    /// `--link target:alias` on a user-defined network: (target id, alias).
    pub links: Vec<(String, String)>,
    /// `--mac-address`.
    pub mac: Option<String>,
}

/// A network with its endpoints, for `network inspect` / `ls`.
#[derive(Debug, Clone)]
pub struct NetworkView {
    pub network: Network,
    /// Container id → its endpoint on this network.
    pub containers: BTreeMap<String, Endpoint>,
}
