//! Root integration tests of berth-network: real namespaces, links, nft
//! tables and DNS, with names and subnets owned by this test run.
//!
//! Namespaces made by the controller's sandboxes stand in for containers;
//! busybox runs inside them through `nsenter`. Every test owns a letter:
//! its links, bridges and nft table start with the run's prefix plus that
//! letter, and its subnets are four /24s of 10.200.0.0/16 derived from the
//! run id and the letter. Traffic goes only to namespaces the tests make.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use berth_network::controller::Config;
use berth_network::ipam::AddressPool;
use berth_network::model::IpamRequest;
use berth_network::ports::parse_publish;
use berth_network::{BindProbe, Controller, DnsServer, EndpointSpec, NetworkCreate, NftCommand, SandboxMode};
use berth_testkit::TestDir;

fn run_byte() -> u8 {
    let id = berth_testkit::run_id();
    id.bytes().fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(b as u32)) as u8
}

/// The `j`th /24 (0..4) of test `t`, as `10.200.N`.
fn net24(t: u8, j: u8) -> String {
    let n = (run_byte() as u32 + t as u32 * 4 + j as u32) % 256;
    format!("10.200.{n}")
}

struct Env {
    ctl: Controller,
    prefix: String,
    t: u8,
    dir: TestDir,
}

fn env(t: u8) -> Env {
    berth_testkit::require_root();
    let dir = TestDir::new(&format!("net{t}"));
    let prefix = format!("{}{}", berth_testkit::leak::net_prefix(berth_testkit::run_id()), (b'a' + t) as char);
    let mut cfg = Config::new(&dir.join("data"), &dir.join("exec"));
    cfg.nft_table = prefix.clone();
    cfg.link_prefix = prefix.clone();
    cfg.default_bridge.device = format!("{prefix}d");
    cfg.default_bridge.bip = Some(format!("{}.1/24", net24(t, 0)).parse().unwrap());
    cfg.address_pools = vec![AddressPool { base: format!("{}.0/24", net24(t, 3)).parse().unwrap(), size: 24 }];
    // libnftables when the host has it (the reopened controllers of the
    // restart tests use the nft binary, so both loaders are exercised).
    let ctl = Controller::open(cfg, berth_network::system_nft(), Box::new(BindProbe)).unwrap();
    // The guard exists before reconcile makes anything.
    let env = Env { ctl, prefix, t, dir };
    let report = env.ctl.reconcile(&|_| true);
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    env
}

impl Drop for Env {
    fn drop(&mut self) {
        if let Err(e) = self.ctl.uninstall() {
            eprintln!("uninstall: {e}");
        }
    }
}

impl Env {
    fn network(&self, name: &str, j: u8, internal: bool) -> String {
        let req = NetworkCreate {
            name: format!("{}-{name}", self.prefix),
            ipam: vec![IpamRequest { subnet: Some(format!("{}.0/24", net24(self.t, j))), ..Default::default() }],
            internal,
            ..Default::default()
        };
        self.ctl.create_network(&req).unwrap().id
    }

    /// A sandbox for a made-up container id on `networks`.
    fn container(&self, name: &str, networks: &[&str]) -> (String, PathBuf) {
        let id = format!("{:0>64}", format!("{}{name}", self.t)).replace(|c: char| !c.is_ascii_hexdigit(), "f");
        let sb = self.ctl.create_sandbox(&id, SandboxMode::New).unwrap();
        for n in networks {
            self.ctl.connect(&id, n, &EndpointSpec { container_name: name.into(), ..Default::default() }).unwrap();
        }
        (id, sb.netns)
    }

    fn ip(&self, id: &str, network: &str) -> IpAddr {
        let v = self.ctl.network(network).unwrap();
        v.containers[id].ipv4.unwrap().addr()
    }

    fn resolv(&self) -> PathBuf {
        let p = self.dir.join("resolv.conf");
        std::fs::write(&p, "nameserver 127.0.0.11\noptions ndots:0\n").unwrap();
        p
    }
}

/// `sh -c script` inside the namespace `ns`; with `resolv`, in a mount
/// namespace of its own whose /etc/resolv.conf is that file.
fn sh_in(ns: &Path, resolv: Option<&Path>, script: &str) -> Command {
    let mut c = Command::new("nsenter");
    c.arg(format!("--net={}", ns.display()));
    match resolv {
        Some(r) => {
            c.args(["unshare", "-m", "--propagation", "private", "sh", "-c"]);
            c.arg(format!("mount --bind {} /etc/resolv.conf && {script}", r.display()));
        }
        None => {
            c.args(["sh", "-c", script]);
        }
    }
    c.stdin(Stdio::null());
    c
}

fn run(mut c: Command) -> Output {
    c.output().unwrap()
}

