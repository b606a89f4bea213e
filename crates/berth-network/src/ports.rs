//! Published ports: `-p` specs as docker parses them, the Engine API's
//! `PortBindings`, and the choice of host ports.
//!
//! Parsing is pure. [`PortAllocator`] decides host ports: a port berth has
//! already published for another container is refused with docker's
//! `Bind for 0.0.0.0:8080 failed: port is already allocated`; a port some host
//! process holds is found by trying to bind it; random ports (`-p 80`, `-P`)
//! come from the kernel's ephemeral range.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::str::FromStr;

use berth_api::ErrorKind;
use serde::{Deserialize, Serialize};

/// Errors from port specs and host port allocation, with docker's wording.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PortError {
    #[error("invalid proto: {proto}")]
    InvalidProto { proto: String },
    #[error("invalid containerPort: {port}")]
    InvalidContainerPort { port: String },
    #[error("invalid hostPort: {port}")]
    InvalidHostPort { port: String },
    #[error("invalid IP address: {ip}")]
    InvalidIp { ip: String },
    #[error("invalid port format for --publish: {spec}")]
    InvalidFormat { spec: String },
    #[error("invalid ranges specified for container and host Ports: {container} and {host}")]
    RangeMismatch { container: String, host: String },
    #[error("Bind for {host}:{port} failed: port is already allocated")]
    Allocated { host: String, port: u16 },
    #[error("Error starting userland proxy: listen {proto}{family} {host}:{port}: bind: address already in use")]
    HostInUse { proto: Proto, family: u8, host: String, port: u16 },
    #[error("no free host port for {proto} in {first}-{last}")]
    NoFreePort { proto: Proto, first: u16, last: u16 },
}

impl PortError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            PortError::Allocated { .. } | PortError::HostInUse { .. } => ErrorKind::Conflict,
            PortError::NoFreePort { .. } => ErrorKind::Unavailable,
            _ => ErrorKind::InvalidParameter,
        }
    }
}

/// Transport protocol of a published port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    Tcp,
    Udp,
    Sctp,
}

impl Proto {
    pub fn as_str(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
            Proto::Sctp => "sctp",
        }
    }
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Proto {
    type Err = PortError;
    fn from_str(s: &str) -> Result<Proto, PortError> {
        match s.to_ascii_lowercase().as_str() {
            "tcp" | "" => Ok(Proto::Tcp),
            "udp" => Ok(Proto::Udp),
            "sctp" => Ok(Proto::Sctp),
            _ => Err(PortError::InvalidProto { proto: s.to_owned() }),
        }
    }
}

/// One port to publish, before host ports are chosen: a container port and
/// the host side it may use (`None` host range: any free ephemeral port).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortRequest {
    pub container_port: u16,
    pub proto: Proto,
    /// `None`: every address (docker's `0.0.0.0` and `::`).
    pub host_ip: Option<IpAddr>,
    /// `None`: a random port from the ephemeral range.
    pub host_ports: Option<(u16, u16)>,
}

/// A published port once set up: what `docker port` prints and what the
/// firewall DNATs.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PortMapping {
    pub proto: Proto,
    pub container_port: u16,
    /// `None`: every address of the host.
    pub host_ip: Option<IpAddr>,
    pub host_port: u16,
}

impl PortMapping {
    /// `HostIp` as docker reports it in `NetworkSettings.Ports`.
    pub fn host_ip_string(&self) -> String {
        self.host_ip.map(|i| i.to_string()).unwrap_or_else(|| "0.0.0.0".into())
    }
}

fn parse_port(s: &str, container: bool) -> Result<u16, PortError> {
    let err = || if container { PortError::InvalidContainerPort { port: s.to_owned() } } else { PortError::InvalidHostPort { port: s.to_owned() } };
    let p: u16 = s.parse().map_err(|_| err())?;
    if container && p == 0 {
        return Err(err());
    }
    Ok(p)
}

