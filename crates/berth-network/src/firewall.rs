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
//! Why nft's script language and not a netlink nftables crate: the Rust
//! ones either bind libnftnl (a C library to build against) or cover only
//! part of the expression set (no `fib`, `ct status`, `dnat ... to` with
//! ports in the same rule); the script interface is nft's stable one. It is
//! loaded through libnftables when the host has it ([`LibNftables`], opened
//! at run time, so there is nothing to link against) and through `nft -f -`
//! otherwise ([`NftCommand`], ~8 ms a change for the process).
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

/// Loads scripts through libnftables (the library `nft` itself is built on,
/// opened with `dlopen`): the same script language and atomicity without a
/// process per change, ~10x cheaper, which matters for the rules each
/// sandbox gets for the embedded DNS. Works in the calling thread's network
/// namespace (the library opens its netlink socket per context).
pub struct LibNftables {
    ctx_new: unsafe extern "C" fn(u32) -> *mut libc::c_void,
    ctx_free: unsafe extern "C" fn(*mut libc::c_void),
    buffer_output: unsafe extern "C" fn(*mut libc::c_void) -> libc::c_int,
    buffer_error: unsafe extern "C" fn(*mut libc::c_void) -> libc::c_int,
    error_buffer: unsafe extern "C" fn(*mut libc::c_void) -> *const libc::c_char,
    run: unsafe extern "C" fn(*mut libc::c_void, *const libc::c_char) -> libc::c_int,
    lock: Mutex<()>,
}

// SAFETY: the function pointers come from a library that stays loaded for
// the life of the process; calls are serialized by `lock`.
unsafe impl Send for LibNftables {}
unsafe impl Sync for LibNftables {}

impl LibNftables {
    /// Open `libnftables.so.1`; `None` when it is not installed.
    pub fn open() -> Option<LibNftables> {
        // SAFETY: dlopen/dlsym with NUL-terminated names; the handle is never
        // closed, so the symbols stay valid; each symbol is cast to the
        // signature libnftables.h declares for it.
        unsafe {
            let handle = libc::dlopen(c"libnftables.so.1".as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL);
            if handle.is_null() {
                return None;
            }
            let sym = |name: &std::ffi::CStr| {
                let p = libc::dlsym(handle, name.as_ptr());
                (!p.is_null()).then_some(p)
            };
            Some(LibNftables {
                ctx_new: std::mem::transmute::<*mut libc::c_void, unsafe extern "C" fn(u32) -> *mut libc::c_void>(sym(c"nft_ctx_new")?),
                ctx_free: std::mem::transmute::<*mut libc::c_void, unsafe extern "C" fn(*mut libc::c_void)>(sym(c"nft_ctx_free")?),
                buffer_output: std::mem::transmute::<*mut libc::c_void, unsafe extern "C" fn(*mut libc::c_void) -> libc::c_int>(sym(c"nft_ctx_buffer_output")?),
                buffer_error: std::mem::transmute::<*mut libc::c_void, unsafe extern "C" fn(*mut libc::c_void) -> libc::c_int>(sym(c"nft_ctx_buffer_error")?),
                error_buffer: std::mem::transmute::<*mut libc::c_void, unsafe extern "C" fn(*mut libc::c_void) -> *const libc::c_char>(sym(c"nft_ctx_get_error_buffer")?),
                run: std::mem::transmute::<*mut libc::c_void, unsafe extern "C" fn(*mut libc::c_void, *const libc::c_char) -> libc::c_int>(sym(c"nft_run_cmd_from_buffer")?),
                lock: Mutex::new(()),
            })
        }
    }
}

impl Nft for LibNftables {
    fn apply(&self, script: &str, what: &str) -> Result<(), FirewallError> {
        let text = std::ffi::CString::new(script).map_err(|_| FirewallError::Rejected { what: what.to_owned(), stderr: "script contains a NUL byte".into() })?;
        let _guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        // SAFETY: a fresh context per call, freed before returning; the error
        // buffer is copied out before the context is freed.
        unsafe {
            let ctx = (self.ctx_new)(0);
            if ctx.is_null() {
                return Err(FirewallError::Rejected { what: what.to_owned(), stderr: "nft_ctx_new failed".into() });
            }
            (self.buffer_output)(ctx);
            (self.buffer_error)(ctx);
            let rc = (self.run)(ctx, text.as_ptr());
            let result = if rc == 0 {
                Ok(())
            } else {
                let e = (self.error_buffer)(ctx);
                let stderr = if e.is_null() { String::new() } else { std::ffi::CStr::from_ptr(e).to_string_lossy().trim().to_owned() };
                Err(FirewallError::Rejected { what: what.to_owned(), stderr })
            };
            (self.ctx_free)(ctx);
            result
        }
    }
}

