//! Address management: which subnet a network gets and which address an
//! endpoint gets inside it.
//!
//! Pure and in memory. The controller rebuilds a [`SubnetAllocator`] from the
//! persisted network and endpoint records at start, so an address recorded for
//! an endpoint is never handed out again, across restarts too: there is no
//! separate allocation file that could disagree with the endpoints.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use berth_api::ErrorKind;
use ipnet::IpNet;
use serde::{Deserialize, Serialize};

/// Errors from address management, with docker's wording.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IpamError {
    #[error("invalid subnet {subnet} : invalid CIDR address: {subnet}")]
    InvalidSubnet { subnet: String },
    #[error("invalid pool request: Pool overlaps with other one on this address space")]
    Overlap { subnet: IpNet, other: IpNet },
    #[error("no matching subnet for gateway {gateway}")]
    GatewayOutside { gateway: IpAddr },
    #[error("no matching subnet for range {range}")]
    RangeOutside { range: IpNet },
    #[error("no matching subnet for aux-address {addr}")]
    AuxOutside { addr: IpAddr },
    #[error("ip-range {range} requires a subnet")]
    RangeWithoutSubnet { range: String },
    #[error("could not find an available, non-overlapping IPv{family} address pool among the defaults to assign to the network")]
    NoPool { family: u8 },
    #[error("no available IPv{family} addresses on this network's address pools: {network} ({subnet})")]
    Exhausted { family: u8, network: String, subnet: IpNet },
    #[error("Address already in use")]
    InUse { addr: IpAddr },
    #[error("no configured subnet or ip-range contain the IP address {addr}")]
    NotInSubnet { addr: IpAddr },
    #[error("user specified IP address is supported only when connecting to networks with user configured subnets")]
    NoUserSubnet,
}

impl IpamError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            IpamError::Overlap { .. } | IpamError::InUse { .. } => ErrorKind::Conflict,
            IpamError::NoPool { .. } | IpamError::Exhausted { .. } => ErrorKind::Unavailable,
            _ => ErrorKind::InvalidParameter,
        }
    }
}

/// One pool of the daemon's `default-address-pools`: subnets of `size` bits
/// are carved out of `base` for networks created without `--subnet`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddressPool {
    pub base: IpNet,
    pub size: u8,
}

/// docker's defaults: 172.17-31.0.0/16, then 192.168.0.0/16 in /20s.
pub fn default_pools() -> Vec<AddressPool> {
    vec![
        AddressPool { base: "172.17.0.0/16".parse().unwrap(), size: 16 },
        AddressPool { base: "172.18.0.0/15".parse().unwrap(), size: 16 },
        AddressPool { base: "172.20.0.0/14".parse().unwrap(), size: 16 },
        AddressPool { base: "172.24.0.0/14".parse().unwrap(), size: 16 },
        AddressPool { base: "172.28.0.0/14".parse().unwrap(), size: 16 },
        AddressPool { base: "192.168.0.0/16".parse().unwrap(), size: 20 },
    ]
}

/// Parse a CIDR the way `--subnet` takes it; the host bits are cleared
/// (docker accepts `10.1.2.3/16` as `10.1.0.0/16`).
pub fn parse_subnet(s: &str) -> Result<IpNet, IpamError> {
    s.trim().parse::<IpNet>().map(|n| n.trunc()).map_err(|_| IpamError::InvalidSubnet { subnet: s.to_owned() })
}

/// The first subnet of `size` bits in any of `pools` that overlaps none of
/// `taken`.
pub fn pick_subnet(pools: &[AddressPool], taken: &[IpNet], v6: bool) -> Result<IpNet, IpamError> {
    for pool in pools {
        if pool.base.addr().is_ipv6() != v6 {
            continue;
        }
        let Ok(subnets) = pool.base.subnets(pool.size) else { continue };
        for candidate in subnets {
            if !taken.iter().any(|t| overlaps(t, &candidate)) {
                return Ok(candidate);
            }
        }
    }
    Err(IpamError::NoPool { family: if v6 { 6 } else { 4 } })
}