/// `80` or `8000-8010`.
pub fn parse_range(s: &str, container: bool) -> Result<(u16, u16), PortError> {
    match s.split_once('-') {
        Some((a, b)) => {
            let (a, b) = (parse_port(a, container)?, parse_port(b, container)?);
            if b < a {
                return Err(if container { PortError::InvalidContainerPort { port: s.to_owned() } } else { PortError::InvalidHostPort { port: s.to_owned() } });
            }
            Ok((a, b))
        }
        None => {
            let p = parse_port(s, container)?;
            Ok((p, p))
        }
    }
}

/// Parse one `-p` value (`[ip:][hostPort:]containerPort[/proto]`, ranges on
/// either side, IPv6 host addresses in brackets) into one request per
/// container port, as docker's `nat.ParsePortSpec`.
pub fn parse_publish(spec: &str) -> Result<Vec<PortRequest>, PortError> {
    let (rest, proto) = match spec.rsplit_once('/') {
        Some((r, p)) => (r, p.parse::<Proto>()?),
        None => (spec, Proto::Tcp),
    };
    // Split off a bracketed or plain host IP.
    let (ip, rest) = if let Some(stripped) = rest.strip_prefix('[') {
        let (ip, after) = stripped.split_once(']').ok_or_else(|| PortError::InvalidFormat { spec: spec.to_owned() })?;
        let after = after.strip_prefix(':').ok_or_else(|| PortError::InvalidFormat { spec: spec.to_owned() })?;
        (Some(ip), after)
    } else {
        let parts: Vec<&str> = rest.split(':').collect();
        match parts.len() {
            1 | 2 => (None, rest),
            3 => (Some(parts[0]), &rest[parts[0].len() + 1..]),
            _ => {
                // An unbracketed IPv6 address: everything before the last two fields.
                let n = parts.len();
                let ip_len = rest.len() - parts[n - 1].len() - parts[n - 2].len() - 2;
                (Some(&rest[..ip_len]), &rest[ip_len + 1..])
            }
        }
    };
    let host_ip = match ip {
        None | Some("") => None,
        Some(s) => Some(s.parse::<IpAddr>().map_err(|_| PortError::InvalidIp { ip: s.to_owned() })?),
    };
    let (host, container) = match rest.split_once(':') {
        Some((h, c)) => (h, c),
        None => ("", rest),
    };
    if container.is_empty() {
        return Err(PortError::InvalidFormat { spec: spec.to_owned() });
    }
    let (c0, c1) = parse_range(container, true)?;
    let host_range = if host.is_empty() { None } else { Some(parse_range(host, false)?) };
    let count = c1 - c0;
    let mut out = Vec::new();
    match host_range {
        Some((h0, h1)) if h1 - h0 != count => {
            // A host range for a single container port: any one of them.
            if count == 0 {
                out.push(PortRequest { container_port: c0, proto, host_ip, host_ports: Some((h0, h1)) });
            } else {
                return Err(PortError::RangeMismatch { container: container.to_owned(), host: host.to_owned() });
            }
        }
        Some((h0, _)) => {
            for i in 0..=count {
                out.push(PortRequest { container_port: c0 + i, proto, host_ip, host_ports: Some((h0 + i, h0 + i)) });
            }
        }
        None => {
            for i in 0..=count {
                out.push(PortRequest { container_port: c0 + i, proto, host_ip, host_ports: None });
            }
        }
    }
    Ok(out)
}

/// A container port key as the Engine API writes it: `80/tcp`.
pub fn parse_port_key(key: &str) -> Result<(u16, Proto), PortError> {
    let (port, proto) = key.split_once('/').unwrap_or((key, "tcp"));
    Ok((parse_port(port, true)?, proto.parse()?))
}

