//! A container's `/etc/hosts` and `/etc/resolv.conf`, as docker writes them.
//!
//! Pure functions of the container's settings and the host's resolv.conf:
//! the daemon writes the returned text into the container's directory and
//! bind-mounts it.

use std::net::{IpAddr, Ipv4Addr};

use berth_api::ErrorKind;

/// Errors from the `--add-host` and `--dns` values.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FilesError {
    #[error("bad format for add-host: {value:?}")]
    AddHostFormat { value: String },
    #[error("invalid IP address in add-host: {value:?}")]
    AddHostIp { value: String },
    #[error("{value} is not an ip address")]
    DnsIp { value: String },
}

impl FilesError {
    pub fn kind(&self) -> ErrorKind {
        ErrorKind::InvalidParameter
    }
}

/// The address `--add-host name:host-gateway` stands for.
pub const HOST_GATEWAY: &str = "host-gateway";

/// One `--add-host` value (`name:ip` or `name=ip`; IPv6 addresses may be
/// bracketed). `host-gateway` is replaced by `host_gateway` when given.
pub fn parse_add_host(value: &str, host_gateway: Option<IpAddr>) -> Result<(String, IpAddr), FilesError> {
    let (name, ip) = value
        .split_once('=')
        .or_else(|| value.split_once(':'))
        .ok_or_else(|| FilesError::AddHostFormat { value: value.to_owned() })?;
    if name.is_empty() || ip.is_empty() {
        return Err(FilesError::AddHostFormat { value: value.to_owned() });
    }
    if ip == HOST_GATEWAY {
        return host_gateway.map(|g| (name.to_owned(), g)).ok_or_else(|| FilesError::AddHostIp { value: value.to_owned() });
    }
    let ip = ip.trim_start_matches('[').trim_end_matches(']');
    let ip = ip.parse().map_err(|_| FilesError::AddHostIp { value: value.to_owned() })?;
    Ok((name.to_owned(), ip))
}

/// Everything `/etc/hosts` is made of.
#[derive(Debug, Clone, Default)]
pub struct HostsSpec {
    /// `--hostname` (docker's default: the first 12 characters of the id).
    pub hostname: String,
    /// `--domainname`, if any.
    pub domainname: Option<String>,
    /// The container's own addresses (first network first); none for
    /// `--net none`.
    pub addresses: Vec<IpAddr>,
    /// `--add-host` entries, in the order given.
    pub extra_hosts: Vec<(String, IpAddr)>,
    /// `--link` entries on the default bridge: the target's address and the
    /// names it answers to (alias, then the target's name and short id).
    pub links: Vec<(IpAddr, Vec<String>)>,
    /// Whether to write the IPv6 loopback lines.
    pub ipv6: bool,
}

/// The text of `/etc/hosts`.
pub fn hosts_file(spec: &HostsSpec) -> String {
    let mut out = String::from("127.0.0.1\tlocalhost\n");
    if spec.ipv6 {
        out.push_str("::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n");
    }
    for (name, ip) in &spec.extra_hosts {
        out.push_str(&format!("{ip}\t{name}\n"));
    }
    for (ip, names) in &spec.links {
        out.push_str(&format!("{ip}\t{}\n", names.join(" ")));
    }
    let own = match &spec.domainname {
        Some(d) if !d.is_empty() => format!("{}.{d} {}", spec.hostname, spec.hostname),
        _ => spec.hostname.clone(),
    };
    for ip in &spec.addresses {
        out.push_str(&format!("{ip}\t{own}\n"));
    }
    out
}

/// The parts of a resolv.conf berth reads and writes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResolvConf {
    pub nameservers: Vec<IpAddr>,
    pub search: Vec<String>,
    pub options: Vec<String>,
}