fn ok(c: Command) -> String {
    let what = format!("{:?}", c.get_args().collect::<Vec<_>>());
    let out = run(c);
    assert!(out.status.success(), "failed: {what}\n{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// One echo request, one second for the answer: for asserting that
/// `target` is *not* reachable.
fn ping(ns: &Path, target: &str) -> bool {
    run(sh_in(ns, None, &format!("busybox ping -c 1 -W 1 {target} >/dev/null 2>&1"))).status.success()
}

/// Whether `target` answers a ping within a few seconds: for asserting that
/// it is reachable, on a loaded host too (a ping process started late, an
/// answer read late), without waiting longer than it takes.
fn reaches(ns: &Path, target: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if ping(ns, target) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
    }
}

/// Waits (at most 10 s) until a TCP socket listens on `port` in `ns`: a
/// server started in the background is not listening yet when its process
/// has merely been spawned.
fn wait_listening(ns: &Path, port: u16) {
    let netns = berth_network::netns::Netns::open(ns).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let needle = format!(":{port:04X} 00000000:0000 0A");
    loop {
        let tables = netns
            .run(|| ["tcp", "tcp6"].map(|t| std::fs::read_to_string(format!("/proc/thread-self/net/{t}")).unwrap_or_default()).concat())
            .unwrap();
        if tables.lines().any(|l| l.contains(&needle) || l.contains(&format!(":{port:04X} 00000000000000000000000000000000:0000 0A"))) {
            return;
        }
        assert!(Instant::now() < deadline, "nothing listens on port {port} in {}", ns.display());
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Random host ports come from the host's one ephemeral range, and each
/// test's controller allocates from it without knowing the others' (as two
/// daemons would): tests that publish random ports hold this while they do,
/// so that two of them are not handed the same port.
static RANDOM_PORTS: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn random_ports() -> std::sync::MutexGuard<'static, ()> {
    RANDOM_PORTS.lock().unwrap_or_else(|p| p.into_inner())
}

/// A background process, killed on drop.
struct Bg(Child);

impl Drop for Bg {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn bg(mut c: Command) -> Bg {
    Bg(c.stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap())
}

/// busybox httpd serving one page in `ns` on `port`.
fn httpd(env: &Env, ns: &Path, port: u16, body: &str) -> Bg {
    let www = env.dir.join(format!("www-{port}"));
    std::fs::create_dir_all(&www).unwrap();
    std::fs::write(www.join("index.html"), body).unwrap();
    let b = bg(sh_in(ns, None, &format!("exec busybox httpd -f -p {port} -h {}", www.display())));
    wait_listening(ns, port);
    b
}

fn http_get(addr: SocketAddr) -> std::io::Result<String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(2)))?;
    s.write_all(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out)
}

/// Deletes a link the test made by hand, if it is still there.
struct LinkGuard(String);

impl Drop for LinkGuard {
    fn drop(&mut self) {
        if link_exists(&self.0) {
            let _ = Command::new("ip").args(["link", "del", &self.0]).status();
        }
    }
}

fn link_exists(name: &str) -> bool {
    Path::new("/sys/class/net").join(name).exists()
}

