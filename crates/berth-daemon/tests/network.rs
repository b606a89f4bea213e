//! Root integration tests of berthd's networking, driven by the real docker
//! CLI: each test's daemon has its own bridge, nft table, link prefix and
//! subnets (from berth-testkit), network names start with that prefix,
//! and traffic goes only to the test's containers and the host's own
//! addresses.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Output;
use std::time::{Duration, Instant};

use berth_testkit::daemon::TestDaemon;
use serde_json::Value;

const BERTHD: &str = env!("CARGO_BIN_EXE_berthd");

fn daemon() -> TestDaemon {
    let d = TestDaemon::start(std::path::Path::new(BERTHD));
    d.import_busybox("busybox:latest");
    d
}

fn docker(d: &TestDaemon, args: &[&str]) -> Output {
    let mut c = d.docker().unwrap_or_else(|| panic!("{} is not installed", berth_testkit::daemon::DOCKER_CLI));
    c.args(args).output().expect("run docker")
}

fn ok(o: Output) -> String {
    berth_testkit::stdout_of_success(&o)
}

fn fails(o: Output) -> String {
    assert!(!o.status.success(), "expected a failure, got: {}", String::from_utf8_lossy(&o.stdout));
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A network name of this daemon's.
fn net(d: &TestDaemon, s: &str) -> String {
    format!("{}-{s}", d.net_prefix())
}

fn inspect(d: &TestDaemon, what: &str, name: &str) -> Value {
    let out = ok(docker(d, &[what, "inspect", name]));
    serde_json::from_str::<Value>(&out).unwrap()[0].clone()
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// One HTTP GET, the body (or the error).
fn http_get(addr: &str) -> std::io::Result<String> {
    let mut s = TcpStream::connect_timeout(&addr.parse().unwrap(), Duration::from_secs(3))?;
    s.set_read_timeout(Some(Duration::from_secs(3)))?;
    s.write_all(b"GET / HTTP/1.0\r\n\r\n")?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out)
}

/// busybox httpd serving `text` at / on port 80.
const HTTPD: &str = "mkdir -p /www && echo $0 > /www/index.html && exec httpd -f -p 80 -h /www";

#[test]
fn containers_on_a_user_network_reach_each_other_by_name() {
    let d = daemon();
    let front = net(&d, "front");
    let id = ok(docker(&d, &["network", "create", "--label", "team=web", &front])).trim().to_owned();
    assert_eq!(id.len(), 64, "{id}");
    let ls = ok(docker(&d, &["network", "ls", "--filter", "label=team=web", "--format", "{{.Name}} {{.Driver}} {{.Scope}}"]));
    assert_eq!(ls.trim(), format!("{front} bridge local"));
    let ls = ok(docker(&d, &["network", "ls", "--format", "{{.Name}}"]));
    assert!(ls.lines().any(|l| l == "bridge") && ls.lines().any(|l| l == "host") == false, "{ls}");
    // Its subnet comes from the daemon's pool.
    let n = inspect(&d, "network", &front);
    let subnet = n["IPAM"]["Config"][0]["Subnet"].as_str().unwrap().to_owned();
    let pool = d.subnet24(0);
    let pool_prefix = pool.rsplit_once('.').unwrap().0;
    assert!(subnet.starts_with(pool_prefix), "{subnet} not from {pool}");

    let a = format!("{}-a", d.net_prefix());
    ok(docker(&d, &["run", "-d", "--name", &a, "--network", &front, "--network-alias", "echo", "busybox", "nc", "-ll", "-p", "7", "-e", "cat"]));
    // Ping and a TCP echo, by name and by alias; the resolver is the embedded one.
    let script = format!(
        "cat /etc/resolv.conf && ping -c1 -W3 {a} && echo hello-by-name | nc {a} 7 && echo hello-by-alias | nc echo 7"
    );
    let out = ok(docker(&d, &["run", "--rm", "--network", &front, "busybox", "sh", "-c", &script]));
    assert!(out.contains("nameserver 127.0.0.11"), "{out}");
    assert!(out.contains("1 packets received"), "{out}");
    assert!(out.contains("hello-by-name") && out.contains("hello-by-alias"), "{out}");

    // inspect lists the container with its address; rm is refused while it runs.
    let n = inspect(&d, "network", &front);
    let containers = n["Containers"].as_object().unwrap();
    assert_eq!(containers.len(), 1, "{n}");
    let (_, ep) = containers.iter().next().unwrap();
    assert_eq!(ep["Name"], a.as_str());
    let ip = ep["IPv4Address"].as_str().unwrap().to_owned();
    let c = inspect(&d, "container", &a);
    assert_eq!(format!("{}/{}", c["NetworkSettings"]["Networks"][&front]["IPAddress"].as_str().unwrap(), subnet.rsplit('/').next().unwrap()), ip);
    assert_eq!(c["NetworkSettings"]["Networks"][&front]["Aliases"][0], "echo");
    let err = fails(docker(&d, &["network", "rm", &front]));
    assert!(err.contains("has active endpoints"), "{err}");
    ok(docker(&d, &["rm", "-f", &a]));
    ok(docker(&d, &["network", "rm", &front]));
    let err = fails(docker(&d, &["network", "inspect", &front]));
    assert!(err.contains("not found"), "{err}");
    let err = fails(docker(&d, &["network", "rm", "bridge"]));
    assert!(err.contains("pre-defined network"), "{err}");
}

#[test]
fn different_networks_are_isolated_and_internal_has_no_egress() {
    let d = daemon();
    let (one, two, closed) = (net(&d, "one"), net(&d, "two"), net(&d, "closed"));
    ok(docker(&d, &["network", "create", "--subnet", &format!("{}.0/24", d.subnet24(5)), &one]));
    ok(docker(&d, &["network", "create", &two]));
    ok(docker(&d, &["network", "create", "--internal", &closed]));
    // A subnet that overlaps is refused.
    let err = fails(docker(&d, &["network", "create", "--subnet", &format!("{}.128/25", d.subnet24(5)), &net(&d, "dup")]));
    assert!(err.contains("overlap"), "{err}");
    let a = format!("{}-a", d.net_prefix());
    ok(docker(&d, &["run", "-d", "--name", &a, "--network", &one, "busybox", "sleep", "60"]));
    let a_ip = inspect(&d, "container", &a)["NetworkSettings"]["Networks"][&one]["IPAddress"].as_str().unwrap().to_owned();
    assert!(a_ip.starts_with(&d.subnet24(5)), "{a_ip}");
    let same = ok(docker(&d, &["run", "--rm", "--network", &one, "busybox", "ping", "-c1", "-W2", &a_ip]));
    assert!(same.contains("1 packets received"), "{same}");
    let other = docker(&d, &["run", "--rm", "--network", &two, "busybox", "ping", "-c1", "-W2", &a_ip]);
    assert!(!other.status.success(), "a container on another network reached {a_ip}: {}", String::from_utf8_lossy(&other.stdout));

    // Egress: a listener on the host at the default bridge's address is
    // reachable from a normal network, not from an internal one.
    let listener = std::net::TcpListener::bind(format!("{}.1:0", d.subnet24(0))).unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for s in listener.incoming().flatten() {
            let _ = (&s).write_all(b"host-says-hi\n");
        }
    });
    let target = format!("{}.1 {port}", d.subnet24(0));
    let out = ok(docker(&d, &["run", "--rm", "--network", &two, "busybox", "sh", "-c", &format!("nc -w3 {target} </dev/null")]));
    assert!(out.contains("host-says-hi"), "{out}");
    let o = docker(&d, &["run", "--rm", "--network", &closed, "busybox", "sh", "-c", &format!("ip route; nc -w3 {target} </dev/null")]);
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(!o.status.success() && !out.contains("host-says-hi"), "an internal network reached the host: {out}");
    assert!(!out.contains("default"), "{out}");
    ok(docker(&d, &["rm", "-f", &a]));
    let pruned = ok(docker(&d, &["network", "prune", "-f"]));
    for n in [&one, &two, &closed] {
        assert!(pruned.contains(n.as_str()), "{pruned}");
    }
}