/// The best loader this host has: libnftables, else the `nft` binary.
pub fn system_nft() -> std::sync::Arc<dyn Nft> {
    match LibNftables::open() {
        Some(l) => std::sync::Arc::new(l),
        None => std::sync::Arc::new(NftCommand::default()),
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
    /// The bridge's own addresses: the host reaching a published port from
    /// one of them needs no masquerade (the answer comes back to it anyway).
    pub gateways: Vec<IpAddr>,
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

/// The chains of the host table, with their hooks.
const HOST_CHAINS: [(&str, &str); 5] = [
    ("forward", "type filter hook forward priority filter; policy accept;"),
    ("ports", ""),
    ("prerouting", "type nat hook prerouting priority dstnat; policy accept;"),
    ("output", "type nat hook output priority -100; policy accept;"),
    ("postrouting", "type nat hook postrouting priority srcnat; policy accept;"),
];

/// How a script brings the table to the new rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Load {
    /// Delete the table and make it anew (daemon start: also removes
    /// chains an older berth made). Deleting base chains costs the kernel an
    /// RCU grace period (~10 ms here).
    Replace,
    /// Declare the table and chains (a no-op when they exist), flush their
    /// rules and add the new ones: still one transaction, and no hook is
    /// unregistered, so it stays cheap on the container start path.
    Update,
}

fn declare(s: &mut String, family: &str, table: &str, sets: &[&str], chains: &[(&str, &str)], load: Load) {
    if load == Load::Replace {
        let _ = writeln!(s, "table {family} {table} {{}}\ndelete table {family} {table}");
    }
    let _ = writeln!(s, "table {family} {table} {{");
    for set in sets {
        let _ = writeln!(s, "\tset {set}");
    }
    for (name, hook) in chains {
        if hook.is_empty() {
            let _ = writeln!(s, "\tchain {name} {{\n\t}}");
        } else {
            let _ = writeln!(s, "\tchain {name} {{\n\t\t{hook}\n\t}}");
        }
    }
    let _ = writeln!(s, "}}");
    if load == Load::Update {
        for (name, _) in chains {
            let _ = writeln!(s, "flush chain {family} {table} {name}");
        }
    }
}

/// The host table `table inet <name>`, brought to the rules for `bridges`
/// and `ports` in one transaction.
pub fn render_host(table: &str, bridges: &[BridgeRules], ports: &[PortRule], load: Load) -> String {
    let mut s = String::new();
    declare(&mut s, "inet", table, &["bridges { type ifname; }"], &HOST_CHAINS, load);
    if load == Load::Update {
        let _ = writeln!(s, "flush set inet {table} bridges");
    }
    let names: Vec<String> = bridges.iter().map(|b| format!("\"{}\"", b.bridge)).collect();
    if !names.is_empty() {
        let _ = writeln!(s, "add element inet {table} bridges {{ {} }}", names.join(", "));
    }
    let mut rule = |chain: &str, r: String| {
        let _ = writeln!(s, "add rule inet {table} {chain} {r}");
    };

    // forward: answers and published ports come in, containers reach out
    // (unless internal), different bridges never talk.
    if !bridges.is_empty() {
        rule("forward", "oifname @bridges ct state established,related accept".into());
        rule("forward", "oifname @bridges ct status dnat accept".into());
    }
    for b in bridges {
        let br = &b.bridge;
        rule("forward", format!("iifname \"{br}\" oifname \"{br}\" {}", if b.icc { "accept" } else { "drop" }));
        if b.internal {
            rule("forward", format!("iifname \"{br}\" drop"));
            rule("forward", format!("oifname \"{br}\" drop"));
            continue;
        }
        rule("forward", format!("iifname \"{br}\" oifname @bridges drop"));
        rule("forward", format!("iifname \"{br}\" accept"));
        rule("forward", format!("oifname \"{br}\" drop"));
    }

    // DNAT of published ports, for traffic arriving (prerouting) and made on
    // the host itself (output).
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
        rule("ports", format!("{daddr}{} dport {} dnat {fam} to {to}", proto_kw(m.proto), m.host_port));
    }
    rule("prerouting", "fib daddr type local jump ports".into());
    rule("output", "fib daddr type local jump ports".into());

    // postrouting: the host's loopback sources, hairpin, egress masquerade.
    for b in bridges {
        let br = &b.bridge;
        rule("postrouting", format!("oifname \"{br}\" ip saddr 127.0.0.0/8 masquerade"));
        for net in &b.subnets {
            let fam = if net.addr().is_ipv4() { "ip" } else { "ip6" };
            // Hairpin: a member reaching a published port of its own network
            // through the host must see the answer come from the host.
            let not_gw = b.gateways.iter().find(|g| net.contains(*g)).map(|g| format!("{fam} saddr != {g} ")).unwrap_or_default();
            rule("postrouting", format!("oifname \"{br}\" {fam} saddr {net} {not_gw}ct status dnat masquerade"));
            if !b.internal && b.masquerade {
                rule("postrouting", format!("{fam} saddr {net} oifname != \"{br}\" masquerade"));
            }
        }
    }
    s
}

