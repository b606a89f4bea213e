//! Typed, blocking rtnetlink: the link, address and route operations the
//! drivers need, one request and its acknowledgement at a time.
//!
//! A [`Netlink`] socket works in the network namespace it was opened in
//! ([`Netlink::open`] for the caller's, [`crate::netns::Netns::netlink`]
//! for a sandbox's), whichever thread uses it later.

use std::net::IpAddr;
use std::os::fd::RawFd;

use berth_api::ErrorKind;
use ipnet::IpNet;
use netlink_packet_core::{
    NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL, NLM_F_REQUEST, NetlinkHeader, NetlinkMessage, NetlinkPayload,
};
use netlink_packet_route::address::{AddressAttribute, AddressFlags, AddressMessage};
use netlink_packet_route::link::{
    BridgePortState, InfoBridgePort, InfoData, InfoIpVlan, InfoKind, InfoMacVlan, InfoPortData, InfoPortKind, InfoVeth,
    IpVlanMode, LinkAttribute, LinkFlags, LinkInfo, LinkMessage, MacVlanMode, State,
};
use netlink_packet_route::route::{RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{SocketAddr, protocols::NETLINK_ROUTE};

/// Errors from netlink requests, naming the operation and the object.
#[derive(Debug, thiserror::Error)]
pub enum NetlinkError {
    #[error("netlink socket: {source}")]
    Socket { source: std::io::Error },
    #[error("{op} {object}: {source}")]
    Request { op: &'static str, object: String, source: std::io::Error },
    #[error("{op} {object}: malformed netlink answer: {detail}")]
    Decode { op: &'static str, object: String, detail: String },
    #[error("link {name} not found")]
    NoLink { name: String },
}

impl NetlinkError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            NetlinkError::NoLink { .. } => ErrorKind::NotFound,
            NetlinkError::Request { source, .. } if source.raw_os_error() == Some(libc::EEXIST) => ErrorKind::Conflict,
            _ => ErrorKind::Internal,
        }
    }

    /// The errno the kernel answered with, if any.
    pub fn errno(&self) -> Option<i32> {
        match self {
            NetlinkError::Request { source, .. } | NetlinkError::Socket { source } => source.raw_os_error(),
            _ => None,
        }
    }
}

/// Which sub-interface to create on a parent link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubKind {
    /// macvlan in `bridge`, `private`, `vepa` or `passthru` mode.
    Macvlan(MacvlanMode),
    /// ipvlan in `l2`, `l3` or `l3s` mode.
    Ipvlan(IpvlanMode),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MacvlanMode {
    Bridge,
    Private,
    Vepa,
    Passthru,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpvlanMode {
    L2,
    L3,
    L3s,
}

/// One link as a dump reports it.
#[derive(Debug, Clone)]
pub struct LinkSummary {
    pub index: u32,
    pub name: String,
    /// The `IFLA_INFO_KIND` (`bridge`, `veth`, `macvlan`...), if any.
    pub kind: Option<String>,
}

/// Whether the kernel is done bringing a link up, as far as traffic goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkReadiness {
    /// The carrier is on (for a veth: both ends are up).
    pub carrier: bool,
    /// The operational state is up. The kernel sets it, activates the
    /// link's transmit queue and tells a bridge the port has a carrier
    /// from its link-watch work, some time after the carrier came on;
    /// until then packets sent through the link are dropped.
    pub oper_up: bool,
    /// For a bridge port, its STP state (`None` for other links).
    pub bridge_port: Option<BridgePortState>,
}

impl LinkReadiness {
    /// Traffic passes, or never will by waiting: no carrier (nothing
    /// pending), or up and, on a bridge, past the disabled port state (a
    /// bridge with STP on moves it through listening and learning itself).
    pub fn settled(&self) -> bool {
        !self.carrier || (self.oper_up && self.bridge_port != Some(BridgePortState::Disabled))
    }
}

/// A blocking NETLINK_ROUTE socket.
pub struct Netlink {
    socket: netlink_sys::Socket,
    seq: u32,
    buf: Vec<u8>,
}