fn nft_table(name: &str) -> String {
    String::from_utf8_lossy(&Command::new("nft").args(["list", "table", "inet", name]).output().unwrap().stdout).into_owned()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

#[test]
fn two_sandboxes_reach_each_other_by_ip_and_by_name() {
    let env = env(0);
    let net = env.network("front", 1, false);
    let (a, ans) = env.container("alpha", &[&net]);
    let (b, bns) = env.container("beta", &[&net]);
    let bip = env.ip(&b, &net);
    // connect returns once the kernel has the endpoint up: the host end
    // active and forwarding on the bridge, the bridge up.
    let mut nl = berth_network::netlink::Netlink::open().unwrap();
    for id in [&a, &b] {
        let host_end = env.ctl.sandbox(id).unwrap().endpoints[0].host_ifname.clone().unwrap();
        let r = nl.readiness(&host_end).unwrap().unwrap();
        assert!(r.carrier && r.oper_up, "{host_end}: {r:?}");
        assert_eq!(r.bridge_port, Some(netlink_packet_route::link::BridgePortState::Forwarding), "{host_end}");
    }
    let device = env.ctl.network(&net).unwrap().network.device;
    assert!(nl.readiness(&device).unwrap().is_some_and(|r| r.carrier && r.oper_up), "{device}");
    assert!(reaches(&ans, &bip.to_string()), "alpha cannot ping beta at {bip}");

    // Endpoint details: eth0, docker's MAC, default route via the gateway.
    let ep = env.ctl.sandbox(&a).unwrap().endpoints[0].clone();
    assert_eq!(ep.ifname, "eth0");
    let aip = ep.ipv4.unwrap().addr();
    let IpAddr::V4(v4) = aip else { panic!() };
    let o = v4.octets();
    assert_eq!(ep.mac, format!("02:42:{:02x}:{:02x}:{:02x}:{:02x}", o[0], o[1], o[2], o[3]));
    let routes = ok(sh_in(&ans, None, "ip route; ip link show eth0"));
    assert!(routes.contains(&format!("default via {}.1 dev eth0", net24(0, 1))), "{routes}");
    assert!(routes.contains(&ep.mac), "{routes}");

    let rt = runtime();
    let dns = DnsServer::new(env.ctl.dns_table(), vec![], berth_network::system_nft(), &env.prefix);
    assert!(env.ctl.needs_dns(&a));
    rt.block_on(async {
        dns.attach(&a, &ans).await.unwrap();
        dns.attach(&b, &bns).await.unwrap();
    });
    let resolv = env.resolv();
    let out = ok(sh_in(&ans, None, "busybox nslookup beta 127.0.0.11"));
    assert!(out.contains(&bip.to_string()), "{out}");
    // By name through /etc/resolv.conf, as a container would: ping, and a TCP echo.
    assert!(run(sh_in(&ans, Some(&resolv), "busybox ping -c 1 -W 3 beta")).status.success());
    let _srv = bg(sh_in(&bns, None, "exec busybox nc -l -p 7000 -e cat"));
    wait_listening(&bns, 7000);
    let echoed = ok(sh_in(&ans, Some(&resolv), "echo hello-berth | busybox nc -w 2 beta 7000"));
    assert!(echoed.contains("hello-berth"), "{echoed:?}");
    // The short id resolves too; unknown names are not answered locally.
    let out = ok(sh_in(&bns, None, &format!("busybox nslookup {} 127.0.0.11", &a[..12])));
    assert!(out.contains(&aip.to_string()), "{out}");
    // Over TCP too (the stateless port rewrite works both ways).
    let answer = berth_network::netns::Netns::open(&ans).unwrap().run(|| tcp_query("beta.")).unwrap();
    assert_eq!(answer, vec![bip], "TCP answer");
    rt.block_on(async {
        dns.detach(&a);
        dns.detach(&b);
    });
    drop(rt);
    env.ctl.teardown(&a).unwrap();
    env.ctl.teardown(&b).unwrap();
    assert!(!ans.exists());
    env.ctl.remove_network(&net).unwrap();
}

/// An A query for `name` to 127.0.0.11:53 over TCP, from the calling thread's namespace.
fn tcp_query(name: &str) -> Vec<IpAddr> {
    use hickory_proto::op::{Message, Query};
    use hickory_proto::rr::{Name, RData, RecordType};
    let mut m = Message::query();
    m.metadata.id = 7;
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(Name::from_ascii(name).unwrap(), RecordType::A));
    let q = m.to_vec().unwrap();
    let mut s = TcpStream::connect_timeout(&"127.0.0.11:53".parse().unwrap(), Duration::from_secs(2)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    s.write_all(&(q.len() as u16).to_be_bytes()).unwrap();
    s.write_all(&q).unwrap();
    let mut len = [0u8; 2];
    s.read_exact(&mut len).unwrap();
    let mut buf = vec![0u8; u16::from_be_bytes(len) as usize];
    s.read_exact(&mut buf).unwrap();
    let r = Message::from_vec(&buf).unwrap();
    r.answers
        .iter()
        .filter_map(|rec| match &rec.data {
            RData::A(a) => Some(IpAddr::V4(a.0)),
            _ => None,
        })
        .collect()
}

#[test]
fn dns_is_scoped_per_network_and_forwards_unknown_names() {
    let env = env(1);
    let n1 = env.network("one", 1, false);
    let n2 = env.network("two", 2, true);
    let (a, ans) = env.container("web", &[&n1]);
    let (b, bns) = env.container("db", &[&n1, &n2]);
    let (c, cns) = env.container("cache", &[&n2]);
    let rt = runtime();
    // A fake upstream on the host's loopback answering every name with 192.0.2.7.
    let upstream = rt.block_on(async {
        let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = sock.local_addr().unwrap();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 1500];
            while let Ok((n, from)) = sock.recv_from(&mut buf).await {
                use hickory_proto::op::Message;
                use hickory_proto::rr::{RData, Record, rdata::A};
                let Ok(q) = Message::from_vec(&buf[..n]) else { continue };
                let mut r = q.clone().into_response();
                let name = q.queries[0].name().clone();
                r.add_answer(Record::from_rdata(name, 60, RData::A(A("192.0.2.7".parse().unwrap()))));
                let _ = sock.send_to(&r.to_vec().unwrap(), from).await;
            }
        });
        // The same over TCP, on the same port.
        let tcp = tokio::net::TcpListener::bind(addr).await.unwrap();
        tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            while let Ok((mut s, _)) = tcp.accept().await {
                let mut len = [0u8; 2];
                if s.read_exact(&mut len).await.is_err() {
                    continue;
                }
                let mut buf = vec![0u8; u16::from_be_bytes(len) as usize];
                if s.read_exact(&mut buf).await.is_err() {
                    continue;
                }
                use hickory_proto::op::Message;
                use hickory_proto::rr::{RData, Record, rdata::A};
                let Ok(q) = Message::from_vec(&buf) else { continue };
                let mut r = q.clone().into_response();
                let name = q.queries[0].name().clone();
                r.add_answer(Record::from_rdata(name, 60, RData::A(A("192.0.2.8".parse().unwrap()))));
                let out = r.to_vec().unwrap();
                let _ = s.write_all(&(out.len() as u16).to_be_bytes()).await;
                let _ = s.write_all(&out).await;
            }
        });
        addr
    });
    let dns = DnsServer::new(env.ctl.dns_table(), vec![upstream], Arc::new(NftCommand::default()), &env.prefix);
    rt.block_on(async {
        for (id, ns) in [(&a, &ans), (&b, &bns), (&c, &cns)] {
            dns.attach(id, ns).await.unwrap();
        }
    });
    let look = |ns: &Path, name: &str| String::from_utf8_lossy(&run(sh_in(ns, None, &format!("busybox nslookup {name} 127.0.0.11 2>&1"))).stdout).into_owned();
    let cip = env.ip(&c, &n2).to_string();
    // db shares "two" with cache; web does not.
    assert!(look(&bns, "cache").contains(&cip));
    let out = look(&ans, "cache");
    assert!(!out.contains(&cip), "{out}");
    // web's unknown names go upstream...
    assert!(look(&ans, "example.test").contains("192.0.2.7"));
    // Over TCP, forwarded over TCP.
    let got = berth_network::netns::Netns::open(&ans).unwrap().run(|| tcp_query("example.test.")).unwrap();
    assert_eq!(got, vec!["192.0.2.8".parse::<IpAddr>().unwrap()]);
    // ...cache is only on an internal network: nothing leaves.
    assert!(!look(&cns, "example.test").contains("192.0.2.7"));
    rt.block_on(async {
        for id in [&a, &b, &c] {
            dns.detach(id);
        }
    });
    drop(rt);
    for id in [&a, &b, &c] {
        env.ctl.teardown(id).unwrap();
    }
}