#[test]
fn published_ports_answer_on_loopback_and_the_bridge_address() {
    let d = daemon();
    let web = format!("{}-web", d.net_prefix());
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let fixed = format!("{free}:80");
    ok(docker(&d, &["run", "-d", "--name", &web, "-p", &fixed, "-p", "127.0.0.1::80", "busybox", "sh", "-c", HTTPD, "hello-published"]));
    let ports = ok(docker(&d, &["port", &web]));
    let lines: Vec<&str> = ports.lines().collect();
    assert!(lines.contains(&format!("80/tcp -> 0.0.0.0:{free}").as_str()), "{ports}");
    let random: u16 = lines
        .iter()
        .find_map(|l| l.strip_prefix("80/tcp -> 127.0.0.1:"))
        .unwrap_or_else(|| panic!("{ports}"))
        .parse()
        .unwrap();
    let one = ok(docker(&d, &["port", &web, "80"]));
    assert!(one.contains(&format!("0.0.0.0:{free}")), "{one}");
    let gw = format!("{}.1", d.subnet24(0));
    for addr in [format!("127.0.0.1:{free}"), format!("{gw}:{free}"), format!("127.0.0.1:{random}")] {
        let mut body = Err(std::io::Error::other("not tried"));
        wait_until(&format!("http at {addr}"), || {
            body = http_get(&addr);
            body.as_ref().is_ok_and(|b| b.contains("hello-published"))
        });
    }
    // The port is taken now: a second container asking for it fails with
    // docker's words and is left without a half set-up network.
    let err = fails(docker(&d, &["run", "--rm", "-p", &fixed, "busybox", "true"]));
    assert!(err.contains("port is already allocated") || err.contains("address already in use"), "{err}");
    let c = inspect(&d, "container", &web);
    assert_eq!(c["NetworkSettings"]["Ports"]["80/tcp"][0]["HostPort"], free.to_string());
    assert!(c["NetworkSettings"]["IPAddress"].as_str().unwrap().starts_with(&d.subnet24(0)), "{}", c["NetworkSettings"]);
    ok(docker(&d, &["rm", "-f", &web]));
    let gone = http_get(&format!("127.0.0.1:{free}"));
    assert!(gone.is_err() || !gone.unwrap().contains("hello-published"));

    // -P: every exposed port gets a free one from the ephemeral range.
    let all = format!("{}-all", d.net_prefix());
    ok(docker(&d, &["run", "-d", "--name", &all, "--expose", "80", "--expose", "81", "-P", "busybox", "sh", "-c", HTTPD, "hello-all"]));
    let ports = ok(docker(&d, &["port", &all]));
    let (lo, hi) = {
        let r = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").unwrap();
        let v: Vec<u16> = r.split_whitespace().map(|x| x.parse().unwrap()).collect();
        (v[0], v[1])
    };
    let mut seen = Vec::new();
    for l in ports.lines() {
        let p: u16 = l.rsplit(':').next().unwrap().parse().unwrap();
        assert!((lo..=hi).contains(&p), "{l} outside {lo}-{hi}");
        seen.push(p);
    }
    assert!(ports.contains("80/tcp") && ports.contains("81/tcp"), "{ports}");
    seen.sort();
    seen.dedup();
    assert!(seen.len() >= 2, "{ports}");
    let p80: u16 = ports.lines().find(|l| l.starts_with("80/tcp")).unwrap().rsplit(':').next().unwrap().parse().unwrap();
    wait_until("http through -P", || http_get(&format!("127.0.0.1:{p80}")).is_ok_and(|b| b.contains("hello-all")));
    ok(docker(&d, &["rm", "-f", &all]));
}

