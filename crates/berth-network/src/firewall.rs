//! The firewall: one nftables table of berth's own, rendered whole from the
//! networks and published ports and loaded in one transaction.
//!
//! Why a whole table each time: `nft -f` applies a script atomically, so
//! replacing the table (`table x {}` + `delete table x` + the new table, in
//! one script) leaves either the old ruleset or the new one, and a ruleset
//! left by a crash is replaced by the right one at the next change (or at
//! [`crate::Controller::open`]). Other tables are never touched. The text is
//! a pure function of the state, tested against golden text.
//!
//! Why the `nft` binary over `nft -f -` and not a netlink nftables crate: the
//! Rust ones either bind libnftnl (a C library to build against) or cover
//! only part of the expression set (no `fib`, `ct status`, `dnat ... to`
//! with ports in the same rule); the script interface is nft's stable one,
//! and one process per change costs ~8 ms on changes that are not on the
//! path of a container without published ports.
//!
//! Published ports are kernel DNAT, reachable from everywhere including the
//! host's 127.0.0.1: the `output` chain DNATs locally generated traffic,
//! `route_localnet` on the bridge lets the kernel route a 127.0.0.1-sourced
//! packet out of it, and the source is masqueraded to the bridge address so
//! the reply comes back. No userland proxy process is needed; the cost is
//! that a container sees connections from the host's loopback as coming
//! from its gateway (docker's proxy has the same effect).

use std::fmt::Write as _;
use std::io::Write as _;
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Mutex;

use berth_api::ErrorKind;
use ipnet::IpNet;

use crate::ports::{PortMapping, Proto};

/// Errors from loading rules.
#[derive(Debug, thiserror::Error)]
pub enum FirewallError {
    #[error("run {binary}: {source}")]
    Spawn { binary: PathBuf, source: std::io::Error },
    #[error("nft rejected the {what} rules: {stderr}")]
    Rejected { what: String, stderr: String },
}

impl FirewallError {
    pub fn kind(&self) -> ErrorKind {
        ErrorKind::Internal
    }
}

/// Loads nft scripts. The real one runs `nft -f -`; tests use [`RecordingNft`].
pub trait Nft: Send + Sync {
    /// Apply `script` atomically; `what` names it in errors.
    fn apply(&self, script: &str, what: &str) -> Result<(), FirewallError>;
}

/// Runs the `nft` binary, in the calling thread's network namespace.
pub struct NftCommand {
    pub binary: PathBuf,
}

impl Default for NftCommand {
    fn default() -> Self {
        NftCommand { binary: PathBuf::from("nft") }
    }
}

impl Nft for NftCommand {
    fn apply(&self, script: &str, what: &str) -> Result<(), FirewallError> {
        let spawn = |source| FirewallError::Spawn { binary: self.binary.clone(), source };
        let mut child = Command::new(&self.binary)
            .args(["-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(spawn)?;
        child.stdin.take().expect("piped stdin").write_all(script.as_bytes()).map_err(spawn)?;
        let out = child.wait_with_output().map_err(spawn)?;
        if !out.status.success() {
            return Err(FirewallError::Rejected { what: what.to_owned(), stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned() });
        }
        Ok(())
    }
}

/// Keeps every script it is given (unit tests), optionally failing.
#[derive(Default)]
pub struct RecordingNft {
    pub scripts: Mutex<Vec<String>>,
    pub fail: std::sync::atomic::AtomicBool,
}

impl Nft for RecordingNft {
    fn apply(&self, script: &str, what: &str) -> Result<(), FirewallError> {
        if self.fail.load(std::sync::atomic::Ordering::Relaxed) {
            return Err(FirewallError::Rejected { what: what.to_owned(), stderr: "recording fake told to fail".into() });
        }
        self.scripts.lock().unwrap().push(script.to_owned());
        Ok(())
    }
}

/// A bridge network as the firewall sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BridgeRules {
    pub bridge: String,
    pub subnets: Vec<IpNet>,
    /// `--internal`: no traffic in or out of the bridge except between its members.
    pub internal: bool,
    /// `com.docker.network.bridge.enable_icc` (default true).
    pub icc: bool,
    /// `com.docker.network.bridge.enable_ip_masquerade` (default true).
    pub masquerade: bool,
}

/// A published port of one container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortRule {
    pub mapping: PortMapping,
    pub container_ip: IpAddr,
    pub bridge: String,
}

fn family(ip: &IpAddr) -> &'static str {
    if ip.is_ipv4() { "ip" } else { "ip6" }
}

fn proto_kw(p: Proto) -> &'static str {
    p.as_str()
}