#[test]
fn different_networks_are_isolated() {
    let env = env(2);
    let n1 = env.network("red", 1, false);
    let n2 = env.network("blue", 2, false);
    let (_a, ans) = env.container("a", &[&n1]);
    let (b, bns) = env.container("b", &[&n2]);
    let (_c, _cns) = env.container("c", &[&n1]);
    let bip = env.ip(&b, &n2);
    assert!(reaches(&ans, &format!("{}.1", net24(2, 1))), "own gateway answers");
    assert!(!ping(&ans, &bip.to_string()), "red reached blue");
    assert!(!ping(&bns, &env.ip(&_a, &n1).to_string()), "blue reached red");
    let c = env.ip(&_c, &n1);
    assert!(reaches(&ans, &c.to_string()), "same network");
}

/// An "outside" host: a namespace behind a veth from the host, standing in
/// for the world beyond the host.
struct Outside {
    path: PathBuf,
    host_end: String,
    addr: String,
}

impl Drop for Outside {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["link", "del", &self.host_end]).status();
        let _ = berth_network::netns::remove(&self.path);
    }
}

fn outside(env: &Env, j: u8) -> Outside {
    let path = env.dir.join("outside-ns");
    berth_network::netns::create(&path).unwrap();
    let host_end = format!("{}o", env.prefix);
    let o = Outside { path: path.clone(), host_end: host_end.clone(), addr: format!("{}.2", net24(env.t, j)) };
    let ns = berth_network::netns::Netns::open(&path).unwrap();
    let mut nl = berth_network::netlink::Netlink::open().unwrap();
    nl.create_veth(&host_end, "eth0", ns.fd(), None, None).unwrap();
    let idx = nl.set_up(&host_end).unwrap();
    nl.add_address(idx, format!("{}.1/24", net24(env.t, j)).parse().unwrap(), &host_end).unwrap();
    let mut inner = ns.netlink().unwrap();
    let i = inner.set_up("eth0").unwrap();
    inner.add_address(i, format!("{}/24", o.addr).parse().unwrap(), "eth0").unwrap();
    // The host end came up before its peer: the kernel activates it later.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !nl.readiness(&host_end).unwrap().is_some_and(|r| r.carrier && r.oper_up) {
        assert!(Instant::now() < deadline, "{host_end} never came up");
        std::thread::sleep(Duration::from_millis(5));
    }
    o
}

