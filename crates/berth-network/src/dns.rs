//! The embedded DNS server of user-defined networks.
//!
//! - [`DnsTable`] is the pure part: who may see which name. A container
//!   (the *requester*) resolves the names (container name, short id,
//!   `--network-alias`) of every endpoint on the networks it shares with it,
//!   plus its own `--link` aliases; names on networks it is not on do not
//!   exist for it. The controller rebuilds the table after every connect and
//!   disconnect.
//! - [`DnsServer`] serves it with hickory inside berthd's tokio runtime. As
//!   docker does, it listens inside each sandbox on 127.0.0.11 at random
//!   ports, and nft rules in the sandbox send the container's queries for
//!   127.0.0.11:53 there; the socket a query arrives on says who asks, so the
//!   answer needs no lookup of source addresses and works for containers on
//!   several networks at once. Names it does not know are forwarded to the
//!   container's own `--dns` servers when it has some, else to the daemon's
//!   upstream resolvers, from the daemon's namespace (loopback resolvers
//!   work too), except for containers only on `--internal` networks, which
//!   get REFUSED.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use berth_api::ErrorKind;
use hickory_proto::op::{Header, HeaderCounts, Message, Metadata, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, PTR};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use hickory_server::Server;
use hickory_server::net::runtime::Time;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponseBuilder;

use crate::firewall::{Nft, render_sandbox_dns};
use crate::netns::{Netns, NetnsError};

/// Errors from attaching the resolver to a sandbox.
#[derive(Debug, thiserror::Error)]
pub enum DnsError {
    #[error("embedded DNS for container {container}: {source}")]
    Netns { container: String, source: NetnsError },
    #[error("embedded DNS for container {container}: bind 127.0.0.11 in its namespace: {source}")]
    Bind { container: String, source: std::io::Error },
    #[error("embedded DNS for container {container}: {source}")]
    Firewall { container: String, source: crate::firewall::FirewallError },
}

impl DnsError {
    pub fn kind(&self) -> ErrorKind {
        ErrorKind::Internal
    }
}

/// TTL of the answers about containers (docker's: 600 s).
pub const TTL: u32 = 600;

/// One endpoint as the resolver knows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DnsEndpoint {
    pub container_id: String,
    /// Lower-case names: container name, short id, aliases.
    pub names: Vec<String>,
    pub ipv4: Option<Ipv4Addr>,
    pub ipv6: Option<std::net::Ipv6Addr>,
}

/// A network as the resolver knows it.
#[derive(Debug, Clone, Default)]
pub struct DnsNetwork {
    pub name: String,
    pub internal: bool,
    pub endpoints: Vec<DnsEndpoint>,
}

/// What a requester sees: its networks and its `--link` aliases.
#[derive(Debug, Clone, Default)]
pub struct DnsRequester {
    /// Ids of the user-defined networks the container is on.
    pub networks: Vec<String>,
    /// `--link target:alias`: lower-case alias and the target's container id.
    pub links: Vec<(String, String)>,
}

/// The answer to a name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// Known here: the addresses of the asked family (maybe none: NOERROR
    /// without records).
    Found(Vec<IpAddr>),
    /// Not a name of these networks: ask the upstream resolvers.
    Forward,
    /// Not known, and the requester may not reach the outside.
    Refused,
}

/// Names by network and who may see them.
#[derive(Debug, Clone, Default)]
pub struct DnsTable {
    pub networks: HashMap<String, DnsNetwork>,
    pub requesters: HashMap<String, DnsRequester>,
}