#[test]
fn connect_and_disconnect_a_running_container() {
    let d = daemon();
    let back = net(&d, "back");
    ok(docker(&d, &["network", "create", "--subnet", &format!("{}.0/24", d.subnet24(6)), &back]));
    let app = format!("{}-app", d.net_prefix());
    ok(docker(&d, &["run", "-d", "--name", &app, "busybox", "nc", "-ll", "-p", "7", "-e", "cat"]));
    let ip = format!("{}.50", d.subnet24(6));
    ok(docker(&d, &["network", "connect", "--ip", &ip, "--alias", "db", &back, &app]));
    let links = ok(docker(&d, &["exec", &app, "ip", "-o", "addr"]));
    assert!(links.contains("eth1") && links.contains(&ip), "{links}");
    let out = ok(docker(&d, &["run", "--rm", "--network", &back, "busybox", "sh", "-c", "echo via-alias | nc db 7"]));
    assert!(out.contains("via-alias"), "{out}");
    let n = inspect(&d, "network", &back);
    assert_eq!(n["Containers"].as_object().unwrap().len(), 1, "{n}");
    // A second --ip of the same address is refused.
    let err = fails(docker(&d, &["run", "--rm", "--network", &back, "--ip", &ip, "busybox", "true"]));
    assert!(err.contains("already in use"), "{err}");
    // --ip on the default bridge: docker's message.
    let err = fails(docker(&d, &["run", "--rm", "--ip", &format!("{}.9", d.subnet24(0)), "busybox", "true"]));
    assert!(err.contains("user specified IP address is supported on user defined networks only"), "{err}");
    ok(docker(&d, &["network", "disconnect", &back, &app]));
    let links = ok(docker(&d, &["exec", &app, "ip", "-o", "addr"]));
    assert!(!links.contains("eth1") && !links.contains(&ip), "{links}");
    assert!(inspect(&d, "network", &back)["Containers"].as_object().unwrap().is_empty());
    let c = inspect(&d, "container", &app);
    assert!(c["NetworkSettings"]["Networks"].get(&back).is_none(), "{}", c["NetworkSettings"]);
    ok(docker(&d, &["rm", "-f", &app]));
    ok(docker(&d, &["network", "rm", &back]));
}