#[test]
fn internal_network_has_no_egress() {
    let env = env(3);
    let open_net = env.network("open", 1, false);
    let internal = env.network("closed", 2, true);
    let out = outside(&env, 3);
    let (_a, ans) = env.container("a", &[&open_net]);
    let (_b, bns) = env.container("b", &[&internal]);
    let (_c, cns) = env.container("c", &[&internal]);
    assert!(reaches(&ans, &out.addr), "a normal network reaches the outside");
    assert!(!ping(&bns, &out.addr), "an internal network reached the outside");
    assert!(reaches(&bns, &env.ip(&_c, &internal).to_string()), "members of an internal network reach each other");
    let routes = ok(sh_in(&cns, None, "ip route"));
    assert!(!routes.contains("default"), "internal: no default route: {routes}");
}

#[test]
fn published_port_answers_from_loopback_and_the_bridge_address() {
    let _ports = random_ports();
    let env = env(4);
    let bridge = env.ctl.network("bridge").unwrap().network.id;
    let (a, ans) = env.container("web", &[&bridge]);
    let _srv = httpd(&env, &ans, 8080, "hello from berth");
    // A fixed host port on every address, and a random one on 127.0.0.1.
    let fixed = 20000 + (run_byte() as u16) * 16 + env.t as u16;
    let mut reqs = parse_publish(&format!("{fixed}:8080")).unwrap();
    reqs.extend(parse_publish("127.0.0.1::8080").unwrap());
    let m = env.ctl.publish(&a, &reqs).unwrap();
    assert_eq!(m[0].host_port, fixed);
    let random = m[1].host_port;
    let settings = env.ctl.settings_json(&a, &["8080/tcp".into(), "9999/udp".into()]).unwrap();
    assert_eq!(settings["Ports"]["8080/tcp"][0], serde_json::json!({"HostIp": "0.0.0.0", "HostPort": fixed.to_string()}));
    assert_eq!(settings["Ports"]["8080/tcp"][1]["HostIp"], "127.0.0.1");
    assert!(settings["Ports"]["9999/udp"].is_null());
    assert_eq!(settings["Networks"]["bridge"]["IPAddress"], env.ip(&a, &bridge).to_string());
    assert_eq!(settings["SandboxKey"], ans.to_string_lossy().as_ref());
    let (lo, hi) = berth_network::ports::ephemeral_range(Path::new("/proc/sys"));
    assert!((lo..=hi).contains(&random), "{random}");
    let gw: IpAddr = format!("{}.1", net24(4, 0)).parse().unwrap();
    for addr in [SocketAddr::new("127.0.0.1".parse().unwrap(), fixed), SocketAddr::new(gw, fixed), SocketAddr::new("127.0.0.1".parse().unwrap(), random)] {
        let body = http_get(addr).unwrap_or_else(|e| panic!("{addr}: {e}\n{}", nft_table(&env.prefix)));
        assert!(body.contains("hello from berth"), "{addr}: {body}");
    }
    // Another sandbox reaches it through the host's address (hairpin through the bridge).
    let (_b, bns) = env.container("client", &[&bridge]);
    let got = ok(sh_in(&bns, None, &format!("printf 'GET / HTTP/1.0\\r\\n\\r\\n' | busybox nc -w 3 {gw} {fixed}")));
    assert!(got.contains("hello from berth"), "{got}");
    // And the container itself does, through its own published port.
    let veth = env.ctl.sandbox(&a).unwrap().endpoints[0].host_ifname.clone().unwrap();
    assert_eq!(std::fs::read_to_string(format!("/sys/class/net/{veth}/brport/hairpin_mode")).unwrap().trim(), "1");
    let got = ok(sh_in(&ans, None, &format!("printf 'GET / HTTP/1.0\\r\\n\\r\\n' | busybox nc -w 3 {gw} {fixed}")));
    assert!(got.contains("hello from berth"), "{got}");
    env.ctl.teardown(&a).unwrap();
    assert!(!nft_table(&env.prefix).contains(&format!("dport {fixed}")));
    assert!(http_get(SocketAddr::new("127.0.0.1".parse().unwrap(), fixed)).is_err());
}