fn normalize(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

impl DnsTable {
    fn shared<'a>(&'a self, requester: &'a DnsRequester) -> impl Iterator<Item = &'a DnsNetwork> + 'a {
        requester.networks.iter().filter_map(|id| self.networks.get(id))
    }

    /// Addresses of `name` for `requester` (a container id), of family
    /// `v6` or v4.
    pub fn lookup(&self, requester: &str, name: &str, v6: bool) -> Lookup {
        let Some(req) = self.requesters.get(requester) else { return Lookup::Refused };
        let name = normalize(name);
        let target_ids: Vec<&str> = req.links.iter().filter(|(alias, _)| *alias == name).map(|(_, id)| id.as_str()).collect();
        let mut found = false;
        let mut out = Vec::new();
        for net in self.shared(req) {
            for ep in &net.endpoints {
                if ep.names.contains(&name) || target_ids.contains(&ep.container_id.as_str()) {
                    found = true;
                    let ip = if v6 { ep.ipv6.map(IpAddr::V6) } else { ep.ipv4.map(IpAddr::V4) };
                    if let Some(ip) = ip
                        && !out.contains(&ip)
                    {
                        out.push(ip);
                    }
                }
            }
        }
        if found {
            Lookup::Found(out)
        } else if self.may_forward(requester) {
            Lookup::Forward
        } else {
            Lookup::Refused
        }
    }

    /// The name of the endpoint with address `ip` (`name.network`), for PTR
    /// queries; `None` when `ip` is not on a network the requester shares.
    pub fn reverse(&self, requester: &str, ip: IpAddr) -> Option<String> {
        let req = self.requesters.get(requester)?;
        for net in self.shared(req) {
            for ep in &net.endpoints {
                if ep.ipv4.map(IpAddr::V4) == Some(ip) || ep.ipv6.map(IpAddr::V6) == Some(ip) {
                    return ep.names.first().map(|n| format!("{n}.{}", net.name));
                }
            }
        }
        None
    }

    /// Whether unknown names are forwarded: the requester is on at least one
    /// network with outside access.
    pub fn may_forward(&self, requester: &str) -> bool {
        self.requesters.get(requester).is_some_and(|r| self.shared(r).any(|n| !n.internal))
    }
}

/// The IP a reverse name (`4.3.2.1.in-addr.arpa.` or a nibble `ip6.arpa.`) stands for.
pub fn parse_reverse(name: &str) -> Option<IpAddr> {
    let name = normalize(name);
    if let Some(rest) = name.strip_suffix(".in-addr.arpa") {
        let mut parts: Vec<u8> = rest.split('.').map(|p| p.parse().ok()).collect::<Option<_>>()?;
        if parts.len() != 4 {
            return None;
        }
        parts.reverse();
        return Some(IpAddr::V4(Ipv4Addr::new(parts[0], parts[1], parts[2], parts[3])));
    }
    let rest = name.strip_suffix(".ip6.arpa")?;
    let nibbles: Vec<&str> = rest.split('.').collect();
    if nibbles.len() != 32 {
        return None;
    }
    let mut v: u128 = 0;
    for n in nibbles.iter().rev() {
        v = (v << 4) | u128::from_str_radix(n, 16).ok()?;
    }
    Some(IpAddr::V6(v.into()))
}

/// Where unknown names go.
pub type Upstreams = Arc<RwLock<Vec<SocketAddr>>>;

/// The resolver of one sandbox: answers from the table as `container`.
struct Handler {
    table: Arc<RwLock<DnsTable>>,
    upstreams: Upstreams,
    /// The container's `--dns` servers: used instead of `upstreams` when any.
    own_upstreams: Vec<SocketAddr>,
    container: String,
}

fn fallback_info(request: &Request, code: ResponseCode) -> ResponseInfo {
    let mut metadata = Metadata::new(request.metadata.id, MessageType::Response, request.metadata.op_code);
    metadata.response_code = code;
    ResponseInfo::from(Header { metadata, counts: HeaderCounts::default() })
}

impl Handler {
    /// Ask the upstream resolvers (the container's own, else the
    /// daemon's), in order, over the transport the query came on (a client
    /// retrying over TCP after a truncated answer gets the whole answer).
    async fn forward(&self, request: &Request) -> Option<Message> {
        let upstreams = if self.own_upstreams.is_empty() {
            self.upstreams.read().unwrap_or_else(|p| p.into_inner()).clone()
        } else {
            self.own_upstreams.clone()
        };
        let tcp = request.protocol() == hickory_server::net::xfer::Protocol::Tcp;
        for up in upstreams {
            let answer = if tcp { forward_tcp(request.as_slice(), up).await } else { forward_udp(request.as_slice(), up).await };
            if let Some(m) = answer.and_then(|b| Message::from_vec(&b).ok()) {
                return Some(m);
            }
        }
        None
    }
}

const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(3);

async fn forward_udp(query: &[u8], up: SocketAddr) -> Option<Vec<u8>> {
    let bind: SocketAddr = if up.is_ipv4() { "0.0.0.0:0".parse().unwrap() } else { "[::]:0".parse().unwrap() };
    let sock = tokio::net::UdpSocket::bind(bind).await.ok()?;
    sock.send_to(query, up).await.ok()?;
    let mut buf = vec![0u8; 4096];
    match tokio::time::timeout(UPSTREAM_TIMEOUT, sock.recv_from(&mut buf)).await {
        Ok(Ok((n, from))) if from == up => {
            buf.truncate(n);
            Some(buf)
        }
        _ => None,
    }
}

