//! berth's container networking, as a library the daemon drives.
//!
//! docker's model: a *sandbox* is a container's network namespace (a file
//! under the exec root the runtime joins by path), an *endpoint* is its
//! place on one *network* (a veth pair into a bridge, or a macvlan/ipvlan
//! sub-interface), and the network is the bridge with its subnets, IPAM,
//! firewall rules and embedded DNS.
//!
//! [`Controller`] is the entry point; its documentation walks the calls in
//! the order the daemon makes them (daemon start, network create, container
//! start, live connect/disconnect, container stop). [`DnsServer`] runs in the
//! daemon's tokio runtime beside it. [`files`] makes `/etc/hosts` and
//! `/etc/resolv.conf`; [`ports`] parses `-p` and the API's port bindings.
//!
//! Modules, lowest first: [`ipam`], [`ports`], [`files`] and [`firewall`]'s
//! rendering are pure; [`netlink`] (a blocking rtnetlink socket) and
//! [`netns`] (namespace files) touch the kernel; [`store`] persists the
//! [`model`] records; [`controller`] ties them together.

pub mod controller;
pub mod dns;
pub mod docker;
pub mod files;
pub mod firewall;
pub mod ipam;
pub mod model;
pub mod netlink;
pub mod netns;
pub mod ports;
pub mod store;

pub use controller::{Config, Controller, DefaultBridge, NetworkError, ReconcileReport, TeardownError};
pub use dns::{DnsServer, DnsTable};
pub use firewall::{LibNftables, Nft, NftCommand, RecordingNft, system_nft};
pub use model::{Driver, Endpoint, EndpointSpec, IpamRequest, Network, NetworkCreate, NetworkView, Sandbox, SandboxMode};
pub use ports::{BindProbe, PortMapping, PortRequest, Proto};