#[test]
fn random_ports_are_free_and_a_taken_port_fails_cleanly() {
    let _ports = random_ports();
    let env = env(5);
    let bridge = env.ctl.network("bridge").unwrap().network.id;
    let (a, _ans) = env.container("a", &[&bridge]);
    let (b, _bns) = env.container("b", &[&bridge]);
    // -P: every exposed port gets a free ephemeral one.
    let reqs = berth_network::ports::requests_from_bindings(&BTreeMap::new(), &["80/tcp".into(), "53/udp".into()], true).unwrap();
    let m = env.ctl.publish(&a, &reqs).unwrap();
    assert_eq!(m.len(), 2);
    // Chosen free, then held by berth while published (as docker holds
    // them): no host program, and no other berthd, is handed them.
    for p in &m {
        assert!(!BindProbe.is_free_for_test(p), "{p:?} is not held");
    }
    // The same host port for a second container: docker's message, nothing left.
    let fixed = 21000 + (run_byte() as u16) * 16 + env.t as u16;
    env.ctl.publish(&a, &parse_publish(&format!("{fixed}:81")).unwrap()).unwrap();
    let before = nft_table(&env.prefix);
    let mut reqs = parse_publish(&format!("{}:82", fixed + 1)).unwrap();
    reqs.extend(parse_publish(&format!("{fixed}:80")).unwrap());
    let e = env.ctl.publish(&b, &reqs).unwrap_err();
    assert!(e.to_string().ends_with(&format!("Bind for 0.0.0.0:{fixed} failed: port is already allocated")), "{e}");
    assert_eq!(e.kind(), berth_api::ErrorKind::Conflict);
    assert!(env.ctl.sandbox(&b).unwrap().ports.is_empty());
    assert_eq!(nft_table(&env.prefix), before);
    // A port a host process holds.
    let held = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
    let hp = held.local_addr().unwrap().port();
    let e = env.ctl.publish(&b, &parse_publish(&format!("{hp}:80")).unwrap()).unwrap_err();
    assert!(e.to_string().contains("address already in use"), "{e}");
    // The free one is usable by b now.
    env.ctl.publish(&b, &parse_publish(&format!("{}:82", fixed + 1)).unwrap()).unwrap();
    // Torn down, a's ports are the host's again.
    env.ctl.teardown(&a).unwrap();
    for p in &m {
        assert!(BindProbe.is_free_for_test(p), "{p:?} still held after teardown");
    }
}

trait ProbeExt {
    fn is_free_for_test(&self, m: &berth_network::PortMapping) -> bool;
}

impl ProbeExt for BindProbe {
    /// Whether a host program could bind the mapping's port now.
    fn is_free_for_test(&self, m: &berth_network::PortMapping) -> bool {
        use berth_network::ports::PortProbe;
        self.is_free(m.proto, m.host_ip, m.host_port)
    }
}

#[test]
fn connect_and_disconnect_a_second_network_live() {
    let env = env(6);
    let n1 = env.network("first", 1, false);
    let n2 = env.network("second", 2, false);
    let (a, ans) = env.container("a", &[&n1]);
    let (b, _bns) = env.container("b", &[&n2]);
    let bip = env.ip(&b, &n2);
    assert!(!ping(&ans, &bip.to_string()));
    let ep = env.ctl.connect(&a, &n2, &EndpointSpec { container_name: "a".into(), aliases: vec!["alias-a".into()], ..Default::default() }).unwrap();
    assert_eq!(ep.ifname, "eth1");
    assert!(!ep.gateway_provider);
    assert!(reaches(&ans, &bip.to_string()), "connected live");
    assert_eq!(env.ctl.network(&n2).unwrap().containers.len(), 2);
    // Connecting twice is refused with docker's message.
    let e = env.ctl.connect(&a, &n2, &EndpointSpec { container_name: "a".into(), ..Default::default() }).unwrap_err();
    assert!(e.to_string().starts_with("endpoint with name a already exists in network"), "{e}");
    env.ctl.disconnect(&a, &n2).unwrap();
    assert!(!ping(&ans, &bip.to_string()), "disconnected");
    assert!(!ok(sh_in(&ans, None, "ip -o link")).contains("eth1"));
    // Disconnecting the gateway network hands the default route over.
    env.ctl.connect(&a, &n2, &EndpointSpec { container_name: "a".into(), ..Default::default() }).unwrap();
    env.ctl.disconnect(&a, &n1).unwrap();
    let routes = ok(sh_in(&ans, None, "ip route"));
    assert!(routes.contains(&format!("default via {}.1", net24(6, 2))), "{routes}");
    let e = env.ctl.remove_network(&n2).unwrap_err();
    assert!(e.to_string().contains("has active endpoints"), "{e}");
}