async fn forward_tcp(query: &[u8], up: SocketAddr) -> Option<Vec<u8>> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let exchange = async {
        let mut s = tokio::net::TcpStream::connect(up).await.ok()?;
        let mut framed = (query.len() as u16).to_be_bytes().to_vec();
        framed.extend_from_slice(query);
        s.write_all(&framed).await.ok()?;
        let mut len = [0u8; 2];
        s.read_exact(&mut len).await.ok()?;
        let mut buf = vec![0u8; u16::from_be_bytes(len) as usize];
        s.read_exact(&mut buf).await.ok()?;
        Some(buf)
    };
    tokio::time::timeout(UPSTREAM_TIMEOUT, exchange).await.ok().flatten()
}

#[async_trait::async_trait]
impl RequestHandler for Handler {
    async fn handle_request<R: ResponseHandler, T: Time>(&self, request: &Request, mut response: R) -> ResponseInfo {
        let builder = MessageResponseBuilder::from_message_request(request);
        if request.metadata.op_code != OpCode::Query || request.metadata.message_type != MessageType::Query {
            return response
                .send_response(builder.error_msg(&request.metadata, ResponseCode::NotImp))
                .await
                .unwrap_or_else(|_| fallback_info(request, ResponseCode::NotImp));
        }
        let Some(query) = request.queries.queries().first() else {
            return response
                .send_response(builder.error_msg(&request.metadata, ResponseCode::FormErr))
                .await
                .unwrap_or_else(|_| fallback_info(request, ResponseCode::FormErr));
        };
        let qname: Name = query.name().into();
        let qtype = query.query_type();
        let text = qname.to_ascii();
        enum Outcome {
            Local(Vec<Record>),
            Forward,
            Refused,
        }
        let outcome = {
            let table = self.table.read().unwrap_or_else(|p| p.into_inner());
            match qtype {
                RecordType::PTR => match parse_reverse(&text).and_then(|ip| table.reverse(&self.container, ip)) {
                    Some(n) => {
                        let target = Name::from_ascii(format!("{n}.")).unwrap_or_else(|_| Name::root());
                        Outcome::Local(vec![Record::from_rdata(qname.clone(), TTL, RData::PTR(PTR(target)))])
                    }
                    None if table.may_forward(&self.container) => Outcome::Forward,
                    None => Outcome::Refused,
                },
                _ => match table.lookup(&self.container, &text, qtype == RecordType::AAAA) {
                    Lookup::Found(ips) => Outcome::Local(
                        ips.into_iter()
                            .filter(|_| matches!(qtype, RecordType::A | RecordType::AAAA))
                            .map(|ip| match ip {
                                IpAddr::V4(v4) => Record::from_rdata(qname.clone(), TTL, RData::A(A(v4))),
                                IpAddr::V6(v6) => Record::from_rdata(qname.clone(), TTL, RData::AAAA(AAAA(v6))),
                            })
                            .collect(),
                    ),
                    Lookup::Forward => Outcome::Forward,
                    Lookup::Refused => Outcome::Refused,
                },
            }
        };
        let mut metadata = Metadata::response_from_request(&request.metadata);
        metadata.recursion_available = true;
        match outcome {
            Outcome::Local(records) => {
                metadata.authoritative = true;
                return response
                    .send_response(builder.build(metadata, records.iter(), [].iter(), [].iter(), [].iter()))
                    .await
                    .unwrap_or_else(|_| fallback_info(request, ResponseCode::ServFail));
            }
            Outcome::Refused => {
                return response
                    .send_response(builder.error_msg(&request.metadata, ResponseCode::Refused))
                    .await
                    .unwrap_or_else(|_| fallback_info(request, ResponseCode::Refused));
            }
            Outcome::Forward => {}
        }
        match self.forward(request).await {
            Some(up) => {
                metadata.response_code = up.metadata.response_code;
                metadata.truncation = up.metadata.truncation;
                response
                    .send_response(builder.build(metadata, up.answers.iter(), up.authorities.iter(), [].iter(), up.additionals.iter()))
                    .await
                    .unwrap_or_else(|_| fallback_info(request, ResponseCode::ServFail))
            }
            None => response
                .send_response(builder.error_msg(&request.metadata, ResponseCode::ServFail))
                .await
                .unwrap_or_else(|_| fallback_info(request, ResponseCode::ServFail)),
        }
    }
}