/// Read the host's resolv.conf text (the last `search` line wins, as in libc).
pub fn parse_resolv_conf(text: &str) -> ResolvConf {
    let mut rc = ResolvConf::default();
    for line in text.lines() {
        let line = line.split(['#', ';']).next().unwrap_or("").trim();
        let mut words = line.split_whitespace();
        match words.next() {
            Some("nameserver") => {
                if let Some(ip) = words.next().and_then(|w| w.split('%').next()?.parse().ok()) {
                    rc.nameservers.push(ip);
                }
            }
            Some("search") | Some("domain") => rc.search = words.map(str::to_owned).collect(),
            Some("options") => rc.options.extend(words.map(str::to_owned)),
            _ => {}
        }
    }
    rc
}

/// The container's `--dns`, `--dns-search`, `--dns-option`.
#[derive(Debug, Clone, Default)]
pub struct DnsSettings {
    pub servers: Vec<IpAddr>,
    pub search: Vec<String>,
    pub options: Vec<String>,
}

/// The nameserver in a container's resolv.conf when the embedded DNS serves it.
pub const EMBEDDED_DNS: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 11));

fn is_loopback(ip: &IpAddr) -> bool {
    ip.is_loopback()
}

/// The text of a container's `/etc/resolv.conf`.
///
/// - `embedded`: on user-defined networks, one `nameserver 127.0.0.11`
///   (the embedded DNS forwards to [`upstream_servers`]) and `ndots:0`
///   unless an ndots option was given.
/// - otherwise (default bridge): `--dns` if given, else the host's
///   nameservers without loopback ones (unreachable from the container) and
///   without IPv6 ones when the container has no IPv6; when none is left,
///   docker's fallback to Google's public resolvers.
pub fn resolv_conf(host: &ResolvConf, settings: &DnsSettings, embedded: bool, ipv6: bool) -> String {
    let search = if settings.search.is_empty() { host.search.clone() } else { settings.search.clone() };
    let mut options = if settings.options.is_empty() { host.options.clone() } else { settings.options.clone() };
    let nameservers: Vec<IpAddr> = if embedded {
        if !options.iter().any(|o| o.starts_with("ndots:")) {
            options.push("ndots:0".into());
        }
        vec![EMBEDDED_DNS]
    } else if !settings.servers.is_empty() {
        settings.servers.clone()
    } else {
        let kept: Vec<IpAddr> = host.nameservers.iter().filter(|ip| !is_loopback(ip) && (ipv6 || ip.is_ipv4())).copied().collect();
        if kept.is_empty() {
            let mut d: Vec<IpAddr> = vec!["8.8.8.8".parse().unwrap(), "8.8.4.4".parse().unwrap()];
            if ipv6 {
                d.push("2001:4860:4860::8888".parse().unwrap());
                d.push("2001:4860:4860::8844".parse().unwrap());
            }
            d
        } else {
            kept
        }
    };
    let mut out = String::from("# Generated by berth.\n");
    for ns in nameservers {
        out.push_str(&format!("nameserver {ns}\n"));
    }
    if !search.is_empty() {
        out.push_str(&format!("search {}\n", search.join(" ")));
    }
    if !options.is_empty() {
        out.push_str(&format!("options {}\n", options.join(" ")));
    }
    out
}