#[test]
fn ipam_state_survives_reopening_the_store() {
    let env = env(7);
    let net = env.network("keep", 1, false);
    let (a, _ans) = env.container("a", &[&net]);
    let first = env.ip(&a, &net);
    // A second controller over the same roots (the daemon restarted, a's shim alive).
    let mut cfg = env.ctl.config().clone();
    cfg.nft_table = env.prefix.clone();
    let again = Controller::open(cfg, Arc::new(NftCommand::default()), Box::new(BindProbe)).unwrap();
    let report = again.reconcile(&|c| c == a);
    assert!(report.errors.is_empty() && report.sandboxes_removed.is_empty(), "{report:?}");
    let view = again.network(&net).unwrap();
    assert_eq!(view.containers[&a].ipv4.unwrap().addr(), first);
    let id = "e".repeat(64);
    again.create_sandbox(&id, SandboxMode::New).unwrap();
    let ep = again.connect(&id, &net, &EndpointSpec { container_name: "b".into(), ..Default::default() }).unwrap();
    assert_ne!(ep.ipv4.unwrap().addr(), first, "address handed out twice");
    // --ip: taken is refused, free is honoured.
    let id2 = "d".repeat(64);
    again.create_sandbox(&id2, SandboxMode::New).unwrap();
    let e = again.connect(&id2, &net, &EndpointSpec { ipv4: Some(first), ..Default::default() }).unwrap_err();
    assert_eq!(e.to_string(), "Address already in use");
    let want: IpAddr = format!("{}.77", net24(7, 1)).parse().unwrap();
    let ep = again.connect(&id2, &net, &EndpointSpec { ipv4: Some(want), ..Default::default() }).unwrap();
    assert_eq!(ep.ipv4.unwrap().addr(), want);
    // Overlapping subnets are refused.
    let e = again
        .create_network(&NetworkCreate {
            name: format!("{}-over", env.prefix),
            ipam: vec![IpamRequest { subnet: Some(format!("{}.128/25", net24(7, 1))), ..Default::default() }],
            ..Default::default()
        })
        .unwrap_err();
    assert_eq!(e.to_string(), "invalid pool request: Pool overlaps with other one on this address space");
    again.teardown(&id).unwrap();
    again.teardown(&id2).unwrap();
}

#[test]
fn reconcile_after_a_crash_removes_what_was_left() {
    let env = env(8);
    let net = env.network("crash", 1, false);
    let bridge = env.ctl.network("bridge").unwrap().network.id;
    let (a, ans) = env.container("a", &[&net, &bridge]);
    let port = 22000 + (run_byte() as u16) * 16 + env.t as u16;
    env.ctl.publish(&a, &parse_publish(&format!("{port}:80")).unwrap()).unwrap();
    let veth = env.ctl.sandbox(&a).unwrap().endpoints[0].host_ifname.clone().unwrap();
    assert!(link_exists(&veth));
    assert!(nft_table(&env.prefix).contains(&format!("dport {port}")));
    // Leftovers no record knows: a veth with berth's prefix and a namespace file.
    let stray = format!("{}vdead", env.prefix);
    let _g1 = LinkGuard(stray.clone());
    assert!(Command::new("ip").args(["link", "add", &stray, "type", "veth", "peer", "name", &format!("{}p", env.prefix)]).status().unwrap().success());
    // A link of another daemon whose prefix starts with this one's stays.
    let other = format!("{}2vbeef", env.prefix);
    let _g2 = LinkGuard(other.clone());
    assert!(Command::new("ip").args(["link", "add", &other, "type", "bridge"]).status().unwrap().success());
    let stray_ns = env.dir.join("exec/netns").join("f".repeat(64));
    berth_network::netns::create(&stray_ns).unwrap();
    // The daemon dies (no teardown) and comes back; container a died with it.
    let cfg = env.ctl.config().clone();
    let again = Controller::open(cfg, Arc::new(NftCommand::default()), Box::new(BindProbe)).unwrap();
    let report = again.reconcile(&|_| false);
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(report.sandboxes_removed, vec![a.clone()]);
    assert!(report.links_removed.contains(&stray), "{report:?}");
    assert!(link_exists(&other), "another daemon's link was removed");
    assert!(report.netns_removed.contains(&stray_ns), "{report:?}");
    assert!(!link_exists(&veth) && !link_exists(&stray));
    assert!(!ans.exists() && !stray_ns.exists());
    assert!(!nft_table(&env.prefix).contains(&format!("dport {port}")));
    assert!(link_exists(&format!("{}d", env.prefix)), "the default bridge stays");
    assert!(again.sandbox(&a).is_none());
}

#[test]
fn macvlan_endpoints_on_a_dummy_parent() {
    let env = env(9);
    let req = NetworkCreate {
        name: format!("{}-mv", env.prefix),
        driver: Some("macvlan".into()),
        ipam: vec![IpamRequest { subnet: Some(format!("{}.0/24", net24(9, 1))), ..Default::default() }],
        ..Default::default()
    };
    let net = env.ctl.create_network(&req).unwrap();
    assert!(link_exists(&net.device), "dummy parent {}", net.device);
    let (_a, ans) = env.container("a", &[&net.id]);
    let (b, _bns) = env.container("b", &[&net.id]);
    let out = ok(sh_in(&ans, None, "ip -d link show eth0"));
    assert!(out.contains("macvlan mode bridge"), "{out}");
    assert!(reaches(&ans, &env.ip(&b, &net.id).to_string()));
}