fn io(e: std::io::Error) -> NetlinkError {
    NetlinkError::Socket { source: e }
}

impl Netlink {
    /// A socket in the calling thread's network namespace.
    pub fn open() -> Result<Netlink, NetlinkError> {
        let mut socket = netlink_sys::Socket::new(NETLINK_ROUTE).map_err(io)?;
        socket.bind(&SocketAddr::new(0, 0)).map_err(io)?;
        socket.connect(&SocketAddr::new(0, 0)).map_err(io)?;
        let _ = socket.set_ext_ack(true);
        Ok(Netlink { socket, seq: 0, buf: vec![0; 32768] })
    }

    fn request(&mut self, msg: RouteNetlinkMessage, flags: u16, op: &'static str, object: &str) -> Result<Vec<RouteNetlinkMessage>, NetlinkError> {
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | flags;
        self.seq = self.seq.wrapping_add(1);
        header.sequence_number = self.seq;
        let mut packet = NetlinkMessage::new(header, NetlinkPayload::from(msg));
        packet.finalize();
        let mut out = vec![0u8; packet.buffer_len()];
        packet.serialize(&mut out);
        self.socket.send(&out, 0).map_err(|source| NetlinkError::Request { op, object: object.to_owned(), source })?;
        let dump = flags & NLM_F_DUMP == NLM_F_DUMP;
        let mut result = Vec::new();
        loop {
            let n = self.socket.recv(&mut &mut self.buf[..], 0).map_err(|source| NetlinkError::Request { op, object: object.to_owned(), source })?;
            let mut offset = 0;
            while offset < n {
                let bytes = &self.buf[offset..n];
                let rx: NetlinkMessage<RouteNetlinkMessage> = NetlinkMessage::deserialize(bytes)
                    .map_err(|e| NetlinkError::Decode { op, object: object.to_owned(), detail: e.to_string() })?;
                let len = rx.header.length as usize;
                if rx.header.sequence_number != self.seq {
                    // A late answer to an earlier request: skip it.
                    offset += len.max(1);
                    continue;
                }
                match rx.payload {
                    NetlinkPayload::Done(_) => return Ok(result),
                    NetlinkPayload::Error(e) => {
                        return match e.code {
                            Some(code) => Err(NetlinkError::Request { op, object: object.to_owned(), source: std::io::Error::from_raw_os_error(-code.get()) }),
                            None => Ok(result),
                        };
                    }
                    NetlinkPayload::InnerMessage(m) => {
                        result.push(m);
                        if !dump && flags & NLM_F_ACK == 0 {
                            return Ok(result);
                        }
                    }
                    _ => {}
                }
                if len == 0 {
                    break;
                }
                offset += len;
            }
        }
    }

    fn ack(&mut self, msg: RouteNetlinkMessage, flags: u16, op: &'static str, object: &str) -> Result<(), NetlinkError> {
        self.request(msg, NLM_F_ACK | flags, op, object).map(|_| ())
    }