/// The whole host table: `table inet <name>` replacing any previous one.
pub fn render_host(table: &str, bridges: &[BridgeRules], ports: &[PortRule]) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "table inet {table} {{}}\ndelete table inet {table}\ntable inet {table} {{");
    let names: Vec<String> = bridges.iter().map(|b| format!("\"{}\"", b.bridge)).collect();
    if names.is_empty() {
        let _ = writeln!(s, "\tset bridges {{ type ifname; }}");
    } else {
        let _ = writeln!(s, "\tset bridges {{ type ifname; elements = {{ {} }}; }}", names.join(", "));
    }

    // forward: containers reach out (unless internal), answers come back,
    // published ports come in, different bridges never talk.
    let _ = writeln!(s, "\tchain forward {{\n\t\ttype filter hook forward priority filter; policy accept;");
    if !bridges.is_empty() {
        let _ = writeln!(s, "\t\toifname @bridges ct state established,related accept");
        let _ = writeln!(s, "\t\toifname @bridges ct status dnat accept");
    }
    for b in bridges {
        let br = &b.bridge;
        let verdict = if b.icc { "accept" } else { "drop" };
        let _ = writeln!(s, "\t\tiifname \"{br}\" oifname \"{br}\" {verdict}");
        if b.internal {
            let _ = writeln!(s, "\t\tiifname \"{br}\" drop\n\t\toifname \"{br}\" drop");
            continue;
        }
        let _ = writeln!(s, "\t\tiifname \"{br}\" oifname @bridges drop");
        let _ = writeln!(s, "\t\tiifname \"{br}\" accept");
        let _ = writeln!(s, "\t\toifname \"{br}\" drop");
    }
    let _ = writeln!(s, "\t}}");

    // DNAT of published ports, for traffic arriving (prerouting) and made on
    // the host itself (output).
    let _ = writeln!(s, "\tchain ports {{");
    for p in ports {
        let m = &p.mapping;
        let fam = family(&p.container_ip);
        let daddr = match m.host_ip {
            Some(ip) if !ip.is_unspecified() => {
                if ip.is_ipv4() != p.container_ip.is_ipv4() {
                    continue;
                }
                format!("{} daddr {ip} ", family(&ip))
            }
            _ => format!("meta nfproto {} ", if fam == "ip" { "ipv4" } else { "ipv6" }),
        };
        let to = if p.container_ip.is_ipv4() { format!("{}:{}", p.container_ip, m.container_port) } else { format!("[{}]:{}", p.container_ip, m.container_port) };
        let _ = writeln!(s, "\t\t{daddr}{} dport {} dnat {fam} to {to}", proto_kw(m.proto), m.host_port);
    }
    let _ = writeln!(s, "\t}}");
    let _ = writeln!(s, "\tchain prerouting {{\n\t\ttype nat hook prerouting priority dstnat; policy accept;\n\t\tfib daddr type local jump ports\n\t}}");
    let _ = writeln!(s, "\tchain output {{\n\t\ttype nat hook output priority -100; policy accept;\n\t\tfib daddr type local jump ports\n\t}}");

    // postrouting: egress masquerade, hairpin and host-loopback sources.
    let _ = writeln!(s, "\tchain postrouting {{\n\t\ttype nat hook postrouting priority srcnat; policy accept;");
    for b in bridges {
        let br = &b.bridge;
        let _ = writeln!(s, "\t\toifname \"{br}\" ip saddr 127.0.0.0/8 masquerade");
        for net in &b.subnets {
            let fam = if net.addr().is_ipv4() { "ip" } else { "ip6" };
            // Hairpin: a member reaching a published port of its own network
            // through the host must see the answer come from the host.
            let _ = writeln!(s, "\t\toifname \"{br}\" {fam} saddr {net} ct status dnat masquerade");
            if !b.internal && b.masquerade {
                let _ = writeln!(s, "\t\t{fam} saddr {net} oifname != \"{br}\" masquerade");
            }
        }
    }
    let _ = writeln!(s, "\t}}\n}}");
    s
}

/// Rules inside a sandbox that send the container's DNS queries for
/// 127.0.0.11:53 to the embedded resolver's sockets in the same namespace
/// (as docker does with iptables in the sandbox).
pub fn render_sandbox_dns(table: &str, udp_port: u16, tcp_port: u16) -> String {
    format!(
        "table ip {table} {{}}\ndelete table ip {table}\ntable ip {table} {{\n\
         \tchain output {{\n\t\ttype nat hook output priority -100; policy accept;\n\
         \t\tip daddr 127.0.0.11 udp dport 53 dnat ip to 127.0.0.11:{udp_port}\n\
         \t\tip daddr 127.0.0.11 tcp dport 53 dnat ip to 127.0.0.11:{tcp_port}\n\t}}\n}}\n"
    )
}