/// The requests for the Engine API's `HostConfig.PortBindings` (`{"80/tcp":
/// [{"HostIp": "", "HostPort": "8080"}]}`), plus, with `publish_all` (`-P`),
/// a random host port for every exposed port that has no binding.
pub fn requests_from_bindings(
    bindings: &BTreeMap<String, Vec<(String, String)>>,
    exposed: &[String],
    publish_all: bool,
) -> Result<Vec<PortRequest>, PortError> {
    let mut out = Vec::new();
    let mut bound = BTreeSet::new();
    for (key, list) in bindings {
        let (port, proto) = parse_port_key(key)?;
        bound.insert((port, proto));
        for (ip, hp) in list {
            let host_ip = if ip.is_empty() { None } else { Some(ip.parse().map_err(|_| PortError::InvalidIp { ip: ip.clone() })?) };
            let host_ports = if hp.is_empty() { None } else { Some(parse_range(hp, false)?) };
            let host_ports = host_ports.filter(|r| *r != (0, 0));
            out.push(PortRequest { container_port: port, proto, host_ip, host_ports });
        }
        if list.is_empty() && publish_all {
            out.push(PortRequest { container_port: port, proto, host_ip: None, host_ports: None });
        }
    }
    if publish_all {
        for key in exposed {
            let (port, proto) = parse_port_key(key)?;
            if bound.insert((port, proto)) {
                out.push(PortRequest { container_port: port, proto, host_ip: None, host_ports: None });
            }
        }
    }
    Ok(out)
}

/// Whether the host lets us bind `port` (so no host process holds it).
pub trait PortProbe {
    fn is_free(&self, proto: Proto, ip: Option<IpAddr>, port: u16) -> bool;
}

/// Probes by binding a socket for a moment.
pub struct BindProbe;

impl PortProbe for BindProbe {
    fn is_free(&self, proto: Proto, ip: Option<IpAddr>, port: u16) -> bool {
        let addrs: Vec<IpAddr> = match ip {
            Some(ip) => vec![ip],
            None => vec![IpAddr::V4(Ipv4Addr::UNSPECIFIED)],
        };
        addrs.into_iter().all(|ip| {
            let sa = SocketAddr::new(ip, port);
            match proto {
                Proto::Tcp => std::net::TcpListener::bind(sa).is_ok(),
                Proto::Udp => std::net::UdpSocket::bind(sa).is_ok(),
                // SCTP has no std socket: rely on berth's own bookkeeping.
                Proto::Sctp => true,
            }
        })
    }
}

/// Host ports in use by berth's published ports, and the choice of new ones.
#[derive(Debug, Default)]
pub struct PortAllocator {
    used: BTreeSet<(Proto, u16, Option<IpAddr>)>,
    /// The ephemeral range random ports come from.
    pub ephemeral: (u16, u16),
    next: BTreeMap<Proto, u16>,
    /// Sockets bound on the host ports in use, when holding them.
    held: Option<Held>,
}

/// Sockets bound on published host ports for as long as they are published,
/// as docker does: no other program, and no other berthd, is handed a port
/// berth forwards. Connections never reach them (DNAT takes them first).
#[derive(Default)]
struct Held(HashMap<(Proto, u16, Option<IpAddr>), HeldSocket>);

enum HeldSocket {
    Tcp(#[allow(dead_code)] std::net::TcpListener),
    Udp(#[allow(dead_code)] std::net::UdpSocket),
}

impl std::fmt::Debug for Held {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Held({} sockets)", self.0.len())
    }
}

impl Held {
    /// Best effort: a port another program took meanwhile stays unheld.
    fn hold(&mut self, key: (Proto, u16, Option<IpAddr>)) {
        let (proto, port, ip) = key;
        let sa = SocketAddr::new(ip.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)), port);
        let sock = match proto {
            Proto::Tcp => std::net::TcpListener::bind(sa).ok().map(HeldSocket::Tcp),
            Proto::Udp => std::net::UdpSocket::bind(sa).ok().map(HeldSocket::Udp),
            Proto::Sctp => None,
        };
        if let Some(sock) = sock {
            self.0.insert(key, sock);
        }
    }
}

fn clash(a: Option<IpAddr>, b: Option<IpAddr>) -> bool {
    match (a, b) {
        (None, _) | (_, None) => true,
        (Some(x), Some(y)) => x == y || x.is_unspecified() || y.is_unspecified(),
    }
}