/// The embedded resolver: one hickory server per attached sandbox, all in
/// the caller's tokio runtime, answering from one shared [`DnsTable`].
///
/// Lifecycle, for each container on a user-defined network:
/// 1. [`crate::Controller::create_sandbox`] and `connect` (the table gets the
///    container's names and networks);
/// 2. [`DnsServer::attach`] with the sandbox's namespace path, before the
///    container starts (its sockets and nft rules live in the namespace);
/// 3. [`DnsServer::detach`] when the container stops, before the sandbox
///    is torn down (the namespace goes with the sandbox anyway).
pub struct DnsServer {
    table: Arc<RwLock<DnsTable>>,
    upstreams: Upstreams,
    nft: Arc<dyn Nft>,
    nft_table: String,
    servers: Mutex<HashMap<String, Server<Handler>>>,
}

impl DnsServer {
    /// A server answering from `table` (see [`crate::Controller::dns_table`]),
    /// forwarding to `upstreams`; `nft_table` names the table it adds in
    /// each sandbox.
    pub fn new(table: Arc<RwLock<DnsTable>>, upstreams: Vec<SocketAddr>, nft: Arc<dyn Nft>, nft_table: &str) -> DnsServer {
        DnsServer { table, upstreams: Arc::new(RwLock::new(upstreams)), nft, nft_table: nft_table.to_owned(), servers: Mutex::new(HashMap::new()) }
    }

    /// Replace the upstream resolvers (the host's resolv.conf changed).
    pub fn set_upstreams(&self, upstreams: Vec<SocketAddr>) {
        *self.upstreams.write().unwrap() = upstreams;
    }

    /// Listen inside the namespace at `netns` on behalf of `container`, and
    /// send its queries for 127.0.0.11:53 there. Must be called within a
    /// tokio runtime; the sockets are served by tasks of that runtime.
    pub async fn attach(&self, container: &str, netns: &Path) -> Result<(), DnsError> {
        self.attach_with(container, netns, Vec::new()).await
    }

    /// [`DnsServer::attach`], forwarding the names the container's networks
    /// do not own to `own_upstreams` (its `--dns` servers) when not empty.
    pub async fn attach_with(&self, container: &str, netns: &Path, own_upstreams: Vec<SocketAddr>) -> Result<(), DnsError> {
        let c = container.to_owned();
        let ns = Netns::open(netns).map_err(|source| DnsError::Netns { container: c.clone(), source })?;
        let nft = self.nft.clone();
        let table = self.nft_table.clone();
        let c2 = c.clone();
        let (udp, tcp) = tokio::task::spawn_blocking(move || -> Result<_, DnsError> {
            let (udp, tcp) = ns
                .run(|| -> std::io::Result<_> {
                    let addr: SocketAddr = "127.0.0.11:0".parse().unwrap();
                    let udp = std::net::UdpSocket::bind(addr)?;
                    let tcp = std::net::TcpListener::bind(addr)?;
                    Ok((udp, tcp))
                })
                .map_err(|source| DnsError::Netns { container: c2.clone(), source })?
                .map_err(|source| DnsError::Bind { container: c2.clone(), source })?;
            let bind = |source| DnsError::Bind { container: c2.clone(), source };
            let (up, tp) = (udp.local_addr().map_err(bind)?.port(), tcp.local_addr().map_err(bind)?.port());
            let script = render_sandbox_dns(&table, up, tp);
            ns.run(move || nft.apply(&script, "sandbox DNS"))
                .map_err(|source| DnsError::Netns { container: c2.clone(), source })?
                .map_err(|source| DnsError::Firewall { container: c2.clone(), source })?;
            Ok((udp, tcp))
        })
        .await
        .expect("dns attach task")?;
        let bind = |source| DnsError::Bind { container: c.clone(), source };
        udp.set_nonblocking(true).map_err(bind)?;
        tcp.set_nonblocking(true).map_err(bind)?;
        let udp = tokio::net::UdpSocket::from_std(udp).map_err(bind)?;
        let tcp = tokio::net::TcpListener::from_std(tcp).map_err(bind)?;
        let mut server = Server::new(Handler { table: self.table.clone(), upstreams: self.upstreams.clone(), own_upstreams, container: c.clone() });
        server.register_socket(udp);
        server.register_listener(tcp, Duration::from_secs(5), 64);
        self.servers.lock().unwrap().insert(c, server);
        Ok(())
    }