/// Rules inside a sandbox that send the container's DNS queries for
/// 127.0.0.11:53 to the embedded resolver's sockets in the same namespace,
/// as docker does with iptables in the sandbox, but stateless: the port is
/// rewritten on the way out and back in a filter chain, so the sandbox gets
/// no conntrack and no NAT (loading a NAT table into a fresh namespace costs
/// the kernel several milliseconds, and conntrack would then track every
/// connection the container makes).
pub fn render_sandbox_dns(table: &str, udp_port: u16, tcp_port: u16) -> String {
    let mut s = String::new();
    declare(&mut s, "ip", table, &[], &[("output", "type filter hook output priority -300; policy accept;")], Load::Update);
    for r in [
        format!("ip daddr 127.0.0.11 udp dport 53 udp dport set {udp_port}"),
        format!("ip daddr 127.0.0.11 tcp dport 53 tcp dport set {tcp_port}"),
        format!("ip saddr 127.0.0.11 udp sport {udp_port} udp sport set 53"),
        format!("ip saddr 127.0.0.11 tcp sport {tcp_port} tcp sport set 53"),
    ] {
        let _ = writeln!(s, "add rule ip {table} output {r}");
    }
    s
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
            BridgeRules { bridge: "berth0".into(), subnets: vec!["172.17.0.0/16".parse().unwrap()], gateways: vec!["172.17.0.1".parse().unwrap()], internal: false, icc: true, masquerade: true },
            BridgeRules { bridge: "berthb1".into(), subnets: vec!["10.5.0.0/24".parse().unwrap(), "fd00:5::/64".parse().unwrap()], gateways: vec![], internal: true, icc: true, masquerade: true },
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
        let got = render_host("berth", &bridges(), &ports, Load::Update);
        let want = r#"table inet berth {
	set bridges { type ifname; }
	chain forward {
		type filter hook forward priority filter; policy accept;
	}
	chain ports {
	}
	chain prerouting {
		type nat hook prerouting priority dstnat; policy accept;
	}
	chain output {
		type nat hook output priority -100; policy accept;
	}
	chain postrouting {
		type nat hook postrouting priority srcnat; policy accept;
	}
}
flush chain inet berth forward
flush chain inet berth ports
flush chain inet berth prerouting
flush chain inet berth output
flush chain inet berth postrouting
flush set inet berth bridges
add element inet berth bridges { "berth0", "berthb1" }
add rule inet berth forward oifname @bridges ct state established,related accept
add rule inet berth forward oifname @bridges ct status dnat accept
add rule inet berth forward iifname "berth0" oifname "berth0" accept
add rule inet berth forward iifname "berth0" oifname @bridges drop
add rule inet berth forward iifname "berth0" accept
add rule inet berth forward oifname "berth0" drop
add rule inet berth forward iifname "berthb1" oifname "berthb1" accept
add rule inet berth forward iifname "berthb1" drop
add rule inet berth forward oifname "berthb1" drop
add rule inet berth ports meta nfproto ipv4 tcp dport 8080 dnat ip to 172.17.0.2:80
add rule inet berth ports ip daddr 127.0.0.1 udp dport 5353 dnat ip to 172.17.0.2:53
add rule inet berth prerouting fib daddr type local jump ports
add rule inet berth output fib daddr type local jump ports
add rule inet berth postrouting oifname "berth0" ip saddr 127.0.0.0/8 masquerade
add rule inet berth postrouting oifname "berth0" ip saddr 172.17.0.0/16 ip saddr != 172.17.0.1 ct status dnat masquerade
add rule inet berth postrouting ip saddr 172.17.0.0/16 oifname != "berth0" masquerade
add rule inet berth postrouting oifname "berthb1" ip saddr 127.0.0.0/8 masquerade
add rule inet berth postrouting oifname "berthb1" ip saddr 10.5.0.0/24 ct status dnat masquerade
add rule inet berth postrouting oifname "berthb1" ip6 saddr fd00:5::/64 ct status dnat masquerade
"#;
        assert_eq!(got, want, "got:\n{got}");
    }

    #[test]
    fn replace_starts_from_an_empty_table() {
        let got = render_host("bt1", &[], &[], Load::Replace);
        assert!(got.starts_with("table inet bt1 {}\ndelete table inet bt1\ntable inet bt1 {\n\tset bridges { type ifname; }\n"), "{got}");
        assert!(!got.contains("flush"), "{got}");
        assert!(!got.contains("add element"), "{got}");
    }

    #[test]
    fn sandbox_dns_golden() {
        assert_eq!(
            render_sandbox_dns("berth_dns", 40001, 40002),
            "table ip berth_dns {\n\tchain output {\n\t\ttype filter hook output priority -300; policy accept;\n\t}\n}\n\
             flush chain ip berth_dns output\n\
             add rule ip berth_dns output ip daddr 127.0.0.11 udp dport 53 udp dport set 40001\n\
             add rule ip berth_dns output ip daddr 127.0.0.11 tcp dport 53 tcp dport set 40002\n\
             add rule ip berth_dns output ip saddr 127.0.0.11 udp sport 40001 udp sport set 53\n\
             add rule ip berth_dns output ip saddr 127.0.0.11 tcp sport 40002 tcp sport set 53\n"
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