#[test]
fn modes_and_etc_files() {
    let d = daemon();
    let none = ok(docker(&d, &["run", "--rm", "--net", "none", "busybox", "ip", "-o", "link"]));
    assert_eq!(none.lines().count(), 1, "only lo: {none}");
    let host = ok(docker(&d, &["run", "--rm", "--net", "host", "busybox", "ip", "-o", "link"]));
    assert!(host.contains(&d.bridge()), "the host's links: {host}");
    let first = format!("{}-first", d.net_prefix());
    ok(docker(&d, &["run", "-d", "--name", &first, "--hostname", "alpha", "busybox", "sleep", "60"]));
    let mine = ok(docker(&d, &["exec", &first, "ip", "-o", "-4", "addr", "show", "eth0"]));
    let joined = ok(docker(&d, &["run", "--rm", "--net", &format!("container:{first}"), "busybox", "ip", "-o", "-4", "addr", "show", "eth0"]));
    assert_eq!(mine.split_whitespace().nth(3), joined.split_whitespace().nth(3), "{mine} / {joined}");
    // /etc/hosts and resolv.conf on the default bridge: own name and address,
    // --add-host, --link, --dns*.
    let first_ip = inspect(&d, "container", &first)["NetworkSettings"]["IPAddress"].as_str().unwrap().to_owned();
    let out = ok(docker(&d, &[
        "run", "--rm", "--hostname", "beta", "--add-host", "db.example:192.0.2.7", "--link", &format!("{first}:al"),
        "--dns", "192.0.2.53", "--dns-search", "corp.example", "--dns-option", "ndots:2", "--mac-address", "02:42:ac:11:99:99",
        "busybox", "sh", "-c", "cat /etc/hosts /etc/resolv.conf; hostname; cat /sys/class/net/eth0/address; ping -c1 -W2 al",
    ]));
    assert!(out.contains("192.0.2.7\tdb.example"), "{out}");
    assert!(out.lines().any(|l| l.starts_with(&first_ip) && l.contains("al") && l.contains(&first)), "{out}");
    assert!(out.lines().any(|l| l.ends_with("\tbeta")), "{out}");
    assert!(out.contains("nameserver 192.0.2.53") && out.contains("search corp.example") && out.contains("options ndots:2"), "{out}");
    assert!(out.contains("02:42:ac:11:99:99"), "{out}");
    assert!(out.contains("1 packets received"), "{out}");
    // --link needs a running target.
    ok(docker(&d, &["stop", "-t", "0", &first]));
    let err = fails(docker(&d, &["run", "--rm", "--link", &format!("{first}:al"), "busybox", "true"]));
    assert!(err.contains("non running container"), "{err}");
    ok(docker(&d, &["rm", "-f", &first]));
}