/// The IPv4 routes of `/proc/net/route` (text given) that are not on one
/// of the `own` devices and not the default route: subnets the host already
/// reaches some other way, which a network picked from a pool must avoid
/// (as docker does).
pub fn host_routes_v4(text: &str, own: &[&str]) -> Vec<IpNet> {
    let mut out = Vec::new();
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 8 || own.contains(&f[0]) {
            continue;
        }
        let (Ok(dst), Ok(mask)) = (u32::from_str_radix(f[1], 16), u32::from_str_radix(f[7], 16)) else { continue };
        // The kernel prints the network-order words as native integers.
        let prefix = mask.count_ones() as u8;
        if prefix == 0 {
            continue;
        }
        if let Ok(n) = ipnet::Ipv4Net::new(std::net::Ipv4Addr::from(dst.to_ne_bytes()), prefix) {
            out.push(IpNet::V4(n.trunc()));
        }
    }
    out
}

/// Whether two subnets share any address.
pub fn overlaps(a: &IpNet, b: &IpNet) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

/// The persisted configuration of one subnet of a network (`IPAM.Config[]`
/// in docker's JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubnetConfig {
    pub subnet: IpNet,
    /// Addresses are handed out from this range only (`--ip-range`).
    #[serde(default)]
    pub ip_range: Option<IpNet>,
    /// The gateway address, reserved; on bridge networks it is the bridge's.
    pub gateway: Option<IpAddr>,
    /// `--aux-address name=ip`: reserved, never handed out.
    #[serde(default)]
    pub aux_addresses: std::collections::BTreeMap<String, IpAddr>,
    /// Whether the user gave the subnet (`--ip` is accepted only then).
    #[serde(default)]
    pub user_configured: bool,
}

impl SubnetConfig {
    /// Check that gateway, range and aux addresses lie inside the subnet.
    pub fn validate(&self) -> Result<(), IpamError> {
        if let Some(gw) = self.gateway
            && !self.subnet.contains(&gw)
        {
            return Err(IpamError::GatewayOutside { gateway: gw });
        }
        if let Some(r) = self.ip_range
            && !self.subnet.contains(&r)
        {
            return Err(IpamError::RangeOutside { range: r });
        }
        for a in self.aux_addresses.values() {
            if !self.subnet.contains(a) {
                return Err(IpamError::AuxOutside { addr: *a });
            }
        }
        Ok(())
    }

    /// The default gateway docker picks: the first address of the subnet
    /// (or of the ip-range when one is given).
    pub fn default_gateway(&self) -> IpAddr {
        let base = self.ip_range.unwrap_or(self.subnet);
        nth_host(&base, 1)
    }
}

/// The address `n` positions after the network address of `net`.
pub fn nth_host(net: &IpNet, n: u128) -> IpAddr {
    match net {
        IpNet::V4(v4) => IpAddr::V4(Ipv4Addr::from(u32::from(v4.network()).wrapping_add(n as u32))),
        IpNet::V6(v6) => IpAddr::V6(Ipv6Addr::from(u128::from(v6.network()).wrapping_add(n))),
    }
}

fn to_u128(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u32::from(v4) as u128,
        IpAddr::V6(v6) => u128::from(v6),
    }
}

/// Addresses of one subnet: which are taken, and the next free one.
#[derive(Debug, Clone)]
pub struct SubnetAllocator {
    config: SubnetConfig,
    used: BTreeSet<IpAddr>,
}

impl SubnetAllocator {
    /// An allocator with the gateway and aux addresses reserved.
    pub fn new(config: SubnetConfig) -> SubnetAllocator {
        let mut used = BTreeSet::new();
        if let Some(gw) = config.gateway {
            used.insert(gw);
        }
        used.extend(config.aux_addresses.values().copied());
        SubnetAllocator { config, used }
    }

    pub fn config(&self) -> &SubnetConfig {
        &self.config
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        self.config.subnet.contains(&ip)
    }

    /// Mark an address recorded earlier (an endpoint read back from disk) as taken.
    pub fn mark(&mut self, ip: IpAddr) {
        self.used.insert(ip);
    }

    pub fn is_used(&self, ip: IpAddr) -> bool {
        self.used.contains(&ip)
    }