    /// Link `name` as the kernel describes it, `None` when there is none.
    fn get_link(&mut self, name: &str) -> Result<Option<LinkMessage>, NetlinkError> {
        let mut m = LinkMessage::default();
        m.attributes.push(LinkAttribute::IfName(name.to_owned()));
        match self.request(RouteNetlinkMessage::GetLink(m), 0, "get link", name) {
            Ok(mut v) => match v.pop() {
                Some(RouteNetlinkMessage::NewLink(l)) => Ok(Some(l)),
                _ => Ok(None),
            },
            Err(e) if matches!(e.errno(), Some(libc::ENODEV) | Some(libc::ENOENT)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The index of link `name`, `None` when there is none.
    pub fn link_index(&mut self, name: &str) -> Result<Option<u32>, NetlinkError> {
        Ok(self.get_link(name)?.map(|l| l.header.index))
    }

    /// Carrier, operational state and bridge port state of link `name`,
    /// `None` when there is no such link.
    pub fn readiness(&mut self, name: &str) -> Result<Option<LinkReadiness>, NetlinkError> {
        let Some(l) = self.get_link(name)? else { return Ok(None) };
        let mut r = LinkReadiness { carrier: false, oper_up: false, bridge_port: None };
        for a in &l.attributes {
            match a {
                LinkAttribute::Carrier(c) => r.carrier = *c != 0,
                LinkAttribute::OperState(s) => r.oper_up = *s == State::Up,
                LinkAttribute::LinkInfo(infos) => {
                    for i in infos {
                        if let LinkInfo::PortData(InfoPortData::BridgePort(opts)) = i {
                            for o in opts {
                                if let InfoBridgePort::State(s) = o {
                                    r.bridge_port = Some(*s);
                                }
                            }
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(Some(r))
    }

    /// Whether the namespace receives packets for `addr` as its own: the
    /// kernel's route to it is a local one. (An IPv6 address gets that
    /// route only once the kernel has finished its duplicate address
    /// detection, immediate for `nodad` addresses but done asynchronously.)
    pub fn is_local(&mut self, addr: IpAddr) -> Result<bool, NetlinkError> {
        let mut m = RouteMessage::default();
        m.header.address_family = if addr.is_ipv4() { AddressFamily::Inet } else { AddressFamily::Inet6 };
        m.header.destination_prefix_length = if addr.is_ipv4() { 32 } else { 128 };
        m.attributes.push(RouteAttribute::Destination(RouteAddress::from(addr)));
        match self.request(RouteNetlinkMessage::GetRoute(m), 0, "get route", &addr.to_string()) {
            Ok(v) => Ok(v.iter().any(|m| matches!(m, RouteNetlinkMessage::NewRoute(r) if r.header.kind == RouteType::Local))),
            Err(e) if matches!(e.errno(), Some(libc::ENETUNREACH) | Some(libc::EHOSTUNREACH) | Some(libc::ENOENT)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    fn require(&mut self, name: &str) -> Result<u32, NetlinkError> {
        self.link_index(name)?.ok_or_else(|| NetlinkError::NoLink { name: name.to_owned() })
    }

    /// Every link of the namespace.
    pub fn links(&mut self) -> Result<Vec<LinkSummary>, NetlinkError> {
        let msgs = self.request(RouteNetlinkMessage::GetLink(LinkMessage::default()), NLM_F_DUMP, "dump links", "")?;
        Ok(msgs
            .into_iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewLink(l) => Some(summarize(&l)),
                _ => None,
            })
            .collect())
    }

    fn new_link(&mut self, name: &str, info: Vec<LinkInfo>, extra: Vec<LinkAttribute>) -> Result<(), NetlinkError> {
        let mut m = LinkMessage::default();
        m.attributes.push(LinkAttribute::IfName(name.to_owned()));
        m.attributes.extend(extra);
        m.attributes.push(LinkAttribute::LinkInfo(info));
        self.ack(RouteNetlinkMessage::NewLink(m), NLM_F_CREATE | NLM_F_EXCL, "create link", name)
    }

    /// Create a bridge (no error if one of that name exists) and return its index.
    pub fn ensure_bridge(&mut self, name: &str, mtu: Option<u32>) -> Result<u32, NetlinkError> {
        if let Some(i) = self.link_index(name)? {
            return Ok(i);
        }
        let mut extra = Vec::new();
        if let Some(m) = mtu {
            extra.push(LinkAttribute::Mtu(m));
        }
        match self.new_link(name, vec![LinkInfo::Kind(InfoKind::Bridge)], extra) {
            Ok(()) => {}
            Err(e) if e.errno() == Some(libc::EEXIST) => {}
            Err(e) => return Err(e),
        }
        self.require(name)
    }

    /// Create a dummy link (the parent of a macvlan network given no
    /// parent); a kernel without dummy links gets an empty bridge instead.
    pub fn ensure_dummy(&mut self, name: &str) -> Result<u32, NetlinkError> {
        if let Some(i) = self.link_index(name)? {
            return Ok(i);
        }
        match self.new_link(name, vec![LinkInfo::Kind(InfoKind::Dummy)], vec![]) {
            Err(e) if e.errno() == Some(libc::EOPNOTSUPP) => {
                self.new_link(name, vec![LinkInfo::Kind(InfoKind::Bridge)], vec![])?;
            }
            r => r?,
        }
        self.require(name)
    }

    /// Create a veth pair: `host` here, `peer` directly in the namespace
    /// `peer_netns` (an open netns fd) with `peer_mac`.
    pub fn create_veth(&mut self, host: &str, peer: &str, peer_netns: RawFd, mtu: Option<u32>, peer_mac: Option<[u8; 6]>) -> Result<(), NetlinkError> {
        let mut p = LinkMessage::default();
        p.attributes.push(LinkAttribute::IfName(peer.to_owned()));
        p.attributes.push(LinkAttribute::NetNsFd(peer_netns));
        if let Some(m) = mtu {
            p.attributes.push(LinkAttribute::Mtu(m));
        }
        if let Some(mac) = peer_mac {
            p.attributes.push(LinkAttribute::Address(mac.to_vec()));
        }
        let mut extra = Vec::new();
        if let Some(m) = mtu {
            extra.push(LinkAttribute::Mtu(m));
        }
        self.new_link(host, vec![LinkInfo::Kind(InfoKind::Veth), LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(p)))], extra)
    }

    /// Create a macvlan/ipvlan link named `name` on `parent`, directly in
    /// the namespace `netns`.
    pub fn create_sub(&mut self, name: &str, parent: u32, kind: SubKind, netns: RawFd, mtu: Option<u32>, mac: Option<[u8; 6]>) -> Result<(), NetlinkError> {
        let mut extra = vec![LinkAttribute::Link(parent), LinkAttribute::NetNsFd(netns)];
        if let Some(m) = mtu {
            extra.push(LinkAttribute::Mtu(m));
        }
        let info = match kind {
            SubKind::Macvlan(mode) => {
                if let Some(mac) = mac {
                    extra.push(LinkAttribute::Address(mac.to_vec()));
                }
                let mode = match mode {
                    MacvlanMode::Bridge => MacVlanMode::Bridge,
                    MacvlanMode::Private => MacVlanMode::Private,
                    MacvlanMode::Vepa => MacVlanMode::Vepa,
                    MacvlanMode::Passthru => MacVlanMode::Passthrough,
                };
                vec![LinkInfo::Kind(InfoKind::MacVlan), LinkInfo::Data(InfoData::MacVlan(vec![InfoMacVlan::Mode(mode)]))]
            }
            SubKind::Ipvlan(mode) => {
                let mode = match mode {
                    IpvlanMode::L2 => IpVlanMode::L2,
                    IpvlanMode::L3 => IpVlanMode::L3,
                    IpvlanMode::L3s => IpVlanMode::L3S,
                };
                vec![LinkInfo::Kind(InfoKind::IpVlan), LinkInfo::Data(InfoData::IpVlan(vec![InfoIpVlan::Mode(mode)]))]
            }
        };
        self.new_link(name, info, extra)
    }

    fn set_link(&mut self, index: u32, attrs: Vec<LinkAttribute>, up: bool, op: &'static str, object: &str) -> Result<(), NetlinkError> {
        let mut m = LinkMessage::default();
        m.header.index = index;
        if up {
            m.header.flags = LinkFlags::Up;
            m.header.change_mask = LinkFlags::Up;
        }
        m.attributes = attrs;
        self.ack(RouteNetlinkMessage::SetLink(m), 0, op, object)
    }

    /// Bring link `name` up.
    pub fn set_up(&mut self, name: &str) -> Result<u32, NetlinkError> {
        let i = self.require(name)?;
        self.set_link(i, vec![], true, "set up", name)?;
        Ok(i)
    }

    /// Attach `name` to the bridge `master`, with hairpin mode (so that a
    /// container reaches its own published ports through the host), and
    /// bring it up.
    pub fn enslave(&mut self, name: &str, master: u32) -> Result<(), NetlinkError> {
        let i = self.require(name)?;
        self.set_link(i, vec![LinkAttribute::Controller(master)], true, "attach to bridge", name)?;
        let port = vec![
            LinkInfo::PortKind(InfoPortKind::Bridge),
            LinkInfo::PortData(InfoPortData::BridgePort(vec![InfoBridgePort::HairpinMode(true)])),
        ];
        // Port options are changed through RTM_NEWLINK on the existing link
        // (the kernel's slave_changelink), not RTM_SETLINK.
        let mut m = LinkMessage::default();
        m.header.index = i;
        m.attributes.push(LinkAttribute::LinkInfo(port));
        self.ack(RouteNetlinkMessage::NewLink(m), 0, "set hairpin", name)
    }

    /// Delete link `name`; `Ok(false)` when it did not exist.
    pub fn delete_link(&mut self, name: &str) -> Result<bool, NetlinkError> {
        let Some(i) = self.link_index(name)? else { return Ok(false) };
        let mut m = LinkMessage::default();
        m.header.index = i;
        match self.ack(RouteNetlinkMessage::DelLink(m), 0, "delete link", name) {
            Ok(()) => Ok(true),
            Err(e) if e.errno() == Some(libc::ENODEV) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Add `addr` (address and prefix) to link `index`; an address already
    /// there is fine.
    pub fn add_address(&mut self, index: u32, addr: IpNet, object: &str) -> Result<(), NetlinkError> {
        let mut m = AddressMessage::default();
        m.header.index = index;
        m.header.prefix_len = addr.prefix_len();
        match addr {
            IpNet::V4(v4) => {
                m.header.family = AddressFamily::Inet;
                m.attributes.push(AddressAttribute::Local(addr.addr()));
                m.attributes.push(AddressAttribute::Address(addr.addr()));
                if v4.prefix_len() < 31 {
                    m.attributes.push(AddressAttribute::Broadcast(v4.broadcast()));
                }
            }
            IpNet::V6(_) => {
                m.header.family = AddressFamily::Inet6;
                m.attributes.push(AddressAttribute::Address(addr.addr()));
                // No duplicate address detection: the address is ours by IPAM.
                m.attributes.push(AddressAttribute::Flags(AddressFlags::Nodad));
            }
        }
        match self.ack(RouteNetlinkMessage::NewAddress(m), NLM_F_CREATE | NLM_F_EXCL, "add address", &format!("{addr} on {object}")) {
            Err(e) if e.errno() == Some(libc::EEXIST) => Ok(()),
            r => r,
        }
    }

    /// Add a default route via `gateway` out of link `index`.
    pub fn add_default_route(&mut self, index: u32, gateway: IpAddr, object: &str) -> Result<(), NetlinkError> {
        let mut m = RouteMessage::default();
        m.header.table = RouteHeader::RT_TABLE_MAIN;
        m.header.protocol = RouteProtocol::Static;
        m.header.scope = RouteScope::Universe;
        m.header.kind = RouteType::Unicast;
        m.header.address_family = if gateway.is_ipv4() { AddressFamily::Inet } else { AddressFamily::Inet6 };
        m.header.destination_prefix_length = 0;
        m.attributes.push(RouteAttribute::Gateway(RouteAddress::from(gateway)));
        m.attributes.push(RouteAttribute::Oif(index));
        match self.ack(RouteNetlinkMessage::NewRoute(m), NLM_F_CREATE | NLM_F_EXCL, "add default route", &format!("via {gateway} on {object}")) {
            Err(e) if e.errno() == Some(libc::EEXIST) => Ok(()),
            r => r,
        }
    }
}

fn summarize(l: &LinkMessage) -> LinkSummary {
    let mut name = String::new();
    let mut kind = None;
    for a in &l.attributes {
        match a {
            LinkAttribute::IfName(n) => name = n.clone(),
            LinkAttribute::LinkInfo(infos) => {
                for i in infos {
                    if let LinkInfo::Kind(k) = i {
                        kind = Some(k.to_string());
                    }
                }
            }
            _ => {}
        }
    }
    LinkSummary { index: l.header.index, name, kind }
}