impl PortAllocator {
    pub fn new(ephemeral: (u16, u16)) -> PortAllocator {
        PortAllocator { used: BTreeSet::new(), ephemeral, next: BTreeMap::new(), held: None }
    }

    /// An allocator that binds a socket on every host port it marks and
    /// keeps it until the port is released.
    pub fn holding(ephemeral: (u16, u16)) -> PortAllocator {
        PortAllocator { held: Some(Held::default()), ..PortAllocator::new(ephemeral) }
    }

    /// The same allocator, empty (its sockets closed).
    pub fn emptied(&self) -> PortAllocator {
        if self.held.is_some() { PortAllocator::holding(self.ephemeral) } else { PortAllocator::new(self.ephemeral) }
    }

    /// Mark a mapping recorded earlier as in use.
    pub fn mark(&mut self, m: &PortMapping) {
        let key = (m.proto, m.host_port, m.host_ip);
        self.used.insert(key);
        if let Some(h) = &mut self.held {
            h.hold(key);
        }
    }

    pub fn release(&mut self, m: &PortMapping) {
        let key = (m.proto, m.host_port, m.host_ip);
        if let Some(h) = &mut self.held {
            h.0.remove(&key);
        }
        self.used.remove(&key);
    }

    fn taken(&self, proto: Proto, port: u16, ip: Option<IpAddr>) -> bool {
        self.used.iter().any(|(p, hp, hip)| *p == proto && *hp == port && clash(*hip, ip))
    }

    /// Choose host ports for every request, all or none: on an error nothing
    /// stays marked.
    pub fn allocate(&mut self, reqs: &[PortRequest], probe: &dyn PortProbe) -> Result<Vec<PortMapping>, PortError> {
        let mut done: Vec<PortMapping> = Vec::new();
        for r in reqs {
            match self.allocate_one(r, probe) {
                Ok(m) => {
                    self.mark(&m);
                    done.push(m);
                }
                Err(e) => {
                    for m in &done {
                        self.release(m);
                    }
                    return Err(e);
                }
            }
        }
        Ok(done)
    }

    fn allocate_one(&mut self, r: &PortRequest, probe: &dyn PortProbe) -> Result<PortMapping, PortError> {
        let host_str = r.host_ip.map(|i| i.to_string()).unwrap_or_else(|| "0.0.0.0".into());
        let mapping = |port| PortMapping { proto: r.proto, container_port: r.container_port, host_ip: r.host_ip, host_port: port };
        match r.host_ports {
            Some((a, b)) if a == b => {
                if self.taken(r.proto, a, r.host_ip) {
                    return Err(PortError::Allocated { host: host_str, port: a });
                }
                if !probe.is_free(r.proto, r.host_ip, a) {
                    let family = if matches!(r.host_ip, Some(IpAddr::V6(_))) { 6 } else { 4 };
                    return Err(PortError::HostInUse { proto: r.proto, family, host: host_str, port: a });
                }
                Ok(mapping(a))
            }
            Some((a, b)) => (a..=b)
                .find(|p| !self.taken(r.proto, *p, r.host_ip) && probe.is_free(r.proto, r.host_ip, *p))
                .map(mapping)
                .ok_or(PortError::Allocated { host: host_str, port: a }),
            None => {
                let (first, last) = self.ephemeral;
                let start = self.next.get(&r.proto).copied().filter(|p| (first..=last).contains(p)).unwrap_or(first);
                let span = (last - first) as u32 + 1;
                for i in 0..span {
                    let p = first + ((start - first) as u32 + i).rem_euclid(span) as u16;
                    if !self.taken(r.proto, p, r.host_ip) && probe.is_free(r.proto, r.host_ip, p) {
                        self.next.insert(r.proto, if p == last { first } else { p + 1 });
                        return Ok(mapping(p));
                    }
                }
                Err(PortError::NoFreePort { proto: r.proto, first, last })
            }
        }
    }
}