    /// Stop answering for `container` (its tasks end, its sockets close).
    pub fn detach(&self, container: &str) {
        if let Some(server) = self.servers.lock().unwrap().remove(container) {
            server.shutdown_token().cancel();
            drop(server);
        }
    }

    /// Containers currently served.
    pub fn attached(&self) -> Vec<String> {
        self.servers.lock().unwrap().keys().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture() -> DnsTable {
        let ep = |id: &str, names: &[&str], v4: &str| DnsEndpoint {
            container_id: id.into(),
            names: names.iter().map(|s| s.to_string()).collect(),
            ipv4: Some(v4.parse().unwrap()),
            ipv6: None,
        };
        let mut t = DnsTable::default();
        t.networks.insert(
            "n1".into(),
            DnsNetwork { name: "front".into(), internal: false, endpoints: vec![ep("a", &["web", "aaaaaaaaaaaa", "www"], "10.1.0.2"), ep("b", &["db"], "10.1.0.3")] },
        );
        t.networks.insert("n2".into(), DnsNetwork { name: "back".into(), internal: true, endpoints: vec![ep("b", &["db", "store"], "10.2.0.2"), ep("c", &["cache"], "10.2.0.3")] });
        t.requesters.insert("a".into(), DnsRequester { networks: vec!["n1".into()], links: vec![("database".into(), "b".into())] });
        t.requesters.insert("b".into(), DnsRequester { networks: vec!["n1".into(), "n2".into()], links: vec![] });
        t.requesters.insert("c".into(), DnsRequester { networks: vec!["n2".into()], links: vec![] });
        t
    }

    fn ips(v: &[&str]) -> Lookup {
        Lookup::Found(v.iter().map(|s| s.parse().unwrap()).collect())
    }

    #[test]
    fn names_aliases_and_links_resolve_on_shared_networks() {
        let t = fixture();
        assert_eq!(t.lookup("b", "web", false), ips(&["10.1.0.2"]));
        assert_eq!(t.lookup("b", "WWW.", false), ips(&["10.1.0.2"]));
        assert_eq!(t.lookup("b", "aaaaaaaaaaaa", false), ips(&["10.1.0.2"]));
        assert_eq!(t.lookup("a", "database", false), ips(&["10.1.0.3"]));
        // b is on both networks: both its addresses are seen by itself.
        assert_eq!(t.lookup("b", "db", false), ips(&["10.1.0.3", "10.2.0.2"]));
        assert_eq!(t.lookup("b", "cache", false), ips(&["10.2.0.3"]));
        // Known name, no IPv6 address: NOERROR, no records.
        assert_eq!(t.lookup("b", "web", true), Lookup::Found(vec![]));
    }

    #[test]
    fn names_are_scoped_per_network() {
        let t = fixture();
        // a is not on "back": cache does not exist for it and is forwarded.
        assert_eq!(t.lookup("a", "cache", false), Lookup::Forward);
        // store is b's alias on "back" only.
        assert_eq!(t.lookup("a", "store", false), Lookup::Forward);
        // c is only on an internal network: nothing is forwarded.
        assert_eq!(t.lookup("c", "example.com", false), Lookup::Refused);
        assert_eq!(t.lookup("c", "web", false), Lookup::Refused);
        assert_eq!(t.lookup("unknown", "web", false), Lookup::Refused);
    }

    #[test]
    fn reverse_lookups() {
        let t = fixture();
        assert_eq!(t.reverse("b", "10.2.0.3".parse().unwrap()).as_deref(), Some("cache.back"));
        assert_eq!(t.reverse("a", "10.2.0.3".parse().unwrap()), None);
        assert_eq!(parse_reverse("3.0.2.10.in-addr.arpa."), Some("10.2.0.3".parse().unwrap()));
        let v6: IpAddr = "fd00::1".parse().unwrap();
        let name = Name::from(v6).to_ascii();
        assert_eq!(parse_reverse(&name), Some(v6));
        assert_eq!(parse_reverse("example.com."), None);
    }
}