#[test]
fn addresses_survive_a_daemon_restart_and_a_crash_is_reconciled() {
    let mut d = daemon();
    let keep = net(&d, "keep");
    ok(docker(&d, &["network", "create", &keep]));
    let a = format!("{}-a", d.net_prefix());
    ok(docker(&d, &["run", "-d", "--name", &a, "--network", &keep, "busybox", "nc", "-ll", "-p", "7", "-e", "cat"]));
    let a_ip = inspect(&d, "container", &a)["NetworkSettings"]["Networks"][&keep]["IPAddress"].as_str().unwrap().to_owned();
    d.restart();
    let n = inspect(&d, "network", &keep);
    assert_eq!(n["Containers"].as_object().unwrap().len(), 1, "{n}");
    // A new container gets another address, and still reaches a by name
    // (the embedded DNS came back for the new one's network).
    let out = ok(docker(&d, &["run", "--rm", "--network", &keep, "busybox", "sh", "-c", &format!("ip -o -4 addr show eth0; echo still | nc {a} 7")]));
    assert!(!out.contains(&format!("{a_ip}/")), "address handed out twice: {out}");
    assert!(out.contains("still"), "{out}");
    // A crash: the daemon dies, the container is killed meanwhile; the next
    // start removes its sandbox and links.
    let pid = inspect(&d, "container", &a)["State"]["Pid"].as_i64().unwrap();
    let veths_before = host_links(&d);
    assert!(!veths_before.is_empty());
    d.kill9();
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGKILL).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    d.restart();
    wait_until("the dead container's links go", || host_links(&d).iter().all(|l| !veths_before.contains(l)));
    let n = inspect(&d, "network", &keep);
    assert!(n["Containers"].as_object().unwrap().is_empty(), "{n}");
    ok(docker(&d, &["rm", "-f", &a]));
    ok(docker(&d, &["network", "rm", &keep]));
}

/// Host veth ends of this daemon's containers.
fn host_links(d: &TestDaemon) -> Vec<String> {
    let p = format!("{}v", d.net_prefix());
    std::fs::read_dir("/sys/class/net")
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(&p))
        .collect()
}