/// The kernel's ephemeral port range (`net.ipv4.ip_local_port_range`).
pub fn ephemeral_range(proc_sys: &std::path::Path) -> (u16, u16) {
    std::fs::read_to_string(proc_sys.join("net/ipv4/ip_local_port_range"))
        .ok()
        .and_then(|s| {
            let mut it = s.split_whitespace().filter_map(|p| p.parse::<u16>().ok());
            Some((it.next()?, it.next()?))
        })
        .unwrap_or((32768, 60999))
}

/// `docker port` lines for `mappings`: `80/tcp -> 0.0.0.0:8080`.
pub fn port_lines(mappings: &[PortMapping]) -> Vec<String> {
    let mut m: Vec<&PortMapping> = mappings.iter().collect();
    m.sort();
    m.iter()
        .map(|m| {
            let host = match m.host_ip {
                Some(IpAddr::V6(v6)) => format!("[{v6}]"),
                Some(ip) => ip.to_string(),
                None => Ipv4Addr::UNSPECIFIED.to_string(),
            };
            format!("{}/{} -> {host}:{}", m.container_port, m.proto, m.host_port)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(spec: &str) -> PortRequest {
        let mut v = parse_publish(spec).unwrap();
        assert_eq!(v.len(), 1, "{spec}");
        v.remove(0)
    }

    #[test]
    fn publish_specs_as_docker_parses_them() {
        assert_eq!(one("80"), PortRequest { container_port: 80, proto: Proto::Tcp, host_ip: None, host_ports: None });
        assert_eq!(one("8080:80"), PortRequest { container_port: 80, proto: Proto::Tcp, host_ip: None, host_ports: Some((8080, 8080)) });
        assert_eq!(one("127.0.0.1::80/udp"), PortRequest { container_port: 80, proto: Proto::Udp, host_ip: Some("127.0.0.1".parse().unwrap()), host_ports: None });
        assert_eq!(one("127.0.0.1:8080:80").host_ports, Some((8080, 8080)));
        assert_eq!(one("[::1]:8080:80").host_ip, Some("::1".parse().unwrap()));
        assert_eq!(one("::1:8080:80").host_ip, Some("::1".parse().unwrap()));
        assert_eq!(one("53/sctp").proto, Proto::Sctp);
        assert_eq!(one("8000-8010:80").host_ports, Some((8000, 8010)));
        let r = parse_publish("8000-8002:80-82/udp").unwrap();
        assert_eq!(r.iter().map(|r| (r.host_ports.unwrap().0, r.container_port)).collect::<Vec<_>>(), [(8000, 80), (8001, 81), (8002, 82)]);
        assert_eq!(parse_publish("80-81").unwrap().len(), 2);
    }

    #[test]
    fn bad_specs_get_dockers_messages() {
        assert_eq!(parse_publish("80/xyz").unwrap_err().to_string(), "invalid proto: xyz");
        assert_eq!(parse_publish("abc").unwrap_err().to_string(), "invalid containerPort: abc");
        assert_eq!(parse_publish("x:80").unwrap_err().to_string(), "invalid hostPort: x");
        assert_eq!(parse_publish("1.2.3:80:80").unwrap_err().to_string(), "invalid IP address: 1.2.3");
        assert_eq!(parse_publish("8000-8001:80-82").unwrap_err().to_string(), "invalid ranges specified for container and host Ports: 80-82 and 8000-8001");
        assert_eq!(parse_publish("70000").unwrap_err().to_string(), "invalid containerPort: 70000");
    }

    #[test]
    fn engine_api_bindings_and_publish_all() {
        let mut b = BTreeMap::new();
        b.insert("80/tcp".to_string(), vec![(String::new(), "8080".to_string())]);
        b.insert("53/udp".to_string(), vec![("127.0.0.1".to_string(), String::new())]);
        let r = requests_from_bindings(&b, &["80/tcp".into(), "443/tcp".into()], true).unwrap();
        assert_eq!(r.len(), 3);
        assert_eq!(r[0], PortRequest { container_port: 53, proto: Proto::Udp, host_ip: Some("127.0.0.1".parse().unwrap()), host_ports: None });
        assert_eq!(r[2], PortRequest { container_port: 443, proto: Proto::Tcp, host_ip: None, host_ports: None });
        assert_eq!(requests_from_bindings(&b, &["443/tcp".into()], false).unwrap().len(), 2);
    }

    struct Busy(Vec<u16>);
    impl PortProbe for Busy {
        fn is_free(&self, _: Proto, _: Option<IpAddr>, port: u16) -> bool {
            !self.0.contains(&port)
        }
    }

    #[test]
    fn allocation_refuses_taken_ports_and_leaves_nothing_half_done() {
        let mut a = PortAllocator::new((40000, 40002));
        let probe = Busy(vec![40001]);
        let r = a.allocate(&parse_publish("8080:80").unwrap(), &probe).unwrap();
        assert_eq!(r[0].host_port, 8080);
        let mut reqs = parse_publish("9090:90").unwrap();
        reqs.extend(parse_publish("8080:81").unwrap());
        let e = a.allocate(&reqs, &probe).unwrap_err();
        assert_eq!(e.to_string(), "Bind for 0.0.0.0:8080 failed: port is already allocated");
        assert_eq!(e.kind(), ErrorKind::Conflict);
        // 9090 was given back.
        assert_eq!(a.allocate(&parse_publish("9090:90").unwrap(), &probe).unwrap()[0].host_port, 9090);
        // A specific address does not clash with another specific address.
        assert!(a.allocate(&parse_publish("127.0.0.1:7070:80").unwrap(), &probe).is_ok());
        assert!(a.allocate(&parse_publish("127.0.0.2:7070:80").unwrap(), &probe).is_ok());
        assert!(a.allocate(&parse_publish("7070:80").unwrap(), &probe).is_err());
        // Host processes holding a port.
        let e = a.allocate(&parse_publish("40001:80").unwrap(), &probe).unwrap_err();
        assert_eq!(e.to_string(), "Error starting userland proxy: listen tcp4 0.0.0.0:40001: bind: address already in use");
    }

    #[test]
    fn random_ports_come_from_the_ephemeral_range_and_skip_busy_ones() {
        let mut a = PortAllocator::new((40000, 40002));
        let probe = Busy(vec![40001]);
        let got: Vec<u16> = (0..2).map(|_| a.allocate(&parse_publish("80").unwrap(), &probe).unwrap()[0].host_port).collect();
        assert_eq!(got, [40000, 40002]);
        assert!(matches!(a.allocate(&parse_publish("80").unwrap(), &probe).unwrap_err(), PortError::NoFreePort { .. }));
        // UDP is counted apart from TCP.
        assert_eq!(a.allocate(&parse_publish("80/udp").unwrap(), &probe).unwrap()[0].host_port, 40000);
    }

    #[test]
    fn port_lines_as_docker_port_prints_them() {
        let m = vec![
            PortMapping { proto: Proto::Udp, container_port: 53, host_ip: Some("::1".parse().unwrap()), host_port: 5353 },
            PortMapping { proto: Proto::Tcp, container_port: 80, host_ip: None, host_port: 8080 },
        ];
        assert_eq!(port_lines(&m), ["80/tcp -> 0.0.0.0:8080", "53/udp -> [::1]:5353"]);
    }

    #[test]
    fn a_holding_allocator_keeps_its_ports_bound_until_released() {
        let free = |p: u16| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let lo = Some(IpAddr::V4(Ipv4Addr::LOCALHOST));
        let m = PortMapping { proto: Proto::Tcp, container_port: 80, host_ip: lo, host_port: port };
        let mut a = PortAllocator::holding((32768, 60999));
        a.mark(&m);
        assert!(!free(port), "a published port is held: no one else is given it");
        let again = a.emptied();
        drop(a);
        assert!(free(port), "an emptied allocator holds nothing");
        let mut a = again;
        a.mark(&m);
        assert!(!free(port));
        a.release(&m);
        assert!(free(port), "released ports are closed");
        let mut plain = PortAllocator::new((32768, 60999));
        plain.mark(&m);
        assert!(free(port), "a plain allocator only keeps books");
    }
}