    /// Take `want` if given (it must lie in the subnet, or in the ip-range
    /// when there is one, and be free), else the lowest free address.
    pub fn allocate(&mut self, want: Option<IpAddr>, network: &str) -> Result<IpAddr, IpamError> {
        let ip = match want {
            Some(ip) => {
                let pool = self.config.ip_range.unwrap_or(self.config.subnet);
                if !pool.contains(&ip) || self.is_reserved(ip) {
                    return Err(IpamError::NotInSubnet { addr: ip });
                }
                if self.used.contains(&ip) {
                    return Err(IpamError::InUse { addr: ip });
                }
                ip
            }
            None => self.first_free().ok_or_else(|| IpamError::Exhausted {
                family: if self.config.subnet.addr().is_ipv4() { 4 } else { 6 },
                network: network.to_owned(),
                subnet: self.config.subnet,
            })?,
        };
        self.used.insert(ip);
        Ok(ip)
    }

    /// Give an address back.
    pub fn release(&mut self, ip: IpAddr) {
        if Some(ip) != self.config.gateway && !self.config.aux_addresses.values().any(|a| *a == ip) {
            self.used.remove(&ip);
        }
    }

    /// Network and (v4) broadcast addresses are never handed out.
    fn is_reserved(&self, ip: IpAddr) -> bool {
        let net = self.config.subnet;
        if ip == net.network() {
            return true;
        }
        matches!(net, IpNet::V4(v4) if v4.prefix_len() < 31 && ip == IpAddr::V4(v4.broadcast()))
    }

    fn first_free(&self) -> Option<IpAddr> {
        let pool = self.config.ip_range.unwrap_or(self.config.subnet);
        let start = to_u128(pool.network());
        let end = to_u128(pool.broadcast());
        // Walk the used set in order instead of the whole range, so a /8 or a
        // v6 /64 costs as much as the number of endpoints.
        // The first address of an ip-range is skipped like a subnet's.
        let mut candidate = if pool.prefix_len() < pool.max_prefix_len() - 1 { start + 1 } else { start };
        for used in self.used.range(pool.network()..=pool.broadcast()) {
            let u = to_u128(*used);
            while candidate < u {
                let ip = from_u128(candidate, pool.addr().is_ipv4());
                if !self.is_reserved(ip) {
                    return Some(ip);
                }
                candidate += 1;
            }
            candidate = candidate.max(u + 1);
        }
        while candidate <= end {
            let ip = from_u128(candidate, pool.addr().is_ipv4());
            if !self.is_reserved(ip) {
                return Some(ip);
            }
            candidate += 1;
        }
        None
    }
}