/// Where the embedded DNS forwards names it does not know: `--dns` when
/// given, else the host's nameservers (loopback ones included: the resolver
/// forwards from the daemon's namespace, where they are reachable).
pub fn upstream_servers(host: &ResolvConf, settings: &DnsSettings) -> Vec<IpAddr> {
    if settings.servers.is_empty() { host.nameservers.clone() } else { settings.servers.clone() }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOST: &str = "# from dhcp\nnameserver 127.0.0.53\nnameserver 192.0.2.53\nnameserver fd00::53\nsearch corp.example lab.example\noptions edns0 trust-ad\n";

    #[test]
    fn host_resolv_conf_is_parsed() {
        let rc = parse_resolv_conf(HOST);
        assert_eq!(rc.nameservers.len(), 3);
        assert_eq!(rc.search, ["corp.example", "lab.example"]);
        assert_eq!(rc.options, ["edns0", "trust-ad"]);
    }

    #[test]
    fn default_bridge_gets_host_resolvers_without_loopback() {
        let rc = parse_resolv_conf(HOST);
        let text = resolv_conf(&rc, &DnsSettings::default(), false, false);
        assert_eq!(text, "# Generated by berth.\nnameserver 192.0.2.53\nsearch corp.example lab.example\noptions edns0 trust-ad\n");
        let text = resolv_conf(&rc, &DnsSettings::default(), false, true);
        assert!(text.contains("nameserver fd00::53\n"), "{text}");
    }

    #[test]
    fn only_loopback_on_the_host_falls_back_to_public_resolvers() {
        let rc = parse_resolv_conf("nameserver 127.0.0.53\n");
        let text = resolv_conf(&rc, &DnsSettings::default(), false, false);
        assert_eq!(text, "# Generated by berth.\nnameserver 8.8.8.8\nnameserver 8.8.4.4\n");
    }

    #[test]
    fn flags_override_the_host() {
        let rc = parse_resolv_conf(HOST);
        let s = DnsSettings { servers: vec!["198.51.100.1".parse().unwrap()], search: vec!["x.example".into()], options: vec!["ndots:2".into()] };
        assert_eq!(resolv_conf(&rc, &s, false, false), "# Generated by berth.\nnameserver 198.51.100.1\nsearch x.example\noptions ndots:2\n");
        // Embedded: the resolver's address; ndots kept as given.
        assert_eq!(resolv_conf(&rc, &s, true, false), "# Generated by berth.\nnameserver 127.0.0.11\nsearch x.example\noptions ndots:2\n");
        assert_eq!(upstream_servers(&rc, &s), s.servers);
    }

    #[test]
    fn embedded_dns_points_at_127_0_0_11_with_ndots_0() {
        let rc = parse_resolv_conf(HOST);
        assert_eq!(resolv_conf(&rc, &DnsSettings::default(), true, false), "# Generated by berth.\nnameserver 127.0.0.11\nsearch corp.example lab.example\noptions edns0 trust-ad ndots:0\n");
        assert_eq!(upstream_servers(&rc, &DnsSettings::default()).len(), 3);
    }

    #[test]
    fn hosts_file_as_docker_writes_it() {
        let spec = HostsSpec {
            hostname: "web".into(),
            domainname: None,
            addresses: vec!["172.17.0.3".parse().unwrap()],
            extra_hosts: vec![parse_add_host("db.local:10.1.1.1", None).unwrap(), parse_add_host("gw:host-gateway", Some("172.17.0.1".parse().unwrap())).unwrap()],
            links: vec![("172.17.0.2".parse().unwrap(), vec!["cache".into(), "0123456789ab".into(), "redis".into()])],
            ipv6: true,
        };
        assert_eq!(
            hosts_file(&spec),
            "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n\
             10.1.1.1\tdb.local\n172.17.0.1\tgw\n172.17.0.2\tcache 0123456789ab redis\n172.17.0.3\tweb\n"
        );
        let spec = HostsSpec { hostname: "h".into(), domainname: Some("example.org".into()), addresses: vec!["10.0.0.2".parse().unwrap()], ..Default::default() };
        assert_eq!(hosts_file(&spec), "127.0.0.1\tlocalhost\n10.0.0.2\th.example.org h\n");
    }

    #[test]
    fn add_host_values() {
        assert_eq!(parse_add_host("v6:[fd00::1]", None).unwrap().1, "fd00::1".parse::<IpAddr>().unwrap());
        assert_eq!(parse_add_host("v6=fd00::1", None).unwrap().1, "fd00::1".parse::<IpAddr>().unwrap());
        assert_eq!(parse_add_host("nohost", None).unwrap_err().to_string(), "bad format for add-host: \"nohost\"");
        assert_eq!(parse_add_host("a:b", None).unwrap_err().to_string(), "invalid IP address in add-host: \"a:b\"");
    }
}