/// A tiny DNS server on a loopback address of the test's own: answers A
/// queries for the names it has, NXDOMAIN for every other name, and
/// counts the queries it got. Stops when dropped.
struct DnsResponder {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    queries: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl DnsResponder {
    fn start(addr: &str, records: &[(&str, [u8; 4])]) -> DnsResponder {
        use std::sync::atomic::Ordering;
        let sock = std::net::UdpSocket::bind(format!("{addr}:53")).unwrap_or_else(|e| panic!("bind {addr}:53: {e}"));
        sock.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
        let records: Vec<(String, [u8; 4])> = records.iter().map(|(n, ip)| (n.to_ascii_lowercase(), *ip)).collect();
        let r = DnsResponder { stop: Default::default(), queries: Default::default() };
        let (stop, queries) = (r.stop.clone(), r.queries.clone());
        std::thread::spawn(move || {
            let mut buf = [0u8; 512];
            while !stop.load(Ordering::Relaxed) {
                let Ok((n, from)) = sock.recv_from(&mut buf) else { continue };
                let q = &buf[..n];
                // The question: labels from byte 12, then type and class.
                let mut i = 12;
                let mut labels = Vec::new();
                while i < q.len() && q[i] != 0 {
                    let l = q[i] as usize;
                    labels.push(String::from_utf8_lossy(q.get(i + 1..i + 1 + l).unwrap_or_default()).to_ascii_lowercase());
                    i += 1 + l;
                }
                if i + 5 > q.len() {
                    continue;
                }
                queries.fetch_add(1, Ordering::Relaxed);
                let qtype = u16::from_be_bytes([q[i + 1], q[i + 2]]);
                let question = &q[12..i + 5];
                let found = records.iter().find(|(name, _)| *name == labels.join("."));
                let answer = found.filter(|_| qtype == 1);
                let rcode = if found.is_some() { 0 } else { 3 };
                let mut out = vec![q[0], q[1], 0x81, 0x80 | rcode, 0, 1, 0, answer.is_some() as u8, 0, 0, 0, 0];
                out.extend_from_slice(question);
                if let Some((_, ip)) = answer {
                    out.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4]);
                    out.extend_from_slice(ip);
                }
                let _ = sock.send_to(&out, from);
            }
        });
        r
    }

    fn queries(&self) -> usize {
        self.queries.load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl Drop for DnsResponder {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// A loopback address of this run's own, 127.x.y.`last` (x and y from the
/// run id), for a test DNS server: each test passes its own `test` number.
fn loopback(test: u8, last: u8) -> String {
    let h = berth_testkit::run_id().bytes().fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(b as u32));
    format!("127.{}.{}.{last}", 1 + h % 250, (h >> 8) as u8 ^ test)
}

#[test]
fn embedded_dns_forwards_to_the_containers_dns_else_the_daemons() {
    // The daemon's upstream and a container's --dns: two test servers
    // giving different answers for the same name.
    let (daemon_dns, own_dns) = (loopback(1, 54), loopback(1, 53));
    let d = TestDaemon::start_with(std::path::Path::new(BERTHD), &["--dns", &daemon_dns]);
    d.import_busybox("busybox:latest");
    let upstream = DnsResponder::start(&daemon_dns, &[("which.test", [192, 0, 2, 54])]);
    let own = DnsResponder::start(&own_dns, &[("which.test", [192, 0, 2, 53]), ("only-own.test", [192, 0, 2, 99])]);
    let web = net(&d, "web");
    ok(docker(&d, &["network", "create", &web]));
    let a = format!("{}-a", d.net_prefix());
    ok(docker(&d, &["run", "-d", "--name", &a, "--network", &web, "busybox", "sleep", "60"]));
    // With --dns: the container's server answers the names the network
    // does not own; container names are still answered by the embedded DNS.
    let script = format!("cat /etc/resolv.conf; nslookup which.test; nslookup only-own.test; nslookup {a}");
    let out = ok(docker(&d, &["run", "--rm", "--network", &web, "--dns", &own_dns, "busybox", "sh", "-c", &script]));
    assert!(out.contains("nameserver 127.0.0.11") && !out.contains(&format!("nameserver {own_dns}")), "{out}");
    assert!(out.contains("Address: 192.0.2.53") && out.contains("Address: 192.0.2.99"), "{out}");
    assert!(!out.contains("192.0.2.54"), "the daemon's upstream answered:\n{out}");
    let a_ip = inspect(&d, "container", &a)["NetworkSettings"]["Networks"][&web]["IPAddress"].as_str().unwrap().to_owned();
    assert!(out.contains(&format!("Address: {a_ip}")), "{out}");
    // Without: the daemon's upstream.
    let before = own.queries();
    let out = ok(docker(&d, &["run", "--rm", "--network", &web, "busybox", "nslookup", "which.test"]));
    assert!(out.contains("Address: 192.0.2.54") && !out.contains("192.0.2.53"), "{out}");
    assert_eq!(own.queries(), before, "the other container's --dns server was asked");
    assert!(upstream.queries() > 0);
    ok(docker(&d, &["rm", "-f", &a]));
    ok(docker(&d, &["network", "rm", &web]));
}

#[test]
fn rename_changes_the_name_the_embedded_dns_answers() {
    // Names the embedded DNS does not own go to a test server (NXDOMAIN).
    let dns = loopback(2, 53);
    let _upstream = DnsResponder::start(&dns, &[]);
    let d = TestDaemon::start_with(std::path::Path::new(BERTHD), &["--dns", &dns]);
    d.import_busybox("busybox:latest");
    let web = net(&d, "ren");
    ok(docker(&d, &["network", "create", &web]));
    let (old, new) = (format!("{}-old", d.net_prefix()), format!("{}-new", d.net_prefix()));
    ok(docker(&d, &["run", "-d", "--name", &old, "--network", &web, "busybox", "nc", "-ll", "-p", "7", "-e", "cat"]));
    let client = format!("{}-client", d.net_prefix());
    ok(docker(&d, &["run", "-d", "--name", &client, "--network", &web, "busybox", "sleep", "60"]));
    let lookup = |name: &str| docker(&d, &["exec", &client, "nslookup", name]);
    assert!(lookup(&old).status.success());
    ok(docker(&d, &["rename", &old, &new]));
    let gone = lookup(&old);
    assert!(!gone.status.success(), "{old} still resolves: {}", String::from_utf8_lossy(&gone.stdout));
    assert!(String::from_utf8_lossy(&gone.stdout).contains("NXDOMAIN"), "{}", String::from_utf8_lossy(&gone.stdout));
    let ip = inspect(&d, "container", &new)["NetworkSettings"]["Networks"][&web]["IPAddress"].as_str().unwrap().to_owned();
    assert!(ok(lookup(&new)).contains(&format!("Address: {ip}")));
    let out = ok(docker(&d, &["exec", &client, "sh", "-c", &format!("echo by-new-name | nc {new} 7")]));
    assert!(out.contains("by-new-name"), "{out}");
    let n = inspect(&d, "network", &web);
    assert!(n["Containers"].as_object().unwrap().values().any(|c| c["Name"] == new.as_str()), "{n}");
    // Stopped and started again under the new name, it keeps answering to it.
    ok(docker(&d, &["restart", "-t", "0", &new]));
    assert!(ok(lookup(&new)).contains("Name:"));
    assert!(!lookup(&old).status.success());
    ok(docker(&d, &["rm", "-f", &new, &client]));
    ok(docker(&d, &["network", "rm", &web]));
}

#[test]
fn rm_link_removes_a_legacy_link() {
    let d = daemon();
    let (db, app) = (format!("{}-db", d.net_prefix()), format!("{}-app", d.net_prefix()));
    ok(docker(&d, &["run", "-d", "--name", &db, "busybox", "sleep", "60"]));
    ok(docker(&d, &["run", "-d", "--name", &app, "--link", &format!("{db}:data"), "busybox", "sleep", "60"]));
    let hosts = ok(docker(&d, &["exec", &app, "cat", "/etc/hosts"]));
    assert!(hosts.lines().any(|l| l.contains("\tdata ")), "{hosts}");
    // A container's own name is no link; an unknown link is no container.
    let err = fails(docker(&d, &["rm", "--link", &db]));
    assert!(err.contains("Conflict, cannot remove the default link name of the container"), "{err}");
    let err = fails(docker(&d, &["rm", "--link", &format!("/{app}/nope")]));
    assert!(err.contains("No such container"), "{err}");
    let out = ok(docker(&d, &["rm", "--link", &format!("/{app}/data")]));
    assert!(out.contains("data"), "{out}");
    // The link's line is gone from the running container, the linked
    // container is still there, and the link is gone from the record: with
    // its target stopped, the container starts again.
    let hosts = ok(docker(&d, &["exec", &app, "cat", "/etc/hosts"]));
    assert!(!hosts.contains("data"), "{hosts}");
    assert_eq!(inspect(&d, "container", &db)["State"]["Running"], true);
    let links = &inspect(&d, "container", &app)["HostConfig"]["Links"];
    assert!(links.as_array().is_none_or(|l| l.is_empty()), "{links}");
    ok(docker(&d, &["stop", "-t", "0", &db]));
    ok(docker(&d, &["restart", "-t", "0", &app]));
    ok(docker(&d, &["rm", "-f", &app, &db]));
}