fn from_u128(n: u128, v4: bool) -> IpAddr {
    if v4 { IpAddr::V4(Ipv4Addr::from(n as u32)) } else { IpAddr::V6(Ipv6Addr::from(n)) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_routes_are_read_from_proc_net_route() {
        let text = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
eth0\t00000000\t0102A8C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n\
eth0\t0002A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n\
docker0\t000011AC\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0\n\
berth0\t000012AC\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0\n";
        let r = host_routes_v4(text, &["berth0"]);
        assert_eq!(r, vec!["192.168.2.0/24".parse::<IpNet>().unwrap(), "172.17.0.0/16".parse().unwrap()]);
        // docker0 holds 172.17: the default pools give the next one.
        assert_eq!(pick_subnet(&default_pools(), &r, false).unwrap().to_string(), "172.18.0.0/16");
    }

    fn cfg(subnet: &str) -> SubnetConfig {
        let subnet = parse_subnet(subnet).unwrap();
        let mut c = SubnetConfig { subnet, ip_range: None, gateway: None, aux_addresses: Default::default(), user_configured: true };
        c.gateway = Some(c.default_gateway());
        c
    }

    #[test]
    fn hands_out_lowest_free_after_gateway() {
        let mut a = SubnetAllocator::new(cfg("10.9.0.0/24"));
        assert_eq!(a.allocate(None, "n").unwrap().to_string(), "10.9.0.2");
        assert_eq!(a.allocate(None, "n").unwrap().to_string(), "10.9.0.3");
        a.release("10.9.0.2".parse().unwrap());
        assert_eq!(a.allocate(None, "n").unwrap().to_string(), "10.9.0.2");
        assert_eq!(a.allocate(None, "n").unwrap().to_string(), "10.9.0.4");
    }

    #[test]
    fn never_hands_out_network_broadcast_gateway_or_aux() {
        let mut c = cfg("10.9.0.0/29");
        c.aux_addresses.insert("router".into(), "10.9.0.3".parse().unwrap());
        let mut a = SubnetAllocator::new(c);
        let got: Vec<String> = (0..4).map(|_| a.allocate(None, "n").unwrap().to_string()).collect();
        assert_eq!(got, ["10.9.0.2", "10.9.0.4", "10.9.0.5", "10.9.0.6"]);
        let err = a.allocate(None, "n").unwrap_err();
        assert_eq!(err.to_string(), "no available IPv4 addresses on this network's address pools: n (10.9.0.0/29)");
        assert_eq!(a.allocate(Some("10.9.0.7".parse().unwrap()), "n").unwrap_err().to_string(), "no configured subnet or ip-range contain the IP address 10.9.0.7");
    }

    #[test]
    fn requested_address_is_honoured_or_refused_with_dockers_words() {
        let mut a = SubnetAllocator::new(cfg("10.9.0.0/24"));
        assert_eq!(a.allocate(Some("10.9.0.50".parse().unwrap()), "n").unwrap().to_string(), "10.9.0.50");
        let e = a.allocate(Some("10.9.0.50".parse().unwrap()), "n").unwrap_err();
        assert_eq!(e.to_string(), "Address already in use");
        assert_eq!(e.kind(), ErrorKind::Conflict);
        let e = a.allocate(Some("10.8.0.5".parse().unwrap()), "n").unwrap_err();
        assert_eq!(e.to_string(), "no configured subnet or ip-range contain the IP address 10.8.0.5");
        assert_eq!(a.allocate(Some("10.9.0.1".parse().unwrap()), "n").unwrap_err(), IpamError::InUse { addr: "10.9.0.1".parse().unwrap() });
    }

    #[test]
    fn ip_range_limits_automatic_and_requested_addresses() {
        let mut c = cfg("10.9.0.0/16");
        c.ip_range = Some("10.9.5.0/30".parse().unwrap());
        c.gateway = Some("10.9.0.1".parse().unwrap());
        let mut a = SubnetAllocator::new(c);
        assert_eq!(a.allocate(None, "n").unwrap().to_string(), "10.9.5.1");
        assert_eq!(a.allocate(None, "n").unwrap().to_string(), "10.9.5.2");
        assert!(a.allocate(Some("10.9.0.9".parse().unwrap()), "n").is_err());
    }

    #[test]
    fn marks_restore_state_so_nothing_is_given_twice() {
        let mut a = SubnetAllocator::new(cfg("10.9.0.0/24"));
        a.mark("10.9.0.2".parse().unwrap());
        a.mark("10.9.0.3".parse().unwrap());
        assert_eq!(a.allocate(None, "n").unwrap().to_string(), "10.9.0.4");
    }

    #[test]
    fn v6_allocation() {
        let mut a = SubnetAllocator::new(cfg("fd00:1::/64"));
        assert_eq!(a.allocate(None, "n").unwrap().to_string(), "fd00:1::2");
    }

    #[test]
    fn pools_skip_taken_subnets() {
        let pools = default_pools();
        assert_eq!(pick_subnet(&pools, &[], false).unwrap().to_string(), "172.17.0.0/16");
        let taken = ["172.17.0.0/16".parse().unwrap(), "172.18.5.0/24".parse().unwrap()];
        assert_eq!(pick_subnet(&pools, &taken, false).unwrap().to_string(), "172.19.0.0/16");
        let small = [AddressPool { base: "10.0.0.0/23".parse().unwrap(), size: 24 }];
        let taken = ["10.0.0.0/24".parse().unwrap(), "10.0.1.0/24".parse().unwrap()];
        assert_eq!(pick_subnet(&small, &taken, false).unwrap_err().to_string(), "could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network");
    }

    #[test]
    fn subnet_parsing_and_validation() {
        assert_eq!(parse_subnet("10.1.2.3/16").unwrap().to_string(), "10.1.0.0/16");
        assert_eq!(parse_subnet("10.1.2.3").unwrap_err().to_string(), "invalid subnet 10.1.2.3 : invalid CIDR address: 10.1.2.3");
        let mut c = cfg("10.9.0.0/24");
        c.gateway = Some("10.8.0.1".parse().unwrap());
        assert_eq!(c.validate().unwrap_err().to_string(), "no matching subnet for gateway 10.8.0.1");
        assert!(overlaps(&"10.0.0.0/8".parse().unwrap(), &"10.9.0.0/24".parse().unwrap()));
        assert!(!overlaps(&"10.0.0.0/24".parse().unwrap(), &"10.0.1.0/24".parse().unwrap()));
    }
}