/// Removes a table if it exists (reconcile and uninstall).
pub fn render_delete(table: &str) -> String {
    format!("table inet {table} {{}}\ndelete table inet {table}\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bridges() -> Vec<BridgeRules> {
        vec![
            BridgeRules { bridge: "berth0".into(), subnets: vec!["172.17.0.0/16".parse().unwrap()], internal: false, icc: true, masquerade: true },
            BridgeRules { bridge: "berthb1".into(), subnets: vec!["10.5.0.0/24".parse().unwrap(), "fd00:5::/64".parse().unwrap()], internal: true, icc: true, masquerade: true },
        ]
    }

    #[test]
    fn host_table_golden() {
        let ports = vec![
            PortRule {
                mapping: PortMapping { proto: Proto::Tcp, container_port: 80, host_ip: None, host_port: 8080 },
                container_ip: "172.17.0.2".parse().unwrap(),
                bridge: "berth0".into(),
            },
            PortRule {
                mapping: PortMapping { proto: Proto::Udp, container_port: 53, host_ip: Some("127.0.0.1".parse().unwrap()), host_port: 5353 },
                container_ip: "172.17.0.2".parse().unwrap(),
                bridge: "berth0".into(),
            },
            PortRule {
                mapping: PortMapping { proto: Proto::Tcp, container_port: 80, host_ip: Some("::1".parse().unwrap()), host_port: 8080 },
                container_ip: "172.17.0.2".parse().unwrap(),
                bridge: "berth0".into(),
            },
        ];
        let got = render_host("berth", &bridges(), &ports);
        let want = r#"table inet berth {}
delete table inet berth
table inet berth {
	set bridges { type ifname; elements = { "berth0", "berthb1" }; }
	chain forward {
		type filter hook forward priority filter; policy accept;
		oifname @bridges ct state established,related accept
		oifname @bridges ct status dnat accept
		iifname "berth0" oifname "berth0" accept
		iifname "berth0" oifname @bridges drop
		iifname "berth0" accept
		oifname "berth0" drop
		iifname "berthb1" oifname "berthb1" accept
		iifname "berthb1" drop
		oifname "berthb1" drop
	}
	chain ports {
		meta nfproto ipv4 tcp dport 8080 dnat ip to 172.17.0.2:80
		ip daddr 127.0.0.1 udp dport 5353 dnat ip to 172.17.0.2:53
	}
	chain prerouting {
		type nat hook prerouting priority dstnat; policy accept;
		fib daddr type local jump ports
	}
	chain output {
		type nat hook output priority -100; policy accept;
		fib daddr type local jump ports
	}
	chain postrouting {
		type nat hook postrouting priority srcnat; policy accept;
		oifname "berth0" ip saddr 127.0.0.0/8 masquerade
		oifname "berth0" ip saddr 172.17.0.0/16 ct status dnat masquerade
		ip saddr 172.17.0.0/16 oifname != "berth0" masquerade
		oifname "berthb1" ip saddr 127.0.0.0/8 masquerade
		oifname "berthb1" ip saddr 10.5.0.0/24 ct status dnat masquerade
		oifname "berthb1" ip6 saddr fd00:5::/64 ct status dnat masquerade
	}
}
"#;
        assert_eq!(got, want, "got:\n{got}");
    }

    #[test]
    fn empty_state_still_renders_a_loadable_table() {
        let got = render_host("bt1", &[], &[]);
        assert!(got.contains("set bridges { type ifname; }"), "{got}");
        assert!(got.starts_with("table inet bt1 {}\ndelete table inet bt1\n"));
    }

    #[test]
    fn sandbox_dns_golden() {
        assert_eq!(
            render_sandbox_dns("berth_dns", 40001, 40002),
            "table ip berth_dns {}\ndelete table ip berth_dns\ntable ip berth_dns {\n\tchain output {\n\t\ttype nat hook output priority -100; policy accept;\n\t\tip daddr 127.0.0.11 udp dport 53 dnat ip to 127.0.0.11:40001\n\t\tip daddr 127.0.0.11 tcp dport 53 dnat ip to 127.0.0.11:40002\n\t}\n}\n"
        );
    }

    #[test]
    fn recording_fake_keeps_scripts_and_can_fail() {
        let r = RecordingNft::default();
        r.apply("x", "test").unwrap();
        r.fail.store(true, std::sync::atomic::Ordering::Relaxed);
        assert!(r.apply("y", "test").is_err());
        assert_eq!(*r.scripts.lock().unwrap(), ["x"]);
    }
}