#[test]
fn a_sandbox_joined_from_another_container_shares_its_namespace() {
    let env = env(10);
    let bridge = env.ctl.network("bridge").unwrap().network.id;
    let (a, ans) = env.container("a", &[&bridge]);
    let joined = "c".repeat(64);
    let sb = env.ctl.create_sandbox(&joined, SandboxMode::Join(a.clone())).unwrap();
    assert_eq!(sb.netns, ans);
    let e = env.ctl.connect(&joined, &bridge, &EndpointSpec::default()).unwrap_err();
    assert_eq!(e.kind(), berth_api::ErrorKind::InvalidParameter);
    env.ctl.teardown(&joined).unwrap();
    assert!(ans.exists(), "the owner's namespace stays");
    // Sysctls written through the handle land in the sandbox, not the host.
    let host_before = std::fs::read_to_string("/proc/sys/net/ipv4/tcp_max_tw_buckets").unwrap();
    berth_network::netns::Netns::open(&ans).unwrap().sysctl("net/ipv4/tcp_max_tw_buckets", "77").unwrap();
    assert_eq!(ok(sh_in(&ans, None, "cat /proc/sys/net/ipv4/tcp_max_tw_buckets")).trim(), "77");
    assert_eq!(std::fs::read_to_string("/proc/sys/net/ipv4/tcp_max_tw_buckets").unwrap(), host_before);
    env.ctl.teardown(&a).unwrap();
    assert!(!ans.exists());
}

#[test]
fn repeated_setup_and_teardown_leaves_nothing() {
    // (How long it takes is measured in bench/network.sh, not here.)
    let env = env(11);
    let bridge = env.ctl.network("bridge").unwrap().network.id;
    let ids: Vec<String> = (0..20).map(|i| format!("{:064x}", 0xabc00 + i)).collect();
    for id in &ids {
        env.ctl.create_sandbox(id, SandboxMode::New).unwrap();
        env.ctl.connect(id, &bridge, &EndpointSpec::default()).unwrap();
        assert!(env.ctl.netns_path(id).exists());
        env.ctl.teardown(id).unwrap();
    }
    for id in &ids {
        assert!(!env.ctl.netns_path(id).exists(), "namespace file of {id} left");
    }
    assert!(env.ctl.network(&bridge).unwrap().containers.is_empty(), "endpoints left on the bridge");
}

#[test]
fn ipv6_networks_give_both_families() {
    let env = env(12);
    let v6 = format!("fd00:b7:{:x}:{:x}::/64", run_byte(), env.t);
    let req = NetworkCreate {
        name: format!("{}-six", env.prefix),
        ipv6: true,
        ipam: vec![
            IpamRequest { subnet: Some(format!("{}.0/24", net24(12, 1))), ..Default::default() },
            IpamRequest { subnet: Some(v6.clone()), ..Default::default() },
        ],
        ..Default::default()
    };
    let net = env.ctl.create_network(&req).unwrap();
    assert_eq!(net.subnets.len(), 2);
    let (_a, ans) = env.container("alpha", &[&net.id]);
    let (b, bns) = env.container("beta", &[&net.id]);
    let bv6 = env.ctl.network(&net.id).unwrap().containers[&b].ipv6.unwrap().addr();
    assert!(bv6.to_string().starts_with(&v6[..v6.len() - 4]), "{bv6}");
    // connect returns once the address is beta's to receive on (not still
    // waiting for the kernel's address configuration work).
    let mut inner = berth_network::netns::Netns::open(&bns).unwrap().netlink().unwrap();
    assert!(inner.is_local(bv6).unwrap(), "{bv6} is not local in beta yet");
    assert!(reaches(&ans, &bv6.to_string()), "ping {bv6}");
    let routes = ok(sh_in(&ans, None, "ip -6 route"));
    assert!(routes.contains("default via"), "{routes}");
    let rt = runtime();
    let dns = DnsServer::new(env.ctl.dns_table(), vec![], berth_network::system_nft(), &env.prefix);
    rt.block_on(async {
        dns.attach(&_a, &ans).await.unwrap();
        dns.attach(&b, &bns).await.unwrap();
    });
    let out = ok(sh_in(&ans, None, "busybox nslookup -type=AAAA beta 127.0.0.11"));
    assert!(out.contains(&bv6.to_string()), "{out}");
    dns.detach(&_a);
    dns.detach(&b);
}

#[test]
fn libnftables_and_the_nft_binary_report_rejected_scripts() {
    berth_testkit::require_root();
    let bad = "table inet x { chain c { nonsense } }\n";
    let loaders: Vec<Arc<dyn berth_network::Nft>> = vec![berth_network::system_nft(), Arc::new(NftCommand::default())];
    for nft in loaders {
        let e = nft.apply(bad, "test").unwrap_err();
        assert!(e.to_string().starts_with("nft rejected the test rules: "), "{e}");
        assert!(e.to_string().contains("syntax error"), "{e}");
    }
    assert!(berth_network::LibNftables::open().is_some(), "libnftables is installed with nftables");
}
